"""What each member journaled of each track: one document per member and track key (and, for an
uploaded file, the place it was sent in), with the last answer the journal holds for it (`latest`
{at, mood}) and the greatest title it was journaled by, as `storage.playlists` would fold the
entries themselves (`is_shareable`: a song's entries count in every place the member is seen in,
an upload's only in the place it was sent in, so `place` is kept for uploads alone and one sent in
a private chat, which counts nowhere, has none).

Written with the journal's entries (`JournalRepo`, after each: an entry's write is a vote), made
to agree with a member's entries after one of them was deleted, made again for the tracks of
entries renamed (a sender's /forget, `PrivacyRepo._unname`) and for the uploads of a place that
moved, built for existing journals by migration 17, erased by /forget (before the entries) and
shown in /export. A bot of the previous version still writing entries after the migration (a
rolling upgrade) leaves them out: they count once the member deletes an entry, or not at all. A server's playlist reads these instead of every journal entry of its
members: 200 members who journaled a year each, 73 000 entries, are 5 704 summaries (most
journals come back to a few songs; `benchmarks/large_server.py --journal-members 200`).
"""
from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any, Iterable

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from storage import place_tracks
from storage.models import UPLOAD_KEY_PREFIX

ENTRY_FIELDS = {"_id": 0, "platform": 1, "user_id": 1, "place": 1, "track_key": 1, "created_at": 1, "mood": 1,
                "track_title": 1}
# A summary's key: (platform, user id, track key, place: an upload's, else None).
Key = tuple[str, str, str, "str | None"]
# What it holds: (at, mood) of the latest entry, the greatest title (None: none).
Folded = tuple[datetime, str, "str | None"]


def is_upload(track_key: str) -> bool:
    return track_key.startswith(UPLOAD_KEY_PREFIX)


def key_of(entry: dict[str, Any]) -> Key | None:
    """The summary an entry counts in; None for an upload sent in a private chat (it counts in no
    place's playlist)."""
    track = entry["track_key"]
    place = entry.get("place") if is_upload(track) else None
    if is_upload(track) and place is None:
        return None
    return entry["platform"], entry["user_id"], track, place


def key_filter(key: Key) -> dict[str, Any]:
    platform, user_id, track, place = key
    return {"user_id": user_id, "platform": platform, "track_key": track, "place": place}


def summary_update(key: Key, at: datetime, mood: str, title: str | None) -> UpdateOne:
    """Fold an entry (or a group of them: its latest and greatest title) into the summary. `$max`
    compares {at, mood} field by field, as `told_more` does, and any title over none."""
    return UpdateOne(key_filter(key), {"$max": {"latest": {"at": at, "mood": mood}, "title": title}}, upsert=True)


def entry_updates(entries: Iterable[dict[str, Any]]) -> list[UpdateOne]:
    """The summary updates for journal entries (as stored), folded per summary first."""
    return updates_of(fold(entries))


def updates_of(summaries: dict[Key, Folded]) -> list[UpdateOne]:
    return [summary_update(key, at, mood, title) for key, (at, mood, title) in summaries.items()]


def fold(entries: Iterable[dict[str, Any]], summaries: dict[Key, Folded] | None = None) -> dict[Key, Folded]:
    """`summaries` (new, by default) with the entries folded in."""
    summaries = {} if summaries is None else summaries
    for entry in entries:
        key = key_of(entry)
        if key is None:
            continue
        title = entry.get("track_title")
        held = summaries.get(key)
        if held is None:
            summaries[key] = entry["created_at"], entry["mood"], title
        else:
            at, mood = max((held[0], held[1]), (entry["created_at"], entry["mood"]))
            summaries[key] = at, mood, title if held[2] is None else held[2] if title is None else max(held[2], title)
    return summaries


async def write(summary: AsyncCollection, updates: list[UpdateOne]) -> None:
    """Idempotent: an upsert that met another write's insert of the same key is done again."""
    await place_tracks.write(summary, updates)


