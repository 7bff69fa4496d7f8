"""The requests being answered that the database could not keep (down, or too slow to write:
bot/usecases/inbox.py), kept on local disk instead until answered, so that a bot killed outright
during a database outage answers them after its restart too.

One append-only JSON-lines file in DATA_DIR. Each line is one step: a request kept (`keep`, as
the inbox keeps it), a note on requests kept (`note`: the message shown for one, their parts
answered, their replays back to 0 once handled to the end), requests answered (`done`). Each append is flushed and fsynced before it returns:
the platform's next fetch, which acknowledges the requests handed over, waits for it. A line a
kill tore (the last one, half written) is skipped at the read, said in the log; the next append
starts a line of its own. Once no request in it waits, the file is removed; before,
once the lines of requests answered outweigh those waiting, it is rewritten without them (their
words on disk at most as many bytes as the waiting's). It is
read once, at the first use (the start's replay); after that what waits is known in memory, so
clearing a request the file never held costs nothing. A /forget rewrites it without the user's
requests (`forget`).

Bounded (`MAX_BYTES`): an append that would pass it first rewrites the file with only what waits;
when that is still too much, the requests are not kept here (`inbox.spool_full` in the log) and
are held in memory only, as before the spool.

A step that writes runs to its end even if whoever awaits it is cancelled (`_to_its_end`): a
stop cancels the platform's fetch that keeps the batch before it, and a thread writing cannot be
stopped. Cancelled there, a keep's lines landed while the spool's memory never had its requests:
their answers cleared nothing here, and the restart answered them again. Now the answers' `done`
waits for the keep (one step at a time), and so does the stop's last clearing, within its bound.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from storage.inbox import Arrival
from storage.durable import append_durably, fsync_dir, read_bytes, replace_durably

log = logging.getLogger(__name__)

SPOOL_FILENAME = "inbox-spool.jsonl"
MAX_BYTES = 8 * 1024 * 1024  # thousands of requests, each a line holding it as its platform sent it


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def _kept_line(source: str, a: Arrival) -> bytes:
    return _line({"keep": source, "number": a.number, "payload": a.payload, "platform": a.platform,
                  "user_id": a.user_id, "received": a.received.isoformat() if a.received else None,
                  "replays": a.replays, "shown": None if a.shown is None else list(a.shown), "parts": a.parts})


def _arrival(step: dict[str, Any]) -> Arrival:
    return Arrival(step["number"], step["payload"], step["platform"], step["user_id"],
                   datetime.fromisoformat(step["received"]), step["replays"],
                   None if step["shown"] is None else tuple(step["shown"]), step["parts"])


def _noted(kept: Arrival, note: dict[str, Any]) -> Arrival:
    """`kept` with what a note says: the message shown for it (None: none now), its parts answered,
    its replays (0 once handled to the end, `held`)."""
    if "shown" in note:
        kept = replace(kept, shown=None if note["shown"] is None else tuple(note["shown"]))
    if "replays" in note:
        kept = replace(kept, replays=note["replays"])
    return replace(kept, parts=max(kept.parts, note.get("parts", 0)))


Step = TypeVar("Step", bound=Callable[..., Awaitable[Any]])


def _to_its_end(step: Step) -> Step:
    """The spool's `step`, run to its end (its thread's write, and what the spool then knows of
    it) even if whoever awaits it is cancelled: they get the cancellation at once, and the next
    step waits for this one to end (one at a time)."""
    @functools.wraps(step)
    async def whole(self: "InboxSpool", *args: Any, **kwargs: Any) -> Any:
        running = asyncio.ensure_future(step(self, *args, **kwargs))
        self._steps.add(running)  # a strong hold on it while no caller awaits it
        running.add_done_callback(self._steps.discard)
        return await asyncio.shield(running)
    return whole  # type: ignore[return-value]


class InboxSpool:
    def __init__(self, path: Path | str, *, max_bytes: int = MAX_BYTES) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._waiting: dict[tuple[str, int], Arrival] | None = None  # read from the file at the first use
        self._bytes: dict[tuple[str, int], int] = {}  # the size of each waiting request's line in the file
        self._lock = asyncio.Lock()  # one step at a time: appends, rewrites and the read
        self._unreadable = False  # the read failed: not used (nor written over) in this run
        self._steps: set[asyncio.Future] = set()  # the steps running, held on to (`_to_its_end`)

    @classmethod
    def in_data_dir(cls, data_dir: Path | str) -> "InboxSpool":
        return cls(Path(data_dir) / SPOOL_FILENAME)

    @_to_its_end
    async def keep(self, source: str, arrivals: Sequence[Arrival]) -> bool:
        """Keep requests the database did not (again for one kept: replaces it); True once on disk,
        False when the spool is full or the disk refuses (said in the log)."""
        if not arrivals:
            return True
        now = datetime.now(timezone.utc)
        arrivals = [a if a.received else replace(a, received=now) for a in arrivals]
        lines = {(source, a.number): _kept_line(source, a) for a in arrivals}
        data = b"".join(lines.values())
        async with self._lock:
            waiting = await self._read()
            if self._unreadable:
                return False
            try:
                if await asyncio.to_thread(self._size) + len(data) > self.max_bytes:
                    await asyncio.to_thread(self._rewrite, waiting)
                    if await asyncio.to_thread(self._size) + len(data) > self.max_bytes:
                        log.error("inbox.spool_full", extra={
                            "source": source.split(":")[0], "requests": len(arrivals), "path": str(self.path),
                            "reason": f"over {self.max_bytes} bytes wait in it: these are held in memory only"})
                        return False
                await asyncio.to_thread(self._append, data)
            except OSError as error:
                log.error("inbox.not_spooled", extra={"source": source.split(":")[0], "requests": len(arrivals),
                                                      "path": str(self.path), "reason": str(error)})
                return False
            waiting.update({(source, a.number): a for a in arrivals})
            self._bytes.update({key: len(line) for key, line in lines.items()})
            return True

    async def shown(self, source: str, number: int, chat_id: str | None, message_id: str | None) -> None:
        shown = None if chat_id is None or message_id is None else [chat_id, message_id]
        await self._note(source, [number], {"shown": shown})

    async def parts_answered(self, source: str, numbers: Sequence[int], parts: int) -> None:
        await self._note(source, numbers, {"parts": parts})

    async def held(self, source: str, numbers: Sequence[int]) -> None:
        await self._note(source, numbers, {"replays": 0})

    @_to_its_end
    async def done(self, source: str, numbers: Sequence[int]) -> None:
        """Forget requests answered (or moved into the database); the file goes with the last."""
        async with self._lock:
            waiting = await self._read()
            ours = [n for n in numbers if (source, n) in waiting]
            if not ours:
                return
            for number in ours:
                del waiting[(source, number)]
                self._bytes.pop((source, number), None)
            try:
                await asyncio.to_thread(self._clear, waiting, _line({"done": source, "numbers": ours}))
            except OSError as error:  # answered again after a kill: at least once
                log.warning("inbox.not_cleared_from_spool", extra={"source": source.split(":")[0],
                                                                   "path": str(self.path), "reason": str(error)})

    async def forget(self, platform: str, user_id: str) -> None:
        """/forget: the user's requests leave the file (rewritten without them, their words too)."""
        await self._drop(lambda a: (a.platform, a.user_id) == (platform, user_id))

    async def drop_received_before(self, before: datetime) -> None:
        """What any source kept before `before` goes (a bot since given another token, whose own
        start would never replay it)."""
        await self._drop(lambda a: a.received is not None and a.received < before)

    @_to_its_end
    async def _drop(self, which: Callable[[Arrival], bool]) -> None:
        async with self._lock:
            waiting = await self._read()
            dropped = [key for key, a in waiting.items() if which(a)]
            if not dropped:
                return
            for key in dropped:
                del waiting[key]
                self._bytes.pop(key, None)
            try:
                await asyncio.to_thread(self._rewrite, waiting)
            except OSError as error:
                try:  # no room for the copy: marked done at least, not handed over again by a restart
                    await asyncio.to_thread(append_durably, self.path, b"".join(
                        _line({"done": source, "numbers": [n for s, n in dropped if s == source]})
                        for source in dict.fromkeys(s for s, _ in dropped)))
                    outcome = "marked done instead; their words stay in it until it is next rewritten"
                except OSError as also:
                    outcome = f"nor marked done ({also}): a restart may hand them over again"
                log.error("inbox.not_dropped_from_spool", extra={"path": str(self.path),
                                                                 "reason": f"{error}; {outcome}"})

    async def waiting(self, source: str) -> list[Arrival]:
        """The requests kept here and not done, in the order they arrived."""
        async with self._lock:
            waiting = await self._read()
            return sorted((a for (s, _), a in waiting.items() if s == source), key=lambda a: a.number)

    @_to_its_end
    async def _note(self, source: str, numbers: Sequence[int], fields: dict[str, Any]) -> None:
        async with self._lock:
            waiting = await self._read()
            ours = [n for n in numbers if (source, n) in waiting]
            if not ours:
                return
            try:
                await asyncio.to_thread(append_durably, self.path,
                                        _line({"note": source, "numbers": ours, **fields}))
            except OSError as error:  # best effort, as in the database: a restart answers it anew
                log.warning("inbox.not_noted_in_spool", extra={"source": source.split(":")[0], "reason": str(error)})
                return
            for number in ours:
                waiting[(source, number)] = _noted(waiting[(source, number)], fields)

    async def _read(self) -> dict[tuple[str, int], Arrival]:
        if self._waiting is None:
            try:
                self._waiting = await asyncio.to_thread(self._fold)
            except OSError as error:  # what it holds stays for a run that can read it
                log.error("inbox.spool_unreadable", extra={
                    "path": str(self.path), "reason": f"{error}: not used until a restart; what the database "
                                                      "cannot keep is held in memory only"})
                self._unreadable, self._waiting = True, {}
        return self._waiting

    def _fold(self) -> dict[tuple[str, int], Arrival]:
        """What waits, from the file's lines in order; a line that cannot be read (torn by a kill
        in the middle of its append) is skipped, and said."""
        waiting: dict[tuple[str, int], Arrival] = {}
        self._bytes = {}
        for at, line in enumerate(read_bytes(self.path).splitlines(), 1):
            if not line.strip():
                continue
            try:
                step = json.loads(line)
                if not isinstance(step, dict):  # garbled into another JSON value: no step of ours
                    raise TypeError(f"a JSON {type(step).__name__}, not a step")
                if "keep" in step:
                    waiting[(step["keep"], step["number"])] = _arrival(step)
                    self._bytes[(step["keep"], step["number"])] = len(line) + 1
                else:
                    source = step.get("done") or step["note"]
                    for key in [(source, n) for n in step["numbers"] if (source, n) in waiting]:
                        if "done" in step:
                            del waiting[key]
                            self._bytes.pop(key, None)
                        else:
                            waiting[key] = _noted(waiting[key], step)
            except (ValueError, KeyError, TypeError) as error:
                log.warning("inbox.spool_line_unreadable", extra={
                    "path": str(self.path), "line": at, "reason": f"{type(error).__name__}: skipped (a write a "
                                                                  "kill cut short)"})
        return waiting

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # users' words: ours alone
        append_durably(self.path, data)

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _clear(self, waiting: dict[tuple[str, int], Arrival], done: bytes) -> None:
        """Requests answered: a `done` line, or, once the lines of requests answered would outweigh
        those still waiting (their words kept on disk for no one), the file rewritten without them."""
        if waiting and self._size() + len(done) <= 2 * sum(self._bytes.values()):
            append_durably(self.path, done)
        else:
            try:
                self._rewrite(waiting)
            except OSError:
                if not waiting:
                    raise
                append_durably(self.path, done)  # no room for the copy (a disk full): the line at least

    def _rewrite(self, waiting: dict[tuple[str, int], Arrival]) -> None:
        if waiting:
            lines = {key: _kept_line(key[0], a) for key, a in waiting.items()}
            replace_durably(self.path, b"".join(lines.values()))
            self._bytes = {key: len(line) for key, line in lines.items()}
        else:
            self._remove()

    def _remove(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return
        fsync_dir(self.path.parent)
