"""The app: one process, one event loop, one classifier pool, one scheduler, and the front-ends.

Start-up order: database (embedded when MONGODB_URI is unset) -> classifier warming in the
background -> sources -> use cases -> scheduler -> front-ends. Shutdown is the reverse, on
SIGINT/SIGTERM, on /quit, or at the end of the console's input.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import inspect
import io
import logging
import os
import secrets
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, TextIO
from urllib.parse import urlsplit

from bot.config import PRIVATE_FOLDER, Settings
from bot.health import heartbeat, heartbeat_path
from bot.logs import numbered
from bot.ratelimit import HeavyLimits, MoodRateLimiter, UploadBudget
from bot.scheduler import PromptScheduler
from bot.tempfiles import remove_stale
from bot.usecases import UseCases, build_usecases
from storage.durable import PRIVATE_FILE

log = logging.getLogger(__name__)

SALT_FILE = ".log-salt"
LOG_FILE = "moodbot.log"
OUTBOX_DRAIN_INTERVAL_S = 30.0
WARM_UP_WAIT_ON_CLOSE_S = 15.0
# A chat platform's start: Discord's own wait for its gateway is 60 s, after the login. Without a
# bound, a Discord API that takes the connection and never answers held the start for aiohttp's
# 5 minutes, then ended it with an empty message.
FRONTEND_START_TIMEOUT_S = 90.0
# Ctrl-C ends the bot as a shell reads an interrupted command (128 + SIGINT), as `python -m inference
# classify` does; SIGTERM is a service manager's ordinary stop (docker stop, systemd), so 0. SIGHUP
# (the terminal of `make run` closed, an ssh session lost; a reload) stops it as SIGTERM does, with
# 128 + SIGHUP: its default killed the bot outright, the requests at work left unanswered.
EXIT_STATUS_ON = {signal.SIGINT: 128 + signal.SIGINT, signal.SIGTERM: 0, signal.SIGHUP: 128 + signal.SIGHUP}
# Each chat platform's name, where it is reached and its token: named, with the setting to check,
# when its start cannot reach it or it rejects the token.
PLATFORM_SETTINGS = {"telegram": ("Telegram", "telegram_api_url", "telegram_token"),
                     "discord": ("Discord", "discord_api_url", "discord_token")}


class WarmingClassifier:
    """The classifier, started in the background so the bot answers at once; the first /mood
    waits for the warm-up (spawning workers and loading the model takes seconds)."""

    def __init__(self, classifier) -> None:
        self.classifier = classifier
        self._started: asyncio.Task | None = None

    def start_in_background(self) -> None:
        self._started = asyncio.create_task(self.classifier.start(), name="classifier-warm-up")
        self._started.add_done_callback(self._log_outcome)

    @staticmethod
    def _log_outcome(task: asyncio.Task) -> None:
        from inference.result import ModelUnavailableError

        if not task.cancelled() and isinstance(task.exception(), ModelUnavailableError):
            # Its words say which weights are missing or corrupt, where: no traceback needed.
            log.error("classifier.start_failed", extra={
                "reason": f"{task.exception()} Every /mood is refused meanwhile: python -m bot --check says more."})
        elif not task.cancelled() and task.exception() is not None:
            log.error("classifier.start_failed", exc_info=task.exception())
        elif not task.cancelled():
            log.info("classifier.ready")

    @property
    def main_model_version(self) -> str | None:
        return self.classifier.main_model_version

    async def warmed(self, timeout_s: float) -> None:
        """Return once the warm-up is over (the model serving known, or known unavailable), or
        after `timeout_s`; starts it if nothing has."""
        if self._started is None:
            self.start_in_background()
        await asyncio.wait({self._started}, timeout=timeout_s)

    async def classify(self, path, **kwargs):
        if self._started is None:
            self.start_in_background()
        await asyncio.shield(self._started)
        return await self.classifier.classify(path, **kwargs)

    async def close(self) -> None:
        if self._started is not None and not self._started.done():
            # Let a warm-up in progress finish (idle workers close at once; busy ones are only
            # terminated after the pool's grace period), cancelling it only if it hangs.
            await asyncio.wait({self._started}, timeout=WARM_UP_WAIT_ON_CLOSE_S)
            if not self._started.done():
                self._started.cancel()
            with contextlib.suppress(BaseException):
                await self._started
        await self.classifier.close()


def hosts_of(uri: str) -> str:
    """The host part of a MongoDB URI, without the user and password: "db1:27017,db2:27017"."""
    netloc = uri.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    return netloc.rsplit("@", 1)[-1] or "(none)"


class PlatformStartError(Exception):
    """A chat platform could not be reached at start, or rejected the token: what to check."""


def token_rejected(platform: str, error: BaseException) -> bool:
    """Whether `error` is the platform's client saying the token is wrong (a 401 at login)."""
    if platform == "telegram":
        from telegram.error import InvalidToken

        return isinstance(error, InvalidToken)
    if platform == "discord":
        from discord import LoginFailure

        return isinstance(error, LoginFailure)
    return False


