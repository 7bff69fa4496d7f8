"""From an audio file to the main model's input: one obvious path, shared by training and serving.

File -> mono float32 at SAMPLE_RATE (`load_audio`) -> the 30 s to analyse (`select_section`)
-> three 10 s segments (`split_segments`) -> log-mel, (3, N_MELS, N_FRAMES) (`log_mel`).
`main_model_input` chains them. Nothing here imports torch: serving runs on numpy + onnxruntime.

Why these mel parameters: the reference input of the brief, 3 x (128 x 431) at sr 22050 / hop 512,
costs ~11.6 GFLOP per song in ResNet18, far too slow to train on two shared CPU cores. Hop 1024 and
64 mels give 3 x (64 x 214): ~4x fewer pixels, ~4x cheaper to train and serve. 64 mel bands up to
11 kHz still resolve timbre and harmony well enough for four broad moods, and 46 ms frames keep the
rhythm. See the model card for the measured training time per epoch.

Frames use `center=False` and every segment starts on a multiple of HOP_LENGTH, so the log-mel of a
segment is exactly a slice of the log-mel of the whole section. Training caches the section's
log-mel once and crops it at random offsets; serving crops it at the fixed offsets below. Both see
the same numbers.
"""
from __future__ import annotations

import io
import logging
import os
import struct
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
import soxr

from inference.result import (
    FILE_NAME,
    MIN_SECONDS,
    SilentAudioError,
    TooLongAudioError,
    TooShortAudioError,
    UnreadableAudioError,
    too_long_words,
    too_short_words,
)

log = logging.getLogger(__name__)

# Hard-coded audio hyper-parameters.
SAMPLE_RATE = 22050
N_FFT = 2048
HOP_LENGTH = 1024
N_MELS = 64
FMIN = 20.0
FMAX = SAMPLE_RATE / 2
SEGMENT_SECONDS = 10
N_SEGMENTS = 3
SECTION_SECONDS = 30
# Longest audio ever decoded (the bot's MAX_AUDIO_DURATION_S default). The decoded audio is held in
# memory: a 3-hour file is ~1 GB of float32 at SAMPLE_RATE, so a longer file is refused before
# decoding. A caller may ask for less (`load_audio(max_seconds=...)`), never for more.
MAX_SECONDS = 20 * 60
# A header claiming more than this is lying (the fuzz suite's WAV claims 65535 channels at 4 GHz).
MAX_NATIVE_RATE = 768_000
MAX_CHANNELS = 64
# A file at a higher rate than this may last MAX_SECONDS of samples at this rate, no longer: decoding
# and resampling take time in proportion to the samples, however few bytes hold them (a 4 MB FLAC
# of 19 minutes at 384 kHz, silence around a tone, holds twice the samples of one at 192 kHz).
FULL_LENGTH_MAX_RATE = 192_000
# A float sample louder than this is not sound: a float file at int32 scale (2**31) is the loudest
# real mistake, and from ~1e16 the float32 spectra overflow and the models answer NaN.
MAX_SAMPLE = 2.0**31
# Decoded frames are averaged to mono, and resampled to the models' rate, every this many samples
# (per channel): only the mono audio at that rate is kept, so memory follows the length alone, not
# the channels or the file's rate (a 19-minute 96 kHz 5.1 FLAC of 6.5 MB held ~10 GB when all its
# channels were kept until the end; a 19-minute 192 kHz 5.1 one, ~1.8 GB when its mono audio was
# kept at 192 kHz).
MONO_RUN_SAMPLES = 1 << 16
# A header's length is believed, and a file refused from it, only if the file holds that much at
# this bit rate at least (AMR voice is 4.75 kb/s) and at this share of the stream's stated bit rate;
# otherwise the length is found by decoding, within the same limits.
MIN_STATED_BIT_RATE = 4000
# FFmpeg's demuxers that read other files or open connections from what a file says (a playlist, a
# concat list, a DASH or IMF manifest, an image pattern, an SDP or RTSP description, a filter graph).
# A user's upload is decoded as the file it is: a playlist named .m3u8 would otherwise have FFmpeg
# read the local files it lists. FFmpeg has no block list, so the allowed list is every other one.
INDIRECT_FORMATS = frozenset({"hls", "applehttp", "concat", "dash", "imf", "image2", "image2pipe",
                              "sdp", "rtp", "rtsp", "lavfi", "avisynth", "vapoursynth"})
