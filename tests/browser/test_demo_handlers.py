"""The demo's Python side without a browser: puzzles, uploads, checkpoints, solving, and its error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from diffthinker import cli, inference
from diffthinker.demo import DemoHandlers, DemoSettings, ModelRegistry, parse_args
from diffthinker.demo.handlers import OUTPUTS, frame_grid, verdict_label
from diffthinker.demo.puzzles import MISMATCH_LIMIT, DemoError, generate_puzzle, load_upload, mismatch_fraction
from diffthinker.solver_api import RawCandidate
from diffthinker.tasks import get_task

from .conftest import FIXTURES, RESOLUTION

ROOT = Path(__file__).resolve().parents[2]

# (task, problem image, metadata file) of one official item per layout
OFFICIAL = [
    ("maze", "Maze/8_test/8_1_001.png", "Maze/8_test/8_1_001.txt"),
    ("tsp", "TSP/12_test/16_12_001.png", "TSP/12_test/16_12_001.txt"),
    ("sudoku", "Sudoku/45_test/45_001.png", "Sudoku/45_test/45_001.txt"),
    ("jigsaw", "Jigsaw/2x2_test/2x2_00001.png", "Jigsaw/2x2_test/2x2_00001.txt"),
    ("frozenlake", "FrozenLake/16_test/16_1_0.8_001.png", "FrozenLake/16_test/table/16_1_0.8_001.txt"),
    ("frozenlake", "FrozenLake/VSP/maps/level3/img/0.png", "FrozenLake/VSP/maps/level3/table/0.txt"),
]


@pytest.fixture(scope="module")
def registry(tiny_pipeline, broken_checkpoint) -> ModelRegistry:
    return ModelRegistry.discover(None, [tiny_pipeline, broken_checkpoint])


@pytest.fixture()
def handlers(registry, tmp_path) -> DemoHandlers:
    return DemoHandlers(registry, DemoSettings(workdir=tmp_path / "work"))


# ------------------------------------------------------------------------------------------------ puzzles
def test_generated_puzzle_is_the_tasks_own_and_seeded():
    p = generate_puzzle("maze", "8", 3)
    task = get_task("maze")
    assert p.task_id == "maze-v1" and p.level == "8" and p.seed == 3
    assert p.instance == task.generate("8", 3)
    assert p.image.tobytes() == task.render(p.instance, size=512).tobytes()
    # the solver sees the puzzle drawn natively at its resolution, not a downscaled 512 px picture
    assert p.image_for(RESOLUTION).tobytes() == task.render(p.instance, size=RESOLUTION).tobytes()
    assert generate_puzzle("maze", "8", 4.0).instance != p.instance
    for bad_seed in (-1, 1.5, "x", True, None):
        with pytest.raises(DemoError, match="puzzle seed must be a non-negative whole number"):
            generate_puzzle("maze", "8", bad_seed)
    with pytest.raises(DemoError, match=r"unknown level '9' for maze-v1; expected one of \['4', '6', '8'"):
        generate_puzzle("maze", "9", 0)
    with pytest.raises(DemoError, match="unknown task 'chess'"):
        generate_puzzle("chess", "8", 0)


@pytest.mark.parametrize("task_name, image, meta", OFFICIAL, ids=[f"{t}:{Path(i).name}" for t, i, _ in OFFICIAL])
def test_upload_official_item_reads_the_same_puzzle_as_the_importer(task_name, image, meta, tmp_path):
    from diffthinker.data import official

    p = load_upload(task_name, FIXTURES / image, FIXTURES / meta, tmp_path, 10**7)
    task = get_task(task_name)
    assert p.task_id == task.id and p.seed is None and "uploaded" in p.source
    folder = (FIXTURES / meta).parent
    folder = folder.parent if folder.name == "table" else folder
    items = [it for _t, _f, its in official.read_official_tree(folder, task) for it in its]
    item = next(it for it in items if Path(it.problem_image).name == Path(image).name)
    assert p.level == item.level
    if task_name != "jigsaw":  # a jigsaw instance names its picture file, which the upload keeps elsewhere
        assert p.instance == item.instance
    assert task.verify(p.instance, item.answer if item.answer is not None else task.solve(p.instance)).correct
    assert mismatch_fraction(task, p.instance, p.image) < MISMATCH_LIMIT / 10  # jigsaw: a few edge pixels


@pytest.mark.parametrize("task_name", ["maze", "frozenlake", "jigsaw"])
def test_upload_of_generate_format_diffthinker_output(task_name, tmp_path, capsys):
    task = get_task(task_name)
    level = {"maze": "8", "frozenlake": "vsp4", "jigsaw": "2x2"}[task_name]
    out = tmp_path / "gen"
    assert cli.main(["generate", "--task", task_name, "--level", level, "--n", "1", "--seed", "7", "--size", "64",
                     "--format", "diffthinker", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    txt = next(p for p in out.rglob("*.txt"))
    png = next(p for p in out.rglob("*.png") if p.stem == txt.stem)
    p = load_upload(task_name, png, txt, tmp_path / "work", 10**7)
    assert p.task_id == task.id and p.level == level
    if task_name != "jigsaw":
        assert p.instance == task.generate(level, 7)


def test_upload_json_puzzle_file_round_trip(handlers, tmp_path):
    shown = handlers.new_puzzle("tsp", "12", 5)
    png = tmp_path / "p.png"
    shown["puzzle_image"].save(png)
    back = handlers.upload("tsp-v1", str(png), shown["puzzle_file"])
    assert back["puzzle"].instance == shown["puzzle"].instance and back["puzzle"].level == "12"
    assert back["status"].startswith("Puzzle") and "no diffusion checkpoint for tsp-v1" in back["status"]
    # a dataset row keeps the instance as a JSON string: accepted too
    row = {"id": "x", "task": "tsp-v1", "level": "12", "instance": shown["puzzle"].instance.to_json()}
    (tmp_path / "row.json").write_text(json.dumps(row))
    assert handlers.upload("tsp", str(png), str(tmp_path / "row.json"))["puzzle"].instance == shown["puzzle"].instance


def test_upload_errors_are_readable_messages(handlers, tmp_path):
    maze_png, maze_txt = FIXTURES / "Maze/8_test/8_1_001.png", FIXTURES / "Maze/8_test/8_1_001.txt"
    tsp_png, tsp_txt = FIXTURES / "TSP/12_test/16_12_001.png", FIXTURES / "TSP/12_test/16_12_001.txt"
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")

    def status(*args):
        out = handlers.upload(*map(lambda a: None if a is None else str(a), args))
        assert set(out) == {"status"}, "a failed upload must leave the puzzle on screen as it was"
        assert out["status"].startswith("⚠ ") and "Traceback" not in out["status"]
        return out["status"]

    assert "notes.txt is not a readable image" in status("maze", notes, maze_txt)
    assert "upload the puzzle image first" in status("maze", None, maze_txt)
    assert "now add its metadata file" in status("maze", maze_png, None)
    msg = status("maze", tsp_png, tsp_txt)
    assert "16_12_001.txt is not a maze-v1 metadata file" in msg and "pick tsp in the Task menu" in msg
    assert str(tmp_path) not in msg and "/tmp" not in msg, "private folder paths must not leak into messages"
    assert "does not show the maze-v1 puzzle" in status("maze", FIXTURES / "Maze/8_test/8_21_003.png", maze_txt)
    assert "neither .txt nor .json" in status("maze", maze_png, maze_png)
    (tmp_path / "bad.json").write_text("{")
    assert "bad.json is not valid JSON" in status("maze", maze_png, tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"task": "sudoku", "instance": {}}))
    assert "describes a sudoku-v1 puzzle, not a maze-v1 one" in status("maze", maze_png, tmp_path / "other.json")
    small = DemoHandlers(handlers.registry, DemoSettings(max_upload_bytes=1000, workdir=tmp_path / "w2"))
    assert "larger than the 0.0 MB" in small.upload("maze", str(maze_png), str(maze_txt))["status"]


def test_mismatch_limit_separates_same_and_other_puzzles():
    task = get_task("maze")
    a, b = task.generate("8", 0), task.generate("8", 1)
    assert mismatch_fraction(task, a, task.render(a, size=64)) == 0.0
    assert mismatch_fraction(task, a, task.render(b, size=64)) > MISMATCH_LIMIT


# ------------------------------------------------------------------------------------------------ checkpoints
def test_registry_maps_tasks_and_reports_broken_checkpoints(registry, tiny_pipeline, broken_checkpoint, tmp_path):
    assert registry.solver_for("maze-v1", "diffusion") is not None
    assert registry.solver_for("tsp-v1", "diffusion") is None and registry.solver_for("maze-v1", "mllm") is None
    assert [f.path for f in registry.failures] == [broken_checkpoint] and registry.failures[0].explicit
    text = registry.describe("maze-v1")
    assert f"could not load `{broken_checkpoint}`" in text and "no mllm checkpoint for `maze-v1` yet" in text
    # the checkpoint folder: every sub-folder load_solver accepts is a model; the rest are skipped with a note
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "notes").mkdir()
    (folder / "tiny").symlink_to(tiny_pipeline, target_is_directory=True)
    found = ModelRegistry.discover(folder)
    assert [p.name for p, _ in found.solvers] == ["tiny"]
    assert [f.path.name for f in found.failures] == ["notes"] and not found.failures[0].explicit
    assert "skipped `" in found.describe("maze-v1")
    assert "no checkpoints found" in ModelRegistry.discover(tmp_path / "missing").describe("maze-v1")


def test_task_menu_lists_tasks_with_a_model_first(handlers):
    choices = handlers.task_choices()
    assert choices[0] == ("maze-v1", "maze-v1") and handlers.default_task() == "maze-v1"
    assert ("tsp-v1 (no model yet)", "tsp-v1") in choices
    assert DemoHandlers(ModelRegistry(), DemoSettings(workdir=handlers.workdir)).default_task() == "maze-v1"
    changed = handlers.task_changed("sudoku")
    assert changed["levels"]["value"] == get_task("sudoku").default_level
    assert "no diffusion checkpoint for `sudoku-v1`" in changed["models"]


# ------------------------------------------------------------------------------------------------ solving
def test_solve_shows_n_verified_candidates_frames_and_selection(handlers, registry):
    puzzle = handlers.new_puzzle("maze", "8", 2)["puzzle"]
    out = handlers.solve(puzzle, 4, 3, 11, "verifier")
    assert set(out) == set(OUTPUTS) - {"puzzle", "puzzle_image", "puzzle_info", "puzzle_file", "seed", "levels",
                                       "models"}
    assert "⚠" not in out["status"] and "solved with N=4, 3 steps" in out["status"]
    # the same candidates and verdicts as inference.solve on the same inputs (the demo adds no logic of its own)
    solver = registry.solver_for("maze-v1", "diffusion")
    [ref] = inference.solve(solver, "maze-v1", [puzzle.instance], [puzzle.image_for(RESOLUTION)], num_samples=4,
                            seed=11, num_inference_steps=3)
    assert len(out["gallery"]) == 4
    for (image, caption), cand in zip(out["gallery"], ref.candidates):
        assert caption.startswith(f"#{cand.index} {verdict_label(cand.verdict)}")
        assert image.size == (256, 256)  # 64 px enlarged 4x with NEAREST: the model's pixels exactly
        assert image.resize((RESOLUTION, RESOLUTION), Image.NEAREST).tobytes() == cand.raw.image.tobytes()
    chosen = ref.selected_candidate
    assert out["verdict"].startswith(f"### {verdict_label(chosen.verdict)} · candidate #{chosen.index} of 4")
    assert f"{sum(c.verdict.valid for c in ref.candidates)}/4** valid" in out["verdict"]
    assert len(out["frames"]) == 3 and all(len(step) == 4 for step in out["frames"])
    assert out["frame_slider"] == {"maximum": 2, "value": 2}
    assert out["frame_image"].tobytes() == frame_grid(out["frames"][-1]).tobytes()
    assert Path(out["animation"]).read_bytes()[:6] == b"GIF89a"
    assert out["mllm_verdict"] == "No MLLM checkpoint for this task yet."
    # scrubbing back to the first step shows other (noisier) estimates; out-of-range steps clamp to the last
    first = handlers.scrub(out["frames"], 0)["frame_image"]
    assert first.tobytes() == frame_grid(out["frames"][0]).tobytes() != out["frame_image"].tobytes()
    assert handlers.scrub(out["frames"], 99)["frame_image"].tobytes() == out["frame_image"].tobytes()
    assert handlers.scrub(None, 0) == {}
    # same seed, same pictures
    again = handlers.solve(puzzle, 4, 3, 11, "verifier")
    assert [im.tobytes() for im, _ in again["gallery"]] == [im.tobytes() for im, _ in out["gallery"]]


def test_concurrent_solves_on_one_model_give_the_sequential_results(handlers):
    from concurrent.futures import ThreadPoolExecutor

    puzzle = handlers.new_puzzle("maze", "8", 4)["puzzle"]
    jobs = [(2, 3, 0), (3, 4, 1), (2, 3, 0), (3, 4, 1)]
    alone = [handlers.solve(puzzle, *job)["gallery"] for job in jobs]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda job: handlers.solve(puzzle, *job)["gallery"], jobs))
    for a, b in zip(alone, together):
        assert [im.tobytes() for im, _ in a] == [im.tobytes() for im, _ in b]


def test_solve_without_a_checkpoint_says_so(handlers):
    puzzle = handlers.new_puzzle("sudoku", "45", 0)["puzzle"]
    out = handlers.solve(puzzle, 2, 2, 0)
    assert "No diffusion checkpoint for `sudoku-v1` yet" in out["verdict"] and out["gallery"] == []
    assert out["mllm_verdict"] == "No MLLM checkpoint for this task yet."


@pytest.mark.parametrize("args, message", [
    ((None, 4, 2, 0), "generate or upload a puzzle first"),
    (("P", 0, 2, 0), "samples N must be a whole number from 1 to 16, got 0"),
    (("P", 4, 51, 0), "Euler steps must be a whole number from 1 to 50, got 51"),
    (("P", 4, 2, -3), "sample seed must be a non-negative whole number, got -3"),
    (("P", 4, 2, 0, "best"), "unknown selection rule 'best'"),
])
def test_solve_bad_settings_are_messages(handlers, args, message):
    puzzle = handlers.new_puzzle("maze", "8", 0)["puzzle"]
    args = tuple(puzzle if a == "P" else a for a in args)
    out = handlers.solve(*args)
    assert set(out) == {"status"} and out["status"].startswith("⚠ ") and message in out["status"]


def test_unexpected_errors_become_messages_not_tracebacks(handlers):
    out = handlers.solve("not a puzzle", 2, 2, 0)
    assert set(out) == {"status"}
    assert out["status"].startswith("⚠ internal error (AttributeError") and "server log" in out["status"]


class FixedTextSolver:
    """A real (if simple) text-answering solver of the ``Solver`` protocol, standing in for the MLLM track until
    its checkpoints exist: it answers every puzzle with the given texts, candidate k with texts[k % len]."""

    kind = "mllm"
    name = "fixed-text"

    def __init__(self, task_id: str, texts: list[str]):
        self.task_id, self.texts = task_id, texts

    def supports(self, task_id: str) -> bool:
        return task_id == self.task_id

    def sample(self, task_id, images, seeds, **kwargs):
        return [[RawCandidate(text=self.texts[k % len(self.texts)]) for k in range(len(s))] for s in seeds]


def test_mllm_panel_draws_the_text_answer_and_its_verdict(registry, tmp_path):
    task = get_task("maze")
    puzzle = generate_puzzle("maze", "8", 1)
    right = task.answer_to_text(task.solve(puzzle.instance))
    reg = ModelRegistry(solvers=registry.solvers + [(tmp_path, FixedTextSolver("maze-v1", ["no idea", right]))])
    h = DemoHandlers(reg, DemoSettings(workdir=tmp_path / "w"))
    out = h.solve(puzzle, 2, 2, 0)
    assert out["mllm_text"] == right  # the verifier picks the valid one of the two
    assert out["mllm_verdict"].startswith("### ✓ correct · `fixed-text`") and "1/2** valid" in out["mllm_verdict"]
    assert out["mllm_image"].tobytes() == task.render(puzzle.instance, task.solve(puzzle.instance), size=512).tobytes()
    out = h.solve(puzzle, 1, 2, 0)  # only the junk answer
    assert "no answer could be read from the text" in out["mllm_verdict"] and out["mllm_image"] is puzzle.image


def test_mllm_panel_with_the_real_tiny_policy(tiny_pipeline, tiny_mllm, tmp_path):
    reg = ModelRegistry.discover(None, [tiny_pipeline, tiny_mllm])
    mllm = reg.solver_for("maze-v1", "mllm")
    assert mllm is not None and mllm.kind == "mllm" and "MLLM baseline**: `mllm:tiny-mllm`" in reg.describe("maze-v1")
    h = DemoHandlers(reg, DemoSettings(workdir=tmp_path / "w"))
    puzzle = generate_puzzle("maze", "8", 0)
    out = h.solve(puzzle, 3, 2, 5)
    [ref] = inference.solve(mllm, "maze-v1", [puzzle.instance], [puzzle.image], num_samples=3, seed=5)
    chosen = ref.selected_candidate
    assert out["mllm_text"] == chosen.raw.text
    assert out["mllm_verdict"].startswith(f"### {verdict_label(chosen.verdict)} · `mllm:tiny-mllm`")
    expected = (puzzle.image if not chosen.parsed
                else get_task("maze").render(puzzle.instance, chosen.answer, size=512))
    assert out["mllm_image"].tobytes() == expected.tobytes()


# ------------------------------------------------------------------------------------------------ launcher
def test_launcher_defaults_are_safe():
    args = parse_args([])
    assert args.host == "127.0.0.1" and not args.share and args.concurrency == 1 and args.max_file_size == 10
    assert parse_args(["--checkpoint", "a", "--checkpoint", "b"]).checkpoint == [Path("a"), Path("b")]


def test_app_py_launcher_help():
    done = subprocess.run([sys.executable, str(ROOT / "app" / "app.py"), "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--checkpoint PATH" in done.stdout and "127.0.0.1" in done.stdout
