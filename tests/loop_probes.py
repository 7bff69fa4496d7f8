"""Probes for the tests that keep work off the event loop: which calls the loop's own thread makes,
how much of the database's replies it decodes, and how many objects the garbage collector comes to
track (its full passes stop every thread, the event loop's with them)."""
from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType, ModuleType

import bson


@contextlib.contextmanager
def _calls_watched(on_call: Callable[[FrameType], None]) -> Iterator[None]:
    """`on_call` of the frame of each Python function called within the block, on this thread only
    (in an async test, the event loop's): `sys.setprofile` sees no other thread's calls."""
    def watch(frame, event, _arg):
        if event == "call":
            on_call(frame)

    sys.setprofile(watch)
    try:
        yield
    finally:
        sys.setprofile(None)


@contextlib.contextmanager
def calls_on_this_thread(module: ModuleType, wanted: Callable[[str], bool]) -> Iterator[list[str]]:
    """The names of `module`'s functions called within the block, of those `wanted`, on this thread
    only (in an async test, the event loop's): a worker thread's are not counted."""
    called: list[str] = []

    def on_call(frame: FrameType) -> None:
        code = frame.f_code
        if code.co_filename == module.__file__ and wanted(code.co_name):
            called.append(code.co_name)

    with _calls_watched(on_call):
        yield called


@contextlib.contextmanager
def bson_decoded_on_this_thread() -> Iterator[list[int]]:
    """The sizes in bytes of the database's replies PyMongo decoded into dicts within the block, on
    this thread only (in an async test, the event loop's, which each decoding holds: the C decoder
    keeps the interpreter for a reply's every document at once). A batch read raw
    (`find_raw_batches`) is handed over as bytes, not counted."""
    sizes: list[int] = []
    decoder = bson._decode_all_selective.__code__

    def on_call(frame: FrameType) -> None:
        if frame.f_code is decoder:
            sizes.append(len(frame.f_locals["data"]))

    with _calls_watched(on_call):
        yield sizes


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
