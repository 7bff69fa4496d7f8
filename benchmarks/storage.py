"""Storage latency on a seeded throwaway SecantusDB: the bot's read and write paths.

    .venv/bin/python -m benchmarks.storage [--requests 100000] [--journal 10000] [--runs 7] [--places 20]

Seeds mood requests, journal entries, users and tracks with bulk `insert_many` in batches (and
sums the requests up per place, member and track, as migration 7 does, and the journal per member
and track, as migration 17 does: the playlists read those), then times each query
several times and prints one table of medians, with the ratio to a `ping` round trip measured in
the same run. A part of an answer added to its entry's note (`add_to_note`) is timed as it is and
as it was before 0998518 (one find_one_and_update, which SecantusDB runs as a scan of the whole
journal), on the same database: the newest entry, as a part's always is. `--places 1` puts every user and request in the one server timed.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from typing import Awaitable, Callable

from storage import journal_tracks, place_tracks
from storage.codec import journal_to_doc, request_to_doc, track_to_doc, user_fields
from storage.database import Database
from storage.embedded import EmbeddedServer
from storage.models import JournalEntry, MoodRequest, TrackRecord, User, UserRef
from storage.tracks import TrackRepo

MOODS = ("happy", "energetic", "sad", "calm")
PLATFORM = "chat"
USERS = 2000
PLACES = 20
TRACKS = 5000
OPTED_OUT_SHARE = 0.1
HISTORY_DAYS = 120
HEAVY_JOURNAL_DAYS = 365  # the user whose personal stats are timed
BATCH = 1000
SEED = 7
NOW = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
NOTE_BASELINE = "0998518^"  # add_to_note by find_one_and_update
ANSWER = "answer-1"  # the message that made the entry the parts are added to


def user_ref(i: int) -> UserRef:
    return UserRef(PLATFORM, f"u{i}")


def place_of(i: int, places: int = PLACES) -> str:
    return f"{PLATFORM}:guild{i % places}"


def popular_track(rng: random.Random) -> str:
    """Few tracks are asked for a lot, most rarely (roughly Zipf)."""
    return f"spotify:t{min(int(rng.paretovariate(1.1)) - 1, TRACKS - 1)}"


def seed_requests(rng: random.Random, n: int, places: int = PLACES) -> list[dict]:
    docs = []
    for _ in range(n):
        user = rng.randrange(USERS)
        at = NOW - timedelta(minutes=rng.randrange(HISTORY_DAYS * 24 * 60))
        request = MoodRequest(user_ref(user), place_of(user, places), popular_track(rng),
                              rng.choice(MOODS), at)
        docs.append(request_to_doc(request))
    return docs


def journal_entry(user: UserRef, day: date, prompt_id: str, rng: random.Random) -> JournalEntry:
    mood = rng.choice(MOODS)
    track = popular_track(rng)
    return JournalEntry(user=user, local_date=day, prompt_id=prompt_id, phrase="Song?",
                        reply_text=track, track_key=track, track_title=track, mood=mood,
                        valence=rng.uniform(-1, 1), arousal=rng.uniform(-1, 1),
                        created_at=datetime(day.year, day.month, day.day, 21, tzinfo=timezone.utc))


def seed_journal(rng: random.Random, n: int) -> list[dict]:
    today = NOW.date()
    heavy = [journal_entry(user_ref(0), today - timedelta(days=d), f"heavy-{d}", rng)
             for d in range(min(HEAVY_JOURNAL_DAYS, n))]
    rest = [journal_entry(user_ref(1 + rng.randrange(USERS - 1)),
                          today - timedelta(days=rng.randrange(HISTORY_DAYS)), f"j-{i}", rng)
            for i in range(n - len(heavy))]
    return [journal_to_doc(e) for e in heavy + rest]


def seed_users(rng: random.Random) -> list[dict]:
    return [{"platform": PLATFORM, "user_id": f"u{i}", "created_at": NOW,
             **user_fields(User(PLATFORM, f"u{i}", journal_enabled=i % 3 == 0,
                                share_with_server=rng.random() >= OPTED_OUT_SHARE))}
            for i in range(USERS)]


def isrc_of(i: int) -> str:
    """Every track has an ISRC, as nearly every Spotify track does; one in ten is the second
    release (single and album) of the recording before it, which the playlists count as one song."""
    return f"QZBEN{(i - 1 if i % 10 == 1 else i):07d}"


def seed_tracks() -> list[dict]:
    return [track_to_doc(TrackRecord(f"spotify:t{i}", f"Track {i}", [f"Artist {i % 300}"],
                                     spotify_id=f"t{i}", isrc=isrc_of(i))) for i in range(TRACKS)]


async def insert_batches(db: Database, collection: str, docs: list[dict]) -> None:
    for start in range(0, len(docs), BATCH):
        await db.db[collection].insert_many(docs[start:start + BATCH], ordered=False)


async def median_ms(action: Callable[[], Awaitable[object]], runs: int) -> float:
    await action()  # warm-up: connection, caches
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def run(requests: int, journal: int, runs: int, places: int) -> None:
    from benchmarks.large_server import baseline_module  # which imports this module
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory(prefix="moodbot-bench-") as data_dir:
        with EmbeddedServer(data_dir) as server:
            db = await Database.connect(server.uri, "bench")
            await db.init()
            started = time.perf_counter()
            await insert_batches(db, "users", seed_users(rng))
            await insert_batches(db, "tracks", seed_tracks())
            await insert_batches(db, "requests", seed_requests(rng, requests, places))
            await insert_batches(db, "journal", seed_journal(rng, journal))
            await place_tracks.summarize(db.db["requests"], db.db["place_tracks"])
            await journal_tracks.summarize(db.db["journal"], db.db["journal_tracks"])  # as the adds keep them
            seed_s = time.perf_counter() - started

            counter = iter(range(10**9))
            place = place_of(0, places)
            uncached_tracks = TrackRepo(db.db["tracks"], cache_size=0)  # every lookup goes to the database
            heavy = user_ref(0)
            middle = await db.journal.page(heavy, 10, skip=100)  # a page turned to, then ◀ / ▶ from it
            answered = journal_entry(user_ref(1), NOW.date(), "answered", rng)
            answered.answered_by = ANSWER
            await db.journal.add(answered)
            old_journal = baseline_module(NOTE_BASELINE, "storage/journal.py").JournalRepo(
                db.db["journal"], db.db["journal_tracks"], db.requests.erasure_lock)
            cases: list[tuple[str, Callable[[], Awaitable[object]]]] = [
                ("ping (reference)", lambda: db.client.admin.command("ping")),
                ("track lookup by key", lambda: uncached_tracks.get("spotify:t42")),
                ("track lookup by key, remembered (in-process LRU)", lambda: db.tracks.get("spotify:t42")),
                ("single journal insert", lambda: db.journal.add(
                    journal_entry(user_ref(1), NOW.date(), f"bench-{next(counter)}", rng))),
                (f"personal stats ({HEAVY_JOURNAL_DAYS} entries)",
                 lambda: db.journal.stats(user_ref(0), NOW.date())),
                ("journal page, the newest 10", lambda: db.journal.page(heavy, 10)),
                ("journal page from a cursor, older 10", lambda: db.journal.page(heavy, 10, before=middle.cursors[-1])),
                ("journal page from a cursor, newer 10", lambda: db.journal.page(heavy, 10, after=middle.cursors[0])),
                ("server playlist (top 20)", lambda: db.playlists.playlist(place, "sad")),
                ("server mood of the week", lambda: db.playlists.server_mood_of_week(place, NOW)),
                ("a part added to a note, before 0998518 (find_one_and_update)", lambda: old_journal.add_to_note(
                    user_ref(1), ANSWER, f"part {next(counter)}", " ")),
                ("a part added to a note (find_one, update_one, find_one)", lambda: db.journal.add_to_note(
                    user_ref(1), ANSWER, f"part {next(counter)}", " ")),
            ]
            medians = [(name, await median_ms(action, runs)) for name, action in cases]
            place_requests = await db.db["requests"].count_documents({"place": place})
            await db.close()

    reference = medians[0][1]
    print(f"seeded {requests} requests, {journal} journal entries, {USERS} users, "
          f"{TRACKS} tracks in {seed_s:.1f} s; {place_requests} requests in the timed place "
          f"(one of {places}); "
          f"median of {runs} runs")
    width = max(len(name) for name, _ in medians)
    print(f"| {'operation':<{width}} | {'median ms':>10} | {'x ping':>8} |")
    print(f"|{'-' * (width + 2)}|{'-' * 12}|{'-' * 10}|")
    for name, ms in medians:
        print(f"| {name:<{width}} | {ms:>10.3f} | {ms / reference:>8.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--journal", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--places", type=int, default=PLACES, help="servers the users are spread over")
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.journal, args.runs, args.places))


if __name__ == "__main__":
    main()
