"""Trajectory sources: on-policy sampling, exact-solver traces (LUFFY), the experience buffer (ExGRPO) and the group
filter (DAPO dynamic sampling / EasyR1 online filtering).

Seeds. Completion ``k`` of group slot ``j`` in generation round ``r`` of RL step ``s`` is sampled with the seed
``derive_seed(run_seed, "rl", s, r, j, k)``: independent of batching and identical after a resume.

ExGRPO's ``ExperienceBuffer`` (the reference's ``experience/`` code, count units):

- ``observe(groups)``: for each question with k of its K on-policy members correct: k = K retires it (removed from
  the buffer, never drawn again); k = 0 stores nothing; ``lbound < k <= rbound`` puts it in bucket k and appends
  each new correct trajectory (token ids + the per-token log-probs recorded at collection time), de-duplicated by
  text and capped at ``max_per_question`` (oldest dropped).
- ``switch``: mixed mode starts once a batch's on-policy solve rate exceeds ``start_solve_rate`` (0.35) and stays on.
- ``sample_questions(n, generator)``: bucket weights ``w(k) ∝ N(k; K/2, σ=1)``, a multinomial over non-empty
  buckets, then uniformly without replacement inside the bucket.
- the trainer then keeps, of each drawn question's stored trajectories (at most ``max_candidates``, newest), the one
  with the lowest mean entropy under the current policy (``exp_metric=ent, argmin``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from diffthinker.tasks import get_task

from ..data import LevelSpec, Puzzle
from ..generation import SamplingConfig, derive_seed
from ..prompts import Prompt, target_text
from ..rewards import RewardConfig, score_completion
from .batch import Group, Trajectory

__all__ = ["ExperienceBuffer", "filter_groups", "offline_trace", "sample_group_members", "score_trajectory"]


def score_trajectory(traj: Trajectory, puzzle: Puzzle, reward: RewardConfig) -> Trajectory:
    s = score_completion(puzzle.spec.task, puzzle.instance, traj.text, reward)
    traj.parsed, traj.valid, traj.correct, traj.answer = s.parsed, s.valid, s.correct, s.answer
    traj.reward_raw = traj.reward = s.reward
    return traj


def sample_group_members(policy: Any, generator: Any, slots: Sequence[tuple[Prompt, int]], *, seed: int, step: int,
                         rnd: int, sampling: SamplingConfig, max_new_tokens: int,
                         batch_size: int | None = None) -> list[list[Trajectory]]:
    """``count`` on-policy completions for each ``(prompt, count)`` slot, in one batched generation call."""
    prompts, seeds = [], []
    for j, (prompt, count) in enumerate(slots):
        for k in range(count):
            prompts.append(prompt)
            seeds.append(derive_seed(seed, "rl", step, rnd, j, k))
    comps = generator.generate(policy, prompts, seeds, sampling, max_new_tokens, batch_size=batch_size) \
        if prompts else []
    out, pos = [], 0
    for _, count in slots:
        out.append([Trajectory(c.ids, c.text, c.truncated, "on") for c in comps[pos:pos + count]])
        pos += count
    return out


def offline_trace(policy: Any, puzzle: Puzzle, *, reasoning: bool = False) -> Trajectory:
    """LUFFY's off-policy member: the exact solver's answer in the policy's own response format, EOS-terminated."""
    task = get_task(puzzle.spec.task)
    text = target_text(task, puzzle.instance, reasoning=reasoning)
    return Trajectory(policy.encode_text(text) + [policy.eos_id], text, False, "offline")


def filter_groups(groups: Sequence[Group], min_acc: float, max_acc: float) -> list[Group]:
    """Keep groups whose accuracy lies in [min_acc, max_acc] (DAPO: 0 < acc < 1, i.e. non-zero reward variance
    in correctness; EasyR1: [0.01, 0.99])."""
    return [g for g in groups if min_acc <= g.accuracy <= max_acc]


@dataclass
class _Entry:
    spec: list[str]
    seed: int
    instance: str
    bucket: int
    trajs: list[dict[str, Any]] = field(default_factory=list)   # {"ids", "text", "logp"}


