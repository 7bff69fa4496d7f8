"""Charts as PNG bytes (matplotlib, Agg). Pure and synchronous: callers run them off the event loop
with `asyncio.to_thread`. Each chart builds its own `Figure` (no pyplot global state), so several
can render in threads at once.
"""
from __future__ import annotations

import io
import threading
from datetime import date, timedelta
from functools import lru_cache
from typing import Iterable, Sequence

from inference.result import MOODS

# One palette everywhere: the same mood always has the same colour.
MOOD_COLOURS: dict[str, str] = {
    "happy": "#F2B705",  # warm yellow
    "energetic": "#E4572E",  # tense red-orange
    "sad": "#3F6FB5",  # blue
    "calm": "#4DA167",  # green
}
EMPTY_COLOUR = "#ECEFF1"
TEXT_COLOUR = "#263238"
GRID_COLOUR = "#CFD8DC"
DPI = 110
LIMIT = 1.22  # axis limit of the valence/arousal map
MIN_WEEKS = 8  # the weekly chart always spans at least two months…
MAX_WEEKS = 16  # …and at most four, so the bars stay readable
MIN_Y_TOP = 3
FONT_SIZE = 10
MAP_LABELS = 12  # songs named on the valence/arousal map: more would be unreadable
LABEL_CHARS = 24


_IMPORT_LOCK = threading.Lock()


def _load_matplotlib() -> None:
    """Imported on first use so start-up does not pay for matplotlib; under a lock because charts
    render in several threads at once and a concurrent first import of matplotlib breaks."""
    with _IMPORT_LOCK:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401
        import matplotlib.patches  # noqa: F401


def _figure(width: float, height: float):
    _load_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, facecolor="white")


def _style(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(GRID_COLOUR)
    ax.tick_params(colors=TEXT_COLOUR, labelsize=FONT_SIZE - 1)
    ax.title.set_color(TEXT_COLOUR)


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor=fig.get_facecolor(), bbox_inches="tight")
    return buf.getvalue()


def _legend(ax, **kwargs) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=MOOD_COLOURS[m], label=m) for m in MOODS]
    ax.legend(handles=handles, frameon=False, fontsize=FONT_SIZE - 1, **kwargs)


def continuous_weeks(periods: Sequence[tuple[str, dict[str, int]]], min_weeks: int = MIN_WEEKS,
                     until: date | None = None) -> list[tuple[str, dict[str, int]]]:
    """ISO weeks ("2026-W47") from the first to the last (or to the week of `until`, today: months
    without an entry show as such), the silent ones as empty bars, and at least `min_weeks` of
    them: a time axis with gaps or a single fat bar would misread."""
    known = dict(periods)
    try:
        starts = [date.fromisocalendar(int(p[:4]), int(p[6:]), 1) for p in known]
    except ValueError:
        return list(periods)  # not ISO weeks: draw them as given
    if not starts:
        return []
    last = max(starts)
    if until is not None:
        last = max(last, until - timedelta(days=until.weekday()))
    first = min(min(starts), last - timedelta(weeks=min_weeks - 1))
    weeks = []
    day = first
    while day <= last:
        year, week, _ = day.isocalendar()
        label = f"{year}-W{week:02d}"
        weeks.append((label, known.get(label, known.get(f"{year}-W{week}", {}))))
        day += timedelta(weeks=1)
    return weeks[-MAX_WEEKS:]


def week_tick_labels(labels: Sequence[str]) -> list[str]:
    """The x axis's week labels: "2026-W38" reads "W38", its year under it only on the first bar
    and where a new year starts (sixteen "2026"s side by side run together into one line)."""
    ticks, shown_year = [], None
    for label in labels:
        year, sep, week = label.partition("-W")
        if not sep:
            ticks.append(label)
            continue
        ticks.append(f"W{week}" if year == shown_year else f"W{week}\n{year}")
        shown_year = year
    return ticks


