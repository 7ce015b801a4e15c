"""FrozenLake: walk from the start stool to the gift without stepping into a hole (DiffThinker "VSP" and
"VSP-Super", reference §8).

Rules and levels
----------------
An ``n x n`` map in gymnasium's ``desc`` notation: ``S`` start, ``G`` goal, ``H`` hole, ``F`` frozen (walkable).
The player moves ``U``/``D``/``L``/``R`` (rows grow downwards with ``D``, the published convention). A path is a
move string from S that reaches G without entering a hole.

Levels (``n``, frozen probability ``p``, minimum-length bins in *moves*):

- ``"vsp3"`` .. ``"vsp8"``: the VSP benchmark sizes, p = 0.8. Bins for 3..6 are those of the published training
  data: 3 -> (1, 2, 3, 4), 4 -> (1, 3, 5, 7, 9), 5 -> (1, 4, 7, 10, 13), 6 -> (1, 5, 9, 13, 17). Sizes 7 and 8
  were never trained on and have no published bins; we chose 7 -> (1, 5, 9, 13, 17) and 8 -> (1, 6, 11, 16, 21)
  so that the top bin is about as rare under rejection sampling as the top bins of sizes 5 and 6 (an acceptance
  rate of a few 1e-4; the "step n - 2" pattern of 3..6 would give 21 and 25 with rates near 3e-5). The official
  VSP maps themselves come from the original VSP benchmark, not from this generator.
- ``"16"`` (VSP-Super 16): p = 0.8, bins (1, 9, 17, 25, 33).
- ``"32"`` (VSP-Super 32): bins 1, 14, 27 at p = 0.8 and 90 at p = 0.6, weighted 1:1:1:2 like ``32_test``
  (20/20/20/40 items). The training-only bin 40 is not used.

``default_level`` is ``"vsp4"`` (a small CPU level).

Generation (as published ``gen_image.py``): draw distinct S and G uniformly, make every other cell F with
probability p else H, accept when the shortest path (BFS over non-hole cells) exists and has at least the bin's
minimum number of moves; otherwise draw a new map (at most ``MAX_TRIES`` times, then TaskError). The bin is drawn
first (weighted). Every random choice comes from ``self.rng(level, seed)``. Unlike the published generator we do
not reject maps seen in other sets: de-duplication across a data set is the data layer's job (``content_hash``).

Rendering (style ``"diffthinker"``), reproduced from gymnasium 1.3.0's pygame renderer without pygame:

- window = ``min(64 n, 512)``, cell = ``window // n``; per cell the 32x32 ice sprite, then the hole / gift / stool
  sprite for H / G / S, then a 1-px (180, 200, 230) outline of the cell (``pygame.draw.rect(..., 1)``), and the
  ``elf_down`` sprite on the start cell last (gymnasium renders right after ``reset()``: ``lastaction`` is None,
  which selects sprite 1 = elf_down). Sprites are scaled with pygame's ``transform.scale`` rule, a Bresenham-like
  nearest neighbour (``_pygame_scale_index``), and blended with pygame/SDL's integer rule
  ``d + (((s - d) * a + s) >> 8)`` (``_blend``); hole and ice are opaque palette images and are copied. Both
  rules were checked exhaustively against pygame 2.6.1 / SDL 2.28 (every source, destination and sprite alpha).
- at ``size=512`` the window is NEAREST-resized to 512 (``gen_image.py``), so VSP-Super 16/32 images and the
  published 512 px training images of 3..8 are reproduced pixel for pixel; at ``size == 64 n`` (n <= 8) the
  window itself is returned, which is the stored VSP map image (192 .. 512 px).
- solution = problem + a red (255, 0, 0) polyline through the cell centres ``(c + 1/2) * size / n`` (float, as
  published) with width ``int(size / n / 4)`` and ``joint="curve"``, drawn on the final canvas: at 512 px that is
  42/32/25/21/18/16 px for n = 3..8, 8 px for 16, 4 px for 32, exactly the official ``_solution.png``.
- any other size is drawn natively: cell edges at ``round(i * size / n)``, sprites scaled to each cell by the
  same nearest rule (crisp, never a resampled 512 px image), outline ``max(1, round(cell / 64))`` px, line width
  ``max(1, int(cell / 4))``. (For a hand-made map with n > 8 not dividing 512, gymnasium would leave a black
  margin of ``512 mod n`` px; we fill the canvas instead. The published sizes are all exact.)

Parsing: the shared grid-path reader (:func:`gridpath.read_drawn_path`) on an ``n x n`` grid covering the image:
a cell is on when red covers its central region, neighbours are joined when red crosses their shared boundary,
and the drawing must show exactly one route from S to G. Holes are not consulted (a line through a hole is read
as drawn and fails ``verify``). Readable after JPEG q75 + noise + blur down to ``MIN_CELL_PX`` = 8 px per cell
(``supported_sizes_for(level)``: vsp levels from 64 px, 16 from 128 px, 32 from 256 px); clean renders parse at
smaller sizes too. Unlike the published parser (greedy R>D>L>U walk over cells with > 2% red), red
spill-over can not derail the reading and an extra branch is a wrong drawing.

Scoring (``verify``): replay the moves from S.

- a move off the grid is a rule violation (``valid`` False). The published evaluator (gymnasium) treats it as a
  no-op; we do not, because a drawn path can not leave the grid and a plan that bumps into the edge is not a
  plan of the map. ``details["published_correct"]`` says what the published rule would answer.
- entering a hole: violation (as published).
- reaching G ends the walk (the episode terminates, as published); moves after it are ignored and counted in
  ``details["ignored_after_goal"]``.
- ``correct`` iff G is reached without a violation: any route counts, not only a shortest one (as published).
  There is NO 100-step cap: the published ``gym.make`` adds ``TimeLimit(100)``, which fails 13 of the 40
  ``32_90_0.6`` ground-truth paths (reference §10); ``details["published_correct"]`` ignores the cap too.
- ``score`` (RL reward shaping): 1.0 iff correct; otherwise ``w * max(0, 1 - d_end / d_start)`` where ``d`` is the
  shortest-path distance to G and ``d_end`` is taken at the last legal cell reached; ``w`` = 0.5 for a legal walk
  that stops short of G and 0.25 for a walk that breaks a rule. So partial credit never reaches 1.

Text (MLLM track): ``to_text`` writes the official markdown table (``@`` start, ``*`` goal, ``#`` hole, ``_``
ice); ``answer_to_text`` writes the moves (``"RRDD"``); ``parse_text`` takes the last run of the capital letters
U/D/L/R standing as their own tokens (``"RRDD"``, ``"R, R, D, D"`` and ``"R R D D"`` all read as ``RRDD``).

Official formats:

- ``FrozenLake/16_test`` and ``32_test`` (also the training folders ``16``, ``32``, ``data``): ``<id>.png``,
  ``<id>_solution.png``, ``table/<id>.txt`` and ``metadata.json`` ``{"<id>.png": "ULL.."}``, ids
  ``{n}_{min_len}_{p}_{idx:03d}`` such as ``16_1_0.8_001``.
- ``FrozenLake/VSP/maps/levelL``: ``img/N.png`` (64 n px), ``table/N.txt``, ``metadata.json`` ``{"N.png": "UR"}``;
  no solution images; item ids ``levelL_N``.

The level of an item read from a folder is derived from its map size (3..8 -> ``vspN``, 16, 32).
``write_official`` writes the ``16_test`` layout for every level.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from .base import Answer, Instance, OfficialItem, ParseFailure, Task, TaskError, Verdict, register_task
from .officialio import read_answers_json, write_answers_json
from .gridpath import MOVES, moves_answer_from_text, read_drawn_path

__all__ = ["LEVELS", "MAX_TRIES", "MIN_CELL_PX", "FrozenLakeAnswer", "FrozenLakeInstance", "FrozenLakeLevel", "FrozenLakeTask",
           "parse_table", "random_map", "shortest_path", "table_text"]

#: Upper bound on rejection-sampling draws for one instance. The rarest bin (vsp8 / 21 moves) accepts a few maps
#: in 10^4, so this is never reached by the built-in levels; it only stops a hopeless custom level.
MAX_TRIES = 2_000_000

#: Smallest cell (px) the parser is guaranteed to read after JPEG q75 + noise + blur. Below it the red line is
#: one or two pixels wide and JPEG's 2x2 chroma subsampling washes it out (clean renders still parse).
MIN_CELL_PX = 8


# --------------------------------------------------------------------------------------------------- levels
@dataclass(frozen=True)
class FrozenLakeLevel:
    """A difficulty preset: map side ``n`` and the bins ``(min_moves, p, weight)`` a map is drawn from.

    ``min_moves`` is the minimum shortest-path length in moves, ``p`` the probability that a non-S/G cell is
    frozen, ``weight`` the relative frequency of the bin.
    """

    n: int
    bins: tuple[tuple[int, float, int], ...]
    description: str = ""

    def __post_init__(self) -> None:
        if not 2 <= self.n <= 64:
            raise TaskError(f"FrozenLakeLevel.n must be in [2, 64], got {self.n}")
        if not self.bins:
            raise TaskError("FrozenLakeLevel.bins must not be empty")
        for b in self.bins:
            if len(b) != 3 or not (1 <= b[0] < self.n * self.n) or not (0 < b[1] <= 1) or b[2] < 1:
                raise TaskError(f"bad bin {b!r}; expected (min_moves in [1, n*n), p in (0, 1], weight >= 1)")


def _bins(mins: Sequence[int], p: float = 0.8) -> tuple[tuple[int, float, int], ...]:
    return tuple((m, p, 1) for m in mins)


LEVELS: dict[str, FrozenLakeLevel] = {
    "vsp3": FrozenLakeLevel(3, _bins((1, 2, 3, 4)), "VSP level 3 (3x3)"),
    "vsp4": FrozenLakeLevel(4, _bins((1, 3, 5, 7, 9)), "VSP level 4 (4x4)"),
    "vsp5": FrozenLakeLevel(5, _bins((1, 4, 7, 10, 13)), "VSP level 5 (5x5)"),
    "vsp6": FrozenLakeLevel(6, _bins((1, 5, 9, 13, 17)), "VSP level 6 (6x6)"),
    "vsp7": FrozenLakeLevel(7, _bins((1, 5, 9, 13, 17)), "VSP level 7 (7x7; bins ours, never trained on)"),
    "vsp8": FrozenLakeLevel(8, _bins((1, 6, 11, 16, 21)), "VSP level 8 (8x8; bins ours, never trained on)"),
    "16": FrozenLakeLevel(16, _bins((1, 9, 17, 25, 33)), "VSP-Super 16x16"),
    "32": FrozenLakeLevel(32, ((1, 0.8, 1), (14, 0.8, 1), (27, 0.8, 1), (90, 0.6, 2)), "VSP-Super 32x32"),
}

_LEVEL_OF_N = {cfg.n: name for name, cfg in LEVELS.items()}

_TABLE_SYMBOL = {"S": "@", "G": "*", "H": "#", "F": "_"}
_TABLE_CELL = {v: k for k, v in _TABLE_SYMBOL.items()}


# --------------------------------------------------------------------------------------------------- types
@dataclass(frozen=True)
class FrozenLakeInstance(Instance):
    """The map as gymnasium ``desc`` rows: ``rows[r][c]`` in ``S`` (start), ``G`` (goal), ``H`` (hole), ``F``.

    Exactly one S and one G; the map is square (``n x n``, 2 <= n <= 64). Solvability is not required here
    (``solve`` raises TaskError for a map without a path); generated and official maps are always solvable.
    """

    rows: tuple[str, ...]

    def __post_init__(self) -> None:
        rows = self.rows
        if not isinstance(rows, tuple) or not all(isinstance(r, str) for r in rows):
            raise TaskError(f"FrozenLakeInstance.rows must be a tuple of strings, got {rows!r:.200}")
        n = len(rows)
        if not 2 <= n <= 64 or any(len(r) != n for r in rows):
            raise TaskError(f"FrozenLakeInstance.rows must form an n x n map with 2 <= n <= 64, got row lengths "
                            f"{[len(r) for r in rows]}")
        flat = "".join(rows)
        bad = set(flat) - set("SFHG")
        if bad:
            raise TaskError(f"FrozenLakeInstance.rows hold {sorted(bad)}; expected only S, F, H, G")
        if flat.count("S") != 1 or flat.count("G") != 1:
            raise TaskError(f"a map needs exactly one S and one G, got {flat.count('S')} S and "
                            f"{flat.count('G')} G")

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def start(self) -> tuple[int, int]:
        return divmod("".join(self.rows).index("S"), self.n)

    @property
    def goal(self) -> tuple[int, int]:
        return divmod("".join(self.rows).index("G"), self.n)

    @property
    def holes(self) -> tuple[tuple[int, int], ...]:
        return tuple((r, c) for r, row in enumerate(self.rows) for c, ch in enumerate(row) if ch == "H")


@dataclass(frozen=True)
class FrozenLakeAnswer(Answer):
    """A walk from the start: a string of ``U``/``D``/``L``/``R`` moves (possibly empty)."""

    moves: str

    def __post_init__(self) -> None:
        if not isinstance(self.moves, str):
            raise TaskError(f"FrozenLakeAnswer.moves must be a string, got {type(self.moves).__name__}")
        bad = set(self.moves) - set(MOVES)
        if bad:
            raise TaskError(f"FrozenLakeAnswer.moves hold {sorted(bad)}; expected only U, D, L, R")


# --------------------------------------------------------------------------------------------------- search
def _bit_distance(free: int, width: int, s: int, g: int) -> int | None:
    """Shortest-path length in moves from bit ``s`` to bit ``g`` over the set bits of ``free`` (None if none).

    The map is a bitboard with one padding column (row stride ``width = n + 1``) that is never free, so a shift
    by one never wraps from one row into the next. A BFS layer is five big-int operations on the whole board,
    which makes rejection sampling of 32x32 maps ~5x faster than a per-cell BFS in Python.
    """
    reach = 1 << s
    target = 1 << g
    steps = 0
    while True:
        grown = (reach | (reach << 1) | (reach >> 1) | (reach << width) | (reach >> width)) & free
        if grown == reach:
            return None
        steps += 1
        if grown & target:
            return steps
        reach = grown


_FREE_DIGITS = str.maketrans("SFGH", "1110")


def _free_bits(rows: Sequence[str]) -> int:
    """The non-hole cells as a bitboard for ``_bit_distance``: bit ``r * (n + 1) + c``; column n is padding."""
    # Most significant digit first: the last row's padding bit, then that row reversed, and so on.
    return int("".join("0" + row.translate(_FREE_DIGITS)[::-1] for row in reversed(rows)), 2)


def _distances(rows: Sequence[str], source: tuple[int, int]) -> list[int]:
    """BFS distance (moves) from ``source`` to every cell over non-hole cells, as a flat row-major list with -1
    where unreachable (plain lists: ~10x faster than numpy scalar indexing for maps this small)."""
    n = len(rows)
    flat = "".join(rows)
    dist = [-1] * (n * n)
    s = source[0] * n + source[1]
    dist[s] = 0
    queue = deque([s])
    while queue:
        u = queue.popleft()
        d = dist[u] + 1
        r, c = divmod(u, n)
        for v, ok in ((u - n, r > 0), (u + n, r < n - 1), (u - 1, c > 0), (u + 1, c < n - 1)):
            if ok and dist[v] < 0 and flat[v] != "H":
                dist[v] = d
                queue.append(v)
    return dist


def shortest_path(rows: Sequence[str]) -> str | None:
    """A shortest U/D/L/R path from S to G over non-hole cells (BFS), or None when G is unreachable."""
    inst_rows = tuple(rows)
    flat = "".join(inst_rows)
    n = len(inst_rows)
    start, goal = divmod(flat.index("S"), n), divmod(flat.index("G"), n)
    dist = _distances(inst_rows, goal)
    if dist[start[0] * n + start[1]] < 0:
        return None
    # Walk down the distance field from S; ties broken in the fixed order U, D, L, R (deterministic).
    out = []
    r, c = start
    while (r, c) != goal:
        for m, (dr, dc) in MOVES.items():
            nr, nc = r + dr, c + dc
            if 0 <= nr < n and 0 <= nc < n and dist[nr * n + nc] == dist[r * n + c] - 1:
                out.append(m)
                r, c = nr, nc
                break
    return "".join(out)


def random_map(rng, n: int, p: float, min_moves: int, max_tries: int = MAX_TRIES) -> tuple[str, ...]:
    """Rejection-sample a map as published: distinct S and G, other cells F with probability p else H, accepted
    when its shortest S->G path has at least ``min_moves`` moves. ``rng`` is a ``random.Random``."""
    cells = n * n
    width = n + 1
    for _ in range(max_tries):
        s, g = rng.sample(range(cells), 2)
        # Row-major draws for every non-S/G cell, in the published order.
        grid = []
        for i in range(cells):
            if i == s:
                grid.append("S")
            elif i == g:
                grid.append("G")
            else:
                grid.append("F" if rng.random() < p else "H")
        rows = tuple("".join(grid[r * n:(r + 1) * n]) for r in range(n))
        d = _bit_distance(_free_bits(rows), width, s // n * width + s % n, g // n * width + g % n)
        if d is not None and d >= min_moves:
            return rows
    raise TaskError(f"no {n}x{n} map with p={p} and a shortest path of >= {min_moves} moves after {max_tries} "
                    "draws; lower min_moves or raise p")


# --------------------------------------------------------------------------------------------------- text tables
def table_text(rows: Sequence[str]) -> str:
    """The official markdown table (no trailing newline, as ``gen_image.py`` writes it)."""
    n = len(rows)
    lines = ["| | " + " | ".join(f"Col {i + 1}" for i in range(n)) + " |"]
    for r, row in enumerate(rows):
        lines.append(f"| Row {r + 1} | " + " | ".join(_TABLE_SYMBOL[ch] for ch in row) + " |")
    return "\n".join(lines)


def parse_table(text: str, source: str = "table") -> tuple[str, ...]:
    """Read an official markdown table back into ``desc`` rows; TaskError naming ``source`` when malformed."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        raise TaskError(f"{source}: empty table; expected '| | Col 1 | ...' then '| Row 1 | ...' lines")
    header = [p.strip() for p in lines[0].strip("|").split("|")]
    n = len(header) - 1
    if header[0] != "" or header[1:] != [f"Col {i + 1}" for i in range(n)] or n < 2:
        raise TaskError(f"{source}: bad header {lines[0]!r}; expected '| | Col 1 | ... | Col n |'")
    if len(lines) != n + 1:
        raise TaskError(f"{source}: {len(lines) - 1} rows for {n} columns; expected a square map")
    rows = []
    for r, line in enumerate(lines[1:]):
        parts = [p.strip() for p in line.strip("|").split("|")]
        if parts[0] != f"Row {r + 1}" or len(parts) != n + 1:
            raise TaskError(f"{source}: bad row {line!r}; expected '| Row {r + 1} |' and {n} cells")
        try:
            rows.append("".join(_TABLE_CELL[p] for p in parts[1:]))
        except KeyError as exc:
            raise TaskError(f"{source}: unknown symbol {exc.args[0]!r} in {line!r}; expected @ * # _") from None
    try:
        return FrozenLakeInstance(tuple(rows)).rows
    except TaskError as exc:
        raise TaskError(f"{source}: {exc}") from None


