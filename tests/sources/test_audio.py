"""Given a resolved song, moodbot fetches only a 30 s section of its audio, through the real
yt-dlp (generic extractor) and plain HTTP Range requests against a local audio server, and
always cleans up after itself."""
from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import correlate

from bot.sources.audio import (
    OGG_TAIL_BYTES,
    AudioFetcher,
    choose_candidate,
    map_ytdlp_error,
    render_source,
    section_window,
)
from bot.sources.models import (
    AudioTooLargeError,
    DownloadError,
    Query,
    QueryKind,
    TrackInfo,
    TrackNotFoundError,
    UnsupportedInputError,
)
from tests.fakes.audio_http import FakeAudioServer, PlaylistEntry


def song(duration_s: float | None, spotify_id: str = "long", title: str = "Long Song") -> TrackInfo:
    return TrackInfo(key=f"spotify:{spotify_id}", title=title, artists=("Band",), duration_s=duration_s,
                     spotify_id=spotify_id)


@contextlib.contextmanager
def serving_one(tmp_path: Path, name: str, data: bytes,
                field: str = "title") -> Iterator[tuple[AudioFetcher, FakeAudioServer]]:
    """A fetcher whose audio search finds `data`, served as `name` ("lying.mp3") by a local host
    answering Range requests (also yielded, for the requests it had): its template fills the
    file's stem from `field` of what is fetched."""
    served, work = tmp_path / "served", tmp_path / "work"
    served.mkdir()
    work.mkdir()
    (served / name).write_bytes(data)
    suffix = Path(name).suffix
    with FakeAudioServer(served) as server:
        yield AudioFetcher(search_template=f"{server.base_url}/{{{field}}}{suffix}", tmp_dir=work), server


DECODE_RATE = 48_000


def decode(path: Path) -> np.ndarray:
    """Mono float samples at DECODE_RATE, via ffmpeg (which reads every container we produce);
    fails the test if ffmpeg reports any error."""
    run = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(DECODE_RATE), "-"],
                         capture_output=True, check=True)
    assert run.stderr == b"", run.stderr[-500:]
    return np.frombuffer(run.stdout, np.float32)


def decoded_seconds(path: Path) -> float:
    return len(decode(path)) / DECODE_RATE


def section_start_in(original: np.ndarray, section: np.ndarray, near_s: float) -> float:
    """Where the section's 6th second sits in the original, searched within ±20 s of `near_s`."""
    rate = DECODE_RATE
    probe = section[5 * rate:6 * rate]
    lo = max(int((near_s - 20) * rate), 0)
    corr = correlate(original[lo:lo + 45 * rate], probe, mode="valid", method="fft")
    return (lo + int(np.argmax(np.abs(corr)))) / rate - 5


# -- pure helpers ----------------------------------------------------------------------------

def test_section_window_is_the_middle_30_s():
    assert section_window(240.0) == (105.0, 135.0)
    assert section_window(20.0) == (0.0, 20.0)
    assert section_window(31.0) == (0.5, 30.5)


@pytest.mark.parametrize("durations, target, expected", [
    ([300.0, 238.0, 100.0], 240.0, 1),
    ([245.0, 236.0], 240.0, 1),
    ([None, 239.0], 240.0, 1),
    ([300.0, 100.0], 240.0, None),  # nothing within 10 s: another cut of the song
    ([300.0, 100.0], None, 0),  # length unknown: the search's first hit
    ([], 240.0, None),
])
def test_choose_candidate_by_duration(durations, target, expected):
    assert choose_candidate(durations, target) == expected


OFFICIAL = "Radiohead - Creep (Official Audio)"
YORU = "YOASOBI「夜に駆ける」Official Music Video"


