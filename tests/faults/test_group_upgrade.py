"""A Telegram group becomes a supergroup (a new chat id) while the database is down: both of
Telegram's service messages about it come and go before it is back. Its songs and its admin's
'playlists off' still follow it to the new id, once the database answers again: before the
supergroup's next command is answered. A move the bot was stopped in the middle of is finished
by its next start; one the database was down for from its first step, with the bot killed before
it came back, by the restart: its updates stay kept (in the inbox's spool) until the move is made."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timezone

from bot.usecases import build_usecases
from bot.usecases.inbox import MAX_REPLAYS
from bot.usecases.playlists import PlaylistUseCase
from storage.database import Database
from storage.models import MoodRequest, UserRef
from storage.spool import SPOOL_FILENAME
from tests.bot.conftest import Outage
from tests.bot.test_app import start_bot, stop_bot, telegram_env, wait_for_log
from tests.dbserver import DBServer, free_port
from tests.fakes.wire_gate import WireGate
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN, telegram_on
from tests.frontends.test_inbox_spool import spooling
from tests.frontends.test_telegram_inbox import inbox_numbers, until

ALICE, BOB = 42, 43
OLD, NEW = -778, -100778


async def handled(frontend) -> None:
    await asyncio.sleep(0.05)
    while frontend.flow.pending:
        await asyncio.sleep(0.01)


async def test_a_group_upgraded_while_the_database_is_down_keeps_its_songs_and_settings(tmp_path, db_name, caplog):
    server = DBServer(port=free_port(), storage_path=str(tmp_path / "db")).start()
    # Down, the database is given up on after half a second (3 s in the suite's URI).
    db = await Database.connect(server.uri_failing_after(500), db_name)
    await db.init()
    usecases = build_usecases(db, classifier=None, fetcher=None)
    try:
        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, frontend):
            fake.admins[str(OLD)] = {str(ALICE)}
            await fake.user_sends("/serverplaylist off", chat=OLD, chat_type="group", user=ALICE)
            assert (await fake.wait_for("sendMessage")).text.startswith("Group playlists are off")
            await db.requests.add(MoodRequest(UserRef("telegram", str(BOB)), f"telegram:{OLD}",
                                              f"spotify:{0:022d}", "sad", datetime.now(timezone.utc),
                                              title="Radiohead – Creep"))

            server.stop(kill=True)
            caplog.set_level(logging.INFO)
            await fake.user_sends(None, chat=OLD, chat_type="group", user=ALICE, extra={"migrate_to_chat_id": NEW})
            await fake.user_sends(None, chat=NEW, user=ALICE, extra={"migrate_from_chat_id": OLD})
            await handled(frontend)
            assert "server.place_not_moved" in caplog.text
            server = DBServer(port=server.port, storage_path=server.storage_path).start()
            usecases.playlists.move_retry_s = 0  # a while later

            mark = fake.mark()
            await fake.user_sends("/playlist sad", chat=NEW, user=ALICE)
            assert "off" in (await fake.wait_for("sendMessage", after=mark)).text.lower()  # the admin's choice
            fake.admins[str(NEW)] = {str(ALICE)}
            await fake.user_sends("/serverplaylist on", chat=NEW, user=ALICE)
            await fake.wait_for("sendMessage", lambda c: c.text.startswith("Group playlists are on"), after=mark)
            mark = fake.mark()
            await fake.user_sends("/playlist sad", chat=NEW, user=ALICE)
            assert "Creep" in (await fake.wait_for("sendMessage", after=mark)).text  # Bob's song
        assert await db.db["requests"].count_documents({"place": f"telegram:{OLD}"}) == 0
        assert await db.db["place_tracks"].count_documents({"place": f"telegram:{OLD}"}) == 0
        assert await db.db["place_moves"].count_documents({}) == 0
        assert "server.place_moved" in caplog.text
    finally:
        await db.close()
        server.stop(kill=True)


async def test_a_move_the_bot_was_stopped_in_the_middle_of_is_finished_by_its_next_start(
        tmp_path, db_server, mongo_uri, db_name):
    """The requests moved, their summaries and the settings not yet, when the bot stopped (the
    database went away, then the bot was restarted): the start finishes the move."""
    gate = await WireGate(db_server.port).start()
    cut_short = await Database.connect(gate.uri(mongo_uri) + "&retryReads=false", db_name)
    await cut_short.init()
    old, new = f"telegram:{OLD}", f"telegram:{NEW}"
    try:
        await cut_short.servers.set_playlist_enabled(old, False)
        await cut_short.requests.add(MoodRequest(UserRef("telegram", str(BOB)), old, f"spotify:{0:022d}", "sad",
                                                 datetime.now(timezone.utc), title="Radiohead – Creep"))
        gate.cut(2)  # the move's record, its requests moved, then the journal's entries: cut there
        await PlaylistUseCase(cut_short).place_moved("telegram", str(OLD), str(NEW))
        assert gate.was_cut
    finally:
        await cut_short.close()
        await gate.close()
    db = await Database.connect(mongo_uri, db_name)
    assert await db.playlists.playlist(new, "sad") == []  # its summary is still under the old id
    fake = await FakeTelegramBotAPI("987654:SENTINEL-app-token").start()
    proc = await start_bot(tmp_path, telegram_env(fake, tmp_path / "data", MONGODB_URI=mongo_uri,
                                                  MONGODB_DATABASE=db_name))
    try:
        await wait_for_log(tmp_path / "stderr", "event=app.started", timeout=60)
        assert "event=server.place_moved" in (tmp_path / "stderr").read_text()
        assert [item.title for item in await db.playlists.playlist(new, "sad")] == ["Radiohead – Creep"]
        assert (await db.servers.get(new)).playlist_enabled is False
        assert await db.db["place_moves"].count_documents({}) == 0
        assert await db.db["place_tracks"].count_documents({"place": old}) == 0
    finally:
        await stop_bot(proc, 20)
        await fake.stop()
        await db.client.drop_database(db_name)
        await db.close()
    assert proc.returncode == 0, (tmp_path / "stderr").read_text()[-3000:]


@contextlib.asynccontextmanager
async def upgraded_while_down(outage, tmp_path, caplog):
    """A group with an admin's 'playlists off' and Bob's song, upgraded (both of Telegram's service
    messages) while the database is down: a bot (its front-end and use cases, the spool under
    `tmp_path`) that handled them and failed to move it, still running."""
    await outage.db.servers.set_playlist_enabled(f"telegram:{OLD}", False)
    await outage.db.requests.add(MoodRequest(UserRef("telegram", str(BOB)), f"telegram:{OLD}", f"spotify:{0:022d}",
                                             "sad", datetime.now(timezone.utc), title="Radiohead – Creep"))
    outage.down()
    caplog.set_level(logging.INFO)
    usecases = spooling(outage.db, tmp_path)
    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, _):
        await fake.user_sends(None, chat=OLD, chat_type="group", user=ALICE, extra={"migrate_to_chat_id": NEW})
        await fake.user_sends(None, chat=NEW, user=ALICE, extra={"migrate_from_chat_id": OLD})
        # Both tried (each waits out the database's 3 s), the second after the first.
        assert await until(lambda: caplog.text.count("server.place_not_moved") == 2, timeout=20)
        yield usecases, fake


async def moved(db) -> bool:
    new = f"telegram:{NEW}"
    return ([item.title for item in await db.playlists.playlist(new, "sad")] == ["Radiohead – Creep"]
            and (await db.servers.get(new)).playlist_enabled is False
            and await db.db["place_moves"].count_documents({}) == 0)


async def test_a_move_the_database_was_down_for_is_made_by_the_restart_after_a_kill(tmp_path, caplog):
    """Before, its updates were answered, and so cleared from the spool: the restart had nothing
    to hand over, and the group's songs and settings stayed under its old id."""
    spool = tmp_path / SPOOL_FILENAME
    async with Outage(tmp_path) as outage:
        async with upgraded_while_down(outage, tmp_path, caplog):
            await asyncio.sleep(0.5)  # what was answered is cleared by now (after 0.1 s)
            left = spool.read_bytes() if spool.exists() else b""
        spool.write_bytes(left)  # killed there: the stop's bookkeeping never happened
        outage.up()

        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), spooling(outage.db, tmp_path)):
            assert await until(lambda: moved(outage.db)), "the restart did not move the group"
            assert await until(lambda: not spool.exists()), "the move's updates were not cleared once it was made"
            assert await until(lambda: _none_kept(outage.db))
        assert await outage.db.db["requests"].count_documents({"place": f"telegram:{OLD}"}) == 0