def mood_over_time(periods: Sequence[tuple[str, dict[str, int]]], title: str = "Your moods, week by week",
                   until: date | None = None) -> bytes:
    """Stacked bars: one bar per period ("2026-W47"), one segment per mood, up to the week of `until`."""
    periods = continuous_weeks(periods, until=until)
    fig = _figure(7.5, 3.6)
    ax = fig.add_subplot()
    labels = [p for p, _ in periods]
    x = range(len(labels))
    bottom = [0] * len(labels)
    for mood in MOODS:
        heights = [counts.get(mood, 0) for _, counts in periods]
        ax.bar(x, heights, bottom=bottom, color=MOOD_COLOURS[mood], width=0.72, label=mood, edgecolor="white", linewidth=0.6)
        bottom = [b + h for b, h in zip(bottom, heights)]
    ax.set_xticks(list(x), week_tick_labels(labels))
    ax.set_ylim(0, max(bottom + [MIN_Y_TOP]) * 1.12)
    ax.set_ylabel("songs", color=TEXT_COLOUR, fontsize=FONT_SIZE)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.grid(axis="y", color=GRID_COLOUR, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title, loc="left", fontsize=FONT_SIZE + 2, fontweight="bold")
    _style(ax)
    _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


def year_in_pixels(days: dict[date, str], year: int, title: str | None = None) -> bytes:
    """A calendar of the year: one square per day, coloured by that day's journal mood."""
    fig = _figure(10.5, 2.6)
    from matplotlib.patches import Rectangle  # after _figure: it loads matplotlib under the lock

    ax = fig.add_subplot()
    first = date(year, 1, 1)
    offset = first.weekday()  # column 0 starts on the Monday of the week holding Jan 1st
    day = first
    while day.year == year:
        index = (day - first).days + offset
        col, row = divmod(index, 7)
        colour = MOOD_COLOURS.get(days.get(day, ""), EMPTY_COLOUR)
        ax.add_patch(Rectangle((col, 6 - row), 0.86, 0.86, color=colour, linewidth=0))
        day += timedelta(days=1)
    weeks = (date(year, 12, 31) - first).days // 7 + 2
    ax.set_xlim(-0.3, weeks)
    ax.set_ylim(-0.3, 7.2)
    ax.set_aspect("equal")
    month_starts = [date(year, m, 1) for m in range(1, 13)]
    ax.set_xticks([((d - first).days + offset) // 7 + 0.43 for d in month_starts], [d.strftime("%b") for d in month_starts])
    ax.set_yticks([6.43, 4.43, 2.43, 0.43], ["Mon", "Wed", "Fri", "Sun"])
    ax.tick_params(length=0, colors=TEXT_COLOUR, labelsize=FONT_SIZE - 1)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title or f"{year} in pixels — one square a day", loc="left", fontsize=FONT_SIZE + 2, fontweight="bold", color=TEXT_COLOUR)
    _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


@lru_cache(maxsize=1)
def _font_code_points() -> frozenset[int]:
    """The characters the charts' font can draw (DejaVu Sans: no emoji, no CJK)."""
    _load_matplotlib()
    from matplotlib.font_manager import FontProperties, findfont
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(findfont(FontProperties())).get_charmap())


def drawable(text: str) -> str:
    """`text` without the characters the font lacks (matplotlib draws each as an empty box), and
    without the separators those leave dangling: "🎶 Fuego" -> "Fuego", "아이유 – 좋은 날" -> ""."""
    known = _font_code_points()
    kept = "".join(c if ord(c) in known else " " for c in text)
    return " ".join(kept.split()).strip(" -–—·,;:/|")


def map_labels(songs: Sequence[tuple[str, float, float, str]],
               limit: int = MAP_LABELS) -> list[tuple[str, float, float]]:
    """The names drawn on the map, newest first: the latest `limit` different songs (`songs` come
    oldest first), each at its latest dot, in the glyphs the font has, shortened."""
    labels: dict[str, tuple[str, float, float]] = {}
    for name, valence, arousal, _ in reversed(songs):
        shown = drawable(name)
        if shown and shown not in labels:
            short = shown if len(shown) <= LABEL_CHARS else shown[:LABEL_CHARS - 1] + "…"
            labels[shown] = (short, valence, arousal)
            if len(labels) == limit:
                break
    return list(labels.values())


