"""A /mood request whose insert the database fails (refused, or cut on the wire) after its place
summary (`place_tracks`) and its member's document (`place_members`) were written: the request
was not stored, its summary was, and a file's title naming its sender ("Voice note by Alice") with
the link to her message stayed there for good, since her /forget finds the records naming her by
the stored requests' `sender`. And a /forget's summaries made again from the requests
(`place_tracks.summarize_again`) beside a request of the same song being written lost that
request's vote where its summary came before their delete and its insert after their read. The
requests are now inserted before their summaries (`RequestRepo._write_pending`): a summary holds
nothing that no stored request holds, and a request the database fails is marked for a repair that
sums its member up again from the requests stored."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from storage import place_tracks
from storage.database import Database
from storage.models import MoodRequest, StorageError
from storage.schema import PLACE_MEMBERS, PLACE_REPAIRS, PLACE_TRACKS, REQUESTS, VALIDATORS, ensure_collection
from tests.abuse.test_forget_cut_short import NAMED, UNNAMED, refusing_writes
from tests.fakes.wire_gate import gated_database
from tests.storage.conftest import T0
from tests.storage.test_journal_summaries import VOICE_NOTE
from tests.storage.test_place_member_repairs import assert_documents_are_the_summaries, marks
from tests.storage.test_playlists import ALICE, BOB, PLACE, ranking
from tests.storage.test_privacy import documents_mentioning

LINK = "https://t.me/c/12/34"  # Alice's message


def bobs_ask(mood: str = "sad", at=T0, title: str = NAMED, sender: str | None = ALICE.user_id) -> MoodRequest:
    """Bob's /mood of Alice's voice note in the group."""
    return MoodRequest(BOB, PLACE, VOICE_NOTE, mood, at, title=title, sender=sender,
                       source_link=LINK if sender else None)


async def assert_summaries_are_the_requests(db: Database) -> None:
    """The summaries, and the members' documents, are those the stored requests make."""
    kept = await db.db[PLACE_TRACKS].find({}, {"_id": 0}).sort("track_key").to_list()
    await db.db[PLACE_TRACKS].delete_many({})
    await db.requests.settled()
    await place_tracks.summarize(db.db[REQUESTS], db.db[PLACE_TRACKS])
    assert kept == await db.db[PLACE_TRACKS].find({}, {"_id": 0}).sort("track_key").to_list()
    await assert_documents_are_the_summaries(db)


