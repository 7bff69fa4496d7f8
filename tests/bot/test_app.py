"""`python -m bot` with a TELEGRAM_TOKEN: the app starts the Telegram front-end (not the console)
on the embedded database, answers a user through the real python-telegram-bot against the local
fake Bot API, never logs the token, and stops cleanly on SIGTERM."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.bot.test_console import REPO, moodbot_processes
from tests.fakes.telegram_api import FakeTelegramBotAPI

TOKEN = "987654:SENTINEL-app-token"


async def test_with_a_telegram_token_the_app_serves_telegram_and_stops_on_sigterm(tmp_path):
    fake = await FakeTelegramBotAPI(TOKEN).start()
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items()
           if k not in ("MONGODB_URI", "DISCORD_TOKEN", "SPOTIFY_CLIENT_ID")}
    env.update(DATA_DIR=str(data_dir), PYTHONPATH=str(REPO), TELEGRAM_TOKEN=TOKEN,
               TELEGRAM_API_URL=fake.base_url, TELEGRAM_FILE_URL=fake.base_file_url, LOG_LEVEL="DEBUG")
    # Files, not pipes: a DEBUG log nobody reads yet would fill a pipe and block the bot.
    stdout_file, stderr_file = open(tmp_path / "stdout", "wb"), open(tmp_path / "stderr", "wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", stdin=asyncio.subprocess.DEVNULL, stdout=stdout_file,
        stderr=stderr_file, cwd=tmp_path, env=env)
    try:
        await fake.wait_for("deleteWebhook", timeout=60)  # polling starts right after
        await fake.user_sends("/help", chat=4242)
        answer = await fake.wait_for("sendMessage", lambda c: c.chat_id == "4242", timeout=30)
        assert "/journal on <HH:MM> <Area/City>" in answer.text

        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)  # let it stop its embedded database
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await fake.stop()
        stdout_file.close()
        stderr_file.close()

    logs = (tmp_path / "stderr").read_text()
    stdout = (tmp_path / "stdout").read_bytes()
    assert proc.returncode == 0, logs[-3000:]
    assert b"moodbot console" not in stdout  # no console when a chat token is set
    assert "event=app.started frontends=TelegramFrontend" in logs and "event=app.stopping" in logs
    assert "SENTINEL" not in logs  # the token never reaches a log line, even at DEBUG
    assert moodbot_processes(str(data_dir)) == []
    assert not Path(data_dir / "moodbot.log").exists()  # outside the console, logs go to stderr


def test_a_half_set_spotify_configuration_is_said_in_the_log(caplog):
    from bot.app import build_sources
    from bot.config import Settings

    resolver, _ = build_sources(Settings(_env_file=None, spotify_client_id="only-the-id", spotify_client_secret=None))
    assert resolver is None
    assert any("spotify.half_configured" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
