"""Given a Telegram user types a command, the bot answers through the Bot API as a user would see it."""
from __future__ import annotations

import asyncio
import json
import time

from telegram import Message

from bot.frontends import render
from bot.frontends.telegram import COMMANDS, JOURNAL_USAGE, StatusMessage, send_reply
from bot.replies import STAGE_DOWNLOADING, STAGE_FINDING, STAGE_LISTENING, PromptMessage

GROUP = -100777
ALICE, BOB = 42, 43


async def test_start_sets_the_command_list_and_help_lists_every_command(telegram):
    fake, _ = telegram
    registered = fake.calls_of("setMyCommands")[0].params["commands"]
    assert [c["command"] for c in registered] == [name for name, _ in COMMANDS]
    await fake.user_sends("/help")
    reply = await fake.wait_for("sendMessage")
    for command in ("/mood", "/journal", "/playlist", "/forget"):
        assert command in reply.text


async def test_journal_without_arguments_explains_the_usage(telegram):
    fake, _ = telegram
    await fake.user_sends("/journal on 21:30")
    reply = await fake.wait_for("sendMessage")
    assert reply.text == JOURNAL_USAGE


async def test_journal_on_with_an_unknown_zone_is_refused_readably(telegram):
    fake, _ = telegram
    await fake.user_sends("/journal on 21:30 Mars/Olympus")
    reply = await fake.wait_for("sendMessage")
    assert "Mars/Olympus" in reply.text


async def test_an_empty_journal_list_says_how_to_start(telegram):
    fake, _ = telegram
    await fake.user_sends("/journal list")
    assert (await fake.wait_for("sendMessage")).text == render.EMPTY_JOURNAL


