"""Argument types for the command lines: a wrong number is an argparse error (exit 2, one line)."""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable


def at_least(minimum: float, kind: Callable[[str], float] = int) -> Callable[[str], float]:
    """An argparse `type` that accepts numbers of `kind` no smaller than `minimum`."""

    # "2.5" is a number: for a count, say what it is not.
    what = "a whole number" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {text}")
        return value

    return parse


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):  # no timeout at all: a hung decoder would hold its worker for ever
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, not {text}")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def existing_folder(text: str) -> Path:
    """An argparse `type` for a folder read from: a typo is named as such, before any work starts."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no folder at {text}")
    return path


SEED_MAX = 2**32 - 1  # the largest seed numpy's RandomState, under sklearn's splitters, accepts


def random_seed(text: str) -> int:
    """An argparse `type` for a random seed: a whole number from 0 to SEED_MAX."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be from 0 to {SEED_MAX}, not {text}")
    return value
