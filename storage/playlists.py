"""Server playlists and the server's mood of the week: read by indexed queries, counted here.

A place's members are the users seen there: they asked /mood there, or wrote a journal entry
there, and have not left since (`departures`: a member who left, or was removed, counts again once
they come back, or ask /mood or write there again, with all their songs). What counts for a
place: its mood requests by members, plus every journal entry of its members (most are written
in private chats) but the files they uploaded elsewhere. Members who opted out of sharing
(`share_with_server` false) are never counted; a member with no user document shares, the default.

Every read is driven by an index (SecantusDB runs `$unionWith` and pipeline-only `$lookup` as
full collection scans, a `$lookup` by an index as one query per row, ~0.3 ms each however little
it reads, and matches each document against a whole `$in` list: none appears here, and `$in`
lists are cut into batches, `_find_in`):
1. who was seen in the place: the authors of its requests, from the place's summaries
   (`storage/place_tracks.py`: one per member and track, kept as the requests are written, so a
   place's whole history is not read; read as one document per member, `place_members`, the same
   answers in a tenth of the documents), and of its journal entries, with when each was last seen
   there, less those whose departure came later; in a window, only its authors are asked about,
   from the place's summaries told since it began (`_window_members`);
2. what each member was last told per track: their summaries, less the opted-out members (their
   user documents, `_sharing`), and each sharing member's journal summaries (`_journals`,
   `storage/journal_tracks.py`: one per member and track, kept as the entries are written, so a
   member's every entry is not read; read as one document per member, `journal_members`); or, in a
   window (the mood of the week, `since`), the place's requests in it (`place_requests_pipeline`,
   on place_created) and everyone's journal entries in it (`journal_window_pipeline`, on
   created), of the sharing members; a quiet place of few members in a busy window reads each
   member's entries in it instead (`_window_journals`);
3. each track's song (`_songs`): a YouTube video that a catalog song's audio came from counts as
   that song (`catalog_songs`), and the releases of one recording (the single and the album: one
   ISRC, two Spotify ids) as one song (`first_releases`), however the members asked.

A member has one vote per song, for the mood they were told last (`votes_by_song`): the fallback
ANN may have called a song happy before the main model called it sad, and both the playlists and
the mood of the week count it as sad. The votes are counted here, not by `$group` stages:
SecantusDB copies every row through every stage, and with 2 000 members and 100 000 requests in
one place the ~24 000 rows of (member, track) took longer to group than to read.
"""
from __future__ import annotations

import asyncio
import re
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import datetime, timedelta
from typing import Any, Iterable

import bson
from bson.codec_options import CodecOptions
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from storage.codec import date_text, user_filter, utc
from storage.failures import translated_errors
from storage.models import UPLOAD_KEY_PREFIX, PlaylistItem, UserRef
from storage.journal import JournalRepo
from storage.mood_requests import RequestRepo
from storage import place_tracks
from storage import journal_tracks
from storage.schema import (DEPARTURES, JOURNAL, JOURNAL_MEMBERS, JOURNAL_TRACKS, PLACE_MEMBERS, PLACE_TRACKS, REQUESTS,
                            TRACKS, USERS)

WEEK = timedelta(days=7)
SHARING_FIELDS = {"_id": 0, "platform": 1, "user_id": 1, "share_with_server": 1}
ENTRY_FIELDS = {"_id": 0, "platform": 1, "user_id": 1, "place": 1, "track_key": 1, "created_at": 1, "mood": 1,
                "track_title": 1}
