"""Fixtures for the data-layer tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from datahelpers import FIXTURES


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
