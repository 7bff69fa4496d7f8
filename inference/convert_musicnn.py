"""Port musicnn's pretrained MSD_musicnn network (Pons & Serra, ISC licence) to ONNX, once.

The weights come from the PyPI wheel `musicnn` 0.1.0 (`musicnn/MSD_musicnn/`, a TF1 checkpoint
trained on Million Song Dataset tags). Serving never needs TensorFlow: this script runs only when
the shipped `weights/musicnn.onnx` is rebuilt, in two steps and two environments:

1. `dump` (needs TensorFlow 2.x and the musicnn wheel, in a separate venv, e.g.
   `python3.11 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu==2.15.1 "numpy<2"
   librosa==0.11.* && /tmp/tfenv/bin/pip install --no-deps musicnn-0.1.0-py3-none-any.whl`):

       PYTHONPATH=. /tmp/tfenv/bin/python -m inference.convert_musicnn dump --out /tmp/musicnn.npz
           --clips a.ogg b.ogg ...

   reads the checkpoint into plain arrays, and runs musicnn's own TF graph (compat.v1, inference
   mode) on the log-mel patches of a few real clips to keep its answers as the reference.
2. `export` (the project's venv, torch + onnx):

       python -m inference.convert_musicnn export --dump /tmp/musicnn.npz

   builds the same network in torch, checks it against TF's answers (max abs diff <= 1e-4), exports
   `weights/musicnn.onnx` (fp32: ~3 MB) and checks onnxruntime against torch.

The network (musicnn's `build_musicnn`, 64 mid-end filters, 200 back-end units): a batch-normalised
log-mel patch (187 frames x 96 mels) -> timbral convs (7x38, 7x67; 204 filters each) and temporal
convs (128x1, 64x1, 32x1; 51 each), each max-pooled over frequency -> 561 x T -> three 1-D convs
(7, 64 filters; dense/residual) -> max and mean over time -> BN, dense 200, ReLU, BN: the
"penultimate" layer, the 200-d embedding we serve. The 50 tag logits are exported too.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from inference import embedding as E

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
CHECKPOINT_NAME = "MSD_musicnn"
BN_EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default
N_TAGS = 50
TEMPORAL_LENGTHS = (128, 64, 32)  # frames
KERNEL_FRAMES = 7
PARITY_TOLERANCE = 1e-4
ONNX_OPSET = 17
OUTPUTS = ("embedding", "tags")


# ---------------------------------------------------------------- step 1: TensorFlow side


def dump(out: Path, clips: list[Path]) -> None:
    """Checkpoint -> arrays, and musicnn's TF answers on `clips` as the reference (TF venv only)."""
    import os

    import musicnn
    import tensorflow as tf
    from musicnn import models

    from inference.audio import load_audio, select_section

    tf.compat.v1.disable_eager_execution()
    checkpoint = os.path.join(os.path.dirname(musicnn.__file__), CHECKPOINT_NAME) + "/"
    reader = tf.compat.v1.train.NewCheckpointReader(checkpoint)
    arrays = {
        f"w/{name}": reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if "Adam" not in name and "power" not in name
    }
    patches = np.concatenate([
        E.log_mel_patches(E.to_embedding_rate(select_section(load_audio(path))), E.ALL_PATCHES)
        for path in clips
    ])
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, E.PATCH_FRAMES, E.N_MELS])
        training = tf.compat.v1.placeholder(tf.bool)
        logits, *_, penultimate = models.define_model(x, training, CHECKPOINT_NAME, N_TAGS)
    with tf.compat.v1.Session() as session:
        tf.compat.v1.train.Saver().restore(session, checkpoint)
        tags, embedding = session.run([logits, penultimate], {x: patches, training: False})
    np.savez(out, **arrays, **{"ref/patches": patches, "ref/tags": tags, "ref/embedding": embedding})
    print(f"wrote {len(arrays)} arrays and {len(patches)} reference patches to {out}")


# ---------------------------------------------------------------- step 2: torch side


