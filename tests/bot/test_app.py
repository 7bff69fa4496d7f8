"""`python -m bot` with a TELEGRAM_TOKEN: the app starts the Telegram front-end (not the console)
on the embedded database, answers a user through the real python-telegram-bot against the local
fake Bot API, never logs the token, and stops cleanly on SIGTERM. A chat platform that cannot be
reached at start is named with the setting to check, and a SIGTERM while it keeps the start
waiting stops the bot at once."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Callable

import pytest

from bot.app import PlatformStartError, start_frontend
from bot.config import Settings
from bot.frontends.discord import DiscordFrontend
from bot.usecases import build_usecases
from tests.bot.test_console import REPO, moodbot_processes
from tests.dbserver import free_port
from tests.permissions import MOODBOTS_USER
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import FakeTelegramBotAPI

TOKEN = "987654:SENTINEL-app-token"


def telegram_env(fake: FakeTelegramBotAPI, data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a `python -m bot` serving Telegram through `fake`, on the embedded
    database in `data_dir`, with no other platform or database configured."""
    env = {k: v for k, v in os.environ.items() if k not in ("MONGODB_URI", "DISCORD_TOKEN", "SPOTIFY_CLIENT_ID")}
    env.update(DATA_DIR=str(data_dir), PYTHONPATH=str(REPO), TELEGRAM_TOKEN=TOKEN,
               TELEGRAM_API_URL=fake.base_url, TELEGRAM_FILE_URL=fake.base_file_url, **settings)
    return env


async def start_bot(folder: Path, env: dict[str, str], *, stdout: bool = False,
                    under: tuple[str, ...] = ()) -> asyncio.subprocess.Process:
    """`python -m bot` run in `folder` (under a command such as `nohup`), its log written to
    folder/stderr (and its output to folder/stdout when `stdout`): files, not pipes, as a log
    nobody reads yet would fill a pipe and block the bot."""
    with open(folder / "stderr", "wb") as stderr, open(folder / "stdout" if stdout else os.devnull, "wb") as out:
        return await asyncio.create_subprocess_exec(*under, sys.executable, "-m", "bot", stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=out, stderr=stderr, cwd=folder, env=env)


