"""Load: 500 concurrent cached /mood through the Telegram front-end, then a burst of 50 uncached songs.

Everything real except the services across HTTP (fake Telegram Bot API, fake Spotify, a local audio
CDN serving distinct 4Q clips): python-telegram-bot, the use cases, spotipy, the audio fetcher, the
classifier pool (the defaults of `Settings`: workers, timeout, jobs in flight before the ANN
answers), SecantusDB over the wire. A ticker task in the same event loop sleeps 10 ms again and again
and records how late it wakes up: the event-loop lag every other user would feel.

Rows:
- "fake Bot API round trip": a bare sendMessage to the fake server, one at a time (the floor).
- "500 cached, overall limit off": 500 users send /mood of an already classified song at once;
  latency from the update leaving getUpdates to the final answer reaching the fake Bot API, with
  Telegram's bot-wide 30 msg/s limit switched off: the bot's own overhead (target p99 <= 100 ms).
  The bot fetches updates only as fast as it answers them (bot/frontends/telegram_flow.py), so the
  "send" columns also time each answer from the user's message reaching the fake: what users wait.
- "500 cached, as shipped (30 msg/s)": the same with that limit on, as in production: 500 API calls
  at 30/s take ~17 s whatever the bot does.
- "50 uncached songs at once": 50 users each ask for a different song (Spotify lookup, 30 s
  section over HTTP Range, classification); every song must be answered, by the main model or the
  ANN (counted).

The fake Spotify, the fake audio CDN and the fake Bot API run in processes of their own, as the
real ones run on other machines: their servers would otherwise take the GIL and the event loop from
the bot and count as its lag. `--fakes-in-process` puts them back in the bot's process (how this
benchmark measured before).

The download workers are started before the uncached burst, as the bot does at start-up
(`--cold-downloads`: they start with the burst's first songs).

    nice -n 15 .venv/bin/python benchmarks/load.py [--cached 500] [--uncached 50] [--fakes-in-process]
                                                   [--cold-downloads]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from remote_telegram import RemoteTelegramBotAPI  # noqa: E402
from telegram_latency import FIRST_USER, WARM_UP_USERS, percentile, reference, remote_round, seed_tracks  # noqa: E402

from bot.config import Settings  # noqa: E402

from bot.frontends.telegram import MAX_RETRIES, BoundedRateLimiter, TelegramFrontend  # noqa: E402
from bot.replies import Caller, MoodReply  # noqa: E402
from inference.pool import Classifier  # noqa: E402
from tests.conftest import SHARED_DATA  # noqa: E402
from tests.dbserver import DBServer  # noqa: E402
from tests.e2e.wiring import TELEGRAM_TOKEN, Catalog, bot_settings, load_songs, running_bot, weights_dir  # noqa: E402

CACHED_USERS = 500
UNCACHED_SONGS = 50
TICK_S = 0.01
TARGET_P99_MS = 100.0
TARGET_LAG_MS = 50.0
UNCACHED_TIMEOUT_S = 600.0


class LoopLag:
    """Sleeps TICK_S in a loop; each wake-up's delay past TICK_S is the event loop's lag."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self._task: asyncio.Task | None = None

    async def _tick(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(TICK_S)
            self.lags_ms.append(max(0.0, (time.perf_counter() - started - TICK_S) * 1000))

    @contextlib.asynccontextmanager
    async def running(self):
        self.lags_ms = []
        self._task = asyncio.create_task(self._tick())
        try:
            yield self
        finally:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass(frozen=True)
class RemoteSpotify:
    """What the bot's settings need of the fake Spotify running in the services process."""

    client_id: str
    client_secret: str
    api_url: str
    auth_url: str

    def stop(self) -> None:
        pass  # the services process stops both fakes


@dataclass(frozen=True)
class RemoteAudio:
    base_url: str

    def url(self, path: str) -> str:
        return self.base_url + path

    def stop(self) -> None:
        pass


def serve_catalog(songs, root: Path, conn) -> None:
    """In the services process: start the fakes, say where they listen, wait to be told to stop."""
    catalog = Catalog.start(songs, root)
    spotify = catalog.spotify
    conn.send((RemoteSpotify(spotify.client_id, spotify.client_secret, spotify.api_url, spotify.auth_url),
               RemoteAudio(catalog.audio.base_url)))
    with contextlib.suppress(EOFError):
        conn.recv()
    catalog.stop()


@contextlib.contextmanager
def services(songs, root: Path, in_process: bool):
    """The fake Spotify + audio CDN publishing `songs`, in a process of their own unless `in_process`."""
    if in_process:
        catalog = Catalog.start(songs, root)
        try:
            yield catalog
        finally:
            catalog.stop()
        return
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=serve_catalog, args=(songs, root, theirs), daemon=True)
    process.start()
    try:
        spotify, audio = ours.recv()
        yield Catalog(songs, spotify, audio)
    finally:
        ours.send("stop")
        process.join(10)