def causes(error: BaseException) -> Iterator[BaseException]:
    """`error`, what it was raised from, what that was raised from…"""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        cause = cause.__cause__


def invalid_url(error: BaseException) -> bool:
    """Whether `error`, or what it was raised from, is aiohttp refusing a URL it cannot call."""
    from aiohttp import InvalidURL

    return any(isinstance(cause, InvalidURL) for cause in causes(error))


def unreachable_reason(error: BaseException) -> str | None:
    """Why a platform could not be reached, when `error` or what it was raised from is a timeout
    or a failed connection (aiohttp's connection errors are OSErrors; python-telegram-bot raises
    its own from them); None for anything else (a rejected token says itself what to fix)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, TimeoutError):
            return str(cause) or "no answer in time"
        if isinstance(cause, OSError):
            return str(cause) or type(cause).__name__
        cause = cause.__cause__
    return None


def platform_answer(platform: str, error: BaseException) -> str | None:
    """What the platform's address answered instead of its API, in a few words ("404 Not Found",
    "Bad Gateway"), when `error` or what it was raised from is its client saying so; else None.
    The clients' own words carry the whole answer: a web server's HTML page, line after line."""
    from aiohttp import ClientError

    if any(isinstance(cause, ClientError) for cause in causes(error)):
        return None  # no answer at all: the connection failed
    for cause in causes(error):
        if platform == "discord":
            from discord import HTTPException

            # Discord's API names what it refuses with a code of its own (a payload of ours it
            # refused at start says itself what is wrong); an unknown route and a server's failure do not.
            if isinstance(cause, HTTPException) and (cause.code == 0 or cause.status >= 500):
                reason = getattr(cause.response, "reason", None) or ""
                return f"{cause.status} {reason}".strip()
        if platform == "telegram":
            from telegram.error import BadRequest, NetworkError, TimedOut

            if isinstance(cause, NetworkError) and not isinstance(cause, (TimedOut, BadRequest)):
                # "Internal Server Error (500). Parsing the server response b'<html>…' failed"
                said = str(cause).split(". Parsing the server response", 1)[0]
                return " ".join(said.split())[:120] or type(cause).__name__
    return None


async def start_frontend(frontend, settings: Settings, timeout_s: float = FRONTEND_START_TIMEOUT_S) -> None:
    """Start one front-end within `timeout_s`. A chat platform that cannot be reached, or that
    rejects the token, is said with its host and the setting to check: its client says only
    "Timed out" (or nothing), and "The token was rejected" names neither platform nor setting."""
    if frontend.platform not in PLATFORM_SETTINGS:  # the console reaches nothing
        await frontend.start()
        return
    name, url_setting, token_setting = PLATFORM_SETTINGS[frontend.platform]
    url = getattr(settings, url_setting)
    host = urlsplit(url).netloc or url
    try:
        async with asyncio.timeout(timeout_s) as bound:
            await frontend.start()
    except Exception as error:  # noqa: BLE001 - only these are translated, the rest goes on
        if token_rejected(frontend.platform, error):
            if frontend.platform == "telegram" and any("not found" in str(cause).lower() for cause in causes(error)):
                # A 404, which python-telegram-bot raises as a rejected token too: a malformed
                # token, or an address that does not end in /bot, where the token must follow.
                raise PlatformStartError(f"{name} answered 404 Not Found at {host}: check {token_setting.upper()} "
                                         f"and {url_setting.upper()} (it must end in /bot).") from error
            raise PlatformStartError(f"{name} rejected the token at {host}: check {token_setting.upper()}.") from error
        if frontend.platform == "telegram" and invalid_url(error):
            # The address with the token after it is no URL ('http://host:8081' + token: the token
            # read as the port). Not chained: the client's error shows that URL, token and all.
            raise PlatformStartError(f"{name} could not be called at {host}: {url_setting.upper()} with the token "
                                     f"after it is no URL: check {url_setting.upper()} (it must end in /bot).") from None
        reason = f"no answer within {timeout_s:.0f} s" if bound.expired() else unreachable_reason(error)
        if reason is None and (answered := platform_answer(frontend.platform, error)) is not None:
            # Reached, but what answered is not the API (a wrong path, a proxy's error page).
            raise PlatformStartError(f"{name} answered {answered} at {host}: check {url_setting.upper()}.") from error
        if reason is None:
            raise
        check = [url_setting.upper()]
        if name == "Discord" and settings.discord_gateway_url:
            check.append("DISCORD_GATEWAY_URL")
        raise PlatformStartError(f"{name} could not be reached at {host} ({reason}): check "
                                 f"{' and '.join(check)} and the network.") from error


async def _maybe_await(value):
    return await value if inspect.isawaitable(value) else value


def log_salt(data_dir: Path) -> str:
    """A per-installation salt, so hashed ids in the logs stay stable across restarts. The bot's
    user's alone (0600, one an earlier version made with the umask's 0644 narrowed too): whoever
    reads it can hash a user's id and find their lines in the logs."""
    path = data_dir / SALT_FILE
    try:
        salt = path.read_text().strip()
    except FileNotFoundError:
        data_dir.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
        salt = secrets.token_hex(16)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE), "w") as file:
            file.write(salt)
    with contextlib.suppress(OSError):  # best effort: one not ours to change is read as before
        path.chmod(PRIVATE_FILE)
    return salt


