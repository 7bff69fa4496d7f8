"""Charts as PNG bytes (matplotlib, Agg). Pure and synchronous: callers run them off the event loop
with `asyncio.to_thread`. Each chart builds its own `Figure` (no pyplot global state), so several
can render in threads at once.
"""
from __future__ import annotations

import io
import os
import threading
import unicodedata
from collections import Counter
from datetime import date, timedelta
from functools import lru_cache
from typing import Collection, Iterable, Mapping, Sequence

from inference.result import MOODS

# One palette everywhere: the same mood always has the same colour. Each hue at its own lightness
# (CIE L* 81, 45, 29, 61: at least 12 apart, and from a day without a song), so the moods stay apart in
# greyscale; and at least 29 apart (CIEDE2000) to deuteranopes, protanopes and tritanopes as Machado
# et al. (2009) simulate them. The palette before (#F2B705, #DC5028, #295FA3, #5CB075) fell to 14.3
# between energetic and calm to a deuteranope, 15.4 between happy and calm to a protanope: calm is now a
# blue-green (teal), energetic a deeper red, sad a deeper blue (docs/usage.md, "Charts and colour").
MOOD_COLOURS: dict[str, str] = {
    "happy": "#F5C400",  # warm yellow
    "energetic": "#BC402D",  # brick red
    "sad": "#1D3D97",  # deep blue
    "calm": "#12A497",  # teal
}
# A mood's name written in its colour: the map's quadrant names. The happy yellow is 1.6:1 on white and
# the calm teal 3.1:1, too faint to read; these are darker shades of the same hues, each at least WCAG's
# 4.5:1 (the names are 13 pt bold, under its large text) on any quadrant's wash.
MOOD_TEXT_COLOURS: dict[str, str] = {**MOOD_COLOURS, "happy": "#846A00", "calm": "#0E7B71"}
# Each mood's dot on the map has its own shape, a cue beside its colour: energetic points up, sad down.
MOOD_MARKERS: dict[str, str] = {"happy": "o", "energetic": "^", "sad": "v", "calm": "s"}
MARKER_SIZES = {"o": 70, "^": 110, "v": 110, "s": 55}  # points², each shape the area of a 70-point² circle
# The pixel chart's squares hold the same shapes, small, in a colour that stands out on the square.
GLYPH_SCALE = 0.16  # of MARKER_SIZES: a shape about a third of its square's side
GLYPH_COLOURS = {"happy": "#263238", "energetic": "white", "sad": "white", "calm": "white"}
QUADRANT_TINT = 0.06  # the opacity of each quadrant's wash of its mood's colour
EMPTY_COLOUR = "#ECEFF1"  # a day gone by without a song
TEXT_COLOUR = "#263238"
GRID_COLOUR = "#CFD8DC"
TO_COME_COLOUR = "#FAFBFC"  # a day still to come: a lighter square…
TO_COME_EDGE = GRID_COLOUR  # …in an outline, not one more grey to tell from EMPTY_COLOUR
TO_COME_LINE = 0.8  # points
TODAY_EDGE = TEXT_COLOUR  # today's square is ringed in the text's colour…
TODAY_LINE = 1.6  # …thick enough to see on any mood's colour
DPI = 110
LIMIT = 1.22  # axis limit of the valence/arousal map
MIN_WEEKS = 8  # the weekly chart always spans at least two months…
MAX_WEEKS = 16  # …and at most four, so the bars stay readable
MIN_Y_TOP = 3
SO_FAR = "so far"  # over the bar of a week not over yet
FONT_SIZE = 10
MAP_LABELS = 12  # songs named on the valence/arousal map: more would be unreadable
MAP_CANDIDATES = 4 * MAP_LABELS  # the newest songs tried for those names, where older names overlap newer ones
LABEL_GAP_PX = 2  # the least white between two names on the map
# Each name on the map lies on a white backing, opaque enough that its text reads at 4.5:1 or more over
# any dot under it (6.2:1 over a sad dot's deep blue, 1.4:1 without one), and a little wider than the name.
LABEL_BACKING_ALPHA = 0.6
LABEL_PAD = 0.15  # the backing's margin around the name, in the name's font size
LABEL_OFFSET = (5, 4)  # points from a dot to its name: to the right and above, to the left where the right has no room
LABEL_CHARS = 24
BAR_WIDTH = 0.72
SQUARE = 0.86  # a day's square in the pixel chart; the rest of its 1 × 1 cell is the white between squares
WEEK_COLUMNS = 54  # the pixel chart's x axis: any year's days fit in 54 week columns
PIXEL_WINDOW_DAYS = 365  # what the pixel chart shows in January, when the calendar year is a few weeks at most
# How far after the user's today an entry may be dated: by a zone they left, up to 26 hours ahead
# of theirs now (UTC+14 and UTC-12), two dates at most.
AHEAD_DAYS = 2
MAP_QUADRANTS = "happy upper right, energetic upper left, sad lower left, calm lower right"  # as `corners` draws them
# Said of a Discord server and a Telegram group alike, as the text beside it is ("This week's mood here").
SERVER_MOOD_TITLE = "The mood of the week here"
# What its bars count, as the answer's text says (render.VOTES): a song three members played is three.
SERVER_MOOD_COUNTS = "votes in the last 7 days, one vote per member and song"
PAD_INCHES = 0.1  # white around a chart's content (as savefig's bbox_inches="tight" leaves)
ROOM_INCHES = 1.0  # room around the figure while it is drawn: legends and axis labels reach past it
# Song names are written in DejaVu Sans (matplotlib's own font) and, glyph by glyph where it has none, in
# Droid Sans Fallback: Debian's fonts-droid-fallback (7.3 MB installed), which the Makefile's set-up,
# .ci/run and the Dockerfile install. This file of the package's two has the kana, the 20 902 unified
# CJK ideographs and the 11 172 Hangul syllables; the other (DroidSansFallbackFull.ttf, the one
# fontconfig lists) has 3 Hangul syllables. Missing (a machine set up before): DejaVu Sans alone.
CJK_FONT = "/usr/share/fonts-droid-fallback/truetype/DroidSansFallback.ttf"


