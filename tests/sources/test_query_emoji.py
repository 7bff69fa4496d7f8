"""An emoji made of emoji joined by a zero-width joiner stays one emoji in a song's name."""
from __future__ import annotations

import pytest

from bot.sources.query import clean_text, parse_query


@pytest.mark.parametrize("name", ["❤️\u200d🔥", "🏳️\u200d🌈", "👩🏽\u200d🎤 Superstar", "🏴\u200d☠️"])
def test_a_joined_emoji_is_searched_whole(name):
    """The joiner was dropped as an invisible character, so '❤️‍🔥' (heart on fire) was searched
    as '❤️🔥', two other emoji."""
    for discord in (True, False):
        assert parse_query(name, discord=discord).text == name


def test_a_joiner_inside_a_word_is_still_dropped():
    assert clean_text("Beyon\u200dcé") == "Beyoncé" and clean_text("a\u200d🔥") == "a🔥"
