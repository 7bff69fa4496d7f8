"""Telegram end to end: the real Application polls the fake Bot API; Spotify and the audio CDN are
local fakes; the classifier, database and use cases are the real ones.

Given a user types `/mood <song>`, they get a reply naming the mood the classifier gives that clip.
"""
from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path

import pytest
import pytest_asyncio

from bot.frontends.telegram import MAX_SHOWN_NAME, TelegramFrontend, clip
from bot.replies import STAGE_DOWNLOADING, STAGE_FINDING, STAGE_LISTENING
from storage.models import UserRef
from tests.e2e.wiring import TELEGRAM_TOKEN, bot_settings, running_bot
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import read  # a file's name in a refusal: unlinked, read the same

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALICE, BOB, CAROL = 42, 43, 44  # Carol's /mood stays clear of the others' rate limit
GROUP = -100500
MOOD_LINE = re.compile(r"^Mood: \S+ (\w+)$", re.MULTILINE)
STAGES = (STAGE_FINDING, STAGE_DOWNLOADING, STAGE_LISTENING)
SLOW_S = 90.0  # the first classification of a module waits for the pool's warm-up


def told_mood(text: str) -> str:
    found = MOOD_LINE.search(text)
    assert found, f"no mood in {text!r}"
    return found.group(1)


@pytest_asyncio.fixture(loop_scope="module")
async def telegram(catalog, classifier, mongo_uri, db_name):
    fake = await FakeTelegramBotAPI(TELEGRAM_TOKEN).start()
    settings = bot_settings(catalog, mongo_uri, db_name, Path(tempfile.mkdtemp(prefix="moodbot-tg-")),
                            telegram_token=TELEGRAM_TOKEN, telegram_api_url=fake.base_url,
                            telegram_file_url=fake.base_file_url)
    factory = lambda s, u: TelegramFrontend(s, u, poll_timeout_s=1)  # noqa: E731
    async with running_bot(settings, classifier, [factory]) as bot:
        yield fake, bot
    await fake.stop()


async def ask_mood(fake, text: str, **where) -> str:
    """Send `/mood <text>`; return the answer: a message of its own when it comes at once (a cached
    song), else the last edit of the status message."""
    mark = fake.mark()
    await fake.user_sends(f"/mood {text}", **where)
    final = await fake.wait_for_reply(lambda c: c.text not in STAGES, timeout=SLOW_S, after=mark)
    return final.text


async def test_mood_by_name_names_the_clip_s_mood(telegram, classifier, songs):
    fake, _ = telegram
    song = songs[0]
    expected = (await classifier.classify(song.path)).mood
    mark = fake.mark()
    answer = await ask_mood(fake, song.query)
    assert song.title in answer
    assert told_mood(answer) == expected
    assert re.search(r"Valence [+-]\d\.\d\d · Arousal [+-]\d\.\d\d", answer)
    assert f"https://open.spotify.com/track/{song.spotify_id}" in answer
    # Slow work shows progress: one status message, edited through the stages to the result.
    sent = fake.calls_of("sendMessage", after=mark)
    assert len(sent) == 1 and sent[0].text in STAGES
    status_id = fake.message_of(sent[0])["message_id"]
    edits = fake.calls_of("editMessageText", after=mark)
    assert all(int(c.params["message_id"]) == status_id for c in edits)
    stages = [c.text for c in edits]
    assert "Listening…" in stages and stages[-1] == answer

    # The same song again is in the cache: the answer comes at once, as one message, no status.
    mark = fake.mark()
    again = await ask_mood(fake, song.query)
    assert told_mood(again) == expected and "(from the cache)" in again
    assert [c.text for c in fake.calls_of("sendMessage", after=mark)] == [again]
    assert not fake.calls_of("editMessageText", after=mark)


async def test_the_journal_flow(telegram, songs):
    fake, bot = telegram
    await fake.user_sends("/journal on 21:30 Europe/Lisbon")
    assert "21:30" in (await fake.wait_for("sendMessage")).text
    mark = fake.mark()
    prompt_id = await bot.scheduler.fire_now(UserRef("telegram", str(ALICE)))
    assert prompt_id
    prompt = await fake.wait_for("sendMessage", after=mark)
    assert prompt.chat_id == str(ALICE) and "Reply to this message with a song" in prompt.text
    prompt_message = fake.message_of(prompt)["message_id"]

    song = songs[1]
    await fake.user_sends(song.query, reply_to=prompt_message)
    saved = await fake.wait_for_reply(lambda c: "Saved to your journal" in c.text, timeout=SLOW_S)
    assert song.title in saved.text

    entries = await bot.db.journal.list(UserRef("telegram", str(ALICE)))
    assert [e.prompt_id for e in entries] == [prompt_id]
    assert song.title in entries[0].track_title

    await fake.user_sends("/journal list")
    listed = await fake.wait_for("sendMessage")
    assert song.title in listed.text and entries[0].phrase in listed.text


