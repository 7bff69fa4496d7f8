"""A public "… is thinking" answer deleted while the bot works (a moderator cleaning the channel, or
the asker): Discord answers its edit 404 Unknown Message (10008), so the answer comes as a message
of its own (a followup of the interaction), as Telegram sends a new message when the status message
is gone. Nothing was the bot's failure: no apology, no 'command failed'."""
from __future__ import annotations

import logging

from bot.frontends import render
from bot.usecases.mood import SPOTIFY_OFF_ERROR
from tests.fakes.discord_api import EPHEMERAL, Call
from tests.frontends.test_discord import VIDEO, cache_video

GUILD = 777000000000000001
STRING = 3
SPOTIFY_TRACK = "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC"


async def ask_with_thinking_deleted(fake, query: str) -> str:
    """/mood `query` in a server, its "thinking" answer deleted as soon as Discord made it (before
    the bot's first edit); the interaction's token."""
    release = fake.hold_next("interaction_callback")
    mark = fake.mark()
    await fake.slash("mood", [{"name": "query", "type": STRING, "value": query}], guild=GUILD)
    deferred = await fake.wait_for("interaction_callback", after=mark)
    fake.delete_deferred(deferred.token)
    release.set()
    return deferred.token


def made_private(call: Call) -> bool:
    return bool(call.flags & EPHEMERAL and call.result["flags"] & EPHEMERAL)


def trouble_logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name.startswith("bot.") and (r.levelno >= logging.ERROR or r.exc_info)]


async def test_a_mood_whose_thinking_answer_was_deleted_comes_as_a_message_of_its_own(discord_bot, db, caplog):
    fake, _ = discord_bot
    await cache_video(db)
    token = await ask_with_thinking_deleted(fake, VIDEO)
    answer = await fake.wait_for("followup", lambda c: c.token == token and bool(c.embeds))
    assert "Never Gonna Give You Up" in answer.embeds[0]["title"] and not made_private(answer)
    assert not [c for c in fake.calls if c.content == render.GENERIC_ERROR]
    assert not trouble_logged(caplog)
    # The deleted message is tried once: no later stage, nor the answer, edits it again.
    assert len([c for c in fake.calls_of("edit_original") if c.token == token]) <= 1


async def test_a_refusal_whose_thinking_answer_was_deleted_is_still_told_to_the_asker_alone(discord_bot, caplog):
    fake, _ = discord_bot  # no Spotify set up: a Spotify link is refused
    token = await ask_with_thinking_deleted(fake, SPOTIFY_TRACK)
    refusal = await fake.wait_for("followup", lambda c: c.token == token)
    assert refusal.content == SPOTIFY_OFF_ERROR and made_private(refusal)
    assert not [c for c in fake.calls_of("followup") if c.token == token and c.status == 200 and not made_private(c)]
    assert not trouble_logged(caplog)
