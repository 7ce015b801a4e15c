"""Moves on a grid, and the shared reader of a red path drawn through cell centres (maze and frozenlake).

Conventions (the published ones, reference §4 and §8): cells are ``(row, col)``, rows grow downwards, so ``D`` is
``(+1, 0)``; a path is written as a string of ``U``/``D``/``L``/``R`` moves.

``read_drawn_path`` turns a solution drawing into moves using pixels only:

1. *Redness*: every pixel gets a soft red score ``clip((R - max(G, B) - red_lo) / (red_hi - red_lo), 0, 1)``.
   Pure red (255, 0, 0) scores 1; white, black, gray, yellow and blue score 0, also after JPEG q75, Gaussian
   noise (sigma 8) and slight blur; anti-aliased pink or dark-red fringes score in between. A soft score (rather
   than a hard mask) keeps thin lines at small sizes readable after JPEG chroma subsampling has diluted them.
2. *On-cells*: a cell is "on" when the mean redness of its central region (the cell minus ``margin`` of its side
   on each edge; 0.25 keeps the central 50% x 50%) exceeds ``on_threshold``. A line through the cell centre of
   width cell/4 covers ~50% of that region (a thin or offset line turning in a corner cell much less, hence the
   low default threshold), while red bleeding over from a neighbour (spill-over, a thicker or
   slightly offset line, JPEG ringing) stays in the outer margin and does not count. The start and goal cells
   are on by definition and count as drawn once a join (step 3) leads into them: the line ends there, over the
   start/goal marker, and at small sizes JPEG chroma subsampling mixes that line end with the marker's colour.
3. *Joins*: two 4-adjacent on-cells are joined when red crosses their shared boundary near its midpoint: both
   half-windows ``join_depth`` x cell deep on either side of the boundary and ``2 * join_halflen`` x cell long
   around the midpoint must have mean redness above ``join_threshold``. Requiring *both* sides means a line that
   stops at a boundary (or runs parallel to it one wall away) is not a join.
4. *One path*: the drawn graph (on-cells, joins) must show exactly one route: start and goal are on, a
   breadth-first search over the drawn graph connects them, and every on-cell lies on the route found. Extra red
   corridors, branches, loops and stray blobs are reported as ParseFailure: a drawing with more red than one path
   is a wrong drawing, not a correct one. Unlike the published parsers there is no greedy R>D>L>U walk, so
   spill-over can not derail the reading, and the walk never continues past the goal.

Rules (walls, holes) are NOT consulted: a line drawn through a wall or a hole is reported as drawn and then fails
the task's ``verify``.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, fields, replace
from typing import Sequence

import numpy as np
from PIL import Image

from .base import ParseFailure, TaskError

__all__ = ["MOVES", "PathThresholds", "cell_scores", "cells_to_moves", "drawn_graph", "moves_to_cells",
           "moves_answer_from_text", "parse_moves_text", "read_drawn_path", "redness"]

#: Move letter -> (d_row, d_col). Rows go down with D (published convention).
MOVES: dict[str, tuple[int, int]] = {"U": (-1, 0), "D": (1, 0), "L": (0, -1), "R": (0, 1)}
_DELTA_TO_MOVE = {v: k for k, v in MOVES.items()}


# A run of move letters standing alone (not inside words such as "Done" or "Right"), with optional separators:
# "RRDL", "R R D L", "R, R, D", "R -> R -> D", "R-R-D", "R | R".
_MOVES_RUN = re.compile(r"(?<![A-Za-z])[UDLR](?:(?:[\s,;|]|->|→|-)*[UDLR])*(?![A-Za-z])")


def parse_moves_text(text: str) -> str | None:
    """The moves of the LAST run of U/D/L/R letters in ``text`` (a model states its final answer last), or None."""
    runs = _MOVES_RUN.findall(text)
    return re.sub(r"[^UDLR]", "", runs[-1]) if runs else None


def moves_answer_from_text(text, make):
    """``make(moves)`` for the last run of moves in ``text`` (see ``parse_moves_text``), or a ParseFailure."""
    if not isinstance(text, str):
        return ParseFailure(f"expected text, got {type(text).__name__}")
    moves = parse_moves_text(text)
    if moves is None:
        return ParseFailure("no run of U/D/L/R moves found in the text")
    return make(moves)


def moves_to_cells(start: tuple[int, int], moves: str) -> list[tuple[int, int]]:
    """The cells visited by ``moves`` from ``start`` (start included; no bounds check: rules are the task's job)."""
    if not isinstance(moves, str):
        raise TaskError(f"moves must be a string of U/D/L/R, got {type(moves).__name__}: {moves!r:.100}")
    r, c = int(start[0]), int(start[1])
    cells = [(r, c)]
    for i, m in enumerate(moves):
        try:
            dr, dc = MOVES[m]
        except KeyError:
            raise TaskError(f"invalid move {m!r} at index {i} of {moves!r:.100}; expected one of U, D, L, R") from None
        r, c = r + dr, c + dc
        cells.append((r, c))
    return cells


def cells_to_moves(cells: Sequence[tuple[int, int]]) -> str:
    """The U/D/L/R moves between consecutive cells; TaskError if two consecutive cells are not 4-adjacent."""
    out = []
    for i in range(1, len(cells)):
        (r0, c0), (r1, c1) = cells[i - 1], cells[i]
        try:
            out.append(_DELTA_TO_MOVE[(int(r1) - int(r0), int(c1) - int(c0))])
        except KeyError:
            raise TaskError(f"cells {tuple(cells[i - 1])} -> {tuple(cells[i])} (index {i}) are not 4-adjacent; "
                            "expected consecutive cells one row or one column apart") from None
    return "".join(out)


@dataclass(frozen=True)
class PathThresholds:
    """Tunable constants of ``read_drawn_path`` (fractions are of a cell's side; see the module docstring)."""

    # Measured on maze renders (n = 8..32 at 8 px per cell, the hardest case, seeds 0-11) after perturb.model_like,
    # a 2x down-rescale, and a radius-1 blur + JPEG: drawn interior cells score >= 0.34, off cells 0.00; drawn
    # joins >= 0.26, non-joins between two drawn cells <= 0.02. red_lo = 45 matters there: JPEG q75 chroma
    # ringing around 2 px lines leaves R - max(G, B) up to ~45 between two parallel lines one wall apart, while
    # a line's core keeps >= ~100 (pure red drawn at 512 px keeps ~240).
    red_lo: float = 45.0          # R - max(G, B) at or below this is not red at all (noise, JPEG tints)
    red_hi: float = 110.0         # ... at or above this is fully red
    margin: float = 0.25          # trimmed from each side of a cell before measuring "on"
    on_threshold: float = 0.08    # mean redness of the central region for an on-cell (low: thin or offset lines
                                  # through a corner cover ~0.12 after JPEG; unmarked cells stay at 0.00)
    join_depth: float = 0.15      # depth of each half-window on either side of a shared boundary
    join_halflen: float = 0.25    # half length of the join window along the boundary, around its midpoint
    join_threshold: float = 0.12  # mean redness each half-window must exceed for a join

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not np.isfinite(v):
                raise TaskError(f"threshold {f.name} must be a finite number, got {v!r}")
        if not 0 <= self.red_lo < self.red_hi <= 255:
            raise TaskError(f"need 0 <= red_lo < red_hi <= 255, got red_lo={self.red_lo}, red_hi={self.red_hi}")
        if not 0 <= self.margin < 0.5:
            raise TaskError(f"margin must be in [0, 0.5), got {self.margin}")
        for name in ("join_depth", "join_halflen"):
            if not 0 < getattr(self, name) <= 0.5:
                raise TaskError(f"{name} must be in (0, 0.5], got {getattr(self, name)}")
        for name in ("on_threshold", "join_threshold"):
            if not 0 <= getattr(self, name) < 1:
                raise TaskError(f"{name} must be in [0, 1), got {getattr(self, name)}")


_DEFAULT = PathThresholds()


def _thresholds(overrides: dict) -> PathThresholds:
    if not overrides:
        return _DEFAULT
    names = {f.name for f in fields(PathThresholds)}
    unknown = set(overrides) - names
    if unknown:
        raise TaskError(f"unknown threshold(s) {sorted(unknown)}; expected some of {sorted(names)}")
    return replace(_DEFAULT, **overrides)


def redness(rgb: np.ndarray, red_lo: float = _DEFAULT.red_lo, red_hi: float = _DEFAULT.red_hi) -> np.ndarray:
    """Soft red score in [0, 1] per pixel of an H x W x 3 uint8 array (float32)."""
    return _red_units(rgb, red_lo, red_hi).astype(np.float32) / np.float32(round(red_hi) - round(red_lo))


def _red_units(rgb: np.ndarray, red_lo: float, red_hi: float) -> np.ndarray:
    """Redness in integer units 0..(red_hi - red_lo) (int16): exact integer sums, and faster than floats."""
    d = rgb[..., 0].astype(np.int16)
    d -= np.maximum(rgb[..., 1], rgb[..., 2])
    lo, hi = int(round(red_lo)), int(round(red_hi))
    np.clip(d, lo, hi, out=d)
    d -= lo
    return d


def _as_rgb_array(rgb) -> np.ndarray:
    if isinstance(rgb, Image.Image):
        rgb = np.asarray(rgb.convert("RGB"))
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] < 3:
        raise TaskError(f"expected an H x W x 3 RGB array, got {getattr(rgb, 'shape', type(rgb).__name__)}")
    if rgb.dtype != np.uint8:
        raise TaskError(f"expected a uint8 RGB array, got dtype {rgb.dtype}")
    return rgb[..., :3]


