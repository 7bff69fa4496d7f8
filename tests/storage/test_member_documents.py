"""A server's playlist reads its members' summaries as one document per place and member
(`place_members`, storage/place_tracks.py) and their journals' as one per member (`journal_members`,
storage/journal_tracks.py), not one per member and track: SecantusDB's cost is per document, and a
server of 2 000 members has 20 892 summaries of requests, its 200 who journaled a year 4 989. The
documents say what the summaries say after every write that changes those (a burst of requests, a
journal entry's add and delete, a /forget, a sender's /forget, a group's move to a new id, the
migration that builds them), and the playlists and the mood of the week are those
`storage/playlists.py` made from the summaries before (`BASELINE`), on varied data: members who
left, opted out or ran /forget, private chats, uploads and their links, track keys with the
characters a field name cannot hold."""
from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import pytest

from benchmarks.large_server import baseline_queries
from inference.result import MOODS
from storage import place_tracks
from storage.database import Database
from storage.models import JournalEntry, MoodRequest, UserRef
from storage.schema import (JOURNAL_MEMBERS, JOURNAL_TRACKS, LATEST_VERSION, META, PLACE_MEMBERS, PLACE_TRACKS,
                            SCHEMA_DOC_ID)
from tests.fakes.wire_gate import gated_database
from tests.storage.conftest import T0
from tests.storage.test_playlists import OTHER_PLACE, PLACE, ranking

BASELINE = "4be85c3"  # storage/playlists.py as it read the place's summaries themselves
NEW_PLACE = "chat:g9"  # OTHER_PLACE's new id (a Telegram group upgraded)
H = timedelta(hours=1)
MEMBERS = [UserRef("chat", f"m{i}") for i in range(8)]
GROUP_AS_MEMBER = (UserRef("chat", "g2"), UserRef("chat", "g9"))  # OTHER_PLACE posting as itself, then NEW_PLACE
SENDER = MEMBERS[7]  # whose voice notes others asked about; runs /forget
KEYS = ("spotify:a", "spotify:b", "spotify:c.d", "youtube:dQw4w9WgXcQ", "sha256:v1", "sha256:$up%2E.1", "x:%24")
LINKS = ("https://discord.com/channels/1/2/3", "https://t.me/c/12/34", None)


Told = tuple[Any, str, Any, Any]


async def members_view(db: Database) -> dict[tuple[str, str, str], dict[str, Told]]:
    """What the members' documents say: per (place, platform, user id), per track key."""
    return {(doc["place"], doc["platform"], doc["user_id"]): {
        place_tracks.track_key_of(name): (told["latest"]["at"], told["latest"]["mood"], told.get("title"),
                                          told.get("source_link")) for name, told in doc["tracks"].items()}
        async for doc in db.db[PLACE_MEMBERS].find()}


async def summaries_view(db: Database) -> dict[tuple[str, str, str], dict[str, Told]]:
    """What the summaries say, grouped the same way."""
    view: dict[tuple[str, str, str], dict[str, Told]] = {}
    async for doc in db.db[PLACE_TRACKS].find():
        view.setdefault((doc["place"], doc["platform"], doc["user_id"]), {})[doc["track_key"]] = (
            doc["latest"]["at"], doc["latest"]["mood"], doc.get("title"), doc.get("source_link"))
    return view


async def journal_members_view(db: Database) -> dict[tuple[str, str], dict[tuple[str, str | None], Any]]:
    """What the members' journal documents say: per member, per (track key, place: an upload's)."""
    view: dict[tuple[str, str], dict[tuple[str, str | None], Any]] = {}
    async for doc in db.db[JOURNAL_MEMBERS].find():
        theirs = view.setdefault((doc["platform"], doc["user_id"]), {})
        for place, tracks in [(None, doc.get("songs", {})), *doc.get("uploads", {}).items()]:
            for name, told in tracks.items():
                key = (place_tracks.track_key_of(name), None if place is None else place_tracks.track_key_of(place))
                theirs[key] = (told["latest"]["at"], told["latest"]["mood"], told.get("title"))
    return view


async def journal_summaries_view(db: Database) -> dict[tuple[str, str], dict[tuple[str, str | None], Any]]:
    view: dict[tuple[str, str], dict[tuple[str, str | None], Any]] = {}
    async for doc in db.db[JOURNAL_TRACKS].find():
        view.setdefault((doc["platform"], doc["user_id"]), {})[(doc["track_key"], doc.get("place"))] = (
            doc["latest"]["at"], doc["latest"]["mood"], doc.get("title"))
    return view


