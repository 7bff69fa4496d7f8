"""`python -m bot` stopped (SIGTERM, as `docker stop` sends; Ctrl-C) while users' requests are in
progress: each gets an answer or a clear message, none is silently dropped, and the bot stops
within Docker's 10 s grace, after which it would be killed with those requests unanswered."""
from __future__ import annotations

import asyncio
import signal
import time

from bot.frontends import render
from tests.bot.test_app import TOKEN, start_bot, stop_bot, telegram_env, wait_for_log
from tests.bot.test_console import moodbot_processes
from tests.fakes.audio_http import FakeAudioServer
from tests.fakes.telegram_api import FakeTelegramBotAPI

DOCKER_GRACE_S = 10.0  # `docker stop`'s wait between SIGTERM and SIGKILL


async def test_sigterm_while_a_telegram_mood_downloads_tells_the_user_and_stops_within_dockers_grace(tmp_path):
    """A /mood whose download has not ended (a host that answers slowly, or not at all: up to the
    download's 90 s timeout) held the stop until it ended; `docker stop` then killed the bot after
    10 s, and the user's "Fetching…" status stayed for ever, the update already acknowledged."""
    (tmp_path / "cdn").mkdir()
    audio = FakeAudioServer(tmp_path / "cdn").start()
    fake = await FakeTelegramBotAPI(TOKEN).start()
    data_dir = tmp_path / "data"
    proc = await start_bot(tmp_path, telegram_env(fake, data_dir, AUDIO_SEARCH=audio.url("/hang/{title}.ogg")))
    try:
        await wait_for_log(tmp_path / "stderr", "event=app.started", timeout=60)
        await fake.user_sends("/mood Some Song", chat=4242)
        await fake.wait_for("sendMessage", lambda c: c.chat_id == "4242", timeout=30)  # its status
        while not audio.requests_for("/hang/Some%20Song.ogg"):
            await asyncio.sleep(0.05)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        took = time.monotonic() - signalled
    finally:
        await stop_bot(proc, 20)
        await fake.stop()
        audio.stop()
    logs = (tmp_path / "stderr").read_text()
    assert proc.returncode == 0, logs[-3000:]
    assert took < DOCKER_GRACE_S - 2, (took, logs[-3000:])
    shown = [c.text for c in fake.calls if c.method in ("sendMessage", "editMessageText") and c.chat_id == "4242"]
    assert shown[-1] == render.RESTARTING, shown
    assert moodbot_processes(str(data_dir)) == []

