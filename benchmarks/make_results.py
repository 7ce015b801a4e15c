"""The head-to-head results (docs/RESULTS.md), made only through the public ``diffthinker`` commands.

    .venv/bin/python benchmarks/make_results.py                      # everything in PLAN (resumable)
    .venv/bin/python benchmarks/make_results.py --only maze:8 --n 20 # one level, a quick look
    .venv/bin/python benchmarks/make_results.py --dry-run            # print the commands only

For every task and level of ``PLAN`` (below: edit it, it is the whole plan):

1. the test set: ``diffthinker generate --task T --level L --n 200 --seed 0 --size 64 --out <cache>/T_L``: 200
   fresh seeded puzzles, the very set the shipped trainings exclude from their data by content hash;
2. every system whose checkpoint exists: ``diffthinker eval --samples 1,8 --select verifier`` (N=1, and N=8 with
   verifier selection; each N is its own timed run); MLLM policies also greedy N=1 (``--temperature 0``), the
   number the summary shows for them; a missing checkpoint is a *pending* cell, never an error;
3. the no-overlap check of each checkpoint against the test set (``check_never_trained``): the test set's content
   hashes must all lie in the set the checkpoint's own record says it never trained on;
4. the official DiffThinker test folders for the levels our checkpoints cover: ``diffthinker import`` of
   ``--official-root`` (default: the few samples in tests/fixtures/diffthinker_samples), then the same evals;
5. ``diffthinker compare`` per level -> ``docs/results/<task>/<level>/`` (README.md, plots), one solved example
   picture per task, and the markdown: ``docs/RESULTS.md`` and ``docs/results/summary.md`` (the README's table).

Resumable: a dataset, eval or comparison whose recorded command equals the one this run would execute, and that is
newer than its inputs (dataset, checkpoint files), is reused; ``--force`` re-runs the evaluations. Every command
is written into RESULTS.md as it can be typed (``diffthinker ...``, with ``OMP_NUM_THREADS``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# ============================================================================================== the plan
@dataclass(frozen=True)
class TaskPlan:
    """One task: the levels we report, the three checkpoints, the official folder (relative to the official
    root, in the published layout) of each level that has one, and the side its test puzzles are drawn at (the
    diffusion checkpoint's resolution: its training validation set was drawn natively at that size)."""

    task: str
    levels: tuple[str, ...]
    diffusion: str
    mllm_sft: str
    mllm_rl: str
    official: dict[str, str] = field(default_factory=dict)
    size: int = 64


PLAN: tuple[TaskPlan, ...] = (
    TaskPlan("maze", ("8",), "checkpoints/diffthinker-tiny-maze8",
             "checkpoints/mllm-tiny-maze-sft", "checkpoints/mllm-tiny-maze-rl",
             {"8": "Maze/8_test"}),
    TaskPlan("frozenlake", ("vsp3", "vsp4", "vsp5", "vsp6", "vsp7", "vsp8"), "checkpoints/diffthinker-tiny-vsp3to8",
             "checkpoints/mllm-tiny-frozenlake-sft", "checkpoints/mllm-tiny-frozenlake-rl",
             {f"vsp{k}": f"FrozenLake/VSP/maps/level{k}" for k in range(3, 9)}),
    TaskPlan("sudoku", ("4x4-8", "4x4-6"), "checkpoints/diffthinker-tiny-sudoku4x4",
             "checkpoints/mllm-tiny-sudoku-sft", "checkpoints/mllm-tiny-sudoku-rl"),  # no published 4x4 levels
    TaskPlan("tsp", ("6", "8"), "checkpoints/diffthinker-tiny-tsp",
             "checkpoints/mllm-tiny-tsp-sft", "checkpoints/mllm-tiny-tsp-rl"),  # published TSP starts at 12 cities
    TaskPlan("jigsaw", ("2x2", "3x3"), "checkpoints/diffthinker-small-jigsaw",
             "checkpoints/mllm-tiny-jigsaw-sft", "checkpoints/mllm-tiny-jigsaw-rl",
             {"2x2": "Jigsaw/2x2_test", "3x3": "Jigsaw/3x3_test"}, size=96),  # small_cpu_jigsaw.yaml: 96 px
)

#: The test sets: the trainings' validation sets (eval.n = 200 per level, eval.seed = 0), drawn at the models' size
#: (TaskPlan.size).
TEST_SEED = 0
DEFAULT_N = 200
#: Every system is evaluated at these N with this rule (each N its own timed run); the tables show the first (1)
#: and the last (the "N=8 verifier" columns).
SAMPLES: tuple[int, ...] = (1, 8)
SELECT = "verifier"
EXAMPLES = 2  # solved and failed pictures kept per run (compare draws them; RESULTS.md shows one solved)
DEFAULT_OFFICIAL_ROOT = "tests/fixtures/diffthinker_samples"
#: The README carries the summary table between these lines; a full run of the default document rewrites it, so the
#: README's numbers never drift from docs/RESULTS.md.
README_START = "<!-- results table: written by benchmarks/make_results.py, edits between these lines are lost -->"
README_END = "<!-- end of the results table -->"

#: (key, column title, PLAN attribute). The key names the eval run (``--name``) and its JSON file.
SYSTEMS: tuple[tuple[str, str, str], ...] = (
    ("diffusion", "diffusion", "diffusion"),
    ("mllm-sft", "MLLM SFT", "mllm_sft"),
    ("mllm-rl", "MLLM RL", "mllm_rl"),
)
DIFFUSION_MARKER = "model_index.json"
MLLM_MARKER = "diffthinker_policy.json"


class PlanError(ValueError):
    """A bad option value (unknown task or level in --only, ...): the message names it and what was expected."""


def check_plan(plan: Sequence[TaskPlan]) -> None:
    """An edited PLAN fails here, naming the bad task or level, before any work."""
    from diffthinker.tasks import get_task
    from diffthinker.tasks.base import TaskError

    for tp in plan:
        try:
            task = get_task(tp.task)
        except TaskError as exc:
            raise PlanError(f"PLAN: {exc}") from None
        for level in list(tp.levels) + list(tp.official):
            if level not in task.levels:
                raise PlanError(f"PLAN: {tp.task} has no level {level!r}; expected one of {list(task.levels)}")
        if set(tp.official) - set(tp.levels):
            raise PlanError(f"PLAN: {tp.task} names official folders for unplanned levels "
                            f"{sorted(set(tp.official) - set(tp.levels))}")
        # the test set is drawn at tp.size; a checkpoint of another resolution would see every puzzle resized
        config = ROOT / tp.diffusion / "denoiser" / "config.json"
        if config.is_file():
            resolution = json.loads(config.read_text()).get("resolution")
            if resolution != tp.size:
                raise PlanError(f"PLAN: {tp.task} draws its test sets at size={tp.size} px but {tp.diffusion} is a "
                                f"{resolution} px model; expected TaskPlan.size to be the checkpoint's resolution")


def parse_only(values: Sequence[str] | None, plan: Sequence[TaskPlan] | None = None) -> list[tuple[TaskPlan, str]]:
    """``--only`` entries (``task`` or ``task:level``, task as short name or versioned id, comma-separated or
    repeated) -> the selected (task plan, level) pairs in plan order; all of them when ``values`` is empty."""
    from diffthinker.tasks import get_task
    from diffthinker.tasks.base import TaskError

    plan = PLAN if plan is None else plan
    rows = [(tp, lv) for tp in plan for lv in tp.levels]
    if not values:
        return rows
    by_id = {get_task(tp.task).id: tp for tp in plan}
    wanted: set[tuple[str, str]] = set()
    for entry in (e.strip() for v in values for e in v.split(",")):
        if not entry:
            continue
        name, _, level = entry.partition(":")
        try:
            tid = get_task(name).id
        except TaskError:
            tid = None
        tp = by_id.get(tid)
        if tp is None:
            raise PlanError(f"--only {entry!r}: task {name!r} is not in the plan; expected one of "
                            f"{[t.task for t in plan]}")
        if level and level not in tp.levels:
            raise PlanError(f"--only {entry!r}: level {level!r} is not planned for {tp.task}; expected one of "
                            f"{list(tp.levels)}")
        wanted |= {(tp.task, lv) for lv in ([level] if level else tp.levels)}
    return [(tp, lv) for tp, lv in rows if (tp.task, lv) in wanted]


# ============================================================================================== running commands
def rel(path: str | Path) -> str:
    """A path as commands show it: relative to the repository root when inside it."""
    p = Path(path)
    absolute = p if p.is_absolute() else ROOT / p
    try:
        return str(absolute.resolve().relative_to(ROOT))
    except ValueError:
        return str(absolute)


class Runner:
    """Runs ``diffthinker`` commands from the repository root: in a subprocess (``python -m diffthinker``, with
    ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` set to ``threads``) or, for tests, in this process
    (``diffthinker.cli.main``: the same code). Records every command as typed for RESULTS.md."""

    def __init__(self, threads: int, *, dry_run: bool = False, in_process: bool = False, log: Any = None):
        self.threads = threads
        self.dry_run = dry_run
        self.in_process = in_process
        self.log = log if log is not None else sys.stderr
        self.count = 0

    def shown(self, argv: Sequence[str]) -> str:
        return f"OMP_NUM_THREADS={self.threads} diffthinker {shlex.join(argv)}"

    def run(self, argv: Sequence[str]) -> str:
        """Run ``diffthinker <argv>``; return its stdout. A failure raises RuntimeError with the command and the
        end of its error output."""
        self.count += 1
        print(f"[make_results] {self.shown(argv)}", file=self.log, flush=True)
        if self.dry_run:
            return ""
        t0 = time.perf_counter()
        if self.in_process:
            from diffthinker.cli import main

            out, err = io.StringIO(), io.StringIO()
            cwd = os.getcwd()
            os.chdir(ROOT)
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    code = main(list(argv))
            finally:
                os.chdir(cwd)
            stdout, stderr = out.getvalue(), err.getvalue()
        else:
            env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
            proc = subprocess.run([sys.executable, "-m", "diffthinker", *argv], cwd=ROOT, env=env,
                                  capture_output=True, text=True, check=False)
            code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        if code != 0:
            tail = "\n".join(stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"command failed with exit code {code}: {self.shown(argv)}\n{tail}")
        print(f"[make_results]   done in {time.perf_counter() - t0:.1f} s", file=self.log, flush=True)
        return stdout


def recorded_command(meta: dict[str, Any] | None) -> list[str] | None:
    """The command an artefact records (manifest or run JSON), without ``--overwrite`` (how the output was
    replaced does not change what it holds)."""
    if not meta or not isinstance(meta.get("command"), list):
        return None
    return [c for c in meta["command"] if c != "--overwrite"]


def newest_mtime(path: Path) -> float:
    """The newest modification time of a file or of any file under a folder."""
    if path.is_file():
        return path.stat().st_mtime
    times = [p.stat().st_mtime for p in path.rglob("*") if p.is_file()]
    return max(times, default=0.0)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def checkpoint_kind(path: Path) -> str | None:
    if (path / DIFFUSION_MARKER).is_file():
        return "diffusion"
    if (path / MLLM_MARKER).is_file():
        return "mllm"
    return None


# ============================================================================================== the no-overlap check
@dataclass
class NeverTrained:
    """What a checkpoint's own record says it never trained on: ``hashes`` (content hashes) and how we know."""

    hashes: frozenset[str]
    how: str


def _fingerprint(hashes: Iterable[str]) -> str:
    from diffthinker.tasks.level_specs import hash_fingerprint  # what model cards and policy records use

    return hash_fingerprint(hashes)


def _distinct_hashes(task_name: str, level: str, seeds: Iterable[int]) -> list[str]:
    """Content hashes of the puzzles at ``seeds``, first occurrences only (validation sets skip duplicates)."""
    from diffthinker.tasks import get_task

    task = get_task(task_name)
    out, seen = [], set()
    for s in seeds:
        h = task.content_hash(task.generate(level, s))
        if h not in seen:
            seen.add(h)
            out.append(h)
    return out


def _cached(cache: Path | None, key: dict[str, Any], build: Any) -> list[str]:
    """``build()`` memoised in ``cache/never_trained/<sha of key>.json`` (regenerating 1200 VSP maps takes a minute)."""
    if cache is None:
        return build()
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    path = cache / "never_trained" / f"{digest}.json"
    data = read_json(path)
    if data is not None and data.get("key") == key:
        return list(data["hashes"])
    hashes = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "hashes": hashes}) + "\n")
    return hashes


