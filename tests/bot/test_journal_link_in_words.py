"""A prompt answered with a song's name on the first line and the user's words after it, those
words holding a link to no song (the lyrics, a photo, an article: "Radiohead - Creep\nthe line that
got me: https://genius.com/…"): any link anywhere was taken for the song, and the answer was refused,
"I can't open links to genius.com", nothing saved, though the song was named where the journal
asks for it. The song is the first line's when no link in the answer is a song's; a song's link
anywhere is the song, as ever, and a link to no song on the first line is refused as before.
Real spotipy and yt-dlp/HTTP against local fakes, real DB, real classifier."""
from __future__ import annotations

from time import perf_counter

import pytest

from bot.sources.query import parse_query
from bot.usecases.journal import song_read, split_answer
from storage.models import UserRef
from tests.bot import test_console_journal_words as journal_words

catalog, chat = journal_words.catalog, journal_words.chat  # the songs' fakes (a fixture), a console over them

CONSOLE = UserRef("console", "local")
OPENED = ["/journal on 21:30 Europe/Lisbon", "/journal prompt"]


@pytest.mark.parametrize("words", [
    "the line that got me: https://genius.com/Radiohead-creep-lyrics",
    "https://www.instagram.com/p/C0ffee123/ the view from the bus",
    "the album https://open.spotify.com/album/6400dnyeDyD2mIFHfkwHXN was on all day",
])
async def test_a_link_to_no_song_in_the_words_after_a_song_s_name_is_kept_in_the_note(db, counting, catalog,
                                                                                     tmp_path, words):
    song = catalog.songs[0]
    out = await chat(db, counting, catalog, tmp_path, OPENED + [f'/journal answer "{song.query}" {words}', "/quit"])
    assert "Saved to your journal" in out and "can't open links" not in out and "not a track" not in out, out
    [entry] = (await db.journal.page(CONSOLE, 10)).entries
    assert (entry.track_key, entry.note) == (f"spotify:{song.spotify_id}", words)


async def test_a_link_to_no_song_alone_is_still_refused(db, counting, catalog, tmp_path):
    out = await chat(db, counting, catalog, tmp_path,
                     OPENED + ["/journal answer https://genius.com/Radiohead-creep-lyrics so good", "/quit"])
    assert "I can't open links to genius.com" in out and "Saved" not in out, out
    assert (await db.journal.page(CONSOLE, 10)).entries == []


@pytest.mark.parametrize("words", [
    "I used Shazam to discover Creep. https://www.shazam.com/track/5933917/creep ",  # no "by": no song's share
    "see https://genius.com/Radiohead-creep-lyrics ",
    "https://www.shazam.com/track/5933917/creep ",
])
def test_an_answer_of_thousands_of_links_to_no_song_is_read_at_once(words):
    """Each link is tried for a song (another service's share text before it too): the share text was
    looked for in all that came before each link, and a Discord DM's 32 KB of Shazam shares naming no
    song took 7.9 s of the event loop, everyone's. Each link's share text is looked for since the link
    before it: well under 50 ms."""
    answer = "Radiohead - Creep\n" + words * (32 * 1024 // len(words))
    started = perf_counter()
    song, note = split_answer(answer, lambda link: song_read(link, parse_query) is not None)
    assert perf_counter() - started < 0.05
    assert (song, note) == ("Radiohead - Creep", answer.partition("\n")[2].strip())
