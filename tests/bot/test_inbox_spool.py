"""The inbox's local spool (storage/spool.py): requests the database could not keep (down, or too
slow) were held in memory only, and a hard kill during the outage lost them. They are now kept in
an fsynced file under DATA_DIR until answered, replayed at the start as the database's are, and
moved into the database once it answers. The real use case over a database the test takes down
(`outage`), and the real file; a restart is a new use case and spool on the same file and data."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import stat
from datetime import timedelta

import pytest

from bot.replies import Caller
from bot.usecases import build_usecases
from bot.usecases.inbox import MAX_REPLAYS, InboxUseCase
from storage.schema import INBOX
from storage.spool import SPOOL_FILENAME, InboxSpool
from tests.bot.test_inbox import NOW, SOURCE, arrival, forget_done, held_on_the_wire, until_kept
from tests.fakes.slow_disk import disk_slow_to_sync
from tests.fakes.wire_gate import gated_database
from tests.frontends.test_telegram_inbox import until


def restarted(db, tmp_path, **spool_options) -> InboxUseCase:
    """The inbox of a bot (re)started on `db`, its spool in `tmp_path` (read anew from the file)."""
    return InboxUseCase(db.inbox, now=lambda: NOW, keep_wait_s=0.5,
                        spool=InboxSpool(tmp_path / SPOOL_FILENAME, **spool_options))


async def kept_numbers(db) -> list[int]:
    return sorted(doc["number"] for doc in await db.db[INBOX].find({}).to_list())


async def test_a_request_kept_while_the_database_is_down_is_replayed_after_a_kill_and_moved_in(outage, tmp_path):
    inbox = restarted(outage.db, tmp_path)
    outage.down()
    assert await inbox.keep(SOURCE, [arrival(1)])  # the database refused it: the spool took it
    assert await inbox.keep(SOURCE, [arrival(2)])  # during the pause after that failure: the spool at once
    # killed outright: nothing more is written

    still_down = restarted(outage.db, tmp_path)
    assert [(a.number, a.replays) for a in await still_down.replay(SOURCE)] == [(1, 1), (2, 1)]
    # killed again before answering them: the replays were counted in the spool

    outage.up()
    back = restarted(outage.db, tmp_path)
    assert [(a.number, a.replays) for a in await back.replay(SOURCE)] == [(1, 2), (2, 2)]
    assert await kept_numbers(outage.db) == [1, 2]  # moved into the database...
    assert not (tmp_path / SPOOL_FILENAME).exists()  # ...and out of the spool
    assert await back.done(SOURCE, [1, 2]) and await kept_numbers(outage.db) == []


async def test_a_request_in_the_spool_and_the_database_is_replayed_once(db, tmp_path):
    """A write slower than the bound lands after all: kept in both."""
    inbox = restarted(db, tmp_path)
    await db.inbox.keep(SOURCE, [arrival(1)])
    await InboxSpool(tmp_path / SPOOL_FILENAME).keep(SOURCE, [arrival(1), arrival(2)])

    assert [(a.number, a.replays) for a in await inbox.replay(SOURCE)] == [(1, 1), (2, 1)]
    assert await kept_numbers(db) == [1, 2]


async def test_the_spool_drops_what_is_too_old_or_given_up_as_the_database_does(outage, tmp_path, caplog):
    spool = InboxSpool(tmp_path / SPOOL_FILENAME)
    await spool.keep(SOURCE, [arrival(1, received=NOW - timedelta(hours=25)), arrival(2, replays=MAX_REPLAYS),
                              arrival(3)])
    await spool.keep("telegram:1", [arrival(4, received=NOW - timedelta(hours=25))])  # a token since replaced
    outage.down()
    with caplog.at_level(logging.WARNING, logger="bot.usecases.inbox"):
        assert [a.number for a in await restarted(outage.db, tmp_path).replay(SOURCE)] == [3]
    assert "inbox.too_old_to_answer" in caplog.text and "inbox.given_up" in caplog.text
    after = InboxSpool(tmp_path / SPOOL_FILENAME)
    assert [a.number for a in await after.waiting(SOURCE)] == [3] and await after.waiting("telegram:1") == []


async def test_a_request_that_waits_on_the_database_is_counted_only_at_the_starts_it_answers(outage, tmp_path, caplog):
    """A group's move (`waits_on_database`): before, two starts with the database down counted it
    as any request, and the third gave it up. Now those starts do not count; the database
    answering, it is counted again, and given up at last where it was handed over MAX_REPLAYS
    times with the database up and never done (a database that refuses it for good, a kill)."""
    def move(a):
        return a.number == 1

    await InboxSpool(tmp_path / SPOOL_FILENAME).keep(SOURCE, [arrival(1), arrival(2)])
    outage.down()
    for start in range(1, MAX_REPLAYS + 2):
        assert [(a.number, a.replays) for a in await restarted(outage.db, tmp_path).replay(
            SOURCE, waits_on_database=move)] == [(1, 0)] + [(2, start)] * (start <= MAX_REPLAYS)
    outage.up()
    for start in range(1, MAX_REPLAYS + 1):
        assert [(a.number, a.replays) for a in await restarted(outage.db, tmp_path).replay(
            SOURCE, waits_on_database=move)] == [(1, start)]
    with caplog.at_level(logging.ERROR, logger="bot.usecases.inbox"):
        assert await restarted(outage.db, tmp_path).replay(SOURCE, waits_on_database=move) == []
    assert "inbox.given_up" in caplog.text and await kept_numbers(outage.db) == []


@pytest.mark.parametrize("database", ["up", "down"])
async def test_a_request_held_once_handled_counts_only_the_starts_since(outage, tmp_path, caplog, database):
    """A Telegram journal answer kept for its next parts once handled (`held`), the bot restarted
    within that hold at starts in a row: each counted it as handed over and never answered, and
    the third gave it up as what may stop the bot, in the database and in the spool alike. Held,
    it counts only the starts since (at which the bot would die while handling it again); one
    never held is given up at the third as before."""
    inbox = restarted(outage.db, tmp_path)
    if database == "down":
        outage.down()
    await inbox.keep(SOURCE, [arrival(1), arrival(2)])
    for start in range(1, MAX_REPLAYS + 2):
        inbox = restarted(outage.db, tmp_path)
        with caplog.at_level(logging.ERROR, logger="bot.usecases.inbox"):
            replayed = [(a.number, a.replays) for a in await inbox.replay(SOURCE)]
        assert replayed == [(1, 1)] + [(2, start)] * (start <= MAX_REPLAYS)
        await inbox.held(SOURCE, [1])
    assert [r.number for r in caplog.records if r.msg == "inbox.given_up"] == [2]


async def test_the_spool_is_emptied_as_its_requests_are_answered_even_while_the_database_is_down(outage, tmp_path):
    inbox = restarted(outage.db, tmp_path)
    outage.down()
    assert await inbox.keep(SOURCE, [arrival(1), arrival(2)])
    assert not await inbox.done(SOURCE, [1])  # the database did not say so: tried again later
    assert [a.number for a in await InboxSpool(tmp_path / SPOOL_FILENAME).waiting(SOURCE)] == [2]
    await inbox.done(SOURCE, [2])
    assert not (tmp_path / SPOOL_FILENAME).exists()


async def test_a_torn_last_line_is_skipped_and_said_and_the_next_append_starts_its_own(tmp_path, caplog):
    path = tmp_path / SPOOL_FILENAME
    await InboxSpool(path).keep(SOURCE, [arrival(1), arrival(2)])
    whole = path.read_bytes()
    path.write_bytes(whole + whole.splitlines(keepends=True)[0][:40])  # a kill in the middle of an append

    torn = InboxSpool(path)
    with caplog.at_level(logging.WARNING, logger="storage.spool"):
        assert [a.number for a in await torn.waiting(SOURCE)] == [1, 2]
    [said] = [r for r in caplog.records if r.msg == "inbox.spool_line_unreadable"]
    assert said.line == 3
    assert await torn.keep(SOURCE, [arrival(3)])
    assert [a.number for a in await InboxSpool(path).waiting(SOURCE)] == [1, 2, 3]


async def test_notes_on_a_request_in_the_spool_are_replayed_with_it(outage, tmp_path):
    """Its status message, to take over; its parts answered, not to answer again."""
    inbox = restarted(outage.db, tmp_path)
    outage.down()
    await inbox.keep(SOURCE, [arrival(1), arrival(2)])
    await inbox.shown(SOURCE, 1, "501", "77")
    await inbox.parts_answered(SOURCE, [2], 1)

    [first, second] = await restarted(outage.db, tmp_path).replay(SOURCE)
    assert (first.shown, first.parts, second.shown, second.parts) == (("501", "77"), 0, None, 1)


async def test_a_full_spool_says_so_and_the_requests_are_held_in_memory(outage, tmp_path, caplog):
    inbox = restarted(outage.db, tmp_path, max_bytes=300)
    outage.down()
    assert await inbox.keep(SOURCE, [arrival(1)])
    with caplog.at_level(logging.ERROR, logger="storage.spool"):
        assert not await inbox.keep(SOURCE, [arrival(2)])
    assert "inbox.spool_full" in caplog.text
    await inbox.done(SOURCE, [1])  # what was answered makes room
    assert await inbox.keep(SOURCE, [arrival(3)])


async def test_forget_deletes_the_users_requests_in_the_spool_and_their_words_with_them(db, tmp_path):
    """Kept there during an outage, not answered yet: after a kill, the restart would have answered
    (and stored) a request of someone who had since asked to be forgotten."""
    spool = InboxSpool(tmp_path / SPOOL_FILENAME)
    usecases = build_usecases(db, None, None, spool=spool)
    await spool.keep(SOURCE, [arrival(1, "42"), arrival(2, "43"), arrival(3, "42")])

    await usecases.privacy.forget(Caller("telegram", "42", chat_id="42"), confirmed=True)

    assert [a.number for a in await InboxSpool(spool.path).waiting(SOURCE)] == [2]
    assert b"song 1" not in spool.path.read_bytes() and b"song 3" not in spool.path.read_bytes()


async def test_a_request_the_spool_takes_after_forget_began_is_forgotten_there_too(
        db_server, mongo_uri, db_name, db, tmp_path):
    """The user's request is being kept, its database write held on its way past the keep's bound,
    when their /forget is answered; the keep then goes to the spool. Until 2026-12-06 the /forget
    rewrote the spool first (none of theirs in it yet) and said everything was deleted: their words
    landed on disk after it, for the restart after a kill to answer. Now the /forget waits for the
    user's keeps on their way before it forgets them in the spool, as each ends: there before the
    /forget is answered, the database's write still on its way (until 2026-12-06 only once it had
    landed, and a stop before that left the request in the spool for the restart to answer)."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        spool = InboxSpool(tmp_path / SPOOL_FILENAME)
        usecases = build_usecases(gated, None, None, spool=spool)
        usecases.inbox.keep_wait_s = 0.5
        keeping = await held_on_the_wire(gate, usecases.inbox, [arrival(1, "42"), arrival(2, "43")])
        reply = await usecases.privacy.forget(Caller("telegram", "42", chat_id="42"), confirmed=True)
        assert forget_done(reply.text)
        assert await keeping  # in the spool
        assert b"song 1" not in spool.path.read_bytes()  # and out of it already
        gate.release()
        assert await until(lambda: ("update", INBOX) in gate.commands)  # the write goes on to the server
        assert await until_kept(db, [2]) == [2]  # and theirs go from the database once it has landed
    assert [a.number for a in await InboxSpool(spool.path).waiting(SOURCE)] == [2]
    assert b"song 1" not in spool.path.read_bytes()


