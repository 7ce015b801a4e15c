"""Advantage estimators and the ReVisual-R1 trajectory selector: pure functions of per-trajectory tensors.

``group`` is an integer tensor naming each trajectory's group (its prompt); rewards are the shaped rewards.

- ``group_norm`` (GRPO / Dr. GRPO / Lite-PPO; TRL's ``scale_rewards``): ``A_i = r_i - mean_g(r)``, divided by the
  group's std (``group``, unbiased std, TRL's eps 1e-4), the batch std (``batch``) or nothing (``none``).
  ``stats_mask`` restricts the mean/std to some members (LUFFY's ``grpo_split``: on-policy only); every member
  still gets an advantage. A singleton group gets 0; a one-member statistics set uses std 1 (verl).
- ``conditional_split`` (CANON): within each group, sort by a metric (mean token entropy, or length), split at
  ``n // 2`` into a low half L and a high half H and compare across halves (see the formula in the function).
- ``pad_select`` (ReVisual-R1's Prioritized Advantage Distillation): drop trajectories whose |A| is near zero
  (they carry no gradient: GRPO's "gradient stagnation") and draw the update batch from the rest with priority
  ``softmax(|A| / temperature)``; returns per-trajectory multiplicities (row weights).
"""

from __future__ import annotations

from typing import Literal

import torch

from diffthinker.tasks.base import TaskError

__all__ = ["conditional_split", "group_norm", "pad_select"]


def _groups(group: torch.Tensor) -> list[torch.Tensor]:
    return [torch.nonzero(group == g).flatten() for g in torch.unique(group, sorted=True)]


def group_norm(rewards: torch.Tensor, group: torch.Tensor, scale: Literal["group", "batch", "none"] = "group",
               eps: float = 1e-4, stats_mask: torch.Tensor | None = None) -> torch.Tensor:
    """GRPO-family group-relative advantages (see the module docstring)."""
    if scale not in ("group", "batch", "none"):
        raise TaskError(f"scale_rewards {scale!r} is invalid; expected 'group', 'batch' or 'none'")
    r = rewards.double()
    adv = torch.zeros_like(r)
    stats = torch.ones_like(r, dtype=torch.bool) if stats_mask is None else stats_mask.bool()
    for idx in _groups(group):
        if len(idx) < 2:
            continue  # a singleton group has no baseline: advantage 0
        sel = idx[stats[idx]]
        if len(sel) == 0:
            sel = idx
        adv[idx] = r[idx] - r[sel].mean()
        if scale == "group":
            # verl's convention for a one-member statistics set: std 1
            adv[idx] = adv[idx] / ((r[sel].std() if len(sel) > 1 else 1.0) + eps)
    if scale == "batch" and int(stats.sum()) > 1:
        adv = adv / (r[stats].std() + eps)
    return adv.to(rewards.dtype)


def conditional_split(rewards: torch.Tensor, metric: torch.Tensor, group: torch.Tensor, *, alpha: float = 1.0,
                      lam: float = 1.0, beta: float = 0.0, length_variant: bool = False) -> torch.Tensor:
    """CANON's conditional advantage (reference code, ``dr_*_on_mean`` estimators), without its ``/ L_max``
    (our ``dr_grpo`` aggregator divides by ``L_max`` instead).

    Within a group sorted by ``metric`` (ties broken by position, so the split is deterministic) and cut at
    ``n // 2`` into a low half L and a high half H with reward means r̄_L, r̄_H:

    - entropy variant: ``i in H: λ(r_i − α·r̄_L + β) + (1−λ)(r_i − r̄_H)``;
      ``i in L: λ(α·r_i − r̄_H − β) + (1−λ)(r_i − r̄_L)``
    - length variant (``length_variant``): α moves onto r_i for H (long) members and onto r̄ for L (short) ones:
      ``i in H: λ(α·r_i − r̄_L + β) + …``, ``i in L: λ(r_i − α·r̄_H − β) + …``

    λ = 1 (default) compares each member with the other half (inter-group); λ = 0 is the intra-half baseline.
    Even n with α = 1, β = 0 gives ΣA = 0 per group.
    """
    r = rewards.double()
    m = metric.double()
    adv = torch.zeros_like(r)
    for idx in _groups(group):
        n = len(idx)
        if n < 2:
            continue
        order = sorted(range(n), key=lambda k: (float(m[idx[k]]), k))
        low = idx[torch.tensor(order[: n // 2])]
        high = idx[torch.tensor(order[n // 2:])]
        rl, rh = r[low].mean(), r[high].mean()
        if length_variant:
            adv[high] = lam * (alpha * r[high] - rl + beta) + (1 - lam) * (r[high] - rh)
            adv[low] = lam * (r[low] - alpha * rh - beta) + (1 - lam) * (r[low] - rl)
        else:
            adv[high] = lam * (r[high] - alpha * rl + beta) + (1 - lam) * (r[high] - rh)
            adv[low] = lam * (alpha * r[low] - rh - beta) + (1 - lam) * (r[low] - rl)
    return adv.to(rewards.dtype)


def pad_select(adv: torch.Tensor, *, threshold: float = 0.01, temperature: float = 1.0,
               num_samples: int | None = None, replacement: bool = True,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Prioritized Advantage Distillation: per-trajectory multiplicities (a float tensor of counts).

    Trajectories with ``|A| <= threshold`` get 0. From the rest, ``num_samples`` draws (default: as many as there
    are trajectories, so the update size stays constant) with probabilities ``softmax(|A| / temperature)`` over
    the eligible set; with ``replacement=False`` at most once each. No eligible trajectory: all zeros.
    """
    if temperature <= 0:
        raise TaskError(f"PAD temperature {temperature} must be > 0")
    a = adv.detach().double().abs()
    eligible = a > threshold
    counts = torch.zeros_like(a)
    k = int(eligible.sum())
    if k == 0:
        return counts.to(adv.dtype)
    n = len(a) if num_samples is None else int(num_samples)
    if not replacement:
        n = min(n, k)
    probs = torch.softmax(a[eligible] / temperature, dim=0)
    draws = torch.multinomial(probs.float(), n, replacement=replacement, generator=generator)
    idx = torch.nonzero(eligible).flatten()[draws]
    counts.index_add_(0, idx, torch.ones(n, dtype=counts.dtype))
    return counts.to(adv.dtype)
