"""Given a user types `/mood <song>`, moodbot finds it on Spotify, fetches a section of its audio,
listens, and names a mood; asked again, it answers from the cache without downloading anything.
Real spotipy and yt-dlp/HTTP against local fake servers (tests/fakes), real DB, real classifier."""
from __future__ import annotations

import asyncio
import logging
import shutil

import pytest

from bot.replies import STAGE_DOWNLOADING, STAGE_FINDING, STAGE_LISTENING, ErrorReply, MoodReply
from bot.sources.audio import AudioFetcher
from bot.sources.spotify import SpotifyResolver
from bot.usecases.mood import MoodUseCase
from tests.bot.conftest import ALICE, BOB
from tests.e2e.wiring import Catalog, load_songs
from tests.fakes.audio_http import FakeAudioServer
from tests.fakes.spotify_api import FakeSpotify, FakeSpotifyLinks, FakeTrack


@pytest.fixture(scope="module")
def catalog(shared_data, tmp_path_factory):
    """Three 4Q clips published by the fake Spotify and served (as copies) by the fake audio CDN."""
    songs = load_songs(shared_data, 3)
    root = tmp_path_factory.mktemp("catalog")
    (root / "audio").mkdir()
    for song in songs:
        shutil.copy(song.path, root / "audio" / f"{song.spotify_id}.ogg")
    spotify = FakeSpotify().start()
    spotify.add(*(FakeTrack(name=s.title, artists=(s.artist,), id=s.spotify_id, album="4Q", duration_ms=30_000)
                  for s in songs))
    running = Catalog(songs, spotify, FakeAudioServer(root).start())
    yield running
    running.stop()


@pytest.fixture(scope="module")
def links():
    """spotify.link and spotify.app.link, local."""
    with FakeSpotifyLinks() as fake:
        yield fake


def usecase(db, classifier, catalog, *, with_spotify=True, template=None, links=None) -> MoodUseCase:
    resolver = (SpotifyResolver(catalog.spotify.client_id, catalog.spotify.client_secret,
                                catalog.spotify.api_url, catalog.spotify.auth_url,
                                short_link_url=links.base_url if links else None) if with_spotify else None)
    fetcher = AudioFetcher(search_template=template or catalog.audio_search,
                           allowed_hosts=frozenset({"youtube.com", "youtu.be", "open.spotify.com"}))
    return MoodUseCase(db, classifier, fetcher, resolver=resolver)


async def test_mood_by_name_then_from_the_cache(db, counting, classifier, catalog):
    song = catalog.songs[0]
    stages = []

    async def progress(stage):
        stages.append(stage)

    mood = usecase(db, counting, catalog)
    reply = await mood.run(ALICE, song.query, progress=progress)

    assert isinstance(reply, MoodReply), reply
    assert reply.mood == (await classifier.classify(song.path)).mood
    assert (reply.title, reply.artists) == (song.title, (song.artist,))
    assert reply.track_key == f"spotify:{song.spotify_id}"
    assert reply.spotify_url == f"https://open.spotify.com/track/{song.spotify_id}"
    assert stages == [STAGE_FINDING, STAGE_DOWNLOADING, STAGE_LISTENING]
    downloaded = catalog.audio.bytes_for(f"/audio/{song.spotify_id}.ogg")
    assert downloaded > 0

    stages.clear()
    again = await mood.run(BOB, song.query, progress=progress)

    assert again.cached is True and again.mood == reply.mood
    assert len(counting.calls) == 1  # no second classification
    assert catalog.audio.bytes_for(f"/audio/{song.spotify_id}.ogg") == downloaded  # no second download
    assert stages == [STAGE_FINDING]


async def test_without_spotify_the_name_goes_straight_to_the_audio_search(db, counting, catalog):
    song = catalog.songs[1]
    # The operator's search template, here a plain URL on the local audio server keyed by the text.
    template = catalog.audio.url("/audio/{title}.ogg")
    reply = await usecase(db, counting, catalog, with_spotify=False, template=template).run(ALICE, song.spotify_id)
    assert isinstance(reply, MoodReply), reply
    assert reply.track_key.startswith("sha256:")


