"""Building datasets: determinism, process-count independence, seed rule, exclusion and de-duplication."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from datahelpers import TASK_IDS, first_task, raw_rows, small_size
from diffthinker.data import COLUMNS, build_dataset, collect_hashes, save_dataset
from diffthinker.data.build import BuildStats
from diffthinker.data.store import make_manifest
from diffthinker.tasks import TaskError, get_task


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_build_is_deterministic_and_rows_are_complete(task_id):
    task = get_task(task_id)
    size = small_size(task_id)
    a = raw_rows(build_dataset(task_id, n=3, seed=5, size=size, progress=False))
    b = raw_rows(build_dataset(task_id, n=3, seed=5, size=size, progress=False))
    assert a == b  # identical rows, byte-identical PNGs
    assert len(a) == 3
    for row in a:
        assert set(row) == set(COLUMNS)
        assert row["task"] == task.id and row["task_version"] == task.version
        assert row["level"] == task.default_level and row["prompt"] == task.prompt
        assert row["official"] is False and row["source"] == "generated" and row["official_id"] is None
        assert row["id"] == f"{task.id}_{task.default_level}_{row['seed']:06d}"
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", row["id"])
        # Any item can be regenerated alone from its (level, seed).
        inst = task.generate(row["level"], row["seed"])
        assert inst.to_json() == row["instance"] and task.content_hash(inst) == row["content_hash"]
        answer = task.answer_from_json(row["answer_json"])
        assert task.verify(inst, answer).correct and task.answer_to_text(answer) == row["answer"]
        expected_size = task.render(inst, size=size).size  # (jigsaw adds its 4 px gaps to the block area)
        for col in ("image", "solution_image"):
            with Image.open(io.BytesIO(row[col]["bytes"])) as img:
                assert img.format == "PNG" and img.size == expected_size and abs(img.size[0] - size) <= 16
    assert len({r["content_hash"] for r in a}) == 3
    assert [r["seed"] for r in a] == [5, 6, 7]  # no skips needed here
    # Another seed gives other puzzles.
    c = raw_rows(build_dataset(task_id, n=3, seed=50, size=size, progress=False))
    assert {r["content_hash"] for r in a}.isdisjoint(r["content_hash"] for r in c)


def test_num_proc_does_not_change_the_output():
    task_id = first_task()
    size = small_size(task_id)
    one = raw_rows(build_dataset(task_id, n=6, seed=0, size=size, num_proc=1, progress=False))
    two = raw_rows(build_dataset(task_id, n=6, seed=0, size=size, num_proc=2, progress=False))
    assert one == two


def test_exclude_drops_overlapping_items_and_still_gives_n(tmp_path):
    task_id = first_task()
    size = small_size(task_id)
    a = build_dataset(task_id, n=3, seed=0, size=size, progress=False)
    save_dataset(a, tmp_path / "a", make_manifest("dataset"))
    hashes = collect_hashes([tmp_path / "a"])
    assert hashes == set(a["content_hash"])
    stats = BuildStats()
    b = build_dataset(task_id, n=3, seed=0, size=size, exclude=hashes, progress=False, stats=stats)
    assert len(b) == 3
    assert hashes.isdisjoint(b["content_hash"])
    assert list(b["seed"]) == [3, 4, 5] and stats.excluded == 3


def test_duplicate_puzzles_are_skipped_deterministically(monkeypatch):
    task_id = first_task()
    task = get_task(task_id)
    original = type(task).generate
    # Seeds 2k and 2k+1 give the same puzzle: every second seed must be skipped as a duplicate.
    monkeypatch.setattr(task, "generate", lambda level, seed: original(task, level, seed // 2))
    stats = BuildStats()
    ds = build_dataset(task_id, n=3, seed=0, size=small_size(task_id), progress=False, stats=stats)
    assert list(ds["seed"]) == [0, 2, 4]
    assert stats.duplicates == 2 and len(set(ds["content_hash"])) == 3


def test_a_level_without_enough_distinct_puzzles_fails_clearly(monkeypatch):
    task_id = first_task()
    task = get_task(task_id)
    original = type(task).generate
    monkeypatch.setattr(task, "generate", lambda level, seed: original(task, level, 0))
    from diffthinker.data.build import BuildConfig, iter_rows
    cfg = BuildConfig(task=task.id, level=task.default_level, n=2, seed=0, size=small_size(task_id), max_skips=5)
    with pytest.raises(TaskError, match=r"found only 1 of 2 distinct"):
        list(iter_rows(task, cfg, progress=False))


@pytest.mark.parametrize("kwargs, match", [
    ({"level": "no-such-level"}, "no-such-level"),
    ({"n": 0}, "n must be a positive int"),
    ({"seed": -1}, "seed must be a non-negative int"),
    ({"size": 5000}, "size 5000"),
    ({"size": 8}, "size 8"),
])
def test_bad_build_arguments_raise_task_error(kwargs, match):
    task_id = first_task()
    args = {"n": 1, "seed": 0, "size": 512, **kwargs}
    with pytest.raises(TaskError, match=match):
        build_dataset(task_id, progress=False, **args)


def test_unknown_task_raises_task_error():
    with pytest.raises(TaskError, match="no-such-task"):
        build_dataset("no-such-task", n=1, progress=False)
