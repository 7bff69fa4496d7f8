"""What the classifier answers, and the errors it raises.

Plain data only: no torch, no onnxruntime, nothing about chat or storage.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# Thayer's quadrants, in the order of the models' logits.
MOODS: tuple[str, ...] = ("happy", "energetic", "sad", "calm")

# Sign of each quadrant on the two axes (valence, arousal).
QUADRANT_SIGNS: dict[str, tuple[int, int]] = {
    "happy": (+1, +1),
    "energetic": (-1, +1),
    "sad": (-1, -1),
    "calm": (+1, -1),
}


def valence_arousal(probabilities: dict[str, float]) -> tuple[float, float]:
    """Project the four class probabilities onto the valence/arousal plane, in [-1, 1]: a model's
    float32 probabilities may sum to a rounding over 1 (0.6 and 0.4: 1.00000003), held to the edge."""
    valence = sum(p * QUADRANT_SIGNS[m][0] for m, p in probabilities.items())
    arousal = sum(p * QUADRANT_SIGNS[m][1] for m, p in probabilities.items())
    return _on_the_plane(valence), _on_the_plane(arousal)


def _on_the_plane(value: float) -> float:
    value = float(value)
    return 1.0 if value > 1.0 else -1.0 if value < -1.0 else value  # NaN stays NaN, not an edge


@dataclass(frozen=True)
class MoodResult:
    mood: str
    probabilities: dict[str, float]
    valence: float
    arousal: float
    model: str  # "main" (ResNet18+BiLSTM) or "ann" (MLP on hand-crafted features)
    model_version: str
    seconds: float = 0.0
    # Why the fallback answered instead of the main model ("timeout", "overload", ...), else None.
    fallback_reason: str | None = None

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.mood])

    @classmethod
    def from_probabilities(
        cls,
        probabilities: dict[str, float],
        *,
        model: str,
        model_version: str,
        seconds: float = 0.0,
        fallback_reason: str | None = None,
    ) -> "MoodResult":
        probs = {m: float(probabilities[m]) for m in MOODS}
        mood = max(MOODS, key=lambda m: probs[m])
        valence, arousal = valence_arousal(probs)
        return cls(mood, probs, valence, arousal, model, model_version, seconds, fallback_reason)


def duration_words(seconds: float) -> str:
    """A length limit as a person says it: "20 minutes", "1 minute 30 s", "45 s"."""
    minutes, rest = divmod(round(seconds), 60)
    if not minutes:
        return f"{rest} s"
    said = f"{minutes} minute" + ("s" if minutes > 1 else "")
    return f"{said} {rest} s" if rest else said


# The shortest audio the classifier hears: under it there is not one full 10 s segment to listen to.
MIN_SECONDS = 10


def too_short_words(seconds: float) -> str:
    """Why audio lasting `seconds` is refused as too short: said by the decoder, and by whoever is
    told a file's length before fetching it. Rounded down to a tenth: 9.97 s must not read "lasts
    10.0 s; I need at least 10 s", nor a 50 ms click "lasts 0.0 s"."""
    tenths = math.floor(round(seconds * 10, 6))
    said = f"{tenths / 10:.1f} s" if tenths else "under 0.1 s"
    return f"The audio lasts {said}; I need at least {MIN_SECONDS} s."


def too_long_words(name: str, max_seconds: float) -> str:
    """Why the file `name` is refused for lasting over `max_seconds`: said by the decoder, and by
    whoever is told a file's length before fetching it."""
    return f"The file {name} lasts over {duration_words(max_seconds)}; send a song shorter than that."


class InferenceError(Exception):
    """Base class; str(error) is a message a user can read."""


# Where an AudioError's words name its file (`AudioError.about_file`).
FILE_NAME = "{file}"


class AudioError(InferenceError):
    """The audio itself cannot be analysed. One about a file, made by `about_file`, keeps its words
    with FILE_NAME where the file is named: str(error) names the file as the decoder was given it
    (its path's last part, which a console's user typed), `naming(name)` as the one who asked
    knows it (a chat's upload is saved under a name of the bot's own, "audio.mp3")."""

    words: str | None = None  # kept across processes: pickle keeps an exception's attributes
    quoted: tuple[str, ...] = ()  # others' words its message quotes (`named`'s): a song's title, a file's name

    @classmethod
    def about_file(cls, words: str, name: str) -> AudioError:
        error = cls(words.replace(FILE_NAME, name))
        error.words = words
        return error

    def naming(self, name: str) -> str:
        """The message, naming the file `name`; unchanged when it names no file."""
        return str(self) if self.words is None else self.words.replace(FILE_NAME, name)

    def named(self, name: str, quoted: str | None = None) -> AudioError:
        """The same error, naming the file `name`, which quotes `quoted` (the whole name if None):
        its uploader's words, which a chat shows with no link made of them."""
        error = type(self)(self.naming(name))
        error.words = self.words
        error.quoted = (name if quoted is None else quoted,)
        return error


class UnreadableAudioError(AudioError):
    pass


class TooShortAudioError(AudioError):
    pass


class SilentAudioError(AudioError):
    pass


class TooLongAudioError(AudioError):
    """Longer than the classifier will decode: refused before decoding (memory, time)."""


class ModelUnavailableError(InferenceError):
    """Neither the main model nor the fallback could answer."""


class ModelFailedOnFileError(ModelUnavailableError):
    """The fallback could not answer for this file (it hung or crashed its worker): another song may
    well be answered, so the message is worth a user's reading, unlike the others' server detail."""
