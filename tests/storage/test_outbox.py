"""Journal entries written while the database is down wait in the outbox, then arrive once."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from storage.database import Database
from storage.models import JournalEntry, UserRef
from storage.outbox import (
    OUTBOX_FILENAME,
    JournalOutbox,
    JournalWrite,
    JournalWriter,
    entry_from_line,
    entry_to_line,
)
from tests.dbserver import DBServer, free_port
from tests.storage.conftest import T0

ALICE = UserRef("chat", "alice")
FAST_FAIL_MS = 300  # how long a write waits for a dead server before it is queued


def entry(n: int, who: UserRef = ALICE) -> JournalEntry:
    return JournalEntry(user=who, local_date=date(2026, 1, 1) + timedelta(days=n),
                        prompt_id=f"prompt-{n}", phrase="Song?", reply_text=f"reply {n}",
                        track_key=f"spotify:{n}", track_title=f"Song {n}", mood="happy",
                        valence=0.5, arousal=0.25, created_at=T0 + timedelta(days=n),
                        note="é ✓", place=None if n % 2 else "chat:g1")


async def stored_prompt_ids(db: Database, who: UserRef = ALICE) -> list[str]:
    docs = await db.db["journal"].find({"platform": who.platform, "user_id": who.user_id}).to_list()
    return sorted(doc["prompt_id"] for doc in docs)


async def dead_database() -> Database:
    uri = f"mongodb://127.0.0.1:{free_port()}/?retryWrites=false"
    return await Database.connect(uri, "down", server_selection_timeout_ms=FAST_FAIL_MS,
                                  verify=False)


def test_a_line_round_trips_an_entry():
    assert entry_from_line(entry_to_line(entry(3))) == entry(3)
    assert entry_from_line(entry_to_line(entry(4))) == entry(4)


# A line exactly as the outbox wrote it until 2026-11-24 (fd33d16, before 1d5b3b7): the user's
# platform and id at the top level instead of under "user".
OLD_FORMAT_LINE = (
    '{"platform": "chat", "user_id": "alice", "local_date": "2026-11-24", "prompt_id": "p-old", '
    '"phrase": "On the way home today, the song in my head was…", "reply_text": "Creep", '
    '"track_key": "spotify:6b2oQwSGFkzsMtQruIWm2p", "track_title": "Creep", "mood": "sad", '
    '"valence": -0.62, "arousal": -0.25, "created_at": "2026-11-24T16:05:09+00:00", '
    '"note": "rainy bus", "place": "chat:g1"}\n'
).encode("utf-8")
OLD_FORMAT_ENTRY = JournalEntry(
    user=ALICE, local_date=date(2026, 11, 24), prompt_id="p-old",
    phrase="On the way home today, the song in my head was…", reply_text="Creep",
    track_key="spotify:6b2oQwSGFkzsMtQruIWm2p", track_title="Creep", mood="sad",
    valence=-0.62, arousal=-0.25, created_at=datetime(2026, 11, 24, 16, 5, 9, tzinfo=timezone.utc),
    note="rainy bus", place="chat:g1")


def test_a_line_in_the_outboxs_first_format_is_read():
    assert entry_from_line(OLD_FORMAT_LINE) == OLD_FORMAT_ENTRY


async def test_an_answer_queued_in_the_first_format_is_delivered_once(db: Database, tmp_path, caplog):
    """An outbox left by a bot from before the format change (user fields at the top level)
    still delivers its answers; a line that is truly torn is still set aside, with a log line."""
    path = tmp_path / OUTBOX_FILENAME
    path.write_bytes(OLD_FORMAT_LINE + OLD_FORMAT_LINE[:50] + b"\n")
    outbox = JournalOutbox(path)
    await outbox.append(entry(1))
    assert [e.prompt_id for e in await outbox.queued(ALICE)] == ["p-old", "prompt-1"]
    assert outbox.pending() == 3

    with caplog.at_level(logging.ERROR, logger="storage.outbox"):
        assert await outbox.drain(db.journal) == 2
    assert await stored_prompt_ids(db) == ["p-old", "prompt-1"]
    assert [e for e in await db.journal.list(ALICE, limit=10) if e.prompt_id == "p-old"] == [OLD_FORMAT_ENTRY]
    assert outbox.pending() == 0
    assert outbox.rejected_path.read_bytes() == OLD_FORMAT_LINE[:50] + b"\n"
    unreadable = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(unreadable) == 1 and unreadable[0].startswith("outbox line 1 is unreadable, set aside:")
    assert await outbox.drain(db.journal) == 0
    assert await db.journal.count(ALICE) == 2


async def test_forget_removes_an_answer_queued_in_the_first_format(tmp_path):
    path = tmp_path / OUTBOX_FILENAME
    path.write_bytes(OLD_FORMAT_LINE)
    outbox = JournalOutbox(path)
    assert await outbox.held(ALICE) == [OLD_FORMAT_ENTRY]
    assert await outbox.remove(ALICE) == 1
    assert path.read_bytes() == b""


async def test_add_or_queue_stores_directly_when_the_database_is_up(db: Database, tmp_path):
    writer = JournalWriter(db.journal, JournalOutbox.in_data_dir(tmp_path), db.prompts)
    assert await writer.add_or_queue(entry(1)) is JournalWrite.STORED
    assert await writer.add_or_queue(entry(1)) is JournalWrite.DUPLICATE
    assert writer.outbox.pending() == 0
    assert not (tmp_path / OUTBOX_FILENAME).exists()


async def test_entries_queue_while_down_and_drain_once_back(db: Database, tmp_path):
    outbox = JournalOutbox(tmp_path / "nested" / OUTBOX_FILENAME)
    down = await dead_database()
    try:
        writer = JournalWriter(down.journal, outbox, down.prompts)
        for n in range(3):
            assert await writer.add_or_queue(entry(n)) is JournalWrite.QUEUED
        assert outbox.pending() == 3
        assert await outbox.drain(down.journal) == 0  # still down: nothing lost
        assert outbox.pending() == 3
    finally:
        await down.close()
    assert await outbox.drain(db.journal) == 3
    assert outbox.pending() == 0
    assert await db.journal.list(ALICE, limit=10) == [entry(2), entry(1), entry(0)]


async def test_drain_is_idempotent_when_entries_are_already_stored(db: Database, tmp_path):
    """A crash after writing to the database but before truncating the outbox re-sends."""
    outbox = JournalOutbox(tmp_path / OUTBOX_FILENAME)
    for n in range(3):
        await outbox.append(entry(n))
    await db.journal.add(entry(1))
    assert await outbox.drain(db.journal) == 3
    for n in range(3):
        await outbox.append(entry(n))
    assert await outbox.drain(db.journal) == 3
    assert await stored_prompt_ids(db) == ["prompt-0", "prompt-1", "prompt-2"]


async def test_a_drained_entry_marks_its_prompt_answered(db: Database, tmp_path):
    """An answer saved from the outbox answers its prompt, as one saved directly does: left open,
    the prompt would take the user's next message, which would be heard only to be refused. It is
    marked at the answer's own time; an entry found already stored marks its prompt too."""
    for n in range(3):
        await db.prompts.record_sent(ALICE, f"prompt-{n}", "Song?", entry(n).local_date,
                                     entry(n).created_at - timedelta(minutes=5), "alice", f"m{n}")
    writer = JournalWriter(db.journal, JournalOutbox.in_data_dir(tmp_path), db.prompts)
    await db.journal.add(entry(1))  # a crash after writing it, before the outbox was truncated
    for n in range(2):
        await writer.outbox.append(entry(n))

    assert await writer.drain() == 2
    answered = [(await db.prompts.find_by_message("chat", "alice", f"m{n}")).answered_at for n in range(3)]
    assert answered == [entry(0).created_at, entry(1).created_at, None]
    assert (await db.prompts.latest_open(ALICE)).prompt_id == "prompt-2"


