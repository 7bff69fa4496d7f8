"""A song's name keeps the underscores Discord shows as typed: only a pair around words
(_italic_, __underlined__) is formatting, as Discord reads it."""
from __future__ import annotations

import pytest

from bot.sources.query import parse_query


@pytest.mark.parametrize("typed, searched", [
    ("^_^", "^_^"), ("-_- Creep", "-_- Creep"), ("T_T", "T_T"), ("Creep_", "Creep_"), ("東京_", "東京_"),
    ("_Mr_Brightside", "_Mr_Brightside"), ("Radiohead _ Creep", "Radiohead _ Creep"),
    ("Mr._Brightside", "Mr._Brightside"),
])
def test_an_underscore_discord_shows_as_typed_stays_in_the_song_s_name(typed, searched):
    """An underscore at a word's edge was taken for italics even alone, where Discord (and every
    other chat) shows it as typed: '^_^' was searched as '^^', 'Creep_' as 'Creep'."""
    assert parse_query(typed).text == searched


@pytest.mark.parametrize("typed, searched", [
    ("_Creep_ by __Radiohead__", "Creep by Radiohead"), ("__init__", "init"), ("___Creep___", "Creep"),
    ("_Creep by Radiohead_", "Creep by Radiohead"), ("snake_case _italic_", "snake_case italic"),
])
def test_a_pair_of_underscores_around_words_is_formatting(typed, searched):
    assert parse_query(typed).text == searched