def build_sources(settings: Settings):
    """(resolver or None, fetcher) from the settings. Imported here: yt-dlp and spotipy are big."""
    from bot.sources.audio import AudioFetcher

    resolver = None
    if settings.spotify_enabled:
        from bot.sources.spotify import resolver_from_settings

        resolver = resolver_from_settings(settings)
    elif settings.spotify_client_id or settings.spotify_client_secret:
        log.warning("spotify.half_configured: SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET are both needed; "
                    "songs are searched on YouTube only and Spotify links are refused")
    else:
        log.info("spotify.off: no SPOTIFY_CLIENT_ID; songs are searched on YouTube only")
    fetcher = AudioFetcher(
        search_template=settings.audio_search,
        allowed_hosts=settings.allowed_host_set,
        max_bytes=settings.max_audio_bytes,
        max_duration_s=settings.max_audio_duration_s,
    )
    return resolver, fetcher


def build_app_usecases(settings: Settings, db, classifier, *, resolver, fetcher, writer) -> UseCases:
    from bot.sources.query import parse_query
    from storage.spool import InboxSpool

    return build_usecases(
        db, classifier, fetcher, resolver=resolver, writer=writer,
        limiter=MoodRateLimiter.from_settings(settings), heavy_limits=HeavyLimits.from_settings(settings),
        parse=functools.partial(parse_query, allowed_hosts=settings.allowed_host_set),
        max_audio_seconds=settings.max_audio_duration_s, spool=InboxSpool.in_data_dir(settings.data_dir),
        uploads=UploadBudget.from_settings(settings),
    )


def chat_frontends(settings: Settings, usecases: UseCases) -> list:
    """The Telegram and/or Discord front-ends whose tokens are set (imported only then)."""
    frontends = []
    if settings.telegram_token is not None:
        from bot.frontends.telegram import TelegramFrontend

        frontends.append(TelegramFrontend(settings, usecases))
    if settings.discord_token is not None:
        from bot.frontends.discord import DiscordFrontend

        frontends.append(DiscordFrontend(settings, usecases))
    return frontends


