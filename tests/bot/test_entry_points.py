"""`python -m bot` and the `moodbot` command pip installs ([project.scripts] in pyproject.toml) are
one program: the command ran `bot.__main__:main` alone, without the exit handling `python -m bot`
wraps it in (a Ctrl-C outside the bot's own run, a second Ctrl-C as it exits)."""
from __future__ import annotations

import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.bot.test_console import console_env
from tests.dbserver import free_port

REPO = Path(__file__).resolve().parents[2]


def console_script(name: str) -> list[str]:
    """The command pip installs as `name`, as its wrapper runs the target pyproject names."""
    target = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"][name]
    module, function = target.split(":")
    return [sys.executable, "-c", f"import sys\nfrom {module} import {function}\nsys.exit({function}())"]


@pytest.mark.parametrize("command", [[sys.executable, "-m", "bot"], console_script("moodbot")],
                         ids=["python -m bot", "moodbot"])
def test_a_ctrl_c_during_the_check_exits_130_without_a_traceback(tmp_path, command):
    """Ctrl-C while --check waits for a database that does not answer: `python -m bot` exits 130,
    silent; the `moodbot` command printed a KeyboardInterrupt traceback and died of the signal."""
    env = {**console_env(tmp_path / "data"), "MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/moodbot"}
    check = subprocess.Popen([*command, "--check"], cwd=tmp_path, env=env, text=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert check.stdout.readline().startswith("OK    settings")  # the database's 5 s wait follows
        check.send_signal(signal.SIGINT)
        out, err = check.communicate(timeout=60)
    finally:
        check.kill()
    assert (check.returncode, err) == (130, ""), err[-2000:]
