"""The audio front: any file in, the main model's input out, or an error a user can read."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from inference import audio
from inference.audio import (
    N_FRAMES,
    N_MELS,
    N_SEGMENTS,
    SAMPLE_RATE,
    SECTION_SAMPLES,
    SEGMENT_SAMPLES,
    load_audio,
    log_mel,
    resample,
    main_model_input,
    section_segments,
    select_section,
    split_segments,
)
from inference.result import (
    AudioError,
    SilentAudioError,
    TooLongAudioError,
    TooShortAudioError,
    UnreadableAudioError,
    duration_words,
)
from tests.inference.conftest import SYNTH_SECONDS, SYNTH_SR, synthetic_song
from tests.permissions import bound_by_file_modes

REAL_CLIP = "audio/MT0000011357.ogg"  # Ogg Opus at 24 kHz, like every clip the models learned from


def test_constants_are_consistent():
    assert N_FRAMES == (SEGMENT_SAMPLES - audio.N_FFT) // audio.HOP_LENGTH + 1
    assert (N_SEGMENTS - 1) * audio.SEGMENT_STRIDE + SEGMENT_SAMPLES <= SECTION_SAMPLES
    assert N_SEGMENTS * N_FRAMES <= audio.SECTION_FRAMES


@pytest.mark.parametrize("kind", ["wav", "ogg", "m4a", "webm"])
def test_every_container_decodes_to_the_same_length(song_files, kind):
    decoded = load_audio(song_files[kind])
    reference = load_audio(song_files["wav"])
    assert decoded.dtype == np.float32 and decoded.ndim == 1
    assert abs(decoded.size - SYNTH_SECONDS * SAMPLE_RATE) <= 0.03 * SAMPLE_RATE
    assert abs(decoded.size - reference.size) <= 0.03 * SAMPLE_RATE
    # Same music, not just the same length: lossy codecs keep the log-mel close.
    n = min(decoded.size, reference.size)
    mel_a, mel_b = log_mel(decoded[:n]), log_mel(reference[:n])
    assert np.corrcoef(mel_a.ravel(), mel_b.ravel())[0, 1] > 0.95


def test_main_model_input_shape_and_determinism(song_files):
    first = main_model_input(song_files["webm"])
    second = main_model_input(song_files["webm"])
    assert first.shape == (1, N_SEGMENTS, N_MELS, N_FRAMES)
    assert first.dtype == np.float32
    assert np.array_equal(first, second)
    assert np.isfinite(first).all()


def test_log_mel_of_segments_is_a_slice_of_the_section_log_mel():
    section = select_section(synthetic_song(30.0, SAMPLE_RATE, seed=1))
    from_segments = log_mel(split_segments(section))
    from_section = section_segments(log_mel(section))
    assert from_segments.shape == (N_SEGMENTS, N_MELS, N_FRAMES)
    np.testing.assert_allclose(from_segments, from_section, atol=1e-4)


def test_log_mel_matches_librosa():
    import librosa

    y = synthetic_song(3.0, SAMPLE_RATE)
    ours = log_mel(y)
    theirs = librosa.power_to_db(
        librosa.feature.melspectrogram(
            y=y, sr=SAMPLE_RATE, n_fft=audio.N_FFT, hop_length=audio.HOP_LENGTH,
            n_mels=N_MELS, fmin=audio.FMIN, fmax=audio.FMAX, center=False,
        ),
        ref=1.0, amin=audio.LOG_FLOOR, top_db=None,
    )
    np.testing.assert_allclose(ours, theirs, atol=0.01)


def reference_log_mel(y: np.ndarray) -> np.ndarray:
    """The log-mel the shipped models were trained on: numpy's FFT and an einsum, term by term."""
    frames = np.lib.stride_tricks.sliding_window_view(y, audio.N_FFT, axis=-1)[..., :: audio.HOP_LENGTH, :]
    spectrum = np.fft.rfft(frames * np.hanning(audio.N_FFT + 1)[:-1].astype(np.float32), axis=-1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    mel = np.einsum("mf,...tf->...mt", audio.mel_filters(), power)
    return (10.0 * np.log10(np.maximum(mel, audio.LOG_FLOOR))).astype(np.float32)


def test_log_mel_of_a_real_clip_is_the_training_log_mel_to_float32_rounding(shared_data):
    segments = split_segments(select_section(load_audio(shared_data / REAL_CLIP)))
    ours, theirs = log_mel(segments), reference_log_mel(segments)
    assert ours.shape == theirs.shape == (N_SEGMENTS, N_MELS, N_FRAMES) and ours.flags.c_contiguous
    loud = theirs > theirs.max() - 60.0  # bins within 60 dB of the peak: float32 resolves them well
    assert np.abs(ours - theirs)[loud].max() < 1e-3
    assert np.abs(ours - theirs).mean() < 1e-3


def test_short_clip_is_repeated_to_fill_the_section():
    clip = synthetic_song(12.0, SAMPLE_RATE)
    section = select_section(clip)
    assert section.size == SECTION_SAMPLES
    assert np.array_equal(section[: clip.size], clip)
    assert np.array_equal(section[clip.size : 2 * clip.size], clip[: SECTION_SAMPLES - clip.size])


def test_long_song_picks_the_loudest_window_near_the_middle():
    quiet = synthetic_song(180.0, SAMPLE_RATE) * 0.05
    loud_start = 100 * SAMPLE_RATE
    quiet[loud_start : loud_start + SECTION_SAMPLES] *= 20
    section = select_section(quiet)
    assert section.size == SECTION_SAMPLES
    assert audio.rms_db(section) > audio.rms_db(quiet[: SECTION_SAMPLES]) + 20


def test_five_second_clip_is_too_short(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, synthetic_song(5.0, 22050), 22050)
    with pytest.raises(TooShortAudioError) as error:
        main_model_input(path)
    assert "10 s" in str(error.value)


def test_a_clip_just_under_ten_seconds_is_not_said_to_last_ten(tmp_path):
    path = tmp_path / "almost.wav"
    sf.write(path, synthetic_song(9.97, SAMPLE_RATE), SAMPLE_RATE)
    with pytest.raises(TooShortAudioError) as error:
        main_model_input(path)
    assert "lasts 9.9 s" in str(error.value), str(error.value)


def test_a_click_under_a_tenth_of_a_second_is_not_said_to_last_none(tmp_path):
    """A 50 ms file (a notification sound, a click) was "The audio lasts 0.0 s", as if it held none."""
    path = tmp_path / "click.wav"
    sf.write(path, synthetic_song(0.05, SAMPLE_RATE), SAMPLE_RATE)
    with pytest.raises(TooShortAudioError) as error:
        main_model_input(path)
    assert str(error.value) == "The audio lasts under 0.1 s; I need at least 10 s."


def test_a_double_sample_past_float32_is_refused_without_a_warning(tmp_path):
    """A 64-bit float WAV with one sample of 1e300 (a broken export) was refused, and a RuntimeWarning
    ("overflow encountered in cast") written to the run's stderr and the bot's log as well."""
    import warnings

    samples = synthetic_song(12.0, SAMPLE_RATE).astype(np.float64)
    samples[5] = 1e300
    path = tmp_path / "spike.wav"
    sf.write(path, samples, SAMPLE_RATE, subtype="DOUBLE")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UnreadableAudioError, match="holds no playable audio"):
            load_audio(path)


