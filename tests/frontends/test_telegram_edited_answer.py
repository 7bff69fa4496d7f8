"""Telegram: a reply to the daily prompt edited afterwards (a misspelled song corrected) was met
with silence, and the user waited for an answer to the edit, or took the song for saved; the edit is
now answered with what to do instead. An edited reply to anything else is still let be."""
from __future__ import annotations

import asyncio

from bot.frontends.telegram import EDITED_ANSWER
from storage.models import UserRef
from tests.frontends.test_telegram import ALICE
from tests.frontends.test_telegram_forget_races import open_prompt


async def test_an_edited_answer_to_the_prompt_is_told_edits_are_not_read(telegram, db, usecases):
    fake, frontend = telegram
    prompt = await open_prompt(fake, frontend, db, usecases)
    answer = await fake.user_sends("Radiohead - Creeep", reply_to=prompt["message_id"])
    await fake.wait_for("sendMessage")
    mark = fake.mark()
    await fake.user_edits(answer, "Radiohead - Creep")
    told = await fake.wait_for("sendMessage", after=mark)
    assert told.text == EDITED_ANSWER
    assert await db.journal.list(UserRef("telegram", str(ALICE))) == []


async def test_an_edited_reply_to_another_message_is_let_be(telegram):
    fake, _ = telegram
    reply = await fake.user_sends("Creep", reply_to=5)
    await fake.wait_for("sendMessage")
    mark = fake.mark()
    await fake.user_edits(reply, "Creep, by Radiohead")
    await asyncio.sleep(0.5)
    assert [c.method for c in fake.calls[mark:] if c.method == "sendMessage"] == []
