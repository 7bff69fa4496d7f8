"""Training end to end on a handful of real clips, and the promise that training sees serving's input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inference import calibration, fusion, train, train_args
from inference.audio import main_model_input
from inference.features import FEATURE_NAMES
from inference.result import MOODS


def test_cached_input_is_the_serving_input(shared_data, tmp_path):
    clip = train.read_labels(shared_data, limit=4)[0]
    mel, features = train.cached_inputs(clip, tmp_path)
    again, _ = train.cached_inputs(clip, tmp_path)  # second call reads the cache
    assert train.clip_cache_path(tmp_path, clip.song_id).exists()
    np.testing.assert_array_equal(mel, again)
    served = main_model_input(clip.path)
    np.testing.assert_allclose(train.serving_crops(mel[np.newaxis]), served, atol=1e-4)
    assert features.shape == (len(FEATURE_NAMES),)


def test_the_embedding_cache_follows_the_section_not_the_feature_vector(monkeypatch, tmp_path):
    """A new hand-crafted feature leaves musicnn's cached embeddings valid; a new audio front does not."""
    weights = tmp_path / "musicnn.onnx"
    weights.write_bytes(b"graph")
    before, features_before = train.embedding_cache_dir(tmp_path, weights), train.cache_key()
    monkeypatch.setattr(train, "FEATURE_NAMES", (*FEATURE_NAMES, "another_feature"))
    assert train.cache_key() != features_before
    assert train.embedding_cache_dir(tmp_path, weights) == before
    monkeypatch.setattr(train.audio, "SECTION_SECONDS", train.audio.SECTION_SECONDS + 1)
    assert train.embedding_cache_dir(tmp_path, weights) != before


def test_the_feature_cache_follows_the_features_code(monkeypatch, tmp_path):
    """A feature computed another way under the same name must not be read from an old cache."""
    before = train.cache_key()
    source = tmp_path / "features.py"
    source.write_bytes(Path(train.features_module.__file__).read_bytes() + b"# changed")
    monkeypatch.setattr(train.features_module, "__file__", str(source))
    assert train.cache_key() != before


def test_folds_never_share_an_artist(shared_data):
    clips = train.read_labels(shared_data)
    labels = np.array([c.label for c in clips])
    groups = np.array([c.artist for c in clips])
    assert len(clips) == 720 and np.bincount(labels).tolist() == [180] * 4
    for train_idx, val_idx in train.artist_folds(labels, groups, 4):
        assert not set(groups[train_idx]) & set(groups[val_idx])


def test_augmented_crops_have_the_model_shape():
    rng = np.random.default_rng(0)
    mels = rng.normal(-40, 10, size=(2, 64, 644)).astype(np.float32)
    crops = train.augment_batch(mels, rng)
    assert crops.shape == train.serving_crops(mels).shape
    assert not np.array_equal(crops, train.serving_crops(mels))


