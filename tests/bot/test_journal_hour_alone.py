"""`/journal on 9 Paris`, an hour typed alone, was "I need the time as HH:MM on a 24-hour clock",
as if nothing like a time had been typed; it is now answered with the times it can be, and the
command for each: "“9” could be 09:00 or 21:00: /journal on 09:00 Europe/Paris, or /journal on 21:00
Europe/Paris." (an hour past 12, or 0, with the one it is). Nothing is saved."""
from __future__ import annotations

import pytest

from bot.replies import ErrorReply
from bot.usecases.journal import HOUR_EITHER, TIME_AS_IT_IS
from tests.bot.conftest import ALICE_DM
from tests.bot.test_journal import ALICE_REF, journal_usecase


@pytest.mark.parametrize("typed, zone, said", [
    ("9", "Paris", HOUR_EITHER.format(typed="9", first="09:00", second="21:00", zone="Europe/Paris")),
    ("07", "Europe/Lisbon", HOUR_EITHER.format(typed="07", first="07:00", second="19:00", zone="Europe/Lisbon")),
    ("12", "Asia/Tokyo", HOUR_EITHER.format(typed="12", first="12:00", second="00:00", zone="Asia/Tokyo")),
    ("21", "Europe/Lisbon", TIME_AS_IT_IS.format(typed="21", time="21:00", command=": /journal on 21:00 Europe/Lisbon")),
    ("0", "UTC", TIME_AS_IT_IS.format(typed="0", time="00:00", command=": /journal on 00:00 UTC")),
])
async def test_an_hour_typed_alone_is_answered_with_the_times_it_can_be(db, counting, typed, zone, said):
    reply = await journal_usecase(db, counting).enable(ALICE_DM, typed, zone)
    assert reply == ErrorReply(said), reply
    assert await db.users.get(ALICE_REF) is None


async def test_an_hour_alone_without_a_zone_gives_commands_that_keep_the_saved_zone(db, counting):
    reply = await journal_usecase(db, counting).enable(ALICE_DM, "8", None)
    assert reply == ErrorReply("I need the time as HH:MM on a 24-hour clock: “8” could be 08:00 or 20:00: "
                               "/journal on 08:00, or /journal on 20:00."), reply
