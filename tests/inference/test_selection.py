"""Selection rules on hand-made candidate sets: verifier (valid, best score, never `correct`), vote, first."""

from __future__ import annotations

import pytest

from diffthinker.inference import SolveResult
from diffthinker.selection import SELECTION_RULES, select, select_with_reason
from diffthinker.tasks import get_task
from diffthinker.tasks.base import ParseFailure, TaskError, Verdict

from .helpers import cand

maze = get_task("maze")
tsp = get_task("tsp")


def maze_cands(moves_list):
    inst = maze.generate("4", 0)
    out = []
    for k, moves in enumerate(moves_list):
        answer = ParseFailure("no path drawn") if moves is None else maze.answer_type(moves=moves)
        out.append(cand(k, answer, maze.verify(inst, answer)))
    return inst, out


def test_rules_listed():
    assert SELECTION_RULES == ("verifier", "vote", "first")


def test_all_invalid_verifier_falls_back_to_most_progress():
    inst = maze.generate("4", 0)
    sol = maze.solve(inst).moves
    # an illegal walk whose legal prefix gets partway (partial score > 0), and two parse failures
    bad_prefix = sol[:2] + {"U": "D", "D": "U", "L": "R", "R": "L"}[sol[2]] * 8
    _, cands = maze_cands([None, bad_prefix, None])
    assert not any(c.verdict.valid for c in cands)
    assert cands[1].verdict.score > 0
    assert select_with_reason(cands, "verifier") == (1, True)
    # nothing valid and no progress anywhere: the lowest index
    _, cands = maze_cands([None, None, None])
    assert select_with_reason(cands, "verifier") == (0, True)


def test_verifier_prefers_valid_then_score_ties_to_lowest_index():
    inst = maze.generate("4", 0)
    sol = maze.solve(inst).moves
    _, cands = maze_cands([None, sol[:1], sol, sol[:2], sol])
    assert [c.verdict.valid for c in cands] == [False, True, True, True, True]
    # two complete walks (score 1) at 2 and 4: the first wins
    assert select_with_reason(cands, "verifier") == (2, False)
    # valid beats a higher-scoring invalid candidate
    hand = [cand(0, maze.answer_type(moves="U"), Verdict(False, False, 0.8, "illegal")),
            cand(1, maze.answer_type(moves="D"), Verdict(False, True, 0.1, "legal, short"))]
    assert select(hand, "verifier") == 1


def test_verifier_never_reads_correct():
    # `correct` is the benchmark's label; selection must rank by (valid, score) only
    hand = [cand(0, maze.answer_type(moves="U"), Verdict(True, True, 0.5, "labelled correct")),
            cand(1, maze.answer_type(moves="D"), Verdict(False, True, 0.9, "higher score"))]
    assert select(hand, "verifier") == 1


def test_verifier_picks_the_shortest_valid_tsp_tour():
    for seed in range(20):  # an instance where the index-order tour is valid but not optimal
        inst = tsp.generate("6", seed)
        if not tsp.verify(inst, tsp.answer_type(tour=tuple(range(inst.n)))).correct:
            break
    opt = tsp.solve(inst).tour
    tours = [tuple(range(inst.n)),                      # valid, longer
             (0, 0) + tuple(range(2, inst.n)),          # invalid: repeats a city
             tuple(reversed(opt)),                       # optimal (reversed)
             tuple(range(inst.n))[::-1],                # valid, longer
             opt]                                        # optimal, later index
    cands = []
    for k, tour in enumerate(tours):
        answer = tsp.answer_type(tour=tour)
        cands.append(cand(k, answer, tsp.verify(inst, answer)))
    lengths = [c.verdict.details.get("length") for c in cands]
    assert cands[1].verdict.valid is False and lengths[0] > lengths[2]
    assert select(cands, "verifier") == 2
    # without the optimal tours, the shorter of the two valid suboptimal ones
    rest = [cands[0], cands[1], cands[3]]
    pick = select(rest, "verifier")
    assert rest[pick].verdict.details["length"] == min(lengths[0], lengths[3])


def test_vote_majority_ties_and_parse_failures():
    inst = maze.generate("4", 0)
    sol = maze.solve(inst).moves
    _, cands = maze_cands([None, sol[:1], sol, sol, sol[:1], sol, None, None])
    # parse failures (3 of them) do not vote; sol has 3 votes, sol[:1] has 2
    assert select_with_reason(cands, "vote") == (2, False)
    # a tie between two answers: the one that appeared first, at its lowest index
    _, cands = maze_cands([None, sol[:1], sol, sol, sol[:1]])
    assert select_with_reason(cands, "vote") == (1, False)
    # vote ignores validity: a wrong majority wins
    _, cands = maze_cands([sol, sol[:1], sol[:1]])
    assert select(cands, "vote") == 1
    # nothing parsed: fall back to the first candidate
    _, cands = maze_cands([None, None])
    assert select_with_reason(cands, "vote") == (0, True)


def test_first_and_empty_and_unknown():
    inst = maze.generate("4", 0)
    _, cands = maze_cands([None, maze.solve(inst).moves])
    assert select_with_reason(cands, "first") == (0, False)
    for rule in SELECTION_RULES:
        assert select([], rule) is None
    with pytest.raises(TaskError, match=r"unknown selection rule 'best'.*verifier"):
        select(cands, "best")


def test_solve_result_selected_candidate():
    inst = maze.generate("4", 0)
    _, cands = maze_cands([None, maze.solve(inst).moves])
    res = SolveResult("x", maze.id, "4", cands, selected=1, seconds=0.1)
    assert res.selected_candidate is cands[1] and res.correct
    assert SolveResult("x", maze.id, "4", [], selected=None, seconds=0.0).selected_candidate is None
