"""benchmarks/bench_diffusion.py: the overrides a benchmark run adds to a training config, and the record
``--report --write`` rebuilds from a run directory (one tiny real run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from script_modules import load_script

from diffthinker.diffusion.training import load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "training" / "configs"


bench = load_script("benchmarks/bench_diffusion.py")


def _cfg(config: Path, extra: list[str], tmp_path: Path, resume: bool = False):
    return load_config(config, bench.run_overrides(config, tmp_path / "run", 30.0, 100, 250, extra, resume))


def test_a_constant_lr_run_is_ended_by_the_minutes_budget(tmp_path):
    cfg = _cfg(CONFIGS / "tiny_cpu_maze8.yaml", [], tmp_path)
    assert cfg.optim.lr_scheduler == "constant"
    assert cfg.max_steps == 1_000_000 and cfg.max_minutes == 30.0
    assert (cfg.output_dir, cfg.eval.n, cfg.eval.every, cfg.checkpoint.every) == (str(tmp_path / "run"), 100, 250, 250)


def test_a_decaying_schedule_keeps_the_configs_max_steps(tmp_path):
    # the trap this guards: a cosine stretched over a million steps trains at the peak lr throughout
    yaml_steps = load_config(CONFIGS / "small_cpu_jigsaw.yaml", []).max_steps
    cfg = _cfg(CONFIGS / "small_cpu_jigsaw.yaml", ["data.num_seeds=10000"], tmp_path)
    assert cfg.optim.lr_scheduler == "cosine" and cfg.max_steps == yaml_steps != 1_000_000
    assert cfg.data.num_seeds == 10000


def test_the_command_lines_overrides_win(tmp_path):
    assert _cfg(CONFIGS / "small_cpu_jigsaw.yaml", ["max_steps=500"], tmp_path).max_steps == 500
    assert _cfg(CONFIGS / "tiny_cpu_maze8.yaml", ["max_steps=700"], tmp_path).max_steps == 700
    # switching a decaying config to constant lr hands the horizon back to the budget, and the reverse
    assert _cfg(CONFIGS / "small_cpu_jigsaw.yaml", ["optim.lr_scheduler=constant"], tmp_path).max_steps == 1_000_000
    maze_steps = load_config(CONFIGS / "tiny_cpu_maze8.yaml", []).max_steps
    assert _cfg(CONFIGS / "tiny_cpu_maze8.yaml", ["optim.lr_scheduler=linear"], tmp_path).max_steps == maze_steps
    assert _cfg(CONFIGS / "tiny_cpu_maze8.yaml", [], tmp_path, resume=True).checkpoint.resume == "latest"


def test_report_write_records_a_stopped_run(tmp_path, monkeypatch):
    # a real (tiny) run that stops after 2 steps without exporting: what a run stopped by hand leaves behind
    from accelerate.state import AcceleratorState, GradientState

    from diffthinker.diffusion.training import train

    run = tmp_path / "run"
    cfg = load_config(None, [
        "model.overrides={num_layers: 1, num_attention_heads: 2, attention_head_dim: 16, patch_size: 16}",
        "data.levels=[maze:4]", "data.batch_size=4", "report_to=none", "progress=false", "num_threads=1",
        "eval.n=2", "eval.num_inference_steps=2", "eval.num_images=1", "eval.every=2", "eval.at_end=false",
        "export=false", "max_steps=2", "checkpoint.every=2", f"output_dir={run}", "seed=7"])
    try:
        train(cfg, command=["bench_diffusion.py", "--name", "tiny"])
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "results")
    args = ["--report", str(run), "--labels", "tiny_stopped", "--plot", str(tmp_path / "curve.png"), "--write"]
    assert bench.main([*args, "--note", "stopped at step 2"]) == 0
    out = tmp_path / "results" / "diffusion_tiny_stopped.json"
    record = json.loads(out.read_text())
    assert (record["name"], record["steps"], record["seed"]) == ("tiny_stopped", 2, 7)
    assert record["stopped"] == "stopped at step 2"
    assert record["command"] == "bench_diffusion.py --name tiny" and record["commands"][0]["from_step"] == 0
    assert [c["step"] for c in record["curve"]] == [2] and record["pipeline_dir"] is None
    # an existing record is kept unless --force
    with pytest.raises(SystemExit, match="exists; pass --force"):
        bench.main(args)
    assert json.loads(out.read_text())["stopped"] == "stopped at step 2"
    assert bench.main([*args, "--force"]) == 0 and "stopped" not in json.loads(out.read_text())
    with pytest.raises(SystemExit, match="go with --report"):
        bench.main(["--config", "x.yaml", "--name", "y", "--write"])
