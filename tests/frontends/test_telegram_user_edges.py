"""What a demanding Telegram user or group admin meets: a forum topic deleted while the bot answers
in it, and the other edges of a group's life that reach the bot as Telegram's refusals."""
from __future__ import annotations

import asyncio
import logging

import pytest

from bot.frontends.telegram import POST_AS_YOURSELF
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN, read, telegram_on, usecases_with_creep
from tests.frontends.test_telegram import statuses_of_a_refused_help
from tests.frontends.test_telegram_album import cached_songs
from tests.frontends.test_telegram_probe import QUIET_S, slow_download

GROUP = -100991
ALICE = 42
THREAD_GONE = "Bad Request: message thread not found"
EDIT_GONE = "Bad Request: message to edit not found"


def errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_answer_to_a_forum_topic_deleted_meanwhile_is_one_info_line_and_no_apology(telegram, caplog):
    """An admin deletes a forum topic while the bot answers in it: Telegram refuses the answer
    (400 "message thread not found"), as it would an apology there. Nothing failed in the bot: one
    INFO line, as for a topic the group closed, not a handler failure logged with its traceback."""
    fake, frontend = telegram
    caplog.set_level(logging.INFO)
    statuses = await statuses_of_a_refused_help(fake, frontend, THREAD_GONE, chat=GROUP, user=ALICE, topic=77)
    assert statuses == [400]
    assert not errors(caplog)
    assert len([r for r in caplog.records if "telegram.chat_refuses_the_bot" in r.getMessage()]) == 1


async def test_a_topic_deleted_while_the_bot_listens_ends_the_answer_quietly(telegram, db, caplog):
    """The status message ("Listening…") went out in the topic; the topic is deleted with it. The
    answer's edit finds no message, the answer sent anew finds no topic: one INFO line each, no
    error, no apology sent after them."""
    fake, frontend = telegram
    caplog.set_level(logging.INFO)
    (item, _, _), = await cached_songs(fake, db, 1)
    slow_download(fake)
    fake.fail_next("editMessageText", times=5, status=400, description=EDIT_GONE)
    mark = fake.mark()
    await fake.user_sends("/mood", **item, chat=GROUP, user=ALICE, topic=77)
    await fake.wait_for("sendMessage", after=mark)  # the status message
    fake.fail_next("sendMessage", times=5, status=400, description=THREAD_GONE)
    await asyncio.sleep(1.0 + QUIET_S)
    while frontend.flow.pending:
        await asyncio.sleep(0.01)
    sent = [(c.method, c.status) for c in fake.calls[mark:] if c.method in ("sendMessage", "editMessageText")]
    assert sent == [("sendMessage", 200), ("editMessageText", 400), ("sendMessage", 400)], sent
    assert not errors(caplog)


CHANNEL_BOT = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}


async def test_serverplaylist_posted_as_a_channel_is_told_to_post_as_oneself(telegram):
    """A member may post in a group as a channel of theirs (the group's linked channel, or their
    own): Telegram then sends `from` Channel_Bot, one id for every such post on Telegram, and the
    channel as `sender_chat`. Who is behind it is unknown, so whether they are an admin cannot be
    asked: a group admin posting so was told "Only the group's admins can…", and the bot asked
    getChatMember about Channel_Bot. Told to post as themselves, as /share is."""
    fake, _ = telegram
    fake.admins[str(GROUP)] = {str(ALICE)}  # Alice, posting as her channel
    channel = {"id": -1002, "type": "channel", "title": "Alice's channel"}
    mark = fake.mark()
    await fake.user_sends("/serverplaylist off", chat=GROUP, extra={"sender_chat": channel, "from": CHANNEL_BOT})
    reply = await fake.wait_for("sendMessage", after=mark)
    assert reply.text == POST_AS_YOURSELF
    assert not fake.calls_of("getChatMember", after=mark)
    mark = fake.mark()  # the group's own anonymous admin is still its admin
    await fake.user_sends("/serverplaylist off", chat=GROUP, anonymous=True)
    assert "off" in (await fake.wait_for("sendMessage", after=mark)).text


async def test_an_archive_of_any_usual_type_is_refused_without_a_download(telegram):
    """A zip or rar of songs, as the sender's app names its type: Windows names a zip
    application/x-zip-compressed, Linux desktops a rar application/vnd.rar. Each was fetched (and a
    big one refused as "too large" rather than as not audio); refused before any download now, as
    application/zip is."""
    fake, _ = telegram
    for name, mime in (("songs.zip", "application/x-zip-compressed"), ("songs.rar", "application/vnd.rar"),
                       ("songs.tar.gz", "application/gzip"), ("songs.tar", "application/x-tar"),
                       ("songs.tar.xz", "application/x-xz"), ("songs.tar.bz2", "application/x-bzip2")):
        file_id = fake.add_file(b"PK\x03\x04 not a song", ".bin")
        document = {"file_id": file_id, "file_unique_id": file_id[1:9], "file_name": name,
                    "file_size": 30 * 1024 * 1024, "mime_type": mime}
        mark = fake.mark()
        await fake.user_sends(None, document=document)
        reply = await fake.wait_for("sendMessage", after=mark)
        assert read(reply.text) == f"The file {name} is not audio we can read.", (mime, reply.text)
        assert not fake.calls_of("getFile", after=mark)


@pytest.fixture
async def telegram_with_spotify(db):
    """The Telegram front-end whose /mood looks songs up on a fake Spotify holding Creep."""
    async with usecases_with_creep(db) as (_, usecases):
        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as both:
            yield both


@pytest.mark.parametrize("replied", ["/play Creep Radiohead", "/play@music_vc_bot Radiohead - Creep"])
async def test_a_bare_mood_replying_to_a_music_bot_s_command_asks_about_the_song_it_names(
        telegram_with_spotify, replied):
    """Groups play music with a voice-chat bot: '/play Creep Radiohead'. Alice replies /mood to
    it: the song is the words after the command. The command word was searched with them, and as
    no song holds '/play', she was offered the nearest ones instead of Creep's mood."""
    fake, _ = telegram_with_spotify
    bobs = {"message_id": 903, "date": 0, "chat": {"id": GROUP, "type": "supergroup", "title": "g"},
            "from": {"id": ALICE + 1, "is_bot": False, "first_name": "Bob"}, "text": replied,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(replied.split()[0])}]}
    mark = fake.mark()
    await fake.user_sends("/mood", chat=GROUP, user=ALICE, extra={"reply_to_message": bobs})
    answer = await fake.wait_for_reply(lambda c: "Mood:" in c.text or "…" not in c.text, after=mark)
    assert "Radiohead – Creep" in answer.text and "sad" in answer.text, answer.text
