"""Waiting for a fake server to receive a call: shared by the fake Bot API and the fake Discord."""
from __future__ import annotations

import asyncio
import time
from typing import Callable, Sequence, TypeVar

C = TypeVar("C")


async def wait_for_call(changed: asyncio.Condition, calls: Sequence[C], start: int, matches: Callable[[C], bool],
                        timeout: float, describe: Callable[[C], tuple], what: str = "call") -> C:
    """The first call from index `start` on that `matches`, waiting on `changed` (notified on every
    new call) up to `timeout` s; a TimeoutError lists what arrived instead."""
    deadline = time.monotonic() + timeout
    async with changed:
        while True:
            for call in calls[start:]:
                if matches(call):
                    return call
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [describe(c) for c in calls[start:]]
                raise TimeoutError(f"no {what} matching within {timeout}s; calls: {seen}")
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass
