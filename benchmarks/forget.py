"""/forget on a large database: this tree's erasure against an earlier commit's.

    .venv/bin/python -m benchmarks.forget [--baseline HEAD] [--requests 100000] [--journal 20000] [--runs 7]

Seeds the storage benchmark's data (2 000 members' requests and journal entries over 20 servers),
and for each member timed a voice note of theirs that another member asked the mood of in a server
and one that another put in their journal, both titled by their name and kept with their id
(`sender`); the requests and the journal are summed up per member and track, as migrations 7 and
17 do (the journal's summaries, `journal_tracks`, came in b6fae3b: this tree's /forget erases the
member's and renames the sender's; a baseline before it has none to touch). Then erases a member
at a time (`PrivacyRepo.erase_counted`, what /forget does once its outbox and settings are done),
a different member each run: first with `storage/privacy.py` and `storage/place_tracks.py` as they
were at `--baseline` (read with `git show`) and the indexes its schema made, then with this
tree's and its `sender` indexes (migration 16). Both must take the member's name out of the same
two records: the script stops if they do not. Prints the medians.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import timedelta

from benchmarks import storage as seeded
from benchmarks.large_server import baseline_module
from storage import journal_tracks, place_tracks
from storage.codec import journal_to_doc, request_to_doc, user_filter
from storage.database import Database
from storage.embedded import EmbeddedServer
from storage.models import MoodRequest
from storage.schema import INDEXES, JOURNAL, JOURNAL_TRACKS, REQUESTS, ensure_indexes

VOICE_NOTE = "Voice note by Member {i}, 5 Dec 2026"


def voice_notes_of(i: int, rng: random.Random) -> tuple[dict, dict]:
    """Member i's voice note asked about by the member after them, and journaled by the one before."""
    sender = seeded.user_ref(i)
    asker, writer = seeded.user_ref(i + 1), seeded.user_ref(i - 1)
    key = f"sha256:voice{i}"
    request = MoodRequest(asker, seeded.place_of(i + 1), key, "sad", seeded.NOW - timedelta(days=1),
                          title=VOICE_NOTE.format(i=i), source_link=f"https://t.me/c/1/{i}", sender=sender.user_id)
    entry = seeded.journal_entry(writer, seeded.NOW.date(), f"voice-{i}", rng)
    entry = replace(entry, track_key=key, track_title=VOICE_NOTE.format(i=i), place=seeded.place_of(i - 1),
                    sender=sender.user_id)
    return request_to_doc(request), journal_to_doc(entry)


async def run(baseline: str, requests: int, journal: int, runs: int) -> None:
    rng = random.Random(seeded.SEED)
    timed_members = iter(range(1, seeded.USERS, 7))  # apart: none is another's asker or writer
    sides = (baseline, "now")
    chosen = [next(timed_members) for _ in range(len(sides) * (runs + 1))]  # +1: each side's warm-up
    with tempfile.TemporaryDirectory(prefix="moodbot-bench-forget-") as data_dir, EmbeddedServer(data_dir) as server:
        db = await Database.connect(server.uri, "bench")
        await db.init()
        for name in (REQUESTS, JOURNAL):  # as the baseline's schema left them: no `sender` index
            await db.db[name].drop_index("sender")
        await seeded.insert_batches(db, "users", seeded.seed_users(rng))
        await seeded.insert_batches(db, "requests", seeded.seed_requests(rng, requests))
        await seeded.insert_batches(db, "journal", seeded.seed_journal(rng, journal))
        notes = [voice_notes_of(i, rng) for i in chosen]
        await seeded.insert_batches(db, "requests", [request for request, _ in notes])
        await seeded.insert_batches(db, "journal", [entry for _, entry in notes])
        await place_tracks.summarize(db.db["requests"], db.db["place_tracks"])
        await journal_tracks.summarize(db.db["journal"], db.db["journal_tracks"])  # as the adds keep them

        old_tracks = baseline_module(baseline, "storage/place_tracks.py")
        old = baseline_module(baseline, "storage/privacy.py", place_tracks=old_tracks)
        repos = {baseline: old.PrivacyRepo(db.db, db.requests, db.journal), "now": db.privacy}
        members = iter(chosen)
        times: dict[str, list[float]] = {}
        held: dict[str, list[int]] = {}  # the member's journal summaries before the erasure
        for side in sides:
            if side == "now":
                for name in (REQUESTS, JOURNAL):
                    await ensure_indexes(db.db[name], INDEXES[name])
            for run_number in range(runs + 1):
                member = seeded.user_ref(next(members))
                summaries = await db.db[JOURNAL_TRACKS].count_documents(user_filter(member))
                started = time.perf_counter()
                erased = await repos[side].erase_counted(member)
                if run_number:
                    times.setdefault(side, []).append(time.perf_counter() - started)
                    held.setdefault(side, []).append(summaries)
                if erased.unnamed != 2:
                    raise SystemExit(f"{side}: /forget renamed {erased.unnamed} records, not 2")
                if side == "now" and await db.db[JOURNAL_TRACKS].count_documents(user_filter(member)):
                    raise SystemExit("now: /forget left summaries of the member's journal")
        await db.close()
    print(f"{seeded.USERS} users, {requests} requests, {journal} journal entries; one member erased a run "
          f"(their voice note asked about and journaled by others); median of {runs} runs each; "
          f"journal summaries of the member erased: {statistics.median(held['now']):.0f} (median; "
          f"a baseline before b6fae3b leaves them)")
    before, now = (statistics.median(times[side]) * 1000 for side in sides)
    print(f"| erasure (/forget) | {baseline} | now | ratio |")
    print("|---|---|---|---|")
    print(f"| median | {before:.0f} ms | {now:.0f} ms | {before / now:.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="HEAD", help="the git commit timed against this tree")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--journal", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(run(args.baseline, args.requests, args.journal, args.runs))


if __name__ == "__main__":
    main()
