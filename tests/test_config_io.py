"""config_io, the config reader both training tracks share, on a small schema of its own; and the shared
``task:level`` parser. Torch-free, like the module."""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from diffthinker import config_io
from diffthinker.config_io import ConfigError, ConfigSchema
from diffthinker.tasks.base import TaskError
from diffthinker.tasks.level_specs import LevelSpec, parse_level_specs


@dataclass
class Optim:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    steps: int = 10
    scheduler: Literal["constant", "cosine"] = "constant"


@dataclass
class Ckpt:
    resume: str | None = None


@dataclass
class Positive:
    value: int = 1

    def __post_init__(self):
        if self.value < 1:
            raise ValueError(f"value must be >= 1, got {self.value}")


@dataclass
class Root(config_io.YamlConfig):
    name: str = "run"
    flag: bool = False
    levels: list[str] = field(default_factory=lambda: ["maze:8"])
    extra: dict[str, Any] = field(default_factory=dict)
    optim: Optim = field(default_factory=Optim)
    checkpoint: Ckpt = field(default_factory=Ckpt)
    positive: Positive = field(default_factory=Positive)
    validated: bool = False

    def validate(self) -> "Root":
        self.validated = True
        return self


class MyError(ConfigError):
    pass


SCHEMA = ConfigSchema(Root, MyError, example="optim.lr=3e-4", aliases={"resume": "checkpoint.resume"})


def test_overrides_are_yaml_typed_dotted_and_round_trip_through_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: a\noptim:\n  lr: 1e-2\n")  # YAML 1.1 reads 1e-2 as a string: coerced to float
    cfg = SCHEMA.load(path, ["optim.betas=[0.8, 0.95]", "optim.steps=1e3", "levels=maze:6", "extra.deep.k=[1]",
                             "resume=latest", "--flag=true"])
    assert cfg.validated and cfg.name == "a" and cfg.flag is True
    assert cfg.optim == Optim(lr=0.01, betas=(0.8, 0.95), steps=1000)
    assert cfg.levels == ["maze:6"] and cfg.extra == {"deep": {"k": [1]}} and cfg.checkpoint.resume == "latest"
    plain = yaml.safe_load(cfg.to_yaml())
    assert plain["optim"]["betas"] == [0.8, 0.95] and list(plain)[:2] == ["name", "flag"]  # tuple -> list, in order
    assert SCHEMA.from_dict(plain) == cfg
    assert SCHEMA.load(None) == Root(validated=True)


@pytest.mark.parametrize("override, fragment", [
    ("optim.lrr=1", "unknown config key 'optim.lrr'; known keys in section 'optim': ['betas', 'lr', 'scheduler', "
                    "'steps']"),
    ("nme=1", "unknown config key 'nme'; known keys in the top level"),
    ("name.x=1", "config key 'name' is a value, not a section; cannot set 'name.x'"),
    ("optim.lr=abc", "config key 'optim.lr' = 'abc' has the wrong type; expected float"),
    ("optim.steps=1.5", "config key 'optim.steps' = 1.5 has the wrong type; expected int"),
    ("optim.steps=true", "config key 'optim.steps' = True has the wrong type; expected int"),
    ("flag=maybe", "config key 'flag' = 'maybe' has the wrong type; expected bool"),
    ("optim.scheduler=cosinus", "config key 'optim.scheduler' = 'cosinus' is invalid; expected one of 'constant', "
                                "'cosine'"),
    ("optim.betas=[0.9]", "config key 'optim.betas' = [0.9] has the wrong type; expected tuple[float, float]"),
    ("checkpoint.resume=[1]", "config key 'checkpoint.resume' = [1] has the wrong type; expected str or null"),
    ("positive.value=0", "config section 'positive' is invalid: value must be >= 1, got 0"),
    ("optim=3", "config section 'optim' must be a mapping, got 3"),
    ("optim.lr", "override 'optim.lr' is not of the form key=value (e.g. optim.lr=3e-4)"),
    ("a..b=1", "override key 'a..b' is malformed; expected dotted names such as optim.lr"),
    ("optim.lr=[1", "override 'optim.lr=[1': the value is not valid YAML"),
])
def test_bad_overrides_raise_the_schema_error_naming_the_key(override, fragment):
    with pytest.raises(MyError) as err:
        SCHEMA.load(None, [override])
    assert fragment in str(err.value)
    assert isinstance(err.value, TaskError)  # the command lines turn it into exit code 2


