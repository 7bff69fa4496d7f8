"""Your data: take it (/export) or delete it (/forget)."""
from __future__ import annotations

import gzip
import logging
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable, Sequence

from bot.ratelimit import HeavyLimits, refusal
from bot.replies import PLACE, Caller, ErrorReply, ExportReply, TextReply, as_typed
from bot.usecases.journal import local_today
from bot.usecases.inbox import InboxUseCase
from bot.usecases.ports import NoSchedule, PromptSchedule
from storage.models import JournalEntry, StorageError, User, UserRef, export_zone
from storage.outbox import JournalWriter
from storage.privacy import RawExport

log = logging.getLogger(__name__)

# The largest file every front-end can send: Discord's limit without server boosts (10 MB since
# 2025, 8 MB before); Telegram's is 50 MB. A larger export is sent gzipped: 2 000 entries with
# 4 096-character notes of varied words and 10 000 requests, 19.6 MB of JSON (32.5 MB in
# Cyrillic), make 4.3 MB (5.9 MB).
EXPORT_MAX_BYTES = 8 * 1024 * 1024
EXPORT_TOO_LARGE = ("Your data is too large to send as one file ({mb:.0f} MB even compressed); "
                    "please ask the bot's operator for a copy.")

# Said when the database fails between /forget's first step (`PrivacyRepo.withdraw`) and its last.
FORGET_CUT_SHORT = ("I couldn't delete everything: your daily prompt is stopped and your songs no longer count "
                    f"in {PLACE} playlists, but some of your data is still stored; please try /forget again.")

# Said when DATA_DIR's disk refuses to rewrite a file of the user's words not in the database yet
# (the journal's outbox, the inbox's spool), before anything is deleted from the database: deleted
# there while their answers wait in the outbox, a drain would write them back.
FORGET_DISK_REFUSED = ("This bot's disk refused to rewrite the file holding your words not saved yet ({reason}). "
                       "{done}; please try /forget again later.")

# A /forget that found nothing stored (no settings, so no daily prompt on either): said so, not
# "deleted everything (0 records) and stopped your daily prompt".
NOTHING_TO_FORGET = ("There was nothing of yours to delete: I had nothing stored about you, and no daily prompt "
                     "was on.")
# Nothing of theirs either, but others' records of their files named them ("Voice note by Alice"):
# not "nothing to delete", as if the /forget had done nothing.
ONLY_UNNAMED = "I had nothing of yours to delete, and no daily prompt was on, but{unnamed}"
# Others' requests and journal entries of the user's files, titled by their name: renamed, not deleted.
UNNAMED = (" I took your name out of {songs} others had asked about or put in their journals: your voice notes "
           "and files, now titled without it (the records are theirs, so they stay).")


def unnamed_aside(count: int) -> str:
    """What /forget says of others' records it took the user's name out of ("" for none)."""
    return UNNAMED.format(songs="1 song" if count == 1 else f"{count} songs") if count else ""


FORGET_EXPLANATION = (
    f"This deletes everything I store about you, on every {PLACE}: your settings, your journal "
    f"entries, the songs you asked about, the prompts I sent you and which {PLACE}s you left, and it "
    "stops your daily prompt. "
    f"A /share off goes too: songs you ask about afterwards count in {PLACE} playlists unless you say it again. "
    "Songs' moods stay cached (they aren't about you). This can't be undone."
)

# How long /forget's "Yes, delete everything" deletes: pressed later, it asks for /forget again
# (FORGET_EXPIRED) and deletes nothing. Discord's view listens this long; Telegram's buttons stay in
# the chat for good, so a press is measured from the question's date.
FORGET_CONFIRM_S = 120.0
FORGET_EXPIRED = ("This confirmation has expired: type /forget again if you want me to delete everything "
                  "I keep about you.")


EXPORT_WORDS_ASIDE = "/export takes no words, so “{typed}” was left aside: the file holds everything, as JSON."
# /export's reply names what its file holds, part by part (`export_contents`).
EXPORTED_PARTS = (("journal", "journal entry", "journal entries"), ("prompts", "prompt", "prompts"),
                  ("requests", "song you asked the mood of", "songs you asked the mood of"),
                  ("journal_cut_short", "answer cut short by a crash", "answers cut short by a crash"))


