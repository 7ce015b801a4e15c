"""Per-token policy surrogates by trajectory origin, and the aggregators that turn them into one loss.

Surrogates return the per-token *loss* (the negative of the objective), shape [N, C]:

- ``clip_surrogate`` (PPO / GRPO / DAPO, TRL semantics): ``−min(ρA, clip(ρ, 1−ε_low, 1+ε_high)A)`` with the token
  ratio ρ = exp(logp − old_logp); optional dual clip (verl / EasyR1): for A < 0 the loss is capped at ``−c·A``.
- ``noclip_surrogate`` (LUFFY's on-policy tokens, ``loss_remove_clip``): ``−ρA``.
- ``shaped_is`` (LUFFY / ExGRPO off-policy tokens): ``−A·f(w)`` with ``f(w) = w / (w + γ)`` and w = π_θ (behaviour
  taken as 1, LUFFY) or ``exp(logp − behavior_logp)`` (recorded behaviour, ExGRPO). Its gradient is
  ``γ/(w+γ)² ∇w``: it boosts low-probability tokens ("policy shaping").

Aggregators (TRL ``loss_type`` names), over an optimizer step's rows i with weights w_i (ReVisual-R1 PAD
multiplicities, else 1) and completion masks:

- ``grpo``: ``Σ_i w_i (1/|o_i|) Σ_t ℓ_it / Σ_i w_i``                 (seq-mean-token-mean, length-biased)
- ``dapo``: ``Σ_i w_i Σ_t ℓ_it / Σ_i w_i |o_i|``                      (global token mean)
- ``dr_grpo``: ``Σ_i w_i Σ_t ℓ_it / (Σ_i w_i · L_max)``                (constant normaliser)
- ``bnpo``: the token mean of each micro-batch, averaged over micro-batches (TRL's local token mean)

The normalisers are computed once for the whole optimizer step (all micro-batches, all processes), so gradient
accumulation gives exactly the gradient of one big batch (TRL's ``num_items_in_batch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from diffthinker.tasks.base import TaskError

__all__ = ["LOSS_TYPES", "Normalizer", "aggregate", "clip_surrogate", "noclip_surrogate", "shaped_is"]

LossType = Literal["grpo", "dapo", "dr_grpo", "bnpo"]
LOSS_TYPES = ("grpo", "dapo", "dr_grpo", "bnpo")


def clip_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, *, eps_low: float = 0.2,
                   eps_high: float | None = None, dual_clip: float | None = None
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate loss per token, and boolean masks of the clipped tokens (low, high, dual)."""
    eps_high = eps_low if eps_high is None else eps_high
    a = adv.unsqueeze(-1) if adv.dim() == 1 else adv
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * a
    clipped = torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * a
    loss = -torch.min(unclipped, clipped)
    stats = {"clip_low": (ratio < 1 - eps_low) & (a < 0), "clip_high": (ratio > 1 + eps_high) & (a > 0)}
    if dual_clip is not None:
        if dual_clip <= 1:
            raise TaskError(f"dual_clip {dual_clip} must be > 1 (verl's clip_ratio_c, default 3)")
        capped = torch.min(loss, -dual_clip * a)
        stats["clip_dual"] = (a < 0) & (capped < loss)
        loss = torch.where(a < 0, capped, loss)
    return loss, stats


def noclip_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    a = adv.unsqueeze(-1) if adv.dim() == 1 else adv
    return -torch.exp(logp - old_logp) * a


def shaped_is(logp: torch.Tensor, adv: torch.Tensor, *, gamma: float = 0.1,
              behavior_logp: torch.Tensor | None = None, max_ratio: float | None = None) -> torch.Tensor:
    """LUFFY / ExGRPO policy shaping: ``−A · w / (w + γ)`` (see the module docstring)."""
    if gamma <= 0:
        raise TaskError(f"shaped importance sampling needs gamma > 0, got {gamma}")
    a = adv.unsqueeze(-1) if adv.dim() == 1 else adv
    w = torch.exp(logp if behavior_logp is None else logp - behavior_logp)
    if max_ratio is not None:
        w = torch.clamp(w, max=max_ratio)
    return -a * (w / (w + gamma))


@dataclass(frozen=True)
class Normalizer:
    """The denominators of one optimizer step (see the module docstring)."""

    loss_type: str
    rows: float            # Σ_i w_i
    tokens: float          # Σ_i w_i |o_i|
    max_len: float         # L_max (dr_grpo)
    micro_batches: int = 1  # bnpo

    def __post_init__(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise TaskError(f"loss_type {self.loss_type!r} is invalid; expected one of {list(LOSS_TYPES)}")


def aggregate(tok_loss: torch.Tensor, mask: torch.Tensor, norm: Normalizer,
              row_weight: torch.Tensor | None = None) -> torch.Tensor:
    """This micro-batch's share of the step loss (summing the shares over micro-batches gives the step loss)."""
    w = torch.ones(tok_loss.shape[0], device=tok_loss.device) if row_weight is None else row_weight
    masked = tok_loss * mask
    per_row = masked.sum(-1)
    if norm.loss_type == "grpo":
        lengths = mask.sum(-1).clamp(min=1)
        return (w * per_row / lengths).sum() / max(norm.rows, 1e-12)
    if norm.loss_type == "dapo":
        return (w * per_row).sum() / max(norm.tokens, 1e-12)
    if norm.loss_type == "dr_grpo":
        return (w * per_row).sum() / max(norm.rows * norm.max_len, 1e-12)
    # bnpo: the local token mean of this micro-batch
    local = (w * mask.sum(-1)).sum().clamp(min=1.0)
    return (w * per_row).sum() / local / norm.micro_batches
