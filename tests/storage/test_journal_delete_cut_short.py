"""A /journal delete the database cut short after the entry went (its delete_one done) and before
the member's summaries (`storage/journal_tracks.py`) were made to agree with their entries: the
entry is gone, so the delete is done, and the summaries are made again before anything reads them
(the next playlist, an export) or at the member's next answer, or at a stop; until then their
playlist vote would still be the deleted entry's (or, the summary deleted and not written again,
missing). And a member's answer saved while a delete of theirs makes their summaries again keeps
its vote."""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Awaitable, Callable

import pytest

from storage.database import Database
from storage.models import MoodRequest
from storage.schema import JOURNAL_TRACKS, VALIDATORS, ensure_collection
from tests.abuse.test_forget_cut_short import refusing_writes
from tests.fakes.wire_gate import gated_database
from tests.storage.conftest import T0
from tests.storage.test_journal_summaries import assert_summaries_are_the_entries
from tests.storage.test_playlists import ALICE, PLACE, journal, ranking

DAY = timedelta(days=1)
SUMMARIES_LEFT = "journal.summaries_not_made_again"


async def deleted_while_summaries_refused(db: Database) -> bool:
    """Alice, a member of the place, journaled song A sad, then calm the day after (her vote:
    calm); the later entry is deleted while the database refuses the summaries' writes, then the
    database is back. What the delete returned."""
    await db.requests.add(MoodRequest(ALICE, PLACE, "spotify:asked", "happy", T0))
    await db.requests.settled()
    await db.journal.add(journal(ALICE, "A", "sad", T0))
    later = journal(ALICE, "A", "calm", T0 + DAY)
    await db.journal.add(later)
    await refusing_writes(db, JOURNAL_TRACKS)
    deleted = await db.journal.delete(ALICE, later.prompt_id)
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
    after = await Database.connect(mongo_uri, db_name)
    try:
        await assert_summaries_are_the_entries(after)
    finally:
        await after.client.drop_database(db_name)
        await after.close()


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
