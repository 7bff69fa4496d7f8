"""Server playlists and the server's mood of the week, built by aggregation.

A place's members are the users seen there: they asked /mood there, or wrote a journal entry
there, and have not left since (`departures`: a member who left, or was removed, counts again once
they come back, or ask /mood or write there again, with all their songs). What counts for a place: its mood requests by members, plus every journal entry of its
members (most are written in private chats) but the files they uploaded elsewhere. Members who
opted out of sharing (`share_with_server` false) are never counted; a member with no user
document shares, the default.

Two steps, both driven by indexes (SecantusDB runs `$unionWith` and pipeline-only `$lookup` as
full collection scans, so neither appears here):
1. who was seen in the place: the distinct authors of its requests (read from their summaries,
   `storage/place_tracks.py`: one per member and track, not one per request) and of its journal
   entries, with when each was last seen there, less those whose departure came later;
2. one pipeline over those members (`$documents`): `$lookup` the user to drop opted-out
   members, `$lookup` their summaries in the place and their journal entries (joined on the
   indexed user_id, then filtered by platform), unwind, and group. A YouTube video that a catalog
   song's audio came from counts as that song, and the releases of one recording (the single and
   the album: one ISRC, two Spotify ids) as one song (`same_song`), however the members asked.
   A window (the mood of the week, `since`) reads the place's requests in it first
   (`place_requests_pipeline`, on the place_created index) and hands each member theirs in
   `$documents`: joined per member, every request of theirs in every place was read, then all
   but the week's dropped (2 000 members, 100 000 requests in one place: 5.3 s for the week's
   aggregation, now 2.0 s).

A member has one vote per song, for the mood they were told last (`member_songs_pipeline`): the
fallback ANN may have called a song happy before the main model called it sad, and both the
playlists and the mood of the week count it as sad. So a playlist reads the documents of every
mood, not only its own; each lookup groups them by track inside it, and what comes out is one row
per member and track (about as many rows as one mood's documents were). Letting every document
out of the lookups and grouping afterwards took about twice the time on SecantusDB.

Each track's song costs three indexed joins on `tracks` (video, key, ISRC): about a fifth more
time for a playlist on SecantusDB than the video join alone (README, Storage benchmark).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from storage.codec import utc
from storage.failures import translated_errors
from storage.models import UPLOAD_KEY_PREFIX, PlaylistItem, UserRef
from storage.mood_requests import RequestRepo
from storage import place_tracks
from storage.schema import DEPARTURES, JOURNAL, PLACE_TRACKS, REQUESTS, TRACKS, USERS

WEEK = timedelta(days=7)
YOUTUBE_KEY_PREFIX = "youtube:"  # a video heard under its own key (bot.usecases.mood)
UPLOAD_TITLE = "An audio file"  # an upload nobody here named (recorded before requests kept titles)


def seen_in_place_pipeline(place: str) -> list[dict[str, Any]]:
    """Step 1, run on `requests` and on `journal` alike: the distinct authors in a place, and
    when each was last seen there (`last`)."""
    return [
        {"$match": {"place": place}},
        {"$group": {"_id": {"platform": "$platform", "user_id": "$user_id"},
                    "last": {"$max": "$created_at"}}},
    ]


def seen_in_summary_pipeline(place: str) -> list[dict[str, Any]]:
    """Step 1 on `place_tracks`: the members who asked for a song in the place, and when last."""
    return [
        {"$match": {"place": place}},
        {"$group": {"_id": {"platform": "$platform", "user_id": "$user_id"},
                    "last": {"$max": "$latest.at"}}},
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


def _join_summary(place: str) -> dict[str, Any]:
    """`$lookup` one member's summaries in the place: the rows `_join_member` makes of their
    requests there, kept as the requests are written."""
    return {"$lookup": {
        "from": PLACE_TRACKS,
        "localField": "user_id",
        "foreignField": "user_id",
        "let": {"platform": "$platform"},
        "pipeline": [
            {"$match": {"$expr": {"$eq": ["$platform", "$$platform"]}}},
            {"$match": {"place": place}},
            {"$project": {"_id": "$track_key", "latest": 1, "title": 1}},
        ],
        "as": "requests",
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


def member_activity_pipeline(
    place: str, members: list[UserRef], criteria: dict[str, Any],
    requests: dict[UserRef, list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """Runs with `$documents`: one row per sharing member and track they asked for or journaled
    (`activity`: _id the track key, latest {at, mood}, title), from the place's requests and the
    member's journal (a track in both is two rows). The `requests` rows, one per member and track
    (`place_requests_pipeline`), are read beforehand in a window; without them (all time) each
    member's summary in the place is joined here (`storage/place_tracks.py`)."""
    if requests is None:
        rows = [{"platform": m.platform, "user_id": m.user_id} for m in members]
        join_requests = [_join_summary(place)]
    else:
        rows = [{"platform": m.platform, "user_id": m.user_id, "requests": requests.get(m, [])}
                for m in members]
        join_requests = []
    return [
        {"$documents": rows},
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
        *join_requests,
        _join_member(JOURNAL, {**criteria, **shareable_entry(place)}, "$track_title", "journal"),
        {"$project": {"_id": 0, "platform": 1, "user_id": 1,
                      "activity": {"$concatArrays": ["$requests", "$journal"]}}},
        {"$unwind": "$activity"},
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


def requests_by_member(rows: list[dict[str, Any]]) -> dict[UserRef, list[dict[str, Any]]]:
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


def member_songs_pipeline(
    place: str, members: list[UserRef], criteria: dict[str, Any],
    requests: dict[UserRef, list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """One row per (song, member): `_id` {song, voter}, `latest` {at, mood}, the last answer the
    member was told for the song (by any of its keys, in the requests or the journal), `title`."""
    return [
        *member_activity_pipeline(place, members, criteria, requests),
        # Per track first: each track's song is looked up once.
        {"$group": {"_id": "$activity._id",
                    "votes": {"$push": {"voter": {"platform": "$platform", "user_id": "$user_id"},
                                        "latest": "$activity.latest", "title": "$activity.title"}}}},
        *same_song("$_id"),
        # One vote per (song, member): a member who played a song ten times, or by its link and by
        # its name, is one vote.
        {"$unwind": "$votes"},
        {"$group": {"_id": {"song": "$song", "voter": "$votes.voter"},
                    "latest": {"$max": "$votes.latest"}, "title": {"$max": "$votes.title"}}},
    ]


def playlist_pipeline(
    place: str, members: list[UserRef], mood: str, limit: int, since: datetime | None,
    requests: dict[UserRef, list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    top_first = {"$sort": {"members": -1, "last_at": -1, "_id": 1}}
    return [
        *member_songs_pipeline(place, members, _window(since), requests),
        # A member's vote goes to the mood they were told last, as in the mood of the week.
        {"$match": {"latest.mood": mood}},
        {"$group": {"_id": "$_id.song", "members": {"$sum": 1},
                    "last_at": {"$max": "$latest.at"}, "title": {"$max": "$title"}}},
        top_first,
        {"$limit": limit},
        {"$lookup": {"from": TRACKS, "localField": "_id", "foreignField": "key",
                     "as": "track"}},
        {"$unwind": {"path": "$track", "preserveNullAndEmptyArrays": True}},
        top_first,
    ]


def week_window(now: datetime) -> dict[str, Any]:
    return _window(now - WEEK, now)


def mood_of_week_pipeline(place: str, members: list[UserRef], now: datetime,
                          requests: dict[UserRef, list[dict[str, Any]]] | None = None) -> list[dict]:
    return [
        *member_songs_pipeline(place, members, week_window(now), requests),
        {"$group": {"_id": "$latest.mood", "n": {"$sum": 1}}},
    ]


def playlist_item(row: dict[str, Any]) -> PlaylistItem:
    track = row.get("track") or {}
    # An upload is named as the place's members named it; a record written before uploads were
    # kept nameless may still hold its first sender's file name.
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
        members = await self.members_seen(place)
        if not members or limit <= 0:
            return []
        with translated_errors("server playlist"):
            requests = None if since is None else await self._place_requests(place, _window(since))
            pipeline = playlist_pipeline(place, members, mood, limit, since, requests)
            rows = await (await self._db.aggregate(pipeline)).to_list()
        return [playlist_item(row) for row in rows]

    async def server_mood_of_week(self, place: str, now: datetime) -> dict[str, int]:
        """Counts per mood over the seven days up to `now`; moods with no entry are absent."""
        members = await self.members_seen(place)
        if not members:
            return {}
        with translated_errors("server mood of the week"):
            requests = await self._place_requests(place, week_window(now))
            cursor = await self._db.aggregate(mood_of_week_pipeline(place, members, now, requests))
            rows = await cursor.to_list()
        return {row["_id"]: int(row["n"]) for row in sorted(rows, key=lambda r: r["_id"])}

    async def _place_requests(self, place: str,
                              window: dict[str, Any]) -> dict[UserRef, list[dict[str, Any]]]:
        cursor = await self._db[REQUESTS].aggregate(place_requests_pipeline(place, window))
        return requests_by_member(await cursor.to_list())

    async def move_place(self, old_place: str, new_place: str) -> None:
        """Everything heard or written in `old_place` counts in `new_place` from now on, the
        requests recorded after this call too (answers still on their way)."""
        if self._requests is not None:
            self._requests.place_moved(old_place, new_place)
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

    async def members_seen(self, place: str) -> list[UserRef]:
        """Everyone seen in the place and not gone since, whatever their sharing choice (filtered
        in step 2): a member whose departure is later than the last time they were seen there
        is not counted."""
        if self._requests is not None:  # every query here starts from this: see the writes first
            await self._requests.settled()
        last_seen: dict[UserRef, datetime] = {}
        with translated_errors("server members"):
            for collection, pipeline in ((PLACE_TRACKS, seen_in_summary_pipeline(place)),
                                         (JOURNAL, seen_in_place_pipeline(place))):
                cursor = await self._db[collection].aggregate(pipeline)
                for row in await cursor.to_list():
                    ref = UserRef(row["_id"]["platform"], row["_id"]["user_id"])
                    last_seen[ref] = max(last_seen.get(ref, row["last"]), row["last"])
            async for doc in self._db[DEPARTURES].find({"place": place}):
                ref = UserRef(doc["platform"], doc["user_id"])
                if ref in last_seen and doc["left_at"] > last_seen[ref]:
                    del last_seen[ref]
        return sorted(last_seen, key=lambda ref: (ref.platform, ref.user_id))

    async def member_left(self, place: str, member: UserRef, at: datetime) -> None:
        """The member left the place (or was removed) at `at`: what they did there before stops
        counting. Said twice (a service message and a membership update), the later time stays.
        Someone never seen there (who never used the bot there, or deleted it all with /forget)
        has nothing there to stop counting: nothing is recorded about them."""
        if self._requests is not None:  # a request on its way is a visit
            await self._requests.settled()
        where = {"place": place, "platform": member.platform, "user_id": member.user_id}
        if await self._ever_seen(where):
            await self._record_departure(where, at)

    async def _ever_seen(self, where: dict[str, Any]) -> bool:
        """Whether the member asked /mood or wrote a journal entry in the place (indexed reads)."""
        with translated_errors("record a departure"):
            for collection in (REQUESTS, JOURNAL):
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
