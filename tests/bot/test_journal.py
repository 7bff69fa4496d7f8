"""The music journal: opt in, get a prompt, answer it with a song, browse and chart it."""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, timezone
from time import perf_counter

import pytest

from bot.replies import Caller, ErrorReply, JournalListReply, JournalSavedReply, StatsReply, TextReply
from bot.scheduler import PromptScheduler
from bot.usecases.journal import JournalUseCase, all_timezones, split_answer
from bot.usecases.mood import MoodUseCase
from storage.models import User, UserRef
from tests.bot.conftest import ALICE_DM, attachment

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALICE_REF = UserRef("telegram", "1001")


class Clock:
    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at


def journal_usecase(db, classifier, now=lambda: datetime.now(timezone.utc)) -> JournalUseCase:
    return JournalUseCase(db, MoodUseCase(db, classifier, fetcher=None, now=now), now=now)


async def test_turning_the_journal_on_schedules_a_daily_prompt(db, counting):
    journal = journal_usecase(db, counting)
    scheduler = PromptScheduler(db, journal)
    journal.schedule = scheduler

    reply = await journal.enable(ALICE_DM, "21:30", "europe/lisbon")

    assert isinstance(reply, TextReply) and "21:30" in reply.text and "Europe/Lisbon" in reply.text
    user = await db.users.get(ALICE_REF)
    assert (user.journal_enabled, user.prompt_time, user.timezone, user.chat_id) == (True, time(21, 30), "Europe/Lisbon", "1001")
    next_fire = scheduler.next_fire_time(ALICE_REF)
    assert (next_fire.hour, next_fire.minute) == (21, 30) and str(next_fire.tzinfo) == "Europe/Lisbon"

    off = await journal.disable(ALICE_DM)
    assert "off" in off.text.lower() and not scheduler.is_scheduled(ALICE_REF)
    assert (await db.users.get(ALICE_REF)).journal_enabled is False


@pytest.mark.parametrize("time_text, zone, needle", [
    ("9pm", "Europe/Lisbon", "HH:MM"),
    ("24:00", "Europe/Lisbon", "HH:MM"),
    ("21:30", "Mars/Olympus_Mons", "Europe/Lisbon"),
    ("21:30", "Lisbon", "Europe/Lisbon"),  # a city alone: the error suggests the full name
])
async def test_a_wrong_time_or_zone_gets_a_helpful_error(db, counting, time_text, zone, needle):
    reply = await journal_usecase(db, counting).enable(ALICE_DM, time_text, zone)
    assert isinstance(reply, ErrorReply) and needle in reply.message
    assert await db.users.get(ALICE_REF) is None


@pytest.mark.parametrize("typed", ["localtime", "LocalTime", "Factory"])
async def test_a_name_in_the_zone_folder_that_is_no_zone_is_not_taken(db, counting, typed):
    """The zone database's folder holds "localtime" (a link to the machine's /etc/localtime, where
    Debian's tzdata, in the image too, puts it) and tzdata's "Factory" (a placeholder, "-00"): taken
    as said, the user's prompts kept the server's clock, and a server without that link could not
    load the zone."""
    journal = journal_usecase(db, counting)
    reply = await journal.enable(ALICE_DM, "21:30", typed)
    assert isinstance(reply, ErrorReply) and "I don't know the time zone" in reply.message
    assert await db.users.get(ALICE_REF) is None
    assert not {"localtime", "Factory"} & set(journal.timezones(typed[:5]))  # nor offered by Discord


async def test_time_zones_autocomplete_by_prefix_or_city(db, counting):
    journal = journal_usecase(db, counting)
    assert journal.timezones("Europe/Lis") == ["Europe/Lisbon"]
    assert "America/New_York" in journal.timezones("new_y")
    assert len(journal.timezones("", limit=25)) == 25


@pytest.mark.parametrize("typed, zone, shown", [
    ("GMT+1", "Etc/GMT-1", "UTC+01:00"),  # IANA's Etc/GMT-1 is one hour east of UTC, as the user meant
    ("utc-5", "Etc/GMT+5", "UTC-05:00"),
    ("UTC+14:00", "Etc/GMT-14", "UTC+14:00"),
    ("GMT+0", "UTC", "UTC"),
    # The other ways people write a whole-hour offset: ISO 8601's, with or without UTC/GMT before it.
    ("+02:00", "Etc/GMT-2", "UTC+02:00"),
    ("+0200", "Etc/GMT-2", "UTC+02:00"),
    ("UTC+02:00", "Etc/GMT-2", "UTC+02:00"),
    ("GMT+2", "Etc/GMT-2", "UTC+02:00"),
    ("GMT-3", "Etc/GMT+3", "UTC-03:00"),
    ("-03", "Etc/GMT+3", "UTC-03:00"),
    ("\u221203:00", "Etc/GMT+3", "UTC-03:00"),  # the minus sign a phone's keyboard may type
    ("+14", "Etc/GMT-14", "UTC+14:00"),
])
async def test_a_whole_hour_offset_is_read_with_the_users_sign(db, counting, typed, zone, shown):
    journal = journal_usecase(db, counting)
    reply = await journal.enable(ALICE_DM, "21:30", typed)
    assert isinstance(reply, TextReply) and f"21:30 ({shown})" in reply.text
    assert (await db.users.get(ALICE_REF)).timezone == zone
    assert journal.timezones(typed) == [zone]  # autocomplete offers the right zone, not its mirror


@pytest.mark.parametrize("typed", ["UTC+2", "+02:00", "UTC"])
async def test_a_fixed_offset_is_said_not_to_follow_daylight_saving_time(db, counting, typed):
    reply = await journal_usecase(db, counting).enable(ALICE_DM, "21:30", typed)
    assert isinstance(reply, TextReply) and "doesn't follow daylight saving time" in reply.text
    assert "e.g. /journal on 21:30 Europe/Lisbon" in reply.text


async def test_a_named_zone_is_not_told_about_daylight_saving_time(db, counting):
    reply = await journal_usecase(db, counting).enable(ALICE_DM, "21:30", "Europe/Lisbon")
    assert isinstance(reply, TextReply) and "daylight saving" not in reply.text


DECEMBER = datetime(2026, 12, 5, 12, tzinfo=timezone.utc)
JULY = datetime(2026, 7, 5, 12, tzinfo=timezone.utc)