class Row:
    def __init__(self, label: str, latencies_ms: list[float], errors: int, lags_ms: list[float] | None = None,
                 note: str = "", from_send_ms: list[float] | None = None) -> None:
        self.label, self.latencies, self.errors, self.lags, self.note = label, latencies_ms, errors, lags_ms, note
        self.from_send = from_send_ms


async def cached_burst(label: str, limiter: BoundedRateLimiter, catalog: Catalog, uri: str, users: int,
                       classifier: Classifier) -> Row:
    fake = await RemoteTelegramBotAPI(TELEGRAM_TOKEN).start()
    settings = bot_settings(catalog, uri, f"load_{uuid.uuid4().hex[:8]}", Path(tempfile.mkdtemp()),
                            telegram_token=TELEGRAM_TOKEN, telegram_api_url=fake.base_url,
                            telegram_file_url=fake.base_file_url)
    factory = lambda s, u: TelegramFrontend(s, u, rate_limiter=limiter, poll_timeout_s=1)  # noqa: E731
    lag = LoopLag()
    try:
        async with running_bot(settings, classifier, [factory]) as bot:
            await seed_tracks(bot.db, catalog.songs)
            # Every song asked once before: "cached" means the bot has answered it already, so its
            # Spotify lookup is remembered too (the database alone would leave that to the burst).
            warm_up = max(WARM_UP_USERS, len(catalog.songs))
            await remote_round(fake, catalog.songs, range(FIRST_USER, FIRST_USER + warm_up))
            first = FIRST_USER + warm_up
            async with lag.running():
                result = await remote_round(fake, catalog.songs, range(first, first + users))
    finally:
        await fake.stop()
    return Row(label, result.latencies_ms, result.errors, lag.lags_ms, from_send_ms=result.from_send_ms)


async def uncached_burst(catalog: Catalog, uri: str, classifier: Classifier, warm_downloads: bool) -> Row:
    settings = bot_settings(catalog, uri, f"load_{uuid.uuid4().hex[:8]}", Path(tempfile.mkdtemp()))
    lag = LoopLag()
    async with running_bot(settings, classifier, []) as bot:
        if warm_downloads:  # what the bot does at start-up, minutes before any burst
            await bot.usecases.mood.fetcher.warm_up()
        async def ask(number: int, song) -> tuple[object, float]:
            caller = Caller("telegram", str(50_000 + number), chat_id=str(50_000 + number))
            started = time.perf_counter()
            reply = await bot.usecases.mood.run(caller, song.query)
            return reply, (time.perf_counter() - started) * 1000

        async with lag.running():
            answers = await asyncio.wait_for(
                asyncio.gather(*(ask(n, s) for n, s in enumerate(catalog.songs))), UNCACHED_TIMEOUT_S)
    moods = [(r, ms) for r, ms in answers if isinstance(r, MoodReply) and not r.cached]
    models = Counter(r.model if r.model == "main" else f"ann ({r.fallback_reason})" for r, _ in moods)
    note = ", ".join(f"{m}: {n}" for m, n in sorted(models.items()))
    return Row(f"{len(catalog.songs)} uncached songs at once", [ms for _, ms in moods], len(answers) - len(moods),
               lag.lags_ms, note)