def build_torch(arrays: dict[str, np.ndarray]):
    """musicnn's graph in torch, loaded with the checkpoint's arrays, in eval mode."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    def bn(name: str) -> nn.BatchNorm1d:
        gamma = arrays[f"w/{name}/gamma"]
        layer = nn.BatchNorm1d(gamma.size, eps=BN_EPSILON)
        layer.weight.data = torch.from_numpy(gamma)
        layer.bias.data = torch.from_numpy(arrays[f"w/{name}/beta"])
        layer.running_mean.data = torch.from_numpy(arrays[f"w/{name}/moving_mean"])
        layer.running_var.data = torch.from_numpy(arrays[f"w/{name}/moving_variance"])
        return layer

    def conv2d(name: str) -> nn.Conv2d:
        kernel = arrays[f"w/{name}/kernel"]  # TF: (kh, kw, in, out)
        layer = nn.Conv2d(kernel.shape[2], kernel.shape[3], kernel.shape[:2])
        layer.weight.data = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
        layer.bias.data = torch.from_numpy(arrays[f"w/{name}/bias"])
        return layer

    def conv1d(name: str) -> nn.Conv1d:
        # TF applies these as 2-D convs whose kernel spans the whole feature axis: a 1-D conv over time.
        kernel = arrays[f"w/{name}/kernel"][:, :, 0, :]  # (k, in, out)
        layer = nn.Conv1d(kernel.shape[1], kernel.shape[2], kernel.shape[0])
        layer.weight.data = torch.from_numpy(kernel.transpose(2, 1, 0).copy())
        layer.bias.data = torch.from_numpy(arrays[f"w/{name}/bias"])
        return layer

    def dense(name: str) -> nn.Linear:
        kernel = arrays[f"w/{name}/kernel"]
        layer = nn.Linear(*kernel.shape)
        layer.weight.data = torch.from_numpy(kernel.T.copy())
        layer.bias.data = torch.from_numpy(arrays[f"w/{name}/bias"])
        return layer

    def same_time_padding(length: int) -> tuple[int, int, int, int]:
        # TF "same" with an even kernel pads one more frame after than before.
        before = (length - 1) // 2
        return (0, 0, before, length - 1 - before)

    class Musicnn(nn.Module):
        """(P, PATCH_FRAMES, N_MELS) log-mel patches -> (P, 200) embedding, (P, 50) tag logits."""

        def __init__(self) -> None:
            super().__init__()
            self.input_bn = bn("batch_normalization")
            self.timbral = nn.ModuleList([conv2d("conv2d"), conv2d("conv2d_1")])
            self.timbral_bn = nn.ModuleList([bn("batch_normalization_1"), bn("batch_normalization_2")])
            self.temporal = nn.ModuleList([conv2d(f"conv2d_{i}") for i in (2, 3, 4)])
            self.temporal_bn = nn.ModuleList([bn(f"batch_normalization_{i}") for i in (3, 4, 5)])
            self.midend = nn.ModuleList([conv1d(f"conv2d_{i}") for i in (5, 6, 7)])
            self.midend_bn = nn.ModuleList([bn(f"batch_normalization_{i}") for i in (6, 7, 8)])
            self.pool_bn = bn("batch_normalization_9")
            self.dense = dense("dense")
            self.dense_bn = bn("batch_normalization_10")
            self.tags = dense("dense_1")

        def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = patches.unsqueeze(1)  # (P, 1, T, F)
            x = _bn2d(self.input_bn, x)
            front = []
            padded = F.pad(x, (0, 0, KERNEL_FRAMES // 2, KERNEL_FRAMES // 2))
            for conv, norm in zip(self.timbral, self.timbral_bn):
                front.append(_pooled_bn(norm, conv(padded)))  # (P, C, T)
            for conv, norm, length in zip(self.temporal, self.temporal_bn, TEMPORAL_LENGTHS):
                front.append(_pooled_bn(norm, conv(F.pad(x, same_time_padding(length)))))
            front = torch.cat(front, dim=1)  # (P, 561, T)
            layers = [front]
            h = None
            for i, (conv, norm) in enumerate(zip(self.midend, self.midend_bn)):
                source = front if i == 0 else h
                y = norm(F.relu(conv(F.pad(source, (KERNEL_FRAMES // 2, KERNEL_FRAMES // 2)))))
                h = y if i == 0 else y + h
                layers.append(h)
            features = torch.cat(layers, dim=1)  # (P, 753, T)
            # TF concatenates [max, mean] on a last axis, then flattens: features interleave.
            pooled = torch.stack([features.amax(dim=2), features.mean(dim=2)], dim=2).flatten(1)
            embedding = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
            return embedding, self.tags(embedding)

    def _pooled_bn(norm: nn.BatchNorm1d, z: torch.Tensor) -> torch.Tensor:
        """max over frequency of BN(ReLU(z)), (P, C, T, F) -> (P, C, T), computed after the pooling.

        TF normalises every (t, f) cell, then pools. BN is a per-channel affine a x + b, so the max of
        it is a max(x) + b where a >= 0 and a min(x) + b where a < 0 (most of musicnn's gammas are
        negative), and ReLU commutes with both: the same numbers, with the affine on 59-96x fewer
        cells and the ReLU fused into the conv by onnxruntime (~10 % less time for the graph, measured).
        """
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        shift = norm.bias - norm.running_mean * scale
        extreme = torch.where((scale >= 0).view(1, -1, 1), z.amax(dim=3), z.amin(dim=3))
        return F.relu(extreme) * scale.view(1, -1, 1) + shift.view(1, -1, 1)

    def _bn2d(norm: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
        """A BatchNorm1d's statistics applied to (P, C, T, F) per channel C."""
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        shift = norm.bias - norm.running_mean * scale
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)

    return Musicnn().eval()


