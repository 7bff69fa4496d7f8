"""Given a Telegram client sends a pasted text of megabytes as back-to-back parts, each within
the split window of the one before, the journal entry's note does not grow without end: it stops at
`MAX_NOTE_CHARS`, the parts past it are refused with why, and the note keeps what came before."""
from __future__ import annotations

import asyncio

from bot.replies import Caller, ErrorReply
from bot.usecases import build_usecases
from bot.usecases.journal import NOTE_FULL
from storage.journal import MAX_NOTE_CHARS
from storage.models import JournalEntry, UserRef
from storage.outbox import JournalOutbox
from tests.fakes.telegram_api import client_parts
from tests.frontends.test_telegram_split_answer import note_of_today, prompt_open, send_parts, shown
from tests.storage.test_journal import entry

ALICE = Caller("telegram", "42", chat_id="42")
ALICE_REF = UserRef(ALICE.platform, ALICE.user_id)
PART = "and the rain went on " * 195  # 4 095 characters: a client's part
PARTS = MAX_NOTE_CHARS // len(PART) + 3  # past the limit


def answered_at_length() -> JournalEntry:
    """Alice's entry made by her message 80, its note a client's first part."""
    first = entry(ALICE_REF, 1, "2026-12-05", "calm")
    first.note, first.answered_by = PART.strip(), "42:80"
    return first


async def test_a_note_sent_in_parts_stops_at_its_limit_and_the_parts_past_it_are_refused_with_why(db):
    journal = build_usecases(db, classifier=None, fetcher=None).journal
    await db.journal.add(answered_at_length())

    replies = [await journal.add_to_note(ALICE, "80", f"{n} {PART}", "") for n in range(PARTS)]

    taken = [reply for reply in replies if isinstance(reply, JournalEntry)]
    refused = replies[len(taken):]
    assert taken and refused and all(isinstance(reply, ErrorReply) for reply in refused)
    assert f"{MAX_NOTE_CHARS:,}" in refused[0].message and "not saved" in refused[0].message
    note = (await db.journal.answered_by(ALICE_REF, "42:80")).note
    assert len(note) <= MAX_NOTE_CHARS and note.endswith(f"{len(taken) - 1} {PART}")


async def test_a_note_waiting_in_the_outbox_stops_at_the_same_limit(tmp_path):
    """The database down: the entry waits in the outbox, and its note is held to the same length."""
    outbox = JournalOutbox(tmp_path / "outbox.jsonl")
    await outbox.append(answered_at_length())

    notes = [(await outbox.add_to_note(ALICE_REF, "42:80", f"{n} {PART}", "")).note for n in range(PARTS)]

    assert max(map(len, notes)) <= MAX_NOTE_CHARS < len(PART.strip()) + PARTS * len(f"99 {PART}")
    assert notes[-1] == notes[-2] and notes[0].endswith(f"0 {PART}")


async def test_a_pasted_text_of_many_parts_past_the_limit_is_told_once_not_part_after_part(db):
    """Telegram: each part past the limit was answered on its own, so a megabyte pasted (250
    parts) came back as 250 refusals; the chat is told once, the note kept to its limit."""
    words = " ".join(f"Hour {hour}: the radio in the corridor played song number {hour}, and grandma hummed along."
                     for hour in range(1, 900))  # 80 000 characters: 20 parts, none found twice
    parts = client_parts(f"Radiohead - Creep\n{words}")
    async with prompt_open(db) as (fake, prompt):
        mark = fake.mark()
        await send_parts(fake, parts, prompt)
        await fake.wait_for_reply(lambda c: "note is full" in c.text, after=mark)
        await asyncio.sleep(1.0)  # the parts after it would have been answered by now
        said = shown(fake, mark)
    assert [text for text in said if "note is full" in text] == [NOTE_FULL.format(chars=MAX_NOTE_CHARS)], said
    assert len(await note_of_today(db)) <= MAX_NOTE_CHARS
