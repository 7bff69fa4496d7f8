"""The arguments of `python -m inference train`, their defaults and their checks, without torch:
a wrong argument or `--help` is answered at once, not after torch's 4-5 s import (`inference.__main__`
parses them before it imports `inference.train`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from inference.cliargs import at_least, random_seed

DESCRIPTION = "Train the mood models on the 4Q clips and write the shipped weights."
REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "4q"
DEFAULT_OUT = REPO / "inference" / "weights"
DEFAULT_CACHE = REPO / "cache"
DEFAULT_LOG = REPO / "logs" / "train.log"
# The default of both seeds: --seed (the networks' initialisation, batch order, augmentation and
# dropout; CV fold k trains on seed + k) and --split-seed (the artist folds).
SEED = 20261124

# Main model: one epoch over 720 clips costs ~45 s on two idle CPU cores, ~3x more when the cores
# are shared. With the network's 2x2 input pooling (~13 s per epoch over 720 clips on idle cores),
# the shipped run (3 folds, 20 epochs) took 18 min; 11 epochs scored 0.48 macro-F1, 20 scored 0.54.
MAIN_EPOCHS = 20
MAIN_FOLDS = 3
ANN_FOLDS = 5  # the ANN trains in seconds: afford more folds for a steadier estimate
MAIN_BATCH = 16
ANN_EPOCHS = 300  # the ANN's most epochs (inference.train: its schedule)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m inference train", description=DESCRIPTION)
    parser.add_argument("--model", choices=("main", "ann", "both", "head", "all"), default="all",
                        help="both: the network and the ANN; head: the embedding head and the fusion "
                             "weights (needs a trained network and ANN in --out); all (default): the three")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"the 4Q dataset folder, with labels.csv and audio/ (default {DEFAULT_DATA})")
    parser.add_argument("--folds", type=at_least(2), default=None,
                        help=f"CV folds (default: ann {ANN_FOLDS}, main {MAIN_FOLDS})")
    parser.add_argument("--epochs", type=at_least(1), default=None,
                        help=f"main: epochs of the schedule (default {MAIN_EPOCHS}); ann: max epochs "
                             f"(default {ANN_EPOCHS})")
    parser.add_argument("--seed", type=random_seed, default=SEED,
                        help=f"seeds the networks' initialisation, batch order, augmentation and dropout "
                             f"(default {SEED})")
    parser.add_argument("--split-seed", type=random_seed, default=SEED,
                        help=f"seeds the artist folds of the cross-validation and the fusion; keep it while "
                             f"changing the seed to compare seeds on the same folds (default {SEED})")
    parser.add_argument("--batch-size", type=at_least(2), default=MAIN_BATCH,
                        help=f"main model batch (default {MAIN_BATCH})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"where the weights, cards and confusion matrices go, replaced only when the "
                             f"run has finished (default {DEFAULT_OUT}, the shipped weights)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                        help=f"spectrograms, features and embeddings computed once per clip "
                             f"(default {DEFAULT_CACHE})")
    parser.add_argument("--log-file", type=Path, default=DEFAULT_LOG,
                        help=f"appended to; the progress bars go to stderr only (default {DEFAULT_LOG})")
    parser.add_argument("--limit", type=at_least(1), default=None,
                        help="use only about this many clips, the same number per mood (limit // 4 each; tests)")
    parser.add_argument("--threads", type=at_least(1), default=2, help="torch threads for training (default 2)")
    parser.add_argument("--workers", type=at_least(1), default=2,
                        help="processes that build the cache (default 2)")
    return parser


def parse_args(argv: list[str] | None, parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    if not (args.data / "labels.csv").is_file():
        parser.error(f"--data {args.data}: no labels.csv there (the 4Q dataset folder is expected)")
    return args
