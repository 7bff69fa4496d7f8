"""The music journal: one entry per answered daily prompt, and the statistics over it."""
from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Awaitable

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from storage import journal_tracks
from storage.codec import date_text, date_value, journal_from_doc, journal_to_doc, user_filter
from storage.failures import translated_errors
from storage.models import (DatabaseUnavailableError, JournalEntry, JournalStats, PeriodMoods, StorageError,
                            UserRef)

log = logging.getLogger(__name__)

NEWEST_FIRST = [("local_date", DESCENDING), ("created_at", DESCENDING)]
OLDEST_FIRST = [("local_date", ASCENDING), ("created_at", ASCENDING)]
# Paging needs a total order: `_id` breaks a tie between two entries of the same day and instant.
PAGE_NEWEST_FIRST = [*NEWEST_FIRST, ("_id", DESCENDING)]
PAGE_OLDEST_FIRST = [*OLDEST_FIRST, ("_id", ASCENDING)]
CURSOR_RE = re.compile(r"^[0-9a-f]{24}$")  # an entry's `_id`, as `JournalPage.cursors` gives it
MS_PER_DAY = 86_400_000
ONE_DAY = timedelta(days=1)
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
ISO_WEEK_FORMAT = "%G-W%V"  # "2026-W47": ISO year and week, so late-December days land right
SONGS_LIMIT = 1000  # newest entries drawn on the valence/arousal chart

_LOCAL_DAY = {"$dateFromString": {"dateString": "$local_date", "format": "%Y-%m-%d"}}


def _mood_counts_by(period: Any) -> list[dict[str, Any]]:
    return [{"$group": {"_id": {"period": period, "mood": "$mood"}, "n": {"$sum": 1}}}]


def stats_pipeline(ref: UserRef) -> list[dict[str, Any]]:
    """One round trip: totals, mood counts per ISO week and month, runs of consecutive days
    (days minus their rank is constant along a run), and the songs for the chart."""
    return [
        {"$match": user_filter(ref)},
        {"$facet": {
            "total": [{"$count": "n"}],
            "weekly": _mood_counts_by({"$dateToString": {"date": _LOCAL_DAY,
                                                         "format": ISO_WEEK_FORMAT}}),
            "monthly": _mood_counts_by({"$substrCP": ["$local_date", 0, 7]}),
            "runs": [
                {"$group": {"_id": "$local_date"}},
                {"$project": {"day": {"$floor": {"$divide": [
                    {"$toLong": {"$dateFromString": {"dateString": "$_id",
                                                     "format": "%Y-%m-%d"}}},
                    MS_PER_DAY]}}}},
                {"$setWindowFields": {"sortBy": {"day": 1},
                                      "output": {"rank": {"$documentNumber": {}}}}},
                {"$group": {"_id": {"$subtract": ["$day", "$rank"]},
                            "length": {"$sum": 1}, "first_day": {"$min": "$day"},
                            "last_day": {"$max": "$day"}}},
            ],
            "songs": [
                {"$sort": {"local_date": -1, "created_at": -1}},
                {"$limit": SONGS_LIMIT},
                {"$project": {"_id": 0, "track_title": 1, "valence": 1, "arousal": 1,
                              "mood": 1}},
            ],
        }},
    ]


def epoch_day(day: date) -> int:
    return day.toordinal() - EPOCH_ORDINAL


def streaks(runs: list[dict[str, Any]], today: date) -> tuple[int, int]:
    """(current, longest). The current streak is the run through today, or through yesterday when
    today's prompt is not answered yet: an unanswered morning does not break a streak. The run may
    go on past today, or lie wholly after it (begun by this morning's answer in Tokyo, the journal
    moved to Los Angeles since), with days dated in a time zone ahead of the one the user has now:
    a run begun tomorrow is current (a day ahead is as far as places people live differ, but for
    the Line Islands' first hours against American Samoa's last)."""
    longest = max((int(run["length"]) for run in runs), default=0)
    current = max((int(run["length"]) for run in runs
                   if int(run["first_day"]) <= epoch_day(today) + 1 and epoch_day(today) <= int(run["last_day"]) + 1),
                  default=0)
    return current, longest


