"""The ``diffthinker`` command line (console script ``diffthinker = diffthinker.cli:main``).

Subcommands live in the ``COMMANDS`` table (name -> help, argument setup, handler), so later ones (train, solve,
eval, compare, demo) are one entry each:

- ``generate --task T --level L --n N --seed S --out DIR [--format hf|diffthinker] [--size PX] [--exclude DIR ...]
  [--num-proc K] [--overwrite]``: a dataset of generated puzzles (see ``diffthinker.data.build``);
- ``import SRC --out DIR [--task T] [--overwrite]``: the official DiffThinker test folders under SRC as a dataset;
- ``render --data DIR --out OUTDIR [--size PX]``: ``<id>.png`` and ``<id>_solution.png`` per item;
- ``verify --data DIR [--images DIR] [--details OUT.jsonl]``: parse + verify solution images, one JSON object
  on stdout;
- ``gallery --out DIR [--size PX] [--task T ...]``: a problem/solution pair per task and level, parsed back and
  verified, with a README.md page.
- ``solve --checkpoint CKPT --data DIR|--images DIR --samples N --select verifier|vote|first --out OUTDIR``:
  N parallel samples per puzzle, one selected; ``<id>.png`` per item (``verify --images`` scores it) and
  ``answers.json`` (see ``diffthinker.inference.solve_to_folder``);
- ``eval --checkpoint CKPT|--images DIR --data DIR [--samples 1,4,8] [--select verifier,vote] --json OUT.json
  [--report OUT.md]``: accuracy per task, level, N and rule (see ``diffthinker.evaluate``);
- ``compare RUN.json... --out DIR``: a head-to-head markdown table and plots (see ``diffthinker.compare``).

``--data`` accepts a dataset folder or an official test folder (imported on the fly). Bad input (unknown task
or level, missing or non-dataset folder, existing output without --overwrite, ...) prints one line on stderr
naming the value and what was expected, and exits with code 2; genuine bugs surface as tracebacks.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from . import __version__
from .config_io import DIFFUSION_EXAMPLE_OVERRIDES, add_train_arguments
from .tasks.base import ParseFailure, Task, TaskError, get_task, list_tasks

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


@contextmanager
def _build_dir(out: Path) -> Iterator[Path]:
    """A scratch folder beside ``out`` (same file system, so big Arrow data is never copied across disks)."""
    if not out.parent.is_dir():
        raise TaskError(f"parent folder of output {out} does not exist: {out.parent}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-", dir=out.parent))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _int_at_least(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse type: an int >= minimum, with an error naming the value and what was expected."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text!r}")
        return value

    return parse


_positive = _int_at_least(1, "positive")
_non_negative = _int_at_least(0, "non-negative")


def _non_negative_float(text: str) -> float:
    """An argparse type: a finite float >= 0, with an error naming the value."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


# ============================================================================================== generate
def _add_generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True, help="task name or versioned id (maze, maze-v1, ...)")
    p.add_argument("--level", help="level name (default: the task's default level)")
    p.add_argument("--n", type=_positive, required=True, help="number of items")
    p.add_argument("--seed", type=_non_negative, default=0, help="first seed; item i uses the i-th usable seed")
    p.add_argument("--out", type=Path, required=True, help="output folder (must not exist unless --overwrite)")
    p.add_argument("--format", choices=("hf", "diffthinker"), default="hf",
                   help="hf: a datasets folder (default); diffthinker: the published folder layout")
    p.add_argument("--size", type=_positive, default=512, help="render size in px (default 512)")
    p.add_argument("--exclude", type=Path, nargs="+", action="extend", default=[], metavar="DIR",
                   help="datasets or official folders whose puzzles must not be generated")
    p.add_argument("--num-proc", type=_positive, default=1, help="worker processes (output does not depend on it)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output atomically")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_generate(args: argparse.Namespace) -> int:
    from .data import build, dedup, official, store

    task = get_task(args.task)
    level = args.level if args.level is not None else task.default_level
    cfg = build.BuildConfig(task=task.id, level=level, n=args.n, seed=args.seed, size=args.size)
    build.check_config(task, cfg)
    store.check_output(args.out, args.overwrite)  # fail before the work, not after
    exclude = dedup.collect_hashes(args.exclude)
    cfg = build.BuildConfig(task=task.id, level=level, n=args.n, seed=args.seed, size=args.size,
                            exclude=frozenset(exclude))
    stats = build.BuildStats()
    with _build_dir(args.out) as work:
        ds = build.dataset_from_rows(
            build.iter_rows(task, cfg, num_proc=min(args.num_proc, args.n), progress=not args.quiet, stats=stats),
            work)
        summary = store.dataset_summary(ds)
        config = {**cfg.to_dict(), "exclude_folders": [str(p) for p in args.exclude],
                  "exclude_hashes": len(exclude), "num_proc": args.num_proc, "format": args.format}
        counts = {**summary["counts"], "excluded_seeds": stats.excluded, "duplicate_seeds": stats.duplicates,
                  "last_seed": stats.last_seed}
        kind = "dataset" if args.format == "hf" else "official-layout"
        manifest = store.make_manifest(kind, config=config, counts=counts, tasks=summary["tasks"],
                                       command=args._argv, seeds={"first": cfg.seed, "last": stats.last_seed})
        if args.format == "hf":
            store.save_dataset(ds, args.out, manifest, overwrite=args.overwrite)
        else:
            official.export_official(ds, args.out, size=args.size, overwrite=args.overwrite, manifest=manifest)
        del ds  # release the memory map before the scratch folder goes
    _say(f"wrote {args.n} {task.id} items (level {level}, seeds {cfg.seed}..{stats.last_seed}) to {args.out}")
    return 0


