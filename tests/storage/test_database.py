"""The database: connection, schema creation (idempotent), validators, failures."""
from __future__ import annotations

import time
from urllib.parse import quote_plus
from datetime import date, datetime, timezone

import pytest

from storage.database import Database
from storage.models import DatabaseLoginError, DatabaseUnavailableError, JournalEntry, StorageError, UserRef
from storage.schema import (
    INDEXES,
    LATEST_VERSION,
    META,
    MIGRATIONS,
    SCHEMA_DOC_ID,
    VALIDATORS,
    create_schema,
    schema_version,
)
from tests.dbserver import free_port
from tests.storage.conftest import T0

ALICE = UserRef("chat", "alice")


def entry(**changes) -> JournalEntry:
    fields = dict(user=ALICE, local_date=date(2026, 11, 20), prompt_id="p1", phrase="A song?",
                  reply_text="Creep", track_key="spotify:1", track_title="Creep", mood="sad",
                  valence=-0.5, arousal=-0.3, created_at=T0)
    return JournalEntry(**{**fields, **changes})


async def index_names(database: Database) -> dict[str, set[str]]:
    return {name: {ix["name"] async for ix in await database.db[name].list_indexes()}
            for name in INDEXES}


async def test_init_creates_schema_and_is_idempotent(db: Database):
    first = await index_names(db)
    assert await db.init() == LATEST_VERSION
    assert await db.init() == LATEST_VERSION
    assert await index_names(db) == first
    for name, models in INDEXES.items():
        assert {m.document["name"] for m in models} <= first[name]
    meta = await db.db[META].find_one({"_id": SCHEMA_DOC_ID})
    assert meta["version"] == LATEST_VERSION


async def test_schema_creation_reruns_safely_over_existing_data(db: Database):
    """A crash after a migration but before its version is recorded re-runs it."""
    assert await db.journal.add(entry())
    await create_schema(db.db)
    assert await db.journal.count(ALICE) == 1
    infos = await (await db.db.list_collections()).to_list()
    validators = {i["name"]: i["options"].get("validator") for i in infos}
    for name, validator in VALIDATORS.items():
        assert validators[name] == validator


async def test_validator_rejects_a_date_stored_as_text(db: Database):
    with pytest.raises(Exception) as caught:
        await db.db["journal"].insert_one({
            "platform": "chat", "user_id": "alice", "local_date": "20/11/2026",
            "prompt_id": "p", "track_key": "spotify:1", "mood": "sad", "valence": 0.1,
            "arousal": 0.1, "created_at": "2026-11-20T12:00:00Z",
        })
    assert "validation" in str(caught.value).lower()


async def test_repo_turns_a_refused_document_into_a_readable_storage_error(db: Database):
    with pytest.raises(StorageError) as caught:
        await db.journal.add(entry(valence=3.0))
    assert str(caught.value) == "The database could not complete that — try again shortly."
    assert await db.journal.count(ALICE) == 0


async def test_naive_datetimes_are_refused_before_reaching_the_database(db: Database):
    with pytest.raises(ValueError):
        await db.journal.add(entry(created_at=datetime(2026, 11, 20, 12)))


async def test_datetimes_come_back_tz_aware_utc(db: Database):
    await db.journal.add(entry())
    [stored] = await db.journal.list(ALICE)
    assert stored.created_at == T0
    assert stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset().total_seconds() == 0


async def test_unavailable_database_fails_fast_with_a_readable_error():
    uri = f"mongodb://127.0.0.1:{free_port()}/?retryWrites=false"
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError) as caught:
        await Database.connect(uri, "nothing")
    assert time.monotonic() - started < 3.0
    assert str(caught.value) == "The database is unavailable — try again shortly."


async def test_unverified_connection_raises_unavailable_on_use():
    uri = f"mongodb://127.0.0.1:{free_port()}/?retryWrites=false"
    database = await Database.connect(uri, "nothing", server_selection_timeout_ms=300,
                                      verify=False)
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError):
            await database.users.get(ALICE)
        with pytest.raises(DatabaseUnavailableError):
            await database.journal.add(entry())
        assert time.monotonic() - started < 3.0
    finally:
        await database.close()


