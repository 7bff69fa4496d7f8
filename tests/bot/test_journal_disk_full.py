"""A journal answer while the database is down and DATA_DIR's disk is full: the outbox, where such
an answer waits for the database, cannot keep it either."""
from __future__ import annotations

import logging

from bot.replies import ErrorReply
from storage.outbox import NOT_KEPT
from tests.bot.conftest import ALICE_DM, attachment
from tests.bot.test_inbox_spool import disk_full_past
from tests.bot.test_journal import ALICE_REF, prompted_in_outage


async def test_an_answer_the_outbox_cannot_keep_is_said_not_saved_not_something_went_wrong(
        counting, clip_paths, outage, caplog):
    """The outbox's append refused by the disk: its OSError went up through the answer, the user
    was told "Something went wrong" (as for a bug) and the log held a traceback naming no disk.
    The user is told their answer is not saved and why, and the log says what the disk refused."""
    journal, _ = await prompted_in_outage(outage, counting, "930")
    size = outage.outbox_path.stat().st_size if outage.outbox_path.exists() else 0
    with disk_full_past(size), caplog.at_level(logging.INFO):
        said = await journal.answer(ALICE_DM, "the rain", attachment(clip_paths[0]), prompt_message_id="930",
                                    message_id="90")
    assert said == ErrorReply(NOT_KEPT), said
    assert await outage.writer.outbox.queued(ALICE_REF) == []
    (refused,) = [r for r in caplog.records if r.getMessage().startswith("outbox: a journal answer could not be kept")]
    assert refused.levelno == logging.ERROR and "File too large" in refused.getMessage(), refused.getMessage()
    assert "the rain" not in caplog.text
