"""The console front-end: a terminal chat with the same commands as Discord and Telegram.

In-process with the real use cases, database and classifier; and `python -m bot` end to end in a
subprocess on an embedded database that must start and stop cleanly."""
from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote_plus

import pytest


from bot.__main__ import NO_TOKENS_NOTICE, STDIN_CLOSED_NOTICE, STDOUT_CLOSED
from bot.frontends.console import ConsoleFrontend
from bot.scheduler import PromptScheduler
from bot.usecases import build_usecases
from storage.models import UserRef
from tests.permissions import MOODBOTS_USER, bound_by_file_modes

REPO = Path(__file__).resolve().parents[2]


async def chat(db, classifier, data_dir: Path, lines: list[str], *, fetcher=None, resolver=None, **limits) -> str:
    """What the console says to `lines` typed, with the journal's scheduler running (`limits`:
    build_usecases' `limiter` and `heavy_limits`, none by default)."""
    usecases = build_usecases(db, classifier, fetcher, resolver=resolver, **limits)
    scheduler = PromptScheduler(db, usecases.journal, pause_s=0)
    usecases.attach_schedule(scheduler)
    out = io.StringIO()
    console = ConsoleFrontend(usecases, io.StringIO("\n".join(lines) + "\n"), out, data_dir=data_dir)
    scheduler.register(console)
    await scheduler.start()
    try:
        await console.run()
    finally:
        await scheduler.stop()
    return out.getvalue()


async def test_a_console_session_from_mood_to_forget(db, counting, classifier, clip_paths, tmp_path):
    song = clip_paths[0]
    expected = (await classifier.classify(song)).mood
    out = await chat(db, counting, tmp_path, [
        "/help",
        "/dance",
        "hello?",
        f"/mood {song}",
        f"/mood {song}",
        "/journal on 21:30 Europe/Lisbon",
        "/journal prompt",
        "/journal answer missing.ogg walking home",  # no such file: said, and the prompt stays open
        f"/journal answer {clip_paths[1]} walking home in the rain",
        "/journal list",
        "/stats",
        f"/playlist {expected}",
        "/servermood",
        "/share off",
        "/export",
        "/forget",
        "y",
        "/journal list",
        "/quit",
        "/help",  # never read: /quit ends the session
    ])

    assert out.count("/journal on <HH:MM> <Area/City>") == 1 and "/quit – Leave moodbot" in out
    assert out.count("I don't know that one. Type /help for the commands.") == 1  # /dance
    assert "To hear a song's mood, type /mood <song or path/to/song.mp3>" in out  # hello?
    assert "… Listening…" in out and "Mood: " in out and expected in out
    assert "(from the cache)" in out and len(counting.calls) == 2  # the song once, the journal answer once
    assert "Journal on: every day at 21:30 (Europe/Lisbon)" in out
    assert "There is no file at missing.ogg." in out
    assert "📝 " in out and "Saved to your journal" in out
    assert "walking home in the rain" in out  # the note shows in /journal list
    charts = sorted((tmp_path / "charts").glob("*.png"))
    assert {p.name.split("-", 2)[-1] for p in charts} >= {"moods-by-week.png", "year-in-pixels.png", "mood-map.png",
                                                         "server-mood.png"}
    assert all(str(p.resolve()) in out for p in charts)
    playlist = out.split(f"{expected} playlist:\n", 1)[1].split("This week's mood here")[0]
    assert f". {song.stem}\n" in playlist  # the group's playlist has the song the console user classified
    assert "Sharing off" in out
    exports = list((tmp_path / "exports").glob("moodbot-export-*.json"))
    assert len(exports) == 1 and json.loads(exports[0].read_text())["user"]["user_id"] == "local"
    assert "can't be undone" in out and "Delete everything? [y/N]" in out and "Done: I deleted everything" in out
    # The files it saved are the user's copies (the export was taken for keeping): kept, and said so.
    assert f"The {len(charts)} charts and the export saved on this computer" in out
    assert str((tmp_path / "charts").resolve()) in out and str((tmp_path / "exports").resolve()) in out
    assert len(list((tmp_path / "charts").glob("*.png"))) == len(charts) and exports[0].exists()
    assert out.rstrip().endswith("Bye!")
    assert out.count("Your journal is empty") == 1  # the last /journal list, after /forget
    assert await db.users.get(UserRef("console", "local")) is None


async def test_forget_is_not_confirmed_by_anything_but_yes(db, counting, tmp_path):
    out = await chat(db, counting, tmp_path, ["/share on", "/forget", "", "/quit"])
    assert "Nothing was deleted." in out
    assert await db.users.get(UserRef("console", "local")) is not None


async def test_an_export_kept_through_forget_is_not_overwritten_by_a_later_one(db, counting, tmp_path):
    # The usual way out: /export, then /forget. The console says the saved export is the user's
    # own copy; a second /export the same day (now empty) is saved beside it, not over it.
    out = await chat(db, counting, tmp_path, ["/journal on 21:30 Europe/Lisbon", "/export", "/forget", "y",
                                              "/export", "/quit"])
    saved = sorted((tmp_path / "exports").iterdir(), key=lambda p: len(p.name))
    first = saved[0]  # moodbot-export-<date>.json
    exports = [first, first.with_name(f"{first.stem}-2.json")]
    assert saved == exports
    kept, empty = (json.loads(p.read_text()) for p in exports)
    assert kept["user"]["prompt_time"] == "21:30:00" and kept["user"]["created_at"] is not None
    assert empty["user"]["prompt_time"] is None and empty["user"]["created_at"] is None  # none saved now
    assert all(f"saved: {p.resolve()}" in out for p in exports)


async def test_a_second_export_the_same_day_names_the_file_it_was_saved_as(db, counting, tmp_path):
    out = await chat(db, counting, tmp_path, ["/export", "/export", "/quit"])
    first, second = sorted((tmp_path / "exports").iterdir(), key=lambda p: len(p.name))
    assert second.name == f"{first.stem}-2.json"
    for export in (first, second):
        said = (f"I keep nothing about you: {export.name} holds only the settings you have by default "
                f"(journal off, times in UTC).\n  saved: {export.resolve()}\n")
        assert out.count(said) == 1, out


