"""The runtime predictors: weight files in, four probabilities out, typed errors for bad weights.

The weights here are tiny random models written in the shipped formats; the shipped model's
accuracy is tested with the training code.
"""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from inference import predict
from inference.audio import N_FRAMES, N_MELS, N_SEGMENTS
from inference.features import N_FEATURES
from inference.predict import AnnModel, MainModel
from inference.result import MOODS, ModelUnavailableError, TooShortAudioError

TINY_VERSION = "tiny-test-1"
ANN_HIDDEN = 8
CLIPS = ("MT0000004637.ogg", "MT0000011357.ogg", "MT0000040632.ogg")


def tiny_torch_model(seed: int = 0):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(N_SEGMENTS, 4, kernel_size=3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, len(MOODS)),
    ).eval()


def write_main_weights(folder: Path, seed: int = 0, input_name: str = "mel"):
    """A random tiny CNN exported like the real one: `mel` (B,3,N_MELS,N_FRAMES) -> `logits` (B,4)."""
    import torch

    model = tiny_torch_model(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter announces its own deprecation
        torch.onnx.export(
            model,
            (torch.zeros(1, N_SEGMENTS, N_MELS, N_FRAMES),),
            str(folder / predict.MAIN_WEIGHTS),
            input_names=[input_name],
            output_names=["logits"],
            dynamic_axes={input_name: {0: "batch"}, "logits": {0: "batch"}},
            dynamo=False,
        )
    (folder / predict.MAIN_META).write_text(json.dumps({"version": TINY_VERSION}))
    return model


def write_ann_weights(folder: Path, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "mean": rng.normal(size=N_FEATURES).astype(np.float32),
        "std": rng.uniform(0.5, 2.0, size=N_FEATURES).astype(np.float32),
        "W0": rng.normal(scale=0.3, size=(N_FEATURES, ANN_HIDDEN)).astype(np.float32),
        "b0": rng.normal(size=ANN_HIDDEN).astype(np.float32),
        "W1": rng.normal(scale=0.3, size=(ANN_HIDDEN, len(MOODS))).astype(np.float32),
        "b1": rng.normal(size=len(MOODS)).astype(np.float32),
    }
    np.savez(folder / predict.ANN_WEIGHTS, **arrays)
    (folder / predict.ANN_META).write_text(json.dumps({"version": f"ann-{TINY_VERSION}"}))
    return arrays


def write_tiny_weights(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_main_weights(folder)
    write_ann_weights(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A weights dir with a random main.onnx and ann.npz (treat as read-only)."""
    return write_tiny_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def clips(shared_data) -> list[Path]:
    """Three real 30 s clips of the 4Q dataset."""
    paths = [shared_data / "audio" / name for name in CLIPS]
    assert all(p.is_file() for p in paths)
    return paths


def test_main_model_gives_probabilities_of_the_exported_network(tiny_weights):
    import torch

    model = MainModel.load(tiny_weights, threads=1)
    mel = np.random.default_rng(1).normal(size=(2, N_SEGMENTS, N_MELS, N_FRAMES)).astype(np.float32)
    probabilities = model.predict(mel)
    with torch.no_grad():
        expected = torch.softmax(tiny_torch_model()(torch.from_numpy(mel)), dim=1).numpy()
    assert probabilities.shape == (2, len(MOODS))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    np.testing.assert_array_equal(probabilities, model.predict(mel))  # deterministic
    assert model.version == TINY_VERSION


def test_the_network_threads_sleep_rather_than_spin_between_operators(tiny_weights):
    options = MainModel.load(tiny_weights, threads=2).session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.get_session_config_entry(predict.SPIN_CONFIG_KEY) == "0"


def test_ann_model_is_the_documented_mlp(tiny_weights):
    arrays = dict(np.load(tiny_weights / predict.ANN_WEIGHTS))
    model = AnnModel.load(tiny_weights)
    features = np.random.default_rng(2).normal(size=(3, N_FEATURES)).astype(np.float32)
    x = (features - arrays["mean"]) / arrays["std"]
    hidden = np.maximum(x @ arrays["W0"] + arrays["b0"], 0)
    logits = hidden @ arrays["W1"] + arrays["b1"]
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probabilities = model.predict(features)
    assert probabilities.shape == (3, len(MOODS))
    np.testing.assert_allclose(probabilities, expected, rtol=1e-4, atol=1e-6)
    assert model.predict(features[0]).shape == (1, len(MOODS))
    assert model.version == f"ann-{TINY_VERSION}"


def test_missing_weights_raise_a_readable_typed_error(tmp_path):
    with pytest.raises(ModelUnavailableError, match="missing"):
        MainModel.load(tmp_path / "nowhere")
    with pytest.raises(ModelUnavailableError, match="missing"):
        AnnModel.load(tmp_path / "nowhere")


def test_corrupt_weights_raise_a_readable_typed_error(tmp_path):
    (tmp_path / predict.MAIN_WEIGHTS).write_bytes(b"not an onnx graph" * 10)
    (tmp_path / predict.MAIN_META).write_text(json.dumps({"version": "1"}))
    (tmp_path / predict.ANN_WEIGHTS).write_bytes(b"PK\x03\x04 truncated zip")
    (tmp_path / predict.ANN_META).write_text(json.dumps({"version": "1"}))
    with pytest.raises(ModelUnavailableError, match="corrupt"):
        MainModel.load(tmp_path)
    with pytest.raises(ModelUnavailableError, match="corrupt"):
        AnnModel.load(tmp_path)


def test_weights_of_another_shape_are_refused(tmp_path):
    write_main_weights(tmp_path, input_name="spectrogram")
    with pytest.raises(ModelUnavailableError, match="must take `mel`"):
        MainModel.load(tmp_path)
    arrays = write_ann_weights(tmp_path)
    np.savez(tmp_path / predict.ANN_WEIGHTS, **{**arrays, "W1": arrays["W1"][:, :3], "b1": arrays["b1"][:3]})
    with pytest.raises(ModelUnavailableError, match="4 outputs"):
        AnnModel.load(tmp_path)
    (tmp_path / predict.ANN_META).write_text(json.dumps({"version": "2", "feature_names": ["tempo_bpm"]}))
    with pytest.raises(ModelUnavailableError, match="other hand-crafted features"):
        AnnModel.load(tmp_path)
    (tmp_path / predict.ANN_META).write_text("{}")
    with pytest.raises(ModelUnavailableError, match="ann.json"):
        AnnModel.load(tmp_path)


def test_job_functions_classify_a_real_clip(tiny_weights, clips):
    predict.load_worker_model(tiny_weights, threads=1)
    assert predict.main_model_version() == TINY_VERSION
    main_probabilities, main_seconds = predict.classify_main(clips[0])
    ann_probabilities, ann_seconds = predict.classify_ann(clips[0], AnnModel.load(tiny_weights))
    for probabilities, seconds in ((main_probabilities, main_seconds), (ann_probabilities, ann_seconds)):
        assert probabilities.shape == (len(MOODS),)
        assert abs(float(probabilities.sum()) - 1.0) < 1e-5
        assert 0 < seconds < 30
    again, _ = predict.classify_main(clips[0])
    np.testing.assert_array_equal(main_probabilities, again)


def test_job_functions_let_audio_errors_through(tiny_weights, tmp_path):
    import soundfile as sf

    short = tmp_path / "short.wav"
    sf.write(short, np.sin(np.arange(22050) / 10).astype(np.float32), 22050)
    predict.load_worker_model(tiny_weights, threads=1)
    with pytest.raises(TooShortAudioError):
        predict.classify_main(short)
    with pytest.raises(TooShortAudioError):
        predict.classify_ann(short, AnnModel.load(tiny_weights))


def test_a_worker_without_its_model_says_why(tmp_path):
    predict.load_worker_model(tmp_path, threads=1)
    with pytest.raises(ModelUnavailableError, match="missing"):
        predict.main_model_version()


def test_importing_inference_loads_no_model_library():
    import subprocess
    import sys

    script = (
        "import sys, inference\n"
        "from inference import Classifier, MoodResult, MOODS, ModelUnavailableError\n"
        "print(sorted(m for m in ('numpy', 'onnxruntime', 'torch', 'librosa') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def with_fusion(source: Path, target: Path, ann_weight: float) -> Path:
    """A copy of a weights dir whose main card asks for fusion with the ANN."""
    import shutil

    shutil.copytree(source, target)
    card_path = target / predict.MAIN_META
    card = json.loads(card_path.read_text())
    card["fusion"] = {"ann_weight": ann_weight}
    card_path.write_text(json.dumps(card))
    return target


def test_a_fused_main_answer_is_the_weighted_mean_of_both_models(tiny_weights, clips, tmp_path):
    from inference.audio import load_audio, log_mel, select_section, split_segments
    from inference.features import handcrafted_features

    fused_dir = with_fusion(tiny_weights, tmp_path / "fused", ann_weight=0.3)
    fused = MainModel.load(fused_dir)
    assert fused.version.startswith(f"{TINY_VERSION}+ann@")
    section = select_section(load_audio(clips[0]))
    p_main = MainModel.load(tiny_weights).predict(log_mel(split_segments(section))[np.newaxis])[0]
    p_ann = AnnModel.load(tiny_weights).predict(handcrafted_features(section))[0]
    np.testing.assert_allclose(fused.predict_section(section), 0.7 * p_main + 0.3 * p_ann, atol=1e-6)
    # The worker's job function serves the fused answer.
    probabilities, _ = predict.classify_main(clips[0], fused_dir)
    np.testing.assert_allclose(probabilities, 0.7 * p_main + 0.3 * p_ann, atol=1e-6)


def test_a_card_without_fusion_serves_the_network_alone(tiny_weights, clips):
    from inference.audio import main_model_input

    model = MainModel.load(tiny_weights)
    assert model.fusion is None and model.version == TINY_VERSION
    probabilities, _ = predict.classify_main(clips[0], tiny_weights)
    np.testing.assert_allclose(probabilities, model.predict(main_model_input(clips[0]))[0], atol=1e-6)


def test_a_mix_re_chosen_or_a_retrained_ann_over_the_same_network_is_another_version(tiny_weights, tmp_path):
    """The version is what the cache's answers are judged by (bot/usecases/mood.py: one of another
    version is heard again). It was the network's card version and the parts' names alone: the
    shipped '2026-11-24-c46aaea3+ann+musicnn' stood for the mixes of 2026-11-25 (0.2/0.2/0.6) and
    2026-12-03 (0.1/0.3/0.6, a retrained ANN, a refitted head), whose answers differ, so the older
    mix's answers were served from the cache as the current one's."""
    shutil.copytree(tiny_weights, tmp_path / "base")
    mixes = {name: with_fusion(tmp_path / "base", tmp_path / name, ann_weight=weight)
             for name, weight in (("served", 0.3), ("again", 0.3), ("re-chosen", 0.5), ("retrained", 0.3))}
    write_ann_weights(mixes["retrained"], seed=1)
    (mixes["retrained"] / predict.ANN_META).write_text(json.dumps({"version": "ann-tiny-test-2"}))

    versions = {name: MainModel.load(folder).version for name, folder in mixes.items()}

    assert all(version.startswith(f"{TINY_VERSION}+ann") for version in versions.values())
    assert versions["served"] == versions["again"]  # the same weights: the same version, the cache holds
    assert len({versions["served"], versions["re-chosen"], versions["retrained"]}) == 3


@pytest.mark.parametrize("card", [
    {"fusion": {"ann_weight": "heavy"}},
    {"fusion": ["ann_weight", 0.3]},
    {"fusion": {"ann_weight": 0.3, "calibration": "warm"}},
    {"fusion": {"ann_weight": 0.3, "calibration": {"temperature": "cool"}}},
    {"fusion": {"embedding_weight": 0.5}, "embedding": "musicnn"},
    # Numbers, but no mix: a temperature under 0 serves the least likely mood as the answer.
    {"fusion": {"ann_weight": 0.3, "calibration": {"temperature": -0.69}}},
    {"fusion": {"ann_weight": float("nan")}},
    {"fusion": {"ann_weight": -0.3}},
    # The weights as the mix reads them: main_weight null or "" (read as float(None), float('')),
    # and the network's share, what the others leave, under 0.
    {"fusion": {"ann_weight": 0.2, "embedding_weight": 0.5, "main_weight": None}},
    {"fusion": {"ann_weight": 0.2, "embedding_weight": 0.5, "main_weight": ""}},
    {"fusion": {"ann_weight": 1.5}},
    {"fusion": {"ann_weight": 0.6, "embedding_weight": 0.6}},
])
def test_a_card_whose_fusion_is_unreadable_is_a_model_unavailable_error_saying_so(tiny_weights, tmp_path, card):
    """A main.json whose fusion was no number (or no object) raised ValueError, AttributeError or
    TypeError from the worker's initializer: the pool broke, a CRITICAL traceback was logged, and
    the main model was said unavailable because "a model worker died while loading" it."""
    weights = tmp_path / "weights"
    shutil.copytree(tiny_weights, weights)
    from tests.inference.test_embedding import head_card

    (weights / predict.MAIN_META).write_text(json.dumps({"version": TINY_VERSION, "embedding_head": head_card(4), **card}))
    with pytest.raises(ModelUnavailableError, match=r"The fusion in main\.json is unreadable"):
        MainModel.load(weights, threads=1)


@pytest.mark.parametrize("names", [5, None, {"rms_mean": 0}])
def test_an_ann_card_whose_feature_names_are_no_list_is_a_model_unavailable_error(tiny_weights, tmp_path, names):
    """`list(5)` raised TypeError: Classifier.start raised it (the main model unused, the bot's every
    song refused) and the command line ended in a traceback."""
    weights = tmp_path / "weights"
    shutil.copytree(tiny_weights, weights)
    card = json.loads((weights / predict.ANN_META).read_text())
    (weights / predict.ANN_META).write_text(json.dumps({**card, "feature_names": names}))
    with pytest.raises(ModelUnavailableError, match="other hand-crafted features"):
        AnnModel.load(weights)
