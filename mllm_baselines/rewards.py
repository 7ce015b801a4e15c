"""Rewards from the puzzle layer's verifiers: a graded reward, and the same as a TRL-compatible reward function.

The graded reward of a completion for a puzzle (weights in ``RewardConfig``)::

    r = format * [the text parses]              (task.parse_text finds an answer)
      + valid  * [verdict.valid]               (obeys the rules, e.g. never crosses a wall)
      + progress * verdict.score               (the task's partial-progress grade in [0, 1])
      + correct * [verdict.correct]            (the benchmark's definition of solved)
      + optimal * [correct and optimal]        (shortest path / optimal tour; see ``is_optimal``)

With the defaults (format 0.1, valid 0, progress 0.3, correct 1, optimal 0) a solved puzzle scores 1.4 and a parse
failure 0. The validity term is off by default, measured: on 8x8 mazes that an SFT policy never solved, a 0.1
validity bonus made every RL preset collapse to one-move answers (a legal one-step walk outscored every longer
attempt); the progress term (how far along the shortest path the legal prefix gets) rewards going further instead.
Accuracy (what the benchmark and DAPO's dynamic sampling count) is ``verdict.correct`` alone.

``PuzzleReward`` is also a plain TRL reward function: ``reward(completions, **columns) -> list[float]`` with the
dataset columns ``task`` (task ids) and ``instance`` (the instance JSON, as ``diffthinker generate`` datasets store
it), so users of TRL's ``GRPOTrainer`` (or any other trainer) can train against our verifiers unchanged.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Sequence

from diffthinker.tasks import get_task
from diffthinker.tasks.base import Answer, Instance, ParseFailure, Task, TaskError, Verdict

__all__ = ["PuzzleReward", "RewardConfig", "ScoredCompletion", "is_optimal", "score_completion"]


@dataclass(frozen=True)
class RewardConfig:
    """Weights of the graded reward (see the module docstring)."""

    format: float = 0.1
    valid: float = 0.0
    progress: float = 0.3
    correct: float = 1.0
    optimal: float = 0.0

    def __post_init__(self) -> None:
        for k in ("format", "valid", "progress", "correct", "optimal"):
            v = getattr(self, k)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v != v:
                raise TaskError(f"reward weight {k!r} = {v!r} is invalid; expected a number")

    @property
    def max_reward(self) -> float:
        return self.format + self.valid + self.progress + self.correct + self.optimal


@dataclass(frozen=True)
class ScoredCompletion:
    """A completion's reward and the verdict behind it."""

    reward: float
    parsed: bool
    valid: bool
    correct: bool
    optimal: bool
    score: float
    answer: Answer | None
    reason: str


@functools.lru_cache(maxsize=4096)
def _shortest_moves(task_id: str, instance_json: str) -> int | None:
    task = get_task(task_id)
    moves = getattr(task.solve(task.instance_from_json(instance_json)), "moves", None)
    return len(moves) if isinstance(moves, str) else None


def is_optimal(task: Task, instance: Instance, answer: Answer, verdict: Verdict) -> bool:
    """Correct and optimal: the verifier's own ``optimal`` detail when it reports one (frozenlake), a move count
    equal to the exact solver's for move tasks (maze), else correctness (TSP's correct already means optimal)."""
    if not verdict.correct:
        return False
    if "optimal" in verdict.details:
        return bool(verdict.details["optimal"])
    moves = getattr(answer, "moves", None)
    if isinstance(moves, str):
        best = _shortest_moves(task.id, instance.to_json())
        return best is not None and len(moves) <= best
    return True


def score_completion(task: Task | str, instance: Instance, text: str,
                     config: RewardConfig = RewardConfig()) -> ScoredCompletion:
    """The graded reward of one completion ``text`` for ``instance``."""
    task = get_task(task) if isinstance(task, str) else task
    answer = task.parse_text(text if isinstance(text, str) else "", instance)
    if isinstance(answer, ParseFailure):
        return ScoredCompletion(0.0, False, False, False, False, 0.0, None, f"parse failure: {answer.reason}")
    verdict = task.verify(instance, answer)
    optimal = is_optimal(task, instance, answer, verdict)
    c = config
    reward = (c.format + c.valid * verdict.valid + c.progress * verdict.score + c.correct * verdict.correct
              + c.optimal * optimal)
    return ScoredCompletion(float(reward), True, verdict.valid, verdict.correct, optimal, float(verdict.score),
                            answer, verdict.reason)


def _completion_text(c: Any) -> str:
    """TRL passes plain strings, or conversational completions: a list of {"role", "content"} messages."""
    if isinstance(c, str):
        return c
    if isinstance(c, (list, tuple)) and c and isinstance(c[-1], dict):
        content = c[-1].get("content", "")
        if isinstance(content, list):  # multimodal content parts
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    raise TaskError(f"a completion must be a string or a list of chat messages, got {type(c).__name__}: {c!r:.100}")


class PuzzleReward:
    """The graded reward as a TRL reward function: ``reward(completions, task=[...], instance=[...]) -> floats``.

    ``task`` may be fixed at construction (then the ``task`` column is optional). ``instance`` entries are instance
    JSON strings, dicts, or ``Instance`` objects. Extra columns (``prompts``, ``completion_ids``, ``trainer_state``
    ...) are ignored, as TRL expects.
    """

    def __init__(self, task: str | None = None, config: RewardConfig = RewardConfig(), *,
                 instance_column: str = "instance", task_column: str = "task"):
        self.task = get_task(task).id if task is not None else None
        self.config = config
        self.instance_column = instance_column
        self.task_column = task_column
        self.__name__ = "puzzle_reward"  # TRL logs reward functions by __name__

    def _instance(self, task: Task, value: Any) -> Instance:
        if isinstance(value, Instance):
            return value
        if isinstance(value, str):
            return task.instance_from_json(value)
        if isinstance(value, dict):
            return task.instance_type.from_dict(value)
        raise TaskError(f"column {self.instance_column!r} holds {type(value).__name__}; expected instance JSON, a "
                        "dict, or an Instance")

    def __call__(self, completions: Sequence[Any], **columns: Any) -> list[float]:
        instances = columns.get(self.instance_column)
        if instances is None:
            raise TaskError(f"PuzzleReward needs the dataset column {self.instance_column!r} (instance JSON per row); "
                            f"got columns {sorted(columns)}")
        tasks = columns.get(self.task_column)
        if tasks is None:
            if self.task is None:
                raise TaskError(f"PuzzleReward needs a task: pass PuzzleReward(task=...) or a {self.task_column!r} "
                                "column")
            tasks = [self.task] * len(completions)
        if not (len(instances) == len(tasks) == len(completions)):
            raise TaskError(f"PuzzleReward got {len(completions)} completions, {len(instances)} instances and "
                            f"{len(tasks)} tasks; expected equal lengths")
        out = []
        for c, t, inst in zip(completions, tasks, instances):
            task = get_task(t)
            out.append(score_completion(task, self._instance(task, inst), _completion_text(c), self.config).reward)
        return out
