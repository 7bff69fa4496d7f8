"""Given a daily prompt's DM whose send failed, the bot tells a DM that may have arrived (the
request went out: timed out, or cut off on its way back) from one that never left (no connection
was made): the first stays the day's prompt, answered in the DM and not sent again; the second is
tried again later that day."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from discord.http import Route

import bot.frontends.discord as discord_frontend
from bot.frontends.discord import missed, rendering
from bot.replies import PromptMessage
from bot.scheduler import PromptScheduler
from bot.usecases.ports import DeliveryFailed
from storage.models import SentPrompt, User, UserRef
from tests.frontends.test_discord import ALICE, VIDEO, cache_video, private_answer, sub
from tests.frontends.test_telegram_inbox import until

ALICE_REF = UserRef("discord", str(ALICE))


def sending_through(frontend, db, usecases, **pacing) -> PromptScheduler:
    """A prompt scheduler sending through `frontend`, the journal's."""
    scheduler = PromptScheduler(db, usecases.journal, **pacing)
    usecases.attach_schedule(scheduler)
    scheduler.register(frontend)
    return scheduler


async def scheduler_for(fake, frontend, db, usecases, at: str = "21:30") -> PromptScheduler:
    """A prompt scheduler sending through `frontend`, and Alice's journal turned on, her prompts
    `at` in Lisbon."""
    scheduler = sending_through(frontend, db, usecases, pause_s=0)
    await fake.slash("journal", sub("on", time=at, timezone="Europe/Lisbon"))
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
        with pytest.raises(DeliveryFailed, match="ClientConnectorError") as failed:
            await frontend.send_prompt(prompt)
        assert isinstance(failed.value.__cause__, aiohttp.ClientConnectorError)
    finally:
        Route.BASE = api


async def test_a_prompt_dm_rate_limited_past_the_wait_never_left_and_is_tried_again(discord_bot, db, usecases):
    """Discord answered the DM 429 with a Retry-After longer than the bot waits for a prompt to go
    (discord.py sleeps it out, then sends again): Discord made nothing, so the prompt is tried again
    later that day, not taken for one that may have arrived, which the user never got."""
    fake, frontend = discord_bot
    scheduler = await scheduler_for(fake, frontend, db, usecases)
    frontend.prompt_timeout_s = 0.3
    fake.fail_next("send_message", times=1, retry_after=2.0)
    mark = fake.mark()
    assert await scheduler.deliver(ALICE_REF) is None
    assert [call.status for call in fake.calls_of("send_message", after=mark)] == [429]
    assert await scheduler.deliver(ALICE_REF) is not None  # not the day's prompt yet: it is sent
    assert [call.status for call in fake.calls_of("send_message", after=mark)] == [429, 200]


async def test_a_prompt_dm_discord_failed_with_a_5xx_is_a_warning_in_its_words_and_tried_again(
        discord_bot, db, usecases, caplog):
    """A 5xx discord.py gave up on was logged 'scheduler.send_failed' at ERROR with its traceback,
    as a bug is; it is Discord's outage: one WARNING line, Discord's words in it, and the retry."""
    fake, frontend = discord_bot
    scheduler = await scheduler_for(fake, frontend, db, usecases)
    fake.fail_next("send_message", times=1, status=503, code=0, message="upstream connect error")
    assert await scheduler.deliver(ALICE_REF) is None
    (failed,) = [r for r in caplog.records if r.getMessage() == "scheduler.send_failed"]
    assert failed.levelname == "WARNING" and failed.exc_info is None
    assert "503" in failed.reason and "upstream connect error" in failed.reason
    retry = scheduler.retry_at(ALICE_REF)
    assert failed.retry_at == (retry.strftime("%Y-%m-%dT%H:%M:%SZ") if retry else "none")


def ten_minutes_ago() -> str:
    """A prompt time in Lisbon whose prompt, due ten minutes ago, is still its day's at a restart
    now (the day's, or yesterday's within the catch-up's grace)."""
    return f"{datetime.now(ZoneInfo('Europe/Lisbon')) - timedelta(minutes=10):%H:%M}"


