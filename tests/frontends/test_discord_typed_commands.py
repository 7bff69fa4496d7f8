"""A command sent to the bot's DM as text (pasted from /help's example, or typed without picking it
from Discord's list): Discord runs none, so the bot says how to run it, and never takes it for a
song answering the journal prompt."""
from __future__ import annotations

import asyncio

import pytest

from bot.frontends.discord.journal import UNKNOWN_COMMAND, typed_command_hint
from storage.models import UserRef
from tests.frontends.test_request_ids import lines_of
from tests.inference.test_pool import eventually

ALICE = 42


@pytest.mark.parametrize("typed, name", [("/journal on 21:30 Europe/Lisbon", "journal on"), ("/Mood Creep", "mood"),
                                         ("/stats", "stats")])
async def test_a_command_of_the_bot_sent_as_text_is_said_how_to_run_not_unknown(scheduled, db, typed, name):
    fake, _ = scheduled
    await fake.wait_for("sync_commands", after=0)
    mark = fake.mark()
    await fake.user_dms(typed)
    hint = (await fake.wait_for("send_message", after=mark)).content
    assert hint == typed_command_hint(name) and hint != UNKNOWN_COMMAND
    assert f"/{name}" in hint and "pick it" in hint
    await asyncio.sleep(0.2)
    assert len(fake.calls_of("send_message", after=mark)) == 1  # no "Finding the song…" after it
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 0


async def test_a_server_only_command_sent_as_text_in_the_dm_is_said_to_work_in_a_server(scheduled):
    # Discord never offers /serverplaylist in a DM: "pick it when Discord offers it" would never come true.
    fake, _ = scheduled
    await fake.wait_for("sync_commands", after=0)
    mark = fake.mark()
    await fake.user_dms("/serverplaylist off")
    hint = (await fake.wait_for("send_message", after=mark)).content
    assert hint == typed_command_hint("serverplaylist", in_servers_only=True)
    assert "/serverplaylist" in hint and "server" in hint.replace("/serverplaylist", "")


async def test_a_command_the_bot_does_not_have_is_still_unknown(scheduled):
    fake, _ = scheduled
    mark = fake.mark()
    await fake.user_dms("/start")
    assert (await fake.wait_for("send_message", after=mark)).content == UNKNOWN_COMMAND


async def test_a_hint_to_a_user_who_blocked_the_bot_meanwhile_is_one_info_line_with_its_request(scheduled, log_stream):
    """The user typed '/mood Creep' in the DM, then blocked the bot or closed their DMs: Discord
    refuses the hint (403 50007). That ended in discord.py's "Ignoring exception in on_message"
    ERROR with a traceback; it is one INFO line, `discord.dm_refused`, with the DM's req=, as a
    refused answer to a song is."""
    fake, _ = scheduled
    await fake.wait_for("sync_commands", after=0)
    mark = fake.mark()
    fake.fail_next("send_message", times=1, status=403, code=50007, message="Cannot send messages to this user")
    typed = await fake.user_dms("/mood Creep")
    assert await eventually(lambda: "discord.dm_refused" in log_stream.getvalue()  # logged, as a failure or not
                            or "level=ERROR" in log_stream.getvalue(), within_s=10)
    (refused,) = fake.calls_of("send_message", after=mark)
    assert refused.status == 403 and refused.content == typed_command_hint("mood")
    assert "level=ERROR" not in log_stream.getvalue() and "Traceback" not in log_stream.getvalue()
    (line,) = lines_of(log_stream, "discord.dm_refused")
    assert line["level"] == "INFO" and line["req"] == f"dc-{typed['id']}", str(line)