async def test_the_spool_file_is_the_bots_users_alone_as_written_and_as_rewritten(tmp_path):
    """It holds users' messages: the umask's 0644 let every local user read them where DATA_DIR
    was made before the bot (a folder it does not narrow)."""
    path = tmp_path / SPOOL_FILENAME
    spool = InboxSpool(path, max_bytes=600)
    await spool.keep(SOURCE, [arrival(1), arrival(2)])
    assert oct(stat.S_IMODE(path.stat().st_mode)) == "0o600"
    await spool.done(SOURCE, [1])
    await spool.keep(SOURCE, [arrival(3)])  # past max_bytes: rewritten with what waits first
    assert [a.number for a in await InboxSpool(path).waiting(SOURCE)] == [2, 3]
    assert oct(stat.S_IMODE(path.stat().st_mode)) == "0o600"
    path.chmod(0o644)  # as the version before left it
    await InboxSpool(path).keep(SOURCE, [arrival(4)])
    assert oct(stat.S_IMODE(path.stat().st_mode)) == "0o600"


async def test_a_line_in_the_middle_that_is_json_but_no_step_is_skipped_not_the_start_stopped(tmp_path, caplog):
    """A garbled line that still reads as JSON (a string, a list, null) stopped the whole replay
    with an AttributeError, and the bot's start with it."""
    path = tmp_path / SPOOL_FILENAME
    await InboxSpool(path).keep(SOURCE, [arrival(1)])
    path.write_bytes(path.read_bytes() + b'"garbled"\n[1, 2]\nnull\n{"note": "x", "numbers": 5}\n')
    await InboxSpool(path).keep(SOURCE, [arrival(2)])
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="storage.spool"):
        assert [a.number for a in await InboxSpool(path).waiting(SOURCE)] == [1, 2]
    assert [r.line for r in caplog.records if r.msg == "inbox.spool_line_unreadable"] == [2, 3, 4, 5]


