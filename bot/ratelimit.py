"""Abuse limits: for /mood, sliding windows per user and per place plus a cap on concurrent
analyses; for the heavy commands (/stats, /export, /playlist, /servermood), sliding windows per
user (and per place) plus one bot-wide cap on chart renders running at once; for users' files,
one bot-wide budget of the bytes held at once (`UploadBudget`).

Every limit is checked before anything is recorded, so a refused request costs no quota.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable, Iterator, TypeVar

from bot.replies import PLACE, Caller, ErrorReply

log = logging.getLogger(__name__)

WINDOW_S = 60.0
# A user already at the concurrency cap is told to wait this long: one analysis takes a few seconds.
CONCURRENT_RETRY_S = 5.0
# Chart renders at once, bot-wide (CHART_RENDERS_MAX): one /stats draws three.
DEFAULT_RENDERS = 2
# Bytes of users' files held at once, bot-wide (UPLOADS_MAX_BYTES): ten files of MAX_AUDIO_BYTES' 25 MiB.
DEFAULT_UPLOAD_BYTES = 256 * 1024 * 1024

Clock = Callable[[], float]
T = TypeVar("T")


# Said to a user over their own limit, and to one refused because the server's or group's shared
# limit ran out (who may have asked once): PLACE is the front-end's word for where they are.
GOING_FAST = "You're going fast — try again in {seconds} s."
PLACE_BUSY = f"This {PLACE} is asking me a lot right now — try again in {{seconds}} s."


class RateLimited(Exception):
    """`by_place`: the place's shared limit is what makes the user wait, not their own."""

    def __init__(self, retry_after_s: float, *, by_place: bool = False) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        self.by_place = by_place
        super().__init__((PLACE_BUSY if by_place else GOING_FAST).format(seconds=self.retry_after_s))


def refused_for(own_wait: float, place_wait: float) -> None:
    """Raises `RateLimited` for the longer of the two waits (the user's own, the place's), worded
    for whichever it is; returns when neither is over."""
    if max(own_wait, place_wait) > 0:
        raise RateLimited(max(own_wait, place_wait), by_place=place_wait > own_wait)