async def test_timeouts_and_write_concern_set_in_the_uri_are_kept():
    """The driver takes a keyword over the URI's own option: compose's serverSelectionTimeoutMS=3000
    (and an operator's w=majority) gave way to the bot's 2 s and w=1."""
    from tests.dbserver import free_port

    uri = f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=3000&w=majority&retryWrites=false"
    database = await Database.connect(uri, "moodbot", verify=False)
    try:
        options = database.client.options
        assert options.server_selection_timeout == 3.0
        assert options.write_concern.document == {"w": "majority", "j": True}
        assert options.pool_options.connect_timeout == 2.0  # not in the URI: the bot's
    finally:
        await database.close()


async def test_one_client_serves_every_repository(db: Database):
    for name in ("users", "tracks", "requests", "journal", "prompts", "playlists", "servers",
                 "privacy"):
        assert getattr(db, name) is not None
    assert db.db.client is db.client
    assert db.db.codec_options.tz_aware
    assert db.db.codec_options.tzinfo == timezone.utc


async def test_init_applies_pending_migrations_in_order_and_keeps_data(db: Database):
    versions = [m.version for m in MIGRATIONS]
    assert versions == sorted(set(versions)) and versions[0] == 1
    assert await db.journal.add(entry())
    # A database whose schema record says nothing was applied yet.
    await db.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 0}})
    assert await db.init() == LATEST_VERSION
    assert await schema_version(db.db) == LATEST_VERSION
    assert await db.journal.count(ALICE) == 1


async def test_a_fresh_database_reaches_the_latest_version(mongo_uri: str, db_name: str):
    database = await Database.connect(mongo_uri, db_name)
    try:
        assert await schema_version(database.db) == 0
        assert await database.init() == LATEST_VERSION
        assert await schema_version(database.db) == LATEST_VERSION
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_a_wrong_password_is_a_login_error_that_says_what_to_fix(mongo_uri: str, db_name: str):
    from tests.conftest import MONGO_PASSWORD
    from tests.dbserver import USER

    assert f"{USER}:" in mongo_uri  # the suite's server wants a login, and gets it
    wrong = mongo_uri.replace(quote_plus(MONGO_PASSWORD), "not-the-password")
    started = time.monotonic()
    with pytest.raises(DatabaseLoginError) as refused:
        await Database.connect(wrong, db_name)
    assert time.monotonic() - started < 2.0  # no waiting out server selection: retrying will not help
    assert "MONGODB_URI" in str(refused.value) and "not-the-password" not in str(refused.value)
    assert not isinstance(refused.value, DatabaseUnavailableError)  # no "try again shortly"


@pytest.mark.parametrize("name, reason", [
    ("my moodbot", "' '"), ("moodbot.prod", "'.'"), ("x" * 64, "64"), ("", "empty"),
])
async def test_a_database_name_mongodb_refuses_is_said_as_a_setting_to_fix(mongo_uri: str, name: str, reason: str):
    """Said at connect, before anything is created; not "try again shortly": the same name is
    refused on every start."""
    with pytest.raises(StorageError) as refused:
        await (await Database.connect(mongo_uri, name)).close()
    message = str(refused.value)
    assert message.startswith("MONGODB_DATABASE ") and reason in message, message
    assert not isinstance(refused.value, DatabaseUnavailableError)


@pytest.mark.parametrize("uri, said", [
    # NXDOMAIN here ("The DNS query name does not exist"); a machine with no DNS says it otherwise.
    ("mongodb+srv://moodbot:Sentinel-PW@cluster0.no-such-host.invalid/?retryWrites=false", ""),
    ("mongodb://moodbot:Sentinel-PW@127.0.0.1:99999/?retryWrites=false", "Port"),
])
async def test_a_mongodb_uri_the_driver_cannot_use_is_said_with_the_drivers_reason(uri: str, said: str):
    """An SRV name that does not resolve, or a URI that is not one: the operator learns what is
    wrong with MONGODB_URI, not "could not complete that — try again shortly" or a bare driver line."""
    with pytest.raises(StorageError) as refused:
        await (await Database.connect(uri, "moodbot")).close()
    message = str(refused.value)
    assert message.startswith("MONGODB_URI ") and said in message, message
    assert "Sentinel-PW" not in message
