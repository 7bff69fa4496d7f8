"""A /journal delete the database cut short after the entry went (her playlist summaries not made
again: the database refused their writes), then the bot killed outright (SIGKILL, an OOM kill, a
power cut) before anything made them again. The members whose summaries needed it were known in
memory only: the next bot knew nothing of it, and her song stayed out of the group's playlist (its
summary deleted, not written again) until her next delete. The mark is kept in the database before
the entry's delete (`journal_repairs`), and the next start makes her summaries again."""
from __future__ import annotations

import asyncio
import signal
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import AsyncIterator

from storage.database import Database
from storage.models import MoodRequest, UserRef
from storage.schema import JOURNAL_REPAIRS, JOURNAL_TRACKS, VALIDATORS, ensure_collection
from tests.abuse.test_forget_cut_short import refusing_writes
from tests.bot.test_app import start_bot, stop_bot, telegram_env, wait_for_log
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.test_telegram_inbox import until
from tests.storage.conftest import T0
from tests.storage.test_journal_summaries import assert_summaries_are_the_entries
from tests.storage.test_playlists import journal

ALICE, GROUP = 42, -100777
ALICE_REF = UserRef("telegram", str(ALICE))


async def her_journal_of_one_song(db: Database) -> None:
    """Alice, seen in the group (a /mood there, happy), journaled song A sad, then calm the day
    after: her vote in the group's playlists is calm; with the later entry deleted, sad."""
    await db.users.set_journal(ALICE_REF, enabled=False, prompt_time=None, timezone="UTC", chat_id=str(ALICE))
    await db.requests.add(MoodRequest(ALICE_REF, f"telegram:{GROUP}", "spotify:asked", "happy", T0))
    await db.requests.settled()
    await db.journal.add(journal(ALICE_REF, "A", "sad", T0))
    await db.journal.add(journal(ALICE_REF, "A", "calm", T0 + timedelta(days=1)))


async def inbox_empty(db: Database) -> bool:
    return await db.db["inbox"].count_documents({}) == 0


@asynccontextmanager
async def telegram_and_database(mongo_uri: str, db_name: str) -> AsyncIterator[tuple[Database, FakeTelegramBotAPI]]:
    """The database the bots use (dropped after) and the fake Telegram they serve."""
    db = await Database.connect(mongo_uri, db_name)
    await db.init()
    fake = await FakeTelegramBotAPI("987654:SENTINEL-app-token").start()
    try:
        yield db, fake
    finally:
        await fake.stop()
        await db.client.drop_database(db_name)
        await db.close()


@asynccontextmanager
async def a_bot(folder: Path, env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m bot` started in `folder` (made here), once it has started; stopped after, unless
    it was killed."""
    folder.mkdir()
    proc = await start_bot(folder, env)
    try:
        await wait_for_log(folder / "stderr", "event=app.started", timeout=90)
        yield proc
    finally:
        await stop_bot(proc, 30)


async def killed_once_it_answered(db: Database, folder: Path, proc: asyncio.subprocess.Process) -> None:
    """Her summaries failed (logged), the command answered (the inbox let it go, so the next start
    does not hand it over again), then the bot SIGKILLed: nothing of its memory is left; her mark
    kept, and the database back."""
    await wait_for_log(folder / "stderr", "event=journal.summaries_not_made_again", timeout=30)
    assert await until(lambda: inbox_empty(db), timeout=10)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    assert await db.db[JOURNAL_REPAIRS].count_documents({"user_id": str(ALICE)}) == 1
    await ensure_collection(db.db, JOURNAL_TRACKS, VALIDATORS[JOURNAL_TRACKS])


async def her_playlist_after_the_restart(db: Database, fake: FakeTelegramBotAPI, folder: Path, env: dict[str, str],
                                         mood: str) -> str:
    """The group's playlist of `mood` as the next bot shows it, once started in `folder`; her
    summaries made again by then, and her mark gone."""
    async with a_bot(folder, env):
        mark = fake.mark()
        await fake.user_sends(f"/playlist {mood}", chat=GROUP, user=ALICE)
        shown = await fake.wait_for("sendMessage", lambda c: c.chat_id == str(GROUP), timeout=30, after=mark)
        await assert_summaries_are_the_entries(db)
        assert await db.db[JOURNAL_REPAIRS].count_documents({}) == 0
    return shown.text


async def test_a_delete_cut_short_then_a_hard_kill_leaves_her_playlist_right_after_the_restart(
        tmp_path, mongo_uri, db_name):
    async with telegram_and_database(mongo_uri, db_name) as (db, fake):
        await her_journal_of_one_song(db)
        env = telegram_env(fake, tmp_path / "data", MONGODB_URI=mongo_uri, MONGODB_DATABASE=db_name)
        async with a_bot(tmp_path / "first", env) as proc:
            await refusing_writes(db, JOURNAL_TRACKS)
            await fake.user_sends("/journal delete last", user=ALICE, chat=ALICE)
            told = await fake.wait_for("sendMessage", lambda c: c.chat_id == str(ALICE), timeout=30)
            assert told.text.startswith("Deleted from your journal: 2026-11-21"), told.text
            await killed_once_it_answered(db, tmp_path / "first", proc)

        shown = await her_playlist_after_the_restart(db, fake, tmp_path / "next", env, "sad")
        assert "Title A" in shown, shown