@pytest.mark.parametrize("today, typed, zones", [
    (DECEMBER, "+05:30", ["Asia/Colombo", "Asia/Kolkata"]),  # not also Asia/Calcutta, Kolkata's old name
    (DECEMBER, "UTC+0530", ["Asia/Colombo", "Asia/Kolkata"]),
    (DECEMBER, "+05:45", ["Asia/Kathmandu"]),
    (DECEMBER, "-03:30", ["America/St_Johns"]),
    # Which zones are at an offset depends on the day: Adelaide is UTC+10:30 in its summer.
    (DECEMBER, "+09:30", ["Australia/Darwin"]),
    (JULY, "+09:30", ["Australia/Adelaide", "Australia/Broken_Hill", "Australia/Darwin"]),
])
async def test_an_offset_with_minutes_is_answered_with_the_zones_at_that_offset_today(db, counting, today, typed,
                                                                                     zones):
    journal = journal_usecase(db, counting, now=Clock(today))
    reply = await journal.enable(ALICE_DM, "21:30", typed)
    assert isinstance(reply, ErrorReply), reply
    which = "type it" if len(zones) == 1 else "type one of them"
    assert f"{which}, e.g. /journal on 21:30 {zones[0]}" in reply.message
    assert [z for z in all_timezones() if "/" in z and z in reply.message] == zones, reply.message
    assert "I don't know" not in reply.message and "Etc/" not in reply.message
    assert await db.users.get(ALICE_REF) is None
    assert journal.timezones(typed) == zones  # autocomplete offers them as the offset is typed


async def test_an_offset_no_zone_has_today_says_so(db, counting):
    reply = await journal_usecase(db, counting, now=Clock(DECEMBER)).enable(ALICE_DM, "21:30", "+05:15")
    assert isinstance(reply, ErrorReply) and "No time zone is at UTC+05:15 today" in reply.message
    assert "/journal on 21:30 Europe/Lisbon" in reply.message


async def test_a_mirrored_offset_zone_is_never_suggested(db, counting):
    journal = journal_usecase(db, counting)
    reply = await journal.enable(ALICE_DM, "21:30", "UTC+15")  # no such offset
    assert isinstance(reply, ErrorReply) and "UTC+2" in reply.message and "Etc/GMT" not in reply.message
    assert not any(z.startswith("Etc/GMT") for z in journal.timezones("gmt"))


@pytest.mark.parametrize("text, song, note", [
    ("Creep", "Creep", ""),
    ("Radiohead - Creep\nthat was a long day", "Radiohead - Creep", "that was a long day"),
    ("https://youtu.be/XFkzRNyygfk because of the rain", "https://youtu.be/XFkzRNyygfk", "because of the rain"),
    ("listening to https://open.spotify.com/track/70LcF31zb1H0PyJoS1Sx1r again", "https://open.spotify.com/track/70LcF31zb1H0PyJoS1Sx1r", "listening to again"),
    ("this one: https://open.spotify.com/track/70LcF31zb1H0PyJoS1Sx1r!", "https://open.spotify.com/track/70LcF31zb1H0PyJoS1Sx1r", "this one:"),
    ("||https://youtu.be/XFkzRNyygfk|| shh", "https://youtu.be/XFkzRNyygfk", "shh"),
    # Chinese and Japanese put no space around a link, only full-width punctuation.
    ("https://youtu.be/XFkzRNyygfk。下雨天", "https://youtu.be/XFkzRNyygfk", "下雨天"),
    ("听听：https://youtu.be/XFkzRNyygfk。", "https://youtu.be/XFkzRNyygfk", "听听"),
    ("「https://youtu.be/XFkzRNyygfk」雨の日", "https://youtu.be/XFkzRNyygfk", "雨の日"),
    # A host's full stops typed full-width, as a browser reads them; the one ending the link stays.
    ("https://youtube。com/watch?v=XFkzRNyygfk。下雨天", "https://youtube.com/watch?v=XFkzRNyygfk", "下雨天"),
    ("听听：https://open．spotify．com/track/70LcF31zb1H0PyJoS1Sx1r", "https://open.spotify.com/track/70LcF31zb1H0PyJoS1Sx1r", "听听"),
    # The user's own words keep their full stops, even between two words that look like a host's labels.
    ("https://youtube。com/watch?v=XFkzRNyygfk 最喜欢Muse。AC/DC也不错", "https://youtube.com/watch?v=XFkzRNyygfk", "最喜欢Muse。AC/DC也不错"),
    ("Creep\n最喜欢Muse。AC/DC也不错", "Creep", "最喜欢Muse。AC/DC也不错"),
    # The words' own lines and paragraphs after (or before) a link, as after a song's name: they ran into one.
    ("https://youtu.be/XFkzRNyygfk\nthe bus home.\n\nThen the rain:\n- cold\n- late",
     "https://youtu.be/XFkzRNyygfk", "the bus home.\n\nThen the rain:\n- cold\n- late"),
    ("first line\nsecond line https://youtu.be/XFkzRNyygfk", "https://youtu.be/XFkzRNyygfk", "first line\nsecond line"),
])
def test_a_journal_reply_is_a_song_then_the_users_own_words(text, song, note):
    assert split_answer(text) == (song, note)


@pytest.mark.parametrize("wrapper", list("<([{'\"|*"))
def test_an_answer_of_thousands_of_link_wrappers_is_read_at_once(wrapper):
    """What may wrap a link ("<https://…>", "||https://…||") was a pattern before the link's, tried
    from each of a run of them: an answer of Telegram's longest text, 4 096 "(", took 220 ms of the
    event loop, everyone's. It is read in well under a millisecond now (50 ms allowed)."""
    run = wrapper * 4096
    started = perf_counter()
    assert split_answer(run) == (run, "")
    assert split_answer(run[:4000] + " https://youtu.be/XFkzRNyygfk") == ("https://youtu.be/XFkzRNyygfk", run[:4000])
    assert perf_counter() - started < 0.05


async def test_the_journal_flow_prompt_answer_list_and_stats(db, counting, classifier, clip_paths):
    journal = journal_usecase(db, counting)
    await journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    user = await db.users.get(ALICE_REF)

    prompt = await journal.make_prompt(user)
    await journal.prompt_delivered(prompt.prompt_id, "777")
    assert prompt.chat_id == "1001" and prompt.phrase.endswith("…")
    assert await journal.is_prompt_message("telegram", "1001", "777")
    assert not await journal.is_prompt_message("telegram", "1001", "778")

    # The user replies to the prompt message (Telegram reply_to_message) with an audio file and words.
    saved = await journal.answer(ALICE_DM, "rainy bus ride", attachment(clip_paths[0]), prompt_message_id="777")

    assert isinstance(saved, JournalSavedReply) and saved.queued is False
    assert saved.phrase == prompt.phrase
    assert saved.mood.mood == (await classifier.classify(clip_paths[0])).mood
    listing = await journal.list(ALICE_DM)
    assert isinstance(listing, JournalListReply) and listing.total == 1
    entry = listing.entries[0]
    assert (entry.phrase, entry.mood, entry.note) == (prompt.phrase, saved.mood.mood, "rainy bus ride")
    # The prompt is answered: a second answer is told so, and when the next prompt comes.
    again = await journal.answer(ALICE_DM, "another", attachment(clip_paths[1]))
    assert isinstance(again, ErrorReply) and again.message.startswith("You've already answered"), again
    assert "21:30 (Europe/Lisbon)" in again.message and "/journal on" not in again.message  # it is on
    replied_again = await journal.answer(ALICE_DM, "another", attachment(clip_paths[1]), prompt_message_id="777")
    assert isinstance(replied_again, ErrorReply) and "already answered" in replied_again.message

    stats = await journal.stats(ALICE_DM)
    assert isinstance(stats, StatsReply) and "1 journal entry" in stats.summary and saved.mood.mood in stats.summary
    assert [c.filename for c in stats.charts] == ["moods-by-week.png", "year-in-pixels.png", "mood-map.png"]
    assert all(c.png.startswith(PNG_MAGIC) and len(c.png) > 5000 for c in stats.charts)


