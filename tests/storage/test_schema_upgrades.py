"""The start upgrades a database an older moodbot wrote, whatever version it is at and wherever an
earlier start stopped; refuses one a newer moodbot wrote; and says what to do when old data keeps a
unique index from being made, instead of "try again shortly" at every start."""
from __future__ import annotations

from typing import Any

import pytest

from storage.database import Database
from storage.models import StorageError
from storage.schema import (
    INDEXES,
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


@pytest.mark.parametrize("collection, index, duplicate", [
    (USERS, "user_unique", dict(USER_DOC)),
    (JOURNAL, "user_prompt_unique", {"platform": "chat", "user_id": "alice", "local_date": "2026-11-20",
                                     "prompt_id": "p1", "track_key": "spotify:1", "mood": "sad",
                                     "valence": -0.5, "arousal": -0.3, "created_at": T0}),
])
async def test_duplicates_that_keep_a_unique_index_from_being_made_are_said_and_kept(
        mongo_uri, db_name, collection, index, duplicate):
    """Two documents of one key (restored from a dump made without indexes, or written while an
    older start had dropped the index to rebuild it): the unique index cannot be made. Every start
    said "The database could not complete that — try again shortly.", which no wait mends."""
    database = await Database.connect(mongo_uri, db_name)
    try:
        assert await database.init() == LATEST_VERSION
        await database.db[collection].drop_index(index)
        await database.db[collection].insert_many([dict(duplicate), dict(duplicate)])
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 2}})
        for _ in range(2):  # the next start says the same
            with pytest.raises(StorageError) as refused:
                await database.init()
            message = str(refused.value)
            assert "try again shortly" not in message, message
            assert f"{collection}.{index}" in message and "1 key" in message, message
            assert "alice" not in message  # no user's data in a line that reaches the logs
        assert await database.db[collection].count_documents({}) == 2  # nothing deleted
        # With one of them removed, the next start makes the index and finishes.
        extra = await database.db[collection].find_one({})
        await database.db[collection].delete_one({"_id": extra["_id"]})
        assert await database.init() == LATEST_VERSION
        names = {ix["name"] async for ix in await database.db[collection].list_indexes()}
        assert {m.document["name"] for m in INDEXES[collection]} <= names
    finally:
        await database.client.drop_database(db_name)
        await database.close()
