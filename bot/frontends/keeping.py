"""The bookkeeping of requests kept until answered (the inbox, `bot/usecases/inbox.py`), shared by
the Telegram flow and Discord's kept commands: what arrived is written in batches (`keep`), and
what is done is cleared in batches (`finished`), never before its own write.

- A request done before its batch was taken for writing is never written.
- One done while its batch is being written is cleared after that write (one lock orders them).
- Clears wait `clear_after_s` after the first done, so a burst's answers go in a few deletes; a
  hard kill meanwhile answers those again (at least once).
- A clear that failed (the database down) is tried again on its own once the pause after a
  failure is over (`retry_after_s`), or sooner with the next write or clear; and once more by
  `flush` at the stop, even during the pause. A quiet bot left it failed until the next request,
  and a hard kill meanwhile answered the request again.
- At the stop, clears are made at once, and `flush` waits (within its time) for those a write
  ending meanwhile starts. A later `flush` clears what was done since the one before. One done
  after the last `flush` is left kept, to be answered again by the next start: a clear begun then
  was left pending when the loop ended.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Awaitable, Callable, Generic, Protocol, Sequence, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

CLEAR_AFTER_S = 0.1
RETRY_AT_LEAST_S = 1.0  # the shortest wait before a failed clear is tried again on its own


class Clear(Protocol):
    async def __call__(self, numbers: Sequence[int], *, even_paused: bool = False) -> bool: ...


class KeptUntilAnswered(Generic[T]):
    def __init__(self, write: Callable[[Sequence[T]], Awaitable[object]], clear: Clear,
                 retry_after_s: Callable[[], float], *, clear_after_s: float = CLEAR_AFTER_S) -> None:
        self._write = write  # bounded, never raises: a failure is said in the log
        # False: not cleared, to be tried again; `even_paused`: the stop's last try, made even
        # during the pause after a failure
        self._clear = clear
        self._retry_after_s = retry_after_s  # how long the pause after a failure still lasts
        self.clear_after_s = clear_after_s
        self._unkept: dict[int, T] = {}  # arrived, not yet taken for writing, not done
        self._to_clear: list[int] = []  # done, written (or being written)
        self._writing = asyncio.Lock()  # a clear follows the write of what it clears
        self._keeping: asyncio.Task | None = None
        self._clearing: asyncio.Task | None = None
        self._retry = asyncio.Event()  # set: a clear waiting to be tried again is tried now
        self._stopping = False  # `flush` has begun: a failed clear gets one last try, then none
        self._stop_now = asyncio.Event()  # set by `flush`: a clear waiting for more to be done goes now
        self._flushed = False  # `flush` is over: nothing is cleared any more

    @property
    def waiting(self) -> bool:
        """Whether something arrived is still to be written."""
        return bool(self._unkept)

    def arrived(self, number: int, item: T) -> None:
        self._unkept[number] = item

    async def keep(self) -> None:
        """Write what arrived (and is not done yet)."""
        if not self._unkept:
            return
        async with self._writing:
            batch, self._unkept = self._unkept, {}
            if batch:
                await self._write(list(batch.values()))
        self._clear_soon()

    def keep_soon(self) -> None:
        """`keep` in the background (one at a time; it takes what arrives meanwhile too)."""
        if self._keeping is None or self._keeping.done():
            self._keeping = asyncio.get_running_loop().create_task(self._keep_all())

    def finished(self, numbers: Sequence[int]) -> None:
        """These were answered (or their senders told to send them again)."""
        for number in numbers:
            if self._unkept.pop(number, None) is None:  # written, or being written: cleared after
                self._to_clear.append(number)
        self._clear_soon()

    async def flush(self, timeout_s: float) -> None:
        """The stop's last step: what was answered is cleared (within `timeout_s`), a clear that
        failed before included, tried even during the pause after that failure. Called again (a
        front-end's `stop` after the app's `finish` of them all), it clears what was done since."""
        await asyncio.sleep(0)  # a task just done may have its done callbacks (`finished`) still to run
        self._flushed = False  # (done since an earlier flush: still in `_to_clear`, cleared now)
        self._stopping = True
        self._stop_now.set()
        self._clear_soon()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        # A write that ends meanwhile clears what was done while it was made: in a clear of its own.
        while pending := [t for t in (self._keeping, self._clearing) if t is not None and not t.done()]:
            if (left := deadline - loop.time()) <= 0:
                break
            await asyncio.wait(pending, timeout=left)
        self._flushed = True

    async def _keep_all(self) -> None:
        while self._unkept:
            await self.keep()

    def _clear_soon(self) -> None:
        if not self._to_clear:
            return
        if self._flushed:
            # Done after the stop's last clear: nothing would await a clear now (the loop ends
            # with it pending). Left kept, it is handed over again by the next start.
            log.info("kept.not_cleared_at_stop", extra={"requests": len(self._to_clear)})
            return
        if self._clearing is None or self._clearing.done():
            self._clearing = asyncio.get_running_loop().create_task(self._clear_done())
        else:
            self._retry.set()  # one waiting to be tried again is tried now

    async def _clear_done(self) -> None:
        if not self._stopping:  # the stop's clear is made at once, this wait cut short by `flush`
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop_now.wait(), self.clear_after_s)
        while self._to_clear:
            self._retry.clear()
            last = self._stopping
            async with self._writing:
                numbers, self._to_clear = self._to_clear, []
                cleared = await self._clear(numbers, even_paused=last)
                if not cleared:
                    self._to_clear[:0] = numbers
            if cleared:
                continue
            if last:
                return
            if not self._stopping:  # (else the stop's last try follows at once)
                # Tried again once the pause after the failure is over, or with the next write or clear.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._retry.wait(), max(self._retry_after_s(), RETRY_AT_LEAST_S))

    async def after_writes(self, call: Callable[[], Awaitable[object]]) -> None:
        """Run `call` once the writes under way are done (a note about a request kept)."""
        async with self._writing:
            await call()
