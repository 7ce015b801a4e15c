"""Inference benchmark: parallel sampling throughput, and the accuracy gain of verifier selection.

    python benchmarks/bench_inference.py --threads 1 --seconds 60                  # throughput (random tiny-cpu)
    python benchmarks/bench_inference.py --checkpoint runs/bench/maze8/pipeline    # + accuracy on 200 maze-8

**Throughput** (always): puzzles per second of ``diffthinker.inference.solve`` with N=8 samples per puzzle,

- *sequential*: ``batch_size=1``, i.e. 8 single-sample pipeline calls per puzzle (the published code's loop);
- *batched N=8*: ``batch_size=8``, one pipeline call of 8 rows per puzzle;
- *batched 4x8*: ``batch_size=32``, one call for 4 puzzles x 8 samples (fewer with ``--puzzles`` < 4).

The model is a random ``tiny-cpu`` PixelDenoiser (2.5M parameters, 64 px, 8 px patches: the trained model's
architecture and cost; speed does not depend on the weights), on maze level 8 puzzles, 20 Euler steps, parse +
verify + selection included. Each configuration runs for ``--seconds`` of wall time in repeated rounds (whole rounds
only) after one warm-up round; the rounds of the three configurations are interleaved (a change of machine load
hits all alike) and use the same puzzles and seeds, so all configurations do identical work and produce the same
samples (batch-size independence, checked on the warm-up samples).

**Accuracy** (with ``--checkpoint``): the trained pipeline on ``--eval-n`` fresh maze-8 puzzles: the training
validation set (``diffthinker.diffusion.data.validation_set``, seeds from ``--eval-seed`` = 0, the range
``train_diffusion`` excludes from training by content hash), solved with N=1 and N=8 samples; accuracy for the
verifier, vote and first rules, the oracle (some sample correct) and seconds per puzzle. Item ids are the
``diffthinker generate`` ids (``maze-v1_8_000123``), so the run is the same as ``diffthinker eval`` on a dataset
generated with ``--seed 0``. The eval run JSON goes next to the results for ``diffthinker compare``.

Results: ``benchmarks/results/inference.json`` (throughput) and ``benchmarks/results/inference_maze8.json``
(accuracy) with the command, machine, seed and date; docs/BENCHMARKS.md quotes them.
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))


def machine(threads: int) -> dict[str, Any]:
    import diffusers
    import torch

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "diffusers": diffusers.__version__, "torch_threads": threads}


def random_solver(resolution: int = 64) -> Any:
    import torch

    from diffthinker.diffusion.model import build_denoiser
    from diffthinker.diffusion.pipeline import DiffThinkerPipeline
    from diffthinker.inference import DiffusionSolver

    torch.manual_seed(0)
    pipe = DiffThinkerPipeline.from_denoiser(build_denoiser("tiny-cpu", ["maze"], resolution))
    pipe.set_progress_bar_config(disable=True)
    return DiffusionSolver(pipe, name="tiny-cpu (random)")


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from diffthinker.inference import solve
    from diffthinker.tasks import get_task

    task = get_task("maze")
    solver = random_solver()
    insts = [task.generate("8", args.seed + i) for i in range(args.puzzles)]
    images = [task.render(x, size=solver.resolution) for x in insts]
    ids = [f"bench{i}" for i in range(args.puzzles)]
    n = args.samples
    k = min(4, len(insts))  # puzzles per call in the widest configuration
    configs = [("sequential", 1), (f"batched N={n}", n), (f"batched {k}x{n}", k * n)]

    def one_round(batch: int) -> list[Any]:
        return solve(solver, "maze", insts, images, num_samples=n, select="verifier", seed=args.seed,
                     num_inference_steps=args.steps, batch_size=batch, item_ids=ids)

    # warm-up round per configuration; its samples check batch-size independence against the sequential ones
    reference = None
    max_diff: dict[str, int] = {}
    for label, batch in configs:
        pix = [np.asarray(c.raw.image, dtype=np.int16) for r in one_round(batch) for c in r.candidates]
        reference = pix if reference is None else reference
        max_diff[label] = max(int(np.abs(a - b).max()) for a, b in zip(reference, pix))
    # timed rounds, the configurations interleaved so that a change of machine load hits all of them alike
    wall = {label: 0.0 for label, _ in configs}
    calls = {label: 0 for label, _ in configs}
    rounds = 0
    while min(wall.values()) < args.seconds:
        for label, batch in configs:
            c0, t0 = solver.calls, time.perf_counter()
            one_round(batch)
            wall[label] += time.perf_counter() - t0
            calls[label] += solver.calls - c0
        rounds += 1
    out: dict[str, Any] = {}
    for label, batch in configs:
        puzzles = rounds * len(insts)
        out[label] = {"batch_size": batch, "rounds": rounds, "puzzles": puzzles, "wall_s": round(wall[label], 2),
                      "puzzles_per_s": round(puzzles / wall[label], 4),
                      "pipeline_calls_per_puzzle": calls[label] / puzzles,
                      "max_pixel_diff_vs_sequential": max_diff[label]}
        print(f"{label:>16}: {out[label]['puzzles_per_s']:.3f} puzzles/s ({rounds} rounds, {wall[label]:.1f} s, "
              f"{out[label]['pipeline_calls_per_puzzle']:.2f} calls/puzzle, max pixel diff {max_diff[label]})",
              flush=True)
    base = out["sequential"]["puzzles_per_s"]
    for label, _ in configs[1:]:
        out[label]["speedup_vs_sequential"] = round(out[label]["puzzles_per_s"] / base, 2)
    return {"model": "tiny-cpu random, 64 px, 8 px patches", "task": "maze-v1", "level": "8", "samples": n,
            "steps": args.steps, "puzzles_per_round": len(insts), "seconds_per_config": args.seconds,
            "results": out}


def accuracy(args: argparse.Namespace) -> dict[str, Any]:
    from diffthinker.data.schema import generated_id
    from diffthinker.diffusion.data import parse_level_specs, validation_set
    from diffthinker.evaluate import evaluate_solver, make_run, write_run
    from diffthinker.inference import Item, load_solver
    from diffthinker.tasks import get_task

    solver = load_solver(args.checkpoint)
    task = get_task("maze")
    specs = parse_level_specs(["maze:8"])
    val = validation_set(specs, args.eval_n, args.eval_seed)
    items = [Item(generated_id(task.id, "8", v.seed), task.id, "8", v.instance,
                  task.render(v.instance, size=solver.resolution)) for v in val]
    t0 = time.perf_counter()
    records, shots = evaluate_solver(solver, items, samples=[1, args.samples], select=["verifier", "vote", "first"],
                                     seed=args.seed, num_inference_steps=args.steps, batch_size=args.batch_size,
                                     progress=True)
    wall = time.perf_counter() - t0
    config = {"samples": [1, args.samples], "select": ["verifier", "vote", "first"], "seed": args.seed,
              "steps": args.steps, "batch_size": args.batch_size, "eval_seed": args.eval_seed, "eval_n": args.eval_n}
    run = make_run({"name": solver.name, "kind": solver.kind, "checkpoint": str(args.checkpoint)},
                   f"validation_set(maze:8, n={args.eval_n}, seed={args.eval_seed})", config, records,
                   command=["python", *sys.argv])
    run_path = write_run(RESULTS / "inference_maze8_run.json", run, shots)
    rows = {f"N={r['samples']} {r['select']}": {k: r[k] for k in ("n", "correct", "accuracy", "valid_rate",
                                                                   "parse_failure_rate", "oracle_accuracy",
                                                                   "seconds_per_puzzle")}
            for r in run["summary"]}
    for k, v in rows.items():
        print(f"{k:>16}: accuracy {v['accuracy']:.3f} ({v['correct']}/{v['n']}), oracle {v['oracle_accuracy']:.3f}, "
              f"{v['seconds_per_puzzle']:.3f} s/puzzle", flush=True)
    n1 = rows["N=1 verifier"]["accuracy"]
    nv = rows[f"N={args.samples} verifier"]["accuracy"]
    return {"checkpoint": str(args.checkpoint), "eval_set": config, "wall_s": round(wall, 1), "results": rows,
            "gain_verifier_vs_n1": round(nv - n1, 4), "run_json": str(run_path.relative_to(ROOT))}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: per-core numbers)")
    p.add_argument("--seconds", type=float, default=60.0, help="wall time per throughput configuration")
    p.add_argument("--puzzles", type=int, default=8, help="puzzles per throughput round")
    p.add_argument("--samples", type=int, default=8, help="samples per puzzle N")
    p.add_argument("--steps", type=int, default=20, help="Euler steps")
    p.add_argument("--seed", type=int, default=0, help="run seed (puzzles of the throughput part, sample seeds)")
    p.add_argument("--checkpoint", type=Path, help="a trained maze-8 pipeline: also measure the accuracy gain")
    p.add_argument("--eval-n", type=int, default=200, help="accuracy puzzles (default 200)")
    p.add_argument("--eval-seed", type=int, default=0, help="first validation seed (training excludes them)")
    p.add_argument("--batch-size", type=int, default=64, help="rows per call in the accuracy part")
    p.add_argument("--skip-throughput", action="store_true", help="only the accuracy part")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    command = "python " + " ".join(shlex.quote(a) for a in (sys.argv if argv is None else ["bench_inference.py",
                                                                                           *argv]))
    stamp = {"command": command, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
             "machine": machine(args.threads), "seed": args.seed}
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.skip_throughput:
        res = {**stamp, **throughput(args)}
        name = "inference.json" if args.threads == 1 else f"inference_threads{args.threads}.json"
        (RESULTS / name).write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {RESULTS / name}")
    if args.checkpoint is not None:
        res = {**stamp, **accuracy(args)}
        (RESULTS / "inference_maze8.json").write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {RESULTS / 'inference_maze8.json'}: gain of N={args.samples} verifier over N=1: "
              f"{res['gain_verifier_vs_n1']:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
