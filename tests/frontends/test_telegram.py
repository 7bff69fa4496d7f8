"""Given a Telegram user types a command, the bot answers through the Bot API as a user would see it."""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from datetime import date, datetime, timedelta, timezone

import pytest
from telegram import Chat, Message, MessageEntity

from bot.config import Settings
from bot.frontends import render
from bot.usecases.journal import JOURNAL_ON_USAGE, PROMPT_NOT_SENT, PROMPT_NOT_SENT_NOW, ZONE_MISSING
from bot.frontends.telegram import (
    A_PICTURE,
    COMMANDS,
    GROUP_MOOD_USAGE,
    HELP_TAIL,
    JOURNAL_USAGE,
    MAX_TEXT,
    MENTION_RE,
    NOT_DOWNLOADED,
    POST_AS_YOURSELF,
    PRIVATE_ONLY,
    SHARE_USAGE,
    TEXT_HINT,
    UNKNOWN_COMMAND,
    StatusMessage,
    TelegramFrontend,
    caller_of,
    clip,
    command_text,
    download_limit,
    send_reply,
)
from bot.replies import STAGE_DOWNLOADING, STAGE_FINDING, STAGE_LISTENING, Caller, PromptMessage
from inference.result import MOODS
from storage.models import JournalEntry, MoodRequest, StoredMood, TrackRecord, UserRef
from tests.fakes.telegram_api import BOT_USERNAME, FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN, journal_on_telegram
from tests.frontends.test_telegram_album import cached_songs
from tests.prompt_times import FAR_IN_LISBON_TEXT

GROUP = -100777
ALICE, BOB = 42, 43
MB = 1024 * 1024


async def test_start_sets_the_command_list_and_help_lists_every_command(telegram):
    fake, _ = telegram
    registered = fake.calls_of("setMyCommands")[0].params["commands"]
    assert [c["command"] for c in registered] == [name for name, _ in COMMANDS]
    assert "serverplaylist" in [c["command"] for c in registered]  # group admins can find it
    await fake.user_sends("/help")
    reply = await fake.wait_for("sendMessage")
    for command in ("/mood", "/journal", "/playlist", "/forget"):
        assert command in reply.text


async def test_the_command_menu_offers_personal_commands_in_private_chats_and_group_ones_in_groups(telegram):
    """Telegram's '/' menu lists what works where: a group's members are not offered /forget or
    /export (which answer there only with a link to the private chat), the private chat no
    /playlist; the group playlists' switch is offered to the group's admins."""
    fake, _ = telegram
    menus = {call.params.get("scope", {"type": "default"})["type"]: [c["command"] for c in call.params["commands"]]
             for call in fake.calls_of("setMyCommands")}
    everything = [name for name, _ in COMMANDS]
    personal, for_groups = {"journal", "stats", "export", "forget"}, {"playlist", "servermood", "serverplaylist"}
    assert menus["default"] == everything  # any chat no other menu names
    assert menus["all_private_chats"] == [name for name in everything if name not in for_groups]
    assert menus["all_group_chats"] == [name for name in everything if name not in personal | {"serverplaylist"}]
    assert menus["all_chat_administrators"] == [name for name in everything if name not in personal]


async def test_journal_without_arguments_says_whether_it_is_on_and_explains_the_usage(telegram):
    """'/journal' alone (what a tap on it in Telegram's '/' menu sends) was the usage only: whether
    the prompts come, and when, was not said."""
    fake, _ = telegram
    said = await replies_to(fake, "/journal", "/journal on 21:30 Europe/Lisbon", "/journal", "/journal off", "/journal")
    assert said[0] == f"Your journal is off.\n{JOURNAL_USAGE}"
    on, today, usage = said[2].split("\n", 2)
    assert on == "Your journal is on: your prompt comes every day at 21:30 (Europe/Lisbon)." and usage == JOURNAL_USAGE
    assert today.startswith("Your next prompt comes ") and "21:30" in today  # today's, or tomorrow's: the clock's
    assert said[4] == f"Your journal is off: /journal on turns it back on at 21:30 (Europe/Lisbon).\n{JOURNAL_USAGE}"


async def test_journal_alone_says_whether_today_s_prompt_is_open_or_answered(telegram, db, usecases):
    """'/journal' alone said when the prompt comes every day, never whether today's had come, nor
    whether it had its song: a user who wondered went to /journal list. A line under it says so."""
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    (item, title, _), = await cached_songs(fake, db, 1)

    async def today() -> str:
        said, = await replies_to(fake, "/journal")
        on, line, usage = said.split("\n", 2)
        assert on == f"Your journal is on: your prompt comes every day at {FAR_IN_LISBON_TEXT} (Europe/Lisbon)."
        assert usage == JOURNAL_USAGE
        return line

    assert (await today()).startswith("Your next prompt comes ")  # as /journal on said it
    mark = fake.mark()
    await scheduler.fire_now(UserRef("telegram", str(ALICE)))
    prompt = await fake.wait_for("sendMessage", after=mark)
    assert await today() == "Today's prompt is open: reply to it with a song."
    mark = fake.mark()
    await fake.user_sends(None, **item, reply_to=fake.message_of(prompt)["message_id"])
    await fake.wait_for_reply(lambda c: "Saved to your journal" in c.text, after=mark)
    assert await today() == f"Today's prompt is answered: {title}."


async def test_journal_on_without_a_saved_time_and_zone_asks_for_them(telegram):
    fake, _ = telegram
    await fake.user_sends("/journal on")
    reply = await fake.wait_for("sendMessage")
    assert reply.text == JOURNAL_ON_USAGE


async def test_journal_on_with_a_time_and_no_saved_zone_asks_for_the_zone_alone(telegram):
    fake, _ = telegram
    await fake.user_sends("/journal on 21:30")
    reply = await fake.wait_for("sendMessage")
    assert reply.text == ZONE_MISSING.format(time="21:30")


async def test_journal_on_alone_resumes_the_saved_time_and_zone_and_a_time_keeps_the_zone(telegram, db):
    fake, _ = telegram
    ref = UserRef("telegram", str(ALICE))
    await fake.user_sends("/journal on 21:30 Europe/Lisbon")
    await fake.wait_for("sendMessage")
    await fake.user_sends("/journal off")
    await fake.wait_for("sendMessage", lambda c: c.text.startswith("Journal off"))
    mark = fake.mark()
    await fake.user_sends("/journal on")
    resumed = await fake.wait_for("sendMessage", after=mark)
    assert resumed.text.startswith("Journal on: every day at 21:30 (Europe/Lisbon)")
    assert (await db.users.get(ref)).journal_enabled
    mark = fake.mark()
    await fake.user_sends("/journal on 07:15")
    moved = await fake.wait_for("sendMessage", after=mark)
    assert moved.text.startswith("Journal on: every day at 07:15 (Europe/Lisbon)")
    user = await db.users.get(ref)
    assert f"{user.prompt_time:%H:%M}" == "07:15" and user.timezone == "Europe/Lisbon"


async def test_journal_on_with_an_unknown_zone_is_refused_readably(telegram):
    fake, _ = telegram
    await fake.user_sends("/journal on 21:30 Mars/Olympus")
    reply = await fake.wait_for("sendMessage")
    assert "Mars/Olympus" in reply.text


async def test_a_zone_quoted_back_keeps_the_words_the_replies_name_the_group_with(telegram):
    """'{place}' typed is the user's, not the reply's word for where people share the bot: it is
    quoted as typed, not rendered 'group'."""
    fake, _ = telegram
    await fake.user_sends("/journal on 21:30 {place}/Olympus")
    assert "“{place}/Olympus”" in (await fake.wait_for("sendMessage")).text


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


async def test_playlist_without_mood_where_playlists_are_off_says_so_without_a_keyboard(telegram):
    """Every button would only say the playlists are off: that is said at once, and how to turn them on."""
    fake, _ = telegram
    fake.admins[str(GROUP)] = {str(ALICE)}
    await said_in_group(fake, "/serverplaylist off", ALICE)
    mark = fake.mark()
    await fake.user_sends("/playlist", chat=GROUP, user=BOB)
    answer = await fake.wait_for("sendMessage", after=mark)
    assert "turned off" in answer.text and "/serverplaylist on" in answer.text
    assert "reply_markup" not in answer.params


