"""CPU training benchmark of the diffusion reasoner: train a preset for a time budget, record the learning curve.

    python benchmarks/bench_diffusion.py --config training/configs/tiny_cpu_maze8.yaml --name maze8 --minutes 60
    python benchmarks/bench_diffusion.py --config training/configs/tiny_cpu_maze8.yaml --name maze8 --minutes 180 \
        --resume                    # continue the same run (constant LR: identical to one long run)
    python benchmarks/bench_diffusion.py --report runs/bench/maze8 runs/bench/vsp --plot docs/img/curves.png
    python benchmarks/bench_diffusion.py --report runs/bench/jigsaw_d8 --write --note "stopped at step 4075: ..."

A run is ``training/train_diffusion.py`` itself (``diffthinker.diffusion.training.train``) with the benchmark's
overrides: ``output_dir=runs/bench/<name>``, ``max_minutes=<minutes>`` (a constant-lr run also gets
``max_steps=1000000``, so the budget alone ends it; a cosine or linear schedule keeps the config's ``max_steps``, the
step it decays to its end at) and an evaluation set of ``--eval-n`` fresh seeded puzzles (default 200; excluded
from training by content hash) solved with one sample and 20 Euler steps every ``--eval-every`` steps and at the
end, with a checkpoint saved at each evaluation (``checkpoint.every=<eval-every>``, in place of the config's).
Extra ``key=value`` arguments go to the config as on the training command line, after these, so they win.

The report (``benchmarks/results/diffusion_<name>.json`` and a plot) is built from the run's ``metrics.jsonl``:
steps/s (steps over training seconds), peak resident memory, and the solve-rate curve against training minutes
(evaluation time excluded). ``--report`` rebuilds reports from finished (or interrupted) runs without training;
with ``--write`` it also writes each run's record (``diffusion_<label>.json``: the commands come from the run's
newest checkpoint, ``machine`` is the machine the report is written on), e.g. for a run stopped by hand, whose
training never reached the end that writes it (``--note`` says why it stopped; ``--force`` replaces a record).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise SystemExit(f"no metrics.jsonl in {run_dir}: not a training run directory")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarize(run_dir: Path) -> dict[str, Any]:
    """The numbers a benchmark reports, from a run directory's metrics.jsonl and resolved config."""
    records = read_metrics(run_dir)
    train = [r for r in records if r.get("event") == "train"]
    evals = [r for r in records if r.get("event") == "eval"]
    # A resumed run appends to metrics.jsonl; the last record of each step wins.
    evals = list({r["step"]: r for r in evals}.values())
    evals.sort(key=lambda r: r["step"])
    sps = [r["steps_per_s"] for r in train if r.get("steps_per_s")]
    # the resolved config: the exported pipeline's copy, else the newest checkpoint's
    cfgs = sorted(run_dir.glob("checkpoints/*/config.yaml")) + sorted(run_dir.glob("*/config.yaml"))
    cfg_path = run_dir / "pipeline" / "training_config.yaml"
    if not cfg_path.is_file() and cfgs:
        cfg_path = cfgs[-1]
    summary: dict[str, Any] = {
        "run_dir": str(run_dir),
        "config": cfg_path.read_text() if cfg_path.is_file() else None,
        "steps": train[-1]["step"] if train else 0,
        "train_minutes": round(train[-1]["train_seconds"] / 60, 2) if train else 0.0,
        # steps / training seconds: the honest overall rate (the mean of the logged windows over-weights fast ones)
        "steps_per_s": round(train[-1]["step"] / train[-1]["train_seconds"], 3) if train else None,
        "steps_per_s_mean": round(sum(sps) / len(sps), 3) if sps else None,
        "peak_rss_mb": max((r.get("peak_rss_mb", 0.0) for r in train), default=None),
        "curve": [{"step": r["step"], "train_minutes": round(r["train_seconds"] / 60, 2),
                   "solve_rate": r["solve_rate"], "correct": r["correct"], "n": r["n"],
                   "parse_failures": r["parse_failures"], "per_level": r.get("per_level", {})} for r in evals],
    }
    summary["final"] = summary["curve"][-1] if summary["curve"] else None
    summary["best"] = max(summary["curve"], key=lambda c: c["solve_rate"]) if summary["curve"] else None
    return summary


