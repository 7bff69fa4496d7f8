"""What Telegram refuses mid-answer, and the answer still arrives once: a status message the user
deleted, a server error on the answer, a group upgraded to a supergroup while the bot was working,
a forum topic's chart. The songs are in the track cache (keyed by the file's hash), so each gets a
real mood without a classifier; a slow getFile (a 429 waited out) makes the status message appear.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

import pytest

from bot.frontends import render
from bot.frontends.telegram import A_PICTURE, POST_AS_YOURSELF, StatusMessage
from bot.replies import STAGE_DOWNLOADING, STAGE_LISTENING
from storage.models import MoodRequest, StoredMood, TrackRecord, UserRef
from tests.fakes.telegram_api import BOT_USERNAME
from tests.frontends.conftest import journal_on_telegram
from tests.frontends.test_telegram import add_entry
from tests.frontends.test_telegram_album import cached_songs

GROUP = -100777
ALICE, BOB = 42, 43
QUIET_S = 1.0  # long enough for the bot to have said whatever it was going to say
EDIT_NOT_FOUND = "Bad Request: message to edit not found"
CANT_BE_EDITED = "Bad Request: message can't be edited"


async def shown_after(fake, mark: int) -> list[tuple[str, str]]:
    """(method, text) of every text the chats show after `mark`, once the bot is quiet."""
    await asyncio.sleep(QUIET_S)
    return [(c.method, c.text) for c in fake.calls[mark:]
            if c.method in ("sendMessage", "editMessageText") and c.status == 200]


def slow_download(fake) -> None:
    """The next getFile is told to wait a second: the work is slow, so its status appears."""
    fake.fail_next("getFile", times=1, retry_after=1)


# Server errors -------------------------------------------------------------------------------


async def test_a_server_error_on_the_answer_is_retried_and_the_answer_said_once(telegram, db):
    fake, _ = telegram
    (item, title, _), = await cached_songs(fake, db, 1)
    fake.fail_next("sendMessage", times=1, status=502, description="Bad Gateway")
    mark = fake.mark()
    await fake.user_sends(None, **item)
    shown = await shown_after(fake, mark)
    assert len(shown) == 1 and title in shown[0][1], shown


async def bob_voted_in_the_group(db) -> None:
    """One song in the group's week, so /servermood has a chart to send."""
    await db.requests.add(MoodRequest(UserRef("telegram", str(BOB)), f"telegram:{GROUP}", f"spotify:{0:022d}",
                                      "sad", datetime.now(timezone.utc), title="Radiohead – Creep"))


async def test_a_chart_refused_by_a_server_error_is_sent_again(telegram, db):
    """An upload is a multipart body, built anew for the second try."""
    fake, _ = telegram
    await bob_voted_in_the_group(db)
    fake.fail_next("sendPhoto", times=1, status=503, description="Service Unavailable")
    mark = fake.mark()
    await fake.user_sends("/servermood", chat=GROUP, user=ALICE)
    chart = await fake.wait_for("sendPhoto", after=mark)
    assert chart.files["photo"].startswith(b"\x89PNG")
    await asyncio.sleep(QUIET_S)
    assert [c.status for c in fake.calls_of("sendPhoto", after=mark)] == [503, 200]
    assert render.GENERIC_ERROR not in [c.text for c in fake.calls[mark:] if c.status == 200]


# Forum topics --------------------------------------------------------------------------------


async def test_the_mood_of_the_week_and_its_chart_stay_in_the_forum_topic(telegram, db):
    fake, _ = telegram
    await bob_voted_in_the_group(db)
    mark = fake.mark()
    await fake.user_sends("/servermood", chat=GROUP, user=ALICE, topic=77)
    chart = await fake.wait_for("sendPhoto", after=mark)
    summary, = fake.calls_of("sendMessage", after=mark)
    assert int(summary.params["message_thread_id"]) == 77 and int(chart.params["message_thread_id"]) == 77


# A status message the user deleted -----------------------------------------------------------


