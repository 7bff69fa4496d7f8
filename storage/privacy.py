"""The rights of access and erasure: everything stored about a user, out or gone."""
from __future__ import annotations

import asyncio
import logging
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, NamedTuple

import bson
from bson.codec_options import CodecOptions
from pymongo import ASCENDING, ReplaceOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from storage.codec import (
    journal_from_doc,
    prompt_from_doc,
    request_from_doc,
    user_filter,
    user_from_doc,
)
from storage import journal_tracks, place_tracks
from storage.failures import translated_errors
from storage.journal import JournalRepo
from storage.models import (
    Answer,
    Departure,
    JournalEntry,
    JournalMember,
    JournalTrack,
    PlaceMember,
    PlaceTrack,
    User,
    UserExport,
    UserRef,
    export_json,
    without_sender,
)
from storage.mood_requests import RequestRepo, unnamed
from storage.schema import (DEPARTURES, INBOX, JOURNAL, JOURNAL_MEMBERS, JOURNAL_REPAIRS, JOURNAL_TRACKS, PLACE_MEMBERS,
                            PLACE_REPAIRS, PLACE_TRACKS, PROMPTS, REQUESTS, USERS)

# Every collection holding documents about a user; `tracks` and `servers` hold none. Erased in
# this order: the playlist votes (place_members, journal_members, journal_tracks, place_tracks)
# before the entries and requests they are summed up from, so that a /forget the database cuts short leaves no vote whose entry or
# request is gone (a /share on would bring it back); the prompts after the entries and requests (a prompt recorded while /forget runs
# is still caught); the settings last, so that they keep saying what `withdraw` made them say.
PERSONAL_COLLECTIONS = (PLACE_MEMBERS, JOURNAL_MEMBERS, JOURNAL_TRACKS, JOURNAL, PLACE_TRACKS, REQUESTS, DEPARTURES,
                        PROMPTS, USERS)
