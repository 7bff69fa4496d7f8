"""The start upgrades a database an older moodbot wrote, whatever version it is at and wherever an
earlier start stopped; refuses one a newer moodbot wrote; and says what to do when old data keeps a
unique index from being made, instead of "try again shortly" at every start."""
from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from datetime import timedelta, timezone
from typing import Any, Awaitable, Callable

import pytest
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure
from pymongo.monitoring import CommandListener

from storage import journal_tracks, place_tracks
from storage.database import Database
from storage.models import StorageError, UserRef
from storage.schema import (
    DEPARTURES,
    INDEXES,
    BY_SENDER,
    JOURNAL,
    JOURNAL_BY_ANSWER,
    JOURNAL_BY_PAGE,
    JOURNAL_BY_PLACE_USER,
    JOURNAL_BY_TIME,
    JOURNAL_MEMBERS,
    JOURNAL_TRACKS,
    LATEST_VERSION,
    META,
    PLACE_MEMBERS,
    PLACE_TRACKS,
    PLACE_TRACKS_BY_PLACE,
    PROMPTS,
    PROMPTS_BY_DAY,
    PROMPTS_BY_SENT_AT,
    PROMPTS_OPEN_BY_TIME,
    PROMPTS_OPEN_BY_USER,
    REQUESTS,
    SCHEMA_DOC_ID,
    SERVERS,
    TRACKS,
    TRACKS_BY_ISRC,
    USERS,
    USERS_BY_PAUSE,
    VALIDATORS,
    migrate,
    schema_version,
)
from tests.fakes.wire_gate import gated_database
from tests.storage.conftest import T0


async def snapshot(database: Database) -> dict[str, Any]:
    """Everything in the database: each collection's options, indexes and documents."""
    db = database.db
    state: dict[str, Any] = {}
    for info in await (await db.list_collections()).to_list():
        name = info["name"]
        state[name] = {
            "options": info.get("options", {}),
            "indexes": sorted([(ix["name"], list(ix["key"].items()), bool(ix.get("unique")), bool(ix.get("sparse")))
                               async for ix in await db[name].list_indexes()]),
            "docs": await db[name].find({}, sort=[("_id", 1)]).to_list(),
        }
    return state


USER_DOC = {"platform": "chat", "user_id": "alice", "timezone": "Europe/Lisbon", "prompt_time": "21:00",
            "journal_enabled": True, "share_with_server": True, "chat_id": "alice", "created_at": T0}


async def test_a_database_a_newer_moodbot_wrote_is_refused_and_left_untouched(mongo_uri, db_name):
    """A higher schema number than this code knows: its documents or indexes may be in shapes this
    moodbot would misread or undo. It started on such a database as on a current one."""
    database = await Database.connect(mongo_uri, db_name)
    try:
        assert await database.init() == LATEST_VERSION
        await database.db[USERS].insert_one(dict(USER_DOC))
        newer = LATEST_VERSION + 1
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": newer}})
        # As a newer moodbot might have left it: an index this one no longer lists is not dropped.
        await database.db[JOURNAL].drop_index("user_page")
        before = await snapshot(database)
        with pytest.raises(StorageError) as refused:
            await database.init()
        message = str(refused.value)
        assert f"schema version {newer}" in message and f"up to {LATEST_VERSION}" in message, message
        assert "newer moodbot" in message and "try again shortly" not in message, message
        assert await snapshot(database) == before
    finally:
        await database.client.drop_database(db_name)
        await database.close()


@pytest.mark.parametrize("collection, index, duplicate", [
    (USERS, "user_unique", dict(USER_DOC)),
    (JOURNAL, "user_prompt_unique", {"platform": "chat", "user_id": "alice", "local_date": "2026-11-20",
                                     "prompt_id": "p1", "track_key": "spotify:1", "mood": "sad",
                                     "valence": -0.5, "arousal": -0.3, "created_at": T0}),
])
async def test_duplicates_that_keep_a_unique_index_from_being_made_are_said_and_kept(
        mongo_uri, db_name, collection, index, duplicate):
    """Two documents of one key (restored from a dump made without indexes, or written while an
    older start had dropped the index to rebuild it): the unique index cannot be made. Every start
    said "The database could not complete that — try again shortly.", which no wait mends."""
    database = await Database.connect(mongo_uri, db_name)
    try:
        assert await database.init() == LATEST_VERSION
        await database.db[collection].drop_index(index)
        await database.db[collection].insert_many([dict(duplicate), dict(duplicate)])
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 2}})
        for _ in range(2):  # the next start says the same
            with pytest.raises(StorageError) as refused:
                await database.init()
            message = str(refused.value)
            assert "try again shortly" not in message, message
            assert f"{collection}.{index}" in message and "1 key" in message, message
            assert "alice" not in message  # no user's data in a line that reaches the logs
        assert await database.db[collection].count_documents({}) == 2  # nothing deleted
        # With one of them removed, the next start makes the index and finishes.
        extra = await database.db[collection].find_one({})
        await database.db[collection].delete_one({"_id": extra["_id"]})
        assert await database.init() == LATEST_VERSION
        names = {ix["name"] async for ix in await database.db[collection].list_indexes()}
        assert {m.document["name"] for m in INDEXES[collection]} <= names
    finally:
        await database.client.drop_database(db_name)
        await database.close()


