"""The evaluation harness: denominators (every item counts), N and rule configurations, TSP gaps, text solvers."""

from __future__ import annotations

import json
import shutil

import pytest

from diffthinker import cli
from diffthinker.evaluate import (
    evaluate_images,
    evaluate_solver,
    load_run,
    make_run,
    markdown_report,
    write_run,
)
from diffthinker.inference import load_items, sample_seeds, solve
from diffthinker.tasks import get_task
from diffthinker.tasks.base import TaskError

from .helpers import SeededTextSolver, wrong_answer


def text_solver_for(items):
    solver = SeededTextSolver()
    for it in items:
        solver.register(it.task, it.instance, it.image)
    return solver


def test_text_candidates_are_parsed_with_parse_text(maze_data):
    items = load_items(maze_data)
    solver = text_solver_for(items)
    ids = [it.id for it in items]
    res = solve(solver, "maze", [it.instance for it in items], [it.image for it in items], num_samples=6,
                select="verifier", seed=0, item_ids=ids)
    seeds = sample_seeds(0, ids, 6)
    for r, row in zip(res, seeds):
        for c, s in zip(r.candidates, row):
            assert c.raw.text is not None and c.seed == s
            assert c.parsed == (s % 4 != 1)            # junk text is a parse failure
            assert c.verdict.correct == (s % 2 == 0)   # the solver's exact answer
        # verifier selection finds a correct sample whenever one exists; first takes sample 0
        assert r.correct == any(s % 2 == 0 for s in row)
    first = solve(solver, "maze", [it.instance for it in items], [it.image for it in items], num_samples=6,
                  select="first", seed=0, item_ids=ids)
    assert [r.correct for r in first] == [row[0] % 2 == 0 for row in seeds]


def test_evaluate_solver_configs_and_tsp_gaps(tsp_data):
    items = load_items(tsp_data)
    solver = text_solver_for(items)
    records, shots = evaluate_solver(solver, items, samples=[4, 1], select=["verifier", "vote", "first"], seed=0,
                                     examples=2)
    assert len(records) == len(items) * 2 * 3
    seeds = {it.id: row for it, row in zip(items, sample_seeds(0, [it.id for it in items], 4))}
    run = make_run({"name": "text", "kind": "mllm"}, tsp_data, {}, records)
    summary = {(r["level"], r["samples"], r["select"]): r for r in run["summary"]}
    assert set(summary) == {("6", n, s) for n in (1, 4) for s in ("verifier", "vote", "first")}
    n = len(items)
    # N=1: every rule takes the only sample, whose correctness the seed decides
    expect1 = sum(seeds[i][0] % 2 == 0 for i in seeds)
    assert all(summary[("6", 1, s)]["correct"] == expect1 for s in ("verifier", "vote", "first"))
    # N=4 verifier: correct iff some sample is (the wrong answers are valid but longer tours)
    expect4 = sum(any(s % 2 == 0 for s in seeds[i]) for i in seeds)
    row = summary[("6", 4, "verifier")]
    assert row["correct"] == expect4 and row["oracle_accuracy"] == expect4 / n and row["n"] == n
    assert summary[("6", 4, "first")]["correct"] == expect1
    # parse failures: sample 0 is junk when its seed is 1 mod 4
    assert summary[("6", 1, "first")]["parse_failures"] == sum(seeds[i][0] % 4 == 1 for i in seeds)
    # TSP gap distribution over the valid selected tours: zero for optimal ones, positive for the index-order tour
    task = get_task("tsp")
    expected = []
    for it in items:
        s0 = seeds[it.id][0]
        if s0 % 4 == 1:
            continue  # junk text: no tour
        answer = task.solve(it.instance) if s0 % 2 == 0 else wrong_answer(task, it.instance)
        expected.append(task.verify(it.instance, answer).details["gap"])
    gap = summary[("6", 1, "first")]["tsp_gap"]
    assert gap["count"] == len(expected) and gap["gaps"] == pytest.approx(expected, abs=1e-6)
    assert any(g > 0.01 for g in expected)  # the index-order tours are measurably longer
    assert gap["max"] == pytest.approx(max(expected), abs=1e-6) and gap["max"] >= gap["p90"] >= gap["median"] >= 0
    # per item, the verifier's tour (shortest valid of 4) is never longer than the first sample's valid tour
    by = {(r["id"], r["samples"], r["select"]): r for r in records}
    for it in items:
        first_gap, best_gap = by[(it.id, 4, "first")]["gap"], by[(it.id, 4, "verifier")]["gap"]
        if first_gap is not None:
            assert best_gap is not None and best_gap <= first_gap + 1e-9
    # examples: up to 2 solved and 2 failed, from the headline configuration (N=4, verifier)
    assert 1 <= len(shots) <= 4 and all(s["problem_png"].startswith(b"\x89PNG") for s in shots)
    assert all("output_text" in s for s in shots)
    report = markdown_report(run)
    assert "| tsp-v1 | 6 | 4 | verifier |" in report and "optimality gap" in report