def test_silence_is_refused(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(20 * 22050, dtype=np.float32), 22050)
    with pytest.raises(SilentAudioError):
        main_model_input(path)
    with pytest.raises(SilentAudioError):  # near silence: dither far below any music
        select_section(np.random.default_rng(0).normal(0, 1e-4, 20 * SAMPLE_RATE).astype(np.float32))


def test_empty_file_is_unreadable(tmp_path):
    path = tmp_path / "empty.mp3"
    path.write_bytes(b"")
    with pytest.raises(UnreadableAudioError):
        load_audio(path)


def test_png_renamed_mp3_is_unreadable(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    png = tmp_path / "picture.png"
    plt.figure().savefig(png)
    plt.close("all")
    path = tmp_path / "picture.mp3"
    path.write_bytes(png.read_bytes())
    with pytest.raises(UnreadableAudioError) as error:
        main_model_input(path)
    assert "picture.mp3" in str(error.value)


def test_a_playlist_or_concat_list_is_not_followed_to_the_files_it_names(tmp_path):
    """Given a user uploads an HLS playlist (`.m3u8`, which Telegram may type audio/x-mpegurl) or an
    FFmpeg concat list naming audio files on the bot's machine, the classifier decodes the upload
    as the file it is, not the files it names: it is not audio we can read."""
    import subprocess

    song = tmp_path / "local.wav"
    sf.write(song, synthetic_song(12.0), SYNTH_SR)
    segment = tmp_path / "segment.ts"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(song), "-c:a", "aac",
                    "-f", "mpegts", str(segment)], check=True)
    assert load_audio(segment).size > 0  # the file a playlist names is audio the classifier reads
    playlist = tmp_path / "upload.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:12\n#EXTINF:12,\n{segment}\n#EXT-X-ENDLIST\n")
    with pytest.raises(UnreadableAudioError, match="upload.m3u8 is not audio we can read"):
        load_audio(playlist)
    listed = tmp_path / "upload.ffconcat"
    listed.write_text("ffconcat version 1.0\nfile local.wav\n")
    with pytest.raises(UnreadableAudioError, match="upload.ffconcat is not audio we can read"):
        load_audio(listed)


