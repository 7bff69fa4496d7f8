"""Mood requests: one document per answered /mood, the raw material of server playlists."""
from __future__ import annotations

from pymongo.asynchronous.collection import AsyncCollection

from storage.codec import request_to_doc
from storage.failures import translated_errors
from storage.models import MoodRequest


class RequestRepo:
    def __init__(self, collection: AsyncCollection) -> None:
        self._requests = collection

    async def add(self, request: MoodRequest) -> None:
        with translated_errors("record mood request"):
            await self._requests.insert_one(request_to_doc(request))
