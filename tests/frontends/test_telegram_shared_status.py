"""A song two people asked for at once is heard once (`MoodUseCase._once`), and the listening tells
each asker its stages from its own task: the task of the request that started it. A status message
shown for the other asker then was noted in the inbox under the first asker's update (the
context's `CURRENT_UPDATE`): after a hard kill, the first asker's answer went into the other's
"Listening…" message, and the first asker's own status stayed "Listening…" for ever. A status
message is now noted under the update of the request it answers, whoever tells it its stages."""
from __future__ import annotations

import asyncio
import time

from telegram import Message

from bot.frontends.telegram import StatusMessage
from bot.frontends.telegram_flow import CURRENT_UPDATE
from bot.replies import STAGE_LISTENING
from storage.inbox import Arrival
from storage.schema import INBOX
from tests.fakes.telegram_api import BOT_ID

SOURCE = f"telegram:{BOT_ID}"
GROUP = -100321
ALICE, BOB = 41, 42
ALICES_UPDATE, BOBS_UPDATE = 9_001, 9_002


def voice_note(message_id: int, user: int) -> dict:
    return {"message_id": message_id, "date": int(time.time()), "chat": {"id": GROUP, "type": "supergroup", "title": "G"},
            "from": {"id": user, "is_bot": False, "first_name": "Someone"}, "caption": "/mood",
            "voice": {"file_id": "F1", "file_unique_id": "U1", "duration": 30}}


async def shown_in_inbox(db) -> dict[int, list | None]:
    return {doc["number"]: doc.get("shown") for doc in await db.db[INBOX].find({}).to_list()}


async def test_a_stage_told_from_another_request_s_task_notes_the_status_under_its_own_update(telegram, db):
    fake, frontend = telegram
    await db.inbox.keep(SOURCE, [Arrival(number, {"update_id": number, "message": voice_note(number, user)},
                                         "telegram", str(user))
                                 for number, user in ((ALICES_UPDATE, ALICE), (BOBS_UPDATE, BOB))])
    bobs_message = Message.de_json(voice_note(77, BOB), frontend.app.bot)

    async def bobs_request() -> StatusMessage:  # his handler's task, answering his update
        CURRENT_UPDATE.set(BOBS_UPDATE)
        return StatusMessage(bobs_message, on_shown=frontend.flow.shown)

    status = await asyncio.create_task(bobs_request())

    async def alices_listening() -> None:  # the song's one listening, started by Alice's request
        CURRENT_UPDATE.set(ALICES_UPDATE)
        await status(STAGE_LISTENING)  # told to every asker: Bob's status message is sent
        await status.shown()

    mark = fake.mark()
    await asyncio.create_task(alices_listening())
    sent = fake.message_of(await fake.wait_for("sendMessage", after=mark))
    deadline = time.monotonic() + 5
    while (await shown_in_inbox(db)).get(BOBS_UPDATE) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert await shown_in_inbox(db) == {ALICES_UPDATE: None, BOBS_UPDATE: [str(GROUP), str(sent["message_id"])]}
