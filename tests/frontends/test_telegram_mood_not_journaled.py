"""Given a Telegram user whose daily prompt is open asks a song's mood without replying to the
prompt, the answer says the song went to no journal, and how to save it there: they took the mood
for their answer, and found no entry."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.usecases.journal import ANSWER_BY_REPLY, NOT_SAVED_TO_JOURNAL
from storage.models import UserRef
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN, cache_upload, journal_on_telegram, telegram_on, usecases_with_creep
from tests.frontends.test_telegram_forget_races import open_prompt

ALICE, GROUP = 42, -100777
NOTICE = NOT_SAVED_TO_JOURNAL.format(how=ANSWER_BY_REPLY)
AUDIO = b"OggS a song someone recorded"


@pytest.fixture
async def telegram_with_creep(db):
    """The Telegram front-end whose /mood finds Creep (sad) on a fake Spotify."""
    async with usecases_with_creep(db) as (_, usecases):
        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, frontend):
            yield fake, frontend, usecases


async def told(fake, text: str | None = "/mood Creep", **sent) -> str:
    """The answer to a message (its status message edited into it)."""
    mark = fake.mark()
    await fake.user_sends(text, **sent)
    return (await fake.wait_for_reply(lambda c: "Mood:" in c.text, after=mark)).text


async def entries(db) -> list:
    return await db.journal.list(UserRef("telegram", str(ALICE)))


async def test_a_mood_asked_privately_while_today_s_prompt_is_open_says_it_was_not_saved_and_how(
        telegram_with_creep, db):
    fake, frontend, usecases = telegram_with_creep
    await open_prompt(fake, frontend, db, usecases)
    answer = await told(fake)
    assert "Creep" in answer and "sad" in answer.lower()
    assert answer.endswith(f"\n{NOTICE}")
    assert await entries(db) == []

    # an audio file sent alone, not in reply to the prompt: the same
    take = fake.audio_attachment(await cache_upload(db, AUDIO), file_name="take1.ogg")
    assert (await told(fake, None, audio=take)).endswith(f"\n{NOTICE}")
    assert await entries(db) == []


async def test_a_mood_in_reply_to_the_prompt_saves_it_and_is_not_told_it_was_not(telegram_with_creep, db):
    fake, frontend, usecases = telegram_with_creep
    prompt = await open_prompt(fake, frontend, db, usecases)
    saved = await told(fake, reply_to=prompt["message_id"])
    assert saved.startswith("Saved to your journal") and NOTICE not in saved
    (entry,) = await entries(db)
    assert entry.track_title == "Radiohead – Creep"

    # the prompt answered: a later /mood has nothing to add
    assert NOTICE not in await told(fake)


async def test_a_mood_with_no_prompt_open_today_says_nothing_of_the_journal(telegram_with_creep, db):
    fake, frontend, usecases = telegram_with_creep
    await journal_on_telegram(fake, frontend, db, usecases)  # on, no prompt sent yet
    assert "journal" not in (await told(fake)).lower()

    # yesterday's prompt, left open: today's is not sent yet
    now = datetime.now(timezone.utc)
    await db.prompts.record_sent(UserRef("telegram", str(ALICE)), "yesterday", "How was it?",
                                 (now - timedelta(days=1)).date(), now - timedelta(days=1), str(ALICE), "7")
    assert "journal" not in (await told(fake)).lower()


async def test_a_mood_with_the_prompt_open_but_the_journal_off_says_nothing_of_the_journal(telegram_with_creep, db):
    fake, frontend, usecases = telegram_with_creep
    await open_prompt(fake, frontend, db, usecases)
    await fake.user_sends("/journal off")
    await fake.wait_for("sendMessage", lambda c: c.text.startswith("Journal off"))
    assert "journal" not in (await told(fake)).lower()


async def test_a_mood_in_a_group_says_nothing_of_a_member_s_journal(telegram_with_creep, db):
    fake, frontend, usecases = telegram_with_creep
    await open_prompt(fake, frontend, db, usecases)
    answer = await told(fake, chat=GROUP, user=ALICE)
    assert "Creep" in answer and "journal" not in answer.lower()
