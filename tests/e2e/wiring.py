"""The whole bot assembled from its real parts, against local fake servers, for the end-to-end tests
and the Telegram latency benchmark.

Real: python-telegram-bot / discord.py, the use cases, the sources (spotipy + the audio fetcher),
the classifier's process pool, the database (SecantusDB over the wire). Fake: only the services on
the other side of HTTP (Telegram Bot API, Discord, Spotify, the audio CDN).
"""
from __future__ import annotations

import contextlib
import csv
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import soundfile

from bot.app import build_app_usecases, build_sources, settle_heap
from bot.config import Settings
from bot.scheduler import PromptScheduler
from inference.pool import DEFAULT_WEIGHTS_DIR, Classifier
from storage.database import Database
from storage.outbox import JournalOutbox, JournalWriter
from tests.fakes.audio_http import FakeAudioServer
from tests.fakes.spotify_api import FakeSpotify, FakeTrack, spotify_id_for

SHIPPED_WEIGHT_FILES = ("main.onnx", "ann.npz")
TELEGRAM_TOKEN = "123456:TEST-token"
DISCORD_TOKEN = "discord-test-token"


@dataclass(frozen=True)
class Song:
    """A clip of the 4Q dataset, published by the fake Spotify and served by the fake CDN."""

    song_id: str
    title: str
    artist: str
    path: Path
    spotify_id: str

    @property
    def query(self) -> str:
        return f"{self.artist} - {self.title}"


def load_songs(shared_data: Path, count: int) -> list[Song]:
    """The first `count` clips, one per distinct title so a name search finds exactly that clip."""
    songs: list[Song] = []
    seen: set[str] = set()
    with open(shared_data / "labels.csv", newline="") as labels:
        for row in csv.DictReader(labels):
            path = shared_data / row["file"]
            title = row["title"].strip()
            if not path.exists() or title.lower() in seen or not title.isascii():
                continue
            seen.add(title.lower())
            songs.append(Song(row["song_id"], title, row["artist"].strip(), path,
                              spotify_id_for(row["song_id"])))
            if len(songs) == count:
                break
    return songs


def weights_dir() -> Path:
    """The shipped weights: the end-to-end tests run the model users get."""
    missing = [name for name in SHIPPED_WEIGHT_FILES if not (DEFAULT_WEIGHTS_DIR / name).exists()]
    if missing:
        raise FileNotFoundError(f"shipped weights missing in {DEFAULT_WEIGHTS_DIR}: {', '.join(missing)}")
    return DEFAULT_WEIGHTS_DIR


@dataclass
class Catalog:
    """Fake Spotify + fake audio CDN publishing `songs`."""

    songs: list[Song]
    spotify: FakeSpotify
    audio: FakeAudioServer

    @classmethod
    def start(cls, songs: list[Song], root: Path) -> "Catalog":
        audio_dir = root / "audio"
        audio_dir.mkdir(parents=True, exist_ok=True)
        for song in songs:  # copies: the CDN serves nothing that resolves outside its root
            served = audio_dir / f"{song.spotify_id}.ogg"
            if not served.exists():
                shutil.copyfile(song.path, served)
        spotify = FakeSpotify().start()
        spotify.add(*(FakeTrack(name=s.title, artists=(s.artist,), id=s.spotify_id, album="4Q",
                                duration_ms=round(soundfile.info(str(s.path)).duration * 1000))
                      for s in songs))
        return cls(songs, spotify, FakeAudioServer(root).start())

    @property
    def audio_search(self) -> str:
        return self.audio.url("/audio/{spotify_id}.ogg")

    def stop(self) -> None:
        self.spotify.stop()
        self.audio.stop()


def bot_settings(catalog: Catalog, mongo_uri: str, db_name: str, data_dir: Path, **endpoints) -> Settings:
    return Settings(
        _env_file=None,
        spotify_client_id=catalog.spotify.client_id,
        spotify_client_secret=catalog.spotify.client_secret,
        spotify_api_url=catalog.spotify.api_url,
        spotify_auth_url=catalog.spotify.auth_url,
        audio_search=catalog.audio_search,
        mongodb_uri=mongo_uri,
        mongodb_database=db_name,
        data_dir=data_dir,
        **endpoints,
    )


@dataclass
class Bot:
    """The assembled bot: use cases, scheduler and the front-ends made by `frontend_factories`."""

    settings: Settings
    db: Database
    usecases: object
    scheduler: PromptScheduler
    frontends: list = field(default_factory=list)


@contextlib.asynccontextmanager
async def running_bot(settings: Settings, classifier: Classifier, frontend_factories):
    """Start the bot the way `bot.app` does (database, sources, use cases, scheduler, front-ends)
    and stop it in reverse order."""
    async with contextlib.AsyncExitStack() as stack:
        db = await Database.connect(settings.mongodb_uri.get_secret_value(), settings.database_name)
        stack.push_async_callback(db.close)
        await db.init()
        resolver, fetcher = build_sources(settings)
        await fetcher.warm_up()  # as the app does at start-up
        writer = JournalWriter(db.journal, JournalOutbox.in_data_dir(settings.data_dir), db.prompts)
        usecases = build_app_usecases(settings, db, classifier, resolver=resolver, fetcher=fetcher, writer=writer)
        scheduler = PromptScheduler(db, usecases.journal, pause_s=0)
        usecases.attach_schedule(scheduler)
        bot = Bot(settings, db, usecases, scheduler)
        for factory in frontend_factories:
            frontend = factory(settings, usecases)
            scheduler.register(frontend)
            await frontend.start()
            stack.push_async_callback(frontend.stop)
            bot.frontends.append(frontend)
        await scheduler.start()
        stack.push_async_callback(scheduler.stop)
        settle_heap()  # as the app does once started
        yield bot


@contextlib.asynccontextmanager
async def started_classifier():
    async with Classifier(weights_dir(), workers=1, timeout_s=60, max_queue=64) as classifier:
        yield classifier


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="moodbot-e2e-"))
