"""Migration 20 (`storage/summaries_agree.py`) on a very large server, against summing it all up again.

    .venv/bin/python -m benchmarks.summaries_agree [--runs 3] [--members 2000] [--requests 100000]
                                                   [--users-per-batch 200]

Seeds benchmarks/large_server.py's server once (benchmarks/storage.py's users, tracks and
requests, all in one place, summed up per member and track as migration 7 does; without its
journal, which migration 20 does not read), then for each run starts a server on a fresh copy of
it and times, in turn:
- (a) `agree` where every summary agrees with the requests already;
- (b) `agree` after `DAMAGED` orphaned summaries naming a sender, each with its member's document,
  as a moodbot before ce59893 left a voice note's request the database refused, and `DAMAGED`
  votes left out (requests stored, not summed up: a kill between the two), one of each for every
  other member;
- (c) every summary deleted and summed up again from every request (`place_tracks.summarize`,
  which makes every member's document again), what a migration could have done instead.
While each runs, a 5 ms ticker on the same loop records its longest stall (benchmarks/scheduler.py's).
(a) must leave the summaries and members' documents as seeded, and (b) as (c) makes them: the
script stops if not, so no figure of a migration that got them wrong is printed. Prints one table
of medians, with their ratio to (a)'s. With the defaults it took 20 minutes on 2026-12-07, 6 of
them seeding, on the shared 2-core machine under other work (a load of 5 to 6.6).
"""
from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Awaitable, Callable
from unittest import mock

import pymongo

from benchmarks import storage as seeded
from benchmarks.scheduler import stalled
from storage import place_tracks, summaries_agree
from storage.codec import request_to_doc
from storage.database import UPGRADE_TIMEOUT_S, Database
from storage.embedded import EmbeddedServer
from storage.models import MoodRequest
from storage.schema import META, PLACE_MEMBERS, PLACE_TRACKS, REQUESTS

DAMAGED = 1000  # orphaned summaries, and votes left out
PLACE = seeded.place_of(0, 1)  # every member's one place
CASES = {
    "a": "(a) agree, every summary agrees already",
    "b": f"(b) agree, {DAMAGED} orphans naming a sender + {DAMAGED} votes left out",
    "c": "(c) every summary deleted and summed up again (place_tracks.summarize)",
}


async def seed(db: Database, members: int, requests: int) -> None:
    """benchmarks/large_server.py's server, less its journal: with the defaults, the same users,
    tracks and requests (the same seed, drawn in the same order)."""
    rng = random.Random(seeded.SEED)
    with mock.patch.object(seeded, "USERS", members):  # benchmarks/storage.py's generators draw from range(USERS)
        users, asked = seeded.seed_users(rng), seeded.seed_requests(rng, requests, places=1)
    await seeded.insert_batches(db, "users", users)
    await seeded.insert_batches(db, "tracks", seeded.seed_tracks())
    await seeded.insert_batches(db, REQUESTS, asked)
    await place_tracks.summarize(db.db[REQUESTS], db.db[PLACE_TRACKS])


def damage(members: int) -> tuple[list[dict], list[dict]]:
    """What an earlier moodbot left: voice notes' requests summed up but not stored (orphans), each
    titled by the name of its sender (the member after the asker) and kept with their id, and
    requests stored but not summed up (votes left out), later than any seeded, so each changes a
    summary. Member 2k gets the k-th of each."""
    orphans, left_out = [], []
    for k in range(DAMAGED):
        asker, sender = seeded.user_ref(2 * k % members), seeded.user_ref((2 * k + 1) % members)
        orphans.append(request_to_doc(MoodRequest(
            asker, PLACE, f"sha256:voice{k}", "sad", seeded.NOW - timedelta(days=1),
            title=f"Voice note by Member {(2 * k + 1) % members}", source_link=f"https://t.me/c/1/{k}", sender=sender.user_id)))
        left_out.append(request_to_doc(MoodRequest(asker, PLACE, f"spotify:t{k % seeded.TRACKS}", "happy",
                                                   seeded.NOW + timedelta(seconds=k))))
    return orphans, left_out


async def summaries_of(db: Database) -> tuple[list[dict], list[dict]]:
    """The summaries and the members' documents, without their ids, in key order."""
    def key(doc: dict) -> tuple:
        return doc["place"], doc["platform"], doc["user_id"], doc.get("track_key", "")

    read = [await db.db[name].find(projection={"_id": 0}).to_list() for name in (PLACE_TRACKS, PLACE_MEMBERS)]
    return sorted(read[0], key=key), sorted(read[1], key=key)


