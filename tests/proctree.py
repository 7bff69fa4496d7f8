"""The processes a process started, read from Linux's /proc: for the tests that kill a bot outright
and check that nothing it started is left running."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

PROC = Path("/proc")
GONE_WITHIN_S = 10.0  # generous: the workers end within a fraction of a second of the bot
POLL_S = 0.05
REPOSITORY = Path(__file__).resolve().parents[1]


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of `pid`, or None if there is no such process."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after the name, which may hold spaces and ")"
    return fields[0], int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """{pid: start time} of every live process below `root`, children and theirs."""
    children: dict[int, list[int]] = defaultdict(list)
    started: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None and stat[0] != "Z":
            children[stat[1]].append(int(entry.name))
            started[int(entry.name)] = stat[2]
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for child in children[todo.pop()]:
            found[child] = started[child]
            todo.append(child)
    return found


def running(processes: dict[int, int]) -> list[int]:
    """Those of `processes` ({pid: start time}) still running: a zombie has ended, and a pid
    that now names a process started later is another process."""
    alive = []
    for pid, start in processes.items():
        stat = _stat(pid)
        if stat is not None and stat[0] != "Z" and stat[2] == start:
            alive.append(pid)
    return alive


def still_running_after(processes: dict[int, int], within_s: float = GONE_WITHIN_S) -> list[int]:
    deadline = time.monotonic() + within_s
    while (alive := running(processes)) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    return alive


def kill_outright(bot: subprocess.Popen) -> None:
    """SIGKILL `bot`, as the OOM killer would: it runs no cleanup."""
    bot.kill()
    bot.wait()
    if bot.stdout is not None:
        bot.stdout.close()


def end_all(processes: dict[int, int]) -> None:
    """Kill those of `processes` still running, so that a failed test leaves nothing behind."""
    for pid in running(processes):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_bot(script: str, ready: str, *args: str) -> subprocess.Popen:
    """Run `script` (python -c, with `args`) from the repository root; return once it has
    printed the line `ready`."""
    bot = subprocess.Popen([sys.executable, "-c", script, *args], cwd=REPOSITORY, stdout=subprocess.PIPE,
                           text=True)
    for line in bot.stdout:
        if line.strip() == ready:
            return bot
    bot.wait()
    raise AssertionError(f"the script ended (exit status {bot.returncode}) without printing {ready!r}")