# --- A database as each older moodbot left it, in the shapes of its day ---------------------------

_PLATFORM_FIRST = [("platform", ASCENDING), ("user_id", ASCENDING)]


def _platform_first(model: IndexModel) -> IndexModel:
    """The index as moodbot made it before migration 3 (44d6fee): the user's fields platform first."""
    document = dict(model.document)
    key = list(document.pop("key").items())
    if [field for field, _ in key[:2]] == ["user_id", "platform"]:
        key = _PLATFORM_FIRST + key[2:]
    return IndexModel(key, **document)


PROMPTS_READ = (PROMPTS_OPEN_BY_USER, PROMPTS_BY_DAY, PROMPTS_OPEN_BY_TIME)  # migration 10
USER_LOCAL_DATE = IndexModel([("user_id", ASCENDING), ("platform", ASCENDING), ("local_date", DESCENDING)],
                             name="user_local_date")
PLACE = IndexModel([("place", ASCENDING)], name="place")  # place_tracks' until migration 12


def indexes_at(version: int) -> dict[str, list[IndexModel]]:
    """The indexes a database at `version` had, as the migrations up to it made them."""
    added = {TRACKS_BY_ISRC.document["name"]: 4, JOURNAL_BY_PAGE.document["name"]: 6,
             JOURNAL_BY_TIME.document["name"]: 8, **{m.document["name"]: 10 for m in PROMPTS_READ},
             JOURNAL_BY_PLACE_USER.document["name"]: 11, PLACE_TRACKS_BY_PLACE.document["name"]: 12,
             USERS_BY_PAUSE.document["name"]: 13, BY_SENDER.document["name"]: 16,
             JOURNAL_BY_ANSWER.document["name"]: 18}
    collections = [USERS, TRACKS, REQUESTS, JOURNAL, PROMPTS, SERVERS]
    collections += [DEPARTURES] if version >= 5 else []
    collections += [PLACE_TRACKS] if version >= 7 else []
    collections += [JOURNAL_TRACKS] if version >= 17 else []
    collections += [PLACE_MEMBERS, JOURNAL_MEMBERS] if version >= 19 else []
    indexes = {}
    for name in collections:
        models = [m for m in INDEXES[name] if added.get(m.document["name"], 0) <= version]
        if name == JOURNAL and version < 6:
            models.append(USER_LOCAL_DATE)
        if name == PROMPTS and 2 <= version < 10:
            models.append(PROMPTS_BY_SENT_AT)
        if name == PLACE_TRACKS and version < 12:
            models.append(PLACE)
        indexes[name] = models if version >= 3 else [_platform_first(m) for m in models]
    return indexes


def validator_at(name: str) -> dict[str, Any]:
    """The validators of 2026-11-20 (fd33d16) to 7a42dce: users' journal_paused fields came in
    39bd19f without a migration, so a database made before kept the validator without them."""
    validator = copy.deepcopy(VALIDATORS[name])
    if name == USERS:
        for field in ("journal_paused", "journal_paused_at"):
            del validator["$jsonSchema"]["properties"][field]
    return validator


