"""A daily prompt's phrase was picked from the whole bank whatever the hour it was sent: a user who
chose a morning prompt (`/journal on 08:00 Europe/Lisbon`, or `/journal prompt` before lunch) was
asked "Doing the dishes tonight, I was humming…" or "Right now, as the day ends, I feel like…" at
8 am, about moments still to come, about a quarter of their mornings. A phrase about the afternoon or
the evening is sent only once that part of the day has come where the user lives (or in the night
after it); any phrase may come in the evening, as before."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.prompts import phrase_bank
from tests.bot.conftest import ALICE_DM
from tests.bot.test_journal import ALICE_REF, Clock, journal_usecase

# The bank's phrases about a moment after the morning, as bot/prompts.txt words them.
AFTERNOON = {
    "The song I'd play to remember this afternoon is…", "If today's lunch break had a soundtrack, it was…",
    "In the middle of a busy afternoon, the song in my head was…",
    "The song that would have made this morning's meeting better is…",
}
EVENING = {
    "On the way home today, the song in my head was…", "Burning dinner, I felt like…",
    "When I finally sat down tonight, I needed to hear…", "Doing the dishes tonight, I was humming…",
    "Cooking tonight, the kitchen was filled with…", "Doing nothing at all this evening, I felt like…",
    "After a long day, my shoulders dropped to…", "Folding laundry tonight, the song in the background was…",
    "Heading out for the evening, I played…", "Lying on the sofa tonight, I'm in the mood for…",
    "When the day slowed down, I heard…", "Cleaning up after dinner, I was humming…",
    "Right now, as the day ends, I feel like…",
}
LATER_IN_THE_DAY = AFTERNOON | EVENING
PROMPTS = 60  # more than the bank's phrases for a morning: some come twice, none of the later ones


async def phrases_sent_at(db, counting, utc_hour: int, zone: str) -> list[str]:
    clock = Clock(datetime(2026, 12, 7, utc_hour, 0, tzinfo=timezone.utc))
    journal = journal_usecase(db, counting, now=clock)
    await journal.enable(ALICE_DM, "21:30", zone)
    user = await db.users.get(ALICE_REF)
    return [(await journal.make_prompt(user)).phrase for _ in range(PROMPTS)]


@pytest.mark.parametrize("utc_hour, zone", [
    (8, "Europe/Lisbon"),  # 08:00 there
    (23, "Asia/Tokyo"),  # 08:00 the next day there; 23:00 in UTC, an evening's
    (5, "UTC"),  # 05:00, the night over
])
async def test_a_morning_prompt_never_asks_about_the_afternoon_or_evening(db, counting, utc_hour, zone):
    assert LATER_IN_THE_DAY < set(phrase_bank())
    sent = await phrases_sent_at(db, counting, utc_hour, zone)
    assert not set(sent) & LATER_IN_THE_DAY, set(sent) & LATER_IN_THE_DAY


@pytest.mark.parametrize("utc_hour, zone", [(21, "Europe/Lisbon"), (12, "Asia/Tokyo"), (1, "UTC")])
async def test_an_evening_or_night_prompt_may_ask_about_any_moment(db, counting, utc_hour, zone):
    sent = await phrases_sent_at(db, counting, utc_hour, zone)  # 21:00, 21:00 and 01:00 there
    assert len(set(sent)) == PROMPTS and set(sent) & LATER_IN_THE_DAY


async def test_an_afternoon_prompt_asks_about_the_afternoon_not_yet_the_evening(db, counting):
    sent = set(await phrases_sent_at(db, counting, 14, "Europe/Lisbon"))  # 14:00 there
    assert not sent & EVENING and sent & AFTERNOON, sent & LATER_IN_THE_DAY
