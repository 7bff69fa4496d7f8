"""Data rights, end to end: after /forget nothing holds the user's id, whatever was on its way."""
from __future__ import annotations

import asyncio
import io
import logging
import os
import shutil
import stat
import tempfile
import time
from datetime import datetime, timezone
from datetime import time as clock_time
from pathlib import Path

import pytest

from bot.app import SALT_FILE, log_salt
from bot.frontends.console import ConsoleFrontend
from bot.replies import Caller
from bot.scheduler import PromptScheduler
from bot.usecases import build_usecases
from bot.usecases.journal import JournalUseCase
from bot.usecases.mood import MoodUseCase
from bot.usecases.privacy import NOTHING_TO_FORGET, PrivacyUseCase
from storage.database import Database
from storage.embedded import EmbeddedServer
from storage.models import JournalEntry, MoodRequest, User, UserRef
from storage.outbox import JournalOutbox, JournalWriter
from tests.bot.conftest import BOB, attachment
from tests.bot.test_app import TOKEN, start_bot, stop_bot, telegram_env, wait_for_log
from tests.bot.test_inbox_spool import disk_full_past
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.permissions import open_data_dir
from tests.bot.test_privacy_and_playlists import HeldClassifier

BOB_DM = BOB.__class__(BOB.platform, BOB.user_id, place=None, chat_id=BOB.chat_id)


async def everything_naming(db, ref: UserRef) -> dict[str, list]:
    """Every document of every collection that holds the user's id."""
    found = {}
    for name in await db.db.list_collection_names():
        docs = await db.db[name].find({"platform": ref.platform, "user_id": ref.user_id}).to_list()
        if docs:
            found[name] = docs
    return found


@pytest.mark.parametrize("forgot", ["while heard", "while downloading"])
async def test_a_member_who_forgot_and_left_while_a_song_asked_before_was_heard_leaves_no_departure(
        db, counting, clip_paths, forgot):
    """Bob asks /mood in the group, runs /forget while the song is heard (or while its file was
    still downloading, before the use case began), and leaves the group before the answer. His
    request is dropped (asked before /forget), but the /mood still being answered counted as a
    visit, so his departure was recorded after /forget: a document naming him in a group, which
    nobody can see or delete but a second /forget."""
    held = HeldClassifier(counting)
    usecases = build_usecases(db, held, fetcher=None)
    bob = UserRef(BOB.platform, BOB.user_id)
    arrived = usecases.privacy.arrived(BOB)
    if forgot == "while downloading":
        done = await usecases.privacy.forget(BOB_DM, confirmed=True)

    asking = asyncio.create_task(usecases.mood.run(arrived, attachment=attachment(clip_paths[1])))
    await held.listening.wait()
    if forgot == "while heard":
        done = await usecases.privacy.forget(BOB_DM, confirmed=True)
    await usecases.playlists.member_left(BOB.platform, BOB.place.split(":", 1)[1], BOB.user_id)
    held.release.set()
    reply = await asking
    await db.requests.settled()

    assert done.text == NOTHING_TO_FORGET  # his request, asked before, is dropped: never stored
    assert reply.mood in ("happy", "energetic", "sad", "calm")  # he is still answered
    assert await everything_naming(db, bob) == {}


async def prompted_at_21(db, counting, user_id: str, console_class: type[ConsoleFrontend]):
    """A console user whose daily prompt (21:00 in Lisbon) is due now, and the journal, scheduler,
    console (of `console_class`) and privacy use case around them: (user, journal, scheduler,
    console, privacy)."""
    user = User("console", user_id, timezone="Europe/Lisbon", prompt_time=clock_time(21, 0),
                journal_enabled=True, chat_id=user_id)
    await db.users.upsert(user)
    at = datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)
    journal = JournalUseCase(db, MoodUseCase(db, counting, fetcher=None, now=lambda: at), now=lambda: at)
    scheduler = PromptScheduler(db, journal, pause_s=0, now=lambda: at)
    journal.schedule = scheduler
    console = console_class(usecases=None, stdin=io.StringIO(), stdout=io.StringIO())
    scheduler.register(console)
    return user, journal, scheduler, console, PrivacyUseCase(db, schedule=scheduler)


