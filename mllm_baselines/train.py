"""Training the MLLM baseline under ``accelerate``: SFT warm start, then GRPO-family RL; checkpoints, resume, eval.

    accelerate launch training/train_mllm_rl.py --config training/configs/mllm_grpo.yaml [key=value ...]
    python training/train_mllm_rl.py --config training/configs/mllm_dapo.yaml rl.steps=200 --resume
    diffthinker train mllm --config training/configs/mllm_canon.yaml preset=[canon,siren]

Stages run in order and are skipped at 0 steps: ``sft`` (``sft.steps``; loss on answer tokens only) and ``rl``
(``rl.steps``; the components and presets of ``mllm_baselines.rl``). ``max_minutes`` per stage stops it early on
training time (evaluation excluded).

Output folder (``output_dir``)::

    checkpoints/checkpoint-<stage>-<step>/   model.safetensors, optimizer.safetensors (AdamW state as tensors +
                                             JSON metadata: no pickle), ref.safetensors (KL reference, when
                                             beta > 0), trainer_state.json (stage, step, puzzle counter, RL hook
                                             state: replay buffer, SIREN anchor), config.yaml
    metrics.jsonl                            one JSON line per train / eval event
    policy/                                  the final policy (Policy.save: safetensors + diffthinker_policy.json)

Checkpoints are written to a ``.tmp-`` folder and renamed into place, so a crash mid-write leaves the previous
one intact. ``--resume`` (``checkpoint.resume=latest`` or a path) restores weights, optimizer, reference, hook
state and the data position; every random choice is seeded from (seed, stage, step, ...), so N steps + resume + N
steps gives exactly the weights of 2N steps (a test checks this).

Multi-process (DDP through accelerate's config): every process draws its own puzzles (process r takes puzzles
``g * world + r``), generates its own groups and computes its own probes; loss normalisers are summed over
processes; only the main process writes files and evaluates. Sharded optimizers (FSDP / ZeRO-3) are not
supported by this checkpoint format.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import yaml

from diffthinker import config_io
from diffthinker.fsutil import replace_folder
from diffthinker.tasks import get_task
from diffthinker.tasks.base import TaskError

from .config import ConfigError, TrainConfig, load_config
from diffthinker.tasks.level_specs import hash_fingerprint

from .data import Puzzle, PuzzleStream, eval_puzzles, parse_level_specs
from .generation import HFGenerator, SamplingConfig, derive_seed
from .policy import Policy, load_policy
from .prompts import build_prompt, target_text
from .rewards import RewardConfig, score_completion
from .sft import sft_examples, sft_loss

logger = logging.getLogger(__name__)

__all__ = ["TrainResult", "answer_budget", "evaluate", "main", "train"]

STAGES = ("sft", "rl")
CKPT_PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.json"


@dataclass
class TrainResult:
    policy: Policy
    policy_dir: Path | None
    final_eval: dict[str, Any] | None
    state: dict[str, Any]


# ============================================================================================== budgets / eval
def answer_budget(task_id: str, level: str, policy: Any, *, reasoning: bool = False, samples: int = 32) -> int:
    """Completion budget for a level: 1.25 x the longest target (answer, or trace + answer) in tokens over
    ``samples`` seeded puzzles, + 4 (EOS and slack)."""
    task = get_task(task_id)
    longest = 0
    for s in range(samples):
        inst = task.generate(level, 10_000 + s)
        longest = max(longest, len(policy.encode_text(target_text(task, inst, reasoning=reasoning))))
    return int(math.ceil(1.25 * longest)) + 4


@torch.no_grad()
def evaluate(policy: Policy, puzzles: Sequence[Puzzle], *, temperature: float = 0.0, batch_size: int = 100,
             seed: int = 0, generator: Any = None, reward: RewardConfig = RewardConfig()) -> dict[str, Any]:
    """Accuracy on ``puzzles`` with one completion each (image prompts; greedy at temperature 0)."""
    gen = generator or HFGenerator(batch_size)
    sampling = SamplingConfig(temperature=temperature)
    t0 = time.perf_counter()
    by_task: dict[str, list[int]] = {}
    for i, p in enumerate(puzzles):
        by_task.setdefault(p.spec.task, []).append(i)
    texts: dict[int, Any] = {}
    tokens = 0
    for task_id, idx in by_task.items():
        prompts = [build_prompt(task_id, instance=puzzles[i].instance, image_size=policy.image_size) for i in idx]
        seeds = [derive_seed(seed, "eval", puzzles[i].seed) for i in idx]
        comps = gen.generate(policy, prompts, seeds, sampling, policy.max_new_tokens(task_id), batch_size=batch_size)
        for i, c in zip(idx, comps):
            texts[i] = c
            tokens += len(c.ids)
    seconds = time.perf_counter() - t0
    per_level: dict[str, dict[str, float]] = {}
    correct = parsed = 0
    rsum = 0.0
    samples = []
    for i, p in enumerate(puzzles):
        s = score_completion(p.spec.task, p.instance, texts[i].text, reward)
        correct += s.correct
        parsed += s.parsed
        rsum += s.reward
        lv = per_level.setdefault(str(p.spec), {"n": 0, "correct": 0})
        lv["n"] += 1
        lv["correct"] += int(s.correct)
        if len(samples) < 3:
            samples.append({"seed": p.seed, "text": texts[i].text, "correct": s.correct})
    for lv in per_level.values():
        lv["accuracy"] = lv["correct"] / lv["n"]
    n = len(puzzles)
    return {"n": n, "correct": correct, "accuracy": correct / n, "parse_rate": parsed / n, "reward": rsum / n,
            "per_level": per_level, "seconds": seconds, "gen_tokens_per_s": tokens / max(seconds, 1e-9),
            "temperature": temperature, "samples": samples}


# ============================================================================================== checkpoints
def save_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    """AdamW state as safetensors: one tensor per (param index, state key); param groups and scalars as JSON."""
    from safetensors.torch import save_file

    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}/{k}"] = v.detach().contiguous().cpu()
            else:
                scalars[f"{pid}/{k}"] = v
    meta = {"param_groups": json.dumps(sd["param_groups"]), "scalars": json.dumps(scalars)}
    save_file(tensors, str(path), metadata=meta)


def load_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
        state: dict[int, dict[str, Any]] = {}
        for key in fh.keys():
            pid, _, k = key.partition("/")
            state.setdefault(int(pid), {})[k] = fh.get_tensor(key)
    for key, v in json.loads(meta.get("scalars", "{}")).items():
        pid, _, k = key.partition("/")
        state.setdefault(int(pid), {})[k] = v
    groups = json.loads(meta["param_groups"])
    opt.load_state_dict({"state": state, "param_groups": groups})


def find_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first (ordered by stage, then step)."""
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        if not (p.is_dir() and p.name.startswith(CKPT_PREFIX) and (p / STATE_FILE).is_file()):
            continue
        stage, _, step = p.name[len(CKPT_PREFIX):].partition("-")
        if stage in STAGES and step.isdigit():
            found.append(((STAGES.index(stage), int(step)), p))
    return [p for _, p in sorted(found)]


