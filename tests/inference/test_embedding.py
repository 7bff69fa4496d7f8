"""musicnn's embedding as served: its audio front, the ONNX graph against musicnn's own TF answers,
and the numpy head."""
from __future__ import annotations

import numpy as np
import pytest

from inference import embedding as E
from inference.audio import load_audio, select_section
from inference.predict import DEFAULT_WEIGHTS_DIR
from inference.result import ModelUnavailableError

REAL_CLIP = "audio/MT0000011357.ogg"
# musicnn's own TF1 graph (the wheel's MSD_musicnn checkpoint, run under tensorflow 2.15 compat.v1 by
# `convert_musicnn dump`) on this clip's served section, patch 5: the first 8 of its 200 numbers.
TF_PATCH5_EMBEDDING_HEAD = np.array(
    [-0.177176, -0.127029, 0.213151, -0.275121, -0.312855, 0.293596, -0.257406, -0.457115], dtype=np.float32
)
TF_PATCH5_EMBEDDING_MEAN = 0.10804210603237152
# TF vs the ONNX graph on the same input differ by ~1e-5; the rest is decoding/resampling rounding.
TF_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def section(shared_data) -> np.ndarray:
    return select_section(load_audio(shared_data / REAL_CLIP))


@pytest.fixture(scope="module")
def embedder() -> E.Embedder:
    return E.Embedder.load(DEFAULT_WEIGHTS_DIR, threads=1)


def test_the_front_is_musicnns_librosa_recipe_exactly(section):
    import librosa  # the reference only; serving never imports it

    samples = E.to_embedding_rate(section)
    assert samples.shape == (E.SECTION_SAMPLES,) and samples.dtype == np.float32
    mel = librosa.feature.melspectrogram(y=samples, sr=E.SAMPLE_RATE, hop_length=E.HOP_LENGTH,
                                         n_fft=E.N_FFT, n_mels=E.N_MELS).T
    expected = np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)
    patches = E.log_mel_patches(samples, E.ALL_PATCHES)
    assert patches.shape == (E.N_PATCHES, E.PATCH_FRAMES, E.N_MELS)
    np.testing.assert_allclose(patches.reshape(-1, E.N_MELS), expected[: E.N_PATCHES * E.PATCH_FRAMES],
                               rtol=0, atol=1e-6)
    # A chosen patch is the same slice of the whole.
    np.testing.assert_array_equal(E.log_mel_patches(samples, (5,))[0], patches[5])


def test_the_onnx_graph_answers_like_musicnns_tensorflow_graph(section, embedder):
    patches = E.log_mel_patches(E.to_embedding_rate(section), (5,))
    embedding = embedder.patch_embeddings(patches)
    assert embedding.shape == (1, E.EMBEDDING_SIZE)
    np.testing.assert_allclose(embedding[0, :8], TF_PATCH5_EMBEDDING_HEAD, atol=TF_TOLERANCE)
    assert abs(float(embedding.mean()) - TF_PATCH5_EMBEDDING_MEAN) < TF_TOLERANCE


