"""DMs sent while the bot could not hear them (bot/frontends/discord/missed.py): Discord replays no
gateway event to a new session, so an answer to a daily prompt sent during a restart was neither
saved nor answered. The real front-end and use cases over the test database, on the fake Discord,
whose DM channels keep their messages (`GET /channels/{id}/messages`)."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

import discord
import pytest

from bot.frontends.discord import rendering
from bot.frontends.discord.journal import typed_command_hint
from bot.frontends.discord import missed
from bot.frontends.discord.missed import unanswered
from bot.replies import STAGE_FINDING, Caller
from bot.usecases.journal import FORGOTTEN_MEANWHILE
from storage.models import UserRef
from tests.frontends.test_discord import ALICE, BOB, VIDEO, cache_video, open_a_prompt
from tests.frontends.test_discord_forget_races import STAGES, TITLE, cached_file
from tests.frontends.test_discord_kept import _dm_reply, _empty
from tests.frontends.test_discord_start_stop import logged
from tests.frontends.test_telegram_inbox import until

ALICES = UserRef("discord", str(ALICE))


async def read_back(frontend) -> None:
    """The start's reading back of missed DMs, done."""
    await asyncio.wait_for(asyncio.shield(frontend.bot.catching_up), timeout=10)


def answers(fake, after: int) -> list:
    """The bot's answers to DMs since `after`, in the order shown: messages sent, or status messages
    edited into one."""
    return [c for c in fake.calls[after:] if c.name in ("send_message", "edit_message") and c.status < 300
            and (c.embeds or c.content not in STAGES)]


def sent_to(fake, user: int, after: int) -> list:
    return [c for c in fake.calls_of("send_message", after=after) if c.match["channel"] == str(fake.dm_channel_id(user))]


async def songs_told(fake, user: int, after: int) -> list:
    """The bot's answers naming a song in `user`'s DM since `after` (sent, or a status edited into
    one), once there is one, or none after 5 s."""
    return await until(lambda: [c for c in fake.calls[after:] if c.name in ("send_message", "edit_message")
                                and c.match.get("channel") == str(fake.dm_channel_id(user)) and c.embeds], timeout=5)


async def test_an_answer_sent_while_the_bot_was_restarting_is_saved_and_answered(scheduled, db, restart):
    fake, _ = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    # Alice answers while the bot is down: Discord keeps the DM, and tells no new session of it.
    fake.user_dms_while_away(f"{VIDEO} on the bus")
    mark = fake.mark()
    frontend = await restart()
    answer = await _dm_reply(fake, mark)
    assert answer.embeds and "Never Gonna Give You Up" in str(answer.embeds[0])
    await read_back(frontend)
    entries = await db.journal.list(ALICES, limit=10)
    assert [(e.track_title, e.note) for e in entries] == [("Rick Astley – Never Gonna Give You Up", "on the bus")]


async def test_a_dm_the_bot_replied_to_before_the_restart_is_not_answered_again(scheduled, db, restart):
    """The bot answers every DM: one followed by a message of the bot's was heard."""
    fake, _ = scheduled
    await open_a_prompt(fake)
    await fake.user_dms("/mood Creep")  # typed in the DM: told where the command works; the prompt stays open
    assert (await fake.wait_for("send_message")).content == typed_command_hint("mood")
    mark = fake.mark()
    frontend = await restart()
    await read_back(frontend)
    assert fake.calls_of("channel_history", after=mark), "the open prompt's DM channel was not read back"
    assert sent_to(fake, ALICE, mark) == []


async def test_only_the_channels_of_users_whose_latest_prompt_is_open_are_read(scheduled, db, restart):
    fake, _ = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    await fake.user_dms(VIDEO)  # answered: Alice's prompt has its song
    await _dm_reply(fake, fake.mark())
    assert await until(lambda: db.journal.count(ALICES))
    fake.user_dms_while_away("one more", user=ALICE)
    fake.user_dms_while_away("hello?", user=BOB)  # Bob never had a prompt
    mark = fake.mark()
    frontend = await restart()
    await read_back(frontend)
    assert fake.calls_of("channel_history", after=mark) == []
    assert sent_to(fake, ALICE, mark) == sent_to(fake, BOB, mark) == []


