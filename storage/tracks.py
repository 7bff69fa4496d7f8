"""Tracks: metadata and the classified mood, cached by track key."""
from __future__ import annotations

from pymongo.asynchronous.collection import AsyncCollection

from storage.codec import track_from_doc, track_to_doc
from storage.failures import translated_errors
from storage.models import TrackRecord


class TrackRepo:
    def __init__(self, collection: AsyncCollection) -> None:
        self._tracks = collection

    async def get(self, key: str) -> TrackRecord | None:
        with translated_errors("get track"):
            doc = await self._tracks.find_one({"key": key})
        return None if doc is None else track_from_doc(doc)

    async def save(self, track: TrackRecord) -> None:
        """Insert or replace the track with this key (the unique index keeps it single)."""
        with translated_errors("save track"):
            await self._tracks.replace_one({"key": track.key}, track_to_doc(track), upsert=True)
