"""The reads the repositories send are served by an index the schema makes, on the embedded
SecantusDB as on MongoDB. SecantusDB (0.7) walks an index only when the query's equality fields are
a leading prefix of it (then at most one range): a field beside them that the index lacks, such as
`answered_at: None` next to the user's, made it scan the whole collection, every user's."""
from __future__ import annotations

from datetime import date, timedelta, timezone
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener

from storage.database import Database
from storage.models import UNREACHABLE, JournalEntry, MoodRequest, StoredMood, TrackRecord, UserRef
from storage.schema import DEPARTURES
from tests.storage.conftest import T0
from tests.storage.test_journal_page_plans import scans

ALICE = UserRef("chat", "alice")
READS = {"find", "count", "distinct", "aggregate"}


class Reads(CommandListener):
    """The reads sent to a collection: (collection, filter, sort)."""

    def __init__(self) -> None:
        self.reads: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []

    def started(self, event) -> None:
        command = event.command
        name = event.command_name
        if name not in READS or not isinstance(command.get(name), str):
            return
        if name == "aggregate":  # count_documents: a $match, then a $group
            pipeline = command["pipeline"]
            if pipeline and "$match" in pipeline[0]:
                self.reads.append((command[name], pipeline[0]["$match"], None))
        else:
            query = command.get("filter", command.get("query", {}))
            self.reads.append((command[name], query, command.get("sort")))

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


async def scanned(database: Database, reads: list[tuple[str, dict[str, Any], dict[str, Any] | None]]) -> list:
    """The reads whose plan scans the collection."""
    scanning = []
    for collection, query, sort in reads:
        command: dict[str, Any] = {"find": collection, "filter": query}
        if sort:
            command["sort"] = sort
        explained = await database.db.command("explain", command)
        if "COLLSCAN" in scans(explained["queryPlanner"]["winningPlan"]):
            scanning.append((collection, query, sort))
    return scanning


async def listening(mongo_uri: str, db_name: str, reads: Reads | None = None) -> tuple[Database, Reads]:
    reads = reads or Reads()
    client = AsyncMongoClient(mongo_uri, tz_aware=True, tzinfo=timezone.utc, event_listeners=[reads])
    database = Database(client, client[db_name])
    await database.init()
    return database, reads


