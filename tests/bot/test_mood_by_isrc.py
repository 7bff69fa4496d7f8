"""One recording, several Spotify releases: the single and the album each have their own track id,
and share the recording's ISRC. Given the album's song was heard, /mood for the single's link
answers from the cache (no download, no classification), and the group's playlist lists one song.
Real spotipy and yt-dlp/HTTP against local fake servers (tests/fakes), real DB, real classifier."""
from __future__ import annotations

import logging
import shutil
from functools import partial

import pytest

from bot.replies import MoodReply
from bot.sources.audio import AudioFetcher
from bot.sources.spotify import SpotifyResolver
from bot.usecases.mood import MoodUseCase
from bot.usecases.playlists import PlaylistUseCase
from tests.bot.conftest import ALICE, BOB
from tests.bot.test_mood import heard_by_older_weights
from tests.e2e.wiring import load_songs
from tests.fakes.audio_http import FakeAudioServer
from tests.fakes.spotify_api import FakeSpotify, FakeTrack, spotify_id_for

ISRC = "GBAYE9200070"
ALBUM, SINGLE, REMASTER, NO_ISRC = (spotify_id_for(f"isrc-{n}") for n in ("album", "single", "remaster", "none"))


class Releases:
    def __init__(self, song, spotify: FakeSpotify, audio: FakeAudioServer) -> None:
        self.song, self.spotify, self.audio = song, spotify, audio

    def link(self, spotify_id: str) -> str:
        return f"https://open.spotify.com/track/{spotify_id}"

    def downloads(self, spotify_id: str) -> int:
        return len(self.audio.requests_for(f"/audio/{spotify_id}.ogg"))


@pytest.fixture(scope="module")
def releases(shared_data, tmp_path_factory):
    """One 4Q clip published four times: on its album and as a single (one ISRC), as a remaster
    (a new recording: its own ISRC) and once without an ISRC. The CDN serves the audio of each."""
    [song] = load_songs(shared_data, 1)
    root = tmp_path_factory.mktemp("releases")
    (root / "audio").mkdir()
    for spotify_id in (ALBUM, SINGLE, REMASTER, NO_ISRC):
        shutil.copy(song.path, root / "audio" / f"{spotify_id}.ogg")
    spotify = FakeSpotify().start()
    release = partial(FakeTrack, song.title, (song.artist,), duration_ms=30_000)  # the clip's length
    spotify.add(release(album="4Q", isrc=ISRC, id=ALBUM),
                release(album=f"{song.title} (single)", isrc=ISRC, id=SINGLE, art_url="https://i.scdn.co/image/single"),
                release(album="4Q (remastered)", isrc="GBAYE1100001", id=REMASTER),
                release(album="4Q (deluxe)", id=NO_ISRC))
    audio = FakeAudioServer(root).start()
    yield Releases(song, spotify, audio)
    spotify.stop()
    audio.stop()


def usecase(db, classifier, releases: Releases) -> MoodUseCase:
    spotify = releases.spotify
    resolver = SpotifyResolver(spotify.client_id, spotify.client_secret, spotify.api_url, spotify.auth_url)
    fetcher = AudioFetcher(search_template=releases.audio.url("/audio/{spotify_id}.ogg"),
                           allowed_hosts=frozenset({"youtube.com", "youtu.be", "open.spotify.com"}))
    return MoodUseCase(db, classifier, fetcher, resolver=resolver)


async def test_the_single_of_a_song_heard_from_its_album_is_answered_from_the_cache(db, counting, releases):
    mood = usecase(db, counting, releases)
    album = await mood.run(ALICE, releases.link(ALBUM))
    assert isinstance(album, MoodReply) and album.cached is False, album

    single = await mood.run(BOB, releases.link(SINGLE))

    assert isinstance(single, MoodReply), single
    assert len(counting.calls) == 1 and releases.downloads(SINGLE) == 0  # nothing downloaded or classified
    assert single.cached is True and single.fallback_reason is None  # a plain cache hit, nothing more said
    # The single's own page, with the album's mood.
    assert (single.track_key, single.album, single.spotify_url, single.art_url) == (
        f"spotify:{SINGLE}", f"{releases.song.title} (single)", releases.link(SINGLE), "https://i.scdn.co/image/single")
    assert (single.mood, single.probabilities, single.model_version) == (album.mood, album.probabilities,
                                                                         album.model_version)
    # Kept under the single's key: asked again, it is an ordinary hit.
    stored = await db.tracks.get(f"spotify:{SINGLE}")
    assert (stored.isrc, stored.mood) == (ISRC, (await db.tracks.get(f"spotify:{ALBUM}")).mood)
    assert (await mood.run(ALICE, releases.link(SINGLE))).cached is True and len(counting.calls) == 1

    # In the group, both releases are one song with both members' votes.
    playlist = await PlaylistUseCase(db).playlist(ALICE, album.mood)
    assert [(t.title, t.members, t.url) for t in playlist.tracks] == [(releases.song.title, 2, releases.link(ALBUM))]


async def test_another_recording_or_a_release_without_an_isrc_is_heard_anew(db, counting, releases):
    mood = usecase(db, counting, releases)
    assert (await mood.run(ALICE, releases.link(ALBUM))).cached is False
    before = releases.downloads(REMASTER), releases.downloads(NO_ISRC)

    remaster = await mood.run(ALICE, releases.link(REMASTER))
    no_isrc = await mood.run(ALICE, releases.link(NO_ISRC))

    assert (remaster.cached, no_isrc.cached, len(counting.calls)) == (False, False, 3)
    assert releases.downloads(REMASTER) > before[0] and releases.downloads(NO_ISRC) > before[1]


async def test_a_release_heard_by_older_weights_is_not_reused_for_another(db, counting, classifier, releases):
    """The cache's rule holds across releases: an answer of other weights (or of the fallback ANN)
    is not served, so the single is heard by the model serving now."""
    mood = usecase(db, counting, releases)
    album = await mood.run(ALICE, releases.link(ALBUM))
    await heard_by_older_weights(db, album.track_key)

    single = await mood.run(BOB, releases.link(SINGLE))

    assert (single.cached, single.model_version, len(counting.calls)) == (False, classifier.main_model_version, 2)


async def test_with_the_database_down_a_song_s_cache_is_asked_once_before_it_is_heard(down_db, counting, releases,
                                                                                     caplog):
    """The song's key, then its recording's other releases (or its video's song): each lookup
    waited out the server selection (DEFAULT_SERVER_SELECTION_TIMEOUT_MS, 2 s) one after the
    other before the song was heard, 2 s more for each /mood of a Spotify song while the database
    was down. The first failure ends the looking."""
    with caplog.at_level(logging.DEBUG, logger="storage.failures"):
        reply = await usecase(down_db, counting, releases).run(ALICE, releases.link(REMASTER))
        await down_db.requests.settled()

    assert isinstance(reply, MoodReply) and reply.cached is False, reply
    failed = [r.getMessage().split(":")[0] for r in caplog.records if r.getMessage().startswith("database unavailable")]
    assert failed[:2] == ["database unavailable during get track", "database unavailable during save track"]
