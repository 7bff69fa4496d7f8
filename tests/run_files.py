"""Files made once per test run, not once per test process.

A session fixture runs in each of pytest-xdist's processes: `audio_root` (the long song in seven
containers, ~10 s of ffmpeg) was made four times a run, each process beside the others. `made_once`
makes it in the run's own folder (the parent of each process's basetemp; the basetemp itself when
there is one process), under a lock: the first process to ask makes it, the others wait for it and
read the same files. Those who use them must not change them.
"""
from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import Callable

DONE = ".made"  # in the folder, once it is whole


def made_once(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """The folder `name` of this run, made by `make(folder)` in the first process that asks."""
    base = tmp_path_factory.getbasetemp()
    run_dir = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = run_dir / f"once-{name}"
    with open(run_dir / f"once-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / DONE).exists():
            shutil.rmtree(folder, ignore_errors=True)  # a process that failed making it left it half made
            folder.mkdir()
            make(folder)
            (folder / DONE).touch()
    return folder
