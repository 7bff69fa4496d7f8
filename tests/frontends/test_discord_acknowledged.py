"""A response Discord made but whose answer never came back: its edge answered 502 (discord.py sends
it again, and Discord refuses that as already acknowledged, 40060), or the connection was cut off.
A deferral so made stands: the command's answer edits it, rather than leaving the asker on
"moodbot is thinking…" until the interaction expires. A command that fails all the same apologises
in the response Discord made, unless that shows the command's answer."""
from __future__ import annotations

import asyncio
import logging

import pytest

from bot.frontends import render
from storage.models import UserRef
from tests.frontends.test_discord_deleted_answer import VIDEO, cache_video
from tests.frontends.test_journal_pages import write_days
from tests.frontends.test_telegram_inbox import until

GUILD = 777000000000000001
ALICE = 42
STRING = 3  # an application command option's type
SUB_COMMAND = 1
DEFERRED = 5  # an interaction callback's type: "thinking…"

# Commands that defer, from each cog: (name, options, in a server?)
DEFERRING = [
    pytest.param("journal", [{"name": "list", "type": SUB_COMMAND, "options": []}], False, id="journal list"),
    pytest.param("stats", [], False, id="stats"),
    pytest.param("share", [{"name": "choice", "type": STRING, "value": "off"}], True, id="share"),
    pytest.param("servermood", [], True, id="servermood"),
    pytest.param("mood", [{"name": "query", "type": STRING, "value": VIDEO}], True, id="mood"),
]


def failures_logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("bot.") and r.levelno >= logging.ERROR]


@pytest.mark.parametrize(("name", "options", "in_server"), DEFERRING)
async def test_every_deferring_command_answers_after_its_deferral_was_answered_502(discord_bot, db, caplog,
                                                                                name, options, in_server):
    fake, _ = discord_bot
    await cache_video(db)  # /mood's song: these tests have no classifier
    fake.take_then_fail_next("interaction_callback", status=502)
    await fake.slash(name, options, guild=GUILD if in_server else None)
    answered = await fake.wait_for("edit_original", lambda c: c.content != render.GENERIC_ERROR)
    callbacks = fake.calls_of("interaction_callback")
    assert [c.status for c in callbacks] == [502, 400]  # made, then its resend refused: nothing more sent
    assert callbacks[0].json["type"] == DEFERRED and answered.token == callbacks[0].token
    assert not [c for c in fake.calls if c.content == render.GENERIC_ERROR]
    assert not failures_logged(caplog)


async def test_a_command_failing_after_its_deferral_was_cut_off_apologises_in_the_thinking_response(discord_bot):
    fake, _ = discord_bot
    fake.take_then_fail_next("interaction_callback", status=0)  # made, then the connection cut off: discord.py raises
    await fake.slash("stats")
    apology = await fake.wait_for("edit_original")
    deferred = fake.calls_of("interaction_callback")[0]
    assert apology.content == render.GENERIC_ERROR and apology.token == deferred.token
    refused = fake.calls_of("interaction_callback")[1]  # the apology as a response of its own
    assert refused.status == 400 and refused.content == render.GENERIC_ERROR


async def test_an_answer_made_but_answered_502_is_not_replaced_by_an_apology(discord_bot):
    """/forget answers at once (no deferral): made, its question stays, whatever discord.py made of it."""
    fake, _ = discord_bot
    fake.take_then_fail_next("interaction_callback", status=502)
    await fake.slash("forget", guild=GUILD)
    await fake.wait_for("get_original")  # what Discord shows: the question, no "thinking"
    question = fake.calls_of("interaction_callback")[0]
    assert question.status == 502 and question.json["data"]["components"]
    assert not fake.calls_of("edit_original") and not fake.calls_of("followup")


async def test_a_server_administrator_without_manage_server_s_own_bit_is_an_admin(discord_bot):
    fake, _ = discord_bot
    fake.administrators.add(ALICE)
    await fake.slash("serverplaylist", [{"name": "state", "type": STRING, "value": "off"}], guild=GUILD, user=ALICE)
    answer = await fake.wait_for("edit_original")
    assert answer.content.startswith("Server playlists are off")


async def test_forget_s_question_answered_502_still_listens_for_its_buttons(discord_bot, db, caplog):
    """/forget answers at once, with Yes / No: Discord made that response and answered 502. Its
    buttons were shown with nobody listening ("This interaction failed"), the command logged as
    failed; the response now stands, read back for its id, and its buttons work."""
    fake, _ = discord_bot
    await write_days(db, "discord", ALICE, 2)
    fake.take_then_fail_next("interaction_callback", status=502)
    await fake.slash("forget", user=ALICE)
    question = await fake.wait_for("get_original")  # its message, read back
    callbacks = fake.calls_of("interaction_callback")
    assert [c.status for c in callbacks] == [502, 400]
    made = callbacks[0].result["interaction"]["response_message_id"]
    assert question.result["id"] == made

    await fake.click(made, "forget:yes", user=ALICE)
    deferred = await fake.wait_for("interaction_callback")
    done = await fake.wait_for("edit_original", lambda c: c.token == deferred.token)
    assert done.content.startswith("Done: I deleted everything")
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 0
    assert not failures_logged(caplog)


async def test_a_command_answered_at_once_whose_response_was_answered_502_is_not_a_failure(discord_bot, caplog):
    fake, _ = discord_bot
    fake.take_then_fail_next("interaction_callback", status=502)
    await fake.slash("help")
    await fake.wait_for("get_original")
    callbacks = fake.calls_of("interaction_callback")
    assert [c.status for c in callbacks] == [502, 400] and "/mood" in callbacks[0].content
    assert not [c for c in fake.calls if c.content == render.GENERIC_ERROR]
    assert not failures_logged(caplog)


async def forget_then_yes(fake, db, fail_response) -> None:
    """Alice's /forget, its response failed by `fail_response(fake)`, then her "Yes": everything deleted."""
    await write_days(db, "discord", ALICE, 2)
    fail_response(fake)
    await fake.slash("forget", user=ALICE)
    question = await fake.wait_for("get_original")  # its message, read back
    await fake.click(int(question.result["id"]), "forget:yes", user=ALICE)
    deferred = await fake.wait_for("interaction_callback", lambda c: c.status == 200)
    done = await fake.wait_for("edit_original", lambda c: c.token == deferred.token)
    assert done.content.startswith("Done: I deleted everything")
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 0


async def test_forget_s_question_whose_connection_was_cut_off_still_listens_for_its_buttons(discord_bot, db, caplog):
    """Discord made the response, and the connection was cut off before its answer: no 5xx for
    discord.py to resend, so the command failed there, and its Yes / No answered "expired"."""
    fake, _ = discord_bot
    await forget_then_yes(fake, db, lambda f: f.take_then_fail_next("interaction_callback", status=0))
    assert not failures_logged(caplog)


async def test_a_response_made_whose_read_back_fails_is_not_replaced_by_an_apology(discord_bot, caplog):
    """/help's response made, answered 502, and the read-back of its message cut off: /help needs
    no id, and its answer, shown, was edited into "Something went wrong"."""
    fake, _ = discord_bot
    fake.take_then_fail_next("interaction_callback", status=502)
    fake.drop_next("get_original", times=5)
    await fake.slash("help")
    assert await until(lambda: len(fake.calls_of("get_original")) >= 1)
    await asyncio.sleep(0.5)
    assert not [c for c in fake.calls if c.content == render.GENERIC_ERROR]
    assert not fake.calls_of("edit_original") and not fake.calls_of("followup")
    assert not failures_logged(caplog)
