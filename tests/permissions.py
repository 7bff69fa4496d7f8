"""File modes that bind root too: for the tests of what a user is told of a file moodbot may not
read, or a folder it may not write. These tests may run as root (CI does), and root reads a file of
mode 000 and writes into a folder of mode 555 all the same, through two capabilities. A test runs
the code under test in a child process started with those capabilities gone, so that a real file's
real mode refuses it, as it refuses any other user; nothing of moodbot's is faked."""
from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
from pathlib import Path
from typing import Iterator

# How a refusal names the user moodbot runs as (the test's, in its child process): the image's
# uid 10001 is not the host's user, whose files a bind-mounted DATA_DIR holds.
MOODBOTS_USER = f"moodbot's user ({pwd.getpwuid(os.geteuid()).pw_name}, uid {os.geteuid()})"

CAP_DAC_OVERRIDE = 1  # linux/capability.h: read or write where a file's mode forbids it
CAP_DAC_READ_SEARCH = 2  # linux/capability.h: read or list where a file's mode forbids it
PR_CAPBSET_DROP = 24  # linux/prctl.h


def bound_by_file_modes() -> None:
    """A `preexec_fn` for subprocess: in the child, before it starts its program. Dropped from the
    bounding set, the capabilities are gone from what the program is started with (the child
    itself still holds them until it does), and file modes bind it as they bind any user. Nothing
    to drop for another user, whom the modes bind already."""
    if os.geteuid() != 0:
        return
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if prctl(PR_CAPBSET_DROP, capability, 0, 0, 0):
            raise OSError(ctypes.get_errno(), f"prctl(PR_CAPBSET_DROP, {capability})")


@contextlib.contextmanager
def open_data_dir(parent: Path) -> Iterator[Path]:
    """`parent/data`, a DATA_DIR made before the bot as `mkdir data` makes it (0755), and the usual
    umask (022) while inside: what moodbot writes there is as open as it leaves it."""
    data_dir = parent / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    before = os.umask(0o022)
    try:
        yield data_dir
    finally:
        os.umask(before)
