"""Server playlists and the server's mood of the week: read by indexed queries, counted here.

A place's members are the users seen there: they asked /mood there, or wrote a journal entry
there, and have not left since (`departures`: a member who left, or was removed, counts again once
they come back, or ask /mood or write there again, with all their songs). What counts for a
place: its mood requests by members, plus every journal entry of its members (most are written
in private chats) but the files they uploaded elsewhere. Members who opted out of sharing
(`share_with_server` false) are never counted; a member with no user document shares, the default.

Every read is driven by an index (SecantusDB runs `$unionWith` and pipeline-only `$lookup` as
full collection scans, and an `$in` over a server's members takes seconds: none appears here):
1. who was seen in the place: the authors of its requests, from the place's summaries
   (`storage/place_tracks.py`: one per member and track, kept as the requests are written, so a
   place's whole history is not read), and of its journal entries, with when each was last seen
   there, less those whose departure came later;
2. what each member was last told per track: their summaries and one pipeline over the members
   (`$documents`) that drops the opted-out (`$lookup` the user) and joins each one's journal
   entries, grouped by track inside the lookup; or, in a window (the mood of the week, `since`),
   the place's requests in it (`place_requests_pipeline`, on place_created) and everyone's journal
   entries in it (`journal_window_pipeline`, on created), of the sharing members;
3. each track's song, once per track (`songs_pipeline`): a YouTube video that a catalog song's
   audio came from counts as that song, and the releases of one recording (the single and the
   album: one ISRC, two Spotify ids) as one song (`same_song`), however the members asked.

A member has one vote per song, for the mood they were told last (`votes_by_song`): the fallback
ANN may have called a song happy before the main model called it sad, and both the playlists and
the mood of the week count it as sad. The votes are counted here, not by `$group` stages:
SecantusDB copies every row through every stage, and with 2 000 members and 100 000 requests in
one place the ~24 000 rows of (member, track) took longer to group than to read.
"""
from __future__ import annotations

import re
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from storage.codec import utc
from storage.failures import translated_errors
from storage.models import UPLOAD_KEY_PREFIX, PlaylistItem, UserRef
from storage.mood_requests import RequestRepo
from storage import place_tracks
from storage.schema import DEPARTURES, JOURNAL, PLACE_TRACKS, REQUESTS, TRACKS, USERS

WEEK = timedelta(days=7)
SUMMARY_FIELDS = {"_id": 0, "platform": 1, "user_id": 1, "track_key": 1, "latest": 1, "title": 1}
YOUTUBE_KEY_PREFIX = "youtube:"  # a video heard under its own key (bot.usecases.mood)
UPLOAD_TITLE = "An audio file"  # an upload nobody here named (recorded before requests kept titles)


def seen_in_place_pipeline(place: str) -> list[dict[str, Any]]:
    """Step 1 on `journal`: the distinct authors in a place, and when each was last seen there
    (`last`)."""
    return [
        {"$match": {"place": place}},
        {"$group": {"_id": {"platform": "$platform", "user_id": "$user_id"},
                    "last": {"$max": "$created_at"}}},
    ]


def _join_member(collection: str, criteria: dict[str, Any], title: str, into: str) -> dict[str, Any]:
    """`$lookup` one member's documents in `collection` that match `criteria`, one row per track:
    `_id` the track key, `latest` the last {at, mood} they were told, `title` (from `title`)."""
    return {"$lookup": {
        "from": collection,
        "localField": "user_id",
        "foreignField": "user_id",
        "let": {"platform": "$platform"},
        "pipeline": [
            {"$match": {"$expr": {"$eq": ["$platform", "$$platform"]}}},
            {"$match": criteria},
            # The latest is the greatest {at, mood}: documents compare field by field.
            {"$group": {"_id": "$track_key",
                        "latest": {"$max": {"at": "$created_at", "mood": "$mood"}},
                        "title": {"$max": title}}},
        ],
        "as": into,
    }}


def _window(since: datetime | None, until: datetime | None = None) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if since is not None:
        bounds["$gte"] = utc(since)
    if until is not None:
        bounds["$lte"] = utc(until)
    return {"created_at": bounds} if bounds else {}


def shareable_entry(place: str) -> dict[str, Any]:
    """A journal entry counts in a place unless it is an upload written elsewhere: a file sent in
    a private chat is the member's own, not a song of the place (nor is its file name)."""
    return {"$or": [{"place": place},
                    {"track_key": {"$not": re.compile("^" + re.escape(UPLOAD_KEY_PREFIX))}}]}


