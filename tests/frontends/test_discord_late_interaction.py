"""Given a command or a button press whose first answer Discord refuses as past its 3 s (404, 10062
Unknown interaction: the bot's loop held up, the gateway's event come late, a run killed before
its deferral replayed at the start), nothing can answer it any more, an apology neither: one
WARNING says how late it was, where it was an ERROR with a traceback, as a bug is, and a second
response was sent, to be refused the same."""
from __future__ import annotations

import logging

import pytest

from bot.frontends.discord.journal import FORGET_EXPIRED
from storage.models import UserRef
from tests.frontends.test_discord import STRING, failures_logged, sub
from tests.frontends.test_telegram_inbox import until

ALICE = 42
UNKNOWN_INTERACTION = 10062


def refused_as_too_late(fake) -> None:
    fake.fail_next("interaction_callback", times=2, status=404, code=UNKNOWN_INTERACTION,
                   message="Unknown interaction")


@pytest.mark.parametrize("command,options", [("journal", sub("list")), ("help", None), ("forget", None)],
                         ids=["deferred", "answered at once", "answered with buttons"])
async def test_a_command_too_late_to_answer_is_a_warning_and_no_second_response(discord_bot, caplog, command, options):
    fake, _ = discord_bot
    refused_as_too_late(fake)
    mark = fake.mark()
    await fake.slash(command, options, user=ALICE)
    await expired_said(fake, caplog, mark)


async def test_a_button_press_too_late_to_answer_is_a_warning_and_no_second_response(discord_bot, caplog):
    fake, _ = discord_bot
    refused_as_too_late(fake)
    mark = fake.mark()
    await fake.click(fake.snowflake(), "journal:older", user=ALICE)  # an old page button: told to list again
    await expired_said(fake, caplog, mark)


async def test_a_forget_confirmation_pressed_too_late_is_a_warning_deletes_nothing_and_asks_again(discord_bot, db,
                                                                                                caplog):
    fake, _ = discord_bot
    await fake.slash("share", [{"name": "choice", "type": STRING, "value": "off"}], user=ALICE)  # something kept
    await fake.wait_for("edit_original")
    await fake.slash("forget", user=ALICE)
    question = (await fake.wait_for("interaction_callback")).result["interaction"]["response_message_id"]
    refused_as_too_late(fake)
    mark = fake.mark()
    await fake.click(question, "forget:yes", user=ALICE)
    await expired_said(fake, caplog, mark)
    assert await db.users.get(UserRef("discord", str(ALICE))) is not None  # nothing deleted
    fake.fail_next("interaction_callback", times=0)  # Discord answers in time again
    await fake.click(question, "forget:yes", user=ALICE)  # pressed again: told to ask again, as after a restart
    assert (await fake.wait_for("interaction_callback")).content == FORGET_EXPIRED


async def expired_said(fake, caplog, mark: int) -> None:

    said = await until(lambda: [r for r in caplog.records if r.getMessage() == "discord.interaction_expired"])
    assert said, [r.getMessage() for r in caplog.records]
    [late] = said
    assert late.levelno == logging.WARNING and late.exc_info is None and late.late_s >= 0
    assert not failures_logged(caplog) and not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(fake.calls_of("interaction_callback", after=mark)) == 1
