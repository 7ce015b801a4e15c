"""Import of the official DiffThinker samples, export back to the published layout, and exclusion against them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from datahelpers import FIXTURES, TASK_IDS, raw_rows
from diffthinker.cli import verify_rows
from diffthinker.data import (build_dataset, collect_hashes, export_official, find_official_folders,
                              import_official, load_dataset, make_manifest, read_official_tree, save_dataset)
from diffthinker.data.official import copy_task_sources, layout_name
from diffthinker.tasks import TaskError, get_task, list_tasks

#: The official ids in tests/fixtures/diffthinker_samples, per task name (VSP maps and VisPuzzle add more ids
#: to frozenlake and jigsaw; their naming is the task's own).
EXPECTED = {
    "maze": ({"8_1_001", "8_21_003", "16_33_002"}, 3),
    "tsp": ({"16_12_001", "16_12_002"}, 2),
    "sudoku": ({"45_001", "45_002"}, 2),
    "jigsaw": ({"2x2_00001", "2x2_00002", "3x3_00001"}, None),
    "frozenlake": ({"16_1_0.8_001", "16_33_0.8_002"}, 5),  # + VSP level3 (2) and level6 (1)
}

#: One single-level official folder per task, for the export round trip.
SINGLE = {"maze": "Maze/8_test", "tsp": "TSP/12_test", "sudoku": "Sudoku/45_test", "jigsaw": "Jigsaw/2x2_test",
          "frozenlake": "FrozenLake/16_test"}


def _task_names():
    return sorted(get_task(t).name for t in TASK_IDS)


@pytest.fixture(scope="module")
def imported():
    if not TASK_IDS:
        pytest.skip("no task registered yet")
    return import_official(FIXTURES, progress=False)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_import_keeps_ids_counts_flags_and_image_bytes(imported, name):
    if f"{name}-v1" not in list_tasks():
        pytest.skip(f"task {name} not registered yet")
    task = get_task(name)
    rows = [r for r in raw_rows(imported) if r["task"] == task.id]
    ids, count = EXPECTED[name]
    official_ids = {r["official_id"] for r in rows}
    assert ids <= official_ids
    if count is not None:
        assert len(rows) == count
    paths = {item.item_id: item for t, _, items in read_official_tree(FIXTURES, name) for item in items}
    for row in rows:
        assert row["official"] is True and row["seed"] is None
        assert row["source"].startswith("official:") and row["id"] == f"{task.id}_{row['official_id']}"
        assert row["prompt"] == task.prompt and row["level"] in task.levels
        item = paths[row["official_id"]]
        # The official files' bytes, as they are (not re-rendered, not re-encoded).
        assert row["image"]["bytes"] == item.problem_image.read_bytes()
        if item.solution_image is None:
            assert row["solution_image"] is None
        else:
            assert row["solution_image"]["bytes"] == item.solution_image.read_bytes()
        assert task.instance_from_json(row["instance"]) == item.instance
        assert task.content_hash(item.instance) == row["content_hash"]
        if item.answer is not None:
            assert task.answer_from_json(row["answer_json"]) == item.answer


def test_every_official_solution_verifies_and_no_problem_image_does(imported, tmp_path):
    records = list(verify_rows(imported))
    with_solution = [r for r in records if r["status"] != "missing"]
    assert with_solution and all(r["status"] == "correct" for r in with_solution), \
        [r for r in with_solution if r["status"] != "correct"]
    # The same items with their problem images in place of solutions: none may verify.
    folder = tmp_path / "problems"
    folder.mkdir()
    for row in raw_rows(imported):
        (folder / f"{row['id']}.png").write_bytes(row["image"]["bytes"])
    records = list(verify_rows(imported, folder))
    assert len(records) == len(imported) and not any(r["status"] == "correct" for r in records)


def test_layout_names_and_tree_search():
    if "maze-v1" not in TASK_IDS:
        pytest.skip("uses the maze fixtures")
    found = find_official_folders(FIXTURES / "Maze")
    assert [(t.id, layout_name(t, p)) for t, p in found] == [("maze-v1", "Maze/16_test"), ("maze-v1", "Maze/8_test")]
    single = find_official_folders(FIXTURES / "Maze" / "8_test")
    assert [p.name for _, p in single] == ["8_test"]


def test_folders_of_no_or_the_wrong_task_are_errors(tmp_path):
    if "maze-v1" not in TASK_IDS:
        pytest.skip("uses the maze fixtures")
    (tmp_path / "Random" / "stuff").mkdir(parents=True)
    with pytest.raises(TaskError, match=r"Random holds no official DiffThinker test folder.*maze-v1: "):
        import_official(tmp_path / "Random", progress=False)
    with pytest.raises(TaskError, match=r"not found: .*nowhere"):
        import_official(tmp_path / "nowhere", progress=False)
    other = next((t for t in TASK_IDS if t != "maze-v1" and get_task(t).official_patterns), None)
    if other is not None:
        with pytest.raises(TaskError, match=rf"8_test is a maze-v1 layout, not {other}"):
            import_official(FIXTURES / "Maze" / "8_test", task=other, progress=False)


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_export_round_trips_through_read_official(tmp_path, name):
    if f"{name}-v1" not in list_tasks():
        pytest.skip(f"task {name} not registered yet")
    task = get_task(name)
    src = FIXTURES / SINGLE[name]
    ds = import_official(src, progress=False)
    save_dataset(ds, tmp_path / "ds", make_manifest("dataset"),
                 fill=lambda d: copy_task_sources(read_official_tree(src), d))
    ds = load_dataset(tmp_path / "ds")
    out = tmp_path / "export" / SINGLE[name]
    out.parent.mkdir(parents=True)
    export_official(ds, out, size=512, manifest=make_manifest("official-layout"))
    back = {it.item_id: it for it in task.read_official(out)}
    assert sorted(back) == sorted(ds["official_id"])
    for row in ds:
        item = back[row["official_id"]]
        if name != "jigsaw":  # a jigsaw instance names its problem file, which is now the exported one
            assert item.instance == task.instance_from_json(row["instance"])
        if row["answer_json"] is not None:
            assert item.answer == task.answer_from_json(row["answer_json"])
        # Re-rendered at 512, the exported problem image has the official pixels where the task reproduces them.
        if name in ("maze", "tsp", "sudoku"):
            with Image.open(item.problem_image) as ours:
                assert np.array_equal(np.asarray(ours.convert("RGB")), np.asarray(row["image"].convert("RGB")))


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_generated_export_round_trips(tmp_path, task_id):
    task = get_task(task_id)
    ds = build_dataset(task_id, n=2, seed=0, size=256 if 256 in task.supported_sizes else 512, progress=False)
    export_official(ds, tmp_path / "out", size=256)
    back = {it.item_id: it for it in task.read_official(tmp_path / "out")}
    assert sorted(back) == [f"{task.default_level}_{s:06d}" for s in (0, 1)]
    for row in ds:
        item = back[f"{row['level']}_{row['seed']:06d}"]
        assert item.answer == task.answer_from_json(row["answer_json"])
        if task.name != "jigsaw":  # a jigsaw instance read back names the exported problem file as its source
            assert item.instance == task.instance_from_json(row["instance"])


def test_exclude_accepts_an_official_folder():
    if "maze-v1" not in TASK_IDS:
        pytest.skip("uses the maze fixtures")
    hashes = collect_hashes([FIXTURES / "Maze"])
    official = import_official(FIXTURES / "Maze", progress=False)
    assert hashes == set(official["content_hash"]) and len(hashes) == 3
