"""DATA_DIR on a disk that refuses writes whatever the rights: full, or mounted read-only. The start
and `--check` said "give moodbot's user the right to write there" (a chmod changes nothing), or
the embedded database "exited at start (code 1); the last line of …secantusd.log: (nothing)" with
exit status 1, a "--- Logging error ---" traceback above it."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.bot.test_console import console_env
from tests.disks import on_a_small_disk

FULL = "has {free} KiB free on its disk: free some space there"
READ_ONLY = "(Read-only file system): it is mounted read-only; mount it read-write"


def bot_run(tmp_path, data_dir, *args: str, disk: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m bot *args` (console, embedded database) on `data_dir`, run to its end; with
    `disk`, `tmp_path/disk` is a small disk of its own (`on_a_small_disk`'s arguments)."""
    command = [sys.executable, "-m", "bot", *args]
    if disk is not None:
        command = on_a_small_disk(tmp_path / "disk", command, **disk)
    return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=tmp_path,
                          env=console_env(data_dir), timeout=120)


def bot_on_a_small_disk(tmp_path, *args: str, **disk) -> subprocess.CompletedProcess:
    """`python -m bot *args` with DATA_DIR on a small disk of its own."""
    return bot_run(tmp_path, tmp_path / "disk" / "data", *args, disk=disk)


@pytest.mark.parametrize("disk, said", [
    ({"size_kib": 64, "fill_kib": 64}, FULL.format(free=0)),  # the probe's 7 bytes refused
    ({"size_kib": 64}, FULL.format(free=64)),  # the probe written, the embedded database then refused
    ({"size_kib": 64, "read_only": True}, READ_ONLY),
])
def test_a_data_dir_on_a_full_or_read_only_disk_is_said_so_with_what_to_do(tmp_path, disk, said):
    started = bot_on_a_small_disk(tmp_path, **disk)
    assert started.returncode == 2, started.stderr
    (line,) = started.stderr.splitlines()  # one line: no traceback
    assert line.startswith(f"moodbot could not start: DATA_DIR {tmp_path / 'disk' / 'data'} ") and said in line, line
    checked = bot_on_a_small_disk(tmp_path, "--check", **disk)
    (data_dir,) = [line for line in checked.stdout.splitlines() if line.split()[1:2] == ["data"]]
    assert data_dir.startswith("FAIL") and said in data_dir, checked.stdout


@pytest.mark.parametrize("below", ["", "data"])
def test_a_data_dir_through_a_link_to_nowhere_names_the_link_and_where_it_leads(tmp_path, below):
    """DATA_DIR (or a folder above it) a link to a folder that is not there (a disk not mounted,
    a folder removed): "is not a folder moodbot can write to (File exists): create it", of a
    path `ls` shows. Not made where the link leads either: under a mount point, the journal would
    have gone to the wrong disk."""
    link, leads_to = tmp_path / "moodbot", tmp_path / "disk" / "moodbot"
    (tmp_path / "disk").mkdir()
    link.symlink_to(leads_to)
    said = f"{link} is a link to {leads_to}, which is not there (a disk not mounted?): mount it, or create {leads_to}"
    started = bot_run(tmp_path, link / below)
    assert started.returncode == 2 and said in started.stderr, started.stderr
    checked = bot_run(tmp_path, link / below, "--check")
    assert any(line.startswith("FAIL  data dir") and said in line for line in checked.stdout.splitlines()), checked.stdout
    assert not leads_to.exists()


FULL_LOG_SCRIPT = """
import logging, sys
from bot.logs import configure_logging

log_file = open("/dev/full", "a", encoding="utf-8")  # the console's log file, on a disk that is full
configure_logging("INFO", stream=log_file)
for n in range(3):
    logging.getLogger("bot.app").info("line %d", n)
"""


def test_a_log_file_on_a_full_disk_is_said_once_on_the_screen_not_a_traceback_a_line(tmp_path):
    """The console's log (DATA_DIR/moodbot.log) on a disk that filled while the bot ran: each line
    printed "--- Logging error ---", a traceback and the call stack, some 30 lines, over the
    console's chat. One line says it, once, naming the file."""
    done = subprocess.run([sys.executable, "-c", FULL_LOG_SCRIPT], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env=console_env(tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ("moodbot: its log /dev/full cannot be written (No space left on device): "
                           "its lines are lost until it can be\n"), done.stderr
