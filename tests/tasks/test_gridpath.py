"""The shared grid-path reader (diffthinker.tasks.gridpath): moves <-> cells, and reading drawn red paths."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from diffthinker.tasks import ParseFailure, TaskError
from diffthinker.tasks.gridpath import (MOVES, PathThresholds, cells_to_moves, drawn_graph, moves_to_cells,
                                        read_drawn_path)
from diffthinker.tasks.perturb import blur, gaussian_noise, jpeg, model_like


def test_moves_convention_and_round_trip():
    assert MOVES == {"U": (-1, 0), "D": (1, 0), "L": (0, -1), "R": (0, 1)}
    cells = moves_to_cells((2, 3), "DDRUL")
    assert cells == [(2, 3), (3, 3), (4, 3), (4, 4), (3, 4), (3, 3)]
    assert cells_to_moves(cells) == "DDRUL"
    assert moves_to_cells((0, 0), "") == [(0, 0)]
    assert cells_to_moves([(1, 1)]) == ""


def test_bad_moves_and_cells_raise():
    with pytest.raises(TaskError, match="'X' at index 2"):
        moves_to_cells((0, 0), "RDX")
    with pytest.raises(TaskError, match="not 4-adjacent"):
        cells_to_moves([(0, 0), (1, 1)])
    with pytest.raises(TaskError, match="not 4-adjacent"):
        cells_to_moves([(0, 0), (0, 0)])


# ----------------------------------------------------------------------------- synthetic drawings
def canvas(rows, cols, cell, background=(255, 255, 255)):
    return Image.new("RGB", (cols * cell, rows * cell), background)


def draw_path(img, rows, cols, cells, width_frac=0.25, offset=(0.0, 0.0)):
    w, h = img.size
    cw, ch = w / cols, h / rows
    d = ImageDraw.Draw(img)
    pts = [((c + 0.5 + offset[1]) * cw, (r + 0.5 + offset[0]) * ch) for r, c in cells]
    d.line(pts, fill=(255, 0, 0), width=max(1, int(width_frac * min(cw, ch))), joint="curve")
    return img


SNAKE = [(0, 0), (0, 1), (0, 2), (1, 2), (1, 1), (2, 1), (2, 2), (2, 3), (2, 4), (1, 4), (0, 4)]


@pytest.mark.parametrize("cell", [8, 12, 40, 64])
def test_reads_a_drawn_snake_on_a_rectangular_grid(cell):
    rows, cols = 4, 6
    img = draw_path(canvas(rows, cols, cell), rows, cols, SNAKE)
    assert read_drawn_path(np.asarray(img), rows, cols, SNAKE[0], SNAKE[-1]) == cells_to_moves(SNAKE)
    # Reading from the other end gives the reverse walk; a PIL image is accepted too.
    back = read_drawn_path(img, rows, cols, SNAKE[-1], SNAKE[0])
    assert back == cells_to_moves(SNAKE[::-1])


def test_u_turn_in_open_ground_is_not_short_circuited():
    # (0,0)->(0,1)->(1,1)->(1,0): start and goal are adjacent but the line does not cross their boundary.
    cells = [(0, 0), (0, 1), (1, 1), (1, 0)]
    img = draw_path(canvas(3, 3, 64), 3, 3, cells)
    assert read_drawn_path(np.asarray(img), 3, 3, (0, 0), (1, 0)) == "RDL"


@pytest.mark.parametrize("width_frac,offset", [(0.4, (0.0, 0.0)), (0.25, (0.1, 0.1)), (0.4, (-0.1, 0.08)),
                                               (0.12, (0.0, 0.0))])
def test_thick_thin_and_offset_lines_read_the_same(width_frac, offset):
    img = draw_path(canvas(4, 6, 48), 4, 6, SNAKE, width_frac, offset)
    img = model_like(img, seed=3)
    assert read_drawn_path(np.asarray(img), 4, 6, SNAKE[0], SNAKE[-1]) == cells_to_moves(SNAKE)


def test_branch_extra_red_and_gaps_are_failures():
    rows, cols, cell = 4, 6, 48
    base = draw_path(canvas(rows, cols, cell), rows, cols, SNAKE)
    # A branch off the route: (0,2) -> (0,3).
    branched = draw_path(base.copy(), rows, cols, [(0, 2), (0, 3)])
    out = read_drawn_path(np.asarray(branched), rows, cols, SNAKE[0], SNAKE[-1])
    assert isinstance(out, ParseFailure) and "off the route" in out.reason
    # A disconnected red blob elsewhere.
    blob = base.copy()
    ImageDraw.Draw(blob).rectangle([5 * cell + 10, 3 * cell + 10, 6 * cell - 10, 4 * cell - 10], fill=(255, 0, 0))
    assert isinstance(read_drawn_path(np.asarray(blob), rows, cols, SNAKE[0], SNAKE[-1]), ParseFailure)
    # A gap: one interior cell painted white.
    gap = base.copy()
    r, c = SNAKE[5]
    ImageDraw.Draw(gap).rectangle([c * cell, r * cell, (c + 1) * cell - 1, (r + 1) * cell - 1], fill=(255, 255, 255))
    out = read_drawn_path(np.asarray(gap), rows, cols, SNAKE[0], SNAKE[-1])
    assert isinstance(out, ParseFailure) and "not connected" in out.reason
    # The goal is not reached: the line stops one cell short.
    short = draw_path(canvas(rows, cols, cell), rows, cols, SNAKE[:-1])
    out = read_drawn_path(np.asarray(short), rows, cols, SNAKE[0], SNAKE[-1])
    assert isinstance(out, ParseFailure) and "goal" in out.reason
    # Walking past the goal: the extra cell is off the route.
    past = draw_path(canvas(rows, cols, cell), rows, cols, SNAKE + [(0, 5)])
    assert isinstance(read_drawn_path(np.asarray(past), rows, cols, SNAKE[0], SNAKE[-1]), ParseFailure)


def test_loop_is_a_failure_not_a_guess():
    # A closed 2x2 loop through the start: two routes exist, the drawing is ambiguous.
    cells = [(0, 0), (0, 1), (1, 1), (1, 0), (0, 0)]
    img = draw_path(canvas(3, 3, 64), 3, 3, cells)
    img = draw_path(img, 3, 3, [(1, 1), (2, 1)])
    out = read_drawn_path(np.asarray(img), 3, 3, (0, 0), (2, 1))
    assert isinstance(out, ParseFailure)


def test_spill_into_neighbours_does_not_create_cells_or_joins():
    rows, cols, cell = 3, 5, 64
    cells = [(1, 0), (1, 1), (1, 2), (1, 3), (1, 4)]
    img = draw_path(canvas(rows, cols, cell), rows, cols, cells)
    d = ImageDraw.Draw(img)
    # Red smeared 12 px into the row above and below along the whole line (bleeding, not a path).
    d.rectangle([0, cell - 12, cols * cell, cell + 2], fill=(255, 60, 60))
    d.rectangle([0, 2 * cell - 2, cols * cell, 2 * cell + 12], fill=(255, 60, 60))
    on, join_h, join_v = drawn_graph(np.asarray(img), rows, cols)
    assert on[1].all() and not on[0].any() and not on[2].any()
    assert read_drawn_path(np.asarray(img), rows, cols, (1, 0), (1, 4)) == "RRRR"


def test_blank_problem_like_images_fail():
    for bg in ((255, 255, 255), (0, 0, 0), (255, 255, 0)):
        out = read_drawn_path(np.asarray(canvas(4, 4, 32, bg)), 4, 4, (0, 0), (3, 3))
        assert isinstance(out, ParseFailure) and "start" in out.reason
    full_red = np.asarray(canvas(4, 4, 32, (255, 0, 0)))
    assert isinstance(read_drawn_path(full_red, 4, 4, (0, 0), (3, 3)), ParseFailure)


def test_bad_arguments_raise():
    img = np.asarray(canvas(4, 4, 16))
    with pytest.raises(TaskError, match="unknown threshold"):
        read_drawn_path(img, 4, 4, (0, 0), (3, 3), on_treshold=0.1)
    with pytest.raises(TaskError, match="outside"):
        read_drawn_path(img, 4, 4, (0, 0), (4, 3))
    with pytest.raises(TaskError, match="margin"):
        PathThresholds(margin=0.7)
    with pytest.raises(TaskError, match="uint8"):
        read_drawn_path(img.astype(np.float32), 4, 4, (0, 0), (3, 3))
    with pytest.raises(TaskError, match="cannot hold"):
        read_drawn_path(np.zeros((8, 8, 3), np.uint8), 16, 16, (0, 0), (3, 3))
    # Overriding a threshold works: with an impossible join threshold nothing is connected.
    drawn = np.asarray(draw_path(canvas(4, 6, 32), 4, 6, SNAKE))
    assert isinstance(read_drawn_path(drawn, 4, 6, SNAKE[0], SNAKE[-1], join_threshold=0.99), ParseFailure)


@settings(max_examples=15, deadline=None)
@given(size=st.integers(64, 1024), seed=st.integers(0, 10_000), kind=st.sampled_from(["jpeg", "noise", "blur", "all"]))
def test_reader_survives_perturbations_at_any_size(size, seed, kind):
    rows, cols = 4, 6
    cell = 64
    img = draw_path(canvas(rows, cols, cell), rows, cols, SNAKE).resize((size, size * 2 // 3), Image.BILINEAR)
    if kind == "jpeg":
        img = jpeg(img, 75)
    elif kind == "noise":
        img = gaussian_noise(img, 8, seed)
    elif kind == "blur":
        img = blur(img, 0.8)
    else:
        img = model_like(img, seed=seed)
    assert read_drawn_path(np.asarray(img), rows, cols, SNAKE[0], SNAKE[-1]) == cells_to_moves(SNAKE)


@pytest.mark.parametrize("text,expected", [
    ("RRDL", "RRDL"),
    ("First R, then: R R D, L", "RRDL"),
    ("R -> R -> D", "RRD"),
    ("R-R-D | U", "RRDU"),
    ("Right, Down. Done. Final answer: D D", "DD"),   # letters inside words are prose; the last run wins
    ("no moves here", None),
])
def test_parse_moves_text_takes_the_last_standalone_run(text, expected):
    from diffthinker.tasks.gridpath import parse_moves_text

    assert parse_moves_text(text) == expected