async def test_a_status_message_deleted_meanwhile_leaves_the_mood_as_a_new_message(telegram, db):
    fake, _ = telegram
    (item, title, mood), = await cached_songs(fake, db, 1)
    slow_download(fake)
    fake.fail_next("editMessageText", times=5, status=400, description=EDIT_NOT_FOUND)
    mark = fake.mark()
    await fake.user_sends(None, **item)
    await asyncio.sleep(1.0)  # the download waited a second
    shown = await shown_after(fake, mark)
    assert shown[0] == ("sendMessage", STAGE_LISTENING)
    answers = [text for _, text in shown[1:]]
    assert len(answers) == 1 and title in answers[0] and mood in answers[0], shown
    assert render.GENERIC_ERROR not in answers


async def test_a_journal_answer_whose_status_was_deleted_is_saved_and_confirmed(telegram, db, usecases):
    """The entry is saved; the confirmation must say so, not apologise for a failure."""
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    (item, title, _), = await cached_songs(fake, db, 1)
    mark = fake.mark()
    await scheduler.fire_now(UserRef("telegram", str(ALICE)))
    prompt = await fake.wait_for("sendMessage", after=mark)
    slow_download(fake)
    fake.fail_next("editMessageText", times=5, status=400, description=CANT_BE_EDITED)
    mark = fake.mark()
    await fake.user_sends(None, **item, reply_to=fake.message_of(prompt)["message_id"])
    await asyncio.sleep(1.0)
    shown = await shown_after(fake, mark)
    assert [text for _, text in shown if "Saved to your journal" in text], shown
    assert render.GENERIC_ERROR not in [text for _, text in shown]
    entries = await db.journal.list(UserRef("telegram", str(ALICE)))
    assert len(entries) == 1


async def test_a_journal_answer_whose_edits_telegram_throttles_is_confirmed_once(telegram, db, usecases):
    """429 on the status edits (a busy group, or a burst): waited out, and said once."""
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    (item, _, _), = await cached_songs(fake, db, 1)
    mark = fake.mark()
    await scheduler.fire_now(UserRef("telegram", str(ALICE)))
    prompt = await fake.wait_for("sendMessage", after=mark)
    slow_download(fake)
    fake.fail_next("editMessageText", times=2, retry_after=1)
    mark = fake.mark()
    await fake.user_sends(None, **item, reply_to=fake.message_of(prompt)["message_id"])
    saved = await fake.wait_for_reply(lambda c: "Saved to your journal" in c.text, timeout=15, after=mark)
    assert saved.method == "editMessageText"
    await asyncio.sleep(QUIET_S)
    shown = [c.text for c in fake.calls[mark:] if c.method in ("sendMessage", "editMessageText") and c.status == 200]
    assert shown == [STAGE_LISTENING, saved.text]
    assert len(await db.journal.list(UserRef("telegram", str(ALICE)))) == 1


async def test_a_journal_answer_whose_last_edit_times_out_is_still_confirmed_not_apologised_for(
        telegram, db, usecases):
    """The entry is saved: if the edit putting the confirmation in the status message gets no
    answer in time, the confirmation comes as a message of its own, never 'Sorry, something went
    wrong' (which would be a second message anyway, and a false one)."""
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    (item, _, _), = await cached_songs(fake, db, 1)
    mark = fake.mark()
    await scheduler.fire_now(UserRef("telegram", str(ALICE)))
    prompt = await fake.wait_for("sendMessage", after=mark)
    slow_download(fake)
    fake.fail_next("editMessageText", times=1, status=502, description="Bad Gateway", delay_s=6.0)  # past the read timeout
    mark = fake.mark()
    await fake.user_sends(None, **item, reply_to=fake.message_of(prompt)["message_id"])
    saved = await fake.wait_for("sendMessage", lambda c: "Saved to your journal" in c.text, timeout=15, after=mark)
    await asyncio.sleep(QUIET_S)
    assert render.GENERIC_ERROR not in [c.text for c in fake.calls[mark:] if c.status == 200]
    assert saved.chat_id == str(ALICE)
    assert len(await db.journal.list(UserRef("telegram", str(ALICE)))) == 1


