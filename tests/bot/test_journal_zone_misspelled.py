"""A time zone misspelled by a letter or two (`Europe/Lisbn`, `Amerika/New_York`, `Chicgo`) is
answered with the zone meant, "Did you mean Europe/Lisbon? /journal on 21:30 Europe/Lisbon", where
it got "I don't know the time zone" and the same four examples whatever was typed. Nothing is saved
until the user sends the zone."""
from __future__ import annotations

import pytest

from bot.replies import ErrorReply
from bot.usecases.journal import DID_YOU_MEAN
from tests.bot.conftest import ALICE_DM
from tests.bot.test_journal import ALICE_REF, journal_usecase


@pytest.mark.parametrize("typed, zone", [
    ("Europe/Lisbn", "Europe/Lisbon"), ("europe/pariss", "Europe/Paris"), ("Amerika/New_York", "America/New_York"),
    ("America/Los_Angles", "America/Los_Angeles"), ("Chicgo", "America/Chicago"), ("Barcelna", "Europe/Madrid"),
    ("Asia/Tokio", "Asia/Tokyo"),
])
async def test_a_zone_misspelled_is_answered_with_the_zone_meant(db, counting, typed, zone):
    reply = await journal_usecase(db, counting).enable(ALICE_DM, "21:30", typed)
    assert reply == ErrorReply(DID_YOU_MEAN.format(zone=zone, time="21:30")), reply
    assert await db.users.get(ALICE_REF) is None


@pytest.mark.parametrize("typed", ["Atlantis", "Mars/Olympus_Mons", "Gotham"])
async def test_a_name_near_no_zone_still_gets_the_examples(db, counting, typed):
    reply = await journal_usecase(db, counting).enable(ALICE_DM, "21:30", typed)
    assert isinstance(reply, ErrorReply) and reply.message.startswith(f"I don't know the time zone “{typed}”"), reply
