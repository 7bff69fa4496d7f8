"""Given a Discord voice message (always named voice-message.ogg), the answer, the journal and the
server's playlists name it as Telegram names a voice note, by whose it is and the day it was sent:
"Voice note by Bob, 1 Mar 2026"; so is a phone's video under the name Discord's app gives it
(video0.mov). A file whose name Discord had to change (its letters not ASCII) is named as its
sender named it (Discord's `title`). (A voice message too short to hear: test_discord_voice_duration.py.)"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest

from bot.replies import titled_upload
from storage.models import StoredMood, TrackRecord
from tests.fakes.discord_api import VOICE_MESSAGE_FLAG, snowflake_at, user_payload
from tests.frontends.test_discord import ATTACHMENT, BOB, GUILD, STRING, dm_answer, open_a_prompt, private_answer, sub

SENT = datetime(2026, 3, 1, 21, 30, tzinfo=timezone.utc)  # when the voice messages here were recorded


async def cached(db, audio: bytes) -> bytes:
    """`audio`, its mood (sad) in the cache under its hash: heard without a classifier."""
    await db.tracks.save(TrackRecord(
        key="sha256:" + hashlib.sha256(audio).hexdigest(), title="", artists=[], classified_at=datetime.now(timezone.utc),
        mood=StoredMood("sad", {"happy": 0.1, "energetic": 0.1, "sad": 0.7, "calm": 0.1}, -0.5, -0.2, "main", "v")))
    return audio


async def mood_of_bobs_message(fake, attachment: dict, *, flags: int = VOICE_MESSAGE_FLAG) -> None:
    """"Mood of this song" on a message of Bob's, sent on `SENT`'s day, carrying `attachment`."""
    target = fake.message_payload(channel_id=GUILD + 1, content="", author=user_payload(BOB, "bob"),
                                  attachments=[attachment], flags=flags,
                                  message_id=snowflake_at(SENT, fake.snowflake()))
    await fake.slash("Mood of this song", command_type=3, target_id=target["id"],
                     resolved={"messages": {target["id"]: target}}, guild=GUILD)


async def server_playlist(fake, db, mood: str) -> str:
    await db.requests.settled()
    mark = fake.mark()
    await fake.slash("playlist", [{"name": "mood", "type": STRING, "value": mood}], guild=GUILD)
    return (await fake.wait_for("edit_original", lambda c: bool(c.embeds), after=mark)).embeds[0]["description"]


async def test_a_voice_message_is_named_by_its_sender_and_day_in_the_answer_and_the_server_playlist(discord_bot, db):
    fake, _ = discord_bot
    voice = fake.add_voice_message(await cached(db, b"OggS Bob humming"), duration_secs=31.5)
    await mood_of_bobs_message(fake, voice)
    answer = await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    assert answer.embeds[0]["title"] == "Voice note by Bob, 1 Mar 2026"
    assert "1. Voice note by Bob, 1 Mar 2026" in await server_playlist(fake, db, "sad")


@pytest.mark.parametrize("filename, content_type, named", [
    ("video0.mov", "video/quicktime", "Video by Bob, 1 Mar 2026"),  # a phone's video, as Discord's app names it
    ("unknown.mp3", "audio/mpeg", "File by Bob, 1 Mar 2026"),
    ("Bob - live at the park.mp3", "audio/mpeg", "Bob - live at the park"),  # a name of its own: kept
])
async def test_a_file_is_titled_only_where_its_name_says_nothing(discord_bot, db, filename, content_type, named):
    fake, _ = discord_bot
    video = fake.add_file(filename, await cached(db, b"OggS " + filename.encode()))
    video["content_type"] = content_type
    await mood_of_bobs_message(fake, video, flags=0)
    answer = await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    assert answer.embeds[0]["title"] == named


async def test_a_name_discord_changed_is_named_as_its_sender_named_it(discord_bot, db):
    """Discord keeps only ASCII letters of a file's name (a hash where none are left), and the name
    as sent in the attachment's `title`: /mood names the song by that, and typing it with the file
    leaves nothing aside."""
    fake, _ = discord_bot
    song = fake.add_file("c953b519a8c28c42.mp3", await cached(db, b"OggS a Russian song"))
    song["title"] = "Кино – Группа крови"
    await fake.slash("mood", [{"name": "query", "type": STRING, "value": "Группа крови"},
                              {"name": "file", "type": ATTACHMENT, "value": song["id"]}],
                     guild=GUILD, resolved={"attachments": {song["id"]: song}})
    answer = await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    assert answer.embeds[0]["title"] == "Кино – Группа крови"
    assert not answer.content  # nothing typed was left aside


async def test_a_voice_message_answering_a_prompt_is_named_so_in_the_journal(scheduled, db):
    fake, _ = scheduled
    await open_a_prompt(fake)
    voice = fake.add_voice_message(await cached(db, b"OggS Alice humming"), duration_secs=12)
    await fake.user_dms("", attachments=[voice], made_at=SENT, flags=VOICE_MESSAGE_FLAG)
    assert "Voice note by Alice, 1 Mar 2026" in (await dm_answer(fake)).embeds[0]["title"]
    await fake.slash("journal", sub("list"))
    assert "Voice note by Alice, 1 Mar 2026" in (await private_answer(fake)).content


async def test_a_voice_message_forwarded_into_the_dm_is_named_by_its_day_alone(scheduled, db):
    """A forward's snapshot does not say whose the message was: not the forwarder's voice."""
    fake, _ = scheduled
    await open_a_prompt(fake)
    voice = fake.add_voice_message(await cached(db, b"OggS Bob humming again"), duration_secs=12)
    original = fake.message_payload(channel_id=1, content="", author=user_payload(BOB, "bob"), attachments=[voice],
                                    flags=VOICE_MESSAGE_FLAG)
    original["timestamp"] = SENT.isoformat()
    await fake.user_dms("", forward_of=original)
    assert (await dm_answer(fake)).embeds[0]["title"].endswith("Voice note, 1 Mar 2026")


def test_the_title_says_the_day_as_telegram_does():
    assert titled_upload("Voice note", "  Bob \n Smith ", datetime(2026, 12, 5, 23, 59, tzinfo=timezone.utc)) == (
        "Voice note by Bob Smith, 5 Dec 2026")
