"""Given a bot in so many servers that Discord requires sharding (2 500 or more: an IDENTIFY with
fewer shards is closed with 4011 "Sharding required"), it connects on as many shards as
`GET /gateway/bot` recommends, and commands in servers on each shard, and DMs (which Discord sends
on shard 0 only), are answered once."""
from __future__ import annotations

import asyncio
import logging

from bot.frontends.discord.mood import NOTHING_TO_CLASSIFY
from tests.fakes.discord_api import EPHEMERAL, SHARDING_REQUIRED, FakeDiscord
from tests.frontends.conftest import discord_on
from tests.frontends.test_discord_start_stop import logged

SHARDS = 2
# Discord sends a server's events on shard (server id >> 22) % shards.
GUILD_ON_SHARD = {0: 777000000000000001 - (1 << 22), 1: 777000000000000001}
START_S = 30  # a shard after the first waits discord.py's 5 s between IDENTIFYs


def sharding_discord(*, gateway: str | None = None) -> FakeDiscord:
    fake = FakeDiscord()
    fake.recommended_shards = fake.shards_required = SHARDS
    fake.recommended_gateway = gateway
    return fake


async def test_the_bot_connects_on_the_recommended_shards_and_answers_on_each(usecases):
    async with asyncio.timeout(START_S):
        async with discord_on(sharding_discord(), usecases) as (fake, frontend):
            assert sorted(identify["shard"] for identify in fake.identifies) == [[0, SHARDS], [1, SHARDS]]
            for shard, guild in GUILD_ON_SHARD.items():
                assert (guild >> 22) % SHARDS == shard
                await fake.slash("mood", guild=guild)  # no song named: the bot says how to ask
                refusal = await fake.wait_for("interaction_callback")
                assert refusal.content == NOTHING_TO_CLASSIFY and refusal.flags & EPHEMERAL
            await fake.user_dms("Creep")  # no prompt open: the bot says so, in the DM
            answer = await fake.wait_for("send_message")
            assert "prompt" in answer.content.lower()
            # Each event came on its one shard (the fake sends it on no other), and was answered once.
            assert len(fake.calls_of("interaction_callback")) == len(GUILD_ON_SHARD)
            assert len(fake.calls_of("send_message")) == 1


async def test_the_configured_gateway_is_used_whatever_discord_recommends(usecases):
    """DISCORD_GATEWAY_URL points the bot at its gateway (a proxy, a test fake) on every shard."""
    unreachable = "ws://127.0.0.1:9/"  # what GET /gateway/bot answers: nothing listens there
    async with asyncio.timeout(START_S):
        async with discord_on(sharding_discord(gateway=unreachable), usecases) as (fake, _):
            assert len(fake.identifies) == SHARDS


async def test_discord_requiring_more_shards_while_running_is_logged_once_saying_a_restart_takes_them(
        usecases, caplog):
    """The shard count is asked at start: a bot that joins servers past its shards' share is
    refused at its next IDENTIFY (4011), and discord.py stops. The log says what to do."""
    async with asyncio.timeout(START_S):
        async with discord_on(FakeDiscord(), usecases) as (fake, _):
            fake.shards_required = SHARDS
            await fake.close_gateway(SHARDING_REQUIRED, "Sharding required.")
            lost = await logged(caplog, "discord.gateway_lost")
    assert lost.levelno == logging.ERROR
    assert "4011" in lost.reason and "more shards" in lost.reason and "restart" in lost.reason
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == ["discord.gateway_lost"]