_SHA = r"`([0-9a-f]{64})`"
_CARD_BLOCKED = re.compile(r"^- never trained on: (\d+) content hashes \((.*)\); fingerprint sha256 " + _SHA, re.MULTILINE)
_CARD_VALIDATION = re.compile(r"^- validation set: (\d+) puzzles, seeds (.*); content-hash fingerprint sha256 " + _SHA,
                              re.MULTILINE)
_CARD_SEEDS = re.compile(r"([A-Za-z0-9_.-]+):([^:;\s]+): (\d+)\.\.(\d+) \((\d+)\)")


def diffusion_never_trained(ckpt: Path, cache: Path | None = None) -> NeverTrained:
    """From the pipeline's model card (README.md, written by ``train_diffusion``): the validation set is re-drawn
    from the seeds the card lists and must reproduce the card's fingerprint exactly; the blocked set ("never
    trained on") contains it by construction (``BlockedHashes.build``). A card that lacks either line, or whose
    fingerprint does not reproduce, raises ValueError naming what is missing."""
    card_path = ckpt / "README.md"
    if not card_path.is_file():
        raise ValueError(f"{ckpt} has no model card (README.md): nothing records what it never trained on")
    card = card_path.read_text()
    blocked, val = _CARD_BLOCKED.search(card), _CARD_VALIDATION.search(card)
    if blocked is None or val is None:
        raise ValueError(f"the model card {card_path} lacks the 'never trained on' or 'validation set' line "
                         "(count, seeds per level, content-hash fingerprint)")
    sources = {k: int(v) for k, v in re.findall(r"(\S+): (\d+)", blocked.group(2))}
    specs = [(t, lv, int(a), int(b), int(c)) for t, lv, a, b, c in _CARD_SEEDS.findall(val.group(2))]
    if not specs:
        raise ValueError(f"the model card {card_path} lists no validation seeds per level: {val.group(2)!r}")
    hashes: list[str] = []
    for t, lv, a, b, count in specs:
        got = _cached(cache, {"kind": "seeds", "task": t, "level": lv, "first": a, "last": b},
                      lambda t=t, lv=lv, a=a, b=b: _distinct_hashes(t, lv, range(a, b + 1)))
        if len(got) != count:
            raise ValueError(f"{card_path}: seeds {t}:{lv} {a}..{b} give {len(got)} distinct puzzles, the card says "
                             f"{count}")
        hashes += got
    if len(set(hashes)) != int(val.group(1)) or _fingerprint(hashes) != val.group(3):
        raise ValueError(f"{card_path}: the validation set re-drawn from its seeds does not reproduce the card's "
                         f"fingerprint {val.group(3)[:12]}... (task code changed since training?)")
    if sources.get("validation") != int(val.group(1)):
        raise ValueError(f"{card_path}: the 'never trained on' sources {sources} do not include the whole validation "
                         f"set ({val.group(1)})")
    extra = {k: v for k, v in sources.items() if k != "validation"}
    how = (f"model card: validation set of {val.group(1)} puzzles re-drawn from its listed seeds reproduces the "
           f"fingerprint `{val.group(3)[:12]}`; training blocked it"
           + (f" and {sum(extra.values())} more hashes ({', '.join(extra)})" if extra else "")
           + f" (never trained on: {blocked.group(1)} hashes, fingerprint `{blocked.group(3)[:12]}`)")
    return NeverTrained(frozenset(hashes), how)


