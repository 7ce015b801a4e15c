"""The record one RL step passes between components: trajectories grouped by prompt, then a tensor batch.

- ``Trajectory``: one completion with its origin (``on``: sampled now; ``offline``: an exact-solver trace, LUFFY;
  ``replay``: a past correct rollout with its recorded per-token log-probs, ExGRPO), verifier outcome, raw and
  shaped reward.
- ``Group``: the trajectories of one puzzle prompt (the GRPO group).
- ``RolloutBatch``: the groups flattened into rows, with the model inputs (``Policy.encode``), per-row tensors
  (``reward``, ``adv``, ``row_weight``, ``group``) and named per-token tensors in ``tokens`` (``old_logp``,
  ``entropy``, ``ref_logp``, ``aug_logp``, ``behavior_logp``, ``topp_entropy``, ``tok_weight``, ``tok_mask``).
  ``rows(idx)`` slices out the model inputs of a micro-batch (pixel rows follow their image).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from ..data import Puzzle
from ..prompts import Prompt

__all__ = ["ORIGINS", "Group", "RolloutBatch", "Trajectory"]

ORIGINS = ("on", "offline", "replay")


@dataclass
class Trajectory:
    ids: list[int]
    text: str
    truncated: bool
    origin: str = "on"
    behavior_logp: list[float] | None = None
    parsed: bool = False
    valid: bool = False
    correct: bool = False
    answer: Any = None
    reward_raw: float = 0.0
    reward: float = 0.0

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise ValueError(f"trajectory origin {self.origin!r} is invalid; expected one of {ORIGINS}")


@dataclass
class Group:
    puzzle: Puzzle
    prompt: Prompt
    members: list[Trajectory] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return sum(t.correct for t in self.members) / max(1, len(self.members))

    @property
    def on_policy_correct(self) -> tuple[int, int]:
        on = [t for t in self.members if t.origin == "on"]
        return sum(t.correct for t in on), len(on)

    @property
    def zero_variance(self) -> bool:
        rewards = [t.reward for t in self.members]
        return max(rewards) - min(rewards) < 1e-9


class RolloutBatch:
    """Rows = the members of ``groups`` in order. Tensors stay on the CPU; ``rows`` moves nothing."""

    def __init__(self, policy: Any, groups: Sequence[Group]):
        self.groups = list(groups)
        self.trajs = [t for g in self.groups for t in g.members]
        if not self.trajs:
            raise ValueError("a rollout batch needs at least one trajectory")
        prompts = [g.prompt for g in self.groups for _ in g.members]
        self.prompts = prompts
        self.enc = policy.encode(prompts, [t.ids for t in self.trajs])
        self.mask = self.enc["completion_mask"]
        n = len(self.trajs)
        self.group = torch.tensor([gi for gi, g in enumerate(self.groups) for _ in g.members], dtype=torch.long)
        self.origin = [t.origin for t in self.trajs]
        self.reward = torch.tensor([t.reward for t in self.trajs], dtype=torch.float32)
        self.correct = torch.tensor([t.correct for t in self.trajs], dtype=torch.bool)
        self.truncated = torch.tensor([t.truncated for t in self.trajs], dtype=torch.bool)
        self.lengths = self.mask.sum(-1)
        self.adv = torch.zeros(n)
        self.row_weight = torch.ones(n)
        self.tokens: dict[str, torch.Tensor] = {}
        beh = torch.zeros_like(self.mask)
        for i, t in enumerate(self.trajs):
            if t.behavior_logp is not None:
                beh[i, : len(t.behavior_logp)] = torch.tensor(t.behavior_logp, dtype=beh.dtype)
        self.tokens["behavior_logp"] = beh
        # Policy.encode lays out pixel rows per image row (one copy per row); each row points at the FIRST copy of
        # its image (start, end, grid index), so rows sharing a prompt share a slice and the key of their image
        self._pix: list[tuple[int, int, int] | None] = []
        grids = self.enc.get("image_grid_thw")
        first: dict[int, tuple[int, int, int]] = {}
        start = img_row = 0
        for p in prompts:
            if p.image is None:
                self._pix.append(None)
                continue
            count = int(grids[img_row].prod())
            first.setdefault(id(p), (start, start + count, img_row))
            self._pix.append(first[id(p)])
            start += count
            img_row += 1

    def __len__(self) -> int:
        return len(self.trajs)

    @property
    def num_groups(self) -> int:
        return len(self.groups)

    def origin_mask(self, origin: str) -> torch.Tensor:
        return torch.tensor([o == origin for o in self.origin], dtype=torch.bool)

    def rows(self, idx: Sequence[int], pixel_values: torch.Tensor | None = None) -> dict[str, Any]:
        """Model inputs of rows ``idx`` (``pixel_values`` replaces the batch's, e.g. VPPO's corrupted images).

        The G rows of a group share one image: the pixels of each distinct image are included once, with
        ``image_source`` (per image row, the index of its distinct image) and ``image_grid_distinct``, so the
        forward encodes each image once (``forward.completion_forward``)."""
        idx = list(idx)
        t = torch.tensor(idx, dtype=torch.long)
        out: dict[str, Any] = {"prompt_len": self.enc["prompt_len"]}
        for k in ("input_ids", "attention_mask", "completion_ids", "completion_mask", "mm_token_type_ids"):
            if k in self.enc:
                out[k] = self.enc[k][t]
        pix = pixel_values if pixel_values is not None else self.enc.get("pixel_values")
        parts, grids, distinct_grids, source = [], [], [], []
        where: dict[int, int] = {}
        for i in idx:
            sl = self._pix[i]
            if sl is None:
                continue
            if sl[2] not in where:
                where[sl[2]] = len(parts)
                parts.append(pix[sl[0]:sl[1]])
                distinct_grids.append(self.enc["image_grid_thw"][sl[2]])
            source.append(where[sl[2]])
            grids.append(self.enc["image_grid_thw"][sl[2]])
        if parts:
            out["pixel_values"] = torch.cat(parts)
            out["image_grid_thw"] = torch.stack(grids)
            out["image_grid_distinct"] = torch.stack(distinct_grids)
            out["image_source"] = source
        else:
            out.pop("mm_token_type_ids", None)
        return out
