"""A demanding Discord user's edge cases, driven through the real discord.py against the fake
Discord: what the bot answers must be what the user meant, and within what Discord accepts."""
from __future__ import annotations

import contextlib
import logging
from time import perf_counter

import pytest

from bot.frontends.discord import STALE_COMMAND
from bot.frontends.discord.mood import links_in_text
from bot.sources.models import UnsupportedInputError
from bot.sources.query import parse_query
from bot.usecases.journal import split_answer
from bot.usecases.mood import SPOTIFY_OFF_ERROR
from tests.fakes.discord_api import EPHEMERAL, user_payload
from tests.frontends.test_discord import ALICE, BOB, GUILD, SPOTIFY_TRACK, dm_answer, message_command, open_a_prompt, sub


async def test_a_music_bot_s_now_playing_card_forwarded_into_the_dm_answers_the_prompt(scheduled):
    """Another bot's "Now playing" card has no text, only an embed naming the song's link: forwarded
    into the DM as the day's answer, its link is the song, as the message command reads it. It
    was answered "Reply with a song…", as if nothing had been sent."""
    fake, _ = scheduled
    await open_a_prompt(fake)
    card = fake.message_payload(channel_id=GUILD + 5, content="", author={**user_payload(BOB), "bot": True},
                                embeds=[{"type": "rich", "title": "Now playing",
                                         "description": f"[Creep – Radiohead]({SPOTIFY_TRACK}) requested by Bob"}])
    await fake.user_dms("", forward_of=card)
    assert (await dm_answer(fake)).content == SPOTIFY_OFF_ERROR  # the card's link was read (this bot has no Spotify)


@pytest.mark.parametrize("name, options", [("moodboard", None), ("journal", sub("history"))])
async def test_a_command_discord_s_list_still_offers_but_the_bot_no_longer_has_says_so_not_that_it_failed(
        discord_bot, caplog, name, options):
    """A user's Discord may still offer a command the bot has removed or renamed (its list is
    refreshed later, or the new commands' sync is still on its way after the start). It was told
    "something went wrong on my side, try again in a minute" (so the same stale command again),
    and each was logged as a failure with its traceback; now the answer says to pick the command
    again from the list, privately, and it is one INFO line."""
    fake, _ = discord_bot
    await fake.slash(name, options, guild=GUILD)
    answer = await fake.wait_for("interaction_callback")
    assert answer.content == STALE_COMMAND and answer.flags & EPHEMERAL
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("bot.")]
    (line,) = [r for r in caplog.records if r.getMessage() == "discord.stale_command"]
    assert (line.levelno, line.user, line.place) == (logging.INFO, str(ALICE), f"discord:{GUILD}")


# Discord's markdown a user may put around a link: underlined, italic with underscores, struck through.
MARKED_UP = ["__{}__", "_{}_ so good", "~~{}~~", "***__{}__***", "~~__{}__~~"]


@pytest.mark.parametrize("marked_up", MARKED_UP)
async def test_a_dm_answer_whose_link_discord_s_markdown_wraps_is_read(scheduled, marked_up):
    """Discord keeps what a user types around a link (`__link__` shows it underlined); the
    underscores or tildes were read as the link's own, and the answer was "That Spotify track link
    looks broken"."""
    fake, _ = scheduled
    await open_a_prompt(fake)
    await fake.user_dms(marked_up.format(SPOTIFY_TRACK))
    assert (await dm_answer(fake)).content == SPOTIFY_OFF_ERROR  # the link was read (this bot has no Spotify)


@pytest.mark.parametrize("marked_up", MARKED_UP)
async def test_the_message_command_reads_a_link_discord_s_markdown_wraps(discord_bot, marked_up):
    """The same in a message the message command is used on, which has no link preview (its
    embeds suppressed, or not made yet)."""
    fake, _ = discord_bot
    await message_command(fake, marked_up.format(SPOTIFY_TRACK), guild=GUILD)
    assert (await fake.wait_for("followup")).content == SPOTIFY_OFF_ERROR


@pytest.mark.parametrize("marks", ["_" * 4096, "~_" * 2048, "_" * 4000 + SPOTIFY_TRACK])
def test_a_message_of_markdown_marks_is_read_at_once(marks):
    """The marks around a link are taken off in pairs without a pattern: one that paired a run of
    marks with the same run after the link tried every run from each mark, 1.7 s of the event loop,
    everyone's, for a word of 4 096 "_" (the message command's reader, 80 ms)."""
    started = perf_counter()
    links_in_text(marks), split_answer(marks)
    with contextlib.suppress(UnsupportedInputError):
        parse_query(marks)
    assert perf_counter() - started < 0.04
