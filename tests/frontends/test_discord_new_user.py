"""A new user's walk through the Discord commands, typed the way people get them wrong: each reply
says what was understood and what to type next, as the console and Telegram say it."""
from __future__ import annotations

import pytest

from bot.frontends.discord.journal import typed_command_hint
from bot.usecases.help import did_you_mean
from tests.frontends.test_discord import private_answer, sub


@pytest.mark.parametrize("typed, answer", [
    ("21:30 Europe/Lisbon", "Journal on: every day at 21:30 (Europe/Lisbon)"),
    ("07:05 America/New York", "Journal on: every day at 07:05 (America/New_York)"),
    ("9pm Europe/Lisbon", "I need the time as HH:MM on a 24-hour clock: 9pm is 21:00: /journal on 21:00 Europe/Lisbon."),
])
async def test_journal_on_with_the_zone_typed_in_the_time_option_reads_both(discord_bot, typed, answer):
    """Discord puts what follows '/journal on ' in its first option, spaces and all: the command the
    bot's own replies give ('/journal on 21:30 Europe/Lisbon'), typed as is, left the zone in the
    time and was answered with the usage, as if nothing had been typed. Read as the console reads
    the same words: the time, then the zone."""
    fake, _ = discord_bot
    await fake.slash("journal", sub("on", time=typed))
    assert (await private_answer(fake)).content.startswith(answer)


@pytest.mark.parametrize("typed, meant", [("/moood Creep", "mood"), ("/journl on 21:30", "journal"),
                                          ("/Stat", "stats"), ("/playlists calm", "playlist")])
async def test_a_mistyped_command_sent_in_the_dm_is_told_the_command_meant(scheduled, typed, meant):
    """'/moood' sent in the DM was 'I don't know that command' alone, where the console and Telegram
    name the command most likely meant: it now does too, with how Discord runs it (picked from its
    list, in a server for a server's command)."""
    fake, _ = scheduled
    await fake.wait_for("sync_commands", after=0)
    mark = fake.mark()
    await fake.user_dms(typed)
    answer = (await fake.wait_for("send_message", after=mark)).content
    name = typed.split()[0][1:]
    assert answer == did_you_mean(name, [meant]) + " " + typed_command_hint(meant, in_servers_only=meant == "playlist")
