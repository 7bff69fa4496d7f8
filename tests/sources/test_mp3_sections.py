"""An MP3 song's 30 s section through Range requests: the window's bytes (by the Xing table of
contents of a VBR file, else in proportion), cut to whole frames from the first place where
frames follow one another. An ID3 tag with cover art at the front is stepped over, not fetched."""
from __future__ import annotations

import pytest

from bot.sources import mp3section as mp3
from bot.sources import ranged
from bot.sources.audio import AudioFetcher, section_window
from bot.sources.models import AudioTooLargeError, Query, QueryKind
from tests.fakes.audio_http import FakeAudioServer
from tests.sources.test_audio import DECODE_RATE, decode, section_start_in, serving_one, song
from tests.sources.test_mp4_sections import ffmpeg, with_cover_art


@pytest.fixture(scope="module")
def mp3_root(audio_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("mp3")
    source = audio_root / "long.ogg"
    ffmpeg("-i", str(source), "-c:a", "libmp3lame", "-b:a", "64k", str(root / "cbr.mp3"))
    ffmpeg("-i", str(source), "-c:a", "libmp3lame", "-q:a", "4", str(root / "vbr.mp3"))  # with a Xing table
    # A podcast's rate: the first frame, LAME's "Info" header, is at a higher bit rate than the
    # rest (56 kbit/s against 48: the header would not fit in a 48 kbit/s frame at 22 kHz).
    ffmpeg("-i", str(source), "-ar", "22050", "-c:a", "libmp3lame", "-b:a", "48k", str(root / "low.mp3"))
    with_cover_art(root / "vbr.mp3", root / "cover.mp3", "-id3v2_version", "3")
    # At a large file's rate (LAME's average bit rate mode, 160 kbit/s, a Xing table too), a header
    # that counts four times the frames still leaves its bytes over 32 kbit/s.
    ffmpeg("-i", str(source), "-c:a", "libmp3lame", "-abr", "1", "-b:a", "160k", str(root / "abr.mp3"))
    return root


@pytest.fixture(scope="module")
def mp3_server(mp3_root):
    with FakeAudioServer(mp3_root) as server:
        yield server


async def fetched_section(server, root, ext: str, name: str, requests: int, long_duration: float, tmp_path,
                          original) -> tuple[float, float]:
    """Fetches the song `name`.`ext` (its length known) and checks what a section of a file of
    frames must be: cut here (not by yt-dlp) from Range requests alone, `requests` of them, under a
    sixth of the file's bytes, 30 s of audio where the song's middle 30 s are. Returns (where it
    says it starts, where it is found in `original`: the song decoded)."""
    served = f"/{name}.{ext}"
    size = (root / served.lstrip("/")).stat().st_size
    fetcher = AudioFetcher(search_template=server.base_url + "/{spotify_id}." + ext, tmp_dir=tmp_path)
    server.reset_counts()
    async with fetcher.fetch(song(long_duration, spotify_id=name)) as audio:
        assert audio.path.name == f"section.{ext}"  # not handed to yt-dlp
        sent = server.requests_for(served)
        assert all(r.range for r in sent) and len(sent) == requests, sent  # cover art: the frames after it
        assert audio.bytes_downloaded == server.bytes_for(served) < size / 6
        section = decode(audio.path)
        start, end = audio.section_s
        assert len(section) / DECODE_RATE == pytest.approx(30.0, abs=0.1) == end - start
        assert start == pytest.approx(section_window(long_duration)[0], abs=0.1)
        found = section_start_in(original, section, start)
    assert list(tmp_path.iterdir()) == []
    return start, found


@pytest.mark.parametrize("name, requests", [("cbr", 2), ("vbr", 2), ("cover", 3)])
async def test_an_mp3_section_is_the_middle_30_s_from_a_fraction_of_the_bytes(mp3_server, mp3_root, long_duration,
                                                                              tmp_path, name, requests):
    start, found = await fetched_section(mp3_server, mp3_root, "mp3", name, requests, long_duration, tmp_path,
                                         decode(mp3_root / f"{name}.mp3"))
    # Where the section says it starts: exact in proportion (CBR), within 0.5 s by the table (VBR).
    assert found == pytest.approx(start, abs=0.1 if name == "cbr" else 0.5)


def test_frame_headers_give_their_lengths(mp3_root):
    data = (mp3_root / "cbr.mp3").read_bytes()
    at = mp3.audio_start(data)
    frame = mp3.read_frame(data, mp3.first_frame(data, at))
    assert (frame.version, frame.layer, frame.sample_rate, frame.samples) == (1, 3, 48_000, 1152)
    assert frame.length in (192, 193)  # 144 x 64 kbit/s / 48 kHz, + padding
    assert mp3.read_frame(b"\xff\xfb\xf4\xc4", 0) is None  # bit rate index 15: "bad"
    assert mp3.read_frame(b"\xff\xfb\x5c\xc4", 0) is None  # sample rate index 3: reserved
    assert mp3.read_frame(b"\xff\xe9\x54\xc4", 0) is None  # MPEG version 01: reserved


def test_the_table_of_contents_maps_time_to_bytes_and_back(mp3_root):
    data = (mp3_root / "vbr.mp3").read_bytes()
    first = mp3.audio_start(data)
    toc = mp3.xing(data, first)
    assert toc.points is not None and toc.points[0] == 0 and list(toc.points) == sorted(toc.points)
    assert toc.bytes == pytest.approx(len(data) - first, abs=1024)
    for share in (0.0, 0.25, 0.4375, 0.9):
        offset = mp3.byte_at(share, toc, first, len(data))
        assert mp3.time_at(offset, toc, first, len(data), 200.0) == pytest.approx(share * 200.0, abs=0.01)
    cbr = (mp3_root / "cbr.mp3").read_bytes()
    assert mp3.xing(cbr, 0) is None  # an ID3 tag there, not a frame
    info = mp3.xing(cbr, mp3.audio_start(cbr))  # LAME's "Info": a constant bit rate, no table needed
    assert info.points is None and info.frames and info.bytes == pytest.approx(len(cbr) - mp3.audio_start(cbr), rel=0.01)


def test_what_is_not_a_run_of_frames_gives_none(mp3_root):
    data = (mp3_root / "cbr.mp3").read_bytes()
    middle = data[len(data) // 2:len(data) // 2 + 50_000]
    cut = mp3.splice_section(middle, 5.0)
    assert cut is not None and cut[2] == pytest.approx(5.0, abs=0.03)
    assert mp3.splice_section(b"\xff" * 5000) is None
    assert mp3.splice_section(bytes(range(256)) * 40) is None
    assert mp3.audio_start(b"ID3\x03\x00\x00\x80\x00\x00\x00") is None  # not a syncsafe size


def test_a_cut_short_file_whose_table_places_the_window_past_its_end_asks_for_no_bytes_there(mp3_root, tmp_path,
                                                                                               long_duration):
    """A VBR MP3 cut short (a download that stopped) still states the whole song in its Xing
    header, whose table places the window past the file's end. No range is asked for there (a host
    answers 416, which reached the user as 'The audio host refused the download'): the cutter gives
    None, and yt-dlp has its turn. (Its byte count is not the file's: it is not opened at all now;
    a cutter by that header still asks nothing past the end.)"""
    data = (mp3_root / "vbr.mp3").read_bytes()
    (tmp_path / "short.mp3").write_bytes(data[:len(data) * 2 // 5])
    with FakeAudioServer(tmp_path) as server:
        url = server.url("/short.mp3")
        file = ranged.RangedFile(url, ranged.http_range(url, 0, 16383, 5.0), 5.0, {}, 50 << 20)
        assert ranged.FramesCut.open(file) is None
        first = mp3.audio_start(file.head)
        cutter = ranged.FramesCut(file, first, mp3.read_frame(file.head, first), mp3.xing(file.head, first))
        assert cutter.toc.points is not None and cutter.toc.bytes > file.size
        assert cutter.cut(section_window(long_duration), long_duration) is None
        ranges = [tuple(map(int, r.range.removeprefix("bytes=").split("-"))) for r in server.requests_for("/short.mp3")]
        assert all(first <= last < file.size for first, last in ranges), ranges


@pytest.mark.parametrize("name", ["cbr", "vbr", "cover", "low"])
async def test_an_mp3_of_unknown_length_is_cut_by_the_length_its_frames_state(mp3_server, long_duration, tmp_path,
                                                                              name):
    """By the frame count of the Xing header (VBR) or LAME's Info header (CBR), else the file's
    size at the first frame's bit rate. A low-rate file's Info frame is bigger than the others: its
    bit rate made the song 14% shorter than it is."""
    fetcher = AudioFetcher(search_template=mp3_server.base_url + "/{title}.mp3", tmp_dir=tmp_path)
    async with fetcher.fetch(Query(kind=QueryKind.TEXT, text=name)) as audio:
        assert audio.path.name == "section.mp3"
        assert audio.duration_s == pytest.approx(long_duration, abs=0.1)
        assert audio.section_s[0] == pytest.approx(section_window(long_duration)[0], abs=0.1)


def with_stated_frames(data: bytes, scale: float) -> bytes:
    """`data` with its Xing/Info header's frame count multiplied by `scale` (a header that lies)."""
    first = mp3.audio_start(data)
    toc = mp3.xing(data, first)
    tag = next(data.index(name, first, first + 64) for name in (b"Xing", b"Info") if name in data[first:first + 64])
    assert int.from_bytes(data[tag + 4:tag + 8], "big") & 1  # the count is the first field
    frames = round(toc.frames * scale)
    lying = data[:tag + 8] + frames.to_bytes(4, "big") + data[tag + 12:]
    assert mp3.xing(lying, first).frames == frames
    return lying


@pytest.mark.parametrize("name", ["cbr", "vbr"])
async def test_a_header_that_states_more_frames_than_the_file_holds_is_not_believed(mp3_root, long_duration, tmp_path,
                                                                                   name):
    """A Xing (VBR) or Info (CBR) header whose frame count makes the song ten times longer than it
    is: the file's bytes would be under 32 kbit/s, less than the smallest frame of the stream
    takes, over that length. The count was believed, and a 4-minute song refused as too long; now
    the length is the file's size at its first frame's bit rate, as for a file without the header
    (as the attachment decoder ignores a length the file is too small to hold)."""
    data = with_stated_frames((mp3_root / f"{name}.mp3").read_bytes(), 10)
    with serving_one(tmp_path, "lying.mp3", data) as (fetcher, _):
        async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="lying")) as audio:
            assert audio.path.name == "section.mp3"
            if name == "cbr":  # every frame the first one's size: exact
                assert audio.duration_s == pytest.approx(long_duration, abs=0.1)
            else:  # at the Xing frame's bit rate: no length the file cannot hold at 32 kbit/s
                assert audio.duration_s < len(data) * 8 / 32_000
            start, end = audio.section_s
            assert len(decode(audio.path)) / DECODE_RATE == pytest.approx(end - start, abs=0.1)
            # The window's bytes by the table for a length that is not the song's: a VBR one's
            # section is shorter (28 s of the test song), no longer.
            assert 20.0 < end - start < 30.1


@pytest.mark.parametrize("name", ["cbr", "vbr"])
async def test_an_honest_header_over_the_limit_is_still_refused_from_its_first_bytes(mp3_server, tmp_path, name):
    fetcher = AudioFetcher(search_template=mp3_server.base_url + "/{title}.mp3", tmp_dir=tmp_path, max_duration_s=60)
    mp3_server.reset_counts()
    with pytest.raises(AudioTooLargeError, match=f"“{name}” is too long for me to listen to"):
        async with fetcher.fetch(Query(kind=QueryKind.TEXT, text=name)):
            pass
    assert mp3_server.bytes_for(f"/{name}.mp3") <= 16384 + ranged.FRAMES_PROBE_BYTES
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, scale", [("vbr", 2), ("abr", 3), ("abr", 4), ("cbr", 2), ("vbr", 0.5)])
async def test_a_moderate_lie_in_the_frame_count_is_caught_by_the_frames_fetched(mp3_root, long_duration, tmp_path,
                                                                                  name, scale):
    """A header that counts two to four times the frames the file holds, its bytes still over
    32 kbit/s and half its own rate over that length (or half the frames). The count was believed:
    the song was taken for 2-4 times its length, and the section said it lay at 225-240 s of a
    479 s song (the song is 240 s; the audio came from its middle) and held 15.7 s. The frames
    fetched for the window play shorter (longer) than the header places in their bytes; the
    length is rescaled by what they play, and the window fetched again for it: a whole 30 s
    section from the song's middle, where it says, within the song and within the file."""
    data = with_stated_frames((mp3_root / f"{name}.mp3").read_bytes(), scale)
    with serving_one(tmp_path, "lying.mp3", data) as (fetcher, server):
        async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="lying")) as audio:
            assert audio.path.name == "section.mp3"  # cut here, not handed to yt-dlp
            ranges = [tuple(map(int, r.range.removeprefix("bytes=").split("-"))) for r in server.requests_for("/lying.mp3")]
            assert all(first <= last < len(data) for first, last in ranges), ranges
            assert audio.duration_s == pytest.approx(long_duration, rel=0.02)
            start, end = audio.section_s
            assert 0 <= start < end <= audio.duration_s
            section = decode(audio.path)
            assert len(section) / DECODE_RATE == pytest.approx(30.0, abs=0.1) == pytest.approx(end - start, abs=0.1)
            # The window is by the first estimate, the length by the second (its whole span): both
            # as close as the table's 1/256 steps place the spans measured (a few seconds).
            assert start == pytest.approx(section_window(long_duration)[0], abs=5.0)
            assert section_start_in(decode(mp3_root / f"{name}.mp3"), section, start) == pytest.approx(start, abs=2.0)


