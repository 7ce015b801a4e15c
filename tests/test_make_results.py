"""benchmarks/make_results.py: the plan and its filters, the never-trained-on check against the shipped maze-8
model card, and a tiny end-to-end run (2 puzzles, the shipped checkpoint, the real CLI in this process) whose
markdown must carry the eval JSON's own numbers and be reused, not recomputed, on a second run."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from script_modules import load_script

from diffthinker import cli

ROOT = Path(__file__).resolve().parents[1]
MAZE8 = ROOT / "checkpoints" / "diffthinker-tiny-maze8"


mr = load_script("benchmarks/make_results.py")
needs_maze8 = pytest.mark.skipif(not (MAZE8 / "model_index.json").is_file(), reason="shipped maze-8 checkpoint absent")


def test_plan_is_valid_and_only_selects_rows():
    mr.check_plan(mr.PLAN)
    rows = mr.parse_only(["maze:8"])
    assert [(tp.task, lv) for tp, lv in rows] == [("maze", "8")]
    assert [lv for _, lv in mr.parse_only(["frozenlake-v1"])] == ["vsp3", "vsp4", "vsp5", "vsp6", "vsp7", "vsp8"]
    assert [(tp.task, lv) for tp, lv in mr.parse_only(["jigsaw:3x3,maze"])] == [("maze", "8"), ("jigsaw", "3x3")]
    assert len(mr.parse_only([])) == sum(len(tp.levels) for tp in mr.PLAN)
    with pytest.raises(mr.PlanError, match=r"level '16' is not planned for maze"):
        mr.parse_only(["maze:16"])
    with pytest.raises(mr.PlanError, match=r"task 'chess' is not in the plan"):
        mr.parse_only(["chess"])
    bad = mr.TaskPlan("maze", ("8", "9x9"), "a", "b", "c")
    with pytest.raises(mr.PlanError, match=r"maze has no level '9x9'"):
        mr.check_plan([bad])


def _generate(out: Path, seed: int, n: int = 3) -> Path:
    assert cli.main(["generate", "--task", "maze", "--level", "8", "--n", str(n), "--seed", str(seed), "--size", "64",
                     "--out", str(out), "--quiet"]) == 0
    return out


@needs_maze8
def test_never_trained_check_against_the_model_card(tmp_path):
    cache = tmp_path / "cache"
    held_out = mr.dataset_hashes(_generate(tmp_path / "seed0", 0))
    ok, text = mr.check_never_trained("diffusion", MAZE8, held_out, cache)
    assert ok is True and "all 3 test puzzles never trained on" in text and "reproduces the fingerprint" in text
    # puzzles past the validation seeds (0..199) are not in what the card says it never trained on
    other = mr.dataset_hashes(_generate(tmp_path / "seed500", 500))
    ok, text = mr.check_never_trained("diffusion", MAZE8, other, cache)
    assert ok is False and "OVERLAP: 3 of 3" in text
    # a card whose fingerprint does not match its seeds, or that lacks the lines, cannot vouch for anything
    card = (MAZE8 / "README.md").read_text()
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "README.md").write_text(card.replace("seeds maze-v1:8: 0..199 (200)", "seeds maze-v1:8: 1..200 (200)"))
    ok, text = mr.check_never_trained("diffusion", fake, held_out, cache)
    assert ok is None and "does not reproduce the card's fingerprint" in text
    (fake / "README.md").write_text(re.sub(r"^- validation set:.*$", "", card, flags=re.MULTILINE))
    ok, text = mr.check_never_trained("diffusion", fake, held_out, cache)
    assert ok is None and "lacks the 'never trained on' or 'validation set' line" in text


def _policy(folder: Path, eval_seed: int, init: str = "tiny") -> Path:
    """A policy folder's training record (what ``mllm_baselines`` saves beside the weights; the check reads only it)."""
    folder.mkdir()
    config = {"model": {"name_or_path": init}, "data": {"levels": ["maze:8"], "exclude": []},
              "eval": {"levels": None, "n": 4, "seed": eval_seed}}
    (folder / mr.MLLM_MARKER).write_text(json.dumps({"format": "diffthinker-policy", "training": {"config": config}}))
    return folder


