"""A daily prompt answered with two songs' links in one message (the console's `/journal answer`, a
Telegram reply, a Discord DM) keeps one song, the first link's, and the "Saved" answer says that the
journal keeps one song a prompt, which it kept, and how to keep the other instead
(`ONE_SONG_A_PROMPT`): it said "Saved" alone, the other link left in the note unmentioned."""
from __future__ import annotations

from bot.usecases.journal import ONE_SONG_A_PROMPT
from storage.models import UserRef
from tests.bot.test_console import chat
from tests.frontends.conftest import CREEP, cache_upload, spotify_with_creep
from tests.frontends.test_discord import ALICE as DISCORD_ALICE
from tests.frontends.test_discord_long_answer import answered_in_the_dm
from tests.frontends.test_telegram import ALICE
from tests.frontends.test_telegram_forget_races import saved_on_telegram

CREEP_LINK = f"https://open.spotify.com/track/{CREEP.track_id}"
OTHER_LINK = "https://youtu.be/dQw4w9WgXcQ"


async def kept_one(db, ref: UserRef) -> str:
    """What the answer says of the one song kept, for the user's only entry: Creep's, the other
    link in its note."""
    entry, = await db.journal.list(ref)
    assert entry.track_title == "Radiohead – Creep" and OTHER_LINK in entry.note, entry
    return ONE_SONG_A_PROMPT.format(title=entry.track_title, links="link", day=entry.local_date.isoformat())


async def test_the_console_says_the_journal_kept_the_first_of_two_links(db, tmp_path):
    async with spotify_with_creep(db) as (spotify, resolver):
        out = await chat(db, None, tmp_path, [
            "/journal on 21:30 Europe/Lisbon", "/journal prompt", f"/journal answer {CREEP_LINK} {OTHER_LINK}",
            "/quit"], resolver=resolver)
    saved = out[out.index("Saved to your journal"):]
    assert await kept_one(db, UserRef("console", "local")) in saved, saved


async def test_telegram_says_the_journal_kept_the_first_of_two_links(db):
    saved = await saved_on_telegram(db, f"{CREEP_LINK}\n{OTHER_LINK}")
    assert await kept_one(db, UserRef("telegram", str(ALICE))) in saved.text, saved.text


async def test_discord_says_the_journal_kept_the_first_of_two_links(db):
    saved = await answered_in_the_dm(db, f"{CREEP_LINK} {OTHER_LINK} both today")
    embed, = saved.embeds
    assert "Saved to your journal" in embed["description"]
    assert await kept_one(db, UserRef("discord", str(DISCORD_ALICE))) in embed["description"], embed


async def test_discord_says_a_file_was_kept_over_a_song_link_beside_it(db):
    """A DM with an audio file and a song's link: the file is heard, as ever, and the answer says
    the link went into the note, not the journal."""
    take = await cache_upload(db, b"OggS" + b"\7" * 64, "calm")
    saved = await answered_in_the_dm(db, f"{CREEP_LINK} is what it reminded me of", {"take1.ogg": ("audio/ogg", take)})
    embed, = saved.embeds
    entry, = await db.journal.list(UserRef("discord", str(DISCORD_ALICE)))
    assert entry.note == f"{CREEP_LINK} is what it reminded me of" and "Creep" not in entry.track_title
    assert ONE_SONG_A_PROMPT.format(title=entry.track_title, links="link", day=entry.local_date.isoformat()) in (
        embed["description"]), embed
