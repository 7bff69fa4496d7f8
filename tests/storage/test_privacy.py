"""Export and erasure of everything about a user; one user's data never reached through another."""
from __future__ import annotations

import json
from datetime import date, time, timedelta

from bson import json_util

from storage.database import Database
from storage.models import JournalEntry, MoodRequest, TrackRecord, User, UserRef
from tests.storage.conftest import T0

ALICE = UserRef("chat", "u-7f3a9c")
BOB = UserRef("chat", "u-b0b42")
ALICE_ELSEWHERE = UserRef("other", "u-7f3a9c")  # the same id on another platform: someone else


def journal(who: UserRef, n: int) -> JournalEntry:
    at = T0 + timedelta(days=n)
    return JournalEntry(user=who, local_date=at.date(), prompt_id=f"{who.platform}-{n}",
                        phrase="Song?", reply_text=f"private words {n}",
                        track_key=f"spotify:{n}", track_title=f"Song {n}", mood="calm",
                        valence=0.4, arousal=-0.4, created_at=at, note=f"{who.user_id} note")


async def seed_user(db: Database, who: UserRef) -> None:
    await db.users.upsert(User(who.platform, who.user_id, timezone="Europe/Oslo",
                               prompt_time=time(21), journal_enabled=True, chat_id="dm",
                               created_at=T0))
    for n in range(3):
        await db.journal.add(journal(who, n))
        await db.requests.add(MoodRequest(who, "chat:g1", f"spotify:{n}", "calm", T0))
        # Each day's at its time: the export lists them by it (sent at one instant, in no set order).
        await db.prompts.record_sent(who, f"{who.platform}-{who.user_id}-{n}", f"phrase {n}",
                                     date(2026, 11, 20 + n), T0 + timedelta(days=n), "dm", f"m{n}")
    await db.tracks.save(TrackRecord("spotify:0", "Song 0"))
    await db.servers.set_playlist_enabled("chat:g1", True)


async def documents_mentioning(db: Database, user_id: str) -> list[str]:
    found = []
    for name in await db.db.list_collection_names():
        for doc in await db.db[name].find({}).to_list():
            if user_id in json_util.dumps(doc):
                found.append(f"{name}: {doc}")
    return found


async def test_export_holds_everything_about_the_user_and_nothing_else(db: Database):
    await seed_user(db, ALICE)
    await seed_user(db, BOB)
    export = await db.privacy.export(ALICE)
    assert export.user == User("chat", ALICE.user_id, timezone="Europe/Oslo",
                               prompt_time=time(21), journal_enabled=True, chat_id="dm",
                               created_at=T0)
    assert export.journal == [journal(ALICE, n) for n in range(3)]
    assert [r.track_key for r in export.requests] == ["spotify:0", "spotify:1", "spotify:2"]
    assert [p.phrase for p in export.prompts] == ["phrase 0", "phrase 1", "phrase 2"]
    assert {r.user for r in export.requests} | {p.user for p in export.prompts} == {ALICE}

    data = json.loads(export.to_json())
    assert data["user"]["timezone"] == "Europe/Oslo"
    assert data["user"]["prompt_time"] == "21:00:00"
    assert data["journal"][1]["reply_text"] == "private words 1"
    assert data["journal"][0]["created_at"] == "2026-11-20T12:00:00+00:00"
    assert len(data["requests"]) == len(data["prompts"]) == 3
    assert BOB.user_id not in export.to_json()


async def test_export_of_an_unknown_user_is_empty(db: Database):
    export = await db.privacy.export(ALICE)
    assert (export.user, export.journal, export.requests, export.prompts) == (None, [], [], [])
    assert json.loads(export.to_json())["journal"] == []


async def test_forget_leaves_nothing_in_any_collection(db: Database):
    await seed_user(db, ALICE)
    await seed_user(db, BOB)
    assert await documents_mentioning(db, ALICE.user_id)  # the scan does see the user
    assert await db.privacy.forget(ALICE) == 1 + 3 + 3 + 3
    assert await documents_mentioning(db, ALICE.user_id) == []
    assert await db.privacy.forget(ALICE) == 0
    # Bob, tracks and server settings stay.
    assert await db.journal.count(BOB) == 3
    assert (await db.privacy.export(BOB)).user is not None
    assert await db.tracks.get("spotify:0") is not None


async def test_a_journal_is_never_readable_through_another_identity(db: Database):
    await seed_user(db, ALICE)
    for other in (BOB, ALICE_ELSEWHERE):
        assert await db.journal.list(other) == []
        assert await db.journal.count(other) == 0
        stats = await db.journal.stats(other, date(2026, 11, 22))
        assert (stats.total_entries, stats.songs, stats.longest_streak) == (0, [], 0)
        assert await db.prompts.latest_open(other) is None
        assert await db.prompts.recent_phrases(other, T0 - timedelta(days=1)) == set()
        assert await db.prompts.last_sent_date(other) is None
        assert await db.users.get(other) is None
        export = await db.privacy.export(other)
        assert (export.user, export.journal, export.requests, export.prompts) == (None, [], [], [])


async def test_forget_touches_only_that_identity(db: Database):
    await seed_user(db, ALICE)
    await seed_user(db, ALICE_ELSEWHERE)
    await db.privacy.forget(ALICE_ELSEWHERE)
    assert await db.journal.count(ALICE) == 3
    assert await db.journal.count(ALICE_ELSEWHERE) == 0