async def test_input_ending_at_the_forget_question_deletes_nothing_and_ends_the_session(db, counting, tmp_path):
    # `printf '/forget\n' | python -m bot`, or Ctrl-D at "Delete everything? [y/N]": the session
    # ends, as at any other end of input, instead of waiting for a line that can never come.
    out = await asyncio.wait_for(chat(db, counting, tmp_path, ["/share on", "/forget"]), 30)
    assert out.rstrip().endswith("Nothing was deleted.")
    assert await db.users.get(UserRef("console", "local")) is not None


async def test_with_no_model_to_listen_the_console_tells_its_user_who_runs_the_bot_where_to_look(db, clip_paths,
                                                                                                tmp_path):
    """The weights missing (a copy of the code without inference/weights/): /mood said only "I
    can't listen to songs right now. Please try again later.", which a later try never changed,
    to the console's user, who runs the bot and alone can fix it; the reason was in the log file."""
    from bot.app import WarmingClassifier
    from inference.pool import Classifier

    (tmp_path / "no-weights").mkdir()
    classifier = WarmingClassifier(Classifier(tmp_path / "no-weights"))
    try:
        out = await chat(db, classifier, tmp_path, [f"/mood {clip_paths[0]}"])
    finally:
        await classifier.close()
    assert ("I can't listen to songs right now. Please try again later. You run this bot: `python -m bot --check` "
            f"says why, and so does {tmp_path / 'moodbot.log'}.") in out, out


async def test_a_path_that_names_no_audio_file_is_answered_without_a_search(db, counting, tmp_path):
    (tmp_path / "songs").mkdir()
    out = await chat(db, counting, tmp_path, [f"/mood {tmp_path}/songs/", f"/mood {tmp_path}/nope.mp3",
                                              "/mood missing-song.FLAC", "/mood My Song.mp3", "/quit"])
    assert f"{tmp_path}/songs/ is a folder" in out and f"/mood {tmp_path}/songs/song.mp3" in out
    assert f"There is no file at {tmp_path}/nope.mp3." in out
    assert "There is no file at missing-song.FLAC." in out  # a bare file name, relative to the working folder
    assert "There is no file at My Song.mp3." in out
    assert counting.calls == [] and "Listening" not in out


async def test_two_files_are_one_file_too_many_not_a_file_that_is_not_there(db, counting, clip_paths, tmp_path):
    # Two songs dropped on the terminal at once: neither is searched for, nor said to be missing.
    import shlex
    import shutil

    (tmp_path / "My Music").mkdir()
    spaced = [shutil.copy(clip, tmp_path / "My Music" / f"song {n}.ogg") for n, clip in enumerate(clip_paths[:2])]
    out = await chat(db, counting, tmp_path, [f"/mood {clip_paths[0]} {clip_paths[1]}",
                                              f"/mood {clip_paths[0]} {tmp_path}/gone.ogg",
                                              f"/mood {shlex.quote(str(spaced[0]))} {shlex.quote(str(spaced[1]))}",
                                              f"/mood {spaced[0]} {spaced[1]}", "/quit"])
    assert out.count("One file at a time, please: /mood <path>") == 4, out
    assert "There is no file" not in out and "Finding" not in out and counting.calls == []


async def test_a_path_that_is_no_regular_file_is_not_an_audio_file_nor_a_search(db, counting, tmp_path):
    # /dev/null exists, and is no song: said as `python -m inference classify /dev/null` says it.
    import os

    os.mkfifo(tmp_path / "pipe.ogg")
    out = await chat(db, counting, tmp_path, ["/mood /dev/null", f"/mood {tmp_path}/pipe.ogg",
                                              "/journal on 21:30 Europe/Lisbon", "/journal prompt",
                                              "/journal answer /dev/null on the bus", "/quit"])
    assert out.count("/dev/null is not a regular file (a device or a socket), so not an audio file.") == 2, out
    assert f"{tmp_path}/pipe.ogg is not a regular file (a device or a socket), so not an audio file." in out
    assert "Finding" not in out and "YouTube" not in out and counting.calls == []
    assert "Saved to your journal" not in out


async def test_a_path_with_spaces_that_names_a_folder_or_nothing_is_answered_without_a_search(db, counting, tmp_path):
    # "~/Music/My Album" is a folder, not a song to look for on Spotify or YouTube.
    (tmp_path / "My Album").mkdir()
    out = await chat(db, counting, tmp_path, [f"/mood {tmp_path}/My Album", f"/mood {tmp_path}/My Album/",
                                              f"/mood {tmp_path}/No Such Album/side a", "/quit"])
    assert out.count(f"{tmp_path}/My Album is a folder") == 1 and out.count(f"{tmp_path}/My Album/ is a folder") == 1
    assert f"/mood {tmp_path}/My Album/song.mp3" in out
    assert f"There is no file at {tmp_path}/No Such Album/side a." in out
    assert counting.calls == [] and "Finding" not in out and "Listening" not in out


async def test_a_path_quoted_or_escaped_as_a_terminal_pastes_it_is_the_file(db, counting, clip_paths, tmp_path):
    # Dropping a file on a terminal types its path quoted ('…', GNOME) or with its spaces escaped
    # (macOS): that is the file, not a song name to search for nor a file that isn't there.
    import shlex
    import shutil

    (tmp_path / "My Music").mkdir()
    song = tmp_path / "My Music" / "rainy day.ogg"
    shutil.copy(clip_paths[0], song)
    escaped = str(song).replace(" ", "\\ ")
    out = await chat(db, counting, tmp_path, [f"/mood {shlex.quote(str(song))}", f'/mood "{song}"', f"/mood {escaped}",
                                              f"/mood '{tmp_path}/My Music/gone.ogg'", f"/mood '{tmp_path}/My Music'",
                                              "/journal on 21:30 Europe/Lisbon", "/journal prompt",
                                              f"/journal answer {shlex.quote(str(song))} on the bus", "/journal list",
                                              "/quit"])
    assert out.count("Mood: ") >= 3 and "Saved to your journal" in out and "on the bus" in out
    assert "There is no file at" in out and f"{tmp_path}/My Music/gone.ogg." in out
    assert f"{tmp_path}/My Music is a folder" in out
    assert "Finding" not in out and len(counting.calls) == 1  # one song, heard once, then from the cache


