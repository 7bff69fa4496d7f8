"""The repairs of the members' journal summaries (`journal_tracks`) a failed write left wrong. An
answer whose summary the database refused after its entry was stored is marked in the database
(`journal_repairs`) as a delete is, but only then: a process killed before the next repair point
leaves it to the next start, and an answer whose summary is written costs no third write. And the
repair pass (`JournalRepo.summed_up`) goes past a member the database keeps refusing: it stopped
at the first, every member after them left wrong until it took their summaries."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from storage.database import Database
from storage.models import MoodRequest
from storage.outbox import JournalOutbox, JournalWrite, JournalWriter
from storage.schema import JOURNAL_REPAIRS, JOURNAL_TRACKS, VALIDATORS, ensure_collection
from tests.abuse.test_forget_cut_short import refusing_writes
from tests.fakes.wire_gate import gated_database
from tests.storage.conftest import T0
from tests.storage.memory import her_forget_leaves_his_repair_alone, the_next_process
from tests.storage.test_journal_delete_cut_short import SUMMARIES_LEFT, a_playlist_read, marks
from tests.storage.test_journal_summaries import assert_summaries_are_the_entries
from tests.storage.test_playlists import ALICE, BOB, PLACE, journal, ranking

NOT_MARKED = "journal.summaries_not_marked"
BOTH = [("spotify:A", 1), ("spotify:B", 1)]  # Alice's song and Bob's, both sad


async def members_of_the_place(db: Database, *members) -> None:
    for member in members:
        await db.requests.add(MoodRequest(member, PLACE, "spotify:asked", "happy", T0))
    await db.requests.settled()


async def both_cut_short(db: Database) -> None:
    """Alice's and Bob's answers (song A and song B, both sad) saved while the database refused
    their summaries: both left to be made again, Alice first."""
    await members_of_the_place(db, ALICE, BOB)
    await refusing_writes(db, JOURNAL_TRACKS)
    assert await db.journal.add(journal(ALICE, "A", "sad", T0))
    assert await db.journal.add(journal(BOB, "B", "sad", T0))


async def summaries_of(db: Database, member) -> int:
    return await db.db[JOURNAL_TRACKS].count_documents({"user_id": member.user_id})


async def test_an_answer_whose_summary_is_written_leaves_no_mark(db):
    await members_of_the_place(db, ALICE)
    assert await db.journal.add(journal(ALICE, "A", "sad", T0))
    assert await db.db.list_collection_names(filter={"name": JOURNAL_REPAIRS}) == []  # not even made
    await assert_summaries_are_the_entries(db)


async def test_an_answer_whose_summary_is_refused_is_marked_then_a_kill_has_it_summed_up_at_the_next_start(
        mongo_uri, db_name):
    """Killed (no stop) before any repair point: the next process knew nothing of it, and her vote
    stayed out of the playlists until her next delete. Her mark has the next start make it."""
    killed = await Database.connect(mongo_uri, db_name)
    await killed.init()
    await members_of_the_place(killed, ALICE)
    await refusing_writes(killed, JOURNAL_TRACKS)
    assert await killed.journal.add(journal(ALICE, "A", "sad", T0)) is True
    assert await marks(killed) == 1
    await ensure_collection(killed.db, JOURNAL_TRACKS, VALIDATORS[JOURNAL_TRACKS])  # the database back
    await killed.client.close()  # the process killed: no `close`, nothing of its memory kept
    async with the_next_process(mongo_uri, db_name) as after:
        assert await after.journal.recall_unsummed() == 1
        await a_playlist_read(after)
        await assert_summaries_are_the_entries(after)
        assert await marks(after) == 0


async def test_an_answer_whose_summary_and_mark_are_refused_is_saved_and_summed_up_at_the_next_read(db, caplog):
    """The mark refused too: the answer is still saved (the entry is), the member kept in memory,
    as before marks, and the refused mark logged."""
    await members_of_the_place(db, ALICE)
    await ensure_collection(db.db, JOURNAL_REPAIRS, None)  # made by its first write: here before it
    await refusing_writes(db, JOURNAL_REPAIRS)
    await refusing_writes(db, JOURNAL_TRACKS)
    with caplog.at_level(logging.WARNING, logger="storage.journal"):
        assert await db.journal.add(journal(ALICE, "A", "sad", T0)) is True
    assert [r.getMessage() for r in caplog.records if r.name == "storage.journal"] == [SUMMARIES_LEFT, NOT_MARKED]
    assert await marks(db) == 0
    await ensure_collection(db.db, JOURNAL_TRACKS, VALIDATORS[JOURNAL_TRACKS])  # the database back

    await a_playlist_read(db)

    await assert_summaries_are_the_entries(db)


async def test_a_member_whose_summaries_the_database_keeps_refusing_holds_up_no_one_else_s(db):
    """Alice's and Bob's answers both cut short (their summaries refused), then the database takes
    Bob's summaries and still refuses Alice's: the repair pass took Alice first, stopped there,
    and Bob's vote stayed out of the playlist as long as hers was refused."""
    await both_cut_short(db)
    await db.db.command("collMod", JOURNAL_TRACKS, validator={"user_id": {"$ne": ALICE.user_id}},
                        validationLevel="strict")  # Bob's taken, Alice's still refused

    await db.journal.summed_up()  # as a playlist read begins

    assert await summaries_of(db, BOB) == 1
    assert await summaries_of(db, ALICE) == 0 and await marks(db) == 1  # hers kept for the next repair point
    await ensure_collection(db.db, JOURNAL_TRACKS, VALIDATORS[JOURNAL_TRACKS])  # the database back
    assert ranking(await db.playlists.playlist(PLACE, "sad")) == BOTH
    await assert_summaries_are_the_entries(db)
    assert await marks(db) == 0


