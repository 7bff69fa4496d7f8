"""Export and erasure of everything about a user; one user's data never reached through another."""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone

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
    assert data["journal"][0]["created_at"] == "2026-11-20T13:00:00+01:00"  # on Alice's clock (Oslo)
    assert len(data["requests"]) == len(data["prompts"]) == 3
    assert BOB.user_id not in export.to_json()


async def test_export_writes_times_on_the_users_clock_so_each_matches_its_entry_s_day(db: Database):
    # An answer at 05:40 UTC on 7 Dec from Los Angeles is dated 6 Dec: the export wrote its time in
    # UTC, "2025-12-07T05:40:00+00:00", beside "local_date": "2025-12-06", as if a day off.
    await db.users.upsert(User(ALICE.platform, ALICE.user_id, timezone="America/Los_Angeles", prompt_time=time(21, 30),
                               journal_enabled=True, created_at=T0))
    answered = datetime(2025, 12, 7, 5, 40, tzinfo=timezone.utc)
    await db.journal.add(replace(journal(ALICE, 0), local_date=date(2025, 12, 6), created_at=answered))
    await db.prompts.record_sent(ALICE, "p-0", "phrase", date(2025, 12, 6), answered - timedelta(minutes=10), "dm", "m0")
    data = json.loads((await db.privacy.export(ALICE)).to_json())
    [entry], [prompt] = data["journal"], data["prompts"]
    assert (entry["local_date"], entry["created_at"]) == ("2025-12-06", "2025-12-06T21:40:00-08:00")
    assert prompt["sent_at"] == "2025-12-06T21:30:00-08:00" and data["user"]["created_at"] == "2026-11-20T04:00:00-08:00"
    assert datetime.fromisoformat(entry["created_at"]) == answered  # the same instant: it reads back as written


async def test_export_of_a_user_without_settings_or_a_zone_this_machine_lacks_is_in_utc(db: Database):
    await db.journal.add(journal(ALICE, 0))
    assert json.loads((await db.privacy.export(ALICE)).to_json())["journal"][0]["created_at"] == "2026-11-20T12:00:00+00:00"
    await db.users.upsert(User(ALICE.platform, ALICE.user_id, timezone="Mars/Olympus_Mons", created_at=T0))
    assert json.loads((await db.privacy.export(ALICE)).to_json())["journal"][0]["created_at"] == "2026-11-20T12:00:00+00:00"


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