def test_a_video_without_sound_is_called_that(tmp_path):
    """Given a user sends a muted screen recording, they are told it has no sound, not that it
    "is not audio we can read"; a picture is still not audio."""
    import subprocess

    path = tmp_path / "muted.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=duration=3:size=64x64:rate=10", "-an", "-c:v", "mpeg4", str(path)], check=True)
    with pytest.raises(UnreadableAudioError, match="muted.mp4 is a video without sound"):
        load_audio(path)
    still = tmp_path / "cover.jpg"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=duration=1:size=64x64:rate=1", "-frames:v", "1", str(still)], check=True)
    with pytest.raises(UnreadableAudioError, match="cover.jpg is not audio we can read"):
        load_audio(still)


def test_missing_file_is_unreadable(tmp_path):
    with pytest.raises(UnreadableAudioError, match="Cannot find the audio file nowhere.ogg"):
        load_audio(tmp_path / "nowhere.ogg")


def test_a_folder_is_named_as_a_folder(tmp_path):
    (tmp_path / "songs").mkdir()
    with pytest.raises(UnreadableAudioError, match="songs is a folder, not an audio file"):
        load_audio(tmp_path / "songs")


def test_a_fifo_is_named_as_not_a_file_and_never_opened(tmp_path):
    """Opening a FIFO with no writer would block the worker forever; it must not be called missing."""
    import os

    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableAudioError, match="pipe.wav is not a regular file"):
        load_audio(fifo)


# Prints what load_audio says of a file: its error's words, or how much audio it decoded.
SAY_WHAT_LOAD_AUDIO_SAYS = """
import sys
from inference.audio import load_audio
from inference.result import AudioError
try:
    print(f"decoded {load_audio(sys.argv[1]).size} samples")
except AudioError as error:
    print(error)
"""


def test_a_file_we_may_not_read_is_not_called_bad_audio(song_files, tmp_path):
    """chmod 000 on a real song, read by a process that file modes bind (the suite may run as root,
    whom they do not): FFmpeg's PermissionError is told as such, not as audio we cannot decode."""
    import shutil
    import subprocess
    import sys

    song = tmp_path / "song.wav"
    shutil.copy(song_files["wav"], song)
    song.chmod(0)
    done = subprocess.run([sys.executable, "-c", SAY_WHAT_LOAD_AUDIO_SAYS, str(song)],
                          cwd=Path(audio.__file__).parents[1], capture_output=True, text=True, timeout=120,
                          preexec_fn=bound_by_file_modes)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "I am not allowed to read the file song.wav.\n"