@pytest.mark.parametrize("song, error", [
    ("https://open.spotify.com/track/70LcF31zb1H0PyJoS1Sx1r", "SpotifyNotConfiguredError"),  # no Spotify here
    ("https://example.com/songs/creep", "UnsupportedInputError"),
])
async def test_a_refused_answer_is_logged_with_its_reason_but_not_the_users_words(db, counting, caplog, song,
                                                                                   error):
    """As a refused /mood is: an operator asked why Alice's answer got an error finds the line,
    and her note is not in it."""
    journal = journal_usecase(db, counting)
    await journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    await journal.make_prompt(await db.users.get(ALICE_REF))
    note = "grandma-hospital-visit-9f3k"
    with caplog.at_level(logging.INFO, logger="bot.usecases.journal"):
        reply = await journal.answer(ALICE_DM, f"{song} {note}")
    assert isinstance(reply, ErrorReply), reply
    (refusal,) = [r for r in caplog.records if r.getMessage() == "journal.answer_refused"]
    assert (refusal.user, refusal.error, refusal.reason) == ("1001", error, reply.message)
    assert note not in caplog.text


async def test_an_answer_without_a_prompt_is_explained(db, counting, clip_paths):
    """Often a new user's first words (a Discord DM is heard whole): say how to start the journal,
    and where the song's mood is."""
    journal = journal_usecase(db, counting)
    reply = await journal.answer(ALICE_DM, "Creep")
    assert isinstance(reply, ErrorReply) and "/journal on" in reply.message
    assert "/mood <song>" in reply.message and "/help" in reply.message
    await journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    reply = await journal.answer(ALICE_DM, "Creep")
    assert "21:30 (Europe/Lisbon)" in reply.message and "/mood <song>" in reply.message


async def test_a_message_that_replies_to_no_prompt_answers_only_a_prompt_of_the_last_week(db, counting, clip_paths):
    """A Discord DM or the console's /journal answer names no prompt: a prompt left open for weeks
    must not take it and file the song under its old date. Replying to that prompt still works."""
    clock = Clock(datetime(2026, 3, 2, 21, 30, tzinfo=timezone.utc))
    journal = journal_usecase(db, counting, now=clock)
    await journal.enable(ALICE_DM, "21:30", "UTC")
    old = await journal.make_prompt(await db.users.get(ALICE_REF))
    await journal.prompt_delivered(old.prompt_id, "500")

    clock.at += timedelta(days=20)
    stale = await journal.answer(ALICE_DM, "out of the blue", attachment(clip_paths[0]))
    assert isinstance(stale, ErrorReply) and "no open journal prompt" in stale.message
    assert (await journal.list(ALICE_DM)).total == 0

    recent = await journal.make_prompt(await db.users.get(ALICE_REF))
    await journal.prompt_delivered(recent.prompt_id, "501")
    clock.at += timedelta(days=6)
    saved = await journal.answer(ALICE_DM, "a week on", attachment(clip_paths[0]))
    assert isinstance(saved, JournalSavedReply) and saved.local_date == date(2026, 3, 22)
    replied = await journal.answer(ALICE_DM, "late but meant", attachment(clip_paths[1]), prompt_message_id="500")
    assert isinstance(replied, JournalSavedReply) and replied.local_date == date(2026, 3, 2)


async def test_an_answer_is_filed_under_its_prompts_day_where_the_user_lives(db, counting, clip_paths):
    """At 20:00 UTC it is already the next morning in Auckland: the prompt is of that day there,
    and an answer sent a day later is filed under the prompt's day, not the day it came."""
    clock = Clock(datetime(2026, 3, 21, 20, 0, tzinfo=timezone.utc))  # 09:00 on 22 March in Auckland
    journal = journal_usecase(db, counting, now=clock)
    await journal.enable(ALICE_DM, "09:00", "Pacific/Auckland")
    await journal.make_prompt(await db.users.get(ALICE_REF))

    clock.at += timedelta(days=1, hours=5)  # 23 March 01:00 UTC, 14:00 in Auckland
    saved = await journal.answer(ALICE_DM, "late", attachment(clip_paths[0]))

    assert isinstance(saved, JournalSavedReply) and saved.local_date == date(2026, 3, 22)
    assert [entry.local_date for entry in await db.journal.list(ALICE_REF)] == [date(2026, 3, 22)]


async def test_nobody_can_answer_someone_elses_prompt(db, counting, clip_paths):
    journal = journal_usecase(db, counting)
    await journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    prompt = await journal.make_prompt(await db.users.get(ALICE_REF))
    await journal.prompt_delivered(prompt.prompt_id, "42")
    mallory = Caller("telegram", "666", chat_id="1001")  # claims Alice's chat
    reply = await journal.answer(mallory, "x", attachment(clip_paths[0]), prompt_message_id="42")
    assert isinstance(reply, ErrorReply)
    assert (await journal.list(ALICE_DM)).total == 0


async def test_no_phrase_is_repeated_to_a_user_within_30_days(db, counting):
    clock = Clock(datetime(2026, 1, 1, 21, 30, tzinfo=timezone.utc))
    journal = journal_usecase(db, counting, now=clock)
    user = User("telegram", "1001", timezone="UTC", prompt_time=time(21, 30), journal_enabled=True, chat_id="1001")
    await db.users.upsert(user)

    phrases = []
    for _day in range(60):
        phrases.append((await journal.make_prompt(user)).phrase)
        clock.at += timedelta(days=1)

    for day, phrase in enumerate(phrases):
        window = phrases[max(0, day - 29): day]
        assert phrase not in window, f"day {day} repeats a phrase from the last 30 days"
    # Another user's history doesn't constrain this one, and the bank is varied enough for both.
    assert len(set(phrases)) >= 30


async def test_stats_of_an_empty_journal_say_how_to_start(db, counting):
    reply = await journal_usecase(db, counting).stats(ALICE_DM)
    assert isinstance(reply, ErrorReply) and "/journal on" in reply.message