VIDEO_FIELDS = {"_id": 0, "key": 1, "youtube_id": 1, "mood": 1}
RELEASE_FIELDS = {"_id": 0, "key": 1, "isrc": 1}
# Values per `$in` (`PlaylistQueries._find_in`): SecantusDB's cost per document grows with the list,
# and each query costs a round trip. Timed on one server of 2 000 members (benchmarks/large_server.py):
# their user documents in batches of 8, 16, 32 and 64 took 289, 200, 177 and 208 ms; their 10 000
# journal entries 608, 637, 732 and 943 ms; its 418 tracks 88, 46, 42 and 48 ms. The journals'
# summaries that replaced the entries (`_journals`; 4 989 of 200 members who journaled a year each,
# 5 006 of those 10 000 entries) in batches of 8, 16, 32, 64 and 128: 575, 691, 665, 890 and 1 256 ms,
# and 458, 424, 413, 469 and 755 ms (medians of 5, the machine shared): 8 kept. Read as one document
# per member (journal_members), those 200 members' documents and the others' none, in batches of 16,
# 32, 64, 128 and 256: 131-164, 65-73, 66-69, 60-69 and 77-81 ms (two runs, medians of 5).
USER_BATCH = 32
JOURNAL_BATCH = 64
TRACK_BATCH = 32
# A window's authors with no summary in it (`PlaylistQueries._window_members`) are looked up one by
# one, ~1 ms each, as long as that costs less than reading all the place's summaries, ~30 µs each,
# of which those in the window are a part; past it (or past ALONE_AT_MOST, if more) all are read:
# everyone's journal entries of a week are read, and most of a small server's authors are strangers.
SUMMARIES_PER_LOOKUP = 32
# A place whose summaries told in a window are at most QUIET_PLACE_SUMMARIES, in a window of more
# than WEEK_ENTRIES_READ_AT_MOST journal entries (everyone's, counted up to one more through
# `created`), has its members told by all its summaries, and the window's entries of each member
# read alone (`_window_journals`), not everyone's entries of the window: the mood of the week of a
# group of 2 members, among 5 000 users who journaled 20 000 songs that week, took 3 s (0.4 s now,
# the count most of it: SecantusDB reads a range whole before its limit). A busier place reads
# everyone's, as before.
QUIET_PLACE_SUMMARIES = 256
WEEK_ENTRIES_READ_AT_MOST = 1000
# ... and at most MEMBERS_READ_ALONE members who share (else everyone's entries are read, as before).
MEMBERS_READ_ALONE = 64
# How far a journal entry's local day (`local_date`, its user's zone's, the day of the prompt it
# answers, which is answered that day) can be before the UTC day it was written: UTC-12's, and a day
# of margin. It bounds a member's entries read through `user_page` to the window's days.
LOCAL_DATE_BEHIND = timedelta(days=2)
# Members' documents per batch when all a place's are read (`_summaries`): each batch is received whole
# by the event loop, as raw bytes decoded in a thread; a server of 2 000 members' came in one 1.6 MB batch.
SUMMARY_BATCH = 2000
ALONE_AT_MOST = 32
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


def is_shareable(entry: dict[str, Any], place: str) -> bool:
    """`shareable_entry`, for an entry read here."""
    key = entry.get("track_key")
    return entry.get("place") == place or not (isinstance(key, str) and key.startswith(UPLOAD_KEY_PREFIX))


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
    `rows_by_member` takes them: a member's whole history in every place is not read for a week."""
    return [
        {"$match": {"place": place, **window}},
        {"$group": {"_id": {"platform": "$platform", "user_id": "$user_id", "track": "$track_key"},
                    "latest": {"$max": {"at": "$created_at", "mood": "$mood"}},
                    "title": {"$max": "$title"}, "link": {"$max": "$source_link"}}},
    ]


# One answer a member was told, as the votes are counted from it: (track, at, mood, title asked by,
# link to a message of the place that holds the file: an upload's, where its request kept one).
# The rows, the votes and their keys are tuples of strings and times, which the garbage collector
# stops tracking: as dicts and objects, a server of 2 000 members' 20 892 summaries made ~113 000
# of them at once, and full collections, which stop every thread and the event loop, of 60-145 ms.
Told = tuple[str, datetime, str, "str | None", "str | None"]
# What a member was last told for a track or a song: (at, mood) of the latest answer (the `$max` of
# {at, mood}), the greatest title they asked it by and the greatest link (`told_more`).
Heard = tuple[datetime, str, "str | None", "str | None"]
# A place's summaries as read (`summary_rows`): what each member was told there, by member, and when
# each was last told something there.
Summaries = tuple[dict[UserRef, list[Told]], dict[UserRef, datetime]]


