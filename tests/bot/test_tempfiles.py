"""Temporary folders are made and deleted off the event loop, and deleted however the block ends."""
from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time

import pytest

from bot.tempfiles import temporary_folder


async def test_the_folder_exists_inside_the_block_and_is_gone_after(tmp_path):
    async with temporary_folder("moodbot-t-", tmp_path / "nested" / "parent") as folder:
        assert folder.is_dir() and folder.parent == tmp_path / "nested" / "parent"
        assert folder.name.startswith("moodbot-t-")
        (folder / "song.ogg").write_bytes(b"OggS" + bytes(1000))
    assert not folder.exists()


async def test_the_folder_is_deleted_when_the_block_fails(tmp_path):
    with pytest.raises(ValueError):
        async with temporary_folder("moodbot-t-", tmp_path) as folder:
            (folder / "part").write_bytes(b"x")
            raise ValueError("boom")
    assert not folder.exists()


async def test_a_cancelled_block_still_deletes_its_folder(tmp_path):
    entered = asyncio.Event()
    made = []

    async def body():
        async with temporary_folder("moodbot-t-", tmp_path) as folder:
            made.append(folder)
            (folder / "part").write_bytes(b"x")
            entered.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(body())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(200):  # the deletion runs in a thread: give it a moment
        if not made[0].exists():
            break
        await asyncio.sleep(0.01)
    assert not made[0].exists()


async def test_a_slow_deletion_does_not_stall_the_event_loop(tmp_path, monkeypatch):
    """A deletion that waits on the filesystem (here: shutil.rmtree made to take 0.3 s) runs in
    a thread, and the event loop keeps ticking meanwhile."""
    real_rmtree = shutil.rmtree
    threads = []

    def slow_rmtree(path, *args, **kwargs):
        threads.append(threading.get_ident())
        time.sleep(0.3)
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", slow_rmtree)
    ticks = []

    async def ticker():
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    async with temporary_folder("moodbot-t-", tmp_path) as folder:
        pass
    ticking.cancel()
    assert threads and threads[0] != threading.get_ident()
    assert not folder.exists()
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(ticks) >= 10 and max(gaps) < 0.15  # the loop ran all through the 0.3 s deletion


async def test_a_block_cancelled_while_its_folder_is_being_made_leaves_nothing(tmp_path, monkeypatch):
    real_mkdtemp = tempfile.mkdtemp
    started = threading.Event()
    made = []

    def slow_mkdtemp(*args, **kwargs):
        started.set()
        time.sleep(0.2)
        made.append(real_mkdtemp(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", slow_mkdtemp)

    async def body():
        async with temporary_folder("moodbot-t-", tmp_path):
            raise AssertionError("not reached: cancelled while the folder was being made")

    task = asyncio.create_task(body())
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadline = time.monotonic() + 5
    while not (made and not any(tmp_path.iterdir())) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)  # made after the cancellation, then removed in a thread
    assert made and not any(tmp_path.iterdir())
