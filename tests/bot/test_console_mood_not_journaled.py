"""Given the console's user, today's prompt open, asks a song's mood with /mood, the answer says the
song went to no journal and the command that saves it there, as Telegram and Discord say it
(tests/frontends/test_telegram_mood_not_journaled.py)."""
from __future__ import annotations

from bot.usecases.journal import ANSWER_BY_COMMAND, NOT_SAVED_TO_JOURNAL
from storage.models import UserRef
from tests.bot.test_console import chat
from tests.frontends.conftest import known_upload


async def test_a_mood_while_today_s_prompt_is_open_names_the_command_that_saves_it(db, tmp_path):
    song = tmp_path / "take1.ogg"
    song.write_bytes(b"OggS a song someone recorded")
    await db.tracks.save(known_upload(song.read_bytes()))  # heard before: no classifier here
    notice = NOT_SAVED_TO_JOURNAL.format(how=ANSWER_BY_COMMAND.format(song=song))
    out = await chat(db, None, tmp_path, [
        f"/mood {song}",  # no journal yet
        "/journal on 21:30 Europe/Lisbon",
        f"/mood {song}",  # no prompt yet
        "/journal prompt",
        f"/mood {song}",  # the prompt open: said, with the command
        f"/journal answer {song}",
        f"/mood {song}",  # the prompt answered
        "/quit",
    ])
    assert out.count("Mood: ") == 5  # four /mood and the answer
    assert out.count(notice) == 1 and out.index("📝 ") < out.index(notice) < out.index("Saved to your journal")
    assert len(await db.journal.list(UserRef("console", "local"))) == 1
