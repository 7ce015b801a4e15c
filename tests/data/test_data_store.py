"""Saving/loading: atomic writes, refusing to overwrite, manifests, load errors, the no-official guard."""

from __future__ import annotations

import json

import datasets
import pytest

from datahelpers import first_task, raw_rows, small_size
from diffthinker.data import (MANIFEST, assert_no_official, build_dataset, import_official, load_dataset,
                              load_training_dataset, make_manifest, read_manifest, save_dataset)
from diffthinker.data.store import dataset_summary
from diffthinker.tasks import TaskError


@pytest.fixture(scope="module")
def small_ds():
    task_id = first_task()
    return build_dataset(task_id, n=2, seed=0, size=small_size(task_id), progress=False)


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name)


def test_save_and_load_round_trip_with_manifest(tmp_path, small_ds):
    out = tmp_path / "ds"
    summary = dataset_summary(small_ds)
    save_dataset(small_ds, out, make_manifest("dataset", config={"n": 2}, counts=summary["counts"],
                                              tasks=summary["tasks"], command=["diffthinker", "generate"]))
    back = load_dataset(out)
    assert raw_rows(back) == raw_rows(small_ds)
    manifest = read_manifest(out)
    assert manifest["kind"] == "dataset" and manifest["config"] == {"n": 2}
    assert manifest["counts"]["total"] == 2 and manifest["tasks"] == {small_ds[0]["task"]: small_ds[0]["task_version"]}
    assert {"python", "datasets", "numpy", "pillow", "diffthinker"} <= set(manifest["packages"])
    assert _siblings(out) == []  # no temporary folder left behind


def test_existing_output_is_refused_without_overwrite(tmp_path, small_ds):
    out = tmp_path / "ds"
    save_dataset(small_ds, out, make_manifest("dataset"))
    with pytest.raises(TaskError, match="already exists; pass --overwrite"):
        save_dataset(small_ds, out, make_manifest("dataset"))
    save_dataset(small_ds.select([0]), out, make_manifest("dataset"), overwrite=True)
    assert len(load_dataset(out)) == 1 and _siblings(out) == []


def test_overwrite_never_replaces_a_folder_we_did_not_write(tmp_path, small_ds):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(TaskError, match="not written by diffthinker"):
        save_dataset(small_ds, out, make_manifest("dataset"), overwrite=True)
    assert (out / "thesis.tex").read_text() == "years of work"


def test_a_failed_write_leaves_nothing_under_the_final_name(tmp_path, small_ds, monkeypatch):
    original = datasets.Dataset.save_to_disk

    def failing(self, path, *args, **kwargs):
        original(self, path, *args, **kwargs)  # the data is written into the temporary folder ...
        raise OSError("disk full (simulated)")  # ... and then the write fails

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", failing)
    out = tmp_path / "ds"
    with pytest.raises(OSError, match="simulated"):
        save_dataset(small_ds, out, make_manifest("dataset"))
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_failed_overwrite_keeps_the_old_dataset_intact(tmp_path, small_ds, monkeypatch):
    out = tmp_path / "ds"
    save_dataset(small_ds, out, make_manifest("dataset", config={"old": True}))
    before = raw_rows(load_dataset(out))
    original = datasets.Dataset.save_to_disk

    def failing(self, path, *args, **kwargs):
        original(self, path, *args, **kwargs)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", failing)
    with pytest.raises(OSError, match="simulated"):
        save_dataset(small_ds.select([1]), out, make_manifest("dataset"), overwrite=True)
    assert raw_rows(load_dataset(out)) == before
    assert read_manifest(out)["config"] == {"old": True}
    assert _siblings(out) == []


def test_load_errors_name_the_path(tmp_path, small_ds):
    with pytest.raises(TaskError, match=r"not found: .*nowhere"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("hello")
    with pytest.raises(TaskError, match=r"plain is not a diffthinker dataset"):
        load_dataset(tmp_path / "plain")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(TaskError, match=r"afile is not a folder"):
        load_dataset(tmp_path / "afile")
    # Corrupt: a truncated Arrow file, and a garbled state.json.
    out = tmp_path / "corrupt"
    save_dataset(small_ds, out, make_manifest("dataset"))
    arrow = next(out.glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:100])
    with pytest.raises(TaskError, match=r"corrupt.* is a corrupt dataset"):
        load_dataset(out)
    out2 = tmp_path / "garbled"
    save_dataset(small_ds, out2, make_manifest("dataset"))
    (out2 / "state.json").write_text("{not json")
    with pytest.raises(TaskError, match=r"garbled is a corrupt dataset"):
        load_dataset(out2)


def test_a_dataset_without_our_columns_is_refused(tmp_path):
    datasets.Dataset.from_dict({"text": ["a"]}).save_to_disk(str(tmp_path / "other"))
    with pytest.raises(TaskError, match="lacks the diffthinker columns"):
        load_dataset(tmp_path / "other")


def test_official_items_are_refused_for_training(tmp_path, small_ds, fixtures_dir):
    first_task()
    if "maze-v1" not in small_ds.unique("task"):
        pytest.skip("uses the maze fixtures")
    assert_no_official(small_ds)  # generated rows are fine
    save_dataset(small_ds, tmp_path / "train", make_manifest("dataset"))
    assert len(load_training_dataset(tmp_path / "train", task="maze")) == 2
    other = [t for t in _registered() if t != "maze-v1"]
    if other:
        with pytest.raises(TaskError, match=rf"holds items of \['maze-v1'\]; expected only {other[0]}"):
            load_training_dataset(tmp_path / "train", task=other[0])
    official = import_official(fixtures_dir / "Maze" / "8_test", progress=False)
    with pytest.raises(TaskError, match=r"2 official test items .*maze-v1_8_1_001"):
        assert_no_official(official)
    mixed = datasets.concatenate_datasets([small_ds, official])
    save_dataset(mixed, tmp_path / "mixed", make_manifest("dataset"))
    with pytest.raises(TaskError, match="never be trained on"):
        load_training_dataset(tmp_path / "mixed")


def _registered():
    from diffthinker.tasks import list_tasks
    return list_tasks()


def test_manifest_is_valid_json_inside_the_folder(tmp_path, small_ds):
    save_dataset(small_ds, tmp_path / "ds", make_manifest("dataset"))
    assert json.loads((tmp_path / "ds" / MANIFEST).read_text())["kind"] == "dataset"
