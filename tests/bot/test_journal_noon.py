"""`/journal on noon Europe/Lisbon` (or `midnight`) was "I need the time as HH:MM on a 24-hour
clock", as if no time had been typed; the words are one time each, 12:00 and 00:00, and are now
read so. A 12-hour clock's 12am and 12pm are still refused, the reply naming them 00:00 and 12:00."""
from __future__ import annotations

from datetime import time

import pytest

from bot.replies import ErrorReply, TextReply
from bot.usecases.journal import TIME_AS_IT_IS, ZONE_MISSING
from tests.bot.conftest import ALICE_DM
from tests.bot.test_journal import ALICE_REF, journal_usecase


@pytest.mark.parametrize("typed, at", [("noon", time(12, 0)), ("Midday", time(12, 0)), ("midnight", time(0, 0)),
                                       ("ＮＯＯＮ", time(12, 0))])
async def test_noon_and_midnight_are_read_as_their_times(db, counting, typed, at):
    reply = await journal_usecase(db, counting).enable(ALICE_DM, typed, "Europe/Lisbon")
    assert isinstance(reply, TextReply) and f"every day at {at:%H:%M} (Europe/Lisbon)" in reply.text, reply
    user = await db.users.get(ALICE_REF)
    assert (user.prompt_time, user.timezone, user.journal_enabled) == (at, "Europe/Lisbon", True)


async def test_noon_alone_keeps_the_saved_zone_and_a_new_user_is_asked_only_for_the_zone(db, counting):
    journal = journal_usecase(db, counting)
    assert await journal.enable(ALICE_DM, "noon", None) == ErrorReply(ZONE_MISSING.format(time="12:00"))
    await journal.enable(ALICE_DM, "21:30", "Asia/Tokyo")
    reply = await journal.enable(ALICE_DM, "noon", None)
    assert isinstance(reply, TextReply) and "every day at 12:00 (Asia/Tokyo)" in reply.text, reply


@pytest.mark.parametrize("typed, said", [("12am", "00:00"), ("12pm", "12:00"), ("12:30am", "00:30"),
                                         ("12:05 p.m.", "12:05")])
async def test_twelve_o_clock_on_a_12_hour_clock_is_told_as_it_is_on_a_24_hour_one(db, counting, typed, said):
    reply = await journal_usecase(db, counting).enable(ALICE_DM, typed, "Europe/Lisbon")
    assert reply == ErrorReply(TIME_AS_IT_IS.format(typed=typed, time=said,
                                                    command=f": /journal on {said} Europe/Lisbon")), reply
    assert await db.users.get(ALICE_REF) is None
