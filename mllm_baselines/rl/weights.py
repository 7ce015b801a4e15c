"""Token weights and masks (detached, multiplicative) and VPPO's corrupted-image probe input.

- ``patch_blacken``: VPPO's ``random_patch_blackening``: every ``patch`` x ``patch`` block of the image is zeroed
  with probability ``p`` (seeded generator). The default patch is the policy's vision patch size.
- ``perception_dependency``: VPPO's per-token dependency on the image, from the sampled-token log-probs with the
  real and the corrupted image (the reference code's k3 estimate): ``Δ = clamp(logp_aug − logp, ±20)``,
  ``S = clamp(exp(Δ) − Δ − 1, 0, 10)``.
- ``perception_shaping``: Trajectory Advantage Shaping: ``S̄(τ)`` = mean of S over the response, min-max normalised
  over the batch to n(τ) ∈ [0, 1], ``α = β_min + (β_max − β_min) n`` with ``β_max = β_min + (1 − β_min) / mean(n)``,
  so mean(α) = 1 exactly. (The reference normalises per device; callers pass the all-gathered batch, a deliberate
  deviation recorded in the reference notes.)
- ``topk_token_mask``: Token Gradient Filtering: per response keep the ``ceil(k·|o|)`` tokens with the largest
  score (VPPO k = 0.4 on S; ties broken by position).
- ``high_entropy_mask`` (the "80/20" rule, TRL ``top_entropy_quantile``): keep tokens whose entropy is at or above
  the batch quantile ``1 − q`` of the valid tokens' entropies.
- ``truncation_mask`` (DAPO overlong filtering, TRL ``mask_truncated_completions``): zero rows that ran out of
  budget.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from diffthinker.tasks.base import TaskError

__all__ = ["high_entropy_mask", "patch_blacken", "perception_dependency", "perception_shaping", "topk_token_mask",
           "truncation_mask"]


def patch_blacken(image: Image.Image, patch: int, p: float, generator: torch.Generator) -> Image.Image:
    if patch < 1 or not 0 <= p <= 1:
        raise TaskError(f"patch_blacken needs patch >= 1 and 0 <= p <= 1, got patch={patch}, p={p}")
    arr = np.array(image.convert("RGB"), dtype=np.uint8)
    h, w = arr.shape[:2]
    gh, gw = math.ceil(h / patch), math.ceil(w / patch)
    drop = (torch.rand(gh, gw, generator=generator) < p).numpy()
    mask = np.kron(drop, np.ones((patch, patch), dtype=bool))[:h, :w]
    arr[mask] = 0
    return Image.fromarray(arr, "RGB")


def perception_dependency(logp: torch.Tensor, aug_logp: torch.Tensor) -> torch.Tensor:
    delta = torch.clamp(aug_logp - logp, -20.0, 20.0)
    return torch.clamp(torch.exp(delta) - delta - 1.0, 0.0, 10.0)


def perception_shaping(dep: torch.Tensor, mask: torch.Tensor, beta_min: float = 0.9) -> torch.Tensor:
    """α per trajectory (mean exactly 1 up to float error; all 1 when every S̄ is equal)."""
    if not 0 <= beta_min <= 1:
        raise TaskError(f"perception beta_min {beta_min} must be in [0, 1]")
    lengths = mask.sum(-1).clamp(min=1)
    mean_s = ((dep * mask).sum(-1) / lengths).double()
    lo, hi = mean_s.min(), mean_s.max()
    if float(hi - lo) <= 1e-12:
        return torch.ones_like(mean_s, dtype=dep.dtype)
    n = (mean_s - lo) / (hi - lo)
    beta_max = beta_min + (1 - beta_min) / n.mean()
    return (beta_min + (beta_max - beta_min) * n).to(dep.dtype)


def topk_token_mask(score: torch.Tensor, mask: torch.Tensor, frac: float) -> torch.Tensor:
    if not 0 < frac <= 1:
        raise TaskError(f"token fraction {frac} must be in (0, 1]")
    out = torch.zeros_like(mask)
    for i in range(score.shape[0]):
        valid = torch.nonzero(mask[i] > 0).flatten()
        if len(valid) == 0:
            continue
        k = math.ceil(frac * len(valid))
        s = score[i, valid].double()
        # stable ordering: larger score first, then earlier position
        order = sorted(range(len(valid)), key=lambda j: (-float(s[j]), j))[:k]
        out[i, valid[torch.tensor(order)]] = 1
    return out


def high_entropy_mask(entropy: torch.Tensor, mask: torch.Tensor, q: float) -> torch.Tensor:
    if not 0 < q <= 1:
        raise TaskError(f"top_entropy_quantile {q} must be in (0, 1]")
    vals = entropy[mask > 0].float()
    if vals.numel() == 0:
        return torch.zeros_like(mask)
    thr = torch.quantile(vals, 1 - q)
    return ((entropy >= thr) & (mask > 0)).to(mask.dtype)


def truncation_mask(truncated: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return mask * (~truncated.bool()).to(mask.dtype).unsqueeze(-1)
