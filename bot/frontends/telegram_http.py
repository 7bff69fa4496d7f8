"""python-telegram-bot's HTTP transport on aiohttp instead of httpx.

PTB lets a bot bring its own `BaseRequest`. Under a burst of answers the httpx stack (httpx,
httpcore, anyio, sniffio, h11: pure Python) was the largest cost per Bot API call in the
Telegram latency benchmark; aiohttp parses HTTP in C and keeps its connection pool in a dict.
Behaviour follows `telegram.request.HTTPXRequest`: the same defaults, timeouts resolved the same
way, timeouts raised as `TimedOut` and transport errors as `NetworkError`, so PTB's own error
handling (and AIORateLimiter's retries) is unchanged.

One difference: a request Telegram's servers answer with 500, 502 or 503 (the Bot API restarting,
a proxy without its backend: the call was not carried out) is sent once more after a moment, so an
answer is not lost to a passing server error. Not 504, nor a timeout: the call may have been
carried out, and the chat would see it twice.

aiohttp has no separate write timeout: a Bot API call's whole exchange is bounded by write + read
timeouts instead, and waiting for a free pooled connection by the pool timeout plus the connect one.
A file download is not bounded as a whole, only between reads (as with httpx).

A task may also learn whether its calls have left (`CallsWatch`): one that has sent nothing yet can
be called off without Telegram making anything of it; and which calls it sent (`CallsNoted`).
"""
from __future__ import annotations

import asyncio
import logging
from contextvars import ContextVar
from typing import Any, Awaitable, Callable

import aiohttp
from telegram import Update
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.frontends.wiretext import mended_json

log = logging.getLogger(__name__)

# HTTPXRequest's defaults.
READ_TIMEOUT_S = 5.0
WRITE_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 5.0
POOL_TIMEOUT_S = 1.0
MEDIA_WRITE_TIMEOUT_S = 20.0
RETRIED_STATUSES = frozenset({500, 502, 503})  # a server error: the call was not carried out
SERVER_ERROR_PAUSE_S = 0.5  # before the one retry
MAX_REASON = 200  # characters of why an update could not be read, logged
DOWNLOAD_METHOD = "GET"  # BaseRequest.retrieve (File.download_*); every Bot API call is a POST


class CallsWatch:
    """Whether the task that `watch`es its Bot API calls with this may be cut off without losing
    what Telegram made of them (`interruptible`).

    It may while its call has not left (waiting its turn in the rate limiter, or out a 429's pause),
    and once Telegram refused it (an error status: nothing was made). Not while its request is out:
    cut off, it may still be made, after whatever comes next. Nor once Telegram may have made it (a
    success, a 504, a timeout, a broken connection), until `between_calls`: what came back (the
    message sent) is still to be read."""

    def __init__(self) -> None:
        self._idle = asyncio.Event()  # set while the task may be cut off
        self._idle.set()

    def watch(self) -> None:
        """Watch the Bot API calls the current task makes from now on."""
        _watch.set(self)

    @property
    def interruptible(self) -> bool:
        return self._idle.is_set()

    def between_calls(self) -> None:
        """The task read what came back of its last call, and has sent no other yet."""
        self._idle.set()

    async def until_interruptible(self, task: asyncio.Task) -> None:
        """Return once `task` may be cut off (checked again on waking: it may have sent another
        request meanwhile), or has ended."""
        while not (task.done() or self.interruptible):
            waiting = asyncio.ensure_future(self._idle.wait())
            try:
                await asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiting.cancel()

    def _sent(self) -> None:
        self._idle.clear()

    def _answered(self, status: int) -> None:
        if not made_maybe(status):
            self._idle.set()


_watch: ContextVar[CallsWatch | None] = ContextVar("telegram_calls_watch", default=None)


class CallsNoted:
    """The Bot API methods that the task which `note`s with this, and the tasks it starts from
    then on, sent (whatever came back: Telegram may have carried any of them out)."""

    def __init__(self) -> None:
        self.methods: set[str] = set()

    def note(self) -> None:
        """Note the calls the current task (and those it starts) sends from now on."""
        _noted.set(self)

    @staticmethod
    def current() -> "CallsNoted | None":
        """What notes the current task's calls, if anything does."""
        return _noted.get()


