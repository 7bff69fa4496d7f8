"""Group life seen by real users: the bot removed from a group while it listens, and other things
that happen to a group between a question and its answer."""
from __future__ import annotations

import asyncio
import logging

import pytest

from bot.frontends import render

from tests.frontends.test_request_ids import lines_of
from tests.inference.test_pool import eventually
from tests.frontends.test_telegram import statuses_of_a_refused_help
from tests.frontends.test_telegram_album import cached_songs
from tests.frontends.test_telegram_probe import QUIET_S, slow_download

GROUP = -100778
ALICE = 42
BOB = 43


@pytest.mark.parametrize("status_code, refusal", [
    (403, "Forbidden: bot was kicked from the supergroup chat"),
    (400, "Bad Request: not enough rights to send text messages to the chat"),
])
async def test_a_bot_removed_from_the_group_while_it_listens_is_one_info_line_and_no_more_calls(
        telegram, db, caplog, status_code, refusal):
    """The status message is up ("Listening…"), then an admin removes the bot (or mutes it):
    Telegram refuses the answer's edit, and would refuse anything else sent there. Nothing more is
    sent to that chat, and the operator reads one INFO line, not a warning of a failed edit."""
    fake, frontend = telegram
    (item, _, _), = await cached_songs(fake, db, 1)
    slow_download(fake)
    fake.fail_next("editMessageText", times=5, status=status_code, description=refusal)
    mark = fake.mark()
    caplog.set_level(logging.INFO)
    await fake.user_sends("/mood", **item, chat=GROUP, user=ALICE)
    await asyncio.sleep(1.0 + QUIET_S)
    while frontend.flow.pending:
        await asyncio.sleep(0.01)
    sent = [(c.method, c.status) for c in fake.calls[mark:] if c.method in ("sendMessage", "editMessageText")]
    assert sent == [("sendMessage", 200), ("editMessageText", status_code)], sent
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records
                                                                              if r.levelno >= logging.WARNING]
    assert len([r for r in caplog.records if "telegram.chat_refuses_the_bot" in r.getMessage()]) == 1


async def test_a_group_upgraded_to_a_supergroup_keeps_one_voice_for_what_it_posted_as_itself(telegram, db):
    """An anonymous admin's /mood is the group's own, counted under the group's id; the supergroup
    it becomes has another id. The song the group asked about before and after the upgrade is one
    member's pick, not two members' (the old id would vote on, for ever, beside the new one)."""
    fake, _ = telegram
    old, new = -556, -100556
    (item, title, mood), = await cached_songs(fake, db, 1)
    await fake.user_sends("/mood", **item, chat=old, chat_type="group", anonymous=True)
    assert title in (await fake.wait_for("sendMessage", lambda c: title in c.text)).text
    await fake.group_upgrades(old, new, by=ALICE)
    await asyncio.sleep(0.5)
    await fake.user_sends("/mood", **item, chat=new, anonymous=True)
    await fake.wait_for("sendMessage", lambda c: title in c.text)
    mark = fake.mark()
    await fake.user_sends(f"/playlist {mood}", chat=new, user=ALICE)
    shown = (await fake.wait_for("sendMessage", after=mark)).text
    assert title in shown and "members" not in shown, shown


async def test_a_forum_topic_closed_to_the_bot_is_one_info_line_and_no_apology(telegram, caplog):
    """An admin may still post in a topic the group closed; the bot (no right to manage topics) may
    not: Telegram answers 400 TOPIC_CLOSED to the answer, and would to an apology. As in a group that
    muted the bot, nothing failed in the bot: one INFO line, no error, no second message."""
    fake, frontend = telegram
    caplog.set_level(logging.INFO)
    statuses = await statuses_of_a_refused_help(fake, frontend, "Bad Request: TOPIC_CLOSED", chat=GROUP, user=ALICE,
                                                topic=77)
    assert statuses == [400]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len([r for r in caplog.records if "telegram.chat_refuses_the_bot" in r.getMessage()]) == 1


async def test_an_anonymous_admin_s_command_the_stop_did_not_start_is_told_to_send_it_again(telegram):
    """An anonymous admin's message comes `from` GroupAnonymousBot, which Telegram marks as a bot;
    a person is behind it, waiting for the answer as any member would: told, as they are, that the
    bot is restarting, not left without a word."""
    fake, frontend = telegram
    frontend.flow.stopping = True  # the stop's grace is over: what arrives now is not started
    for sender in ({"user": ALICE}, {"anonymous": True}):
        mark = fake.mark()
        await fake.user_sends("/mood Creep", chat=GROUP, **sender)
        told = await fake.wait_for("sendMessage", after=mark, timeout=3)
        assert told.text == render.RESTARTING, sender
    frontend.flow.stopping = False


