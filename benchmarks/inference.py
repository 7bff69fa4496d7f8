"""Where the time goes from an audio file to a mood, and how far the main model is from its floor.

    .venv/bin/python benchmarks/inference.py [--weights DIR] [--clips 5] [--repeats 3]

Prints one table of medians over real 30 s clips of the 4Q dataset; the stages run with a worker's
BLAS threads. Ratios are to references
measured in the same run: each stage as a share of the end-to-end time through the warm pool, and
the main model against its FLOP floor = model FLOPs (conv/linear/LSTM multiply-adds x 2, counted
from the ONNX graph) / fp32 matmul throughput (numpy, 2048 x 2048) at the same thread count.
Two start-up rows: a worker (re)start, forked from the fork server an earlier pool started (what a
crashed or stuck worker's replacement costs), and a process's first pool, fork server included
(what the bot pays once at start).
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference.audio import load_audio, log_mel, select_section, split_segments  # noqa: E402
from inference.embedding import SERVED_PATCHES, Embedder  # noqa: E402
from inference.embedding import WEIGHTS as EMBEDDING_WEIGHTS  # noqa: E402
from inference.features import handcrafted_features  # noqa: E402
from inference.pool import BLAS_THREADS, DEFAULT_WEIGHTS_DIR, Classifier, _ProcessBackend  # noqa: E402
from inference.predict import MAIN_WEIGHTS, AnnModel, MainModel  # noqa: E402

SHARED_DATA = REPO.parent / "shared" / "data" / "4q"
MATMUL_N = 2048
MATMUL_REPEATS = 5
COLD_START_REPEATS = 3
THREAD_COUNTS = (1, 2)


def median_seconds(run, inputs, repeats: int) -> float:
    times = []
    for item in inputs:
        for _ in range(repeats):
            started = time.perf_counter()
            run(item)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


# --- FLOPs of the ONNX graph ---------------------------------------------------------------------

COUNTED_OPS = ("Conv", "Gemm", "MatMul", "LSTM", "GRU")


def count_flops(onnx_path: Path) -> float:
    """FLOPs of one forward pass at batch 1: 2 x multiply-adds of Conv, Gemm, MatMul, LSTM, GRU.

    Shapes come from running the graph once on zeros with every counted node's inputs and outputs
    exposed: ONNX's static shape inference cannot follow graphs that compute their own padding."""
    import onnx  # here: the pool's fork server imports this script, and onnx is no worker's business
    import onnxruntime as ort

    model = onnx.load(str(onnx_path))
    counted = [node for node in model.graph.node if node.op_type in COUNTED_OPS]
    known = {init.name: list(init.dims) for init in model.graph.initializer}
    graph_inputs = {value.name for value in model.graph.input}
    probe = sorted({name for node in counted for name in (*node.input, *node.output)
                    if name and name not in known and name not in graph_inputs}
                   - {value.name for value in model.graph.output})
    for name in probe:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {}
    for value in session.get_inputs():  # batch 1: a symbolic dimension becomes 1
        feeds[value.name] = np.zeros([d if isinstance(d, int) else 1 for d in value.shape], dtype=np.float32)
    names = [o.name for o in session.get_outputs()]
    shapes = dict(known)
    shapes.update({name: list(array.shape) for name, array in zip(names, session.run(names, feeds))})
    shapes.update({name: list(array.shape) for name, array in feeds.items()})
    return 2.0 * sum(_node_macs(node, shapes) for node in counted)


def _node_macs(node, shapes: dict[str, list[int]]) -> int:
    import onnx

    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Conv":
        out, weight = shapes[node.output[0]], shapes[node.input[1]]
        return int(np.prod(out)) * int(np.prod(weight[1:]))  # per output: Cin/groups x kh x kw
    if node.op_type == "Gemm":
        out, b = shapes[node.output[0]], shapes[node.input[1]]
        inner = b[1] if attrs.get("transB", 0) else b[0]
        return int(np.prod(out)) * inner
    if node.op_type == "MatMul":
        out, a = shapes[node.output[0]], shapes[node.input[0]]
        return int(np.prod(out)) * a[-1]
    if node.op_type in ("LSTM", "GRU"):
        x, w, r = shapes[node.input[0]], shapes[node.input[1]], shapes[node.input[2]]
        seq, batch = (x[1], x[0]) if attrs.get("layout", 0) else (x[0], x[1])
        directions, gates_x_hidden, inputs = w
        hidden = r[2]
        return seq * batch * directions * gates_x_hidden * (inputs + hidden)
    return 0


def matmul_flops_per_second(threads: int) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((MATMUL_N, MATMUL_N), dtype=np.float32)
    b = rng.standard_normal((MATMUL_N, MATMUL_N), dtype=np.float32)
    with threadpool_limits(limits=threads):
        a @ b  # warm
        seconds = median_seconds(lambda _: a @ b, [None], MATMUL_REPEATS)
    return 2.0 * MATMUL_N**3 / seconds


# --- Stages --------------------------------------------------------------------------------------

