"""Sudoku: fill the grid so every row, column and box holds each digit once (DiffThinker "Sudoku", reference §6).

Rules and levels
----------------
An ``n x n`` grid (``n = box_rows * box_cols``) split into ``box_rows x box_cols`` boxes; digits ``1..n``. The
published levels are the 9x9 clue counts ``"45"``, ``"40"``, ``"35"`` (the test sets) and ``"30"`` (a training-only
level of the published generator). Two small CPU levels use a 4x4 grid with 2x2 boxes and digits 1-4:
``"4x4-8"`` and ``"4x4-6"`` (8 and 6 clues). Every generated puzzle has exactly one solution.

Generation (as published): a full grid by randomized backtracking, then clues are removed in random order, each
removal kept only if the solution stays unique, until the clue count is reached; if the pass ends above the target
the generator starts over with a new full grid. The published code tests uniqueness with a solution counter that
stops at 2; we use the equivalent and cheaper test "is there a solution whose removed cell differs from the known
one?" (one search that stops at the first hit), so the accepted removals are exactly the published ones.

Rendering (style "diffthinker"): white; cell ``cs = size / n``; black lines at ``i * cs`` across the full image,
3 px at box borders and 1 px elsewhere at 512 px; digits in Lato-Medium at ``int(0.7 * cs)`` px, centred with
``textbbox`` exactly as the published renderer does (x = j*cs + (cs - tw)/2, y = i*cs + (cs - th)/2 with the text
drawn at those float coordinates). At 512 px this reproduces the official PNGs pixel for pixel. At other sizes the
same geometry is drawn natively; line widths scale with the image (thin ``max(1, round(size/512))``, thick at least
one pixel wider than thin). Given and filled digits look identical, as published.

Parsing (pixels + instance only, no OCR model). The image (any size; above 1024 px it is first resized to 1024)
is registered: the grid lines give the column and row ink profiles, whose best lag against the empty grid's undoes
a global translation. It is then resampled so each cell is ``G x G`` px, the grid-only rendering is subtracted so
the lines cancel, and each cell's central window is compared by normalised cross-correlation, at shifts of up to
1/24 of a cell in half-px steps, with every digit's glyph as the renderer draws it in that cell at the
input's size (natively, and the 512 px drawing rescaled: both template sets are cached per size). A cell whose ink
is far below any glyph's is empty (0). A cell whose best match is weak, or which holds ink the matched glyph does
not explain (a second glyph painted over it, a scribble), is *unreadable* and also reads 0, so the answer is
incomplete and never verifies. More than half the cells unreadable, or a page that is not white: ParseFailure.
Measured robustness to ``perturb.model_like`` (blur, noise sigma 8, JPEG 75) and rescaling: 4x4 grids from 64 px,
9x9 grids from about 96 px (9x9 glyphs are 4 px tall at 64 px: clean renders read there, noisy ones do not).

Scoring. ``valid``: the grid is complete, every row, column and box is a permutation of 1..n, and every given is
kept. ``correct``: valid and equal to the unique solution (``solve``); for a generated or official puzzle, whose
solution is unique, valid == correct. (For a hand-made instance with several solutions any valid completion is
correct, which is the sudoku rule; the published evaluator would demand its stored grid.) ``score``: the fraction
of blank cells filled with the solution's digit, with every altered given added to the denominator, so 1.0 iff
correct. Deliberate differences from the published evaluator (reference §6, §10): we read digits by template
matching instead of a Qwen3-VL OCR call per cell, and we grade partial progress (the published score is all or
nothing; our ``correct`` is its exact-match criterion).

Text (MLLM track): ``to_text`` writes the puzzle as ``n`` lines of ``n`` characters, '.' for a blank;
``answer_to_text`` writes ``n`` lines of ``n`` digits; ``parse_text`` takes the last ``n*n`` digits of the text,
ignoring every other character (with no instance, 9x9 is assumed when the text has at least 81 digits, else 4x4).

Official format (``Sudoku/<clues>_test``): ``<id>.txt`` (``n*n`` digits, row-major, 0 = blank), ``<id>.png``,
``<id>_solution.png``, ``solutions.json`` ``{"45_001": "<81 digits>"}``; ids ``<clues>_<i:03d>``. The small
levels use the same layout in ``<level>_test`` folders (e.g. ``4x4-6_test``, 16-digit ``.txt`` files).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from . import draw
from .base import Answer, Instance, OfficialItem, ParseFailure, Task, TaskError, Verdict, register_task
from .officialio import read_answers_json, write_answers_json

__all__ = ["LEVELS", "SudokuAnswer", "SudokuInstance", "SudokuLevel", "SudokuTask", "count_solutions",
           "solve_grid"]


# --------------------------------------------------------------------------------------------------- levels
@dataclass(frozen=True)
class SudokuLevel:
    """A difficulty preset: box shape (the grid side is box_rows * box_cols) and the number of clues."""

    box_rows: int
    box_cols: int
    clues: int
    description: str = ""

    @property
    def size(self) -> int:
        return self.box_rows * self.box_cols


LEVELS: dict[str, SudokuLevel] = {
    "45": SudokuLevel(3, 3, 45, "published test level: 9x9, 45 clues"),
    "40": SudokuLevel(3, 3, 40, "published test level: 9x9, 40 clues"),
    "35": SudokuLevel(3, 3, 35, "published test level: 9x9, 35 clues (hardest)"),
    "30": SudokuLevel(3, 3, 30, "published training-only level: 9x9, 30 clues"),
    "4x4-8": SudokuLevel(2, 2, 8, "small CPU level: 4x4 grid, 2x2 boxes, digits 1-4, 8 clues"),
    "4x4-6": SudokuLevel(2, 2, 6, "small CPU level: 4x4 grid, 2x2 boxes, digits 1-4, 6 clues"),
}


# --------------------------------------------------------------------------------------------------- types
def _int_tuple(value, what: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TaskError(f"{what} must be a sequence of ints, got {value!r:.200}")
    out = tuple(value)
    for v in out:
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TaskError(f"{what} must hold ints only, got {v!r} in {value!r:.200}")
    return tuple(int(v) for v in out)


@dataclass(frozen=True)
class SudokuInstance(Instance):
    """A puzzle: ``size`` = grid side n (= box_rows * box_cols, at most 9), givens row-major (0 = blank).

    Construction validates the shape, the digit range and that no two givens clash in a row, column or box.
    """

    size: int
    box_rows: int
    box_cols: int
    givens: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "givens", _int_tuple(self.givens, "SudokuInstance.givens"))
        for name in ("size", "box_rows", "box_cols"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise TaskError(f"SudokuInstance.{name} must be a positive int, got {v!r}")
        n = self.size
        if self.box_rows * self.box_cols != n or not 2 <= n <= 9:
            raise TaskError(f"SudokuInstance: size {n} must equal box_rows*box_cols "
                            f"({self.box_rows}*{self.box_cols}) and lie in 2..9")
        if len(self.givens) != n * n:
            raise TaskError(f"SudokuInstance.givens must have {n * n} entries for a {n}x{n} grid, "
                            f"got {len(self.givens)}")
        bad = [v for v in self.givens if not 0 <= v <= n]
        if bad:
            raise TaskError(f"SudokuInstance.givens must be digits 0..{n} (0 = blank), got {bad[0]}")
        clash = _first_clash(self.givens, _geometry(self.box_rows, self.box_cols))
        if clash:
            raise TaskError(f"SudokuInstance.givens contradict the rules: {clash}")

    @property
    def clues(self) -> int:
        return sum(1 for v in self.givens if v)


@dataclass(frozen=True)
class SudokuAnswer(Answer):
    """The filled grid, row-major, n*n digits. A parsed image may hold 0 for empty/unreadable cells."""

    grid: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", _int_tuple(self.grid, "SudokuAnswer.grid"))


# --------------------------------------------------------------------------------------------------- solver
@dataclass(frozen=True)
class _Geometry:
    n: int
    full: int                      # bitmask of all digits: bit d-1 stands for digit d
    row: tuple[int, ...]           # unit index of each cell
    col: tuple[int, ...]
    box: tuple[int, ...]
    units: tuple[tuple[int, ...], ...]  # rows, then columns, then boxes (cell indices)


@lru_cache(maxsize=None)
def _geometry(box_rows: int, box_cols: int) -> _Geometry:
    n = box_rows * box_cols
    cells = range(n * n)
    row = tuple(k // n for k in cells)
    col = tuple(k % n for k in cells)
    box = tuple((k // n) // box_rows * box_rows + (k % n) // box_cols for k in cells)
    units = tuple(tuple(k for k in cells if unit[k] == u) for unit in (row, col, box) for u in range(n))
    return _Geometry(n, (1 << n) - 1, row, col, box, units)


_POP = tuple(bin(m).count("1") for m in range(1 << 9))
_DIGIT = {1 << d: d + 1 for d in range(9)}


def _first_clash(grid: Sequence[int], geo: _Geometry) -> str:
    for u, unit in enumerate(geo.units):
        seen: dict[int, int] = {}
        for k in unit:
            v = grid[k]
            if v:
                if v in seen:
                    kind = ("row", "column", "box")[u // geo.n]
                    return (f"digit {v} twice in {kind} {u % geo.n + 1} (cells r{seen[v] // geo.n + 1}c"
                            f"{seen[v] % geo.n + 1} and r{k // geo.n + 1}c{k % geo.n + 1})")
                seen[v] = k
    return ""


class _Search:
    """Exact backtracking over bitmasks: row/column/box masks of used digits; at each node a naked single (a cell
    with one candidate) or else a hidden single (a digit with one place in a unit) is filled at once, a dead end
    (a cell with no candidate, a digit with no place) cuts the branch, and otherwise the search branches on the
    most constrained cell, or on a digit's two possible places in a unit when no cell has only two candidates.
    Pure Python; every generated puzzle is checked with it many times, so the loops are kept small."""

    def __init__(self, grid: Sequence[int], geo: _Geometry, rng=None) -> None:
        self.geo = geo
        self.grid = list(grid)
        self.rows = [0] * geo.n
        self.cols = [0] * geo.n
        self.boxes = [0] * geo.n
        for k, v in enumerate(self.grid):
            if v:
                bit = 1 << (v - 1)
                self.rows[geo.row[k]] |= bit
                self.cols[geo.col[k]] |= bit
                self.boxes[geo.box[k]] |= bit
        self.empties = [k for k, v in enumerate(self.grid) if not v]
        self.rng = rng
        self.solution: list[int] | None = None

    def count(self, limit: int, exclude: tuple[int, int] | None = None) -> int:
        """Number of solutions, up to ``limit``; ``exclude=(cell, digit)`` forbids that digit in that cell.
        The first solution found is kept in ``self.solution``."""
        self._excl_cell, self._excl_bit = (exclude[0], 1 << (exclude[1] - 1)) if exclude else (-1, 0)
        return self._count(self.empties, limit)

    def _count(self, empties: list[int], limit: int) -> int:
        geo, rows, cols, boxes, pop = self.geo, self.rows, self.cols, self.boxes, _POP
        R, C, B, full = geo.row, geo.col, geo.box, geo.full
        excl_cell, excl_bit = self._excl_cell, self._excl_bit
        best_k, best_m, best_c = -1, 0, 99
        masks = []
        for k, idx in enumerate(empties):
            m = full & ~(rows[R[idx]] | cols[C[idx]] | boxes[B[idx]])
            if idx == excl_cell:
                m &= ~excl_bit
            c = pop[m]
            if c < best_c:
                if c == 0:
                    return 0
                best_k, best_m, best_c = k, m, c
                if c == 1:
                    break
            masks.append(m)
        if best_k < 0:
            if self.solution is None:
                self.solution = list(self.grid)
            return 1
        options = None
        if best_c > 1:
            # No naked single: look for a hidden one (a digit with one possible cell in a row, column or box), cut
            # the branch if a unit has a missing digit with no possible cell, and note a digit with exactly two
            # cells in some unit: branching on it is a two-way split, better than a cell with three or more
            # candidates. Keeps hard puzzles to thousands of nodes instead of millions.
            cand = [0] * len(R)
            for idx, m in zip(empties, masks):
                cand[idx] = m
            placed = rows + cols + boxes
            pair_unit, pair_bits = -1, 0
            for u, unit in enumerate(geo.units):
                once = twice = thrice = 0
                for idx in unit:
                    m = cand[idx]
                    thrice |= twice & m
                    twice |= once & m
                    once |= m
                if (once | placed[u]) != full:
                    return 0
                hidden = once & ~twice
                if hidden:
                    bit = hidden & -hidden
                    options = [(next(idx for idx in unit if cand[idx] & bit), bit)]
                    break
                if pair_unit < 0 and twice & ~thrice:
                    pair_unit, pair_bits = u, twice & ~thrice
            if options is None and best_c > 2 and pair_unit >= 0:
                bit = pair_bits & -pair_bits
                options = [(idx, bit) for idx in geo.units[pair_unit] if cand[idx] & bit]
        if options is None:
            idx, m = empties[best_k], best_m
            options = []
            while m:
                bit = m & -m
                options.append((idx, bit))
                m ^= bit
        if self.rng is not None and len(options) > 1:
            self.rng.shuffle(options)
        total = 0
        grid = self.grid
        for idx, bit in options:
            rest = [e for e in empties if e != idx]
            r, c, b = R[idx], C[idx], B[idx]
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
            grid[idx] = _DIGIT[bit]
            total += self._count(rest, limit - total)
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
            grid[idx] = 0
            if total >= limit:
                break
        return total


def count_solutions(givens: Sequence[int], box_rows: int = 3, box_cols: int = 3, limit: int = 2) -> int:
    """Number of completions of ``givens`` (row-major, 0 = blank), counting stops at ``limit``."""
    geo = _geometry(box_rows, box_cols)
    if _first_clash(givens, geo):
        return 0
    return _Search(givens, geo).count(limit)


def solve_grid(givens: Sequence[int], box_rows: int = 3, box_cols: int = 3) -> tuple[int, ...] | None:
    """The first completion of ``givens`` in the solver's deterministic order, or None if there is none."""
    geo = _geometry(box_rows, box_cols)
    if _first_clash(givens, geo):
        return None
    search = _Search(givens, geo)
    return tuple(search.solution) if search.count(1) else None


