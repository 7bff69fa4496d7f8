"""Tracks: metadata and the classified mood, cached by track key.

A song's mood, once classified, does not change, and the same popular songs are asked for again
and again: found tracks stay in a small in-process LRU for TRACK_CACHE_TTL_S, so a burst of
`/mood` for cached songs costs no database round trip after the first. The TTL bounds how long a
record written by another process (another bot instance) can be missed here.
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Callable

from pymongo.asynchronous.collection import AsyncCollection

from storage.codec import UnreadableDocError, track_from_doc, track_to_doc
from storage.failures import translated_errors
from storage.models import StorageError, TrackRecord

TRACK_CACHE_SIZE = 10_000  # records; a few MB at most
TRACK_CACHE_TTL_S = 300.0
RELEASES_LIMIT = 20  # releases of one recording read at most (a song has a handful)

log = logging.getLogger(__name__)


class TrackRepo:
    def __init__(self, collection: AsyncCollection, *, cache_size: int = TRACK_CACHE_SIZE,
                 ttl_s: float = TRACK_CACHE_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._tracks = collection
        self._cache_size = cache_size
        self._ttl_s = ttl_s
        self._clock = clock
        self._recent: OrderedDict[str, tuple[float, TrackRecord]] = OrderedDict()

    async def get(self, key: str) -> TrackRecord | None:
        remembered = self.remembered(key)
        if remembered is not None:
            self._recent.move_to_end(key)
            return remembered
        with translated_errors("get track"):
            doc = await self._tracks.find_one({"key": key})
        record = None if doc is None else readable(doc)
        if record is not None:
            self._remember(record)
        return record

    def remembered(self, key: str) -> TrackRecord | None:
        """The record `get` read (or a failed `save` kept) for `key` within the TTL, from memory
        alone: no database round trip, none to wait out with the database down."""
        remembered = self._recent.get(key)
        return remembered[1] if remembered is not None and remembered[0] > self._clock() else None

    async def find_by_youtube_id(self, youtube_id: str, *, limit: int = RELEASES_LIMIT) -> list[TrackRecord]:
        """The classified catalog tracks whose audio was fetched from this video (indexed): the
        releases of one recording may share it, heard by different models, so all of them."""
        with translated_errors("find track by video"):
            docs = await self._tracks.find({"youtube_id": youtube_id}).sort("key", 1).to_list()
        return _classified(docs, limit, besides=f"youtube:{youtube_id}")

    async def find_by_isrc(self, isrc: str, *, limit: int = RELEASES_LIMIT) -> list[TrackRecord]:
        """The classified tracks of this recording (the releases sharing its ISRC), by key (indexed)."""
        if not isrc:  # no recording: an empty ISRC is not one
            return []
        with translated_errors("find track by ISRC"):
            docs = await self._tracks.find({"isrc": isrc}).sort("key", 1).to_list()
        return _classified(docs, limit)

    async def save(self, track: TrackRecord) -> None:
        """Insert or replace the track with this key (the unique index keeps it single). Not
        written (StorageError: the database down), it is remembered, so that this process answers
        it again meanwhile rather than classify the song at each ask."""
        try:
            with translated_errors("save track"):
                await self._tracks.replace_one({"key": track.key}, track_to_doc(track), upsert=True)
        except StorageError:
            self._remember(track)
            raise
        # Forget rather than remember: the next get reads back exactly what the database keeps.
        self._recent.pop(track.key, None)

    def _remember(self, track: TrackRecord) -> None:
        if self._cache_size <= 0:
            return
        self._recent[track.key] = (self._clock() + self._ttl_s, track)
        self._recent.move_to_end(track.key)
        while len(self._recent) > self._cache_size:
            self._recent.popitem(last=False)


def _classified(docs: list[dict], limit: int, besides: str | None = None) -> list[TrackRecord]:
    """The first `limit` of the tracks read that have a mood, but `besides`. Filtered here, not in
    the query: SecantusDB (0.7) walks an index only for a query whose fields it holds, and scanned
    every track for `mood: {$ne: None}` beside the isrc or youtube_id (a recording's or a video's
    tracks are a handful)."""
    tracks = (readable(doc) for doc in docs if doc.get("mood") is not None and doc.get("key") != besides)
    return [track for track in tracks if track is not None][:limit]


def readable(doc: dict) -> TrackRecord | None:
    """The track `doc` holds; None, logged, for one of another shape (`UnreadableDocError`): its
    song is not cached, so heard again, and the record replaced. Read as it was, it made each /mood
    of the song 'something went wrong', for good."""
    try:
        return track_from_doc(doc)
    except UnreadableDocError as error:
        log.warning("track %s unreadable in the database (%s); taken as not cached", doc.get("key"), error)
        return None