def pick_clips(count: int) -> list[Path]:
    with open(SHARED_DATA / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    per_mood: dict[str, list[Path]] = {}
    for row in rows:
        per_mood.setdefault(row["mood"], []).append(SHARED_DATA / row["file"])
    ordered = [clip for group in zip(*per_mood.values()) for clip in group]  # alternate moods
    return ordered[:count]


async def end_to_end(weights: Path, clips: list[Path], repeats: int) -> float:
    async with Classifier(weights, workers=1) as classifier:
        times = []
        for clip in clips:
            for _ in range(repeats):
                result = await classifier.classify(clip)
                if result.model != "main":
                    raise SystemExit(f"the main model did not answer ({result.fallback_reason})")
                times.append(result.seconds)
    return statistics.median(times)


async def cold_start(weights: Path, threads: int) -> float:
    """Start one worker until its model is loaded and warmed (what a replaced pool costs): forked
    from this process's fork server, which an earlier pool has started."""
    times = []
    for _ in range(COLD_START_REPEATS):
        backend = _ProcessBackend(weights, workers=1, threads=threads)
        started = time.perf_counter()
        await backend.start()
        times.append(time.perf_counter() - started)
        await backend.close()
    return statistics.median(times)


FIRST_START_SCRIPT = """
import asyncio, sys, time
from pathlib import Path
from inference.pool import _ProcessBackend

async def first_start():
    backend = _ProcessBackend(Path(sys.argv[1]), workers=1, threads=int(sys.argv[2]))
    started = time.perf_counter()
    await backend.start()
    print(time.perf_counter() - started)
    await backend.close()

asyncio.run(first_start())
"""


def first_start(weights: Path, threads: int) -> float:
    """A process's first pool: its fork server starts and imports the libraries, then forks the
    worker (what the bot pays once at start). A fresh interpreter per repeat."""
    times = []
    for _ in range(COLD_START_REPEATS):
        done = subprocess.run(
            [sys.executable, "-c", FIRST_START_SCRIPT, str(weights), str(threads)],
            cwd=REPO, capture_output=True, text=True, check=True,
        )
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS_DIR)
    parser.add_argument("--clips", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    clips, repeats = pick_clips(args.clips), args.repeats

    audio = [load_audio(c) for c in clips]
    sections = [select_section(a) for a in audio]
    mels = [log_mel(split_segments(s))[np.newaxis] for s in sections]
    features = [handcrafted_features(s) for s in sections]
    ann = AnnModel.load(args.weights)
    rows: list[tuple[str, float, float | None]] = []  # (stage, seconds, floor seconds)

    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):  # as a worker runs them
        rows.append(("decode (file -> 22.05 kHz mono)", median_seconds(load_audio, clips, repeats), None))
        rows.append((
            "section + log-mel (3 x 64 x 214)",
            median_seconds(lambda a: log_mel(split_segments(select_section(a))), audio, repeats), None,
        ))
        rows.append(("hand-crafted features", median_seconds(handcrafted_features, sections, repeats), None))
    flops = count_flops(args.weights / MAIN_WEIGHTS)
    throughput = {threads: matmul_flops_per_second(threads) for threads in THREAD_COUNTS}
    for threads in THREAD_COUNTS:
        model = MainModel.load(args.weights, threads=threads)
        model.predict(mels[0])  # first run allocates
        rows.append((
            f"main model, onnxruntime {threads} thread(s)",
            median_seconds(model.predict, mels, repeats), flops / throughput[threads],
        ))
    embedder = Embedder.load(args.weights, threads=1)  # as a worker runs it
    embedder.embed(sections[0])  # first run allocates
    embedding_flops = count_flops(args.weights / EMBEDDING_WEIGHTS) * len(SERVED_PATCHES)
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        rows.append((f"musicnn embedding, {len(SERVED_PATCHES)} patch(es), 1 thread",
                     median_seconds(embedder.embed, sections, repeats), embedding_flops / throughput[1]))
        rows.append(("ANN (numpy MLP)", median_seconds(ann.predict, features, repeats * 10), None))
    e2e = asyncio.run(end_to_end(args.weights, clips, repeats))
    rows.append(("end-to-end file -> mood, warm pool", e2e, None))
    rows.append(("worker (re)start (fork -> model warm)", asyncio.run(cold_start(args.weights, 1)), None))
    rows.append(("first pool start (+ fork server)", first_start(args.weights, 1), None))

    print(f"clips: {len(clips)} x 30 s from {SHARED_DATA}, {repeats} repeats; weights: {args.weights}")
    print(f"cores usable: {len(os.sched_getaffinity(0))}; load average at end: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"musicnn: {embedding_flops / 1e9:.3f} GFLOP per song; "
          f"main model: {flops / 1e9:.3f} GFLOP per song (batch 1); fp32 matmul {MATMUL_N}^2: "
          + ", ".join(f"{t} thread(s) {throughput[t] / 1e9:.1f} GFLOP/s" for t in THREAD_COUNTS))
    print()
    print(f"| {'stage':<42} | {'median':>10} | {'share of e2e':>12} | {'floor':>9} | {'x floor':>7} |")
    print(f"|{'-' * 44}|{'-' * 12}|{'-' * 14}|{'-' * 11}|{'-' * 9}|")
    for stage, seconds, floor in rows:
        floor_text = f"{floor * 1e3:7.1f} ms" if floor else ""
        ratio_text = f"{seconds / floor:7.1f}" if floor else ""
        print(f"| {stage:<42} | {seconds * 1e3:7.2f} ms | {seconds / e2e:12.2f} | {floor_text:>9} | {ratio_text:>7} |")


if __name__ == "__main__":
    main()
