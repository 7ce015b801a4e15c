"""The interface both tracks implement so that `diffthinker solve / eval / compare` and the demo treat them alike.

A *solver* turns puzzle images into N raw candidates per puzzle: images (the diffusion track draws the solution) or
texts (the MLLM track answers in words). Everything after that, parsing a candidate with the task's ``parse`` /
``parse_text``, verifying it and selecting one (verifier, vote, first), is done once in ``diffthinker.inference``,
identically for both tracks.

Randomness contract: candidate k of puzzle i depends only on (the model, the puzzle, ``seeds[i][k]``), never on the
batch it was computed in, so results are reproducible and independent of batch size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

from PIL import Image


@dataclass
class RawCandidate:
    """One sample of a solver before parsing: exactly one of ``image`` / ``text`` is set."""

    image: Image.Image | None = None
    text: str | None = None
    # Intermediate predicted-clean frames (diffusion, when trajectories were asked for), oldest first.
    trajectory: list[Image.Image] = field(default_factory=list)

    def __post_init__(self) -> None:
        if (self.image is None) == (self.text is None):
            raise ValueError("a RawCandidate holds exactly one of image (diffusion) or text (MLLM)")


@runtime_checkable
class Solver(Protocol):
    """What a checkpoint loads into. ``kind`` is ``"diffusion"`` or ``"mllm"``; ``name`` labels reports."""

    kind: str
    name: str

    def supports(self, task_id: str) -> bool:
        """Whether this solver was trained for the task (e.g. the pipeline's task embedding knows it)."""
        ...

    def sample(self, task_id: str, images: Sequence[Image.Image], seeds: Sequence[Sequence[int]], *,
               num_inference_steps: int | None = None, batch_size: int | None = None,
               save_trajectory: bool = False, **kwargs: Any) -> list[list[RawCandidate]]:
        """``len(seeds[i])`` candidates for puzzle image i (all puzzles of one task), in seed order.

        Implementations batch across puzzles and samples (chunks of at most ``batch_size`` model rows) and must
        honour the randomness contract above."""
        ...
