"""Maze: draw the path from the yellow dot to the blue dot through a perfect maze (DiffThinker "Maze", ref §4).

Rules
  An n x n grid of cells with walls between them (a *perfect* maze: exactly one simple path between any two cells).
  The answer is a string of moves ``U``/``D``/``L``/``R`` (rows grow downwards with ``D``) leading from ``start``
  to ``end``. A move through a wall or off the grid makes the answer invalid. The answer is correct iff every
  move is legal and the walk ends on ``end``. As in the published evaluator, *any* legal walk counts, not only
  the shortest, and revisiting cells is allowed (a walk that passes ``end`` and comes back is still correct; a
  walk that passes ``end`` and stops elsewhere is not).

Generation (as published): randomized depth-first search (recursive backtracker, iterative here) from a random
  cell; start and end are two distinct random cells; the carve is retried until the BFS path has at least
  ``min_len`` NODES (the published unit; moves = nodes - 1), with ``min_len`` drawn from the level's bins. After
  ``MAX_TRIES`` carves a TaskError is raised (never happens for the shipped levels).

Levels: the published ``"8"`` (bins 1/6/11/16/21), ``"16"`` (1/9/17/25/33), ``"32"`` (1/14/27/90); and two small
  CPU levels ``"4"`` (bins 1/4/7, i.e. up to 6 moves; a 4x4 perfect maze has paths of at most 15 moves) and
  ``"6"`` (bins 1/5/9/13). The default level is ``"8"``, the CPU diffusion target rendered small.

Walls (the official ``.txt`` format): one int per cell, bit set = wall present: N=1, S=2, W=4, E=8. Instances are
  validated: every value in 0..15, the outer border walled, and both sides of every inner wall agreeing.

Render ("diffthinker" style, ref §4): black canvas; per cell a white rect inset by half a wall; white bands across
  open walls; light-gray (224) lines across open inner boundaries; yellow start and blue end dots; the solution
  adds a red polyline through the cell centres (width = wall width, rounded joints) drawn over the dots. At 512 px
  the image equals the official PNGs pixel for pixel (including PIL's inclusive rectangles, which make the
  official walls one pixel narrower than cell/4). At other sizes the same geometry is drawn natively on integer
  pixel edges, walls exactly ``round(cell/4)`` wide, so 64 px for n=8 is crisp (cell 8 px, wall 2 px, line 2 px).

Parse: the red line is read with :func:`gridpath.read_drawn_path` (pixels only, no walls; the drawing must show
  exactly one route from start to end). It is readable down to ``MazeLevel.min_size`` px (8 px per cell):
  n=4/6/8 from 64 px, n=16 from 128 px, n=32 from 256 px; ``supported_sizes_for(level)`` lists them.
  Deliberate differences from the published parser (ref §4, §10): no greedy R>D>L>U walk (spill-over into
  neighbouring cells can not derail the reading), no walking past the goal, and a drawing with branches or extra
  red is rejected instead of partially read.

Score (RL partial credit): 1.0 iff correct. Otherwise ``0.9 * k / (L - 1)`` where L is the number of nodes of the
  (unique) shortest path S and k the largest index with S[k] visited by the legal prefix of the walk (the moves
  before the first illegal one). In a tree any walk from start that reaches S[k] has passed S[1..k-1], so this is
  the share of the shortest path the legal prefix covers; the factor 0.9 keeps an incomplete walk below a solve.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from . import draw
from .base import Answer, Instance, OfficialItem, ParseFailure, Task, TaskError, Verdict, register_task
from .officialio import read_answers_json, write_answers_json
from .gridpath import MOVES, moves_answer_from_text, moves_to_cells, read_drawn_path

__all__ = ["LEVELS", "MazeAnswer", "MazeInstance", "MazeLevel", "MazeTask", "WALL_BITS"]

N, S, W, E = 1, 2, 4, 8
#: Move letter -> the wall bit that blocks it in the current cell.
WALL_BITS = {"U": N, "D": S, "L": W, "R": E}
_OPPOSITE = {N: S, S: N, W: E, E: W}
MAX_TRIES = 200          # the published generator's retry bound
ALL_SIZES = (64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class MazeLevel:
    n: int                         # grid side
    min_lens: tuple[int, ...]      # min path length bins, in NODES (published unit)
    min_size: int                  # smallest render size the parser is guaranteed to read (8 px per cell)


LEVELS: dict[str, MazeLevel] = {
    "4": MazeLevel(4, (1, 4, 7), 64),
    "6": MazeLevel(6, (1, 5, 9, 13), 64),
    "8": MazeLevel(8, (1, 6, 11, 16, 21), 64),
    "16": MazeLevel(16, (1, 9, 17, 25, 33), 128),
    "32": MazeLevel(32, (1, 14, 27, 90), 256),
}


def _cell(name: str, value, n: int) -> None:
    if (not isinstance(value, tuple) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise TaskError(f"MazeInstance.{name} must be a (row, col) tuple of ints, got {value!r}")
    if not (0 <= value[0] < n and 0 <= value[1] < n):
        raise TaskError(f"MazeInstance.{name} {value} is outside the {n}x{n} grid")


@dataclass(frozen=True)
class MazeInstance(Instance):
    """An n x n maze: ``walls[r][c]`` is the cell's wall bitmask (N=1, S=2, W=4, E=8; bit set = wall)."""

    n: int
    start: tuple[int, int]
    end: tuple[int, int]
    walls: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        n = self.n
        if not isinstance(n, int) or isinstance(n, bool) or not 2 <= n <= 256:
            raise TaskError(f"MazeInstance.n must be an int in [2, 256], got {n!r}")
        _cell("start", self.start, n)
        _cell("end", self.end, n)
        if self.start == self.end:
            raise TaskError(f"MazeInstance start and end must differ, both are {self.start}")
        w = self.walls
        if (not isinstance(w, tuple) or len(w) != n
                or not all(isinstance(row, tuple) and len(row) == n for row in w)):
            raise TaskError(f"MazeInstance.walls must be {n} tuples of {n} ints")
        arr = np.array(w, dtype=object)
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 15 for v in arr.flat):
            raise TaskError("MazeInstance.walls values must be ints in 0..15 (bitmask N=1, S=2, W=4, E=8)")
        a = arr.astype(np.int64)
        if not ((a[0] & N).all() and (a[-1] & S).all() and (a[:, 0] & W).all() and (a[:, -1] & E).all()):
            raise TaskError("MazeInstance.walls: the outer border must be walled (N on row 0, S on the last row, "
                            "W on column 0, E on the last column)")
        bad_h = np.argwhere(((a[:, :-1] & E) > 0) != ((a[:, 1:] & W) > 0))
        bad_v = np.argwhere(((a[:-1, :] & S) > 0) != ((a[1:, :] & N) > 0))
        if len(bad_h) or len(bad_v):
            where = (f"E of {tuple(int(x) for x in bad_h[0])}" if len(bad_h)
                     else f"S of {tuple(int(x) for x in bad_v[0])}")
            raise TaskError(f"MazeInstance.walls disagree across a boundary ({where}): both cells must say the "
                            "same about their shared wall")


