"""What Telegram and Discord hand over while the database cannot keep it goes to the inbox's local
spool (storage/spool.py), and a bot killed outright then answers it after its restart: before, it
was held in memory only and lost. The real front-ends and use cases over a database the test takes
down (`Outage`), talking to the fake servers; the kill is the spool file put back as the killed
run left it, after the run's stop (as tests/frontends/test_telegram_inbox.py puts the database's
documents back)."""
from __future__ import annotations

import asyncio

from bot.usecases import build_usecases
from storage.schema import INBOX
from storage.spool import SPOOL_FILENAME, InboxSpool
from tests.bot.conftest import Outage
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.slow_disk import disk_slow_to_sync
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.fakes.wire_gate import gated_database
from tests.frontends.conftest import TELEGRAM_TOKEN, discord_on, telegram_on
from tests.frontends.test_telegram_inbox import inbox_numbers, replies_in, until


def spooling(db, tmp_path):
    """The use cases of a bot (re)started on `db`, its spool under `tmp_path` read anew."""
    return build_usecases(db, None, None, spool=InboxSpool(tmp_path / SPOOL_FILENAME))


async def left_by_a_kill(path) -> bytes:
    """The spool as a kill now would leave it, once it holds something."""
    assert await until(path.exists), "nothing was spooled"
    return path.read_bytes()


async def test_a_telegram_update_that_came_while_the_database_was_down_is_answered_after_a_kill(tmp_path):
    spool = tmp_path / SPOOL_FILENAME
    async with Outage(tmp_path) as outage:
        outage.down()
        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), spooling(outage.db, tmp_path)) as (fake, _):
            fake.delay_next("sendMessage", 3)  # the answer takes a while to reach Telegram
            await fake.user_sends("/help", chat=1201)
            left = await left_by_a_kill(spool)
            await fake.wait_for_reply(lambda c: c.chat_id == "1201")
            assert await until(lambda: not spool.exists()), "the answered update was not cleared from the spool"
        spool.write_bytes(left)  # killed before the answer: the stop's bookkeeping never happened

        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), spooling(outage.db, tmp_path)) as (again, _):
            await again.wait_for_reply(lambda c: c.chat_id == "1201", after=0)  # the database still down
            assert await until(lambda: not spool.exists())
            await asyncio.sleep(1.5)  # a second answer would have come by now
        assert len(replies_in(again, 1201)) == 1


async def test_a_telegram_update_kept_in_the_spool_and_the_database_is_answered_once(db_server, mongo_uri, db_name, db,
                                                                                      tmp_path):
    """The database slower than the bound (1 s) to keep it: the spool took it, then the write landed."""
    spool = tmp_path / SPOOL_FILENAME
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), spooling(gated, tmp_path)) as (fake, _):
            fake.delay_next("sendMessage", 3)
            gate.hold("update", INBOX)
            update = await fake.user_sends("/help", chat=1202)
            left = await left_by_a_kill(spool)
            gate.release()
            assert await until(lambda: _kept(db, update["update_id"]))
            killed_with = await db.db[INBOX].find({}).to_list()
            await fake.wait_for_reply(lambda c: c.chat_id == "1202")
    spool.write_bytes(left)
    await db.db[INBOX].delete_many({})
    await db.db[INBOX].insert_many(killed_with)

    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), spooling(db, tmp_path)) as (again, _):
        await again.wait_for_reply(lambda c: c.chat_id == "1202", after=0)
        assert await until(lambda: _cleared(db, spool))
        await asyncio.sleep(1.5)
    assert len(replies_in(again, 1202)) == 1


async def test_a_telegram_update_whose_keep_the_stop_cut_short_is_answered_once(tmp_path):
    """The stop cancels the getUpdates whose gate keeps the batch before it (python-telegram-bot's
    updater), and the keep with it. Cancelled while the disk took its spool line, the keep's thread
    wrote it all the same, but the spool never knew: the update's answer cleared nothing there, and
    the restart answered it a second time."""
    async with Outage(tmp_path) as outage:
        outage.down()
        with disk_slow_to_sync() as (syncing, synced):
            async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), spooling(outage.db, tmp_path)) as (fake, _):
                await fake.user_sends("/help", chat=1203)
                await fake.wait_for_reply(lambda c: c.chat_id == "1203")
                assert await until(syncing.is_set), "the update's line never reached the disk"
                asyncio.get_running_loop().call_later(0.5, synced.set)  # taken during the stop
            # stopped: the keep cancelled as the disk still held its line

        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), spooling(outage.db, tmp_path)) as (again, _):
            await asyncio.sleep(1.5)  # a second answer would have come by now
        assert replies_in(again, 1203) == []
        assert not (tmp_path / SPOOL_FILENAME).exists()


async def test_a_discord_command_that_came_while_the_database_was_down_is_answered_after_a_kill(tmp_path):
    spool = tmp_path / SPOOL_FILENAME
    async with Outage(tmp_path) as outage:
        outage.down()
        async with discord_on(FakeDiscord(), spooling(outage.db, tmp_path)) as (fake, _):
            release = fake.hold_next("interaction_callback")  # Discord is slow to take the answer
            asked = await fake.slash("help")
            left = await left_by_a_kill(spool)
            release.set()
            await fake.wait_for("interaction_callback", lambda c: c.token == asked["token"])
            assert await until(lambda: not spool.exists()), "the answered command was not cleared from the spool"
        spool.write_bytes(left)  # killed before the answer reached Discord

        outage.up()
        async with discord_on(FakeDiscord(), spooling(outage.db, tmp_path)) as (again, _):
            answer = await again.wait_for("interaction_callback", lambda c: c.token == asked["token"])
            assert "/mood" in answer.content
            assert await until(lambda: _cleared(outage.db, spool))


async def _kept(db, number: int) -> bool:
    return number in await inbox_numbers(db)


async def _cleared(db, spool) -> bool:
    return not spool.exists() and await inbox_numbers(db) == []