# --------------------------------------------------------------------------------------------------- rendering
_OUTLINE = (180, 200, 230)
_SPRITES = ("ice", "hole", "goal", "stool", "elf_down")
_KINDS = "FHGS"  # tile kinds; the start tile carries the stool and the elf


@lru_cache(maxsize=None)
def _sprite(name: str) -> np.ndarray:
    """A bundled gymnasium 1.3.0 sprite as a 32x32x4 int32 RGBA array (see assets/frozenlake/LICENSE)."""
    ref = resources.files("diffthinker.tasks") / "assets" / "frozenlake" / f"{name}.png"
    path = Path(str(ref))
    if not path.is_file():
        raise TaskError(f"bundled FrozenLake sprite {name!r} not found at {path}")
    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGBA"), dtype=np.int32)
    arr.setflags(write=False)
    return arr


@lru_cache(maxsize=None)
def _pygame_scale_index(src: int, dst: int) -> np.ndarray:
    """Source index per destination pixel of ``pygame.transform.scale`` (its ``stretch`` loop in transform.c):
    an error accumulator in units of 1/2 pixel that advances the source whenever it turns non-negative."""
    idx = np.empty(dst, dtype=np.intp)
    i, err = 0, 2 * src - 2 * dst
    for x in range(dst):
        idx[x] = i
        while err >= 0:
            i += 1
            err -= 2 * dst
        err += 2 * src
    return idx


