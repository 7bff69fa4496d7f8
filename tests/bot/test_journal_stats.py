"""/stats in words: each chart comes with a caption (Discord's alt text, Telegram's and the
console's caption) saying what it shows, for a reader who cannot see the picture."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from bot.replies import StatsReply
from storage.models import JournalEntry
from tests.bot.test_journal import ALICE_DM, ALICE_REF, journal_usecase

QUADRANTS = "happy upper right, energetic upper left, sad lower left, calm lower right"


async def answered(db, n: int, day: date, track_key: str, title: str, mood: str, valence: float, arousal: float,
                   *, minute: int = 0) -> None:
    """Alice's answer to prompt p`n` on `day` (at 20:`minute` UTC) with that song and mood."""
    await db.journal.add(JournalEntry(user=ALICE_REF, local_date=day, prompt_id=f"p{n}", phrase="Today,",
                                      reply_text="x", track_key=track_key, track_title=title, mood=mood,
                                      valence=valence, arousal=arousal,
                                      created_at=datetime(day.year, day.month, day.day, 20, minute, tzinfo=timezone.utc)))


async def captions_on_4_december(db, counting) -> dict[str, str]:
    """Each chart's caption, by file name, of Alice's /stats asked at noon UTC on 4 Dec 2026."""
    now = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
    reply = await journal_usecase(db, counting, now=lambda: now).stats(ALICE_DM)
    assert isinstance(reply, StatsReply)
    return {chart.filename: chart.caption for chart in reply.charts}


async def test_each_chart_says_in_words_what_it_shows(db, counting):
    """Three answers on two days of late November (the 25th answered twice, happy last), asked on
    4 December: the captions give the charts' own numbers, not only their titles."""
    answers = [(date(2026, 11, 24), "sad", -0.5, -0.4), (date(2026, 11, 25), "calm", 0.4, -0.3),
               (date(2026, 11, 25), "happy", 0.6, 0.5)]
    for n, (day, mood, valence, arousal) in enumerate(answers):
        await answered(db, n, day, f"t{n}", f"Song {n}", mood, valence, arousal, minute=n)
    captions = await captions_on_4_december(db, counting)
    assert captions["moods-by-week.png"] == (
        "Your moods, week by week: the 8 weeks from 12 Oct to 30 Nov 2026, 3 songs (happy 1, energetic 0, sad 1, "
        "calm 1); the most in the week of 23 Nov (3), 0 in the latest week so far")  # a Friday
    assert captions["year-in-pixels.png"] == (  # the 25th is happy, its latest answer; 338 days up to today
        "2026 in pixels: 2 of 338 days so far with a song (happy 1, energetic 0, sad 1, calm 0); "
        "1 day had more than one song: it shows its latest")
    assert captions["mood-map.png"] == (
        f"Your songs on the valence/arousal map: 3 songs as dots (happy 1, energetic 0, sad 1, calm 1); {QUADRANTS}")


async def test_the_pixels_caption_counts_the_days_shown_that_had_several_songs(db, counting):
    """A day's square takes its latest entry's mood: the caption said nothing of the days that held
    more. It counts those in the window drawn (31 Dec 2025, answered twice, is not in 2026's), and
    says nothing where each day has one song."""
    answers = [(date(2025, 12, 31), "sad"), (date(2025, 12, 31), "calm"), (date(2026, 11, 20), "happy"),
               (date(2026, 11, 24), "sad"), (date(2026, 11, 24), "calm"), (date(2026, 11, 24), "sad"),
               (date(2026, 11, 25), "calm"), (date(2026, 11, 25), "happy"), (date(2026, 12, 1), "calm"),
               (date(2026, 12, 1), "energetic")]
    for n, (day, mood) in enumerate(answers):
        await answered(db, n, day, f"t{n}", f"Song {n}", mood, 0.1, 0.1, minute=n)
    captions = await captions_on_4_december(db, counting)
    assert captions["year-in-pixels.png"] == (
        "2026 in pixels: 4 of 338 days so far with a song (happy 2, energetic 1, sad 1, calm 0); "
        "3 days had more than one song: each shows its latest")