async def test_a_song_spotify_does_not_know_gets_a_readable_error(db, counting, catalog, caplog):
    with caplog.at_level(logging.INFO, logger="bot.usecases.mood"):
        reply = await usecase(db, counting, catalog).run(ALICE, "zzqx nonexistent qqq song")
    assert isinstance(reply, ErrorReply) and "find" in reply.message.lower()
    assert "zzqx nonexistent qqq song" in reply.message  # the user sees what was not found
    assert counting.calls == []
    (refusal,) = [r for r in caplog.records if r.getMessage() == "mood.refused"]
    assert refusal.reason == "I couldn't find “<25 chars>” on Spotify."  # the log, not what they typed


async def test_a_youtube_link_skips_spotify_and_uses_the_cache(db, counting, catalog):
    from datetime import datetime, timezone

    from storage.models import StoredMood, TrackRecord

    probabilities = {"happy": 0.1, "energetic": 0.1, "sad": 0.2, "calm": 0.6}
    await db.tracks.save(TrackRecord(
        key="youtube:XFkzRNyygfk", title="Radiohead - Creep (Official Video)", youtube_id="XFkzRNyygfk",
        mood=StoredMood("calm", probabilities, 0.4, -0.6, "main", counting.main_model_version),
        classified_at=datetime.now(timezone.utc)))
    spotify_calls = len(catalog.spotify.requests)

    reply = await usecase(db, counting, catalog).run(ALICE, "https://youtu.be/XFkzRNyygfk?si=abc")

    assert isinstance(reply, MoodReply) and reply.cached and reply.mood == "calm"
    assert reply.source_url == "https://www.youtube.com/watch?v=XFkzRNyygfk"
    assert len(catalog.spotify.requests) == spotify_calls  # Spotify was not asked
    assert counting.calls == []  # nothing downloaded or classified


def fetches(catalog, song) -> int:
    """How often the song's audio was downloaded from the local audio server."""
    return len(catalog.audio.requests_for(f"/audio/{song.spotify_id}.ogg"))


async def downloads_for_one_asker(mood, catalog, song, text: str) -> int:
    """How often the song's audio is downloaded when one member alone asks for it by `text`."""
    before = fetches(catalog, song)
    assert isinstance(await mood.run(ALICE, text), MoodReply)
    return fetches(catalog, song) - before


async def test_a_song_asked_for_by_two_members_at_once_is_downloaded_and_classified_once(db, counting, catalog):
    alone, song = catalog.songs[2], catalog.songs[1]
    mood = usecase(db, counting, catalog)
    one_download = await downloads_for_one_asker(mood, catalog, alone, alone.query)
    before = fetches(catalog, song)

    first, second = await asyncio.gather(mood.run(ALICE, song.query), mood.run(BOB, song.query))

    assert isinstance(first, MoodReply) and isinstance(second, MoodReply), (first, second)
    assert first.mood == second.mood and len(counting.calls) == 2  # the song alone, then the two askers' song
    assert fetches(catalog, song) - before == one_download > 0


async def test_without_spotify_a_name_asked_for_by_two_members_at_once_is_downloaded_and_classified_once(
        db, counting, catalog):
    """With no Spotify credentials a name goes straight to the audio search: the two askers share
    that one search, download and classification, as they do a Spotify track's."""
    alone, song = catalog.songs[2], catalog.songs[0]
    template = catalog.audio.url("/audio/{title}.ogg")  # the operator's search, keyed by the text
    mood = usecase(db, counting, catalog, with_spotify=False, template=template)
    one_download = await downloads_for_one_asker(mood, catalog, alone, alone.spotify_id)
    before = fetches(catalog, song)

    first, second = await asyncio.gather(mood.run(ALICE, song.spotify_id), mood.run(BOB, song.spotify_id))

    assert isinstance(first, MoodReply) and isinstance(second, MoodReply), (first, second)
    assert first.track_key == second.track_key and first.mood == second.mood
    assert len(counting.calls) == 2  # the song alone, then the two askers' song
    assert fetches(catalog, song) - before == one_download > 0