async def killed_while_sending(fake, scheduler: PromptScheduler, call: str) -> SentPrompt:
    """The bot killed outright while the day's prompt was on its way, once Discord got its `call`
    (`create_dm`: the DM not sent yet; `send_message`: the DM made, its answer not back): nothing
    after it ran, the prompt's record stays as the kill left it."""
    release = fake.hold_next(call)
    mark = fake.mark()
    delivering = asyncio.create_task(scheduler.deliver(ALICE_REF))
    try:
        await fake.wait_for(call, after=mark)
    finally:
        delivering.cancel()  # killed: no withdrawal, no note of the message
        release.set()
    with contextlib.suppress(asyncio.CancelledError):
        await delivering
    sent, = await open_prompts(scheduler)
    assert sent.sending and sent.message_id is None
    return sent


async def open_prompts(scheduler: PromptScheduler) -> list[SentPrompt]:
    return await scheduler.db.prompts.open_since(datetime.now(timezone.utc) - timedelta(days=1), 10)


@pytest.mark.parametrize("killed_after, resent", [("create_dm", True), ("send_message", False)])
async def test_a_prompt_dm_cut_short_by_a_kill_is_sent_at_the_restart_unless_discord_shows_it(
        discord_bot, restart, db, usecases, killed_after, resent):
    """The prompt was recorded, then the bot killed before the DM left, or after Discord made it and
    before its id was noted: the restart's catch-up took the recorded day for done, and that day
    had no prompt. Now the DM's history is read back: a DM not there is sent, with the prompt's
    phrase; one there is noted (its id), and not sent a second time."""
    fake, frontend = discord_bot
    scheduler = await scheduler_for(fake, frontend, db, usecases, at=ten_minutes_ago())
    killed = await killed_while_sending(fake, scheduler, killed_after)
    made = len(fake.calls_of("send_message"))
    assert await resent_at_restart(fake, restart, db, usecases, killed) == int(resent)
    assert made + int(resent) == 1


async def resent_at_restart(fake, restart, db, usecases, killed: SentPrompt) -> int:
    """How many prompts a restart's scheduler sent at its start; after it the day's prompt
    `killed` is on Alice's screen once (one DM showing it), noted as that DM, sent."""
    restarted = PromptScheduler(db, usecases.journal, pause_s=0)
    restarted.register(await restart())
    try:
        resent = await restarted.start()
    finally:
        await restarted.stop()
    shown = [c for c in fake.calls_of("send_message") if c.content == rendering.prompt_text(killed.phrase)]
    assert len(shown) == 1  # the day's prompt on Alice's screen, once
    sent, = await open_prompts(restarted)
    assert (sent.prompt_id, sent.sending, sent.message_id) == (killed.prompt_id, False, str(shown[0].result["id"]))
    return resent


def chatted(fake, times: int) -> None:
    """`times` DMs of Alice's, each answered, in her DM's history (Discord's only: no gateway event)."""
    channel = fake.dm_channel_id(ALICE)
    for n in range(times):
        fake.user_dms_while_away(f"song {n}", user=ALICE)
        fake.channel_messages[str(channel)].append(
            fake.message_payload(channel_id=channel, content=f"Saved: song {n}", author=fake.bot_user()))


@pytest.mark.parametrize("before, after", [(0, 150), (150, 150)])
async def test_a_prompt_dm_cut_short_by_a_kill_is_found_past_a_hundred_dms_around_it(
        discord_bot, restart, db, usecases, before, after):
    """The prompt's DM made, the bot killed before its id was noted; then Alice wrote 150 DMs (each
    answered) before the same day's restart. The restart read the newest 100 messages of the DM
    only, did not see the prompt there, and sent it a second time. It now reads the messages made
    since the prompt was recorded (less the clocks' skew), oldest first, a page after another: the
    prompt is found, also behind 150 DMs written just before it (within the skew), and noted."""
    fake, frontend = discord_bot
    scheduler = await scheduler_for(fake, frontend, db, usecases, at=ten_minutes_ago())
    chatted(fake, before)
    killed = await killed_while_sending(fake, scheduler, "send_message")
    chatted(fake, after)
    assert await resent_at_restart(fake, restart, db, usecases, killed) == 0