async def test_a_torn_line_is_set_aside_and_the_rest_delivered(db: Database, tmp_path):
    path = tmp_path / OUTBOX_FILENAME
    outbox = JournalOutbox(path)
    await outbox.append(entry(0))
    with open(path, "ab") as f:  # a crash in the middle of an append
        f.write(entry_to_line(entry(1))[:40])
    assert await outbox.drain(db.journal) == 1
    assert path.read_bytes() == b""
    assert path.with_name(path.name + ".rejected").read_bytes().startswith(
        entry_to_line(entry(1))[:40])
    assert await stored_prompt_ids(db) == ["prompt-0"]


async def test_an_entry_queued_after_a_torn_line_is_delivered_not_glued_to_it(db: Database, tmp_path):
    """A crash mid-append leaves a line without its newline; the next append (after the restart)
    must start a line of its own, or the entry the user was told is saved is set aside with it."""
    path = tmp_path / OUTBOX_FILENAME
    with open(path, "wb") as f:
        f.write(entry_to_line(entry(0))[:40])
    outbox = JournalOutbox(path)
    await outbox.append(entry(1))
    assert [e.prompt_id for e in await outbox.queued(ALICE)] == ["prompt-1"]
    assert await outbox.drain(db.journal) == 1
    assert await stored_prompt_ids(db) == ["prompt-1"]
    assert outbox.rejected_path.read_bytes() == entry_to_line(entry(0))[:40] + b"\n"


