"""Given a daily prompt's DM whose send failed, the bot tells a DM that may have arrived (the
request went out: timed out, or cut off on its way back) from one that never left (no connection
was made): the first stays the day's prompt, answered in the DM and not sent again; the second is
tried again later that day."""
from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from discord.http import Route

from bot.replies import PromptMessage
from bot.scheduler import PromptScheduler
from storage.models import UserRef
from tests.frontends.test_discord import ALICE, VIDEO, cache_video, private_answer, sub

ALICE_REF = UserRef("discord", str(ALICE))


async def scheduler_for(fake, frontend, db, usecases) -> PromptScheduler:
    """A prompt scheduler sending through `frontend`, and Alice's journal turned on."""
    scheduler = PromptScheduler(db, usecases.journal, pause_s=0)
    usecases.attach_schedule(scheduler)
    scheduler.register(frontend)
    await fake.slash("journal", sub("on", time="21:30", timezone="Europe/Lisbon"))
    await private_answer(fake)
    return scheduler


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("failure", ["timed out", "cut off"])
async def test_a_prompt_dm_that_may_have_arrived_is_not_sent_twice_and_a_dm_answers_it(
        discord_bot, db, usecases, failure):
    fake, frontend = discord_bot
    scheduler = await scheduler_for(fake, frontend, db, usecases)
    release = None
    if failure == "timed out":  # Discord made the DM, its answer comes after the bot stopped waiting
        frontend.prompt_timeout_s = 0.2
        release = fake.hold_next("send_message")
    else:  # the connection is lost once Discord has read the request
        fake.drop_next("send_message")
    mark = fake.mark()
    try:
        async with asyncio.timeout(10):  # the bot stops waiting for Discord's answer long before
            prompt_id = await scheduler.deliver(ALICE_REF)
        assert prompt_id is not None and scheduler.retry_at(ALICE_REF) is None
        assert await scheduler.deliver(ALICE_REF) is None  # the day's prompt is out: no second one
        assert len(fake.calls_of("send_message", after=mark)) == 1
    finally:
        if release is not None:
            release.set()

    # Its message id never came back: an answer in the DM goes to the latest open prompt, this one.
    await cache_video(db)
    mark = fake.mark()
    await fake.user_dms(f"{VIDEO} on the bus")
    saved = await fake.wait_for("edit_message", lambda c: bool(c.embeds), after=mark)  # "Finding the song…", then
    assert saved.embeds[0]["description"].startswith("Saved to your journal")
    entry, = await db.journal.list(ALICE_REF)
    assert entry.prompt_id == prompt_id


async def test_a_prompt_dm_that_never_left_is_tried_again(discord_bot):
    fake, frontend = discord_bot
    prompt = PromptMessage("discord", str(ALICE), str(ALICE), "p1", "At lunch…")
    await frontend.send_prompt(prompt)  # the DM channel is known from now on: no request to open it
    api = Route.BASE
    Route.BASE = f"http://127.0.0.1:{unused_port()}/api/v10"  # nothing listens: no connection is made
    try:
        with pytest.raises(aiohttp.ClientConnectorError):
            await frontend.send_prompt(prompt)
    finally:
        Route.BASE = api
