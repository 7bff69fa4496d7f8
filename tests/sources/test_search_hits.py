"""`AudioFetcher.find`: the audio search's pick, read from the search's own listing, nothing
downloaded, so that the use case can ask the cache about its video first; `fetch(hit)` downloads
that hit without searching again. The listing is an RSS feed on the fake CDN, which yt-dlp's
generic extractor reads as a yt-dlp search lists YouTube's hits (links, titles, lengths)."""
from __future__ import annotations

from bot.sources.audio import AudioFetcher
from bot.sources.models import Query, QueryKind, TrackInfo
from tests.fakes.audio_http import PlaylistEntry

VIDEO = "XFkzRNyygfk"


def song(duration_s: float) -> TrackInfo:
    return TrackInfo(key="spotify:abc", title="Long Song", artists=("Band",), duration_s=duration_s, spotify_id="abc")


async def test_the_hit_s_video_is_known_before_anything_is_downloaded(audio_server, long_duration, tmp_path):
    audio_server.add_feed("/search.rss", [
        PlaylistEntry("/long.webm", long_duration + 60, "Band - Long Song (extended mix)"),
        PlaylistEntry(f"https://www.youtube.com/watch?v={VIDEO}", long_duration - 2, "Band - Long Song"),
    ])
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/search.rss?q={artists}+{title}", tmp_dir=tmp_path)

    hit = await fetcher.find(song(long_duration))

    assert (hit.youtube_id, hit.url, hit.title) == (VIDEO, f"https://www.youtube.com/watch?v={VIDEO}", "Band - Long Song")
    assert [r.path for r in audio_server.requests] == ["/search.rss"]  # the listing alone
    assert list(tmp_path.iterdir()) == []


async def test_a_hit_on_another_site_has_no_video_id_and_is_downloaded_as_listed(audio_server, long_duration,
                                                                                  tmp_path):
    audio_server.add_feed("/search.rss", [PlaylistEntry("/long.ogg", long_duration, "the song")])
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/search.rss?q={title}", tmp_dir=tmp_path)

    hit = await fetcher.find(Query(kind=QueryKind.TEXT, text="long song"))

    assert (hit.youtube_id, hit.url) == (None, audio_server.url("/long.ogg"))
    async with fetcher.fetch(hit) as audio:
        assert audio.title == "the song" and audio.section_s is not None  # a section, by Range requests
    assert [r.path for r in audio_server.requests].count("/search.rss") == 1  # not searched again


async def test_a_plain_file_s_url_and_a_playlist_of_files_are_not_searched_ahead(audio_server, long_duration,
                                                                                 tmp_path):
    """A template naming the file itself has no hit to pick, and an XSPF playlist lists files,
    not links: `fetch(item)` gets them as before, and `find` asks nothing of the plain file."""
    audio_server.add_playlist("/search.xspf", [PlaylistEntry("/long.ogg", long_duration, "the song")])
    plain = AudioFetcher(search_template=audio_server.base_url + "/{spotify_id}.ogg", tmp_dir=tmp_path)
    listed = AudioFetcher(search_template=audio_server.base_url + "/search.xspf?q={title}", tmp_dir=tmp_path)

    assert await plain.find(song(long_duration)) is None
    assert audio_server.requests == []
    assert await listed.find(Query(kind=QueryKind.TEXT, text="long song")) is None


async def test_the_search_s_next_two_picks_come_with_its_pick_in_case_it_is_a_live_stream(audio_server,
                                                                                        long_duration, tmp_path):
    """A listing seldom says which hit is a live stream (an RSS feed never does): a hit's page
    tells. The next picks, best first, come with the pick (`then`), two at most, for the use case
    to try in turn, as of the same search (`next_hit`); none of their pages is read here."""
    lengths = {"/a.ogg": 8, "/b.ogg": -1, "/c.ogg": 3, "/d.ogg": 5, "/e.ogg": 60}  # off the song's length
    audio_server.add_feed("/search.rss", [PlaylistEntry(path, long_duration + off, "Band - Long Song")
                                          for path, off in lengths.items()])
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/search.rss?q={title}", tmp_dir=tmp_path)

    hit = await fetcher.find(song(long_duration))

    assert [hit.url, *(later.url for later in hit.then)] == [audio_server.url(p) for p in ("/b.ogg", "/c.ogg", "/d.ogg")]
    after = hit.next_hit()
    assert (after.url, after.of, [later.url for later in after.then]) == (
        audio_server.url("/c.ogg"), hit.of, [audio_server.url("/d.ogg")])
    assert after.next_hit().next_hit() is None
    assert [r.path for r in audio_server.requests] == ["/search.rss"]
