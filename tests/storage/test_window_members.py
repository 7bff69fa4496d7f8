"""The mood of the week (and a playlist `since` a time) tells which of the window's authors are the
place's members from the place's summaries of the window (`place_latest`), not all of them: an
author with none so recent is looked up alone, or, when there are many, all the summaries are
read. Either way the members are those `members_seen` names, who was seen there and not gone since."""
from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import timedelta, timezone
from typing import Any, AsyncIterator

import pytest
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener

from storage import playlists
from storage.codec import journal_to_doc, request_to_doc
from storage.database import Database
from storage.models import MoodRequest, UserRef
from storage.schema import JOURNAL, PLACE_TRACKS, REQUESTS
from tests.storage.conftest import T0
from tests.storage.test_journal_page_plans import scans
from tests.storage.test_playlists import journal

PLACE = "chat:g1"
H = timedelta(hours=1)
D = 24 * H
NOW = T0 + D
GINA, HANK, IVY, JACK, KIM, LEO, MIA = (UserRef("chat", n) for n in ("gina", "hank", "ivy", "jack", "kim", "leo",
                                                                    "mia"))


class SummaryFinds(CommandListener):
    """The filters of the finds on `collection` (the summaries by default), and their limits."""

    def __init__(self, collection: str = PLACE_TRACKS) -> None:
        self.collection = collection
        self.filters: list[dict[str, Any]] = []
        self.limits: list[int | None] = []
        self.aggregated: list[dict[str, Any]] = []  # the first $match of each aggregation on it

    def clear(self) -> None:
        self.filters.clear()
        self.limits.clear()
        self.aggregated.clear()

    def started(self, event) -> None:
        if event.command_name == "find" and event.command["find"] == self.collection:
            self.filters.append(event.command.get("filter", {}))
            self.limits.append(event.command.get("limit"))
        elif event.command_name == "aggregate" and event.command["aggregate"] == self.collection:
            self.aggregated.append(event.command["pipeline"][0].get("$match", {}))

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


@asynccontextmanager
async def listened(mongo_uri: str, db_name: str, finds: SummaryFinds) -> AsyncIterator[Database]:
    """A database whose client tells `finds` of its commands; dropped after."""
    client = AsyncMongoClient(mongo_uri, tz_aware=True, tzinfo=timezone.utc, event_listeners=[finds])
    db = Database(client, client[db_name])
    try:
        await db.init()
        yield db
    finally:
        await client.drop_database(db_name)
        await db.close()


async def seed(db: Database, strangers: int) -> None:
    # Gina asked there ten days ago, and journaled a song this week in a private chat: a member.
    await db.requests.add(MoodRequest(GINA, PLACE, "spotify:old", "calm", T0 - 10 * D))
    await db.journal.add(journal(GINA, "gina", "sad", T0))
    # Hank asked there, left, and journaled this week: gone.
    await db.requests.add(MoodRequest(HANK, PLACE, "spotify:old", "calm", T0 - 10 * D))
    await db.playlists.member_left(PLACE, HANK, T0 - 9 * D)
    await db.journal.add(journal(HANK, "hank", "sad", T0))
    # Ivy asked there, left, and asked there again this week: back.
    await db.requests.add(MoodRequest(IVY, PLACE, "spotify:old", "calm", T0 - 10 * D))
    await db.playlists.member_left(PLACE, IVY, T0 - 9 * D)
    await db.requests.add(MoodRequest(IVY, PLACE, "spotify:ivy", "happy", T0))
    # Jack's request this week was written by an older moodbot, without its summary: not seen.
    await db.db[REQUESTS].insert_one(request_to_doc(MoodRequest(JACK, PLACE, "spotify:jack", "sad", T0)))
    # Kim wrote there, left, and journaled this week in private: gone. Leo wrote there, stayed: a member.
    for who in (KIM, LEO):
        await db.journal.add(journal(who, "there", "calm", T0 - 10 * D, place=PLACE))
        await db.journal.add(journal(who, who.user_id, "calm", T0))
    await db.playlists.member_left(PLACE, KIM, T0 - 9 * D)
    # Mia wrote there, left, came back to ask there before the week, and journaled this week: a member.
    await db.journal.add(journal(MIA, "there", "calm", T0 - 10 * D, place=PLACE))
    await db.playlists.member_left(PLACE, MIA, T0 - 9 * D)
    await db.requests.add(MoodRequest(MIA, PLACE, "spotify:old", "calm", T0 - 8 * D))
    await db.journal.add(journal(MIA, "mia", "energetic", T0))
    # Users of other places who journaled this week.
    for i in range(strangers):
        await db.journal.add(journal(UserRef("chat", f"stranger{i:02d}"), "elsewhere", "sad", T0))


