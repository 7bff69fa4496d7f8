"""Users, tracks, mood requests, sent prompts and server settings, through their repositories."""
from __future__ import annotations

import asyncio
from datetime import date, time, timedelta

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.errors import DuplicateKeyError

from storage.database import Database
from storage.failures import translated_errors
from storage.models import (DatabaseUnavailableError, MoodRequest, ServerSettings, StorageError, StoredMood, TrackRecord,
                            User, UserRef)
from storage.mood_requests import RequestRepo
from storage.tracks import TrackRepo
from tests.storage.conftest import T0

ALICE = UserRef("chat", "alice")
BOB = UserRef("chat", "bob")


# Users ------------------------------------------------------------------------------------


async def test_unknown_user_is_none(db: Database):
    assert await db.users.get(ALICE) is None


async def test_upsert_then_get_round_trips_every_field(db: Database):
    user = User("chat", "alice", timezone="Europe/Paris", prompt_time=time(20, 30),
                journal_enabled=True, share_with_server=False, chat_id="dm-1", created_at=T0)
    await db.users.upsert(user)
    assert await db.users.get(ALICE) == user


async def test_upsert_keeps_the_first_created_at(db: Database):
    await db.users.upsert(User("chat", "alice", created_at=T0))
    await db.users.upsert(User("chat", "alice", timezone="Asia/Tokyo",
                               created_at=T0 + timedelta(days=3)))
    stored = await db.users.get(ALICE)
    assert stored.timezone == "Asia/Tokyo"
    assert stored.created_at == T0


async def test_platform_and_user_id_are_unique_together(db: Database):
    await db.users.upsert(User("chat", "alice"))
    await db.users.upsert(User("chat", "alice", timezone="UTC"))
    await db.users.upsert(User("other", "alice"))
    assert await db.db["users"].count_documents({}) == 2
    with pytest.raises(DuplicateKeyError):
        await db.db["users"].insert_one({"platform": "chat", "user_id": "alice",
                                         "timezone": "UTC", "journal_enabled": False,
                                         "share_with_server": True})


async def test_set_journal_creates_a_user_with_defaults(db: Database):
    await db.users.set_journal(ALICE, enabled=True, prompt_time=time(9, 0),
                               timezone="America/Lima", chat_id="dm-7")
    user = await db.users.get(ALICE)
    assert (user.journal_enabled, user.prompt_time, user.timezone, user.chat_id) == (
        True, time(9, 0), "America/Lima", "dm-7")
    assert user.share_with_server is True
    assert user.created_at is not None and user.created_at.tzinfo is not None


async def test_set_journal_leaves_sharing_alone(db: Database):
    await db.users.set_sharing(ALICE, False)
    await db.users.set_journal(ALICE, enabled=True, prompt_time=time(9, 0), timezone="UTC",
                               chat_id=None)
    user = await db.users.get(ALICE)
    assert user.share_with_server is False and user.journal_enabled is True


async def test_set_journal_without_create_changes_only_a_user_still_there(db: Database):
    """Journal off and prompts stopped write what they read of the user: after a /forget deleted
    the user, that write must not make them again."""
    await db.users.set_journal(ALICE, enabled=False, prompt_time=time(9, 0), timezone="UTC",
                               chat_id="a", paused="unreachable", create=False)
    assert await db.users.get(ALICE) is None
    await db.users.set_journal(ALICE, enabled=True, prompt_time=time(9, 0), timezone="UTC", chat_id="a")
    await db.users.set_journal(ALICE, enabled=False, prompt_time=time(9, 0), timezone="UTC",
                               chat_id="a", create=False)
    assert (await db.users.get(ALICE)).journal_enabled is False


async def test_set_sharing_toggles(db: Database):
    await db.users.upsert(User("chat", "alice", journal_enabled=True))
    await db.users.set_sharing(ALICE, False)
    assert (await db.users.get(ALICE)).share_with_server is False
    await db.users.set_sharing(ALICE, True)
    user = await db.users.get(ALICE)
    assert user.share_with_server is True and user.journal_enabled is True


async def test_journal_users_lists_only_enabled_ones(db: Database):
    await db.users.set_journal(ALICE, enabled=True, prompt_time=time(8), timezone="UTC",
                               chat_id="a")
    await db.users.set_journal(BOB, enabled=False, prompt_time=None, timezone="UTC",
                               chat_id="b")
    await db.users.upsert(User("chat", "carol"))
    assert [u.ref for u in await db.users.journal_users()] == [ALICE]


# Tracks -----------------------------------------------------------------------------------


