"""benchmarks/bench_diffusion.py: the overrides a benchmark run adds to a training config (no training here)."""

from __future__ import annotations

from pathlib import Path

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
