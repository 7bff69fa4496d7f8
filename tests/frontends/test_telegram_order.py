"""A user's updates that arrive together (a queue built up during a restart, a burst on reconnect)
are answered one after another, in the order they were sent: `/journal on` then `/journal off`
leaves the journal off, and the answers read in that order (other senders' updates not held up
by it, and a slow update holding up its sender's next for `turn_s` at most: test_telegram_flow)."""
from __future__ import annotations

from storage.models import UserRef
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN, telegram_on

USERS = range(100, 120)
ON, OFF = "/journal on 21:30 Europe/Lisbon", "/journal off"


def replies_to(fake: FakeTelegramBotAPI, user: int) -> list[str]:
    return [call.text for call in fake.calls_of("sendMessage") if call.chat_id == str(user)]


async def test_on_then_off_queued_together_leaves_every_journal_off_answered_in_order(usecases, db):
    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, _):
        for user in USERS:  # all queued at Telegram before the bot fetches them: one getUpdates batch
            await fake.user_sends(ON, chat=user)
            await fake.user_sends(OFF, chat=user)
        for user in USERS:
            await fake.wait_for("sendMessage", lambda call, user=user: len(replies_to(fake, user)) == 2)
        for user in USERS:
            assert [text.split(":")[0] for text in replies_to(fake, user)] == ["Journal on", "Journal off"], user
            assert not (await db.users.get(UserRef("telegram", str(user)))).journal_enabled, user


async def test_a_users_next_command_waits_for_the_answer_before_it(usecases, db):
    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, _):
        fake.delay_next("sendMessage", 0.5)  # the answer to /journal on takes Telegram 0.5 s
        await fake.user_sends(ON, chat=100)
        await fake.user_sends(OFF, chat=100)
        await fake.wait_for("sendMessage", lambda call: len(replies_to(fake, 100)) == 2)
        on, off = (call for call in fake.calls_of("sendMessage") if call.chat_id == "100")
        assert on.text.startswith("Journal on") and off.text.startswith("Journal off")
        assert off.at - on.at >= 0.45  # /journal off ran once /journal on was answered
        assert not (await db.users.get(UserRef("telegram", "100"))).journal_enabled
