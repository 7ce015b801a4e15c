"""One batched forward helper shared by SFT, the RL probes and the RL loss: completion log-probs, entropies, logits.

Rows are laid out as ``Policy.encode`` builds them (left-padded prompt of width P, right-padded completion of
width C), so the logits predicting completion token ``j`` sit at position ``P - 1 + j``. Only the last ``C + 1``
positions go through the LM head (``logits_to_keep``), which is most of the saving on long image prompts.

Shared images. A GRPO group is G rows with one image; a ``RolloutBatch`` micro-batch therefore carries each
distinct image once (``image_source``, ``image_grid_distinct``). The vision tower then runs once per distinct
image and its outputs (and Qwen3-VL's deepstack features) are repeated per row through transformers'
``mm_encoder_outputs``; the gradient accumulates over the rows exactly as with repeated pixels (a test checks the
logits agree). A wrapped (DDP) model gets repeated pixels instead, so its gradient hooks see an ordinary forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["ForwardOut", "completion_forward", "entropy_from_logits", "gather_logps"]


@dataclass
class ForwardOut:
    logits: torch.Tensor       # [N, C, V], divided by the temperature
    logp: torch.Tensor         # [N, C] log-prob of the completion tokens
    entropy: torch.Tensor | None  # [N, C] full-vocabulary entropy, when asked for


def gather_logps(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``log_softmax(logits)[..., ids]`` without materialising a second [N, C, V] tensor (logsumexp form)."""
    picked = torch.gather(logits, -1, ids.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Per-position entropy of ``softmax(logits)`` (differentiable)."""
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def completion_forward(policy: Any, batch: dict[str, Any], *, temperature: float = 1.0, want_entropy: bool = False,
                       model: torch.nn.Module | None = None) -> ForwardOut:
    """Forward ``batch`` (with ``completion_ids``) through ``model`` (default: the policy's) and read the completion.

    ``temperature`` divides the logits, as the sampler did (TRL does the same), so log-probs are those of the
    sampling distribution before truncation."""
    model = model if model is not None else policy.model
    inputs = policy.forward_inputs(batch)
    source = batch.get("image_source")
    if source is not None:
        pix = inputs.pop("pixel_values")
        distinct = batch["image_grid_distinct"].to(pix.device)
        if hasattr(model, "get_image_features"):
            feats = model.get_image_features(pix, distinct, return_dict=True)
            feats.pooler_output = tuple(feats.pooler_output[j] for j in source)
            deep = getattr(feats, "deepstack_features", None)
            if deep is not None:
                feats.deepstack_features = [tuple(layer[j] for j in source) for layer in deep]
            inputs["mm_encoder_outputs"] = {"image": feats}
        else:  # a wrapped model: repeat the pixels per row
            sizes = distinct.prod(-1).tolist()
            chunks = torch.split(pix, sizes)
            inputs["pixel_values"] = torch.cat([chunks[j] for j in source])
    ids = batch["completion_ids"].to(inputs["input_ids"].device)
    c = ids.shape[1]
    out = model(**inputs, logits_to_keep=c + 1, use_cache=False)
    logits = out.logits[:, :-1, :].float()
    if temperature != 1.0 and temperature > 0:
        logits = logits / temperature
    logp = gather_logps(logits, ids)
    ent = entropy_from_logits(logits) if want_entropy else None
    return ForwardOut(logits, logp, ent)
