"""A database made by an older moodbot gets today's indexes at start, and keeps its data.

Until 44d6fee (2026-11-24) the per-user indexes led with platform; they now lead with user_id
(SecantusDB's $lookup joins on user_id through an index only when user_id comes first). Same
names, new key order: the start must rebuild them, and touch no index moodbot did not make.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import date, timedelta, timezone

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, MongoClient
from pymongo.errors import DuplicateKeyError
from pymongo.monitoring import CommandListener

from storage.codec import request_to_doc, user_filter
from storage.database import Database
from storage.journal import PAGE_NEWEST_FIRST, PAGE_OLDEST_FIRST
from storage.models import UNREACHABLE, JournalEntry, MoodRequest, TrackRecord, User, UserRef
from storage.schema import (
    DEPARTURES,
    INDEXES,
    JOURNAL,
    JOURNAL_BY_PAGE,
    JOURNAL_BY_TIME,
    JOURNAL_MEMBERS,
    JOURNAL_TRACKS,
    LATEST_VERSION,
    META,
    PLACE_MEMBERS,
    PLACE_TRACKS,
    PLACE_TRACKS_BY_PLACE,
    PROMPTS,
    PROMPTS_BY_SENT_AT,
    REQUESTS,
    SCHEMA_DOC_ID,
    SERVERS,
    TRACKS,
    TRACKS_BY_ISRC,
    USERS,
    USERS_BY_PAUSE,
    VALIDATORS,
    ensure_indexes,
)
from tests.storage.conftest import T0

ALICE = UserRef("chat", "alice")
BOB = UserRef("chat", "bob")

# The indexes exactly as fd33d16 created them, with the user's fields platform first.
_OLD_USER = [("platform", ASCENDING), ("user_id", ASCENDING)]
OLD_INDEXES: dict[str, list[IndexModel]] = {
    USERS: [
        IndexModel(_OLD_USER, unique=True, name="user_unique"),
        IndexModel([("journal_enabled", ASCENDING)], name="journal_enabled"),
    ],
    TRACKS: [
        IndexModel([("key", ASCENDING)], unique=True, name="key_unique"),
        IndexModel([("spotify_id", ASCENDING)], sparse=True, name="spotify_id"),
        IndexModel([("youtube_id", ASCENDING)], sparse=True, name="youtube_id"),
    ],
    REQUESTS: [
        IndexModel([("place", ASCENDING), ("created_at", DESCENDING)], name="place_created"),
        IndexModel([*_OLD_USER, ("created_at", DESCENDING)], name="user_created"),
    ],
    JOURNAL: [
        IndexModel([*_OLD_USER, ("prompt_id", ASCENDING)], unique=True, name="user_prompt_unique"),
        IndexModel([*_OLD_USER, ("local_date", DESCENDING)], name="user_local_date"),
        IndexModel([("place", ASCENDING), ("created_at", DESCENDING)], sparse=True,
                   name="place_created"),
    ],
    PROMPTS: [
        IndexModel([("prompt_id", ASCENDING)], unique=True, name="prompt_unique"),
        IndexModel([*_OLD_USER, ("sent_at", DESCENDING)], name="user_sent"),
        IndexModel([("platform", ASCENDING), ("chat_id", ASCENDING), ("message_id", ASCENDING)],
                   name="message"),
        IndexModel([("sent_at", DESCENDING)], name="sent"),  # migration 2
    ],
}
# One an operator added by hand: never moodbot's to drop.
OPERATOR_INDEX = IndexModel([("mood", ASCENDING), ("created_at", DESCENDING)], name="ops_mood")
MIGRATED = {USERS: {"user_unique"}, REQUESTS: {"user_created"},
            JOURNAL: {"user_prompt_unique"}, PROMPTS: {"user_sent"}}


def entry(prompt_id: str) -> JournalEntry:
    return JournalEntry(user=ALICE, local_date=date(2026, 11, 20), prompt_id=prompt_id,
                        phrase="A song?", reply_text="Creep", track_key="spotify:1",
                        track_title="Creep", mood="sad", valence=-0.5, arousal=-0.3, created_at=T0)


def rebuilt(messages: list[str]) -> set[str]:
    """The indexes the log says were rebuilt, as collection.name."""
    return {m.split()[1] for m in messages if m.startswith("index ") and " rebuilt: " in m}


def spec(index) -> tuple:
    return (list(index["key"].items()), bool(index.get("unique")), bool(index.get("sparse")))


async def index_specs(database: Database, collection: str) -> dict[str, tuple]:
    return {ix["name"]: spec(ix) async for ix in await database.db[collection].list_indexes()}


async def make_old_database(database: Database) -> None:
    """As the moodbot of 2026-11-24 left it: schema version 2, platform-first indexes, data."""
    for name in (*OLD_INDEXES, SERVERS):
        await database.db.create_collection(name, validator=VALIDATORS[name], validationLevel="strict")
        if OLD_INDEXES.get(name):
            await database.db[name].create_indexes(OLD_INDEXES[name])
    await database.db[JOURNAL].create_indexes([OPERATOR_INDEX])
    await database.db[META].insert_one({"_id": SCHEMA_DOC_ID, "version": 2, "updated_at": T0})
    await database.users.upsert(User(ALICE.platform, ALICE.user_id, timezone="Europe/Lisbon"))
    assert await database.journal.add(entry("p1"))
    assert await database.journal.add(entry("p2"))


async def assert_todays_indexes(database: Database) -> None:
    for collection, models in INDEXES.items():
        specs = await index_specs(database, collection)
        for model in models:
            assert specs[model.document["name"]] == spec(model.document), (collection, model.document)
        assert not [name for name, (key, _, _) in specs.items() if key[:2] == _OLD_USER]
    assert (await index_specs(database, JOURNAL))["ops_mood"] == spec(OPERATOR_INDEX.document)


async def test_platform_first_indexes_are_rebuilt_user_id_first_at_start(mongo_uri, db_name, caplog):
    database = await Database.connect(mongo_uri, db_name)
    try:
        await make_old_database(database)
        before = {c: set(await index_specs(database, c)) for c in INDEXES}
        with caplog.at_level(logging.INFO, logger="storage.schema"):
            assert await database.init() == LATEST_VERSION
        await assert_todays_indexes(database)
        # Same names, and those migrations 4, 5, 7, 8, 10, 11, 12, 13, 16, 17, 18 and 19 add; user_page replaces
        # user_local_date, open_sent (with user_open and user_day) sent.
        assert {c: set(await index_specs(database, c)) for c in INDEXES} == {
            **before, USERS: before[USERS] | {"journal_paused"}, TRACKS: before[TRACKS] | {"isrc"}, DEPARTURES: {"_id_", "place_user_unique", "user"},
            REQUESTS: before[REQUESTS] | {"sender"},
            JOURNAL: before[JOURNAL] - {"user_local_date"} | {"user_page", "created", "place_user", "sender", "user_answered"},
            PROMPTS: before[PROMPTS] - {"sent"} | {"user_open", "user_day", "open_sent"},
            PLACE_TRACKS: {"_id_", "user_place_track_unique", "place_latest"},
            JOURNAL_TRACKS: {"_id_", "user_track_place_unique"},
            PLACE_MEMBERS: {"_id_", "user_place_unique", "place"}, JOURNAL_MEMBERS: {"_id_", "user_unique"}}
        assert rebuilt(caplog.messages) == {f"{c}.{name}" for c, names in MIGRATED.items() for name in names}
        assert "index journal.user_local_date dropped: moodbot no longer uses it" in caplog.messages
        assert "index users.user_unique rebuilt: (platform 1, user_id 1) unique -> (user_id 1, platform 1) unique" in caplog.messages

        # The data is intact, and the rebuilt unique index still refuses a second answer.
        assert (await database.users.get(ALICE)).timezone == "Europe/Lisbon"
        assert await database.journal.count(ALICE) == 2
        assert not await database.journal.add(entry("p1"))
        assert await database.journal.count(ALICE) == 2

        # A second start finds nothing to do.
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="storage.schema"):
            assert await database.init() == LATEST_VERSION
        assert rebuilt(caplog.messages) == set()
        await assert_todays_indexes(database)
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_two_bots_starting_at_once_on_an_old_database_both_start(mongo_uri, db_name):
    first, second = [await Database.connect(mongo_uri, db_name) for _ in range(2)]
    try:
        await make_old_database(first)
        assert await asyncio.gather(first.init(), second.init()) == [LATEST_VERSION] * 2
        await assert_todays_indexes(first)
        assert await first.journal.count(ALICE) == 2
    finally:
        await first.client.drop_database(db_name)
        await first.close()
        await second.close()


class WritesBetweenDropAndCreate(CommandListener):
    """Another bot still running the old moodbot: it saves an answer (`entry`, already stored) again,
    as a re-delivered message or a drained outbox does, once the start has dropped `index` of
    `collection` to rebuild it. Whether the database refused the second copy is in `refused`."""

    def __init__(self, uri: str, db_name: str, collection: str, index: str, doc: dict) -> None:
        self.uri, self.db_name, self.collection, self.index, self.doc = uri, db_name, collection, index, doc
        self.dropping: set[int] = set()
        self.refused: list[bool] = []

    def started(self, event) -> None:
        command = event.command
        if event.command_name == "dropIndexes" and (command["dropIndexes"], command.get("index")) == (
                self.collection, self.index):
            self.dropping.add(event.request_id)

    def succeeded(self, event) -> None:
        if event.request_id not in self.dropping:
            return
        with MongoClient(self.uri) as other_bot:
            try:
                other_bot[self.db_name][self.collection].insert_one(dict(self.doc))
                self.refused.append(False)
            except DuplicateKeyError:
                self.refused.append(True)

    def failed(self, event) -> None:
        pass


async def test_a_unique_index_rebuilt_at_start_lets_no_duplicate_in_meanwhile(mongo_uri, db_name):
    """Migration 3 rebuilds user_prompt_unique (platform first, then user_id first): dropped, then
    made. An answer saved again by a bot still running meanwhile (a rolling upgrade) went in as a
    second copy of the entry, and the create then failed on it: the start stopped, and every start
    after it, until someone deleted the copy by hand. A guard of the same fields holds the key
    while the index is rebuilt."""
    database = await Database.connect(mongo_uri, db_name)
    try:
        await make_old_database(database)
        stored = await database.db[JOURNAL].find_one({"prompt_id": "p1"}, projection={"_id": 0})
        other_bot = WritesBetweenDropAndCreate(mongo_uri, db_name, JOURNAL, "user_prompt_unique", stored)
        client = AsyncMongoClient(mongo_uri, tz_aware=True, tzinfo=timezone.utc, event_listeners=[other_bot])
        try:
            assert await Database(client, client[db_name]).init() == LATEST_VERSION
        finally:
            await client.close()
        assert other_bot.refused == [True]
        assert await database.db[JOURNAL].count_documents({"prompt_id": "p1"}) == 1
        await assert_todays_indexes(database)
        assert set(await index_specs(database, JOURNAL)) == {
            "_id_", "ops_mood", *(m.document["name"] for m in INDEXES[JOURNAL])}  # no guard left
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_set_up_drops_only_index_names_moodbot_made(db: Database, caplog):
    """A retired name of moodbot's goes; `_id_` and an operator's indexes stay, even one with the
    very key of an index moodbot wants (it serves the same queries; the start goes on)."""
    journal = db.db[JOURNAL]
    await journal.drop_index("user_page")
    await journal.create_indexes([
        IndexModel([("track_key", ASCENDING)], name="by_track_old"),  # moodbot's, retired
        IndexModel(JOURNAL_BY_PAGE.document["key"].items(),
                   name="ops_user_page"),  # an operator's, on what user_page would index
        OPERATOR_INDEX,
    ])
    with caplog.at_level(logging.INFO, logger="storage.schema"):
        await ensure_indexes(journal, INDEXES[JOURNAL], retired=["by_track_old", "never_made"])
    specs = await index_specs(db, JOURNAL)
    assert "by_track_old" not in specs and "user_page" not in specs
    assert {"_id_", "ops_user_page", "ops_mood", "user_prompt_unique", "place_created"} <= set(specs)
    assert "index journal.by_track_old dropped: moodbot no longer uses it" in caplog.messages
    assert any("ops_user_page" in m and "user_page" in m
               for m in caplog.messages), caplog.messages


async def make_version_3_database(database: Database) -> None:
    """As moodbot left it before tracks were indexed by ISRC: schema version 3, two releases of one
    recording saved (the single and the album) and asked for in a group."""
    assert await database.init() == LATEST_VERSION
    await database.db[TRACKS].drop_index("isrc")
    await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 3}})
    for key in ("spotify:single", "spotify:album"):
        await database.tracks.save(TrackRecord(key, "Creep", ["Radiohead"], isrc="GBAYE9200070"))
        await database.requests.add(MoodRequest(ALICE, "chat:g1", key, "sad", T0))


async def test_a_version_3_database_gets_the_isrc_index_and_keeps_its_tracks(mongo_uri, db_name, caplog):
    database = await Database.connect(mongo_uri, db_name)
    try:
        await make_version_3_database(database)
        assert "isrc" not in await index_specs(database, TRACKS)
        with caplog.at_level(logging.INFO, logger="storage.schema"):
            assert await database.init() == LATEST_VERSION
        assert "applying migration 4: tracks by ISRC (the releases of one recording are one song)" in caplog.messages
        assert (await index_specs(database, TRACKS))["isrc"] == spec(TRACKS_BY_ISRC.document)
        assert await database.db[TRACKS].count_documents({"isrc": "GBAYE9200070"}) == 2
        [song] = await database.playlists.playlist("chat:g1", "sad")
        assert (song.track_key, song.members) == ("spotify:album", 1)
        # Re-running it (a crash before the version was recorded) changes nothing.
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 3}})
        before = await index_specs(database, TRACKS)
        assert await database.init() == LATEST_VERSION
        assert await index_specs(database, TRACKS) == before
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_two_bots_starting_at_once_on_a_version_3_database_both_start(mongo_uri, db_name):
    first, second = [await Database.connect(mongo_uri, db_name) for _ in range(2)]
    try:
        await make_version_3_database(first)
        assert await asyncio.gather(first.init(), second.init()) == [LATEST_VERSION] * 2
        assert (await index_specs(first, TRACKS))["isrc"] == spec(TRACKS_BY_ISRC.document)
    finally:
        await first.client.drop_database(db_name)
        await first.close()
        await second.close()


async def make_version_4_database(database: Database) -> None:
    """As moodbot left it before departures were recorded: schema version 4, no `departures`."""
    assert await database.init() == LATEST_VERSION
    await database.db.drop_collection(DEPARTURES)
    await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 4}})
    await database.requests.add(MoodRequest(ALICE, "chat:g1", "spotify:1", "sad", T0))


async def test_a_version_4_database_gets_the_departures_and_a_departure_counts(mongo_uri, db_name, caplog):
    database = await Database.connect(mongo_uri, db_name)
    try:
        await make_version_4_database(database)
        assert DEPARTURES not in await database.db.list_collection_names()
        with caplog.at_level(logging.INFO, logger="storage.schema"):
            assert await database.init() == LATEST_VERSION
        assert ("applying migration 5: departures (a member who left a place stops counting in its playlists)"
                in caplog.messages)
        specs = await index_specs(database, DEPARTURES)
        for model in INDEXES[DEPARTURES]:
            assert specs[model.document["name"]] == spec(model.document)
        options = await database.db[DEPARTURES].options()
        assert options["validator"] == VALIDATORS[DEPARTURES]

        assert await database.playlists.members_seen("chat:g1") == [ALICE]
        await database.playlists.member_left("chat:g1", ALICE, T0 + timedelta(hours=1))
        assert await database.playlists.members_seen("chat:g1") == []
        # Re-running it (a crash before the version was recorded) changes nothing, the departure stays.
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 4}})
        assert await database.init() == LATEST_VERSION
        assert await index_specs(database, DEPARTURES) == specs
        assert await database.playlists.members_seen("chat:g1") == []
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_two_bots_starting_at_once_on_a_version_4_database_both_start(mongo_uri, db_name):
    first, second = [await Database.connect(mongo_uri, db_name) for _ in range(2)]
    try:
        await make_version_4_database(first)
        assert await asyncio.gather(first.init(), second.init()) == [LATEST_VERSION] * 2
        specs = await index_specs(first, DEPARTURES)
        assert {m.document["name"] for m in INDEXES[DEPARTURES]} <= set(specs)
        assert (await first.db[DEPARTURES].options())["validator"] == VALIDATORS[DEPARTURES]
    finally:
        await first.client.drop_database(db_name)
        await first.close()
        await second.close()


def test_the_page_index_is_the_page_query_s_equality_fields_then_its_sort():
    """MongoDB reads a sort from a compound index when the query has equality conditions on every
    key before the sort keys, and the sort has the index's directions or all of them inverted."""
    key = list(JOURNAL_BY_PAGE.document["key"].items())
    assert {field for field, _ in key[:2]} == set(user_filter(ALICE))
    assert key[2:] == PAGE_NEWEST_FIRST
    assert PAGE_OLDEST_FIRST == [(field, -direction) for field, direction in PAGE_NEWEST_FIRST]


