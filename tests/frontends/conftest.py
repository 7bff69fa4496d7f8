"""Front-end adapter tests: the real front-end and the real use cases over the test database,
talking to the fake Telegram / Discord servers. These tests never classify a song (no classifier
or audio sources are wired in: the end-to-end tests cover that path)."""
from __future__ import annotations

import hashlib
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable

import pytest

from bot.config import Settings
from bot.frontends.render import WORD_JOINER
from bot.frontends.discord import DiscordFrontend
from bot.frontends.telegram import TelegramFrontend
from bot.replies import Caller
from bot.scheduler import PromptScheduler
from bot.sources.spotify import SpotifyResolver
from bot.usecases import build_usecases
from storage.database import Database
from storage.models import StoredMood, TrackRecord
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.spotify_api import FakeSpotify, FakeTrack
from tests.fakes.telegram_api import DEFAULT_USER, FakeTelegramBotAPI
from tests.prompt_times import FAR_IN_LISBON_TEXT

TELEGRAM_TOKEN = "123456:TEST-token"


@pytest.fixture
async def db(mongo_uri, db_name):
    database = await Database.connect(mongo_uri, db_name)
    await database.init()
    yield database
    await database.close()


@pytest.fixture
def usecases(db):
    return build_usecases(db, classifier=None, fetcher=None)


@asynccontextmanager
async def running(fake, frontend_on_fake: Callable[[Any], Any]) -> AsyncIterator[tuple[Any, Any]]:
    """`fake` started, then the front-end made for it; both stopped after, the front-end first."""
    await fake.start()
    frontend = frontend_on_fake(fake)
    await frontend.start()
    try:
        yield fake, frontend
    finally:
        await frontend.stop()
        await fake.stop()


def telegram_on(fake: FakeTelegramBotAPI, usecases) -> AbstractAsyncContextManager[tuple[FakeTelegramBotAPI, TelegramFrontend]]:
    """The Telegram front-end polling `fake` (a FakeTelegramBotAPI, or a subclass that answers some
    calls its own way), both started here and stopped after."""
    return running(fake, lambda fake: TelegramFrontend(
        Settings(_env_file=None, telegram_token=TELEGRAM_TOKEN, telegram_api_url=fake.base_url,
                 telegram_file_url=fake.base_file_url, max_audio_bytes=1024 * 1024),
        usecases, poll_timeout_s=1))


@pytest.fixture
async def telegram(usecases):
    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as both:
        yield both


def discord_on(fake: FakeDiscord, usecases) -> AbstractAsyncContextManager[tuple[FakeDiscord, DiscordFrontend]]:
    """The Discord front-end connected to `fake` (a FakeDiscord, or a subclass that answers some
    calls its own way), both started here and stopped after."""
    return running(fake, lambda fake: DiscordFrontend(
        Settings(_env_file=None, discord_token="discord-test-token", discord_api_url=fake.api_url,
                 discord_gateway_url=fake.gateway_url, max_audio_bytes=1024 * 1024),
        usecases, guild_ready_timeout=0.05))


@pytest.fixture
async def discord_bot(usecases):
    async with discord_on(FakeDiscord(), usecases) as both:
        yield both


@pytest.fixture
async def restart(discord_bot, usecases):
    """Stops the running front-end and starts a new one on the same fake Discord and database,
    as a redeploy or a crash and restart does; the new one is stopped after the test."""
    fake, first = discord_bot
    started: list[DiscordFrontend] = []

    async def restart_bot() -> DiscordFrontend:
        await (started[-1] if started else first).stop()
        frontend = DiscordFrontend(
            Settings(_env_file=None, discord_token="discord-test-token", discord_api_url=fake.api_url,
                     discord_gateway_url=fake.gateway_url, max_audio_bytes=1024 * 1024),
            usecases, guild_ready_timeout=0.05)
        started.append(frontend)
        await frontend.start()
        return frontend

    yield restart_bot
    for frontend in started:
        await frontend.stop()


@asynccontextmanager
async def prompts_through(frontend, usecases, db) -> AsyncIterator[PromptScheduler]:
    """The real prompt scheduler, running, delivering through `frontend`."""
    scheduler = PromptScheduler(db, usecases.journal)
    usecases.attach_schedule(scheduler)
    scheduler.register(frontend)
    await scheduler.start()
    try:
        yield scheduler
    finally:
        await scheduler.stop()


