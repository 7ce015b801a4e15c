"""The MLLM track as a ``diffthinker.solver_api.Solver``: puzzle images in, N sampled text answers per puzzle out.

``load_mllm_solver(path)`` loads a saved policy folder (``diffthinker_policy.json`` beside the HF files).
Parsing, verification and selection (verifier-guided, vote, first) happen in ``diffthinker.inference`` exactly as
for the diffusion track; this module only produces ``RawCandidate(text=...)``.

Randomness: candidate ``k`` of puzzle ``i`` is generated with a ``torch.Generator`` seeded by ``seeds[i][k]`` alone
(``generation.PerRowSampler``), so the texts do not depend on ``batch_size`` or on the other puzzles of the call.
``temperature=0`` decodes greedily (then every candidate of a puzzle is the same text).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from PIL import Image

from diffthinker.solver_api import RawCandidate
from diffthinker.tasks import get_task
from diffthinker.tasks.base import TaskError

from .generation import HFGenerator, SamplingConfig
from .policy import Policy, load_policy
from .prompts import build_prompt

__all__ = ["MLLMSolver", "load_mllm_solver"]


class MLLMSolver:
    """A policy behind the Solver protocol (``kind = "mllm"``)."""

    kind = "mllm"

    def __init__(self, policy: Policy, *, name: str | None = None, sampling: SamplingConfig = SamplingConfig(),
                 batch_size: int = 64, generator: Any = None):
        self.policy = policy
        self.name = name or f"mllm:{policy.meta.base_model}"
        self.sampling = sampling
        self.generator = generator or HFGenerator(batch_size)
        self.batch_size = batch_size

    @property
    def tasks(self) -> list[str]:
        return list(self.policy.meta.tasks)

    def supports(self, task_id: str) -> bool:
        return self.policy.supports(task_id)

    def sample(self, task_id: str, images: Sequence[Image.Image], seeds: Sequence[Sequence[int]], *,
               num_inference_steps: int | None = None, batch_size: int | None = None,
               save_trajectory: bool = False, temperature: float | None = None,
               max_new_tokens: int | None = None, **kwargs: Any) -> list[list[RawCandidate]]:
        """``len(seeds[i])`` text candidates for puzzle image ``i``. ``num_inference_steps`` and
        ``save_trajectory`` are diffusion options and are ignored; ``temperature`` / ``max_new_tokens`` override the
        solver's sampling settings and the policy's per-task budget."""
        if kwargs:
            raise TaskError(f"unknown sampling options {sorted(kwargs)} for the MLLM solver; expected temperature, "
                            "max_new_tokens, batch_size")
        task = get_task(task_id)
        if not self.supports(task.id):
            raise TaskError(f"this MLLM policy was trained for {self.policy.meta.tasks}, not {task.id}")
        if len(images) != len(seeds):
            raise TaskError(f"sample got {len(images)} images but {len(seeds)} seed lists; expected one per image")
        prompts, row_seeds = [], []
        for img, s in zip(images, seeds):
            if len(s) < 1:
                raise TaskError("each puzzle needs at least one seed (one per candidate)")
            prompt = build_prompt(task, mode="image", image=img, image_size=self.policy.image_size)
            for seed in s:
                prompts.append(prompt)
                row_seeds.append(int(seed))
        sampling = self.sampling
        if temperature is not None:
            sampling = SamplingConfig(temperature, sampling.top_p, sampling.top_k)
        budget = max_new_tokens or self.policy.max_new_tokens(task.id)
        comps = self.generator.generate(self.policy, prompts, row_seeds, sampling, budget,
                                        batch_size=batch_size or self.batch_size)
        out: list[list[RawCandidate]] = []
        k = 0
        for s in seeds:
            out.append([RawCandidate(text=c.text) for c in comps[k:k + len(s)]])
            k += len(s)
        return out


def load_mllm_solver(path: str | os.PathLike, *, device: str | None = None, name: str | None = None,
                     sampling: SamplingConfig | None = None, batch_size: int = 64) -> MLLMSolver:
    """The solver of a saved policy folder (``Policy.save``); the name defaults to the folder name."""
    policy = load_policy(path, device=device)
    return MLLMSolver(policy, name=name or f"mllm:{os.path.basename(os.path.normpath(str(path)))}",
                      sampling=sampling or SamplingConfig(), batch_size=batch_size)
