"""benchmarks/sweep_sampler.py: at the checkpoint's own shift and 20 steps it reproduces `diffthinker eval`
puzzle by puzzle; another shift really reaches the sampler and is undone afterwards; bad settings are refused."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from script_modules import load_script

from diffthinker import cli
from diffthinker.tasks import TaskError

ROOT = Path(__file__).resolve().parents[1]
JIGSAW = ROOT / "checkpoints" / "diffthinker-small-jigsaw"
MLLM = ROOT / "checkpoints" / "mllm-tiny-jigsaw-sft"

ss = load_script("benchmarks/sweep_sampler.py")


@pytest.mark.parametrize("text", ["3", "a:20", "3:0", "0:20", "3:20:1"])
def test_bad_settings_name_the_value(text):
    with pytest.raises(argparse.ArgumentTypeError, match=repr(text).replace("[", r"\[")):
        ss.parse_setting(text)
    assert ss.parse_setting("2.5:10") == (2.5, 10)


@pytest.mark.skipif(not (JIGSAW / "model_index.json").is_file(), reason="shipped jigsaw checkpoint absent")
def test_own_setting_reproduces_eval_and_other_shifts_change_the_samples(tmp_path, capsys):
    data, run_json, out_json = tmp_path / "jigsaw_2x2", tmp_path / "run.json", tmp_path / "sweep.json"
    assert cli.main(["generate", "--task", "jigsaw", "--level", "2x2", "--n", "4", "--seed", "5", "--size", "96",
                     "--out", str(data), "--quiet"]) == 0
    assert cli.main(["eval", "--checkpoint", str(JIGSAW), "--data", str(data), "--samples", "1",
                     "--json", str(run_json), "--quiet"]) == 0
    capsys.readouterr()
    own = json.loads((JIGSAW / "scheduler" / "scheduler_config.json").read_text())["shift"]
    assert ss.main(["--checkpoint", str(JIGSAW), "--data", str(data), "--setting", f"{own}:20",
                    "--setting", "0.05:20", "--setting", f"{own}:20", "--json", str(out_json)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed == json.loads(out_json.read_text())
    first, squeezed, again = printed
    evaluated = "".join("1" if it["correct"] else "0" for it in json.loads(run_json.read_text())["items"])
    assert first["outcomes"] == evaluated and first["correct"] == evaluated.count("1")
    assert again == {**first, "seconds": again["seconds"]}          # the shift was put back after each setting
    # the shift really reaches the sampler: 0.05 jumps from pure noise to almost none after the first step
    assert len(first["sigmas"]) == len(squeezed["sigmas"]) == 21 and first["sigmas"][0] == squeezed["sigmas"][0] == 1
    assert squeezed["sigmas"][1] < 0.5 < first["sigmas"][1]


@pytest.mark.skipif(not (MLLM / "diffthinker_policy.json").is_file(), reason="shipped MLLM checkpoint absent")
def test_an_mllm_checkpoint_is_refused(tmp_path):
    with pytest.raises(TaskError, match="not a diffusion checkpoint"):
        ss.sweep(MLLM, tmp_path, [(3.0, 20)])
