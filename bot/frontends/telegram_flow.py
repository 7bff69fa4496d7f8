"""Admission control for bursts of Telegram updates: first come, first answered.

With concurrent updates, python-telegram-bot starts a task for every update it has fetched, and
they all share the event loop at once. In a burst every answer then waits for every other one:
200 cached /mood all finish at about the time the last one would have. And the next batch of
(up to 100) updates is fetched as soon as the previous one is queued, so a burst piles up in the
bot's memory, where a crash would lose it, rather than at Telegram, which keeps unfetched updates.

`UpdateFlow` changes four things and nothing else:
- Its `processor` (a PTB `BaseUpdateProcessor`) lets at most `active` updates run at a time, in
  the order they arrived. An update still running after `lease_s` (a download, the model, a
  chart) gives its slot back and carries on concurrently, so slow work never holds up quick
  answers; handlers need not know about any of this.
- One sender's updates run one after another, in the order they were sent: the next starts once
  the one before it is done, or has run for `turn_s`. Two commands that arrived together (a
  queue built up during a restart, a burst on reconnect) otherwise ran at once, and the later
  could lose: `/journal on` then `/journal off` left the journal on, answered in reverse order.
  `turn_s` is far longer than any quick command takes (a few ms), but keeps a slow /mood (a
  download, the model) from holding up its sender's next command for long. The items of one
  album do not wait for each other: the first item's handler collects the rest meanwhile.
- Its `gate` runs before every getUpdates: the next batch is fetched only once fewer than
  `low_water` fetched updates still wait for, or hold, a slot. Updates beyond that wait at
  Telegram. After `max_gate_s` the batch is fetched whatever happens, so the bot never stops
  reading updates because some handler is stuck.
- The gate also sets how many updates a batch may bring (getUpdates' `limit`): `batch` (32), not
  Telegram's 100. PTB parses a whole batch before it runs any update of it, and the last update
  of a batch waits for every answer before it, so a batch of 100 kept each update in the bot
  about three times as long. The next batch is fetched while `low_water` (16) updates are still
  pending, so users wait about as long from their send as with batches of 100: the same median,
  a tail within a few ms (docs/benchmarks.md, "Telegram latency": both measured, interleaved runs).

The `queue` counts the updates handed to the application; the processor uncounts each one once,
when it gives its slot back.

With `arrivals` set, the updates are kept until answered (`Arrivals`): a batch is kept before the
getUpdates that acknowledges it to Telegram goes out (in the `gate`), and cleared once each of its
updates is done, answered or its sender told to send it again (an album's items once the item
answering the album is; a group's move the database did not record once the move is made,
`done_after`). An update done before its batch was kept is never written. A restart after
a hard kill hands the kept ones over again (`replay`); Telegram's own copy of one of them (a batch
kept whose acknowledgement never went out) is then dropped, not answered twice.

The cost: a batch's getUpdates round trip overlaps only the last `low_water` answers of the
previous batch. Against Telegram (some 50 ms away) a sustained burst is read at about `batch`
updates per round trip, some 600 a second, still far above the 30 messages a second Telegram
lets a bot send.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
from typing import Any, Awaitable, Callable, Protocol, Sequence

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.frontends.keeping import KeptUntilAnswered
from bot.logs import begin_request

log = logging.getLogger(__name__)

ACTIVE_UPDATES = 8  # enough to overlap each answer's Bot API round trip with the next one's work
LEASE_S = 0.05  # a cached /mood takes a few ms; anything slower is waiting on slow work
# How long a sender's next update waits for the one before it at most: a quick command's use case
# is done long before (its answer may still wait for Telegram's flood limits, in order anyway).
TURN_S = 1.0
# Fetch the next batch while two slots' worth of updates are still pending: their answers hide
# the getUpdates round trip, and few updates wait in the bot that could have waited at Telegram.
LOW_WATER = 2 * ACTIVE_UPDATES
BATCH_UPDATES = 4 * ACTIVE_UPDATES  # getUpdates' limit (Telegram's own default and maximum: 100)
MAX_GATE_S = 1.0
MAX_CONCURRENT_UPDATES = 256  # updates in progress at all, slow ones included (PTB's own bound)


# The update whose handler (or a task it started) runs: for a status message to be noted under it.
CURRENT_UPDATE: contextvars.ContextVar[int | None] = contextvars.ContextVar("telegram_update", default=None)


class Arrivals(Protocol):
    """Where the flow keeps the updates being answered (the front-end's adapter of the inbox)."""

    async def keep(self, updates: Sequence[Update]) -> None: ...

    async def shown(self, update_id: int, chat_id: int | None, message_id: int | None) -> None: ...

    # False: not cleared, try again once `paused_for` is over; `even_paused`: the stop's last try
    async def done(self, update_ids: Sequence[int], *, even_paused: bool = False) -> bool: ...

    def paused_for(self) -> float: ...  # how long the pause after a failure still lasts

    async def parts_answered(self, update_ids: Sequence[int], parts: int) -> None: ...

    async def held(self, update_ids: Sequence[int]) -> None: ...  # handled to the end, kept for what follows


class _CountingQueue(asyncio.Queue):
    """PTB's update queue, counting the updates put in it (the Updater and webhooks use `put`,
    which ends in `put_nowait`)."""

    def __init__(self, flow: "UpdateFlow") -> None:
        super().__init__()
        self._flow = flow

    def put_nowait(self, item: Any) -> None:
        if isinstance(item, Update) and self._flow._answered_elsewhere(item):
            return
        super().put_nowait(item)
        if isinstance(item, Update):
            self._flow._arrived(item)


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


class _Turn:
    """One update's place in its sender's order: it runs once the `earlier` turns are over, and
    its own is over when it is done, or `turn_s` after it started (`start`)."""

    __slots__ = ("_flow", "_sender", "_over", "_earlier", "_timer")

    def __init__(self, flow: "UpdateFlow", sender: int, earlier: list[asyncio.Future]) -> None:
        self._flow = flow
        self._sender = sender
        self._over: asyncio.Future = asyncio.get_running_loop().create_future()
        self._earlier = earlier
        self._timer: asyncio.TimerHandle | None = None

    async def wait(self) -> None:
        """Return once every earlier update of the sender is done, or past its turn."""
        if self._earlier:
            await asyncio.wait(self._earlier)  # not cancelled with this update (a shutdown)

    def start(self, turn_s: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(turn_s, self.end)

    def end(self) -> None:
        if self._over.done():
            return
        if self._timer is not None:
            self._timer.cancel()
        self._over.set_result(None)
        turns = self._flow._turns[self._sender]
        turns[:] = [(album, over) for album, over in turns if over is not self._over]
        if not turns:
            del self._flow._turns[self._sender]


class _FairProcessor(BaseUpdateProcessor):
    """Runs each update once its sender's earlier updates are done (or past their turn) and it
    holds one of the flow's slots (FIFO: asyncio's semaphore wakes waiters in order)."""

    def __init__(self, flow: "UpdateFlow", max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._flow = flow

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if not isinstance(update, Update):  # not counted by the queue: no slot either
            await coroutine
            return
        flow = self._flow
        task = asyncio.current_task()
        album = flow._started(update)
        begin_request(f"tg-{update.update_id}")  # its log lines' req=, one not started too (cut_short_not_told)
        if flow.stopping:  # arrived once the stop's grace was over: not started, but said so
            flow._departed()
            if inspect.iscoroutine(coroutine):
                coroutine.close()
            try:
                await flow._tell_cut_short(update, task)
            finally:
                flow._finished(update, album)
            return
        flow._running.add(task)
        CURRENT_UPDATE.set(update.update_id)  # this task's own context: PTB runs each update in a task
        try:
            await self._process(update, coroutine, task)
        except asyncio.CancelledError:
            if flow.stopping:  # the stop cut it short: its sender is told, unless the handler did
                await flow._tell_cut_short(update, task)
            raise
        finally:
            flow._running.discard(task)
            flow._told.discard(task)
            flow._finished(update, album, flow._done_after.pop(task, None))

    async def _process(self, update: Update, coroutine: Awaitable[Any], task: asyncio.Task) -> None:
        turn = self._flow._turn_of(update)  # before any await: updates get here in arrival order
        try:
            if turn is not None:
                await turn.wait()
            await self._flow._slots.acquire()
        except BaseException:  # cancelled while waiting (shutdown): the handler never runs
            if turn is not None:
                turn.end()
            self._flow._departed()
            if inspect.iscoroutine(coroutine):
                coroutine.close()
            raise
        lease = _Lease(self._flow, self._flow.lease_s)
        if turn is not None:
            turn.start(self._flow.turn_s)
        try:
            await coroutine
        finally:
            lease.release()
            if turn is not None:
                turn.end()

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class UpdateFlow:
    """The queue, processor and gate of one Telegram application (see the module's docstring)."""

    def __init__(self, *, active: int = ACTIVE_UPDATES, lease_s: float = LEASE_S, turn_s: float = TURN_S,
                 low_water: int = LOW_WATER, batch: int = BATCH_UPDATES, max_gate_s: float = MAX_GATE_S,
                 max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        if active < 1 or low_water < 1 or not 1 <= batch <= 100:
            raise ValueError("active and low_water must be at least 1, batch from 1 to 100")
        self.lease_s = lease_s
        self.turn_s = turn_s
        self.low_water = low_water
        self.batch = batch
        self.max_gate_s = max_gate_s
        self.pending = 0  # updates handed to the application that have not given their slot back
        self._slots = asyncio.Semaphore(active)
        # sender id -> the album (media_group_id) and end of each of its updates' turns not yet over
        self._turns: dict[int, list[tuple[str | None, asyncio.Future]]] = {}
        self._room = asyncio.Event()
        self._room.set()
        self.queue: asyncio.Queue = _CountingQueue(self)
        self.processor = _FairProcessor(self, max_concurrent_updates)
        # The stop (`finish`): the updates being handled, or waiting for their turn or a slot; once
        # `stopping`, what is still running is cut short, and `cut_short(update)` tells its sender,
        # unless the handler told them itself (`told`).
        self.stopping = False
        self.cut_short: Callable[[Update], Awaitable[None]] | None = None
        self._running: set[asyncio.Task] = set()
        self._told: set[asyncio.Task] = set()
        # Keeping the updates until answered (see the module's docstring); None: in memory only.
        self._arrivals: Arrivals | None = None
        self._kept: KeptUntilAnswered[Update] | None = None
        self._replayed: dict[int, Update] = {}  # handed over again at the start, by update_id
        self._noting: set[asyncio.Task] = set()  # status messages (and answers) being noted
        # (chat, media group) -> [its items' updates running, their update_ids]
        self._albums: dict[tuple[int, str], list] = {}
        # A handler's task -> what its update waits for before it is done (`done_after`); then
        # the waits themselves, called off by the stop (the update stays kept).
        self._done_after: dict[asyncio.Task, Callable[[], Awaitable[object]]] = {}
        self._waiting: set[asyncio.Task] = set()

    async def finish(self, grace_s: float, tell_s: float) -> int:
        """The stop: the updates in progress get `grace_s` to be done; those still running then
        are cancelled, and their senders told within `tell_s` (`cut_short`). An update handed over
        from now on is not started, its sender told the same. How many were cut short."""
        running = set(self._running)
        if running:
            await asyncio.wait(running, timeout=grace_s)
        self.stopping = True
        left = [task for task in self._running if not task.done()]
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left, timeout=tell_s)
            for task in left:  # still telling (a throttled chat, a slow network): the stop is bounded
                task.cancel()
        return len(left)

    def told(self) -> None:
        """The running update's handler has told its sender that the stop cut it short."""
        if (task := asyncio.current_task()) is not None:
            self._told.add(task)

    async def _tell_cut_short(self, update: Update, task: asyncio.Task | None) -> None:
        if self.cut_short is None or task in self._told:
            return
        try:
            await self.cut_short(update)
        except Exception as error:  # noqa: BLE001 - the chat refuses, the network: the stop goes on
            log.info("telegram.cut_short_not_told: %s", type(error).__name__)

    async def gate(self) -> int:
        """Return once the bot has room for another batch, or after `max_gate_s`, with the most
        updates that batch may bring. The updates handed over since the last getUpdates, which the
        next acknowledges to Telegram, are kept first (while the bot waits for room, if it does)."""
        keeping = asyncio.ensure_future(self._kept.keep()) if self._kept is not None and self._kept.waiting else None
        try:
            return await self._wait_for_room()
        finally:
            if keeping is not None:
                await keeping

    async def _wait_for_room(self) -> int:
        if self.pending < self.low_water:
            return self.batch
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._room.wait(), self.max_gate_s)
            return self.batch
        # Expected while Telegram's 30 messages/s limit holds answers back: not a failure.
        log.info("telegram.flow: %d updates still pending after %.1f s; fetching more anyway",
                 self.pending, self.max_gate_s)
        return self.batch

    @property
    def arrivals(self) -> Arrivals | None:
        return self._arrivals

    @arrivals.setter
    def arrivals(self, arrivals: Arrivals | None) -> None:
        self._arrivals = arrivals
        self._kept = None if arrivals is None else KeptUntilAnswered(arrivals.keep, arrivals.done, arrivals.paused_for)

    def replay(self, updates: Sequence[Update]) -> None:
        """Hand over again updates a previous run was handed and never answered (already kept)."""
        for update in updates:
            self._replayed[update.update_id] = update
            self.queue.put_nowait(update)

    def done_after(self, until: Callable[[], Awaitable[object]], *, held: bool = False) -> None:
        """The running update's handler could not do its work yet (a group's move the database did
        not record), or something may still follow it (`held`: a long journal answer's next parts):
        the update stays kept until `until()` returns, not cleared when the handler is. A stop
        before then leaves it kept, for the next start to hand over again (a group's move: whatever
        the starts the database does not answer, at two starts in a row it does at most,
        `bot/usecases/inbox.py`, MAX_REPLAYS). `held`: its handler's work is done (called last):
        noted in the background, so that the restarts that handed it over so far do not count
        towards MAX_REPLAYS, only one at which the bot dies while it is handled again. Until
        2026-12-06 two restarts within the hold gave a long answer up at the third as what may stop
        the bot (an ERROR), and its next parts were answered as any message."""
        if self._kept is None or (task := asyncio.current_task()) is None:
            return
        self._done_after[task] = until
        update_id = CURRENT_UPDATE.get()
        if held and update_id is not None:
            arrivals = self._arrivals
            self._note(lambda: arrivals.held([update_id]))

    async def flush(self, timeout_s: float) -> None:
        """The stop's last step: the updates done are cleared (within `timeout_s`); those still
        waiting to be done (`done_after`) stay kept."""
        for waiting in list(self._waiting):
            waiting.cancel()
        if self._kept is not None:
            await self._kept.flush(timeout_s)

    def shown(self, chat_id: int, message_id: int) -> None:
        """The running update's handler showed a message for it (a status), noted in the
        background where updates are kept: after a hard kill, the answer takes it over."""
        update_id = CURRENT_UPDATE.get()
        if self._kept is None or update_id is None:
            return
        arrivals = self._arrivals
        self._note(lambda: arrivals.shown(update_id, chat_id, message_id))

    def _note(self, call: Callable[[], Awaitable[object]]) -> None:
        """`call` (a note about an update kept) in the background, after the keep of its batch."""
        task = asyncio.get_running_loop().create_task(self._kept.after_writes(call))
        self._noting.add(task)
        task.add_done_callback(self._noting.discard)

    def answered(self, update_ids: Sequence[int]) -> None:
        """These updates have their own answers, though the update running goes on (an album's
        songs, each answered under it): noted in the background where updates are kept, for the
        answer after a hard kill to leave them out. The running update's status message, if noted,
        now holds an answer: it is not for the next song's answer to take over."""
        if self._kept is None or not update_ids:
            return
        arrivals, update_ids, running = self._arrivals, list(update_ids), CURRENT_UPDATE.get()

        async def note() -> None:
            await arrivals.parts_answered(update_ids, 1)
            if running is not None:
                await arrivals.shown(running, None, None)
        self._note(note)

    def _answered_elsewhere(self, update: Update) -> bool:
        """Telegram's copy of an update handed over again from the inbox."""
        replayed = self._replayed.get(update.update_id)
        return replayed is not None and replayed is not update

    def _started(self, update: Update) -> tuple[int, str] | None:
        """An album's item: the album, whose items are done together (the first item's handler
        answers them all)."""
        message = update.effective_message
        if self._kept is None or message is None or message.media_group_id is None:
            return None
        album = (message.chat_id, message.media_group_id)
        running = self._albums.setdefault(album, [0, []])
        running[0] += 1
        running[1].append(update.update_id)
        return album

    def _finished(self, update: Update, album: tuple[int, str] | None,
                  until: Callable[[], Awaitable[object]] | None = None) -> None:
        if self._kept is None:
            return
        if until is not None:  # not an album's item (a service message)
            waiting = asyncio.get_running_loop().create_task(self._finished_after(until, update.update_id))
            self._waiting.add(waiting)
            waiting.add_done_callback(self._waiting.discard)
            return
        done = [update.update_id]
        if album is not None:
            running = self._albums[album]
            running[0] -= 1
            if running[0]:
                return
            done = self._albums.pop(album)[1]
        self._kept.finished(done)

    async def _finished_after(self, until: Callable[[], Awaitable[object]], update_id: int) -> None:
        await until()
        self._kept.finished([update_id])

    def _turn_of(self, update: Update) -> _Turn | None:
        """`update`'s place after its sender's earlier updates (the user, or the chat an anonymous
        admin posts as); None for an update without a sender. An album's items wait for the
        sender's other updates, not for each other."""
        sender = update.effective_sender
        if sender is None:
            return None
        message = update.effective_message
        album = message.media_group_id if message is not None else None
        turns = self._turns.setdefault(sender.id, [])
        earlier = [over for other, over in turns if album is None or other != album]
        turn = _Turn(self, sender.id, earlier)
        turns.append((album, turn._over))
        return turn

    def _arrived(self, update: Update) -> None:
        if self._kept is not None and update.update_id not in self._replayed:
            self._kept.arrived(update.update_id, update)
        self.pending += 1
        if self.pending >= self.low_water:
            self._room.clear()

    def _departed(self) -> None:
        self.pending -= 1
        if self.pending < self.low_water:
            self._room.set()
