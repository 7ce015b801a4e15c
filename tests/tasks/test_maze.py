"""Maze task: conformance, generation, rules, rendering against the official PNGs, parsing, text, official folders."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from diffthinker.tasks import ParseFailure, TaskError, get_task
from diffthinker.tasks.conformance import check_task
from diffthinker.tasks.draw import RED
from diffthinker.tasks.gridpath import MOVES, cells_to_moves, moves_to_cells
from diffthinker.tasks.maze import LEVELS, WALL_BITS, MazeAnswer, MazeInstance
from diffthinker.tasks.perturb import blur, gaussian_noise, jpeg, model_like

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diffthinker_samples" / "Maze"
task = get_task("maze")
N, S, W, E = 1, 2, 4, 8  # wall bits of the official .txt format


def official_items():
    return [it for lv in ("8_test", "16_test") for it in task.read_official(FIXTURES / lv)]


# ------------------------------------------------------------------------------------------- contract
@pytest.mark.parametrize("level", ["4", "6", "8", "16", "32"])
def test_conformance(level):
    sizes = task.supported_sizes_for(level)
    if level == "32":
        sizes = (256, 512)  # keep the test fast; 1024 is covered by the property test at level 8
    check_task(task, levels=[level], seeds=(0, 1), sizes=sizes)


def test_attributes():
    assert task.id == "maze-v1"
    assert task.prompt == "Draw a continuous red line connecting the yellow dot to the blue dot, avoiding all walls."
    assert task.default_level == "8" and set(task.levels) == {"4", "6", "8", "16", "32"}
    assert task.supported_sizes_for("8") == (64, 128, 256, 512, 1024)
    assert task.supported_sizes_for("16") == (128, 256, 512, 1024)
    assert task.supported_sizes_for("32") == (256, 512, 1024)
    assert task.matches_official(FIXTURES / "8_test") and not task.matches_official(FIXTURES)


# ------------------------------------------------------------------------------------------- generation
def is_perfect(inst):
    """Connected and acyclic: n*n - 1 open passages and every cell reachable from (0, 0)."""
    n, w = inst.n, inst.walls
    passages = sum(1 for r in range(n) for c in range(n) for m in "DR" if not w[r][c] & WALL_BITS[m])
    seen, stack = {(0, 0)}, [(0, 0)]
    while stack:
        r, c = stack.pop()
        for m, (dr, dc) in MOVES.items():
            if not w[r][c] & WALL_BITS[m] and (r + dr, c + dc) not in seen:
                seen.add((r + dr, c + dc))
                stack.append((r + dr, c + dc))
    return passages == n * n - 1 and len(seen) == n * n


@pytest.mark.parametrize("level", ["4", "6", "8", "16", "32"])
def test_generation_is_deterministic_unique_perfect_and_meets_its_bin(level):
    seeds = range(6) if level == "32" else range(25)
    insts = [task.generate(level, s) for s in seeds]
    assert insts[0] == task.generate(level, 0)
    assert len({task.content_hash(i) for i in insts}) == len(insts)
    bins = set()
    for seed, inst in zip(seeds, insts):
        assert inst.n == LEVELS[level].n and inst.start != inst.end
        assert is_perfect(inst)
        min_len = task.min_len_for(level, seed)
        bins.add(min_len)
        assert len(task.shortest_path(inst)) >= min_len  # nodes, the published unit
    if level != "32":
        assert bins == set(LEVELS[level].min_lens)  # every bin is drawn
    assert LEVELS["8"].min_lens == (1, 6, 11, 16, 21) and LEVELS["16"].min_lens == (1, 9, 17, 25, 33)
    assert LEVELS["32"].min_lens == (1, 14, 27, 90)


def test_hardest_bins_are_hard():
    # Seeds whose drawn bin is the top one really have paths that long.
    for level in ("8", "16"):
        top = max(LEVELS[level].min_lens)
        seeds = [s for s in range(40) if task.min_len_for(level, s) == top][:3]
        assert seeds
        for s in seeds:
            assert len(task.shortest_path(task.generate(level, s))) >= top


# ------------------------------------------------------------------------------------------- rules
def tiny():
    """3x3 maze drawn as text:
    +---+---+---+
    | S     |   |
    +---+   +   +
    |       | E |       row 1: (1,0)-(1,1) open, (1,1)|(1,2) wall
    +   +---+   +
    |           |
    +---+---+---+
    """
    walls = ((N | W | S, N | E, N | E | W),
             (N | W, S | E, W | E),
             (W | S, N | S, S | E))
    return MazeInstance(n=3, start=(0, 0), end=(1, 2), walls=walls)


def test_tiny_maze_rules_and_scores():
    inst = tiny()
    best = task.solve(inst)
    assert best.moves == "RDLDRRU"
    v = task.verify(inst, best)
    assert v.correct and v.valid and v.score == 1.0
    # A detour that revisits cells still counts (any legal walk ending on the end).
    v = task.verify(inst, MazeAnswer("RDLRLDRRU"))
    assert v.correct and v.score == 1.0
    # Through a wall (from (0,0) down) and off the grid (up from the start).
    v = task.verify(inst, MazeAnswer("DRRU"))
    assert not v.valid and not v.correct and "wall" in v.reason and v.details["illegal_move"] == 0
    v = task.verify(inst, MazeAnswer("U"))
    assert not v.valid and "off the grid" in v.reason and v.score == 0.0
    # Passing the end and stopping elsewhere is not correct; partial credit grows with progress.
    v = task.verify(inst, MazeAnswer("RDLDRRUD"))
    assert v.valid and not v.correct and v.score == pytest.approx(0.9)
    scores = [task.verify(inst, MazeAnswer(best.moves[:k])).score for k in range(len(best.moves))]
    assert scores == sorted(scores) and scores[0] == 0.0 and max(scores) < 1.0
    assert task.verify(inst, ParseFailure("x")).score == 0.0
    with pytest.raises(TaskError):
        task.verify(inst, "RDL")


def test_instances_and_answers_are_validated():
    inst = tiny()
    with pytest.raises(TaskError, match="disagree"):
        MazeInstance(n=3, start=(0, 0), end=(1, 2), walls=((N | W | S, N, N | E | W),) + inst.walls[1:])
    with pytest.raises(TaskError, match="border"):
        MazeInstance(n=3, start=(0, 0), end=(1, 2), walls=((W | S, N | E, N | E | W),) + inst.walls[1:])
    with pytest.raises(TaskError, match="outside"):
        MazeInstance(n=3, start=(0, 3), end=(1, 2), walls=inst.walls)
    with pytest.raises(TaskError, match="differ"):
        MazeInstance(n=3, start=(1, 2), end=(1, 2), walls=inst.walls)
    with pytest.raises(TaskError, match="0..15"):
        MazeInstance(n=3, start=(0, 0), end=(1, 2), walls=((16, N | E, N | E | W),) + inst.walls[1:])
    with pytest.raises(TaskError, match="U/D/L/R"):
        MazeAnswer("RDx")
    with pytest.raises(TaskError, match="missing"):
        MazeInstance.from_json('{"n": 3}')
    with pytest.raises(TaskError, match="unknown level"):
        task.generate("64", 0)
    with pytest.raises(TaskError, match="render size"):
        task.render(inst, size=4)


# ------------------------------------------------------------------------------------------- official samples
def test_render_reproduces_official_pngs_pixel_for_pixel():
    items = official_items()
    assert [it.item_id for it in items] == ["8_1_001", "8_21_003", "16_33_002"]
    for it in items:
        official = np.asarray(Image.open(it.problem_image).convert("RGB"))
        assert np.array_equal(np.asarray(task.render(it.instance)), official), it.item_id
        official = np.asarray(Image.open(it.solution_image).convert("RGB"))
        assert np.array_equal(np.asarray(task.render(it.instance, it.answer)), official), it.item_id


def test_official_solutions_verify_and_problems_do_not():
    for it in official_items():
        assert it.answer is not None and task.verify(it.instance, it.answer).correct
        assert task.solve(it.instance) == it.answer  # the official GT is the unique shortest path
        sol = Image.open(it.solution_image)
        assert task.verify(it.instance, task.parse(sol, it.instance)).correct, it.item_id
        assert task.verify(it.instance, task.parse(model_like(sol, seed=1), it.instance)).correct
        assert not task.verify(it.instance, task.parse(Image.open(it.problem_image), it.instance)).correct


def test_official_round_trip(tmp_path):
    items = sorted(official_items(), key=lambda it: it.item_id)  # read_official sorts by id
    out = tmp_path / "Maze" / "8_test"
    task.write_official([(it.item_id, it.instance, it.answer) for it in items], out)
    again = task.read_official(out)
    assert [(a.item_id, a.level, a.instance, a.answer) for a in again] == \
        [(b.item_id, b.level, b.instance, b.answer) for b in items]
    for a, b in zip(again, items):
        assert a.problem_image.read_bytes() and np.array_equal(np.asarray(Image.open(a.problem_image)),
                                                               np.asarray(Image.open(b.problem_image)))
        assert a.solution_image is not None
    # Same text format as the official files (whitespace aside).
    src = (FIXTURES / "8_test" / "8_1_001.txt").read_text().split()
    assert (out / "8_1_001.txt").read_text().split() == src
    assert json.loads((out / "path.json").read_text()) == {it.item_id: it.answer.moves for it in items}


def test_read_official_rejects_other_layouts(tmp_path):
    with pytest.raises(TaskError, match="not found"):
        task.read_official(tmp_path / "nope")
    with pytest.raises(TaskError, match="no <id>.txt"):
        task.read_official(tmp_path)
    tsp = FIXTURES.parent / "TSP" / "12_test"
    with pytest.raises(TaskError):
        task.read_official(tsp)
    bad = tmp_path / "bad"
    shutil.copytree(FIXTURES / "8_test", bad)
    (bad / "path.json").write_text('{"8_1_001": "UUXX"}')
    with pytest.raises(TaskError, match="8_1_001"):
        task.read_official(bad)
    (bad / "path.json").unlink()
    assert all(it.answer is None for it in task.read_official(bad))
    (bad / "8_1_001.png").unlink()
    with pytest.raises(TaskError, match="problem image"):
        task.read_official(bad)


# ------------------------------------------------------------------------------------------- parsing
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.integers(64, 1024),
       kind=st.sampled_from(["model_like", "jpeg", "noise", "blur", "rescale"]))
def test_parser_survives_perturbations(seed, size, kind):
    inst = task.generate("8", seed)
    ans = task.solve(inst)
    img = task.render(inst, ans, size=size)
    if kind == "model_like":
        img = model_like(img, seed=seed)
    elif kind == "jpeg":
        img = jpeg(img, 75)
    elif kind == "noise":
        img = gaussian_noise(img, 8, seed)
    elif kind == "blur":
        img = blur(img, 0.6)
    else:
        img = model_like(task.render(inst, ans, size=512), seed=seed, size=size)
    parsed = task.parse(img, inst)
    assert task.verify(inst, parsed).correct, (parsed, size, kind)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), size=st.sampled_from([256, 300, 512, 777, 1024]))
def test_parser_survives_perturbations_at_32(seed, size):
    inst = task.generate("32", seed)
    img = model_like(task.render(inst, task.solve(inst), size=size), seed=seed)
    assert task.verify(inst, task.parse(img, inst)).correct


def draw_cells(img, n, cells, width_frac=0.25, offset=(0.0, 0.0)):
    size = img.size[0]
    cs = size / n
    pts = [((c + 0.5 + offset[1]) * cs, (r + 0.5 + offset[0]) * cs) for r, c in cells]
    ImageDraw.Draw(img).line(pts, fill=RED, width=max(1, int(width_frac * cs)), joint="curve")
    return img


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("width_frac,offset", [(0.4, (0.0, 0.0)), (0.25, (0.1, -0.1)), (0.4, (0.08, 0.08))])
def test_spill_over_still_verifies(seed, width_frac, offset):
    inst = task.generate("8", seed)
    cells = moves_to_cells(inst.start, task.solve(inst).moves)
    img = draw_cells(task.render(inst, size=512), inst.n, cells, width_frac, offset)
    assert task.verify(inst, task.parse(model_like(img, seed=seed), inst)).correct


def dead_end_branch(inst, path):
    """A path cell with an open passage to a cell off the path (the start of a dead-end corridor)."""
    on = set(path)
    for cell in path:
        for m, (dr, dc) in MOVES.items():
            nb = (cell[0] + dr, cell[1] + dc)
            if not inst.walls[cell[0]][cell[1]] & WALL_BITS[m] and nb not in on:
                return cell, nb
    return None


def through_wall(inst, path):
    """Index i and a cell next to path[i] behind a wall whose own BFS route to the end avoids path[:i+1]."""
    for i, cell in enumerate(path[:-1]):
        for m, (dr, dc) in MOVES.items():
            nb = (cell[0] + dr, cell[1] + dc)
            if (inst.walls[cell[0]][cell[1]] & WALL_BITS[m] and 0 <= nb[0] < inst.n and 0 <= nb[1] < inst.n
                    and nb != inst.end):
                rest = task.shortest_path(MazeInstance(inst.n, nb, inst.end, inst.walls))
                if not set(rest) & set(path[:i + 1]):
                    return path[:i + 1] + rest
    return None


# Seeds of level 8 whose path has >= 6 nodes, so that every mutation below has room to apply.
MUTATION_SEEDS = [s for s in range(40) if len(task.shortest_path(task.generate("8", s))) >= 6][:6]


@pytest.mark.parametrize("seed", MUTATION_SEEDS)
@pytest.mark.parametrize("size", [128, 512])
def test_mutations_never_verify(seed, size):
    inst = task.generate("8", seed)
    ans = task.solve(inst)
    path = task.shortest_path(inst)
    problem = task.render(inst, size=size)
    solution = task.render(inst, ans, size=size)
    cs = size // inst.n
    checked = 0
    # 1. one path cell (not an endpoint) painted back with the problem image's pixels.
    if len(path) > 2:
        r, c = path[len(path) // 2]
        holed = solution.copy()
        holed.paste(problem.crop((c * cs, r * cs, (c + 1) * cs, (r + 1) * cs)), (c * cs, r * cs))
        for img in (holed, model_like(holed, seed=seed)):
            assert not task.verify(inst, task.parse(img, inst)).correct
        checked += 1
    # 2. a branch into a dead-end corridor.
    branch = dead_end_branch(inst, path)
    if branch:
        img = draw_cells(solution.copy(), inst.n, list(branch))
        out = task.parse(model_like(img, seed=seed), inst)
        assert isinstance(out, ParseFailure) and not task.verify(inst, out).correct
        checked += 1
    # 3. a path drawn through a wall: parsed as drawn, then invalid.
    cells = through_wall(inst, path)
    if cells:
        bad = MazeAnswer(cells_to_moves(cells))
        img = task.render(inst, bad, size=size)
        parsed = task.parse(model_like(img, seed=seed), inst)
        assert parsed == bad
        v = task.verify(inst, parsed)
        assert not v.correct and not v.valid and "wall" in v.reason
        checked += 1
    assert checked == 3


def test_junk_and_tiny_images_fail_gracefully():
    inst = task.generate("8", 0)
    for img in (Image.new("RGB", (1, 1)), Image.new("RGB", (8, 8)), Image.new("RGB", (300, 200), RED),
                Image.new("L", (64, 64), 128), Image.new("RGBA", (64, 64), (255, 0, 0, 0))):
        assert not task.verify(inst, task.parse(img, inst)).correct


# ------------------------------------------------------------------------------------------- text side
def test_text_round_trips_and_junk():
    inst = task.generate("8", 3)
    ans = task.solve(inst)
    assert task.parse_text(task.answer_to_text(ans), inst) == ans
    assert task.parse_text(f"Let me think. Done.\nThe answer is <answer>{ans.moves}</answer>.") == ans
    spaced = ", ".join(ans.moves)
    assert task.parse_text(f"Moves: {spaced}") == ans
    assert task.parse_text("R -> D -> D") == MazeAnswer("RDD")
    assert task.parse_text("first try RRD, no wait: L L U") == MazeAnswer("LLU")  # the last run wins
    for junk in ("I cannot solve this.", "Done. Right, Left, Up.", "", "udlr", "URLs are DRY"):
        assert isinstance(task.parse_text(junk), ParseFailure), junk
    assert isinstance(task.parse_text(None), ParseFailure)
    text = task.to_text(inst)
    lines = text.splitlines()
    grid = lines[3:]
    assert len(grid) == 2 * inst.n + 1 and all(len(ln) == 4 * inst.n + 1 for ln in grid)
    assert f"row {inst.start[0]}, column {inst.start[1]}" in text
    assert grid[2 * inst.start[0] + 1][4 * inst.start[1] + 2] == "S"
    assert grid[2 * inst.end[0] + 1][4 * inst.end[1] + 2] == "E"
    # Every wall bit is visible in the drawing: an open E side is a space, a closed one a bar.
    for r in range(inst.n):
        for c in range(inst.n - 1):
            assert (grid[2 * r + 1][4 * c + 4] == "|") == bool(inst.walls[r][c] & E)
            assert (grid[2 * r + 2][4 * c + 1:4 * c + 4] == "---") == bool(inst.walls[r][c] & S)
