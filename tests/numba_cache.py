"""librosa's numba functions compiled once per test run, not once per test process.

Each test process of a run (pytest-xdist) has a numba cache of its own (tests/conftest.py: processes
writing one cache at once read each other's half-written files). librosa compiles a dozen functions
at the import of its modules (librosa.util.utils, librosa.core.audio, librosa.core.pitch): 20-60 s
of one core on this machine, paid in every test process that touched librosa, each compiling the same
code. Now the first process to import numba has it compiled once, by one process on a cache of the
run's own (WARM_UP), under a lock; each process copies that cache into its own before numba reads it,
and compiles only what else it asks for, there. A warm-up that fails leaves each process to compile
its own, as before.
"""
from __future__ import annotations

import contextlib
import fcntl
import importlib.abc
import os
import shutil
import subprocess
import sys
from pathlib import Path

# What a test of librosa's numbers has compiled first: its stft, and so the import of the modules
# that compile their functions as they are imported.
WARM_UP = ("import numpy, librosa; "
           "librosa.feature.melspectrogram(y=numpy.zeros(22050, dtype=numpy.float32), sr=22050)")
DONE, FAILED = "done", "failed"  # in the warm cache, once the warm-up has ended


def _warm_dir(own_dir: Path) -> Path:
    return own_dir.parent / "warm"


@contextlib.contextmanager
def _run_lock(run_dir: Path):
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "warm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def seed(own_dir: Path) -> None:
    """Fills `own_dir`, this process's NUMBA_CACHE_DIR, from the run's warm cache, made first where
    no process of the run has made it yet (another process waits for it on the lock)."""
    warm = _warm_dir(own_dir)
    with _run_lock(own_dir.parent):
        if not (warm / DONE).exists() and not (warm / FAILED).exists():
            shutil.rmtree(warm, ignore_errors=True)
            made = subprocess.run([sys.executable, "-c", WARM_UP], env={**os.environ, "NUMBA_CACHE_DIR": str(warm)},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            warm.mkdir(exist_ok=True)
            (warm / (DONE if made.returncode == 0 else FAILED)).touch()
        if (warm / DONE).exists():  # else compiled here, as before
            shutil.copytree(warm, own_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(DONE))


class _BeforeNumba(importlib.abc.MetaPathFinder):
    """Seeds the process's cache as numba is first imported (librosa imports it only for the
    modules it compiles), and finds nothing itself. It stays on sys.meta_path: taken off it while
    the import system goes through that list, it would have the finder after it skipped."""

    def __init__(self, own_dir: Path) -> None:
        self.own_dir: Path | None = own_dir

    def find_spec(self, fullname, path, target=None):
        if fullname == "numba" and self.own_dir is not None:
            own_dir, self.own_dir = self.own_dir, None
            seed(own_dir)
        return None  # found by the usual finders


def seed_before_numba(own_dir: str) -> None:
    if "numba" not in sys.modules:
        sys.meta_path.insert(0, _BeforeNumba(Path(own_dir)))


def clean_up(own_dir: str) -> None:
    """This process's cache removed; the run's folder too (its warm cache with it) once no other
    process's cache is left in it. A process of the run that imports numba after that makes the
    warm cache again."""
    own, run_dir = Path(own_dir), Path(own_dir).parent
    shutil.rmtree(own, ignore_errors=True)
    with contextlib.suppress(OSError), _run_lock(run_dir):
        if all(entry.name in ("warm", "warm.lock") for entry in run_dir.iterdir()):
            shutil.rmtree(run_dir, ignore_errors=True)
