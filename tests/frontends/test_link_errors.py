"""A link the bot refuses is answered with a sentence the user can act on, whatever the link."""
from __future__ import annotations

from bot.sources.query import ACCEPTED


async def test_a_link_to_a_host_thousands_of_characters_long_is_refused_in_a_short_answer(telegram):
    # No host name is over 253 characters: quoting this one filled Telegram's 4096 with it, and
    # the clip cut off what the bot can read instead.
    fake, _ = telegram
    for link in ("https://" + "a" * 4000 + ".com/song.mp3", "https://" + "song." * 800 + "com/x"):
        mark = fake.mark()
        await fake.user_sends(f"/mood {link}")
        answer = await fake.wait_for("sendMessage", after=mark)
        assert answer.text == f"That link doesn't look right. {ACCEPTED}"
