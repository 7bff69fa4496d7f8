"""Files as users send them: made with ffmpeg from a 4Q clip, each must be heard as the clip is.

Every file is built in the test (tmp_path) from the clip or from a synthesized signal, but for the
AMR voice note (tests/inference/amr_note.py: synthesized, then committed); nothing from the dataset
is committed.
"""
from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from inference import audio
from inference.audio import SAMPLE_RATE, load_audio, resample, select_section
from inference.predict import MainModel
from inference.result import SilentAudioError, TooLongAudioError, TooShortAudioError

from . import amr_note

CLIP = "audio/MT0000004637.ogg"  # 30 s of Ogg Opus, mono 48 kHz (a sad country song)
SONG_CLIP = "audio/MT0000011357.ogg"  # 29 s of an energetic metal song, the same format
OGG_PAGE_HEADER = 27  # bytes before a page's segment table; its last byte counts the segments
CLOSE_PROBABILITY = 0.03  # a lossy re-encode moves the shipped model's answer by 0.02 at most
# The head of an MP3 (q 4) of the clip looped: its first 30 s, a section other than the clip's own
# (0.029 from the clip's answer untempered, 0.039 as served, tempered: see inference.calibration).
OTHER_SECTION_CLOSE_PROBABILITY = 0.05
FFMPEG_TIMEOUT_S = 60


def ffmpeg(source: Path, target: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source),
                    *args, str(target)], check=True, timeout=FFMPEG_TIMEOUT_S)
    return target


@pytest.fixture(scope="module")
def model() -> MainModel:
    return MainModel.load()


@pytest.fixture(scope="module")
def clip(shared_data) -> Path:
    return shared_data / CLIP


def mood_of(model: MainModel, samples: np.ndarray) -> np.ndarray:
    return model.predict_section(select_section(samples))


def test_mp3s_joined_end_to_end_at_two_sample_rates_are_heard_whole(clip, model, tmp_path):
    """`cat a.mp3 b.mp3`, the two at 44.1 and 48 kHz (players and ffmpeg play it through): it was
    'not audio we can read' as soon as the rate changed."""
    first = ffmpeg(clip, tmp_path / "first.mp3", "-t", "15", "-ar", "44100", "-c:a", "libmp3lame")
    second = ffmpeg(clip, tmp_path / "second.mp3", "-ss", "15", "-ar", "48000", "-c:a", "libmp3lame")
    joined = tmp_path / "joined.mp3"
    joined.write_bytes(first.read_bytes() + second.read_bytes())

    samples = load_audio(joined)

    parts = np.concatenate([load_audio(first), load_audio(second)])
    assert abs(samples.size - parts.size) < 0.1 * SAMPLE_RATE
    assert np.abs(mood_of(model, samples) - mood_of(model, load_audio(clip))).max() < CLOSE_PROBABILITY


def ogg_link(source: Path, target: Path, *args: str, codec: str = "libvorbis", loops: int = 0) -> Path:
    """The source (played `loops` more times) as an Ogg file, Vorbis unless said: one link of a chain."""
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-stream_loop", str(loops),
                    "-i", str(source), *args, "-c:a", codec, str(target)], check=True, timeout=FFMPEG_TIMEOUT_S)
    return target


def chain(target: Path, *links: Path) -> Path:
    """Ogg files joined end to end (`cat a.ogg b.ogg`): how radio recordings come."""
    target.write_bytes(b"".join(link.read_bytes() for link in links))
    return target


@pytest.fixture(scope="module")
def song_clip(shared_data) -> Path:
    return shared_data / SONG_CLIP


# name -> the jingle's and the song's ffmpeg arguments, and the song's codec
CHAINS = {
    "the rate changes": (["-ar", "44100"], ["-ar", "48000"], "libvorbis"),
    "the channels change": (["-ac", "1", "-ar", "48000"], ["-ac", "2", "-ar", "48000"], "libvorbis"),
    "the codec changes (Vorbis, then Opus)": (["-ar", "48000"], [], "libopus"),
    "nothing changes": (["-ar", "48000"], ["-ar", "48000"], "libvorbis"),
}


