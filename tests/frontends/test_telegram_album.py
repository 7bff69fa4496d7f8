"""Given a Telegram user sends an album of songs (a media group) captioned `/mood` once, every song
of it gets its mood, one reply per song; a journal prompt answered with an album keeps one song.

Telegram sends an album as one message per item, each in its own update, all sharing a
`media_group_id`; only one item carries the caption. The songs here are in the track cache (keyed
by the file's hash), so each gets a real mood without a classifier.
"""
from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timezone

import pytest

from bot.config import Settings
from bot.frontends import render
from bot.frontends.telegram import (
    A_PICTURE,
    ALBUM_ONE_SONG_PER_PROMPT,
    ALBUM_STOPPED,
    ANSWER_WITH_A_SONG,
    MAX_ALBUM_ITEMS,
    NOT_A_SONG,
    TelegramFrontend,
)
from bot.ratelimit import MoodRateLimiter
from bot.replies import QUERY_LEFT_ASIDE
from bot.usecases import build_usecases
from storage.models import StoredMood, TrackRecord, UserRef
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN, journal_on_telegram
from tests.frontends.test_telegram_edited_mood import moods_after

GROUP = -100777
ALICE = 42
WINDOW_S = 0.3  # the album's collection window, short for tests
QUIET_S = 1.0  # long enough for the bot to have answered whatever it was going to answer
DELAY_S = 2.0  # a slow download's
PER_USER = 3  # /mood requests per user per minute in these tests
MOODS = ("happy", "energetic", "sad", "calm")


@pytest.fixture
def usecases(db):
    limiter = MoodRateLimiter(per_user=PER_USER, per_place=30, concurrent_per_user=2)
    return build_usecases(db, classifier=None, fetcher=None, limiter=limiter)


@pytest.fixture
def unlimited(db):
    return build_usecases(db, classifier=None, fetcher=None)


async def started(usecases):
    fake = await FakeTelegramBotAPI(TELEGRAM_TOKEN).start()
    settings = Settings(_env_file=None, telegram_token=TELEGRAM_TOKEN, telegram_api_url=fake.base_url,
                        telegram_file_url=fake.base_file_url, max_audio_bytes=1024 * 1024)
    frontend = TelegramFrontend(settings, usecases, poll_timeout_s=1, album_window_s=WINDOW_S)
    await frontend.start()
    return fake, frontend


@pytest.fixture
async def telegram(usecases):
    fake, frontend = await started(usecases)
    yield fake, frontend
    await frontend.stop()
    await fake.stop()


@pytest.fixture
async def telegram_unlimited(unlimited):
    fake, frontend = await started(unlimited)
    yield fake, frontend
    await frontend.stop()
    await fake.stop()


async def cached_songs(fake, db, count: int) -> list[tuple[dict, str, str]]:
    """`count` audio files whose moods the cache already knows: (item for `user_sends_album`,
    title the reply shows, mood)."""
    songs = []
    for n in range(count):
        content = f"OggS song {n}".encode()
        mood = MOODS[n % len(MOODS)]
        await db.tracks.save(TrackRecord(
            key=f"sha256:{hashlib.sha256(content).hexdigest()}", title="", artists=[],
            classified_at=datetime.now(timezone.utc),
            mood=StoredMood(mood, {m: 0.7 if m == mood else 0.1 for m in MOODS}, 0.1, 0.2, "main", "v1")))
        songs.append(({"audio": fake.audio_attachment(content, file_name=f"song-{n}.ogg")}, f"song-{n}", mood))
    return songs


async def replies_after(fake, mark: int) -> list:
    """The messages the chats show after `mark`, once the bot has gone quiet."""
    await asyncio.sleep(QUIET_S)
    return [c for c in fake.calls[mark:] if c.method == "sendMessage" and c.status == 200]


async def test_mood_captioned_on_one_item_of_a_group_album_hears_every_song(telegram, db):
    """The caption sits on the middle item: songs arrive both before and after it."""
    fake, _ = telegram
    songs = await cached_songs(fake, db, 3)
    mark = fake.mark()
    sent = await fake.user_sends_album([item for item, _, _ in songs], "/mood", captioned=1,
                                       chat=GROUP, user=ALICE)
    replies = await replies_after(fake, mark)
    assert len(replies) == 3
    for reply, update, (_, title, mood) in zip(replies, sent, songs):
        assert title in reply.text and f"Mood: {render.mood_label(mood)}" in reply.text
        # Each answer quotes its own song, so the group sees which mood is whose.
        assert reply.params["reply_parameters"]["message_id"] == update["message"]["message_id"]
    assert len(fake.calls_of("getFile", after=mark)) == 3