async def test_an_edit_arriving_during_the_stop_is_not_answered_with_send_it_again(telegram):
    """An edit that asks for no song's mood runs nothing (docs/usage.md), at any time: one arriving
    while the bot stops was answered 'restarting… send it again', asking the user to send again what
    would never have run."""
    fake, frontend = telegram
    sent = await fake.user_sends("hello")  # in the private chat, where every message is answered
    await fake.wait_for("sendMessage")
    frontend.flow.stopping = True  # the stop's grace is over: what arrives now is not started
    mark = fake.mark()
    await fake.user_edits(sent, "hello again")
    await fake.user_sends("/mood Creep", chat=GROUP, user=ALICE)  # a message that is told, after the edit
    told = await fake.wait_for("sendMessage", after=mark, timeout=3)
    frontend.flow.stopping = False
    assert told.chat_id == str(GROUP), told.text


async def test_group_messages_the_bot_never_answers_are_not_told_to_be_sent_again_during_the_stop(telegram):
    """In a group the bot answers its own commands only: a word in reply to its answer ("thanks!")
    and another bot's command typed without a name (/ban, /poll) get no answer at any time, and must
    not get "restarting… send it again" from the stop either."""
    fake, frontend = telegram
    frontend.flow.stopping = True  # the stop's grace is over: what arrives now is not started
    mark = fake.mark()
    await fake.user_sends("thanks!", chat=GROUP, user=ALICE, reply_to=999)  # a reply to the bot's answer
    await fake.user_sends("/ban @spammer", chat=GROUP, user=ALICE)
    asked = await fake.user_sends("/mood Creep", chat=GROUP, user=ALICE + 1)  # one that is told, after them
    asked_id = asked["message"]["message_id"]
    await fake.wait_for("sendMessage", lambda c: c.params["reply_parameters"]["message_id"] == asked_id,
                        after=mark, timeout=3)
    frontend.flow.stopping = False
    told = [c.params["reply_parameters"]["message_id"] for c in fake.calls_of("sendMessage", after=mark)]
    assert told == [asked_id]


async def test_a_command_deleted_in_a_forum_topic_before_its_answer_still_gets_the_answer_there(telegram, db):
    """A group's command-cleaning bot deletes each command at once. Elsewhere the answer goes out
    unquoted (allow_sending_without_reply), but that is "always False for replies in a forum
    topic": Telegram refuses it (400 message to be replied not found), and the asker got "Sorry,
    something went wrong". The answer now comes unquoted, in the same topic."""
    fake, _ = telegram
    fake.admins[str(GROUP)] = {str(ALICE)}
    (item, title, _), = await cached_songs(fake, db, 1)
    for command, media, answer in (("/help", {}, "/mood"), ("/serverplaylist off", {}, "Group playlists are off"),
                                   ("/mood", item, title)):
        mark = fake.mark()
        update = await fake.user_sends(command, chat=GROUP, user=ALICE, topic=77, **media)
        fake.user_deletes(update)
        reply = await fake.wait_for_reply(after=mark)
        assert answer in reply.text, reply.text
        assert int(reply.params["message_thread_id"]) == 77 and "reply_parameters" not in reply.params
    await asyncio.sleep(QUIET_S)
    assert render.GENERIC_ERROR not in [c.text for c in fake.calls_of("sendMessage")]


async def test_playlists_switched_off_as_the_group_became_a_supergroup_are_off_in_the_supergroup(telegram, db):
    """An admin sends /serverplaylist off in a group just as another admin upgrades it to a
    supergroup: Telegram, asked whether the sender is an admin, names the new chat, and the answer
    goes there. The choice was saved under the old id once the move had run, which nothing reads
    again: the supergroup's playlists stayed on though the admin was told they were off."""
    fake, _ = telegram
    old, new, bob = -559, -100559, ALICE + 1
    fake.admins[str(new)] = {str(ALICE)}
    fake.group_upgraded(old, new)  # as the admin's command arrives
    fake.delay_next("getChatMember", 1.0)  # asked of the supergroup: answered once the move is made
    await fake.user_sends("/serverplaylist off", chat=old, chat_type="group", user=ALICE)
    await fake.group_upgrades(old, new, by=bob)
    told = await fake.wait_for("sendMessage", lambda c: "Group playlists" in c.text, timeout=5)
    assert told.chat_id == str(new) and told.text.startswith("Group playlists are off"), told.text
    assert (await db.servers.get(f"telegram:{new}")).playlist_enabled is False
    mark = fake.mark()
    await fake.user_sends("/playlist sad", chat=new, user=bob)
    assert (await fake.wait_for("sendMessage", after=mark)).text.startswith("Group playlists are turned off here")


