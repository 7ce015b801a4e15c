"""Which checkpoint solves which task in the demo.

Every sub-folder of the checkpoint folder (default: the repository's ``checkpoints/``) that
``diffthinker.inference.load_solver`` accepts is a model; ``--checkpoint PATH`` adds more and takes precedence.
Each task gets the first diffusion solver (kind "diffusion") and the first MLLM solver (kind "mllm") whose
``supports(task_id)`` says yes. Nothing here raises for a bad checkpoint: a folder that fails to load becomes a
note the UI shows, so one broken checkpoint never takes the demo down.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..tasks.base import list_tasks

logger = logging.getLogger(__name__)

KINDS = ("diffusion", "mllm")


def default_checkpoint_dir() -> Path:
    """The repository's ``checkpoints/`` (beside the package in a checkout / editable install), else
    ``./checkpoints`` (a regular pip install, started from a folder that has one)."""
    beside = Path(__file__).resolve().parents[2] / "checkpoints"
    return beside if beside.is_dir() else Path("checkpoints")


@dataclass
class LoadFailure:
    path: Path
    message: str
    explicit: bool  # named with --checkpoint (an error) rather than found in the folder (a note)


@dataclass
class ModelRegistry:
    """The loaded solvers and, per task and kind, the one the demo uses."""

    solvers: list[tuple[Path, Any]] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)
    searched: list[Path] = field(default_factory=list)

    @classmethod
    def discover(cls, checkpoint_dir: str | Path | None, extra: Sequence[str | Path] = (),
                 loader: Callable[[Path], Any] | None = None) -> "ModelRegistry":
        """Load ``extra`` (in order) then every sub-folder of ``checkpoint_dir`` (sorted by name)."""
        if loader is None:
            from ..inference import load_solver as loader
        reg = cls()
        candidates: list[tuple[Path, bool]] = [(Path(p), True) for p in extra]
        if checkpoint_dir is not None:
            folder = Path(checkpoint_dir)
            reg.searched.append(folder)
            if folder.is_dir():
                candidates += [(p, False) for p in sorted(folder.iterdir())
                               if p.is_dir() and not p.name.startswith(".")]
        seen: set[Path] = set()
        for path, explicit in candidates:
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            try:
                solver = loader(path)
            except Exception as exc:  # noqa: BLE001 - any failure to load is reported in the UI, not raised
                logger.warning("checkpoint %s not loaded: %s", path, exc)
                reg.failures.append(LoadFailure(path, f"{type(exc).__name__}: {exc}" if not str(exc)
                                                else str(exc), explicit))
                continue
            if getattr(solver, "kind", None) not in KINDS:
                reg.failures.append(LoadFailure(path, f"loaded a solver of unknown kind "
                                                      f"{getattr(solver, 'kind', None)!r}; expected one of {KINDS}",
                                                explicit))
                continue
            logger.info("checkpoint %s: %s solver %r", path, solver.kind, solver.name)
            reg.solvers.append((path, solver))
        return reg

    def solver_for(self, task_id: str, kind: str) -> Any | None:
        for _path, solver in self.solvers:
            if solver.kind == kind and _supports(solver, task_id):
                return solver
        return None

    def path_of(self, solver: Any) -> Path | None:
        return next((p for p, s in self.solvers if s is solver), None)

    def tasks_with(self, kind: str) -> list[str]:
        return [t for t in list_tasks() if self.solver_for(t, kind) is not None]

    def describe(self, task_id: str) -> str:
        """Markdown: the models the demo uses for ``task_id`` and any checkpoint that failed to load."""
        lines = []
        for kind, label in (("diffusion", "Diffusion model"), ("mllm", "MLLM baseline")):
            solver = self.solver_for(task_id, kind)
            if solver is None:
                lines.append(f"- **{label}**: no {kind} checkpoint for `{task_id}` yet")
            else:
                extra = f", {solver.resolution} px" if getattr(solver, "resolution", None) else ""
                lines.append(f"- **{label}**: `{solver.name}` ({self.path_of(solver)}{extra})")
        for f in self.failures:
            what = "could not load" if f.explicit else "skipped"
            lines.append(f"- ⚠ {what} `{f.path}`: {html.escape(f.message, quote=False)}")
        if not self.solvers and not self.failures:
            where = ", ".join(f"`{p}`" for p in self.searched) or "no folder"
            lines.append(f"- no checkpoints found (searched {where}); add one with `--checkpoint PATH`")
        return "\n".join(lines)


def _supports(solver: Any, task_id: str) -> bool:
    try:
        return bool(solver.supports(task_id))
    except Exception:  # noqa: BLE001 - a solver that cannot answer does not support the task
        logger.exception("solver %r failed in supports(%r)", getattr(solver, "name", solver), task_id)
        return False
