"""A new user's first contact on each front-end: /start, /help, and /help listing exactly the
commands that front-end has, in words that fit it."""
from __future__ import annotations

import asyncio
import io
import logging

import pytest

from bot.frontends.console import ConsoleFrontend
from bot.frontends.telegram import COMMANDS as TELEGRAM_COMMANDS
from bot.frontends.telegram import command_menus
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN, telegram_on

GROUP, ALICE = -100777, 42


def command_names(help_reply) -> set[str]:
    """'journal on <HH:MM> <Area/City>' -> 'journal'."""
    return {usage.split()[0] for usage, _ in help_reply.commands}


async def test_a_new_telegram_user_s_start_gets_the_command_list(telegram):
    fake, _ = telegram
    await fake.user_sends("/start")
    first = await fake.wait_for("sendMessage")
    await fake.user_sends("/help")  # waits for the reply to this update only
    assert first.text == (await fake.wait_for("sendMessage")).text
    assert "/mood <song | Spotify link | YouTube link>" in first.text


async def test_telegram_help_lists_the_commands_telegram_has_and_speaks_of_groups(telegram, usecases):
    fake, _ = telegram
    assert command_names(usecases.help()) == {name for name, _ in TELEGRAM_COMMANDS}
    await fake.user_sends("/help", chat=GROUP, user=ALICE)
    text = (await fake.wait_for("sendMessage")).text
    for usage in ("/playlist <happy|energetic|sad|calm>", "/servermood", "/share on|off", "/serverplaylist on|off"):
        line = next(line for line in text.splitlines() if line.startswith(f"{usage} – "))
        # A Telegram group is no "server": "This server's (or group's) playlist" was said, where
        # Telegram's own '/' menu says "This group's playlist".
        said = line.split(" – ", 1)[1]
        assert "group" in said and "server" not in said, line


async def test_discord_help_lists_the_slash_commands_discord_has(discord_bot, usecases):
    fake, _ = discord_bot
    await fake.wait_for("sync_commands", after=0)
    assert command_names(usecases.help()) == {c["name"] for c in fake.commands if c["type"] == 1}
    await fake.slash("help")
    text = (await fake.wait_for("interaction_callback")).content
    assert "/playlist <happy|energetic|sad|calm> – This server's playlist for a mood" in text  # as its menu says
    assert "group" not in text.lower(), text


def test_console_help_lists_commands_the_console_runs(usecases):
    console = ConsoleFrontend(usecases, io.StringIO(), io.StringIO())
    for name in command_names(usecases.help()) - {"quit"}:
        assert callable(getattr(console, f"cmd_{name}", None)), name


@pytest.mark.parametrize("refusal, reason", [
    ({"status": 400, "description": "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID"}, "BadRequest: Bot_command"),
    # Telegram's flood control of setMyCommands (a bot restarted in a loop): no chat's answer waits for it.
    ({"status": 429, "retry_after": 30}, "RetryAfter: Flood control exceeded"),
    ({"status": 502, "description": "Bad Gateway"}, "NetworkError: Bad Gateway"),
])
async def test_a_command_menu_telegram_refuses_leaves_the_bot_answering_and_is_said_once(usecases, caplog, refusal,
                                                                                         reason):
    """The '/' menu is a convenience: Telegram keeps the one an earlier start set, and /start and
    /help answer without it. A refusal of setMyCommands stopped the start (the bot down on
    Telegram, a 429 after 90 s of waiting it out): one WARNING now, and the bot polls and answers."""
    fake = FakeTelegramBotAPI(TELEGRAM_TOKEN)
    fake.fail_next("setMyCommands", times=len(command_menus()) * 4, **refusal)
    with caplog.at_level(logging.WARNING):
        async with asyncio.timeout(10):
            async with telegram_on(fake, usecases):
                await fake.user_sends("/start")
                assert "/mood <song" in (await fake.wait_for("sendMessage")).text
    said = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.getMessage() for record in said] == ["telegram.menu_not_set"], said
    assert said[0].reason.startswith(reason) and said[0].scope == "default"  # the first, and the rest not tried
