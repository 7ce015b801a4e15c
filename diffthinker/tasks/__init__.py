"""The shared puzzle layer: one module per task, each ending in a `register_task(...)` line.

Importing this package registers the built-in tasks. Nothing here imports torch.
"""

from .base import (Answer, Instance, OfficialItem, ParseFailure, Task, TaskError, Verdict, get_task, list_tasks,
                   register_task, task_rng)

# Registration happens at import of each task module.
from . import frozenlake, jigsaw, maze, sudoku, tsp  # noqa: E402,F401  isort: skip

__all__ = ["Answer", "Instance", "OfficialItem", "ParseFailure", "Task", "TaskError", "Verdict", "get_task",
           "list_tasks", "register_task", "task_rng"]
