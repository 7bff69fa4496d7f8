from __future__ import annotations

from datetime import datetime, timezone

import pytest

from storage.database import Database

# Whole seconds: BSON dates keep milliseconds, so microseconds would not round-trip.
T0 = datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
async def db(mongo_uri: str, db_name: str):
    database = await Database.connect(mongo_uri, db_name)
    await database.init()
    yield database
    await database.client.drop_database(db_name)
    await database.close()
