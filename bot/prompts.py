"""The phrase bank of daily journal prompts, and how one is picked for a user."""
from __future__ import annotations

import random
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterable

PHRASES_FILE = Path(__file__).with_name("prompts.txt")
# A phrase is not sent again to the same user within this many days.
NO_REPEAT_DAYS = 30
# A phrase about a later moment of the day ("[evening] Cooking tonight, …") waits for it: it is sent
# from that hour on, where the user lives, and in the night after, until NIGHT_ENDS. A morning prompt
# was asked "Doing the dishes tonight, I was humming…" at 8 am.
PARTS_OF_DAY = {"afternoon": 12, "evening": 17}
NIGHT_ENDS = 4
PART_TAG = re.compile(r"^\[(\w+)\]\s*")


@lru_cache(maxsize=1)
def timed_bank(path: Path = PHRASES_FILE) -> tuple[tuple[str, int], ...]:
    """Each phrase of the bank, once, with the local hour from which it is sent (0: any)."""
    phrases: dict[str, int] = {}
    for line in (line.strip() for line in path.read_text(encoding="utf-8").splitlines()):
        if not line or line.startswith("#"):
            continue
        tag = PART_TAG.match(line)
        if tag is not None and tag.group(1) not in PARTS_OF_DAY:
            raise ValueError(f"{path}: unknown part of the day [{tag.group(1)}] (known: {', '.join(PARTS_OF_DAY)})")
        phrases.setdefault(line[tag.end():] if tag else line, PARTS_OF_DAY[tag.group(1)] if tag else 0)
    return tuple(phrases.items())


def phrase_bank(path: Path = PHRASES_FILE) -> tuple[str, ...]:
    return tuple(phrase for phrase, _ in timed_bank(path))


def fits_the_hour(from_hour: int, hour: int | None) -> bool:
    """Whether a phrase sent from `from_hour` on may be sent at the local `hour` (None: any)."""
    return hour is None or hour >= from_hour or hour < NIGHT_ENDS


def pick_phrase(recent: Iterable[str], bank: tuple[str, ...] | None = None, rng: random.Random | None = None, *,
                hour: int | None = None) -> str:
    """A random phrase the user has not seen recently, about a moment that has come by the local
    `hour` the prompt is sent at (None: any). If every such phrase was used (a bank smaller than the
    window), any of them will do rather than no prompt at all, or one about a later moment."""
    bank = bank or phrase_bank()
    from_hour = dict(timed_bank())
    timely = [p for p in bank if fits_the_hour(from_hour.get(p, 0), hour)] or list(bank)
    seen = set(recent)
    fresh = [p for p in timely if p not in seen]
    return (rng or random).choice(fresh or timely)