async def test_a_prompt_answered_with_an_audio_file(telegram, songs):
    fake, bot = telegram
    await fake.user_sends("/journal on 07:00 Europe/Berlin", chat=BOB)
    await fake.wait_for("sendMessage")
    mark = fake.mark()
    prompt_id = await bot.scheduler.fire_now(UserRef("telegram", str(BOB)))
    prompt = fake.message_of(await fake.wait_for("sendMessage", after=mark))
    song = songs[5]
    audio = fake.audio_attachment(song.path, file_name=f"{song.song_id}.ogg")
    await fake.user_sends("humming along", chat=BOB, audio=audio, reply_to=prompt["message_id"])
    saved = await fake.wait_for_reply(lambda c: "Saved to your journal" in c.text, timeout=SLOW_S)
    assert saved.chat_id == str(BOB)
    entries = await bot.db.journal.list(UserRef("telegram", str(BOB)))
    assert [e.prompt_id for e in entries] == [prompt_id] and entries[0].note == "humming along"


@pytest.mark.parametrize(("user", "caption", "note"), [(46, "/mood", ""), (47, "/Mood humming along", "humming along")])
async def test_a_prompt_answered_with_audio_captioned_mood_keeps_no_command_in_the_note(telegram, songs, user, caption,
                                                                                       note):
    """'/mood' is how audio is captioned in groups; under a reply to the prompt it is no part of the day."""
    fake, bot = telegram
    await fake.user_sends("/journal on 07:00 Europe/Berlin", chat=user)
    await fake.wait_for("sendMessage")
    mark = fake.mark()
    await bot.scheduler.fire_now(UserRef("telegram", str(user)))
    prompt = fake.message_of(await fake.wait_for("sendMessage", after=mark))
    song = songs[5]  # heard already: the cache answers
    audio = fake.audio_attachment(song.path, file_name=f"{song.song_id}.ogg")
    await fake.user_sends(caption, chat=user, audio=audio, reply_to=prompt["message_id"])
    await fake.wait_for_reply(lambda c: "Saved to your journal" in c.text, timeout=SLOW_S)
    (entry,) = await bot.db.journal.list(UserRef("telegram", str(user)))
    assert entry.note == note


async def test_a_prompt_answered_with_a_typed_mood_command_is_saved_to_the_journal(telegram, songs):
    """'/mood <song>' is how a song is asked about everywhere else: typed in reply to the prompt, it
    answers the prompt, as audio captioned '/mood' does, rather than leaving it open."""
    fake, bot = telegram
    user = 48
    await fake.user_sends("/journal on 07:00 Europe/Berlin", chat=user)
    await fake.wait_for("sendMessage")
    mark = fake.mark()
    prompt_id = await bot.scheduler.fire_now(UserRef("telegram", str(user)))
    prompt = fake.message_of(await fake.wait_for("sendMessage", after=mark))
    song = songs[5]  # heard already: the cache answers
    await fake.user_sends(f"/mood {song.query}\nhumming along", chat=user, reply_to=prompt["message_id"])
    saved = await fake.wait_for_reply(lambda c: c.text not in STAGES, timeout=SLOW_S)
    assert saved.text.startswith("Saved to your journal") and song.title in saved.text
    (entry,) = await bot.db.journal.list(UserRef("telegram", str(user)))
    assert (entry.prompt_id, entry.note) == (prompt_id, "humming along")



