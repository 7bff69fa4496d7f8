"""Given a Discord user whose daily prompt is open asks a song's mood in the DM (/mood), the answer
says the song went to no journal, and how to save it there (as the Telegram front-end says it:
test_telegram_mood_not_journaled.py). In a server, nothing of it. A file sent to the DM with
'/mood': test_an_audio_file_sent_to_the_dm_with_mood_as_its_text_is_heard."""
from __future__ import annotations

import pytest

from bot.usecases.journal import ANSWER_IN_THE_DM, NOT_SAVED_TO_JOURNAL
from storage.models import UserRef
from tests.frontends.conftest import prompts_through
from tests.frontends.test_discord import ALICE, GUILD, STRING, dm_answer, open_a_prompt
from tests.frontends.test_discord_query_markup import spotify_and_discord

NOTICE = NOT_SAVED_TO_JOURNAL.format(how=ANSWER_IN_THE_DM)


@pytest.fixture
async def dm_with_creep(db):
    """The Discord front-end, its /mood finding Creep (sad) on a fake Spotify, delivering prompts."""
    async with spotify_and_discord(db) as (fake, _, (frontend, usecases)):
        async with prompts_through(frontend, usecases, db):
            yield fake


async def mood_of_creep(fake, guild: int | None = None) -> str:
    """What /mood Creep answers (above the mood's card)."""
    mark = fake.mark()
    await fake.slash("mood", [{"name": "query", "type": STRING, "value": "Creep"}], guild=guild)
    answer = await fake.wait_for("edit_original", lambda c: bool(c.embeds), after=mark)
    assert answer.embeds[0]["title"] == "Radiohead – Creep"
    return answer.content


async def entries(db) -> list:
    return await db.journal.list(UserRef("discord", str(ALICE)))


async def test_a_mood_asked_in_the_dm_while_today_s_prompt_is_open_says_it_was_not_saved_and_how(dm_with_creep, db):
    fake = dm_with_creep
    await open_a_prompt(fake)
    assert await mood_of_creep(fake) == NOTICE
    assert await mood_of_creep(fake, GUILD) == ""  # in a server: nothing of anyone's journal
    assert await entries(db) == []


async def test_the_prompt_answered_in_the_dm_a_mood_says_nothing_of_the_journal(dm_with_creep, db):
    fake = dm_with_creep
    assert await mood_of_creep(fake) == ""  # no journal, no prompt
    await open_a_prompt(fake)
    await fake.user_dms("Creep")
    saved = await dm_answer(fake)
    assert "Saved to your journal" in str(saved.embeds) + saved.content and NOTICE not in saved.content
    assert len(await entries(db)) == 1
    assert await mood_of_creep(fake) == ""