def sharing_pipeline(members: list[UserRef]) -> list[dict[str, Any]]:
    """Runs with `$documents`: one row per member who shares with the server ({platform, user_id})."""
    return [*_sharing_members(members), {"$project": {"_id": 0, "platform": 1, "user_id": 1}}]


def _sharing_members(members: list[UserRef]) -> list[dict[str, Any]]:
    return [
        {"$documents": [{"platform": m.platform, "user_id": m.user_id} for m in members]},
        {"$lookup": {
            "from": USERS,
            "localField": "user_id",
            "foreignField": "user_id",
            "let": {"platform": "$platform"},
            "pipeline": [{"$match": {"$expr": {"$eq": ["$platform", "$$platform"]}}},
                         {"$project": {"_id": 0, "share_with_server": 1}}],
            "as": "user",
        }},
        # An empty lookup (no user document yet) means the default: sharing.
        {"$match": {"user.share_with_server": {"$ne": False}}},
    ]


def member_journal_pipeline(place: str, members: list[UserRef]) -> list[dict[str, Any]]:
    """Runs with `$documents`: one row per sharing member, with `journal`, one row per track they
    journaled (`_id` the track key, latest {at, mood}, title)."""
    return [
        *_sharing_members(members),
        _join_member(JOURNAL, shareable_entry(place), "$track_title", "journal"),
        {"$project": {"_id": 0, "platform": 1, "user_id": 1, "journal": 1}},
    ]


def journal_window_pipeline(place: str, window: dict[str, Any]) -> list[dict[str, Any]]:
    """Everyone's journal entries in a window (the `created` index: a `$match` of its own, as
    SecantusDB scans the collection for the window beside the `$or`), one row per author and
    track, as `place_requests_pipeline` makes them."""
    return [
        {"$match": window},
        {"$match": shareable_entry(place)},
        {"$group": {"_id": {"platform": "$platform", "user_id": "$user_id", "track": "$track_key"},
                    "latest": {"$max": {"at": "$created_at", "mood": "$mood"}},
                    "title": {"$max": "$track_title"}}},
    ]


def place_requests_pipeline(place: str, window: dict[str, Any]) -> list[dict[str, Any]]:
    """The place's requests in a window (`place_created`), one row per member and track, as
    `_join_member` makes them: a member's whole history in every place is not read for a week."""
    return [
        {"$match": {"place": place, **window}},
        {"$group": {"_id": {"platform": "$platform", "user_id": "$user_id", "track": "$track_key"},
                    "latest": {"$max": {"at": "$created_at", "mood": "$mood"}},
                    "title": {"$max": "$title"}}},
    ]


def rows_by_member(rows: list[dict[str, Any]]) -> dict[UserRef, list[dict[str, Any]]]:
    by_member: dict[UserRef, list[dict[str, Any]]] = {}
    for row in rows:
        key = row["_id"]
        by_member.setdefault(UserRef(key["platform"], key["user_id"]), []).append(
            {"_id": key["track"], "latest": row["latest"], "title": row.get("title")})
    return by_member


def same_song(track: str) -> list[dict[str, Any]]:
    """Stages that set `song` to the song the key at `track` (a field path) is: itself, or, for a
    YouTube video that a catalog track's audio was fetched from, that track's key (the first, if
    several). The cache answers a video's link as its catalog song only once the song is known: a
    link asked for before anyone asked for the song by name keeps a record of its own."""
    prefix = len(YOUTUBE_KEY_PREFIX)
    return [
        # Not a video: False, which no track's youtube_id is (null would join every unnamed track).
        {"$addFields": {"video": {"$cond": [
            {"$eq": [{"$substrCP": [track, 0, prefix]}, YOUTUBE_KEY_PREFIX]},
            {"$substrCP": [track, prefix, {"$strLenCP": track}]},
            False,
        ]}}},
        {"$lookup": {
            "from": TRACKS,
            "localField": "video",
            "foreignField": "youtube_id",
            "pipeline": [
                {"$match": {"key": {"$not": re.compile("^" + re.escape(YOUTUBE_KEY_PREFIX))},
                            "mood": {"$ne": None}}},
                {"$sort": {"key": 1}},
                {"$limit": 1},
                {"$project": {"_id": 0, "key": 1}},
            ],
            "as": "catalog",
        }},
        {"$unwind": {"path": "$catalog", "preserveNullAndEmptyArrays": True}},
        {"$addFields": {"song": {"$ifNull": ["$catalog.key", track]}}},
        *same_recording(),
    ]


