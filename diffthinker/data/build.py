"""Build a dataset of generated puzzles: ``build_dataset(task, level, n, seed, size)``.

Rules (what makes a dataset reproducible and any item regenerable alone):

- Candidate k uses seed ``seed + k``; item i is the i-th candidate (in seed order) whose content hash is neither
  in ``exclude`` nor already taken by an earlier item. The seed actually used is stored in the ``seed`` column
  and in the id, so ``task.generate(level, row["seed"])`` rebuilds the row's puzzle.
- Work is spread over ``num_proc`` processes in chunks of consecutive seeds and collected in seed order, so the
  rows do not depend on the number of processes. Same arguments give identical rows and byte-identical PNGs.
- Rows are streamed to an Arrow file (``workdir``), not held in memory, so paper-scale sets (30k jigsaw photos)
  fit; without ``workdir`` a temporary file is used and the dataset is loaded into memory.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import datasets
from datasets.arrow_writer import ArrowWriter
from tqdm.auto import tqdm

from ..tasks.base import Task, TaskError, get_task
from .schema import COLUMNS, FEATURES, encode_png, generated_id, image_cell


@dataclass(frozen=True)
class BuildConfig:
    """What a generated dataset is a function of (recorded in its manifest)."""

    task: str
    level: str
    n: int
    seed: int = 0
    size: int = 512
    #: content hashes never to produce (e.g. those of a test set); only their count is recorded in manifests
    exclude: frozenset[str] = field(default_factory=frozenset, repr=False)
    #: how many seeds past the last accepted one we may try before giving up (a level with few distinct puzzles)
    max_skips: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["exclude"] = len(self.exclude)
        return out


def check_config(task: Task, cfg: BuildConfig) -> None:
    task.level_config(cfg.level)  # TaskError naming the level and the known ones
    if not isinstance(cfg.n, int) or isinstance(cfg.n, bool) or cfg.n < 1:
        raise TaskError(f"n must be a positive int, got {cfg.n!r}")
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool) or cfg.seed < 0:
        raise TaskError(f"seed must be a non-negative int, got {cfg.seed!r}")
    check_size(task, cfg.level, cfg.size)


def level_sizes(task: Task, level: str) -> tuple[int, ...]:
    """The render sizes the task's parser is guaranteed to read back at ``level`` (a task may narrow them per
    level with ``supported_sizes_for(level)``, e.g. a 32x32 maze needs at least 256 px)."""
    per_level = getattr(task, "supported_sizes_for", None)
    return tuple(per_level(level)) if callable(per_level) else tuple(task.supported_sizes)


def check_size(task: Task, level: str, size: int) -> None:
    """Any size between the level's smallest and largest supported size is accepted (renders are native at
    every size; the listed sizes are the ones the conformance check tries)."""
    sizes = level_sizes(task, level)
    lo, hi = min(sizes), max(sizes)
    if not isinstance(size, int) or isinstance(size, bool) or not lo <= size <= hi:
        raise TaskError(f"size {size!r} is outside the supported range [{lo}, {hi}] px of {task.id} level {level!r}")


# ----------------------------------------------------------------------------------------------- worker side
_WORKER: dict[str, Any] = {}


def _init_worker(task: Task, level: str, size: int, exclude: frozenset[str]) -> None:
    _WORKER.update(task=task, level=level, size=size, exclude=exclude)


def _make_row(seed: int) -> dict[str, Any]:
    """Generate, solve and render the candidate with ``seed``; excluded candidates are not solved or rendered."""
    task: Task = _WORKER["task"]
    level: str = _WORKER["level"]
    size: int = _WORKER["size"]
    inst = task.generate(level, seed)
    digest = task.content_hash(inst)
    if digest in _WORKER["exclude"]:
        return {"seed": seed, "content_hash": digest, "excluded": True}
    answer = task.solve(inst)
    item_id = generated_id(task.id, level, seed)
    return {
        "id": item_id,
        "task": task.id,
        "task_version": task.version,
        "level": level,
        "seed": seed,
        "prompt": task.prompt,
        "image": image_cell(encode_png(task.render(inst, size=size)), f"{item_id}.png"),
        "solution_image": image_cell(encode_png(task.render(inst, answer, size=size)), f"{item_id}_solution.png"),
        "instance": inst.to_json(),
        "answer": task.answer_to_text(answer),
        "answer_json": answer.to_json(),
        "content_hash": digest,
        "official": False,
        "source": "generated",
        "official_id": None,
    }


# ----------------------------------------------------------------------------------------------- driver
@dataclass
class BuildStats:
    accepted: int = 0
    excluded: int = 0
    duplicates: int = 0
    last_seed: int | None = None


def iter_rows(task: Task, cfg: BuildConfig, num_proc: int = 1, progress: bool = True,
              stats: BuildStats | None = None) -> Iterator[dict[str, Any]]:
    """Yield the dataset's rows in order (see the module docstring for the seed rule)."""
    check_config(task, cfg)
    if not isinstance(num_proc, int) or num_proc < 1:
        raise TaskError(f"num_proc must be a positive int, got {num_proc!r}")
    stats = stats if stats is not None else BuildStats()
    max_skips = cfg.max_skips if cfg.max_skips is not None else max(1000, 10 * cfg.n)
    seen: set[str] = set()
    next_seed = cfg.seed
    skipped = 0
    init_args = (task, cfg.level, cfg.size, frozenset(cfg.exclude))
    pool = None
    if num_proc > 1:
        # The task object travels to the workers pickled (by class reference), so a task registered outside
        # diffthinker.tasks works too, whatever the start method.
        pool = mp.get_context().Pool(num_proc, initializer=_init_worker, initargs=init_args)
    else:
        _init_worker(*init_args)
    bar = tqdm(total=cfg.n, desc=f"{task.id}/{cfg.level}", unit="item", disable=not progress or None)
    try:
        while stats.accepted < cfg.n:
            want = cfg.n - stats.accepted
            seeds = range(next_seed, next_seed + want)
            next_seed += want
            if pool is None:
                results: Iterable[dict[str, Any]] = map(_make_row, seeds)
            else:
                chunk = max(1, min(32, want // (4 * num_proc)))
                results = pool.imap(_make_row, seeds, chunksize=chunk)
            for row in results:
                stats.last_seed = row["seed"]
                if row.get("excluded") or row["content_hash"] in seen:
                    if row.get("excluded"):
                        stats.excluded += 1
                    else:
                        stats.duplicates += 1
                    skipped += 1
                    if skipped > max_skips:
                        raise TaskError(
                            f"{task.id} level {cfg.level!r}: found only {stats.accepted} of {cfg.n} distinct, "
                            f"non-excluded puzzles after skipping {skipped} seeds from seed {cfg.seed}; "
                            f"expected a level with more distinct puzzles (or a smaller n / --exclude set)")
                    continue
                seen.add(row["content_hash"])
                stats.accepted += 1
                bar.update(1)
                yield row
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()


def write_arrow(rows: Iterable[dict[str, Any]], path: Path) -> int:
    """Stream rows (dicts with the schema's columns) into an Arrow file; returns the row count."""
    count = 0
    with ArrowWriter(features=FEATURES, path=str(path), writer_batch_size=64) as writer:
        for row in rows:
            writer.write(FEATURES.encode_example({c: row[c] for c in COLUMNS}))
            count += 1
        writer.finalize()
    return count


def dataset_from_rows(rows: Iterable[dict[str, Any]], workdir: str | Path | None = None) -> datasets.Dataset:
    """A Dataset of ``rows``: memory-mapped from ``workdir/data.arrow`` if given (the caller owns the folder),
    else loaded into memory from a temporary file that is removed at once."""
    if workdir is not None:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "data.arrow"
        write_arrow(rows, path)
        return datasets.Dataset.from_file(str(path))
    tmp = tempfile.mkdtemp(prefix="diffthinker-build-")
    try:
        path = Path(tmp) / "data.arrow"
        write_arrow(rows, path)
        return datasets.Dataset.from_file(str(path), in_memory=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_dataset(task: str | Task, level: str | None = None, n: int = 100, seed: int = 0, size: int = 512, *,
                  exclude: Iterable[str] = (), num_proc: int = 1, progress: bool = True,
                  workdir: str | Path | None = None, stats: BuildStats | None = None) -> datasets.Dataset:
    """Generate ``n`` distinct puzzles of ``task`` at ``level`` (default: the task's default level).

    ``exclude``: content hashes to skip (see ``dedup.collect_hashes``). ``num_proc``: worker processes (the
    result does not depend on it). ``workdir``: where to stream the Arrow data (see ``dataset_from_rows``).
    """
    task = get_task(task) if isinstance(task, str) else task
    cfg = BuildConfig(task=task.id, level=level if level is not None else task.default_level, n=n, seed=seed,
                      size=size, exclude=frozenset(exclude))
    check_config(task, cfg)
    if isinstance(num_proc, int) and num_proc > cfg.n:
        num_proc = cfg.n  # more processes than items only costs start-up time
    return dataset_from_rows(iter_rows(task, cfg, num_proc=num_proc, progress=progress, stats=stats), workdir)
