"""`python -m bot` stopped (SIGTERM, as `docker stop` sends; Ctrl-C) while users' requests are in
progress: each gets an answer or a clear message, none is silently dropped, and the bot stops
within Docker's 10 s grace, after which it would be killed with those requests unanswered."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

from bot.frontends import render
from tests.bot.test_app import DISCORD_TOKEN, TOKEN, start_bot, stop_bot, telegram_env, wait_for_log
from tests.bot.test_console import REPO, moodbot_processes
from tests.fakes.audio_http import FakeAudioServer
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.fakes.wire_gate import WireGate

DOCKER_GRACE_S = 10.0  # `docker stop`'s wait between SIGTERM and SIGKILL
GUILD = 777000000000000001  # a Discord server
SUB_COMMAND, STRING = 1, 3  # a command option's types


def discord_env(fake: FakeDiscord, data_dir, **settings: str) -> dict[str, str]:
    """The environment of a `python -m bot` serving Discord through `fake`, on the embedded database."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("TELEGRAM_TOKEN", "SPOTIFY_CLIENT_ID", "MONGODB_URI", "MONGODB_DATABASE")}
    env.update(DATA_DIR=str(data_dir), PYTHONPATH=str(REPO), DISCORD_TOKEN=DISCORD_TOKEN, DISCORD_API_URL=fake.api_url,
               DISCORD_GATEWAY_URL=fake.gateway_url, **settings)
    return env


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


async def test_sigterm_while_a_discord_mood_downloads_tells_the_user_in_its_answer(tmp_path):
    """The bot closed its Discord connection and stopped at once, and the /mood still at work was
    dropped unsaid: its answer showed "Fetching a 30 s section…" until Discord gave up on it."""
    (tmp_path / "cdn").mkdir()
    audio = FakeAudioServer(tmp_path / "cdn").start()
    fake = await FakeDiscord().start()
    data_dir = tmp_path / "data"
    proc = await start_bot(tmp_path, discord_env(fake, data_dir, AUDIO_SEARCH=audio.url("/hang/{title}.ogg")))
    try:
        await wait_for_log(tmp_path / "stderr", "event=app.started", timeout=60)
        asked = await fake.slash("mood", [{"name": "query", "type": STRING, "value": "Some Song"}], guild=GUILD)
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
    shown = [c.content for c in fake.calls if c.name == "edit_original" and c.token == asked["token"]]
    assert shown and shown[-1] == render.RESTARTING, shown
    assert moodbot_processes(str(data_dir)) == []


async def test_sigterm_while_a_discord_journal_answer_downloads_tells_the_user_in_the_dm(tmp_path):
    """A daily prompt answered by DM with a song still downloading at the stop: its "Fetching…"
    stayed in the DM, unsaid; it now says to send it again (the prompt stays open for that)."""
    (tmp_path / "cdn").mkdir()
    audio = FakeAudioServer(tmp_path / "cdn").start()
    fake = await FakeDiscord().start()
    data_dir = tmp_path / "data"
    proc = await start_bot(tmp_path, discord_env(fake, data_dir, AUDIO_SEARCH=audio.url("/hang/{title}.ogg")))
    try:
        await wait_for_log(tmp_path / "stderr", "event=app.started", timeout=60)
        await fake.slash("journal", [{"name": "on", "type": SUB_COMMAND, "options": [
            {"name": "time", "type": STRING, "value": "21:30"}, {"name": "timezone", "type": STRING, "value": "Europe/Lisbon"}]}])
        await fake.wait_for("edit_original", timeout=30)
        await fake.slash("journal", [{"name": "prompt", "type": SUB_COMMAND, "options": []}])
        await fake.wait_for("send_message", lambda c: render.PROMPT_HINT in c.content, timeout=30)
        await fake.user_dms("Some Song")
        while not audio.requests_for("/hang/Some%20Song.ogg"):
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    finally:
        await stop_bot(proc, 20)
        await fake.stop()
        audio.stop()
    logs = (tmp_path / "stderr").read_text()
    assert proc.returncode == 0, logs[-3000:]
    dm = str(fake.dm_channel_id(42))
    shown = [c.content for c in fake.calls if c.name in ("send_message", "edit_message") and c.match.get("channel") == dm]
    assert shown[-1] == render.RESTARTING, shown