async def test_an_empty_journal_with_prompts_on_says_when_the_next_one_comes(db, counting):
    journal = journal_usecase(db, counting)
    listed = await journal.list(ALICE_DM)
    assert isinstance(listed, JournalListReply) and listed.prompt_at is None
    unprompted = await journal.answer(ALICE_DM, "Creep")
    assert isinstance(unprompted, ErrorReply) and "/journal on" in unprompted.message  # off: how to turn it on

    await journal.enable(ALICE_DM, "07:05", "Asia/Tokyo")

    listed = await journal.list(ALICE_DM)
    assert listed.entries == [] and listed.prompt_at == "07:05 (Asia/Tokyo)"
    stats = await journal.stats(ALICE_DM)
    assert isinstance(stats, ErrorReply) and "07:05 (Asia/Tokyo)" in stats.message
    assert "/journal on" not in stats.message  # not "turn it on" to someone who just did

    await journal.disable(ALICE_DM)
    assert (await journal.list(ALICE_DM)).prompt_at is None


async def prompted_in_outage(outage, counting, message_id: str | None):
    """Alice's journal on, a prompt made and (with `message_id`) delivered as that message, then
    the database down: the journal use case, over the outbox, and the prompt."""
    journal = JournalUseCase(outage.db, MoodUseCase(outage.db, counting, fetcher=None), writer=outage.writer)
    await journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    prompt = await journal.make_prompt(await outage.db.users.get(ALICE_REF))
    if message_id is not None:
        await journal.prompt_delivered(prompt.prompt_id, message_id)
    outage.down()
    return journal, prompt


async def test_whether_a_message_is_a_prompt_is_unknown_while_the_database_is_down(counting, outage):
    """A prompt held in memory is known; of another message the database, down, cannot say: None,
    not False, so that a caller asking of many (the reading back of missed Discord DMs) stops
    waiting for it on each."""
    journal, _ = await prompted_in_outage(outage, counting, "906")
    assert await journal.is_prompt_message(ALICE_REF.platform, ALICE_DM.chat_id, "906") is True
    assert await journal.is_prompt_message(ALICE_REF.platform, ALICE_DM.chat_id, "907") is None


async def test_with_the_database_down_an_answer_is_kept_and_appears_later(counting, classifier, clip_paths, outage):
    import asyncio
    import time as time_module

    writer = outage.writer
    journal, prompt = await prompted_in_outage(outage, counting, "901")  # the database goes down before the user answers
    saved = await journal.answer(ALICE_DM, "still here", attachment(clip_paths[0]), prompt_message_id="901")

    assert isinstance(saved, JournalSavedReply) and saved.queued is True
    assert saved.phrase == prompt.phrase
    assert saved.mood.mood == (await classifier.classify(clip_paths[0])).mood
    assert writer.outbox.pending() == 1

    outage.up()
    drained, deadline = 0, time_module.monotonic() + 10
    while writer.outbox.pending() and time_module.monotonic() < deadline:  # the client reconnects
        drained += await writer.drain()
        await asyncio.sleep(0.1)
    assert drained == 1 and writer.outbox.pending() == 0
    listing = await journal.list(ALICE_DM)
    assert listing.total == 1 and listing.entries[0].note == "still here"
    # The drained answer marked its prompt answered, so a later message is told so before its song
    # is fetched or heard: a DM, as a reply to the prompt, finds it answered.
    heard = len(counting.calls)
    again = await journal.answer(ALICE_DM, "twice", attachment(clip_paths[0]))
    assert isinstance(again, ErrorReply) and again.message.startswith("You've already answered"), again
    replied = await journal.answer(ALICE_DM, "twice", attachment(clip_paths[0]), prompt_message_id="901")
    assert isinstance(replied, ErrorReply) and "already answered" in replied.message
    assert len(counting.calls) == heard
    assert (await journal.list(ALICE_DM)).total == 1


async def test_a_second_answer_after_the_outage_does_not_replace_the_one_still_in_the_outbox(
        counting, clip_paths, outage):
    """An answer queued in the outage, the database back, the drainer not round yet (every 30 s):
    the prompt still looked open, so a second answer was stored, and the drain then found the
    prompt answered and dropped the first, which the user had been told was saved."""
    import asyncio
    import time as time_module

    from storage.models import StorageError

    db, writer = outage.db, outage.writer
    journal, prompt = await prompted_in_outage(outage, counting, "903")
    first = await journal.answer(ALICE_DM, "the one I meant", attachment(clip_paths[0]))
    assert isinstance(first, JournalSavedReply) and first.queued

    outage.up()
    deadline = time_module.monotonic() + 10
    while True:  # the client reconnects; nothing drains the outbox meanwhile
        try:
            await db.users.get(ALICE_REF)
            break
        except StorageError:
            assert time_module.monotonic() < deadline, "the database did not come back within 10 s"
            await asyncio.sleep(0.1)
    assert writer.outbox.pending() == 1

    again = await journal.answer(ALICE_DM, "another", attachment(clip_paths[1]))
    assert isinstance(again, ErrorReply) and again.message.startswith("You've already answered"), again
    replied = await journal.answer(ALICE_DM, "another", attachment(clip_paths[1]), prompt_message_id="903")
    assert isinstance(replied, ErrorReply) and "already answered" in replied.message, replied
    await writer.drain()
    listing = await journal.list(ALICE_DM)
    assert listing.total == 1 and listing.entries[0].note == "the one I meant"


async def test_two_answers_at_once_in_an_outage_keep_one_and_tell_the_other_so(counting, clip_paths, outage):
    """Two songs sent to one prompt in quick succession while the database is down: both found the
    prompt open in memory and both were queued, each told it was saved; the drain then kept the
    first and dropped the second without a word. As with the database up, the second is told the
    prompt already has its song."""
    import asyncio

    writer = outage.writer
    journal, prompt = await prompted_in_outage(outage, counting, "904")

    replies = await asyncio.gather(*(journal.answer(ALICE_DM, note, attachment(clip), prompt_message_id="904")
                                     for note, clip in (("this one", clip_paths[0]), ("no, this", clip_paths[1]))))

    saved = [r for r in replies if isinstance(r, JournalSavedReply)]
    refused = [r for r in replies if isinstance(r, ErrorReply)]
    assert len(saved) == 1 and saved[0].queued, replies
    assert len(refused) == 1 and "already answered" in refused[0].message, replies
    assert writer.outbox.pending() == 1


async def test_a_prompt_whose_message_id_was_not_saved_is_still_answered_by_a_reply(counting, clip_paths, outage):
    """The database went down while the prompt was on its way (recorded, then sent): its message
    id was never saved. Once the database was back, a Telegram reply to it, the only way to answer
    there, found no prompt by that id and was told there was none open, for good."""
    import asyncio
    import time as time_module

    from storage.models import StorageError

    db = outage.db
    journal, prompt = await prompted_in_outage(outage, counting, None)
    with pytest.raises(StorageError):
        await journal.prompt_delivered(prompt.prompt_id, "905")  # the scheduler logs it and goes on
    outage.up()
    deadline = time_module.monotonic() + 10
    while True:  # the client reconnects
        try:
            await db.users.get(ALICE_REF)
            break
        except StorageError:
            assert time_module.monotonic() < deadline, "the database did not come back within 10 s"
            await asyncio.sleep(0.1)

    assert await journal.is_prompt_message("telegram", "1001", "905")
    saved = await journal.answer(ALICE_DM, "late reply", attachment(clip_paths[0]), prompt_message_id="905")
    assert isinstance(saved, JournalSavedReply) and not saved.queued and saved.phrase == prompt.phrase, saved
    assert (await db.prompts.find_by_message("telegram", "1001", "905")).answered_at is not None


