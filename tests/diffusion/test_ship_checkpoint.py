"""training/ship_checkpoint.py: a trained pipeline copied into checkpoints/ with float16 weights, card kept."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from script_modules import load_script

from diffthinker.diffusion.pipeline import DiffThinkerPipeline

from .test_pipeline import gens, make_pipe

ship = load_script("training/ship_checkpoint.py")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("run") / "pipeline"
    make_pipe().save_pretrained(str(src))
    (src / "README.md").write_text("# card\n\nvalidation solve rate: 0.5\n")
    return src


def test_ship_stores_float16_and_loads_into_float32(trained, tmp_path):
    dst = ship.ship(trained, tmp_path / "checkpoints" / "tiny")
    weights = dst / "denoiser" / "diffusion_pytorch_model.safetensors"
    with safe_open(str(weights), framework="pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert dtypes == {torch.float16}
    assert weights.stat().st_size < (trained / "denoiser" / "diffusion_pytorch_model.safetensors").stat().st_size
    card = (dst / "README.md").read_text()
    assert card.startswith("# card") and "## Shipped copy" in card and "float16" in card
    noted = ship.ship(trained, tmp_path / "checkpoints" / "noted", note="Resumed twice; see BENCHMARKS.")
    assert (noted / "README.md").read_text().endswith("## Notes\n\nResumed twice; see BENCHMARKS.\n")

    original = DiffThinkerPipeline.from_pretrained(str(trained))
    shipped = DiffThinkerPipeline.from_pretrained(str(dst))
    assert next(shipped.denoiser.parameters()).dtype == torch.float32
    for p in (original, shipped):
        p.set_progress_bar_config(disable=True)
    from diffthinker.tasks import get_task

    task = get_task("maze")
    puzzle = task.render(task.generate(task.default_level, 0), size=original.resolution)
    a = original(puzzle, "maze-v1", num_inference_steps=4, generator=gens(1), output_type="np").images
    b = shipped(puzzle, "maze-v1", num_inference_steps=4, generator=gens(1), output_type="np").images
    assert np.abs(a - b).max() < 0.05  # float16-rounded weights: nearly the same picture, not bit-identical


def test_ship_replaces_an_existing_copy_and_rejects_non_pipelines(trained, tmp_path):
    dst = tmp_path / "tiny"
    ship.ship(trained, dst)
    (dst / "stale.txt").write_text("from an older copy")
    ship.ship(trained, dst)
    assert not (dst / "stale.txt").exists() and (dst / "model_index.json").is_file()
    assert not list(tmp_path.glob(".tiny.*"))  # no temporary or old folder left behind
    with pytest.raises(SystemExit, match="neither a pipeline folder"):
        ship.ship(tmp_path / "nothing", tmp_path / "other")


def test_ship_refuses_a_copy_over_the_checkpoints_budget_and_keeps_the_old_one(trained, tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    first = ship.ship(trained, root / "first")
    one = ship.folder_bytes(first)
    # room for one more copy only when it replaces an existing one (the replaced folder does not count)
    monkeypatch.setattr(ship, "MAX_TOTAL_BYTES", int(one * 1.5))
    (first / "marker.txt").write_text("the copy that must survive")
    with pytest.raises(SystemExit, match=re.escape(f"second ({one / 1e6:.1f} MB) would take {root} to "
                                                   f"{2 * one / 1e6:.1f} MB; the budget is")):
        ship.ship(trained, root / "second")
    assert not (root / "second").exists() and not list(root.glob(".second.*"))
    assert (first / "marker.txt").is_file()
    ship.ship(trained, root / "first")  # a replacement fits
    assert not (first / "marker.txt").exists()
