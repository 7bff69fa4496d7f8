"""Audio fetch cost per song: a 30 s section versus the whole file, against a local server.

    .venv/bin/python -m benchmarks.fetch [--songs 3] [--runs 3]

Builds ~4 min songs by re-encoding real clips from the 4Q data set (Ogg/Opus; the same audio
remuxed to WebM and encoded to AAC/M4A, ADTS AAC and MP3), serves them from the local Range-capable
test server, and fetches each through `AudioFetcher`:
- full <fmt>     length unknown and a file name that ends in `.whole`: yt-dlp downloads the whole
                 file ("full Ogg" is the reference); under its own name its header would give
                 the length, and a section would be cut
- section Ogg    length known: two HTTP Range requests (header + the window's bytes)
- section WebM   the same, cutting whole Matroska clusters
- section M4A    three Range requests (header, the index after the audio, the window's samples)
- section MP3    two Range requests (header, the window's whole frames)
- section AAC    ADTS, length known: two Range requests (header, the window's whole frames)
- section FLAC   two Range requests (header, the window's frames, in proportion: no seek table)
- section WAV    two Range requests (header, the window's samples; 48 kHz stereo 16-bit, ~46 MB
                 whole: over the download limit, so no "full WAV")
(Other formats, WMA for one, go through yt-dlp's `download_ranges`: ffmpeg seeks over HTTP.)
Each fetch runs in the bot's download worker processes, started before the timing.
Bytes are what the server wrote to its sockets (on loopback the kernel buffers take whatever a
client does not read before it hangs up, so an abandoned open-ended request counts in full).
Prints one table of medians, with ratios to "full Ogg" measured in the same run.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from bot.sources.audio import AudioFetcher
from bot.sources.models import Query, QueryKind, TrackInfo
from tests.fakes.audio_http import FakeAudioServer, make_long_ogg, remux

SHARED_AUDIO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "4q" / "audio"
CLIPS_PER_SONG = 8  # 8 x 30 s: a 4-minute song
# A whole download: a file name that ends in no audio format's, so the fetcher does not look inside
# for the length it would otherwise cut a section by (the song's length is not known beforehand).
WHOLE_SUFFIX = ".whole"
REFERENCE = "full Ogg"


@dataclass(frozen=True)
class Mode:
    name: str
    ext: str
    section: bool


MODES = (
    Mode(REFERENCE, "ogg", False),
    Mode("section Ogg", "ogg", True),
    Mode("full WebM", "webm", False),
    Mode("section WebM", "webm", True),
    Mode("full M4A", "m4a", False),
    Mode("section M4A", "m4a", True),
    Mode("full MP3", "mp3", False),
    Mode("section MP3", "mp3", True),
    Mode("full AAC", "aac", False),
    Mode("section AAC", "aac", True),
    Mode("section FLAC", "flac", True),
    Mode("section WAV", "wav", True),
)


def build_songs(root: Path, count: int) -> list[tuple[str, float]]:
    clips = sorted(SHARED_AUDIO.glob("*.ogg"))
    songs = []
    for i in range(count):
        name = f"song{i}"
        make_long_ogg(clips[i * CLIPS_PER_SONG:(i + 1) * CLIPS_PER_SONG], root / f"{name}.ogg")
        remux(root / f"{name}.ogg", root / f"{name}.webm")
        remux(root / f"{name}.ogg", root / f"{name}.m4a", ("-c:a", "aac", "-b:a", "64k"))
        remux(root / f"{name}.ogg", root / f"{name}.mp3", ("-c:a", "libmp3lame", "-b:a", "64k"))
        remux(root / f"{name}.m4a", root / f"{name}.aac")
        remux(root / f"{name}.ogg", root / f"{name}.flac", ("-ar", "44100", "-c:a", "flac"))
        remux(root / f"{name}.ogg", root / f"{name}.wav", ("-ar", "48000", "-ac", "2", "-c:a", "pcm_s16le"))
        for ext in ("ogg", "webm", "m4a", "mp3", "aac"):  # the same files under a name no section is cut from
            os.link(root / f"{name}.{ext}", root / f"{name}.{ext}{WHOLE_SUFFIX}")
        songs.append((name, sf.info(str(root / f"{name}.ogg")).duration))
    return songs


async def fetch_once(server: FakeAudioServer, mode: Mode, name: str, duration: float, work: Path) -> tuple[int, float, int]:
    """(bytes served, wall seconds, bytes of the file handed to the classifier)."""
    server.reset_counts()
    if mode.section:
        path = f"/{name}.{mode.ext}"
        fetcher = AudioFetcher(search_template=f"{server.base_url}/{{spotify_id}}.{mode.ext}", tmp_dir=work)
        item: TrackInfo | Query = TrackInfo(key=f"spotify:{name}", title=name, duration_s=duration, spotify_id=name)
    else:
        path = f"/{name}.{mode.ext}{WHOLE_SUFFIX}"
        fetcher = AudioFetcher(search_template=f"{server.base_url}/{{title}}.{mode.ext}{WHOLE_SUFFIX}", tmp_dir=work)
        item = Query(kind=QueryKind.TEXT, text=name)
    started = time.perf_counter()
    async with fetcher.fetch(item) as audio:
        elapsed = time.perf_counter() - started
        kept = audio.path.stat().st_size
        assert (audio.section_s is None) != mode.section, (mode, audio)  # measured what it says
    return server.bytes_for(path), elapsed, kept


async def run(songs: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, work = Path(tmp) / "served", Path(tmp) / "work"
        root.mkdir()
        catalogue = build_songs(root, songs)
        results: dict[str, list[tuple[int, float, int]]] = {m.name: [] for m in MODES}
        with FakeAudioServer(root) as server:
            await AudioFetcher().warm_up()  # the download workers, as at the bot's start: not timed
            for _ in range(runs):
                for name, duration in catalogue:
                    for mode in MODES:
                        results[mode.name].append(await fetch_once(server, mode, name, duration, work))
        file_sizes = [(root / f"{n}.ogg").stat().st_size for n, _ in catalogue]
    ref_bytes = statistics.median(r[0] for r in results[REFERENCE])
    ref_time = statistics.median(r[1] for r in results[REFERENCE])
    durations = [d for _, d in catalogue]
    print(f"{songs} songs of {min(durations):.0f}-{max(durations):.0f} s "
          f"(Ogg {statistics.median(file_sizes) / 1e6:.2f} MB median), {runs} runs each; medians")
    print(f"{'mode':<14}{'served MB':>11}{'kept MB':>9}{'wall ms':>9}{'bytes/ref':>11}{'time/ref':>10}")
    for mode in MODES:
        rows = results[mode.name]
        served = statistics.median(r[0] for r in rows)
        wall = statistics.median(r[1] for r in rows)
        kept = statistics.median(r[2] for r in rows)
        print(f"{mode.name:<14}{served / 1e6:>11.3f}{kept / 1e6:>9.3f}{wall * 1e3:>9.0f}"
              f"{served / ref_bytes:>11.2f}{wall / ref_time:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--songs", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.songs, args.runs))


if __name__ == "__main__":
    main()