def valence_arousal_map(songs: Iterable[tuple[str, float, float, str]], title: str = "Your songs on the mood map") -> bytes:
    """Each song (oldest first) as a dot at (valence, arousal), coloured by mood; the four
    quadrants labelled, and the newest songs named."""
    songs = list(songs)
    fig = _figure(6.0, 6.0)
    ax = fig.add_subplot()
    ax.axhline(0, color=GRID_COLOUR, linewidth=1, zorder=1)
    ax.axvline(0, color=GRID_COLOUR, linewidth=1, zorder=1)
    # Songs live inside [-1, 1]; the quadrant names sit in the margin beyond it, never over a dot.
    corners = {"happy": (LIMIT, LIMIT, "right", "top"), "energetic": (-LIMIT, LIMIT, "left", "top"),
               "sad": (-LIMIT, -LIMIT, "left", "bottom"), "calm": (LIMIT, -LIMIT, "right", "bottom")}
    for mood, (x, y, ha, va) in corners.items():
        sx, sy = (1 if x > 0 else -1), (1 if y > 0 else -1)
        ax.fill_between([0, sx * LIMIT], 0, sy * LIMIT, color=MOOD_COLOURS[mood], alpha=0.06, linewidth=0, zorder=0)
        ax.text(x - sx * 0.03, y - sy * 0.03, mood, ha=ha, va=va, color=MOOD_COLOURS[mood],
                fontsize=FONT_SIZE + 3, fontweight="bold")
    for mood in MOODS:
        points = [(v, a) for _, v, a, m in songs if m == mood]
        if points:
            xs, ys = zip(*points)
            ax.scatter(xs, ys, s=70, color=MOOD_COLOURS[mood], edgecolor="white", linewidth=0.8, alpha=0.9, zorder=3)
    for short, v, a in map_labels(songs):
        # parse_math=False: a "$" in a title is a dollar sign, not TeX (which may not even parse).
        ax.annotate(short, (v, a), xytext=(5, 4), textcoords="offset points", fontsize=FONT_SIZE - 2, color=TEXT_COLOUR,
                    parse_math=False)
    ax.set_xlim(-LIMIT, LIMIT)
    ax.set_ylim(-LIMIT, LIMIT)
    ax.set_xticks([-1, -0.5, 0, 0.5, 1])
    ax.set_yticks([-1, -0.5, 0, 0.5, 1])
    ax.set_aspect("equal")
    ax.set_xlabel("valence  (negative → positive)", color=TEXT_COLOUR, fontsize=FONT_SIZE)
    ax.set_ylabel("arousal  (low energy → high energy)", color=TEXT_COLOUR, fontsize=FONT_SIZE)
    ax.set_title(title, loc="left", fontsize=FONT_SIZE + 2, fontweight="bold")
    _style(ax)
    return _png(fig)


def server_mood_of_week(counts: dict[str, int], title: str = "This server's mood of the week") -> bytes:
    """Horizontal bars of songs per mood over the last 7 days, the winner highlighted."""
    fig = _figure(6.5, 3.0)
    ax = fig.add_subplot()
    values = [counts.get(m, 0) for m in MOODS]
    top = max(values) if any(values) else None
    bars = ax.barh(list(MOODS)[::-1], values[::-1], color=[MOOD_COLOURS[m] for m in MOODS][::-1], height=0.62)
    for bar, value in zip(bars, values[::-1]):
        bar.set_alpha(1.0 if value == top else 0.55)
        ax.text(bar.get_width() + max(values + [1]) * 0.02, bar.get_y() + bar.get_height() / 2, str(value),
                va="center", color=TEXT_COLOUR, fontsize=FONT_SIZE, fontweight="bold" if value == top else "normal")
    ax.set_xlim(0, max(values + [1]) * 1.15)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("songs in the last 7 days", color=TEXT_COLOUR, fontsize=FONT_SIZE)
    ax.set_title(title, loc="left", fontsize=FONT_SIZE + 2, fontweight="bold")
    _style(ax)
    return _png(fig)