@pytest.mark.parametrize("titles, durations, song_name, expected", [
    # The search's first hit is the song; uploads of other versions often match its length to the second.
    ([OFFICIAL, "Creep - Radiohead (Karaoke Version)"], [239.4, 238.6], "Radiohead – Creep", 0),
    ([OFFICIAL, "Radiohead - Creep (Instrumental)"], [239.4, 238.6], "Radiohead – Creep", 0),
    ([OFFICIAL, "Creep (Radiohead Cover)"], [239.4, 238.6], "Radiohead – Creep", 0),
    ([OFFICIAL, "Radiohead - Creep [8D AUDIO]"], [239.4, 238.6], "Radiohead – Creep", 0),
    ([OFFICIAL, "creep - radiohead (sped up + reverb)"], [239.4, 238.6], "Radiohead – Creep", 0),
    ([OFFICIAL, "Creep (Nightcore)"], [239.4, 238.6], "Radiohead – Creep", 0),
    ([OFFICIAL, "Radiohead - Creep (Live at Glastonbury 2003)"], [239.4, 238.6], "Radiohead – Creep", 0),
    ([OFFICIAL, "Creep - Radiohead (Remix)"], [239.4, 238.6], "Radiohead – Creep", 0),
    # Uploads made from the record itself, as long as it to the second: a mix the user would hear
    # as another song (the bass pushed, played backwards, one part of the band taken out or left alone).
    ([OFFICIAL, "Radiohead - Creep (BASS BOOSTED)"], [239.4, 238.6], "Radiohead – Creep", 0),
    ([OFFICIAL, "Radiohead - Creep (Reversed)"], [239.4, 238.6], "Radiohead – Creep", 0),
    ([OFFICIAL, "Radiohead - Creep (Vocals Only)"], [239.4, 238.6], "Radiohead – Creep", 0),
    ([OFFICIAL, "Radiohead - Creep [Isolated Vocals]"], [239.4, 238.6], "Radiohead – Creep", 0),
    ([OFFICIAL, "Radiohead - Creep (Drumless)"], [239.4, 238.6], "Radiohead – Creep", 0),
    ([OFFICIAL, "Creep - Radiohead | Backing Track"], [239.4, 238.6], "Radiohead – Creep", 0),
    ([OFFICIAL, "Radiohead - Creep (Minus One)"], [239.4, 238.6], "Radiohead – Creep", 0),
    ([OFFICIAL, "Radiohead - Creep (8-Bit)"], [239.4, 238.6], "Radiohead – Creep", 0),
    ([OFFICIAL, "Creep (Daycore)"], [239.4, 238.6], "Radiohead – Creep", 0),
    ([OFFICIAL, "Radiohead - Creep (En Vivo)"], [239.4, 238.6], "Radiohead – Creep", 0),
    # Length unknown (no Spotify): a video about the song is not the song either.
    (["Creep - Radiohead REACTION", OFFICIAL], [400.0, 239.4], "Creep", 1),
    (["Radiohead - Creep | Guitar Lesson", OFFICIAL], [600.0, 239.4], "Creep", 1),
    (["Creep - Radiohead (Piano Tutorial)", OFFICIAL], [300.0, 239.4], "Creep", 1),
    (["Creep x Karma Police (Mashup)", OFFICIAL], [250.0, 239.4], "Creep", 1),
    (["Radiohead - Creep (1 Hour Loop)", OFFICIAL], [1140.0, 239.4], "Creep", 1),
    # A cover or karaoke upload named in the song's own language: a cover sung over the record's
    # instrumental ("歌ってみた", "I tried singing it") is as long as the record to the second.
    ([YORU, "【歌ってみた】夜に駆ける / YOASOBI"], [239.4, 238.6], "YOASOBI – 夜に駆ける", 0),
    ([YORU, "夜に駆ける / YOASOBI (Covered by 花譜)"], [239.4, 238.6], "YOASOBI – 夜に駆ける", 0),
    ([YORU, "YOASOBI「夜に駆ける」弾いてみた"], [239.4, 238.6], "YOASOBI – 夜に駆ける", 0),
    ([YORU, "夜に駆ける - YOASOBI【カラオケ】"], [239.4, 238.6], "YOASOBI – 夜に駆ける", 0),
    ([YORU, "夜に駆ける / YOASOBI 【オフボーカル】"], [239.4, 238.6], "YOASOBI – 夜に駆ける", 0),
    (["Кино - Группа крови", "Кино - Группа крови (кавер)"], [239.4, 238.6], "Кино – Группа крови", 0),
    (["Кино - Группа крови", "Группа крови - Караоке"], [239.4, 238.6], "Кино – Группа крови", 0),
    (["Кино - Группа крови", "Кино - Группа крови (минусовка)"], [239.4, 238.6], "Кино – Группа крови", 0),
    (["아이유 - 밤편지", "아이유 - 밤편지 (커버)"], [239.4, 238.6], "IU – 밤편지", 0),
    (["아이유 - 밤편지", "밤편지 노래방"], [239.4, 238.6], "IU – 밤편지", 0),
    (["周杰伦 - 晴天", "晴天 翻唱"], [239.4, 238.6], "周杰倫 – 晴天", 0),
    (["周杰伦 - 晴天", "周杰伦 晴天 伴奏"], [239.4, 238.6], "周杰倫 – 晴天", 0),
    # ...unless it is what the song's name says ("Chain Reaction", "Reverse"): that is no other version.
    (["Diana Ross - Chain Reaction (Official Video)"], [238.0], "Diana Ross – Chain Reaction", 0),
    # Then the closest length, as before, among the hits that are the song.
    (["Radiohead - Creep (Karaoke)", OFFICIAL, "Radiohead - Creep (Lyrics)"], [238.6, 245.0, 239.0], "Radiohead – Creep", 2),
    # The version Spotify named is no other version.
    ([OFFICIAL, "Radiohead - Creep (Live at Glastonbury 2003)"], [235.0, 238.6], "Radiohead – Creep - Live", 1),
    (["Creep (Karaoke Version)", OFFICIAL], [238.6, 245.0], "Karaoke Hits – Creep (Karaoke Version)", 0),
    # Only other versions fit: the closest of them, rather than nothing.
    (["Creep (Karaoke Version)", "Creep (8D Audio)", OFFICIAL], [238.6, 240.0, 300.0], "Radiohead – Creep", 0),
    # Length unknown: the first hit that is the song.
    (["Creep (Karaoke Version)", OFFICIAL], [238.6, 245.0], "Creep", 1),
])
def test_a_search_hit_of_another_version_loses_to_the_song(titles, durations, song_name, expected):
    target = None if song_name == "Creep" else 238.64
    assert choose_candidate(durations, target, titles=titles, song=song_name) == expected


