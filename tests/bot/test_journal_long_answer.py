"""A prompt answered with a paragraph on one line ("Creep by Radiohead, because…", 300 characters
and no line break) was searched for as a song's name by its first 200 characters: a song it never
named was saved (the words not in the note), or it was "I couldn't find “…” on Spotify". No song's
name is that long: the answer saves nothing and says to put the song on a line of its own (on the
console, in quotes), the prompt still open. A link in such a line is the song, as ever."""
from __future__ import annotations

import pytest

from bot.replies import Caller, ErrorReply, JournalSavedReply
from bot.sources.query import MAX_TEXT_CHARS
from bot.usecases.journal import LONG_FIRST_LINE, LONG_FIRST_LINE_CONSOLE
from storage.models import UserRef
from tests.bot.conftest import ALICE_DM
from tests.bot.test_journal import ALICE_REF, journal_usecase
from tests.bot.test_journal_no_song import open_prompt
from tests.bot.test_journal_two_songs import KEPT, cache_video

PARAGRAPH = ("Creep by Radiohead, because the party tonight was loud and I stood in the kitchen the whole time "
             "feeling like I did at fifteen, and then on the bus home it came on shuffle and I laughed out loud, "
             "which made the driver look at me")


async def test_a_paragraph_on_one_line_saves_nothing_and_says_to_put_the_song_on_its_own_line(db, counting):
    assert len(PARAGRAPH) > MAX_TEXT_CHARS
    journal = await open_prompt(db, counting)
    reply = await journal.answer(ALICE_DM, PARAGRAPH, prompt_message_id="777")
    assert reply == ErrorReply(LONG_FIRST_LINE.format(chars=len(PARAGRAPH), most=MAX_TEXT_CHARS)), reply
    assert counting.calls == [] and await db.journal.list(ALICE_REF) == []
    assert (await db.prompts.latest_open(ALICE_REF)).prompt_id  # still open


async def test_the_console_is_told_to_quote_the_song(db, counting):
    journal = journal_usecase(db, counting)
    console = Caller("console", "local", chat_id="local")
    await journal.enable(console, "21:30", "Europe/Lisbon")
    await journal.make_prompt(await db.users.get(UserRef("console", "local")))
    reply = await journal.answer(console, PARAGRAPH)
    assert reply == ErrorReply(LONG_FIRST_LINE_CONSOLE.format(chars=len(PARAGRAPH), most=MAX_TEXT_CHARS)), reply


@pytest.mark.parametrize("typed", [f"{KEPT} {PARAGRAPH}", f"{PARAGRAPH} {KEPT}"])
async def test_a_long_line_holding_a_link_is_that_song_and_the_words_its_note(db, counting, typed):
    await cache_video(db, counting)
    journal = await open_prompt(db, counting)
    reply = await journal.answer(ALICE_DM, typed, prompt_message_id="777")
    assert isinstance(reply, JournalSavedReply), reply
    entry, = await db.journal.list(ALICE_REF)
    assert entry.track_key == "youtube:XFkzRNyygfk" and entry.note == PARAGRAPH
