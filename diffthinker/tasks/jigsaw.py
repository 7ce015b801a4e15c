"""Jigsaw: put the shuffled, labelled blocks of a picture back in place (DiffThinker "Jigsaw", reference §7).

Rules and levels
----------------
A source picture is cut into ``rows x cols`` blocks (row-major positions ``0..n-1``) and the blocks are shuffled.
Each block of the problem image carries a label: its *puzzle position*, 1-based, row-major. The solution image
puts the same labelled blocks back in their original places (labels travel with the pieces). The answer is the
published GT sequence: for each original position ``i`` (row-major), the label of the piece that belongs there,
i.e. the labels read left to right, top to bottom in the solved image (``"3 1 2 4"``). Levels: the published test
grids ``"2x2"``, ``"3x3"``, ``"4x4"`` and training grids ``"1x2"``, ``"2x1"``, ``"1x3"``, ``"3x1"`` (the VisPuzzle
grids). ``default_level`` is ``"2x2"``.

Instance: ``rows``, ``cols``, ``source`` (a spec string, see :mod:`diffthinker.tasks.sources`) and
``permutation``: ``permutation[p]`` is the original position (0-based) of the piece shown at problem position
``p`` -- the published generator's ``indices`` list. The GT sequence is its inverse, 1-based:
``gt[permutation[p]] = p + 1``.

Generation. Our levels cut seeded procedural pictures (``procedural:<seed>``; no photo data set can be downloaded).
The source is redrawn until every pair of blocks differs clearly (mean 8x8-thumbnail distance >=
``MIN_BLOCK_DISTANCE``), so a block is identifiable by its content alone. The shuffle is never the identity:
**deliberate difference** from the published data, where 6/100 of the 2x2 test items are already solved (their
problem image *is* their solution image, so a copy-the-input model scores on them). ``make_instance(level, seed,
source)`` builds the same kind of instance on any other source (a user's ``file:`` picture).

Rendering (style "diffthinker"): ``size`` is the side of the *block area*: the picture is drawn at ``size x size``
and cut into blocks of ``size // cols`` x ``size // rows`` px (the remainder is dropped, as published), stitched
with white gaps. At 512 this is the published geometry exactly: a white 32x32 label box with a 1-px black outline
covering ``[0, 32]^2`` of each block, the label in Lato-Bold 28 px centred with ``textbbox`` at float
coordinates, 4-px gaps, images of 516 (2x2), 518 (3x3) and 524 (4x4) px; label boxes match the official PNGs pixel
for pixel. At other sizes the same geometry is drawn natively with ``s = size / 512``: label box
``max(2, round(32 s))``, font ``int(0.9 box)``, outline ``max(1, round(s))``, gap ``max(1, round(4 s))``, the
procedural picture evaluated at that size. Official problem images (``official-problem:`` sources: COCO photos we
cannot re-render) are the problem image themselves; the solution re-arranges their blocks by the GT sequence, which
reproduces the official solution PNG exactly; at other sizes their blocks (labels included) are resampled.
VisPuzzle images (``vispuzzle:`` sources) are rendered through the published preprocessing
(:func:`vispuzzle_preprocess`: 512 x 512, 4-px gaps, labels at 0.8 * 32 = 25 px).

Parsing (pixels + instance only; no OCR model). The output is mapped proportionally onto the instance's layout
(any size or aspect: the published eval squashes 516 px to 512 NEAREST, training to 512 bilinear), and each block's
inner region (5 % inset, away from the gaps) is reduced to an 8x8 mean-colour thumbnail (6x6, 4x4 or 3x3 for blocks
under 24 px, where blur and JPEG chroma subsampling dominate finer cells). Every output block is
compared with every block of the problem image (``render(instance)`` at 512, cached) by a robust distance (mean
absolute difference over the best 80 % of thumbnail cells) and the exact minimum-cost assignment is found
(Hungarian algorithm). A block is matched when its assigned distance is small and clearly below its second-best
alternative. Blocks that are not matched confidently (near-duplicate pieces, heavy damage) fall back to reading
their label: the label box region is compared by normalised correlation with the problem image's own label boxes
(glyph templates in the exact rendering of the instance); labels are legible from about 256 px outputs up (at 128
px a 2x2 label box is 8 px). A block that is neither matched nor legibly labelled makes
the parse a ParseFailure, so junk and blank images never yield an answer. The answer is the sequence of matched
labels; duplicates are kept (verify then reports it invalid). Deliberate difference: the published parser OCRs the
label in the top-left 25 % of each 512/cols cell with Qwen3-VL-8B; we identify pieces by their content first.
The problem image's references are cached per instance (any 512 render fills the cache), so parsing many samples
of one puzzle renders its problem once; a cold parse of a procedural instance costs one 512 render (~0.1 s).

Scoring. ``valid``: the answer is a permutation of ``1..n``; ``correct``: it equals the GT sequence exactly (as
published); ``score``: the fraction of positions holding the right label (1.0 iff correct).

Text (MLLM track): ``to_text`` gives the grid and instructions (the labels are visible in the image);
``answer_to_text`` writes the labels space-separated (``"3 1 2 4"``, the published ``.txt`` format);
``parse_text`` takes the last ``rows * cols`` integers of the text (with no instance: the integers of the last
line that has any).

Official formats. ``Jigsaw/<R>x<C>_test``: ``<id>.png``, ``<id>_solution.png``, ``<id>.txt`` (the GT sequence),
``solutions.json`` ``{"2x2_00001": "3 1 2 4"}``; ids ``<R>x<C>_<i:05d>``. Instances read from it have an
``official-problem:`` source pointing at the problem PNG. ``Jigsaw/VisPuzzle_test/<pid>_problem.jpg`` with
``Jigsaw/VisPuzzle/data.jsonl`` (pid, question, options, answer sentence): the grid comes from the pid range, the
answer from the GT sentence (:func:`parse_vispuzzle_sentence`); :func:`vispuzzle_sentences` and
:func:`vispuzzle_is_correct` reproduce the published sentence scoring.
"""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

from . import draw
from .base import Answer, Instance, OfficialItem, ParseFailure, Task, TaskError, Verdict, register_task
from .officialio import read_answers_json, write_answers_json
from .sources import add_source_root, file_spec, load_file_image, parse_spec, procedural_spec, source_picture

