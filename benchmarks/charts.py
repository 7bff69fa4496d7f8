"""/stats chart rendering for a heavy journal: 700 entries over two years, no database.

    .venv/bin/python -m benchmarks.charts [--runs 9]

Builds the history in memory as the storage layer hands it to the charts (ISO-week mood counts,
this year's day moods, the songs oldest first) and renders the three /stats charts. The
reference is `bot/charts.py` as of REFERENCE (a year in pixels of 366 Rectangle patches, stacked
bars of one patch per mood and week, savefig's two-pass tight crop), loaded from git and timed in
the same run, interleaved with the current code. Prints one table of medians with the ratio of
current to reference; the last row renders the three in threads at once, as /stats does.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import inspect
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import Callable

from bot import charts

REFERENCE = "80557dd32b17c1118bef132aa6621759479d6624"  # the last bot/charts.py before the fast charts
ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 24)
ENTRIES = 700
SEED = 7
MOODS = ("happy", "energetic", "sad", "calm")
QUADRANT = {"happy": (1, 1), "energetic": (-1, 1), "sad": (-1, -1), "calm": (1, -1)}
TITLES = ("Radiohead – Creep", "Pharrell Williams – Happy", "Sigur Rós – Hoppípolla", "🎶 Fuego 🔥",
          "아이유 – 좋은 날", "Fairuz – أعطني الناي", "Ke$ha – Tik Tok", "Massive Attack – Teardrop")


Weekly = list[tuple[str, dict[str, int]]]
Songs = list[tuple[str, float, float, str]]


def history(rng: random.Random) -> tuple[Weekly, dict[date, str], Songs]:
    """ENTRIES answers, newest today: most days one, a few days two, some days none."""
    entries: list[tuple[date, str, str, float, float]] = []
    day = TODAY
    while len(entries) < ENTRIES:
        if rng.random() >= 0.1:  # one evening in ten without an answer
            for _ in range(2 if rng.random() < 0.05 else 1):
                mood = rng.choice(MOODS)
                sx, sy = QUADRANT[mood]
                title = (rng.choice(TITLES) if rng.random() < 0.2
                         else f"Artist {rng.randrange(90)} – Song {rng.randrange(400)}")
                entries.append((day, mood, title, sx * rng.uniform(0.05, 0.95), sy * rng.uniform(0.05, 0.95)))
        day -= timedelta(days=1)
    entries.reverse()  # oldest first, as storage hands the songs over
    weeks: dict[str, Counter] = {}
    for day, mood, *_ in entries:
        year, week, _ = day.isocalendar()
        weeks.setdefault(f"{year}-W{week:02d}", Counter())[mood] += 1
    weekly = [(period, dict(counts)) for period, counts in sorted(weeks.items())]
    days = {day: mood for day, mood, *_ in entries if day.year == TODAY.year}  # a day's latest answer
    songs = [(title, valence, arousal, mood) for _, mood, title, valence, arousal in entries]
    return weekly, days, songs


def reference_charts() -> ModuleType | None:
    """bot/charts.py as of REFERENCE, or None without git or that commit."""
    try:
        source = subprocess.run(["git", "show", f"{REFERENCE}:bot/charts.py"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    spec = importlib.util.spec_from_loader("charts_reference", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    exec(compile(source, f"{REFERENCE[:7]}:bot/charts.py", "exec"), module.__dict__)
    return module


def cases(module: ModuleType, weekly, days, songs) -> dict[str, Callable[[], object]]:
    # /stats rings today and outlines the days to come; the reference knew no today.
    today = {"today": TODAY} if "today" in inspect.signature(module.year_in_pixels).parameters else {}

    def weekly_chart():
        return module.mood_over_time(weekly, until=TODAY)

    def pixels_chart():
        return module.year_in_pixels(days, TODAY.year, **today)

    def map_chart():
        return module.valence_arousal_map(songs)

    async def in_threads():
        return await asyncio.gather(*(asyncio.to_thread(chart) for chart in (weekly_chart, pixels_chart, map_chart)))

    def one_after_another():
        return weekly_chart(), pixels_chart(), map_chart()

    return {"moods by week": weekly_chart, "year in pixels": pixels_chart, "mood map": map_chart,
            "total: all three, one after another": one_after_another,
            "all three in threads, as /stats runs them": lambda: asyncio.run(in_threads())}


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    weekly, days, songs = history(random.Random(SEED))
    reference = reference_charts()
    variants = {"now": cases(charts, weekly, days, songs)}
    if reference is not None:
        variants["reference"] = cases(reference, weekly, days, songs)
    samples: dict[tuple[str, str], list[float]] = {}
    for variant in variants.values():  # warm-up: imports, fonts, caches
        for action in variant.values():
            action()
    for _ in range(args.runs):  # interleaved, so a busy moment weighs on both alike
        for name, variant in variants.items():
            for case, action in variant.items():
                samples.setdefault((name, case), []).append(timed(action))
    print(f"{len(songs)} entries in weeks {weekly[0][0]} to {weekly[-1][0]}, {len(days)} days of {TODAY.year} "
          f"coloured; median of {args.runs} runs"
          + ("" if reference is not None else f"; no reference (git show {REFERENCE[:7]} failed)"))
    width = max(len(case) for case in variants["now"])
    print(f"| {'chart':<{width}} | {'reference ms':>12} | {'now ms':>8} | {'now / ref':>9} |")
    print(f"|{'-' * (width + 2)}|{'-' * 14}|{'-' * 10}|{'-' * 11}|")
    for case in variants["now"]:
        now = statistics.median(samples[("now", case)])
        if reference is None:
            print(f"| {case:<{width}} | {'':>12} | {now:>8.1f} | {'':>9} |")
            continue
        ref = statistics.median(samples[("reference", case)])
        print(f"| {case:<{width}} | {ref:>12.1f} | {now:>8.1f} | {now / ref:>9.2f} |")


if __name__ == "__main__":
    main()
