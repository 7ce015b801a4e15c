"""Tiny random Qwen-Image-Edit components, built from config with no download (tests of the GPU path on CPU).

Built the way diffusers tests its Qwen-Image pipelines (tests/pipelines/qwenimage: a 2-layer
``QwenImageTransformer2DModel``, an ``AutoencoderKLQwenImage`` with z_dim 4, a 2-layer ``Qwen2_5_VL`` text
encoder), with two offline substitutes for what those tests download:

* the tokenizer: a byte-level BPE with no merges (every UTF-8 byte is one token, the GPT-2 byte alphabet), plus
  the special tokens the Qwen-Image(-Edit) prompt templates use (``<|im_start|>``, ``<|im_end|>``,
  ``<|vision_start|>``, ``<|image_pad|>``, ``<|vision_end|>``, ``<|video_pad|>``, ``<|endoftext|>``), wrapped as
  transformers' ``Qwen2Tokenizer`` (the class the pipelines expect). The template's ``drop_idx`` (64 tokens of
  the real tokenizer) therefore drops a shorter piece of the system prompt here: harmless for shapes and tests.
* the processor: ``qwen_edit.image_only_processor``: a ``Qwen2VLProcessor`` subclass built from the PIL/numpy
  ``Qwen2VLImageProcessorPil`` and that tokenizer, with no video processor (the stock ``Qwen2VLProcessor``
  constructor insists on one, and transformers' video processors need torchvision, which is not installed). Qwen-Image-Edit only sends images.
  ``max_pixels`` is made tiny so a 384x384 condition image becomes 8x8 vision patches (16 image tokens).

Everything is seeded (``torch.manual_seed``) so two calls give bit-identical components.
"""

from __future__ import annotations

import torch

#: the special tokens of the Qwen2.5-VL chat / vision templates the Qwen-Image pipelines format
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>")

Z_DIM = 4  # latent channels of the tiny VAE (the real one has 16)


def _byte_alphabet() -> list[str]:
    """GPT-2's byte-to-unicode map (the alphabet of byte-level BPE), in byte order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]


def build_tokenizer():
    """A byte-level ``Qwen2Tokenizer`` (256 byte tokens + the template's special tokens), built offline."""
    from transformers import Qwen2Tokenizer

    vocab = {ch: i for i, ch in enumerate(_byte_alphabet())}
    for tok in SPECIAL_TOKENS:
        vocab[tok] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token="<|endoftext|>", eos_token="<|im_end|>",
                               pad_token="<|endoftext|>",
                               additional_special_tokens=list(SPECIAL_TOKENS[1:]))
    tokenizer.model_max_length = 4096
    return tokenizer


def build_processor(tokenizer=None, max_pixels: int = 112 * 112):
    """An image-only ``Qwen2VLProcessor`` (PIL image processor + tokenizer, no video processor)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    from diffthinker.diffusion.qwen_edit import image_only_processor

    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    image_processor = Qwen2VLImageProcessorPil(min_pixels=28 * 28, max_pixels=max_pixels)
    return image_only_processor(image_processor, tokenizer)


def build_text_encoder(tokenizer, hidden: int = 16, seed: int = 0):
    """A 2-layer Qwen2.5-VL (text hidden 16, vision depth 2) whose special ids match ``tokenizer``."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": hidden, "intermediate_size": hidden, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 2, "vocab_size": len(tokenizer), "max_position_embeddings": 4096,
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
            "rope_theta": 1000000.0, "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={"depth": 2, "hidden_size": hidden, "intermediate_size": hidden, "num_heads": 2,
                       "out_hidden_size": hidden, "fullatt_block_indexes": [1], "window_size": 56},
        vocab_size=len(tokenizer),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def build_vae(seed: int = 0):
    """A tiny ``AutoencoderKLQwenImage`` (z_dim 4, spatial factor 4 = 2 ** len(temperal_downsample))."""
    from diffusers import AutoencoderKLQwenImage

    torch.manual_seed(seed)
    return AutoencoderKLQwenImage(base_dim=Z_DIM * 6, z_dim=Z_DIM, dim_mult=[1, 2, 4], num_res_blocks=1,
                                  temperal_downsample=[False, True], latents_mean=[0.0] * Z_DIM,
                                  latents_std=[1.0] * Z_DIM).eval()


def build_transformer(zero_cond_t: bool = False, joint_attention_dim: int = 16, seed: int = 0):
    """A 2-layer ``QwenImageTransformer2DModel`` on 2x2-packed tiny latents (in 16 = 4 * Z_DIM, out Z_DIM)."""
    from diffusers import QwenImageTransformer2DModel

    torch.manual_seed(seed)
    return QwenImageTransformer2DModel(patch_size=2, in_channels=4 * Z_DIM, out_channels=Z_DIM, num_layers=2,
                                       attention_head_dim=16, num_attention_heads=3,
                                       joint_attention_dim=joint_attention_dim, guidance_embeds=False,
                                       axes_dims_rope=(8, 4, 4), zero_cond_t=zero_cond_t)


def build_scheduler():
    """``FlowMatchEulerDiscreteScheduler`` with the real Qwen-Image scheduler config (published inference mu)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9,
        base_image_seq_len=256, max_image_seq_len=8192, shift_terminal=0.02, time_shift_type="exponential")


def build_components(variant: str = "2509", seed: int = 0) -> dict:
    """All six components, keyed as the Qwen-Image-Edit pipelines take them; 2511 gets ``zero_cond_t``."""
    tokenizer = build_tokenizer()
    return {
        "transformer": build_transformer(zero_cond_t=(variant == "2511"), seed=seed),
        "vae": build_vae(seed=seed),
        "text_encoder": build_text_encoder(tokenizer, seed=seed),
        "tokenizer": tokenizer,
        "processor": build_processor(tokenizer),
        "scheduler": build_scheduler(),
    }
