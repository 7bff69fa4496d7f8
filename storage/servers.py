"""Per-place settings, keyed by the place string itself."""
from __future__ import annotations

from pymongo.asynchronous.collection import AsyncCollection

from storage.failures import translated_errors
from storage.models import ServerSettings


class ServerRepo:
    def __init__(self, collection: AsyncCollection) -> None:
        self._servers = collection

    async def get(self, place: str) -> ServerSettings:
        """A place nobody configured has the defaults."""
        with translated_errors("get server settings"):
            doc = await self._servers.find_one({"_id": place})
        if doc is None:
            return ServerSettings(place)
        return ServerSettings(place, playlist_enabled=doc.get("playlist_enabled", True))

    async def set_playlist_enabled(self, place: str, enabled: bool) -> None:
        with translated_errors("set server playlist"):
            await self._servers.update_one(
                {"_id": place}, {"$set": {"playlist_enabled": enabled}}, upsert=True
            )