def creep(**changes) -> TrackRecord:
    mood = StoredMood("sad", {"happy": 0.1, "energetic": 0.1, "sad": 0.7, "calm": 0.1},
                      -0.6, -0.6, "main", "v1")
    fields = dict(key="spotify:6b2oQ", title="Creep", artists=["Radiohead"], album="Pablo Honey",
                  duration_s=238.6, isrc="GBAYE9200070", art_url="https://i/1.jpg",
                  spotify_id="6b2oQ", spotify_url="https://open.spotify.com/track/6b2oQ",
                  youtube_id=None, mood=mood, classified_at=T0)
    return TrackRecord(**{**fields, **changes})


async def test_track_save_and_get(db: Database):
    assert await db.tracks.get("spotify:6b2oQ") is None
    await db.tracks.save(creep())
    assert await db.tracks.get("spotify:6b2oQ") == creep()


async def test_track_save_upserts_by_key(db: Database):
    await db.tracks.save(creep(mood=None, classified_at=None))
    await db.tracks.save(creep(title="Creep (Remastered)"))
    assert (await db.tracks.get("spotify:6b2oQ")).title == "Creep (Remastered)"
    assert await db.db["tracks"].count_documents({}) == 1


async def test_track_key_is_unique(db: Database):
    await db.tracks.save(creep())
    with pytest.raises(DuplicateKeyError):
        await db.db["tracks"].insert_one({"key": "spotify:6b2oQ", "title": "again"})


async def test_tracks_without_platform_ids_coexist_under_the_sparse_indexes(db: Database):
    await db.tracks.save(creep(key="sha256:aa", spotify_id=None, spotify_url=None))
    await db.tracks.save(creep(key="sha256:bb", spotify_id=None, spotify_url=None))
    assert (await db.tracks.get("sha256:bb")).key == "sha256:bb"


async def test_the_classified_releases_of_a_recording_are_found_by_its_isrc(db: Database):
    await db.tracks.save(creep(key="spotify:single"))
    await db.tracks.save(creep())
    await db.tracks.save(creep(key="spotify:unheard", mood=None, classified_at=None))
    await db.tracks.save(creep(key="spotify:remaster", isrc="GBAYE0800001"))
    await db.tracks.save(creep(key="spotify:blank", isrc=None))

    assert [t.key for t in await db.tracks.find_by_isrc("GBAYE9200070")] == ["spotify:6b2oQ", "spotify:single"]
    assert await db.tracks.find_by_isrc("") == []  # no ISRC is no recording, not every track without one


async def test_a_release_of_another_shape_is_left_out_of_its_recording_s_not_the_others(db: Database):
    """One record that cannot be read (its mood of an older shape) made every release of the
    recording, and every link to its video, 'something went wrong'."""
    await db.tracks.save(creep(key="spotify:single", youtube_id="XFkzRNyygfk"))
    await db.db["tracks"].insert_one({"key": "spotify:album", "title": "Creep", "isrc": "GBAYE9200070",
                                      "youtube_id": "XFkzRNyygfk", "mood": {"mood": "sad"}})

    assert [t.key for t in await db.tracks.find_by_isrc("GBAYE9200070")] == ["spotify:single"]
    assert [t.key for t in await db.tracks.find_by_youtube_id("XFkzRNyygfk")] == ["spotify:single"]
    assert await db.tracks.get("spotify:album") is None


# Mood requests ----------------------------------------------------------------------------


async def test_request_add_stores_one_document(db: Database):
    await db.requests.add(MoodRequest(ALICE, "chat:guild", "spotify:1", "happy", T0, title="Song 1"))
    await db.requests.add(MoodRequest(ALICE, None, "spotify:1", "happy", T0))
    docs = await db.db["requests"].find({}, {"_id": 0}).to_list()
    assert docs == [
        {"platform": "chat", "user_id": "alice", "place": "chat:guild", "track_key": "spotify:1",
         "mood": "happy", "created_at": T0, "title": "Song 1"},
        {"platform": "chat", "user_id": "alice", "place": None, "track_key": "spotify:1",
         "mood": "happy", "created_at": T0, "title": None},
    ]


class InsertCounter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.inserts = 0

    def started(self, event) -> None:
        self.inserts += event.command_name == "insert"

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


async def test_a_burst_of_requests_is_stored_whole_in_few_inserts(mongo_uri: str, db_name: str):
    counter = InsertCounter()
    client = AsyncMongoClient(mongo_uri, event_listeners=[counter])
    try:
        repo = RequestRepo(client[db_name]["requests"])
        burst = [MoodRequest(UserRef("chat", f"u{i}"), "chat:guild", f"spotify:{i}", "calm", T0) for i in range(300)]
        await asyncio.gather(*(repo.add(request) for request in burst))
        stored = await client[db_name]["requests"].distinct("user_id")
        assert sorted(stored) == sorted(f"u{i}" for i in range(300))  # every add awaited its own write
        assert 1 <= counter.inserts <= 10  # grouped: not one insert per request
        await repo.add(burst[0])  # alone, at once
        assert await client[db_name]["requests"].count_documents({"user_id": "u0"}) == 2
    finally:
        await client.drop_database(db_name)
        await client.close()