def test_render_source():
    track = TrackInfo(key="spotify:x", title="Creep", artists=("Radiohead",), spotify_id="abc", isrc="GB1")
    assert render_source("ytsearch5:{artists} - {title} audio", track) == "ytsearch5:Radiohead - Creep audio"
    text = Query(kind=QueryKind.TEXT, text="Creep")
    assert render_source("ytsearch5:{artists} - {title} audio", text) == "ytsearch5:Creep audio"
    odd = TrackInfo(key="k", title="A/B ?&", spotify_id="abc")
    assert render_source("http://h/a/{spotify_id}/{title}.ogg", odd) == "http://h/a/abc/A%2FB%20%3F%26.ogg"
    with pytest.raises(TrackNotFoundError):
        render_source("http://h/a/{spotify_id}.ogg", text)


@pytest.mark.parametrize("template", ["ytsearch1:{isrc}", "ytsearch3:{isrc} {spotify_id}", "ytsearch1: {isrc} - "])
def test_a_search_template_whose_every_field_is_empty_searches_for_nothing(template):
    """AUDIO_SEARCH=ytsearch1:{isrc} and a track with no ISRC searched YouTube for "" (whatever it
    answers that: no song of the user's); it is "No audio found", as a URL template's gap is."""
    track = TrackInfo(key="spotify:x", title="Creep", artists=("Radiohead",), spotify_id="", isrc=None)
    with pytest.raises(TrackNotFoundError, match="No audio found for “Radiohead – Creep”"):
        render_source(template, track)
    assert render_source("ytsearch1:{isrc} {title}", track) == "ytsearch1: Creep"  # one field is enough


