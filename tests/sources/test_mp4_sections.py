"""An MP4/M4A song's 30 s section through Range requests: its index read, the window's samples (or
fragments) fetched, and a file rebuilt that decodes to just them, for the kinds of MP4 a host
serves: the index after the audio (ffmpeg's default), before it ("fast start"), fragmented with
and without a sidx (DASH audio, as YouTube serves its M4A), and a video with its sound. Anything
the splicer does not take falls back to yt-dlp, and still gives the song's middle."""
from __future__ import annotations

import logging
import random
import shutil
import struct
import subprocess
import time
from http.server import BaseHTTPRequestHandler

import av
import pytest

from bot.sources import mp4section as mp4
from bot.sources.spans import StreamTimesLie
from bot.sources.audio import AudioFetcher, section_window
from bot.sources.models import AudioTooLargeError, Query, QueryKind
from tests.fakes.audio_http import FakeAudioServer
from tests.sources.test_audio import DECODE_RATE, decode, section_start_in, song

FRAGMENT_S = 5

# name -> ffmpeg arguments making it from long.m4a (a stream copy, but for the video)
VARIANTS = {
    "tail": ("-c", "copy"),
    "faststart": ("-c", "copy", "-movflags", "+faststart"),
    "fragments": ("-c", "copy", "-movflags", "+frag_keyframe+empty_moov+default_base_moof",
                  "-frag_duration", str(FRAGMENT_S * 1_000_000)),
    "fragments_sidx": ("-c", "copy", "-movflags", "+frag_keyframe+empty_moov+default_base_moof+global_sidx",
                       "-frag_duration", str(FRAGMENT_S * 1_000_000)),
    # The first fragment's samples in the moov's own table (and an mdat after it), the rest in fragments
    "first_in_moov": ("-c", "copy", "-movflags", "+frag_keyframe+default_base_moof",
                      "-frag_duration", str(FRAGMENT_S * 1_000_000)),
}


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def with_cover_art(song, out, *tag_args: str) -> None:
    """`song` with a 300 x 300 PNG of noise (~125 kB) as its cover art: more than a file's first
    16 kB, so the audio starts beyond them. `tag_args`: how the format stores a picture."""
    picture = out.with_name(out.stem + "-cover.png")
    ffmpeg("-f", "lavfi", "-i", "nullsrc=s=300x300,geq=random(1)*255:128:128", "-frames:v", "1", str(picture))
    ffmpeg("-i", str(song), "-i", str(picture), "-map", "0", "-map", "1", "-c", "copy", *tag_args, str(out))


def damaged(rng: random.Random, first: bytes, second: bytes, first_share: float) -> tuple[bytearray, bytearray]:
    """Copies of two buffers with 1-8 bytes set at random, each in `first` with `first_share`."""
    bad_first, bad_second = bytearray(first), bytearray(second)
    for _ in range(rng.randint(1, 8)):
        target = bad_first if rng.random() < first_share else bad_second
        target[rng.randrange(len(target))] = rng.randrange(256)
    return bad_first, bad_second


