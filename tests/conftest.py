"""Shared fixtures. Core tests (tests/*/core/) need no database."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "data" / "sample"
TEST_DATA_DIR = Path(__file__).resolve().parent / "data"


@pytest.fixture
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture
def test_data_dir() -> Path:
    return TEST_DATA_DIR
