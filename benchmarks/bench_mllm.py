"""CPU benchmark of the MLLM baseline: accuracy before training, after SFT, and after RL with several presets.

    python benchmarks/bench_mllm.py --level maze:8 --name maze8 --sft-minutes 6 --rl-steps 60 --rl-minutes 10 \\
        --presets grpo dr_grpo dapo canon siren vppo luffy revisual
    python benchmarks/bench_mllm.py --level frozenlake:vsp3 --name vsp3 ...
    python benchmarks/bench_mllm.py --report benchmarks/results/mllm_maze8.json   # print the markdown table again

Every run is ``mllm_baselines.train.train`` (what ``training/train_mllm_rl.py`` runs) on the configs in
``training/configs`` with the benchmark's overrides:

1. ``sft``: ``mllm_sft.yaml`` on the level, for ``--sft-minutes`` of training time (evaluation excluded), evaluated
   before training (the random-init tiny policy) and at the end;
2. one RL run per preset (``mllm_<preset>.yaml``), each starting from that SFT policy, for ``--rl-steps``
   optimizer steps (the same number of updates for every preset, so ``revisual``'s curriculum is scheduled over
   the steps it runs), stopped earlier if it reaches ``--rl-minutes`` of training time. Step counts rather than a
   time budget make the presets comparable on a shared machine whose load changes during the benchmark.
   ``revisual`` starts from the same image-SFT policy as the others (its own text-only cold start is not run here,
   so the comparison is of the RL stages alone). ``--reuse-sft`` keeps an SFT run already in the run folder.

Evaluation: the same ``--eval-n`` (200) fresh seeded puzzles of the level as the diffusion benchmark (seeds 0..,
duplicates skipped; excluded from training by content hash), one greedy completion each, parsed with the task's
``parse_text`` and scored by its verifier. Throughput: SFT examples/s, RL optimizer steps/s and rollout tokens/s
(training), and greedy generation tokens/s (evaluation).

Results: ``benchmarks/results/mllm_<name>.json`` (the command, machine, configs and every number) and a markdown
table printed at the end (the one docs/BENCHMARKS.md quotes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
CONFIGS = ROOT / "training" / "configs"


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def summarize_run(run_dir: Path, stage: str) -> dict[str, Any]:
    recs = read_metrics(run_dir)
    train = [r for r in recs if r.get("event") == "train" and r.get("stage") == stage]
    evals = {r["tag"]: r for r in recs if r.get("event") == "eval"}
    out: dict[str, Any] = {"run_dir": str(run_dir), "steps": train[-1]["step"] if train else 0,
                           "train_minutes": round(train[-1]["train_seconds"] / 60, 2) if train else 0.0,
                           "peak_rss_mb": max((r.get("peak_rss_mb", 0.0) for r in train), default=None)}
    if train:
        secs = train[-1]["train_seconds"]
        out["steps_per_s"] = round(out["steps"] / secs, 4) if secs else None
    if stage == "sft" and train:
        out["final_loss"] = round(train[-1]["loss"], 4)
        out["final_token_acc"] = round(train[-1]["sft_token_acc"], 4)
    if stage == "rl" and train:
        gen_s = sum(r.get("gen_seconds", 0.0) for r in train)
        upd_s = sum(r.get("update_seconds", 0.0) for r in train)
        out["rollout_tokens_per_s"] = round(sum(r.get("gen_tokens", 0.0) for r in train) / gen_s, 1) if gen_s else None
        out["update_rows_per_s"] = round(sum(r.get("rows_trained", 0.0) for r in train) / upd_s, 1) if upd_s else None
        last = train[-min(10, len(train)):]
        out["train_reward_last10"] = round(sum(r["reward"] for r in last) / len(last), 4)
        out["train_accuracy_last10"] = round(sum(r["accuracy"] for r in last) / len(last), 4)
        out["frac_zero_std_mean"] = round(sum(r["frac_zero_std"] for r in train) / len(train), 4)
        out["gen_rounds_mean"] = round(sum(r.get("gen_rounds", 1) for r in train) / len(train), 2)
    for tag, r in evals.items():
        out[f"eval_{tag.split('-')[-1] if tag != 'start' else 'start'}"] = {
            k: r[k] for k in ("accuracy", "correct", "n", "parse_rate", "reward", "gen_tokens_per_s", "seconds")}
    return out


def machine() -> dict[str, Any]:
    import torch

    return {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_avg_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None}


def table(result: dict[str, Any]) -> str:
    """The markdown table of one benchmark result."""
    rows = ["| run | steps | train min | eval accuracy (greedy, n) | parse rate | throughput |",
            "|---|---:|---:|---:|---:|---|"]
    sft = result["sft"]
    start = sft.get("eval_start")
    if start:
        rows.append(f"| before training (random init) | 0 | 0 | {start['accuracy']:.3f} ({start['n']}) | "
                    f"{start['parse_rate']:.2f} | eval {start['gen_tokens_per_s']:.0f} tok/s |")
    end = sft.get("eval_end")
    if end:
        rows.append(f"| after SFT | {sft['steps']} | {sft['train_minutes']} | {end['accuracy']:.3f} ({end['n']}) | "
                    f"{end['parse_rate']:.2f} | {sft.get('steps_per_s')} steps/s x {result['sft_batch']} puzzles |")
    for name, r in result["rl"].items():
        e = r.get("eval_end")
        if not e:
            continue
        rows.append(f"| RL {name} | {r['steps']} | {r['train_minutes']} | {e['accuracy']:.3f} ({e['n']}) | "
                    f"{e['parse_rate']:.2f} | {r.get('steps_per_s')} steps/s, rollouts "
                    f"{r.get('rollout_tokens_per_s')} tok/s |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--level", default="maze:8", help="task:level (maze:8, frozenlake:vsp3)")
    ap.add_argument("--name", help="run name: runs/bench_mllm/<name>, benchmarks/results/mllm_<name>.json")
    ap.add_argument("--sft-minutes", type=float, default=10.0)
    ap.add_argument("--rl-steps", type=int, default=60, help="optimizer steps per RL preset")
    ap.add_argument("--rl-minutes", type=float, default=10.0, help="training-time cap per RL preset")
    ap.add_argument("--reuse-sft", action="store_true", help="reuse runs/bench_mllm/<name>/sft if it holds a policy")
    ap.add_argument("--presets", nargs="+", default=["grpo", "dr_grpo", "dapo", "canon", "siren", "vppo", "revisual"])
    ap.add_argument("--eval-n", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs-root", type=Path, default=ROOT / "runs" / "bench_mllm")
    ap.add_argument("--report", type=Path, help="print the markdown table of a results JSON and exit")
    ap.add_argument("overrides", nargs="*", help="key=value overrides for every run (e.g. model.name_or_path=small)")
    args = ap.parse_args(argv)
    if args.report:
        print(table(json.loads(args.report.read_text())))
        return 0
    if not args.name:
        raise SystemExit("--name is required")

    import torch

    from mllm_baselines.config import load_config
    from mllm_baselines.train import train

    torch.set_num_threads(args.threads)
    command = [sys.executable, *sys.argv] if argv is None else ["bench_mllm.py", *argv]
    root = args.runs_root / args.name
    common = [f"data.levels=[{args.level}]", f"eval.n={args.eval_n}", "eval.seed=0", "eval.every=0",
              f"num_threads={args.threads}", "progress=false", "overwrite=true", f"seed={args.seed}",
              "checkpoint.every=0"]
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.time()
    sft_cfg = load_config(CONFIGS / "mllm_sft.yaml", [*common, f"output_dir={root / 'sft'}", "sft.steps=1000000",
                                                      f"sft.max_minutes={args.sft_minutes}", "eval.at_start=true",
                                                      *args.overrides])
    sft_policy = root / "sft" / "policy"
    if not (args.reuse_sft and (sft_policy / "diffthinker_policy.json").is_file()):
        train(sft_cfg, command=command)
    from mllm_baselines.policy import load_policy

    result: dict[str, Any] = {"name": args.name, "level": args.level, "command": shlex.join(command),
                              "date": started.date().isoformat(), "sft_minutes_budget": args.sft_minutes,
                              "rl_steps": args.rl_steps, "rl_minutes_cap": args.rl_minutes, "eval_n": args.eval_n,
                              "seed": args.seed, "threads": args.threads, "sft_batch": sft_cfg.sft.batch_size,
                              "sft_config": sft_cfg.to_dict(),
                              "policy_parameters": load_policy(sft_policy).num_parameters(),
                              "sft": summarize_run(root / "sft", "sft"), "rl": {}, "rl_configs": {}}
    for preset in args.presets:
        cfg = load_config(CONFIGS / f"mllm_{preset}.yaml", [
            *common, f"output_dir={root / preset}", f"model.name_or_path={sft_policy}", "sft.steps=0",
            f"rl.steps={args.rl_steps}", f"rl.max_minutes={args.rl_minutes}", *args.overrides])
        train(cfg, command=command)
        summary = summarize_run(root / preset, "rl")
        result["rl"][preset] = summary
        result["rl_configs"][preset] = cfg.to_dict()["rl"]
        print(f"[bench_mllm] {preset}: {summary.get('eval_end')}", flush=True)
    result["wall_minutes"] = round((time.time() - t0) / 60, 1)
    result["machine"] = machine()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"mllm_{args.name}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)
    print(table(result))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
