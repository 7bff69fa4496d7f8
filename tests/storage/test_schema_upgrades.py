"""The start upgrades a database an older moodbot wrote, whatever version it is at and wherever an
earlier start stopped; refuses one a newer moodbot wrote; and says what to do when old data keeps a
unique index from being made, instead of "try again shortly" at every start."""
from __future__ import annotations

from typing import Any

import pytest

from storage.database import Database
from storage.models import StorageError
from storage.schema import (
    LATEST_VERSION,
    META,
    SCHEMA_DOC_ID,
    USERS,
    JOURNAL,
)
from tests.storage.conftest import T0


async def snapshot(database: Database) -> dict[str, Any]:
    """Everything in the database: each collection's options, indexes and documents."""
    db = database.db
    state: dict[str, Any] = {}
    for info in await (await db.list_collections()).to_list():
        name = info["name"]
        state[name] = {
            "options": info.get("options", {}),
            "indexes": sorted([(ix["name"], list(ix["key"].items()), bool(ix.get("unique")), bool(ix.get("sparse")))
                               async for ix in await db[name].list_indexes()]),
            "docs": await db[name].find({}, sort=[("_id", 1)]).to_list(),
        }
    return state


USER_DOC = {"platform": "chat", "user_id": "alice", "timezone": "Europe/Lisbon", "prompt_time": "21:00",
            "journal_enabled": True, "share_with_server": True, "chat_id": "alice", "created_at": T0}


async def test_a_database_a_newer_moodbot_wrote_is_refused_and_left_untouched(mongo_uri, db_name):
    """A higher schema number than this code knows: its documents or indexes may be in shapes this
    moodbot would misread or undo. It started on such a database as on a current one."""
    database = await Database.connect(mongo_uri, db_name)
    try:
        assert await database.init() == LATEST_VERSION
        await database.db[USERS].insert_one(dict(USER_DOC))
        newer = LATEST_VERSION + 1
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": newer}})
        # As a newer moodbot might have left it: an index this one no longer lists is not dropped.
        await database.db[JOURNAL].drop_index("user_page")
        before = await snapshot(database)
        with pytest.raises(StorageError) as refused:
            await database.init()
        message = str(refused.value)
        assert f"schema version {newer}" in message and f"up to {LATEST_VERSION}" in message, message
        assert "newer moodbot" in message and "try again shortly" not in message, message
        assert await snapshot(database) == before
    finally:
        await database.client.drop_database(db_name)
        await database.close()
