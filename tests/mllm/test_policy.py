"""Policy: tokenizer, tiny preset, input encoding, save/load round trip, the Qwen2.5-VL and Qwen3-VL paths, errors."""

from __future__ import annotations

import json

import pytest
import torch

from diffthinker.tasks import get_task
from diffthinker.tasks.base import TaskError
from mllm_baselines.generation import HFGenerator, SamplingConfig
from mllm_baselines.policy import (
    POLICY_FILE,
    SPECIAL_TOKENS,
    _pil_image_processor,
    build_tiny_policy,
    build_tokenizer,
    is_policy_folder,
    load_policy,
)
from mllm_baselines.prompts import build_prompt

from .conftest import MICRO


def maze_prompt(seed=0, size=64):
    task = get_task("maze")
    return build_prompt(task, instance=task.generate("8", seed), image_size=size)


def test_tokenizer_is_deterministic_byte_level_and_keeps_moves_one_token_each():
    a, b = build_tokenizer(400, corpus=["hello world " * 5, "maze walls +---+"]), build_tokenizer(400)
    assert a.get_vocab() == build_tokenizer(400, corpus=["hello world " * 5, "maze walls +---+"]).get_vocab()
    for t in SPECIAL_TOKENS:
        assert b.convert_tokens_to_ids(t) != b.unk_token_id and len(b.tokenize(t)) == 1
    text = "path: 4,1 5,1\nanswer: RRDDLU é ✓"
    assert b.decode(b(text, add_special_tokens=False)["input_ids"]) == text  # byte-level: any text round-trips
    assert b.tokenize("RRDDLU") == list("RRDDLU")
    with pytest.raises(TaskError, match="vocab_size"):
        build_tokenizer(100)