@pytest.fixture
async def gated(db_server, mongo_uri, db_name):
    """(gate, database): a connection through a `WireGate`, the database dropped at the end."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, through):
        await through.init()
        yield gate, through
        await through.client.drop_database(db_name)


async def test_a_request_whose_insert_is_refused_leaves_no_name_after_its_sender_s_forget(db):
    await refusing_writes(db, REQUESTS)
    with pytest.raises(StorageError):
        await db.requests.add(bobs_ask())
    await ensure_collection(db.db, REQUESTS, VALIDATORS[REQUESTS])  # the database back

    await db.privacy.forget(ALICE)

    assert await documents_mentioning(db, "Alice") == []
    assert await documents_mentioning(db, LINK) == []
    assert await db.playlists.playlist(PLACE, "sad") == []  # not stored: no vote
    await assert_summaries_are_the_requests(db)


async def test_a_request_whose_insert_an_outage_cut_leaves_no_name_after_its_sender_s_forget(gated):
    gate, db = gated
    gate.cut_next("insert", REQUESTS)
    with pytest.raises(StorageError):
        await db.requests.add(bobs_ask())
    assert gate.was_cut

    await db.privacy.forget(ALICE)  # the database back

    assert await documents_mentioning(db, "Alice") == []
    assert await db.playlists.playlist(PLACE, "sad") == []
    await assert_summaries_are_the_requests(db)


async def test_a_request_stored_whose_answer_an_outage_lost_counts_at_the_next_playlist_read(gated):
    """The insert done, its answer lost: its caller told it failed, its summary written by no one
    until its member is marked and summed up again from the requests."""
    gate, db = gated
    gate.commands.clear()
    gate.cut(1, after=True)  # the batch's second write, after its marks
    with pytest.raises(StorageError):
        await db.requests.add(MoodRequest(BOB, PLACE, "spotify:B", "sad", T0))
    gate.cut(None)
    assert gate.commands[:2] == [("insert", PLACE_REPAIRS), ("insert", REQUESTS)]
    assert await db.db[REQUESTS].count_documents({}) == 1

    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [("spotify:B", 1)]
    await assert_summaries_are_the_requests(db)
    assert await marks(db) == 0


async def test_a_request_whose_summary_is_refused_is_recorded_and_counts_at_the_next_playlist_read(db):
    await refusing_writes(db, PLACE_TRACKS)
    await db.requests.add(MoodRequest(BOB, PLACE, "spotify:B", "sad", T0))  # stored: told so
    await ensure_collection(db.db, PLACE_TRACKS, VALIDATORS[PLACE_TRACKS])  # the database back
    assert await marks(db) == 1

    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [("spotify:B", 1)]
    await assert_summaries_are_the_requests(db)
    assert await marks(db) == 0


async def test_a_forget_summing_up_again_beside_a_request_of_the_same_song_keeps_its_vote(db, gated):
    """Another process (a second bot on the database) records Bob's later /mood of the voice note
    while Alice's /forget sums his summary of it up again from his requests: before, its summary
    was written first, deleted by the /forget, and its request inserted after the /forget's read,
    so that his summary said "sad" (the first answer) for good."""
    await db.requests.add(bobs_ask())
    gate, other = gated
    gate.hold("insert", REQUESTS)
    later = asyncio.create_task(other.requests.add(
        bobs_ask("happy", T0 + timedelta(hours=1), title=UNNAMED, sender=None)))
    await asyncio.wait_for(gate.held.wait(), timeout=10)

    await db.privacy.forget(ALICE)
    gate.release()
    await asyncio.wait_for(later, timeout=10)

    assert ranking(await db.playlists.playlist(PLACE, "happy")) == [(VOICE_NOTE, 1)]
    assert await db.playlists.playlist(PLACE, "sad") == []
    assert await documents_mentioning(db, "Alice") == []
    await assert_summaries_are_the_requests(db)


async def test_a_request_stored_then_the_process_killed_before_its_summary_counts_after_the_restart(
        db, db_server, mongo_uri, db_name):
    """The batch inserted, its summary's write on its way when the process died (an OOM kill, a
    power cut): before, no mark said so, and the vote was left out of the playlists until its
    member was next summed up again. A mark is written before the insert, deleted once the
    summaries and the member's document are: the next start sums the member up again."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, killed):
        gate.hold("update", PLACE_TRACKS)
        asked = asyncio.create_task(killed.requests.add(MoodRequest(BOB, PLACE, "spotify:B", "sad", T0)))
        await asyncio.wait_for(gate.held.wait(), timeout=10)
        assert await db.db[REQUESTS].count_documents({}) == 1  # stored, not summed up
        await gate.close()  # the process gone: its summary never sent, nothing of its memory left
        await asyncio.gather(asked, return_exceptions=True)

    assert await db.requests.recall_unfolded() == 1  # the next start
    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [("spotify:B", 1)]
    await assert_summaries_are_the_requests(db)
    assert await marks(db) == 0


async def test_a_batch_summed_up_leaves_no_mark(db):
    await db.requests.add(MoodRequest(BOB, PLACE, "spotify:B", "sad", T0))
    await db.requests.add(MoodRequest(ALICE, PLACE, "spotify:B", "sad", T0))
    await db.requests.settled()
    assert await marks(db) == 0
    assert await db.requests.recall_unfolded() == 0


