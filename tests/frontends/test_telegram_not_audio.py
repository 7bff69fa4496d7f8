"""A document whose type says it is plainly not sound (a PDF, a picture sent as a file, a text) is
refused before it is downloaded, naming it as sent; a song sent as a file of any other type, or of
none, is still fetched."""
from __future__ import annotations

import asyncio

import pytest

from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import read  # a name in a refusal: unlinked, read the same

GROUP = -100600
QUIET_S = 1.0  # long enough for a download to have started


def a_document(fake: FakeTelegramBotAPI, name: str, mime: str | None) -> dict:
    file_id = fake.add_file(b"%PDF-1.4 not a song", ".bin")
    document = {"file_id": file_id, "file_unique_id": file_id[1:9], "file_name": name, "file_size": 19}
    if mime is not None:
        document["mime_type"] = mime
    return {"document": document}


@pytest.mark.parametrize("name, mime", [("minutes.pdf", "application/pdf"), ("photo.png", "image/png"),
                                        ("lyrics.txt", "text/plain"), ("notes.docx",
                                        "application/vnd.openxmlformats-officedocument.wordprocessingml.document")])
async def test_a_document_that_is_plainly_not_sound_is_refused_without_a_download(telegram, name, mime, caplog):
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends(None, **a_document(fake, name, mime))
    reply = await fake.wait_for("sendMessage", after=mark)
    await asyncio.sleep(QUIET_S)
    assert not fake.calls_of("getFile", after=mark) and not fake.calls_of("download", after=mark)
    assert f"The file {name} is not audio" in read(reply.text)
    (refusal,) = [r for r in caplog.records if r.getMessage() == "telegram.file_refused"]
    assert (refusal.why, refusal.mime_type) == ("not_audio", mime)
    # The file's name is the sender's: not in the bot's lines.
    assert not [r for r in caplog.records if r.name.startswith("bot.") and name in str(vars(r))]


@pytest.mark.parametrize("mime", ["application/octet-stream", None, "audio/mpeg"])
async def test_a_document_of_any_other_type_is_still_fetched(telegram, mime):
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends("/mood", **a_document(fake, "song.mp3", mime), chat=GROUP)
    await fake.wait_for("getFile", after=mark)
