"""The bookkeeping of requests kept until answered (the inbox, `bot/usecases/inbox.py`), shared by
the Telegram flow and Discord's kept commands: what arrived is written in batches (`keep`), and
what is done is cleared in batches (`finished`), never before its own write.

- A request done before its batch was taken for writing is never written.
- One done while its batch is being written is cleared after that write (one lock orders them).
- Clears wait `clear_after_s` after the first done, so a burst's answers go in a few deletes; a
  hard kill meanwhile answers those again (at least once).
- A clear that failed (the database down) is tried again with the next write or clear.
"""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Generic, Sequence, TypeVar

T = TypeVar("T")

CLEAR_AFTER_S = 0.1


class KeptUntilAnswered(Generic[T]):
    def __init__(self, write: Callable[[Sequence[T]], Awaitable[object]],
                 clear: Callable[[Sequence[int]], Awaitable[bool]], *, clear_after_s: float = CLEAR_AFTER_S) -> None:
        self._write = write  # bounded, never raises: a failure is said in the log
        self._clear = clear  # False: not cleared, to be tried again
        self.clear_after_s = clear_after_s
        self._unkept: dict[int, T] = {}  # arrived, not yet taken for writing, not done
        self._to_clear: list[int] = []  # done, written (or being written)
        self._writing = asyncio.Lock()  # a clear follows the write of what it clears
        self._keeping: asyncio.Task | None = None
        self._clearing: asyncio.Task | None = None

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
        """The stop's last step: what was answered is cleared (within `timeout_s`)."""
        await asyncio.sleep(0)  # a task just done may have its done callbacks (`finished`) still to run
        self._clear_soon()
        pending = [t for t in (self._keeping, self._clearing) if t is not None and not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)

    async def _keep_all(self) -> None:
        while self._unkept:
            await self.keep()

    def _clear_soon(self) -> None:
        if self._to_clear and (self._clearing is None or self._clearing.done()):
            self._clearing = asyncio.get_running_loop().create_task(self._clear_done())

    async def _clear_done(self) -> None:
        await asyncio.sleep(self.clear_after_s)
        while self._to_clear:
            async with self._writing:
                numbers, self._to_clear = self._to_clear, []
                if not await self._clear(numbers):
                    self._to_clear[:0] = numbers  # tried again with the next write or clear
                    return

    async def after_writes(self, call: Callable[[], Awaitable[object]]) -> None:
        """Run `call` once the writes under way are done (a note about a request kept)."""
        async with self._writing:
            await call()