def test_truncated_files_raise_typed_errors(song_files, tmp_path):
    data = song_files["m4a"].read_bytes()
    header_only = tmp_path / "header.m4a"
    header_only.write_bytes(data[:200])
    with pytest.raises(UnreadableAudioError):
        main_model_input(header_only)
    # Cut mid-stream, the part that is there decodes, and it is too short to judge.
    wav = song_files["wav"].read_bytes()
    half = tmp_path / "half.wav"
    half.write_bytes(wav[: len(wav) // 3])
    with pytest.raises(AudioError):
        main_model_input(half)


@pytest.mark.parametrize("kept", [0.5, 0.02])
def test_an_mp4_cut_before_its_index_is_said_to_be_cut_short(song_files, tmp_path, kept):
    """ffmpeg, like most encoders, writes an M4A's index (its moov box) after the audio: one cut short (a
    download or a copy that stopped) has none, and was "not audio we can read", as a file in another
    format is; a 200-byte head of one likewise."""
    data = song_files["m4a"].read_bytes()
    cut = tmp_path / "song.m4a"
    cut.write_bytes(data[:int(len(data) * kept)])
    with pytest.raises(UnreadableAudioError) as error:
        load_audio(cut)
    assert str(error.value) == ("The file song.m4a is cut short: it ends before its index, which an MP4 needs "
                                "to be played. Send the whole file.")


@pytest.mark.parametrize("head", [b"", b"\0\0\0", b"ftyp"])
def test_an_empty_file_or_a_few_bytes_is_not_said_to_be_an_mp4_cut_short(tmp_path, head):
    """No box at all is no MP4: the cut-short test read an empty file as one ending before its index."""
    path = tmp_path / "song.mp3"
    path.write_bytes(head)
    with pytest.raises(UnreadableAudioError, match="^The file song.mp3 is not audio we can read.$"):
        load_audio(path)


@pytest.mark.parametrize("poison", [np.nan, np.inf, 1e30])
def test_a_float_file_with_samples_no_speaker_could_play_is_unreadable(tmp_path, poison):
    """NaN, inf or a sample so large that the spectra overflow: the models would answer NaN."""
    samples = synthetic_song(12.0, SAMPLE_RATE)
    samples[1000] = poison
    path = tmp_path / "poisoned.wav"
    sf.write(path, samples, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(UnreadableAudioError, match="poisoned.wav holds no playable audio"):
        load_audio(path)


def test_a_float_file_at_integer_scale_is_still_audio(tmp_path):
    samples = synthetic_song(12.0, SAMPLE_RATE)
    path = tmp_path / "int-scaled.wav"
    sf.write(path, samples * np.float32(2.0**31), SAMPLE_RATE, subtype="FLOAT")
    assert np.isfinite(log_mel(load_audio(path))).all()


# --- Decoding: PyAV's in-process decoders, a change of implementation and not of the signal ----------

SAME_SIGNAL_SNR_DB = 90.0  # decoder rounding only: a lossy re-encode would sit near 20-40 dB


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    n = min(reference.size, other.size)
    error = np.sum((reference[:n].astype(np.float64) - other[:n]) ** 2)
    return float(10 * np.log10(np.sum(reference[:n].astype(np.float64) ** 2) / max(error, 1e-30)))


def test_a_real_clip_decodes_to_the_signal_libsndfile_and_librosa_gave(shared_data):
    """The models were trained on libsndfile (libopus) + librosa's soxr_hq; the serving decoder must
    hand them the same numbers, down to decoder rounding."""
    import librosa

    path = shared_data / REAL_CLIP
    samples, native_sr = sf.read(path, dtype="float32", always_2d=True)
    before = librosa.resample(samples.mean(axis=1), orig_sr=native_sr, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    after = load_audio(path)
    assert abs(after.size - before.size) <= 1
    assert snr_db(before, after) > SAME_SIGNAL_SNR_DB
    np.testing.assert_allclose(main_model_input(path)[0], log_mel(split_segments(select_section(before))), atol=1.0)


def test_resample_is_librosas_soxr_hq_exactly():
    import librosa

    y = synthetic_song(3.0, 24000)
    ours = audio.resample(y, 24000, SAMPLE_RATE)
    theirs = librosa.resample(y, orig_sr=24000, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_U8", "FLOAT"])
def test_stereo_pcm_is_the_mean_of_its_channels_at_libsndfiles_scale(tmp_path, subtype):
    left, right = synthetic_song(11.0, SAMPLE_RATE, seed=1), synthetic_song(11.0, SAMPLE_RATE, seed=2)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SAMPLE_RATE, subtype=subtype)
    expected = sf.read(path, dtype="float32")[0].mean(axis=1)
    np.testing.assert_allclose(load_audio(path), expected, atol=1e-6)


def test_a_header_with_absurd_channels_or_rate_is_unreadable(tmp_path):
    import struct

    fmt = struct.pack("<IHHIIHH", 16, 1, 65535, 0xFFFFFFFF, 0xFFFFFFFF, 65535, 16)
    path = tmp_path / "lying.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", 1060) + b"WAVE" + b"fmt " + fmt
                     + b"data" + struct.pack("<I", 1024) + b"\x01" * 1024)
    with pytest.raises(UnreadableAudioError) as error:
        load_audio(path)
    assert "lying.wav" in str(error.value)


def test_a_stream_in_a_codec_ffmpeg_does_not_know_is_unreadable(tmp_path):
    """PyAV gives such a stream no codec context: reading its rate raised AttributeError, which the
    bot answered "something went wrong" and the command line "internal error"."""
    import subprocess

    webm = tmp_path / "opus.webm"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=12",
                    "-c:a", "libopus", str(webm)], check=True)
    data = webm.read_bytes()
    assert data.count(b"A_OPUS") == 1
    path = tmp_path / "unknown_codec.webm"
    path.write_bytes(data.replace(b"A_OPUS", b"A_QQQQ"))
    with pytest.raises(UnreadableAudioError) as error:
        load_audio(path)
    assert "unknown_codec.webm" in str(error.value)


