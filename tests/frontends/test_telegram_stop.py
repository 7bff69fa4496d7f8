"""The bot's stop while a daily prompt is on its way to Telegram: the app stops the scheduler, then
the front-end, whose HTTP session closes. A prompt whose request had left arrived, but the closed
session failed its answer, so it was withdrawn as never sent: a reply to it found no prompt, and
the restart's catch-up sent the day's prompt again. The scheduler's stop now lets a prompt on its
way arrive (its message id kept), within the front-ends' grace, and starts no other."""
from __future__ import annotations

import asyncio

from storage.models import UserRef
from tests.frontends.conftest import journal_on_telegram

ALICE = UserRef("telegram", "42")


async def test_a_prompt_on_its_way_when_the_bot_stops_arrives_and_stays_the_days(telegram, db, usecases):
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    await scheduler.start()
    fake.delay_next("sendMessage", 1.0)  # Telegram sends it at once, and answers a second later
    mark = fake.mark()
    sending = asyncio.create_task(scheduler.deliver(ALICE))
    while not fake.calls_of("sendMessage", after=mark):
        await asyncio.sleep(0.01)

    await scheduler.stop()  # as the app stops: the scheduler, then the front-end
    await frontend.stop()
    prompt_id = await sending

    sent = fake.calls_of("sendMessage", after=mark)
    assert len(sent) == 1 and prompt_id is not None
    stored = await db.prompts.find_by_message("telegram", "42", str(fake.message_of(sent[0])["message_id"]))
    assert stored is not None and stored.prompt_id == prompt_id


async def test_no_prompt_is_started_once_the_scheduler_has_stopped(telegram, db, usecases):
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    await scheduler.start()
    await scheduler.stop()
    mark = fake.mark()
    assert await scheduler.deliver(ALICE) is None
    assert not fake.calls_of("sendMessage", after=mark)
    assert await db.prompts.latest(ALICE) is None
