"""The weights we ship tell moods apart on real songs.

40 clips of the 4Q training data, 10 per mood, a fixed choice (every 18th clip of each mood by song
id). These clips were also used to fit the final models, so this is a sanity check of the shipped
files and of the serving path (audio front -> ONNX / numpy), NOT a generalisation estimate: the
cross-validated scores are in inference/weights/MODEL_CARD_*.md.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from inference.audio import N_FRAMES, N_MELS, N_SEGMENTS, load_audio, main_model_input, select_section
from inference.calibration import temper
from inference.features import FEATURE_NAMES, handcrafted_features
from inference.result import MOODS
from inference.train import read_labels

WEIGHTS = Path(__file__).resolve().parents[2] / "inference" / "weights"
PER_MOOD = 10
STRIDE = 18
MIN_ACCURACY = 0.45  # chance is 0.25
MAX_WEIGHTS_BYTES = 30_000_000


@pytest.fixture(scope="module")
def sample(shared_data):
    clips = read_labels(shared_data)
    chosen = [c for k in range(len(MOODS)) for c in [x for x in clips if x.label == k][::STRIDE][:PER_MOOD]]
    assert len(chosen) == PER_MOOD * len(MOODS)
    return chosen


def numpy_ann_probabilities(arrays, features: np.ndarray) -> np.ndarray:
    """The fallback exactly as the file format says: standardise, x @ W + b, ReLU, softmax."""
    x = (features - arrays["mean"]) / arrays["std"]
    layers = sorted(int(name[1:]) for name in arrays.files if name.startswith("W"))
    for i in layers:
        x = x @ arrays[f"W{i}"] + arrays[f"b{i}"]
        if i != layers[-1]:
            x = np.maximum(x, 0.0)
    exp = np.exp(x - x.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def test_weights_fit_in_the_repository():
    total = sum(p.stat().st_size for p in WEIGHTS.iterdir() if p.is_file())
    assert total <= MAX_WEIGHTS_BYTES


def test_main_model_card_matches_the_audio_front():
    meta = json.loads((WEIGHTS / "main.json").read_text())
    assert meta["name"] == "ResNet18BiLSTM" and meta["moods"] == list(MOODS)
    assert meta["input"]["shape"][1:] == [N_SEGMENTS, N_MELS, N_FRAMES]
    assert {"macro_f1_mean", "macro_f1_sd", "accuracy_mean", "accuracy_sd", "folds"} <= set(meta["cv"])


def test_shipped_main_model_beats_chance_on_real_clips(sample):
    session = ort.InferenceSession(str(WEIGHTS / "main.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["mel"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    mel = np.concatenate([main_model_input(c.path) for c in sample])
    logits = session.run(["logits"], {"mel": mel})[0]
    assert logits.shape == (len(sample), len(MOODS))
    accuracy = np.mean(logits.argmax(axis=1) == np.array([c.label for c in sample]))
    assert accuracy >= MIN_ACCURACY, accuracy


def test_shipped_ann_beats_chance_on_real_clips(sample):
    meta = json.loads((WEIGHTS / "ann.json").read_text())
    assert meta["feature_names"] == list(FEATURE_NAMES)
    features = np.stack([handcrafted_features(select_section(load_audio(c.path))) for c in sample])
    with np.load(WEIGHTS / "ann.npz") as arrays:
        probabilities = numpy_ann_probabilities(arrays, features)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    accuracy = np.mean(probabilities.argmax(axis=1) == np.array([c.label for c in sample]))
    assert accuracy >= MIN_ACCURACY, accuracy


def test_shipped_main_answer_is_its_cards_mix_of_the_three_parts_and_beats_chance(sample):
    from inference.embedding import Embedder, EmbeddingHead
    from inference.predict import AnnModel, MainModel

    card = json.loads((WEIGHTS / "main.json").read_text())
    fusion = card["fusion"]
    weights = (fusion["main_weight"], fusion["ann_weight"], fusion["embedding_weight"])
    assert abs(sum(weights) - 1.0) < 1e-9 and fusion["embedding_weight"] > 0
    model = MainModel.load(WEIGHTS)
    # The mix is served tempered by the card's temperature (fitted out of fold): the version says so.
    temperature = fusion["calibration"]["temperature"]
    assert temperature != 1.0 and f"+ann+musicnn+t{temperature:g}@" in model.version
    # The head was trained on the mean of the card's patches, and those are the ones served.
    assert model.fusion.embedder.patches == tuple(card["embedding"]["patches"])
    network = ort.InferenceSession(str(WEIGHTS / "main.onnx"), providers=["CPUExecutionProvider"])
    ann, embedder = AnnModel.load(WEIGHTS), Embedder.load(WEIGHTS)
    head = EmbeddingHead.from_card(card["embedding_head"])
    served, heads = [], []
    for i, clip in enumerate(sample):  # accuracy on all 40; each clip decoded, served and embedded once
        section = select_section(load_audio(clip.path))
        answer, p_head = model.predict_section(section), head.predict(embedder.embed(section))[0]
        if i % 4 == 0:  # 10 clips: the mix is checked exactly
            logits = network.run(["logits"], {"mel": main_model_input(clip.path)})[0][0]
            p_main = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
            expected = (weights[0] * p_main + weights[1] * ann.predict(handcrafted_features(section))[0]
                        + weights[2] * p_head)
            np.testing.assert_allclose(answer, temper(expected, temperature), atol=1e-5)
        served.append(answer.argmax())
        heads.append(p_head.argmax())
    labels = np.array([c.label for c in sample])
    assert np.mean(np.array(heads) == labels) >= MIN_ACCURACY
    assert np.mean(np.array(served) == labels) >= MIN_ACCURACY


def test_on_two_threads_the_embedding_runs_beside_the_rest_and_answers_the_same(sample):
    from inference.predict import MainModel

    one, two = MainModel.load(WEIGHTS, threads=1), MainModel.load(WEIGHTS, threads=2)
    assert one.fusion.beside is None and two.fusion.beside is not None
    # Each part's ONNX session gets one thread of the two, the embedding's thread the other.
    assert two.fusion.embedder.session.get_session_options().intra_op_num_threads == 1
    assert two.session.get_session_options().intra_op_num_threads == 1
    for clip in sample[::10]:
        section = select_section(load_audio(clip.path))
        np.testing.assert_allclose(two.predict_section(section), one.predict_section(section), atol=1e-5)


@pytest.mark.parametrize("threads, embedding, network", [(3, 1, 2), (4, 2, 2), (5, 2, 3)])
def test_on_more_threads_the_two_sessions_share_them(threads, embedding, network):
    """The embedding's session and the network's run at once: each took threads - 1, so a worker
    given 4 threads ran 6 computing at once (oversubscribed cores, on machines of 3 or more)."""
    from inference.predict import MainModel

    model = MainModel.load(WEIGHTS, threads=threads)
    assert model.fusion.embedder.session.get_session_options().intra_op_num_threads == embedding
    assert model.session.get_session_options().intra_op_num_threads == network
