"""Temporary folders for downloads and attachments, made and deleted off the event loop.

Creating or deleting a file is a metadata write that can wait on the filesystem's journal: in a
burst of 50 uncached songs, `shutil.rmtree` of one download's folder, run in the event loop,
stalled every user of the bot for 184 and 214 ms (caught by faulthandler's watchdog, twice in 13
bursts). The folder operations run in a small thread pool of their own, so they never queue
behind Spotify lookups in asyncio's default executor.
"""
from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.threads import ThreadPool

FILE_THREADS = 2
SAFE_SUFFIX = re.compile(r"\.[a-z0-9]{1,8}")
# The folders that hold a user's file while it is heard: a Telegram or Discord attachment, and the
# link to it that a shared listening hears (bot/usecases/mood.py).
USER_FILE_PREFIXES = ("moodbot-tg-", "moodbot-dc-", "moodbot-file-")
# A download's folder: the section of a song fetched for a user's link or name while it is heard
# (bot/sources/audio.py), a file from the user's own host where they linked one.
DOWNLOAD_PREFIX = "moodbot-audio-"
# What a start deletes where a killed process left it (`remove_stale`). Not the inference workers'
# scratch (`moodbot-workers-`): one per running bot, untouched for hours while it idles.
STALE_PREFIXES = (*USER_FILE_PREFIXES, DOWNLOAD_PREFIX)
# A folder left this long ago was left by a process that stopped without deleting it: none is used
# for minutes (a download ends after 5 s without data, a listening at INFERENCE_TIMEOUT_S).
STALE_AFTER_S = 3600.0


def local_name(filename: str) -> str:
    """The name a user's file is saved under in its temporary folder. Chat platforms keep the
    sender's name, of any length ("夜に駆ける" × 20 is past a file system's 255 bytes), and even
    "..": only a plain suffix of it is kept, which tells the decoder the format."""
    suffix = Path(filename).suffix.lower()
    return "audio" + (suffix if SAFE_SUFFIX.fullmatch(suffix) else "")

_FILES = ThreadPool(FILE_THREADS, "moodbot-files")


def remove_stale(parent: Path | None = None, *, older_than_s: float = STALE_AFTER_S) -> int:
    """Delete the folders of users' files and downloads (STALE_PREFIXES) that a process killed
    while it held them left behind (SIGKILL, an OOM kill, a power cut: `temporary_folder` never
    deleted them), in `parent` ($TMPDIR by default): a user's upload, their voice memo, stayed there
    for good, past their /forget, and so, until 2026-12-08, did a download's section (up to
    MAX_AUDIO_BYTES each). Only those untouched for `older_than_s`: another bot on this machine may
    be using a newer one. Returns how many went."""
    folder = Path(parent or tempfile.gettempdir())
    before = time.time() - older_than_s
    removed = 0
    try:
        entries = list(folder.iterdir())
    except OSError:
        return 0
    for entry in entries:
        try:
            stale = (entry.name.startswith(STALE_PREFIXES) and entry.is_dir() and not entry.is_symlink()
                     and entry.stat().st_mtime < before)
        except OSError:  # gone meanwhile
            continue
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed += not entry.exists()
    return removed


def _make_folder(prefix: str, parent: Path | None) -> Path:
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _remove_once_made(made: asyncio.Future) -> None:
    """For a folder whose creation was abandoned (the caller was cancelled): delete it once made."""
    if not made.cancelled() and made.exception() is None:
        _FILES.submit(_remove, made.result())


@asynccontextmanager
async def temporary_folder(prefix: str, parent: Path | None = None) -> AsyncIterator[Path]:
    """A new empty folder, deleted with everything in it when the block ends, however it ends.

    A cancellation while the folder is being made or deleted does not leave it behind."""
    making = _FILES.run(_make_folder, prefix, parent)
    try:
        folder = await asyncio.shield(making)
    except asyncio.CancelledError:
        making.add_done_callback(_remove_once_made)
        raise
    try:
        yield folder
    finally:
        await asyncio.shield(_FILES.run(_remove, folder))


async def write_file(path: Path, data: bytes) -> None:
    """`data` written to `path` in the files' threads: a 25 MB attachment written on the event
    loop stalled every user for up to 125 ms."""
    await _FILES.run(path.write_bytes, data)
