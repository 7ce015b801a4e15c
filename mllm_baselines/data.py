"""Puzzles for the MLLM track: the fixed evaluation set and the training stream that never touches it.

The evaluation rule is the diffusion track's, shared through ``diffthinker.tasks.level_specs.held_out_puzzles``
(torch-free, so the tracks need not import each other): for each ``task:level`` spec, consecutive seeds from
``seed`` (default 0), skipping puzzles whose content hash was already taken, until the spec's share of ``n`` is
reached (``n`` split evenly, the first specs taking the remainder). With the same specs, n and seed both tracks
evaluate on the very same puzzles.

Training puzzle ``g`` of a stream uses seed ``seed_start + g`` (plus ``a * 2**40`` on its ``a``-th collision with a
blocked content hash: the evaluation set and any ``exclude`` folders), for spec ``specs[g % len(specs)]``. It is a
pure function of ``g``, so a resumed run continues the exact stream from its puzzle counter.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from diffthinker.tasks import get_task
from diffthinker.tasks.base import TaskError
from diffthinker.tasks.level_specs import (  # re-exported: `task:level` entries, the held-out rule
    HeldOutPuzzle,
    LevelSpec,
    held_out_puzzles,
    parse_level_specs,
)

__all__ = ["LevelSpec", "Puzzle", "PuzzleStream", "eval_puzzles", "parse_level_specs"]

RETRY_STRIDE = 1 << 40
MAX_ATTEMPTS = 10_000


#: One puzzle of a stream or evaluation set (the shared type of ``diffthinker.tasks.level_specs``).
Puzzle = HeldOutPuzzle


def eval_puzzles(specs: Sequence[LevelSpec], n: int, seed: int = 0, max_skips: int = 10_000) -> list[Puzzle]:
    """``n`` distinct puzzles split evenly over ``specs``, in spec order (``held_out_puzzles``, the rule both tracks
    share)."""
    return held_out_puzzles(specs, n, seed, max_skips, what="evaluation set")


class PuzzleStream:
    """The training puzzles: ``stream[g]`` is puzzle ``g`` (see the module docstring); never a blocked hash."""

    def __init__(self, specs: Sequence[LevelSpec], *, seed_start: int = 1_000_000,
                 blocked: Iterable[str] = ()):
        if not specs:
            raise TaskError("a puzzle stream needs at least one level spec")
        if seed_start < 0:
            raise TaskError(f"seed_start must be >= 0, got {seed_start}")
        self.specs = list(specs)
        self.seed_start = seed_start
        self.blocked = frozenset(blocked)

    def __getitem__(self, g: int) -> Puzzle:
        if g < 0:
            raise IndexError(g)
        spec = self.specs[g % len(self.specs)]
        task = get_task(spec.task)
        for attempt in range(MAX_ATTEMPTS):
            seed = self.seed_start + g + attempt * RETRY_STRIDE
            inst = task.generate(spec.level, seed)
            digest = task.content_hash(inst)
            if digest not in self.blocked:
                return Puzzle(spec, seed, inst, digest)
        raise TaskError(f"training puzzle {g} of {spec}: {MAX_ATTEMPTS} candidates in a row were evaluation/test "
                        "puzzles; expected a level with more distinct puzzles than the blocked set")

    def take(self, start: int, count: int) -> list[Puzzle]:
        return [self[g] for g in range(start, start + count)]