def test_evaluate_images_every_item_counts(tmp_path, maze_data):
    ds_items = load_items(maze_data)
    task = get_task("maze")
    folder = tmp_path / "outputs"
    folder.mkdir()
    # items 0-2: the exact solutions; 3: a wrong drawing (the problem image); 4: unreadable bytes; 5: missing
    for it in ds_items[:3]:
        task.render(it.instance, task.solve(it.instance), size=64).save(folder / f"{it.id}.png")
    ds_items[3].image.save(folder / f"{ds_items[3].id}.jpg")
    (folder / f"{ds_items[4].id}.png").write_bytes(b"not an image")
    records, _ = evaluate_images(maze_data, folder, examples=2)
    statuses = [r["status"] for r in records]
    assert statuses[:3] == ["correct"] * 3 and statuses[3] in ("parse_failure", "incorrect")
    assert statuses[4:] == ["unreadable", "missing"]
    run = make_run({"name": "given", "kind": "images", "images": str(folder)}, maze_data, {}, records)
    (row,) = run["summary"]
    assert row["n"] == 6 and row["correct"] == 3 and row["accuracy"] == 0.5  # the denominator is every item
    assert row["missing"] == 1 and row["unreadable"] == 1 and row["seconds_per_puzzle"] is None
    # the same numbers as `diffthinker verify`
    code = cli.main(["verify", "--data", str(maze_data), "--images", str(folder)])
    assert code == 0
    with pytest.raises(TaskError, match="--images folder not found"):
        evaluate_images(maze_data, tmp_path / "nope")


def test_run_files_round_trip(tmp_path, maze_data):
    items = load_items(maze_data)
    records, shots = evaluate_solver(text_solver_for(items), items, samples=[2], select=["verifier"], examples=1)
    run = make_run({"name": "t", "kind": "mllm"}, maze_data, {"samples": [2]}, records)
    path = write_run(tmp_path / "run.json", run, shots)
    back = load_run(path)
    assert back["summary"] == json.loads(json.dumps(run["summary"]))
    for ex in back["examples"]:
        assert (tmp_path / ex["problem"]).is_file() and "problem_png" not in ex
    (tmp_path / "other.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(TaskError, match="is not an evaluation run"):
        load_run(tmp_path / "other.json")
    with pytest.raises(TaskError, match="run file not found"):
        load_run(tmp_path / "missing.json")
    shutil.rmtree(tmp_path / "run_examples")


def test_evaluate_solver_refuses_what_it_cannot_score(maze_data):
    items = load_items(maze_data)
    solver = SeededTextSolver(tasks=["tsp-v1"])
    with pytest.raises(TaskError, match="does not solve task 'maze-v1'"):
        evaluate_solver(solver, items)
    with pytest.raises(TaskError, match="--samples must be positive"):
        evaluate_solver(text_solver_for(items), items, samples=[0])
    with pytest.raises(TaskError, match="no items"):
        evaluate_solver(text_solver_for(items), [])


def test_load_items_keeps_images_encoded_and_redraws_at_the_model_size(maze_data):
    task = get_task("maze")
    (stored,) = load_items(maze_data)[:1]
    assert isinstance(stored.source, bytes) and stored.image.size == (64, 64)
    (item,) = load_items(maze_data, size=128)[:1]
    # drawn natively from the instance at the model's size, not upscaled
    assert item.image.size == (128, 128)
    assert item.image.tobytes() == task.render(item.instance, size=128).tobytes()
    # a size the level cannot be drawn at: the stored image is kept (the solver resizes it)
    (odd,) = load_items(maze_data, size=16)[:1]
    assert odd.image.tobytes() == stored.image.tobytes()