async def bot_run_to_its_end(folder: Path, env: dict[str, str],
                             timeout: float) -> tuple[asyncio.subprocess.Process, bytes]:
    """`python -m bot` run in `folder` until it ends (within `timeout` seconds): it, and its stderr."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                                                cwd=folder, env=env)
    _out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc, err


async def stop_bot(proc: asyncio.subprocess.Process, timeout: float) -> None:
    """SIGTERM, so that it stops its embedded database, then a kill if it has not stopped within
    `timeout` seconds; nothing if it has ended already."""
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def test_with_a_telegram_token_the_app_serves_telegram_and_stops_on_sigterm(tmp_path):
    fake = await FakeTelegramBotAPI(TOKEN).start()
    data_dir = tmp_path / "data"
    proc = await start_bot(tmp_path, telegram_env(fake, data_dir, LOG_LEVEL="DEBUG"), stdout=True)
    try:
        await fake.wait_for("deleteWebhook", timeout=60)  # polling starts right after
        await fake.user_sends("/help", chat=4242)
        answer = await fake.wait_for("sendMessage", lambda c: c.chat_id == "4242", timeout=30)
        assert "/journal on <HH:MM> <Area/City>" in answer.text
        # Telegram answers from its start on, before the scheduler and the heartbeat have started:
        # on a loaded machine the SIGTERM came before app.started (it stopped while starting).
        await wait_for_log(tmp_path / "stderr", "event=app.started", timeout=60)

        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)
    finally:
        await stop_bot(proc, 20)
        await fake.stop()

    logs = (tmp_path / "stderr").read_text()
    stdout = (tmp_path / "stdout").read_bytes()
    assert proc.returncode == 0, logs[-3000:]
    assert b"moodbot console" not in stdout  # no console when a chat token is set
    assert "event=app.started frontends=TelegramFrontend" in logs and "event=app.stopping" in logs
    assert "SENTINEL" not in logs  # the token never reaches a log line, even at DEBUG
    assert moodbot_processes(str(data_dir)) == []
    assert not Path(data_dir / "moodbot.log").exists()  # outside the console, logs go to stderr


async def test_the_heartbeat_beats_while_the_start_sends_the_prompts_missed_during_a_restart(tmp_path, db, mongo_uri,
                                                                                             db_name):
    """A restart across a busy prompt time sends every prompt missed within 3 h before the start
    is done, paced (4 at a time, a pause after each, Telegram's own limit): thousands took minutes,
    and the heartbeat began only after them, so `--alive` said a bot that was serving was down (the
    image's HEALTHCHECK gives a start 2 minutes). It beats from the front-ends' start on."""
    from datetime import datetime, timedelta, timezone

    from bot.health import heartbeat_path, liveness
    from storage.models import User

    half_an_hour_ago = (datetime.now(timezone.utc) - timedelta(minutes=30)).time().replace(second=0, microsecond=0)
    await db.users.upsert(User("telegram", "4242", timezone="UTC", prompt_time=half_an_hour_ago,
                               journal_enabled=True, chat_id="4242"))
    fake = await FakeTelegramBotAPI(TOKEN).start()
    fake.delay_next("sendMessage", 4)  # the missed prompt: one of many, still on its way
    data_dir = tmp_path / "data"
    proc = await start_bot(tmp_path, telegram_env(fake, data_dir, MONGODB_URI=mongo_uri, MONGODB_DATABASE=db_name))
    try:
        await fake.wait_for("sendMessage", lambda c: c.chat_id == "4242", timeout=60)
        alive, line = liveness(heartbeat_path(data_dir))
        assert alive, line
        await wait_for_log(tmp_path / "stderr", "event=app.started", timeout=60)
    finally:
        await stop_bot(proc, 20)
        await fake.stop()
    assert proc.returncode == 0, (tmp_path / "stderr").read_text()[-3000:]


async def test_a_telegram_token_revoked_while_the_bot_runs_stops_it_saying_why(tmp_path):
    """python-telegram-bot ends its polling for good on a token Telegram no longer takes (revoked
    in @BotFather): the bot answered nobody, its heartbeat said alive, and the stop that came
    later said "could not start: Unauthorized". With no chat platform left it stops, status 1."""
    fake = await FakeTelegramBotAPI(TOKEN).start()
    data_dir = tmp_path / "data"
    proc = await start_bot(tmp_path, telegram_env(fake, data_dir))
    try:
        await wait_for_log(tmp_path / "stderr", "event=app.started", timeout=60)
        fake.token = "999:revoked"
        await asyncio.wait_for(proc.wait(), 60)
    finally:
        await stop_bot(proc, 20)
        await fake.stop()
    logs = (tmp_path / "stderr").read_text()
    assert proc.returncode == 1, logs[-3000:]
    assert "event=telegram.polling_lost" in logs and "check TELEGRAM_TOKEN" in logs
    assert "event=app.no_frontend_left" in logs
    assert logs.rstrip().endswith("moodbot stopped: no chat platform is connected any more (the log says why: "
                                  "telegram.polling_lost, discord.gateway_lost)"), logs[-1500:]
    assert "SENTINEL" not in logs
    assert moodbot_processes(str(data_dir)) == []


async def wait_for_log(path: Path, text: str, timeout: float) -> None:
    """Until the log file holds `text`; fails with its last lines after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while text not in path.read_text():
        assert asyncio.get_running_loop().time() < deadline, path.read_text()[-3000:]
        await asyncio.sleep(0.05)


def test_a_half_set_spotify_configuration_is_said_in_the_log(caplog):
    from bot.app import build_sources
    from bot.config import Settings

    resolver, _ = build_sources(Settings(_env_file=None, spotify_client_id="only-the-id", spotify_client_secret=None))
    assert resolver is None
    assert any("spotify.half_configured" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


# --- a chat platform that cannot be reached at start ------------------------------------------------

DISCORD_TOKEN = "discord-SENTINEL-app-token"


async def test_sigterm_while_discord_does_not_answer_the_login_stops_the_bot_at_once(tmp_path, mongo_uri, db_name):
    # Discord takes the login request and never answers (a proxy that hangs): the operator's
    # SIGTERM or Ctrl-C stops the bot now, not after aiohttp's 5 minutes.
    fake = await FakeDiscord(token=DISCORD_TOKEN).start()
    release = fake.hold_next("get_me")
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "SPOTIFY_CLIENT_ID")}
    env.update(DATA_DIR=str(data_dir), PYTHONPATH=str(REPO), MONGODB_URI=mongo_uri, MONGODB_DATABASE=db_name,
               DISCORD_TOKEN=DISCORD_TOKEN, DISCORD_API_URL=fake.api_url, DISCORD_GATEWAY_URL=fake.gateway_url)
    stderr_file = open(tmp_path / "stderr", "wb")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=stderr_file,
                                                cwd=tmp_path, env=env)
    try:
        await fake.wait_for("get_me", timeout=60)  # the login is asked, and held
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)  # a stop takes seconds; the start alone held on 300
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        release.set()
        await fake.stop()
        stderr_file.close()
    logs = (tmp_path / "stderr").read_text()
    assert proc.returncode == 0, logs[-3000:]
    assert "event=app.stopping_while_starting" in logs and "Traceback" not in logs
    assert "SENTINEL" not in logs
    assert moodbot_processes(str(data_dir)) == []