async def test_a_member_summed_up_again_whose_summaries_hold_their_requests_has_none_written(gated):
    """Her document refused, her summaries written: the repair reads her requests and writes none of
    her summaries again (before, one upsert per song of hers in the place: 3 000 for a member with
    10 000 requests, 0.8 s of the repair's 1.5 s on SecantusDB)."""
    gate, db = gated
    await db.requests.add(MoodRequest(BOB, PLACE, "spotify:A", "sad", T0))
    await refusing_writes(db, PLACE_MEMBERS)
    await db.requests.add(MoodRequest(BOB, PLACE, "spotify:B", "sad", T0))
    await ensure_collection(db.db, PLACE_MEMBERS, VALIDATORS[PLACE_MEMBERS])  # the database back
    assert await marks(db) == 1
    gate.commands.clear()

    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [("spotify:A", 1), ("spotify:B", 1)]
    assert ("aggregate", REQUESTS) in gate.commands  # summed up again
    assert ("update", PLACE_TRACKS) not in gate.commands
    await assert_summaries_are_the_requests(db)
    assert await marks(db) == 0


async def test_a_batch_s_mark_whose_answer_an_outage_lost_goes_once_the_batch_is_summed_up(gated):
    """The batch's mark written before its insert, its answer lost on the wire (the database gone
    right then), the database back for the insert and summaries: before, the batch took the mark
    for refused (place_tracks.members_not_marked) and deleted none, so it stayed, Bob's ids and the
    place, until the next start summed him up again for nothing. It is deleted with the batch's."""
    gate, db = gated
    gate.commands.clear()
    gate.cut(0, after=True)  # the batch's mark: written, its answer never arrives
    await db.requests.add(MoodRequest(BOB, PLACE, "spotify:B", "sad", T0))  # stored and summed up: told so
    await db.requests.settled()
    assert gate.commands[0] == ("insert", PLACE_REPAIRS) and gate.was_cut
    gate.cut(None)

    assert await marks(db) == 0
    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [("spotify:B", 1)]
    await assert_summaries_are_the_requests(db)


async def test_a_batch_s_mark_an_outage_kept_from_the_database_is_written_again_where_the_batch_fails(gated):
    """The batch's mark cut before it was sent (none written), then its insert cut on the wire: its
    member is marked in the database all the same, for a process killed before the next repair
    point to leave him to the next start; the repair deletes it."""
    gate, db = gated
    gate.commands.clear()
    gate.cut(0)  # the batch's mark, never sent
    gate.cut_next("insert", REQUESTS)
    with pytest.raises(StorageError):
        await db.requests.add(MoodRequest(BOB, PLACE, "spotify:B", "sad", T0))
    await db.requests.settled()
    assert gate.commands[0] == ("insert", PLACE_REPAIRS) and gate.was_cut
    gate.cut(None)
    assert await db.db[REQUESTS].count_documents({}) == 0

    assert await marks(db) == 1
    assert await db.playlists.playlist(PLACE, "sad") == []
    assert await marks(db) == 0


async def test_a_batch_s_unconfirmed_mark_stays_while_its_member_waits_to_be_summed_up_again(gated):
    """The batch's mark written, its answer lost (the database gone right then); the insert then cut
    and the member's new mark too: the member waits in memory to be summed up again, and the mark
    the database may have written is the only one left for a process killed before the repair.
    The batch's end deleted it all the same (it was not among the members' marks); it now stays
    until the repair sums the member up again, and goes with it."""
    gate, db = gated
    gate.commands.clear()
    gate.cut(0, after=True)  # the batch's mark: written, its answer never arrives
    gate.hold("insert", REQUESTS)
    adding = asyncio.ensure_future(db.requests.add(MoodRequest(BOB, PLACE, "spotify:B", "sad", T0)))
    await asyncio.wait_for(gate.held.wait(), timeout=10)
    assert gate.was_cut
    gate.cut_next("insert", REQUESTS)  # the insert: never sent
    gate.cut(0)  # the member's new mark: never sent either
    gate.release()
    with pytest.raises(StorageError):
        await adding
    await db.requests.settled()
    assert gate.was_cut and gate.commands[:2] == [("insert", PLACE_REPAIRS)] * 2  # the batch's, the member's
    gate.cut(None)
    assert await db.db[REQUESTS].count_documents({}) == 0

    assert await marks(db) == 1, "the only mark of a member left to be summed up again was deleted"
    assert await db.playlists.playlist(PLACE, "sad") == []  # the repair
    assert await marks(db) == 0
