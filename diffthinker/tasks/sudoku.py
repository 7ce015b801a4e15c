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

Parsing (pixels + instance only, no OCR model): the image is resized so each cell is ``G x G`` px; from it we
subtract the grid-only rendering at the input's size (so grid lines cancel), and each cell's central window is
compared by normalised cross-correlation, over small shifts, with every digit's glyph rendered by the same renderer
at the input's size (templates cached per size). A cell whose ink mass is far below any glyph's is empty (0); a cell
whose best match is weak, or whose ink mass does not fit the matched glyph (two glyphs painted over each other), is
*unreadable* and also reads 0, so the answer is incomplete and never verifies. If more than half of the cells are
unreadable the image is not a sudoku drawing and parse returns ParseFailure.

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
``<id>_solution.png``, ``solutions.json`` ``{"45_001": "<81 digits>"}``; ids ``<clues>_<i:03d>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from . import draw
from .base import Answer, Instance, OfficialItem, ParseFailure, Task, TaskError, Verdict, register_task

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
    """Exact backtracking over bitmasks: row/column/box masks of used digits, most-constrained empty cell first
    (a cell with one candidate is filled at once, a cell with none cuts the branch). Pure Python; every generated
    puzzle is checked with it many times, so the inner loop is kept small."""

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
        if best_k < 0:
            if self.solution is None:
                self.solution = list(self.grid)
            return 1
        idx = empties[best_k]
        rest = empties[:best_k] + empties[best_k + 1:]
        r, c, b = R[idx], C[idx], B[idx]
        bits = []
        m = best_m
        while m:
            bit = m & -m
            bits.append(bit)
            m ^= bit
        if self.rng is not None and len(bits) > 1:
            self.rng.shuffle(bits)
        total = 0
        grid = self.grid
        for bit in bits:
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
    Text is drawn at float coordinates, as published: Pillow renders the fractional part as a sub-pixel offset,
    which is what makes the official PNGs match to the pixel.
    """
    img = Image.new("RGB", (size, size), draw.WHITE)
    canvas = ImageDraw.Draw(img)
    cs = size / n
    thin, thick = _line_widths(size)
    for i in range(n + 1):
        canvas.line([(0, i * cs), (size, i * cs)], fill=draw.BLACK, width=thick if i % box_rows == 0 else thin)
        canvas.line([(i * cs, 0), (i * cs, size)], fill=draw.BLACK, width=thick if i % box_cols == 0 else thin)
    fnt = draw.font("Lato-Medium", max(1, int(0.7 * cs)))
    boxes = {}
    for k, v in enumerate(digits):
        if not v:
            continue
        text = str(v)
        if text not in boxes:
            boxes[text] = canvas.textbbox((0, 0), text, font=fnt)
        x0, y0, x1, y1 = boxes[text]
        i, j = divmod(k, n)
        canvas.text((j * cs + (cs - (x1 - x0)) / 2, i * cs + (cs - (y1 - y0)) / 2), text, fill=draw.BLACK, font=fnt)
    return img


# --------------------------------------------------------------------------------------------------- parsing
#: Each cell is resampled to G x G px before matching; the central window (margin _MARGIN) is compared, at
#: shifts of up to _SHIFT px (about 2.4 px of a 512 px 9x9 image) in each direction.
_G = 24
_MARGIN = 3
_SHIFT = 1
_MIN_NCC = 0.70           # below this the best glyph match is no match (unreadable cell)
_EMPTY_MASS = 0.30        # ink below this fraction of the lightest glyph's ink: an empty cell
_GAIN_RANGE = (0.4, 1.6)  # fitted contrast of the matched glyph (blur and small sizes lower it to ~0.6)
_RESID_INK = 0.10         # ink above the fitted glyph by more than this is unexplained ...
_MAX_UNEXPLAINED = 0.05   # ... and more than this much of it (relative to the glyph's ink) rejects the cell.
# Measured on model_like perturbations: correct cells leave <= 0.02 unexplained (9x9 at >= 128 px, 4x4 at >= 64),
# a second glyph painted over the first leaves >= 0.08 (9x9 at >= 192 px, 4x4 at >= 64 px).
#: Background samples: 2x2 px patches near the four corners of each cell, inside the grid lines, outside glyphs.
_CORNERS = tuple(np.array(v) for v in zip(*[(y + a, x + b) for y in (4, _G - 6) for x in (4, _G - 6)
                                            for a in (0, 1) for b in (0, 1)]))


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
    """(N, G, G) -> (shifts, N, P): the central window at every shift, flattened."""
    lo, hi = _MARGIN, _G - _MARGIN
    out = [cells[:, lo + dy:hi + dy, lo + dx:hi + dx] for dy in range(-_SHIFT, _SHIFT + 1)
           for dx in range(-_SHIFT, _SHIFT + 1)]
    return np.stack(out).reshape(len(out), cells.shape[0], -1)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    norm = np.sqrt((x * x).sum(axis=-1, keepdims=True))
    return x / np.maximum(norm, 1e-6)


@dataclass(frozen=True)
class _Templates:
    empty: np.ndarray   # (sources, n*G, n*G) ink of the grid-only rendering
    glyphs: np.ndarray  # (sources, N, P, n) normalised glyph residual per cell (zero shift)
    raw: np.ndarray     # (sources, N, P, n) the same, unnormalised (ink units)
    mass: np.ndarray    # (sources, N, n) glyph ink mass in the central window, per cell and digit


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
    zero = _SHIFT * (2 * _SHIFT + 1) + _SHIFT  # index of the (0, 0) shift in _windows
    empties, glyphs, raws, masses = [], [], [], []
    for src in ([size] if size == 512 else [size, 512]):
        def ink(digits: list[int]) -> np.ndarray:
            img = _draw_grid(src, n, box_rows, box_cols, digits)
            if src != size:
                img = img.resize((size, size), Image.Resampling.BILINEAR)
            return _ink(img, n)
        empty = ink([0] * (n * n))
        wins = [_windows(_cells(ink([d] * (n * n)) - empty, n))[zero] for d in range(1, n + 1)]  # n x (N, P)
        empties.append(empty)
        glyphs.append(np.stack([_normalise(w) for w in wins], axis=-1))
        raws.append(np.stack(wins, axis=-1))
        masses.append(np.stack([w.sum(axis=1) for w in wins], axis=-1))
    return _Templates(np.stack(empties), np.ascontiguousarray(np.stack(glyphs)), np.stack(raws), np.stack(masses))


def _read_cells(img: Image.Image, box_rows: int, box_cols: int) -> tuple[list[int], list[int]]:
    """(digits row-major with 0 for empty or unreadable cells, indices of the unreadable cells) of an RGB image.

    Per cell: the best (source, shift, digit) by normalised cross-correlation; then a least-squares fit
    ``window ~ gain * glyph + offset``. The cell reads as that digit only if the correlation is high, the gain is
    plausible, and little ink is left unexplained by the fit (a second glyph painted over the first, a scribble).
    """
    n = box_rows * box_cols
    w, h = img.size
    tpl = _templates(min(max(w, h), 1024), box_rows, box_cols)
    ink = _ink(img, n)
    n_cells = n * n
    wins, nccs = [], []
    for s in range(tpl.glyphs.shape[0]):
        cell_res = _cells(ink - tpl.empty[s], n)
        # A noisy or JPEG'd background is not exactly white (clipping at 255 biases the noise); measure it in the
        # cell corners, which no glyph reaches, and take it out so that ink mass means glyph ink.
        cell_res = cell_res - np.median(cell_res[:, _CORNERS[0], _CORNERS[1]])
        win = _windows(cell_res)                                               # (shifts, N, P)
        wins.append(win)
        nccs.append(np.matmul(_normalise(win).transpose(1, 0, 2), tpl.glyphs[s]))  # (N, shifts, n)
    ncc = np.stack(nccs, axis=1).reshape(n_cells, -1)                          # (N, sources*shifts*n)
    best = ncc.argmax(axis=1)
    cells = np.arange(n_cells)
    score = ncc[cells, best]
    src, rest = np.divmod(best, wins[0].shape[0] * n)
    shift, digit = np.divmod(rest, n)
    obs = np.stack(wins)[src, shift, cells]                                    # (N, P)
    glyph = tpl.raw[src, cells, :, digit]                                      # (N, P)
    empty = obs.sum(axis=1) < _EMPTY_MASS * tpl.mass.min(axis=(0, 2))
    g_c = glyph - glyph.mean(axis=1, keepdims=True)
    o_c = obs - obs.mean(axis=1, keepdims=True)
    gain = (g_c * o_c).sum(axis=1) / np.maximum((g_c * g_c).sum(axis=1), 1e-6)
    resid = o_c - gain[:, None] * g_c
    unexplained = np.clip(resid - _RESID_INK, 0, None).sum(axis=1) / np.maximum(glyph.sum(axis=1), 1e-6)
    ok = ((score >= _MIN_NCC) & (gain >= _GAIN_RANGE[0]) & (gain <= _GAIN_RANGE[1])
          & (unexplained <= _MAX_UNEXPLAINED))
    digits = np.where(empty, 0, np.where(ok, digit + 1, 0))
    unreadable = np.flatnonzero(~empty & ~ok)
    return [int(v) for v in digits], [int(k) for k in unreadable]