@dataclass
class App:
    settings: Settings
    force_console: bool = False
    # A closed stdin (sys.stdin is None) is read as an input that has ended.
    stdin: TextIO = field(default_factory=lambda: sys.stdin or io.StringIO())
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    usecases: UseCases | None = None
    scheduler: PromptScheduler | None = None
    frontends: list = field(default_factory=list)
    started: bool = False  # the start went through: a failure from then on is no start-up failure

    async def run(self) -> int:
        """Serve until a signal, /quit or the end of the console's input; the exit status."""
        stop = asyncio.Event()
        status = 0
        loop = asyncio.get_running_loop()

        def stop_on(sig: signal.Signals) -> None:
            nonlocal status
            if not stop.is_set():  # the first signal says how the bot was stopped
                status = EXIT_STATUS_ON[sig]
            stop.set()

        # A signal ignored when the bot started stays so: `nohup python -m bot` asked for SIGHUP's.
        heard = [sig for sig in EXIT_STATUS_ON if sig != signal.SIGHUP or signal.getsignal(sig) != signal.SIG_IGN]
        for sig in heard:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop_on, sig)
        try:
            async with contextlib.AsyncExitStack() as stack:
                signalled = asyncio.create_task(stop.wait(), name="signal")
                stack.push_async_callback(_cancel, signalled)
                starting = asyncio.create_task(self._start(stack), name="start")
                await asyncio.wait({starting, signalled}, return_when=asyncio.FIRST_COMPLETED)
                if not starting.done():
                    # Ctrl-C or SIGTERM while starting (a chat platform slow to answer): what has
                    # started stops now, not once the start has given up.
                    log.info("app.stopping_while_starting")
                    await _cancel(starting)
                    return status
                console = starting.result()
                self.started = True
                waiters = [signalled]
                if console is not None:
                    waiters.append(asyncio.create_task(console.run(), name="console"))
                else:
                    waiters.append(asyncio.create_task(_all_lost(self.frontends), name="frontends-lost"))
                done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                for task in done:
                    task.result()  # an exception in the console, or every chat front-end lost, surfaces here
                log.info("app.stopping")
                # At once: the work in progress, and the prompts on their way, which need the
                # front-ends' connections still open.
                await asyncio.gather(finish_frontends(self.frontends), self.scheduler.stop())
        finally:
            for sig in heard:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        return status

    async def _start(self, stack: contextlib.AsyncExitStack):
        from storage.database import Database
        from storage.models import DatabaseUnavailableError, StorageError
        from storage.outbox import JournalOutbox, JournalWriter

        settings = self.settings
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
        # Users' files a killed process left in $TMPDIR (it never deleted them): they go now.
        if (removed := await asyncio.to_thread(remove_stale)):
            log.info("app.stale_user_files_removed", extra={"folders": removed})

        if settings.mongodb_uri is None:
            from storage.embedded import EmbeddedServer

            server = EmbeddedServer(data_dir)
            await _maybe_await(server.start())
            stack.push_async_callback(lambda: _maybe_await(server.stop()))
            uri = server.uri
        else:
            uri = settings.mongodb_uri.get_secret_value()
        try:
            db = await Database.connect(uri, settings.database_name)
            stack.push_async_callback(db.close)
            await db.init()
        except StorageError as error:
            if settings.mongodb_uri is None or not isinstance(error, DatabaseUnavailableError):
                raise  # a refused login or database name says itself what to fix
            # A chat user's words ("try again shortly") don't tell an operator what to check.
            raise StorageError(f"{error} Check MONGODB_URI: the server at {hosts_of(uri)} must be "
                               "reachable from here.") from error

        from inference.pool import Classifier

        classifier = WarmingClassifier(Classifier(
            workers=settings.inference_workers, executor=settings.inference_executor,
            timeout_s=settings.inference_timeout_s, max_queue=settings.inference_max_queue,
        ))
        classifier.start_in_background()
        stack.push_async_callback(classifier.close)

        resolver, fetcher = build_sources(settings)
        # The download workers start now, in the background, so the first songs do not wait for them.
        downloads_ready = asyncio.create_task(fetcher.warm_up(), name="downloads-warm-up")
        downloads_ready.add_done_callback(_log_warm_up)
        stack.push_async_callback(_cancel, downloads_ready)
        writer = JournalWriter(db.journal, JournalOutbox.in_data_dir(data_dir), db.prompts)
        drainer = asyncio.create_task(writer.run_drainer(OUTBOX_DRAIN_INTERVAL_S, each_round=numbered("outbox")),
                                      name="outbox-drainer")  # a round's lines: req=outbox-<n>
        stack.push_async_callback(_cancel, drainer)

        self.usecases = build_app_usecases(settings, db, classifier, resolver=resolver, fetcher=fetcher, writer=writer)
        stack.push_async_callback(self.usecases.mood.close)  # after the front-ends', before the classifier's
        self.scheduler = PromptScheduler(db, self.usecases.journal)
        self.usecases.attach_schedule(self.scheduler)
        # The database answers now (init passed): prompts the previous process sent stay answerable
        # through the outbox if it goes down later.
        recalled = await self.usecases.journal.recall_open_prompts()
        log.info("journal.recalled_open_prompts", extra={"count": recalled})
        # A group's move to its new id (a Telegram supergroup) that the database did not let finish.
        await self.usecases.playlists.finish_moves()
        # Members' journal summaries a /journal delete of the previous process left wrong (killed
        # before they were made again), made again before any playlist reads them.
        await db.journal.recall_unsummed()
        # Members' place documents a mood request's failed write left without its vote (place_repairs).
        await db.requests.recall_unfolded()

        console = None
        self.frontends = [] if self.force_console else chat_frontends(settings, self.usecases)
        if not self.frontends:
            from bot.frontends.console import ConsoleFrontend

            console = ConsoleFrontend(self.usecases, self.stdin, self.stdout, data_dir=data_dir)
            self.frontends = [console]
        for frontend in self.frontends:
            self.scheduler.register(frontend)
            await start_frontend(frontend, settings)
            stack.push_async_callback(frontend.stop)
        # The front-ends serve: a live heartbeat says so, and that the event loop still turns. Not
        # after the scheduler's start, whose catch-up of a busy prompt time can take minutes.
        await stack.enter_async_context(heartbeat(heartbeat_path(data_dir)))
        # After the front-ends: missed prompts are sent at start and need their senders. Its stop
        # first: a start cut short by a signal, while it sends them, stops the scheduler too.
        stack.push_async_callback(self.scheduler.stop)
        await self.scheduler.start()
        settle_heap()
        log.info("app.started", extra={"frontends": ",".join(type(f).__name__ for f in self.frontends)})
        return console


