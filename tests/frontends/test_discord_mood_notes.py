"""Given a Discord user asks about more than the bot hears (a song's name and a file; a message
with several audio files), the answer says what it heard."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from bot.frontends.discord.mood import FIRST_FILE_HEARD, QUERY_LEFT_ASIDE
from storage.models import StoredMood, TrackRecord
from tests.frontends.test_discord import ATTACHMENT, GUILD, STRING, message_command

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


async def test_the_message_command_on_several_audio_files_names_the_one_it_heard(discord_bot, db):
    fake, _ = discord_bot
    first = await cached_file(fake, db, "take_1.ogg")
    second = fake.add_file("take_2.ogg", b"OggS another take")
    await message_command(fake, "two takes", attachments=[first, second], guild=GUILD)
    answer = await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    assert answer.content == FIRST_FILE_HEARD.format(name="take\\_1.ogg", count=2)  # as typed, not as markdown
    assert len(fake.calls_of("download")) == 1

    await message_command(fake, "one take", attachments=[first], guild=GUILD)  # one file: nothing to say
    assert not (await fake.wait_for("edit_original", lambda c: bool(c.embeds))).content