@dataclass(frozen=True)
class MazeAnswer(Answer):
    """A walk as U/D/L/R moves from the start (rows grow downwards with D)."""

    moves: str

    def __post_init__(self) -> None:
        if not isinstance(self.moves, str) or not set(self.moves) <= set(MOVES):
            raise TaskError(f"MazeAnswer.moves must be a string of U/D/L/R, got {self.moves!r:.100}")


# ------------------------------------------------------------------------------------------------ maze helpers
def _carve(n: int, rng) -> list[list[int]]:
    """Recursive backtracker (iterative): a uniform-ish perfect maze, all walls up, carved by DFS."""
    walls = [[N | S | W | E] * n for _ in range(n)]
    seen = [[False] * n for _ in range(n)]
    r0, c0 = rng.randrange(n), rng.randrange(n)
    seen[r0][c0] = True
    stack = [(r0, c0)]
    dirs = ((-1, 0, N), (1, 0, S), (0, -1, W), (0, 1, E))
    while stack:
        r, c = stack[-1]
        options = [(r + dr, c + dc, bit) for dr, dc, bit in dirs
                   if 0 <= r + dr < n and 0 <= c + dc < n and not seen[r + dr][c + dc]]
        if not options:
            stack.pop()
            continue
        nr, nc, bit = options[rng.randrange(len(options))]
        walls[r][c] &= ~bit
        walls[nr][nc] &= ~_OPPOSITE[bit]
        seen[nr][nc] = True
        stack.append((nr, nc))
    return walls


