"""What a demanding Telegram user or group admin meets: a forum topic deleted while the bot answers
in it, and the other edges of a group's life that reach the bot as Telegram's refusals."""
from __future__ import annotations

import asyncio
import logging

from tests.frontends.test_telegram import statuses_of_a_refused_help
from tests.frontends.test_telegram_album import cached_songs
from tests.frontends.test_telegram_probe import QUIET_S, slow_download

GROUP = -100991
ALICE = 42
THREAD_GONE = "Bad Request: message thread not found"
EDIT_GONE = "Bad Request: message to edit not found"


def errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_answer_to_a_forum_topic_deleted_meanwhile_is_one_info_line_and_no_apology(telegram, caplog):
    """An admin deletes a forum topic while the bot answers in it: Telegram refuses the answer
    (400 "message thread not found"), as it would an apology there. Nothing failed in the bot: one
    INFO line, as for a topic the group closed, not a handler failure logged with its traceback."""
    fake, frontend = telegram
    caplog.set_level(logging.INFO)
    statuses = await statuses_of_a_refused_help(fake, frontend, THREAD_GONE, chat=GROUP, user=ALICE, topic=77)
    assert statuses == [400]
    assert not errors(caplog)
    assert len([r for r in caplog.records if "telegram.chat_refuses_the_bot" in r.getMessage()]) == 1


async def test_a_topic_deleted_while_the_bot_listens_ends_the_answer_quietly(telegram, db, caplog):
    """The status message ("Listening…") went out in the topic; the topic is deleted with it. The
    answer's edit finds no message, the answer sent anew finds no topic: one INFO line each, no
    error, no apology sent after them."""
    fake, frontend = telegram
    caplog.set_level(logging.INFO)
    (item, _, _), = await cached_songs(fake, db, 1)
    slow_download(fake)
    fake.fail_next("editMessageText", times=5, status=400, description=EDIT_GONE)
    mark = fake.mark()
    await fake.user_sends("/mood", **item, chat=GROUP, user=ALICE, topic=77)
    await fake.wait_for("sendMessage", after=mark)  # the status message
    fake.fail_next("sendMessage", times=5, status=400, description=THREAD_GONE)
    await asyncio.sleep(1.0 + QUIET_S)
    while frontend.flow.pending:
        await asyncio.sleep(0.01)
    sent = [(c.method, c.status) for c in fake.calls[mark:] if c.method in ("sendMessage", "editMessageText")]
    assert sent == [("sendMessage", 200), ("editMessageText", 400), ("sendMessage", 400)], sent
    assert not errors(caplog)
