"""Given a Telegram user asks about more than the bot hears (audio captioned `/mood <song>`), the
answer says what it heard, as Discord's does."""
from __future__ import annotations

import asyncio

import pytest

from bot.frontends.telegram import NOT_AUDIO
from bot.replies import QUERY_LEFT_ASIDE
from storage.models import UserRef
from tests.frontends.conftest import cache_upload, journal_on_telegram, read

GROUP = -100777
ALICE = 42
AUDIO = b"OggS a song someone recorded"


async def answer_to(fake, caption: str, **sent) -> str:
    mark = fake.mark()
    await fake.user_sends(caption, **sent)
    return (await fake.wait_for_reply(lambda c: "Mood:" in c.text or "Sorry" in c.text, after=mark)).text


@pytest.mark.parametrize("kind", ["audio", "voice", "document", "video"])
async def test_a_file_captioned_mood_with_a_song_name_says_the_file_was_heard(telegram, db, kind):
    fake, _ = telegram
    await cache_upload(db, AUDIO)
    take = fake.audio_attachment(AUDIO, file_name="take1.ogg", kind=kind)
    answer = await answer_to(fake, "/mood Radiohead - Creep", **{kind: take}, chat=GROUP, user=ALICE)
    assert "Mood:" in answer and QUERY_LEFT_ASIDE in answer

    # the file alone: nothing was left aside, nothing to say
    answer = await answer_to(fake, "/mood", **{kind: take}, chat=GROUP, user=ALICE)
    assert "Mood:" in answer and QUERY_LEFT_ASIDE not in answer


@pytest.mark.parametrize("caption", ["/mood Radiohead - Creep", "/Mood creep", "/mood take1.ogg"])
async def test_a_caption_naming_the_file_itself_gets_no_note(telegram, db, caption):
    """Telegram's audio carries its title and performer (read from its tags), and the answer names
    the file: a caption repeating them, or the file's name, left nothing aside."""
    fake, _ = telegram
    await cache_upload(db, AUDIO)
    take = {**fake.audio_attachment(AUDIO, file_name="take1.ogg"), "performer": "Radiohead", "title": "Creep"}
    answer = await answer_to(fake, caption, audio=take, chat=GROUP, user=ALICE)
    assert "Mood:" in answer and QUERY_LEFT_ASIDE not in answer


async def test_a_refused_file_gets_no_note(telegram):
    """The note tells what was heard: of a file refused, nothing was."""
    fake, _ = telegram
    pdf = {**fake.audio_attachment(b"%PDF-1.7", file_name="lyrics.pdf", kind="document"), "mime_type": "application/pdf"}
    mark = fake.mark()
    await fake.user_sends("/mood Radiohead - Creep", document=pdf, chat=GROUP, user=ALICE)
    refusal = await fake.wait_for_reply(after=mark)
    assert read(refusal.text) == NOT_AUDIO.format(name="lyrics.pdf")


async def test_audio_captioned_mood_answering_a_prompt_keeps_its_words_as_the_note_without_the_line(
        telegram, db, usecases):
    """Under a reply to the daily prompt the caption's words are the day's note, not a song asked for."""
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    await cache_upload(db, AUDIO)
    mark = fake.mark()
    await scheduler.fire_now(UserRef("telegram", str(ALICE)))
    prompt = fake.message_of(await fake.wait_for("sendMessage", after=mark))
    mark = fake.mark()
    await fake.user_sends("/mood humming along", audio=fake.audio_attachment(AUDIO, file_name="take1.ogg"),
                          reply_to=prompt["message_id"])
    saved = await fake.wait_for_reply(lambda c: "Saved to your journal" in c.text, after=mark)
    assert QUERY_LEFT_ASIDE not in saved.text
    (entry,) = await db.journal.list(UserRef("telegram", str(ALICE)))
    assert entry.note == "humming along"
    await asyncio.sleep(0.3)
    assert all(QUERY_LEFT_ASIDE not in c.text for c in fake.calls_of("sendMessage", after=mark))
