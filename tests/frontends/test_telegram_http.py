"""The aiohttp transport under python-telegram-bot fails the way PTB expects of any transport."""
from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest
from aiohttp import web
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.frontends.telegram_http import AiohttpRequest


@contextlib.asynccontextmanager
async def local_server(handler, method: str = "POST"):
    """An aiohttp server on 127.0.0.1 answering every `method` request with `handler`; yields its
    base URL."""
    app = web.Application()
    app.router.add_route(method, "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def stalling_server():
    """Accepts requests and answers none until the test is over."""
    released = asyncio.Event()

    async def stall(_request: web.Request) -> web.Response:
        await released.wait()
        return web.json_response({})

    async with local_server(stall) as url:
        yield url
        released.set()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_a_server_that_does_not_answer_is_a_timeout(stalling_server):
    request = AiohttpRequest(read_timeout=0.2)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.do_request(f"{stalling_server}/sendMessage", "POST", RequestData())
    finally:
        await request.shutdown()


async def test_a_refused_connection_is_a_network_error():
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(NetworkError, match="aiohttp"):
            await request.do_request(f"http://127.0.0.1:{closed_port()}/getMe", "POST")
    finally:
        await request.shutdown()


async def test_it_must_be_initialised_first():
    with pytest.raises(RuntimeError, match="not initialized"):
        await AiohttpRequest().do_request("http://127.0.0.1:9/getMe", "POST")


async def test_a_gate_is_passed_before_the_request_is_sent(stalling_server):
    """The getUpdates request waits at its gate, outside its timeouts, before any byte is sent."""
    opened, sent = asyncio.Event(), []

    async def gate() -> None:
        await opened.wait()
        sent.append(True)

    request = AiohttpRequest(read_timeout=0.2, gate=gate)
    await request.initialize()
    try:
        call = asyncio.create_task(request.do_request(f"{stalling_server}/getUpdates", "POST", RequestData()))
        await asyncio.sleep(0.4)  # longer than the read timeout: waiting at the gate is not a timeout
        assert not call.done() and not sent
        opened.set()
        with pytest.raises(TimedOut):  # then the stalling server times it out as usual
            await call
        assert sent == [True]
    finally:
        await request.shutdown()


async def test_a_number_from_the_gate_caps_how_many_updates_get_updates_may_bring():
    """The flow's batch size reaches Telegram as getUpdates' `limit`, never raising a smaller one."""
    bodies = []

    async def record(request: web.Request) -> web.Response:
        bodies.append(dict(await request.post()))
        return web.json_response({"ok": True, "result": []})

    async def gate() -> int:
        return 32

    request = AiohttpRequest(gate=gate)
    await request.initialize()
    try:
        async with local_server(record) as base:
            url = f"{base}/getUpdates"
            await request.do_request(url, "POST", RequestData([RequestParameter.from_input("offset", 7)]))
            await request.do_request(url, "POST", RequestData([RequestParameter.from_input("limit", 5)]))
            await request.do_request(url, "POST")
    finally:
        await request.shutdown()
    assert bodies == [{"offset": "7", "limit": "32"}, {"limit": "5"}, {"limit": "32"}]


@contextlib.asynccontextmanager
async def file_server(chunks: int, gap_s: float):
    """A file server on 127.0.0.1 sending a file in `chunks` pieces, `gap_s` apart (a slow link)."""
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(chunks):
            await response.write(b"x" * 1024)
            await asyncio.sleep(gap_s)
        await response.write_eof()
        return response

    async with local_server(trickle, "GET") as base:
        yield f"{base}/file/song.ogg"


async def test_a_file_download_longer_than_every_timeout_together_is_not_cut_off_while_it_flows():
    """An attachment of up to 20 MB comes as fast as the link allows: like PTB's own transport,
    only a pause between reads times it out. (The API calls' bound, connect + pool + write + read,
    some 45 s, cut off a 20 MB file under ~0.45 MB/s, or sooner after a wait for a connection.)"""
    request = AiohttpRequest(read_timeout=0.3, write_timeout=0.1, connect_timeout=0.1, pool_timeout=0.1)
    await request.initialize()
    try:
        async with file_server(chunks=12, gap_s=0.1) as url:  # 1.2 s in all, never 0.3 s silent
            assert len(await request.retrieve(url)) == 12 * 1024
        async with file_server(chunks=2, gap_s=1.0) as url:  # silent longer than the read timeout
            with pytest.raises(TimedOut):
                await request.retrieve(url)
    finally:
        await request.shutdown()