class ExperienceBuffer:
    """ExGRPO's replay store (see the module docstring). All state is plain JSON (``state_dict``)."""

    def __init__(self, group_size: int, *, lbound: int = 0, rbound: int | None = None, sigma: float = 1.0,
                 start_solve_rate: float = 0.35, max_per_question: int = 8):
        self.K = group_size
        self.lbound = lbound
        self.rbound = group_size - 1 if rbound is None else rbound
        self.sigma = sigma
        self.start_solve_rate = start_solve_rate
        self.max_per_question = max_per_question
        self.entries: dict[str, _Entry] = {}
        self.retired: set[str] = set()
        self.active = False

    def __len__(self) -> int:
        return len(self.entries)

    def buckets(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for h in sorted(self.entries):
            out.setdefault(self.entries[h].bucket, []).append(h)
        return out

    def observe(self, groups: Sequence[Group], old_logps: Sequence[Sequence[list[float] | None]] | None = None
                ) -> None:
        """Update buckets from the on-policy members of ``groups``; ``old_logps[g][m]``: member m's recorded
        per-token log-probs (required for the correct on-policy members that get stored)."""
        solved = total = 0
        for gi, g in enumerate(groups):
            on = [(m, t) for m, t in enumerate(g.members) if t.origin == "on"]
            k = sum(t.correct for _, t in on)
            solved += k
            total += len(on)
            h = g.puzzle.content_hash
            if not on:
                continue
            if k == len(on):
                self.retired.add(h)
                self.entries.pop(h, None)
                continue
            if k == 0 or not (self.lbound < k <= self.rbound):
                continue
            e = self.entries.get(h)
            if e is None:
                e = _Entry([g.puzzle.spec.task, g.puzzle.spec.level], g.puzzle.seed, g.puzzle.instance.to_json(), k)
                self.entries[h] = e
            e.bucket = k
            known = {t["text"] for t in e.trajs}
            for m, t in on:
                if t.correct and t.text not in known:
                    logp = old_logps[gi][m] if old_logps is not None else None
                    if logp is None:
                        raise ValueError("ExperienceBuffer.observe needs the recorded log-probs of stored rollouts")
                    e.trajs.append({"ids": list(t.ids), "text": t.text, "logp": [float(x) for x in logp]})
                    known.add(t.text)
            e.trajs = e.trajs[-self.max_per_question:]
        if total and solved / total > self.start_solve_rate:
            self.active = True

    def bucket_weight(self, k: int) -> float:
        return math.exp(-0.5 * ((k - self.K / 2) / self.sigma) ** 2)

    def sample_questions(self, n: int, generator: torch.Generator) -> list[str]:
        """Up to ``n`` distinct question hashes: a bucket by weight, then a question uniformly inside it."""
        buckets = {k: list(v) for k, v in self.buckets().items()}
        out: list[str] = []
        while len(out) < n and buckets:
            keys = sorted(buckets)
            w = torch.tensor([self.bucket_weight(k) for k in keys], dtype=torch.float64)
            if float(w.sum()) <= 0:
                w = torch.ones_like(w)
            k = keys[int(torch.multinomial(w, 1, generator=generator))]
            items = buckets[k]
            out.append(items.pop(int(torch.randint(len(items), (1,), generator=generator))))
            if not items:
                del buckets[k]
        return out

    def puzzle(self, h: str) -> Puzzle:
        e = self.entries[h]
        task = get_task(e.spec[0])
        return Puzzle(LevelSpec(task.id, e.spec[1]), e.seed, task.instance_from_json(e.instance), h)

    def candidates(self, h: str, max_candidates: int) -> list[dict[str, Any]]:
        return self.entries[h].trajs[-max_candidates:]

    def state_dict(self) -> dict[str, Any]:
        return {"active": self.active, "retired": sorted(self.retired),
                "entries": {h: {"spec": e.spec, "seed": e.seed, "instance": e.instance, "bucket": e.bucket,
                                "trajs": e.trajs} for h, e in sorted(self.entries.items())}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.active = bool(state["active"])
        self.retired = set(state["retired"])
        self.entries = {h: _Entry(list(e["spec"]), int(e["seed"]), e["instance"], int(e["bucket"]),
                                  [dict(t) for t in e["trajs"]]) for h, e in state["entries"].items()}
