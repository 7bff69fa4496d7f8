"""What the console says to the one person who both uses it and runs it: which setting to change
when a limit meant for chats with many users stops them, and the zone their computer's clock is on
when `/journal on` is given a time alone."""
from __future__ import annotations

import pytest

from bot.ratelimit import CommandLimit, HeavyLimits, MoodRateLimiter
from bot.usecases.journal import ZONE_MISSING
from tests.bot.test_console import chat


def mood_limits(per_user: int, per_place: int) -> dict:
    return {"limiter": MoodRateLimiter(per_user, per_place, concurrent_per_user=2)}


@pytest.mark.parametrize("limits, commands, refusal, setting", [
    (mood_limits(2, 30), ["/mood {song}"] * 3, "You're going fast", "MOOD_RATE_PER_USER sets how many /mood"),
    (mood_limits(5, 2), ["/mood {song}"] * 3, "This console is asking me a lot", "MOOD_RATE_PER_PLACE sets how many /mood"),
    ({"heavy_limits": HeavyLimits(export=CommandLimit(1))}, ["/export", "/export"], "You're going fast",
     "EXPORT_RATE_PER_USER sets how many /export"),
    ({"heavy_limits": HeavyLimits(stats=CommandLimit(1))}, ["/stats", "/stats"], "You're going fast",
     "STATS_RATE_PER_USER sets how many /stats"),
    ({"heavy_limits": HeavyLimits(server=CommandLimit(1))}, ["/servermood", "/playlist happy"], "You're going fast",
     "PLAYLIST_RATE_PER_USER sets how many /playlist and /servermood"),
])
async def test_a_rate_limit_tells_the_console_s_user_which_setting_sets_it(db, counting, clip_paths, tmp_path,
                                                                        limits, commands, refusal, setting):
    # Six /mood a minute suit a chat of strangers; at the console, a user trying a folder of their own
    # songs was told "You're going fast — try again in 60 s" at the seventh, with no way out named.
    typed = [command.format(song=clip_paths[0]) for command in commands]
    out = await chat(db, counting, tmp_path, [*typed, "/quit"], **limits)
    last = out.splitlines()[-2]  # before "Bye!"
    assert last.startswith(refusal) and "try again in" in last, out
    assert f"You run this bot: {setting} it answers a minute; set it higher and start it again." in last, out
    assert out.count("You run this bot") == 1


@pytest.mark.parametrize("zone, said", [
    ("Europe/Berlin", "Europe/Berlin"),
    (":America/New_York", "America/New_York"),  # glibc's form of the variable
    (":/usr/share/zoneinfo/Asia/Tokyo", "Asia/Tokyo"),  # and its form with a file's path
    ("/usr/share/zoneinfo/posix/Australia/Sydney", "Australia/Sydney"),
])
async def test_journal_on_with_a_time_alone_offers_the_zone_of_this_computer_s_clock(db, counting, tmp_path,
                                                                                     monkeypatch, zone, said):
    monkeypatch.setenv("TZ", zone)
    out = await chat(db, counting, tmp_path, ["/journal on 21:30", "/quit"])
    assert ZONE_MISSING.format(time="21:30") in out, out  # what a chat is told, and then:
    assert f"This computer's clock is on {said} time: if yours is too, /journal on 21:30 {said}." in out, out
    out = await chat(db, counting, tmp_path, [f"/journal on 21:30 {said}", "/journal off", "/journal on 08:00",
                                              "/quit"])
    assert f"every day at 08:00 ({said})" in out and "This computer's" not in out, out  # a zone saved: kept


@pytest.mark.parametrize("zone", ["UTC", "", "Etc/UTC", "Etc/GMT-2", "CET-1CEST,M3.5.0,M10.5.0/3", "Nowhere/Land"])
async def test_a_clock_on_utc_an_offset_or_no_zone_s_name_is_not_offered(db, counting, tmp_path, monkeypatch, zone):
    # A server's or a container's clock is on UTC, which says nothing of where its user lives.
    monkeypatch.setenv("TZ", zone)
    out = await chat(db, counting, tmp_path, ["/journal on 21:30", "/quit"])
    assert ZONE_MISSING.format(time="21:30") in out and "This computer's" not in out, out


@pytest.mark.parametrize("typed, meant", [("/q", "/quit"), ("/bye", "/quit"), ("/Leave", "/quit"), ("/h", "/help"),
                                          ("/?", "/help"), ("/commands", "/help")])
async def test_the_short_or_other_words_for_leaving_and_for_help_name_the_command(db, counting, tmp_path, typed, meant):
    # A terminal's habits (vim's :q, "bye", a shell's "?"): each was "I don't know that one", /q with no way out named.
    out = await chat(db, counting, tmp_path, [typed, "/quit"])
    assert f"I don't know {typed}. Did you mean {meant}? Type /help for the commands." in out, out
    assert out.count("Bye!") == 1 and "/journal on <HH:MM>" not in out  # said, not run


@pytest.mark.parametrize("typed, path", [("/mood Downloads/song.mp3", "Downloads/song.mp3"),
                                         ("/mood ./song.ogg", "./song.ogg"), ("/mood 'My Song.flac'", "My Song.flac"),
                                         ("/journal answer Downloads/song.mp3 on the bus", "Downloads/song.mp3")])
async def test_a_relative_path_to_no_file_says_which_folder_it_was_read_from(db, counting, tmp_path, monkeypatch,
                                                                             typed, path):
    # `make run` runs moodbot in its own folder: "Downloads/song.mp3", meant from the home folder, was
    # "There is no file at Downloads/song.mp3." with nothing to say where it was looked for.
    (tmp_path / "moodbot").mkdir()
    monkeypatch.chdir(tmp_path / "moodbot")
    out = await chat(db, counting, tmp_path, ["/journal on 21:30 Europe/Lisbon", "/journal prompt", typed, "/quit"])
    assert (f"There is no file at {path}. A path that does not start with / or ~ is read from the folder moodbot "
            f"runs in, {tmp_path / 'moodbot'}.") in out, out


async def test_an_absolute_or_home_path_to_no_file_names_no_folder(db, counting, tmp_path):
    out = await chat(db, counting, tmp_path, [f"/mood {tmp_path}/gone.mp3", "/mood ~/gone.mp3",
                                              "/mood ~nosuchuser/gone.mp3", "/quit"])  # no such home: as typed
    assert f"There is no file at {tmp_path}/gone.mp3." in out and "There is no file at ~/gone.mp3." in out, out
    assert "There is no file at ~nosuchuser/gone.mp3." in out
    assert "read from the folder" not in out