async def assert_as_before(db: Database, places: tuple[str, ...] = (PLACE, OTHER_PLACE)) -> None:
    """The members' documents are the summaries, and each place's playlists (every mood, with
    how many songs each mood has) and mood of the week are those the summaries made before."""
    await db.journal.summed_up()
    assert await members_view(db) == await summaries_view(db)
    assert await journal_members_view(db) == await journal_summaries_view(db)
    before = baseline_queries(BASELINE, db)
    for place in places:
        for mood in MOODS:
            assert await db.playlists.ranked(place, mood, limit=100) == await before.ranked(place, mood, limit=100)
        now = T0 + 30 * H
        assert await db.playlists.server_mood_of_week(place, now) == await before.server_mood_of_week(place, now)


def varied_requests(rng: random.Random, count: int, places: tuple[str | None, ...]) -> list[MoodRequest]:
    """Requests of the members (and of the group as itself) in the places and in private chats,
    at hours that often tie, uploads with links and titles, some naming SENDER."""
    requests = []
    for _ in range(count):
        who = rng.choice([*MEMBERS, GROUP_AS_MEMBER[0]])
        key = rng.choice(KEYS)
        upload = key.startswith("sha256:")
        named = upload and rng.random() < 0.3
        title = "Voice note by Mia, 5 Dec 2026" if named else rng.choice((None, "Some song", "Another"))
        requests.append(MoodRequest(who, rng.choice(places), key, rng.choice(MOODS), T0 + rng.randrange(24) * H,
                                    title=title, source_link=rng.choice(LINKS) if upload else None,
                                    sender=SENDER.user_id if named else None))
    return requests


def varied_entries(rng: random.Random, count: int, places: tuple[str | None, ...]) -> list[JournalEntry]:
    """Journal answers of the members: songs and uploads, in the places and in private chats."""
    entries = []
    for i in range(count):
        who = rng.choice(MEMBERS)
        key = rng.choice(KEYS)
        named = key.startswith("sha256:") and rng.random() < 0.3
        at = T0 + rng.randrange(24) * H
        entries.append(JournalEntry(who, at.date(), f"p{rng.random()}", "Song?", "", key,
                                    "Voice note by Mia, 5 Dec 2026" if named else rng.choice(("A", "B", "")),
                                    rng.choice(MOODS), 0.0, 0.0, at, place=rng.choice(places),
                                    sender=SENDER.user_id if named else None))
    return entries


async def journal_varied(db: Database, rng: random.Random, count: int, places: tuple[str | None, ...]) -> None:
    """Entries added, and one in four deleted again."""
    entries = varied_entries(rng, count, places)
    for entry in entries:
        await db.journal.add(entry)
    for entry in entries[::4]:
        assert await db.journal.delete(entry.user, entry.prompt_id)


async def store(db: Database, requests: list[MoodRequest]) -> None:
    """Half as a burst (one batch of writes: several of one member's in one batch), half one by one."""
    for request in requests[::2]:
        db.requests.record(request)
    for request in requests[1::2]:
        await db.requests.add(request)
    await db.requests.settled()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_playlists_are_those_the_summaries_made_through_every_write(db: Database, seed: int):
    rng = random.Random(seed)
    await store(db, varied_requests(rng, 90, (PLACE, PLACE, OTHER_PLACE, None)))
    await journal_varied(db, rng, 40, (PLACE, OTHER_PLACE, None))
    await db.users.set_sharing(MEMBERS[1], False)
    await db.playlists.member_left(PLACE, MEMBERS[2], T0 + 12 * H)  # those of her requests after it count again
    await db.playlists.member_left(OTHER_PLACE, MEMBERS[3], T0 + 30 * H)
    await assert_as_before(db)

    await db.privacy.forget(MEMBERS[0])  # her documents go; SENDER's name stays in others' titles
    await db.privacy.forget(SENDER)  # others' requests of her voice notes renamed, their summaries made again
    await assert_as_before(db)
    for name in (PLACE_MEMBERS, JOURNAL_MEMBERS):
        assert not await db.db[name].count_documents({"user_id": {"$in": [MEMBERS[0].user_id, SENDER.user_id]}})
    await journal_varied(db, rng, 12, (PLACE, OTHER_PLACE, None))

    await db.playlists.move_place(OTHER_PLACE, NEW_PLACE, GROUP_AS_MEMBER)
    await store(db, varied_requests(rng, 30, (OTHER_PLACE, PLACE)))  # asked before the move, answered after
    await assert_as_before(db, (PLACE, OTHER_PLACE, NEW_PLACE))
    assert not await db.db[PLACE_MEMBERS].count_documents({"place": OTHER_PLACE})
    assert not await db.db[JOURNAL_MEMBERS].count_documents({f"uploads.{OTHER_PLACE}": {"$exists": True}})
    assert not await db.db[PLACE_MEMBERS].count_documents({"place": NEW_PLACE, "user_id": GROUP_AS_MEMBER[0].user_id})


