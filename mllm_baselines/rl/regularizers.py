"""Regularizers: KL to a reference (k3), entropy bonus, SIREN's anchored selective entropy, VPPO's self-NLL.

Per-token terms (added to the surrogate loss before aggregation, like TRL's ``per_token_loss + beta * kl``):

- ``k3_kl``: ``π_ref/π_θ − log(π_ref/π_θ) − 1`` per token (DeepSeekMath / TRL / verl ``low_var_kl``).
- entropy bonus: ``−coef · H_t`` (LUFFY, ExGRPO: 0.001).
- self-NLL (VPPO's "entropy penalty"): ``+coef · (−log π_θ(o_t))`` on the model's own samples (it lowers entropy).

SIREN (``topp_entropy``, ``peak_mask``, ``anchored_entropy_coefficient``):

- entropy on the renormalised nucleus: the top-k logits (k ≤ 10000), cut where the cumulative probability reaches
  ``top_p`` (the crossing token kept), ``p̃ = p / Σ_nucleus p``, ``H_p = −Σ p̃ log p̃``; differentiable through p̃,
  the nucleus itself is not. With top_p → 1 (and k = |V|) it is the full entropy.
- per response, the peak-entropy mask keeps tokens with ``H_p`` above the row's ``peak_q`` quantile (top ~20 %).
- the regulariser ``λ (H_sel − H_anchor)²`` with ``H_sel`` the seq-mean-token-mean of ``H_p`` over the selected
  tokens of the whole batch and ``H_anchor`` fixed at the first RL step. Its gradient ``2λ(H_sel − H_anchor)∇H_sel``
  is what we apply: ``anchored_entropy_coefficient`` gives the detached factor ``2λ(H_sel − H_anchor)``, and each
  micro-batch adds ``factor · Σ_rows h_r / N`` (h_r the row's mean selected H_p, with gradient), which sums to the
  exact full-batch gradient under gradient accumulation. At ``H_sel = H_anchor`` the gradient is zero.
"""

from __future__ import annotations

import torch

from diffthinker.tasks.base import TaskError

__all__ = ["anchored_entropy_coefficient", "k3_kl", "peak_mask", "row_selected_mean", "topp_entropy"]


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    d = ref_logp - logp
    return torch.exp(d) - d - 1.0


def topp_entropy(logits: torch.Tensor, top_p: float = 0.8, top_k: int = 10000, chunk: int = 4096) -> torch.Tensor:
    """SIREN's nucleus entropy per position, [..., V] -> [...], computed over row chunks to bound memory."""
    if not 0 < top_p <= 1:
        raise TaskError(f"SIREN top_p {top_p} must be in (0, 1]")
    shape = logits.shape[:-1]
    flat = logits.reshape(-1, logits.shape[-1])
    k = min(top_k, flat.shape[-1])
    out = []
    for start in range(0, flat.shape[0], chunk):
        part = flat[start:start + chunk]
        vals = torch.topk(part, k, dim=-1).values             # sorted, descending
        p = torch.exp(vals - torch.logsumexp(part, dim=-1, keepdim=True))
        with torch.no_grad():
            before = p.cumsum(-1) - p
            keep = (before < top_p).to(p.dtype)               # the token crossing top_p is kept
        pk = p * keep
        pt = pk / pk.sum(-1, keepdim=True)
        out.append(-(pt * torch.log(pt.clamp(min=1e-30))).sum(-1))
    return torch.cat(out).reshape(shape)


def peak_mask(h: torch.Tensor, mask: torch.Tensor, q: float = 0.8) -> torch.Tensor:
    """Per row, tokens whose ``h`` exceeds the row's ``q`` quantile over its valid tokens (SIREN's
    ``mask_by_quantile``). A row whose tokens all tie keeps none; a one-token row keeps its token."""
    if not 0 <= q < 1:
        raise TaskError(f"SIREN peak quantile {q} must be in [0, 1)")
    out = torch.zeros_like(mask)
    for i in range(h.shape[0]):
        valid = mask[i] > 0
        n = int(valid.sum())
        if n == 0:
            continue
        if n == 1:
            out[i] = valid.to(mask.dtype)
            continue
        thr = torch.quantile(h[i][valid].float(), q)
        out[i] = ((h[i] > thr) & valid).to(mask.dtype)
    return out


def row_selected_mean(h: torch.Tensor, sel: torch.Tensor) -> torch.Tensor:
    """Per row, the mean of ``h`` over the selected tokens (0 for a row with none)."""
    return (h * sel).sum(-1) / sel.sum(-1).clamp(min=1)


def anchored_entropy_coefficient(h_sel: float, anchor: float, coef: float) -> float:
    """``d/dH [coef (H − anchor)²] = 2 coef (H − anchor)``: the detached factor of the exact gradient."""
    return 2.0 * coef * (h_sel - anchor)
