"""A stand-in `secantusd-py` for the embedded database's start and stop: it listens where it is
told, answers every command {ok: 1} (the start's `ping`), and its SIGTERMs are scripted.

secantusd-py at times takes a SIGTERM in and never acts on it: one that lands while its main thread
is still starting, after it listens and before it serves (storage/embedded.py, RESIGNAL_AFTER_S).
When that happens cannot be chosen from outside, so this one is told: it listens, takes
FAKE_SECANTUSD_STARTS_S to start serving, passing by every SIGTERM meanwhile, then passes by the
first FAKE_SECANTUSD_DEAF_TO more; on the next it closes its listener, as the real one does, and
exits 0 after FAKE_SECANTUSD_STOP_S. It says each SIGTERM on stdout (the server's log).

`install` puts it beside a `python` in a folder of its own, where storage.embedded.find_executable
looks first once sys.executable is that `python`.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import bson

from storage.embedded import OP_MSG, WIRE_HEADER

REPO = Path(__file__).resolve().parents[2]

STARTS_S = "FAKE_SECANTUSD_STARTS_S"
DEAF_TO = "FAKE_SECANTUSD_DEAF_TO"
STOP_S = "FAKE_SECANTUSD_STOP_S"


def install(folder: Path, monkeypatch, *, starts_s: float = 0.0, deaf_to: int = 0,
            stop_s: float = 0.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    real_python = Path(sys.executable)
    (folder / "python").symlink_to(real_python)
    fake = folder / "secantusd-py"
    fake.write_text(f"#!{real_python}\nimport runpy, sys\nsys.path.insert(0, {str(REPO)!r})\n"
                    f"runpy.run_path({__file__!r}, run_name='__main__')\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(folder / "python"))
    monkeypatch.setenv(STARTS_S, str(starts_s))
    monkeypatch.setenv(DEAF_TO, str(deaf_to))
    monkeypatch.setenv(STOP_S, str(stop_s))


def sigterms_said(log_text: str) -> int:
    return log_text.count("SIGTERM ")


def answer(connection: socket.socket) -> None:
    """{ok: 1} to each OP_MSG until the client closes (a probe closes at once)."""
    with connection:
        connection.settimeout(1.0)
        received = b""
        while more := connection.recv(4096):
            received += more
            while len(received) >= WIRE_HEADER.size and len(received) >= WIRE_HEADER.unpack_from(received)[0]:
                length, request_id, _, _ = WIRE_HEADER.unpack_from(received)
                received = received[length:]
                body = bson.encode({"ok": 1})
                connection.sendall(WIRE_HEADER.pack(WIRE_HEADER.size + 5 + len(body), 0, request_id, OP_MSG)
                                   + bytes(5) + body)


def main(argv: list[str]) -> int:
    host, port = argv[argv.index("--host") + 1], int(argv[argv.index("--port") + 1])
    starts_s, stop_s = float(os.environ[STARTS_S]), float(os.environ[STOP_S])
    deaf_to = int(os.environ[DEAF_TO])
    listener = socket.create_server((host, port))
    listener.settimeout(0.02)
    serving = stopping = False
    received = 0

    def on_sigterm(_signum, _frame) -> None:
        nonlocal received, deaf_to, stopping
        received += 1
        if serving and deaf_to == 0:
            stopping = True
        elif serving:
            deaf_to -= 1
        print(f"SIGTERM {received}", "acted on" if stopping else "passed by", flush=True)

    signal.signal(signal.SIGTERM, on_sigterm)
    time.sleep(starts_s)  # listening, not yet serving: connections wait in the backlog
    serving = True
    while not stopping:
        try:
            answer(listener.accept()[0])
        except OSError:
            pass
    listener.close()
    time.sleep(stop_s)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
