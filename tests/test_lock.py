"""constraints.txt (`make lock`): the releases `make run`, `make test` and the image install, so that
a release made since cannot change what the suite passed with (PyAV 18.1.1 dropped an encoder a test
used, and the CI run after it failed). yt-dlp is left out, with what its extras require."""
from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
EXTRAS = ("dev", "train", "embedded", "dask")  # what `make lock` installs
UNPINNED_ROOT = "yt-dlp"
YT_DLP_EXTRAS = ("default", "deno")  # as pyproject.toml asks for it
SEEDED = {"pip", "setuptools", "wheel"}  # what a venv is made with (torch needs setuptools): pip freeze leaves them out


def pins() -> dict[str, str]:
    found = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line).groups()
            found[canonicalize_name(name)] = version
    return found


def unlocked() -> set[str]:
    """The Makefile's UNLOCKED: what `make lock` leaves out."""
    names = re.search(r"^UNLOCKED\s*:=\s*(\S+)$", (REPO / "Makefile").read_text(), re.M).group(1)
    return {canonicalize_name(name) for name in names.split("|")}


def requirements(name: str, extras: tuple[str, ...]) -> set[str]:
    """What the installed `name` with `extras` requires here (this platform's markers), by name."""
    out = set()
    for text in metadata.distribution(name).requires or []:
        requirement = Requirement(text)
        if requirement.marker is None or any(requirement.marker.evaluate({"extra": extra})
                                             for extra in ("", *extras)):
            out.add(requirement)
    return out


def needed() -> set[str]:
    """Every package moodbot with every extra needs here, and theirs, but for yt-dlp's own."""
    seen: set[str] = set()
    waiting = list(requirements("moodbot", EXTRAS))
    while waiting:
        requirement = waiting.pop()
        name = canonicalize_name(requirement.name)
        if name == UNPINNED_ROOT or name in seen:
            continue
        seen.add(name)
        waiting += requirements(name, tuple(requirement.extras))
    return seen


def test_the_lock_pins_every_package_moodbot_needs_and_nothing_else():
    pinned, left_out = pins(), unlocked()
    assert sorted(needed() - set(pinned) - left_out - SEEDED) == []
    assert sorted(set(pinned) - needed()) == []  # none stale: a package no longer needed


def test_what_yt_dlp_requires_is_left_to_it():
    """A pinned certifi failed the install when yt-dlp raised its floor (certifi>=2026.10.19)."""
    of_yt_dlp = {canonicalize_name(r.name) for r in requirements("yt-dlp", YT_DLP_EXTRAS)}
    assert of_yt_dlp and sorted(of_yt_dlp & set(pins())) == []
    assert canonicalize_name(UNPINNED_ROOT) in unlocked() and of_yt_dlp <= unlocked()


def test_this_environment_holds_the_pinned_releases():
    """make test installed it with the lock: what runs the suite is what is pinned."""
    for name, version in pins().items():
        assert metadata.version(name) == version, name


def test_make_and_the_image_install_with_the_lock():
    makefile, dockerfile = (REPO / "Makefile").read_text(), (REPO / "Dockerfile").read_text()
    installs = re.findall(r"\$\(PIP\) install .*", makefile)
    assert len(installs) == 2 and all("-c constraints.txt" in line for line in installs)
    assert re.search(r"^COPY .*\bconstraints\.txt\b", dockerfile, re.M)
    assert re.search(r"^RUN pip install -c constraints\.txt ", dockerfile, re.M)
    ignored = [line for line in (REPO / ".dockerignore").read_text().splitlines() if not line.startswith("#")]
    assert not any("constraints" in line or line.strip() in ("*", "*.txt") for line in ignored)
