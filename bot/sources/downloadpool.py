"""Warm worker processes that run downloads off the bot's event loop.

    pool = DownloadPool(max_workers=6)
    audio = await pool.run(download, job, timeout_s=90)   # download(job) runs in a worker
    pool.close()

yt-dlp is pure Python. Run in threads of the bot's process, it holds the GIL that the event loop
needs: 24 concurrent section fetches delayed every other user by ~180 ms at p99. Here each worker
is a separate interpreter that imports the download code once and runs one job at a time, sent
over a pipe. The bot waits on that pipe with the event loop's own reader, so no thread of its
process takes part.

A job that overruns its time is ended by killing its worker's whole process group (yt-dlp may
have started ffmpeg), which is then replaced; the other jobs are untouched. A worker that dies
mid-job raises `WorkerCrashedError`. A worker whose bot has died, however it died, ends with
everything it started. This module is the only place that knows about processes.
"""
from __future__ import annotations

import asyncio
import atexit
import collections
import importlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

# The same bound as the threads the downloads used to run in: asyncio.to_thread's default
# executor has min(32, cores + 4) threads, 6 on the 2-core machine. Real downloads wait on the
# network, so fewer would throttle them; each worker costs ~50 MB.
MAX_WORKERS = 6
# Started by `warm_up` (at the bot's start) or with the first job. More start as a burst needs
# them (a few ms of the event loop each, once: workers are kept), up to MAX_WORKERS.
WARM_WORKERS = 2
# Downloads are background work: the kernel should run the bot's event loop first when both want a core.
WORKER_NICE = 5
KILL_WAIT_S = 2.0
# How often a worker checks that the bot still lives: a worker left by a killed bot ends within this.
BOT_CHECK_S = 0.25
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the `bot` package


class WorkerCrashedError(Exception):
    """The worker running a job died before answering."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"The download worker stopped unexpectedly{f' ({detail})' if detail else ''}.")


class JobFailedError(Exception):
    """A job raised something that could not travel back between processes."""


class WorkerTraceback(Exception):
    """The frames, in the worker, of the error a job raised: its cause, as it comes back (an error
    travels pickled, without its own traceback). Frames only: the words of any error it was
    raised from may quote a link or a song's name, which the log never shows."""

    def __init__(self, frames: str) -> None:
        super().__init__(frames)
        self.frames = frames

    def __str__(self) -> str:
        return f"in the download worker:\n{self.frames}"


# -- the worker's side -----------------------------------------------------------------------

