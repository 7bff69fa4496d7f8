"""The phrase bank of daily journal prompts, and how one is picked for a user."""
from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path
from typing import Iterable

PHRASES_FILE = Path(__file__).with_name("prompts.txt")
# A phrase is not sent again to the same user within this many days.
NO_REPEAT_DAYS = 30


@lru_cache(maxsize=1)
def phrase_bank(path: Path = PHRASES_FILE) -> tuple[str, ...]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return tuple(dict.fromkeys(line for line in lines if line and not line.startswith("#")))


def pick_phrase(recent: Iterable[str], bank: tuple[str, ...] | None = None, rng: random.Random | None = None) -> str:
    """A random phrase the user has not seen recently. If every phrase was used (a bank smaller than
    the window), any phrase will do rather than no prompt at all."""
    bank = bank or phrase_bank()
    seen = set(recent)
    fresh = [p for p in bank if p not in seen]
    return (rng or random).choice(fresh or list(bank))