@contextlib.contextmanager
def disk_full_past(size: int):
    """Writes past `size` bytes of a file refused, a write that crosses it cut there (as a disk
    that fills up does: ENOSPC after what fit), by the kernel's own file size limit."""
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    signalled = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not the signal's kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, limits[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, signalled)


async def test_a_keep_cut_short_while_its_write_is_on_the_disk_is_cleared_by_the_answer(tmp_path):
    """The stop cancels the getUpdates whose gate keeps the last batch, and the keep with it. One
    cancelled while its thread wrote the batch's lines went on writing them, but the spool's memory
    never had those requests: their answers (at the stop) cleared nothing there, and the restart
    answered them a second time. Now the keep runs to its end whoever waits for it, and the answer
    that follows clears its requests."""
    path = tmp_path / SPOOL_FILENAME
    spool = InboxSpool(path)
    await spool.waiting(SOURCE)  # read at the start
    with disk_slow_to_sync() as (syncing, synced):
        keeping = asyncio.create_task(spool.keep(SOURCE, [arrival(1)]))
        while not syncing.is_set():
            await asyncio.sleep(0.01)
        keeping.cancel()  # the stop
        with pytest.raises(asyncio.CancelledError):
            await keeping
        synced.set()
        await spool.done(SOURCE, [1])  # answered, or told to send it again
    assert await InboxSpool(path).waiting(SOURCE) == []  # what the restart hands over
    assert not path.exists()