# ============================================================================================== import
def _add_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", type=Path, help="an official test folder (Maze/8_test) or a parent of several")
    p.add_argument("--out", type=Path, required=True, help="output dataset folder")
    p.add_argument("--task", help="expect only this task's folders (others are an error)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output atomically")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_import(args: argparse.Namespace) -> int:
    from .data import official, store

    if args.task is not None:
        get_task(args.task)
    store.check_output(args.out, args.overwrite)
    tree = official.read_official_tree(args.src, args.task)
    with _build_dir(args.out) as work:
        ds = official.import_official(args.src, tree=tree, workdir=work, progress=not args.quiet)
        summary = store.dataset_summary(ds)
        layouts = {f"{t.id}:{official.layout_name(t, folder)}": len(items) for t, folder, items in tree}
        manifest = store.make_manifest("dataset", config={"src": str(args.src), "task": args.task},
                                       counts={**summary["counts"], "per_layout": layouts}, tasks=summary["tasks"],
                                       command=args._argv)
        store.save_dataset(ds, args.out, manifest, overwrite=args.overwrite,
                           fill=lambda folder: official.copy_task_sources(tree, folder))
        del ds
    _say(f"imported {summary['counts']['total']} official items from {len(tree)} folders to {args.out}: "
         + ", ".join(f"{k} ({v})" for k, v in layouts.items()))
    return 0


