"""A place's move to a new id (a group its chat platform upgraded), made to last.

The move is several writes (the requests, journal entries, summaries and departures of
`PlaylistQueries.move_place`, then the settings of `ServerRepo.move`), and no transaction holds
them together: a database that went down between two of them left the requests under the new id
and their summaries under the old one (the supergroup's playlists lost those songs), or the
settings behind (an admin's 'playlists off' was on again), and nothing tried again. So:

1. the move is recorded first (`place_moves`, one document per old id: the new id, and the place's
   own ids as a member, `renamed`);
2. its steps run, each safe to run again after a stop at any point (an update of every document
   still under the old id, summaries folded in with `$max`, departures kept with `$max`, the
   settings copied once, `ServerRepo.move`);
3. the move is noted as finished (`places_moved`, one document per old id: the new id, `renamed`,
   when; kept for good, platform ids only, nothing of any user), then its record is deleted.

The finished moves are read back at start (`finished`): a request from the old id that the inbox
hands over again after a restart (sent before the move, answered by none) is the new id's, as
within the process that made the move (`RequestRepo.place_moved`, the use case's `_moved_to`).

A move whose record is left (the database failed partway, or the process was killed) is run again
from the start, whole: at the next start (`unfinished`), and by the use case before anything in
the place under its new id is answered (`bot/usecases/playlists.py`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from storage.failures import translated_errors
from storage.models import UserRef
from storage.mood_requests import RequestRepo
from storage.playlists import PlaylistQueries
from storage.servers import ServerRepo


@dataclass(frozen=True)
class PlaceMove:
    old: str  # the place, "<platform>:<id>", under its old id
    new: str
    # The place itself as a member (a group's posts as itself) under its old id and its new one.
    renamed: tuple[UserRef, UserRef] | None = None


def _ref_doc(ref: UserRef) -> dict[str, str]:
    return {"platform": ref.platform, "user_id": ref.user_id}


def _renamed_doc(move: PlaceMove) -> list[dict[str, str]] | None:
    return None if move.renamed is None else [_ref_doc(r) for r in move.renamed]


def _move_of(doc: dict[str, Any]) -> PlaceMove:
    renamed = doc.get("renamed")
    return PlaceMove(doc["_id"], doc["to"],
                     None if not renamed else tuple(UserRef(r["platform"], r["user_id"]) for r in renamed))


class PlaceMoveRepo:
    def __init__(self, collection: AsyncCollection, requests: RequestRepo, playlists: PlaylistQueries,
                 servers: ServerRepo, finished: AsyncCollection) -> None:
        self._moves = collection
        self._finished = finished
        self._requests = requests
        self._playlists = playlists
        self._servers = servers

    async def move(self, move: PlaceMove) -> None:
        """Run the whole move (see the module's docstring); raises StorageError where a step
        failed, its record left for the next try."""
        # Answers still on their way are stored under the new id, whatever the database says now.
        self._requests.place_moved(move.old, move.new, move.renamed)
        with translated_errors("record a place's move"):
            await self._moves.update_one(
                {"_id": move.old},
                {"$set": {"to": move.new,
                          "renamed": _renamed_doc(move)},
                 "$setOnInsert": {"since": datetime.now(timezone.utc)}},
                upsert=True)
        await self._playlists.move_place(move.old, move.new, move.renamed)
        await self._servers.move(move.old, move.new)
        with translated_errors("finish a place's move"):
            await self._finished.update_one(
                {"_id": move.old}, {"$set": {"to": move.new, "renamed": _renamed_doc(move),
                                             "at": datetime.now(timezone.utc)}}, upsert=True)
            await self._moves.delete_one({"_id": move.old, "to": move.new})

    async def unfinished(self) -> list[PlaceMove]:
        """The moves recorded and not finished, oldest first."""
        with translated_errors("read unfinished place moves"):
            docs = await self._moves.find({}).sort("since", 1).to_list()
        return [_move_of(doc) for doc in docs]

    async def finished(self) -> list[PlaceMove]:
        """The moves finished, by this process or any before it (see the module's docstring)."""
        with translated_errors("read finished place moves"):
            docs = await self._finished.find({}).to_list()
        return [_move_of(doc) for doc in docs]
