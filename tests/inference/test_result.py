"""What a user is told of a song: the mood with the greatest probability, its confidence, and the
song's place on Thayer's valence/arousal plane, each quadrant in its own corner."""
from __future__ import annotations

import pytest

from inference.result import MOODS, MoodResult, valence_arousal

# Where a song that is surely one mood sits: (valence, arousal).
CORNERS = {"happy": (1.0, 1.0), "energetic": (-1.0, 1.0), "sad": (-1.0, -1.0), "calm": (1.0, -1.0)}


def certain(mood: str) -> dict[str, float]:
    return {m: 1.0 if m == mood else 0.0 for m in MOODS}


@pytest.mark.parametrize("mood", MOODS)
def test_a_song_that_is_surely_one_mood_sits_in_that_moods_corner(mood):
    assert valence_arousal(certain(mood)) == CORNERS[mood]


def test_an_even_song_sits_at_the_centre_and_a_sad_leaning_one_low_and_negative():
    assert valence_arousal({m: 0.25 for m in MOODS}) == pytest.approx((0.0, 0.0))
    leaning = {"happy": 0.1, "energetic": 0.2, "sad": 0.6, "calm": 0.1}
    # valence: 0.1 - 0.2 - 0.6 + 0.1; arousal: 0.1 + 0.2 - 0.6 - 0.1
    assert valence_arousal(leaning) == pytest.approx((-0.6, -0.4))


def test_the_mood_told_is_the_most_probable_with_its_probability_as_confidence():
    result = MoodResult.from_probabilities({"happy": 0.1, "energetic": 0.2, "sad": 0.6, "calm": 0.1},
                                           model="main", model_version="v1")

    assert (result.mood, result.confidence) == ("sad", pytest.approx(0.6))
    assert (result.valence, result.arousal) == pytest.approx((-0.6, -0.4))
    assert result.probabilities == pytest.approx({"happy": 0.1, "energetic": 0.2, "sad": 0.6, "calm": 0.1})


@pytest.mark.parametrize("mood", MOODS)
def test_each_mood_is_told_when_it_is_the_most_probable(mood):
    probabilities = {m: 0.7 if m == mood else 0.1 for m in MOODS}

    result = MoodResult.from_probabilities(probabilities, model="ann", model_version="ann-v1")

    assert (result.mood, result.confidence) == (mood, pytest.approx(0.7))
    assert (result.valence, result.arousal) == pytest.approx(tuple(0.6 * axis for axis in CORNERS[mood]))


def test_an_audio_error_from_a_worker_can_still_name_the_file_as_its_sender_named_it():
    """The decoder's errors come back from worker processes pickled: the words they keep, where
    the file is named, come with them, so the bot can name the upload it saved as `audio.mp3`."""
    import pickle

    from inference.result import FILE_NAME, SilentAudioError, UnreadableAudioError

    error = pickle.loads(pickle.dumps(UnreadableAudioError.about_file(
        f"The file {FILE_NAME} is not audio we can read.", "audio.mp3")))
    assert type(error) is UnreadableAudioError and str(error) == "The file audio.mp3 is not audio we can read."
    assert error.naming("my mix.mp3") == "The file my mix.mp3 is not audio we can read."
    assert error.naming("{weird} name") == "The file {weird} name is not audio we can read."
    silent = SilentAudioError("The audio is silent; there is nothing to listen to.")  # names no file
    assert silent.naming("my mix.mp3") == str(silent)


@pytest.mark.parametrize("split", [("happy", "calm"), ("energetic", "sad"), ("happy", "energetic"), ("sad", "calm")])
def test_a_models_float32_answer_stays_on_the_plane(split):
    """A model answers float32 probabilities, whose sum may pass 1 by a rounding: 0.6 happy and 0.4
    calm had the valence at 1.00000003, off the [-1, 1] a result promises."""
    import numpy as np

    probabilities = dict.fromkeys(MOODS, 0.0)
    probabilities.update(zip(split, map(float, np.array([0.6, 0.4], dtype=np.float32))))
    result = MoodResult.from_probabilities(probabilities, model="ann", model_version="1")
    assert -1.0 <= result.valence <= 1.0 and -1.0 <= result.arousal <= 1.0
    assert max(abs(result.valence), abs(result.arousal)) == pytest.approx(1.0)