# Summed up from others (the entries, the requests): erased, but not counted as more of the user's data.
DERIVED_COLLECTIONS = (PLACE_MEMBERS, JOURNAL_MEMBERS, JOURNAL_TRACKS, PLACE_TRACKS)
# Held only while a request is being answered (the inbox, storage/inbox.py: the /forget and the
# /export themselves are in it), or until the user's journal summaries are made again after a
# delete (journal_repairs, storage/journal.py `_mark`: the user's ids and when, nothing else), or
# their document in a place after a request's failed write (place_repairs, storage/mood_requests.py
# `_mark_unfolded`: the place, the user's ids and when): erased by /forget, not exported, not counted.
TRANSIENT_COLLECTIONS = (INBOX, JOURNAL_REPAIRS, PLACE_REPAIRS)
# What a user's settings say from the start of a /forget until they are deleted: no daily prompt
# (nor one scheduled at the next start), and none of their songs in a server's playlists.
WITHDRAWN = {"journal_enabled": False, "share_with_server": False}
OLDEST_FIRST = [("created_at", ASCENDING)]
# What an export reads, each collection in the order its documents are listed.
EXPORTED = (
    (JOURNAL, OLDEST_FIRST),
    (REQUESTS, OLDEST_FIRST),
    (PROMPTS, [("sent_at", ASCENDING)]),
    (DEPARTURES, [("left_at", ASCENDING)]),
    (PLACE_TRACKS, [("place", ASCENDING), ("track_key", ASCENDING)]),
    (JOURNAL_TRACKS, [("track_key", ASCENDING), ("place", ASCENDING)]),
    (PLACE_MEMBERS, [("place", ASCENDING)]),
    (JOURNAL_MEMBERS, [("platform", ASCENDING)]),  # one document
)
# Documents per batch of an export's reads. Each batch is received whole by the event loop (as raw
# bytes, decoded later in a thread): 5 000 journal entries with 1 000-character notes came as one
# 6 MB batch, 35-50 ms of the loop's time to receive even undecoded; 256 such entries are 0.3 MB.
EXPORT_BATCH = 256
# SecantusDB's command that prunes its oplog now, as far as its limits say: the embedded database's
# keep none (storage/embedded.py), so the copies of the user's documents its oplog held go too.
# MongoDB does not know it: a replica set's oplog, like backups, is kept as its operator set it.
PRUNE_OPLOG = "secantusAdmin.pruneOplog"
# What `_unname` reads of a journal entry naming the user: what it renames, and its summary's key.
JOURNALED_FIELDS = {**journal_tracks.ENTRY_FIELDS, "_id": 1}
COMMAND_NOT_FOUND = 59

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawExport:
    """A user's settings, and their other documents as raw BSON batches, one list per collection of
    `EXPORTED`, in its order."""
    user: User | None
    journal: list[bytes]
    requests: list[bytes]
    prompts: list[bytes]
    departures: list[bytes]
    place_tracks: list[bytes]
    journal_tracks: list[bytes]
    place_members: list[bytes]
    journal_members: list[bytes]
    codec_options: CodecOptions

    def decode(self) -> UserExport:
        """CPU-bound, and long for a large user's: run it in a thread (as `to_json`)."""
        return UserExport(self.user, *(list(records) for _, records in self._parts()))

    def to_json(self, user: User, held: Iterable[JournalEntry] = (), cut_short: Iterable[str] = (),
                counts: Counter | None = None) -> str:
        """`UserExport.to_json` of these documents, with `user` as the settings and the journal
        entries `held` elsewhere (the outbox) that the database does not hold, listed after its own,
        and the outbox's lines of the user's that a crash `cut_short` (`UserExport.journal_cut_short`).
        CPU-bound, and long for a large user's: run it in a thread. One document at a time, decoded,
        written out and dropped, so the thread hands the GIL back to the event loop between them
        and never holds them all as objects. `counts`, when given, counts the records written of each
        part ("journal", "requests"…), for the reply to say what the file holds."""
        parts = self._parts(held, cut_short)
        if counts is not None:
            parts = ((name, _counted(records, name, counts)) for name, records in parts)
        return export_json(user, parts)

    def _parts(self, held: Iterable[JournalEntry] = (),
               cut_short: Iterable[str] = ()) -> Iterator[tuple[str, Iterator[Any]]]:
        yield "journal", self._journal(held)
        yield "requests", map(request_from_doc, self._documents(self.requests))
        yield "prompts", map(prompt_from_doc, self._documents(self.prompts))
        yield "departures", (Departure(doc["place"], doc["left_at"]) for doc in self._documents(self.departures))
        yield "place_tracks", (PlaceTrack(doc["place"], doc["track_key"], Answer(**doc["latest"]), doc.get("title"),
                                          doc.get("source_link"))
                               for doc in self._documents(self.place_tracks))
        yield "journal_tracks", (JournalTrack(doc["track_key"], Answer(**doc["latest"]), doc.get("place"),
                                              doc.get("title"))
                                 for doc in self._documents(self.journal_tracks))
        yield "place_members", (PlaceMember(doc["place"], [
            PlaceTrack(doc["place"], place_tracks.track_key_of(name), Answer(**told["latest"]), told.get("title"),
                       told.get("source_link")) for name, told in sorted(doc["tracks"].items())])
            for doc in self._documents(self.place_members))
        yield "journal_members", (JournalMember(
            [JournalTrack(place_tracks.track_key_of(name), Answer(**told["latest"]), None, told.get("title"))
             for name, told in sorted(doc.get("songs", {}).items())],
            [JournalTrack(place_tracks.track_key_of(name), Answer(**told["latest"]), place_tracks.track_key_of(place),
                          told.get("title"))
             for place, tracks in sorted(doc.get("uploads", {}).items()) for name, told in sorted(tracks.items())])
            for doc in self._documents(self.journal_members))
        yield "journal_cut_short", iter(cut_short)

    def _journal(self, held: Iterable[JournalEntry]) -> Iterator[JournalEntry]:
        stored = set()
        for doc in self._documents(self.journal):
            entry = journal_from_doc(doc)
            stored.add(entry.prompt_id)
            yield entry
        yield from (entry for entry in held if entry.prompt_id not in stored)

    def _documents(self, batches: list[bytes]) -> Iterator[dict[str, Any]]:
        for batch in batches:
            yield from bson.decode_iter(batch, self.codec_options)


def _counted(records: Iterable[Any], name: str, counts: Counter) -> Iterator[Any]:
    for record in records:
        counts[name] += 1
        yield record


class Erased(NamedTuple):
    """What an erasure did: the user's documents deleted, and others' records it took their name
    out of (`PrivacyRepo._unname`), not counted among them."""

    deleted: int
    unnamed: int