_IMPORT_LOCK = threading.Lock()


def _load_matplotlib() -> None:
    """Imported on first use so start-up does not pay for matplotlib; under a lock because charts
    render in several threads at once and a concurrent first import of matplotlib breaks."""
    with _IMPORT_LOCK:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.collections  # noqa: F401
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
    """The figure cut to its content plus PAD_INCHES, drawn once. savefig(bbox_inches="tight")
    draws it twice (once to measure, once to paint), and matplotlib's layout costs more than the
    painting. Here the canvas grows by ROOM_INCHES on each side, every axes keeping its size and
    place in inches (these charts' artists all hang on their axes: titles, labels, legends), so what
    reached past the figure is painted too; the content is where the white canvas was painted over
    (fig.get_tightbbox would lay every text out again to find it)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    width, height = fig.get_size_inches()
    room = ROOM_INCHES
    for ax in fig.axes:
        x0, y0, w, h = ax.get_position().bounds
        ax.set_position([(x0 * width + room) / (width + 2 * room), (y0 * height + room) / (height + 2 * room),
                         w * width / (width + 2 * room), h * height / (height + 2 * room)])
    fig.set_size_inches(width + 2 * room, height + 2 * room)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    canvas_w, canvas_h = canvas.get_width_height()
    rgba = np.asarray(canvas.buffer_rgba())
    inked = rgba.view(np.uint32)[:, :, 0] != 0xFFFFFFFF  # any pixel but opaque white, four bytes at once
    rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
    pad = round(PAD_INCHES * fig.dpi)
    top, bottom = (rows[0] - pad, rows[-1] + 1 + pad) if rows.size else (-1, -1)
    left, right = (cols[0] - pad, cols[-1] + 1 + pad) if cols.size else (-1, -1)
    buf = io.BytesIO()
    if top < 0 or left < 0 or bottom > canvas_h or right > canvas_w:  # blank, or past even the room
        fig.savefig(buf, format="png", facecolor=fig.get_facecolor(), bbox_inches="tight", pad_inches=PAD_INCHES)
        return buf.getvalue()
    Image.fromarray(rgba[top:bottom, left:right]).save(buf, format="png", dpi=(fig.dpi, fig.dpi))
    return buf.getvalue()


def _legend(ax, extra: Sequence = (), glyphs: bool = False, **kwargs) -> None:
    """The moods' colours (with `glyphs`, each holding its mood's shape, as the pixel chart's squares
    do), then `extra` handles (the pixel chart's other squares)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list = [Patch(color=MOOD_COLOURS[m], label=m) for m in MOODS]
    if glyphs:
        handles = [(patch, Line2D([], [], linestyle="none", marker=MOOD_MARKERS[m], color=GLYPH_COLOURS[m],
                                  markersize=(GLYPH_SCALE * MARKER_SIZES[MOOD_MARKERS[m]]) ** 0.5, markeredgewidth=0))
                   for patch, m in zip(handles, MOODS)]
    ax.legend([*handles, *extra], [*MOODS, *(handle.get_label() for handle in extra)], frameon=False,
              fontsize=FONT_SIZE - 1, **kwargs)


def _box(x: float, y: float, width: float, height: float) -> list[tuple[float, float]]:
    return [(x, y), (x + width, y), (x + width, y + height), (x, y + height)]


def _boxes(boxes: Sequence[list[tuple[float, float]]]):
    """`_box`es as one (n, 4, 2) array: PolyCollection closes an array's polygons in one step, a
    list's one by one (~5 ms for a year of squares)."""
    import numpy as np

    return np.asarray(boxes, dtype=float).reshape(-1, 4, 2)


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


def week_monday(label: str) -> date | None:
    """The Monday an ISO week ("2026-W47") starts on; None for a label that is none."""
    year, sep, week = label.partition("-W")
    try:
        return date.fromisocalendar(int(year), int(week), 1) if sep else None
    except ValueError:
        return None


def week_tick_labels(labels: Sequence[str]) -> list[str]:
    """The x axis's week labels: each week by its Monday's day, "16", with its month under it on the
    first bar and where a month starts, and the year beside that on the first bar and where a new year
    starts ("16\nNov 2026", "23", "30", "7\nDec"). They read "W47": an ISO week's number, which
    few people know, says nothing of when it was. Where the second bar starts another month, the first
    bar's month is left to it ("29", "5\nJan 2026"): one bar apart, "Dec 2025" and "Jan 2026" were
    written over each other."""
    ticks, shown_month = [], None
    mondays = [week_monday(label) for label in labels]
    for n, (label, monday) in enumerate(zip(labels, mondays)):
        if monday is None:
            ticks.append(label)
            continue
        after = mondays[n + 1] if n + 1 < len(mondays) else None
        if shown_month is None and after is not None and (after.year, after.month) != (monday.year, monday.month):
            ticks.append(f"{monday.day}")  # no month shown yet: the next bar's is the first, with its year
            continue
        if shown_month is None or monday.year != shown_month.year:
            ticks.append(f"{monday.day}\n{monday:%b %Y}")
        elif monday.month != shown_month.month:
            ticks.append(f"{monday.day}\n{monday:%b}")
        else:
            ticks.append(f"{monday.day}")
        shown_month = monday
    return ticks


def weeks_span(first: str, last: str) -> str:
    """The weeks from `first` to `last` by their Mondays: "17 Aug to 30 Nov 2026", "24 Nov 2025 to
    12 Jan 2026" (ISO labels as they are where they are none)."""
    start, end = week_monday(first), week_monday(last)
    if start is None or end is None:
        return f"{first} to {last}"
    start_text = f"{start.day} {start:%b}" if start.year == end.year else f"{start.day} {start:%b %Y}"
    return f"{start_text} to {end.day} {end:%b %Y}"


def not_over(label: str, until: date | None) -> bool:
    """Whether the week `label` is still going on on `until`, the chart's today (or is after it: an
    entry dated in a zone ahead): on a Monday its bar holds one day's songs at most."""
    monday = week_monday(label)
    return until is not None and monday is not None and until <= monday + timedelta(days=6)


def week_name(label: str, year: bool = True) -> str:
    """"the week of 16 Nov 2026" ("of 16 Nov" without its `year`), the label itself where it is no ISO week."""
    monday = week_monday(label)
    if monday is None:
        return label
    return f"the week of {monday.day} {monday:%b %Y}" if year else f"the week of {monday.day} {monday:%b}"


def latest_before(periods: Sequence[tuple[str, dict[str, int]]],
                  weeks: Sequence[tuple[str, dict[str, int]]]) -> str | None:
    """When the `weeks` drawn hold no song but older `periods` do (a journal left for months): the
    latest of those, "the week of 24 Mar 2025 (2025-W13)"; else None."""
    if any(any(counts.values()) for _, counts in weeks):
        return None
    shown = {label for label, _ in weeks}
    older = [label for label, counts in periods if any(counts.values()) and label not in shown]
    if not older:
        return None
    return week_name(max(older))


def mood_over_time(periods: Sequence[tuple[str, dict[str, int]]], title: str = "Your moods, week by week",
                   until: date | None = None) -> bytes:
    """Stacked bars: one bar per period ("2026-W47"), one segment per mood, up to the week of `until`."""
    return _png(mood_over_time_figure(periods, title, until))


def mood_over_time_figure(periods: Sequence[tuple[str, dict[str, int]]], title: str = "Your moods, week by week",
                          until: date | None = None):
    """The weekly chart's figure, before it is cut to a PNG. The moods stack from the legend's last
    at the bottom to its first on top, so the legend, read down, names the segments as the eye meets
    them. Weeks drawn without a song, after older ones with songs, say when the latest was: blank
    bars alone read as a journal lost."""
    weeks = continuous_weeks(periods, until=until)
    latest = latest_before(periods, weeks)
    periods = weeks
    fig = _figure(7.5, 3.6)
    from matplotlib.collections import PolyCollection  # after _figure: it loads matplotlib under the lock

    ax = fig.add_subplot()
    labels = [p for p, _ in periods]
    x = range(len(labels))
    segments, colours, totals = [], [], []
    for n, (_, counts) in enumerate(periods):
        left, bottom = n - BAR_WIDTH / 2, 0
        for mood in reversed(MOODS):
            if counts.get(mood, 0):
                top = bottom + counts[mood]
                segments.append(_box(left, bottom, BAR_WIDTH, top - bottom))
                colours.append(MOOD_COLOURS[mood])
                bottom = top
        totals.append(bottom)
    # One artist for every segment: ax.bar made a patch per mood and week, empty ones included.
    ax.add_collection(PolyCollection(_boxes(segments), facecolors=colours, edgecolors="white", linewidths=0.6),
                      autolim=False)
    if labels:
        span = len(labels) - 1 + BAR_WIDTH
        ax.set_xlim(-BAR_WIDTH / 2 - 0.05 * span, len(labels) - 1 + BAR_WIDTH / 2 + 0.05 * span)  # ax.bar's margins
    ax.set_xticks(list(x), week_tick_labels(labels))
    ax.set_ylim(0, max(totals + [MIN_Y_TOP]) * 1.12)
    ax.set_ylabel("songs", color=TEXT_COLOUR, fontsize=FONT_SIZE)
    if any(week_monday(label) for label in labels):  # a bar under a date is that week's, not that day's
        ax.set_xlabel("weeks, each under its Monday", color=TEXT_COLOUR, fontsize=FONT_SIZE - 1)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.grid(axis="y", color=GRID_COLOUR, linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(title, loc="left", fontsize=FONT_SIZE + 2, fontweight="bold")
    _style(ax)
    _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for n, label in enumerate(labels):  # drawn as the weeks gone by, its bar read as a drop
        if not_over(label, until):
            ax.annotate(SO_FAR, (n, totals[n]), xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                        color=TEXT_COLOUR, fontsize=FONT_SIZE - 2)
    if latest is not None:
        ax.text(0.5, 0.5, f"No songs in these {len(weeks)} weeks:\nyour latest was in {latest}",
                transform=ax.transAxes, ha="center", va="center", multialignment="center", color=TEXT_COLOUR,
                fontsize=FONT_SIZE, bbox={"facecolor": "white", "edgecolor": "none"})
    return fig


def pixel_window(today: date, latest: date | None = None) -> tuple[date, date]:
    """The days the pixel chart shows on `today`: its calendar year, except in January, when that
    year is a few weeks at most and the one just ended would be seen nowhere: then the last 365
    days, up to today. `latest`, the latest day with an entry, may be after today (dated in a zone
    ahead of the one the user has now, as far as AHEAD_DAYS): the window then reaches that day, the
    365 days up to it when it falls in January (on 31 December, an entry dated 1 January too)."""
    last = max(today, latest or today)
    if last.month == 1:
        return last - timedelta(days=PIXEL_WINDOW_DAYS - 1), last
    return date(last.year, 1, 1), date(last.year, 12, 31)


def pixels_name(first: date, last: date) -> str:
    """"2026" for a calendar year, else its dates: "11 Jan 2025 – 10 Jan 2026"."""
    if (first.month, first.day, last.month, last.day) == (1, 1, 12, 31) and first.year == last.year:
        return str(first.year)
    return f"{first.day} {first:%b %Y} – {last.day} {last:%b %Y}"


def day_cell(day: date, first: date) -> tuple[int, int]:
    """(week column, weekday row) of `day` in the pixel chart starting on `first`: column 0 is the
    week holding `first`, row 0 Monday."""
    return ((day - first).days + first.weekday()) // 7, day.weekday()


def days_in_pixels(days: dict[date, str], first: date, last: date, title: str | None = None,
                   today: date | None = None) -> bytes:
    """A calendar from `first` to `last`: one square per day, coloured by that day's journal mood,
    EMPTY_COLOUR for a day gone by without one; with `today`, it is ringed and the days after it
    (without an entry) are outlined, still to come."""
    return _png(pixels_figure(days, first, last, title, today))


def pixels_figure(days: dict[date, str], first: date, last: date, title: str | None = None,
                  today: date | None = None):
    """The pixel chart's figure, before it is cut to a PNG."""
    fig = _figure(10.5, 2.6)
    from matplotlib.collections import PolyCollection  # after _figure: it loads matplotlib under the lock
    from matplotlib.patches import Patch, Polygon

    ax = fig.add_subplot()
    squares, colours, to_come, glyphs = [], [], [], []
    for n in range((last - first).days + 1):
        day = first + timedelta(days=n)
        col, row = day_cell(day, first)
        square = _box(col, 6 - row, SQUARE, SQUARE)
        if today is not None and day > today and day not in days:  # an entry dated ahead (another zone) shows
            to_come.append(square)
            continue
        squares.append(square)
        colours.append(MOOD_COLOURS.get(days.get(day, ""), EMPTY_COLOUR))
        if days.get(day) in MOOD_MARKERS:
            glyphs.append((col + SQUARE / 2, 6 - row + SQUARE / 2, days[day]))
    # One artist for the whole grid: a Rectangle patch per day took ~0.3 s to add and draw.
    ax.add_collection(PolyCollection(_boxes(squares), facecolors=colours, linewidths=0), autolim=False)
    if glyphs:  # each mood's shape in its squares, colour not the only cue; one artist for them all
        xs, ys, moods = zip(*glyphs)
        marks = ax.scatter(xs, ys, s=[GLYPH_SCALE * MARKER_SIZES[MOOD_MARKERS[m]] for m in moods],
                           c=[GLYPH_COLOURS[m] for m in moods], linewidths=0, zorder=2)
        marks.set_paths([_marker_path(MOOD_MARKERS[m]) for m in moods])
    legend = [Patch(color=EMPTY_COLOUR, label="no song")]
    if to_come:
        ax.add_collection(PolyCollection(_boxes(to_come), facecolors=TO_COME_COLOUR, edgecolors=TO_COME_EDGE,
                                         linewidths=TO_COME_LINE), autolim=False)
        legend.append(Patch(facecolor=TO_COME_COLOUR, edgecolor=TO_COME_EDGE, linewidth=TO_COME_LINE, label="to come"))
    if today is not None and first <= today <= last:
        col, row = day_cell(today, first)
        ax.add_patch(Polygon(_box(col, 6 - row, SQUARE, SQUARE), fill=False, edgecolor=TODAY_EDGE,
                             linewidth=TODAY_LINE, zorder=3))
        legend.append(Patch(fill=False, edgecolor=TODAY_EDGE, linewidth=TODAY_LINE, label="today"))
    ax.set_xlim(-0.3, WEEK_COLUMNS)
    ax.set_ylim(-0.3, 7.2)
    ax.set_aspect("equal")
    month_starts = [date(y, m, 1) for y in range(first.year, last.year + 1) for m in range(1, 13)
                    if first <= date(y, m, 1) <= last]
    ax.set_xticks([day_cell(d, first)[0] + SQUARE / 2 for d in month_starts], [d.strftime("%b") for d in month_starts])
    ax.set_yticks([6 - row + SQUARE / 2 for row in (0, 2, 4, 6)], ["Mon", "Wed", "Fri", "Sun"])
    ax.tick_params(length=0, colors=TEXT_COLOUR, labelsize=FONT_SIZE - 1)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title or f"{pixels_name(first, last)} in pixels — one square a day", loc="left",
                 fontsize=FONT_SIZE + 2, fontweight="bold", color=TEXT_COLOUR)
    # Seven rows beside seven.
    _legend(ax, legend, glyphs=True, loc="upper left", bbox_to_anchor=(1.0, 1.0), labelspacing=0.3)
    return fig


def year_in_pixels(days: dict[date, str], year: int, title: str | None = None, today: date | None = None) -> bytes:
    """A calendar of the year: one square per day, coloured by that day's journal mood."""
    return days_in_pixels(days, date(year, 1, 1), date(year, 12, 31), title, today)


_FONT_LOCK = threading.Lock()


@lru_cache(maxsize=None)
def _name_fonts(fallback: str | None) -> tuple[tuple[str, ...], frozenset[int]]:
    """The font families a song's name is written in, the charts' font first and then `fallback`'s
    for the glyphs it lacks (matplotlib takes each glyph from the first family that has it), and the
    characters they can draw between them; `fallback` missing, the charts' font alone (DejaVu Sans:
    no emoji, no CJK). Registered by its path once: matplotlib may have found another font of the
    same family name (DroidSansFallbackFull.ttf, without Hangul) and would take the first it found.
    Under a lock, and only where it is not registered already (the cache misses in each thread that
    asks before the first has answered): taken out and added back while another thread wrote a map's
    names, they came in DejaVu Sans (empty boxes), and findfont kept that answer for good."""
    _load_matplotlib()
    from matplotlib import font_manager
    from matplotlib.font_manager import FontProperties, findfont
    from matplotlib.ft2font import FT2Font

    main = FT2Font(findfont(FontProperties()))
    if not fallback or not os.path.isfile(fallback):
        return (main.family_name,), frozenset(main.get_charmap())
    extra = FT2Font(fallback)
    with _FONT_LOCK:  # charts render in several threads
        manager = font_manager.fontManager
        if {entry.fname for entry in manager.ttflist if entry.name == extra.family_name} != {fallback}:
            manager.ttflist = [entry for entry in manager.ttflist if entry.name != extra.family_name]
            manager.addfont(fallback)  # clears findfont's cache
    return (main.family_name, extra.family_name), frozenset(main.get_charmap()) | frozenset(extra.get_charmap())


def drawable(text: str, fallback: str | None = CJK_FONT) -> str:
    """`text` without the characters the fonts lack (matplotlib draws each as an empty box), and
    without the separators those leave dangling: "🎶 Fuego" -> "Fuego", "नमस्ते – लता" -> ""
    (without the CJK font, `fallback`, "아이유 – 좋은 날" -> "" too). Nothing at all when the fonts
    lack most of its letters: "이 밤 – 아이유 IU" named "IU" would mislead more than an unnamed dot.
    Composed first (NFC): a Korean name typed on a Mac comes as jamo, which the fonts would write
    one by one, unjoined."""
    text = unicodedata.normalize("NFC", text)
    known = _name_fonts(fallback)[1]
    letters = [c for c in text if c.isalnum()]
    if 2 * sum(ord(c) in known for c in letters) < len(letters):
        return ""
    kept = "".join(c if ord(c) in known else " " for c in text)
    return " ".join(kept.split()).strip(" -–—·,;:/|")


def map_labels(songs: Sequence[tuple[str, float, float, str]], limit: int = MAP_LABELS,
               fallback: str | None = CJK_FONT) -> list[tuple[str, float, float]]:
    """The names drawn on the map, newest first: the latest `limit` different songs (`songs` come
    oldest first), each at its latest dot, in the glyphs the font has, shortened: a name too long
    for a label ("Artist – Title") by its title, as cutting it kept the artist alone ("Johann
    Sebastian Bach –…" for each of his songs); a label already drawn is not drawn twice."""
    labels: dict[str, tuple[str, float, float] | None] = {}
    drawn: set[str] = set()
    for name, valence, arousal, _ in reversed(songs):
        shown = drawable(name, fallback)
        if not shown or shown in labels:
            continue
        label = shown if len(shown) <= LABEL_CHARS else shown.rpartition(" – ")[2]
        short = label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"
        labels[shown] = (short, valence, arousal)
        if short in drawn:
            labels[shown] = None  # the same words as a newer label: that song stays a dot
        drawn.add(short)
        if len(labels) == limit:
            break
    return [label for label in labels.values() if label is not None]


def valence_arousal_map(songs: Iterable[tuple[str, float, float, str]], title: str = "Your songs on the mood map",
                        fallback: str | None = CJK_FONT) -> bytes:
    """Each song (oldest first) as a dot at (valence, arousal), coloured by mood; the four
    quadrants labelled, and the newest songs named where their names fit (in the glyphs DejaVu
    Sans and the `fallback` font have)."""
    return _png(mood_map_figure(songs, title, fallback))


def mood_map_figure(songs: Iterable[tuple[str, float, float, str]], title: str = "Your songs on the mood map",
                    fallback: str | None = CJK_FONT):
    """The valence/arousal map's figure, on an Agg canvas, before it is cut to a PNG."""
    songs = list(songs)
    fig = _figure(6.0, 6.0)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.axhline(0, color=GRID_COLOUR, linewidth=1, zorder=1)
    ax.axvline(0, color=GRID_COLOUR, linewidth=1, zorder=1)
    # Songs live inside [-1, 1]; the quadrant names sit in the margin beyond it, never over a dot.
    corners = {"happy": (LIMIT, LIMIT, "right", "top"), "energetic": (-LIMIT, LIMIT, "left", "top"),
               "sad": (-LIMIT, -LIMIT, "left", "bottom"), "calm": (LIMIT, -LIMIT, "right", "bottom")}
    for mood, (x, y, ha, va) in corners.items():
        sx, sy = (1 if x > 0 else -1), (1 if y > 0 else -1)
        ax.fill_between([0, sx * LIMIT], 0, sy * LIMIT, color=MOOD_COLOURS[mood], alpha=QUADRANT_TINT, linewidth=0,
                        zorder=0)
        ax.text(x - sx * 0.03, y - sy * 0.03, mood, ha=ha, va=va, color=MOOD_TEXT_COLOURS[mood],
                fontsize=FONT_SIZE + 3, fontweight="bold")
    dots = [(v, a, MOOD_COLOURS[m], MOOD_MARKERS[m]) for _, v, a, m in songs if m in MOOD_COLOURS]
    if dots:
        # One collection in the order the songs came: the newest dot, the one named, lies on top
        # (a song called happy may sit among calm ones: its mood is the likeliest, its dot a blend).
        xs, ys, colours, markers = zip(*dots)
        scatter = ax.scatter(xs, ys, s=[MARKER_SIZES[marker] for marker in markers], c=colours, edgecolor="white",
                             linewidth=0.8, alpha=0.9, zorder=3)
        scatter.set_paths([_marker_path(marker) for marker in markers])  # a shape a dot, still one collection
    ax.set_xlim(-LIMIT, LIMIT)
    ax.set_ylim(-LIMIT, LIMIT)
    ax.set_xticks([-1, -0.5, 0, 0.5, 1])
    ax.set_yticks([-1, -0.5, 0, 0.5, 1])
    ax.set_aspect("equal")
    _name_songs(ax, songs, fig.canvas.get_renderer(), fallback)
    ax.set_xlabel("valence  (negative → positive)", color=TEXT_COLOUR, fontsize=FONT_SIZE)
    ax.set_ylabel("arousal  (low energy → high energy)", color=TEXT_COLOUR, fontsize=FONT_SIZE)
    ax.set_title(title, loc="left", fontsize=FONT_SIZE + 2, fontweight="bold")
    _style(ax)
    from matplotlib.lines import Line2D

    shapes = [Line2D([], [], linestyle="none", marker=MOOD_MARKERS[m],
                     markersize=MARKER_SIZES[MOOD_MARKERS[m]] ** 0.5, markerfacecolor=MOOD_COLOURS[m],
                     markeredgecolor="white", label=m) for m in MOODS]
    ax.legend(handles=shapes, frameon=False, fontsize=FONT_SIZE - 1, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


@lru_cache(maxsize=None)
def _marker_path(marker: str):
    """A matplotlib marker's outline, at the size `scatter` draws its markers (one Path a shape,
    shared by its dots)."""
    from matplotlib.markers import MarkerStyle

    style = MarkerStyle(marker)
    return style.get_path().transformed(style.get_transform())


def _name_songs(ax, songs: Sequence[tuple[str, float, float, str]], renderer, fallback: str | None = CJK_FONT) -> None:
    """The newest songs' names beside their dots, MAP_LABELS at most, each only where it overlaps
    no name already written (a newer song's, or a quadrant's): a mood's songs crowd together, and
    two names written over each other are one unreadable line. A name that does not fit gives its
    place to the next newest song's, among the newest MAP_CANDIDATES. A name is written right of its
    dot, or left of it where it would run past the map's edge (into the legend beside it), and on a
    white backing that keeps it readable over the dots under it; in DejaVu Sans, and in the
    `fallback` font the glyphs DejaVu lacks (CJK)."""
    families = list(_name_fonts(fallback)[0])
    ax.apply_aspect()  # the axes' final box, so each name is measured where it will be drawn
    frame = ax.get_window_extent(renderer)
    taken = [text.get_window_extent(renderer) for text in ax.texts]
    pad_px = LABEL_PAD * (FONT_SIZE - 2) * ax.figure.dpi / 72
    backing = {"boxstyle": f"square,pad={LABEL_PAD}", "facecolor": "white", "alpha": LABEL_BACKING_ALPHA,
               "edgecolor": "none"}
    named = 0
    for short, v, a in map_labels(songs, limit=MAP_CANDIDATES, fallback=fallback):
        for dx, ha in ((LABEL_OFFSET[0], "left"), (-LABEL_OFFSET[0], "right")):
            # parse_math=False: a "$" in a title is a dollar sign, not TeX (which may not even parse).
            note = ax.annotate(short, (v, a), xytext=(dx, LABEL_OFFSET[1]), textcoords="offset points", ha=ha,
                               fontsize=FONT_SIZE - 2, fontfamily=families, color=TEXT_COLOUR, parse_math=False,
                               bbox=backing)
            box = note.get_window_extent(renderer).padded(pad_px)
            if frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1:
                break
            note.remove()  # past the map's edge: on the other side of its dot
        else:
            continue
        if any(box.padded(LABEL_GAP_PX).overlaps(other) for other in taken):
            note.remove()
            continue
        taken.append(box)
        named += 1
        if named == MAP_LABELS:
            return


def server_mood_of_week(counts: dict[str, int], title: str = SERVER_MOOD_TITLE) -> bytes:
    """Horizontal bars of songs per mood over the last 7 days, the winner highlighted."""
    return _png(server_mood_figure(counts, title))


def server_mood_figure(counts: dict[str, int], title: str = SERVER_MOOD_TITLE):
    """The mood of the week's figure, before it is cut to a PNG."""
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
    ax.set_xlabel(SERVER_MOOD_COUNTS, color=TEXT_COLOUR, fontsize=FONT_SIZE)
    ax.set_title(title, loc="left", fontsize=FONT_SIZE + 2, fontweight="bold")
    _style(ax)
    return fig


# ---- the charts in words: each chart's alt text (Discord) and caption (Telegram, the console), for a
# reader who cannot see the picture; the numbers are the ones the chart draws.


def mood_counts_text(counts: Mapping[str, int]) -> str:
    """"happy 3, energetic 0, sad 1, calm 2": every mood, in the legend's order."""
    return ", ".join(f"{mood} {counts.get(mood, 0)}" for mood in MOODS)


def _songs(n: int) -> str:
    return f"{n} song" + ("" if n == 1 else "s")


def weeks_in_words(periods: Sequence[tuple[str, dict[str, int]]], until: date | None = None) -> str:
    """What `mood_over_time` draws: the weeks it spans, their songs per mood, the busiest week."""
    weeks = continuous_weeks(periods, until=until)
    if not weeks:
        return "no songs yet"
    totals: Counter = Counter()
    for _, counts in weeks:
        totals.update(counts)
    sizes = [sum(counts.values()) for _, counts in weeks]
    text = (f"the {len(weeks)} weeks from {weeks_span(weeks[0][0], weeks[-1][0])}, {_songs(sum(sizes))} "
            f"({mood_counts_text(totals)})")
    if any(sizes):
        busiest = sizes.index(max(sizes))  # the earliest of a tie
        text += f"; the most in {week_name(weeks[busiest][0], year=False)} ({sizes[busiest]}), {sizes[-1]} in the latest week"
        text += f" {SO_FAR}" if not_over(weeks[-1][0], until) else ""
    elif (latest := latest_before(periods, weeks)) is not None:
        text += f"; your latest was in {latest}"
    return text


def pixels_in_words(days: Mapping[date, str], first: date, last: date, today: date | None = None,
                    several: Collection[date] = ()) -> str:
    """What `days_in_pixels` draws: how many of the days so far (up to `today`, or a later day
    with an entry) have a coloured square, and of which mood; and of the days shown, how many held
    `several` entries, whose square is their latest's (said only where there are some)."""
    shown = {day: mood for day, mood in days.items() if first <= day <= last}
    through = last if today is None else max(first, min(last, max([today, *shown])))
    so_far = " so far" if through < last else ""
    text = (f"{len(shown)} of {(through - first).days + 1} days{so_far} with a song "
            f"({mood_counts_text(Counter(shown.values()))})")
    repeated = sum(1 for day in several if day in shown)
    if repeated == 1:
        text += "; 1 day had more than one song: it shows its latest"
    elif repeated:
        text += f"; {repeated} days had more than one song: each shows its latest"
    return text


def map_in_words(songs: Sequence[tuple[str, float, float, str]], of_total: int | None = None) -> str:
    """What `valence_arousal_map` draws: its dots per mood, and where each mood's quadrant is. A
    song answered on several days is drawn at one spot, its entries one dot: then the caption
    counts the entries and the dots, not "23 songs as dots" under a single dot."""
    drawn = [(valence, arousal, mood) for _, valence, arousal, mood in songs if mood in MOOD_COLOURS]
    counts = Counter(mood for *_, mood in drawn)
    n, dots = len(drawn), len({(valence, arousal) for valence, arousal, _ in drawn})
    if dots == n:
        latest = f"the latest {n} of {of_total} songs" if of_total is not None and of_total > n else _songs(n)
        return f"{latest} as {'a dot' if n == 1 else 'dots'} ({mood_counts_text(counts)}); {MAP_QUADRANTS}"
    entries = f"the latest {n} of {of_total} entries" if of_total is not None and of_total > n else f"{n} entries"
    return (f"{entries} ({mood_counts_text(counts)}) as {dots} dot{'' if dots == 1 else 's'}, "
            f"entries of one song sharing a dot; {MAP_QUADRANTS}")
