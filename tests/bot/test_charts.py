"""Charts are PNG bytes in one consistent palette; the weekly chart reads as a time axis."""
from __future__ import annotations

import io
import random
import unicodedata
import warnings
from datetime import date

import numpy as np
from PIL import Image

from bot import charts
from inference.result import MOODS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WHITE = (255, 255, 255)
QUADRANTS = {"happy": (1, 1), "energetic": (-1, 1), "sad": (-1, -1), "calm": (1, -1)}


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def pixels_of(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def square_place(image: np.ndarray, first: date, last: date, day: date) -> tuple[int, int, float]:
    """(row, column) of the centre of `day`'s square in a pixel chart of `first`..`last` (a day
    outside them: where its square would be), and a square's side in pixels. The grid is found by
    its blank squares (the legend's blank patches are wide, not square), so the first and the last
    week must each hold a day without an entry (or one still to come), as must Mondays and Sundays."""
    from scipy import ndimage

    blank = np.zeros(image.shape[:2], dtype=bool)
    for colour in (charts.EMPTY_COLOUR, charts.TO_COME_COLOUR):
        blank |= (image == rgb(colour)).all(axis=2)
    shapes, _ = ndimage.label(blank)
    squares = [(rows, cols) for rows, cols in ndimage.find_objects(shapes)
               if abs((rows.stop - rows.start) - (cols.stop - cols.start)) <= 2]
    ys = np.array([rows.start for rows, _ in squares] + [rows.stop - 1 for rows, _ in squares])
    xs = np.array([cols.start for _, cols in squares] + [cols.stop - 1 for _, cols in squares])
    columns = charts.day_cell(last, first)[0] + 1
    unit_x = (xs.max() + 1 - xs.min()) / (columns - 1 + charts.SQUARE)
    unit_y = (ys.max() + 1 - ys.min()) / (6 + charts.SQUARE)
    col, row = charts.day_cell(day, first)
    return (round(ys.min() + (row + charts.SQUARE / 2) * unit_y), round(xs.min() + (col + charts.SQUARE / 2) * unit_x),
            charts.SQUARE * unit_x)


def square_colour(png: bytes, first: date, last: date, day: date) -> tuple[int, int, int]:
    """The colour of `day`'s square (see `square_place`), up and left of its centre, where its mood's
    shape (`square_glyph`) is not."""
    image = pixels_of(png)
    y, x, side = square_place(image, first, last, day)
    return tuple(int(c) for c in image[round(y - side / 4), round(x - side / 4)])


def square_glyph(png: bytes, first: date, last: date, day: date) -> np.ndarray:
    """Which pixels of the middle of `day`'s square differ from its colour: the shape drawn in it."""
    image = pixels_of(png)
    y, x, side = square_place(image, first, last, day)
    r = round(side / 4)
    return (image[y - r:y + r + 1, x - r:x + r + 1] != square_colour(png, first, last, day)).any(axis=2)


def test_every_mood_has_its_own_colour():
    assert set(charts.MOOD_COLOURS) == set(MOODS)
    assert len(set(charts.MOOD_COLOURS.values())) == len(MOODS)


def linear_rgb(colour: str) -> np.ndarray:
    """An sRGB colour ("#RRGGBB") as linear light, each component 0..1."""
    s = np.array(rgb(colour)) / 255
    return np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4)