async def timed(action: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Seconds `action` took, and the event loop's longest stall meanwhile. With the 15 minutes a
    start's upgrade has (migration 7's `$group` over every request outlasts a call's 30 s)."""
    done = asyncio.Event()
    probe = asyncio.create_task(stalled(done))
    started = time.perf_counter()
    try:
        with pymongo.timeout(UPGRADE_TIMEOUT_S):
            await action()
    finally:
        done.set()
    return time.perf_counter() - started, await probe


async def one_run(data_dir: Path, members: int, users_per_batch: int) -> dict[str, tuple[float, float]]:
    with EmbeddedServer(data_dir) as server:
        db = await Database.connect(server.uri, "bench")
        requests, summary, meta = db.db[REQUESTS], db.db[PLACE_TRACKS], db.db[META]

        async def agree() -> None:
            await summaries_agree.agree(requests, summary, meta, users_per_batch)

        async def summed_up_again() -> None:
            await summary.delete_many({})
            await place_tracks.summarize(requests, summary)

        times = {}
        seeded_summaries = await summaries_of(db)
        times["a"] = await timed(agree)
        if await summaries_of(db) != seeded_summaries:
            raise SystemExit("(a): agree changed summaries that agreed with the requests")
        orphans, left_out = damage(members)
        await place_tracks.record(summary, orphans)
        await place_tracks.record_members(summary, orphans)
        await seeded.insert_batches(db, REQUESTS, left_out)
        times["b"] = await timed(agree)
        agreed = await summaries_of(db)
        times["c"] = await timed(summed_up_again)
        if agreed != await summaries_of(db):
            raise SystemExit("(b): agree left summaries or members' documents other than the requests make")
        await db.close()
    return times


async def seeded_template(template: Path, members: int, requests: int) -> tuple[float, int, int]:
    """The seeded database, in `template` (its server stopped); the seconds it took, its summaries
    and its members' documents."""
    started = time.perf_counter()
    with EmbeddedServer(template) as server:
        db = await Database.connect(server.uri, "bench")
        await db.init()
        await seed(db, members, requests)
        counts = [await db.db[name].count_documents({}) for name in (PLACE_TRACKS, PLACE_MEMBERS)]
        await db.close()
    return time.perf_counter() - started, *counts


def run(runs: int, members: int, requests: int, users_per_batch: int) -> None:
    started = time.perf_counter()
    times: dict[str, list[tuple[float, float]]] = {case: [] for case in CASES}
    with tempfile.TemporaryDirectory(prefix="moodbot-bench-agree-") as folder:
        template = Path(folder) / "seeded"
        seed_s, summaries, documents = asyncio.run(seeded_template(template, members, requests))
        for number in range(runs):
            copy = Path(folder) / f"run{number}"
            shutil.copytree(template, copy)
            for case, measured in asyncio.run(one_run(copy, members, users_per_batch)).items():
                times[case].append(measured)
            shutil.rmtree(copy)
    print(f"{members} members, {requests} requests in one place, {summaries} summaries, {documents} members' "
          f"documents (seeded in {seed_s:.0f} s); batches of {users_per_batch} users; median of {runs} runs, "
          f"each on a fresh copy of the seeded database, (a), (b), (c) in turn; {time.perf_counter() - started:.0f} s in all")
    reference = statistics.median(seconds for seconds, _ in times["a"])
    print("| migration 20 | median | × (a) | each run | longest event-loop stall (median) |")
    print("|---|---|---|---|---|")
    for case, name in CASES.items():
        median = statistics.median(seconds for seconds, _ in times[case])
        each = ", ".join(f"{seconds:.1f}" for seconds, _ in times[case])
        stall_ms = statistics.median(stall for _, stall in times[case]) * 1000
        print(f"| {name} | {median:.1f} s | {median / reference:.2f} | {each} s | {stall_ms:.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--members", type=int, default=seeded.USERS)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--users-per-batch", type=int, default=summaries_agree.USERS_PER_BATCH)
    args = parser.parse_args()
    run(args.runs, args.members, args.requests, args.users_per_batch)


if __name__ == "__main__":
    main()
