"""A /mood in a group whose member document (`place_members`, what the group's playlist reads) the
database refused after the request's summary (`place_tracks`) was written, then the bot killed
outright (SIGKILL) before anything read the group's playlist. The vote, in the summary, was left
out of the playlist until her document was next made again (a move, a sender's /forget). The
refusal marks her in the database (`place_repairs`), and the next start makes her document again
from her summaries (tests/storage/test_place_member_repairs.py has the storage's side)."""
from __future__ import annotations

import asyncio
import signal

from storage.schema import PLACE_MEMBERS, PLACE_REPAIRS, PLACE_TRACKS, REQUESTS, VALIDATORS, ensure_collection
from tests.abuse.test_forget_cut_short import refusing_writes
from tests.fakes.spotify_api import FakeSpotify
from tests.faults.test_journal_add_killed import her_journal_on, spotify_bot_env
from tests.faults.test_journal_delete_killed import (ALICE, GROUP, a_bot, her_playlist_after_the_restart, inbox_empty,
                                                      telegram_and_database)
from tests.frontends.conftest import CREEP
from tests.fakes.wire_gate import WireGate
from tests.frontends.test_telegram_inbox import until


async def test_a_request_whose_member_document_was_refused_then_a_hard_kill_is_in_the_playlist_after_the_restart(
        tmp_path, mongo_uri, db_name):
    async with telegram_and_database(mongo_uri, db_name) as (db, fake):
        with FakeSpotify() as spotify:
            link = await her_journal_on(db)  # Alice seen in the group; the song's mood cached: calm
            spotify.add(CREEP)
            env = spotify_bot_env(fake, spotify, tmp_path / "data", mongo_uri, db_name)
            async with a_bot(tmp_path / "first", env) as proc:
                await refusing_writes(db, PLACE_MEMBERS)
                await fake.user_sends(f"/mood {link}", user=ALICE, chat=GROUP)
                await fake.wait_for_reply(lambda c: c.chat_id == str(GROUP) and "Creep" in c.text, timeout=30)
                assert await until(lambda: marked(db), timeout=10)  # her summary written, her document refused
                assert await until(lambda: inbox_empty(db), timeout=10)
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
            await ensure_collection(db.db, PLACE_MEMBERS, VALIDATORS[PLACE_MEMBERS])  # the database back

            shown = await her_playlist_after_the_restart(db, fake, tmp_path / "next", env, "calm")
            assert "Creep" in shown, shown
            assert await db.db[PLACE_REPAIRS].count_documents({}) == 0


async def test_a_request_stored_then_a_hard_kill_before_its_summary_is_in_the_playlist_after_the_restart(
        tmp_path, db_server, mongo_uri, db_name):
    """The request inserted, the bot SIGKILLed while its summary's write was on its way (held on the
    wire, never sent): before, nothing marked her, and the vote was out of the playlist until she
    was next summed up again. Her mark is written before the insert: the next start sums her up."""
    async with telegram_and_database(mongo_uri, db_name) as (db, fake):
        with FakeSpotify() as spotify:
            link = await her_journal_on(db)
            spotify.add(CREEP)
            gate = await WireGate(db_server.port).start()
            try:
                env = spotify_bot_env(fake, spotify, tmp_path / "data", gate.uri(mongo_uri), db_name)
                async with a_bot(tmp_path / "first", env) as proc:
                    gate.hold("update", PLACE_TRACKS)
                    await fake.user_sends(f"/mood {link}", user=ALICE, chat=GROUP)
                    await asyncio.wait_for(gate.held.wait(), timeout=30)
                    assert await db.db[REQUESTS].count_documents({"track_key": f"spotify:{CREEP.id}"}) == 1
                    assert await until(lambda: inbox_empty(db), timeout=10)  # answered: not handed over again
                    proc.send_signal(signal.SIGKILL)
                    await proc.wait()
            finally:
                await gate.close()  # the held summary never sent

            env = spotify_bot_env(fake, spotify, tmp_path / "data", mongo_uri, db_name)
            shown = await her_playlist_after_the_restart(db, fake, tmp_path / "next", env, "calm")
            assert "Creep" in shown, shown
            assert await db.db[PLACE_REPAIRS].count_documents({}) == 0


async def marked(db) -> bool:
    return await db.db[PLACE_REPAIRS].count_documents({"user_id": str(ALICE)}) == 1