async def test_the_repair_pass_stops_at_an_outage(db_server, mongo_uri, db_name):
    """The database gone (the first write of Alice's summaries cut on the wire): each member after her
    would wait out the same outage; they are left, marked, for the next repair point."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        await gated.init()
        await both_cut_short(gated)
        await ensure_collection(gated.db, JOURNAL_TRACKS, VALIDATORS[JOURNAL_TRACKS])  # back, then gone
        gate.cut_next("delete", JOURNAL_TRACKS)

        await gated.journal.summed_up()

        assert gate.was_cut
        assert await summaries_of(gated, ALICE) == await summaries_of(gated, BOB) == 0
        assert await marks(gated) == 2
        assert ranking(await gated.playlists.playlist(PLACE, "sad")) == BOTH  # the next repair point
        await assert_summaries_are_the_entries(gated)
        assert await marks(gated) == 0
        await gated.client.drop_database(db_name)


def writer(db: Database, data_dir) -> JournalWriter:
    return JournalWriter(db.journal, JournalOutbox.in_data_dir(data_dir), db.prompts)


async def refused(gate, db: Database) -> JournalWrite:
    await refusing_writes(db, JOURNAL_TRACKS)
    return JournalWrite.STORED  # and marked


async def cut(gate, db: Database) -> JournalWrite:
    gate.cut_next("delete", JOURNAL_TRACKS)  # the first write of her summaries made again
    return JournalWrite.QUEUED  # kept in the outbox


@pytest.mark.parametrize("then", [refused, cut], ids=["then refused", "then an outage again"])
async def test_an_answer_cut_short_after_an_outage_left_her_unmarked_outlives_a_kill(
        db_server, mongo_uri, db_name, tmp_path, then):
    """Her first answer's summary cut by an outage (kept in the outbox: no mark), her next one's
    failed too: her summaries, already to be made again, were made again at the answer and failed
    there, the answer told saved, the member left in memory alone, and a kill lost the second vote
    (the drain folds in the first alone). A refusal marks her there too, an outage raises to the
    outbox, as where her summaries were not to be made again."""
    first, second = journal(ALICE, "A", "sad", T0), journal(ALICE, "B", "sad", T0 + timedelta(days=1))
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        await gated.init()
        await members_of_the_place(gated, ALICE)
        gate.cut_next("update", JOURNAL_TRACKS)  # the first's summary: the database gone
        assert await writer(gated, tmp_path).add_or_queue(first) is JournalWrite.QUEUED
        told = await then(gate, gated)
        assert await writer(gated, tmp_path).add_or_queue(second) is told
        assert await marks(gated) == (1 if told is JournalWrite.STORED else 0)
        await ensure_collection(gated.db, JOURNAL_TRACKS, VALIDATORS[JOURNAL_TRACKS])  # the database back
    async with the_next_process(mongo_uri, db_name) as after:  # the process killed: nothing of its memory kept
        await after.journal.recall_unsummed()
        await writer(after, tmp_path).drain()
        assert sorted(ranking(await after.playlists.playlist(PLACE, "sad"))) == BOTH
        await assert_summaries_are_the_entries(after)
        assert await marks(after) == 0


async def test_her_forget_keeps_nothing_of_her_in_memory_while_her_summaries_still_fail(db):
    """Alice's and Bob's summaries still refused when she sends /forget: her marks went with the
    rest, but the repair list kept her ids (and her marks') in memory until the next repair pass (a
    playlist read, an export, a /forget, the stop), on a quiet bot until the stop. Bob's are his."""
    await both_cut_short(db)
    await her_forget_leaves_his_repair_alone(db, db.journal, "_unsummed", JOURNAL_TRACKS, her=ALICE, his=BOB,
                                             his_song="spotify:B", marks=marks, agree=assert_summaries_are_the_entries)
