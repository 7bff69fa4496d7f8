"""Requests recorded before the sender of a file titled by them was kept ("Voice note by Alice, 5
Dec 2026", no `sender`): no /forget could find whose name they carry, so migration 14 takes the
names out of them all ("Voice note, 5 Dec 2026"), in the requests and the places' summaries."""
from __future__ import annotations

import logging
from datetime import date

from storage.database import Database
from storage.models import JournalEntry, MoodRequest, UserRef
from storage.schema import JOURNAL, LATEST_VERSION, META, PLACE_TRACKS, REQUESTS, SCHEMA_DOC_ID
from tests.storage.conftest import T0

BOB = UserRef("telegram", "2")


async def test_a_version_13_database_takes_senders_names_out_of_the_titles_it_cannot_tell_whose(mongo_uri, db_name,
                                                                                               caplog):
    database = await Database.connect(mongo_uri, db_name)
    try:
        assert await database.init() == LATEST_VERSION
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 13}})
        for key, title, sender in (("sha256:a1", "Voice note by Alice, 5 Dec 2026", None),
                                   ("sha256:a2", "Video by Carol Ann, Jr., 1 Mar 2026", None),
                                   ("sha256:a3", "Audio by Dan, 2 Mar 2026", "4"),  # kept with its sender: /forget's
                                   ("sha256:a4", "my song by the lake", None),
                                   ("spotify:1", "File by Eve, 3 Mar 2026", None)):  # a song's own name
            await database.requests.add(MoodRequest(BOB, "telegram:-1", key, "sad", T0, title=title,
                                                    source_link="https://t.me/c/1/2", sender=sender))

        with caplog.at_level(logging.INFO, logger="storage.schema"):
            assert await database.init() == LATEST_VERSION
        assert any(message.startswith("applying migration 14: ") for message in caplog.messages)
        want = {"sha256:a1": "Voice note, 5 Dec 2026", "sha256:a2": "Video, 1 Mar 2026",
                "sha256:a3": "Audio by Dan, 2 Mar 2026", "sha256:a4": "my song by the lake",
                "spotify:1": "File by Eve, 3 Mar 2026"}
        for name in (REQUESTS, PLACE_TRACKS):
            assert {doc["track_key"]: doc["title"] async for doc in database.db[name].find()} == want, name
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_a_version_14_database_takes_senders_names_out_of_journal_entries_it_cannot_tell_whose(mongo_uri,
                                                                                                    db_name):
    """Migration 14 renamed the requests only: Bob's journal entry of Alice's voice note, answered
    before senders were kept, still read "Voice note by Alice"."""
    database = await Database.connect(mongo_uri, db_name)
    try:
        assert await database.init() == LATEST_VERSION
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 14}})
        for day, (key, title, sender) in enumerate((("sha256:a1", "Voice note by Alice, 5 Dec 2026", None),
                                                    ("sha256:a3", "Audio by Dan, 2 Mar 2026", "4"),
                                                    ("sha256:a4", "my song by the lake", None),
                                                    ("spotify:1", "File by Eve, 3 Mar 2026", None)), start=1):
            await database.journal.add(JournalEntry(BOB, date(2026, 3, day), f"p{day}", "A song?", "", key, title,
                                                    "sad", -0.5, -0.5, T0, place="telegram:-1", sender=sender))

        assert await database.init() == LATEST_VERSION
        assert {doc["track_key"]: doc["track_title"] async for doc in database.db[JOURNAL].find()} == {
            "sha256:a1": "Voice note, 5 Dec 2026", "sha256:a3": "Audio by Dan, 2 Mar 2026",
            "sha256:a4": "my song by the lake", "spotify:1": "File by Eve, 3 Mar 2026"}
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_a_version_15_database_takes_hidden_accounts_names_out_of_the_titles_kept_since(mongo_uri, db_name):
    """From 14 and 15 on, a file forwarded on Telegram from an account hidden from forwards' links
    was still titled by its name, kept without an id ("Voice note by Carol, 5 Dec 2026", no
    `sender`): no /forget could find it. Migration 16 renames such titles as 14 and 15 did."""
    database = await Database.connect(mongo_uri, db_name)
    try:
        assert await database.init() == LATEST_VERSION
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 15}})
        for key, title, sender in (("sha256:a1", "Voice note by Carol, 5 Dec 2026", None),
                                   ("sha256:a3", "Audio by Dan, 2 Mar 2026", "4")):
            await database.requests.add(MoodRequest(BOB, "telegram:-1", key, "sad", T0, title=title,
                                                    source_link="https://t.me/c/1/2", sender=sender))
            await database.journal.add(JournalEntry(BOB, date(2026, 3, 1 + len(key)), f"p{key}", "A song?", "", key,
                                                    title, "sad", -0.5, -0.5, T0, place="telegram:-1", sender=sender))

        assert await database.init() == LATEST_VERSION
        want = {"sha256:a1": "Voice note, 5 Dec 2026", "sha256:a3": "Audio by Dan, 2 Mar 2026"}
        for name, field in ((REQUESTS, "title"), (PLACE_TRACKS, "title"), (JOURNAL, "track_title")):
            assert {doc["track_key"]: doc[field] async for doc in database.db[name].find()} == want, name
    finally:
        await database.client.drop_database(db_name)
        await database.close()
