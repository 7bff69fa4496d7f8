"""The embedded server: a separate secantusd-py process keeping its data under DATA_DIR/db."""
from __future__ import annotations

import re
import sys
from datetime import time
from pathlib import Path

import pytest

from storage.database import Database
from storage.embedded import EmbeddedServer, EmbeddedServerError
from storage.models import User, UserRef

ALICE = UserRef("chat", "alice")


async def test_data_survives_a_restart_under_the_same_data_dir(tmp_path):
    with EmbeddedServer(tmp_path) as server:
        assert "retryWrites=false" in server.uri
        assert server.uri.startswith("mongodb://127.0.0.1:")
        db = await Database.connect(server.uri, "moodbot")
        await db.init()
        await db.users.upsert(User("chat", "alice", prompt_time=time(20)))
        await db.close()
    assert (tmp_path / "db").is_dir()

    server = EmbeddedServer(tmp_path).start()
    process = server._proc
    db = await Database.connect(server.uri, "moodbot")
    assert await db.init() >= 1
    assert (await db.users.get(ALICE)).prompt_time == time(20)
    await db.close()
    server.stop()
    assert process.poll() is not None
    server.stop()  # safe to repeat


async def test_a_stop_after_the_bot_closed_its_client_is_quick_and_orderly(tmp_path):
    """The bot closes its client, then stops the server: secantusd-py's stop then waited its full
    2 s for its accept thread, asleep in accept() with no client left to connect (every stop took
    2.1 s). The stop is still its own orderly one (exit status 0 from its SIGTERM handler), not a kill."""
    import statistics
    import time as clock

    took = []
    for _ in range(3):
        server = EmbeddedServer(tmp_path).start()
        process = server._proc
        db = await Database.connect(server.uri, "moodbot")
        await db.init()
        await db.users.upsert(User("chat", "alice", prompt_time=time(20)))
        await db.close()
        started = clock.perf_counter()
        server.stop()
        took.append(clock.perf_counter() - started)
        assert process.returncode == 0
    assert statistics.median(took) < 1.0, took


def test_a_clear_error_when_the_server_is_not_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EmbeddedServerError) as caught:
        EmbeddedServer(tmp_path).start()
    assert str(caught.value) == ("The embedded database (secantusd-py) is not installed: "
                                 f"{tmp_path / 'bin' / 'python'} -m pip install -e '.[embedded]' in moodbot's folder "
                                 "installs it (make run does), or set MONGODB_URI to a MongoDB server.")


def test_uri_before_start_is_a_readable_error(tmp_path):
    with pytest.raises(EmbeddedServerError):
        EmbeddedServer(tmp_path).uri


def test_a_data_dir_in_use_is_said_in_one_line(tmp_path):
    with EmbeddedServer(tmp_path):
        with pytest.raises(EmbeddedServerError) as caught:
            EmbeddedServer(tmp_path).start()
    message = str(caught.value)
    assert message.startswith(f"DATA_DIR {tmp_path} is in use: another moodbot") and "\n" not in message


