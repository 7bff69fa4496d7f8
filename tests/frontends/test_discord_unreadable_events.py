"""Given a gateway event discord.py cannot read (a shape its version does not know: a channel's
fields it requires left out, an attachment of a kind it has never seen), the bot stays connected:
discord.py ends its session for good on any error of a parser, which stopped the bot for everyone,
its commands at work cut short. The event is logged, once, by its name and ids (never its words),
a user's command or DM is told something went wrong, and the next ones are answered."""
from __future__ import annotations

import logging

from bot.frontends import render
from tests.fakes.discord_api import EPHEMERAL, user_payload
from tests.frontends.test_discord import GUILD, MESSAGE
from tests.frontends.test_telegram_inbox import inbox_numbers, until

ALICE = 42
# A voice channel's text chat as no Discord discord.py knows sends it: its bitrate and the rest left out.
ODD_VOICE_CHANNEL = {"id": str(GUILD + 7), "type": 2, "guild_id": str(GUILD), "name": "Lounge"}


def unread(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "discord.event_not_read"]


async def still_answers(fake, frontend) -> None:
    """The session goes on: the next command is answered."""
    mark = fake.mark()
    await fake.slash("help", user=ALICE)
    assert (await fake.wait_for("interaction_callback", after=mark)).content
    assert not frontend.lost.is_set()


async def test_a_command_discord_py_cannot_read_is_apologised_for_and_the_bot_stays_connected(discord_bot, db, caplog):
    fake, frontend = discord_bot
    await fake.slash("help", guild=GUILD, user=ALICE, channel=ODD_VOICE_CHANNEL)
    told = await fake.wait_for("interaction_callback")
    assert told.json["type"] == MESSAGE and told.flags & EPHEMERAL and told.content == render.GENERIC_ERROR
    await still_answers(fake, frontend)
    [said] = unread(caplog)
    assert said.levelno == logging.ERROR and said.event == "INTERACTION_CREATE" and said.reason.startswith("KeyError")
    assert await until(lambda: _inbox_empty(db))  # not handed over again at the next start


async def test_a_dm_discord_py_cannot_read_is_apologised_for_and_the_bot_stays_connected(discord_bot, caplog):
    fake, frontend = discord_bot
    message = fake.message_payload(channel_id=fake.dm_channel_id(ALICE), content="Creep, on the bus",
                                   author=user_payload(ALICE),  # an attachment as no Discord discord.py knows sends
                                   attachments=[{"id": str(fake.snowflake())}])
    await fake.dispatch("MESSAGE_CREATE", message)
    told = await fake.wait_for("send_message")
    assert told.content == render.GENERIC_ERROR and told.match["channel"] == str(fake.dm_channel_id(ALICE))
    await still_answers(fake, frontend)
    [said] = unread(caplog)
    assert said.event == "MESSAGE_CREATE" and said.id == message["id"] and "Creep" not in said.reason


async def _inbox_empty(db) -> bool:
    return await inbox_numbers(db) == []
