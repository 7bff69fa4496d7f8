"""Start and stop a real MongoDB wire-protocol server (SecantusDB) for tests.

Run as a separate process, never imported: the GPL server stays out of the bot's address space.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote_plus

from storage.embedded import DIE_WITH_PARENT, answers_ping, terminate


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_command() -> str:
    exe = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
    if not Path(exe).exists():
        raise RuntimeError("secantusd-py not found: install the dev extra (pip install -e '.[dev]')")
    return exe


USER = "moodbot"
SELECTION_TIMEOUT_MS = 3000
PORT_TAKEN = "Address already in use"  # the bind's OSError, as the server prints it


class DBServer:
    """One secantusd-py process on 127.0.0.1. `storage_path` ':memory:' is throwaway. With a
    `password`, a user USER is created at start and `uri` logs in as it (SCRAM), as a production
    MongoDB URI would."""

    def __init__(self, port: int | None = None, storage_path: str = ":memory:", password: str | None = None) -> None:
        self.port = port or free_port()
        self.storage_path = storage_path
        self.password = password
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        if self.password is None:
            return self._uri_without_login
        login = f"{USER}:{quote_plus(self.password)}@"
        return self._uri_without_login.replace("//", f"//{login}", 1) + "&authSource=admin"

    @property
    def _uri_without_login(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?retryWrites=false&serverSelectionTimeoutMS={SELECTION_TIMEOUT_MS}"

    def uri_failing_after(self, ms: int) -> str:
        """`uri` with its server selection given up after `ms`, for a client that must fail fast
        while this server is down: the URI's own option wins over Database.connect's
        server_selection_timeout_ms, so that keyword alone left such a client waiting 3 s a call."""
        return self.uri.replace(f"serverSelectionTimeoutMS={SELECTION_TIMEOUT_MS}", f"serverSelectionTimeoutMS={ms}")

    def _create_user(self) -> None:
        from pymongo import MongoClient

        with MongoClient(self._uri_without_login) as client:
            client.admin.command("createUser", USER, pwd=self.password, roles=["root"])

    def start(self, timeout: float = 30.0) -> "DBServer":
        """Started and answering. A server brought back on its port (`Outage.up`) can find the
        port taken for a moment: while it was down, a client connecting to it from an ephemeral
        port may have been given that very port (the Linux "self-connect"), and the bind fails.
        That start is tried again; any other early exit is an error that shows the server's own."""
        command = [_server_command(), "--host", "127.0.0.1", "--port", str(self.port),
                   "--storage-path", self.storage_path, "--log-level", "WARNING"]
        if sys.platform.startswith("linux"):  # killed with the test run, as the bot's is with the bot
            command = [sys.executable, "-c", DIE_WITH_PARENT, str(os.getpid()), *command]
        deadline = time.monotonic() + timeout
        earlier = ""
        while True:
            with tempfile.TemporaryFile() as stderr:
                self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr,
                                             start_new_session=True)
                said = self._answering(deadline, stderr)
            if said is None:
                return self
            if PORT_TAKEN in said and time.monotonic() < deadline:
                earlier = f" (before: {said.strip()[-200:]})"
                time.sleep(0.2)
                continue
            self.proc = None
            raise RuntimeError(f"secantusd-py did not start on port {self.port}: {said[-2000:]}{earlier}")

    def checkpoint(self) -> None:
        """Have the server write all it has acknowledged to its files (`fsync`: a WiredTiger
        checkpoint). Killed without one, SecantusDB lost writes it had acknowledged (the last of 12
        inserts, in 5 tries of 5 here: its journal is written by a thread of its own), and once its
        files were left so that it would not start on them again ("'table:secantus_documents_sh8'
        cannot be used until all column groups are created", an outage test, 2026-12-07). A test
        of an outage is about the bot, not the test server's durability. A server that cannot
        answer is killed as it is."""
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        try:
            with MongoClient(self.uri, serverSelectionTimeoutMS=2000, socketTimeoutMS=10000) as client:
                client.admin.command("fsync")
        except PyMongoError:
            pass

    def _answering(self, deadline: float, stderr) -> str | None:
        """None once the server answers a ping (its user created); else why not: its own words
        (stderr) when it exited, or a timeout."""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                stderr.seek(0)
                return f"exited with {self.proc.returncode}: " + stderr.read().decode(errors="replace")
            # Answered, not merely connected: a stop signalled before then could be lost (storage/embedded.py).
            if not answers_ping(self.port, timeout=0.2):
                time.sleep(0.05)
                continue
            if self.password is not None:
                self._create_user()
            return None
        self.stop()
        return "no answer in time"

    def stop(self, kill: bool = False) -> None:
        """Stop the server: SIGTERM, or with `kill` SIGKILL, its files first brought up to date
        (`checkpoint`), so that a server brought back on them has what it had acknowledged."""
        if self.proc is None:
            return
        if kill and self.proc.poll() is None:
            if self.storage_path != ":memory:":
                self.checkpoint()
            self.proc.kill()
            self.proc.wait()
        terminate(self.proc, self.port)  # as the bot stops its own: a SIGTERM lost is sent again
        self.proc = None
