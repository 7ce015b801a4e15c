"""Prompts of the MLLM track: the puzzle image (or its text rendering) plus the task's instruction and answer format.

Two prompt modes, both in the ChatML layout every Qwen-VL model (2, 2.5, 3) is trained on:

- ``image`` (the benchmark setting, what the diffusion track also sees): the puzzle image, drawn by the puzzle layer
  natively at the policy's ``image_size``, plus a per-task instruction that names the answer format. It uses no
  information beyond the image, so a solver can answer puzzles it only has images of.
- ``text``: the task's own ``to_text`` rendering of the same puzzle and no image (ReVisual-R1's text-only stages,
  and a useful ablation).

The answer is read back with the task's ``parse_text`` (tolerant of surrounding prose; it takes the last
answer-like span), so SFT targets and optional solver-derived reasoning traces end with ``answer_to_text``.

``PROMPT_VERSION`` is recorded in every saved policy: a change to the wording bumps it, and a policy trained with
one version refuses (with a clear error) to be evaluated with another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from PIL import Image

from diffthinker.tasks import get_task
from diffthinker.tasks.base import Answer, Instance, Task, TaskError

__all__ = [
    "ANSWER_FORMATS",
    "PROMPT_VERSION",
    "Prompt",
    "PromptMode",
    "build_prompt",
    "chatml",
    "instruction",
    "prepare_image",
    "reasoning_trace",
    "target_text",
]

PROMPT_VERSION = "chatml-v1"

PromptMode = Literal["image", "text"]

#: ChatML markers (Qwen2-VL / Qwen2.5-VL / Qwen3-VL); the image placeholder is expanded by the processor into as
#: many ``<|image_pad|>`` tokens as the vision tower yields for the image.
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
VISION = "<|vision_start|><|image_pad|><|vision_end|>"

#: the answer format per task name, appended to the task's published prompt in image mode
ANSWER_FORMATS: dict[str, str] = {
    "maze": "Answer with the moves from the yellow dot to the blue dot as letters U (up), D (down), L (left), "
            "R (right), e.g. RRDDL.",
    "frozenlake": "Answer with the moves from the start to the goal as letters U (up), D (down), L (left), "
                  "R (right), e.g. RRDDL.",
    "tsp": "Answer with the tour as city indices from city 0 back to city 0, e.g. 0,2,1,3,0.",
    "sudoku": "Answer with the solved grid, one row of digits per line.",
    "jigsaw": "Answer with the labels of the pieces in their restored order, row by row, separated by spaces, "
              "e.g. 2 1 3 4.",
}


@dataclass(frozen=True)
class Prompt:
    """One model input: ChatML ``text`` (with the vision placeholder in image mode) and the image (or None)."""

    text: str
    image: Image.Image | None
    mode: PromptMode
    task_id: str


def chatml(user: str, system: str | None = None) -> str:
    """A one-turn ChatML conversation ending with the assistant header (generation starts right after it)."""
    head = f"{IM_START}system\n{system}{IM_END}\n" if system else ""
    return f"{head}{IM_START}user\n{user}{IM_END}\n{IM_START}assistant\n"


def instruction(task: Task) -> str:
    """The image-mode instruction: the task's published prompt plus its answer format."""
    try:
        fmt = ANSWER_FORMATS[task.name]
    except KeyError:
        raise TaskError(f"no answer format for task {task.id!r}; expected one of {sorted(ANSWER_FORMATS)}") from None
    return f"{task.prompt} {fmt}"


def prepare_image(image: Image.Image, size: int) -> Image.Image:
    """An RGB ``size`` x ``size`` image; other sizes are area-averaged (BOX), which keeps grid lines crisp when the
    source is an integer multiple (512 -> 64). Training renders natively at ``size``, so nothing is resized there."""
    if not isinstance(image, Image.Image):
        raise TaskError(f"expected a PIL image, got {type(image).__name__}")
    if image.width < 1 or image.height < 1:
        raise TaskError(f"image has no pixels: {image.size}")
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BOX)
    return image


def build_prompt(task: str | Task, *, mode: PromptMode = "image", image: Image.Image | None = None,
                 instance: Instance | None = None, image_size: int = 64) -> Prompt:
    """The prompt for one puzzle.

    Image mode needs ``image`` (any size; see ``prepare_image``) or ``instance`` (rendered natively at
    ``image_size``). Text mode needs ``instance`` (its ``to_text``).
    """
    task = get_task(task) if isinstance(task, str) else task
    if mode == "image":
        if image is None:
            if instance is None:
                raise TaskError("an image-mode prompt needs the puzzle image or its instance")
            image = task.render(instance, size=image_size)
        return Prompt(chatml(f"{VISION}{instruction(task)}"), prepare_image(image, image_size), "image", task.id)
    if mode == "text":
        if instance is None:
            raise TaskError("a text-mode prompt needs the puzzle instance (its to_text rendering)")
        return Prompt(chatml(f"{task.prompt}\n{task.to_text(instance)}"), None, "text", task.id)
    raise TaskError(f"unknown prompt mode {mode!r}; expected 'image' or 'text'")


def reasoning_trace(task: Task, instance: Instance, answer: Answer) -> str | None:
    """A short step-by-step trace derived from the exact solver, or None where the task has none.

    Move tasks (maze, frozenlake) list the visited cells as ``row,col`` pairs in lower-case prose, so that the only
    run of U/D/L/R letters is the final answer (``parse_text`` reads the last run).
    """
    moves = getattr(answer, "moves", None)
    if not isinstance(moves, str):
        return None
    start = getattr(instance, "start", None)
    if start is None and hasattr(instance, "rows"):  # frozenlake: find S in the map
        start = next(((r, row.index("S")) for r, row in enumerate(instance.rows) if "S" in row), None)
    if start is None:
        return None
    from diffthinker.tasks.gridpath import moves_to_cells

    cells = moves_to_cells(tuple(start), moves)
    return "path: " + " ".join(f"{r},{c}" for r, c in cells)


def target_text(task: Task, instance: Instance, answer: Answer | None = None, *, reasoning: bool = False) -> str:
    """The SFT target: the canonical answer text, optionally after a solver-derived reasoning trace."""
    answer = answer if answer is not None else task.solve(instance)
    text = task.answer_to_text(answer)
    if reasoning:
        trace = reasoning_trace(task, instance, answer)
        if trace is not None:
            text = f"{trace}\nanswer: {text}"
    return text
