"""Files written so that a crash leaves them whole: appends and replacements fsynced, the folder
too where a file is created or renamed. Shared by the journal's outbox and the inbox's spool."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["append_durably", "fsync_dir", "read_bytes", "replace_durably"]

PRIVATE_FILE = 0o600  # users' words: the bot's user's alone, whatever the umask or DATA_DIR's mode


def _opened(path: Path, flags: int):
    fd = os.open(path, flags | os.O_CREAT, PRIVATE_FILE)
    with contextlib.suppress(OSError):  # best effort: one not ours to change is written as before
        os.fchmod(fd, PRIVATE_FILE)  # one an older version made (the umask's 0644) narrowed too
    return os.fdopen(fd, "a+b" if flags & os.O_APPEND else "wb")


def fsync_dir(directory: Path) -> None:
    """Make a create or rename durable, not only the file's bytes."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_durably(path: Path, data: bytes) -> None:
    existed, size = path.exists(), None
    try:
        with _opened(path, os.O_RDWR | os.O_APPEND) as f:
            if (size := f.seek(0, os.SEEK_END)) > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    # A crash tore the last append: start a line of our own rather than finish that one.
                    data = b"\n" + data
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        # The disk full (or failing) in the middle: none of it stays (once closed, its buffer with
        # it), not its first lines whole while the caller takes the append for failed.
        if size is not None:
            with contextlib.suppress(OSError):
                os.truncate(path, size)
        raise
    if not existed:
        fsync_dir(path.parent)


def replace_durably(path: Path, data: bytes) -> None:
    temp = path.with_name(path.name + ".tmp")
    try:
        with _opened(temp, os.O_WRONLY | os.O_TRUNC) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()  # what fit of it: not left beside the file
        raise
    fsync_dir(path.parent)


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