def period_moods(rows: list[dict[str, Any]]) -> list[PeriodMoods]:
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for row in rows:
        counts[row["_id"]["period"]][row["_id"]["mood"]] = int(row["n"])
    return [PeriodMoods(period, dict(sorted(moods.items()))) for period, moods in
            sorted(counts.items())]


def journal_stats(facets: dict[str, Any], today: date) -> JournalStats:
    current, longest = streaks(facets["runs"], today)
    songs = [(s.get("track_title", ""), float(s["valence"]), float(s["arousal"]), s["mood"])
             for s in reversed(facets["songs"])]
    return JournalStats(
        total_entries=facets["total"][0]["n"] if facets["total"] else 0,
        current_streak=current,
        longest_streak=longest,
        weekly=period_moods(facets["weekly"]),
        monthly=period_moods(facets["monthly"]),
        songs=songs,
    )


@dataclass(frozen=True)
class JournalPage:
    """Some of a user's entries, newest first, and where they stand in the whole journal."""
    entries: list[JournalEntry]
    cursors: list[str]  # each entry's place, for `page(before=...)` / `page(after=...)`
    offset: int  # how many entries are newer than the first one here
    total: int

    @property
    def has_older(self) -> bool:
        return self.offset + len(self.entries) < self.total

    @property
    def has_newer(self) -> bool:
        return self.offset > 0


Place = tuple[str, datetime, ObjectId]


def _place(doc: dict[str, Any]) -> Place:
    """An entry's place in PAGE_OLDEST_FIRST order: of two entries, the greater is the newer."""
    return doc["local_date"], doc["created_at"], doc["_id"]


# A part of a message (`add_to_note`) this long is told apart from the rest of a note by its words alone.
PART_FOUND_CHARS = 200
# The longest note the parts of a message make (`add_to_note`): 16 of Telegram's 4 096-character
# messages. A text of megabytes pasted into a client came as one part after another, each added (and
# the whole note searched for it), until the entry passed the database's 16 MB a document.
MAX_NOTE_CHARS = 65_536


