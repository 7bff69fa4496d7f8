"""Given one user (or one group) sends /mood too fast, the excess is refused politely with the time
to wait; the limits come from Settings; at most N analyses per user run at once."""
from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from bot.config import Settings
from bot.frontends.telegram import TelegramFrontend
from bot.ratelimit import CONCURRENT_RETRY_S, WINDOW_S, MoodRateLimiter
from bot.replies import Caller, ErrorReply, MoodReply
from bot.sources.audio import AudioFetcher
from bot.usecases import build_usecases
from bot.usecases.mood import MoodUseCase
from tests.fakes.audio_http import FakeAudioServer
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.faults.support import cache_youtube_song

GROUP = "telegram:-500"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def caller(user: str, place: str | None = GROUP) -> Caller:
    return Caller("telegram", user, place=place, chat_id=user)


def limited(settings: Settings, clock: Clock) -> MoodRateLimiter:
    return MoodRateLimiter.from_settings(settings, clock=clock)


async def test_per_user_limit_from_settings_then_the_window_frees_it(db):
    clock = Clock()
    settings = Settings(_env_file=None, mood_rate_per_user=3, mood_rate_per_place=100)
    mood = MoodUseCase(db, classifier=None, fetcher=None, limiter=limited(settings, clock))
    link = await cache_youtube_song(db, "aaaaaaaaaaa")
    for _ in range(3):
        assert isinstance(await mood.run(caller("1"), link), MoodReply)
        clock.now += 1
    refused = await mood.run(caller("1"), link)
    assert isinstance(refused, ErrorReply)
    # The first request leaves the 60 s window 57 s from now (3 s have passed).
    assert refused.retry_after_s == WINDOW_S - 3
    assert f"try again in {refused.retry_after_s} s" in refused.message
    assert isinstance(await mood.run(caller("2"), link), MoodReply)  # someone else is not affected
    clock.now += refused.retry_after_s
    assert isinstance(await mood.run(caller("1"), link), MoodReply)


async def test_per_place_limit_counts_every_member(db):
    clock = Clock()
    settings = Settings(_env_file=None, mood_rate_per_user=100, mood_rate_per_place=4)
    mood = MoodUseCase(db, classifier=None, fetcher=None, limiter=limited(settings, clock))
    link = await cache_youtube_song(db, "bbbbbbbbbbb")
    replies = [await mood.run(caller(str(user)), link) for user in range(6)]
    assert [type(r) for r in replies] == [MoodReply] * 4 + [ErrorReply] * 2
    assert all(0 < r.retry_after_s <= WINDOW_S for r in replies[4:])
    assert isinstance(await mood.run(caller("9", place="telegram:-600"), link), MoodReply)  # other group
    assert isinstance(await mood.run(caller("9", place=None), link), MoodReply)  # private chat


@pytest.fixture
def hanging_audio():
    server = FakeAudioServer(Path(tempfile.mkdtemp(prefix="moodbot-abuse-"))).start()
    yield server
    server.stop()


async def test_at_most_n_analyses_per_user_run_at_once(db, hanging_audio):
    settings = Settings(_env_file=None, mood_rate_per_user=100, mood_rate_per_place=100,
                        mood_concurrent_per_user=2)
    # The audio host accepts and never answers: each analysis holds its slot until the timeout.
    fetcher = AudioFetcher(search_template=hanging_audio.url("/hang/{title}.ogg"), timeout_s=1.5)
    mood = MoodUseCase(db, classifier=None, fetcher=fetcher, limiter=MoodRateLimiter.from_settings(settings))
    running = [asyncio.create_task(mood.run(caller("1"), f"slow song {i}")) for i in range(2)]
    await asyncio.sleep(0.2)
    third = await mood.run(caller("1"), "one more")
    assert isinstance(third, ErrorReply) and third.retry_after_s == CONCURRENT_RETRY_S
    assert "try again in" in third.message
    other = asyncio.create_task(mood.run(caller("2"), "another user's song"))  # has its own slots
    finished = await asyncio.gather(*running, other)
    assert all(isinstance(r, ErrorReply) and "took too long" in r.message for r in finished)
    # Slots are given back when an analysis ends, even in failure.
    again = await mood.run(caller("1"), "after the others")
    assert isinstance(again, ErrorReply) and "took too long" in again.message


async def test_telegram_user_going_too_fast_is_told_when_to_retry(db):
    fake = await FakeTelegramBotAPI("123456:TEST-token").start()
    settings = Settings(_env_file=None, telegram_token="123456:TEST-token", telegram_api_url=fake.base_url,
                        telegram_file_url=fake.base_file_url, mood_rate_per_user=2)
    usecases = build_usecases(db, classifier=None, fetcher=None, limiter=MoodRateLimiter.from_settings(settings))
    link = await cache_youtube_song(db, "ccccccccccc")
    frontend = TelegramFrontend(settings, usecases, poll_timeout_s=1)
    await frontend.start()
    try:
        for _ in range(2):
            await fake.user_sends(f"/mood {link}")
            await fake.wait_for_reply(lambda c: "Mood:" in c.text)
        await fake.user_sends(f"/mood {link}")
        refused = await fake.wait_for_reply(lambda c: "try again in" in c.text)
        assert "Mood:" not in refused.text
    finally:
        await frontend.stop()
        await fake.stop()


def test_the_limiter_forgets_who_asked_once_their_window_has_passed():
    """The limiter holds who asked lately ("telegram:1001") and when: personal data, kept in
    memory only as long as a window needs it, not until that user asks again (or forever, for
    one who ran /forget and never came back)."""
    clock = Clock()
    limiter = MoodRateLimiter(per_user=5, per_place=50, concurrent_per_user=2, clock=clock)
    with limiter.acquire("telegram:1001", GROUP):
        pass
    clock.now += 3 * WINDOW_S
    with limiter.acquire("telegram:1002", "telegram:-600"):  # someone else, somewhere else
        pass

    held = str(vars(limiter.users)) + str(vars(limiter.places)) + str(vars(limiter))
    assert "1001" not in held and GROUP not in held
