"""The puzzle on the demo's table: generated from (task, level, seed), or uploaded as an image plus its metadata.

An uploaded image alone is not enough: the verifier needs the puzzle itself (the maze walls, the city
coordinates, the givens), so an upload is the image together with ONE metadata file, either

* the per-item text file of the official DiffThinker layout, the one ``diffthinker generate --format diffthinker``
  also writes: ``<id>.txt`` for maze, tsp, sudoku and jigsaw (the ground-truth labels), ``table/<id>.txt`` for
  frozenlake. It is read by the task's own ``read_official`` (the same code as ``diffthinker import``), from a
  private folder laid out the official way; or
* a JSON object with ``"task"`` and ``"instance"`` (an object, or the JSON string a dataset row holds), optional
  ``"level"`` and ``"seed"``: a row of a ``diffthinker generate`` dataset, or the puzzle file the demo offers.

The image must show the puzzle its metadata describes: it is compared with the task's own rendering of that
puzzle, and more than ``MISMATCH_LIMIT`` of differing pixels is refused (a different puzzle of the same task
differs in 2% to 20% of its pixels; the published images and our renders match exactly).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..tasks.base import Instance, Task, TaskError, get_task, iter_tasks

#: Fraction of pixels (channel difference > ``_PIXEL_TOLERANCE``) by which an uploaded image may differ from the
#: task's rendering of its metadata's puzzle.
MISMATCH_LIMIT = 0.01
_PIXEL_TOLERANCE = 96
#: The folder (relative to a private root) each task's ``read_official`` reads a single uploaded item from, and
#: the sub-folder its text file goes in. The folder names only need to match the task's ``official_patterns``;
#: the level comes from the item itself ("0" is no level, so no folder-name level is imposed).
_OFFICIAL_LAYOUTS = {
    "maze": ("Maze/0_test", ""),
    "tsp": ("TSP/0_test", ""),
    "sudoku": ("Sudoku/0_test", ""),
    "jigsaw": ("Jigsaw/0x0_test", ""),
    "frozenlake": ("FrozenLake/16_test", "table"),
}
METADATA_HELP = ("the official per-item text file (ID.txt; frozenlake: table/ID.txt), as in the DiffThinker "
                 "test folders and `diffthinker generate --format diffthinker`, or a JSON file with \"task\" and "
                 "\"instance\" (a dataset row, or the puzzle file this demo offers)")


class DemoError(Exception):
    """A problem with what the user gave (a file, a setting): shown in the UI as it is, never as a traceback."""


@dataclass(frozen=True)
class Puzzle:
    """One puzzle: the instance (what the verifier checks against) and the image a solver is shown."""

    task_id: str
    level: str
    instance: Instance
    image: Image.Image          # RGB; uploaded as is, or the task's render at ``RENDER_SIZE``
    source: str                 # one line for the UI: where the puzzle came from
    seed: int | None = None     # for generated puzzles

    @property
    def task(self) -> Task:
        return get_task(self.task_id)

    def image_for(self, resolution: int | None) -> Image.Image:
        """The solver's input: a generated puzzle is rendered natively at the model's resolution (crisp, as the
        model was trained), an uploaded one is given as uploaded (the pipeline resizes it)."""
        if self.seed is None or resolution is None or resolution == self.image.width:
            return self.image
        return self.task.render(self.instance, size=int(resolution))

    def to_json(self) -> str:
        """The puzzle file the demo offers for download (and accepts back as upload metadata)."""
        return json.dumps({"task": self.task_id, "level": self.level, "seed": self.seed,
                           "instance": json.loads(self.instance.to_json())}, indent=1) + "\n"


RENDER_SIZE = 512


def levels_of(task: Task) -> list[str]:
    return list(task.levels)


def generate_puzzle(task_name: str, level: str, seed: Any) -> Puzzle:
    """``task.generate(level, seed)`` with every bad value named (``DemoError``)."""
    task = _task(task_name)
    if level not in task.levels:
        raise DemoError(f"unknown level {level!r} for {task.id}; expected one of {levels_of(task)}")
    seed = _seed(seed, "puzzle seed")
    instance = task.generate(level, seed)
    return Puzzle(task.id, level, instance, task.render(instance, size=RENDER_SIZE),
                  source=f"generated: {task.id}, level {level}, seed {seed}", seed=seed)


def load_upload(task_name: str, image_path: str | Path | None, metadata_path: str | Path | None,
                workdir: str | Path, max_bytes: int) -> Puzzle:
    """An uploaded puzzle of the chosen task (see the module docstring). ``workdir`` keeps the files that an
    instance may reference (jigsaw puzzles are cut from the uploaded picture) for as long as the app runs."""
    task = _task(task_name)
    if image_path is None:
        raise DemoError("upload the puzzle image first (a PNG/JPEG of the puzzle, not of its solution)")
    image_path = Path(image_path)
    image = read_image(image_path, max_bytes)
    if metadata_path is None:
        raise DemoError(f"the image {image_path.name} is loaded; now add its metadata file: {METADATA_HELP}")
    metadata_path = Path(metadata_path)
    _check_size(metadata_path, max_bytes)
    if metadata_path.suffix.lower() in (".json", ".jsonl"):
        instance, level = _from_json(task, metadata_path)
    elif metadata_path.suffix.lower() == ".txt":
        instance, level = _from_official_txt(task, image_path, image, metadata_path, Path(workdir))
    else:
        raise DemoError(f"metadata file {metadata_path.name} is neither .txt nor .json; expected {METADATA_HELP}")
    _check_matches(task, instance, image, image_path.name)
    return Puzzle(task.id, level, instance, image,
                  source=f"uploaded: {image_path.name} + {metadata_path.name} ({task.id}, level {level})")


def read_image(path: Path, max_bytes: int) -> Image.Image:
    """The file decoded as an RGB image, or a ``DemoError`` naming the file and why not."""
    from ..data.schema import open_image_bytes
    from ..tasks.draw import to_rgb

    _check_size(path, max_bytes)
    try:
        return to_rgb(open_image_bytes(path.read_bytes(), path.name))
    except TaskError as exc:
        message = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(exc))
        raise DemoError(f"{message}. Upload a PNG or JPEG of the puzzle.") from None


def _check_size(path: Path, max_bytes: int) -> None:
    if not path.is_file():
        raise DemoError(f"uploaded file {path.name} is missing on the server; upload it again")
    size = path.stat().st_size
    if size > max_bytes:
        raise DemoError(f"{path.name} is {size / 1e6:.1f} MB, larger than the {max_bytes / 1e6:.1f} MB this demo "
                        "accepts")


def _task(name: str) -> Task:
    try:
        return get_task(str(name))
    except TaskError as exc:
        raise DemoError(str(exc)) from None


def _seed(value: Any, what: str) -> int:
    """A non-negative int from the UI (gradio numbers arrive as int or float, typed text as str)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DemoError(f"{what} must be a non-negative whole number, got {value!r}")
    return value


