"""The inbox use case: requests kept until answered, handed over again at a start (see
bot/usecases/inbox.py), over the real test database."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from bot.replies import Caller
from bot.usecases import build_usecases
from bot.usecases.inbox import MAX_REPLAYS, PAUSE_AFTER_FAILURE_S, InboxUseCase
from bot.usecases.privacy import NOTHING_TO_FORGET
from storage.inbox import Arrival
from storage.models import UserRef
from storage.schema import INBOX, INBOX_FORGOTTEN
from storage.spool import SPOOL_FILENAME, InboxSpool
from tests.fakes.wire_gate import gated_database
from tests.frontends.test_telegram_inbox import inbox_numbers, until

SOURCE = "telegram:7000000001"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)


def arrival(number: int, user: str = "42", *, received: datetime = NOW, replays: int = 0) -> Arrival:
    return Arrival(number, {"update_id": number, "message": {"text": f"/mood song {number}"}}, "telegram", user,
                   received, replays)


async def test_requests_kept_are_replayed_oldest_first_and_counted_until_done(db):
    inbox = InboxUseCase(db.inbox, now=lambda: NOW)
    assert await inbox.keep(SOURCE, [arrival(12), arrival(10), arrival(11)])
    assert await inbox.done(SOURCE, [11])

    first = await inbox.replay(SOURCE)
    assert [(a.number, a.replays, a.payload["message"]["text"]) for a in first] == [
        (10, 1, "/mood song 10"), (12, 1, "/mood song 12")]
    assert [(a.number, a.replays) for a in await inbox.replay(SOURCE)] == [(10, 2), (12, 2)]
    assert await inbox.replay("telegram:1") == []  # another bot's


async def test_a_request_replayed_at_two_starts_and_never_answered_is_given_up(db, caplog):
    """It may be what kills the bot (a file that exhausts its memory): not a third time."""
    inbox = InboxUseCase(db.inbox, now=lambda: NOW)
    await inbox.keep(SOURCE, [arrival(1, replays=MAX_REPLAYS - 1), arrival(2)])
    assert [a.number for a in await inbox.replay(SOURCE)] == [1, 2]
    with caplog.at_level(logging.ERROR, logger="bot.usecases.inbox"):
        assert [a.number for a in await inbox.replay(SOURCE)] == [2]
    assert "inbox.given_up" in caplog.text
    assert [doc["number"] for doc in await db.db[INBOX].find({}).to_list()] == [2]


async def test_a_request_older_than_telegram_keeps_one_is_not_answered_now(db, caplog):
    inbox = InboxUseCase(db.inbox, now=lambda: NOW)
    await inbox.keep(SOURCE, [arrival(1, received=NOW - timedelta(hours=25)),
                              arrival(2, received=NOW - timedelta(hours=23))])
    with caplog.at_level(logging.WARNING, logger="bot.usecases.inbox"):
        assert [a.number for a in await inbox.replay(SOURCE)] == [2]
    assert "inbox.too_old_to_answer" in caplog.text
    assert [doc["number"] for doc in await db.db[INBOX].find({}).to_list()] == [2]


async def test_a_start_drops_what_any_source_kept_over_a_day_ago(db):
    """A bot given another token (another Telegram bot id) never replays what the old one kept."""
    inbox = InboxUseCase(db.inbox, now=lambda: NOW)
    await inbox.keep("telegram:1", [arrival(1, received=NOW - timedelta(hours=25)),
                                    arrival(2, received=NOW - timedelta(hours=1))])
    assert await inbox.replay(SOURCE) == []
    assert [doc["number"] for doc in await db.db[INBOX].find({}).to_list()] == [2]


async def test_forget_deletes_the_users_requests_in_progress_and_no_one_elses(db):
    """/forget: nothing sent before it is saved afterwards, so a request of theirs left in the
    inbox must not be answered (and stored) after a restart."""
    inbox = InboxUseCase(db.inbox, now=lambda: NOW)
    await inbox.keep(SOURCE, [arrival(1, "42"), arrival(2, "43"), arrival(3, "42")])
    await db.users.set_sharing(UserRef("telegram", "42"), False)  # their one stored document

    deleted = await db.privacy.forget(UserRef("telegram", "42"))

    assert deleted == 1  # the requests in progress (the /forget itself among them) are not counted
    assert [a.number for a in await inbox.replay(SOURCE)] == [2]


async def test_a_request_a_forget_noted_is_dropped_at_the_start_and_the_note_goes_after_a_day(db, tmp_path):
    """A /forget that could not wait for a keep's write notes the request (`InboxUseCase.forgotten`):
    should the write land after a stop or kill, in the database or the spool (the keep past its
    bound), the start drops it unanswered, and deletes it. The notes hold no more than the source and
    number, and go once a day old (no request that old is answered anyway): at the next note, or start."""
    async def notes() -> list[tuple[int, set[str]]]:
        return [(doc["number"], set(doc)) for doc in await db.db[INBOX_FORGOTTEN].find({}).sort("number").to_list()]

    spool = InboxSpool(tmp_path / SPOOL_FILENAME)
    inbox = InboxUseCase(db.inbox, now=lambda: NOW, spool=spool)
    await db.inbox.keep(SOURCE, [arrival(2, "42"), arrival(4, "43")])
    await spool.keep(SOURCE, [arrival(3, "42"), arrival(4, "43")])
    for numbers, hours_ago in (([1], 26), ([5], 24.5), ([2, 3], 1)):
        await db.inbox.forgotten(SOURCE, numbers, NOW - timedelta(hours=hours_ago),
                                 expired=NOW - timedelta(hours=hours_ago + 24))
    assert [n for n, _ in await notes()] == [2, 3, 5]  # the first went at the third

    assert [a.number for a in await inbox.replay(SOURCE)] == [4]
    assert await inbox_numbers(db) == [4] and not spool.path.exists()
    assert await notes() == [(n, {"_id", "source", "number", "at"}) for n in (2, 3)]


async def test_a_database_that_is_down_costs_the_fetches_one_wait_then_none(outage, caplog):
    """Kept is best effort: a database down makes `keep` say False after its bound (the bot
    answers all the same), and pauses keeping, so the next fetches do not wait again."""
    inbox = InboxUseCase(outage.db.inbox, keep_wait_s=0.5)
    outage.down()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="bot.usecases.inbox"):
        assert not await inbox.keep(SOURCE, [arrival(1)])
    assert time.monotonic() - started < 1.0
    [said] = [r for r in caplog.records if r.msg == "inbox.not_kept"]
    assert said.paused_s == PAUSE_AFTER_FAILURE_S and said.requests == 1
    started = time.monotonic()
    assert not await inbox.keep(SOURCE, [arrival(2)])
    assert not await inbox.done(SOURCE, [1])
    assert time.monotonic() - started < 0.25  # no wait: either one waiting its bound would take 0.5 s


async def test_a_payload_the_database_refuses_is_answered_all_the_same(db, caplog):
    """A name BSON cannot hold (a NUL in a key) fails in the driver, not as a database error: it
    reached the Telegram flow's fetch, whose getUpdates then failed."""
    inbox = InboxUseCase(db.inbox, now=lambda: NOW)
    refused = Arrival(1, {"update_id": 1, "odd\x00key": True}, "telegram", "42", NOW)
    with caplog.at_level(logging.WARNING, logger="bot.usecases.inbox"):
        assert await inbox.keep(SOURCE, [refused]) is False
    [said] = [r for r in caplog.records if r.msg == "inbox.not_kept"]
    assert said.exc_info is not None  # not a database failure: its traceback, to be found