def test_bad_files(tmp_path):
    with pytest.raises(MyError, match="config file not found"):
        SCHEMA.load(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(MyError, match="must hold a mapping, got list"):
        SCHEMA.load(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1\n")
    with pytest.raises(MyError, match="is not valid YAML"):
        SCHEMA.load(tmp_path / "bad.yaml")
    (tmp_path / "unknown.yaml").write_text("optim:\n  momentum: 0.9\n")
    with pytest.raises(MyError, match="unknown config key 'optim.momentum'; known keys in section 'optim'"):
        SCHEMA.load(tmp_path / "unknown.yaml")


def test_prepare_hook_runs_on_the_overridden_dict():
    seen = []

    def prepare(data):
        seen.append(data)
        return {"optim": {"steps": 7}, **data}  # a preset-like base under the user's keys

    cfg = SCHEMA.load(None, ["name=x"], prepare=prepare)
    assert seen == [{"name": "x"}] and cfg.optim.steps == 7 and cfg.name == "x"


def test_train_arguments_and_config_from_args(tmp_path):
    p = argparse.ArgumentParser()
    config_io.add_train_arguments(p, "optim.lr=3e-4", configs="training/configs/x_*.yaml")
    assert "training/configs/x_*.yaml" in p.format_help()
    calls = []

    def load(path, overrides):
        calls.append((path, overrides))
        return "cfg"

    assert config_io.config_from_args(p.parse_intermixed_args(["name=a", "--output-dir", "o", "--resume"]),
                                      load) == "cfg"
    assert calls[-1] == (None, ["name=a", "output_dir=o", "checkpoint.resume=latest"])
    # `--resume key=value`: the optional value swallowed an override, which is given back
    config_io.config_from_args(p.parse_intermixed_args(["--config", "c.yaml", "--resume", "name=a"]), load)
    assert calls[-1] == (Path("c.yaml"), ["name=a", "checkpoint.resume=latest"])
    ckpt = tmp_path / "checkpoint-1"
    config_io.config_from_args(p.parse_intermixed_args([f"--resume={ckpt}"]), load)
    assert calls[-1] == (None, [f"checkpoint.resume={ckpt}"])


def test_level_specs():
    assert parse_level_specs(["maze:8", "frozenlake:vsp3"]) == [LevelSpec("maze-v1", "8"),
                                                                 LevelSpec("frozenlake-v1", "vsp3")]
    assert str(parse_level_specs("maze:6")[0]) == "maze-v1:6"
    for bad, fragment in [([], "eval.levels is empty"), (["maze:99"], "eval.levels entry 'maze:99': unknown level"),
                          (["chess:1"], "unknown task 'chess'"), ([3], "entry 3 is not a 'task:level' string"),
                          (["maze:8", "maze-v1:8"], "eval.levels lists maze-v1:8 twice")]:
        with pytest.raises(TaskError) as err:
            parse_level_specs(bad, "eval.levels")
        assert fragment in str(err.value)


def test_both_tracks_read_configs_through_config_io():
    """Each track keeps its own ConfigError (a config_io.ConfigError) and its level-spec type is the shared one."""
    from diffthinker.diffusion import data as diffusion_data
    from diffthinker.diffusion import training
    from mllm_baselines import config as mllm_config
    from mllm_baselines import data as mllm_data

    for module in (training, mllm_config):
        assert issubclass(module.ConfigError, ConfigError) and module.SCHEMA.error is module.ConfigError
        assert module.SCHEMA.root is module.TrainConfig and isinstance(module.TrainConfig(), config_io.YamlConfig)
    assert diffusion_data.LevelSpec is mllm_data.LevelSpec is LevelSpec
    assert diffusion_data.parse_level_specs is mllm_data.parse_level_specs is parse_level_specs
    with pytest.raises(mllm_config.ConfigError, match="unknown config key 'rl.epsilonn'"):
        mllm_config.load_config(None, ["rl.epsilonn=0.2"])
    with pytest.raises(training.ConfigError, match="e.g. optim.lr=3e-4"):
        training.load_config(None, ["optim.lr"])


def test_config_io_and_the_cli_parser_import_no_torch():
    code = ("import sys, diffthinker.config_io, diffthinker.tasks.level_specs, diffthinker.cli as c; "
            "c.build_parser(); print(sorted(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_generated_test_sets_are_the_held_out_puzzles_the_trainings_exclude():
    # docs/RESULTS.md measures on `diffthinker generate --seed 0 --n 200` per level, and the training configs hold
    # out held_out_puzzles(levels, 200 * len(levels), seed 0): the two must be the very same puzzles, duplicates
    # skipped alike (VSP 3 has ~3000 distinct maps, so seeds 0.. repeat maps early)
    from diffthinker.data.build import build_dataset
    from diffthinker.tasks.level_specs import held_out_puzzles, parse_level_specs

    specs = parse_level_specs(["frozenlake:vsp3", "maze:4"])
    held = held_out_puzzles(specs, 2 * 40, seed=0)
    assert any(p.seed >= 40 for p in held if p.spec.level == "vsp3")  # duplicates were skipped
    for spec in specs:
        ds = build_dataset(spec.task, spec.level, n=40, seed=0, size=64, progress=False)
        ours = [p for p in held if p.spec == spec]
        assert list(ds["content_hash"]) == [p.content_hash for p in ours]


def test_replace_folder_swaps_in_the_new_version_and_keeps_the_old_one_on_failure(tmp_path, monkeypatch):
    import os

    from diffthinker.fsutil import replace_folder

    final, tmp = tmp_path / "ckpt", tmp_path / ".tmp-ckpt"
    tmp.mkdir()
    (tmp / "w").write_text("v1")
    replace_folder(tmp, final)
    assert (final / "w").read_text() == "v1" and not tmp.exists()
    tmp.mkdir()
    (tmp / "w").write_text("v2")
    replace_folder(tmp, final)
    assert (final / "w").read_text() == "v2" and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    # the swap fails after the old version was moved aside: it is put back, the error surfaces
    tmp.mkdir()
    (tmp / "w").write_text("v3")
    real_rename = os.rename

    def failing(src, dst):
        if str(src) == str(tmp):
            raise OSError("disk full")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(OSError, match="disk full"):
        replace_folder(tmp, final)
    assert (final / "w").read_text() == "v2"