async def test_a_prompt_sent_before_a_restart_is_still_answerable_in_an_outage(counting, clip_paths, outage):
    """The process that sent the prompt is gone; the new one recalls open prompts at start, so an
    answer during a later outage is queued in the outbox rather than refused."""
    db, writer = outage.db, outage.writer
    before = JournalUseCase(db, MoodUseCase(db, counting, fetcher=None))
    await before.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    prompt = await before.make_prompt(await db.users.get(ALICE_REF))
    await before.prompt_delivered(prompt.prompt_id, "902")
    old = await before.make_prompt(await db.users.get(ALICE_REF))
    await db.prompts.mark_answered(old.prompt_id)  # answered prompts are not recalled

    after = JournalUseCase(db, MoodUseCase(db, counting, fetcher=None), writer=writer)  # the restart
    assert await after.recall_open_prompts() == 1

    outage.down()
    saved = await after.answer(ALICE_DM, "after the restart", attachment(clip_paths[0]), prompt_message_id="902")
    assert isinstance(saved, JournalSavedReply) and saved.queued is True
    assert saved.phrase == prompt.phrase and writer.outbox.pending() == 1


async def test_in_an_outage_a_message_that_replies_to_no_prompt_answers_only_a_prompt_of_the_last_week(
        counting, clip_paths, outage):
    """The database is down and a Discord DM (or the console's /journal answer) names no prompt: the
    prompt held in memory answers it only if sent in the last week, as the database's does. One
    left open for weeks must not take it and file the song under its old date; the user is told to
    try again shortly. Replying to that old prompt is still kept in the outbox."""
    db, writer = outage.db, outage.writer
    clock = Clock(datetime(2026, 3, 2, 21, 30, tzinfo=timezone.utc))
    journal = JournalUseCase(db, MoodUseCase(db, counting, fetcher=None, now=clock), writer=writer, now=clock)
    await journal.enable(ALICE_DM, "21:30", "UTC")
    old = await journal.make_prompt(await db.users.get(ALICE_REF))
    await journal.prompt_delivered(old.prompt_id, "600")

    clock.at += timedelta(days=20)
    outage.down()
    stale = await journal.answer(ALICE_DM, "out of the blue", attachment(clip_paths[0]))
    assert isinstance(stale, ErrorReply) and "try again shortly" in stale.message, stale
    assert writer.outbox.pending() == 0

    replied = await journal.answer(ALICE_DM, "late but meant", attachment(clip_paths[1]), prompt_message_id="600")
    assert isinstance(replied, JournalSavedReply) and replied.queued and replied.local_date == date(2026, 3, 2)
    assert writer.outbox.pending() == 1


async def test_recall_takes_only_recent_open_prompts(db, counting):
    now = datetime(2026, 11, 24, 20, 0, tzinfo=timezone.utc)
    journal = JournalUseCase(db, MoodUseCase(db, counting, fetcher=None), now=lambda: now)
    for days_ago, prompt_id in ((1, "recent"), (30, "old")):
        sent = now - timedelta(days=days_ago)
        await db.prompts.record_sent(ALICE_REF, prompt_id, f"phrase {prompt_id}", sent.date(), sent, "1001", None)
    assert await journal.recall_open_prompts() == 1
    assert [p.prompt_id for p in await db.prompts.open_since(now - timedelta(days=60), 10)] == ["old", "recent"]


def test_the_phrase_bank_has_at_least_60_varied_moments_of_a_day():
    from bot.prompts import phrase_bank

    bank = phrase_bank()
    assert len(bank) >= 60 and len(set(bank)) == len(bank)
    assert all(p.endswith("…") for p in bank)
    assert "On the way home today, the song in my head was…" in bank
    assert "Burning dinner, I felt like…" in bank
    assert len({p.split()[0] for p in bank}) >= 20  # not all the same opening


async def test_reading_the_journal_with_the_database_down_says_so(counting):
    from storage.database import Database
    from tests.dbserver import free_port

    down = await Database.connect(f"mongodb://127.0.0.1:{free_port()}/", "x", server_selection_timeout_ms=200,
                                  verify=False)
    try:
        journal = journal_usecase(down, counting)
        for reply in (await journal.list(ALICE_DM), await journal.stats(ALICE_DM),
                      await journal.answer(ALICE_DM, "Creep")):
            assert isinstance(reply, ErrorReply) and "unavailable" in reply.message
    finally:
        await down.close()


async def test_journal_prompt_sends_todays_prompt_now_or_says_why_not(db, counting):
    """/journal prompt on every platform: the use case asks the scheduler, which sends through the
    user's own front-end (here the console's; a closed terminal stands in for a chat it can't reach)."""
    import io

    from bot.frontends.console import CONSOLE_CALLER, ConsoleFrontend
    from bot.usecases.journal import JOURNAL_OFF, PROMPT_NOT_SENT_NOW, PROMPT_SENT

    journal = journal_usecase(db, counting)
    scheduler = PromptScheduler(db, journal, pause_s=0)
    journal.schedule = scheduler
    out = io.StringIO()
    scheduler.register(ConsoleFrontend(usecases=None, stdin=io.StringIO(), stdout=out))
    ref = UserRef(CONSOLE_CALLER.platform, CONSOLE_CALLER.user_id)

    assert await journal.prompt_now(CONSOLE_CALLER) == ErrorReply(JOURNAL_OFF)
    await journal.enable(CONSOLE_CALLER, "21:30", "Europe/Lisbon")
    assert await journal.prompt_now(CONSOLE_CALLER) == TextReply(PROMPT_SENT)
    sent = await db.prompts.latest_open(ref)
    assert sent is not None and sent.phrase in out.getvalue()

    # The front-end can no longer deliver: the user is told, nothing pretends it was sent. A failure
    # the platform did not call a refusal of the user (RecipientGone) is passing: ask again shortly.
    out.close()
    assert await journal.prompt_now(CONSOLE_CALLER) == ErrorReply(PROMPT_NOT_SENT_NOW)


async def test_stats_count_every_entry_not_only_the_latest_year(db, counting):
    from storage.models import JournalEntry

    start = datetime(2025, 6, 1, 20, 0, tzinfo=timezone.utc)
    for n in range(400):  # 200 sad days, then 200 happy ones: more than a year of pixels
        day = start + timedelta(days=n)
        mood = "sad" if n < 200 else "happy"
        await db.journal.add(JournalEntry(user=ALICE_REF, local_date=day.date(), prompt_id=f"p{n}", phrase="Today,",
                                          reply_text="x", track_key=f"t{n}", track_title=f"Song {n}", mood=mood,
                                          valence=0.5 if mood == "happy" else -0.5, arousal=-0.2, created_at=day))
    now = start + timedelta(days=399, hours=1)
    reply = await journal_usecase(db, counting, now=lambda: now).stats(ALICE_DM)
    assert isinstance(reply, StatsReply)
    assert "happy and sad (200 each of 400)" in reply.summary and "happy 200, energetic 0, sad 200, calm 0" in reply.summary


