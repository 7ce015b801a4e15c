"""`diffthinker solve / eval / compare` end to end on a tiny random pipeline saved with save_pretrained."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from diffthinker import cli


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_solve_writes_verifiable_outputs(tmp_path, capsys, pipeline_dir, maze_data):
    out = tmp_path / "solved"
    code, _, err = run(capsys, "solve", "--checkpoint", pipeline_dir, "--data", maze_data, "--samples", 3,
                       "--select", "verifier", "--steps", 2, "--batch-size", 4, "--save-trajectory",
                       "--save-candidates", "--out", out, "--quiet")
    assert code == 0, err
    assert "solved 6 puzzles with tiny (N=3, select verifier)" in err
    answers = json.loads((out / "answers.json").read_text())
    assert answers["format"] == "diffthinker-solve/1" and answers["config"]["samples"] == 3
    assert answers["solver"] == {"name": "tiny", "kind": "diffusion", "checkpoint": str(pipeline_dir)}
    ids = [r["id"] for r in answers["items"]]
    assert len(ids) == 6 and answers["summary"]["total"] == 6
    for rec in answers["items"]:
        assert (out / f"{rec['id']}.png").is_file() and len(rec["candidates"]) == 3
        assert rec["selected"] is not None and rec["verdict"] is not None and rec["seconds"] > 0
        assert sorted(p.name for p in (out / "candidates" / rec["id"]).iterdir()) == ["000.png", "001.png",
                                                                                     "002.png"]
        with Image.open(out / "trajectories" / f"{rec['id']}.gif") as gif:
            assert gif.n_frames == 2  # one predicted-clean frame per step (the output is the last one)
        with Image.open(out / "trajectories" / f"{rec['id']}.png") as strip:
            assert strip.width > 2 * 64 and strip.height > 64
    # `verify --images OUT` finds every output by item id and agrees with answers.json
    code, stdout, err = run(capsys, "verify", "--data", maze_data, "--images", out)
    assert code == 0, err
    report = json.loads(stdout)
    assert report["n"] == 6 and report["missing"] == 0
    assert report["correct"] == answers["summary"]["correct"]


def test_solve_is_reproducible_and_batch_size_independent(tmp_path, capsys, pipeline_dir, maze_data):
    base = ["solve", "--checkpoint", pipeline_dir, "--data", maze_data, "--samples", 2, "--steps", 2, "--quiet",
            "--select", "first"]
    assert run(capsys, *base, "--batch-size", 1, "--out", tmp_path / "a")[0] == 0
    assert run(capsys, *base, "--batch-size", 8, "--out", tmp_path / "b")[0] == 0
    assert run(capsys, *base, "--batch-size", 8, "--out", tmp_path / "c")[0] == 0
    import numpy as np

    names = sorted(p.name for p in (tmp_path / "a").glob("*.png"))
    assert len(names) == 6
    for name in names:
        b, c = ((tmp_path / d / name).read_bytes() for d in "bc")
        assert b == c  # same command, same bytes
        with Image.open(tmp_path / "a" / name) as x, Image.open(tmp_path / "b" / name) as y:
            assert np.abs(np.asarray(x, int) - np.asarray(y, int)).max() <= 1


def test_solve_bare_images(tmp_path, capsys, pipeline_dir, maze_data):
    from diffthinker.inference import load_items

    folder = tmp_path / "puzzles"
    folder.mkdir()
    for it in load_items(maze_data)[:2]:
        it.image.save(folder / f"{it.id}.png")
    out = tmp_path / "out"
    code, _, err = run(capsys, "solve", "--checkpoint", pipeline_dir, "--images", folder, "--task", "maze",
                       "--select", "first", "--steps", 1, "--out", out, "--quiet")
    assert code == 0, err
    assert sorted(p.name for p in out.glob("*.png")) == sorted(p.name for p in folder.glob("*.png"))
    code, _, err = run(capsys, "solve", "--checkpoint", pipeline_dir, "--images", folder, "--task", "maze",
                       "--out", tmp_path / "out2")
    assert code == 2 and "--select verifier needs puzzle instances" in err


def test_eval_and_compare(tmp_path, capsys, pipeline_dir, maze_data):
    code, _, err = run(capsys, "eval", "--checkpoint", pipeline_dir, "--data", maze_data, "--samples", "1,2",
                       "--select", "verifier,first", "--steps", 1, "--json", tmp_path / "model.json",
                       "--report", tmp_path / "model.md", "--quiet")
    assert code == 0, err
    run_json = json.loads((tmp_path / "model.json").read_text())
    assert {(r["samples"], r["select"]) for r in run_json["summary"]} == {(1, "verifier"), (1, "first"),
                                                                         (2, "verifier"), (2, "first")}
    assert all(r["n"] == 6 and r["seconds_per_puzzle"] > 0 for r in run_json["summary"])
    assert "| maze-v1 | 4 | 2 | verifier | 6 |" in (tmp_path / "model.md").read_text()
    # a folder of the dataset's own solution images, scored as another system
    code, _, err = run(capsys, "render", "--data", maze_data, "--out", tmp_path / "rendered", "--size", 64, "--quiet")
    assert code == 0, err
    given = tmp_path / "given"
    given.mkdir()
    for p in (tmp_path / "rendered").glob("*_solution.png"):
        p.rename(given / p.name.replace("_solution", ""))
    code, _, err = run(capsys, "eval", "--images", given, "--data", maze_data, "--name", "oracle",
                       "--json", tmp_path / "oracle.json")
    assert code == 0, err
    assert json.loads((tmp_path / "oracle.json").read_text())["summary"][0]["accuracy"] == 1.0
    code, _, err = run(capsys, "compare", tmp_path / "model.json", tmp_path / "oracle.json", "--out", tmp_path / "cmp")
    assert code == 0, err
    readme = (tmp_path / "cmp" / "README.md").read_text()
    assert "oracle N=1 given" in readme and "tiny N=2 verifier" in readme and "100.0%" in readme


@pytest.mark.parametrize("argv, message", [
    (["solve", "--checkpoint", "{tmp}/none", "--data", "{data}", "--out", "{tmp}/o"], "checkpoint not found"),
    (["solve", "--checkpoint", "{ckpt}", "--images", "{tmp}", "--out", "{tmp}/o"], "--images needs --task"),
    (["solve", "--checkpoint", "{ckpt}", "--data", "{data}", "--task", "maze", "--out", "{tmp}/o"],
     "--task goes with --images"),
    (["solve", "--checkpoint", "{ckpt}", "--data", "{data}", "--out", "{data}"], "already exists"),
    (["eval", "--images", "{tmp}", "--data", "{data}", "--samples", "4", "--json", "{tmp}/r.json"],
     "--samples need a model"),
    (["eval", "--images", "{tmp}", "--data", "{data}", "--temperature", "0", "--json", "{tmp}/r.json"],
     "--temperature need a model"),
    (["eval", "--checkpoint", "{ckpt}", "--data", "{data}", "--temperature", "0", "--json", "{tmp}/r.json"],
     "applies to MLLM policies"),
    (["eval", "--checkpoint", "{ckpt}", "--data", "{data}", "--json", "{tmp}/no/r.json"], "--json: parent folder"),
    (["compare", "{tmp}/none.json", "--out", "{tmp}/c"], "run file not found"),
])
def test_errors_exit_2_with_one_line(tmp_path, capsys, pipeline_dir, maze_data, argv, message):
    argv = [a.format(tmp=tmp_path, data=maze_data, ckpt=pipeline_dir) for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2
    lines = [line for line in err.strip().splitlines() if "error:" in line]
    assert len(lines) == 1 and message in lines[0], err


def test_bad_sample_lists_are_usage_errors(capsys, tmp_path):
    code, _, err = run(capsys, "eval", "--checkpoint", tmp_path, "--data", tmp_path, "--samples", "1,x",
                       "--json", tmp_path / "r.json")
    assert code == 2 and "comma-separated positive integers" in err
    code, _, err = run(capsys, "eval", "--checkpoint", tmp_path, "--data", tmp_path, "--select", "best",
                       "--json", tmp_path / "r.json")
    assert code == 2 and "comma-separated rules" in err
