"""Head-to-head reports: several evaluation runs (``diffthinker eval --json``) side by side.

``compare_runs(paths, out)`` writes into ``out``:

- ``README.md``: accuracy per task and level (rows) for every system, N and selection rule (columns); then seconds
  per puzzle, valid and parse-failure rates, TSP optimality gaps, and a warning when the runs did not score the
  same items (a comparison is only fair on identical puzzles);
- ``accuracy_per_level.png``: per task, accuracy per level, one bar per system (its headline configuration: the
  largest N with its first selection rule);
- ``accuracy_vs_samples.png``: per task, accuracy against N, one line per system and rule;
- ``accuracy_vs_seconds.png``: per task, accuracy against seconds per puzzle (systems without timings, such as
  image folders, are left out and named in the README);
- ``examples_<task>.png``: a few solved and failed items per system (problem | output), from the runs' examples;
- ``comparison.json``: the table's numbers, and a manifest.

Plots use matplotlib's object API (``Figure`` + Agg canvas), never pyplot's global state.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .evaluate import _pct, _secs, load_run
from .tasks.base import TaskError

__all__ = ["compare_runs", "comparison_table"]

OK_COLOUR = (40, 160, 60)
BAD_COLOUR = (200, 40, 40)


def _labels(runs: Sequence[dict[str, Any]]) -> list[str]:
    """System names, made unique by a suffix (two runs of the same checkpoint with different settings)."""
    labels, seen = [], {}
    for run in runs:
        name = str(run["system"].get("name") or Path(run["_path"]).stem)
        seen[name] = seen.get(name, 0) + 1
        labels.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return labels


def _configs(run: dict[str, Any]) -> list[tuple[int, str]]:
    return list(dict.fromkeys((r["samples"], r["select"]) for r in run["summary"]))


def _headline(run: dict[str, Any]) -> tuple[int, str]:
    cfgs = _configs(run)
    top = max(n for n, _ in cfgs)
    return next(c for c in cfgs if c[0] == top)


def _rows(runs: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(task, level) rows over all runs, each task's levels in the order the runs list them, "all" last."""
    rows: list[tuple[str, str]] = []
    for run in runs:
        for r in run["summary"]:
            if (r["task"], r["level"]) not in rows:
                rows.append((r["task"], r["level"]))
    tasks = list(dict.fromkeys(t for t, _ in rows))
    return [(t, lv) for t in sorted(tasks) for lv in
            [lv for tt, lv in rows if tt == t and lv != "all"] + (["all"] if (t, "all") in rows else [])]


def _lookup(run: dict[str, Any]) -> dict[tuple[str, str, int, str], dict[str, Any]]:
    return {(r["task"], r["level"], r["samples"], r["select"]): r for r in run["summary"]}


def comparison_table(runs: Sequence[dict[str, Any]], field: str = "accuracy") -> dict[str, Any]:
    """``{"columns": [(label, N, rule)], "rows": [{"task", "level", "values": [...]}]}`` for a summary field."""
    labels = _labels(runs)
    columns = [(lab, n, rule) for lab, run in zip(labels, runs) for n, rule in _configs(run)]
    looks = {lab: _lookup(run) for lab, run in zip(labels, runs)}
    rows = []
    for task, level in _rows(runs):
        values = []
        for lab, n, rule in columns:
            hit = looks[lab].get((task, level, n, rule))
            values.append(None if hit is None else hit.get(field))
        rows.append({"task": task, "level": level, "values": values})
    return {"columns": [list(c) for c in columns], "rows": rows}


def _md_table(table: dict[str, Any], fmt: Any, counts: dict[tuple[str, str], str] | None = None) -> list[str]:
    head = "| task | level | " + " | ".join(f"{lab} N={n} {rule}" for lab, n, rule in table["columns"]) + " |"
    sep = "|---|---|" + "---:|" * len(table["columns"])
    lines = [head, sep]
    for row in table["rows"]:
        lines.append(f"| {row['task']} | {row['level']} | " + " | ".join(fmt(v) for v in row["values"]) + " |")
    return lines


def _item_sets(run: dict[str, Any]) -> dict[str, frozenset[str]]:
    n, rule = _configs(run)[0]
    out: dict[str, set[str]] = {}
    for r in run["items"]:
        if r["samples"] == n and r["select"] == rule:
            out.setdefault(r["task"], set()).add(r["id"])
    return {t: frozenset(v) for t, v in out.items()}


# ============================================================================================== plots
def _figure(ntasks: int, width: float = 5.0, height: float = 3.6) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ntasks, height), layout="constrained")
    axes = fig.subplots(1, ntasks, squeeze=False)[0]
    return fig, axes