class SlowConsole(ConsoleFrontend):
    """The console, holding each prompt on its way until the test lets it go."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sending = asyncio.Event()
        self.release = asyncio.Event()

    async def held(self) -> None:
        self.sending.set()
        await self.release.wait()

    async def send_prompt(self, prompt):
        await self.held()
        return await super().send_prompt(prompt)


class HeldConsole(SlowConsole):
    """The console, holding each prompt on its way until the test lets it go, then failing as a
    platform down past its client's own retries does (a network error: the prompt did not arrive)."""

    async def send_prompt(self, prompt):
        await self.held()
        raise ConnectionError("platform unreachable")


async def test_a_prompt_failing_after_a_forget_sent_while_it_was_on_its_way_is_not_tried_again(db, counting):
    """The day's prompt is on its way when the user runs /forget, and its send then fails for a
    passing reason: a retry was scheduled for later that day, a job naming the user after /forget
    said it stopped their daily prompt (it would find nobody, but holds their id till then)."""
    user, journal, scheduler, console, privacy = await prompted_at_21(db, counting, "leaving", HeldConsole)

    delivering = asyncio.create_task(scheduler.deliver(user.ref))
    await console.sending.wait()
    done = await privacy.forget(Caller("console", "leaving", chat_id="leaving"), confirmed=True)
    console.release.set()
    assert await delivering is None

    assert done.text.startswith("Done")
    assert scheduler.retry_at(user.ref) is None and not scheduler.is_scheduled(user.ref)
    assert await everything_naming(db, user.ref) == {}


@pytest.mark.parametrize("forgot", ["after it arrived", "while it was on its way"])
async def test_a_forgotten_users_prompts_are_not_kept_in_memory(db, counting, forgot):
    """The journal keeps the prompts it sent in memory (phrase, chat, message), so that an answer
    can be saved with the database down. /forget deleted their records but left them there, each
    still known as the user's prompt message, until 10 000 later prompts pushed it out."""
    user, journal, scheduler, console, privacy = await prompted_at_21(db, counting, "memory", SlowConsole)
    me = Caller("console", "memory", chat_id="memory")

    delivering = asyncio.create_task(scheduler.deliver(user.ref))
    await console.sending.wait()
    if forgot == "after it arrived":
        console.release.set()
        await delivering
    done = await privacy.forget(me, confirmed=True)
    console.release.set()
    await delivering

    assert done.text.startswith("Done")
    assert not await journal.is_prompt_message("console", "memory", "1")  # the console's first message
    assert await everything_naming(db, user.ref) == {}


async def test_a_forgotten_users_words_are_not_left_in_the_embedded_databases_oplog(tmp_path):
    """The embedded database (no MONGODB_URI) keeps every write in its oplog, the inserted
    documents whole, for an hour and until 1 000 more writes: on a quiet bot, days. The journal
    note, the file name and the prompt a user deleted with /forget could still be read there
    (`local.oplog.rs`), and in DATA_DIR/db, long after "Done: I deleted everything about you"."""
    with EmbeddedServer(tmp_path) as server:
        db = await Database.connect(server.uri, "moodbot")
        try:
            await db.init()
            ref = UserRef("telegram", "3003")
            at = datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)
            await db.users.set_journal(ref, enabled=True, prompt_time=clock_time(21, 30), timezone="Europe/Oslo",
                                       chat_id="3003")
            await db.prompts.record_sent(ref, "p-oplog", "A phrase", at.date(), at, "3003", "m1")
            await db.journal.add(JournalEntry(
                user=ref, local_date=at.date(), prompt_id="p-oplog", phrase="A phrase", reply_text="memo",
                track_key="sha256:ab", track_title="voice memo for Jane", mood="sad", valence=-0.5, arousal=-0.2,
                created_at=at, note="my private oplog words"))
            await db.requests.add(MoodRequest(ref, "telegram:-500", "sha256:ab", "sad", at, title="voice memo for Jane"))

            done = await PrivacyUseCase(db).forget(Caller(ref.platform, ref.user_id, chat_id="3003"), confirmed=True)

            assert done.text.startswith("Done")
            oplog = await db.client.local["oplog.rs"].find().to_list()
            left = [entry for entry in oplog if "3003" in str(entry) or "private oplog words" in str(entry)
                    or "Jane" in str(entry)]
            assert left == []
        finally:
            await db.close()


