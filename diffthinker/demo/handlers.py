"""The demo's event handlers as plain Python (no gradio here, so they are tested without a browser).

Each handler returns a dict keyed by output name (``OUTPUTS``); a key left out means "leave that component as it
is". ``ui.py`` wires the keys to components. Every handler is wrapped by ``_guarded``: whatever goes wrong comes
back as a one-line message under the ``"status"`` key (``DemoError`` / ``TaskError`` / ``ValueError`` text as it
is; anything else as its type and message, the traceback going to the server log only), so no input can crash
the server or show a traceback.
"""

from __future__ import annotations

import functools
import hashlib
import html
import logging
import math
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PIL import Image

from ..tasks.base import ParseFailure, TaskError, Verdict, get_task, list_tasks
from .models import ModelRegistry
from .puzzles import RENDER_SIZE, DemoError, Puzzle, _seed, generate_puzzle, levels_of, load_upload

logger = logging.getLogger(__name__)

#: Every output a handler may set. "levels" and "frame_slider" take dicts of component properties.
OUTPUTS = ("puzzle", "puzzle_image", "puzzle_info", "puzzle_file", "seed", "levels", "models", "status",
           "gallery", "selected_image", "verdict", "frames", "frame_slider", "frame_image", "animation",
           "mllm_image", "mllm_text", "mllm_verdict")

#: Display sizes: candidate and answer images are enlarged (NEAREST keeps the drawn pixels) to at least this.
DISPLAY_SIZE = 256
FRAME_CELL = 128  # one candidate's cell in the "thinking" grid


@dataclass
class DemoSettings:
    """Limits of the controls (the UI's sliders use the same numbers; handlers re-check them)."""

    max_samples: int = 16
    max_steps: int = 50
    max_upload_bytes: int = 10 * 1024 * 1024
    workdir: Path | None = None  # uploaded-puzzle folders, puzzle files, animations; a temp folder when None


def escape_md(text: str) -> str:
    """Text from files and readers shown in Markdown: ``<id>.txt`` must read as text, not as an HTML tag."""
    return html.escape(str(text), quote=False)


def _error(message: str) -> str:
    return f"⚠ {escape_md(message)}"