@pytest.fixture(scope="module")
def mp4_root(audio_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("mp4")
    source = audio_root / "long.m4a"
    shutil.copy(source, root / "long.m4a")
    for name, args in VARIANTS.items():
        ffmpeg("-i", str(source), *args, str(root / f"{name}.m4a"))
    # DASH's single-file form: a sidx before each fragment, each naming only its own.
    ffmpeg("-i", str(source), "-c", "copy", "-f", "dash", "-single_file", "1", "-seg_duration", str(FRAGMENT_S),
           str(root / "dash.mpd"))
    (root / "dash-stream0.mp4").rename(root / "dash.m4a")
    # A video with its sound: the audio's chunks lie between the video's.
    ffmpeg("-f", "lavfi", "-i", "color=c=navy:s=64x48:r=5", "-i", str(source), "-map", "0:v", "-map", "1:a",
           "-c:v", "mpeg4", "-c:a", "copy", "-shortest", str(root / "video.mp4"))
    # ALAC (lossless: the AAC's samples), its frames 4 096 samples long, its index after the audio
    ffmpeg("-i", str(source), "-c:a", "alac", str(root / "alac.m4a"))
    # Two sound tracks: not one the splicer can pick; yt-dlp's way cuts it.
    ffmpeg("-i", str(source), "-map", "0:a", "-map", "0:a", "-c", "copy", str(root / "two.m4a"))
    return root


@pytest.fixture(scope="module")
def mp4_server(mp4_root):
    with FakeAudioServer(mp4_root) as server:
        yield server


@pytest.fixture(scope="module")
def original(mp4_root):
    return decode(mp4_root / "long.m4a")


def stated_seconds(path) -> float:
    with av.open(str(path)) as container:
        return container.duration / av.time_base


@pytest.mark.parametrize("name, ext, slack_s", [
    ("tail", "m4a", 0.1),
    ("faststart", "m4a", 0.1),
    # Whole fragments: part of one more at each end, and where no sidx says where each one starts
    # (ffmpeg's plain fragments, DASH's sidx that names only its own), found near the window's bytes.
    ("fragments", "m4a", FRAGMENT_S),
    ("fragments_sidx", "m4a", FRAGMENT_S),
    ("first_in_moov", "m4a", FRAGMENT_S),
    ("dash", "m4a", FRAGMENT_S),
    ("video", "mp4", 0.1),
    ("alac", "m4a", 0.2),  # two frames of pre-roll: 171 ms
])
async def test_an_mp4_section_is_the_middle_30_s_from_a_fraction_of_the_bytes(mp4_server, mp4_root, original,
                                                                              long_duration, tmp_path, name, ext, slack_s):
    served = f"/{name}.{ext}"
    size = (mp4_root / f"{name}.{ext}").stat().st_size
    fetcher = AudioFetcher(search_template=mp4_server.base_url + "/{spotify_id}." + ext, tmp_dir=tmp_path)
    mp4_server.reset_counts()
    async with fetcher.fetch(song(long_duration, spotify_id=name)) as audio:
        assert audio.path.name == "section.m4a"  # not handed to yt-dlp
        requests = mp4_server.requests_for(served)
        assert all(r.range for r in requests) and len(requests) <= 4, requests
        assert audio.bytes_downloaded == mp4_server.bytes_for(served) < size / 4
        seconds = len(decode(audio.path)) / DECODE_RATE
        start, end = audio.section_s
        window = section_window(long_duration)
        assert start == pytest.approx(window[0], abs=slack_s) and 29.9 <= end - start <= 30 + 2 * slack_s
        assert seconds == pytest.approx(end - start, abs=0.1)
        assert stated_seconds(audio.path) == pytest.approx(seconds, abs=0.1)  # not the song's length
        # The very samples of the song's middle: found where the section says it starts.
        assert section_start_in(original, decode(audio.path), start) == pytest.approx(start, abs=0.05)
        with av.open(str(audio.path)) as container:
            assert [s.type for s in container.streams] == ["audio"]  # a video's picture is left out
    assert list(tmp_path.iterdir()) == []


async def test_an_mp4_the_splicer_does_not_take_is_cut_by_ytdlp(mp4_server, mp4_root, original, long_duration, tmp_path):
    fetcher = AudioFetcher(search_template=mp4_server.base_url + "/{spotify_id}.m4a", tmp_dir=tmp_path)
    async with fetcher.fetch(song(long_duration, spotify_id="two")) as audio:
        assert audio.path.name != "section.m4a"
        assert audio.section_s == pytest.approx(section_window(long_duration))
        section = decode(audio.path)
        assert 29.0 <= len(section) / DECODE_RATE <= 40.0
        start = audio.section_s[0]
        assert section_start_in(original, section, start) == pytest.approx(start, abs=10.0)


# -- the pure part: what it refuses ---------------------------------------------------------------

def moov_of(data: bytes) -> bytes:
    box = next(b for b in mp4.top_level(data) if b.type == mp4.MOOV)
    return data[box.start:box.end]


def test_the_sample_table_covers_the_whole_song(mp4_root, long_duration):
    data = (mp4_root / "tail.m4a").read_bytes()
    track = mp4.audio_track(moov_of(data))
    assert not track.fragmented and track.timescale == 48_000
    assert sum(track.durations) / track.timescale == pytest.approx(long_duration, abs=0.1)
    assert list(track.offsets) == sorted(track.offsets)
    mdat = next(b for b in mp4.top_level(data) if b.type == mp4.MDAT)
    assert track.offsets[0] == mdat.data_start and track.offsets[-1] + track.sizes[-1] == mdat.end


def patched(moov: bytes, kind: bytes, new_kind: bytes) -> bytes:
    at = moov.index(kind)
    return moov[:at] + new_kind + moov[at + 4:]


def test_what_the_splicer_cannot_take_safely_gives_none(mp4_root):
    data = (mp4_root / "tail.m4a").read_bytes()
    moov = moov_of(data)
    assert mp4.audio_track(moov) is not None
    assert mp4.audio_track(moov[:-10]) is None  # cut short
    assert mp4.audio_track(b"\0\0\0\x10free" + moov) is None  # not a moov
    assert mp4.audio_track(moov_of((mp4_root / "two.m4a").read_bytes())) is None  # two sound tracks
    assert mp4.audio_track(patched(moov, b"soun", b"vide")) is None  # no sound track
    assert mp4.audio_track(patched(moov, b"stsz", b"stz2")) is None  # compact sample sizes
    assert mp4.audio_track(patched(moov, b"stsd", b"ctts")) is None  # no codec set-up
    track = mp4.audio_track(moov)
    assert mp4.select_samples(track, (0.0, 0.0)) is None
    selection = mp4.select_samples(track, (100.0, 130.0))
    assert mp4.splice_progressive(data[:28], moov, track, selection, b"short") is None


def test_fragments_with_absolute_data_offsets_are_not_moved(mp4_root):
    data = (mp4_root / "fragments.m4a").read_bytes()
    boxes = mp4.top_level(data)
    moof = boxes[[b.type for b in boxes].index(mp4.MOOF) + 4]  # a fragment of the middle
    fragment = data[moof.start:mp4.read_box(data, moof.end).end]
    assert [raw for _, raw in mp4.fragments_in(b"junk" + fragment + b"junk")] == [fragment]
    at = fragment.index(b"tfhd")
    moved = bytearray(fragment)
    struct.pack_into(">I", moved, at + 4, struct.unpack_from(">I", fragment, at + 4)[0] | mp4.BASE_DATA_OFFSET_PRESENT)
    assert mp4.fragments_in(bytes(moved)) == []
    assert mp4.fragments_in(b"\0" * 5000 + b"moof" + b"\0" * 100) == []


def test_a_sidx_pointing_at_another_sidx_is_not_followed(mp4_root):
    data = (mp4_root / "fragments_sidx.m4a").read_bytes()
    box = next(b for b in mp4.top_level(data) if b.type == mp4.SIDX)
    sidx = bytearray(data[box.start:box.end])
    refs = mp4.sidx_references(bytes(sidx), box.end)
    assert refs and refs[0].offset == next(b for b in mp4.top_level(data) if b.type == mp4.MOOF).start
    assert sum(r.duration_s for r in refs) == pytest.approx(refs[-1].start_s + refs[-1].duration_s)
    first_ref = 8 + (24 if sidx[8] == 0 else 32)  # box header, then the fields up to the first reference
    sidx[first_ref] |= 0x80  # reference_type 1: a sidx
    assert mp4.sidx_references(bytes(sidx), box.end) is None


# -- limits and hosts that stop playing along -----------------------------------------------------

async def test_an_mp4_section_over_the_byte_limit_is_refused_before_it_is_fetched(mp4_server, long_duration, tmp_path):
    # The index is ~50 kB and the window's samples ~240 kB: the limit lets the first in, not the second.
    small = AudioFetcher(search_template=mp4_server.base_url + "/{spotify_id}.m4a", tmp_dir=tmp_path, max_bytes=100_000)
    mp4_server.reset_counts()
    with pytest.raises(AudioTooLargeError):
        async with small.fetch(song(long_duration, spotify_id="tail")):
            pass
    assert 0 < mp4_server.bytes_for("/tail.m4a") <= 100_000
    assert list(tmp_path.iterdir()) == []


class RangesOnceServer(FakeAudioServer):
    """Answers the bot's first Range request for a file, then ignores its Range headers (sends the
    whole file, 200). yt-dlp's and ffmpeg's requests (other User-Agents) are served as usual."""

    def __init__(self, root):
        super().__init__(root)
        self.ranged: set[str] = set()

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        server, base = self, super()._request_handler()

        class Handler(base):
            def _file(self, path, file, send_body):
                if self.headers.get("User-Agent", "").startswith("Python-urllib"):
                    if self.headers.get("Range") and path in server.ranged:
                        del self.headers["Range"]
                    server.ranged.add(path)
                return super()._file(path, file, send_body)

        return Handler


async def test_a_host_that_stops_answering_ranges_gets_the_fetch_done_another_way(mp4_root, original, long_duration,
                                                                                  tmp_path, caplog):
    with RangesOnceServer(mp4_root) as server, caplog.at_level(logging.INFO, logger="bot.sources.audio"):
        fetcher = AudioFetcher(search_template=server.base_url + "/{spotify_id}.m4a", tmp_dir=tmp_path)
        async with fetcher.fetch(song(long_duration, spotify_id="tail")) as audio:
            assert "could not cut an MP4 section from /tail.m4a; falling back to yt-dlp" in caplog.messages
            section = decode(audio.path)
            assert 29.0 <= len(section) / DECODE_RATE <= 40.0
            start = audio.section_s[0]
            assert section_start_in(original, section, start) == pytest.approx(start, abs=10.0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["tail", "fragments_sidx", "video"])
def test_damaged_indexes_and_fragments_give_none_or_a_file_never_an_exception(mp4_root, name):
    """A host's bytes are untrusted: 400 seeded damages (bytes flipped, the index cut short) of a
    file's index and of its middle bytes, each parsed and spliced as the fetcher does. Damage that
    makes the timestamps disagree with what the samples play is said so (StreamTimesLie: the
    fetcher takes the file whole), and nothing else is raised."""
    rng = random.Random(f"mp4-{name}")
    data = (mp4_root / f"{name}.{'mp4' if name == 'video' else 'm4a'}").read_bytes()
    ftyp, moov = data[:mp4.read_box(data, 0).end], moov_of(data)
    middle = data[len(data) // 2:len(data) // 2 + 120_000]
    made = 0
    for _ in range(400):
        bad_moov, bad_middle = damaged(rng, moov, middle, 0.7)
        if rng.random() < 0.2:
            del bad_moov[rng.randrange(len(bad_moov)):]
        try:
            track = mp4.audio_track(bytes(bad_moov))
            if track is None:
                continue
            if track.fragmented:
                out = mp4.splice_fragments(ftyp, bytes(bad_moov), track, bytes(bad_middle), max_seconds=30)
            else:
                selection = mp4.select_samples(track, (100.0, 130.0))
                if selection is None or selection.byte_last >= len(data) or selection.byte_first < 0:
                    continue
                out = mp4.splice_progressive(ftyp, bytes(bad_moov), track, selection,
                                             data[selection.byte_first:selection.byte_last + 1])
        except StreamTimesLie:
            continue
        made += out is not None
    assert made > 0  # the damage is not all caught by the first check


def emptied(moov: bytes, kind: bytes) -> bytes:
    """`moov` with the box `kind`'s payload gone: the box 8 bytes, a free box where its payload was."""
    at = moov.index(kind) - 4
    (size,) = struct.unpack_from(">I", moov, at)
    return moov[:at] + mp4.make_box(kind, b"") + mp4.make_box(b"free", bytes(size - 16)) + moov[at + size:]


def test_boxes_with_no_payload_give_none_never_an_exception(mp4_root):
    """A tfdt, a sidx or a tkhd of 8 bytes (a header, no fields): their version byte was read from
    an empty payload, IndexError ('something went wrong')."""
    tfhd = mp4.full_box(b"tfhd", b"", flags=0x020000)
    fragment = mp4.make_box(mp4.MOOF, mp4.make_box(b"traf", tfhd + mp4.make_box(b"tfdt", b""))) + mp4.make_box(mp4.MDAT, b"x")
    assert mp4.fragments_in(fragment * 3) == []
    assert mp4.sidx_references(mp4.make_box(mp4.SIDX, b""), 1000) is None
    data = (mp4_root / "tail.m4a").read_bytes()
    ftyp, moov = data[:mp4.read_box(data, 0).end], emptied(moov_of(data), b"tkhd")
    track = mp4.audio_track(moov)
    selection = mp4.select_samples(track, (100.0, 130.0))
    span = data[selection.byte_first:selection.byte_last + 1]
    assert mp4.splice_progressive(ftyp, moov, track, selection, span) is None


def test_a_sample_table_claiming_billions_of_samples_is_refused_at_once(mp4_root):
    moov = bytearray(moov_of((mp4_root / "tail.m4a").read_bytes()))
    stsz = moov.index(b"stsz")
    struct.pack_into(">II", moov, stsz + 8, 1024, 0xFFFFFFFF)  # one size for all, and 4 294 967 295 of them
    stts = moov.index(b"stts")
    struct.pack_into(">III", moov, stts + 8, 1, 0xFFFFFFFF, 1024)
    started = time.perf_counter()
    assert mp4.audio_track(bytes(moov)) is None
    assert time.perf_counter() - started < 1.0


# -- a song whose length is not known beforehand (no Spotify): the file's own header says it -----

@pytest.mark.parametrize("name, ext, states_it", [
    ("tail", "m4a", True), ("faststart", "m4a", True), ("video", "mp4", True),
    ("fragments_sidx", "m4a", True),  # its sidx indexes every fragment
    ("fragments", "m4a", False), ("dash", "m4a", False),  # no length in the set-up, no whole-file sidx
    ("first_in_moov", "m4a", False),  # its mvhd's 5 s are the first fragment's, not the song's
])
async def test_an_mp4_of_unknown_length_is_cut_by_the_length_its_index_states(mp4_server, mp4_root, long_duration,
                                                                              tmp_path, name, ext, states_it):
    fetcher = AudioFetcher(search_template=mp4_server.base_url + "/{title}." + ext, tmp_dir=tmp_path)
    async with fetcher.fetch(Query(kind=QueryKind.TEXT, text=name)) as audio:
        if states_it:
            assert audio.path.name == "section.m4a"
            assert audio.duration_s == pytest.approx(long_duration, abs=0.1)
            assert audio.section_s[0] == pytest.approx(section_window(long_duration)[0], abs=FRAGMENT_S)
        else:  # the whole file, through yt-dlp, as before
            assert audio.duration_s is None and audio.section_s is None
            assert audio.path.stat().st_size == (mp4_root / f"{name}.{ext}").stat().st_size
    assert list(tmp_path.iterdir()) == []


async def test_an_mp4_whose_index_states_a_length_over_the_limit_is_refused_before_its_audio(mp4_server, tmp_path):
    fetcher = AudioFetcher(search_template=mp4_server.base_url + "/{title}.m4a", tmp_dir=tmp_path, max_duration_s=60)
    mp4_server.reset_counts()
    with pytest.raises(AudioTooLargeError, match="“tail” is too long for me to listen to"):
        async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="tail")):
            pass
    assert mp4_server.bytes_for("/tail.m4a") < 100_000  # its first bytes and its index, no audio
    assert list(tmp_path.iterdir()) == []


