from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.dbserver import DBServer

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "4q"


@pytest.fixture(scope="session")
def db_server():
    server = DBServer().start()
    yield server
    server.stop()


@pytest.fixture
def mongo_uri(db_server) -> str:
    return db_server.uri


@pytest.fixture
def db_name() -> str:
    """One database per test."""
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "labels.csv").exists():
        pytest.fail(f"the 4Q dataset is missing at {SHARED_DATA}")
    return SHARED_DATA
