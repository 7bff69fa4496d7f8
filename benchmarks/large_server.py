"""A very large server's playlist and mood of the week, this code against an earlier commit's.

    .venv/bin/python -m benchmarks.large_server [--baseline HEAD] [--runs 3] [--data-dir DIR] [--places 1]
                                                [--journal-members 200]

Seeds one server of 2 000 members with 100 000 mood requests and 10 000 journal entries (the
storage benchmark's data with `--places 1`; `--places 20` spreads them over 20 servers, as that
benchmark does by default, and times the first), then times the playlist (top 20 sad) and the mood of
the week of this working tree's `storage/playlists.py` and of the one at `--baseline` (read with
`git show`), in turn on the same data, and prints the medians. `--journal-members N` seeds, instead
of those 10 000 entries, a year of daily entries (365 each) for N of the server's members, as
many of the members who keep a journal would write. Both must give the same answers:
the script stops if they differ. `--data-dir` keeps the seeded database for the next run (seeding
takes about a minute), and `--profile` sums up the commands one call of this code sends, per command
and collection: how many, their time and the documents they returned.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import bson
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener

from benchmarks import storage as seeded
from storage import journal_tracks, place_tracks
from storage.codec import journal_to_doc
from storage.database import Database
from storage.embedded import EmbeddedServer
from storage.playlists import PlaylistQueries

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 100_000
JOURNAL = 10_000
YEAR_DAYS = 365  # of each member's journal, with --journal-members
SEEDED_MARK = "large_server_seeded"


class Commands(CommandListener):
    """Each command's name, collection, time and documents returned (its first or next batch)."""

    def __init__(self) -> None:
        self.started_at: dict[int, tuple[str, Any, float]] = {}
        self.done: list[tuple[str, Any, float, int | None]] = []

    def started(self, event) -> None:
        self.started_at[event.request_id] = (event.command_name, event.command.get(event.command_name),
                                             time.perf_counter())

    def succeeded(self, event) -> None:
        name, target, at = self.started_at.pop(event.request_id)
        cursor = event.reply.get("cursor", {})
        batch = cursor.get("firstBatch", cursor.get("nextBatch"))
        self.done.append((name, target, (time.perf_counter() - at) * 1000, None if batch is None else documents(batch)))

    def failed(self, event) -> None:
        self.started_at.pop(event.request_id, None)