async def test_the_youtube_link_of_a_song_known_from_spotify_is_that_song(db, counting, catalog):
    """/mood Creep was fetched from a YouTube video; that video's link is the same song, not a new one."""
    from datetime import datetime, timezone

    from storage.models import StoredMood, TrackRecord

    probabilities = {"happy": 0.1, "energetic": 0.1, "sad": 0.6, "calm": 0.2}
    await db.tracks.save(TrackRecord(
        key="spotify:6b2oQwSGFkzsMtQruIWm2p", title="Creep", artists=["Radiohead"], youtube_id="XFkzRNyygfk",
        spotify_url="https://open.spotify.com/track/6b2oQwSGFkzsMtQruIWm2p",
        mood=StoredMood("sad", probabilities, -0.4, -0.6, "main", counting.main_model_version),
        classified_at=datetime.now(timezone.utc)))

    reply = await usecase(db, counting, catalog).run(ALICE, "https://www.youtube.com/watch?v=XFkzRNyygfk")

    assert isinstance(reply, MoodReply) and reply.cached, reply
    assert (reply.track_key, reply.title, reply.artists, reply.mood) == (
        "spotify:6b2oQwSGFkzsMtQruIWm2p", "Creep", ("Radiohead",), "sad")
    assert reply.source_url == "https://www.youtube.com/watch?v=XFkzRNyygfk"
    assert counting.calls == []  # nothing downloaded or classified


async def test_the_youtube_link_of_two_releases_is_the_one_the_model_serving_now_heard(db, counting, catalog):
    """The album's release was answered by the fallback (overloaded) and the single's, from the same
    video, by the main model: the video's link is the single's answer, not a new entry of its own."""
    from datetime import datetime, timezone

    from storage.models import StoredMood, TrackRecord

    probabilities = {"happy": 0.1, "energetic": 0.1, "sad": 0.6, "calm": 0.2}
    for spotify_id, model, version in (("0AlbumReleaseOfCreep00", "ann", "ann-1"),
                                       ("0SingleReleaseOfCreep0", "main", counting.main_model_version)):
        await db.tracks.save(TrackRecord(
            key=f"spotify:{spotify_id}", title="Creep", artists=["Radiohead"], isrc="GBAYE9200070",
            youtube_id="XFkzRNyygfk", mood=StoredMood("sad", probabilities, -0.4, -0.6, model, version),
            classified_at=datetime.now(timezone.utc)))

    reply = await usecase(db, counting, catalog).run(ALICE, "https://www.youtube.com/watch?v=XFkzRNyygfk")

    assert isinstance(reply, MoodReply) and reply.cached, reply
    assert (reply.track_key, reply.model) == ("spotify:0SingleReleaseOfCreep0", "main")
    assert counting.calls == []  # nothing downloaded or classified


async def test_a_spotify_local_files_link_is_the_song_its_tags_name(db, counting, catalog):
    """Shared from someone's Spotify app, a local file has no track id; its link names it, and the
    song is looked up by that name."""
    from urllib.parse import quote_plus

    song = catalog.songs[1]
    link = f"spotify:local:{quote_plus(song.artist)}:4Q:{quote_plus(song.title)}:30"
    reply = await usecase(db, counting, catalog).run(ALICE, link)
    assert isinstance(reply, MoodReply), reply
    assert (reply.track_key, reply.title) == (f"spotify:{song.spotify_id}", song.title)