async def test_the_year_in_pixels_colours_every_day_of_a_year_with_several_answers_a_day(db, counting):
    """A keen user asks /journal prompt again after the daily one: two songs a day for 200 days are
    400 entries, and every one of those days is a coloured square (the day's latest answer's mood)."""
    from bot import charts
    from storage.models import JournalEntry

    first = datetime(2026, 1, 1, 20, 0, tzinfo=timezone.utc)
    coloured = {}
    for n in range(200):
        day = first + timedelta(days=n)
        for k, mood in enumerate(("sad", "calm")):  # the evening's second answer comes last
            await db.journal.add(JournalEntry(user=ALICE_REF, local_date=day.date(), prompt_id=f"p{n}-{k}", phrase="Today,",
                                              reply_text="x", track_key=f"t{n}", track_title=f"Song {n}", mood=mood,
                                              valence=-0.5, arousal=-0.2, created_at=day + timedelta(minutes=k)))
        coloured[day.date()] = "calm"
    now = first + timedelta(days=200)
    reply = await journal_usecase(db, counting, now=lambda: now).stats(ALICE_DM)

    assert isinstance(reply, StatsReply) and "400 journal entries" in reply.summary
    pixels = next(c.png for c in reply.charts if c.filename == "year-in-pixels.png")
    assert pixels == charts.year_in_pixels(coloured, 2026, today=now.date())  # the rest of the year still to come


async def test_on_new_years_day_the_pixels_show_the_last_365_days_not_an_empty_year(db, counting):
    """On 1 January the calendar year is a day old: /stats draws the last 365 days instead, so the
    year that just ended is still there to see, and says so in the chart's name."""
    from bot import charts
    from storage.models import JournalEntry
    from tests.bot.test_charts import rgb, square_colour

    moods = {date(2025, 12, 20): "sad", date(2025, 12, 21): "calm", date(2025, 12, 31): "happy"}
    for n, (day, mood) in enumerate(moods.items()):
        await db.journal.add(JournalEntry(user=ALICE_REF, local_date=day, prompt_id=f"p{n}", phrase="Today,",
                                          reply_text="x", track_key=f"t{n}", track_title=f"Song {n}", mood=mood,
                                          valence=0.1, arousal=0.1,
                                          created_at=datetime(day.year, day.month, day.day, 21, tzinfo=timezone.utc)))
    new_years_day = datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)
    reply = await journal_usecase(db, counting, now=lambda: new_years_day).stats(ALICE_DM)

    assert isinstance(reply, StatsReply)
    pixels = next(c for c in reply.charts if c.filename == "year-in-pixels.png")
    assert pixels.caption.startswith("2 Jan 2025 – 1 Jan 2026 in pixels: 3 of 365 days with a song")
    first, last = date(2025, 1, 2), date(2026, 1, 1)
    for day, mood in moods.items():
        assert square_colour(pixels.png, first, last, day) == rgb(charts.MOOD_COLOURS[mood]), day
    assert square_colour(pixels.png, first, last, date(2025, 12, 22)) == rgb(charts.EMPTY_COLOUR)


@pytest.mark.parametrize("days, streaks", [
    ((23, 24, 25), "current streak 3 days, longest 3 days"),
    # A streak begun by that entry alone (the 23rd and 24th unanswered) was 'current streak 0 days'.
    ((21, 22, 25), "current streak 1 day, longest 2 days"),
])
async def test_a_streak_survives_moving_the_journal_to_a_time_zone_behind(db, counting, days, streaks):
    """Alice answered this morning in Tokyo (the 25th there), then set her journal to Los Angeles,
    where it is still the 24th: her entry for 'tomorrow' keeps her streak alive, or starts one."""
    from storage.models import JournalEntry

    journal = journal_usecase(db, counting, now=lambda: datetime(2026, 11, 25, 0, 30, tzinfo=timezone.utc))
    for n, number in enumerate(days):  # in Tokyo
        day = datetime(2026, 11, number, 0, 0, tzinfo=timezone.utc)
        await db.journal.add(JournalEntry(user=ALICE_REF, local_date=day.date(), prompt_id=f"p{n}", phrase="This morning,",
                                          reply_text="x", track_key="t", track_title="Song", mood="calm",
                                          valence=0.3, arousal=-0.4, created_at=day))
    await journal.enable(ALICE_DM, "08:00", "America/Los_Angeles")  # 16:30 on the 24th there

    reply = await journal.stats(ALICE_DM)
    assert isinstance(reply, StatsReply) and streaks in reply.summary, reply.summary


async def test_a_streak_ends_when_the_users_own_yesterday_went_unanswered(db, counting):
    """At 12:00 UTC on the 22nd it is already 01:00 on the 23rd in Auckland: Alice answered on the
    20th and 21st there, not on the 22nd, so her streak is over, though UTC's yesterday was the 21st."""
    from storage.models import JournalEntry

    journal = journal_usecase(db, counting, now=lambda: datetime(2026, 3, 22, 12, 0, tzinfo=timezone.utc))
    await journal.enable(ALICE_DM, "09:00", "Pacific/Auckland")
    for n, day in enumerate((date(2026, 3, 20), date(2026, 3, 21))):
        await db.journal.add(JournalEntry(user=ALICE_REF, local_date=day, prompt_id=f"p{n}", phrase="This morning,",
                                          reply_text="x", track_key="t", track_title="Song", mood="calm",
                                          valence=0.3, arousal=-0.4,
                                          created_at=datetime(day.year, day.month, day.day, tzinfo=timezone.utc)))

    reply = await journal.stats(ALICE_DM)

    assert isinstance(reply, StatsReply) and "current streak 0 days, longest 2 days" in reply.summary


@pytest.mark.parametrize("moods, line", [
    ({"sad": 3, "calm": 1}, "Your most frequent mood: sad (3 of 4)."),
    ({"energetic": 1, "sad": 1}, "Your most frequent moods: energetic and sad (1 each of 2)."),
    ({"calm": 2, "happy": 2, "sad": 2}, "Your most frequent moods: happy, sad and calm (2 each of 6)."),
])
def test_the_stats_summary_names_every_mood_tied_for_most_frequent(moods, line):
    from collections import Counter

    from bot.usecases.journal import summary_text

    assert line in summary_text(sum(moods.values()), 1, 1, Counter(moods))