def _random_full_grid(geo: _Geometry, rng) -> list[int]:
    search = _Search([0] * (geo.n * geo.n), geo, rng=rng)
    if not search.count(1):  # pragma: no cover - an empty grid always has a completion
        raise TaskError("internal error: no full sudoku grid found")
    return search.solution


def _remove_clues(full: list[int], geo: _Geometry, target: int, rng) -> list[int] | None:
    """Remove clues in random order while the solution stays unique; None if the pass ends above ``target``."""
    puzzle = list(full)
    clues = len(puzzle)
    order = list(range(len(puzzle)))
    rng.shuffle(order)
    for cell in order:
        if clues <= target:
            break
        digit = puzzle[cell]
        puzzle[cell] = 0
        # The puzzle without this clue still has `full` as a solution; it stays unique iff no solution puts a
        # different digit in this cell. Same decision as the published "count solutions, stop at 2".
        if _Search(puzzle, geo).count(1, exclude=(cell, digit)):
            puzzle[cell] = digit
        else:
            clues -= 1
    return puzzle if clues == target else None


# --------------------------------------------------------------------------------------------------- drawing
def _line_widths(size: int) -> tuple[int, int]:
    """(thin, thick) grid line widths: the published 1 and 3 px at 512, scaled with the image, thick > thin."""
    thin = max(1, round(size / 512))
    return thin, max(thin + 1, round(3 * size / 512))