def rows_by_member(rows: list[dict[str, Any]]) -> dict[UserRef, list[Told]]:
    """The rows `place_requests_pipeline` and `journal_window_pipeline` make, by member."""
    by_member: dict[UserRef, list[Told]] = {}
    for row in rows:
        key, latest = row["_id"], row["latest"]
        by_member.setdefault(UserRef(key["platform"], key["user_id"]), []).append(
            (key["track"], latest["at"], latest["mood"], row.get("title"), row.get("link")))
    return by_member


def summary_rows(batches: list[bytes], codec_options: CodecOptions) -> Summaries:
    """The place's request summaries (raw BSON batches of its members' documents, `place_members`),
    one per member and track, by member, and when each member was last told something there: one
    pass over the documents."""
    by_member: dict[UserRef, list[Told]] = {}
    last_seen: dict[UserRef, datetime] = {}
    for batch in batches:
        for doc in bson.decode_iter(batch, codec_options):
            told = [(place_tracks.track_key_of(name), summary["latest"]["at"], summary["latest"]["mood"],
                     summary.get("title"), summary.get("source_link")) for name, summary in doc["tracks"].items()]
            if told:
                member = UserRef(doc["platform"], doc["user_id"])
                by_member.setdefault(member, []).extend(told)
                seen(last_seen, member, max(at for _track, at, _mood, _title, _link in told))
    return by_member, last_seen


def journal_summary_rows(place: str, batches: list[bytes], codec_options: CodecOptions) -> dict[UserRef, list[Told]]:
    """The members' journal summaries (raw BSON batches of their `journal_members` documents) that
    count in the place, by member: a song's (no place) everywhere, an upload's where it was sent."""
    here = place_tracks.track_field(place)
    by_member: dict[UserRef, list[Told]] = {}
    for batch in batches:
        for doc in bson.decode_iter(batch, codec_options):
            told = [*doc.get("songs", {}).items(), *doc.get("uploads", {}).get(here, {}).items()]
            if told:
                by_member.setdefault(UserRef(doc["platform"], doc["user_id"]), []).extend(
                    (place_tracks.track_key_of(name), summary["latest"]["at"], summary["latest"]["mood"],
                     summary.get("title"), None) for name, summary in told)
    return by_member


def journal_rows(place: str, docs: Iterable[dict[str, Any]]) -> dict[UserRef, list[Told]]:
    """The journal entries `docs` that count in the place (`is_shareable`), by member: one row per entry."""
    by_member: dict[UserRef, list[Told]] = {}
    for doc in docs:
        if is_shareable(doc, place):
            by_member.setdefault(UserRef(doc["platform"], doc["user_id"]), []).append(
                (doc["track_key"], doc["created_at"], doc["mood"], doc.get("track_title"), None))
    return by_member


def tracks_heard(sharing: list[UserRef], requests: dict[UserRef, list[Told]],
                 journal: dict[UserRef, list[Told]]) -> set[str]:
    """The tracks the sharing members were told of, in their requests' and journal's rows."""
    return {row[0] for member in sharing for rows in (journal.get(member, ()), requests.get(member, ()))
            for row in rows}


def is_video(key: str) -> bool:
    return key.startswith(YOUTUBE_KEY_PREFIX)