def _plot_per_level(runs, labels, tasks, path: Path) -> None:
    import numpy as np

    fig, axes = _figure(len(tasks))
    for ax, task in zip(axes, tasks):
        levels = [lv for t, lv in _rows(runs) if t == task and lv != "all"]
        x = np.arange(len(levels))
        width = 0.8 / len(runs)
        for j, (lab, run) in enumerate(zip(labels, runs)):
            n, rule = _headline(run)
            look = _lookup(run)
            ys = [(look.get((task, lv, n, rule)) or {}).get("accuracy") for lv in levels]
            ax.bar(x + (j - (len(runs) - 1) / 2) * width, [np.nan if y is None else 100 * y for y in ys], width,
                   label=f"{lab} (N={n}, {rule})")
        ax.set_xticks(x, levels)
        ax.set_xlabel("level")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 105)
        ax.set_title(task)
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=100)


def _overall(run: dict[str, Any], task: str, n: int, rule: str) -> dict[str, Any] | None:
    look = _lookup(run)
    return look.get((task, "all", n, rule)) or next(
        (r for r in run["summary"] if r["task"] == task and r["samples"] == n and r["select"] == rule), None)


def _plot_vs(runs, labels, tasks, path: Path, x_field: str) -> list[str]:
    """Accuracy (all levels of a task) against N or seconds; returns the labels left out for lack of data."""
    fig, axes = _figure(len(tasks))
    skipped: list[str] = []
    for ax, task in zip(axes, tasks):
        for lab, run in zip(labels, runs):
            for rule in dict.fromkeys(r for _, r in _configs(run)):
                pts = []
                for n in sorted({n for n, r in _configs(run) if r == rule}):
                    row = _overall(run, task, n, rule)
                    if row is None:
                        continue
                    x = n if x_field == "samples" else row.get("seconds_per_puzzle")
                    if x is None:
                        if lab not in skipped:
                            skipped.append(lab)
                        continue
                    pts.append((x, 100 * row["accuracy"], n))
                if pts:
                    xs, ys, ns = zip(*pts)
                    ax.plot(xs, ys, marker="o", label=f"{lab} {rule}")
                    if x_field == "seconds":
                        for x, y, n in pts:
                            ax.annotate(f"N={n}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        if x_field == "samples":
            ax.set_xscale("log", base=2)
            ns = sorted({n for run in runs for n, _ in _configs(run)})
            ax.set_xticks(ns, [str(n) for n in ns])
            ax.set_xlabel("samples per puzzle N")
        else:
            xs_all = [x for line in ax.get_lines() for x in line.get_xdata()]
            if xs_all and max(xs_all) > 10 * min(xs_all):  # log only when the timings span a decade
                from matplotlib.ticker import FuncFormatter, NullFormatter

                ax.set_xscale("log")
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("seconds per puzzle")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(-3, 105)
        ax.set_title(task)
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=100)
    return skipped


def _load_png(run: dict[str, Any], rel: str | None) -> Any:
    from PIL import Image

    if not rel:
        return None
    p = Path(run["_path"]).parent / rel
    if not p.is_file():
        return None
    with Image.open(p) as im:
        return im.convert("RGB")


def _pair(problem: Any, output: Any, ok: bool, text: str | None = None) -> Any:
    """problem | output side by side, framed green (solved) or red (failed)."""
    from PIL import Image, ImageDraw

    w = problem.width if problem is not None else 128
    h = problem.height if problem is not None else 128
    border = 4
    pic = Image.new("RGB", (2 * w + 3 * border, h + 2 * border), OK_COLOUR if ok else BAD_COLOUR)
    if problem is not None:
        pic.paste(problem, (border, border))
    if output is not None:
        pic.paste(output.resize((w, h), Image.NEAREST), (2 * border + w, border))
    else:
        blank = Image.new("RGB", (w, h), (235, 235, 235))
        ImageDraw.Draw(blank).text((4, 4), (text or "(no output)")[:60], fill=(0, 0, 0))
        pic.paste(blank, (2 * border + w, border))
    return pic


def _plot_examples(runs, labels, task: str, path: Path) -> bool:
    from matplotlib.figure import Figure

    per_system = []
    for lab, run in zip(labels, runs):
        shots = [s for s in run.get("examples", []) if s["task"] == task]
        shots.sort(key=lambda s: s["status"] != "correct")  # solved first
        per_system.append((lab, run, shots))
    cols = max((len(s) for _, _, s in per_system), default=0)
    if cols == 0:
        return False
    fig = Figure(figsize=(2.6 * cols, 1.6 * len(per_system) + 0.4), layout="constrained")
    axes = fig.subplots(len(per_system), cols, squeeze=False)
    for row, (lab, run, shots) in enumerate(per_system):
        for col in range(cols):
            ax = axes[row][col]
            ax.set_axis_off()
            if col >= len(shots):
                continue
            s = shots[col]
            ok = s["status"] == "correct"
            ax.imshow(_pair(_load_png(run, s.get("problem")), _load_png(run, s.get("output")), ok,
                            s.get("output_text")))
            ax.set_title(f"{lab}: {'solved' if ok else s['status']}\n{s['id']}", fontsize=7)
    fig.suptitle(f"{task}: problem | output (green: solved, red: failed)", fontsize=9)
    fig.savefig(path, dpi=100)
    return True


