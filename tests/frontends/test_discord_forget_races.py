"""/forget while a file sent before it is still coming from Discord's CDN: the song is answered,
but nothing of it is recorded after the deletion (a /mood request, a journal entry)."""
from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timezone

from bot.replies import STAGE_DOWNLOADING, STAGE_FINDING, STAGE_LISTENING, Caller
from bot.usecases.journal import FORGOTTEN_MEANWHILE
from bot.usecases.privacy import NOTHING_TO_FORGET
from storage.models import StoredMood, TrackRecord, UserRef
from tests.frontends.test_discord import ALICE, ATTACHMENT, GUILD, message_command, open_a_prompt

AUDIO = b"OggS a song on a slow CDN"
TITLE = "take.ogg"
STAGES = (STAGE_FINDING, STAGE_DOWNLOADING, STAGE_LISTENING)


async def cached_file(fake, db) -> dict:
    """An attachment whose mood the cache knows (these tests have no classifier)."""
    await db.tracks.save(TrackRecord(
        key="sha256:" + hashlib.sha256(AUDIO).hexdigest(), title="", artists=[], classified_at=datetime.now(timezone.utc),
        mood=StoredMood("calm", {"happy": 0.1, "energetic": 0.1, "sad": 0.1, "calm": 0.7}, 0.2, -0.4, "main", "v")))
    return fake.add_file(TITLE, AUDIO)


async def forget_while_downloading(fake, usecases) -> int:
    """Once the bot has asked the CDN for the file (which holds it), /forget; then the file comes.
    Returns the mark of the calls made after the file came."""
    await fake.wait_for("download")
    done = await usecases.privacy.forget(Caller("discord", str(ALICE), chat_id=str(ALICE)), confirmed=True)
    assert done.text == NOTHING_TO_FORGET  # the request in flight is dropped, never stored
    mark = fake.mark()
    fake.cdn_open.set()
    return mark


async def test_a_mood_file_still_downloading_at_forget_is_answered_not_recorded(discord_bot, usecases, db):
    fake, _ = discord_bot
    attachment = await cached_file(fake, db)
    fake.cdn_open.clear()
    await fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": attachment["id"]}], guild=GUILD,
                     resolved={"attachments": {attachment["id"]: attachment}})
    mark = await forget_while_downloading(fake, usecases)

    answer = await fake.wait_for("edit_original", lambda c: bool(c.embeds), after=mark)
    assert "calm" in str(answer.embeds[0]["fields"]).lower()  # the song still gets its mood…
    assert (await db.privacy.export(UserRef("discord", str(ALICE)))).requests == []  # …but it is not kept


async def test_a_message_commands_file_still_downloading_at_forget_is_not_recorded(discord_bot, usecases, db):
    fake, _ = discord_bot
    attachment = await cached_file(fake, db)
    fake.cdn_open.clear()
    await message_command(fake, "", [attachment])  # Apps → Mood of this song
    mark = await forget_while_downloading(fake, usecases)

    await fake.wait_for("edit_original", lambda c: bool(c.embeds), after=mark)
    assert (await db.privacy.export(UserRef("discord", str(ALICE)))).requests == []


async def test_a_dm_answer_still_downloading_at_forget_is_not_saved_to_the_next_prompt(scheduled, usecases, db):
    """The answer was sent before /forget; the journal turned on again and a new prompt since do
    not make it the new prompt's answer."""
    fake, _ = scheduled
    attachment = await cached_file(fake, db)
    await open_a_prompt(fake)
    fake.cdn_open.clear()
    await fake.user_dms("", attachments=[attachment])
    await fake.wait_for("download")
    done = await usecases.privacy.forget(Caller("discord", str(ALICE), chat_id=str(ALICE)), confirmed=True)
    assert done.text.startswith("Done")
    await open_a_prompt(fake)  # back on, with today's prompt open again
    mark = fake.mark()
    fake.cdn_open.set()

    async def answered():
        while True:
            shown = [c for c in fake.calls[mark:] if c.name in ("send_message", "edit_message") and c.status < 300
                     and (c.embeds or c.content not in STAGES)]
            if shown:
                return shown[0]
            await asyncio.sleep(0.01)

    answer = await asyncio.wait_for(answered(), 10)
    assert answer.content == FORGOTTEN_MEANWHILE
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 0