async def test_an_entry_the_database_refuses_is_set_aside(db: Database, tmp_path):
    outbox = JournalOutbox(tmp_path / OUTBOX_FILENAME)
    bad = entry(0)
    bad.valence = 7.0  # out of [-1, 1]: the validator refuses it, forever
    await outbox.append(bad)
    await outbox.append(entry(1))
    assert await outbox.drain(db.journal) == 1
    assert outbox.pending() == 0
    assert await stored_prompt_ids(db) == ["prompt-1"]


async def test_a_drain_does_not_read_an_answer_still_being_appended(db: Database, tmp_path):
    """The drain read its snapshot without the appends' lock: an append half on disk was set aside
    as a torn line, and its rest queued again as junk (an answer lost, its note left behind where
    /forget does not look). Here an append is half written, under the lock, when a drain starts."""
    outbox = JournalOutbox(tmp_path / OUTBOX_FILENAME)
    await outbox.append(entry(0))
    line = entry_to_line(entry(1))
    async with outbox._lock:  # an append under way, as `append` holds it
        with open(outbox.path, "ab") as f:
            f.write(line[:40])
            f.flush()
            drained = asyncio.create_task(outbox.drain(db.journal))
            await asyncio.sleep(0.2)
            f.write(line[40:])
    assert await drained + await outbox.drain(db.journal) == 2
    assert await stored_prompt_ids(db) == ["prompt-0", "prompt-1"]
    assert outbox.pending() == 0 and not outbox.rejected_path.exists()


async def test_an_answer_set_aside_where_it_cannot_be_written_stays_in_the_outbox(db: Database, tmp_path):
    """The drain rewrote the outbox without the refused entry, then wrote it to the set-aside file:
    a crash, or a set-aside file it cannot write (here a folder in its place), between the two
    lost it. It is set aside first now."""
    outbox = JournalOutbox(tmp_path / OUTBOX_FILENAME)
    bad = entry(0)
    bad.valence = 7.0  # out of [-1, 1]: the validator refuses it, forever
    await outbox.append(bad)
    await outbox.append(entry(1))
    outbox.rejected_path.mkdir()
    with pytest.raises(OSError):
        await outbox.drain(db.journal)
    assert [e.prompt_id for e in await outbox.queued(ALICE)] == ["prompt-0", "prompt-1"]
    outbox.rejected_path.rmdir()
    assert await outbox.drain(db.journal) == 1  # prompt-1 again: stored once, by its unique index
    assert [e.prompt_id for e in await outbox.held(ALICE)] == ["prompt-0"]
    assert await stored_prompt_ids(db) == ["prompt-1"]


async def test_a_drain_refused_the_login_keeps_every_entry_for_later(mongo_uri, db_name, tmp_path):
    """The database's password changed while the bot ran: every write is refused, for a setting
    to fix, not for what the entries hold. The drain set each of them aside, for good, where
    answers the users were told are saved never reach their journals."""
    from urllib.parse import quote_plus

    from tests.conftest import MONGO_PASSWORD

    locked_out = await Database.connect(mongo_uri.replace(quote_plus(MONGO_PASSWORD), "rotated"), db_name,
                                        verify=False)
    outbox = JournalOutbox(tmp_path / OUTBOX_FILENAME)
    try:
        await outbox.append(entry(0))
        await outbox.append(entry(1))
        assert await outbox.drain(locked_out.journal) == 0
        assert [e.prompt_id for e in await outbox.queued(ALICE)] == ["prompt-0", "prompt-1"]
        assert not outbox.rejected_path.exists()
    finally:
        await locked_out.close()


