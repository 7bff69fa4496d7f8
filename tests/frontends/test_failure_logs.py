"""The line of a failure while the bot runs names whose request met it (the user, hashed; the
group), so that an operator finds the failure a user tells of."""
from __future__ import annotations

import asyncio

from bot.logs import hash_id
from tests.frontends.test_request_ids import lines_of

ALICE = 42


async def test_a_user_who_blocked_the_bot_is_named_in_the_line_that_says_so(telegram, log_stream):
    """'telegram.chat_refuses_the_bot: Forbidden: bot was blocked by the user' named nobody."""
    fake, frontend = telegram
    fake.fail_next("sendMessage", times=1, status=403, description="Forbidden: bot was blocked by the user")
    mark = fake.mark()
    await fake.user_sends("/help", chat=ALICE)
    while not fake.calls_of("sendMessage", after=mark) or frontend.flow.pending:
        await asyncio.sleep(0.01)  # the update handled to the end
    (refused,) = lines_of(log_stream, "telegram.chat_refuses_the_bot")
    assert refused.get("user") == hash_id(str(ALICE), "pepper"), refused
    assert refused.get("level") == "INFO" and "blocked by the user" in refused["event"]
