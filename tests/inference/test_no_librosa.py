"""Serving never imports librosa or numba: their imports cost ~1.5 s in every fresh process (the
fork server's included), and the features are computed in numpy (see test_features.py for parity).
"""
from __future__ import annotations

import subprocess
import sys

from inference.pool import WORKER_PRELOAD

HEAVY_UNUSED = ("librosa", "numba")
REAL_CLIP = "audio/MT0000011357.ogg"


def run_python(script: str) -> str:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_classifying_a_clip_with_both_models_imports_neither_librosa_nor_numba(shared_data):
    script = (
        "import sys\n"
        "from inference import predict\n"
        "from inference.pool import DEFAULT_WEIGHTS_DIR\n"
        f"path = {str(shared_data / REAL_CLIP)!r}\n"
        "main, _ = predict.classify_main(path, DEFAULT_WEIGHTS_DIR)\n"
        "ann, _ = predict.classify_ann(path, predict.cached_ann_model(str(DEFAULT_WEIGHTS_DIR)))\n"
        "assert abs(main.sum() - 1) < 1e-4 and abs(ann.sum() - 1) < 1e-4, (main, ann)\n"
        f"print(sorted(m for m in {HEAVY_UNUSED!r} if m in sys.modules))\n"
    )
    assert run_python(script) == "[]"


def test_the_fork_server_preloads_neither_librosa_nor_numba():
    """What the fork server imports before forking workers (all but the bot's own __main__)."""
    preloaded = [name for name in WORKER_PRELOAD if name != "__main__"]
    assert not [name for name in preloaded if name.split(".")[0] in HEAVY_UNUSED]
    script = (
        "import importlib, sys\n"
        f"for name in {preloaded!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in {HEAVY_UNUSED!r} if m in sys.modules))\n"
    )
    assert run_python(script) == "[]"
