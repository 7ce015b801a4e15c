"""Batch solving with N parallel samples per puzzle and test-time selection, for either track.

Flow (``solve``): puzzle images -> ``solver.sample`` (N raw candidates per puzzle: images for the diffusion track,
texts for the MLLM track) -> ``task.parse`` / ``task.parse_text`` -> ``task.verify`` -> a selection rule
(``diffthinker.selection``: ``verifier``, ``vote``, ``first``) -> one ``SolveResult`` per puzzle.

Parallel sampling. ``DiffusionSolver`` lays the B puzzles x N samples out as B*N model rows (item-major) and runs
ONE batched ``DiffThinkerPipeline`` call per chunk of at most ``batch_size`` rows, instead of the published code's
Python loop of one sample per call. Each row has its own ``torch.Generator`` seeded with its own sample seed, so
candidate k of puzzle i depends only on (model, puzzle, ``seeds[i][k]``): the same for any batch size, chunking,
order or device sharding (up to float round-off of batched kernels).

Sample seeds. ``seeds[i][k] = sample_seed(seed, key_i, k)``, a 63-bit hash of (run seed, the item's id, or its
index when no ids are given, and k). Consequences: the same item gets the same samples wherever it sits in a
dataset or shard, and the first n candidates of an N-sample run are exactly an n-sample run's candidates.

Timing. ``SolveResult.seconds`` is the puzzle's share of the wall time of the sampling call it was in (split
evenly: every puzzle of a call has the same N) plus its own parse + verify + selection time.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image

from .selection import check_rule, select_with_reason
from .solver_api import RawCandidate, Solver
from .tasks.base import Answer, Instance, ParseFailure, TaskError, Verdict, get_task

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_STEPS",
    "Candidate",
    "DiffusionSolver",
    "Item",
    "SolveResult",
    "load_items",
    "load_solver",
    "reselect",
    "result_record",
    "sample_seed",
    "sample_seeds",
    "solve",
    "trajectory_gif",
    "trajectory_strip",
]

logger = logging.getLogger(__name__)

#: Euler steps when none are given (the paper's and the training evaluation's 20).
DEFAULT_STEPS = 20
#: Model rows (puzzles x samples) per batched call when none is given.
DEFAULT_BATCH_SIZE = 64


# ============================================================================================== seeds
def sample_seed(seed: int, key: str | int, k: int) -> int:
    """The seed of sample ``k`` of the item ``key`` (its id, or its index) in a run seeded ``seed``: 63 bits of a
    SHA-256, stable across processes, platforms and Python versions."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise TaskError(f"seed must be a non-negative int, got {seed!r}")
    digest = hashlib.sha256(f"diffthinker-sample/{seed}/{key}/{k}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def sample_seeds(seed: int, keys: Sequence[str | int], num_samples: int) -> list[list[int]]:
    return [[sample_seed(seed, key, k) for k in range(num_samples)] for key in keys]


# ============================================================================================== results
@dataclass
class Candidate:
    """One sample of one puzzle, parsed and verified. ``index`` is k (its position among the N samples)."""

    index: int
    seed: int
    raw: RawCandidate
    answer: Answer | ParseFailure
    verdict: Verdict

    @property
    def parsed(self) -> bool:
        return not isinstance(self.answer, ParseFailure)


@dataclass
class SolveResult:
    """The N candidates of one puzzle and the selected one.

    ``selected`` is the index chosen by ``select`` (None only without candidates); ``fallback`` is True when the
    rule found nothing it looks for (no valid candidate / no parsed answer) and fell back (see selection.py).
    ``seconds``: this puzzle's share of the sampling wall time plus its own parse/verify/select time.
    """

    item_id: str
    task_id: str
    level: str | None
    candidates: list[Candidate]
    selected: int | None
    seconds: float
    select: str = "verifier"
    fallback: bool = False

    @property
    def selected_candidate(self) -> Candidate | None:
        return None if self.selected is None else self.candidates[self.selected]

    @property
    def correct(self) -> bool:
        c = self.selected_candidate
        return bool(c is not None and c.verdict.correct)


# ============================================================================================== diffusion solver
class DiffusionSolver:
    """The diffusion track behind the ``Solver`` protocol: a ``DiffThinkerPipeline`` sampled in batched chunks.

    Args:
        pipeline: a loaded ``DiffThinkerPipeline``.
        name: label in reports (default: the pipeline's source folder name, else "diffusion").
        batch_size: default model rows per call (B puzzles x N samples), when ``sample`` gets none.
        default_steps: Euler steps when ``sample`` gets none.
    """

    kind = "diffusion"

    def __init__(self, pipeline: Any, name: str | None = None, *, batch_size: int = DEFAULT_BATCH_SIZE,
                 default_steps: int = DEFAULT_STEPS):
        if batch_size < 1 or default_steps < 1:
            raise ValueError(f"batch_size and default_steps must be >= 1, got {batch_size} and {default_steps}")
        self.pipeline = pipeline
        self.name = name or _name_from_path(getattr(pipeline, "_source", None)) or "diffusion"
        self.batch_size = int(batch_size)
        self.default_steps = int(default_steps)
        self.calls = 0  # batched pipeline calls made (the benchmark and tests read it)

    def __repr__(self) -> str:
        return f"DiffusionSolver({self.name!r}, tasks={self.tasks}, resolution={self.resolution})"

    @property
    def tasks(self) -> list[str]:
        return list(self.pipeline.tasks)

    @property
    def source(self) -> str | None:
        """The folder the pipeline was loaded from (None when built in memory)."""
        return getattr(self.pipeline, "_source", None)

    @property
    def resolution(self) -> int:
        """The model's image side in px: inputs of another size are re-rendered or resized to it."""
        return int(self.pipeline.resolution)

    def supports(self, task_id: str) -> bool:
        try:
            self.pipeline.denoiser.task_index_of(task_id)
        except ValueError:
            return False
        return True

    def sample(self, task_id: str, images: Sequence[Image.Image], seeds: Sequence[Sequence[int]], *,
               num_inference_steps: int | None = None, batch_size: int | None = None,
               save_trajectory: bool = False, **kwargs: Any) -> list[list[RawCandidate]]:
        """``len(seeds[i])`` solved images for puzzle image i; one pipeline call per chunk of ``batch_size`` rows.

        Extra ``kwargs`` go to the pipeline call (e.g. ``clip_pred_x0``)."""
        import torch

        if len(images) != len(seeds):
            raise ValueError(f"got {len(images)} images but {len(seeds)} seed lists; expected one seed list per image")
        if not self.supports(task_id):
            raise TaskError(f"solver {self.name!r} was not trained for task {task_id!r}; it knows {self.tasks}")
        steps = self.default_steps if num_inference_steps is None else int(num_inference_steps)
        rows_per_call = self.batch_size if batch_size is None else int(batch_size)
        if rows_per_call < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        rows = [(i, k) for i, s in enumerate(seeds) for k in range(len(s))]
        out: list[list[RawCandidate | None]] = [[None] * len(s) for s in seeds]
        for start in range(0, len(rows), rows_per_call):
            chunk = rows[start:start + rows_per_call]
            # CPU generators: the same seed gives the same noise on any device.
            gens = [torch.Generator(device="cpu").manual_seed(int(seeds[i][k])) for i, k in chunk]
            puzzles = sorted({i for i, _ in chunk})
            per = {i: sum(1 for j, _ in chunk if j == i) for i in puzzles}
            if len(set(per.values())) == 1:
                # every puzzle of the chunk has the same number of rows: the pipeline repeats each image itself
                call_images, per_prompt = [images[i] for i in puzzles], per[puzzles[0]]
            else:  # a chunk boundary cut a puzzle's samples: one image per row, the same batched computation
                call_images, per_prompt = [images[i] for i, _ in chunk], 1
            frames: list[list[Image.Image]] = []
            callback = None
            if save_trajectory:
                def callback(pipe, step, timestep, tensors, frames=frames):
                    frames.append(pipe.postprocess(tensors["pred_x0"], "pil"))
                    return {}
            result = self.pipeline(call_images, task_id, num_images_per_prompt=per_prompt,
                                   num_inference_steps=steps, generator=gens, output_type="pil",
                                   callback_on_step_end=callback,
                                   callback_on_step_end_tensor_inputs=("pred_x0",), **kwargs)
            self.calls += 1
            for row, ((i, k), img) in enumerate(zip(chunk, result.images)):
                out[i][k] = RawCandidate(image=img, trajectory=[f[row] for f in frames])
        return out  # type: ignore[return-value]


def _name_from_path(path: str | Path | None) -> str | None:
    """``runs/bench/maze8/pipeline`` -> ``maze8``: generic last folder names are replaced by their parent's."""
    if not path:
        return None
    p = Path(path).resolve()
    if p.name in ("pipeline", "final", "checkpoint", "model") and p.parent.name:
        return p.parent.name
    return p.name


# ============================================================================================== loading
DIFFUSION_MARKER = "model_index.json"
MLLM_MARKER = "diffthinker_policy.json"


def load_solver(path: str | Path, *, device: Any = None, name: str | None = None,
                temperature: float | None = None) -> Solver:
    """A solver from a checkpoint folder.

    - a folder with ``model_index.json`` (a saved ``DiffThinkerPipeline``) -> ``DiffusionSolver`` (kind
      "diffusion");
    - a folder with ``diffthinker_policy.json`` -> the MLLM track's solver (``mllm_baselines.solver``).

    ``temperature``: the MLLM sampling temperature (0 = greedy decoding; default: the solver's 1.0). A diffusion
    solver has none (its samples differ by their noise seeds), so passing one for a pipeline is an error.

    Anything else raises TaskError naming the path and what was expected.
    """
    path = Path(path)
    expected = (f"expected a folder holding {DIFFUSION_MARKER} (a diffusion pipeline saved by save_pretrained / "
                f"`diffthinker train diffusion`) or {MLLM_MARKER} (an MLLM policy)")
    if not path.exists():
        raise TaskError(f"checkpoint not found: {path}; {expected}")
    if not path.is_dir():
        raise TaskError(f"checkpoint {path} is not a folder; {expected}")
    if (path / DIFFUSION_MARKER).is_file():
        from .diffusion.pipeline import DiffThinkerPipeline

        if temperature is not None:
            raise TaskError(f"temperature={temperature!r} applies to MLLM policies; {path} is a diffusion pipeline, "
                            f"whose samples differ by their noise seeds (vary --seed / --samples instead)")

        try:
            pipe = DiffThinkerPipeline.from_pretrained(path)
        except TaskError:
            raise
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise TaskError(f"checkpoint {path} could not be loaded as a diffusion pipeline "
                            f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]})") from None
        if device is not None:
            pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        return DiffusionSolver(pipe, name=name or _name_from_path(path))
    if (path / MLLM_MARKER).is_file():
        try:
            from mllm_baselines.solver import load_mllm_solver
        except ImportError as exc:
            raise TaskError(f"checkpoint {path} is an MLLM policy ({MLLM_MARKER}), but the MLLM track "
                            f"(mllm_baselines.solver.load_mllm_solver) cannot be imported: {exc}") from None
        sampling = None
        if temperature is not None:
            from mllm_baselines.generation import SamplingConfig

            sampling = SamplingConfig(temperature=temperature)
        solver = load_mllm_solver(path, device=device, sampling=sampling)
        if name:
            solver.name = name
        return solver
    if (path / "denoiser").is_dir() or list(path.glob("*.safetensors")):
        raise TaskError(f"checkpoint {path} holds weights but no {DIFFUSION_MARKER}; a training checkpoint is "
                        f"not a pipeline: use the run's exported pipeline/ folder. {expected}")
    raise TaskError(f"{path} is not a checkpoint; {expected}")