__all__ = ["LEVELS", "JigsawAnswer", "JigsawInstance", "JigsawLevel", "JigsawTask", "Layout", "add_source_root",
           "gt_from_permutation", "layout_for", "parse_vispuzzle_sentence", "permutation_from_gt",
           "vispuzzle_grid", "vispuzzle_is_correct", "vispuzzle_preprocess", "vispuzzle_sentences"]

# Published constants (Jigsaw/gen_image.py, eval/VisPuzzle/diffthinker.py).
BASE_SIZE = 512
LABEL_BOX = 32
GAP = 4
FONT_RATIO = 0.9              # synthetic jigsaw labels: int(32 * 0.9) = 28 px
VISPUZZLE_FONT_RATIO = 0.8    # VisPuzzle preprocessing labels: int(32 * 0.8) = 25 px
VISPUZZLE_BENCH_GAP = 12      # the white strips of the VisPuzzle images, cut away by a centred crop
MAX_SIDE = 8                  # largest grid side accepted in an instance (labels up to 64)

# Parser constants (see the module docstring); distances are on the 0..255 scale.
THUMB = 8                     # thumbnail side per block (blocks of at least 3 * 8 px)
THUMB_SIDES = (8, 6, 4, 3)    # coarser sides for smaller blocks, see _parse
INSET = 0.05                  # fraction of the block trimmed on each side before thumbnailing
TRIM = 0.8                    # fraction of thumbnail cells kept (the best ones) in the distance
MATCH_MAX = 16.0              # an assigned distance above this is not a confident match
MARGIN_ABS = 5.0              # ... nor one whose second-best alternative is closer than this
MARGIN_REL = 0.6              # ... or than this fraction of the distance itself
LABEL_THUMB = 16              # label-box thumbnail side for the glyph fallback
LABEL_MIN_CORR = 0.75         # normalised correlation a label read needs
LABEL_MARGIN = 0.04           # ... and its lead over the second-best label
MIN_BLOCK_DISTANCE = 14.0     # generation: every pair of source blocks at least this far apart


# --------------------------------------------------------------------------------------------------- levels
@dataclass(frozen=True)
class JigsawLevel:
    """A grid shape. ``published`` says which published split uses it (test grids or training-only grids)."""

    rows: int
    cols: int
    published: str = ""


LEVELS: dict[str, JigsawLevel] = {
    "1x2": JigsawLevel(1, 2, "train (4000 items); VisPuzzle pids 1-80"),
    "2x1": JigsawLevel(2, 1, "train (4000 items); VisPuzzle pids 81-160"),
    "1x3": JigsawLevel(1, 3, "train (4000 items); VisPuzzle pids 161-240"),
    "3x1": JigsawLevel(3, 1, "train (4000 items); VisPuzzle pids 241-320"),
    "2x2": JigsawLevel(2, 2, "train 4000 + test 100; VisPuzzle pids 321-400"),
    "3x3": JigsawLevel(3, 3, "train 5000 + test 100"),
    "4x4": JigsawLevel(4, 4, "train 5000 + test 100"),
}


# --------------------------------------------------------------------------------------------------- types
def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise TaskError(f"jigsaw {name} must be an int in [{lo}, {hi}], got {value!r}")


@dataclass(frozen=True)
class JigsawInstance(Instance):
    """A shuffled picture: ``permutation[p]`` = original position (0-based, row-major) of the piece shown at
    problem position ``p`` (whose label is ``p + 1``). ``source`` is a spec string (see ``sources``)."""

    rows: int
    cols: int
    source: str
    permutation: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_int("rows", self.rows, 1, MAX_SIDE)
        _check_int("cols", self.cols, 1, MAX_SIDE)
        n = self.rows * self.cols
        if n < 2:
            raise TaskError(f"a jigsaw needs at least 2 pieces, got a {self.rows}x{self.cols} grid")
        parse_spec(self.source)
        perm = self.permutation
        if not isinstance(perm, tuple) or sorted(perm) != list(range(n)) or \
                any(isinstance(x, bool) or not isinstance(x, int) for x in perm):
            raise TaskError(f"jigsaw permutation must be a tuple holding 0..{n - 1} once each, got {perm!r}")

    @property
    def n(self) -> int:
        return self.rows * self.cols


@dataclass(frozen=True)
class JigsawAnswer(Answer):
    """The GT-style sequence: ``labels[i]`` = label of the piece placed at position ``i`` (row-major)."""

    labels: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.labels, tuple) or any(isinstance(x, bool) or not isinstance(x, int)
                                                     for x in self.labels):
            raise TaskError(f"jigsaw answer labels must be a tuple of ints, got {self.labels!r}")


def gt_from_permutation(permutation: Sequence[int]) -> tuple[int, ...]:
    """The GT sequence (1-based labels per original position) of a problem-position -> original-position map."""
    gt = [0] * len(permutation)
    for p, orig in enumerate(permutation):
        gt[orig] = p + 1
    return tuple(gt)


def permutation_from_gt(labels: Sequence[int]) -> tuple[int, ...]:
    """Inverse of :func:`gt_from_permutation`; TaskError unless ``labels`` is a permutation of 1..n."""
    n = len(labels)
    if sorted(labels) != list(range(1, n + 1)):
        raise TaskError(f"a jigsaw GT sequence must hold 1..{n} once each, got {list(labels)!r}")
    perm = [0] * n
    for orig, label in enumerate(labels):
        perm[label - 1] = orig
    return tuple(perm)


# --------------------------------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Layout:
    """Pixel geometry of a rendered jigsaw image.

    ``style`` "standard" (the synthetic generator: blocks ``size // cols`` wide, image grows by the gaps) or
    "vispuzzle" (the VisPuzzle preprocessing: the whole image is ``size`` wide, blocks
    ``(size - (cols - 1) gap) // cols``). ``label_px`` is the side of the label region inside a block (float: the
    VisPuzzle labels are drawn before the block is resized)."""

    style: str
    rows: int
    cols: int
    size: int
    block_w: int
    block_h: int
    gap: int
    width: int
    height: int
    box: int
    font_px: int
    outline: int
    label_px: float

    def origin(self, pos: int) -> tuple[int, int]:
        r, c = divmod(pos, self.cols)
        return c * (self.block_w + self.gap), r * (self.block_h + self.gap)


