"""The evaluation harness: accuracy per task and level, for each number of samples N and selection rule.

``evaluate_solver`` runs a solver (either track) on a dataset: for every N in ``samples`` it solves every item with
N samples (its own timed run; by the seed contract the first n candidates of any run are the n-sample run's, so the
N=1 numbers are the first candidate of the N=8 run, up to float round-off of differently batched kernels) and applies every selection rule to the same
candidates. ``evaluate_images`` scores a folder of solved images produced by any other system (the published
model's outputs, say) against the dataset, with our parsers and verifiers, exactly as ``diffthinker verify`` does.

Denominators: every item of the dataset counts. A missing or unreadable output image is wrong (the published Maze
and FrozenLake evaluators drop missing images from the denominator; we do not, reference §10.2).

A *run* (what ``diffthinker eval --json`` writes, what ``diffthinker compare`` reads) is one JSON object:

- ``format`` (``RUN_FORMAT``), ``system`` ({name, kind, checkpoint | images}), ``data``, ``config`` (seed, steps,
  batch_size, samples, select), ``command``, ``packages``, ``created_at``;
- ``summary``: one row per (task, level, samples, select), plus level ``"all"`` per task: ``n``, ``correct``,
  ``accuracy``, ``valid``, ``valid_rate``, ``parse_failures``, ``parse_failure_rate``, ``missing``, ``unreadable``,
  ``fallbacks`` (selection found nothing valid / parsed), ``oracle_accuracy`` (some candidate correct: the
  ceiling of any selection rule), ``seconds_per_puzzle`` (None for image folders), and for TSP ``tsp_gap``
  ({count, mean, median, p90, max, gaps}: the optimality gaps ``length / optimum - 1`` of the valid selected tours);
- ``items``: one record per item and configuration (id, task, level, samples, select, status, selected, valid,
  correct, score, gap, seconds, answer, reason);
- ``examples``: a few solved and failed items per task (problem and output PNGs in ``<json stem>_examples/``,
  paths relative to the JSON file), for ``compare``'s pictures.

Statuses: ``correct``, ``incorrect`` (an answer was read but is not correct), ``parse_failure``, ``missing``,
``unreadable``.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import statistics
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .data.schema import encode_png
from .inference import (
    ITEM_CHUNK,
    Item,
    chunked,
    group_by_task,
    reselect,
    run_sharded,
    solve,
)
from .selection import check_rule
from .tasks.base import TaskError, get_task

__all__ = ["RUN_FORMAT", "evaluate_images", "evaluate_solver", "load_run", "markdown_report", "summarize_items",
           "write_run"]

RUN_FORMAT = "diffthinker-eval/1"
STATUSES = ("correct", "incorrect", "parse_failure", "missing", "unreadable")


# ============================================================================================== item records
def _item_record(result: Any) -> dict[str, Any]:
    """One (item, N, rule) outcome from a SolveResult."""
    task = get_task(result.task_id)
    sel = result.selected_candidate
    v = sel.verdict if sel is not None else None
    if sel is None:
        status = "missing"
    elif not sel.parsed:
        status = "parse_failure"
    else:
        status = "correct" if v.correct else "incorrect"
    return {
        "id": result.item_id, "task": result.task_id, "level": result.level,
        "samples": len(result.candidates), "select": result.select, "status": status,
        "selected": result.selected, "fallback": result.fallback,
        "valid": bool(v and v.valid), "correct": bool(v and v.correct), "score": float(v.score) if v else 0.0,
        "gap": _gap(v.to_dict() if v else None),
        "seconds": round(result.seconds, 6),
        "oracle": any(c.verdict.correct for c in result.candidates),
        "answer": task.answer_to_text(sel.answer) if sel is not None and sel.parsed else None,
        "reason": (v.reason if v else "no candidate")[:300],
    }


def _gap(verdict: dict[str, Any] | None) -> float | None:
    if not verdict or not verdict.get("valid"):
        return None
    gap = (verdict.get("details") or {}).get("gap")
    return float(gap) if gap is not None else None


# ============================================================================================== summaries
def _quantile(values: Sequence[float], q: float) -> float:
    vals = sorted(values)
    pos = q * (len(vals) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def _summary_row(task: str, level: str, samples: int, select: str, recs: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(recs)
    count = {s: sum(r["status"] == s for r in recs) for s in STATUSES}
    valid = sum(bool(r["valid"]) for r in recs)
    secs = [r["seconds"] for r in recs if r.get("seconds") is not None]
    oracle = [r["oracle"] for r in recs if r.get("oracle") is not None]
    row: dict[str, Any] = {
        "task": task, "level": level, "samples": samples, "select": select, "n": n,
        "correct": count["correct"], "accuracy": count["correct"] / n if n else 0.0,
        "valid": valid, "valid_rate": valid / n if n else 0.0,
        "parse_failures": count["parse_failure"], "parse_failure_rate": count["parse_failure"] / n if n else 0.0,
        "missing": count["missing"], "unreadable": count["unreadable"],
        "fallbacks": sum(bool(r.get("fallback")) for r in recs),
        "oracle_accuracy": (sum(oracle) / len(oracle)) if oracle and len(oracle) == n else None,
        "seconds_per_puzzle": (sum(secs) / len(secs)) if secs and len(secs) == n else None,
    }
    if task.startswith("tsp-"):
        gaps = [r["gap"] for r in recs if r.get("gap") is not None]
        row["tsp_gap"] = {
            "count": len(gaps),
            "mean": statistics.fmean(gaps) if gaps else None,
            "median": _quantile(gaps, 0.5) if gaps else None,
            "p90": _quantile(gaps, 0.9) if gaps else None,
            "max": max(gaps) if gaps else None,
            "gaps": [round(g, 6) for g in gaps],
        }
    return row


def _level_order(task: str, levels: Iterable[str]) -> list[str]:
    known = list(get_task(task).levels)
    return sorted(set(levels), key=lambda lv: (known.index(lv) if lv in known else len(known), lv))


def summarize_items(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Summary rows per (task, level, samples, select), then (task, "all", samples, select) when a task has
    several levels. Order: task, level (the task's level order), N ascending, rules in order of appearance."""
    configs = sorted(dict.fromkeys((r["samples"], r["select"]) for r in records),
                     key=lambda c: c[0])  # stable: rules keep their order within an N
    rows = []
    for task in sorted({r["task"] for r in records}):
        recs = [r for r in records if r["task"] == task]
        levels = _level_order(task, (r["level"] for r in recs))
        for level in levels + (["all"] if len(levels) > 1 else []):
            for samples, rule in configs:
                group = [r for r in recs if r["samples"] == samples and r["select"] == rule
                         and (level == "all" or r["level"] == level)]
                if group:
                    rows.append(_summary_row(task, level, samples, rule, group))
    return rows


