"""PixelDenoiser: presets, shapes, task lookup, zero-timestep conditioning."""

from __future__ import annotations

import pytest
import torch

from diffthinker.diffusion.model import (
    PRESET_PARAMS,
    PRESETS,
    PixelDenoiser,
    build_denoiser,
    count_parameters,
    default_rope_axes,
    patchify,
    unpatchify,
)
from diffthinker.tasks import TaskError


def tiny(**kw) -> PixelDenoiser:
    torch.manual_seed(0)
    args = dict(patch_size=4, num_layers=1, num_attention_heads=2, attention_head_dim=16)
    args.update(kw)
    return build_denoiser("tiny-cpu", kw.pop("tasks", ["maze", "frozenlake"]), 16, **args)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_parameter_counts_match_the_documented_range(preset):
    # Built on the meta device: counting needs no memory or init time.
    with torch.device("meta"):
        model = build_denoiser(preset, ["maze"], 64)
    lo, hi = PRESET_PARAMS[preset]
    assert lo <= count_parameters(model) <= hi
    assert model.grid == 8  # 8 px patches at 64 px: one token per cell of an 8x8 maze


def test_forward_shape_and_dtype():
    model = tiny()
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    out = model(x, x.flip(0), torch.rand(3), torch.tensor([0, 1, 0]))
    assert out.shape == (3, 3, 16, 16) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_forward_depends_on_cond_sigma_and_task():
    model = tiny()
    x, c = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    s, t = torch.tensor([0.3, 0.7]), torch.tensor([0, 0])
    base = model(x, c, s, t)
    assert not torch.allclose(base, model(x, -c, s, t))
    assert not torch.allclose(base, model(x, c, s.flip(0), t))
    assert not torch.allclose(base, model(x, c, s, torch.tensor([1, 1])))


def test_zero_cond_t_uses_diffusers_modulate_index():
    model = tiny(zero_cond_t=True)
    assert model.transformer.config.zero_cond_t
    x, c = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    assert model(x, c, torch.tensor([0.2, 0.9]), torch.tensor([0, 1])).shape == x.shape


def test_x0_residual_makes_zero_net_the_identity_edit():
    model = tiny(x0_residual=True)
    torch.nn.init.zeros_(model.transformer.proj_out.weight)
    torch.nn.init.zeros_(model.transformer.proj_out.bias)
    x, c = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    assert torch.equal(model(x, c, torch.rand(2), torch.tensor([0, 0])), c)
    with pytest.raises(ValueError, match="x0_residual"):
        tiny(x0_residual=True, prediction_type="velocity")


def test_task_index_of_and_errors():
    model = tiny()
    assert model.tasks == ["maze-v1", "frozenlake-v1"]
    assert model.task_index_of("frozenlake-v1") == 1
    assert model.task_index_of("maze") == 0
    with pytest.raises(TaskError, match=r"'sudoku-v1'.*maze-v1"):
        model.task_index_of("sudoku-v1")
    assert issubclass(TaskError, ValueError)
    with pytest.raises(ValueError, match="task_index out of range"):
        model(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16), torch.ones(1), torch.tensor([2]))


def test_bad_config_and_shapes_rejected():
    with pytest.raises(ValueError, match="unknown denoiser preset"):
        build_denoiser("huge", ["maze"], 64)
    with pytest.raises(ValueError, match="multiple of patch_size"):
        build_denoiser("tiny-cpu", ["maze"], 60)
    with pytest.raises(ValueError, match="prediction_type"):
        build_denoiser("tiny-cpu", ["maze"], 64, prediction_type="eps")
    with pytest.raises(ValueError, match="unknown denoiser option"):
        build_denoiser("tiny-cpu", ["maze"], 64, layers=3)
    with pytest.raises(TaskError):
        build_denoiser("tiny-cpu", ["chess"], 64)
    model = tiny()
    with pytest.raises(ValueError, match=r"\[B, 3, 16, 16\]"):
        model(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32), torch.ones(1), torch.tensor([0]))


def test_patchify_roundtrip_and_one_token_per_cell():
    x = torch.randn(2, 3, 16, 16)
    tok = patchify(x, 4)
    assert tok.shape == (2, 16, 48)
    assert torch.equal(unpatchify(tok, 4, 16, 16), x)
    # token 5 is the cell at row 1, col 1
    assert torch.equal(tok[0, 5].reshape(3, 4, 4), x[0, :, 4:8, 4:8])
    assert default_rope_axes(32) == (8, 12, 12) and sum(default_rope_axes(64)) == 64


def test_save_load_roundtrip(tmp_path):
    model = tiny(zero_cond_t=True)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    again = PixelDenoiser.from_pretrained(tmp_path)
    assert again.config.tasks == model.config.tasks and again.config.zero_cond_t
    x = torch.randn(2, 3, 16, 16)
    args = (x, -x, torch.tensor([0.1, 0.8]), torch.tensor([1, 0]))
    assert torch.equal(model(*args), again(*args))
