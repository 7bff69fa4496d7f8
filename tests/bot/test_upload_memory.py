"""Given many users send large files at once (20 MB each, on Telegram), each request held its file
twice while the model had it, or while it waited its turn in the model's queue: on disk, where the
model reads it, and in memory, the bytes downloaded, kept by the download's frame until the answer.
The bytes are let go once written: a request holds its file on disk alone."""
from __future__ import annotations

import asyncio
import os
import tracemalloc

import pytest

from bot.replies import STAGE_FINDING, STAGE_LISTENING
from bot.usecases import build_usecases
from tests.bot.test_privacy_and_playlists import HeldClassifier
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN, discord_on, telegram_on
from tests.frontends.test_discord import ATTACHMENT

SIZE = 900_000  # under the front-ends' 1 MiB (`telegram_on`, `discord_on`), far over anything else they hold


def held_blocks(snapshot: tracemalloc.Snapshot, size: int, where: str) -> list[tracemalloc.Trace]:
    """The memory blocks of `size` bytes or more allocated under `where` (a path pattern) and
    still held when `snapshot` was taken."""
    kept = snapshot.filter_traces([tracemalloc.Filter(True, where, all_frames=True)])
    return [trace for trace in kept.traces if trace.size >= size]


async def sent_on_telegram(usecases, content: bytes, heard):
    """`content` sent to /mood on the fake Telegram as big.ogg, `heard()` awaited meanwhile (while
    the model has it): what `heard` returned, and the answer's text."""
    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, _):
        await fake.user_sends(None, audio=fake.audio_attachment(content, file_name="big.ogg"))
        result = await heard()
        answer = await fake.wait_for_reply(lambda c: c.text not in (STAGE_FINDING, STAGE_LISTENING))
    return result, answer.text


async def sent_on_discord(usecases, content: bytes, heard):
    async with discord_on(FakeDiscord(), usecases) as (fake, _):
        song = fake.add_file("big.ogg", content)
        await fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": song["id"]}],
                         resolved={"attachments": {song["id"]: song}})
        result = await heard()
        answer = await fake.wait_for("edit_original", lambda c: c.content not in (STAGE_FINDING, STAGE_LISTENING))
    return result, answer.content


SENT_ON = pytest.mark.parametrize("send", [sent_on_telegram, sent_on_discord], ids=["telegram", "discord"])


@SENT_ON
async def test_a_file_is_not_held_in_memory_while_the_model_has_it(db, counting, send):
    held = HeldClassifier(counting)
    content = b"OggS" + os.urandom(SIZE)

    async def heard() -> tracemalloc.Snapshot:
        await asyncio.wait_for(held.listening.wait(), 10)
        snapshot = tracemalloc.take_snapshot()
        held.release.set()
        return snapshot

    tracemalloc.start(64)
    try:
        snapshot, _ = await send(build_usecases(db, held, fetcher=None), content, heard)
    finally:
        tracemalloc.stop()
        held.release.set()
    assert not held_blocks(snapshot, SIZE, "*/bot/frontends/*")
