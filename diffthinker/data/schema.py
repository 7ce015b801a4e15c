"""The dataset schema: columns, item ids, deterministic PNG encoding and image decoding.

Every diffthinker dataset (generated or imported) is a Hugging Face ``datasets.Dataset`` with these columns:

==================  ==========================  ===========================================================
column              type                        meaning
==================  ==========================  ===========================================================
id                  string                      stable, filename-safe item id (see below)
task                string                      versioned task id, e.g. ``maze-v1``
task_version        int32                       the task's version
level               string                      our level name, e.g. ``8``, ``vsp3``, ``2x2``
seed                int64 (nullable)            the seed ``generate(level, seed)`` was called with; null for
                                                official items
prompt              string                      the task's published edit prompt
image               Image                       the problem image (PNG; official items keep their bytes)
solution_image      Image (nullable)            the solution image; null where the official set has none
                                                (VSP maps, VisPuzzle)
instance            string                      the instance as canonical JSON (``task.instance_from_json``)
answer              string (nullable)           ``task.answer_to_text(answer)``; null if no answer is known
answer_json         string (nullable)           the answer as canonical JSON (``task.answer_from_json``)
content_hash        string                      ``task.content_hash(instance)`` (sha256 hex), for dedup
official            bool                        True for items of the official DiffThinker test sets
source              string                      ``generated`` or ``official:<layout folder>``
official_id         string (nullable)           the official item stem (``8_1_001``), null if generated
==================  ==========================  ===========================================================

Item ids are built from ``[A-Za-z0-9._-]`` only, so ``<id>.png`` is always a safe file name:

- generated: ``{task_id}_{level}_{seed:06d}``, e.g. ``maze-v1_8_000123``; the id names everything needed to
  regenerate the item alone (task, level, seed).
- official: ``{task_id}_{official_id}``, e.g. ``maze-v1_8_1_001``; the task prefix keeps ids unique in a mixed
  import (Maze ``16_12_001`` and TSP ``16_12_001`` are different puzzles).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import datasets
from PIL import Image

from ..tasks.base import TaskError
from ..tasks.draw import MAX_SIDE

FEATURES = datasets.Features({
    "id": datasets.Value("string"),
    "task": datasets.Value("string"),
    "task_version": datasets.Value("int32"),
    "level": datasets.Value("string"),
    "seed": datasets.Value("int64"),
    "prompt": datasets.Value("string"),
    "image": datasets.Image(),
    "solution_image": datasets.Image(),
    "instance": datasets.Value("string"),
    "answer": datasets.Value("string"),
    "answer_json": datasets.Value("string"),
    "content_hash": datasets.Value("string"),
    "official": datasets.Value("bool"),
    "source": datasets.Value("string"),
    "official_id": datasets.Value("string"),
})

COLUMNS = tuple(FEATURES)

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_safe_name(value: str, what: str) -> str:
    """Return ``value`` if it is usable inside a file name, else raise TaskError (never rewrite it silently)."""
    if not isinstance(value, str) or not _SAFE.match(value) or ".." in value:
        raise TaskError(f"{what} {value!r} is not filename-safe; expected letters, digits, '.', '_' or '-' only")
    return value


def generated_id(task_id: str, level: str, seed: int) -> str:
    return check_safe_name(f"{task_id}_{level}_{seed:06d}", "item id")


def official_item_id(task_id: str, official_id: str) -> str:
    return check_safe_name(f"{task_id}_{official_id}", "item id")


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes of an image, deterministically: fixed compression, no metadata, so the same image gives the
    same bytes on every run (what makes two builds with the same arguments byte-identical)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


def image_cell(data: bytes, name: str) -> dict[str, Any]:
    """The value of a ``datasets.Image`` cell holding ``data`` as-is (PNG or JPEG bytes, never re-encoded)."""
    return {"bytes": data, "path": name}


def image_bytes(cell: Any) -> bytes | None:
    """The raw bytes of an Image cell read with ``decode=False`` (None for a null cell)."""
    if cell is None:
        return None
    if isinstance(cell, dict):
        if cell.get("bytes") is not None:
            return cell["bytes"]
        if cell.get("path"):
            return Path(cell["path"]).read_bytes()
        return None
    raise TaskError(f"expected an undecoded image cell (a dict with 'bytes'), got {type(cell).__name__}")


def open_image_bytes(data: bytes, what: str) -> Image.Image:
    """Decode image bytes fully, refusing oversized images before decoding them (so a huge file cannot cost
    gigabytes). Returns the image in its own mode; ``task.parse`` converts and validates it further."""
    try:
        img = Image.open(io.BytesIO(data))
        w, h = img.size
        if max(w, h) > MAX_SIDE:
            raise TaskError(f"{what}: image size {w}x{h} exceeds the largest accepted side {MAX_SIDE} px")
        img.load()
        return img
    except TaskError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise TaskError(f"{what} is not a readable image ({type(exc).__name__}: {exc})") from None


def open_image_file(path: Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise TaskError(f"image file not found: {path}")
    return open_image_bytes(path.read_bytes(), str(path))
