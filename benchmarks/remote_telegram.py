"""The fake Telegram Bot API in a process of its own, for latency benchmarks.

In production Telegram's servers are not on the bot's CPU. In the same process, the fake's HTTP
server would take a share of the bot's one event loop and inflate every figure, so the benchmarks
run it here: a spawned process serving the Bot API on one port and a small control API on another.
The benchmark drives a whole round with one control call, and the fake itself times each answer
(`answer.at - delivered.at`, both from the system-wide monotonic clock), so the benchmark's own
polling costs the bot nothing. It also times each answer from the moment the user's message
reached the fake (`answer.at - sent`): what the user waits, including the time an update spends at
"Telegram" before the bot fetches it.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from tests.fakes.telegram_api import TEXT_METHODS, BotAPIAddress, FakeTelegramBotAPI

POLL_S = 0.02  # how often the control server scans the calls while a round is on
START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RoundResult:
    latencies_ms: list[float]  # inside the bot: from getUpdates handing the update out to the answer
    errors: int
    from_send_ms: list[float]  # what the user waits: from the message reaching the fake to the answer


def is_answer(text: str) -> bool:
    """The last word of a /mood: the mood, or a refusal (which counts as an error)."""
    return "Mood:" in text or "Sorry" in text or "try again" in text


async def _round(fake: FakeTelegramBotAPI, request: web.Request) -> web.Response:
    """Body {"messages": [[chat, text], ...], "timeout": s}: every chat sends its text at once;
    answers {"latencies_ms": [...], "errors": n, "from_send_ms": [...]} once every chat has an
    answer or time is up."""
    body = await request.json()
    mark = fake.mark()
    update_of_chat: dict[str, int] = {}
    sent_at: dict[str, float] = {}
    for chat, text in body["messages"]:
        update_of_chat[str(chat)] = (await fake.user_sends(text, chat=int(chat)))["update_id"]
        sent_at[str(chat)] = time.monotonic()
    answers: dict[str, object] = {}
    scanned, deadline = mark, time.monotonic() + float(body["timeout"])
    while len(answers) < len(update_of_chat) and time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
        calls, scanned = fake.calls[scanned:], len(fake.calls)
        for call in calls:
            if call.method in TEXT_METHODS and call.status == 200 and is_answer(call.text):
                answers.setdefault(call.chat_id, call)
    latencies, from_send, errors = [], [], 0
    for chat, update_id in update_of_chat.items():
        answer, delivered = answers.get(chat), fake.delivered.get(update_id)
        if answer is None or delivered is None or "Mood:" not in answer.text:
            errors += 1
            continue
        latencies.append((answer.at - delivered.at) * 1000)
        from_send.append((answer.at - sent_at[chat]) * 1000)
    errors += sum(1 for c in fake.calls[mark:] if c.status != 200)
    return web.json_response({"latencies_ms": latencies, "errors": errors, "from_send_ms": from_send})


async def _serve(token: str, ready) -> None:
    fake = await FakeTelegramBotAPI(token).start()
    stop = asyncio.Event()
    app = web.Application()
    app.router.add_post("/round", lambda request: _round(fake, request))

    async def on_stop(_request: web.Request) -> web.Response:
        stop.set()
        return web.json_response({})

    app.router.add_post("/stop", on_stop)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    ready.send((fake.port, site._server.sockets[0].getsockname()[1]))  # type: ignore[union-attr]
    await stop.wait()
    await runner.cleanup()
    await fake.stop()


def _main(token: str, ready) -> None:
    asyncio.run(_serve(token, ready))


class RemoteTelegramBotAPI(BotAPIAddress):
    """Starts the fake in a spawned process; `answer_round` plays one round of messages."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.port = self.control_port = 0
        self._process: multiprocessing.Process | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> "RemoteTelegramBotAPI":
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_main, args=(self.token, send), daemon=True)
        self._process.start()
        if not await asyncio.to_thread(receive.poll, START_TIMEOUT_S):
            raise RuntimeError("the fake Bot API process did not start")
        self.port, self.control_port = receive.recv()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        return self

    async def stop(self) -> None:
        if self._session is not None:
            try:
                await self._session.post(f"http://127.0.0.1:{self.control_port}/stop")
            except aiohttp.ClientError:
                pass
            await self._session.close()
        if self._process is not None:
            await asyncio.to_thread(self._process.join, 10)
            if self._process.is_alive():
                self._process.kill()

    async def answer_round(self, messages: list[tuple[int, str]], timeout_s: float) -> RoundResult:
        """Every (chat, text) sent at once; each answer's latencies in ms, and the errors."""
        async with self._session.post(f"http://127.0.0.1:{self.control_port}/round",
                                      json={"messages": messages, "timeout": timeout_s}) as response:
            response.raise_for_status()
            result = await response.json()
        return RoundResult(result["latencies_ms"], result["errors"], result["from_send_ms"])
