"""Telegram: a reply to the daily prompt that is no song ("skip", an emoji) is told nothing was
saved and the prompt stays open; it was "I couldn't find “skip” on Spotify."."""
from __future__ import annotations

import pytest

from bot.usecases.journal import NO_SONG_TODAY, NOT_A_SONG_NAME
from storage.models import UserRef
from tests.frontends.test_telegram import ALICE, replies_to
from tests.frontends.test_telegram_forget_races import open_prompt


@pytest.mark.parametrize("typed, said", [("skip", NO_SONG_TODAY), ("🤷", NOT_A_SONG_NAME)])
async def test_a_reply_to_the_prompt_with_no_song_says_nothing_was_saved(telegram, db, usecases, typed, said):
    fake, frontend = telegram
    prompt = await open_prompt(fake, frontend, db, usecases)
    (answer,) = await replies_to(fake, typed, reply_to=prompt["message_id"])
    assert answer == said.format(typed=typed, at="{:%H:%M} (Europe/Lisbon)".format(
        (await db.users.get(UserRef("telegram", str(ALICE)))).prompt_time)), answer
    assert await db.journal.list(UserRef("telegram", str(ALICE))) == []