async def test_a_second_message_after_todays_prompt_is_answered_is_not_filed_under_an_older_prompt(
        db, counting, clip_paths):
    """A Discord DM names no prompt: it answers the newest prompt of the last week. Once that one
    has its song, the next DM (a note sent as a second message) must not fall through to
    yesterday's unanswered prompt and be filed under yesterday's date: it is told the prompt is
    answered."""
    clock = Clock(datetime(2026, 11, 23, 21, 30, tzinfo=timezone.utc))
    journal = journal_usecase(db, counting, now=clock)
    await journal.enable(ALICE_DM, "21:30", "UTC")
    await journal.make_prompt(await db.users.get(ALICE_REF))  # yesterday's, left unanswered
    clock.at += timedelta(days=1)
    await journal.make_prompt(await db.users.get(ALICE_REF))

    first = await journal.answer(ALICE_DM, "today's song", attachment(clip_paths[0]))
    second = await journal.answer(ALICE_DM, "such a long day, so tired", attachment(clip_paths[1]))

    assert isinstance(first, JournalSavedReply) and first.local_date == date(2026, 11, 24), first
    assert isinstance(second, ErrorReply) and "already answered" in second.message, second
    assert "21:30 (UTC)" in second.message  # when the next one comes
    assert [e.local_date for e in await db.journal.list(ALICE_REF)] == [date(2026, 11, 24)]


async def test_an_answer_after_journal_off_is_not_filed(db, counting, clip_paths):
    """/journal off stops the prompts: a message after it, a DM or even a reply to the prompt
    left open before it, is not filed under that prompt's day, and the user is told why."""
    journal = journal_usecase(db, counting)
    await journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    prompt = await journal.make_prompt(await db.users.get(ALICE_REF))
    await journal.prompt_delivered(prompt.prompt_id, "610")
    await journal.disable(ALICE_DM)

    dm = await journal.answer(ALICE_DM, "a note to myself", attachment(clip_paths[0]))
    replied = await journal.answer(ALICE_DM, "a late reply", attachment(clip_paths[1]), prompt_message_id="610")

    for reply in (dm, replied):
        assert isinstance(reply, ErrorReply) and "journal is off" in reply.message, reply
        assert "/journal on" in reply.message and "/mood <song>" in reply.message
    assert (await journal.list(ALICE_DM)).total == 0
    assert (await db.prompts.find_by_message("telegram", "1001", "610")).answered_at is None


async def test_in_an_outage_a_second_message_is_not_filed_under_an_older_prompt_held_in_memory(
        counting, clip_paths, outage):
    """With the database down, the prompts this process sent answer from memory: there too, once
    today's has its song, the next message is told so, not queued under yesterday's prompt."""
    db, writer = outage.db, outage.writer
    clock = Clock(datetime(2026, 11, 23, 21, 30, tzinfo=timezone.utc))
    journal = JournalUseCase(db, MoodUseCase(db, counting, fetcher=None, now=clock), writer=writer, now=clock)
    await journal.enable(ALICE_DM, "21:30", "UTC")
    await journal.make_prompt(await db.users.get(ALICE_REF))  # yesterday's, left unanswered
    clock.at += timedelta(days=1)
    await journal.make_prompt(await db.users.get(ALICE_REF))
    outage.down()

    first = await journal.answer(ALICE_DM, "today's song", attachment(clip_paths[0]))
    second = await journal.answer(ALICE_DM, "such a long day, so tired", attachment(clip_paths[1]))

    assert isinstance(first, JournalSavedReply) and first.queued and first.local_date == date(2026, 11, 24)
    assert isinstance(second, ErrorReply) and "already answered" in second.message, second
    assert writer.outbox.pending() == 1


@pytest.mark.parametrize("typed, meant", [
    ("GMT", "Europe/London"), ("gmt0", "Europe/London"), ("Greenwich", "Europe/London"),
    ("Etc/GMT", "Europe/London"), ("EST", "America/New_York"), ("MST", "America/Denver"),
    ("HST", "America/Adak"), ("UCT", "Europe/Lisbon"), ("Zulu", "Europe/Lisbon"),
    ("Universal", "Europe/Lisbon"),
])
async def test_a_zone_name_that_is_a_fixed_offset_is_said_not_to_follow_daylight_saving_time(
        db, counting, typed, meant):
    """GMT, EST and the like are accepted, but are offsets: a Londoner typing GMT would get the
    prompt an hour off all summer. The reply says so, and names the zone they likely meant."""
    reply = await journal_usecase(db, counting).enable(ALICE_DM, "21:30", typed)
    assert isinstance(reply, TextReply) and "doesn't follow" in reply.text, reply
    assert f"/journal on 21:30 {meant}" in reply.text, reply.text


def test_a_place_without_daylight_saving_time_is_no_fixed_offset():
    from bot.usecases.journal import is_fixed_offset
    assert not any(is_fixed_offset(zone) for zone in ("Asia/Tokyo", "Japan", "Asia/Kolkata", "Pacific/Honolulu"))
    assert all(is_fixed_offset(zone) for zone in ("UTC", "Etc/GMT-2", "GMT", "EST", "Zulu"))


def test_every_offset_name_keeps_one_offset_all_year():
    from zoneinfo import ZoneInfo

    from bot.usecases.journal import OFFSET_NAMES
    for name in OFFSET_NAMES:
        offsets = {datetime(year, month, 1, 12, tzinfo=ZoneInfo(name)).utcoffset()
                   for year in (2026, 2027) for month in (1, 7)}
        assert len(offsets) == 1, name


@pytest.mark.parametrize("typed, zone", [
    ("Beijing", "Asia/Shanghai"), ("mumbai", "Asia/Kolkata"), ("Delhi", "Asia/Kolkata"),
    ("San Francisco", "America/Los_Angeles"), ("Los Angeles", "America/Los_Angeles"),
    ("Barcelona", "Europe/Madrid"), ("Munich", "Europe/Berlin"), ("München", "Europe/Berlin"),
    ("Paris", "Europe/Paris"), ("lisbon", "Europe/Lisbon"), ("São Paulo", "America/Sao_Paulo"),
    ("new-york", "America/New_York"),
])
async def test_a_big_city_typed_for_the_zone_is_answered_with_the_zone_that_holds_it(db, counting, typed, zone):
    """ZONE_MISSING promises it: type a big city and the bot suggests its zone's name. A
    suggestion, not a guess taken: nothing is saved until the user sends the zone."""
    journal = journal_usecase(db, counting)
    reply = await journal.enable(ALICE_DM, "21:30", typed)
    assert isinstance(reply, ErrorReply), reply
    assert reply.message == f"Did you mean {zone}? /journal on 21:30 {zone}", reply.message
    assert await db.users.get(ALICE_REF) is None
    assert journal.timezones(typed)[0] == zone  # Discord's autocomplete offers it first


async def test_a_name_no_city_nor_zone_has_still_gets_the_examples(db, counting):
    reply = await journal_usecase(db, counting).enable(ALICE_DM, "21:30", "Atlantis")
    assert isinstance(reply, ErrorReply) and reply.message.startswith("I don't know the time zone “Atlantis”")


