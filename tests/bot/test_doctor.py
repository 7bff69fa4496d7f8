"""`python -m bot --check` tells an operator why moodbot does not work, one line a check, and
`python -m bot --alive` whether a running bot's event loop still turns (the Docker HEALTHCHECK).

Against the real clients and the local fakes: Telegram, Discord and Spotify over HTTP, SecantusDB
over the wire, the shipped weights in a real worker pool."""
from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import quote_plus

import pytest
import pytest_asyncio

from bot.config import Settings
from bot.doctor import (DB_TIMEOUT_S, FAIL, NOTE, OK, SKIP, Finding, check_cjk_font, check_database, check_discord,
                        check_js_runtime, check_models, check_spotify, check_telegram, exit_status)
from bot.health import heartbeat, heartbeat_path, liveness
from inference.pool import DEFAULT_WEIGHTS_DIR
from tests.conftest import MONGO_PASSWORD
from tests.dbserver import free_port
from tests.permissions import MOODBOTS_USER
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.spotify_api import FakeSpotify
from tests.fakes.telegram_api import BOT_USERNAME, FakeTelegramBotAPI

REPO = Path(__file__).resolve().parents[2]
TELEGRAM_TOKEN = "123456:TEST-token"
DISCORD_TOKEN = "discord-test-token"
# Settings a test gives itself; the suite's sentinel tokens in the environment are not wanted here.
OURS = ("TELEGRAM_", "DISCORD_", "SPOTIFY_", "MONGODB_", "DATA_DIR", "INFERENCE_", "LOG_LEVEL")


@pytest_asyncio.fixture(loop_scope="session")  # tests/bot's tests all run on the session's loop
async def fakes():
    telegram = await FakeTelegramBotAPI(TELEGRAM_TOKEN).start()
    discord = await FakeDiscord(token=DISCORD_TOKEN).start()
    spotify = FakeSpotify().start()
    yield telegram, discord, spotify
    spotify.stop()
    await discord.stop()
    await telegram.stop()


