"""Half of an emoji's surrogate pair in a message or file name (text cut between the two \\u
escapes JSON writes for it) decodes to a lone surrogate, which no database, log or HTTP query can
encode: such a /mood was answered "something went wrong" (Telegram here; Discord in tests/e2e)."""
from __future__ import annotations

from bot.frontends.render import GENERIC_ERROR
from bot.frontends.wiretext import mended, mended_json
from tests.frontends.conftest import cache_upload


async def test_an_upload_named_with_half_an_emoji_is_heard(telegram, db):
    fake, _ = telegram
    audio = await cache_upload(db, b"OggS" + b"\4" * 64, "sad")
    await fake.user_sends(None, audio=fake.audio_attachment(audio, file_name="Song \ud83d.mp3"))
    reply = await fake.wait_for_reply(lambda c: "sad" in c.text.lower() or "sorry" in c.text.lower())
    assert GENERIC_ERROR not in reply.text and "sad" in reply.text.lower(), reply.text
    assert "Song \ufffd" in reply.text, reply.text


async def test_a_song_name_with_half_an_emoji_is_looked_up(telegram):
    fake, _ = telegram
    await fake.user_sends("/mood Creep \ud83d by Radiohead")
    reply = await fake.wait_for_reply(lambda c: "Finding" not in c.text)
    assert GENERIC_ERROR not in reply.text, reply.text


def test_only_lone_halves_are_replaced():
    assert mended("a\ud83d\ude00b") == "a😀b"  # a pair written as two halves is the emoji
    assert mended("a\ude00\ud83d") == "a\ufffd\ufffd"
    assert mended("plain 😀") == "plain 😀"
    assert mended_json({"k\ud800": ["x\udfff", 3, None, {"y": "\ud83d"}]}) == {
        "k\ufffd": ["x\ufffd", 3, None, {"y": "\ufffd"}]}


def test_discord_s_json_is_parsed_with_the_halves_mended():
    """The Discord front-end's own parse of the gateway's events and REST answers (the saving of
    such a note through it: tests/e2e/test_discord_e2e.py)."""
    from bot.frontends.discord import parse_json

    event = '{"d": {"content": "rain \\ud83d", "id": "1"}, "t": "MESSAGE_CREATE"}'
    assert parse_json(event) == {"d": {"content": "rain \ufffd", "id": "1"}, "t": "MESSAGE_CREATE"}
    assert parse_json(event.encode()) == parse_json(event)
    assert parse_json('{"c": "\\ud83d\\ude00"}') == {"c": "😀"}