async def test_a_bot_removed_from_a_group_drops_the_songs_it_had_not_reached_there(telegram, log_stream):
    """Three members' songs wait for their files (Telegram throttles getFile) when an admin removes
    the bot: before, each was still downloaded and heard, and its answer refused (403). Now the
    removal (Telegram's `my_chat_member`, the bot 'kicked') drops them, said in one INFO line with
    how many, and no file of that chat is fetched after it."""
    fake, frontend = telegram
    songs = [{"audio": fake.audio_attachment(f"OggS never heard {n}".encode(), file_name=f"s{n}.ogg")}
             for n in range(3)]
    fake.fail_next("getFile", times=3, retry_after=2)  # each waits 2 s for its turn
    for n, item in enumerate(songs):
        await fake.user_sends("/mood", **item, chat=GROUP, user=ALICE + n)
    while len(fake.calls_of("getFile")) < 3:  # all three told to wait
        await asyncio.sleep(0.01)
    mark = fake.mark()
    await fake.member_changes(0, "member", "kicked", chat=GROUP, by=ALICE, bot=True)
    await asyncio.sleep(3.0 + QUIET_S)  # past the turn each waited for
    while frontend.flow.pending:
        await asyncio.sleep(0.01)
    assert [c.method for c in fake.calls[mark:] if c.method not in ("getUpdates",)] == [], str([(c.method, c.text, c.status) for c in fake.calls[mark:]])
    (dropped,) = lines_of(log_stream, "telegram.chat_gone")
    assert dropped["dropped"] == "3" and dropped["req"].startswith("tg-"), str(dropped)


async def test_a_403_for_a_bot_kicked_from_the_group_drops_the_songs_it_had_not_reached_there(telegram, log_stream):
    """Telegram's `my_chat_member` may come late (or not at all, the bot removed while it was
    down): the first send refused with 'bot was kicked' (here /help's answer) tells the same, and
    the group's song still waiting for its file is dropped."""
    fake, _ = telegram
    item = {"audio": fake.audio_attachment(b"OggS never heard", file_name="s.ogg")}
    fake.delay_next("getFile", 3.0)  # its file's path comes 3 s later
    await fake.user_sends("/mood", **item, chat=GROUP, user=ALICE)
    await fake.wait_for("getFile")
    fake.fail_next("sendMessage", times=5, status=403, description="Forbidden: bot was kicked from the supergroup chat")
    await fake.user_sends("/help", chat=GROUP, user=BOB)
    await asyncio.sleep(3.0 + QUIET_S)
    assert fake.calls_of("download") == [], "a dropped song's file was fetched"
    (dropped,) = lines_of(log_stream, "telegram.chat_gone")
    assert dropped["dropped"] == "1", str(dropped)
    assert len(lines_of(log_stream, "server.bot_removed")) == 1  # the removal said, by the 403
    await fake.member_changes(0, "member", "kicked", chat=GROUP, by=ALICE, bot=True)  # the update, late
    await asyncio.sleep(QUIET_S)
    assert len(lines_of(log_stream, "server.bot_removed")) == 1  # and said once


async def test_a_mood_that_starts_after_the_removal_is_dropped_in_an_info_line(telegram, log_stream):
    """A group's /mood read after the bot's removal (a backlog of updates, a 403 that told first)
    is dropped before any fetch, and its asker hears nothing. Its line was DEBUG, so the log had
    none of it to follow the asker's "the bot ignored me" with: it is INFO, with its req= and the group."""
    fake, _ = telegram
    await fake.member_changes(0, "member", "kicked", chat=GROUP, by=ALICE, bot=True)
    assert await eventually(lambda: lines_of(log_stream, "telegram.chat_gone"))
    mark = fake.mark()
    late = await fake.user_sends("/mood", audio=fake.audio_attachment(b"OggS late", file_name="l.ogg"),
                                 chat=GROUP, user=BOB)
    assert await eventually(lambda: lines_of(log_stream, "telegram.mood_dropped_chat_gone"), within_s=5)
    (told,) = lines_of(log_stream, "telegram.mood_dropped_chat_gone")
    assert (told["req"], told["place"], told["level"]) == (f"tg-{late['update_id']}", f"telegram:{GROUP}", "INFO")
    assert [c.method for c in fake.calls[mark:] if c.method != "getUpdates"] == []


async def test_a_bot_added_back_to_the_group_answers_there_again(telegram, db):
    fake, _ = telegram
    (item, title, _), = await cached_songs(fake, db, 1)
    await fake.member_changes(0, "member", "kicked", chat=GROUP, by=ALICE, bot=True)
    await fake.member_changes(0, "left", "member", chat=GROUP, by=ALICE, bot=True)
    await fake.user_sends("/mood", **item, chat=GROUP, user=ALICE)
    assert title in (await fake.wait_for("sendMessage")).text


async def test_an_album_s_songs_are_dropped_with_the_group_that_removed_the_bot(telegram, log_stream):
    fake, _ = telegram
    items = [{"audio": fake.audio_attachment(f"OggS album song {n}".encode(), file_name=f"a{n}.ogg")}
             for n in range(2)]
    fake.delay_next("getFile", 3.0)  # the first song's file path comes 3 s later
    await fake.user_sends_album(items, "/mood", chat=GROUP, user=ALICE)
    await fake.wait_for("getFile")
    await fake.member_changes(0, "member", "kicked", chat=GROUP, by=ALICE, bot=True)
    await asyncio.sleep(3.0 + QUIET_S)
    assert fake.calls_of("download") == [] and len(fake.calls_of("getFile")) == 1, "a dropped song was fetched"
    (dropped,) = lines_of(log_stream, "telegram.chat_gone")
    assert dropped["dropped"] == "1", str(dropped)  # the album, its songs left with it
