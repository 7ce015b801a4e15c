"""The MLLM baseline track: a VLM answering in text, trained with GRPO-family RL against the same verifiers.

Modules: ``policy`` (Qwen-VL wrapper, offline tiny preset), ``prompts``, ``generation`` (HF / vLLM, per-row seeds),
``rewards`` (graded reward, TRL reward function), ``data`` (evaluation set, training stream), ``sft``, ``rl``
(components and presets), ``config`` / ``train`` (the training entry point), ``solver`` (the Solver protocol).

The names below are imported lazily, so ``import mllm_baselines`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Policy": "policy", "build_tiny_policy": "policy", "load_policy": "policy",
    "build_prompt": "prompts", "PuzzleReward": "rewards", "RewardConfig": "rewards", "score_completion": "rewards",
    "MLLMSolver": "solver", "load_mllm_solver": "solver", "TrainConfig": "config", "load_config": "config",
    "train": "train", "PRESETS": "rl.presets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
