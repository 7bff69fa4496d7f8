"""Given a Discord user asks about more than the bot hears (a song's name and a file), the answer
says what it heard. (A message with several audio files has each heard:
test_discord_message_files.py.)"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from bot.replies import QUERY_LEFT_ASIDE
from storage.models import StoredMood, TrackRecord
from tests.frontends.test_discord import ATTACHMENT, GUILD, STRING

AUDIO = b"OggS a song someone recorded"


async def cached_file(fake, db, filename: str = "take1.ogg", audio: bytes = AUDIO) -> dict:
    """An attachment whose mood the cache knows (these tests have no classifier)."""
    await db.tracks.save(TrackRecord(
        key="sha256:" + hashlib.sha256(audio).hexdigest(), title="", artists=[], classified_at=datetime.now(timezone.utc),
        mood=StoredMood("calm", {"happy": 0.1, "energetic": 0.1, "sad": 0.1, "calm": 0.7}, 0.2, -0.4, "main", "v")))
    return fake.add_file(filename, audio)


async def mood_of(fake, options: list[dict], attachment: dict):
    await fake.slash("mood", options, guild=GUILD, resolved={"attachments": {attachment["id"]: attachment}})
    return await fake.wait_for("edit_original", lambda c: bool(c.embeds))


async def test_a_mood_given_a_song_name_and_a_file_says_the_file_was_heard(discord_bot, db):
    fake, _ = discord_bot
    take = await cached_file(fake, db)
    answer = await mood_of(fake, [{"name": "query", "type": STRING, "value": "Creep"},
                                  {"name": "file", "type": ATTACHMENT, "value": take["id"]}], take)
    assert answer.content == QUERY_LEFT_ASIDE
    assert answer.embeds[0]["title"] == "take1"  # the file's mood, named as the file

    # the file alone: nothing was left aside, nothing to say
    answer = await mood_of(fake, [{"name": "file", "type": ATTACHMENT, "value": take["id"]}], take)
    assert not answer.content


    # the file's own name typed: the answer names that, nothing was left aside (as on Telegram)
    answer = await mood_of(fake, [{"name": "query", "type": STRING, "value": "Take1"},
                                  {"name": "file", "type": ATTACHMENT, "value": take["id"]}], take)
    assert not answer.content