# ---------------------------------------------------------------------------------------------- JSON metadata
def _from_json(task: Task, path: Path) -> tuple[Instance, str]:
    try:
        text = path.read_text(encoding="utf-8")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        data = json.loads(lines[0] if path.suffix.lower() == ".jsonl" and lines else text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DemoError(f"{path.name} is not valid JSON ({exc}); expected {METADATA_HELP}") from None
    if not isinstance(data, dict) or "task" not in data or "instance" not in data:
        raise DemoError(f"{path.name} must be a JSON object with \"task\" and \"instance\" fields; expected "
                        f"{METADATA_HELP}")
    other = _task(str(data["task"]))
    if other.id != task.id:
        raise DemoError(f"{path.name} describes a {other.id} puzzle, not a {task.id} one: pick {other.name} in "
                        "the Task menu, or upload a puzzle of the chosen task")
    raw = data["instance"]
    try:
        instance = task.instance_from_json(raw if isinstance(raw, str) else json.dumps(raw))
    except (TaskError, TypeError, ValueError) as exc:
        raise DemoError(f"{path.name}: its instance is not a valid {task.id} puzzle ({exc})") from None
    level = data.get("level")
    return instance, str(level) if level is not None else "?"


# ------------------------------------------------------------------------------------ official-layout metadata
def _from_official_txt(task: Task, image_path: Path, image: Image.Image, txt: Path,
                       workdir: Path) -> tuple[Instance, str]:
    try:
        item = _read_official_item(task, image, txt, workdir, keep=True)
    except TaskError as exc:
        guess = _other_task_reading(task, image, txt, workdir)
        hint = (f" It reads as a {guess} puzzle: pick {get_task(guess).name} in the Task menu." if guess else "")
        raise DemoError(f"{txt.name} is not a {task.id} metadata file: {exc}.{hint}") from None
    return item.instance, item.level


def _read_official_item(task: Task, image: Image.Image, txt: Path, workdir: Path, keep: bool = False):
    """Lay the item out as the official folder of ``task`` (inside a fresh folder under ``workdir``) and read it
    with the task's ``read_official``. With ``keep``, a jigsaw item's folder stays: its instance references the
    picture there (the reader registered the folder as a source root)."""
    layout, sub = _OFFICIAL_LAYOUTS.get(task.name, (None, None))
    if layout is None:
        raise TaskError(f"no official text layout is known for {task.id}")
    workdir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f"{task.name}-", dir=workdir))
    folder = root / layout
    (folder / sub).mkdir(parents=True, exist_ok=True)
    stem = txt.stem
    try:
        shutil.copyfile(txt, folder / sub / txt.name)
        image.save(folder / f"{stem}.png")
        # The task's reader itself, not read_official_tree: that one registers the folder as a source root, and
        # a jigsaw instance would then name its picture relative to it (ambiguous across uploads of the same
        # file name); unregistered, the instance keeps the picture's absolute path.
        try:
            items = task.read_official(folder)
        except TaskError as exc:
            raise TaskError(_strip_paths(str(exc), root)) from None
        if len(items) != 1:
            raise TaskError(f"expected one puzzle, read {len(items)}")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    if not (keep and task.name == "jigsaw"):
        shutil.rmtree(root, ignore_errors=True)
    return items[0]