async def test_a_link_ending_in_an_audio_suffix_is_a_link_not_a_missing_file(db, counting, tmp_path):
    out = await chat(db, counting, tmp_path, ["/mood http://evil.example.com/x.mp3", "/mood www.evil.example.com/a.ogg",
                                              "/quit"])
    assert "There is no file" not in out
    assert "I can't open links to evil.example.com." in out
    assert "I can't open links to www.evil.example.com." in out
    assert counting.calls == [] and "Listening" not in out


async def test_a_journal_answer_may_be_a_file_whose_name_holds_spaces(db, counting, clip_paths, tmp_path):
    import shutil

    song = tmp_path / "my song.ogg"
    shutil.copy(clip_paths[0], song)
    out = await chat(db, counting, tmp_path, ["/journal on 21:30 Europe/Lisbon", "/journal prompt",
                                              f"/journal answer {song} on a rainy bus", "/journal list", "/quit"])
    assert "There is no file" not in out and "Saved to your journal" in out
    assert "my song" in out and "– on a rainy bus" in out  # the file's title, then the user's words


async def test_a_journal_answer_the_fallback_heard_says_so_as_a_mood_answer_does(db, counting, classifier,
                                                                                 clip_paths, tmp_path):
    shedding, classifier.max_queue = classifier.max_queue, 0  # every job over the queue: the ANN answers
    try:
        out = await chat(db, counting, tmp_path, ["/journal on 21:30 Europe/Lisbon", "/journal prompt",
                                                  f"/journal answer {clip_paths[1]}", f"/mood {clip_paths[2]}",
                                                  "/quit"])
    finally:
        classifier.max_queue = shedding
    saved = out[out.index("Saved to your journal"):out.index("🎵")]
    fallback = "Model: ANN fallback"
    assert fallback in saved and "main model was unavailable (overloaded)" in saved
    assert out.count(fallback) == 2  # the journal's answer says it as /mood's does


@pytest.mark.parametrize("bare", ["/mood", "/mood \ufeff", "/mood \u00ad\u200b"])  # nothing visible either
async def test_help_and_a_bare_mood_say_a_song_may_be_a_file_on_this_computer(db, counting, tmp_path, bare):
    out = await chat(db, counting, tmp_path, ["/help", bare, "/quit"])
    usage = "/mood <song | Spotify link | YouTube link | path/to/song.mp3>"
    assert f"{usage} – " in out and f"Usage: {usage}" in out
    assert "attach" not in out  # a terminal has nothing to attach
    assert counting.calls == []


async def test_help_says_what_a_server_is_here_and_where_files_are_saved(db, counting, tmp_path):
    # The console's /help was Discord's and Telegram's: "This server's (or group's) playlist", with
    # no server or group in a terminal, and /export "Download…" a file it saves under DATA_DIR.
    out = await chat(db, counting, tmp_path, ["/help", "/quit"])
    assert "server's" not in out and "group's" not in out and "Download" not in out, out
    assert "/playlist <happy|energetic|sad|calm> – The playlist for a mood of the songs asked about in this console" in out
    assert "/serverplaylist on|off – Turn this console's playlists and mood of the week on or off" in out
    assert f"/export – Save everything stored about you as a JSON file in {tmp_path / 'exports'}" in out
    assert f"saved as pictures in {tmp_path / 'charts'}" in out


async def test_a_time_zone_may_be_typed_with_a_space(db, counting, tmp_path):
    out = await chat(db, counting, tmp_path, ["/journal on 07:15 America/New York", "/quit"])
    assert "Journal on: every day at 07:15 (America/New_York)" in out


async def test_end_of_input_ends_the_session_cleanly(db, counting, tmp_path):
    out = await chat(db, counting, tmp_path, ["/servermood"])  # no /quit: stdin just ends
    assert "No song was classified or journaled here in the last 7 days." in out, out


def moodbot_processes(marker: str) -> list[str]:
    """Command lines of live processes that mention `marker` (our temp DATA_DIR)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                # As the OS names it: another process (a test's Latin-1 file name) may not be UTF-8.
                cmdline = os.fsdecode((proc / "cmdline").read_bytes().replace(b"\0", b" "))
            except OSError:
                continue
            if marker in cmdline:
                found.append(cmdline)
    return found


def console_env(data_dir) -> dict[str, str]:
    """`python -m bot`'s environment for the console on the embedded database: no tokens, no
    MONGODB_URI, its data in `data_dir`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MONGODB_URI", "TELEGRAM_TOKEN", "DISCORD_TOKEN", "SPOTIFY_CLIENT_ID")}
    env.update(DATA_DIR=str(data_dir), PYTHONPATH=str(REPO))
    return env


def test_moodbot_processes_reads_past_a_command_line_that_is_not_utf8(tmp_path):
    """Other xdist workers run programs on Latin-1 file names (b"caf\\xe9.ogg"): the scan of /proc
    raised UnicodeDecodeError at such a process, failing whichever test was checking then."""
    marker = str(tmp_path / "marker")
    latin1 = b"caf\xe9"
    waits = [sys.executable, "-c", "import time; time.sleep(60)"]
    other = subprocess.Popen([*waits, latin1])
    mine = subprocess.Popen([*waits, os.fsencode(marker) + b"/" + latin1])
    try:
        # Popen returns when exec closed its pipe, which the kernel does before it sets the new
        # command line: until then /proc shows an empty one.
        deadline = time.monotonic() + 30
        while not all(latin1 in Path(f"/proc/{proc.pid}/cmdline").read_bytes() for proc in (other, mine)):
            assert time.monotonic() < deadline, "the two programs did not start"
            time.sleep(0.01)
        assert moodbot_processes(marker) == [" ".join([*waits, f"{marker}/{os.fsdecode(latin1)} "])]
    finally:
        for proc in (other, mine):
            proc.kill()
            proc.wait()