async def test_a_move_the_database_was_down_for_is_cleared_once_the_running_bot_makes_it(tmp_path, caplog):
    """The database back while the bot runs: the supergroup's next command has the move made
    first, and its updates are cleared then, not handed over again by the next start."""
    spool = tmp_path / SPOOL_FILENAME
    async with Outage(tmp_path) as outage:
        async with upgraded_while_down(outage, tmp_path, caplog) as (usecases, fake):
            await asyncio.sleep(0.5)
            assert spool.exists(), "the move's updates were cleared before it was made"
            outage.up()
            usecases.playlists.move_retry_s = 0  # a while later
            mark = fake.mark()
            await fake.user_sends("/playlist sad", chat=NEW, user=ALICE)
            assert "off" in (await fake.wait_for("sendMessage", after=mark)).text.lower()  # the admin's choice
            assert await moved(outage.db)
            assert await until(lambda: not spool.exists()), "the move's updates were not cleared once it was made"
            assert await until(lambda: _none_kept(outage.db))


async def test_a_move_the_database_stays_down_for_over_many_starts_is_made_once_it_is_back(tmp_path, caplog):
    """Restarted again and again with the database still down: before, the move's updates, handed
    over at two starts in a row, were given up at the third (`inbox.given_up`), and the group's
    songs and settings stayed under its old id for good. A start the database does not answer
    no longer counts against a move: its updates wait for the database, and the next start it
    answers makes the move."""
    spool = tmp_path / SPOOL_FILENAME
    async with Outage(tmp_path) as outage:
        async with upgraded_while_down(outage, tmp_path, caplog):
            pass
        for _ in range(MAX_REPLAYS):  # each stopped with the move not made, as the first was
            tried = caplog.text.count("server.place_not_moved")
            async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), spooling(outage.db, tmp_path)):
                assert await until(lambda: caplog.text.count("server.place_not_moved") >= tried + 2, timeout=20), \
                    "the move's updates were not handed over again"
        assert "inbox.given_up" not in caplog.text
        outage.up()

        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), spooling(outage.db, tmp_path)):
            assert await until(lambda: moved(outage.db)), "the start with the database back did not move the group"
            assert await until(lambda: not spool.exists()) and await until(lambda: _none_kept(outage.db))


async def _none_kept(db) -> bool:
    return await inbox_numbers(db) == []
