"""A song's listening (its search, download and hearing, shared by everyone asking for it meanwhile)
whose every asker gave up before the model had the song is called off: a group the bot was removed
from drops its members' songs (bot/frontends/chat_runs.py), and the download they started must not
go on for nobody."""
from __future__ import annotations

import asyncio
import time

from bot.sources.audio import AudioFetcher
from bot.usecases.mood import MoodUseCase
from tests.abuse import test_rate_limits
from tests.abuse.test_rate_limits import caller

hanging_audio = test_rate_limits.hanging_audio  # the fixture: an audio host that never answers

PATH = "/hang/slowsong.ogg"


async def test_a_download_whose_only_asker_gave_up_is_called_off(db, hanging_audio):
    fetcher = AudioFetcher(search_template=hanging_audio.url("/hang/{title}.ogg"), timeout_s=20)
    mood = MoodUseCase(db, classifier=None, fetcher=fetcher)
    asked = asyncio.create_task(mood.run(caller("1"), "slowsong"))
    for _ in range(500):  # its download under way
        if hanging_audio.requests_for(PATH):
            break
        await asyncio.sleep(0.02)
    asked.cancel()  # dropped: the group removed the bot
    await asyncio.sleep(0.2)
    # Asked again: were the first download still going on, this asker would wait for it.
    again = asyncio.create_task(mood.run(caller("2"), "slowsong"))
    try:
        # Well before the first download's own end (timeout_s 20), long enough for a download
        # worker to start under a loaded machine's test run (4 s was not, once).
        deadline = time.monotonic() + 12
        while len(hanging_audio.requests_for(PATH)) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert len(hanging_audio.requests_for(PATH)) == 2, "the first download went on for nobody"
    finally:
        again.cancel()
        await asyncio.gather(asked, again, return_exceptions=True)
