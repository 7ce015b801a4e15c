"""Where an evaluation's misses come from: an eval run's puzzles grouped by why they failed, and (for tasks drawn
over pictures, i.e. jigsaw) accuracy per picture kind.

    diffthinker eval --checkpoint checkpoints/diffthinker-small-jigsaw --data runs/results/jigsaw_2x2 \
        --samples 1 --json runs/results/evals/jigsaw_2x2/diffusion.json
    python benchmarks/eval_breakdown.py runs/results/evals/jigsaw_2x2/diffusion.json --samples 1

Reads the run JSON (``diffthinker eval --json``) and, for picture kinds, the dataset folder it names (instances
only; nothing is sampled or rendered). Prints markdown tables, one per (task, level, N, selection rule):
failure reasons with their counts (numbers inside brackets and block positions folded, so "the block at position 3
matches no piece confidently (distance 31.2)" and its siblings count as one reason), then accuracy per picture kind.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from typing import Any, Iterable

from diffthinker.evaluate import load_run
from diffthinker.inference import load_items
from diffthinker.tasks.sources import picture_kind

_BRACKETED = re.compile(r"\s*\([^)]*\)")
_POSITION = re.compile(r"\bposition \d+")


def reason_key(status: str, reason: str) -> str:
    """A failure's reason with its instance-specific details folded away (see the module docstring)."""
    text = _POSITION.sub("position #", _BRACKETED.sub("", reason)).strip()
    said = status.replace("_", " ")
    return text if text.lower().startswith(said) else f"{said}: {text}"


def item_kind(instance: Any) -> str:
    """The picture kind behind a puzzle instance, or "-" for tasks not drawn over a source picture."""
    source = getattr(instance, "source", None)
    return picture_kind(source) if isinstance(source, str) else "-"


def breakdown(run: dict[str, Any], kinds: dict[str, str], samples: int | None = None) -> dict[tuple, dict]:
    """Per (task, level, N, rule): ``reasons`` (Counter of failure keys), ``kinds`` ({kind: [correct, total]})."""
    out: dict[tuple, dict] = defaultdict(lambda: {"reasons": Counter(), "kinds": defaultdict(lambda: [0, 0])})
    for item in run["items"]:
        if samples is not None and item["samples"] != samples:
            continue
        group = out[(item["task"], item["level"], item["samples"], item["select"])]
        if not item["correct"]:
            group["reasons"][reason_key(item["status"], item.get("reason") or "")] += 1
        tally = group["kinds"][kinds.get(item["id"], "-")]
        tally[0] += bool(item["correct"])
        tally[1] += 1
    return dict(out)


def render(groups: dict[tuple, dict]) -> Iterable[str]:
    for (task, level, n, rule), group in sorted(groups.items()):
        total = sum(t for _, t in group["kinds"].values())
        missed = sum(group["reasons"].values())
        yield f"#### {task} {level}, N={n} ({rule}): {total - missed} of {total} correct\n"
        yield "| failure | puzzles |\n|---|---:|"
        for reason, count in group["reasons"].most_common():
            yield f"| {reason} | {count} |"
        yield ""
        if set(group["kinds"]) != {"-"}:
            yield "| picture kind | correct | puzzles | accuracy |\n|---|---:|---:|---:|"
            for kind, (right, count) in sorted(group["kinds"].items()):
                yield f"| {kind} | {right} | {count} | {100 * right / count:.1f}% |"
            yield ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", nargs="+", help="run JSON(s) written by `diffthinker eval --json`")
    parser.add_argument("--samples", type=int, default=None, help="only this N (default: every N in the run)")
    args = parser.parse_args(argv)
    for path in args.run:
        run = load_run(path)
        kinds = {item.id: item_kind(item.instance) for item in load_items(run["data"])}
        print(f"### {path} (data: {run['data']})\n")
        print("\n".join(render(breakdown(run, kinds, args.samples))))


if __name__ == "__main__":
    main()
