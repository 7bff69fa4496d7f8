"""`/journal on`'s reply says when the next prompt comes, on the user's clock: today (and in how
long), or tomorrow, with why (the time has passed there, or today's was sent already). It said
"every day at 21:30" alone, and a user who opted in at 22:00 for 21:30 waited for a prompt that
came the next evening."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from bot.replies import ErrorReply, JournalSavedReply, TextReply
from bot.usecases.journal import NEXT_PROMPT_SENT, NEXT_PROMPT_TODAY, NEXT_PROMPT_TOMORROW
from tests.bot.conftest import ALICE_DM, attachment
from tests.bot.test_journal import ALICE_REF, Clock, journal_usecase

LISBON_WINTER = datetime(2026, 12, 6, 8, 0, tzinfo=timezone.utc)  # 08:00 in Lisbon, 17:00 in Tokyo


@pytest.mark.parametrize("at, zone, said", [
    ("21:30", "Europe/Lisbon", NEXT_PROMPT_TODAY.format(at="21:30", wait="13 h 30 min")),
    ("08:05", "Europe/Lisbon", NEXT_PROMPT_TODAY.format(at="08:05", wait="5 min")),
    ("07:59", "Europe/Lisbon", NEXT_PROMPT_TOMORROW.format(at="07:59", now="08:00")),
    ("21:30", "Asia/Tokyo", NEXT_PROMPT_TODAY.format(at="21:30", wait="4 h 30 min")),
    ("09:00", "Asia/Tokyo", NEXT_PROMPT_TOMORROW.format(at="09:00", now="17:00")),
    ("09:00", "UTC-5", NEXT_PROMPT_TODAY.format(at="09:00", wait="6 h")),  # 03:00 there
])
async def test_journal_on_says_whether_the_next_prompt_comes_today_or_tomorrow_where_the_user_is(
        db, counting, at, zone, said):
    journal = journal_usecase(db, counting, now=Clock(LISBON_WINTER))
    reply = await journal.enable(ALICE_DM, at, zone)
    assert isinstance(reply, TextReply) and said in reply.text, reply.text


@pytest.mark.parametrize("moved_to", ["21:30", "07:30"])
async def test_a_time_moved_the_day_today_s_prompt_was_sent_says_the_next_is_tomorrow(db, counting, moved_to):
    """The scheduler sends one daily prompt a day: moved from 07:00 to 21:30 after the 07:00 one came,
    the next is tomorrow's, not tonight's; moved to 07:30, past too, the reply does not offer
    /journal prompt for today's, which came already."""
    journal = journal_usecase(db, counting, now=Clock(LISBON_WINTER))
    await journal.enable(ALICE_DM, "07:00", "Europe/Lisbon")
    await db.prompts.record_sent(ALICE_REF, "p1", "Morning…", date(2026, 12, 6), LISBON_WINTER, "1001", "5")
    reply = await journal.enable(ALICE_DM, moved_to, "Europe/Lisbon")
    assert NEXT_PROMPT_SENT.format(at=moved_to) in reply.text and "/journal prompt" not in reply.text, reply.text


async def test_a_second_song_after_today_s_prompt_is_answered_says_the_next_comes_tomorrow(db, counting, clip_paths):
    """A Discord DM (or the console's /journal answer) after today's prompt was answered: the reply
    said "ask for today's now with /journal prompt", of a prompt answered a moment ago; it now says
    the next comes tomorrow."""
    journal = journal_usecase(db, counting, now=Clock(LISBON_WINTER))
    await journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    await journal.make_prompt(await db.users.get(ALICE_REF))
    assert isinstance(await journal.answer(ALICE_DM, None, attachment(clip_paths[0])), JournalSavedReply)
    again = await journal.answer(ALICE_DM, "Creep")
    assert isinstance(again, ErrorReply) and again.message.startswith("You've already answered"), again
    assert NEXT_PROMPT_SENT.format(at="21:30 (Europe/Lisbon)") in again.message, again.message
    assert "/journal prompt" not in again.message