async def test_sigterm_with_work_on_both_platforms_gives_them_one_grace_together(tmp_path):
    """Each front-end's stop gave its own work 4 s, one after the other: with a download on each
    platform the stop took two graces, over `docker stop`'s 10 s with the rest of the stop."""
    (tmp_path / "cdn").mkdir()
    audio = FakeAudioServer(tmp_path / "cdn").start()
    telegram = await FakeTelegramBotAPI(TOKEN).start()
    discord = await FakeDiscord().start()
    data_dir = tmp_path / "data"
    env = discord_env(discord, data_dir, AUDIO_SEARCH=audio.url("/hang/{title}.ogg"))
    env.update({k: v for k, v in telegram_env(telegram, data_dir).items() if k.startswith("TELEGRAM_")})
    proc = await start_bot(tmp_path, env)
    try:
        await wait_for_log(tmp_path / "stderr", "event=app.started", timeout=60)
        await telegram.user_sends("/mood First Song", chat=4242)
        asked = await discord.slash("mood", [{"name": "query", "type": STRING, "value": "Second Song"}], guild=GUILD)
        while not (audio.requests_for("/hang/First%20Song.ogg") and audio.requests_for("/hang/Second%20Song.ogg")):
            await asyncio.sleep(0.05)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        took = time.monotonic() - signalled
    finally:
        await stop_bot(proc, 20)
        await telegram.stop()
        await discord.stop()
        audio.stop()
    logs = (tmp_path / "stderr").read_text()
    assert proc.returncode == 0, logs[-3000:]
    assert took < DOCKER_GRACE_S - 3, (took, logs[-3000:])
    on_telegram = [c.text for c in telegram.calls if c.method in ("sendMessage", "editMessageText") and c.chat_id == "4242"]
    on_discord = [c.content for c in discord.calls if c.name == "edit_original" and c.token == asked["token"]]
    assert on_telegram[-1] == on_discord[-1] == render.RESTARTING, (on_telegram, on_discord)


async def test_sigterm_while_a_discord_forget_deletes_lets_it_finish_and_say_so(tmp_path, db_server, mongo_uri, db_name):
    """/forget's "Yes" pressed just before the stop, the database slow: Discord's connection closed
    under it, so its "Done" never reached the user ("thinking…" until Discord gave up), and the
    database could close under its deletions. It is now let finish within the grace, and said."""
    gate = await WireGate(db_server.port).start()
    fake = await FakeDiscord().start()
    data_dir = tmp_path / "data"
    env = discord_env(fake, data_dir, MONGODB_URI=gate.uri(mongo_uri), MONGODB_DATABASE=db_name)
    proc = await start_bot(tmp_path, env)
    try:
        await wait_for_log(tmp_path / "stderr", "event=app.started", timeout=60)
        await fake.slash("forget")
        question = await fake.wait_for("interaction_callback", timeout=30)
        gate.hold("delete", "journal")
        await fake.click(question.result["interaction"]["response_message_id"], "forget:yes")
        await asyncio.wait_for(gate.held.wait(), 30)
        proc.send_signal(signal.SIGTERM)
        await wait_for_log(tmp_path / "stderr", "event=app.stopping", timeout=10)
        await asyncio.sleep(1.0)  # a slow deletion
        gate.release()
        await asyncio.wait_for(proc.wait(), 30)
    finally:
        await stop_bot(proc, 20)
        await fake.stop()
        await gate.close()
    logs = (tmp_path / "stderr").read_text()
    assert proc.returncode == 0, logs[-3000:]
    done = [c.content for c in fake.calls if c.name == "edit_original" and c.status < 300]
    assert done and done[-1].startswith("Done: I deleted everything"), (done, logs[-3000:])