@pytest.mark.parametrize("change", CHAINS)
def test_a_chained_ogg_is_heard_to_its_end_and_its_song_not_its_jingle(change, clip, song_clip, model, tmp_path):
    """A radio recording: a 10 s jingle (a sad song), then 88 s of song (an energetic one), each an
    Ogg link of its own. FFmpeg's demuxer cannot go on where the rate or the channels change: the
    file was heard as its 10 s of jingle, and answered with the jingle's mood; where the codec
    changes, it was all refused."""
    jingle_args, song_args, song_codec = CHAINS[change]
    jingle = ogg_link(clip, tmp_path / "jingle.ogg", "-t", "10", *jingle_args)
    song = ogg_link(song_clip, tmp_path / "song.ogg", *song_args, codec=song_codec, loops=2)
    parts = np.concatenate([load_audio(jingle), load_audio(song)])

    samples = load_audio(chain(tmp_path / "radio.ogg", jingle, song))

    assert abs(samples.size - parts.size) < 0.05 * SAMPLE_RATE
    song_mood, jingle_mood = mood_of(model, parts), mood_of(model, load_audio(jingle))
    assert np.abs(jingle_mood - song_mood).max() > 0.5  # the two are told apart
    assert np.abs(mood_of(model, samples) - song_mood).max() < CLOSE_PROBABILITY


def test_each_link_of_a_chained_ogg_is_heard_whatever_its_rate(clip, song_clip, tmp_path):
    """Three links at 44.1, 48 and 32 kHz: the decoder goes on past each change."""
    links = [ogg_link(clip, tmp_path / "one.ogg", "-t", "10", "-ar", "44100"),
             ogg_link(song_clip, tmp_path / "two.ogg", "-t", "20", "-ar", "48000"),
             ogg_link(clip, tmp_path / "three.ogg", "-ss", "10", "-t", "15", "-ar", "32000")]

    samples = load_audio(chain(tmp_path / "radio.ogg", *links))

    assert abs(samples.size - 45 * SAMPLE_RATE) < 0.05 * SAMPLE_RATE


def test_a_chained_ogg_over_the_length_limit_is_refused_across_its_links(clip, song_clip, tmp_path):
    """10 s, then 88 s at another rate: over an 80 s limit (its header says 61 s)."""
    jingle = ogg_link(clip, tmp_path / "jingle.ogg", "-t", "10", "-ar", "44100")
    song = ogg_link(song_clip, tmp_path / "song.ogg", "-ar", "48000", loops=2)

    with pytest.raises(TooLongAudioError, match="radio.ogg lasts over 1 minute 20 s"):
        load_audio(chain(tmp_path / "radio.ogg", jingle, song), max_seconds=80)


def test_a_chained_ogg_is_heard_up_to_its_last_link_allowed(clip, tmp_path, monkeypatch):
    """A crafted chain of thousands of tiny links is not opened link after link for ever: at most
    MAX_OGG_LINKS are heard."""
    monkeypatch.setattr(audio, "MAX_OGG_LINKS", 2)
    rates = (44100, 48000, 32000)
    links = [ogg_link(clip, tmp_path / f"{rate}.ogg", "-t", "10", "-ar", str(rate)) for rate in rates]

    samples = load_audio(chain(tmp_path / "radio.ogg", *links))

    assert abs(samples.size - 20 * SAMPLE_RATE) < 0.05 * SAMPLE_RATE


def test_a_chained_ogg_whose_next_link_is_broken_is_heard_up_to_it(clip, tmp_path):
    """The next link's first page is whole and the rest is noise: what came before is heard."""
    jingle = ogg_link(clip, tmp_path / "jingle.ogg", "-t", "10", "-ar", "44100")
    song = ogg_link(clip, tmp_path / "song.ogg", "-t", "20", "-ar", "48000").read_bytes()
    segments = song[OGG_PAGE_HEADER - 1]
    first_page = OGG_PAGE_HEADER + segments + sum(song[OGG_PAGE_HEADER : OGG_PAGE_HEADER + segments])
    noise = np.random.default_rng(5).integers(0, 256, len(song) - first_page, dtype=np.uint8).tobytes()
    broken = tmp_path / "broken.ogg"
    broken.write_bytes(song[:first_page] + noise)

    samples = load_audio(chain(tmp_path / "radio.ogg", jingle, broken))

    np.testing.assert_array_equal(samples, load_audio(jingle))