@pytest.mark.parametrize("message, error, words", [
    ("ERROR: [youtube] abc: Sign in to confirm you’re not a bot", DownloadError, "YouTube refused the download"),
    ("ERROR: [youtube] abc: HTTP Error 403: Forbidden", DownloadError, "HTTP 403"),
    ("ERROR: Unable to download webpage: The read operation timed out", DownloadError, "took too long"),
    ("ERROR: [youtube] abc: Video unavailable", TrackNotFoundError, "No audio found for “Song”"),
    ("ERROR: Unsupported URL: http://x", TrackNotFoundError, "No audio found"),
    ("ERROR: File is larger than max-filesize", AudioTooLargeError, "too big"),
    # what yt-dlp says with no route to YouTube: no socket internals in the reply
    ("ERROR: [youtube:search] Unable to download API page: HTTPSConnection(host='www.youtube.com', port=443): "
     "Failed to resolve 'www.youtube.com'", DownloadError, "I couldn't reach YouTube"),
    ("ERROR: Unable to download webpage: <urlopen error [Errno 111] Connection refused>", DownloadError,
     "I couldn't reach YouTube"),
    ("ERROR: Unable to download webpage: HTTP Error 429: Too Many Requests", DownloadError, "HTTP 429"),
])
def test_ytdlp_errors_are_named_plainly(message, error, words):
    mapped = map_ytdlp_error(message, "Song", "https://www.youtube.com/watch?v=abc")
    assert isinstance(mapped, error) and words in str(mapped)
    assert "Connection" not in str(mapped) and "Errno" not in str(mapped)



COOKIES_HINT = ("Use --cookies-from-browser or --cookies for the authentication. See  "
                "https://github.com/yt-dlp/yt-dlp/wiki/FAQ#how-do-i-pass-cookies-to-yt-dlp  for how to manually "
                "pass cookies")


@pytest.mark.parametrize("message, reason", [
    # yt-dlp's whole messages, as it words them for YouTube's most common refusals
    (f"ERROR: [youtube] abc: Sign in to confirm you’re not a bot. {COOKIES_HINT}. Also see  "
     "https://github.com/yt-dlp/yt-dlp/wiki/Extractors#exporting-youtube-cookies  for tips",
     "Sign in to confirm you’re not a bot"),
    (f"ERROR: [youtube] abc: Sign in to confirm your age. This video may be inappropriate for some users. {COOKIES_HINT}",
     "Sign in to confirm your age. This video may be inappropriate for some users"),
    (f"ERROR: [youtube] abc: Private video. Sign in if you've been granted access to this video. {COOKIES_HINT}",
     "Private video. Sign in if you've been granted access to this video"),
    ("ERROR: [youtube] abc: Requested format is not available. Use --list-formats for a list of available formats",
     "Requested format is not available"),
])
def test_ytdlp_refusals_keep_youtubes_words_without_ytdlps_advice(message, reason):
    # The user can't pass cookies to anything: the advice meant for yt-dlp's user is left out,
    # and the reason is never cut in the middle of a word or a URL.
    assert str(map_ytdlp_error(message, "Song", "https://www.youtube.com/watch?v=abc")) == \
        f"YouTube refused the download ({reason})."


@pytest.mark.parametrize("why", [
    "This video has been removed by the uploader",
    "This video is no longer available because the YouTube account associated with this video has been terminated.",
    "This video contains content from SME, who has blocked it in your country on copyright grounds.",
    "This video has been removed for violating YouTube's Terms of Service",
])
def test_a_video_youtube_calls_unavailable_is_not_found_with_youtube_s_reason(why):
    """yt-dlp puts YouTube's reason after "Video unavailable."; the answer was "No audio found for
    “<the link>”." alone, as for a search that found nothing, and the user could not tell a video
    removed from a link mistyped."""
    mapped = map_ytdlp_error(f"ERROR: [youtube] abc: Video unavailable. {why}", "Song", "https://www.youtube.com/watch?v=abc")
    assert isinstance(mapped, TrackNotFoundError)
    assert str(mapped) == f"No audio found for “Song” (YouTube: {why.rstrip('.')})."


# -- against the local audio server ----------------------------------------------------------

# Range requests per section: the header, (an MP4's index, after its audio), the window's bytes.
RANGE_REQUESTS = {"ogg": 2, "webm": 2, "m4a": 3, "mp3": 2}