async def test_a_quick_journal_answer_whose_confirmation_times_out_is_sent_again_not_apologised_for(
        telegram, db, usecases):
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    (item, _, _), = await cached_songs(fake, db, 1)
    mark = fake.mark()
    await scheduler.fire_now(UserRef("telegram", str(ALICE)))
    prompt = await fake.wait_for("sendMessage", after=mark)
    fake.fail_next("sendMessage", times=1, status=502, description="Bad Gateway", delay_s=6.0)  # past the read timeout
    mark = fake.mark()
    await fake.user_sends(None, **item, reply_to=fake.message_of(prompt)["message_id"])
    await fake.wait_for("sendMessage", lambda c: "Saved to your journal" in c.text, timeout=15, after=mark)
    await asyncio.sleep(QUIET_S)
    assert render.GENERIC_ERROR not in [c.text for c in fake.calls[mark:] if c.status == 200]
    assert len(await db.journal.list(UserRef("telegram", str(ALICE)))) == 1


async def status_for(fake, frontend) -> tuple[StatusMessage, int]:
    """A StatusMessage answering a real message of the bot, and the mark after it."""
    asked = await frontend.app.bot.send_message(chat_id=ALICE, text="/mood Creep")
    return StatusMessage(asked, delay_s=60), fake.mark()


async def test_a_stage_telegram_refuses_to_show_does_not_stop_the_work(telegram):
    """The use case awaits each stage: an edit Telegram refuses must not end the answer (a journal
    answer would be lost), nor bring back a status message the user deleted."""
    fake, frontend = telegram
    status, mark = await status_for(fake, frontend)
    await status(STAGE_DOWNLOADING)
    await status.shown()  # each step of the work takes as long as its stage's message here
    fake.fail_next("editMessageText", times=5, status=400, description=EDIT_NOT_FOUND)
    await status(STAGE_LISTENING)
    await status.shown()
    await status("Still listening…")
    await status.shown()
    await status.finish("Mood: happy")
    assert [(c.method, c.text, c.status) for c in fake.calls[mark:]] == [
        ("sendMessage", STAGE_DOWNLOADING, 200), ("editMessageText", STAGE_LISTENING, 400),
        ("sendMessage", "Mood: happy", 200)]


async def test_a_status_that_cannot_be_sent_does_not_stop_the_work(telegram):
    fake, frontend = telegram
    status, mark = await status_for(fake, frontend)
    fake.fail_next("sendMessage", times=2, status=500, description="Internal Server Error")
    await status(STAGE_DOWNLOADING)
    await status.shown()  # refused: the work goes on
    await status.finish("Mood: happy")
    assert [(c.method, c.text) for c in fake.calls[mark:] if c.status == 200] == [("sendMessage", "Mood: happy")]


@pytest.mark.parametrize("status_code, description", [
    (403, "Forbidden: bot was blocked by the user"),
    # A group that took the bot's right to send messages: 400 "not enough rights", not 403.
    (400, "Bad Request: not enough rights to send text messages to the chat"),
])
async def test_a_status_refused_to_the_bot_is_not_sent_again_at_each_stage(telegram, caplog, status_code, description):
    """Telegram refuses every message to a user who blocked the bot while it was listening (or in
    a group that muted it): the later stages would be refused the same way, one call each. The
    answer is still tried (the refusal is logged once, by the front-end's error handler)."""
    fake, frontend = telegram
    status, mark = await status_for(fake, frontend)
    fake.fail_next("sendMessage", times=1, status=status_code, description=description)
    await status(STAGE_DOWNLOADING)
    await status.shown()
    await status(STAGE_LISTENING)
    await status.shown()
    await status.finish("Mood: happy")
    assert [(c.method, c.text, c.status) for c in fake.calls[mark:]] == [
        ("sendMessage", STAGE_DOWNLOADING, status_code), ("sendMessage", "Mood: happy", 200)]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# A group upgraded to a supergroup ------------------------------------------------------------


async def test_an_answer_to_a_group_upgraded_meanwhile_goes_to_the_supergroup(telegram, db):
    """Telegram refuses anything sent to the old group's id, naming the new one; the answer (and
    its status, and a chart) must go there, not be lost to 'Sorry, something went wrong'."""
    fake, _ = telegram
    old, new = -555, -100555
    (item, title, _), = await cached_songs(fake, db, 1)
    fake.group_upgraded(old, new)
    mark = fake.mark()
    await fake.user_sends("/mood", **item, chat=old, chat_type="group", user=ALICE)
    shown = await fake.wait_for("sendMessage", lambda c: title in c.text, after=mark)
    assert shown.chat_id == str(new)
    assert "reply_parameters" not in shown.params  # the quoted message stayed in the old group
    await fake.user_sends("/help", chat=old, chat_type="group", user=ALICE)
    assert (await fake.wait_for("sendMessage", after=mark + 1)).chat_id == str(new)
    await asyncio.sleep(QUIET_S)
    assert render.GENERIC_ERROR not in [c.text for c in fake.calls[mark:] if c.status == 200]


