"""The `diffthinker` CLI: generate / import / render / verify / gallery, and its error handling (exit 2, one line)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
from PIL import Image

from diffthinker import cli
from diffthinker.data import MANIFEST, load_dataset, read_manifest
from diffthinker.data.build import level_sizes
from diffthinker.tasks import get_task, list_tasks

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "diffthinker_samples"
TASK_IDS = list_tasks()
MAIN = "maze-v1" if "maze-v1" in TASK_IDS else (TASK_IDS[0] if TASK_IDS else None)
needs_task = pytest.mark.skipif(MAIN is None, reason="no task registered yet")


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def small(task_id):
    task = get_task(task_id)
    return min(level_sizes(task, task.default_level))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A small generated dataset of the main task, shared by the read-only tests."""
    if MAIN is None:
        pytest.skip("no task registered yet")
    out = tmp_path_factory.mktemp("cli") / "ds"
    assert cli.main(["generate", "--task", MAIN, "--n", "3", "--seed", "7", "--size", str(small(MAIN)),
                     "--out", str(out), "--quiet"]) == 0
    return out


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_generate_then_verify_own_solutions(tmp_path, capsys, task_id):
    out = tmp_path / "ds"
    code, _, err = run(capsys, "generate", "--task", task_id, "--n", 2, "--seed", 3, "--size", small(task_id),
                       "--out", out, "--quiet")
    assert code == 0, err
    manifest = read_manifest(out)
    assert manifest["config"]["n"] == 2 and manifest["config"]["seed"] == 3
    assert manifest["tasks"] == {task_id: get_task(task_id).version} and manifest["counts"]["total"] == 2
    assert manifest["command"][:2] == ["diffthinker", "generate"]
    code, stdout, err = run(capsys, "verify", "--data", out)
    assert code == 0, err
    report = json.loads(stdout)
    assert report["n"] == 2 and report["correct"] == 2 and report["accuracy"] == 1.0
    assert report["per_level"][get_task(task_id).default_level]["accuracy"] == 1.0


@needs_task
def test_generate_is_reproducible_and_num_proc_independent(tmp_path, capsys):
    args = ["generate", "--task", MAIN, "--n", 4, "--size", small(MAIN), "--quiet"]
    assert run(capsys, *args, "--out", tmp_path / "a")[0] == 0
    assert run(capsys, *args, "--out", tmp_path / "b", "--num-proc", 2)[0] == 0
    a = load_dataset(tmp_path / "a").cast_column("image", datasets.Image(decode=False))
    b = load_dataset(tmp_path / "b").cast_column("image", datasets.Image(decode=False))
    assert a["id"] == b["id"] and [r["bytes"] for r in a["image"]] == [r["bytes"] for r in b["image"]]


@needs_task
def test_generate_exclude_and_diffthinker_format(tmp_path, capsys, dataset):
    code, _, err = run(capsys, "generate", "--task", MAIN, "--n", 3, "--seed", 7, "--size", small(MAIN),
                       "--exclude", dataset, "--out", tmp_path / "b", "--quiet")
    assert code == 0, err
    a, b = load_dataset(dataset), load_dataset(tmp_path / "b")
    assert len(b) == 3 and set(a["content_hash"]).isdisjoint(b["content_hash"])
    assert read_manifest(tmp_path / "b")["counts"]["excluded_seeds"] == 3
    code, _, err = run(capsys, "generate", "--task", MAIN, "--n", 2, "--format", "diffthinker", "--size", 256,
                       "--out", tmp_path / "official", "--quiet")
    assert code == 0, err
    items = get_task(MAIN).read_official(tmp_path / "official")
    assert len(items) == 2 and (tmp_path / "official" / MANIFEST).is_file()


@needs_task
def test_overwrite_replaces_and_its_absence_refuses(tmp_path, capsys, dataset):
    out = tmp_path / "ds"
    base = ["generate", "--task", MAIN, "--size", small(MAIN), "--out", out, "--quiet"]
    assert run(capsys, *base, "--n", 1)[0] == 0
    code, _, err = run(capsys, *base, "--n", 2)
    assert code == 2 and str(out) in err and "--overwrite" in err and "Traceback" not in err
    assert len(load_dataset(out)) == 1
    assert run(capsys, *base, "--n", 2, "--overwrite")[0] == 0
    assert len(load_dataset(out)) == 2


