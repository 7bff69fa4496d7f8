"""Telegram button presses left by a run killed outright (the inbox, as every update): /forget's
"Yes" and a /journal list page turn are answered at the restart in the message pressed. The real
front-end and use cases over the test database and the fake Telegram; the kill is the inbox put
back as the killed run left it, after the run's stop (as tests/frontends/test_inbox_spool.py does).
The kill itself, half-way through the deletions: tests/bot/test_telegram_press_killed.py."""
from __future__ import annotations

import asyncio

from bot.frontends.telegram import FORGET_DONE_BEFORE
from storage.inbox import Arrival
from storage.models import UserRef
from storage.schema import INBOX
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN, telegram_on
from tests.frontends.test_journal_pages import buttons, days_listed, newest, write_days
from tests.frontends.test_telegram_forget_question import ALICE, asked_to_forget, yes_of
from tests.frontends.test_telegram_inbox import SOURCE, _empty, until

SHOWN = ("sendMessage", "editMessageText")


async def answered_at_the_restart(usecases, db, question: dict) -> list:
    """The texts the chat of `question` shows once a restart has answered what the inbox holds."""
    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (again, _):
        await again.wait_for_reply(after=0)
        assert await until(lambda: _empty(db))
        await asyncio.sleep(1.0)  # a second answer would have come by now
    return [c for c in again.calls if c.method in SHOWN and c.chat_id == str(question["chat"]["id"])]


async def test_a_yes_killed_after_its_done_was_shown_says_done_again_and_deletes_nothing_more(usecases, db):
    """Killed once the deletions were done and "Done" shown, before the press was cleared from the
    inbox: the restart hands it over again. Kept under its asker, the /forget deleted it (nothing to
    hand over, nor to finish after a kill half-way); kept under no user, its second run finds
    nothing left, and says it was done, not "There was nothing of yours to delete"."""
    alice = UserRef("telegram", str(ALICE))
    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, _):
        question = await asked_to_forget(fake)
        mark = fake.mark()
        fake.delay_next("editMessageText", 1.5)  # "Done" shown; the kill comes before Telegram's answer
        press = await fake.user_clicks(yes_of(question), message=question, user=ALICE)
        assert await until(lambda: fake.calls_of("editMessageText", after=mark))
        left = await db.db[INBOX].find({}).to_list()
    assert press["update_id"] in [doc["number"] for doc in left], "the press was not kept until answered"
    assert await db.users.get(alice) is None
    await db.db[INBOX].insert_many(left)  # as the kill left it

    [shown] = await answered_at_the_restart(usecases, db, question)
    assert shown.method == "editMessageText" and int(shown.params["message_id"]) == question["message_id"]
    assert shown.text == FORGET_DONE_BEFORE
    assert not shown.params.get("reply_markup")


async def test_a_journal_page_turn_left_by_a_killed_run_is_turned_at_the_restart(usecases, db):
    await write_days(db, "telegram", ALICE, 23)
    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, _):
        await fake.user_sends("/journal list", user=ALICE, chat=ALICE)
        first = await fake.wait_for("sendMessage")
    page = fake.message_of(first)
    press = await FakeTelegramBotAPI(TELEGRAM_TOKEN).user_clicks(buttons(first)[0][1], message=page, user=ALICE)
    await db.inbox.keep(SOURCE, [Arrival(press["update_id"], press, "telegram", str(ALICE))])

    [shown] = await answered_at_the_restart(usecases, db, page)
    assert shown.method == "editMessageText" and int(shown.params["message_id"]) == page["message_id"]
    assert days_listed(shown.text) == newest(10, skip=10)
