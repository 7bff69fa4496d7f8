"""A chat token pasted with something around it (quotes a `docker run --env-file` keeps, the
'Bot ' of Discord's Authorization header, a space or line break copied with it) is said at start,
naming the setting and what is around it, never the token: it was "Telegram rejected the token"
or "Discord rejected the token", and the token looked right to whoever checked it."""
from __future__ import annotations

import subprocess
import sys

import pytest

from bot.config import Settings
from tests.bot.test_console import console_env

SECRET = "SENTINEL-shape"


@pytest.mark.parametrize("setting, value, says", [
    ("TELEGRAM_TOKEN", f'"123456:{SECRET}"', "TELEGRAM_TOKEN: the token is in quotes, which are "
                                             "taken as part of it: remove them"),
    ("TELEGRAM_TOKEN", f"'123456:{SECRET}'", "TELEGRAM_TOKEN: the token is in quotes"),
    ("TELEGRAM_TOKEN", f"bot123456:{SECRET}", "TELEGRAM_TOKEN: not a Telegram bot token as @BotFather "
                                              "gives it: digits, a colon, then letters, digits, - and _ "
                                              "(123456789:AAF…), with nothing before or after it"),
    ("TELEGRAM_TOKEN", f"123456 {SECRET}", "TELEGRAM_TOKEN: not a Telegram bot token"),
    ("DISCORD_TOKEN", f"Bot MTIz.{SECRET}.abc", "DISCORD_TOKEN: the token alone, without 'Bot ' in "
                                                "front: moodbot adds it"),
    ("DISCORD_TOKEN", f'"MTIz.{SECRET}.abc"', "DISCORD_TOKEN: the token is in quotes"),
    ("DISCORD_TOKEN", f"MTIz.{SECRET} abc", "DISCORD_TOKEN: not a Discord bot token as the Developer "
                                            "Portal's Bot page gives it: letters, digits, '.', - and _, with "
                                            "nothing before or after it"),
])
def test_a_token_with_something_around_it_stops_the_start_naming_the_setting_not_the_token(tmp_path, setting,
                                                                                           value, says):
    env = console_env(tmp_path / "data")
    env[setting] = value
    result = subprocess.run([sys.executable, "-m", "bot"], input="/quit\n", capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"moodbot could not start: {says}"), result.stderr
    assert len(result.stderr.splitlines()) == 1 and SECRET not in result.stderr + result.stdout


@pytest.mark.parametrize("field, value, read", [
    ("telegram_token", " 123456:TEST-token\n", "123456:TEST-token"),
    ("discord_token", "discord-test-token \r\n", "discord-test-token"),
])
def test_spaces_and_line_breaks_around_a_token_are_left_out(field, value, read):
    """discord.py strips its token; python-telegram-bot sent a leading space to Telegram, which refused it."""
    assert getattr(Settings(_env_file=None, **{field: value}), field).get_secret_value() == read
