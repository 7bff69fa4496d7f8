"""A database an earlier moodbot left with place summaries (`place_tracks`) and members' documents
(`place_members`) that its stored requests do not make: until ce59893 a /mood request's summaries
were written before its insert, and an insert the database refused (or an outage cut) left a
summary entry no request backs, with a file's title naming its sender ("Voice note by Alice") and
the link to her message, which her /forget, finding the records naming her by the stored requests'
`sender`, cannot find. Since, a kill between an insert and its summary leaves a vote out. Migration
20 makes the summaries and the members' documents again where they differ from the requests."""
from __future__ import annotations

from datetime import timedelta

from pymongo.asynchronous.database import AsyncDatabase

from storage import place_tracks, summaries_agree
from storage.codec import request_to_doc
from storage.database import Database
from storage.models import MoodRequest, UserRef
from storage.schema import LATEST_VERSION, META, PLACE_TRACKS, REQUESTS, SCHEMA_DOC_ID
from tests.storage.conftest import T0
from tests.storage.test_journal_summaries import VOICE_NOTE
from tests.storage.test_playlists import ALICE, CAROL, PLACE, ranking
from tests.storage.test_privacy import documents_mentioning
from tests.storage.test_place_member_repairs import assert_documents_are_the_summaries
from tests.storage.test_request_insert_cut_short import LINK, bobs_ask
from tests.storage.test_schema_upgrades import schema_of, start_stopped_at, without_ids

MANY = 7  # members, over several batches of two users


async def at_version_19(db: Database) -> None:
    await db.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 19}})


async def summarized_not_stored(db: Database, *requests: MoodRequest) -> None:
    """What a moodbot before ce59893 left of requests whose insert the database refused: their
    summaries and their members' documents written, the requests not."""
    docs = [request_to_doc(request) for request in requests]
    await place_tracks.record(db.db[PLACE_TRACKS], docs)
    await place_tracks.record_members(db.db[PLACE_TRACKS], docs)


async def stored_not_summarized(db: Database, *requests: MoodRequest) -> None:
    """What a kill between requests' insert and their summaries leaves since ce59893."""
    await db.db[REQUESTS].insert_many([request_to_doc(request) for request in requests])


async def assert_summaries_are_the_requests(db: Database) -> None:
    """The summaries, and the members' documents, are those the stored requests make (in any order:
    test_request_insert_cut_short's sorts by track key alone, and many members ask for one)."""
    kept = without_ids(await db.db[PLACE_TRACKS].find().to_list())
    await db.db[PLACE_TRACKS].delete_many({})
    await place_tracks.summarize(db.db[REQUESTS], db.db[PLACE_TRACKS])
    assert kept == without_ids(await db.db[PLACE_TRACKS].find().to_list())
    await assert_documents_are_the_summaries(db)


async def test_an_orphaned_summary_naming_a_sender_names_nobody_after_the_upgrade_and_her_forget(db):
    await at_version_19(db)
    await summarized_not_stored(db, bobs_ask())

    assert await db.init() == LATEST_VERSION
    await db.privacy.forget(ALICE)

    assert await documents_mentioning(db, "Alice") == []
    assert await documents_mentioning(db, LINK) == []
    assert await db.playlists.playlist(PLACE, "sad") == []
    await assert_summaries_are_the_requests(db)


async def test_the_upgrade_keeps_every_vote_a_stored_request_backs_and_adds_those_left_out(db):
    """Bob's stored request of the voice note (older, "happy") under his refused later one
    ("sad", the summary's `latest`): his summary says "happy" again. Carol's vote is kept as it
    was, and hers the summaries missed is added."""
    await db.requests.add(bobs_ask("happy"))
    await summarized_not_stored(db, bobs_ask("sad", T0 + timedelta(hours=1)))
    await db.requests.add(MoodRequest(CAROL, PLACE, "spotify:kept", "sad", T0))
    await stored_not_summarized(db, MoodRequest(CAROL, PLACE, "spotify:missed", "sad", T0))
    await at_version_19(db)

    assert await db.init() == LATEST_VERSION

    assert ranking(await db.playlists.playlist(PLACE, "happy")) == [(VOICE_NOTE, 1)]
    assert sorted(ranking(await db.playlists.playlist(PLACE, "sad"))) == [("spotify:kept", 1), ("spotify:missed", 1)]
    await assert_summaries_are_the_requests(db)


async def many_members_left_by_an_earlier_version(db: Database) -> None:
    """`MANY` members (over several batches), each with a stored vote, an orphaned one naming
    Alice and one the summaries missed; and another with that one alone."""
    members = [UserRef("chat", f"m{i:03}") for i in range(MANY)]
    await stored_not_summarized(db, *(MoodRequest(member, PLACE, "spotify:kept", "sad", T0) for member in members))
    await place_tracks.summarize(db.db[REQUESTS], db.db[PLACE_TRACKS])
    await summarized_not_stored(db, *(MoodRequest(member, PLACE, VOICE_NOTE, "sad", T0, title="Voice note by Alice",
                                                  sender=ALICE.user_id, source_link=LINK) for member in members))
    # And a member with no summary nor document, between two others' ids.
    await stored_not_summarized(db, *(MoodRequest(member, PLACE, "spotify:missed", "happy", T0)
                                      for member in [*members, UserRef("chat", "m003x")]))
    await at_version_19(db)


async def agreeing_by_twos(db: AsyncDatabase) -> None:
    """Migration 20's steps, by batches of two users."""
    await summaries_agree.agree(db[REQUESTS], db[PLACE_TRACKS], db[META], users_per_batch=2)


async def test_an_upgrade_stopped_at_any_of_its_writes_is_finished_by_the_next_start(db, mongo_uri, db_name):
    await many_members_left_by_an_earlier_version(db)
    assert await db.init() == LATEST_VERSION
    reference = await schema_of(db)
    assert await documents_mentioning(db, "Alice") == []
    assert ranking(await db.playlists.playlist(PLACE, "happy")) == [("spotify:missed", MANY + 1)]
    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [("spotify:kept", MANY)]
    await assert_summaries_are_the_requests(db)
    await db.client.drop_database(db_name)
    await db.init()
    await many_members_left_by_an_earlier_version(db)
    writes = await start_stopped_at(mongo_uri, db_name, None, agreeing_by_twos)
    assert writes > 3 * 4  # each batch's summaries deleted, then upserted, its documents, its mark
    for at in range(1, writes + 1):
        await db.client.drop_database(db_name)
        await db.init()
        await many_members_left_by_an_earlier_version(db)
        await start_stopped_at(mongo_uri, db_name, at, agreeing_by_twos)
        assert await db.init() == LATEST_VERSION, at
        assert await schema_of(db) == reference, at