@pytest.mark.parametrize("meanwhile", ["journal off", "the day over"])
async def test_a_prompt_dm_cut_short_by_a_kill_is_not_sent_after_journal_off_or_past_its_day(
        discord_bot, restart, db, usecases, meanwhile):
    fake, frontend = discord_bot
    scheduler = await scheduler_for(fake, frontend, db, usecases, at=ten_minutes_ago())
    await killed_while_sending(fake, scheduler, "create_dm")
    later = timedelta(0)
    if meanwhile == "journal off":  # as the prompt went out, before the kill
        await fake.slash("journal", sub("off"))
        await private_answer(fake)
    else:  # the next day, past the 8 h the next prompt may come late: the prompt asked about a day that is over
        later = timedelta(days=1, hours=9)

    restarted = PromptScheduler(db, usecases.journal, pause_s=0, now=lambda: datetime.now(timezone.utc) + later)
    restarted.register(await restart())
    try:
        assert await restarted.start() == 0
    finally:
        await restarted.stop()
    assert fake.calls_of("send_message") == []


async def test_a_dm_history_discord_does_not_answer_holds_the_start_s_resend_no_longer_than_a_channel_read(
        discord_bot, restart, db, usecases, monkeypatch, caplog):
    """The restart's look for a prompt cut short had no bound of its own: aiohttp alone waits 5
    minutes, one of the 4 delivery slots (the day's prompts) held all that time. It now gives up
    as the reading back of missed DMs does (`missed.CHANNEL_S`), and keeps the prompt unsent."""
    fake, frontend = discord_bot
    scheduler = await scheduler_for(fake, frontend, db, usecases, at=ten_minutes_ago())
    await killed_while_sending(fake, scheduler, "create_dm")
    monkeypatch.setattr(missed, "CHANNEL_S", 0.5)

    restarted = PromptScheduler(db, usecases.journal, pause_s=0)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bot.frontends.discord"):
        restarted.register(await restart())
        assert await until(lambda: "discord.dms_read_back" in caplog.text)  # the session's own read first
    release = fake.hold_next("channel_history")
    try:
        assert await asyncio.wait_for(restarted.start(), 10) == 0
    finally:
        release.set()
        await restarted.stop()
    assert "scheduler.unconfirmed_prompt_not_checked" in caplog.text
    assert fake.calls_of("send_message") == []


async def test_a_prompt_dm_behind_more_pages_than_the_lookup_reads_is_sent_again(
        discord_bot, restart, db, usecases, monkeypatch):
    """The look is bounded: past PROMPT_PAGES full pages of DMs made since the prompt's record (less
    the skew), it stops, the prompt taken for not shown, and sent."""
    fake, frontend = discord_bot
    monkeypatch.setattr(discord_frontend, "PROMPT_PAGES", 2)
    scheduler = await scheduler_for(fake, frontend, db, usecases, at=ten_minutes_ago())
    chatted(fake, 100)  # 200 messages before it
    killed = await killed_while_sending(fake, scheduler, "send_message")

    restarted = PromptScheduler(db, usecases.journal, pause_s=0)
    restarted.register(await restart())
    try:
        assert await restarted.start() == 1
    finally:
        await restarted.stop()
    looked = [c.query for c in fake.calls_of("channel_history") if "after" in c.query]
    assert len(looked) == 2 and int(looked[1]["after"]) > int(looked[0]["after"])
    assert [c.content for c in fake.calls_of("send_message")] == [rendering.prompt_text(killed.phrase)] * 2


DISCORD_GLOBAL_PER_S = 50  # Discord's global limit of a bot's requests, all routes together


async def test_a_broadcast_of_prompt_dms_keeps_under_discord_s_global_rate_limit(discord_bot, db, usecases):
    """Many users at one prompt time: their DMs (each a DM channel opened, then a message) at the
    scheduler's default pacing must stay under Discord's 50 requests a second, leaving room for the
    answers to commands; past it Discord answers 429s, each counted against the bot's IP."""
    fake, frontend = discord_bot
    scheduler = sending_through(frontend, db, usecases)  # the default pacing
    crowd = [UserRef("discord", str(ALICE + n)) for n in range(1, 121)]
    for ref in crowd:
        await db.users.upsert(User(ref.platform, ref.user_id, timezone="Europe/Lisbon", prompt_time=time(21, 30),
                                   journal_enabled=True, chat_id=ref.user_id))
    start = fake.mark()

    sent = await asyncio.gather(*(scheduler.deliver(ref) for ref in crowd))

    assert all(sent)
    times = sorted(c.at for c in fake.calls[start:] if c.name in ("create_dm", "send_message"))
    assert len(times) == 2 * len(crowd)
    busiest = max(sum(1 for t in times[i:] if t < first + 1.0) for i, first in enumerate(times))
    assert busiest <= DISCORD_GLOBAL_PER_S, f"{busiest} requests in one second"
