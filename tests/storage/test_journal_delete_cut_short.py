"""A /journal delete the database cut short after the entry went (its delete_one done) and before
the member's summaries (`storage/journal_tracks.py`) were made to agree with their entries: the
entry is gone, so the delete is done, and the summaries are made again before anything reads them
(the next playlist, an export) or at the member's next answer, or at a stop; until then their
playlist vote would still be the deleted entry's (or, the summary deleted and not written again,
missing). The member is marked in the database before the entry's delete (`journal_repairs`), so
that a process killed before the summaries are made again leaves them to the next start. And a
member's answer saved while a delete of theirs makes their summaries again keeps its vote."""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Awaitable, Callable

import pytest

from storage.database import Database
from storage.models import DatabaseUnavailableError, MoodRequest, StorageError
from storage.schema import JOURNAL_REPAIRS, JOURNAL_TRACKS, VALIDATORS, ensure_collection
from tests.abuse.test_forget_cut_short import refusing_writes
from tests.fakes.wire_gate import gated_database
from tests.storage.conftest import T0
from tests.storage.memory import the_next_process
from tests.storage.test_journal_summaries import assert_summaries_are_the_entries
from tests.storage.test_playlists import ALICE, PLACE, journal, ranking

DAY = timedelta(days=1)
SUMMARIES_LEFT = "journal.summaries_not_made_again"


LATER = journal(ALICE, "A", "calm", T0 + DAY)


async def her_two_entries(db: Database) -> None:
    """Alice, a member of the place, journaled song A sad, then calm the day after (`LATER`): her
    vote is calm; with the later entry deleted, sad."""
    await db.requests.add(MoodRequest(ALICE, PLACE, "spotify:asked", "happy", T0))
    await db.requests.settled()
    await db.journal.add(journal(ALICE, "A", "sad", T0))
    await db.journal.add(LATER)


async def deleted_while_summaries_refused(db: Database) -> bool:
    """Her later entry (`her_two_entries`) is deleted while the database refuses the summaries'
    writes, then the database is back. What the delete returned."""
    await her_two_entries(db)
    await refusing_writes(db, JOURNAL_TRACKS)
    deleted = await db.journal.delete(ALICE, LATER.prompt_id)
    await ensure_collection(db.db, JOURNAL_TRACKS, VALIDATORS[JOURNAL_TRACKS])  # the database back
    return deleted


async def a_playlist_read(db: Database) -> None:
    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [("spotify:A", 1)]


async def her_next_answer(db: Database) -> None:
    await db.journal.add(journal(ALICE, "B", "happy", T0 + 2 * DAY))


async def her_export(db: Database) -> None:
    [summary] = (await db.privacy.export(ALICE)).journal_tracks
    assert (summary.track_key, summary.latest.mood) == ("spotify:A", "sad")


@pytest.mark.parametrize("then", [a_playlist_read, her_next_answer, her_export])
async def test_a_delete_cut_short_before_the_summaries_is_done_and_they_are_made_again_before_they_are_read(
        db, caplog, then: Callable[[Database], Awaitable[None]]):
    with caplog.at_level(logging.WARNING, logger="storage.journal"):
        assert await deleted_while_summaries_refused(db) is True  # the entry is gone: deleted, said so
    assert [r.levelno for r in caplog.records if r.getMessage() == SUMMARIES_LEFT] == [logging.WARNING]
    assert [e.prompt_id for e in await db.journal.list(ALICE)] == [journal(ALICE, "A", "sad", T0).prompt_id]

    await then(db)

    await assert_summaries_are_the_entries(db)


async def test_a_delete_cut_short_before_the_summaries_has_them_made_again_at_a_stop(mongo_uri, db_name):
    """Nothing read them before the bot stopped: its stop makes them, or they would wait for the
    member's next delete (the next bot knows nothing of the failure)."""
    database = await Database.connect(mongo_uri, db_name)
    await database.init()
    assert await deleted_while_summaries_refused(database)
    await database.close()
    async with the_next_process(mongo_uri, db_name) as after:
        await assert_summaries_are_the_entries(after)


