"""A new user's first contact on each front-end: /start, /help, and /help listing exactly the
commands that front-end has, in words that fit it."""
from __future__ import annotations

import asyncio
import io
import logging
import re

import pytest

from bot.frontends.console import ConsoleFrontend
from bot.frontends.telegram import COMMANDS as TELEGRAM_COMMANDS
from bot.frontends.telegram import command_menus
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.test_discord import INTEGER, STRING, SUB_COMMAND, add_ten_days, private_answer, sub
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


# A command of the help's text with the words after it, to the end of its clause ('/journal list December').
EXAMPLE = re.compile(r"/(?P<command>[a-z]+)(?P<words>(?: [^\s;,()]+)*)")


def filled_by_discord(commands: list[dict], example: re.Match) -> tuple[dict, str] | None:
    """The option of a registered command (or sub-command) that Discord's client fills with the words
    typed after its name, and those words: the option a 'name:' before them names, else its first
    one ('/journal on 21:30 Europe/Lisbon' goes whole into /journal on's time). None: no words."""
    command = next(c for c in commands if c["type"] == 1 and c["name"] == example["command"])
    words = example["words"].split()
    options = command.get("options") or []
    sub = next((o for o in options if o["type"] == 1 and words and o["name"] == words[0]), None)
    if sub is not None:
        options, words = sub.get("options") or [], words[1:]
    if not words:
        return None
    name, marked, value = " ".join(words).partition(":")
    named = next((o for o in options if marked and o["name"] == name), None)
    return (named, value.strip()) if named is not None else (options[0], " ".join(words))


async def test_every_example_discord_s_help_gives_is_one_discord_takes(discord_bot, usecases):
    """Typed as /help writes it, each command's words go in the option Discord fills with them, which
    must take them: '/journal list December', as the other front-ends read it, put 'December' in
    /journal list's page, a whole number, and Discord refused it ('Input must be an integer')."""
    fake, _ = discord_bot
    await fake.wait_for("sync_commands", after=0)
    await fake.slash("help")
    text = (await fake.wait_for("interaction_callback")).content
    said = [line.split(" – ", 1)[1] for line in text.splitlines() if " – " in line]  # usage – what it does
    assert {example["command"] for example in discord_takes(fake.commands, "\n".join(said))} >= {"journal"}


def discord_takes(commands: list[dict], text: str) -> list[re.Match]:
    """The examples of commands in `text`, each asserted to be one Discord takes as typed: the option
    its words go in (`filled_by_discord`) takes them."""
    examples = list(EXAMPLE.finditer(text))
    for example in examples:
        filled = filled_by_discord(commands, example)
        if filled is not None:
            option, value = filled
            assert option["type"] == STRING or (option["type"] == INTEGER and value.isdigit()), (example[0], option)
    return examples


@pytest.mark.parametrize("options", [
    sub("list", date="Decembr"),  # "… /journal list 2026-12-05, /journal list December."
    [{"name": "list", "type": SUB_COMMAND, "options": [{"name": "page", "type": INTEGER, "value": 2025}]}],
    sub("list", date="December 2026"),  # after its newest: "the nearest before it is dated … (/journal list …)"
])
async def test_a_journal_reply_names_a_day_to_list_as_discord_takes_it(discord_bot, db, options):
    """The journal's replies name a day or a month to list ('/journal list 2026-11-10', '… December
    2025'), as Telegram and the console take them: typed so on Discord, the words went in page, a
    whole number, and were refused. On Discord they name its date option ('date:2026-11-10')."""
    fake, _ = discord_bot
    await fake.wait_for("sync_commands", after=0)
    await add_ten_days(db, title=lambda day: f"Song {day}", note=lambda day: "")
    await fake.slash("journal", options, user=ALICE)
    said = (await private_answer(fake)).content
    assert "/journal list" in said and discord_takes(fake.commands, said), said


async def test_every_command_telegram_answers_is_one_a_mistyped_command_may_mean(telegram):
    """The names a mistyped or slashless command was matched against were the menu's and /start, a
    list of their own: '/setings' was "I don't know that command" though the bot answers /settings
    (Telegram's profile menu sends it). They are the names the bot has a handler for."""
    fake, frontend = telegram
    answered = sorted(frontend._commands)
    assert {name for name, _ in TELEGRAM_COMMANDS} | {"start", "settings"} <= set(answered)
    for name in answered:
        for typed, meant in ((f"/{name}{name[-1]}", f"Did you mean /{name}?"),
                             (f"{name} now", f"Commands start with a slash: did you mean /{name} now?")):
            mark = fake.mark()
            await fake.user_sends(typed)
            said = (await fake.wait_for("sendMessage", after=mark)).text
            assert meant in said, (typed, said)
