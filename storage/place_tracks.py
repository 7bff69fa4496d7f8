"""What each member asked for in each place: one document per place, member and track key, with
the last answer they were told for it there (`latest` {at, mood}), the greatest title they
asked it by and, for an uploaded file, the greatest link to a message of the place that holds it
(`source_link`, absent where none of their requests had one), as `storage.playlists` would group
their requests.

Written with the requests (`RequestRepo`, after them: until 2026-12-06 before them, so that a
request refused after its summary was written still counted, as an answer the member was given;
but its summary, unbacked by any request, kept a file's title naming its sender after her
/forget), built for existing requests by migration 7,
rebuilt for a place that moved, erased by /forget and shown in /export. A server's playlist and
its members read it instead of every request ever made there: with 2 000 members and 100 000
requests in one place, the requests are 20 892 summaries (`benchmarks/storage.py --places 1`).
Each request in a place costs one more write, an upsert: about 1 ms on SecantusDB (a burst of
500 recorded requests took 0.53 s instead of 0.10 s).

The same summaries, grouped one document per place and member (`MEMBERS`, place_members: {place,
platform, user_id, tracks: {track field: {latest, title, source_link}}}, `track_field`), are what a
playlist reads: SecantusDB's cost is per document, and the 20 892 summaries of a server of 2 000
members took 0.46-0.60 s to read, its 2 000 member documents 0.11-0.14 s. Each is written with the
summaries and by the same `$max` (`record_members`, after them), made again from them wherever they are
made again (`summarize`, `summarize_again`, a moved place's `drop_place`), built by migration 19 and
erased by /forget.
"""
from __future__ import annotations

import logging
import re
from itertools import groupby
from operator import itemgetter
from typing import Any, Iterable

import bson
from pymongo import DeleteMany, DeleteOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
# A write whose document would pass MongoDB's 16 MiB: BSONObjectTooLarge (a `$max` that grows it),
# 17419 (the same, older servers) and 17420 (an upsert's).
TOO_LARGE = frozenset({10334, 17419, 17420})
# A member's document made again holds their newest songs that fit in this (`dropped_oldest`), the
# rest of the 16 MiB left for the songs `$max` adds after it: about 28 000 songs of 120 emoji
# titles, 118 000 of 40-letter ones, in one place.
MAX_MEMBER_BYTES = 15 * 1024 * 1024
BATCH = 1000  # updates per bulk_write, as the benchmark seeds
MEMBERS = "place_members"  # a place's summaries, one document per member (see the module's docstring)
# Characters a field name cannot hold as they are (a path's separator, an operator's mark) and the
# escape's own: written %XX in a track's field (`track_field`).
ESCAPED = {"%": "%25", ".": "%2E", "$": "%24", "\0": "%00"}
EMPTY_FIELD = "%"  # an empty track key's field: no escape reads as a lone %


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


def track_field(key: str) -> str:
    """The field of `key` in a member document's `tracks`: the key itself (spotify:…, youtube:…,
    sha256:…), with any `%`, `.`, `$` or NUL written %XX."""
    if not key:
        return EMPTY_FIELD
    if not any(char in key for char in ESCAPED):
        return key
    return "".join(ESCAPED.get(char, char) for char in key)


def track_key_of(name: str) -> str:
    """The track key a `tracks` field stands for (`track_field`'s inverse)."""
    if name == EMPTY_FIELD:
        return ""
    if "%" not in name:
        return name
    return re.sub("%(25|2E|24|00)", lambda match: chr(int(match.group(1), 16)), name)


def member_filter(place: str, platform: str, user_id: str) -> dict[str, Any]:
    return {"user_id": user_id, "platform": platform, "place": place}


def member_update(place: str, platform: str, user_id: str, track_key: str,
                  latest: dict[str, Any], title: str | None, source_link: str | None = None) -> UpdateOne:
    """`summary_update`'s `$max`, on the track's fields in the member's document."""
    field = f"tracks.{track_field(track_key)}"
    greatest = {f"{field}.latest": latest, f"{field}.title": title,
                **({f"{field}.source_link": source_link} if source_link else {})}
    return UpdateOne(member_filter(place, platform, user_id), {"$max": greatest}, upsert=True)


def member_updates(docs: Iterable[dict[str, Any]]) -> list[UpdateOne]:
    """`request_updates`, for the members' documents: one per request, as the summaries get."""
    return [member_update(doc["place"], doc["platform"], doc["user_id"], doc["track_key"],
                          {"at": doc["created_at"], "mood": doc["mood"]}, doc.get("title"), doc.get("source_link"))
            for doc in docs if doc.get("place") is not None]


async def record(summary: AsyncCollection, docs: list[dict[str, Any]]) -> None:
    """Fold request documents, inserted, into the summaries; their members' documents after them
    (`record_members`)."""
    await write(summary, request_updates(docs))


