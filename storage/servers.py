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

    async def move(self, old_place: str, new_place: str) -> None:
        """The settings of `old_place` become `new_place`'s (a chat platform gave the group a new id)."""
        with translated_errors("move server settings"):
            doc = await self._servers.find_one({"_id": old_place})
            if doc is None:
                return
            doc.pop("_id")
            await self._servers.update_one({"_id": new_place}, {"$set": doc}, upsert=True)
            await self._servers.delete_one({"_id": old_place})
