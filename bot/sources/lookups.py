"""Blocking network lookups (spotipy's requests, the link guard's walk of a link's redirects), run
in a thread pool of their own.

In asyncio's default pool (6 threads on 2 cores) a lookup asleep through Spotify's Retry-After,
or waiting out a host's timeout, held a thread the rest of the bot needs: six lookups waiting
out a 429 kept a cached attachment's /mood (its hash), a chart, an /export and the outbox's
writes waiting 20 s. Here they wait among themselves.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from bot.threads import ThreadPool

LOOKUP_THREADS = 8  # lookups at once; more wait their turn here, not in the default pool

T = TypeVar("T")
_LOOKUPS = ThreadPool(LOOKUP_THREADS, "moodbot-lookup")


async def in_lookup_thread(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a lookup thread."""
    return await _LOOKUPS.run(function, *args)