async def test_a_small_mp4_of_unknown_length_is_fetched_whole(audio_root, tmp_path):
    """A 30 s clip (0.25 MB): under SMALL_FILE_BYTES, no look at its index."""
    ffmpeg("-i", str(audio_root / "clip.ogg"), "-c:a", "aac", "-b:a", "64k", str(tmp_path / "clip.m4a"))
    work = tmp_path / "work"
    with FakeAudioServer(tmp_path) as server:
        fetcher = AudioFetcher(search_template=server.base_url + "/{title}.m4a", tmp_dir=work)
        async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="clip")) as audio:
            assert audio.section_s is None
            assert audio.path.stat().st_size == (tmp_path / "clip.m4a").stat().st_size


def test_a_fragmented_movie_states_its_length_only_in_mehd(mp4_root, long_duration):
    """Fragments after a moov that holds the first one's samples (ffmpeg without empty_moov): its
    mvhd says 5 s, the first fragment's; only an mehd gives the whole movie's length."""
    moov = moov_of((mp4_root / "first_in_moov.m4a").read_bytes())
    assert mp4.audio_track(moov).fragmented and mp4.fragmented_seconds(moov) is None  # not 5 s
    root = mp4.read_box(moov, 0)
    mvhd = mp4.find(moov, root, b"mvhd")
    timescale = struct.unpack_from(">I", moov, mvhd.data_start + 12)[0]
    mvex = mp4.find(moov, root, b"mvex")
    mehd = mp4.full_box(b"mehd", struct.pack(">I", round(long_duration * timescale)))
    with_mehd = mp4._rebuilt(moov, root, {b"mvex": mp4.make_box(b"mvex", mehd + mp4.payload(moov, mvex))})
    assert mp4.fragmented_seconds(with_mehd) == pytest.approx(long_duration, abs=0.01)
