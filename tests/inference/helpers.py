"""Shared pieces of the inference tests: a tiny random diffusion pipeline, a text solver, hand-made candidates."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from diffthinker.diffusion.model import build_denoiser
from diffthinker.diffusion.pipeline import DiffThinkerPipeline
from diffthinker.inference import Candidate
from diffthinker.solver_api import RawCandidate
from diffthinker.tasks import get_task
from diffthinker.tasks.base import Answer, ParseFailure, Verdict

RES = 64


def tiny_pipeline(tasks: Sequence[str] = ("maze", "tsp")) -> DiffThinkerPipeline:
    """A random 1-layer PixelDenoiser at 64 px (8 px patches), as tests/diffusion/test_pipeline.py builds one."""
    torch.manual_seed(0)
    model = build_denoiser("tiny-cpu", list(tasks), RES, patch_size=8, num_layers=1, num_attention_heads=2,
                           attention_head_dim=16)
    pipe = DiffThinkerPipeline.from_denoiser(model)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_tiny_pipeline(folder: Path) -> Path:
    tiny_pipeline().save_pretrained(folder)
    return folder


class SeededTextSolver:
    """A real ``Solver`` of the MLLM kind, for selection tests: sample k answers the exact solution when its seed
    is even, and otherwise ``wrong(instance)`` (a fixed wrong answer) or junk text, alternating by seed.

    Every candidate depends only on (puzzle, seed), as the Solver contract requires."""

    kind = "mllm"

    def __init__(self, name: str = "text-solver", tasks: Sequence[str] = ("maze-v1", "tsp-v1")):
        self.name = name
        self.tasks = list(tasks)
        self.calls = 0
        self.instances: dict[bytes, Any] = {}  # the puzzle behind each image, registered by the test

    def register(self, task_id: str, instance: Any, image: Image.Image) -> None:
        self.instances[image.tobytes()] = (get_task(task_id), instance)

    def supports(self, task_id: str) -> bool:
        return get_task(task_id).id in self.tasks

    def text_for(self, task: Any, instance: Any, seed: int) -> str:
        if seed % 2 == 0:
            return f"The answer is {task.answer_to_text(task.solve(instance))}"
        if seed % 4 == 1:
            return "I cannot tell."
        return f"Answer: {task.answer_to_text(wrong_answer(task, instance))}"

    def sample(self, task_id: str, images: Sequence[Image.Image], seeds: Sequence[Sequence[int]], *,
               num_inference_steps: int | None = None, batch_size: int | None = None,
               save_trajectory: bool = False, **kwargs: Any) -> list[list[RawCandidate]]:
        self.calls += 1
        out = []
        for image, row in zip(images, seeds):
            task, instance = self.instances[image.tobytes()]
            out.append([RawCandidate(text=self.text_for(task, instance, s)) for s in row])
        return out


def wrong_answer(task: Any, instance: Any) -> Answer:
    """A deterministic wrong answer: maze: the first move of the solution only (valid, not reaching the end);
    tsp: the cities in index order (a valid tour, usually longer than the optimum)."""
    ans = task.solve(instance)
    if task.name == "maze":
        return type(ans)(moves=ans.moves[:1])
    if task.name == "tsp":
        return type(ans)(tour=tuple(range(instance.n)))
    raise AssertionError(task)


def cand(index: int, answer: Answer | ParseFailure, verdict: Verdict) -> Candidate:
    """A hand-made candidate (its raw text is a placeholder: selection reads answers and verdicts only)."""
    return Candidate(index=index, seed=index, raw=RawCandidate(text=f"candidate {index}"), answer=answer,
                     verdict=verdict)
