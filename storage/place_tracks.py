"""What each member asked for in each place: one document per place, member and track key, with
the last answer they were told for it there (`latest` {at, mood}), the greatest title they
asked it by and, for an uploaded file, the greatest link to a message of the place that holds it
(`source_link`, absent where none of their requests had one), as `storage.playlists` would group
their requests.

Written with the requests (`RequestRepo`, before them: a request refused after its summary was
written is a vote for an answer the member was given), built for existing requests by migration 7,
rebuilt for a place that moved, erased by /forget and shown in /export. A server's playlist and
its members read it instead of every request ever made there: with 2 000 members and 100 000
requests in one place, the requests are 20 892 summaries (`benchmarks/storage.py --places 1`).
Each request in a place costs one more write, an upsert: about 1 ms on SecantusDB (a burst of
500 recorded requests took 0.53 s instead of 0.10 s).
"""
from __future__ import annotations

from itertools import groupby
from operator import itemgetter
from typing import Any, Iterable

from pymongo import DeleteMany, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000
BATCH = 1000  # updates per bulk_write, as the benchmark seeds


def summary_update(place: str, platform: str, user_id: str, track_key: str,
                   latest: dict[str, Any], title: str | None, source_link: str | None = None) -> UpdateOne:
    """Fold one answer (or a group of them, its `latest`, greatest `title` and `source_link`) into
    the summary. `$max` compares {at, mood} field by field as `$group`'s does, and any title or
    link over none."""
    greatest = {"latest": latest, "title": title, **({"source_link": source_link} if source_link else {})}
    return UpdateOne(
        {"user_id": user_id, "platform": platform, "place": place, "track_key": track_key},
        {"$max": greatest},
        upsert=True,
    )


def request_updates(docs: Iterable[dict[str, Any]]) -> list[UpdateOne]:
    """The summary updates for request documents; one asked outside any place counts in none."""
    return [summary_update(doc["place"], doc["platform"], doc["user_id"], doc["track_key"],
                           {"at": doc["created_at"], "mood": doc["mood"]}, doc.get("title"), doc.get("source_link"))
            for doc in docs if doc.get("place") is not None]


async def write(summary: AsyncCollection, updates: list[UpdateOne]) -> None:
    """Idempotent: an upsert that met another process's insert of the same key is done again."""
    for start in range(0, len(updates), BATCH):
        batch = updates[start:start + BATCH]
        try:
            await summary.bulk_write(batch, ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if not errors or any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            await summary.bulk_write([batch[e["index"]] for e in errors], ordered=False)


def summarize_pipeline(place: str | None, match: dict[str, Any] | None = None,
                       among: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [
        {"$match": match if match is not None else {"place": {"$ne": None} if place is None else place}},
        *([{"$match": among}] if among is not None else []),
        {"$group": {"_id": {"place": "$place", "platform": "$platform", "user_id": "$user_id",
                            "track_key": "$track_key"},
                    "latest": {"$max": {"at": "$created_at", "mood": "$mood"}},
                    "title": {"$max": "$title"}, "source_link": {"$max": "$source_link"}}},
    ]


async def summarize(requests: AsyncCollection, summary: AsyncCollection, place: str | None = None,
                    match: dict[str, Any] | None = None, among: dict[str, Any] | None = None) -> None:
    """Fold the stored requests of `place` (of every place, by default; those `match` finds, when
    given, and of them those `among` matches too) into the summary."""
    cursor = await requests.aggregate(summarize_pipeline(place, match, among))
    rows = await cursor.to_list()
    await write(summary, [summary_update(**row["_id"], latest=row["latest"], title=row.get("title"),
                                         source_link=row.get("source_link"))
                          for row in rows])


async def summarize_again(requests: AsyncCollection, summary: AsyncCollection,
                          keys: Iterable[tuple[str, str, str, str]]) -> None:
    """The summaries of these (place, platform, user_id, track_key) made again from their requests,
    after requests were renamed: `$max` alone would keep the greater title, and a link now gone."""
    # A member at a time, their requests read by their fields alone (the requests' user_created
    # index), then matched to the keys: SecantusDB (0.7) scanned every request for a top-level `$or`
    # of the keys, or for the keys' place and track beside the member's. The summaries are deleted
    # by their whole key (user_place_track_unique).
    for (platform, user_id), theirs in groupby(sorted(set(keys), key=itemgetter(1, 2, 0, 3)), key=itemgetter(1, 2)):
        tracks = [(place, track_key) for place, _, _, track_key in theirs]
        for start in range(0, len(tracks), BATCH):
            some = tracks[start:start + BATCH]
            member = {"user_id": user_id, "platform": platform}
            await summary.bulk_write([DeleteMany({**member, "place": place, "track_key": track_key})
                                      for place, track_key in some], ordered=False)
            await summarize(requests, summary, match=member,
                            among={"$or": [{"place": place, "track_key": track_key} for place, track_key in some]})
