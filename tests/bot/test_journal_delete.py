"""/journal delete: one entry of the caller's own goes, by date or the newest, with what it counted
for (playlists, the mood of the week), and its prompt takes another song."""
from __future__ import annotations

import asyncio
import re
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

from bot.frontends import render
from bot.frontends.discord.rendering import message_parts
from bot.frontends.telegram import text_of as telegram_text_of
from bot.replies import (Caller, ErrorReply, JournalDeleteChoiceReply, JournalDeletedReply, JournalSavedReply,
                         TextReply)
from bot.usecases.journal import JournalUseCase
from bot.usecases.mood import MoodUseCase
from bot.usecases.playlists import PlaylistUseCase
from storage.database import Database
from storage.models import JournalEntry, MoodRequest, UserRef
from storage.outbox import JournalOutbox, JournalWriter
from storage.schema import JOURNAL_TRACKS
from tests.abuse.test_forget_cut_short import refusing_writes
from tests.bot.conftest import ALICE, ALICE_DM, BOB, attachment
from tests.bot.test_journal import Clock, journal_usecase
from tests.fakes.wire_gate import gated_database

ALICE_REF = UserRef("telegram", "1001")
BOB_REF = UserRef("telegram", "1002")
BOB_DM = replace(BOB, place=None)
GROUP = ALICE.place
DEC_3 = datetime(2026, 12, 3, 21, 30, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def seeded(who: UserRef, day: date, prompt_id: str, *, key: str = "spotify:song", title: str = "Song",
           mood: str = "happy", at: datetime | None = None, note: str = "") -> JournalEntry:
    """An entry as an answer in the member's private chat writes it."""
    return JournalEntry(user=who, local_date=day, prompt_id=prompt_id, phrase="Today, the song in my head was",
                        reply_text=title, track_key=key, track_title=title, mood=mood, valence=0.1, arousal=0.2,
                        created_at=at or datetime.combine(day, datetime.min.time(), timezone.utc) + 20 * timedelta(hours=1),
                        note=note)


async def answered_days(journal: JournalUseCase, caller=ALICE_DM) -> list[date]:
    return [entry.local_date for entry in (await journal.list(caller)).entries]


async def two_days_answered(db, counting, clip_paths) -> JournalUseCase:
    """Alice's journal, on at 21:30 UTC, whose prompts of 3 and 4 Dec (messages 701 and 702) were
    each answered with a clip; its clock stands on the 4th."""
    clock = Clock(DEC_3)
    journal = journal_usecase(db, counting, now=clock)
    await journal.enable(ALICE_DM, "21:30", "UTC")
    for message_id, clip in (("701", clip_paths[0]), ("702", clip_paths[1])):
        prompt = await journal.make_prompt(await db.users.get(ALICE_REF))
        await journal.prompt_delivered(prompt.prompt_id, message_id)
        assert isinstance(await journal.answer(ALICE_DM, message_id, attachment(clip)), JournalSavedReply)
        clock.at += DAY
    clock.at -= DAY
    return journal


async def test_the_newest_entry_or_a_days_entry_is_deleted_and_named(db, counting, clip_paths):
    clock = Clock(DEC_3)
    journal = journal_usecase(db, counting, now=clock)
    await journal.enable(ALICE_DM, "21:30", "UTC")
    phrases = []
    for n in range(3):  # 3, 4 and 5 December
        prompt = await journal.make_prompt(await db.users.get(ALICE_REF))
        phrases.append(prompt.phrase)
        saved = await journal.answer(ALICE_DM, f"day {n}", attachment(clip_paths[n % 2]))
        assert isinstance(saved, JournalSavedReply), saved
        clock.at += DAY
    clock.at -= DAY  # still the 5th

    gone = await journal.delete(ALICE_DM, "2026-12-04")

    assert isinstance(gone, JournalDeletedReply) and gone.entry.local_date == date(2026, 12, 4)
    assert gone.reopened is False  # the 5th's prompt is the one a message answers now
    text = render.reply_text(gone)
    assert text == f"Deleted from your journal: 2026-12-04 · {phrases[1]} {gone.entry.title} " \
                   f"({render.mood_label(gone.entry.mood)}) – day 1"
    assert text in telegram_text_of(gone) and "open again" not in text
    assert await answered_days(journal) == [date(2026, 12, 5), date(2026, 12, 3)]

    newest = await journal.delete(ALICE_DM, "last")
    assert isinstance(newest, JournalDeletedReply) and newest.entry.local_date == date(2026, 12, 5)
    assert newest.entry.note == "day 2" and "open again" in render.reply_text(newest)
    assert await answered_days(journal) == [date(2026, 12, 3)]
    stats = await journal.stats(ALICE_DM)
    assert "1 journal entry" in stats.summary


async def test_a_deleted_answer_to_the_open_prompt_can_be_answered_again(db, counting, clip_paths):
    """The wrong song for today's prompt: delete it, and the next message is today's answer, not
    "You've already answered that prompt"."""
    clock = Clock(DEC_3)
    journal = journal_usecase(db, counting, now=clock)
    await journal.enable(ALICE_DM, "21:30", "UTC")
    prompt = await journal.make_prompt(await db.users.get(ALICE_REF))
    await journal.prompt_delivered(prompt.prompt_id, "700")
    wrong = await journal.answer(ALICE_DM, "oops", attachment(clip_paths[0]))
    assert isinstance(wrong, JournalSavedReply)
    refused = await journal.answer(ALICE_DM, "the one I meant", attachment(clip_paths[1]))
    assert isinstance(refused, ErrorReply) and "/journal delete 2026-12-03, then answer it again" in refused.message

    gone = await journal.delete(ALICE_DM, "last")

    assert isinstance(gone, JournalDeletedReply) and gone.reopened
    assert render.reply_text(gone).endswith("The prompt it answered is open again: answer it with another song.")
    again = await journal.answer(ALICE_DM, "the one I meant", attachment(clip_paths[1]))
    assert isinstance(again, JournalSavedReply) and again.local_date == date(2026, 12, 3), again
    listing = await journal.list(ALICE_DM)
    assert listing.total == 1 and listing.entries[0].note == "the one I meant"
    third = await journal.answer(ALICE_DM, "and another", attachment(clip_paths[0]), prompt_message_id="700")
    assert isinstance(third, ErrorReply) and "already answered" in third.message  # one song per prompt still


async def test_an_older_prompts_deleted_entry_is_answered_again_by_a_reply_to_it_only(db, counting, clip_paths):
    """Yesterday's entry deleted after today's prompt came: a message that replies to no prompt
    still answers today's (answered: told so), never yesterday's; a reply to yesterday's prompt
    files a song under yesterday, as before it was answered."""
    journal = await two_days_answered(db, counting, clip_paths)

    gone = await journal.delete(ALICE_DM, "2026-12-03")
    assert isinstance(gone, JournalDeletedReply) and not gone.reopened
    assert "open again" not in render.reply_text(gone)

    dm = await journal.answer(ALICE_DM, "a plain message", attachment(clip_paths[0]))
    assert isinstance(dm, ErrorReply) and "already answered" in dm.message
    assert await answered_days(journal) == [date(2026, 12, 4)]
    replied = await journal.answer(ALICE_DM, "meant for the 3rd", attachment(clip_paths[0]), prompt_message_id="701")
    assert isinstance(replied, JournalSavedReply) and replied.local_date == date(2026, 12, 3), replied
    assert await answered_days(journal) == [date(2026, 12, 4), date(2026, 12, 3)]


async def test_a_day_of_several_entries_deletes_none_and_asks_which(db, counting):
    journal = journal_usecase(db, counting, now=lambda: DEC_3)
    day = date(2026, 12, 3)
    for n, hour in ((1, 9), (2, 13), (3, 18)):
        await db.journal.add(seeded(ALICE_REF, day, f"p{n}", title=f"Song {n}", note=f"note {n}",
                                    at=datetime(2026, 12, 3, hour, tzinfo=timezone.utc)))
    await db.journal.add(seeded(ALICE_REF, date(2026, 12, 2), "p0", title="Song 0"))

    ask = await journal.delete(ALICE_DM, "2026-12-03")

    assert isinstance(ask, JournalDeleteChoiceReply) and [e.title for e in ask.entries] == ["Song 3", "Song 2",
                                                                                             "Song 1"]
    assert await db.journal.count(ALICE_REF) == 4
    text = render.reply_text(ask)
    assert "You have 3 entries dated 2026-12-03, so I deleted none" in text
    assert "/journal delete 2026-12-03 3" in text
    assert "\n2. Today, the song in my head was Song 2 (😊 happy) – note 2\n" in text

    too_far = await journal.delete(ALICE_DM, "2026-12-03", 4)
    assert isinstance(too_far, ErrorReply) and "choose one by its number, 1 to 3" in too_far.message
    nought = await journal.delete(ALICE_DM, "2026-12-03 0")
    assert isinstance(nought, ErrorReply) and "isn't an entry's number" in nought.message
    assert await db.journal.count(ALICE_REF) == 4

    second = await journal.delete(ALICE_DM, "2026-12-03 2")  # typed whole, as the console and Telegram take it
    assert isinstance(second, JournalDeletedReply) and second.entry.title == "Song 2"
    by_option = await journal.delete(ALICE_DM, "2026-12-03", 2)  # Discord's number option: now Song 1
    assert isinstance(by_option, JournalDeletedReply) and by_option.entry.title == "Song 1"
    only = await journal.delete(ALICE_DM, "2026-12-03", 2)
    assert isinstance(only, ErrorReply) and only.message == \
        "2026-12-03 has one entry, not 2: /journal delete 2026-12-03 deletes it."
    assert [e.track_title for e in await db.journal.list(ALICE_REF)] == ["Song 3", "Song 0"]


@pytest.mark.parametrize("typed, needle", [
    ("", "Tell me which entry to delete: /journal delete last"),
    ("   ", "Tell me which entry to delete"),
    ("someday", "“someday” isn't a date I can read"),
    ("2026-13-01", "“2026-13-01” isn't a date"),
    ("2026-02-30", "“2026-02-30” isn't a date"),
    ("0000-12-05", "“0000-12-05” isn't a date"),  # year 0, which Python's dates lack: "something went wrong"
    ("5.12.0000", "“5.12.0000” isn't a date"),
    ("05/12/2026", "“05/12/2026” could be 12 May 2026 (/journal delete 2026-05-12) or 5 December 2026"),
    ("last 2", "“last 2” would be more than one entry: /journal delete deletes one at a time"),
    ("2026-12-03 2 3", "Tell me which entry to delete"),
    ("2026-12-03 two", "“two” isn't an entry's number"),
    ("2026-12-04", "2026-12-04 hasn't come yet: today is 2026-12-03 where you are."),
])
async def test_a_bad_date_or_one_without_an_entry_is_told_and_deletes_nothing(db, counting, typed, needle):
    journal = journal_usecase(db, counting, now=lambda: DEC_3)
    await db.journal.add(seeded(ALICE_REF, date(2026, 12, 3), "p1"))
    reply = await journal.delete(ALICE_DM, typed)
    assert isinstance(reply, ErrorReply) and needle in reply.message, reply
    assert await db.journal.count(ALICE_REF) == 1


DEC_6 = datetime(2026, 12, 6, 12, tzinfo=timezone.utc)


@pytest.mark.parametrize("typed, day", [
    ("Dec 1", date(2026, 12, 1)), ("1 Dec", date(2026, 12, 1)), ("1 December 2026", date(2026, 12, 1)),
    ("December 1st", date(2026, 12, 1)), ("december 1st, 2026", date(2026, 12, 1)), ("Dec. 1", date(2026, 12, 1)),
    ("1st of December", date(2026, 12, 1)), ("Dec 25", date(2025, 12, 25)), ("25.12.", date(2025, 12, 25)),
    ("25/12", date(2025, 12, 25)), ("yesterday", date(2026, 12, 5)), ("Today", date(2026, 12, 6)),
    ("2026/12/05", date(2026, 12, 5)), ("Jan 12", date(2026, 1, 12)),
])
async def test_a_date_written_as_people_write_it_deletes_that_days_entry(db, counting, typed, day):
    """'/journal delete Dec 1' was told "“Dec” isn't a date as /journal list writes them", the rest
    of the date lost: a month named, before or after the day, with or without its year, and
    'yesterday' or 'today' are read. A day without its year is the latest such day up to today."""
    journal = journal_usecase(db, counting, now=lambda: DEC_6)
    days = [date(2026, 12, 1), date(2025, 12, 25), date(2026, 12, 5), date(2026, 12, 6), date(2026, 1, 12),
            date(2025, 12, 1)]
    for n, each in enumerate(days):
        await db.journal.add(seeded(ALICE_REF, each, f"p{n}"))
    gone = await journal.delete(ALICE_DM, typed)
    assert isinstance(gone, JournalDeletedReply) and gone.entry.local_date == day, gone
    assert sorted(await answered_days(journal)) == sorted(set(days) - {day})


async def test_today_and_yesterday_are_the_users_own_days_where_they_live(db, counting):
    journal = journal_usecase(db, counting, now=lambda: DEC_6)  # 01:00 on the 7th in Auckland
    await journal.enable(ALICE_DM, "21:30", "Pacific/Auckland")
    for n, each in enumerate((date(2026, 12, 5), date(2026, 12, 6), date(2026, 12, 7))):
        await db.journal.add(seeded(ALICE_REF, each, f"p{n}"))
    assert (await journal.delete(ALICE_DM, "today")).entry.local_date == date(2026, 12, 7)
    assert (await journal.delete(ALICE_DM, "yesterday")).entry.local_date == date(2026, 12, 6)


@pytest.mark.parametrize("typed, first, second", [
    ("12-01", "2026-12-01", "2026-01-12"), ("01.12.", "2026-01-12", "2026-12-01"),
    ("1/12/2025", "2025-01-12", "2025-12-01"),
])
async def test_a_date_that_reads_two_ways_deletes_nothing_and_gives_both(db, counting, typed, first, second):
    """'12-01' is 1 December as /journal list orders a date, 12 January where the day comes first:
    a delete guessing wrong loses an entry, so it asks, with the command for each."""
    journal = journal_usecase(db, counting, now=lambda: DEC_6)
    for n, each in enumerate((date(2026, 12, 1), date(2026, 1, 12), date(2025, 12, 1), date(2025, 1, 12))):
        await db.journal.add(seeded(ALICE_REF, each, f"p{n}"))
    ask = await journal.delete(ALICE_DM, typed)
    assert isinstance(ask, ErrorReply) and ask.message.startswith(f"“{typed}” could be "), ask
    assert f"/journal delete {first}" in ask.message and f"/journal delete {second}" in ask.message
    assert "I deleted nothing" in ask.message and await db.journal.count(ALICE_REF) == 4
    numbered = await journal.delete(ALICE_DM, typed, 2)
    assert isinstance(numbered, ErrorReply) and f"/journal delete {first} 2" in numbered.message


async def test_a_named_day_with_several_entries_takes_their_number_after_it(db, counting):
    journal = journal_usecase(db, counting, now=lambda: DEC_6)
    for n in (1, 2):
        await db.journal.add(seeded(ALICE_REF, date(2026, 12, 1), f"p{n}", title=f"Song {n}",
                                    at=datetime(2026, 12, 1, 8 + n, tzinfo=timezone.utc)))
    ask = await journal.delete(ALICE_DM, "Dec 1")
    assert isinstance(ask, JournalDeleteChoiceReply) and "/journal delete 2026-12-01 2" in render.reply_text(ask)
    assert (await journal.delete(ALICE_DM, "Dec 1 2")).entry.title == "Song 1"  # typed whole
    assert (await journal.delete(ALICE_DM, "1 December 2026", 1)).entry.title == "Song 2"  # Discord's option


@pytest.mark.parametrize("typed, said", [
    # Each said "There's no entry dated … your newest is dated 2026-12-05", of a day before the
    # journal began or still to come; "last week" and "last 3" got the usage, as if "last" were not read.
    ("2020-01-01", "Your journal starts on 2026-11-20: there's no entry dated 2020-01-01."),
    ("Nov 1", "Your journal starts on 2026-11-20: there's no entry dated 2026-11-01."),
    ("2026-11-25", "There's no entry dated 2026-11-25 in your journal: the nearest before it is dated 2026-11-20, "
                   "after it 2026-12-02. /journal list 2026-11-25 lists the entries around it."),
    ("tomorrow", "2026-12-07 hasn't come yet: today is 2026-12-06 where you are."),
    ("2027-01-01", "2027-01-01 hasn't come yet: today is 2026-12-06 where you are."),
    ("last week", "“last week” would be more than one entry: /journal delete deletes one at a time, your newest with "
                  "/journal delete last or a day's with /journal delete <date>, e.g. /journal delete 2026-12-05. "
                  "/forget deletes everything."),
    ("Last 3", "“Last 3” would be more than one entry"),
])
async def test_a_day_without_an_entry_says_where_the_journal_is_and_deletes_nothing(db, counting, typed, said):
    journal = journal_usecase(db, counting, now=lambda: DEC_6)
    for n, day in enumerate((date(2026, 11, 20), date(2026, 12, 2), date(2026, 12, 5))):
        await db.journal.add(seeded(ALICE_REF, day, f"p{n}"))
    reply = await journal.delete(ALICE_DM, typed)
    assert isinstance(reply, ErrorReply) and reply.message.startswith(said), reply
    assert await db.journal.count(ALICE_REF) == 3


@pytest.mark.parametrize("typed", ["Dec 1", "Decembre 1", "someday", "Feb 30", "Dec 32", "tomorrow-ish"])
async def test_a_date_not_understood_is_quoted_whole_with_the_forms_that_are(db, counting, typed):
    journal = journal_usecase(db, counting, now=lambda: DEC_6)
    await db.journal.add(seeded(ALICE_REF, date(2026, 12, 2), "p1"))
    if typed == "Dec 1":  # understood: there is just no entry that day, the day before the journal's first
        reply = await journal.delete(ALICE_DM, typed)
        assert reply.message == "Your journal starts on 2026-12-02: there's no entry dated 2026-12-01.", reply
        return
    reply = await journal.delete(ALICE_DM, typed)
    assert isinstance(reply, ErrorReply) and reply.message.startswith(f"“{typed}” isn't a date I can read"), reply
    for form in ("/journal delete last", "2026-12-05", "Dec 5", "5 December 2026", "yesterday", "today"):
        assert form in reply.message
    assert await db.journal.count(ALICE_REF) == 1


async def test_a_date_typed_in_full_width_digits_is_read(db, counting):
    journal = journal_usecase(db, counting, now=lambda: DEC_3)
    await db.journal.add(seeded(ALICE_REF, date(2026, 12, 3), "p1"))
    reply = await journal.delete(ALICE_DM, "２０２６-１２-０３")
    assert isinstance(reply, JournalDeletedReply) and await db.journal.count(ALICE_REF) == 0


async def test_an_empty_journal_or_a_user_who_never_kept_one_is_told_there_is_nothing_to_delete(db, counting):
    journal = journal_usecase(db, counting, now=lambda: DEC_3)
    for which in ("last", "2026-12-03"):
        never = await journal.delete(ALICE_DM, which)
        assert isinstance(never, ErrorReply) and "no journal entries to delete" in never.message
        assert "/journal on 21:30 Europe/Lisbon" in never.message
    await journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    for which in ("last", "2026-12-03"):
        empty = await journal.delete(ALICE_DM, which)
        assert isinstance(empty, ErrorReply) and empty.message == "Your journal is empty: there's nothing to delete."


async def test_with_the_database_down_a_delete_says_so_as_the_other_journal_commands(counting):
    from tests.dbserver import free_port

    down = await Database.connect(f"mongodb://127.0.0.1:{free_port()}/", "x", server_selection_timeout_ms=200,
                                  verify=False)
    try:
        journal = journal_usecase(down, counting)
        listed, deleted = await journal.list(ALICE_DM), await journal.delete(ALICE_DM, "last")
        assert isinstance(deleted, ErrorReply) and "unavailable" in deleted.message
        assert deleted.message == listed.message
    finally:
        await down.close()


async def test_only_the_callers_own_entries_are_ever_deleted(db, counting):
    """Bob's entry of the same day, and the entry of Alice's namesake on Discord (user id 1001 there
    too), are theirs: neither a date nor "last" reaches them, nor does a number."""
    journal = journal_usecase(db, counting, now=lambda: DEC_3)
    day = date(2026, 12, 3)
    namesake = Caller("discord", "1001", place=None, chat_id="55")
    await db.journal.add(seeded(ALICE_REF, day, "alice-p", title="Alice's"))
    await db.journal.add(seeded(BOB_REF, day, "bob-p", title="Bob's"))
    await db.journal.add(seeded(UserRef("discord", "1001"), day, "alice-p", title="Namesake's"))

    mine = await journal.delete(BOB_DM, "2026-12-03")
    assert isinstance(mine, JournalDeletedReply) and mine.entry.title == "Bob's"
    assert isinstance(await journal.delete(BOB_DM, "2026-12-03"), ErrorReply)
    assert isinstance(await journal.delete(BOB_DM, "last"), ErrorReply)
    assert isinstance(await journal.delete(BOB_DM, "2026-12-03", 1), ErrorReply)
    assert [e.track_title for e in await db.journal.list(ALICE_REF)] == ["Alice's"]

    theirs = await journal.delete(namesake, "last")
    assert isinstance(theirs, JournalDeletedReply) and theirs.entry.title == "Namesake's"
    assert [e.track_title for e in await db.journal.list(ALICE_REF)] == ["Alice's"]


NOW = datetime(2026, 11, 27, 20, 0, tzinfo=timezone.utc)


async def test_the_deleted_entrys_playlist_vote_goes_and_the_songs_other_votes_stay(db, counting):
    """Alice asked /mood for Song in the group (sad, by the main model), then journaled it while the
    fallback ANN called it happy: her one vote is for happy, the mood she was told last. Bob journaled
    it too (a member of the group: he asked /mood there). She journaled Other on two days. Deleting her Song entry takes back exactly that: her vote
    falls back to her /mood request's (sad), Bob's stays. Deleting one Other entry leaves Other in the
    playlist by the other one; deleting both, it is gone."""
    journal = journal_usecase(db, counting, now=lambda: NOW)
    playlists = PlaylistUseCase(db, now=lambda: NOW)
    await db.requests.add(MoodRequest(ALICE_REF, GROUP, "spotify:song", "sad", NOW - 4 * DAY, title="Song"))
    await db.requests.add(MoodRequest(BOB_REF, GROUP, "spotify:bobs", "calm", NOW - 4 * DAY, title="Bob's"))
    await db.journal.add(seeded(ALICE_REF, date(2026, 11, 25), "a-song", at=NOW - 2 * DAY))
    await db.journal.add(seeded(BOB_REF, date(2026, 11, 26), "b-song", at=NOW - DAY))
    await db.journal.add(seeded(ALICE_REF, date(2026, 11, 24), "a-other-1", key="spotify:other", title="Other",
                                at=NOW - 3 * DAY))
    await db.journal.add(seeded(ALICE_REF, date(2026, 11, 26), "a-other-2", key="spotify:other", title="Other",
                                at=NOW - DAY))

    async def voted() -> tuple[list, list, dict]:
        happy = await playlists.playlist(ALICE, "happy")
        sad = await playlists.playlist(ALICE, "sad")
        week = await playlists.server_mood(ALICE)
        return (sorted((t.title, t.members) for t in happy.tracks), sorted((t.title, t.members) for t in sad.tracks),
                {mood: n for mood, n in week.counts.items() if n})

    assert await voted() == ([("Other", 1), ("Song", 2)], [], {"happy": 3, "calm": 1})

    gone = await journal.delete(ALICE_DM, "2026-11-25")
    assert isinstance(gone, JournalDeletedReply) and gone.entry.title == "Song"
    assert await voted() == ([("Other", 1), ("Song", 1)], [("Song", 1)], {"happy": 2, "sad": 1, "calm": 1})

    assert isinstance(await journal.delete(ALICE_DM, "last"), JournalDeletedReply)  # Other, the 26th
    assert await voted() == ([("Other", 1), ("Song", 1)], [("Song", 1)], {"happy": 2, "sad": 1, "calm": 1})
    assert isinstance(await journal.delete(ALICE_DM, "2026-11-24"), JournalDeletedReply)
    assert await voted() == ([("Song", 1)], [("Song", 1)], {"happy": 1, "sad": 1, "calm": 1})
    assert [e.prompt_id for e in await db.journal.list(BOB_REF)] == ["b-song"]


@asynccontextmanager
async def gated_journal(db_server, mongo_uri, db_name, counting, tmp_path):
    """Alice's journal, on, over a database reached through a WireGate that can cut its commands,
    with its outbox: (gate, database, writer, journal use case) on 3 Dec."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        await gated.init()
        writer = JournalWriter(gated.journal, JournalOutbox(tmp_path / "outbox.jsonl"), gated.prompts)
        journal = JournalUseCase(gated, MoodUseCase(gated, counting, fetcher=None, now=lambda: DEC_3),
                                 writer=writer, now=lambda: DEC_3)
        await journal.enable(ALICE_DM, "21:30", "UTC")
        yield gate, gated, writer, journal


async def test_an_entry_waiting_in_the_outbox_is_deleted_there_and_never_comes_back(
        db_server, mongo_uri, db_name, counting, clip_paths, tmp_path):
    """An answer saved while the database was down waits in the outbox; the database is back, but
    the drain's write of it fails again (its connection drops): /journal delete finds it there,
    takes it out, and no later drain writes it; its prompt takes another song."""
    async with gated_journal(db_server, mongo_uri, db_name, counting, tmp_path) as (gate, gated, writer, journal):
        prompt = await journal.make_prompt(await gated.users.get(ALICE_REF))
        entry = seeded(ALICE_REF, date(2026, 12, 3), prompt.prompt_id, title="Queued song", note="my words")
        await writer.outbox.append(entry)  # as `add_or_queue` queues it while the database is down

        gate.cut_next("insert", "journal")  # the drain before the delete: its write never arrives
        gone = await journal.delete(ALICE_DM, "2026-12-03")

        assert gate.was_cut
        assert isinstance(gone, JournalDeletedReply) and gone.entry.title == "Queued song", gone
        assert gone.reopened and "open again" in render.reply_text(gone)
        assert await writer.outbox.held(ALICE_REF) == [] and "my words" not in (tmp_path / "outbox.jsonl").read_text()
        assert await writer.drain() == 0
        assert await gated.journal.count(ALICE_REF) == 0
        again = await journal.answer(ALICE_DM, "the one I meant", attachment(clip_paths[0]))
        assert isinstance(again, JournalSavedReply) and again.queued is False, again


async def test_discord_shows_the_deleted_entry_as_typed_not_as_markdown(db, counting):
    journal = journal_usecase(db, counting, now=lambda: DEC_3)
    await db.journal.add(seeded(ALICE_REF, date(2026, 12, 3), "p1", title="__Intro__", note="*so* tired"))
    await db.journal.add(seeded(ALICE_REF, date(2026, 12, 3), "p2", title="**Outro**",
                                at=datetime(2026, 12, 3, 22, tzinfo=timezone.utc)))
    ask = await journal.delete(ALICE_DM, "2026-12-03")
    assert "\\*\\*Outro\\*\\*" in message_parts(ask)["content"]
    gone = await journal.delete(ALICE_DM, "2026-12-03 2")
    content = message_parts(gone)["content"]
    assert "\\_\\_Intro\\_\\_" in content and "\\*so\\* tired" in content


async def two_prompts_answered(db: Database, journal: JournalUseCase) -> None:
    """Alice's prompts of 2 and 3 Dec, answered with "Song 0" (sad) and "Song 1" (happy), the same
    track: her journal on, its clock on the 3rd."""
    for n, mood in enumerate(("sad", "happy")):
        prompt = await journal.make_prompt(await db.users.get(ALICE_REF), date(2026, 12, 2 + n))
        await db.journal.add(replace(seeded(ALICE_REF, date(2026, 12, 2 + n), prompt.prompt_id, title=f"Song {n}",
                                            mood=mood), phrase=prompt.phrase))
        await db.prompts.mark_answered(prompt.prompt_id)


async def test_the_same_delete_handed_over_again_after_a_hard_kill_deletes_nothing_more(db, counting):
    """A bot killed after the delete, before its command was cleared from the inbox, is handed the
    command again at its start: "last" would have deleted the entry before the one meant. The
    command is known by its message, and told it was done; a new command deletes as any."""
    journal = journal_usecase(db, counting, now=lambda: DEC_3)
    await journal.enable(ALICE_DM, "21:30", "UTC")
    await two_prompts_answered(db, journal)

    first = await journal.delete(ALICE_DM, "last", message_id="301")
    again = await journal.delete(ALICE_DM, "last", message_id="301")

    assert isinstance(first, JournalDeletedReply) and first.entry.title == "Song 1"
    assert isinstance(again, TextReply), again
    assert again.text.startswith(f"Done already: your entry dated 2026-12-03 ({first.entry.phrase}) is deleted")
    assert [e.track_title for e in await db.journal.list(ALICE_REF)] == ["Song 0"]
    bob_asks = await journal.delete(BOB_DM, "last", message_id="301")  # Bob's own chat, his own message 301
    assert isinstance(bob_asks, ErrorReply) and "no journal entries" in bob_asks.message
    anew = await journal.delete(ALICE_DM, "last", message_id="302")
    assert isinstance(anew, JournalDeletedReply) and anew.entry.title == "Song 0"


async def test_a_delete_the_database_fails_keeps_the_queued_entry_and_a_retry_deletes_it_not_an_older_one(
        db_server, mongo_uri, db_name, counting, tmp_path):
    """The entry meant waits in the outbox (its drain's write fails again); the database then fails
    the delete itself. The user is told the database failed, so nothing is deleted: the queued entry
    stays, and the same "/journal delete last" again deletes it, not the entry before it (which a
    first try that had taken the queued one out of the outbox left to be "last")."""
    async with gated_journal(db_server, mongo_uri, db_name, counting, tmp_path) as (gate, gated, writer, journal):
        await gated.journal.add(seeded(ALICE_REF, date(2026, 12, 2), "older", title="Older song"))
        prompt = await journal.make_prompt(await gated.users.get(ALICE_REF))
        await writer.outbox.append(seeded(ALICE_REF, date(2026, 12, 3), prompt.prompt_id, title="Queued song"))

        gate.cut(0)  # the drain before the delete: its write never arrives
        gate.cut_next("delete", "journal")  # nor does the delete
        failed = await journal.delete(ALICE_DM, "last")

        assert gate.was_cut and ("delete", "journal") not in gate.commands
        assert isinstance(failed, ErrorReply), failed
        assert [e.track_title for e in await writer.outbox.queued(ALICE_REF)] == ["Queued song"]
        retried = await journal.delete(ALICE_DM, "last")
        assert isinstance(retried, JournalDeletedReply) and retried.entry.title == "Queued song", retried
        assert [e.track_title for e in await gated.journal.list(ALICE_REF)] == ["Older song"]
        assert await writer.outbox.held(ALICE_REF) == [] and await writer.drain() == 0


async def test_a_delete_whose_summaries_the_database_fails_is_told_done_and_deletes_no_second_entry(
        db_server, mongo_uri, db_name, counting, tmp_path):
    """The database fails after the entry's delete, before her playlist summaries were made again (it
    refuses their writes). The entry was gone, yet she was told the database failed ("try again"), and
    "/journal delete last" again deleted the entry before it. She is told it is deleted; the same
    command handed over again deletes nothing more."""
    async with gated_journal(db_server, mongo_uri, db_name, counting, tmp_path) as (_gate, gated, writer, journal):
        await two_prompts_answered(gated, journal)
        await refusing_writes(gated, JOURNAL_TRACKS)

        gone = await journal.delete(ALICE_DM, "last", message_id="301")
        again = await journal.delete(ALICE_DM, "last", message_id="301")

        assert isinstance(gone, JournalDeletedReply) and gone.entry.title == "Song 1", gone
        assert isinstance(again, TextReply) and again.text.startswith("Done already"), again
        assert [e.track_title for e in await gated.journal.list(ALICE_REF)] == ["Song 0"]
        assert await writer.drain() == 0


async def test_already_answered_points_at_the_entry_of_the_prompt_replied_to_not_the_newest(db, counting, clip_paths):
    """A reply to yesterday's answered prompt is told to delete that entry first: by its date. "/journal
    delete last", as it said, deleted today's entry, which the user wanted kept."""
    journal = await two_days_answered(db, counting, clip_paths)

    refused = await journal.answer(ALICE_DM, "meant for the 3rd", attachment(clip_paths[1]), prompt_message_id="701")
    assert isinstance(refused, ErrorReply) and "already answered" in refused.message
    hint = re.search(r"/journal delete (\S+)", refused.message)
    assert hint is not None and hint.group(1).rstrip(",.") == "2026-12-03", refused.message

    dm = await journal.answer(ALICE_DM, "today's again", attachment(clip_paths[0]))  # today's prompt: today's date
    assert isinstance(dm, ErrorReply) and "/journal delete 2026-12-04" in dm.message, dm.message

    gone = await journal.delete(ALICE_DM, hint.group(1).rstrip(",."))
    assert isinstance(gone, JournalDeletedReply) and gone.entry.local_date == date(2026, 12, 3)
    again = await journal.answer(ALICE_DM, "meant for the 3rd", attachment(clip_paths[1]), prompt_message_id="701")
    assert isinstance(again, JournalSavedReply) and again.local_date == date(2026, 12, 3), again
    assert await answered_days(journal) == [date(2026, 12, 4), date(2026, 12, 3)]


async def test_a_database_failing_between_the_entry_and_its_prompt_leaves_no_prompt_that_cannot_be_answered(
        db_server, mongo_uri, db_name, counting, clip_paths):
    """The database fails the delete's reopening of the prompt. Before, the entry was gone and the
    prompt stayed answered: the user, told "Deleted", was refused another song ("already answered:
    /journal delete 2026-12-03"), and that delete found no entry. Now the prompt is reopened first:
    a failure deletes nothing and is told, and the user's next try deletes it and takes the new song."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        await gated.init()
        journal = journal_usecase(gated, counting, now=lambda: DEC_3)
        await journal.enable(ALICE_DM, "21:30", "UTC")
        await journal.make_prompt(await gated.users.get(ALICE_REF))
        assert isinstance(await journal.answer(ALICE_DM, "oops", attachment(clip_paths[0])), JournalSavedReply)

        gate.cut_next("update", "prompts")
        failed = await journal.delete(ALICE_DM, "last", message_id="301")

        assert gate.was_cut
        assert isinstance(failed, ErrorReply), failed
        assert await gated.journal.count(ALICE_REF) == 1
        retried = await journal.delete(ALICE_DM, "last", message_id="302")
        assert isinstance(retried, JournalDeletedReply) and retried.reopened, retried
        again = await journal.answer(ALICE_DM, "the one I meant", attachment(clip_paths[1]))
        assert isinstance(again, JournalSavedReply), again
        assert [e.note for e in await gated.journal.list(ALICE_REF)] == ["the one I meant"]


async def test_the_reopened_prompt_takes_the_song_in_an_outage_after_a_restart_not_an_older_open_one(
        counting, clip_paths, outage):
    """Today's prompt was answered before a restart, yesterday's left open (recalled at start, held in
    memory; today's, answered, was not). Today's entry deleted ("open again"), the database goes down:
    the next message answers today's prompt, queued in the outbox, not yesterday's under its date."""
    db, writer = outage.db, outage.writer
    clock = Clock(DEC_3)
    before = JournalUseCase(db, MoodUseCase(db, counting, fetcher=None, now=clock), writer=writer, now=clock)
    await before.enable(ALICE_DM, "21:30", "UTC")
    await before.make_prompt(await db.users.get(ALICE_REF))  # the 3rd's, left unanswered
    clock.at += DAY
    await before.make_prompt(await db.users.get(ALICE_REF))
    assert isinstance(await before.answer(ALICE_DM, "oops", attachment(clip_paths[0])), JournalSavedReply)

    after = JournalUseCase(db, MoodUseCase(db, counting, fetcher=None, now=clock), writer=writer, now=clock)
    assert await after.recall_open_prompts() == 1  # the 3rd's
    gone = await after.delete(ALICE_DM, "last")
    assert isinstance(gone, JournalDeletedReply) and gone.reopened, gone

    outage.down()
    again = await after.answer(ALICE_DM, "the one I meant", attachment(clip_paths[1]))
    assert isinstance(again, JournalSavedReply) and again.queued, again
    assert again.local_date == date(2026, 12, 4), again
    assert [e.local_date for e in await writer.outbox.queued(ALICE_REF)] == [date(2026, 12, 4)]


async def test_after_a_restart_in_an_outage_a_message_is_not_filed_under_an_older_open_prompt(
        counting, clip_paths, outage):
    """Yesterday's prompt left open, today's answered, then a restart: the start recalled only the
    open prompts, so with the database down the next message that names no prompt took yesterday's
    (the newest held in memory) and queued a song under its date, though the user's latest prompt
    has its song. It is told so, as with the database up; a reply to yesterday's still takes it."""
    db, writer = outage.db, outage.writer
    clock = Clock(DEC_3)
    before = JournalUseCase(db, MoodUseCase(db, counting, fetcher=None, now=clock), writer=writer, now=clock)
    await before.enable(ALICE_DM, "21:30", "UTC")
    yesterday = await before.make_prompt(await db.users.get(ALICE_REF))  # the 3rd's, left unanswered
    await before.prompt_delivered(yesterday.prompt_id, "703")
    clock.at += DAY
    await before.make_prompt(await db.users.get(ALICE_REF))
    assert isinstance(await before.answer(ALICE_DM, "today", attachment(clip_paths[0])), JournalSavedReply)
    online = await before.answer(ALICE_DM, "another", attachment(clip_paths[1]))
    assert isinstance(online, ErrorReply) and "already answered" in online.message, online

    after = JournalUseCase(db, MoodUseCase(db, counting, fetcher=None, now=clock), writer=writer, now=clock)
    assert await after.recall_open_prompts() == 1  # the 3rd's is the one open
    outage.down()
    offline = await after.answer(ALICE_DM, "another", attachment(clip_paths[1]))
    assert isinstance(offline, ErrorReply) and "already answered" in offline.message, offline
    assert "/journal delete 2026-12-04" in offline.message, offline.message
    assert writer.outbox.pending() == 0

    replied = await after.answer(ALICE_DM, "for the 3rd", attachment(clip_paths[1]), prompt_message_id="703")
    assert isinstance(replied, JournalSavedReply) and replied.queued, replied
    assert replied.local_date == date(2026, 12, 3), replied
    assert [e.local_date for e in await writer.outbox.queued(ALICE_REF)] == [date(2026, 12, 3)]


async def test_last_while_an_answer_is_still_being_saved_deletes_no_other_entry(
        db_server, mongo_uri, db_name, counting, clip_paths):
    """Today's answer is being heard and saved (its write held) when the user, seeing the wrong song,
    sends "/journal delete last": the newest entry saved so far is yesterday's, which they never
    meant. They are told to wait for the answer, and nothing is deleted; once it is saved, "last"
    is that answer."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        await gated.init()
        clock = Clock(DEC_3)
        journal = journal_usecase(gated, counting, now=clock)
        await journal.enable(ALICE_DM, "21:30", "UTC")
        await journal.make_prompt(await gated.users.get(ALICE_REF))
        assert isinstance(await journal.answer(ALICE_DM, "yesterday's", attachment(clip_paths[0])), JournalSavedReply)
        clock.at += DAY
        await journal.make_prompt(await gated.users.get(ALICE_REF))

        gate.hold("insert", "journal")
        answering = asyncio.create_task(journal.answer(ALICE_DM, "oops", attachment(clip_paths[1])))
        await asyncio.wait_for(gate.held.wait(), 30)
        early = await journal.delete(ALICE_DM, "last", message_id="301")
        gate.release()
        saved = await answering

        assert isinstance(early, ErrorReply) and "still being saved" in early.message, early
        assert isinstance(saved, JournalSavedReply) and saved.local_date == date(2026, 12, 4)
        assert [e.note for e in await gated.journal.list(ALICE_REF)] == ["oops", "yesterday's"]
        meant = await journal.delete(ALICE_DM, "last", message_id="302")
        assert isinstance(meant, JournalDeletedReply) and meant.entry.note == "oops", meant


async def test_a_page_button_turned_from_an_entry_deleted_since_does_not_say_the_journal_lost_the_rest(db, counting):
    """/journal list, then the last entry shown deleted (a wrong song, seen there), then ◀ Older on
    that list: its cursor is the deleted entry. "Those entries are no longer in your journal" said
    the older ones were gone too, which only /forget does; it now says what happened."""
    journal = journal_usecase(db, counting, now=lambda: DEC_3)
    for n in range(12):
        day = date(2026, 11, 1) + n * DAY
        await db.journal.add(seeded(ALICE_REF, day, f"p{n}", title=f"Song {n}"))
    shown = await journal.list(ALICE_DM)
    assert shown.entries[-1].title == "Song 2"
    assert isinstance(await journal.delete(ALICE_DM, shown.entries[-1].local_date.isoformat()), JournalDeletedReply)

    older = await journal.list(ALICE_DM, before=shown.entries[-1].cursor)

    assert isinstance(older, ErrorReply) and "no longer in your journal" not in older.message, older
    assert "deleted" in older.message and "/journal list" in older.message
    assert await db.journal.count(ALICE_REF) == 11


async def test_a_prompt_reopened_with_the_journal_off_takes_no_song_in_an_outage(counting, clip_paths, outage):
    """/journal off forgets the prompts held in memory: with the database down, none takes a song. A
    delete afterwards reopens its prompt in the database, but holds it in memory only while the
    journal is on: the next message in an outage is not filed."""
    db, writer = outage.db, outage.writer
    clock = Clock(DEC_3)
    journal = JournalUseCase(db, MoodUseCase(db, counting, fetcher=None, now=clock), writer=writer, now=clock)
    await journal.enable(ALICE_DM, "21:30", "UTC")
    await journal.make_prompt(await db.users.get(ALICE_REF))
    assert isinstance(await journal.answer(ALICE_DM, "oops", attachment(clip_paths[0])), JournalSavedReply)
    await journal.disable(ALICE_DM)
    gone = await journal.delete(ALICE_DM, "last")
    assert isinstance(gone, JournalDeletedReply) and not gone.reopened, gone

    outage.down()
    refused = await journal.answer(ALICE_DM, "while off", attachment(clip_paths[1]))
    assert isinstance(refused, ErrorReply), refused
    assert writer.outbox.pending() == 0


@pytest.mark.parametrize("typed", ["all", "All entries", "everything", "every entry", "clear", "wipe"])
async def test_delete_asked_for_every_entry_points_at_forget_and_deletes_nothing(db, counting, typed):
    """'/journal delete all' was read as a date ("“all” isn't a date I can read"): a user wanting
    every entry gone is told that /forget does that and /journal delete takes one."""
    journal = journal_usecase(db, counting, now=lambda: DEC_6)
    await db.journal.add(seeded(ALICE_REF, date(2026, 12, 2), "p1"))
    reply = await journal.delete(ALICE_DM, typed)
    assert isinstance(reply, ErrorReply) and reply.message.startswith("Did you mean /forget?"), reply
    assert await db.journal.count(ALICE_REF) == 1