async def test_the_files_a_killed_bot_left_in_its_temporary_folder_are_deleted_at_its_next_start(tmp_path):
    """A user's upload (a voice memo sent to the bot) is saved in a temporary folder while it is
    heard, deleted when its answer is sent. A bot killed meanwhile (SIGKILL, an OOM kill, a power
    cut) never deleted it: the audio stayed in $TMPDIR for good, past the user's /forget. The next
    start deletes such folders an hour old (another bot on the same machine may be using a newer one),
    and a download's too (the section of a song fetched for a user's link), which it kept for good;
    not the inference workers' scratch, which a bot running beside it holds for as long as it runs."""
    short = Path(tempfile.mkdtemp(prefix="mbdr", dir="/tmp"))  # the forkserver's socket needs a short $TMPDIR
    try:
        stale, fresh, other = short / "moodbot-tg-crashed", short / "moodbot-dc-in-use", short / "someone-elses"
        download, scratch = short / "moodbot-audio-killed", short / "moodbot-workers-of-another-bot"
        for folder in (stale, fresh, other, download, scratch):
            folder.mkdir()
            (folder / "audio.ogg").write_bytes(b"OggS a private voice memo")
        hours_ago = time.time() - 2 * 3600
        for folder in (stale, other, download, scratch):
            for path in (folder / "audio.ogg", folder):
                os.utime(path, (hours_ago, hours_ago))
        fake = await FakeTelegramBotAPI(TOKEN).start()
        proc = await start_bot(tmp_path, telegram_env(fake, tmp_path / "data", TMPDIR=str(short)))
        try:
            await wait_for_log(tmp_path / "stderr", "event=app.started", timeout=90)
        finally:
            await stop_bot(proc, 30)
            await fake.stop()

        assert not stale.exists() and not download.exists()
        assert (fresh / "audio.ogg").exists() and (other / "audio.ogg").exists()  # in use, or not the bot's
        assert (scratch / "audio.ogg").exists()
    finally:
        shutil.rmtree(short, ignore_errors=True)


@pytest.mark.parametrize("made", ["by this start", "0644 by an earlier version"])
def test_the_salt_of_the_logs_hashed_ids_is_the_bots_user_alone(tmp_path, made):
    """Log lines name a user by a salted hash of their id, so that whoever reads the logs cannot
    tell whose they are. The salt was saved with the umask's mode (0644): in a DATA_DIR made before
    the bot (`mkdir data`, a volume), any local user could read it and hash a Telegram or Discord id
    to find that user's lines (or every id, there being some 10^10), long after their /forget."""
    with open_data_dir(tmp_path) as data_dir:
        if made != "by this start":
            (data_dir / SALT_FILE).write_text("0123456789abcdef")  # the umask's 0644
        salt = log_salt(data_dir)

    assert salt == log_salt(data_dir)  # the same across restarts
    assert oct(stat.S_IMODE((data_dir / SALT_FILE).stat().st_mode)) == "0o600"


async def test_a_forget_whose_outbox_the_disk_refuses_to_rewrite_says_why_and_deletes_nothing(db, tmp_path, caplog):
    """/forget first rewrites the outbox (DATA_DIR's file of answers waiting for the database, and of
    those it refused, kept for good) without the user's lines. A full disk refused that rewrite, and
    /forget ended in the front-end's "Sorry, something went wrong" and a traceback: the user could not
    tell whether anything was deleted, nor why. Nothing is deleted (the database's part after it would
    let a drain bring the answers back), and the reply says why and to try again."""
    writer = JournalWriter(db.journal, JournalOutbox.in_data_dir(tmp_path), db.prompts)
    alice, bob = UserRef("telegram", "3003"), UserRef("telegram", "4004")
    await db.users.set_sharing(alice, False)
    at = datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)
    for who in (alice, bob):
        await writer.outbox.append(JournalEntry(
            user=who, local_date=at.date(), prompt_id=f"p-{who.user_id}", phrase="Today,", reply_text="Creep",
            track_key="spotify:1", track_title="Creep", mood="sad", valence=-0.5, arousal=-0.2, created_at=at,
            note="words waiting"))

    with disk_full_past(10), caplog.at_level(logging.WARNING, logger="bot.usecases.privacy"):
        done = await PrivacyUseCase(db, writer=writer).forget(Caller(alice.platform, alice.user_id, chat_id="3003"),
                                                               confirmed=True)

    assert "(File too large)" in done.text and "Nothing was deleted" in done.text
    assert "try /forget again" in done.text
    assert await db.users.get(alice) is not None and writer.outbox.pending() == 2
    (undone,) = [r for r in caplog.records if r.getMessage() == "privacy.forget_not_done"]
    assert undone.user == alice.user_id