@pytest.fixture
async def scheduled(discord_bot, usecases, db):
    """The bot with the real prompt scheduler delivering through the Discord front-end."""
    async with prompts_through(discord_bot[1], usecases, db):
        yield discord_bot


async def journal_on_telegram(fake: FakeTelegramBotAPI, frontend: TelegramFrontend, db, usecases, *,
                              by_message: bool = True) -> PromptScheduler:
    """A prompt scheduler sending through `frontend`, and the default user's journal turned on
    (`FAR_IN_LISBON_TEXT` Europe/Lisbon, twelve hours from the suite's start: a scheduler started
    then neither catches up nor fires its prompt) with its confirmation read. `by_message=False`: through the use case, for
    a test that then has a prompt refused: after a /journal on, that refusal could come before the
    message's own after-answer check, which would then tell the "prompts stopped" notice itself."""
    scheduler = PromptScheduler(db, usecases.journal, pause_s=0)
    usecases.attach_schedule(scheduler)
    scheduler.register(frontend)
    if not by_message:
        await usecases.journal.enable(Caller("telegram", str(DEFAULT_USER), chat_id=str(DEFAULT_USER)),
                                      FAR_IN_LISBON_TEXT, "Europe/Lisbon")
        return scheduler
    await fake.user_sends(f"/journal on {FAR_IN_LISBON_TEXT} Europe/Lisbon")
    await fake.wait_for("sendMessage")
    return scheduler


QUADRANT = {"happy": (0.5, 0.5), "energetic": (-0.5, 0.5), "sad": (-0.5, -0.5), "calm": (0.5, -0.5)}


def known_upload(content: bytes, mood: str = "calm") -> TrackRecord:
    """The cache's record of a file known by its bytes, heard as `mood` (p 0.7): these tests have no
    classifier."""
    return TrackRecord(key=f"sha256:{hashlib.sha256(content).hexdigest()}", title="", artists=[],
                       classified_at=datetime.now(timezone.utc),
                       mood=StoredMood(mood, {m: 0.7 if m == mood else 0.1 for m in QUADRANT}, *QUADRANT[mood], "main", "v"))


async def cache_upload(db, content: bytes, mood: str = "calm") -> bytes:
    """`content`, saved in the cache as `known_upload` makes it."""
    await db.tracks.save(known_upload(content, mood))
    return content


CREEP = FakeTrack(name="Creep", artists=("Radiohead",), id="6b2oQwSGFkzsMtQruIWm2p")


@asynccontextmanager
async def spotify_with_creep(db) -> AsyncIterator[tuple[FakeSpotify, SpotifyResolver]]:
    """A fake Spotify holding Radiohead's Creep, its mood (sad) already cached, and a resolver
    looking songs up there."""
    spotify = FakeSpotify().start()
    spotify.add(CREEP)
    await db.tracks.save(TrackRecord(
        key=f"spotify:{CREEP.track_id}", title="Creep", artists=["Radiohead"], classified_at=datetime.now(timezone.utc),
        mood=StoredMood("sad", {m: 0.7 if m == "sad" else 0.1 for m in QUADRANT}, -0.6, -0.2, "main", "v1")))
    try:
        yield spotify, SpotifyResolver(spotify.client_id, spotify.client_secret, spotify.api_url, spotify.auth_url)
    finally:
        spotify.stop()


@asynccontextmanager
async def usecases_with_creep(db, fetcher=None) -> AsyncIterator[tuple[FakeSpotify, Any]]:
    """`spotify_with_creep`, and the use cases looking songs up there (no classifier needed, nor an
    audio source: `fetcher`, if given, is there to show that nothing is fetched)."""
    async with spotify_with_creep(db) as (spotify, resolver):
        yield spotify, build_usecases(db, classifier=None, fetcher=fetcher, resolver=resolver)


@pytest.fixture
async def telegram_and_spotify(db):
    """The Telegram front-end on a fake Bot API, its use cases looking songs up on a fake Spotify
    that holds Creep (`usecases_with_creep`): (the fake Bot API, the fake Spotify)."""
    async with usecases_with_creep(db) as (spotify, usecases):
        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, _):
            yield fake, spotify


def read(text: str) -> str:
    """`text` as its reader reads it: the word joiners that unlink a name in it (`render.unlinked`)
    are unseen."""
    return text.replace(WORD_JOINER, "")