def _label_params(size: int, ratio: float) -> tuple[int, int, int, int]:
    s = size / BASE_SIZE
    box = max(2, round(LABEL_BOX * s))
    return box, max(1, int(box * ratio)), max(1, round(s)), max(1, round(GAP * s))


def layout_for(style: str, rows: int, cols: int, size: int) -> Layout:
    """The layout of a ``style`` jigsaw at ``size`` (see :class:`Layout`)."""
    if style == "standard":
        box, font_px, outline, gap = _label_params(size, FONT_RATIO)
        bw, bh = size // cols, size // rows
        return Layout(style, rows, cols, size, bw, bh, gap, cols * bw + (cols - 1) * gap, rows * bh + (rows - 1) * gap,
                      box, font_px, outline, float(box + 1))
    if style == "vispuzzle":
        box, font_px, outline, gap = _label_params(size, VISPUZZLE_FONT_RATIO)
        bw, bh = (size - (cols - 1) * gap) // cols, (size - (rows - 1) * gap) // rows
        crop_w = size / cols - VISPUZZLE_BENCH_GAP * size / BASE_SIZE
        return Layout(style, rows, cols, size, bw, bh, gap, size, size, box, font_px, outline,
                      (box + 1) * bw / crop_w)
    raise TaskError(f"unknown jigsaw layout style {style!r}; expected 'standard' or 'vispuzzle'")


def _infer_layout(width: int, height: int, rows: int, cols: int) -> Layout:
    """The layout whose image is width x height (official problem PNGs, or ones we wrote at another size)."""
    guess = max(width, height)  # the block-area side is at most the image side
    for style in ("standard", "vispuzzle"):   # the published geometry first: a 516 px 2x2 is standard at 512
        for size in sorted(range(max(16, guess - 64), guess + 65), key=lambda s: abs(s - guess)):
            lay = layout_for(style, rows, cols, size)
            if (lay.width, lay.height) == (width, height):
                return lay
    raise TaskError(f"an image of {width}x{height} px is not a {rows}x{cols} jigsaw layout (expected e.g. "
                    f"{layout_for('standard', rows, cols, BASE_SIZE).width}x"
                    f"{layout_for('standard', rows, cols, BASE_SIZE).height} px for the published geometry)")


def _draw_label(block: Image.Image, text: str, box: int, font_px: int, outline: int) -> None:
    """The published label: white box over [0, box]^2, black outline, bold number centred by its textbbox."""
    d = ImageDraw.Draw(block)
    d.rectangle([(0, 0), (box, box)], fill="white")
    d.rectangle([(0, 0), (box, box)], outline="black", width=outline)
    font = draw.font("Lato-Bold", font_px)
    left, top, right, bottom = d.textbbox((0, 0), text, font=font)
    # As published: the offset ignores the bbox origin (left/top), so glyphs sit where the reference put them.
    d.text(((box - (right - left)) / 2, (box - (bottom - top)) / 2), text, fill="black", font=font)


# --------------------------------------------------------------------------------------------------- VisPuzzle
_VIS_RANGES = ((1, 80, (1, 2)), (81, 160, (2, 1)), (161, 240, (1, 3)), (241, 320, (3, 1)), (321, 400, (2, 2)))


def vispuzzle_grid(pid: str | int, question: str | None = None) -> tuple[int, int]:
    """(rows, cols) of a VisPuzzle item: from the pid range (1-80 1x2, 81-160 2x1, 161-240 1x3, 241-320 3x1,
    321-400 2x2) as the published eval does; outside 1..400, from the "RxC" in the question; else TaskError. A
    question that names a different grid than the pid range is a TaskError (the file is not the benchmark)."""
    try:
        idx = int(str(pid))
    except ValueError:
        raise TaskError(f"VisPuzzle pid {pid!r} is not a number") from None
    from_q = None
    if question:
        m = re.search(r"(\d+)\s*[x×]\s*(\d+)", question)
        if m:
            from_q = (int(m.group(1)), int(m.group(2)))
    for lo, hi, grid in _VIS_RANGES:
        if lo <= idx <= hi:
            if from_q is not None and from_q != grid:
                raise TaskError(f"VisPuzzle pid {pid} implies a {grid[0]}x{grid[1]} grid but its question says "
                                f"{from_q[0]}x{from_q[1]}")
            return grid
    if from_q is None:
        raise TaskError(f"VisPuzzle pid {pid!r} is outside 1..400 and its question names no grid")
    return from_q


def vispuzzle_sentences(rows: int, cols: int, labels: Sequence[int]) -> list[str]:
    """The published answer sentence(s) for a label sequence (``labels[i]`` = part at position ``i``), in the order
    of the published eval's hypotheses (1x2 and 2x1 have two equivalent phrasings). Not normalised."""
    d = [str(x) for x in labels]
    if len(d) != rows * cols:
        raise TaskError(f"a {rows}x{cols} VisPuzzle answer needs {rows * cols} labels, got {list(labels)!r}")
    if (rows, cols) == (1, 2):
        return [f"Part {d[1]} should be to the right of Part {d[0]}",
                f"Part {d[0]} should be to the left of Part {d[1]}"]
    if (rows, cols) == (2, 1):
        return [f"Part {d[0]} should be to the top of Part {d[1]}",
                f"Part {d[1]} should be to the bottom of Part {d[0]}"]
    if (rows, cols) == (1, 3):
        return [f"The left part should be Part {d[0]}; the middle part should be Part {d[1]}; "
                f"and the right part should be Part {d[2]}."]
    if (rows, cols) == (3, 1):
        return [f"The top part should be Part {d[0]}; the middle part should be Part {d[1]}; "
                f"and the bottom part should be Part {d[2]}."]
    if (rows, cols) == (2, 2):
        return [f"The top-left part should be Part {d[0]}; the top-right part should be Part {d[1]}; "
                f"the bottom-left part should be Part {d[2]}; and the bottom-right part should be Part {d[3]}."]
    raise TaskError(f"VisPuzzle has no answer template for a {rows}x{cols} grid; expected 1x2, 2x1, 1x3, 3x1 or 2x2")


def _normalise_sentence(text: str) -> str:
    text = text.strip().lower()
    if text.endswith("."):
        text = text[:-1]
    return " ".join(text.split())


