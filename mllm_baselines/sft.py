"""Supervised warm start: the policy learns to answer puzzles with the exact solver's answer.

An example is (prompt, target) where the target is ``prompts.target_text``: the canonical answer text, optionally
after a solver-derived reasoning trace (``reasoning=True``), followed by the EOS token (the model must learn to
stop). The loss is the cross-entropy of the **target tokens only**: prompt and image tokens carry no loss (they are
not in the completion mask at all), averaged over the target tokens of the batch.

Prompt modes: ``image`` (the benchmark setting), ``text`` (the puzzle's ``to_text``; ReVisual-R1's text-only cold
start) or ``both`` (each puzzle once in each mode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import torch

from diffthinker.tasks import get_task
from diffthinker.tasks.base import TaskError

from .data import Puzzle
from .forward import completion_forward
from .prompts import Prompt, build_prompt, target_text

__all__ = ["SFTExample", "sft_examples", "sft_loss"]

SFTMode = Literal["image", "text", "both"]


@dataclass
class SFTExample:
    prompt: Prompt
    target_ids: list[int]   # target tokens + EOS
    target: str


def sft_examples(policy: Any, puzzles: Sequence[Puzzle], *, mode: SFTMode = "image",
                 reasoning: bool = False) -> list[SFTExample]:
    """The examples for ``puzzles`` (``both``: each puzzle as an image prompt, then as a text prompt)."""
    if mode not in ("image", "text", "both"):
        raise TaskError(f"unknown SFT prompt mode {mode!r}; expected 'image', 'text' or 'both'")
    modes = ["image", "text"] if mode == "both" else [mode]
    out = []
    for p in puzzles:
        task = get_task(p.spec.task)
        text = target_text(task, p.instance, reasoning=reasoning)
        ids = policy.encode_text(text) + [policy.eos_id]
        for m in modes:
            prompt = build_prompt(task, mode=m, instance=p.instance, image_size=policy.image_size)
            out.append(SFTExample(prompt, ids, text))
    return out


def sft_loss(policy: Any, examples: Sequence[SFTExample], *, model: torch.nn.Module | None = None,
             normalizer: float | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Summed target-token cross-entropy divided by ``normalizer`` (default: this batch's target-token count).

    Pass the token count of the whole optimizer step as ``normalizer`` when accumulating micro-batches, so the
    gradient equals that of one big batch."""
    if not examples:
        raise TaskError("sft_loss needs at least one example")
    batch = policy.encode([e.prompt for e in examples], [e.target_ids for e in examples])
    mask = batch["completion_mask"].to(policy.device)
    out = completion_forward(policy, batch, model=model)
    nll = -(out.logp * mask).sum()
    tokens = float(mask.sum())
    loss = nll / (normalizer if normalizer is not None else tokens)
    with torch.no_grad():
        pred = out.logits.argmax(-1).to(mask.device)
        correct_tok = ((pred == batch["completion_ids"].to(mask.device)).float() * mask).sum()
        seq_exact = (((pred == batch["completion_ids"].to(mask.device)) | (mask == 0)).all(-1)).float().mean()
    return loss, {"sft_nll_sum": float(nll.detach()), "sft_tokens": tokens, "sft_token_acc": float(correct_tok) / tokens,
                  "sft_exact": float(seq_exact)}
