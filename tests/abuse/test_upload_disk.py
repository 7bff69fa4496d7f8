"""Given many users' large files at once fill the disk that holds them while they are heard (the
temporary folder), a file that no longer fits is refused saying so and when to send it again, not
"Sorry, something went wrong"; the operator reads one warning naming the disk's refusal, no traceback."""
from __future__ import annotations

import asyncio
import logging

from bot.usecases import build_usecases
from tests.bot.test_inbox_spool import disk_full_past
from tests.bot.test_upload_memory import SENT_ON, SIZE


@SENT_ON
async def test_a_file_the_disk_has_no_room_for_is_refused_saying_so_and_when_to_retry(db, caplog, send):
    with disk_full_past(SIZE // 2), caplog.at_level(logging.INFO):
        _, said = await send(build_usecases(db, None, None), b"OggS" + bytes(SIZE), lambda: asyncio.sleep(0))
    assert said == "I have no room for that file right now: this bot's disk is full. (try again in 60 s)", said
    assert not [r for r in caplog.records if r.exc_info is not None]
    (line,) = [r for r in caplog.records if r.getMessage().endswith(".file_not_kept")]
    assert line.levelno == logging.WARNING and line.reason == "File too large"