async def test_a_status_left_in_a_group_upgraded_meanwhile_gives_way_to_an_answer_in_the_supergroup(telegram, db):
    fake, _ = telegram
    old, new = -556, -100556
    (item, title, _), = await cached_songs(fake, db, 1)
    slow_download(fake)
    mark = fake.mark()
    await fake.user_sends("/mood", **item, chat=old, chat_type="group", user=ALICE)
    status = await fake.wait_for("sendMessage", after=mark)
    assert status.chat_id == str(old) and status.text == STAGE_LISTENING
    fake.group_upgraded(old, new)  # while the song downloads
    answer = await fake.wait_for("sendMessage", lambda c: title in c.text, after=mark)
    assert answer.chat_id == str(new)
    await asyncio.sleep(QUIET_S)
    assert render.GENERIC_ERROR not in [c.text for c in fake.calls[mark:] if c.status == 200]


# Charts Telegram refuses ---------------------------------------------------------------------


@pytest.mark.parametrize(("status", "description"), [(400, "Bad Request: PHOTO_INVALID_DIMENSIONS"),
                                                     (413, "Request Entity Too Large")])
async def test_a_chart_telegram_refuses_is_skipped_and_the_other_charts_still_come(telegram, db, status,
                                                                                   description):
    """/stats' album refused whole for one chart (its dimensions, too large): its words come as a
    text, then each chart alone, the one refused skipped; an apology would ask for a retry that
    fails the same way."""
    fake, _ = telegram
    for n in range(3):
        await add_entry(db, ALICE, n=n)
    fake.fail_next("sendMediaGroup", times=1, status=status, description=description)
    fake.fail_next("sendPhoto", times=1, status=status, description=description)
    mark = fake.mark()
    await fake.user_sends("/stats")
    await fake.wait_for("sendPhoto", after=mark)
    await asyncio.sleep(QUIET_S)
    shown = [(c.method, c.status) for c in fake.calls[mark:] if c.method.startswith("send") and c.method != "sendChatAction"]
    assert shown == [("sendMediaGroup", status), ("sendMessage", 200), ("sendPhoto", status), ("sendPhoto", 200),
                     ("sendPhoto", 200)]
    summary, = [c.text for c in fake.calls_of("sendMessage", after=mark)]
    assert summary.startswith("3 journal entries") and render.GENERIC_ERROR != summary
    _, pixels, songs = fake.calls_of("sendPhoto", after=mark)  # each with its own caption, as before albums
    assert " in pixels: " in pixels.text and songs.text.startswith("Your songs on the valence/arousal map: ")


async def test_a_chart_too_large_for_telegram_is_skipped_without_an_apology(telegram, db):
    fake, _ = telegram
    await bob_voted_in_the_group(db)
    fake.fail_next("sendPhoto", times=1, status=413, description="Request Entity Too Large")
    mark = fake.mark()
    await fake.user_sends("/servermood", chat=GROUP, user=ALICE)
    summary = await fake.wait_for("sendMessage", after=mark)
    assert "This week's mood here" in summary.text
    await asyncio.sleep(QUIET_S)
    assert [c.text for c in fake.calls[mark:] if c.method == "sendMessage"] == [summary.text]


async def test_a_chart_for_a_command_deleted_meanwhile_still_comes(telegram, db):
    """A group's command-cleaning bot deleted /servermood: the summary and its chart come unquoted."""
    fake, _ = telegram
    await bob_voted_in_the_group(db)
    mark = fake.mark()
    update = await fake.user_sends("/servermood", chat=GROUP, user=ALICE)
    fake.user_deletes(update)
    chart = await fake.wait_for("sendPhoto", after=mark)
    assert chart.params["reply_parameters"]["allow_sending_without_reply"] is True
    assert [c.status for c in fake.calls[mark:] if c.method in ("sendMessage", "sendPhoto")] == [200, 200]