def export(dump_path: Path, target: Path) -> dict:
    import onnxruntime as ort
    import torch

    with np.load(dump_path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    model = build_torch(arrays)
    patches = torch.from_numpy(arrays["ref/patches"].astype(np.float32))
    with torch.no_grad():
        embedding, tags = model(patches)
    tf_diff = max(float(np.abs(embedding.numpy() - arrays["ref/embedding"]).max()),
                  float(np.abs(tags.numpy() - arrays["ref/tags"]).max()))
    print(f"torch vs TF on {len(patches)} patches: max abs diff {tf_diff:.2e}")
    if tf_diff > PARITY_TOLERANCE:
        raise SystemExit(f"the torch port differs from TF by {tf_diff:.2e} > {PARITY_TOLERANCE}")
    torch.onnx.export(
        model, (patches[:2],), str(target), input_names=[E.INPUT_NAME], output_names=list(OUTPUTS),
        dynamic_axes={E.INPUT_NAME: {0: "patches"}, **{name: {0: "patches"} for name in OUTPUTS}},
        opset_version=ONNX_OPSET, dynamo=False,
    )
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    onnx_embedding, onnx_tags = session.run(list(OUTPUTS), {E.INPUT_NAME: patches.numpy()})
    onnx_diff = max(float(np.abs(onnx_embedding - embedding.numpy()).max()),
                    float(np.abs(onnx_tags - tags.numpy()).max()))
    print(f"onnxruntime vs torch: max abs diff {onnx_diff:.2e}; {target.stat().st_size / 1e6:.1f} MB")
    if onnx_diff > PARITY_TOLERANCE:
        raise SystemExit(f"the ONNX graph differs from torch by {onnx_diff:.2e} > {PARITY_TOLERANCE}")
    return {"torch_vs_tf": tf_diff, "onnx_vs_torch": onnx_diff, "patches": len(patches),
            "parameters": sum(p.numel() for p in model.parameters())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.convert_musicnn", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dump_parser = commands.add_parser("dump", help="TF venv: checkpoint and reference answers -> npz")
    dump_parser.add_argument("--out", type=Path, required=True)
    dump_parser.add_argument("--clips", type=Path, nargs="+", required=True)
    export_parser = commands.add_parser("export", help="project venv: npz -> torch -> weights/musicnn.onnx")
    export_parser.add_argument("--dump", type=Path, required=True)
    export_parser.add_argument("--target", type=Path, default=WEIGHTS_DIR / E.WEIGHTS)
    args = parser.parse_args(argv)
    if args.command == "dump":
        dump(args.out, args.clips)
    else:
        print(json.dumps(export(args.dump, args.target), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
