"""Given a user presses a button whose message is deleted before the bot shows the answer in it
(a group's admin or cleaning bot removed the keyboard, the user cleared the chat), Telegram
refuses the edit: the button's work is done all the same, and its answer comes as a new message,
never an apology."""
from __future__ import annotations

import asyncio

import pytest

from bot.frontends import render
from tests.frontends.test_journal_pages import buttons, days_listed, newest, write_days
from tests.frontends.test_telegram import direct_messages

ALICE, BOB = 42, 43
GROUP = -100777
EDIT_NOT_FOUND = "Bad Request: message to edit not found"


async def handled(fake, frontend, mark: int) -> None:
    """Return once the press after `mark` is answered and handled to the end."""
    while not fake.calls_of("answerCallbackQuery", after=mark) or frontend.flow.pending:
        await asyncio.sleep(0.01)


def apologies(fake, mark: int) -> list[str]:
    return [c.text for c in fake.calls_of("sendMessage", after=mark) if c.text == render.GENERIC_ERROR]


async def test_a_forget_confirmed_on_a_question_deleted_meanwhile_says_it_is_done(telegram):
    """Everything is deleted at the press: the user must read that it was, not 'Sorry, something
    went wrong', which would have them believe their data is still kept."""
    fake, frontend = telegram
    await fake.user_sends("/share off", user=ALICE, chat=ALICE)  # something to delete
    await fake.wait_for("sendMessage")
    await fake.user_sends("/forget", user=ALICE, chat=ALICE)
    question = await fake.wait_for("sendMessage")
    fake.fail_next("editMessageText", times=1, status=400, description=EDIT_NOT_FOUND)
    mark = fake.mark()
    await fake.user_clicks(f"forget:yes:{ALICE}", message=question, user=ALICE)
    done = await fake.wait_for("sendMessage", after=mark)
    assert done.text.startswith("Done: I deleted everything") and done.chat_id == str(ALICE)
    await handled(fake, frontend, mark)
    assert not apologies(fake, mark)


async def test_a_journal_page_whose_list_was_deleted_comes_as_a_new_message_with_its_buttons(telegram, db):
    fake, _ = telegram
    await write_days(db, "telegram", ALICE, 23)
    await fake.user_sends("/journal list", user=ALICE, chat=ALICE)
    first = await fake.wait_for("sendMessage")
    [(_, older)] = buttons(first)
    fake.fail_next("editMessageText", times=1, status=400, description=EDIT_NOT_FOUND)
    mark = fake.mark()
    await fake.user_clicks(older, message=first, user=ALICE)
    page = await fake.wait_for("sendMessage", after=mark)
    assert days_listed(page.text) == newest(10, skip=10)
    assert [label for label, _ in buttons(page)] == ["◀ Older", "Newer ▶"]


@pytest.mark.parametrize(("where", "kept"), [
    ({"topic": 77}, ("message_thread_id", 77)),
    ({"extra": direct_messages(GROUP, ALICE)}, ("direct_messages_topic_id", 31)),  # a channel's direct messages
], ids=["forum topic", "direct messages topic"])
async def test_a_mood_button_whose_keyboard_a_cleaning_bot_deleted_answers_in_the_same_forum_topic(telegram, where,
                                                                                                  kept):
    fake, frontend = telegram
    await fake.user_sends("/playlist", chat=GROUP, user=ALICE, **where)
    keyboard = await fake.wait_for("sendMessage")
    name, topic = kept
    shown = {**fake.message_of(keyboard), **({"is_topic_message": True, "message_thread_id": topic}
                                              if name == "message_thread_id" else where["extra"])}
    fake.fail_next("editMessageText", times=1, status=400, description=EDIT_NOT_FOUND)
    mark = fake.mark()
    await fake.user_clicks("playlist:sad", message=shown, user=BOB)
    answer = await fake.wait_for("sendMessage", after=mark)
    assert "No sad songs here yet" in answer.text
    assert int(answer.params.get(name, 0)) == topic
    await handled(fake, frontend, mark)
    assert not apologies(fake, mark)


# A button under a message some days old -------------------------------------------------------


async def test_a_page_button_under_a_list_some_days_old_still_turns_the_page_in_place(telegram, db):
    """Telegram sends a press on an old message with an InaccessibleMessage (its chat and id only,
    date 0). PTB 22 reads it as a Message without content and still edits it; a PTB handing over an
    InaccessibleMessage would refuse CallbackQuery.edit_message_text (TypeError): an apology."""
    fake, frontend = telegram
    await write_days(db, "telegram", ALICE, 23)
    await fake.user_sends("/journal list", user=ALICE, chat=ALICE)
    first = await fake.wait_for("sendMessage")
    [(_, older)] = buttons(first)
    mark = fake.mark()
    await fake.user_clicks(older, message=first, user=ALICE, inaccessible=True)
    page = await fake.wait_for("editMessageText", after=mark)
    assert days_listed(page.text) == newest(10, skip=10)
    assert int(page.params["message_id"]) == fake.message_of(first)["message_id"]
    await handled(fake, frontend, mark)
    assert not apologies(fake, mark)
