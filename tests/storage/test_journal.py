"""The journal: idempotent adds, newest-first listing, and statistics over a hand-made history."""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone

from storage.database import Database
from storage.models import JournalEntry, PeriodMoods, UserRef

ALICE = UserRef("chat", "alice")
BOB = UserRef("chat", "bob")

# (local date, mood): two runs cross a year boundary and an ISO week that starts in December.
HISTORY = [
    ("2025-12-29", "happy"), ("2025-12-30", "calm"),  # Mon/Tue of ISO week 2026-W01
    ("2026-10-29", "happy"), ("2026-10-30", "sad"), ("2026-10-31", "sad"), ("2026-11-01", "calm"),
    ("2026-11-05", "energetic"),
    ("2026-11-17", "happy"), ("2026-11-18", "happy"), ("2026-11-18", "sad"),  # two in one day
    ("2026-11-19", "calm"),
]
VALENCE = {"happy": 0.8, "energetic": -0.4, "sad": -0.7, "calm": 0.5}
AROUSAL = {"happy": 0.6, "energetic": 0.9, "sad": -0.5, "calm": -0.8}


def entry(who: UserRef, index: int, day: str, mood: str) -> JournalEntry:
    local = date.fromisoformat(day)
    return JournalEntry(
        user=who, local_date=local, prompt_id=f"{who.user_id}-{index}", phrase="Your song today?",
        reply_text=f"song {index}", track_key=f"spotify:{index}", track_title=f"Song {index}",
        mood=mood, valence=VALENCE[mood], arousal=AROUSAL[mood],
        created_at=datetime(local.year, local.month, local.day, 21, index, tzinfo=timezone.utc),
    )


async def write_history(db: Database, who: UserRef = ALICE) -> list[JournalEntry]:
    entries = [entry(who, i, day, mood) for i, (day, mood) in enumerate(HISTORY)]
    for e in entries:
        assert await db.journal.add(e)
    return entries


# The expected values, computed here without the database.

def expected_periods(key) -> list[PeriodMoods]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for day, mood in HISTORY:
        counts[key(date.fromisoformat(day))][mood] += 1
    return [PeriodMoods(p, dict(sorted(c.items()))) for p, c in sorted(counts.items())]


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def expected_streaks(today: date) -> tuple[int, int]:
    days = {date.fromisoformat(d) for d, _ in HISTORY}
    longest = 0
    for day in days:
        if day - timedelta(days=1) not in days:  # the start of a run
            length = 1
            while day + timedelta(days=length) in days:
                length += 1
            longest = max(longest, length)
    end = today if today in days else today - timedelta(days=1)
    current = 0
    while end - timedelta(days=current) in days:
        current += 1
    return current, longest


async def test_add_is_idempotent_per_prompt(db: Database):
    first = entry(ALICE, 1, "2026-11-20", "happy")
    assert await db.journal.add(first) is True
    again = entry(ALICE, 1, "2026-11-20", "sad")  # the same prompt's reply, delivered twice
    assert await db.journal.add(again) is False
    assert await db.journal.count(ALICE) == 1
    assert (await db.journal.list(ALICE))[0].mood == "happy"


async def test_same_prompt_id_for_two_users_is_two_entries(db: Database):
    assert await db.journal.add(entry(ALICE, 1, "2026-11-20", "happy"))
    assert await db.journal.add(JournalEntry(**{**entry(ALICE, 1, "2026-11-20", "happy").__dict__,
                                                "user": BOB}))
    assert (await db.journal.count(ALICE), await db.journal.count(BOB)) == (1, 1)


async def test_list_is_newest_first_and_pages(db: Database):
    entries = await write_history(db)
    newest_first = sorted(entries, key=lambda e: (e.local_date, e.created_at), reverse=True)
    assert await db.journal.list(ALICE, limit=100) == newest_first
    assert await db.journal.list(ALICE, limit=3, skip=2) == newest_first[2:5]
    assert await db.journal.list(ALICE) == newest_first[:10]
    assert await db.journal.list(ALICE, limit=5, skip=50) == []


async def test_list_round_trips_optional_place_and_note(db: Database):
    e = entry(ALICE, 1, "2026-11-20", "happy")
    e.note, e.place = "rainy day", "chat:guild"
    await db.journal.add(e)
    assert await db.journal.list(ALICE) == [e]


async def test_count(db: Database):
    assert await db.journal.count(ALICE) == 0
    await write_history(db)
    assert await db.journal.count(ALICE) == len(HISTORY)