def test_embedding_is_the_mean_of_the_served_patches_and_deterministic(section, embedder):
    first = embedder.embed(section)
    assert first.shape == (E.EMBEDDING_SIZE,) and np.isfinite(first).all()
    np.testing.assert_array_equal(first, embedder.embed(section))
    patches = E.log_mel_patches(E.patches_at_embedding_rate(section), E.SERVED_PATCHES)
    np.testing.assert_allclose(first, embedder.patch_embeddings(patches).mean(axis=0), atol=1e-6)
    # Different music, different embedding.
    other = embedder.embed(np.roll(section, section.size // 3) * 0.5)
    assert np.abs(other - first).max() > 1e-2


@pytest.mark.parametrize("patches", [(0,), E.SERVED_PATCHES, (E.N_PATCHES - 1,), (2, 7)])
def test_resampling_only_the_served_window_answers_like_resampling_the_section(section, embedder, patches):
    whole = E.log_mel_patches(E.to_embedding_rate(section), patches)
    window = E.log_mel_patches(E.patches_at_embedding_rate(section, patches), patches)
    # Float rounding of the resampler can flip musicnn's float16 rounding of a mel value: <= 1e-3 in log10.
    np.testing.assert_allclose(window, whole, rtol=0, atol=1e-3)
    np.testing.assert_allclose(embedder.patch_embeddings(window), embedder.patch_embeddings(whole), atol=1e-4)


def test_a_section_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="480000"):
        E.log_mel_patches(np.zeros(1000, dtype=np.float32))


@pytest.mark.parametrize("patches", [[], [3, 3], [E.N_PATCHES], [-1], ["five"], 5])
def test_patches_a_card_names_must_be_distinct_patches_of_the_section(patches):
    with pytest.raises(ModelUnavailableError, match="patches"):
        E.Embedder.load(DEFAULT_WEIGHTS_DIR, patches=patches)


def test_the_embedder_serves_the_patches_it_is_given(section):
    embedder = E.Embedder.load(DEFAULT_WEIGHTS_DIR, patches=[2, 7])
    assert embedder.patches == (2, 7)
    patches = E.log_mel_patches(E.to_embedding_rate(section), (2, 7))
    np.testing.assert_allclose(embedder.embed(section), embedder.patch_embeddings(patches).mean(axis=0), atol=1e-4)


def test_missing_weights_are_a_readable_error(tmp_path):
    with pytest.raises(ModelUnavailableError, match="missing"):
        E.Embedder.load(tmp_path)


def _head(seed: int = 0) -> E.EmbeddingHead:
    rng = np.random.default_rng(seed)
    return E.EmbeddingHead(rng.normal(size=E.EMBEDDING_SIZE).astype(np.float32),
                           rng.uniform(0.5, 2, E.EMBEDDING_SIZE).astype(np.float32),
                           rng.normal(size=(E.EMBEDDING_SIZE, 4)).astype(np.float32),
                           rng.normal(size=4).astype(np.float32))


def test_the_head_is_a_standardised_softmax_regression_and_survives_its_card():
    head = _head()
    x = np.random.default_rng(1).normal(size=(3, E.EMBEDDING_SIZE)).astype(np.float32)
    logits = ((x - head.mean) / head.std) @ head.weight + head.bias
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(head.predict(x), expected, rtol=1e-5)
    again = E.EmbeddingHead.from_card(head.to_card())
    np.testing.assert_allclose(again.predict(x), head.predict(x), rtol=1e-6)


def test_a_malformed_head_is_a_readable_error():
    card = _head().to_card()
    card["W"] = card["W"][:10]
    with pytest.raises(ModelUnavailableError, match="wrong shape"):
        E.EmbeddingHead.from_card(card)
    with pytest.raises(ModelUnavailableError, match="unreadable"):
        E.EmbeddingHead.from_card({"mean": [0.0]})


def write_an_embedding_of_another_width(folder) -> None:
    """A musicnn.onnx that takes `patches` and answers `embedding`, as the load checks, but of 96
    numbers a patch (the mean of its frames), not EMBEDDING_SIZE: another network's, or another layer's."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["patches"], ["embedding"], axes=[1], keepdims=0)], "another-width",
        [helper.make_tensor_value_info(E.INPUT_NAME, TensorProto.FLOAT, ["patches", E.PATCH_FRAMES, E.N_MELS])],
        [helper.make_tensor_value_info(E.OUTPUT_NAME, TensorProto.FLOAT, ["patches", E.N_MELS])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(folder / E.WEIGHTS))


def test_an_embedding_graph_of_another_width_is_refused_at_load(tmp_path, section):
    """It loaded, and then every song failed in the head, which standardises EMBEDDING_SIZE numbers."""
    write_an_embedding_of_another_width(tmp_path)
    with pytest.raises(ModelUnavailableError, match=f"answers .*96.*, not .*{E.EMBEDDING_SIZE}"):
        E.Embedder.load(tmp_path)


def head_card(outputs: int, bias: int | None = None) -> dict:
    """main.json's `embedding_head` for a head of `outputs` scores (and `bias` biases, as many by default)."""
    return {"mean": [0.0] * E.EMBEDDING_SIZE, "std": [1.0] * E.EMBEDDING_SIZE,
            "W": [[0.0] * outputs] * E.EMBEDDING_SIZE, "b": [0.0] * (outputs if bias is None else bias)}


@pytest.mark.parametrize("card", [head_card(5), head_card(3), head_card(1)], ids=["5 moods", "3 moods", "1 score"])
def test_a_head_without_one_score_per_mood_is_refused_at_load(card):
    """Such a head (trained on other labels, or a card from elsewhere) loaded, then failed every song
    in numpy: its scores cannot be added to the network's four."""
    with pytest.raises(ModelUnavailableError, match="4 outputs, one per mood"):
        E.EmbeddingHead.from_card(card)


def test_a_head_of_one_column_without_its_second_axis_is_refused_at_load():
    card = head_card(1)
    card["W"], card["b"] = [0.0] * E.EMBEDDING_SIZE, 0.0  # W (200,) and b (): the shapes still "agreed"
    with pytest.raises(ModelUnavailableError, match="wrong shape|4 outputs"):
        E.EmbeddingHead.from_card(card)


def test_a_float_file_written_at_integer_scale_still_embeds_to_finite_numbers(section, embedder):
    """Float WAVs written with int16-scaled samples (peaks near 32767) are common: musicnn's float16
    rounding of the mel power overflowed to inf, and the main answer became NaN."""
    loud = section * np.float32(32768)
    patches = E.log_mel_patches(E.patches_at_embedding_rate(loud))
    assert np.isfinite(patches).all()
    # The overflowing bands saturate at float16's largest value.
    assert patches.max() == pytest.approx(np.log10(E.LOG_SCALE * float(np.finfo(np.float16).max) + 1))
    assert np.isfinite(embedder.embed(loud)).all()