def mllm_never_trained(ckpt: Path, cache: Path | None = None, _depth: int = 0) -> NeverTrained:
    """From the policy's saved training info (``diffthinker_policy.json`` -> ``training.config``): the evaluation
    set (``eval.levels`` or ``data.levels``, ``eval.n`` split evenly, consecutive seeds from ``eval.seed``,
    duplicates skipped: ``diffthinker.tasks.level_specs.held_out_puzzles``) plus ``data.exclude`` folders, which
    training blocks by content hash; re-derived from the config and, where the policy records it
    (``training.held_out``), matched against the recorded fingerprint. When the run started from another saved policy (an RL run from its SFT
    policy), that policy's training must have blocked the test set too: the result is the intersection."""
    meta = read_json(ckpt / MLLM_MARKER)
    train = (meta or {}).get("training")
    if not isinstance(train, dict) or not isinstance(train.get("config"), dict):
        raise ValueError(f"{ckpt / MLLM_MARKER} holds no training.config: nothing records what it never trained on")
    cfg = train["config"]
    try:
        levels = (cfg["eval"].get("levels") or cfg["data"]["levels"])
        n, seed = int(cfg["eval"]["n"]), int(cfg["eval"]["seed"])
        exclude = list(cfg["data"].get("exclude") or [])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{ckpt / MLLM_MARKER}: training.config lacks eval.n / eval.seed / data.levels ({exc})") \
            from None
    def build() -> list[str]:
        from diffthinker.tasks.level_specs import held_out_puzzles, parse_level_specs

        return [p.content_hash for p in held_out_puzzles(parse_level_specs(levels), n, seed)]

    eval_hashes = _cached(cache, {"kind": "held_out_puzzles", "levels": list(levels), "n": n, "seed": seed}, build)
    hashes: set[str] = set(eval_hashes)
    how = f"policy training config: evaluation set {levels} n={n} seed={seed}"
    if exclude:
        from diffthinker.data.dedup import collect_hashes

        missing = [e for e in exclude if not Path(e).exists()]
        if missing:
            how += f"; exclude folders not found here, left out: {missing}"
        hashes |= collect_hashes([e for e in exclude if Path(e).exists()])
        how += f" + exclude {[e for e in exclude if Path(e).exists()]}"
    recorded = ((train.get("held_out") or {}).get("evaluation_set") or {}).get("fingerprint")
    if recorded is None:
        how += " (re-derived; this policy predates recorded fingerprints)"
    elif recorded != _fingerprint(eval_hashes):
        raise ValueError(f"{ckpt / MLLM_MARKER}: the evaluation set re-derived from its config does not reproduce "
                         f"the recorded fingerprint {recorded[:12]}... (task code changed since training?)")
    else:
        how += f" (reproduces the recorded fingerprint `{recorded[:12]}`)"
    init = Path(str((cfg.get("model") or {}).get("name_or_path") or ""))
    if _depth < 4 and len(init.parts) > 1:  # a one-word name is a preset built from config ("tiny"): no training
        start = saved_policy(init, ckpt)
        if start is None:
            how += (f"; started from {init}, not a saved policy on this machine nor shipped beside it: that stage's "
                    f"training is not checked")
        else:
            parent = mllm_never_trained(start, cache, _depth + 1)
            hashes &= parent.hashes
            via = f" (its shipped copy {rel(start)})" if start != init else ""
            how += f"; started from {rel(init)}{via}: {parent.how}"
    return NeverTrained(frozenset(hashes), how)