class PrivacyRepo:
    def __init__(self, db: AsyncDatabase, requests: RequestRepo | None = None,
                 journal: JournalRepo | None = None) -> None:
        self._db = db
        self._requests = requests
        self._journal = journal
        # Erasures per user since start. A write for a user that began before an erasure (a song
        # still being listened to) compares the count and is dropped, not stored after /forget.
        self._erasures: Counter[UserRef] = Counter()
        self._erased_at: dict[UserRef, datetime] = {}  # when each user's last erasure began
        self._prunes_oplog = True  # until the server says it knows no PRUNE_OPLOG

    def erasures(self, ref: UserRef) -> int:
        return self._erasures[ref]

    def erasing(self, ref: UserRef) -> None:
        """Say, before anything of the user's is deleted, that it is being: from now on their
        writes already under way are dropped (see `erasures`), and their /mood being answered in a
        place records no departure from it (`RequestRepo.erased`). `forget` and `erase` say so themselves."""
        self._erasures[ref] += 1
        self._erased_at[ref] = datetime.now(timezone.utc)
        if self._requests is not None:
            self._requests.erased(ref)

    def erased_since(self, ref: UserRef, at: datetime) -> bool:
        """Whether an erasure of the user's began at or after `at` (since start): a record made of
        something that arrived before it, naming them ("Voice note by Alice"), is written unnamed."""
        erased_at = self._erased_at.get(ref)
        return erased_at is not None and erased_at >= at

    async def export(self, ref: UserRef) -> UserExport:
        """Everything stored about the user, decoded in a worker thread (see `export_raw`)."""
        return await asyncio.to_thread((await self.export_raw(ref)).decode)

    async def export_raw(self, ref: UserRef) -> RawExport:
        """Everything stored about the user, as the database sent it: `RawExport.decode` makes it a
        `UserExport`. The event loop only receives bytes: decoding years of entries, requests and
        prompts into objects is a CPU-bound block (a 5 000-entry journal, with its requests and
        prompts, stalled every chat for 60-170 ms), for a worker thread."""
        await self._settled()
        who = user_filter(ref)
        with translated_errors("export user data"):
            user = await self._db[USERS].find_one(who)
            batches = [await self._db[name].find_raw_batches(who, sort=sort, batch_size=EXPORT_BATCH).to_list()
                       for name, sort in EXPORTED]
        return RawExport(None if user is None else user_from_doc(user), *batches,
                         codec_options=self._db.codec_options)

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
        return (await self.erase_counted(ref)).deleted

    async def erase_counted(self, ref: UserRef) -> Erased:
        """`erase`, saying too how many of others' records it took the user's name out of (`_unname`)."""
        self.erasing(ref)
        await self._settled()  # a request still being written must not outlive the deletion
        deleted = 0
        # Not between a read of the user's documents and a write made from it (a place's songs
        # summed up again, a departure): that write would bring them back after the deletion.
        async with self._requests.erasure_lock if self._requests is not None else nullcontext():
            with translated_errors("forget user"):
                for name in TRANSIENT_COLLECTIONS + PERSONAL_COLLECTIONS:
                    result = await self._db[name].delete_many(user_filter(ref))
                    if name not in DERIVED_COLLECTIONS + TRANSIENT_COLLECTIONS:
                        deleted += result.deleted_count
                if self._journal is not None:  # her marks gone, and her summaries: none to make again
                    self._journal.erased(ref)
                if self._requests is not None:  # her place marks gone, and her documents: none to make again
                    self._requests.forgotten(ref)
                unnamed = await self._unname(ref)
        await self._prune_oplog()
        return Erased(deleted, unnamed)

    async def _unname(self, ref: UserRef) -> int:
        """Others' requests and journal entries of the user's files whose titles name them ("Voice
        note by Alice, 5 Dec 2026", kept with their id as `sender`) read as if the sender were not
        known ("Voice note, 5 Dec 2026"), a request without the link to their message; the places'
        summaries of the requests, and the journals' of the entries, are made again. Those records
        are the askers', not counted as the user's; returns how many were renamed. Those written
        before senders were kept were renamed by migrations 14 (requests) and 15 (journal entries,
        storage/schema.py)."""
        # By the sender alone, as indexed (storage/schema.py BY_SENDER): the platform is checked here.
        sent = {"sender": ref.user_id}
        named = [doc for doc in await self._db[REQUESTS].find(sent).to_list() if doc["platform"] == ref.platform]
        journaled = [doc for doc in await self._db[JOURNAL].find(sent, JOURNALED_FIELDS).to_list()
                     if doc["platform"] == ref.platform]
        # Each record keeps its `sender` until its summary is made again, then loses it: a /forget
        # the database cut short in between ("please try /forget again") finds them again, where a
        # summary deleted and not yet written again left the asker's vote out for good (or one not
        # yet deleted kept the title naming the user).
        if named:
            await self._db[REQUESTS].bulk_write(
                [ReplaceOne({"_id": doc["_id"]}, {**unnamed(dict(doc)), "sender": doc["sender"]}) for doc in named],
                ordered=False)
            await place_tracks.summarize_again(self._db[REQUESTS], self._db[PLACE_TRACKS],
                                               ((doc["place"], doc["platform"], doc["user_id"], doc["track_key"])
                                                for doc in named if doc.get("place") is not None))
            await self._db[REQUESTS].bulk_write(
                [UpdateOne({"_id": doc["_id"]}, {"$unset": {"sender": ""}}) for doc in named], ordered=False)
        if journaled:
            await self._db[JOURNAL].bulk_write(
                [UpdateOne({"_id": doc["_id"]}, {"$set": {"track_title": without_sender(doc.get("track_title", ""))}})
                 for doc in journaled], ordered=False)
            # The journals' summaries of those tracks, made again: `$max` would keep the title naming them.
            await journal_tracks.summarize_again(self._db[JOURNAL], self._db[JOURNAL_TRACKS],
                                                 filter(None, map(journal_tracks.key_of, journaled)))
            await self._db[JOURNAL].bulk_write(
                [UpdateOne({"_id": doc["_id"]}, {"$unset": {"sender": ""}}) for doc in journaled], ordered=False)
        if named or journaled:
            log.info("privacy.unnamed", extra={"user": ref.user_id, "requests": len(named),
                                               "journal": len(journaled)})
        return len(named) + len(journaled)

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