def test_a_bot_started_outside_the_folder_of_its_env_file_says_where_env_is_read(tmp_path):
    """A systemd unit with no WorkingDirectory runs in /, away from the .env that holds the tokens:
    the console ran, and said only that no DISCORD_TOKEN or TELEGRAM_TOKEN was set, which the
    operator had set, in .env."""
    (tmp_path / "moodbot").mkdir()
    (tmp_path / "moodbot" / ".env").write_text("TELEGRAM_TOKEN=123456:TEST-token\n")
    (tmp_path / "elsewhere").mkdir()
    result = subprocess.run([sys.executable, "-m", "bot"], input="/quit\n", capture_output=True, text=True,
                            cwd=tmp_path / "elsewhere", env=console_env(tmp_path / "data"), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "moodbot: no DISCORD_TOKEN or TELEGRAM_TOKEN is set (in the environment, or in .env in the current "
        "folder), so the console front-end runs and reads its commands from standard input."], result.stderr


def test_python_m_bot_prints_the_commands_and_exits_cleanly(tmp_path):
    data_dir = tmp_path / "data"
    env = console_env(data_dir)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "bot"], input="/help\n/quit\n", capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=120)
    elapsed = time.monotonic() - started

    assert result.returncode == 0, result.stderr
    assert "/mood <song | Spotify link | YouTube link | path/to/song.mp3>" in result.stdout
    assert "/forget" in result.stdout
    assert result.stdout.rstrip().endswith("Bye!")
    # Not a terminal (a pipe here; in a container without tokens, nothing): it says why a console runs.
    assert result.stderr.splitlines() == [NO_TOKENS_NOTICE]
    assert (data_dir / "db").is_dir()  # the embedded database lived under DATA_DIR
    # A folder the bot made holds journals in plain files: the bot's user's alone (the umask left
    # it, and the database's folder, readable by every local user).
    assert [oct(stat.S_IMODE(d.stat().st_mode)) for d in (data_dir, data_dir / "db")] == ["0o700", "0o700"]
    log = (data_dir / "moodbot.log").read_text()
    assert "event=app.started" in log and "event=app.stopping" in log, log
    # No failure of ours, no task left dangling (the model may legitimately log that its weights are missing).
    assert "level=ERROR logger=bot" not in log and "logger=asyncio" not in log and "Traceback" not in log, log
    assert moodbot_processes(str(data_dir)) == []  # the embedded server was stopped
    assert elapsed < 60