async def test_a_dm_both_read_back_and_sent_by_the_gateway_is_answered_once(scheduled, db, restart):
    """Sent as the new session began: in the channel's history, and its event on the gateway too."""
    fake, _ = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    message = fake.user_dms_while_away(f"{VIDEO} on the bus")
    release = fake.hold_next("channel_history")
    mark = fake.mark()
    frontend = await restart()
    await fake.wait_for("channel_history", after=mark)  # the history, read with the DM in it, held
    await fake.dispatch("MESSAGE_CREATE", message)  # and the DM's event arrives meanwhile
    await _dm_reply(fake, mark)
    release.set()
    await read_back(frontend)
    await asyncio.sleep(0.3)
    assert len([c for c in sent_to(fake, ALICE, mark) if c.embeds]) + len(
        [c for c in fake.calls_of("edit_message", after=mark) if c.embeds]) == 1
    assert await db.journal.count(ALICES) == 1


async def test_a_dm_sent_while_discord_dropped_the_session_is_answered_after_the_new_one(
        scheduled, db, caplog):
    """Past what discord.py can resume (Discord dropped the session), the bot identifies anew, and
    Discord sends nothing of what came meanwhile: shard 0's new session reads the DMs back."""
    fake, frontend = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    await read_back(frontend)
    caplog.set_level(logging.INFO, logger="bot.frontends.discord")
    fake.user_dms_while_away(f"{VIDEO} on the bus")
    fake.resumable = False
    mark = fake.mark()
    await fake.close_gateway(4000, "Unknown error.")
    # discord.py waits 5 s before identifying again (Discord's identify rate limit)
    answer = await _dm_reply(fake, mark)
    assert answer.embeds and "Never Gonna Give You Up" in str(answer.embeds[0])
    assert await db.journal.count(ALICES) == 1


async def test_several_dms_sent_while_away_are_answered_one_after_the_other_oldest_first(scheduled, db, restart):
    """Read back together, they were answered at once: the one heard first took the prompt (here
    the link, the file before it still downloading), and the file she sent first was told the
    prompt had its song."""
    fake, _ = scheduled
    await cache_video(db)
    take = await cached_file(fake, db)
    await open_a_prompt(fake)
    fake.user_dms_while_away("", attachments=[take])
    fake.user_dms_while_away(f"{VIDEO} or this one")
    fake.cdn_open.clear()
    mark = fake.mark()
    frontend = await restart()
    await fake.wait_for("download", after=mark)
    await asyncio.sleep(0.3)  # the link meanwhile
    fake.cdn_open.set()
    await read_back(frontend)
    assert await until(lambda: len(answers(fake, mark)) == 2), answers(fake, mark)
    entries = await db.journal.list(ALICES, limit=10)
    assert [e.reply_text for e in entries] == [TITLE]
    assert "already answered" in answers(fake, mark)[1].content


async def test_a_dm_waiting_for_its_turn_at_forget_is_not_saved_to_the_next_prompt(scheduled, usecases, db):
    """Sent before /forget, answered after the DM before it: /forget still beats it."""
    fake, _ = scheduled
    await cache_video(db)
    take = await cached_file(fake, db)
    await open_a_prompt(fake)
    fake.cdn_open.clear()
    await fake.user_dms("", attachments=[take])
    await fake.wait_for("download")
    await fake.user_dms(VIDEO)  # waits for the file's answer
    await asyncio.sleep(0.2)
    done = await usecases.privacy.forget(Caller("discord", str(ALICE), chat_id=str(ALICE)), confirmed=True)
    assert done.text.startswith("Done")
    await open_a_prompt(fake)  # back on, with today's prompt open again
    mark = fake.mark()
    fake.cdn_open.set()
    assert await until(lambda: len(answers(fake, mark)) == 2), answers(fake, mark)
    assert [a.content for a in answers(fake, mark)] == [FORGOTTEN_MEANWHILE] * 2
    assert await db.journal.count(ALICES) == 0