async def set_aside_one(db: Database, outbox: JournalOutbox) -> None:
    """Alice's answer to prompt-0 in the outbox, set aside by a drain: the database refuses it."""
    bad = entry(0)
    bad.valence = 7.0
    await outbox.append(bad)
    await outbox.drain(db.journal)


async def test_remove_drops_one_users_queued_and_set_aside_entries_only(db: Database, tmp_path):
    bob = UserRef("chat", "bob")
    outbox = JournalOutbox(tmp_path / OUTBOX_FILENAME)
    await set_aside_one(db, outbox)  # prompt-0
    for n, who in ((1, ALICE), (2, bob), (3, ALICE)):
        await outbox.append(entry(n, who))
    assert [e.prompt_id for e in await outbox.queued(ALICE)] == ["prompt-1", "prompt-3"]

    assert await outbox.remove(ALICE) == 3  # two queued, one set aside
    assert await outbox.queued(ALICE) == [] and [e.prompt_id for e in await outbox.queued(bob)] == ["prompt-2"]
    assert outbox.rejected_path.read_bytes() == b""
    assert await outbox.drain(db.journal) == 1
    assert await stored_prompt_ids(db) == [] and await stored_prompt_ids(db, bob) == ["prompt-2"]


async def test_remove_entry_drops_one_users_answer_to_one_prompt_only(db: Database, tmp_path):
    """/journal delete of an entry waiting in the outbox: that answer goes, queued or set aside, and
    no drain writes it afterwards; the user's other answers and everyone else's (Bob's to a prompt
    of the same id) stay."""
    bob = UserRef("chat", "bob")
    outbox = JournalOutbox(tmp_path / OUTBOX_FILENAME)
    writer = JournalWriter(db.journal, outbox, db.prompts)
    await set_aside_one(db, outbox)  # prompt-0
    for n, who in ((1, ALICE), (1, bob), (3, ALICE)):
        await outbox.append(entry(n, who))

    assert await writer.delete(ALICE, "prompt-1") == (False, 1)
    assert await writer.delete(ALICE, "prompt-0") == (False, 1)  # the one set aside: /export showed it
    assert await writer.delete(ALICE, "prompt-9") == (False, 0)
    assert [e.prompt_id for e in await outbox.held(ALICE)] == ["prompt-3"]
    assert [e.prompt_id for e in await outbox.queued(bob)] == ["prompt-1"]
    assert await outbox.drain(db.journal) == 2
    assert await stored_prompt_ids(db) == ["prompt-3"] and await stored_prompt_ids(db, bob) == ["prompt-1"]


async def outbox_with_torn_lines(db: Database, path: Path, bob: UserRef) -> tuple[JournalOutbox, JournalEntry]:
    """An outbox at `path` whose drain set aside Alice's answer torn after her words (`secret`,
    returned with the outbox) and stored one of Bob's, with two torn lines set aside long ago:
    hers in the first format, and Bob's."""
    secret = replace(entry(0), reply_text="alice's secret words", note="more of them")
    with open(path, "wb") as f:
        f.write(entry_to_line(secret)[:-40])  # torn after her words, then set aside by the drain
    outbox = JournalOutbox(path)
    await outbox.append(entry(1, bob))
    await outbox.drain(db.journal)
    with open(outbox.rejected_path, "ab") as f:
        f.write(OLD_FORMAT_LINE[:-60] + b"\n")  # torn in the first format, set aside long ago
        f.write(entry_to_line(entry(2, bob))[:-40] + b"\n")
    return outbox, secret


async def test_remove_drops_one_users_torn_lines_too(db: Database, tmp_path):
    """A crash, or a full disk, in the middle of an append leaves part of a line: the user's name,
    then the start of their words. The drain sets it aside as unreadable; /forget must still take
    it, in either format, and leave another user's alone."""
    bob = UserRef("chat", "bob")
    outbox, _secret = await outbox_with_torn_lines(db, tmp_path / OUTBOX_FILENAME, bob)
    assert b"alice's secret words" in outbox.rejected_path.read_bytes()

    assert await outbox.remove(ALICE) == 2

    rejected = outbox.rejected_path.read_bytes()
    assert b"secret words" not in rejected and b"rainy bus" not in rejected
    assert rejected == entry_to_line(entry(2, bob))[:-40] + b"\n"
    assert await stored_prompt_ids(db, bob) == ["prompt-1"]