def _resolve_resume(cfg: TrainConfig) -> Path | None:
    r = cfg.checkpoint.resume
    if r is None:
        return None
    if r == "latest":
        found = find_checkpoints(cfg.output_dir)
        return found[-1] if found else None
    p = Path(r)
    if p.is_dir() and not (p / STATE_FILE).is_file():
        inner = find_checkpoints(p)
        if inner:
            return inner[-1]
    if not (p / STATE_FILE).is_file():
        raise ConfigError(f"checkpoint.resume = {r!r} is not a checkpoint folder (no {STATE_FILE}); expected "
                          "'latest', a checkpoint folder, or a run's output_dir")
    return p


def save_checkpoint(cfg: TrainConfig, state: dict[str, Any], model: torch.nn.Module, opt: torch.optim.Optimizer,
                    ref: torch.nn.Module | None) -> Path:
    from safetensors.torch import save_model

    root = Path(cfg.output_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"{CKPT_PREFIX}{state['stage']}-{state['step']:07d}"
    final, tmp = root / name, root / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_model(model, str(tmp / "model.safetensors"))  # handles tied embeddings (stored once)
        save_optimizer(opt, tmp / "optimizer.safetensors")
        if ref is not None:
            save_model(ref, str(tmp / "ref.safetensors"))
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
        (tmp / "config.yaml").write_text(cfg.to_yaml())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_folder(tmp, final)
    for stale in find_checkpoints(cfg.output_dir)[:-cfg.checkpoint.keep_last]:
        shutil.rmtree(stale, ignore_errors=True)
    for p in root.iterdir():  # half-written saves of a crashed run
        if p.name.startswith((".tmp-", ".old-")) and p != tmp:
            shutil.rmtree(p, ignore_errors=True)
    return final


def _load_weights(model: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import load_model

    missing, unexpected = load_model(model, str(path), strict=False)
    if missing or unexpected:
        raise TaskError(f"{path} does not match the model (missing {sorted(missing)[:3]}, unexpected "
                        f"{sorted(unexpected)[:3]})")


# ============================================================================================== the loop
def _append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")


def _lr_lambda(warmup: int):
    return lambda k: min(1.0, (k + 1) / warmup) if warmup > 0 else 1.0


def _peak_rss_mb() -> float:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except (ImportError, OSError):
        return float("nan")


def train(cfg: TrainConfig, command: Sequence[str] | None = None) -> TrainResult:
    """Run the configured stages (see the module docstring)."""
    from accelerate import Accelerator

    from .rl.trainer import RLStep

    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    from accelerate.utils import DistributedDataParallelKwargs

    # text-only rows (ReVisual-R1's text stages, text SFT) leave the vision tower without gradients in a step
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    accelerator = Accelerator(log_with="tensorboard" if cfg.report_to == "tensorboard" else None,
                              project_dir=str(Path(cfg.output_dir) / "logs"), kwargs_handlers=[ddp])
    main_proc = accelerator.is_main_process
    rank, world = accelerator.process_index, accelerator.num_processes
    out = Path(cfg.output_dir)
    resume_dir = _resolve_resume(cfg)
    if main_proc:
        if resume_dir is None and find_checkpoints(out):
            if not cfg.overwrite:
                raise ConfigError(f"output_dir {out} already holds checkpoints; pass --resume to continue it or "
                                  "overwrite=true to start over")
            shutil.rmtree(out / "checkpoints", ignore_errors=True)
            (out / "metrics.jsonl").unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    metrics_path = out / "metrics.jsonl"

    specs = parse_level_specs(cfg.data.levels)
    tasks = list(dict.fromkeys(s.task for s in specs))
    eval_specs = parse_level_specs(cfg.eval.levels) if cfg.eval.levels is not None else specs
    policy = load_policy(cfg.model.name_or_path, tasks=tasks, image_size=cfg.model.image_size, seed=cfg.seed,
                         overrides=cfg.model.overrides or None, torch_dtype=cfg.model.torch_dtype)
    budgets = {}
    for s in specs + [e for e in eval_specs if e not in specs]:
        b = policy.meta.max_new_tokens.get(s.task) or answer_budget(s.task, s.level, policy,
                                                                     reasoning=cfg.sft.reasoning)
        budgets[s.task] = max(budgets.get(s.task, 0), int(b))
    policy.meta.max_new_tokens.update(budgets)
    policy.to(accelerator.device)
    if cfg.model.freeze_vision:
        for n, p in policy.model.named_parameters():
            if n.startswith(("visual.", "model.visual.")):
                p.requires_grad_(False)
    eval_set = eval_puzzles(eval_specs, cfg.eval.n, cfg.eval.seed)
    blocked = {p.content_hash for p in eval_set}
    blocked_sources = {"evaluation": len(blocked)}
    if cfg.data.exclude:
        from diffthinker.data.dedup import collect_hashes

        for folder in cfg.data.exclude:
            extra = collect_hashes([folder])
            blocked_sources[f"exclude:{folder}"] = len(extra)
            blocked |= extra
    stream = PuzzleStream(specs, seed_start=cfg.data.seed_start, blocked=blocked)
    generator: Any = HFGenerator(cfg.rl.generation_batch_size)
    vllm_sync = 0
    if cfg.generation.backend == "vllm" and cfg.rl.steps > 0:
        from .generation import VLLMConfig, VLLMGenerator

        vcfg = VLLMConfig(**cfg.generation.vllm).validate()
        init_dir = out / f"vllm-init-rank{rank}"
        policy.save(init_dir)  # the engine loads from disk once; later syncs copy weights in memory
        generator = VLLMGenerator(str(init_dir), vcfg, image_size=policy.image_size)
        vllm_sync = vcfg.sync_every

    state: dict[str, Any] = {"stage": "sft", "step": 0, "puzzles": 0, "done": [], "train_seconds": {},
                             "rl_hooks": None, "world_size": world}
    ckpt_state = None
    if resume_dir is not None:
        ckpt_state = json.loads((resume_dir / STATE_FILE).read_text())
        old_cfg = yaml.safe_load((resume_dir / "config.yaml").read_text()) or {}
        if old_cfg.get("model", {}).get("name_or_path") != cfg.model.name_or_path:
            raise ConfigError(f"cannot resume from {resume_dir}: model.name_or_path was "
                              f"{old_cfg.get('model', {}).get('name_or_path')!r} there, {cfg.model.name_or_path!r} now")
        _load_weights(policy.model, resume_dir / "model.safetensors")
        state.update(ckpt_state)
        logger.info("resuming from %s (stage %s, step %d)", resume_dir, state["stage"], state["step"])
    model = accelerator.prepare_model(policy.model)
    reward_cfg = RewardConfig(**cfg.rl.rewards)

    def log(record: dict[str, Any]) -> None:
        if main_proc:
            _append(metrics_path, record)
            if cfg.report_to != "none":
                accelerator.log({f"{record['event']}/{k}": v for k, v in record.items()
                                 if isinstance(v, (int, float)) and k not in ("step",)},
                                step=record.get("global_step", 0))

    def run_eval(tag: str) -> dict[str, Any] | None:
        if not main_proc:
            return None
        res = evaluate(policy, eval_set, temperature=cfg.eval.temperature, batch_size=cfg.eval.batch_size,
                       seed=cfg.seed, generator=generator, reward=reward_cfg)
        log({"event": "eval", "tag": tag, "stage": state["stage"], "step": state["step"],
             **{k: v for k, v in res.items() if k != "samples"}, "samples": res["samples"]})
        logger.info("eval %s: accuracy %.3f (%d/%d), parse rate %.3f", tag, res["accuracy"], res["correct"],
                    res["n"], res["parse_rate"])
        return res

    if cfg.report_to != "none" and main_proc:
        accelerator.init_trackers("diffthinker-mllm", config={"output_dir": cfg.output_dir})
    final_eval = None
    if cfg.eval.at_start and resume_dir is None:
        final_eval = run_eval("start")

    for stage in STAGES:
        steps = cfg.sft.steps if stage == "sft" else cfg.rl.steps
        current = STAGES.index(state["stage"])
        if steps == 0 or STAGES.index(stage) < current:
            continue  # skipped, or finished by an earlier invocation of this run
        if state["stage"] != stage:
            state.update(stage=stage, step=0, puzzles=0, rl_hooks=None)
        elif stage in state["done"]:
            if state["step"] >= steps:
                continue
            state["done"].remove(stage)  # resumed with more steps than the run had: continue the stage
        args = cfg.sft if stage == "sft" else cfg.rl
        params = [p for p in policy.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
        ref = None
        if stage == "rl" and cfg.rl.beta > 0:
            import copy

            ref = copy.deepcopy(policy.model).eval()
            for p in ref.parameters():
                p.requires_grad_(False)
        if ckpt_state is not None and ckpt_state["stage"] == stage and ckpt_state["step"] > 0:
            load_optimizer(opt, resume_dir / "optimizer.safetensors")
            if ref is not None:
                _load_weights(ref, resume_dir / "ref.safetensors")
        # the schedule is a pure function of the step: rebuild it and advance it to the resumed step
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "lr_scheduler.step() before optimizer.step()"
            sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(args.warmup_steps))
            for _ in range(state["step"]):
                sched.step()
        opt = accelerator.prepare_optimizer(opt)

        def optimizer_step() -> float | None:
            gn = None
            if cfg.max_grad_norm is not None:
                gn = float(accelerator.clip_grad_norm_(params, cfg.max_grad_norm))
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            return gn

        def next_puzzles(count: int) -> list[Puzzle]:
            start = state["puzzles"]
            state["puzzles"] += count
            return [stream[(start + j) * world + rank] for j in range(count)]

        rl_step = None
        if stage == "rl":
            rl_step = RLStep(cfg.rl, policy, seed=derive_seed(cfg.seed, rank), generator=generator,
                             budgets=budgets, ref_model=ref, backward=accelerator.backward,
                             optimizer_step=optimizer_step,
                             reduce_sum=(lambda x: float(accelerator.reduce(torch.tensor(x, device=accelerator.device),
                                                                            "sum"))) if world > 1 else None,
                             world_size=world, train_model=model)
            if state.get("rl_hooks"):
                rl_step.load_state_dict(state["rl_hooks"])
            if rl_step.buffer is not None:  # retired questions are never drawn again (ExGRPO)
                base_next = next_puzzles

                def next_puzzles(count: int) -> list[Puzzle]:  # noqa: F811
                    out: list[Puzzle] = []
                    while len(out) < count:
                        out += [p for p in base_next(count - len(out)) if p.content_hash not in rl_step.buffer.retired]
                    return out
        max_minutes = args.max_minutes
        spent = float(state["train_seconds"].get(stage, 0.0))
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=state["step"], desc=stage, disable=not (cfg.progress and main_proc),
                   dynamic_ncols=True)
        policy.model.train()
        while state["step"] < steps:
            t0 = time.perf_counter()
            if stage == "sft":
                puzzles = next_puzzles(args.batch_size)
                ex = sft_examples(policy, puzzles, mode=args.prompt_mode, reasoning=args.reasoning)
                total = float(sum(len(e.target_ids) for e in ex))
                total = float(accelerator.reduce(torch.tensor(total), "sum")) if world > 1 else total
                rec = {"loss": 0.0, "sft_tokens": 0.0, "sft_token_acc": 0.0, "sft_exact": 0.0}
                for i in range(0, len(ex), args.micro_batch_size):
                    part = ex[i:i + args.micro_batch_size]
                    loss, m = sft_loss(policy, part, model=model, normalizer=total / world)
                    accelerator.backward(loss)
                    rec["loss"] += float(loss.detach())
                    rec["sft_tokens"] += m["sft_tokens"]
                    rec["sft_token_acc"] += m["sft_token_acc"] * m["sft_tokens"]
                    rec["sft_exact"] += m["sft_exact"] * len(part)
                rec["sft_token_acc"] /= max(1.0, rec["sft_tokens"])
                rec["sft_exact"] /= len(ex)
                gn = optimizer_step()
                if gn is not None:
                    rec["grad_norm"] = gn
            else:
                res = rl_step.run(state["step"], next_puzzles)
                rec = res.metrics
                state["rl_hooks"] = rl_step.state_dict()
                if vllm_sync and (state["step"] + 1) % vllm_sync == 0:
                    generator.load_weights(policy.model)
            dt = time.perf_counter() - t0
            spent += dt
            state["step"] += 1
            state["train_seconds"][stage] = spent
            bar.update(1)
            if state["step"] % cfg.log_every == 0 or state["step"] == steps:
                record = {"event": "train", "stage": stage, "step": state["step"], "seconds": dt,
                          "train_seconds": spent, "lr": opt.param_groups[0]["lr"], "peak_rss_mb": _peak_rss_mb(),
                          **{k: v for k, v in rec.items()}}
                log(record)
                bar.set_postfix({k: round(v, 3) for k, v in rec.items()
                                 if k in ("loss", "reward", "accuracy", "sft_token_acc")})
            timed_out = max_minutes is not None and spent / 60 >= max_minutes
            if world > 1:
                timed_out = bool(accelerator.reduce(torch.tensor(float(timed_out)), "max") > 0)
            last = state["step"] >= steps or timed_out
            every = cfg.checkpoint.every
            if every and state["step"] % every == 0 and not last:
                accelerator.wait_for_everyone()
                if main_proc:
                    save_checkpoint(cfg, state, policy.model, opt, ref)
                accelerator.wait_for_everyone()
            if cfg.eval.every and state["step"] % cfg.eval.every == 0 and not last:
                final_eval = run_eval(f"{stage}-{state['step']}")
            if timed_out:
                logger.info("%s stopped at step %d: %.1f training minutes reached", stage, state["step"],
                            spent / 60)
                break
        bar.close()
        state["done"].append(stage)
        state["stopped_at"] = {**state.get("stopped_at", {}), stage: state["step"]}
        accelerator.wait_for_everyone()
        if main_proc:  # the stage's last checkpoint, marked done (a resume skips a finished stage)
            save_checkpoint(cfg, state, policy.model, opt, ref)
        accelerator.wait_for_everyone()
        if cfg.eval.at_end:
            final_eval = run_eval(f"{stage}-end")
    policy.model.eval()
    policy_dir = None
    if cfg.export and main_proc:
        policy_dir = out / "policy"
        tmp = out / ".tmp-policy"
        shutil.rmtree(tmp, ignore_errors=True)
        per_spec: dict[str, list[int]] = {}
        for p in eval_set:
            per_spec.setdefault(str(p.spec), []).append(p.seed)
        held_out = {  # what this policy was never trained on, as the diffusion model card records it
            "n_hashes": len(blocked), "fingerprint": hash_fingerprint(blocked),
            "sources": blocked_sources,
            "evaluation_set": {"n": len(eval_set), "seed": cfg.eval.seed,
                               "fingerprint": hash_fingerprint(p.content_hash for p in eval_set),
                               "seeds": {k: [min(v), max(v), len(v)] for k, v in per_spec.items()}},
        }
        policy.save(tmp, training={"config": cfg.to_dict(), "command": list(command or []), "held_out": held_out,
                                   "state": {k: state[k] for k in ("done", "stopped_at", "train_seconds")
                                             if k in state},
            "final_eval": {k: v for k, v in (final_eval or {}).items() if k != "samples"},
            "machine": {"platform": platform.platform(), "torch": torch.__version__}})
        replace_folder(tmp, policy_dir)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return TrainResult(policy, policy_dir, final_eval, state)


# ============================================================================================== CLI
def main(argv: list[str] | None = None, prog: str = "train_mllm_rl.py") -> int:
    """``train_mllm_rl.py`` / ``diffthinker train mllm``: parse, train, print a one-line JSON summary.
    Config and input errors exit 2 with one line naming the problem."""
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description="Train the MLLM baseline: SFT warm start, then "
                                     "GRPO-family RL (presets: grpo, dr_grpo, dapo, luffy, exgrpo, vppo, siren, canon, "
                                     "diver, revisual).")
    config_io.add_train_arguments(parser, "preset=[canon,siren] rl.steps=100 rl.epsilon_high=0.28",
                                  configs="training/configs/mllm_*.yaml")
    try:
        args = parser.parse_intermixed_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("accelerate", "transformers", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        cfg = config_io.config_from_args(args, load_config)
        if args.print_config:
            print(cfg.to_yaml(), end="")
            return 0
        result = train(cfg, command=[prog, *(sys.argv[1:] if argv is None else argv)])
    except TaskError as exc:
        print(f"{prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if result.policy_dir is not None or result.final_eval is not None:
        ev = result.final_eval or {}
        print(json.dumps({"policy": str(result.policy_dir) if result.policy_dir else None,
                          "accuracy": ev.get("accuracy"), "stages": result.state.get("stopped_at"),
                          "train_seconds": result.state.get("train_seconds")}))
    return 0
