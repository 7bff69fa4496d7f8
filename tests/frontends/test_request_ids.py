"""An operator reading the log for a user's complaint ("my /mood failed at 21:03") follows one
request from its arrival to its reply: every line logged while it is answered carries the same
`req=`, also the lines that name no user (Spotify's failure, logged in a lookup thread; Telegram's
flood wait on its answer), and another request's lines another."""
from __future__ import annotations

import re

from bot.logs import REQUEST, numbered
from storage.models import UserRef
from storage.outbox import OUTBOX_FILENAME, JournalOutbox, JournalWriter
from tests.bot.test_console import chat
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import (TELEGRAM_TOKEN, journal_on_telegram, spotify_with_creep, telegram_on,
                                      usecases_with_creep)
from tests.storage.test_outbox import drained_in_background, entry
from tests.frontends.test_discord import STRING
from tests.frontends.test_discord_query_markup import spotify_and_discord

ALICE, BOB = 42, 43


def lines_of(log_stream, event: str) -> list[dict[str, str]]:
    """The log's lines of `event`, each as its key=value fields (values unquoted only where plain)."""
    return [dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line))
            for line in log_stream.getvalue().splitlines() if f" event={event}" in line
            or f' event="{event}' in line]


async def test_every_line_of_one_telegram_request_carries_its_request_id(db, log_stream):
    async with usecases_with_creep(db) as (spotify, usecases), \
            telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, _frontend):
        spotify.fail_next(503, times=1)  # retried, then found
        fake.fail_next("sendMessage", times=1, retry_after=1)  # the answer waits out a flood limit
        await fake.user_sends("/mood Radiohead - Creep", chat=ALICE)
        await fake.wait_for_reply(lambda c: "Creep" in c.text, timeout=15)
        mark = fake.mark()
        await fake.user_sends("/mood Radiohead - Creep", chat=BOB)
        await fake.wait_for_reply(lambda c: "Creep" in c.text, after=mark, timeout=15)
    (failed,) = lines_of(log_stream, "spotify.failed")
    (waited,) = lines_of(log_stream, "telegram.flood_wait")
    alice, bob = lines_of(log_stream, "mood.answered")
    assert alice.get("req", "").startswith("tg-"), alice
    assert failed.get("req") == waited.get("req") == alice["req"] != bob.get("req")
    assert bob.get("req", "").startswith("tg-")


async def test_every_line_of_one_discord_command_carries_its_request_id(db, log_stream):
    async with spotify_and_discord(db) as (fake, spotify, _):
        spotify.fail_next(503, times=1)
        for _ in range(2):
            await fake.slash("mood", [{"name": "query", "type": STRING, "value": "Radiohead - Creep"}])
            await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    (failed,) = lines_of(log_stream, "spotify.failed")
    first, second = lines_of(log_stream, "mood.answered")
    assert first.get("req", "").startswith("dc-") and second.get("req", "").startswith("dc-")
    assert failed.get("req") == first["req"] != second["req"]


async def test_every_line_of_one_console_line_carries_its_request_id(db, log_stream, tmp_path):
    async with spotify_with_creep(db) as (spotify, resolver):
        spotify.fail_next(503, times=1)
        await chat(db, None, tmp_path, ["/mood Radiohead - Creep", "/mood Radiohead - Creep", "/quit"],
                   resolver=resolver)
    (failed,) = lines_of(log_stream, "spotify.failed")
    first, second = lines_of(log_stream, "mood.answered")
    assert first.get("req", "").startswith("con-") and second.get("req", "").startswith("con-")
    assert failed.get("req") == first["req"] != second["req"]


async def test_the_lines_of_one_daily_prompt_s_delivery_carry_its_own_request_id(log_stream, telegram, db, usecases):
    """A daily prompt's lines had no req=: Telegram's 502 retried and the prompt's failure could not
    be put together, nor told from the next try's. Each delivery's lines carry prompt-<its id>,
    the front-end's too, and the task's request is back after."""
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    ref = UserRef("telegram", str(ALICE))
    fake.fail_next("sendMessage", times=2, status=502, description="Bad Gateway")
    assert await scheduler.deliver(ref) is None  # Telegram's outage: withdrawn
    prompt_id = await scheduler.deliver(ref)  # the day's prompt again, through this time
    assert prompt_id is not None and REQUEST.get() is None
    (retried,) = lines_of(log_stream, "telegram.server_error_retried")
    (failed,) = lines_of(log_stream, "scheduler.send_failed")
    (sent,) = lines_of(log_stream, "scheduler.prompt_sent")
    assert retried.get("req") == failed.get("req") != sent.get("req") == f"prompt-{prompt_id}"
    assert failed["req"].startswith("prompt-")


async def test_the_lines_of_each_round_of_the_outbox_s_replay_carry_its_number(log_stream, db, tmp_path):
    """The outbox's replay, in the background, logged with no req=: each round's lines carry outbox-<n>."""
    writer = JournalWriter(db.journal, JournalOutbox(tmp_path / OUTBOX_FILENAME), db.prompts)
    await drained_in_background(writer, entry(1), entry(2), each_round=numbered("outbox"))
    first, second = lines_of(log_stream, "outbox: 1 journal entries written to the database")
    rounds = [int(line.get("req", "").removeprefix("outbox-")) for line in (first, second)]  # each its round's
    assert 1 <= rounds[0] < rounds[1] and REQUEST.get() is None