async def test_playlist_of_two_moods_in_a_group_is_refused_with_the_usage(telegram):
    fake, _ = telegram
    answer = await said_in_group(fake, "/playlist happy sad", ALICE)
    assert answer == "One mood at a time: /playlist <happy|energetic|sad|calm>."


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


@pytest.mark.parametrize(("command", "action", "answer"), [("/stats", "upload_photo", "sendMessage"),
                                                        ("/export", "upload_document", "sendDocument")])
async def test_stats_and_export_show_telegrams_sending_sign_while_they_are_made(telegram, command, action, answer):
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends(command)
    await fake.wait_for(answer, after=mark)
    (shown,) = fake.calls_of("sendChatAction", after=mark)
    assert (shown.chat_id, shown.params["action"]) == (str(ALICE), action)
    assert fake.calls.index(shown) < fake.calls.index(fake.calls_of(answer, after=mark)[0])


SIGN_DELAY_S = 4.0


async def test_a_slow_or_refused_sending_sign_holds_up_no_export_and_brings_no_apology(telegram):
    fake, _ = telegram
    fake.fail_next("sendChatAction", times=1, status=400, delay_s=SIGN_DELAY_S,
                   description="Bad Request: not enough rights to send chat actions")
    mark, started = fake.mark(), time.monotonic()
    await fake.user_sends("/export")
    document = await fake.wait_for("sendDocument", after=mark)
    assert document.at - started < SIGN_DELAY_S / 2  # made while the sign was still on its way
    while not fake.calls_of("sendChatAction", after=mark):  # refused, at last
        assert time.monotonic() - started < 3 * SIGN_DELAY_S
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)
    assert [c.method for c in fake.calls[mark:] if c.method not in ("getUpdates",)] == [
        "sendDocument", "sendChatAction"]


async def said_in_group(fake, text: str, user: int, **sent) -> str:
    """What the bot answers `user` writing `text` in the group (`sent`: more of `user_sends`)."""
    await fake.user_sends(text, chat=GROUP, user=user, **sent)
    return (await fake.wait_for("sendMessage")).text


async def replies_to(fake, *typed: str, **sent) -> list[str]:
    """What the bot answers each of `typed`, sent one after another (`sent`: more of `user_sends`;
    by default, in the default user's private chat)."""
    said = []
    for text in typed:
        mark = fake.mark()
        await fake.user_sends(text, **sent)
        said.append((await fake.wait_for("sendMessage", after=mark)).text)
    return said


async def test_serverplaylist_asks_telegram_who_is_admin_each_time(telegram):
    fake, _ = telegram
    assert "admin" in (await said_in_group(fake, "/serverplaylist off", BOB)).lower()
    fake.admins[str(GROUP)] = {str(ALICE)}
    assert (await said_in_group(fake, "/serverplaylist off", ALICE)).startswith("Group playlists are off")
    assert "off" in (await said_in_group(fake, "/playlist happy", BOB)).lower()
    assert await said_in_group(fake, "/serverplaylist on", ALICE) == "Group playlists are on."
    assert [c.params["user_id"] for c in fake.calls_of("getChatMember")] == [str(BOB), str(ALICE), str(ALICE)]


async def test_the_group_playlists_are_called_a_group_s_not_a_server_s(telegram):
    """Telegram has groups: the shared words that say 'server' on Discord say 'group' here."""
    fake, _ = telegram
    fake.admins[str(GROUP)] = {str(ALICE)}
    said = [await said_in_group(fake, "/serverplaylist on", BOB),
            await said_in_group(fake, "/serverplaylist off", ALICE),
            await said_in_group(fake, "/playlist calm", BOB),
            await said_in_group(fake, "/servermood", BOB)]
    assert said == ["Only the group's admins can turn group playlists on or off.",
                    "Group playlists are off: /playlist and /servermood won't answer here.",
                    "Group playlists are turned off here. An admin can turn them on with /serverplaylist on.",
                    "Group playlists are turned off here. An admin can turn them on with /serverplaylist on."]
    await fake.user_sends("/forget")  # privately: what /forget deletes, and that /share off goes too
    assert "count in group playlists" in (await fake.wait_for("sendMessage")).text


async def test_an_admin_demoted_a_moment_ago_can_no_longer_switch_the_group_playlists(telegram, db):
    """Alice turns the group's playlists off, the owner demotes her, and she tries to turn them
    back on: Telegram is asked again, not her answer of a moment ago."""
    fake, _ = telegram
    fake.admins[str(GROUP)] = {str(ALICE)}
    assert (await said_in_group(fake, "/serverplaylist off", ALICE)).startswith("Group playlists are off")
    fake.admins[str(GROUP)] = set()
    assert "admin" in (await said_in_group(fake, "/serverplaylist on", ALICE)).lower()
    assert (await db.servers.get(f"telegram:{GROUP}")).playlist_enabled is False


async def test_a_member_made_admin_just_after_a_refusal_may_switch_the_group_playlists(telegram, db):
    """Refused, a member asks the owner to promote them and tries again: Telegram is asked again,
    not the refusal of a minute ago."""
    fake, _ = telegram
    assert "admin" in (await said_in_group(fake, "/serverplaylist off", BOB)).lower()
    fake.admins[str(GROUP)] = {str(BOB)}
    assert (await said_in_group(fake, "/serverplaylist off", BOB)).startswith("Group playlists are off")
    assert (await db.servers.get(f"telegram:{GROUP}")).playlist_enabled is False


async def test_an_attachment_over_the_limit_is_refused_before_downloading(telegram, caplog):
    fake, frontend = telegram
    limit = frontend.settings.max_audio_bytes
    audio = fake.audio_attachment(b"\0" * 16, file_name="huge.ogg", file_size=limit + 1)
    await fake.user_sends(None, audio=audio)
    reply = await fake.wait_for_reply(lambda c: "too large" in c.text)
    assert "1 MB" in reply.text
    assert not fake.calls_of("getFile") and not fake.calls_of("download")
    # Logged as a refused /mood is: whose, and why, without the file's name (the sender's words).
    (refusal,) = [r for r in caplog.records if r.getMessage() == "telegram.file_refused"]
    assert (refusal.user, refusal.why, refusal.bytes, refusal.limit_bytes) == (str(ALICE), "too_large", limit + 1,
                                                                               limit)
    assert not [r for r in caplog.records if r.name.startswith("bot.") and "huge.ogg" in str(vars(r))]


async def test_a_prompt_goes_to_the_private_chat_with_a_hint_and_forced_reply(telegram):
    fake, frontend = telegram
    message_id = await frontend.send_prompt(PromptMessage("telegram", "42", "42", "p1", "On the way home…"))
    sent = fake.calls_of("sendMessage")[-1]
    assert sent.chat_id == "42" and sent.text == render.prompt_text("On the way home…")
    assert sent.params["reply_markup"]["force_reply"] is True
    assert message_id == str(fake.message_of(sent)["message_id"])


async def test_a_reply_to_a_message_that_is_not_a_prompt_gets_the_hint_not_a_journal_entry(telegram):
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends("Creep", reply_to=5)
    await asyncio.sleep(0.5)
    assert [(c.method, c.text) for c in fake.calls[mark:] if c.method in ("sendMessage", "editMessageText")] == [
        ("sendMessage", TEXT_HINT)]


async def test_a_429_is_waited_out_then_the_reply_is_delivered(telegram):
    fake, _ = telegram
    fake.fail_next("sendMessage", times=1, retry_after=1)
    started = time.monotonic()
    await fake.user_sends("/help")
    delivered = await fake.wait_for("sendMessage", timeout=10)
    statuses = [c.status for c in fake.calls_of("sendMessage")]
    assert statuses[-2:] == [429, 200]
    assert delivered.at - started >= 1.0  # Telegram said: retry after 1 s