# ============================================================================================== solving
def _score(task: Any, instance: Instance, raw: RawCandidate) -> tuple[Answer | ParseFailure, Verdict]:
    if raw.image is not None:
        answer = task.parse(raw.image, instance)
    else:
        answer = task.parse_text(raw.text, instance)
    return answer, task.verify(instance, answer)


def solve(solver: Solver, task_id: str, instances: Sequence[Instance], images: Sequence[Image.Image], *,
          num_samples: int = 1, select: str = "verifier", seed: int = 0, num_inference_steps: int | None = None,
          batch_size: int | None = None, save_trajectory: bool = False, item_ids: Sequence[str] | None = None,
          levels: Sequence[str] | None = None, progress: bool = False) -> list[SolveResult]:
    """Sample ``num_samples`` candidates per puzzle, parse, verify and select one (see the module docstring).

    Puzzles go to the solver in blocks of ``max(1, batch_size // num_samples)`` (each block is one batched model
    call when the solver batches, e.g. ``DiffusionSolver``); ``batch_size`` defaults to the solver's own
    ``batch_size`` attribute, else ``DEFAULT_BATCH_SIZE``.
    """
    from tqdm.auto import tqdm

    task = get_task(task_id)
    check_rule(select)
    n = len(instances)
    if len(images) != n:
        raise TaskError(f"got {n} instances but {len(images)} images; expected one puzzle image per instance")
    for what, seq in (("item_ids", item_ids), ("levels", levels)):
        if seq is not None and len(seq) != n:
            raise TaskError(f"got {len(seq)} {what} for {n} puzzles; expected one per puzzle")
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise TaskError(f"num_samples must be an int >= 1, got {num_samples!r}")
    if not solver.supports(task.id):
        known = getattr(solver, "tasks", None)
        raise TaskError(f"solver {solver.name!r} does not solve task {task.id!r}"
                        + (f"; it knows {known}" if known is not None else ""))
    rows = batch_size if batch_size is not None else getattr(solver, "batch_size", None) or DEFAULT_BATCH_SIZE
    if not isinstance(rows, int) or rows < 1:
        raise TaskError(f"batch_size must be an int >= 1, got {rows!r}")
    keys: list[str | int] = list(item_ids) if item_ids is not None else list(range(n))
    seeds = sample_seeds(seed, keys, num_samples)
    block = max(1, rows // num_samples)
    results: list[SolveResult] = []
    bar = tqdm(total=n, desc=f"solve {task.id} N={num_samples}", unit="puzzle", disable=not progress or None)
    try:
        for start in range(0, n, block):
            idx = range(start, min(n, start + block))
            t0 = time.perf_counter()
            raws = solver.sample(task.id, [images[i] for i in idx], [seeds[i] for i in idx],
                                 num_inference_steps=num_inference_steps, batch_size=rows,
                                 save_trajectory=save_trajectory)
            share = (time.perf_counter() - t0) / len(idx)
            if len(raws) != len(idx) or any(len(r) != num_samples for r in raws):
                raise RuntimeError(f"solver {solver.name!r} returned {[len(r) for r in raws]} candidates for "
                                   f"{len(idx)} puzzles x {num_samples} samples")
            for i, raw_list in zip(idx, raws):
                t1 = time.perf_counter()
                cands = []
                for k, raw in enumerate(raw_list):
                    answer, verdict = _score(task, instances[i], raw)
                    cands.append(Candidate(k, seeds[i][k], raw, answer, verdict))
                chosen, fallback = select_with_reason(cands, select)
                results.append(SolveResult(
                    item_id=str(keys[i]) if item_ids is not None else f"item{i:06d}", task_id=task.id,
                    level=None if levels is None else levels[i], candidates=cands, selected=chosen,
                    seconds=share + time.perf_counter() - t1, select=select, fallback=fallback))
            bar.update(len(idx))
    finally:
        bar.close()
    return results


def reselect(results: Iterable[SolveResult], rule: str, num_samples: int | None = None) -> list[SolveResult]:
    """The same candidates under another selection rule, optionally keeping only the first ``num_samples``
    (which, by the seed contract, are exactly what a run with that N would have drawn). Seconds are kept."""
    check_rule(rule)
    out = []
    for r in results:
        cands = r.candidates if num_samples is None else r.candidates[:num_samples]
        chosen, fallback = select_with_reason(cands, rule)
        out.append(replace(r, candidates=list(cands), selected=chosen, select=rule, fallback=fallback))
    return out


# ============================================================================================== dataset items
@dataclass
class Item:
    """One puzzle to solve: from a dataset row (instance known) or a bare image file (instance None).

    ``source`` is the problem image, decoded or still encoded (PNG/JPEG bytes: a dataset of thousands of 512 px
    puzzles is held compressed and decoded a chunk at a time). ``render_size``: when set and the stored image has
    another size that the level supports, ``image`` re-draws the puzzle from its instance at that size instead (as
    training does: a 64 px maze is drawn natively, not downscaled from 512 px); otherwise the solver resizes it.
    """

    id: str
    task: str
    level: str | None
    instance: Instance | None
    source: Image.Image | bytes
    official_id: str | None = None
    render_size: int | None = None

    @property
    def image(self) -> Image.Image:
        from .data import schema

        img = self.source
        if isinstance(img, bytes):
            img = schema.open_image_bytes(img, f"problem image of {self.id}")
        size = self.render_size
        if size is not None and img.size != (size, size) and self.instance is not None and self.level is not None:
            from .data.build import level_sizes

            task = get_task(self.task)
            sizes = level_sizes(task, self.level)
            if min(sizes) <= size <= max(sizes):
                return task.render(self.instance, size=size)
        return img


def load_items(data: str | Path, *, size: int | None = None) -> list[Item]:
    """The puzzles of a dataset folder (``diffthinker generate`` / ``import`` output, or an official test folder
    imported on the fly), in dataset order, images kept encoded. ``size``: the model's resolution (see ``Item``).
    """
    import datasets

    from .data import official, schema

    ds = official.load_data(data)
    ds = ds.remove_columns(["solution_image"]).cast_column("image", datasets.Image(decode=False))
    items = []
    for row in ds:
        task = get_task(row["task"])
        schema.check_safe_name(row["id"], "item id")
        data_bytes = schema.image_bytes(row["image"])
        if data_bytes is None:
            raise TaskError(f"item {row['id']} of {data} has no problem image")
        items.append(Item(row["id"], task.id, row["level"], task.instance_from_json(row["instance"]), data_bytes,
                          row.get("official_id"), size))
    return items


def chunked(seq: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


#: Items solved per ``solve`` call by the folder/evaluation drivers: bounds the memory held in candidate images.
ITEM_CHUNK = 256


def group_by_task(items: Sequence[Item]) -> dict[str, list[Item]]:
    out: dict[str, list[Item]] = {}
    for it in items:
        out.setdefault(it.task, []).append(it)
    return out


# ============================================================================================== records and pictures
def verdict_record(verdict: Verdict) -> dict[str, Any]:
    return json.loads(json.dumps(verdict.to_dict(), default=str))


def result_record(result: SolveResult, *, candidates: bool = True) -> dict[str, Any]:
    """A JSON-ready record of one puzzle's result: selection, the selected answer and verdict, timing, and (with
    ``candidates``) every candidate's seed, answer and verdict."""
    task = get_task(result.task_id)

    def cand(c: Candidate) -> dict[str, Any]:
        rec: dict[str, Any] = {"index": c.index, "seed": c.seed, "parsed": c.parsed,
                               "answer": task.answer_to_text(c.answer) if c.parsed else None,
                               "parse_failure": None if c.parsed else c.answer.reason,
                               "verdict": verdict_record(c.verdict)}
        if c.raw.text is not None:
            rec["text"] = c.raw.text
        return rec

    sel = result.selected_candidate
    rec: dict[str, Any] = {
        "id": result.item_id, "task": result.task_id, "level": result.level, "select": result.select,
        "selected": result.selected, "fallback": result.fallback, "seconds": round(result.seconds, 6),
        "answer": task.answer_to_text(sel.answer) if sel is not None and sel.parsed else None,
        "answer_json": sel.answer.to_json() if sel is not None and sel.parsed else None,
        "verdict": verdict_record(sel.verdict) if sel is not None else None,
        "correct": result.correct,
    }
    if candidates:
        rec["candidates"] = [cand(c) for c in result.candidates]
    return rec


def _with_final(frames: Sequence[Image.Image], final: Image.Image | None) -> list[Image.Image]:
    pics = list(frames)
    if final is not None and not (pics and pics[-1].convert("RGB").tobytes() == final.convert("RGB").tobytes()):
        pics.append(final)
    return pics


def trajectory_strip(frames: Sequence[Image.Image], final: Image.Image | None = None, pad: int = 2) -> Image.Image:
    """The predicted-clean frames side by side (oldest first), then ``final`` if given and not the same picture as
    the last frame (the last Euler step lands on the last estimate), on a grey background."""
    pics = _with_final(frames, final)
    if not pics:
        raise ValueError("no frames to draw")
    w, h = pics[0].size
    strip = Image.new("RGB", (len(pics) * (w + pad) + pad, h + 2 * pad), (128, 128, 128))
    for j, im in enumerate(pics):
        strip.paste(im.convert("RGB"), (pad + j * (w + pad), pad))
    return strip


def trajectory_gif(frames: Sequence[Image.Image], final: Image.Image | None = None, ms: int = 150) -> bytes:
    """An animated GIF of the frames (then ``final``, unless the same as the last frame), the last one held
    longer, looping."""
    pics = [im.convert("RGB") for im in _with_final(frames, final)]
    if not pics:
        raise ValueError("no frames to animate")
    durations = [ms] * len(pics)
    durations[-1] = ms * 6
    buf = io.BytesIO()
    pics[0].save(buf, format="GIF", save_all=True, append_images=pics[1:], duration=durations, loop=0,
                 optimize=False)
    return buf.getvalue()


# ============================================================================================== devices
def process_state() -> Any:
    """accelerate's ``PartialState`` (a singleton), with CPU processes allowed: under ``torchrun`` on a machine
    without CUDA each process then joins the gloo group instead of believing it is alone."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def run_sharded(work: Sequence[Any], fn: Any) -> tuple[list[Any] | None, Any]:
    """Run ``fn(shard) -> list`` on this process's contiguous shard of ``work`` under accelerate, and gather the
    outputs in the original order on the main process (other processes get None). Returns (outputs, state).

    With one process (CPU, or ``python`` without ``accelerate launch``) this is ``fn(work)``."""
    state = process_state()
    if state.num_processes == 1:
        return fn(list(work)), state
    from accelerate.utils import gather_object

    with state.split_between_processes(list(work)) as shard:
        local = fn(list(shard))
    gathered = gather_object(local)  # process order = shard order: the original order
    return (gathered if state.is_main_process else None), state


# ============================================================================================== solve to a folder
SOLVE_FORMAT = "diffthinker-solve/1"
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")


def image_items(folder: str | Path, task_id: str) -> list[Item]:
    """Bare puzzle images (``<name>.png|.jpg|.jpeg|.webp``) of one task: no instance, so they can be solved but
    not parsed, verified or selected among (only the ``first`` rule applies)."""
    from .data import schema

    folder = Path(folder)
    if not folder.is_dir():
        raise TaskError(f"--images folder not found: {folder}")
    task = get_task(task_id)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise TaskError(f"no puzzle images ({', '.join(IMAGE_EXTS)}) in {folder}")
    stems = [p.stem for p in files]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise TaskError(f"several images share the names {dup[:5]} in {folder}; expected one image per name")
    return [Item(schema.check_safe_name(p.stem, "image name"), task.id, None, None, schema.open_image_file(p))
            for p in files]


def _answer_image(task: Any, item: Item, cand: Candidate, size: int) -> Image.Image | None:
    """The picture written for a candidate: the solver's own image, or for a text answer its drawing at ``size``
    px (so ``diffthinker verify`` scores both tracks alike); None for an unparsed text answer."""
    if cand.raw.image is not None:
        return cand.raw.image
    if not cand.parsed or item.instance is None:
        return None
    from .data.build import level_sizes

    sizes = level_sizes(task, item.level) if item.level else task.supported_sizes
    return task.render(item.instance, cand.answer, size=min(max(size, min(sizes)), max(sizes)))


def solve_to_folder(solver: Solver, items: Sequence[Item], out: str | Path, *, num_samples: int = 1,
                    select: str = "verifier", seed: int = 0, num_inference_steps: int | None = None,
                    batch_size: int | None = None, save_trajectory: bool = False, save_candidates: bool = False,
                    overwrite: bool = False, command: Sequence[str] | None = None, source: str = "",
                    progress: bool = False) -> dict[str, Any] | None:
    """Solve ``items`` and write, atomically, into ``out``:

    - ``<id>.png``: the selected solved image per item (``diffthinker verify --images OUT --data DIR`` scores it;
      for text answers, the answer drawn by ``task.render``; nothing for an unparsed text answer);
    - ``answers.json``: config, summary, and per item the parsed answer, verdict, chosen sample, fallback flag,
      seconds and every candidate's seed, answer and verdict;
    - with ``save_candidates``: ``candidates/<id>/<k>.png`` (and ``.txt`` for text answers);
    - with ``save_trajectory``: ``trajectories/<id>.png`` (the predicted-clean frames of every step as a strip; the
      last one is the output) and ``trajectories/<id>.gif`` for the selected sample.

    Under accelerate each process solves a contiguous shard and writes its images into the main process's
    scratch folder (broadcast); the records are gathered, and the main process writes answers.json and renames the
    folder into place. Returns the summary on the main process, None on the others.
    """
    from contextlib import ExitStack

    from .data import store
    from .data.schema import encode_png

    check_rule(select)
    if not items:
        raise TaskError("no puzzles to solve")
    bare = [it.id for it in items if it.instance is None]
    if bare and select != "first":
        raise TaskError(f"--select {select} needs puzzle instances to parse and verify candidates, but "
                        f"{len(bare)} puzzle(s) are bare images (e.g. {bare[0]!r}); use --data DIR or --select first")
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        raise TaskError("item ids are not unique; expected one output image name per item")
    for task_id in {it.task for it in items}:
        if not solver.supports(task_id):
            raise TaskError(f"solver {solver.name!r} does not solve task {task_id!r}"
                            + (f"; it knows {solver.tasks}" if hasattr(solver, "tasks") else ""))
    store.check_output(out, overwrite)  # fail before the work, not after
    state = process_state()

    def write(folder: Path, rel: str, data: bytes) -> None:
        dest = folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)

    def write_trajectory(folder: Path, item_id: str, raw: RawCandidate) -> None:
        # the frames alone: the last Euler step lands on the last predicted-clean frame, which is the output
        if save_trajectory and raw.trajectory:
            write(folder, f"trajectories/{item_id}.png", encode_png(trajectory_strip(raw.trajectory)))
            write(folder, f"trajectories/{item_id}.gif", trajectory_gif(raw.trajectory))

    def work(folder: Path, shard: list[Item]) -> list[dict[str, Any]]:
        from tqdm.auto import tqdm

        records: dict[str, dict[str, Any]] = {}
        bar = tqdm(total=len(shard), desc=f"solve N={num_samples}", unit="puzzle", disable=not progress or None)
        for task_id, group in group_by_task(shard).items():
            task = get_task(task_id)
            for chunk in chunked(group, ITEM_CHUNK):
                images = [it.image for it in chunk]
                if chunk[0].instance is None:  # bare images: sample, keep the first
                    t0 = time.perf_counter()
                    keys = [it.id for it in chunk]
                    raws = solver.sample(task.id, images, sample_seeds(seed, keys, num_samples),
                                         num_inference_steps=num_inference_steps, batch_size=batch_size,
                                         save_trajectory=save_trajectory)
                    share = (time.perf_counter() - t0) / len(chunk)
                    for it, raw_list in zip(chunk, raws):
                        if raw_list[0].image is not None:
                            write(folder, f"{it.id}.png", encode_png(raw_list[0].image))
                        if save_candidates:
                            for k, r in enumerate(raw_list):
                                if r.image is not None:
                                    write(folder, f"candidates/{it.id}/{k:03d}.png", encode_png(r.image))
                        write_trajectory(folder, it.id, raw_list[0])
                        records[it.id] = {
                            "id": it.id, "task": task.id, "level": None, "select": "first", "selected": 0,
                            "fallback": False, "seconds": round(share, 6), "answer": None, "answer_json": None,
                            "verdict": None, "correct": None,
                            "candidates": [{"index": k, "seed": sample_seed(seed, it.id, k), "text": r.text}
                                           for k, r in enumerate(raw_list)]}
                    bar.update(len(chunk))
                    continue
                results = solve(solver, task.id, [it.instance for it in chunk], images, num_samples=num_samples,
                                select=select, seed=seed, num_inference_steps=num_inference_steps,
                                batch_size=batch_size, save_trajectory=save_trajectory,
                                item_ids=[it.id for it in chunk], levels=[it.level for it in chunk])
                for it, img_in, res in zip(chunk, images, results):
                    sel = res.selected_candidate
                    picture = _answer_image(task, it, sel, img_in.width) if sel is not None else None
                    if picture is not None:
                        write(folder, f"{it.id}.png", encode_png(picture))
                    if save_candidates:
                        for c in res.candidates:
                            base = f"candidates/{it.id}/{c.index:03d}"
                            pic = _answer_image(task, it, c, img_in.width)
                            if pic is not None:
                                write(folder, f"{base}.png", encode_png(pic))
                            if c.raw.text is not None:
                                write(folder, f"{base}.txt", c.raw.text.encode())
                    if sel is not None:
                        write_trajectory(folder, it.id, sel.raw)
                    rec = result_record(res)
                    if it.official_id:
                        rec["official_id"] = it.official_id
                    records[it.id] = rec
                bar.update(len(chunk))
        bar.close()
        return [records[it.id] for it in shard]

    with ExitStack() as stack:
        tmp = stack.enter_context(store.atomic_folder(out, overwrite)) if state.is_main_process else None
        if state.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            tmp = Path(broadcast_object_list([str(tmp) if tmp is not None else None])[0])
        records, _ = run_sharded(items, lambda shard: work(tmp, shard))
        if records is None:  # not the main process: its files are written, the main one finishes the folder
            return None
        summary = _solve_summary(records)
        config = {"samples": num_samples, "select": select, "seed": seed, "steps": num_inference_steps,
                  "batch_size": batch_size, "save_trajectory": save_trajectory,
                  "save_candidates": save_candidates, "source": source, "processes": state.num_processes}
        solver_info = {"name": solver.name, "kind": solver.kind, "checkpoint": getattr(solver, "source", None)}
        (tmp / "answers.json").write_text(json.dumps(
            {"format": SOLVE_FORMAT, "solver": solver_info, "config": config, "summary": summary,
             "items": records}, indent=1) + "\n")
        store.write_manifest(tmp, store.make_manifest(
            "solve", config={**config, "solver": solver_info}, counts=summary,
            tasks={t: get_task(t).version for t in sorted({r["task"] for r in records})},
            command=list(command) if command is not None else None))
    return summary


def _solve_summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    scored = [r for r in records if r["verdict"] is not None or r["correct"] is not None]
    n = len(records)
    correct = sum(bool(r["correct"]) for r in records)
    out = {"total": n, "scored": len(scored), "correct": correct,
           "valid": sum(bool(r["verdict"] and r["verdict"]["valid"]) for r in records),
           "parse_failures": sum(1 for r in scored if r["answer"] is None and r["selected"] is not None),
           "fallbacks": sum(bool(r["fallback"]) for r in records),
           "accuracy": correct / n if scored and n else None,
           "seconds_per_puzzle": sum(r["seconds"] for r in records) / n if n else 0.0}
    return out