async def test_a_version_18_database_gets_its_members_documents(mongo_uri, db_name):
    database = await Database.connect(mongo_uri, db_name)
    try:
        assert await database.init() == LATEST_VERSION
        await store(database, varied_requests(random.Random(4), 40, (PLACE, OTHER_PLACE)))
        await journal_varied(database, random.Random(5), 20, (PLACE, None))
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 18}})
        for name in (PLACE_MEMBERS, JOURNAL_MEMBERS):  # as 18's moodbot left them: summed up only
            await database.db.drop_collection(name)

        assert await database.init() == LATEST_VERSION
        assert await database.db[PLACE_MEMBERS].count_documents({})
        assert await database.db[JOURNAL_MEMBERS].count_documents({})
        await assert_as_before(database)
    finally:
        await database.client.drop_database(db_name)
        await database.close()


def test_a_track_key_is_a_field_name_and_back():
    for key in (*KEYS, "", "%", "%25", "a.b.c", "$max", "nul\0here"):
        field = place_tracks.track_field(key)
        assert "." not in field and not field.startswith("$") and "\0" not in field and field
        assert place_tracks.track_key_of(field) == key
    assert place_tracks.track_field("spotify:4uLU6hMCjMI75M1A2tKUQC") == "spotify:4uLU6hMCjMI75M1A2tKUQC"



async def test_a_request_answered_while_a_moved_group_s_documents_are_made_again_keeps_its_vote(
        db_server, mongo_uri, db_name):
    """Bob's /mood asked in the group before its move, answered while the move wrote the members'
    documents made of the summaries it had read: his summary, and his update of his document, came
    in between, and the move's document replaced his without that song."""
    bob = MEMBERS[1]
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        await gated.init()
        await gated.requests.add(MoodRequest(bob, OTHER_PLACE, "spotify:a", "sad", T0))
        gate.hold("update", PLACE_MEMBERS)  # the move's documents, made of the summaries read
        move = asyncio.create_task(gated.playlists.move_place(OTHER_PLACE, NEW_PLACE))
        await asyncio.wait_for(gate.held.wait(), timeout=10)
        await gated.requests.add(MoodRequest(bob, OTHER_PLACE, "spotify:b", "sad", T0 + H))
        gate.release()
        await asyncio.wait_for(move, timeout=10)

        assert ranking(await gated.playlists.playlist(NEW_PLACE, "sad")) == [("spotify:b", 1), ("spotify:a", 1)]
        assert await members_view(gated) == await summaries_view(gated)
        await gated.client.drop_database(db_name)


async def test_an_answer_journaled_while_a_sender_s_forget_makes_a_document_again_keeps_its_vote(
        db_server, mongo_uri, db_name):
    """Bob journaled Mia's voice note in the group; her /forget made his journal's document again
    from the summaries it had read, while his next answer wrote its summary and its update of the
    document in between."""
    bob = MEMBERS[1]
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        await gated.init()
        await gated.requests.add(MoodRequest(bob, PLACE, "spotify:a", "calm", T0))
        await gated.journal.add(JournalEntry(bob, T0.date(), "p1", "Song?", "", "sha256:v1",
                                             "Voice note by Mia, 5 Dec 2026", "sad", 0.0, 0.0, T0, place=PLACE,
                                             sender=SENDER.user_id))
        gate.hold("update", JOURNAL_MEMBERS)  # her /forget's documents, made of the summaries read
        forget = asyncio.create_task(gated.privacy.forget(SENDER))
        await asyncio.wait_for(gate.held.wait(), timeout=10)
        await gated.journal.add(JournalEntry(bob, T0.date(), "p2", "Song?", "", "spotify:b", "B", "sad",
                                             0.0, 0.0, T0 + H))
        gate.release()
        await asyncio.wait_for(forget, timeout=10)

        assert ranking(await gated.playlists.playlist(PLACE, "sad")) == [("spotify:b", 1), ("sha256:v1", 1)]
        assert await journal_members_view(gated) == await journal_summaries_view(gated)
        await gated.client.drop_database(db_name)