_noted: ContextVar[CallsNoted | None] = ContextVar("telegram_calls_noted", default=None)


def made_maybe(status: int) -> bool:
    """Whether Telegram may have made a call it answered with `status`: not when it refused it (4xx,
    429 included), nor after a server error the call was not carried out in (RETRIED_STATUSES)."""
    return status < 400 or (status >= 500 and status not in RETRIED_STATUSES)


def _resolve(value: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value


def _sum(*timeouts: float | None) -> float | None:
    """The sum of timeouts, None (no limit) when any is None."""
    return None if any(t is None for t in timeouts) else sum(timeouts)


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` over one `aiohttp.ClientSession` with at most `connection_pool_size`
    connections. `gate`, when given, is awaited before each request, outside its timeouts (the
    getUpdates request waits there until the bot has room for more updates). A number it returns
    caps the request's `limit` (how many updates getUpdates may bring)."""

    def __init__(self, connection_pool_size: int = 1, *, read_timeout: float | None = READ_TIMEOUT_S,
                 write_timeout: float | None = WRITE_TIMEOUT_S, connect_timeout: float | None = CONNECT_TIMEOUT_S,
                 pool_timeout: float | None = POOL_TIMEOUT_S,
                 media_write_timeout: float | None = MEDIA_WRITE_TIMEOUT_S,
                 gate: Callable[[], Awaitable[int | None]] | None = None) -> None:
        self.connection_pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._gate = gate

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict:
        """As python-telegram-bot parses it, with half an emoji in any text made U+FFFD (wiretext)."""
        parsed = BaseRequest.parse_json_payload(payload)
        return mended_json(parsed) if b"\\ud" in payload.lower() else parsed  # no surrogate escape, no walk

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            # The session must be made inside the running loop it will serve.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connection_pool_size),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        limit = await self._gate() if self._gate is not None else None
        files = request_data.multipart_data if request_data else None
        fields = request_data.json_parameters if request_data else None  # a fresh dict per call
        if limit is not None:
            fields = fields if fields is not None else {}
            fields["limit"] = str(min(limit, int(fields.get("limit", limit))))
        read = _resolve(read_timeout, self._read_timeout)
        write = _resolve(write_timeout, self._media_write_timeout if files else self._write_timeout)
        connect = _resolve(connect_timeout, self._connect_timeout)
        pool = _resolve(pool_timeout, self._pool_timeout)
        # A file download (an attachment, up to 20 MB) lasts as long as the link needs: as with
        # HTTPXRequest, only a pause between reads times it out, not the whole transfer.
        total = None if method == DOWNLOAD_METHOD else _sum(connect, pool, write, read)
        timeout = aiohttp.ClientTimeout(total=total, connect=_sum(pool, connect), sock_connect=connect,
                                        sock_read=read)
        status, body = await self._exchange(method, url, fields, files, timeout)
        if status in RETRIED_STATUSES:
            log.info("telegram.server_error_retried: %d %s", status, url.rsplit("/", 1)[-1])
            await asyncio.sleep(SERVER_ERROR_PAUSE_S)
            status, body = await self._exchange(method, url, fields, files, timeout)
        return status, body

    async def _exchange(self, method: str, url: str, fields: dict[str, str] | None, files: dict | None,
                        timeout: aiohttp.ClientTimeout) -> tuple[int, bytes]:
        """One HTTP request and its response (a multipart body is built anew each time: aiohttp
        sends a FormData once), told to the task's `CallsWatch` and `CallsNoted` if any."""
        watch = _watch.get()
        if watch is not None:
            watch._sent()
        if (noted := _noted.get()) is not None:
            noted.methods.add(url.rsplit("/", 1)[-1])
        status, body = await self._http_exchange(method, url, fields, files, timeout)
        if watch is not None:
            watch._answered(status)
        return status, body

    async def _http_exchange(self, method: str, url: str, fields: dict[str, str] | None, files: dict | None,
                             timeout: aiohttp.ClientTimeout) -> tuple[int, bytes]:
        try:
            async with self._session.request(method, url, data=_body(fields, files), timeout=timeout) as response:
                return response.status, await response.read()
        except asyncio.TimeoutError as error:
            raise TimedOut from error
        except aiohttp.ClientError as error:
            # The class name helps when the error's message is empty, as in HTTPXRequest.
            raise NetworkError(f"aiohttp.{type(error).__name__}: {error}") from error


class UpdatesRequest(AiohttpRequest):
    """The getUpdates request's transport, which hands over every update python-telegram-bot can
    read, also when the server sends one it cannot.

    An update the library cannot read (a field its version requires that the server did not send: a
    local Bot API server older than the library, Telegram changing a shape) fails its whole batch,
    and python-telegram-bot, acknowledging nothing, asks for the same batch again at once, for ever:
    no update after it was answered again until a restart. A batch that begins where the one before
    it began (that one was not taken: it could not be read, or its answer was lost) is read update
    by update, and each update that cannot be read is handed over as its id alone, which the
    handlers pass by and the next getUpdates acknowledges; one warning says which it was."""

    def __init__(self, connection_pool_size: int = 1, **kwargs: Any) -> None:
        super().__init__(connection_pool_size, **kwargs)
        self._first: object = None  # the update_id the last batch began with
        logging.getLogger(PTB_BOT_LOGGER).addFilter(UNQUOTED_BATCH)  # once: the same filter each time

    def parse_json_payload(self, payload: bytes) -> dict:
        parsed = AiohttpRequest.parse_json_payload(payload)
        updates = parsed.get("result")
        if not isinstance(updates, list) or not updates or not isinstance(updates[0], dict):
            return parsed
        first = updates[0].get("update_id")
        if first is not None and first == self._first:
            parsed["result"] = [readable(update) for update in updates]
        self._first = first
        return parsed


class _UnquotedBatch(logging.Filter):
    """python-telegram-bot's CRITICAL line for a batch of updates it cannot read quotes the batch
    whole: users' ids, names and words in clear, which this log never holds. Its words stay, the
    batch is left out (`readable` names the update that could not be read, by its id)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(UNREADABLE_BATCH):
            record.msg = f"{UNREADABLE_BATCH} Received data left out: it holds users' messages"
            record.args = ()
        return True


PTB_BOT_LOGGER = "telegram.ext.ExtBot"  # where python-telegram-bot's Bot.get_updates logs
UNREADABLE_BATCH = "Error while parsing updates!"  # its line for a batch it cannot read
UNQUOTED_BATCH = _UnquotedBatch()


def readable(update: dict) -> dict:
    """`update` if python-telegram-bot reads it, else its id alone (said in a warning: which update,
    what it brought, and why it could not be read)."""
    try:
        Update.de_json(update, None)
    except Exception as error:  # noqa: BLE001 - whatever the library raises: a TypeError, a KeyError...
        kind = next((key for key in update if key != "update_id"), None)
        log.warning("telegram.update_unreadable", extra={
            "update": update.get("update_id"), "kind": kind,
            "reason": f"{type(error).__name__}: {error}"[:MAX_REASON]})
        return {"update_id": update.get("update_id")}
    return update


def never_sent(error: TimedOut) -> bool:
    """Whether a timed-out call never left: no connection was made (or none came free in the pool).
    Otherwise Telegram may have carried it out, its answer lost."""
    return isinstance(error.__cause__, aiohttp.ConnectionTimeoutError)


def _body(fields: dict[str, str] | None, files: dict | None) -> aiohttp.FormData | dict[str, str] | None:
    """Form fields as application/x-www-form-urlencoded; with files, multipart/form-data."""
    if not files:
        return fields
    form = aiohttp.FormData()
    for name, value in (fields or {}).items():
        form.add_field(name, value)
    for name, (filename, content, mime_type) in files.items():
        form.add_field(name, content, filename=filename, content_type=mime_type)
    return form