def test_a_long_file_is_refused_while_decoding_when_its_header_does_not_say(tmp_path, monkeypatch):
    """FLAC written to a pipe has no length in its header: the limit holds on decoded audio."""
    import subprocess

    monkeypatch.setattr(audio, "MAX_SECONDS", 12)
    path = tmp_path / "unsized.flac"
    with open(path, "wb") as out:
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                        "sine=frequency=440:sample_rate=8000:duration=20", "-f", "flac", "-"],
                       stdout=out, check=True)
    with pytest.raises(TooLongAudioError):
        load_audio(path)


def test_a_callers_length_limit_may_be_lower_than_the_decoders_but_never_higher(tmp_path, monkeypatch):
    """The bot passes its MAX_AUDIO_DURATION_S; MAX_SECONDS stays the ceiling that bounds memory."""
    path = tmp_path / "twenty.wav"
    sf.write(path, synthetic_song(20.0, 8000), 8000)
    with pytest.raises(TooLongAudioError, match="twenty.wav lasts over 15 s; send a song shorter than that"):
        load_audio(path, max_seconds=15)
    assert load_audio(path, max_seconds=25).size == 20 * SAMPLE_RATE
    monkeypatch.setattr(audio, "MAX_SECONDS", 12)
    with pytest.raises(TooLongAudioError, match="lasts over 12 s"):
        load_audio(path, max_seconds=3600)


@pytest.mark.parametrize("seconds, said", [
    (20 * 60, "20 minutes"), (60, "1 minute"), (90, "1 minute 30 s"), (45, "45 s"), (1500.4, "25 minutes"),
])
def test_a_length_limit_is_said_as_a_person_says_it(seconds, said):
    assert duration_words(seconds) == said