@needs_task
def test_render_names_files_by_id_and_verify_reads_them(tmp_path, capsys, dataset):
    out = tmp_path / "r"
    code, _, err = run(capsys, "render", "--data", dataset, "--out", out, "--size", 256, "--quiet")
    assert code == 0, err
    ids = load_dataset(dataset)["id"]
    expected = {f"{i}.png" for i in ids} | {f"{i}_solution.png" for i in ids} | {MANIFEST}
    assert {p.name for p in out.iterdir()} == expected
    with Image.open(out / f"{ids[0]}.png") as img:
        assert img.size == (256, 256)
    # A folder whose <id>.png are the problem images: nothing verifies.
    code, stdout, _ = run(capsys, "verify", "--data", dataset, "--images", out)
    report = json.loads(stdout)
    assert code == 0 and report["n"] == 3 and report["correct"] == 0 and report["accuracy"] == 0.0
    # The solutions under their ids (as JPEGs, as a model's output might be): all verify.
    sols = tmp_path / "sols"
    sols.mkdir()
    for i in ids:
        Image.open(out / f"{i}_solution.png").convert("RGB").save(sols / f"{i}.jpg", quality=90)
    code, stdout, _ = run(capsys, "verify", "--data", dataset, "--images", sols)
    assert json.loads(stdout)["accuracy"] == 1.0


@needs_task
def test_verify_counts_missing_and_bad_images_as_wrong(tmp_path, capsys, dataset):
    ds = load_dataset(dataset)
    ids = ds["id"]
    sols = tmp_path / "sols"
    sols.mkdir()
    solution = ds[0]["solution_image"].convert("RGB")
    solution.convert("RGBA").save(sols / f"{ids[0]}.png")  # RGBA is fine: converted
    (sols / f"{ids[1]}.png").write_text("this is not an image")
    # ids[2] is missing
    details = tmp_path / "details.jsonl"
    code, stdout, err = run(capsys, "verify", "--data", dataset, "--images", sols, "--details", details)
    assert code == 0, err
    report = json.loads(stdout)
    assert report["n"] == 3 and report["missing"] == 1 and report["unreadable"] == 1
    assert report["accuracy"] == pytest.approx(1 / 3)
    recs = {r["id"]: r for r in map(json.loads, details.read_text().splitlines())}
    assert recs[ids[0]]["status"] == "correct" and recs[ids[0]]["answer"]
    assert recs[ids[1]]["status"] == "unreadable" and "not a readable image" in recs[ids[1]]["reason"]
    assert recs[ids[2]]["status"] == "missing"


@needs_task
def test_verify_survives_odd_images(tmp_path, capsys, dataset):
    ds = load_dataset(dataset)
    solution = ds[0]["solution_image"].convert("RGB")
    cases = {
        "truncated": lambda p: p.write_bytes(_png_bytes(solution)[:200]),
        "one_pixel": lambda p: Image.new("RGB", (1, 1)).save(p),
        "huge": lambda p: Image.new("L", (9000, 16)).save(p),
        "palette": lambda p: solution.convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(p),
        "gray": lambda p: solution.convert("L").save(p),
    }
    expected_status = {"truncated": {"unreadable"}, "one_pixel": {"parse_failure"}, "huge": {"unreadable"},
                       "palette": {"correct"}, "gray": {"parse_failure", "incorrect"}}
    for name, write in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        write(folder / f"{ds[0]['id']}.png")
        details = tmp_path / f"{name}.jsonl"
        code, stdout, err = run(capsys, "verify", "--data", dataset, "--images", folder, "--details", details)
        assert code == 0 and "Traceback" not in err, (name, err)
        first = json.loads(details.read_text().splitlines()[0])
        assert first["id"] == ds[0]["id"] and first["status"] in expected_status[name], (name, first)
        report = json.loads(stdout)
        assert report["missing"] == 2 and report["correct"] == (name == "palette")


def _png_bytes(img):
    import io
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_import_official_samples(tmp_path, capsys):
    if not TASK_IDS:
        pytest.skip("no task registered yet")
    out = tmp_path / "imp"
    code, _, err = run(capsys, "import", FIXTURES, "--out", out, "--quiet")
    assert code == 0, err
    ds = load_dataset(out)
    assert all(ds["official"]) and all(s is None for s in ds["seed"])
    per_layout = read_manifest(out)["counts"]["per_layout"]
    assert sum(per_layout.values()) == len(ds)
    if "maze-v1" in TASK_IDS:
        assert per_layout["maze-v1:Maze/8_test"] == 2 and per_layout["maze-v1:Maze/16_test"] == 1
        assert {"8_1_001", "8_21_003", "16_33_002"} <= set(ds["official_id"])
    code, stdout, _ = run(capsys, "verify", "--data", out)
    report = json.loads(stdout)
    # Every official solution image verifies; items without one (VSP maps, VisPuzzle) count as missing.
    assert report["correct"] == report["n"] - report["missing"] and report["correct"] > 0
    if len(report["tasks"]) > 1:
        assert set(report["per_task"]) == set(report["tasks"])


@needs_task
def test_verify_reads_an_official_folder_directly(capsys):
    if "maze-v1" not in TASK_IDS:
        pytest.skip("uses the maze fixtures")
    code, stdout, _ = run(capsys, "verify", "--data", FIXTURES / "Maze" / "8_test")
    assert code == 0 and json.loads(stdout)["accuracy"] == 1.0