@pytest.mark.parametrize("ext", ["ogg", "webm", "m4a", "mp3"])
async def test_section_download_moves_a_fraction_of_the_bytes(audio_server, audio_root, long_duration, tmp_path, ext):
    served = f"/long.{ext}"
    size = (audio_root / f"long.{ext}").stat().st_size
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/{spotify_id}." + ext, tmp_dir=tmp_path)
    async with fetcher.fetch(song(long_duration)) as audio:
        section_bytes = audio_server.bytes_for(served)
        assert audio.bytes_downloaded == section_bytes
        assert len(audio_server.requests_for(served)) == RANGE_REQUESTS[ext]
        assert all(r.range for r in audio_server.requests_for(served))
        assert audio.path.suffix == f".{ext}"  # same container, no conversion
        section = decode(audio.path)
        assert len(section) / DECODE_RATE == pytest.approx(30.0, abs=1.0)
        if ext == "ogg":
            assert sf.info(str(audio.path)).duration == pytest.approx(30.0, abs=1.0)  # the classifier's reader
        start, end = audio.section_s
        # The middle of the song, and where the section says it is. An Ogg's or WebM's starts at
        # the first whole page or cluster in the window's share of the bytes, a few seconds off
        # where the bit rate varies (Opus here: 4.8 s early; the window was reported before).
        assert (start + end) / 2 == pytest.approx(long_duration / 2, abs=0.05 if ext in ("m4a", "mp3") else 6.0)
        assert section_start_in(decode(audio_root / f"long.{ext}"), section, start) == pytest.approx(start, abs=0.05)
        kept, cut = audio.path, audio.section_s
    assert not kept.exists() and list(tmp_path.iterdir()) == []
    assert section_bytes * 4 < size

    audio_server.reset_counts()
    unknown = AudioFetcher(search_template=audio_server.base_url + "/{title}." + ext, tmp_dir=tmp_path)
    async with unknown.fetch(Query(kind=QueryKind.TEXT, text="long")) as audio:  # the song's length not known
        # The file says it (an Ogg in its last page: one more request), and the section is the same.
        assert audio.duration_s == pytest.approx(long_duration, abs=0.1)
        assert audio.section_s == pytest.approx(cut, abs=0.1)
        assert audio.bytes_downloaded == audio_server.bytes_for(served)
        assert audio.bytes_downloaded == pytest.approx(section_bytes + OGG_TAIL_BYTES * (ext == "ogg"), rel=0.01)
        assert len(audio_server.requests_for(served)) == RANGE_REQUESTS[ext] + (ext == "ogg")


async def test_other_containers_are_cut_by_ytdlp_download_ranges(audio_server, audio_root, long_duration, tmp_path):
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/{spotify_id}.wma", tmp_dir=tmp_path)
    async with fetcher.fetch(song(long_duration)) as audio:
        assert audio.path.suffix == ".wma"  # no conversion
        # ffmpeg cuts a stream copy at packet boundaries: about 30 s, far from the 240 s song.
        section = decode(audio.path)
        assert 29.0 <= len(section) / DECODE_RATE <= 40.0
        assert audio.section_s == pytest.approx(section_window(long_duration))
        start = audio.section_s[0]
        assert section_start_in(decode(audio_root / "long.wma"), section, start) == pytest.approx(start, abs=10.0)
        assert audio.youtube_id is None
    assert list(tmp_path.iterdir()) == []


async def test_search_hit_closest_to_the_songs_length_wins(audio_server, long_duration, tmp_path):
    audio_server.add_playlist("/search.xspf", [
        PlaylistEntry("/long.webm", long_duration + 60, "extended mix"),
        PlaylistEntry("/long.ogg", long_duration - 2, "the song"),
        PlaylistEntry("/clip.ogg", 30, "a clip"),
    ])
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/search.xspf?q={artists}+{title}", tmp_dir=tmp_path)
    async with fetcher.fetch(song(long_duration)) as audio:
        assert audio.title == "the song"
        assert audio.path.name == "section.ogg"  # the chosen hit's file was cut by Range requests
    assert audio_server.bytes_for("/long.webm") == 0 and audio_server.bytes_for("/clip.ogg") == 0
    with pytest.raises(TrackNotFoundError) as info:
        async with fetcher.fetch(song(long_duration + 100, title="Other Cut")):
            pass
    assert "Other Cut" in str(info.value)