async def test_the_users_torn_lines_are_held_as_written_for_their_export(db: Database, tmp_path):
    """A torn line (a crash or a full disk in the middle of an append) holds the start of the user's
    answer, their words among it: /forget deletes it, so /export must show it, as the text it is
    (no entry can be read from it), in the outbox and set aside, once, and never another user's."""
    bob = UserRef("chat", "bob")
    path = tmp_path / OUTBOX_FILENAME
    outbox, secret = await outbox_with_torn_lines(db, path, bob)
    await outbox.append(entry(3))
    torn_in_a_character = entry_to_line(entry(4))
    torn_in_a_character = torn_in_a_character[:torn_in_a_character.index("✓".encode()) + 1]
    with open(path, "ab") as f:
        f.write(torn_in_a_character)  # still waiting: this process's last append, cut short

    held = await outbox.cut_short(ALICE)

    assert held == [entry_to_line(secret)[:-40].decode(), OLD_FORMAT_LINE[:-60].decode(),
                    torn_in_a_character[:-1].decode() + "\ufffd"]
    assert "alice's secret words" in held[0] and "On the way home" in held[1]
    assert await outbox.cut_short(bob) == [entry_to_line(entry(2, bob))[:-40].decode()]
    assert await outbox.cut_short(UserRef("chat", "carol")) == []
    assert [e.prompt_id for e in await outbox.held(ALICE)] == ["prompt-3"]  # whole entries, as before
    await outbox.remove(ALICE)
    assert await outbox.cut_short(ALICE) == []


async def drained_in_background(writer: JournalWriter, *entries: JournalEntry, **drainer) -> None:
    """`entries` queued in `writer`'s outbox one after the other, each once the background drainer
    (`drainer`: run_drainer's keywords) has written the one before."""
    task = asyncio.create_task(writer.run_drainer(interval=0.05, **drainer))
    try:
        for queued in entries:
            await writer.outbox.append(queued)
            deadline = time.monotonic() + 5
            while writer.outbox.pending() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            # The file is emptied in a thread before the round logs what it wrote: cancelled in
            # between (a busy CI machine), a round lost its log line.
            async with writer.outbox._drain_lock:
                pass
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_background_drainer_delivers_queued_entries(db: Database, tmp_path):
    writer = JournalWriter(db.journal, JournalOutbox(tmp_path / OUTBOX_FILENAME), db.prompts)
    await drained_in_background(writer, entry(5))
    assert await stored_prompt_ids(db) == ["prompt-5"]


async def test_killing_the_server_mid_sequence_loses_and_duplicates_nothing(tmp_path: Path):
    storage_path = str(tmp_path / "db")
    server = DBServer(storage_path=storage_path).start()
    db = await Database.connect(server.uri_failing_after(FAST_FAIL_MS), "fault",
                                server_selection_timeout_ms=FAST_FAIL_MS)
    await db.init()
    writer = JournalWriter(db.journal, JournalOutbox(tmp_path / OUTBOX_FILENAME), db.prompts)
    outcomes: list[JournalWrite] = []
    try:
        for n in range(6):
            outcomes.append(await writer.add_or_queue(entry(n)))
        server.stop(kill=True)
        for n in range(6, 10):
            outcomes.append(await writer.add_or_queue(entry(n)))
        # A reply delivered twice while down is queued once, and the second is told so, as with
        # the database up.
        outcomes.append(await writer.add_or_queue(entry(7)))
        server = DBServer(port=server.port, storage_path=storage_path).start()
        for n in range(10, 14):
            outcomes.append(await writer.add_or_queue(entry(n)))
        deadline = time.monotonic() + 10
        while writer.outbox.pending() and time.monotonic() < deadline:
            await writer.drain()
            await asyncio.sleep(0.1)
        assert writer.outbox.pending() == 0
        assert outcomes[:6] == [JournalWrite.STORED] * 6
        assert outcomes[6:11] == [JournalWrite.QUEUED] * 4 + [JournalWrite.DUPLICATE]
        assert set(outcomes[11:]) <= {JournalWrite.STORED, JournalWrite.QUEUED}
        assert await stored_prompt_ids(db) == sorted(f"prompt-{n}" for n in range(14))
        assert await db.journal.count(ALICE) == 14
        assert await db.journal.list(ALICE, limit=1) == [entry(13)]
    finally:
        await db.close()
        server.stop()