def _scaled(name: str, w: int, h: int) -> np.ndarray:
    sprite = _sprite(name)
    ys = _pygame_scale_index(sprite.shape[0], h)
    xs = _pygame_scale_index(sprite.shape[1], w)
    return sprite[ys[:, None], xs[None, :]]


def _blend(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """pygame/SDL's per-pixel alpha blit onto an opaque surface: ``d + (((s - d) * a + s) >> 8)`` per channel
    (arithmetic shift); alpha 255 copies the source exactly and alpha 0 keeps the destination."""
    a = src[..., 3:4]
    s = src[..., :3]
    return dst + (((s - dst) * a + s) >> 8)


@lru_cache(maxsize=256)
def _tile(kind: str, w: int, h: int, outline: int) -> np.ndarray:
    """One cell, ``h x w x 3`` uint8: ice, the kind's sprite, the outline, and the elf on the start cell."""
    out = _scaled("ice", w, h)[..., :3].copy()
    extra = {"H": ("hole",), "G": ("goal",), "S": ("stool",)}.get(kind, ())
    for name in extra:
        out = _blend(out, _scaled(name, w, h))
    t = max(1, min(outline, w // 2, h // 2))
    out[:t, :] = _OUTLINE
    out[-t:, :] = _OUTLINE
    out[:, :t] = _OUTLINE
    out[:, -t:] = _OUTLINE
    if kind == "S":
        out = _blend(out, _scaled("elf_down", w, h))
    tile = out.astype(np.uint8)
    tile.setflags(write=False)
    return tile


def _board(rows: Sequence[str], size: int, native_outline: bool) -> np.ndarray:
    """The map drawn at ``size`` px with cell edges at round(i * size / n)."""
    n = len(rows)
    edges = [(2 * i * size + n) // (2 * n) for i in range(n + 1)]  # round half up, exact when n divides size
    out = np.empty((size, size, 3), dtype=np.uint8)
    for r, row in enumerate(rows):
        y0, y1 = edges[r], edges[r + 1]
        for c, ch in enumerate(row):
            x0, x1 = edges[c], edges[c + 1]
            t = max(1, round(min(x1 - x0, y1 - y0) / 64)) if native_outline else 1
            out[y0:y1, x0:x1] = _tile(ch, x1 - x0, y1 - y0, t)
    return out


# --------------------------------------------------------------------------------------------------- the task
class FrozenLakeTask(Task):
    """FrozenLake (VSP / VSP-Super): see the module docstring for rules, rendering, scoring and formats."""

    name = "frozenlake"
    version = 1
    prompt = ("Draw a continuous red line connecting the Start point to the Goal point, avoiding all holes.")
    levels = LEVELS
    default_level = "vsp4"
    instance_type = FrozenLakeInstance
    answer_type = FrozenLakeAnswer
    official_patterns = (r"/FrozenLake/(16|32)(_test)?/?$", r"/FrozenLake/data/?$",
                         r"/FrozenLake/VSP/maps/level[3-8]/?$")

    def supported_sizes_for(self, level: str) -> tuple[int, ...]:
        """Render sizes at which parse reads this level back, also after ``perturb.model_like``: at least
        ``MIN_CELL_PX`` px per cell (vsp3..vsp8 from 64 px, 16 from 128 px, 32 from 256 px)."""
        cfg = self.level_config(level)
        return tuple(s for s in self.supported_sizes if s >= MIN_CELL_PX * cfg.n)

    # ----------------------------------------------------------------- generation and solving
    def generate(self, level: str, seed: int) -> FrozenLakeInstance:
        cfg = self.level_config(level)
        rng = self.rng(level, seed)
        min_moves, p, _ = rng.choices(cfg.bins, weights=[b[2] for b in cfg.bins])[0]
        return FrozenLakeInstance(random_map(rng, cfg.n, p, min_moves))

    def solve(self, instance: FrozenLakeInstance) -> FrozenLakeAnswer:
        self._check_instance(instance)
        moves = shortest_path(instance.rows)
        if moves is None:
            raise TaskError(f"this map has no path from S {instance.start} to G {instance.goal} avoiding holes")
        return FrozenLakeAnswer(moves)

    # ----------------------------------------------------------------- images
    def render(self, instance: FrozenLakeInstance, answer: FrozenLakeAnswer | None = None, size: int = 512,
               style: str = "diffthinker") -> Image.Image:
        self._check_instance(instance)
        self.check_style(style)
        n = instance.n
        if not isinstance(size, int) or isinstance(size, bool) or not max(16, 2 * n) <= size <= 4096:
            raise TaskError(f"render size must be an int in [{max(16, 2 * n)}, 4096] for a {n}x{n} map, "
                            f"got {size!r}")
        if answer is not None and not isinstance(answer, FrozenLakeAnswer):
            raise TaskError(f"{self.id} renders a FrozenLakeAnswer, got {type(answer).__name__}")
        window = min(64 * n, 512)
        if size == 512 and window != 512:
            # gen_image.py: the gymnasium window, NEAREST-resized to 512.
            img = Image.fromarray(_board(instance.rows, window, native_outline=False)).resize(
                (512, 512), Image.Resampling.NEAREST)
        else:
            img = Image.fromarray(_board(instance.rows, size, native_outline=size != window))
        if answer is not None:
            self._draw_path(img, instance, answer.moves)
        return img

    @staticmethod
    def _draw_path(img: Image.Image, instance: FrozenLakeInstance, moves: str) -> None:
        """The published ``draw_solution_line``: float cell centres, width int(cell / 4), joint="curve".

        The walk is drawn as given (through holes or off the grid too), so wrong answers can be pictured."""
        size = img.size[0]
        cell = size / instance.n
        r, c = instance.start
        points = [(c * cell + cell / 2, r * cell + cell / 2)]
        for m in moves:
            dr, dc = MOVES[m]
            r, c = r + dr, c + dc
            points.append((c * cell + cell / 2, r * cell + cell / 2))
        if len(points) >= 2:
            width = int(cell / 4) if size == 512 else max(1, int(cell / 4))
            ImageDraw.Draw(img).line(points, fill=(255, 0, 0), width=width, joint="curve")

    def _parse(self, image: Image.Image, instance: FrozenLakeInstance) -> FrozenLakeAnswer | ParseFailure:
        n = instance.n
        w, h = image.size
        if w < n or h < n:
            return ParseFailure(f"a {w}x{h} image cannot hold a {n}x{n} map (need at least one pixel per cell)")
        moves = read_drawn_path(image, n, n, instance.start, instance.goal)
        if isinstance(moves, ParseFailure):
            return moves
        return FrozenLakeAnswer(moves)

    # ----------------------------------------------------------------- rules
    def _verify(self, instance: FrozenLakeInstance, answer: FrozenLakeAnswer) -> Verdict:
        rows, n = instance.rows, instance.n
        goal = instance.goal
        (sr, sc), w = instance.start, n + 1
        d0 = _bit_distance(_free_bits(rows), w, sr * w + sc, goal[0] * w + goal[1])
        d0 = -1 if d0 is None else d0
        r, c = instance.start
        reached = False
        violation = ""
        used = 0
        for i, m in enumerate(answer.moves):
            dr, dc = MOVES[m]
            nr, nc = r + dr, c + dc
            if not (0 <= nr < n and 0 <= nc < n):
                violation = f"move {i + 1} ({m}) leaves the {n}x{n} map at {(r, c)}"
                break
            used = i + 1
            if rows[nr][nc] == "H":
                violation = f"move {i + 1} ({m}) steps into the hole at {(nr, nc)}"
                break
            r, c = nr, nc
            if (r, c) == goal:
                reached = True
                break
        details = {"moves": len(answer.moves), "moves_used": used, "end": [r, c], "shortest": d0,
                   "ignored_after_goal": len(answer.moves) - used if reached else 0,
                   "published_correct": self._published_correct(instance, answer.moves)}
        if reached:
            details["optimal"] = used == d0
            return Verdict(True, True, 1.0, f"reaches the goal in {used} moves (shortest {d0})", details)
        # Partial progress toward G from the last legal cell (holes are not legal, so (r, c) is never a hole).
        d_end = _distances(rows, goal)[r * n + c]
        progress = 0.0 if d0 <= 0 or d_end < 0 else max(0.0, 1.0 - d_end / d0)
        if violation:
            return Verdict(False, False, 0.25 * progress, violation, details)
        return Verdict(False, True, 0.5 * progress,
                       f"the walk ends at {(r, c)}, {d_end if d_end >= 0 else 'no'} moves from the goal", details)

    @staticmethod
    def _published_correct(instance: FrozenLakeInstance, moves: str) -> bool:
        """What ``eval_path.py`` would answer without its 100-step TimeLimit: off-grid moves are no-ops, a hole
        ends the episode as a failure, the goal ends it as a success."""
        rows, n = instance.rows, instance.n
        r, c = instance.start
        for m in moves:
            dr, dc = MOVES[m]
            r, c = min(max(r + dr, 0), n - 1), min(max(c + dc, 0), n - 1)
            if rows[r][c] == "H":
                return False
            if rows[r][c] == "G":
                return True
        return False

    # ----------------------------------------------------------------- text side
    def to_text(self, instance: FrozenLakeInstance) -> str:
        self._check_instance(instance)
        return table_text(instance.rows)

    def answer_to_text(self, answer: FrozenLakeAnswer) -> str:
        if not isinstance(answer, FrozenLakeAnswer):
            raise TaskError(f"{self.id} expects a FrozenLakeAnswer, got {type(answer).__name__}")
        return answer.moves

    def parse_text(self, text: str, instance: FrozenLakeInstance | None = None
                   ) -> FrozenLakeAnswer | ParseFailure:
        return moves_answer_from_text(text, FrozenLakeAnswer)

    # ----------------------------------------------------------------- official folders
    def read_official(self, folder: Path) -> list[OfficialItem]:
        folder = Path(folder)
        table_dir = folder / "table"
        if not folder.is_dir() or not table_dir.is_dir():
            raise TaskError(f"{folder} is not a FrozenLake folder: expected a table/ subfolder "
                            "(16_test layout: <id>.png + table/<id>.txt; VSP layout: img/N.png + table/N.txt)")
        vsp = (folder / "img").is_dir()
        image_dir = folder / "img" if vsp else folder
        meta_path = folder / "metadata.json"
        answers = read_answers_json(meta_path, '{"16_1_0.8_001.png": "UDRL..."}')
        tables = sorted(table_dir.glob("*.txt"))
        if not tables:
            raise TaskError(f"{table_dir} holds no .txt map tables")
        stems = {t.stem for t in tables}
        # Every problem image must have its table (a stray image would be silently dropped otherwise).
        for png in image_dir.glob("*.png"):
            stem = png.stem[:-len("_solution")] if png.stem.endswith("_solution") and not vsp else png.stem
            if stem not in stems:
                raise TaskError(f"{png} has no map table {table_dir / (stem + '.txt')}")
        unknown = {k for k in answers if Path(k).stem not in stems}
        if unknown:
            raise TaskError(f"{meta_path} names images without a table: {sorted(unknown)[:5]}")
        items = []
        for table in tables:
            stem = table.stem
            try:
                text = table.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise TaskError(f"{table} is not UTF-8 text ({exc})") from None
            instance = FrozenLakeInstance(parse_table(text, str(table)))
            level = _LEVEL_OF_N.get(instance.n)
            if level is None:
                raise TaskError(f"{table}: a {instance.n}x{instance.n} map matches no level; expected n in "
                                f"{sorted(_LEVEL_OF_N)}")
            problem = image_dir / f"{stem}.png"
            if not problem.is_file():
                raise TaskError(f"{table} has no problem image {problem}")
            solution = None if vsp else folder / f"{stem}_solution.png"
            if solution is not None and not solution.is_file():
                solution = None
            answer = None
            if f"{stem}.png" in answers:
                try:
                    answer = FrozenLakeAnswer(answers[f"{stem}.png"])
                except TaskError as exc:
                    raise TaskError(f"{meta_path} entry {stem}.png: {exc}") from None
            item_id = f"{folder.name}_{stem}" if vsp else stem
            items.append(OfficialItem(item_id=item_id, level=level, instance=instance, problem_image=problem,
                                      solution_image=solution, answer=answer))
        return sorted(items, key=lambda it: it.item_id)

    _ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")

    def write_official(self, items: Sequence[tuple[str, FrozenLakeInstance, FrozenLakeAnswer]], folder: Path,
                       size: int = 512) -> None:
        folder = Path(folder)
        seen = set()
        checked = []
        for entry in items:
            try:
                item_id, instance, answer = entry
            except (TypeError, ValueError):
                raise TaskError(f"write_official expects (item_id, instance, answer) tuples, got {entry!r:.200}"
                                ) from None
            if not isinstance(item_id, str) or not self._ID.match(item_id) or item_id.endswith("_solution"):
                raise TaskError(f"item id {item_id!r} is not a safe file stem (letters, digits, _ . -; not "
                                "ending in _solution)")
            if item_id in seen:
                raise TaskError(f"duplicate item id {item_id!r}")
            seen.add(item_id)
            self._check_instance(instance)
            if not isinstance(answer, FrozenLakeAnswer):
                raise TaskError(f"item {item_id}: expected a FrozenLakeAnswer, got {type(answer).__name__}")
            checked.append((item_id, instance, answer))
        (folder / "table").mkdir(parents=True, exist_ok=True)
        metadata = {}
        for item_id, instance, answer in checked:
            self.render(instance, size=size).save(folder / f"{item_id}.png")
            self.render(instance, answer, size=size).save(folder / f"{item_id}_solution.png")
            (folder / "table" / f"{item_id}.txt").write_text(table_text(instance.rows), encoding="utf-8")
            metadata[f"{item_id}.png"] = answer.moves
        write_answers_json(folder / "metadata.json", metadata)


register_task(FrozenLakeTask())
