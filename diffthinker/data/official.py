"""Import and export of the official DiffThinker folder layouts (reference/diffthinker_tasks.md).

Import: ``find_official_folders(src)`` walks ``src`` (a single test folder such as ``Maze/8_test`` or a parent
such as the whole DiffThinker test tree) and returns every folder one task's ``official_patterns`` match;
``import_official(src)`` reads their items with ``task.read_official`` into a dataset whose images are the
official files' bytes as they are (PNG or JPEG, never re-rendered), with the official ids kept
(``official_id``, and inside ``id``) and ``official=True``. ``solution_image`` is null where the official set
has none (VSP maps, VisPuzzle); ``answer`` is null where it ships no ground truth.

Export: ``export_official(ds, folder)`` writes rows back in the published layout with ``task.write_official``.
"""

from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import datasets
from tqdm.auto import tqdm

from ..tasks.base import Answer, Instance, OfficialItem, Task, TaskError, get_task, iter_tasks
from .build import dataset_from_rows
from .schema import image_cell, official_item_id, open_image_file
from .store import atomic_folder, is_dataset_folder, load_dataset, write_manifest


def known_layouts() -> str:
    return "; ".join(f"{t.id}: {', '.join(t.official_patterns) or '(none)'}" for t in iter_tasks())


def _matching_tasks(folder: Path, tasks: list[Task]) -> list[Task]:
    return [t for t in tasks if t.official_patterns and t.matches_official(folder)]


def find_official_folders(src: str | Path, task: str | Task | None = None) -> list[tuple[Task, Path]]:
    """Every folder under ``src`` (``src`` included) that is an official layout, with its task; sorted by path.

    A matching folder is not searched further. With ``task``, only that task's folders are kept, and a ``src``
    holding none of them but another task's is an error naming it (importing ``TSP/12_test`` as ``maze``).
    """
    src = Path(src)
    if not src.exists():
        raise TaskError(f"official folder not found: {src}")
    if not src.is_dir():
        raise TaskError(f"{src} is not a folder; expected an official DiffThinker test folder or a parent of them")
    tasks = list(iter_tasks())
    found: list[tuple[Task, Path]] = []
    for root, dirs, _files in os.walk(src):
        here = Path(root)
        matches = _matching_tasks(here, tasks)
        if len(matches) > 1:
            raise TaskError(f"folder {here} matches the layouts of several tasks {[t.id for t in matches]}; "
                            f"expected exactly one")
        if matches:
            found.append((matches[0], here))
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    if not found:
        raise TaskError(f"{src} holds no official DiffThinker test folder; expected one of the layouts "
                        f"{known_layouts()}")
    if task is not None:
        want = get_task(task) if isinstance(task, str) else task
        mine = [(t, p) for t, p in found if t.id == want.id]
        if not mine:
            t, p = found[0]
            raise TaskError(f"folder {p} is a {t.id} layout, not {want.id}; expected folders matching "
                            f"{list(want.official_patterns)}")
        found = mine
    return sorted(found, key=lambda tp: tp[1].as_posix())


def layout_name(task: Task, folder: Path) -> str:
    """The part of the folder path the task's pattern matched, e.g. ``Maze/8_test`` (independent of where the
    official tree lives on disk)."""
    text = Path(folder).resolve().as_posix()
    for pattern in task.official_patterns:
        m = re.search(pattern, text)
        if m:
            return m.group(0).strip("/") or Path(folder).name
    return Path(folder).name


