"""Shared tiny policies for the MLLM tests (built once per session: a few hundred thousand parameters)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_policy():
    """A ~50k-parameter Qwen2-VL for maze and frozenlake (treat as read-only: tests that train copy it)."""
    from mllm_baselines.policy import build_tiny_policy

    return build_tiny_policy(["maze", "frozenlake"], overrides=MICRO, max_new_tokens={"maze-v1": 12,
                                                                                     "frozenlake-v1": 8})


#: smaller than the `tiny` preset: one layer each, so every test step takes milliseconds
MICRO = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
             vision_depth=1, vision_embed_dim=32, vision_num_heads=2)