def with_stated_bytes(data: bytes, scale: float) -> bytes:
    """`data` with its Xing header's byte count (the second field) times `scale`."""
    first = mp3.audio_start(data)
    tag = data.index(b"Xing", first, first + 64)
    assert int.from_bytes(data[tag + 4:tag + 8], "big") & 3 == 3  # a frame count, then a byte count
    stated = round(mp3.xing(data, first).bytes * scale)
    lying = data[:tag + 12] + stated.to_bytes(4, "big") + data[tag + 16:]
    assert mp3.xing(lying, first).bytes == stated
    return lying


@pytest.mark.parametrize("scale", [0.5, 1.6])
async def test_a_xing_byte_count_that_is_not_the_files_is_not_cut_by(mp3_root, long_duration, tmp_path, scale):
    """The table of contents places each percent of the song at a share of the byte count the Xing
    header states. Stating half the file's bytes, the window's frames played half what the table
    placed in them, which made the frame count look twice the song's: the 240 s song was taken for
    115 s, its section from a fifth of the way in (42-72 s); stating 1.6 times, for 376 s, its
    section at 173-203 s. A byte count more than 10 % off the file's (its Content-Length, less any
    ID3 tag) is not the file's: yt-dlp has its turn."""
    data = with_stated_bytes((mp3_root / "vbr.mp3").read_bytes(), scale)
    with serving_one(tmp_path, "lying.mp3", data) as (fetcher, _):
        async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="lying")) as audio:
            if audio.section_s is not None:
                start, _ = audio.section_s
                found = section_start_in(decode(mp3_root / "vbr.mp3"), decode(audio.path), start)
                assert found == pytest.approx(start, abs=2.0), (audio.section_s, found)
            assert audio.path.name == "lying.mp3" and audio.section_s is None  # whole, from yt-dlp
