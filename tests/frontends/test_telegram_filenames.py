"""Telegram keeps a file's name as its sender gave it: the name a song is saved under in its
temporary folder must be one any file system takes, whatever the sender wrote."""
from __future__ import annotations

import pytest

from tests.frontends.conftest import cache_upload


@pytest.mark.parametrize("file_name", ["夜に駆ける" * 20 + ".mp3", "..", "..mp3", "a/../../b.ogg"],
                         ids=["300 bytes", "dot-dot", "dot-dot-suffix", "a path"])
async def test_an_upload_is_heard_whatever_its_file_name(telegram, db, file_name):
    fake, _ = telegram
    audio = await cache_upload(db, b"OggS" + b"\2" * 64, "sad")
    await fake.user_sends(None, audio=fake.audio_attachment(audio, file_name=file_name))
    reply = await fake.wait_for_reply(lambda c: "sad" in c.text.lower() or "sorry" in c.text.lower())
    assert "sorry" not in reply.text.lower() and "sad" in reply.text.lower()


@pytest.mark.parametrize(("tags", "named"), [
    ({"title": "Creep", "performer": "Radiohead"}, "Radiohead – Creep"),
    ({"title": "Creep"}, "Creep"),
    ({"title": "Back in Black", "performer": "AC/DC"}, "AC∕DC – Back in Black"),  # no folder in a name
], ids=["title and performer", "title", "a slash"])
async def test_audio_sent_without_a_file_name_is_named_by_its_title_and_performer(telegram, db, tags, named):
    fake, _ = telegram
    audio = await cache_upload(db, b"OggS" + b"\3" * 64, "sad")
    attachment = fake.audio_attachment(audio)
    del attachment["file_name"]  # as some apps send music: the tags only
    attachment.update(tags, mime_type="audio/mpeg")
    await fake.user_sends(None, audio=attachment)
    reply = await fake.wait_for_reply(lambda c: "sad" in c.text.lower() or "sorry" in c.text.lower())
    assert "sorry" not in reply.text.lower() and f"🎵 {named}\n" in reply.text + "\n"
