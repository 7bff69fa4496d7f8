"""Latency of `/mood` inside the bot, through the Telegram front-end, for songs already in the cache.

The real bot (python-telegram-bot, use cases, Spotify resolver over spotipy, database) runs against
the fake Telegram Bot API, which runs in a process of its own as Telegram's servers are not on the
bot's CPU (benchmarks/remote_telegram.py), and the fake Spotify. `CONCURRENT` users each send
`/mood <song>` at the same moment; a song's latency runs from the moment getUpdates hands the update
to the bot to the moment the answer (the message naming the mood) reaches the fake server. The bot fetches
updates only as fast as it answers them (bot/frontends/telegram_flow.py), so in a burst some wait at
"Telegram" first: the "from send" columns time each answer from the moment the user's message
reached the fake, which is what the user waits. The classifier is never needed: every song is
pre-seeded in the tracks collection.

Rows:
- "fake Bot API round trip": a bare sendMessage to the fake server, the floor of any reply.
- "as shipped (overall 30 msg/s)": the front-end as shipped; Telegram's 30 messages/s bot-wide limit
  dominates (200 API calls for 200 answers take ~7 s whatever the bot does).
- "overall limit off (bot overhead)": the same bot with that limit off: the bot's own overhead;
  then the same bot answering `SEQUENTIAL` users one at a time (no queueing behind other updates).
- "..., inbox off": the same without keeping the updates until answered (bot/usecases/inbox.py),
  as before 2026-12-05: what keeping costs.

    .venv/bin/python benchmarks/telegram_latency.py [--concurrent 200]
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
from remote_telegram import RemoteTelegramBotAPI, RoundResult  # noqa: E402

from bot.frontends.telegram import MAX_RETRIES, BoundedRateLimiter, TelegramFrontend  # noqa: E402
from inference.pool import Classifier  # noqa: E402
from inference.result import MOODS, MoodResult  # noqa: E402
from storage.models import StoredMood, TrackRecord  # noqa: E402
from tests.conftest import SHARED_DATA  # noqa: E402
from tests.dbserver import DBServer  # noqa: E402
from tests.e2e.wiring import TELEGRAM_TOKEN, Catalog, bot_settings, load_songs, running_bot  # noqa: E402

CONCURRENT = 200
SONGS = 20
WARM_UP_USERS = 20
ANSWER_TIMEOUT_S = 120.0
TARGET_P50_MS, TARGET_P99_MS = 50.0, 150.0
FIRST_USER = 10_000
REFERENCE_CALLS = 200
SEQUENTIAL = 50  # users who ask one after the other, each after the previous answer


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def seed_tracks(db, songs) -> None:
    """Every song already classified, as a previous /mood would have left it."""
    now = datetime.now(timezone.utc)
    for number, song in enumerate(songs):
        probabilities = {m: (0.7 if i == number % len(MOODS) else 0.1) for i, m in enumerate(MOODS)}
        result = MoodResult.from_probabilities(probabilities, model="main", model_version="bench")
        await db.tracks.save(TrackRecord(
            key=f"spotify:{song.spotify_id}", title=song.title, artists=[song.artist], album="4Q",
            spotify_id=song.spotify_id, spotify_url=f"https://open.spotify.com/track/{song.spotify_id}",
            mood=StoredMood(result.mood, result.probabilities, result.valence, result.arousal, "main", "bench"),
            classified_at=now,
        ))


async def remote_round(fake: RemoteTelegramBotAPI, songs, users: range) -> RoundResult:
    """All `users` send /mood at once, through the out-of-process fake."""
    messages = [(user, f"/mood {songs[number % len(songs)].query}") for number, user in enumerate(users)]
    return await fake.answer_round(messages, ANSWER_TIMEOUT_S)


async def reference(fake) -> list[float]:
    """Round trips of a bare sendMessage to the fake server, one at a time, over aiohttp as the bot."""
    url = f"{fake.base_url}{TELEGRAM_TOKEN}/sendMessage"
    times = []
    async with aiohttp.ClientSession() as client:
        for _ in range(REFERENCE_CALLS):
            started = time.perf_counter()
            async with client.post(url, data={"chat_id": "1", "text": "ping"}) as response:
                response.raise_for_status()
                await response.read()
            times.append((time.perf_counter() - started) * 1000)
    return times


def frontend_factory(limiter: BoundedRateLimiter, keep: bool):
    def made(settings, usecases) -> TelegramFrontend:
        frontend = TelegramFrontend(settings, usecases, rate_limiter=limiter, poll_timeout_s=1)
        if not keep:
            frontend.flow.arrivals = None
        return frontend
    return made


async def measure(label: str, limiter: BoundedRateLimiter, catalog: Catalog, uri: str, concurrent: int,
                  classifier: Classifier, sequential: int = 0, keep: bool = True) -> list[tuple[str, RoundResult]]:
    fake = await RemoteTelegramBotAPI(TELEGRAM_TOKEN).start()
    settings = bot_settings(catalog, uri, f"bench_{uuid.uuid4().hex[:8]}", Path(tempfile.mkdtemp()),
                            telegram_token=TELEGRAM_TOKEN, telegram_api_url=fake.base_url,
                            telegram_file_url=fake.base_file_url)
    factory = frontend_factory(limiter, keep)
    try:
        async with running_bot(settings, classifier, [factory]) as bot:
            await seed_tracks(bot.db, catalog.songs)
            # Warm up: connections, the resolver's cache of the songs.
            await remote_round(fake, catalog.songs, range(FIRST_USER, FIRST_USER + WARM_UP_USERS))
            users = range(FIRST_USER + WARM_UP_USERS, FIRST_USER + WARM_UP_USERS + concurrent)
            rows = [(label, await remote_round(fake, catalog.songs, users))]
            if sequential:  # the same bot, one user at a time: the latency without queueing
                alone = [await remote_round(fake, catalog.songs, range(user, user + 1))
                         for user in range(users.stop, users.stop + sequential)]
                rows.append((f"{label}, 1 at a time", RoundResult(
                    [ms for r in alone for ms in r.latencies_ms], sum(r.errors for r in alone),
                    [ms for r in alone for ms in r.from_send_ms])))
    finally:
        await fake.stop()
    return rows


def table(rows: list[tuple[str, RoundResult]], reference_p50: float) -> str:
    lines = [f"{'configuration':<45} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
             f"{'p50/ref':>8} {'errors':>6} {'send p50':>9} {'send p99':>9}"]
    for label, result in rows:
        values, sent = result.latencies_ms, result.from_send_ms
        if values:
            p50, p99 = statistics.median(values), percentile(values, 0.99)
            lines.append(f"{label:<45} {len(values):>5} {p50:>8.1f} {p99:>8.1f} {max(values):>8.1f} "
                         f"{p50 / reference_p50:>8.1f} {result.errors:>6} {statistics.median(sent):>9.1f} "
                         f"{percentile(sent, 0.99):>9.1f}")
        else:
            lines.append(f"{label:<45} {0:>5} {'-':>8} {'-':>8} {'-':>8} {'-':>8} {result.errors:>6} "
                         f"{'-':>9} {'-':>9}")
    lines.append(f"target (no overall limit): p50 <= {TARGET_P50_MS:.0f} ms, p99 <= {TARGET_P99_MS:.0f} ms, 0 errors "
                 "(inside the bot); 'send' columns: from the user's message reaching the fake")
    return "\n".join(lines)


async def main(concurrent: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    songs = load_songs(SHARED_DATA, SONGS)
    server = DBServer().start()
    catalog = Catalog.start(songs, Path(tempfile.mkdtemp(prefix="moodbot-bench-")))
    # Never started: every song is cached, so a classification would be an error (and count as one).
    classifier = Classifier(Path(tempfile.mkdtemp()))
    try:
        fake = await RemoteTelegramBotAPI(TELEGRAM_TOKEN).start()
        ref = await reference(fake)
        await fake.stop()
        rows = [("fake Bot API round trip (reference)", RoundResult(ref, 0, ref))]
        rows += await measure("as shipped (overall 30 msg/s)", BoundedRateLimiter(max_retries=MAX_RETRIES),
                              catalog, server.uri, concurrent, classifier)
        rows += await measure("overall limit off (bot overhead)",
                              BoundedRateLimiter(overall_max_rate=0, max_retries=MAX_RETRIES),
                              catalog, server.uri, concurrent, classifier, sequential=SEQUENTIAL)
        rows += await measure("overall limit off, inbox off",
                              BoundedRateLimiter(overall_max_rate=0, max_retries=MAX_RETRIES),
                              catalog, server.uri, concurrent, classifier, sequential=SEQUENTIAL, keep=False)
    finally:
        catalog.stop()
        server.stop()
    print(f"/mood of cached songs, {concurrent} users at once, latency inside the bot")
    print(table(rows, statistics.median(ref)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", type=int, default=CONCURRENT)
    asyncio.run(main(parser.parse_args().concurrent))
