"""The task contract shared by both tracks: types, the `Task` base class and the registry.

Every puzzle (maze, tsp, sudoku, jigsaw, frozenlake) is one file in this package with the same anatomy:

1. a level config dataclass and the ``LEVELS`` table (published DiffThinker levels plus small CPU levels);
2. frozen ``Instance`` and ``Answer`` dataclasses (JSON-serialisable, hashable by content);
3. a ``Task`` subclass implementing generate / solve / render / parse / verify / to_text / answer_to_text /
   parse_text, and reading/writing the official DiffThinker folder format;
4. a registration line: ``register_task(MazeTask())``.

Nothing in ``diffthinker.tasks`` imports torch or any model: parsers read pixels with colour masks, cell
statistics and template matching only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping, Sequence, TypeVar

from PIL import Image

__all__ = [
    "Answer",
    "Instance",
    "OfficialItem",
    "ParseFailure",
    "Task",
    "TaskError",
    "Verdict",
    "get_task",
    "list_tasks",
    "register_task",
    "task_rng",
]


class TaskError(ValueError):
    """Bad input to the puzzle layer: unknown task or level, malformed instance, unreadable image or file.

    The message always names the offending value and what was expected; the CLI turns it into exit code 2.
    """


def _freeze(value: Any) -> Any:
    """Lists (from JSON) become tuples, recursively, so instances rebuilt from JSON compare and hash equal."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        raise TaskError(f"instance and answer fields must not be dicts (got {value!r}); use tuples")
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


S = TypeVar("S", bound="_Serializable")


@dataclass(frozen=True)
class _Serializable:
    """Frozen dataclass with a canonical JSON form. Fields hold ints, floats, strings, bools or nested tuples."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _thaw(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self) -> str:
        # sort_keys + compact separators: the canonical form that content hashes are taken over.
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls: type[S], data: Mapping[str, Any]) -> S:
        if not isinstance(data, Mapping):
            raise TaskError(f"{cls.__name__} expects a JSON object, got {type(data).__name__}: {data!r:.200}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        missing = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING} - set(data)
        if unknown or missing:
            raise TaskError(
                f"{cls.__name__} JSON has unknown fields {sorted(unknown)} / missing fields {sorted(missing)}; "
                f"expected fields {sorted(names)}"
            )
        return cls(**{k: _freeze(v) for k, v in data.items()})

    @classmethod
    def from_json(cls: type[S], text: str) -> S:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TaskError(f"{cls.__name__}: not valid JSON ({exc}): {text!r:.200}") from None
        return cls.from_dict(data)


@dataclass(frozen=True)
class Instance(_Serializable):
    """Base of every task's puzzle instance. Subclasses add the puzzle's content as frozen fields.

    An instance holds the puzzle only (no seed, no level name): two seeds that happen to produce the same puzzle
    give equal instances with equal ``content_hash``es, which is what dataset de-duplication needs.
    """

    def content_hash(self, task_id: str) -> str:
        return hashlib.sha256(f"{task_id}\n{self.to_json()}".encode()).hexdigest()


@dataclass(frozen=True)
class Answer(_Serializable):
    """Base of every task's answer (moves, tour, digits, permutation). Subclasses add frozen fields."""


@dataclass(frozen=True)
class ParseFailure:
    """What `parse` / `parse_text` return when no answer can be read. Never raised: junk input is data here."""

    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:  # `if answer:` reads naturally at call sites
        return False


@dataclass(frozen=True)
class Verdict:
    """The result of `verify`.

    - ``valid``: the answer obeys the rules using only the instance (usable for test-time selection, RL rewards).
    - ``correct``: the benchmark's definition of solved (see each task's docstring).
    - ``score``: partial progress in [0, 1] for RL reward shaping; 1.0 iff correct.
    - ``reason``: one short human-readable sentence; ``details``: JSON-serialisable extras (e.g. tour length).
    """

    correct: bool
    valid: bool
    score: float
    reason: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"Verdict.score must be in [0, 1], got {self.score}")
        if self.correct and not self.valid:
            raise ValueError("a correct answer must also be valid")

    @classmethod
    def failure(cls, reason: str, **details: Any) -> "Verdict":
        return cls(correct=False, valid=False, score=0.0, reason=reason, details=details)

    def to_dict(self) -> dict[str, Any]:
        return {"correct": self.correct, "valid": self.valid, "score": self.score, "reason": self.reason,
                "details": dict(self.details)}


