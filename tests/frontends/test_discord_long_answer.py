"""Discord sends a message longer than its limit (2 000 characters, 4 000 with Nitro) as a file,
`message.txt`, with no text. A long journal answer in the DM (the song, then a day's worth of words)
came so, and was told "The file message.txt is not audio we can read.", the words lost: it is read
as the message it was, the song on its first line and the rest the note, up to
`LONG_MESSAGE_MAX_BYTES`; one longer is told so. Another text file is still no song."""
from __future__ import annotations

from bot.frontends.discord.journal import LONG_MESSAGE_MAX_BYTES, LONG_MESSAGE_TOO_LONG
from bot.replies import NOT_AUDIO
from storage.models import UserRef
from tests.fakes.discord_api import FakeDiscord
from tests.frontends.conftest import discord_on, prompts_through, read, usecases_with_creep
from tests.frontends.test_discord import ALICE, dm_answer, open_a_prompt

WORDS = "a long day at the hospital with grandma, the radio on in the corridor. " * 40  # 2 920 characters


async def answered_in_the_dm(db, content: str, files: dict[str, tuple[str, bytes]] | None = None):
    """The bot's answer to a DM answering today's prompt (Creep on the fake Spotify): `content`,
    with `files` attached, each name's content type and bytes."""
    async with usecases_with_creep(db) as (spotify, usecases):
        async with discord_on(FakeDiscord(), usecases) as (fake, frontend):
            async with prompts_through(frontend, usecases, db):
                await open_a_prompt(fake)
                attached = [{**fake.add_file(name, data), "content_type": kind}
                            for name, (kind, data) in (files or {}).items()]
                await fake.user_dms(content, attachments=attached)
                return await dm_answer(fake)


async def answered_with_a_file(db, name: str, text: str):
    """The bot's answer to a DM answering today's prompt with only a text file, `name`, holding `text`."""
    return await answered_in_the_dm(db, "", {name: ("text/plain; charset=utf-8", text.encode())})


async def test_a_long_answer_discord_sent_as_message_txt_is_read_as_typed(db):
    saved = await answered_with_a_file(db, "message.txt", f"Radiohead - Creep\n{WORDS}")
    assert saved.embeds and "Saved to your journal" in saved.embeds[0]["description"], saved
    entry, = await db.journal.list(UserRef("discord", str(ALICE)))
    assert entry.track_title == "Radiohead – Creep" and entry.note == WORDS.strip()


async def test_a_message_txt_too_long_for_an_answer_says_so(db):
    answer = await answered_with_a_file(db, "message.txt", "Radiohead - Creep\n" + "x" * LONG_MESSAGE_MAX_BYTES)
    assert answer.content == LONG_MESSAGE_TOO_LONG.format(kb=LONG_MESSAGE_MAX_BYTES // 1024), answer.content
    assert await db.journal.list(UserRef("discord", str(ALICE))) == []


async def test_another_text_file_is_still_no_song(db):
    answer = await answered_with_a_file(db, "lyrics.txt", f"Radiohead - Creep\n{WORDS}")
    assert read(answer.content) == NOT_AUDIO.format(name="lyrics.txt"), answer.content