def test_never_trained_check_of_an_mllm_policy_follows_its_init(tmp_path):
    from diffthinker.tasks import get_task

    task = get_task("maze")
    test = [task.content_hash(task.generate("8", s)) for s in range(3)]
    sft = _policy(tmp_path / "sft", eval_seed=0)
    ok, text = mr.check_never_trained("mllm", sft, test)
    assert ok is True and "evaluation set ['maze:8'] n=4 seed=0" in text
    # an RL run that held out the test set, started from an SFT policy that did not: not clean
    other_sft = _policy(tmp_path / "other_sft", eval_seed=100)
    ok, text = mr.check_never_trained("mllm", _policy(tmp_path / "rl", 0, init=str(other_sft)), test)
    assert ok is False and "OVERLAP: 3 of 3" in text and "started from" in text
    # the SFT run's folder gone (runs/ is not committed): its shipped copy beside the RL policy is followed instead
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    gone = tmp_path / "runs" / "sft" / "policy"
    copy = _policy(shipped / "mllm-sft", eval_seed=100)
    (copy / "README.md").write_text(f"Copied from `{gone}` by `training/ship_checkpoint.py`.\n")
    ok, text = mr.check_never_trained("mllm", _policy(shipped / "mllm-rl", 0, init=str(gone)), test)
    assert ok is False and "OVERLAP: 3 of 3" in text and "its shipped copy" in text
    (copy / "README.md").write_text("Copied from `somewhere/else` by `training/ship_checkpoint.py`.\n")
    ok, text = mr.check_never_trained("mllm", shipped / "mllm-rl", test)
    assert ok is True and f"started from {gone}, not a saved policy on this machine" in text
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / mr.MLLM_MARKER).write_text(json.dumps({"format": "diffthinker-policy"}))
    ok, text = mr.check_never_trained("mllm", tmp_path / "bare", test)
    assert ok is None and "holds no training.config" in text


