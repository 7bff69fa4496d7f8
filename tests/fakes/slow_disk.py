"""A disk slow to take a write, for the event loop's threads: a test holds a write at its fsync
for as long as it likes, to make a step happen for sure while the write is under way (the stop
cancelling whoever waits for it), without touching the project's code.

The loop's default executor (`asyncio.to_thread`) is swapped for one whose threads each run a
profile hook that waits at `os.fsync` until told; the executor is put back, fresh, after."""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import sys
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def disk_slow_to_sync() -> Iterator[tuple[threading.Event, threading.Event]]:
    """The running loop's threads held at their fsync until `synced` is set; `syncing` is set once
    one is held there. On leaving, what they were writing has landed."""
    syncing, synced = threading.Event(), threading.Event()

    def held(frame, event, called):
        if event == "c_call" and called is os.fsync and not synced.is_set():
            syncing.set()
            synced.wait(30)

    loop = asyncio.get_running_loop()
    threads = concurrent.futures.ThreadPoolExecutor(initializer=sys.setprofile, initargs=(held,))
    loop.set_default_executor(threads)
    try:
        yield syncing, synced
    finally:
        synced.set()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor())
        threads.shutdown(wait=True)