def _draw_grid(size: int, n: int, box_rows: int, box_cols: int, digits: Sequence[int]) -> Image.Image:
    """The published renderer (Sudoku/gen_image.py), generalised to any n and image size.

    Horizontal lines separate box rows every ``box_rows`` cells, vertical lines box columns every ``box_cols``.
    Each digit goes at x = j*cs + (cs - tw)/2, y = i*cs + (cs - th)/2 (tw, th from ``textbbox`` at (0, 0)), drawn
    at those float coordinates as published: Pillow renders the fractional part as a sub-pixel offset, which is
    what makes the official PNGs match to the pixel. Glyphs are stamped from a cache (see ``_glyph_stamp``) with
    Pillow's own blend, so the result equals ``ImageDraw.text`` pixel for pixel at a fraction of its cost.
    """
    img = Image.new("RGB", (size, size), draw.WHITE)
    canvas = ImageDraw.Draw(img)
    cs = size / n
    thin, thick = _line_widths(size)
    for i in range(n + 1):
        canvas.line([(0, i * cs), (size, i * cs)], fill=draw.BLACK, width=thick if i % box_rows == 0 else thin)
        canvas.line([(i * cs, 0), (i * cs, size)], fill=draw.BLACK, width=thick if i % box_cols == 0 else thin)
    if not any(digits):
        return img
    px = max(1, int(0.7 * cs))
    arr = np.array(img)
    for k, v in enumerate(digits):
        if not v:
            continue
        tw, th = _text_size(px, str(v))
        i, j = divmod(k, n)
        x, y = j * cs + (cs - tw) / 2, i * cs + (cs - th) / 2
        ix, iy = int(x), int(y)
        stamp, ox, oy = _glyph_stamp(px, str(v), x - ix, y - iy)
        x0, y0 = ix + ox, iy + oy
        # Clip to the image, as Pillow's draw_bitmap does.
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x0 + stamp.shape[1], size), min(y0 + stamp.shape[0], size)
        if cx0 >= cx1 or cy0 >= cy1:
            continue
        m = stamp[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0, None]
        region = arr[cy0:cy1, cx0:cx1].astype(np.int32)
        # Pillow's BLEND(mask, out, ink) with a black ink: DIV255(out * (255 - mask)), DIV255(a) = ((a+128)>>8 +
        # (a+128)) >> 8.
        t = region * (255 - m) + 128
        arr[cy0:cy1, cx0:cx1] = ((t >> 8) + t) >> 8
    return Image.fromarray(arr)