# ============================================================================================== the report
def compare_runs(paths: Sequence[str | Path], out: str | Path, *, overwrite: bool = False,
                 command: Sequence[str] | None = None) -> Path:
    """Build the head-to-head report of the runs at ``paths`` in the folder ``out`` (see the module docstring)."""
    from .data import store

    if not paths:
        raise TaskError("compare needs at least one run JSON")
    runs = [load_run(p) for p in paths]
    labels = _labels(runs)
    tasks = sorted({r["task"] for run in runs for r in run["summary"]})
    acc = comparison_table(runs, "accuracy")
    secs = comparison_table(runs, "seconds_per_puzzle")
    valid = comparison_table(runs, "valid_rate")
    pfail = comparison_table(runs, "parse_failure_rate")
    with store.atomic_folder(out, overwrite) as tmp:
        _plot_per_level(runs, labels, tasks, tmp / "accuracy_per_level.png")
        _plot_vs(runs, labels, tasks, tmp / "accuracy_vs_samples.png", "samples")
        untimed = _plot_vs(runs, labels, tasks, tmp / "accuracy_vs_seconds.png", "seconds")
        pictures = [t for t in tasks if _plot_examples(runs, labels, t, tmp / f"examples_{t}.png")]

        lines = ["# Head-to-head comparison", "",
                 "| system | kind | source | data | config |", "|---|---|---|---|---|"]
        for lab, run in zip(labels, runs):
            s = run["system"]
            lines.append(f"| {lab} | {s.get('kind')} | `{s.get('checkpoint') or s.get('images')}` | "
                         f"`{run['data']}` | `{json.dumps(run['config'], sort_keys=True)}` |")
        sets = [_item_sets(run) for run in runs]
        mismatched = [t for t in tasks if len({s.get(t) for s in sets if t in s}) > 1]
        if mismatched:
            lines += ["", (f"**Warning: the runs did not score the same items for {', '.join(mismatched)}** "
                           "(different test sets); their numbers are not a head-to-head comparison there.")]
        lines += ["", "## Accuracy", "", "Every item counts (missing or unreadable outputs are wrong).", ""]
        lines += _md_table(acc, _pct)
        lines += ["", "## Seconds per puzzle", ""] + _md_table(secs, _secs)
        lines += ["", "## Valid rate (answer obeys the rules)", ""] + _md_table(valid, _pct)
        lines += ["", "## Parse-failure rate", ""] + _md_table(pfail, _pct)
        gap_rows = []
        for lab, run in zip(labels, runs):
            for r in run["summary"]:
                if r.get("tsp_gap") and r["tsp_gap"]["count"]:
                    g = r["tsp_gap"]
                    gap_rows.append(f"| {lab} | {r['level']} | {r['samples']} | {r['select']} | {g['count']} | "
                                    f"{_pct(g['mean'])} | {_pct(g['median'])} | {_pct(g['p90'])} | {_pct(g['max'])} |")
        if gap_rows:
            lines += ["", "## TSP optimality gap (valid selected tours)", "",
                      "| system | level | N | select | tours | mean | median | p90 | max |",
                      "|---|---|---:|---|---:|---:|---:|---:|---:|"] + gap_rows
        lines += ["", "## Plots", "", "![accuracy per level](accuracy_per_level.png)", "",
                  "![accuracy against samples](accuracy_vs_samples.png)", "",
                  "![accuracy against seconds per puzzle](accuracy_vs_seconds.png)"]
        if untimed:
            lines += ["", f"Not in the seconds plot (no timings, e.g. scored image folders): {', '.join(untimed)}."]
        if pictures:
            lines += ["", "## Examples", ""] + [f"![{t} examples](examples_{t}.png)\n" for t in pictures]
        (tmp / "README.md").write_text("\n".join(lines) + "\n")
        (tmp / "comparison.json").write_text(json.dumps(
            {"systems": labels, "runs": [r["_path"] for r in runs], "accuracy": acc, "seconds_per_puzzle": secs,
             "valid_rate": valid, "parse_failure_rate": pfail, "mismatched_tasks": mismatched}, indent=1) + "\n")
        store.write_manifest(tmp, store.make_manifest("compare", config={"runs": [str(p) for p in paths]},
                                                      counts={"systems": len(runs), "tasks": len(tasks)},
                                                      command=list(command) if command else None))
    return Path(out)