async def test_an_album_captioned_mood_with_a_song_name_says_once_that_its_files_were_heard(telegram_unlimited, db):
    """As one file captioned so: the words are left aside, said on the first answer only; words
    repeating the files' own names left nothing aside."""
    fake, _ = telegram_unlimited
    songs = await cached_songs(fake, db, 3)
    mark = fake.mark()
    await fake.user_sends_album([item for item, _, _ in songs], "/mood Radiohead - Creep", captioned=2,
                                chat=GROUP, user=ALICE)
    replies = await replies_after(fake, mark)
    assert len(replies) == 3 and all("Mood:" in reply.text for reply in replies)
    assert [QUERY_LEFT_ASIDE in reply.text for reply in replies] == [True, False, False]

    mark = fake.mark()
    await fake.user_sends_album([item for item, _, _ in songs], "/mood song-2.ogg", chat=GROUP, user=ALICE)
    replies = await replies_after(fake, mark)
    assert len(replies) == 3 and not any(QUERY_LEFT_ASIDE in reply.text for reply in replies)


async def test_an_album_captioned_for_nobody_in_a_group_is_left_alone(telegram, db):
    fake, _ = telegram
    songs = await cached_songs(fake, db, 2)
    mark = fake.mark()
    await fake.user_sends_album([item for item, _, _ in songs], chat=GROUP, user=ALICE)
    await fake.user_sends_album([item for item, _, _ in songs], "/mood@some_other_bot", chat=GROUP, user=ALICE)
    await asyncio.sleep(QUIET_S)
    assert [c.method for c in fake.calls[mark:] if c.method != "getUpdates"] == []


async def test_an_album_in_the_private_chat_is_heard_song_by_song_in_its_order(telegram, db):
    fake, _ = telegram
    songs = await cached_songs(fake, db, 3)
    mark = fake.mark()
    await fake.user_sends_album([item for item, _, _ in songs])  # privately, no caption needed
    replies = await replies_after(fake, mark)
    assert [title in reply.text for reply, (_, title, _) in zip(replies, songs)] == [True] * 3
    assert len(replies) == 3


async def test_an_album_item_whose_caption_is_edited_to_mood_is_answered_once(telegram_unlimited, db):
    """An album sent to a group without /mood, then one item's caption edited to ask: that item's
    song is heard, under it (Telegram sends the edit alone, not with its album), and once."""
    fake, _ = telegram_unlimited
    songs = await cached_songs(fake, db, 3)
    sent = await fake.user_sends_album([item for item, _, _ in songs], chat=GROUP, user=ALICE)
    await replies_after(fake, fake.mark())  # nobody asked: the album is left alone
    mark = fake.mark()
    await fake.user_edits(sent[1], "/mood")
    reply, = await replies_after(fake, mark)
    _, title, mood = songs[1]
    assert title in reply.text and f"Mood: {render.mood_label(mood)}" in reply.text
    assert reply.params["reply_parameters"]["message_id"] == sent[1]["message"]["message_id"]
    assert len(fake.calls_of("getFile", after=mark)) == 1  # that song alone
    mark = fake.mark()
    await fake.user_edits(sent[1], "/mood please")  # asked again: answered already
    assert await replies_after(fake, mark) == []


@pytest.mark.parametrize("where", [{"chat": GROUP, "caption": "/mood"}, {"chat": ALICE, "caption": None}],
                         ids=["group", "private"])
async def test_an_item_of_an_album_answered_already_is_not_answered_again_when_edited(telegram_unlimited, db, where):
    """Its mood was told (the album captioned /mood on its first item in a group, or sent
    privately): an item's caption edited to '/mood' tells it no second time."""
    fake, _ = telegram_unlimited
    songs = await cached_songs(fake, db, 3)
    mark = fake.mark()
    sent = await fake.user_sends_album([item for item, _, _ in songs], where["caption"], chat=where["chat"],
                                       user=ALICE)
    assert len(await replies_after(fake, mark)) == 3
    mark = fake.mark()
    for update in sent:
        await fake.user_edits(update, "/mood again")
    assert await replies_after(fake, mark) == []


@pytest.mark.parametrize("edited_after_s", [0, 3 * WINDOW_S], ids=["while collected", "while answered"])
async def test_an_album_item_edited_to_mood_while_its_album_is_answered_is_not_answered_too(telegram_unlimited, db,
                                                                                          edited_after_s):
    """The album (captioned /mood on its first item) is still being collected, or its first song
    downloaded, when another item's caption is edited to ask: that song's mood is told once."""
    fake, _ = telegram_unlimited
    songs = await cached_songs(fake, db, 3)
    fake.delay_next("getFile", DELAY_S)
    mark = fake.mark()
    sent = await fake.user_sends_album([item for item, _, _ in songs], "/mood", chat=GROUP, user=ALICE)
    await asyncio.sleep(edited_after_s)
    await fake.user_edits(sent[2], "/mood")
    await asyncio.sleep(DELAY_S + QUIET_S)  # whichever answer waited on the slow download has come
    told = moods_after(fake, mark)
    assert sorted(title for _, title, _ in songs for call in told if title in call.text) == ["song-0", "song-1",
                                                                                            "song-2"]


