"""A YouTube link to a moment in a video (?t=90, &t=1m30s, #t=90, /embed/…?start=90): the mood is the
song's, heard where the bot hears every song, and the answer says that moment was left aside."""
from __future__ import annotations

import pytest

from bot.sources.query import parse_query
from bot.usecases.mood import LINK_TIME_LEFT_ASIDE
from tests.bot.test_console import chat
from tests.faults.support import cache_youtube_song
from tests.frontends.test_discord import GUILD, STRING

VIDEO = "dQw4w9WgXcQ"
AT_1_30 = LINK_TIME_LEFT_ASIDE.format(at="1:30")


@pytest.mark.parametrize("link, start_s", [
    (f"https://youtu.be/{VIDEO}?t=90", 90), (f"https://youtu.be/{VIDEO}?si=x&t=90s", 90),
    (f"https://www.youtube.com/watch?v={VIDEO}&t=1m30s", 90), (f"https://youtube.com/watch?v={VIDEO}#t=1h2m3s", 3723),
    (f"https://www.youtube.com/embed/{VIDEO}?start=90", 90), (f"https://m.youtube.com/watch?v={VIDEO}&time_continue=90", 90),
    (f"https://youtu.be/{VIDEO}", None), (f"https://youtu.be/{VIDEO}?t=0", None), (f"https://youtu.be/{VIDEO}?t=soon", None),
])
def test_a_youtube_link_s_moment_is_read(link, start_s):
    assert parse_query(link).start_s == start_s


async def test_the_console_says_a_link_s_moment_was_left_aside(db, tmp_path):
    await cache_youtube_song(db, VIDEO)  # its mood known: these tests have no classifier nor YouTube
    out = await chat(db, None, tmp_path, [f"/mood https://youtu.be/{VIDEO}?t=90", f"/mood https://youtu.be/{VIDEO}",
                                          "/quit"])
    assert out.count("Mood: ") == 2 and out.count(AT_1_30) == 1
    assert out.index("Mood: ") < out.index(AT_1_30) < out.rindex("Mood: ")  # under the first answer alone


async def test_telegram_says_a_link_s_moment_was_left_aside(telegram, db):
    fake, _ = telegram
    await cache_youtube_song(db, VIDEO)  # its mood known: these tests have no classifier nor YouTube
    for link, note in ((f"https://www.youtube.com/watch?v={VIDEO}&t=1m30s", True), (f"https://youtu.be/{VIDEO}", False)):
        mark = fake.mark()
        await fake.user_sends(f"/mood {link}")
        answer = await fake.wait_for("sendMessage", lambda c: "Mood: " in c.text, after=mark)
        assert (AT_1_30 in answer.text) is note


async def test_discord_says_a_link_s_moment_was_left_aside(discord_bot, db):
    fake, _ = discord_bot
    await cache_youtube_song(db, VIDEO)  # its mood known: these tests have no classifier nor YouTube
    for link, note in ((f"https://youtu.be/{VIDEO}?t=90", AT_1_30), (f"https://youtu.be/{VIDEO}", "")):
        await fake.slash("mood", [{"name": "query", "type": STRING, "value": link}], guild=GUILD)
        answer = await fake.wait_for("edit_original", lambda c: bool(c.embeds))
        assert answer.content == note
