"""A journal answer handed over again: the inbox replays a message a bot killed outright was
answering (bot/usecases/inbox.py), and the kill may have come after its entry was saved, before the
message was cleared. The entry keeps the message that made it (`JournalEntry.answered_by`): the
same message again is told its entry was saved, as the first time, and files nothing more. The
front-ends' replays are in tests/frontends/test_telegram_inbox.py and test_discord_kept.py."""
from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

from bot.frontends import render
from bot.replies import JournalSavedReply
from storage.models import StorageError, UserRef
from tests.bot.conftest import ALICE_DM, attachment
from tests.bot.test_journal import Clock, journal_usecase, prompted_in_outage

ALICE_REF = UserRef("telegram", "1001")


async def test_a_dm_handed_over_again_after_a_newer_prompt_is_not_filed_under_it(db, counting, clip_paths):
    """A DM names no prompt: it answers the newest. Handed over again once the next prompt was
    sent (the restart sends a prompt it missed), it took that one too: a second entry, of a song
    the user gave for another day."""
    clock = Clock(datetime(2026, 11, 23, 21, 30, tzinfo=timezone.utc))
    journal = journal_usecase(db, counting, now=clock)
    await journal.enable(ALICE_DM, "21:30", "UTC")
    await journal.make_prompt(await db.users.get(ALICE_REF))
    first = await journal.answer(ALICE_DM, "on the bus", attachment(clip_paths[0]), message_id="m1")
    clock.at += timedelta(days=1)
    await journal.make_prompt(await db.users.get(ALICE_REF))
    heard = len(counting.calls)

    again = await journal.answer(ALICE_DM, "on the bus", attachment(clip_paths[0]), message_id="m1")

    assert isinstance(again, JournalSavedReply), again
    assert render.journal_saved_text(again) == render.journal_saved_text(first)
    assert [e.local_date for e in await db.journal.list(ALICE_REF)] == [date(2026, 11, 23)]
    assert len(counting.calls) == heard  # nothing heard again
    # today's prompt is still open for the user's next message
    today = await journal.answer(ALICE_DM, "today's", attachment(clip_paths[1]), message_id="m2")
    assert isinstance(today, JournalSavedReply) and today.local_date == date(2026, 11, 24), today


async def test_a_reply_handed_over_again_whose_song_was_heard_anew_says_what_was_saved(db, counting, clip_paths):
    """The cache has another answer for the song now (heard again by new weights): the confirmation
    is the entry's mood, without the confidence and model it does not keep."""
    journal = journal_usecase(db, counting)
    await journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    prompt = await journal.make_prompt(await db.users.get(ALICE_REF))
    await journal.prompt_delivered(prompt.prompt_id, "901")
    first = await journal.answer(ALICE_DM, "", attachment(clip_paths[0]), prompt_message_id="901", message_id="77")
    assert isinstance(first, JournalSavedReply), first
    record = await db.tracks.get(first.mood.track_key)
    other = "calm" if first.mood.mood != "calm" else "sad"
    await db.tracks.save(replace(record, mood=replace(record.mood, mood=other, valence=0.0, arousal=0.0)))

    again = await journal.answer(ALICE_DM, "", attachment(clip_paths[0]), prompt_message_id="901", message_id="77")

    assert isinstance(again, JournalSavedReply), again
    assert (again.mood.mood, again.mood.valence, again.mood.arousal) == (
        first.mood.mood, first.mood.valence, first.mood.arousal)
    text = render.journal_saved_text(again)
    assert text.startswith(f"Saved to your journal for {first.local_date.isoformat()}:")
    assert first.mood.title in text and "confidence" not in text
    assert await db.journal.count(ALICE_REF) == 1


async def test_a_message_queued_in_an_outage_and_handed_over_again_is_told_it_is_saved(counting, clip_paths, outage):
    """Killed with the entry in the outbox and the database still down at the restart: the same
    message is told its entry is safe, as the first time, not that the prompt has its song."""
    db, writer = outage.db, outage.writer
    journal, prompt = await prompted_in_outage(outage, counting, "902")
    first = await journal.answer(ALICE_DM, "still here", attachment(clip_paths[0]), prompt_message_id="902",
                                 message_id="78")
    assert isinstance(first, JournalSavedReply) and first.queued

    again = await journal.answer(ALICE_DM, "still here", attachment(clip_paths[0]), prompt_message_id="902",
                                 message_id="78")

    assert isinstance(again, JournalSavedReply) and again.queued, again
    assert (again.local_date, again.phrase, again.mood.mood) == (first.local_date, first.phrase, first.mood.mood)
    assert writer.outbox.pending() == 1
    outage.up()
    deadline = time.monotonic() + 10
    while writer.outbox.pending():  # the client reconnects
        try:
            await writer.drain()
        except StorageError:
            pass
        assert time.monotonic() < deadline, "the outbox was not drained within 10 s"
        await asyncio.sleep(0.1)
    (entry,) = await db.journal.list(ALICE_REF)
    assert entry.answered_by == "1001:78"