def host_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


async def discord_start_refused(db, fake: FakeDiscord, timeout_s: float | None = None, *,
                                before_stop: Callable[[], object] = lambda: None, **settings) -> str:
    """The words of the PlatformStartError the Discord front-end's start raises with `settings`
    against `fake`; `before_stop` runs, then `fake` is stopped, however the start ends."""
    config = Settings(_env_file=None, **settings)
    frontend = DiscordFrontend(config, build_usecases(db, classifier=None, fetcher=None), guild_ready_timeout=0.05)
    try:
        with pytest.raises(PlatformStartError) as raised:
            await start_frontend(frontend, config, **({} if timeout_s is None else {"timeout_s": timeout_s}))
    finally:
        before_stop()
        await fake.stop()
    return str(raised.value)


async def test_a_discord_that_does_not_answer_is_named_with_the_settings_to_check(db):
    fake = await FakeDiscord(token=DISCORD_TOKEN).start()
    release = fake.hold_next("get_me")
    said = await discord_start_refused(db, fake, 1.0, before_stop=release.set, discord_token=DISCORD_TOKEN,
                                       discord_api_url=fake.api_url, discord_gateway_url=fake.gateway_url)
    assert said == (f"Discord could not be reached at {host_of(fake.api_url)} (no answer within 1 s): check "
                    "DISCORD_API_URL and DISCORD_GATEWAY_URL and the network.")


async def test_a_rejected_discord_token_is_named_with_its_setting(db):
    fake = await FakeDiscord(token=DISCORD_TOKEN).start()
    said = await discord_start_refused(db, fake, discord_token="discord-SENTINEL-wrong-token",
                                       discord_api_url=fake.api_url)
    # discord.py says only "Improper token has been passed."
    assert said == f"Discord rejected the token at {host_of(fake.api_url)}: check DISCORD_TOKEN."


