"""Journal entries accepted while the database is down wait in a durable local file.

The outbox is an append-only JSON-lines file; each append is fsynced before it returns, so an
entry the user was told is saved survives a crash. Draining writes the entries to MongoDB, where
the unique (user, prompt_id) index makes a repeated write harmless: a crash between writing an
entry and truncating the file re-sends it, and nothing is duplicated. Each entry written marks
its prompt answered, as an answer saved directly does. The file is then replaced atomically
(temp file, fsync, rename). The file, and the one of entries set aside, hold users'
words, so /export reads a user's entries in both, and their torn lines as written, and /forget
removes them all (`held`, `cut_short`, `remove`).

The file is read, and its lines decoded, in a worker thread, never on the event loop: with 5 000
answers waiting, decoding them there stalled every chat for 37-72 ms on each journal answer
(`queued`), each answer queued while the database is down, /export and /forget; now 4-9 ms. Only
lines holding the user's id are decoded. The thread's work is awaited under the same locks as
before, so each step is as atomic towards appends, drains and /forget as it was.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import itertools
import json
import logging
from collections import Counter
from contextlib import AbstractContextManager
from datetime import date, datetime
from pathlib import Path
from typing import Any, Awaitable, Callable

from storage.durable import append_durably, read_bytes, replace_durably
from storage.journal import MAX_NOTE_CHARS, PART_FOUND_CHARS, JournalRepo
from storage.models import (
    DatabaseLoginError,
    DatabaseUnavailableError,
    JournalEntry,
    StorageError,
    UserRef,
    without_sender,
)
from storage.prompts import PromptRepo

log = logging.getLogger(__name__)

OUTBOX_FILENAME = "journal-outbox.jsonl"
REJECTED_SUFFIX = ".rejected"  # lines that can never be written, kept for a human to look at
DEFAULT_DRAIN_INTERVAL_S = 30.0


def entry_to_line(entry: JournalEntry) -> bytes:
    # Every field of the entry, so a field added to JournalEntry is queued too.
    record: dict[str, Any] = dataclasses.asdict(entry)  # user -> {"platform", "user_id"}
    record["local_date"] = entry.local_date.isoformat()
    record["created_at"] = entry.created_at.isoformat()
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def _upgraded(record: dict[str, Any]) -> dict[str, Any]:
    """A line in the outbox's first format (until 2026-11-24, before every field was written via
    asdict) has the user's platform and id at the top level; nest them under "user" as now."""
    if "user" in record or "platform" not in record or "user_id" not in record:
        return record
    upgraded = {key: value for key, value in record.items() if key not in ("platform", "user_id")}
    upgraded["user"] = {"platform": record["platform"], "user_id": record["user_id"]}
    return upgraded


def entry_from_line(line: bytes) -> JournalEntry:
    record = _upgraded(json.loads(line))
    record["user"] = UserRef(**record["user"])
    record["local_date"] = date.fromisoformat(record["local_date"])
    record["created_at"] = datetime.fromisoformat(record["created_at"])
    record["valence"], record["arousal"] = float(record["valence"]), float(record["arousal"])
    return JournalEntry(**record)


def _readable(line: bytes) -> JournalEntry | None:
    try:
        return entry_from_line(line) if line.strip() else None
    except (ValueError, KeyError, TypeError):
        return None


def _line_prefixes(ref: UserRef) -> tuple[bytes, ...]:
    """How every line of the user's starts, in the outbox's format and in its first one."""
    user = {"platform": ref.platform, "user_id": ref.user_id}
    return (json.dumps({"user": user}, ensure_ascii=False)[:-1].encode("utf-8"),
            json.dumps(user, ensure_ascii=False)[:-1].encode("utf-8") + b",")


def _id_as_written(ref: UserRef) -> bytes:
    """The user's id as every line of theirs holds it (`json.dumps`, ensure_ascii off, in both the
    outbox's formats), read whole or torn after `_line_prefixes`: a line without it is someone
    else's, ruled out without decoding it (most lines of a large outbox are)."""
    return json.dumps(ref.user_id, ensure_ascii=False).encode("utf-8")


def is_users_line(line: bytes, ref: UserRef) -> bool:
    """Whether the line is one of the user's entries: read whole, or, torn by a crash or a full
    disk in the middle of an append (their words, but not all of the entry), by how it starts."""
    if _id_as_written(ref) not in line:
        return False
    entry = _readable(line)
    if entry is not None:
        return entry.user == ref
    return line.lstrip().startswith(_line_prefixes(ref))


