"""A Matroska song (.mka, .mkv) of the codecs a host serves in one (Opus, AAC, MP3, FLAC, PCM, AC-3,
ALAC, DTS, TrueHD),
or beside a video or a second sound, as ffmpeg writes it: its 30 s section through Range
requests, where its clusters say it lies, and as long as they say it lasts; one whose clusters
say other than its first audio track's blocks play is fetched whole."""
from __future__ import annotations

import logging
import random
import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from bot.sources import webmsection as webm
from bot.sources.audio import AudioFetcher
from bot.sources.models import Query, QueryKind
from tests.fakes.audio_http import FakeAudioServer
from tests.run_files import made_once
from tests.sources.test_audio import DECODE_RATE, decode, section_start_in, song
from tests.sources.test_lying_lengths import ebml_number, segment_children, webm_with_timestamp_scale, whole_from_ytdlp
from tests.sources.test_mp4_sections import ffmpeg

# name -> ffmpeg's arguments making it from long.ogg (Opus); ffmpeg's Matroska has a CRC-32
# element first in each cluster and in the set-up's elements (its write_crc32, on by default)
CODECS = {
    "opus": ("-c:a", "copy"),
    "aac": ("-c:a", "aac", "-b:a", "64k"),
    "mp3": ("-c:a", "libmp3lame", "-b:a", "64k"),
    "flac": ("-c:a", "flac"),
    "pcm": ("-c:a", "pcm_s16le"),
    "ac3": ("-c:a", "ac3", "-b:a", "192k"),
    "eac3": ("-c:a", "eac3", "-b:a", "96k"),
    "alac": ("-c:a", "alac", "-ar", "16000"),
    "dts": ("-c:a", "dca", "-strict", "-2", "-b:a", "320k"),
    # 16-bit and 20 dB quieter: lossless, 19 MB (37 MB as it comes), under the limit a lying one is fetched whole by
    "truehd": ("-af", "volume=0.1", "-sample_fmt", "s16", "-c:a", "truehd", "-strict", "-2"),
}
# a codec whose blocks are not counted: its section is cut by its clusters' timestamps unchecked
UNCOUNTED = {"mulaw": ("-c:a", "pcm_mulaw")}  # A_MS/ACM: a WAVEFORMATEX codec
# name -> ffmpeg's inputs and arguments beside long.ogg (input 0): the song's Opus with a video
# track before it, or with a second sound (a 440 Hz tone) after it
TRACKS = {
    "video": (("-f", "lavfi", "-i", "color=c=red:s=64x64:r=5"),
              ("-map", "1:v", "-map", "0:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy")),
    "second_sound": (("-f", "lavfi", "-i", "sine=f=440"), ("-map", "0:a", "-map", "1:a", "-c:a", "libopus")),
}
LYING_SCALE = 0.3  # a TimestampScale this many times the stream's
CHANNELS_ONE = bytes([webm.CHANNELS_ID, 0x81, 1])  # an Audio element's Channels: 1 (the song is mono)
LATE_MS = 80  # the sound begins this far into each cluster (at ffmpeg's TimestampScale: 1 ms)
CONTENT_ENCODINGS, CONTENT_ENCODING, CONTENT_COMPRESSION = 0x6D80, 0x6240, 0x5034
COMP_ALGO, COMP_SETTINGS = 0x4254, 0x4255
MP3_SYNC = b"\xff\xfb"  # the first two bytes of each of the song's MP3 frames (MPEG-1 layer III, no CRC)


