"""Reward shapers: group-aware changes to the verifier reward before the advantage.

- ``overlong_penalty`` (DAPO's soft overlong punishment, with ``L_max`` the completion budget and ``L_c`` the
  cache): 0 for ``|o| <= L_max − L_c``, ``((L_max − L_c) − |o|) / L_c`` inside the buffer (linear to −1), −1 for
  a completion that ran out of budget; times ``factor``.
- ``diversity_bonus`` (DIVER, adapted to puzzles): within a group, ``d_i = |U_i \\ ∪_{j≠i} U_j| / |U_i|`` over
  structural units of the parsed answers (``structure_units``: move trigrams for maze / frozenlake, undirected
  edges for TSP, (cell, digit) for sudoku, (position, label) for jigsaw; a character-trigram fallback for anything
  else), and ``b_i = scale · min(d_i, cap) · acc_group · correct_i`` while ``step < until_step`` (the reference's
  ``equ`` form with a clean schedule: its decay is negative early in training). ``when="all_correct"`` applies
  ``scale · (1 − sim_i)`` (sim = mean Jaccard similarity of units to the others) only to all-correct groups,
  which otherwise have zero advantage (the reference's ``belu`` form with Jaccard instead of BLEU).
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

from diffthinker.tasks.base import TaskError

__all__ = ["diversity_bonus", "overlong_penalty", "structure_units"]


def overlong_penalty(length: int, truncated: bool, max_len: int, cache_len: int, factor: float = 1.0) -> float:
    if cache_len < 1 or cache_len > max_len:
        raise TaskError(f"overlong cache_len {cache_len} must be in [1, max_completion_length={max_len}]")
    if truncated or length > max_len:
        return -1.0 * factor
    start = max_len - cache_len
    if length <= start:
        return 0.0
    return (start - length) / cache_len * factor


def structure_units(answer: Any, text: str = "") -> set:
    """The structural units of a parsed answer (see the module docstring); empty for a parse failure."""
    if answer is None:
        return set()
    moves = getattr(answer, "moves", None)
    if isinstance(moves, str):
        if len(moves) < 3:
            return {moves} if moves else set()
        return {moves[i:i + 3] for i in range(len(moves) - 2)}
    tour = getattr(answer, "tour", None)
    if isinstance(tour, (tuple, list)) and len(tour) > 1:
        return {tuple(sorted((tour[i], tour[i + 1]))) for i in range(len(tour) - 1)}
    grid = getattr(answer, "grid", None)          # sudoku: flat digits
    if isinstance(grid, (tuple, list)):
        return {(i, int(c)) for i, c in enumerate(grid)}
    labels = getattr(answer, "labels", None)      # jigsaw: label per position
    if isinstance(labels, (tuple, list)):
        return {(i, int(p)) for i, p in enumerate(labels)}
    return {text[i:i + 3] for i in range(max(0, len(text) - 2))}


def diversity_bonus(units: Sequence[set], correct: Sequence[bool], *, scale: float = 1.0, cap: float = 0.68,
                    when: Literal["correct", "all_correct"] = "correct") -> list[float]:
    """Per-member bonuses of one group (see the module docstring; the caller applies the step schedule)."""
    n = len(units)
    if n != len(correct):
        raise TaskError(f"diversity_bonus got {n} unit sets for {len(correct)} correctness flags")
    acc = sum(bool(c) for c in correct) / n if n else 0.0
    out = []
    if when == "correct":
        for i, u in enumerate(units):
            others = set().union(*(units[j] for j in range(n) if j != i)) if n > 1 else set()
            d = len(u - others) / len(u) if u else 0.0
            out.append(scale * min(d, cap) * acc * float(bool(correct[i])))
        return out
    if when == "all_correct":
        if not all(correct) or n < 2:
            return [0.0] * n
        for i, u in enumerate(units):
            sims = [len(u & units[j]) / len(u | units[j]) if (u | units[j]) else 1.0 for j in range(n) if j != i]
            out.append(scale * (1.0 - sum(sims) / len(sims)))
        return out
    raise TaskError(f"diversity 'when' {when!r} is invalid; expected 'correct' or 'all_correct'")