async def test_an_album_item_edited_to_mood_while_its_album_is_collected_is_answered_where_the_album_is_not(
        telegram_unlimited, db):
    """An album sent to a group without /mood, one item's caption edited to ask while the album is
    still being collected (its items' window not over): that song's mood is told once the album
    is known not to be answered. The edit was dropped, and nothing was ever said."""
    fake, _ = telegram_unlimited
    songs = await cached_songs(fake, db, 3)
    mark = fake.mark()
    sent = await fake.user_sends_album([item for item, _, _ in songs], chat=GROUP, user=ALICE)
    await fake.user_edits(sent[1], "/mood")
    reply, = await replies_after(fake, mark)
    assert songs[1][1] in reply.text
    assert reply.params["reply_parameters"]["message_id"] == sent[1]["message"]["message_id"]


async def test_an_album_item_arriving_while_the_album_is_answered_leaves_its_edits_answered(telegram_unlimited, db):
    """An item late past its album's window (a slow upload) is collected by itself, while the
    album captioned /mood waits on its first song's download: each is settled on its own, and the
    late one's caption edited to '/mood' is answered once both are, with no apology."""
    fake, _ = telegram_unlimited
    songs = await cached_songs(fake, db, 2)
    fake.delay_next("getFile", DELAY_S)
    mark = fake.mark()
    group = {"media_group_id": "late-one"}
    await fake.user_sends("/mood", **songs[0][0], chat=GROUP, user=ALICE, extra=group)
    await asyncio.sleep(3 * WINDOW_S)  # the album collected, its song being downloaded
    late = await fake.user_sends(None, **songs[1][0], chat=GROUP, user=ALICE, extra=group)
    await asyncio.sleep(3 * WINDOW_S)  # the late item collected, not answered: nobody asked
    await fake.user_edits(late, "/mood")
    await asyncio.sleep(DELAY_S + QUIET_S)
    told = moods_after(fake, mark)
    assert sorted(title for call in told for _, title, _ in songs if title in call.text) == ["song-0", "song-1"]
    assert not [reply for reply in await replies_after(fake, mark) if "went wrong" in reply.text]


async def test_an_album_past_the_rate_limit_stops_there_and_says_so_once(telegram, db):
    fake, _ = telegram
    songs = await cached_songs(fake, db, PER_USER + 3)
    mark = fake.mark()
    await fake.user_sends_album([item for item, _, _ in songs], "/mood", chat=GROUP, user=ALICE)
    replies = await replies_after(fake, mark)
    assert len(replies) == PER_USER + 1
    assert all("Mood:" in reply.text for reply in replies[:PER_USER])
    refusal = replies[-1].text
    assert refusal.startswith("You're going fast") and ALBUM_STOPPED.format(count=2) in refusal
    assert len(fake.calls_of("getFile", after=mark)) == PER_USER  # the refused one and the two after it never fetched


async def test_an_album_is_at_most_telegram_s_ten_items(telegram_unlimited, db):
    fake, _ = telegram_unlimited
    songs = await cached_songs(fake, db, MAX_ALBUM_ITEMS + 2)
    mark = fake.mark()
    await fake.user_sends_album([item for item, _, _ in songs], "/mood", chat=GROUP, user=ALICE)
    replies = await replies_after(fake, mark)
    assert len(replies) == MAX_ALBUM_ITEMS == 10
    assert all("Mood:" in reply.text for reply in replies)


async def test_an_album_of_pictures_gets_one_answer_not_one_per_picture(telegram):
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends_album([{"photo": fake.photo_attachment()} for _ in range(3)])
    assert [c.text for c in await replies_after(fake, mark)] == [A_PICTURE]


async def test_the_song_in_an_album_of_pictures_is_heard_and_the_pictures_skipped(telegram, db):
    fake, _ = telegram
    (song, title, mood), = await cached_songs(fake, db, 1)
    mark = fake.mark()
    await fake.user_sends_album([{"photo": fake.photo_attachment()}, song], "/mood", chat=GROUP, user=ALICE)
    reply, = await replies_after(fake, mark)
    assert title in reply.text and f"Mood: {render.mood_label(mood)}" in reply.text


