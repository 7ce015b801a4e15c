"""Accuracy of a diffusion checkpoint under other sampler settings: the inference time shift and the Euler steps.

    python benchmarks/sweep_sampler.py --checkpoint checkpoints/diffthinker-small-jigsaw \
        --data runs/dev/jigsaw_2x2_dev --setting 3:20 --setting 2:20 --setting 5:20 --setting 8:20

Each ``--setting SHIFT:STEPS`` solves every puzzle of ``--data`` (a ``diffthinker generate`` folder; use a dev set,
never the test set you report on) with one sample through ``diffthinker.inference.solve``, the code path of
``diffthinker eval``: the same sample seeds (``--seed``), the same parser and verifier. Only the scheduler's time
shift (``FlowMatchEulerDiscreteScheduler.set_shift``; the checkpoint's own is in its scheduler config) and the
number of steps change, so the settings are compared on identical puzzles and identical starting noise. With the
checkpoint's own shift and 20 steps the count equals ``diffthinker eval --samples 1``'s. One JSON line per setting
(correct, parse failures, seconds, the sigmas the steps visited, and the per-puzzle outcomes as a 0/1 string for
paired comparisons) goes to stdout and, with ``--json``, to a file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_setting(text: str) -> tuple[float, int]:
    """``"3:20"`` -> (3.0, 20); argparse error naming the value otherwise."""
    try:
        shift, steps = text.split(":")
        value = (float(shift), int(steps))
    except ValueError:
        raise argparse.ArgumentTypeError(f"setting {text!r} is not SHIFT:STEPS (e.g. 3:20)") from None
    if not value[0] > 0 or value[1] < 1:
        raise argparse.ArgumentTypeError(f"setting {text!r}: expected a shift > 0 and steps >= 1")
    return value


def sweep(checkpoint: str | Path, data: str | Path, settings: Sequence[tuple[float, int]], *, seed: int = 0,
          batch_size: int = 100) -> list[dict[str, Any]]:
    from diffthinker.inference import group_by_task, load_items, load_solver, solve
    from diffthinker.tasks import TaskError

    solver = load_solver(checkpoint)
    if getattr(solver, "kind", None) != "diffusion":
        raise TaskError(f"{checkpoint} is not a diffusion checkpoint: only those have a sampler to sweep")
    items = load_items(data, size=solver.resolution)
    # decoded (or re-drawn at the model's resolution) once, not once per setting
    groups = {task_id: ([it.instance for it in group], [it.image for it in group], [it.id for it in group])
              for task_id, group in group_by_task(items).items()}
    scheduler = solver.pipeline.scheduler
    own_shift = scheduler.shift
    records = []
    try:
        for shift, steps in settings:
            scheduler.set_shift(shift)
            correct = parse_failures = 0
            outcomes = []
            t0 = time.perf_counter()
            for task_id, (instances, images, ids) in groups.items():
                results = solve(solver, task_id, instances, images, num_samples=1, seed=seed,
                                num_inference_steps=steps, batch_size=batch_size, item_ids=ids)
                correct += sum(r.correct for r in results)
                parse_failures += sum(not r.candidates[0].parsed for r in results)
                outcomes += ["1" if r.correct else "0" for r in results]
            records.append({"checkpoint": str(checkpoint), "data": str(data), "shift": shift, "steps": steps,
                            "seed": seed, "n": len(items), "correct": correct, "parse_failures": parse_failures,
                            "seconds": round(time.perf_counter() - t0, 1), "outcomes": "".join(outcomes),
                            # the noise levels the Euler steps visited (the last solve's schedule)
                            "sigmas": [round(float(x), 4) for x in scheduler.sigmas]})
    finally:
        scheduler.set_shift(own_shift)
    return records


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="a saved diffusion pipeline folder")
    p.add_argument("--data", required=True, help="a dataset folder (diffthinker generate); a dev set")
    p.add_argument("--setting", type=parse_setting, action="append", required=True,
                   help="SHIFT:STEPS, repeatable (e.g. 3:20)")
    p.add_argument("--seed", type=int, default=0, help="run seed of the sample seeds, as diffthinker eval --seed")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--json", type=Path, default=None, help="also write the records here (a JSON list)")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    records = sweep(args.checkpoint, args.data, args.setting, seed=args.seed)
    for r in records:
        print(json.dumps(r))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(records, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
