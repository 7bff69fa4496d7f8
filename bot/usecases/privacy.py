"""Your data: take it (/export) or delete it (/forget)."""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable

from bot.replies import Caller, ErrorReply, ExportReply, TextReply
from bot.usecases.journal import local_today
from bot.usecases.ports import NoSchedule, PromptSchedule
from storage.models import StorageError, UserRef
from storage.outbox import JournalWriter

log = logging.getLogger(__name__)

FORGET_EXPLANATION = (
    "This deletes everything I store about you, on every server and group: your settings, your journal "
    "entries, the songs you asked about and the prompts I sent you, and it stops your daily prompt. "
    "A /share off goes too: songs you ask about afterwards count in server playlists unless you say it again. "
    "Songs' moods stay cached (they aren't about you). This can't be undone."
)


class PrivacyUseCase:
    """`writer`, when given, is the journal's write path: entries it queued while the database was
    down (or set aside when the database refused them) are the user's data too, so they are
    exported and forgotten with the rest."""

    def __init__(self, db, *, writer: JournalWriter | None = None, schedule: PromptSchedule | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.db = db
        self.writer = writer
        self.schedule: PromptSchedule = schedule or NoSchedule()
        self.now = now

    async def export(self, caller: Caller) -> ExportReply | ErrorReply:
        ref = UserRef(caller.platform, caller.user_id)
        try:
            exported = await self.db.privacy.export(ref)
        except StorageError as error:
            return ErrorReply(str(error))
        if self.writer is not None:
            stored = {entry.prompt_id for entry in exported.journal}
            waiting = [entry for entry in await self.writer.held(ref) if entry.prompt_id not in stored]
            exported = replace(exported, journal=exported.journal + waiting)
        log.info("privacy.export", extra={"user": caller.user_id})
        # Dated where the user is: at 23:30 in Los Angeles it is today's export, not tomorrow's (UTC's).
        zone = exported.user.timezone if exported.user is not None else "UTC"
        return ExportReply(f"moodbot-export-{local_today(zone, self.now()).isoformat()}.json",
                           exported.to_json().encode("utf-8"))

    async def forget(self, caller: Caller, *, confirmed: bool) -> TextReply:
        if not confirmed:
            return TextReply(FORGET_EXPLANATION)
        ref = UserRef(caller.platform, caller.user_id)
        # Before anything else: an answer or request still being listened to is dropped, not saved after.
        self.db.privacy.erasing(ref)
        # Unschedule first: a prompt must not fire for someone being deleted.
        self.schedule.unschedule(ref)
        # The queue first: once it is empty of this user, nothing of theirs can reach the database.
        queued = await self.writer.forget(ref) if self.writer is not None else 0
        try:
            deleted = queued + await self.db.privacy.forget(ref)
        except StorageError as error:
            if queued:
                entries = "1 journal entry" if queued == 1 else f"{queued} journal entries"
                return TextReply(f"{error} I deleted the {entries} waiting to be saved, but nothing else yet; "
                                 "please try /forget again.")
            return TextReply(f"{error} Nothing was deleted; please try /forget again.")
        log.info("privacy.forget", extra={"user": caller.user_id, "deleted": deleted})
        records = "1 record" if deleted == 1 else f"{deleted} records"
        return TextReply(f"Done: I deleted everything about you ({records}) and stopped your daily prompt.")