async def test_a_rejected_discord_token_stops_python_m_bot_in_one_line_with_no_warning_before_it(tmp_path):
    """What the operator sees of a token Discord answers 401: the one line, exit 1, and a log with
    no WARNING of discord.py's. Each Discord start logged two, "PyNaCl is not installed, voice will NOT be
    supported" and "davey is not installed, …", of a bot that joins no voice channel."""
    from tests.bot.test_app_stop import discord_env

    fake = await FakeDiscord(token=DISCORD_TOKEN).start()
    try:
        env = {**discord_env(fake, tmp_path / "data"), "DISCORD_TOKEN": "discord-SENTINEL-wrong-token"}
        proc, err = await bot_run_to_its_end(tmp_path, env, 120)
    finally:
        await fake.stop()
    lines = err.decode().splitlines()
    assert proc.returncode == 1, lines[-30:]
    assert lines[-1] == f"moodbot could not start: Discord rejected the token at {host_of(fake.api_url)}: check DISCORD_TOKEN."
    assert [line for line in lines if "level=WARNING logger=discord" in line or "Traceback" in line] == []


async def test_a_discord_api_url_that_answers_404_is_named_with_the_setting_to_check(db):
    """DISCORD_API_URL without its /v10 reaches a server that answers 404 to /users/@me: the start
    said only "404 Not Found (error code: 0): 404: Not Found" (a web server's whole HTML page, line
    after line, where it sends one), naming neither Discord, nor its host, nor the setting."""
    fake = await FakeDiscord(token=DISCORD_TOKEN).start()
    api_url = fake.api_url.removesuffix("/v10")
    said = await discord_start_refused(db, fake, 10, discord_token=DISCORD_TOKEN, discord_api_url=api_url,
                                       discord_gateway_url=fake.gateway_url)
    assert said == f"Discord answered 404 Not Found at {host_of(api_url)}: check DISCORD_API_URL."


async def test_a_telegram_that_refuses_the_connection_is_named_with_the_setting_to_check(tmp_path, mongo_uri, db_name):
    port = free_port()  # nothing listens there
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "SPOTIFY_CLIENT_ID")}
    env.update(DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO), MONGODB_URI=mongo_uri, MONGODB_DATABASE=db_name,
               TELEGRAM_TOKEN=TOKEN, TELEGRAM_API_URL=f"http://127.0.0.1:{port}/bot",
               TELEGRAM_FILE_URL=f"http://127.0.0.1:{port}/file/bot")
    proc, err = await bot_run_to_its_end(tmp_path, env, 120)
    said = err.decode().splitlines()[-1]
    assert proc.returncode == 1
    assert said.startswith(f"moodbot could not start: Telegram could not be reached at 127.0.0.1:{port} ("), said
    assert said.endswith("): check TELEGRAM_API_URL and the network."), said
    assert "SENTINEL" not in err.decode()
    # The log's app.failed line gives what the sentence was made from, without a traceback (it
    # was 60 lines of python-telegram-bot's frames, in one line, before the sentence).
    failed = next(line for line in err.decode().splitlines() if "event=app.failed" in line)
    assert "Traceback" not in failed and "exc=" not in failed, failed
    assert "caused_by=" in failed and "NetworkError" in failed, failed


def test_the_database_named_in_mongodb_uri_is_the_one_used():
    """MONGODB_URI=mongodb://host/journal put the journal in "moodbot" (MONGODB_DATABASE's
    default), without a word; named differently in both, the start is refused."""
    from pydantic import ValidationError

    assert Settings(_env_file=None, mongodb_uri="mongodb://db1:27017/journal?authSource=admin").database_name == "journal"
    assert Settings(_env_file=None, mongodb_uri="mongodb://db1:27017/?authSource=admin").database_name == "moodbot"
    assert Settings(_env_file=None).database_name == "moodbot"
    assert Settings(_env_file=None, mongodb_uri="mongodb://db1/journal", mongodb_database="journal").database_name \
        == "journal"
    with pytest.raises(ValidationError, match="MONGODB_URI names the database 'journal'"):
        Settings(_env_file=None, mongodb_uri="mongodb://db1/journal", mongodb_database="other")