def vispuzzle_is_correct(rows: int, cols: int, labels: Sequence[int], gt_sentence: str) -> bool:
    """The published VisPuzzle scoring: a hypothesis sentence equals the normalised GT, or (with ';' removed) is a
    substring of it."""
    gt = _normalise_sentence(gt_sentence)
    for hyp in vispuzzle_sentences(rows, cols, labels):
        h = _normalise_sentence(hyp)
        if h == gt or h.replace(";", "") in gt.replace(";", ""):
            return True
    return False


_PAIR_RE = re.compile(r"part\s+(\d+)\s+should\s+be\s+(?:placed\s+)?(?:to\s+the\s+|on\s+the\s+|on\s+)?"
                      r"(left|right|top|bottom|above|below)\s+(?:side\s+)?(?:of\s+)?part\s+(\d+)")
_POS_RE = re.compile(r"the\s+(top-left|top-right|bottom-left|bottom-right|left|middle|right|top|bottom)\s+part\s+"
                     r"should\s+be\s+part\s+(\d+)")
_POSITIONS = {(1, 3): ("left", "middle", "right"), (3, 1): ("top", "middle", "bottom"),
              (2, 2): ("top-left", "top-right", "bottom-left", "bottom-right")}


def parse_vispuzzle_sentence(rows: int, cols: int, sentence: str) -> tuple[int, ...]:
    """The label sequence (part per position, row-major) an answer sentence states; TaskError if it states none."""
    text = " ".join(sentence.lower().split())
    if (rows, cols) in ((1, 2), (2, 1)):
        m = _PAIR_RE.search(text)
        if not m:
            raise TaskError(f"VisPuzzle {rows}x{cols} answer {sentence!r} is not 'Part a should be to the <side> of "
                            f"Part b'")
        a, side, b = int(m.group(1)), m.group(2), int(m.group(3))
        first_sides = ("left",) if cols == 2 else ("top", "above")
        second_sides = ("right",) if cols == 2 else ("bottom", "below")
        if side in first_sides:
            labels = (a, b)
        elif side in second_sides:
            labels = (b, a)
        else:
            raise TaskError(f"VisPuzzle {rows}x{cols} answer {sentence!r} uses side {side!r}")
    elif (rows, cols) in _POSITIONS:
        names = _POSITIONS[(rows, cols)]
        found: dict[str, int] = {}
        for pos, part in _POS_RE.findall(text):
            if pos in found:
                raise TaskError(f"VisPuzzle answer {sentence!r} names the {pos} part twice")
            found[pos] = int(part)
        if set(found) != set(names):
            raise TaskError(f"VisPuzzle {rows}x{cols} answer {sentence!r} must name the parts at {list(names)}")
        labels = tuple(found[p] for p in names)
    else:
        raise TaskError(f"VisPuzzle has no answer template for a {rows}x{cols} grid")
    permutation_from_gt(labels)  # validates
    return labels


def _vispuzzle_blocks(image: Image.Image, rows: int, cols: int, size: int) -> list[Image.Image]:
    """Labelled, resized blocks of the published VisPuzzle preprocessing, in reading order."""
    lay = layout_for("vispuzzle", rows, cols, size)
    im = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    step_w, step_h = size / cols, size / rows
    bench_gap = VISPUZZLE_BENCH_GAP * size / BASE_SIZE
    crop_w, crop_h = step_w - bench_gap, step_h - bench_gap
    blocks = []
    for r in range(rows):
        for c in range(cols):
            cx, cy = (c + 0.5) * step_w, (r + 0.5) * step_h
            # PIL rounds a float crop box, as in the published script.
            block = im.crop((cx - crop_w / 2, cy - crop_h / 2, cx + crop_w / 2, cy + crop_h / 2))
            _draw_label(block, str(len(blocks) + 1), lay.box, lay.font_px, lay.outline)
            blocks.append(block.resize((lay.block_w, lay.block_h), Image.Resampling.BICUBIC))
    return blocks


def vispuzzle_preprocess(image: Image.Image, rows: int, cols: int, size: int = BASE_SIZE) -> Image.Image:
    """The published VisPuzzle inference preprocessing (eval/VisPuzzle/diffthinker.py), at 512 exactly:

    1. resize the benchmark image to 512 x 512 bicubic (aspect ratio not kept);
    2. crop each part's centred box of (512/k - 12) px per side, which removes the benchmark's white strips;
    3. draw a new label box (32 px, Lato-Bold int(0.8 * 32) = 25 px) with labels 1..n in reading order -- the
       benchmark's own labelling order (its small yellow labels stay visible);
    4. resize each block bicubic to (512 - (k - 1) * 4) // k and stitch into 512 x 512 with 4-px white gaps.

    At other ``size`` every length scales with ``size / 512`` (strip 12 s, label box, gap ``max(1, round(4 s))``).
    """
    lay = layout_for("vispuzzle", rows, cols, size)
    return _stitch(_vispuzzle_blocks(draw.to_rgb(image), rows, cols, size), list(range(rows * cols)), lay)


def _stitch(blocks: Sequence[Image.Image], arrangement: Sequence[int], lay: Layout) -> Image.Image:
    """Paste ``blocks[arrangement[i]]`` at position ``i`` on a white canvas."""
    out = Image.new("RGB", (lay.width, lay.height), draw.WHITE)
    for pos, b in enumerate(arrangement):
        out.paste(blocks[b], lay.origin(pos))
    return out


