"""How much a flood of heavy commands stalls everyone else: the event loop's lag while one user
(or several) sends a burst of /stats, /servermood, /export or /playlist.

    .venv/bin/python -m tests.abuse.flood [--command stats] [--burst 20] [--users 1] [--runs 3]

A throwaway SecantusDB; the flooding users each have a heavy journal (ENTRIES answers over two
years) and have asked about songs in one group. While the burst is answered, a ticker sleeps
TICK_S over and over (its overshoot is the loop's lag) and another user's /journal list is timed
every PROBE_EVERY_S. The use cases are wired as the app wires them (`build_app_usecases`, default
Settings), so the limits the bot ships with are in place. Prints one table of medians over the runs;
the first row is the quiet loop, measured in the same run.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import datetime, timedelta, timezone

from benchmarks.storage import insert_batches, journal_entry
from bot.config import Settings
from bot.replies import Caller, ErrorReply
from storage.codec import journal_to_doc
from storage.database import Database
from tests.dbserver import DBServer
from tests.faults.support import cache_youtube_song

ENTRIES = 700
TICK_S = 0.01
PROBE_EVERY_S = 0.05
GROUP = "chat:-500"
SEED = 7


def flooder(n: int) -> Caller:
    return Caller("chat", f"heavy{n}", place=GROUP, chat_id=f"heavy{n}")


PROBE = Caller("chat", "light", place=None, chat_id="light")


async def seed(db: Database, users: int) -> None:
    rng = random.Random(SEED)
    today = datetime.now(timezone.utc).date()
    docs = []
    for n in range(users):
        ref = flooder(n)
        # Most evenings one answer over two years: ~700 entries.
        days = [d for d in range(2 * 365) if rng.random() < ENTRIES / (2 * 365)][:ENTRIES]
        docs += [journal_to_doc(journal_entry(_ref(ref), today - timedelta(days=d), f"{ref.user_id}-{d}", rng))
                 for d in days]
    docs += [journal_to_doc(journal_entry(_ref(PROBE), today - timedelta(days=d), f"light-{d}", rng))
             for d in range(30)]
    await insert_batches(db, "journal", docs)


def _ref(caller: Caller):
    from storage.models import UserRef

    return UserRef(caller.platform, caller.user_id)


async def seed_group(usecases, db: Database, users: int) -> None:
    """Each flooder asks about a few songs in the group, so it has a mood of the week and playlists."""
    for n in range(users):
        for song in range(3):
            link = await cache_youtube_song(db, f"{n:05d}song{song:02d}"[:11], f"Song {n}.{song}")
            await usecases.mood.run(flooder(n), link)


def command(usecases, name: str):
    return {
        "stats": lambda c: usecases.journal.stats(c),
        "servermood": lambda c: usecases.playlists.server_mood(c),
        "export": lambda c: usecases.privacy.export(c),
        "playlist": lambda c: usecases.playlists.playlist(c, "happy"),
    }[name]


async def measure(action, duration_floor: float = 0.5) -> dict[str, float]:
    """Runs `action` while ticking and probing; returns the ticker's lag and the probe's latency."""
    lags: list[float] = []
    probes: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(TICK_S)
            lags.append(time.perf_counter() - started - TICK_S)

    async def prober(usecases) -> None:
        while not done.is_set():
            started = time.perf_counter()
            await usecases.journal.list(PROBE)
            probes.append(time.perf_counter() - started)
            await asyncio.sleep(PROBE_EVERY_S)

    tasks = [asyncio.create_task(ticker()), asyncio.create_task(prober(measure.usecases))]
    started = time.perf_counter()
    result = await action()
    elapsed = time.perf_counter() - started
    if elapsed < duration_floor:
        await asyncio.sleep(duration_floor - elapsed)
    done.set()
    await asyncio.gather(*tasks)
    lags.sort()
    probes.sort()
    return {
        "wall_s": elapsed,
        "lag_p50_ms": 1000 * statistics.median(lags),
        "lag_p95_ms": 1000 * lags[int(0.95 * (len(lags) - 1))],
        "lag_max_ms": 1000 * lags[-1],
        "probe_p50_ms": 1000 * statistics.median(probes),
        "probe_max_ms": 1000 * probes[-1],
        "result": result,
    }


async def run(name: str, burst: int, users: int, runs: int) -> None:
    from bot.app import build_app_usecases

    server = DBServer().start()
    try:
        db = await Database.connect(server.uri, "flood")
        await db.init()
        settings = Settings(_env_file=None)
        usecases = build_app_usecases(settings, db, None, resolver=None, fetcher=None, writer=None)
        measure.usecases = usecases
        await seed(db, users)
        await seed_group(usecases, db, users)
        await command(usecases, name)(flooder(0))  # warm-up: matplotlib's import, the fonts
        rows: dict[str, list[dict]] = {"quiet loop": [], f"{burst} x /{name}, {users} user(s)": []}
        for run_no in range(runs):
            rows["quiet loop"].append(await measure(lambda: asyncio.sleep(1.0)))

            async def flood() -> list:
                return await asyncio.gather(*(act(flooder(i % users)) for i in range(burst)))

            # Each run with the limits fresh, as if the flooders had been quiet for a while.
            usecases = measure.usecases = build_app_usecases(settings, db, None, resolver=None, fetcher=None,
                                                             writer=None)
            act = command(usecases, name)
            rows[f"{burst} x /{name}, {users} user(s)"].append(await measure(flood))
        print(f"{'':32} {'wall s':>7} {'lag p50':>8} {'lag p95':>8} {'lag max':>8} "
              f"{'list p50':>9} {'list max':>9} {'refused':>8}")
        for label, samples in rows.items():
            med = {k: statistics.median(s[k] for s in samples) for k in samples[0] if k != "result"}
            results = samples[-1]["result"]
            refused = (sum(isinstance(r, ErrorReply) and r.retry_after_s is not None for r in results)
                       if isinstance(results, list) else "")
            print(f"{label:32} {med['wall_s']:7.2f} {med['lag_p50_ms']:6.1f}ms {med['lag_p95_ms']:6.1f}ms "
                  f"{med['lag_max_ms']:6.1f}ms {med['probe_p50_ms']:7.1f}ms {med['probe_max_ms']:7.1f}ms "
                  f"{refused!s:>8}")
        await db.close()
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", choices=("stats", "servermood", "export", "playlist"), default="stats")
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.command, args.burst, args.users, args.runs))


if __name__ == "__main__":
    main()
