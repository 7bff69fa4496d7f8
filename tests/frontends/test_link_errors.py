"""A link the bot refuses is answered with a sentence the user can act on, whatever the link."""
from __future__ import annotations

import pytest

from bot.sources.query import ACCEPTED, OTHER_SERVICE_REFUSED


async def test_a_link_to_a_host_thousands_of_characters_long_is_refused_in_a_short_answer(telegram):
    # No host name is over 253 characters: quoting this one filled Telegram's 4096 with it, and
    # the clip cut off what the bot can read instead.
    fake, _ = telegram
    for link in ("https://" + "a" * 4000 + ".com/song.mp3", "https://" + "song." * 800 + "com/x"):
        mark = fake.mark()
        await fake.user_sends(f"/mood {link}")
        answer = await fake.wait_for("sendMessage", after=mark)
        assert answer.text == f"That link doesn't look right. {ACCEPTED}"


@pytest.mark.parametrize("link, host", [
    ("https://music.apple.com/us/album/pablo-honey/1097861387?i=1097862231", "music.apple.com"),
    ("https://tidal.com/browse/track/1097862?u", "tidal.com"), ("https://www.deezer.com/track/3135556", "www.deezer.com"),
])
async def test_another_music_service_s_link_naming_no_song_says_what_to_send_instead(telegram, link, host):
    """An Apple Music album's link (?i= names its song by Apple's id alone), Tidal's and Deezer's
    "Copy link": nothing names the song, and their links are never opened. The refusal was "I can't
    open links to music.apple.com" and what the bot reads in general; it now says what to send."""
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends(f"/mood {link}")
    answer = await fake.wait_for("sendMessage", after=mark)
    assert answer.text == OTHER_SERVICE_REFUSED.format(host=host)