# What a worker thread does with the file: reading it, and a line of it, is blocking work.

def _count_entries(path: Path) -> int:
    return sum(1 for line in read_bytes(path).splitlines() if line.strip())


def _entries_in(ref: UserRef, paths: tuple[Path, ...]) -> list[JournalEntry]:
    entries, user_id = [], _id_as_written(ref)
    for path in paths:
        lines = [line for line in read_bytes(path).splitlines() if user_id in line]
        entries += [entry for entry in map(_readable, lines) if entry is not None and entry.user == ref]
    return entries


def _torn_lines_in(ref: UserRef, paths: tuple[Path, ...]) -> list[str]:
    lines, user_id = [], _id_as_written(ref)
    for path in paths:
        lines += [line for line in read_bytes(path).splitlines() if user_id in line]
    torn = [line for line in lines if _readable(line) is None and line.strip() and is_users_line(line, ref)]
    return list(dict.fromkeys(line.decode("utf-8", errors="replace") for line in torn))


def _remove_lines_of(ref: UserRef, path: Path) -> int:
    lines, user_id = read_bytes(path).splitlines(keepends=True), _id_as_written(ref)
    kept = [line for line in lines if user_id not in line or not is_users_line(line, ref)]
    if len(kept) < len(lines):
        replace_durably(path, b"".join(kept))
    return len(lines) - len(kept)


def _remove_entry_of(ref: UserRef, prompt_id: str, path: Path) -> int:
    """Drop the user's entries that answered `prompt_id` from the file; returns how many."""
    lines, user_id = read_bytes(path).splitlines(keepends=True), _id_as_written(ref)

    def is_it(line: bytes) -> bool:
        if user_id not in line:
            return False
        entry = _readable(line)
        return entry is not None and entry.user == ref and entry.prompt_id == prompt_id

    kept = [line for line in lines if not is_it(line)]
    if len(kept) < len(lines):
        replace_durably(path, b"".join(kept))
    return len(lines) - len(kept)


def _unname_lines_of(sender: UserRef, path: Path) -> int:
    """Others' entries whose titles name `sender` ("Voice note by Alice, 5 Dec 2026", kept with
    their id) rewritten as if the sender were not known ("Voice note, 5 Dec 2026"); returns how many."""
    lines, sender_id = read_bytes(path).splitlines(keepends=True), _id_as_written(sender)
    renamed = 0
    for index, line in enumerate(lines):
        entry = _readable(line) if sender_id in line else None
        if entry is None or entry.sender != sender.user_id or entry.user.platform != sender.platform:
            continue
        lines[index] = entry_to_line(dataclasses.replace(entry, track_title=without_sender(entry.track_title),
                                                         sender=None))
        renamed += 1
    if renamed:
        replace_durably(path, b"".join(lines))
    return renamed


def part_held(note: str, words: str) -> bool:
    """Whether a part of a message (`JournalRepo.add_to_note`) is in the note already: anywhere, one
    of at least `PART_FOUND_CHARS`; at its end, a shorter one."""
    return words in note if len(words) >= PART_FOUND_CHARS else note.endswith(words)


def _note_added(ref: UserRef, answered_by: str, words: str, separator: str, path: Path) -> JournalEntry | None:
    """The user's waiting entry that the message `answered_by` made, `words` added to its note
    after `separator` (once: `part_held`; not past `MAX_NOTE_CHARS`), rewritten in place; None when
    the file holds none."""
    lines, user_id = read_bytes(path).splitlines(keepends=True), _id_as_written(ref)
    for index, line in enumerate(lines):
        entry = _readable(line) if user_id in line else None
        if entry is None or entry.user != ref or entry.answered_by != answered_by:
            continue
        room = len(entry.note or "") + len(separator) + len(words) <= MAX_NOTE_CHARS
        if room and not part_held(entry.note, words):
            entry = dataclasses.replace(entry, note=f"{entry.note}{separator}{words}" if entry.note else words)
            lines[index] = entry_to_line(entry)
            replace_durably(path, b"".join(lines))
        return entry
    return None


def _split(path: Path) -> tuple[int, list[bytes]]:
    snapshot = read_bytes(path)
    return len(snapshot), snapshot.splitlines(keepends=True)


def _rewrite_after_drain(path: Path, kept: list[bytes], drained_size: int) -> None:
    """The entries kept, then those appended since the drain read the first `drained_size` bytes."""
    appended_meanwhile = read_bytes(path)[drained_size:]
    replace_durably(path, b"".join(kept) + appended_meanwhile)


