"""A journal answer the database cut short after its entry was stored (insert_one done) and before
its summary (`storage/journal_tracks.py`) was written: the entry is there, so the answer is saved,
and the member's summaries are made again before anything reads them, as after a delete cut short
(tests/storage/test_journal_delete_cut_short.py). Raised, the user was told to try again though the
entry was kept, its prompt left unmarked, and, tried again or not, the playlists left its vote out
until the member's next delete."""
from __future__ import annotations

import logging
from typing import Awaitable, Callable

import pytest

from storage.database import Database
from storage.models import MoodRequest
from storage.outbox import JournalOutbox, JournalWrite, JournalWriter
from storage.schema import JOURNAL_TRACKS, VALIDATORS, ensure_collection
from tests.abuse.test_forget_cut_short import refusing_writes
from tests.fakes.wire_gate import gated_database
from tests.storage.conftest import T0
from tests.storage.test_journal_delete_cut_short import SUMMARIES_LEFT, a_playlist_read, her_export, her_next_answer
from tests.storage.test_journal_summaries import assert_summaries_are_the_entries
from tests.storage.test_playlists import ALICE, PLACE, journal


@pytest.mark.parametrize("then", [a_playlist_read, her_next_answer, her_export])
async def test_an_answer_cut_short_before_its_summary_is_saved_and_summed_up_before_it_is_read(
        db: Database, caplog, then: Callable[[Database], Awaitable[None]]):
    await db.requests.add(MoodRequest(ALICE, PLACE, "spotify:asked", "happy", T0))  # a member of the place
    await db.requests.settled()
    entry = journal(ALICE, "A", "sad", T0)
    await refusing_writes(db, JOURNAL_TRACKS)
    with caplog.at_level(logging.WARNING, logger="storage.journal"):
        assert await db.journal.add(entry) is True  # stored: saved, said so
    assert [r.levelno for r in caplog.records if r.getMessage() == SUMMARIES_LEFT] == [logging.WARNING]
    assert [e.prompt_id for e in await db.journal.list(ALICE)] == [entry.prompt_id]
    await ensure_collection(db.db, JOURNAL_TRACKS, VALIDATORS[JOURNAL_TRACKS])  # the database back

    await then(db)

    await assert_summaries_are_the_entries(db)


async def test_an_answer_whose_summary_an_outage_cut_short_is_kept_on_disk_till_it_is_summed_up(
        db_server, mongo_uri, db_name, tmp_path):
    """The database gone between the entry's write and its summary's: the answer is kept in the
    outbox, on disk, as one the database did not take, so that a bot killed before the next repair
    point still has its vote summed up, by the next drain (the stored entry, a duplicate, folded in
    again). Told stored, it was remembered in memory alone, and lost to a kill."""
    entry = journal(ALICE, "A", "sad", T0)
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        await gated.init()
        gate.cut_next("update", JOURNAL_TRACKS)  # the summary's upsert: the database gone
        assert await JournalWriter(gated.journal, JournalOutbox.in_data_dir(tmp_path), gated.prompts
                                   ).add_or_queue(entry) is JournalWrite.QUEUED
        assert gate.was_cut
    restarted = await Database.connect(mongo_uri, db_name)
    try:
        await JournalWriter(restarted.journal, JournalOutbox.in_data_dir(tmp_path), restarted.prompts).drain()
        assert [e.prompt_id for e in await restarted.journal.list(ALICE)] == [entry.prompt_id]
        await assert_summaries_are_the_entries(restarted)
        assert await restarted.db[JOURNAL_TRACKS].count_documents({}) == 1
    finally:
        await restarted.client.drop_database(db_name)
        await restarted.close()
