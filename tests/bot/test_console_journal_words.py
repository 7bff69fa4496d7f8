"""The console's `/journal answer <song> [your words]`: a terminal line has no second line to put
one's words on (as a Telegram or Discord answer does, under the song's name), so a song's name
followed by words is quoted. Real spotipy and yt-dlp/HTTP against local fakes, real DB, real
classifier."""
from __future__ import annotations

import pytest

from bot.sources.audio import AudioFetcher
from bot.sources.spotify import SpotifyResolver
from storage.models import UserRef
from tests.bot.test_console import chat as console_chat
from tests.e2e.wiring import Catalog, load_songs


@pytest.fixture(scope="module")
def catalog(shared_data, tmp_path_factory):
    running = Catalog.start(load_songs(shared_data, 1), tmp_path_factory.mktemp("catalog"))
    yield running
    running.stop()


async def chat(db, classifier, catalog: Catalog, data_dir, lines: list[str]) -> str:
    resolver = SpotifyResolver(catalog.spotify.client_id, catalog.spotify.client_secret,
                               catalog.spotify.api_url, catalog.spotify.auth_url)
    fetcher = AudioFetcher(search_template=catalog.audio_search, allowed_hosts=frozenset({"open.spotify.com"}))
    return await console_chat(db, classifier, data_dir, lines, fetcher=fetcher, resolver=resolver)


# As typed, in double or single quotes, or as a phone or an editor curls them.
@pytest.mark.parametrize("quoted", ['"{name}"', "“{name}”", "'{name}'", "‘{name}’"])
async def test_a_quoted_song_name_then_words_saves_that_song_with_those_words(db, counting, catalog, tmp_path,
                                                                             quoted):
    song = catalog.songs[0]
    answer = quoted.format(name=song.query)
    out = await chat(db, counting, catalog, tmp_path, ["/journal on 21:30 Europe/Lisbon", "/journal prompt",
                                                       f"/journal answer {answer}  on the bus home ",
                                                       "/journal list", "/quit"])
    assert "Saved to your journal" in out, out
    assert f"{song.artist} – {song.title}" in out and out.rstrip().splitlines()[-2].endswith("– on the bus home")
    [entry] = (await db.journal.page(UserRef("console", "local"), 10)).entries
    assert (entry.track_key, entry.note) == (f"spotify:{song.spotify_id}", "on the bus home")


async def test_a_song_name_alone_quoted_or_not_is_that_song_with_no_words(db, counting, catalog, tmp_path):
    song = catalog.songs[0]
    out = await chat(db, counting, catalog, tmp_path, ["/journal on 21:30 Europe/Lisbon", "/journal prompt",
                                                       f'/journal answer "{song.query}"', "/journal prompt",
                                                       f"/journal answer {song.query}", "/quit"])
    assert out.count("Saved to your journal") == 2, out
    entries = (await db.journal.page(UserRef("console", "local"), 10)).entries
    assert [(e.track_key, e.note) for e in entries] == [(f"spotify:{song.spotify_id}", "")] * 2


async def test_help_and_the_usage_show_how_words_follow_a_song_s_name(db, counting, catalog, tmp_path):
    out = await chat(db, counting, catalog, tmp_path, ["/help", "/journal answer", "/quit"])
    example = '/journal answer "Radiohead - Creep" on the bus'
    assert out.count(example) == 2  # the help's line for /journal answer, and its usage


async def test_a_quoted_path_to_no_file_before_words_is_said_to_be_missing_not_searched(db, counting, catalog,
                                                                                       tmp_path):
    (tmp_path / "My Music").mkdir()
    out = await chat(db, counting, catalog, tmp_path, ["/journal on 21:30 Europe/Lisbon", "/journal prompt",
                                                       f'/journal answer "{tmp_path}/My Music/gone.ogg" on the bus',
                                                       f'/journal answer "{tmp_path}/My Music" on the bus', "/quit"])
    assert f"There is no file at {tmp_path}/My Music/gone.ogg." in out
    assert f"{tmp_path}/My Music is a folder" in out
    assert f"e.g. /journal answer {tmp_path}/My Music/song.mp3" in out  # the command being answered, not /mood
    assert "Finding the song" not in out and counting.calls == []


async def test_a_pasted_path_to_no_audio_file_before_words_is_said_to_be_so_not_searched(db, counting, catalog,
                                                                                        tmp_path):
    # A dropped file pasted as a terminal types it, single-quoted (GNOME) or its spaces escaped
    # (macOS), then the user's words; or a folder whose name holds a space, typed as it is.
    (tmp_path / "My Music").mkdir()
    folder, gone = f"{tmp_path}/My Music", f"{tmp_path}/My Music/gone.ogg"
    out = await chat(db, counting, catalog, tmp_path, ["/journal on 21:30 Europe/Lisbon", "/journal prompt",
                                                       f"/journal answer '{gone}' on the bus",
                                                       f"/journal answer '{folder}' on the bus",
                                                       f"/journal answer {gone.replace(' ', chr(92) + ' ')} on the bus",
                                                       f"/journal answer {folder} on the bus",
                                                       f"/journal answer {gone} on the bus", "/quit"])
    assert out.count(f"There is no file at {gone}.") == 3, out
    assert out.count(f"{folder} is a folder. Give me one audio file in it, e.g. /journal answer {folder}/song.mp3") == 2
    assert "There is no file at " + f"{tmp_path}/My." not in out and "\\" not in out
    assert "Finding the song" not in out and "Saved to your journal" not in out and counting.calls == []


async def test_an_answer_that_names_no_song_is_told_how_words_follow_a_song_here(db, counting, tmp_path):
    """'🎵' answering the prompt was told to send a song 'and your own words on a new line', which a
    terminal line has none of (Enter sends the command): here the words follow a quoted name."""
    out = await console_chat(db, counting, tmp_path, ["/journal on 21:30 Europe/Lisbon", "/journal prompt",
                                                      "/journal answer 🎵", "/quit"])
    assert "“🎵” isn't a song I can look up" in out, out
    assert "new line" not in out
    assert "and your own words after it if you like, the name quoted: /journal answer \"Radiohead - Creep\" on the bus." in out
