"""`python -m inference classify` where its output cannot be written: a full disk, or none open."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.inference.test_predict import clips, tiny_weights  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(120)
EXIT_OUTPUT_FAILED = 74  # EX_IOERR of sysexits.h: neither "some file failed" (1) nor a Python crash


def classify_into(stdout, weights, *files: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "inference", "classify", "--json", "--model", "ann", "--workers", "1",
         "--weights", str(weights), *files],
        cwd=REPO, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=100,
    )


def test_a_full_disk_under_the_output_stops_the_run_in_one_line_with_its_own_status(tiny_weights, clips):
    """`classify --json *.ogg > results.jsonl` on a full disk ended in an OSError traceback and
    status 1, which says that some file failed and the others got their lines."""
    with open("/dev/full", "w") as full:  # every write: ENOSPC
        done = classify_into(full, tiny_weights, *map(str, clips))
    assert done.returncode == EXIT_OUTPUT_FAILED, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: the output cannot be written (No space left on device): the run stopped there"]


def test_a_run_with_no_output_open_says_so_rather_than_print_nothing(tiny_weights, clips):
    """`classify song.ogg >&-` (a job runner that closes standard output) printed nothing and exited
    0: each line went nowhere, sys.stdout being None."""
    done = classify_into(subprocess.DEVNULL, tiny_weights, str(clips[0]))  # the control: a line, 0
    assert done.returncode == 0, done.stderr
    closed = subprocess.run(
        f"{sys.executable} -m inference classify --model ann --weights {tiny_weights} {clips[0]} >&-",
        shell=True, cwd=REPO, capture_output=True, text=True, timeout=100,
    )
    assert closed.returncode == EXIT_OUTPUT_FAILED, closed.stderr
    assert closed.stderr.strip() == "error: the output cannot be written (standard output is closed)"