def same_recording() -> list[dict[str, Any]]:
    """Stages that set `song`, a track key, to its recording: Spotify gives the single and the
    album release of a song their own ids, but both carry the recording's ISRC. Every track of one
    ISRC is the song of the smallest key among them (stable while no new release is saved); a key
    with no record, or whose record has no ISRC, stays itself. Both joins are indexed equalities."""
    return [
        # Nested, one stage: SecantusDB copies every outer row (with all its votes) per $lookup.
        {"$lookup": {"from": TRACKS, "localField": "song", "foreignField": "key", "pipeline": [
            # No ISRC (absent, null or ""): False, which no track's isrc is (null would join every
            # track without one). Only a non-empty string sorts above "".
            {"$project": {"_id": 0, "isrc": {"$cond": [{"$gt": ["$isrc", ""]}, "$isrc", False]}}},
            {"$lookup": {"from": TRACKS, "localField": "isrc", "foreignField": "isrc", "pipeline": [
                {"$sort": {"key": 1}}, {"$limit": 1}, {"$project": {"_id": 0, "key": 1}}], "as": "first"}},
            {"$unwind": "$first"},
            {"$project": {"key": "$first.key"}},
        ], "as": "recording"}},
        {"$unwind": {"path": "$recording", "preserveNullAndEmptyArrays": True}},
        {"$addFields": {"song": {"$ifNull": ["$recording.key", "$song"]}}},
    ]


def songs_pipeline(keys: Iterable[str]) -> list[dict[str, Any]]:
    """Runs with `$documents`: the song (`same_song`) of each track key."""
    return [
        {"$documents": [{"key": key} for key in sorted(keys)]},
        *same_song("$key"),
        {"$project": {"_id": 0, "key": 1, "song": 1}},
    ]


@dataclass
class Heard:
    """The last answer a member was told for a track or a song, `latest` (at, mood), and the
    greatest title they asked it by: the `$max` of {at, mood} and of the titles, none ignored."""

    latest: tuple[datetime, str]
    title: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> "Heard":
        return cls((row["latest"]["at"], row["latest"]["mood"]), row.get("title"))

    def add(self, other: "Heard") -> None:
        self.latest = max(self.latest, other.latest)
        self.title = greatest_title(self.title, other.title)


def greatest_title(one: str | None, other: str | None) -> str | None:
    return one if other is None else other if one is None else max(one, other)


def add_heard(into: dict[Any, Heard], key: Any, heard: Heard) -> None:
    if key in into:
        into[key].add(heard)
    else:
        into[key] = Heard(heard.latest, heard.title)


def votes_by_song(
    heard: dict[UserRef, dict[str, Heard]], songs: dict[str, str]
) -> dict[tuple[str, UserRef], Heard]:
    """One vote per (song, member), for the last answer the member was told for the song (by
    any of its keys, in the requests or the journal): a member who played a song ten times, or by
    its link and by its name, is one vote."""
    votes: dict[tuple[str, UserRef], Heard] = {}
    for member, tracks in heard.items():
        for track, told in tracks.items():
            add_heard(votes, (songs.get(track, track), member), told)
    return votes


def top_songs(votes: dict[tuple[str, UserRef], Heard], mood: str, limit: int) -> list[dict[str, Any]]:
    """The songs whose members were last told `mood`, most members first, then the most recent,
    then by key: rows {_id, members, last_at, title}."""
    rows: dict[str, dict[str, Any]] = {}
    for (song, _member), told in votes.items():
        if told.latest[1] != mood:  # a member's vote goes to the mood they were told last
            continue
        at = told.latest[0]
        row = rows.setdefault(song, {"_id": song, "members": 0, "last_at": at, "title": None})
        row["members"] += 1
        row["last_at"] = max(row["last_at"], at)
        row["title"] = greatest_title(row["title"], told.title)
    ranked = sorted(rows.values(), key=lambda row: row["_id"])
    ranked.sort(key=lambda row: (row["members"], row["last_at"]), reverse=True)
    return ranked[:limit]


