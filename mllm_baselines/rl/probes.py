"""Probes: no-grad forward passes that add per-token fields to a ``RolloutBatch`` before the advantage stage.

- ``old_probe``: log-probs of the sampled tokens under the policy that generated them (π_old), their full
  entropy (CANON's metric, the 80/20 mask, logging), and, for SIREN, the nucleus entropy ``topp_entropy``.
- ``ref_probe``: log-probs under the frozen reference (KL, when ``beta > 0``).
- ``aug_probe``: VPPO's log-probs with every image patch-blackened (seeded per group and step).
- ``candidate_entropy``: ExGRPO's mean entropy of stored trajectories under the current policy.

All run in micro-batches of rows, in eval mode, and leave the model's train/eval mode as they found it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch

from ..forward import completion_forward
from ..generation import derive_seed
from ..prompts import Prompt
from .batch import RolloutBatch
from .regularizers import topp_entropy
from .weights import patch_blacken

__all__ = ["aug_probe", "candidate_entropy", "micro_batches", "old_probe", "ref_probe"]


def micro_batches(rows: Sequence[int], size: int) -> list[list[int]]:
    rows = list(rows)
    return [rows[i:i + size] for i in range(0, len(rows), size)]


@contextmanager
def _eval(model: torch.nn.Module) -> Iterator[None]:
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was)


def old_probe(policy: Any, batch: RolloutBatch, micro: int, temperature: float, *, siren: Any = None,
              model: torch.nn.Module | None = None) -> None:
    model = model if model is not None else policy.model
    n, c = batch.mask.shape
    logp, ent = torch.zeros(n, c), torch.zeros(n, c)
    tp = torch.zeros(n, c) if siren is not None else None
    with _eval(model):
        for idx in micro_batches(range(n), micro):
            out = completion_forward(policy, batch.rows(idx), temperature=temperature, want_entropy=True, model=model)
            t = torch.tensor(idx)
            logp[t] = out.logp.float().cpu()
            ent[t] = out.entropy.float().cpu()
            if tp is not None:
                tp[t] = topp_entropy(out.logits, siren.top_p, siren.top_k).float().cpu()
    m = batch.mask
    batch.tokens["old_logp"] = logp * m
    batch.tokens["entropy"] = ent * m
    if tp is not None:
        batch.tokens["topp_entropy"] = tp * m


def ref_probe(policy: Any, ref_model: torch.nn.Module, batch: RolloutBatch, micro: int, temperature: float) -> None:
    n, c = batch.mask.shape
    out_t = torch.zeros(n, c)
    with _eval(ref_model):
        for idx in micro_batches(range(n), micro):
            out = completion_forward(policy, batch.rows(idx), temperature=temperature, model=ref_model)
            out_t[torch.tensor(idx)] = out.logp.float().cpu()
    batch.tokens["ref_logp"] = out_t * batch.mask


def corrupted_pixels(policy: Any, batch: RolloutBatch, *, patch: int, p: float, seed: int, step: int
                     ) -> torch.Tensor | None:
    """The batch's pixel rows (same per-row layout and grids as ``batch.enc``) recomputed from patch-blackened
    copies of its images; each distinct image is corrupted once (seeded by step and group)."""
    per_prompt: dict[int, torch.Tensor] = {}
    for gi, g in enumerate(batch.groups):
        if g.prompt.image is None or id(g.prompt) in per_prompt:
            continue
        gen = torch.Generator().manual_seed(derive_seed(seed, "vppo", step, gi))
        img = patch_blacken(g.prompt.image, patch, p, gen)
        per_prompt[id(g.prompt)] = policy.processor.image_processor(images=[img], return_tensors="pt")["pixel_values"]
    if not per_prompt:
        return None
    return torch.cat([per_prompt[id(pr)] for pr in batch.prompts if pr.image is not None])


def aug_probe(policy: Any, batch: RolloutBatch, micro: int, temperature: float, *, patch: int, p: float, seed: int,
              step: int) -> None:
    pix = corrupted_pixels(policy, batch, patch=patch, p=p, seed=seed, step=step)
    n, c = batch.mask.shape
    out_t = batch.tokens["old_logp"].clone() if pix is None else torch.zeros(n, c)
    if pix is not None:
        with _eval(policy.model):
            for idx in micro_batches(range(n), micro):
                out = completion_forward(policy, batch.rows(idx, pixel_values=pix), temperature=temperature)
                out_t[torch.tensor(idx)] = out.logp.float().cpu()
    batch.tokens["aug_logp"] = out_t * batch.mask


def candidate_entropy(policy: Any, prompt: Prompt, candidates: Sequence[Sequence[int]], temperature: float
                      ) -> list[float]:
    """Mean per-token entropy of each candidate completion of ``prompt`` under the current policy."""
    enc = policy.encode([prompt] * len(candidates), candidates)
    with _eval(policy.model):
        out = completion_forward(policy, enc, temperature=temperature, want_entropy=True)
    m = enc["completion_mask"]
    return ((out.entropy.float().cpu() * m).sum(-1) / m.sum(-1).clamp(min=1)).tolist()