@lru_cache(maxsize=1024)
def _text_size(px: int, text: str) -> tuple[int, int]:
    x0, y0, x1, y1 = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=draw.font("Lato-Medium", px))
    return x1 - x0, y1 - y0


@lru_cache(maxsize=1 << 16)
def _glyph_stamp(px: int, text: str, fx: float, fy: float) -> tuple[np.ndarray, int, int]:
    """The coverage mask (uint8) Pillow draws for ``text`` at a position with fractional parts (fx, fy), and its
    offset from the position's integer part. Rasterised once through ``ImageDraw.text`` itself (drawing 255 on 0
    leaves exactly the mask: DIV255(255 * m) == m), at an integer margin so the fractional parts stay exact."""
    margin = 4
    side = 2 * px + 2 * margin + 4
    canvas = Image.new("L", (side, side), 0)
    ImageDraw.Draw(canvas).text((margin + fx, margin + fy), text, fill=255, font=draw.font("Lato-Medium", px))
    mask = np.asarray(canvas)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return np.zeros((0, 0), np.uint8), 0, 0
    stamp = np.ascontiguousarray(mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])
    return stamp, int(cols[0]) - margin, int(rows[0]) - margin


# --------------------------------------------------------------------------------------------------- parsing
#: Each cell is resampled to G x G px before matching; the central window (margin _MARGIN) is compared at shifts
#: of up to _SHIFT px of that grid in half-px steps (+-2.4 px of a 512 px 9x9 image, +-5.3 px of a 4x4 one).
_G = 24
_MARGIN = 3
_SHIFT = 1
_HALF_STEPS = tuple(range(-2 * _SHIFT, 2 * _SHIFT + 1))
_ZERO = len(_HALF_STEPS) ** 2 // 2  # index of the unshifted window in _windows
_MIN_NCC = 0.70           # below this the best glyph match is no match (unreadable cell)
_EMPTY_MASS = 0.30        # ink below this fraction of the lightest glyph's ink: an empty cell
_GAIN_RANGE = (0.4, 1.6)  # fitted contrast of the matched glyph (blur at small sizes lowers it to ~0.6)
_RESID_INK = 0.10         # ink above the fitted glyph by more than this is unexplained ...
_MAX_UNEXPLAINED = 0.08   # ... and more than this much of it (relative to the glyph's ink) rejects the cell.
# Measured under perturb.model_like (blur 0.6, noise 8, JPEG 75): a correct glyph leaves <= 0.04 unexplained
# (also moved by up to 2 px at 512), a glyph painted over another leaves >= 0.12 at 512 and 1024 px; at small sizes
# (9x9 below ~256 px) the two overlap and an overlaid cell may read as one of its two digits.
#: Background samples: 2x2 px patches near the four corners of each cell, inside the grid lines, outside glyphs.
_CORNERS = tuple(np.array(v) for v in zip(*[(y + a, x + b) for y in (4, _G - 6) for x in (4, _G - 6)
                                            for a in (0, 1) for b in (0, 1)]))


def _register(gray: Image.Image, tpl: "_Templates") -> Image.Image:
    """Undo a global translation of the drawing: the grid lines run the full image, so the column and row ink
    profiles peak at the lines; the lag that best aligns them with the empty grid's profiles (up to a sixth of a
    cell) is the image's offset, and the image is moved back by it (the uncovered border filled white)."""
    arr = np.asarray(gray, dtype=np.float32)
    lags = []
    for axis, ref in ((0, tpl.profile_x), (1, tpl.profile_y)):
        prof = 255.0 - arr.mean(axis=axis)
        prof -= prof.mean()
        reach = len(tpl.lag_range) // 2
        pad = np.pad(prof, reach)
        scores = [float(np.dot(pad[reach + lag:reach + lag + len(prof)], ref)) for lag in tpl.lag_range]
        lags.append(tpl.lag_range[int(np.argmax(scores))])
    dx, dy = lags
    if dx == 0 and dy == 0:
        return gray
    out = Image.new("L", gray.size, 255)
    out.paste(gray, (-dx, -dy))
    return out


