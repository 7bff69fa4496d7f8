"""Progress edits on Discord are best-effort: a "Finding the song…" Discord rate-limits holds up
neither the work nor the answer, and the answer is always the last thing the deferred reply (or,
in a DM, the status message) shows."""
from __future__ import annotations

import asyncio
import gc
import logging
import time
from datetime import datetime, timezone

import pytest
from aiohttp import web

from bot.replies import STAGE_FINDING
from storage.models import StoredMood, TrackRecord, UserRef
from tests.fakes.discord_api import FakeDiscord, json_response
from tests.frontends.conftest import discord_on

GUILD = 777000000000000001
ALICE = 42
SUB_COMMAND, STRING = 1, 3
VIDEO = "https://youtu.be/dQw4w9WgXcQ"
RETRY_AFTER_S = 6.0  # Discord's word on a progress edit: try again in 6 s
PROMPTLY_S = RETRY_AFTER_S / 2  # an answer from the cache, with room for a loaded machine
HELD_S = 0.3  # how long the fake keeps a progress edit unanswered


async def cache_video(db) -> None:
    """VIDEO's mood in the cache: these tests have no classifier, and a cached song needs none."""
    await db.tracks.save(TrackRecord(
        key="youtube:dQw4w9WgXcQ", title="Never Gonna Give You Up", artists=["Rick Astley"],
        youtube_id="dQw4w9WgXcQ", classified_at=datetime.now(timezone.utc),
        mood=StoredMood("happy", {"happy": 0.7, "energetic": 0.1, "sad": 0.1, "calm": 0.1}, 0.6, 0.3, "main", "v")))


async def ask_for_the_video(fake) -> None:
    await fake.slash("mood", [{"name": "query", "type": STRING, "value": VIDEO}], guild=GUILD)


async def open_a_prompt(fake) -> None:
    """Opt in, and have today's prompt sent by DM now: the DM's next message answers it."""
    for command, options in (("on", [{"name": "time", "type": STRING, "value": "21:30"},
                                     {"name": "timezone", "type": STRING, "value": "Europe/Lisbon"}]),
                             ("prompt", [])):
        await fake.slash("journal", [{"name": command, "type": SUB_COMMAND, "options": options}])
        await fake.wait_for("edit_original")


def left_behind(caplog) -> list[str]:
    """What asyncio says of tasks left pending, or of exceptions nobody retrieved, and what the
    front-end logged as failing."""
    return [r.getMessage() for r in caplog.records
            if (r.name == "asyncio" and r.levelno >= logging.ERROR)
            or (r.name.startswith("bot.") and r.levelno >= logging.WARNING)]


async def test_a_rate_limited_progress_edit_does_not_hold_up_the_answer(discord_bot, db, caplog):
    """discord.py sleeps through a 429's Retry-After before it returns: the answer does not wait
    for "Finding the song…" to be shown 6 s later, and that stage is dropped, not shown after it."""
    fake, frontend = discord_bot
    await cache_video(db)
    fake.fail_next("edit_original", times=1, retry_after=RETRY_AFTER_S)

    await ask_for_the_video(fake)

    answer = await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    refused, = [c for c in fake.calls_of("edit_original") if c.status == 429]
    assert refused.content == STAGE_FINDING
    assert answer.at - refused.at < PROMPTLY_S
    assert "Never Gonna Give You Up" in answer.embeds[0]["title"]
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "discord-progress"]  # the stage gave up
    await frontend.stop()
    gc.collect()
    assert left_behind(caplog) == []
    assert fake.calls_of("edit_original")[-1] is answer


async def test_a_progress_edit_in_flight_is_made_before_the_answer(discord_bot, db):
    """An edit Discord has received is let through, not cut off: cut off, Discord could still make
    it after the answer's edit, and the reply would read "Finding the song…" in place of the mood."""
    fake, _ = discord_bot
    await cache_video(db)
    release = fake.hold_next("edit_original")

    await ask_for_the_video(fake)
    stage = await fake.wait_for("edit_original")
    await asyncio.sleep(HELD_S)  # the answer is ready meanwhile (from the cache)
    released_at = time.monotonic()
    release.set()

    answer = await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    assert stage.content == STAGE_FINDING and answer.at >= released_at


async def test_a_rate_limited_status_message_does_not_hold_up_a_journal_answer(scheduled, db, caplog):
    """In a DM the stages are a status message of their own: Discord's 429 on sending it does not
    keep the song from being saved and the answer from coming, as a message of its own."""
    fake, frontend = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    fake.fail_next("send_message", times=1, retry_after=RETRY_AFTER_S)

    await fake.user_dms(VIDEO)

    saved = await fake.wait_for("send_message", lambda c: bool(c.embeds))
    refused, = [c for c in fake.calls_of("send_message") if c.status == 429]
    assert refused.content == STAGE_FINDING
    assert saved.at - refused.at < PROMPTLY_S
    assert saved.embeds[0]["description"].startswith("Saved to your journal")
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 1
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "discord-progress"]
    await frontend.stop()
    gc.collect()
    assert left_behind(caplog) == []
    assert fake.calls_of("send_message")[-1] is saved


class FaultyStageDiscord(FakeDiscord):
    """Answers the first edit_original (the "Finding the song…" stage) as `fault` says: "garbled",
    a message without its fields, which discord.py fails to read with a KeyError (the kind of error
    no outage or refusal raises: a bug, here or in a library); "dropped", nothing, the connection
    closed (a network failure)."""

    fault: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.faulted = asyncio.Event()

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        name, _ = self._route(request.method, "/" + request.match_info["path"])
        if name != "edit_original" or self.fault is None:
            return await super()._rest(request)
        fault, self.fault = self.fault, None
        self.faulted.set()
        if fault == "dropped":
            request.transport.close()
        return json_response({"id": str(self.snowflake())})


@pytest.fixture
async def faulty_stage(usecases):
    async with discord_on(FaultyStageDiscord(), usecases) as both:
        yield both


def not_shown(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "discord.progress_not_shown"]


async def a_faulty_stage_then_the_answer(fake: FaultyStageDiscord, db, fault: str) -> None:
    await cache_video(db)
    fake.fault = fault
    await ask_for_the_video(fake)
    answer = await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    assert fake.faulted.is_set()  # the stage was sent, and met the fault
    assert "Never Gonna Give You Up" in answer.embeds[0]["title"]  # the answer still came


@pytest.mark.parametrize("fault, reason, traceback", [
    ("garbled", "KeyError", True),  # a bug reading Discord's answer: its traceback is wanted
    ("dropped", "Disconnected", False),  # the network: one line is enough
], ids=["a bug, with its traceback", "the network, one line"])
async def test_a_stage_that_cannot_be_shown_is_logged_with_a_traceback_only_for_a_bug(
        faulty_stage, db, caplog, fault, reason, traceback):
    fake, _ = faulty_stage
    caplog.set_level(logging.WARNING, logger="bot.frontends.discord")

    await a_faulty_stage_then_the_answer(fake, db, fault)

    record, = not_shown(caplog)
    assert reason in record.reason
    assert bool(record.exc_info or record.exc_text) is traceback