async def test_a_dm_sent_while_away_then_followed_by_a_new_prompt_answers_the_prompt_before_it(
        scheduled, db, usecases, restart):
    """A prompt sent after the DM, before its channel is read back (the start's missed prompts,
    sent at once): it was taken for the bot's answer to the DM, and the DM was never answered."""
    fake, _ = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    first = await db.prompts.latest(ALICES)
    await open_a_prompt(fake, user=BOB)  # newer: his channel is read first
    fake.user_dms_while_away(f"{VIDEO} on the bus")
    release = fake.hold_next("channel_history")  # Bob's
    mark = fake.mark()
    frontend = await restart()
    usecases.journal.schedule.register(frontend)  # the restarted bot sends the prompts
    await fake.wait_for("channel_history", after=mark)
    sent = await usecases.journal.prompt_now(Caller("discord", str(ALICE), chat_id=str(ALICE)))
    assert sent.text.startswith("Sent"), sent
    release.set()
    await read_back(frontend)
    answered = await songs_told(fake, ALICE, mark)
    assert answered, "the DM was never answered"
    assert "Never Gonna Give You Up" in str(answered[0].embeds[0])
    entries = await db.journal.list(ALICES, limit=10)
    assert [(e.prompt_id, e.note) for e in entries] == [(first.prompt_id, "on the bus")]
    assert (await db.prompts.latest(ALICES)).answered_at is None  # the new one waits for its song


def test_a_dm_read_back_comes_with_the_prompt_it_came_after_and_none_before_every_prompt_read():
    """Newest first, as Discord lists them: a reply of the bot's ends the reading, a prompt does not."""
    def said(n: int, content: str, *, bot: bool = False) -> dict:
        return {"id": str(n), "type": 0, "content": content, "author": {"id": "1" if bot else str(ALICE), "bot": bot}}

    prompt = f"What song fits today?\n\n{rendering.PROMPT_HINT}"
    history = [said(6, "and this"), said(5, prompt, bot=True), said(4, "Creep"), said(3, prompt, bot=True),
               said(2, "sent before the prompt, never answered"), said(1, "Saved: …", bot=True), said(0, "heard")]
    assert [(int(m.data["id"]), m.prompt) for m in unanswered(history, bot_id=1)] == [(4, 3), (6, 5)]
    assert [(int(m.data["id"]), m.prompt) for m in unanswered(history[:1], bot_id=1)] == [(6, None)]
    assert unanswered(history[5:], bot_id=1) == []
    status = said(7, STAGE_FINDING, bot=True)  # left showing by a run killed outright: no reply
    assert [(int(m.data["id"]), m.prompt, m.status) for m in unanswered([status] + history, bot_id=1)] == [
        (4, 3, None), (6, 5, 7)]
    # The status of the first DM at work, sent once the second came: the second waited its turn.
    burst = [status, said(6, "or this"), said(4, "Creep")] + history[3:]
    assert [(int(m.data["id"]), m.status) for m in unanswered(burst, bot_id=1)] == [(4, 7), (6, None)]
    # A prompt worded otherwise (another version's) is a reply, unless its id is known for a prompt's.
    reworded = history[:3] + [said(3, "What song fits today?", bot=True)] + history[4:]
    assert [int(m.data["id"]) for m in unanswered(reworded, bot_id=1)] == [6]
    assert [(int(m.data["id"]), m.prompt) for m in unanswered(reworded, bot_id=1, prompts={3})] == [(4, 3), (6, 5)]


async def test_a_new_session_during_the_start_s_reading_back_reads_back_again(scheduled, db, restart):
    """Shard 0 identified anew while the start's reading back was under way, past Bob's channel:
    his DM sent meanwhile was never read, the new session's reading left to the one under way."""
    fake, _ = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    await open_a_prompt(fake, user=BOB)  # newer: his channel is read first
    bobs = fake.hold_next("channel_history")
    mark = fake.mark()
    frontend = await restart()
    await fake.wait_for("channel_history", after=mark)
    alices = fake.hold_next("channel_history")
    bobs.set()
    await until(lambda: len(fake.calls_of("channel_history", after=mark)) == 2)
    fake.user_dms_while_away(f"{VIDEO} on the bus", user=BOB)
    fake.resumable = False
    sessions = len(fake.identifies)
    await fake.close_gateway(4000, "Unknown error.")
    assert await until(lambda: len(fake.identifies) > sessions, timeout=15)  # discord.py waits 5 s to identify
    await asyncio.sleep(0.5)
    alices.set()
    await read_back(frontend)
    assert await songs_told(fake, BOB, mark), "Bob's DM was never answered"



