"""Given a console user with 23 journal entries, /journal list shows the latest ten and how to go
further back; /journal list 2, older and newer page through the rest."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from bot.usecases.journal import BAD_LIST_WORDS
from storage.models import JournalEntry, UserRef
from tests.bot.test_console import chat

CONSOLE_REF = UserRef("console", "local")


async def write_days(db, count: int) -> None:
    for n in range(count):
        day = date(2026, 1, 1) + timedelta(days=n)
        assert await db.journal.add(JournalEntry(
            user=CONSOLE_REF, local_date=day, prompt_id=f"p{n}", phrase="Today sounded like", reply_text="x",
            track_key=f"spotify:{n}", track_title=f"Song {n}", mood="calm", valence=0.1, arousal=-0.2,
            created_at=datetime(day.year, day.month, day.day, 21, tzinfo=timezone.utc)))


def listings(out: str) -> list[list[str]]:
    """Each page shown: its header and its entries (what follows it is cut off)."""
    blocks = out.split("Your journal, entries ")[1:]
    return [[line for line in ("Your journal, entries " + block).splitlines()
             if line.startswith(("Your journal, entries", "2026-", "Older entries"))] for block in blocks]


async def test_the_console_pages_by_number_and_older_newer(db, counting, tmp_path):
    await write_days(db, 23)
    out = await chat(db, counting, tmp_path, ["/journal list", "/journal list older", "/journal list older",
                                              "/journal list older", "/journal list newer", "/journal list 3",
                                              "/journal list 4", "/journal list 0", "/journal list abc", "/quit"])
    first, second, third, back, by_number = listings(out)  # the fourth "older" lists nothing
    assert first[0] == "Your journal, entries 1–10 of 23 (newest first):"
    assert first[1].startswith("2026-01-23") and first[10].startswith("2026-01-14")
    assert first[-1] == "Older entries: /journal list older (or a page: /journal list 2)"
    assert second[0] == "Your journal, entries 11–20 of 23 (newest first):" and second[1].startswith("2026-01-13")
    assert third[0] == "Your journal, entries 21–23 of 23 (newest first):" and "Older entries" not in third[-1]
    assert "There are no older entries: that was the start of your journal." in out  # a fourth "older"
    assert back == second
    assert by_number == third
    assert "Your journal has 3 pages (23 entries): there's no page 4. Page 3 holds the oldest." in out
    assert BAD_LIST_WORDS.format(page="0", limit=10) in out and BAD_LIST_WORDS.format(page="abc", limit=10) in out


async def test_a_page_number_typed_in_full_width_digits_is_that_page(db, counting, tmp_path):
    # A Chinese or Japanese input method in full-width mode types "２" for 2.
    await write_days(db, 23)
    out = await chat(db, counting, tmp_path, ["/journal list ２", "/journal list ０３", "/quit"])
    second, third = listings(out)
    assert second[0] == "Your journal, entries 11–20 of 23 (newest first):"
    assert third[0] == "Your journal, entries 21–23 of 23 (newest first):"


async def test_newer_from_the_latest_entries_says_there_are_none(db, counting, tmp_path):
    # "newer" from the first page listed it again, as many times as asked, while "older" from the
    # last page says there are none: the user could not tell they were at the top already.
    await write_days(db, 23)
    out = await chat(db, counting, tmp_path, ["/journal list", "/journal list newer", "/journal list older",
                                              "/journal list newer", "/journal list newer", "/quit"])
    first, second, back = listings(out)
    assert first[0] == "Your journal, entries 1–10 of 23 (newest first):" and back == first, out
    assert second[0] == "Your journal, entries 11–20 of 23 (newest first):"
    assert out.count("There are no newer entries: those are your latest.") == 2


async def test_the_console_lists_from_a_day_or_a_month_and_goes_on_older_from_there(db, counting, tmp_path):
    # '/journal list 2026-01-10', '... january 2026' and '... page 2' were "isn't a page number".
    await write_days(db, 23)
    out = await chat(db, counting, tmp_path, ["/journal list 2026-01-10", "/journal list older",
                                              "/journal list January 2026", "/journal list page 2", "/help", "/quit"])
    assert ("/journal list [page | day | month] – Your latest journal entries; page 2 and on go further back, and a "
            "day or a month lists from there: /journal list December") in out  # /help said "[page]" alone
    assert "Your journal, 2026-01-10 and before: entries 14–23 of 23 (newest first):" in out
    assert "Your journal, January 2026 and before: entries 1–10 of 23 (newest first):" in out
    assert "(newest first):\n2026-01-10 · " in out and "(newest first):\n2026-01-23 · " in out
    # Listed from a day, its pages do not start at a page's start: "older" alone goes on from it (page 2
    # was named under entries 1–10 of January, the same entries again).
    january = out[out.index("Your journal, January 2026 and before"):]
    assert "\nOlder entries: /journal list older\n" in january and "(or a page" not in january.split("Your journal, entries")[0]
    assert "There are no older entries: that was the start of your journal." in out  # 2026-01-01 was listed
    [page_two] = listings(out)
    assert page_two[0] == "Your journal, entries 11–20 of 23 (newest first):"
