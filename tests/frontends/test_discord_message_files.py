"""Given a Discord user picks "Mood of this song" on a message with several audio files, every file
gets its mood, one answer each, in the message's order: the first in place of the "thinking"
answer, the others as followups. A file refused (not handed over, too large) is that file's
answer; past the rate limit the rest are not heard, and that is said once.

The files here are in the track cache (keyed by their hash), so each gets a real mood without a
classifier.
"""
from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from bot.frontends.discord.interactions import INTERACTION_TOKEN_LIFETIME, NOT_DOWNLOADED, TOO_LARGE
from bot.frontends.discord.mood import FILE_TIME, FILES_NOT_HEARD, OUT_OF_TIME
from bot.ratelimit import MoodRateLimiter
from bot.replies import STAGE_DOWNLOADING, STAGE_FINDING, STAGE_LISTENING
from bot.usecases import build_usecases
from bot.usecases.mood import MAX_SONGS_AT_ONCE
from storage.models import StoredMood, TrackRecord
from tests.fakes.discord_api import Call, FakeDiscord, user_payload
from tests.frontends.conftest import discord_on
from tests.frontends.test_discord import BOB, GUILD, made_private

PER_USER = 3  # /mood requests per user per minute in these tests
MOODS = ("happy", "energetic", "sad", "calm")
STAGES = (STAGE_FINDING, STAGE_DOWNLOADING, STAGE_LISTENING)
QUIET_S = 0.5  # long enough for the bot to have sent whatever more it was going to send


@pytest.fixture
def usecases(db):
    limiter = MoodRateLimiter(per_user=PER_USER, per_place=30, concurrent_per_user=2)
    return build_usecases(db, classifier=None, fetcher=None, limiter=limiter)


@pytest.fixture
async def discord_unlimited(db):
    async with discord_on(FakeDiscord(), build_usecases(db, classifier=None, fetcher=None)) as both:
        yield both


async def cached_files(fake, db, count: int) -> list[dict]:
    """`count` audio files (take1.ogg, take2.ogg…) whose moods the cache knows."""
    files = []
    for n in range(1, count + 1):
        audio, mood = f"OggS take {n}".encode(), MOODS[n % len(MOODS)]
        await db.tracks.save(TrackRecord(
            key="sha256:" + hashlib.sha256(audio).hexdigest(), title="", artists=[],
            classified_at=datetime.now(timezone.utc),
            mood=StoredMood(mood, {m: 0.7 if m == mood else 0.1 for m in MOODS}, 0.1, 0.2, "main", "v1")))
        files.append(fake.add_file(f"take{n}.ogg", audio))
    return files


def deleted(fake, attachment: dict) -> dict:
    """The attachment as the file server has it once its message's file was deleted: gone."""
    del fake.files[attachment["url"].rsplit("/", 1)[1]]
    return attachment


async def ask_about(fake, attachments: list[dict], made_at: datetime | None = None) -> int:
    """The menu on a message of BOB's with these files, in a server; the mark of the calls after it."""
    mark = fake.mark()
    target = fake.message_payload(channel_id=1, content="our takes", author=user_payload(BOB),
                                  attachments=attachments)
    await fake.slash("Mood of this song", command_type=3, target_id=target["id"],
                     resolved={"messages": {target["id"]: target}}, guild=GUILD, made_at=made_at)
    return mark


def shown(fake, mark: int) -> list[Call]:
    """The messages answering since `mark`, in the order they came, each as it shows now: the
    "thinking" answer (unless deleted) and each followup, at their latest edit."""
    messages: dict[str, Call] = {}
    for call in fake.calls[mark:]:
        if call.status >= 300:
            continue
        if call.name == "edit_original":
            messages["original"] = call
        elif call.name == "followup":
            messages[call.result["id"]] = call
        elif call.name == "edit_followup":
            messages[call.match["message"]] = call
        elif call.name in ("delete_original", "delete_followup"):
            messages.pop(call.match.get("message", "original"), None)
    return list(messages.values())


