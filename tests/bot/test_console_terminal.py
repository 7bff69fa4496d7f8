"""The console as a person in a terminal has it: Ctrl-C ends the session as a shell expects (exit
status 130, the embedded database stopped)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.bot.test_console import REPO, moodbot_processes

SIGINT_STATUS = 128 + signal.SIGINT  # what a shell reports for a command ended by Ctrl-C


def console_env(data_dir) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MONGODB_URI", "TELEGRAM_TOKEN", "DISCORD_TOKEN", "SPOTIFY_CLIENT_ID")}
    env.update(DATA_DIR=str(data_dir), PYTHONPATH=str(REPO))
    return env


def test_ctrl_c_ends_the_console_with_status_130_and_stops_the_database(tmp_path):
    data_dir = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "bot"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=console_env(data_dir))
    try:
        assert proc.stdout.readline().startswith("moodbot console")  # up, and waiting for the user
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == SIGINT_STATUS, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "event=app.stopping" in (data_dir / "moodbot.log").read_text()
    assert moodbot_processes(str(data_dir)) == []

