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
        """The settings of `old_place` become `new_place`'s (a chat platform gave the group a new id).
        Safe to run again after a stop at any point (`storage/place_moves.py`): the copy marks the
        new place's document (`moved_from`) in the same write, so a run that finds the old document
        still there only deletes it, and never writes the old settings again over a choice made
        since under the new id."""
        with translated_errors("move server settings"):
            doc = await self._servers.find_one({"_id": old_place})
            if doc is None:
                return
            copied = await self._servers.find_one({"_id": new_place, "moved_from": old_place}, projection={"_id": 1})
            if copied is None:
                settings = {k: v for k, v in doc.items() if k not in ("_id", "moved_from")}
                update: dict = {"$addToSet": {"moved_from": old_place}}
                if settings:  # MongoDB refuses an empty $set
                    update["$set"] = settings
                await self._servers.update_one({"_id": new_place}, update, upsert=True)
            await self._servers.delete_one({"_id": old_place})