# The index moodbot made until migration 6, whose key user_page begins with.
USER_LOCAL_DATE = IndexModel([("user_id", ASCENDING), ("platform", ASCENDING), ("local_date", DESCENDING)],
                             name="user_local_date")


async def make_version_5_database(database: Database) -> None:
    """As moodbot left it before the journal was indexed in page order: schema version 5, the
    journal by (user, local_date), an operator's index on the journal, 25 entries of two days."""
    assert await database.init() == LATEST_VERSION
    if "user_page" in await index_specs(database, JOURNAL):
        await database.db[JOURNAL].drop_index("user_page")
    await database.db[JOURNAL].create_indexes([USER_LOCAL_DATE, OPERATOR_INDEX])
    await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 5}})
    for i in range(25):
        assert await database.journal.add(
            replace(entry(f"p{i}"), local_date=date(2026, 11, 20 + i % 2), created_at=T0 + timedelta(minutes=i // 3)))


async def pages(database: Database) -> list[list[str]]:
    """Every page of Alice's journal, by cursor, oldest last; then back again."""
    page = await database.journal.page(ALICE, limit=4)
    seen = [[e.prompt_id for e in page.entries]]
    while page.has_older:
        page = await database.journal.page(ALICE, limit=4, before=page.cursors[-1])
        seen.append([e.prompt_id for e in page.entries])
    while page.has_newer:
        page = await database.journal.page(ALICE, limit=4, after=page.cursors[0])
        seen.append([e.prompt_id for e in page.entries])
    return seen


async def test_a_version_5_database_gets_the_page_index_and_its_pages_stay_the_same(mongo_uri, db_name, caplog):
    database = await Database.connect(mongo_uri, db_name)
    try:
        await make_version_5_database(database)
        before = await pages(database)
        assert sum(map(len, before[:7])) == 25 and before[-1] == before[0]
        with caplog.at_level(logging.INFO, logger="storage.schema"):
            assert await database.init() == LATEST_VERSION
        assert "applying migration 6: journal pages in list order (user, local_date, created_at, _id)" in caplog.messages
        assert "index journal.user_local_date dropped: moodbot no longer uses it" in caplog.messages
        specs = await index_specs(database, JOURNAL)
        assert specs["user_page"] == ([("user_id", 1), ("platform", 1), ("local_date", -1), ("created_at", -1),
                                       ("_id", -1)], False, False)
        assert "user_local_date" not in specs
        assert specs["ops_mood"] == spec(OPERATOR_INDEX.document)  # not moodbot's to drop
        assert await pages(database) == before
        # Re-running it (a crash before the version was recorded) changes nothing.
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 5}})
        assert await database.init() == LATEST_VERSION
        assert await index_specs(database, JOURNAL) == specs
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_two_bots_starting_at_once_on_a_version_5_database_both_start(mongo_uri, db_name):
    first, second = [await Database.connect(mongo_uri, db_name) for _ in range(2)]
    try:
        await make_version_5_database(first)
        assert await asyncio.gather(first.init(), second.init()) == [LATEST_VERSION] * 2
        specs = await index_specs(first, JOURNAL)
        assert specs["user_page"] == spec(JOURNAL_BY_PAGE.document) and "user_local_date" not in specs
        assert await first.journal.count(ALICE) == 25
    finally:
        await first.client.drop_database(db_name)
        await first.close()
        await second.close()