# --------------------------------------------------------------------------------------------------- matching
def _hungarian(cost: np.ndarray) -> list[int]:
    """Exact minimum-cost assignment of a square matrix (row -> column); O(n^3), numpy inner loop."""
    n = cost.shape[0]
    u = np.zeros(n + 1)
    v = np.zeros(n + 1)
    p = np.zeros(n + 1, dtype=np.intp)       # p[j]: row matched to column j (1-based; 0 = none)
    way = np.zeros(n + 1, dtype=np.intp)
    c = np.zeros((n + 1, n + 1))
    c[1:, 1:] = cost
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(n + 1, np.inf)
        used = np.zeros(n + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            cur = c[i0] - u[i0] - v
            free = ~used
            better = free & (cur < minv)
            minv[better] = cur[better]
            way[better] = j0
            masked = np.where(free, minv, np.inf)
            masked[0] = np.inf
            j1 = int(np.argmin(masked))
            delta = masked[j1]
            u[p[used]] += delta
            v[used] -= delta
            minv[free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    assign = [0] * n
    for j in range(1, n + 1):
        assign[p[j] - 1] = j - 1
    return assign


def _block_boxes(lay: Layout, width: int, height: int, inset: float, label: bool = False) -> list[tuple]:
    """Float crop boxes of every block position (inner region, or the label region) mapped onto an image of
    width x height that shows ``lay`` scaled to fit."""
    sx, sy = width / lay.width, height / lay.height
    boxes = []
    for pos in range(lay.rows * lay.cols):
        ox, oy = lay.origin(pos)
        if label:
            boxes.append((ox * sx, oy * sy, (ox + lay.label_px) * sx, (oy + lay.label_px) * sy))
        else:
            mx, my = lay.block_w * inset, lay.block_h * inset
            boxes.append(((ox + mx) * sx, (oy + my) * sy, (ox + lay.block_w - mx) * sx, (oy + lay.block_h - my) * sy))
    return boxes


def _thumbs(image: Image.Image, boxes: Sequence[tuple], side: int) -> np.ndarray:
    """(n, side*side, 3) float32 box-filtered thumbnails of the given regions."""
    return np.stack([np.asarray(image.resize((side, side), Image.Resampling.BOX, box=b), dtype=np.float32)
                     .reshape(-1, 3) for b in boxes])


def _label_vectors(image: Image.Image, lay: Layout) -> np.ndarray:
    """(n, LABEL_THUMB^2) zero-mean unit-norm grey thumbnails of the label regions."""
    t = _thumbs(image, _block_boxes(lay, image.width, image.height, 0.0, label=True), LABEL_THUMB).mean(-1)
    t = t - t.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(t, axis=1, keepdims=True)
    return t / np.maximum(norm, 1e-6)


def _distances(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Robust distance matrix: mean |difference| over the best TRIM fraction of thumbnail cells."""
    diff = np.abs(out[:, None] - ref[None]).mean(-1)           # (n_out, n_ref, cells)
    keep = max(1, int(round(diff.shape[-1] * TRIM)))
    return np.partition(diff, keep - 1, axis=-1)[..., :keep].mean(-1)


class _LRU(OrderedDict):
    def __init__(self, maxsize: int):
        super().__init__()
        self.maxsize = maxsize

    def get_or(self, key, make):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        self[key] = value
        if len(self) > self.maxsize:
            self.popitem(last=False)
        return value

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.maxsize:
            self.popitem(last=False)


# --------------------------------------------------------------------------------------------------- the task
_ID_RE = re.compile(r"^(\d+)x(\d+)_(\d+)$")


class JigsawTask(Task):
    """Jigsaw reassembly (see the module docstring for rules, rendering, parsing and formats)."""

    name = "jigsaw"
    version = 1
    prompt = "Solve this jigsaw puzzle."
    levels = LEVELS
    default_level = "2x2"
    instance_type = JigsawInstance
    answer_type = JigsawAnswer
    supported_sizes = (64, 128, 256, 512, 1024)
    official_patterns = (r"/Jigsaw/(\d+)x(\d+)_test/?$", r"/Jigsaw/VisPuzzle(_test)?/?$")

    def matches_official(self, folder: Path) -> bool:
        # The published ``Jigsaw/VisPuzzle`` folder holds only the answers (data.jsonl) unless arrange.py also
        # wrote its images/ there; the items themselves live in VisPuzzle_test. Claim it only when it has images,
        # so importing a whole test tree reads each VisPuzzle item once.
        folder = Path(folder)
        if folder.name == "VisPuzzle" and not any((folder / "images").glob("*_problem.jpg")):
            return False
        return super().matches_official(folder)

    def __init__(self) -> None:
        self._blocks = _LRU(8)        # (instance, size) -> labelled problem blocks
        self._refs = _LRU(1024)       # instance -> (thumbnails per side, label vectors) of the 512 problem image
        self._native_refs = _LRU(64)  # (instance, size) -> the same for a problem drawn natively at another size

    # ----------------------------------------------------------------- generation
    def supported_sizes_for(self, level: str) -> tuple[int, ...]:
        self.level_config(level)
        return self.supported_sizes

    def generate(self, level: str, seed: int) -> JigsawInstance:
        cfg = self.level_config(level)
        rng = self.rng(level, seed)
        for _ in range(64):
            source = procedural_spec(rng.randrange(2 ** 31))
            if self._min_block_distance(source, cfg.rows, cfg.cols) >= MIN_BLOCK_DISTANCE:
                break
        else:  # pragma: no cover - the procedural kinds make this practically unreachable
            raise TaskError(f"no procedural source with distinct blocks found for level {level!r} seed {seed}")
        return JigsawInstance(cfg.rows, cfg.cols, source, self._shuffle(rng, cfg.rows * cfg.cols))

    def make_instance(self, level: str, seed: int, source: str) -> JigsawInstance:
        """A puzzle of ``level`` over any source spec (e.g. a user's ``file:`` picture), shuffled by (level, seed)
        exactly as ``generate`` shuffles (never the identity). No distinctness check: a user picture with
        near-identical blocks is parsed through its labels."""
        cfg = self.level_config(level)
        rng = self.rng(level, seed)
        rng.randrange(2 ** 31)  # keep the stream aligned with generate's first draw
        return JigsawInstance(cfg.rows, cfg.cols, source, self._shuffle(rng, cfg.rows * cfg.cols))

    @staticmethod
    def _shuffle(rng, n: int) -> tuple[int, ...]:
        perm = list(range(n))
        while perm == sorted(perm):
            rng.shuffle(perm)
        return tuple(perm)

    @staticmethod
    def _min_block_distance(source: str, rows: int, cols: int) -> float:
        """Smallest distance between two blocks of the source picture (thumbnails of a 256 px evaluation)."""
        lay = layout_for("standard", rows, cols, 256)
        pic = source_picture(source, 256, 256)
        boxes = []
        for pos in range(rows * cols):
            r, c = divmod(pos, cols)
            x, y = c * lay.block_w, r * lay.block_h
            m = INSET * lay.block_w, INSET * lay.block_h
            boxes.append((x + m[0], y + m[1], x + lay.block_w - m[0], y + lay.block_h - m[1]))
        d = _distances(t := _thumbs(pic, boxes, THUMB), t)
        np.fill_diagonal(d, np.inf)
        return float(d.min())

    def solve(self, instance: JigsawInstance) -> JigsawAnswer:
        self._check_instance(instance)
        return JigsawAnswer(gt_from_permutation(instance.permutation))

    # ----------------------------------------------------------------- rendering
    def layout(self, instance: JigsawInstance, size: int = BASE_SIZE) -> Layout:
        """The geometry ``render(instance, size=size)`` draws."""
        kind = parse_spec(instance.source).kind
        if kind == "official-problem":
            native = self._official_layout(instance)
            return native if size == native.size else layout_for(native.style, instance.rows, instance.cols, size)
        return layout_for("vispuzzle" if kind == "vispuzzle" else "standard", instance.rows, instance.cols, size)

    def _official_layout(self, instance: JigsawInstance) -> Layout:
        img = load_file_image(instance.source)
        return _infer_layout(img.width, img.height, instance.rows, instance.cols)

    def _problem_blocks(self, instance: JigsawInstance, size: int) -> list[Image.Image]:
        return self._blocks.get_or((instance, size), lambda: self._make_blocks(instance, size))

    def _make_blocks(self, instance: JigsawInstance, size: int) -> list[Image.Image]:
        spec = parse_spec(instance.source)
        rows, cols = instance.rows, instance.cols
        if spec.kind == "vispuzzle":
            return _vispuzzle_blocks(load_file_image(spec), rows, cols, size)
        if spec.kind == "official-problem":
            img = load_file_image(spec)
            native = _infer_layout(img.width, img.height, rows, cols)
            target = layout_for(native.style, rows, cols, size)
            blocks = []
            for pos in range(instance.n):
                x, y = native.origin(pos)
                b = img.crop((x, y, x + native.block_w, y + native.block_h))
                if (target.block_w, target.block_h) != (native.block_w, native.block_h):
                    b = b.resize((target.block_w, target.block_h), Image.Resampling.LANCZOS)
                blocks.append(b)
            return blocks
        lay = layout_for("standard", rows, cols, size)
        pic = source_picture(instance.source, size, size)
        blocks = []
        for p, orig in enumerate(instance.permutation):
            r, c = divmod(orig, cols)
            b = pic.crop((c * lay.block_w, r * lay.block_h, (c + 1) * lay.block_w, (r + 1) * lay.block_h))
            _draw_label(b, str(p + 1), lay.box, lay.font_px, lay.outline)
            blocks.append(b)
        return blocks

    def render(self, instance: JigsawInstance, answer: JigsawAnswer | None = None, size: int = BASE_SIZE,
               style: str = "diffthinker") -> Image.Image:
        """Problem image (answer=None: block ``p`` at position ``p``) or the arrangement an answer states
        (piece labelled ``labels[i]`` at position ``i``; the GT gives the solution image). ``size`` is the block
        area side (512 -> 516/518/524 px images)."""
        self.check_style(style)
        self._check_instance(instance)
        _check_int("render size", size, 16, 4096)
        if size // max(instance.rows, instance.cols) < 8:
            raise TaskError(f"render size {size} is too small for a {instance.rows}x{instance.cols} jigsaw "
                            f"(blocks under 8 px)")
        n = instance.n
        if answer is None:
            arrangement = list(range(n))
        else:
            if not isinstance(answer, JigsawAnswer):
                raise TaskError(f"{self.id} renders a JigsawAnswer, got {type(answer).__name__}")
            if len(answer.labels) != n or any(not 1 <= x <= n for x in answer.labels):
                raise TaskError(f"cannot render answer {list(answer.labels)!r}: expected {n} labels in 1..{n}")
            arrangement = [x - 1 for x in answer.labels]
        blocks = self._problem_blocks(instance, size)
        lay = self.layout(instance, size)
        if size == BASE_SIZE and instance not in self._refs:
            # The parser's references come from the 512 problem image; computing them here (~1 ms) spares a
            # second render when the same instance is parsed later.
            self._refs.put(instance, self._reference(_stitch(blocks, list(range(n)), lay), lay))
        return _stitch(blocks, arrangement, lay)

    # ----------------------------------------------------------------- parsing
    @staticmethod
    def _reference(problem: Image.Image, lay: Layout) -> tuple[dict[int, np.ndarray], np.ndarray]:
        boxes = _block_boxes(lay, problem.width, problem.height, INSET)
        return ({side: _thumbs(problem, boxes, side) for side in THUMB_SIDES}, _label_vectors(problem, lay))

    def _references(self, instance: JigsawInstance) -> tuple[dict[int, np.ndarray], np.ndarray]:
        if instance not in self._refs:
            self.render(instance, size=BASE_SIZE)
        return self._refs.get_or(instance, lambda: self._reference(self.render(instance), self.layout(instance)))

    def _native_references(self, instance: JigsawInstance, size: int) -> tuple[dict[int, np.ndarray], np.ndarray]:
        """The parser's references from the problem image drawn natively at ``size`` (see ``_parse``)."""
        return self._native_refs.get_or(
            (instance, size), lambda: self._reference(self.render(instance, size=size), self.layout(instance, size)))

    def _native_sizes(self, instance: JigsawInstance, width: int, height: int) -> list[int]:
        """The render sizes other than 512 whose native layout is exactly ``width x height`` (several sizes share
        a layout: 108..111 px all give 4x4 blocks of 27 px, cut from pictures drawn at those sizes)."""
        kind = parse_spec(instance.source).kind
        if kind in ("official-problem", "vispuzzle"):
            # official pictures exist at their one native size; a VisPuzzle layout is resized to fit any size
            # (its geometry scales), so both are read with the 512 geometry alone
            return []
        guess = max(width, height)
        sizes = []
        for size in range(max(16, guess - 16), guess + 17):
            if size == BASE_SIZE or size // max(instance.rows, instance.cols) < 8:
                continue
            lay = self.layout(instance, size)
            if (lay.width, lay.height) == (width, height):
                sizes.append(size)
        return sizes

    def _parse(self, image: Image.Image, instance: JigsawInstance) -> JigsawAnswer | ParseFailure:
        # A solution image is read against the problem's 512 px geometry scaled to the image: right for a model
        # output or any resized render. A render drawn natively at another size is not that: its blocks are
        # ``size // cols`` px cut from a picture drawn at ``size``, so at a size the grid does not divide (75 px for
        # 4x4) each block shows a slightly shifted part of the picture, and its gaps are rounded. When the image
        # has exactly such a native layout it is also read against that geometry, and the reading that explains
        # the pixels better (lower total match distance) is kept.
        lay = self.layout(instance, BASE_SIZE)
        answer, cost = self._read(image, instance, lay, *self._references(instance))
        for size in self._native_sizes(instance, image.width, image.height):
            alt, alt_cost = self._read(image, instance, self.layout(instance, size),
                                       *self._native_references(instance, size))
            if isinstance(alt, JigsawAnswer) and (isinstance(answer, ParseFailure) or alt_cost < cost):
                answer, cost = alt, alt_cost
        return answer

    @staticmethod
    def _read(image: Image.Image, instance: JigsawInstance, lay: Layout, ref_thumbs: dict[int, np.ndarray],
              ref_labels: np.ndarray) -> tuple[JigsawAnswer | ParseFailure, float]:
        """One reading of ``image`` as drawn with ``lay`` (scaled to the image), against these references.
        Returns the answer (or ParseFailure) and the total distance of the piece assignment."""
        n = instance.n
        min_block = min(image.width * lay.block_w / lay.width, image.height * lay.block_h / lay.height)
        if min_block < 6:
            return ParseFailure(f"image {image.width}x{image.height} is too small for a {instance.rows}x"
                                f"{instance.cols} jigsaw (blocks of {min_block:.1f} px)"), math.inf
        # Small blocks get coarser thumbnails: a cell of under ~3 px is dominated by blur, JPEG chroma subsampling
        # and the half-pixel misalignment of a rescale, not by the picture.
        side = max((s for s in THUMB_SIDES if s * 3 <= min_block * (1 - 2 * INSET)), default=THUMB_SIDES[-1])
        out = _thumbs(image, _block_boxes(lay, image.width, image.height, INSET), side)
        dist = _distances(out, ref_thumbs[side])
        assign = _hungarian(dist)
        cost = float(sum(dist[o, p] for o, p in enumerate(assign)))
        pieces: list[int] = []
        doubtful = []
        for o, p in enumerate(assign):
            best = dist[o, p]
            alt = np.min(np.delete(dist[o], p)) if n > 1 else np.inf
            if best <= MATCH_MAX and alt - best >= max(MARGIN_ABS, MARGIN_REL * best):
                pieces.append(p)
            else:
                pieces.append(-1)
                doubtful.append(o)
        if doubtful:
            vecs = _label_vectors(image, lay)
            corr = vecs[doubtful] @ ref_labels.T                  # (doubtful, n)
            for k, o in enumerate(doubtful):
                order = np.argsort(corr[k])[::-1]
                top, second = corr[k, order[0]], (corr[k, order[1]] if n > 1 else -1.0)
                if top < LABEL_MIN_CORR or top - second < LABEL_MARGIN:
                    return ParseFailure(
                        f"the block at position {o + 1} matches no piece confidently "
                        f"(distance {dist[o, assign[o]]:.1f})"
                        f" and its label is unreadable (best correlation {top:.2f})",
                        {"position": o + 1, "distance": float(dist[o, assign[o]]), "label_corr": float(top)}), cost
                pieces[o] = int(order[0])
        return JigsawAnswer(tuple(p + 1 for p in pieces)), cost

    # ----------------------------------------------------------------- rules
    def _verify(self, instance: JigsawInstance, answer: JigsawAnswer) -> Verdict:
        n = instance.n
        labels = answer.labels
        gt = gt_from_permutation(instance.permutation)
        if len(labels) != n:
            return Verdict.failure(f"expected {n} labels, got {len(labels)}", expected=n, got=len(labels))
        right = sum(a == b for a, b in zip(labels, gt))
        valid = sorted(labels) == list(range(1, n + 1))
        correct = valid and right == n
        if correct:
            reason = "every piece is in place"
        elif not valid:
            reason = f"not a permutation of 1..{n}: {list(labels)}"
        else:
            reason = f"{n - right} of {n} pieces misplaced"
        return Verdict(correct=correct, valid=valid, score=right / n, reason=reason,
                       details={"right": right, "n": n})

    # ----------------------------------------------------------------- text side
    def to_text(self, instance: JigsawInstance) -> str:
        self._check_instance(instance)
        r, c, n = instance.rows, instance.cols, instance.n
        example = " ".join(str(x) for x in ([2, 1] + list(range(3, n + 1))))
        return (f"Jigsaw puzzle on a {r}x{c} grid ({r} row{'s' if r > 1 else ''}, {c} column{'s' if c > 1 else ''}): "
                f"a picture was cut into {n} pieces and the pieces were shuffled. Each piece shows a label in its "
                f"top-left corner: its current position, 1 to {n}, counted row by row from the top-left. Restore the "
                f"picture. Answer with {n} labels separated by spaces: for each position of the restored picture, "
                f"row by row from the top-left, the label of the piece that belongs there (for example \"{example}\").")

    def answer_to_text(self, answer: JigsawAnswer) -> str:
        return " ".join(str(x) for x in answer.labels)

    def parse_text(self, text: str, instance: JigsawInstance | None = None) -> JigsawAnswer | ParseFailure:
        if not isinstance(text, str):
            return ParseFailure(f"expected text, got {type(text).__name__}")
        if instance is None:
            lines = [ln for ln in text.splitlines() if re.search(r"\d", ln)]
            if not lines:
                return ParseFailure("no integers in the text")
            ints = re.findall(r"\d+", lines[-1])
            if len(ints) < 2:
                return ParseFailure(f"the last line with numbers holds {len(ints)} integer(s); expected a sequence")
            return JigsawAnswer(tuple(int(x) for x in ints))
        self._check_instance(instance)
        ints = re.findall(r"\d+", text)
        n = instance.n
        if len(ints) < n:
            return ParseFailure(f"expected {n} labels, found {len(ints)} integer(s) in the text")
        return JigsawAnswer(tuple(int(x) for x in ints[-n:]))

    # ----------------------------------------------------------------- official folders
    def read_official(self, folder: Path) -> list[OfficialItem]:
        """Read ``Jigsaw/<R>x<C>_test`` (or a folder written by ``write_official``), ``Jigsaw/VisPuzzle_test``
        (its ``data.jsonl`` is looked up in the folder itself, then in the sibling ``VisPuzzle`` folder), or the
        ``Jigsaw/VisPuzzle`` folder that the published ``arrange.py`` writes (``data.jsonl`` + ``images/``)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise TaskError(f"jigsaw official folder {str(folder)!r} is not an existing directory")
        if (folder / "solutions.json").is_file() or any(_ID_RE.match(p.stem) for p in folder.glob("*.png")):
            return self._read_synthetic(folder)
        if any(folder.glob("*_problem.jpg")):
            return self._read_vispuzzle(folder)
        if (folder / "data.jsonl").is_file() and any((folder / "images").glob("*_problem.jpg")):
            return self._read_vispuzzle(folder / "images", folder / "data.jsonl")
        raise TaskError(f"{folder} is not a jigsaw folder: expected <R>x<C>_<id>.png files with solutions.json, "
                        f"or VisPuzzle <pid>_problem.jpg files")

    def _read_synthetic(self, folder: Path) -> list[OfficialItem]:
        sol_path = folder / "solutions.json"
        answers = read_answers_json(sol_path, '{"2x2_00001": "3 1 2 4"}')
        items = []
        for png in sorted(folder.glob("*.png")):
            m = _ID_RE.match(png.stem)
            if not m:
                if png.stem.endswith("_solution") and _ID_RE.match(png.stem[: -len("_solution")]):
                    continue
                raise TaskError(f"unexpected file {png.name} in jigsaw folder {folder} (expected <R>x<C>_<id>.png)")
            item_id = png.stem
            rows, cols = int(m.group(1)), int(m.group(2))
            level = f"{rows}x{cols}"
            if level not in self.levels:
                raise TaskError(f"{png}: grid {level} is not a jigsaw level; expected one of {sorted(self.levels)}")
            txt = folder / f"{item_id}.txt"
            texts = []
            if txt.is_file():
                texts.append(txt.read_text(encoding="utf-8"))
            if item_id in answers:
                texts.append(str(answers[item_id]))
            if not texts:
                raise TaskError(f"{png}: no ground truth ({txt.name} or an entry in solutions.json)")
            seqs = [tuple(int(x) for x in re.findall(r"\d+", t)) for t in texts]
            if len(set(seqs)) != 1:
                raise TaskError(f"{item_id}: {txt.name} says {seqs[0]} but solutions.json says {seqs[-1]}")
            labels = seqs[0]
            if len(labels) != rows * cols:
                raise TaskError(f"{item_id}: ground truth {list(labels)} has {len(labels)} labels, expected "
                                f"{rows * cols}")
            inst = JigsawInstance(rows, cols, file_spec(png, kind="official-problem"), permutation_from_gt(labels))
            with Image.open(png) as im:
                _infer_layout(im.width, im.height, rows, cols)  # a wrong-size PNG fails here, not at render
            sol = folder / f"{item_id}_solution.png"
            items.append(OfficialItem(item_id=item_id, level=level, instance=inst, problem_image=png,
                                      solution_image=sol if sol.is_file() else None, answer=JigsawAnswer(labels)))
        if not items:
            raise TaskError(f"no jigsaw items (<R>x<C>_<id>.png) in {folder}")
        extra = set(answers) - {it.item_id for it in items}
        if extra:
            raise TaskError(f"{sol_path} lists items without a problem image: {sorted(extra)[:5]}")
        return items

    def _read_vispuzzle(self, folder: Path, jsonl: Path | None = None) -> list[OfficialItem]:
        candidates = [jsonl] if jsonl else [folder / "data.jsonl", folder.parent / "VisPuzzle" / "data.jsonl"]
        jsonl = next((p for p in candidates if p.is_file()), None)
        if jsonl is None:
            raise TaskError(f"VisPuzzle ground truth not found: expected {candidates[0]} or {candidates[1]}")
        records = {}
        for k, line in enumerate(jsonl.read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskError(f"{jsonl} line {k + 1} is not JSON ({exc})") from None
            missing = {"pid", "question", "options", "answer", "problem_image"} - set(rec)
            if missing:
                raise TaskError(f"{jsonl} line {k + 1} lacks fields {sorted(missing)}")
            records[Path(rec["problem_image"]).name] = rec
        items = []
        for jpg in sorted(folder.glob("*_problem.jpg")):
            rec = records.pop(jpg.name, None)
            if rec is None:
                raise TaskError(f"{jpg.name} has no record in {jsonl}")
            rows, cols = vispuzzle_grid(rec["pid"], rec["question"])
            labels = parse_vispuzzle_sentence(rows, cols, rec["answer"])
            inst = JigsawInstance(rows, cols, file_spec(jpg, kind="vispuzzle"), permutation_from_gt(labels))
            items.append(OfficialItem(item_id=str(rec["pid"]), level=f"{rows}x{cols}", instance=inst,
                                      problem_image=jpg, solution_image=None, answer=JigsawAnswer(labels),
                                      extra={"question": rec["question"], "options": list(rec["options"]),
                                             "answer_text": rec["answer"]}))
        if records:
            raise TaskError(f"{jsonl} lists {len(records)} item(s) whose image is not in {folder}: "
                            f"{sorted(records)[:5]}")
        return sorted(items, key=lambda it: it.item_id)

    def write_official(self, items: Sequence[tuple[str, JigsawInstance, JigsawAnswer]], folder: Path,
                       size: int = BASE_SIZE) -> None:
        """Write the ``<R>x<C>_test`` layout: ``<id>.png``, ``<id>_solution.png`` (the arrangement of the given
        answer), ``<id>.txt`` and ``solutions.json``. Ids must read ``<R>x<C>_<digits>`` matching the grid.
        ``read_official`` gives back the ids, grids, permutations, answers and pixels; the instance's source becomes
        an ``official-problem:`` spec pointing at the written PNG."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        solutions = {}
        for item_id, inst, ans in items:
            m = _ID_RE.match(str(item_id))
            if not m or (int(m.group(1)), int(m.group(2))) != (inst.rows, inst.cols):
                raise TaskError(f"jigsaw item id {item_id!r} must read '{inst.rows}x{inst.cols}_<digits>' "
                                f"(e.g. '{inst.rows}x{inst.cols}_00001')")
            self.render(inst, size=size).save(folder / f"{item_id}.png")
            self.render(inst, ans, size=size).save(folder / f"{item_id}_solution.png")
            text = self.answer_to_text(ans)
            (folder / f"{item_id}.txt").write_text(text, encoding="utf-8")
            solutions[item_id] = text
        write_answers_json(folder / "solutions.json", solutions)


register_task(JigsawTask())
