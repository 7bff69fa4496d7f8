"""A demanding Discord user's edge cases, driven through the real discord.py against the fake
Discord: what the bot answers must be what the user meant, and within what Discord accepts."""
from __future__ import annotations

from bot.usecases.mood import SPOTIFY_OFF_ERROR
from tests.fakes.discord_api import user_payload
from tests.frontends.test_discord import BOB, GUILD, SPOTIFY_TRACK, dm_answer, open_a_prompt


async def test_a_music_bot_s_now_playing_card_forwarded_into_the_dm_answers_the_prompt(scheduled):
    """Another bot's "Now playing" card has no text, only an embed naming the song's link: forwarded
    into the DM as the day's answer, its link is the song, as the message command reads it. It
    was answered "Reply with a song…", as if nothing had been sent."""
    fake, _ = scheduled
    await open_a_prompt(fake)
    card = fake.message_payload(channel_id=GUILD + 5, content="", author={**user_payload(BOB), "bot": True},
                                embeds=[{"type": "rich", "title": "Now playing",
                                         "description": f"[Creep – Radiohead]({SPOTIFY_TRACK}) requested by Bob"}])
    await fake.user_dms("", forward_of=card)
    assert (await dm_answer(fake)).content == SPOTIFY_OFF_ERROR  # the card's link was read (this bot has no Spotify)
