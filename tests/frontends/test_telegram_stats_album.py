"""/stats on Telegram: its three charts come as one album (sendMediaGroup), the chat's one post,
with the reply's words as the caption of its first photo (the album's only caption: Telegram shows
none under an album whose items have several), or after it as a message when they are longer than
a caption may be. What Telegram refuses of it is in test_telegram_probe.py."""
from __future__ import annotations

import asyncio

from bot.frontends.telegram import MAX_CAPTION
from bot.frontends.render import text_length
from bot.replies import Chart, StatsReply
from tests.frontends.test_telegram import ALICE, add_entry

QUIET_S = 1.0  # long enough for the bot to have said whatever it was going to say
PNG = b"\x89PNG\r\n\x1a\n"


async def album_after(fake, mark: int) -> tuple[list[tuple[bytes, str]], list[str]]:
    """The album the bot sent after `mark` (each photo's bytes and caption), and the texts it sent
    besides, once it is quiet."""
    album = await fake.wait_for("sendMediaGroup", after=mark)
    await asyncio.sleep(QUIET_S)
    assert not fake.calls_of("sendPhoto", after=mark)
    return album.album(), [c.text for c in fake.calls_of("sendMessage", after=mark) if c.status == 200]


async def test_stats_charts_come_as_one_album_with_the_words_under_its_first_photo(telegram, db):
    """They came as a text and three photos, four posts; the album is one, its messages one group."""
    fake, _ = telegram
    for n in range(3):
        await add_entry(db, ALICE, n=n)
    mark = fake.mark()
    await fake.user_sends("/stats")
    photos, texts = await album_after(fake, mark)
    assert texts == [] and len(photos) == 3 and all(png.startswith(PNG) for png, _ in photos)
    words = photos[0][1]
    summary, charts = words.split("\n\n")
    assert summary.startswith("3 journal entries — ") and "Your most frequent mood: sad (3 of 3)" in summary
    weeks, pixels, songs = charts.splitlines()  # each chart's own words, as each photo had them
    assert weeks.startswith("Your moods, week by week: ") and " in pixels: " in pixels
    assert songs.startswith("Your songs on the valence/arousal map: 3 entries")
    assert [caption for _, caption in photos[1:]] == ["", ""]
    album = fake.message_of(fake.calls_of("sendMediaGroup", after=mark)[0])
    assert len({message["media_group_id"] for message in album}) == 1 and len(album) == 3
    # The sign "sending a photo…" still shows while the charts are drawn.
    sign, = fake.calls_of("sendChatAction", after=mark)
    assert sign.params["action"] == "upload_photo" and fake.calls.index(sign) < fake.calls.index(
        fake.calls_of("sendMediaGroup", after=mark)[0])


async def test_words_longer_than_a_caption_follow_the_album_as_a_message(telegram):
    """Telegram refuses a caption over 1 024 characters: the album goes uncaptioned, its words
    after it, whole, as one message."""
    fake, frontend = telegram
    message = await frontend.app.bot.send_message(chat_id=ALICE, text="/stats")
    reply = StatsReply("40 journal entries — current streak 3 days, longest 12 days.",
                       [Chart(f"chart-{n}.png", PNG + bytes([n]), f"Chart {n}: " + "a word " * 60) for n in range(3)])
    words = reply.summary + "\n\n" + "\n".join(chart.caption for chart in reply.charts)  # whole, in order
    assert text_length(words) > MAX_CAPTION
    mark = fake.mark()
    await frontend._send(message, reply)
    photos, texts = await album_after(fake, mark)
    assert [png for png, _ in photos] == [chart.png for chart in reply.charts]
    assert [caption for _, caption in photos] == ["", "", ""] and texts == [words]
    assert fake.calls.index(fake.calls_of("sendMediaGroup", after=mark)[0]) < fake.calls.index(
        fake.calls_of("sendMessage", after=mark)[0])
