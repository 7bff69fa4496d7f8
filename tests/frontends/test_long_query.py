"""A /mood query longer than MAX_TEXT_CHARS (200) was cut to that without a word to the user, and
"I couldn't find “…”" then quoted all 200 characters back. The search still takes the first 200,
but the answer now says so (`QUERY_CUT`), and a song not found is quoted shortened (`QUOTED_CHARS`)."""
from __future__ import annotations

from bot.sources.query import MAX_TEXT_CHARS, QUOTED_CHARS, parse_query
from bot.usecases.mood import QUERY_CUT
from tests.bot.test_console import chat
from tests.frontends.conftest import spotify_with_creep

CUT = QUERY_CUT.format(chars=MAX_TEXT_CHARS)


def test_a_name_longer_than_a_search_takes_is_cut_and_known_cut():
    assert parse_query("Radiohead - Creep").cut is False
    assert parse_query("a" * MAX_TEXT_CHARS).cut is False
    long = parse_query("Radiohead Creep " * 20)
    assert long.cut is True and len(long.text) <= MAX_TEXT_CHARS


async def test_a_long_query_s_answer_says_it_was_cut_and_a_song_not_found_is_quoted_short(db, tmp_path):
    nothing = "zzqq " * 60
    async with spotify_with_creep(db) as (spotify, resolver):
        out = await chat(db, None, tmp_path, [f"/mood {'Radiohead Creep ' * 20}", f"/mood {nothing}",
                                              "/mood zzqq", "/quit"], resolver=resolver)
    assert "Mood: 😢 sad" in out and out.index("Mood: 😢 sad") < out.index(CUT)
    quoted = next(line for line in out.splitlines() if "“zzqq zzqq" in line)
    shown = quoted[quoted.index("“") + 1:quoted.index("”")]
    assert len(shown) <= QUOTED_CHARS and shown.endswith("…")
    assert CUT in quoted
    # A query short enough is quoted whole, and not said to be cut.
    assert "“zzqq”" in out and out.count(CUT) == 2
