"""The AMR voice note the suite decodes (tests/inference/files/voice_note.amr), and how it was made.

PyAV's wheels carried an AMR-NB encoder (libopencore_amrnb) up to 18.1.0; 18.1.1 dropped it, and the
ffmpeg packages here never had one. The decoder stays (FFmpeg's own amrnb), so the note is committed:
15 s of a voice singing, synthesized below at 8 kHz (no dataset audio, no recording), coded at
12.2 kb/s, 24 KB. The test makes the same 8 kHz signal again from this module and compares what the
model hears in each.

To make the note again, where PyAV has the encoder: python -m tests.inference.amr_note
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.signal import lfilter

RATE = 8000
FRAME = 160  # samples: AMR-NB codes 20 ms frames
BIT_RATE = 12200
SECONDS = 15
NOTE = Path(__file__).parent / "files" / "voice_note.amr"

BEAT_S = 0.5  # one sung vowel a beat, 120 beats a minute
MELODY = [57, 60, 64, 62, 60, 57, 55, 57, 53, 57, 60, 59, 55, 52, 50, 52]  # MIDI notes, looped
# The first three formants (Hz) of five vowels, as an adult sings them; bandwidths in BANDWIDTHS.
VOWELS = {"a": (730, 1090, 2440), "i": (270, 2290, 3010), "u": (300, 870, 2240),
          "o": (570, 840, 2410), "e": (530, 1840, 2480)}
BANDWIDTHS = (80, 100, 120)
LYRICS = "aiuoeaoi"  # the vowel of each beat, looped


def _hertz(midi: np.ndarray) -> np.ndarray:
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def _noise(n: int) -> np.ndarray:
    """White noise in ±1 from an integer hash of the sample index: the same on every machine."""
    x = np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    x ^= x >> np.uint64(31)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(29)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53) * 2.0 - 1.0


def synthesize() -> np.ndarray:
    """The note's 15 s at 8 kHz, float32 peaking at 0.6: a source-filter voice, as speech codecs
    model one. Glottal pulses at the melody's pitch (gliding, 5.5 Hz vibrato) with breath noise,
    through three formant resonators a vowel, faded in and out over 30 ms."""
    total = SECONDS * RATE
    beat = int(BEAT_S * RATE)
    t = np.arange(total) / RATE
    notes = np.asarray(MELODY)[(np.arange(total) // beat) % len(MELODY)]
    f0, _ = lfilter([0.01], [1, -0.99], _hertz(notes), zi=[0.99 * _hertz(notes[0])])
    f0 *= 1 + 0.01 * np.sin(2 * np.pi * 5.5 * t)
    pulses = np.diff(np.floor(np.cumsum(f0) / RATE), prepend=0.0)  # one impulse a period
    source = lfilter([1], [1, -0.97], pulses) + 0.02 * _noise(total)  # the glottis' tilt, breath
    fade = np.minimum(1, np.minimum(np.arange(beat), beat - np.arange(beat)) / (0.03 * RATE))
    out = np.zeros(total)
    for index, start in enumerate(range(0, total, beat)):
        sung = source[start : start + beat]
        for formant, bandwidth in zip(VOWELS[LYRICS[index % len(LYRICS)]], BANDWIDTHS):
            radius, angle = np.exp(-np.pi * bandwidth / RATE), 2 * np.pi * formant / RATE
            sung = lfilter([1 - radius], [1, -2 * radius * np.cos(angle), radius**2], sung)
        out[start : start + beat] = sung * fade[: sung.size]
    return (0.6 * out / np.abs(out).max()).astype(np.float32)


def encode(path: Path = NOTE) -> Path:
    """Write the note with PyAV's AMR-NB encoder (PyAV ≤ 18.1.0): 20 ms frames of 16-bit PCM."""
    import av

    pcm = (synthesize() * 32767).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="amr") as out:
        stream = out.add_stream("libopencore_amrnb", rate=RATE, layout="mono")
        stream.bit_rate = BIT_RATE
        for start in range(0, pcm.size - FRAME + 1, FRAME):
            frame = av.AudioFrame.from_ndarray(pcm[np.newaxis, start : start + FRAME], format="s16", layout="mono")
            frame.sample_rate = RATE
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


if __name__ == "__main__":
    print(encode())