@dataclass(frozen=True)
class OfficialItem:
    """One item read from an official DiffThinker test folder, keeping the official id and image files."""

    item_id: str                  # the official stem, e.g. "8_1_001", "16_12_001", "level3_0"
    level: str                    # our level name, e.g. "8", "vsp3"
    instance: Instance
    problem_image: Path
    solution_image: Path | None   # absent for VSP maps and VisPuzzle
    answer: Answer | None         # the official ground truth, when the folder has one
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. VisPuzzle's options and answer sentence


def task_rng(task_id: str, level: str, seed: int) -> random.Random:
    """The one RNG behind `generate(level, seed)`.

    Seeding `random.Random` with a string hashes it with SHA-512 (stable across runs, platforms and Python
    versions), so item i of any dataset can be regenerated alone from (task, level, seed) and two tasks or levels
    never share a stream.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise TaskError(f"seed must be a non-negative int, got {seed!r}")
    return random.Random(f"{task_id}/{level}/{seed}")


class Task(ABC):
    """A visual puzzle both tracks solve. Subclasses set the class attributes and implement the methods.

    Class attributes:
      name: short name ("maze"); version: int; ``id`` is derived as f"{name}-v{version}".
      prompt: the published per-task edit prompt (reference §3).
      levels: level name -> level config dataclass; ``default_level`` names the one to use when none is given.
      instance_type / answer_type: the task's frozen dataclasses.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    prompt: ClassVar[str]
    levels: ClassVar[Mapping[str, Any]]
    default_level: ClassVar[str]
    instance_type: ClassVar[type[Instance]]
    answer_type: ClassVar[type[Answer]]
    styles: ClassVar[tuple[str, ...]] = ("diffthinker",)
    # Render sizes the parser is guaranteed to read back (the conformance check tries each of them).
    supported_sizes: ClassVar[tuple[int, ...]] = (64, 128, 256, 512, 1024)

    @property
    def id(self) -> str:
        return f"{self.name}-v{self.version}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"

    # ----------------------------------------------------------------- levels and generation
    def level_config(self, level: str) -> Any:
        if level not in self.levels:
            raise TaskError(f"unknown level {level!r} for task {self.id}; expected one of {sorted(self.levels)}")
        return self.levels[level]

    def rng(self, level: str, seed: int) -> random.Random:
        self.level_config(level)
        return task_rng(self.id, level, seed)

    @abstractmethod
    def generate(self, level: str, seed: int) -> Instance:
        """A puzzle, deterministic in (level, seed). Use ``self.rng(level, seed)`` for every random choice."""

    @abstractmethod
    def solve(self, instance: Instance) -> Answer:
        """The exact, optimal answer."""

    # ----------------------------------------------------------------- images
    @abstractmethod
    def render(self, instance: Instance, answer: Answer | None = None, size: int = 512,
               style: str = "diffthinker") -> Image.Image:
        """The problem image (answer=None) or the solution image, RGB, drawn natively at ``size``."""

    def parse(self, image: Image.Image, instance: Instance) -> Answer | ParseFailure:
        """Read an answer from a (possibly generated, noisy, any-size) solution image, with pixels only.

        The image is validated and converted to RGB here (see ``draw.to_rgb``); an image that cannot be a
        puzzle image (1x1, CMYK, ...) gives a ParseFailure naming why, never an exception.
        """
        from .draw import to_rgb  # local: draw imports base

        self._check_instance(instance)
        try:
            rgb = to_rgb(image)
        except TaskError as exc:
            return ParseFailure(f"unreadable image: {exc}")
        return self._parse(rgb, instance)

    @abstractmethod
    def _parse(self, image: Image.Image, instance: Instance) -> Answer | ParseFailure:
        """Task-specific parsing of a validated RGB image of any size."""

    # ----------------------------------------------------------------- rules
    def verify(self, instance: Instance, answer: Answer | ParseFailure) -> Verdict:
        """Check an answer against the rules. A ParseFailure verifies as invalid with score 0."""
        self._check_instance(instance)
        if isinstance(answer, ParseFailure):
            return Verdict.failure(f"parse failure: {answer.reason}")
        if not isinstance(answer, self.answer_type):
            raise TaskError(f"{self.id} expects a {self.answer_type.__name__}, got {type(answer).__name__}")
        return self._verify(instance, answer)

    @abstractmethod
    def _verify(self, instance: Instance, answer: Answer) -> Verdict:
        """Task-specific rule checking of a well-typed answer."""

    def _check_instance(self, instance: Instance) -> None:
        if not isinstance(instance, self.instance_type):
            raise TaskError(f"{self.id} expects a {self.instance_type.__name__}, got {type(instance).__name__}")

    # ----------------------------------------------------------------- text side (MLLM track)
    @abstractmethod
    def to_text(self, instance: Instance) -> str:
        """The puzzle as text, for the MLLM prompt beside the image."""

    @abstractmethod
    def answer_to_text(self, answer: Answer) -> str:
        """The canonical text form of an answer (what an SFT trace ends with)."""

    @abstractmethod
    def parse_text(self, text: str, instance: Instance | None = None) -> Answer | ParseFailure:
        """Read an answer from model text (tolerant of surrounding prose; takes the last answer-like span)."""

    # ----------------------------------------------------------------- official DiffThinker folders
    #: regexes matched against a folder's path (posix, relative names) that identify this task's layouts,
    #: e.g. r"Maze/(\d+)_test$". `diffthinker import` picks the task whose pattern matches.
    official_patterns: ClassVar[tuple[str, ...]] = ()

    def matches_official(self, folder: Path) -> bool:
        text = Path(folder).resolve().as_posix()
        return any(re.search(p, text) for p in self.official_patterns)

    @abstractmethod
    def read_official(self, folder: Path) -> list[OfficialItem]:
        """Read an official test folder of this task (images kept by path, ids kept). Sorted by item id."""

    @abstractmethod
    def write_official(self, items: Sequence[tuple[str, Instance, Answer]], folder: Path,
                       size: int = 512) -> None:
        """Write items in the official layout: problem/solution PNGs, per-item text files, the answers JSON."""

    # ----------------------------------------------------------------- helpers shared by all tasks
    def instance_from_json(self, text: str) -> Instance:
        return self.instance_type.from_json(text)

    def answer_from_json(self, text: str) -> Answer:
        return self.answer_type.from_json(text)

    def content_hash(self, instance: Instance) -> str:
        return instance.content_hash(self.id)

    def check_style(self, style: str) -> None:
        if style not in self.styles:
            raise TaskError(f"unknown render style {style!r} for task {self.id}; expected one of {list(self.styles)}")


# --------------------------------------------------------------------------------------------------- registry
_REGISTRY: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Register a task instance under its versioned id (``maze-v1``). Re-registering an id is an error."""
    if task.id in _REGISTRY:
        raise TaskError(f"task id {task.id!r} is already registered")
    _REGISTRY[task.id] = task
    return task


def get_task(name: str) -> Task:
    """Look up ``maze-v1`` exactly, or ``maze`` as the newest registered version of that name."""
    _ensure_builtin_tasks()
    if name in _REGISTRY:
        return _REGISTRY[name]
    versions = [t for t in _REGISTRY.values() if t.name == name]
    if versions:
        return max(versions, key=lambda t: t.version)
    raise TaskError(f"unknown task {name!r}; expected one of {list_tasks()} (or a name without version)")


def list_tasks() -> list[str]:
    _ensure_builtin_tasks()
    return sorted(_REGISTRY)


def _ensure_builtin_tasks() -> None:
    # Importing the package registers the built-in tasks; done lazily so `base` has no import cycle.
    import diffthinker.tasks  # noqa: F401


def iter_tasks() -> Iterable[Task]:
    return [get_task(t) for t in list_tasks()]
