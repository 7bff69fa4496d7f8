"""Given a Discord voice message, whose length Discord tells (`duration_secs`), one under the 10 s
the classifier needs, or over MAX_AUDIO_DURATION_S, is refused before it is downloaded, in the
decoder's words (as Telegram refuses a short or long voice note); one of no stated length, or of 0,
is downloaded for the decoder to judge."""
from __future__ import annotations

import pytest
from discord.utils import escape_markdown

from bot.config import Settings
from bot.frontends.discord import DiscordFrontend
from tests.fakes.discord_api import VOICE_MESSAGE_FLAG, FakeDiscord, snowflake_at, user_payload
from tests.frontends.conftest import prompts_through, running
from tests.frontends.test_discord import BOB, GUILD, dm_answer, open_a_prompt
from tests.frontends.test_discord_voice_messages import SENT

TOO_SHORT = "The audio lasts {seconds:.1f} s; I need at least 10 s."


async def mood_of_bobs_voice_message(fake, voice: dict) -> int:
    """"Mood of this song" on Bob's voice message, in a server; the mark of the calls after it."""
    mark = fake.mark()
    target = fake.message_payload(channel_id=GUILD + 1, content="", author=user_payload(BOB, "bob"),
                                  attachments=[voice], flags=VOICE_MESSAGE_FLAG,
                                  message_id=snowflake_at(SENT, fake.snowflake()))
    await fake.slash("Mood of this song", command_type=3, target_id=target["id"],
                     resolved={"messages": {target["id"]: target}}, guild=GUILD)
    return mark


async def test_a_voice_message_discord_says_is_too_short_is_refused_without_a_download(discord_bot, caplog):
    """A 4-second voice message could never be heard: it was downloaded, then refused by the decoder."""
    fake, _ = discord_bot
    mark = await mood_of_bobs_voice_message(fake, fake.add_voice_message(b"OggS hi", duration_secs=4.25))
    refusal = await fake.wait_for("followup", after=mark)  # told to the asker alone, as refusals are in a server
    assert refusal.content == TOO_SHORT.format(seconds=4.2)
    assert not fake.calls_of("download", after=mark)
    (logged,) = [r for r in caplog.records if r.getMessage() == "discord.file_refused"]
    assert (logged.why, logged.duration_s, logged.limit_s) == ("too_short", 4.25, 10)


async def test_a_too_short_voice_message_answering_a_prompt_is_refused_the_same_way(scheduled):
    fake, _ = scheduled
    await open_a_prompt(fake)
    mark = fake.mark()
    await fake.user_dms("", attachments=[fake.add_voice_message(b"OggS hi", duration_secs=9.97)],
                        flags=VOICE_MESSAGE_FLAG)
    assert (await dm_answer(fake)).content == TOO_SHORT.format(seconds=9.9)  # rounded down, as the decoder does
    assert not fake.calls_of("download", after=mark)


@pytest.mark.parametrize("duration", [0, None, 10])
async def test_a_voice_message_of_unknown_or_long_enough_length_is_downloaded(discord_bot, duration):
    fake, _ = discord_bot
    mark = await mood_of_bobs_voice_message(fake, fake.add_voice_message(b"OggS not much", duration_secs=duration))
    await fake.wait_for("download", after=mark)


# A voice message Discord says lasts over MAX_AUDIO_DURATION_S is refused before it is downloaded,
# naming it by whose it is and the day (Discord names every one voice-message.ogg), in the words
# the decoder says after a download (as Telegram refuses one).
LIMIT_S = 300  # the operator's MAX_AUDIO_DURATION_S in these tests
TOO_LONG = "The file sent by {name} on 1 Mar 2026 lasts over 5 minutes; send a song shorter than that."


@pytest.fixture
async def discord_limited(usecases):
    """The Discord front-end built with MAX_AUDIO_DURATION_S at `LIMIT_S` (its cogs take it as they are made)."""
    settings = Settings(_env_file=None, discord_token="discord-test-token", max_audio_bytes=1024 * 1024,
                        max_audio_duration_s=LIMIT_S)
    async with running(FakeDiscord(), lambda fake: DiscordFrontend(
            settings.model_copy(update={"discord_api_url": fake.api_url, "discord_gateway_url": fake.gateway_url}),
            usecases, guild_ready_timeout=0.05)) as both:
        yield both


async def test_a_voice_message_discord_says_is_too_long_is_refused_without_a_download(discord_limited, caplog):
    fake, _ = discord_limited
    mark = await mood_of_bobs_voice_message(fake, fake.add_voice_message(b"OggS hi", duration_secs=400))
    refusal = await fake.wait_for("followup", after=mark)
    assert refusal.content == escape_markdown(TOO_LONG.format(name="Bob"))
    assert not fake.calls_of("download", after=mark)
    (logged,) = [r for r in caplog.records if r.getMessage() == "discord.file_refused"]
    assert (logged.why, logged.duration_s, logged.limit_s) == ("too_long", 400, LIMIT_S)


async def test_a_too_long_voice_message_answering_a_prompt_is_refused_the_same_way(discord_limited, usecases, db):
    fake, frontend = discord_limited
    async with prompts_through(frontend, usecases, db):
        await open_a_prompt(fake)
        mark = fake.mark()
        await fake.user_dms("", attachments=[fake.add_voice_message(b"OggS hi", duration_secs=400)],
                            flags=VOICE_MESSAGE_FLAG, made_at=SENT)
        assert (await dm_answer(fake)).content == escape_markdown(TOO_LONG.format(name="Alice"))
        assert not fake.calls_of("download", after=mark)


async def test_a_voice_message_as_long_as_the_setting_is_downloaded(discord_limited):
    fake, _ = discord_limited
    mark = await mood_of_bobs_voice_message(fake, fake.add_voice_message(b"OggS not much", duration_secs=LIMIT_S))
    await fake.wait_for("download", after=mark)