@pytest.mark.parametrize("strangers", [0, 2 * playlists.ALONE_AT_MOST])
async def test_the_weeks_members_are_those_seen_there_and_not_gone(mongo_uri, db_name, strangers):
    finds = SummaryFinds()
    async with listened(mongo_uri, db_name, finds) as db:
        await seed(db, strangers)
        assert await db.playlists.members_seen(PLACE) == [GINA, IVY, LEO, MIA]
        finds.filters.clear()

        assert await db.playlists.server_mood_of_week(PLACE, NOW) == {"calm": 1, "energetic": 1, "happy": 1, "sad": 1}

        # The week's summaries, then Gina, Hank, Jack, Kim and Mia (and the strangers) looked up
        # alone, or all; not Leo, seen there and never gone.
        assert finds.filters[0] == {"place": PLACE, "latest.at": {"$gte": NOW - 7 * D}}
        alone = [f for f in finds.filters if "user_id" in f]
        if strangers:
            assert finds.filters[1:] == [{"place": PLACE}]
        else:
            assert {f["user_id"] for f in alone} == {"gina", "hank", "jack", "kim", "mia"}
            assert len(finds.filters) == 1 + len(alone)
        await the_weeks_playlists_are_the_members(db)


async def the_weeks_playlists_are_the_members(db: Database) -> None:
    """The playlists of `seed`'s week: Gina's, Ivy's and Leo's songs (Mia's energetic one aside)."""
    since = NOW - 7 * D
    assert [(i.track_key, i.members) for i in await db.playlists.playlist(PLACE, "sad", since=since)] == [
        ("spotify:gina", 1)]
    assert [(i.track_key, i.members) for i in await db.playlists.playlist(PLACE, "happy", since=since)] == [
        ("spotify:ivy", 1)]
    assert [(i.track_key, i.members) for i in await db.playlists.playlist(PLACE, "calm", since=since)] == [
        ("spotify:leo", 1)]


async def test_a_small_place_s_week_reads_its_members_entries_not_everyone_s(mongo_uri, db_name):
    """A group of a few members, in a bot whose other users journaled many songs this week: its
    mood of the week reads each member's entries of the week, through an index, not everyone's
    (2 members, among 5 000 users who journaled 20 000 songs that week: 3 s), with the same members
    and votes."""
    finds = SummaryFinds(JOURNAL)
    async with listened(mongo_uri, db_name, finds) as db:
        await seed(db, 0)
        await busy_week(db)
        finds.clear()

        assert await db.playlists.server_mood_of_week(PLACE, NOW) == {"calm": 1, "energetic": 1, "happy": 1, "sad": 1}

        assert not [match for match in finds.aggregated if "created_at" in match]  # everyone's week, grouped
        everyones = [(f, limit) for f, limit in zip(finds.filters, finds.limits) if "user_id" not in f]
        assert [limit for _, limit in everyones] == [playlists.WEEK_ENTRIES_READ_AT_MOST + 1]  # counted, up to
        theirs = [f for f in finds.filters if "user_id" in f]
        assert sorted(f["user_id"] for f in theirs) == ["gina", "ivy", "leo", "mia"]
        for query in theirs:
            explained = await db.db.command("explain", {"find": JOURNAL, "filter": query})
            assert "COLLSCAN" not in scans(explained["queryPlanner"]["winningPlan"]), query
        await the_weeks_playlists_are_the_members(db)


async def test_a_place_no_one_was_seen_in_reads_nobodys_week(db: Database):
    await db.journal.add(journal(GINA, "gina", "sad", T0))
    assert await db.playlists.server_mood_of_week("chat:empty", NOW) == {}
    assert await db.playlists.playlist("chat:empty", "sad", since=T0 - D) == []


async def busy_week(db: Database) -> None:
    """More journal entries in NOW's week, of users of other places, than everyone's are read for."""
    await db.db[JOURNAL].insert_many([journal_to_doc(journal(UserRef("chat", f"stranger{i}"), "elsewhere", "sad",
                                                             T0 - i * H / 1000))
                                      for i in range(playlists.WEEK_ENTRIES_READ_AT_MOST + 1)])


async def test_a_quiet_place_of_many_members_reads_everyone_s_week_not_their_journals(mongo_uri, db_name):
    """More members than are read alone, each with a year of journal: everyone's entries of the week
    are read, not each member's (nor their whole journals: 200 members who journaled daily for a
    year, 73 000 entries, took 2.9 s against 0.16 s)."""
    finds = SummaryFinds(JOURNAL)
    async with listened(mongo_uri, db_name, finds) as db:
        members = [UserRef("chat", f"member{i:03d}") for i in range(playlists.MEMBERS_READ_ALONE + 1)]
        for member in members:
            await db.requests.add(MoodRequest(member, PLACE, "spotify:old", "calm", T0 - 10 * D))
        await db.journal.add(journal(members[0], "theirs", "happy", T0))
        await busy_week(db)
        finds.clear()

        assert await db.playlists.server_mood_of_week(PLACE, NOW) == {"happy": 1}

        assert [match for match in finds.aggregated if "created_at" in match] == [{"created_at": {
            "$gte": NOW - 7 * D, "$lte": NOW}}]
        assert not [f for f in finds.filters if "user_id" in f]