def _ink(img: Image.Image, n: int) -> np.ndarray:
    """Ink (0 = white, 1 = black) of the image resampled to n*G px square, float32."""
    side = n * _G
    gray = img.convert("L")
    if gray.size != (side, side):
        gray = gray.resize((side, side), Image.Resampling.BILINEAR)
    return (255.0 - np.asarray(gray, dtype=np.float32)) * (1.0 / 255.0)


def _cells(a: np.ndarray, n: int) -> np.ndarray:
    """(n*G, n*G) -> (n*n, G, G), row-major cells."""
    return a.reshape(n, _G, n, _G).transpose(0, 2, 1, 3).reshape(n * n, _G, _G)


def _windows(cells: np.ndarray) -> np.ndarray:
    """(N, G, G) -> (N, shifts, P): the central window at every shift of up to _SHIFT px in half-px steps
    (half steps interpolated linearly), flattened. Shift index _ZERO is the unshifted window."""
    # Upsample x2 by linear interpolation: even indices are the cell's pixels, odd ones neighbour means.
    n_cells = cells.shape[0]
    up = np.empty((n_cells, 2 * _G - 1, _G), dtype=cells.dtype)
    up[:, 0::2] = cells
    up[:, 1::2] = 0.5 * (cells[:, :-1] + cells[:, 1:])
    up2 = np.empty((n_cells, 2 * _G - 1, 2 * _G - 1), dtype=cells.dtype)
    up2[:, :, 0::2] = up
    up2[:, :, 1::2] = 0.5 * (up[:, :, :-1] + up[:, :, 1:])
    lo, side = 2 * _MARGIN, 2 * (_G - 2 * _MARGIN)
    out = [up2[:, lo + hy:lo + hy + side:2, lo + hx:lo + hx + side:2] for hy in _HALF_STEPS for hx in _HALF_STEPS]
    return np.stack(out, axis=1).reshape(n_cells, len(out), -1)


@dataclass(frozen=True)
class _Templates:
    empty: np.ndarray   # (sources, n*G, n*G) ink of the grid-only rendering
    glyphs: np.ndarray  # (sources, N, P, n) glyph residual per cell and digit, zero mean and unit norm
    norm: np.ndarray    # (sources, N, n) the norm of the zero-mean glyph residual before normalising
    mass: np.ndarray    # (sources, N, n) glyph ink in the window
    raw: np.ndarray     # (sources, N, P, n) the glyph residual in ink units
    profile_x: np.ndarray  # column ink profile of the empty grid at the input size (zero mean), for _register
    profile_y: np.ndarray  # row ink profile
    lag_range: tuple[int, ...]  # translations _register tries, in px


@lru_cache(maxsize=24)
def _templates(size: int, box_rows: int, box_cols: int) -> _Templates:
    """Glyph templates for an input of ``size`` px.

    For each digit d we render the grid with d in every cell (a glyph's pixels depend on its cell through the
    sub-pixel offset) and subtract the empty grid. There are two sources: the grid rendered natively at ``size``
    (what ``render`` draws at that size) and, for size != 512, the 512 px rendering resized to ``size`` (a
    published-size image such as a model output, rescaled: at small sizes its hinting and line weights differ from
    the native drawing enough to matter). Each cell is matched against both and the better match counts.
    """
    n = box_rows * box_cols
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("empty", "glyphs", "norm", "mass", "raw")}
    for src in ([size] if size == 512 else [size, 512]):
        def ink(digits: list[int]) -> np.ndarray:
            img = _draw_grid(src, n, box_rows, box_cols, digits)
            if src != size:
                img = img.resize((size, size), Image.Resampling.BILINEAR)
            return _ink(img, n)
        empty = ink([0] * (n * n))
        cells = [_cells(ink([d] * (n * n)) - empty, n) for d in range(1, n + 1)]
        wins = [_windows(c)[:, _ZERO] for c in cells]                              # n x (N, P)
        centred = [w - w.mean(axis=1, keepdims=True) for w in wins]
        norms = [np.sqrt((c * c).sum(axis=1)) for c in centred]
        parts["empty"].append(empty)
        parts["glyphs"].append(np.stack([c / np.maximum(v, 1e-6)[:, None] for c, v in zip(centred, norms)], -1))
        parts["norm"].append(np.stack(norms, axis=-1))
        parts["mass"].append(np.stack([w.sum(axis=1) for w in wins], axis=-1))
        parts["raw"].append(np.stack(wins, axis=-1))
    grid = 255.0 - np.asarray(_draw_grid(size, n, box_rows, box_cols, [0] * (n * n)).convert("L"), np.float32)
    px, py = grid.mean(axis=0), grid.mean(axis=1)
    reach = max(1, round(size / n / 6))
    return _Templates(**{k: np.ascontiguousarray(np.stack(v)) for k, v in parts.items()},
                      profile_x=px - px.mean(), profile_y=py - py.mean(), lag_range=tuple(range(-reach, reach + 1)))


