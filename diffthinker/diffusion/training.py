"""Training the diffusion reasoner under ``accelerate``: the config, checkpoints, evaluation and the loop.

Entry points:

- ``TrainConfig``: the whole run as grouped dataclasses (``model``, ``data``, ``optim``, ``flow``, ``ema``,
  ``checkpoint``, ``eval`` + run-level fields). ``load_config(path, overrides)`` reads a YAML file and applies
  dotted ``key=value`` overrides (``optim.lr=3e-4``, ``data.levels=[maze:6,maze:8]``,
  ``model.overrides.num_layers=6``); values are YAML. An unknown key or a value of the wrong type/range raises
  ``ConfigError`` naming the key and what was expected.
- ``train(cfg)``: the loop; returns a ``TrainResult``. Used by ``training/train_diffusion.py`` (``accelerate
  launch training/train_diffusion.py --config training/configs/tiny_cpu_maze8.yaml [overrides]``) and by
  ``diffthinker train diffusion``.

Multi-process rules (CPU, one GPU or many; DDP / DeepSpeed ZeRO-2 through accelerate's config): each process
builds its own data shard (``data.PuzzleBatches``: rank r takes its own slice of every global batch); the noise
of micro-step m on rank r comes from a generator seeded by (seed, rank, m); only the main process writes files,
logs, shows the bar and evaluates; the others wait (``wait_for_everyone``). The checkpoint directory must be on a
file system all processes see.

Output folder (``output_dir``)::

    checkpoints/checkpoint-00000500/   accelerate state (model.safetensors, optimizer.bin,
                                       random_states_<rank>.pkl), ema.safetensors, trainer_state.json
                                       (step, data position, LR scheduler state, history), config.yaml
    logs/                              tensorboard (accelerate's tracker)
    samples/step-00000500.png          problem | prediction | target for a few validation puzzles
    metrics.jsonl                      one JSON line per log/eval event (the learning curve)
    pipeline/                          the final export: DiffThinkerPipeline.save_pretrained + README.md card

Checkpoints are written into ``checkpoints/.tmp-checkpoint-N`` and renamed into place once complete, so a crash
while writing leaves the previous checkpoint intact; the last ``keep_last`` are kept. ``checkpoint.resume``
(``latest`` or a path; ``--resume`` on the command line) restores model, optimizer, LR scheduler, EMA, RNG states
and the data position, and continues exactly: N steps + resume + N steps gives the weights of 2N steps.
Loading: weights from safetensors; optimizer and RNG states through accelerate's loader, which uses
``torch.load(weights_only=True)`` (files written by this code, not arbitrary pickles).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
import yaml

from .. import config_io
from ..fsutil import replace_folder
from ..tasks.base import ParseFailure, TaskError, get_task
from .data import (
    BlockedHashes,
    hash_fingerprint,
    PuzzleBatches,
    ValItem,
    parse_level_specs,
    fit_to_resolution,
    task_ids,
    validation_set,
)
from .flow import FlowConfig, flow_matching_loss

logger = logging.getLogger(__name__)

__all__ = [
    "DECAYING_LR_SCHEDULES", "CheckpointArgs", "ConfigError", "DataArgs", "EMA", "EMAArgs", "EvalArgs", "ModelArgs",
    "OptimArgs", "TrainConfig", "TrainResult", "apply_overrides", "config_from_dict", "find_checkpoints",
    "latest_checkpoint", "load_config", "main", "train",
]

CHECKPOINT_PREFIX = "checkpoint-"
TMP_PREFIX = ".tmp-checkpoint-"
TRAINER_STATE = "trainer_state.json"
EMA_WEIGHTS = "ema.safetensors"
CONFIG_FILE = "config.yaml"


class ConfigError(config_io.ConfigError):
    """A bad diffusion training config (the message names the key); a TaskError, so the command line exits 2."""


# ============================================================================================== config
@dataclass
class ModelArgs:
    """The denoiser.

    preset: a ``diffthinker.diffusion.model.PRESETS`` name (``tiny-cpu``, ``small-cpu``).
    resolution: image side in px the puzzles are drawn at (natively, by the puzzle layer).
    overrides: any ``PixelDenoiser`` keyword over the preset, e.g. ``{num_layers: 6, prediction_type: velocity,
      zero_cond_t: true, patch_size: 8}``.
    init_from: fine-tune: start from the weights of a saved pipeline (a folder with ``model_index.json``, e.g. a
      shipped checkpoint) or of its ``denoiser/`` folder instead of a fresh init. Its denoiser must be exactly the
      one preset + overrides + resolution + tasks describe (ConfigError naming the first difference). The
      optimizer, schedule and data stream start fresh; a resumed run takes its weights from the checkpoint.
    """

    preset: str = "tiny-cpu"
    resolution: int = 64
    overrides: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None


@dataclass
class DataArgs:
    """Training data (see ``diffthinker.diffusion.data`` for the exact sample rule).

    levels: ``task:level`` entries (``maze:8``; ``frozenlake:vsp3``...); several tasks make a mixed-task model.
    weights: sampling weight per entry of ``levels`` (default: uniform).
    dataset: a saved dataset folder (``diffthinker generate``) instead of on-the-fly generation; official test
      rows are refused, rows colliding with the validation set are dropped.
    seed_start: first puzzle seed of the on-the-fly stream; num_seeds: None = an unbounded stream (every sample
      a fresh seed), N = a pool of N seeds per level sampled with replacement.
    exclude: dataset or official test folders whose puzzles must never be trained on (checked by content hash,
      like the validation set).
    batch_size: per process (global batch = batch_size x processes x gradient_accumulation_steps).
    num_workers: DataLoader worker processes drawing the puzzles (0 = in the training process).
    """

    levels: list[str] = field(default_factory=lambda: ["maze:8"])
    weights: list[float] | None = None
    dataset: str | None = None
    seed_start: int = 1_000_000
    num_seeds: int | None = None
    exclude: list[str] = field(default_factory=list)
    batch_size: int = 16
    num_workers: int = 0


@dataclass
class OptimArgs:
    """AdamW and the learning-rate schedule.

    lr_scheduler: ``constant`` (no warmup), ``constant_with_warmup``, ``cosine`` (warmup, then cosine down to
      ``min_lr_ratio * lr`` at max_steps), ``linear`` (warmup, then linear down to ``min_lr_ratio * lr``).
      Warmup is linear over ``warmup_steps`` optimizer steps, starting at ``lr / warmup_steps`` (no step at lr 0).
    max_grad_norm: gradient clipping (None disables).
    """

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    eps: float = 1e-8
    lr_scheduler: Literal["constant", "constant_with_warmup", "cosine", "linear"] = "constant"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    max_grad_norm: float | None = 1.0
    gradient_accumulation_steps: int = 1


@dataclass
class EMAArgs:
    """Exponential moving average of the weights (0 disables). The effective decay at update n is
    ``min(decay, (1 + n) / (10 + n))`` (diffusers' EMAModel warm-up), so short runs are not dominated by init."""

    decay: float = 0.0


@dataclass
class CheckpointArgs:
    """every: save every N optimizer steps (0: only at the end); keep_last: how many to keep;
    resume: None, ``latest`` (newest checkpoint in output_dir, or a fresh start if there is none) or a path."""

    every: int = 500
    keep_last: int = 3
    resume: str | None = None


@dataclass
class EvalArgs:
    """Validation: the real solve rate through the pipeline + ``task.parse`` + ``task.verify``.

    every: evaluate every E optimizer steps (0: only at the end, if ``at_end``).
    levels: ``task:level`` entries (default: ``data.levels``); n: puzzles, split evenly over the levels;
    seed: first seed (consecutive seeds, duplicates skipped); these puzzles are never trained on.
    num_inference_steps: Euler steps (one sample per puzzle, generator seeded by ``sample_seed + i``);
    shift: the inference time shift of the pipeline's scheduler (saved with the exported pipeline).
    batch_size: puzzles per pipeline call. num_images: sample images logged per evaluation.
    use_ema: evaluate (and export) the EMA weights when EMA is on.
    """

    every: int = 500
    levels: list[str] | None = None
    n: int = 100
    seed: int = 0
    num_inference_steps: int = 20
    shift: float = 1.0
    sample_seed: int = 0
    batch_size: int = 50
    num_images: int = 4
    use_ema: bool = True
    at_end: bool = True


@dataclass
class TrainConfig(config_io.YamlConfig):
    """A diffusion training run. Groups: model, data, optim, flow (``flow.FlowConfig``), ema, checkpoint, eval.

    output_dir: where checkpoints, logs, samples and the exported pipeline go.
    overwrite: allow starting a fresh run in an output_dir that already holds checkpoints (they are removed).
    seed: model init, data order and noise. max_steps: optimizer steps. max_minutes: stop earlier once the
      training time (evaluation excluded) exceeds this (the run then exports as usual; not bit-reproducible).
    mixed_precision: ``no`` | ``fp16`` | ``bf16`` (accelerate). report_to: ``tensorboard`` | ``none``.
    log_every: loss/lr/speed logging period (steps). num_threads: torch threads per process (None: torch's).
    export: write the final pipeline folder. progress: show the tqdm bar (main process).
    """

    output_dir: str = "runs/diffusion"
    overwrite: bool = False
    seed: int = 0
    max_steps: int = 1000
    max_minutes: float | None = None
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    report_to: Literal["tensorboard", "none"] = "tensorboard"
    log_every: int = 10
    num_threads: int | None = None
    export: bool = True
    progress: bool = True
    model: ModelArgs = field(default_factory=ModelArgs)
    data: DataArgs = field(default_factory=DataArgs)
    optim: OptimArgs = field(default_factory=OptimArgs)
    flow: FlowConfig = field(default_factory=FlowConfig)
    ema: EMAArgs = field(default_factory=EMAArgs)
    checkpoint: CheckpointArgs = field(default_factory=CheckpointArgs)
    eval: EvalArgs = field(default_factory=EvalArgs)

    # ------------------------------------------------------------------ (de)serialisation (to_dict, to_yaml: YamlConfig)
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return config_from_dict(data)

    # ------------------------------------------------------------------ semantic checks
    def validate(self) -> "TrainConfig":
        """Range and consistency checks; ConfigError naming the key. Returns self."""
        def need(ok: bool, key: str, value: Any, expected: str) -> None:
            if not ok:
                raise ConfigError(f"config key {key!r} = {value!r} is invalid; expected {expected}")

        need(self.max_steps >= 1, "max_steps", self.max_steps, "an integer >= 1")
        need(self.max_minutes is None or self.max_minutes > 0, "max_minutes", self.max_minutes, "> 0 or null")
        need(self.seed >= 0, "seed", self.seed, "an integer >= 0")
        need(self.log_every >= 1, "log_every", self.log_every, "an integer >= 1")
        need(self.num_threads is None or self.num_threads >= 1, "num_threads", self.num_threads, ">= 1 or null")
        m = self.model
        from .model import PRESETS

        need(m.preset in PRESETS, "model.preset", m.preset, f"one of {sorted(PRESETS)}")
        allowed = set(PRESETS.get(m.preset, {})) | {"axes_dims_rope"}
        for k in m.overrides:
            need(k in allowed, f"model.overrides.{k}", m.overrides[k], f"a known denoiser option: {sorted(allowed)}")
        patch = m.overrides.get("patch_size", PRESETS.get(m.preset, {}).get("patch_size", 1))
        need(m.resolution >= 8 and m.resolution % patch == 0, "model.resolution", m.resolution,
             f"a multiple of the patch size {patch}, >= 8")
        need(m.init_from is None or _denoiser_folder(m.init_from) is not None, "model.init_from", m.init_from,
             "null or a saved pipeline folder (with model_index.json and denoiser/) or a denoiser folder (with "
             "config.json and diffusion_pytorch_model.safetensors)")
        d = self.data
        try:
            specs = parse_level_specs(d.levels, "data.levels")
        except TaskError as exc:
            raise ConfigError(str(exc)) from None
        need(d.weights is None or (len(d.weights) == len(specs) and all(w >= 0 for w in d.weights)
                                   and sum(d.weights) > 0),
             "data.weights", d.weights, f"null or {len(specs)} non-negative weights (one per data.levels entry)")
        need(d.seed_start >= 0, "data.seed_start", d.seed_start, "an integer >= 0")
        need(d.num_seeds is None or d.num_seeds >= 1, "data.num_seeds", d.num_seeds, ">= 1 or null")
        need(d.batch_size >= 1, "data.batch_size", d.batch_size, "an integer >= 1")
        need(d.num_workers >= 0, "data.num_workers", d.num_workers, "an integer >= 0")
        need(d.dataset is None or Path(d.dataset).is_dir(), "data.dataset", d.dataset, "an existing dataset folder")
        for f in d.exclude:
            need(Path(f).is_dir(), "data.exclude", f, "existing dataset or official test folders")
        o = self.optim
        need(o.lr > 0 and math.isfinite(o.lr), "optim.lr", o.lr, "a positive number")
        need(all(0 <= b < 1 for b in o.betas), "optim.betas", list(o.betas), "two numbers in [0, 1)")
        need(o.weight_decay >= 0, "optim.weight_decay", o.weight_decay, ">= 0")
        need(o.eps > 0, "optim.eps", o.eps, "> 0")
        need(o.warmup_steps >= 0, "optim.warmup_steps", o.warmup_steps, "an integer >= 0")
        need(0 <= o.min_lr_ratio <= 1, "optim.min_lr_ratio", o.min_lr_ratio, "a number in [0, 1]")
        need(o.max_grad_norm is None or o.max_grad_norm > 0, "optim.max_grad_norm", o.max_grad_norm, "> 0 or null")
        need(o.gradient_accumulation_steps >= 1, "optim.gradient_accumulation_steps",
             o.gradient_accumulation_steps, "an integer >= 1")
        try:
            FlowConfig(**dataclasses.asdict(self.flow))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"config section 'flow' is invalid: {exc}") from None
        need(0 <= self.ema.decay < 1, "ema.decay", self.ema.decay, "a number in [0, 1) (0 disables EMA)")
        c = self.checkpoint
        need(c.every >= 0, "checkpoint.every", c.every, "an integer >= 0 (0: only at the end)")
        need(c.keep_last >= 1, "checkpoint.keep_last", c.keep_last, "an integer >= 1")
        e = self.eval
        need(e.every >= 0, "eval.every", e.every, "an integer >= 0 (0: only at the end)")
        need(e.n >= 1, "eval.n", e.n, "an integer >= 1")
        need(e.seed >= 0 and e.sample_seed >= 0, "eval.seed", e.seed, "an integer >= 0")
        need(e.num_inference_steps >= 1, "eval.num_inference_steps", e.num_inference_steps, "an integer >= 1")
        need(e.shift > 0, "eval.shift", e.shift, "a number > 0")
        need(e.batch_size >= 1, "eval.batch_size", e.batch_size, "an integer >= 1")
        need(e.num_images >= 0, "eval.num_images", e.num_images, "an integer >= 0")
        try:
            eval_specs = parse_level_specs(e.levels if e.levels is not None else d.levels, "eval.levels")
        except TaskError as exc:
            raise ConfigError(str(exc)) from None
        tasks = task_ids(specs)
        extra = [str(s) for s in eval_specs if s.task not in tasks]
        need(not extra, "eval.levels", e.levels, f"levels of the trained tasks {tasks} (not {extra})")
        return self