async def record_members(summary: AsyncCollection, docs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """Fold request documents into their members' documents, after their summaries (`record`). A
    failure leaves a vote the summaries hold and the playlist lacks until the member's document is
    made again (`rebuild_members`): `RequestRepo` marks the members of a batch that failed
    (place_repairs), their documents made again at the next playlist read of the place, the stop or
    the next start. Returns the (place, platform, user id) of the members whose document was full
    (`write`), the batch written: their songs left out, they are marked the same way, and their
    documents, made again, cut to fit."""
    placed = [doc for doc in docs if doc.get("place") is not None]
    left_out = await write(members_of(summary), member_updates(placed))
    return {(placed[i]["place"], placed[i]["platform"], placed[i]["user_id"]) for i in left_out}


def members_of(summary: AsyncCollection) -> AsyncCollection:
    """The members' documents beside the summaries."""
    return summary.database[MEMBERS]


def member_document(place: str, platform: str, user_id: str, summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A member's document made of their summaries in the place, as `member_update` writes them;
    past `MAX_MEMBER_BYTES`, their newest that fit (`dropped_oldest`)."""
    tracks = {track_field(doc["track_key"]): {"latest": doc["latest"], "title": doc.get("title"),
                                              **({"source_link": doc["source_link"]} if "source_link" in doc else {})}
              for doc in summaries}
    doc = {**member_filter(place, platform, user_id), "tracks": tracks}
    dropped_oldest(doc, [(told["latest"]["at"], tracks, field) for field, told in tracks.items()])
    return doc


def dropped_oldest(doc: dict[str, Any], items: list[tuple[Any, dict[str, Any], str]],
                   budget: int = MAX_MEMBER_BYTES) -> int:
    """A member's document cut to fit `budget` bytes of BSON: its songs (`items`: each song's time
    told, the dict that holds it and its field there), oldest first, deleted until it does. A
    document past MongoDB's 16 MiB cannot be written at all: a member who asked for some 28 000
    songs or more in one place would have every later request there refused, and those written
    with theirs. Returns how many were dropped (logged)."""
    size = len(bson.encode(doc))
    if size <= budget:
        return 0
    dropped = 0
    for _at, holder, field in sorted(items, key=itemgetter(0)):
        size -= len(bson.encode({field: holder.pop(field)})) - 5  # the element, less a document's 5 bytes
        dropped += 1
        if size <= budget:
            break
    log.warning("place_tracks.member_document_cut", extra={"user_id": doc.get("user_id"), "platform": doc.get("platform"),
                                                           "place": doc.get("place"), "dropped": dropped, "bytes": size})
    return dropped


def told_in(doc: dict[str, Any]) -> tuple[Any, ...]:
    """A summary's key and what it holds, to tell whether it changed."""
    return (doc["place"], doc["platform"], doc["user_id"], doc["track_key"], doc["latest"]["at"], doc["latest"]["mood"],
            doc.get("title"), doc.get("source_link"))


async def refold(summary: AsyncCollection, read: list[dict[str, Any]], now: list[dict[str, Any]]) -> None:
    """After members' documents were replaced by those made of the summaries `read`: the summaries
    read again since (`now`) that differ are folded in by `$max`. A request written beside it (a
    move, a /forget, runs beside the requests' writes) whose summary came after the first read
    and whose update of its member's document came before the replace keeps its vote; one whose
    summary came after the second read updates the document after the replace."""
    before = {told_in(doc) for doc in read}
    await write(members_of(summary), [member_update(doc["place"], doc["platform"], doc["user_id"], doc["track_key"],
                                                    doc["latest"], doc.get("title"), doc.get("source_link"))
                                      for doc in now if told_in(doc) not in before])


async def rebuild_members(summary: AsyncCollection, members: Iterable[tuple[str, str, str]]) -> None:
    """The documents of these (place, platform, user id) made again from their summaries (each
    read by the member's fields and the place: user_place_track_unique), or deleted where none is
    left; then `refold`."""
    keys = sorted(set(members))
    read: list[dict[str, Any]] = []
    writes: list[ReplaceOne | DeleteOne] = []
    for key in keys:
        theirs = await summary.find(member_filter(*key)).to_list()
        read += theirs
        writes.append(ReplaceOne(member_filter(*key), member_document(*key, theirs), upsert=True) if theirs
                      else DeleteOne(member_filter(*key)))
    await write(members_of(summary), writes)
    now = [doc for key in keys for doc in await summary.find(member_filter(*key)).to_list()]
    await refold(summary, read, now)


async def rebuild_place(summary: AsyncCollection, place: str | None = None) -> None:
    """The documents of every member of `place` (of every place, by default) made again from its
    summaries, read whole; a member with none left there loses theirs; then `refold`."""
    where = {} if place is None else {"place": place}
    read = await summary.find(where, batch_size=BATCH * 2).to_list()
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for doc in read:
        grouped.setdefault((doc["place"], doc["platform"], doc["user_id"]), []).append(doc)
    members = members_of(summary)
    stale = [DeleteOne(member_filter(doc["place"], doc["platform"], doc["user_id"]))
             async for doc in members.find(where, projection={"_id": 0, "place": 1, "platform": 1, "user_id": 1})
             if (doc["place"], doc["platform"], doc["user_id"]) not in grouped]
    await write(members, [ReplaceOne(member_filter(*key), member_document(*key, docs), upsert=True)
                          for key, docs in sorted(grouped.items(), key=lambda item: item[0])] + stale)
    await refold(summary, read, await summary.find(where, batch_size=BATCH * 2).to_list())


async def drop_place(summary: AsyncCollection, place: str) -> None:
    """A place's summaries and members' documents deleted (it moved: they are the new id's now)."""
    await members_of(summary).delete_many({"place": place})
    await summary.delete_many({"place": place})


def request_updates(docs: Iterable[dict[str, Any]]) -> list[UpdateOne]:
    """The summary updates for request documents; one asked outside any place counts in none."""
    return [summary_update(doc["place"], doc["platform"], doc["user_id"], doc["track_key"],
                           {"at": doc["created_at"], "mood": doc["mood"]}, doc.get("title"), doc.get("source_link"))
            for doc in docs if doc.get("place") is not None]


async def write(summary: AsyncCollection, updates: list[Any]) -> list[int]:
    """Idempotent: an upsert that met another process's insert of the same key is done again. In a
    members' document (a name ending `_members`), a song's `$max` that would take it past 16 MiB
    (`TOO_LARGE`) is left out, logged, and the batch's others written: the song counts once the
    document is made again (`dropped_oldest`). Returns the indices in `updates` of those left out,
    for the caller to have their documents made again: until 2026-12-06 none was, and a full
    document stayed so until a move or a file sender's /forget, its member's every later song left
    out."""
    members = summary.name.endswith("_members")
    left_out: list[int] = []
    for start in range(0, len(updates), BATCH):
        batch = updates[start:start + BATCH]
        try:
            await summary.bulk_write(batch, ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            full = [e for e in errors if members and e.get("code") in TOO_LARGE]
            errors = [e for e in errors if e not in full]
            if full:
                log.warning("place_tracks.member_document_full", extra={"collection": summary.name, "songs": len(full)})
                left_out += [start + e["index"] for e in full]
            if (not errors and not full) or any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            if errors:
                await summary.bulk_write([batch[e["index"]] for e in errors], ordered=False)
    return left_out


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
    given, and of them those `among` matches too) into the summary. Without `match`, the place's
    members' documents (every place's) are made again from its summaries; with one, the caller
    makes those it changed again (`summarize_again`)."""
    cursor = await requests.aggregate(summarize_pipeline(place, match, among))
    rows = await cursor.to_list()
    await write(summary, [summary_update(**row["_id"], latest=row["latest"], title=row.get("title"),
                                         source_link=row.get("source_link"))
                          for row in rows])
    if match is None:
        await rebuild_place(summary, place)


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
        await rebuild_members(summary, {(place, platform, user_id) for place, _ in tracks})


async def summed_up_again(requests: AsyncCollection, summary: AsyncCollection,
                          members: Iterable[tuple[str, str, str]]) -> None:
    """The summaries of these (place, platform, user id) folded again from their stored requests
    (`summarize`, by the member's fields, then their places: `$max`, so a vote a failed write left
    out is put back and nothing is taken), then their documents made again (`rebuild_members`):
    the repair of a request batch whose insert or summaries the database failed
    (`RequestRepo.folded_in`)."""
    keys = sorted(set(members))
    for (platform, user_id), theirs in groupby(sorted(keys, key=itemgetter(1, 2, 0)), key=itemgetter(1, 2)):
        member = {"user_id": user_id, "platform": platform}
        among = {"place": {"$in": sorted({place for place, _, _ in theirs})}}
        # Only those that differ from the summaries read before are written: a member with 10 000
        # requests of 3 000 songs had 3 000 upserts, 0.8 s of a 1.45-1.58 s repair on SecantusDB
        # (the aggregate 0.39-0.43 s). Read first: a summary only grows (`$max`), so one found as
        # the requests make it stays so.
        held = {told_in(doc) for doc in await summary.find({**member, **among}).to_list()}
        cursor = await requests.aggregate(summarize_pipeline(None, member, among))
        rows = [{**row["_id"], "latest": row["latest"], "title": row.get("title"), "source_link": row.get("source_link")}
                for row in await cursor.to_list()]
        await write(summary, [summary_update(**row) for row in rows if told_in(row) not in held])
    await rebuild_members(summary, keys)