def saved_policy(init: Path, near: Path) -> Path | None:
    """The policy folder a run started from: ``init`` itself or, where that training-machine folder is gone (runs/
    is not committed), its shipped copy among ``near``'s siblings: the card ship_checkpoint.py writes names the
    source ("Copied from `<init>`"). None when neither is here."""
    if (init / MLLM_MARKER).is_file():
        return init
    siblings = sorted(near.parent.iterdir()) if near.parent.is_dir() else []
    for folder in siblings:
        card = folder / "README.md"
        if (folder / MLLM_MARKER).is_file() and card.is_file() and f"Copied from `{init}`" in card.read_text():
            return folder
    return None


def check_never_trained(kind: str, ckpt: Path, test_hashes: Sequence[str], cache: Path | None = None
                        ) -> tuple[bool | None, str]:
    """(ok, text): ok True when every test hash is one the checkpoint never trained on, False when some are not,
    None when the checkpoint's record cannot tell (the text says what it lacks)."""
    try:
        record = (diffusion_never_trained if kind == "diffusion" else mllm_never_trained)(ckpt, cache)
    except ValueError as exc:
        return None, f"cannot check: {exc}"
    inside = sum(h in record.hashes for h in test_hashes)
    if inside == len(test_hashes):
        return True, f"all {inside} test puzzles never trained on ({record.how})"
    return False, (f"OVERLAP: {len(test_hashes) - inside} of {len(test_hashes)} test puzzles are outside what the "
                   f"checkpoint never trained on ({record.how})")


def dataset_hashes(folder: Path) -> list[str]:
    from diffthinker.data.store import load_dataset

    return list(load_dataset(folder)["content_hash"])


# ============================================================================================== the work
@dataclass
class Eval:
    """One ``diffthinker eval`` of one system on one dataset."""

    system: str             # SYSTEMS key (+ "-greedy")
    label: str
    checkpoint: str | None  # None: no checkpoint planned
    argv: list[str]
    json: Path
    status: str = "pending"  # pending (no checkpoint) | ran | reused | planned (dry run / not selected)
    run: dict[str, Any] | None = None
    overlap: tuple[bool | None, str] | None = None

    def row(self, samples: int, select: str = SELECT) -> dict[str, Any] | None:
        if self.run is None:
            return None
        return next((r for r in self.run["summary"] if r["samples"] == samples and r["select"] == select
                     and r["level"] != "all"), None)


@dataclass
class LevelResult:
    tp: TaskPlan
    level: str
    data: Path
    data_argv: list[str]
    evals: list[Eval]
    official: str | None = None  # the official folder's path relative to the root, None when not published
    official_data: Path | None = None
    official_argv: list[str] | None = None
    official_items: int | None = None
    official_evals: list[Eval] = field(default_factory=list)
    official_note: str = ""
    compare_argv: list[str] | None = None
    compare_dir: Path | None = None
    n_items: int | None = None


@dataclass
class Context:
    """Everything the markdown needs."""

    rows: list[LevelResult]
    n: int
    threads: int
    official_root: str
    overrides: dict[str, str]
    only: list[str]
    out_doc: Path
    assets: Path
    cache: Path
    date: str
    machine: dict[str, Any]
    commands: dict[str, list[str]]  # task -> commands shown (as run, or to run)
    argv: list[str] = field(default_factory=list)  # this script's own arguments


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info: dict[str, Any] = {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
                            "python": platform.python_version()}
    with contextlib.suppress(Exception):
        import torch

        info["torch"] = torch.__version__
    return info


def _eval_argv(ckpt: str, data: Path, json_path: Path, name: str, samples: str, extra: Sequence[str] = ()
               ) -> list[str]:
    return ["eval", "--checkpoint", ckpt, "--data", rel(data), "--samples", samples, "--select", SELECT,
            "--name", name, "--examples", str(EXAMPLES), "--json", rel(json_path), *extra, "--quiet"]