async def make_version_6_database(database: Database) -> None:
    """As moodbot left it before the places' summaries: schema version 6, requests only."""
    assert await database.init() == LATEST_VERSION
    await database.db.drop_collection(PLACE_TRACKS)
    await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 6}})
    requests = [(ALICE, "chat:g1", "spotify:1", "sad", T0, "Creep"),
                (ALICE, "chat:g1", "spotify:1", "calm", T0 + timedelta(hours=1), None),  # her last word
                (BOB, "chat:g1", "spotify:1", "sad", T0, "Creep"),
                (BOB, "chat:g2", "spotify:2", "happy", T0, "Other"),
                (BOB, None, "spotify:3", "happy", T0, "Private")]  # in no place
    await database.db[REQUESTS].insert_many([request_to_doc(MoodRequest(*r)) for r in requests])


async def test_a_version_6_database_sums_up_its_requests_and_its_playlists_stay(mongo_uri, db_name, caplog):
    database = await Database.connect(mongo_uri, db_name)
    try:
        await make_version_6_database(database)
        with caplog.at_level(logging.INFO, logger="storage.schema"):
            assert await database.init() == LATEST_VERSION
        assert ("applying migration 7: each member's tracks per place, summed up from the requests "
                "(playlists read them)") in caplog.messages
        specs = await index_specs(database, PLACE_TRACKS)
        for model in INDEXES[PLACE_TRACKS]:
            assert specs[model.document["name"]] == spec(model.document)
        assert (await database.db[PLACE_TRACKS].options())["validator"] == VALIDATORS[PLACE_TRACKS]

        async def state():
            return ([(i.track_key, i.members, i.title) for i in await database.playlists.playlist("chat:g1", "sad")],
                    [(i.track_key, i.members) for i in await database.playlists.playlist("chat:g1", "calm")],
                    await database.playlists.members_seen("chat:g1"),
                    await database.playlists.members_seen("chat:g2"))

        assert await state() == ([("spotify:1", 1, "Creep")], [("spotify:1", 1)], [ALICE, BOB], [BOB])
        assert await database.db[PLACE_TRACKS].count_documents({}) == 3
        # Re-running it (a crash before the version was recorded) changes nothing.
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 6}})
        assert await database.init() == LATEST_VERSION
        assert await state() == ([("spotify:1", 1, "Creep")], [("spotify:1", 1)], [ALICE, BOB], [BOB])
        assert await database.db[PLACE_TRACKS].count_documents({}) == 3
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_two_bots_starting_at_once_on_a_version_6_database_both_start(mongo_uri, db_name):
    first, second = [await Database.connect(mongo_uri, db_name) for _ in range(2)]
    try:
        await make_version_6_database(first)
        assert await asyncio.gather(first.init(), second.init()) == [LATEST_VERSION] * 2
        assert await first.db[PLACE_TRACKS].count_documents({}) == 3
        assert await first.playlists.members_seen("chat:g1") == [ALICE, BOB]
    finally:
        await first.client.drop_database(db_name)
        await first.close()
        await second.close()


