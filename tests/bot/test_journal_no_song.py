"""A prompt answered with no song ("skip", "I don't know", an emoji) is told that nothing was
saved and that the prompt stays open, not searched for: "skip" was looked up on Spotify and
answered "I couldn't find “skip” on Spotify.", as if the user had misspelled a song."""
from __future__ import annotations

import pytest

from bot.replies import ErrorReply
from bot.usecases.journal import NO_SONG_TODAY, NOT_A_SONG_NAME
from tests.bot.conftest import ALICE_DM
from tests.bot.test_journal import ALICE_REF, journal_usecase


async def open_prompt(db, counting):
    journal = journal_usecase(db, counting)
    await journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    prompt = await journal.make_prompt(await db.users.get(ALICE_REF))
    await journal.prompt_delivered(prompt.prompt_id, "777")
    return journal


@pytest.mark.parametrize("typed", ["skip", "Skip.", "I don't know", "i dont know", "idk", "no song today",
                                   "pass", "nothing\nlong day, no music"])
async def test_a_prompt_answered_with_no_song_says_nothing_was_saved_and_it_stays_open(db, counting, typed):
    journal = await open_prompt(db, counting)
    reply = await journal.answer(ALICE_DM, typed, prompt_message_id="777")
    said = typed.splitlines()[0]
    assert reply == ErrorReply(NO_SONG_TODAY.format(typed=said, at="21:30 (Europe/Lisbon)")), reply
    assert await db.journal.list(ALICE_REF) == []
    assert (await db.prompts.latest_open(ALICE_REF)).prompt_id  # still open: a song later answers it


@pytest.mark.parametrize("typed", ["🎵", "🤷‍♀️", "...", "?!"])
async def test_a_prompt_answered_with_only_emoji_or_marks_is_asked_for_a_song(db, counting, typed):
    journal = await open_prompt(db, counting)
    reply = await journal.answer(ALICE_DM, typed, prompt_message_id="777")
    assert reply == ErrorReply(NOT_A_SONG_NAME.format(typed=typed, at="21:30 (Europe/Lisbon)")), reply
    assert await db.journal.list(ALICE_REF) == []