async def test_dms_sent_while_away_by_two_users_are_each_answered(scheduled, db, restart):
    fake, _ = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    await open_a_prompt(fake, user=BOB)
    fake.user_dms_while_away(f"{VIDEO} on the bus")
    fake.user_dms_while_away(f"{VIDEO} at work", user=BOB)
    mark = fake.mark()
    await restart()
    assert await songs_told(fake, BOB, mark) and await songs_told(fake, ALICE, mark)


async def test_a_dm_a_run_killed_outright_showed_a_status_for_is_answered_in_it(scheduled, db, restart):
    """Its status message sent ("Finding the song…"), the DM not kept yet (the inbox's write is
    batched, or the database was down) when the run was killed: the status was taken for the bot's
    reply, and the DM was never answered, "Finding the song…" shown for ever."""
    fake, _ = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    fake.user_dms_while_away(f"{VIDEO} on the bus")
    channel = fake.dm_channel_id(ALICE)
    status = fake.message_payload(channel_id=channel, content=STAGE_FINDING, author=fake.bot_user())
    fake.channel_messages[str(channel)].append(status)
    mark = fake.mark()
    await restart()
    answered = await songs_told(fake, ALICE, mark)
    assert answered, "the DM was never answered"
    assert answered[0].name == "edit_message" and answered[0].match["message"] == status["id"]
    assert [e.note for e in await db.journal.list(ALICES, limit=10)] == ["on the bus"]


def test_a_dm_older_than_a_prompt_may_be_answered_is_not_read_back():
    """A DM sent ten days ago after that day's prompt, never answered (the bot offline then, before
    it read DMs back): not answered now, under a prompt no message naming none answers after 7 days."""
    now = datetime.now(timezone.utc)

    def said(days_ago: float, content: str, *, bot: bool = False) -> dict:
        return {"id": str(discord.utils.time_snowflake(now - timedelta(days=days_ago))), "type": 0,
                "timestamp": (now - timedelta(days=days_ago)).isoformat(), "content": content,
                "author": {"id": "1" if bot else str(ALICE), "bot": bot}}

    prompt = f"What song fits today?\n\n{rendering.PROMPT_HINT}"
    history = [said(2, prompt, bot=True), said(9, "Creep"), said(10, prompt, bot=True)]
    assert unanswered(history, bot_id=1, since=now - timedelta(days=7)) == []
    assert len(unanswered(history, bot_id=1, since=now - timedelta(days=11))) == 1


# What keeps one user's DMs from being read back: a message discord.py cannot parse (an attachment
# without its size, file name and address, as no Discord it knows sends), a channel Discord refuses
# (403 50001: no access, 404 10003: unknown channel), a connection cut off, a channel not answered.
TROUBLES = {"a DM discord.py cannot read": "KeyError", "403": "403 50001", "404": "404 10003",
            "cut off": "ServerDisconnectedError", "not answered": "TimeoutError"}


@pytest.mark.parametrize("trouble", TROUBLES)
async def test_a_dm_or_a_channel_that_cannot_be_read_back_leaves_the_other_users_answered(
        scheduled, db, restart, caplog, monkeypatch, trouble):
    """Bob's channel is read first (his prompt is newer): what fails there is logged, with why,
    and Alice's DM is answered all the same; so is Bob's other DM, after the one unread."""
    fake, _ = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    await open_a_prompt(fake, user=BOB)
    caplog.set_level(logging.INFO, logger="bot.frontends.discord")
    monkeypatch.setattr(missed, "CHANNEL_S", 1.0)
    held = asyncio.Event()
    if trouble == "a DM discord.py cannot read":
        fake.user_dms_while_away("", user=BOB, attachments=[{"id": str(fake.snowflake())}])
    elif trouble == "cut off":
        fake.drop_next("channel_history", 2)  # aiohttp sends a GET cut off on a used connection again
    elif trouble == "not answered":
        held = fake.hold_next("channel_history")  # not until the test's end
    else:
        status, code = map(int, TROUBLES[trouble].split())
        fake.fail_next("channel_history", 1, status=status, code=code, message="refused")
    fake.user_dms_while_away(f"{VIDEO} at work", user=BOB)
    fake.user_dms_while_away(f"{VIDEO} on the bus")
    mark = fake.mark()
    await restart()
    assert await songs_told(fake, ALICE, mark), "Alice's DM was never answered"
    held.set()
    record = await logged(caplog, "discord.dm_not_read_back" if trouble == "a DM discord.py cannot read"
                          else "discord.dms_not_read_back")
    assert record.user == str(BOB) and TROUBLES[trouble] in record.reason
    if trouble == "a DM discord.py cannot read":
        assert await songs_told(fake, BOB, mark), "Bob's readable DM was never answered"
        assert await until(lambda: _empty(db)), "the DM discord.py cannot read is kept for the next start"