async def test_a_second_bot_on_the_same_data_dir_is_refused_and_the_first_goes_on(tmp_path, mongo_uri, db_name):
    """With MONGODB_URI set nothing held DATA_DIR: a second bot started on it (a systemd unit and a
    `make run`, say) ran beside the first, each sending every daily prompt and both draining one
    journal outbox and one spool of requests. The second start is now refused, naming the first."""
    fake = await FakeTelegramBotAPI(TOKEN).start()
    data_dir = tmp_path / "data"
    env = telegram_env(fake, data_dir, MONGODB_URI=mongo_uri, MONGODB_DATABASE=db_name)
    first = await start_bot(tmp_path, env)
    try:
        await wait_for_log(tmp_path / "stderr", "event=app.started", timeout=60)
        second, err = await bot_run_to_its_end(tmp_path, env, 60)
        await fake.user_sends("/help", chat=4242)  # the first still serves
        answer = await fake.wait_for("sendMessage", lambda c: c.chat_id == "4242", timeout=30)
    finally:
        await stop_bot(first, 20)
        await fake.stop()
    said = err.decode().splitlines()
    assert second.returncode == 1, err.decode()[-3000:]
    assert said == [f"moodbot could not start: DATA_DIR {data_dir} is in use by another moodbot (pid {first.pid}): "
                    "stop it, or give this one another DATA_DIR."], said
    assert "/journal on <HH:MM> <Area/City>" in answer.text
    assert first.returncode == 0, (tmp_path / "stderr").read_text()[-3000:]


def console_bound_by_file_modes(tmp_path: Path, data_dir: Path, bound: bool = True, **settings: str):
    """`python -m bot`'s console on `data_dir` (and `settings`), told /quit, as a user whom file
    modes bind (root too; `bound` False: as the user running the tests), in `tmp_path` or `cwd`."""
    import subprocess

    from tests.bot.test_console import console_env
    from tests.permissions import bound_by_file_modes

    return subprocess.run([sys.executable, "-m", "bot"], input="/quit\n", capture_output=True, text=True,
                          cwd=settings.pop("cwd", tmp_path), env={**console_env(data_dir), **settings}, timeout=60,
                          preexec_fn=bound_by_file_modes if bound else None)


def test_a_lock_file_moodbot_may_not_write_is_a_setting_to_fix_as_the_folders_own_files_are(tmp_path):
    """DATA_DIR/moodbot.pid left by a run as another user (root, then the image's user): the start
    stopped with exit status 1, as if another bot ran, where a file of DATA_DIR moodbot may not
    write (its log salt) stops it with 2, a setting to fix."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "moodbot.pid").write_text("")
    (data_dir / "moodbot.pid").chmod(0o444)
    result = console_bound_by_file_modes(tmp_path, data_dir)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"moodbot could not start: {data_dir / 'moodbot.pid'} in DATA_DIR cannot be written "
                             f"(Permission denied): give {MOODBOTS_USER} the right to write it\n")


@pytest.mark.parametrize("entry, mode", [("secantusd.toml", 0o444), ("db", 0o555), ("db/WiredTiger.wt", 0o444)])
def test_a_file_of_the_embedded_database_moodbot_may_not_write_is_named_with_data_dir(tmp_path, entry, mode):
    """DATA_DIR written to once as another user (`sudo make run`, then `make run`; a volume used
    as root before the image's user): the folder itself writable, the embedded database's files in
    it not. The start said "[Errno 13] Permission denied: '…/secantusd.toml'" (a traceback in the
    log), or "The embedded database exited at start (code 1); … WiredTigerError: Permission
    denied", naming no setting; it is now the one line a file of DATA_DIR moodbot may not write gets."""
    data_dir = tmp_path / "data"
    assert console_bound_by_file_modes(tmp_path, data_dir, bound=False).returncode == 0  # the other user's run
    (data_dir / entry).chmod(mode)
    result = console_bound_by_file_modes(tmp_path, data_dir)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"moodbot could not start: {data_dir / entry} in DATA_DIR cannot be written "
                             f"(Permission denied): give {MOODBOTS_USER} the right to write it, and all of "
                             "DATA_DIR (chown -R)\n"), result.stderr