async def test_every_request_in_a_failed_batch_hears_of_the_failure():
    client = AsyncMongoClient("mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200")  # nothing listens
    try:
        repo = RequestRepo(client["x"]["requests"])
        results = await asyncio.gather(*(repo.add(MoodRequest(ALICE, None, f"k{i}", "sad", T0)) for i in range(5)),
                                       return_exceptions=True)
        assert all(isinstance(r, DatabaseUnavailableError) for r in results)
    finally:
        await client.close()


async def test_request_indexes_serve_place_and_user_queries(db: Database):
    keys = [ix["key"] async for ix in await db.db["requests"].list_indexes()]
    assert {"place": 1, "created_at": -1} in [dict(k) for k in keys]
    assert {"platform": 1, "user_id": 1, "created_at": -1} in [dict(k) for k in keys]


# Sent prompts -----------------------------------------------------------------------------


async def send(db: Database, prompt_id: str, day: int, phrase: str = "What song?",
               who: UserRef = ALICE, message_id: str | None = None) -> bool:
    return await db.prompts.record_sent(who, prompt_id, phrase, date(2026, 11, day),
                                        T0.replace(day=day), "dm-1", message_id)


async def test_record_sent_is_idempotent_per_prompt_id(db: Database):
    assert await send(db, "p1", 20) is True
    assert await send(db, "p1", 20) is False
    assert await db.db["prompts"].count_documents({}) == 1


async def test_find_by_message_after_set_message_id(db: Database):
    await send(db, "p1", 20)
    assert await db.prompts.find_by_message("chat", "dm-1", "m-9") is None
    await db.prompts.set_message_id("p1", "m-9")
    found = await db.prompts.find_by_message("chat", "dm-1", "m-9")
    assert (found.prompt_id, found.user, found.local_date, found.sent_at) == (
        "p1", ALICE, date(2026, 11, 20), T0)
    assert await db.prompts.find_by_message("other", "dm-1", "m-9") is None


async def test_latest_open_skips_answered_prompts(db: Database):
    assert await db.prompts.latest_open(ALICE) is None
    await send(db, "p1", 18)
    await send(db, "p2", 19)
    await send(db, "p3", 20, who=BOB)
    assert (await db.prompts.latest_open(ALICE)).prompt_id == "p2"
    await db.prompts.mark_answered("p2")
    assert (await db.prompts.latest_open(ALICE)).prompt_id == "p1"
    await db.prompts.mark_answered("p1")
    assert await db.prompts.latest_open(ALICE) is None
    assert (await db.prompts.latest_open(BOB)).prompt_id == "p3"


async def test_mark_answered_keeps_the_first_answer_time(db: Database):
    await send(db, "p1", 20)
    await db.prompts.mark_answered("p1", at=T0)
    await db.prompts.mark_answered("p1", at=T0 + timedelta(hours=1))
    doc = await db.db["prompts"].find_one({"prompt_id": "p1"})
    assert doc["answered_at"] == T0


async def test_recent_phrases_since_a_moment(db: Database):
    await send(db, "p1", 1, phrase="old")
    await send(db, "p2", 15, phrase="recent")
    await send(db, "p3", 20, phrase="newest")
    await send(db, "p4", 20, phrase="bob's", who=BOB)
    since = T0.replace(day=10)
    assert await db.prompts.recent_phrases(ALICE, since) == {"recent", "newest"}


async def test_last_sent_date(db: Database):
    assert await db.prompts.last_sent_date(ALICE) is None
    await send(db, "p2", 19)
    await send(db, "p1", 18)
    await send(db, "p3", 22, who=BOB)
    assert await db.prompts.last_sent_date(ALICE) == date(2026, 11, 19)


# Server settings --------------------------------------------------------------------------


async def test_server_settings_default_then_toggle(db: Database):
    assert await db.servers.get("chat:guild") == ServerSettings("chat:guild", True)
    await db.servers.set_playlist_enabled("chat:guild", False)
    assert await db.servers.get("chat:guild") == ServerSettings("chat:guild", False)
    assert await db.servers.get("chat:other") == ServerSettings("chat:other", True)
    await db.servers.set_playlist_enabled("chat:guild", True)
    assert (await db.servers.get("chat:guild")).playlist_enabled is True