def _read_image(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    open_image_file(path)  # full decode: a truncated or non-image official file is an error, named
    return image_cell(Path(path).read_bytes(), Path(path).name)


def official_rows(task: Task, folder: Path, items: Iterable[OfficialItem]) -> Iterator[dict[str, Any]]:
    source = f"official:{layout_name(task, folder)}"
    for item in items:
        answer = item.answer
        yield {
            "id": official_item_id(task.id, item.item_id),
            "task": task.id,
            "task_version": task.version,
            "level": item.level,
            "seed": None,
            "prompt": task.prompt,
            "image": _read_image(item.problem_image),
            "solution_image": _read_image(item.solution_image),
            "instance": item.instance.to_json(),
            "answer": task.answer_to_text(answer) if answer is not None else None,
            "answer_json": answer.to_json() if answer is not None else None,
            "content_hash": task.content_hash(item.instance),
            "official": True,
            "source": source,
            "official_id": item.item_id,
        }


@contextmanager
def _sources_relative_to(src: Path) -> Iterator[None]:
    """While reading: ``src`` is the only source root, so instances that reference files (jigsaw: the official
    problem image) name them relative to ``src`` whatever roots earlier imports registered (the instance JSON
    and content hash must not depend on the history of the process). Afterwards the earlier roots are back and
    ``src`` is kept as one more root, so the instances resolve."""
    try:
        from ..tasks import sources
    except ImportError:
        yield
        return
    before = sources.source_roots()
    sources.clear_source_roots()
    try:
        sources.add_source_root(src)
        yield
    finally:
        sources.clear_source_roots()
        for root in before:
            sources.add_source_root(root)
        sources.add_source_root(src)


def read_official_tree(src: str | Path, task: str | Task | None = None
                       ) -> list[tuple[Task, Path, list[OfficialItem]]]:
    """``find_official_folders`` + ``read_official`` on each; duplicate ids across folders are an error."""
    out = []
    seen: dict[str, Path] = {}
    folders = find_official_folders(src, task)
    for t, folder in folders:
        with _sources_relative_to(Path(src)):
            items = t.read_official(folder)
        for item in items:
            key = official_item_id(t.id, item.item_id)
            if key in seen:
                raise TaskError(f"official item {item.item_id!r} of {t.id} appears in both {seen[key]} and "
                                f"{folder}; expected each official item once")
            seen[key] = folder
        out.append((t, folder, items))
    return out


def import_official(src: str | Path, task: str | Task | None = None, *, workdir: str | Path | None = None,
                    progress: bool = True, tree: list[tuple[Task, Path, list[OfficialItem]]] | None = None
                    ) -> datasets.Dataset:
    """A dataset of every official item under ``src`` (see the module docstring); ``tree`` is
    ``read_official_tree(src, task)`` if the caller already has it."""
    tree = tree if tree is not None else read_official_tree(src, task)
    total = sum(len(items) for _, _, items in tree)

    def rows() -> Iterator[dict[str, Any]]:
        with tqdm(total=total, desc="import", unit="item", disable=not progress or None) as bar:
            for t, folder, items in tree:
                for row in official_rows(t, folder, items):
                    bar.update(1)
                    yield row

    return dataset_from_rows(rows(), workdir)


_FILE_SPEC = re.compile(r"^(?:file|official-problem|vispuzzle):(?P<path>.+)\|sha256=[0-9a-f]{64}$")


def _spec_paths(value: Any) -> Iterator[str]:
    """Paths of the file specs (``diffthinker.tasks.sources``) anywhere inside an instance's fields."""
    if isinstance(value, str):
        m = _FILE_SPEC.match(value)
        if m:
            yield m.group("path")
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _spec_paths(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _spec_paths(v)


def copy_task_sources(tree: list[tuple[Task, Path, list[OfficialItem]]], dest: Path) -> int:
    """Copy the files that official instances reference by relative path (jigsaw puzzles cut from the official
    problem images) into ``dest``, the dataset folder, at the same relative path; ``load_dataset`` registers the
    dataset folder as a source root, so the instances resolve there wherever the dataset is moved. The file
    specs carry a sha256 that is checked on load. Returns the number of files copied.

    The one place the data layer knows about source files; absolute paths are left where they are.
    """
    try:
        from ..tasks import sources
    except ImportError:
        return 0
    copied = 0
    dest = Path(dest).resolve()
    for _task, _folder, items in tree:
        for item in items:
            for rel in _spec_paths(item.instance.to_dict()):
                if Path(rel).is_absolute():
                    continue
                target = (dest / rel).resolve()
                if not target.is_relative_to(dest):
                    raise TaskError(f"source path {rel!r} of item {item.item_id} escapes the dataset folder; "
                                    f"expected a relative path inside it")
                if target.is_file():
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(sources.resolve_path(rel), target)
                copied += 1
    return copied


def load_data(path: str | Path, *, progress: bool = False) -> datasets.Dataset:
    """A dataset folder, or an official test folder / tree imported on the fly (for ``verify``/``render``)."""
    path = Path(path)
    if is_dataset_folder(path) or not path.is_dir():
        return load_dataset(path)
    try:
        tree = read_official_tree(path)
    except TaskError as exc:
        raise TaskError(f"{path} is neither a diffthinker dataset (no state.json / dataset_info.json) nor an "
                        f"official DiffThinker folder ({exc})") from None
    return import_official(path, progress=progress, tree=tree)


# ----------------------------------------------------------------------------------------------- export
def row_answer(task: Task, inst: Instance, row: dict[str, Any]) -> Answer:
    if row.get("answer_json"):
        return task.answer_from_json(row["answer_json"])
    return task.solve(inst)


def official_stem(row: dict[str, Any]) -> str:
    """The file stem of a generated row in the published layout: ``<level>_<seed:06d>`` (``8_000123``,
    ``2x2_000007``), shaped like the published names, which start with the level (jigsaw requires it)."""
    return f"{row['level']}_{row['seed']:06d}"


def export_official(ds: datasets.Dataset, folder: str | Path, size: int = 512, *, overwrite: bool = False,
                    manifest: dict[str, Any] | None = None) -> Path:
    """Write ``ds`` in the published layout with ``task.write_official``, atomically.

    One (task, level) group goes straight into ``folder``; several go to ``folder/<task_id>_<level>/``. Official
    rows keep their official ids as file stems; generated rows are named ``official_stem(row)``.
    """
    groups: dict[tuple[str, str], list[tuple[str, Instance, Answer]]] = {}
    rows = ds.remove_columns([c for c in ("image", "solution_image") if c in ds.column_names])
    for row in rows:
        task = get_task(row["task"])
        inst = task.instance_from_json(row["instance"])
        stem = row["official_id"] if row["official"] and row["official_id"] else official_stem(row)
        groups.setdefault((task.id, row["level"]), []).append((stem, inst, row_answer(task, inst, row)))
    if not groups:
        raise TaskError(f"nothing to export to {folder}: the dataset is empty")
    with atomic_folder(folder, overwrite) as tmp:
        for (task_id, level), items in sorted(groups.items()):
            target = tmp if len(groups) == 1 else tmp / f"{task_id}_{level}"
            target.mkdir(exist_ok=True)
            get_task(task_id).write_official(items, target, size=size)
        if manifest is not None:
            write_manifest(tmp, manifest)
    return Path(folder)
