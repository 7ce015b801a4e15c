"""Method presets: each is pure configuration (dotted config keys) over the shared components; no method code.

A preset has a ``base`` (the objective family it was published on: aggregator, reward scaling, clip range, KL)
and ``method`` keys (what the method adds: a source, a probe, a shaper, an advantage, token weights, a
regularizer). ``preset: [a, b, ...]`` composes methods: the first preset's base, then every preset's method keys;
two presets setting the same method key to different values is an error naming both. The user's YAML and
command-line keys then override any of it.

Values follow the reference implementations (reference/grpo_family.md), retuned where the puzzle setting requires:
- lengths are relative to each task's completion budget (answers are tens of tokens, not 8k);
- learning rates and batch sizes are not part of a preset (they belong to the model size: set ``rl.lr``).

| preset   | base                                 | method                                                          |
|----------|--------------------------------------|-----------------------------------------------------------------|
| grpo     | loss grpo, std per group, clip .2, KL .04 | -                                                          |
| dr_grpo  | loss dr_grpo (/G·L_max), no std, clip .2  | -                                                          |
| dapo     | loss dapo (token mean), std, clip .2/.28  | dynamic sampling (0 < acc < 1, 10 rounds), overlong shaping .2 |
| luffy    | loss dr_grpo, no std                 | 1 solver trace per group, shaped IS γ=.1, on-policy no clip, entropy .001 |
| exgrpo   | loss dr_grpo, no std, clip .2        | replay (ratio .5, start at solve rate .35, recorded IS), entropy .001 |
| vppo     | loss dapo, std, clip .2/.28, dual 3  | online filter [.01, .99], corrupted-image probe, α shaping, top-40 % S_t mask, NLL .06 |
| siren    | loss dr_grpo, no std, clip .2/.2, dual 3  | anchored selective entropy (top-p .8, peak .8, λ .005)    |
| canon    | loss dr_grpo, no std, clip .2/.28    | conditional split on mean token entropy (α 1, λ 1)              |
| diver    | loss dapo, std, clip .2/.28          | diversity bonus over task units (correct only, cap .68, t < 100) |
| revisual | loss dapo, std, clip .2/.28          | PAD (|A| > .01, τ 1), text-only SFT cold start, image RL then text RL (last 25 %) |
"""

from __future__ import annotations

from typing import Any, Sequence

from ..config import ConfigError

__all__ = ["PRESETS", "preset_overrides"]

_GRPO = {"rl.loss_type": "grpo", "rl.scale_rewards": "group", "rl.epsilon": 0.2, "rl.epsilon_high": None,
         "rl.beta": 0.04}
_DR = {"rl.loss_type": "dr_grpo", "rl.scale_rewards": "none", "rl.epsilon": 0.2, "rl.epsilon_high": None,
       "rl.beta": 0.0}
_DAPO = {"rl.loss_type": "dapo", "rl.scale_rewards": "group", "rl.epsilon": 0.2, "rl.epsilon_high": 0.28,
         "rl.beta": 0.0}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "grpo": {"base": _GRPO, "method": {}},
    "dr_grpo": {"base": _DR, "method": {}},
    "dapo": {"base": _DAPO, "method": {
        "rl.filter.enabled": True, "rl.filter.min_acc": 1e-6, "rl.filter.max_acc": 1 - 1e-6,
        "rl.filter.max_gen_batches": 10, "rl.overlong.cache_frac": 0.2}},
    "luffy": {"base": _DR, "method": {
        "rl.offline.k": 1, "rl.off_policy.gamma": 0.1, "rl.on_policy_surrogate": "noclip", "rl.entropy_coef": 0.001,
        "rl.advantage.stats_origins": "all"}},
    "exgrpo": {"base": _DR, "method": {
        "rl.replay.enabled": True, "rl.replay.ratio": 0.5, "rl.replay.k": 1, "rl.replay.start_solve_rate": 0.35,
        "rl.replay.on_policy_surrogate": "noclip", "rl.off_policy.gamma": 0.1, "rl.entropy_coef": 0.001}},
    "vppo": {"base": {**_DAPO, "rl.dual_clip": 3.0}, "method": {
        "rl.filter.enabled": True, "rl.filter.min_acc": 0.01, "rl.filter.max_acc": 0.99,
        "rl.perception.enabled": True, "rl.perception.p": 0.5, "rl.perception.beta_min": 0.9,
        "rl.perception.top_frac": 0.4, "rl.perception.nll_coef": 0.06}},
    "siren": {"base": {**_DR, "rl.dual_clip": 3.0}, "method": {
        "rl.siren.enabled": True, "rl.siren.top_p": 0.8, "rl.siren.peak_q": 0.8, "rl.siren.coef": 0.005}},
    "canon": {"base": {**_DR, "rl.epsilon_high": 0.28}, "method": {
        "rl.advantage.estimator": "conditional_split", "rl.advantage.metric": "entropy", "rl.advantage.alpha": 1.0,
        "rl.advantage.lam": 1.0}},
    "diver": {"base": _DAPO, "method": {
        "rl.diversity.enabled": True, "rl.diversity.scale": 1.0, "rl.diversity.cap": 0.68,
        "rl.diversity.when": "correct", "rl.diversity.until_step": 100}},
    "revisual": {"base": _DAPO, "method": {
        "rl.pad.enabled": True, "rl.pad.threshold": 0.01, "rl.pad.temperature": 1.0, "sft.prompt_mode": "text",
        "rl.curriculum": [{"mode": "image", "until": 0.75}, {"mode": "text", "until": 1.0}]}},
}


def preset_overrides(names: Sequence[str]) -> dict[str, Any]:
    """The dotted keys of the composed presets ``names`` (empty list: none)."""
    names = list(names)
    for n in names:
        if n not in PRESETS:
            raise ConfigError(f"unknown preset {n!r}; expected one of {sorted(PRESETS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"preset list {names} names a preset twice")
    if not names:
        return {}
    out = dict(PRESETS[names[0]]["base"])
    owner: dict[str, str] = {}
    for n in names:
        for k, v in PRESETS[n]["method"].items():
            if k in owner and out[k] != v:
                raise ConfigError(f"presets {owner[k]!r} and {n!r} both set {k} ({out[k]!r} vs {v!r}); they do not "
                                "compose: override the key explicitly or drop one")
            out[k] = v
            owner.setdefault(k, n)
    out["preset"] = names
    return out
