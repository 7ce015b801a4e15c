"""TSP: connect all cities with red segments into the shortest closed tour (DiffThinker "TSP", reference §5).

Rules
  ``N`` distinct cities on the cells of a ``grid x grid`` board, city ``i`` at ``cities[i] = (x, y)`` with
  ``x`` the column (0 = left) and ``y`` the row (0 = top). City 0 is the start (drawn yellow), the others blue.
  Distances are Euclidean in grid units (cell pitch 1). An answer ``TspAnswer(tour)`` lists city indices, each
  exactly once; the closing edge back to the first city is implicit.

  - valid   iff the tour is a permutation of all cities. It may start anywhere and run either way: we rotate it
    to city 0 ourselves (the published path format starts at the start city; an LLM may not).
  - correct iff valid and its length <= optimum + 1e-6. Any optimal tour counts, in either direction.
  - score   = optimum / length for a valid tour (1.0 exactly iff correct, < 1 for a longer tour), 0.0 when
    invalid. A smooth RL reward: a tour 10% longer than optimal scores 1/1.1.
  ``details`` carries ``length``, ``optimum`` and ``gap`` (length / optimum - 1).

  Differences from the published evaluator (ref §5, §10): it requires the *set* of parsed nodes to equal the
  ground truth's and the length to be <= GT + 1e-4 but does not check that every city is visited exactly once;
  we require a permutation. Its tolerance 1e-4 becomes 1e-6 (lengths are sums of at most 20 square roots, so
  float error is ~1e-13 and distinct tour lengths on a 16-grid differ by far more than 1e-6 in practice).

Generation (as published): ``random.sample`` of N distinct cells of the grid; the first sampled cell is the start.
  The exact optimum is Held-Karp dynamic programming over subsets (the published code calls python_tsp's Held-Karp).

Levels: the published ``"12"``, ``"15"``, ``"18"`` (16 x 16 grid; 18 is out of the published training range 12..17)
  and two small CPU levels ``"6"`` and ``"8"`` on an 8 x 8 grid: at 64 px an 8-grid has 8 px cells (dots 2 px in
  radius, a 2 px line), while a 16-grid would leave 4 px cells, too small for a tiny diffusion model to draw
  into. The default level is ``"6"``.

Render ("diffthinker" style): white canvas; light-gray (224) grid lines at ``i * cs`` (``cs = size / grid``,
  i = 1..grid-1) of width ``max(1, int(size / grid / 20))``; a black border ``rectangle([0, 0, size-1, size-1],
  width=2)``; dots of radius ``int(0.3 * cs)`` at ``(x * cs + cs / 2, y * cs + cs / 2)`` (x = column), yellow
  start, blue others; the solution adds the red closed polyline through the tour (width ``int(0.15 * cs)``,
  ``joint="curve"``) drawn over the dots. At 512 px this equals the official PNGs pixel for pixel. Every
  formula is evaluated at the requested size, so other sizes are drawn natively (only palette colours, no
  resampling). Where the published constants would distort a small image we deviate, never at 512 px for grids
  up to 16: dot radius at least 1 px (published 3), line width at least 2 px (JPEG's 2x2 chroma subsampling
  washes a 1 px red line out), border ``max(1, round(2 * size / 512))`` px (published 2), and centres rounded
  to whole pixels (PIL draws wide lines between fractional points up to ~2 px off).

Parse (pixels + instance only; no dot detection, the city positions are known):
  1. Probes: for every pair of cities, 48 points along the segment between their centres, skipping the parts
     within 0.35 cells of either end (all of a city's edges overlap there), each read at 3 pixels across the
     line (centre and +-half a line width along the minor axis). Ink there is "faint red": R > 80 and
     R - G > 30, which finds the line also where it crosses a blue dot (purple) and after blur, noise or JPEG.
     A pair is *covered* when >= 90% of its points find ink.
  2. Collinear cities: a covered pair a-c with a city b on its segment (within half a line width) whose pairs
     a-b and b-c are covered too is the same ink as a-b-c; it leaves the graph, the tour passes b anyway.
  3. Every Hamiltonian cycle of the covered graph is listed (bounded search; a city with < 2 covered pairs
     fails at once). Cycles are ranked by fit, sum(1 - coverage) over their edges; those within 0.1 of the
     best fit are the same drawing (e.g. a backtrack along a line of cities) and the shortest of them comes
     first. A drawing is never read as another, shorter tour merely because that tour runs close to it.
  4. The first cycle that explains the ink wins: after erasing its own line widened by the spill-over margin
     (0.15 cells, at least 2 px, each side) and the city discs, no other covered pair may keep >= 50% of its
     ink (an extra chord), and at most ``0.6 * cs * line_width + 16`` strongly red pixels (``draw.red_mask``'s
     rule) may remain (scribbles away from the tour).
  Otherwise: ParseFailure with the reason (cities with fewer than two red segments, no single closed tour
  through every city, ink no tour explains). Non-square images are first resized to a square.
  Deliberate differences from the published parser (ref §5, §10): no greedy nearest-neighbour walk, and the
  closing edge is checked, so spill-over or a chord cannot derail the reading, and a drawing with extra or
  missing segments is rejected instead of being read as some tour.
  Guaranteed sizes (``supported_sizes_for(level)``): natively rendered images from 64 px (8-grid) or 128 px
  (16-grid, 8 px cells) to 1024 px, also after ``perturb.model_like``; a 512 px image resized while its line
  stays >= 2 px wide (down to 128 px for the 8-grid, 256 px for the 16-grid). A drawing that is ambiguous in
  pixels (a segment passing over a third city that is visited by other segments) may be unreadable.

Text (MLLM track): ``to_text`` lists the grid and the cities as ``(column, row)``, city 0 first.
  ``answer_to_text(answer, instance)`` writes the published ``path.json`` format, the tour as coordinates closed
  at the start: ``"(8,11),(10,10),...,(8,11)"``. The task contract's ``answer_to_text(answer)`` has no instance,
  and a ``TspAnswer`` holds indices only, so without an instance it writes the city indices closed at the start,
  ``"0,5,3,...,0"``. ``parse_text`` reads both (the last answer-like span; coordinates need the instance);
  a closing repeat of the first city is dropped.

Official folder (``TSP/<N>_test``): ``<id>.txt`` = ``"<grid> <N>"`` then N lines ``"x y"`` (first = start),
  ``<id>.png``, ``<id>_solution.png``, and ``path.json`` ``{"16_12_001": "(8,11),(10,10),...,(8,11)"}``;
  ids ``16_12_001``; the level is N.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from . import draw
from .base import Answer, Instance, OfficialItem, ParseFailure, Task, TaskError, Verdict, register_task
from .officialio import read_answers_json, write_answers_json

__all__ = ["LEVELS", "MAX_CITIES", "TspAnswer", "TspGeometry", "TspInstance", "TspLevel", "TspTask", "geometry",
           "held_karp", "tour_length"]

#: Held-Karp needs 2^(N-1) * (N-1) table entries: 20 cities is ~80 MB of float64, the most we allow.
MAX_CITIES = 20
MAX_GRID = 64
#: Correct iff length <= optimum + TOLERANCE (grid units).
TOLERANCE = 1e-6
ALL_SIZES = (64, 128, 256, 512, 1024)

# Parser constants (see the module docstring). Distances in grid cells unless named *_px.
_END_SKIP = 0.35        # skip samples this close to either end of a probe (dot radius 0.3 + margin)
_SAMPLES = 48           # samples along each probe
_COVERED = 0.90         # share of red samples that makes a pair "covered"
_RESIDUAL_EDGE = 0.50   # a covered pair not in the cycle keeping this share of red samples is an extra segment
_SPILL = 0.15           # tolerated spill-over beyond a line's edge, in cells ...
_SPILL_PX = 2.0         # ... and at least this many px (JPEG and blur smear a small image's line by ~2 px)
_RESIDUAL_AREA = 0.6    # tolerated leftover red: a 0.6-cell stretch of line (cs * line_width units) ...
_RESIDUAL_PX = 16       # ... plus this many px (JPEG blotches on small images)
_FIT_MARGIN = 0.1       # cycles whose missing ink is within this of the best fit count as the same drawing
_DFS_BUDGET = 50_000    # search steps before a drawing counts as too ambiguous to read
_MAX_CYCLES = 64        # candidate cycles collected (the 16 best ranked are checked against the ink)


@dataclass(frozen=True)
class TspLevel:
    grid: int        # board side in cells
    n_cities: int    # number of cities, start included
    min_size: int    # smallest render size the parser is guaranteed to read


LEVELS: dict[str, TspLevel] = {
    "6": TspLevel(8, 6, 64),
    "8": TspLevel(8, 8, 64),
    "12": TspLevel(16, 12, 128),
    "15": TspLevel(16, 15, 128),
    "18": TspLevel(16, 18, 128),
}


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


@dataclass(frozen=True)
class TspInstance(Instance):
    """``grid`` x ``grid`` board; ``cities[i] = (x, y)`` = (column, row); city 0 is the start."""

    grid: int
    cities: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        if not _is_int(self.grid) or not 2 <= self.grid <= MAX_GRID:
            raise TaskError(f"TspInstance.grid must be an int in [2, {MAX_GRID}], got {self.grid!r}")
        if not isinstance(self.cities, tuple) or not 3 <= len(self.cities) <= MAX_CITIES:
            raise TaskError(f"TspInstance.cities must be a tuple of 3..{MAX_CITIES} (x, y) pairs, "
                            f"got {self.cities!r:.200}")
        for i, c in enumerate(self.cities):
            if (not isinstance(c, tuple) or len(c) != 2 or not all(_is_int(v) for v in c)
                    or not all(0 <= v < self.grid for v in c)):
                raise TaskError(f"TspInstance city {i} must be an (x, y) pair of ints in [0, {self.grid}), got {c!r}")
        if len(set(self.cities)) != len(self.cities):
            dup = sorted({c for c in self.cities if self.cities.count(c) > 1})
            raise TaskError(f"TspInstance cities must be distinct; repeated: {dup}")

    @property
    def n(self) -> int:
        return len(self.cities)


@dataclass(frozen=True)
class TspAnswer(Answer):
    """A closed tour as city indices, each city once; the edge back to ``tour[0]`` is implicit."""

    tour: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.tour, tuple) or not all(_is_int(v) for v in self.tour):
            raise TaskError(f"TspAnswer.tour must be a tuple of ints, got {self.tour!r:.200}")


# --------------------------------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class TspGeometry:
    """Pixel geometry of a render at ``size`` px (the published formulas, floors as in the module docstring)."""

    size: int
    grid: int
    cs: float          # cell size in px
    grid_width: int    # light-gray grid lines
    border: int        # black border
    radius: int        # city dot radius
    line_width: int    # red tour line

    def centre(self, city: tuple[int, int]) -> tuple[int, int]:
        """Pixel centre of a city: ``(x * cs + cs / 2, y * cs + cs / 2)`` rounded. At 512 px (and any size
        that is a multiple of 2 * grid) this is exact, as published; at other sizes rounding matters because
        PIL draws wide lines between fractional points up to ~2 px off their true position."""
        x, y = city
        return (int(math.floor(x * self.cs + self.cs / 2 + 0.5)), int(math.floor(y * self.cs + self.cs / 2 + 0.5)))


def geometry(grid: int, size: int) -> TspGeometry:
    cs = size / grid
    return TspGeometry(
        size=size, grid=grid, cs=cs,
        grid_width=max(1, int(size / grid / 20)),
        # Published: 2 px at 512 (and at every size); scaled so a 64 px render is not a third border.
        border=2 if size == 512 else max(1, round(2 * size / 512)),
        # Published max(3, int(0.3 cs)) and int(0.15 cs); the floors differ only below ~213 px (see docstring).
        radius=max(1, int(0.3 * cs)),
        line_width=max(2, int(0.15 * cs)),
    )


# --------------------------------------------------------------------------------------------------- solver
def _distances(cities: Sequence[tuple[int, int]]) -> np.ndarray:
    pts = np.asarray(cities, dtype=np.float64)
    return np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])


def tour_length(cities: Sequence[tuple[int, int]], tour: Sequence[int]) -> float:
    """Closed length of ``tour`` in grid units (math.fsum, so the value does not depend on summation order
    beyond the last ulp; the optimum and candidate tours are measured by this same function)."""
    n = len(tour)
    return math.fsum(math.dist(cities[tour[k]], cities[tour[(k + 1) % n]]) for k in range(n))


def _canonical(tour: Sequence[int]) -> tuple[int, ...]:
    """Rotate to start at city 0 and run in the direction whose second city has the smaller index."""
    t = list(tour)
    k = t.index(0)
    t = t[k:] + t[:k]
    if len(t) > 2 and t[-1] < t[1]:
        t = [t[0]] + t[:0:-1]
    return tuple(t)


def _popcount(masks: np.ndarray, bits: int) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(masks)
    out = np.zeros(masks.shape, dtype=np.int64)
    for b in range(bits):
        out += (masks >> b) & 1
    return out


def held_karp(dist: np.ndarray) -> tuple[int, ...]:
    """An optimal closed tour for the symmetric distance matrix ``dist`` (exact Held-Karp, starting at city 0).

    ``dp[i, S]`` is the shortest path from city 0 through the subset ``S`` of cities 1..n-1 ending in ``i``.
    The DP runs layer by layer (subsets of equal size), vectorised over all subsets of a layer that end in a
    given city ``j``: ``dp[j, S] = min_i dp[i, S - {j}] + d(i, j)`` is one gather + add + min over the leading
    axis per (layer, j), i.e. ~17 x 17 numpy calls over 2^17 subsets for 18 cities instead of a Python loop over
    subsets. No argmin table is kept: the tour is recovered afterwards by finding, at each step back, the
    smallest predecessor ``i`` whose ``dp[i, S - {j}] + d(i, j)`` equals ``dp[j, S]`` exactly (the same float
    operations give the same bits), so the result is deterministic.
    """
    n = dist.shape[0]
    if n <= 3:
        return tuple(range(n))
    m = n - 1                       # cities 1..n-1 are bits 0..m-1
    full = 1 << m
    d = np.ascontiguousarray(dist[1:, 1:])
    dp = np.full((m, full), np.inf)
    dp[np.arange(m), 1 << np.arange(m)] = dist[0, 1:]
    popcount = _popcount(np.arange(full, dtype=np.int64), m)
    order = np.argsort(popcount, kind="stable")        # masks grouped by size, ascending within a group
    bounds = np.searchsorted(popcount[order], np.arange(m + 2))
    for k in range(2, m + 1):
        layer = order[bounds[k]:bounds[k + 1]]
        for j in range(m):
            sj = layer[(layer >> j) & 1 == 1]
            # np.take along axis 1 is ~3x faster than dp[:, idx] fancy indexing here.
            cand = np.take(dp, sj ^ (1 << j), axis=1)     # inf where i is not in S - {j}
            cand += d[:, j, None]
            dp[j, sj] = cand.min(axis=0)
    closing = dp[:, full - 1] + dist[1:, 0]
    j = int(np.argmin(closing))
    tour, mask = [j + 1], full - 1
    while mask != 1 << j:
        prev = mask ^ (1 << j)
        target = dp[j, mask]
        i = next(i for i in range(m) if prev >> i & 1 and dp[i, prev] + d[i, j] == target)
        tour.append(i + 1)
        mask, j = prev, i
    return (0,) + tuple(reversed(tour))


_OPTIMA: OrderedDict[TspInstance, tuple[float, tuple[int, ...]]] = OrderedDict()
_OPTIMA_MAX = 4096
_OPTIMA_LOCK = threading.Lock()


def _optimum(instance: TspInstance, fresh: bool = False) -> tuple[float, tuple[int, ...]]:
    """(optimal length, canonical optimal tour), remembered per instance (instances hash by content) so
    ``verify`` after ``solve`` costs nothing. ``fresh=True`` (what ``solve`` uses) always runs Held-Karp, so
    timing ``solve`` measures the solver, and stores the result for ``verify``."""
    if not fresh:
        with _OPTIMA_LOCK:
            if instance in _OPTIMA:
                _OPTIMA.move_to_end(instance)
                return _OPTIMA[instance]
    tour = _canonical(held_karp(_distances(instance.cities)))
    result = (tour_length(instance.cities, tour), tour)
    with _OPTIMA_LOCK:  # data loaders may verify from several threads
        _OPTIMA[instance] = result
        _OPTIMA.move_to_end(instance)
        while len(_OPTIMA) > _OPTIMA_MAX:
            _OPTIMA.popitem(last=False)
    return result


# --------------------------------------------------------------------------------------------------- parsing
@lru_cache(maxsize=32)
def _pairs(n: int) -> np.ndarray:
    ii, jj = np.triu_indices(n, 1)
    return np.stack([ii, jj], axis=1)


@lru_cache(maxsize=32)
def _pair_code(n: int) -> np.ndarray:
    """(n, n) array: index of the pair {i, j} in ``_pairs(n)`` (-1 on the diagonal)."""
    ii, jj = _pairs(n).T
    code = np.full((n, n), -1, dtype=np.int64)
    code[ii, jj] = code[jj, ii] = np.arange(len(ii))
    return code


@dataclass(frozen=True)
class _Probes:
    """Everything about an instance's probes at one image size (cached: it depends on no pixel)."""

    pairs: np.ndarray      # (P, 2) city index pairs i < j
    idx: np.ndarray        # (P, K, 3) flat pixel indices: K points along the segment, 3 across
    valid: np.ndarray      # (P, K) samples outside the end discs
    count: np.ndarray      # (P,) number of valid samples (>= 1)
    centres: np.ndarray    # (N, 2) city centres in px (x, y)
    cs: float              # cell size in px (the smaller of the two axes)
    line_width: int        # nominal line width at this image size
    stride: int            # the leftover-ink check reads every stride-th pixel (half a line width)
    small: tuple[int, int]  # (width, height) of that strided grid
    idx_small: np.ndarray  # (P, K, 3) the samples' indices in the strided grid
    through: np.ndarray    # (T, 3) rows (pair a-c, pair a-b, pair b-c) for a city b lying on segment a-c


