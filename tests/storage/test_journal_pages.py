"""Paging through a journal: pages by number or from a cursor, newest first, with their place in
the whole journal; a cursor stays put while new entries arrive and never reaches another's journal."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from storage.database import Database
from storage.models import JournalEntry, UserRef

ALICE = UserRef("chat", "alice")
BOB = UserRef("chat", "bob")
DAY0 = date(2026, 1, 1)


def entry(who: UserRef, n: int, *, day: date | None = None, at: datetime | None = None) -> JournalEntry:
    local = day or DAY0 + timedelta(days=n)
    return JournalEntry(
        user=who, local_date=local, prompt_id=f"{who.user_id}-{n}", phrase="Your song today?",
        reply_text=f"song {n}", track_key=f"spotify:{n}", track_title=f"Song {n}", mood="calm",
        valence=0.5, arousal=-0.5,
        created_at=at or datetime(local.year, local.month, local.day, 21, tzinfo=timezone.utc))


async def journal_of(db: Database, count: int, who: UserRef = ALICE) -> list[JournalEntry]:
    """`count` entries on consecutive days; returned newest first, as the list shows them."""
    entries = [entry(who, n) for n in range(count)]
    for e in entries:
        assert await db.journal.add(e)
    return entries[::-1]


def titles(page) -> list[str]:
    return [e.track_title for e in page.entries]


async def test_an_empty_journal_is_one_empty_page(db: Database):
    page = await db.journal.page(ALICE, 10)
    assert (page.entries, page.offset, page.total, page.has_older, page.has_newer) == ([], 0, 0, False, False)


async def test_exactly_one_page_has_nothing_older(db: Database):
    newest_first = await journal_of(db, 10)
    page = await db.journal.page(ALICE, 10)
    assert page.entries == newest_first and page.total == 10
    assert not page.has_older and not page.has_newer
    assert (await db.journal.page(ALICE, 10, before=page.cursors[-1])).entries == []


async def test_eleven_entries_are_two_pages_by_number_and_by_cursor(db: Database):
    newest_first = await journal_of(db, 11)
    first = await db.journal.page(ALICE, 10)
    assert first.entries == newest_first[:10] and first.has_older and not first.has_newer
    by_number = await db.journal.page(ALICE, 10, skip=10)
    by_cursor = await db.journal.page(ALICE, 10, before=first.cursors[-1])
    for second in (by_number, by_cursor):
        assert second.entries == newest_first[10:] and second.offset == 10 and second.total == 11
        assert second.has_newer and not second.has_older
    back = await db.journal.page(ALICE, 10, after=by_cursor.cursors[0])
    assert back.entries == newest_first[:10] and back.offset == 0


async def test_pages_follow_one_another_without_gaps_or_repeats(db: Database):
    newest_first = await journal_of(db, 57)
    seen, page = [], await db.journal.page(ALICE, 10)
    while True:
        assert page.offset == len(seen)
        seen += page.entries
        if not page.has_older:
            break
        page = await db.journal.page(ALICE, 10, before=page.cursors[-1])
    assert seen == newest_first
    assert (page.offset, len(page.entries)) == (50, 7)
    newer = await db.journal.page(ALICE, 10, after=page.cursors[0])  # back up from the last page
    assert newer.entries == newest_first[40:50] and newer.offset == 40


async def test_newer_from_near_the_top_is_a_full_first_page(db: Database):
    newest_first = await journal_of(db, 25)
    third = await db.journal.page(ALICE, 10, skip=3)  # e.g. new entries came in since
    newer = await db.journal.page(ALICE, 10, after=third.cursors[0])
    assert newer.entries == newest_first[:10] and newer.offset == 0


async def test_a_cursor_stays_put_while_new_entries_arrive(db: Database):
    newest_first = await journal_of(db, 20)
    first = await db.journal.page(ALICE, 10)
    for n in range(100, 103):  # three answers come in before the user presses "Older"
        assert await db.journal.add(entry(ALICE, n))
    older = await db.journal.page(ALICE, 10, before=first.cursors[-1])
    assert older.entries == newest_first[10:20]
    assert (older.offset, older.total) == (13, 23)


async def test_entries_of_one_day_and_instant_page_in_a_stable_order(db: Database):
    at = datetime(2026, 3, 1, 21, tzinfo=timezone.utc)
    for n in range(5):  # the same day, the first three at the very same instant
        assert await db.journal.add(entry(ALICE, n, day=date(2026, 3, 1), at=at + timedelta(minutes=max(0, n - 2))))
    everything = await db.journal.page(ALICE, 100)
    seen, page = [], await db.journal.page(ALICE, 2)
    while True:
        seen += page.cursors
        if not page.has_older:
            break
        page = await db.journal.page(ALICE, 2, before=page.cursors[-1])
    assert seen == everything.cursors and len(set(seen)) == 5
    assert titles(everything)[:2] == ["Song 4", "Song 3"]


async def test_a_cursor_of_another_users_entry_or_a_deleted_one_or_garbage_finds_nothing(db: Database):
    await journal_of(db, 3)
    bobs = await journal_of(db, 3, who=BOB)
    alices = await db.journal.page(ALICE, 10)
    bob_page = await db.journal.page(BOB, 10)
    assert bob_page.entries == bobs
    for cursor in bob_page.cursors:
        assert await db.journal.page(ALICE, 10, before=cursor) is None
        assert await db.journal.page(ALICE, 10, after=cursor) is None
    for garbage in ("", "abc", "0" * 23, "g" * 24, alices.cursors[0].upper(), "$gt"):
        assert await db.journal.page(ALICE, 10, before=garbage) is None
    await db.privacy.forget(ALICE)
    assert await db.journal.page(ALICE, 10, before=alices.cursors[0]) is None


async def test_beyond_the_last_page_is_empty_with_the_total(db: Database):
    await journal_of(db, 11)
    page = await db.journal.page(ALICE, 10, skip=20)
    assert (page.entries, page.total, page.has_older) == ([], 11, False)