@needs_task
def test_gallery_writes_pairs_and_a_page(tmp_path, capsys):
    out = tmp_path / "g"
    code, _, err = run(capsys, "gallery", "--out", out, "--task", MAIN, "--size", 64)
    assert code == 0, err
    task = get_task(MAIN)
    for level in task.levels:
        assert (out / f"{task.id}_{level}.png").is_file() and (out / f"{task.id}_{level}_solution.png").is_file()
    page = (out / "README.md").read_text()
    assert page.count("| correct |") == len(task.levels) and "NOT correct" not in page
    assert f"{len(task.levels)} of {len(task.levels)} solution images parse back" in page
    with Image.open(out / f"{task.id}_{task.default_level}.png") as img:
        assert img.size[0] >= 64


ERRORS = [
    (["generate", "--task", "no-such-task", "--n", "1", "--out", "{tmp}/x"], "no-such-task"),
    (["generate", "--task", "{main}", "--level", "99x", "--n", "1", "--out", "{tmp}/x"], "99x"),
    (["generate", "--task", "{main}", "--n", "0", "--out", "{tmp}/x"], "'0'"),
    (["generate", "--task", "{main}", "--n", "1", "--size", "9999", "--out", "{tmp}/x"], "9999"),
    (["generate", "--task", "{main}", "--n", "1", "--out", "{tmp}/nodir/x"], "nodir"),
    (["generate", "--task", "{main}", "--n", "1", "--exclude", "{tmp}/missing", "--out", "{tmp}/x"], "missing"),
    (["verify", "--data", "{tmp}/missing"], "missing"),
    (["verify", "--data", "{tmp}/plain"], "plain"),
    (["verify", "--data", "{tmp}/afile.png"], "afile.png"),
    (["verify", "--data", "{ds}", "--images", "{tmp}/noimages"], "noimages"),
    (["render", "--data", "{tmp}/plain", "--out", "{tmp}/r"], "plain"),
    (["render", "--data", "{ds}", "--out", "{tmp}/plain"], "plain"),
    (["import", "{tmp}/plain", "--out", "{tmp}/i"], "plain"),
    (["import", "{fixtures}/Maze/8_test", "--task", "tsp", "--out", "{tmp}/i"], "8_test is a maze-v1 layout"),
    (["import", "{fixtures}/Maze/8_test", "--out", "{ds}"], "already exists"),
    (["gallery", "--out", "{tmp}/plain"], "plain"),
    (["frobnicate"], "frobnicate"),
]


@needs_task
@pytest.mark.parametrize("argv, needle", ERRORS, ids=[" ".join(a[:2]) + f" [{i}]" for i, (a, _) in enumerate(ERRORS)])
def test_bad_input_exits_2_with_one_clear_line(tmp_path, capsys, dataset, argv, needle):
    if "tsp" in argv and "tsp-v1" not in TASK_IDS or "{fixtures}/Maze/8_test" in argv and "maze-v1" not in TASK_IDS:
        pytest.skip("needs the maze and tsp tasks")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("not a dataset")
    (tmp_path / "afile.png").write_text("not an image")
    subs = {"tmp": tmp_path, "main": MAIN, "ds": dataset, "fixtures": FIXTURES}
    code, out, err = run(capsys, *[a.format(**subs) for a in argv])
    assert code == 2
    assert needle in err and "Traceback" not in err
    if not argv[0] == "frobnicate" and "'0'" != needle:
        assert len(err.strip().splitlines()) == 1 and err.startswith(f"diffthinker {argv[0]}: error:")
    assert (tmp_path / "plain" / "notes.txt").read_text() == "not a dataset"  # never clobbered


@needs_task
def test_python_dash_m_smoke(tmp_path):
    out = tmp_path / "ds"
    env_py = sys.executable
    gen = subprocess.run([env_py, "-m", "diffthinker", "generate", "--task", MAIN, "--n", "2", "--size",
                          str(small(MAIN)), "--out", str(out), "--quiet"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert gen.returncode == 0, gen.stderr
    ver = subprocess.run([env_py, "-m", "diffthinker", "verify", "--data", str(out)], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert ver.returncode == 0 and json.loads(ver.stdout)["accuracy"] == 1.0
    bad = subprocess.run([env_py, "-m", "diffthinker", "verify", "--data", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert bad.returncode == 2 and "nope" in bad.stderr and "Traceback" not in bad.stderr


def test_train_mllm_is_handed_over_whole(capsys):
    """`diffthinker train mllm ...` is training/train_mllm_rl.py: its own options, --print-config included."""
    from diffthinker.cli import main

    assert main(["train", "mllm", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "rl" in out and "sft" in out  # the resolved config's stages


def test_demo_subcommand_binds_localhost_by_default():
    from diffthinker.cli import build_parser

    args = build_parser().parse_args(["demo", "--port", "0"])
    assert args._command == "demo" and args.host == "127.0.0.1" and args.share is False