async def test_a_prompt_answered_with_a_picture_naming_the_song_under_it_is_saved_to_the_journal(telegram, songs):
    """A screenshot of the player, the song's name as its caption: the caption answers the prompt
    (a picture captioned '/mood <song>' gets that song's mood too), not "that's a picture"."""
    fake, bot = telegram
    user = 49
    await fake.user_sends("/journal on 07:00 Europe/Berlin", chat=user)
    await fake.wait_for("sendMessage")
    mark = fake.mark()
    prompt_id = await bot.scheduler.fire_now(UserRef("telegram", str(user)))
    prompt = fake.message_of(await fake.wait_for("sendMessage", after=mark))
    song = songs[5]
    await fake.user_sends(f"{song.query}\non repeat", chat=user, photo=fake.photo_attachment(),
                          reply_to=prompt["message_id"])
    saved = await fake.wait_for_reply(lambda c: c.text not in STAGES, timeout=SLOW_S)
    assert saved.text.startswith("Saved to your journal") and song.title in saved.text
    (entry,) = await bot.db.journal.list(UserRef("telegram", str(user)))
    assert (entry.prompt_id, entry.note) == (prompt_id, "on repeat")

async def test_group_playlist_lists_what_members_classified(telegram, songs):
    fake, _ = telegram
    shared, other = songs[2], songs[3]
    mood = told_mood(await ask_mood(fake, shared.query, chat=GROUP, user=ALICE))
    assert told_mood(await ask_mood(fake, shared.query, chat=GROUP, user=BOB)) == mood
    await ask_mood(fake, other.query, chat=GROUP, user=ALICE)

    await fake.user_sends(f"/playlist {mood}", chat=GROUP, user=BOB)
    playlist = await fake.wait_for("sendMessage")
    lines = playlist.text.splitlines()
    assert shared.title in lines[1] and "(2 members)" in lines[1]

    await fake.user_sends(f"/playlist {mood}", chat=-100999, user=BOB)  # another group: nothing shared
    assert "yet" in (await fake.wait_for("sendMessage")).text

    await fake.user_sends("/servermood", chat=GROUP, user=BOB)
    summary = await fake.wait_for("sendMessage")
    assert "This week's mood here" in summary.text
    chart = await fake.wait_for("sendPhoto")
    assert chart.chat_id == str(GROUP) and chart.files["photo"].startswith(b"\x89PNG")


async def test_an_attached_clip_is_classified(telegram, classifier, songs):
    fake, _ = telegram
    song = songs[4]
    expected = (await classifier.classify(song.path)).mood
    audio = fake.audio_attachment(song.path, file_name=f"{song.song_id}.ogg")
    await fake.user_sends(None, audio=audio)
    answer = await fake.wait_for_reply(lambda c: "Mood:" in c.text, timeout=SLOW_S)
    assert told_mood(answer.text) == expected and song.song_id in answer.text
    assert fake.calls_of("download")  # the file really came through the Bot API's file URL


async def test_an_album_captioned_mood_once_gets_every_song_s_mood(telegram, classifier, songs):
    """Telegram sends an album as one message per item; the caption sits on one of them."""
    fake, _ = telegram
    album = songs[1:4]
    expected = [(await classifier.classify(song.path)).mood for song in album]
    items = [{"audio": fake.audio_attachment(song.path, file_name=f"{song.song_id}.ogg")} for song in album]
    mark = fake.mark()
    sent = await fake.user_sends_album(items, "/mood", captioned=1, chat=GROUP, user=CAROL)
    answers = [await fake.wait_for_reply(answer_to(fake, update["message"]["message_id"], mark),
                                         timeout=SLOW_S, after=mark) for update in sent]
    for answer, song, mood in zip(answers, album, expected):
        assert song.song_id in answer.text and told_mood(answer.text) == mood


def answer_to(fake, quoted: int, mark: int):
    """Whether a call is the mood answer to message `quoted`: sent quoting it, or edited into the
    status message that quoted it."""
    def quotes(call) -> bool:
        return (call.params.get("reply_parameters") or {}).get("message_id") == quoted

    def predicate(call) -> bool:
        if "Mood:" not in call.text:
            return False
        if call.method == "sendMessage":
            return quotes(call)
        return any(quotes(sent) and fake.message_of(sent)["message_id"] == int(call.params["message_id"])
                   for sent in fake.calls_of("sendMessage", after=mark))

    return predicate


async def test_the_sound_of_a_video_is_classified(telegram, classifier, songs, tmp_path):
    import subprocess

    fake, _ = telegram
    song = songs[4]
    video = tmp_path / "clip.mp4"  # a phone video: a picture track and the song as its sound
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "color=black:s=64x64:r=5",
                    "-i", str(song.path), "-shortest", "-c:v", "mpeg4", "-c:a", "aac", str(video)], check=True)
    expected = (await classifier.classify(video)).mood
    await fake.user_sends(None, video=fake.audio_attachment(video, file_name="clip.mp4", kind="video"))
    answer = await fake.wait_for_reply(lambda c: "Mood:" in c.text, timeout=SLOW_S)
    assert told_mood(answer.text) == expected


