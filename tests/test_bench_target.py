"""`make bench` runs each benchmark as the Makefile names it: every command must at least start
(a benchmark run as a script once shadowed the `storage` package with benchmarks/storage.py)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench_commands() -> list[list[str]]:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^bench:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe, "the Makefile has a bench target"
    return [line.strip().replace("$(PY)", sys.executable).split() for line in recipe.group(1).splitlines()]


@pytest.mark.parametrize("command", bench_commands(), ids=lambda c: " ".join(c[1:]))
def test_each_benchmark_of_make_bench_starts(command):
    result = subprocess.run([*command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage" in result.stdout.lower()