#: how TrainConfig is read (config_io): ``model.overrides.<k>`` is a free-form denoiser option; ``resume=...`` is
#: an alias of ``checkpoint.resume=...``
SCHEMA = config_io.ConfigSchema(TrainConfig, ConfigError, example="optim.lr=3e-4",
                                aliases={"resume": "checkpoint.resume"})
config_from_dict = SCHEMA.from_dict  # a nested dict (YAML) -> TrainConfig; ConfigError naming a bad key
apply_overrides = SCHEMA.apply_overrides  # ``a.b=value`` overrides (YAML values) applied to a copy of a dict


def _denoiser_folder(path: str | Path) -> Path | None:
    """The denoiser folder of a saved pipeline or denoiser, or None if ``path`` is neither."""
    p = Path(path)
    for folder in (p / "denoiser", p):
        if (folder / "config.json").is_file() and (folder / "diffusion_pytorch_model.safetensors").is_file():
            return folder
    return None


def init_weights_from(model: torch.nn.Module, path: str | Path) -> Path:
    """Load the weights of the saved denoiser at ``path`` (a pipeline or denoiser folder) into ``model`` in place,
    cast to the model's dtype. The saved config must equal the model's (tasks, resolution, widths...): a fine-tune
    of another architecture would silently start from noise in the mismatched parts, so it is an error.
    Returns the denoiser folder read. Safetensors only."""
    from safetensors.torch import load_file

    folder = _denoiser_folder(path)
    if folder is None:
        raise ConfigError(f"model.init_from = {str(path)!r} holds no saved denoiser; expected a pipeline folder "
                          f"(model_index.json + denoiser/) or a denoiser folder (config.json + "
                          f"diffusion_pytorch_model.safetensors)")
    saved = json.loads((folder / "config.json").read_text())
    mine = dict(model.config)
    for key in sorted(k for k in mine if not k.startswith("_")):
        want, got = mine[key], saved.get(key)
        if isinstance(want, tuple):
            want = list(want)
        if want != got:
            raise ConfigError(f"model.init_from = {str(path)!r}: its denoiser has {key} = {got!r}, the config "
                              f"builds {key} = {want!r}; set model.preset / model.overrides / model.resolution / "
                              f"data.levels to match it")
    weights = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    own = model.state_dict()
    if set(weights) != set(own):
        missing, extra = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
        raise ConfigError(f"model.init_from = {str(path)!r}: its weights do not fit the model (missing "
                          f"{missing[:3]}, unexpected {extra[:3]})")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in weights.items()})
    return folder


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML config (or the defaults when ``path`` is None), apply overrides, validate."""
    return SCHEMA.load(path, overrides)


# ============================================================================================== EMA
class EMA:
    """EMA of a model's trainable parameters (fp32 shadows), saved as safetensors.

    ``update(model)`` after each optimizer step; effective decay ``min(decay, (1 + n) / (10 + n))``.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.num_updates = 0
        self.shadow = {n: p.detach().clone().float() for n, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.num_updates += 1
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        params = dict(model.named_parameters())
        shadows = list(self.shadow.values())
        live = [params[n].detach().float() for n in self.shadow]
        torch._foreach_lerp_(shadows, live, 1.0 - d)

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        params = dict(model.named_parameters())
        for n, s in self.shadow.items():
            params[n].copy_(s.to(params[n].dtype))

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        save_file({n: t.contiguous().cpu() for n, t in self.shadow.items()}, str(path),
                  metadata={"num_updates": str(self.num_updates), "decay": repr(self.decay)})

    def load(self, path: Path) -> None:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            keys = set(fh.keys())
            if keys != set(self.shadow):
                raise TaskError(f"{path}: EMA weights do not match the model (missing "
                                f"{sorted(set(self.shadow) - keys)[:3]}, unexpected {sorted(keys - set(self.shadow))[:3]})")
            for n in self.shadow:
                self.shadow[n] = fh.get_tensor(n).to(self.shadow[n].device, torch.float32)
        self.num_updates = int(meta.get("num_updates", "0"))


# ============================================================================================== checkpoints
def _checkpoint_root(cfg: TrainConfig) -> Path:
    return Path(cfg.output_dir) / "checkpoints"


def find_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under ``root`` (``checkpoint-<step>`` folders), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and p.name[len(CHECKPOINT_PREFIX):].isdigit():
            found.append((int(p.name[len(CHECKPOINT_PREFIX):]), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    found = find_checkpoints(Path(output_dir) / "checkpoints")
    return found[-1] if found else None


def _resolve_resume(cfg: TrainConfig) -> Path | None:
    r = cfg.checkpoint.resume
    if r is None:
        return None
    if r == "latest":
        return latest_checkpoint(cfg.output_dir)
    p = Path(r)
    if p.is_dir() and not (p / TRAINER_STATE).is_file():
        inner = find_checkpoints(p / "checkpoints") or find_checkpoints(p)
        if inner:
            return inner[-1]
    if not (p / TRAINER_STATE).is_file():
        raise ConfigError(f"checkpoint.resume = {r!r} is not a checkpoint folder (no {TRAINER_STATE}); expected "
                          f"'latest', a checkpoint-<step> folder, or a run's output_dir")
    return p


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _recover_interrupted_saves(root: Path) -> None:
    """Remove half-written ``.tmp-checkpoint-*`` folders; put back a ``.old-checkpoint-N`` whose replacement
    never arrived (a crash between the two renames of a re-saved step)."""
    if not root.is_dir():
        return
    for p in sorted(root.iterdir()):
        if p.name.startswith(".old-") and not (root / p.name[len(".old-"):]).exists():
            os.rename(p, root / p.name[len(".old-"):])
        elif p.name.startswith((TMP_PREFIX, ".old-")):
            shutil.rmtree(p, ignore_errors=True)


def _write_extras(tmp: Path, state: dict[str, Any], ema: EMA | None, cfg: TrainConfig) -> None:
    """The files beside accelerate's state: EMA weights, trainer state, resolved config."""
    if ema is not None:
        ema.save(tmp / EMA_WEIGHTS)
    (tmp / TRAINER_STATE).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    (tmp / CONFIG_FILE).write_text(cfg.to_yaml())


def save_checkpoint(accelerator: Any, cfg: TrainConfig, state: dict[str, Any], ema: EMA | None) -> Path:
    """Write checkpoint-<step> atomically (all processes call this), then keep the last ``keep_last``."""
    root = _checkpoint_root(cfg)
    step = state["step"]
    final = root / f"{CHECKPOINT_PREFIX}{step:08d}"
    tmp = root / f"{TMP_PREFIX}{step:08d}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
    accelerator.wait_for_everyone()
    ok = True
    try:
        accelerator.save_state(str(tmp), safe_serialization=True)
        if accelerator.is_main_process:
            _write_extras(tmp, state, ema, cfg)
    except BaseException:
        ok = False
        raise
    finally:
        if not ok and accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _fsync_dir(tmp)
        # the same step may be saved again (e.g. the end of a run resumed at its last checkpoint)
        replace_folder(tmp, final)
        _fsync_dir(root)
        for stale in find_checkpoints(root)[:-cfg.checkpoint.keep_last]:
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


_MODEL_KEYS = ("preset", "resolution", "overrides")


def _check_resume_compatible(ckpt: Path, cfg: TrainConfig, state: dict[str, Any], world: int) -> None:
    try:
        old = yaml.safe_load((ckpt / CONFIG_FILE).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TaskError(f"checkpoint {ckpt} has no readable {CONFIG_FILE} ({exc})") from None
    new = cfg.to_dict()
    for k in _MODEL_KEYS:
        if old.get("model", {}).get(k) != new["model"][k]:
            raise ConfigError(f"cannot resume from {ckpt}: model.{k} was {old.get('model', {}).get(k)!r} there, "
                              f"{new['model'][k]!r} now")
    try:
        old_specs = parse_level_specs(old.get("data", {}).get("levels") or [], "data.levels of the checkpoint")
    except TaskError as exc:
        raise ConfigError(f"cannot resume from {ckpt}: {exc}") from None
    new_specs = parse_level_specs(cfg.data.levels)
    if task_ids(old_specs) != task_ids(new_specs):
        raise ConfigError(f"cannot resume from {ckpt}: it was trained for tasks {task_ids(old_specs)}, the config "
                          f"now names {task_ids(new_specs)} (data.levels)")
    if old_specs != new_specs:  # allowed: a hand-made curriculum (e.g. maze:4 first, then resume on maze:8)
        logger.warning("resuming %s with data.levels %s (it was trained on %s)", ckpt, [str(s) for s in new_specs],
                       [str(s) for s in old_specs])
    if state.get("world_size") != world or state.get("per_device_batch") != cfg.data.batch_size:
        logger.warning("resuming %s with %d processes x batch %d (it was written with %s x %s): the data stream "
                       "continues from sample %d but is no longer bit-identical to an uninterrupted run", ckpt, world,
                       cfg.data.batch_size, state.get("world_size"), state.get("per_device_batch"),
                       state.get("samples_seen", 0))


# ============================================================================================== evaluation
def _make_scheduler(cfg: TrainConfig) -> Any:
    """The Euler flow scheduler of the evaluated and exported pipeline (inference time shift ``eval.shift``)."""
    from . import pipeline as pl

    return pl.default_scheduler(cfg.eval.shift)


def _make_pipeline(denoiser: torch.nn.Module, cfg: TrainConfig) -> Any:
    from .pipeline import DiffThinkerPipeline

    pipe = DiffThinkerPipeline(denoiser=denoiser, scheduler=_make_scheduler(cfg))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def evaluate(denoiser: torch.nn.Module, items: Sequence[ValItem], cfg: TrainConfig,
             num_images: int | None = None) -> dict[str, Any]:
    """Solve rate of ``denoiser`` on ``items``: one sample each (generator ``sample_seed + i``),
    ``eval.num_inference_steps`` Euler steps, then ``task.parse`` + ``task.verify``.

    Returns ``{"solve_rate", "correct", "n", "parse_failures", "per_level": {spec: {...}}, "samples": [(problem,
    prediction, target) PIL triples]}``.
    """
    e = cfg.eval
    r = cfg.model.resolution
    was_training = denoiser.training
    denoiser.eval()
    pipe = _make_pipeline(denoiser, cfg)
    per: dict[str, dict[str, int]] = {}
    samples: list[tuple[Any, Any, Any]] = []
    want_images = e.num_images if num_images is None else num_images
    correct = failures = 0
    by_task: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_task.setdefault(it.spec.task, []).append(i)
    try:
        for task_id, idx in by_task.items():
            task = get_task(task_id)
            for start in range(0, len(idx), e.batch_size):
                chunk = idx[start:start + e.batch_size]
                images = [fit_to_resolution(task.render(items[i].instance, size=r), r) for i in chunk]
                gens = [torch.Generator(device="cpu").manual_seed(e.sample_seed + i) for i in chunk]
                out = pipe(images, task=task_id, num_inference_steps=e.num_inference_steps, generator=gens,
                           output_type="pil").images
                for i, img in zip(chunk, out):
                    it = items[i]
                    answer = task.parse(img, it.instance)
                    verdict = task.verify(it.instance, answer)
                    rec = per.setdefault(str(it.spec), {"n": 0, "correct": 0, "parse_failures": 0})
                    rec["n"] += 1
                    rec["correct"] += int(verdict.correct)
                    rec["parse_failures"] += int(isinstance(answer, ParseFailure))
                    correct += int(verdict.correct)
                    failures += int(isinstance(answer, ParseFailure))
                    if len(samples) < want_images:
                        solved = task.render(it.instance, task.solve(it.instance), size=r)
                        samples.append((images[chunk.index(i)], img, fit_to_resolution(solved, r)))
    finally:
        denoiser.train(was_training)
    for rec in per.values():
        rec["solve_rate"] = rec["correct"] / rec["n"]
    return {"solve_rate": correct / len(items), "correct": correct, "n": len(items), "parse_failures": failures,
            "per_level": per, "samples": samples}


def _sample_grid(samples: Sequence[tuple[Any, Any, Any]], scale: int = 2) -> Any:
    """Rows of problem | prediction | target, upscaled (NEAREST) for viewing."""
    from PIL import Image

    if not samples:
        return None
    w, h = samples[0][0].size
    pad = 2
    grid = Image.new("RGB", (3 * w * scale + 4 * pad, len(samples) * (h * scale + pad) + pad), (128, 128, 128))
    for row, triple in enumerate(samples):
        for col, im in enumerate(triple):
            im = im.convert("RGB").resize((w * scale, h * scale), Image.NEAREST)
            grid.paste(im, (pad + col * (w * scale + pad), pad + row * (h * scale + pad)))
    return grid


# ============================================================================================== the loop
@dataclass
class TrainResult:
    """What ``train`` returns (main process has all fields; others get step/output_dir)."""

    output_dir: Path
    step: int
    checkpoint: Path | None = None
    pipeline_dir: Path | None = None
    final_eval: dict[str, Any] | None = None
    train_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


class _LossModel:
    """Adapter for ``flow_matching_loss``: calls the prepared (DDP/DeepSpeed-wrapped) model and exposes the
    unwrapped model's ``config`` (wrappers do not forward attributes)."""

    def __init__(self, prepared: torch.nn.Module, config: Any):
        self.prepared = prepared
        self.config = config

    def __call__(self, *args: Any) -> torch.Tensor:
        return self.prepared(*args)


#: Modules of the LAST MMDiT block that only feed its text-stream output, which the model discards (only image
#: tokens are read out): they get no gradient (``to_add_out``, ``txt_mlp``) or an exactly zero one (the text
#: queries). Left trainable they never change and DDP fails ("parameters that were not used in producing loss").
DEAD_LAST_BLOCK_MODULES = ("attn.to_add_out", "attn.add_q_proj", "attn.norm_added_q", "txt_mlp")


def freeze_unused_parameters(model: torch.nn.Module) -> list[str]:
    """Freeze the parameters of ``DEAD_LAST_BLOCK_MODULES`` in the denoiser's last transformer block; returns
    their names. (An adapter: the denoiser builds diffusers' transformer as is.)"""
    blocks = getattr(getattr(model, "transformer", None), "transformer_blocks", None)
    if not blocks:
        return []
    last = len(blocks) - 1
    frozen = []
    for name, p in model.named_parameters():
        prefix = f"transformer.transformer_blocks.{last}."
        if name.startswith(prefix) and name[len(prefix):].startswith(DEAD_LAST_BLOCK_MODULES) and p.requires_grad:
            p.requires_grad_(False)
            frozen.append(name)
    return frozen


#: the schedules whose factor decays to its end at ``max_steps`` (the rest never decay: only a time budget ends them)
DECAYING_LR_SCHEDULES = ("cosine", "linear")


def lr_multiplier(o: OptimArgs, max_steps: int) -> Any:
    """The LR factor for optimizer step k (0-based) under ``o.lr_scheduler`` (see OptimArgs)."""
    name, warm, floor = o.lr_scheduler, o.warmup_steps, o.min_lr_ratio

    def factor(k: int) -> float:
        if name == "constant":
            return 1.0
        if k < warm:
            return (k + 1) / warm
        if name == "constant_with_warmup":
            return 1.0
        p = min(1.0, (k - warm) / max(1, max_steps - warm))
        decay = 0.5 * (1 + math.cos(math.pi * p)) if name == "cosine" else 1.0 - p
        return floor + (1 - floor) * decay

    return factor


def _step_seed(seed: int, rank: int, micro_step: int) -> int:
    digest = hashlib.sha256(f"diffthinker-noise/{seed}/{rank}/{micro_step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                            "cpu_count": os.cpu_count(), "python": platform.python_version(),
                            "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    try:
        import accelerate
        import diffusers

        info["diffusers"] = diffusers.__version__
        info["accelerate"] = accelerate.__version__
    except ImportError:  # pragma: no cover
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


def _peak_memory_mb() -> float:
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / 1024.0 if sys.platform != "darwin" else rss / 2**20
    except (ImportError, OSError):  # pragma: no cover
        return float("nan")


def _append_metrics(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")


def train(cfg: TrainConfig, command: Sequence[str] | None = None) -> TrainResult:
    """Run (or resume) training per ``cfg``; see the module docstring. Returns a TrainResult."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed

    from .model import build_denoiser, count_parameters

    cfg.validate()
    command = list(command) if command is not None else list(sys.argv)
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    out = Path(cfg.output_dir)
    specs = parse_level_specs(cfg.data.levels, "data.levels")
    tasks = task_ids(specs)
    eval_specs = parse_level_specs(cfg.eval.levels if cfg.eval.levels is not None else cfg.data.levels,
                                   "eval.levels")
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=cfg.optim.gradient_accumulation_steps,
        log_with=None if cfg.report_to == "none" else cfg.report_to,
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
    )
    main_proc = accelerator.is_main_process
    rank, world = accelerator.process_index, accelerator.num_processes

    if main_proc:
        _recover_interrupted_saves(_checkpoint_root(cfg))
    accelerator.wait_for_everyone()
    resume_dir = _resolve_resume(cfg)
    if resume_dir is None and cfg.checkpoint.resume == "latest" and main_proc:
        logger.info("resume=latest: no checkpoint in %s, starting fresh", out)
    existing = find_checkpoints(_checkpoint_root(cfg))
    if resume_dir is None and existing and not cfg.overwrite:
        raise ConfigError(f"output_dir {out} already holds checkpoints ({existing[-1].name}); pass --resume "
                          f"(checkpoint.resume=latest) to continue, overwrite=true to start over, or another "
                          f"output_dir")
    if main_proc:
        out.mkdir(parents=True, exist_ok=True)
        if resume_dir is None and existing:
            for p in existing:
                shutil.rmtree(p)
            for name in ("metrics.jsonl",):
                (out / name).unlink(missing_ok=True)
    accelerator.wait_for_everyone()

    # ------------------------------------------------------------------ model, optimizer, schedule
    set_seed(cfg.seed)  # python, numpy, torch: the model init
    model = build_denoiser(cfg.model.preset, tasks, cfg.model.resolution, **cfg.model.overrides)
    if cfg.model.init_from is not None and resume_dir is None:
        source = init_weights_from(model, cfg.model.init_from)
        if main_proc:
            logger.info("fine-tuning: weights initialised from %s", source)
    model.train()
    frozen = freeze_unused_parameters(model)
    if frozen and main_proc:
        logger.info("froze %d parameters that never receive a gradient (last block's text output path)",
                    len(frozen))
    n_params = count_parameters(model)
    n_trainable = count_parameters(model, trainable_only=True)
    ema = EMA(model, cfg.ema.decay) if cfg.ema.decay > 0 else None
    o = cfg.optim
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=o.lr,
                                  betas=tuple(o.betas), weight_decay=o.weight_decay, eps=o.eps)
    # Not prepared by accelerate (which would step it once per process): stepped once per optimizer step that was
    # not skipped; its state (plain numbers) is kept in trainer_state.json.
    lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(o, cfg.max_steps))
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model)
    loss_model = _LossModel(model, unwrapped.config)
    flow_cfg = FlowConfig(**dataclasses.asdict(cfg.flow))

    # ------------------------------------------------------------------ data
    validation = validation_set(eval_specs, cfg.eval.n, cfg.eval.seed)
    blocked = BlockedHashes.build(validation, cfg.data.exclude)
    state: dict[str, Any] = {"step": 0, "micro_step": 0, "samples_seen": 0, "skipped": 0, "train_seconds": 0.0,
                             "history": [], "world_size": world, "per_device_batch": cfg.data.batch_size,
                             "runs": []}
    if resume_dir is not None:
        loaded = json.loads((resume_dir / TRAINER_STATE).read_text())
        _check_resume_compatible(resume_dir, cfg, loaded, world)
        accelerator.load_state(str(resume_dir))
        if ema is not None:
            if not (resume_dir / EMA_WEIGHTS).is_file():
                raise ConfigError(f"cannot resume {resume_dir} with ema.decay={cfg.ema.decay}: it holds no EMA")
            ema.load(resume_dir / EMA_WEIGHTS)
        state.update({k: loaded[k] for k in ("step", "micro_step", "samples_seen", "skipped", "train_seconds",
                                             "history", "runs") if k in loaded})
        sched = loaded.get("lr_scheduler")
        if not isinstance(sched, dict):
            raise TaskError(f"checkpoint {resume_dir} has no LR scheduler state in {TRAINER_STATE}")
        lr_scheduler.load_state_dict({**lr_scheduler.state_dict(), **sched})
        if main_proc:
            logger.info("resumed from %s at step %d (%d samples seen)", resume_dir, state["step"],
                        state["samples_seen"])
    # every start of this run (the first and each resume), so the model card can say how the weights were made
    state["runs"].append({"from_step": state["step"], "command": list(command),
                          "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
    dataset_rows = None
    if cfg.data.dataset is not None:
        from ..data import load_training_dataset

        dataset_rows = load_training_dataset(cfg.data.dataset)
    batches = PuzzleBatches(specs, tasks, cfg.model.resolution, cfg.data.batch_size, seed=cfg.seed, rank=rank,
                            world_size=world, offset=state["samples_seen"], seed_start=cfg.data.seed_start,
                            num_seeds=cfg.data.num_seeds, weights=cfg.data.weights, blocked=blocked,
                            dataset=dataset_rows)
    accum = o.gradient_accumulation_steps
    remaining = max(0, (cfg.max_steps - state["step"]) * accum)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, sampler=range(remaining),
                                         num_workers=cfg.data.num_workers,
                                         prefetch_factor=2 if cfg.data.num_workers else None)
    per_step_samples = world * cfg.data.batch_size

    # ------------------------------------------------------------------ logging
    metrics_path = out / "metrics.jsonl"
    if main_proc and cfg.report_to != "none":
        hparams = {k: (json.dumps(v) if isinstance(v, (list, dict)) or v is None else v)
                   for k, v in _flatten(cfg.to_dict()).items()}
        accelerator.init_trackers("diffthinker", config=hparams)
    samples_dir = out / "samples"
    eval_model: torch.nn.Module | None = None

    def run_eval(step: int) -> dict[str, Any] | None:
        nonlocal eval_model
        result = None
        if main_proc:
            t0 = time.time()
            target = unwrapped
            if ema is not None and cfg.eval.use_ema:
                if eval_model is None:
                    eval_model = copy.deepcopy(unwrapped)
                ema.copy_to(eval_model)
                target = eval_model
            result = evaluate(target, validation, cfg)
            secs = time.time() - t0
            record = {"event": "eval", "step": step, "solve_rate": result["solve_rate"], "correct": result["correct"],
                      "n": result["n"], "parse_failures": result["parse_failures"], "eval_seconds": round(secs, 2),
                      "train_seconds": round(state["train_seconds"], 2),
                      "per_level": {k: v["solve_rate"] for k, v in result["per_level"].items()}}
            state["history"].append(record)
            _append_metrics(metrics_path, record)
            logs = {"val/solve_rate": result["solve_rate"], "val/parse_failures": result["parse_failures"]}
            logs.update({f"val/solve_rate/{k}": v["solve_rate"] for k, v in result["per_level"].items()})
            accelerator.log(logs, step=step)
            grid = _sample_grid(result["samples"])
            if grid is not None:
                samples_dir.mkdir(parents=True, exist_ok=True)
                grid.save(samples_dir / f"step-{step:08d}.png")
                if cfg.report_to == "tensorboard":
                    try:
                        tracker = accelerator.get_tracker("tensorboard", unwrap=False)
                        tracker.log_images({"val/samples": np.asarray(grid)[None]}, step=step, dataformats="NHWC")
                    except Exception as exc:
                        logger.warning("could not log sample images to tensorboard: %s", exc)
            logger.info("step %d: solve rate %.3f (%d/%d) in %.1fs", step, result["solve_rate"],
                        result["correct"], result["n"], secs)
        accelerator.wait_for_everyone()
        return result

    # ------------------------------------------------------------------ train
    from tqdm.auto import tqdm

    bar = tqdm(total=cfg.max_steps, initial=state["step"], desc="train", unit="step",
               disable=not (main_proc and cfg.progress), dynamic_ncols=True)
    device = accelerator.device
    last_ckpt: Path | None = latest_checkpoint(out)
    loss_acc, stats_acc, n_acc = 0.0, {}, 0
    smooth = None
    seen_hashes: set[int] = set()
    t_window, steps_window = time.perf_counter(), 0
    t_step = time.perf_counter()
    stop = False
    final_eval = None
    for batch in loader:
        cond = batch["cond"].to(device, non_blocking=True)
        target = batch["target"].to(device, non_blocking=True)
        task_index = batch["task_index"].to(device)
        state["skipped"] += int(batch["skipped"])
        if main_proc and len(seen_hashes) < 5_000_000:
            seen_hashes.update(batch["hash64"].tolist())
        gen = torch.Generator(device=device).manual_seed(_step_seed(cfg.seed, rank, state["micro_step"]))
        with accelerator.accumulate(model):
            loss, stats = flow_matching_loss(loss_model, target, cond, task_index, gen, flow_cfg)
            accelerator.backward(loss)
            grad_norm = None
            if accelerator.sync_gradients and o.max_grad_norm is not None:
                grad_norm = accelerator.clip_grad_norm_(model.parameters(), o.max_grad_norm)
            optimizer.step()
            if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                lr_scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        state["micro_step"] += 1
        state["samples_seen"] += per_step_samples
        loss_acc += stats["loss"]
        n_acc += 1
        for k, v in stats.items():
            stats_acc[k] = stats_acc.get(k, 0.0) + v
        if not accelerator.sync_gradients:
            continue
        # ---------------------------------------------------------- one optimizer step done
        state["step"] += 1
        step = state["step"]
        if ema is not None:
            ema.update(unwrapped)
        now = time.perf_counter()
        state["train_seconds"] += now - t_step
        t_step = now
        steps_window += 1
        step_loss = loss_acc / n_acc
        smooth = step_loss if smooth is None else 0.9 * smooth + 0.1 * step_loss
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            mean_loss = float(accelerator.reduce(torch.tensor(step_loss, device=device), "mean"))
            sps = steps_window / max(1e-9, now - t_window)
            t_window, steps_window = now, 0
            record = {"event": "train", "step": step, "loss": mean_loss, "lr": lr_scheduler.get_last_lr()[0],
                      "steps_per_s": sps, "train_seconds": round(state["train_seconds"], 2),
                      "peak_rss_mb": round(_peak_memory_mb(), 1),
                      **({"peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)}
                         if device.type == "cuda" else {}),
                      **{f"{k}": v / n_acc for k, v in stats_acc.items() if k != "loss"}}
            if grad_norm is not None:
                record["grad_norm"] = float(grad_norm)
            if main_proc:
                accelerator.log({f"train/{k}": v for k, v in record.items() if k not in ("event", "step")},
                                step=step)
                _append_metrics(metrics_path, record)
            bar.set_postfix(loss=f"{smooth:.4f}", sps=f"{sps:.2f}", lr=f"{record['lr']:.2e}")
        loss_acc, stats_acc, n_acc = 0.0, {}, 0
        if cfg.max_minutes is not None:
            flag = torch.tensor([float(state["train_seconds"] >= cfg.max_minutes * 60)], device=device)
            stop = bool(accelerator.gather(flag).max() > 0)  # every process stops at the same step
        is_last = step >= cfg.max_steps or stop
        # evaluation first, so a checkpoint of the same step holds its result (evaluation draws from its own
        # seeded generators only: it does not change the training stream)
        if cfg.eval.every and step % cfg.eval.every == 0 and not is_last:
            run_eval(step)
            t_step = time.perf_counter()
        if cfg.checkpoint.every and step % cfg.checkpoint.every == 0 and not is_last:
            last_ckpt = save_checkpoint(accelerator, cfg, _public_state(state, lr_scheduler), ema)
            t_step = time.perf_counter()
        if stop:
            break
    bar.close()

    # ------------------------------------------------------------------ end: checkpoint, eval, export
    step = state["step"]
    if cfg.eval.at_end or (cfg.eval.every and step % cfg.eval.every == 0):
        final_eval = run_eval(step)
    if last_ckpt is None or last_ckpt.name != f"{CHECKPOINT_PREFIX}{step:08d}":
        last_ckpt = save_checkpoint(accelerator, cfg, _public_state(state, lr_scheduler), ema)
    skipped_total = int(accelerator.reduce(torch.tensor(state["skipped"], device=device), "sum"))
    pipeline_dir = None
    if main_proc and cfg.export:
        export_model = unwrapped
        if ema is not None and cfg.eval.use_ema:
            export_model = copy.deepcopy(unwrapped)
            ema.copy_to(export_model)
        pipeline_dir = out / "pipeline"
        tmp = out / ".pipeline.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        pipe = _make_pipeline(export_model, cfg)
        pipe.save_pretrained(str(tmp), safe_serialization=True)
        card = model_card(cfg, state=state, final_eval=final_eval, n_params=n_params,
                          n_trainable=n_trainable,
                          data_info=batches.describe(), blocked=blocked, validation=validation,
                          distinct_rank0=len(seen_hashes), skipped_total=skipped_total, world=world,
                          ema_used=ema is not None and cfg.eval.use_ema)
        (tmp / "README.md").write_text(card)
        (tmp / "training_config.yaml").write_text(cfg.to_yaml())
        replace_folder(tmp, pipeline_dir)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return TrainResult(output_dir=out, step=step, checkpoint=last_ckpt, pipeline_dir=pipeline_dir,
                       final_eval={k: v for k, v in final_eval.items() if k != "samples"} if final_eval else None,
                       train_seconds=state["train_seconds"], history=list(state["history"]))


def _command_lines(runs: Sequence[dict[str, Any]]) -> list[str]:
    """The card's command(s) from ``state["runs"]`` (this start last): one line for a run trained in one go, else
    every start in order (a resume continues exactly, so the first command with the last max_steps / max_minutes
    reproduces the weights in one go)."""
    if len(runs) == 1 and runs[0]["from_step"] == 0:
        return [f"- command: `{' '.join(runs[0]['command'])}`"]
    lines = ["- commands, in order (each resume continues exactly where the previous one stopped):"]
    if runs[0]["from_step"]:
        lines.append(f"  - steps 0..{runs[0]['from_step']}: not recorded (a checkpoint saved before the project "
                     "recorded its commands)")
    lines += [f"  - from step {r['from_step']} ({r['started']}): `{' '.join(r['command'])}`" for r in runs]
    return lines


def _public_state(state: dict[str, Any], lr_scheduler: Any) -> dict[str, Any]:
    sched = {k: v for k, v in lr_scheduler.state_dict().items() if k != "lr_lambdas"}
    return {**state, "lr_scheduler": json.loads(json.dumps(sched)),
            "saved_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "overrides":
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# ============================================================================================== model card
def model_card(cfg: TrainConfig, *, state: dict[str, Any], final_eval: dict[str, Any] | None,
               n_params: int, n_trainable: int, data_info: dict[str, Any], blocked: BlockedHashes, validation: Sequence[ValItem],
               distinct_rank0: int, skipped_total: int, world: int, ema_used: bool) -> str:
    """The README.md of an exported pipeline: command, config, data seeds and hashes, time, machine, solve rate."""
    val_fp = hash_fingerprint(v.content_hash for v in validation)
    per_spec: dict[str, list[int]] = {}
    for v in validation:
        per_spec.setdefault(str(v.spec), []).append(v.seed)
    secs = state["train_seconds"]
    steps = state["step"]
    started = state["runs"][-1]["from_step"]  # this process's first step (puzzle counts below are per process)
    lines = [
        "---",
        "library_name: diffusers",
        "tags: [diffthinker, flow-matching, visual-reasoning]",
        "---",
        "",
        f"# DiffThinker pipeline: {', '.join(cfg.data.levels)}",
        "",
        f"A `DiffThinkerPipeline` ({cfg.model.preset}, {n_params / 1e6:.2f} M parameters, "
        f"{cfg.model.resolution}x{cfg.model.resolution} px; {n_trainable / 1e6:.2f} M trained, the rest never "
        f"receives a gradient) trained for {steps} steps"
        + (f", fine-tuned from the weights of `{cfg.model.init_from}`" if cfg.model.init_from else "")
        + (" (EMA weights)" if ema_used else "") + ".",
        "",
        "## Validation solve rate",
        "",
    ]
    if final_eval:
        lines += [f"**{final_eval['solve_rate']:.1%}** ({final_eval['correct']}/{final_eval['n']}) with one sample "
                  f"and {cfg.eval.num_inference_steps} Euler steps, parsed and verified by the puzzle layer "
                  f"(parse failures: {final_eval['parse_failures']}).", "",
                  "| level | n | correct | solve rate |", "|---|---|---|---|"]
        for k, v in final_eval["per_level"].items():
            lines.append(f"| {k} | {v['n']} | {v['correct']} | {v['solve_rate']:.1%} |")
        lines.append("")
    else:
        lines += ["Not evaluated at the end of training (eval.at_end=false).", ""]
    # a resumed run may evaluate a step again (the end of a run resumed at its last checkpoint): the last one counts
    hist = sorted({h["step"]: h for h in state["history"] if h.get("event") == "eval"}.values(),
                  key=lambda h: h["step"])
    if len(hist) > 1:
        lines += ["Learning curve:", "", "| step | training minutes | solve rate |", "|---|---|---|"]
        lines += [f"| {h['step']} | {h['train_seconds'] / 60:.1f} | {h['solve_rate']:.1%} |" for h in hist]
        lines.append("")
    lines += [
        "## Training",
        "",
        *_command_lines(state["runs"]),
        f"- steps: {steps}, samples seen: {state['samples_seen']} ({world} process(es) x batch "
        f"{cfg.data.batch_size} x accumulation {cfg.optim.gradient_accumulation_steps})",
        f"- training time: {secs / 60:.1f} min (evaluation excluded), {steps / max(secs, 1e-9):.2f} steps/s",
        f"- peak resident memory (main process): {_peak_memory_mb():.0f} MB"
        + (f"; peak GPU memory allocated: {torch.cuda.max_memory_allocated() / 2**20:.0f} MB"
           if torch.cuda.is_available() else ""),
        f"- finished: {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}",
        "",
        "## Data",
        "",
        f"- source: {data_info.get('source')}; levels: {', '.join(data_info['levels'])}",
    ]
    if data_info.get("source") == "on-the-fly":
        lines.append(f"- seed rule: {data_info['seed_rule']}; sample seed {data_info['sample_seed']}")
    else:
        lines.append(f"- dataset: `{cfg.data.dataset}` ({data_info['rows']} rows used, "
                     f"{data_info['rows_blocked']} dropped as validation/test puzzles)")
    lines += [
        f"- never trained on: {len(blocked.hashes)} content hashes ({', '.join(f'{k}: {v}' for k, v in blocked.sources.items())}); "
        f"fingerprint sha256 `{blocked.fingerprint()}`",
        f"- blocked candidates skipped while training (all processes): {skipped_total}",
        f"- distinct training puzzles seen by the main process"
        + (f" since its last start (step {started})" if started else "") + f": {distinct_rank0}",
        f"- validation set: {len(validation)} puzzles, seeds "
        + "; ".join(f"{k}: {min(s)}..{max(s)} ({len(s)})" for k, s in per_spec.items())
        + f"; content-hash fingerprint sha256 `{val_fp}`",
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in _machine().items()]
    lines += ["", "## Config", "", "```yaml", cfg.to_yaml().rstrip(), "```", "",
              "## Use", "", "```python", "from diffthinker.diffusion.pipeline import DiffThinkerPipeline",
              "pipe = DiffThinkerPipeline.from_pretrained('<this folder>')",
              f"solved = pipe(problem_images, task={task_ids(parse_level_specs(cfg.data.levels))[0]!r}).images",
              "```", ""]
    return "\n".join(lines)


# ============================================================================================== command line
def build_arg_parser(prog: str = "train_diffusion.py") -> Any:
    """``train_diffusion.py``'s parser; ``diffthinker train diffusion`` declares the same arguments with the same
    ``config_io.add_train_arguments`` call (without importing this torch-importing module)."""
    import argparse

    p = argparse.ArgumentParser(prog=prog, description="Train the DiffThinker diffusion reasoner (flow matching "
                                "under accelerate).")
    config_io.add_train_arguments(p, config_io.DIFFUSION_EXAMPLE_OVERRIDES)
    return p


def run_from_args(args: Any, command: Sequence[str]) -> int:
    """Resolve the config from parsed arguments and train (or print the config). TaskError/ConfigError propagate."""
    cfg = config_io.config_from_args(args, load_config)
    if args.print_config:
        print(cfg.to_yaml(), end="")
        return 0
    result = train(cfg, command=command)
    if result.pipeline_dir is not None or result.final_eval is not None:  # the main process
        print(json.dumps({"step": result.step, "pipeline": str(result.pipeline_dir) if result.pipeline_dir else None,
                          "checkpoint": str(result.checkpoint) if result.checkpoint else None,
                          "solve_rate": result.final_eval["solve_rate"] if result.final_eval else None,
                          "train_seconds": round(result.train_seconds, 1)}))
    return 0


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("accelerate", "diffusers"):  # per-file save/load chatter
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None, prog: str = "train_diffusion.py") -> int:
    """``train_diffusion.py`` entry: parse, train, print a one-line JSON summary. Config errors exit 2."""
    args = build_arg_parser(prog).parse_intermixed_args(argv)  # options may follow the overrides
    setup_logging()
    try:
        return run_from_args(args, [prog, *(sys.argv[1:] if argv is None else argv)])
    except TaskError as exc:
        print(f"{prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