def process_state(pid: int) -> str | None:
    """The state letter of a process in /proc (R, S, Z…), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux only")
def test_the_server_does_not_outlive_a_killed_bot(tmp_path):
    """An OOM kill (SIGKILL) of the bot must not leave the database running with DATA_DIR locked."""
    import os
    import signal
    import subprocess
    import time as clock

    from tests.conftest import REPO

    bot = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from storage.embedded import EmbeddedServer; "
                               "s = EmbeddedServer(sys.argv[1]).start(); print(s._proc.pid, flush=True); "
                               "time.sleep(120)", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    server_pid = int(bot.stdout.readline())
    os.kill(bot.pid, signal.SIGKILL)
    bot.wait()
    deadline = clock.monotonic() + 15
    while clock.monotonic() < deadline:
        state = process_state(server_pid)
        # Exited: gone, or a zombie that whoever adopted the orphan (PID 1 here) has not reaped yet.
        if state in (None, "Z", "X"):
            break
        clock.sleep(0.1)
    else:
        os.kill(server_pid, signal.SIGKILL)
        pytest.fail(f"the embedded database outlived the killed bot (state {state})")
    EmbeddedServer(tmp_path).start().stop()  # and the next start finds DATA_DIR free


async def test_a_server_killed_while_the_bot_runs_is_restarted_with_its_data(tmp_path):
    """An OOM kill or a crash of the database alone: the bot must not answer "unavailable" until
    someone restarts it by hand. The server comes back on its port and the client reconnects."""
    import asyncio
    import os
    import signal
    import time as clock

    from storage.models import DatabaseUnavailableError

    server = EmbeddedServer(tmp_path).start()
    db = await Database.connect(server.uri, "moodbot", server_selection_timeout_ms=500)
    try:
        await db.init()
        await db.users.upsert(User("chat", "alice", prompt_time=time(20)))
        killed = server._proc
        os.kill(killed.pid, signal.SIGKILL)
        deadline = clock.monotonic() + 20
        while True:
            try:
                back = await db.users.get(ALICE)
                break
            except DatabaseUnavailableError:
                if clock.monotonic() > deadline:
                    pytest.fail("the embedded database was not restarted within 20 s")
                await asyncio.sleep(0.2)
        assert back.prompt_time == time(20)
        assert server._proc is not killed
    finally:
        await db.close()
        restarted = server._proc
        server.stop()
    assert restarted is None or restarted.poll() is not None  # and stop still stops it


def stop_timed(server: EmbeddedServer) -> tuple[float, int]:
    """(seconds the stop took, the server's exit status: -9 when the stop killed it)."""
    import time as clock

    process = server._proc
    started = clock.perf_counter()
    server.stop()
    return clock.perf_counter() - started, process.returncode


def test_a_sigterm_the_server_never_acts_on_is_sent_again(tmp_path, monkeypatch):
    """secantusd-py at times takes a stop's SIGTERM in and never acts on it (7 stops in 100 right after
    a start): the stop waited its full STOP_TIMEOUT_S, 10 s, then killed it. One that still accepts
    connections RESIGNAL_AFTER_S after a SIGTERM now gets another, and stops in order."""
    from storage.embedded import RESIGNAL_AFTER_S, STOP_TIMEOUT_S
    from tests.fakes import secantusd

    secantusd.install(tmp_path / "bin", monkeypatch, deaf_to=1)
    server = EmbeddedServer(tmp_path / "data").start()
    took, status = stop_timed(server)
    assert status == 0, server.log_path.read_text()  # its own stop, not the kill
    assert secantusd.sigterms_said(server.log_path.read_text()) == 2
    assert RESIGNAL_AFTER_S <= took < STOP_TIMEOUT_S / 4


def test_a_server_that_has_begun_its_stop_is_not_signalled_again(tmp_path, monkeypatch):
    """A second SIGTERM would run secantusd-py's handler (its stop, then sys.exit) inside the first's,
    cutting its orderly stop short: one that refuses connections, its stop begun, gets no other."""
    from storage.embedded import RESIGNAL_AFTER_S
    from tests.fakes import secantusd

    secantusd.install(tmp_path / "bin", monkeypatch, stop_s=4 * RESIGNAL_AFTER_S)
    server = EmbeddedServer(tmp_path / "data").start()
    took, status = stop_timed(server)
    assert status == 0 and took >= 4 * RESIGNAL_AFTER_S
    assert secantusd.sigterms_said(server.log_path.read_text()) == 1


def test_a_stop_right_after_the_start_is_acted_on_at_once(tmp_path, monkeypatch):
    """secantusd-py takes connections as soon as it listens, before its main thread has started its
    accept thread and gone to sleep in its wait; the start took a connection for ready, and a stop
    right after signalled it then: the SIGTERM was lost (10 stops in 100 waited 10 s and were killed,
    and 1 more exited 1, its storage left open, its handler run before its accept thread had started).
    The start now waits for a `ping` answered, and the stop's first SIGTERM is acted on."""
    from storage.embedded import RESIGNAL_AFTER_S
    from tests.fakes import secantusd

    secantusd.install(tmp_path / "bin", monkeypatch, starts_s=0.3)
    server = EmbeddedServer(tmp_path / "data").start()
    took, status = stop_timed(server)
    assert status == 0 and secantusd.sigterms_said(server.log_path.read_text()) == 1
    assert took < RESIGNAL_AFTER_S


# The embedded database, on a disk of its own that fills while it runs, then is freed: what the
# bot's client got, and what the log said meanwhile. (`on_a_small_disk` runs it in its namespace.)
DISK_FILLS_WHILE_IT_RUNS = """
import asyncio, json, logging, sys, time
from datetime import time as clock_time
from pathlib import Path
from storage.database import Database
from storage.embedded import EmbeddedServer
from storage.models import StorageError, User, UserRef
from pymongo.errors import PyMongoError

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
disk = Path(sys.argv[1])
WAIT = "next try in 16.0 s"  # the sixth try failed: the next one 16 s away, doubled from 0.5 s
said: list[logging.LogRecord] = []

class Heard(logging.Handler):
    def emit(self, record):
        said.append(record)

logging.getLogger("storage.embedded").addHandler(Heard())

async def main():
    server = EmbeddedServer(disk / "data", health_every_s=0.2).start()
    db = await Database.connect(server.uri, "moodbot", server_selection_timeout_ms=500)
    await db.init()
    await db.users.upsert(User("chat", "alice", prompt_time=clock_time(20)))
    await db.db["notes"].insert_one({"n": "before"})
    with open(disk / "filler", "wb", buffering=0) as filler:  # the rest of the disk taken (logs, another program)
        for size in (65536, 512):
            try:
                while True:
                    filler.write(bytes(size))
            except OSError:
                pass
    refused = 0
    for n in range(50):  # writes, until the disk refuses one
        try:
            await db.db["notes"].insert_one({"n": n, "words": "x" * 3000})
        except PyMongoError:
            refused += 1
            break
    # The disk still full: the tries to start it again 0.5, 1, 2, 4, 8 s apart, each one said.
    # It is freed once a try has put the next one 16 s away, whatever the load did to their times.
    waited = time.monotonic() + 90
    while not (failed := [r for r in said if WAIT in r.getMessage()]) and time.monotonic() < waited:
        await asyncio.sleep(0.05)
    (disk / "filler").unlink()  # freed
    freed = time.monotonic()
    next_try_s = failed[0].created + 16.0 - time.time() if failed else 0.0
    deadline, back = freed + 60, None
    while back is None and time.monotonic() < deadline:
        try:
            back = await db.users.get(UserRef("chat", "alice"))
            await db.db["notes"].insert_one({"n": "after"})
        except (StorageError, PyMongoError):
            back = None
            await asyncio.sleep(0.2)
    print(json.dumps({"refused": refused, "back": back is not None and back.prompt_time == clock_time(20),
                      "after_s": time.monotonic() - freed, "next_try_s": next_try_s}))
    await db.close()
    server.stop()

asyncio.run(main())
"""


def test_a_disk_that_fills_while_the_server_runs_is_said_and_the_server_recovers_once_it_is_freed(tmp_path):
    """DATA_DIR's disk full while the bot ran: the embedded database's storage engine (WiredTiger)
    panicked at its first write refused, and the server lived on answering its ping and every read
    and write "internal server error", for ever, the disk freed or not: it had not exited, so it was
    never started again, and the log said nothing of the disk. The server is now watched: a storage
    that fails every read is said, with the disk's free space, and the server started again (on a
    disk still full, again and again, each try said) until it answers, its data kept: as soon as
    the disk has room again."""
    import json
    import subprocess

    from tests.disks import on_a_small_disk

    disk = tmp_path / "disk"
    done = subprocess.run(on_a_small_disk(disk, [sys.executable, "-c", DISK_FILLS_WHILE_IT_RUNS, str(disk)],
                                          size_kib=4096),
                          capture_output=True, text=True, timeout=180, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout)
    assert (outcome["refused"], outcome["back"]) == (1, True), done.stderr[-3000:]
    # Back once the disk has room, not at the next try its waits, doubling, put up to 60 s away
    # (here 16 s after the try before the disk was freed). The start again and the client's
    # finding it took 2.5 s on an idle machine, 3.2 s in a full test run on 2 busy cores and 6.5 s
    # in a CI run: a fixed bound (6 s, 7.5 s from the next try) failed it. So: back before the
    # next try was even due, as said by the try before it.
    assert outcome["next_try_s"] > 10, (outcome, done.stderr[-3000:])  # freed just after that try
    assert outcome["after_s"] < outcome["next_try_s"], (outcome, done.stderr[-3000:])
    said = done.stderr
    assert re.search(r"ERROR embedded database's storage fails every read \(internal server error\); DATA_DIR's "
                     r"disk has \d+ KiB free: starting it again", said), said[-3000:]
    assert re.search(r"ERROR embedded database did not start again: .*DATA_DIR's disk is full \(\d+ KiB free\): "
                     r"free some space there \(next try in", said), said[-3000:]
    assert "WARNING embedded database started again on port" in said, said[-3000:]


@pytest.mark.parametrize("disk_full", [True, False])
def test_a_try_failed_for_a_full_disk_is_not_waited_out_once_the_disk_has_room(tmp_path, disk_full):
    """The wait before the next try looked at the disk only as it began: a disk freed between a
    try's "disk is full" and that look had the whole doubled delay waited out (up to 60 s), the
    bot's database down meanwhile. A try failed for a full disk is tried again as soon as the disk
    has room, here at once; one failed for anything else waits its delay."""
    import time as clock

    server = EmbeddedServer(tmp_path / "data")  # not started: the wait alone; tmp_path has room
    began = clock.monotonic()
    server._wait_before_next_try(1.0, disk_full)
    waited = clock.monotonic() - began
    assert waited < 0.5 if disk_full else waited >= 1.0, waited