async def test_an_unexpected_failure_gets_a_polite_message(telegram, caplog):
    fake, _ = telegram
    fake.fail_next("sendDocument", times=1, status=400, description="Bad Request: file is too big")
    await fake.user_sends("/export")
    reply = await fake.wait_for("sendMessage")
    assert reply.text == render.GENERIC_ERROR
    assert [(r.user, r.place) for r in failures_logged(caplog)] == [(str(ALICE), None)]  # whose, for the operator


def direct_messages(chat: int, reader: int, topic: int = 31) -> dict:
    """The fields of a message in a channel's direct messages chat `chat` (a supergroup whose admins,
    the bot among them, answer the channel's readers): `reader`'s messages are in a topic of their
    own, which every message sent there must name (`direct_messages_topic_id`)."""
    return {"chat": {"id": chat, "type": "supergroup", "title": "Night Radio DMs", "is_direct_messages": True},
            "direct_messages_topic": {"topic_id": topic, "user": {"id": reader, "is_bot": False, "first_name": "R"}}}


@pytest.mark.parametrize(("where", "kept"), [({"topic": 77}, ("message_thread_id", 77)),
                                             ({"extra": direct_messages(GROUP, ALICE)}, ("direct_messages_topic_id", 31))],
                         ids=["forum topic", "direct messages topic"])
async def test_the_apology_for_a_failure_in_a_forum_topic_goes_to_that_topic(telegram, caplog, where, kept):
    """Without the topic, Telegram puts a message in the forum's General topic, where the asker
    is not looking; in a channel's direct messages chat it refuses it."""
    fake, _ = telegram
    fake.fail_next("sendMessage", times=1, status=400, description="Bad Request: can't parse entities")
    await fake.user_sends("/help", chat=GROUP, user=ALICE, **where)
    apology = await fake.wait_for("sendMessage")
    assert apology.text == render.GENERIC_ERROR
    name, topic = kept
    assert int(apology.params.get(name, 0)) == topic
    assert [(r.user, r.place) for r in failures_logged(caplog)] == [(str(ALICE), f"telegram:{GROUP}")]


def failures_logged(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "telegram handler failed"]


async def test_a_user_who_blocked_the_bot_before_its_answer_is_logged_once_and_sent_no_apology(telegram, caplog):
    """Telegram answers 403 to every message for a user who blocked the bot (or a group that removed
    it): the apology would be refused the same way, and a blocked bot is no failure of the bot's."""
    fake, frontend = telegram
    fake.fail_next("sendMessage", times=1, status=403, description="Forbidden: bot was blocked by the user")
    mark = fake.mark()
    await fake.user_sends("/help")
    while not fake.calls_of("sendMessage", after=mark) or frontend.flow.pending:
        await asyncio.sleep(0.01)  # the update handled to the end
    assert [c.status for c in fake.calls_of("sendMessage", after=mark)] == [403]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len([r for r in caplog.records if "blocked by the user" in r.getMessage()]) == 1


async def statuses_of_a_refused_help(fake, frontend, refusal: str, **sender) -> list[int]:
    """/help sent (`sender`: `user_sends`'s chat, user, topic), its answer refused with 400 `refusal`:
    the statuses Telegram gave the bot's messages, once the update was handled to the end and an
    apology had time to follow."""
    fake.fail_next("sendMessage", times=1, status=400, description=refusal)
    mark = fake.mark()
    await fake.user_sends("/help", **sender)
    while not fake.calls_of("sendMessage", after=mark) or frontend.flow.pending:
        await asyncio.sleep(0.01)  # the update handled to the end
    await asyncio.sleep(0.1)
    return [c.status for c in fake.calls_of("sendMessage", after=mark)]


@pytest.mark.parametrize("refusal", ["Bad Request: not enough rights to send text messages to the chat",
                                     "Bad Request: CHAT_WRITE_FORBIDDEN"])
async def test_a_group_that_muted_the_bot_is_logged_once_and_sent_no_apology(telegram, caplog, refusal):
    """A group whose admins took the bot's right to send messages: Telegram answers 400 (not 403)
    to every message there, an apology too; as a blocked bot, no failure of the bot's."""
    fake, frontend = telegram
    assert await statuses_of_a_refused_help(fake, frontend, refusal, chat=GROUP, user=ALICE) == [400]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len([r for r in caplog.records if "telegram.chat_refuses_the_bot" in r.getMessage()]) == 1


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
    await status.shown()  # the work goes on meanwhile; here it takes as long as the stage's message
    await status(STAGE_DOWNLOADING)  # a repeat changes nothing: Telegram would refuse the edit
    await status.shown()
    await status(STAGE_LISTENING)
    await status.shown()
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
    """`send_reply` skips parsing the sent message; what it sends must equal `reply_text`'s request.
    Also in a channel's direct messages chat (a channel's admins, the bot among them, answer its
    readers there), where Telegram requires the reader's topic: the answer went without it."""
    fake, frontend = telegram
    bot = frontend.app.bot
    private = await bot.send_message(chat_id=ALICE, text="/mood Creep")
    group = await bot.send_message(chat_id=GROUP, text="/mood Creep")
    topic = Message.de_json({**group.to_dict(), "is_topic_message": True, "message_thread_id": 77}, bot)
    direct = Message.de_json({**group.to_dict(), **direct_messages(GROUP, ALICE)}, bot)
    sent = []
    for message in (private, group, topic, direct):
        mark = fake.mark()
        await message.reply_text("Mood: calm")
        await send_reply(message, "Mood: calm")
        ptb, ours = (sent_params(call) for call in fake.calls[mark:])
        assert ours == ptb
        sent.append(ours[1])
    assert "reply_parameters" not in sent[0]  # private: no quote, as PTB does
    assert sent[1]["reply_parameters"]["message_id"] == group.message_id
    assert int(sent[2]["message_thread_id"]) == 77
    assert int(sent[3]["direct_messages_topic_id"]) == 31


async def test_a_command_deleted_before_its_answer_still_gets_the_answer(telegram):
    """Groups often run a bot that deletes command messages at once: the answer can no longer
    quote its command, and Telegram refuses a reply to a deleted message unless told to send it
    anyway."""
    fake, _ = telegram
    fake.admins[str(GROUP)] = {str(ALICE)}
    # (A quick /mood answer, sent by `send_reply`, sends what PTB sends: see the test above.)
    for command, answer in (("/help", "/mood"), ("/serverplaylist off", "Group playlists are off")):
        mark = fake.mark()
        update = await fake.user_sends(command, chat=GROUP, user=ALICE)
        fake.user_deletes(update)
        reply = await fake.wait_for_reply(after=mark)
        assert answer in reply.text
        assert reply.params["reply_parameters"]["message_id"] == update["message"]["message_id"]

def sent_params(call) -> tuple[str, dict]:
    """What the bot sent (the fake also keeps the message it answered with)."""
    return call.method, {k: v for k, v in call.params.items() if k != "_result"}


# Privacy in groups ----------------------------------------------------------------------------


async def test_personal_commands_in_a_group_only_point_to_the_private_chat(telegram, db):
    fake, _ = telegram
    await add_entry(db, ALICE, note="I cried on the bus")
    mark = fake.mark()
    for command, name in (("/journal list", "journal"), ("/journal on 06:15 Asia/Tokyo", "journal"),
                          ("/journal", "journal"), ("/stats", "stats"), ("/export", "export"),
                          ("/forget", "forget")):
        await fake.user_sends(command, chat=GROUP, user=ALICE)
        reply = await fake.wait_for("sendMessage")
        assert reply.text == PRIVATE_ONLY.format(command=name, bot=BOT_USERNAME)
        assert f"https://t.me/{BOT_USERNAME}" in reply.text and "reply_markup" not in reply.params
    await asyncio.sleep(0.3)
    assert [c.method for c in fake.calls[mark:] if c.method != "getUpdates"] == ["sendMessage"] * 6
    assert not (await db.users.get(UserRef("telegram", str(ALICE)))).journal_enabled  # /journal on did nothing


