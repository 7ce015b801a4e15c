"""Tests of the sudoku task: generation, exact solver, rendering (official pixels), parsing, verification, text,
official folders."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from diffthinker.tasks import ParseFailure, TaskError, draw, get_task, perturb
from diffthinker.tasks.conformance import check_task
from diffthinker.tasks.sudoku import (LEVELS, SudokuAnswer, SudokuInstance, SudokuTask, _line_widths,
                                      count_solutions, solve_grid)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "diffthinker_samples"
SUDOKU_45 = FIXTURES / "Sudoku" / "45_test"

task: SudokuTask = get_task("sudoku")  # type: ignore[assignment]


def _official_items():
    sols = json.loads((SUDOKU_45 / "solutions.json").read_text())
    out = []
    for txt in sorted(SUDOKU_45.glob("*.txt")):
        givens = tuple(int(c) for c in txt.read_text().strip())
        out.append((txt.stem, SudokuInstance(9, 3, 3, givens), SudokuAnswer(tuple(int(c) for c in sols[txt.stem]))))
    return out


def _copy_fixture(dst: Path) -> Path:
    # File by file: the fixtures are read-only and copytree would copy that mode.
    dst.mkdir(parents=True)
    for f in SUDOKU_45.iterdir():
        shutil.copyfile(f, dst / f.name)
    return dst


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int16)


# ------------------------------------------------------------------------------------------------ contract
def test_conformance():
    check_task(task, levels=["4x4-6", "4x4-8", "45", "35"])


def test_attributes_and_levels():
    assert task.id == "sudoku-v1"
    assert task.prompt == "Solve this Sudoku puzzle."
    assert {"45", "40", "35", "4x4-8", "4x4-6"} <= set(task.levels)
    assert task.default_level in ("4x4-8", "4x4-6")
    for name in ("45", "40", "35"):
        cfg = LEVELS[name]
        assert (cfg.box_rows, cfg.box_cols, cfg.clues) == (3, 3, int(name))
    assert (LEVELS["4x4-8"].size, LEVELS["4x4-8"].clues) == (4, 8)
    assert (LEVELS["4x4-6"].size, LEVELS["4x4-6"].clues) == (4, 6)
    assert task.matches_official(SUDOKU_45)
    assert not task.matches_official(FIXTURES / "Maze" / "8_test")


@pytest.mark.parametrize("level", ["4x4-6", "4x4-8", "45", "40", "35"])
def test_generation_deterministic_unique_and_at_level(level):
    cfg = LEVELS[level]
    seeds = range(8)
    insts = [task.generate(level, s) for s in seeds]
    assert insts == [task.generate(level, s) for s in seeds]
    assert len(set(insts)) == len(insts), "distinct seeds should give distinct puzzles"
    for inst in insts:
        assert (inst.size, inst.box_rows, inst.box_cols) == (cfg.size, cfg.box_rows, cfg.box_cols)
        assert inst.clues == cfg.clues
        assert count_solutions(inst.givens, inst.box_rows, inst.box_cols, limit=2) == 1
        sol = task.solve(inst).grid
        assert all(g in (0, s) for g, s in zip(inst.givens, sol))
        assert SudokuInstance.from_json(inst.to_json()) == inst


def test_generation_rejects_bad_arguments():
    with pytest.raises(TaskError, match="unknown level"):
        task.generate("no-such-level", 0)
    with pytest.raises(TaskError, match="seed"):
        task.generate("35", -1)


# ------------------------------------------------------------------------------------------------ solver
def test_solver_is_exact():
    assert count_solutions([0] * 16, 2, 2, limit=10_000) == 288  # the number of 4x4 sudoku grids
    for item_id, inst, answer in _official_items():
        assert task.solve(inst) == answer, item_id
        assert count_solutions(inst.givens) == 1
    # Consistent givens with no completion: r1c1 sees 1, 2 in its row and 3, 4 in its column.
    dead = (0, 1, 2, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0)
    assert solve_grid(dead, 2, 2) is None and count_solutions(dead, 2, 2) == 0
    with pytest.raises(TaskError, match="no solution"):
        task.solve(SudokuInstance(4, 2, 2, dead))
    # An empty 9x9 grid has many solutions; the counter stops at its limit.
    assert count_solutions([0] * 81, limit=2) == 2
    # Hard inputs stay fast (hidden singles, two-way splits): Inkala's "hardest" puzzle, and Norvig's "hard1"
    # (several solutions; plain cell-first backtracking needs tens of seconds on it).
    inkala = tuple(int(c) for c in "800000000003600000070090200050007000000045700000100030001000068008500010090000400")
    sol = solve_grid(inkala)
    assert sol is not None and count_solutions(inkala) == 1
    assert task.verify(SudokuInstance(9, 3, 3, inkala), SudokuAnswer(sol)).correct
    hard1 = ".....6....59.....82....8....45........3........6..3.54...325..6.................."
    assert count_solutions([0 if c == "." else int(c) for c in hard1], limit=2) == 2


def test_instance_validation():
    good = task.generate("4x4-8", 0)
    with pytest.raises(TaskError, match="16 entries"):
        SudokuInstance(4, 2, 2, good.givens[:-1])
    with pytest.raises(TaskError, match="digits 0..4"):
        SudokuInstance(4, 2, 2, (5,) + good.givens[1:])
    with pytest.raises(TaskError, match="twice in row 1"):
        SudokuInstance(4, 2, 2, (1, 1) + (0,) * 14)
    with pytest.raises(TaskError, match="box_rows"):
        SudokuInstance(4, 3, 3, good.givens)
    with pytest.raises(TaskError, match="ints"):
        SudokuInstance(4, 2, 2, ("1",) * 16)
    with pytest.raises(TaskError):
        SudokuInstance.from_json('{"size": 4, "box_rows": 2, "box_cols": 2}')


# ------------------------------------------------------------------------------------------------ rendering
def test_render_reproduces_official_pngs():
    for item_id, inst, answer in _official_items():
        problem = _arr(task.render(inst))
        solution = _arr(task.render(inst, answer))
        assert np.array_equal(problem, _arr(draw.load_image(SUDOKU_45 / f"{item_id}.png"))), item_id
        assert np.array_equal(solution, _arr(draw.load_image(SUDOKU_45 / f"{item_id}_solution.png"))), item_id


def _reference_render(size, n, box_rows, box_cols, digits):
    """The published renderer written plainly with ImageDraw.text (the task stamps cached glyphs instead)."""
    img = Image.new("RGB", (size, size), draw.WHITE)
    canvas = ImageDraw.Draw(img)
    cs = size / n
    thin, thick = _line_widths(size)
    for i in range(n + 1):
        canvas.line([(0, i * cs), (size, i * cs)], fill=draw.BLACK, width=thick if i % box_rows == 0 else thin)
        canvas.line([(i * cs, 0), (i * cs, size)], fill=draw.BLACK, width=thick if i % box_cols == 0 else thin)
    fnt = draw.font("Lato-Medium", max(1, int(0.7 * cs)))
    for k, v in enumerate(digits):
        if v:
            x0, y0, x1, y1 = canvas.textbbox((0, 0), str(v), font=fnt)
            i, j = divmod(k, n)
            canvas.text((j * cs + (cs - (x1 - x0)) / 2, i * cs + (cs - (y1 - y0)) / 2), str(v), fill=draw.BLACK,
                        font=fnt)
    return img


@pytest.mark.parametrize("size", [16, 64, 97, 256, 511, 512, 1024])
def test_glyph_stamping_equals_imagedraw_text(size):
    rng = random.Random(size)
    for level in ("35", "4x4-6"):
        inst = task.generate(level, size)
        grid = tuple(rng.randint(0, inst.size) for _ in inst.givens)
        ours = _arr(task.render(inst, SudokuAnswer(grid), size=size))
        ref = _arr(_reference_render(size, inst.size, inst.box_rows, inst.box_cols, grid))
        assert np.array_equal(ours, ref), (level, size)


def test_render_native_geometry_and_arguments():
    assert _line_widths(512) == (1, 3)
    assert _line_widths(64) == (1, 2) and _line_widths(1024) == (2, 6)
    inst = task.generate("4x4-8", 0)
    img = _arr(task.render(inst, size=1024))
    # Crisp native geometry: at 1024 px the box border (x = 512) is 6 px of pure black, a cell border
    # (x = 256) 2 px, with pure white beside them (not a blurred upscaled 512 px render).
    row = img[20, :, 0]
    assert (row[510:516] == 0).all() and row[509] == 255 and row[516] == 255
    assert (row[256:258] == 0).all() and row[255] == 255 and row[258] == 255
    small = _arr(task.render(inst, size=64))
    assert small.shape == (64, 64, 3) and (small[:, 32] == 0).sum() >= 3 * 64
    with pytest.raises(TaskError):
        task.render(inst, size=8)
    with pytest.raises(TaskError):
        task.render(inst, style="photo")
    with pytest.raises(TaskError):
        task.render(inst, SudokuAnswer((1,) * 15))


# ------------------------------------------------------------------------------------------------ parse/verify
def test_official_images_verify():
    for item_id, inst, answer in _official_items():
        sol_img = draw.load_image(SUDOKU_45 / f"{item_id}_solution.png")
        parsed = task.parse(sol_img, inst)
        assert parsed == answer
        assert task.verify(inst, parsed).correct
        prob = task.parse(draw.load_image(SUDOKU_45 / f"{item_id}.png"), inst)
        assert isinstance(prob, SudokuAnswer) and prob.grid == inst.givens
        verdict = task.verify(inst, prob)
        assert not verdict.correct and not verdict.valid and verdict.score == 0.0


def _solution_image(level, seed, size):
    inst = task.generate(level, seed)
    return inst, task.solve(inst), task.render(inst, task.solve(inst), size=size)


@settings(max_examples=15, deadline=None)
@given(level=st.sampled_from(["4x4-6", "4x4-8"]), size=st.integers(64, 1024), seed=st.integers(0, 10_000),
       rescaled=st.booleans())
def test_parse_survives_perturbations_4x4(level, size, seed, rescaled):
    inst, answer, _ = _solution_image(level, seed, 512 if rescaled else size)
    img = task.render(inst, answer, size=512 if rescaled else size)
    noisy = perturb.model_like(img, seed, size=size)
    parsed = task.parse(noisy, inst)
    assert parsed == answer
    assert task.verify(inst, parsed).correct


@settings(max_examples=15, deadline=None)
@given(level=st.sampled_from(["45", "35"]), size=st.integers(128, 1024), seed=st.integers(0, 10_000),
       rescaled=st.booleans())
def test_parse_survives_perturbations_9x9(level, size, seed, rescaled):
    # 9x9 glyphs are ~4 px tall at 64 px: clean renders parse there (conformance), noisy ones from 128 px up.
    inst, answer, _ = _solution_image(level, seed, 512)
    img = task.render(inst, answer, size=512 if rescaled else size)
    parsed = task.parse(perturb.model_like(img, seed, size=size), inst)
    assert parsed == answer
    assert task.verify(inst, parsed).correct


@settings(max_examples=10, deadline=None)
@given(dx=st.integers(-6, 6), dy=st.integers(-6, 6), seed=st.integers(0, 1000))
def test_parse_tolerates_global_shifts(dx, dy, seed):
    inst = task.generate("35", seed)
    answer = task.solve(inst)
    img = task.render(inst, answer)
    shifted = Image.new("RGB", img.size, draw.WHITE)
    shifted.paste(img, (dx, dy))
    parsed = task.parse(perturb.model_like(shifted, seed), inst)
    assert parsed == answer


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 1000))
def test_parse_tolerates_glyphs_moved_independently(seed):
    # Each glyph moved by up to 2 px on its own, as a generated image may place them.
    inst = task.generate("45", seed)
    answer = task.solve(inst)
    img = task.render(inst, answer)
    out = img.copy()
    rng = random.Random(seed)
    for k in range(81):
        x0, y0, x1, y1 = _cell_box(k, 9, 512)
        crop = img.crop((x0 + 3, y0 + 3, x1 - 3, y1 - 3))
        out.paste(draw.WHITE, (x0, y0, x1, y1))
        out.paste(crop, (x0 + 3 + rng.randint(-2, 2), y0 + 3 + rng.randint(-2, 2)))
    parsed = task.parse(perturb.model_like(out, seed), inst)
    assert parsed == answer


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 1000), size=st.sampled_from([128, 256, 512, 1024]))
def test_problem_image_never_verifies_under_perturbation(seed, size):
    inst = task.generate("40", seed)
    parsed = task.parse(perturb.model_like(task.render(inst, size=size), seed), inst)
    assert isinstance(parsed, SudokuAnswer) and parsed.grid == inst.givens
    assert not task.verify(inst, parsed).valid


def _cell_box(k, n, size):
    cs = size / n
    i, j = divmod(k, n)
    return int(j * cs) + 3, int(i * cs) + 3, int((j + 1) * cs) - 2, int((i + 1) * cs) - 2


@pytest.mark.parametrize("level,seed", [("45", 0), ("35", 1), ("4x4-6", 2)])
def test_mutations_never_verify(level, seed):
    inst = task.generate(level, seed)
    answer = task.solve(inst)
    n = inst.size
    rng = random.Random(seed)
    blanks = [k for k, v in enumerate(inst.givens) if not v]
    givens = [k for k, v in enumerate(inst.givens) if v]
    for k in rng.sample(blanks, 2) + rng.sample(givens, 1):
        wrong = rng.choice([d for d in range(1, n + 1) if d != answer.grid[k]])
        # (a) re-render the solution with one cell changed: it reads back as drawn and does not verify.
        grid = list(answer.grid)
        grid[k] = wrong
        img = task.render(inst, SudokuAnswer(tuple(grid)))
        for candidate in (img, perturb.model_like(img, k)):
            parsed = task.parse(candidate, inst)
            assert isinstance(parsed, SudokuAnswer) and parsed.grid[k] == wrong
            assert not task.verify(inst, parsed).correct
        # (b) paint a different glyph (another weight of the font) over a white-out of one cell.
        img = task.render(inst, answer)
        canvas = ImageDraw.Draw(img)
        box = _cell_box(k, n, 512)
        canvas.rectangle(box, fill=draw.WHITE)
        fnt = draw.font("Lato-Bold", int(0.7 * 512 / n))
        canvas.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), str(wrong), fill=draw.BLACK, font=fnt,
                    anchor="mm")
        parsed = task.parse(perturb.model_like(img, k), inst)
        assert isinstance(parsed, SudokuAnswer) and parsed.grid[k] in (wrong, 0)
        assert not task.verify(inst, parsed).correct
        # (c) erase one digit: the answer is incomplete.
        img = task.render(inst, answer)
        ImageDraw.Draw(img).rectangle(_cell_box(k, n, 512), fill=draw.WHITE)
        parsed = task.parse(img, inst)
        assert parsed.grid[k] == 0
        verdict = task.verify(inst, parsed)
        assert not verdict.valid and verdict.score < 1.0


@pytest.mark.parametrize("size", [256, 512])
def test_overlaid_glyph_is_rejected(size):
    # A second glyph painted over a correct one must not read as the correct digit. (An 8 hides a 3 or a 5
    # drawn over it, so the overlaid glyph here is a 1, or a 7 over a 1.)
    inst = task.generate("45", 4)
    answer = task.solve(inst)
    base = _arr(task.render(inst, answer, size=size))
    for k in range(0, 81, 4):
        extra = 7 if answer.grid[k] == 1 else 1
        glyph = _arr(task.render(inst, SudokuAnswer(tuple(extra if i == k else 0 for i in range(81))), size=size))
        img = Image.fromarray(np.minimum(base, glyph).astype(np.uint8))
        parsed = task.parse(perturb.model_like(img, k), inst)
        assert isinstance(parsed, SudokuAnswer) and parsed.grid[k] != answer.grid[k], k
        assert not task.verify(inst, parsed).correct


def test_junk_images():
    inst = task.generate("35", 0)
    black = task.parse(Image.new("RGB", (512, 512), draw.BLACK), inst)
    assert isinstance(black, ParseFailure)
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8))
    out = task.parse(noise, inst)
    assert isinstance(out, ParseFailure) or not task.verify(inst, out).correct
    white = task.parse(Image.new("RGB", (300, 300), draw.WHITE), inst)
    assert isinstance(white, SudokuAnswer) and white.grid == (0,) * 81
    assert isinstance(task.parse(Image.new("RGB", (4, 4)), inst), ParseFailure)


def test_verify_scoring():
    inst = task.generate("4x4-6", 7)
    sol = task.solve(inst).grid
    blanks = [k for k, v in enumerate(inst.givens) if not v]
    good = task.verify(inst, SudokuAnswer(sol))
    assert good.correct and good.valid and good.score == 1.0 and good.details["matches_solution"]
    # Half the blanks wrong (swapped to another digit): score = right blanks / blanks.
    grid = list(sol)
    for k in blanks[: len(blanks) // 2]:
        grid[k] = sol[k] % 4 + 1
    v = task.verify(inst, SudokuAnswer(tuple(grid)))
    assert not v.correct and not v.valid
    assert v.score == pytest.approx((len(blanks) - len(blanks) // 2) / len(blanks))
    # The givens themselves, unfilled.
    assert task.verify(inst, SudokuAnswer(inst.givens)).score == 0.0
    # An altered given keeps the score below 1 even if every blank is right.
    grid = list(sol)
    g = next(k for k, v in enumerate(inst.givens) if v)
    grid[g] = sol[g] % 4 + 1
    v = task.verify(inst, SudokuAnswer(tuple(grid)))
    assert not v.valid and v.details["altered_givens"] == 1 and v.score < 1.0
    # Wrong length / out of range / a ParseFailure.
    assert not task.verify(inst, SudokuAnswer(sol[:-1])).valid
    assert not task.verify(inst, SudokuAnswer((9,) + sol[1:])).valid
    assert task.verify(inst, ParseFailure("x")).score == 0.0
    with pytest.raises(TaskError):
        task.verify(inst, "1234")  # type: ignore[arg-type]
    # A puzzle with several solutions: any valid completion is correct (the sudoku rule).
    empty = SudokuInstance(4, 2, 2, (0,) * 16)
    other = (2, 1, 4, 3, 4, 3, 2, 1, 1, 2, 3, 4, 3, 4, 1, 2)
    assert other != task.solve(empty).grid
    v = task.verify(empty, SudokuAnswer(other))
    assert v.correct and v.score == 1.0 and not v.details["matches_solution"]


# ------------------------------------------------------------------------------------------------ text
def test_text_round_trips_and_junk():
    inst = task.generate("35", 2)
    text = task.to_text(inst)
    lines = text.split("\n")
    assert len(lines) == 9 and all(len(line) == 9 for line in lines)
    assert text.count(".") == 81 - 35
    sol = task.solve(inst)
    out = task.answer_to_text(sol)
    assert out.count("\n") == 8 and task.parse_text(out, inst) == sol
    # Separators and prose are ignored, the last 81 digits count (a restated puzzle before does not matter).
    framed = "Puzzle:\n" + text.replace(".", "0") + "\nSolution:\n" + "\n".join(
        " | ".join(" ".join(line[i:i + 3]) for i in (0, 3, 6)) for line in out.split("\n")) + "\nDone."
    assert task.parse_text(framed, inst) == sol
    assert task.parse_text(out) == sol  # no instance: 81 digits -> 9x9
    assert isinstance(task.parse_text(out[:-3], inst), ParseFailure)
    assert isinstance(task.parse_text("I cannot solve this.", inst), ParseFailure)
    assert isinstance(task.parse_text("", inst), ParseFailure)
    small = task.generate("4x4-8", 1)
    small_sol = task.solve(small)
    assert task.parse_text("answer: " + task.answer_to_text(small_sol)) == small_sol
    assert task.to_text(small).count("\n") == 3


# ------------------------------------------------------------------------------------------------ official folders
def test_read_official_samples():
    items = task.read_official(SUDOKU_45)
    expected = _official_items()
    assert [it.item_id for it in items] == ["45_001", "45_002"]
    for it, (item_id, inst, answer) in zip(items, expected):
        assert it.level == "45" and it.instance == inst and it.answer == answer
        assert it.problem_image == SUDOKU_45 / f"{item_id}.png"
        assert it.solution_image == SUDOKU_45 / f"{item_id}_solution.png"
        assert task.verify(it.instance, it.answer).correct


def test_write_official_round_trip(tmp_path):
    folder = tmp_path / "Sudoku" / "45_test"
    task.write_official(_official_items(), folder)
    items = task.read_official(folder)
    assert [(it.item_id, it.instance, it.answer) for it in items] == _official_items()
    for it in items:  # the written PNGs are the official ones
        assert np.array_equal(_arr(draw.load_image(it.problem_image)),
                              _arr(draw.load_image(SUDOKU_45 / f"{it.item_id}.png")))
        assert (folder / f"{it.item_id}.txt").read_text() == (SUDOKU_45 / f"{it.item_id}.txt").read_text().strip()
    assert json.loads((folder / "solutions.json").read_text()) == json.loads((SUDOKU_45 / "solutions.json").read_text())
    # Small levels round-trip too, with the level inferred from the folder name.
    small = [(f"4x4-6_{i:03d}", task.generate("4x4-6", i), task.solve(task.generate("4x4-6", i))) for i in (1, 2)]
    task.write_official(small, tmp_path / "4x4-6_test", size=128)
    back = task.read_official(tmp_path / "4x4-6_test")
    assert [(it.item_id, it.instance, it.answer, it.level) for it in back] == [s + ("4x4-6",) for s in small]


def test_read_official_rejects_other_layouts(tmp_path):
    with pytest.raises(TaskError):
        task.read_official(FIXTURES / "Maze" / "8_test")
    with pytest.raises(TaskError, match="not found"):
        task.read_official(tmp_path / "missing")
    # A 45-clue item in a folder named for 40 clues.
    wrong = _copy_fixture(tmp_path / "40_test")
    with pytest.raises(TaskError, match="45 clues"):
        task.read_official(wrong)
    broken = _copy_fixture(tmp_path / "b" / "45_test")
    (broken / "solutions.json").write_text("{not json")
    with pytest.raises(TaskError, match="JSON"):
        task.read_official(broken)
    (broken / "solutions.json").write_text(json.dumps({"45_001": "1" * 81}))
    with pytest.raises(TaskError, match="contradicts"):
        task.read_official(broken)
    (broken / "45_002.png").unlink()
    (broken / "solutions.json").write_text("{}")
    with pytest.raises(TaskError, match="missing"):
        task.read_official(broken)
    with pytest.raises(TaskError, match="file stem"):
        task.write_official([("../x", *_official_items()[0][1:])], tmp_path / "out")