UPLOAD = "sha256:ab12"
OLD_DOCS: dict[str, list[dict[str, Any]]] = {
    # Before 39bd19f: no journal_paused fields.
    USERS: [{**USER_DOC}, {**USER_DOC, "user_id": "bob", "chat_id": "bob", "journal_enabled": False,
                           "prompt_time": None, "share_with_server": False}],
    # Before 867876c an upload's shared record kept its first sender's file name (migration 9).
    TRACKS: [
        {"key": "spotify:single", "title": "Creep", "artists": ["Radiohead"], "isrc": "GBAYE9200070",
         "mood": {"mood": "sad", "probabilities": {"sad": 0.9, "calm": 0.1}, "valence": -0.5, "arousal": -0.3,
                  "model": "resnet", "model_version": "1"}, "classified_at": T0},
        {"key": "spotify:album", "title": "Creep", "artists": ["Radiohead"], "isrc": "GBAYE9200070",
         "mood": None, "classified_at": None},
        {"key": UPLOAD, "title": "Anna - voice memo to Dr Miller.m4a", "artists": [], "mood": None},
    ],
    # Before 867876c requests kept no title.
    REQUESTS: [
        {"platform": "chat", "user_id": "alice", "place": "chat:g1", "track_key": "spotify:single",
         "mood": "sad", "created_at": T0},
        {"platform": "chat", "user_id": "alice", "place": "chat:g1", "track_key": "spotify:album",
         "mood": "sad", "created_at": T0 + timedelta(hours=1)},
        {"platform": "chat", "user_id": "bob", "place": "chat:g1", "track_key": UPLOAD, "mood": "calm",
         "created_at": T0},
        {"platform": "chat", "user_id": "bob", "place": None, "track_key": "spotify:single", "mood": "sad",
         "created_at": T0},
    ],
    JOURNAL: [
        {"platform": "chat", "user_id": "alice", "local_date": f"2026-11-{day}", "prompt_id": f"p{day}",
         "phrase": "A song?", "reply_text": "Creep", "track_key": "spotify:single", "track_title": "Creep",
         "mood": "sad", "valence": -0.5, "arousal": -0.3, "created_at": T0 + timedelta(days=day - 20),
         "note": "", "place": None}
        for day in (20, 21)
    ],
    PROMPTS: [
        {"platform": "chat", "user_id": "alice", "prompt_id": f"p{day}", "phrase": "A song?",
         "local_date": f"2026-11-{day}", "sent_at": T0 + timedelta(days=day - 20), "chat_id": "alice",
         "message_id": str(day), "answered_at": None if day == 22 else T0 + timedelta(days=day - 20, hours=1)}
        for day in (20, 21, 22)
    ],
    SERVERS: [{"_id": "chat:g1", "playlist_enabled": True}],
    DEPARTURES: [],
}


async def make_database_at(database: Database, version: int) -> None:
    """As the moodbot whose schema was `version` left it, with documents in the shapes of its day."""
    db = database.db
    for name, models in indexes_at(version).items():
        await db.create_collection(name, validator=validator_at(name), validationLevel="strict")
        if models:
            await db[name].create_indexes(models)
        if OLD_DOCS.get(name):
            docs = copy.deepcopy(OLD_DOCS[name])
            if name == TRACKS and version >= 9:
                docs[-1]["title"] = ""
            await db[name].insert_many(docs)
    if version >= 7:
        await place_tracks.summarize(db[REQUESTS], db[PLACE_TRACKS])
    if version >= 17:
        await journal_tracks.summarize(db[JOURNAL], db[JOURNAL_TRACKS])
    if version >= 19:  # members' documents (migration 19): the places' made by `summarize` above
        await journal_tracks.rebuild_members(db[JOURNAL_TRACKS])
    await db[META].insert_one({"_id": SCHEMA_DOC_ID, "version": version, "updated_at": T0})