def test_a_many_channel_file_is_decoded_in_memory_for_its_mono_audio_alone(tmp_path, monkeypatch):
    """Given a user attaches a long 5.1 (or 8-channel) file, decoding keeps only its mono mix: a
    19-minute 96 kHz 5.1 FLAC of 6.5 MB took ~10 GB, as every channel was kept until the end."""
    import tracemalloc

    # Small runs, so this short file shows it (raising=False: the test fails on memory, not a name).
    monkeypatch.setattr(audio, "MONO_RUN_SAMPLES", 4096, raising=False)
    channels, seconds = 8, 30
    rng = np.random.default_rng(7)
    samples = (0.3 * rng.standard_normal((seconds * SAMPLE_RATE, channels))).astype(np.float32)
    path = tmp_path / "surround.wav"
    sf.write(path, samples, SAMPLE_RATE, subtype="PCM_16")  # at SAMPLE_RATE: nothing to resample
    expected = sf.read(path, dtype="float32")[0].mean(axis=1)
    del samples
    mono_bytes = expected.nbytes
    tracemalloc.start()  # numpy's buffers are traced; PyAV's decoded frames are not (views only)
    try:
        mono = load_audio(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(mono, expected, atol=1e-6)
    # The mono pieces, their concatenation and one small run: not the 8 channels (~36x as much).
    assert peak < 3 * mono_bytes, f"peak {peak / 1e6:.1f} MB for {mono_bytes / 1e6:.1f} MB of mono audio"


HIGH_RATE = 192_000
# Traces the numpy buffers a decode allocates, and counts the pages it faults in, in a process of
# its own: what earlier tests left allocated does not count. Prints the peak and the pages' bytes;
# saves the decoded audio.
TRACE_DECODE = """
import resource, sys, tracemalloc
import numpy as np
from inference.audio import load_audio
tracemalloc.start()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
mono = load_audio(sys.argv[1])
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
print(tracemalloc.get_traced_memory()[1], faults * resource.getpagesize())
tracemalloc.stop()
np.save(sys.argv[2], mono)
"""


def test_a_long_high_rate_surround_file_is_decoded_in_memory_for_its_output_alone(tmp_path):
    """Given a user attaches a long 192 kHz 5.1 file, decoding holds its mono audio at the models'
    rate, not at the file's own: a 19-minute one peaked at ~1.8 GB, its mono mix kept at 192 kHz
    (8.7 times the output) and copied whole before it was resampled. The audio is the same, and
    the time too: buffers made anew for each run were faulted in again page by page (205 times the
    output's bytes here), and a 19-minute 96 kHz 5.1 FLAC took 7.0 s to decode, not 2.3 s."""
    import subprocess
    import sys

    seconds = 180  # 3.6 s to make the two files here; 7.3 s for the whole test
    tone = f"sine=frequency=440:sample_rate={HIGH_RATE}:duration={seconds}"

    def flac(name: str, *args: str) -> Path:
        path = tmp_path / name
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", tone, *args,
                        "-c:a", "flac", "-sample_fmt", "s32", str(path)], check=True, timeout=120)
        return path

    source = flac("source.flac")
    # The front pair at half scale is the source at half scale in the mix; the LFE is left out of it.
    surround = flac("surround.flac", "-af", "pan=5.1|FL=0.5*c0|FR=0.5*c0|LFE=0.5*c0")
    decoded = tmp_path / "decoded.npy"
    traced = subprocess.run([sys.executable, "-c", TRACE_DECODE, str(surround), str(decoded)],
                            cwd=Path(audio.__file__).parents[1], capture_output=True, text=True, timeout=300)
    assert traced.returncode == 0, traced.stderr
    (peak, faulted), mono = map(int, traced.stdout.split()[-2:]), np.load(decoded)

    whole = resample(0.5 * sf.read(source, dtype="float32")[0], HIGH_RATE, SAMPLE_RATE)  # at once, as it was
    assert mono.size == whole.size == seconds * SAMPLE_RATE
    np.testing.assert_allclose(mono, whole, atol=1e-4)  # ffmpeg's pan rounds to ~2e-5
    # The output, its pieces before they are joined, and a run: not 192 kHz of it (~17 times as much).
    assert peak < 3 * mono.nbytes, f"peak {peak / 1e6:.0f} MB for {mono.nbytes / 1e6:.0f} MB of mono audio"
    assert faulted < 4 * mono.nbytes, f"{faulted / 1e6:.0f} MB faulted in for {mono.nbytes / 1e6:.0f} MB of mono audio"


