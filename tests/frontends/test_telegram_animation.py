"""A GIF is no song. Telegram sends one (or a soundless MP4 it shows as a GIF) as an `animation`,
with the same file as a `document` beside it for older clients: the bot says it is a GIF, and
downloads nothing."""
from __future__ import annotations

import asyncio

from storage.models import UserRef
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import journal_on_telegram

ALICE = 42
GROUP = -100600
QUIET_S = 1.0  # long enough for a download to have started


def a_gif(fake: FakeTelegramBotAPI) -> dict:
    """The `document` and `animation` fields of a message carrying a GIF, as Telegram sends them."""
    file_id = fake.add_file(b"GIF89a\x01\x00\x01\x00", ".mp4")
    shared = {"file_id": file_id, "file_unique_id": file_id[1:9], "file_name": "dance.gif.mp4",
              "mime_type": "video/mp4", "file_size": 10}
    animation = {**shared, "width": 320, "height": 240, "duration": 3}
    return {"document": shared, "extra": {"animation": animation}}


async def answered_without_download(fake: FakeTelegramBotAPI, mark: int) -> str:
    reply = await fake.wait_for("sendMessage", after=mark)
    await asyncio.sleep(QUIET_S)
    assert not fake.calls_of("getFile", after=mark) and not fake.calls_of("download", after=mark)
    assert len(fake.calls_of("sendMessage", after=mark)) == 1
    return reply.text


async def test_a_gif_sent_privately_is_called_a_gif_not_heard(telegram):
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends(None, **a_gif(fake))
    text = await answered_without_download(fake, mark)
    assert "GIF" in text and "no sound" in text


async def test_a_gif_captioned_mood_in_a_group_is_called_a_gif_not_heard(telegram):
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends("/mood", **a_gif(fake), chat=GROUP, user=ALICE)
    assert "GIF" in await answered_without_download(fake, mark)


async def test_mood_in_reply_to_someone_s_gif_calls_it_a_gif_not_heard(telegram):
    fake, _ = telegram
    gif = a_gif(fake)
    bobs = {"message_id": 900, "date": 0, "chat": {"id": GROUP, "type": "supergroup", "title": "g"},
            "from": {"id": 43, "is_bot": False, "first_name": "Bob"},
            "document": gif["document"], **gif["extra"]}
    mark = fake.mark()
    await fake.user_sends("/mood", chat=GROUP, user=ALICE, extra={"reply_to_message": bobs})
    assert "GIF" in await answered_without_download(fake, mark)


async def test_a_gif_answering_a_journal_prompt_is_called_a_gif_and_saves_nothing(telegram, db, usecases):
    fake, frontend = telegram
    await journal_on_telegram(fake, frontend, db, usecases)
    await fake.user_sends("/journal prompt")
    prompt = await fake.wait_for("sendMessage", lambda c: "force_reply" in c.params.get("reply_markup", {}))
    mark = fake.mark()
    await fake.user_sends(None, reply_to=fake.message_of(prompt)["message_id"], **a_gif(fake))
    assert "GIF" in await answered_without_download(fake, mark)
    assert await db.journal.count(UserRef("telegram", str(ALICE))) == 0