def element(ident: int, payload: bytes) -> bytes:
    return ident.to_bytes((ident.bit_length() + 7) // 8, "big") + ebml_number(len(payload), 8) + payload


def compression(algo: int, settings: bytes = b"") -> bytes:
    """A ContentEncoding's children: compression (type 0, the default) of every frame (scope 1,
    the default) by `algo` (0: zlib; 3: header stripping, `settings` the bytes stripped)."""
    algorithm = element(COMP_ALGO, bytes([algo])) + (settings and element(COMP_SETTINGS, settings))
    return element(CONTENT_COMPRESSION, algorithm)


def with_content_encoding(data: bytes, encoding: bytes, encode: Callable[[bytes], bytes]) -> bytes:
    """`data` (ffmpeg's, of one track) with `encoding` (a ContentEncoding's children) in its track's
    ContentEncodings and each block's frame made `encode(frame)`, as mkvmerge compresses a track:
    its CRC-32s left out, its SeekHead and Cues blanked."""
    out, top = segment_children(data)

    def body(parent: webm.Element) -> bytes:
        made = b""
        for child in webm.children_of(data, parent):
            if child.id in (webm.SIMPLE_BLOCK_ID, webm.BLOCK_ID):
                frame_at = child.data_start + webm.read_vint(data, child.data_start, keep_marker=False)[1] + 3
                made += element(child.id, data[child.data_start:frame_at] + encode(data[frame_at:child.end]))
            elif child.id == webm.BLOCK_GROUP_ID:
                made += element(child.id, body(child))
            elif child.id == webm.TRACK_ENTRY_ID:
                made += element(child.id, body(child) + element(CONTENT_ENCODINGS, element(CONTENT_ENCODING, encoding)))
            elif child.id != webm.CRC32_ID:
                made += data[child.start:child.end]
        return made

    for child in top:
        if child.id in (webm.CLUSTER_ID, webm.TRACKS_ID):
            out += element(child.id, body(child))
        else:
            raw = data[child.start:child.end]
            out += webm.void_element(len(raw)) if child.id in webm.BLANKED else raw
    return bytes(out)


def stripped(frame: bytes) -> bytes:
    assert frame.startswith(MP3_SYNC)
    return frame[len(MP3_SYNC):]


def with_sound_late_in_clusters(data: bytes, late: int) -> bytes:
    """`data` (of one track) with each cluster's timestamp `late` units earlier and
    its blocks' own ones (relative to it) `late` later: every block where it was, the sound of each
    cluster beginning `late` into it, as mkvmerge's beside a video (93 ms)."""
    out = bytearray(data)
    for child in segment_children(data)[1]:
        children = webm.children_of(data, child) if child.id == webm.CLUSTER_ID else []
        stamp = next((c for c in children if c.id == webm.CLUSTER_TIMESTAMP_ID), None)
        time = int.from_bytes(data[stamp.data_start:stamp.end], "big") if stamp else 0
        if time < late:
            continue
        out[stamp.data_start:stamp.end] = (time - late).to_bytes(stamp.size, "big")
        groups = [webm.children_of(data, c) for c in children if c.id == webm.BLOCK_GROUP_ID]  # the last block's
        blocks = [c for c in children if c.id == webm.SIMPLE_BLOCK_ID]
        blocks += [b for group in groups for b in group if b.id == webm.BLOCK_ID]
        for block in blocks:
            field = block.data_start + webm.read_vint(data, block.data_start, keep_marker=False)[1]
            struct.pack_into(">h", out, field, struct.unpack_from(">h", data, field)[0] + late)
    return bytes(out)


@pytest.fixture(scope="module")
def made(audio_root, tmp_path_factory) -> Path:
    """The served songs (~20 s of ffmpeg), and each decoded whole (~10 s: `decoded`), made once for
    the run's test processes (tests/run_files.py), not in each that took some of these tests."""
    def make(root: Path) -> None:
        for name, args in {**CODECS, **UNCOUNTED}.items():
            ffmpeg("-i", str(audio_root / "long.ogg"), *args, str(root / f"{name}.mka"))
        for name, (inputs, args) in TRACKS.items():
            ffmpeg("-i", str(audio_root / "long.ogg"), *inputs, "-shortest", *args, "-f", "matroska",
                   str(root / f"{name}.mka"))
        # Compressed as mkvmerge may: its MP3 frames' first bytes stripped (older versions' default), or zlib
        mp3, pcm = (root / "mp3.mka").read_bytes(), (root / "pcm.mka").read_bytes()
        (root / "stripped_mp3.mka").write_bytes(with_content_encoding(mp3, compression(3, MP3_SYNC), stripped))
        (root / "zlib_pcm.mka").write_bytes(with_content_encoding(pcm, compression(0), zlib.compress))
        for path in list(root.glob("*.mka")):
            (root / f"fast_{path.name}").write_bytes(webm_with_timestamp_scale(path.read_bytes(), LYING_SCALE))
        # mkvmerge leaves out a mono track's Channels, whose default is 1: a Void in its place
        at = pcm.index(CHANNELS_ONE, pcm.index(webm.TRACKS_ID.to_bytes(4, "big")))
        (root / "mono_pcm.mka").write_bytes(pcm[:at] + webm.void_element(len(CHANNELS_ONE)) + pcm[at + len(CHANNELS_ONE):])
        (root / "late_opus.mka").write_bytes(with_sound_late_in_clusters((root / "opus.mka").read_bytes(), LATE_MS))
        # Cover art: a 600 x 600 PNG of noise (~960 kB), attached before the clusters
        cover = root / "cover.png"
        ffmpeg("-f", "lavfi", "-i", "nullsrc=s=600x600,geq=random(1)*255:random(1)*255:128", "-frames:v", "1", str(cover))
        ffmpeg("-i", str(root / "opus.mka"), "-c", "copy", "-attach", str(cover), "-metadata:s:t", "mimetype=image/png",
               str(root / "cover_art.mka"))
        (root / "video.mkv").write_bytes((root / "video.mka").read_bytes())
        for path in root.glob("*.mka"):
            if not path.name.startswith("fast_"):
                np.save(root / f"{path.stem}.npy", decode(path))

    return made_once(tmp_path_factory, "matroska", make)  # read it only


@pytest.fixture(scope="module")
def decoded(made) -> dict[str, object]:
    """Each served song decoded whole, to find its sections in."""
    return {path.stem: np.load(path) for path in made.glob("*.npy")}


async def cut_section(made: Path, tmp_path: Path, name: str, known_s: float | None, ext: str = "mka"):
    """`name`.`ext` fetched by its title, as a song `known_s` long (Spotify's length) or of a length
    the file states: (the fetched audio's section, its samples, the requests the host had)."""
    item = Query(kind=QueryKind.TEXT, text=name) if known_s is None else song(known_s, name, title=name)
    with FakeAudioServer(made) as server:
        fetcher = AudioFetcher(search_template=server.base_url + "/{title}." + ext, tmp_dir=tmp_path)
        async with fetcher.fetch(item) as audio:
            return audio, decode(audio.path), server.requests_for(f"/{name}.{ext}")


@pytest.mark.parametrize("known", [True, False])
@pytest.mark.parametrize("name", [*CODECS, *TRACKS, *UNCOUNTED, "late_opus", "cover_art", "stripped_mp3", "zlib_pcm"])
async def test_a_matroska_song_is_cut_by_its_clusters(made, decoded, long_duration, tmp_path, caplog, name, known):
    """ffmpeg's Matroska has a CRC-32 element before each cluster's timestamp, where the splicer
    looked for the timestamp alone: no cluster was found in any such file, and the song went to
    yt-dlp (its length known: ffmpeg's cut, which started 4.9 s before the window it was reported
    at; not known: the whole file, 23 MB of FLAC or PCM). Its clusters are read past that element:
    the section lies where it says within 50 ms, plays as long as it says, and costs two or three
    requests and a fraction of the file. Beside a video or a second sound, its first audio track
    (the classifier decodes that one) is where it says, and only its blocks are counted. Its
    sound begins where its first block does, which need not be where its first cluster does: a
    section whose blocks begin 80 ms into each cluster was said to begin 80 ms early. Cover art
    attached before the clusters (960 kB) was more than the first 256 kB, where the set-up was looked
    for: the song went to yt-dlp. It is stepped over, one more request for what follows it, and left
    out of the section, and the window's share is of the bytes after it. ALAC, DTS and TrueHD blocks
    and a zlib-compressed track's are counted (they were not, and the section cut unchecked); a
    mu-law track's (A_MS/ACM) are not: its section is cut by the clusters' timestamps unchecked,
    and the log says so."""
    with caplog.at_level(logging.INFO):
        audio, section, requests = await cut_section(made, tmp_path, name, long_duration if known else None)
    assert ("timestamps unchecked" in caplog.text) == (name in UNCOUNTED)
    assert audio.path.name == "section.webm" and audio.section_s is not None
    start, end = audio.section_s
    assert start == pytest.approx(long_duration / 2 - 15, abs=6.0) and 29.0 <= end - start <= 35.5
    assert len(section) / DECODE_RATE == pytest.approx(end - start, abs=0.1)
    assert section_start_in(decoded[name], section, start) == pytest.approx(start, abs=0.05)
    assert len(requests) <= 3 + (name == "cover_art") and all(r.range for r in requests)
    assert audio.bytes_downloaded < (made / f"{name}.mka").stat().st_size / 4


@pytest.mark.parametrize("known", [True, False])
@pytest.mark.parametrize("name", [*CODECS, *TRACKS, "stripped_mp3", "zlib_pcm"])
async def test_a_matroska_song_whose_timestamps_lie_is_fetched_whole(made, long_duration, tmp_path, name, known):
    """Opus blocks were counted only in a file of one track: beside a video or a second sound, a
    TimestampScale 0.3 times the stream's went unchecked, and a section of the 240 s song was said
    to lie at 30-46 s (its length known) while it played 54 s, or at 19-50 s of the 72 s stated
    while it played 100-104 s. The first audio track's blocks are counted by its number, the other
    tracks' left out. AAC, MP3, FLAC, PCM, AC-3 and E-AC-3 blocks were not counted at all: their
    sections were said to lie at 31-48 s while they played 55-60 s, or at 19-52 s of the 72 s
    stated while they played 105 s. An AAC block plays the 1 024 (or 960) samples its track's
    AudioSpecificConfig says at its rate, an MP3 one what its frame headers say, a FLAC one what its
    frame header says at the rate of the STREAMINFO in its CodecPrivate, a PCM one its bytes over
    the channels and bit depth its track states, an AC-3 one 1 536 samples a syncframe (E-AC-3: 256
    a block, as many blocks as its header says) at its header's rate. A track compressed by header
    stripping (older mkvmerge's MP3, by default) has the bytes its ContentEncoding stripped put back
    before its frames are read: its blocks were not counted. ALAC, DTS and TrueHD blocks, and a
    zlib-compressed track's (each frame inflated first), were not counted either: a TimestampScale
    0.3 times the stream's went unchecked. An ALAC block plays the frame length its
    ALACSpecificConfig states (or its own header's count), a DTS one 32 samples a block of its core
    frame's header at its rate, a TrueHD one 40 samples (at 48 or 44.1 kHz) an access unit. The
    clusters say other than the blocks play, and the file is fetched whole."""
    async with whole_from_ytdlp(made, tmp_path, f"fast_{name}.mka", long_duration if known else None) as audio:
        assert audio.path.read_bytes() == (made / f"fast_{name}.mka").read_bytes()


@pytest.mark.parametrize("name", [*CODECS, *TRACKS, "mono_pcm", "stripped_mp3", "zlib_pcm"])
def test_a_matroska_songs_blocks_play_what_its_clusters_say_and_damage_gives_none_or_a_count(made, name):
    """The first audio track's blocks in the song's clusters from 60 s to 180 s play, counted by
    their codec, what the clusters' timestamps say, within 50 ms (the video goes on 10 s past the
    sound). A track's Audio element may leave out its Channels and SamplingFrequency, whose
    defaults are 1 and 8 kHz: mkvmerge's mono PCM track was not counted. A host's bytes are
    untrusted: a set-up or a cluster with bytes flipped or cut short gives None or a count,
    nothing raised."""
    data = (made / f"{name}.mka").read_bytes()
    header = webm.parse_header(data[:16384])
    clusters = [(time * header.timestamp_scale_ns / 1e9, raw) for time, raw in webm.clusters_in(data)]
    clusters = [(time, raw) for time, raw in clusters if 60 <= time <= 180]
    times = [time for time, _ in clusters]
    plays = webm.clusters_play(header, [raw for _, raw in clusters[:-1]])
    assert plays == pytest.approx(times[-1] - times[0], abs=0.05)
    rng = random.Random(f"matroska-{name}")
    for _ in range(200):
        head = bytearray(data[:16384])
        for _ in range(rng.randint(1, 6)):
            head[rng.randrange(len(header.data))] = rng.randrange(256)
        damaged = webm.parse_header(bytes(head))
        raw = bytearray(clusters[rng.randrange(len(clusters))][1])
        for _ in range(rng.randint(1, 6)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        for set_up in (header, damaged):
            plays = set_up and webm.clusters_play(set_up, [bytes(raw[:rng.randrange(len(raw) + 1)]), bytes(raw)])
            assert plays is None or plays >= 0


def config(*fields: tuple[int, int]) -> bytes:
    """An AudioSpecificConfig of (value, bits) fields, padded to whole bytes."""
    value, bits = 0, 0
    for field, width in fields:
        value, bits = value << width | field, bits + width
    pad = -bits % 8
    return (value << pad).to_bytes((bits + pad) // 8, "big")


@pytest.mark.parametrize("fields, expected", [
    (((2, 5), (4, 4), (2, 4), (0, 1)), (1024, 44100)),  # AAC-LC, 44.1 kHz, stereo: ffmpeg's 0x1210
    (((2, 5), (3, 4), (1, 4), (1, 1)), (960, 48000)),  # the frame-length flag: 960 samples
    (((5, 5), (6, 4), (2, 4), (3, 4), (2, 5), (0, 1)), (1024, 24000)),  # HE-AAC: the core's frames and rate
    (((29, 5), (6, 4), (1, 4), (3, 4), (2, 5), (0, 1)), (1024, 24000)),  # HE-AAC v2 (PS)
    (((2, 5), (15, 4), (44056, 24), (2, 4), (0, 1)), (1024, 44056)),  # a rate of its own, not in the table
    (((23, 5), (3, 4), (1, 4), (1, 1)), (480, 48000)),  # AAC-LD
    (((31, 5), (10, 6), (3, 4), (2, 4), (0, 1)), None),  # an escaped type (42: USAC), whose frames differ
    (((2, 5), (13, 4), (2, 4), (0, 1)), None),  # a reserved rate index
    (((2, 5), (2, 3)), None),  # cut short: one byte
])
def test_an_aac_tracks_frames_are_read_from_its_audio_specific_config(fields, expected):
    assert webm.aac_config(config(*fields)) == expected


async def test_a_matroska_video_of_a_length_not_known_is_cut_as_its_file_states(made, decoded, long_duration, tmp_path):
    """A .mkv link (a plain-URL audio search, no Spotify) was not tried with ranges where the
    song's length was not known beforehand, as a .mka was: yt-dlp fetched it whole. It states its
    length in its Info, and is cut as a .mka is."""
    audio, section, requests = await cut_section(made, tmp_path, "video", None, ext="mkv")
    assert audio.path.name == "section.webm" and audio.duration_s == pytest.approx(long_duration, abs=10)
    start = audio.section_s[0]
    assert section_start_in(decoded["video"], section, start) == pytest.approx(start, abs=0.05)
    assert len(requests) <= 3 and all(r.range for r in requests)


def dts_frame(size: int, blocks: int = 16, rate_code: int = 13) -> bytes:
    """A DTS core frame `size` bytes long: its header (a normal frame of `blocks` blocks of 32 samples at the
    rate of `rate_code`, 13: 48 kHz), then zeros."""
    header = webm.DTS_SYNC + config((1, 1), (31, 5), (0, 1), (blocks - 1, 7), (size - 1, 14), (2, 6), (rate_code, 4))
    return header + bytes(size - len(header))


def truehd_unit(size: int, rate_bits: int | None = None) -> bytes:
    """A TrueHD access unit `size` bytes long (even), with a major sync stating `rate_bits` where not None."""
    sync = b"" if rate_bits is None else webm.TRUEHD_MAJOR_SYNC + bytes([rate_bits << 4])
    head = bytes([0x30 | size // 2 >> 8, size // 2 & 0xFF, 0, 0]) + sync
    return head + bytes(size - len(head))


ALAC_PAIR = ((1, 3), (0, 4), (0, 12))  # an ALAC frame's first element: a channel pair, its tag, 12 unused bits


@pytest.mark.parametrize("count, frame, plays", [
    (webm.FrameCount("alac", 44100, 4096), config(*ALAC_PAIR, (0, 1), (0, 3)), 4096 / 44100),
    (webm.FrameCount("alac", 44100, 4096), config(*ALAC_PAIR, (1, 1), (0, 3), (1000, 32)), 1000 / 44100),  # the last
    (webm.FrameCount("alac", 44100, 4096), config(*ALAC_PAIR, (1, 1), (0, 3), (5000, 32)), None),  # over its length
    (webm.FrameCount("alac", 44100, 4096), config((4, 3), (0, 4), (0, 12), (0, 1), (0, 3)), None),  # no channels
    (webm.FrameCount("alac", 44100, 4096), b"", None),
    (webm.FrameCount("dts"), dts_frame(1000), 512 / 48000),
    (webm.FrameCount("dts"), dts_frame(1000) + dts_frame(500, 8, 8), 512 / 48000 + 256 / 44100),
    (webm.FrameCount("dts"), dts_frame(1000) + webm.DTS_SUBSTREAM_SYNC + bytes(300), 512 / 48000),  # DTS-HD's
    (webm.FrameCount("dts"), webm.DTS_SUBSTREAM_SYNC + bytes(300), None),  # an extension alone: DTS Express
    (webm.FrameCount("dts"), dts_frame(1000)[:999], None),  # its header says more than the block holds
    (webm.FrameCount("dts"), dts_frame(1000, rate_code=0), None),
    (webm.FrameCount("dts"), dts_frame(1000)[:6], None),
    (webm.FrameCount("truehd", 48000), truehd_unit(100) * 3, 120 / 48000),
    (webm.FrameCount("truehd", 48000), truehd_unit(100, 8) + truehd_unit(30), 80 / 44100),  # its sync says 44.1 kHz
    (webm.FrameCount("truehd", 0), truehd_unit(100), None),  # neither the track nor a sync says its rate
    (webm.FrameCount("truehd", 48000), truehd_unit(100)[:99], None),
    (webm.FrameCount("truehd", 48000), bytes(8), None),  # lengths of none
])
def test_alac_dts_and_truehd_blocks_play_what_their_headers_say(count, frame, plays):
    """An ALAC block plays its track's frame length, or the count its header states (a song's last); a DTS
    one its core frames' blocks of 32 samples at their rate, a DTS-HD extension after them nothing more;
    a TrueHD one 40 samples an access unit at 48 or 44.1 kHz, its major sync's or else its track's; bytes
    that do not say: None."""
    assert count.seconds(frame) == (None if plays is None else pytest.approx(plays))


def test_a_zlib_frame_is_inflated_whole_and_no_further_than_a_bound():
    """mkvmerge's `--compression 0:zlib`: each frame a zlib stream, inflated before it is counted; one cut
    short, or one that would inflate past 1 MiB (a host's bytes: zeros deflate 1 000 times), is None."""
    frame = bytes(range(256)) * 40
    assert webm.inflated(zlib.compress(frame)) == frame
    assert webm.inflated(zlib.compress(frame)[:-5]) is None and webm.inflated(b"\x78\x9c junk") is None
    assert webm.inflated(zlib.compress(bytes(webm.MAX_INFLATED_BYTES + 1))) is None