def without_ids(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(repr(sorted((k, v) for k, v in doc.items() if k not in ("_id", "updated_at"))) for doc in docs)


async def schema_of(database: Database) -> dict[str, Any]:
    """Each collection's validator and indexes, and its documents without their ids."""
    state = await snapshot(database)
    return {name: {"validator": s["options"].get("validator"), "indexes": s["indexes"],
                   "docs": without_ids(s["docs"])} for name, s in state.items()}


async def fresh_schema(mongo_uri: str) -> dict[str, Any]:
    database = await Database.connect(mongo_uri, f"t_fresh_{uuid.uuid4().hex[:8]}")
    try:
        await database.init()
        return {name: {k: v for k, v in s.items() if k != "docs"} for name, s in (await schema_of(database)).items()}
    finally:
        await database.client.drop_database(database.db.name)
        await database.close()


async def assert_upgraded(database: Database, fresh: dict[str, Any]) -> None:
    """The schema of a fresh database, and every old document there, in today's shape."""
    assert await schema_version(database.db) == LATEST_VERSION
    upgraded = await schema_of(database)
    assert {name: {k: v for k, v in s.items() if k != "docs"} for name, s in upgraded.items()} == fresh
    for name, docs in OLD_DOCS.items():
        expected = copy.deepcopy(docs)
        if name == TRACKS:
            expected[-1]["title"] = ""  # the file name is gone, the record kept
        assert upgraded[name]["docs"] == without_ids(expected), name
    # The summaries of the requests in places, one per member, place and track.
    assert await database.db[PLACE_TRACKS].count_documents({}) == 3
    # The repos read them.
    alice = await database.users.get(UserRef("chat", "alice"))
    assert (alice.timezone, alice.journal_paused) == ("Europe/Lisbon", None)
    assert await database.journal.count(UserRef("chat", "alice")) == 2
    [song] = await database.playlists.playlist("chat:g1", "sad")
    assert (song.track_key, song.members) == ("spotify:album", 1)
    assert [p.prompt_id for p in await database.prompts.open_since(T0, 10)] == ["p22"]


async def full_schema(db: AsyncDatabase) -> dict[str, Any]:
    """Each collection's options, every option of each of its indexes, and the meta documents
    without their times."""
    state: dict[str, Any] = {}
    for info in await (await db.list_collections()).to_list():
        indexes = sorted([repr(sorted((k, v) for k, v in ix.items() if k not in ("v", "ns")))
                          async for ix in await db[info["name"]].list_indexes()])
        state[info["name"]] = (info.get("options", {}), indexes)
    state["meta docs"] = [{k: v for k, v in doc.items() if k != "updated_at"} async for doc in db[META].find({})]
    return state


class Counting(CommandListener):
    def __init__(self) -> None:
        self.commands = 0

    def started(self, event) -> None:
        self.commands += event.command_name not in ("ping", "saslStart", "saslContinue", "hello", "endSessions")

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


async def test_a_new_database_is_made_in_one_step_as_every_migration_would_make_it(mongo_uri, caplog):
    """A new database is made at today's schema in one step (`migrate`: migration 1's
    create_schema, then the latest version), not by each migration in turn finding nothing to
    change: about 40 commands, not 170 (0.04 s, not 0.2 s, a start, and each test's database).
    Its collections, their options, every option of every index and the meta documents are what all
    the migrations make of a database with nothing in it (a meta collection alone takes that path)."""
    counting = Counting()
    client = AsyncMongoClient(mongo_uri, tz_aware=True, tzinfo=timezone.utc, event_listeners=[counting])
    one, each = client[f"t_one_{uuid.uuid4().hex[:8]}"], client[f"t_each_{uuid.uuid4().hex[:8]}"]
    try:
        with caplog.at_level(logging.INFO, logger="storage.schema"):
            assert await migrate(one) == LATEST_VERSION
            assert f"new database: creating schema version {LATEST_VERSION}" in caplog.text
            assert "applying migration" not in caplog.text
            assert counting.commands < 60, counting.commands
            await each.create_collection(META)
            assert await migrate(each) == LATEST_VERSION
            assert f"applying migration {LATEST_VERSION}:" in caplog.text
        assert await full_schema(one) == await full_schema(each)
        assert await migrate(one) == LATEST_VERSION and await full_schema(one) == await full_schema(each)
    finally:
        await client.drop_database(one.name)
        await client.drop_database(each.name)
        await client.close()


@pytest.mark.parametrize("version", range(1, LATEST_VERSION))
async def test_a_database_at_each_older_version_reaches_todays_schema_with_all_its_documents(
        mongo_uri, db_name, version, caplog):
    fresh = await fresh_schema(mongo_uri)
    database = await Database.connect(mongo_uri, db_name)
    try:
        await make_database_at(database, version)
        assert await database.init() == LATEST_VERSION
        await assert_upgraded(database, fresh)
        # Today's validators hold: users' journal_paused fields (39bd19f) were left unchecked.
        with pytest.raises(OperationFailure):
            await database.db[USERS].update_one({"user_id": "alice"}, {"$set": {"journal_paused": 5}})
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="storage.schema"):
            assert await database.init() == LATEST_VERSION
        assert [r.getMessage() for r in caplog.records if r.name == "storage.schema"] == []  # nothing to do
    finally:
        await database.client.drop_database(db_name)
        await database.close()


# --- A start stopped half-way ---------------------------------------------------------------------

WRITES = {"create", "collMod", "createIndexes", "dropIndexes", "insert", "update", "delete", "findAndModify"}


class StopAt(CommandListener):
    """Cancels `task` as the `at`th write to the database starts: the process killed there (the
    write may or may not reach the server). Counts the writes either way."""

    def __init__(self, at: int | None = None) -> None:
        self.at, self.writes, self.task = at, 0, None

    def started(self, event) -> None:
        if event.command_name in WRITES:
            self.writes += 1
            if self.writes == self.at and self.task is not None:
                self.task.cancel()

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