class JournalOutbox:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # users' words: ours alone
        # Appends and the final rewrite of a drain must not interleave.
        self._lock = asyncio.Lock()
        # One drain at a time, and none while a user's entries are being removed (/forget).
        self._drain_lock = asyncio.Lock()

    @property
    def rejected_path(self) -> Path:
        return self.path.with_name(self.path.name + REJECTED_SUFFIX)

    @classmethod
    def in_data_dir(cls, data_dir: Path | str) -> "JournalOutbox":
        return cls(Path(data_dir) / OUTBOX_FILENAME)

    async def append(self, entry: JournalEntry) -> None:
        """Returns once the entry is on disk (fsynced)."""
        async with self._lock:
            await asyncio.to_thread(append_durably, self.path, entry_to_line(entry))

    async def append_unless_queued(self, entry: JournalEntry) -> bool:
        """Appends the entry unless one for its prompt is already waiting (two answers to one
        prompt at once: the drain would keep the first and drop the other unseen); True when
        appended. The check and the append are one step under the lock."""
        async with self._lock:
            waiting = await self._entries_of(entry.user, self.path)
            if any(queued.prompt_id == entry.prompt_id for queued in waiting):
                return False
            await asyncio.to_thread(append_durably, self.path, entry_to_line(entry))
        return True

    def pending(self) -> int:
        """How many entries wait. Reads the file: blocking, so not for the event loop (`waiting`)."""
        return _count_entries(self.path)

    async def waiting(self) -> int:
        """`pending`, read in a worker thread."""
        return await asyncio.to_thread(_count_entries, self.path)

    async def queued(self, ref: UserRef) -> list[JournalEntry]:
        """The user's entries still waiting for the database."""
        async with self._lock:  # not an append half written
            return await self._entries_of(ref, self.path)

    async def held(self, ref: UserRef) -> list[JournalEntry]:
        """Every entry of the user the outbox holds, waiting or set aside: what /export shows
        (and /forget removes, see `remove`). One set aside by a drain that stopped before it
        dropped it from the outbox is in both files: it is shown once."""
        async with self._lock:
            entries = await self._entries_of(ref, self.path, self.rejected_path)
        once: dict[str, JournalEntry] = {}
        for entry in entries:
            once.setdefault(entry.prompt_id, entry)
        return list(once.values())

    async def cut_short(self, ref: UserRef) -> list[str]:
        """The user's torn lines (an append a crash or a full disk cut short), waiting or set aside,
        as written: no entry can be read from them, but they hold the start of the user's answer,
        their words among it, which /forget deletes (`remove`) and /export shows. A character torn
        in two reads as U+FFFD. One in both files (set aside by a drain stopped before it rewrote
        the outbox) is shown once."""
        async with self._lock:
            return await asyncio.to_thread(_torn_lines_in, ref, (self.rejected_path, self.path))  # older first

    async def _entries_of(self, ref: UserRef, *paths: Path) -> list[JournalEntry]:
        """(Under `_lock`.)"""
        return await asyncio.to_thread(_entries_in, ref, paths)

    async def remove(self, ref: UserRef) -> int:
        """Drop the user's entries, queued or set aside (/forget), the torn ones too; returns how
        many. A drain in progress finishes first, so none of them reaches the database after this
        returns."""
        removed = 0
        async with self._drain_lock, self._lock:
            for path in (self.path, self.rejected_path):
                removed += await asyncio.to_thread(_remove_lines_of, ref, path)
        return removed

    async def unname(self, sender: UserRef) -> int:
        """Others' entries, waiting or set aside, whose titles name `sender` (their /forget): they
        read "Voice note, 5 Dec 2026", without the sender's id; returns how many. A drain in
        progress finishes first, so none of them reaches the database named after this returns."""
        renamed = 0
        async with self._drain_lock, self._lock:
            for path in (self.path, self.rejected_path):
                renamed += await asyncio.to_thread(_unname_lines_of, sender, path)
        return renamed

    async def remove_entry(self, ref: UserRef, prompt_id: str,
                           first: Callable[[], Awaitable[object]] | None = None) -> int:
        """Drop the user's entry for `prompt_id`, waiting or set aside (/journal delete); returns
        how many lines went. A drain in progress finishes first, so after this returns the entry
        is either in the database already (for the caller to delete there) or nowhere: no drain
        writes it back. `first` (the entry's delete from the database) runs before, under the same
        hold on drains: when it raises, the outbox is left as it was."""
        removed = 0
        async with self._drain_lock:
            if first is not None:
                await first()
            async with self._lock:
                for path in (self.path, self.rejected_path):
                    removed += await asyncio.to_thread(_remove_entry_of, ref, prompt_id, path)
        return removed

    async def add_to_note(self, ref: UserRef, answered_by: str, words: str, separator: str) -> JournalEntry | None:
        """The waiting entry the message `answered_by` made, `words` added to its note after
        `separator`, once per part, as `JournalRepo.add_to_note` adds the rest of a message its
        platform sent in parts to an entry in the database. None when none waits here (written
        already, or never made). A drain in progress finishes first: the entry is then either still
        here, or in the database."""
        async with self._drain_lock, self._lock:
            return await asyncio.to_thread(_note_added, ref, answered_by, words, separator, self.path)

    async def drain(self, journal: JournalRepo, prompts: PromptRepo | None = None) -> int:
        """Write queued entries to the database, oldest first, and mark their prompts answered
        (in `prompts`, when given); returns how many left the outbox (stored now, or found already
        stored). Stops at the first DatabaseUnavailableError or DatabaseLoginError and keeps the rest
        (an outage to wait out, a setting to fix: no entry is set aside for them). Entries appended
        meanwhile are kept for the next drain."""
        async with self._drain_lock:
            return await self._drain(journal, prompts)

    async def _drain(self, journal: JournalRepo, prompts: PromptRepo | None) -> int:
        async with self._lock:  # whole lines only: an append under way writes its line under the lock
            drained_size, lines = await asyncio.to_thread(_split, self.path)
        if not drained_size:
            return 0
        delivered = 0
        kept: list[bytes] = []
        rejected: list[bytes] = []
        for index, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                entry = entry_from_line(line)
            except (ValueError, KeyError, TypeError) as exc:
                # A torn last line from a crash mid-append: that append never returned.
                log.error("outbox line %d is unreadable, set aside: %s", index, exc)
                rejected.append(line if line.endswith(b"\n") else line + b"\n")
                continue
            try:
                await journal.add(entry)
            except DatabaseUnavailableError:
                kept.extend(lines[index:])
                break
            except DatabaseLoginError as exc:  # a setting to fix (a rotated password): no entry's fault
                log.error("outbox: the database refused the login, %d entries kept for later: %s",
                          len(lines) - index, exc)
                kept.extend(lines[index:])
                break
            except (StorageError, ValueError) as exc:
                log.error("outbox entry %s refused by the database, set aside: %s",
                          entry.prompt_id, exc)
                rejected.append(line)
                continue
            try:
                await _mark_answered(prompts, entry)
            except DatabaseUnavailableError:
                kept.extend(lines[index:])  # sent again next time: a stored entry is a no-op, then marked
                break
            delivered += 1
        async with self._lock:
            # Set aside first, then dropped from the outbox: a crash (or a set-aside file that
            # cannot be written) between the two leaves an entry in both, never in neither.
            if rejected:
                await asyncio.to_thread(append_durably, self.rejected_path, b"".join(rejected))
            await asyncio.to_thread(_rewrite_after_drain, self.path, kept, drained_size)
        if delivered:
            log.info("outbox: %d journal entries written to the database", delivered)
        return delivered


