"""`/journal on <HH:MM> <zone>` as typed with a Chinese or Japanese input method in full-width mode:
its digits, colon and letters look like the ASCII ones and mean the same time and zone."""
from __future__ import annotations

import re

import pytest

from bot.usecases.journal import JOURNAL_ON_USAGE
from storage.models import UserRef
from tests.bot.test_console import chat
from tests.frontends.conftest import known_upload


@pytest.mark.parametrize("typed, said", [
    ("/journal on ２１：３０ Asia/Tokyo", "every day at 21:30 (Asia/Tokyo)"),
    ("/journal on 7：05 Asia/Shanghai", "every day at 07:05 (Asia/Shanghai)"),
    ("/journal on ２１:３０ ＵＴＣ＋９", "every day at 21:30 (UTC+09:00)"),
    ("/journal on 21:30 Ａｓｉａ/Ｔｏｋｙｏ", "every day at 21:30 (Asia/Tokyo)"),
    ("/journal on ２１：３０\u3000Asia/Tokyo", "every day at 21:30 (Asia/Tokyo)"),  # an ideographic space
    ("/journal on 21:30 +02:00", "every day at 21:30 (UTC+02:00)"),  # ISO 8601's offset
    ("/journal on 21:30 -0300", "every day at 21:30 (UTC-03:00)"),
])
async def test_a_full_width_time_or_zone_is_the_time_and_zone_it_looks_like(db, counting, tmp_path, typed, said):
    out = await chat(db, counting, tmp_path, [typed, "/quit"])
    assert f"Journal on: {said}" in out, out
    user = await db.users.get(UserRef("console", "local"))
    assert user.journal_enabled and f"{user.prompt_time:%H:%M}" == said.split()[3]


async def test_journal_on_alone_resumes_the_saved_time_and_zone(db, counting, tmp_path):
    out = await chat(db, counting, tmp_path, ["/journal on 07:15 America/New York", "/journal off",
                                              "/journal on", "/quit"])
    assert out.count("Journal on: every day at 07:15 (America/New_York)") == 2, out
    assert (await db.users.get(UserRef("console", "local"))).journal_enabled


async def test_journal_on_with_a_time_keeps_the_saved_zone(db, counting, tmp_path):
    out = await chat(db, counting, tmp_path, ["/journal on 07:15 America/New York", "/journal on 21:00", "/quit"])
    assert "Journal on: every day at 21:00 (America/New_York)" in out, out
    user = await db.users.get(UserRef("console", "local"))
    assert f"{user.prompt_time:%H:%M}" == "21:00" and user.timezone == "America/New_York"


async def test_journal_on_with_a_zone_alone_keeps_the_saved_time_or_asks_for_it(db, counting, tmp_path):
    """`/journal on 21:30` keeps the saved zone, but `/journal on Asia/Tokyo` (moving, with the time
    saved) was "I need the time as HH:MM", the zone read as a time; with nothing saved, the usage,
    as if no zone had been typed. The zone alone keeps the saved time, or is understood and the time
    asked for, as Discord's zone option alone is."""
    out = await chat(db, counting, tmp_path, ["/journal on Europe/Berlin", "/journal on Paris",
                                              "/journal on 22:00 Europe/Berlin", "/journal on Asia/Tokyo", "/quit"])
    assert ("Europe/Berlin, understood: only the time is missing. Add it on a 24-hour clock, e.g. "
            "/journal on 21:30 Europe/Berlin.") in out, out
    assert "Europe/Paris, understood: only the time is missing." in out
    assert "Journal on: every day at 22:00 (Asia/Tokyo)" in out and "I need the time" not in out
    user = await db.users.get(UserRef("console", "local"))
    assert (user.timezone, f"{user.prompt_time:%H:%M}") == ("Asia/Tokyo", "22:00")


async def test_journal_on_with_nothing_saved_asks_for_the_time_and_zone(db, counting, tmp_path):
    out = await chat(db, counting, tmp_path, ["/journal on", "/quit"])
    assert JOURNAL_ON_USAGE in out, out
    assert await db.users.get(UserRef("console", "local")) is None


@pytest.mark.parametrize("typed, time", [("/journal on 21:30", "21:30"), ("/journal on ７:０５", "07:05")])
async def test_journal_on_with_a_time_and_no_saved_zone_asks_for_the_zone_alone(db, counting, tmp_path, typed, time):
    out = await chat(db, counting, tmp_path, [typed, "/quit"])
    # The time was understood: the reply says so, and shows the whole command with it.
    assert JOURNAL_ON_USAGE not in out and f"{time}, understood" in out, out
    assert f"/journal on {time} Europe/Lisbon" in out and "big city" in out, out
    assert await db.users.get(UserRef("console", "local")) is None


@pytest.mark.parametrize("typed", ["/journal on 7:00 pm Europe/Lisbon", "/journal on 7:30 AM Asia/Tokyo",
                                   "/journal on 9:15 p.m. America/New_York", "/journal on 9:15 pm"])
async def test_a_time_on_a_12_hour_clock_is_said_to_be_the_time_not_the_zone(db, counting, tmp_path, typed):
    # "7:00 pm" is read as the time 7:00 and the zone "pm Europe/Lisbon": the reply blamed the zone
    # ("I don't know the time zone “pm Europe/Lisbon”"), and the zone alone ("pm") took a saved one's place.
    out = await chat(db, counting, tmp_path, ["/journal on 21:30 Europe/Lisbon", "/journal off", typed, "/quit"])
    assert "I need the time as HH:MM on a 24-hour clock: " in out and "time zone" not in out, out
    assert not (await db.users.get(UserRef("console", "local"))).journal_enabled


