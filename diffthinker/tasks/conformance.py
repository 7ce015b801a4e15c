"""`check_task`: the registry-wide conformance check, in the spirit of gymnasium's `check_env`.

Run over every registered task by tests/tasks/test_conformance.py. Each failure raises AssertionError with a
message naming the task, level, seed and size involved.
"""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from .base import ParseFailure, Task, TaskError


def _fail(task: Task, where: str, msg: str) -> AssertionError:
    return AssertionError(f"[{task.id} {where}] {msg}")


def check_task(task: Task, *, levels: list[str] | None = None, seeds: tuple[int, ...] = (0, 1),
               sizes: tuple[int, ...] | None = None) -> None:
    """Check one task against the contract of DESIGN.md.

    - class attributes: versioned id, prompt, default level among levels;
    - generate: deterministic in (level, seed), instances frozen + hashable, JSON round trip, distinct seeds vary;
    - solve: the oracle verifies correct with score 1.0;
    - render -> parse -> verify: correct at every size in ``sizes`` (default: the task's supported sizes);
    - the problem image never verifies correct; a blank and a noise image give ParseFailure or an incorrect answer;
    - text side: answer_to_text -> parse_text round trip, parse_text on junk gives ParseFailure;
    - unknown levels and negative seeds raise TaskError.
    """
    assert task.id == f"{task.name}-v{task.version}", task.id
    if not task.prompt:
        raise _fail(task, "attrs", "empty prompt")
    if task.default_level not in task.levels:
        raise _fail(task, "attrs", f"default_level {task.default_level!r} not in levels")
    sizes = sizes or task.supported_sizes
    levels = levels or [task.default_level]
    for level in levels:
        hashes = set()
        for seed in seeds:
            where = f"level={level} seed={seed}"
            inst = task.generate(level, seed)
            if not isinstance(inst, task.instance_type):
                raise _fail(task, where, f"generate returned {type(inst).__name__}")
            again = task.generate(level, seed)
            if inst != again or inst.to_json() != again.to_json():
                raise _fail(task, where, "generate is not deterministic in (level, seed)")
            hash(inst)
            rebuilt = task.instance_from_json(json.loads(json.dumps(inst.to_json())))
            if rebuilt != inst or hash(rebuilt) != hash(inst):
                raise _fail(task, where, "instance JSON round trip changed it")
            hashes.add(task.content_hash(inst))

            answer = task.solve(inst)
            if not isinstance(answer, task.answer_type):
                raise _fail(task, where, f"solve returned {type(answer).__name__}")
            if task.answer_from_json(answer.to_json()) != answer:
                raise _fail(task, where, "answer JSON round trip changed it")
            verdict = task.verify(inst, answer)
            if not (verdict.correct and verdict.valid and verdict.score == 1.0):
                raise _fail(task, where, f"oracle answer does not verify: {verdict}")

            text = task.answer_to_text(answer)
            back = task.parse_text(text, inst)
            if isinstance(back, ParseFailure) or not task.verify(inst, back).correct:
                raise _fail(task, where, f"parse_text(answer_to_text(a)) does not verify: {text!r} -> {back!r}")
            if not isinstance(task.parse_text("I cannot solve this.", inst), ParseFailure):
                raise _fail(task, where, "parse_text on prose without an answer must give ParseFailure")
            if not isinstance(task.to_text(inst), str) or not task.to_text(inst):
                raise _fail(task, where, "to_text must return a non-empty string")

            for size in sizes:
                w = f"{where} size={size}"
                problem = task.render(inst, size=size)
                solution = task.render(inst, answer, size=size)
                for name, img in (("problem", problem), ("solution", solution)):
                    if not isinstance(img, Image.Image) or img.mode != "RGB":
                        raise _fail(task, w, f"{name} render must be an RGB PIL image")
                if np.array_equal(np.asarray(problem), np.asarray(task.render(inst, size=size))) is False:
                    raise _fail(task, w, "render is not deterministic")
                parsed = task.parse(solution, inst)
                if isinstance(parsed, ParseFailure) or not task.verify(inst, parsed).correct:
                    raise _fail(task, w, f"render(solve(x)) does not parse back to a correct answer: {parsed!r}")
                from_problem = task.parse(problem, inst)
                if not isinstance(from_problem, ParseFailure) and task.verify(inst, from_problem).correct:
                    raise _fail(task, w, "the problem image verifies as solved")

        if len(seeds) >= 2 and len(hashes) < 2:
            raise _fail(task, f"level={level}", "different seeds gave identical instances")

    inst = task.generate(task.default_level, seeds[0])
    size = sizes[0]
    rng = np.random.default_rng(0)
    junk = [Image.new("RGB", (size, size), (255, 255, 255)), Image.new("RGB", (size, size), (0, 0, 0)),
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))]
    for i, img in enumerate(junk):
        out = task.parse(img, inst)
        if not isinstance(out, ParseFailure) and task.verify(inst, out).correct:
            raise _fail(task, f"junk#{i}", "a junk image verified as correct")
    if not isinstance(task.parse(Image.new("RGB", (1, 1)), inst), ParseFailure):
        raise _fail(task, "junk", "a 1x1 image must give ParseFailure")
    for bad in ("no-such-level",):
        try:
            task.generate(bad, 0)
        except TaskError:
            pass
        else:
            raise _fail(task, "levels", f"generate({bad!r}) must raise TaskError")
    try:
        task.generate(task.default_level, -1)
    except TaskError:
        pass
    else:
        raise _fail(task, "seeds", "generate with seed -1 must raise TaskError")


__all__ = ["check_task"]