def test_tiny_training_run_writes_every_artifact(shared_data, tmp_path):
    out = tmp_path / "weights"
    code = train.main([
        "--model", "all", "--data", str(shared_data), "--limit", "8", "--folds", "2",
        "--epochs", "1", "--batch-size", "4", "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
        "--log-file", str(tmp_path / "train.log"), "--workers", "1",
    ])
    assert code == 0
    for name in ("main.onnx", "main.json", "ann.npz", "ann.json", "confusion_main.png",
                 "confusion_ann.png", "MODEL_CARD_main.md", "MODEL_CARD_ann.md"):
        assert (out / name).exists(), name
    meta = json.loads((out / "main.json").read_text())
    assert meta["name"] == "ResNet18BiLSTM" and meta["moods"] == list(MOODS)
    assert meta["cv"]["folds"] == 2 and 0.0 <= meta["cv"]["macro_f1_mean"] <= 1.0
    assert meta["onnx_torch_max_abs_diff"] <= 1e-4
    ann = json.loads((out / "ann.json").read_text())
    assert ann["feature_names"] == list(FEATURE_NAMES)
    with np.load(out / "ann.npz") as arrays:
        assert {"mean", "std", "W0", "b0"} <= set(arrays.files)
    assert "macro-F1" in (out / "MODEL_CARD_main.md").read_text()
    assert "fold" in (tmp_path / "train.log").read_text()
    # The embedding head and the three-part fusion, from embeddings the shipped ONNX graph computed.
    weights = (meta["fusion"]["main_weight"], meta["fusion"]["ann_weight"], meta["fusion"]["embedding_weight"])
    assert weights in fusion.SIMPLEX_GRID and meta["fusion"]["folds"] == 2
    assert (out / "musicnn.onnx").read_bytes() == (train_args.DEFAULT_OUT / "musicnn.onnx").read_bytes()
    assert len(meta["embedding_head"]["W"]) == 200 and len(meta["embedding_head"]["W"][0]) == 4
    assert len(list((tmp_path / "cache").glob("musicnn-*/*.npy"))) == 8
    assert fusion.CARD_SECTION in (out / "MODEL_CARD_main.md").read_text()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no partial or staging files left
    # The served mix's temperature, fitted on its out-of-fold probabilities, goes into the card; a
    # later `fusion --calibrate` (the weights kept) fits the same one from the same parts.
    fitted = meta["fusion"]["calibration"]
    assert fitted["temperature"] in calibration.T_GRID and len(fitted["fold_temperatures"]) == 2
    assert "Confidence:" in (out / "MODEL_CARD_main.md").read_text()
    data = train.load_dataset(train.read_labels(shared_data, limit=8), tmp_path / "cache", workers=1)
    again = fusion.calibrate(data, tmp_path / "cache", out, 1)
    assert again["temperature"] == fitted["temperature"]
    assert json.loads((out / "main.json").read_text())["fusion"]["calibration"] == again
    assert (out / "MODEL_CARD_main.md").read_text().count("Confidence:") == 1


def _fusion_result(weight: float) -> dict:
    scores = {"macro_f1_mean": 0.7, "macro_f1_sd": 0.01, "accuracy_mean": 0.71, "accuracy_sd": 0.02,
              "per_fold_macro_f1": [0.69, 0.7, 0.71]}
    return {"ann_weight": weight, "folds": 3, "epochs": 18, "ann_epochs": 69,
            "cv": {"main": scores, "ann": scores, "fused": scores}}


def test_fusion_rewrites_its_card_section_and_keeps_the_rest():
    card = "# Card\n\n## Cross-validated results\nx\n\n## Known limits\n- few clips\n"
    first = fusion.with_card_section(card, fusion.card_section(_fusion_result(0.5)))
    assert first.count(fusion.CARD_SECTION) == 1 and "0.5 × p(ANN)" in first
    assert "0.690, 0.700, 0.710" in first
    second = fusion.with_card_section(first, fusion.card_section(_fusion_result(0.3)))
    assert second.count(fusion.CARD_SECTION) == 1
    assert "0.3 × p(ANN)" in second and "0.5 × p(ANN)" not in second
    assert second.startswith("# Card\n\n## Cross-validated results\nx\n") and second.endswith("- few clips\n")


def test_the_fusion_grid_covers_every_mix_and_picks_the_best():
    assert len(fusion.SIMPLEX_GRID) == 66 and (1.0, 0.0, 0.0) in fusion.SIMPLEX_GRID
    assert all(abs(sum(w) - 1.0) < 1e-9 and min(w) >= 0 for w in fusion.SIMPLEX_GRID)
    labels = np.arange(40) % 4
    right = 0.2 + 0.2 * np.eye(4)[labels]  # 0.4 on the true mood: right, but unsure
    wrong = 0.1 + 0.6 * np.eye(4)[(labels + 1) % 4]  # 0.7 on a wrong mood
    fold_of = np.arange(40) % 2
    best, table = fusion.choose_weights(labels, (wrong, wrong, right), fold_of)
    # The right part wins only above 0.75 of the mix (0.3 e + 0.1 > 0.7 - 0.5 e).
    assert best[2] >= 0.8 and table[best]["macro_f1_mean"] == 1.0
    assert best[0] >= fusion.MIN_NETWORK_WEIGHT  # the network always stays in the served answer
    assert table[(0.3, 0.0, 0.7)]["macro_f1_mean"] < 0.5


