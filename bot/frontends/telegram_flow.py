"""Admission control for bursts of Telegram updates: first come, first answered.

With concurrent updates, python-telegram-bot starts a task for every update it has fetched, and
they all share the event loop at once. In a burst every answer then waits for every other one:
200 cached /mood all finish at about the time the last one would have. And the next batch of
(up to 100) updates is fetched as soon as the previous one is queued, so a burst piles up in the
bot's memory, where a crash would lose it, rather than at Telegram, which keeps unfetched updates.

`UpdateFlow` changes three things and nothing else:
- Its `processor` (a PTB `BaseUpdateProcessor`) lets at most `active` updates run at a time, in
  the order they arrived. An update still running after `lease_s` (a download, the model, a
  chart) gives its slot back and carries on concurrently, so slow work never holds up quick
  answers; handlers need not know about any of this.
- Its `gate` runs before every getUpdates: the next batch is fetched only once fewer than
  `low_water` fetched updates still wait for, or hold, a slot. Updates beyond that wait at
  Telegram. After `max_gate_s` the batch is fetched whatever happens, so the bot never stops
  reading updates because some handler is stuck.
- The gate also sets how many updates a batch may bring (getUpdates' `limit`): `batch` (32), not
  Telegram's 100. PTB parses a whole batch before it runs any update of it, and the last update
  of a batch waits for every answer before it, so a batch of 100 kept each update in the bot
  about three times as long. The next batch is fetched while `low_water` (16) updates are still
  pending, so users wait about as long from their send as with batches of 100: the same median,
  a tail within a few ms (README, "Telegram latency": both measured, interleaved runs).

The `queue` counts the updates handed to the application; the processor uncounts each one once,
when it gives its slot back.

The cost: a batch's getUpdates round trip overlaps only the last `low_water` answers of the
previous batch. Against Telegram (some 50 ms away) a sustained burst is read at about `batch`
updates per round trip, some 600 a second, still far above the 30 messages a second Telegram
lets a bot send.
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from typing import Any, Awaitable

from telegram import Update
from telegram.ext import BaseUpdateProcessor

log = logging.getLogger(__name__)

ACTIVE_UPDATES = 8  # enough to overlap each answer's Bot API round trip with the next one's work
LEASE_S = 0.05  # a cached /mood takes a few ms; anything slower is waiting on slow work
# Fetch the next batch while two slots' worth of updates are still pending: their answers hide
# the getUpdates round trip, and few updates wait in the bot that could have waited at Telegram.
LOW_WATER = 2 * ACTIVE_UPDATES
BATCH_UPDATES = 4 * ACTIVE_UPDATES  # getUpdates' limit (Telegram's own default and maximum: 100)
MAX_GATE_S = 1.0
MAX_CONCURRENT_UPDATES = 256  # updates in progress at all, slow ones included (PTB's own bound)


class _CountingQueue(asyncio.Queue):
    """PTB's update queue, counting the updates put in it (the Updater and webhooks use `put`,
    which ends in `put_nowait`)."""

    def __init__(self, flow: "UpdateFlow") -> None:
        super().__init__()
        self._flow = flow

    def put_nowait(self, item: Any) -> None:
        super().put_nowait(item)
        if isinstance(item, Update):
            self._flow._arrived()


class _Lease:
    """One update's hold on a slot, given back once: when the update is done, or at `lease_s`."""

    __slots__ = ("_flow", "_timer", "_released")

    def __init__(self, flow: "UpdateFlow", lease_s: float) -> None:
        self._flow = flow
        self._released = False
        self._timer = asyncio.get_running_loop().call_later(lease_s, self.release)

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        self._timer.cancel()
        self._flow._slots.release()
        self._flow._departed()


class _FairProcessor(BaseUpdateProcessor):
    """Runs each update once it holds one of the flow's slots (FIFO: asyncio's semaphore wakes
    waiters in order)."""

    def __init__(self, flow: "UpdateFlow", max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._flow = flow

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if not isinstance(update, Update):  # not counted by the queue: no slot either
            await coroutine
            return
        try:
            await self._flow._slots.acquire()
        except BaseException:  # cancelled while waiting (shutdown): the handler never runs
            self._flow._departed()
            if inspect.iscoroutine(coroutine):
                coroutine.close()
            raise
        lease = _Lease(self._flow, self._flow.lease_s)
        try:
            await coroutine
        finally:
            lease.release()

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class UpdateFlow:
    """The queue, processor and gate of one Telegram application (see the module's docstring)."""

    def __init__(self, *, active: int = ACTIVE_UPDATES, lease_s: float = LEASE_S, low_water: int = LOW_WATER,
                 batch: int = BATCH_UPDATES, max_gate_s: float = MAX_GATE_S,
                 max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        if active < 1 or low_water < 1 or not 1 <= batch <= 100:
            raise ValueError("active and low_water must be at least 1, batch from 1 to 100")
        self.lease_s = lease_s
        self.low_water = low_water
        self.batch = batch
        self.max_gate_s = max_gate_s
        self.pending = 0  # updates handed to the application that have not given their slot back
        self._slots = asyncio.Semaphore(active)
        self._room = asyncio.Event()
        self._room.set()
        self.queue: asyncio.Queue = _CountingQueue(self)
        self.processor = _FairProcessor(self, max_concurrent_updates)

    async def gate(self) -> int:
        """Return once the bot has room for another batch, or after `max_gate_s`, with the most
        updates that batch may bring."""
        if self.pending < self.low_water:
            return self.batch
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._room.wait(), self.max_gate_s)
            return self.batch
        # Expected while Telegram's 30 messages/s limit holds answers back: not a failure.
        log.info("telegram.flow: %d updates still pending after %.1f s; fetching more anyway",
                 self.pending, self.max_gate_s)
        return self.batch

    def _arrived(self) -> None:
        self.pending += 1
        if self.pending >= self.low_water:
            self._room.clear()

    def _departed(self) -> None:
        self.pending -= 1
        if self.pending < self.low_water:
            self._room.set()
