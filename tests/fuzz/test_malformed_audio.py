"""Given a user attaches something that is not a song — an empty file, a cut-off Ogg, a header that
lies about its size, a PNG renamed .mp3, a 3-hour recording — /mood answers with a clear error,
quickly, through the real use case and the real classifier pool; nothing is decoded in full."""
from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import pytest_asyncio

from bot.replies import Attachment, Caller, ErrorReply
from bot.usecases.mood import GENERIC_ERROR, MoodUseCase
from inference.audio import MAX_SECONDS
from inference.pool import Classifier
from storage.database import Database
from tests.e2e.wiring import weights_dir

pytestmark = pytest.mark.asyncio(loop_scope="module")

CALLER = Caller("telegram", "1001", chat_id="1001")
THREE_HOURS_S = 3 * 3600
ANSWER_WITHIN_S = 10.0  # per file, warm pool; decoding 3 h would take ~20 s and >1 GB
LOW_RATE = 1000  # Hz: a 3-hour file stays small and is written in a fraction of a second


def wav_header(frames: int, rate: int, channels: int = 1, bits: int = 8) -> bytes:
    block = channels * bits // 8
    data = frames * block
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE" + b"fmt "
            + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)
            + b"data" + struct.pack("<I", data))


def sparse_three_hour_wav(path: Path) -> Path:
    """A real, playable 3-hour WAV that costs no disk: the header, then a hole."""
    frames = THREE_HOURS_S * 8000
    with open(path, "wb") as f:
        f.write(wav_header(frames, 8000))
        f.truncate(44 + frames)
    return path


def three_hour_matroska(path: Path) -> Path:
    """A 3-hour file only ffmpeg reads (libsndfile does not know Matroska): the decode path
    whose length is known only by decoding."""
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", f"anullsrc=r={LOW_RATE}:cl=mono", "-t", str(THREE_HOURS_S), "-c:a", "pcm_u8",
                    str(path)], check=True)
    return path


def png_as_mp3(path: Path) -> Path:
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0" * 4 + b"\0" * 4096)
    return path


def lying_header(path: Path) -> Path:
    """RIFF/WAVE that claims 4 GB of data, 65535 channels and an absurd rate, then 1 kB of bytes."""
    fmt = struct.pack("<IHHIIHH", 16, 1, 65535, 0xFFFFFFFF, 0xFFFFFFFF, 65535, 16)
    path.write_bytes(b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVE" + b"fmt " + fmt
                     + b"data" + struct.pack("<I", 0xFFFFFFF0) + b"\x01" * 1024)
    return path


@pytest.fixture(scope="module")
def scratch():
    folder = Path(tempfile.mkdtemp(prefix="moodbot-malformed-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def classifier(scratch):
    async with Classifier(weights_dir(), workers=1, timeout_s=30) as warm:
        yield warm


@pytest_asyncio.fixture(loop_scope="module")
async def mood(mongo_uri, db_name, classifier):
    db = await Database.connect(mongo_uri, db_name)
    await db.init()
    yield MoodUseCase(db, classifier, fetcher=None)
    await db.close()


def make_cases(folder: Path, shared_data: Path) -> dict[str, tuple[Path, str]]:
    clip = shared_data / "audio" / "MT0000004637.ogg"
    truncated = folder / "cut.ogg"
    truncated.write_bytes(clip.read_bytes()[:20_000])  # ~3 s of a 30 s clip, cut mid-page
    empty = folder / "empty.mp3"
    empty.write_bytes(b"")
    return {
        "empty file": (empty, "not audio we can read"),
        "truncated ogg": (truncated, "I need at least"),
        "lying header": (lying_header(folder / "huge.wav"), "not audio we can read"),
        "png renamed .mp3": (png_as_mp3(folder / "cover.mp3"), "not audio we can read"),
        "3 h wav (header)": (sparse_three_hour_wav(folder / "long.wav"), f"over {MAX_SECONDS // 60} minutes"),
        "3 h matroska (decoded)": (three_hour_matroska(folder / "long.mka"), f"over {MAX_SECONDS // 60} minutes"),
    }


async def test_malformed_attachments_get_a_clear_error_quickly(mood, scratch, shared_data):
    cases = make_cases(scratch, shared_data)
    outcomes = {}
    for name, (path, words) in cases.items():
        started = time.monotonic()
        reply = await mood.run(CALLER, attachment=Attachment(str(path), path.name, path.stat().st_size))
        outcomes[name] = (reply, time.monotonic() - started, words)
    for name, (reply, seconds, words) in outcomes.items():
        assert isinstance(reply, ErrorReply), f"{name}: {reply}"
        assert reply.message != GENERIC_ERROR and words in reply.message, f"{name}: {reply.message}"
        assert seconds < ANSWER_WITHIN_S, f"{name} took {seconds:.1f} s"
    # The pool still answers real songs afterwards (no worker was lost to the bad files).
    clip = shared_data / "audio" / "MT0000011357.ogg"
    good = await mood.run(CALLER, attachment=Attachment(str(clip), clip.name, clip.stat().st_size))
    assert not isinstance(good, ErrorReply), good