MIN_STATED_SHARE = 0.5
# A stereo file whose right channel is its left one inverted (wired out of phase) plays as music,
# and its channels' mean is silence. Where the mean's power is under this share of the channels',
# each channel is first turned to the phase of the first one that sounds (-20 dB: channels that
# merely differ, as uncorrelated ones, give -3 dB).
CANCELLED_SHARE = 0.01
# A song recorded to one side of a stereo file (a phone, a mono source wired to one input) plays at
# full level, and the mean had it 6 dB quieter (the models hear loudness: 0.009-0.27 of probability
# on eight 4Q clips). A channel whose power over the whole file is under this share of the loudest
# one's is dead, and left out of the mean. -40 dB: a -70 dBFS input's hiss is under it beside 99.9%
# of the 4Q clips at their own level (at -50 dB, 91%; at -60 dB, 18%), and a channel 40 dB down adds
# nothing a listener hears, while a hard-panned mix's quieter side, 20 dB down, is still mixed.
DEAD_CHANNEL_SHARE = 1e-4
# The rule is decided at the end, so the means of each channel count are resampled apart until then,
# each over the whole file. A file changes its channels once or twice (a mono jingle before a stereo
# song); past this many resamplers, a crafted one's further means go into the mix as they are.
MAX_RESAMPLERS = 4
# A surround file's mono mix, as FFmpeg downmixes it (the ITU-R BS.775 matrix) scaled so that the
# front pair weighs what stereo's two channels do: the centre (voices) at +3 dB over a front
# channel, the surrounds at -3 dB, the LFE left out. The plain mean had a 5.1 song's voices at a
# sixth and, for a stereo mix carried in a 5.1 file, the whole song 9.5 dB quieter than in stereo.
FRONT_WEIGHT = 0.5
DOWNMIX_WEIGHTS = {
    "FL": FRONT_WEIGHT, "FR": FRONT_WEIGHT, "FC": FRONT_WEIGHT * 2**0.5, "LFE": 0.0,
    **dict.fromkeys(("BL", "BR", "SL", "SR"), FRONT_WEIGHT / 2**0.5),
}
MIN_VIDEO_SECONDS = 1  # a file with pictures but no sound, at least this long, is a muted video
# A chained Ogg (songs joined end to end: a radio recording, `cat a.ogg b.ogg`) whose next link has
# another rate, channel count or codec stops FFmpeg's demuxer; that link is then opened as a file
# of its own. At most this many links are opened (a radio hour holds ~20 songs, jingles and ads),
# and the next link's first page is looked for this far after the last packet read: the demuxer
# reads page by page (64 KiB at most each), and resyncs past 64 KiB of junk at most.
MP4_BOX_HEADER, MP4_LARGE_BOX_HEADER = 8, 16  # a box's 32-bit size and type; then a 64-bit size where it is 1
MAX_MP4_TOP_BOXES = 1000  # top-level boxes walked to find an MP4's index in a file FFmpeg could not read
MAX_OGG_LINKS = 100
MAX_OGG_LINK_GAP = 1 << 20  # bytes
OGG_CAPTURE = b"OggS"
OGG_BOS_FLAG = 0x02  # header type: the first page of a logical stream
OGG_PAGE_HEADER = 27  # bytes: capture, version, type, granule, serial, page sequence (18-21), CRC, segments
# FFmpeg's MP4 demuxer keeps and drops an MP4's samples by their timestamps: the samples its edit
# list spans, counted at the media timescale, and in a fragmented file none whose decode time goes
# back over a sample read before (it flags them to be discarded). Where those timestamps lie (a
# timescale 0.3 times the rate had the edit list's 240 s keep the song's first 72 s; decode times
# 0.3 times the stream's, 75 s of its fragments' ends), the packets' durations are not what they
# play, or packets are discarded after the sound has begun: the file is decoded again, every packet
# in the file's order, whatever its timestamps (`_TimesLie`). An honest file's priming and the
# encoder's rounding stay far under these.
MP4_DEMUXER = "mp4"  # one of the names of FFmpeg's mov demuxer: "mov,mp4,m4a,3gp,3g2,mj2"
TIMES_SLACK_S = 0.5
TIMES_SLACK_SHARE = 0.05  # of the seconds played: a timescale too coarse for the frames' length rounds
# FFmpeg's sample formats (planar ones end in "p") as numpy types.
SAMPLE_DTYPES = {"u8": np.uint8, "s16": np.int16, "s32": np.int32, "s64": np.int64,
                 "flt": np.float32, "dbl": np.float64}
RESAMPLE_QUALITY = "HQ"  # soxr's high quality, the same as librosa's res_type="soxr_hq"
SILENCE_DB = -60.0  # RMS of the section in dBFS under which we call it silence
LOG_FLOOR = 1e-10  # power floor before the log, -100 dB

# Derived: never retype these.
SECTION_SAMPLES = SECTION_SECONDS * SAMPLE_RATE  # 661500
MIN_SAMPLES = MIN_SECONDS * SAMPLE_RATE
N_FRAMES = (SEGMENT_SECONDS * SAMPLE_RATE - N_FFT) // HOP_LENGTH + 1  # 214 frames per segment
SEGMENT_SAMPLES = N_FFT + (N_FRAMES - 1) * HOP_LENGTH  # 220160 samples, 9.98 s
SEGMENT_STRIDE = N_FRAMES * HOP_LENGTH  # segments sit back to back in frame space
SECTION_FRAMES = (SECTION_SAMPLES - N_FFT) // HOP_LENGTH + 1  # 644 frames in a 30 s section
# Candidate windows for long songs: start every CANDIDATE_STEP_SECONDS in the middle half of the song.
CANDIDATE_STEP_SECONDS = 5

assert (N_SEGMENTS - 1) * SEGMENT_STRIDE + SEGMENT_SAMPLES <= SECTION_SAMPLES


