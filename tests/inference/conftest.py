"""Fixtures of the inference tests: small generated datasets and a saved tiny random pipeline."""

from __future__ import annotations

import pytest

from diffthinker import cli

from .helpers import RES, save_tiny_pipeline


def _generate(folder, task, level, n, seed=0):
    assert cli.main(["generate", "--task", task, "--level", level, "--n", str(n), "--seed", str(seed),
                     "--size", str(RES), "--out", str(folder), "--quiet"]) == 0
    return folder


@pytest.fixture(scope="session")
def maze_data(tmp_path_factory):
    return _generate(tmp_path_factory.mktemp("data") / "maze4", "maze", "4", 6)


@pytest.fixture(scope="session")
def tsp_data(tmp_path_factory):
    return _generate(tmp_path_factory.mktemp("data") / "tsp6", "tsp", "6", 6)


@pytest.fixture(scope="session")
def pipeline_dir(tmp_path_factory):
    return save_tiny_pipeline(tmp_path_factory.mktemp("ckpt") / "tiny" / "pipeline")
