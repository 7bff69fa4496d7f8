"""Telegram tells an audio's, voice note's, video's or video note's length before it is downloaded:
one longer than MAX_AUDIO_DURATION_S is refused at once, naming it as sent, in the words the decoder
would say after a download. A length not told (0, or none: a document) is still fetched."""
from __future__ import annotations

import pytest

from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import read  # a name in a refusal: unlinked, read the same

LIMIT_S = 90  # the operator's MAX_AUDIO_DURATION_S in these tests
TOO_LONG = "The file {name} lasts over 1 minute 30 s; send a song shorter than that."


def an_attachment(fake: FakeTelegramBotAPI, kind: str, duration: int, name: str = "mix.ogg") -> dict:
    """`user_sends` arguments for a `kind` attachment Telegram says lasts `duration` s."""
    media = fake.audio_attachment(b"OggS not much of a song", file_name=name,
                                  kind="voice" if kind == "video_note" else kind)
    media["duration"] = duration
    if kind == "video_note":  # a round video: no name, no type, a side's length
        del media["mime_type"]
        media["length"] = 240
        return {"extra": {"video_note": media}}
    return {kind: media}


@pytest.fixture
def telegram_limited(telegram):
    fake, frontend = telegram
    frontend.settings = frontend.settings.model_copy(update={"max_audio_duration_s": LIMIT_S})
    return fake, frontend


@pytest.mark.parametrize("kind, shown", [("audio", "two-hour mix.mp3"), ("video", "concert.mp4")])
async def test_an_attachment_telegram_says_is_too_long_is_refused_without_a_download(telegram_limited, kind,
                                                                                    shown):
    """A voice or video note, which has no name in the chat, is named by whose and when
    (test_telegram_note_titles)."""
    fake, _ = telegram_limited
    mark = fake.mark()
    await fake.user_sends(None, **an_attachment(fake, kind, LIMIT_S + 1, name=shown))
    reply = await fake.wait_for_reply(lambda call: "lasts over" in call.text, after=mark)
    assert read(reply.text) == TOO_LONG.format(name=shown)
    # A download comes before any answer about the file: none was asked for.
    assert not fake.calls_of("getFile", after=mark) and not fake.calls_of("download", after=mark)


async def test_a_too_long_song_under_a_group_mood_caption_is_refused_the_same_way(telegram_limited, caplog):
    fake, _ = telegram_limited
    mark = fake.mark()
    await fake.user_sends("/mood", chat=-100600, **an_attachment(fake, "audio", 3 * 3600, name="live.flac"))
    reply = await fake.wait_for_reply(lambda call: "lasts over" in call.text, after=mark)
    assert read(reply.text) == TOO_LONG.format(name="live.flac")
    assert not fake.calls_of("getFile", after=mark)
    (refusal,) = [r for r in caplog.records if r.getMessage() == "telegram.file_refused"]
    assert (refusal.place, refusal.why, refusal.duration_s, refusal.limit_s) == (
        "telegram:-100600", "too_long", 3 * 3600, LIMIT_S)
    # The file's name is the sender's: not in the bot's lines.
    assert not [r for r in caplog.records if r.name.startswith("bot.") and "live.flac" in str(vars(r))]


@pytest.mark.parametrize("kind, duration", [("audio", 0), ("voice", 0), ("audio", LIMIT_S), ("video", LIMIT_S)])
async def test_an_attachment_of_unknown_or_allowed_length_is_still_fetched(telegram_limited, kind, duration):
    fake, _ = telegram_limited
    mark = fake.mark()
    await fake.user_sends(None, **an_attachment(fake, kind, duration))
    await fake.wait_for("download", after=mark)


async def test_a_document_whose_length_telegram_does_not_tell_is_still_fetched(telegram_limited):
    fake, _ = telegram_limited
    mark = fake.mark()
    document = fake.audio_attachment(b"OggS not much of a song", file_name="song.ogg", kind="document")
    await fake.user_sends(None, document=document)
    await fake.wait_for("download", after=mark)


# The shortest audio the classifier hears, and its words for shorter, as the decoder says them.
SHORTEST_S = 10
TOO_SHORT = "The audio lasts {seconds:.1f} s; I need at least 10 s."


@pytest.mark.parametrize("kind", ["audio", "voice", "video", "video_note"])
async def test_an_attachment_telegram_says_is_too_short_is_refused_without_a_download(telegram, kind, caplog):
    """A 4-second voice note could never be heard: it was downloaded, then refused by the decoder."""
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends(None, **an_attachment(fake, kind, 4, name="hello.ogg"))
    reply = await fake.wait_for_reply(lambda call: "lasts" in call.text, after=mark)
    assert reply.text == TOO_SHORT.format(seconds=4)
    assert not fake.calls_of("getFile", after=mark) and not fake.calls_of("download", after=mark)
    (refusal,) = [r for r in caplog.records if r.getMessage() == "telegram.file_refused"]
    assert (refusal.why, refusal.duration_s, refusal.limit_s) == ("too_short", 4, SHORTEST_S)


async def test_a_too_short_voice_note_under_a_group_mood_caption_is_refused_the_same_way(telegram):
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends("/mood", chat=-100600, **an_attachment(fake, "voice", 9))
    reply = await fake.wait_for_reply(lambda call: "lasts" in call.text, after=mark)
    assert reply.text == TOO_SHORT.format(seconds=9)
    assert not fake.calls_of("getFile", after=mark)


@pytest.mark.parametrize("kind, duration", [("voice", SHORTEST_S), ("video_note", 0), ("audio", SHORTEST_S + 1)])
async def test_an_attachment_of_unknown_or_long_enough_length_is_fetched(telegram, kind, duration):
    """A length of 0 (some clients send none) is not known to be short: the decoder judges it."""
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends(None, **an_attachment(fake, kind, duration))
    await fake.wait_for("download", after=mark)
