"""Probes for the tests that keep work off the event loop: which calls the loop's own thread makes,
and how many objects the garbage collector comes to track (its full passes stop every thread, the
event loop's with them)."""
from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType


@contextlib.contextmanager
def calls_on_this_thread(module: ModuleType, wanted: Callable[[str], bool]) -> Iterator[list[str]]:
    """The names of `module`'s functions called within the block, of those `wanted`, on this thread
    only (in an async test, the event loop's): `sys.setprofile` sees no other thread's calls, so a
    worker thread's are not counted."""
    called: list[str] = []

    def watch(frame, event, _arg):
        code = frame.f_code
        if event == "call" and code.co_filename == module.__file__ and wanted(code.co_name):
            called.append(code.co_name)

    sys.setprofile(watch)
    try:
        yield called
    finally:
        sys.setprofile(None)


@dataclass
class Growth:
    most: int = 0  # the most objects the oldest generation held beyond what it held at the start


@contextlib.contextmanager
def oldest_generation_growth() -> Iterator[Growth]:
    """How many more objects the collector tracked in its oldest generation within the block, at
    most: the objects that outlive its younger generations (counted as each pass of generation 1
    ends, its survivors having just joined the oldest), what its full passes have to go over."""
    gc.collect()
    baseline = len(gc.get_objects(generation=2))
    growth = Growth()

    def after(phase, info):
        if phase == "stop" and info["generation"] == 1:  # its survivors have just joined the oldest
            growth.most = max(growth.most, len(gc.get_objects(generation=2)) - baseline)

    gc.callbacks.append(after)
    try:
        yield growth
    finally:
        gc.callbacks.remove(after)
