"""A /forget that comes between a read of a member's documents and the write made from it (a
group's songs summed up again under its new id, a departure recorded) leaves nothing of the
member behind: the write is not made after the erasure. The database relay holds that write
until the /forget is done, or has had ample time to be."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from storage.database import Database
from storage.models import MoodRequest, UserRef
from storage.schema import DEPARTURES, PLACE_TRACKS, REQUESTS
from tests.fakes.wire_gate import WireGate
from tests.storage.conftest import T0
from tests.storage.test_privacy import documents_mentioning

PLACE, NEW_PLACE = "chat:g1", "chat:g1-new"
ALICE, BOB = UserRef("chat", "u-a11ce"), UserRef("chat", "u-b0b")
H = timedelta(hours=1)
FORGET_TIME_S = 2.0  # a /forget alone takes milliseconds; one that waits for the write, for ever


@pytest.fixture
def database_uri(gate: WireGate, mongo_uri: str) -> str:
    return gate.uri(mongo_uri)  # `db` goes through the relay


async def forget_while_held(db: Database, gate: WireGate, held_operation) -> None:
    """Run `held_operation` until the relay holds its write, /forget Alice meanwhile, then let
    the write go (once the /forget is done, or had FORGET_TIME_S to be) and let both finish."""
    operation = asyncio.create_task(held_operation)
    await asyncio.wait_for(gate.held.wait(), timeout=10)
    forget = asyncio.create_task(db.privacy.forget(ALICE))
    await asyncio.wait({forget}, timeout=FORGET_TIME_S)
    gate.release()
    await asyncio.wait_for(asyncio.gather(operation, forget), timeout=10)


async def test_a_forget_while_a_moved_group_is_summed_up_again_leaves_no_vote_of_the_member(db, gate):
    for who, track in ((ALICE, "A"), (ALICE, "B"), (BOB, "A")):
        await db.requests.add(MoodRequest(who, PLACE, f"spotify:{track}", "sad", T0))
    gate.hold("update", PLACE_TRACKS)  # the move's summaries, summed up from the requests read

    await forget_while_held(db, gate, db.playlists.move_place(PLACE, NEW_PLACE))

    assert await documents_mentioning(db, ALICE.user_id) == []
    assert [(item.track_key, item.members) for item in await db.playlists.playlist(NEW_PLACE, "sad")] == [
        ("spotify:A", 1)]  # Bob's
    assert await db.playlists.members_seen(NEW_PLACE) == [BOB]


async def test_a_forget_while_a_departure_is_recorded_leaves_no_departure(db, gate):
    await db.requests.add(MoodRequest(ALICE, PLACE, "spotify:A", "sad", T0))
    gate.hold("update", DEPARTURES)  # after the read that found her there

    await forget_while_held(db, gate, db.playlists.member_left(PLACE, ALICE, T0 + H))

    assert await documents_mentioning(db, ALICE.user_id) == []


async def test_a_forget_while_a_request_batch_is_on_its_way_leaves_neither_it_nor_its_summary(db, gate):
    """The batch's requests on their way, their summaries after them: the /forget waits for both."""
    await db.requests.add(MoodRequest(BOB, PLACE, "spotify:A", "sad", T0))
    gate.hold("insert", REQUESTS)
    db.requests.record(MoodRequest(ALICE, PLACE, "spotify:A", "sad", T0 + H))

    await forget_while_held(db, gate, db.requests.settled())

    assert await documents_mentioning(db, ALICE.user_id) == []
    assert await db.playlists.members_seen(PLACE) == [BOB]
