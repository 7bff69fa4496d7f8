"""A daily prompt answered with another music app's share text (Shazam's "I used Shazam to discover
Creep by Radiohead. https://…", SoundCloud's) or an Apple Music song's link: the song is searched on
Spotify by the name it gives, as /mood searches it, the link never opened, the words of the share
text no note of the user's, and the "saved" answer says, as /mood's does, that the song was found by
its name, not from the link (`FOUND_BY_NAME`), on the console, Telegram and Discord alike."""
from __future__ import annotations

from bot.usecases.journal import split_answer
from bot.usecases.mood import FOUND_BY_NAME
from storage.models import UserRef
from tests.bot.test_console import chat
from tests.fakes.discord_api import FakeDiscord
from tests.frontends.conftest import discord_on, prompts_through, spotify_with_creep, usecases_with_creep
from tests.frontends.test_discord import ALICE as DISCORD_ALICE
from tests.frontends.test_discord import dm_answer, open_a_prompt
from tests.frontends.test_other_services_links import APPLE_SONG, SHAZAM_SHARE, SOUNDCLOUD_SHARE, asked_of
from tests.frontends.test_telegram import ALICE
from tests.frontends.test_telegram_forget_races import saved_on_telegram

FOUND_ON_SPOTIFY = {service: FOUND_BY_NAME.format(where=" on Spotify", service=service)
                    for service in ("Shazam", "SoundCloud", "Apple Music")}


def test_a_share_text_is_the_song_and_only_the_user_s_own_words_are_the_note():
    assert split_answer(SHAZAM_SHARE) == (SHAZAM_SHARE, "")
    assert split_answer(f"rainy bus home\n{SHAZAM_SHARE}\nfelt right") == (SHAZAM_SHARE, "rainy bus home felt right")
    song, note = split_answer(f"{SOUNDCLOUD_SHARE} on repeat")
    assert song.split() == SOUNDCLOUD_SHARE.split() and note == "on repeat"
    # Words before another service's link that are no share text stay the user's note, as before.
    assert split_answer("so good https://www.shazam.com/track/5933917/creep") == (
        "https://www.shazam.com/track/5933917/creep", "so good")


async def test_the_console_s_saved_answer_says_a_shared_song_was_found_by_its_name(db, tmp_path):
    async with spotify_with_creep(db) as (spotify, resolver):
        out = await chat(db, None, tmp_path, [
            "/journal on 21:30 Europe/Lisbon", "/journal prompt", f"/journal answer {SHAZAM_SHARE}", "/quit"],
            resolver=resolver)
        searched, requests = asked_of(spotify)
    saved = out[out.index("Saved to your journal"):]
    assert "Creep" in saved and FOUND_ON_SPOTIFY["Shazam"] in saved
    assert searched == ["Radiohead Creep"] and not [r for r in requests if "shazam" in r]
    entry, = await db.journal.list(UserRef("console", "local"))
    assert entry.track_title == "Radiohead – Creep" and entry.note == ""


async def test_telegram_s_saved_answer_says_a_shared_song_was_found_by_its_name(db):
    saved = await saved_on_telegram(db, f"{SOUNDCLOUD_SHARE}\nwalking home")
    assert "Creep" in saved.text and FOUND_ON_SPOTIFY["SoundCloud"] in saved.text
    entry, = await db.journal.list(UserRef("telegram", str(ALICE)))
    assert entry.note == "walking home"


async def test_discord_s_saved_answer_says_a_shared_song_was_found_by_its_name(db):
    async with usecases_with_creep(db) as (spotify, usecases):
        async with discord_on(FakeDiscord(), usecases) as (fake, frontend):
            async with prompts_through(frontend, usecases, db):
                await open_a_prompt(fake)
                await fake.user_dms(APPLE_SONG)
                saved = await dm_answer(fake)
    embed, = saved.embeds
    assert "Saved to your journal" in embed["description"]
    assert FOUND_ON_SPOTIFY["Apple Music"] in embed["description"]
    entry, = await db.journal.list(UserRef("discord", str(DISCORD_ALICE)))
    assert "Creep" in entry.track_title