async def test_a_batch_the_disk_took_only_part_of_leaves_none_of_it_in_the_spool(tmp_path, caplog):
    """The disk filled up in the middle of a batch: its first requests' lines were whole in the
    file while the spool said it kept none (held in memory only), so their answers cleared nothing
    there and a restart answered them a second time."""
    path = tmp_path / SPOOL_FILENAME
    spool = InboxSpool(path)
    await spool.keep(SOURCE, [arrival(1)])
    before = path.stat().st_size
    with disk_full_past(2 * before + before // 2), caplog.at_level(logging.ERROR, logger="storage.spool"):
        assert not await spool.keep(SOURCE, [arrival(2), arrival(3)])  # 2's line whole, half of 3's
    assert "inbox.not_spooled" in caplog.text
    await spool.done(SOURCE, [2, 3])  # answered, from memory
    assert [a.number for a in await InboxSpool(path).waiting(SOURCE)] == [1]
    assert path.stat().st_size == before


async def test_an_answered_request_s_words_leave_the_spool_while_others_still_wait(outage, tmp_path):
    """A request answered only got a `done` line: its words stayed in the file as long as any other
    request waited (through a busy outage, days, until 8 MiB of them). Now the file is rewritten
    once what was answered outweighs what waits, so it holds at most as much answered as waiting."""
    path = tmp_path / SPOOL_FILENAME
    inbox = restarted(outage.db, tmp_path)
    outage.down()
    for number in range(1, 5):
        assert await inbox.keep(SOURCE, [arrival(number, str(number))])
    await inbox.done(SOURCE, [1])  # three wait: the one answered may stay for now
    await inbox.done(SOURCE, [2, 3])
    assert not any(f"song {n}".encode() in path.read_bytes() for n in (1, 2, 3))
    assert [a.number for a in await InboxSpool(path).waiting(SOURCE)] == [4]
    for number in range(5, 9):  # one at a time, each answered as the next waits
        await inbox.keep(SOURCE, [arrival(number, str(number))])
        await inbox.done(SOURCE, [number - 1])
    assert [a.number for a in await InboxSpool(path).waiting(SOURCE)] == [8]
    assert path.read_bytes().count(b"song") <= 2


async def test_a_spool_that_cannot_be_read_is_said_and_the_bot_answers_on_without_it(outage, tmp_path, caplog):
    """Its read (at the start's replay) was the one step whose OSError was not caught: a spool the
    disk cannot read (an I/O error; here a folder in its place) stopped the replay, and the start,
    then every keep of a batch from Telegram. It is now said once, and not used in that run (not
    written over either: what it holds is still there for a run that can read it)."""
    (tmp_path / SPOOL_FILENAME).mkdir()
    inbox = restarted(outage.db, tmp_path)
    assert await inbox.keep(SOURCE, [arrival(1)])  # in the database
    with caplog.at_level(logging.ERROR, logger="storage.spool"):
        assert [a.number for a in await inbox.replay(SOURCE)] == [1]
        outage.down()
        assert not await inbox.keep(SOURCE, [arrival(2)])  # held in memory only, as without a spool
        await inbox.shown(SOURCE, 2, "501", "77")
        await inbox.done(SOURCE, [1, 2])
    assert [r.msg for r in caplog.records if r.name == "storage.spool"] == ["inbox.spool_unreadable"]
    assert (tmp_path / SPOOL_FILENAME).is_dir()


async def test_forget_the_disk_cannot_rewrite_for_still_keeps_the_users_requests_from_a_restart(db, tmp_path, caplog):
    """The rewrite without the user's requests failed (a disk full: here its temporary file cannot
    be made): they left the spool's memory only, and a restart answered, and stored, the requests
    of someone who had asked to be forgotten. They are now marked done in the file instead."""
    spool = InboxSpool(tmp_path / SPOOL_FILENAME)
    usecases = build_usecases(db, None, None, spool=spool)
    await spool.keep(SOURCE, [arrival(1, "42"), arrival(2, "43")])
    (tmp_path / (SPOOL_FILENAME + ".tmp")).mkdir()

    with caplog.at_level(logging.ERROR, logger="storage.spool"):
        await usecases.privacy.forget(Caller("telegram", "42", chat_id="42"), confirmed=True)
    assert "inbox.not_dropped_from_spool" in caplog.text
    assert [a.number for a in await InboxSpool(spool.path).waiting(SOURCE)] == [2]