def test_a_mono_jingle_then_a_one_sided_stereo_song_is_resampled_as_one_signal():
    """A radio recording: a mono jingle, then a song on the left of a stereo pair (the right dead),
    the jingle at another rate. The dead-channel rule is decided at the end, once the song's runs
    are resampled: the song is heard at full level, the jingle as it is, and the seams as if the
    whole file had been resampled at once."""
    rng = np.random.default_rng(11)
    jingle = (0.1 * rng.standard_normal(44100)).astype(np.float32)
    song = (0.2 * rng.standard_normal(3 * 48000)).astype(np.float32)
    mix = audio._MonoMix(48000, SAMPLE_RATE)  # the header's rate is the song's, not the first link's
    mix.add(audio.MonoPiece(44100, jingle, None))
    for run in np.array_split(song, 5):  # the mean of the song and silence, with each side's power
        mix.add(audio.MonoPiece(48000, run / 2, np.array([np.dot(run, run), 0.0])))

    mono, peak = mix.mono()

    whole = resample(np.concatenate([resample(jingle, 44100, 48000), song]), 48000, SAMPLE_RATE)
    np.testing.assert_allclose(mono, whole, atol=1e-6)
    assert peak == max(np.abs(jingle).max(), np.abs(song).max())


def test_a_long_file_at_a_very_high_sample_rate_is_refused_before_it_fills_memory(tmp_path, monkeypatch):
    """Decoded audio is held at the file's own rate: 19 minutes of a 4 MB 384 kHz FLAC (silence
    around a tone) took 3.5 GB. Above FULL_LENGTH_MAX_RATE a file may be as long as MAX_SECONDS
    at that rate, whether its header says its length or only decoding finds it."""
    import subprocess

    monkeypatch.setattr(audio, "MAX_SECONDS", 12)
    monkeypatch.setattr(audio, "FULL_LENGTH_MAX_RATE", 8000, raising=False)  # 12 s at 8 kHz: 96 000 samples

    def tone(name: str, rate: int, seconds: int, *, piped: bool = False) -> Path:
        path = tmp_path / name
        with open(path, "wb") as out:  # written to a pipe, a FLAC has no length in its header
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                            f"sine=frequency=440:sample_rate={rate}:duration={seconds}",
                            *(["-f", "flac", "-"] if piped else ["-y", str(path)])],
                           stdout=out, check=True)
        return path

    sized = tone("sized.flac", 48000, 10)  # 480 000 samples
    unsized = tone("unsized.flac", 48000, 10, piped=True)
    for path in (sized, unsized):
        with pytest.raises(TooLongAudioError, match=f"{path.name} is too long for its sample rate of 48 kHz"):
            load_audio(path)
    assert load_audio(tone("low.flac", 8000, 11)).size == 11 * SAMPLE_RATE  # within both limits


@pytest.mark.parametrize("where", ["start", "end"])
def test_a_song_heard_only_outside_the_middle_half_is_not_called_silent(where):
    """A song followed by minutes of silence, or a hidden track after them: the window was looked
    for in the middle half of the file only, found silent there, and the file refused as "silent"."""
    song = synthetic_song(25.0, SAMPLE_RATE)
    audio_ = np.zeros(150 * SAMPLE_RATE, dtype=np.float32)
    if where == "start":
        audio_[: song.size] = song
    else:
        audio_[-song.size :] = song
    section = select_section(audio_)
    assert audio.rms_db(section) > audio.rms_db(song) - 2  # the song, nearly all of it


def test_a_long_song_quiet_in_its_middle_still_takes_its_section_from_the_middle():
    """The whole file is searched only where the middle half is silent: a quiet middle is kept."""
    song = synthetic_song(150.0, SAMPLE_RATE)
    song[: 25 * SAMPLE_RATE] *= 30  # a loud intro, before the middle half (from 30 s)
    song[25 * SAMPLE_RATE :] *= 0.01  # -40 dB: quiet, not silent
    section = select_section(song)
    assert audio.rms_db(section) < audio.rms_db(song[: 30 * SAMPLE_RATE]) - 20