async def add(summary: AsyncCollection, entry: dict[str, Any]) -> None:
    """Fold one stored entry into its summary."""
    await write(summary, entry_updates([entry]))


async def summarize(journal: AsyncCollection, summary: AsyncCollection, match: dict[str, Any] | None = None,
                    batch: int = place_tracks.BATCH) -> None:
    """Fold the stored entries `match` finds (every entry, by default) into the summary; `$max`
    upserts: safe to run again. Folded whole before the writes, a batch of entries at a time in a
    worker thread: one upsert per summary, not one per summary in each batch of entries (73 000
    entries of 200 members, 5 704 summaries: 6.4-8.0 s on SecantusDB, 9.5-16.5 s per batch; two
    runs each on the shared machine)."""
    summaries: dict[Key, Folded] = {}
    some: list[dict[str, Any]] = []
    async for entry in journal.find(match or {}, projection=ENTRY_FIELDS, batch_size=batch):
        some.append(entry)
        if len(some) == batch:
            await asyncio.to_thread(fold, some, summaries)
            some = []
    fold(some, summaries)
    await write(summary, await asyncio.to_thread(updates_of, summaries))


async def summarize_again(journal: AsyncCollection, summary: AsyncCollection, keys: Iterable[Key]) -> None:
    """The summaries of these keys made again from their entries, after entries were deleted or
    renamed: `$max` alone would keep an answer or a title now gone. One read per member: their
    whole journal, by the user's fields alone (the user_page index's prefix), its tracks picked
    here: SecantusDB (0.7) scans the collection for an equality field the index lacks, such as
    `track_key` beside them."""
    by_member: dict[tuple[str, str], set[Key]] = {}
    for key in set(keys):
        by_member.setdefault((key[0], key[1]), set()).add(key)
    for (platform, user_id), wanted in sorted(by_member.items(), key=lambda item: item[0]):
        for key in sorted(wanted, key=repr):
            await summary.delete_one(key_filter(key))
        entries = await journal.find({"user_id": user_id, "platform": platform}, projection=ENTRY_FIELDS).to_list()
        await write(summary, entry_updates(entry for entry in entries if key_of(entry) in wanted))


async def place_moved(journal: AsyncCollection, summary: AsyncCollection, old_place: str, new_place: str) -> None:
    """After the entries of `old_place` were given `new_place`: the summaries of the uploads
    journaled there are the new place's (made again from the entries, merged with any there)."""
    uploads = {"place": new_place, "track_key": {"$regex": "^" + re.escape(UPLOAD_KEY_PREFIX)}}
    keys = {key for entry in await journal.find(uploads, projection=ENTRY_FIELDS).to_list()
            if (key := key_of(entry)) is not None}
    for platform, user_id, track, _place in sorted(keys):
        await summary.delete_one(key_filter((platform, user_id, track, old_place)))
    await summarize_again(journal, summary, keys)


async def summarize_member(journal: AsyncCollection, summary: AsyncCollection, platform: str, user_id: str) -> None:
    """The member's summaries made to say what their entries say, after an entry of theirs was
    deleted (which one is not known here: its delete is the first command sent, so that a database
    that fails it has changed nothing). Their whole journal and their summaries are read, by the
    user's fields alone; only the summaries that differ are written (made again: deleted, then
    upserted), one at most for a delete. Not beside an add of the member's: one between the two
    reads would lose its vote (`JournalRepo` holds the member's lock around both)."""
    who = {"user_id": user_id, "platform": platform}
    entries = await journal.find(who, projection=ENTRY_FIELDS).to_list()
    wanted = fold(entries)
    held: dict[Key, Folded] = {}
    for doc in await summary.find(who).to_list():
        key = (platform, user_id, doc["track_key"], doc.get("place"))
        held[key] = doc["latest"]["at"], doc["latest"]["mood"], doc.get("title")
    for key in sorted(set(held) | set(wanted), key=repr):
        if held.get(key) != wanted.get(key):
            await summary.delete_one(key_filter(key))
            if key in wanted:
                await write(summary, updates_of({key: wanted[key]}))
