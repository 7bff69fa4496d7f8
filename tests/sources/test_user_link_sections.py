"""A user's link whose section is cut by ffmpeg (from a host that does not answer Range requests,
so that the whole file is fetched) never lets ffmpeg open a network URL: ffmpeg is a process of its own, whose DNS lookups and redirects the
connection guard cannot watch. And an HLS playlist or a DASH manifest from a user's link stays
within the limits."""
from __future__ import annotations

import shutil
import subprocess
from http.server import BaseHTTPRequestHandler

import pytest

from tests.fakes.audio_http import FakeAudioServer
from bot.sources.audio import AudioFetcher, dash_section, hls_section, section_window
from inference.audio import SAMPLE_RATE, load_audio
from bot.sources.models import AudioTooLargeError, BlockedURLError, UnsupportedInputError
from tests.sources.test_audio import DECODE_RATE, decode, section_start_in
from tests.sources.test_urlguard import PUBLIC, stand_in, table_resolver, user_link, user_link_fetcher, video_known_by_id

FFMPEG_MARK = "Icy-MetaData"  # ffmpeg's HTTP client asks every server for ICY metadata; Python's clients never do


class FfmpegRedirectingServer(FakeAudioServer):
    """Answers yt-dlp and the guard as usual, but redirects ffmpeg's own requests (known by the
    header only ffmpeg sends) for the paths in `ffmpeg_redirects`."""

    def __init__(self, root):
        super().__init__(root)
        self.ffmpeg_redirects: dict[str, str] = {}
        self.ffmpeg_requests: list[str] = []

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        server, base = self, super()._request_handler()

        class Handler(base):
            def _serve(self, send_body: bool) -> None:
                path = self.path.split("?", 1)[0]
                if self.headers.get(FFMPEG_MARK) is None:
                    return super()._serve(send_body)
                server.ffmpeg_requests.append(path)
                if path not in server.ffmpeg_redirects:
                    return super()._serve(send_body)
                return self._empty(302, {"Location": server.ffmpeg_redirects[path]})

        return Handler


@pytest.fixture
def forbidden(tmp_path, audio_root):
    """A host off the allowlist (here: a loopback port that is no stand-in for a public host),
    serving a perfectly good song, so that nothing but the guard would stop a fetch of it."""
    root = tmp_path / "forbidden"
    root.mkdir()
    shutil.copy(audio_root / "long.aac", root / "secret.aac")
    with FakeAudioServer(root) as server:
        yield server


@pytest.fixture
def front(audio_root):
    with FfmpegRedirectingServer(audio_root) as server:
        yield server


@pytest.fixture
def work(tmp_path):
    return tmp_path / "work"


async def test_a_redirect_made_only_to_ffmpeg_never_reaches_a_forbidden_host(front, forbidden, long_duration, work):
    front.add_redirect("/watch", f"http://localhost:{front.port}/long.aac")
    front.whole_only.add("/long.aac")  # no Range section: yt-dlp fetches the file, ffmpeg cuts the copy
    front.ffmpeg_redirects["/long.aac"] = f"http://127.0.0.1:{forbidden.port}/secret.aac"
    try:
        async with user_link_fetcher(front, work).fetch(video_known_by_id(front, long_duration)) as audio:
            # Still the middle 30 s, cut by ffmpeg from the copy that yt-dlp's watched downloader fetched.
            assert audio.path.suffix == ".aac" and audio.section_s == pytest.approx(section_window(long_duration))
            section = decode(audio.path)
            assert 29.0 <= len(section) / DECODE_RATE <= 40.0
            start = audio.section_s[0]
            assert section_start_in(decode(front.root / "long.aac"), section, start) == pytest.approx(start, abs=10.0)
            assert audio.bytes_downloaded == (front.root / "long.aac").stat().st_size
    finally:
        assert forbidden.requests == []
    assert front.ffmpeg_requests == []  # ffmpeg opened no network URL at all
    assert list(work.iterdir()) == []


async def test_an_hls_playlist_yt_dlp_hands_to_ffmpeg_never_reaches_a_forbidden_host(front, forbidden, work):
    # yt-dlp's own HLS downloader passes a playlist with features it does not support (here a
    # SAMPLE-AES key) to ffmpeg, which would fetch it again, following the redirect made for it.
    front.add_page("/list.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:30\n"
                                 f'#EXT-X-KEY:METHOD=SAMPLE-AES,URI="http://localhost:{front.port}/key"\n'
                                 f"#EXTINF:30.0,\nhttp://localhost:{front.port}/clip.ogg\n#EXT-X-ENDLIST\n",
                   "application/vnd.apple.mpegurl")
    front.add_redirect("/watch", f"http://localhost:{front.port}/list.m3u8")
    front.ffmpeg_redirects["/list.m3u8"] = f"http://127.0.0.1:{forbidden.port}/secret.m4a"
    try:
        with pytest.raises(UnsupportedInputError, match="a kind of stream I can't fetch"):
            async with user_link_fetcher(front, work).fetch(user_link(front)):
                pass
    finally:
        assert forbidden.requests == []
    assert front.ffmpeg_requests == []
    assert list(work.iterdir()) == []


