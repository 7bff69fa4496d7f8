"""Given a member of a group opens a message with the bot's name ('@moodbot Creep'), as people
address a bot in a group, the bot says how it is asked there. Telegram hands such a message to a
bot in privacy mode because it names the bot; it was left in silence, as any group text is. A
message naming it further on, or naming another bot, is still let be."""
from __future__ import annotations

import re

import pytest

from bot.frontends.telegram import MENTIONED, MENTIONED_COMMAND, MENTIONED_FILE
from tests.fakes.telegram_api import BOT_USERNAME
from tests.frontends.conftest import cache_upload
from tests.frontends.test_telegram_not_a_song import said_after

ALICE = 42
GROUP = -100600


def named(text: str, *, at: int = 0, command_at: int | None = None, key: str = "entities") -> dict:
    """The entities Telegram gives a text naming a bot (`@name` at `at`), with a command's at
    `command_at` if any; `key`: "caption_entities" for a file's caption."""
    name = re.match(r"@\w+", text[at:]).group()
    entities = [{"type": "mention", "offset": at, "length": len(name)}]
    if command_at is not None:
        entities.append({"type": "bot_command", "offset": command_at, "length": len(text[command_at:].split()[0])})
    return {key: entities}


async def said_in_group(fake, text: str, extra: dict) -> list[str]:
    mark = fake.mark()
    await fake.user_sends(text, chat=GROUP, user=ALICE, extra=extra)
    return await said_after(fake, mark)


@pytest.mark.parametrize(("text", "answer"), [
    (f"@{BOT_USERNAME} Creep", MENTIONED),
    (f"@{BOT_USERNAME}", MENTIONED),
    (f"@{BOT_USERNAME.upper()}, what's the mood of Creep?", MENTIONED),  # a username in any case
    (f"@{BOT_USERNAME} mood Creep", "Commands start with a slash: did you mean /mood Creep?"),
    (f"@{BOT_USERNAME} /mood Creep", MENTIONED_COMMAND.format(command="/mood Creep")),
], ids=["a song", "the name alone", "a question", "a command without its slash", "a command after the name"])
async def test_a_group_message_opening_with_the_bot_s_name_is_told_how_to_ask(telegram, text, answer):
    fake, _ = telegram
    command_at = text.find("/") if "/" in text else None
    assert await said_in_group(fake, text, named(text, command_at=command_at)) == [answer]


@pytest.mark.parametrize("text, at", [(f"I asked @{BOT_USERNAME} yesterday", 8), ("@other_music_bot Creep", 0)],
                         ids=["named further on", "another bot"])
async def test_a_group_message_naming_the_bot_further_on_or_another_bot_is_let_be(telegram, text, at):
    fake, _ = telegram
    assert await said_in_group(fake, text, named(text, at=at)) == []


async def test_a_file_captioned_with_the_bot_s_name_in_a_group_is_told_how_to_ask_for_its_mood(telegram, db):
    """A voice note captioned '@moodbot what's this one?': how to ask for its mood, which the
    caption edited to '/mood' then gets."""
    fake, _ = telegram
    caption = f"@{BOT_USERNAME} what's this one?"
    voice = fake.audio_attachment(await cache_upload(db, b"OggS a voice note Alice hummed", "calm"), kind="voice")
    mark = fake.mark()
    sent = await fake.user_sends(caption, chat=GROUP, user=ALICE, voice=voice, extra=named(caption, key="caption_entities"))
    assert await said_after(fake, mark) == [MENTIONED_FILE]
    assert not fake.calls_of("getFile", after=mark)
    mark = fake.mark()
    await fake.user_edits(sent, "/mood")
    assert "Mood:" in (await fake.wait_for_reply(lambda c: "Mood:" in c.text, after=mark)).text