async def test_a_search_hit_of_another_version_loses_though_its_length_is_closer(audio_server, long_duration, tmp_path):
    audio_server.add_playlist("/search.xspf", [
        PlaylistEntry("/long.ogg", long_duration - 3, "Band - Long Song (Official Video)"),
        PlaylistEntry("/long.webm", long_duration, "Long Song - Band (Karaoke Version)"),
        PlaylistEntry("/long.mp3", long_duration + 1, "Band - Long Song [8D AUDIO]"),
    ])
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/search.xspf?q={artists}+{title}", tmp_dir=tmp_path)
    async with fetcher.fetch(song(long_duration)) as audio:
        assert audio.title == "Band - Long Song (Official Video)"
    assert audio_server.bytes_for("/long.webm") == 0 and audio_server.bytes_for("/long.mp3") == 0


async def test_free_text_without_spotify_is_fetched_from_the_search_with_no_video_id(audio_server, tmp_path):
    """No video id: the use case keys such a song by its content's hash (tests/bot/test_mood_by_name.py)."""
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/{title}.ogg", tmp_dir=tmp_path)
    query = Query(kind=QueryKind.TEXT, text="clip")
    async with fetcher.fetch(query) as audio:
        assert audio.youtube_id is None and audio.path.stat().st_size > 0
        assert audio.source_url == audio_server.base_url + "/clip.ogg"


async def test_missing_audio_is_not_found(audio_server, tmp_path):
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/{spotify_id}.ogg", tmp_dir=tmp_path)
    with pytest.raises(TrackNotFoundError) as info:
        async with fetcher.fetch(song(200.0, spotify_id="nope", title="Ghost")):
            pass
    assert str(info.value) == "No audio found for “Band – Ghost”."
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", ["ogg", "mp3"])
async def test_an_empty_file_on_the_audio_host_is_called_empty(tmp_path, ext):
    served, downloads = tmp_path / "served", tmp_path / "downloads"
    served.mkdir(), downloads.mkdir()
    (served / f"empty.{ext}").write_bytes(b"")
    with FakeAudioServer(served) as audio_server:
        for template, item, label in ((f"/{{spotify_id}}.{ext}", song(200.0, spotify_id="empty"), "Band – Long Song"),
                                      (f"/{{title}}.{ext}", Query(kind=QueryKind.TEXT, text="empty"), "empty")):
            fetcher = AudioFetcher(search_template=audio_server.base_url + template, tmp_dir=downloads)
            with pytest.raises(TrackNotFoundError) as info:
                async with fetcher.fetch(item):
                    pass
            assert str(info.value) == f"The audio host sent an empty file for “{label}”."
    assert list(downloads.iterdir()) == []


async def test_server_error_is_named(audio_server, tmp_path):
    for template, track in ((audio_server.base_url + "/error/{spotify_id}.ogg", song(200.0)),
                            (audio_server.base_url + "/error/{title}.ogg", Query(kind=QueryKind.TEXT, text="x"))):
        fetcher = AudioFetcher(search_template=template, tmp_dir=tmp_path)
        with pytest.raises(DownloadError) as info:
            async with fetcher.fetch(track):
                pass
        assert "refused the download (HTTP 500)" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("template, item", [
    ("/hang/{spotify_id}.ogg", song(200.0)),  # Range path
    ("/hang/{title}.ogg", Query(kind=QueryKind.TEXT, text="x")),  # yt-dlp path
])
async def test_a_hanging_server_times_out(audio_server, tmp_path, template, item):
    fetcher = AudioFetcher(search_template=audio_server.base_url + template, tmp_dir=tmp_path, timeout_s=1.5)
    started = time.monotonic()
    with pytest.raises(DownloadError) as info:
        async with fetcher.fetch(item):
            pass
    assert "took too long" in str(info.value)
    assert time.monotonic() - started < 5
    assert list(tmp_path.iterdir()) == []