class SlidingWindow:
    """At most `limit` hits per key within any `window_s` seconds."""

    def __init__(self, limit: int, window_s: float = WINDOW_S, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._swept_at = clock()

    def retry_after(self, key: str) -> float:
        """0 when a hit is allowed now, else the seconds until the oldest hit leaves the window."""
        hits = self._prune(key, self._clock())
        if len(hits) < self.limit:
            return 0.0
        return hits[0] + self.window_s - self._clock()

    def record(self, key: str) -> float:
        """Counts one hit for `key`; when it was counted (for `forget`)."""
        now = self._clock()
        if now - self._swept_at >= self.window_s:
            # Once a window: keys whose hits have all left it go, so who asked (a user id) is not
            # held until that key is asked about again, perhaps never (after /forget).
            self._swept_at = now
            for stale in [k for k, hits in self._hits.items() if hits[-1] <= now - self.window_s]:
                del self._hits[stale]
        self._hits.setdefault(key, deque()).append(now)
        return now

    def forget(self, key: str, at: float) -> None:
        """The hit recorded for `key` at `at` taken back (its request came to nothing)."""
        hits = self._hits.get(key)
        if hits is not None and at in hits:
            hits.remove(at)
            if not hits:
                del self._hits[key]

    def _prune(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            return deque()
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if not hits:
            del self._hits[key]  # keeps memory bounded by the active keys
        return hits


class Permit:
    """Holds one concurrent-analysis slot until released (use as a context manager)."""

    def __init__(self, limiter: "MoodRateLimiter", user_key: str,
                 hits: tuple[tuple[SlidingWindow, str, float], ...] = ()) -> None:
        self._limiter = limiter
        self._user_key = user_key
        self._hits = hits  # (window, key, when) of each hit it counted
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._limiter._release(self._user_key)

    def refund(self) -> None:
        """Released, and its hits taken back from the windows, the user's and the place's: the
        request came to nothing of its asker's doing (a file Telegram did not hand over)."""
        if not self._released:
            for window, key, at in self._hits:
                window.forget(key, at)
        self.release()

    def __enter__(self) -> "Permit":
        return self

    def __exit__(self, *_exc) -> None:
        self.release()


class MoodRateLimiter:
    def __init__(
        self,
        per_user: int,
        per_place: int,
        concurrent_per_user: int,
        *,
        window_s: float = WINDOW_S,
        clock: Clock = time.monotonic,
    ) -> None:
        self.users = SlidingWindow(per_user, window_s, clock)
        self.places = SlidingWindow(per_place, window_s, clock)
        self.concurrent_per_user = concurrent_per_user
        self._running: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings, clock: Clock = time.monotonic) -> "MoodRateLimiter":
        return cls(
            settings.mood_rate_per_user,
            settings.mood_rate_per_place,
            settings.mood_concurrent_per_user,
            clock=clock,
        )

    def acquire(self, user_key: str, place: str | None) -> Permit:
        """A permit for one analysis, or `RateLimited` naming how long to wait."""
        own_wait = self.users.retry_after(user_key)
        if self._running.get(user_key, 0) >= self.concurrent_per_user:
            own_wait = max(own_wait, CONCURRENT_RETRY_S)
        refused_for(own_wait, self.places.retry_after(place) if place is not None else 0.0)
        hits = ((self.users, user_key, self.users.record(user_key)),)
        if place is not None:
            hits += ((self.places, place, self.places.record(place)),)
        self._running[user_key] = self._running.get(user_key, 0) + 1
        return Permit(self, user_key, hits)

    def _release(self, user_key: str) -> None:
        left = self._running.get(user_key, 0) - 1
        if left > 0:
            self._running[user_key] = left
        else:
            self._running.pop(user_key, None)


class CommandLimit:
    """One command's sliding windows: `per_user` requests per user and, when given, `per_place`
    per server or group (a private chat has no place and counts for the user only)."""

    def __init__(self, per_user: int, per_place: int | None = None, *, window_s: float = WINDOW_S,
                 clock: Clock = time.monotonic) -> None:
        self.users = SlidingWindow(per_user, window_s, clock)
        self.places = SlidingWindow(per_place, window_s, clock) if per_place is not None else None

    def check(self, user_key: str, place: str | None = None) -> None:
        """Counts one request, or raises `RateLimited` naming how long to wait (counting nothing)."""
        counted = place is not None and self.places is not None
        refused_for(self.users.retry_after(user_key), self.places.retry_after(place) if counted else 0.0)
        self.users.record(user_key)
        if counted:
            self.places.record(place)


class RenderSlots:
    """At most `limit` chart renders (or other CPU-bound work in threads) at once, bot-wide; the
    rest wait their turn, they are not refused. A render holds the GIL most of its time, so every
    extra thread drawing at once takes turns from the event loop, which answers everyone else."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)
        self._holders = asyncio.Semaphore(limit)

    async def run(self, func: Callable[..., T], /, *args, **kwargs) -> T:
        async with self._slots:
            return await asyncio.to_thread(func, *args, **kwargs)

    @contextlib.asynccontextmanager
    async def holding(self) -> AsyncIterator[None]:
        """At most `limit` requests at once read the data of their render and hold it until it is
        done (an /export: a user's whole journal); the rest wait before reading theirs. An export
        read its data at once and held it while it waited for a render slot: memory grew with the
        users asking (24 exports of 700-entry journals at once peaked at 7.9 MB, 3.3 MB since; one
        alone 1.6 MB)."""
        async with self._holders:
            yield


class UploadBudget:
    """The bytes of users' files the bot holds at once, bot-wide: each from before it is fetched
    (into memory, then written to a temporary file) until its request ends. The limits per user
    and per place left many users in many chats free to send a large file each at once: 100 users
    in 100 groups, 100 files of 25 MB, held in memory and on disk together. A file past the budget
    is refused, not queued: its sender is told to send it again (`bot.replies.UPLOADS_BUSY`). A
    link's download is refused the same way before it starts where there is no room for the
    largest file it may leave, and its file is counted from the end of its download until its
    answer, refused and deleted unheard where others' files took the room meanwhile, unless the
    cache answers it (`MoodUseCase._download`). That room is held while it downloads
    (`reserving`), so downloads started together, and files sent meanwhile, see each other's; not
    while it waits for a download worker, when it fetches nothing."""

    def __init__(self, limit_bytes: int = DEFAULT_UPLOAD_BYTES) -> None:
        self.limit_bytes = limit_bytes
        self.held_bytes = 0  # reservations included
        self.reserved_bytes = 0  # of them, the room held for downloads under way (`Reservation.take`)

    @classmethod
    def from_settings(cls, settings) -> "UploadBudget":
        return cls(settings.uploads_max_bytes)

    def has_room(self, size: int) -> bool:
        """Whether `size` bytes more would stay within the budget now. A file larger than the whole
        budget has room when no other is held (refused, it could never be sent)."""
        return not self.held_bytes or self.held_bytes + size <= self.limit_bytes

    def download_room(self, largest: int) -> int:
        """The room a download of unknown size, at most `largest` bytes (MAX_AUDIO_BYTES), is let
        start with: `largest`, or half the budget where that is under two of them (UPLOADS_MAX_BYTES
        may be set under MAX_AUDIO_BYTES): such a budget never has room for `largest` beside another
        file, and every link was refused while anyone's file was held, though most leave a section
        (0.5-5 MB). Its file is counted at its real size once downloaded, and refused then if it
        does not fit."""
        return min(largest, self.limit_bytes // 2)

    @contextlib.contextmanager
    def reserving(self, size: int) -> Iterator["Reservation"]:
        """Room of `size` bytes for a download of unknown size (`download_room`), held from its
        `Reservation.take` (as a download worker takes the download, where there is room) until
        the block ends or it is let go (its file then counted at its real size, `holding`). Only
        looked at, downloads started together all passed and together left more than the budget:
        each now sees the room the others hold. Held from before a download waited for a worker,
        a burst of links waiting to be fetched took the budget, and users' files were refused busy
        though almost nothing was held."""
        reservation = Reservation(self, size)
        try:
            yield reservation
        finally:
            reservation.release()

    @contextlib.contextmanager
    def holding(self, size: int) -> Iterator[bool]:
        """True, `size` bytes counted until the block ends; False, nothing counted, when there is
        no room for them (`has_room`)."""
        if not self.has_room(size):
            yield False
            return
        self.held_bytes += size
        try:
            yield True
        finally:
            self.held_bytes -= size


class Reservation:
    """The room an `UploadBudget` holds for one download, from `take` until `release` (once; a
    failed or cancelled download's too, as `reserving`'s block ends)."""

    def __init__(self, budget: UploadBudget, size: int) -> None:
        self._budget = budget
        self.size = size
        self._held = False

    def take(self) -> bool:
        """True, the room held from now; False, nothing held, where the budget has none for it
        (`UploadBudget.has_room`)."""
        if self._held:
            return True
        if not self._budget.has_room(self.size):
            return False
        self._held = True
        self._budget.held_bytes += self.size
        self._budget.reserved_bytes += self.size
        return True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._budget.held_bytes -= self.size
            self._budget.reserved_bytes -= self.size


@dataclass
class HeavyLimits:
    """The limits on the commands that cost the bot CPU: each its own windows, so exporting does
    not use up /stats; /playlist and /servermood share theirs (both read the place's songs)."""

    stats: CommandLimit | None = None
    export: CommandLimit | None = None
    server: CommandLimit | None = None
    renders: RenderSlots = field(default_factory=lambda: RenderSlots(DEFAULT_RENDERS))

    @classmethod
    def from_settings(cls, settings, clock: Clock = time.monotonic) -> "HeavyLimits":
        return cls(
            stats=CommandLimit(settings.stats_rate_per_user, clock=clock),
            export=CommandLimit(settings.export_rate_per_user, clock=clock),
            server=CommandLimit(settings.playlist_rate_per_user, settings.playlist_rate_per_place, clock=clock),
            renders=RenderSlots(settings.chart_renders_max),
        )


def refusal(limit: CommandLimit | None, caller: Caller, command: str, *, per_place: bool = False) -> ErrorReply | None:
    """The "You're going fast" (or "This server is asking me a lot") reply when `caller` is over
    `limit` for `command` (counting the
    request otherwise), or None. No limit (use cases built without one, in tests): None."""
    if limit is None:
        return None
    try:
        limit.check(f"{caller.platform}:{caller.user_id}", caller.place if per_place else None)
    except RateLimited as limited:
        log.info("command.rate_limited", extra={"command": command, "user": caller.user_id,
                                                 "place": caller.place if per_place else None,
                                                 "by_place": limited.by_place, "retry_after_s": limited.retry_after_s})
        return ErrorReply(str(limited), retry_after_s=limited.retry_after_s)
    return None
