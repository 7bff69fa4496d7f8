"""The rest of a long answer its platform sent in parts (Telegram's messages over 4 096 characters,
`add_to_note`) while the database was down: the first part's entry waited in the outbox, and each
part after it was "I couldn't add the rest of your long answer … so those words are not saved", the
user's words lost though the entry they belong to was safe. They are added to the entry waiting in
the outbox, once per part as in the database, and reach the database with it; an entry the drain
wrote meanwhile takes them there."""
from __future__ import annotations

import asyncio
import time

from bot.replies import ErrorReply, JournalSavedReply
from storage.models import JournalEntry
from tests.bot.conftest import ALICE_DM, attachment
from tests.bot.test_journal import ALICE_REF, prompted_in_outage

FIRST = "the bus home, " * 300  # 4 200 characters: a client sends what follows as the next message
REST = "and then the rain started, " * 10


async def queued_long_answer(outage, counting, clip_paths):
    journal, _ = await prompted_in_outage(outage, counting, "910")
    first = await journal.answer(ALICE_DM, FIRST, attachment(clip_paths[0]), prompt_message_id="910",
                                 message_id="80")
    assert isinstance(first, JournalSavedReply) and first.queued, first
    return journal


async def drained(outage) -> None:
    """The database back, and the outbox written to it (the client reconnects meanwhile)."""
    outage.up()
    deadline = time.monotonic() + 10
    while await outage.writer.outbox.waiting() and time.monotonic() < deadline:
        await outage.writer.drain()
        await asyncio.sleep(0.1)


async def test_a_part_of_a_long_answer_queued_in_an_outage_is_added_to_its_note(counting, clip_paths, outage):
    journal = await queued_long_answer(outage, counting, clip_paths)

    added = await journal.add_to_note(ALICE_DM, "80", REST, "\n")
    again = await journal.add_to_note(ALICE_DM, "80", REST, "\n")  # handed over again after a restart

    assert isinstance(added, JournalEntry) and added.note == f"{FIRST.strip()}\n{REST}", added
    assert isinstance(again, JournalEntry) and again.note == added.note, again
    await drained(outage)
    (entry,) = await outage.db.journal.list(ALICE_REF)
    assert entry.note == f"{FIRST.strip()}\n{REST}"


async def test_a_part_after_the_drain_wrote_its_entry_goes_to_the_database(counting, clip_paths, outage):
    journal = await queued_long_answer(outage, counting, clip_paths)
    await drained(outage)

    added = await journal.add_to_note(ALICE_DM, "80", REST, "\n")

    assert isinstance(added, JournalEntry), added
    (entry,) = await outage.db.journal.list(ALICE_REF)
    assert entry.note == f"{FIRST.strip()}\n{REST}"


async def test_a_part_of_an_answer_that_saved_nothing_is_still_said_not_saved(counting, clip_paths, outage):
    journal, _ = await prompted_in_outage(outage, counting, "911")
    assert await journal.add_to_note(ALICE_DM, "81", REST, "\n") == ErrorReply(
        "I couldn't add the rest of your long answer to your journal entry's note (the database didn't answer), "
        "so those words are not saved.")
