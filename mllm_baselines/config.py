"""The MLLM training run as grouped dataclasses, read from YAML + method presets + dotted ``key=value`` overrides.

Resolution order: the dataclass defaults, then the ``preset`` (``rl.presets.PRESETS``; a list composes, see there),
then the YAML file's keys, then command-line overrides (``rl.epsilon_high=0.28``, ``data.levels=[maze:8]``,
``model.overrides.hidden_size=128``; values are YAML). Unknown keys and values of the wrong type or range raise
``ConfigError`` naming the key and what was expected.

RL option names follow TRL's ``GRPOConfig`` where TRL has the option (``num_generations``, ``loss_type``,
``scale_rewards``, ``epsilon``, ``epsilon_high``, ``beta``, ``temperature``, ``top_p``, ``top_k``,
``max_completion_length``, ``num_iterations``, ``mask_truncated_completions``, ``top_entropy_quantile``); the method
components have their own sections (``rl.filter``, ``rl.overlong``, ``rl.offline``, ``rl.replay``,
``rl.perception``, ``rl.siren``, ``rl.advantage``, ``rl.diversity``, ``rl.pad``, ``rl.curriculum``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

from diffthinker import config_io
from diffthinker.tasks.base import TaskError

__all__ = ["ConfigError", "TrainConfig", "apply_overrides", "config_from_dict", "load_config"]


class ConfigError(config_io.ConfigError):
    """A bad MLLM training config (the message names the key); a TaskError, so the command line exits 2."""


# ============================================================================================== sections
@dataclass
class ModelArgs:
    """name_or_path: ``tiny`` / ``small`` (offline presets), a saved policy folder (e.g. an SFT run's ``policy/``),
    a Qwen-VL folder, or a hub id (GPUs). image_size: puzzle images are drawn at this size (a multiple of the
    vision patch x merge). overrides: tiny-preset options (``hidden_size``, ``num_hidden_layers``...).
    freeze_vision: train the language model only (EasyR1's ``freeze_vision_tower``)."""

    name_or_path: str = "tiny"
    image_size: int = 64
    overrides: dict[str, Any] = field(default_factory=dict)
    torch_dtype: str = "float32"
    freeze_vision: bool = False


@dataclass
class DataArgs:
    """levels: ``task:level`` entries trained on. seed_start: first training seed. exclude: dataset or official
    folders whose puzzles are never trained on (by content hash, like the evaluation set)."""

    levels: list[str] = field(default_factory=lambda: ["maze:8"])
    seed_start: int = 10_000_000
    exclude: list[str] = field(default_factory=list)


@dataclass
class SFTArgs:
    """Supervised warm start (stage ``sft``). steps 0 skips it. batch_size: puzzles per optimizer step (per
    process; ``prompt_mode: both`` doubles the examples). reasoning: targets start with a solver-derived trace."""

    steps: int = 0
    max_minutes: float | None = None
    batch_size: int = 16
    micro_batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 0
    prompt_mode: Literal["image", "text", "both"] = "image"
    reasoning: bool = False


@dataclass
class FilterArgs:
    """Group filter with refill (DAPO dynamic sampling: min_acc 1e-6, max_acc 1 - 1e-6; EasyR1/VPPO online
    filtering: [0.01, 0.99]). Generation rounds continue until ``rl.batch_size`` groups pass or
    ``max_gen_batches`` rounds ran (then the kept groups, or if none the last round, are used)."""

    enabled: bool = False
    min_acc: float = 1e-6
    max_acc: float = 1 - 1e-6
    max_gen_batches: int = 10


@dataclass
class OverlongArgs:
    """DAPO overlong reward shaping over the last ``cache_frac`` of the completion budget (DAPO: 4096 of 20480
    tokens = 0.2; 0 disables) and filtering (``mask_truncated_completions``: truncated completions get no
    policy-gradient loss)."""

    cache_frac: float = 0.0
    factor: float = 1.0
    mask_truncated_completions: bool = False


@dataclass
class OfflineArgs:
    """LUFFY: ``k`` members of each group are the exact solver's trace (origin ``offline``)."""

    k: int = 0
    reasoning: bool = False


@dataclass
class ReplayArgs:
    """ExGRPO experience replay (see ``rl.sources.ExperienceBuffer``)."""

    enabled: bool = False
    ratio: float = 0.5
    k: int = 1
    start_solve_rate: float = 0.35
    lbound: int = 0
    rbound: int | None = None
    sigma: float = 1.0
    max_per_question: int = 8
    max_candidates: int = 4
    on_policy_surrogate: Literal["clip", "noclip"] = "noclip"   # on-policy tokens once mixed mode is on


@dataclass
class OffPolicyArgs:
    """The surrogate of offline / replay tokens: ``−A·w/(w+gamma)``; behaviour = 1 for offline (LUFFY),
    the recorded log-probs for replay (ExGRPO)."""

    gamma: float = 0.1
    max_ratio: float | None = None


@dataclass
class PerceptionArgs:
    """VPPO: corrupted-image probe (patch blackening, ``patch`` px, probability ``p``), trajectory advantage
    shaping (``beta_min``), token gradient filtering (``top_frac``), and the self-NLL term (``nll_coef``)."""

    enabled: bool = False
    patch: int = 8
    p: float = 0.5
    beta_min: float = 0.9
    top_frac: float = 0.4
    nll_coef: float = 0.0


@dataclass
class SirenArgs:
    """SIREN anchored selective entropy: nucleus ``top_p``, peak quantile ``peak_q``, coefficient ``coef``
    (λ), anchor from the first ``anchor_steps`` RL steps (1 = the reference; more averages, a flagged deviation)."""

    enabled: bool = False
    top_p: float = 0.8
    top_k: int = 10000
    peak_q: float = 0.8
    coef: float = 0.005
    anchor_steps: int = 1


@dataclass
class AdvantageArgs:
    """estimator: ``group_norm`` (with ``rl.scale_rewards``) or ``conditional_split`` (CANON: metric entropy |
    length, alpha, lam, schedule ``constant`` or ``anneal`` = λ set to the batch accuracy each step).
    stats_origins: ``all`` (LUFFY / ExGRPO default) or ``on`` (``grpo_split``)."""

    estimator: Literal["group_norm", "conditional_split"] = "group_norm"
    metric: Literal["entropy", "length"] = "entropy"
    alpha: float = 1.0
    lam: float = 1.0
    schedule: Literal["constant", "anneal"] = "constant"
    stats_origins: Literal["all", "on"] = "all"


@dataclass
class DiversityArgs:
    """DIVER: group diversity bonus over structural units (``rl.shapers``), for RL steps < ``until_step``."""

    enabled: bool = False
    scale: float = 1.0
    cap: float = 0.68
    when: Literal["correct", "all_correct"] = "correct"
    until_step: int = 100


@dataclass
class PADArgs:
    """ReVisual-R1 Prioritized Advantage Distillation: drop |A| <= threshold, draw ``num_samples`` (default the
    batch's row count) with probabilities softmax(|A| / temperature)."""

    enabled: bool = False
    threshold: float = 0.01
    temperature: float = 1.0
    num_samples: int | None = None
    replacement: bool = True


@dataclass
class RLArgs:
    """GRPO-family RL (stage ``rl``). batch_size: groups (prompts) per optimizer step per process;
    micro_batch_size: rows per forward/backward. curriculum: ``[{mode: image|text, until: fraction}, ...]`` over
    the stage's steps (ReVisual-R1: image RL then text-only RL); empty = image prompts throughout."""

    steps: int = 0
    max_minutes: float | None = None
    batch_size: int = 4
    micro_batch_size: int = 32
    generation_batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    num_generations: int = 8
    num_iterations: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_completion_length: int | None = None
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    epsilon: float = 0.2
    epsilon_high: float | None = None
    dual_clip: float | None = None
    on_policy_surrogate: Literal["clip", "noclip"] = "clip"
    beta: float = 0.0
    entropy_coef: float = 0.0
    top_entropy_quantile: float = 1.0
    rewards: dict[str, float] = field(default_factory=dict)
    advantage: AdvantageArgs = field(default_factory=AdvantageArgs)
    filter: FilterArgs = field(default_factory=FilterArgs)
    overlong: OverlongArgs = field(default_factory=OverlongArgs)
    offline: OfflineArgs = field(default_factory=OfflineArgs)
    replay: ReplayArgs = field(default_factory=ReplayArgs)
    off_policy: OffPolicyArgs = field(default_factory=OffPolicyArgs)
    perception: PerceptionArgs = field(default_factory=PerceptionArgs)
    siren: SirenArgs = field(default_factory=SirenArgs)
    diversity: DiversityArgs = field(default_factory=DiversityArgs)
    pad: PADArgs = field(default_factory=PADArgs)
    curriculum: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class GenerationArgs:
    """Rollout backend: ``hf`` (transformers ``generate``; CPU and GPU) or ``vllm`` (GPUs; ``pip install
    'diffthinker[gpu]'``), an in-process engine whose weights are reloaded every ``vllm.sync_every`` RL steps.
    ``vllm`` holds ``generation.VLLMConfig`` fields (gpu_memory_utilization, tensor_parallel_size, max_model_len,
    dtype, enforce_eager, enable_sleep_mode, sync_every)."""

    backend: Literal["hf", "vllm"] = "hf"
    vllm: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckpointArgs:
    """every: save every N optimizer steps of a stage (0: only at stage ends); keep_last; resume: None,
    ``latest`` or a checkpoint path."""

    every: int = 50
    keep_last: int = 2
    resume: str | None = None


@dataclass
class EvalArgs:
    """The fixed evaluation set: ``n`` puzzles from seed ``seed`` (the diffusion track's rule), one completion
    each at ``temperature`` (0 = greedy). every: evaluate every N steps of a stage (0: only at stage ends);
    at_start: also before training."""

    n: int = 200
    seed: int = 0
    levels: list[str] | None = None
    temperature: float = 0.0
    batch_size: int = 100
    every: int = 0
    at_start: bool = False
    at_end: bool = True


@dataclass
class TrainConfig(config_io.YamlConfig):
    """An MLLM run: stages ``sft`` then ``rl`` (each skipped at 0 steps), checkpoints, evaluation, export."""

    output_dir: str = "runs/mllm"
    overwrite: bool = False
    preset: list[str] = field(default_factory=list)
    seed: int = 0
    num_threads: int | None = None
    report_to: Literal["tensorboard", "none"] = "none"
    log_every: int = 1
    progress: bool = True
    export: bool = True
    max_grad_norm: float | None = 1.0
    model: ModelArgs = field(default_factory=ModelArgs)
    data: DataArgs = field(default_factory=DataArgs)
    sft: SFTArgs = field(default_factory=SFTArgs)
    rl: RLArgs = field(default_factory=RLArgs)
    generation: GenerationArgs = field(default_factory=GenerationArgs)
    checkpoint: CheckpointArgs = field(default_factory=CheckpointArgs)
    eval: EvalArgs = field(default_factory=EvalArgs)

    def validate(self) -> "TrainConfig":
        """Range and consistency checks (ConfigError naming the key). Returns self."""
        return _validate(self)


# ============================================================================================== validation
def _validate(cfg: TrainConfig) -> TrainConfig:
    def need(ok: bool, key: str, value: Any, expected: str) -> None:
        if not ok:
            raise ConfigError(f"config key {key!r} = {value!r} is invalid; expected {expected}")

    from .data import parse_level_specs
    from .rewards import RewardConfig
    from .rl.presets import PRESETS

    for p in cfg.preset:
        need(p in PRESETS, "preset", p, f"names from {sorted(PRESETS)}")
    need(cfg.seed >= 0, "seed", cfg.seed, "an integer >= 0")
    need(cfg.num_threads is None or cfg.num_threads >= 1, "num_threads", cfg.num_threads, ">= 1 or null")
    need(cfg.log_every >= 1, "log_every", cfg.log_every, "an integer >= 1")
    need(cfg.max_grad_norm is None or cfg.max_grad_norm > 0, "max_grad_norm", cfg.max_grad_norm, "> 0 or null")
    need(cfg.model.image_size >= 16, "model.image_size", cfg.model.image_size, "an integer >= 16")
    try:
        parse_level_specs(cfg.data.levels, "data.levels")
        if cfg.eval.levels is not None:
            parse_level_specs(cfg.eval.levels, "eval.levels")
    except TaskError as exc:
        raise ConfigError(str(exc)) from None
    need(cfg.data.seed_start >= 0, "data.seed_start", cfg.data.seed_start, "an integer >= 0")
    for f in cfg.data.exclude:
        need(Path(f).is_dir(), "data.exclude", f, "existing dataset or official test folders")
    s = cfg.sft
    need(s.steps >= 0, "sft.steps", s.steps, "an integer >= 0 (0 skips the stage)")
    need(s.max_minutes is None or s.max_minutes > 0, "sft.max_minutes", s.max_minutes, "> 0 or null")
    need(s.batch_size >= 1, "sft.batch_size", s.batch_size, "an integer >= 1")
    need(s.micro_batch_size >= 1, "sft.micro_batch_size", s.micro_batch_size, "an integer >= 1")
    need(s.lr > 0 and math.isfinite(s.lr), "sft.lr", s.lr, "a positive number")
    need(s.warmup_steps >= 0, "sft.warmup_steps", s.warmup_steps, "an integer >= 0")
    r = cfg.rl
    need(r.steps >= 0, "rl.steps", r.steps, "an integer >= 0 (0 skips the stage)")
    need(r.max_minutes is None or r.max_minutes > 0, "rl.max_minutes", r.max_minutes, "> 0 or null")
    need(r.batch_size >= 1, "rl.batch_size", r.batch_size, "an integer >= 1")
    need(r.micro_batch_size >= 1, "rl.micro_batch_size", r.micro_batch_size, "an integer >= 1")
    need(r.generation_batch_size >= 1, "rl.generation_batch_size", r.generation_batch_size, "an integer >= 1")
    need(r.lr > 0 and math.isfinite(r.lr), "rl.lr", r.lr, "a positive number")
    need(r.num_generations >= 2, "rl.num_generations", r.num_generations, "an integer >= 2 (a group needs a baseline)")
    need(r.num_iterations >= 1, "rl.num_iterations", r.num_iterations, "an integer >= 1")
    need(r.temperature > 0, "rl.temperature", r.temperature, "a number > 0 (RL samples)")
    need(0 < r.top_p <= 1, "rl.top_p", r.top_p, "a number in (0, 1]")
    need(r.top_k >= 0, "rl.top_k", r.top_k, "an integer >= 0")
    need(r.max_completion_length is None or r.max_completion_length >= 1, "rl.max_completion_length",
         r.max_completion_length, "an integer >= 1 or null (per task, from the answer lengths)")
    need(0 <= r.epsilon < 1, "rl.epsilon", r.epsilon, "a number in [0, 1)")
    need(r.epsilon_high is None or r.epsilon_high >= 0, "rl.epsilon_high", r.epsilon_high, ">= 0 or null")
    need(r.dual_clip is None or r.dual_clip > 1, "rl.dual_clip", r.dual_clip, "> 1 or null (verl uses 3)")
    need(r.beta >= 0, "rl.beta", r.beta, ">= 0")
    need(r.entropy_coef >= 0, "rl.entropy_coef", r.entropy_coef, ">= 0")
    need(0 < r.top_entropy_quantile <= 1, "rl.top_entropy_quantile", r.top_entropy_quantile, "a number in (0, 1]")
    try:
        RewardConfig(**r.rewards)
    except TypeError:
        raise ConfigError(f"config key 'rl.rewards' = {r.rewards!r} is invalid; expected weights among format, "
                          "valid, progress, correct, optimal") from None
    need(0 <= r.filter.min_acc <= r.filter.max_acc <= 1, "rl.filter", [r.filter.min_acc, r.filter.max_acc],
         "0 <= min_acc <= max_acc <= 1")
    need(r.filter.max_gen_batches >= 1, "rl.filter.max_gen_batches", r.filter.max_gen_batches, "an integer >= 1")
    need(0 <= r.overlong.cache_frac <= 1, "rl.overlong.cache_frac", r.overlong.cache_frac, "a fraction in [0, 1]")
    need(0 <= r.offline.k < r.num_generations, "rl.offline.k", r.offline.k,
         f"an integer in [0, num_generations={r.num_generations})")
    rp = r.replay
    need(0 <= rp.ratio <= 1, "rl.replay.ratio", rp.ratio, "a fraction in [0, 1]")
    need(1 <= rp.k < r.num_generations, "rl.replay.k", rp.k, f"an integer in [1, num_generations)")
    need(rp.max_candidates >= 1 and rp.max_per_question >= 1, "rl.replay.max_candidates", rp.max_candidates, ">= 1")
    need(not (rp.enabled and r.offline.k), "rl.replay.enabled", rp.enabled,
         "false while rl.offline.k > 0 (one off-policy slot per group: LUFFY or ExGRPO)")
    need(r.off_policy.gamma > 0, "rl.off_policy.gamma", r.off_policy.gamma, "> 0")
    pc = r.perception
    need(pc.patch >= 1 and 0 <= pc.p <= 1, "rl.perception", {"patch": pc.patch, "p": pc.p}, "patch >= 1, 0 <= p <= 1")
    need(0 <= pc.beta_min <= 1, "rl.perception.beta_min", pc.beta_min, "a number in [0, 1]")
    need(0 < pc.top_frac <= 1, "rl.perception.top_frac", pc.top_frac, "a fraction in (0, 1]")
    need(pc.nll_coef >= 0, "rl.perception.nll_coef", pc.nll_coef, ">= 0")
    sr = r.siren
    need(0 < sr.top_p <= 1, "rl.siren.top_p", sr.top_p, "a number in (0, 1]")
    need(0 <= sr.peak_q < 1, "rl.siren.peak_q", sr.peak_q, "a number in [0, 1)")
    need(sr.coef >= 0 and sr.anchor_steps >= 1 and sr.top_k >= 1, "rl.siren", {"coef": sr.coef},
         "coef >= 0, anchor_steps >= 1, top_k >= 1")
    need(0 <= r.advantage.lam <= 1, "rl.advantage.lam", r.advantage.lam, "a number in [0, 1]")
    need(r.diversity.cap > 0 and r.diversity.until_step >= 0, "rl.diversity", r.diversity.cap, "cap > 0")
    need(r.pad.temperature > 0 and r.pad.threshold >= 0, "rl.pad", {"temperature": r.pad.temperature},
         "temperature > 0, threshold >= 0")
    need(r.pad.num_samples is None or r.pad.num_samples >= 1, "rl.pad.num_samples", r.pad.num_samples,
         ">= 1 or null")
    last = 0.0
    for i, stage in enumerate(r.curriculum):
        ok = (isinstance(stage, dict) and set(stage) == {"mode", "until"} and stage["mode"] in ("image", "text")
              and isinstance(stage["until"], (int, float)) and last < stage["until"] <= 1)
        need(ok, f"rl.curriculum[{i}]", stage, "{mode: image|text, until: a fraction of rl.steps, increasing, <= 1}")
        last = float(stage["until"])
    need(not r.curriculum or last == 1, "rl.curriculum", r.curriculum, "stages whose last 'until' is 1")
    from .generation import VLLMConfig

    try:
        VLLMConfig(**cfg.generation.vllm).validate()
    except TypeError:
        raise ConfigError(f"config key 'generation.vllm' = {cfg.generation.vllm!r} is invalid; expected fields of "
                          f"VLLMConfig: {sorted(VLLMConfig.__dataclass_fields__)}") from None
    except TaskError as exc:
        raise ConfigError(f"config section 'generation': {exc}") from None
    c = cfg.checkpoint
    need(c.every >= 0 and c.keep_last >= 1, "checkpoint", {"every": c.every, "keep_last": c.keep_last},
         "every >= 0 and keep_last >= 1")
    e = cfg.eval
    need(e.n >= 1 and e.seed >= 0 and e.batch_size >= 1 and e.every >= 0, "eval", e.n,
         "n >= 1, seed >= 0, batch_size >= 1, every >= 0")
    need(e.temperature >= 0, "eval.temperature", e.temperature, ">= 0 (0 = greedy)")
    return cfg


# ============================================================================================== loading
#: how TrainConfig is read (config_io): ``model.overrides``, ``rl.rewards`` and ``generation.vllm`` are free-form;
#: ``resume=...`` is an alias of ``checkpoint.resume=...``; presets are merged under the user's keys by load_config
SCHEMA = config_io.ConfigSchema(TrainConfig, ConfigError, example="rl.epsilon_high=0.28",
                                aliases={"resume": "checkpoint.resume"})
config_from_dict = SCHEMA.from_dict  # a nested dict (YAML) -> TrainConfig; ConfigError naming a bad key
apply_overrides = SCHEMA.apply_overrides  # ``a.b=value`` overrides (YAML values) applied to a copy of a dict


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, section by section; free-form dicts are replaced whole, not merged."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in ("overrides", "rewards", "vllm"):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _under_presets(user: dict[str, Any]) -> dict[str, Any]:
    """The user's keys (YAML + overrides) merged over the settings of the presets they name."""
    from .rl.presets import preset_overrides

    names = user.get("preset") or []
    names = [names] if isinstance(names, str) else list(names)
    base: dict[str, Any] = {}
    for key, value in preset_overrides(names).items():
        SCHEMA.set_dotted(base, key, value)
    return _merge(base, user)


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Defaults <- preset(s) <- YAML <- overrides (see the module docstring), validated."""
    return SCHEMA.load(path, overrides, prepare=_under_presets)
