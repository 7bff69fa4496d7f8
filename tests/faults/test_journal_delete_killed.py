"""A /journal delete the database cut short after the entry went (her playlist summaries not made
again: the database refused their writes), then the bot killed outright (SIGKILL, an OOM kill, a
power cut) before anything made them again. The members whose summaries needed it were known in
memory only: the next bot knew nothing of it, and her song stayed out of the group's playlist (its
summary deleted, not written again) until her next delete. The mark is kept in the database before
the entry's delete (`journal_repairs`), and the next start makes her summaries again."""
from __future__ import annotations

import signal
from datetime import timedelta

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


async def test_a_delete_cut_short_then_a_hard_kill_leaves_her_playlist_right_after_the_restart(
        tmp_path, mongo_uri, db_name):
    db = await Database.connect(mongo_uri, db_name)
    await db.init()
    await her_journal_of_one_song(db)
    fake = await FakeTelegramBotAPI("987654:SENTINEL-app-token").start()
    env = telegram_env(fake, tmp_path / "data", MONGODB_URI=mongo_uri, MONGODB_DATABASE=db_name)
    (tmp_path / "first").mkdir()
    (tmp_path / "next").mkdir()
    proc = await start_bot(tmp_path / "first", env)
    try:
        await wait_for_log(tmp_path / "first" / "stderr", "event=app.started", timeout=90)
        await refusing_writes(db, JOURNAL_TRACKS)
        await fake.user_sends("/journal delete last", user=ALICE, chat=ALICE)
        told = await fake.wait_for("sendMessage", lambda c: c.chat_id == str(ALICE), timeout=30)
        assert told.text.startswith("Deleted from your journal: 2026-11-21"), told.text
        await wait_for_log(tmp_path / "first" / "stderr", "event=journal.summaries_not_made_again", timeout=10)
        # Answered: the inbox let the command go, so the next start does not hand it over again.
        assert await until(lambda: inbox_empty(db), timeout=10)
        proc.send_signal(signal.SIGKILL)  # no stop: nothing of the first bot's memory is left
        await proc.wait()
        assert await db.db[JOURNAL_REPAIRS].count_documents({"user_id": str(ALICE)}) == 1  # her mark, kept
        await ensure_collection(db.db, JOURNAL_TRACKS, VALIDATORS[JOURNAL_TRACKS])  # the database back

        proc = await start_bot(tmp_path / "next", env)
        await wait_for_log(tmp_path / "next" / "stderr", "event=app.started", timeout=90)
        mark = fake.mark()
        await fake.user_sends("/playlist sad", chat=GROUP, user=ALICE)
        shown = await fake.wait_for("sendMessage", lambda c: c.chat_id == str(GROUP), timeout=30, after=mark)
        assert "Title A" in shown.text, shown.text
        await assert_summaries_are_the_entries(db)
        assert await db.db[JOURNAL_REPAIRS].count_documents({}) == 0  # made again: the mark went
    finally:
        await stop_bot(proc, 30)
        await fake.stop()
        await db.client.drop_database(db_name)
        await db.close()
