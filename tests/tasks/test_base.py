"""The task contract's shared pieces: registry, types, RNG, image validation."""

import json

import numpy as np
import pytest
from PIL import Image

from diffthinker.tasks import ParseFailure, TaskError, Verdict, get_task, list_tasks, task_rng
from diffthinker.tasks import draw


def test_unknown_task_names_the_value_and_the_choices():
    with pytest.raises(TaskError) as err:
        get_task("mazee")
    assert "mazee" in str(err.value) and "maze-v1" in str(err.value)


def test_get_task_resolves_unversioned_name_to_newest():
    assert get_task("maze").id == "maze-v1"
    assert get_task("maze-v1") is get_task("maze")


def test_unknown_level_names_the_value():
    with pytest.raises(TaskError) as err:
        get_task("maze").generate("huge", 0)
    assert "huge" in str(err.value)


def test_task_rng_is_stable_and_separates_streams():
    a = [task_rng("maze-v1", "8", 3).random() for _ in range(1)]
    b = [task_rng("maze-v1", "8", 3).random() for _ in range(1)]
    assert a == b
    # Pinned value: a change of the seeding scheme would silently change every dataset.
    assert task_rng("maze-v1", "8", 0).random() == 0.07338234046388203
    assert task_rng("maze-v1", "8", 0).random() != task_rng("maze-v1", "16", 0).random()
    assert task_rng("maze-v1", "8", 0).random() != task_rng("tsp-v1", "8", 0).random()
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(TaskError):
            task_rng("maze-v1", "8", bad)


def test_verdict_rejects_inconsistent_values():
    with pytest.raises(ValueError):
        Verdict(correct=True, valid=False, score=1.0)
    with pytest.raises(ValueError):
        Verdict(correct=False, valid=True, score=1.5)
    assert Verdict.failure("x").to_dict()["valid"] is False


def test_parse_failure_is_falsy_and_verifies_as_failure():
    task = get_task("maze")
    inst = task.generate(task.default_level, 0)
    failure = ParseFailure("nothing drawn")
    assert not failure
    verdict = task.verify(inst, failure)
    assert not verdict.valid and verdict.score == 0.0 and "nothing drawn" in verdict.reason


def test_verify_rejects_an_answer_of_another_task():
    maze, tsp = get_task("maze"), get_task("tsp")
    inst = maze.generate(maze.default_level, 0)
    tsp_answer = tsp.solve(tsp.generate(tsp.default_level, 0))
    with pytest.raises(TaskError):
        maze.verify(inst, tsp_answer)


@pytest.mark.parametrize("task_id", ["maze-v1", "tsp-v1", "sudoku-v1", "jigsaw-v1", "frozenlake-v1"])
def test_instances_are_frozen_hashable_and_round_trip(task_id):
    task = get_task(task_id)
    inst = task.generate(task.default_level, 7)
    with pytest.raises(Exception):
        setattr(inst, next(iter(inst.to_dict())), None)
    assert task.instance_from_json(inst.to_json()) == inst
    assert json.loads(inst.to_json()) == inst.to_dict()
    assert task.content_hash(inst) == task.content_hash(task.generate(task.default_level, 7))
    assert len({task.content_hash(task.generate(task.default_level, s)) for s in range(5)}) == 5


def test_instance_from_bad_json_is_a_task_error():
    task = get_task("maze")
    with pytest.raises(TaskError):
        task.instance_from_json("{not json")
    with pytest.raises(TaskError):
        task.instance_from_json(json.dumps({"bogus": 1}))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P"])
def test_to_rgb_converts_common_modes(mode):
    img = Image.new("RGB", (32, 32), (255, 0, 0)).convert(mode)
    out = draw.to_rgb(img)
    assert out.mode == "RGB" and out.size == (32, 32)


def test_to_rgb_composites_transparency_over_white():
    img = Image.new("RGBA", (32, 32), (255, 0, 0, 0))
    assert np.asarray(draw.to_rgb(img))[0, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize("size", [(1, 1), (8, 64), (9000, 20)])
def test_to_rgb_rejects_absurd_sizes(size):
    with pytest.raises(TaskError) as err:
        draw.to_rgb(Image.new("RGB", size))
    assert f"{size[0]}x{size[1]}" in str(err.value)


def test_to_rgb_rejects_unsupported_modes():
    with pytest.raises(TaskError) as err:
        draw.to_rgb(Image.new("CMYK", (32, 32)))
    assert "CMYK" in str(err.value)


def test_load_image_reports_truncated_and_non_images(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(good)
    assert draw.load_image(good).getpixel((0, 0)) == (1, 2, 3)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(good.read_bytes()[:60])
    text = tmp_path / "notes.png"
    text.write_text("hello")
    for bad in (truncated, text, tmp_path / "missing.png"):
        with pytest.raises(TaskError) as err:
            draw.load_image(bad)
        assert bad.name in str(err.value)


def test_parse_turns_bad_images_into_parse_failures():
    task = get_task("maze")
    inst = task.generate(task.default_level, 0)
    out = task.parse(Image.new("RGB", (1, 1)), inst)
    assert isinstance(out, ParseFailure) and "1x1" in out.reason


def test_bundled_fonts_are_real_truetype():
    f = draw.font("Lato-Medium", 39)
    assert f.getname() == ("Lato", "Medium")
    assert draw.font("Lato-Bold", 28).getname() == ("Lato", "Bold")


def test_cell_means_on_a_known_mask():
    mask = np.zeros((64, 64), bool)
    mask[:32, :32] = True
    means = draw.cell_means(mask, 2, 2)
    assert means.tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert draw.cell_means(mask, 2, 2, margin=0.25)[0, 0] == 1.0


def test_registry_lists_versioned_ids():
    for task_id in list_tasks():
        name, _, version = task_id.rpartition("-v")
        assert name and version.isdigit()
