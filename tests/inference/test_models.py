"""The networks: shapes, in-network normalisation, and exports that answer like the torch model."""
from __future__ import annotations

import numpy as np
import torch

from inference.audio import N_FRAMES, N_MELS, N_SEGMENTS
from inference.features import N_FEATURES
from inference.models import MoodMLP, ResNet18BiLSTM
from inference.result import MOODS
from inference.train import Standardiser, ann_arrays, export_onnx, numpy_ann_logits, onnx_logits


def _mel(batch: int, seed: int = 0) -> torch.Tensor:
    # Log-mel in dB, roughly where real music sits: the network must cope without outside scaling.
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, N_SEGMENTS, N_MELS, N_FRAMES, generator=generator) * 15 - 40


def test_main_model_maps_log_mel_to_four_logits():
    torch.manual_seed(0)
    model = ResNet18BiLSTM().eval()
    with torch.no_grad():
        logits = model(_mel(2))
    assert logits.shape == (2, len(MOODS))
    assert torch.isfinite(logits).all()
    assert model.trunk.conv1.in_channels == 1
    assert isinstance(model.trunk.fc, torch.nn.Identity)
    assert model.lstm.bidirectional


def test_main_model_reads_segments_in_order():
    torch.manual_seed(0)
    model = ResNet18BiLSTM().eval()
    mel = _mel(1)
    with torch.no_grad():
        forwards, backwards = model(mel), model(mel.flip(1))
    assert not torch.allclose(forwards, backwards)


def test_onnx_export_matches_torch(tmp_path):
    torch.manual_seed(1)
    model = ResNet18BiLSTM()
    # A few training steps so the BatchNorm statistics are not the identity.
    model.train()
    with torch.no_grad():
        for seed in range(3):
            model(_mel(4, seed))
    model.eval()
    target = tmp_path / "main.onnx"
    exported, dtype = export_onnx(model, target)
    assert dtype == "float16" and target.stat().st_size < 25_000_000
    for batch in (1, 3):  # the batch axis is dynamic
        mel = _mel(batch, seed=10 + batch)
        with torch.no_grad():
            exact = exported(mel).numpy()
            original = model(mel).numpy()
        served = onnx_logits(target, mel.numpy())
        assert served.shape == (batch, len(MOODS))
        assert np.abs(served - exact).max() <= 1e-4
        # fp16 storage of the weights barely moves the answer of the fp32 model.
        assert np.abs(served - original).max() <= 1e-2 * max(1.0, np.abs(original).max())


def test_ann_numpy_form_matches_torch():
    torch.manual_seed(2)
    model = MoodMLP(N_FEATURES).eval()
    features = np.random.default_rng(0).normal(3, 2, size=(5, N_FEATURES)).astype(np.float32)
    scale = Standardiser.fit(features)
    with torch.no_grad():
        expected = model(torch.from_numpy(scale(features))).numpy()
    arrays = ann_arrays(model, scale)
    assert sorted(arrays) == ["W0", "W1", "W2", "b0", "b1", "b2", "mean", "std"]
    assert arrays["W0"].shape == (N_FEATURES, 64)
    np.testing.assert_allclose(numpy_ann_logits(arrays, features), expected, atol=1e-5)
