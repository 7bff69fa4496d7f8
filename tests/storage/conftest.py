from __future__ import annotations

from datetime import datetime, timezone

import pytest

from storage.database import Database
from tests.fakes.wire_gate import WireGate

# Whole seconds: BSON dates keep milliseconds, so microseconds would not round-trip.
T0 = datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def database_uri(mongo_uri: str) -> str:
    """Where the `db` fixture connects: the test server, or (a module's own) a relay in front of it."""
    return mongo_uri


@pytest.fixture
async def db(database_uri: str, db_name: str):
    database = await Database.connect(database_uri, db_name)
    await database.init()
    yield database
    await database.client.drop_database(db_name)
    await database.close()


@pytest.fixture
async def gate(db_server):
    """A relay in front of the test server that can hold back or cut a command (see `WireGate`)."""
    relay = await WireGate(db_server.port).start()
    yield relay
    await relay.close()