async def start_stopped_at(mongo_uri: str, db_name: str, at: int | None,
                           run: Callable[[AsyncDatabase], Awaitable[Any]] = migrate) -> int:
    """A start's upgrade on a version 1 database (`run(db)`: all the migrations by default),
    stopped as its `at`th write starts (None: not stopped); returns how many writes it began. Run
    outside the start's `pymongo.timeout` (`Database.init`), under which pymongo (4.20.1) swallows
    a cancel that comes during a write (sends the write again, or goes on): until 2026-12-06 none of
    the 67 stops of `test_a_start_stopped_before_any_step_of_the_upgrade_is_finished_by_the_next`
    stopped anything, the start going on to the end."""
    stop = StopAt(at)
    client = AsyncMongoClient(mongo_uri, tz_aware=True, tzinfo=timezone.utc, event_listeners=[stop])
    try:
        stop.task = asyncio.ensure_future(run(client[db_name]))
        try:
            await stop.task
        except asyncio.CancelledError:
            assert at is not None and stop.writes == at
        else:
            assert at is None or stop.writes < at, at  # stopped, once it got there
    finally:
        await client.close()
    return stop.writes


async def test_a_start_stopped_before_any_step_of_the_upgrade_is_finished_by_the_next(mongo_uri, db_name):
    """Every migration is made of steps (an index dropped, then made; a collection, its indexes,
    then its summaries; the version recorded). Stopped before any of them, the next start brings
    the database to the same schema and documents as a start that was never stopped."""
    fresh = await fresh_schema(mongo_uri)
    database = await Database.connect(mongo_uri, db_name)
    try:
        await make_database_at(database, 1)
        writes = await start_stopped_at(mongo_uri, db_name, None)
        reference = await schema_of(database)
        await assert_upgraded(database, fresh)
        assert writes > 20  # migrations 2 to 9
        for at in range(1, writes + 1):
            await database.client.drop_database(db_name)
            await make_database_at(database, 1)
            await start_stopped_at(mongo_uri, db_name, at)
            assert await database.init() == LATEST_VERSION, at
            assert await schema_of(database) == reference, at
    finally:
        await database.client.drop_database(db_name)
        await database.close()


@pytest.mark.parametrize("version", [0, 1, 2, 6])
async def test_three_bots_starting_at_once_on_an_older_database_end_as_one_would(mongo_uri, db_name, version):
    """Each runs the pending migrations (no lock is taken), each step safe beside the others': the
    database ends with the schema and documents one start gives it, and the latest version."""
    fresh = await fresh_schema(mongo_uri)
    bots = [await Database.connect(mongo_uri, db_name) for _ in range(3)]
    try:
        if version:
            await make_database_at(bots[0], version)
        assert await asyncio.gather(*(bot.init() for bot in bots)) == [LATEST_VERSION] * 3
        assert await schema_version(bots[0].db) == LATEST_VERSION
        if version:
            await assert_upgraded(bots[0], fresh)
        else:
            assert {name: {k: v for k, v in s.items() if k != "docs"}
                    for name, s in (await schema_of(bots[0])).items()} == fresh
    finally:
        await bots[0].client.drop_database(db_name)
        for bot in bots:
            await bot.close()


@pytest.mark.parametrize("command, collection", [
    ("createIndexes", JOURNAL),  # MongoDB answers an index build once it is done: minutes on a large collection
    ("aggregate", REQUESTS),  # migration 7's $group over every request answers once all are read
])
async def test_an_upgrade_step_longer_than_the_socket_timeout_does_not_fail_the_start(
        db_server, mongo_uri, db_name, command, collection):
    """Each command of a start's upgrade may take longer than SOCKET_TIMEOUT_MS (here 0.3 s, from the
    URI): it timed out, the start failed, and the next start did it all again (for ever, where it
    was migration 7's $group over a big requests collection). The upgrade has a time of its own.
    From version 6: migration 7 sums up the requests, 8 indexes the journal (a new database is made
    in one step, with no $group)."""
    async with gated_database(db_server, mongo_uri + "&socketTimeoutMS=300", db_name) as (gate, gated):
        await make_database_at(gated, 6)
        gate.hold(command, collection)

        async def hold_its_retry_too() -> None:  # a read is sent again once after a timeout: as slow
            await gate.held.wait()
            gate.hold(command, collection)

        retry = asyncio.create_task(hold_its_retry_too())
        asyncio.get_running_loop().call_later(1.0, gate.release)
        assert await gated.init() == LATEST_VERSION
        await retry
        await gated.client.drop_database(db_name)
