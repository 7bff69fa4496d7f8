"""/forget while a daily prompt is on its way to Telegram: nothing of the prompt is kept, no
prompt comes the next day, and an answer to the prompt that arrived is not saved."""
from __future__ import annotations

import asyncio

from bot.replies import Caller
from storage.models import UserRef
from tests.frontends.conftest import journal_on_telegram

ALICE = UserRef("telegram", "42")


async def test_forget_while_a_prompt_is_being_sent_leaves_nothing_and_stops_tomorrows(telegram, db, usecases):
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    await scheduler.start()
    try:
        fake.fail_next("sendMessage", 1, retry_after=1)  # Telegram says wait: the prompt is in flight a second
        mark = fake.mark()
        sending = asyncio.create_task(scheduler.fire_now(ALICE))
        while not fake.calls_of("sendMessage", after=mark):
            await asyncio.sleep(0.01)

        done = await usecases.privacy.forget(Caller("telegram", "42", chat_id="42"), confirmed=True)
        await sending

        assert done.text.startswith("Done")
        assert not scheduler.is_scheduled(ALICE)
        for name in await db.db.list_collection_names():
            assert await db.db[name].count_documents({"user_id": "42"}) == 0, name
        prompt = next(c for c in fake.calls_of("sendMessage", after=mark) if c.status == 200)
        answer_mark = fake.mark()
        await fake.user_sends("Creep", reply_to=fake.message_of(prompt)["message_id"])
        await fake.wait_for("sendMessage", after=answer_mark)
        for name in await db.db.list_collection_names():
            assert await db.db[name].count_documents({"user_id": "42"}) == 0, name
    finally:
        await scheduler.stop()
