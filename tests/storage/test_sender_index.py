"""A /forget takes its user's name out of others' requests and journal entries of their files,
found by `sender` (storage/privacy.py `_unname`): with no index on it, every /forget read the whole
of both collections, every user's, on SecantusDB as on MongoDB. Migration 16 indexes it."""
from __future__ import annotations

import logging
from datetime import date

from storage.database import Database
from storage.models import JournalEntry, MoodRequest, UserRef
from storage.schema import BY_SENDER, JOURNAL, LATEST_VERSION, META, REQUESTS, SCHEMA_DOC_ID
from tests.storage.conftest import T0
from tests.storage.test_index_migration import index_specs, spec
from tests.storage.test_query_plans import listening, scanned

ALICE = UserRef("telegram", "1")
BOB = UserRef("telegram", "2")
GROUP = "telegram:-1"


async def bob_s_records_of_alice_s_voice_note(database: Database) -> None:
    """Bob asked the mood of Alice's voice note in the group, and answered a prompt with it."""
    await database.requests.add(MoodRequest(BOB, GROUP, "sha256:a1", "sad", T0, title="Voice note by Alice, 5 Dec 2026",
                                            source_link="https://t.me/c/1/2", sender=ALICE.user_id))
    await database.requests.add(MoodRequest(BOB, GROUP, "spotify:1", "calm", T0, title="Creep"))
    await database.journal.add(JournalEntry(BOB, date(2026, 12, 5), "p1", "A song?", "", "sha256:a1",
                                            "Voice note by Alice, 5 Dec 2026", "sad", -0.5, -0.5, T0, place=GROUP,
                                            sender=ALICE.user_id))
    await database.requests.settled()


async def test_a_forget_finds_the_records_naming_its_user_through_an_index(mongo_uri, db_name):
    database, reads = await listening(mongo_uri, db_name)
    try:
        await bob_s_records_of_alice_s_voice_note(database)
        reads.reads.clear()
        assert (await database.privacy.erase_counted(ALICE)).unnamed == 2
        assert {collection for collection, _, _ in reads.reads} >= {"requests", "journal"}
        assert await scanned(database, reads.reads) == []
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_a_version_15_database_indexes_its_requests_and_journal_by_sender(mongo_uri, db_name, caplog):
    database, reads = await listening(mongo_uri, db_name)
    try:
        for name in (REQUESTS, JOURNAL):
            await database.db[name].drop_index("sender")
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 15}})
        await bob_s_records_of_alice_s_voice_note(database)

        with caplog.at_level(logging.INFO, logger="storage.schema"):
            assert await database.init() == LATEST_VERSION
        assert ("applying migration 16: requests and journal entries by sender (each /forget read them all for "
                "the records naming its user); uploads titled by a name kept without an id since 14 and 15 (an "
                "account hidden from forwards' links) name nobody") in caplog.messages
        for name in (REQUESTS, JOURNAL):
            assert (await index_specs(database, name))["sender"] == spec(BY_SENDER.document), name
        reads.reads.clear()
        assert (await database.privacy.erase_counted(ALICE)).unnamed == 2
        senders = [read for read in reads.reads if "sender" in read[1]]
        assert [collection for collection, _, _ in senders] == [REQUESTS, JOURNAL]
        for collection, query, _ in senders:
            plan = (await database.db.command("explain", {"find": collection, "filter": query}))["queryPlanner"]
            assert plan["winningPlan"]["inputStage"]["indexName"] == "sender", collection
    finally:
        await database.client.drop_database(db_name)
        await database.close()
