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

A playlist reads them as one document per member (`MEMBERS`, journal_members: {platform, user_id,
songs: {track field: {latest, title}}, uploads: {place field: {track field: {latest, title}}}},
fields as `place_tracks.track_field` makes them): SecantusDB's cost is per document read, and the
members' 4 989 summaries, read by batches of 8 members, took 0.29 s, their 200 documents, by
batches of 64, 0.07 s. Each is written with the summaries and by the same `$max` (`add`, after
them), and made again from them wherever they are (`summarize`, `summarize_again`,
`summarize_member`: a delete, and the repairs of a write cut short), built by migration 19 and
erased by /forget.
"""
from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any, Iterable

from pymongo import DeleteOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from storage import place_tracks
from storage.models import UPLOAD_KEY_PREFIX, StorageError

ENTRY_FIELDS = {"_id": 0, "platform": 1, "user_id": 1, "place": 1, "track_key": 1, "created_at": 1, "mood": 1,
                "track_title": 1}
# A summary's key: (platform, user id, track key, place: an upload's, else None).
Key = tuple[str, str, str, "str | None"]
# What it holds: (at, mood) of the latest entry, the greatest title (None: none).
Folded = tuple[datetime, str, "str | None"]
MEMBERS = "journal_members"  # the summaries, one document per member (see the module's docstring)


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


def member_filter(platform: str, user_id: str) -> dict[str, Any]:
    return {"user_id": user_id, "platform": platform}


def member_path(key: Key) -> str:
    """Where a summary is in its member's document."""
    _platform, _user_id, track, place = key
    field = place_tracks.track_field(track)
    return f"songs.{field}" if place is None else f"uploads.{place_tracks.track_field(place)}.{field}"


def member_updates(summaries: dict[Key, Folded]) -> list[UpdateOne]:
    """`summary_update`'s `$max`, on the summaries' fields in their members' documents."""
    return [UpdateOne(member_filter(key[0], key[1]),
                      {"$max": {f"{member_path(key)}.latest": {"at": at, "mood": mood}, f"{member_path(key)}.title": title}},
                      upsert=True)
            for key, (at, mood, title) in summaries.items()]


def member_document(platform: str, user_id: str, summaries: dict[Key, Folded]) -> dict[str, Any]:
    """A member's document made of their summaries (all of them: `summaries` holds no one else's);
    past `place_tracks.MAX_MEMBER_BYTES`, their newest that fit (`place_tracks.dropped_oldest`)."""
    songs: dict[str, Any] = {}
    uploads: dict[str, dict[str, Any]] = {}
    items: list[tuple[Any, dict[str, Any], str]] = []
    for (_platform, _user_id, track, place), (at, mood, title) in summaries.items():
        told = {"latest": {"at": at, "mood": mood}, "title": title}
        holder = songs if place is None else uploads.setdefault(place_tracks.track_field(place), {})
        holder[place_tracks.track_field(track)] = told
        items.append((at, holder, place_tracks.track_field(track)))
    doc = {**member_filter(platform, user_id), "songs": songs, "uploads": uploads}
    place_tracks.dropped_oldest(doc, items)
    return doc


def members_of(summary: AsyncCollection) -> AsyncCollection:
    """The members' documents beside the summaries."""
    return summary.database[MEMBERS]


def held_of(docs: Iterable[dict[str, Any]]) -> dict[Key, Folded]:
    """Summary documents as `fold` makes them."""
    return {(doc["platform"], doc["user_id"], doc["track_key"], doc.get("place")):
            (doc["latest"]["at"], doc["latest"]["mood"], doc.get("title")) for doc in docs}


def member_write(platform: str, user_id: str, summaries: dict[Key, Folded]) -> ReplaceOne | DeleteOne:
    """The member's document made of all their summaries, or deleted where they have none."""
    where = member_filter(platform, user_id)
    return ReplaceOne(where, member_document(platform, user_id, summaries), upsert=True) if summaries \
        else DeleteOne(where)


async def rebuild_members(summary: AsyncCollection, members: Iterable[tuple[str, str]] | None = None) -> None:
    """The documents of these (platform, user id) made again from their summaries, each read by the
    user's fields; of every member, from every summary, by default. Then the summaries read again
    that differ are folded in by `$max` (as `place_tracks.refold`: an add beside it, whose summary
    came after the first read, keeps its vote; a member's delete and its repairs take the member's
    lock, `summarize_member`)."""
    wanted = None if members is None else sorted(set(members))

    async def summaries_now() -> dict[Key, Folded]:
        if wanted is None:
            return held_of(await summary.find({}, batch_size=place_tracks.BATCH * 2).to_list())
        return {key: told for member in wanted
                for key, told in held_of(await summary.find(member_filter(*member)).to_list()).items()}
    read = await summaries_now()
    grouped: dict[tuple[str, str], dict[Key, Folded]] = {member: {} for member in (wanted or ())}
    for key, told in read.items():
        grouped.setdefault((key[0], key[1]), {})[key] = told
    stale = [] if wanted is not None else [
        DeleteOne(member_filter(doc["platform"], doc["user_id"]))
        async for doc in members_of(summary).find({}, projection={"_id": 0, "platform": 1, "user_id": 1})
        if (doc["platform"], doc["user_id"]) not in grouped]
    await write(members_of(summary), [member_write(*member, held) for member, held in sorted(grouped.items(),
                                                                                           key=lambda item: item[0])]
                + stale)
    now = await summaries_now()
    await write(members_of(summary), member_updates({key: told for key, told in now.items() if read.get(key) != told}))


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


async def write(summary: AsyncCollection, updates: list[Any]) -> list[int]:
    """Idempotent: an upsert that met another write's insert of the same key is done again. Returns
    the updates of a member's document left out, too full (`place_tracks.write`)."""
    return await place_tracks.write(summary, updates)


class DocumentFull(StorageError):
    """A member's document too full for an entry's vote (`place_tracks.write` left it out)."""


async def add(summary: AsyncCollection, entry: dict[str, Any]) -> None:
    """Fold one stored entry into its summary, then its member's document: a failure of either
    raises, and the repairs that make the member's summaries again (`summarize_member`) make their
    document again too, so that it never holds a vote their summaries lack. A document too full for
    the vote raises `DocumentFull`, as a refusal: the repairs make it again cut to fit
    (`place_tracks.dropped_oldest`); until 2026-12-06 the vote was left out until their next delete."""
    folded = fold([entry])
    await write(summary, updates_of(folded))
    if await write(members_of(summary), member_updates(folded)):
        raise DocumentFull("The member's journal document is too full for this answer.")


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
    await rebuild_members(summary, None if match is None else {(key[0], key[1]) for key in summaries})


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
    await rebuild_members(summary, by_member)


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
    # Their document, whole, every time: an add cut short may have left it alone behind (`add`).
    await write(members_of(summary), [member_write(platform, user_id, wanted)])
