"""Server playlists and the server's mood of the week, built by aggregation.

A place's members are the users seen there: they asked /mood there or wrote a journal entry
there. Members who opted out of sharing (`share_with_server` false) are never counted.
What counts for a place: its mood requests, plus every journal entry of its sharing members.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from storage.codec import utc
from storage.failures import translated_errors
from storage.models import PlaylistItem, UserRef
from storage.schema import JOURNAL, REQUESTS, TRACKS, USERS

WEEK = timedelta(days=7)
_IDENTITY = {"_id": 0, "platform": 1, "user_id": 1}


def sharing_members_pipeline(place: str) -> list[dict[str, Any]]:
    """Runs on `requests`: who was seen in the place, minus who opted out."""
    return [
        {"$match": {"place": place}},
        {"$project": _IDENTITY},
        {"$unionWith": {"coll": JOURNAL, "pipeline": [{"$match": {"place": place}},
                                                     {"$project": _IDENTITY}]}},
        {"$group": {"_id": {"platform": "$platform", "user_id": "$user_id"}}},
        {"$lookup": {
            "from": USERS,
            "let": {"platform": "$_id.platform", "user_id": "$_id.user_id"},
            "pipeline": [
                {"$match": {"$expr": {"$and": [{"$eq": ["$platform", "$$platform"]},
                                               {"$eq": ["$user_id", "$$user_id"]}]}}},
                {"$project": {"_id": 0, "share_with_server": 1}},
            ],
            "as": "user",
        }},
        # An empty lookup (no user document yet) means the default: sharing.
        {"$match": {"user.share_with_server": {"$ne": False}}},
    ]


def members_filter(members: list[UserRef]) -> dict[str, Any]:
    """Match documents of these members: one `$in` per platform, not one clause per member."""
    by_platform: dict[str, list[str]] = defaultdict(list)
    for member in members:
        by_platform[member.platform].append(member.user_id)
    return {"$or": [{"platform": platform, "user_id": {"$in": sorted(ids)}}
                    for platform, ids in sorted(by_platform.items())]}


def _window(since: datetime | None, until: datetime | None = None) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if since is not None:
        bounds["$gte"] = utc(since)
    if until is not None:
        bounds["$lte"] = utc(until)
    return {"created_at": bounds} if bounds else {}


def place_activity(
    place: str, members: list[UserRef], criteria: dict[str, Any], fields: dict[str, Any]
) -> list[dict[str, Any]]:
    """Runs on `requests`: the place's requests by sharing members plus their journal entries,
    both matching `criteria`, each projected to `fields` and a `title` (journal entries carry
    one; requests get theirs from `tracks`)."""
    who = members_filter(members)
    return [
        {"$match": {"$and": [{"place": place}, who, criteria]}},
        {"$project": {"_id": 0, **fields, "title": None}},
        {"$unionWith": {"coll": JOURNAL, "pipeline": [
            {"$match": {"$and": [who, criteria]}},
            {"$project": {"_id": 0, **fields, "title": "$track_title"}},
        ]}},
    ]


def playlist_pipeline(
    place: str, members: list[UserRef], mood: str, limit: int, since: datetime | None
) -> list[dict[str, Any]]:
    fields = {"platform": 1, "user_id": 1, "track_key": 1, "created_at": 1}
    criteria = {"mood": mood, **_window(since)}
    return [
        *place_activity(place, members, criteria, fields),
        # One row per (track, member) first, so a member who played a song ten times is one vote.
        {"$group": {"_id": {"track": "$track_key", "platform": "$platform",
                            "user_id": "$user_id"},
                    "last_at": {"$max": "$created_at"}, "title": {"$max": "$title"}}},
        {"$group": {"_id": "$_id.track", "members": {"$sum": 1},
                    "last_at": {"$max": "$last_at"}, "title": {"$max": "$title"}}},
        {"$sort": {"members": -1, "last_at": -1, "_id": 1}},
        {"$limit": limit},
        {"$lookup": {"from": TRACKS, "localField": "_id", "foreignField": "key",
                     "as": "track"}},
        {"$unwind": {"path": "$track", "preserveNullAndEmptyArrays": True}},
        {"$sort": {"members": -1, "last_at": -1, "_id": 1}},
    ]


def mood_of_week_pipeline(place: str, members: list[UserRef], now: datetime) -> list[dict]:
    fields = {"mood": 1}
    return [
        *place_activity(place, members, _window(now - WEEK, now), fields),
        {"$group": {"_id": "$mood", "n": {"$sum": 1}}},
    ]


def playlist_item(row: dict[str, Any]) -> PlaylistItem:
    track = row.get("track") or {}
    return PlaylistItem(
        track_key=row["_id"],
        title=track.get("title") or row.get("title") or row["_id"],
        artists=list(track.get("artists", [])),
        spotify_url=track.get("spotify_url"),
        members=int(row["members"]),
        last_at=row["last_at"],
    )


class PlaylistQueries:
    def __init__(self, db: AsyncDatabase) -> None:
        self._db = db

    async def playlist(
        self, place: str, mood: str, *, limit: int = 20, since: datetime | None = None
    ) -> list[PlaylistItem]:
        """The place's top tracks of this mood: most distinct members first, then most recent."""
        members = await self._sharing_members(place)
        if not members or limit <= 0:
            return []
        pipeline = playlist_pipeline(place, members, mood, limit, since)
        with translated_errors("server playlist"):
            rows = await (await self._db[REQUESTS].aggregate(pipeline)).to_list()
        return [playlist_item(row) for row in rows]

    async def server_mood_of_week(self, place: str, now: datetime) -> dict[str, int]:
        """Counts per mood over the seven days up to `now`; moods with no entry are absent."""
        members = await self._sharing_members(place)
        if not members:
            return {}
        with translated_errors("server mood of the week"):
            cursor = await self._db[REQUESTS].aggregate(mood_of_week_pipeline(place, members, now))
            rows = await cursor.to_list()
        return {row["_id"]: int(row["n"]) for row in sorted(rows, key=lambda r: r["_id"])}

    async def _sharing_members(self, place: str) -> list[UserRef]:
        with translated_errors("server members"):
            cursor = await self._db[REQUESTS].aggregate(sharing_members_pipeline(place))
            rows = await cursor.to_list()
        return [UserRef(row["_id"]["platform"], row["_id"]["user_id"]) for row in rows]