def _other_task_reading(task: Task, image: Image.Image, txt: Path, workdir: Path) -> str | None:
    """The id of another task whose official reader accepts ``txt`` (for a helpful error), else None."""
    for other in iter_tasks():
        if other.id == task.id or other.name not in _OFFICIAL_LAYOUTS:
            continue
        try:
            _read_official_item(other, image, txt, workdir)
        except (TaskError, OSError, ValueError):
            continue
        return other.id
    return None


def _strip_paths(message: str, root: Path) -> str:
    """Reader errors name files in the private folder; the user knows them by their own file names."""
    for prefix in sorted({str(root), str(root.resolve())}, key=len, reverse=True):
        message = message.replace(prefix + "/", "").replace(prefix, "upload")
    return message


# ------------------------------------------------------------------------------------------- image check
def mismatch_fraction(task: Task, instance: Instance, image: Image.Image) -> float:
    """Fraction of pixels where ``image`` differs clearly from the task's rendering of ``instance`` at its size."""
    width, height = image.size
    reference = task.render(instance, size=width)
    if reference.size != image.size:
        reference = reference.resize(image.size, Image.NEAREST)
    a = np.asarray(image.convert("RGB"), dtype=np.int16)
    b = np.asarray(reference.convert("RGB"), dtype=np.int16)
    return float((np.abs(a - b).max(axis=-1) > _PIXEL_TOLERANCE).mean())


def _check_matches(task: Task, instance: Instance, image: Image.Image, name: str) -> None:
    try:
        frac = mismatch_fraction(task, instance, image)
    except TaskError as exc:
        raise DemoError(f"{name} cannot be compared with its puzzle: {exc}") from None
    if frac > MISMATCH_LIMIT:
        raise DemoError(f"{name} does not show the {task.id} puzzle its metadata describes: {frac:.1%} of its "
                        f"pixels differ from that puzzle's image (at most {MISMATCH_LIMIT:.0%} expected). Upload "
                        "the problem image that belongs to this metadata file.")