def _read_cells(img: Image.Image, box_rows: int, box_cols: int) -> tuple[list[int], list[int], float]:
    """(digits row-major with 0 for empty or unreadable cells, indices of the unreadable cells, background ink)
    of an RGB image; the background ink is 0 for a white page and 1 for a black one.

    Per cell: the best (source, shift, digit) by normalised cross-correlation; then a least-squares fit
    ``window ~ gain * glyph + offset``. The cell reads as that digit only if the correlation is high, the gain is
    plausible, and little ink is left unexplained by the fit (a second glyph painted over the first, a scribble).
    """
    n = box_rows * box_cols
    size = min(max(img.size), 1024)
    tpl = _templates(size, box_rows, box_cols)
    gray = img.convert("L")
    if gray.size != (size, size):
        gray = gray.resize((size, size), Image.Resampling.BILINEAR)
    ink = _ink(_register(gray, tpl), n)
    n_cells = n * n
    background = float(np.median(_cells(ink, n)[:, _CORNERS[0], _CORNERS[1]]))
    wins, nccs = [], []
    for s in range(tpl.glyphs.shape[0]):
        cell_res = _cells(ink - tpl.empty[s], n)
        # A noisy or JPEG'd background is not exactly white (clipping at 255 biases the noise); measure it in the
        # cell corners, which no glyph reaches, and take it out so that ink mass means glyph ink.
        cell_res -= np.median(cell_res[:, _CORNERS[0], _CORNERS[1]])
        win = _windows(cell_res)                                                   # (N, shifts, P)
        # NCC = <unit template, window> / |window - mean|: the templates have zero mean, so the windows need
        # no centring, only their norm (from the sums of w and w^2).
        s1 = win.sum(axis=-1)
        var = np.einsum("nsp,nsp->ns", win, win) - s1 * s1 / win.shape[-1]
        wins.append(win)
        nccs.append(np.matmul(win, tpl.glyphs[s]) / np.sqrt(np.maximum(var, 1e-8))[..., None])  # (N, shifts, n)
    ncc = np.concatenate(nccs, axis=1).reshape(n_cells, -1)                        # (N, sources*shifts*n)
    best = ncc.argmax(axis=1)
    cells = np.arange(n_cells)
    score = ncc[cells, best]
    src, rest = np.divmod(best, wins[0].shape[1] * n)
    shift, digit = np.divmod(rest, n)
    obs = wins[0][cells, shift] if len(wins) == 1 else np.where((src == 0)[:, None], wins[0][cells, shift],
                                                                 wins[-1][cells, shift])   # (N, P)
    mass = tpl.mass[src, cells, digit]
    empty = obs.sum(axis=1) < _EMPTY_MASS * tpl.mass.min(axis=(0, 2))
    # Least squares: gain = <glyph_c, obs_c> / |glyph_c|^2 = <unit glyph, obs> / |glyph_c|.
    gain = (tpl.glyphs[src, cells, :, digit] * obs).sum(axis=1) / np.maximum(tpl.norm[src, cells, digit], 1e-6)
    offset = obs.mean(axis=1) - gain * mass / obs.shape[1]
    # Unexplained ink: what rises above the fitted glyph by more than _RESID_INK.
    resid = obs - offset[:, None] - gain[:, None] * tpl.raw[src, cells, :, digit]
    unexplained = np.clip(resid - _RESID_INK, 0, None).sum(axis=1) / np.maximum(mass, 1e-6)
    ok = ((score >= _MIN_NCC) & (gain >= _GAIN_RANGE[0]) & (gain <= _GAIN_RANGE[1])
          & (unexplained <= _MAX_UNEXPLAINED))
    digits = np.where(empty, 0, np.where(ok, digit + 1, 0))
    unreadable = np.flatnonzero(~empty & ~ok)
    return [int(v) for v in digits], [int(k) for k in unreadable], background


# --------------------------------------------------------------------------------------------------- the task
_MAX_RESTARTS = 1000
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_BOX_FOR_SIDE = {cfg.size: (cfg.box_rows, cfg.box_cols) for cfg in LEVELS.values()}


@lru_cache(maxsize=4096)
def _cached_solution(givens: tuple[int, ...], box_rows: int, box_cols: int) -> tuple[int, ...] | None:
    return solve_grid(givens, box_rows, box_cols)