@needs_maze8
def test_end_to_end_small_run_then_reuse(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(mr, "SAMPLES", (1, 2))  # an edited plan: N=2 keeps the test to 6 model rows
    # the plan's maze row with the shipped diffusion checkpoint only, and a row none of whose checkpoints exists:
    # the document must not depend on which other checkpoints are shipped when the test runs
    absent = str(tmp_path / "absent")
    maze = next(tp for tp in mr.PLAN if tp.task == "maze")
    lake = next(tp for tp in mr.PLAN if tp.task == "frozenlake")
    monkeypatch.setattr(mr, "PLAN", (dataclasses.replace(maze, mllm_sft=absent + "-sft", mllm_rl=absent + "-rl"),
                                     dataclasses.replace(lake, diffusion=absent, mllm_sft=absent, mllm_rl=absent)))
    doc = tmp_path / "docs" / "RESULTS.md"
    doc.parent.mkdir()
    no_official = tmp_path / "official"  # (the official samples cost one more eval; the dry run covers them)
    no_official.mkdir()
    argv = ["--only", "maze:8", "--n", "2", "--threads", "1", "--cache-dir", str(tmp_path / "cache"),
            "--out-doc", str(doc), "--official-root", str(no_official)]
    assert mr.main(argv, in_process=True) == 0
    err = capsys.readouterr().err
    text = doc.read_text()
    run = json.loads((tmp_path / "cache" / "evals" / "maze_8" / "diffusion.json").read_text())
    rows = {(r["samples"], r["select"]): r for r in run["summary"]}
    assert run["command"][:2] == ["diffthinker", "eval"] and run["config"]["samples"] == [1, 2]
    # the summary row carries the eval JSON's numbers; the MLLM checkpoints are not shipped yet: pending
    n1, n8 = rows[(1, "verifier")], rows[(2, "verifier")]
    row = (f"| maze | 8 | 2 | {100 * n1['accuracy']:.1f}% ({n1['seconds_per_puzzle']:.2f} s) | "
           f"{100 * n8['accuracy']:.1f}% ({n8['seconds_per_puzzle']:.2f} s) | pending | pending |")
    assert row in text and "| diffusion N=2 verifier |" in text
    assert row in (doc.parent / "results" / "summary.md").read_text()
    assert "**PROVISIONAL.** n = 2 puzzles per level" in text
    assert "yes: all 2 test puzzles never trained on" in text
    assert "| maze | 8 | `Maze/8_test` | – | not in " in text
    assert "diffthinker eval --checkpoint checkpoints/diffthinker-tiny-maze8 --data" in text
    assert (doc.parent / "results" / "maze" / "8" / "accuracy_vs_samples.png").is_file()
    assert "| frozenlake | vsp3 | 2 | pending |" in text  # not selected, no checkpoint
    if any(s["status"] == "correct" for s in run["examples"]):
        assert (doc.parent / "results" / "maze" / "example_output.png").is_file()
    assert err.count("diffthinker eval") == 1 and "(3 commands run)" in err  # generate, eval, compare
    # a second run reuses every artefact: no command runs, the document is the same apart from its date
    stamp = (tmp_path / "cache" / "evals" / "maze_8" / "diffusion.json").stat().st_mtime
    assert mr.main(argv, in_process=True) == 0
    assert "(0 commands run)" in capsys.readouterr().err
    assert (tmp_path / "cache" / "evals" / "maze_8" / "diffusion.json").stat().st_mtime == stamp
    undated = re.compile(r" on \d{4}-\d\d-\d\d \d\d:\d\d UTC")
    assert undated.sub("", doc.read_text()) == undated.sub("", text)


def test_dry_run_prints_the_commands_and_writes_nothing(tmp_path, capsys):
    doc = tmp_path / "RESULTS.md"
    assert mr.main(["--dry-run", "--only", "jigsaw:2x2", "--n", "5", "--cache-dir", str(tmp_path / "c"),
                    "--out-doc", str(doc)], in_process=True) == 0
    err = capsys.readouterr().err
    assert "diffthinker generate --task jigsaw --level 2x2 --n 5 --seed 0 --size 96" in err  # the model's size
    assert "diffthinker import tests/fixtures/diffthinker_samples/Jigsaw/2x2_test" in err
    assert not doc.exists() and not (tmp_path / "c").exists()
    assert mr.main(["--only", "maze:99"]) == 2
    assert "level '99' is not planned for maze" in capsys.readouterr().err


def test_stand_in_checkpoint_must_be_a_checkpoint(tmp_path, capsys):
    assert mr.main(["--only", "maze:8", "--mllm-sft", str(tmp_path), "--dry-run"]) == 2
    assert "--mllm-sft" in capsys.readouterr().err


def test_readme_table_is_rewritten_between_its_markers_only(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nintro\n\n{mr.README_START}\n| old | table |\n{mr.README_END}\n\nafter\n")
    summary = "<!-- made by benchmarks/make_results.py; see docs/RESULTS.md -->\n\n| new | table |\n\nnotes\n"
    mr.write_readme_table(readme, summary)
    assert readme.read_text() == (f"# Title\n\nintro\n\n{mr.README_START}\n| new | table |\n\nnotes\n{mr.README_END}"
                                  "\n\nafter\n")
    mr.write_readme_table(readme, summary)  # idempotent
    assert readme.read_text().count("| new | table |") == 1
    # no markers: a clear error before any evaluation, and the file untouched
    bare = tmp_path / "BARE.md"
    bare.write_text("no markers here\n")
    with pytest.raises(mr.PlanError, match="no results-table markers"):
        mr.write_readme_table(bare, summary)
    assert mr.main(["--dry-run", "--only", "maze:8", "--readme", str(bare)], in_process=True) == 2
    assert "has no results-table markers" in capsys.readouterr().err
    assert bare.read_text() == "no markers here\n"


def test_the_readme_holds_the_results_table_markers():
    text = (mr.ROOT / "README.md").read_text()
    assert text.index(mr.README_START) < text.index(mr.README_END)


def test_the_plan_draws_each_test_set_at_its_checkpoints_resolution(tmp_path):
    mr.check_plan(mr.PLAN)  # the shipped plan agrees with the shipped checkpoints
    jigsaw = next(tp for tp in mr.PLAN if tp.task == "jigsaw")
    if not (mr.ROOT / jigsaw.diffusion / "denoiser" / "config.json").is_file():
        pytest.skip(f"{jigsaw.diffusion} is not shipped")
    with pytest.raises(mr.PlanError, match=r"size=64 px but .* is a 96 px model"):
        mr.check_plan([dataclasses.replace(jigsaw, size=64)])