# ============================================================================================== render
def _add_render(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="dataset folder (or an official test folder)")
    p.add_argument("--out", type=Path, required=True, help="output folder for <id>.png and <id>_solution.png")
    p.add_argument("--size", type=_positive, default=512, help="render size in px (default 512)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output atomically")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_render(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from .data import build, official, schema, store

    store.check_output(args.out, args.overwrite)
    ds = official.load_data(args.data)
    rows = ds.remove_columns(["image", "solution_image"])
    for task_id, level in sorted(set(zip(rows["task"], rows["level"]))):
        build.check_size(get_task(task_id), level, args.size)
    count = 0
    with store.atomic_folder(args.out, args.overwrite) as tmp:
        for row in tqdm(rows, desc="render", unit="item", disable=args.quiet or None):
            task = get_task(row["task"])
            schema.check_safe_name(row["id"], "item id")
            inst = task.instance_from_json(row["instance"])
            task.render(inst, size=args.size).save(tmp / f"{row['id']}.png")
            answer = official.row_answer(task, inst, row)
            task.render(inst, answer, size=args.size).save(tmp / f"{row['id']}_solution.png")
            count += 1
        store.write_manifest(tmp, store.make_manifest("render", config={"data": str(args.data), "size": args.size},
                                                      counts={"total": count}, command=args._argv))
    _say(f"rendered {count} items ({2 * count} images) at {args.size}px to {args.out}")
    return 0


# ============================================================================================== verify
def _add_verify(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="dataset folder (or an official test folder)")
    p.add_argument("--images", type=Path,
                   help="folder of images named <id> or <official_id> (.png/.jpg/.jpeg/.webp); default: the "
                        "dataset's own solution images")
    p.add_argument("--details", type=Path, help="write one JSON line per item (parsed answer, verdict) here")


def _list_images(folder: Path) -> dict[str, Path]:
    """File name (with its extension lower-cased, so ``X.PNG`` counts) -> path, for the files in ``folder``."""
    if not folder.is_dir():
        raise TaskError(f"--images folder not found: {folder}")
    return {p.stem + p.suffix.lower(): p for p in sorted(folder.iterdir()) if p.is_file()}


def _find_image(row: dict[str, Any], listing: dict[str, Path]) -> Path | None:
    """The image named by the row's id, else by its official id (model outputs in the official naming)."""
    stems = [row["id"]] + ([row["official_id"]] if row.get("official_id") else [])
    for stem in stems:
        for ext in IMAGE_EXTS:
            hit = listing.get(stem + ext)
            if hit is not None:
                return hit
    return None


def _empty_counts() -> dict[str, Any]:
    return {"n": 0, "correct": 0, "valid": 0, "parse_failures": 0, "unreadable": 0, "missing": 0}


def _finish(counts: dict[str, Any]) -> dict[str, Any]:
    # Missing and unreadable images count as wrong: the denominator is every item (unlike the published Maze /
    # FrozenLake evaluators, which drop missing images from it; reference §10.2).
    counts["accuracy"] = counts["correct"] / counts["n"] if counts["n"] else 0.0
    return counts


def verify_rows(ds, images: Path | None = None) -> Iterator[dict[str, Any]]:
    """Parse and verify each row's solution image (or the image in ``images`` named by the row's id); yields
    one record per item: id, task, level, status (correct / incorrect / parse_failure / unreadable / missing),
    image, answer, answer_json, verdict, reason."""
    import datasets

    from .data import schema

    if images is not None:
        listing = _list_images(images)
        ds = ds.remove_columns(["image", "solution_image"])
    else:
        listing = {}
        ds = ds.remove_columns(["image"]).cast_column("solution_image", datasets.Image(decode=False))
    for row in ds:
        task = get_task(row["task"])
        inst = task.instance_from_json(row["instance"])
        rec: dict[str, Any] = {"id": row["id"], "task": task.id, "level": row["level"], "image": None,
                               "answer": None, "answer_json": None, "verdict": None, "reason": ""}
        try:
            if images is not None:
                path = _find_image(row, listing)
                if path is None:
                    rec.update(status="missing", reason=f"no image named {row['id']}{{{','.join(IMAGE_EXTS)}}} "
                                                        f"in {images}")
                    yield rec
                    continue
                rec["image"] = str(path)
                img = schema.open_image_file(path)
            else:
                data = schema.image_bytes(row["solution_image"])
                if data is None:
                    rec.update(status="missing", reason="the dataset has no solution image for this item")
                    yield rec
                    continue
                rec["image"] = "dataset"
                img = schema.open_image_bytes(data, f"solution image of {row['id']}")
        except TaskError as exc:
            rec.update(status="unreadable", reason=str(exc))
            yield rec
            continue
        answer = task.parse(img, inst)
        if isinstance(answer, ParseFailure):
            rec.update(status="parse_failure", reason=answer.reason,
                       verdict=task.verify(inst, answer).to_dict())
            yield rec
            continue
        verdict = task.verify(inst, answer)
        rec.update(status="correct" if verdict.correct else "incorrect", answer=task.answer_to_text(answer),
                   answer_json=answer.to_json(), verdict=verdict.to_dict(), reason=verdict.reason)
        yield rec


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The verify report: totals, per_level and (for datasets of several tasks) per_task."""
    def add(counts: dict[str, Any], rec: dict[str, Any]) -> None:
        counts["n"] += 1
        status = rec["status"]
        counts["correct"] += status == "correct"
        counts["valid"] += bool(rec["verdict"] and rec["verdict"]["valid"])
        counts["parse_failures"] += status == "parse_failure"
        counts["unreadable"] += status == "unreadable"
        counts["missing"] += status == "missing"

    tasks = sorted({r["task"] for r in records})
    mixed = len(tasks) > 1
    total = _empty_counts()
    per_level: dict[str, dict[str, Any]] = {}
    per_task: dict[str, dict[str, Any]] = {}
    for rec in records:
        add(total, rec)
        # Levels of different tasks share names ("16" is a maze and a frozenlake level): key them by task too.
        key = f"{rec['task']}/{rec['level']}" if mixed else rec["level"]
        add(per_level.setdefault(key, _empty_counts()), rec)
        if mixed:
            entry = per_task.setdefault(rec["task"], {**_empty_counts(), "per_level": {}})
            add(entry, rec)
            add(entry["per_level"].setdefault(rec["level"], _empty_counts()), rec)
    out = _finish(total)
    out["tasks"] = tasks
    out["per_level"] = {k: _finish(v) for k, v in sorted(per_level.items())}
    if mixed:
        for entry in per_task.values():
            _finish(entry)
            entry["per_level"] = {k: _finish(v) for k, v in sorted(entry["per_level"].items())}
        out["per_task"] = per_task
    return out


def _run_verify(args: argparse.Namespace) -> int:
    from .data import official

    if args.details is not None and not args.details.parent.is_dir():
        raise TaskError(f"--details: parent folder {args.details.parent} does not exist")
    ds = official.load_data(args.data)
    records = list(verify_rows(ds, args.images))
    if args.details is not None:
        with open(args.details, "w") as fh:
            for rec in records:
                fh.write(json.dumps(rec, sort_keys=True, default=str) + "\n")
    print(json.dumps(summarize(records), sort_keys=True))
    return 0


# ============================================================================================== gallery
def _add_gallery(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="output folder (PNGs and README.md)")
    p.add_argument("--size", type=_positive, default=512,
                   help="render size in px (default 512; raised to a level's smallest supported size)")
    p.add_argument("--task", action="append", default=None, help="only this task (repeatable); default: all")
    p.add_argument("--seed", type=_non_negative, default=0, help="seed of each level's puzzle (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output atomically")


def _short(text: str, limit: int = 48) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _run_gallery(args: argparse.Namespace) -> int:
    from .data import build, store

    tasks: list[Task] = [get_task(t) for t in (args.task or list_tasks())]
    store.check_output(args.out, args.overwrite)
    lines = ["# DiffThinker puzzle gallery", "",
             "One puzzle per task and level (seed {seed}): the problem image, the solution image drawn from the "
             "exact solver's answer, and that solution image **parsed back from its pixels and verified** (no "
             "model involved; this shows the parser and verifier at work).".format(seed=args.seed), "",
             "| task | level | size | problem | solution | parsed from the solution image | verdict |",
             "|---|---|---|---|---|---|---|"]
    results: Counter[str] = Counter()
    with store.atomic_folder(args.out, args.overwrite) as tmp:
        for task in tasks:
            for level in task.levels:
                sizes = build.level_sizes(task, level)
                size = min(max(args.size, min(sizes)), max(sizes))
                inst = task.generate(level, args.seed)
                answer = task.solve(inst)
                stem = f"{task.id}_{level}"
                task.render(inst, size=size).save(tmp / f"{stem}.png")
                solution = task.render(inst, answer, size=size)
                solution.save(tmp / f"{stem}_solution.png")
                parsed = task.parse(solution, inst)
                verdict = task.verify(inst, parsed)
                shown = parsed.reason if isinstance(parsed, ParseFailure) else task.answer_to_text(parsed)
                mark = "correct" if verdict.correct else f"NOT correct: {verdict.reason}"
                results["correct" if verdict.correct else "wrong"] += 1
                lines.append(f"| {task.id} | {level} | {size} | <img src=\"{stem}.png\" width=\"160\"> | "
                             f"<img src=\"{stem}_solution.png\" width=\"160\"> | `{_short(shown)}` | {mark} |")
        lines += ["", f"{results['correct']} of {sum(results.values())} solution images parse back to a correct "
                      f"answer.", ""]
        (tmp / "README.md").write_text("\n".join(lines))
        store.write_manifest(tmp, store.make_manifest(
            "gallery", config={"size": args.size, "seed": args.seed, "tasks": [t.id for t in tasks]},
            counts=dict(results), tasks={t.id: t.version for t in tasks}, command=args._argv))
    _say(f"gallery of {sum(results.values())} puzzles ({results['correct']} parsed back correct) in {args.out}")
    return 0


# ============================================================================================== train
def _add_train(p: argparse.ArgumentParser) -> None:
    # The diffusion arguments come from config_io (torch-free), the same call train_diffusion.py's parser makes,
    # so building this parser imports no torch.
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    p = kinds.add_parser("diffusion", help="the diffusion reasoner (flow matching under accelerate)",
                         description="Train the diffusion reasoner; the same as training/train_diffusion.py. "
                                     "Options go before the key=value overrides.")
    add_train_arguments(p, DIFFUSION_EXAMPLE_OVERRIDES)
    m = kinds.add_parser("mllm", help="the MLLM baseline (SFT and GRPO-family RL; see training/train_mllm_rl.py "
                                      "--help)", add_help=False,
                         description="Train the MLLM baseline; the same as training/train_mllm_rl.py.")
    m.add_argument("mllm_args", nargs=argparse.REMAINDER, metavar="...",
                   help="the arguments of training/train_mllm_rl.py (--help lists them)")


def _run_train(args: argparse.Namespace) -> int:
    """``diffthinker train diffusion --config C [overrides]``: the same function as training/train_diffusion.py;
    ``diffthinker train mllm ...``: the same function as training/train_mllm_rl.py."""
    if args.kind == "mllm":  # reached only through build_parser() users; main() hands `train mllm` over first
        from mllm_baselines.train import main as train_mllm

        return train_mllm(list(args.mllm_args), prog="diffthinker train mllm")
    from .diffusion.training import run_from_args, setup_logging

    setup_logging()
    return run_from_args(args, args._argv)


# ============================================================================================== demo
def _add_demo(p: argparse.ArgumentParser) -> None:
    # The demo's own options; declared by the demo module, which imports no gradio until it serves.
    from .demo.launch import add_arguments

    add_arguments(p)


def _run_demo(args: argparse.Namespace) -> int:
    """``diffthinker demo [--host H --port P --checkpoint C ...]``: serve the Gradio demo (127.0.0.1 by default)."""
    import logging

    from .demo.launch import run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(args)


# ============================================================================================== solve
def _int_list(text: str) -> list[int]:
    """``1,4,8`` -> [1, 4, 8] (positive ints), else an argparse error naming the value."""
    parts = [t.strip() for t in text.split(",") if t.strip()]
    try:
        values = [int(t) for t in parts]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers such as 1,4,8, got {text!r}")
    return values


def _rule_list(text: str) -> list[str]:
    from .selection import SELECTION_RULES

    rules = [t.strip() for t in text.split(",") if t.strip()]
    bad = [r for r in rules if r not in SELECTION_RULES]
    if not rules or bad:
        raise argparse.ArgumentTypeError(f"expected comma-separated rules from {list(SELECTION_RULES)}, got {text!r}")
    return rules


def _add_sampling(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="a pipeline folder (model_index.json) or an MLLM policy folder (diffthinker_policy.json)")
    p.add_argument("--steps", type=_positive, default=None, help="denoising steps (default: the solver's, 20)")
    p.add_argument("--batch-size", type=_positive, default=None,
                   help="model rows (puzzles x samples) per batched call (default 64)")
    p.add_argument("--seed", type=_non_negative, default=0, help="run seed; sample k of item i is seeded from "
                                                                  "(seed, item id, k)")
    p.add_argument("--name", help="system name in reports (default: from the checkpoint folder)")
    _add_temperature(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_temperature(p: argparse.ArgumentParser) -> None:
    p.add_argument("--temperature", type=_non_negative_float, default=None,
                   help="MLLM policies only: sampling temperature, 0 = greedy decoding (default: the policy's 1.0)")


def _add_solve(p: argparse.ArgumentParser) -> None:
    _add_sampling(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="dataset folder (or an official test folder) of puzzles")
    src.add_argument("--images", type=Path, help="folder of bare puzzle images (needs --task; no verification)")
    p.add_argument("--task", help="the task of --images puzzles")
    p.add_argument("--samples", type=_positive, default=1, help="samples per puzzle N (default 1)")
    p.add_argument("--select", choices=("verifier", "vote", "first"), default="verifier",
                   help="how to pick one of the N samples (default verifier)")
    p.add_argument("--save-trajectory", action="store_true",
                   help="write the predicted-clean frames of the selected sample: trajectories/<id>.png and .gif")
    p.add_argument("--save-candidates", action="store_true", help="write all N samples: candidates/<id>/<k>.png")
    p.add_argument("--out", type=Path, required=True, help="output folder: <id>.png per item and answers.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output atomically")


def _load_solver_for(args: argparse.Namespace) -> Any:
    from .inference import load_solver, process_state

    if getattr(args, "quiet", False):
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.disable_progress_bar()  # "Loading pipeline components"
    state = process_state()  # one process per device under `accelerate launch` / torchrun
    device = state.device if state.device.type != "cpu" else None
    return load_solver(args.checkpoint, device=device, name=args.name,
                       temperature=getattr(args, "temperature", None))


def _solver_items(args: argparse.Namespace, solver: Any) -> list[Any]:
    from .inference import image_items, load_items

    size = getattr(solver, "resolution", None)
    if getattr(args, "images", None) is not None and getattr(args, "data", None) is None:
        if not args.task:
            raise TaskError("--images needs --task (bare puzzle images carry no task)")
        return image_items(args.images, get_task(args.task).id)
    if args.task:
        raise TaskError("--task goes with --images; a dataset names each item's task")
    return load_items(args.data, size=size)


def _run_solve(args: argparse.Namespace) -> int:
    from .data import store
    from .inference import solve_to_folder

    store.check_output(args.out, args.overwrite)
    solver = _load_solver_for(args)
    items = _solver_items(args, solver)
    summary = solve_to_folder(
        solver, items, args.out, num_samples=args.samples, select=args.select, seed=args.seed,
        num_inference_steps=args.steps, batch_size=args.batch_size, save_trajectory=args.save_trajectory,
        save_candidates=args.save_candidates, overwrite=args.overwrite, command=args._argv,
        source=str(args.data or args.images), progress=not args.quiet)
    if summary is not None:
        acc = summary["accuracy"]
        _say(f"solved {summary['total']} puzzles with {solver.name} (N={args.samples}, select {args.select}) "
             + (f"accuracy {acc:.3f} ({summary['correct']}/{summary['total']}), " if acc is not None else "")
             + f"{summary['seconds_per_puzzle']:.3f} s/puzzle -> {args.out}")
    return 0


# ============================================================================================== eval
def _add_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="dataset folder (or an official test folder)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="a pipeline or MLLM policy folder to run")
    src.add_argument("--images", type=Path,
                     help="instead of a model: a folder of solved images <id>.png (or <official_id>.png) from any "
                          "system; missing or unreadable images count as wrong")
    p.add_argument("--samples", type=_int_list, default=[1], help="comma-separated N values (default 1)")
    p.add_argument("--select", type=_rule_list, default=["verifier"],
                   help="comma-separated selection rules: verifier, vote, first (default verifier)")
    p.add_argument("--steps", type=_positive, default=None, help="denoising steps (default: the solver's, 20)")
    p.add_argument("--batch-size", type=_positive, default=None, help="model rows per batched call (default 64)")
    p.add_argument("--seed", type=_non_negative, default=0, help="run seed (default 0)")
    p.add_argument("--name", help="system name in reports (default: the checkpoint or images folder name)")
    _add_temperature(p)
    p.add_argument("--examples", type=_non_negative, default=3,
                   help="solved and failed example pictures kept per task (default 3 each)")
    p.add_argument("--json", type=Path, required=True, help="the run JSON (what `compare` reads)")
    p.add_argument("--report", type=Path, help="also write a markdown report here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_eval(args: argparse.Namespace) -> int:
    from .evaluate import (
        evaluate_images,
        evaluate_solver,
        make_run,
        markdown_report,
        write_run,
    )

    for opt, path in (("--json", args.json), ("--report", args.report)):
        if path is not None and not path.parent.is_dir():
            raise TaskError(f"{opt}: parent folder {path.parent} does not exist")
    if args.images is not None:
        model_only = [o for o, v in (("--samples", args.samples != [1]), ("--select", args.select != ["verifier"]),
                                     ("--steps", args.steps), ("--batch-size", args.batch_size),
                                     ("--temperature", args.temperature is not None)) if v]
        if model_only:
            raise TaskError(f"{', '.join(model_only)} need a model (--checkpoint); --images scores given outputs")
        records, shots = evaluate_images(args.data, args.images, examples=args.examples)
        system = {"name": args.name or args.images.resolve().name, "kind": "images", "images": str(args.images)}
        config = {"samples": [1], "select": ["given"]}
    else:
        solver = _load_solver_for(args)
        from .inference import load_items

        items = load_items(args.data, size=getattr(solver, "resolution", None))
        records, shots = evaluate_solver(solver, items, samples=args.samples, select=args.select, seed=args.seed,
                                         num_inference_steps=args.steps, batch_size=args.batch_size,
                                         examples=args.examples, progress=not args.quiet)
        if not records:  # a non-main accelerate process: the main one writes
            return 0
        system = {"name": solver.name, "kind": solver.kind, "checkpoint": str(args.checkpoint)}
        config = {"samples": sorted(set(args.samples)), "select": list(dict.fromkeys(args.select)),
                  "seed": args.seed, "steps": args.steps, "batch_size": args.batch_size}
        if args.temperature is not None:
            config["temperature"] = args.temperature
    run = make_run(system, args.data, config, records, command=args._argv)
    write_run(args.json, run, shots)
    if args.report is not None:
        args.report.write_text(markdown_report(run))
    pooled = {r["task"] for r in run["summary"] if r["level"] == "all"}
    for r in run["summary"]:
        if r["level"] == "all" or r["task"] not in pooled:
            _say(f"{r['task']} {r['level']} N={r['samples']} {r['select']}: accuracy {r['accuracy']:.3f} "
                 f"({r['correct']}/{r['n']})")
    _say(f"wrote {args.json}" + (f" and {args.report}" if args.report else ""))
    return 0


# ============================================================================================== compare
def _add_compare(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN.json", help="run files written by `eval --json`")
    p.add_argument("--out", type=Path, required=True, help="output folder: README.md, plots, comparison.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output atomically")


def _run_compare(args: argparse.Namespace) -> int:
    from .compare import compare_runs

    compare_runs(args.runs, args.out, overwrite=args.overwrite, command=args._argv)
    _say(f"compared {len(args.runs)} run(s) -> {args.out / 'README.md'}")
    return 0


# ============================================================================================== table + main
@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


#: The subcommand table. Later commands (train, solve, eval, compare, demo) are added here.
COMMANDS: dict[str, Command] = {
    "generate": Command("generate a dataset of puzzles", _add_generate, _run_generate),
    "import": Command("import official DiffThinker test folders as a dataset", _add_import, _run_import),
    "render": Command("render a dataset's problem and solution images", _add_render, _run_render),
    "verify": Command("parse and verify solution images; print accuracy as JSON", _add_verify, _run_verify),
    "gallery": Command("render, parse back and verify one puzzle per task and level", _add_gallery, _run_gallery),
    "train": Command("train a model: `train diffusion --config C [key=value ...]`", _add_train, _run_train),
    "solve": Command("solve puzzles with N parallel samples and a selection rule; write images + answers.json",
                     _add_solve, _run_solve),
    "eval": Command("evaluate a checkpoint (or a folder of solved images) per task, level, N and rule",
                    _add_eval, _run_eval),
    "compare": Command("head-to-head report of several eval runs: markdown table and plots", _add_compare,
                       _run_compare),
    "demo": Command("serve the Gradio demo: watch the model draw N answers and see them verified", _add_demo,
                    _run_demo),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffthinker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"diffthinker {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.set_defaults(_command=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    raw = sys.argv[1:] if argv is None else list(argv)
    if raw[:2] == ["train", "mllm"]:
        # Handed over whole: argparse's REMAINDER cannot pass on leading options such as --config or --help.
        from mllm_baselines.train import main as train_mllm

        return train_mllm(raw[2:], prog="diffthinker train mllm")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help exits 0
        return int(exc.code or 0)
    if getattr(args, "quiet", False):
        import datasets

        datasets.disable_progress_bars()  # its "Saving the dataset" bars; ours honour --quiet themselves
    # Recorded in manifests: the command as typed, whether from the console script, python -m, or main([...]).
    args._argv = ["diffthinker", *(sys.argv[1:] if argv is None else argv)]
    try:
        return COMMANDS[args._command].run(args)
    except TaskError as exc:
        message = " ".join(str(exc).split())  # one line, whatever the message held
        print(f"diffthinker {args._command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"diffthinker {args._command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