def test_a_secantusd_toml_in_the_working_folder_does_not_change_the_embedded_database(tmp_path):
    """secantusd-py reads ./secantusd.toml (then the home's, /etc's) when given no configuration:
    one with auth on failed the start with "The database could not complete that"."""
    (tmp_path / "secantusd.toml").write_text("[server]\nauth = true\n")
    result = subprocess.run([sys.executable, "-m", "bot"], input="/journal on 21:30 Europe/Lisbon\n/quit\n",
                            capture_output=True, text=True, cwd=tmp_path, env=console_env(tmp_path / "data"),
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Journal on: every day at 21:30" in result.stdout


def test_a_refused_database_login_stops_the_start_with_what_to_fix(tmp_path, mongo_uri):
    from tests.conftest import MONGO_PASSWORD

    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN", "SPOTIFY_CLIENT_ID")}
    env.update(DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO),
               MONGODB_URI=mongo_uri.replace(quote_plus(MONGO_PASSWORD), "Wrong-SENTINEL-pw"))
    result = subprocess.run([sys.executable, "-m", "bot"], input="/quit\n", capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 1
    assert "moodbot could not start: The database refused moodbot's login: check the user and password " \
           "in MONGODB_URI." in result.stderr, result.stderr
    log = (tmp_path / "data" / "moodbot.log").read_text()
    assert "event=app.failed" in log and "Wrong-SENTINEL-pw" not in log + result.stderr  # redacted


@pytest.mark.parametrize("setting, value, says", [
    ("MAX_AUDIO_BYTES", "abc", "MAX_AUDIO_BYTES: Input should be a valid integer"),
    ("MOOD_RATE_PER_USER", "0", "MOOD_RATE_PER_USER: Input should be greater than or equal to 1"),
    ("INFERENCE_WORKERS", "100000", "INFERENCE_WORKERS: Input should be less than or equal to 256"),
    ("AUDIO_SEARCH", "ytsearch5:{artist} - {title}", "AUDIO_SEARCH: unknown placeholder {artist}"),
    ("AUDIO_SEARCH", "https://{title}.example/a.ogg", "AUDIO_SEARCH: a placeholder in the host"),
    ("AUDIO_SEARCH", "{artists} - {title}", "AUDIO_SEARCH: neither a http(s) URL template nor"),
    ("LOG_LEVEL", "LOUD", "LOG_LEVEL: 'LOUD' is not one of DEBUG, INFO"),
    ("DATA_DIR", "a-file", "DATA_DIR a-file ("),  # then the folder it stands for (test_app)
    ("INFERENCE_EXECUTOR", "dask:/scheduler:8786", "INFERENCE_EXECUTOR: neither 'process' nor"),
    ("INFERENCE_EXECUTOR", "dask://", "INFERENCE_EXECUTOR: neither 'process' nor"),
    # no port: Dask's client refused it at every connection, the ANN answering until a restart
    ("INFERENCE_EXECUTOR", "dask://scheduler", "INFERENCE_EXECUTOR: neither 'process' nor"),
    ("INFERENCE_EXECUTOR", "dask://scheduler:99999", "INFERENCE_EXECUTOR: neither 'process' nor"),
    # no timeout at all: a hung decoder held its worker, and its user's answer, for ever
    ("INFERENCE_TIMEOUT_S", "inf", "INFERENCE_TIMEOUT_S: Input should be a finite number"),
    # No scheme: Discord's failed the start naming no setting; Spotify's, every /mood later on.
    ("DISCORD_API_URL", "discord.com/api/v10", "DISCORD_API_URL: not a http(s) URL"),
    ("SPOTIFY_AUTH_URL", "accounts.spotify.com/api/token", "SPOTIFY_AUTH_URL: not a http(s) URL"),
    ("DISCORD_GATEWAY_URL", "https://gateway.discord.gg", "DISCORD_GATEWAY_URL: not a ws(s) URL"),
])
def test_a_bad_setting_stops_the_start_with_one_line_naming_it(tmp_path, setting, value, says):
    (tmp_path / "a-file").write_text("not a folder")
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN")}
    env.update({"DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(REPO), setting: value})
    result = subprocess.run([sys.executable, "-m", "bot"], input="/quit\n", capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 2 and result.stderr.startswith(f"moodbot could not start: {says}"), result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1


def test_a_wrong_log_level_option_is_named_as_the_option_not_the_setting(tmp_path):
    """`python -m bot --log-level verbose` with no LOG_LEVEL set was refused as "LOG_LEVEL: 'VERBOSE'
    is not one of…": the operator was sent to a variable nobody had set."""
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN", "LOG_LEVEL")}
    env.update({"DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(REPO)})
    result = subprocess.run([sys.executable, "-m", "bot", "--log-level", "verbose"], input="/quit\n",
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr == ("moodbot could not start: --log-level: 'VERBOSE' is not one of DEBUG, INFO, "
                             "WARNING, ERROR, CRITICAL\n"), result.stderr


def test_the_bots_own_process_imports_neither_yt_dlp_nor_scipy_to_answer_a_song(tmp_path, mongo_uri, db_name,
                                                                              shared_data):
    """The bot's process hands links to its download workers and songs to its inference workers.
    It imported yt-dlp (~0.45 CPU-s) and scipy's FFT (~0.4 CPU-s) at every start all the same:
    most of what a start cost it, in time and memory, for modules only the workers use."""
    env = console_env(tmp_path / "data")
    env.update(MONGODB_URI=mongo_uri, MONGODB_DATABASE=db_name)
    watched = ("yt_dlp", "scipy")
    script = ("import atexit, runpy, sys; atexit.register(lambda: print('imported:', sorted(m for m in "
              f"{watched!r} if m in sys.modules), file=sys.stderr)); runpy.run_module('bot', run_name='__main__')")
    clip = shared_data / "audio" / "MT0000004637.ogg"
    result = subprocess.run([sys.executable, "-c", script], input=f"/mood {clip}\n/quit\n", capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Mood: 😢 sad\nValence" in result.stdout, result.stdout  # classified by the main model, in its workers
    assert result.stderr.splitlines()[-1] == "imported: []", result.stderr


def test_a_dask_scheduler_without_dasks_client_installed_stops_the_start_with_what_to_install(tmp_path):
    """`make run` and the image installed no Dask: INFERENCE_EXECUTOR=dask://… passed the settings
    and failed the start with "No module named 'distributed'" (the check said the check failed)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN")}
    env.update(DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO), INFERENCE_EXECUTOR="dask://127.0.0.1:8786")
    without_dask = "import runpy, sys; sys.modules['distributed'] = None; runpy.run_module('bot', run_name='__main__')"
    result = subprocess.run([sys.executable, "-c", without_dask], input="/quit\n", capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    # Not "pip install 'moodbot[dask]'": moodbot is no package of PyPI's, and its pip may not be PATH's.
    assert result.stderr == ("moodbot could not start: INFERENCE_EXECUTOR: a Dask scheduler needs "
                             f"Dask's client: {sys.executable} -m pip install -e '.[dask]' in moodbot's folder "
                             "(got 'dask://127.0.0.1:8786')\n")


@pytest.mark.parametrize("database", ["embedded", "MONGODB_URI"])
def test_a_data_dir_moodbot_cannot_write_to_stops_the_start_with_one_line_naming_it(tmp_path, mongo_uri, database):
    """A DATA_DIR that exists, holds a previous start's files, and is read-only to the bot's user (a
    volume made by root, then an image that runs as another user). The start read the log salt and
    went on: the embedded database failed with a traceback and "Permission denied: '…/db'"; with
    MONGODB_URI it served without a heartbeat (`--alive` said it was down) nor an outbox."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / ".log-salt").write_text("0123456789abcdef")
    data_dir.chmod(0o555)
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "MONGODB_URI")}
    env.update(DATA_DIR=str(data_dir), PYTHONPATH=str(REPO), TELEGRAM_API_URL="http://127.0.0.1:9/bot")
    if database == "MONGODB_URI":
        env["MONGODB_URI"] = mongo_uri
    try:
        result = subprocess.run([sys.executable, "-m", "bot"], input="/quit\n", capture_output=True, text=True,
                                cwd=tmp_path, env=env, timeout=120, preexec_fn=bound_by_file_modes)
    finally:
        data_dir.chmod(0o755)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"moodbot could not start: DATA_DIR {data_dir} is not a folder moodbot can write to "
                             f"(Permission denied): create it, or give {MOODBOTS_USER} the right to write there\n")


def test_a_data_dir_written_from_the_home_folder_is_there_not_in_a_folder_named_tilde(tmp_path, monkeypatch):
    """DATA_DIR=~/moodbot-data in .env (or a systemd unit), where no shell reads the '~': the
    journal went into a folder named '~' in the working folder, which an 'rm -rf ~' would then
    take for the home folder."""
    from bot.config import Settings

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".env").write_text("DATA_DIR=~/moodbot-data\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATA_DIR", raising=False)
    assert Settings().data_dir == tmp_path / "moodbot-data"


def test_a_data_dir_that_is_a_file_is_said_to_be_a_file_not_to_be_created(tmp_path):
    """DATA_DIR naming a file was "not a folder moodbot can write to (File exists): create it", of
    a path that exists, which the operator could not create."""
    from bot.config import data_dir_problem

    (tmp_path / "data").write_text("not a folder")
    assert data_dir_problem(tmp_path / "data") == (f"DATA_DIR {tmp_path / 'data'} is not a folder moodbot can write "
                                                   "to (it is a file): point DATA_DIR at a folder, or move the file away")


def test_a_file_the_user_may_not_read_is_said_so_not_an_error_on_the_bots_side(tmp_path, clip_paths):
    """A song copied from another account, or off a disk mounted for another user: the file is
    there, but its mode refuses this user. /mood and a journal answer said "something went wrong on
    my side… try again in a moment", which would fail the same way each time."""
    import shutil

    song = tmp_path / "from a backup.ogg"
    shutil.copy(clip_paths[0], song)
    song.chmod(0o000)
    lines = [f"/mood {song}", "/journal on 21:30 Europe/Lisbon", "/journal prompt",
             f"/journal answer {song} on the bus", f"/journal answer '{song}'", "/quit"]
    result = subprocess.run([sys.executable, "-m", "bot"], input="\n".join(lines) + "\n", capture_output=True,
                            text=True, cwd=tmp_path, env=console_env(tmp_path / "data"), timeout=120,
                            preexec_fn=bound_by_file_modes)
    assert result.returncode == 0, result.stderr
    assert "went wrong on my side" not in result.stdout, result.stdout  # a prompt may say "went wrong"
    assert result.stdout.count(f"I can't open {song}: Permission denied.") == 3
    assert "Listening" not in result.stdout and "Saved to your journal" not in result.stdout


def test_a_dotenv_file_that_is_not_utf8_stops_the_start_with_one_line_naming_it(tmp_path):
    # PowerShell's `"TELEGRAM_TOKEN=…" > .env` writes UTF-16.
    (tmp_path / ".env").write_text("LOG_LEVEL=DEBUG\n", encoding="utf-16")
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN")}
    env.update(DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO))
    for args in ([], ["--check"]):
        result = subprocess.run([sys.executable, "-m", "bot", *args], input="/quit\n", capture_output=True,
                                text=True, cwd=tmp_path, env=env, timeout=120)
        said = result.stderr if not args else result.stdout.splitlines()[0]
        assert "Traceback" not in result.stderr, result.stderr
        assert ".env is not UTF-8 text: save it again as UTF-8" in said, said
        assert result.returncode == (1 if args else 2)
    assert "moodbot --check: 1 FAILed" in result.stdout  # the settings; the checks that need them are skipped


def test_a_misspelt_setting_is_said_at_start_and_the_bot_still_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN", "MONGODB_URI")}
    env.update(DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO), MONGODB_URL="mongodb://db.example:27017")
    (tmp_path / ".env").write_text("spotify_client_secert=abc\nMONGO_PASSWORD=for-compose\n")
    result = subprocess.run([sys.executable, "-m", "bot"], input="/quit\n", capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "moodbot: MONGODB_URL is not a setting moodbot reads (did you mean MONGODB_URI?); it is ignored.",
        "moodbot: SPOTIFY_CLIENT_SECERT is not a setting moodbot reads (did you mean SPOTIFY_CLIENT_SECRET?); "
        "it is ignored.",
        NO_TOKENS_NOTICE,
    ]
    assert "settings.unknown: MONGODB_URL" in (tmp_path / "data" / "moodbot.log").read_text()


@pytest.mark.parametrize("name, said", [
    ("MONGODB_URL", "MONGODB_URL is not a setting moodbot reads (did you mean MONGODB_URI?); it is ignored"),
    ("telegram_tokn", "TELEGRAM_TOKN is not a setting moodbot reads (did you mean TELEGRAM_TOKEN?); it is ignored"),
    ("LOG_LEVLE", "LOG_LEVEL"),
    ("SPOTIFY_REDIRECT_URI", "SPOTIFY_REDIRECT_URI is not a setting moodbot reads"),
    ("MONGODB_URI", None), ("log_level", None), ("PATH", None), ("LOGNAME", None), ("MONGO_PASSWORD", None),
])
def test_only_names_that_look_like_a_setting_are_said(name, said):
    from bot.config import unread_settings

    found = unread_settings({name: "x", "HOME": "/root", "DATA_HOME": "/x"}, env_file=None)
    assert (found == []) if said is None else (len(found) == 1 and said in found[0]), found


async def test_a_rejected_telegram_token_is_not_printed(tmp_path, mongo_uri):
    import asyncio

    from tests.fakes.telegram_api import FakeTelegramBotAPI

    fake = await FakeTelegramBotAPI().start()
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "SPOTIFY_CLIENT_ID")}
        env.update(DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO), MONGODB_URI=mongo_uri,
                   TELEGRAM_TOKEN="654321:SENTINEL-not-the-fakes-token", TELEGRAM_API_URL=fake.base_url,
                   TELEGRAM_FILE_URL=fake.base_file_url)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, cwd=tmp_path, env=env)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        await fake.stop()
    stderr = err.decode()
    host = fake.base_url.split("://", 1)[1].split("/", 1)[0]
    assert proc.returncode == 1, stderr
    # Which platform, and which setting: with both tokens set, "the token" alone says neither.
    assert stderr.splitlines()[-1] == (f"moodbot could not start: Telegram rejected the token at {host}: "
                                       "check TELEGRAM_TOKEN."), stderr
    assert "SENTINEL" not in stderr + out.decode()
    assert "Unclosed client session" not in stderr  # the failed start closed its HTTP sessions


