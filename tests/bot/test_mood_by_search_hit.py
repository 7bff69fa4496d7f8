"""The audio search's hit is known before it is downloaded: a video the cache knows is not
downloaded again, whatever route found it, and one hit asked for by two routes at once is
downloaded and heard once. The search here is an RSS feed on the fake CDN, which yt-dlp's generic
extractor lists as a yt-dlp search lists YouTube's hits (titles, lengths, links, pages unread); a
YouTube video's link in it gives its id as a search's entry does. The suite has no YouTube to
download from, so a video in these tests is only ever answered from the cache: before it was
looked up first, its download was tried, and failed.
Real spotipy and yt-dlp/HTTP against local fake servers (tests/fakes), real DB, real classifier."""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from bot.replies import STAGE_DOWNLOADING, STAGE_FINDING, ErrorReply, MoodReply, Progress
from bot.sources.keys import file_cache_key
from storage.models import StoredMood, TrackRecord
from tests.bot.conftest import ALICE, BOB
from tests.bot.test_mood import heard_by_older_weights
from tests.bot.test_mood_by_name import usecase
from tests.e2e.wiring import Catalog, load_songs
from tests.fakes.audio_http import PlaylistEntry

VIDEO = "XFkzRNyygfk"
WATCH = f"https://www.youtube.com/watch?v={VIDEO}"
HEARD_AT = datetime(2026, 12, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def catalog(shared_data, tmp_path_factory):
    """Two 4Q clips published by the fake Spotify and served by the fake CDN."""
    running = Catalog.start(load_songs(shared_data, 2), tmp_path_factory.mktemp("hits"))
    yield running
    running.stop()


def search_listing(catalog: Catalog, name: str, location: str) -> str:
    """AUDIO_SEARCH for a search whose one hit, whatever is searched, is `location` (a video's
    link, or a file on the CDN), listed 30 s long as the clips are."""
    catalog.audio.add_feed(f"/{name}.rss", [PlaylistEntry(location, 30.0, "Radiohead - Creep")])
    return catalog.audio.url(f"/{name}.rss?q={{title}}")


async def heard_video(db, classifier, key: str = f"youtube:{VIDEO}", **fields) -> TrackRecord:
    """The video's answer in the cache, as the model serving now gave it (under its own key, as
    a YouTube link's answer is saved, or under a Spotify song's heard from it)."""
    mood = StoredMood("sad", {"sad": 0.7, "calm": 0.1, "happy": 0.1, "angry": 0.1}, -0.4, -0.5, "main",
                      classifier.main_model_version)
    record = TrackRecord(key, fields.pop("title", "Radiohead - Creep (Official Video)"),
                         youtube_id=fields.pop("youtube_id", VIDEO),
                         mood=mood, classified_at=HEARD_AT, **fields)
    await db.tracks.save(record)
    return record


def downloading_together(timeout_s: float = 5) -> tuple[Progress, Progress]:
    """Two askers' progress: each one's download waits until the other's has reached its own, or
    joined it (`timeout_s` at most), so that the two are under way at once, whichever searched first."""
    downloading = [asyncio.Event(), asyncio.Event()]

    def told(asker: int) -> Progress:
        async def progress(stage):
            if stage == STAGE_DOWNLOADING:
                downloading[asker].set()
                # One listening tells its askers in turn: the first told waits for the next at most so long.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(downloading[1 - asker].wait(), timeout_s)
        return progress

    return told(0), told(1)


@pytest.mark.parametrize("heard_as", ["its link", "a spotify song"])
async def test_without_spotify_a_name_whose_video_is_cached_is_not_downloaded(db, counting, classifier, catalog,
                                                                              heard_as):
    """Spotify off: the name was downloaded before the cache was asked (the video's id came
    with the download), so a song the cache held was fetched again at every ask of its name."""
    song = catalog.songs[0]
    key = f"youtube:{VIDEO}" if heard_as == "its link" else f"spotify:{song.spotify_id}"
    await heard_video(db, classifier, key)
    mood = usecase(db, counting, catalog, with_spotify=False, template=search_listing(catalog, "name-video", WATCH))
    catalog.audio.reset_counts()

    reply = await mood.run(ALICE, "radiohead creep")

    assert isinstance(reply, MoodReply), reply
    assert (reply.cached, reply.track_key, reply.mood, reply.source_url) == (True, key, "sad", WATCH)
    assert counting.calls == []
    assert len(catalog.audio.requests_for("/name-video.rss")) == 1  # searched once


async def test_a_spotify_song_whose_video_was_heard_from_its_youtube_link_is_not_heard_again(db, counting,
                                                                                              classifier, catalog):
    """A YouTube link first (saved as youtube:<id>), then the song through Spotify: its search
    finds that video, which was downloaded and heard again. The video's answer is the song's,
    saved under the Spotify key with Spotify's names, and the next ask is a plain cache hit."""
    song = catalog.songs[0]
    await heard_video(db, classifier)
    mood = usecase(db, counting, catalog, template=search_listing(catalog, "spotify-video", WATCH))
    link = f"https://open.spotify.com/track/{song.spotify_id}"

    reply = await mood.run(ALICE, link)

    assert isinstance(reply, MoodReply), reply
    assert (reply.cached, reply.track_key, reply.title, reply.artists, reply.mood) == (
        True, f"spotify:{song.spotify_id}", song.title, (song.artist,), "sad")
    assert reply.source_url == WATCH
    saved = await db.tracks.get(f"spotify:{song.spotify_id}")
    assert (saved.youtube_id, saved.mood.mood, saved.mood.model_version) == (VIDEO, "sad", classifier.main_model_version)
    again = await mood.run(BOB, link)
    assert (again.cached, again.mood) == (True, "sad")
    assert counting.calls == []
    assert len(catalog.audio.requests_for("/spotify-video.rss")) == 1  # the second ask: the cache alone


@pytest.mark.parametrize("with_spotify", [True, False], ids=["a spotify link and another song's name",
                                                             "two names"])
async def test_one_hit_found_by_two_routes_at_once_is_downloaded_and_heard_once(db, counting, catalog, with_spotify):
    """Two askers whose requests have different keys (two Spotify songs, two names searched
    without Spotify) and whose search finds the same hit: each downloaded and heard it, the
    single-flight being per request key. They share the hit's download and listening, and each
    gets its own song's answer. Each asker's download waits until the other has reached its own,
    or joined it: the two are under way at once, whichever searched first."""
    first, second = catalog.songs
    hit = f"/audio/{first.spotify_id}.ogg"
    template = search_listing(catalog, f"one-hit-{with_spotify}", hit)
    mood = usecase(db, counting, catalog, with_spotify=with_spotify, template=template)
    asked = ((f"https://open.spotify.com/track/{first.spotify_id}", second.query) if with_spotify
             else ("radiohead creep", "creep by radiohead"))
    catalog.audio.reset_counts()
    told = downloading_together()

    replies = await asyncio.gather(mood.run(ALICE, asked[0], progress=told[0]), mood.run(BOB, asked[1], progress=told[1]))

    assert all(isinstance(reply, MoodReply) for reply in replies), replies
    assert len(counting.calls) == 1
    assert len({reply.mood for reply in replies}) == 1
    if with_spotify:  # each its own song, both saved
        assert [reply.track_key for reply in replies] == [f"spotify:{first.spotify_id}", f"spotify:{second.spotify_id}"]
        for reply in replies:
            assert (await db.tracks.get(reply.track_key)).mood.mood == reply.mood


async def test_two_names_sharing_a_file_whose_song_is_cached_are_both_told_it_is_cached(db, counting, classifier,
                                                                                         catalog):
    """A listening shared by two routes answers from the cache only where none of its askers has a
    song of its own (Spotify off: a plain file's content is its key, known once downloaded): each
    is told the cache's answer as cached, the file downloaded once, nothing heard nor saved again.
    An asker with a song (Spotify on) makes its download hear the file (`_download` looks the
    content up only without one), so `_as_asked` never saves a cached answer under another key."""
    song = catalog.songs[0]
    key = file_cache_key(song.path)
    await heard_video(db, classifier, key, title="", youtube_id=None)
    hit = f"/audio/{song.spotify_id}.ogg"
    mood = usecase(db, counting, catalog, with_spotify=False, template=search_listing(catalog, "cached-file", hit))
    catalog.audio.reset_counts()
    told = downloading_together()

    replies = await asyncio.gather(mood.run(ALICE, "radiohead creep", progress=told[0]),
                                   mood.run(BOB, "creep by radiohead", progress=told[1]))

    assert [(reply.cached, reply.track_key, reply.mood) for reply in replies] == [(True, key, "sad")] * 2, replies
    assert counting.calls == [] and (await db.tracks.get(key)).classified_at == HEARD_AT
    together = len(catalog.audio.requests_for(hit))
    catalog.audio.reset_counts()
    assert (await mood.run(BOB, "creep by radiohead")).cached
    assert together == len(catalog.audio.requests_for(hit))  # one download's requests: shared


async def test_a_name_spotify_does_not_find_shares_no_cached_file_with_a_song_it_found(db, counting, classifier,
                                                                                         catalog):
    """Spotify on: a name it does not find has no song, yet is not searched for audio, whose
    listening would answer from the cache (a plain file's content) and be saved under the key of a
    Spotify song sharing it, stamped now and told fresh (`_as_asked`). It is refused before any
    search; the song beside it, whose search finds that file, is heard from it, not given its
    cached answer, and the file's own entry is left as it was."""
    file, song = catalog.songs
    key = file_cache_key(file.path)
    await heard_video(db, classifier, key, title="", youtube_id=None)
    hit = f"/audio/{file.spotify_id}.ogg"
    mood = usecase(db, counting, catalog, template=search_listing(catalog, "unfound-and-song", hit))
    catalog.audio.reset_counts()

    unfound, found = await asyncio.gather(mood.run(ALICE, "zzyzx qwerty"), mood.run(BOB, song.query))

    assert unfound == ErrorReply("I couldn't find “zzyzx qwerty” on Spotify."), unfound
    assert isinstance(found, MoodReply), found
    assert (found.cached, found.track_key) == (False, f"spotify:{song.spotify_id}")
    assert len(counting.calls) == 1 and len(catalog.audio.requests_for("/unfound-and-song.rss")) == 1
    assert (await db.tracks.get(key)).classified_at == HEARD_AT


async def heard_earlier(db, classifier, song, heard_by: str) -> str:
    """The Spotify song `song` heard from the video, by older weights or by the fallback (the main
    model overloaded then): its answer is heard again at its next ask. Its key."""
    key = f"spotify:{song.spotify_id}"
    heard = await heard_video(db, classifier, key, title=song.title, artists=[song.artist], spotify_id=song.spotify_id)
    if heard_by == "older weights":
        await heard_by_older_weights(db, key)
    else:
        await db.tracks.save(replace(heard, mood=replace(heard.mood, model="ann")))
    return key


@pytest.mark.parametrize("heard_by", ["older weights", "the fallback"])
async def test_the_youtube_link_of_a_song_heard_by_older_weights_is_heard_as_that_song(db, counting, classifier,
                                                                                      catalog, heard_by):
    """After new weights ship, the YouTube link of a song known from Spotify (its audio came from
    that video) was heard as a video of its own and saved as a second entry, youtube:<id>; so was
    it where the fallback answered for the song. It is that song: asked while the song is being
    heard again through Spotify, it waits for that answer, and no second entry is made. (The link
    heard alone is downloaded from YouTube itself, which the suite has no fake of.)"""
    song = catalog.songs[1]
    key = await heard_earlier(db, classifier, song, heard_by)
    mood = usecase(db, counting, catalog)
    spotify_downloading, link_downloading = asyncio.Event(), asyncio.Event()

    async def spotify_told(stage):
        if stage == STAGE_DOWNLOADING:
            spotify_downloading.set()
            with contextlib.suppress(TimeoutError):  # until the link's asker has joined, or started its own
                await asyncio.wait_for(link_downloading.wait(), 10)

    async def link_told(stage):
        if stage == STAGE_DOWNLOADING:
            link_downloading.set()

    through_spotify = asyncio.ensure_future(mood.run(ALICE, f"https://open.spotify.com/track/{song.spotify_id}",
                                                     progress=spotify_told))
    await asyncio.wait_for(spotify_downloading.wait(), 30)
    replies = await asyncio.gather(through_spotify, mood.run(BOB, WATCH, progress=link_told))

    assert all(isinstance(reply, MoodReply) for reply in replies), replies
    assert [(r.track_key, r.title, r.model_version) for r in replies] == [
        (key, song.title, classifier.main_model_version)] * 2
    assert len(counting.calls) == 1
    assert await db.tracks.get(f"youtube:{VIDEO}") is None


@pytest.mark.parametrize("heard_by", ["older weights", "the fallback"])
@pytest.mark.parametrize("found_as", ["a file's URL", "a listing of a file"])
async def test_a_song_heard_again_from_a_file_keeps_its_video(db, counting, classifier, catalog, heard_by, found_as):
    """A Spotify song heard from its video, heard again (new weights, or its answer was the
    fallback's) through an audio search that gives a plain file (the template a file's URL, or a
    listing whose hit is a file), which has no video id: the song's record was saved without its
    video's, so the video's YouTube link no longer found the song and was heard as a video of its
    own. The video it was known by is kept, and the link is the song, answered from the cache."""
    song = catalog.songs[0]
    key = await heard_earlier(db, classifier, song, heard_by)
    file = f"/audio/{song.spotify_id}.ogg"
    template = catalog.audio_search if found_as == "a file's URL" else search_listing(catalog, "file-hit", file)
    mood = usecase(db, counting, catalog, template=template)

    again = await mood.run(ALICE, f"https://open.spotify.com/track/{song.spotify_id}")

    assert isinstance(again, MoodReply), again
    assert (again.cached, again.track_key, again.model_version) == (False, key, classifier.main_model_version)
    assert again.source_url == catalog.audio.url(file)
    assert (await db.tracks.get(key)).youtube_id == VIDEO
    link = await mood.run(BOB, WATCH)
    assert isinstance(link, MoodReply), link
    assert (link.cached, link.track_key, link.title, link.mood) == (True, key, song.title, again.mood)
    assert len(counting.calls) == 1


async def test_a_song_s_youtube_link_and_a_name_finding_its_video_at_once_share_one_download(db, counting,
                                                                                            classifier, catalog):
    """After new weights ship, the YouTube link of a song known from Spotify is heard as that song,
    under its key, while a name whose search finds the same video is heard under the video's: asked
    at once, each downloaded it. They share one download. The suite has no YouTube, so each route's
    download fails, in words of its own (the link's at its URL check, the search's in yt-dlp): one
    failure told to both is one download.

    "Fetching…" is said once a download worker has the download: the link's fails at its URL
    check, before that, so the name's download is the one shared. The link waits to look its song
    up until the name's search has found it and a worker has it, the name's listening until the
    link has joined it (told where it is) or started its own."""
    song = catalog.songs[0]
    await heard_earlier(db, classifier, song, "older weights")
    template = search_listing(catalog, "link-and-name", WATCH)
    mood = usecase(db, counting, catalog, with_spotify=False, template=template)
    name_told, link_told = downloading_together(10)
    name_downloading = asyncio.Event()

    async def name_progress(stage):
        if stage == STAGE_DOWNLOADING:
            name_downloading.set()
        await name_told(stage)

    async def link_progress(stage):
        if stage == STAGE_FINDING:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(name_downloading.wait(), 10)
        await link_told(stage)

    replies = await asyncio.gather(mood.run(ALICE, "radiohead creep", progress=name_progress),
                                   mood.run(BOB, WATCH, progress=link_progress))

    assert all(isinstance(reply, ErrorReply) for reply in replies), replies
    assert replies[0] == replies[1]
    assert counting.calls == []


@pytest.mark.parametrize("heard_by", ["older weights", "the fallback"])
async def test_without_spotify_a_name_whose_video_is_a_song_heard_by_older_weights_is_heard_as_that_song(
        db, counting, classifier, catalog, heard_by):
    """Spotify off, after new weights ship: a name whose search finds the video a Spotify song was
    heard from was heard as a video of its own and saved as a second entry, youtube:<id>, beside
    the song's. It is that song: here another release of it (one ISRC) was heard by the weights
    serving now, and its answer is the song's, saved under the song's key, nothing downloaded; as
    the song's YouTube link and Spotify link are. (A video heard again is downloaded from YouTube
    itself, which the suite has no fake of: that save is untested.)"""
    album, single = catalog.songs
    key = await heard_earlier(db, classifier, album, heard_by)
    await db.tracks.save(replace(await db.tracks.get(key), isrc="GBAYE9200070"))
    release = await heard_video(db, classifier, f"spotify:{single.spotify_id}", title=album.title,
                                artists=[album.artist], spotify_id=single.spotify_id, isrc="GBAYE9200070")
    await db.tracks.save(replace(release, youtube_id=None, mood=replace(release.mood, mood="calm")))
    mood = usecase(db, counting, catalog, with_spotify=False, template=search_listing(catalog, "name-older", WATCH))

    reply = await mood.run(ALICE, "radiohead creep")

    assert isinstance(reply, MoodReply), reply
    assert (reply.cached, reply.track_key, reply.title, reply.mood, reply.source_url) == (
        True, key, album.title, "calm", WATCH)
    saved = await db.tracks.get(key)
    assert (saved.youtube_id, saved.mood.mood, saved.mood.model_version) == (VIDEO, "calm", classifier.main_model_version)
    assert await db.tracks.get(f"youtube:{VIDEO}") is None
    assert counting.calls == []


def search_with_live_hits(catalog: Catalog, name: str, live: int, song) -> str:
    """AUDIO_SEARCH for a search whose first `live` hits are live streams on the CDN, then
    `song`'s file: the listing says nothing of which are live, as an RSS feed's does not."""
    streams = [f"/{name}-live-{n}.m3u8" for n in range(live)]
    for stream in streams:
        catalog.audio.add_live_stream(stream)
    hits = [PlaylistEntry(stream, 0.0, "lofi hip hop radio - beats to relax/study to") for stream in streams]
    catalog.audio.add_feed(f"/{name}.rss", [*hits, PlaylistEntry(f"/audio/{song.spotify_id}.ogg", 30.0, "lofi song")])
    return catalog.audio.url(f"/{name}.rss?q={{title}}")


@pytest.mark.parametrize("live", [1, 2])
async def test_a_name_whose_search_finds_a_live_stream_first_is_heard_from_the_next_hit(db, counting, catalog, live):
    """The search's pick (`AudioFetcher.find`, the listing alone) was a live stream, which has no
    end to take 30 s from: the song was refused as a live stream although the next hit was a
    recorded song. The next hit is heard instead, up to 3 hits in all."""
    song = catalog.songs[0]
    template = search_with_live_hits(catalog, f"live-first-{live}", live, song)
    mood = usecase(db, counting, catalog, with_spotify=False, template=template)
    catalog.audio.reset_counts()

    reply = await mood.run(ALICE, "lofi radio")

    assert isinstance(reply, MoodReply), reply
    assert (reply.cached, reply.source_url) == (False, catalog.audio.url(f"/audio/{song.spotify_id}.ogg"))
    assert len(counting.calls) == 1
    assert not catalog.audio.requests_for("/seg1.ts")


async def test_a_search_whose_first_three_hits_are_live_streams_is_refused_as_a_live_stream(db, counting, catalog):
    """Hits are tried up to 3 (each a request or more to read it): the fourth is not looked at."""
    song = catalog.songs[1]
    mood = usecase(db, counting, catalog, with_spotify=False,
                   template=search_with_live_hits(catalog, "live-three", 3, song))
    catalog.audio.reset_counts()

    reply = await mood.run(ALICE, "lofi radio")

    assert reply == ErrorReply("“lofi radio” is a live stream — send me a recorded song instead.")
    assert not catalog.audio.requests_for(f"/audio/{song.spotify_id}.ogg")
    assert counting.calls == []
