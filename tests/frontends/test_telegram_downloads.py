"""Given Telegram does not hand a sent file over (getFile refuses it, its file server answers 404 or
5xx, or cuts the connection), the user is asked to send it again, not told of an unexpected
failure; the operator sees one warning saying why (not the file's name), and no temporary file
is left. For /mood, a journal answer, and an album's song."""
from __future__ import annotations

import asyncio
import logging
import tempfile

import pytest

from bot.frontends import render
from bot.frontends.telegram import NOT_DOWNLOADED
from bot.replies import STAGE_FINDING, STAGE_LISTENING
from storage.models import UserRef
from tests.frontends.conftest import journal_on_telegram, known_upload

ALICE = 42
QUIET_S = 1.0  # long enough for the bot to have answered whatever it was going to answer
# How Telegram may fail a file: (what the fake does, what the warning's reason starts with)
FAILURES = {
    "getFile refused": (lambda fake: fake.fail_next(
        "getFile", 1, status=400, description="Bad Request: wrong file_id or the file is temporarily unavailable"),
        "getFile: BadRequest: Wrong file_id"),
    "gone": (lambda fake: fake.fail_next("download", 1, status=404), "download: InvalidToken: Not Found (404)"),
    # a server error is tried once more (telegram_http), and so is a GET cut off on a reused connection (aiohttp)
    "outage": (lambda fake: fake.fail_next("download", 2, status=503),
               "download: NetworkError: Service Unavailable (503)"),
    "cut off": (lambda fake: fake.fail_next("download", 2, status=0), "download: NetworkError: aiohttp."),
}


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """The temporary folder the bot's downloads go to, to be found empty afterwards."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def not_downloaded_logged(caplog, reason: str, filename: str) -> logging.LogRecord:
    """One warning, whose and why, no traceback and no file name; no 'handler failed'."""
    (line,) = [r for r in caplog.records if r.getMessage() == "telegram.file_not_downloaded"]
    assert line.levelno == logging.WARNING and line.exc_info is None and line.reason.startswith(reason)
    assert not [r for r in caplog.records if r.getMessage() == "telegram handler failed"]
    assert not [r for r in caplog.records if r.name.startswith("bot.") and filename in str(vars(r))]
    return line


@pytest.mark.parametrize("failure", FAILURES)
async def test_mood_on_a_file_telegram_does_not_hand_over_asks_for_it_again(telegram, caplog, temp_dir, failure):
    fake, _ = telegram
    fail, reason = FAILURES[failure]
    fail(fake)
    await fake.user_sends(None, audio=fake.audio_attachment(b"OggS take one", file_name="take1.ogg"))
    reply = await fake.wait_for_reply(lambda c: c.text not in (STAGE_LISTENING, STAGE_FINDING))
    assert reply.text == NOT_DOWNLOADED
    line = not_downloaded_logged(caplog, reason, "take1")
    assert (line.user, line.place) == (str(ALICE), None)
    assert not list(temp_dir.glob("moodbot-tg-*"))


async def test_a_journal_answer_whose_file_is_not_handed_over_is_asked_for_again(telegram, db, usecases, caplog,
                                                                                 temp_dir):
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    ref = UserRef("telegram", str(ALICE))
    mark = fake.mark()
    prompt_id = await scheduler.fire_now(ref)
    prompt = fake.message_of(await fake.wait_for("sendMessage", after=mark))
    fake.fail_next("download", 1, status=404)
    mark = fake.mark()
    await fake.user_sends("long drive", audio=fake.audio_attachment(b"OggS take one", file_name="take1.ogg"),
                          reply_to=prompt["message_id"])
    reply = await fake.wait_for_reply(lambda c: c.text not in (STAGE_LISTENING, STAGE_FINDING), after=mark)
    assert reply.text == NOT_DOWNLOADED
    not_downloaded_logged(caplog, "download: InvalidToken", "take1")
    assert not list(temp_dir.glob("moodbot-tg-*"))
    assert await db.journal.count(ref) == 0
    assert (await db.prompts.latest_open(ref)).prompt_id == prompt_id  # still open: sent again, it is saved


async def test_an_album_song_not_handed_over_is_asked_for_again_and_the_others_are_heard(telegram, db, caplog,
                                                                                        temp_dir):
    fake, _ = telegram
    items = []
    for n, mood in enumerate(["calm", "happy"]):
        content = f"OggS song {n}".encode()
        await db.tracks.save(known_upload(content, mood))
        items.append({"audio": fake.audio_attachment(content, file_name=f"song-{n}.ogg")})
    fake.fail_next("download", 1, status=404)  # the album's first song
    mark = fake.mark()
    await fake.user_sends_album(items)
    await fake.wait_for_reply(lambda c: "song-1" in c.text, after=mark)
    await asyncio.sleep(QUIET_S)
    texts = [c.text for c in fake.calls[mark:] if c.method == "sendMessage" and c.status == 200]
    assert NOT_DOWNLOADED in texts and render.GENERIC_ERROR not in texts
    not_downloaded_logged(caplog, "download: InvalidToken", "song-0")
    assert not list(temp_dir.glob("moodbot-tg-*"))
