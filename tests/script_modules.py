"""The repository's scripts (benchmarks/*.py, training/*.py) are not a package: load one as a module for its tests.

Test files import this as ``script_modules`` (pytest puts tests/ on sys.path, as it has no __init__.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(relative: str) -> ModuleType:
    """Execute ``ROOT/relative`` (e.g. ``benchmarks/make_results.py``) as the module named by its stem, registered
    in sys.modules (dataclasses look their module up by name)."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module
