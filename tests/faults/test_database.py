"""The database is SIGKILLed during a burst of /mood and journal answers, then restarted on the same
port and data directory.

Nothing crashes; /mood of an attached song still answers (classifying needs no database); journal
answers to prompts this process sent are kept in the outbox and written exactly once after the
restart; only what truly needs the database gets "try again shortly"; full recovery — a cached /mood
and a journal answer stored directly — comes within 10 s of the restart.
"""
from __future__ import annotations

import asyncio
import time
from datetime import date, datetime, timezone

import pytest

from bot.replies import Attachment, Caller, ErrorReply, JournalSavedReply, MoodReply
from bot.usecases import build_usecases
from storage.database import DEFAULT_SERVER_SELECTION_TIMEOUT_MS, Database
from storage.models import UserRef
from storage.outbox import JournalOutbox, JournalWriter
from tests.dbserver import DBServer, free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

RECOVERY_LIMIT_S = 10.0
USERS = 6


def attach(path) -> Attachment:
    return Attachment(str(path), path.name, path.stat().st_size)


def person(i: int) -> Caller:
    return Caller("telegram", str(5000 + i), place="telegram:-77", chat_id=str(5000 + i))


async def prompt_for(usecases, db, caller: Caller) -> str:
    await usecases.journal.enable(caller, "21:30", "Europe/Lisbon")
    user = await db.users.get(UserRef(caller.platform, caller.user_id))
    return (await usecases.journal.make_prompt(user)).prompt_id


async def until_recovered(usecases, db, cached_clip, song_clip, caller: Caller) -> float:
    """Seconds until a cached /mood is served from the database and a journal answer is stored
    directly (not queued) — polled the way users would keep trying."""
    started = time.monotonic()
    while time.monotonic() - started < 3 * RECOVERY_LIMIT_S:
        reply = await usecases.mood.run(caller, attachment=attach(cached_clip))
        if isinstance(reply, MoodReply) and reply.cached:
            try:
                await prompt_for(usecases, db, caller)
            except Exception:  # noqa: BLE001 - still down: try again, as a user would
                await asyncio.sleep(0.1)
                continue
            saved = await usecases.journal.answer(caller, None, attach(song_clip))
            if isinstance(saved, JournalSavedReply) and not saved.queued:
                return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError("no recovery within 30 s")


async def test_database_killed_and_restarted_during_a_burst(classifier, clips, tmp_path, db_name):
    server = DBServer(port=free_port(), storage_path=str(tmp_path / "db")).start()
    # The bot's own wait for a server (the suite's URI says 3 s, and a URI's option wins).
    db = await Database.connect(server.uri_failing_after(DEFAULT_SERVER_SELECTION_TIMEOUT_MS), db_name)
    await db.init()
    outbox = JournalOutbox(tmp_path / "outbox.jsonl")
    writer = JournalWriter(db.journal, outbox, db.prompts)
    usecases = build_usecases(db, classifier, fetcher=None, writer=writer)
    try:
        cached_clip, *songs = clips
        warm = await usecases.mood.run(person(0), attachment=attach(cached_clip))  # now in the cache
        assert isinstance(warm, MoodReply)
        people = [person(i) for i in range(USERS)]
        prompts = {c.user_id: await prompt_for(usecases, db, c) for c in people}
        # A prompt sent by another process (not in this one's memory): answering it needs the database.
        stranger = person(99)
        await usecases.journal.enable(stranger, "21:30", "UTC")
        await db.prompts.record_sent(UserRef("telegram", stranger.user_id), "elsewhere-1", "At dawn…",
                                     date.today(), datetime.now(timezone.utc), stranger.chat_id, None)

        async def burst(offset: int) -> list:
            work = [usecases.mood.run(person(i), attachment=attach(cached_clip)) for i in range(3)]
            work += [usecases.mood.run(person(i), attachment=attach(songs[(offset + i) % len(songs)]))
                     for i in range(3)]
            return await asyncio.gather(*work, return_exceptions=True)

        answering = [asyncio.create_task(usecases.journal.answer(c, None, attach(songs[i])))
                     for i, c in enumerate(people[:3])]
        first = asyncio.create_task(burst(0))
        await asyncio.sleep(0.05)
        server.stop(kill=True)  # SIGKILL, mid-burst
        # While it is down: a burst, three journal answers, an answer that needs the database, a list.
        during = asyncio.create_task(burst(3))
        while_down = [asyncio.create_task(usecases.journal.answer(c, None, attach(songs[i])))
                      for i, c in enumerate(people[3:], start=3)]
        stranger_reply = await usecases.journal.answer(stranger, None, attach(songs[0]))
        listing = await usecases.journal.list(people[0])
        down_answers = await asyncio.gather(*while_down, return_exceptions=True)
        moods_while_down = await during

        restarted_at = time.monotonic()
        server = DBServer(port=server.port, storage_path=server.storage_path).start()
        moods = [*(await first), *moods_while_down]
        answers = [*await asyncio.gather(*answering, return_exceptions=True), *down_answers]
        drained = await writer.drain()
        recovery_s = (time.monotonic() - restarted_at) + await until_recovered(
            usecases, db, cached_clip, songs[5], person(1))

        # Nothing crashed, and every /mood of an attachment was answered, DB or not.
        assert not [r for r in moods + answers if isinstance(r, BaseException)], moods + answers
        assert all(isinstance(r, MoodReply) for r in moods), [r for r in moods if not isinstance(r, MoodReply)]
        # Every journal answer to a prompt this process sent was accepted (stored, or queued).
        assert all(isinstance(a, JournalSavedReply) for a in answers), answers
        assert all(a.queued for a in down_answers), down_answers  # safe in the outbox meanwhile
        # What needs the database says so, readably.
        for needs_db in (stranger_reply, listing):
            assert isinstance(needs_db, ErrorReply) and "try again shortly" in needs_db.message, needs_db
        # Each accepted entry is stored exactly once, the outbox is empty.
        assert outbox.pending() == 0 and drained == sum(a.queued for a in answers)
        for caller in people:
            entries = await db.journal.list(UserRef("telegram", caller.user_id), limit=50)
            mine = [e.prompt_id for e in entries if e.prompt_id == prompts[caller.user_id]]
            assert mine == [prompts[caller.user_id]], (caller.user_id, [e.prompt_id for e in entries])
        assert recovery_s <= RECOVERY_LIMIT_S, f"recovered in {recovery_s:.1f} s"
        print(f"\nrecovery after restart: {recovery_s:.2f} s; queued then drained: {drained}")
    finally:
        await db.close()
        server.stop(kill=True)