def test_every_city_names_a_zone_of_a_place():
    from bot.usecases.journal import CITY_ZONES, place_zones
    assert set(CITY_ZONES.values()) <= place_zones()


@pytest.mark.parametrize("typed, zone", [
    ("PST", "America/Los_Angeles"), ("pdt", "America/Los_Angeles"), ("CDT", "America/Chicago"),
    ("EDT", "America/New_York"), ("MDT", "America/Denver"), ("AKST", "America/Anchorage"),
    ("HDT", "America/Adak"), ("WEST", "Europe/Lisbon"), ("MSK", "Europe/Moscow"), ("JST", "Asia/Tokyo"),
    ("KST", "Asia/Seoul"), ("AEDT", "Australia/Sydney"), ("AWST", "Australia/Perth"),
    ("NZST", "Pacific/Auckland"), ("NZDT", "Pacific/Auckland"), ("ＰＳＴ", "America/Los_Angeles"),
])
async def test_a_time_zone_abbreviation_is_answered_with_the_zone_of_its_place(db, counting, typed, zone):
    """PST is no tzdata name: it was answered "I don't know the time zone", suggesting PST8PDT,
    tzdata's legacy rule name, rather than the place. Like a big city, it now gets the place's
    zone as a suggestion, nothing saved."""
    journal = journal_usecase(db, counting)
    reply = await journal.enable(ALICE_DM, "21:30", typed)
    assert isinstance(reply, ErrorReply), reply
    assert reply.message == f"Did you mean {zone}? /journal on 21:30 {zone}", reply.message
    assert await db.users.get(ALICE_REF) is None
    assert journal.timezones(typed)[0] == zone


@pytest.mark.parametrize("typed, zones", [
    ("IST", ["Asia/Kolkata", "Europe/Dublin", "Asia/Jerusalem"]),  # India, Ireland, Israel
    ("CST", ["America/Chicago", "Asia/Shanghai"]),  # US Central, China
    ("AST", ["America/Halifax", "Asia/Riyadh"]),  # Atlantic, Arabia
    ("BST", ["Europe/London", "Asia/Dhaka"]),  # British Summer Time, Bangladesh
    ("AEST", ["Australia/Sydney", "Australia/Brisbane"]),  # Queensland keeps AEST all year
    ("cest", ["Europe/Paris", "Europe/Berlin", "Europe/Madrid", "Europe/Rome"]),
])
async def test_an_abbreviation_several_places_use_is_answered_with_the_choices(db, counting, typed, zones):
    journal = journal_usecase(db, counting)
    reply = await journal.enable(ALICE_DM, "21:30", typed)
    assert isinstance(reply, ErrorReply), reply
    assert f"type one of them, e.g. /journal on 21:30 {zones[0]}" in reply.message, reply.message
    assert [z for z in all_timezones() if "/" in z and z in reply.message] == sorted(zones), reply.message
    assert "I don't know" not in reply.message
    assert await db.users.get(ALICE_REF) is None
    assert journal.timezones(typed)[:len(zones)] == zones


@pytest.mark.parametrize("typed, zone", [
    ("PST8PDT", "America/Los_Angeles"), ("MST7MDT", "America/Denver"), ("cst6cdt", "America/Chicago"),
    ("EST5EDT", "America/New_York"), ("US/Pacific", "America/Los_Angeles"), ("us/eastern", "America/New_York"),
    ("Canada/Eastern", "America/Toronto"), ("Japan", "Asia/Tokyo"), ("GB", "Europe/London"),
    ("Asia/Calcutta", "Asia/Kolkata"), ("NZ", "Pacific/Auckland"), ("ROK", "Asia/Seoul"),
])
async def test_an_old_tzdata_name_is_saved_as_the_zone_of_its_place(db, counting, typed, zone):
    """US/Pacific, PST8PDT, Japan: tzdata keeps them for old systems, with their place's clocks
    (and Debian ships them apart, in tzdata-legacy). The place's zone is saved and shown."""
    journal = journal_usecase(db, counting)
    reply = await journal.enable(ALICE_DM, "21:30", typed)
    assert isinstance(reply, TextReply) and f"21:30 ({zone})" in reply.text, reply
    assert "doesn't follow" not in reply.text
    assert (await db.users.get(ALICE_REF)).timezone == zone
    assert journal.timezones(typed)[0] == zone
    assert typed not in journal.timezones(typed[:3])  # Discord offers the place, not the old name


@pytest.mark.parametrize("typed, first", [
    ("CET", "Europe/Paris"), ("MET", "Europe/Paris"), ("EET", "Europe/Athens"), ("WET", "Europe/Lisbon"),
])
async def test_a_regions_zone_name_is_taken_and_answered_with_its_places(db, counting, typed, first):
    """CET and the like are tzdata zones that keep the EU's summer time: taken, but they are a
    region's time, so the reply names the places' zones that follow a country's own clocks."""
    journal = journal_usecase(db, counting)
    reply = await journal.enable(ALICE_DM, "21:30", typed)
    assert isinstance(reply, TextReply) and f"21:30 ({typed})" in reply.text, reply
    assert f"name your zone instead, e.g. /journal on 21:30 {first}" in reply.text, reply.text
    assert (await db.users.get(ALICE_REF)).timezone == typed
    assert journal.timezones(typed)[0] == typed


def test_every_abbreviation_and_old_name_names_a_zone_of_a_place_with_the_same_clocks():
    from zoneinfo import ZoneInfo

    from bot.usecases.journal import ABBREVIATIONS, legacy_names, place_zones
    assert {z for zones in ABBREVIATIONS.values() for z in zones} <= place_zones()
    assert set(legacy_names().values()) <= place_zones()
    for name, zone in legacy_names().items():
        for month in range(1, 13):
            at = datetime(2026, month, 15, 12, tzinfo=timezone.utc)
            assert at.astimezone(ZoneInfo(name)).utcoffset() == at.astimezone(ZoneInfo(zone)).utcoffset(), name


async def test_prompts_awaiting_an_answer_are_those_held_in_memory_while_the_database_is_down(
        counting, clip_paths, outage):
    """Whom an answer may have come from unheard (a Discord DM while the bot was offline, read back
    at a new session): with the database down, the prompts held in memory, so that an answer to
    one is still queued in the outbox; none once it has its song."""
    journal, prompt = await prompted_in_outage(outage, counting, "906")
    awaiting = await journal.awaiting_answers(ALICE_REF.platform, 10)
    assert [(p.prompt_id, p.message_id, p.chat_id) for p in awaiting] == [(prompt.prompt_id, "906", ALICE_DM.chat_id)]
    assert await journal.awaiting_answers("discord", 10) == []  # Alice's is a Telegram prompt
    saved = await journal.answer(ALICE_DM, "still here", attachment(clip_paths[0]), prompt_message_id="906")
    assert isinstance(saved, JournalSavedReply) and saved.queued
    assert await journal.awaiting_answers(ALICE_REF.platform, 10) == []