async def test_stats_on_a_hand_made_history(db: Database):
    await write_history(db)
    await db.journal.add(entry(BOB, 59, "2026-11-20", "happy"))  # never counted for Alice
    today = date(2026, 11, 20)
    stats = await db.journal.stats(ALICE, today)

    assert stats.total_entries == len(HISTORY) == 11
    assert (stats.current_streak, stats.longest_streak) == expected_streaks(today) == (3, 4)
    assert stats.weekly == expected_periods(iso_week)
    assert stats.monthly == expected_periods(lambda d: f"{d.year}-{d.month:02d}")
    # Spot checks of the independent computation itself.
    assert stats.weekly[0] == PeriodMoods("2026-W01", {"calm": 1, "happy": 1})
    november = PeriodMoods("2026-11", {"calm": 2, "energetic": 1, "happy": 2, "sad": 1})
    assert november in stats.monthly
    assert stats.songs == [(f"Song {i}", VALENCE[m], AROUSAL[m], m)
                           for i, (_, m) in enumerate(HISTORY)]


async def test_current_streak_counts_today_and_breaks_after_a_missed_day(db: Database):
    await write_history(db)
    for today, current in [(date(2026, 11, 19), 3), (date(2026, 11, 20), 3),
                           (date(2026, 11, 21), 0), (date(2026, 11, 2), 4),
                           (date(2026, 11, 3), 0)]:
        stats = await db.journal.stats(ALICE, today)
        assert stats.current_streak == current == expected_streaks(today)[0], today
        assert stats.longest_streak == 4


async def test_stats_of_an_empty_journal(db: Database):
    stats = await db.journal.stats(ALICE, date(2026, 11, 20))
    assert (stats.total_entries, stats.current_streak, stats.longest_streak) == (0, 0, 0)
    assert stats.weekly == stats.monthly == stats.songs == []


async def test_the_days_of_a_window_are_read_from_its_first_day_to_its_last(db: Database):
    """The year in pixels reads the days of its window: 1 January and 31 December are in the year,
    the days beside them are not. On SecantusDB an entry of 1 January was left out: the index that
    serves the read has fields after the day, and the engine took `$gte` for `$gt` there."""
    for i, (day, mood) in enumerate([("2025-12-31", "sad"), ("2026-01-01", "happy"), ("2026-06-15", "calm"),
                                     ("2026-12-31", "energetic"), ("2027-01-01", "sad")]):
        assert await db.journal.add(entry(ALICE, i, day, mood))

    days = await db.journal.day_moods(ALICE, date(2026, 1, 1), date(2026, 12, 31))

    assert days == {date(2026, 1, 1): "happy", date(2026, 6, 15): "calm", date(2026, 12, 31): "energetic"}


async def test_a_days_square_takes_the_entry_its_list_shows_newest_even_at_the_same_millisecond(db: Database):
    """The list breaks a tie of created_at by the entry's _id; the year in pixels sorted by the
    time alone, and two entries of one day at one instant could show one mood there and another
    in the list."""
    from dataclasses import replace

    first = entry(ALICE, 0, "2026-03-14", "happy")
    assert await db.journal.add(first)
    assert await db.journal.add(replace(entry(ALICE, 1, "2026-03-14", "energetic"), created_at=first.created_at))

    newest = (await db.journal.page(ALICE, 1)).entries[0]
    assert newest.mood == "energetic"
    assert await db.journal.day_moods(ALICE, date(2026, 3, 14), date(2026, 3, 14)) == {date(2026, 3, 14): newest.mood}


async def test_the_days_of_a_window_say_which_held_several_entries(db: Database):
    """Read with their moods, in the same query: the days of the window answered more than once
    (their square shows the latest), not one beside the window."""
    for i, (day, mood) in enumerate([("2025-12-31", "sad"), ("2025-12-31", "calm"), ("2026-01-01", "happy"),
                                     ("2026-06-15", "calm"), ("2026-06-15", "sad"), ("2026-06-15", "happy"),
                                     ("2026-07-01", "sad")]):
        assert await db.journal.add(entry(ALICE, i, day, mood))

    days, several = await db.journal.day_moods_and_several(ALICE, date(2026, 1, 1), date(2026, 12, 31))

    assert days == {date(2026, 1, 1): "happy", date(2026, 6, 15): "happy", date(2026, 7, 1): "sad"}
    assert several == {date(2026, 6, 15)}


async def test_a_note_part_written_like_a_field_path_or_variable_is_kept_as_written(db: Database):
    """An update pipeline reads a string opening with '$' as a field path ('$5 for the vinyl' is
    the field '5 for the vinyl': missing, and the note became null) and '$$' as a variable (an
    error): the user's words go in as a literal, whatever they open with."""
    e = entry(ALICE, 1, "2026-11-20", "happy")
    e.note, e.answered_by = "rainy day", "m1"
    await db.journal.add(e)
    parts = ["$5 for the vinyl", "$$$ cash money", "$" * 250, "$note"]
    for words in parts:
        await db.journal.add_to_note(ALICE, "m1", words, "\n")
    expected = "\n".join(["rainy day", *parts])
    assert (await db.journal.answered_by(ALICE, "m1")).note == expected
    # Handed over again after a restart (a long part, the last one): found in the note, not added twice.
    for words in ("$" * 250, "$note"):
        assert (await db.journal.add_to_note(ALICE, "m1", words, "\n")).note == expected
