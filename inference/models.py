"""The mood networks, and nothing else. Training lives in `train.py`, serving in `predict.py`."""
from __future__ import annotations

import torch
import torchvision
from torch import nn

from inference.result import MOODS

N_CLASSES = len(MOODS)
TRUNK_FEATURES = 512  # ResNet18's pooled width
INPUT_POOL = 2  # average-pool the log-mel by this factor on both axes before the trunk


class ResNet18BiLSTM(nn.Module):
    """(B, segments, mels, frames) log-mel in dB -> (B, 4) logits in MOODS order.

    A ResNet18 trunk (random init, one input channel, no fc) embeds each segment; the same trunk
    serves all segments. A bidirectional LSTM reads the segment vectors in time order, and two dense
    layers classify its mean output. The input BatchNorm learns the dB scale during training and is
    frozen into the exported graph, so serving feeds raw `log_mel` output.

    The input is first average-pooled 2x2 (64 x 214 -> 32 x 107 per segment): ResNet18's cost grows
    with the pixel count, and at full size training did not fit the CPU budget of this project
    (~0.4 s per clip per epoch on shared cores). Four broad moods do not need finer detail.
    """

    def __init__(self, hidden: int = 128, dense: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        self.input_norm = nn.BatchNorm2d(1)
        self.input_pool = nn.AvgPool2d(INPUT_POOL)
        trunk = torchvision.models.resnet18(weights=None)
        trunk.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        trunk.fc = nn.Identity()
        self.trunk = trunk
        self.lstm = nn.LSTM(TRUNK_FEATURES, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(2 * hidden, dense),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(dense, N_CLASSES),
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        batch, segments, mels, frames = mel.shape
        x = self.input_pool(self.input_norm(mel.reshape(batch * segments, 1, mels, frames)))
        embedded = self.trunk(x).reshape(batch, segments, TRUNK_FEATURES)
        sequence, _ = self.lstm(embedded)
        return self.head(sequence.mean(dim=1))


class MoodMLP(nn.Module):
    """Standardised hand-crafted features -> (B, 4) logits. Linear layers and ReLUs only, so the
    weights export to plain matrices that serve in numpy (x @ W + b)."""

    def __init__(self, n_features: int, hidden: tuple[int, ...] = (64, 32), dropout: float = 0.3):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, N_CLASSES))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)

    def linear_layers(self) -> list[nn.Linear]:
        return [m for m in self.layers if isinstance(m, nn.Linear)]
