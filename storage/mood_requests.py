"""Mood requests: one document per answered /mood, the raw material of server playlists.

Writes are group-committed: the documents added while one insert is on its way go together in
the next `insert_many`. Alone, a request costs one insert as before; in a burst of answers, a few
inserts serve hundreds of them, which keeps the event loop free for the replies.

- `add` waits until its document is stored, or raises the storage error.
- `record` does not wait: the answer to the user need not wait for its bookkeeping. A failure is
  logged. Readers of the collection (playlists, export, forget) first wait for `settled`, so
  within the process every recorded request is seen, and none is written after a `forget`.
- `place_moved`: a place that got a new id (a group its platform upgraded) gets the
  requests added afterwards under the old id too: answers still being worked on when it moved.
- Each batch is inserted first, then folded into the per-place summary (`storage/place_tracks.py`:
  its summaries, then its members' documents, which the playlists read): a summary holds nothing
  that no stored request holds, so a file sender's /forget, which finds the records naming her by
  the stored requests' `sender`, finds every one (until 2026-12-06 the summaries came first, and a
  refused insert left her name in them). Where the database fails a write (refused, or gone), a
  stored request may be missing from its summary or its member's document: the batch's members
  are marked (`_mark_unfolded`: in memory, and in `repairs`, where the batch's members were marked
  before its insert, `_premarked`, those marks deleted once it is summed up: a process killed between
  the insert and the summaries leaves them to the next start) and summed up again from their
  requests, their documents made again, at the next playlist read of their place (`folded_in`), at
  the stop, or, the process killed first, at the next start (`recall_unfolded`).
- `asking`: held while a /mood is answered in a place; a member who leaves meanwhile is
  recorded as gone (their request, stamped with when they asked, is written only afterwards).
  Not once they ran /forget since (`erased`): that request is dropped, and its departure, which
  nothing else would name them by, must not be recorded after the deletion. Once its deletes
  are done (`forgotten`), nothing of theirs is left to make again, nor kept in `_unfolded`.
- `erasure_lock`: held by /forget's deletions and by a write made from documents read before it
  (a moved place's summaries summed up again from its requests, a departure), so that no
  /forget comes between the read and the write, which would put the member back after it.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import NamedTuple

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from storage import place_tracks
from storage.codec import request_to_doc
from storage.failures import described, translated_errors
from storage.models import DatabaseUnavailableError, MoodRequest, StorageError, UserRef, without_sender

log = logging.getLogger(__name__)

MAX_BATCH = 500  # documents per insert_many; far under MongoDB's 100 000 and 48 MB limits


class Premarks(NamedTuple):
    """A batch's marks written before its insert (`RequestRepo._premarked`): the id they share
    (`batch`), and each member's mark's."""

    batch: ObjectId
    ids: dict[tuple[str, str, str], ObjectId]
    # False: the database went away on their insert, which it may have done all the same, its
    # answer lost: not taken for written (`_mark_unfolded`), deleted with the batch's (`_unmarked`).
    confirmed: bool = True


class RequestRepo:
    def __init__(self, collection: AsyncCollection, summary: AsyncCollection | None = None,
                 repairs: AsyncCollection | None = None) -> None:
        self._requests = collection
        self._summary = summary
        self._repairs = repairs if summary is not None else None
        # (place, platform, user id) of each member whose document in the place a failed write may
        # have left without a vote its summary holds, with a token per failure: its mark's `_id` in
        # `repairs` (or one no mark has, the mark refused). Read at every repair point without a
        # round trip; a failure while the document is made again adds a token that outlives it.
        self._unfolded: dict[tuple[str, str, str], set[ObjectId]] = {}
        self._pending: list[tuple[dict, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None
        self._moved: dict[str, str] = {}  # old place -> new place, for requests still on their way
        self._renamed: dict[tuple[str, UserRef], str] = {}  # (new place, the place's old self) -> its new id
        self.erasure_lock = asyncio.Lock()  # see the module's docstring
        # (place, member, the member's erasures when it began) of each /mood being answered.
        self._asking: Counter[tuple[str, UserRef, int]] = Counter()
        self._erasures: Counter[UserRef] = Counter()
        # When each member's data was last erased: a request asked before it, of a file whose title
        # names them ("Voice note by Alice"), is written without their name (`without_sender`).
        self._erased_at: dict[UserRef, datetime] = {}

    @contextmanager
    def asking(self, place: str | None, member: UserRef) -> Iterator[None]:
        """A /mood of `member` being answered in `place` (None: a private chat, nothing to mark)."""
        key = (place, member, self._erasures[member])
        if place is not None:
            self._asking[key] += 1
        try:
            yield
        finally:
            if place is not None:
                self._asking[key] -= 1
                if not self._asking[key]:
                    del self._asking[key]

    def is_asking(self, place: str, member: UserRef) -> bool:
        """Whether a /mood of the member in the place, begun since their last /forget, is being answered."""
        return (place, member, self._erasures[member]) in self._asking

    def erased(self, member: UserRef) -> None:
        """The member's data is being erased (/forget): their /mood being answered now visits no place."""
        self._erasures[member] += 1
        self._erased_at[member] = datetime.now(timezone.utc)

    def forgotten(self, member: UserRef) -> None:
        """/forget deleted the member's summaries, documents and marks (`PrivacyRepo.erase_counted`,
        once all its deletes worked): no document of theirs is left to make again, and nothing of
        them is kept here. A member whose document the database still failed was kept in
        `_unfolded`, in every place, their ids and their marks', until the next repair (a read of
        that place's playlist; on a quiet bot, the stop)."""
        for key in [key for key in self._unfolded if key[1:] == (member.platform, member.user_id)]:
            del self._unfolded[key]

    async def add(self, request: MoodRequest) -> None:
        # Shielded: a caller that gives up must not cancel the insert its neighbours wait on.
        await asyncio.shield(self._enqueue(request))

    def record(self, request: MoodRequest) -> None:
        """Store the request in the background; see the module's docstring."""
        self._enqueue(request).add_done_callback(_log_failure)

    async def settled(self) -> None:
        """Wait until every request added or recorded so far is written (or has failed)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    def place_moved(self, old_place: str, new_place: str, renamed: tuple[UserRef, UserRef] | None = None) -> None:
        """Requests of `old_place` added from now on are stored under `new_place`: the old id can
        send nothing new, but a /mood asked there before the move may be answered after it.
        `renamed`: the place as a member, under its old id and its new one (its posts as itself)."""
        self._moved[old_place] = new_place
        if renamed is not None:
            self._renamed[(new_place, renamed[0])] = renamed[1].user_id

    def _enqueue(self, request: MoodRequest) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        stored = loop.create_future()
        doc = request_to_doc(request)
        erased_at = self._erased_at.get(UserRef(request.user.platform, request.sender or ""))
        if request.sender and erased_at is not None and erased_at >= doc["created_at"]:
            unnamed(doc)  # its sender's /forget came while it was answered: it would name them for good
        if doc.get("place") in self._moved:
            doc["place"] = self._moved[doc["place"]]
            renamed = self._renamed.get((doc["place"], request.user))
            if renamed is not None:
                doc["user_id"] = renamed
        self._pending.append((doc, stored))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_pending())
        return stored

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            docs = [doc for doc, _ in batch]
            premarks: Premarks | None = None
            try:
                premarks = await self._premarked(docs)
                with translated_errors("record mood requests"):
                    await self._inserted(docs, premarks)
                    if self._summary is not None:
                        await self._summarized(docs, premarks)
            except Exception as error:  # StorageError, or anything unexpected: each caller hears of it
                outcome: BaseException | None = error
            else:
                outcome = None
            for _, stored in batch:
                if stored.done():
                    continue
                if outcome is None:
                    stored.set_result(None)
                else:
                    stored.set_exception(outcome)
            await self._unmarked(premarks)

    async def _premarked(self, docs: list[dict]) -> Premarks | None:
        """Before the batch's insert: a mark for each of its members (place_repairs, as
        `_mark_unfolded` writes them), so that a process killed between a request's insert and its
        summary (an OOM kill, a power cut) leaves its member to be summed up again at the next
        start (`recall_unfolded`); deleted once the batch is summed up (`_unmarked`). Until
        2026-12-06 marks were written after a failure only: such a kill left the vote out of the
        playlists, unmarked, until the member was next summed up again. One round trip more per
        batch before its insert, and one after its callers are answered. The marks hold the
        asker's ids and the place, nothing of the request. Returns their ids, or None where there
        is nothing to mark or the database refused them (logged place_tracks.members_not_marked:
        the batch is written all the same, its failures marked after them as before). The database
        gone on their insert (DatabaseUnavailableError), they may be written, their answer lost:
        their ids are returned unconfirmed, so that the batch's end deletes them, its failures
        marked after them as where they were refused; until 2026-12-07 none were deleted, and
        such a mark stayed until the next start."""
        if self._repairs is None:
            return None
        members = _members(docs)
        if not members:
            return None
        batch = ObjectId()
        marks = [{**mark, "batch": batch} for mark in _marks(members)]
        ids = {(mark["place"], mark["platform"], mark["user_id"]): mark["_id"] for mark in marks}
        try:
            with translated_errors("mark members' place documents to be made again"):
                await self._repairs.insert_many(marks, ordered=False)
        except StorageError as error:
            log.warning("place_tracks.members_not_marked", extra={"members": len(marks), "reason": str(error)})
            return Premarks(batch, ids, confirmed=False) if isinstance(error, DatabaseUnavailableError) else None
        return Premarks(batch, ids)

    async def _unmarked(self, premarks: Premarks | None) -> None:
        """The batch's marks (`_premarked`) deleted, by the batch's id (SecantusDB took 0.29-0.37 s to
        delete 500 marks by an `$in` of their ids, 34-49 ms by one field they share), but those of
        members left to be summed up again (`_unfolded`, a write failed): a delete the database
        fails leaves them to the next start, which sums those members up again (logged,
        place_tracks.marks_not_deleted)."""
        if premarks is None:
            return
        kept = sorted(mark_id for key, mark_id in premarks.ids.items() if mark_id in self._unfolded.get(key, ()))
        if len(kept) == len(premarks.ids):
            return
        try:
            with translated_errors("delete members' place documents' marks"):
                await self._repairs.delete_many({"batch": premarks.batch, **({"_id": {"$nin": kept}} if kept else {})})
        except StorageError as error:
            log.warning("place_tracks.marks_not_deleted", extra={"marks": len(premarks.ids) - len(kept),
                                                                 "reason": str(error)})


    async def _inserted(self, docs: list[dict], premarks: Premarks | None) -> None:
        """The batch inserted, before its summaries (`_summarized`). A failure raises (the callers
        told) and marks the batch's members (`_mark_unfolded`): an insert the database did and
        whose answer was lost, or did in part, left requests stored that no summary holds, summed
        up again from the requests at the repair. Until 2026-12-06 the summaries were written
        first: a refused or cut insert left a summary (and a member's document) holding a vote no
        request backed, and a file's title naming its sender ("Voice note by Alice") with the link
        to her message, which her /forget, finding the records naming her by the stored requests'
        `sender`, could not find; and /forget's summaries made again from the requests
        (`place_tracks.summarize_again`) lost the vote of a request of the same song written beside
        it, its summary written before their delete and the request inserted after their read."""
        try:
            await self._requests.insert_many(docs, ordered=False)
        except PyMongoError:
            if self._summary is not None:
                await self._mark_unfolded(_members(docs), premarks)
            raise

    async def _summarized(self, docs: list[dict], premarks: Premarks | None) -> None:
        """The batch, inserted (`_inserted`), folded into the summaries (`place_tracks.record`),
        then into the members' documents (`place_tracks.record_members`). A failure of either (a
        refusal, or the database gone, perhaps after some were written) is logged
        (place_tracks.summaries_not_written, place_tracks.members_not_written) and marks the
        batch's members (`_mark_unfolded`): the requests are stored, their callers told so, and the
        repair sums those members up again from the requests stored, then makes their documents
        again. Until 2026-12-06 a failure of the summaries raised, the requests not inserted (they
        were written first): the callers were told of a failure, and a summary written before it
        kept a vote no request backed. A member whose document was too full for a song of theirs
        (`place_tracks.write`) is marked too: their document made again is cut to fit
        (`place_tracks.dropped_oldest`), with room for their next songs."""
        members = _members(docs)
        try:
            await place_tracks.record(self._summary, docs)
        except PyMongoError as error:
            log.warning("place_tracks.summaries_not_written", extra={"members": len(members), "reason": described(error)})
            await self._mark_unfolded(members, premarks)
            return
        try:
            full = await place_tracks.record_members(self._summary, docs)
        except PyMongoError as error:
            log.warning("place_tracks.members_not_written", extra={"members": len(members), "reason": described(error)})
            full = members
        if full:
            await self._mark_unfolded(full, premarks)

    async def _mark_unfolded(self, members: set[tuple[str, str, str]],
                             premarks: Premarks | None = None) -> None:
        """The members to be summed up again (`folded_in`): in memory, then in `repairs` (one mark each,
        {place, platform, user_id, at}), so that a process killed before a repair point leaves them
        to the next start. Those the batch's marks written before its insert (`premarks`) cover keep
        them, with no write. A mark the database refuses too is logged (place_tracks.members_not_marked):
        the member is kept in memory alone, made again at this process's repair points."""
        written = premarks.ids if premarks is not None and premarks.confirmed else {}
        # Unconfirmed ones (perhaps written) too: kept while the member is, deleted with their marks.
        held = premarks.ids if premarks is not None else {}
        for key in members & held.keys():
            self._unfolded.setdefault(key, set()).add(held[key])
        marks = _marks(members - written.keys())
        for mark in marks:
            self._unfolded.setdefault((mark["place"], mark["platform"], mark["user_id"]), set()).add(mark["_id"])
        if not marks or self._repairs is None:
            return
        try:
            with translated_errors("mark members' place documents to be made again"):
                await self._repairs.insert_many(marks, ordered=False)
        except StorageError as error:
            log.warning("place_tracks.members_not_marked", extra={"members": len(marks), "reason": str(error)})

    async def folded_in(self, place: str | None = None) -> None:
        """The summaries and documents of the members of `place` (of every place, by default) that a
        failed write may have left without a vote (`_mark_unfolded`) summed up again from their
        stored requests (`place_tracks.summed_up_again`, with the erasure lock: no /forget between
        the read and the write), then their marks deleted: each member's requests in the place read
        again, where before only their summaries were. Where the database fails it, they are left
        (logged, place_tracks.members_not_made_again) for the next repair point: the read goes on
        with the documents as they are. Never with the erasure lock held."""
        keys = sorted(key for key in self._unfolded if place is None or key[0] == place)
        if not keys or self._summary is None:
            return
        tokens = {key: set(self._unfolded[key]) for key in keys}
        try:
            with translated_errors("make members' place documents again"):
                async with self.erasure_lock:
                    await place_tracks.summed_up_again(self._requests, self._summary, keys)
                if self._repairs is not None:
                    await self._repairs.delete_many({"_id": {"$in": sorted(set().union(*tokens.values()))}})
        except StorageError as error:
            log.warning("place_tracks.members_not_made_again", extra={"members": len(keys), "reason": str(error)})
            return
        for key, made in tokens.items():
            left = self._unfolded.get(key, set()) - made
            if left:
                self._unfolded[key] = left
            else:
                self._unfolded.pop(key, None)

    async def recall_unfolded(self) -> int:
        """At start: the members whose marks a previous process left (killed before a repair point,
        or the database failed it) have their documents made again now, where the database allows
        (`folded_in`; those it fails stay marked). Raises StorageError where the marks cannot be
        read. Returns how many members were marked."""
        if self._repairs is None:
            return 0
        with translated_errors("read the members' place documents' marks"):
            docs = await self._repairs.find({}, projection={"place": 1, "platform": 1, "user_id": 1}).to_list()
        for doc in docs:
            self._unfolded.setdefault((doc["place"], doc["platform"], doc["user_id"]), set()).add(doc["_id"])
        members = {(doc["place"], doc["platform"], doc["user_id"]) for doc in docs}
        if members:
            log.info("place_tracks.members_marked_at_start", extra={"members": len(members)})
        await self.folded_in()
        return len(members)


def _marks(members: set[tuple[str, str, str]]) -> list[dict]:
    """One mark of `repairs` for each (place, platform, user id)."""
    return [{"_id": ObjectId(), "place": place, "platform": platform, "user_id": user_id,
             "at": datetime.now(timezone.utc)} for place, platform, user_id in sorted(members)]


def _members(docs: list[dict]) -> set[tuple[str, str, str]]:
    """The (place, platform, user id) of the requests asked in a place."""
    return {(doc["place"], doc["platform"], doc["user_id"]) for doc in docs if doc.get("place") is not None}


def unnamed(doc: dict) -> dict:
    """A request whose title names its file's sender, as their /forget leaves it: "Voice note, 5 Dec
    2026", without the link to their message nor their id."""
    if doc.get("title"):
        doc["title"] = without_sender(doc["title"])
    doc.pop("source_link", None)
    doc.pop("sender", None)
    return doc


def _log_failure(stored: asyncio.Future) -> None:
    if stored.cancelled():
        return
    error = stored.exception()
    if isinstance(error, StorageError):
        log.warning("mood request not recorded: %s", error)
    elif error is not None:
        log.error("mood request not recorded", exc_info=error)