async def _mark_answered(prompts: PromptRepo | None, entry: JournalEntry) -> None:
    """An entry saved from the outbox answers its prompt: left open, the prompt would take the
    user's next message, which would be downloaded and heard only to be told "already answered"."""
    if prompts is None:
        return
    try:
        await prompts.mark_answered(entry.prompt_id, at=entry.created_at)
    except DatabaseUnavailableError:
        raise
    except StorageError as exc:  # the entry is stored: it stays so, and the prompt stays open
        log.warning("outbox entry %s stored, but its prompt was not marked answered: %s", entry.prompt_id, exc)


class JournalWrite(enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # this prompt was already answered: stored, or waiting in the outbox
    QUEUED = "queued"  # the database is down; the entry is safe in the outbox


class ErasedMeanwhileError(StorageError):
    """The user's data was erased (/forget) while their entry was on its way: it is not kept."""


class NotKeptError(StorageError):
    """The database down, and the outbox's disk refused the entry too (DATA_DIR's disk full): it is
    saved nowhere. Its OSError went up through the answer: "Something went wrong", as for a bug,
    and a traceback that named no disk."""


NOT_KEPT = ("The database didn't answer, and I couldn't keep your answer to save later either (my disk "
            "refused it), so it is not saved: send it again in a while.")


ERASED_MEANWHILE = ("You deleted your data with /forget while I was saving this answer, so I didn't keep it. "
                    "Turn the journal on again with /journal on to start a new one.")


class JournalWriter:
    """The journal's write path for use cases: database first, outbox when it is down."""

    def __init__(self, journal: JournalRepo, outbox: JournalOutbox, prompts: PromptRepo) -> None:
        self.journal = journal
        self.outbox = outbox
        self.prompts = prompts  # where a drained entry marks its prompt answered
        # Erasures per user: an entry whose database write was under way when the user's queued
        # entries were removed is not queued after them (the next drain would write it back).
        self._erasures: Counter[UserRef] = Counter()

    async def add_or_queue(self, entry: JournalEntry) -> JournalWrite:
        erasures = self._erasures[entry.user]
        try:
            stored = await self.journal.add(entry)
        except DatabaseUnavailableError:
            if self._erasures[entry.user] != erasures:
                raise ErasedMeanwhileError(ERASED_MEANWHILE) from None
            # No await before the append takes the outbox's lock: a `forget` from now on waits
            # for it, then removes this entry with the rest.
            try:
                if not await self.outbox.append_unless_queued(entry):
                    return JournalWrite.DUPLICATE  # another answer to this prompt is already waiting
            except OSError as error:
                log.error("outbox: a journal answer could not be kept (%s, %s): it is not saved",
                          error.strerror or error, self.outbox.path)
                raise NotKeptError(NOT_KEPT) from None
            return JournalWrite.QUEUED
        return JournalWrite.STORED if stored else JournalWrite.DUPLICATE

    async def drain(self) -> int:
        return await self.outbox.drain(self.journal, self.prompts)

    async def drain_for(self, ref: UserRef) -> int:
        """Drain now if the user has entries waiting (0 otherwise): before their next answer is
        matched to a prompt, so a prompt answered in the outbox is answered in the database too."""
        return await self.drain() if await self.outbox.queued(ref) else 0

    async def held(self, ref: UserRef) -> list[JournalEntry]:
        """The user's entries in the outbox, waiting or set aside (they belong in an /export)."""
        return await self.outbox.held(ref)

    async def cut_short(self, ref: UserRef) -> list[str]:
        """The user's answers a crash cut short in the outbox, as written (they belong in an /export)."""
        return await self.outbox.cut_short(ref)

    async def forget(self, ref: UserRef) -> int:
        """Remove the user's entries from the outbox; an entry still on its way is dropped too."""
        self._erasures[ref] += 1
        return await self.outbox.remove(ref)

    async def unname(self, sender: UserRef) -> int:
        """Others' entries in the outbox whose titles name the user (their /forget): unnamed."""
        return await self.outbox.unname(sender)

    async def delete(self, ref: UserRef, prompt_id: str,
                     first: Callable[[], Awaitable[object]] | None = None) -> tuple[bool, int]:
        """Delete the user's entry for `prompt_id` (/journal delete) from the database, then from
        the outbox, with no drain between (it would write the entry back); (whether the database
        held it, how many outbox lines went). A database that fails the delete (StorageError)
        leaves the outbox as it was: the user, told so, may ask again, and "last" is still that
        entry (taken out of the outbox first, the one before it was "last" for the second try).
        `first` (the prompt's reopening) runs before, with no drain between either: a drain
        writing the entry marks its prompt answered, after the reopening it would undo."""
        stored = False

        async def from_the_database() -> None:
            nonlocal stored
            if first is not None:
                await first()
            stored = await self.journal.delete(ref, prompt_id)

        removed = await self.outbox.remove_entry(ref, prompt_id, first=from_the_database)
        return stored, removed

    async def run_drainer(self, interval: float = DEFAULT_DRAIN_INTERVAL_S, *,
                          each_round: Callable[[int], AbstractContextManager[object]] | None = None) -> None:
        """Drain every `interval` seconds until cancelled (run it as a background task). Each round
        (the n-th, from 1) runs inside `each_round(n)` if given: the app names its log lines so."""
        for number in itertools.count(1):
            with each_round(number) if each_round is not None else contextlib.nullcontext():
                try:
                    if await self.outbox.waiting():
                        await self.drain()
                except Exception:  # keep the drainer alive: the next round may succeed
                    log.exception("outbox drain failed")
            await asyncio.sleep(interval)