async def test_a_version_7_database_gets_the_journal_by_time_and_its_mood_of_the_week_stays(mongo_uri, db_name, caplog):
    database = await Database.connect(mongo_uri, db_name)
    try:
        assert await database.init() == LATEST_VERSION
        await database.db[JOURNAL].drop_index("created")
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 7}})
        await database.requests.add(MoodRequest(ALICE, "chat:g1", "spotify:2", "calm", T0))
        assert await database.journal.add(entry("p1"))  # Alice's, in a private chat: counts in g1
        assert await database.journal.add(replace(entry("p2"), created_at=T0 - timedelta(days=8)))
        week = await database.playlists.server_mood_of_week("chat:g1", T0 + timedelta(hours=1))
        assert week == {"calm": 1, "sad": 1}

        with caplog.at_level(logging.INFO, logger="storage.schema"):
            assert await database.init() == LATEST_VERSION
        assert "applying migration 8: journal by time (a server's mood of the week reads the week's entries)" in caplog.messages
        assert (await index_specs(database, JOURNAL))["created"] == spec(JOURNAL_BY_TIME.document)
        assert await database.playlists.server_mood_of_week("chat:g1", T0 + timedelta(hours=1)) == week
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_a_version_8_database_forgets_the_file_names_its_uploads_were_saved_under(mongo_uri, db_name, caplog):
    """Before 867876c an upload's shared record was saved under its first sender's file name, and
    nothing cleared it: /forget does not touch the shared cache (it holds no one's data now), so a
    private voice memo's name stayed in the database for good."""
    database = await Database.connect(mongo_uri, db_name)
    try:
        assert await database.init() == LATEST_VERSION
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 8}})
        memo = TrackRecord(key="sha256:ab12", title="Anna - voice memo to Dr Miller", mood=None)
        await database.tracks.save(memo)
        await database.tracks.save(TrackRecord(key="spotify:1", title="Creep", mood=None))

        with caplog.at_level(logging.INFO, logger="storage.schema"):
            assert await database.init() == LATEST_VERSION
        assert "applying migration 9: uploads' shared records keep no file name (saved with one before 867876c)" \
            in caplog.messages
        titles = {doc["key"]: doc["title"] async for doc in database.db[TRACKS].find()}
        assert titles == {"sha256:ab12": "", "spotify:1": "Creep"}
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_a_version_1_database_with_an_operators_index_on_send_time_starts(mongo_uri, db_name, caplog):
    """Migration 2 wants prompts by send time, which an operator indexed by hand under another
    name: that index serves in its place. MongoDB (and SecantusDB) refuse a second index of the
    same key and options, so asking for one failed every start at migration 2."""
    database = await Database.connect(mongo_uri, db_name)
    try:
        assert await database.init() == LATEST_VERSION  # without "sent", which migration 10 retired
        await database.db[PROMPTS].create_indexes([IndexModel([("sent_at", DESCENDING)], name="sent_at_-1")])
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 1}})
        with caplog.at_level(logging.INFO, logger="storage.schema"):
            assert await database.init() == LATEST_VERSION
        specs = await index_specs(database, PROMPTS)
        assert "sent" not in specs and specs["sent_at_-1"] == spec(PROMPTS_BY_SENT_AT.document)
        assert "index prompts.sent not created: sent_at_-1, an index moodbot did not make, is (sent_at -1) already" in caplog.messages
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_an_operators_ttl_index_on_the_key_of_a_wanted_one_serves_in_its_place(db: Database, caplog):
    """A TTL index an operator made on the journal's time (entries kept a year) has the key of
    `created`: MongoDB refuses a second index of one key, uniqueness, sparseness and partial filter
    (IndexOptionsConflict) whatever other options tell them apart, a TTL too, so asking for it
    failed every start on MongoDB (SecantusDB takes it). It is left to serve, with a warning."""
    journal = db.db[JOURNAL]
    await journal.drop_index("created")
    await journal.create_indexes([IndexModel([("created_at", DESCENDING)], name="keep_a_year",
                                             expireAfterSeconds=365 * 86_400)])
    with caplog.at_level(logging.INFO, logger="storage.schema"):
        await ensure_indexes(journal, INDEXES[JOURNAL])
        await ensure_indexes(journal, INDEXES[JOURNAL])  # a second start: the same
    indexes = {ix["name"]: ix async for ix in await journal.list_indexes()}
    assert "created" not in indexes
    assert indexes["keep_a_year"]["expireAfterSeconds"] == 365 * 86_400
    warning = ("index journal.created not created: keep_a_year, an index moodbot did not make, is "
               "(created_at -1) expireAfterSeconds=31536000 already")
    assert caplog.messages.count(warning) == 2


