"""One RL step of the GRPO family, assembled from the components by configuration (``config.RLArgs``).

Step order (reference/grpo_family.md §7):

1. **source**: draw ``batch_size`` puzzles (image or text prompts per the curriculum); with replay active, a
   ``ratio`` of them come from the experience buffer (1 stored trajectory + G−1 fresh rollouts each); with
   ``offline.k``, k members of every group are exact-solver traces; the rest are sampled now (per-row seeds).
2. **verify** every member (graded reward) and **shape** rewards: DAPO overlong penalty, DIVER diversity bonus.
3. **filter** (DAPO dynamic sampling / online filtering): repeat 1-2 until enough groups pass, or give up after
   ``max_gen_batches`` rounds.
4. **probes**: old log-probs + entropies (+ SIREN nucleus entropy), reference log-probs (``beta > 0``), VPPO's
   corrupted-image log-probs; then the replay buffer observes the batch (with the recorded log-probs).
5. **advantage**: group_norm or conditional_split; VPPO's α scaling; ReVisual-R1's PAD row weights.
6. **token weights / masks**: VPPO top-k perception mask, 80/20 high-entropy mask, truncation mask.
7. **loss** per micro-batch: per-origin surrogate (clip / no clip on-policy, shaped IS offline and replay) times
   the token weights, + per-token regularizers (KL, entropy bonus, self-NLL), aggregated with the step's global
   normalisers (``objectives.aggregate``), + SIREN's anchored term; backward; after all micro-batches one
   optimizer step (``num_iterations`` optimizer steps reuse the same rollouts).

Mutable state that must survive a resume (``state_dict``): the experience buffer (with its mixed-mode switch)
and SIREN's anchor. Everything random is seeded from (run seed, step, ...), so a resumed run is exact.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from diffthinker.tasks import get_task

from ..config import RLArgs
from ..data import Puzzle
from ..forward import completion_forward
from ..generation import SamplingConfig, derive_seed
from ..prompts import build_prompt
from ..rewards import RewardConfig
from . import advantages as A
from . import objectives as O
from . import regularizers as R
from . import weights as W
from .batch import Group, RolloutBatch, Trajectory
from .probes import aug_probe, candidate_entropy, micro_batches, old_probe, ref_probe
from .shapers import diversity_bonus, overlong_penalty, structure_units
from .sources import ExperienceBuffer, filter_groups, offline_trace, sample_group_members, score_trajectory

__all__ = ["RLStep", "StepResult"]


@dataclass
class StepResult:
    metrics: dict[str, float]
    batch: RolloutBatch


class RLStep:
    """Runs RL steps for a policy (see the module docstring).

    ``puzzles(count)`` returns the next ``count`` fresh training puzzles (the caller owns the stream position);
    ``optimizer_step()`` clips, steps and zeroes (the caller owns the optimizer and accelerator);
    ``backward(loss)`` is ``accelerator.backward``; ``reduce_sum`` sums a float over processes (identity alone).
    """

    def __init__(self, cfg: RLArgs, policy: Any, *, seed: int, generator: Any, budgets: dict[str, int],
                 ref_model: torch.nn.Module | None = None, backward: Callable[[torch.Tensor], None] | None = None,
                 optimizer_step: Callable[[], float | None] | None = None,
                 reduce_sum: Callable[[float], float] | None = None, world_size: int = 1,
                 train_model: torch.nn.Module | None = None):
        self.cfg = cfg
        self.policy = policy
        self.seed = seed
        self.generator = generator
        self.budgets = budgets
        self.max_len = max(budgets.values())
        self.ref_model = ref_model
        self.backward = backward or (lambda loss: loss.backward())
        self.optimizer_step = optimizer_step
        self.reduce_sum = reduce_sum or (lambda x: x)
        self.world_size = world_size
        self.train_model = train_model  # the (possibly DDP-wrapped) model whose forward builds the graph
        self.reward_cfg = RewardConfig(**cfg.rewards)
        self.sampling = SamplingConfig(cfg.temperature, cfg.top_p, cfg.top_k)
        rp = cfg.replay
        self.buffer = ExperienceBuffer(cfg.num_generations, lbound=rp.lbound, rbound=rp.rbound, sigma=rp.sigma,
                                       start_solve_rate=rp.start_solve_rate,
                                       max_per_question=rp.max_per_question) if rp.enabled else None
        self.siren_anchor: float | None = None
        self.siren_anchor_acc: list[float] = []
        if cfg.beta > 0 and ref_model is None:
            raise ValueError("rl.beta > 0 needs a reference model")

    @property
    def needs_old_probe(self) -> bool:
        """Whether π_old must come from a separate no-grad pass. With one optimizer step per rollout batch, π_old
        is the current policy, so (as TRL does) the loss forward's own detached log-probs serve as π_old, and its
        entropies are logged; the pass is needed only when a component reads old-pass fields before the loss."""
        c = self.cfg
        return (c.num_iterations > 1 or c.siren.enabled or c.perception.enabled or c.replay.enabled
                or c.top_entropy_quantile < 1
                or (c.advantage.estimator == "conditional_split" and c.advantage.metric == "entropy"))

    # ------------------------------------------------------------------ state (checkpointed)
    def state_dict(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict() if self.buffer is not None else None,
                "siren_anchor": self.siren_anchor, "siren_anchor_acc": list(self.siren_anchor_acc)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.buffer is not None and state.get("buffer") is not None:
            self.buffer.load_state_dict(state["buffer"])
        self.siren_anchor = state.get("siren_anchor")
        self.siren_anchor_acc = list(state.get("siren_anchor_acc") or [])

    # ------------------------------------------------------------------ schedule
    def mode_at(self, step: int) -> str:
        """The prompt mode of RL step ``step`` (ReVisual-R1 curriculum; image when none is configured)."""
        total = max(1, self.cfg.steps)
        for stage in self.cfg.curriculum:
            if step < math.floor(stage["until"] * total) or stage["until"] >= 1:
                return stage["mode"]
        return "image"

    # ------------------------------------------------------------------ 1-3: sources, rewards, filter
    def _budget(self, puzzle: Puzzle) -> int:
        return self.cfg.max_completion_length or self.budgets[puzzle.spec.task]

    def _score_and_shape(self, groups: Sequence[Group], step: int) -> None:
        c = self.cfg
        for g in groups:
            budget = self._budget(g.puzzle)
            for t in g.members:
                score_trajectory(t, g.puzzle, self.reward_cfg)
                if c.overlong.cache_frac > 0 and t.origin == "on":
                    cache = max(1, math.ceil(c.overlong.cache_frac * budget))
                    t.reward += overlong_penalty(len(t.ids), t.truncated, budget, cache, c.overlong.factor)
            if c.diversity.enabled and step < c.diversity.until_step:
                units = [structure_units(t.answer, t.text) for t in g.members]
                bonus = diversity_bonus(units, [t.correct for t in g.members], scale=c.diversity.scale,
                                        cap=c.diversity.cap, when=c.diversity.when)
                for t, b in zip(g.members, bonus):
                    t.reward += b

    def _round(self, step: int, rnd: int, mode: str, puzzles: Sequence[Puzzle]) -> list[Group]:
        c = self.cfg
        G = c.num_generations
        groups: list[Group] = []
        extra: list[list[Trajectory]] = []
        # replay questions replace the first ratio * B fresh puzzles once mixed mode is on
        replay_n = 0
        if self.buffer is not None and self.buffer.active and len(self.buffer):
            gen = torch.Generator().manual_seed(derive_seed(self.seed, "replay", step, rnd))
            hashes = self.buffer.sample_questions(round(c.replay.ratio * len(puzzles)), gen)
            replay_n = len(hashes)
            for h in hashes:
                pz = self.buffer.puzzle(h)
                prompt = build_prompt(get_task(pz.spec.task), mode=mode, instance=pz.instance,
                                      image_size=self.policy.image_size)
                cands = self.buffer.candidates(h, c.replay.max_candidates)
                ents = candidate_entropy(self.policy, prompt, [t["ids"] for t in cands], c.temperature)
                best = cands[min(range(len(cands)), key=lambda i: (ents[i], i))]
                groups.append(Group(pz, prompt))
                extra.append([Trajectory(list(best["ids"]), best["text"], False, "replay",
                                         behavior_logp=list(best["logp"]))][: c.replay.k])
        for pz in puzzles[replay_n:]:
            prompt = build_prompt(get_task(pz.spec.task), mode=mode, instance=pz.instance,
                                  image_size=self.policy.image_size)
            groups.append(Group(pz, prompt))
            extra.append([offline_trace(self.policy, pz, reasoning=c.offline.reasoning)
                          for _ in range(c.offline.k)])
        # one generation call per completion budget (tasks may differ)
        by_budget: dict[int, list[int]] = {}
        for j, g in enumerate(groups):
            by_budget.setdefault(self._budget(g.puzzle), []).append(j)
        for budget, js in sorted(by_budget.items()):
            fresh = sample_group_members(self.policy, self.generator,
                                         [(groups[j].prompt, G - len(extra[j])) for j in js], seed=self.seed,
                                         step=step, rnd=rnd * 1000 + budget, sampling=self.sampling,
                                         max_new_tokens=budget, batch_size=c.generation_batch_size)
            for j, members in zip(js, fresh):
                groups[j].members = members + extra[j]
        self._score_and_shape(groups, step)
        return groups

    def collect(self, step: int, puzzles: Callable[[int], list[Puzzle]]) -> tuple[list[Group], dict[str, float]]:
        c = self.cfg
        mode = self.mode_at(step)
        kept: list[Group] = []
        generated: list[Group] = []
        last: list[Group] = []
        rounds = 0
        while True:
            fresh = puzzles(c.batch_size)
            groups = self._round(step, rounds, mode, fresh)
            rounds += 1
            generated += groups
            last = groups
            if not c.filter.enabled:
                kept = groups
                break
            kept += filter_groups(groups, c.filter.min_acc, c.filter.max_acc)
            # every process must run the same number of rounds: stop on the slowest one's count
            enough = self.reduce_sum(float(len(kept) < c.batch_size)) == 0
            if enough or rounds >= c.filter.max_gen_batches:
                break
        filled = bool(kept)
        if not kept:
            kept = last  # nothing passed: train on the last round (zero-variance groups give no PG gradient)
        kept = kept[: c.batch_size]
        stats = {"gen_rounds": rounds, "filter_filled": float(filled),
                 "frac_zero_std_generated": sum(g.zero_variance for g in generated) / len(generated),
                 "prompt_mode_text": float(mode == "text")}
        return kept, stats

    # ------------------------------------------------------------------ 4-6: probes, advantages, weights
    def prepare(self, step: int, groups: Sequence[Group]) -> RolloutBatch:
        c = self.cfg
        batch = RolloutBatch(self.policy, groups)
        micro = c.micro_batch_size
        if self.needs_old_probe:
            old_probe(self.policy, batch, micro, c.temperature, siren=c.siren if c.siren.enabled else None)
        if c.beta > 0:
            ref_probe(self.policy, self.ref_model, batch, micro, c.temperature)
        if c.perception.enabled:
            aug_probe(self.policy, batch, micro, c.temperature, patch=c.perception.patch, p=c.perception.p,
                      seed=self.seed, step=step)
        if self.buffer is not None:
            old = batch.tokens["old_logp"]
            recorded, row = [], 0
            for g in groups:
                per = []
                for t in g.members:
                    per.append(old[row, : len(t.ids)].tolist() if t.origin == "on" else None)
                    row += 1
                recorded.append(per)
            self.buffer.observe(groups, recorded)
        # advantages
        a = c.advantage
        if a.estimator == "group_norm":
            stats_mask = torch.tensor([o == "on" for o in batch.origin]) if a.stats_origins == "on" else None
            adv = A.group_norm(batch.reward, batch.group, c.scale_rewards, stats_mask=stats_mask)
        else:
            m = batch.mask
            if a.metric == "entropy":
                metric = batch.tokens["entropy"].sum(-1) / m.sum(-1).clamp(min=1)
            else:
                metric = m.sum(-1)
            lam = a.lam if a.schedule == "constant" else float(batch.correct.float().mean())
            adv = A.conditional_split(batch.reward, metric, batch.group, alpha=a.alpha, lam=lam,
                                      length_variant=a.metric == "length")
        tok_mask = batch.mask.clone()
        if c.perception.enabled:
            dep = W.perception_dependency(batch.tokens["old_logp"], batch.tokens["aug_logp"]) * batch.mask
            batch.tokens["perception"] = dep
            alpha = W.perception_shaping(dep, batch.mask, c.perception.beta_min)
            batch.tokens["alpha"] = alpha.unsqueeze(-1).expand_as(dep)
            adv = adv * alpha
            tok_mask = tok_mask * W.topk_token_mask(dep, batch.mask, c.perception.top_frac)
        batch.adv = adv.float()
        if c.pad.enabled:
            gen = torch.Generator().manual_seed(derive_seed(self.seed, "pad", step))
            batch.row_weight = A.pad_select(batch.adv, threshold=c.pad.threshold, temperature=c.pad.temperature,
                                            num_samples=c.pad.num_samples, replacement=c.pad.replacement,
                                            generator=gen).float()
        if c.top_entropy_quantile < 1:
            tok_mask = tok_mask * W.high_entropy_mask(batch.tokens["entropy"], batch.mask, c.top_entropy_quantile)
        if c.overlong.mask_truncated_completions:
            tok_mask = W.truncation_mask(batch.truncated, tok_mask)
        batch.tokens["tok_mask"] = tok_mask
        if c.siren.enabled:
            h = batch.tokens["topp_entropy"]
            sel = R.peak_mask(h, batch.mask, c.siren.peak_q)
            batch.tokens["siren_sel"] = sel
            h_sel = float(R.row_selected_mean(h, sel).mean())
            if self.siren_anchor is None:
                self.siren_anchor_acc.append(h_sel)
                if len(self.siren_anchor_acc) >= c.siren.anchor_steps:
                    self.siren_anchor = sum(self.siren_anchor_acc) / len(self.siren_anchor_acc)
            batch.siren_h_sel = h_sel  # type: ignore[attr-defined]
        return batch

    # ------------------------------------------------------------------ 7: loss
    def _normalizer(self, batch: RolloutBatch, rows: Sequence[int]) -> O.Normalizer:
        t = torch.tensor(list(rows), dtype=torch.long)
        w = batch.row_weight[t]
        rows_sum = self.reduce_sum(float(w.sum()))
        tokens = self.reduce_sum(float((w * batch.lengths[t]).sum()))
        micro = len(micro_batches(rows, self.cfg.micro_batch_size))
        return O.Normalizer(self.cfg.loss_type, rows_sum, tokens, float(self.max_len), max(1, micro))

    def loss_terms(self, batch: RolloutBatch, idx: Sequence[int], norm: O.Normalizer, mixed_noclip: bool
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """This micro-batch's share of the step loss, and its per-token statistics."""
        c = self.cfg
        t = torch.tensor(list(idx), dtype=torch.long)
        model = self.train_model if self.train_model is not None else self.policy.model
        need_ent = c.entropy_coef > 0
        has_old = "old_logp" in batch.tokens
        out = completion_forward(self.policy, batch.rows(idx), temperature=c.temperature,
                                 want_entropy=need_ent or not has_old, model=model)
        dev = out.logp.device
        mask = batch.mask[t].to(dev)
        old = batch.tokens["old_logp"][t].to(dev) if has_old else out.logp.detach()
        adv = batch.adv[t].to(dev)
        origin = [batch.origin[i] for i in idx]
        on = torch.tensor([o == "on" for o in origin], device=dev).unsqueeze(-1)
        offline = torch.tensor([o == "offline" for o in origin], device=dev).unsqueeze(-1)
        replay = torch.tensor([o == "replay" for o in origin], device=dev).unsqueeze(-1)
        clip_loss, clip_stats = O.clip_surrogate(out.logp, old, adv, eps_low=c.epsilon, eps_high=c.epsilon_high,
                                                 dual_clip=c.dual_clip)
        on_loss = clip_loss
        if c.on_policy_surrogate == "noclip" or mixed_noclip:
            on_loss = O.noclip_surrogate(out.logp, old, adv)
        pg = torch.where(on, on_loss, torch.zeros_like(on_loss))
        if bool(offline.any()):
            pg = torch.where(offline, O.shaped_is(out.logp, adv, gamma=c.off_policy.gamma,
                                                  max_ratio=c.off_policy.max_ratio), pg)
        if bool(replay.any()):
            beh = batch.tokens["behavior_logp"][t].to(dev)
            pg = torch.where(replay, O.shaped_is(out.logp, adv, gamma=c.off_policy.gamma, behavior_logp=beh,
                                                 max_ratio=c.off_policy.max_ratio), pg)
        tok = pg * batch.tokens["tok_mask"][t].to(dev)
        stats: dict[str, torch.Tensor] = {k: v.detach() for k, v in clip_stats.items()}
        if c.beta > 0:
            kl = R.k3_kl(out.logp, batch.tokens["ref_logp"][t].to(dev))
            tok = tok + c.beta * kl
            stats["kl"] = kl.detach()
        if need_ent:
            tok = tok - c.entropy_coef * out.entropy
        if c.perception.enabled and c.perception.nll_coef > 0:
            tok = tok + c.perception.nll_coef * (-out.logp)
        w = batch.row_weight[t].to(dev)
        loss = O.aggregate(tok, mask, norm, w)
        if c.siren.enabled and self.siren_anchor is not None and c.siren.coef > 0:
            h = R.topp_entropy(out.logits, c.siren.top_p, c.siren.top_k)
            sel = batch.tokens["siren_sel"][t].to(dev)
            factor = R.anchored_entropy_coefficient(batch.siren_h_sel, self.siren_anchor, c.siren.coef)
            loss = loss + factor * R.row_selected_mean(h, sel).sum() / max(1.0, float(len(batch)))
        stats["on"] = (on & (mask > 0)).detach()
        stats["logp"] = out.logp.detach()
        if out.entropy is not None:
            stats["entropy"] = out.entropy.detach()
        return loss, stats

    def update(self, batch: RolloutBatch) -> dict[str, float]:
        """``num_iterations`` optimizer steps on the batch; returns loss / clip / KL statistics."""
        c = self.cfg
        rows = [i for i in range(len(batch)) if float(batch.row_weight[i]) > 0]
        metrics: dict[str, float] = {"rows_trained": float(len(rows))}
        if not rows:
            return metrics
        norm = self._normalizer(batch, rows)
        mixed_noclip = (self.buffer is not None and self.buffer.active
                        and c.replay.on_policy_surrogate == "noclip")
        sums = {"loss": 0.0, "clip_low": 0.0, "clip_high": 0.0, "clip_dual": 0.0, "kl": 0.0, "on_tokens": 0.0}
        grad_norms = []
        model = self.train_model if self.train_model is not None else self.policy.model
        model.train()
        fill = "old_logp" not in batch.tokens  # no old pass: record the loss forward's values (logging)
        if fill:
            batch.tokens["entropy"] = torch.zeros_like(batch.mask)
        for _ in range(c.num_iterations):
            for idx in micro_batches(rows, c.micro_batch_size):
                loss, st = self.loss_terms(batch, idx, norm, mixed_noclip)
                if fill:
                    batch.tokens["entropy"][torch.tensor(idx)] = st["entropy"].float().cpu() * batch.mask[idx]
                self.backward(loss * self.world_size)  # DDP averages gradients; the normalisers are global sums
                on = st["on"].float()
                sums["loss"] += float(loss.detach())
                sums["on_tokens"] += float(on.sum())
                for k in ("clip_low", "clip_high", "clip_dual", "kl"):
                    if k in st:
                        sums[k] += float((st[k].float() * on).sum())
            if self.optimizer_step is not None:
                gn = self.optimizer_step()
                if gn is not None:
                    grad_norms.append(float(gn))
        n_tok = max(1.0, sums["on_tokens"])
        metrics.update({"loss": sums["loss"] / c.num_iterations, "clip_low_frac": sums["clip_low"] / n_tok,
                        "clip_high_frac": sums["clip_high"] / n_tok, "clip_dual_frac": sums["clip_dual"] / n_tok})
        if c.beta > 0:
            metrics["kl"] = sums["kl"] / n_tok
        if grad_norms:
            metrics["grad_norm"] = sum(grad_norms) / len(grad_norms)
        return metrics

    # ------------------------------------------------------------------ the whole step
    def run(self, step: int, puzzles: Callable[[int], list[Puzzle]]) -> StepResult:
        t0 = time.perf_counter()
        groups, stats = self.collect(step, puzzles)
        t1 = time.perf_counter()
        batch = self.prepare(step, groups)
        metrics = self.update(batch)
        t2 = time.perf_counter()
        on = torch.tensor([o == "on" for o in batch.origin])
        m = batch.mask
        on_tok = (m * on.unsqueeze(-1).float())
        gen_tokens = float(batch.lengths[on].sum())
        metrics.update(stats)
        metrics.update({
            "reward": float(torch.tensor([t.reward_raw for t in batch.trajs])[on].mean()),
            "reward_shaped": float(batch.reward[on].mean()) if len(batch.trajs) else 0.0,
            "accuracy": float(batch.correct[on].float().mean()),
            "parsed": float(torch.tensor([t.parsed for t in batch.trajs])[on].float().mean()),
            "entropy": float((batch.tokens.get("entropy", torch.zeros_like(m)) * on_tok).sum()
                             / on_tok.sum().clamp(min=1)),
            "response_length": float(batch.lengths[on].float().mean()),
            "truncated_frac": float(batch.truncated[on].float().mean()),
            "frac_zero_std": sum(g.zero_variance for g in batch.groups) / batch.num_groups,
            "adv_abs_mean": float(batch.adv.abs().mean()),
            "gen_seconds": t1 - t0, "update_seconds": t2 - t1, "gen_tokens": gen_tokens,
        })
        if self.cfg.pad.enabled:
            metrics["pad_kept_frac"] = float((batch.row_weight > 0).float().mean())
        if self.cfg.siren.enabled:
            metrics["siren_h_sel"] = float(batch.siren_h_sel)
            metrics["siren_anchor"] = float(self.siren_anchor) if self.siren_anchor is not None else float("nan")
        if self.cfg.perception.enabled:
            metrics["perception_dep_mean"] = float(batch.tokens["perception"].sum() / m.sum().clamp(min=1))
        if self.buffer is not None:
            metrics.update({"replay_questions": float(len(self.buffer)), "replay_active": float(self.buffer.active),
                            "replay_rows": float(sum(o == "replay" for o in batch.origin))})
        return StepResult(metrics, batch)