class JournalRepo:
    """`summary`: the journal's summaries per member and track (`storage/journal_tracks.py`), kept
    by each add and delete, which the playlists read; `repairs`: the marks of the members whose
    summaries a delete may have left wrong (`_mark`), or an add's refused summary did
    (`_mark_refused`), kept until they are made again, so that a process killed before that leaves
    them to the next start (`recall_unsummed`); `erasure_lock`:
    /forget's (`RequestRepo`), held by a delete while it makes its track's summary again from the
    entries it read. A member's adds and deletes take turns (`_member`)."""

    def __init__(self, collection: AsyncCollection, summary: AsyncCollection | None = None,
                 erasure_lock: asyncio.Lock | None = None, repairs: AsyncCollection | None = None) -> None:
        self._journal = collection
        self._summary = summary
        self._repairs = repairs if summary is not None else None
        self._erasure_lock = erasure_lock or asyncio.Lock()
        self._adding: set[asyncio.Future] = set()
        # Members whose summaries may disagree with their entries (a delete under way, or one whose
        # summaries the database failed to make again: `_summed_up`, or an added entry's it failed
        # to fold in: `_sum_up`), each with the `_id`s of the marks in `repairs` that say so (none
        # where there is no `repairs`): the in-memory list, read at every repair point without a
        # round trip, kept beside the marks.
        self._unsummed: dict[tuple[str, str], set[ObjectId]] = {}
        # The `_id`s of marks whose insert's answer the database's going lost (`_mark`): written or
        # not, deleted with the member's marks (`_summed_up`).
        self._unconfirmed: dict[tuple[str, str], set[ObjectId]] = {}
        # A member's adds and deletes take turns (`_member`): a delete reads their entries, then
        # their summaries, and writes those that differ; an add between the two reads had folded its
        # vote into a summary the delete then wrote back without it.
        self._members: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = weakref.WeakValueDictionary()

    async def add(self, entry: JournalEntry) -> bool:
        """False when this prompt's reply is already stored: a re-delivered message is not an
        error and never makes a second entry."""
        return await self._tracked(self._add(entry))

    async def _tracked(self, write: Awaitable[bool]) -> bool:
        # Shielded and tracked: a /forget waits for the writes on their way (`settled`), the
        # summary's with them.
        writing = asyncio.ensure_future(write)
        self._adding.add(writing)
        writing.add_done_callback(self._adding.discard)
        return await asyncio.shield(writing)

    async def settled(self) -> None:
        """Wait until every entry added (or deleted) so far is written (or has failed), then make
        the summaries a failure left wrong again, where the database allows (`summed_up`)."""
        if self._adding:
            await asyncio.wait(set(self._adding))
        await self.summed_up()

    def _member(self, platform: str, user_id: str) -> asyncio.Lock:
        """The member's lock, held by each add and delete of theirs (in this process: a second bot
        on the same database does not take it). Kept while someone holds or waits for it."""
        lock = self._members.get((platform, user_id))
        if lock is None:
            lock = self._members[platform, user_id] = asyncio.Lock()
        return lock

    async def _add(self, entry: JournalEntry) -> bool:
        member = entry.user.platform, entry.user.user_id
        async with self._member(*member):
            doc = journal_to_doc(entry)
            with translated_errors("add journal entry"):
                try:
                    await self._journal.insert_one(doc)
                    added = True
                except DuplicateKeyError:
                    added = False
            await self._sum_up(member, entry, doc if added else None)
        return added

    async def _sum_up(self, member: tuple[str, str], entry: JournalEntry, doc: dict[str, Any] | None) -> None:
        """The stored entry's vote folded into its summary (`doc`: as just inserted; None: a
        duplicate, the stored one read and folded in again: an add whose summary failed after its
        entry, tried again, would lose its vote). A database that refuses it leaves the member's
        summaries to be made again at the next repair point (`_left_wrong`), marked in `repairs`
        then (`_mark_refused`: a process killed before leaves them to the next start; an add whose
        summary is written costs no mark), and the entry, stored, is said to be (raised, the user
        was told to try again, and the vote was left out until their next delete); one gone
        (DatabaseUnavailableError) raises still: the caller keeps the entry in the outbox, on disk
        (`JournalWriter.add_or_queue`), whose drain folds it in again, after a kill too. A member a
        failure left so has them all made again here, and the same holds where that fails, unless
        a mark of theirs already outlives the process (an earlier answer's outage left none: a kill
        lost this answer's vote, the drain folding in the earlier one's alone)."""
        if self._summary is None:
            return
        if member in self._unsummed:  # a delete (or an add) left them wrong
            error = await self._summed_up(*member)
        else:
            error = await self._folded_in(member, entry, doc)
        if error is None or self._unsummed.get(member):  # summed up, or a mark outlives the process
            return
        if isinstance(error, DatabaseUnavailableError):
            raise error
        await self._mark_refused(member)

    async def _folded_in(self, member: tuple[str, str], entry: JournalEntry,
                         doc: dict[str, Any] | None) -> StorageError | None:
        """`_sum_up`'s fold of the one entry into its summary: the error where the database failed
        it (the member left in `_unsummed`, `_left_wrong`)."""
        try:
            with translated_errors("sum up a journal entry"):
                if doc is None:
                    doc = await self._journal.find_one({**user_filter(entry.user), "prompt_id": entry.prompt_id},
                                                       projection=journal_tracks.ENTRY_FIELDS)
                if doc is not None:
                    await journal_tracks.add(self._summary, doc)
        except StorageError as error:
            self._left_wrong(member, error)
            return error
        return None

    async def _mark_refused(self, member: tuple[str, str]) -> None:
        """The member marked in `repairs` after the database refused an added entry's summary (not
        before, as a delete is: each answer would cost a write more). A mark the database refuses
        too is logged (journal.summaries_not_marked): the member is kept in `_unsummed` alone, their
        summaries made again at this process's repair points, not by the next start's."""
        try:
            await self._mark(member)
        except StorageError as error:
            log.warning("journal.summaries_not_marked", extra={"user": member[1], "reason": str(error)})

    async def answered_by(self, ref: UserRef, message: str) -> JournalEntry | None:
        """The user's entry the message `message` made (`JournalEntry.answered_by`), if any."""
        with translated_errors("find a journal entry by its message"):
            doc = await self._journal.find_one({**user_filter(ref), "answered_by": message})
        return None if doc is None else journal_from_doc(doc)

    async def add_to_note(self, ref: UserRef, answered_by: str, words: str, separator: str) -> JournalEntry | None:
        """The entry `answered_by` made, its note followed by `separator` and `words`: the rest of
        a message its platform sent in parts. Atomic, and once per part: a part handed over again
        after a restart adds nothing twice, found in the note as it stands (anywhere, one of at
        least `PART_FOUND_CHARS`, as a part other than the last always is; at its end, a shorter
        one), so that the entry holds nothing the export leaves out. Nor is a part added past
        `MAX_NOTE_CHARS`: the entry returned then lacks its words. None when there is no such entry."""
        note = {"$ifNull": ["$note", ""]}
        size = len(words)
        # The user's words as they are: in an update pipeline a string opening with '$' is a field
        # path ('$5 for the vinyl' read a missing field, and the note became null) and '$$' a variable.
        words, separator = {"$literal": words}, {"$literal": separator}
        at_end = {"$eq": [{"$substrCP": [note, {"$max": [0, {"$subtract": [{"$strLenCP": note}, size]}]}, size]},
                          words]}
        held = at_end if size < PART_FOUND_CHARS else {"$ne": [{"$indexOfCP": [note, words]}, -1]}
        joined = {"$cond": [{"$eq": [note, ""]}, words, {"$concat": [note, separator, words]}]}
        # Past MAX_NOTE_CHARS the note stays as it is: the caller tells so from its words not in it.
        full = {"$gt": [{"$add": [{"$strLenCP": note}, len(separator["$literal"]), size]}, MAX_NOTE_CHARS]}
        # Not a find_one_and_update: SecantusDB (0.7) runs a findAndModify as a scan of every user's
        # journal, by `_id` too (115 ms over 20 000 entries). The entry is found through
        # user_answered, then updated and read again by `_id` alone (with a field beside it
        # SecantusDB scans). Still once per part: the update is one document's, its pipeline
        # judging the note as it stands then, so two parts, or one handed over twice, at once each
        # see the other's words or not, as before. An entry's user and message never change, so
        # its `_id` names the entry found; one deleted in between is updated by nothing, and None.
        # The entry read after holds this part's words, and may hold a later part's too.
        with translated_errors("add to a journal entry's note"):
            found = await self._journal.find_one({**user_filter(ref), "answered_by": answered_by},
                                                 projection={"_id": 1})
            if found is None:
                return None
            await self._journal.update_one(
                {"_id": found["_id"]}, [{"$set": {"note": {"$cond": [{"$or": [held, full]}, note, joined]}}}])
            doc = await self._journal.find_one({"_id": found["_id"]})
        return None if doc is None else journal_from_doc(doc)

    async def on_day(self, ref: UserRef, day: date) -> list[JournalEntry]:
        """The user's entries of one local day (one per prompt answered that day), newest first,
        as /journal list shows them."""
        with translated_errors("find journal entries of a day"):
            docs = await self._journal.find({**user_filter(ref), "local_date": date_text(day)},
                                            sort=PAGE_NEWEST_FIRST).to_list()
        return [journal_from_doc(doc) for doc in docs]

    async def delete(self, ref: UserRef, prompt_id: str) -> bool:
        """Delete the user's entry that answered `prompt_id` (one at most: user_prompt_unique);
        False when there is none. Never another user's: the filter holds the caller's own id. Its
        track's summary is made again from the entries left (`journal_tracks.summarize_member`); a
        database that fails that, after the entry went, still returns True (`_summed_up`). The
        member is marked in the database before the entry's delete (`_mark`), the mark deleted
        once their summaries agree with their entries: a process killed in between leaves them to
        the next start. A database that refuses the mark raises StorageError, nothing deleted."""
        return await self._tracked(self._delete(ref, prompt_id))

    async def _delete(self, ref: UserRef, prompt_id: str) -> bool:
        # Not read by find_one_and_delete, which SecantusDB (0.7) runs as a scan of every user's
        # journal (690 ms over 73 000 entries, against 1.7 ms for this delete_one).
        member = ref.platform, ref.user_id
        async with self._member(*member):
            left_wrong = member in self._unsummed  # by an earlier delete: made again whatever this one finds
            mark = await self._mark(member)  # raises StorageError: nothing deleted
            with translated_errors("delete journal entry"):
                # A failure here leaves the mark: the entry may be gone (a reply lost on its way).
                result = await self._journal.delete_one({**user_filter(ref), "prompt_id": prompt_id})
            if result.deleted_count or left_wrong:
                await self._summed_up(*member)
            elif mark is not None:
                await self._unmark(member, {mark})  # nothing deleted: nothing to make again
        return result.deleted_count > 0

    async def _mark(self, member: tuple[str, str]) -> ObjectId | None:
        """Record, before an entry's delete (or after an add's summary refused: `_mark_refused`),
        that the member's summaries may be left wrong: in the database (`repairs`), so that a
        process killed before they are made again (`_summed_up`) leaves them to the next start,
        and in memory. Raises StorageError where the database
        refuses the mark: the entry is not deleted then (the user is told to try again), as a
        delete it would have refused too. None where there are no marks to keep. The database gone
        on the way (DatabaseUnavailableError), the mark may be written all the same, its answer
        lost: the member is kept in `_unsummed` and its `_id` (made here) in `_unconfirmed` before
        it raises, so that the next repair point deletes it (their summaries made again, for
        nothing); until 2026-12-06 such a mark stayed until the next start. Not in `_unsummed`'s
        marks, which `_sum_up` takes for marks that outlive the process: it may not be written."""
        if self._repairs is None:
            return None
        platform, user_id = member
        mark = {"_id": ObjectId(), "platform": platform, "user_id": user_id, "at": datetime.now(timezone.utc)}
        try:
            with translated_errors("mark a member's journal summaries to be made again"):
                await self._repairs.insert_one(mark)
        except DatabaseUnavailableError:
            self._unsummed.setdefault(member, set())  # made again at the next repair point, which deletes it
            self._unconfirmed.setdefault(member, set()).add(mark["_id"])  # not one that surely outlives us
            raise
        self._unsummed.setdefault(member, set()).add(mark["_id"])
        return mark["_id"]

    async def _unmark(self, member: tuple[str, str], marks: set[ObjectId]) -> None:
        """The marks deleted, in the database then in memory, once the member's summaries agree
        with their entries. Where the database fails that (logged), the member stays in `_unsummed`,
        their summaries made again (again) and the marks deleted at the next repair point."""
        if marks and self._repairs is not None:
            try:
                with translated_errors("clear a member's journal summaries' marks"):
                    await self._repairs.delete_many({"_id": {"$in": sorted(marks)}})
            except StorageError as error:
                log.warning("journal.summary_marks_not_cleared", extra={"user": member[1], "reason": str(error)})
                return
        for held in (self._unsummed, self._unconfirmed):
            left = held.get(member, set()) - marks
            if left:
                held[member] = left
            else:
                held.pop(member, None)

    async def _summed_up(self, platform: str, user_id: str) -> StorageError | None:
        """The member's summaries made to agree with their entries (`journal_tracks.summarize_member`),
        then their marks deleted (`_unmark`). A database that fails it leaves them wrong (a deleted
        entry's vote kept, or the summary gone with its vote): logged, and the member kept in
        `_unsummed` and their marks kept, whose summaries the next read of them (`summed_up`: a
        playlist, an export, a /forget, the stop) or the member's next add or delete makes again,
        or, the process killed first, the next start (`recall_unsummed`). Never raised: the write
        before it is done (an entry deleted is deleted), and the user is told so: returned where it
        failed (a refusal, or the database gone), None once they are made, whatever became of the
        marks' delete. Called with the member's lock held."""
        if self._summary is None:
            return None
        member = platform, user_id
        marks = set(self._unsummed.get(member, ())) | self._unconfirmed.get(member, set())
        try:
            with translated_errors("make a member's journal summaries again"):
                async with self._erasure_lock:  # read and written again: no /forget in between
                    await journal_tracks.summarize_member(self._journal, self._summary, platform, user_id)
        except StorageError as error:
            self._left_wrong(member, error)
            return error
        await self._unmark(member, marks)
        return None

    def _left_wrong(self, member: tuple[str, str], error: StorageError) -> None:
        """The member's summaries a failed write left wrong: logged, and kept in `_unsummed` (with
        whatever marks they have)."""
        self._unsummed.setdefault(member, set())
        log.warning("journal.summaries_not_made_again", extra={"user": member[1], "reason": str(error)})

    async def summed_up(self) -> None:
        """The summaries a failure left wrong (`_summed_up`) made again, where the database allows:
        those it refuses again are left (logged) for the next time, and the pass goes on to the
        next member (it stopped at the first: one member's refused summaries held up everyone's
        after them); the database gone (DatabaseUnavailableError), the pass stops there, the rest
        left for the next time too (each would wait out the same outage)."""
        for platform, user_id in sorted(self._unsummed):
            async with self._member(platform, user_id):
                if (platform, user_id) not in self._unsummed:
                    continue
                if isinstance(await self._summed_up(platform, user_id), DatabaseUnavailableError):
                    return

    def erased(self, ref: UserRef) -> None:
        """/forget deleted the user's entries, summaries and marks (`PrivacyRepo.erase_counted`):
        nothing of theirs is left to make again, and nothing of them is kept here. A member whose
        summaries the database still failed was kept in `_unsummed`, their ids and their marks',
        until the next repair pass (on a quiet bot, the stop)."""
        self._unsummed.pop((ref.platform, ref.user_id), None)
        self._unconfirmed.pop((ref.platform, ref.user_id), None)

    async def recall_unsummed(self) -> int:
        """At start: the members whose marks a previous process left (`_mark`: killed between a
        delete and its summaries, or after an add whose summary the database refused, or the
        database failed them and nothing read them again before the stop) have their summaries made again now, where the database allows (those it fails
        stay marked, for the repair points of this process or the next start). Raises StorageError
        where the marks cannot be read. Returns how many members were marked."""
        if self._repairs is None:
            return 0
        with translated_errors("read the journal summaries' marks"):
            docs = await self._repairs.find({}, projection={"platform": 1, "user_id": 1}).to_list()
        for doc in docs:
            self._unsummed.setdefault((doc["platform"], doc["user_id"]), set()).add(doc["_id"])
        members = {(doc["platform"], doc["user_id"]) for doc in docs}
        if members:
            log.info("journal.summaries_marked_at_start", extra={"members": len(members)})
        await self.summed_up()
        return len(members)

    async def list(self, ref: UserRef, limit: int = 10, skip: int = 0) -> list[JournalEntry]:
        with translated_errors("list journal"):
            docs = await self._journal.find(user_filter(ref), sort=NEWEST_FIRST,
                                            skip=skip, limit=limit).to_list()
        return [journal_from_doc(doc) for doc in docs]

    async def page(self, ref: UserRef, limit: int = 10, *, skip: int = 0, before: str | None = None,
                   after: str | None = None) -> JournalPage | None:
        """`limit` entries, newest first: from the `skip`th newest, or the ones just older than the
        entry `before` names, or just newer than `after`'s (a full page: the newest `limit` when
        fewer are newer). A cursor stays put while new entries arrive. None when the cursor names
        no entry of this user's (deleted since, or never theirs)."""
        user = user_filter(ref)
        with translated_errors("list journal"):
            if before is None and after is None:
                docs = await self._journal.find(user, sort=PAGE_NEWEST_FIRST, skip=skip, limit=limit).to_list()
            else:
                mark = await self._entry_at(user, before or after)
                if mark is None:
                    return None
                if before is not None:
                    docs = await self._next_to(user, mark, limit, older=True)
                else:
                    docs = (await self._next_to(user, mark, limit, older=False))[::-1]
                    if len(docs) < limit:
                        docs = await self._journal.find(user, sort=PAGE_NEWEST_FIRST, limit=limit).to_list()
            if docs and (before is not None or after is not None):
                offset = await self._count_newer(user, _place(docs[0]))
            else:
                offset = skip
            total = await self._journal.count_documents(user)
        return JournalPage([journal_from_doc(d) for d in docs], [str(d["_id"]) for d in docs], offset, total)

    # The reads around a cursor take equality on the user, then on the day or a range of days: the
    # user_page index serves them on the embedded SecantusDB as on MongoDB. SecantusDB's planner
    # scans the whole collection, every user's journal, for a filter with a top-level $or (one read
    # settling a day's ties needs one) or with `_id` beside other fields: 190 ms and 11 ms against
    # 9 ms and 0.6 ms over 10 000 entries.

    async def _entry_at(self, user: dict[str, Any], cursor: str) -> Place | None:
        if not CURSOR_RE.match(cursor or ""):
            return None
        doc = await self._journal.find_one({"_id": ObjectId(cursor)},
                                           projection={"platform": 1, "user_id": 1, "local_date": 1, "created_at": 1})
        if doc is None or any(doc.get(field) != value for field, value in user.items()):
            return None
        return _place(doc)

    async def _next_to(self, user: dict[str, Any], mark: Place, limit: int, *, older: bool) -> list[dict[str, Any]]:
        """Up to `limit` entries next to the one at `mark`: the older ones newest first, or the newer
        ones oldest first. The mark's day, then the days beyond it."""
        day = mark[0]
        sort = PAGE_NEWEST_FIRST if older else PAGE_OLDEST_FIRST
        same_day = await self._journal.find({**user, "local_date": day}, sort=sort).to_list()
        docs = [doc for doc in same_day if (_place(doc) < mark if older else _place(doc) > mark)][:limit]
        if len(docs) < limit:
            docs += await self._journal.find({**user, "local_date": {"$lt" if older else "$gt": day}},
                                             sort=sort, limit=limit - len(docs)).to_list()
        return docs

    async def _count_newer(self, user: dict[str, Any], mark: Place) -> int:
        day = mark[0]
        same_day = await self._journal.find({**user, "local_date": day},
                                            projection={"local_date": 1, "created_at": 1}).to_list()
        later_days = await self._journal.count_documents({**user, "local_date": {"$gt": day}})
        return later_days + sum(1 for doc in same_day if _place(doc) > mark)

    async def day_moods(self, ref: UserRef, first: date, last: date) -> dict[date, str]:
        """The mood of each day from `first` to `last` that has an entry: the day's latest answer's
        (a day may hold several, one per prompt). By date, not a number of entries."""
        return (await self.day_moods_and_several(ref, first, last))[0]

    async def day_moods_and_several(self, ref: UserRef, first: date, last: date) -> tuple[dict[date, str], set[date]]:
        """`day_moods`, and the days among them that hold more than one entry (whose mood is their
        latest's: the year in pixels' caption says so), read in the same query."""
        # Strict bounds on the days beside the window, the same days: SecantusDB (0.7) reads an
        # inclusive bound on an index field followed by others as a strict one, and user_page has two
        # after local_date, so `$gte` left out the window's first day (1 January in the year in pixels).
        days = {"$gt": date_text(first - ONE_DAY), "$lt": date_text(last + ONE_DAY)}
        query = {**user_filter(ref), "local_date": days}
        with translated_errors("journal days"):
            docs = await self._journal.find(query, projection={"_id": 0, "local_date": 1, "mood": 1},
                                            sort=PAGE_OLDEST_FIRST).to_list()  # ties as the list breaks them
        moods: dict[date, str] = {}
        several: set[date] = set()
        for doc in docs:
            day = date_value(doc["local_date"])
            if day in moods:
                several.add(day)
            moods[day] = doc["mood"]
        return moods, several

    async def count_after(self, ref: UserRef, day: date) -> int:
        """How many of the user's entries are dated after `day`: those /journal list <day> skips."""
        with translated_errors("count journal"):
            return await self._journal.count_documents({**user_filter(ref), "local_date": {"$gt": date_text(day)}})

    async def count(self, ref: UserRef) -> int:
        with translated_errors("count journal"):
            return await self._journal.count_documents(user_filter(ref))

    async def stats(self, ref: UserRef, today: date) -> JournalStats:
        with translated_errors("journal stats"):
            cursor = await self._journal.aggregate(stats_pipeline(ref))
            facets = (await cursor.to_list())[0]
        return journal_stats(facets, today)
