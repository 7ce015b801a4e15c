"""Helpers shared by the data-layer tests: registered tasks, small sizes, raw image bytes of a dataset.

A plain module (not conftest) so tests import it by a name no other test folder uses."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from diffthinker.data.build import level_sizes
from diffthinker.tasks import get_task, list_tasks

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diffthinker_samples"

#: Every registered task (all five once their modules land); tests parametrise over it.
TASK_IDS = list_tasks()


def first_task() -> str:
    """The task the mechanics tests run on: maze when present (usually first to land), else any."""
    if not TASK_IDS:
        pytest.skip("no task registered yet")
    return "maze-v1" if "maze-v1" in TASK_IDS else TASK_IDS[0]


def small_size(task_id: str, level: str | None = None) -> int:
    task = get_task(task_id)
    return min(level_sizes(task, level or task.default_level))


def raw_rows(ds: datasets.Dataset) -> list[dict]:
    """Rows with the image columns as raw bytes (not decoded), for byte-level comparisons."""
    ds = ds.cast_column("image", datasets.Image(decode=False))
    ds = ds.cast_column("solution_image", datasets.Image(decode=False))
    return [dict(r) for r in ds]