def model_workers(bot_pid: int) -> list[int]:
    """The bot's model workers: the processes its fork servers started."""
    parent_of = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent_of[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    servers = [pid for pid, parent in parent_of.items() if parent == bot_pid
               and b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    return [pid for pid, parent in parent_of.items() if parent in servers]


async def test_sigterm_while_a_model_worker_hangs_stops_within_dockers_grace(tmp_path, clip_paths):
    """A song in a model worker that hangs (stopped here by SIGSTOP): the update is cut short after
    the grace, then the pool gave the busy worker 5 s more before killing it: 9.6 s in all, at
    `docker stop`'s 10 s, after which the bot is killed."""
    fake = await FakeTelegramBotAPI(TOKEN).start()
    data_dir = tmp_path / "data"
    proc = await start_bot(tmp_path, telegram_env(fake, data_dir))
    try:
        await wait_for_log(tmp_path / "stderr", "event=classifier.ready", timeout=60)
        workers = model_workers(proc.pid)
        assert workers
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        await fake.user_sends(chat=4242, audio=fake.audio_attachment(clip_paths[0]))
        await fake.wait_for("sendMessage", lambda c: c.chat_id == "4242", timeout=30)  # "Listening…"
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
        took = time.monotonic() - signalled
    finally:
        await stop_bot(proc, 20)
        await fake.stop()
    logs = (tmp_path / "stderr").read_text()
    assert proc.returncode == 0, logs[-3000:]
    assert took < DOCKER_GRACE_S - 2, (took, logs[-3000:])
    shown = [c.text for c in fake.calls if c.method in ("sendMessage", "editMessageText") and c.chat_id == "4242"]
    assert shown[-1] == render.RESTARTING, shown
    assert moodbot_processes(str(data_dir)) == []
    # The listening the cut song had started (shared by whoever asks for that song) ran on into
    # the closed pool: "mood.no_model" and a traceback at exit, both at ERROR, neither true.
    assert "level=ERROR" not in logs, logs[-3000:]


async def test_sigterm_while_a_telegram_forget_deletes_past_the_grace_says_so_in_the_chat(
        tmp_path, db_server, mongo_uri, db_name):
    """/forget's Yes pressed, the database slower than the stop's grace: the press was cut short and
    its sender "told" by answering the press, which Telegram refuses (the handler had answered it
    at once, to stop its spinner), so nothing was said; it is said in the chat."""
    gate = await WireGate(db_server.port).start()
    fake = await FakeTelegramBotAPI(TOKEN).start()
    data_dir = tmp_path / "data"
    proc = await start_bot(tmp_path, telegram_env(fake, data_dir, MONGODB_URI=gate.uri(mongo_uri),
                                                  MONGODB_DATABASE=db_name))
    try:
        await wait_for_log(tmp_path / "stderr", "event=app.started", timeout=60)
        await fake.user_sends("/forget", chat=42, user=42)
        question = await fake.wait_for("sendMessage", timeout=30)
        gate.hold("delete", "journal")
        await fake.user_clicks("forget:yes:42", message=question, user=42)
        await asyncio.wait_for(gate.held.wait(), 30)
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    finally:
        gate.release()
        await stop_bot(proc, 20)
        await fake.stop()
        await gate.close()
    logs = (tmp_path / "stderr").read_text()
    assert proc.returncode == 0, logs[-3000:]
    said = [c.text for c in fake.calls if c.method == "sendMessage" and c.chat_id == "42" and c.status == 200]
    assert said[-1] == render.RESTARTING, said


async def test_ctrl_c_pressed_again_and_again_stops_with_130_and_no_traceback(tmp_path):
    """An impatient operator's Ctrl-C, again and again: the ones during the stop are taken for the
    first, but one during the interpreter's exit (the download workers closed at exit) printed
    "Exception ignored in atexit callback" and a KeyboardInterrupt traceback (3 runs of 3)."""
    fake = await FakeTelegramBotAPI(TOKEN).start()
    data_dir = tmp_path / "data"
    proc = await start_bot(tmp_path, telegram_env(fake, data_dir))
    try:
        await wait_for_log(tmp_path / "stderr", "event=app.started", timeout=60)
        await wait_for_log(tmp_path / "stderr", "event=classifier.ready", timeout=60)
        while proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.05)
    finally:
        await stop_bot(proc, 20)
        await fake.stop()
    logs = (tmp_path / "stderr").read_text()
    assert proc.returncode == 130, logs[-3000:]
    assert "Traceback" not in logs and "Exception ignored" not in logs, logs[-3000:]
    assert moodbot_processes(str(data_dir)) == []


async def test_sigterm_with_telegram_slow_to_answer_still_stops_within_dockers_grace(tmp_path):
    """Telegram slow to answer at the stop (an outage, a partition), a /mood at work: the updater's
    last getUpdates (acknowledging what was fetched) waited out its 5 s read timeout, and only then
    did the updates in progress get their 4 s grace: ~10 s in all, past `docker stop`'s 10 s."""
    (tmp_path / "cdn").mkdir()
    audio = FakeAudioServer(tmp_path / "cdn").start()
    fake = await FakeTelegramBotAPI(TOKEN).start()
    data_dir = tmp_path / "data"
    proc = await start_bot(tmp_path, telegram_env(fake, data_dir, AUDIO_SEARCH=audio.url("/hang/{title}.ogg")))
    try:
        await wait_for_log(tmp_path / "stderr", "event=app.started", timeout=60)
        await fake.user_sends("/mood Some Song", chat=4242)
        await fake.wait_for("sendMessage", lambda c: c.chat_id == "4242", timeout=30)  # its status
        fake.fail_next("getUpdates", 10, status=502, description="Bad Gateway", delay_s=7)  # past the 5 s read timeout
        await asyncio.sleep(1.5)  # the long poll under way ends (the fake holds one 0.5 s); the next hangs
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