async def test_the_prompt_reads_of_an_answer_and_of_a_day_s_prompt_are_indexed(mongo_uri, db_name):
    """An answer reads the user's newest open prompt; each day's prompt asks whether one was sent
    that day; a start recalls the open ones of the last days, and the answered ones. Over 200 users' 100 days of prompts
    (20 000) the first two took 456 and 486 ms on SecantusDB, and 2 and 3 ms through an index."""
    database, reads = await listening(mongo_uri, db_name)
    try:
        for day in range(3):
            for user in ("alice", "bob"):
                await database.prompts.record_sent(UserRef("chat", user), f"{user}{day}", "A song?",
                                                   date(2026, 11, 20 + day), T0 + timedelta(days=day), user, str(day))
        await database.prompts.mark_answered("alice0")
        reads.reads.clear()
        assert (await database.prompts.latest_open(ALICE)).prompt_id == "alice2"
        assert (await database.prompts.latest_open(ALICE, since=T0)).prompt_id == "alice2"
        assert await database.prompts.sent_for(ALICE, date(2026, 11, 21))
        assert await database.prompts.last_sent_date(ALICE) == date(2026, 11, 22)
        assert {p.prompt_id for p in await database.prompts.open_since(T0, 10)} == {
            "bob0", "alice1", "bob1", "alice2", "bob2"}
        assert [p.prompt_id for p in await database.prompts.answered_since(T0, 10)] == ["alice0"]
        assert (await database.prompts.latest(ALICE, since=T0)).prompt_id == "alice2"
        assert await database.prompts.recent_phrases(ALICE, T0) == {"A song?"}
        assert (await database.prompts.find_by_message("chat", "alice", "1")).prompt_id == "alice1"
        assert len(reads.reads) == 9
        assert await scanned(database, reads.reads) == []
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_the_releases_of_a_recording_and_of_a_video_are_read_through_their_index(mongo_uri, db_name):
    """/mood reuses the mood of a release of the same recording (ISRC) or of the catalog track a
    video was fetched from: `mood: {$ne: None}` beside the indexed field made SecantusDB scan every
    track the bot ever saw."""
    database, reads = await listening(mongo_uri, db_name)
    try:
        mood = StoredMood("sad", {"sad": 1.0}, -0.5, -0.3, "resnet", "1")
        for key, isrc, video, classified in [("spotify:album", "GB1", "v1", mood), ("spotify:single", "GB1", "v1", mood),
                                             ("spotify:demo", "GB1", None, None), ("youtube:v1", None, "v1", mood),
                                             ("spotify:other", "US2", "v2", mood)]:
            await database.tracks.save(TrackRecord(key, "Creep", isrc=isrc, youtube_id=video, mood=classified))
        reads.reads.clear()
        assert [t.key for t in await database.tracks.find_by_isrc("GB1")] == ["spotify:album", "spotify:single"]
        assert [t.key for t in await database.tracks.find_by_isrc("GB1", limit=1)] == ["spotify:album"]
        assert [t.key for t in await database.tracks.find_by_youtube_id("v1")] == ["spotify:album", "spotify:single"]
        assert [t.key for t in await database.tracks.find_by_youtube_id("v1", limit=1)] == ["spotify:album"]
        assert await database.tracks.find_by_isrc("XX") == [] and await database.tracks.find_by_youtube_id("vx") == []
        assert reads.reads
        assert await scanned(database, reads.reads) == []
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_a_departure_asks_whether_the_member_was_seen_there_through_an_index(mongo_uri, db_name):
    """A member who leaves a place is recorded as gone if they asked /mood or wrote there: both
    reads scanned the whole collection on SecantusDB (60 000 requests and journal entries: 1.3 s
    and 0.7 s per departure)."""
    database, reads = await listening(mongo_uri, db_name)
    bob = UserRef("chat", "bob")
    try:
        await database.requests.add(MoodRequest(ALICE, "chat:g1", "spotify:1", "sad", T0))
        await database.journal.add(JournalEntry(bob, date(2026, 11, 20), "p1", "A song?", "Creep", "spotify:1",
                                                "Creep", "sad", -0.5, -0.3, T0, place="chat:g1"))
        await database.requests.settled()
        reads.reads.clear()
        for member in (ALICE, bob, UserRef("chat", "carol")):  # asked there, wrote there, never seen
            await database.playlists.member_left("chat:g1", member, T0 + timedelta(hours=1))
        departures = list(reads.reads)
        assert await database.db[DEPARTURES].count_documents({}) == 2
        assert await database.playlists.members_seen("chat:g1") == []
        assert departures
        assert await scanned(database, departures) == []
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_the_users_whose_prompts_stopped_are_read_through_an_index(mongo_uri, db_name):
    """The first command after a start reads the users whose prompts stopped unasked (a blocked
    bot): `journal_paused: {$ne: None}` scanned every user on SecantusDB, 61 ms at 5 000 users."""
    database, reads = await listening(mongo_uri, db_name)
    try:
        for who, paused in ((ALICE, UNREACHABLE), (UserRef("chat", "bob"), None)):
            await database.users.set_journal(who, enabled=False, prompt_time=None, timezone="UTC", chat_id=None,
                                             paused=paused)
        reads.reads.clear()
        assert await database.users.paused_users() == [ALICE]
        assert await database.users.clear_pause(ALICE)
        assert await database.users.paused_users() == []
        assert len(reads.reads) == 2
        assert await scanned(database, reads.reads) == []
    finally:
        await database.client.drop_database(db_name)
        await database.close()
