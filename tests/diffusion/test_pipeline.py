"""DiffThinkerPipeline: outputs, batching, generators, callbacks, save/load, compatibility, input checks."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from diffthinker.diffusion.model import build_denoiser
from diffthinker.diffusion.pipeline import (
    DiffThinkerPipeline,
    DiffThinkerPipelineOutput,
)
from diffthinker.tasks import get_task

RES = 16


def make_pipe(ptype: str = "x0", **kw) -> DiffThinkerPipeline:
    torch.manual_seed(0)
    model = build_denoiser("tiny-cpu", ["maze", "frozenlake"], RES, patch_size=4, num_layers=1,
                           num_attention_heads=2, attention_head_dim=16, prediction_type=ptype, **kw)
    pipe = DiffThinkerPipeline.from_denoiser(model)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def pipe() -> DiffThinkerPipeline:
    return make_pipe()


@pytest.fixture(scope="module")
def puzzles() -> list[Image.Image]:
    task = get_task("maze")
    return [task.render(task.generate(task.default_level, s), size=RES) for s in range(3)]


def gens(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_output_types_and_sizes(pipe, puzzles):
    out = pipe(puzzles[:2], "maze-v1", num_inference_steps=2, generator=gens(0, 1))
    assert isinstance(out, DiffThinkerPipelineOutput) and out.task == "maze-v1"
    assert len(out.images) == 2 and all(im.size == (RES, RES) and im.mode == "RGB" for im in out.images)
    arr = pipe(puzzles[:2], "maze", num_inference_steps=2, generator=gens(0, 1), output_type="np").images
    assert arr.shape == (2, RES, RES, 3) and arr.dtype == np.float32 and arr.min() >= 0 and arr.max() <= 1
    pt = pipe(puzzles[:2], "maze", num_inference_steps=2, generator=gens(0, 1), output_type="pt").images
    assert pt.shape == (2, 3, RES, RES)
    for k in range(2):  # the PIL images are the rounded float images
        assert np.array_equal(np.round(arr[k] * 255).astype(np.uint8), np.asarray(out.images[k]))
    assert torch.allclose(pt.permute(0, 2, 3, 1), torch.from_numpy(arr))
    (tup,) = pipe(puzzles[0], "maze", num_inference_steps=1, return_dict=False)
    assert len(tup) == 1


def test_batched_call_equals_per_item_calls(puzzles):
    pipe = make_pipe("velocity")
    batched = pipe(puzzles, "maze", num_inference_steps=3, generator=gens(10, 11, 12), output_type="pt").images
    for k in range(3):
        single = pipe(puzzles[k], "maze", num_inference_steps=3, generator=gens(10 + k), output_type="pt").images
        assert torch.allclose(batched[k], single[0], atol=1e-5)


def test_num_images_per_prompt_one_batched_call_per_step(pipe, puzzles):
    calls = []
    hook = pipe.denoiser.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    try:
        out = pipe(puzzles[:2], "maze", num_images_per_prompt=3, num_inference_steps=4,
                   generator=gens(*range(6)), output_type="pt").images
    finally:
        hook.remove()
    assert out.shape[0] == 6 and calls == [6] * 4
    # item-major order: sample j of item i comes from generator 3*i + j
    alone = pipe(puzzles[1], "maze", num_inference_steps=4, generator=gens(4), output_type="pt").images
    assert torch.allclose(out[4], alone[0], atol=1e-5)
    assert not torch.allclose(out[3], out[4])  # different noise, different samples


def test_callback_receives_pred_x0_every_step(pipe, puzzles):
    seen = []

    def cb(p, step, timestep, kwargs):
        assert p is pipe
        seen.append((step, float(timestep), kwargs["pred_x0"].clone(), kwargs["latents"].clone()))
        return {}

    out = pipe(puzzles[:2], "maze", num_inference_steps=5, generator=gens(0, 1), output_type="pt",
               callback_on_step_end=cb, callback_on_step_end_tensor_inputs=["latents", "pred_x0"]).images
    assert [s[0] for s in seen] == list(range(5))
    assert seen[0][1] == pytest.approx(1000.0) and all(a[1] > b[1] for a, b in zip(seen, seen[1:]))
    for _, _, x0, _ in seen:
        assert x0.shape == (2, 3, RES, RES) and x0.min() >= -1 and x0.max() <= 1
    # the last Euler step lands on the last clean estimate
    assert torch.allclose(out, (seen[-1][2] + 1) / 2, atol=1e-5)
    with pytest.raises(ValueError, match="callback_on_step_end_tensor_inputs"):
        pipe(puzzles[0], "maze", callback_on_step_end=cb, callback_on_step_end_tensor_inputs=["noise_pred"])


def test_callback_can_replace_latents(pipe, puzzles):
    def cb(p, step, timestep, kwargs):
        return {"latents": torch.zeros_like(kwargs["latents"])}

    out = pipe(puzzles[0], "maze", num_inference_steps=2, generator=gens(0), output_type="pt",
               callback_on_step_end=cb).images
    assert torch.allclose(out, torch.full_like(out, 0.5))


def test_determinism_same_seed_same_bytes(pipe, puzzles):
    a = pipe(puzzles[0], "maze", num_inference_steps=3, generator=torch.Generator().manual_seed(7)).images[0]
    b = pipe(puzzles[0], "maze", num_inference_steps=3, generator=torch.Generator().manual_seed(7)).images[0]
    c = pipe(puzzles[0], "maze", num_inference_steps=3, generator=torch.Generator().manual_seed(8)).images[0]
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes()


def test_save_load_roundtrip_identical_outputs(tmp_path, puzzles):
    pipe = make_pipe(zero_cond_t=True)
    pipe.save_pretrained(tmp_path)
    assert (tmp_path / "denoiser" / "diffusion_pytorch_model.safetensors").exists()
    assert not list(tmp_path.rglob("*.bin"))
    loaded = DiffThinkerPipeline.from_pretrained(tmp_path, expected_task="maze-v1", expected_resolution=RES)
    loaded.set_progress_bar_config(disable=True)
    kw = dict(num_inference_steps=3, output_type="np")
    a = pipe(puzzles[:2], "maze", generator=gens(5, 6), **kw).images
    b = loaded(puzzles[:2], "maze", generator=gens(5, 6), **kw).images
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="safetensors only"):
        pipe.save_pretrained(tmp_path / "x", safe_serialization=False)


def test_wrong_task_or_resolution_checkpoint_fails_clearly(tmp_path, pipe):
    pipe.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"trained for tasks \['maze-v1', 'frozenlake-v1'\].*'sudoku-v1'"):
        DiffThinkerPipeline.from_pretrained(tmp_path, expected_task="sudoku-v1")
    with pytest.raises(ValueError, match=rf"{RES}x{RES} px, not at 64x64"):
        DiffThinkerPipeline.from_pretrained(tmp_path, expected_resolution=64)
    pipe.check_compatible("frozenlake", RES)
    with pytest.raises(ValueError, match="tsp"):
        pipe.check_compatible("tsp")


def test_other_size_and_mode_inputs_are_resized_and_logged(pipe, puzzles, caplog):
    task = get_task("maze")
    big = task.render(task.generate(task.default_level, 0), size=64)
    with caplog.at_level(logging.INFO, logger="diffthinker.diffusion.pipeline"):
        out = pipe([big.convert("RGBA")], "maze", num_inference_steps=2, generator=gens(0), output_type="pt").images
    assert "64x64" in caplog.text and "NEAREST" in caplog.text and "RGBA" in caplog.text
    ref = pipe([big.resize((RES, RES), Image.NEAREST)], "maze", num_inference_steps=2, generator=gens(0),
               output_type="pt").images
    assert out.shape == (1, 3, RES, RES) and torch.equal(out, ref)


def test_tensor_inputs_in_zero_one(pipe, puzzles):
    t = torch.from_numpy(np.asarray(puzzles[0], dtype=np.float32) / 255).permute(2, 0, 1)
    a = pipe(t, "maze", num_inference_steps=2, generator=gens(0), output_type="pt").images
    b = pipe(puzzles[0], "maze", num_inference_steps=2, generator=gens(0), output_type="pt").images
    assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pipe(t[None] * 2 - 1, "maze")


@pytest.mark.parametrize("kwargs, message", [
    (dict(task="sudoku-v1"), r"unknown task 'sudoku-v1'.*maze-v1"),
    (dict(task=3), "task must be a task id"),
    (dict(image=[]), "empty"),
    (dict(image="maze.png"), "PIL image"),
    (dict(image=[np.zeros((16, 16, 3))]), "PIL images only"),
    (dict(image=torch.zeros(2, 1, 16, 16)), r"\[B, 3, H, W\]"),
    (dict(image=torch.zeros(0, 3, 16, 16)), "empty batch"),
    (dict(image=torch.zeros(1, 3, 16, 16, dtype=torch.uint8)), "float"),
    (dict(num_inference_steps=0), "num_inference_steps"),
    (dict(num_images_per_prompt=0), "num_images_per_prompt"),
    (dict(generator=[torch.Generator()] * 3), "3 generators for 1 image"),
    (dict(generator=42), "generator must be"),
    (dict(output_type="latent"), "output_type"),
])
def test_bad_inputs_rejected_clearly(pipe, puzzles, kwargs, message):
    args = dict(image=puzzles[0], task="maze")
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        pipe(**args)
