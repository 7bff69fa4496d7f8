"""`python -m bot` killed outright (SIGKILL, as an out-of-memory kill) while a Telegram /forget's
"Yes, delete everything" was at work: the press is kept in the inbox until answered, as every
update, and the restart hands it over again. It was kept under its sender, so the /forget it
started deleted it with the sender's other requests kept before it deleted their data: a kill
half-way left the deletion half done (the settings withdrawn, the journal still there) and the
question's buttons shown over it, for good. The Discord case is tests/bot/test_discord_press_killed.py."""
from __future__ import annotations

import asyncio

from storage.models import UserRef
from tests.bot import test_app_stop
from tests.bot.test_app import telegram_env
from tests.bot.test_app_stop import killed_in_the_delete, running_bot
from tests.frontends.test_journal_pages import write_days
from tests.frontends.test_telegram_forget_question import yes_of

ALICE = 42
telegram, gate = test_app_stop.telegram, test_app_stop.gate  # its fixtures: the fake Telegram, the database's relay


async def test_a_telegram_forget_yes_the_bot_was_killed_outright_in_is_finished_after_the_restart(
        tmp_path, gate, telegram, mongo_uri, db_name, db):
    """`kill -9` while "Yes, delete everything" deleted (the settings withdrawn, the journal still
    there): the restart finishes it and says so in the question's message, once."""
    await write_days(db, "telegram", ALICE, 3)
    env = telegram_env(telegram, tmp_path / "data", MONGODB_URI=gate.uri(mongo_uri), MONGODB_DATABASE=db_name)
    async with running_bot(tmp_path, env) as proc:
        await telegram.user_sends("/forget", chat=ALICE, user=ALICE)
        question = telegram.message_of(await telegram.wait_for("sendMessage", timeout=30))
        await killed_in_the_delete(proc, gate,
                                   lambda: telegram.user_clicks(yes_of(question), message=question, user=ALICE))
    assert await db.journal.count(UserRef("telegram", str(ALICE))) == 3
    mark = telegram.mark()

    async with running_bot(tmp_path, env):
        done = await telegram.wait_for_reply(lambda c: c.chat_id == str(ALICE), timeout=60, after=mark)
        await asyncio.sleep(1.5)  # a second answer would have come by now
    assert done.text.startswith("Done: I deleted everything about you ("), done.text  # what was left
    assert done.method == "editMessageText" and int(done.params["message_id"]) == question["message_id"]
    assert [c.text for c in telegram.calls[mark:]
            if c.method in ("sendMessage", "editMessageText") and c.chat_id == str(ALICE)] == [done.text]
    assert await db.journal.count(UserRef("telegram", str(ALICE))) == 0
    assert "inbox.replayed" in (tmp_path / "stderr").read_text()