# -- HLS from a user's link: yt-dlp's own HLS downloader, within the limits -------------------

HLS_SEGMENT_S = 10


@pytest.fixture(scope="session")
def hls_root(audio_root, tmp_path_factory):
    """long.m4a as an HLS playlist (song.m3u8) of ~10 s MPEG-TS segments, as a CDN serves it."""
    root = tmp_path_factory.mktemp("hls")
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(audio_root / "long.m4a"), "-c", "copy", "-f", "hls",
                    "-hls_time", str(HLS_SEGMENT_S), "-hls_playlist_type", "vod",
                    "-hls_segment_filename", str(root / "seg%03d.ts"), str(root / "song.m3u8")], check=True)
    return root


@pytest.fixture
def hls_host(hls_root):
    with FakeAudioServer(hls_root) as server:
        yield server


def segments_served(server: FakeAudioServer) -> list[str]:
    return [r.path for r in server.requests if r.path.endswith(".ts")]


async def test_an_hls_stream_larger_than_the_limit_is_refused_once_the_limit_is_reached(hls_host, hls_root, work):
    whole = sum(p.stat().st_size for p in hls_root.glob("*.ts"))
    fetcher = AudioFetcher(allowed_hosts=frozenset({"localhost"}), tmp_dir=work, timeout_s=30, max_bytes=whole // 8,
                           resolver=table_resolver({"localhost": [PUBLIC]}), public_stand_ins=stand_in(hls_host))
    with pytest.raises(AudioTooLargeError):
        async with fetcher.fetch(user_link(hls_host, "/song.m3u8")):
            pass
    assert sum(hls_host.bytes_for(path) for path in segments_served(hls_host)) < whole // 4
    assert list(work.iterdir()) == []


async def test_an_hls_stream_from_a_user_link_fetches_only_the_segments_of_its_middle(hls_host, hls_root, audio_root,
                                                                                    long_duration, work):
    all_segments = sorted(p.name for p in hls_root.glob("*.ts"))
    async with user_link_fetcher(hls_host, work).fetch(user_link(hls_host, "/song.m3u8")) as audio:
        start, end = audio.section_s
        middle = section_window(long_duration)
        assert start <= middle[0] and end >= middle[1] and end - start <= 30 + 2 * HLS_SEGMENT_S + 1
        served = segments_served(hls_host)
        assert len(served) <= 4 < len(all_segments)
        samples = load_audio(audio.path)  # the classifier reads it
        assert 29.0 <= len(samples) / SAMPLE_RATE <= end - start + 1
        section = decode(audio.path)
        assert section_start_in(decode(audio_root / "long.m4a"), section, start) == pytest.approx(start, abs=2.0)
    assert list(work.iterdir()) == []


def media_playlist(segments: int, *, key_at: int | None = None, sequence: int = 7, extra: str = "") -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-TARGETDURATION:10", f"#EXT-X-MEDIA-SEQUENCE:{sequence}",
             '#EXT-X-MAP:URI="init.mp4"', *([extra] if extra else [])]
    for n in range(segments):
        if n == key_at:
            lines.append('#EXT-X-KEY:METHOD=AES-128,URI="key.bin"')
        lines += ["#EXTINF:10.0,", f"seg{n}.m4s"]
    return "\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n"


def test_an_hls_playlist_is_cut_to_the_segments_of_the_window_with_what_they_need():
    text, span = hls_section(media_playlist(24, key_at=3), (105.0, 135.0))
    assert span == (100.0, 140.0)
    lines = text.splitlines()
    assert [line for line in lines if not line.startswith("#")] == ["seg10.m4s", "seg11.m4s", "seg12.m4s", "seg13.m4s"]
    # the init segment and the key from before the window still apply; the sequence moves on by ten
    assert lines[:4] == ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-TARGETDURATION:10", "#EXT-X-MEDIA-SEQUENCE:17"]
    assert lines[4:6] == ['#EXT-X-MAP:URI="init.mp4"', '#EXT-X-KEY:METHOD=AES-128,URI="key.bin"']
    assert lines[-1] == "#EXT-X-ENDLIST" and lines.count('#EXT-X-KEY:METHOD=AES-128,URI="key.bin"') == 1


