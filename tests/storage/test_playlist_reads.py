"""A server's playlist and its mood of the week read what they count, not the place's whole
history: the playlist reads the place's summaries (one per member and track), never its requests;
the mood of the week reads the requests and the journal entries of its week, through an index.
Before, each member's every request and journal entry was read, then all but a few dropped (with
2 000 members and 100 000 requests in one place: 11.5 s for a playlist, 8.2 s for the week)."""
from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener

from storage.database import Database
from storage.schema import JOURNAL, JOURNAL_MEMBERS, REQUESTS, TRACKS, USERS
from tests.storage.conftest import T0
from tests.storage.test_journal_page_plans import scans
from tests.storage.test_playlists import PLACE, seed

NOW = T0 + timedelta(hours=24)  # seed's week, as in test_playlists


class Reads(CommandListener):
    """Every aggregation sent, as (collection, pipeline: 1 for one on the database, `$documents`),
    and the collections of the finds."""

    def __init__(self) -> None:
        self.aggregations: list[tuple[Any, list[dict[str, Any]]]] = []
        self.finds: list[str] = []
        self.find_filters: list[tuple[str, dict[str, Any]]] = []

    def started(self, event) -> None:
        if "aggregate" in event.command:
            self.aggregations.append((event.command["aggregate"], event.command["pipeline"]))
        elif "find" in event.command:
            self.finds.append(event.command["find"])
            self.find_filters.append((event.command["find"], event.command.get("filter", {})))

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass

    def joined_from(self) -> set[str]:
        """The collections every `$lookup` of every aggregation joined, nested ones too."""
        found: set[str] = set()

        def walk(stages: list[dict[str, Any]]) -> None:
            for stage in stages:
                if "$lookup" in stage:
                    found.add(stage["$lookup"]["from"])
                    walk(stage["$lookup"].get("pipeline", []))

        for _, pipeline in self.aggregations:
            walk(pipeline)
        return found

    def on(self, collection: str) -> list[list[dict[str, Any]]]:
        return [pipeline for name, pipeline in self.aggregations if name == collection]


async def reads_of(mongo_uri: str, db_name: str, query) -> tuple[Reads, Database]:
    reads = Reads()
    client = AsyncMongoClient(mongo_uri, tz_aware=True, tzinfo=timezone.utc, event_listeners=[reads])
    db = Database(client, client[db_name])
    await db.init()
    await seed(db)
    await db.requests.settled()
    reads.aggregations.clear()
    reads.finds.clear()
    reads.find_filters.clear()
    await query(db)
    return reads, db


async def test_a_playlist_reads_no_request(mongo_uri, db_name):
    reads, db = await reads_of(mongo_uri, db_name, lambda db: db.playlists.playlist(PLACE, "sad"))
    try:
        assert reads.aggregations
        assert reads.on(REQUESTS) == [] and REQUESTS not in reads.finds
        assert REQUESTS not in reads.joined_from()
    finally:
        await db.client.drop_database(db_name)
        await db.close()


async def test_the_mood_of_the_week_reads_the_week_through_indexes(mongo_uri, db_name):
    reads, db = await reads_of(mongo_uri, db_name,
                               lambda db: db.playlists.server_mood_of_week(PLACE, NOW))
    try:
        assert {REQUESTS, JOURNAL}.isdisjoint(reads.joined_from())  # no member's whole history
        week_reads = [(name, pipeline) for name in (REQUESTS, JOURNAL) for pipeline in reads.on(name)
                      if "created_at" in pipeline[0]["$match"]]
        assert len(week_reads) == 2
        for name, pipeline in week_reads:
            explained = await db.db.command("explain", {"aggregate": name, "pipeline": pipeline[:1], "cursor": {}})
            plan = explained["stages"][0]["$cursor"] if "stages" in explained else explained
            assert "COLLSCAN" not in scans(plan["queryPlanner"]["winningPlan"]), name
        # The place's journal entries, to know who was seen there, are its own: by place.
        assert all(pipeline[0]["$match"].keys() == {"place"} for pipeline in reads.on(JOURNAL)
                   if "created_at" not in pipeline[0]["$match"])
        assert reads.on(REQUESTS) == [pipeline for name, pipeline in week_reads if name == REQUESTS]
    finally:
        await db.client.drop_database(db_name)
        await db.close()


async def test_a_playlist_reads_its_members_and_songs_by_indexed_finds_not_a_join_per_row(mongo_uri, db_name):
    """SecantusDB runs a `$lookup` as one query per outer row, ~0.3 ms each however little it
    reads: a join per member (their sharing setting, their journal) and three per track took 1.5 s
    and 0.4 s for a server of 2 000 members. They are read by finds of `$in` batches."""
    reads, db = await reads_of(mongo_uri, db_name, lambda db: db.playlists.playlist(PLACE, "sad"))
    try:
        assert reads.joined_from() == set()
        assert {USERS, JOURNAL_MEMBERS, TRACKS} <= set(reads.finds)  # the members' journals as summed up
        for name, query in reads.find_filters:
            explained = await db.db.command("explain", {"find": name, "filter": query})
            assert "COLLSCAN" not in scans(explained["queryPlanner"]["winningPlan"]), (name, query)
    finally:
        await db.client.drop_database(db_name)
        await db.close()