async def test_an_anonymous_admin_cannot_use_personal_commands(telegram, db):
    """Every anonymous admin's message comes from one GroupAnonymousBot: one shared identity. Those
    of the private chat point there, as they do for everyone (told to post as themselves, the admin
    was then told to go to the private chat: two steps)."""
    fake, _ = telegram
    await fake.user_sends("/share off", chat=GROUP, anonymous=True)
    assert (await fake.wait_for("sendMessage")).text == POST_AS_YOURSELF
    for command, name in (("/journal on 06:15 Asia/Tokyo", "journal"), ("/journal list", "journal"),
                          ("/stats", "stats"), ("/export", "export"), ("/forget", "forget")):
        await fake.user_sends(command, chat=GROUP, anonymous=True)
        assert (await fake.wait_for("sendMessage")).text == PRIVATE_ONLY.format(command=name, bot=BOT_USERNAME)
    assert await db.users.get(UserRef("telegram", "1087968824")) is None


def test_a_message_posted_as_the_group_is_the_groups_not_every_anonymous_admins():
    """GroupAnonymousBot is one id for every anonymous admin on Telegram: a /mood counted under it
    would share one rate limit and one playlist contributor across all groups."""
    from telegram import Bot, Update

    bot = Bot(TELEGRAM_TOKEN)
    group = {"id": GROUP, "type": "supergroup", "title": "Night owls"}

    def update(**sender) -> Update:
        return Update.de_json({"update_id": 1, "message": {
            "message_id": 5, "date": 0, "chat": group, "text": "/mood Creep", **sender}}, bot)

    anonymous = caller_of(update(**{"from": {"id": 1087968824, "is_bot": True, "first_name": "Group",
                                             "username": "GroupAnonymousBot"}, "sender_chat": group}))
    assert (anonymous.user_id, anonymous.place, anonymous.display_name) == (str(GROUP), f"telegram:{GROUP}",
                                                                             "Night owls")
    alice = caller_of(update(**{"from": {"id": ALICE, "is_bot": False, "first_name": "Alice"}}))
    assert (alice.user_id, alice.chat_id, alice.display_name) == (str(ALICE), str(ALICE), "Alice")


async def test_an_anonymous_admin_may_switch_the_group_playlists(telegram, db):
    """Only a group's admins can post as the group, so such a message is an admin's."""
    fake, _ = telegram
    await fake.user_sends("/serverplaylist off", chat=GROUP, anonymous=True)
    assert "admin" not in (await fake.wait_for("sendMessage")).text.lower()
    assert (await db.servers.get(f"telegram:{GROUP}")).playlist_enabled is False


async def test_a_picture_sent_for_its_mood_is_answered_not_ignored(telegram):
    fake, _ = telegram
    await fake.user_sends("/mood", photo=fake.photo_attachment(), chat=GROUP, user=ALICE)
    assert (await fake.wait_for("sendMessage")).text == A_PICTURE
    await fake.user_sends(None, photo=fake.photo_attachment())  # privately, no caption needed
    assert (await fake.wait_for("sendMessage")).text == A_PICTURE


async def test_group_commands_stay_usable_in_groups(telegram):
    fake, _ = telegram
    await fake.user_sends("/share off", chat=GROUP, user=ALICE)
    assert (await fake.wait_for("sendMessage")).text != POST_AS_YOURSELF
    await fake.user_sends("/mood", chat=GROUP, user=ALICE)
    assert (await fake.wait_for("sendMessage")).text == GROUP_MOOD_USAGE  # the caption that works in groups
    await fake.user_sends("/help", chat=GROUP, user=ALICE)
    assert "/mood" in (await fake.wait_for("sendMessage")).text


async def test_share_alone_says_whether_your_songs_count_and_a_wrong_word_gets_the_usage(telegram):
    """'/share' alone was its usage only: a user asking whether their songs count was not told."""
    fake, _ = telegram
    await fake.user_sends("/share", chat=GROUP, user=ALICE)
    assert (await fake.wait_for("sendMessage")).text.startswith("Sharing is on: your songs count")
    await fake.user_sends("/share off", chat=GROUP, user=ALICE)
    await fake.wait_for("sendMessage")
    await fake.user_sends("/share", chat=GROUP, user=ALICE)
    assert (await fake.wait_for("sendMessage")).text.startswith("Sharing is off")
    await fake.user_sends("/share maybe", chat=GROUP, user=ALICE)
    assert (await fake.wait_for("sendMessage")).text == SHARE_USAGE


async def test_a_group_upgraded_to_a_supergroup_keeps_its_playlists_and_settings(telegram, db):
    """Telegram gives a group a new id when it becomes a supergroup (more members, topics, a public
    link): its songs and its admins' choices must follow it there."""
    fake, _ = telegram
    old, new = -777, -100777
    fake.admins[str(old)] = {str(ALICE)}
    await fake.user_sends("/serverplaylist off", chat=old, chat_type="group", user=ALICE)
    assert (await fake.wait_for("sendMessage")).text.startswith("Group playlists are off")
    await db.requests.add(MoodRequest(UserRef("telegram", str(BOB)), f"telegram:{old}", f"spotify:{0:022d}",
                                      "sad", datetime.now(timezone.utc), title="Radiohead – Creep"))
    # What Telegram sends: a service message in the old group, then one in the new supergroup.
    await fake.user_sends(None, chat=old, chat_type="group", user=ALICE, extra={"migrate_to_chat_id": new})
    await fake.user_sends(None, chat=new, user=ALICE, extra={"migrate_from_chat_id": old})
    await asyncio.sleep(0.5)
    await fake.user_sends("/playlist sad", chat=new, user=ALICE)
    assert "off" in (await fake.wait_for("sendMessage")).text.lower()
    fake.admins[str(new)] = {str(ALICE)}
    await fake.user_sends("/serverplaylist on", chat=new, user=ALICE)
    await fake.wait_for("sendMessage")
    await fake.user_sends("/playlist sad", chat=new, user=ALICE)
    assert "Creep" in (await fake.wait_for("sendMessage")).text


async def test_a_title_reading_like_a_username_pings_nobody_in_a_group_playlist(telegram, db):
    """Telegram turns '@name' in a plain text into a mention and notifies that member: an upload
    named '@boss.ogg' must not ping @boss each time the playlist is shown."""
    fake, _ = telegram
    await db.requests.add(MoodRequest(UserRef("telegram", str(BOB)), f"telegram:{GROUP}", "file:" + "a" * 64,
                                      "sad", datetime.now(timezone.utc), title="@boss (cc @all_hands)"))
    await fake.user_sends("/playlist sad", chat=GROUP, user=ALICE)
    text = (await fake.wait_for("sendMessage")).text
    assert "boss" in text and "all_hands" in text
    assert not MENTION_RE.search(text), repr(text)  # Telegram's parser finds no username after an '@'
    assert clip("mail me @ home, @x") == "mail me @ home, @\u2060x"


# The journal ---------------------------------------------------------------------------------


def test_the_menu_s_journal_hint_lists_by_what_help_says_it_lists():
    """The '/' menu's hint said `list [page]` while /help (and the command) take a day or a month
    too: someone reading the menu alone never learnt `/journal list December`."""
    from bot.usecases.help import JOURNAL_LIST
    listed = JOURNAL_LIST[0].removeprefix("journal ")
    assert listed in dict(COMMANDS)["journal"], dict(COMMANDS)["journal"]
    assert all(len(hint) <= 256 for _, hint in COMMANDS)  # setMyCommands' limit on a description


async def test_journal_prompt_sends_today_s_prompt_now_and_nothing_after_it(telegram, db, usecases):
    """The prompt, in the chat the command was typed in, is the answer: a "Sent: …" under it would be
    the last message, the one a reply goes to, and a reply there answers no prompt."""
    fake, frontend = telegram
    assert "/journal prompt" in JOURNAL_USAGE and "prompt" in dict(COMMANDS)["journal"]
    await journal_on_telegram(fake, frontend, db, usecases)
    mark = fake.mark()
    await fake.user_sends("/journal prompt")
    prompt = await fake.wait_for("sendMessage", lambda c: "force_reply" in c.params.get("reply_markup", {}))
    assert prompt.chat_id == str(ALICE) and render.PROMPT_HINT in prompt.text
    assert await usecases.journal.is_prompt_message("telegram", str(ALICE), str(fake.message_of(prompt)["message_id"]))
    await asyncio.sleep(0.5)
    assert fake.calls_of("sendMessage", after=mark) == [prompt]


