"""Folder writes that never leave a half-written result where a reader looks (checkpoints, datasets, reports).

The pattern everywhere: fill a temporary sibling folder, then ``replace_folder(tmp, final)``. A crash before the
swap leaves ``final`` untouched (the temporary is cleaned up by the next save); a crash during the swap leaves the
previous version under ``.old-<name>`` beside it, never a mixture of two versions.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["replace_folder"]


def replace_folder(tmp: str | Path, final: str | Path, old: str | Path | None = None) -> Path:
    """Move the finished folder ``tmp`` to ``final`` (same file system), replacing an existing ``final``.

    An existing ``final`` is first renamed to ``old`` (default: ``.old-<name>`` beside it) and removed only once
    ``tmp`` is in place; if that rename fails the previous version is put back and the error raised.
    """
    tmp, final = Path(tmp), Path(final)
    if not final.exists():
        os.rename(tmp, final)
        return final
    old = Path(old) if old is not None else final.parent / f".old-{final.name}"
    shutil.rmtree(old, ignore_errors=True)
    os.rename(final, old)
    try:
        os.rename(tmp, final)
    except BaseException:
        os.rename(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return final
