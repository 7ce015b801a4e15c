"""Head-to-head reports from two small runs: markdown table with both systems, plots, example pictures."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from diffthinker.compare import compare_runs, comparison_table
from diffthinker.evaluate import (
    evaluate_images,
    evaluate_solver,
    load_run,
    make_run,
    write_run,
)
from diffthinker.inference import load_items
from diffthinker.tasks import get_task
from diffthinker.tasks.base import TaskError

from .helpers import SeededTextSolver


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, maze_data):
    root = tmp_path_factory.mktemp("runs")
    items = load_items(maze_data)
    solver = SeededTextSolver(name="texty")
    for it in items:
        solver.register(it.task, it.instance, it.image)
    records, shots = evaluate_solver(solver, items, samples=[1, 4], select=["verifier", "vote"], examples=2)
    a = write_run(root / "texty.json", make_run({"name": "texty", "kind": "mllm"}, maze_data,
                                                {"samples": [1, 4]}, records), shots)
    # a second system: a folder of images, half of them exact solutions, the rest missing
    task = get_task("maze")
    folder = root / "drawn"
    folder.mkdir()
    for it in items[::2]:
        task.render(it.instance, task.solve(it.instance), size=64).save(folder / f"{it.id}.png")
    records, shots = evaluate_images(maze_data, folder, examples=2)
    b = write_run(root / "drawn.json", make_run({"name": "drawn", "kind": "images", "images": str(folder)},
                                                maze_data, {}, records), shots)
    return a, b, len(items)


def test_compare_writes_table_plots_and_pictures(tmp_path, two_runs):
    a, b, n = two_runs
    out = compare_runs([a, b], tmp_path / "cmp")
    readme = (out / "README.md").read_text()
    assert "texty N=1 verifier" in readme and "texty N=4 vote" in readme and "drawn N=1 given" in readme
    # the drawn system solved every other item: its accuracy cell is exact
    solved = (n + 1) // 2
    assert f"{100 * solved / n:.1f}%" in readme
    assert "Warning" not in readme  # same items in both runs
    for name in ("accuracy_per_level.png", "accuracy_vs_samples.png", "accuracy_vs_seconds.png",
                 "examples_maze-v1.png"):
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.width > 200 and im.height > 100
        assert f"({name})" in readme
    assert "Not in the seconds plot" in readme and "drawn" in readme.split("Not in the seconds plot")[1]
    table = json.loads((out / "comparison.json").read_text())
    assert table["systems"] == ["texty", "drawn"]
    assert ["drawn", 1, "given"] in table["accuracy"]["columns"]


def test_comparison_table_values(two_runs):
    a, b, n = two_runs
    runs = [load_run(a), load_run(b)]
    table = comparison_table(runs)
    (row,) = table["rows"]
    assert row["task"] == "maze-v1" and row["level"] == "4"
    cols = [tuple(c) for c in table["columns"]]
    assert cols == [("texty", 1, "verifier"), ("texty", 1, "vote"), ("texty", 4, "verifier"), ("texty", 4, "vote"),
                    ("drawn", 1, "given")]
    assert row["values"][-1] == pytest.approx(((n + 1) // 2) / n)
    # verifier selection over 4 samples is never below one sample
    assert row["values"][2] >= row["values"][0]


def test_compare_flags_different_test_sets_and_bad_input(tmp_path, two_runs, tsp_data, maze_data):
    a, _, _ = two_runs
    run = load_run(a)
    # the same system on a subset of the items: not the same test set
    subset = dict(run, items=[r for r in run["items"] if not r["id"].endswith("000000")])
    subset.pop("_path")
    other = write_run(tmp_path / "subset.json", subset)
    out = compare_runs([a, other], tmp_path / "cmp")
    readme = (out / "README.md").read_text()
    assert "Warning: the runs did not score the same items for maze-v1" in readme
    assert "texty (2)" in readme  # same system name twice: made unique
    with pytest.raises(TaskError, match="already exists"):
        compare_runs([a], tmp_path / "cmp")
    with pytest.raises(TaskError, match="run file not found"):
        compare_runs([tmp_path / "none.json"], tmp_path / "cmp2")