async def test_too_big_and_too_long_are_refused(audio_server, long_duration, tmp_path):
    small = AudioFetcher(search_template=audio_server.base_url + "/{title}.ogg", tmp_dir=tmp_path, max_bytes=100_000)
    with pytest.raises(AudioTooLargeError):
        async with small.fetch(Query(kind=QueryKind.TEXT, text="long")):
            pass
    short_limit = AudioFetcher(search_template=audio_server.base_url + "/{spotify_id}.ogg", tmp_dir=tmp_path,
                               max_duration_s=60)
    audio_server.reset_counts()
    with pytest.raises(AudioTooLargeError):
        async with short_limit.fetch(song(long_duration)):
            pass
    assert audio_server.requests == []  # Spotify's length was enough to say no
    audio_server.add_playlist("/search.xspf", [PlaylistEntry("/long.ogg", long_duration, "the song")])
    searching = AudioFetcher(search_template=audio_server.base_url + "/search.xspf?q={title}", tmp_dir=tmp_path,
                             max_duration_s=60)
    with pytest.raises(AudioTooLargeError):  # length learnt from the search result
        async with searching.fetch(Query(kind=QueryKind.TEXT, text="long")):
            pass
    assert audio_server.bytes_for("/long.ogg") == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", ["ogg", "webm"])
async def test_a_file_that_states_a_length_over_the_limit_is_refused_before_its_audio(audio_server, tmp_path, ext):
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/{title}." + ext, tmp_dir=tmp_path,
                           max_duration_s=60)
    with pytest.raises(AudioTooLargeError, match="“long” is too long for me to listen to"):
        async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="long")):  # no length known beforehand
            pass
    assert audio_server.bytes_for(f"/long.{ext}") <= 16384 + OGG_TAIL_BYTES  # its header (and an Ogg's end)
    assert list(tmp_path.iterdir()) == []


async def test_the_file_is_removed_even_when_the_caller_fails(audio_server, long_duration, tmp_path):
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/{spotify_id}.ogg", tmp_dir=tmp_path)
    with pytest.raises(RuntimeError):
        async with fetcher.fetch(song(long_duration)) as audio:
            assert audio.path.exists()
            raise RuntimeError("classifier crashed")
    assert not audio.path.exists() and list(tmp_path.iterdir()) == []


async def test_a_preview_barely_longer_than_the_section_is_fetched_whole(audio_server, audio_root, tmp_path):
    """A 30-odd-second preview is not cut: the classifier gets exactly the file the host serves."""
    clip = audio_root / "clip.ogg"
    duration = sf.info(str(clip)).duration
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/{spotify_id}.ogg", tmp_dir=tmp_path)
    async with fetcher.fetch(song(duration + 10.0, spotify_id="clip")) as audio:
        assert audio.path.read_bytes() == clip.read_bytes()


async def test_a_live_stream_is_refused_at_once(audio_root, tmp_path):
    """A live stream never ends: it must be named as such, not downloaded until the timeout and
    then called slow ("try again later" would never help)."""
    served = tmp_path / "served"
    served.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(audio_root / "clip.ogg"), "-c:a", "aac", "-f", "mpegts",
                    str(served / "seg1.ts")], check=True)
    # No #EXT-X-ENDLIST: the playlist is still growing, as a live stream's does.
    (served / "live.m3u8").write_text("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:30\n"
                                      "#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:30.0,\nseg1.ts\n")
    work = tmp_path / "work"
    with FakeAudioServer(served) as server:
        fetcher = AudioFetcher(search_template=server.url("/live.m3u8"), tmp_dir=work, timeout_s=10)
        started = time.monotonic()
        with pytest.raises(UnsupportedInputError) as info:
            async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="lofi radio")):
                pass
        assert time.monotonic() - started < 5
        assert str(info.value) == "“lofi radio” is a live stream — send me a recorded song instead."
        assert not server.requests_for("/seg1.ts")
    assert list(work.iterdir()) == []


async def test_a_live_search_hit_gives_way_to_the_next_one(audio_root, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(audio_root / "clip.ogg", served / "clip.ogg")
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(audio_root / "clip.ogg"), "-c:a", "aac", "-f", "mpegts",
                    str(served / "seg1.ts")], check=True)
    (served / "live.m3u8").write_text("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:30\n"
                                      "#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:30.0,\nseg1.ts\n")
    with FakeAudioServer(served) as server:
        # A feed's items are links to resolve, as YouTube's search hits are: whether one is live
        # shows only once it is resolved.
        items = "".join(f"<item><title>{title}</title><link>{server.url(path)}</link>"
                        f"<enclosure url=\"{server.url(path)}\" type=\"audio/x\"/></item>"
                        for title, path in (("lofi radio 24/7", "/live.m3u8"), ("lofi song", "/clip.ogg")))
        (served / "search.xml").write_text(f"<rss version=\"2.0\"><channel><title>hits</title>{items}</channel></rss>")
        fetcher = AudioFetcher(search_template=server.url("/search.xml?q={title}"), tmp_dir=tmp_path / "work")
        async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="lofi")) as audio:
            assert audio.source_url.endswith("/clip.ogg")
        assert not server.requests_for("/seg1.ts")


