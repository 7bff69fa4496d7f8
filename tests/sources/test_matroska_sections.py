"""A Matroska song (.mka, .mkv) of the codecs a host serves in one (Opus, AAC, MP3, FLAC, PCM),
or beside a video or a second sound, as ffmpeg writes it: its 30 s section through Range
requests, where its clusters say it lies, and as long as they say it lasts; one whose clusters
say other than its first audio track's blocks play is fetched whole."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.sources.audio import AudioFetcher
from bot.sources.models import Query, QueryKind
from tests.fakes.audio_http import FakeAudioServer
from tests.sources.test_audio import DECODE_RATE, decode, section_start_in, song
from tests.sources.test_lying_lengths import webm_with_timestamp_scale, whole_from_ytdlp
from tests.sources.test_mp4_sections import ffmpeg

# name -> ffmpeg's arguments making it from long.ogg (Opus); ffmpeg's Matroska has a CRC-32
# element first in each cluster and in the set-up's elements (its write_crc32, on by default)
CODECS = {
    "opus": ("-c:a", "copy"),
    "aac": ("-c:a", "aac", "-b:a", "64k"),
    "mp3": ("-c:a", "libmp3lame", "-b:a", "64k"),
    "flac": ("-c:a", "flac"),
    "pcm": ("-c:a", "pcm_s16le"),
}
# name -> ffmpeg's inputs and arguments beside long.ogg (input 0): the song's Opus with a video
# track before it, or with a second sound (a 440 Hz tone) after it
TRACKS = {
    "video": (("-f", "lavfi", "-i", "color=c=red:s=64x64:r=5"),
              ("-map", "1:v", "-map", "0:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy")),
    "second_sound": (("-f", "lavfi", "-i", "sine=f=440"), ("-map", "0:a", "-map", "1:a", "-c:a", "libopus")),
}
LYING_SCALE = 0.3  # a TimestampScale this many times the stream's


@pytest.fixture(scope="module")
def made(audio_root, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("matroska")
    for name, args in CODECS.items():
        ffmpeg("-i", str(audio_root / "long.ogg"), *args, str(root / f"{name}.mka"))
    for name, (inputs, args) in TRACKS.items():
        ffmpeg("-i", str(audio_root / "long.ogg"), *inputs, "-shortest", *args, "-f", "matroska", str(root / f"{name}.mka"))
    for path in list(root.glob("*.mka")):
        (root / f"fast_{path.name}").write_bytes(webm_with_timestamp_scale(path.read_bytes(), LYING_SCALE))
    return root


@pytest.fixture(scope="module")
def decoded(made) -> dict[str, object]:
    """Each served song decoded whole, to find its sections in."""
    return {path.stem: decode(path) for path in made.glob("*.mka") if not path.name.startswith("fast_")}


async def cut_section(made: Path, tmp_path: Path, name: str, known_s: float | None):
    """`name`.mka fetched by its title, as a song `known_s` long (Spotify's length) or of a length
    the file states: (the fetched audio's section, its samples, the requests the host had)."""
    item = Query(kind=QueryKind.TEXT, text=name) if known_s is None else song(known_s, name, title=name)
    with FakeAudioServer(made) as server:
        fetcher = AudioFetcher(search_template=server.base_url + "/{title}.mka", tmp_dir=tmp_path)
        async with fetcher.fetch(item) as audio:
            return audio, decode(audio.path), server.requests_for(f"/{name}.mka")


@pytest.mark.parametrize("known", [True, False])
@pytest.mark.parametrize("name", [*CODECS, *TRACKS])
async def test_a_matroska_song_is_cut_by_its_clusters(made, decoded, long_duration, tmp_path, name, known):
    """ffmpeg's Matroska has a CRC-32 element before each cluster's timestamp, where the splicer
    looked for the timestamp alone: no cluster was found in any such file, and the song went to
    yt-dlp (its length known: ffmpeg's cut, which started 4.9 s before the window it was reported
    at; not known: the whole file, 23 MB of FLAC or PCM). Its clusters are read past that element:
    the section lies where it says within 50 ms, plays as long as it says, and costs two or three
    requests and a fraction of the file. Beside a video or a second sound, its first audio track
    (the classifier decodes that one) is where it says, and only its blocks are counted."""
    audio, section, requests = await cut_section(made, tmp_path, name, long_duration if known else None)
    assert audio.path.name == "section.webm" and audio.section_s is not None
    start, end = audio.section_s
    assert start == pytest.approx(long_duration / 2 - 15, abs=6.0) and 29.0 <= end - start <= 35.5
    assert len(section) / DECODE_RATE == pytest.approx(end - start, abs=0.1)
    assert section_start_in(decoded[name], section, start) == pytest.approx(start, abs=0.05)
    assert len(requests) <= 3 and all(r.range for r in requests)
    assert audio.bytes_downloaded < (made / f"{name}.mka").stat().st_size / 4


@pytest.mark.parametrize("known", [True, False])
@pytest.mark.parametrize("name", list(TRACKS))
async def test_a_matroska_song_beside_other_tracks_whose_timestamps_lie_is_fetched_whole(made, long_duration, tmp_path,
                                                                                      name, known):
    """Opus blocks were counted only in a file of one track: beside a video or a second sound, a
    TimestampScale 0.3 times the stream's went unchecked, and a section of the 240 s song was said
    to lie at 30-46 s (its length known) while it played 54 s, or at 19-50 s of the 72 s stated
    while it played 100-104 s. The first audio track's blocks are counted by its number, the other
    tracks' left out: the clusters say other than they play, and the file is fetched whole."""
    async with whole_from_ytdlp(made, tmp_path, f"fast_{name}.mka", long_duration if known else None) as audio:
        assert audio.path.read_bytes() == (made / f"fast_{name}.mka").read_bytes()
