"""Shared fixtures. Core tests (tests/*/core/) need no database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from asgiref.sync import SyncToAsync
from django.db import connections

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "data" / "sample"


def _shared_data() -> Path:
    """The workplace's real data the project does not bundle (``../shared/data`` beside the
    checkout; ``SCALPRADAR_SHARED_DATA`` or the workplace's own copy for a clone elsewhere)."""
    candidates = [os.environ.get("SCALPRADAR_SHARED_DATA", ""), ROOT.parent / "shared" / "data",
                  Path("/work/shared/data")]  # fmt: skip
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return ROOT.parent / "shared" / "data"


SHARED_DATA_DIR = _shared_data()
TEST_DATA_DIR = Path(__file__).resolve().parent / "data"


@pytest.fixture
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture
def test_data_dir() -> Path:
    return TEST_DATA_DIR


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):  # type: ignore[no-untyped-def]
    """pytest-django's test databases, with the connection of asgiref's shared executor thread
    closed before they are dropped: async tests reach the database through it (Channels'
    ``database_sync_to_async`` in the websocket tests), Django closes only the calling thread's
    connections, and PostgreSQL refuses to drop a database still in use ("is being accessed by
    other users", a teardown warning before)."""
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=30)


@pytest.fixture
def eager_celery():
    """Run tasks in-process even when REDIS_URL configures a real broker (the PG run)."""
    from scalpradar.celery import app as celery_app

    conf = celery_app.conf
    before = (conf.task_always_eager, conf.task_eager_propagates)
    conf.task_always_eager = conf.task_eager_propagates = True
    yield
    conf.task_always_eager, conf.task_eager_propagates = before


@pytest.fixture(autouse=True)
def _fresh_radar_status():
    """``radar.health.radar_status`` is the process's record of its feed: what one test's
    radar left there (a finished live feed reads as degraded) never reaches the next."""
    yield
    from radar.health import radar_status

    radar_status.reset()


@pytest.fixture(autouse=True)
def _fresh_instrument_steps():
    """The display ticks (``trading.instruments``) are cached per process for 60 s: a rolled-back
    test's Asset rows must not format the next test's prices."""
    from trading import instruments

    instruments.clear()
    yield
    instruments.clear()