def env_for(fakes, mongo_uri: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    telegram, discord, spotify = fakes
    env = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    env.update(PYTHONPATH=str(REPO), DATA_DIR=str(data_dir), MONGODB_URI=mongo_uri,
               TELEGRAM_TOKEN=TELEGRAM_TOKEN, TELEGRAM_API_URL=telegram.base_url,
               TELEGRAM_FILE_URL=telegram.base_file_url,
               DISCORD_TOKEN=DISCORD_TOKEN, DISCORD_API_URL=discord.api_url,
               SPOTIFY_CLIENT_ID=spotify.client_id, SPOTIFY_CLIENT_SECRET=spotify.client_secret,
               SPOTIFY_API_URL=spotify.api_url, SPOTIFY_AUTH_URL=spotify.auth_url)
    env.update(overrides)
    return env


async def moodbot(*args: str, env: dict[str, str], cwd: Path, timeout: float = 240) -> tuple[int, str, str]:
    """`python -m bot ARGS` as an operator runs it; the fakes keep serving from this loop meanwhile."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", *args, env=env, cwd=cwd,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


def lines_of(stdout: str) -> dict[str, str]:
    """{"telegram": "OK    telegram  @moodbot_test_bot ...", ...}"""
    return {line.split()[1]: line for line in stdout.splitlines()
            if line.split()[:1] in (["OK"], ["FAIL"], ["SKIP"], ["NOTE"])}


def settings_for(fakes, **values) -> Settings:
    telegram, discord, spotify = fakes
    return Settings(_env_file=None, **{
        "telegram_token": TELEGRAM_TOKEN, "telegram_api_url": telegram.base_url,
        "telegram_file_url": telegram.base_file_url, "discord_token": DISCORD_TOKEN,
        "discord_api_url": discord.api_url, "spotify_client_id": spotify.client_id,
        "spotify_client_secret": spotify.client_secret, "spotify_api_url": spotify.api_url,
        "spotify_auth_url": spotify.auth_url, **values})


# --- --check ------------------------------------------------------------------------------------

async def test_everything_in_order_prints_an_ok_line_each_and_exits_0(fakes, mongo_uri, db_name, tmp_path):
    telegram, discord, spotify = fakes
    env = env_for(fakes, mongo_uri, tmp_path / "data", MONGODB_DATABASE=db_name)

    status, out, err = await moodbot("--check", env=env, cwd=tmp_path)

    assert status == 0, out + err
    lines = lines_of(out)
    assert set(lines) == {"settings", "data", "database", "ffmpeg", "yt-dlp", "youtube", "fonts", "models", "telegram", "discord",
                          "spotify"}
    assert all(line.startswith("OK") for line in lines.values()), out
    assert f"@{BOT_USERNAME}" in lines["telegram"]
    assert "moodbot" in lines["discord"] and "127.0.0.1" in lines["discord"]
    assert "version" in lines["database"] and "127.0.0.1" in lines["database"]
    assert "main model" in lines["models"] and "12 s test signal" in lines["models"]
    # Each asked at its configured address, with the configured token.
    assert telegram.calls_of("getMe") and discord.calls_of("get_me")[-1].status == 200
    assert spotify.token_requests() and spotify.api_requests()
    assert MONGO_PASSWORD not in out + err and "SENTINEL" not in out + err
    assert "Traceback" not in err


async def test_a_rejected_telegram_token_is_one_fail_line_and_exit_1(fakes, mongo_uri, db_name, tmp_path):
    env = env_for(fakes, mongo_uri, tmp_path / "data", MONGODB_DATABASE=db_name, TELEGRAM_TOKEN="123456:WRONG-token")

    status, out, err = await moodbot("--check", env=env, cwd=tmp_path)

    assert status == 1, out + err
    fails = [line for line in lines_of(out).values() if line.startswith("FAIL")]
    assert fails == [lines_of(out)["telegram"]]
    assert "token rejected" in fails[0] and "401" in fails[0] and "TELEGRAM_TOKEN" in fails[0]
    assert "WRONG-token" not in out + err


async def test_rejected_discord_and_spotify_credentials_fail_naming_what_to_fix(fakes):
    discord = await check_discord(settings_for(fakes, discord_token="another-token"))
    spotify = await check_spotify(settings_for(fakes, spotify_client_secret="not-the-secret"))

    assert discord.status == FAIL and "token rejected" in discord.detail and "DISCORD_TOKEN" in discord.detail
    assert fakes[1].calls_of("get_me")[-1].status == 401
    assert spotify.status == FAIL and "invalid_client" in spotify.detail and "SPOTIFY_CLIENT_SECRET" in spotify.detail
    assert exit_status([discord, spotify]) == 1


async def test_a_spotify_refusing_the_app_is_one_line_of_its_words_and_what_to_do_not_the_request_url(fakes):
    """Spotify's 403 to a Development Mode app whose owner has no Premium (its rule since
    2026-03-09): the check printed spotipy's text whole, "http status: 403, code: -1 - https://…
    /v1/search?q=moodbot&limit=1&type=track:\n Active premium …", the request's URL included and
    nothing to do; it is Spotify's words and the dashboard to check, as the bot's log says it."""
    spotify = fakes[2]
    premium = "Active premium subscription required for the owner of the app"
    spotify.fail_next(403, message=premium)
    refused = await check_spotify(settings_for(fakes))
    spotify.fail_next(500, message="Server error")
    failed = await check_spotify(settings_for(fakes))
    spotify.fail_next(404, message="Service not found")
    elsewhere = await check_spotify(settings_for(fakes))

    api_host = f"127.0.0.1:{spotify.port}"
    assert (refused.status, refused.detail) == (
        FAIL, f"{api_host} answered 403 ({premium}): check the app of SPOTIFY_CLIENT_ID at "
              "https://developer.spotify.com/dashboard (a Development Mode app answers only while its owner has "
              "Spotify Premium)")
    assert (failed.status, failed.detail) == (FAIL, f"{api_host} answered 500 (Server error): try again later")
    assert (elsewhere.status, elsewhere.detail) == (
        FAIL, f"{api_host} answered 404 (Service not found): check SPOTIFY_API_URL")


async def test_a_telegram_or_discord_that_refuses_the_connection_fails_saying_what_to_check(fakes):
    port = free_port()  # nothing listens there
    telegram = await check_telegram(settings_for(fakes, telegram_api_url=f"http://127.0.0.1:{port}/bot"))
    discord = await check_discord(settings_for(fakes, discord_api_url=f"http://127.0.0.1:{port}/api/v10"))

    for found, setting in ((telegram, "TELEGRAM_API_URL"), (discord, "DISCORD_API_URL")):
        assert found.status == FAIL
        assert found.detail.startswith(f"cannot reach 127.0.0.1:{port} (Cannot connect to host"), found.detail
        assert found.detail.endswith(f"): check {setting} and the network"), found.detail


async def test_an_address_that_answers_but_is_not_the_api_fails_in_one_line_naming_the_setting(fakes):
    """A web server at DISCORD_API_URL (its /v10 left out) or a proxy's 502 before the Bot API: the
    check printed the answer whole (a web server's HTML page is many lines), naming no setting."""
    telegram, discord, _spotify = fakes
    telegram.fail_next("getMe", 100, status=502, description="Bad Gateway")
    try:
        found_telegram = await check_telegram(settings_for(fakes))
    finally:
        telegram.fail_next("getMe", 0)
    found_discord = await check_discord(settings_for(fakes, discord_api_url=discord.api_url.removesuffix("/v10")))

    assert (found_telegram.status, found_telegram.detail) == (
        FAIL, f"127.0.0.1:{telegram.port} answered Bad Gateway: check TELEGRAM_API_URL")
    assert (found_discord.status, found_discord.detail) == (
        FAIL, f"127.0.0.1:{discord.port} answered 404 Not Found: check DISCORD_API_URL")


async def test_tokens_not_given_are_skipped_as_not_configured():
    settings = Settings(_env_file=None, telegram_token=None, discord_token=None, spotify_client_id=None,
                        spotify_client_secret=None)
    found = [await check(settings) for check in (check_telegram, check_discord, check_spotify)]
    assert [f.status for f in found] == [SKIP] * 3
    assert all("not configured" in f.detail for f in found)
    assert exit_status(found) == 0


def test_a_missing_cjk_font_is_a_note_naming_the_package_not_a_failure():
    """Without it the mood map leaves off Chinese, Japanese and Korean song names, silently: the
    check says so, and what to install, but the bot works (exit 0)."""
    from bot import charts

    missing = check_cjk_font("/nonexistent/DroidSansFallback.ttf")
    assert missing.status == NOTE and missing.what == "fonts", missing
    assert missing.detail == ("no CJK font at /nonexistent/DroidSansFallback.ttf: the mood map leaves off "
                              "Chinese, Japanese and Korean song names; install it (apt-get install "
                              "fonts-droid-fallback)")
    assert missing.line.startswith("NOTE  fonts     no CJK font")
    assert exit_status([missing]) == 0
    found = check_cjk_font()
    assert (found.status, found.detail) == (OK, f"CJK song names on the mood map from {charts.CJK_FONT}")


def test_yt_dlp_without_deno_is_a_note_naming_what_to_install_not_a_failure(tmp_path):
    """yt-dlp's warning that YouTube gives fewer formats without a JavaScript runtime is never printed
    (the bot runs it quiet): the check says so; the venv's deno is found."""
    from bot.sources.audio import js_runtimes

    missing = check_js_runtime({"deno": {"path": str(tmp_path / "deno")}})
    assert missing.status == NOTE and missing.line.startswith("NOTE  youtube   no deno"), missing
    assert "pip install 'yt-dlp[default,deno]'" in missing.detail
    assert exit_status([missing]) == 0
    found = check_js_runtime()
    assert found.status == OK and found.detail.startswith("challenges solved in deno 2."), found
    assert found.detail.endswith(f"({js_runtimes()['deno']['path']})")


async def test_an_unreachable_mongodb_uri_fails_within_the_timeout(db_name):
    port = free_port()  # nothing listens there
    uri = f"mongodb://moodbot:{quote_plus(MONGO_PASSWORD)}@127.0.0.1:{port}/?serverSelectionTimeoutMS=60000"
    started = time.monotonic()

    found = await check_database(Settings(_env_file=None, mongodb_uri=uri, mongodb_database=db_name))

    assert time.monotonic() - started < DB_TIMEOUT_S + 3  # the URI's own 60 s do not hold the check up
    assert found.status == FAIL
    assert f"127.0.0.1:{port}" in found.detail and "MONGODB_URI" in found.detail
    assert MONGO_PASSWORD not in found.detail and quote_plus(MONGO_PASSWORD) not in found.detail


async def test_a_uri_option_the_driver_would_drop_fails_naming_it_not_the_network(db_name):
    uri = f"mongodb://moodbot:{quote_plus(MONGO_PASSWORD)}@127.0.0.1:{free_port()}/?replSet=rs0"

    found = await check_database(Settings(_env_file=None, mongodb_uri=uri, mongodb_database=db_name))

    assert found.status == FAIL
    assert "its option replSet" in found.detail and "reachable" not in found.detail
    assert MONGO_PASSWORD not in found.detail and quote_plus(MONGO_PASSWORD) not in found.detail


async def test_a_database_a_newer_moodbot_wrote_fails_the_check_as_the_start_would(mongo_uri, db_name):
    """The start refuses a schema version above LATEST_VERSION (storage.schema.migrate); the check
    said all was well with it."""
    from pymongo import AsyncMongoClient

    from storage.schema import LATEST_VERSION, META, SCHEMA_DOC_ID

    client = AsyncMongoClient(mongo_uri)
    try:
        await client[db_name][META].insert_one({"_id": SCHEMA_DOC_ID, "version": LATEST_VERSION + 1})
        found = await check_database(Settings(_env_file=None, mongodb_uri=mongo_uri, mongodb_database=db_name))
        assert found.status == FAIL, found
        assert f"schema version {LATEST_VERSION + 1}" in found.detail and "newer moodbot" in found.detail
        await client[db_name][META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": LATEST_VERSION}})
        found = await check_database(Settings(_env_file=None, mongodb_uri=mongo_uri, mongodb_database=db_name))
        assert found.status == OK, found
    finally:
        await client.drop_database(db_name)
        await client.close()


async def test_without_a_uri_the_embedded_database_is_started_and_stopped(tmp_path):
    data_dir = tmp_path / "data"
    found = await check_database(Settings(_env_file=None, mongodb_uri=None, data_dir=data_dir))
    assert found.status == OK and "embedded" in found.detail and "version" in found.detail

    # While a moodbot runs on this DATA_DIR it holds the database: not a failure.
    heartbeat_path(data_dir).touch()
    held = await check_database(Settings(_env_file=None, mongodb_uri=None, data_dir=data_dir))
    assert held.status == SKIP and "running" in held.detail


async def test_missing_main_weights_fail_saying_the_ann_would_answer(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    for shipped in DEFAULT_WEIGHTS_DIR.iterdir():
        if shipped.name != "main.onnx":
            (weights / shipped.name).symlink_to(shipped)

    found = await check_models(Settings(_env_file=None), weights)

    assert found.status == FAIL
    assert "main.onnx is missing" in found.detail and "fallback ANN would answer" in found.detail
    assert "ann model" in found.detail  # and it did answer the test signal


async def test_an_unreachable_dask_scheduler_fails_saying_so(monkeypatch):
    import inference.pool

    # Dask retries a refused connection until its timeout: 10 s as served, 1 s is enough here.
    monkeypatch.setattr(inference.pool, "CONNECT_TIMEOUT_S", 1.0)
    port = free_port()  # nothing listens there
    found = await check_models(Settings(_env_file=None, inference_executor=f"dask://127.0.0.1:{port}"),
                               DEFAULT_WEIGHTS_DIR)

    assert found.status == FAIL
    assert f"The Dask scheduler at tcp://127.0.0.1:{port} cannot be reached" in found.detail, found.detail
    assert "fallback ANN would answer" in found.detail


@pytest.fixture
def root_logging():
    """`main` routes the root logger to a handler on this test's captured stderr, which is closed
    after it: the handlers are put back, or later tests' log lines fail on that stream."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_a_data_dir_moodbot_cannot_write_to_fails_saying_what_to_do(tmp_path):
    """Root writes through a folder's mode 555, so as root the folder is procfs's top, where nobody
    may make a file; as any other user, a folder of mode 555. Not sysfs: a container mounts it
    read-only, which is said otherwise (test_data_dir_disk.py)."""
    from bot.doctor import check_data_dir

    read_only = Path("/proc") if os.geteuid() == 0 else tmp_path / "data"
    if read_only != Path("/proc"):
        read_only.mkdir()
        read_only.chmod(0o555)
    try:
        found = check_data_dir(Settings(_env_file=None, data_dir=read_only))
    finally:
        if read_only != Path("/proc"):
            read_only.chmod(0o755)
    assert found.status == FAIL and found.what == "data dir"
    assert found.detail.startswith(f"DATA_DIR {read_only} is not a folder moodbot can write to (")
    assert found.detail.endswith(f"): create it, or give {MOODBOTS_USER} the right to write there")


def test_a_folder_where_the_embedded_database_keeps_its_log_fails_the_data_dir_naming_it(tmp_path):
    """--check said "data dir OK … is writable" of a DATA_DIR whose secantusd.log is a folder, on
    which the start then failed with "[Errno 21] Is a directory"."""
    from bot.doctor import check_data_dir

    (tmp_path / "secantusd.log").mkdir()
    found = check_data_dir(Settings(_env_file=None, data_dir=tmp_path))
    assert (found.status, found.detail) == (
        FAIL, f"{tmp_path / 'secantusd.log'} in DATA_DIR is a folder where moodbot keeps a file: move it out of DATA_DIR")


def test_a_writable_data_dir_is_ok_and_keeps_no_probe(tmp_path):
    from bot.doctor import check_data_dir

    found = check_data_dir(Settings(_env_file=None, data_dir=tmp_path / "new" / "data"))
    assert (found.status, found.detail) == (OK, f"{(tmp_path / 'new' / 'data').resolve()} is writable")
    assert list((tmp_path / "new" / "data").iterdir()) == []


def test_a_bad_setting_is_one_fail_line_not_a_traceback(monkeypatch, capsys, tmp_path, root_logging):
    from bot.__main__ import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAX_AUDIO_BYTES", "abc")

    assert main(["--check"]) == 1

    out = capsys.readouterr().out
    assert lines_of(out)["settings"].startswith("FAIL") and "MAX_AUDIO_BYTES" in lines_of(out)["settings"]
    assert lines_of(out)["models"].startswith("SKIP")



def test_a_wrong_log_level_skips_every_later_check_by_name_data_dir_included(monkeypatch, capsys, tmp_path,
                                                                            root_logging):
    """One line per check, whatever failed first: the DATA_DIR check was left out, and the settings,
    which had parsed (LOG_LEVEL is checked after them), were said not to have."""
    from bot.__main__ import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LOG_LEVEL", "verbose")

    assert main(["--check"]) == 1

    lines = lines_of(capsys.readouterr().out)
    assert list(lines) == ["settings", "data", "database", "ffmpeg", "yt-dlp", "youtube", "fonts", "models", "telegram",
                           "discord", "spotify"]
    assert lines["settings"].startswith("FAIL") and "LOG_LEVEL" in lines["settings"]
    for what in ("data", "database", "models", "telegram", "discord", "spotify"):
        assert lines[what].startswith("SKIP") and "did not parse" not in lines[what], lines[what]


async def test_without_a_uri_a_data_dir_that_is_a_file_skips_the_database_not_a_traceback_of_it(tmp_path):
    from bot.doctor import run_checks

    data_dir = tmp_path / "data"
    data_dir.write_text("not a folder")

    found = {f.what: f for f in await run_checks(Settings(_env_file=None, mongodb_uri=None, data_dir=data_dir))}

    assert found["data dir"].status == FAIL and str(data_dir) in found["data dir"].detail
    assert found["database"].status == SKIP, found["database"]
    assert "DATA_DIR" in found["database"].detail and "the check itself failed" not in found["database"].detail



def test_check_whose_reader_left_exits_141_without_a_traceback(tmp_path):
    """`python -m bot --check | head -1`, `| grep -m1 FAIL`: the reader gone, the next line printed
    raised BrokenPipeError, a traceback and exit status 120."""
    import subprocess

    read, write = os.pipe()
    os.close(read)  # the reader has left before the first line
    env = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    env.update(PYTHONPATH=str(REPO), DATA_DIR=str(tmp_path / "data"), LOG_LEVEL="verbose")  # no check waits
    try:
        done = subprocess.run([sys.executable, "-m", "bot", "--check"], stdout=write, stderr=subprocess.PIPE,
                              cwd=tmp_path, env=env, timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr.decode()
    assert done.stderr.decode() == ""


# --- heartbeat and --alive --------------------------------------------------------------------------

async def test_the_heartbeat_goes_stale_when_the_event_loop_hangs(tmp_path):
    path = tmp_path / "heartbeat"
    async with heartbeat(path, interval_s=0.05):
        await asyncio.sleep(0.1)
        assert liveness(path, max_age_s=0.3)[0]
        time.sleep(0.5)  # a blocking call: the loop turns no more
        alive, line = liveness(path, max_age_s=0.3)
        assert not alive and "stuck" in line
        await asyncio.sleep(0.1)
        assert liveness(path, max_age_s=0.3)[0]  # turning again
    assert not path.exists()  # a stopped bot is not alive


def test_a_bot_killed_outright_is_not_alive_though_its_heartbeat_is_fresh(tmp_path):
    """kill -9 leaves the bot no way out to remove its heartbeat: --alive said "alive" for up to a
    minute after (and --check took the embedded database's lock for the running bot's)."""
    import signal
    import subprocess
    import sys

    path = tmp_path / "heartbeat"
    beating = ("import asyncio, sys\nfrom bot.health import heartbeat\n"
               "async def main():\n    async with heartbeat(__import__('pathlib').Path(sys.argv[1])):\n"
               "        print('beating', flush=True)\n        await asyncio.sleep(60)\n"
               "asyncio.run(main())\n")
    bot = subprocess.Popen([sys.executable, "-c", beating, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert bot.stdout.readline() == "beating\n"
        assert liveness(path)[0]
    finally:
        bot.send_signal(signal.SIGKILL)
        bot.wait(timeout=10)
    alive, line = liveness(path)
    assert not alive and f"(pid {bot.pid}) is no longer running" in line, line


async def test_alive_exits_0_on_a_fresh_heartbeat_and_1_on_a_stale_or_missing_one(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    env.update(PYTHONPATH=str(REPO), DATA_DIR=str(data_dir))

    status, out, err = await moodbot("--alive", env=env, cwd=tmp_path)
    assert status == 1 and "no heartbeat" in err and len(err.splitlines()) == 1

    heartbeat_path(data_dir).touch()
    status, out, _ = await moodbot("--alive", env=env, cwd=tmp_path)
    assert status == 0 and "alive" in out

    ten_minutes_ago = time.time() - 600
    os.utime(heartbeat_path(data_dir), (ten_minutes_ago, ten_minutes_ago))
    status, out, err = await moodbot("--alive", env=env, cwd=tmp_path)
    age = re.search(r"is (\d+) s old \(over 60 s\)", err)
    # 600 s, and the time the check took to start: 601 once under a loaded CI
    assert status == 1 and age and 600 <= int(age.group(1)) <= 630 and len(err.splitlines()) == 1, err


async def test_a_running_bot_is_alive_and_a_stopped_one_is_not(mongo_uri, db_name, tmp_path):
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    env.update(PYTHONPATH=str(REPO), DATA_DIR=str(data_dir), MONGODB_URI=mongo_uri, MONGODB_DATABASE=db_name)
    bot = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "--console", env=env, cwd=tmp_path,
                                               stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                                               stderr=asyncio.subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not heartbeat_path(data_dir).exists() and time.monotonic() < deadline and bot.returncode is None:
            await asyncio.sleep(0.1)
        status, out, err = await moodbot("--alive", env=env, cwd=tmp_path)
        assert status == 0, out + err

        bot.stdin.close()  # the console's input ends: the bot stops
        await asyncio.wait_for(bot.wait(), 60)
    finally:
        if bot.returncode is None:
            bot.kill()
            await bot.wait()
    assert bot.returncode == 0
    status, _, err = await moodbot("--alive", env=env, cwd=tmp_path)
    assert status == 1 and "no heartbeat" in err


# A bot in its start, as `python -m bot` is until its front-ends serve: DATA_DIR held (moodbot.pid,
# its pid inside), its embedded database up, no heartbeat written yet (the models warm for seconds).
STARTING_BOT = """
import sys
from pathlib import Path
from bot.config import hold_data_dir
from storage.embedded import EmbeddedServer

data_dir = Path(sys.argv[1])
data_dir.mkdir(parents=True, exist_ok=True)
lock = hold_data_dir(data_dir)
with EmbeddedServer(data_dir):
    print("started", flush=True)
    sys.stdin.read()
"""


async def test_a_bot_still_starting_is_seen_from_its_lock_not_met_with_a_second_database(tmp_path):
    """--check run while a bot starts (DATA_DIR held, its heartbeat not written yet) took the bot
    for stopped, started a second embedded database on DATA_DIR and FAILed with "DATA_DIR … is in
    use: another moodbot …", naming no pid. The lock file's holder is the bot: it says so."""
    import socket
    import subprocess

    data_dir = tmp_path / "data"
    settings = Settings(_env_file=None, mongodb_uri=None, data_dir=data_dir)
    bot = subprocess.Popen([sys.executable, "-c", STARTING_BOT, str(data_dir)], cwd=REPO, text=True,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert bot.stdout.readline() == "started\n"
        found = await check_database(settings)
        # A heartbeat a bot killed outright left behind (another pid): this one is still starting.
        killed = subprocess.Popen(["true"])
        killed.wait()
        heartbeat_path(data_dir).write_text(f"{killed.pid} {socket.gethostname()}\n")
        after_a_kill = await check_database(settings)
        # Its own heartbeat, ten minutes old: the bot holding DATA_DIR is stuck, not starting.
        heartbeat_path(data_dir).write_text(f"{bot.pid} {socket.gethostname()}\n")
        os.utime(heartbeat_path(data_dir), (time.time() - 600, time.time() - 600))
        stuck = await check_database(settings)
        heartbeat_path(data_dir).unlink()
    finally:
        bot.stdin.close()
        bot.wait(timeout=30)
    assert found == Finding(SKIP, "database", f"the embedded SecantusDB in {data_dir} belongs to the moodbot starting "
                                              f"now (pid {bot.pid}, holding {data_dir / 'moodbot.pid'}; no heartbeat "
                                              "yet): check again once it serves"), found
    assert after_a_kill == found, after_a_kill
    assert stuck.status == FAIL and f"holding it (pid {bot.pid}, " in stuck.detail, stuck
    assert "the event loop is stuck or the bot has died" in stuck.detail, stuck
    # Stopped, its lock file left behind: nobody holds it, and the check starts the database itself.
    assert (data_dir / "moodbot.pid").exists()
    again = await check_database(settings)
    assert again.status == OK and "embedded" in again.detail, again


def test_a_bot_starting_while_a_check_looks_at_its_lock_is_not_refused(tmp_path):
    """--check asks for DATA_DIR's lock (shared, at once) to tell whether a bot holds it, and lets
    go of it: a bot starting in that instant was refused as if another bot ran there."""
    import fcntl
    import threading

    from bot.config import LOCK_FILE, hold_data_dir

    (tmp_path / LOCK_FILE).write_text("")
    with open(tmp_path / LOCK_FILE, encoding="utf-8") as looking:  # the check, looking
        fcntl.flock(looking, fcntl.LOCK_SH | fcntl.LOCK_NB)
        threading.Timer(0.05, fcntl.flock, (looking, fcntl.LOCK_UN)).start()  # and letting go
        held = hold_data_dir(tmp_path)
    try:
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    finally:
        held.close()
