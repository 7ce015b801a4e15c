"""``task:level`` entries, the way run configs name the puzzles they train and evaluate on (both tracks).

``parse_level_specs(["maze:8", "frozenlake:vsp3", "sudoku"])`` resolves each entry against the task registry (the
task name to its versioned id, a missing level to the task's default level) and checks the level exists, so a
config with a typo fails when it is loaded, not hours into a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .base import TaskError, get_task

__all__ = ["LevelSpec", "parse_level_specs"]


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