@pytest.mark.parametrize("uri", [
    "mongodb://moodbot:Sentinel-PW@127.0.0.1:{port}/?retryWrites=false",
    "127.0.0.1:{port}",  # hosts alone carry no secret: the host is named, not "[REDACTED]"
])
def test_an_unreachable_database_is_named_with_the_setting_to_check(tmp_path, uri):
    from tests.dbserver import free_port

    uri = uri.format(port=free_port())  # nothing listens there
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN")}
    env.update(DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO), MONGODB_URI=uri)
    result = subprocess.run([sys.executable, "-m", "bot"], input="/quit\n", capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 1
    host = uri.split("@")[-1].split("/")[0]
    assert f"Check MONGODB_URI: the server at {host} must be reachable from here." in result.stderr, result.stderr
    assert "Sentinel-PW" not in result.stderr and "mongodb://" not in result.stderr  # nor the whole URI


@pytest.mark.parametrize("options, said", [
    ("replSet=rs0", "its option replSet is not one the MongoDB driver knows (did you mean replicaset?)"),
    ("retryWrites=false&tls=yes", "its option tls: The value of tls must be 'true' or 'false'"),
    ("w=1&w=majority", "Duplicate URI option 'w'"),
])
def test_a_uri_option_the_driver_would_drop_is_the_one_line_that_stops_the_start(tmp_path, options, said):
    """pymongo only warns (a UserWarning on stderr, without the option's name) and connects
    without the option: "tls=yes" would have connected without TLS. A wrong value: exit status 2
    (it was 1, where docs/running.md says 2 of every one)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN")}
    env.update(DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO),
               MONGODB_URI=f"mongodb://moodbot:Sentinel-PW@127.0.0.1:27017/?{options}")
    result = subprocess.run([sys.executable, "-m", "bot"], stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 2
    refused = f"moodbot could not start: MONGODB_URI cannot be used: {said}."
    assert result.stderr.splitlines() == [NO_TOKENS_NOTICE, refused], result.stderr


@pytest.mark.parametrize("database", [None, "journal"])
def test_a_slash_left_unescaped_in_the_uris_password_is_said_so_and_the_password_not_shown(tmp_path, database):
    """A '/' in the password ends the hosts where the URI is read: the start said "the database
    'Wd@127.0.0.1:27017/' that MONGODB_URI names cannot be used: MongoDB allows no '.'", of a
    database nobody named, showing the password's tail (with MONGODB_DATABASE set, its "but
    MONGODB_URI names the database …" showed it too)."""
    env = console_env(tmp_path / "data")
    env["MONGODB_URI"] = "mongodb://moodbot:Sentinel/PWd@127.0.0.1:27017/?authSource=admin"
    if database is not None:
        env["MONGODB_DATABASE"] = database
    result = subprocess.run([sys.executable, "-m", "bot"], stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr == ("moodbot could not start: MONGODB_URI: its user or password holds a '/': "
                             "write each '/' there as %2F (and '@' as %40, ':' as %3A)\n"), result.stderr
    assert "PWd" not in result.stderr


@pytest.mark.parametrize("settings, refused", [
    ({"MONGODB_DATABASE": "my.db"}, "MONGODB_DATABASE: MongoDB allows no '.' in a database name (got 'my.db')"),
    ({"MONGODB_DATABASE": "moodbot "}, "MONGODB_DATABASE: MongoDB allows no ' ' in a database name (got 'moodbot ')"),
    ({"MONGODB_URI": "mongodb://moodbot:Sentinel-PW@127.0.0.1:27017/bad.db"},
     "MONGODB_URI: the database 'bad.db' it names cannot be used: MongoDB allows no '.' in a database name"),
])
def test_a_database_name_mongodb_refuses_is_a_wrong_setting_named_before_anything_starts(tmp_path, settings, refused):
    """A database name MongoDB refuses is a wrong value: exit status 2, as docs/running.md says of
    every one, said before the embedded database is started. It exited 1, once secantusd-py had
    been started and stopped for nothing; named by MONGODB_URI alone, it is said to come from there
    (the start said "MONGODB_DATABASE 'bad.db' cannot be used", a variable the operator had not set)."""
    env = {k: v for k, v in console_env(tmp_path / "data").items() if k != "MONGODB_DATABASE"}
    env.update(settings)
    result = subprocess.run([sys.executable, "-m", "bot"], stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, cwd=tmp_path, env=env, timeout=120)
    assert (result.returncode, result.stderr) == (2, f"moodbot could not start: {refused}\n")
    assert "Sentinel-PW" not in result.stderr
    assert not (tmp_path / "data" / "db").exists()  # no embedded database was started for it


def test_a_closed_stdin_is_the_end_of_the_console_input_said_in_one_line(tmp_path):
    """`python -m bot <&-` (a service manager that closes stdin): Python's sys.stdin is None."""
    data_dir = tmp_path / "data"
    env = console_env(data_dir)
    for flags in ("", "--console"):
        result = subprocess.run(["sh", "-c", f'exec "$0" -m bot {flags} <&-', sys.executable],
                                capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        assert STDIN_CLOSED_NOTICE in result.stderr.splitlines(), result.stderr
        assert "Traceback" not in result.stderr and "Exception" not in result.stderr, result.stderr
        assert "Traceback" not in (data_dir / "moodbot.log").read_text()
    assert moodbot_processes(str(data_dir)) == []


def test_a_closed_stdout_is_refused_by_the_console_in_one_line(tmp_path):
    """`python -m bot >&-`: Python's sys.stdout is None, and the console ended with "moodbot
    stopped: 'NoneType' object has no attribute 'flush'". It has nowhere to write its replies."""
    data_dir = tmp_path / "data"
    env = console_env(data_dir)
    for flags in ("", "--console"):
        result = subprocess.run(["sh", "-c", f'exec "$0" -m bot {flags} >&-', sys.executable],
                                stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                                env=env, timeout=120)
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines() == [f"moodbot could not start: {STDOUT_CLOSED}"], result.stderr
    assert moodbot_processes(str(data_dir)) == []


def test_python_m_bot_help():
    result = subprocess.run([sys.executable, "-m", "bot", "--help"], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0
    assert "--console" in result.stdout and "--log-level" in result.stdout


# SIGTERM (a service manager's stop) is a clean end, 0; Ctrl-C ends it as a shell reports an
# interrupted command, 128 + SIGINT.
@pytest.mark.parametrize("sent, status", [(signal.SIGTERM, 0), (signal.SIGINT, 128 + signal.SIGINT)])
def test_a_signal_stops_the_bot_cleanly_while_it_waits_for_input(tmp_path, sent, status):
    data_dir = tmp_path / "data"
    env = console_env(data_dir)
    proc = subprocess.Popen([sys.executable, "-m", "bot"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    try:
        assert proc.stdout.readline().startswith("moodbot console")  # up, and waiting for the user
        proc.send_signal(sent)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, err
    assert not any(word in err for word in ("Fatal", "Traceback", "KeyboardInterrupt")), err
    assert "event=app.stopping" in (data_dir / "moodbot.log").read_text()
    assert moodbot_processes(str(data_dir)) == []


def test_the_first_mood_waits_for_the_model_to_warm_up(tmp_path, clip_paths):
    """The console answers at once while the classifier warms up in the background; the first
    /mood simply waits for it (shipped weights, the embedded database, a real 4Q clip)."""
    data_dir = tmp_path / "data"
    env = console_env(data_dir)
    result = subprocess.run([sys.executable, "-m", "bot"], input=f"/mood {clip_paths[0]}\n/quit\n",
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "… Listening…" in result.stdout and f"🎵 {clip_paths[0].stem}\nMood: " in result.stdout, result.stdout
    assert moodbot_processes(str(data_dir)) == []


def test_two_charts_made_in_the_same_second_are_two_files(tmp_path):
    """/servermood twice within a second: the second chart is saved beside the first, not over it."""
    from datetime import datetime, timezone

    from bot.replies import Chart, ServerMoodReply

    out = io.StringIO()
    same_second = datetime(2026, 11, 27, 20, 0, 5, tzinfo=timezone.utc)
    console = ConsoleFrontend(usecases=None, stdin=io.StringIO(), stdout=out, data_dir=tmp_path,
                              now=lambda: same_second)
    counts = {"happy": 0, "energetic": 0, "sad": 1, "calm": 0}
    for png in (b"first chart", b"second chart"):
        console.show(ServerMoodReply("sad", counts, Chart("server-mood.png", png)))

    charts = sorted((tmp_path / "charts").iterdir())
    assert sorted(p.read_bytes() for p in charts) == [b"first chart", b"second chart"]
    assert all(p.name.startswith("20261127-200005-server-mood") and p.suffix == ".png" for p in charts)
    assert all(str(p.resolve()) in out.getvalue() for p in charts)


async def test_an_export_or_chart_that_cannot_be_saved_says_where_and_why(db, counting, clip_paths, tmp_path):
    # A full disk, or a folder the console saves in that is not one: said with the folder and the
    # reason, not as "something went wrong, try again in a minute" (it will go wrong again).
    (tmp_path / "exports").write_bytes(b"")
    (tmp_path / "charts").write_bytes(b"")
    out = await chat(db, counting, tmp_path, [f"/mood {clip_paths[0]}", "/export", "/servermood", "/quit"])
    assert f"I couldn't save the export in {tmp_path}/exports: that is a file, not a folder." in out, out
    assert f"I couldn't save the chart in {tmp_path}/charts: that is a file, not a folder." in out
    assert "This week's mood here" in out and "This week's mood: " in out  # the chart's words, still said
    assert "went wrong on my side" not in out and out.rstrip().endswith("Bye!")


async def test_a_file_then_words_is_told_that_mood_hears_the_file_alone_not_one_file_at_a_time(db, counting, clip_paths,
                                                                                                tmp_path):
    # One file, and a remark after it: "One file at a time, please" was said, of one file.
    out = await chat(db, counting, tmp_path, [f"/mood {clip_paths[0]} is great", f"/mood '{clip_paths[0]}' on the bus",
                                              "/quit"])
    assert "One file at a time" not in out, out
    assert out.count("/mood hears a file alone, with nothing after it: /mood <path>. Your own words go with a song "
                     "in your journal: /journal answer <song> [your words]") == 2
    assert "Finding" not in out and counting.calls == []


async def test_the_console_deletes_a_wrong_answer_and_takes_the_prompt_again(db, counting, clip_paths, tmp_path):
    """The wrong song for today's prompt: /journal delete last, and /journal answer files the right one."""
    from tests.prompt_times import FAR_IN_LISBON_TEXT

    wrong, right = clip_paths[0], clip_paths[1]
    out = await chat(db, counting, tmp_path, [
        f"/journal on {FAR_IN_LISBON_TEXT} Europe/Lisbon", "/journal prompt",
        f"/journal answer {wrong} oops", f"/journal answer {right} the one I meant",
        "/journal delete last", f"/journal answer {right} the one I meant", "/journal list",
        "/journal delete 2020-01-01", "/journal delete someday", "/journal delete", "/quit"])

    assert out.count("Saved to your journal") == 2
    assert "You've already answered that prompt" in out and "Delete that entry first: /journal delete 20" in out
    deleted = next(line for line in out.splitlines() if line.startswith("Deleted from your journal: "))
    assert wrong.stem in deleted and deleted.endswith("– oops")
    assert "The prompt it answered is open again: answer it with another song." in out
    listed = out[out.index("Your journal (1 of 1):"):]
    assert "the one I meant" in listed.splitlines()[1] and "oops" not in listed
    assert "Your journal starts on 20" in out and ": there's no entry dated 2020-01-01." in out
    assert "“someday” isn't a date I can read" in out
    assert "Tell me which entry to delete: /journal delete last (your newest)" in out
    assert await db.journal.count(UserRef("console", "local")) == 1