async def test_playlist_without_mood_offers_the_four_moods_and_a_button_answers(telegram):
    fake, _ = telegram
    await fake.user_sends("/playlist", chat=GROUP, user=ALICE)
    keyboard = await fake.wait_for("sendMessage")
    buttons = [b["callback_data"] for row in keyboard.params["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == ["playlist:happy", "playlist:energetic", "playlist:sad", "playlist:calm"]
    await fake.user_clicks("playlist:sad", message=keyboard, user=ALICE)
    answer = await fake.wait_for("editMessageText")
    assert "No sad songs here yet" in answer.text
    assert fake.calls_of("answerCallbackQuery")


async def test_playlist_in_a_private_chat_is_refused(telegram):
    fake, _ = telegram
    await fake.user_sends("/playlist happy")
    reply = await fake.wait_for("sendMessage")
    assert "group" in reply.text.lower() or "server" in reply.text.lower()


async def test_forget_asks_first_and_only_the_owner_can_confirm(telegram):
    fake, _ = telegram
    await fake.user_sends("/share off", user=ALICE, chat=ALICE)  # something to delete
    await fake.wait_for("sendMessage")
    await fake.user_sends("/forget", user=ALICE, chat=ALICE)
    question = await fake.wait_for("sendMessage")
    assert not fake.calls_of("editMessageText")
    await fake.user_clicks(f"forget:yes:{ALICE}", message=question, user=BOB)
    refused = await fake.wait_for("answerCallbackQuery")
    assert refused.params["text"] == "This button belongs to someone else."
    await fake.user_clicks(f"forget:yes:{ALICE}", message=question, user=ALICE)
    done = await fake.wait_for("editMessageText")
    assert done.text.startswith("Done: I deleted everything")


async def test_forget_no_keeps_everything(telegram):
    fake, _ = telegram
    await fake.user_sends("/forget")
    question = await fake.wait_for("sendMessage")
    await fake.user_clicks(f"forget:no:{ALICE}", message=question)
    assert (await fake.wait_for("editMessageText")).text == "Nothing was deleted."


async def test_export_sends_a_json_document(telegram):
    fake, _ = telegram
    await fake.user_sends("/share on")
    await fake.wait_for("sendMessage")
    await fake.user_sends("/export")
    document = await fake.wait_for("sendDocument")
    (name, data), = document.files.items()
    assert name == "document" and document.params["document"].startswith("moodbot-export-")
    assert json.loads(data)


async def test_serverplaylist_asks_telegram_who_is_admin_and_caches_it(telegram):
    fake, _ = telegram
    await fake.user_sends("/serverplaylist off", chat=GROUP, user=BOB)
    assert "admin" in (await fake.wait_for("sendMessage")).text.lower()
    fake.admins[str(GROUP)] = {str(ALICE)}
    await fake.user_sends("/serverplaylist off", chat=GROUP, user=ALICE)
    assert (await fake.wait_for("sendMessage")).text.startswith("Server playlists are off")
    await fake.user_sends("/playlist happy", chat=GROUP, user=BOB)
    assert "off" in (await fake.wait_for("sendMessage")).text.lower()
    await fake.user_sends("/serverplaylist on", chat=GROUP, user=ALICE)
    assert (await fake.wait_for("sendMessage")).text == "Server playlists are on."
    assert len(fake.calls_of("getChatMember")) == 2  # Bob once, Alice once: then cached


async def test_an_attachment_over_the_limit_is_refused_before_downloading(telegram):
    fake, frontend = telegram
    limit = frontend.settings.max_audio_bytes
    audio = fake.audio_attachment(b"\0" * 16, file_name="huge.ogg", file_size=limit + 1)
    await fake.user_sends(None, audio=audio)
    reply = await fake.wait_for_reply(lambda c: "too large" in c.text)
    assert "1 MB" in reply.text
    assert not fake.calls_of("getFile") and not fake.calls_of("download")


async def test_a_prompt_goes_to_the_private_chat_with_a_hint_and_forced_reply(telegram):
    fake, frontend = telegram
    message_id = await frontend.send_prompt(PromptMessage("telegram", "42", "42", "p1", "On the way home…"))
    sent = fake.calls_of("sendMessage")[-1]
    assert sent.chat_id == "42" and sent.text == render.prompt_text("On the way home…")
    assert sent.params["reply_markup"]["force_reply"] is True
    assert message_id == str(fake.message_of(sent)["message_id"])


async def test_a_reply_to_a_message_that_is_not_a_prompt_is_ignored(telegram):
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends("Creep", reply_to=5)
    await asyncio.sleep(0.5)
    assert not [c for c in fake.calls[mark:] if c.method in ("sendMessage", "editMessageText")]


async def test_a_429_is_waited_out_then_the_reply_is_delivered(telegram):
    fake, _ = telegram
    fake.fail_next("sendMessage", times=1, retry_after=1)
    started = time.monotonic()
    await fake.user_sends("/help")
    delivered = await fake.wait_for("sendMessage", timeout=10)
    statuses = [c.status for c in fake.calls_of("sendMessage")]
    assert statuses[-2:] == [429, 200]
    assert delivered.at - started >= 1.0  # Telegram said: retry after 1 s


async def test_an_unexpected_failure_gets_a_polite_message(telegram):
    fake, _ = telegram
    fake.fail_next("sendDocument", times=1, status=400, description="Bad Request: file is too big")
    await fake.user_sends("/export")
    reply = await fake.wait_for("sendMessage")
    assert reply.text == render.GENERIC_ERROR


# Progress in one message ---------------------------------------------------------------------


async def status_for(fake, frontend, delay_s: float) -> tuple[StatusMessage, int]:
    """A StatusMessage answering a real message of the bot, and the mark after it."""
    asked = await frontend.app.bot.send_message(chat_id=ALICE, text="/mood Creep")
    return StatusMessage(asked, delay_s=delay_s), fake.mark()


async def test_a_quick_answer_is_one_message_and_no_status(telegram):
    fake, frontend = telegram
    status, mark = await status_for(fake, frontend, delay_s=0.2)
    status.show_later(STAGE_FINDING)
    await status.finish("Mood: calm")
    await asyncio.sleep(0.4)  # past the delay: the cancelled status must not appear late
    assert [(c.method, c.text) for c in fake.calls[mark:]] == [("sendMessage", "Mood: calm")]


async def test_slow_work_shows_a_status_after_the_delay_and_the_answer_replaces_it(telegram):
    fake, frontend = telegram
    status, mark = await status_for(fake, frontend, delay_s=0.05)
    status.show_later(STAGE_FINDING)
    shown = await fake.wait_for("sendMessage", after=mark)
    assert shown.text == STAGE_FINDING
    await status.finish("Mood: sad")
    edit = await fake.wait_for("editMessageText", after=mark)
    assert edit.text == "Mood: sad"
    assert int(edit.params["message_id"]) == fake.message_of(shown)["message_id"]


async def test_a_slow_stage_is_shown_at_once_then_edited_through(telegram):
    fake, frontend = telegram
    status, mark = await status_for(fake, frontend, delay_s=60)
    status.show_later(STAGE_FINDING)
    await status(STAGE_DOWNLOADING)
    await status(STAGE_DOWNLOADING)  # a repeat changes nothing: Telegram would refuse the edit
    await status(STAGE_LISTENING)
    await status.finish("Mood: happy")
    assert [(c.method, c.text) for c in fake.calls[mark:]] == [
        ("sendMessage", STAGE_DOWNLOADING), ("editMessageText", STAGE_LISTENING),
        ("editMessageText", "Mood: happy")]


async def test_a_burst_longer_than_one_getupdates_batch_is_answered_whole(telegram):
    """Telegram hands out at most 100 updates per getUpdates: the bot must come back for the rest."""
    fake, _ = telegram
    users = range(5000, 5150)
    ids = [(await fake.user_sends("/help", chat=user, user=user))["update_id"] for user in users]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len({c.chat_id for c in fake.calls_of("sendMessage")} & {str(u) for u in users}) < len(users):
        await asyncio.sleep(0.05)
    answered = {c.chat_id for c in fake.calls_of("sendMessage")}
    assert {str(u) for u in users} <= answered
    batches = {fake.delivered[update_id].at for update_id in ids}  # one delivery time per getUpdates
    assert len(batches) >= 2


async def test_a_quick_answer_is_sent_as_ptb_would_reply_in_private_groups_and_topics(telegram):
    """`send_reply` skips parsing the sent message; what it sends must equal `reply_text`'s request."""
    fake, frontend = telegram
    bot = frontend.app.bot
    private = await bot.send_message(chat_id=ALICE, text="/mood Creep")
    group = await bot.send_message(chat_id=GROUP, text="/mood Creep")
    topic = Message.de_json({**group.to_dict(), "is_topic_message": True, "message_thread_id": 77}, bot)
    sent = []
    for message in (private, group, topic):
        mark = fake.mark()
        await message.reply_text("Mood: calm")
        await send_reply(message, "Mood: calm")
        ptb, ours = (sent_params(call) for call in fake.calls[mark:])
        assert ours == ptb
        sent.append(ours[1])
    assert "reply_parameters" not in sent[0]  # private: no quote, as PTB does
    assert sent[1]["reply_parameters"]["message_id"] == group.message_id
    assert int(sent[2]["message_thread_id"]) == 77


def sent_params(call) -> tuple[str, dict]:
    """What the bot sent (the fake also keeps the message it answered with)."""
    return call.method, {k: v for k, v in call.params.items() if k != "_result"}