class SudokuTask(Task):
    """Sudoku (see the module docstring for rules, rendering, parsing, scoring and formats)."""

    name = "sudoku"
    version = 1
    prompt = "Solve this Sudoku puzzle."
    levels = LEVELS
    default_level = "4x4-6"
    instance_type = SudokuInstance
    answer_type = SudokuAnswer
    official_patterns = (r"/Sudoku/(\d+)_test/?$",)
    supported_sizes = (64, 128, 256, 512, 1024)

    # ----------------------------------------------------------------- generation and solving
    def generate(self, level: str, seed: int) -> SudokuInstance:
        cfg = self.level_config(level)
        rng = self.rng(level, seed)
        geo = _geometry(cfg.box_rows, cfg.box_cols)
        for _ in range(_MAX_RESTARTS):
            puzzle = _remove_clues(_random_full_grid(geo, rng), geo, cfg.clues, rng)
            if puzzle is not None:
                return SudokuInstance(cfg.size, cfg.box_rows, cfg.box_cols, tuple(puzzle))
        raise TaskError(f"sudoku level {level!r}: no unique puzzle with {cfg.clues} clues after {_MAX_RESTARTS} "
                        f"full grids (seed {seed}); the clue count is too low for this grid")

    def solve(self, instance: SudokuInstance) -> SudokuAnswer:
        """The solution (the unique one for generated and official puzzles; for a hand-made puzzle with several,
        the first in the solver's deterministic order). TaskError if the givens admit no solution."""
        self._check_instance(instance)
        grid = _cached_solution(instance.givens, instance.box_rows, instance.box_cols)
        if grid is None:
            raise TaskError(f"sudoku puzzle has no solution: givens {''.join(map(str, instance.givens))}")
        return SudokuAnswer(grid)

    # ----------------------------------------------------------------- images
    def render(self, instance: SudokuInstance, answer: SudokuAnswer | None = None, size: int = 512,
               style: str = "diffthinker") -> Image.Image:
        """The problem (givens) or, with an answer, the solution image: the answer's grid as it is (0 = blank)."""
        self._check_instance(instance)
        self.check_style(style)
        if not isinstance(size, int) or isinstance(size, bool) or not draw.MIN_SIDE <= size <= 4096:
            raise TaskError(f"render size must be an int in [{draw.MIN_SIDE}, 4096] px, got {size!r}")
        n = instance.size
        digits = instance.givens
        if answer is not None:
            if not isinstance(answer, SudokuAnswer):
                raise TaskError(f"{self.id} renders a SudokuAnswer, got {type(answer).__name__}")
            if len(answer.grid) != n * n or any(not 0 <= v <= n for v in answer.grid):
                raise TaskError(f"cannot render answer grid {answer.grid!r:.200}: expected {n * n} digits 0..{n}")
            digits = answer.grid
        return _draw_grid(size, n, instance.box_rows, instance.box_cols, digits)

    def _parse(self, image: Image.Image, instance: SudokuInstance) -> SudokuAnswer | ParseFailure:
        n = instance.size
        digits, unreadable, background = _read_cells(image, instance.box_rows, instance.box_cols)
        if background > 0.5:
            return ParseFailure(f"the page is not white (background ink {background:.2f}); not a sudoku image")
        if len(unreadable) > n * n // 2:
            return ParseFailure(f"{len(unreadable)} of {n * n} cells hold ink that matches no digit",
                                {"unreadable": unreadable})
        return SudokuAnswer(tuple(digits))

    # ----------------------------------------------------------------- rules
    def _verify(self, instance: SudokuInstance, answer: SudokuAnswer) -> Verdict:
        n = instance.size
        grid = answer.grid
        if len(grid) != n * n:
            return Verdict.failure(f"the answer has {len(grid)} cells, expected {n * n}", cells=len(grid))
        out_of_range = [v for v in grid if not 0 <= v <= n]
        if out_of_range:
            return Verdict.failure(f"digit {out_of_range[0]} is outside 0..{n}", digit=out_of_range[0])
        solution = self.solve(instance).grid
        givens = instance.givens
        blanks = [k for k, v in enumerate(givens) if not v]
        altered = sum(1 for k, v in enumerate(givens) if v and grid[k] != v)
        right = sum(1 for k in blanks if grid[k] == solution[k])
        empty = sum(1 for v in grid if not v)
        clash = _first_clash(grid, _geometry(instance.box_rows, instance.box_cols))
        valid = not empty and not clash and not altered
        # A valid grid is a solution of the givens, so for a unique puzzle valid == (grid == solve()). A valid grid
        # that differs from solve() proves the puzzle has several solutions; the sudoku rule then accepts it.
        matches = grid == solution
        correct = valid
        if correct:
            score = 1.0
        else:
            denominator = len(blanks) + altered
            # Without the altered givens a wrong grid could fill every blank "correctly"; they keep score < 1.
            score = min(right / denominator, 1.0 - 1e-9) if denominator else 0.0
        details = {"blank_cells": len(blanks), "correct_blanks": right, "altered_givens": altered,
                   "empty_cells": empty, "matches_solution": matches}
        if correct:
            reason = "solved" if matches else "solved (a valid grid of a puzzle with several solutions)"
        elif empty:
            reason = f"{empty} cell(s) empty or unreadable"
        elif altered:
            reason = f"{altered} given(s) changed"
        elif clash:
            reason = clash
        else:  # pragma: no cover - every invalid grid has an empty cell, an altered given or a clash
            reason = "invalid grid"
        return Verdict(correct=correct, valid=valid, score=float(score), reason=reason, details=details)

    # ----------------------------------------------------------------- text side
    def to_text(self, instance: SudokuInstance) -> str:
        """``n`` lines of ``n`` characters, row by row; '.' marks a blank cell."""
        self._check_instance(instance)
        n = instance.size
        cells = "".join(str(v) if v else "." for v in instance.givens)
        return "\n".join(cells[i * n:(i + 1) * n] for i in range(n))

    def answer_to_text(self, answer: SudokuAnswer) -> str:
        """``n`` lines of ``n`` digits (n = sqrt of the grid length)."""
        if not isinstance(answer, SudokuAnswer):
            raise TaskError(f"{self.id} expects a SudokuAnswer, got {type(answer).__name__}")
        n = int(round(len(answer.grid) ** 0.5))
        if n * n != len(answer.grid) or not answer.grid:
            raise TaskError(f"answer grid of {len(answer.grid)} cells is not square")
        cells = "".join(str(v) for v in answer.grid)
        return "\n".join(cells[i * n:(i + 1) * n] for i in range(n))

    def parse_text(self, text: str, instance: SudokuInstance | None = None) -> SudokuAnswer | ParseFailure:
        """The last ``n*n`` digits of the text, any other characters ignored (n from the instance; without one,
        9 if the text holds at least 81 digits, else 4)."""
        if not isinstance(text, str):
            return ParseFailure(f"expected text, got {type(text).__name__}")
        digits = re.findall(r"[0-9]", text)
        if instance is not None:
            self._check_instance(instance)
            cells = instance.size ** 2
        else:
            cells = 81 if len(digits) >= 81 else 16
        if len(digits) < cells:
            return ParseFailure(f"found {len(digits)} digits in the text, need {cells}", {"digits": len(digits)})
        return SudokuAnswer(tuple(int(d) for d in digits[-cells:]))

    # ----------------------------------------------------------------- official folders
    def read_official(self, folder: Path) -> list[OfficialItem]:
        """Read ``Sudoku/<level>_test``: every ``<id>.txt`` with its ``<id>.png`` (required) and
        ``<id>_solution.png`` (optional), answers from ``solutions.json`` when present.

        The level comes from the folder name (``45_test`` -> "45") and every item's size and clue count must fit
        it; for a folder not named after a level, each item's level is the one with its grid and clue count.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise TaskError(f"sudoku official folder not found: {folder}")
        m = re.fullmatch(r"(.+)_test", folder.name)
        folder_level = m.group(1) if m and m.group(1) in self.levels else None
        puzzles = sorted(folder.glob("*.txt"))
        if not puzzles:
            raise TaskError(f"{folder} holds no <id>.txt puzzle files; expected the Sudoku layout "
                            f"(<id>.txt with 81 digits, <id>.png, <id>_solution.png, solutions.json)")
        solutions = self._read_solutions(folder / "solutions.json")
        items = []
        for txt in puzzles:
            item_id = txt.stem
            givens = self._digits(txt.read_text(encoding="utf-8", errors="replace").strip(), str(txt))
            side = int(round(len(givens) ** 0.5))
            box = _BOX_FOR_SIDE.get(side)
            if box is None or side * side != len(givens):
                raise TaskError(f"{txt}: {len(givens)} digits is not a supported grid; expected 81 (9x9) or 16 (4x4)")
            try:
                inst = SudokuInstance(side, box[0], box[1], givens)
            except TaskError as exc:
                raise TaskError(f"{txt}: {exc}") from None
            level = self._level_of(inst, folder_level, txt)
            problem = folder / f"{item_id}.png"
            if not problem.is_file():
                raise TaskError(f"{txt}: its problem image {problem.name} is missing")
            solution_png = folder / f"{item_id}_solution.png"
            answer = None
            if item_id in solutions:
                grid = self._digits(solutions[item_id], f"solutions.json[{item_id!r}]")
                if len(grid) != len(givens):
                    raise TaskError(f"solutions.json[{item_id!r}] has {len(grid)} digits, expected {len(givens)}")
                bad = [k for k, v in enumerate(givens) if v and grid[k] != v]
                if bad:
                    raise TaskError(f"solutions.json[{item_id!r}] contradicts the given at cell {bad[0]} of {txt.name}")
                answer = SudokuAnswer(grid)
            items.append(OfficialItem(item_id=item_id, level=level, instance=inst, problem_image=problem,
                                      solution_image=solution_png if solution_png.is_file() else None,
                                      answer=answer))
        return sorted(items, key=lambda it: it.item_id)

    def write_official(self, items: Sequence[tuple[str, SudokuInstance, SudokuAnswer]], folder: Path,
                       size: int = 512) -> None:
        """Write ``<id>.txt`` (digits, 0 = blank, no newline, as published), ``<id>.png``, ``<id>_solution.png``
        and ``solutions.json`` (merged with one already there, so items can be added in batches)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "solutions.json"
        solutions = self._read_solutions(path)
        for item_id, inst, answer in items:
            if not isinstance(item_id, str) or not _ID_RE.fullmatch(item_id):
                raise TaskError(f"item id {item_id!r} is not a plain file stem (letters, digits, '_', '-', '.')")
            self._check_instance(inst)
            if not isinstance(answer, SudokuAnswer) or len(answer.grid) != len(inst.givens):
                raise TaskError(f"item {item_id}: expected a SudokuAnswer of {len(inst.givens)} digits, "
                                f"got {answer!r:.200}")
            (folder / f"{item_id}.txt").write_text("".join(map(str, inst.givens)), encoding="utf-8")
            self.render(inst, size=size).save(folder / f"{item_id}.png")
            self.render(inst, answer, size=size).save(folder / f"{item_id}_solution.png")
            solutions[item_id] = "".join(map(str, answer.grid))
        write_answers_json(path, solutions)

    # ----------------------------------------------------------------- helpers
    @staticmethod
    def _digits(text: object, where: str) -> tuple[int, ...]:
        if not isinstance(text, str) or not re.fullmatch(r"[0-9]+", text):
            raise TaskError(f"{where}: expected a string of digits (0 = blank), got {text!r:.120}")
        return tuple(int(c) for c in text)

    @staticmethod
    def _read_solutions(path: Path) -> dict[str, str]:
        return read_answers_json(path, '{"45_001": "<81 digits>"}')

    def _level_of(self, inst: SudokuInstance, folder_level: str | None, where: Path) -> str:
        shape = (inst.box_rows, inst.box_cols)
        if folder_level is not None:
            cfg = self.levels[folder_level]
            if (cfg.box_rows, cfg.box_cols) != shape or cfg.clues != inst.clues:
                raise TaskError(f"{where}: {inst.size}x{inst.size} puzzle with {inst.clues} clues does not fit "
                                f"level {folder_level!r} ({cfg.size}x{cfg.size}, {cfg.clues} clues)")
            return folder_level
        for name, cfg in self.levels.items():
            if (cfg.box_rows, cfg.box_cols) == shape and cfg.clues == inst.clues:
                return name
        raise TaskError(f"{where}: no sudoku level has a {inst.size}x{inst.size} grid with {inst.clues} clues; "
                        f"levels are {sorted(self.levels)}")


register_task(SudokuTask())