@pytest.mark.parametrize("playlist", [
    media_playlist(24, extra="#EXT-X-BYTERANGE:1000@0"),  # ranges may continue one another
    media_playlist(24).replace("#EXT-X-ENDLIST\n", ""),  # no end: live
    "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=64000\naudio.m3u8\n#EXT-X-ENDLIST\n",  # variants, not segments
    media_playlist(3),  # all of it is the window
    "not a playlist",
])
def test_an_hls_playlist_that_cannot_be_cut_safely_is_left_whole(playlist):
    assert hls_section(playlist, (105.0, 135.0)) is None


async def test_a_download_ffmpeg_cannot_cut_is_kept_whole_for_the_classifier(front, long_duration, work):
    """yt-dlp names a file served as /long.bin `long.unknown_video`, a format ffmpeg cannot write:
    the song is not refused for it, the whole download goes on to the classifier."""
    shutil.copy(front.root / "long.m4a", front.root / "long.bin")
    front.add_redirect("/watch", f"http://localhost:{front.port}/long.bin")
    async with user_link_fetcher(front, work).fetch(video_known_by_id(front, long_duration)) as audio:
        assert audio.section_s is None
        assert audio.path.stat().st_size == (front.root / "long.m4a").stat().st_size
        assert len(load_audio(audio.path)) / SAMPLE_RATE == pytest.approx(long_duration, abs=1.0)  # it decodes


# -- DASH from a user's link: only the fragments of its middle, after the initialization segment

DASH_SEGMENT_S = 10


@pytest.fixture(scope="session")
def dash_root(audio_root, tmp_path_factory):
    """long.m4a as a static DASH manifest (song.mpd: a SegmentTemplate of ~10 s fMP4 fragments
    after init-stream0.m4s), as ffmpeg writes one for a CDN."""
    root = tmp_path_factory.mktemp("dash")
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(audio_root / "long.m4a"), "-map", "0:a", "-c", "copy",
                    "-f", "dash", "-seg_duration", str(DASH_SEGMENT_S), "-use_template", "1", "-use_timeline", "0",
                    str(root / "song.mpd")], check=True)
    return root


@pytest.fixture
def dash_host(dash_root):
    with FakeAudioServer(dash_root) as server:
        yield server


def dash_media(root) -> list[str]:
    return sorted(p.name for p in root.glob("chunk-*.m4s"))


def fragments_served(server: FakeAudioServer) -> list[str]:
    return [r.path.lstrip("/") for r in server.requests if r.path.endswith(".m4s")]


def segment_list_mpd(init: str, media: list[str], duration: str = "") -> str:
    """A static manifest naming each fragment (SegmentList); `duration`, the fragments' length
    attributes (timescale and duration), or none: then no fragment has a known length."""
    urls = "".join(f'<SegmentURL media="{m}"/>' for m in media)
    return ('<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
            'mediaPresentationDuration="PT4M0S" profiles="urn:mpeg:dash:profile:isoff-live:2011"><Period>'
            '<AdaptationSet contentType="audio" mimeType="audio/mp4" codecs="mp4a.40.2">'
            '<Representation id="a" bandwidth="64000" audioSamplingRate="44100">'
            f'<SegmentList {duration}><Initialization sourceURL="{init}"/>{urls}</SegmentList>'
            "</Representation></AdaptationSet></Period></MPD>")