def test_the_head_learns_separable_embeddings():
    rng = np.random.default_rng(0)
    labels = np.arange(80) % 4
    centres = rng.normal(size=(4, 200)) * 3
    x = (centres[labels] + rng.normal(size=(80, 200))).astype(np.float32)
    head = train.train_head(x, labels)
    assert (head.predict(x).argmax(axis=1) == labels).mean() > 0.95
    with pytest.raises(ValueError, match="all 4 moods"):
        train.train_head(x[labels < 3], labels[labels < 3])


def test_a_truncated_cache_entry_is_computed_again_not_a_crash_on_every_run(shared_data, tmp_path):
    """A cache file cut short (a full disk, a copied cache) is read as missing and rewritten."""
    clip = train.read_labels(shared_data, limit=4)[0]
    mel, features = train.cached_inputs(clip, tmp_path)
    target = train.clip_cache_path(tmp_path, clip.song_id)
    for size in (0, target.stat().st_size // 2):
        with open(target, "r+b") as handle:
            handle.truncate(size)
        again, features_again = train.cached_inputs(clip, tmp_path)
        np.testing.assert_array_equal(again, mel)
        np.testing.assert_array_equal(features_again, features)
    with np.load(target) as stored:  # rewritten whole
        np.testing.assert_array_equal(stored["mel"], mel)


def test_a_truncated_embedding_cache_entry_is_computed_again(shared_data, tmp_path):
    clip = train.read_labels(shared_data, limit=4)[0]
    weights = train_args.DEFAULT_OUT / "musicnn.onnx"
    patches = train.clip_patch_embeddings(clip, tmp_path, weights)
    target = tmp_path / f"{clip.song_id}.npy"
    with open(target, "r+b") as handle:
        handle.truncate(target.stat().st_size // 2)
    np.testing.assert_array_equal(train.clip_patch_embeddings(clip, tmp_path, weights), patches)
    np.testing.assert_array_equal(np.load(target), patches)


def synthetic_dataset(n: int = 8, seed: int = 0) -> train.Dataset:
    """`n` clips of random log-mels and features, two per mood, one artist each."""
    rng = np.random.default_rng(seed)
    clips = [train.Clip(f"s{i}", Path(f"s{i}.ogg"), i % 4, f"artist {i}") for i in range(n)]
    mels = rng.normal(-40, 10, size=(n, 64, train.audio.SECTION_FRAMES)).astype(np.float32)
    return train.Dataset(clips, mels, rng.normal(size=(n, len(FEATURE_NAMES))).astype(np.float32))


def test_a_truncated_fusion_cache_is_computed_again(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "MAIN_EPOCHS", 1)
    data, cache = synthetic_dataset(), tmp_path / "fusion-main.npy"
    first = fusion.main_out_of_fold(data, 2, 1, cache)
    with open(cache, "r+b") as handle:
        handle.truncate(cache.stat().st_size // 2)
    np.testing.assert_allclose(fusion.main_out_of_fold(data, 2, 1, cache), first, atol=1e-5)
    np.testing.assert_allclose(np.load(cache), first, atol=1e-5)


def test_building_the_cache_in_process_keeps_the_training_threads(shared_data, tmp_path):
    """`--workers 1` on a cold cache must still train on `--threads`, as a warm cache does."""
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        train.load_dataset(train.read_labels(shared_data, limit=4)[:1], tmp_path, workers=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("device, threads, says", [
    ("cpu", 4, "CPU (4 threads)"), ("cuda", 2, "CUDA GPU"),
])
def test_the_main_card_names_the_device_and_threads_the_run_used(device, threads, says):
    meta = {**json.loads((train_args.DEFAULT_OUT / "main.json").read_text()), "device": device, "threads": threads}
    card = " ".join(train.main_card(meta, 8).split())
    assert says in card and "CPU (2 threads)" not in card
    assert "per epoch over 8 clips" in card


def _trained_cards(out: Path, schedule_epochs: int, batch: int) -> Path:
    """main.json and ann.json as `train` leaves them in `out` before the fusion step."""
    out.mkdir(parents=True, exist_ok=True)
    shipped = json.loads((train_args.DEFAULT_OUT / "main.json").read_text())
    (out / "main.json").write_text(json.dumps({
        "version": "test-main", "input": shipped["input"], "final_epochs": schedule_epochs,
        "hyper_parameters": {"schedule_epochs": schedule_epochs, "batch": batch},
    }))
    (out / "ann.json").write_text(json.dumps({"version": "test-ann", "final_epochs": 1}))
    return out


def test_fusion_refits_the_network_on_the_schedule_it_was_trained_with(shared_data, tmp_path, monkeypatch):
    """`train --epochs 30` may stop its final fit after epoch 25; fusion's refits must follow the 30-epoch
    schedule, not the default 20 (the one-cycle scheduler refuses to step past its end)."""
    monkeypatch.setattr(train, "MAIN_EPOCHS", 1)  # the default schedule, shorter than the trained one
    data = train.load_dataset(train.read_labels(shared_data, limit=8), tmp_path / "cache", workers=1)
    out = _trained_cards(tmp_path / "out", schedule_epochs=2, batch=4)
    result = fusion.run(data, 2, 2, tmp_path / "cache", out, 1, write=False)
    assert result["epochs"] == 2 and result["schedule_epochs"] == 2
    assert "2 epochs of the 2-epoch schedule" in " ".join(fusion.card_section(result).split())


def test_fusion_cache_is_kept_apart_for_other_clips_and_networks(tmp_path):
    """A tiny run (--limit) must not hand its out-of-fold probabilities to a run on other clips."""
    out = _trained_cards(tmp_path / "out", schedule_epochs=20, batch=16)
    small, other = synthetic_dataset(8), synthetic_dataset(12)
    path = fusion.main_cache_path(tmp_path, 3, 18, small, out)
    assert path == fusion.main_cache_path(tmp_path, 3, 18, synthetic_dataset(8, seed=1), out)
    assert path != fusion.main_cache_path(tmp_path, 3, 18, other, out)
    renamed = train.Dataset([train.Clip(c.song_id + "x", c.path, c.label, c.artist) for c in small.clips],
                            small.mels, small.features)
    assert path != fusion.main_cache_path(tmp_path, 3, 18, renamed, out)
    longer = _trained_cards(tmp_path / "longer", schedule_epochs=30, batch=16)
    assert path != fusion.main_cache_path(tmp_path, 3, 18, small, longer)


def test_fusion_cache_is_kept_apart_for_other_seeds_and_not_moved_for_the_defaults(tmp_path):
    """The network's out-of-fold probabilities depend on both seeds; the cache of a default run stays valid."""
    out = _trained_cards(tmp_path / "out", schedule_epochs=20, batch=16)
    data = synthetic_dataset(8)
    default = fusion.main_cache_path(tmp_path, 3, 18, data, out)
    assert fusion.main_cache_path(tmp_path, 3, 18, data, out, seed=train.SEED, split_seed=train.SEED) == default
    others = {fusion.main_cache_path(tmp_path, 3, 18, data, out, seed=seed, split_seed=split)
              for seed, split in [(1, train.SEED), (train.SEED, 1), (1, 1), (1, 2), (2, 1)]}
    assert len(others) == 5 and default not in others
