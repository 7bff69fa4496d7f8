"""What names no song, read before anything is searched: a message of punctuation alone."""
from __future__ import annotations

import pytest

from bot.sources.models import QueryKind, UnsupportedInputError
from bot.sources.query import ACCEPTED, parse_query


@pytest.mark.parametrize("typed", ["...", "…", "?!", "-", " - ", "—", "()", '""', "/", ".", ",", "*", "#", "!!!"])
def test_a_message_of_punctuation_alone_is_no_song(typed):
    """'/mood ...' or '/mood ?' was searched for, and answered with the mood of whatever song the
    search gave first for "...": a song the user never named."""
    for discord in (True, False):
        with pytest.raises(UnsupportedInputError) as info:
            parse_query(typed, discord=discord)
        assert str(info.value) == f"I see only punctuation there, no song name. {ACCEPTED}"


@pytest.mark.parametrize("typed", ["🎵", "❤️\u200d🔥", "+", "$", "Creep?", "- Creep", "Radiohead -", "1999", "…Ready For It?",
                                   "夜に駆ける", "Группа крови"])
def test_a_name_with_a_letter_a_digit_or_a_symbol_is_still_searched(typed):
    for discord in (True, False):
        query = parse_query(typed, discord=discord)
        assert query.kind is QueryKind.TEXT and query.text == typed.strip()
