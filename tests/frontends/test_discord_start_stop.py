"""Given the Discord front-end fails to start (a wrong token, an intent the Developer Portal has not
switched on), start() says why once, and the app's shutdown that follows, stop(), is quiet however
often it comes."""
from __future__ import annotations

import asyncio
import logging

import discord
import pytest

from bot.config import Settings
from bot.frontends.discord import DiscordFrontend
from tests.fakes.discord_api import FakeDiscord
from tests.frontends.test_discord_guild_removed import hanging_search, in_servers  # noqa: F401 (fixtures)
from tests.frontends.test_discord_members import GUILD, STRING
from tests.frontends.test_request_ids import lines_of
from tests.inference.test_pool import eventually

GUILD_MEMBERS = 1 << 1  # the privileged intent behind the Developer Portal's Server Members Intent switch


def frontend_for(fake: FakeDiscord, usecases, *, token: str = "discord-test-token",
                 members: bool = False) -> DiscordFrontend:
    settings = Settings(_env_file=None, discord_token=token, discord_api_url=fake.api_url,
                        discord_gateway_url=fake.gateway_url, discord_members_intent=members)
    return DiscordFrontend(settings, usecases, guild_ready_timeout=0.05)


async def test_a_start_refused_for_a_wrong_token_says_so_once_and_stop_is_quiet(usecases):
    fake = await FakeDiscord(token="the-real-token").start()
    try:
        frontend = frontend_for(fake, usecases, token="a-wrong-token")
        with pytest.raises(discord.LoginFailure):
            await asyncio.wait_for(frontend.start(), timeout=10)
        assert [c.status for c in fake.calls] == [401]
        await asyncio.wait_for(frontend.stop(), timeout=5)
        await asyncio.wait_for(frontend.stop(), timeout=5)
        assert frontend.bot.is_closed()
    finally:
        await fake.stop()


async def test_a_start_the_gateway_refuses_says_why_once_and_stop_is_quiet(usecases, caplog):
    fake = await FakeDiscord().start()  # the members intent is off in the Developer Portal
    try:
        frontend = frontend_for(fake, usecases, members=True)
        with pytest.raises(discord.PrivilegedIntentsRequired):
            await asyncio.wait_for(frontend.start(), timeout=10)
        await asyncio.wait_for(frontend.stop(), timeout=5)
        await asyncio.wait_for(frontend.stop(), timeout=5)
        assert frontend.bot.is_closed()
    finally:
        await fake.stop()
    # start() raised it; nothing reported it a second time.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_stop_after_a_good_start_is_quiet_when_called_twice(usecases, caplog):
    fake = await FakeDiscord().start()
    try:
        frontend = frontend_for(fake, usecases)
        await asyncio.wait_for(frontend.start(), timeout=10)
        await asyncio.wait_for(frontend.stop(), timeout=5)
        await asyncio.wait_for(frontend.stop(), timeout=5)
        assert frontend.bot.is_closed()
    finally:
        await fake.stop()
    # The connection ending at stop() is not taken for one Discord ended (discord.gateway_lost).
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def logged(caplog, message: str, timeout: float = 5.0) -> logging.LogRecord:
    """The first record of `message`, once logged (a gateway event has no REST call to wait for)."""
    for _ in range(int(timeout / 0.05)):
        if found := [r for r in caplog.records if r.getMessage() == message]:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{message} was not logged in time")


async def test_a_session_discord_ends_for_good_after_the_start_is_logged_once_naming_the_setting(usecases, caplog):
    """Discord ends the session of a bot whose token was reset (4004): discord.py stops
    reconnecting, and the bot is offline on Discord while the app (its heartbeat, Telegram) lives
    on. The log says so when it happens, naming what to check; the shutdown after adds nothing."""
    fake = await FakeDiscord().start()
    try:
        frontend = frontend_for(fake, usecases)
        await asyncio.wait_for(frontend.start(), timeout=10)
        await fake.close_gateway(4004, "Authentication failed.")
        lost = await logged(caplog, "discord.gateway_lost")
        await asyncio.wait_for(frontend.stop(), timeout=5)
        await asyncio.wait_for(frontend.stop(), timeout=5)
    finally:
        await fake.stop()
    assert lost.levelno == logging.ERROR
    assert "offline on Discord" in lost.reason and "4004" in lost.reason and "DISCORD_TOKEN" in lost.reason
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == ["discord.gateway_lost"]


async def test_the_members_intent_switched_off_in_the_portal_while_running_is_logged_once_at_the_next_identify(
        usecases, caplog):
    """With DISCORD_MEMBERS_INTENT, the portal's switch turned off while the bot runs bites when
    Discord next makes it identify (a dropped session): 4014, and discord.py stops. The log says so
    then, naming both places to fix it; the shutdown after neither raises nor repeats it."""
    fake = await FakeDiscord().start()
    fake.privileged_intents = GUILD_MEMBERS
    try:
        frontend = frontend_for(fake, usecases, members=True)
        await asyncio.wait_for(frontend.start(), timeout=10)
        fake.privileged_intents = 0  # switched off in the Developer Portal
        fake.resumable = False  # and Discord drops the session: the bot must identify again
        await fake.close_gateway(4000, "Unknown error.")
        # discord.py waits 5 s before identifying again (Discord's identify rate limit)
        lost = await logged(caplog, "discord.gateway_lost", timeout=20)
        await asyncio.wait_for(frontend.stop(), timeout=5)
        await asyncio.wait_for(frontend.stop(), timeout=5)
    finally:
        await fake.stop()
    assert "offline on Discord" in lost.reason and "4014" in lost.reason
    assert "Server Members Intent" in lost.reason and "DISCORD_MEMBERS_INTENT" in lost.reason
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == ["discord.gateway_lost"]


async def test_a_start_whose_gateway_cannot_be_reached_stops_at_once_when_cut_short(usecases):
    """The operator's SIGTERM or Ctrl-C during a start whose gateway does not connect (discord.py
    tries again every 5 s): the start and the stop after it end now, not never."""
    fake = await FakeDiscord().start()
    try:
        settings = Settings(_env_file=None, discord_token="discord-test-token", discord_api_url=fake.api_url,
                            discord_gateway_url="ws://127.0.0.1:9/")  # nothing listens there
        frontend = DiscordFrontend(settings, usecases, guild_ready_timeout=0.05)
        starting = asyncio.create_task(frontend.start())
        await fake.wait_for("gateway")  # GET /gateway/bot: the shards are being launched
        starting.cancel()  # as the app cuts a start short
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(starting, timeout=5)
        await asyncio.wait_for(frontend.stop(), timeout=5)
        assert frontend.bot.is_closed()
    finally:
        await fake.stop()


async def test_a_user_the_stop_could_not_tell_is_named_by_their_request(in_servers, hanging_search, log_stream):
    """A /mood still at work at the stop is cut short and its user told to send it again; where
    Discord refused that, the line said only the error's type, in the stop's own task: no req=,
    so nothing tied it to the user left without an answer. It now carries the request's req=."""
    fake, frontend = in_servers
    asked = await fake.slash("mood", [{"name": "query", "type": STRING, "value": "never found"}], guild=GUILD)
    assert await eventually(lambda: hanging_search.requests)  # searched on a host that does not answer
    fake.fail_next("edit_original", 5, status=404, code=10015, message="Unknown Webhook")  # its token gone
    assert await frontend.bot.finish(grace_s=0.1) == 1
    (told,) = lines_of(log_stream, "discord.cut_short_not_told")
    assert told["req"] == f"dc-{asked['id']}", str(told)
