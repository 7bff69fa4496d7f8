"""Telegram's flood limits are per chat: a 429 Too Many Requests for one chat's messages holds back
only that chat's, while the others go out as usual. A 429 naming no chat still pauses every call."""
from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web
from telegram.warnings import PTBDeprecationWarning

from tests.fakes.telegram_api import Call, FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN, telegram_on

CHAT_A, CHAT_B = 42, 43
RETRY_AFTER_S = 2
PROMPT_S = 0.5  # "at once": far below the retry_after, far above a local round trip
PARAMS = web.RequestKey("params", tuple)


class FloodedChatAPI(FakeTelegramBotAPI):
    """The fake Bot API, throttling one chat's messages as Telegram does: 429 "Too Many Requests:
    retry after N" with `parameters.retry_after`, for that chat only."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self._flooded: dict[str, list[int]] = {}  # chat id -> [calls still refused, retry_after]

    def flood(self, chat: int, times: int, retry_after: int) -> None:
        self._flooded[str(chat)] = [times, retry_after]

    async def _params(self, request: web.Request) -> tuple[dict, dict]:
        """Read once: the body cannot be read again when `_api` reads it after `throttled`."""
        if PARAMS not in request:
            request[PARAMS] = await super()._params(request)
        return request[PARAMS]

    async def _api(self, request: web.Request) -> web.Response:
        params, files = await self._params(request)
        flooded = self._flooded.get(str(params.get("chat_id")))
        if request.match_info["method"] == "sendMessage" and flooded and flooded[0] > 0:
            flooded[0] -= 1
            await self._record(Call("sendMessage", params, files, status=429))
            return web.json_response({
                "ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {flooded[1]}",
                "parameters": {"retry_after": flooded[1]}}, status=429)
        return await super()._api(request)


@pytest.fixture
async def flooded(usecases):
    async with telegram_on(FloodedChatAPI(TELEGRAM_TOKEN), usecases) as both:
        yield both


async def first_refusal(fake: FakeTelegramBotAPI, mark: int, timeout: float = 5.0) -> Call:
    """The first call answered 429 after `mark` (`wait_for` sees only answered calls)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        refused = next((c for c in fake.calls[mark:] if c.status == 429), None)
        if refused is not None:
            return refused
        await asyncio.sleep(0.01)
    raise TimeoutError("no 429 was answered")


async def paused(caplog, timeout: float = 5.0) -> None:
    """Once the bot has read the 429 it was answered (the fake records it as it answers, before
    the answer reaches the bot): a call made from then on is one the pause must hold back."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r.getMessage().startswith("telegram.flood_wait:") for r in caplog.records):
            return
        await asyncio.sleep(0.005)
    raise TimeoutError("the bot never paused for the 429")


def sent(fake: FakeTelegramBotAPI, chat: int, text: str) -> Call:
    return next(c for c in fake.calls_of("sendMessage") if c.chat_id == str(chat) and c.text == text
                and c.status == 200)


@pytest.mark.parametrize("chat_a, chat_b", [(CHAT_A, CHAT_B), (-100501, -100502)], ids=["private", "groups"])
async def test_a_429_for_one_chat_holds_back_that_chat_only(flooded, chat_a, chat_b, caplog):
    fake, frontend = flooded
    bot = frontend.app.bot
    fake.flood(chat_a, times=1, retry_after=RETRY_AFTER_S)
    mark = fake.mark()
    first_a = asyncio.create_task(bot.send_message(chat_id=chat_a, text="A 1"))
    refused = await first_refusal(fake, mark)
    await paused(caplog)
    asked_b = time.monotonic()
    second_a = asyncio.create_task(bot.send_message(chat_id=chat_a, text="A 2"))  # during A's pause
    await asyncio.wait_for(bot.send_message(chat_id=chat_b, text="B"), RETRY_AFTER_S * 3)
    b = sent(fake, chat_b, "B")
    assert b.at - asked_b < PROMPT_S, "chat B waited out chat A's retry_after"
    await asyncio.wait_for(asyncio.gather(first_a, second_a), RETRY_AFTER_S * 3)
    for text in ("A 1", "A 2"):  # A's messages, the refused one and the later one, after the wait
        assert sent(fake, chat_a, text).at - refused.at >= RETRY_AFTER_S
    assert [c.status for c in fake.calls[mark:] if c.chat_id == str(chat_a)] == [429, 200, 200]


async def test_a_429_naming_no_chat_holds_back_every_call(flooded, recwarn, caplog):
    """A flood of the bot as a whole (a call without a chat) is waited out by every chat."""
    fake, frontend = flooded
    bot = frontend.app.bot
    fake.fail_next("getMe", times=1, retry_after=1)
    mark = fake.mark()
    whole = asyncio.create_task(bot.get_me())
    refused = await first_refusal(fake, mark)
    await paused(caplog)
    await asyncio.wait_for(bot.send_message(chat_id=CHAT_B, text="B"), 10)
    await asyncio.wait_for(whole, 10)
    assert sent(fake, CHAT_B, "B").at - refused.at >= 1.0
    # retry_after read as PTB 23 gives it (a timedelta): no deprecation warning at each 429
    assert not [w for w in recwarn if issubclass(w.category, PTBDeprecationWarning)]