async def test_a_spotify_short_link_is_followed_to_its_song(db, counting, catalog, links):
    song = catalog.songs[2]
    links.redirect("https://spotify.link/Q1w2E3r4T5y", "https://spotify.app.link/Q1w2E3r4T5y?_p=c1", status=307)
    links.page("https://spotify.app.link/Q1w2E3r4T5y",
               f'<meta property="og:url" content="https://open.spotify.com/track/{song.spotify_id}?si=ab">')

    reply = await usecase(db, counting, catalog, links=links).run(ALICE, "https://spotify.link/Q1w2E3r4T5y")

    assert isinstance(reply, MoodReply), reply
    assert (reply.track_key, reply.title) == (f"spotify:{song.spotify_id}", song.title)
    assert len(counting.calls) == 1


async def test_a_short_link_that_leads_off_spotify_or_nowhere_gets_a_readable_error(db, counting, catalog, links):
    links.redirect("https://spotify.link/Away", "http://127.0.0.1:9/admin")
    links.redirect("https://spotify.link/Album", "https://open.spotify.com/album/6400dnyeDyD2mIFHfkwHXN")
    mood = usecase(db, counting, catalog, links=links)
    for link, words in (("https://spotify.link/Away", "leads away from Spotify"),
                        ("https://spotify.link/Album", "album, not a track"),
                        ("https://spotify.link/Gone", "doesn't lead to a song")):
        reply = await mood.run(ALICE, link)
        assert isinstance(reply, ErrorReply) and words in reply.message, reply
    assert counting.calls == []


async def test_a_short_link_needs_spotify(db, counting, catalog, links):
    asked = len(links.requests)
    reply = await usecase(db, counting, catalog, with_spotify=False).run(ALICE, "https://spotify.link/Q1w2E3r4T5y")
    assert isinstance(reply, ErrorReply) and "Spotify links need Spotify" in reply.message
    assert len(links.requests) == asked


async def test_a_misspelt_name_with_extra_words_still_finds_the_song(db, counting, catalog):
    song = catalog.songs[1]
    typo = song.artist[:-1]  # "Dismembe"
    reply = await usecase(db, counting, catalog).run(ALICE, f"{song.title} by {typo} (official audio)")
    assert isinstance(reply, MoodReply), reply
    assert reply.track_key == f"spotify:{song.spotify_id}"


async def test_a_name_spotify_has_no_close_match_for_is_not_classified_as_another_song(db, counting, catalog, caplog):
    """Spotify answers with a song sharing a word; the bot names it and asks, instead of guessing."""
    song = catalog.songs[1]
    first_word = song.title.split()[0]  # "Reborn" of "Reborn in Blasphemy"
    with caplog.at_level(logging.INFO, logger="bot.usecases.mood"):
        reply = await usecase(db, counting, catalog).run(ALICE, f"{first_word} Something Else Entirely")
    assert isinstance(reply, ErrorReply), reply
    assert f"“{song.artist} – {song.title}”" in reply.message  # the nearest song, named
    assert "Spotify link" in reply.message and "artist - title" in reply.message
    assert counting.calls == []
    (refusal,) = [r for r in caplog.records if r.getMessage() == "mood.refused"]
    assert "Something Else" not in refusal.reason  # the log, not what they typed


async def test_a_name_one_distinctive_word_from_the_only_hit_is_refused_and_the_hit_named(db, counting, catalog):
    """Spotify has "Let It Be" but no "Let It Go": two of three words shared is not the song asked for."""
    catalog.spotify.add(FakeTrack(name="Let It Be - Remastered 2009", artists=("The Beatles",),
                                  id="7iN1s7xHE4ifF5povM6A48", album="Let It Be", duration_ms=243_000))
    reply = await usecase(db, counting, catalog).run(ALICE, "Let it go")
    assert isinstance(reply, ErrorReply), reply
    assert reply.message.startswith("I couldn't find “Let it go” on Spotify; the nearest songs were")
    assert "“The Beatles – Let It Be - Remastered 2009”" in reply.message  # named, not fetched
    assert counting.calls == []