@pytest.mark.parametrize("away", [True, False])
async def test_a_command_typed_after_a_dm_still_at_work_is_answered_after_it(scheduled, db, restart, away):
    """A file sent (still downloading), then "/journal list" typed: its hint waits for the file's
    answer, as a DM after another does, whether read back after a restart or heard as sent."""
    fake, _ = scheduled
    take = await cached_file(fake, db)
    await open_a_prompt(fake)
    fake.cdn_open.clear()
    mark = fake.mark()
    if away:
        fake.user_dms_while_away("", attachments=[take])
        fake.user_dms_while_away("/journal list")
        await restart()
    else:
        await fake.user_dms("", attachments=[take])
    await fake.wait_for("download", after=mark)
    if not away:
        await fake.user_dms("/journal list")
    await asyncio.sleep(0.3)  # the typed command meanwhile
    fake.cdn_open.set()
    assert await until(lambda: len(answers(fake, mark)) == 2), answers(fake, mark)
    first, second = answers(fake, mark)
    assert first.embeds and second.content == typed_command_hint("journal list")


async def test_a_prompt_worded_otherwise_is_known_by_its_message_id(scheduled, db, usecases, restart):
    """A prompt as an older version worded it (its hint not today's), a DM after it, then a new
    prompt: the old one, known by the message id recorded for it, is not taken for the bot's reply
    to the DM, which is answered, to the prompt it came after."""
    fake, _ = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    first = await db.prompts.latest(ALICES)
    shown = next(m for m in fake.channel_messages[str(fake.dm_channel_id(ALICE))] if m["id"] == first.message_id)
    shown["content"] = shown["content"].replace(rendering.PROMPT_HINT, "Answer with a song.")
    fake.user_dms_while_away(f"{VIDEO} on the bus")
    sent = await usecases.journal.prompt_now(Caller("discord", str(ALICE), chat_id=str(ALICE)))
    assert sent.text.startswith("Sent"), sent
    mark = fake.mark()
    await restart()
    assert await songs_told(fake, ALICE, mark), "the DM was never answered"
    entries = await db.journal.list(ALICES, limit=10)
    assert [(e.prompt_id, e.note) for e in entries] == [(first.prompt_id, "on the bus")]


async def test_with_the_database_down_the_reading_back_asks_it_once(scheduled, usecases):
    """The bot's message each channel's reading stops at is asked of the database (is it a prompt
    worded otherwise?): down, each asking waited for it (2 s), one channel after another, so the
    last of 200 users' DMs waited minutes. Once it could not say, the reading asks no more."""
    fake, frontend = scheduled
    for user in (ALICE, BOB):
        await open_a_prompt(fake, user=user)
        channel = fake.dm_channel_id(user)
        fake.channel_messages[str(channel)].insert(0, fake.message_payload(
            channel_id=channel, content="Saved: …", author=fake.bot_user()))  # older than the prompt
    prompts = await usecases.journal.awaiting_answers("discord", 10)
    asked = []

    async def database_down(chat: str, message: int) -> None:
        asked.append(chat)

    await missed.MissedDMs().catch_up(frontend.bot, prompts, lambda data: None, database_down)
    assert len(prompts) == 2 and len(fake.calls_of("channel_history")) == 2
    assert len(asked) == 1