@pytest.mark.parametrize("typed, said", [
    ("/journal on 9pm Europe/Lisbon", "9pm is 21:00: /journal on 21:00 Europe/Lisbon"),
    ("/journal on 7:30 AM Asia/Tokyo", "7:30 AM is 07:30: /journal on 07:30 Asia/Tokyo"),
    ("/journal on 12am America/New_York", "12am is 00:00: /journal on 00:00 America/New_York"),
    ("/journal on 12:15 p.m. UTC+2", "12:15 p.m. is 12:15: /journal on 12:15 UTC+2"),
    ("/journal on 9pm", "9pm is 21:00, e.g. /journal on 21:00 Europe/Lisbon"),
    ("/journal on 9 pm Beijing", "9 pm is 21:00: /journal on 21:00 Asia/Shanghai"),  # the city's zone, as DID_YOU_MEAN's
    ("/journal on 2130 Europe/Lisbon", "2130 is 21:30: /journal on 21:30 Europe/Lisbon"),  # no colon
    ("/journal on 0705", "0705 is 07:05, e.g. /journal on 07:05 Europe/Lisbon"),
])
async def test_a_time_on_a_12_hour_clock_is_answered_with_the_24_hour_time(db, counting, tmp_path, typed, said):
    # "/journal on 9pm" was answered with the usage alone, as if no time had been typed, and
    # "9pm Europe/Lisbon" with "I need the time as HH:MM", leaving the sum to the user.
    out = await chat(db, counting, tmp_path, [typed, "/quit"])
    assert f"I need the time as HH:MM on a 24-hour clock: {said}" in out, out
    assert JOURNAL_ON_USAGE not in out and "time zone" not in out
    assert await db.users.get(UserRef("console", "local")) is None


@pytest.mark.parametrize("typed, zone", [("Lisbon, Portugal", "Europe/Lisbon"), ("New York, NY", "America/New_York"),
                                         ("Beijing，China", "Asia/Shanghai")])  # an input method's full-width comma
async def test_a_city_typed_with_its_country_is_answered_with_its_zone(db, counting, tmp_path, typed, zone):
    # "Lisbon, Portugal", as an address is written, was "I don't know the time zone", though
    # "Lisbon" alone is answered with Europe/Lisbon.
    out = await chat(db, counting, tmp_path, [f"/journal on 21:30 {typed}", "/quit"])
    assert f"Did you mean {zone}? /journal on 21:30 {zone}" in out, out
    assert await db.users.get(UserRef("console", "local")) is None


@pytest.mark.parametrize("typed, command", [("Europe/Lisbon 21:30", "/journal on 21:30 Europe/Lisbon"),
                                            ("Tokyo 7:05", "/journal on 07:05 Asia/Tokyo"),
                                            ("UTC+2 21:30", "/journal on 21:30 UTC+2")])
async def test_a_zone_typed_before_the_time_is_answered_with_the_command_in_order(db, counting, tmp_path, typed,
                                                                                 command):
    # The zone first was "I need the time as HH:MM on a 24-hour clock", though the time was typed so.
    out = await chat(db, counting, tmp_path, [f"/journal on {typed}", "/quit"])
    assert f"The time goes first, then the zone: {command}" in out and "24-hour" not in out, out
    assert await db.users.get(UserRef("console", "local")) is None


async def test_a_time_typed_without_on_is_answered_with_the_command_meant(db, counting, tmp_path):
    """'/journal 21:30 Europe/Lisbon' was the usage, as for a word the journal has no use for."""
    out = await chat(db, counting, tmp_path, ["/journal 21:30 Europe/Lisbon", "/quit"])
    assert "Did you mean /journal on 21:30 Europe/Lisbon?" in out and "Usage:" not in out, out
    assert await db.users.get(UserRef("console", "local")) is None


async def test_journal_alone_says_whether_it_is_on_before_the_usage(db, counting, tmp_path):
    out = await chat(db, counting, tmp_path, ["/journal", "/journal on 07:15 Asia/Tokyo", "/journal", "/quit"])
    assert "Your journal is off.\nUsage: /journal on" in out, out
    assert re.search(r"Your journal is on: your prompt comes every day at 07:15 \(Asia/Tokyo\)\.\n"
                     r"Your next prompt comes [^\n]*07:15[^\n]*\nUsage: /journal on", out), out  # today's, or tomorrow's


async def test_journal_alone_says_whether_today_s_prompt_is_open_or_answered(db, tmp_path):
    """As on Telegram (tests/frontends/test_telegram.py), with the console's way to answer."""
    song = tmp_path / "take1.ogg"
    song.write_bytes(b"OggS a song someone recorded")
    await db.tracks.save(known_upload(song.read_bytes()))  # heard before: no classifier here
    out = await chat(db, None, tmp_path, ["/journal on 21:30 Europe/Lisbon", "/journal prompt", "/journal",
                                          f"/journal answer {song}", "/journal", "/quit"])
    entry, = await db.journal.list(UserRef("console", "local"))
    opened = out.index("Today's prompt is open: answer it with /journal answer <song>.\nUsage: /journal on")
    answered = out.index(f"Today's prompt is answered: {entry.track_title}.\nUsage: /journal on")
    assert out.index("📝 ") < opened < out.index("Saved to your journal") < answered, out