async def held_on_the_wire(gate, inbox: InboxUseCase, arrivals: list[Arrival]) -> asyncio.Task:
    """A keep of `arrivals` under way, its write held by the gate on its way to the database."""
    gate.hold("update", INBOX)
    keeping = asyncio.create_task(inbox.keep(SOURCE, arrivals))
    await asyncio.wait_for(gate.held.wait(), 10)
    return keeping


async def until_kept(db, numbers: list[int]) -> list[int]:
    """The numbers of the requests kept in the database, once they are `numbers` (a write on its
    way landed, and what follows it done) or after 5 s."""
    async def as_expected() -> bool:
        return await inbox_numbers(db) == numbers
    await until(as_expected, timeout=5)
    return await inbox_numbers(db)


@pytest.mark.parametrize("cut_short", ["timed out at its bound", "cancelled by the stop"])
async def test_a_keep_that_lands_after_the_answer_s_clearing_is_cleared_all_the_same(
        cut_short, db_server, mongo_uri, db_name, db):
    """The keep's write is on its way to the server (held at the wire) when the keep is cut short:
    past its 1 s bound, or cancelled by the stop (python-telegram-bot cancels the getUpdates whose
    gate keeps the batch). The request is answered and cleared, then the write lands. Until
    2026-12-06 the clear's delete came first: the request stayed in the database, and the restart
    answered it a second time. Now the clear waits for the keep's write to settle."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        inbox = InboxUseCase(gated.inbox, now=lambda: NOW, keep_wait_s=0.2 if cut_short.startswith("timed") else 30)
        keeping = await held_on_the_wire(gate, inbox, [arrival(1)])
        if cut_short.startswith("timed"):
            assert await keeping is False  # held in memory only (no spool here)
        else:
            keeping.cancel()
            with pytest.raises(asyncio.CancelledError):
                await keeping
        # answered: the stop's last clear (`even_paused`: tried even in the pause after a failure)
        clearing = asyncio.create_task(inbox.done(SOURCE, [1], even_paused=True))
        await asyncio.wait({clearing}, timeout=0.5)  # its delete sent, were it not to wait
        gate.release()  # the keep's write lands
        assert await asyncio.wait_for(clearing, 10)
        await asyncio.sleep(0.2)  # a write still on its way lands meanwhile
    assert await InboxUseCase(db.inbox, now=lambda: NOW).replay(SOURCE) == []  # what the restart hands over


def forget_done(said: str) -> bool:
    """Whether a /forget's answer says it is done: what it deleted, or that nothing of the user's
    was stored (a request on its way when it came is not counted, as the inbox's never are)."""
    return said == NOTHING_TO_FORGET or said.startswith("Done: I deleted everything about you")


@pytest.mark.parametrize("lands", ["while /forget waits for it", "after /forget's bound"])
async def test_a_keep_on_its_way_during_forget_leaves_none_of_the_users_requests_behind(
        lands, db_server, mongo_uri, db_name, db, caplog):
    """A batch holding a user's song request and their /forget is being kept, its write held on its
    way to the database past the keep's bound, when the /forget is answered. Until 2026-12-06 the
    /forget deleted the user's requests kept (none yet), said everything was deleted, and the write
    landed after it: their song (and the /forget) back in the database, for the restart after a kill
    to answer and store. Now the /forget waits for the user's keeps on their way (within its bound)
    and deletes their requests once the write has landed, after its bound too."""
    forget = replace(arrival(3, "42"), payload={"update_id": 3, "message": {"text": "/forget"}})
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        usecases = build_usecases(gated, None, None)
        usecases.inbox.keep_wait_s, usecases.inbox.done_wait_s = 0.2, 2.0 if lands.startswith("while") else 0.3
        keeping = await held_on_the_wire(gate, usecases.inbox, [arrival(1, "42"), arrival(2, "43"), forget])
        if lands.startswith("while"):
            asyncio.get_running_loop().call_later(0.5, gate.release)
        with caplog.at_level(logging.WARNING, logger="bot.usecases.inbox"):
            reply = await usecases.privacy.forget(Caller("telegram", "42", chat_id="42"), confirmed=True)
        assert forget_done(reply.text)
        assert ("inbox.forget_waits" in caplog.text) == lands.startswith("after")
        assert await keeping is False  # cut short at its bound (no spool here)
        gate.release()
        assert await until(lambda: ("update", INBOX) in gate.commands)  # the write goes on to the server
        assert await until_kept(db, [2]) == [2]  # the other user's alone
    assert [a.number for a in await InboxUseCase(db.inbox, now=lambda: NOW).replay(SOURCE)] == [2]
