"""Given a user with a long journal types /journal list 2 or presses "◀ Older", they get the next
ten entries, told where those stand in the whole journal; a wrong page number is answered plainly."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from bot.replies import Caller, ErrorReply, JournalListReply
from bot.usecases.journal import BAD_LIST_WORDS, BAD_PAGE, NO_OLDER, PAGE_GONE, JournalUseCase
from storage.models import JournalEntry, UserRef
from tests.bot.conftest import ALICE_DM

ALICE_REF = UserRef(ALICE_DM.platform, ALICE_DM.user_id)
BOB_DM = Caller(platform=ALICE_DM.platform, user_id="2002", chat_id="2002", display_name="Bob")
DAY0 = date(2026, 1, 1)


def journal(db) -> JournalUseCase:
    return JournalUseCase(db, mood=None)  # listing never classifies a song


async def write_days(db, count: int, ref: UserRef = ALICE_REF) -> list[str]:
    """`count` entries on consecutive days; their titles newest first, as the list shows them."""
    for n in range(count):
        day = DAY0 + timedelta(days=n)
        assert await db.journal.add(JournalEntry(
            user=ref, local_date=day, prompt_id=f"{ref.user_id}-{n}", phrase="Today sounded like",
            reply_text="x", track_key=f"spotify:{n}", track_title=f"Song {n}", mood="calm", valence=0.1,
            arousal=-0.2, created_at=datetime(day.year, day.month, day.day, 21, tzinfo=timezone.utc)))
    return [f"Song {n}" for n in reversed(range(count))]


def titles(reply) -> list[str]:
    assert isinstance(reply, JournalListReply), reply
    return [e.title for e in reply.entries]


async def test_an_empty_journal_lists_nothing_on_any_page(db):
    for page in (1, "1", 2):
        reply = await journal(db).list(ALICE_DM, page=page)
        assert titles(reply) == [] and reply.total == 0 and not reply.has_older and not reply.has_newer


async def test_exactly_ten_entries_are_one_page_with_nothing_older(db):
    newest_first = await write_days(db, 10)
    reply = await journal(db).list(ALICE_DM)
    assert titles(reply) == newest_first and (reply.offset, reply.total) == (0, 10)
    assert not reply.has_older and not reply.has_newer
    beyond = await journal(db).list(ALICE_DM, page=2)
    assert isinstance(beyond, ErrorReply) and beyond.message == "Your journal has 10 entries, all on page 1: there's no page 2."
    again = await journal(db).list(ALICE_DM, before=reply.entries[-1].cursor)
    assert isinstance(again, ErrorReply) and again.message == NO_OLDER


async def test_eleven_entries_make_a_second_page_of_one(db):
    newest_first = await write_days(db, 11)
    first = await journal(db).list(ALICE_DM)
    assert titles(first) == newest_first[:10] and first.has_older and not first.has_newer
    by_number = await journal(db).list(ALICE_DM, page="2")
    by_button = await journal(db).list(ALICE_DM, before=first.entries[-1].cursor)
    for second in (by_number, by_button):
        assert titles(second) == ["Song 0"] and (second.offset, second.total) == (10, 11)
        assert second.has_newer and not second.has_older
    back = await journal(db).list(ALICE_DM, after=by_button.entries[0].cursor)
    assert titles(back) == newest_first[:10]


async def test_pages_by_number_cover_the_journal_in_order(db):
    newest_first = await write_days(db, 57)
    pages = [await journal(db).list(ALICE_DM, page=n) for n in range(1, 7)]
    assert sum((titles(p) for p in pages), []) == newest_first
    assert [(p.offset, len(p.entries)) for p in pages] == [(0, 10), (10, 10), (20, 10), (30, 10), (40, 10), (50, 7)]
    assert [p.has_older for p in pages] == [True] * 5 + [False]
    beyond = await journal(db).list(ALICE_DM, page=7)
    assert isinstance(beyond, ErrorReply)
    assert beyond.message == "Your journal has 6 pages (57 entries): there's no page 7. Page 6 holds the oldest."


# "١" (Arabic-Indic): a digit to Python, not to NFKC; full-width "１" is 1 (an input method's).
@pytest.mark.parametrize("page", [0, -1, "0", "000", "-1", "abc", "1e3", "", "١", "０"])  # "2.5": 2 May, a date
async def test_a_page_that_is_not_a_whole_number_from_one_is_refused_plainly(db, page):
    await write_days(db, 3)
    reply = await journal(db).list(ALICE_DM, page=page)
    assert isinstance(reply, ErrorReply)
    # Typed as text, it may have been meant as a day or a month: neither is read, and how to ask for one follows.
    said = BAD_LIST_WORDS if isinstance(page, str) else BAD_PAGE
    assert reply.message == said.format(page=str(page).strip(), limit=10)


@pytest.mark.parametrize("digits", [30, 5000])  # Python refuses int() of over 4300 digits
async def test_a_huge_page_number_is_beyond_the_last_page(db, digits):
    assert titles(await journal(db).list(ALICE_DM, page=" 0001 ")) == []  # page 1 of an empty journal
    await write_days(db, 3)
    reply = await journal(db).list(ALICE_DM, page="9" * digits)
    assert isinstance(reply, ErrorReply) and "there's no page 999" in reply.message and len(reply.message) < 200


@pytest.mark.parametrize("typed, year", [("2025", True), (" 2026 ", True), ("1999", True), ("7", False),
                                         ("9999", False), ("0999", False)])
async def test_a_year_typed_as_the_page_is_told_how_to_list_that_year(db, typed, year):
    """'/journal list 2025', meant as the year, was "there's no page 2025" alone: a year no journal
    has as many pages as is said to be read as one, with the month that lists it from its end back."""
    await write_days(db, 3)
    reply = await journal(db).list(ALICE_DM, page=typed)
    assert isinstance(reply, ErrorReply) and f"there's no page {typed.strip()}." in reply.message, reply
    hint = (f" If you meant the year: /journal list December {typed.strip()} lists your journal from its end back.")
    assert reply.message.endswith(hint) == year, reply.message


async def test_someone_elses_cursor_shows_nothing_of_their_journal(db):
    await write_days(db, 12)
    bobs = await journal(db).list(BOB_DM)
    assert titles(bobs) == []
    alices = await journal(db).list(ALICE_DM)
    for cursor in (alices.entries[-1].cursor, alices.entries[0].cursor):
        for direction in ("before", "after"):
            reply = await journal(db).list(BOB_DM, **{direction: cursor})
            assert isinstance(reply, ErrorReply) and reply.message == PAGE_GONE


async def test_a_page_of_entries_deleted_since_says_so(db):
    await write_days(db, 12)
    first = await journal(db).list(ALICE_DM)
    await db.privacy.forget(ALICE_REF)
    reply = await journal(db).list(ALICE_DM, before=first.entries[-1].cursor)
    assert isinstance(reply, ErrorReply) and reply.message == PAGE_GONE


# 57 entries, 2026-01-01 to 2026-02-26, read on Tuesday 10 March 2026 (UTC: Alice saved no zone).
MARCH_10 = datetime(2026, 3, 10, 12, tzinfo=timezone.utc)


def dated(db) -> JournalUseCase:
    return JournalUseCase(db, mood=None, now=lambda: MARCH_10)


@pytest.mark.parametrize("typed, first, period", [
    ("2026-02-03", "2026-02-03", "2026-02-03"), ("Feb 3", "2026-02-03", "2026-02-03"),
    ("3 February", "2026-02-03", "2026-02-03"), ("February 3rd, 2026", "2026-02-03", "2026-02-03"),
    ("january", "2026-01-31", "January 2026"), ("Jan 2026", "2026-01-31", "January 2026"),
    ("2026-01", "2026-01-31", "January 2026"), ("February", "2026-02-26", "February 2026"),
])
async def test_a_day_or_a_month_lists_the_journal_from_there_back(db, typed, first, period):
    # '/journal list december' and '/journal list 2026-12-05' were "isn't a page number".
    await write_days(db, 57)
    reply = await dated(db).list(ALICE_DM, page=typed)
    assert isinstance(reply, JournalListReply), reply
    assert reply.entries[0].local_date.isoformat() == first and reply.period == period
    assert len(reply.entries) == 10 and reply.has_older and reply.total == 57
    assert reply.has_newer == (first != "2026-02-26")  # the newest entry is in February
    older = await dated(db).list(ALICE_DM, before=reply.entries[-1].cursor)  # ◀ Older goes on from it
    assert older.entries[0].local_date == reply.entries[-1].local_date - timedelta(days=1)


async def test_page_typed_before_its_number_is_that_page(db):
    await write_days(db, 57)
    for typed in ("page 2", "Page 2", "p. 2", "p2"):
        reply = await dated(db).list(ALICE_DM, page=typed)
        assert isinstance(reply, JournalListReply) and reply.offset == 10, (typed, reply)


@pytest.mark.parametrize("typed, said", [
    ("last week", "There are no entries in the week of 2 Mar 2026 in your journal: the nearest before it is dated "
                  "2026-02-26 (/journal list 2026-02-26)."),
    ("march", "There are no entries in March 2026 in your journal: the nearest before it is dated 2026-02-26 "
              "(/journal list 2026-02-26)."),
    ("2025-12-25", "Your journal starts on 2026-01-01: there are no entries dated 2025-12-25 or before."),
    ("December 2025", "Your journal starts on 2026-01-01: there are no entries in December 2025 or before."),
    ("2027-01-01", "2027-01-01 hasn't come yet: today is 2026-03-10 where you are. /journal list shows your latest entries."),
    ("0000-12-05", BAD_LIST_WORDS.format(page='0000-12-05', limit=10)),  # year 0: "something went wrong"
    ("01.02.", "“01.02.” could be 2 January 2026 (/journal list 2026-01-02) or 1 February 2026 "
               "(/journal list 2026-02-01): send the one you mean."),
])
async def test_a_day_or_a_month_without_entries_says_where_the_nearest_are(db, typed, said):
    await write_days(db, 57)
    reply = await dated(db).list(ALICE_DM, page=typed)
    assert isinstance(reply, ErrorReply) and reply.message == said


async def test_a_day_between_entries_names_the_nearest_on_either_side(db):
    await write_days(db, 57)
    await db.journal.delete(ALICE_REF, "1001-40")  # 2026-02-10
    reply = await dated(db).list(ALICE_DM, page="Feb 10")
    assert isinstance(reply, ErrorReply) and reply.message == (
        "There's no entry dated 2026-02-10 in your journal: the nearest before it is dated 2026-02-09 "
        "(/journal list 2026-02-09), after it 2026-02-11.")


async def test_a_day_after_today_holding_an_entry_dated_in_a_zone_left_behind_is_listed(db):
    """Alice answered on the morning of 11 March in Tokyo, then moved her journal to UTC, where it
    is still the 10th: /journal list shows that entry first, dated 2026-03-11, and /journal delete
    2026-03-11 deletes it, but /journal list 2026-03-11 said that day "hasn't come yet". A day
    after today with no entry still says so."""
    await write_days(db, 57)
    await db.journal.add(JournalEntry(
        user=ALICE_REF, local_date=date(2026, 3, 11), prompt_id="tokyo", phrase="This morning", reply_text="x",
        track_key="spotify:tokyo", track_title="Song in Tokyo", mood="happy", valence=0.5, arousal=0.4,
        created_at=datetime(2026, 3, 10, 23, tzinfo=timezone.utc)))
    for typed in ("2026-03-11", "tomorrow", "this week"):
        reply = await dated(db).list(ALICE_DM, page=typed)
        assert titles(reply)[:2] == ["Song in Tokyo", "Song 56"], typed
    later = await dated(db).list(ALICE_DM, page="2026-03-12")
    assert isinstance(later, ErrorReply) and later.message == (
        "2026-03-12 hasn't come yet: today is 2026-03-10 where you are. /journal list shows your latest entries.")