def baseline_module(ref: str, path: str, **names: Any) -> Any:
    """The module at `path` as it was at `ref`, its `names` (other modules it imports) replaced."""
    source = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader(f"baseline_{Path(path).stem}", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    exec(compile(source, f"{ref}:{path}", "exec"), module.__dict__)
    module.__dict__.update(names)
    return module


def documents(batch: list[Any]) -> int:
    """How many documents a reply's batch holds: a raw batch's (`find_raw_batches`) comes as one
    item, its documents' BSON undecoded."""
    return sum(len(bson.decode_all(item)) if isinstance(item, bytes) else 1 for item in batch)


def baseline_queries(ref: str, db: Database) -> PlaylistQueries:
    """`PlaylistQueries` as `storage/playlists.py` was at `ref`, on the same database."""
    return baseline_module(ref, "storage/playlists.py").PlaylistQueries(db.db, db.requests)


def seed_year_journals(rng: random.Random, members: int) -> list[dict]:
    """A daily entry for the past year (YEAR_DAYS) of each of the first `members` users."""
    today = seeded.NOW.date()
    return [journal_to_doc(seeded.journal_entry(seeded.user_ref(i), today - timedelta(days=d), f"y{i}-{d}", rng))
            for i in range(members) for d in range(YEAR_DAYS)]


async def seed(db: Database, places: int, journal_members: int) -> None:
    mark = await db.db["meta"].find_one({"_id": SEEDED_MARK})
    if mark is not None:
        if (mark.get("places", 1), mark.get("journal_members", 0)) != (places, journal_members):
            raise SystemExit(f"the data there was seeded for --places {mark.get('places', 1)} "
                             f"--journal-members {mark.get('journal_members', 0)}")
        return
    rng = random.Random(seeded.SEED)
    started = time.perf_counter()
    await seeded.insert_batches(db, "users", seeded.seed_users(rng))
    await seeded.insert_batches(db, "tracks", seeded.seed_tracks())
    await seeded.insert_batches(db, "requests", seeded.seed_requests(rng, REQUESTS, places))
    await seeded.insert_batches(db, "journal", seed_year_journals(rng, journal_members) if journal_members
                                else seeded.seed_journal(rng, JOURNAL))
    await place_tracks.summarize(db.db["requests"], db.db["place_tracks"])
    await journal_tracks.summarize(db.db["journal"], db.db["journal_tracks"])  # as the adds keep them
    await db.db["meta"].insert_one({"_id": SEEDED_MARK, "places": places, "journal_members": journal_members})
    print(f"seeded in {time.perf_counter() - started:.1f} s")


async def timed(action) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await action()
    return time.perf_counter() - started, result


async def run(baseline: str, runs: int, data_dir: str, profile: bool, places: int, journal_members: int) -> None:
    place = seeded.place_of(0, places)
    with EmbeddedServer(data_dir) as server:
        commands = Commands()
        client = AsyncMongoClient(server.uri, tz_aware=True, tzinfo=timezone.utc, event_listeners=[commands])
        db = Database(client, client["bench"])
        await db.init()
        await seed(db, places, journal_members)
        sides = {baseline: baseline_queries(baseline, db), "now": db.playlists}
        cases = {
            "playlist (top 20 sad)": lambda q: q.playlist(place, "sad"),
            "mood of the week": lambda q: q.server_mood_of_week(place, seeded.NOW),
        }
        times: dict[tuple[str, str], list[float]] = {}
        for case, action in cases.items():
            answers = {}
            for _ in range(runs):  # in turn: the shared machine's load falls on both sides
                for side, queries in sides.items():
                    seconds, answers[side] = await timed(lambda: action(queries))
                    times.setdefault((case, side), []).append(seconds)
            if answers[baseline] != answers["now"]:
                raise SystemExit(f"{case}: the answers differ\n{answers[baseline]}\n{answers['now']}")
        if profile:
            for case, action in cases.items():
                commands.done.clear()
                seconds, _ = await timed(lambda: action(db.playlists))
                print(f"{case}, now: {seconds * 1000:.0f} ms")
                summed: dict[str, list[float]] = {}
                for name, target, ms, returned in commands.done:
                    # A getMore goes on the command before it (its target is a cursor id).
                    what = f"{name} {target}" if isinstance(target, str) else list(summed)[-1]
                    total = summed.setdefault(what, [0, 0.0, 0])
                    total[0] += name != "getMore"
                    total[1] += ms
                    total[2] += returned or 0
                for what, (sent, ms, returned) in summed.items():
                    print(f"    {what}: {sent} commands, {ms:.0f} ms, {returned} documents")
        await client.close()
    entries = f"{journal_members} × {YEAR_DAYS}" if journal_members else f"{JOURNAL}"
    print(f"{seeded.USERS} users, {REQUESTS} requests, {entries} journal entries in {places} server(s), "
          f"the first timed; median of {runs} runs, in turn")
    print(f"| operation | {baseline} | now |")
    print("|---|---|---|")
    for case in cases:
        row = [f"{statistics.median(times[(case, side)]):.2f} s" for side in sides]
        print(f"| {case} | {' | '.join(row)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="HEAD", help="the git commit timed against this tree")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-dir", help="keep the seeded database here (seeded once)")
    parser.add_argument("--profile", action="store_true", help="list the commands one call sends")
    parser.add_argument("--places", type=int, default=1, help="servers the users are spread over")
    parser.add_argument("--journal-members", type=int, default=0,
                        help="members who journaled a year each (instead of 10 000 entries spread over all)")
    args = parser.parse_args()
    if args.data_dir:
        asyncio.run(run(args.baseline, args.runs, args.data_dir, args.profile, args.places, args.journal_members))
    else:
        with tempfile.TemporaryDirectory(prefix="moodbot-large-server-") as data_dir:
            asyncio.run(run(args.baseline, args.runs, data_dir, args.profile, args.places, args.journal_members))


if __name__ == "__main__":
    main()