def export_contents(user: User, saved: bool, counts: Counter) -> str | None:
    """What an export holds, in words: "your settings, 365 journal entries, 366 prompts and 2 songs
    you asked the mood of; times are on your clock (Europe/Lisbon)". None when it holds nothing
    kept about the user: no settings `saved` nor any record (the defaults alone)."""
    parts = ["your settings"] if saved else []
    parts += [f"{counts[name]} {one if counts[name] == 1 else many}" for name, one, many in EXPORTED_PARTS
              if counts[name]]
    if not parts and not sum(counts.values()):
        return None
    listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    zone = getattr(export_zone(user), "key", "UTC")  # the zone its times are written in (UTC for one not known)
    return f"{listed or 'your records'}; times are on your clock ({zone})"


def export_file(name: str, raw: RawExport, user: User, held: list[JournalEntry],
                cut_short: Sequence[str] = (), counts: Counter | None = None) -> tuple[str, bytes]:
    """The export as a file every front-end can send: JSON, gzipped (`name.gz`) when too large. Of
    the user's documents as the database sent them, with `user` as their settings, the entries
    `held` in the outbox that the database does not hold yet, and the outbox's lines of theirs that
    a crash `cut_short`. CPU-bound: run it in a thread."""
    data = raw.to_json(user, held, cut_short, counts).encode("utf-8")
    if len(data) <= EXPORT_MAX_BYTES:
        return name, data
    return f"{name}.gz", gzip.compress(data, compresslevel=6, mtime=0)