@lru_cache(maxsize=512)
def _probes(cities: tuple[tuple[int, int], ...], grid: int, width: int, height: int) -> _Probes:
    n = len(cities)
    sx, sy = width / grid, height / grid
    pts = np.asarray(cities, dtype=np.float64)
    centres = np.stack([(pts[:, 0] + 0.5) * sx, (pts[:, 1] + 0.5) * sy], axis=1)
    pairs = _pairs(n)
    ii, jj = pairs[:, 0], pairs[:, 1]
    length = np.hypot(pts[jj, 0] - pts[ii, 0], pts[jj, 1] - pts[ii, 1])           # grid units, >= 1
    t = (np.arange(_SAMPLES) + 0.5) / _SAMPLES
    valid = (t[None, :] * length[:, None] >= _END_SKIP) & ((1 - t[None, :]) * length[:, None] >= _END_SKIP)
    cs = min(sx, sy)
    lw = max(2, int(0.15 * cs))
    off = max(1.0, 0.5 * lw)
    # Sample (pair p, point k, across o) at a + t_k (b - a), shifted by -off, 0, +off px along the minor axis
    # (y for a flat segment, x for a steep one): a rasterised line has a pixel within half its width of the
    # centre in every column (row), whereas offsets along the true normal can slip between the steps of a
    # thin staircase. x and y are kept apart (broadcasting over a trailing axis of 2 is several times slower).
    # Pixel of coordinate c: round(c), PIL's convention (pixel i is centred on i).
    ax, ay = centres[ii, 0], centres[ii, 1]
    dx, dy = centres[jj, 0] - ax, centres[jj, 1] - ay
    flat = np.abs(dx) >= np.abs(dy)
    o = np.array([-off, 0.0, off])[None, None, :]
    tk = t[None, :, None]
    xs = ax[:, None, None] + tk * dx[:, None, None] + np.where(flat, 0.0, 1.0)[:, None, None] * o
    ys = ay[:, None, None] + tk * dy[:, None, None] + np.where(flat, 1.0, 0.0)[:, None, None] * o
    xs = np.clip(np.floor(xs + 0.5).astype(np.int64), 0, width - 1)
    ys = np.clip(np.floor(ys + 0.5).astype(np.int64), 0, height - 1)
    stride = max(1, lw // 2)
    small = (-(-width // stride), -(-height // stride))
    # Pairs (a, c) with a city b on the segment between them, up to half a line width + 1 px (all pairs x all
    # cities at once): rows (pair a-c, pair a-b, pair b-c).
    seg = pts[jj] - pts[ii]                                                        # (P, 2)
    rel = pts[None, :, :] - pts[ii][:, None, :]                                    # (P, N, 2)
    tt = (rel @ seg[:, :, None])[..., 0] / (seg * seg).sum(1)[:, None]             # (P, N)
    off_line = np.hypot(*(rel - tt[..., None] * seg[:, None, :]).transpose(2, 0, 1))
    q, b = np.nonzero((off_line <= (lw / 2 + 1.0) / cs) & (tt > 0) & (tt < 1))
    code = _pair_code(n)
    through = np.stack([q, code[ii[q], b], code[jj[q], b]], axis=1)
    return _Probes(pairs=pairs, idx=ys * width + xs, valid=valid, count=np.maximum(valid.sum(1), 1),
                   centres=centres, cs=cs, line_width=lw, stride=stride, small=small,
                   idx_small=(ys // stride) * small[0] + xs // stride,
                   through=through)


def _faint(flat_rgb: np.ndarray, pr: _Probes) -> np.ndarray:
    """Faint red ink at the probe samples, (P, K, 3) bool: R > 80 and R - G > 30.

    Nothing in the palette has R above G (white, gray, black, blue, and yellow where R = G), so this finds the
    red line also where it crosses a blue dot and blurs into purple, and the pink trace a 512 px render keeps
    when it is shrunk to 128 px, blurred and JPEG-compressed (JPEG halves the chroma resolution). Noise of
    sigma 8 and JPEG q75 on a problem image put no pixel above it. Only the samples are read (~20k pixels)."""
    s = flat_rgb[pr.idx]
    r = s[..., 0].astype(np.int16)
    return (r > 80) & (r - s[..., 1] > 30)


def _strong(rgb: np.ndarray, stride: int) -> np.ndarray:
    """``draw.red_mask``'s stricter rule on every stride-th pixel, flattened: used for the leftover-ink area,
    so faint pink halos around correct lines never count as scribbles."""
    sub = rgb[::stride, ::stride]
    # uint8 pre-filter on the strided view (R - G > 60 and R - B > 60 imply G, B < 195): only the reddish
    # pixels get the exact int16 test, instead of widening the whole image.
    mask = (sub[..., 0] > 120) & (sub[..., 1] < 195) & (sub[..., 2] < 195)
    ys, xs = np.nonzero(mask)
    px = sub[ys, xs].astype(np.int16)
    mask[ys, xs] = (px[:, 0] - px[:, 1] > 60) & (px[:, 0] - px[:, 2] > 60)
    return mask.ravel()


def _coverage(hits: np.ndarray, pr: _Probes) -> np.ndarray:
    """Share of each probe's samples (outside the end discs) where any of the 3 across-samples is ink."""
    return (hits.any(axis=2) & pr.valid).sum(1) / pr.count


def _hamiltonian_cycles(adj: list[int], n: int) -> list[tuple[int, ...]] | None:
    """All Hamiltonian cycles through city 0 in the graph ``adj`` (bitmasks), one per direction pair;
    None if the search exceeds its budget (a drawing that covers too many pairs to read)."""
    full = (1 << n) - 1
    out: list[tuple[int, ...]] = []
    path = [0]
    steps = 0

    def dfs(v: int, visited: int) -> bool:
        nonlocal steps
        steps += 1
        if steps > _DFS_BUDGET:
            return False
        if visited == full:
            if adj[v] & 1 and path[1] < path[-1]:
                out.append(tuple(path))
            return len(out) < _MAX_CYCLES
        cand = adj[v] & ~visited
        while cand:
            bit = cand & -cand
            cand ^= bit
            u = bit.bit_length() - 1
            path.append(u)
            ok = dfs(u, visited | bit)
            path.pop()
            if not ok:
                return False
        return True

    finished = dfs(0, 1)
    if not finished and steps > _DFS_BUDGET:
        return None
    return out


# --------------------------------------------------------------------------------------------------- the task
class TspTask(Task):
    name = "tsp"
    version = 1
    prompt = "Connect all points with red line segments to form the shortest closed loop."
    levels = LEVELS
    default_level = "6"
    instance_type = TspInstance
    answer_type = TspAnswer
    official_patterns = (r"/TSP/(\d+)_test/?$",)
    supported_sizes = ALL_SIZES  # for the default level; see supported_sizes_for

    def supported_sizes_for(self, level: str) -> tuple[int, ...]:
        """Render sizes the parser is guaranteed to read for ``level`` (16-grid levels start at 128 px)."""
        cfg = self.level_config(level)
        return tuple(s for s in ALL_SIZES if s >= cfg.min_size)

    # ----------------------------------------------------------------- generation and solving
    def generate(self, level: str, seed: int) -> TspInstance:
        cfg = self.level_config(level)
        rng = self.rng(level, seed)
        cells = rng.sample(range(cfg.grid * cfg.grid), cfg.n_cities)
        return TspInstance(grid=cfg.grid, cities=tuple((c % cfg.grid, c // cfg.grid) for c in cells))

    def solve(self, instance: TspInstance) -> TspAnswer:
        self._check_instance(instance)
        return TspAnswer(_optimum(instance, fresh=True)[1])

    def optimum(self, instance: TspInstance) -> float:
        """The optimal closed tour length in grid units (cached per instance)."""
        self._check_instance(instance)
        return _optimum(instance)[0]

    # ----------------------------------------------------------------- rules
    def _verify(self, instance: TspInstance, answer: TspAnswer) -> Verdict:
        n, tour = instance.n, answer.tour
        if len(tour) != n:
            return Verdict.failure(f"the tour lists {len(tour)} cities; expected each of the {n} cities once",
                                   cities=len(tour))
        bad = [v for v in tour if not 0 <= v < n]
        if bad:
            return Verdict.failure(f"city indices {bad} are out of range 0..{n - 1}")
        if len(set(tour)) != n:
            missing = sorted(set(range(n)) - set(tour))
            return Verdict.failure(f"the tour repeats cities and misses {missing}", missing=missing)
        opt = _optimum(instance)[0]
        length = tour_length(instance.cities, tour)
        gap = length / opt - 1.0
        details = {"length": length, "optimum": opt, "gap": gap}
        if length <= opt + TOLERANCE:
            return Verdict(True, True, 1.0, "optimal closed tour", details)
        return Verdict(False, True, min(1.0, opt / length),
                       f"valid tour, {length:.4f} long, {100 * gap:.2f}% above the optimum {opt:.4f}", details)

    # ----------------------------------------------------------------- images
    def render(self, instance: TspInstance, answer: TspAnswer | None = None, size: int = 512,
               style: str = "diffthinker") -> Image.Image:
        """Problem image, or with ``answer`` the solution image: the closed red polyline through ``answer.tour``
        in the given order (any index sequence is drawn as given, so invalid tours can be pictured too)."""
        self._check_instance(instance)
        self.check_style(style)
        if not _is_int(size) or not draw.MIN_SIDE <= size <= 4096:
            raise TaskError(f"render size must be an int in [{draw.MIN_SIDE}, 4096], got {size!r}")
        geo = geometry(instance.grid, int(size))
        img = Image.new("RGB", (size, size), draw.WHITE)
        d = ImageDraw.Draw(img)
        for i in range(1, instance.grid):
            p = i * geo.cs
            d.line([(p, 0), (p, size)], fill=draw.GRID_GRAY, width=geo.grid_width)
            d.line([(0, p), (size, p)], fill=draw.GRID_GRAY, width=geo.grid_width)
        d.rectangle([0, 0, size - 1, size - 1], outline=draw.BLACK, width=geo.border)
        r = geo.radius
        for k, city in enumerate(instance.cities):
            cx, cy = geo.centre(city)
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=draw.YELLOW if k == 0 else draw.BLUE)
        if answer is not None:
            if not isinstance(answer, TspAnswer):
                raise TaskError(f"{self.id} render expects a TspAnswer, got {type(answer).__name__}")
            bad = [v for v in answer.tour if not 0 <= v < instance.n]
            if bad or len(answer.tour) < 2:
                raise TaskError(f"cannot draw tour {answer.tour!r}: needs >= 2 city indices in 0..{instance.n - 1}")
            pts = [geo.centre(instance.cities[v]) for v in answer.tour]
            draw.polyline(d, pts + pts[:1], fill=draw.RED, width=geo.line_width)
        return img

    def _parse(self, image: Image.Image, instance: TspInstance) -> TspAnswer | ParseFailure:
        if image.width != image.height:
            # A stretched image has elliptic dots and direction-dependent line widths; squaring it first keeps
            # every length below isotropic (one cell size, one line width). 2048 px is ample for any grid.
            side = min(max(image.size), 2048)
            image = image.resize((side, side), Image.Resampling.BILINEAR)
        width, height = image.size
        n = instance.n
        pr = _probes(instance.cities, instance.grid, width, height)
        rgb = np.asarray(image)
        faint = _faint(rgb.reshape(-1, 3), pr)
        cov = _coverage(faint, pr)
        covered = cov >= _COVERED
        # Collinear cities: when a-b and b-c are drawn, the pair a-c is covered too. The tour must pass b
        # anyway, so a-c is dropped from the graph (the decomposition through b is the reading; an a-c edge
        # that passes over b while b is visited by other segments is pixel-identical and unreadable).
        shadowed = np.zeros_like(covered)
        if len(pr.through):
            hit = covered[pr.through[:, 1]] & covered[pr.through[:, 2]]
            shadowed[pr.through[hit, 0]] = True
        graph = covered & ~shadowed
        adj = [0] * n
        for i, j in pr.pairs[graph]:
            adj[i] |= 1 << int(j)
            adj[j] |= 1 << int(i)
        degree = [a.bit_count() for a in adj]
        short = [k for k in range(n) if degree[k] < 2]
        if short:
            where = ", ".join(f"{k} at {instance.cities[k]}" for k in short[:5])
            return ParseFailure(f"{len(short)} cities have fewer than 2 red segments: {where}",
                                {"covered_pairs": int(covered.sum())})
        cycles = _hamiltonian_cycles(adj, n)
        if cycles is None:
            return ParseFailure(f"too many red connections to read one tour ({int(covered.sum())} covered pairs)",
                                {"covered_pairs": int(covered.sum())})
        if not cycles:
            return ParseFailure("the red segments do not form one closed tour through every city",
                                {"covered_pairs": int(covered.sum())})
        cycles = self._rank(cycles, cov, n, instance)
        last_reason = ""
        strong = None
        for cyc in cycles[:16]:
            if strong is None:
                strong = _strong(rgb, pr.stride)
            reason = self._unexplained(strong, faint, pr, covered, cyc)
            if not reason:
                return TspAnswer(_canonical(cyc))
            last_reason = last_reason or reason
        return ParseFailure(f"red ink that no single tour explains: {last_reason}",
                            {"covered_pairs": int(covered.sum()), "cycles": len(cycles)})

    @staticmethod
    def _rank(cycles: list[tuple[int, ...]], cov: np.ndarray, n: int,
              instance: TspInstance) -> list[tuple[int, ...]]:
        """Order candidate cycles: the best fit to the ink first, and among equally good fits the shortest.

        A cycle's misfit is the ink its edges lack, sum(1 - coverage). Cycles within _FIT_MARGIN of the best
        fit show the same drawing (collinear cities: A-B-C and the backtracking A-C-B-... cover the same
        pixels) and the shortest of them wins, as the published evaluator would score either. A cycle that fits
        worse (a near-parallel pair that only borders the drawn line) comes after them, so a drawing is never
        read as a different, shorter tour merely because that tour runs close to it."""
        code = _pair_code(n)
        lengths = {c: tour_length(instance.cities, c) for c in cycles}
        misfit = {c: float((1.0 - cov[code[list(c), list(c[1:] + c[:1])]]).sum()) for c in cycles}
        best = min(misfit.values())
        return sorted(cycles, key=lambda c: (misfit[c] > best + _FIT_MARGIN,
                                             lengths[c] if misfit[c] <= best + _FIT_MARGIN else misfit[c],
                                             lengths[c], c))

    @staticmethod
    def _unexplained(strong: np.ndarray, faint: np.ndarray, pr: _Probes, covered: np.ndarray,
                     cycle: tuple[int, ...]) -> str:
        """Why ``cycle`` does not explain the red ink ("" if it does): red left over after erasing the cycle's
        widened line and the city discs, on the strided grid."""
        st = pr.stride
        spill = max(_SPILL_PX, _SPILL * pr.cs)
        canvas = Image.new("L", pr.small, 0)
        d = ImageDraw.Draw(canvas)
        pts = [(x / st, y / st) for x, y in pr.centres[list(cycle)]]
        d.line(pts + pts[:1], fill=255, width=max(1, int(round((pr.line_width + 2 * spill) / st))))
        # The discs (wider than the line) also round off the joints, so the line needs no joint="curve".
        rad = (max(1, int(0.3 * pr.cs)) + spill) / st
        for x, y in pr.centres / st:
            d.ellipse([x - rad, y - rad, x + rad, y + rad], fill=255)
        unexplained = np.asarray(canvas).ravel() == 0
        extra = covered.copy()
        extra[_pair_code(len(pr.centres))[list(cycle), list(cycle[1:] + cycle[:1])]] = False
        if extra.any():
            res_cov = _coverage(faint & unexplained[pr.idx_small], pr)
            bad = np.flatnonzero(extra & (res_cov >= _RESIDUAL_EDGE))
            if len(bad):
                i, j = pr.pairs[bad[0]]
                return f"an extra red segment between cities {int(i)} and {int(j)}"
        area = int(np.count_nonzero(strong & unexplained)) * st * st
        limit = _RESIDUAL_AREA * pr.cs * pr.line_width + _RESIDUAL_PX
        if area > limit:
            return f"about {area} red pixels away from the tour (at most {limit:.0f} tolerated)"
        return ""

    # ----------------------------------------------------------------- text side
    def to_text(self, instance: TspInstance) -> str:
        self._check_instance(instance)
        g = instance.grid
        lines = [
            f"A {g}x{g} grid; positions are (column, row) with column 0..{g - 1} from left to right and "
            f"row 0..{g - 1} from top to bottom.",
            f"{instance.n} cities; city 0 (yellow) is the start, the others are blue:",
        ]
        lines += [f"city {k}: ({x},{y})" for k, (x, y) in enumerate(instance.cities)]
        (x0, y0), (x1, y1) = instance.cities[0], instance.cities[1]
        lines.append("Find the shortest closed tour (straight segments, Euclidean length) that visits every city "
                     "once and returns to the start. Answer with the tour as points from the start back to the "
                     f"start, e.g. ({x0},{y0}),({x1},{y1}),...,({x0},{y0}).")
        return "\n".join(lines)

    def answer_to_text(self, answer: TspAnswer, instance: TspInstance | None = None) -> str:
        """The published path format ``"(x,y),...,(x,y)"`` closed at the start when ``instance`` is given;
        otherwise the city indices closed at the first one, ``"0,5,3,...,0"``."""
        if not isinstance(answer, TspAnswer):
            raise TaskError(f"{self.id} expects a TspAnswer, got {type(answer).__name__}")
        tour = list(answer.tour) + list(answer.tour[:1])
        if instance is None:
            return ",".join(str(v) for v in tour)
        self._check_instance(instance)
        bad = [v for v in tour if not 0 <= v < instance.n]
        if bad:
            raise TaskError(f"tour indices {bad} are out of range for {instance.n} cities")
        return ",".join(f"({instance.cities[v][0]},{instance.cities[v][1]})" for v in tour)

    _POINT = r"\(\s*(\d+)\s*,\s*(\d+)\s*\)"
    _SEP = r"\s*(?:,|;|->|→|=>|-|–|—)?\s*"
    _PATH_RE = re.compile(rf"{_POINT}(?:{_SEP}{_POINT})+")
    _INDEX_RE = re.compile(r"(?<![\d.])\d+(?:\s*(?:,|;|->|→|=>|-|–|—|\s)\s*\d+)+(?!\d)")

    def parse_text(self, text: str, instance: TspInstance | None = None) -> TspAnswer | ParseFailure:
        """The last tour in ``text``: a coordinate path ``(x,y),(x,y),...`` (mapped to city indices through
        ``instance``), else a list of >= 3 city indices separated by commas, arrows, dashes or spaces.
        A closing repeat of the first city is dropped; validity (each city once) is verify's job."""
        if not isinstance(text, str):
            return ParseFailure(f"expected text, got {type(text).__name__}")
        paths = list(self._PATH_RE.finditer(text))
        if paths:
            if instance is None:
                return ParseFailure("a coordinate tour needs the instance to map points to cities")
            self._check_instance(instance)
            pts = [(int(a), int(b)) for a, b in re.findall(self._POINT, paths[-1].group(0))]
            index = {c: k for k, c in enumerate(instance.cities)}
            unknown = [p for p in pts if p not in index]
            if unknown:
                return ParseFailure(f"points {unknown[:5]} are not cities of this instance")
            tour = [index[p] for p in pts]
        else:
            runs = [m.group(0) for m in self._INDEX_RE.finditer(text)]
            runs = [r for r in runs if len(re.findall(r"\d+", r)) >= 3]
            if not runs:
                return ParseFailure("no tour found: expected (x,y),(x,y),... or a list of city indices")
            tour = [int(v) for v in re.findall(r"\d+", runs[-1])]
            if instance is not None:
                self._check_instance(instance)
                bad = [v for v in tour if v >= instance.n]
                if bad:
                    return ParseFailure(f"city indices {bad[:5]} are out of range 0..{instance.n - 1}")
        if len(tour) >= 2 and tour[-1] == tour[0]:
            tour = tour[:-1]
        return TspAnswer(tuple(tour))

    # ----------------------------------------------------------------- official folders
    _ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

    def _level_of(self, instance: TspInstance, where: str) -> str:
        for name, cfg in self.levels.items():
            if cfg.grid == instance.grid and cfg.n_cities == instance.n:
                return name
        raise TaskError(f"{where}: {instance.n} cities on a {instance.grid}-grid match no {self.id} level; "
                        f"expected one of {[(c.grid, c.n_cities) for c in self.levels.values()]}")

    def _read_txt(self, path: Path) -> TspInstance:
        try:
            rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
            nums = [[int(v) for v in row] for row in rows]
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise TaskError(f"{path}: not a TSP .txt file ({type(exc).__name__}: {exc})") from None
        if not nums or len(nums[0]) != 2 or any(len(r) != 2 for r in nums):
            raise TaskError(f"{path}: expected a '<grid> <N>' header and N lines 'x y'")
        (grid, n), pts = nums[0], nums[1:]
        if len(pts) != n:
            raise TaskError(f"{path}: the header announces {n} cities but {len(pts)} lines follow")
        try:
            return TspInstance(grid=grid, cities=tuple((x, y) for x, y in pts))
        except TaskError as exc:
            raise TaskError(f"{path}: {exc}") from None

    def _path_to_answer(self, text, instance: TspInstance, where: str) -> TspAnswer:
        if not isinstance(text, str):
            raise TaskError(f"{where}: expected a path string, got {text!r:.100}")
        pts = [(int(a), int(b)) for a, b in re.findall(self._POINT, text)]
        index = {c: k for k, c in enumerate(instance.cities)}
        if len(pts) < 2 or any(p not in index for p in pts):
            raise TaskError(f"{where}: path {text!r:.200} is not a tour over the item's cities")
        tour = [index[p] for p in pts]
        if tour[-1] == tour[0]:
            tour = tour[:-1]
        return TspAnswer(tuple(tour))

    def read_official(self, folder: Path) -> list[OfficialItem]:
        folder = Path(folder)
        if not folder.is_dir():
            raise TaskError(f"TSP folder not found: {folder}")
        txts = sorted(folder.glob("*.txt"))
        if not txts:
            raise TaskError(f"{folder} is not a TSP folder: no <id>.txt files (expected <id>.txt, <id>.png, "
                            "<id>_solution.png and path.json)")
        gt_path = folder / "path.json"
        gt = read_answers_json(gt_path, '{"16_12_001": "(8,11),(10,10),...,(8,11)"}')
        items = []
        for txt in txts:
            item_id = txt.stem
            inst = self._read_txt(txt)
            problem = folder / f"{item_id}.png"
            if not problem.is_file():
                raise TaskError(f"{folder}: item {item_id} has no problem image {problem.name}")
            solution = folder / f"{item_id}_solution.png"
            answer = self._path_to_answer(gt[item_id], inst, f"{gt_path} [{item_id}]") if item_id in gt else None
            items.append(OfficialItem(item_id=item_id, level=self._level_of(inst, str(txt)), instance=inst,
                                      problem_image=problem, solution_image=solution if solution.is_file() else None,
                                      answer=answer))
        return sorted(items, key=lambda it: it.item_id)

    def write_official(self, items: Sequence[tuple[str, TspInstance, TspAnswer]], folder: Path,
                       size: int = 512) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths: dict[str, str] = {}
        for item_id, inst, answer in items:
            if not isinstance(item_id, str) or not self._ID_RE.match(item_id) or item_id.endswith("_solution"):
                raise TaskError(f"item id {item_id!r} is not a usable file stem (letters, digits, '_', '.', '-'; "
                                "not ending in '_solution')")
            self._check_instance(inst)
            if not isinstance(answer, TspAnswer):
                raise TaskError(f"item {item_id}: expected a TspAnswer, got {type(answer).__name__}")
            text = f"{inst.grid} {inst.n}\n" + "".join(f"{x} {y}\n" for x, y in inst.cities)
            (folder / f"{item_id}.txt").write_text(text)
            self.render(inst, size=size).save(folder / f"{item_id}.png")
            self.render(inst, answer, size=size).save(folder / f"{item_id}_solution.png")
            paths[item_id] = self.answer_to_text(answer, inst)
        write_answers_json(folder / "path.json", paths)


register_task(TspTask())
