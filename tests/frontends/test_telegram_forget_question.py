"""A Telegram /forget question answered long after it was asked: its "Yes, delete everything"
stays under it in the chat for good (Telegram takes no keyboard away), where Discord's confirmation
goes after two minutes. A press on one left unanswered for days deleted everything kept since,
which the user never saw the question for; it asks for /forget again and deletes nothing."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from bot.usecases.privacy import FORGET_CONFIRM_S, FORGET_EXPIRED, FORGET_EXPLANATION
from storage.inbox import Arrival
from storage.models import UserRef
from tests.fakes.telegram_api import BOT_ID, FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN, telegram_on

ALICE = 42


async def asked_to_forget(fake) -> dict:
    """Alice has something stored, and the question /forget asks her, as Telegram sent it."""
    await fake.user_sends("/share off", user=ALICE, chat=ALICE)
    await fake.wait_for("sendMessage")
    await fake.user_sends("/forget", user=ALICE, chat=ALICE)
    return fake.message_of(await fake.wait_for("sendMessage"))


@pytest.mark.parametrize("asked", ["a day before", "so long ago Telegram no longer shows it to the bot"])
async def test_a_forget_question_left_unanswered_for_long_deletes_nothing_and_asks_again(telegram, db, asked):
    fake, _ = telegram
    question = await asked_to_forget(fake)
    mark = fake.mark()
    if asked == "a day before":
        await fake.user_clicks(f"forget:yes:{ALICE}", message={**question, "date": int(time.time()) - 86_400},
                               user=ALICE)
    else:  # an InaccessibleMessage: its date 0
        await fake.user_clicks(f"forget:yes:{ALICE}", message=question, user=ALICE, inaccessible=True)

    shown = await fake.wait_for_reply(after=mark)
    assert shown.text == FORGET_EXPIRED
    assert not shown.params.get("reply_markup")  # its buttons gone
    assert (await db.users.get(UserRef("telegram", str(ALICE)))) is not None


def yes_of(question: dict) -> str:
    """The data of the question's "Yes, delete everything" button, as the bot made it."""
    [[yes, _]] = question["reply_markup"]["inline_keyboard"]
    return yes["callback_data"]


async def test_a_question_is_timed_by_this_machine_s_clock_whatever_telegram_s_says(telegram, db):
    """Telegram dates its messages by its own clock: on a machine whose clock is some minutes ahead
    of it, every question would read as expired at once, and /forget could never be confirmed. The
    button says when the bot asked, by its own clock."""
    fake, _ = telegram
    question = await asked_to_forget(fake)
    mark = fake.mark()
    await fake.user_clicks(yes_of(question), message={**question, "date": int(time.time()) - 600}, user=ALICE)
    assert (await fake.wait_for_reply(after=mark)).text.startswith("Done: I deleted everything")


async def test_a_question_asked_long_ago_by_this_machine_s_clock_deletes_nothing(telegram, db):
    fake, _ = telegram
    question = await asked_to_forget(fake)
    asked = int(yes_of(question).rsplit(":", 1)[1])
    mark = fake.mark()
    await fake.user_clicks(f"forget:yes:{ALICE}:{asked - 600}", message=question, user=ALICE)
    assert (await fake.wait_for_reply(after=mark)).text == FORGET_EXPIRED
    assert (await db.users.get(UserRef("telegram", str(ALICE)))) is not None


async def test_a_forget_question_answered_within_its_time_deletes_everything(telegram, db):
    fake, _ = telegram
    question = await asked_to_forget(fake)
    mark = fake.mark()
    await fake.user_clicks(f"forget:yes:{ALICE}", user=ALICE,
                           message={**question, "date": int(time.time()) - int(FORGET_CONFIRM_S) + 10})
    assert (await fake.wait_for_reply(after=mark)).text.startswith("Done: I deleted everything")
    assert (await db.users.get(UserRef("telegram", str(ALICE)))) is None


async def test_a_yes_pressed_in_time_and_handed_over_again_after_a_kill_deletes_everything(usecases, db):
    """The bot was killed before it answered a press made in time; its restart, minutes later, hands
    the press over again (the inbox): the press's time counts, not the restart's."""
    alice = UserRef("telegram", str(ALICE))
    await db.users.set_sharing(alice, False)  # something to delete
    pressed_at = time.time() - 600
    question = {"message_id": 7, "date": int(pressed_at) - 30, "text": FORGET_EXPLANATION,
                "chat": {"id": ALICE, "type": "private", "first_name": "Alice"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "moodbot"}}
    press = await FakeTelegramBotAPI(TELEGRAM_TOKEN).user_clicks(f"forget:yes:{ALICE}", message=question, user=ALICE)
    await db.inbox.keep(f"telegram:{BOT_ID}", [Arrival(press["update_id"], press, alice.platform, alice.user_id,
                                                        received=datetime.fromtimestamp(pressed_at, timezone.utc))])

    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, _):
        shown = await fake.wait_for_reply(after=0)

    assert shown.text.startswith("Done: I deleted everything")
    assert await db.users.get(alice) is None