# A song named in a caption, or under the words of a link -------------------------------------

VIDEO_ID = "dQw4w9WgXcQ"


async def cached_video(db) -> None:
    """A YouTube video whose mood the cache knows: a link to it is answered without listening."""
    await db.tracks.save(TrackRecord(
        key=f"youtube:{VIDEO_ID}", title="Never Gonna Give You Up", youtube_id=VIDEO_ID,
        classified_at=datetime.now(timezone.utc),
        mood=StoredMood("happy", {"happy": 0.7, "energetic": 0.1, "sad": 0.1, "calm": 0.1}, 0.5, 0.4, "main", "v1")))


async def test_a_picture_captioned_mood_and_a_song_gets_that_song_s_mood(telegram, db):
    """A screenshot of a player with '/mood <link>' under it: the link is the song."""
    fake, _ = telegram
    await cached_video(db)
    mark = fake.mark()
    await fake.user_sends(f"/mood https://youtu.be/{VIDEO_ID}", photo=fake.photo_attachment(),
                          chat=GROUP, user=ALICE)
    answer = await fake.wait_for("sendMessage", after=mark)
    assert "Never Gonna Give You Up" in answer.text and "happy" in answer.text
    await fake.user_sends("/mood", photo=fake.photo_attachment(), chat=GROUP, user=ALICE)
    assert (await fake.wait_for("sendMessage")).text == A_PICTURE  # no song named: still a picture


async def test_a_bare_mood_quoting_part_of_a_message_asks_about_the_quoted_song(telegram, db):
    """Telegram's reply with a quote: of Bob's two links, Alice quotes the second and asks /mood."""
    fake, _ = telegram
    await cached_video(db)
    second = f"https://youtu.be/{VIDEO_ID}"
    bobs = {"message_id": 901, "date": 0, "chat": {"id": GROUP, "type": "supergroup", "title": "g"},
            "from": {"id": BOB, "is_bot": False, "first_name": "Bob"},
            "text": f"Two for today: https://youtu.be/AAAAAAAAAAA and {second}"}
    quote = {"text": second, "position": bobs["text"].index(second), "is_manual": True}
    mark = fake.mark()
    await fake.user_sends("/mood", chat=GROUP, user=ALICE, extra={"reply_to_message": bobs, "quote": quote})
    answer = await fake.wait_for("sendMessage", after=mark)
    assert "Never Gonna Give You Up" in answer.text

    # A quote keeps no link typed under words ("this one"): the quoted words' link is the song.
    text = "https://youtu.be/AAAAAAAAAAA first, then 😊 this one"
    carols = {**bobs, "message_id": 902, "text": text,
              "entities": linked(text, "this one", second)[1:]}
    at = len(text[:text.index("this one")].encode("utf-16-le")) // 2  # positions in UTF-16, as Telegram's
    mark = fake.mark()
    await fake.user_sends("/mood", chat=GROUP, user=ALICE, extra={
        "reply_to_message": carols, "quote": {"text": "this one", "position": at, "is_manual": True}})
    answer = await fake.wait_for("sendMessage", after=mark)
    assert "Never Gonna Give You Up" in answer.text

async def test_a_bare_mood_replying_to_a_song_of_another_chat_hears_it(telegram, db):
    """Telegram's 'reply in another chat': a channel's audio post replied to from the group comes
    along as `external_reply` (its words only as far as quoted): its file, or the quoted link, is
    the song."""
    fake, _ = telegram
    await cached_video(db)
    posted = {"origin": {"type": "channel", "chat": CHANNEL, "message_id": 5, "date": 0},
              "chat": CHANNEL, "message_id": 5}
    audio = fake.audio_attachment(b"OggS", file_name="channel-song.ogg")
    mark = fake.mark()
    await fake.user_sends("/mood", chat=GROUP, user=ALICE, extra={"external_reply": {**posted, "audio": audio}})
    fetched = await fake.wait_for("getFile", after=mark)
    assert fetched.params["file_id"] == audio["file_id"]

    link = f"https://youtu.be/{VIDEO_ID}"
    mark = fake.mark()
    await fake.user_sends("/mood", chat=GROUP, user=BOB, extra={
        "external_reply": posted, "quote": {"text": link, "position": 0, "is_manual": True}})
    # A message of its own, or, on a loaded machine, the edit of its "Finding the song…" status.
    answer = await fake.wait_for_reply(lambda c: "Never Gonna Give You Up" in c.text, after=mark)
    assert answer.chat_id == str(GROUP)