async def answers(fake, mark: int, count: int) -> list[Call]:
    """The answers once `count` of them show no stage (and a moment more, for any extra)."""
    for _ in range(200):
        messages = shown(fake, mark)
        if len(messages) >= count and not [m for m in messages if m.content in STAGES]:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(QUIET_S)
    return shown(fake, mark)


def titles(messages: list[Call]) -> list[str | None]:
    return [m.embeds[0]["title"] if m.embeds else None for m in messages]


async def test_the_menu_on_two_audio_files_answers_each_in_order(discord_bot, db):
    fake, _ = discord_bot
    mark = await ask_about(fake, await cached_files(fake, db, 2))
    first, second = await answers(fake, mark, 2)
    assert titles([first, second]) == ["take1", "take2"]
    assert first.name == "edit_original"  # in place of "thinking…"
    assert second.name in ("followup", "edit_followup") and not made_private(second)
    assert not first.content and not second.content  # every file heard: nothing to say of the others
    assert len(fake.calls_of("download", after=mark)) == 2


async def test_a_file_refused_in_the_middle_is_that_file_s_answer_and_the_others_go_on(discord_bot, db):
    fake, _ = discord_bot
    first, middle, last = await cached_files(fake, db, 3)
    mark = await ask_about(fake, [first, deleted(fake, middle), last])
    heard, refused, heard_too = await answers(fake, mark, 3)
    assert titles([heard, refused, heard_too]) == ["take1", None, "take3"]
    assert refused.content == NOT_DOWNLOADED and made_private(refused)  # to the asker alone
    assert not made_private(heard_too)


async def test_a_first_file_refused_is_told_privately_and_the_next_ones_answered_in_the_channel(discord_bot, db):
    fake, frontend = discord_bot
    huge, song = await cached_files(fake, db, 2)
    huge["size"] = frontend.settings.max_audio_bytes + 1
    mark = await ask_about(fake, [huge, song])
    refused, heard = await answers(fake, mark, 2)
    assert refused.content == TOO_LARGE.format(mb=1) and made_private(refused)
    assert titles([heard]) == ["take2"] and not made_private(heard)


async def test_past_the_rate_limit_the_rest_are_not_heard_and_that_is_said_once(discord_bot, db):
    fake, _ = discord_bot
    mark = await ask_about(fake, await cached_files(fake, db, PER_USER + 2))
    messages = await answers(fake, mark, PER_USER + 1)
    assert titles(messages) == ["take1", "take2", "take3", None]
    refusal = messages[-1]
    assert refusal.content.startswith("You're going fast") and made_private(refusal)
    assert FILES_NOT_HEARD.format(count=1) in refusal.content
    assert len(fake.calls_of("download", after=mark)) == PER_USER  # the refused one and the last never fetched


async def test_files_left_when_the_answer_s_15_minutes_run_short_are_not_heard_and_that_is_said(discord_bot, db):
    fake, _ = discord_bot
    # Made so that the first file has time, and after it (held 3 s on the file server) the next has not.
    made_at = datetime.now(timezone.utc) - INTERACTION_TOKEN_LIFETIME + FILE_TIME + timedelta(seconds=2)
    fake.cdn_open.clear()
    mark = await ask_about(fake, await cached_files(fake, db, 3), made_at=made_at)
    await fake.wait_for("download", after=mark)
    await asyncio.sleep(3)
    fake.cdn_open.set()
    heard, stopped = await answers(fake, mark, 2)
    assert titles([heard]) == ["take1"]
    assert stopped.content == OUT_OF_TIME.format(count=2) and made_private(stopped)
    assert len(fake.calls_of("download", after=mark)) == 1


async def test_the_menu_hears_at_most_as_many_files_as_a_telegram_album_holds(discord_unlimited, db):
    fake, _ = discord_unlimited
    mark = await ask_about(fake, await cached_files(fake, db, MAX_SONGS_AT_ONCE + 2))
    messages = await answers(fake, mark, MAX_SONGS_AT_ONCE)
    assert titles(messages) == [f"take{n}" for n in range(1, MAX_SONGS_AT_ONCE + 1)]
    assert MAX_SONGS_AT_ONCE == 10