def recorded_starts(run_dir: Path) -> list[dict[str, Any]]:
    """Every start of a run (command, from_step, started), from its newest checkpoint's trainer_state.json."""
    from diffthinker.diffusion.training import TRAINER_STATE, latest_checkpoint

    newest = latest_checkpoint(run_dir)
    return list(json.loads((newest / TRAINER_STATE).read_text()).get("runs") or []) if newest else []


def report_record(run_dir: Path, name: str, note: str | None = None) -> dict[str, Any]:
    """The record a finished benchmark run writes, rebuilt from ``run_dir`` alone (``--report --write``)."""
    import yaml

    summary = summarize(run_dir)
    starts = recorded_starts(run_dir)
    cfg = yaml.safe_load(summary["config"]) if summary["config"] else {}
    pipeline = run_dir / "pipeline"
    first_start = str(starts[0].get("started") or "") if starts else ""
    summary.update({
        "name": name, "command": shlex.join(starts[-1]["command"]) if starts else None,
        "commands": [{"from_step": s.get("from_step"), "started": s.get("started"), "command": shlex.join(s["command"])}
                     for s in starts],
        "seed": cfg.get("seed"), "minutes_budget": cfg.get("max_minutes"),
        "date": first_start[:10] or None, "machine": machine(),
        "pipeline_dir": str(pipeline) if (pipeline / "model_index.json").is_file() else None,
    })
    if note:
        summary["stopped"] = note
    return summary


