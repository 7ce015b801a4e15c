"""benchmarks/eval_breakdown.py: failure reasons folded into classes, and a real eval run (the shipped jigsaw
checkpoint on 3 generated puzzles, the real CLI) broken down by picture kind with the run's own counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from script_modules import load_script

from diffthinker import cli
from diffthinker.tasks import get_task
from diffthinker.tasks.sources import picture_kind

ROOT = Path(__file__).resolve().parents[1]
JIGSAW = ROOT / "checkpoints" / "diffthinker-small-jigsaw"


eb = load_script("benchmarks/eval_breakdown.py")


def test_reason_key_folds_instance_details_but_keeps_the_kind_of_miss():
    a = eb.reason_key("parse_failure", "parse failure: the block at position 2 matches no piece confidently "
                                       "(distance 31.2) and its label is unreadable (best correlation 0.10)")
    b = eb.reason_key("parse_failure", "parse failure: the block at position 4 matches no piece confidently "
                                       "(distance 9.0) and its label is unreadable (best correlation 0.52)")
    assert a == b == ("parse failure: the block at position # matches no piece confidently and its label is "
                      "unreadable")
    assert eb.reason_key("incorrect", "2 of 4 pieces misplaced") == "incorrect: 2 of 4 pieces misplaced"
    assert eb.reason_key("incorrect", "2 of 4 pieces misplaced") != eb.reason_key("incorrect", "4 of 4 pieces "
                                                                                              "misplaced")


@pytest.mark.skipif(not (JIGSAW / "model_index.json").is_file(), reason="shipped jigsaw checkpoint absent")
def test_breakdown_of_a_real_jigsaw_run(tmp_path, capsys):
    data, run_json = tmp_path / "jigsaw_2x2", tmp_path / "run.json"
    assert cli.main(["generate", "--task", "jigsaw", "--level", "2x2", "--n", "3", "--seed", "5", "--size", "96",
                     "--out", str(data), "--quiet"]) == 0
    assert cli.main(["eval", "--checkpoint", str(JIGSAW), "--data", str(data), "--samples", "1,2",
                     "--json", str(run_json), "--quiet"]) == 0
    capsys.readouterr()
    run = json.loads(run_json.read_text())
    task = get_task("jigsaw")
    kinds = [picture_kind(task.generate("2x2", seed).source) for seed in (5, 6, 7)]

    eb.main([str(run_json), "--samples", "1"])
    out = capsys.readouterr().out
    n1 = next(r for r in run["summary"] if r["samples"] == 1)
    assert f"#### jigsaw-v1 2x2, N=1 (verifier): {n1['correct']} of 3 correct" in out
    assert "N=2" not in out                                   # --samples keeps one N
    for kind in set(kinds):
        right = sum(it["correct"] for it, k in zip([i for i in run["items"] if i["samples"] == 1], kinds) if k == kind)
        count = kinds.count(kind)
        assert f"| {kind} | {right} | {count} | {100 * right / count:.1f}% |" in out
    misses = [i for i in run["items"] if i["samples"] == 1 and not i["correct"]]
    ids = [i["id"] for i in run["items"] if i["samples"] == 1]
    (group,) = eb.breakdown(run, dict(zip(ids, kinds)), samples=1).values()
    assert sum(group["reasons"].values()) == len(misses)
    for reason, count in group["reasons"].items():
        assert f"| {reason} | {count} |" in out
