"""A Telegram user's song name is searched as typed: Telegram hands formatting over apart from the
text (entities), and has no markup for emoji, mentions or timestamps of Discord's, so what looks
like Discord's markup in a Telegram message is what the user typed and sees."""
from __future__ import annotations

import pytest

from bot.sources.query import ONLY_MARKUP
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN, journal_on_telegram, telegram_on, usecases_with_creep


def searched(spotify) -> list[str]:
    return [r.params.get("q") for r in spotify.api_requests() if r.path == "/v1/search"]


@pytest.mark.parametrize("typed", ["@everyone", "Creep @here", "Creep <3 <@1>", "__Creep__ _Radiohead_"])
async def test_a_telegram_user_s_song_name_is_searched_as_typed(telegram_and_spotify, typed):
    """'/mood @everyone' on Telegram was answered 'I see only emoji, mentions or formatting there',
    and 'Creep @here' searched as 'Creep': Discord's markup was taken out of every platform's text."""
    fake, spotify = telegram_and_spotify
    mark = fake.mark()
    await fake.user_sends(f"/mood {typed}")
    answer = await fake.wait_for_reply(lambda c: "…" not in c.text, after=mark)
    assert ONLY_MARKUP not in answer.text
    assert searched(spotify) == [typed]


async def test_a_telegram_answer_to_the_prompt_is_searched_as_typed(db):
    """The same for the song answering the daily prompt in a private chat."""
    async with usecases_with_creep(db) as (spotify, usecases):
        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, frontend):
            scheduler = await journal_on_telegram(fake, frontend, db, usecases)
            await scheduler.start()
            try:
                await fake.user_sends("/journal prompt")
                prompt = await fake.wait_for("sendMessage", lambda c: "force_reply" in c.params.get("reply_markup", {}))
                mark = fake.mark()
                await fake.user_sends("Creep @here", reply_to=fake.message_of(prompt)["message_id"])
                answer = await fake.wait_for_reply(lambda c: "…" not in c.text, after=mark)
            finally:
                await scheduler.stop()
    assert ONLY_MARKUP not in answer.text
    assert searched(spotify) == ["Creep @here"]
