"""The shipped checkpoints (checkpoints/): each loads as a solver and solves a puzzle of its task, carries a model
card naming what it never trained on, holds only safetensors weights, and all together stay under 60 MB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from script_modules import load_script

from diffthinker.inference import load_solver, solve
from diffthinker.tasks import get_task
from diffthinker.tasks.level_specs import parse_level_specs

ROOT = Path(__file__).resolve().parents[1]
ship_checkpoint = load_script("training/ship_checkpoint.py")  # the budget and byte count it refuses copies by
SHIPPED = ship_checkpoint.shipped_folders(ROOT / "checkpoints")


def test_the_shipped_checkpoints_fit_the_budget():
    assert SHIPPED, "checkpoints/ holds no checkpoint; `make demo` needs at least one"
    total = sum(ship_checkpoint.folder_bytes(p) for p in SHIPPED)
    assert total <= ship_checkpoint.MAX_TOTAL_BYTES, (
        f"checkpoints/ holds {total / 1e6:.1f} MB; the budget is {ship_checkpoint.MAX_TOTAL_BYTES / 1e6:.0f} MB")


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_a_shipped_checkpoint_loads_solves_and_has_a_card(folder):
    pickled = [p.name for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")]
    assert not pickled, f"{folder.name} holds pickled weights {pickled}; only safetensors are shipped"
    assert any(folder.rglob("*.safetensors"))
    card = (folder / "README.md").read_text()
    assert "never trained on" in card and "fingerprint" in card  # the test sets' no-overlap record

    solver = load_solver(folder)
    task_id, level = _trained_level(folder)
    assert solver.supports(task_id), f"{folder.name} does not support {task_id}, the task it was trained on"
    task = get_task(task_id)
    instance = task.generate(level, 0)
    image = task.render(instance, size=getattr(solver, "resolution", None) or 512)
    [result] = solve(solver, task_id, [instance], [image], num_samples=1, seed=0)
    assert len(result.candidates) == 1 and result.candidates[0].verdict is not None  # parsed and verified


def _trained_level(folder: Path) -> tuple[str, str]:
    """The first (task id, level) the checkpoint's own training config names."""
    if (folder / "training_config.yaml").is_file():
        cfg = yaml.safe_load((folder / "training_config.yaml").read_text())
    else:
        cfg = json.loads((folder / "diffthinker_policy.json").read_text())["training"]["config"]
    spec = parse_level_specs(cfg["data"]["levels"])[0]
    return get_task(spec.task).id, spec.level