def plan_evals(tp: TaskPlan, data: Path, evals_dir: Path, overrides: dict[str, str]) -> list[Eval]:
    out = []
    for key, label, attr in SYSTEMS:
        ckpt = overrides.get(key) or getattr(tp, attr)
        out.append(Eval(key, label, ckpt, _eval_argv(ckpt, data, evals_dir / f"{key}.json", key, ",".join(map(str, SAMPLES))),
                        evals_dir / f"{key}.json"))
        if key.startswith("mllm"):  # the policy's own answer: greedy decoding
            g = f"{key}-greedy"
            out.append(Eval(g, f"{label} greedy", ckpt,
                            _eval_argv(ckpt, data, evals_dir / f"{g}.json", g, "1", ["--temperature", "0"]),
                            evals_dir / f"{g}.json"))
    return out


def ensure_dataset(runner: Runner, argv: list[str], out: Path, execute: bool) -> bool:
    """Build ``out`` with ``argv`` unless it exists with the same recorded command. Returns whether it exists."""
    from diffthinker.data.store import read_manifest

    have = out.exists()
    if have and recorded_command(read_manifest(out)) == ["diffthinker", *argv]:
        return True
    if not execute:
        return False
    if not runner.dry_run:
        out.parent.mkdir(parents=True, exist_ok=True)
    runner.run(argv + (["--overwrite"] if have else []))
    return True  # (in a dry run: it would exist)


def ensure_eval(runner: Runner, ev: Eval, data: Path, data_ok: bool, execute: bool, force: bool) -> None:
    """Reuse or run one eval. ``data_ok``: the dataset exists as this run's command makes it (or will, in a dry
    run); otherwise an old JSON may belong to another test set and is not used."""
    from diffthinker.data.store import MANIFEST

    ckpt = ROOT / ev.checkpoint if ev.checkpoint else None
    if ckpt is None or checkpoint_kind(ckpt) is None:
        ev.status = "pending"
        if runner.dry_run and execute:
            print(f"[make_results] # pending, no checkpoint {ev.checkpoint}: {runner.shown(ev.argv)}", file=runner.log)
        return
    ev.status = "planned"
    if not data_ok:
        return
    run = read_json(ev.json) if ev.json.is_file() else None
    fresh = (run is not None and (data / MANIFEST).is_file()
             and recorded_command(run) == ["diffthinker", *ev.argv]
             and ev.json.stat().st_mtime >= max(newest_mtime(ckpt), newest_mtime(data / MANIFEST)))
    if fresh and not force:
        ev.status, ev.run = "reused", run
        return
    if not execute:
        return
    if not runner.dry_run:
        ev.json.parent.mkdir(parents=True, exist_ok=True)
    runner.run(ev.argv)
    if runner.dry_run:
        ev.status = "planned"
        return
    ev.status, ev.run = "ran", read_json(ev.json)


def ensure_compare(runner: Runner, res: LevelResult, execute: bool) -> None:
    runs = [ev.json for ev in res.evals if ev.run is not None or (runner.dry_run and ev.status == "planned")]
    if not runs:
        return
    out = res.compare_dir
    assert out is not None
    argv = ["compare", *map(rel, runs), "--out", rel(out)]
    res.compare_argv = argv
    readme = out / "README.md"
    from diffthinker.data.store import read_manifest

    if (not runner.dry_run and readme.is_file() and recorded_command(read_manifest(out)) == ["diffthinker", *argv]
            and readme.stat().st_mtime >= max(p.stat().st_mtime for p in runs)):
        return
    if execute:
        out.parent.mkdir(parents=True, exist_ok=True)
        runner.run(argv + (["--overwrite"] if out.exists() else []))


def run_level(runner: Runner, tp: TaskPlan, level: str, *, n: int, cache: Path, assets: Path, official_root: Path,
              overrides: dict[str, str], execute: bool, force: bool) -> LevelResult:
    """Everything for one (task, level): test set, evals, overlap checks, official folder, comparison. With
    ``execute`` False (a level outside --only) only what already exists is read; nothing runs."""
    stem = f"{tp.task}_{level}"
    data = cache / stem
    data_argv = ["generate", "--task", tp.task, "--level", level, "--n", str(n), "--seed", str(TEST_SEED),
                 "--size", str(tp.size), "--out", rel(data), "--quiet"]
    res = LevelResult(tp, level, data, data_argv,
                      plan_evals(tp, data, cache / "evals" / stem, overrides),
                      compare_dir=assets / tp.task / level)
    have_data = ensure_dataset(runner, data_argv, data, execute)
    for ev in res.evals:
        ensure_eval(runner, ev, data, have_data, execute, force)
    if have_data and not runner.dry_run:
        hashes = dataset_hashes(data)
        res.n_items = len(hashes)
        for ev in res.evals:
            if ev.run is not None and ev.checkpoint:
                ckpt = ROOT / ev.checkpoint
                ev.overlap = check_never_trained(checkpoint_kind(ckpt) or "", ckpt, hashes, cache)
    # the official folder of this level, if the plan names one and the root holds it
    res.official = tp.official.get(level)
    if res.official is not None:
        src = official_root / res.official
        if not src.is_dir():
            res.official_note = f"not in {rel(official_root)}"
        else:
            name = "official_" + res.official.replace("/", "_")
            res.official_data = cache / name
            res.official_argv = ["import", rel(src), "--out", rel(res.official_data), "--task", tp.task, "--quiet"]
            have = ensure_dataset(runner, res.official_argv, res.official_data, execute)
            if have and not runner.dry_run:
                from diffthinker.data.store import read_manifest

                res.official_items = int((read_manifest(res.official_data) or {}).get("counts", {}).get("total", 0))
            res.official_evals = plan_evals(tp, res.official_data, cache / "evals" / name, overrides)
            for ev in res.official_evals:
                ensure_eval(runner, ev, res.official_data, have, execute, force)
    ensure_compare(runner, res, execute)
    return res


# ============================================================================================== markdown
def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def cell(ev: Eval | None, samples: int, mark: str = "") -> str:
    """``93.5% (0.41 s)``: accuracy with seconds per puzzle, or why there is no number."""
    if ev is None:
        return "–"
    r = ev.row(samples)
    if r is None:
        if ev.status == "pending":
            return "pending"
        return "not run yet"
    secs = r.get("seconds_per_puzzle")
    t = f" ({secs:.2f} s)" if secs is not None else ""
    return f"{_pct(r['accuracy'])}{mark}{t}"