async def test_a_dash_stream_from_a_user_link_fetches_only_the_fragments_of_its_middle(dash_host, dash_root, audio_root,
                                                                                     long_duration, work):
    media = dash_media(dash_root)
    whole = sum((dash_root / name).stat().st_size for name in media)
    async with user_link_fetcher(dash_host, work).fetch(user_link(dash_host, "/song.mpd")) as audio:
        start, end = audio.section_s
        middle = section_window(long_duration)
        # the fragments' stated lengths (10 s each, the last one too) give the song's length
        assert audio.duration_s == pytest.approx(long_duration, abs=DASH_SEGMENT_S)
        assert start <= middle[0] + DASH_SEGMENT_S / 2 and end >= middle[1] - DASH_SEGMENT_S / 2
        assert end - start <= 30 + 2 * DASH_SEGMENT_S
        served = fragments_served(dash_host)
        assert served[0] == "init-stream0.m4s" and served.count("init-stream0.m4s") == 1
        assert len(served) - 1 <= 4 < len(media)
        assert sum(dash_host.bytes_for("/" + name) for name in served[1:]) < whole / 4
        samples = load_audio(audio.path)  # the classifier reads it
        assert 29.0 <= len(samples) / SAMPLE_RATE <= end - start + 1
        section = decode(audio.path)
        assert section_start_in(decode(audio_root / "long.m4a"), section, start) == pytest.approx(start, abs=2.0)
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("host, link", [("hls_host", "/song.m3u8"), ("dash_host", "/song.mpd")], ids=["hls", "dash"])
async def test_a_stream_longer_than_the_limit_is_refused_before_any_segment(request, host, link, work):
    """An HLS playlist's length is its segments'; a DASH manifest's, its fragments' (yt-dlp states
    none for a plain .mpd link): either way a song over the limit is refused before any is fetched."""
    server = request.getfixturevalue(host)
    fetcher = AudioFetcher(allowed_hosts=frozenset({"localhost"}), tmp_dir=work, timeout_s=30, max_duration_s=60,
                           resolver=table_resolver({"localhost": [PUBLIC]}), public_stand_ins=stand_in(server))
    with pytest.raises(AudioTooLargeError, match="too long"):
        async with fetcher.fetch(user_link(server, link)):
            pass
    assert segments_served(server) == [] and fragments_served(server) == []
    assert list(work.iterdir()) == []


async def test_a_dash_manifest_without_fragment_lengths_is_fetched_whole(dash_host, dash_root, long_duration, work):
    media = dash_media(dash_root)
    dash_host.add_page("/list.mpd", segment_list_mpd("init-stream0.m4s", media), "application/dash+xml")
    async with user_link_fetcher(dash_host, work).fetch(user_link(dash_host, "/list.mpd")) as audio:
        assert audio.section_s is None
        assert fragments_served(dash_host) == ["init-stream0.m4s", *media]
        assert len(load_audio(audio.path)) / SAMPLE_RATE == pytest.approx(long_duration, abs=1.0)
    assert list(work.iterdir()) == []


async def test_a_dash_fragment_on_a_forbidden_host_is_refused_before_any_fragment(dash_host, dash_root, forbidden, work):
    shutil.copy(dash_root / "chunk-stream0-00012.m4s", forbidden.root / "chunk.m4s")
    media = [*dash_media(dash_root)[:3], f"http://127.0.0.1:{forbidden.port}/chunk.m4s"]
    dash_host.add_page("/mixed.mpd", segment_list_mpd("init-stream0.m4s", media, 'timescale="1" duration="10"'),
                       "application/dash+xml")
    with pytest.raises(BlockedURLError):
        async with user_link_fetcher(dash_host, work).fetch(user_link(dash_host, "/mixed.mpd")):
            pass
    assert forbidden.requests == []
    assert fragments_served(dash_host) == []  # refused from the manifest, before the download began
    assert list(work.iterdir()) == []


def dash_fragments(count: int, *, init: bool = True, seconds: float | None = 10.0) -> list[dict]:
    media = [{"path": f"seg{n}.m4s", **({"duration": seconds} if seconds is not None else {})} for n in range(count)]
    return [{"path": "init.mp4"}, *media] if init else media


def test_a_dash_fragment_list_is_cut_to_the_window_after_its_initialization_segment():
    fragments, span = dash_section(dash_fragments(24), (105.0, 135.0))
    assert span == (100.0, 140.0)
    assert [f["path"] for f in fragments] == ["init.mp4", "seg10.m4s", "seg11.m4s", "seg12.m4s", "seg13.m4s"]
    fragments, span = dash_section(dash_fragments(24, init=False), (105.0, 135.0))
    assert [f["path"] for f in fragments] == ["seg10.m4s", "seg11.m4s", "seg12.m4s", "seg13.m4s"]


@pytest.mark.parametrize("fragments", [
    dash_fragments(24, seconds=None),  # no lengths: where the window falls is unknown
    [*dash_fragments(12), {"path": "init2.mp4"}, *dash_fragments(12, init=False)],  # two periods
    [{**f, "path": "song.m4s"} for f in dash_fragments(24)],  # byte ranges of one file, ranges dropped
    [{**f, "range": "0-999"} if "duration" in f else f for f in dash_fragments(24)],  # byte ranges
    [{"path": "init.mp4"}, *dash_fragments(23, init=False), {"path": "seg23.m4s", "duration": 0.0}],
    dash_fragments(3),  # all of it is the window
    lambda ctx: iter(dash_fragments(24)),  # fragments made as the download goes (a live stream)
    None,
])
def test_a_dash_fragment_list_that_cannot_be_cut_safely_is_left_whole(fragments):
    assert dash_section(fragments, (105.0, 135.0)) is None
