"""Telegram end to end, when Telegram refuses to edit the status message mid-work (the user
deleted it): a journal answer by song name is still classified, saved and confirmed, as a new
message, never lost to 'Sorry, something went wrong'."""
from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
import pytest_asyncio

from bot.frontends import render
from bot.frontends.telegram import TelegramFrontend
from storage.models import UserRef
from tests.e2e.wiring import TELEGRAM_TOKEN, bot_settings, running_bot
from tests.fakes.telegram_api import FakeTelegramBotAPI

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALICE = 42
SLOW_S = 90.0  # the first classification of a module waits for the pool's warm-up


@pytest_asyncio.fixture(loop_scope="module")
async def telegram(catalog, classifier, mongo_uri, db_name):
    fake = await FakeTelegramBotAPI(TELEGRAM_TOKEN).start()
    settings = bot_settings(catalog, mongo_uri, db_name, Path(tempfile.mkdtemp(prefix="moodbot-tg-")),
                            telegram_token=TELEGRAM_TOKEN, telegram_api_url=fake.base_url,
                            telegram_file_url=fake.base_file_url)
    factory = lambda s, u: TelegramFrontend(s, u, poll_timeout_s=1)  # noqa: E731
    async with running_bot(settings, classifier, [factory]) as bot:
        yield fake, bot
    await fake.stop()


async def test_a_journal_answer_whose_status_message_was_deleted_is_saved_and_confirmed(telegram, songs):
    fake, bot = telegram
    await fake.user_sends("/journal on 21:30 Europe/Lisbon")
    await fake.wait_for("sendMessage")
    mark = fake.mark()
    prompt_id = await bot.scheduler.fire_now(UserRef("telegram", str(ALICE)))
    prompt = fake.message_of(await fake.wait_for("sendMessage", after=mark))

    # Every edit of the status message is refused, as after the user deleted it.
    fake.fail_next("editMessageText", times=100, status=400, description="Bad Request: message to edit not found")
    song = songs[1]
    mark = fake.mark()
    await fake.user_sends(song.query, reply_to=prompt["message_id"])
    saved = await fake.wait_for("sendMessage", lambda c: "Saved to your journal" in c.text, timeout=SLOW_S,
                                after=mark)
    assert song.title in saved.text
    await asyncio.sleep(1.0)
    assert render.GENERIC_ERROR not in [c.text for c in fake.calls[mark:] if c.status == 200]
    assert fake.calls_of("editMessageText", after=mark)  # a stage was refused indeed
    entries = await bot.db.journal.list(UserRef("telegram", str(ALICE)))
    assert [e.prompt_id for e in entries] == [prompt_id]
