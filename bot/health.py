"""Liveness: while the bot runs, its event loop touches DATA_DIR/heartbeat every few seconds, and
`python -m bot --alive` (the Docker HEALTHCHECK) says whether that happened lately.

A process that is up is not enough: an event loop stuck in a blocking call, or waiting forever on a
lock, answers nobody while the process looks fine. Only the loop itself touches the file, so a
stale file means it has stopped turning.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

log = logging.getLogger(__name__)

HEARTBEAT_FILE = "heartbeat"
HEARTBEAT_INTERVAL_S = 10.0
# Six beats missed: a loop busy for a moment (a burst, a slow collection) is not dead.
ALIVE_MAX_AGE_S = 60.0


def heartbeat_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / HEARTBEAT_FILE


async def _beat(path: Path, interval_s: float) -> None:
    complained = False
    while True:
        try:
            path.touch()
            complained = False
        except OSError as error:  # a full disk: said once; --alive then reports the bot down
            if not complained:
                log.warning("heartbeat.not_written", extra={"path": str(path), "error": error.strerror})
                complained = True
        await asyncio.sleep(interval_s)


def _writer_line() -> str:
    """Who beats: the process and the machine (a container's own host name), so that a check on
    the same machine tells a bot killed outright (no way out to remove the file) at once, not a
    minute later when the file has gone stale."""
    return f"{os.getpid()} {socket.gethostname()}\n"


@contextlib.asynccontextmanager
async def heartbeat(path: Path, interval_s: float = HEARTBEAT_INTERVAL_S) -> AsyncIterator[None]:
    """Touch `path` now and every `interval_s` from this event loop; remove it on the way out, so
    a stopped bot is not taken for a live one."""
    with contextlib.suppress(OSError):  # a full disk: `_beat` says so
        path.write_text(_writer_line())
    task = asyncio.create_task(_beat(path, interval_s), name="heartbeat")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def liveness(path: Path, max_age_s: float = ALIVE_MAX_AGE_S) -> tuple[bool, str]:
    """(alive, one line saying why) from the heartbeat file's age."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False, f"no heartbeat at {path}: moodbot is not running (or not started yet) with this DATA_DIR"
    except OSError as error:
        return False, f"cannot read the heartbeat at {path} ({error.strerror})"
    if age > max_age_s:
        return False, (f"the heartbeat at {path} is {age:.0f} s old (over {max_age_s:.0f} s): "
                       "the event loop is stuck or the bot has died")
    if (gone := _writer_gone(path)) is not None:
        return False, f"the moodbot that wrote the heartbeat at {path} (pid {gone}) is no longer running"
    return True, f"alive: heartbeat {max(age, 0):.0f} s ago"


def _writer_gone(path: Path) -> int | None:
    """The pid of the bot that wrote the heartbeat if it ran on this machine and is gone; None if
    it runs, or it cannot be told (another machine or container, a file without a writer line)."""
    try:
        pid_text, host = path.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if host != socket.gethostname() or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return pid
    except OSError:  # there, run by another user
        return None
    return None