async def test_a_version_11_database_indexes_its_summaries_by_last_answer_and_its_week_stays(mongo_uri, db_name, caplog):
    """Migration 12 makes place_tracks' place_latest (place, latest.at), for a window's members,
    and drops place (place), which it serves: the place's summaries alone are still read by it."""
    database = await Database.connect(mongo_uri, db_name)
    try:
        assert await database.init() == LATEST_VERSION
        await database.db[PLACE_TRACKS].drop_index("place_latest")
        await database.db[PLACE_TRACKS].create_indexes([IndexModel([("place", ASCENDING)], name="place")])
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 11}})
        await database.requests.add(MoodRequest(ALICE, "chat:g1", "spotify:2", "calm", T0 - timedelta(days=10)))
        assert await database.journal.add(entry("p1"))  # Alice's, in a private chat: counts in g1
        await database.requests.add(MoodRequest(BOB, "chat:g1", "spotify:3", "happy", T0))
        now = T0 + timedelta(hours=1)
        week = await database.playlists.server_mood_of_week("chat:g1", now)
        assert week == {"happy": 1, "sad": 1}

        with caplog.at_level(logging.INFO, logger="storage.schema"):
            assert await database.init() == LATEST_VERSION
        assert ("applying migration 12: place summaries by place and last answer (a window's members, "
                "not the place's all)") in caplog.messages
        specs = await index_specs(database, PLACE_TRACKS)
        assert "place" not in specs and specs["place_latest"] == spec(PLACE_TRACKS_BY_PLACE.document)
        assert await database.playlists.server_mood_of_week("chat:g1", now) == week
        for query in ({"place": "chat:g1"}, {"place": "chat:g1", "latest.at": {"$gte": T0}}):
            plan = (await database.db.command("explain", {"find": PLACE_TRACKS, "filter": query}))["queryPlanner"]
            assert plan["winningPlan"]["inputStage"]["indexName"] == "place_latest", query
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_a_version_12_database_indexes_its_users_by_pause_and_finds_the_paused_ones(mongo_uri, db_name, caplog):
    """Migration 13 makes users' journal_paused: the few paused users were read by scanning every
    user, at each process's first command."""
    database = await Database.connect(mongo_uri, db_name)
    try:
        assert await database.init() == LATEST_VERSION
        await database.db[USERS].drop_index("journal_paused")
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 12}})
        for who, paused in ((ALICE, UNREACHABLE), (BOB, None)):
            await database.users.set_journal(who, enabled=False, prompt_time=None, timezone="UTC", chat_id=None,
                                             paused=paused)
        await database.db[USERS].insert_one(  # saved before the pause fields came (39bd19f)
            {"platform": "chat", "user_id": "carol", "timezone": "UTC", "journal_enabled": True,
             "share_with_server": True, "created_at": T0})

        with caplog.at_level(logging.INFO, logger="storage.schema"):
            assert await database.init() == LATEST_VERSION
        assert "applying migration 13: users by why their prompts stopped (every user was read for the few paused)" \
            in caplog.messages
        assert (await index_specs(database, USERS))["journal_paused"] == spec(USERS_BY_PAUSE.document)
        assert await database.users.paused_users() == [ALICE]
        plan = (await database.db.command("explain", {"find": USERS, "filter": {"journal_paused": {"$gte": ""}}}))
        assert plan["queryPlanner"]["winningPlan"]["inputStage"]["indexName"] == "journal_paused"
    finally:
        await database.client.drop_database(db_name)
        await database.close()
