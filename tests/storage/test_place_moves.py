"""A group's move to a new id (a Telegram group upgraded to a supergroup) that the database cut
short at any of its steps is finished later, at the next start or at the next update in the
place under its new id, and ends exactly as a move never cut short: the same documents, the same
playlists, settings, members and exports, and no record of it left.

The database relay (tests/fakes/wire_gate.py) closes the connection at the n-th command of the
move, for each n in turn: before the command reaches the server, or after the server did it and
before its answer arrives."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import AsyncIterator

import pytest
from bson import json_util

from bot.usecases.playlists import PlaylistUseCase
from storage.database import Database
from storage.models import JournalEntry, MoodRequest, UserRef
from storage.schema import DEPARTURES, JOURNAL, PLACE_MOVES, PLACE_TRACKS, REQUESTS, SERVERS
from tests.fakes.wire_gate import WireGate
from tests.storage.conftest import T0
from tests.storage.test_privacy import documents_mentioning

PLATFORM, OLD_ID, NEW_ID = "chat", "g1", "g1-new"
OLD, NEW = f"{PLATFORM}:{OLD_ID}", f"{PLATFORM}:{NEW_ID}"
ALICE, BOB, CAROL = UserRef(PLATFORM, "u-a11ce"), UserRef(PLATFORM, "u-b0b"), UserRef(PLATFORM, "u-car0l")
THE_GROUP = UserRef(PLATFORM, OLD_ID)  # what it posted as itself (an anonymous admin's /mood)
H = timedelta(hours=1)
COLLECTIONS = (REQUESTS, JOURNAL, PLACE_TRACKS, DEPARTURES, SERVERS, PLACE_MOVES)


@pytest.fixture
def gate_uri(gate: WireGate, mongo_uri: str) -> str:
    return gate.uri(mongo_uri) + "&retryReads=false"  # a read cut short fails, as a write does


@pytest.fixture
def database_uri(gate_uri: str) -> str:
    return gate_uri  # `db` goes through the relay


async def seed(db: Database) -> None:
    """A group with songs of three members and of itself, a member gone, a journal entry written
    there, its playlists turned off; and a song asked under its new id before the move was seen."""
    for who, place, track, mood, at in [(ALICE, OLD, "A", "sad", T0), (ALICE, OLD, "B", "sad", T0 + H),
                                        (BOB, OLD, "A", "sad", T0 + 2 * H), (THE_GROUP, OLD, "C", "calm", T0),
                                        (BOB, NEW, "A", "calm", T0 + 3 * H),
                                        (CAROL, OLD, "D", "happy", T0 + H)]:
        await db.requests.add(MoodRequest(who, place, f"spotify:{track}", mood, at))
    await db.journal.add(JournalEntry(user=BOB, local_date=T0.date(), prompt_id="p1", phrase="Song?",
                                      reply_text="b-side.ogg", track_key="sha256:cd34", track_title="b-side",
                                      mood="calm", valence=0.0, arousal=0.0, created_at=T0, place=OLD))
    await db.playlists.member_left(OLD, CAROL, T0 + 4 * H)
    await db.servers.set_playlist_enabled(OLD, False)


async def clear(db: Database) -> None:
    for name in COLLECTIONS:
        await db.db[name].delete_many({})


async def state(db: Database) -> dict:
    """Every document of the move's collections (less generated ids), and what users see."""
    documents = {}
    for name in COLLECTIONS:
        docs = await db.db[name].find({}).to_list()
        documents[name] = sorted(json_util.dumps({k: v for k, v in doc.items() if k != "_id" or name == SERVERS},
                                                 sort_keys=True) for doc in docs)
    exports = {}
    for ref in (ALICE, BOB, CAROL):
        export = await db.privacy.export(ref)
        exports[ref.user_id] = {part: sorted(map(repr, getattr(export, part)))
                                for part in ("requests", "journal", "departures", "place_tracks")}
    return {
        "documents": documents,
        "exports": exports,
        "playlists": {mood: [(i.track_key, i.members) for i in await db.playlists.playlist(NEW, mood)]
                      for mood in ("sad", "calm", "happy")},
        "members": await db.playlists.members_seen(NEW),
        "enabled": (await db.servers.get(NEW)).playlist_enabled,
    }


@asynccontextmanager
async def process(uri: str, db_name: str) -> AsyncIterator[Database]:
    """A bot process's database: its own client, and its own memory (of requests on their way,
    of moves), lost when it stops."""
    database = await Database.connect(uri, db_name)
    try:
        yield database
    finally:
        await database.close()


async def seeded(uri: str, db_name: str) -> None:
    async with process(uri, db_name) as db:
        await clear(db)
        await seed(db)


async def uninterrupted(uri: str, db_name: str, gate: WireGate) -> tuple[dict, int]:
    """The state a move never cut short leaves, and how many data commands it took."""
    await seeded(uri, db_name)
    async with process(uri, db_name) as db:
        gate.commands.clear()
        await PlaylistUseCase(db).place_moved(PLATFORM, OLD_ID, NEW_ID)
        steps = len(gate.commands)
        reference = await state(db)
    # Alice's songs (Bob's last word on A is calm), the group as one member, Carol gone, playlists off.
    assert reference["playlists"] == {"sad": [("spotify:B", 1), ("spotify:A", 1)],
                                      "calm": [("spotify:A", 1), ("sha256:cd34", 1), ("spotify:C", 1)],
                                      "happy": []}
    assert reference["members"] == [UserRef(PLATFORM, NEW_ID), ALICE, BOB] and reference["enabled"] is False
    assert all(f'"{OLD}"' not in doc for docs in reference["documents"].values() for doc in docs
               if '"moved_from"' not in doc)
    return reference, steps


