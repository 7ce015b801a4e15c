"""The registry-wide conformance check (like gymnasium's check_env) over every registered task."""

import pytest

from diffthinker.tasks import get_task, list_tasks
from diffthinker.tasks.conformance import check_task

EXPECTED_TASKS = {"maze-v1", "tsp-v1", "sudoku-v1", "jigsaw-v1", "frozenlake-v1"}


def test_all_five_tasks_are_registered():
    assert EXPECTED_TASKS <= set(list_tasks())


@pytest.mark.parametrize("task_id", sorted(EXPECTED_TASKS))
def test_task_conforms_at_default_level(task_id):
    check_task(get_task(task_id), seeds=(0, 1))


@pytest.mark.parametrize("task_id", sorted(EXPECTED_TASKS))
def test_oracle_scores_one_on_every_level(task_id):
    task = get_task(task_id)
    for level in task.levels:
        for seed in (0, 1):
            inst = task.generate(level, seed)
            verdict = task.verify(inst, task.solve(inst))
            assert verdict.correct and verdict.valid and verdict.score == 1.0, (level, seed, verdict)