def _edges(lo: np.ndarray, hi: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Round float pixel spans [lo, hi) to integer index spans holding at least one pixel."""
    a = np.clip(np.floor(lo + 0.5), 0, limit - 1).astype(np.intp)
    b = np.clip(np.floor(hi + 0.5), 0, limit).astype(np.intp)
    return a, np.maximum(b, a + 1)


class _RowPrefix:
    """Row-prefix sums of a 2-D array, at the few row indices the boxes need only.

    ``prefix[y]`` is ``units[:y].sum(axis=0)``. One ``np.add.reduceat`` pass over the image sums the bands between
    the needed indices; that is several times cheaper than a full cumulative sum (which writes a whole image of
    int32 partial sums) and gives the same exact integers.
    """

    def __init__(self, units: np.ndarray, needed: list[np.ndarray]) -> None:
        h = units.shape[0]
        rows = np.unique(np.concatenate([np.asarray(n, dtype=np.intp).ravel() for n in needed] + [[0, h]]))
        starts = rows[rows < h]
        bands = np.add.reduceat(units, starts, axis=0, dtype=np.int32)
        prefix = np.zeros((len(starts) + 1, units.shape[1]), dtype=np.int32)
        np.cumsum(bands, axis=0, out=prefix[1:])
        self._rows = np.append(starts, h)   # prefix[i] is the sum of units[:self._rows[i]]
        self._prefix = prefix

    def __getitem__(self, y: np.ndarray) -> np.ndarray:
        return self._prefix[np.searchsorted(self._rows, y)]


def _box_sums(rowsum: _RowPrefix, y0, y1, x0, x1) -> tuple[np.ndarray, np.ndarray]:
    """Sums and areas of the boxes [y0[i], y1[i]) x [x0[j], x1[j]) for all i, j, from row-prefix sums.

    The row prefixes serve every box; the column sums run on the k x W band sums only.
    """
    bands = rowsum[y1] - rowsum[y0]
    cols = np.zeros((bands.shape[0], bands.shape[1] + 1), dtype=np.int32)
    np.cumsum(bands, axis=1, out=cols[:, 1:])
    return cols[:, x1] - cols[:, x0], (y1 - y0)[:, None] * (x1 - x0)[None, :]


def _box_means(rowsum: np.ndarray, y0, y1, x0, x1) -> np.ndarray:
    total, area = _box_sums(rowsum, y0, y1, x0, x1)
    return total / area


def cell_scores(rgb, rows: int, cols: int, **thresholds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The raw measurements behind ``drawn_graph``, as redness fractions in [0, 1] (negative joins possible).

    Returns ``(centre, join_h, join_v)``: the mean redness of each cell's central region (rows x cols), and the
    join score of each horizontal (rows x cols-1) and vertical (rows-1 x cols) boundary: the smaller of the mean
    redness of its two half-windows.
    """
    t = _thresholds(thresholds)
    if not (isinstance(rows, int) and isinstance(cols, int)) or rows < 1 or cols < 1:
        raise TaskError(f"rows and cols must be positive ints, got rows={rows!r}, cols={cols!r}")
    if isinstance(rgb, Image.Image):
        w, h = rgb.size
    else:
        rgb = _as_rgb_array(rgb)
        h, w = rgb.shape[:2]
    if h < rows or w < cols:
        raise TaskError(f"a {w}x{h} image cannot hold a {rows}x{cols} grid (need at least one pixel per cell)")
    # Average step x step pixel blocks when cells are large (>= 8 x 8 blocks per cell remain): box averaging keeps
    # every pixel's ink (unlike subsampling), so window edges may quantise to blocks without losing thin or
    # offset lines; n=8 at 512 px reads a 64 x 64 array, n=32 a 256 x 256 one. PIL's C `reduce` does the averaging
    # (on the PIL image itself when given one, which saves a round trip through numpy).
    step = max(1, int(min(h / rows, w / cols) // 8))
    if step > 1:
        img = rgb.convert("RGB") if isinstance(rgb, Image.Image) else Image.fromarray(np.ascontiguousarray(rgb))
        rgb = img.reduce(step)
    arr = _as_rgb_array(rgb)
    units = _red_units(arr, t.red_lo, t.red_hi)
    scale = float(round(t.red_hi) - round(t.red_lo))
    hs, ws = arr.shape[:2]
    ch, cw = h / rows / step, w / cols / step     # cell size in sample units
    r_idx = np.arange(rows, dtype=np.float64)
    c_idx = np.arange(cols, dtype=np.float64)

    # Every window first (rows spans only matter for the prefix sums), then all box means from one pass.
    y0, y1 = _edges((r_idx + t.margin) * ch, (r_idx + 1 - t.margin) * ch, hs)
    x0, x1 = _edges((c_idx + t.margin) * cw, (c_idx + 1 - t.margin) * cw, ws)
    # Join windows never shrink below one sample deep / one sample either side of the midpoint (small renders).
    dep_x, dep_y = max(t.join_depth * cw, 1.0), max(t.join_depth * ch, 1.0)
    len_x, len_y = max(t.join_halflen * cw, 1.0), max(t.join_halflen * ch, 1.0)
    bx = np.arange(1, cols, dtype=np.float64) * cw
    ya, yb = _edges((r_idx + 0.5) * ch - len_y, (r_idx + 0.5) * ch + len_y, hs)
    by = np.arange(1, rows, dtype=np.float64) * ch
    up_edges, down_edges = _edges(by - dep_y, by, hs), _edges(by, by + dep_y, hs)
    rowsum = _RowPrefix(units, [y0, y1, ya, yb, *up_edges, *down_edges])

    centre = _box_means(rowsum, y0, y1, x0, x1) / scale
    # A join needs red on BOTH sides of the boundary (a line stopping at the boundary is not a join).
    join_h = np.zeros((rows, max(cols - 1, 0)))
    if cols > 1:
        left = _box_means(rowsum, ya, yb, *_edges(bx - dep_x, bx, ws))
        right = _box_means(rowsum, ya, yb, *_edges(bx, bx + dep_x, ws))
        join_h = np.minimum(left, right) / scale
    join_v = np.zeros((max(rows - 1, 0), cols))
    if rows > 1:
        mx = (c_idx + 0.5) * cw
        xa, xb = _edges(mx - len_x, mx + len_x, ws)
        up = _box_means(rowsum, *up_edges, xa, xb)
        down = _box_means(rowsum, *down_edges, xa, xb)
        join_v = np.minimum(up, down) / scale
    return centre, join_h, join_v


def drawn_graph(rgb, rows: int, cols: int, endpoints: Sequence[tuple[int, int]] = (),
                **thresholds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The drawn graph of a rows x cols grid laid over the whole image.

    Returns ``(on, join_h, join_v)``: ``on[r, c]`` (rows x cols bool); ``join_h[r, c]`` joins (r, c)-(r, c+1)
    (rows x cols-1); ``join_v[r, c]`` joins (r, c)-(r+1, c) (rows-1 x cols). Joins are only set between on-cells.
    Cells in ``endpoints`` count as on whatever their centre shows (see ``read_drawn_path``).
    """
    t = _thresholds(thresholds)
    centre, score_h, score_v = cell_scores(rgb, rows, cols, **thresholds)
    on = centre > t.on_threshold
    for cell in endpoints:
        on[cell] = True
    join_h = (score_h > t.join_threshold) & on[:, :-1] & on[:, 1:]
    join_v = (score_v > t.join_threshold) & on[:-1, :] & on[1:, :]
    return on, join_h, join_v


def _check_cell(name: str, cell, rows: int, cols: int) -> tuple[int, int]:
    try:
        r, c = (int(v) for v in cell)
    except (TypeError, ValueError):
        raise TaskError(f"{name} must be a (row, col) pair, got {cell!r}") from None
    if not (0 <= r < rows and 0 <= c < cols):
        raise TaskError(f"{name} {cell!r} is outside the {rows}x{cols} grid")
    return r, c


def read_drawn_path(rgb: np.ndarray, rows: int, cols: int, start: tuple[int, int], goal: tuple[int, int],
                    **thresholds) -> str | ParseFailure:
    """The U/D/L/R moves from ``start`` to ``goal`` that the red drawing shows, or a ParseFailure saying why.

    ``rgb`` is an H x W x 3 uint8 array (or a PIL image) of any size; the rows x cols grid covers the whole image.
    ``thresholds`` override fields of :class:`PathThresholds`. See the module docstring for the semantics.
    """
    start = _check_cell("start", start, rows, cols)
    goal = _check_cell("goal", goal, rows, cols)
    on, join_h, join_v = drawn_graph(rgb, rows, cols, endpoints=(start, goal), **thresholds)
    n_on = int(on.sum())
    details = {"on_cells": n_on}
    if start == goal:
        if n_on == 1:
            return ""
        return ParseFailure(f"start == goal {start} but {n_on - 1} other cells are drawn", details)
    for name, (r, c) in (("start", start), ("goal", goal)):
        degree = ((c + 1 < cols and join_h[r, c]) + (c > 0 and join_h[r, c - 1])
                  + (r + 1 < rows and join_v[r, c]) + (r > 0 and join_v[r - 1, c]))
        if not degree:
            return ParseFailure(f"the {name} cell {(r, c)} is not on the drawn path (no line leaves it)", details)

    # BFS over the drawn graph from the start; the route to the goal is the shortest drawn one.
    prev = {start: start}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        if (r, c) == goal:
            break
        nbrs = []
        if c + 1 < cols and join_h[r, c]:
            nbrs.append((r, c + 1))
        if c > 0 and join_h[r, c - 1]:
            nbrs.append((r, c - 1))
        if r + 1 < rows and join_v[r, c]:
            nbrs.append((r + 1, c))
        if r > 0 and join_v[r - 1, c]:
            nbrs.append((r - 1, c))
        for nb in nbrs:
            if nb not in prev:
                prev[nb] = (r, c)
                queue.append(nb)
    if goal not in prev:
        return ParseFailure(f"the start {start} and the goal {goal} are not connected by the drawn line",
                            {**details, "reached_from_start": len(prev)})
    route = [goal]
    while route[-1] != start:
        route.append(prev[route[-1]])
    route.reverse()
    if n_on != len(route):
        # Everything drawn must lie on the one route: branches, loops and extra corridors make the drawing wrong.
        on_route = np.zeros_like(on)
        for cell in route:
            on_route[cell] = True
        extra = [tuple(int(v) for v in rc) for rc in np.argwhere(on & ~on_route)[:8]]
        return ParseFailure(f"{n_on - len(route)} drawn cells lie off the route from start to goal "
                            f"(branch, loop or extra red), e.g. {extra}", {**details, "route_cells": len(route)})
    return cells_to_moves(route)