async def test_a_move_cut_short_at_any_step_is_finished_at_the_next_start_as_if_never_cut(
        db, gate, gate_uri, db_name, caplog):
    reference, steps = await uninterrupted(gate_uri, db_name, gate)
    assert steps > 10, gate.commands
    for n in range(steps):
        await seeded(gate_uri, db_name)
        async with process(gate_uri, db_name) as cut_short:
            gate.cut(n)
            caplog.clear()
            with caplog.at_level(logging.WARNING):
                await PlaylistUseCase(cut_short).place_moved(PLATFORM, OLD_ID, NEW_ID)
            assert gate.was_cut and "server.place_not_moved" in caplog.text, (n, gate.commands[-1])
            gate.cut(None)
        # The process stopped there. Cut at its record, nothing was moved, nor kept to be.
        assert await db.db[PLACE_MOVES].count_documents({}) == (0 if n == 0 else 1), n
        async with process(gate_uri, db_name) as restarted:
            finished = await PlaylistUseCase(restarted).finish_moves()
            assert finished == (0 if n == 0 else 1), n
            if n > 0:
                assert await state(restarted) == reference, (n, gate.commands[n])



async def test_a_move_whose_answers_were_lost_is_finished_at_the_next_update_under_the_new_id(
        db, gate, gate_uri, db_name, caplog):
    """Each step done by the database, its answer lost on the way: the same process tries again
    before it answers anything in the place under its new id, not at every update while the
    database fails, and the whole move run again ends as one run once."""
    reference, steps = await uninterrupted(gate_uri, db_name, gate)
    for n in range(steps):
        await seeded(gate_uri, db_name)
        async with process(gate_uri, db_name) as running:
            playlists = PlaylistUseCase(running)
            gate.cut(n, after=True)
            with caplog.at_level(logging.WARNING):
                await playlists.place_moved(PLATFORM, OLD_ID, NEW_ID)
            assert gate.was_cut, n
            gate.cut(None)
            gate.commands.clear()
            await playlists.settle_moves(PLATFORM, NEW_ID)  # at once: the database is given time
            await playlists.settle_moves(PLATFORM, OLD_ID)  # no move to the old id
            assert gate.commands == [], n
            playlists.move_retry_s = 0  # the time has come
            await playlists.settle_moves(PLATFORM, NEW_ID)
            assert await state(running) == reference, (n, gate.commands[n])
            gate.commands.clear()
            await playlists.settle_moves(PLATFORM, NEW_ID)  # done: nothing left to do
            assert gate.commands == [], n


async def test_a_member_forgotten_while_a_move_is_unfinished_is_not_brought_back_by_its_end(
        db, gate, gate_uri, db_name):
    """Cut after the requests moved, before their summaries did: Alice's /forget then, and the move
    finished afterwards, leave nothing of hers, and the others' data (and exports) as a move
    never cut short leaves them."""
    reference, _ = await uninterrupted(gate_uri, db_name, gate)
    await seeded(gate_uri, db_name)
    async with process(gate_uri, db_name) as running:
        playlists = PlaylistUseCase(running)
        gate.cut(gate.commands.index(("aggregate", REQUESTS)))
        await playlists.place_moved(PLATFORM, OLD_ID, NEW_ID)
        assert gate.was_cut
        gate.cut(None)
        assert await running.db[REQUESTS].count_documents({"place": OLD}) == 0
        assert await running.db[PLACE_TRACKS].count_documents({"place": OLD}) > 0
        await running.privacy.forget(ALICE)
        assert await documents_mentioning(running, ALICE.user_id) == []
    async with process(gate_uri, db_name) as restarted:
        assert await PlaylistUseCase(restarted).finish_moves() == 1
        assert await documents_mentioning(restarted, ALICE.user_id) == []
        after = await state(restarted)
    assert after["exports"][BOB.user_id] == reference["exports"][BOB.user_id]
    assert after["exports"][CAROL.user_id] == reference["exports"][CAROL.user_id]
    assert after["playlists"] == {**reference["playlists"], "sad": []}  # the sad songs were Alice's
    assert after["members"] == [UserRef(PLATFORM, NEW_ID), BOB] and after["enabled"] is False


async def test_a_choice_made_under_the_new_id_before_the_move_is_finished_stays(db, gate, gate_uri, db_name):
    """Cut once the settings were copied, before the old id's were deleted: an admin who turns the
    playlists on in the supergroup meanwhile keeps them on, the old group's 'off' is not copied
    again over it when the move is finished."""
    reference, _ = await uninterrupted(gate_uri, db_name, gate)
    await seeded(gate_uri, db_name)
    async with process(gate_uri, db_name) as running:
        gate.cut(gate.commands.index(("delete", SERVERS)))
        await PlaylistUseCase(running).place_moved(PLATFORM, OLD_ID, NEW_ID)
        assert gate.was_cut
        gate.cut(None)
        await running.servers.set_playlist_enabled(NEW, True)
    async with process(gate_uri, db_name) as restarted:
        assert await PlaylistUseCase(restarted).finish_moves() == 1
        after = await state(restarted)
    assert after["enabled"] is True and await db.db[SERVERS].count_documents({"_id": OLD}) == 0
    assert {**after, "enabled": False, "documents": None} == {**reference, "documents": None}
