"""Throughput of the puzzle layer on one core: generate+render, parse+verify, TSP-18 solve, sudoku-35 generation.

    python benchmarks/bench_tasks.py --seed 0 --json benchmarks/results/tasks.json

Prints a markdown table (paste it into docs/BENCHMARKS.md with the command, machine, seed and date).
Targets (issue 2): parse+verify >= 200 images/s for maze/tsp/frozenlake, >= 50/s for sudoku/jigsaw at 512 px;
TSP-18 solved exactly in <= 0.5 s; >= 20 unique sudoku-35 puzzles/s.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import platform
import time
from datetime import datetime, timezone

# One core: the targets are per core, and BLAS threads would blur the numbers.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

from diffthinker.tasks import get_task, list_tasks  # noqa: E402
from diffthinker.tasks.perturb import model_like  # noqa: E402

PARSE_TARGETS = {"maze": 200, "tsp": 200, "frozenlake": 200, "sudoku": 50, "jigsaw": 50}


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def bench_generate_render(task, level: str, seed: int, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        inst = task.generate(level, seed + i)
        task.render(inst, size=512)
        task.render(inst, task.solve(inst), size=512)
    return _rate(n, time.perf_counter() - start)


def bench_parse_verify(task, level: str, seed: int, n: int, perturbed: bool) -> tuple[float, float]:
    items = []
    for i in range(n):
        inst = task.generate(level, seed + i)
        img = task.render(inst, task.solve(inst), size=512)
        if perturbed:
            img = model_like(img, seed=seed + i)
        items.append((inst, img))
    correct = 0
    start = time.perf_counter()
    for inst, img in items:
        correct += task.verify(inst, task.parse(img, inst)).correct
    return _rate(n, time.perf_counter() - start), correct / n


def _cold_worker(task_id: str, payload: list[tuple[str, bytes]]) -> float:
    """In a fresh process: decode the images (untimed), then time parse+verify with every cache empty."""
    from PIL import Image

    task = get_task(task_id)
    items = [(task.instance_from_json(text), Image.open(io.BytesIO(png)).convert("RGB")) for text, png in payload]
    start = time.perf_counter()
    for inst, img in items:
        task.verify(inst, task.parse(img, inst))
    return _rate(len(items), time.perf_counter() - start)


def bench_parse_verify_cold(task, level: str, seed: int, n: int) -> float:
    """parse+verify as `diffthinker verify` meets it: a new process that has never seen these instances, so
    per-instance work (jigsaw's problem render, TSP's Held-Karp optimum, probe geometry) is included."""
    payload = []
    for i in range(n):
        inst = task.generate(level, seed + i)
        buf = io.BytesIO()
        task.render(inst, task.solve(inst), size=512).save(buf, format="PNG")
        payload.append((inst.to_json(), buf.getvalue()))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_cold_worker, (task.id, payload))


def bench_tsp18(seed: int, n: int) -> float:
    task = get_task("tsp")
    insts = [task.generate("18", seed + i) for i in range(n)]
    times = []
    for inst in insts:
        start = time.perf_counter()
        task.solve(inst)
        times.append(time.perf_counter() - start)
    return max(times), sum(times) / len(times)


def bench_sudoku35(seed: int, n: int) -> float:
    task = get_task("sudoku")
    start = time.perf_counter()
    hashes = {task.content_hash(task.generate("35", seed + i)) for i in range(n)}
    return _rate(len(hashes), time.perf_counter() - start)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=40, help="items per measurement")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--tasks", nargs="*", default=None, help="task ids to run (default: all registered)")
    args = ap.parse_args(argv)

    rows = []
    for task_id in args.tasks or list_tasks():
        task = get_task(task_id)
        for level in task.levels:
            n = max(4, args.n // 4) if level in ("32",) else args.n
            gen = bench_generate_render(task, level, args.seed, n)
            clean, acc_clean = bench_parse_verify(task, level, args.seed, n, perturbed=False)
            noisy, acc_noisy = bench_parse_verify(task, level, args.seed, n, perturbed=True)
            cold = bench_parse_verify_cold(task, level, args.seed + 10_000, n)
            rows.append(dict(task=task_id, level=level, n=n, generate_render_per_s=gen, parse_verify_per_s=clean,
                             parse_verify_noisy_per_s=noisy, parse_verify_cold_per_s=cold, oracle_parse_acc=acc_clean,
                             oracle_parse_acc_noisy=acc_noisy, target_per_s=PARSE_TARGETS[task.name]))
            print(f"{task_id:14s} {level:8s} gen+render {gen:7.1f}/s  parse+verify {clean:7.1f}/s "
                  f"(noisy {noisy:7.1f}/s, cold {cold:7.1f}/s)  acc {acc_clean:.2f}/{acc_noisy:.2f}", flush=True)
    tsp_max, tsp_mean = bench_tsp18(args.seed, 10)
    sudoku_rate = bench_sudoku35(args.seed, 40)
    result = dict(
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"), seed=args.seed, machine=platform.platform(),
        processor=platform.processor() or platform.machine(), cpu_count=os.cpu_count(), threads=1,
        rows=rows, tsp18_solve_max_s=tsp_max, tsp18_solve_mean_s=tsp_mean, sudoku35_unique_per_s=sudoku_rate,
    )
    print()
    print("| task | level | generate+render /s | parse+verify /s (clean) | parse+verify /s (model-like noise) "
          "| parse+verify /s (cold process) | oracle parse acc clean / noisy | target /s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['task']} | {r['level']} | {r['generate_render_per_s']:.1f} | {r['parse_verify_per_s']:.1f} | "
              f"{r['parse_verify_noisy_per_s']:.1f} | {r['parse_verify_cold_per_s']:.1f} | "
              f"{r['oracle_parse_acc']:.2f} / {r['oracle_parse_acc_noisy']:.2f} | {r['target_per_s']} |")
    print(f"\nTSP-18 exact solve: max {tsp_max:.3f} s, mean {tsp_mean:.3f} s over 10 instances (target <= 0.5 s)")
    print(f"Sudoku-35 generation: {sudoku_rate:.1f} unique puzzles/s over 40 (target >= 20/s)")
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
