"""Abuse limits for /mood: sliding windows per user and per place, plus a cap on concurrent analyses.

Every limit is checked before anything is recorded, so a refused request costs no quota.
"""
from __future__ import annotations

import math
import time
from collections import deque
from typing import Callable

WINDOW_S = 60.0
# A user already at the concurrency cap is told to wait this long: one analysis takes a few seconds.
CONCURRENT_RETRY_S = 5.0

Clock = Callable[[], float]


class RateLimited(Exception):
    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(f"You're going fast — try again in {self.retry_after_s} s.")


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

    def record(self, key: str) -> None:
        now = self._clock()
        if now - self._swept_at >= self.window_s:
            # Once a window: keys whose hits have all left it go, so who asked (a user id) is not
            # held until that key is asked about again, perhaps never (after /forget).
            self._swept_at = now
            for stale in [k for k, hits in self._hits.items() if hits[-1] <= now - self.window_s]:
                del self._hits[stale]
        self._hits.setdefault(key, deque()).append(now)

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

    def __init__(self, limiter: "MoodRateLimiter", user_key: str) -> None:
        self._limiter = limiter
        self._user_key = user_key
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._limiter._release(self._user_key)

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
        waits = [self.users.retry_after(user_key)]
        if place is not None:
            waits.append(self.places.retry_after(place))
        if self._running.get(user_key, 0) >= self.concurrent_per_user:
            waits.append(CONCURRENT_RETRY_S)
        wait = max(waits)
        if wait > 0:
            raise RateLimited(wait)
        self.users.record(user_key)
        if place is not None:
            self.places.record(place)
        self._running[user_key] = self._running.get(user_key, 0) + 1
        return Permit(self, user_key)

    def _release(self, user_key: str) -> None:
        left = self._running.get(user_key, 0) - 1
        if left > 0:
            self._running[user_key] = left
        else:
            self._running.pop(user_key, None)
