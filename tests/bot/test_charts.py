"""Charts are PNG bytes in one consistent palette; the weekly chart reads as a time axis."""
from __future__ import annotations

import warnings
from datetime import date

from bot import charts
from inference.result import MOODS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_every_mood_has_its_own_colour():
    assert set(charts.MOOD_COLOURS) == set(MOODS)
    assert len(set(charts.MOOD_COLOURS.values())) == len(MOODS)


def test_silent_weeks_show_as_gaps_and_the_axis_spans_at_least_two_months():
    weeks = charts.continuous_weeks([("2025-W51", {"sad": 1}), ("2026-W02", {"happy": 2})])
    labels = [label for label, _ in weeks]
    assert labels[-4:] == ["2025-W51", "2025-W52", "2026-W01", "2026-W02"]  # across the new year
    assert len(labels) == charts.MIN_WEEKS and weeks[-1][1] == {"happy": 2} and weeks[-2][1] == {}
    long_history = charts.continuous_weeks([("2024-W01", {"sad": 1}), ("2026-W10", {"calm": 1})])
    assert len(long_history) == charts.MAX_WEEKS and long_history[-1][0] == "2026-W10"


def test_the_weekly_axis_runs_to_this_week_when_given_today():
    weeks = charts.continuous_weeks([("2026-W09", {"sad": 1}), ("2026-W10", {"calm": 1})], until=date(2026, 12, 20))
    assert weeks[-1] == ("2026-W51", {}) and len(weeks) == charts.MAX_WEEKS  # months of silence show as such
    assert charts.continuous_weeks([("2026-W10", {"calm": 1})], until=date(2026, 3, 4))[-1][0] == "2026-W10"


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


def test_the_weekly_axis_names_each_year_once_so_sixteen_labels_stay_apart():
    labels = ["2025-W51", "2025-W52", "2026-W01", "2026-W02", "2026-W03"]
    assert charts.week_tick_labels(labels) == ["W51\n2025", "W52", "W01\n2026", "W02", "W03"]


def test_the_mood_map_names_the_newest_songs_once_each():
    # Songs come oldest first (the newest dots are drawn on top): the names go to the latest ones,
    # and a song journaled on many days takes one name, not a pile of the same text.
    songs = [(f"Song {n}", 0.1, 0.2, "calm") for n in range(30)] + [("Creep", -0.6, -0.3, "sad")] * 5
    names = [name for name, _, _ in charts.map_labels(songs)]
    assert names == ["Creep", *(f"Song {n}" for n in range(29, 18, -1))]


def test_song_titles_are_named_on_the_map_in_the_glyphs_the_font_has():
    # The chart's font has no emoji and no Hangul: such characters would be drawn as empty boxes.
    songs = [("🎶🔥 Fuego 💃🏽", 0.6, 0.7, "happy"), ("아이유 – 좋은 날", 0.5, -0.4, "calm"),
             ("Fairuz – أعطني الناي", -0.3, -0.2, "sad"), ("Sigur Rós – Hoppípolla", 0.2, -0.6, "calm")]
    assert [name for name, _, _ in charts.map_labels(songs)] == ["Sigur Rós – Hoppípolla", "Fairuz – أعطني الناي", "Fuego"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of each glyph it cannot draw
        assert charts.valence_arousal_map(songs).startswith(PNG_MAGIC)