# ============================================================================================== examples
def _pick_examples(records: Sequence[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The first ``k`` solved and ``k`` failed records per task, in dataset order."""
    picked: list[dict[str, Any]] = []
    per: dict[tuple[str, bool], int] = {}
    for r in records:
        key = (r["task"], r["status"] == "correct")
        if per.get(key, 0) < k:
            per[key] = per.get(key, 0) + 1
            picked.append(r)
    return picked


def _display_image(img: Any, size: int = 128) -> bytes:
    """PNG bytes of ``img`` scaled to ``size`` px wide with NEAREST (pictures stay crisp, files stay small)."""
    from PIL import Image

    img = img.convert("RGB")
    if img.width != size:
        img = img.resize((size, max(1, round(img.height * size / img.width))), Image.NEAREST)
    return encode_png(img)


# ============================================================================================== evaluation
def evaluate_solver(solver: Any, items: Sequence[Item], *, samples: Sequence[int] = (1,),
                    select: Sequence[str] = ("verifier",), seed: int = 0, num_inference_steps: int | None = None,
                    batch_size: int | None = None, examples: int = 3, progress: bool = False
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Solve ``items`` with every N in ``samples`` and score every rule in ``select``.

    Returns ``(item_records, examples)``; ``examples`` hold PNG bytes (``problem_png``, ``output_png``) of the
    first few solved and failed items per task under the headline configuration (the largest N, the first rule).
    Runs sharded over accelerate processes; the main process gets everything, the others ([], []).
    """
    samples = sorted({int(s) for s in samples})
    if not samples or samples[0] < 1:
        raise TaskError(f"--samples must be positive integers, got {samples}")
    rules = list(dict.fromkeys(select))
    for rule in rules:
        check_rule(rule)
    if any(it.instance is None for it in items):
        raise TaskError("evaluation needs puzzle instances (a dataset); bare puzzle images cannot be scored")
    if not items:
        raise TaskError("no items to evaluate: the dataset is empty")
    for task_id in group_by_task(items):
        if not solver.supports(task_id):
            raise TaskError(f"solver {solver.name!r} does not solve task {task_id!r}"
                            + (f"; it knows {solver.tasks}" if hasattr(solver, "tasks") else ""))
    order = {it.id: j for j, it in enumerate(items)}

    def work(shard: list[Item]) -> list[dict[str, Any]]:
        from tqdm.auto import tqdm

        records: list[dict[str, Any]] = []
        shots: list[dict[str, Any]] = []
        taken: dict[tuple[str, bool], int] = {}
        bar = tqdm(total=len(shard) * len(samples), desc=f"eval N={','.join(map(str, samples))}", unit="solve",
                   disable=not progress or None)
        for task_id, group in group_by_task(shard).items():
            # chunks of items, so that candidate images never pile up beyond one chunk
            for chunk in chunked(group, ITEM_CHUNK):
                images = [it.image for it in chunk]
                for n in samples:
                    results = solve(solver, task_id, [it.instance for it in chunk], images, num_samples=n,
                                    select=rules[0], seed=seed, num_inference_steps=num_inference_steps,
                                    batch_size=batch_size, item_ids=[it.id for it in chunk],
                                    levels=[it.level for it in chunk])
                    for rule in rules:
                        for res in (results if rule == rules[0] else reselect(results, rule)):
                            records.append(_item_record(res))
                    if n == samples[-1]:  # the headline configuration: keep a few pictures, in dataset order
                        for it, img, res in zip(chunk, images, results):
                            key = (task_id, res.correct)
                            if taken.get(key, 0) < examples:
                                taken[key] = taken.get(key, 0) + 1
                                shots.append(_shot(_item_record(res), img, res.selected_candidate))
                    bar.update(len(chunk))
        bar.close()
        records.sort(key=lambda r: (order[r["id"]], r["samples"], rules.index(r["select"])))
        return [{"records": records, "examples": shots}]

    parts, _state = run_sharded(items, work)
    if parts is None:
        return [], []
    records = [r for p in parts for r in p["records"]]
    shots = [s for p in parts for s in p["examples"]]
    # each shard kept its own first few; the global first few per task are among them (shards are contiguous)
    keep = {r["id"] for r in _pick_examples(
        [r for r in records if r["samples"] == samples[-1] and r["select"] == rules[0]], examples)}
    return records, [s for s in shots if s["id"] in keep]


def _shot(rec: dict[str, Any], problem: Any, cand: Any) -> dict[str, Any]:
    shot = {k: rec[k] for k in ("id", "task", "level", "status", "answer", "reason")}
    shot["problem_png"] = _display_image(problem)
    if cand is not None and cand.raw.image is not None:
        shot["output_png"] = _display_image(cand.raw.image)
    elif cand is not None:
        shot["output_text"] = cand.raw.text
    return shot


def evaluate_images(data: str | Path, images: str | Path, *, examples: int = 3
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Score a folder of solved images (``<id>`` or ``<official_id>`` + .png/.jpg/.jpeg/.webp, as ``diffthinker
    verify`` finds them) against the dataset ``data``. No model; missing and unreadable images count wrong.

    Returns ``(item_records, examples)`` with ``samples`` 1 and ``select`` "given"."""
    from .cli import (
        verify_rows,  # the one definition of how `verify` finds and reads an item's image
    )
    from .data import official
    from .data.schema import open_image_file

    images = Path(images)
    if not images.is_dir():
        raise TaskError(f"--images folder not found: {images}")
    ds = official.load_data(data)
    if len(ds) == 0:
        raise TaskError(f"no items to evaluate: the dataset {data} is empty")
    problems = ds.remove_columns(["solution_image"])
    records = []
    for rec in verify_rows(ds, images):
        v = rec["verdict"]
        records.append({
            "id": rec["id"], "task": rec["task"], "level": rec["level"], "samples": 1, "select": "given",
            "status": rec["status"], "selected": 0 if rec["image"] else None, "fallback": False,
            "valid": bool(v and v["valid"]), "correct": rec["status"] == "correct",
            "score": float(v["score"]) if v else 0.0, "gap": _gap(v), "seconds": None, "oracle": None,
            "answer": rec["answer"], "reason": (rec["reason"] or "")[:300], "image": rec["image"],
        })
    picked = _pick_examples(records, examples)
    wanted = {r["id"] for r in picked}
    problem_of = {row["id"]: row["image"] for row in problems if row["id"] in wanted}
    shots = []
    for r in picked:
        shot = {k: r[k] for k in ("id", "task", "level", "status", "answer", "reason")}
        shot["problem_png"] = _display_image(problem_of[r["id"]])
        if r["image"]:
            try:
                shot["output_png"] = _display_image(open_image_file(Path(r["image"])))
            except TaskError:
                pass  # unreadable: the picture shows the problem only
        shots.append(shot)
    for r in records:
        r.pop("image")
    return records, shots


# ============================================================================================== run files
def make_run(system: dict[str, Any], data: str | Path, config: dict[str, Any], records: list[dict[str, Any]],
             command: Sequence[str] | None = None) -> dict[str, Any]:
    from .data.store import package_versions

    return {
        "format": RUN_FORMAT, "system": system, "data": str(data), "config": config,
        "command": list(command) if command is not None else list(sys.argv),
        "packages": package_versions(),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "summary": summarize_items(records), "items": records, "examples": [],
    }


def write_run(path: str | Path, run: dict[str, Any], examples: Sequence[dict[str, Any]] = ()) -> Path:
    """Write the run JSON and its example pictures (``<stem>_examples/``, replaced if present)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise TaskError(f"parent folder of {path} does not exist: {path.parent}")
    shots_dir = path.parent / f"{path.stem}_examples"
    if shots_dir.exists():
        shutil.rmtree(shots_dir)
    listed = []
    if examples:
        shots_dir.mkdir()
        for j, shot in enumerate(examples):
            entry = {k: v for k, v in shot.items() if not k.endswith("_png")}
            for kind in ("problem", "output"):
                data = shot.get(f"{kind}_png")
                if data is not None:
                    name = f"{j:03d}_{shot['id']}_{kind}.png"
                    (shots_dir / name).write_bytes(data)
                    entry[kind] = f"{shots_dir.name}/{name}"
            listed.append(entry)
    run = {**run, "examples": listed}
    path.write_text(json.dumps(run, indent=1, sort_keys=False) + "\n")
    return path


def load_run(path: str | Path) -> dict[str, Any]:
    """A run JSON written by ``write_run``; TaskError naming the file for anything else."""
    path = Path(path)
    if not path.is_file():
        raise TaskError(f"run file not found: {path}; expected a JSON written by `diffthinker eval --json`")
    try:
        run = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TaskError(f"{path} is not a readable JSON file ({exc})") from None
    if not isinstance(run, dict) or run.get("format") != RUN_FORMAT:
        got = run.get("format") if isinstance(run, dict) else type(run).__name__
        raise TaskError(f"{path} is not an evaluation run (format {got!r}); expected format {RUN_FORMAT!r} as "
                        f"written by `diffthinker eval --json`")
    run["_path"] = str(path)
    return run


# ============================================================================================== markdown
def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _secs(x: float | None) -> str:
    return "–" if x is None else (f"{x:.3f}" if x < 10 else f"{x:.1f}")


def markdown_report(run: dict[str, Any]) -> str:
    """A readable report of one run: per task and level, every (N, rule) configuration."""
    sysinfo = run["system"]
    lines = [f"# Evaluation: {sysinfo.get('name')}", "",
             f"- system: {sysinfo.get('name')} ({sysinfo.get('kind')}; "
             + (f"checkpoint `{sysinfo['checkpoint']}`" if sysinfo.get("checkpoint") else
                f"images `{sysinfo.get('images')}`") + ")",
             f"- data: `{run['data']}`", f"- config: `{json.dumps(run['config'], sort_keys=True)}`",
             f"- created: {run['created_at']}; command: `{' '.join(run['command'])}`", "",
             ("Every item counts: missing or unreadable outputs are wrong. *oracle* = some candidate correct (the "
              "ceiling of any selection rule)."), "",
             "| task | level | N | select | n | accuracy | valid | parse failures | missing | oracle | s/puzzle |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in run["summary"]:
        lines.append(f"| {r['task']} | {r['level']} | {r['samples']} | {r['select']} | {r['n']} | "
                     f"{_pct(r['accuracy'])} | {_pct(r['valid_rate'])} | {_pct(r['parse_failure_rate'])} | "
                     f"{r['missing'] + r['unreadable']} | {_pct(r['oracle_accuracy'])} | "
                     f"{_secs(r['seconds_per_puzzle'])} |")
    gaps = [r for r in run["summary"] if r.get("tsp_gap")]
    if gaps:
        lines += ["", "TSP optimality gap of the valid selected tours (length / optimum - 1):", "",
                  "| level | N | select | valid tours | mean | median | p90 | max |", "|---|---:|---|---:|---:|---:|---:|---:|"]
        for r in gaps:
            g = r["tsp_gap"]
            lines.append(f"| {r['level']} | {r['samples']} | {r['select']} | {g['count']} | {_pct(g['mean'])} | "
                         f"{_pct(g['median'])} | {_pct(g['p90'])} | {_pct(g['max'])} |")
    return "\n".join(lines) + "\n"