def load_audio(path: str | Path, sr: int = SAMPLE_RATE, *, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """Decode any audio file to mono float32 at `sr`; a file longer than `max_seconds` (at most
    MAX_SECONDS) is refused, from its header when it says its length, else while decoding.

    FFmpeg's decoders run in-process through PyAV, for every container (wav, flac, ogg/opus, mp3,
    m4a/aac, webm/opus): nothing is re-encoded, and no ffmpeg process is started (starting one
    costs ~150 ms here, more than decoding a 30 s clip). Its native Opus decoder is ~3x faster
    than libopus, and on the 4Q clips the result matches libsndfile + librosa's soxr_hq with an
    SNR of 105 dB or more. Channels are averaged (a surround layout is downmixed as FFmpeg does it,
    a stereo pair wired out of phase is turned back first, and a dead channel is left out), then
    soxr's HQ resampler brings the native rate to `sr`, run by run as the file is decoded: memory
    follows the mono audio at `sr`, not the file's rate or channels.
    """
    path = Path(path)
    if not path.exists():
        raise UnreadableAudioError.about_file(f"Cannot find the audio file {FILE_NAME}.", path.name)
    if path.is_dir():
        raise UnreadableAudioError.about_file(f"{FILE_NAME} is a folder, not an audio file.", path.name)
    if not path.is_file():  # a FIFO or a device: opening one may block for ever
        raise UnreadableAudioError.about_file(f"{FILE_NAME} is not a regular file, so not an audio file.", path.name)
    try:
        audio, peak = _decode(path, min(max_seconds, MAX_SECONDS), sr)
    except PermissionError:  # the file may be fine audio: say what is wrong
        raise UnreadableAudioError.about_file(f"I am not allowed to read the file {FILE_NAME}.", path.name) from None
    except (av.FFmpegError, ValueError, OSError, LookupError) as error:
        log.debug("Cannot decode %s: %s", path, error)
        raise _unreadable(path) from None
    # The peak is NaN where a sample is, and the comparison is False for it: NaN, inf and absurd
    # peaks all fail.
    if audio.size == 0 or not peak <= MAX_SAMPLE:
        raise UnreadableAudioError.about_file(f"The file {FILE_NAME} holds no playable audio.", path.name)
    return audio


def _unreadable(path: Path) -> UnreadableAudioError:
    if _mp4_cut_before_index(path):
        return UnreadableAudioError.about_file(
            f"The file {FILE_NAME} is cut short: it ends before its index, which an MP4 needs to be played. "
            "Send the whole file.", path.name)
    return UnreadableAudioError.about_file(f"The file {FILE_NAME} is not audio we can read.", path.name)


def _mp4_cut_before_index(path: Path) -> bool:
    """Whether `path` is an MP4 (its first box `ftyp`) whose top-level boxes end, or run past its
    end, before a `moov`: ffmpeg, like most encoders, writes that index after the audio, and a
    download or copy that stopped has none. False for any other file, or one whose boxes cannot be
    read; FFmpeg has failed on it first."""
    try:
        with open(path, "rb") as file:
            total, at = os.fstat(file.fileno()).st_size, 0
            for _ in range(MAX_MP4_TOP_BOXES):
                if at >= total:
                    return at > 0  # an empty file is no MP4
                file.seek(at)
                head = file.read(MP4_LARGE_BOX_HEADER)
                if len(head) < MP4_BOX_HEADER:
                    return at > 0  # nor is a few bytes of anything
                size, kind = struct.unpack_from(">I4s", head)
                if at == 0 and kind != b"ftyp" or kind == b"moov":
                    return False
                if size == 1:  # a 64-bit size follows
                    size = struct.unpack_from(">Q", head, MP4_BOX_HEADER)[0] if len(head) == MP4_LARGE_BOX_HEADER else 0
                elif size == 0:  # to the end of the file
                    size = total - at
                if size < MP4_BOX_HEADER:
                    return False
                at += size
    except (OSError, struct.error):
        return False
    return False


def _soundless(path: Path, container) -> UnreadableAudioError:
    """A file without an audio stream: a video that lasts (a muted recording), or anything else (a
    picture has one frame and no length, or a single frame's)."""
    if container.streams.video and (container.duration or 0) >= av.time_base * MIN_VIDEO_SECONDS:
        return UnreadableAudioError.about_file(
            f"The file {FILE_NAME} is a video without sound; there is nothing to listen to.", path.name)
    return _unreadable(path)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """soxr HQ, exactly as `librosa.resample(res_type="soxr_hq")` does it (length included),
    without importing librosa."""
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if orig_sr == target_sr:
        return audio
    resampled = soxr.resample(audio, orig_sr, target_sr, quality=RESAMPLE_QUALITY)
    length = int(np.ceil(audio.size * target_sr / orig_sr))  # librosa's fix_length
    if resampled.size < length:
        resampled = np.pad(resampled, (0, length - resampled.size))
    return np.ascontiguousarray(resampled[:length], dtype=np.float32)


def _refuse_if_too_long(seconds: float, path: Path, native_sr: int, max_seconds: float) -> None:
    if seconds > max_seconds:
        raise TooLongAudioError.about_file(too_long_words(FILE_NAME, max_seconds), path.name)
    if seconds * native_sr > _max_decoded_samples():
        minutes = _max_decoded_samples() / native_sr / 60
        raise TooLongAudioError.about_file(
            f"The file {FILE_NAME} is too long for its sample rate of {native_sr / 1000:g} kHz (at that rate "
            f"I take {minutes:.1f} minutes at most); send it at 48 kHz, or a shorter song.", path.name
        )


def _max_decoded_samples() -> int:
    return MAX_SECONDS * FULL_LENGTH_MAX_RATE


class MonoPiece(NamedTuple):
    """A run of frames made mono."""

    rate: int
    mono: np.ndarray
    channel_power: np.ndarray | None  # each channel's sum of squares where `mono` is their mean


class RunLayout(NamedTuple):
    """What frames share to be made mono together."""

    planar: bool
    channels: int
    rate: int
    name: str  # FFmpeg's channel layout: "stereo", "5.1", or "6 channels" when the places are not named


@lru_cache(maxsize=1)
def _opening_options() -> dict[str, str]:
    """What `av.open` is told for a user's file: the file itself only (its protocol), read by any
    demuxer but those that follow what it names (`INDIRECT_FORMATS`). FFmpeg checks the demuxer
    it probed against the list before reading the header, so nothing a playlist names is opened."""
    allowed = sorted(set(av.formats_available) - INDIRECT_FORMATS)
    return {"protocol_whitelist": "file", "format_whitelist": ",".join(allowed)}


def _decode(path: Path, max_seconds: float, sr: int) -> tuple[np.ndarray, float]:
    """(mono float32 at `sr`, its peak at the file's own rate). Refuses a file over `max_seconds`
    from its header when it says so, else as soon as the decoded audio passes the limit. Each run
    of frames is made mono and resampled as it comes: memory follows the mono audio at `sr`
    whatever the file's rate and channels, and whatever the container claims. An MP4 whose
    timestamps are not what its packets play is decoded packet by packet, its timestamps aside."""
    try:
        return _decode_as(path, max_seconds, sr, every_packet=False)
    except _TimesLie:
        log.debug("%s: its timestamps are not what its packets play; decoding every packet", path)
        return _decode_as(path, max_seconds, sr, every_packet=True)


def _decode_as(path: Path, max_seconds: float, sr: int, every_packet: bool) -> tuple[np.ndarray, float]:
    """`_decode`'s work; `every_packet`: an MP4's edit list ignored and no packet discarded."""
    options = {**_opening_options(), "ignore_editlist": "1"} if every_packet else _opening_options()
    with av.open(str(path), metadata_errors="ignore", container_options=options) as container:
        if not container.streams.audio:
            raise _soundless(path, container)
        stream = container.streams.audio[0]
        if not _plausible(stream):
            raise _unreadable(path)
        native_sr = stream.codec_context.sample_rate
        stated = _stated_seconds(container, stream, path.stat().st_size)
        if stated is not None:
            _refuse_if_too_long(stated, path, native_sr, max_seconds)
        # A chained Ogg or concatenated MP3 may change its rate midway: each rate's audio is
        # brought to the first rate (ffmpeg does the same when it plays such a file), then to `sr`.
        # The limits below hold for the whole file, across an Ogg's links.
        mix = _MonoMix(native_sr, sr)
        buffers = RunBuffers()
        run: list[list[np.ndarray]] = []  # per plane, the frames' samples as decoded
        run_layout: RunLayout | None = None
        run_samples = decoded = 0
        decoded_seconds = 0.0
        for frame in _frames(container, stream, path, every_packet):
            if not 0 < frame.sample_rate <= MAX_NATIVE_RATE:
                raise _unreadable(path)
            # A plain tuple per frame (a RunLayout costs 0.4 us, 0.6 ms for a 30 s Opus clip).
            layout = (frame.format.is_planar, frame.layout.nb_channels, frame.sample_rate, frame.layout.name)
            # A stream may change its channels or rate midway; and a long run is made mono as it goes.
            if run and (layout != run_layout or run_samples >= MONO_RUN_SAMPLES):
                mix.add(_mono(run, run_layout, buffers))
                run, run_samples = [], 0
            if layout != run_layout:
                run_layout = RunLayout(*layout)
            planes = _planes(frame, run_layout.planar, run_layout.channels)
            run = run or [[] for _ in planes]
            for kept, plane in zip(run, planes):
                kept.append(plane)
            run_samples += frame.samples
            decoded += frame.samples
            decoded_seconds += frame.samples / frame.sample_rate
            if decoded_seconds > max_seconds or decoded > _max_decoded_samples():
                _refuse_if_too_long(max(decoded_seconds, decoded / frame.sample_rate), path, frame.sample_rate,
                                    max_seconds)
        if run:
            mix.add(_mono(run, run_layout, buffers))
    return mix.mono()


class _Resampler:
    """Mono runs at any rates -> mono float32 at `sr`, run by run: what `resample` makes of the
    whole file, in its two steps (each stretch at a rate other than the header's is brought to the
    header's rate, then all of it to `sr`). soxr's stream gives its one-shot samples bit for bit
    whatever the runs, so only the output and a run are held, never the file at its own rate."""

    def __init__(self, native_sr: int, sr: int):
        self._native_sr = native_sr
        self._stretch: _LengthedStream | None = None  # the current stretch's rate -> native_sr
        self._stretch_rate = 0
        self._to_sr = _LengthedStream(native_sr, sr)
        self._out: list[np.ndarray] = []

    def add(self, rate: int, mono: np.ndarray) -> None:
        if rate != self._stretch_rate:
            self._end_stretch()
            self._stretch_rate = rate
            self._stretch = _LengthedStream(rate, self._native_sr)
        self._out.append(self._to_sr.add(self._stretch.add(mono)))

    def mono(self) -> np.ndarray:
        self._end_stretch()
        self._out.append(self._to_sr.end())
        out, self._out = self._out, []
        return np.concatenate(out) if len(out) > 1 else out[0]

    def _end_stretch(self) -> None:
        if self._stretch is not None:
            self._out.append(self._to_sr.add(self._stretch.end()))
            self._stretch = None


class _LengthedStream:
    """soxr's stream resampler, at RESAMPLE_QUALITY, ending at `resample`'s length: the input's
    length at the new rate rounded up (librosa's fix_length). Nothing is given out past the length
    the input so far guarantees, so a stream whose last samples are cut is never cut early."""

    def __init__(self, in_rate: int, out_rate: int):
        self._rates = in_rate, out_rate
        self._stream = None
        if in_rate != out_rate:
            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY)
        self._taken = self._given = 0  # samples in, and out
        self._held = np.zeros(0, dtype=np.float32)  # out past the length guaranteed so far

    def add(self, samples: np.ndarray) -> np.ndarray:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._stream is None:
            return samples
        self._taken += samples.size
        out = self._stream.resample_chunk(samples)
        if self._held.size:
            out = np.concatenate([self._held, out])
        given = out[: max(self._length() - self._given, 0)]
        self._held = out[given.size :].copy()
        self._given += given.size
        return given

    def end(self) -> np.ndarray:
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        rest = np.concatenate([self._held, self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)])
        missing = self._length() - self._given
        return np.pad(rest[:missing], (0, max(missing - rest.size, 0)))

    def _length(self) -> int:
        in_rate, out_rate = self._rates
        return -(-self._taken * out_rate // in_rate)


class _MonoMix:
    """The file's mono runs as they are decoded -> its mono audio at `sr`, with the dead-channel
    rule (`DEAD_CHANNEL_SHARE`) applied to the means of channels.

    The rule is decided once for the whole file, from each channel's power over all of it, not run
    by run: a one-sided intro (the right silent for its first seconds) is part of the mix, and a
    run-by-run choice would play it 6 dB louder than the rest, the level jumping when the other side
    comes in. The mean is then scaled by channels / live ones: the mean of the live channels
    (exactly, for a dead channel of zeros) plus the dead ones' hiss, which stays 40 dB or more under
    the song. A stream whose channels change midway is judged per channel count.

    Resampling is linear, so the scale can come after it: the means of each channel count are
    resampled on their own (silence where the others play, so every resampler sees the whole file's
    length), and scaled and summed at the end. An ordinary file has one, and is resampled once.
    """

    def __init__(self, native_sr: int, sr: int):
        self._rates = native_sr, sr
        self._resamplers: dict[int, _Resampler] = {}  # by the channels averaged; 0: mono, or a downmix
        self._power: dict[int, np.ndarray] = {}  # each channel's power over the file, per channel count
        self._peak: dict[int, float] = {}
        self._stretches: list[list[int]] = []  # [rate, samples] so far: a late resampler's silence

    def add(self, piece: MonoPiece) -> None:
        key = 0 if piece.channel_power is None else piece.channel_power.size
        if key not in self._resamplers and len(self._resamplers) >= MAX_RESAMPLERS:
            log.debug("Over %d channel counts; the mean of %d channels goes in as it is", MAX_RESAMPLERS, key)
            key = 0
        if key not in self._resamplers:
            self._resamplers[key] = self._silent_so_far()
        if key:
            self._power[key] = self._power.get(key, 0.0) + piece.channel_power
        # NaN is kept (np.maximum propagates it): such a file is refused.
        loudest = np.maximum(piece.mono.max(initial=0), -piece.mono.min(initial=0))
        self._peak[key] = np.maximum(self._peak.get(key, 0.0), loudest)
        for other, resampler in self._resamplers.items():
            resampler.add(piece.rate, piece.mono if other == key else np.zeros(piece.mono.size, dtype=np.float32))
        if self._stretches and self._stretches[-1][0] == piece.rate:
            self._stretches[-1][1] += piece.mono.size
        else:
            self._stretches.append([piece.rate, piece.mono.size])

    def mono(self) -> tuple[np.ndarray, float]:
        """(the mono audio at `sr`, its peak at the file's rate)."""
        mono, peak = None, 0.0
        for key, resampler in self._resamplers.items():
            part, gain = resampler.mono(), self._gain(key)
            if gain != 1:
                np.multiply(part, gain, out=part)
            mono = part if mono is None else np.add(mono, part, out=mono)
            peak = np.maximum(peak, self._peak[key] * gain)
        if mono is None:
            return np.zeros(0, dtype=np.float32), 0.0
        return mono, float(peak)

    def _gain(self, key: int) -> np.float32:
        """channels / live ones for a mean of channels, 1 for every ordinary file."""
        power = self._power.get(key)
        if power is None:
            return np.float32(1)
        live = int(np.count_nonzero(power >= DEAD_CHANNEL_SHARE * power.max()))  # all, for silence
        return np.float32(power.size / live)

    def _silent_so_far(self) -> _Resampler:
        resampler = _Resampler(*self._rates)
        for rate, samples in self._stretches:
            for start in range(0, samples, MONO_RUN_SAMPLES):
                resampler.add(rate, np.zeros(min(MONO_RUN_SAMPLES, samples - start), dtype=np.float32))
        return resampler


def _stated_seconds(container, stream, size: int) -> float | None:
    """The length the header states, if the file is big enough to hold it. A file cut short keeps
    its header: the first 3 MB of a 40-minute MP3 (5.6 minutes of sound) say 40 minutes, as does a
    30 s MP3 whose Xing header counts frames it does not have; both were refused as too long."""
    if container.duration is None or container.duration <= 0:
        return None
    seconds = container.duration / av.time_base
    holds = size * 8 / seconds  # the bit rate the file would have if it lasted that long
    if holds < max(MIN_STATED_BIT_RATE, (stream.bit_rate or 0) * MIN_STATED_SHARE):
        log.debug("%s states %.0f s, more than its %d bytes hold; decoding to find out",
                  container.name, seconds, size)
        return None
    return seconds


def _plausible(stream) -> bool:
    """Whether an audio stream's header states a rate and channels a real file may have (and a
    codec FFmpeg knows: PyAV gives a stream of an unknown one no codec context)."""
    context = stream.codec_context
    if context is None:
        return False
    rate, channels = int(context.sample_rate or 0), int(context.channels or 0)
    return 0 < rate <= MAX_NATIVE_RATE and 0 < channels <= MAX_CHANNELS


def _frames(container, stream, path: Path, every_packet: bool = False):
    """Decoded frames; a corrupt packet is skipped, as the ffmpeg command line does, and a file cut
    short, or one that goes on in a form FFmpeg's demuxer does not support, ends the stream there
    rather than failing it. A chained Ogg whose next link the demuxer cannot go on into (another
    rate, channel count or codec) goes on from that link, opened as a file of its own, as players do.
    An MP4's packets are checked against their timestamps (`_Timeline`), unless `every_packet`:
    then each is decoded, none discarded."""
    stopped_at = yield from _stream_frames(container, stream, path, every_packet)
    if stopped_at is None or container.format.name != "ogg":
        return
    start = 0  # of the link just decoded, in the file
    with open(path, "rb") as file:
        for _ in range(MAX_OGG_LINKS - 1):
            start = _next_ogg_link(file, start + stopped_at + 1)
            if start is None:
                log.debug("%s: no next Ogg link; decoding what came before", path)
                return
            try:
                link = av.open(_FileFrom(file, start), format="ogg", metadata_errors="ignore")
            except (av.FFmpegError, ValueError):
                log.debug("%s goes on with a link FFmpeg cannot open; decoding what came before", path)
                return
            with link:
                if not link.streams.audio or not _plausible(link.streams.audio[0]):
                    log.debug("%s goes on with a link without audio we read; decoding what came before", path)
                    return
                stopped_at = yield from _stream_frames(link, link.streams.audio[0], path)
            if stopped_at is None:
                return
        log.debug("%s has over %d links; decoding the first ones", path, MAX_OGG_LINKS)


def _stream_frames(container, stream, path: Path, every_packet: bool = False):
    """One container's decoded frames (see `_frames`); returns None when it ends, or where the
    demuxer gave up on a form it does not support: the byte position of the last packet read."""
    packet = None
    mp4 = MP4_DEMUXER in container.format.name.split(",")
    timeline = _Timeline(stream) if mp4 and not every_packet else None
    try:
        for packet in container.demux(stream):
            try:
                if every_packet and packet.size:  # a copy, without the demuxer's flags (discard)
                    frames = stream.codec_context.decode(av.Packet(bytes(packet)))
                else:
                    frames = packet.decode()
            except av.InvalidDataError:
                log.debug("Skipping a corrupt packet in %s", path)
                continue
            if timeline is not None:
                timeline.check(packet, frames)
            yield from frames
    except av.InvalidDataError:
        log.debug("%s ends in corrupt data; decoding what came before", path)
    except av.PatchWelcomeError:  # e.g. a chained Ogg whose next song has another rate or channels
        log.debug("%s goes on in a form FFmpeg's demuxer cannot read", path)
    except av.ArgumentError:  # an Ogg's demuxer says this where a chain's next song has another codec
        if container.format.name != "ogg":
            raise
        log.debug("%s goes on with another codec", path)
    else:
        return None
    return max(packet.pos or 0, 0) if packet is not None else 0


class _TimesLie(Exception):
    """An MP4's packets do not play what their timestamps say (see `TIMES_SLACK_S`)."""


class _Timeline:
    """An MP4 stream's packets, as they are decoded, against their timestamps: the seconds their
    durations state against the seconds their frames play, and the packets discarded once the sound
    has begun. `_TimesLie` where either is over the slack."""

    def __init__(self, stream):
        self._tick = float(stream.time_base or 0)
        self._stated = self._played = self._dropped = 0.0
        self._frame_s = 0.0  # the last frame's length: what a discarded packet would have played

    def check(self, packet, frames) -> None:
        played = sum(frame.samples / frame.sample_rate for frame in frames if frame.sample_rate > 0)
        if played:
            self._frame_s = played
            if packet.duration and packet.duration > 0:
                self._stated += packet.duration * self._tick
                self._played += played
        elif packet.is_discard and self._frame_s:
            self._dropped += self._frame_s
        if self._dropped > TIMES_SLACK_S or (
                abs(self._stated - self._played) > TIMES_SLACK_S + TIMES_SLACK_SHARE * self._played):
            raise _TimesLie


def _next_ogg_link(file, after: int) -> int | None:
    """The byte position of the first Ogg page from `after` on (within MAX_OGG_LINK_GAP) that
    begins a logical stream, or None."""
    file.seek(after)
    window = file.read(MAX_OGG_LINK_GAP + OGG_PAGE_HEADER)
    at = window.find(OGG_CAPTURE)
    while 0 <= at < MAX_OGG_LINK_GAP:
        header = window[at : at + OGG_PAGE_HEADER]
        # version 0, the first-page flag, and page number 0: not four bytes of audio that look alike
        first_page = len(header) == OGG_PAGE_HEADER and header[4] == 0 and header[5] & OGG_BOS_FLAG
        if first_page and not any(header[18:22]):
            return after + at
        at = window.find(OGG_CAPTURE, at + 1)
    return None


class _FileFrom:
    """A read-only view of an open file from byte `start` on, which FFmpeg reads as a whole file."""

    def __init__(self, file, start: int):
        self._file, self._start = file, start
        file.seek(start)

    def read(self, size: int) -> bytes:
        return self._file.read(size)

    def tell(self) -> int:
        return self._file.tell() - self._start

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        origins = {io.SEEK_SET: self._start, io.SEEK_CUR: self._file.tell()}
        origin = origins[whence] if whence in origins else self._file.seek(0, io.SEEK_END)
        if origin + offset < self._start:  # before the view's first byte, as before a file's
            raise ValueError("negative seek position")
        return self._file.seek(origin + offset) - self._start


def _planes(frame, planar: bool, channels: int) -> list[np.ndarray]:
    """A frame's samples as views of its planes: one per channel when planar, else one interleaved.
    (PyAV's to_ndarray copies and stacks them per 20 ms frame: ~15% of a 30 s clip's decode.)"""
    dtype = SAMPLE_DTYPES[frame.format.name.removesuffix("p")]
    planes = frame.planes
    if planar:
        return [np.frombuffer(planes[i], dtype, frame.samples) for i in range(channels)]
    return [np.frombuffer(planes[0], dtype, frame.samples * channels)]


class RunBuffers:
    """The arrays a run's samples are turned to floats in, kept from one run to the next. Made anew
    for each run, they were given back to the system and faulted in again page by page once the
    decoded audio no longer grew the heap under them: a 19-minute 96 kHz 5.1 FLAC took 7.0 s to
    decode, 2.3 s with the buffers kept."""

    def __init__(self):
        self._arrays: dict[np.dtype, np.ndarray] = {}

    def get(self, size: int, dtype) -> np.ndarray:
        """A flat array of `size` items of `dtype`, its values left as they were."""
        array = self._arrays.get(np.dtype(dtype))
        if array is None or array.size != size:
            array = self._arrays[np.dtype(dtype)] = np.empty(size, dtype)
        return array


def _mono(run: list[list[np.ndarray]], layout: RunLayout, buffers: RunBuffers) -> MonoPiece:
    """A run of frames of one layout -> mono float32: the mean of the channels (in phase), with
    each channel's power for the dead-channel rule (`_MonoMix`), or for a surround layout the mix a
    listener hears (`DOWNMIX_WEIGHTS`)."""
    samples = _as_float(run, layout, buffers)
    if layout.channels == 1:  # a copy: the buffer is the next run's
        return MonoPiece(layout.rate, samples[0].copy(), None)
    weights = _downmix_weights(layout.name)
    if weights is not None:  # whose LFE alone is silence in the mix, cancelled or not
        return MonoPiece(layout.rate, weights @ samples, None)
    mono = samples.mean(axis=0, dtype=np.float32)
    channel_power = np.array([np.dot(channel, channel) for channel in samples], dtype=np.float64)
    if _cancels(mono, channel_power):
        mono = _in_phase_mean(samples, channel_power)
    return MonoPiece(layout.rate, mono, channel_power)


def _as_float(run: list[list[np.ndarray]], layout: RunLayout, buffers: RunBuffers) -> np.ndarray:
    """A run's samples as float32 (channels, samples), in `buffers`. Integer PCM is scaled to
    [-1, 1) as libsndfile and ffmpeg scale it (s16 / 32768, u8 centred on 128), through float64."""
    dtype = run[0][0].dtype
    size = sum(plane.size for plane in run[0]) * len(run)
    samples = buffers.get(size, np.float32)
    if dtype.kind == "f":
        _gather(run, samples)
        return _channels(samples, layout)
    info = np.iinfo(dtype)
    if info.min == 0:  # unsigned 8-bit PCM is centred on 128: exact in float32
        offset = (info.max + 1) // 2
        _gather(run, samples)
        np.subtract(samples, offset, out=samples)
        np.divide(samples, offset, out=samples)
        return _channels(samples, layout)
    wide = buffers.get(size, np.float64)
    _gather(run, wide)
    np.divide(wide, -float(info.min), out=wide)
    np.copyto(samples, wide, casting="same_kind")
    return _channels(samples, layout)


def _gather(run: list[list[np.ndarray]], into: np.ndarray) -> None:
    """Each plane's frames end to end, one plane after the other, cast to `into`'s type. A double past
    float32's range is inf, which the peak check refuses, without numpy's overflow warning."""
    with np.errstate(over="ignore"):
        for plane, part in zip(run, np.split(into, len(run))):
            np.concatenate(plane, out=part, casting="same_kind")


def _channels(samples: np.ndarray, layout: RunLayout) -> np.ndarray:
    """Planes one after the other -> (channels, samples); interleaved samples -> its view as such."""
    if layout.planar:
        return samples.reshape(layout.channels, -1)
    return samples.reshape(-1, layout.channels).T


@lru_cache(maxsize=None)
def _downmix_weights(layout: str) -> np.ndarray | None:
    """Each channel's weight in the mono mix of a named surround layout (5.1, 7.1, quad...); None
    for the plain mean: stereo, and channels whose places the file does not name."""
    try:
        names = [channel.name for channel in av.AudioLayout(layout).channels]
    except (ValueError, TypeError, av.FFmpegError):
        return None
    weights = [DOWNMIX_WEIGHTS.get(name) for name in names]
    if None in weights or len(set(weights)) == 1:
        return None
    return np.array(weights, dtype=np.float32)


def _cancels(mono: np.ndarray, channel_power: np.ndarray) -> bool:
    """Whether the channels' mean is far quieter than the channels: one is the other inverted."""
    return float(np.dot(mono, mono)) < CANCELLED_SHARE * float(channel_power.mean())


def _in_phase_mean(samples: np.ndarray, channel_power: np.ndarray) -> np.ndarray:
    """The mean of the channels, each turned to the phase of the first one that is not silent."""
    against = samples @ samples[int(np.argmax(channel_power > 0))] < 0
    return np.mean(np.where(against[:, np.newaxis], -samples, samples), axis=0, dtype=np.float32)


def rms_db(audio: np.ndarray) -> float:
    """Root-mean-square level in dBFS."""
    power = float(np.mean(np.square(audio, dtype=np.float64))) if audio.size else 0.0
    return 10.0 * np.log10(max(power, LOG_FLOOR))


def select_section(audio: np.ndarray) -> np.ndarray:
    """The SECTION_SECONDS of `audio` to analyse.

    Up to 30 s: all of it, repeated to fill 30 s (a loop sounds like the song; zeros would not).
    Longer: among windows starting every 5 s in the middle half of the song, the loudest by RMS.
    The middle skips intros and fade-outs, and the loudest window is most often the chorus, the
    part a listener would name the mood from. It costs one pass over the samples. Where every
    window of the middle is silent (a song, then minutes of silence and a hidden track), the
    loudest window of the whole file is taken: the file is silent only if that one is.
    """
    if audio.size < MIN_SAMPLES:
        raise TooShortAudioError(too_short_words(audio.size / SAMPLE_RATE))
    if audio.size <= SECTION_SAMPLES:
        section = np.resize(audio, SECTION_SAMPLES)  # np.resize repeats the input cyclically
    else:
        cumulative = np.concatenate([[0.0], np.cumsum(np.square(audio, dtype=np.float64))])
        start = _loudest_window_start(audio, cumulative)
        section = audio[start : start + SECTION_SAMPLES]
        if _silent(section):
            start = _loudest_window_start(audio, cumulative, anywhere=True)
            section = audio[start : start + SECTION_SAMPLES]
    if _silent(section):
        raise SilentAudioError("The audio is silent; there is nothing to listen to.")
    return np.ascontiguousarray(section, dtype=np.float32)


def _silent(section: np.ndarray) -> bool:
    """Around its mean: a silent recording that sits off zero (a cheap input's DC offset) is silent."""
    return rms_db(section - section.mean(dtype=np.float64)) < SILENCE_DB


def _loudest_window_start(audio: np.ndarray, cumulative: np.ndarray, *, anywhere: bool = False) -> int:
    """The start of the loudest window among those of the middle half (every CANDIDATE_STEP_SECONDS;
    the middle one alone for a song too short for two), or of the whole file where `anywhere`.
    `cumulative`: the running sum of the squared samples, from 0."""
    latest = audio.size - SECTION_SAMPLES
    step = CANDIDATE_STEP_SECONDS * SAMPLE_RATE
    if anywhere:
        starts = np.append(np.arange(0, latest, step), latest)
    else:
        starts = np.arange(latest // 4, 3 * latest // 4 + 1, step) if latest >= 4 * step else None
        if starts is None or starts.size == 0:
            starts = np.array([latest // 2])
    energy = cumulative[starts + SECTION_SAMPLES] - cumulative[starts]
    return int(starts[int(np.argmax(energy))])


def split_segments(section: np.ndarray) -> np.ndarray:
    """(N_SEGMENTS, SEGMENT_SAMPLES): back-to-back segments, each starting on a hop boundary."""
    if section.size < (N_SEGMENTS - 1) * SEGMENT_STRIDE + SEGMENT_SAMPLES:
        raise ValueError(f"a section needs {SECTION_SAMPLES} samples, got {section.size}")
    starts = np.arange(N_SEGMENTS) * SEGMENT_STRIDE
    return np.stack([section[s : s + SEGMENT_SAMPLES] for s in starts]).astype(np.float32)


# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above.
MEL_LINEAR_HZ_PER_MEL = 200.0 / 3
MEL_LOG_START_HZ = 1000.0
MEL_LOG_STEP = np.log(6.4) / 27.0  # log frequency ratio per mel above MEL_LOG_START_HZ
MEL_LOG_START = MEL_LOG_START_HZ / MEL_LINEAR_HZ_PER_MEL


def hz_to_mel(frequencies: np.ndarray) -> np.ndarray:
    """Slaney mel of each frequency, the same arithmetic as librosa.hz_to_mel."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    mels = frequencies / MEL_LINEAR_HZ_PER_MEL
    high = frequencies >= MEL_LOG_START_HZ
    mels[high] = MEL_LOG_START + np.log(frequencies[high] / MEL_LOG_START_HZ) / MEL_LOG_STEP
    return mels


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Inverse of `hz_to_mel`, the same arithmetic as librosa.mel_to_hz."""
    mels = np.asarray(mels, dtype=np.float64)
    frequencies = MEL_LINEAR_HZ_PER_MEL * mels
    high = mels >= MEL_LOG_START
    frequencies[high] = MEL_LOG_START_HZ * np.exp(MEL_LOG_STEP * (mels[high] - MEL_LOG_START))
    return frequencies


def fft_frequencies() -> np.ndarray:
    """(1 + N_FFT // 2,) centre frequency of each STFT bin in Hz."""
    return np.fft.rfftfreq(n=N_FFT, d=1.0 / SAMPLE_RATE)


@lru_cache(maxsize=None)
def mel_filters() -> np.ndarray:
    """(N_MELS, 1 + N_FFT // 2) Slaney-normalised mel filterbank of the model's front, built once."""
    return slaney_mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS, FMIN, FMAX)


def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) float32 Slaney-normalised mel filters.

    The steps and dtypes of librosa.filters.mel (float32 weights, float64 ramps), so the filters are
    the ones the models were trained with, bit for bit, without importing librosa: its submodules
    and numba cost ~1.5 s of imports, the bulk of a first worker pool's start.
    """
    frequencies = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    lowest, highest = hz_to_mel(np.array([fmin, fmax]))
    edges = mel_to_hz(np.linspace(lowest, highest, n_mels + 2))  # band edges and centres, in Hz
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, frequencies)
    weights = np.zeros((n_mels, frequencies.size), dtype=np.float32)
    for i in range(n_mels):
        rising = -ramps[i] / widths[i]
        falling = ramps[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))[:, np.newaxis]  # equal area
    return weights


@lru_cache(maxsize=None)
def _window() -> np.ndarray:
    return np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa uses


def log_mel(audio: np.ndarray) -> np.ndarray:
    """Log-mel power in dB, float32, (..., N_MELS, frames); frames = (samples - N_FFT) // HOP + 1.

    Works on one signal or a stack: segments (3, SEGMENT_SAMPLES) -> (3, N_MELS, N_FRAMES).
    No per-clip normalisation: loudness is part of the mood, and the model normalises its input.
    """
    import scipy.fft  # here: ~0.4 CPU-s to import, which the bot's own process never needs

    audio = np.asarray(audio, dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(audio, N_FFT, axis=-1)[..., ::HOP_LENGTH, :]
    # scipy's FFT keeps float32 end to end (~3x faster here than numpy's), and a matmul reaches
    # BLAS where einsum did not (~8x): the same sums, in another order, to float32 rounding.
    spectrum = scipy.fft.rfft(frames * _window(), axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    mel = np.swapaxes(power @ mel_filters().T, -1, -2)
    return np.ascontiguousarray(10.0 * np.log10(np.maximum(mel, LOG_FLOOR)), dtype=np.float32)


def section_segments(section_mel: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """Crop N_SEGMENTS windows of N_FRAMES out of a section's log-mel (N_MELS, frames).

    Default offsets are the serving crop (back to back from frame 0), equal to
    `log_mel(split_segments(section))`. Training passes random offsets.
    """
    if offsets is None:
        offsets = np.arange(N_SEGMENTS) * N_FRAMES
    return np.stack([section_mel[:, o : o + N_FRAMES] for o in offsets]).astype(np.float32)


def main_model_input(path: str | Path) -> np.ndarray:
    """File -> (1, N_SEGMENTS, N_MELS, N_FRAMES) float32, the main model's `mel` input."""
    section = select_section(load_audio(path))
    return log_mel(split_segments(section))[np.newaxis]
