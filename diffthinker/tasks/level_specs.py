"""``task:level`` entries, the way run configs name the puzzles they train and evaluate on (both tracks).

``parse_level_specs(["maze:8", "frozenlake:vsp3", "sudoku"])`` resolves each entry against the task registry (the
task name to its versioned id, a missing level to the task's default level) and checks the level exists, so a
config with a typo fails when it is loaded, not hours into a run.

``held_out_puzzles(specs, n, seed)`` is the one rule both tracks use for the fixed evaluation set (the diffusion
validation set, the MLLM evaluation set, and the test set `diffthinker generate --seed 0` draws): for each spec,
consecutive seeds from ``seed``, skipping puzzles whose content hash was already taken, until the spec's share of
``n`` is reached (``n`` split evenly, the first specs taking the remainder). Same specs, n and seed: the same
puzzles, whichever track asks, so the training runs can exclude exactly the puzzles the results are measured on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

from .base import TaskError, get_task

__all__ = ["HeldOutPuzzle", "LevelSpec", "hash_fingerprint", "held_out_puzzles", "parse_level_specs"]


@dataclass(frozen=True)
class LevelSpec:
    """One (task, level) pair a run trains or evaluates on. ``task`` is the versioned id (``maze-v1``)."""

    task: str
    level: str

    def __str__(self) -> str:
        return f"{self.task}:{self.level}"


def parse_level_specs(specs: Sequence[str] | str, what: str = "data.levels") -> list[LevelSpec]:
    """``["maze:8"]``, ``["frozenlake:vsp3", ...]`` or ``"maze"`` (the task's default level) -> specs.

    ``what`` names the config key in errors. An empty list, a non-string entry, an unknown task or level, or an
    entry listed twice raises TaskError naming the entry and what was expected.
    """
    if isinstance(specs, str):
        specs = [specs]
    if not specs:
        raise TaskError(f"{what} is empty; expected at least one 'task:level' entry such as 'maze:8'")
    out: list[LevelSpec] = []
    for entry in specs:
        if not isinstance(entry, str) or not entry.strip():
            raise TaskError(f"{what} entry {entry!r} is not a 'task:level' string (e.g. 'maze:8')")
        name, _, level = entry.strip().partition(":")
        try:
            task = get_task(name)
            level = level or task.default_level
            task.level_config(level)
        except TaskError as exc:
            raise TaskError(f"{what} entry {entry!r}: {exc}") from None
        spec = LevelSpec(task.id, level)
        if spec in out:
            raise TaskError(f"{what} lists {spec} twice; expected each 'task:level' once")
        out.append(spec)
    return out


@dataclass(frozen=True)
class HeldOutPuzzle:
    """One puzzle of a fixed evaluation set (rendered lazily by whoever evaluates it)."""

    spec: LevelSpec
    seed: int
    instance: Any
    content_hash: str


def held_out_puzzles(specs: Sequence[LevelSpec], n: int, seed: int = 0, max_skips: int = 10_000,
                     what: str = "evaluation set") -> list[HeldOutPuzzle]:
    """``n`` distinct puzzles split evenly over ``specs``, in spec order (the rule in the module docstring)."""
    if n < 1:
        raise TaskError(f"{what} size must be positive, got {n}")
    if not specs:
        raise TaskError(f"{what}: no 'task:level' specs given; expected at least one")
    out: list[HeldOutPuzzle] = []
    base, extra = divmod(n, len(specs))
    for k, spec in enumerate(specs):
        want = base + (1 if k < extra else 0)
        task = get_task(spec.task)
        seen: set[str] = set()
        s, skipped = seed, 0
        while len(seen) < want:
            inst = task.generate(spec.level, s)
            digest = task.content_hash(inst)
            if digest in seen:
                skipped += 1
                if skipped > max_skips:
                    raise TaskError(f"{what}: {spec} has only {len(seen)} distinct puzzles from seed {seed} after "
                                    f"skipping {skipped} duplicates; expected {want} (use a smaller set size)")
            else:
                seen.add(digest)
                out.append(HeldOutPuzzle(spec, s, inst, digest))
            s += 1
    return out


def hash_fingerprint(hashes) -> str:
    """sha256 over the sorted content hashes: names a set of puzzles (a held-out set) in a model card or a policy
    record without listing it; anyone can recompute it from the puzzles."""
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()