def settle_heap() -> None:
    """Once started: collect start-up's garbage, then move every object alive now (modules,
    libraries, clients: they live as long as the process) out of the collector's sight. A full
    collection then scans only what came later: in a burst of 200 cached /mood it had stopped the
    event loop for 73 ms, which became every queued user's latency."""
    gc.collect()
    gc.freeze()


async def finish_frontends(frontends: list) -> None:
    """The chat front-ends' work in progress answered, or its askers told, all at once: each gives
    it a grace of its own (`finish`), and one after the other, with both platforms at work, the
    stop took two graces, near `docker stop`'s 10 s. Their stops then follow, in the start's
    reverse order."""
    finishing = [frontend.finish() for frontend in frontends if hasattr(frontend, "finish")]
    for outcome in await asyncio.gather(*finishing, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome


def _log_warm_up(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        # Not fatal: a download starts its worker itself when none is ready.
        log.warning("downloads.warm_up_failed", exc_info=task.exception())


class FrontendsLostError(Exception):
    """Every chat front-end has ended for good after the start (a revoked or reset token): a bot
    that answers nobody stops, with status 1, for a supervisor to restart it and the start to say
    what is wrong, rather than look alive (its heartbeat turning) for ever."""


async def _all_lost(frontends: list) -> None:
    chats = [f for f in frontends if hasattr(f, "lost")]
    if not chats:
        await asyncio.Event().wait()  # nothing to lose: until the app stops
    for frontend in chats:
        await frontend.lost.wait()
    log.error("app.no_frontend_left", extra={"frontends": ",".join(type(f).__name__ for f in chats)})
    raise FrontendsLostError("no chat platform is connected any more (the log says why: "
                             "telegram.polling_lost, discord.gateway_lost)")


async def _cancel(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
