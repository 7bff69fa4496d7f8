"""TELEGRAM_API_URL set wrong is named at start: python-telegram-bot puts the token right after it
('…/bot' + token + '/getMe'), so an address without '/bot' reaches no method (Telegram answers
404, which python-telegram-bot raises as a rejected token) or, without a path, is no URL at all
(the token glued to the port). Neither is "check TELEGRAM_TOKEN" only, and the token is never said."""
from __future__ import annotations

from typing import Callable

import pytest
from pydantic import ValidationError

from bot.app import PlatformStartError, start_frontend
from bot.config import Settings
from bot.frontends.telegram import TelegramFrontend
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN


@pytest.mark.parametrize("url", ["http://127.0.0.1:8081", "http://127.0.0.1:8081/", "https://api.telegram.org/",
                                 "https://api.telegram.org/bot/", "api.telegram.org/bot", "ftp://example.org/bot"])
def test_an_api_url_python_telegram_bot_cannot_call_is_refused_with_the_settings(url):
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None, telegram_api_url=url)
    assert "/bot" in str(raised.value)


@pytest.mark.parametrize("url", ["https://api.telegram.org/bot", "http://127.0.0.1:8081/bot",
                                 "https://example.org/telegram/bot", "https://example.org/bot{token}/test"])
def test_the_api_urls_python_telegram_bot_can_call_are_taken(url):
    assert Settings(_env_file=None, telegram_api_url=url).telegram_api_url == url


async def start(fake: FakeTelegramBotAPI, api_url: str) -> PlatformStartError:
    """What starting the Telegram front-end with TELEGRAM_API_URL `api_url` raises (set past the
    settings' own check, as a URL that passes it but reaches no Bot API is)."""
    settings = Settings(_env_file=None, telegram_token=TELEGRAM_TOKEN, telegram_api_url=fake.base_url,
                        telegram_file_url=fake.base_file_url).model_copy(update={"telegram_api_url": api_url})
    frontend = TelegramFrontend(settings, usecases=None)
    with pytest.raises(PlatformStartError) as raised:
        await start_frontend(frontend, settings, timeout_s=10)
    assert TELEGRAM_TOKEN not in str(raised.value) and TELEGRAM_TOKEN.split(":")[1] not in str(raised.value)
    return raised.value


async def start_at(token: str, api_url: Callable[[FakeTelegramBotAPI], str]) -> tuple[PlatformStartError, int]:
    """`start` against a fake Bot API that takes `token`, at the URL `api_url` makes of it: the
    error, and the fake's port."""
    fake = await FakeTelegramBotAPI(token).start()
    try:
        return await start(fake, api_url(fake)), fake.port
    finally:
        await fake.stop()


async def test_a_404_for_the_first_call_names_the_url_setting_too():
    error, port = await start_at(TELEGRAM_TOKEN, lambda fake: f"http://127.0.0.1:{fake.port}/api/bot")
    assert str(error) == (f"Telegram answered 404 Not Found at 127.0.0.1:{port}: check TELEGRAM_TOKEN and "
                          f"TELEGRAM_API_URL (it must end in /bot).")


async def test_a_wrong_token_is_still_said_to_be_the_token():
    error, port = await start_at("123456:another-token", lambda fake: fake.base_url)
    assert str(error) == f"Telegram rejected the token at 127.0.0.1:{port}: check TELEGRAM_TOKEN."


async def test_an_api_url_that_makes_no_url_with_the_token_is_named_without_the_token():
    error, port = await start_at(TELEGRAM_TOKEN, lambda fake: f"http://127.0.0.1:{fake.port}")
    assert str(error) == (f"Telegram could not be called at 127.0.0.1:{port}: TELEGRAM_API_URL with the token "
                          f"after it is no URL: check TELEGRAM_API_URL (it must end in /bot).")
    assert error.__cause__ is None and error.__suppress_context__  # the client's error shows the token


async def test_another_process_polling_with_the_token_is_said_once_not_a_traceback_a_poll(telegram, caplog):
    """Telegram answers a second poller 409 Conflict, again and again: python-telegram-bot's
    default logged a traceback at each retry, naming no setting."""
    import asyncio
    import logging

    fake, frontend = telegram
    fake.fail_next("getUpdates", 2, status=409, description="Conflict: terminated by other getUpdates request; "
                                                             "make sure that only one bot instance is running")
    with caplog.at_level(logging.INFO):
        for _ in range(200):  # the retry waits 1 s
            if len([c for c in fake.calls if c.status == 409]) == 2:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
    said = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in said] == ["telegram.polling_conflict"], [r.getMessage() for r in said]
    assert "run one bot per token" in said[0].reason and not said[0].exc_info
    assert not frontend.lost.is_set()  # it polls on


async def test_a_bot_api_that_answers_an_error_of_its_own_is_named_with_its_host_and_setting():
    """A Bot API server behind a proxy that answers 502 (a local telegram-bot-api that is down): the
    start said only "Bad Gateway"; a server answering a page, not JSON, its whole page as a bytes repr."""
    fake = await FakeTelegramBotAPI(TELEGRAM_TOKEN).start()
    fake.fail_next("getMe", 100, status=502, description="Bad Gateway")
    try:
        error = await start(fake, fake.base_url)
    finally:
        await fake.stop()
    assert str(error) == f"Telegram answered Bad Gateway at 127.0.0.1:{fake.port}: check TELEGRAM_API_URL."
