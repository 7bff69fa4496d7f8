"""Abuse tests: the real use cases and front-ends over the test database."""
from __future__ import annotations

import pytest

from storage.database import Database


@pytest.fixture
async def db(mongo_uri, db_name):
    database = await Database.connect(mongo_uri, db_name)
    await database.init()
    yield database
    await database.close()