@pytest.mark.parametrize("status, description, times, told", [
    (403, "Forbidden: bot can't initiate conversation with a user", 1, PROMPT_NOT_SENT),
    (502, "Bad Gateway", 2, PROMPT_NOT_SENT_NOW),  # twice: the transport sends a 5xx call once more
])
async def test_journal_prompt_not_delivered_says_what_to_allow_only_when_telegram_refused_it(
        telegram, db, usecases, status, description, times, told):
    """Telegram's 403 refuses the user: they have a private chat to open. An outage (a 5xx) says
    nothing of their settings: they ask again in a few minutes."""
    fake, frontend = telegram
    await journal_on_telegram(fake, frontend, db, usecases)
    fake.fail_next("sendMessage", times=times, status=status, description=description)
    mark = fake.mark()
    await fake.user_sends("/journal prompt")
    answer = await fake.wait_for("sendMessage", after=mark)  # the first one delivered: the prompt failed
    assert answer.text == told and answer.chat_id == str(ALICE)


@pytest.mark.parametrize(("status", "description"), [
    (403, "Forbidden: bot was blocked by the user"),
    # A chat Telegram no longer relates to the bot (the user deleted it, and Telegram forgot it):
    # refused until the user writes to the bot again. It was taken for a request of the bot's own
    # making: an ERROR with its traceback, tried again that day and every day after.
    (400, "Bad Request: chat not found"),
], ids=["blocked", "chat not found"])
async def test_a_user_who_blocked_the_bot_gets_no_more_daily_prompts(telegram, db, usecases, caplog, status,
                                                                     description):
    """Telegram answers 403 to every message for a user who blocked the bot: trying again every day
    only fills the log; the journal is turned off (entries kept) until they turn it on again."""
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases, by_message=False)
    ref = UserRef("telegram", str(ALICE))
    assert scheduler.is_scheduled(ref)
    fake.fail_next("sendMessage", times=1, status=status, description=description)
    assert await scheduler.deliver(ref) is None
    assert not scheduler.is_scheduled(ref)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    user = await db.users.get(ref)
    assert not user.journal_enabled and user.timezone == "Europe/Lisbon"
    await fake.user_sends("/journal on 21:30 Europe/Lisbon")  # unblocked, and back
    await fake.wait_for("sendMessage")
    assert scheduler.is_scheduled(ref)

# A bot with topics in its private chats (Bot API 9.3) gets each of the user's messages in one.
@pytest.mark.parametrize("where", [{}, {"topic": 9}], ids=["the private chat", "a topic of it"])
async def test_a_user_who_blocked_the_bot_is_told_why_the_prompts_stopped_when_back(telegram, db, usecases, where):
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases, by_message=False)
    fake.fail_next("sendMessage", times=1, status=403, description="Forbidden: bot was blocked by the user")
    assert await scheduler.deliver(UserRef("telegram", str(ALICE))) is None
    mark = fake.mark()
    await fake.user_sends("/help", **where)  # unblocked, and back
    notice = await fake.wait_for("sendMessage", lambda c: "prompts stopped" in c.text, after=mark)
    assert f"{FAR_IN_LISBON_TEXT} (Europe/Lisbon)" in notice.text and "/journal on" in notice.text
    assert int(notice.params.get("message_thread_id", 0)) == where.get("topic", 0)  # with the answer, not apart
    assert "reply_parameters" not in notice.params  # a private chat's: no quote
    help_reply, told = [c for c in fake.calls_of("sendMessage", after=mark)]
    assert told is notice and "/journal" in help_reply.text  # after the command's own answer
    mark = fake.mark()
    await fake.user_sends("/help")
    await fake.wait_for("sendMessage", after=mark)
    await asyncio.sleep(0.3)
    assert not [c for c in fake.calls_of("sendMessage", after=mark) if "prompts stopped" in c.text]


async def test_journal_on_takes_a_zone_typed_with_a_space(telegram):
    fake, _ = telegram
    await fake.user_sends("/journal on 21:30 America/New York")
    reply = await fake.wait_for("sendMessage")
    assert "21:30" in reply.text and "New York" in reply.text.replace("_", " ")


# Texts Telegram would refuse -----------------------------------------------------------------


async def test_long_answers_are_clipped_to_telegram_s_limit(telegram, db):
    fake, _ = telegram
    for n in range(2):
        await add_entry(db, ALICE, n=n, note="Long day. " * 300)  # a normal Telegram message each
    await fake.user_sends("/journal list")
    listed = await fake.wait_for("sendMessage")
    assert len(listed.text) <= MAX_TEXT and listed.text.endswith("…")
    await fake.user_sends("/journal on 21:30 Europe/" + "x" * MAX_TEXT)  # quoted in the refusal, cut
    echoed = await fake.wait_for("sendMessage")
    assert len(echoed.text) < 1000 and "x" * 30 + "…" in echoed.text  # the examples that follow kept
    assert all(c.status == 200 for c in fake.calls_of("sendMessage"))


def test_clip_counts_as_telegram_does_and_leaves_short_texts_alone():
    assert clip("Mood: 😊 happy") == "Mood: 😊 happy"
    clipped = clip("😊" * MAX_TEXT)  # two UTF-16 code units each: the cut falls inside one
    # (encoding fails on half an emoji)
    assert clipped.endswith("…") and len(clipped.encode("utf-16-le")) // 2 <= MAX_TEXT


# What a message says -------------------------------------------------------------------------


def test_a_newline_or_tab_after_the_command_separates_like_a_space():
    def text(value: str) -> str:
        return command_text(Message(1, datetime.now(timezone.utc), Chat(ALICE, "private"), text=value))

    assert text("/mood\nRadiohead - Creep") == "Radiohead - Creep"
    assert text("/mood\tCreep") == "Creep"
    assert text("/mood@moodbot_test_bot  Radiohead - Creep ") == "Radiohead - Creep"
    assert text("/mood\n") == ""