def _guarded(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return fn(*args, **kwargs)
        except (DemoError, TaskError, ValueError) as exc:
            logger.info("%s: %s", fn.__name__, exc)
            return {"status": _error(str(exc))}
        except Exception as exc:  # noqa: BLE001 - the server must survive anything; the log keeps the traceback
            logger.exception("unexpected error in %s", fn.__name__)
            return {"status": _error(f"internal error ({type(exc).__name__}: {exc}); the server log has the "
                                     "details")}

    return wrapper


def _int_in(value: Any, low: int, high: int, what: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DemoError(f"{what} must be a whole number from {low} to {high}, got {value!r}")
    return value


def enlarge(image: Image.Image, at_least: int = DISPLAY_SIZE) -> Image.Image:
    """``image`` scaled up by a whole factor (NEAREST) so its side is at least ``at_least``: a 64 px model output
    stays pixel-exact instead of being blurred by the browser."""
    factor = max(1, math.ceil(at_least / max(image.size)))
    return image if factor == 1 else image.resize((image.width * factor, image.height * factor), Image.NEAREST)


def verdict_label(verdict: Verdict) -> str:
    # Plain symbols that common fonts carry (DejaVu, Liberation): emoji need a colour-emoji font.
    if verdict.correct:
        return "✓ correct"
    if verdict.valid:
        return "≈ valid, not correct"
    return "✗ invalid"


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _answer_text(task: Any, answer: Any, puzzle: Puzzle) -> str:
    if isinstance(answer, ParseFailure):
        return ""
    try:
        return task.answer_to_text(answer)
    except TypeError:  # tsp's canonical text needs the instance (its coordinates)
        return task.answer_to_text(answer, puzzle.instance)


def frame_grid(frames: list[Image.Image], cell: int = FRAME_CELL, pad: int = 3) -> Image.Image:
    """The N candidates' frames of one step in a near-square grid, each enlarged to ``cell`` px."""
    cols = math.ceil(math.sqrt(len(frames)))
    rows = math.ceil(len(frames) / cols)
    grid = Image.new("RGB", (cols * (cell + pad) + pad, rows * (cell + pad) + pad), (200, 200, 200))
    for k, frame in enumerate(frames):
        r, c = divmod(k, cols)
        grid.paste(frame.convert("RGB").resize((cell, cell), Image.NEAREST), (pad + c * (cell + pad),
                                                                              pad + r * (cell + pad)))
    return grid


class DemoHandlers:
    """The handlers over one model registry. Stateless across users: per-session state (the puzzle, the
    thinking frames) travels in and out as arguments."""

    def __init__(self, registry: ModelRegistry, settings: DemoSettings | None = None):
        self.registry = registry
        self.settings = settings or DemoSettings()
        if self.settings.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="diffthinker-demo-")
            self.settings.workdir = Path(self._tmp.name)
        self.workdir = Path(self.settings.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # One solve at a time per model: a pipeline's scheduler keeps per-call state (its timesteps), so two
        # threads must not share it. Different models (tasks) still run side by side under --concurrency > 1.
        self._locks: dict[int, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, solver: Any) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(id(solver), threading.Lock())

    def served_folders(self) -> list[str]:
        """The folders whose files the page may fetch: puzzle files and animations (never the uploads)."""
        folders = [self.workdir / "puzzles", self.workdir / "animations"]
        for f in folders:
            f.mkdir(parents=True, exist_ok=True)
        return [str(f) for f in folders]

    # ------------------------------------------------------------------------------------------ choices
    def task_choices(self) -> list[tuple[str, str]]:
        """(label, task id) for the task menu; tasks with a diffusion model first."""
        ready = set(self.registry.tasks_with("diffusion"))
        # the maze, the paper's flagship task, leads among equals
        ordered = sorted(list_tasks(), key=lambda t: (t not in ready, not t.startswith("maze-"), t))
        return [(f"{t}" + ("" if t in ready else " (no model yet)"), t) for t in ordered]

    def default_task(self) -> str:
        return self.task_choices()[0][1]

    # ------------------------------------------------------------------------------------------ puzzle
    @_guarded
    def task_changed(self, task_name: str) -> dict[str, Any]:
        task = get_task(task_name)
        return {"levels": {"choices": levels_of(task), "value": task.default_level},
                "models": self.registry.describe(task.id)}

    @_guarded
    def new_puzzle(self, task_name: str, level: str, seed: Any) -> dict[str, Any]:
        return self._show(generate_puzzle(task_name, level, seed))

    @_guarded
    def next_puzzle(self, task_name: str, level: str, seed: Any) -> dict[str, Any]:
        """The puzzle of the next seed (deterministic: seed + 1, shown in the seed box)."""
        out = self._show(generate_puzzle(task_name, level, _seed(seed, "puzzle seed") + 1))
        out["seed"] = out["puzzle"].seed
        return out

    @_guarded
    def upload(self, task_name: str, image_path: str | None, metadata_path: str | None) -> dict[str, Any]:
        puzzle = load_upload(task_name, image_path, metadata_path, self.workdir / "uploads",
                             self.settings.max_upload_bytes)
        return self._show(puzzle)

    def _show(self, puzzle: Puzzle) -> dict[str, Any]:
        text = puzzle.to_json()
        name = f"puzzle-{puzzle.task_id}-{puzzle.level}-{hashlib.sha256(text.encode()).hexdigest()[:10]}.json"
        path = self.workdir / "puzzles" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        solver = self.registry.solver_for(puzzle.task_id, "diffusion")
        ready = (f"ready: solve it with `{solver.name}`" if solver is not None
                 else f"ready, but there is no diffusion checkpoint for {puzzle.task_id} yet to solve it")
        return {**self._cleared(), "puzzle": puzzle, "puzzle_image": puzzle.image, "puzzle_file": str(path),
                "puzzle_info": f"**Puzzle** · {escape_md(puzzle.source)}",
                "status": f"Puzzle {ready}."}

    def _cleared(self) -> dict[str, Any]:
        return {"gallery": [], "selected_image": None, "verdict": "", "frames": None,
                "frame_slider": {"maximum": 1, "value": 0}, "frame_image": None, "animation": None,
                "mllm_image": None, "mllm_text": "", "mllm_verdict": ""}

    # ------------------------------------------------------------------------------------------ solving
    @_guarded
    def solve(self, puzzle: Puzzle | None, num_samples: Any, steps: Any, sample_seed: Any,
              select: str = "verifier") -> dict[str, Any]:
        if puzzle is None:
            raise DemoError("generate or upload a puzzle first")
        s = self.settings
        n = _int_in(num_samples, 1, s.max_samples, "samples N")
        steps = _int_in(steps, 1, s.max_steps, "Euler steps")
        seed = _seed(sample_seed, "sample seed")
        out = self._cleared()
        notes = []
        solver = self.registry.solver_for(puzzle.task_id, "diffusion")
        if solver is None:
            out["verdict"] = (f"No diffusion checkpoint for `{puzzle.task_id}` yet. Train one "
                              "(`diffthinker train diffusion`) and start the demo with `--checkpoint PATH`.")
            notes.append(f"no diffusion model for {puzzle.task_id}")
        else:
            out.update(self._solve_diffusion(solver, puzzle, n, steps, seed, select))
            notes.append(out.pop("_note"))
        out.update(self._solve_mllm(puzzle, n, seed, select))
        out["status"] = "; ".join(notes) + "."
        return out

    def _solve_diffusion(self, solver: Any, puzzle: Puzzle, n: int, steps: int, seed: int,
                         select: str) -> dict[str, Any]:
        from .. import inference

        task = puzzle.task
        image = puzzle.image_for(getattr(solver, "resolution", None))
        with self._lock(solver):
            [result] = inference.solve(solver, puzzle.task_id, [puzzle.instance], [image], num_samples=n,
                                       select=select, seed=seed, num_inference_steps=steps, save_trajectory=True)
        gallery = []
        for c in result.candidates:
            caption = f"#{c.index} {verdict_label(c.verdict)}"
            if not c.verdict.correct and c.verdict.reason:
                caption += f": {_short(c.verdict.reason, 70)}"
            gallery.append((enlarge(c.raw.image), caption))
        chosen = result.selected_candidate
        valid = sum(c.verdict.valid for c in result.candidates)
        correct = sum(c.verdict.correct for c in result.candidates)
        read = _answer_text(task, chosen.answer, puzzle)
        lines = [f"### {verdict_label(chosen.verdict)} · candidate #{chosen.index} of {n} "
                 f"(selected by {result.select})",
                 escape_md(_short(chosen.verdict.reason, 200)) if chosen.verdict.reason else ""]
        if read:
            lines.append(f"Read from the drawing: `{_short(read, 120)}`")
        if result.fallback:
            lines.append("No candidate follows the rules; this is the one with the most progress.")
        lines.append(f"**{valid}/{n}** valid · **{correct}/{n}** correct · {result.seconds:.2f} s for {n} "
                     f"sample(s) x {steps} step(s) · model `{solver.name}`")
        frames = self._frames(result)
        out: dict[str, Any] = {
            "gallery": gallery, "selected_image": enlarge(chosen.raw.image, RENDER_SIZE // 2),
            "verdict": "\n\n".join(x for x in lines if x), "frames": frames,
            "_note": f"solved with N={n}, {steps} steps in {result.seconds:.2f} s: {correct}/{n} correct"}
        if frames:
            last = len(frames) - 1
            out["frame_slider"] = {"maximum": max(1, last), "value": last}
            out["frame_image"] = frame_grid(frames[last])
            out["animation"] = self._animation(frames)
        return out

    @staticmethod
    def _frames(result: Any) -> list[list[Image.Image]] | None:
        """Per step, the N candidates' clean-image estimates (kept at most ``FRAME_CELL`` px: session state)."""
        trajs = [c.raw.trajectory for c in result.candidates]
        if not trajs or not all(trajs) or len({len(t) for t in trajs}) != 1:
            return None

        def small(im: Image.Image) -> Image.Image:
            return im if max(im.size) <= FRAME_CELL else im.resize((FRAME_CELL, FRAME_CELL), Image.BILINEAR)

        return [[small(t[j]) for t in trajs] for j in range(len(trajs[0]))]

    def _animation(self, frames: list[list[Image.Image]]) -> str:
        from ..inference import trajectory_gif

        data = trajectory_gif([frame_grid(step) for step in frames], ms=200)
        path = self.workdir / "animations" / f"thinking-{hashlib.sha256(data).hexdigest()[:16]}.gif"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return str(path)

    def _solve_mllm(self, puzzle: Puzzle, n: int, seed: int, select: str) -> dict[str, Any]:
        from .. import inference

        solver = self.registry.solver_for(puzzle.task_id, "mllm")
        if solver is None:
            return {"mllm_image": None, "mllm_text": "", "mllm_verdict": "No MLLM checkpoint for this task yet."}
        task = puzzle.task
        try:
            with self._lock(solver):
                [result] = inference.solve(solver, puzzle.task_id, [puzzle.instance],
                                           [puzzle.image_for(getattr(solver, "resolution", None))],
                                           num_samples=n, select=select, seed=seed)
        except Exception as exc:  # noqa: BLE001 - the diffusion result stays on screen
            logger.exception("MLLM solver %r failed", solver.name)
            return {"mllm_verdict": _error(f"the MLLM baseline `{solver.name}` failed: {type(exc).__name__}: "
                                           f"{exc}")}
        chosen = result.selected_candidate
        if isinstance(chosen.answer, ParseFailure):
            drawn = puzzle.image
            how = f"no answer could be read from the text: {escape_md(_short(chosen.answer.reason, 150))}"
        else:
            drawn = task.render(puzzle.instance, chosen.answer, size=RENDER_SIZE)
            how = f"answer `{_short(_answer_text(task, chosen.answer, puzzle), 120)}`, drawn with the task's renderer"
        valid = sum(c.verdict.valid for c in result.candidates)
        verdict = (f"### {verdict_label(chosen.verdict)} · `{solver.name}`\n\n{how}\n\n"
                   + (f"{escape_md(_short(chosen.verdict.reason, 200))}\n\n"
                      if chosen.verdict.reason and chosen.parsed else "")
                   + f"**{valid}/{n}** valid · {result.seconds:.2f} s")
        return {"mllm_image": drawn, "mllm_text": chosen.raw.text or "", "mllm_verdict": verdict}

    # ------------------------------------------------------------------------------------------ scrubber
    @_guarded
    def scrub(self, frames: list[list[Image.Image]] | None, step: Any) -> dict[str, Any]:
        if not frames:
            return {}
        j = _int_in(step, 0, 10**6, "step")
        return {"frame_image": frame_grid(frames[min(j, len(frames) - 1)])}