def linked(text: str, words: str, url: str) -> list[dict]:
    """A text_link entity over `words` in `text` (offsets in UTF-16 code units, as Telegram's)."""
    offset = len(text[:text.index(words)].encode("utf-16-le")) // 2
    return [{"type": "bot_command", "offset": 0, "length": len("/mood")},
            {"type": "text_link", "offset": offset, "length": len(words.encode("utf-16-le")) // 2, "url": url}]


async def test_a_link_under_a_caption_s_words_is_read_and_a_host_not_allowed_is_refused(telegram, db):
    """Telegram keeps a text link's address beside the text: '/mood this one' may point anywhere.
    The address is what is looked up, and an unknown host is refused, not searched as words."""
    fake, _ = telegram
    await cached_video(db)
    caption = "/mood this one 🎶"
    for url, expected in ((f"https://www.youtube.com/watch?v={VIDEO_ID}", "Never Gonna Give You Up"),
                          ("https://evil.example/this-one.mp3", "can't open links to evil.example")):
        mark = fake.mark()
        await fake.user_sends(caption, photo=fake.photo_attachment(), chat=GROUP, user=ALICE,
                              extra={"caption_entities": linked(caption, "this one", url)})
        answer = await fake.wait_for("sendMessage", after=mark)
        assert expected in answer.text


# A channel's discussion group ----------------------------------------------------------------

CHANNEL = {"id": -100900, "type": "channel", "title": "Song of the day"}


async def test_a_bare_mood_under_a_channel_post_in_its_discussion_group_reads_the_post(telegram, db):
    """A comment under a channel post replies to the post's automatic forward (from Telegram's
    service account, posted as the channel): its link is the song."""
    fake, _ = telegram
    await cached_video(db)
    forward = {"message_id": 77, "date": 0, "chat": {"id": GROUP, "type": "supergroup", "title": "Comments"},
               "from": {"id": 777000, "is_bot": False, "first_name": "Telegram"}, "sender_chat": CHANNEL,
               "is_automatic_forward": True, "text": f"Today: https://youtu.be/{VIDEO_ID}"}
    mark = fake.mark()
    await fake.user_sends("/mood", chat=GROUP, user=ALICE, extra={"reply_to_message": forward,
                                                                  "message_thread_id": 77})
    answer = await fake.wait_for("sendMessage", after=mark)
    assert "Never Gonna Give You Up" in answer.text
    assert "message_thread_id" not in answer.params  # a comment thread is no forum topic: the quote places it


async def test_a_channel_post_forwarded_to_its_discussion_group_cannot_switch_its_playlists(telegram, db):
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends("/serverplaylist off", chat=GROUP, user=777000, extra={
        "sender_chat": CHANNEL, "is_automatic_forward": True})
    reply = await fake.wait_for("sendMessage", after=mark)
    assert reply.text == POST_AS_YOURSELF  # posted as a chat other than the group: nobody to judge an admin
    server = await db.servers.get(f"telegram:{GROUP}")
    assert server is None or server.playlist_enabled is not False


# Several bots in one group -------------------------------------------------------------------


async def test_a_command_naming_this_bot_in_any_case_is_answered_and_one_naming_another_is_not(telegram, db):
    fake, _ = telegram
    await cached_video(db)
    mark = fake.mark()
    await fake.user_sends(f"/mood@other_music_bot https://youtu.be/{VIDEO_ID}", chat=GROUP, user=ALICE)
    await fake.user_sends(f"/mood@{BOT_USERNAME.upper()} https://youtu.be/{VIDEO_ID}", chat=GROUP, user=BOB)
    answer = await fake.wait_for("sendMessage", after=mark)
    assert "Never Gonna Give You Up" in answer.text
    await asyncio.sleep(QUIET_S)
    assert len([c for c in fake.calls[mark:] if c.method == "sendMessage"]) == 1