def write_record(record: dict[str, Any], force: bool = False) -> Path:
    """``benchmarks/results/diffusion_<name>.json``, written atomically; an existing record is kept unless ``force``."""
    out = RESULTS / f"diffusion_{record['name']}.json"
    if out.exists() and not force:
        raise SystemExit(f"{out} exists; pass --force to replace it (or --labels to name the record otherwise)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, out)
    return out


def plot_curves(summaries: Sequence[dict[str, Any]], labels: Sequence[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Two x axes: minutes are what the budget counts, steps are what the model saw (a loaded machine gives fewer
    # steps per minute, so the step axis is the one to compare runs on).
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.8), dpi=110, sharey=True)
    for ax, key, xlabel in ((axes[0], "train_minutes", "training minutes (evaluation excluded)"),
                            (axes[1], "step", "optimizer steps (batch 32)")):
        for s, label in zip(summaries, labels):
            xs = [c[key] for c in s["curve"]]
            ys = [100 * c["solve_rate"] for c in s["curve"]]
            ax.plot(xs, ys, marker="o", markersize=3, label=label)
        ax.axhline(90, color="grey", linestyle="--", linewidth=0.8, label="target 90%")
        ax.set_xlabel(xlabel)
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("solve rate, % (1 sample, 20 Euler steps)")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def machine() -> dict[str, Any]:
    import torch

    return {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_avg_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None}


def run_overrides(config: Path, run_dir: Path, minutes: float, eval_n: int, eval_every: int,
                  extra: Sequence[str], resume: bool) -> list[str]:
    """The config overrides of a benchmark run, ``extra`` (the command line's key=value) last so they win.

    A constant-lr run gets ``max_steps=1000000``: the --minutes budget alone ends it. A decaying schedule reaches
    its end at max_steps, so the config's (or the command line's) max_steps is the run's horizon and stays:
    overriding it would stretch a cosine over a million steps, i.e. train at the peak lr throughout."""
    from diffthinker.diffusion.training import DECAYING_LR_SCHEDULES, load_config

    head = [f"output_dir={run_dir}", f"max_minutes={minutes}"]
    tail = [f"eval.n={eval_n}", f"eval.every={eval_every}", "eval.num_inference_steps=20",
            f"checkpoint.every={eval_every}", *extra, *(["checkpoint.resume=latest"] if resume else [])]
    if load_config(config, head + tail).optim.lr_scheduler not in DECAYING_LR_SCHEDULES:
        head.append("max_steps=1000000")
    return head + tail


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, help="training YAML (training/configs/...)")
    ap.add_argument("--name", help="run name: runs/bench/<name>, benchmarks/results/diffusion_<name>.json")
    ap.add_argument("--minutes", type=float, default=60.0, help="training-time budget (evaluation excluded)")
    ap.add_argument("--eval-n", type=int, default=200, help="fresh seeded validation puzzles")
    ap.add_argument("--eval-every", type=int, default=500, help="evaluate every this many optimizer steps")
    ap.add_argument("--resume", action="store_true", help="continue runs/bench/<name> from its last checkpoint")
    ap.add_argument("--runs-root", type=Path, default=ROOT / "runs" / "bench")
    ap.add_argument("--report", type=Path, nargs="+", help="only report these run directories (no training)")
    ap.add_argument("--plot", type=Path, help="learning-curve PNG (default docs/img/diffusion_<name>.png)")
    ap.add_argument("--labels", nargs="+", help="legend labels for --report runs (and their record names)")
    ap.add_argument("--write", action="store_true",
                    help="with --report: also write benchmarks/results/diffusion_<label>.json for each run")
    ap.add_argument("--note", help="with --write: why the run ended where it did (the record's 'stopped' field)")
    ap.add_argument("--force", action="store_true", help="with --write: replace an existing record")
    ap.add_argument("overrides", nargs="*", help="key=value config overrides, as for train_diffusion.py")
    args = ap.parse_args(argv)

    if args.report:
        summaries = [summarize(p) for p in args.report]
        labels = args.labels or [p.name for p in args.report]
        if len(labels) != len(summaries):
            raise SystemExit(f"--labels has {len(labels)} names for {len(summaries)} runs")
        plot = args.plot or ROOT / "docs" / "img" / "diffusion_curves.png"
        plot_curves(summaries, labels, plot, "tiny-cpu on 2 CPU cores")
        for s, label in zip(summaries, labels):
            print(json.dumps({"run": label, "steps": s["steps"], "train_minutes": s["train_minutes"],
                              "steps_per_s": s["steps_per_s"], "peak_rss_mb": s["peak_rss_mb"],
                              "final": s["final"] and s["final"]["solve_rate"],
                              "best": s["best"] and s["best"]["solve_rate"]}))
        print(f"plot: {plot}")
        if args.write:
            for run_dir, label in zip(args.report, labels):
                print(f"results: {write_record(report_record(run_dir, label, args.note), force=args.force)}")
        return 0
    if args.write or args.note or args.force:
        raise SystemExit("--write, --note and --force go with --report RUN_DIR...")

    if args.config is None or args.name is None:
        raise SystemExit("--config and --name are required (or --report RUN_DIR...)")
    from diffthinker.diffusion.training import load_config, setup_logging, train

    run_dir = args.runs_root / args.name
    cfg = load_config(args.config, run_overrides(args.config, run_dir, args.minutes, args.eval_n, args.eval_every,
                                                 args.overrides, args.resume))
    setup_logging()
    command = [sys.executable, *sys.argv] if argv is None else ["bench_diffusion.py", *argv]
    started = dt.datetime.now(dt.timezone.utc)
    result = train(cfg, command=command)
    summary = summarize(run_dir)
    summary.update({
        "name": args.name, "command": shlex.join(command), "seed": cfg.seed, "minutes_budget": args.minutes,
        "date": started.date().isoformat(), "machine": machine(),
        "pipeline_dir": str(result.pipeline_dir) if result.pipeline_dir else None,
    })
    out_json = write_record(summary, force=True)  # this run's own record: a rerun replaces it
    plot = args.plot or ROOT / "docs" / "img" / f"diffusion_{args.name}.png"
    plot_curves([summary], [args.name], plot, f"{args.name}: {cfg.model.preset}, seed {cfg.seed}")
    print(json.dumps({k: summary[k] for k in ("steps", "train_minutes", "steps_per_s", "peak_rss_mb")}))
    print(f"final: {summary['final']}\nresults: {out_json}\nplot: {plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