def cielab(linear: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of a linear-light sRGB colour: L* 0 black .. 100 white."""
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    fx, fy, fz = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)])


def lightness(colour: str) -> float:
    """CIE L* of an sRGB colour: the grey it turns to, as the eye sees it."""
    return float(cielab(linear_rgb(colour))[0])


MIN_LIGHTNESS_GAP = 12  # L*: two greys this far apart are told apart at a glance


def test_the_moods_and_a_day_without_a_song_are_told_apart_without_colour():
    # In greyscale, and to many colour-blind readers, energetic (L* 56) and calm (60) were one grey:
    # the pixel chart tells its days apart by nothing but colour.
    shades = {**charts.MOOD_COLOURS, "no song": charts.EMPTY_COLOUR}
    gaps = {(a, b): abs(lightness(shades[a]) - lightness(shades[b])) for a in shades for b in shades if a < b}
    assert min(gaps.values()) >= MIN_LIGHTNESS_GAP, gaps


def delta_e_2000(lab1: np.ndarray, lab2: np.ndarray) -> float:
    """CIEDE2000 (Sharma, Wu & Dalal 2005): how different two colours look, 1 a just-noticeable step."""
    (l1, a1, b1), (l2, a2, b2) = lab1, lab2
    mean_c = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(mean_c ** 7 / (mean_c ** 7 + 25 ** 7)))
    c1, c2 = np.hypot((1 + g) * a1, b1), np.hypot((1 + g) * a2, b2)
    h1, h2 = (np.degrees(np.arctan2(b, (1 + g) * a)) % 360 for a, b in ((a1, b1), (a2, b2)))
    dh = 0.0 if c1 * c2 == 0 else (h2 - h1 + 180) % 360 - 180
    dl, dc, dhh = l2 - l1, c2 - c1, 2 * np.sqrt(c1 * c2) * np.sin(np.radians(dh / 2))
    lm, cm = (l1 + l2) / 2, (c1 + c2) / 2
    hm = h1 + h2 if c1 * c2 == 0 else (h1 + h2) / 2 + (180 if abs(h1 - h2) > 180 else 0)
    t = (1 - 0.17 * np.cos(np.radians(hm - 30)) + 0.24 * np.cos(np.radians(2 * hm))
         + 0.32 * np.cos(np.radians(3 * hm + 6)) - 0.20 * np.cos(np.radians(4 * hm - 63)))
    sl, sc, sh = 1 + 0.015 * (lm - 50) ** 2 / np.sqrt(20 + (lm - 50) ** 2), 1 + 0.045 * cm, 1 + 0.015 * cm * t
    rt = -2 * np.sqrt(cm ** 7 / (cm ** 7 + 25 ** 7)) * np.sin(np.radians(60 * np.exp(-(((hm % 360) - 275) / 25) ** 2)))
    return float(np.sqrt((dl / sl) ** 2 + (dc / sc) ** 2 + (dhh / sh) ** 2 + rt * (dc / sc) * (dhh / sh)))


def test_delta_e_2000_gives_sharma_wu_and_dalals_published_differences():
    pairs = [((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425), ((50, 0, 0), (50, -1, 2), 2.3669),
             ((50, 2.5, 0), (58, 24, 15), 19.4535), ((50, 2.5, 0), (73, 25, -18), 27.1492),
             ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
             ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373)]
    for lab1, lab2, expected in pairs:
        assert abs(delta_e_2000(np.array(lab1), np.array(lab2)) - expected) < 1e-4, (lab1, lab2)


# Machado, Oliveira & Fernandes (2009), severity 1: what a dichromat sees of a colour, in linear RGB.
# Deuteranopia and protanopia (red-green) are most of the 1 man in 12 with a colour vision deficiency.
DICHROMATS = {
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}
MIN_DELTA_E = 20  # CIEDE2000: two colours this far apart are two moods at a glance, even as small squares


def test_the_moods_colours_stay_apart_to_colour_blind_eyes():
    # The palette kept 12 L* between the moods, but to a deuteranope energetic's red-orange and calm's
    # green were 14.3 apart, and to a protanope happy's yellow and calm's green 15.4: in the pixel
    # chart, where a square's colour is all there is, a near miss.
    seen = {"normal vision": np.eye(3), **{name: np.array(matrix) for name, matrix in DICHROMATS.items()}}
    too_close = {}
    for name, matrix in seen.items():
        labs = {mood: cielab(np.clip(matrix @ linear_rgb(charts.MOOD_COLOURS[mood]), 0, 1)) for mood in MOODS}
        for i, a in enumerate(MOODS):
            for b in MOODS[i + 1:]:
                if (difference := delta_e_2000(labs[a], labs[b])) < MIN_DELTA_E:
                    too_close[f"{a}/{b} to {name}"] = round(difference, 1)
    assert not too_close, too_close


def test_silent_weeks_show_as_gaps_and_the_axis_spans_at_least_two_months():
    weeks = charts.continuous_weeks([("2025-W51", {"sad": 1}), ("2026-W02", {"happy": 2})])
    labels = [label for label, _ in weeks]
    assert labels[-4:] == ["2025-W51", "2025-W52", "2026-W01", "2026-W02"]  # across the new year
    assert len(labels) == charts.MIN_WEEKS and weeks[-1][1] == {"happy": 2} and weeks[-2][1] == {}
    long_history = charts.continuous_weeks([("2024-W01", {"sad": 1}), ("2026-W10", {"calm": 1})])
    assert len(long_history) == charts.MAX_WEEKS and long_history[-1][0] == "2026-W10"


def test_weeks_without_a_song_since_an_older_one_say_when_that_was_on_the_chart():
    # A journal left for a year: the sixteen weeks drawn were blank bars and nothing more.
    stale = [("2025-W12", {"sad": 3}), ("2025-W13", {"calm": 1})]
    fig = charts.mood_over_time_figure(stale, until=date(2026, 12, 4))
    notes = [text.get_text() for text in fig.axes[0].texts if text.get_text() != charts.SO_FAR]
    assert notes == ["No songs in these 16 weeks:\nyour latest was in the week of 24 Mar 2025"]
    recent = charts.mood_over_time_figure([("2026-W49", {"sad": 1})], until=date(2026, 12, 4)).axes[0].texts
    assert [text.get_text() for text in recent] == [charts.SO_FAR]  # no note: a song in the weeks drawn
    assert charts.mood_over_time(stale, until=date(2026, 12, 4)).startswith(PNG_MAGIC)


def test_the_weekly_axis_runs_to_this_week_when_given_today():
    weeks = charts.continuous_weeks([("2026-W09", {"sad": 1}), ("2026-W10", {"calm": 1})], until=date(2026, 12, 20))
    assert weeks[-1] == ("2026-W51", {}) and len(weeks) == charts.MAX_WEEKS  # months of silence show as such
    assert charts.continuous_weeks([("2026-W10", {"calm": 1})], until=date(2026, 3, 4))[-1][0] == "2026-W10"


def test_the_week_still_going_on_is_marked_so_far_not_read_as_a_drop():
    # On a Monday the last bar held one song at most, beside weeks of six and seven, drawn alike: to
    # the eye the journal had collapsed, in a week one day old (the pixel chart marks its days to
    # come; the weekly bars did not), and the caption said "0 in the latest week" on a Friday. A week
    # not over on the chart's today (a week after it too: an entry dated in a zone ahead) is marked
    # "so far" above its bar, inside the chart; a week gone by is not.
    from datetime import timedelta

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    journal = [("2026-W47", {"sad": 7}), ("2026-W48", {"calm": 6}), ("2026-W49", {"happy": 1})]

    def marked(until, periods=journal):
        fig = charts.mood_over_time_figure(periods, until=until)
        renderer = FigureCanvasAgg(fig).get_renderer()
        ax = fig.axes[0]
        marks = [text for text in ax.texts if text.get_text() == "so far"]
        frame, ticks = ax.get_window_extent(renderer), [t.get_window_extent(renderer) for t in ax.get_xticklabels()]
        labels = [label for label, _ in charts.continuous_weeks(periods, until=until)]
        bars = []
        for mark in marks:
            box = mark.get_window_extent(renderer)
            bar, height = round(mark.xy[0]), mark.xy[1]
            top = ax.transData.transform((bar, height))[1]
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and top <= box.y0 and box.y1 <= frame.y1, labels[bar]
            assert not any(box.overlaps(tick) for tick in ticks)
            assert abs((box.x0 + box.x1) / 2 - ax.transData.transform((bar, 0))[0]) <= 1  # over its bar
            assert height == sum(dict(periods).get(labels[bar], {}).values())  # on top of its songs
            bars.append(labels[bar])
        return bars

    monday = date(2026, 11, 30)  # W49's Monday
    assert marked(monday) == ["2026-W49"]
    assert marked(monday + timedelta(days=6)) == ["2026-W49"]  # Sunday: today may still bring a song
    assert marked(monday + timedelta(days=7)) == ["2026-W50"]  # W49 is over; W50, empty so far, is drawn
    assert marked(monday, [*journal, ("2026-W50", {"sad": 1})]) == ["2026-W49", "2026-W50"]  # dated ahead
    assert marked(None) == []  # no today given: nothing to tell
    assert marked(monday, [("2026-W49", {"sad": 7})]) == ["2026-W49"]  # the tallest bar: still inside the chart
    assert charts.weeks_in_words(journal, until=monday).endswith("1 in the latest week so far")
    assert charts.weeks_in_words(journal, until=monday + timedelta(days=7)).endswith(
        "the most in the week of 16 Nov (7), 0 in the latest week so far")


def test_each_chart_renders_a_png():
    pngs = [
        charts.mood_over_time([("2026-W47", {"happy": 2, "sad": 1})]),
        charts.year_in_pixels({date(2026, 1, 1): "calm", date(2026, 11, 24): "sad"}, 2026),
        charts.valence_arousal_map([("Creep", -0.6, -0.3, "sad"), ("Happy", 0.8, 0.7, "happy")]),
        charts.server_mood_of_week({"happy": 3, "energetic": 0, "sad": 1, "calm": 0}),
    ]
    assert all(png.startswith(PNG_MAGIC) and len(png) > 5_000 for png in pngs)


def test_song_titles_with_dollar_signs_are_drawn_as_typed_not_as_maths():
    # Titles are the user's (or a catalogue's) text: "$_$" or "a$\frac$" is not TeX to parse,
    # and one such song must not break /stats for good.
    songs = [("Ke$ha – Tik To$k", 0.6, 0.5, "happy"), ("x $^$ y", -0.2, 0.4, "energetic"),
             ("a$\\frac$", -0.5, -0.5, "sad")]
    assert charts.valence_arousal_map(songs).startswith(PNG_MAGIC)


def test_the_weekly_axis_names_each_week_by_its_monday_and_each_month_and_year_once():
    # "W51", "W52", "W01": an ISO week's number, which few people know, said nothing of when it was.
    labels = ["2025-W51", "2025-W52", "2026-W01", "2026-W02", "2026-W03", "2026-W06"]
    assert charts.week_tick_labels(labels) == ["15\nDec 2025", "22", "29", "5\nJan 2026", "12", "2\nFeb"]
    axes = charts.mood_over_time_figure([(label, {"sad": 1}) for label in labels]).axes[0]
    assert [tick.get_text() for tick in axes.get_xticklabels()][:2] == ["15\nDec 2025", "22"]
    assert axes.get_xlabel() == "weeks, each under its Monday"


def test_the_weekly_axis_never_writes_two_months_over_each_other():
    # Sixteen weeks from Monday 29 Dec 2025: the first bar's "Dec 2025" and the second's "Jan 2026",
    # 40 px apart, were written over each other ("Dec 2Ja2026"). Where the second bar starts another
    # month, the first bar's month is left to it: "29", then "5" over "Jan 2026". Each chart of two
    # years, 8 and 16 weeks long, whose first bar is a month's last week (the next bar's month one
    # bar away) is measured: no two month lines touch.
    from datetime import timedelta

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    assert charts.week_tick_labels(["2026-W01", "2026-W02", "2026-W03"]) == ["29", "5\nJan 2026", "12"]
    assert charts.week_tick_labels(["2025-W48", "2025-W49"]) == ["24", "1\nDec 2025"]
    monday = date(2025, 1, 6)
    while monday < date(2027, 1, 4):
        for weeks in (charts.MIN_WEEKS, charts.MAX_WEEKS):
            first = monday - timedelta(weeks=weeks - 1)
            if (first + timedelta(weeks=1)).month == first.month:
                continue
            fig = charts.mood_over_time_figure([(f"{first:%G-W%V}", {"sad": 1})], until=monday)
            renderer = FigureCanvasAgg(fig).get_renderer()
            months = [tick.get_window_extent(renderer) for tick in fig.axes[0].get_xticklabels() if "\n" in tick.get_text()]
            assert all(a.x1 + 2 < b.x0 for a, b in zip(months, months[1:])), (monday, weeks)
        monday += timedelta(weeks=1)


def test_the_mood_map_names_the_newest_songs_once_each():
    # Songs come oldest first (the newest dots are drawn on top): the names go to the latest ones,
    # and a song journaled on many days takes one name, not a pile of the same text.
    songs = [(f"Song {n}", 0.1, 0.2, "calm") for n in range(30)] + [("Creep", -0.6, -0.3, "sad")] * 5
    names = [name for name, _, _ in charts.map_labels(songs)]
    assert names == ["Creep", *(f"Song {n}" for n in range(29, 18, -1))]


def test_a_name_too_long_for_a_label_is_named_by_its_title_and_no_label_is_drawn_twice():
    # Cut to 24 characters, "Artist – Title" kept the artist alone: each of Bach's songs was
    # "Johann Sebastian Bach –…".
    songs = [("Johann Sebastian Bach – Cello Suite No. 1", 0.1, -0.5, "calm"),
             ("Johann Sebastian Bach – Cello Suite No. 2", 0.2, -0.5, "calm"),
             ("Red Hot Chili Peppers, Anderson .Paak – Can't Stop", 0.5, 0.6, "happy"),
             ("Someone Else Entirely – Can't Stop", 0.4, 0.5, "happy"),
             ("Radiohead – Creep", -0.6, -0.3, "sad")]
    assert [name for name, _, _ in charts.map_labels(songs)] == [
        "Radiohead – Creep", "Can't Stop", "Cello Suite No. 2", "Cello Suite No. 1"]


MIXED_SCRIPTS = [("🎶🔥 Fuego 💃🏽", 0.6, 0.7, "happy"), ("아이유 – 좋은 날", 0.5, -0.4, "calm"),
                 ("Fairuz – أعطني الناي", -0.3, -0.2, "sad"), ("Sigur Rós – Hoppípolla", 0.2, -0.6, "calm"),
                 ("이 밤 – 아이유 IU", 0.4, -0.5, "calm"),  # mostly Hangul: without a CJK font, not named "IU"
                 ("नमस्ते – लता", -0.5, 0.4, "energetic"), ("สวัสดี ☀️", -0.4, 0.6, "energetic"),  # no font has these
                 ("YOASOBI – 夜に駆ける", 0.7, 0.3, "happy")]


def png_without_warnings(fig) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of each glyph it cannot draw (an empty box)
        return charts._png(fig)


def as_on_a_fresh_start() -> None:
    """The fonts as a fresh start finds them: matplotlib's font list, made after the package was
    installed, holds its other file first, of the same family name and without Hangul
    (/usr/share/fonts is searched, /usr/share/fonts-droid-fallback not), and the charts have
    registered none yet."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    full = FT2Font("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")
    font_manager.fontManager.ttflist.insert(0, font_manager.ttfFontProperty(full))
    charts._name_fonts.cache_clear()


def test_two_maps_drawn_at_once_on_a_fresh_start_never_lose_the_cjk_font():
    # Each thread that found no font registered yet registered it: took the family out of matplotlib's
    # list, then added its file back. Two maps drawn at once (two users' /stats after a start: two
    # renders run at once), one thread took it out while the other was writing its names: they came in
    # DejaVu Sans (empty boxes for kana, kanji and Hangul) or in the file without Hangul, and findfont
    # kept that answer for every chart after it, until a restart. The font is registered once, while
    # the others wait.
    import sys
    import threading

    from matplotlib.font_manager import FontProperties, findfont

    threads, rounds, lookups = 4, 30, 20
    wrong: list[str] = []

    def draw(start: threading.Barrier) -> None:
        start.wait()
        family = charts._name_fonts(charts.CJK_FONT)[0][-1]
        for _ in range(lookups):  # as a map's names are measured and drawn, each glyph's font looked up
            try:
                found = findfont(FontProperties(family=family), fallback_to_default=False, rebuild_if_missing=False)
            except ValueError:
                found = "none"
            if found != charts.CJK_FONT:
                wrong.append(found)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # a thread switch at almost every step: a window between two is met
    try:
        for _ in range(rounds):
            as_on_a_fresh_start()
            start = threading.Barrier(threads)
            drawing = [threading.Thread(target=draw, args=(start,)) for _ in range(threads)]
            for thread in drawing:
                thread.start()
            for thread in drawing:
                thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert not wrong, f"{len(wrong)} of {threads * rounds * lookups} lookups: {sorted(set(wrong))}"
    assert charts.drawable("아이유 – 좋은 날") == "아이유 – 좋은 날"


def test_without_the_cjk_font_song_titles_are_named_on_the_map_in_the_glyphs_dejavu_has():
    # A machine set up before the CJK font was installed: DejaVu Sans has no emoji, no Hangul, no
    # kana or kanji; such characters would be drawn as empty boxes.
    missing = "/nonexistent/DroidSansFallback.ttf"
    names = ["YOASOBI", "Sigur Rós – Hoppípolla", "Fairuz – أعطني الناي", "Fuego"]  # the kanji and kana left out
    assert [name for name, _, _ in charts.map_labels(MIXED_SCRIPTS, fallback=missing)] == names
    fig = charts.mood_map_figure(MIXED_SCRIPTS, fallback=missing)
    assert sorted(text.get_text() for text in fig.axes[0].texts[4:]) == sorted(names)  # after the quadrants' names
    assert png_without_warnings(fig).startswith(PNG_MAGIC)


def test_japanese_and_korean_song_titles_are_written_on_the_map_from_the_cjk_fallback_font():
    # DejaVu Sans writes the Latin letters, Droid Sans Fallback (fonts-droid-fallback) each kana,
    # kanji and Hangul syllable DejaVu lacks; emoji, Devanagari and Thai, which neither has, are
    # still left out (a name mostly of them not named at all).
    from matplotlib.font_manager import FontProperties, findfont
    from matplotlib.ft2font import FT2Font

    as_on_a_fresh_start()
    names = ["YOASOBI – 夜に駆ける", "이 밤 – 아이유 IU", "Sigur Rós – Hoppípolla", "Fairuz – أعطني الناي",
             "아이유 – 좋은 날", "Fuego"]
    assert [name for name, _, _ in charts.map_labels(MIXED_SCRIPTS)] == names
    # A Korean name typed on a Mac comes decomposed (NFD), as jamo: it is written as syllables.
    assert charts.drawable(unicodedata.normalize("NFD", "아이유 – 좋은 날")) == "아이유 – 좋은 날"
    fig = charts.mood_map_figure(MIXED_SCRIPTS)
    labels = {text.get_text(): text for text in fig.axes[0].texts[4:]}  # after the four quadrants' names
    assert sorted(labels) == sorted(names)
    dejavu, fallback = FT2Font(findfont(FontProperties())), FT2Font(charts.CJK_FONT)
    for name in ("YOASOBI – 夜に駆ける", "아이유 – 좋은 날"):
        fonts = [findfont(FontProperties(family=family), fallback_to_default=False)
                 for family in labels[name].get_fontfamily()]
        assert fonts == [dejavu.fname, charts.CJK_FONT]
        cjk = [c for c in name if ord(c) >= 0x3000]
        assert len(cjk) >= 5 and all(fallback.get_char_index(ord(c)) and not dejavu.get_char_index(ord(c)) for c in cjk)
    # Each glyph drawn is in one of the two fonts: no empty box, no warning.
    assert png_without_warnings(fig).startswith(PNG_MAGIC)


def test_the_year_in_pixels_colours_each_days_square_and_leaves_the_others_blank():
    days = {date(2026, 3, 14): "happy", date(2026, 7, 1): "sad", date(2026, 11, 24): "calm",
            date(2026, 11, 25): "energetic"}
    first, last = date(2026, 1, 1), date(2026, 12, 31)  # 1 January 2026 is a Thursday
    png = charts.year_in_pixels(days, 2026)

    for day, mood in days.items():
        assert square_colour(png, first, last, day) == rgb(charts.MOOD_COLOURS[mood]), day
    for blank in (first, date(2026, 3, 15), date(2026, 11, 23), last):  # days without an entry
        assert square_colour(png, first, last, blank) == rgb(charts.EMPTY_COLOUR), blank
    for outside in (date(2025, 12, 29), date(2025, 12, 31), date(2027, 1, 3)):  # not in 2026: no square
        assert square_colour(png, first, last, outside) == WHITE, outside


def test_in_january_the_pixels_show_the_last_365_days_so_the_year_just_ended_is_seen():
    assert charts.pixel_window(date(2026, 1, 1)) == (date(2025, 1, 2), date(2026, 1, 1))
    assert charts.pixel_window(date(2026, 1, 31)) == (date(2025, 2, 1), date(2026, 1, 31))
    assert charts.pixel_window(date(2026, 2, 1)) == (date(2026, 1, 1), date(2026, 12, 31))
    assert charts.pixel_window(date(2026, 12, 31)) == (date(2026, 1, 1), date(2026, 12, 31))
    # A day with an entry after today (dated in a zone ahead of the user's now) is in the window.
    assert charts.pixel_window(date(2026, 1, 20), date(2026, 1, 21)) == (date(2025, 1, 22), date(2026, 1, 21))
    assert charts.pixel_window(date(2026, 12, 31), date(2027, 1, 1)) == (date(2026, 1, 2), date(2027, 1, 1))
    assert charts.pixel_window(date(2026, 1, 31), date(2026, 2, 1)) == (date(2026, 1, 1), date(2026, 12, 31))
    assert charts.pixel_window(date(2026, 6, 1), date(2026, 5, 1)) == (date(2026, 1, 1), date(2026, 12, 31))
    assert charts.pixels_name(date(2026, 1, 1), date(2026, 12, 31)) == "2026"
    assert charts.pixels_name(date(2025, 1, 2), date(2026, 1, 1)) == "2 Jan 2025 – 1 Jan 2026"

    first, last = charts.pixel_window(date(2026, 1, 1))
    days = {date(2025, 1, 15): "calm", date(2025, 12, 24): "sad", date(2026, 1, 1): "happy"}
    png = charts.days_in_pixels(days, first, last)
    for day, mood in days.items():
        assert square_colour(png, first, last, day) == rgb(charts.MOOD_COLOURS[mood]), day
    assert square_colour(png, first, last, date(2025, 12, 25)) == rgb(charts.EMPTY_COLOUR)
    assert square_colour(png, first, last, date(2025, 1, 1)) == WHITE  # the day before the window
    assert square_colour(png, first, last, date(2026, 1, 2)) == WHITE  # tomorrow


def test_the_days_to_come_look_unlike_the_days_gone_without_a_song_and_today_is_ringed():
    # Both were one grey, and nothing marked today: on 24 November an empty week in November and
    # the rest of December read alike, as days missed.
    today = date(2026, 11, 24)
    days = {date(2026, 3, 14): "happy", today: "calm", date(2026, 12, 5): "sad"}  # the 5th: a zone ahead
    first, last = date(2026, 1, 1), date(2026, 12, 31)
    png = charts.days_in_pixels(days, first, last, today=today)
    image = pixels_of(png)

    for day, mood in days.items():
        assert square_colour(png, first, last, day) == rgb(charts.MOOD_COLOURS[mood]), day
    for gone in (first, date(2026, 11, 17), date(2026, 11, 23)):
        assert square_colour(png, first, last, gone) == rgb(charts.EMPTY_COLOUR), gone
    for to_come in (date(2026, 11, 25), date(2026, 12, 4), last):
        assert square_colour(png, first, last, to_come) == rgb(charts.TO_COME_COLOUR), to_come

    def ringed(day):  # pixels of the ring's dark colour in and around the day's square
        y, x, side = square_place(image, first, last, day)
        cell = image[round(y - side / 2):round(y + side / 2) + 1, round(x - side / 2):round(x + side / 2) + 1]
        return int((cell.astype(int) <= 80).all(axis=2).sum())

    side = square_place(image, first, last, today)[2]
    assert ringed(today) >= 4 * 0.8 * side, ringed(today)  # four sides, a pixel thick at least
    assert ringed(date(2026, 11, 23)) == ringed(date(2026, 11, 25)) == ringed(date(2026, 11, 17)) == 0


def legend_of(fig) -> list[str]:
    return [text.get_text() for text in fig.axes[0].get_legend().get_texts() if text.get_text()]


def test_the_pixels_legend_names_each_kind_of_square_drawn():
    first, last = date(2026, 1, 1), date(2026, 12, 31)
    assert legend_of(charts.pixels_figure({}, first, last, today=date(2026, 11, 24))) == [
        *MOODS, "no song", "to come", "today"]
    assert legend_of(charts.pixels_figure({}, first, last, today=last)) == [*MOODS, "no song", "today"]
    january = charts.pixel_window(date(2026, 1, 10))  # up to today: no day to come
    assert legend_of(charts.pixels_figure({}, *january, today=date(2026, 1, 10))) == [*MOODS, "no song", "today"]
    assert legend_of(charts.pixels_figure({}, first, last)) == [*MOODS, "no song"]  # no today given: nothing to mark


def test_the_pixel_chart_fits_in_the_room_around_its_figure_so_it_is_drawn_once():
    # Past ROOM_INCHES, the cut to a PNG falls back to savefig's tight crop, which draws the chart
    # twice: the pixel legend in two columns reached past it, and the chart took twice as long.
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = charts.pixels_figure({}, date(2026, 1, 1), date(2026, 12, 31), today=date(2026, 11, 24))
    width, height = fig.get_size_inches()
    box = fig.get_tightbbox(FigureCanvasAgg(fig).get_renderer())  # inches
    room = charts.ROOM_INCHES - charts.PAD_INCHES
    assert -room <= box.x0 and box.x1 <= width + room and -room <= box.y0 and box.y1 <= height + room, box


def test_a_weeks_moods_stack_in_the_legends_order_each_as_tall_as_its_count():
    # Read down, the legend names the segments as the eye meets them, from the top of the stack:
    # it listed happy first while happy was the bottom segment and calm the top one.
    week = {"happy": 2, "energetic": 1, "sad": 1, "calm": 3}
    png = charts.mood_over_time([("2026-W40", week)], until=date(2026, 11, 30))
    image = pixels_of(png)
    half = image.shape[1] // 2  # W40 is the first of ten bars, the others empty; the legend is on the right

    def extent(part, mood):
        ys, xs = np.nonzero((part == rgb(charts.MOOD_COLOURS[mood])).all(axis=2))
        return ys.min(), ys.max() + 1, xs.min(), xs.max() + 1

    bars = {mood: extent(image[:, :half], mood) for mood in MOODS}
    legend = {mood: extent(image[:, half:], mood) for mood in MOODS}
    assert sorted(MOODS, key=lambda mood: bars[mood][0]) == sorted(MOODS, key=lambda mood: legend[mood][0]) == list(MOODS)
    stacked = sorted(bars.values())
    for (_, upper_bottom, upper_left, upper_right), (lower_top, _, lower_left, lower_right) in zip(stacked, stacked[1:]):
        assert 0 <= lower_top - upper_bottom <= 2  # each right on top of the next
        assert abs(upper_left - lower_left) <= 1 and abs(upper_right - lower_right) <= 1
    unit = bars["sad"][1] - bars["sad"][0]  # one song
    for mood, songs in week.items():
        assert abs((bars[mood][1] - bars[mood][0]) - songs * unit) <= 3, mood


def test_every_chart_keeps_its_whole_content_inside_a_white_margin():
    # The charts are cut to their content: nothing cut off (the legends and labels reach past the
    # figure, so ink would touch an edge), and no wide white border either.
    pad = round(charts.PAD_INCHES * charts.DPI)
    pngs = [
        charts.mood_over_time([("2026-W47", {"happy": 2, "sad": 1})]),
        charts.year_in_pixels({date(2026, 1, 1): "calm"}, 2026),
        charts.valence_arousal_map([("Creep", -0.6, -0.3, "sad"), ("Happy", 0.8, 0.7, "happy")]),
        charts.server_mood_of_week({"happy": 3, "energetic": 0, "sad": 1, "calm": 0}),
    ]
    for png in pngs:
        inked = (pixels_of(png) != 255).any(axis=2)
        rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
        height, width = inked.shape
        margins = rows[0], height - 1 - rows[-1], cols[0], width - 1 - cols[-1]
        assert all(pad // 2 <= margin <= 2 * pad for margin in margins), margins


def test_song_names_on_the_map_never_overlap_and_the_newer_name_is_kept():
    # Songs of one mood sit close together: drawn as they came, two 24-character names a few
    # pixels apart ran into one unreadable line ("PharrellArtist 88 – Song 321").
    songs = [("Radiohead – Creep", -0.5, -0.5, "sad"), ("Artist 88 – Song 321", 0.5, 0.5, "happy"),
             ("Pharrell – Happy", 0.53, 0.51, "happy")]  # oldest first
    fig = charts.mood_map_figure(songs)
    named = [note.get_text() for note in fig.axes[0].texts if note.get_text() not in charts.MOOD_COLOURS]
    assert named == ["Pharrell – Happy", "Radiohead – Creep"]

    rng = random.Random(7)  # the newest of 300 songs crowded in their quadrants, as real moods are
    crowded = [(f"Artist {n} – Song {n}", sx * rng.uniform(0.05, 0.95), sy * rng.uniform(0.05, 0.95), mood)
               for n in range(300) for mood, (sx, sy) in [rng.choice(list(QUADRANTS.items()))]]
    fig = charts.mood_map_figure(crowded)
    renderer = fig.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in fig.axes[0].texts]  # quadrant names too
    assert all(not a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert len(boxes) == len(charts.MOOD_COLOURS) + charts.MAP_LABELS  # still a dozen names


def map_names(fig) -> list:
    """The map's song names (its Text artists but the quadrants')."""
    return [text for text in fig.axes[0].texts if text.get_text() not in charts.MOOD_COLOURS]


def test_a_name_by_the_maps_right_edge_is_written_left_of_its_dot_not_into_the_legend():
    # A song at valence 0.9 had its name written rightwards past the map's edge, over the legend's
    # "energetic" and "sad": both unreadable. It goes to the left of its dot where the right has no room.
    songs = [("Some Artist – And An Even Longer Title", 0.9, 0.9, "happy"), ("Artist 332 – Song 332", 0.92, -0.95, "calm"),
             ("Radiohead – Creep", -0.5, -0.4, "sad")]
    fig = charts.mood_map_figure(songs)
    fig.canvas.draw()  # places each name's backing
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    frame, legend = ax.get_window_extent(renderer), ax.get_legend().get_window_extent(renderer)
    names = {text.get_text(): text for text in map_names(fig)}
    assert set(names) == {"And An Even Longer Title", "Artist 332 – Song 332", "Radiohead – Creep"}
    for (_, valence, arousal, _), name in zip(songs, ("And An Even Longer Title", "Artist 332 – Song 332", "Radiohead – Creep")):
        backing = names[name].get_bbox_patch().get_window_extent(renderer)
        assert frame.x0 <= backing.x0 and backing.x1 <= frame.x1 and frame.y0 <= backing.y0 and backing.y1 <= frame.y1, name
        assert not backing.overlaps(legend), name
        dot_x, _ = ax.transData.transform((valence, arousal))
        assert backing.x1 < dot_x if valence > 0.5 else backing.x0 > dot_x, name  # beside its dot, not over it


def test_the_song_names_on_the_map_read_at_wcag_4_5_to_1_over_the_dots_under_them():
    # Names were written straight over the dots: the text's #263238 on a sad dot's deep blue is 1.4:1,
    # on an energetic one 2.5:1, on a calm one 4.3:1. Each name now has a white backing, opaque enough that the text reads
    # at 4.5:1 over any mood's colour under it, and no wider than the name it carries.
    from matplotlib.colors import to_rgb

    rng = random.Random(3)
    crowded = [(f"Artist {n} – Song {n}", rng.uniform(-1, 1), rng.uniform(-1, 1), rng.choice(MOODS)) for n in range(300)]
    fig = charts.mood_map_figure(crowded)
    fig.canvas.draw()  # places each name's backing
    renderer = fig.canvas.get_renderer()
    names = map_names(fig)
    assert len(names) == charts.MAP_LABELS
    for text in names:
        patch = text.get_bbox_patch()
        assert patch is not None, text.get_text()
        face, alpha = to_rgb(patch.get_facecolor()), patch.get_facecolor()[3]
        for mood, colour in charts.MOOD_COLOURS.items():
            behind = tuple(alpha * f + (1 - alpha) * c for f, c in zip(face, to_rgb(colour)))
            assert contrast(to_rgb(text.get_color()), behind) >= 4.5, (text.get_text(), mood)
        box, backing = text.get_window_extent(renderer), patch.get_window_extent(renderer)
        assert backing.width - box.width <= 6 and backing.height - box.height <= 6  # a backing, not a card
    backings = [text.get_bbox_patch().get_window_extent(renderer) for text in names]
    assert all(not a.overlaps(b) for i, a in enumerate(backings) for b in backings[i + 1:])


def test_the_newest_song_is_drawn_on_top_of_older_ones_at_the_same_place():
    # A mood is the likeliest of four, its dot the blend of all four: a song called happy can sit
    # among calm ones. The newest dot is the one named, so it must not hide under an older one.
    songs = [("Older calm", 0.3, -0.1, "calm"), ("Newest", 0.3, -0.1, "happy")]
    fig = charts.mood_map_figure(songs)
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[:, :, :3]
    x, y = fig.axes[0].transData.transform((0.3, -0.1))
    centre = image[image.shape[0] - round(y), round(x)].astype(int)
    nearest = min(charts.MOOD_COLOURS, key=lambda mood: np.abs(centre - rgb(charts.MOOD_COLOURS[mood])).sum())
    assert nearest == "happy"


def test_each_chart_in_words_gives_the_numbers_it_draws():
    # The alt text of a chart a reader cannot see: the weeks shown (not the whole journal), the
    # days so far (not the year's future ones), the map's dots (the latest SONGS_LIMIT of them).
    weekly = [("2025-W40", {"sad": 9}), ("2026-W47", {"happy": 2, "sad": 1}), ("2026-W49", {"happy": 1, "calm": 2})]
    assert charts.weeks_in_words(weekly, until=date(2026, 12, 4)) == (
        "the 16 weeks from 17 Aug to 30 Nov 2026, 6 songs (happy 3, energetic 0, sad 1, calm 2); the most in the "
        "week of 16 Nov (3), 3 in the latest week so far")  # the earliest of a tie; 2025's sad week is past the sixteen shown
    across = [("2025-W52", {"happy": 1}), ("2026-W02", {"sad": 2})]
    assert charts.weeks_in_words(across, until=date(2026, 1, 14)).startswith(
        "the 8 weeks from 24 Nov 2025 to 12 Jan 2026, 3 songs")
    assert charts.weeks_in_words([]) == "no songs yet"

    days = {date(2025, 1, 1): "sad", date(2025, 3, 1): "calm", date(2026, 1, 10): "happy"}
    first, last = charts.pixel_window(date(2026, 1, 10))  # January: the last 365 days, up to today
    assert charts.pixels_in_words(days, first, last, date(2026, 1, 10)) == (
        "2 of 365 days with a song (happy 1, energetic 0, sad 0, calm 1)")
    one = {date(2026, 12, 5): "sad"}  # dated in a zone ahead of the user's now: still counted
    assert charts.pixels_in_words(one, date(2026, 1, 1), date(2026, 12, 31), date(2026, 12, 4)) == (
        "1 of 339 days so far with a song (happy 0, energetic 0, sad 1, calm 0)")

    songs = [("Song", 0.5, 0.5, "happy")] * 999 + [("Creep", -0.5, -0.5, "sad")]
    assert charts.map_in_words(songs, of_total=10_000) == (
        "the latest 1000 of 10000 entries (happy 999, energetic 0, sad 1, calm 0) as 2 dots, entries of one song "
        f"sharing a dot; {charts.MAP_QUADRANTS}")  # 999 answers of one song are one dot, not 999 songs
    # One song is a dot, not "1 song as dots".
    one = charts.map_in_words(songs[-1:], of_total=1)
    assert one.startswith("1 song as a dot (happy 0, energetic 0, sad 1, calm 0)")


def test_the_maps_quadrant_names_in_words_are_where_the_map_draws_them():
    fig = charts.mood_map_figure([])
    ax = fig.axes[0]
    drawn = {text.get_text(): text.get_position() for text in ax.texts}
    for mood, (sx, sy) in QUADRANTS.items():
        x, y = drawn[mood]
        side = f"{'upper' if sy > 0 else 'lower'} {'right' if sx > 0 else 'left'}"
        assert (x > 0) == (sx > 0) and (y > 0) == (sy > 0) and f"{mood} {side}" in charts.MAP_QUADRANTS


def contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """WCAG 2's contrast ratio of two sRGB colours (components 0..1)."""
    def luminance(colour):
        r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in colour[:3])
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_maps_quadrant_names_can_be_read_on_their_quadrants():
    # Written in the mood's own colour, "happy" was yellow on white (1.8:1) and "calm" 3.0:1 on its
    # green wash: faint to anyone, unreadable to many. WCAG asks 4.5:1 of text under 14 pt bold.
    from colorsys import rgb_to_hsv

    from matplotlib.colors import to_rgb

    fig = charts.mood_map_figure([("Creep", -0.6, -0.3, "sad")])
    names = {text.get_text(): text for text in fig.axes[0].texts if text.get_text() in charts.MOOD_COLOURS}
    assert set(names) == set(MOODS)
    for mood, text in names.items():
        tint = to_rgb(charts.MOOD_COLOURS[mood])
        background = tuple(1 - charts.QUADRANT_TINT + charts.QUADRANT_TINT * c for c in tint)
        assert contrast(to_rgb(text.get_color()), background) >= 4.5, mood  # 13 pt bold: under WCAG's large text
        hues = [rgb_to_hsv(*to_rgb(colour))[0] for colour in (text.get_color(), charts.MOOD_COLOURS[mood])]
        assert abs(hues[0] - hues[1]) < 0.03, mood  # still its mood's hue, a darker shade


def test_the_mood_of_the_week_chart_names_no_platform():
    # /servermood answers in a Discord server and in a Telegram group alike: a group's chart was
    # titled "This server's mood of the week", where the text beside it says "here".
    fig = charts.server_mood_figure({"happy": 3, "energetic": 0, "sad": 1, "calm": 0})
    title = fig.axes[0].get_title(loc="left")
    assert title and not any(word in title.lower() for word in ("server", "group")), title


def test_the_mood_of_the_week_chart_counts_what_its_text_counts():
    # A song three members played is three votes (one per member and song), as the answer's text
    # says ("the last 7 days, one vote per member and song: sad 3"); the chart's axis beside it said
    # "songs in the last 7 days": 3 for one song, and a reader of the two saw them disagree.
    from bot.frontends import render

    fig = charts.server_mood_figure({"happy": 0, "energetic": 0, "sad": 3, "calm": 0})
    axis = fig.axes[0].get_xlabel()
    assert "songs" not in axis.replace("member and song", ""), axis
    assert "the last 7 days" in axis and render.VOTES in axis, axis


def test_every_word_on_every_chart_reads_at_wcag_4_5_to_1():
    # Titles, ticks, legends, counts and names: each on white, and on the map on any quadrant's wash.
    from matplotlib.colors import to_rgb
    from matplotlib.text import Text

    first, last = date(2026, 1, 1), date(2026, 12, 31)
    figures = {"weeks": charts.mood_over_time_figure([("2026-W40", {"happy": 2, "sad": 1})], until=date(2026, 11, 20)),
               "pixels": charts.pixels_figure({date(2026, 3, 2): "calm"}, first, last, today=date(2026, 11, 20)),
               "map": charts.mood_map_figure([("Creep", -0.6, -0.3, "sad"), ("Happy", 0.6, 0.5, "happy")]),
               "server": charts.server_mood_figure({"happy": 3, "energetic": 0, "sad": 1, "calm": 2})}
    washes = [tuple(1 - charts.QUADRANT_TINT + charts.QUADRANT_TINT * c for c in to_rgb(colour))
              for colour in charts.MOOD_COLOURS.values()]
    for name, fig in figures.items():
        backgrounds = [(1.0, 1.0, 1.0), *(washes if name == "map" else [])]
        words = [text for text in fig.findobj(Text) if text.get_visible() and text.get_text().strip()]
        assert len(words) > 5, name
        for text in words:
            worst = min(contrast(to_rgb(text.get_color()), background) for background in backgrounds)
            assert worst >= 4.5, (name, text.get_text(), round(worst, 2))


def test_the_maps_dots_tell_their_mood_by_shape_too_and_its_legend_says_which():
    # A dot's mood is the likeliest of four, its place their blend: a happy song may sit among calm
    # ones, where its colour alone said what it was. Each mood has its own marker, in one collection
    # still (the newest dot on top), and a legend names each shape in its mood's colour.
    from matplotlib.collections import PathCollection
    from matplotlib.markers import MarkerStyle

    def outline(marker) -> np.ndarray:
        style = MarkerStyle(marker)
        return style.get_path().transformed(style.get_transform()).vertices

    songs = [("Odd one", 0.4, -0.5, "happy"), ("Calm one", 0.5, -0.5, "calm"), ("Up", -0.5, 0.5, "energetic"),
             ("Down", -0.5, -0.5, "sad"), ("Another", 0.6, 0.6, "happy")]
    fig = charts.mood_map_figure(songs)
    ax = fig.axes[0]
    [dots] = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len({charts.MOOD_MARKERS[mood] for mood in MOODS}) == len(MOODS)
    paths = dots.get_paths()
    assert len(paths) == len(songs)
    for path, (*_, mood) in zip(paths, songs):
        assert np.allclose(path.vertices, outline(charts.MOOD_MARKERS[mood])), mood
    assert legend_of(fig) == list(MOODS)
    for handle, mood in zip(ax.get_legend().legend_handles, MOODS):
        assert handle.get_marker() == charts.MOOD_MARKERS[mood]
        assert handle.get_markerfacecolor().upper() == charts.MOOD_COLOURS[mood]


def test_each_day_of_the_pixel_chart_carries_its_moods_shape_as_well_as_its_colour():
    # The pixel chart had nothing but colour: each square now holds its mood's map marker, drawn in
    # a colour that stands out on it, and the legend's swatches hold them too.
    first, last = date(2026, 1, 1), date(2026, 12, 31)
    days = {date(2026, 3, 3): "happy", date(2026, 3, 4): "energetic", date(2026, 3, 5): "sad", date(2026, 3, 6): "calm"}
    png = charts.days_in_pixels(days, first, last, today=date(2026, 11, 20))
    shapes = {mood: square_glyph(png, first, last, day) for day, mood in days.items()}
    for day, mood in days.items():
        assert square_colour(png, first, last, day) == rgb(charts.MOOD_COLOURS[mood]), mood
        assert 4 <= shapes[mood].sum() <= shapes[mood].size / 2, mood  # a shape inside the square, not over it
    for i, a in enumerate(MOODS):
        for b in MOODS[i + 1:]:
            assert (shapes[a] != shapes[b]).sum() >= 3, (a, b)
    assert not square_glyph(png, first, last, date(2026, 3, 7)).any()  # a day without a song: blank
    from matplotlib.lines import Line2D

    legend = charts.pixels_figure(days, first, last).axes[0].get_legend()
    assert [line.get_marker() for line in legend.findobj(Line2D)] == [charts.MOOD_MARKERS[m] for m in MOODS]
