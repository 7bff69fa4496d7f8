"""Audio in, mood out. Knows nothing of chat or storage.

`import inference` stays cheap: the classifier (and with it numpy, scipy and onnxruntime) loads on
first use of `inference.Classifier`.
"""
from __future__ import annotations

from inference.result import (
    MOODS,
    AudioError,
    InferenceError,
    ModelUnavailableError,
    MoodResult,
    SilentAudioError,
    TooLongAudioError,
    TooShortAudioError,
    UnreadableAudioError,
)

__all__ = [
    "MOODS",
    "AudioError",
    "Classifier",
    "InferenceError",
    "ModelUnavailableError",
    "MoodResult",
    "SilentAudioError",
    "TooLongAudioError",
    "TooShortAudioError",
    "UnreadableAudioError",
]


def __getattr__(name: str):
    if name == "Classifier":
        from inference.pool import Classifier

        return Classifier
    raise AttributeError(f"module 'inference' has no attribute {name!r}")