def fmt(values: list[float] | None, how) -> str:
    return f"{how(values):.1f}" if values else "-"


def table(rows: list[Row]) -> str:
    head = (f"{'scenario':<36} {'n':>4} {'err':>4} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
            f"{'lag p50':>8} {'lag p99':>8} {'lag max':>8} {'send p50':>9} {'send p99':>9}  notes")
    lines = [head, "-" * len(head)]
    for row in rows:
        lines.append(
            f"{row.label:<36} {len(row.latencies):>4} {row.errors:>4} {fmt(row.latencies, statistics.median):>8} "
            f"{fmt(row.latencies, lambda v: percentile(v, 0.99)):>8} {fmt(row.latencies, max):>8} "
            f"{fmt(row.lags, statistics.median):>8} {fmt(row.lags, lambda v: percentile(v, 0.99)):>8} "
            f"{fmt(row.lags, max):>8} {fmt(row.from_send, statistics.median):>9} "
            f"{fmt(row.from_send, lambda v: percentile(v, 0.99)):>9}  {row.note}")
    lines.append(f"targets: cached p99 <= {TARGET_P99_MS:.0f} ms with 0 errors (limit off); every uncached song "
                 f"answered; event-loop lag <= {TARGET_LAG_MS:.0f} ms. 'send': from the user's message reaching "
                 "the fake Bot API")
    return "\n".join(lines)


async def main(cached_users: int, uncached: int, fakes_in_process: bool = False, warm_downloads: bool = True) -> None:
    logging.basicConfig(level=logging.WARNING)
    songs = load_songs(SHARED_DATA, max(uncached, 20))
    server = DBServer().start()
    scratch = Path(tempfile.mkdtemp(prefix="moodbot-load-"))
    weights = weights_dir()  # the shipped model: what users get
    try:
        with services(songs, scratch / "cdn", fakes_in_process) as catalog:
            rows = await measure(catalog, server.uri, weights, cached_users, uncached, warm_downloads)
    finally:
        server.stop()
    where = "in the bot's process" if fakes_in_process else "in a process of their own"
    print(f"/mood under load, latency inside the bot; shipped weights; fake Spotify and CDN {where}")
    print(table(rows))


async def measure(catalog: Catalog, uri: str, weights: Path, cached_users: int, uncached: int,
                  warm_downloads: bool) -> list[Row]:
    fake = await RemoteTelegramBotAPI(TELEGRAM_TOKEN).start()
    ref = await reference(fake)
    await fake.stop()
    rows = [Row("fake Bot API round trip (floor)", ref, 0)]
    # Never started: every song is cached, so a classification would be an error (and count as one).
    idle = Classifier(Path(tempfile.mkdtemp()))
    if cached_users > 0:  # --cached 0 measures the uncached burst alone
        rows.append(await cached_burst(f"{cached_users} cached, overall limit off",
                                       BoundedRateLimiter(overall_max_rate=0, max_retries=MAX_RETRIES),
                                       catalog, uri, cached_users, idle))
        rows.append(await cached_burst(f"{cached_users} cached, as shipped (30 msg/s)",
                                       BoundedRateLimiter(max_retries=MAX_RETRIES),
                                       catalog, uri, cached_users, idle))
    if uncached > 0:
        production = Settings(_env_file=None)  # the defaults users get
        async with Classifier(weights, workers=production.inference_workers, timeout_s=production.inference_timeout_s,
                              max_queue=production.inference_max_queue) as classifier:
            rows.append(await uncached_burst(Catalog(catalog.songs[:uncached], catalog.spotify, catalog.audio),
                                             uri, classifier, warm_downloads))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cached", type=int, default=CACHED_USERS)
    parser.add_argument("--uncached", type=int, default=UNCACHED_SONGS)
    parser.add_argument("--fakes-in-process", action="store_true",
                        help="run the fake Spotify and audio CDN in the bot's process (the old setup)")
    parser.add_argument("--cold-downloads", action="store_true",
                        help="do not start the download workers before the uncached burst")
    args = parser.parse_args()
    asyncio.run(main(args.cached, args.uncached, args.fakes_in_process, not args.cold_downloads))