class PrivacyUseCase:
    """`writer`, when given, is the journal's write path: entries it queued while the database was
    down (or set aside when the database refused them) are the user's data too, so they are
    exported and forgotten with the rest. `inbox`, when given, keeps the requests being answered
    (in the database, or its spool when the database could not): /forget waits for the user's keeps
    on their way, so none lands after it (`InboxUseCase.forget`)."""

    def __init__(self, db, *, writer: JournalWriter | None = None, schedule: PromptSchedule | None = None,
                 limits: HeavyLimits | None = None, inbox: InboxUseCase | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.db = db
        self.writer = writer
        self.inbox = inbox
        self.limits = limits or HeavyLimits()
        self.schedule: PromptSchedule = schedule or NoSchedule()
        self.now = now

    def arrived(self, caller: Caller) -> Caller:
        """The caller of a message that has just arrived, stamped with the user's /forget count:
        the front-end calls this first, before it downloads anything, so that a /forget sent after
        the message drops what the message would have saved (a request, a journal entry); and with
        the time it arrived, which a /mood counts from in its place (`MoodUseCase.run`)."""
        return replace(caller, erasures=self.db.privacy.erasures(UserRef(caller.platform, caller.user_id)),
                       asked_at=caller.asked_at or self.now())

    async def export(self, caller: Caller, typed: str = "") -> ExportReply | ErrorReply:
        """/export: everything kept about the caller, as one JSON file. `typed`: words typed after
        the command ('/export csv'), which it takes none of: the reply says so (EXPORT_WORDS_ASIDE)."""
        if (refused := refusal(self.limits.export, caller, "export")) is not None:
            return refused
        ref = UserRef(caller.platform, caller.user_id)
        async with self.limits.renders.holding():  # a few users' data at a time, however many ask
            # The outbox before the database: an entry the drainer moves from one to the other in
            # between is then read in both (and shown once), not in neither.
            held = await self.writer.held(ref) if self.writer is not None else []
            # An answer whose append a crash cut short: no entry, but the start of the user's words,
            # which /forget deletes; shown as written.
            cut_short = await self.writer.cut_short(ref) if self.writer is not None else []
            try:
                raw = await self.db.privacy.export_raw(ref)
            except StorageError as error:
                return ErrorReply(str(error))
            # A user who never saved settings has the defaults (journal off, UTC, songs counted in
            # playlists): shown as what they have, not as null; their `created_at` null says none were saved.
            user = raw.user or User(caller.platform, caller.user_id)
            # Dated where the user is: at 23:30 in Los Angeles it is today's export, not tomorrow's (UTC's).
            name = f"moodbot-export-{local_today(user.timezone, self.now()).isoformat()}.json"
            # Off the event loop: years of entries are tens of thousands of documents to decode and
            # megabytes of JSON, seconds of work, holding the GIL as a chart does, so it takes a render slot too.
            counts: Counter = Counter()
            name, data = await self.limits.renders.run(export_file, name, raw, user, held, cut_short, counts)
        log.info("privacy.export", extra={"user": caller.user_id, "bytes": len(data)})
        if len(data) > EXPORT_MAX_BYTES:
            return ErrorReply(EXPORT_TOO_LARGE.format(mb=len(data) / 1024 / 1024))
        aside = EXPORT_WORDS_ASIDE.format(typed=as_typed(typed.strip(), 30)) if typed.strip() else ""
        return ExportReply(name, data, export_contents(user, raw.user is not None, counts), aside=aside)

    async def forget(self, caller: Caller, *, confirmed: bool) -> TextReply:
        if not confirmed:
            return TextReply(FORGET_EXPLANATION)
        ref = UserRef(caller.platform, caller.user_id)
        # Before anything else: an answer or request still being listened to is dropped, not saved after.
        # `erase` says so again, but the database may refuse `withdraw` first, and `erase` never come.
        self.db.privacy.erasing(ref)
        queued = renamed = 0
        try:
            # The queue first: once it is empty of this user, nothing of theirs can reach the database.
            queued = await self.writer.forget(ref) if self.writer is not None else 0
            # Others' answers waiting there that name the user ("Voice note by Alice"): written so, they would stay.
            renamed = await self.writer.unname(ref) if self.writer is not None else 0
            # Requests in progress, not counted (as the database's); those still on their way past its
            # wait are noted once the rest is deleted, for a restart to drop should they land after a kill.
            on_their_way = (await self.inbox.forget(ref.platform, ref.user_id) if self.inbox is not None
                            else frozenset())
        except OSError as error:  # a full disk: the database's part waits, or a drain would undo it
            log.warning("privacy.forget_not_done", extra={"user": caller.user_id, "deleted": queued,
                                                          "reason": str(error)})
            done = (f"I deleted the {entries(queued)} waiting to be saved, but nothing else" if queued
                    else "Nothing was deleted")
            return TextReply(FORGET_DISK_REFUSED.format(reason=error.strerror or error, done=done))
        try:
            # Whether a daily prompt was coming, to say it stopped: not of one never on, or off already.
            before = await self.db.users.get(ref)
            made = await self.db.privacy.withdraw(ref)
        except StorageError as error:  # their journal and prompt stay as they were, and say so
            log.warning("privacy.forget_not_done", extra={"user": caller.user_id, "deleted": queued,
                                                          "reason": str(error)})
            if queued:
                return TextReply(f"{error} I deleted the {entries(queued)} waiting to be saved, but nothing else "
                                 "yet; please try /forget again.")
            return TextReply(f"{error} Nothing was deleted; please try /forget again.")
        # The settings say "no prompt" now: a prompt must not fire for someone being deleted.
        self.schedule.unschedule(ref)
        try:
            erased = await self.db.privacy.erase_counted(ref)
            deleted, renamed = queued + erased.deleted - made, renamed + erased.unnamed
        except StorageError as error:
            log.warning("privacy.forget_cut_short", extra={"user": caller.user_id, "reason": str(error)})
            return TextReply(f"{error} {FORGET_CUT_SHORT}")
        if on_their_way:
            await self.inbox.forgotten(on_their_way)
        log.info("privacy.forget", extra={"user": caller.user_id, "deleted": deleted, "unnamed": renamed})
        if not deleted:  # no settings either (they count), so no prompt was on
            return TextReply(ONLY_UNNAMED.format(unnamed=unnamed_aside(renamed)) if renamed else NOTHING_TO_FORGET)
        records = "1 record" if deleted == 1 else f"{deleted} records"
        prompting = before is not None and before.journal_enabled and before.journal_paused is None
        return TextReply(f"Done: I deleted everything about you ({records})"
                         + (" and stopped your daily prompt." if prompting else ".") + unnamed_aside(renamed))


def entries(count: int) -> str:
    return "1 journal entry" if count == 1 else f"{count} journal entries"