def test_an_embedded_database_moodbot_may_not_write_is_let_be_once_mongodb_uri_is_set(tmp_path, mongo_uri, db_name):
    """A DATA_DIR that kept the embedded database of another user's runs, the bot moved to a
    MongoDB since: those files are never opened, and do not stop the start."""
    data_dir = tmp_path / "data"
    assert console_bound_by_file_modes(tmp_path, data_dir, bound=False).returncode == 0  # the other user's run
    (data_dir / "db").chmod(0o555)
    result = console_bound_by_file_modes(tmp_path, data_dir, MONGODB_URI=mongo_uri, MONGODB_DATABASE=db_name)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("entry, kind, what", [("secantusd.log", "folder", "file"), ("moodbot.pid", "folder", "file"),
                                                ("journal-outbox.jsonl", "folder", "file"),
                                                (".log-salt", "folder", "file"), ("db", "file", "folder")])
def test_a_folder_where_moodbot_keeps_a_file_in_data_dir_is_named_with_what_to_do(tmp_path, entry, kind, what):
    """A folder made where a file of DATA_DIR belongs (a volume mounted at DATA_DIR/secantusd.log,
    a `mkdir -p` of the wrong path), or a file where the embedded database's folder belongs: the
    start said "[Errno 21] Is a directory: '…/secantusd.log'" (exit 1, a traceback in the log), or
    of the lock file to "give moodbot's user the right to write it", and --check said DATA_DIR was
    writable. It is one line naming the entry and what to do, exit status 2, as for a file of
    DATA_DIR moodbot may not write."""
    data_dir = tmp_path / "data"
    (data_dir / entry).parent.mkdir(parents=True)
    if kind == "folder":
        (data_dir / entry).mkdir()
    else:
        (data_dir / entry).write_text("")
    result = console_bound_by_file_modes(tmp_path, data_dir, bound=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"moodbot could not start: {data_dir / entry} in DATA_DIR is a {kind} where moodbot "
                             f"keeps a {what}: move it out of DATA_DIR\n"), result.stderr
    assert not (data_dir / "moodbot.log").exists()  # refused before any log: no traceback anywhere


def test_a_relative_data_dir_moodbot_cannot_make_is_named_with_the_folder_it_stands_for(tmp_path):
    """A systemd unit without its WorkingDirectory runs in /, where DATA_DIR's default ./data is
    /data, which the service's user may not make: the start said "DATA_DIR data is not a folder
    moodbot can write to", of a folder the operator looked for where they had started it."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    folder.chmod(0o555)
    result = console_bound_by_file_modes(tmp_path, "", cwd=folder)  # DATA_DIR empty: the default
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"moodbot could not start: DATA_DIR data ({folder / 'data'}) is not a folder moodbot "
                             f"can write to (Permission denied): create it, or give {MOODBOTS_USER} the right to "
                             "write there\n"), result.stderr


async def test_no_model_able_to_answer_is_one_log_line_that_says_why_without_a_traceback(tmp_path, caplog):
    """The weights missing: classifier.start_failed carried a traceback of the pool's frames, in
    the log of a chat bot (its stderr, `docker logs`), where the error's words say it all."""
    import logging

    from bot.app import WarmingClassifier
    from inference.pool import Classifier

    classifier = WarmingClassifier(Classifier(tmp_path))  # no weights there
    with caplog.at_level(logging.ERROR, logger="bot.app"):
        await classifier.warmed(60)
        await classifier.close()
    failed = [r for r in caplog.records if r.getMessage() == "classifier.start_failed"]
    assert len(failed) == 1 and failed[0].exc_info is None, failed
    assert failed[0].reason.startswith("No model can answer. Main model: The main model's weights"), failed[0].reason
    assert "python -m bot --check" in failed[0].reason
