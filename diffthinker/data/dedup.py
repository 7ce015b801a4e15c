"""De-duplication and test-set hygiene.

- ``collect_hashes(folders)``: the content hashes of other datasets, for ``--exclude`` (a training set built
  with ``--exclude test_set`` shares no puzzle with it). A folder may be one of our datasets or an official
  DiffThinker test folder (or a tree of them): the published generator likewise rejects puzzles that appear in
  the VSP / test tables.
- Official test items are marked (``official=True``) and may never be trained on: ``assert_no_official`` and
  ``load_training_dataset`` refuse any dataset holding one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import datasets

from ..tasks.base import TaskError, get_task
from .store import is_dataset_folder, load_dataset


def collect_hashes(folders: Iterable[str | Path]) -> set[str]:
    """Content hashes of every item in the given dataset folders or official test folders."""
    from .official import find_official_folders  # local: official imports store, not dedup

    hashes: set[str] = set()
    for folder in folders:
        folder = Path(folder)
        if is_dataset_folder(folder):
            hashes.update(load_dataset(folder)["content_hash"])
            continue
        if not folder.is_dir():
            raise TaskError(f"--exclude folder not found: {folder}")
        for task, sub in find_official_folders(folder):
            hashes.update(task.content_hash(item.instance) for item in task.read_official(sub))
    return hashes


def assert_no_official(ds: datasets.Dataset, what: str = "dataset") -> None:
    """Raise TaskError if any row is an official test item (they are for evaluation only)."""
    if "official" not in ds.column_names:
        raise TaskError(f"{what} has no 'official' column; expected a diffthinker dataset")
    flags = ds["official"]
    bad = [i for i, flag in enumerate(flags) if flag]
    if bad:
        ids = ds.select(bad[:3])["id"]
        raise TaskError(f"{what} holds {len(bad)} official test items (e.g. {list(ids)}); official items are for "
                        f"evaluation only and must never be trained on")


def load_training_dataset(folder: str | Path, task: str | None = None) -> datasets.Dataset:
    """Load a dataset for training: refuses official items, and rows of another task when ``task`` is given."""
    ds = load_dataset(folder)
    assert_no_official(ds, what=str(folder))
    if task is not None:
        want = get_task(task).id
        other = sorted(set(ds.unique("task")) - {want})
        if other:
            raise TaskError(f"{folder} holds items of {other}; expected only {want}")
    return ds