def test_the_head_of_a_long_mp3_is_heard_though_its_header_gives_the_whole_length(clip, model, tmp_path,
                                                                                   monkeypatch):
    """A download cut short keeps the header of the whole file: the first 3 MB of a 40-minute MP3
    (5.6 minutes of sound) say 40 minutes, and were refused as 'over 20 minutes'. Here the limit
    is 60 s, and the head of a 3-minute MP3 holds ~45 s."""
    monkeypatch.setattr(audio, "MAX_SECONDS", 60)
    whole = tmp_path / "whole.mp3"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-stream_loop", "6", "-i", str(clip),
                    "-t", "180", "-c:a", "libmp3lame", "-q:a", "4", str(whole)],
                   check=True, timeout=FFMPEG_TIMEOUT_S)
    head = tmp_path / "head.mp3"
    head.write_bytes(whole.read_bytes()[: whole.stat().st_size // 4])

    samples = load_audio(head)

    assert 40 * SAMPLE_RATE < samples.size < 50 * SAMPLE_RATE
    heard = mood_of(model, samples[: 30 * SAMPLE_RATE])
    assert np.abs(heard - mood_of(model, load_audio(clip))).max() < OTHER_SECTION_CLOSE_PROBABILITY
    with pytest.raises(TooLongAudioError, match="whole.mp3 lasts over 1 minute"):
        load_audio(whole)  # refused from its header, which is true


def test_an_mp3_whose_xing_header_counts_frames_it_does_not_have_is_heard(clip, model, tmp_path):
    """A 30 s VBR MP3 whose Xing header says it has 100 times its frames (50 minutes)."""
    path = ffmpeg(clip, tmp_path / "vbr.mp3", "-c:a", "libmp3lame", "-q:a", "4")
    data = bytearray(path.read_bytes())
    xing = data.index(b"Xing")
    (frames,) = struct.unpack(">I", data[xing + 8 : xing + 12])  # after the tag and its flags
    data[xing + 8 : xing + 12] = struct.pack(">I", frames * 100)
    lying = tmp_path / "lying.mp3"
    lying.write_bytes(bytes(data))

    samples = load_audio(lying)

    assert abs(samples.size - load_audio(path).size) < 0.1 * SAMPLE_RATE
    assert np.abs(mood_of(model, samples) - mood_of(model, load_audio(clip))).max() < CLOSE_PROBABILITY


def test_a_silent_recording_off_zero_is_silent(tmp_path):
    """A cheap input's DC offset (here 5% of full scale, -26 dBFS) under a -80 dB hiss: it was
    answered with a mood, as its RMS counted the offset."""
    rng = np.random.default_rng(3)
    path = tmp_path / "muted.wav"
    sf.write(path, 0.05 + 1e-4 * rng.standard_normal(12 * 48000), 48000, subtype="PCM_16")

    with pytest.raises(SilentAudioError):
        select_section(load_audio(path))


def test_a_song_off_zero_is_still_heard(clip, tmp_path):
    path = tmp_path / "offset.wav"
    sf.write(path, 0.5 * load_audio(clip, 48000) + 0.05, 48000, subtype="FLOAT")

    assert select_section(load_audio(path)).size == audio.SECTION_SAMPLES


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_stereo_wired_out_of_phase_is_heard_as_its_left_channel(clip, model, tmp_path, subtype):
    """Right = -left plays as music on any speaker, and the channels' mean is silence: it was
    'The audio is silent'."""
    left = 0.5 * load_audio(clip, 48000)
    path = tmp_path / "out_of_phase.wav"
    sf.write(path, np.stack([left, -left], axis=1), 48000, subtype=subtype)
    plain = tmp_path / "left.wav"
    sf.write(plain, left, 48000, subtype=subtype)

    np.testing.assert_allclose(load_audio(path), load_audio(plain), atol=1e-4)  # 16-bit: 3e-5 a step


HISS_DBFS = -70.0  # an unconnected input's hiss, as a cheap recorder or interface writes it
OTHER_CLIP = "audio/MT0000040632.ogg"  # another song, for a second channel that is not the first


def two_channels(path: Path, left: np.ndarray, right: np.ndarray, subtype: str = "FLOAT") -> Path:
    sf.write(path, np.stack([left, right], axis=1), 48000, subtype=subtype)
    return path


def mean_of_channels(path: Path) -> np.ndarray:
    """What `ffmpeg -ac 1` hears in a stereo file at 48 kHz, brought to the models' rate."""
    return resample(sf.read(path, dtype="float32")[0].mean(axis=1, dtype=np.float32), 48000, SAMPLE_RATE)


@pytest.mark.parametrize("dead, subtype", [("digital silence", "PCM_16"), ("-70 dBFS hiss", "FLOAT")])
def test_stereo_with_a_dead_right_channel_is_heard_as_its_live_channel(clip, model, tmp_path, dead, subtype):
    """A song recorded to one side of a stereo file (a phone, a mono source wired to one input)
    plays at full level: the channels' mean had it 6 dB quieter, and moved the answer by 0.08."""
    left = 0.5 * load_audio(clip, 48000)
    hiss = 10 ** (HISS_DBFS / 20) * np.random.default_rng(5).standard_normal(left.size).astype(np.float32)
    right = np.zeros_like(left) if dead == "digital silence" else hiss
    plain = tmp_path / "left.wav"
    sf.write(plain, left, 48000, subtype=subtype)

    samples = load_audio(two_channels(tmp_path / "one_side.wav", left, right, subtype))

    live = load_audio(plain)
    if dead == "digital silence":
        np.testing.assert_array_equal(samples, live)
    else:  # the live channel, and the dead one's hiss at its own level: far under the song
        assert audio.rms_db(samples - live) < HISS_DBFS + 1
    assert np.abs(mood_of(model, samples) - mood_of(model, live)).max() < CLOSE_PROBABILITY


def test_a_hard_panned_mix_whose_quieter_side_is_20_db_down_is_still_averaged(clip, shared_data, tmp_path):
    """A channel that plays, however much quieter, is part of the mix: only a dead one is left out."""
    left = 0.5 * load_audio(clip, 48000)
    other = np.resize(load_audio(shared_data / OTHER_CLIP, 48000), left.size)
    quieter = other * 10 ** ((audio.rms_db(left) - 20 - audio.rms_db(other)) / 20)
    path = two_channels(tmp_path / "panned.wav", left, quieter)

    np.testing.assert_allclose(load_audio(path), mean_of_channels(path), atol=1e-6)


def test_ordinary_stereo_is_the_mean_of_its_channels_bit_for_bit(clip, shared_data, tmp_path):
    left = 0.5 * load_audio(clip, 48000)
    right = 0.5 * np.resize(load_audio(shared_data / OTHER_CLIP, 48000), left.size)
    path = two_channels(tmp_path / "stereo.wav", left, right)

    np.testing.assert_array_equal(load_audio(path), mean_of_channels(path))


def test_a_song_whose_right_side_comes_in_after_a_one_sided_intro_keeps_one_level(clip, tmp_path):
    """The right side silent for the first 5 s (several of the decoder's runs), then playing: the
    intro is part of the stereo mix, heard as the mean like the rest, not 6 dB louder than it."""
    left = 0.5 * load_audio(clip, 48000)
    right = left.copy()
    right[: 5 * 48000] = 0
    path = two_channels(tmp_path / "intro.wav", left, right)

    np.testing.assert_allclose(load_audio(path), mean_of_channels(path), atol=1e-6)


def surround(clip: Path, target: Path, pan: str) -> Path:
    """A 5.1 FLAC of the clip at half scale (the clip peaks over 1.0), its channels set by `pan`."""
    return ffmpeg(clip, target, "-af", f"pan=5.1|{pan}", "-c:a", "flac", "-sample_fmt", "s32")


@pytest.fixture(scope="module")
def half_clip(clip, tmp_path_factory) -> np.ndarray:
    """The clip at half scale through a 24-bit FLAC: what each surround file holds per channel."""
    return load_audio(ffmpeg(clip, tmp_path_factory.mktemp("half") / "half.flac", "-af", "volume=0.5",
                             "-c:a", "flac", "-sample_fmt", "s32"))


def test_a_stereo_mix_carried_in_a_five_one_file_is_heard_as_in_stereo(clip, model, half_clip, tmp_path):
    """A 5.1 file whose front pair holds the song (a stereo mix in a film's 5.1 track): the plain
    mean of the six channels made it 9.5 dB quieter than the stereo file, and moved the answer."""
    path = surround(clip, tmp_path / "front.flac", "FL=0.5*c0|FR=0.5*c0")

    samples = load_audio(path)

    np.testing.assert_allclose(samples, half_clip, atol=1e-5)
    assert np.abs(mood_of(model, samples) - mood_of(model, half_clip)).max() < 1e-4


def test_a_five_one_mix_keeps_its_centre_above_its_surrounds_and_leaves_out_its_lfe(clip, half_clip, tmp_path):
    """FFmpeg's downmix, with stereo's weights for the front pair: voices and lead vocals live in
    the centre (+3 dB over a front channel); the LFE is not part of what a stereo listener hears."""
    centre = load_audio(surround(clip, tmp_path / "centre.flac", "FC=0.5*c0|LFE=0.5*c0"))
    back_left = load_audio(surround(clip, tmp_path / "back.flac", "BL=0.5*c0"))

    np.testing.assert_allclose(centre, 2**0.5 / 2 * half_clip, atol=1e-5)  # a front channel's 0.5, +3 dB
    np.testing.assert_allclose(back_left, 2**0.5 / 4 * half_clip, atol=1e-5)  # a front channel's 0.5, -3 dB


def test_a_five_one_stretch_of_lfe_alone_is_silence_in_the_mix(clip, tmp_path):
    """The LFE is out of the mix wherever it sounds alone too: not taken for two cancelling channels."""
    path = surround(clip, tmp_path / "rumble.flac", "LFE=0.5*c0")

    assert not load_audio(path).any()


HALF = ["-af", "volume=0.5"]  # the clip peaks over 1.0: integer formats would clip it
# name -> (file name, ffmpeg arguments after the clip's input; an INPUTS key first is an input before it)
FORMATS = {
    "wav 16-bit": ("a.wav", [*HALF, "-c:a", "pcm_s16le"]),
    "wav 24-bit": ("a.wav", [*HALF, "-c:a", "pcm_s24le"]),
    "wav 32-bit float": ("a.wav", [*HALF, "-c:a", "pcm_f32le"]),
    "wav 8-bit": ("a.wav", [*HALF, "-c:a", "pcm_u8"]),
    "wav extensible, stereo 24-bit": ("a.wav", ["-af", "pan=stereo|c0=0.5*c0|c1=0.5*c0", "-c:a", "pcm_s24le"]),
    "aiff": ("a.aiff", [*HALF]),
    "flac 24-bit": ("a.flac", [*HALF, "-sample_fmt", "s32"]),
    "alac m4a": ("a.m4a", [*HALF, "-c:a", "alac"]),
    "aac m4a": ("a.m4a", [*HALF, "-c:a", "aac", "-b:a", "128k"]),
    "mp3 vbr": ("a.mp3", [*HALF, "-c:a", "libmp3lame", "-q:a", "2"]),
    "opus ogg": ("a.ogg", [*HALF, "-c:a", "libopus", "-b:a", "96k"]),
    "opus webm": ("a.webm", [*HALF, "-c:a", "libopus", "-b:a", "96k"]),
    "opus mkv": ("a.mkv", [*HALF, "-c:a", "libopus", "-b:a", "96k"]),
    "vorbis webm": ("a.webm", [*HALF, "-c:a", "libvorbis"]),
    "telegram voice (opus ogg, 32 kb/s mono)": ("a.ogg", [*HALF, "-c:a", "libopus", "-b:a", "32k",
                                                          "-application", "voip"]),
    "flac 192 kHz": ("a.flac", [*HALF, "-ar", "192000", "-sample_fmt", "s32"]),
    "aac mp4, a picture as stream 0": ("a.mp4", ["{slides}", *HALF, "-map", "0:v", "-map", "1:a", "-c:v", "mjpeg",
                                                 "-c:a", "aac", "-shortest"]),
    "mp3 with a 1000x1000 ID3 picture": ("a.mp3", ["{picture}", *HALF, "-map", "1:a", "-map", "0:v",
                                                   "-c:v", "png", "-frames:v", "1", "-c:a", "libmp3lame",
                                                   "-disposition:v", "attached_pic", "-id3v2_version", "3"]),
    "h264 + aac mp4 video": ("a.mp4", ["{video}", *HALF, "-map", "0:v", "-map", "1:a", "-c:v", "libx264",
                                       "-preset", "ultrafast", "-c:a", "aac", "-shortest"]),
}
INPUTS = {
    "{picture}": ["-f", "lavfi", "-i", "testsrc=size=1000x1000:rate=1:duration=1"],
    "{slides}": ["-f", "lavfi", "-i", "testsrc=size=1000x1000:rate=1"],
    "{video}": ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"],
}


@pytest.fixture(scope="module")
def half_mood(model, half_clip) -> np.ndarray:
    return mood_of(model, half_clip)


@pytest.mark.parametrize("name", FORMATS)
def test_each_common_format_is_heard_as_the_clip_is(name, clip, model, half_clip, half_mood, tmp_path):
    target, args = FORMATS[name]
    first = INPUTS.get(args[0], [])
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *first, "-i", str(clip),
               *args[1 if first else 0 :], str(tmp_path / target)]
    subprocess.run(command, check=True, timeout=FFMPEG_TIMEOUT_S)

    samples = load_audio(tmp_path / target)

    assert abs(samples.size - half_clip.size) < 0.05 * SAMPLE_RATE  # encoder padding: 20 ms at most
    assert np.abs(mood_of(model, samples) - half_mood).max() < CLOSE_PROBABILITY


AMR_CLOSE_PROBABILITY = 0.05  # a speech codec at 12.2 kb/s: 0.032 from the same 8 kHz voice uncoded
# What the model hears, the log-mel, in the bands AMR-NB codes (its centres within 150-3400 Hz):
# 2.6 dB apart on average from the voice uncoded; the voice 100 ms late is 6.2 dB apart, at half
# level 4.2, and taken for 7 or 9 kHz audio 13 dB or more.
AMR_BAND_HZ = (150, 3400)
AMR_CLOSE_DB = 4.0


def test_an_amr_voice_note_is_heard_as_the_same_8_khz_audio(model):
    """AMR-NB (old phones' voice notes, .amr and .3gp): the note is committed, as no encoder here
    makes one any more (tests/inference/amr_note.py). Its 8 kHz signal is made again and brought to
    the model's rate here, not read back through load_audio, which would share any error in it."""
    samples = load_audio(amr_note.NOTE)

    expected = resample(amr_note.synthesize(), amr_note.RATE, SAMPLE_RATE)
    assert abs(samples.size - expected.size) < 0.05 * SAMPLE_RATE  # the codec's delay: 20 ms
    filters = audio.mel_filters()
    centres = filters @ audio.fft_frequencies() / filters.sum(axis=1)
    band = (centres > AMR_BAND_HZ[0]) & (centres < AMR_BAND_HZ[1])
    heard, meant = audio.log_mel(samples), audio.log_mel(expected)
    frames = min(heard.shape[1], meant.shape[1])
    assert np.abs(heard[band, :frames] - meant[band, :frames]).mean() < AMR_CLOSE_DB
    assert np.abs(mood_of(model, samples) - mood_of(model, expected)).max() < AMR_CLOSE_PROBABILITY


@pytest.mark.parametrize("samples, heard", [
    (10 * SAMPLE_RATE, "looped to 30 s"), (10 * SAMPLE_RATE - 1, "too short"),
    (30 * SAMPLE_RATE, "whole"), (30 * SAMPLE_RATE + 1, "its first 30 s"),
])
def test_lengths_at_the_edges(half_clip, tmp_path, samples, heard):
    signal = np.resize(half_clip, samples)
    path = tmp_path / "edge.wav"
    sf.write(path, signal, SAMPLE_RATE, subtype="FLOAT")

    decoded = load_audio(path)

    assert decoded.size == samples
    if heard == "too short":
        with pytest.raises(TooShortAudioError, match="lasts 9.9 s; I need at least 10 s"):
            select_section(decoded)
        return
    section = select_section(decoded)
    looped = heard == "looped to 30 s"
    expected = np.resize(signal, audio.SECTION_SAMPLES) if looped else signal[: audio.SECTION_SAMPLES]
    np.testing.assert_array_equal(section, expected)