def _bfs_path(walls, n: int, start, end) -> list[tuple[int, int]] | None:
    prev = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == end:
            break
        r, c = cell
        for m, (dr, dc) in MOVES.items():
            if not walls[r][c] & WALL_BITS[m]:
                nb = (r + dr, c + dc)
                if 0 <= nb[0] < n and 0 <= nb[1] < n and nb not in prev:
                    prev[nb] = cell
                    queue.append(nb)
    if end not in prev:
        return None
    path = [end]
    while prev[path[-1]] is not None:
        path.append(prev[path[-1]])
    return path[::-1]


def _read_ints(text: str, what: str) -> list[int]:
    try:
        return [int(t) for t in text.split()]
    except ValueError:
        raise TaskError(f"{what}: expected integers, got {text!r:.80}") from None


# ------------------------------------------------------------------------------------------------ the task
class MazeTask(Task):
    """The DiffThinker Maze task (see the module docstring for rules, formats and deliberate differences)."""

    name = "maze"
    version = 1
    prompt = "Draw a continuous red line connecting the yellow dot to the blue dot, avoiding all walls."
    levels = LEVELS
    default_level = "8"
    instance_type = MazeInstance
    answer_type = MazeAnswer
    supported_sizes = ALL_SIZES  # for the default level; see supported_sizes_for
    official_patterns = (r"/Maze/(\d+)_test/?$",)

    def supported_sizes_for(self, level: str) -> tuple[int, ...]:
        """Render sizes at which the parser reads this level back (at least 8 px per cell)."""
        cfg = self.level_config(level)
        return tuple(s for s in ALL_SIZES if s >= cfg.min_size)

    # ------------------------------------------------------------------ generation and solving
    def min_len_for(self, level: str, seed: int) -> int:
        """The min-path-length bin (in nodes) item (level, seed) was generated for: the rng's first draw."""
        cfg = self.level_config(level)
        return cfg.min_lens[self.rng(level, seed).randrange(len(cfg.min_lens))]

    def generate(self, level: str, seed: int) -> MazeInstance:
        cfg = self.level_config(level)
        rng = self.rng(level, seed)
        n = cfg.n
        min_len = cfg.min_lens[rng.randrange(len(cfg.min_lens))]  # first draw: see min_len_for
        cells = [(r, c) for r in range(n) for c in range(n)]
        for _ in range(MAX_TRIES):
            walls = _carve(n, rng)
            start, end = rng.sample(cells, 2)
            path = _bfs_path(walls, n, start, end)
            if path is not None and len(path) >= min_len:
                return MazeInstance(n=n, start=start, end=end, walls=tuple(tuple(row) for row in walls))
        raise TaskError(f"maze level {level!r} seed {seed}: no {n}x{n} maze with a path of >= {min_len} nodes "
                        f"after {MAX_TRIES} carves")

    def shortest_path(self, instance: MazeInstance) -> list[tuple[int, int]]:
        """The BFS path from start to end as cells (unique in a perfect maze)."""
        self._check_instance(instance)
        path = _bfs_path(instance.walls, instance.n, instance.start, instance.end)
        if path is None:
            raise TaskError(f"maze has no path from {instance.start} to {instance.end} (not a connected maze)")
        return path

    def solve(self, instance: MazeInstance) -> MazeAnswer:
        path = self.shortest_path(instance)
        return MazeAnswer("".join(
            next(m for m, d in MOVES.items() if d == (b[0] - a[0], b[1] - a[1])) for a, b in zip(path, path[1:])))

    # ------------------------------------------------------------------ rules
    def _verify(self, instance: MazeInstance, answer: MazeAnswer) -> Verdict:
        n, walls = instance.n, instance.walls
        r, c = instance.start
        visited = {(r, c)}
        illegal = None
        for i, m in enumerate(answer.moves):
            if walls[r][c] & WALL_BITS[m]:
                illegal = (i, m, (r, c), "off the grid" if self._off_grid(n, r, c, m) else "through a wall")
                break
            r, c = r + MOVES[m][0], c + MOVES[m][1]
            visited.add((r, c))
        details = {"moves": len(answer.moves)}
        if illegal is None and (r, c) == instance.end:
            return Verdict(True, True, 1.0, "reaches the end without crossing a wall", details)
        # Partial credit (module docstring): how far along the unique shortest path the legal prefix got.
        shortest = self.shortest_path(instance)
        reached = max(k for k, cell in enumerate(shortest) if k == 0 or cell in visited)
        details.update(shortest_moves=len(shortest) - 1, progress=reached)
        partial = round(0.9 * reached / (len(shortest) - 1), 6)
        if illegal is not None:
            i, m, cell, how = illegal
            return Verdict(False, False, partial, f"move {i} ({m}) from {cell} goes {how}",
                           {**details, "illegal_move": i})
        return Verdict(False, True, partial, f"the walk ends at {(r, c)}, not at the end {instance.end}", details)

    @staticmethod
    def _off_grid(n: int, r: int, c: int, m: str) -> bool:
        dr, dc = MOVES[m]
        return not (0 <= r + dr < n and 0 <= c + dc < n)

    # ------------------------------------------------------------------ images
    def render(self, instance: MazeInstance, answer: MazeAnswer | None = None, size: int = 512,
               style: str = "diffthinker") -> Image.Image:
        self._check_instance(instance)
        self.check_style(style)
        n = instance.n
        if not isinstance(size, int) or isinstance(size, bool) or not 2 * n <= size <= 4096:
            raise TaskError(f"render size must be an int in [{2 * n}, 4096] for a {n}x{n} maze, got {size!r}")
        if answer is not None and not isinstance(answer, MazeAnswer):
            raise TaskError(f"render expects a MazeAnswer, got {type(answer).__name__}")
        img = Image.new("RGB", (size, size), draw.BLACK)
        d = ImageDraw.Draw(img)
        cs = size / n
        ww = cs / 4
        if size == 512:
            # The published geometry verbatim (float coordinates, PIL-inclusive rectangles): pixel-exact at 512.
            hw = ww / 2
            lo = [c * cs + hw for c in range(n)]
            hi = [(c + 1) * cs - hw for c in range(n)]
            band = ww
            gw = max(1, int(cs / 16))
            line_w = max(1, int(ww))
            bounds = [i * cs for i in range(n + 1)]
        else:
            # Native geometry on integer pixel edges: wall bands of exactly round(ww) px centred on each boundary.
            wpx = max(1, int(ww + 0.5))
            edges = [int(i * cs + 0.5) for i in range(n + 1)]
            lo = [edges[c] + wpx // 2 for c in range(n)]
            hi = [edges[c + 1] - (wpx - wpx // 2) - 1 for c in range(n)]
            band = wpx
            gw = max(1, int(cs / 16))
            line_w = wpx
            bounds = edges
        walls = instance.walls
        for r in range(n):
            for c in range(n):
                x1, y1, x2, y2 = lo[c], lo[r], hi[c], hi[r]
                d.rectangle([x1, y1, x2, y2], fill=draw.WHITE)
                if r < n - 1 and not walls[r][c] & S:
                    d.rectangle([x1, y2, x2, y2 + band], fill=draw.WHITE)
                if c < n - 1 and not walls[r][c] & E:
                    d.rectangle([x2, y1, x2 + band, y2], fill=draw.WHITE)
        for r in range(n):
            for c in range(n):
                x1, y1, x2, y2 = lo[c], lo[r], hi[c], hi[r]
                yb, xb = bounds[r + 1], bounds[c + 1]
                if r < n - 1 and not walls[r][c] & S:
                    d.line([(x1, yb), (x2, yb)], fill=draw.GRID_GRAY, width=gw)
                if c < n - 1 and not walls[r][c] & E:
                    d.line([(xb, y1), (xb, y2)], fill=draw.GRID_GRAY, width=gw)
        radius = max(2, int((cs - ww) * 0.25))
        centres = self._centres(n, size, lo, hi)
        for cell, colour in ((instance.start, draw.YELLOW), (instance.end, draw.BLUE)):
            cx, cy = centres(cell)
            d.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
        if answer is not None:
            cells = moves_to_cells(instance.start, answer.moves)
            draw.polyline(d, [centres(cell) for cell in cells], draw.RED, line_w)
        return img

    @staticmethod
    def _centres(n: int, size: int, lo, hi):
        cs = size / n
        if size == 512:
            return lambda cell: (cell[1] * cs + cs / 2, cell[0] * cs + cs / 2)
        # Centre of the white cell rect (so dots and lines sit symmetrically inside the corridor).
        return lambda cell: ((lo[cell[1]] + hi[cell[1]]) / 2, (lo[cell[0]] + hi[cell[0]]) / 2)

    def _parse(self, image: Image.Image, instance: MazeInstance) -> MazeAnswer | ParseFailure:
        n = instance.n
        if min(image.size) < n:
            return ParseFailure(f"a {image.size[0]}x{image.size[1]} image is too small for a {n}x{n} maze")
        moves = read_drawn_path(image, n, n, instance.start, instance.end)
        if isinstance(moves, ParseFailure):
            return moves
        return MazeAnswer(moves)

    # ------------------------------------------------------------------ text side
    def to_text(self, instance: MazeInstance) -> str:
        """An ASCII drawing a VLM can read: ``+---+`` corners, ``|`` and ``---`` walls, ``S`` start, ``E`` end.

        Rows are numbered 0..n-1 top to bottom, columns 0..n-1 left to right; the moves are U/D/L/R.
        """
        self._check_instance(instance)
        n, walls = instance.n, instance.walls
        lines = [f"Maze {n}x{n}. Rows 0-{n - 1} top to bottom, columns 0-{n - 1} left to right.",
                 f"Start S (yellow dot): row {instance.start[0]}, column {instance.start[1]}. "
                 f"End E (blue dot): row {instance.end[0]}, column {instance.end[1]}.",
                 "Walls are drawn with +, - and |. Answer with moves U (up), D (down), L (left), R (right)."]
        lines.append("+" + "+".join("---" if walls[0][c] & N else "   " for c in range(n)) + "+")
        for r in range(n):
            row = "|" if walls[r][0] & W else " "
            for c in range(n):
                mark = "S" if (r, c) == instance.start else "E" if (r, c) == instance.end else " "
                row += f" {mark} " + ("|" if walls[r][c] & E else " ")
            lines.append(row)
            lines.append("+" + "+".join("---" if walls[r][c] & S else "   " for c in range(n)) + "+")
        return "\n".join(lines)

    def answer_to_text(self, answer: MazeAnswer) -> str:
        return answer.moves

    def parse_text(self, text: str, instance: MazeInstance | None = None) -> MazeAnswer | ParseFailure:
        """The last run of U/D/L/R letters in ``text`` (separators allowed), e.g. "... answer: R R D, L"."""
        return moves_answer_from_text(text, MazeAnswer)

    # ------------------------------------------------------------------ official folders
    def read_official(self, folder: Path) -> list[OfficialItem]:
        """Read ``<id>.txt`` (n; "sr sc"; "er ec"; n rows of n wall ints), ``<id>.png``, ``<id>_solution.png``
        and ``path.json`` ({"<id>": "UDLR..."}) from an official Maze test folder (e.g. Maze/8_test)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise TaskError(f"maze official folder not found: {folder}")
        txts = sorted(p for p in folder.glob("*.txt"))
        if not txts:
            raise TaskError(f"{folder} is not a Maze test folder: no <id>.txt files")
        gt = folder / "path.json"
        answers = read_answers_json(gt, '{"8_1_001": "UUR"}')
        items = []
        for txt in txts:
            inst = self._read_txt(txt)
            level = str(inst.n)
            if level not in self.levels:
                raise TaskError(f"{txt}: maze size {inst.n} is not a level of {self.id}; expected one of "
                                f"{sorted(self.levels, key=int)}")
            stem = txt.stem
            problem = folder / f"{stem}.png"
            if not problem.is_file():
                raise TaskError(f"{folder} is not a Maze test folder: {txt.name} has no problem image {problem.name}")
            solution = folder / f"{stem}_solution.png"
            answer = None
            if stem in answers:
                try:
                    answer = MazeAnswer(answers[stem])
                except TaskError as exc:
                    raise TaskError(f"{gt} [{stem!r}]: {exc}") from None
            items.append(OfficialItem(item_id=stem, level=level, instance=inst, problem_image=problem,
                                      solution_image=solution if solution.is_file() else None, answer=answer))
        return sorted(items, key=lambda it: it.item_id)

    def _read_txt(self, path: Path) -> MazeInstance:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        if len(lines) < 3:
            raise TaskError(f"{path} is not a Maze .txt: expected n, 'sr sc', 'er ec' and n wall rows")
        head = _read_ints(lines[0], f"{path} line 1")
        if len(head) != 1:
            raise TaskError(f"{path} line 1: expected the maze size n, got {lines[0]!r}")
        n = head[0]
        start, end = _read_ints(lines[1], f"{path} line 2"), _read_ints(lines[2], f"{path} line 3")
        if len(start) != 2 or len(end) != 2:
            raise TaskError(f"{path}: lines 2-3 must be 'row col', got {lines[1]!r} / {lines[2]!r}")
        rows = [tuple(_read_ints(ln, f"{path} wall row")) for ln in lines[3:]]
        if len(rows) != n or any(len(r) != n for r in rows):
            raise TaskError(f"{path}: expected {n} wall rows of {n} ints, got {[len(r) for r in rows]}")
        try:
            return MazeInstance(n=n, start=tuple(start), end=tuple(end), walls=tuple(rows))
        except TaskError as exc:
            raise TaskError(f"{path}: {exc}") from None

    def write_official(self, items: Sequence[tuple[str, MazeInstance, MazeAnswer]], folder: Path,
                       size: int = 512) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for item_id, inst, answer in items:
            if not isinstance(item_id, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", item_id):
                raise TaskError(f"maze item id must be a plain file stem like '8_1_001', got {item_id!r}")
            self._check_instance(inst)
            if not isinstance(answer, MazeAnswer):
                raise TaskError(f"item {item_id}: expected a MazeAnswer, got {type(answer).__name__}")
            rows = "\n".join(" ".join(str(v) for v in row) for row in inst.walls)
            (folder / f"{item_id}.txt").write_text(
                f"{inst.n}\n{inst.start[0]} {inst.start[1]}\n{inst.end[0]} {inst.end[1]}\n{rows}\n")
            self.render(inst, size=size).save(folder / f"{item_id}.png")
            self.render(inst, answer, size=size).save(folder / f"{item_id}_solution.png")
            paths[item_id] = answer.moves
        write_answers_json(folder / "path.json", paths)


register_task(MazeTask())
