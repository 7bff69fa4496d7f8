"""Given buttons the bot showed before it restarted (/journal list's pages, /forget's Yes/No), a
press on them after the restart is answered: the page turns, or the user is asked to type /forget
again (nothing erased). discord.py drops a press no view of its process listens for, and Discord
then tells the user only "This interaction failed"."""
from __future__ import annotations

import pytest

from bot.frontends import render
from bot.frontends.discord.journal import (
    FORGET_CANCELLED,
    FORGET_EXPIRED,
    NEWER_BUTTON,
    NOT_YOUR_BUTTON,
    OLDER_BUTTON,
    PAGES_EXPIRED,
)
from storage.models import UserRef
from tests.fakes.discord_api import EPHEMERAL
from tests.frontends.test_discord import ALICE, BOB, DEFERRED_UPDATE, MESSAGE, private_answer
from tests.frontends.test_journal_pages import days_listed, discord_button, newest, shown_buttons, turned, write_days

LIST = [{"name": "list", "type": 1}]


async def private_refusal(fake) -> str:
    """A press answered with a private message of its own (the pressed message stays as it was)."""
    answer = await fake.wait_for("interaction_callback")
    assert answer.json["type"] == MESSAGE and answer.flags & EPHEMERAL
    return answer.content


async def list_then_restart(fake, db, restart):
    """Alice's 23-day journal listed (page 1, its buttons), then the bot restarted: the list's message."""
    await write_days(db, "discord", ALICE, 23)
    await fake.slash("journal", LIST, user=ALICE)
    first = await private_answer(fake)
    await restart()
    return first


async def forget_asked(fake, db) -> str:
    """Alice, with 3 journal entries, asked /forget: the id of its question, under Yes and No."""
    await write_days(db, "discord", ALICE, 3)
    await fake.slash("forget", user=ALICE)
    question = await fake.wait_for("interaction_callback")
    return question.result["interaction"]["response_message_id"]


async def test_page_buttons_shown_before_a_restart_still_turn_the_page(discord_bot, db, restart):
    fake, _ = discord_bot
    first = await list_then_restart(fake, db, restart)

    message_id = first.result["id"]
    await fake.click(message_id, discord_button(first, OLDER_BUTTON), user=ALICE)
    second = await turned(fake)
    assert days_listed(second["content"]) == newest(10, skip=10)
    assert shown_buttons(second) == [(OLDER_BUTTON, False), (NEWER_BUTTON, False)]
    # The message's buttons are answered again, as under a list shown since the restart.
    await fake.click(message_id, discord_button(second, OLDER_BUTTON), user=ALICE)
    third = await turned(fake)
    assert days_listed(third["content"]) == newest(3, skip=20)
    await fake.click(message_id, discord_button(third, NEWER_BUTTON), user=ALICE)
    assert days_listed((await turned(fake))["content"]) == newest(10, skip=10)


async def test_page_buttons_shown_before_a_restart_answer_their_owner_only(discord_bot, db, restart):
    fake, _ = discord_bot
    first = await list_then_restart(fake, db, restart)

    refused = fake.mark()
    await fake.click(first.result["id"], discord_button(first, OLDER_BUTTON), user=BOB)
    assert await private_refusal(fake) == NOT_YOUR_BUTTON
    owners = fake.mark()
    await fake.click(first.result["id"], discord_button(first, OLDER_BUTTON), user=ALICE)
    assert days_listed((await turned(fake))["content"]) == newest(10, skip=10)
    assert [c.name for c in fake.calls[refused:owners]] == ["interaction_callback"]  # no page for Bob


async def test_a_page_button_on_entries_forgotten_since_the_restart_says_so(discord_bot, db, restart):
    fake, _ = discord_bot
    first = await list_then_restart(fake, db, restart)
    await db.privacy.forget(UserRef("discord", str(ALICE)))

    await fake.click(first.result["id"], discord_button(first, OLDER_BUTTON), user=ALICE)
    gone = await turned(fake)
    assert gone["content"] == "Those entries are no longer in your journal. /journal list shows your latest."
    assert gone["components"] == []


async def test_page_buttons_of_an_earlier_version_ask_for_the_list_again(discord_bot, restart):
    """Buttons shown by the version before page buttons carried their owner and entry."""
    fake, _ = discord_bot
    await restart()
    await fake.click(fake.snowflake(), "journal:older", user=ALICE)
    assert await private_refusal(fake) == PAGES_EXPIRED