async def test_a_prompt_answered_with_an_album_keeps_the_first_song_and_says_so(telegram, db, usecases):
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    mark = fake.mark()
    prompt_id = await scheduler.fire_now(UserRef("telegram", str(ALICE)))
    prompt = fake.message_of(await fake.wait_for("sendMessage", after=mark))
    songs = await cached_songs(fake, db, 3)
    mark = fake.mark()
    await fake.user_sends_album([item for item, _, _ in songs], "my evening", captioned=2,
                                reply_to=prompt["message_id"])
    reply, = await replies_after(fake, mark)
    assert reply.text.startswith("Saved to your journal") and songs[0][1] in reply.text
    entry, = await db.journal.list(UserRef("telegram", str(ALICE)))
    # ... and how to keep another of them instead, as an answer with two songs' links is told.
    day = entry.local_date.isoformat()
    assert ALBUM_ONE_SONG_PER_PROMPT.format(count=3, day=day) in reply.text and f"/journal delete {day}" in reply.text
    assert entry.prompt_id == prompt_id and songs[0][1] in entry.track_title
    assert entry.note == "my evening"  # the album's caption, wherever it sat


async def cached_video(db, video_id: str, title: str, mood: str) -> str:
    """A YouTube link whose mood the cache knows: named in a caption, it is answered without listening."""
    await db.tracks.save(TrackRecord(
        key=f"youtube:{video_id}", title=title, youtube_id=video_id, classified_at=datetime.now(timezone.utc),
        mood=StoredMood(mood, {m: 0.7 if m == mood else 0.1 for m in MOODS}, 0.1, 0.2, "main", "v1")))
    return f"https://youtu.be/{video_id}"


async def test_a_prompt_answered_with_an_album_of_screenshots_keeps_the_song_named_under_the_first(telegram, db,
                                                                                                  usecases):
    """As one picture captioned with the song answers a prompt, so does an album of them: the first
    item whose caption names a song, once (Telegram lets each item of an album have its caption)."""
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    mark = fake.mark()
    prompt_id = await scheduler.fire_now(UserRef("telegram", str(ALICE)))
    prompt = fake.message_of(await fake.wait_for("sendMessage", after=mark))
    first = await cached_video(db, "dQw4w9WgXcQ", "Never Gonna Give You Up", "happy")
    second = await cached_video(db, "9bZkp7q19f0", "Gangnam Style", "energetic")
    album = {"media_group_id": "screenshots"}
    mark = fake.mark()
    for caption in (None, f"{first}\non repeat", f"{second}\nand this"):
        await fake.user_sends(caption, photo=fake.photo_attachment(), reply_to=prompt["message_id"], extra=album)
    reply, = await replies_after(fake, mark)
    assert reply.text.startswith("Saved to your journal") and "Never Gonna Give You Up" in reply.text
    entry, = await db.journal.list(UserRef("telegram", str(ALICE)))
    assert (entry.prompt_id, entry.note) == (prompt_id, "on repeat") and "Never Gonna" in entry.track_title


async def test_a_prompt_answered_with_an_album_of_pictures_naming_no_song_says_to_answer_with_a_song(telegram, db,
                                                                                                     usecases):
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    mark = fake.mark()
    await scheduler.fire_now(UserRef("telegram", str(ALICE)))
    prompt = fake.message_of(await fake.wait_for("sendMessage", after=mark))
    mark = fake.mark()
    await fake.user_sends_album([{"photo": fake.photo_attachment()} for _ in range(2)], reply_to=prompt["message_id"])
    assert [c.text for c in await replies_after(fake, mark)] == [
        NOT_A_SONG.format(what="a picture", how=ANSWER_WITH_A_SONG)]
    assert await db.journal.count(UserRef("telegram", str(ALICE))) == 0


async def test_an_album_item_the_rate_limit_left_unheard_is_answered_when_edited_to_mood(telegram, db):
    """The rate limit stopped the album before its last songs ('…was not heard: send those again'):
    those got no answer, so one's caption edited to '/mood' is answered (here by the limit still
    refusing, under it); the songs told before, and the one the refusal is under, are not again."""
    fake, _ = telegram
    songs = await cached_songs(fake, db, PER_USER + 3)
    sent = await fake.user_sends_album([item for item, _, _ in songs], "/mood", chat=GROUP, user=ALICE)
    assert len(await replies_after(fake, fake.mark())) == PER_USER + 1
    mark = fake.mark()
    for update in sent[:PER_USER + 1]:
        await fake.user_edits(update, "/mood again")
    assert await replies_after(fake, mark) == []
    await fake.user_edits(sent[-1], "/mood")
    reply, = await replies_after(fake, mark)
    assert reply.params["reply_parameters"]["message_id"] == sent[-1]["message"]["message_id"]
    assert reply.text.startswith("You're going fast")