def _by_system(evals: Sequence[Eval]) -> dict[str, Eval]:
    return {ev.system: ev for ev in evals}


def mllm_n1(evals: dict[str, Eval], key: str) -> str:
    """The MLLM N=1 cell: its greedy answer."""
    return cell(evals[f"{key}-greedy"], 1)


def summary_table(ctx: Context) -> list[str]:
    lines = [f"| task | level | n | diffusion N=1 | diffusion N={SAMPLES[-1]} {SELECT} | MLLM SFT | MLLM RL |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for res in ctx.rows:
        by = _by_system(res.evals)
        lines.append(f"| {res.tp.task} | {res.level} | {res.n_items if res.n_items is not None else ctx.n} | "
                     f"{cell(by['diffusion'], 1)} | {cell(by['diffusion'], SAMPLES[-1])} | {mllm_n1(by, 'mllm-sft')} | "
                     f"{mllm_n1(by, 'mllm-rl')} |")
    return lines


def summary_notes(ctx: Context) -> list[str]:
    notes = ["Accuracy on fresh seeded test puzzles (never trained on: a content-hash check, in docs/RESULTS.md), "
             "with wall seconds per puzzle (sampling + parsing + verification) in brackets; *pending*: the checkpoint "
             "does not exist yet. The MLLM SFT and RL columns are greedy decoding (`--temperature 0`); the full table "
             "also lists their N=1 sampled at temperature 1."]
    return notes


def full_table(ctx: Context) -> list[str]:
    top = f"N={SAMPLES[-1]} {SELECT}"
    head = ["diffusion N=1", f"diffusion {top}"]
    for key, label, _ in SYSTEMS[1:]:
        head += [f"{label} N=1 (sampled)", f"{label} greedy", f"{label} {top}"]
    lines = ["| task | level | " + " | ".join(head) + " |", "|---|---|" + "---:|" * len(head)]
    for res in ctx.rows:
        by = _by_system(res.evals)
        cells = [cell(by["diffusion"], 1), cell(by["diffusion"], SAMPLES[-1])]
        for key, _, _ in SYSTEMS[1:]:
            cells += [cell(by[key], 1), cell(by[f"{key}-greedy"], 1), cell(by[key], SAMPLES[-1])]
        lines.append(f"| {res.tp.task} | {res.level} | " + " | ".join(cells) + " |")
    return lines


def overlap_table(ctx: Context) -> list[str]:
    lines = ["| task | level | system | checkpoint | never trained on the test set? |", "|---|---|---|---|---|"]
    for res in ctx.rows:
        seen = set()
        for ev in res.evals:
            base = ev.system.removesuffix("-greedy")
            if base in seen:
                continue
            seen.add(base)
            if ev.overlap is None:
                text = "pending (no checkpoint)" if ev.status == "pending" else "not checked yet (not evaluated)"
            else:
                ok, msg = ev.overlap
                text = {True: "yes: ", False: "**NO**: ", None: "unknown: "}[ok] + msg
            lines.append(f"| {res.tp.task} | {res.level} | {ev.label} | `{ev.checkpoint}` | {text} |")
    return lines


def official_table(ctx: Context) -> list[str]:
    lines = [f"| task | level | folder | items | diffusion N=1 | diffusion N={SAMPLES[-1]} {SELECT} | MLLM SFT | "
             "MLLM RL |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for res in ctx.rows:
        if res.official is None:
            continue
        if not res.official_evals:
            lines.append(f"| {res.tp.task} | {res.level} | `{res.official}` | – | {res.official_note} | | | |")
            continue
        by = _by_system(res.official_evals)
        items = res.official_items if res.official_items is not None else "–"
        lines.append(f"| {res.tp.task} | {res.level} | `{res.official}` | {items} | {cell(by['diffusion'], 1)} | "
                     f"{cell(by['diffusion'], SAMPLES[-1])} | {mllm_n1(by, 'mllm-sft')} | {mllm_n1(by, 'mllm-rl')} |")
    return lines


def copy_example(ctx: Context, task: str, rows: Sequence[LevelResult]) -> list[str]:
    """One solved example per task, copied into the assets: of the first system (diffusion first) with a solved
    example at some level, the solved example with the longest answer (a one-move maze shows little)."""
    for ev_index in range(len(SYSTEMS) * 2):
        found = [(res, ev, shot) for res in rows for ev in res.evals[ev_index:ev_index + 1] if ev.run is not None
                 for shot in ev.run.get("examples", []) if shot.get("status") == "correct"]
        if found:
            res, ev, shot = max(found, key=lambda f: len(str(f[2].get("answer") or "")))
            dest = ctx.assets / task
            dest.mkdir(parents=True, exist_ok=True)
            shown = []
            for kind in ("problem", "output"):
                if shot.get(kind):
                    target = dest / f"example_{kind}.png"
                    shutil.copyfile(ev.json.parent / shot[kind], target)
                    shown.append(f"<img src=\"{_doc_rel(ctx, target)}\" width=\"192\" alt=\"{kind}\">")
            read = "answer read back from the pixels" if shown[1:] else "answer"
            return [f"Solved example ({ev.label}, level {res.level}, `{shot['id']}`): problem | output "
                    f"({read}: `{shot.get('answer')}`)", "", " ".join(shown), ""]
    return ["No solved example yet.", ""]


def _doc_rel(ctx: Context, path: Path) -> str:
    return os.path.relpath(path, ctx.out_doc.parent)


def task_section(ctx: Context, task: str, rows: Sequence[LevelResult]) -> list[str]:
    lines = [f"## {task}", "", "Commands (from the repository root):", "", "```bash"]
    lines += ctx.commands.get(task, []) + ["```", ""]
    for res in rows:
        if res.compare_argv is not None and res.compare_dir is not None and (res.compare_dir / "README.md").is_file():
            d = _doc_rel(ctx, res.compare_dir)
            lines += [f"Level {res.level}: [full comparison]({d}/README.md) (accuracy, time, valid and parse-failure "
                      f"rates, failure examples)", "",
                      f"<img src=\"{d}/accuracy_vs_samples.png\" width=\"360\" alt=\"accuracy against N\"> "
                      f"<img src=\"{d}/accuracy_vs_seconds.png\" width=\"360\" alt=\"accuracy against seconds\">", ""]
        else:
            lines += [f"Level {res.level}: no evaluation yet.", ""]
    lines += copy_example(ctx, task, rows)
    return lines


def provisional_reasons(ctx: Context) -> list[str]:
    reasons = []
    if ctx.n != DEFAULT_N:
        reasons.append(f"n = {ctx.n} puzzles per level, not {DEFAULT_N}")
    if ctx.overrides:
        reasons.append("stand-in checkpoints override the plan: "
                       + ", ".join(f"{k} = `{v}`" for k, v in sorted(ctx.overrides.items())))
    missing = sorted({ev.checkpoint for r in ctx.rows for ev in r.evals if ev.status == "pending"})
    if missing:
        reasons.append(f"{len(missing)} planned checkpoints do not exist yet ({', '.join(f'`{m}`' for m in missing)})")
    unrun = [f"{r.tp.task}:{r.level}" for r in ctx.rows if any(ev.status == "planned" for ev in r.evals)]
    if unrun:
        reasons.append(f"not evaluated yet: {', '.join(unrun)}")
    return reasons


def render_markdown(ctx: Context) -> tuple[str, str]:
    """(RESULTS.md, summary.md) from the collected results."""
    reasons = provisional_reasons(ctx)
    m = ctx.machine
    made_by = shlex.join(["python", "benchmarks/make_results.py", *ctx.argv])
    lines = ["# Results: the diffusion reasoner against the MLLM baseline", ""]
    if reasons:
        lines += ["> **PROVISIONAL.** " + "; ".join(reasons) + ". The final numbers come from a full run, "
                  "`python benchmarks/make_results.py`, once every checkpoint exists.", ""]
    lines += [
        (f"Made by `{made_by}` (resumable; `--force` redoes the evaluations) on {ctx.date}: {m.get('cpu')} "
         f"({m.get('cpu_count')} cores), {ctx.threads} thread(s) per command, Python {m.get('python')}, torch "
         f"{m.get('torch', '?')}; {m.get('platform')}. Every number comes from `diffthinker eval` and "
         "`diffthinker compare`, run with the commands listed per task below."), "",
        (f"Test sets: `diffthinker generate --seed {TEST_SEED} --n {ctx.n} --size S` per level (S: the diffusion "
         f"model's resolution, {', '.join(f'{tp.task} {tp.size}' for tp in PLAN)} px), the puzzles the trainings "
         f"held out (their validation sets). Every system: one sample (N=1), and "
         f"N={SAMPLES[-1]} samples with verifier selection (the sample ranked best by the puzzle's own rules, "
         "from the instance alone: valid first, then its score, e.g. the shortest valid tour); each N is its own "
         f"timed run, seed {TEST_SEED} (sample k of puzzle i is seeded from the run seed, the item id and k)."), ""]
    lines += ["## Summary", "", *summary_table(ctx), "", *summary_notes(ctx), "",
              f"The short table alone: [results/summary.md]({_doc_rel(ctx, ctx.assets / 'summary.md')}).", ""]
    lines += ["## All configurations", "", *full_table(ctx), ""]
    lines += ["## The test sets were never trained on", "",
              ("For each checkpoint and level, the test set's content hashes are checked against what the "
               "checkpoint's own record says it never trained on: a diffusion pipeline's model card lists its "
               "validation seeds and the fingerprint of that set (re-drawn here and matched); an MLLM policy's "
               "training config names its evaluation set (re-derived here)."), "", *overlap_table(ctx), ""]
    samples_only = ctx.official_root == DEFAULT_OFFICIAL_ROOT
    lines += ["## Official DiffThinker test folders", "",
              (f"The published test folders for the levels our checkpoints cover, imported with `diffthinker "
               f"import` from `{ctx.official_root}`"
               + (" (a few sample items per folder: a check of the format, not a benchmark; pass `--official-root` "
                  "with a checkout of the published test data for the real numbers)" if samples_only else "")
               + ". Sudoku 4x4 and TSP 6/8 are our CPU levels and have no published folder. Training excludes by "
               "content hash the generated test sets (and any folder a checkpoint's record lists), not these "
               "items: a level with few distinct puzzles (VSP 3 has about 3000 maps) may have drawn some of them as "
               "training puzzles."), "", *official_table(ctx), ""]
    for tp in dict.fromkeys(r.tp.task for r in ctx.rows):
        lines += task_section(ctx, tp, [r for r in ctx.rows if r.tp.task == tp])
    summary = ["<!-- made by benchmarks/make_results.py; see docs/RESULTS.md -->", ""]
    if reasons:
        summary += [f"Provisional: {'; '.join(reasons)}.", ""]
    summary += [*summary_table(ctx), "", *summary_notes(ctx)]
    return "\n".join(lines).rstrip() + "\n", "\n".join(summary).rstrip() + "\n"


# ============================================================================================== main
def collect_commands(runner: Runner, rows: Sequence[LevelResult]) -> dict[str, list[str]]:
    """Per task, the commands that made (or will make) its numbers, in order; pending ones commented."""
    out: dict[str, list[str]] = {}
    for res in rows:
        cmds = out.setdefault(res.tp.task, [])
        cmds.append(runner.shown(res.data_argv))
        for ev in res.evals:
            line = runner.shown(ev.argv)
            cmds.append(f"# pending: {ev.checkpoint} does not exist yet\n# {line}" if ev.status == "pending" else line)
        if res.official_argv is not None:
            cmds.append(runner.shown(res.official_argv))
            for ev in res.official_evals:
                if ev.status != "pending":
                    cmds.append(runner.shown(ev.argv))
        if res.compare_argv is not None:
            cmds.append(runner.shown(res.compare_argv))
    return out


def readme_table_span(readme: Path) -> tuple[str, int, int]:
    """(text, start, end) of ``readme``: its text and where README_START and README_END begin; PlanError naming
    the file when it lacks them (checked before any evaluation runs, and again when the table is written)."""
    text = readme.read_text() if readme.is_file() else ""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise PlanError(f"{rel(readme)} has no results-table markers; expected a line {README_START!r} and, "
                        f"after it, a line {README_END!r}")
    return text, start, end


def write_readme_table(readme: Path, summary: str) -> None:
    """Replace what ``readme`` holds between README_START and README_END with ``summary`` (summary.md without its
    leading comment). Written to a temporary file and renamed, so a failed write leaves the README as it was."""
    text, start, end = readme_table_span(readme)
    body = "\n".join(line for line in summary.splitlines() if not line.startswith("<!-- made by")).strip()
    new = text[:start + len(README_START)] + "\n" + body + "\n" + text[end:]
    if new != text:
        tmp = readme.with_name(readme.name + ".tmp")
        tmp.write_text(new)
        tmp.replace(readme)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=DEFAULT_N, help=f"test puzzles per level (default {DEFAULT_N})")
    p.add_argument("--only", action="append", default=[], metavar="TASK[:LEVEL]",
                   help="run only these (comma-separated or repeated); the document still shows every planned "
                        "level, with what earlier runs left in the cache")
    p.add_argument("--out-doc", type=Path, default=ROOT / "docs" / "RESULTS.md",
                   help="the results document (its assets go to results/ beside it)")
    p.add_argument("--readme", type=Path, default=None,
                   help="also write the summary table into this markdown file, between its results-table markers "
                        "(default: README.md when --out-doc is the default and the document is final, i.e. not "
                        "provisional)")
    p.add_argument("--cache-dir", type=Path, default=ROOT / "runs" / "results",
                   help="test sets, imports and eval JSONs (default runs/results)")
    p.add_argument("--official-root", type=Path, default=ROOT / DEFAULT_OFFICIAL_ROOT,
                   help="a checkout of the published DiffThinker test data (same layout: Maze/8_test, ...)")
    p.add_argument("--force", action="store_true", help="re-run evaluations whose JSON exists")
    p.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of each command (default 2)")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    g = p.add_argument_group("stand-in checkpoints (testing; the document is then marked provisional)")
    for key, label, _ in SYSTEMS:
        g.add_argument(f"--{key}", metavar="PATH", help=f"use this {label} checkpoint for every selected task")
    return p


def main(argv: Sequence[str] | None = None, *, in_process: bool = False) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.n < 1:
            raise PlanError(f"--n must be a positive integer, got {args.n}")
        if args.threads < 1:
            raise PlanError(f"--threads must be a positive integer, got {args.threads}")
        check_plan(PLAN)
        selected = parse_only(args.only)
        overrides = {key: rel(getattr(args, key.replace("-", "_"))) for key, _, _ in SYSTEMS
                     if getattr(args, key.replace("-", "_"))}
        for key, path in overrides.items():
            if checkpoint_kind(ROOT / path) is None:
                raise PlanError(f"--{key} {path}: not a checkpoint folder; expected {DIFFUSION_MARKER} or "
                                f"{MLLM_MARKER} inside")
    except PlanError as exc:
        print(f"make_results: error: {exc}", file=sys.stderr)
        return 2
    runner = Runner(args.threads, dry_run=args.dry_run, in_process=in_process)
    cache = args.cache_dir if args.cache_dir.is_absolute() else ROOT / args.cache_dir
    out_doc = args.out_doc if args.out_doc.is_absolute() else ROOT / args.out_doc
    readme = args.readme if args.readme is None or args.readme.is_absolute() else ROOT / args.readme
    if readme is None and out_doc == ROOT / "docs" / "RESULTS.md":
        readme = ROOT / "README.md"
    if readme is not None:  # checked before hours of evaluation, not after
        try:
            readme_table_span(readme)
        except PlanError as exc:
            print(f"make_results: error: {exc}", file=sys.stderr)
            return 2
    assets = out_doc.parent / "results"
    official_root = args.official_root if args.official_root.is_absolute() else ROOT / args.official_root
    chosen = {(tp.task, lv) for tp, lv in selected}
    rows = []
    for tp in PLAN:
        for level in tp.levels:
            execute = (tp.task, level) in chosen
            # stand-ins replace the plan's checkpoints of the selected levels only
            rows.append(run_level(runner, tp, level, n=args.n, cache=cache, assets=assets,
                                  official_root=official_root, overrides=overrides if execute else {},
                                  execute=execute, force=args.force))
    if args.dry_run:
        return 0
    ctx = Context(rows=rows, n=args.n, threads=args.threads, official_root=rel(official_root), overrides=overrides,
                  only=args.only, out_doc=out_doc, assets=assets, cache=cache,
                  date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), machine=machine_info(),
                  commands=collect_commands(runner, rows), argv=list(sys.argv[1:] if argv is None else argv))
    results, summary = render_markdown(ctx)
    assets.mkdir(parents=True, exist_ok=True)
    out_doc.write_text(results)
    (assets / "summary.md").write_text(summary)
    print(f"[make_results] wrote {rel(out_doc)} and {rel(assets / 'summary.md')} ({runner.count} commands run)",
          file=sys.stderr)
    if readme is not None and provisional_reasons(ctx) and args.readme is None:
        # the default README shows final numbers only
        print("[make_results] README.md left as it was: the document is provisional", file=sys.stderr)
        readme = None
    if readme is not None:
        try:
            write_readme_table(readme, summary)
        except (PlanError, OSError) as exc:
            print(f"make_results: error: {exc}", file=sys.stderr)
            return 2
        print(f"[make_results] wrote the summary table into {rel(readme)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
