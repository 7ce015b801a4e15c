"""Test-time selection: which of N sampled candidates a solver answers with.

Rules (``SELECTION_RULES``), each a pure function of the candidates' parsed answers and verdicts:

- ``"verifier"``: the candidate ranked highest by (``verdict.valid``, ``verdict.score``), ties to the lowest
  index. ``valid`` and ``score`` are computed from the puzzle instance alone (the rules, e.g. a maze walk that
  crosses no wall; ``score`` grades progress, e.g. TSP ``optimum / length``, so the shortest valid tour wins).
  ``verdict.correct`` is never read: it encodes the benchmark's definition of solved and is reserved for scoring.
  When no candidate is valid, the same ranking still picks the one with the most partial progress, and the pick
  is marked as a fallback.
- ``"vote"``: the most common parsed answer (self-consistency / majority vote; answers compared by their
  canonical JSON); ties go to the answer that appeared first; the lowest index holding it is returned. Parse
  failures do not vote. When nothing parsed, candidate 0 is returned as a fallback.
- ``"first"``: candidate 0, the single-sample baseline (so N samples with ``first`` equal N=1).

``select`` returns the chosen index, or None for an empty candidate list; ``select_with_reason`` also says whether
the rule found what it looks for (``fallback=False``) or fell back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from .tasks.base import Answer, ParseFailure, TaskError, Verdict

__all__ = ["SELECTION_RULES", "check_rule", "select", "select_with_reason"]

SELECTION_RULES = ("verifier", "vote", "first")


class _Scored(Protocol):
    """What selection reads from a candidate (``diffthinker.inference.Candidate`` has these)."""

    answer: Answer | ParseFailure
    verdict: Verdict


def check_rule(rule: Any) -> str:
    if rule not in SELECTION_RULES:
        raise TaskError(f"unknown selection rule {rule!r}; expected one of {list(SELECTION_RULES)}")
    return rule


def _answer_key(answer: Answer | ParseFailure) -> str | None:
    return None if isinstance(answer, ParseFailure) else answer.to_json()


def select_with_reason(candidates: Sequence[_Scored], rule: str) -> tuple[int | None, bool]:
    """``(index, fallback)``: the index chosen by ``rule`` (None if there are no candidates) and whether the rule
    fell back because nothing qualified (no valid candidate for ``verifier``, no parsed answer for ``vote``)."""
    check_rule(rule)
    if not candidates:
        return None, False
    if rule == "first":
        return 0, False
    if rule == "verifier":
        # max() keeps the first of equal keys, so ties go to the lowest index.
        best = max(range(len(candidates)),
                   key=lambda i: (bool(candidates[i].verdict.valid), float(candidates[i].verdict.score)))
        return best, not candidates[best].verdict.valid
    keys = [_answer_key(c.answer) for c in candidates]
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return 0, True
    top = max(counts.values())
    # the first index whose answer has the top count: ties between answers go to the earliest one
    return next(i for i, k in enumerate(keys) if k is not None and counts[k] == top), False


def select(candidates: Sequence[_Scored], rule: str) -> int | None:
    """The index of the candidate ``rule`` picks (see the module docstring), None for no candidates."""
    return select_with_reason(candidates, rule)[0]