async def test_a_429_from_telegram_is_waited_out(telegram, songs):
    fake, _ = telegram
    fake.fail_next("sendMessage", times=1, retry_after=1)  # the status, or a cached song's answer
    mark = fake.mark()
    answer = await ask_mood(fake, songs[0].query)
    assert "Mood:" in answer
    sends = fake.calls_of("sendMessage", after=mark)
    refused = [c for c in sends if c.status == 429]
    assert len(refused) == 1
    # The refused message is sent again once the wait is over, unless it was a progress stage and
    # the answer is ready by then: the stage is dropped for it (47e5cb7). Either way, after the wait.
    retried = sends[sends.index(refused[0]) + 1]
    assert retried.status == 200 and retried.params["text"] in (refused[0].params["text"], answer)
    assert retried.at - refused[0].at >= 1.0


JUNK = b"ID3\x03\x00" + b"\x17 not a song at all " * 40  # a name and a type of audio, and no sound


async def test_an_unreadable_upload_is_named_as_its_sender_named_it(telegram):
    """The upload is saved as `audio.mp3` (a name any file system takes): the decoder's refusal
    named that name, one the sender never gave. It names the file as sent, clipped as the
    front-end clips the names it says back."""
    fake, _ = telegram
    for name in ("my mix.mp3", "夜に駆ける" * 20 + ".mp3"):
        document = fake.audio_attachment(JUNK, file_name=name, kind="document")
        document["mime_type"] = "audio/mpeg"
        mark = fake.mark()
        await fake.user_sends(None, document=document, chat=CAROL, user=CAROL)
        answer = await fake.wait_for_reply(lambda c: "not audio" in c.text, timeout=SLOW_S, after=mark)
        assert read(answer.text) == f"The file {clip(name, MAX_SHOWN_NAME)} is not audio we can read."
        assert len(clip(name, MAX_SHOWN_NAME)) <= MAX_SHOWN_NAME


async def test_a_video_without_sound_is_named_as_its_sender_named_it(telegram, tmp_path):
    import subprocess

    fake, _ = telegram
    video = tmp_path / "muted.mp4"  # a phone video with its sound turned off
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "color=black:s=64x64:r=5", "-t", "12",
                    "-c:v", "mpeg4", "-an", str(video)], check=True)
    mark = fake.mark()
    await fake.user_sends(None, video=fake.audio_attachment(video, file_name="beach day.mp4", kind="video"),
                          chat=CAROL, user=CAROL)
    answer = await fake.wait_for_reply(lambda c: "without sound" in c.text, timeout=SLOW_S, after=mark)
    assert read(answer.text) == "The file beach day.mp4 is a video without sound; there is nothing to listen to."


async def test_an_unreadable_file_answering_a_prompt_is_named_as_sent(telegram, caplog):
    fake, bot = telegram
    caplog.set_level(logging.INFO)
    dave = 48
    await fake.user_sends("/journal on 07:00 Europe/Berlin", chat=dave, user=dave)
    await fake.wait_for_reply(lambda c: "07:00" in c.text)
    mark = fake.mark()
    await bot.scheduler.fire_now(UserRef("telegram", str(dave)))
    prompt = fake.message_of(await fake.wait_for("sendMessage", after=mark))
    mark = fake.mark()
    audio = fake.audio_attachment(JUNK, file_name="sunday take.mp3")
    await fake.user_sends("humming along", chat=dave, user=dave, audio=audio, reply_to=prompt["message_id"])
    answer = await fake.wait_for_reply(lambda c: "not audio" in c.text, timeout=SLOW_S, after=mark)
    assert "The file sunday take.mp3 is not audio we can read." in read(answer.text)
    assert "audio.mp3" not in answer.text
    # The name is the sender's words: not in the bot's lines, which tell why all the same.
    assert not [r for r in caplog.records if r.name.startswith("bot.") and "sunday take" in str(vars(r))]
    (refused,) = [r for r in caplog.records if r.getMessage() == "journal.answer_refused"]
    assert refused.reason == "The file <file> is not audio we can read."