def mood_counts(votes: dict[tuple[str, UserRef], Heard]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for told in votes.values():
        counts[told.latest[1]] = counts.get(told.latest[1], 0) + 1
    return dict(sorted(counts.items()))


def week_window(now: datetime) -> dict[str, Any]:
    return _window(now - WEEK, now)


def playlist_item(row: dict[str, Any]) -> PlaylistItem:
    track = row.get("track") or {}
    # An upload is named as the place's members named it, never by its shared record's title (one
    # written before uploads were kept nameless held its first sender's file name until migration 9).
    upload = row["_id"].startswith(UPLOAD_KEY_PREFIX)
    catalog_title = None if upload else track.get("title")
    video = track.get("youtube_id")
    if video is None and row["_id"].startswith(YOUTUBE_KEY_PREFIX):  # heard, but its record not saved
        video = row["_id"][len(YOUTUBE_KEY_PREFIX):]
    return PlaylistItem(
        track_key=row["_id"],
        title=catalog_title or row.get("title") or (UPLOAD_TITLE if upload else row["_id"]),
        artists=list(track.get("artists", [])),
        spotify_url=track.get("spotify_url"),
        members=int(row["members"]),
        last_at=row["last_at"],
        youtube_id=None if upload else video,
    )


class PlaylistQueries:
    def __init__(self, db: AsyncDatabase, requests: RequestRepo | None = None) -> None:
        self._db = db
        self._requests = requests

    async def playlist(
        self, place: str, mood: str, *, limit: int = 20, since: datetime | None = None
    ) -> list[PlaylistItem]:
        """The place's top tracks of this mood: most distinct members first, then most recent."""
        if limit <= 0:
            return []
        with translated_errors("server playlist"):
            votes = await self._votes(place, _window(since), windowed=since is not None)
            rows = top_songs(votes, mood, limit)
            tracks = await self._tracks([row["_id"] for row in rows])
        return [playlist_item({**row, "track": tracks.get(row["_id"])}) for row in rows]

    async def server_mood_of_week(self, place: str, now: datetime) -> dict[str, int]:
        """Counts per mood over the seven days up to `now`; moods with no entry are absent."""
        with translated_errors("server mood of the week"):
            return mood_counts(await self._votes(place, week_window(now), windowed=True))

    async def _votes(self, place: str, window: dict[str, Any], *,
                     windowed: bool) -> dict[tuple[str, UserRef], Heard]:
        """Step 2: the sharing members' votes, one per (song, member). The place's requests come
        from their summaries, or, in a window, from the requests in it."""
        summaries = await self._summaries(place)
        members = await self._members(place, summaries)
        if not members:
            return {}
        if windowed:
            requests = await self._by_member(REQUESTS, place_requests_pipeline(place, window))
            journal = await self._by_member(JOURNAL, journal_window_pipeline(place, window))
            cursor = await self._db.aggregate(sharing_pipeline(
                [m for m in members if m in requests or m in journal]))
            sharing = [UserRef(row["platform"], row["user_id"]) for row in await cursor.to_list()]
        else:
            requests = rows_by_member(summaries)
            cursor = await self._db.aggregate(member_journal_pipeline(place, members))
            rows = await cursor.to_list()
            journal = {UserRef(row["platform"], row["user_id"]): row["journal"] for row in rows}
            sharing = list(journal)
        heard: dict[UserRef, dict[str, Heard]] = {}
        for member in sharing:
            tracks = heard.setdefault(member, {})
            for told in (*journal.get(member, []), *requests.get(member, [])):
                add_heard(tracks, told["_id"], Heard.of(told))
        return votes_by_song(heard, await self._songs({t for tracks in heard.values() for t in tracks}))

    async def _songs(self, keys: set[str]) -> dict[str, str]:
        if not keys:
            return {}
        cursor = await self._db.aggregate(songs_pipeline(keys))
        return {row["key"]: row["song"] for row in await cursor.to_list()}

    async def _tracks(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        return {doc["key"]: doc async for doc in self._db[TRACKS].find({"key": {"$in": keys}})}

    async def _by_member(self, collection: str,
                         pipeline: list[dict[str, Any]]) -> dict[UserRef, list[dict[str, Any]]]:
        cursor = await self._db[collection].aggregate(pipeline)
        return rows_by_member(await cursor.to_list())

    async def move_place(self, old_place: str, new_place: str) -> None:
        """Everything heard or written in `old_place` counts in `new_place` from now on, the
        requests recorded after this call too (answers still on their way)."""
        if self._requests is not None:
            self._requests.place_moved(old_place, new_place)
        # Summaries and departures are written from what was read: no /forget comes in between.
        async with self._apart_from_erasures():
            await self._move_place(old_place, new_place)

    async def _move_place(self, old_place: str, new_place: str) -> None:
        if self._requests is not None:
            await self._requests.settled()
        with translated_errors("move a place's songs"):
            for collection in (REQUESTS, JOURNAL):
                await self._db[collection].update_many({"place": old_place}, {"$set": {"place": new_place}})
            # The old place's summaries merge with the new one's: summed up again from its requests.
            await place_tracks.summarize(self._db[REQUESTS], self._db[PLACE_TRACKS], new_place)
            await self._db[PLACE_TRACKS].delete_many({"place": old_place})
            # One departure per place and member (a unique index): each is carried over on its own.
            async for doc in self._db[DEPARTURES].find({"place": old_place}):
                where = {"place": new_place, "platform": doc["platform"], "user_id": doc["user_id"]}
                await self._record_departure(where, doc["left_at"])
            await self._db[DEPARTURES].delete_many({"place": old_place})

    def _apart_from_erasures(self) -> AbstractAsyncContextManager[Any]:
        """Held across a read of members' documents and a write made from it: a /forget of one
        of them between the two would find the write made after it, and the member back
        (`RequestRepo.erasure_lock`, which /forget's deletions hold)."""
        return self._requests.erasure_lock if self._requests is not None else nullcontext()

    async def members_seen(self, place: str) -> list[UserRef]:
        """Everyone seen in the place and not gone since, whatever their sharing choice (filtered
        in step 2): a member whose departure is later than the last time they were seen there
        is not counted."""
        return await self._members(place, await self._summaries(place))

    async def _summaries(self, place: str) -> list[dict[str, Any]]:
        """The place's request summaries (`storage/place_tracks.py`), after the writes on their way."""
        if self._requests is not None:  # every query here starts from this: see the writes first
            await self._requests.settled()
        with translated_errors("server members"):
            cursor = self._db[PLACE_TRACKS].find({"place": place}, projection=SUMMARY_FIELDS)
            return [{"_id": {"platform": doc["platform"], "user_id": doc["user_id"], "track": doc["track_key"]},
                     "latest": doc["latest"], "title": doc.get("title")} async for doc in cursor]

    async def _members(self, place: str, summaries: list[dict[str, Any]]) -> list[UserRef]:
        """Step 1, from the place's summaries and its journal entries."""
        last_seen: dict[UserRef, datetime] = {}

        def seen(ref: UserRef, at: datetime) -> None:
            last_seen[ref] = max(last_seen.get(ref, at), at)

        for row in summaries:
            seen(UserRef(row["_id"]["platform"], row["_id"]["user_id"]), row["latest"]["at"])
        with translated_errors("server members"):
            cursor = await self._db[JOURNAL].aggregate(seen_in_place_pipeline(place))
            for row in await cursor.to_list():
                seen(UserRef(row["_id"]["platform"], row["_id"]["user_id"]), row["last"])
            async for doc in self._db[DEPARTURES].find({"place": place}):
                ref = UserRef(doc["platform"], doc["user_id"])
                if ref in last_seen and doc["left_at"] > last_seen[ref]:
                    del last_seen[ref]
        return sorted(last_seen, key=lambda ref: (ref.platform, ref.user_id))

    async def member_left(self, place: str, member: UserRef, at: datetime) -> None:
        """The member left the place (or was removed) at `at`: what they did there before stops
        counting. Said twice (a service message and a membership update), the later time stays.
        Someone never seen there (who never used the bot there, or deleted it all with /forget)
        has nothing there to stop counting: nothing is recorded about them, unless their first
        /mood there is being answered (it will be written after this, stamped before it)."""
        where = {"place": place, "platform": member.platform, "user_id": member.user_id}
        async with self._apart_from_erasures():  # seen, then recorded: not forgotten in between
            asking = False
            if self._requests is not None:  # a request on its way is a visit
                await self._requests.settled()
                asking = self._requests.is_asking(place, member)
            if asking or await self._ever_seen(where):
                await self._record_departure(where, at)

    async def _ever_seen(self, where: dict[str, Any]) -> bool:
        """Whether the member asked /mood (a summary of their requests there, written before them)
        or wrote a journal entry in the place. Indexed reads of the place and user's fields alone:
        SecantusDB scanned every request for them, beside requests' (place, created_at) index."""
        with translated_errors("record a departure"):
            for collection in (PLACE_TRACKS, JOURNAL):
                if await self._db[collection].find_one(where, projection={"_id": 1}) is not None:
                    return True
        return False

    async def _record_departure(self, where: dict[str, Any], at: datetime) -> None:
        with translated_errors("record a departure"):
            try:
                await self._db[DEPARTURES].update_one(where, {"$max": {"left_at": utc(at)}}, upsert=True)
            except DuplicateKeyError:  # the same departure, said at once: the other one inserted it
                await self._db[DEPARTURES].update_one(where, {"$max": {"left_at": utc(at)}})

    async def member_returned(self, place: str, member: UserRef) -> None:
        """The member joined the place again: everything they did there counts again."""
        with translated_errors("record a return"):
            await self._db[DEPARTURES].delete_one(
                {"place": place, "platform": member.platform, "user_id": member.user_id})
