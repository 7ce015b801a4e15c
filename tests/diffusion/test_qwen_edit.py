"""The GPU path (preset qwen-image-edit-lora) end to end on CPU with tiny random Qwen-Image-Edit components."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

from diffthinker.diffusion import qwen_edit as qe
from diffthinker.tasks import get_task

from . import tiny_qwen as tq

RES = 64
CFG = qe.QwenEditConfig(resolution=RES, torch_dtype="float32", weight_decay=0.0)


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _pipe(variant="2509"):
    return qe.build_pipeline(tq.build_components(variant), variant)


def _maze(seed=0, size=RES):
    task = get_task("maze")
    inst = task.generate("4", seed)
    return task.render(inst, size=size), task.render(inst, task.solve(inst), size=size)


def _frozen_state(pipe):
    return {f"{m}.{k}": v.detach().clone() for m in ("transformer", "vae", "text_encoder")
            for k, v in getattr(pipe, m).state_dict().items() if "lora_" not in k}


def _lora_state(pipe):
    return {n: p.detach().clone() for n, p in pipe.transformer.named_parameters() if "lora_" in n}


def test_preset_is_the_published_recipe():
    cfg = qe.QwenEditConfig()
    assert (cfg.lora_rank, cfg.lora_alpha, cfg.learning_rate, cfg.weight_decay) == (32, 32.0, 1e-4, 0.01)
    assert cfg.lora_target_modules == ("to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj", "to_out.0",
                                       "to_add_out", "img_mlp.net.2", "img_mod.1", "txt_mlp.net.2", "txt_mod.1")
    assert (cfg.num_inference_steps, cfg.true_cfg_scale, cfg.resolution) == (20, 4.0, 512)
    assert (cfg.sigma_scheme, cfg.loss_weighting) == ("published", "bell")
    assert qe.preset()["model"] == "Qwen/Qwen-Image-Edit-2509"
    assert qe.detect_variant("models/Qwen-Image-Edit-2511") == "2511"
    assert qe.detect_variant("x", {"zero_cond_t": True}, "QwenImageEditPlusPipeline") == "2511"
    assert qe.detect_variant("Qwen/Qwen-Image-Edit-2509") == "2509"
    assert qe.detect_variant("x", {}, "QwenImageEditPipeline") == "edit"
    with pytest.raises(ValueError, match="variant"):
        qe.QwenEditConfig(variant="2600")


def test_published_inference_sigmas():
    """The Qwen-Image scheduler config at 512 px (1024 latent tokens) gives exactly the published 20-step grid."""
    from diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus import (
        calculate_shift,
    )

    s = tq.build_scheduler()
    mu = calculate_shift(1024, 256, 8192, 0.5, 0.9)
    assert mu == pytest.approx(0.5387, abs=1e-4)
    s.set_timesteps(sigmas=np.linspace(1, 1 / 20, 20), mu=mu)
    published = [1.0, .968, .935, .900, .864, .826, .786, .745, .701, .655, .606, .555, .501, .444, .384, .320,
                 .252, .180, .103, .020, 0.0]
    np.testing.assert_allclose(s.sigmas.numpy(), published, atol=6e-4)


def test_training_step_changes_only_lora_weights():
    pipe = _pipe("2511")
    assert pipe.transformer.config.zero_cond_t  # 2511: condition tokens modulated with t = 0
    params = qe.attach_lora(pipe, CFG)
    assert len(params) == 2 * 12 * 2  # 2 blocks x 12 target modules x (A, B)
    lcfg = pipe.transformer.peft_config["default"]
    assert (lcfg.r, lcfg.lora_alpha) == (32, 32)
    frozen, lora0 = _frozen_state(pipe), _lora_state(pipe)
    opt = qe.make_optimizer(pipe, CFG)
    prob, sol = _maze()
    g = torch.Generator().manual_seed(0)
    # The last block's text stream is discarded by the transformer (only image tokens reach norm_out), so its
    # text-only LoRA modules get exactly zero gradient, in the real 60-block model as here (see qwen_edit doc).
    last = f"transformer_blocks.{len(pipe.transformer.transformer_blocks) - 1}."
    dead = {n for n in lora0 if n.startswith(last) and any(f".{m}." in n for m in qe.DEAD_IN_LAST_BLOCK)}
    assert len(dead) == 2 * len(qe.DEAD_IN_LAST_BLOCK)
    for step in range(2):  # peft's B = 0 init: step 1 moves B, A gets gradient from step 2 on
        opt.zero_grad(set_to_none=True)
        loss, stats = qe.training_step(pipe, {"problem": [prob], "solution": [sol], "task": "maze-v1"}, g, CFG)
        assert torch.isfinite(loss) and stats["loss"] > 0 and 0 < stats["sigma_mean"] <= 1
        loss.backward()
        for n, p in pipe.transformer.named_parameters():
            if n in dead:
                assert p.grad is None or not p.grad.any(), n
            elif "lora_B" in n or ("lora_A" in n and step == 1):
                assert p.grad is not None and p.grad.abs().sum() > 0, n
        for m in ("transformer", "vae", "text_encoder"):
            for n, p in getattr(pipe, m).named_parameters():
                if "lora_" not in n:
                    assert p.grad is None and not p.requires_grad, f"{m}.{n}"
        opt.step()
    now = _frozen_state(pipe)
    assert frozen.keys() == now.keys()
    assert all(torch.equal(frozen[k], now[k]) for k in frozen)
    changed = {n: not torch.equal(v, lora0[n]) for n, v in _lora_state(pipe).items()}
    assert {n for n, c in changed.items() if not c} == dead  # every live LoRA weight moved


def test_training_step_is_seeded_and_batched():
    pipe = _pipe()
    qe.attach_lora(pipe, CFG)
    (p0, s0), (p1, s1) = _maze(0), _maze(1)
    batch = {"problem": [p0, p1], "solution": [s0, s1], "task": ["maze-v1", "maze-v1"]}
    a, _ = qe.training_step(pipe, batch, torch.Generator().manual_seed(3), CFG)
    b, _ = qe.training_step(pipe, batch, torch.Generator().manual_seed(3), CFG)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="2 images but 1 prompts"):
        qe.training_step(pipe, {**batch, "task": ["maze-v1"]}, None, CFG)


def test_lora_saves_and_loads_to_identical_outputs(tmp_path):
    pipe = _pipe()
    qe.attach_lora(pipe, CFG)
    opt = qe.make_optimizer(pipe, CFG)
    prob, sol = _maze()
    loss, _ = qe.training_step(pipe, {"problem": prob, "solution": sol, "task": "maze-v1"},
                               torch.Generator().manual_seed(0), CFG)
    loss.backward()
    opt.step()
    path = qe.save_lora(pipe, tmp_path / "lora")
    assert path.name == "pytorch_lora_weights.safetensors"
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
        meta = json.loads(f.metadata()["lora_adapter_metadata"])
    assert len(keys) == 48 and all(k.startswith("transformer.") and "lora_" in k for k in keys)
    assert meta["transformer.r"] == 32 and meta["transformer.lora_alpha"] == 32
    assert sorted(meta["transformer.target_modules"]) == sorted(qe.LORA_TARGET_MODULES)

    def run(p):
        return qe.solve(p, prob, "maze-v1", CFG, num_inference_steps=2, true_cfg_scale=1.0,
                        generator=torch.Generator().manual_seed(7), output_type="pt")

    ref = run(pipe)
    fresh = _pipe()  # same seed, same base weights, no LoRA
    base = run(fresh)
    qe.load_lora(fresh, tmp_path / "lora")
    assert torch.equal(run(fresh), ref)
    assert not torch.equal(base, ref)  # the trained LoRA changes the output
    for n, v in _lora_state(pipe).items():
        assert torch.equal(v.float(), dict(fresh.transformer.named_parameters())[n].float()), n
    qe.load_lora(fresh, path)  # a file path works too, and replaces the adapter
    assert torch.equal(run(fresh), ref)


def test_solve_produces_images_of_the_right_size_from_task_renders(caplog):
    pipe = _pipe()
    small, _ = _maze(0, size=48)  # our task render at another size: resized (NEAREST) and logged
    other, _ = _maze(1)
    frames = []

    def cb(p, i, t, kw):
        frames.append(kw["x0_latents"].shape)
        return {}

    with caplog.at_level("INFO", logger="diffthinker.diffusion.qwen_edit"):
        out = qe.solve(pipe, [small, other], "maze-v1", CFG, num_inference_steps=2, num_images_per_prompt=2,
                       generator=[torch.Generator().manual_seed(i) for i in range(4)], callback_on_step_end=cb,
                       callback_on_step_end_tensor_inputs=["latents", "x0_latents"])
    assert "48x48 -> 64x64" in caplog.text
    assert len(out) == 4 and all(im.size == (RES, RES) and im.mode == "RGB" for im in out)
    assert len(frames) == 2
    # a batched call equals per-item calls with the same per-sample generators
    single = qe.solve(pipe, other, "maze-v1", CFG, num_inference_steps=2, num_images_per_prompt=2,
                      generator=[torch.Generator().manual_seed(i) for i in (2, 3)], output_type="np")
    np.testing.assert_allclose(np.stack([np.asarray(o, np.float32) / 255 for o in out[2:]]), single, atol=2 / 255)


def test_solve_matches_diffusers_pipeline_call(monkeypatch):
    """With the VAE image at the output size (DiffSynth's edit_image_auto_resize=False), our loop reproduces
    QwenImageEditPlusPipeline.__call__ exactly (true CFG 4.0, empty negative prompt)."""
    import diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus as plus

    pipe = _pipe("2511")
    prob, _ = _maze(2)
    ours = qe.solve(pipe, prob, "maze-v1", CFG, num_inference_steps=3, generator=torch.Generator().manual_seed(1),
                    output_type="np")
    monkeypatch.setattr(plus, "VAE_IMAGE_SIZE", RES * RES)
    ref = pipe(image=prob, prompt=get_task("maze").prompt, negative_prompt="", true_cfg_scale=4.0, height=RES,
               width=RES, num_inference_steps=3, generator=torch.Generator().manual_seed(1), output_type="np").images
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_bad_inputs_are_rejected_clearly():
    pipe = _pipe()
    prob, _ = _maze()
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        qe.solve(pipe, torch.full((1, 3, RES, RES), 2.0), "maze-v1", CFG)
    with pytest.raises(ValueError, match="3 generators for 1 images x 2 samples"):
        qe.solve(pipe, prob, "maze-v1", CFG, num_images_per_prompt=2, generator=[torch.Generator()] * 3)
    with pytest.raises(ValueError, match="no-such-task"):
        qe.solve(pipe, prob, "no-such-task", CFG)
    with pytest.raises(ValueError, match="multiple of 8"):
        qe.solve(pipe, prob, "maze-v1", qe.QwenEditConfig(resolution=60))
    with pytest.raises(ValueError, match="attach_lora"):
        qe.make_optimizer(pipe, CFG)


def test_missing_local_directory_is_a_clear_error(tmp_path):
    missing = tmp_path / "models" / "Qwen-Image-Edit-2509"
    with pytest.raises(FileNotFoundError, match="Qwen-Image-Edit-2509.*does not exist.*model_index.json"):
        qe.load_pipeline(str(missing))
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "model_index.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="missing transformer/"):
        qe.load_pipeline(str(tmp_path / "partial"))
    with pytest.raises(FileNotFoundError, match="LoRA file"):
        qe.load_lora(_pipe(), tmp_path / "nolora")


def test_load_pipeline_from_a_local_folder(tmp_path):
    """A folder laid out like the hub's (processor recorded as the stock Qwen2VLProcessor): variant detected,
    the image-only processor used when the stock one cannot load (no torchvision / video config)."""
    pipe = _pipe("2511")
    pipe.save_pretrained(tmp_path / "Qwen-Image-Edit-2511")
    index_path = tmp_path / "Qwen-Image-Edit-2511" / "model_index.json"
    index = json.loads(index_path.read_text())
    index["processor"] = ["transformers", "Qwen2VLProcessor"]
    index_path.write_text(json.dumps(index))
    loaded = qe.load_pipeline(str(tmp_path / "Qwen-Image-Edit-2511"), torch_dtype="float32")
    assert qe.variant_of(loaded) == "2511" and loaded.transformer.config.zero_cond_t
    a, b = pipe.transformer.state_dict(), loaded.transformer.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    prob, _ = _maze()
    kw = {"num_inference_steps": 2, "true_cfg_scale": 1.0, "output_type": "pt"}
    assert torch.equal(qe.solve(pipe, prob, "maze-v1", CFG, generator=torch.Generator().manual_seed(0), **kw),
                       qe.solve(loaded, prob, "maze-v1", CFG, generator=torch.Generator().manual_seed(0), **kw))