async def test_the_map_caption_counts_the_dots_one_song_answered_again_shares(db, counting):
    """One song answered on 23 days is 23 entries at one spot: the map shows one dot, and its
    caption said "23 songs as dots"."""
    for n in range(23):
        day = date(2026, 11, 1 + n)
        await answered(db, n, day, "t", "Radiohead – Creep", "sad", -0.5, -0.4)
    captions = await captions_on_4_december(db, counting)
    assert captions["mood-map.png"] == (
        "Your songs on the valence/arousal map: 23 entries (happy 0, energetic 0, sad 23, calm 0) as 1 dot, "
        f"entries of one song sharing a dot; {QUADRANTS}")


async def test_after_a_long_break_the_weekly_chart_says_when_the_latest_song_was(db, counting):
    """Songs in March 2025 only, asked on 4 December 2026: the sixteen weeks drawn are empty, and
    the chart and its caption said "0 songs" alone, as if the journal had been lost."""
    for n in range(3):
        await answered(db, n, date(2025, 3, 18 + n), f"t{n}", f"Song {n}", "sad", -0.5, -0.4)
    captions = await captions_on_4_december(db, counting)
    assert captions["moods-by-week.png"] == (
        "Your moods, week by week: the 16 weeks from 17 Aug to 30 Nov 2026, 0 songs (happy 0, energetic 0, sad 0, "
        "calm 0); your latest was in the week of 17 Mar 2025")


@pytest.mark.parametrize("days, now, window", [
    # 08:00 on 21 January in Tokyo, 15:00 on the 20th in Los Angeles: in January the pixels end today
    ((date(2026, 1, 20), date(2026, 1, 21)), datetime(2026, 1, 20, 23, 0, tzinfo=timezone.utc),
     "22 Jan 2025 – 21 Jan 2026"),
    # New Year's morning in Tokyo, New Year's Eve in Los Angeles: the calendar year ends before it
    ((date(2026, 12, 31), date(2027, 1, 1)), datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc),
     "2 Jan 2026 – 1 Jan 2027"),
])
async def test_a_song_dated_ahead_by_a_zone_left_behind_is_in_the_pixels(db, counting, days, now, window):
    """Alice answered this morning in Tokyo, then set her journal to Los Angeles, where it is still
    yesterday: her entry for 'tomorrow' counts in her streak and her weeks, and was missing from
    the pixels wherever they end today (January) or at the year's end (31 December)."""
    from bot import charts
    from tests.bot.test_charts import rgb, square_colour

    journal = journal_usecase(db, counting, now=lambda: now)
    for n, day in enumerate(days):
        await answered(db, n, day, f"t{n}", f"Song {n}", "calm", 0.3, -0.4)
    await journal.enable(ALICE_DM, "08:00", "America/Los_Angeles")

    reply = await journal.stats(ALICE_DM)
    assert isinstance(reply, StatsReply) and "current streak 2 days" in reply.summary
    pixels = next(c for c in reply.charts if c.filename == "year-in-pixels.png")
    assert pixels.caption == f"{window} in pixels: 2 of 365 days with a song (happy 0, energetic 0, sad 0, calm 2)"
    first, last = charts.pixel_window(now.date(), days[-1])
    assert square_colour(pixels.png, first, last, days[-1]) == rgb(charts.MOOD_COLOURS["calm"])


def test_the_console_tells_where_each_chart_is_saved_and_what_it_shows(tmp_path):
    """A terminal shows no picture: each chart's path, then its caption in words."""
    import io

    from bot.frontends.console import ConsoleFrontend
    from bot.replies import Chart

    out = io.StringIO()
    console = ConsoleFrontend(usecases=None, stdin=io.StringIO(), stdout=out, data_dir=tmp_path,
                              now=lambda: datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc))
    caption = "2026 in pixels: 2 of 338 days so far with a song (happy 1, energetic 0, sad 1, calm 0)"
    console.show(StatsReply("2 journal entries", [Chart("year-in-pixels.png", b"png", caption)]))

    saved = next((tmp_path / "charts").iterdir())
    assert f"  chart: {saved.resolve()}\n    {caption}\n" in out.getvalue()