@pytest.mark.parametrize("answer", ["forget:yes", "forget:no"])
async def test_a_forget_confirmation_shown_before_a_restart_asks_again_and_deletes_nothing(
        discord_bot, db, restart, answer):
    fake, _ = discord_bot
    message_id = await forget_asked(fake, db)
    await restart()

    await fake.click(message_id, answer, user=ALICE)
    assert await private_refusal(fake) == FORGET_EXPIRED
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 3


async def test_a_second_press_of_yes_while_deleting_is_not_taken_for_an_expired_confirmation(discord_bot, db):
    """A double-click on "Yes": the first press deletes and says so; the second neither asks the
    user to type /forget again nor says that nothing was deleted."""
    fake, _ = discord_bot
    message_id = await forget_asked(fake, db)
    release = fake.hold_next("edit_original")  # the "Done" answer, still on its way
    await fake.click(message_id, "forget:yes", user=ALICE)
    first = await fake.wait_for("interaction_callback")
    await fake.wait_for("edit_original", lambda c: c.token == first.token)
    second = await fake.click(message_id, "forget:yes", user=ALICE)
    helped = await fake.slash("help", user=ALICE)  # answered after the second press was handled
    await fake.wait_for("interaction_callback", lambda c: c.token == helped["token"])
    release.set()

    (acknowledged,) = [c for c in fake.calls if c.token == second["token"]]
    assert acknowledged.json["type"] == DEFERRED_UPDATE  # not "This interaction failed"; nothing shown
    shown = [c.content for c in fake.calls if c.name in ("interaction_callback", "edit_original")]
    assert not any(text in (FORGET_EXPIRED, FORGET_CANCELLED, render.GENERIC_ERROR) for text in shown)
    assert any(text.startswith("Done: I deleted everything") for text in shown)
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 0


@pytest.mark.parametrize("first,second", [("forget:no", "forget:no"), ("forget:yes", "forget:yes"),
                                          ("forget:no", "forget:yes"), ("forget:yes", "forget:no")])
async def test_a_second_press_after_the_answer_is_shown_changes_nothing_and_says_nothing(discord_bot, db,
                                                                                         first, second):
    """A double click whose second press reaches the bot once the first one's answer is shown (the
    buttons leave the user's screen only when Discord's client gets that edit): it is acknowledged,
    and the answer shown stays; it is not told the confirmation expired under "Nothing was deleted"."""
    fake, _ = discord_bot
    message_id = await forget_asked(fake, db)
    await fake.click(message_id, first, user=ALICE)
    answered = await fake.wait_for("interaction_callback")
    if first == "forget:yes":
        await fake.wait_for("edit_original", lambda c: c.token == answered.token)  # "Done: …"
    mark = fake.mark()

    pressed = await fake.click(message_id, second, user=ALICE)
    repeat = await fake.wait_for("interaction_callback", lambda c: c.token == pressed["token"])
    assert repeat.json["type"] == DEFERRED_UPDATE  # acknowledged: the message is left as it is
    helped = await fake.slash("help", user=ALICE)  # answered after anything the second press made
    await fake.wait_for("interaction_callback", lambda c: c.token == helped["token"])
    assert [c for c in fake.calls[mark:] if c.token != helped["token"]] == [repeat]
    assert await db.journal.count(UserRef("discord", str(ALICE))) == (0 if first == "forget:yes" else 3)


@pytest.mark.parametrize("custom_id, command", [("mood:again:5", "/mood"), ("v1|page|2", None)])
async def test_a_button_the_bot_does_not_know_is_answered_with_what_to_type(discord_bot, caplog, custom_id, command):
    """A press whose custom_id no version of this bot's buttons carries (an earlier version's
    button, crafted data) was dropped, and Discord told the user "This interaction failed"; it is
    now answered with what to type instead, and logged for the operator."""
    fake, _ = discord_bot
    await fake.click(fake.snowflake(), custom_id, user=ALICE)
    said = await private_refusal(fake)
    assert said.startswith("This button no longer works:") and f"type {command or 'the command'} again" in said
    assert [r.data for r in caplog.records if r.getMessage() == "discord.unknown_button"] == [custom_id]


async def test_a_button_its_message_s_view_does_not_hold_is_answered_and_the_view_still_is(discord_bot, db):
    """The /forget question's view answers its own Yes and No only: another custom_id on its
    message reached no view and was left unanswered."""
    fake, _ = discord_bot
    message_id = await forget_asked(fake, db)
    await fake.click(message_id, "forget:maybe", user=ALICE)
    assert (await private_refusal(fake)).startswith("This button no longer works: type /forget again")
    await fake.click(message_id, "forget:no", user=ALICE)
    assert (await fake.wait_for("interaction_callback")).json["type"] != MESSAGE  # its view answered it
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 3