def test_a_song_linked_under_words_is_read_as_its_link():
    """Telegram keeps a link typed under words (a text_link) beside the text, not in it."""
    track = "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC"

    def text(value: str, linked: str, url: str, *, caption: bool = False) -> str:
        start = value.encode("utf-16-le").find(linked.encode("utf-16-le")) // 2
        entities = (MessageEntity(MessageEntity.TEXT_LINK, start, len(linked.encode("utf-16-le")) // 2, url=url),)
        content = {"caption": value, "caption_entities": entities} if caption else {"text": value, "entities": entities}
        return command_text(Message(1, datetime.now(timezone.utc), Chat(ALICE, "private"), **content))

    assert text("/mood this one", "this one", track) == track
    assert text("/mood 😊 my song of the day!", "my song", track) == f"😊 {track} of the day!"  # offsets in UTF-16
    assert text("/mood listen", "listen", track, caption=True) == track


async def test_an_unknown_command_or_plain_text_in_private_gets_a_hint_and_groups_stay_quiet(telegram):
    fake, _ = telegram
    await fake.user_sends("/foo")
    assert (await fake.wait_for("sendMessage")).text == UNKNOWN_COMMAND
    await fake.user_sends("Radiohead - Creep")
    assert (await fake.wait_for("sendMessage")).text == TEXT_HINT
    mark = fake.mark()
    await fake.user_sends("/foo", chat=GROUP, user=ALICE)
    await fake.user_sends("Radiohead - Creep", chat=GROUP, user=ALICE)
    await asyncio.sleep(0.5)
    assert not fake.calls_of("sendMessage", after=mark)


@pytest.mark.parametrize("typed", ["mood Creep", "Mood Radiohead - Creep", "journal list", "stats"])
async def test_a_command_typed_without_its_slash_in_private_is_answered_with_it_and_groups_stay_quiet(telegram, typed):
    """As on the console: a phone's keyboard has no '/' at hand, and a new user types the command
    without it; the general hint would not say what went wrong."""
    fake, _ = telegram
    await fake.user_sends(typed)
    assert (await fake.wait_for("sendMessage")).text == f"Commands start with a slash: did you mean /{typed}?"
    mark = fake.mark()
    await fake.user_sends(typed, chat=GROUP, user=ALICE)
    await asyncio.sleep(0.5)
    assert not fake.calls_of("sendMessage", after=mark)


async def test_a_long_paste_after_a_command_s_name_is_quoted_cut_short(telegram):
    fake, _ = telegram
    await fake.user_sends("mood " + "la " * 2000)
    said = (await fake.wait_for("sendMessage")).text
    assert said.startswith("Commands start with a slash: did you mean /mood la la") and said.endswith("…?")
    assert len(said) < 200


@pytest.mark.parametrize("typed, meant", [("/moood Creep", "/mood"), ("/jurnal list", "/journal"), ("/Stat", "/stats"),
                                          ("/halp", "/help"), ("/exprot", "/export"),
                                          # Words people use for a command (help.COMMAND_SYNONYMS): "I don't know that command".
                                          ("/charts", "/stats"), ("/history", "/journal list"), ("/download", "/export"),
                                          ("/delete last", "/journal delete")])
async def test_a_mistyped_command_is_answered_with_the_one_meant(telegram, typed, meant):
    """As on the console: the command meant, rather than only 'I don't know that command'."""
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends(typed)
    reply = await fake.wait_for("sendMessage")
    assert reply.text == f"I don't know {typed.split()[0]}. Did you mean {meant}? {HELP_TAIL}"
    assert not fake.calls_of("getFile", after=mark) and "Finding" not in reply.text  # said, not run


async def test_an_unknown_command_naming_this_bot_in_a_group_gets_the_hint_and_another_bot_s_does_not(telegram):
    """'/moood@moodbot' in a group can be no other bot's: silence would leave the typo unseen."""
    fake, _ = telegram
    typo = await fake.user_sends(f"/moood@{BOT_USERNAME.upper()} Creep", chat=GROUP, user=ALICE, topic=5)
    reply = await fake.wait_for("sendMessage")
    assert reply.text == f"I don't know /moood. Did you mean /mood? {HELP_TAIL}"
    assert int(reply.params["message_thread_id"]) == 5
    assert reply.params["reply_parameters"]["message_id"] == typo["message"]["message_id"]
    mark = fake.mark()
    await fake.user_sends("/moood@some_other_bot Creep", chat=GROUP, user=ALICE)
    await asyncio.sleep(0.5)
    assert not fake.calls_of("sendMessage", after=mark)


@pytest.mark.parametrize("command", ["/help", "/journal list", "/Mood", "/share on"])
async def test_a_command_of_ours_naming_another_bot_in_a_private_chat_is_run(telegram, command):
    """A private chat holds no other bot: '/mood@other_bot' there (copied from a group) was meant
    for this one, and is run, not answered "I don't know /mood. Did you mean /mood?"."""
    fake, _ = telegram
    name, _, rest = command.partition(" ")
    await fake.user_sends(command)
    expected = (await fake.wait_for("sendMessage")).text
    mark = fake.mark()
    await fake.user_sends(f"{name}@some_other_bot {rest}".strip())
    assert (await fake.wait_for("sendMessage", after=mark)).text == expected
    assert not expected.startswith("I don't know")


async def test_a_name_that_is_not_ours_naming_another_bot_in_a_private_chat_gets_the_hint(telegram):
    fake, _ = telegram
    await fake.user_sends("/moood@some_other_bot Creep")
    assert (await fake.wait_for("sendMessage")).text == f"I don't know /moood. Did you mean /mood? {HELP_TAIL}"


async def test_audio_captioned_for_another_bot_in_a_private_chat_is_heard(telegram):
    fake, _ = telegram
    mark = fake.mark()
    audio = fake.audio_attachment(b"OggS", file_name="g.ogg")
    await fake.user_sends("/mood@some_other_bot", audio=audio)
    await fake.wait_for("getFile", after=mark)


async def test_an_edited_message_runs_nothing_again(telegram):
    fake, _ = telegram
    command = await fake.user_sends("/help")
    await fake.wait_for("sendMessage")
    text = await fake.user_sends("Radiohead - Creeep")
    await fake.wait_for("sendMessage")
    mark = fake.mark()
    await fake.user_edits(command, "/help")
    await fake.user_edits(text, "Radiohead - Creep")  # a typo fixed in an answer must not answer twice
    await asyncio.sleep(0.5)
    assert not fake.calls_of("sendMessage", after=mark)


async def test_audio_captioned_for_another_bot_is_left_to_it(telegram):
    fake, _ = telegram
    mark = fake.mark()
    audio = fake.audio_attachment(b"OggS", file_name="g.ogg")
    await fake.user_sends("/mood@some_other_bot", audio=audio, chat=GROUP, user=ALICE)
    await asyncio.sleep(0.5)
    assert [c.method for c in fake.calls[mark:] if c.method != "getUpdates"] == []


async def test_a_capitalised_mood_caption_on_audio_in_a_group_is_heard_like_the_typed_command(telegram):
    """Phones capitalise a caption's first letter; '/Mood Creep' typed as a message already works."""
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends("/Mood", audio=fake.audio_attachment(b"OggS", file_name="g.ogg"), chat=GROUP, user=ALICE)
    await fake.wait_for("getFile", after=mark)
    assert await fake.wait_for_reply(after=mark)

async def test_mood_in_reply_to_a_song_someone_posted_hears_that_song(telegram):
    """In a group, '/mood' answering Bob's audio (or Bob's link) asks about that song."""
    from bot.usecases.mood import SPOTIFY_OFF_ERROR

    fake, _ = telegram
    audio = fake.audio_attachment(b"OggS", file_name="bobs-take.ogg")
    bobs = {"message_id": 900, "date": 0, "chat": {"id": GROUP, "type": "supergroup", "title": "g"},
            "from": {"id": BOB, "is_bot": False, "first_name": "Bob"}}
    mark = fake.mark()
    await fake.user_sends("/mood", chat=GROUP, user=ALICE, extra={"reply_to_message": {**bobs, "audio": audio}})
    fetched = await fake.wait_for("getFile", after=mark)
    assert fetched.params["file_id"] == audio["file_id"]

    link = "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC"
    await fake.user_sends("/mood", chat=GROUP, user=ALICE, extra={"reply_to_message": {**bobs, "text": f"{link} 🔥"}})
    assert (await fake.wait_for("sendMessage", lambda c: c.text == SPOTIFY_OFF_ERROR)).text  # the link was read

    # A reply to the bot's own answer is not a song: the usage, as for a bare /mood.
    await fake.user_sends("/mood", chat=GROUP, user=ALICE, reply_to=901)
    assert (await fake.wait_for("sendMessage", lambda c: c.text == GROUP_MOOD_USAGE)).text


async def test_playlist_without_mood_in_a_private_chat_says_playlists_belong_to_groups(telegram):
    fake, _ = telegram
    await fake.user_sends("/playlist")
    reply = await fake.wait_for("sendMessage")
    assert "group" in reply.text.lower() and "reply_markup" not in reply.params


# Attachments ---------------------------------------------------------------------------------


def test_the_official_bot_api_downloads_20_mb_at_most_a_local_server_more():
    official = Settings(_env_file=None, max_audio_bytes=25 * MB)
    assert download_limit(official) == 20 * MB
    assert download_limit(Settings(_env_file=None, max_audio_bytes=5 * MB)) == 5 * MB
    local = Settings(_env_file=None, max_audio_bytes=25 * MB, telegram_api_url="http://127.0.0.1:8081/bot",
                     telegram_file_url="http://127.0.0.1:8081/file/bot")
    assert download_limit(local) == 25 * MB


@pytest.fixture
async def telegram_25_mb(usecases):
    """The front-end with a 25 MB limit against the fake (which Telegram lets download 20 MB)."""
    fake = await FakeTelegramBotAPI(TELEGRAM_TOKEN).start()
    settings = Settings(_env_file=None, telegram_token=TELEGRAM_TOKEN, telegram_api_url=fake.base_url,
                        telegram_file_url=fake.base_file_url, max_audio_bytes=25 * MB)
    frontend = TelegramFrontend(settings, usecases, poll_timeout_s=1)
    await frontend.start()
    yield fake, frontend
    await frontend.stop()
    await fake.stop()


async def test_a_file_telegram_will_not_hand_out_is_called_too_large(telegram_25_mb):
    fake, _ = telegram_25_mb
    audio = fake.audio_attachment(b"\0" * 16, file_name="long-mix.mp3", file_size=22 * MB)
    await fake.user_sends(None, audio=audio)
    reply = await fake.wait_for_reply(lambda c: c.text not in (STAGE_LISTENING, STAGE_FINDING))
    assert "too large" in reply.text
    assert [c.status for c in fake.calls_of("getFile")] == [400] and not fake.calls_of("download")


async def test_a_failure_after_the_status_appeared_turns_the_status_into_the_apology(telegram, caplog):
    fake, _ = telegram
    # Twice: a server error is tried once more (telegram_http).
    fake.fail_next("getFile", times=2, status=500, description="Internal Server Error", delay_s=1.0)
    audio = fake.audio_attachment(b"OggS", file_name="clip.ogg")
    mark = fake.mark()
    await fake.user_sends(None, audio=audio)
    apology = await fake.wait_for("editMessageText")
    assert apology.text == NOT_DOWNLOADED  # Telegram did not hand the file over: sent again, it may be
    status, = fake.calls_of("sendMessage", after=mark)
    assert status.text == STAGE_LISTENING  # a file is not a song to find
    assert int(apology.params["message_id"]) == fake.message_of(status)["message_id"]
    (warning,) = [r for r in caplog.records if r.getMessage() == "telegram.file_not_downloaded"]
    assert (warning.user, warning.place) == (str(ALICE), None) and not failures_logged(caplog)


async def add_entry(db, user: int, *, n: int = 0, note: str = "") -> None:
    ref = UserRef("telegram", str(user))
    await db.users.set_journal(ref, enabled=False, prompt_time=None, timezone="Europe/Lisbon", chat_id=str(user))
    assert await db.journal.add(JournalEntry(
        user=ref, local_date=date(2025, 1, 1 + n), prompt_id=f"p{user}-{n}", phrase="On the way home…",
        reply_text="Creep", track_key=f"spotify:{n:022d}", track_title="Radiohead – Creep", mood="sad",
        valence=-0.5, arousal=0.1, created_at=datetime(2025, 1, 1 + n, tzinfo=timezone.utc), note=note))


# Buttons ---------------------------------------------------------------------------------------


async def test_a_mood_button_pressed_again_on_the_shown_playlist_brings_no_apology(telegram):
    """A double tap, or two members pressing 'sad' at once: the second press edits the message into
    the text it already shows, which Telegram refuses (400 'message is not modified'). The group sees
    the playlist, not 'Sorry, something went wrong'."""
    fake, _ = telegram
    await fake.user_sends("/playlist", chat=GROUP, user=ALICE)
    keyboard = await fake.wait_for("sendMessage")
    await fake.user_clicks("playlist:sad", message=keyboard, user=ALICE)
    assert "No sad songs here yet" in (await fake.wait_for("editMessageText")).text
    fake.fail_next("editMessageText", times=1, status=400, description=(
        "Bad Request: message is not modified: specified new message content and reply markup are exactly "
        "the same as a current content and reply markup of the message"))
    mark = fake.mark()
    await fake.user_clicks("playlist:sad", message=keyboard, user=BOB)
    while not [c for c in fake.calls_of("editMessageText", after=mark) if c.status == 400]:
        await asyncio.sleep(0.01)
    await fake.user_sends("/help", chat=GROUP, user=ALICE)  # answered after any apology would be
    await fake.wait_for("sendMessage", lambda c: "/mood" in c.text)
    assert render.GENERIC_ERROR not in [c.text for c in fake.calls_of("sendMessage", after=mark)]


async def test_a_button_pressed_while_the_bot_was_down_still_answers(telegram):
    """Telegram refuses to answer a callback query after ~15 s ('query is too old'): a press that
    waited out a restart can no longer stop its spinner, but the playlist is still shown."""
    fake, _ = telegram
    await fake.user_sends("/playlist", chat=GROUP, user=ALICE)
    keyboard = await fake.wait_for("sendMessage")
    fake.fail_next("answerCallbackQuery", times=1, status=400, description=(
        "Bad Request: query is too old and response timeout expired or query id is invalid"))
    mark = fake.mark()
    await fake.user_clicks("playlist:sad", message=keyboard, user=ALICE)
    answer = await fake.wait_for("editMessageText")
    assert "No sad songs here yet" in answer.text
    await asyncio.sleep(0.3)
    assert not fake.calls_of("sendMessage", after=mark)  # no apology for Telegram's refusal


async def test_a_forget_button_pressed_twice_is_answered_once(telegram):
    """A double tap on 'Yes, delete everything' sends two presses before the first one's edit takes the
    buttons away: the question shows what the first one deleted, not the second's '0 records', and
    no apology."""
    fake, frontend = telegram
    await fake.user_sends("/share off", user=ALICE, chat=ALICE)  # something to delete
    await fake.wait_for("sendMessage")
    await fake.user_sends("/forget", user=ALICE, chat=ALICE)
    question = await fake.wait_for("sendMessage")
    mark = fake.mark()
    await fake.user_clicks(f"forget:yes:{ALICE}", message=question, user=ALICE)
    await fake.user_clicks(f"forget:yes:{ALICE}", message=question, user=ALICE)
    await fake.wait_for("editMessageText", after=mark)
    while len(fake.calls_of("answerCallbackQuery", after=mark)) < 2 or frontend.flow.pending:
        await asyncio.sleep(0.01)  # both presses handled to the end
    edits = [c.text for c in fake.calls_of("editMessageText", after=mark)]
    assert edits and all("(1 record)" in text for text in edits)
    assert render.GENERIC_ERROR not in [c.text for c in fake.calls_of("sendMessage", after=mark)]


async def test_forget_presses_in_many_chats_leave_no_state_behind_in_each_chat(telegram, monkeypatch):
    """The ids of answered /forget questions were kept per chat in chat_data, and never dropped:
    one more id a press, one more chat_data entry a chat that ever pressed (a load review: 400 ids
    and 201 entries after 200 chats). The latest few answered are kept, for a double tap."""
    from bot.frontends import telegram as telegram_module

    monkeypatch.setattr(telegram_module, "FORGET_ANSWERED_KEPT", 3)
    fake, frontend = telegram
    for chat in range(5001, 5006):
        await fake.user_sends("/forget", user=chat, chat=chat)
        question = await fake.wait_for("sendMessage", lambda c: c.chat_id == str(chat))
        mark = fake.mark()
        await fake.user_clicks(f"forget:no:{chat}", message=question, user=chat)
        await fake.wait_for("editMessageText", after=mark)
    assert dict(frontend.app.chat_data) == {}
    assert len(frontend._forget_answered) == 3


async def test_a_prompt_whose_send_timed_out_is_not_sent_twice_and_a_reply_to_it_is_its_answer(telegram, db, usecases):
    """Telegram carried the prompt out but its answer came after the bot stopped waiting: the
    user has it on screen, without the bot knowing its message id. It is not sent again, and a
    reply to it (matched by the prompt's text) is saved as its answer."""
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    ref = UserRef("telegram", str(ALICE))
    frontend.prompt_read_timeout_s = 0.2
    fake.delay_next("sendMessage", 1.0)
    mark = fake.mark()
    prompt_id = await scheduler.deliver(ref)
    assert prompt_id is not None and scheduler.retry_at(ref) is None
    sent = await fake.wait_for("sendMessage", after=mark)
    assert await scheduler.deliver(ref) is None  # the day's prompt is out: no second one
    assert len(fake.calls_of("sendMessage", after=mark)) == 1

    content = b"OggS a song for the evening"
    await db.tracks.save(TrackRecord(
        key=f"sha256:{hashlib.sha256(content).hexdigest()}", title="", artists=[],
        classified_at=datetime.now(timezone.utc),
        mood=StoredMood("calm", {m: 0.7 if m == "calm" else 0.1 for m in MOODS}, 0.1, 0.2, "main", "v1")))
    prompt_message = fake.message_of(sent)
    mark = fake.mark()
    await fake.user_sends("long drive", audio=fake.audio_attachment(content, file_name="evening.ogg"),
                          extra={"reply_to_message": prompt_message})
    reply = await fake.wait_for("sendMessage", lambda c: c.text.startswith("Saved to your journal"), after=mark)
    assert reply is not None
    entry, = await db.journal.list(ref)
    assert entry.prompt_id == prompt_id and entry.note == "long drive"


async def test_a_prompt_telegram_failed_with_a_502_is_a_warning_in_its_words_and_tried_again(telegram, db, usecases,
                                                                                           caplog):
    """A 502 (after telegram_http's one retry) was logged 'scheduler.send_failed' at ERROR with
    PTB's traceback, as a bug is; it is Telegram's outage: one WARNING line, Telegram's words in it."""
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    ref = UserRef("telegram", str(ALICE))
    fake.fail_next("sendMessage", times=2, status=502, description="Bad Gateway")
    assert await scheduler.deliver(ref) is None
    (failed,) = [r for r in caplog.records if r.getMessage() == "scheduler.send_failed"]
    assert failed.levelname == "WARNING" and failed.exc_info is None and "Bad Gateway" in failed.reason
    retry = scheduler.retry_at(ref)
    assert failed.retry_at == (retry.strftime("%Y-%m-%dT%H:%M:%SZ") if retry else "none")


async def test_a_reply_to_another_message_showing_no_open_prompt_s_text_is_not_an_answer(telegram, db, usecases):
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    frontend.prompt_read_timeout_s = 0.2
    fake.delay_next("sendMessage", 1.0)
    assert await scheduler.deliver(UserRef("telegram", str(ALICE))) is not None
    mark = fake.mark()
    await fake.user_sends("Creep", reply_to=5)  # a bot message reading "(prompt)"
    hint = await fake.wait_for("sendMessage", after=mark)
    assert hint.text == TEXT_HINT


async def test_journal_delete_deletes_one_of_the_callers_entries_in_the_private_chat_only(telegram, db):
    """A wrong song fixed without /forget: /journal delete <date> names what went; a day of two
    entries asks which; a group never runs it; Bob's entry of the same day is not Alice's to delete."""
    fake, _ = telegram
    for n in range(2):
        await add_entry(db, ALICE, n=n, note=f"note {n}")
    await add_entry(db, BOB, n=0)
    alice = UserRef("telegram", str(ALICE))
    await db.journal.add(JournalEntry(
        user=alice, local_date=date(2025, 1, 2), prompt_id="second-of-the-2nd", phrase="Late at night…",
        reply_text="Creep", track_key="spotify:0000000000000000000009", track_title="Portishead – Roads",
        mood="calm", valence=-0.2, arousal=-0.5, created_at=datetime(2025, 1, 2, 23, tzinfo=timezone.utc)))

    await fake.user_sends("/journal delete 2025-01-01", chat=GROUP, user=ALICE)
    assert (await fake.wait_for("sendMessage")).text == PRIVATE_ONLY.format(command="journal", bot=BOT_USERNAME)
    await fake.user_sends("/journal delete 2025-01-01")
    assert (await fake.wait_for("sendMessage")).text == \
        "Deleted from your journal: 2025-01-01 · On the way home… Radiohead – Creep (😢 sad) – note 0"
    await fake.user_sends("/journal delete 2025-01-02")
    asked = (await fake.wait_for("sendMessage")).text
    assert asked.startswith("You have 2 entries dated 2025-01-02, so I deleted none.")
    assert "\n1. Late at night… Portishead – Roads (🌿 calm)\n2. On the way home… Radiohead – Creep" in asked
    await fake.user_sends("/journal delete 2025-01-02 2")
    assert (await fake.wait_for("sendMessage")).text.endswith("Radiohead – Creep (😢 sad) – note 1")
    await fake.user_sends("/journal delete 2025-1-32")
    assert "“2025-1-32” isn't a date I can read" in (await fake.wait_for("sendMessage")).text
    assert [e.prompt_id for e in await db.journal.list(alice)] == ["second-of-the-2nd"]
    assert await db.journal.count(UserRef("telegram", str(BOB))) == 1


async def answered_prompt(db, user: UserRef, prompt_id: str, when: datetime, message_id: str) -> None:
    """A prompt sent to `user` at `when` in message `message_id`, answered with Creep (sad)."""
    await db.prompts.record_sent(user, prompt_id, "On the way home…", when.date(), when, user.user_id, message_id)
    await db.prompts.mark_answered(prompt_id)
    await db.journal.add(JournalEntry(
        user=user, local_date=when.date(), prompt_id=prompt_id, phrase="On the way home…", reply_text="Creep",
        track_key="spotify:0000000000000000000001", track_title="Radiohead – Creep", mood="sad",
        valence=-0.5, arousal=0.1, created_at=when))


async def test_journal_delete_last_reopens_the_prompt_it_answered(telegram, db, usecases):
    """The answer to the latest prompt deleted: the reply says it may be answered again, and a
    reply to that prompt's message finds it open (not "already answered")."""
    fake, _ = telegram
    await usecases.journal.enable(Caller("telegram", str(ALICE), chat_id=str(ALICE)), "21:30", "Europe/Lisbon")
    alice = UserRef("telegram", str(ALICE))
    now = datetime.now(timezone.utc)
    await answered_prompt(db, alice, "today", now, "900")

    await fake.user_sends("/journal delete last")
    reply = (await fake.wait_for("sendMessage")).text
    assert reply == (f"Deleted from your journal: {now.date().isoformat()} · On the way home… Radiohead – Creep "
                     "(😢 sad)\nThe prompt it answered is open again: answer it with another song.")
    assert (await db.prompts.find_by_message("telegram", str(ALICE), "900")).answered_at is None
    await fake.user_sends("/journal delete last")
    assert (await fake.wait_for("sendMessage")).text == "Your journal is empty: there's nothing to delete."


async def test_journal_delete_last_while_a_voice_answer_downloads_deletes_no_other_entry(telegram, db, usecases):
    """A voice note replying to today's prompt is still downloading (Telegram slow to hand the file)
    when "/journal delete last" comes: the newest entry saved is yesterday's, which the user never
    meant. The delete waits for no answer and says so; yesterday's entry stays."""
    fake, _ = telegram
    await usecases.journal.enable(Caller("telegram", str(ALICE), chat_id=str(ALICE)), "21:30", "Europe/Lisbon")
    alice = UserRef("telegram", str(ALICE))
    now = datetime.now(timezone.utc)
    yesterday = now - timedelta(days=1)
    await answered_prompt(db, alice, "yesterday", yesterday, "899")
    await db.prompts.record_sent(alice, "today", "Burning dinner, I felt like…", now.date(), now, str(ALICE), "900")

    fake.delay_next("getFile", 4.0)
    await fake.user_sends(voice=fake.audio_attachment(b"OggS" + b"\0" * 64, file_name="v.ogg", kind="voice"),
                          reply_to=900)
    mark = fake.mark()
    await fake.user_sends("/journal delete last")
    told = await fake.wait_for("sendMessage", lambda c: "journal" in c.text, after=mark)  # not the voice's status
    assert "still being saved" in told.text, told.text
    assert [e.prompt_id for e in await db.journal.list(alice)][-1:] == ["yesterday"]