async def test_a_search_whose_first_three_hits_are_live_streams_is_refused_as_one(audio_server, tmp_path):
    """Each hit read costs a request or more (a video's page): three are tried
    at most, and the song after them is not looked at."""
    streams = [f"/radio-{n}.m3u8" for n in range(3)]
    for stream in streams:
        audio_server.add_live_stream(stream)
    audio_server.add_feed("/search.rss", [*(PlaylistEntry(s, 0.0, "lofi hip hop radio") for s in streams),
                                          PlaylistEntry("/clip.ogg", 30.0, "lofi song")])
    fetcher = AudioFetcher(search_template=audio_server.url("/search.rss?q={title}"), tmp_dir=tmp_path)

    with pytest.raises(UnsupportedInputError) as info:
        async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="lofi")):
            pass

    assert str(info.value) == "“lofi” is a live stream — send me a recorded song instead."
    assert all(audio_server.requests_for(stream) for stream in streams)
    assert not audio_server.requests_for("/clip.ogg")


# -- a host whose answer to a range is no HTTP: yt-dlp's way, or the host called unreachable ---

GARBLED_RANGES = {  # what http.client raises an HTTPException for, which is no OSError
    "status line": b"HTTP/1.1 2O6 Partial Content\r\nContent-Length: 0\r\n\r\n",
    "cut chunked body": b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-16383/99999\r\n"
                        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n4000\r\nOggS",
    "bad chunk size": b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-16383/99999\r\n"
                      b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nOggS\r\n",
}


@pytest.mark.parametrize("answer", GARBLED_RANGES.values(), ids=GARBLED_RANGES.keys())
async def test_a_search_hit_whose_host_garbles_a_range_is_still_fetched_by_ytdlp(audio_server, audio_root, tmp_path,
                                                                                answer):
    clip = audio_root / "clip.ogg"
    duration = sf.info(str(clip)).duration
    audio_server.add_playlist("/search.xspf", [PlaylistEntry("/clip.ogg", duration, "the song")])
    audio_server.garble_ranges("/clip.ogg", answer)  # the first range only: yt-dlp's whole GET is answered
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/search.xspf?q={title}", tmp_dir=tmp_path)
    async with fetcher.fetch(song(duration, spotify_id="clip", title="the song")) as audio:
        assert audio.path.read_bytes() == clip.read_bytes()
    gets = [r for r in audio_server.requests_for("/clip.ogg") if r.method == "GET"]
    assert [r.range is not None for r in gets] == [True, False]  # the garbled range, then yt-dlp's download
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("answer", GARBLED_RANGES.values(), ids=GARBLED_RANGES.keys())
async def test_a_file_whose_host_garbles_a_range_is_a_host_that_could_not_be_reached(audio_server, tmp_path, answer):
    audio_server.garble_ranges("/long.ogg", answer)
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/{spotify_id}.ogg", tmp_dir=tmp_path)
    with pytest.raises(DownloadError, match="^The audio host could not be reached.$"):
        async with fetcher.fetch(song(240.0)):
            pass
    assert list(tmp_path.iterdir()) == []


async def test_an_audio_host_whose_name_no_dns_can_hold_is_a_host_that_could_not_be_reached(audio_server, tmp_path):
    # An empty label: the system's resolver refuses the name before any lookup, with no OSError.
    template = f"http://a..localhost:{audio_server.port}/{{spotify_id}}.ogg"
    with pytest.raises(DownloadError, match="^The audio host could not be reached.$"):
        async with AudioFetcher(search_template=template, tmp_dir=tmp_path).fetch(song(240.0)):
            pass
    assert list(tmp_path.iterdir()) == []
