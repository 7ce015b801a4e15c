"""Saving and loading datasets and other output folders, atomically, with a manifest.

- Every folder we write (an HF dataset, an official-layout export, rendered images, a gallery) is written into
  a temporary sibling ``.<name>.tmp-<random>`` and renamed into place at the end, so a crash or an exception
  never leaves a half-written folder under the final name.
- An existing output is never replaced unless ``overwrite=True``; even then only a folder we wrote (it holds
  ``diffthinker_manifest.json``) or an empty folder is replaced, so a typo in ``--out`` cannot delete a
  user's folder. With ``overwrite`` the old folder is moved aside, the new one renamed in, and the old one
  deleted only after that succeeded: if the write fails, the old folder is intact.
- The manifest (``diffthinker_manifest.json``, inside the folder so it moves with it) records the kind of
  folder, the command and config, seeds, task versions, package versions and counts.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import shutil
import sys
import uuid
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator

import datasets

from ..fsutil import replace_folder
from ..tasks.base import TaskError
from .schema import COLUMNS

MANIFEST = "diffthinker_manifest.json"
_HF_MARKERS = ("state.json", "dataset_info.json")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("diffthinker", "datasets", "pyarrow", "numpy", "pillow", "tqdm"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def make_manifest(kind: str, *, config: dict[str, Any] | None = None, counts: dict[str, Any] | None = None,
                  tasks: dict[str, int] | None = None, command: list[str] | None = None,
                  **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "command": command if command is not None else list(sys.argv),
        "config": config or {},
        "tasks": tasks or {},
        "counts": counts or {},
        "packages": package_versions(),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TaskError(f"{path} is not a readable manifest ({exc})") from None


# ----------------------------------------------------------------------------------------------- atomic folders
def check_output(out: str | Path, overwrite: bool) -> Path:
    """Refuse an existing ``out`` unless ``overwrite``; refuse replacing a folder we did not write."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise TaskError(f"output {out} already exists; pass --overwrite to replace it")
        if not out.is_dir() or out.is_symlink():
            raise TaskError(f"output {out} exists and is not a folder; refusing to replace it")
        if not (out / MANIFEST).is_file() and any(out.iterdir()):
            raise TaskError(f"output {out} exists and was not written by diffthinker (no {MANIFEST}); "
                            f"refusing to replace it even with --overwrite")
    if not out.parent.exists():
        raise TaskError(f"parent folder of output {out} does not exist: {out.parent}")
    return out


@contextmanager
def atomic_folder(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; on success it replaces ``out`` atomically."""
    out = check_output(out, overwrite)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        check_output(out, overwrite)  # re-check: it may have appeared while we were writing
    try:
        replace_folder(tmp, out, old=out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (Path(folder) / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def save_dataset(ds: datasets.Dataset, out: str | Path, manifest: dict[str, Any], *, overwrite: bool = False,
                 fill: Callable[[Path], None] | None = None) -> Path:
    """``ds.save_to_disk`` into a temporary sibling, add the manifest (and ``fill(tmp)`` extras such as jigsaw
    source images), then rename into place (see the module docstring)."""
    with atomic_folder(out, overwrite) as tmp:
        ds.save_to_disk(str(tmp))
        if fill is not None:
            fill(tmp)
        write_manifest(tmp, manifest)
    return Path(out)


def dataset_summary(ds: datasets.Dataset) -> dict[str, Any]:
    """Counts for a manifest: total, official, per task and level; and the task versions present."""
    per: dict[str, dict[str, int]] = {}
    tasks: dict[str, int] = {}
    for task_id, version, level in zip(ds["task"], ds["task_version"], ds["level"]):
        per.setdefault(task_id, {}).setdefault(level, 0)
        per[task_id][level] += 1
        tasks[task_id] = int(version)
    return {"counts": {"total": len(ds), "official": int(sum(ds["official"])), "per_task_level": per},
            "tasks": tasks}


# ----------------------------------------------------------------------------------------------- loading
def is_dataset_folder(folder: str | Path) -> bool:
    folder = Path(folder)
    return folder.is_dir() and all((folder / m).is_file() for m in _HF_MARKERS)


def register_source_root(folder: Path) -> None:
    """Let instances that reference files by relative path (jigsaw source images, as ``file:``-style specs of
    ``diffthinker.tasks.sources``) resolve them against ``folder``. A no-op when that module is absent."""
    try:
        from ..tasks import sources
    except ImportError:
        return
    sources.add_source_root(folder)


def load_dataset(folder: str | Path) -> datasets.Dataset:
    """Load a dataset written by ``save_dataset``. TaskError (naming the path) for a missing folder, a folder
    that is not a dataset, a corrupt one, or one lacking our columns."""
    folder = Path(folder)
    if not folder.exists():
        raise TaskError(f"dataset folder not found: {folder}")
    if not folder.is_dir():
        raise TaskError(f"{folder} is not a folder; expected a dataset folder written by `diffthinker generate` "
                        f"or `diffthinker import`")
    if not is_dataset_folder(folder):
        raise TaskError(f"{folder} is not a diffthinker dataset (no {' / '.join(_HF_MARKERS)}); expected a folder "
                        f"written by `diffthinker generate` or `diffthinker import`")
    try:
        ds = datasets.load_from_disk(str(folder))
        if isinstance(ds, datasets.Dataset):
            len(ds)  # touch the table, so a corrupt file shows now
    except Exception as exc:  # noqa: BLE001 - any failure of the HF loader means the folder is unusable
        raise TaskError(f"{folder} is a corrupt dataset ({type(exc).__name__}: {exc})") from None
    if not isinstance(ds, datasets.Dataset):
        raise TaskError(f"{folder} holds a {type(ds).__name__}; expected a single datasets.Dataset")
    missing = [c for c in COLUMNS if c not in ds.column_names]
    if missing:
        raise TaskError(f"{folder} is a dataset but lacks the diffthinker columns {missing}")
    register_source_root(folder)
    return ds
