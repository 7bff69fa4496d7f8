"""A prompt answered with a link to many songs (a Spotify playlist, album or artist, a YouTube
playlist) was told what /mood is told, "That's a Spotify playlist, not a track. I can read…", and
nothing of the journal: now the refusal adds that the journal keeps one song a prompt, to answer
with one of its songs, nothing saved and the prompt still open (`ONE_SONG_OF_MANY`). A link to no
song that holds none (a podcast's episode) is refused as before."""
from __future__ import annotations

import pytest

from bot.replies import ErrorReply
from bot.sources.query import ACCEPTED, YOUTUBE_PLAYLIST_REFUSED
from bot.usecases.journal import ONE_SONG_OF_MANY
from tests.bot.conftest import ALICE_DM
from tests.bot.test_journal import ALICE_REF
from tests.bot.test_journal_no_song import open_prompt


@pytest.mark.parametrize("typed, refusal", [
    ("https://open.spotify.com/playlist/37i9dQZF1DXcBWIGoYBM5M", f"That's a Spotify playlist, not a track. {ACCEPTED}"),
    ("https://open.spotify.com/album/6400dnyeDyD2mIFHfkwHXN\nmy evening", f"That's a Spotify album, not a track. {ACCEPTED}"),
    ("spotify:artist:4Z8W4fKeB5YxbusRsdQVPb", f"That's a Spotify artist, not a track. {ACCEPTED}"),
    ("https://www.youtube.com/playlist?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG", f"{YOUTUBE_PLAYLIST_REFUSED} {ACCEPTED}"),
])
async def test_a_link_to_many_songs_is_told_the_journal_keeps_one_and_the_prompt_is_open(db, counting, typed, refusal):
    journal = await open_prompt(db, counting)
    reply = await journal.answer(ALICE_DM, typed, prompt_message_id="777")
    assert reply == ErrorReply(f"{refusal} {ONE_SONG_OF_MANY}"), reply
    assert await db.journal.list(ALICE_REF) == []
    assert (await db.prompts.latest_open(ALICE_REF)).prompt_id  # still open


async def test_a_link_to_a_podcast_episode_is_refused_as_before(db, counting):
    journal = await open_prompt(db, counting)
    reply = await journal.answer(ALICE_DM, "https://open.spotify.com/episode/512ojhOuo1ktJprKbVcKyQ",
                                 prompt_message_id="777")
    assert reply == ErrorReply(f"That's a Spotify episode, not a track. {ACCEPTED}"), reply
