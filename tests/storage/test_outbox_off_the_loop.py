"""The outbox's file is read and decoded in a worker thread, not on the event loop: it is read on
a user's journal answer (is one of theirs waiting?), while the database is down (is one waiting
for this prompt?), by /export and /forget, and by the periodic drainer."""
from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import storage.outbox
from storage.models import UserRef
from storage.outbox import OUTBOX_FILENAME, JournalOutbox, JournalWrite, JournalWriter, entry_to_line
from tests.loop_probes import calls_on_this_thread
from tests.storage.test_outbox import dead_database, entry

HELD = 5000  # answers waiting for the database, of 500 users
USER = UserRef("telegram", "7")  # 10 of them are this user's
# Reading the file, or an entry from one of its lines, or whose line it is: per line of the file.
PER_LINE = {"_read", "_readable", "entry_from_line", "is_users_line"}


def hold(path: Path, *, torn: bool = False) -> None:
    lines = [entry_to_line(replace(entry(n, UserRef("telegram", str(n % 500))), note="word " * 40))
             for n in range(HELD)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(lines) + (lines[7][:80] + b"\n" if torn else b""))


async def test_no_call_reads_or_decodes_the_outbox_on_the_event_loop(tmp_path):
    """queued (each journal answer asks), append_unless_queued (an answer while the database is
    down), held and cut_short (/export), remove (/forget) decoded every line of the file on the
    event loop, and pending (the drainer, every 30 s) read the whole file there."""
    outbox = JournalOutbox(tmp_path / OUTBOX_FILENAME)
    hold(outbox.path, torn=True)
    torn = outbox.path.read_bytes().splitlines(keepends=True)[-1]
    outbox.rejected_path.write_bytes(torn)  # set aside by a drain stopped before it rewrote the outbox
    down = await dead_database()
    writer = JournalWriter(down.journal, outbox, down.prompts)
    drainer = None
    try:
        with calls_on_this_thread(storage.outbox, PER_LINE.__contains__) as on_loop:
            assert len(await outbox.queued(USER)) == 10
            assert await writer.drain_for(USER) == 0  # the database is down: all kept
            assert await writer.add_or_queue(entry(HELD + 1, USER)) is JournalWrite.QUEUED
            assert len(await writer.held(USER)) == 11
            assert len(await writer.cut_short(USER)) == 1
            before = outbox.path.stat().st_ino
            drainer = asyncio.create_task(writer.run_drainer(interval=3600))
            deadline = time.monotonic() + 10
            # Its first round: is anything waiting, then a drain the database stops, which rewrites the file.
            while outbox.path.stat().st_ino == before and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert outbox.path.stat().st_ino != before
            counted = list(on_loop)
            assert await writer.forget(USER) == 13  # 11 answers, the torn one in both files
    finally:
        if drainer is not None:
            drainer.cancel()
        await down.close()
    # The drain decodes a line at a time between its writes to the database (a step of
    # microseconds each): the only per-line work left on the loop.
    assert [name for name in counted if name != "entry_from_line"] == []
    assert on_loop == counted


async def test_only_lines_holding_the_users_id_are_decoded_and_the_user_is_still_read_from_each(tmp_path):
    """A line is passed over undecoded when it lacks the user's id as the outbox writes it; one
    holding it only in another user's words stays that user's, and an id JSON escapes is found."""
    quoted = UserRef("telegram", 'a"b\\c')
    outbox = JournalOutbox(tmp_path / OUTBOX_FILENAME)
    hers = replace(entry(1, USER), note="for 70")
    others = replace(entry(2, UserRef("telegram", "70")), note='I said "7" and "a\\"b\\\\c"')
    theirs = entry(3, quoted)
    for queued in (hers, others, theirs):
        await outbox.append(queued)
    await outbox.append(replace(entry(4, quoted), note="cut"))
    with open(outbox.path, "ab") as f:  # torn after the id
        f.write(entry_to_line(entry(5, quoted))[:60] + b"\n")
    assert await outbox.held(USER) == [hers]
    assert await outbox.held(quoted) == [theirs, replace(entry(4, quoted), note="cut")]
    assert await outbox.cut_short(USER) == []
    assert await outbox.cut_short(quoted) == [entry_to_line(entry(5, quoted))[:60].decode()]
    assert await outbox.remove(USER) == 1
    assert await outbox.remove(quoted) == 3
    assert await outbox.held(UserRef("telegram", "70")) == [others]
