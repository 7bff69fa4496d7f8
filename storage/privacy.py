"""The rights of access and erasure: everything stored about a user, out or gone."""
from __future__ import annotations

import logging
from collections import Counter
from contextlib import nullcontext

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from storage.codec import (
    journal_from_doc,
    prompt_from_doc,
    request_from_doc,
    user_filter,
    user_from_doc,
)
from storage.failures import translated_errors
from storage.journal import JournalRepo
from storage.models import Answer, Departure, PlaceTrack, UserExport, UserRef
from storage.mood_requests import RequestRepo
from storage.schema import DEPARTURES, JOURNAL, PLACE_TRACKS, PROMPTS, REQUESTS, USERS

# Every collection holding documents about a user; `tracks` and `servers` hold none. Erased in
# this order: the playlist votes (place_tracks) before the requests they are summed up from, so
# that a /forget the database cuts short leaves no vote whose request is gone (a /share on would
# bring it back); the prompts after the entries and requests (a prompt recorded while /forget runs
# is still caught); the settings last, so that they keep saying what `withdraw` made them say.
PERSONAL_COLLECTIONS = (JOURNAL, PLACE_TRACKS, REQUESTS, DEPARTURES, PROMPTS, USERS)
# Summed up from others (the requests): erased, but not counted as more of the user's data.
DERIVED_COLLECTIONS = (PLACE_TRACKS,)
# What a user's settings say from the start of a /forget until they are deleted: no daily prompt
# (nor one scheduled at the next start), and none of their songs in a server's playlists.
WITHDRAWN = {"journal_enabled": False, "share_with_server": False}
OLDEST_FIRST = [("created_at", ASCENDING)]
# SecantusDB's command that prunes its oplog now, as far as its limits say: the embedded database's
# keep none (storage/embedded.py), so the copies of the user's documents its oplog held go too.
# MongoDB does not know it: a replica set's oplog, like backups, is kept as its operator set it.
PRUNE_OPLOG = "secantusAdmin.pruneOplog"
COMMAND_NOT_FOUND = 59

log = logging.getLogger(__name__)


class PrivacyRepo:
    def __init__(self, db: AsyncDatabase, requests: RequestRepo | None = None,
                 journal: JournalRepo | None = None) -> None:
        self._db = db
        self._requests = requests
        self._journal = journal
        # Erasures per user since start. A write for a user that began before an erasure (a song
        # still being listened to) compares the count and is dropped, not stored after /forget.
        self._erasures: Counter[UserRef] = Counter()
        self._prunes_oplog = True  # until the server says it knows no PRUNE_OPLOG

    def erasures(self, ref: UserRef) -> int:
        return self._erasures[ref]

    def erasing(self, ref: UserRef) -> None:
        """Say, before anything of the user's is deleted, that it is being: from now on their
        writes already under way are dropped (see `erasures`), and their /mood being answered in a
        place records no departure from it (`RequestRepo.erased`). `forget` and `erase` say so themselves."""
        self._erasures[ref] += 1
        if self._requests is not None:
            self._requests.erased(ref)

    async def export(self, ref: UserRef) -> UserExport:
        await self._settled()
        who = user_filter(ref)
        with translated_errors("export user data"):
            user = await self._db[USERS].find_one(who)
            journal = await self._db[JOURNAL].find(who, sort=OLDEST_FIRST).to_list()
            requests = await self._db[REQUESTS].find(who, sort=OLDEST_FIRST).to_list()
            prompts = await self._db[PROMPTS].find(who, sort=[("sent_at", ASCENDING)]).to_list()
            departures = await self._db[DEPARTURES].find(who, sort=[("left_at", ASCENDING)]).to_list()
            summaries = await self._db[PLACE_TRACKS].find(
                who, sort=[("place", ASCENDING), ("track_key", ASCENDING)]).to_list()
        return UserExport(
            user=None if user is None else user_from_doc(user),
            journal=[journal_from_doc(doc) for doc in journal],
            requests=[request_from_doc(doc) for doc in requests],
            prompts=[prompt_from_doc(doc) for doc in prompts],
            departures=[Departure(doc["place"], doc["left_at"]) for doc in departures],
            place_tracks=[PlaceTrack(doc["place"], doc["track_key"], Answer(**doc["latest"]),
                                     doc.get("title")) for doc in summaries],
        )

    async def _settled(self) -> None:
        if self._requests is not None:
            await self._requests.settled()
        if self._journal is not None:
            await self._journal.settled()

    async def withdraw(self, ref: UserRef) -> int:
        """The first step of a /forget: the user's settings turn the journal off and sharing off
        (made so for a user who had none: sharing is the default). Whatever the database then fails
        to delete makes no prompt and counts in no playlist; a /forget cut short after the settings
        went put an opted-out member's songs back in the playlists. Returns 1 when it made the
        settings (then deleted with the rest, but not the user's), else 0."""
        await self._settled()  # what was on its way has been written, or has failed, before the answer
        with translated_errors("forget user"):
            result = await self._db[USERS].update_one(
                user_filter(ref), {"$set": WITHDRAWN, "$setOnInsert": {"timezone": "UTC"}}, upsert=True)
        return 0 if result.upserted_id is None else 1

    async def forget(self, ref: UserRef) -> int:
        """Delete every document about the user; returns how many were deleted."""
        self.erasing(ref)
        made = await self.withdraw(ref)
        return await self.erase(ref) - made

    async def erase(self, ref: UserRef) -> int:
        """Delete every document about the user (`forget` after `withdraw`); returns how many.
        Says `erasing` again: a write whose count was read while the settings were withdrawn is
        dropped too."""
        self.erasing(ref)
        await self._settled()  # a request still being written must not outlive the deletion
        deleted = 0
        # Not between a read of the user's documents and a write made from it (a place's songs
        # summed up again, a departure): that write would bring them back after the deletion.
        async with self._requests.erasure_lock if self._requests is not None else nullcontext():
            with translated_errors("forget user"):
                for name in PERSONAL_COLLECTIONS:
                    result = await self._db[name].delete_many(user_filter(ref))
                    if name not in DERIVED_COLLECTIONS:
                        deleted += result.deleted_count
        await self._prune_oplog()
        return deleted

    async def _prune_oplog(self) -> None:
        """After the deletions: the copies of the user's documents in the database's oplog go, where
        the server can be told (PRUNE_OPLOG). The deletions stand whatever it answers."""
        if not self._prunes_oplog:
            return
        try:
            await self._db.client.admin.command(PRUNE_OPLOG)
        except OperationFailure as error:
            if error.code == COMMAND_NOT_FOUND:  # MongoDB: its oplog is its operator's
                self._prunes_oplog = False
            else:
                log.warning("privacy.oplog_not_pruned: %s", error.code)
        except PyMongoError as error:
            log.warning("privacy.oplog_not_pruned: %s", type(error).__name__)