class _Records(logging.Handler):
    """Keeps a job's log records, to be logged again by the bot (its handlers, its redaction)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, record.levelno, record.getMessage()))


def serve(jobs: Connection, replies: Connection) -> None:
    """Run (function, args) jobs until the bot closes the pipe. Replies (True, result, log lines)
    or (False, error, log lines)."""
    records = _Records()
    logging.getLogger().addHandler(records)
    logging.getLogger().setLevel(logging.DEBUG)  # the bot's own level decides when they are re-logged
    while True:
        try:
            function, args = jobs.recv()
        except EOFError:
            return
        records.lines = []
        try:
            reply = (True, function(*args), records.lines, None)
        except Exception as error:  # noqa: BLE001 - every failure goes back to the caller, with its frames
            reply = (False, error, records.lines, "".join(traceback.format_tb(error.__traceback__)))
        try:
            replies.send(reply)  # pickled whole before anything is written
        except Exception as error:  # noqa: BLE001 - an unpicklable result or error
            failed = JobFailedError(f"{type(reply[1]).__name__}: {reply[1]} ({error})")
            replies.send((False, failed, records.lines, reply[3]))


def die_with_the_bot(bot_pid: int) -> None:
    """End this worker, and everything it started, once the bot's process is gone. An idle worker
    sees its job pipe close; one mid-job (yt-dlp on a slow host, the ffmpeg it started) ran on after
    the bot was killed outright (SIGKILL, the OOM killer) until its download ended, for ever on a
    host that stopped answering. A thread asks who its parent is: no longer the bot, the bot is
    gone. Not PR_SET_PDEATHSIG: that fires when the bot's thread that started the worker ends, and
    reaches the worker alone, not its ffmpeg."""
    def kill_when_the_bot_is_gone() -> None:
        while os.getppid() == bot_pid:
            time.sleep(BOT_CHECK_S)
        if os.getpgrp() == os.getpid():  # a group of its own, as _spawn starts it: ffmpeg too
            os.killpg(0, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=kill_when_the_bot_is_gone, name="bot-watch", daemon=True).start()


def worker_main(argv: list[str]) -> None:
    jobs_fd, replies_fd, bot_pid, nice, *preload = argv
    die_with_the_bot(int(bot_pid))
    os.nice(int(nice))
    for module in preload:  # warm: the first job pays no import
        importlib.import_module(module)
    serve(Connection(int(jobs_fd), writable=False), Connection(int(replies_fd), readable=False))


# -- the bot's side --------------------------------------------------------------------------

@dataclass(eq=False)
class _Worker:
    process: subprocess.Popen
    jobs: Connection  # we write
    replies: Connection  # we read

    def alive(self) -> bool:
        return self.process.poll() is None


def _child_env() -> dict[str, str]:
    paths = [str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _spawn(preload: tuple[str, ...], nice: int) -> _Worker:
    jobs_read, jobs_write = os.pipe()  # os.pipe() ends are not inherited unless passed
    replies_read, replies_write = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(jobs_read), str(replies_write), str(os.getpid()), str(nice),
             *preload],
            pass_fds=(jobs_read, replies_write), stdin=subprocess.DEVNULL, env=_child_env(),
            # Its own process group (a kill reaches ffmpeg too, Ctrl-C does not) but the bot's session:
            # with autogroup scheduling (Linux's default) every session is one group weighed like
            # the whole bot, so a worker in a session of its own would ignore its nice and take a
            # core from the event loop (lag p99 18-20 ms against 4-6 ms in a burst of 50 songs).
            process_group=0,
        )
    finally:
        os.close(jobs_read)
        os.close(replies_write)
    return _Worker(process, Connection(jobs_write, readable=False), Connection(replies_read, writable=False))


def _kill(worker: _Worker) -> None:
    """End the worker and everything it started, and reap it (a dead process exits in milliseconds)."""
    try:
        os.killpg(worker.process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        worker.process.wait(KILL_WAIT_S)
    except subprocess.TimeoutExpired:
        log.warning("download worker %d did not die within %.0f s", worker.process.pid, KILL_WAIT_S)
    worker.jobs.close()
    worker.replies.close()


async def _reply_from(worker: _Worker) -> tuple[bool, Any, list[tuple[str, int, str]], str | None]:
    loop = asyncio.get_running_loop()
    readable = loop.create_future()
    fd = worker.replies.fileno()
    loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
    try:
        await readable
    finally:
        loop.remove_reader(fd)
    return worker.replies.recv()  # the worker wrote the whole reply at once


class DownloadPool:
    def __init__(self, max_workers: int = MAX_WORKERS, *, warm_workers: int = WARM_WORKERS,
                 preload: tuple[str, ...] = (), nice: int = WORKER_NICE) -> None:
        if max_workers < 1:
            raise ValueError("a download pool needs at least one worker")
        self.max_workers = max_workers
        self.warm_workers = min(warm_workers, max_workers)
        self.preload = preload
        self.nice = nice
        self._workers: set[_Worker] = set()
        self._idle: list[_Worker] = []
        self._waiters: collections.deque[asyncio.Future] = collections.deque()
        self._closed = False

    def worker_pids(self) -> list[int]:
        return sorted(w.process.pid for w in self._workers)

    @property
    def waiting(self) -> int:
        """The jobs waiting for a worker: every one is busy."""
        return sum(not waiter.done() for waiter in self._waiters)

    @property
    def full(self) -> bool:
        """Whether a job given now waits for a worker: none idle, and no other may start."""
        return not self._idle and len(self._workers) >= self.max_workers

    async def run(self, function: Callable[..., Any], *args: Any, timeout_s: float | None = None,
                  starting: Callable[[], object] | None = None) -> Any:
        """`function(*args)` in a worker. `function` and `args` travel by pickle: a module-level
        function and plain data. Raises what the job raised, `TimeoutError` (its worker killed)
        past `timeout_s` counted from this call (None: the caller's own timeout or cancellation,
        which kill the worker too), or `WorkerCrashedError`. `starting()` is called once a worker
        takes the job, before it is sent, not while it waits for one (every worker busy): what it
        raises is raised here, nothing of the job run, its worker given to the next job."""
        async with asyncio.timeout(timeout_s):
            worker = await self._acquire()
            if starting is not None:
                try:
                    starting()
                except BaseException:
                    self._release(worker)  # it ran nothing: as fit for the next job as before
                    raise
            try:
                worker.jobs.send((function, args))
                ok, value, lines, frames = await _reply_from(worker)
            except (EOFError, OSError) as error:
                self._discard(worker)
                raise WorkerCrashedError(f"exit status {worker.process.returncode}") from error
            except BaseException:  # timed out or cancelled: the job may still be writing files
                self._discard(worker)
                raise
            self._release(worker)
        for name, level, message in lines:
            logging.getLogger(name).log(level, "%s", message)
        if not ok:
            if frames:  # where in the worker it was raised, for the traceback its caller logs
                value.__cause__ = WorkerTraceback(frames)
            raise value
        return value

    async def warm_up(self) -> None:
        """Start the warm workers and wait until each has imported the download code (at the
        bot's start, so that the first songs find them ready)."""
        fresh = [self._start_worker() for _ in range(self.warm_workers - len(self._workers))]
        for worker in fresh:
            try:
                worker.jobs.send((int, ("0",)))  # a no-op: answered once the imports are done
                await _reply_from(worker)
            except (EOFError, OSError):
                self._discard(worker)
                raise WorkerCrashedError(f"exit status {worker.process.returncode}") from None
            except BaseException:
                self._discard(worker)
                raise
            self._release(worker)

    def close(self) -> None:
        """Stop every worker at once, idle or busy: an idle one holds nothing. Idle ones were asked
        to exit (their pipe closed) and waited for, up to CLOSE_WAIT_S: one still importing the
        download code (started for the next job of a burst) read that only once its imports were
        done, and the bot's exit waited (0.9 s of a SIGTERM's 5.3 s, two downloads cut short, on a
        loaded machine)."""
        self._closed = True
        for worker in list(self._workers):
            _kill(worker)
        self._workers.clear()
        self._idle.clear()
        for waiter in self._waiters:
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.cancel()
        self._waiters.clear()

    # -- bookkeeping: one job per worker --

    def _start_worker(self) -> _Worker:
        worker = _spawn(self.preload, self.nice)
        self._workers.add(worker)
        log.debug("download worker %d started (%d running)", worker.process.pid, len(self._workers))
        return worker

    async def _acquire(self) -> _Worker:
        if self._closed:
            raise RuntimeError("the download pool is closed")
        while self._idle:
            worker = self._idle.pop()
            if worker.alive():
                return worker
            self._forget(worker)
        if len(self._workers) < self.max_workers:
            worker = self._start_worker()
            if len(self._workers) < self.max_workers:  # a burst has begun: the next job finds one ready
                self._idle.append(self._start_worker())
            return worker
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())  # handed a worker just as we gave up
            raise

    def _release(self, worker: _Worker) -> None:
        if self._closed:
            _kill(worker)
            self._workers.discard(worker)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(worker)
                return
        self._idle.append(worker)

    def _discard(self, worker: _Worker) -> None:
        _kill(worker)
        self._forget(worker)
        if self._closed:
            return
        if self._waiters or len(self._workers) < self.warm_workers:
            self._release(self._start_worker())  # its place goes to the next job in line

    def _forget(self, worker: _Worker) -> None:
        self._workers.discard(worker)
        if worker in self._idle:
            self._idle.remove(worker)


_shared: dict[int, DownloadPool] = {}


def shared_pool(preload: tuple[str, ...] = ()) -> DownloadPool:
    """One pool per process (a forked child gets its own), closed at exit."""
    pool = _shared.get(os.getpid())
    if pool is None:
        pool = _shared[os.getpid()] = DownloadPool(preload=preload)
        atexit.register(pool.close)
    return pool


if __name__ == "__main__":
    # Run the imported module's copy, so what the worker pickles names bot.sources.downloadpool, not __main__.
    from bot.sources.downloadpool import worker_main as imported_worker_main

    imported_worker_main(sys.argv[1:])