def catalog_songs(videos: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Video id -> the catalog song whose audio came from it (`tracks` documents of those
    `youtube_id`s): the smallest key of a track that is no video itself and has a mood. The cache
    answers a video's link as its catalog song only once the song is known: a link asked for
    before anyone asked for the song by name keeps a record of its own."""
    songs: dict[str, str] = {}
    for doc in videos:
        key, video = doc.get("key"), doc.get("youtube_id")
        if not isinstance(key, str) or is_video(key) or doc.get("mood") is None or not isinstance(video, str):
            continue
        if video not in songs or key < songs[video]:
            songs[video] = key
    return songs


def has_isrc(track: dict[str, Any]) -> bool:
    """A track's ISRC names a recording when it is a non-empty string: no ISRC (absent, null or
    "") is no recording, and tracks without one stay apart."""
    isrc = track.get("isrc")
    return isinstance(isrc, str) and isrc != ""


def first_releases(releases: Iterable[dict[str, Any]]) -> dict[str, str]:
    """ISRC -> the smallest key among its releases (`tracks` documents of those ISRCs): the key
    every release of the recording counts under, stable while no new release is saved."""
    first: dict[str, str] = {}
    for doc in releases:
        if has_isrc(doc) and (doc["isrc"] not in first or doc["key"] < first[doc["isrc"]]):
            first[doc["isrc"]] = doc["key"]
    return first


def told_more(heard: Heard | None, at: datetime, mood: str, title: str | None, link: str | None) -> Heard:
    """`heard` (None: nothing yet) and one more answer, (at, mood), asked by `title` (by the file
    of `link`): the `$max` of {at, mood}, of the titles and of the links, none ignored."""
    if heard is None:
        return at, mood, title, link
    latest_at, latest_mood = max((heard[0], heard[1]), (at, mood))
    return latest_at, latest_mood, greatest_title(heard[2], title), greatest_title(heard[3], link)


def greatest_title(one: str | None, other: str | None) -> str | None:
    return one if other is None else other if one is None else max(one, other)


# A member's vote for a song: (song, the member's platform, their user id).
Vote = tuple[str, str, str]


def votes_by_song(sharing: list[UserRef], requests: dict[UserRef, list[Told]], journal: dict[UserRef, list[Told]],
                  songs: dict[str, str]) -> dict[Vote, Heard]:
    """One vote per (song, member) of the sharing members, for the last answer the member was told
    for the song (by any of its keys, in the requests or the journal): a member who played a song
    ten times, or by its link and by its name, is one vote. Folded straight from the rows: `told_more`
    keeps the greatest of each part whatever the order, so per track first (as before) changes nothing."""
    votes: dict[Vote, Heard] = {}
    for member in sharing:
        for track, at, mood, title, link in (*journal.get(member, ()), *requests.get(member, ())):
            vote = (songs.get(track, track), member.platform, member.user_id)
            votes[vote] = told_more(votes.get(vote), at, mood, title, link)
    return votes


def top_songs(votes: dict[Vote, Heard], mood: str, limit: int) -> list[dict[str, Any]]:
    """The songs whose members were last told `mood`, most members first, then the most recent,
    then by key: rows {_id, members, last_at, title, link}: the link is one of its voters' (a
    member who left, or does not share, links none)."""
    rows: dict[str, dict[str, Any]] = {}
    for (song, _platform, _user_id), (at, told, title, link) in votes.items():
        if told != mood:  # a member's vote goes to the mood they were told last
            continue
        row = rows.setdefault(song, {"_id": song, "members": 0, "last_at": at, "title": None, "link": None})
        row["members"] += 1
        row["last_at"] = max(row["last_at"], at)
        row["title"] = greatest_title(row["title"], title)
        row["link"] = greatest_title(row["link"], link)
    ranked = sorted(rows.values(), key=lambda row: row["_id"])
    ranked.sort(key=lambda row: (row["members"], row["last_at"]), reverse=True)
    return ranked[:limit]


def songs_per_mood(votes: dict[Vote, Heard]) -> dict[str, int]:
    """How many songs each mood's playlist holds: a song some members were last told sad and
    others calm is in both."""
    songs: dict[str, set[str]] = {}
    for (song, _platform, _user_id), (_at, mood, _title, _link) in votes.items():
        songs.setdefault(mood, set()).add(song)
    return {mood: len(each) for mood, each in sorted(songs.items())}


def mood_counts(votes: dict[Vote, Heard]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _at, mood, _title, _link in votes.values():
        counts[mood] = counts.get(mood, 0) + 1
    return dict(sorted(counts.items()))


def seen(last_seen: dict[UserRef, datetime], ref: UserRef, at: datetime) -> None:
    last_seen[ref] = max(last_seen.get(ref, at), at)


def staying(last_seen: dict[UserRef, datetime], departed: dict[UserRef, datetime]) -> list[UserRef]:
    """The members seen (`last_seen`) but those whose departure came later than their last time
    there, in order."""
    return sorted((ref for ref, at in last_seen.items() if not (ref in departed and departed[ref] > at)),
                  key=lambda ref: (ref.platform, ref.user_id))


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
        source_link=row.get("link") if upload else None,
    )


class PlaylistQueries:
    def __init__(self, db: AsyncDatabase, requests: RequestRepo | None = None,
                 journal: JournalRepo | None = None) -> None:
        self._db = db
        self._requests = requests
        self._journal = journal  # its summaries a failed delete left wrong are made again before a read

    async def playlist(
        self, place: str, mood: str, *, limit: int = 20, since: datetime | None = None
    ) -> list[PlaylistItem]:
        """The place's top tracks of this mood: most distinct members first, then most recent."""
        return (await self.ranked(place, mood, limit=limit, since=since))[0]

    async def ranked(self, place: str, mood: str, *, limit: int = 20,
                     since: datetime | None = None) -> tuple[list[PlaylistItem], dict[str, int]]:
        """`playlist`, and how many songs of each mood the place has in all (`songs_per_mood`): a
        list cut at `limit` says how many more there are, an empty one which moods have some."""
        if limit <= 0:
            return [], {}
        with translated_errors("server playlist"):
            votes = await self._votes(place, since)
            rows, per_mood = await asyncio.to_thread(lambda: (top_songs(votes, mood, limit), songs_per_mood(votes)))
            tracks = await self._tracks([row["_id"] for row in rows])
        return [playlist_item({**row, "track": tracks.get(row["_id"])}) for row in rows], per_mood

    async def server_mood_of_week(self, place: str, now: datetime) -> dict[str, int]:
        """Counts per mood over the seven days up to `now`; moods with no entry are absent."""
        with translated_errors("server mood of the week"):
            return mood_counts(await self._votes(place, now - WEEK, now))

    async def _votes(self, place: str, since: datetime | None = None,
                     until: datetime | None = None) -> dict[Vote, Heard]:
        """Step 2: the sharing members' votes, one per (song, member). The place's requests come
        from their summaries, or, in a window (`since`), from the requests in it."""
        if since is not None:
            return await self._window_votes(place, since, until)
        requests, last_seen = await self._summaries(place)
        members = await self._members(place, last_seen)
        if not members:
            return {}
        sharing = await self._sharing(members)
        journals = await self._journals(place, sharing)
        return await self._count(sharing, requests, journals)

    async def _window_votes(self, place: str, since: datetime,
                            until: datetime | None) -> dict[Vote, Heard]:
        """The votes of the window's requests in the place and journal entries, of its authors
        who are members (`_window_members`) and share."""
        await self._settled()
        window = _window(since, until)
        with translated_errors("server members"):
            journal_seen, departed = await self._journal_seen_and_departures(place)
        requests = await self._by_member(REQUESTS, place_requests_pipeline(place, window))
        if not requests and not journal_seen and not await self._has_summaries(place):
            return {}  # no one was ever seen there: everyone's entries of the window are not read
        with translated_errors("server members"):
            recent = await self._db[PLACE_TRACKS].find({"place": place, "latest.at": {"$gte": utc(since)}}).to_list()
            quiet_in_busy = len(recent) <= QUIET_PLACE_SUMMARIES and len(await self._db[JOURNAL].find(
                window, projection={"_id": 0, "created_at": 1}, limit=WEEK_ENTRIES_READ_AT_MOST + 1).to_list()) \
                > WEEK_ENTRIES_READ_AT_MOST
        if quiet_in_busy:  # its members, from all its summaries: a few have their entries read alone
            _requests, last_seen = await self._summaries(place)
            for ref, at in journal_seen.items():
                seen(last_seen, ref, at)
            sharing = await self._sharing(staying(last_seen, departed))
            if len(sharing) <= MEMBERS_READ_ALONE:
                return await self._count(sharing, requests, await self._window_journals(place, sharing, since, until))
        journal = await self._by_member(JOURNAL, journal_window_pipeline(place, window))
        if not quiet_in_busy:
            sharing = await self._sharing(
                await self._window_members(place, {*requests, *journal}, recent, journal_seen, departed))
        return await self._count(sharing, requests, journal)

    async def _window_journals(self, place: str, members: list[UserRef], since: datetime,
                               until: datetime | None) -> dict[UserRef, list[Told]]:
        """The members' journal entries in the window that count in the place, as rows of
        `rows_by_member`: each member's read alone, through `user_page`, from the window's first
        local day on (SecantusDB scans the collection for a `$in` of users beside any other field)."""
        first_day = date_text((since - LOCAL_DATE_BEHIND).date())
        docs: list[dict[str, Any]] = []
        with translated_errors("server members"):
            for member in members:
                docs += await self._db[JOURNAL].find({**user_filter(member), "local_date": {"$gte": first_day}},
                                                     projection=ENTRY_FIELDS).to_list()
        last = None if until is None else utc(until)
        window = [doc for doc in docs
                  if utc(since) <= doc["created_at"] and (last is None or doc["created_at"] <= last)]
        return await asyncio.to_thread(journal_rows, place, window)

    async def _count(self, sharing: list[UserRef], requests: dict[UserRef, list[Told]],
                     journal: dict[UserRef, list[Told]]) -> dict[Vote, Heard]:
        songs = await self._songs(await asyncio.to_thread(tracks_heard, sharing, requests, journal))
        return await asyncio.to_thread(votes_by_song, sharing, requests, journal, songs)

    async def _find_in(self, collection: str, field: str, values: Iterable[str], batch: int,
                       projection: dict[str, Any] | None, *, raw: bool = False) -> list[Any]:
        """The documents whose `field` is one of `values`, through the index that `field` leads,
        `batch` values per query: SecantusDB matches each document it fetches against the whole
        `$in` list, one value after another, so one query of 2 000 members took 3 s for their
        2 000 user documents (and 15 s for their 10 000 journal entries). `raw`: as the database's
        batches of BSON, undecoded (`find_raw_batches`), for a worker thread to decode."""
        ordered = sorted(set(values))
        found: list[Any] = []
        for start in range(0, len(ordered), batch):
            find = self._db[collection].find_raw_batches if raw else self._db[collection].find
            found.extend(await find({field: {"$in": ordered[start:start + batch]}}, projection=projection).to_list())
        return found

    async def _sharing(self, members: list[UserRef]) -> list[UserRef]:
        """The members who share with the server: a member with no user document shares, the
        default."""
        users = await self._find_in(USERS, "user_id", (m.user_id for m in members), USER_BATCH, SHARING_FIELDS)
        opted_out = {UserRef(doc["platform"], doc["user_id"]) for doc in users
                     if doc.get("share_with_server") is False}
        return [member for member in members if member not in opted_out]

    async def _journals(self, place: str, members: list[UserRef]) -> dict[UserRef, list[Told]]:
        """The members' journals as they count in the place (`is_shareable`), as rows of
        `rows_by_member`: one per member and track, their summaries (`storage/journal_tracks.py`),
        not every entry, as one document per member (a namesake's on another platform is read too,
        and never asked for)."""
        if self._journal is not None:
            await self._journal.summed_up()
        batches = await self._find_in(JOURNAL_MEMBERS, "user_id", (m.user_id for m in members), JOURNAL_BATCH,
                                      None, raw=True)
        return await asyncio.to_thread(journal_summary_rows, place, batches, self._db.codec_options)

    async def _songs(self, keys: set[str]) -> dict[str, str]:
        """Each track key's song: a YouTube video that a catalog song's audio came from counts as
        that song (`catalog_songs`), and the releases of one recording (the single and the album:
        one ISRC, two Spotify ids) as the first of them (`first_releases`), however the members
        asked. Read by indexed equalities, in batches, never per key."""
        if not keys:
            return {}
        videos = {key[len(YOUTUBE_KEY_PREFIX):] for key in keys if is_video(key)}
        catalog = catalog_songs(await self._find_in(TRACKS, "youtube_id", videos, TRACK_BATCH, VIDEO_FIELDS))
        song = {key: catalog.get(key[len(YOUTUBE_KEY_PREFIX):], key) if is_video(key) else key for key in keys}
        recordings = {doc["key"]: doc["isrc"]
                      for doc in await self._find_in(TRACKS, "key", set(song.values()), TRACK_BATCH, RELEASE_FIELDS)
                      if has_isrc(doc)}
        first = first_releases(await self._find_in(TRACKS, "isrc", set(recordings.values()), TRACK_BATCH,
                                                   RELEASE_FIELDS))
        return {key: first.get(recordings.get(song[key], ""), song[key]) for key in keys}

    async def _tracks(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        return {doc["key"]: doc async for doc in self._db[TRACKS].find({"key": {"$in": keys}})}

    async def _by_member(self, collection: str,
                         pipeline: list[dict[str, Any]]) -> dict[UserRef, list[Told]]:
        cursor = await self._db[collection].aggregate(pipeline)
        return rows_by_member(await cursor.to_list())

    async def move_place(self, old_place: str, new_place: str,
                         renamed: tuple[UserRef, UserRef] | None = None) -> None:
        """Everything heard or written in `old_place` counts in `new_place` from now on, the
        requests recorded after this call too (answers still on their way). `renamed`: the place
        itself as a member under its old id and its new one (a group's posts as itself,
        an anonymous admin's), so that what it asked before and after the move is one member's."""
        if self._requests is not None:
            self._requests.place_moved(old_place, new_place, renamed)
        # Summaries and departures are written from what was read: no /forget comes in between.
        async with self._apart_from_erasures():
            await self._move_place(old_place, new_place, renamed)

    async def _move_place(self, old_place: str, new_place: str, renamed: tuple[UserRef, UserRef] | None) -> None:
        if self._requests is not None:
            await self._requests.settled()
        with translated_errors("move a place's songs"):
            for collection in (REQUESTS, JOURNAL):
                await self._db[collection].update_many({"place": old_place}, {"$set": {"place": new_place}})
            # The uploads journaled there count in the new place: their summaries follow them.
            await journal_tracks.place_moved(self._db[JOURNAL], self._db[JOURNAL_TRACKS], old_place, new_place)
            if renamed is not None:
                was, now = ({"platform": ref.platform, "user_id": ref.user_id} for ref in renamed)
                await self._db[REQUESTS].update_many({"place": new_place, **was}, {"$set": now})
                await self._db[PLACE_TRACKS].delete_many({"place": new_place, **was})
            # The old place's summaries merge with the new one's: summed up again from its requests.
            # (its members' documents too, those of the renamed self's old id deleted)
            await place_tracks.summarize(self._db[REQUESTS], self._db[PLACE_TRACKS], new_place)
            await place_tracks.drop_place(self._db[PLACE_TRACKS], old_place)
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
        return await self._members(place, (await self._summaries(place))[1])

    async def _settled(self) -> None:
        """Every query here starts from this: the requests on their way are written first."""
        if self._requests is not None:
            await self._requests.settled()

    async def _summaries(self, place: str) -> Summaries:
        """The place's request summaries (`storage/place_tracks.py`), after the writes on their way,
        as its members' documents hold them (`place_members`: SecantusDB's cost is per document read,
        and a server of 2 000 members has 20 892 summaries), those a failed write left without a vote
        made again first (`RequestRepo.folded_in`)."""
        await self._settled()
        if self._requests is not None:
            await self._requests.folded_in(place)
        with translated_errors("server members"):
            batches = await self._db[PLACE_MEMBERS].find_raw_batches({"place": place},
                                                                     batch_size=SUMMARY_BATCH).to_list()
        return await asyncio.to_thread(summary_rows, batches, self._db.codec_options)

    async def _has_summaries(self, place: str) -> bool:
        with translated_errors("server members"):
            return await self._db[PLACE_TRACKS].find_one({"place": place}, projection={"_id": 1}) is not None

    async def _members(self, place: str, last_seen: dict[UserRef, datetime]) -> list[UserRef]:
        """Step 1, from when each was last told something there (`summary_rows`; changed here) and
        the place's journal entries."""
        with translated_errors("server members"):
            journal_seen, departed = await self._journal_seen_and_departures(place)
        for ref, at in journal_seen.items():
            seen(last_seen, ref, at)
        return staying(last_seen, departed)

    async def _journal_seen_and_departures(
            self, place: str) -> tuple[dict[UserRef, datetime], dict[UserRef, datetime]]:
        """The authors of the place's journal entries, with their last one's time, and the
        place's departures, with their times."""
        cursor = await self._db[JOURNAL].aggregate(seen_in_place_pipeline(place))
        journal_seen = {UserRef(row["_id"]["platform"], row["_id"]["user_id"]): row["last"]
                        for row in await cursor.to_list()}
        departed = {UserRef(doc["platform"], doc["user_id"]): doc["left_at"]
                    async for doc in self._db[DEPARTURES].find({"place": place})}
        return journal_seen, departed

    async def _window_members(self, place: str, authors: set[UserRef], recent: list[dict[str, Any]],
                              journal_seen: dict[UserRef, datetime],
                              departed: dict[UserRef, datetime]) -> list[UserRef]:
        """Step 1 for a window: which of its authors are members, as `_members` would say, from the
        place's summaries last told since the window began (`recent`, read through `place_latest`),
        not all of them: an author's latest there is among those whenever they have one so recent
        (what their requests in the window have). An author with none is looked up alone
        (user_place_track_unique) where it decides: not seen in the place's journal, or gone from
        the place since; or, when more are left than those lookups would be worth, all the place's
        summaries are read."""
        last_seen: dict[UserRef, datetime] = {}
        with translated_errors("server members"):
            for doc in recent:
                ref = UserRef(doc["platform"], doc["user_id"])
                if ref in authors:
                    seen(last_seen, ref, doc["latest"]["at"])
            # Seen in the place's journal and never gone: when their summaries were told decides nothing.
            undecided = sorted((ref for ref in authors - set(last_seen)
                                if ref not in journal_seen or ref in departed),
                               key=lambda ref: (ref.platform, ref.user_id))
            if len(undecided) > max(ALONE_AT_MOST, len(recent) // SUMMARIES_PER_LOOKUP):
                wanted = set(undecided)
                async for doc in self._db[PLACE_TRACKS].find({"place": place}):
                    ref = UserRef(doc["platform"], doc["user_id"])
                    if ref in wanted:
                        seen(last_seen, ref, doc["latest"]["at"])
            else:
                for ref in undecided:
                    async for doc in self._db[PLACE_TRACKS].find(
                            {"user_id": ref.user_id, "platform": ref.platform, "place": place}):
                        seen(last_seen, ref, doc["latest"]["at"])
        for ref, at in journal_seen.items():
            if ref in authors:
                seen(last_seen, ref, at)
        return staying(last_seen, departed)

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
