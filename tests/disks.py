"""A small disk of its own for a test's DATA_DIR: a tmpfs mounted over a folder, in a mount
namespace of the child process alone (`unshare`, as an unprivileged user may), so that a real file
system says "No space left on device" or "Read-only file system" to the code under test, and
nothing of the machine's is filled or remounted."""
from __future__ import annotations

import shlex
from pathlib import Path

KIB = 1024


def on_a_small_disk(folder: Path, argv: list[str], *, size_kib: int, fill_kib: int = 0,
                    read_only: bool = False) -> list[str]:
    """`argv` run with `folder` (made if missing) a tmpfs of `size_kib`, `fill_kib` of it taken
    by a file of its own, and remounted read-only if `read_only`."""
    folder.mkdir(parents=True, exist_ok=True)
    where = shlex.quote(str(folder))
    steps = [f"mount -t tmpfs -o size={size_kib}k tmpfs {where}"]
    if fill_kib:
        steps.append(f"dd if=/dev/zero of={where}/filler bs=1k count={fill_kib} status=none 2>/dev/null || true")
    if read_only:
        steps.append(f"mount -o remount,ro {where}")
    script = " && ".join(steps) + ' && exec "$@"'
    return ["unshare", "--map-root-user", "--mount", "sh", "-c", script, "sh", *argv]