async def test_a_found_track_is_served_from_memory_until_its_ttl(db: Database):
    """A burst of /mood for one song reads the database once; a change made elsewhere (another
    bot process) shows after the TTL; the bound on remembered tracks holds."""
    now = [0.0]
    repo = TrackRepo(db.db["tracks"], cache_size=2, ttl_s=60.0, clock=lambda: now[0])
    await repo.save(creep())
    assert await repo.get("spotify:6b2oQ") == creep()
    await db.db["tracks"].update_one({"key": "spotify:6b2oQ"}, {"$set": {"title": "Changed elsewhere"}})
    assert (await repo.get("spotify:6b2oQ")).title == "Creep"  # remembered
    now[0] = 61.0
    assert (await repo.get("spotify:6b2oQ")).title == "Changed elsewhere"  # expired: read again

    for key in ("sha256:aa", "sha256:bb"):  # two more found tracks push the first one out
        await repo.save(creep(key=key, spotify_id=None, spotify_url=None))
        await repo.get(key)
    await db.db["tracks"].update_one({"key": "spotify:6b2oQ"}, {"$set": {"title": "Again"}})
    assert (await repo.get("spotify:6b2oQ")).title == "Again"


async def test_saving_a_track_replaces_what_was_remembered(db: Database):
    await db.tracks.save(creep(mood=None, classified_at=None))
    assert (await db.tracks.get("spotify:6b2oQ")).mood is None
    await db.tracks.save(creep())
    assert await db.tracks.get("spotify:6b2oQ") == creep()


async def test_a_recorded_request_is_seen_by_readers_and_does_not_outlive_forget(db: Database):
    """`record` returns at once; playlists, export and forget still see the request."""
    db.requests.record(MoodRequest(ALICE, "chat:guild", "spotify:1", "happy", T0))
    assert [r.track_key for r in (await db.privacy.export(ALICE)).requests] == ["spotify:1"]
    assert await db.playlists.members_seen("chat:guild") == [ALICE]
    db.requests.record(MoodRequest(ALICE, "chat:guild", "spotify:2", "sad", T0))
    await db.privacy.forget(ALICE)
    await db.requests.settled()
    assert await db.db["requests"].count_documents({}) == 0


async def test_a_recorded_request_that_cannot_be_stored_is_logged(caplog):
    client = AsyncMongoClient("mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200")
    try:
        repo = RequestRepo(client["x"]["requests"])
        repo.record(MoodRequest(ALICE, None, "k", "sad", T0))
        await repo.settled()
        await asyncio.sleep(0)  # the failure is logged in the future's done callback
    finally:
        await client.close()
    assert any("mood request not recorded" in r.getMessage() for r in caplog.records)


# A request's document holds the user's id and an upload's file name; a duplicate key quotes its values.
CAROL = UserRef("telegram", "987654321")


async def refused_request(db) -> None:
    # An empty mood: the validator refuses the batch, and the driver's error quotes the document.
    await db.requests.add(MoodRequest(CAROL, None, "sha256:ab", "", T0, title="voice memo for Jane.ogg"))


async def refused_duplicate(db) -> None:
    await db.users.set_sharing(CAROL, True)
    again = await db.db["users"].find_one({"user_id": CAROL.user_id}, {"_id": 0})
    with translated_errors("save user"):
        await db.db["users"].insert_one(again)  # one user, twice: user_unique


@pytest.mark.parametrize("refused, code", [(refused_request, "121"), (refused_duplicate, "11000")])
async def test_a_write_the_database_refuses_is_logged_without_the_data_its_error_quotes(db, caplog, refused,
                                                                                         code):
    """Log lines name a user only by a hash and hold no file name: the error's codes and names
    stay, the refused document and the key's values do not."""
    with pytest.raises(StorageError):
        await refused(db)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "storage.failures"]
    assert code in line
    assert CAROL.user_id not in line and "Jane" not in line


async def test_an_outage_is_logged_once_when_it_starts_and_once_when_the_database_answers_again(db, caplog):
    """One journal answer with the database down made five 'database unavailable during …'
    WARNINGs, each with the driver's whole topology description (some 800 characters): the first
    failed call of an outage is now the WARNING, its host and error without that description; the
    calls failing after it are at DEBUG, and the first answered says the database is back."""
    with translated_errors("get user"):  # answered: no outage left over from an earlier test
        await db.db["users"].find_one({})
    caplog.clear()
    down = AsyncMongoClient("mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200")
    try:
        for action in ("get user", "get track", "add journal entry"):
            with pytest.raises(DatabaseUnavailableError), translated_errors(action):
                await down["x"]["users"].find_one({})
    finally:
        await down.close()
    with translated_errors("get user"):
        await db.db["users"].find_one({})
    logged = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "storage.failures"]
    assert [level for level, _ in logged] == ["WARNING", "DEBUG", "DEBUG", "INFO"], logged
    first = logged[0][1]
    assert first.startswith("database unavailable during get user: 127.0.0.1:9: ") and "Topology" not in first
    assert logged[-1][1] == "database answering again after 3 failed calls"