async def test_an_answer_saved_while_a_delete_makes_the_summaries_again_keeps_its_vote(db_server, mongo_uri, db_name):
    """A delete read her entries, then her summaries; an answer saved in between (a /journal delete
    <date> while today's answer is being saved) had folded its vote into her summary, which the delete,
    from the entries it read before, wrote back without it. Her add and delete take turns."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        await gated.init()
        await gated.journal.add(journal(ALICE, "A", "sad", T0))
        older = journal(ALICE, "B", "calm", T0 - DAY)
        await gated.journal.add(older)
        gate.hold("find", JOURNAL_TRACKS)  # the delete's read of her summaries, after her entries'
        deleting = asyncio.create_task(gated.journal.delete(ALICE, older.prompt_id))
        await asyncio.wait_for(gate.held.wait(), 30)
        answering = asyncio.create_task(gated.journal.add(journal(ALICE, "A", "happy", T0 + DAY)))
        await asyncio.wait({answering}, timeout=1)  # saved by then, unless it waits for the delete
        gate.release()

        assert await deleting and await answering
        await assert_summaries_are_the_entries(gated)
        await gated.client.drop_database(db_name)


async def marks(db: Database) -> int:
    return await db.db[JOURNAL_REPAIRS].count_documents({})


@pytest.mark.parametrize("failing_at_start", [False, True], ids=["the database back", "still failing at the start"])
async def test_a_delete_cut_short_then_a_kill_has_the_summaries_made_again_at_the_next_start(
        mongo_uri, db_name, failing_at_start):
    """Killed (no stop) before anything made them again: the next process knew nothing of it, and
    they stayed wrong until her next delete. The mark left in the database has them made again by
    the next start (`recall_unsummed`, as the app's start calls it), or, the database failing them
    still, at the next read, the mark kept until then."""
    killed = await Database.connect(mongo_uri, db_name)
    await killed.init()
    assert await deleted_while_summaries_refused(killed)
    await killed.client.close()  # the process killed: no `close`, nothing of its memory kept
    async with the_next_process(mongo_uri, db_name) as after:
        if failing_at_start:
            await refusing_writes(after, JOURNAL_TRACKS)
        assert await after.journal.recall_unsummed() == 1
        if failing_at_start:
            assert await marks(after) == 1  # kept: made again later
            await ensure_collection(after.db, JOURNAL_TRACKS, VALIDATORS[JOURNAL_TRACKS])
            await a_playlist_read(after)
        await assert_summaries_are_the_entries(after)
        assert await marks(after) == 0


async def test_a_delete_whose_mark_the_database_refuses_deletes_nothing(db):
    """The mark is written before the entry's delete: a database that refuses it refuses the delete
    (the user is told to try again), rather than delete with nothing that outlives the process."""
    await her_two_entries(db)
    await ensure_collection(db.db, JOURNAL_REPAIRS, None)  # made by its first write: here before it
    await refusing_writes(db, JOURNAL_REPAIRS)

    with pytest.raises(StorageError):
        await db.journal.delete(ALICE, LATER.prompt_id)

    assert len(await db.journal.list(ALICE)) == 2
    await assert_summaries_are_the_entries(db)


async def test_a_mark_the_database_fails_to_delete_goes_at_the_next_repair(db_server, mongo_uri, db_name, caplog):
    """Her summaries made again, the mark's delete cut at the wire: kept (the next start would
    make them again, for nothing), and deleted at the next read; a delete that finds no entry, or
    one done whole, leaves none."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        await gated.init()
        await her_two_entries(gated)
        assert await gated.journal.delete(ALICE, "no such prompt") is False
        assert await marks(gated) == 0
        gate.cut_next("delete", JOURNAL_REPAIRS)
        with caplog.at_level(logging.WARNING, logger="storage.journal"):
            assert await gated.journal.delete(ALICE, LATER.prompt_id) is True
        assert gate.was_cut and await marks(gated) == 1
        assert "journal.summary_marks_not_cleared" in [r.getMessage() for r in caplog.records]

        await a_playlist_read(gated)

        assert await marks(gated) == 0
        await gated.client.drop_database(db_name)


async def test_her_forget_erases_her_mark_whatever_the_summaries(db):
    """A mark names the member (their ids, and when): /forget erases it with the rest, even where
    the database still fails her summaries (they go too)."""
    await her_two_entries(db)
    await refusing_writes(db, JOURNAL_TRACKS)
    assert await db.journal.delete(ALICE, LATER.prompt_id)
    assert await marks(db) == 1

    await db.privacy.forget(ALICE)

    assert await marks(db) == 0
    assert await db.db[JOURNAL_TRACKS].count_documents({"user_id": ALICE.user_id}) == 0


async def test_a_mark_whose_answer_an_outage_lost_goes_at_the_next_repair(db_server, mongo_uri, db_name):
    """The mark written, its answer lost on the wire (the database gone right then): the delete is
    refused (nothing deleted, the user told to try again), and the mark, which this process did not
    know of, stayed until the next start. It is cleared at the next repair point (a read)."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        await gated.init()
        await her_two_entries(gated)
        gate.cut(0, after=True)  # the mark's insert: done, its answer never arrives
        with pytest.raises(StorageError):
            await gated.journal.delete(ALICE, LATER.prompt_id)
        assert gate.was_cut
        gate.cut(None)
        assert await marks(gated) == 1 and len(await gated.journal.list(ALICE)) == 2

        await gated.playlists.playlist(PLACE, "calm")

        assert await marks(gated) == 0
        await assert_summaries_are_the_entries(gated)
        await gated.client.drop_database(db_name)


async def test_a_mark_an_outage_kept_from_the_database_is_not_taken_for_one_that_outlives_the_process(
        db_server, mongo_uri, db_name):
    """The mark's insert cut before it was sent (nothing written, the delete refused): her next
    answer, whose summaries an outage cuts short too, still raises for the outbox to keep it on disk;
    no mark of hers would make them again after a kill."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        await gated.init()
        await her_two_entries(gated)
        gate.cut(0)  # the mark's insert, never sent
        with pytest.raises(StorageError):
            await gated.journal.delete(ALICE, LATER.prompt_id)
        gate.cut(None)
        assert await marks(gated) == 0

        gate.cut_next("update", JOURNAL_TRACKS)  # her summaries, made again at her answer
        with pytest.raises(DatabaseUnavailableError):
            await her_next_answer(gated)
        assert gate.was_cut
        await gated.client.drop_database(db_name)
