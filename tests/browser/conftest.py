"""Shared fixtures of the demo tests: a tiny random maze pipeline saved to disk (a real checkpoint folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before gradio is imported anywhere: no usage statistics or version checks from the tests.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

RESOLUTION = 64  # maze level 8 drawn at 64 px: 8 px cells, one 8 px patch per cell
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diffthinker_samples"


def save_tiny_pipeline(folder: Path, tasks=("maze",)) -> Path:
    """A randomly initialised ``DiffThinkerPipeline`` (one tiny MMDiT block) saved with ``save_pretrained``."""
    import torch

    from diffthinker.diffusion.model import build_denoiser
    from diffthinker.diffusion.pipeline import DiffThinkerPipeline

    torch.manual_seed(0)
    model = build_denoiser("tiny-cpu", list(tasks), RESOLUTION, patch_size=8, num_layers=1, num_attention_heads=2,
                           attention_head_dim=16)
    DiffThinkerPipeline.from_denoiser(model).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("ckpt") / "tiny-maze")


@pytest.fixture(scope="session")
def broken_checkpoint(tmp_path_factory) -> Path:
    """A folder that claims to be a pipeline but whose model_index.json is not JSON."""
    folder = tmp_path_factory.mktemp("ckpt") / "broken"
    folder.mkdir()
    (folder / "model_index.json").write_text("{ not json")
    return folder


@pytest.fixture(scope="session")
def tiny_mllm(tmp_path_factory) -> Path:
    """A random ~50k-parameter Qwen2-VL policy for maze (the MLLM track's offline preset) saved with ``save``."""
    from mllm_baselines.policy import build_tiny_policy

    micro = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                 num_key_value_heads=1, vision_depth=1, vision_embed_dim=32, vision_num_heads=2)
    folder = tmp_path_factory.mktemp("ckpt") / "tiny-mllm"
    build_tiny_policy(["maze"], overrides=micro, max_new_tokens={"maze-v1": 12}).save(folder)
    return folder