def test_tiny_presets_build_and_encode_16_image_tokens_for_64px(tiny_policy):
    pol = build_tiny_policy(["maze"])
    assert 2e5 < pol.num_parameters() < 1e6 and pol.meta.tasks == ["maze-v1"]
    p = maze_prompt()
    r, d = pol.encode_text("R")[0], pol.encode_text("D")[0]
    assert pol.image_token_id in pol.banned_ids and pol.eos_id not in pol.banned_ids
    batch = pol.encode([p, p], [[r, d, pol.eos_id], [d]])
    assert int((batch["input_ids"][0] == pol.image_token_id).sum()) == 16  # 64 px / 8 px patches / 2x2 merge
    assert batch["image_grid_thw"].tolist() == [[1, 8, 8]] * 2
    assert batch["completion_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["input_ids"][1, batch["prompt_len"]].item() == d
    out = pol.model(**pol.forward_inputs(batch))
    assert out.logits.shape[:2] == batch["input_ids"].shape
    # same arguments, same weights
    again = build_tiny_policy(["maze"])
    assert all(torch.equal(x, y) for x, y in zip(pol.model.parameters(), again.model.parameters()))


def test_text_and_image_prompts_share_a_batch(tiny_policy):
    task = get_task("frozenlake")
    inst = task.generate("vsp3", 0)
    img = build_prompt(task, instance=inst, image_size=64)
    txt = build_prompt(task, instance=inst, mode="text")
    assert txt.image is None and task.to_text(inst) in txt.text
    batch = tiny_policy.encode([img, txt], [[1, 2], [3]])
    assert batch["pixel_values"].shape[0] == 64 and batch["image_grid_thw"].shape[0] == 1
    logits = tiny_policy.model(**tiny_policy.forward_inputs(batch)).logits
    assert torch.isfinite(logits).all()


def test_save_load_round_trip_gives_identical_weights_and_generations(tiny_policy, tmp_path):
    tiny_policy.save(tmp_path / "pol", training={"note": "test"})
    assert is_policy_folder(tmp_path / "pol")
    meta = json.loads((tmp_path / "pol" / POLICY_FILE).read_text())
    assert meta["kind"] == "mllm" and meta["tasks"] == ["maze-v1", "frozenlake-v1"] and meta["image_size"] == 64
    assert meta["prompt_version"] and meta["base_model"] == "tiny" and meta["training"] == {"note": "test"}
    assert not list((tmp_path / "pol").glob("*.bin")) and (tmp_path / "pol" / "model.safetensors").is_file()
    back = load_policy(tmp_path / "pol")
    sd1, sd2 = tiny_policy.model.state_dict(), back.model.state_dict()
    assert sd1.keys() == sd2.keys() and all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    assert back.meta.max_new_tokens == tiny_policy.meta.max_new_tokens
    p = [maze_prompt(1), maze_prompt(2)]
    gen = HFGenerator()
    a = gen.generate(tiny_policy, p, [3, 4], SamplingConfig(), 6)
    b = gen.generate(back, p, [3, 4], SamplingConfig(), 6)
    assert [c.ids for c in a] == [c.ids for c in b]
    with pytest.raises(TaskError, match="image_size 64, not 128"):
        load_policy(tmp_path / "pol", image_size=128)


def _save_family(tmp_path, family):
    """A tiny random Qwen2.5-VL / Qwen3-VL saved as a plain HF folder (as a downloaded checkpoint would be)."""
    import transformers

    tok = build_tokenizer(300)
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    common = dict(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                  vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
                  vocab_size=len(tok))
    text = dict(hidden_size=32, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                num_key_value_heads=1, vocab_size=len(tok), bos_token_id=ids["<|endoftext|>"],
                eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    vision = dict(depth=1, hidden_size=32, intermediate_size=32, num_heads=2, out_hidden_size=32, patch_size=8,
                  spatial_merge_size=2)
    if family == "qwen2_5_vl":
        cfg = transformers.Qwen2_5_VLConfig(
            text_config={**text, "rope_scaling": {"mrope_section": [2, 3, 3], "rope_type": "default"}},
            vision_config={**vision, "window_size": 32, "fullatt_block_indexes": [0]}, **common)
        model = transformers.Qwen2_5_VLForConditionalGeneration(cfg)
    else:
        cfg = transformers.Qwen3VLConfig(
            text_config={**text, "head_dim": 16, "rope_scaling": {"mrope_section": [2, 3, 3], "rope_type": "default",
                                                                  "mrope_interleaved": True}},
            vision_config={**vision, "num_position_embeddings": 64, "deepstack_visual_indexes": [0]}, **common)
        model = transformers.Qwen3VLForConditionalGeneration(cfg)
    folder = tmp_path / family
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    _pil_image_processor(64, 8, 2).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_qwen25_and_qwen3_vl_folders_load_generate_and_score(tmp_path, family):
    torch.manual_seed(0)
    folder = _save_family(tmp_path, family)
    pol = load_policy(folder, tasks=["maze"], image_size=64)
    assert pol.meta.family == family and pol.meta.base_model == str(folder)
    p = maze_prompt()
    out = HFGenerator().generate(pol, [p, p], [1, 2], SamplingConfig(), 4)
    assert len(out) == 2 and all(1 <= len(c.ids) <= 4 for c in out)
    batch = pol.encode([p], [out[0].ids])
    logits = pol.model(**pol.forward_inputs(batch)).logits
    assert logits.shape[:2] == batch["input_ids"].shape and torch.isfinite(logits).all()
    pol.save(tmp_path / "saved")  # a trained base model saves as a self-describing policy folder
    assert load_policy(tmp_path / "saved").meta.family == family


def test_bad_sources_and_options_raise_clear_errors(tmp_path):
    with pytest.raises(TaskError, match="multiple of patch_size x merge_size = 16"):
        build_tiny_policy(["maze"], image_size=72)
    with pytest.raises(TaskError, match="unknown policy preset 'huge'"):
        build_tiny_policy(["maze"], preset="huge")
    with pytest.raises(TaskError, match="unknown tiny-policy options"):
        build_tiny_policy(["maze"], overrides={"depth": 3})
    with pytest.raises(TaskError, match="needs the tasks"):
        load_policy("tiny")
    with pytest.raises(TaskError, match="no config.json"):
        load_policy(tmp_path)
    with pytest.raises(TaskError, match="neither a preset"):
        load_policy("./does/not/exist")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / POLICY_FILE).write_text(json.dumps({"format": "diffthinker-policy", "kind": "diffusion"}))
    with pytest.raises(TaskError, match="not an MLLM policy file"):
        load_policy(tmp_path / "x")
    pol = build_tiny_policy(["maze"], overrides=MICRO)
    with pytest.raises(TaskError, match="differs from the policy's image_size 64"):
        pol.encode([maze_prompt(size=128)])
