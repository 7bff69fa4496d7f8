"""The requests being answered, kept until answered: a bot killed outright answers them after
its restart (see `storage/inbox.py`). Platform-free: a front-end hands over its platform's own
payloads (`Arrival`) and replays what `replay` returns.

Keeping in the database is bounded: a write that fails, or takes longer than `KEEP_WAIT_S`, is
logged and the request answered all the same (the bot goes on answering while its database is
down); it is then kept in the local spool instead (`RequestSpool`, storage/spool.py: fsynced
before the next fetch from the platform acknowledges it), or, with none given (or the spool full),
held only in memory. After a failure, keeping pauses for `PAUSE_AFTER_FAILURE_S` (and so does
clearing, tried again after it), so a database that is down costs the fetches from the platform
its wait once, not every time: what arrives meanwhile goes to the spool at once. A clear that
failed is tried again once the pause is over (`paused_for`), and at the stop even during it
(`even_paused`); a request answered whose clearing never succeeded is answered again after a hard
kill: at least once, never lost while kept. A clear reaches the spool at once.

A keep cut short (past its bound, or cancelled by the stop) does not stop its write: one already
sent to the server lands all the same. It runs to its end (`_written`), and a clear of its requests
waits for it (within `DONE_WAIT_S`, else tried again like a failed one). Until 2026-12-06 the
clear's delete could come first, the late write then left the request in the database, and the
restart answered it a second time. A /forget waits for the user's keeps on their way the same way
(`forget`), and deletes their requests once the writes have landed; until 2026-12-06 a late write
put one back after the /forget had said everything was deleted. One slower than its wait is noted
as forgotten (`forgotten`: its source and number): a bot stopped or killed before the write lands
(the server takes it all the same) drops it at the restart, where until 2026-12-06 it answered and
stored it again.

At a start the requests in the spool are replayed with those in the database (one kept in both
once), then moved into it; while it does not answer they stay in the spool, their replays counted
there.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable, Collection, Sequence

from bot.usecases.ports import RequestSpool
from storage.inbox import Arrival, InboxRepo
from storage.models import StorageError

__all__ = ["Arrival", "InboxUseCase"]

log = logging.getLogger(__name__)

KEEP_WAIT_S = 1.0  # the longest the next fetch from the platform waits for a batch to be kept
DONE_WAIT_S = 2.0
PAUSE_AFTER_FAILURE_S = 30.0
# Telegram keeps an update it has not handed over for 24 hours: one older than that when the bot
# comes back is not answered now either (a day-old /mood would surprise more than it helps).
MAX_AGE = timedelta(hours=24)
# A request handed over again at two restarts in a row and never answered may be what kills the
# bot (a file that exhausts its memory): it is not handed over a third time. One that waits on
# the database alone (`replay`'s `waits_on_database`: a group's move) counts only the restarts
# the database answered; one handled to the end and kept only for what may follow it (`held`: a
# Telegram journal answer's next parts) only the restarts since, at which it died while handled.
MAX_REPLAYS = 2


class InboxUseCase:
    def __init__(self, repo: InboxRepo, *, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 keep_wait_s: float = KEEP_WAIT_S, done_wait_s: float = DONE_WAIT_S,
                 pause_after_failure_s: float = PAUSE_AFTER_FAILURE_S, spool: RequestSpool | None = None) -> None:
        self._repo = repo
        self._spool = spool  # where requests go that the database does not keep; None: memory only
        self._now = now
        self.keep_wait_s = keep_wait_s
        self.done_wait_s = done_wait_s
        self.pause_after_failure_s = pause_after_failure_s
        self._paused_until = 0.0  # time.monotonic() before which nothing is kept (a failure)
        self._writing: dict[tuple[str, int], asyncio.Future] = {}  # the keeps' writes on their way (`_written`)
        # The keeps under way and their writes still on their way, with what they keep: a /forget's (`forget`)
        self._keeping: dict[asyncio.Future, tuple[str, Sequence[Arrival]]] = {}
        self._forgetting: set[asyncio.Future] = set()  # held on to past their bound (`forget`)

    async def keep(self, source: str, arrivals: Sequence[Arrival]) -> bool:
        """Keep requests just handed over, in the database or else in the spool; False when they
        are held in memory only (a failure, said in the log, or the pause after one, and no spool
        to take them)."""
        if not arrivals:
            return True
        keeping = asyncio.ensure_future(self._kept(source, arrivals))
        self._under_way(keeping, source, arrivals)
        return await keeping  # cancelled, it is cancelled (its write goes on: `_written`)

    def _under_way(self, step: asyncio.Future, source: str, arrivals: Sequence[Arrival]) -> None:
        self._keeping[step] = (source, arrivals)
        step.add_done_callback(lambda _: self._keeping.pop(step, None))

    async def _kept(self, source: str, arrivals: Sequence[Arrival]) -> bool:
        if await self._attempt(
                lambda: self._written(source, arrivals), self.keep_wait_s, logging.WARNING, "inbox.not_kept",
                source=source, requests=len(arrivals), paused_s=self.pause_after_failure_s,
                spooled=self._spool is not None):
            return True
        return self._spool is not None and await self._spool.keep(source, arrivals)

    async def done(self, source: str, numbers: Sequence[int], *, even_paused: bool = False) -> bool:
        """Forget requests answered; False when the database did not say so (to be tried again,
        once `paused_for` is over). `even_paused`: tried during the pause after a failure too (the
        stop's last try). The spool forgets them at once; the database once the writes that keep
        them have settled (`_written`)."""
        if self._spool is not None and numbers:
            await self._spool.done(source, numbers)
        return not numbers or await self._attempt(
            lambda: self._done_after_writes(source, numbers), self.done_wait_s, logging.INFO, "inbox.not_cleared",
            even_paused=even_paused, source=source, requests=len(numbers))

    def _written(self, source: str, arrivals: Sequence[Arrival]) -> Awaitable[None]:
        """The database's write of a keep, run to its end even if the keep is cut short (its bound,
        the stop's cancel), for its requests' clear to wait for it."""
        write = asyncio.ensure_future(self._repo.keep(source, arrivals))
        self._under_way(write, source, arrivals)
        keys = [(source, a.number) for a in arrivals]
        self._writing.update(dict.fromkeys(keys, write))

        def settled(_: asyncio.Future) -> None:
            for key in keys:
                if self._writing.get(key) is write:
                    del self._writing[key]
            if not write.cancelled():
                write.exception()  # said by `_attempt`, or by none once the keep was cut short
        write.add_done_callback(settled)
        return asyncio.shield(write)

    async def _done_after_writes(self, source: str, numbers: Sequence[int]) -> None:
        writes = {w for n in numbers if (w := self._writing.get((source, n))) is not None}
        if writes:
            await asyncio.wait(writes)
        await self._repo.done(source, numbers)

    async def forget(self, platform: str, user_id: str) -> frozenset[tuple[str, int]]:
        """/forget: the user's requests kept go, from the spool and the database, those whose keep
        is under way too: from the spool as each keep ends, from the database once its write has
        landed or failed. Waits for that within `DONE_WAIT_S`; what is still on its way past it goes
        once it lands (the database's inbox, by the /forget's `erase`, only holds what had landed by
        then), and is returned ((source, number) each; none once all went): a stop or kill may come
        first while the server still takes the write, so the /forget notes them (`forgotten`) for
        the restart to drop."""
        theirs = {(source, a.number) for source, arrivals in self._keeping.values()
                  for a in arrivals if (a.platform, a.user_id) == (platform, user_id)}
        forgetting = asyncio.ensure_future(self._forgotten(platform, user_id, theirs))
        self._forgetting.add(forgetting)
        forgetting.add_done_callback(self._forgetting.discard)
        done, _ = await asyncio.wait({forgetting}, timeout=self.done_wait_s)
        if done:
            forgetting.result()  # what went wrong, said to the /forget
            return frozenset()
        log.warning("inbox.forget_waits", extra={
            "source": platform, "requests": len(theirs),
            "reason": f"their keep still on its way after {self.done_wait_s} s: their requests go once it lands"})
        return frozenset(theirs)

    async def forgotten(self, requests: Collection[tuple[str, int]]) -> None:
        """Note requests a /forget could not wait for (`forget`), once it has deleted the rest: a
        start drops them unanswered should their write land after a stop or kill (`replay`). Their
        source and number alone, noted for a day (`MAX_AGE`: none older is answered anyway). Best
        effort, within `DONE_WAIT_S` (failing, said in the log)."""
        for source in sorted({source for source, _ in requests}):
            numbers = sorted(n for s, n in requests if s == source)
            await self._attempt(lambda source=source, numbers=numbers: self._repo.forgotten(
                                    source, numbers, self._now(), expired=self._now() - MAX_AGE),
                                self.done_wait_s, logging.WARNING, "inbox.forgotten_not_noted", pause=False,
                                even_paused=True, source=source, requests=len(numbers))

    async def _forgotten(self, platform: str, user_id: str, theirs: set[tuple[str, int]]) -> None:
        def on_its_way() -> set[asyncio.Future]:
            return {step for step, (source, arrivals) in self._keeping.items()
                    if any((source, a.number) in theirs for a in arrivals)}
        # The keeps, then the writes they left on their way; the spool as each ends (a keep past its
        # bound goes there while its write still is on its way to the database)
        while True:
            if self._spool is not None:
                await self._spool.forget(platform, user_id)
            if not (steps := on_its_way()):
                break
            await asyncio.wait(steps, return_when=asyncio.FIRST_COMPLETED)
        for source in {source for source, _ in theirs}:
            try:
                await self._repo.done(source, sorted(n for s, n in theirs if s == source))
            except StorageError as error:
                log.warning("inbox.not_forgotten", extra={"source": platform, "reason": str(error)})

    def paused_for(self) -> float:
        """How long the pause after a failure still lasts (0 when there is none): keeping and
        clearing are not tried before."""
        return max(0.0, self._paused_until - time.monotonic())

    async def shown(self, source: str, number: int, chat_id: str | None, message_id: str | None) -> None:
        """Note the message shown for a request kept (its status), for the answer after a restart
        to take over; best effort, like keeping (failing, the answer then comes as a new message).
        None: none to take over now (it holds an answer of its own)."""
        if self._spool is not None:
            await self._spool.shown(source, number, chat_id, message_id)
        await self._attempt(lambda: self._repo.shown(source, number, chat_id, message_id), self.done_wait_s,
                            logging.INFO, "inbox.shown_not_noted", pause=False, source=source)

    async def parts_answered(self, source: str, numbers: Sequence[int], parts: int) -> None:
        """Note that the first `parts` parts of these requests kept are answered (a Discord message
        command's files; a Telegram album's songs, each its own update and part), so that the answer
        after a restart does not repeat them; best effort, like `shown` (failing, a restart answers
        them again)."""
        if self._spool is not None:
            await self._spool.parts_answered(source, numbers, parts)
        await self._attempt(lambda: self._repo.parts_answered(source, numbers, parts), self.done_wait_s,
                            logging.INFO, "inbox.parts_not_noted", pause=False, source=source)

    async def held(self, source: str, numbers: Sequence[int]) -> None:
        """Note that these requests kept were handled to the end, and stay kept only for what may
        follow them (a Telegram journal answer's next parts, `UpdateFlow.done_after`): the restarts
        that handed them over so far count no more towards `MAX_REPLAYS`, only those at which the
        bot dies while they are handled again. Best effort, like `shown` (failing, they count)."""
        if self._spool is not None:
            await self._spool.held(source, numbers)
        await self._attempt(lambda: self._repo.held(source, numbers), self.done_wait_s,
                            logging.INFO, "inbox.held_not_noted", pause=False, source=source)

    async def _attempt(self, write: Callable[[], Awaitable[object]], wait_s: float, level: int, event: str, *,
                       pause: bool = True, even_paused: bool = False, source: str, **facts: object) -> bool:
        """One bounded write; False (and said) when it failed, or was not tried: during the pause
        after a failure (unless `even_paused`). Whatever fails (the database, a payload it refuses,
        a bug), the requests are answered all the same; the database's own failures in one line,
        anything else with its traceback, to be found."""
        if time.monotonic() < self._paused_until and not even_paused:
            return False
        try:
            await asyncio.wait_for(write(), wait_s)
            return True
        except Exception as error:  # noqa: BLE001 - see the docstring
            if pause:
                self._paused_until = time.monotonic() + self.pause_after_failure_s
            expected = isinstance(error, (StorageError, asyncio.TimeoutError))
            log.log(level, event, exc_info=None if expected else error,
                    extra={"source": source.split(":")[0], "reason": type(error).__name__, **facts})
            return False

    async def replay(self, source: str, *,
                     waits_on_database: Callable[[Arrival], bool] = lambda arrival: False) -> list[Arrival]:
        """At a start: the requests a previous run was handed and never answered, oldest first,
        each counted as replayed once more: those the database kept and those the spool did (one
        in both once). Those older than `MAX_AGE`, or replayed `MAX_REPLAYS` times already, are
        dropped, and said so in the log, as are those a /forget noted (`forgotten`: their write
        landed after it). Those in the spool are then moved into the database. A
        database that does not answer replays only what the spool holds, counted there (said so;
        with no spool, nothing): the start goes on. A request whose only work is a write to the
        database (`waits_on_database`: a group's move) is not counted there: it cannot be done
        while the database is down, and trying it is no work that could kill the bot; it is kept
        until the database is back, however many starts come first, and given up only once it was
        handed over `MAX_REPLAYS` times with the database answering (the database refusing it, a
        kill while it was done) or is older than `MAX_AGE`."""
        platform = source.split(":")[0]
        spooled = [] if self._spool is None else await self._spool.waiting(source)
        from_spool = {a.number for a in spooled}
        try:
            kept = await self._repo.waiting(source)
            forgotten = await self._repo.forgotten_in(source)
        except StorageError as error:
            log.warning("inbox.not_read", extra={"source": platform, "reason": str(error)})
            kept, forgotten = None, set()
        waiting = _together(kept or [], spooled)
        if unasked := [a for a in waiting if a.number in forgotten]:  # its write landed after a /forget
            log.info("inbox.forgotten_dropped", extra={"source": platform, "requests": len(unasked)})
            waiting = [a for a in waiting if a.number not in forgotten]
        oldest = self._now() - MAX_AGE
        stale = [a for a in waiting if a.received is not None and a.received < oldest]
        failing = [a for a in waiting if a not in stale and a.replays >= MAX_REPLAYS]
        handed = [a for a in waiting if a not in stale and a not in failing]
        again = [replace(a, replays=a.replays + 1) for a in handed]
        if stale:
            log.warning("inbox.too_old_to_answer", extra={"source": platform, "requests": len(stale)})
        for arrival in failing:
            log.error("inbox.given_up", extra={"source": platform, "number": arrival.number, "user": arrival.user_id,
                                               "reason": f"handed over at {arrival.replays} restarts and never "
                                                         "answered: it may be what stops the bot; not again"})
        dropped = [a.number for a in unasked + stale + failing]
        if kept is not None and await self._counted(source, dropped, oldest, again):
            if self._spool is not None:
                await self._spool.done(source, list(from_spool))  # moved into the database
        elif self._spool is None:
            return []
        else:  # the replay counts in the spool, unless the request waits on the database alone
            again = [a if waits_on_database(a) else replace(a, replays=a.replays + 1) for a in handed]
            if not await self._spool.keep(source, again):
                return []
            await self._spool.done(source, dropped)
        if self._spool is not None:
            await self._spool.drop_received_before(oldest)  # other sources' too, as in the database
        if again:
            log.info("inbox.replayed", extra={"source": platform, "requests": len(again),
                                              "from_spool": sum(a.number in from_spool for a in again)})
        return again

    async def _counted(self, source: str, dropped: Sequence[int], oldest: datetime, again: Sequence[Arrival]) -> bool:
        """The start's bookkeeping in the database: what is dropped goes, the replays count; False
        (said) when it fails."""
        try:
            await self._repo.done(source, dropped)
            await self._repo.drop_received_before(oldest)  # other sources' too: none replays them
            await self._repo.keep(source, again)
            return True
        except StorageError as error:
            log.warning("inbox.not_read", extra={"source": source.split(":")[0], "reason": str(error)})
            return False


def _together(kept: Sequence[Arrival], spooled: Sequence[Arrival]) -> list[Arrival]:
    """The requests in the database and in the spool, in the order they arrived; one in both
    once, with the most replays and parts either noted."""
    by_number = {a.number: a for a in kept}
    for a in spooled:
        if (other := by_number.get(a.number)) is not None:
            a = replace(other, replays=max(a.replays, other.replays), parts=max(a.parts, other.parts),
                        shown=a.shown or other.shown)
        by_number[a.number] = a
    return sorted(by_number.values(), key=lambda a: a.number)
