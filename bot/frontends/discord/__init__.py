"""Discord front-end: discord.py cogs over app commands (`MoodCog`, `JournalCog`, `ServerCog`),
running inside the app's event loop. Also the Discord `PromptSender` (daily prompts by DM).

Intents: the default ones, none privileged: Discord gives a bot the text of DMs to it (the answers
to daily prompts) and of the message a message command targets without `message_content`. Guild
messages are not subscribed to at all. The privileged members intent only with
DISCORD_MEMBERS_INTENT: members leaving and joining (`ServerCog`), no member list.

Shards: as many as Discord recommends at start (`GET /gateway/bot`), which it requires from 2 500
servers on: discord.py's auto-sharded bot runs them all in this process, and is ready once each
shard is. DMs come on shard 0; sending anything is REST, whatever the shard.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from datetime import datetime, timedelta
from typing import Awaitable, Callable

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from discord.http import Route
from discord.webhook.async_ import async_context, interaction_response_params

from bot.config import Settings
from bot.frontends import render
from bot.frontends.chat_runs import ChatRuns
from bot.frontends.wiretext import mended_json
from bot.frontends.discord.interactions import (NETWORK_ERRORS, PLATFORM, RequestsInFlight, apologise,
                                                 refused_here, refuses_the_bot, refuses_the_user, tell_refused_here,
                                                 too_late, whose)
from bot.frontends.discord.journal import JournalCog
from bot.frontends.discord.kept import APPLICATION_COMMAND, KeptCommands, is_users_dm, sender_of, why_unreadable
from bot.frontends.discord import missed, rendering
from bot.frontends.discord.missed import USERS as MISSED_DM_USERS, MissedDMs, made_at
from bot.frontends.discord.mood import MoodCog
from bot.frontends.discord.server import ServerCog
from bot.logs import REQUEST, begin_request
from bot.replies import PromptMessage
from bot.usecases.ports import DeliveryFailed, DeliveryUncertain, RecipientGone, SenderRefused

__all__ = ["DiscordFrontend", "MoodCog", "JournalCog", "ServerCog", "STALE_COMMAND"]

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
GUILD_READY_TIMEOUT_S = 2.0  # discord.py's default wait for GUILD_CREATEs after READY
# The gateway's close code for a session whose token is no longer valid (reset in the Developer
# Portal, or by Discord itself after a leak): discord.py stops reconnecting.
AUTHENTICATION_FAILED = 4004
# The gateway's close code for a bot in more servers than its shards may carry: the shard count
# is asked of Discord at start, so the count it needs now is taken by a restart.
SHARDING_REQUIRED = 4011
GATEWAY_LOST = "The bot is offline on Discord until it is restarted"
# A daily prompt's DM from Discord: past it, the prompt may have arrived. Above aiohttp's 30 s to
# connect, so that a connection never made fails first, as `NOT_CONNECTED` (the prompt never left).
PROMPT_SEND_TIMEOUT_S = 60.0
# Daily prompts' DMs a second, at most: each is two requests (its DM channel opened, the message),
# 40 of Discord's global 50 a second, the rest left to the answers of commands meanwhile.
PROMPTS_PER_S = 20
# A daily prompt whose send a killed run never saw end is looked for in the DM (`find_prompt`): among
# the messages made since it was recorded, less PROMPT_CLOCK_SKEW for the clocks, read PROMPT_LOOKUP
# a call (Discord's most), oldest first, at most PROMPT_PAGES calls.
PROMPT_LOOKUP = 100
PROMPT_PAGES = 10
PROMPT_CLOCK_SKEW = timedelta(minutes=5)
# aiohttp's errors for a request that never left: no connection was made to Discord.
NOT_CONNECTED = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
# The stop (SIGTERM, Ctrl-C): the commands and DM answers in progress get STOP_GRACE_S to be answered;
# those still at work then (a download, the model) are cut short, their askers told within
# CUT_SHORT_TELL_S. Together well inside `docker stop`'s 10 s, with the rest of the stop.
STOP_GRACE_S = 4.0
CUT_SHORT_TELL_S = 2.0
CLEAR_AT_STOP_S = 1.0  # the stop's wait for the commands answered to be cleared from the inbox
# A command the user's Discord still offers that the bot no longer has, or has with other options
# (removed or changed by an update: the user's list is refreshed later, or this start's sync is on
# its way). Nothing failed, and the same command sent again would be refused again.
STALE_COMMAND = ("That command has changed since your Discord listed it: type / and pick it again from the list "
                 "(if it still looks the same, restart Discord to refresh the list).")
STALE_COMMAND_ERRORS = (app_commands.CommandNotFound, app_commands.CommandSignatureMismatch)
# The interactions a user waits on an answer to: a command, a button press or select, a form sent.
ANSWERABLE_INTERACTIONS = (discord.InteractionType.application_command.value, discord.InteractionType.component.value,
                           discord.InteractionType.modal_submit.value)


class ServingTree(app_commands.CommandTree):
    """The command tree, keeping each command's task with its interaction while it runs (`MoodBot.serve`),
    and refusing, with a word to the asker, a command that arrives once the stop has cut the rest short."""

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.type is discord.InteractionType.autocomplete:
            return True
        begin_request(f"dc-{interaction.id}")  # the command runs in this task: its log lines' req=
        bot = self.client
        # As a command that failed: its response, or in its "thinking…" or stage shown.
        cut_short = functools.partial(apologise, interaction, render.RESTARTING)
        if bot.stopping:
            with contextlib.suppress(*NETWORK_ERRORS, discord.HTTPException):
                await cut_short()
            if bot.kept is not None and interaction.type is discord.InteractionType.application_command:
                bot.kept.finished(interaction.id)  # told to send it again: not answered at the restart
            return False
        bot.serve(cut_short, interaction)
        return True


async def _as_its_request(request: str | None, tell: Callable[[], Awaitable[None]]) -> None:
    """`tell()` at the stop, in a task of the stop's (`finish`), what it logs (a refusal) as the
    request's it tells of: `discord.cut_short_not_told` had no req=, nothing to tie it to the user."""
    begin_request(request)
    await tell()


def bot_intents(members: bool = False) -> discord.Intents:
    intents = discord.Intents.default()
    intents.guild_messages = False  # everything in servers arrives as interactions
    intents.members = members  # privileged: only when the Developer Portal's switch is on too
    return intents


def gateway_loss(error: BaseException) -> str:
    """Why the gateway connection ended for good, and what to check, in one line."""
    if isinstance(error, discord.PrivilegedIntentsRequired):
        return (f"{GATEWAY_LOST}: Discord refused the members intent (4014). Switch on Server Members "
                "Intent in the Developer Portal, or unset DISCORD_MEMBERS_INTENT.")
    if isinstance(error, discord.ConnectionClosed):
        check = {AUTHENTICATION_FAILED: " Check DISCORD_TOKEN.",
                 SHARDING_REQUIRED: " The bot needs more shards: a restart asks Discord how many."}.get(error.code, "")
        return f"{GATEWAY_LOST}: Discord closed the gateway ({error.code} {error.reason or 'no reason'}).{check}"
    return f"{GATEWAY_LOST}: {error!r}"


def point_at(settings: Settings) -> None:
    """Aim discord.py at the configured endpoints (tests: local fakes). Both are class-level in
    discord.py: the REST base of every Route, and the gateway it connects to without asking."""
    Route.BASE = settings.discord_api_url.rstrip("/")
    if settings.discord_gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)
    discord.utils._from_json = parse_json  # the gateway's events and REST answers: half emojis mended


_DISCORD_PARSE_JSON = discord.utils._from_json


def parse_json(text: str | bytes) -> object:
    """As discord.py parses Discord's JSON, with half an emoji in any text made U+FFFD (wiretext):
    a song name, a message or a file name cut between a pair's two halves failed every later step."""
    parsed = _DISCORD_PARSE_JSON(text)
    marker = "\\ud" if isinstance(text, str) else b"\\ud"
    return mended_json(parsed) if marker in text.lower() else parsed


class MoodBot(commands.AutoShardedBot):
    def __init__(self, settings: Settings, usecases, *, guild_ready_timeout: float) -> None:
        # Replies echo what users typed (a song name, a note): no reply may ever ping anyone.
        # The members intent is for members leaving and joining: no member list fetched or kept.
        # Requests are traced to tell a progress edit in flight from one discord.py sleeps on.
        in_flight = RequestsInFlight()
        # moodbot joins no voice channel: discord.py's WARNINGs at each start that PyNaCl and davey
        # (voice's libraries) are not installed sent operators looking for what was wrong.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(command_prefix=commands.when_mentioned, intents=bot_intents(settings.discord_members_intent),
                         help_command=None, guild_ready_timeout=guild_ready_timeout,
                         allowed_mentions=discord.AllowedMentions.none(), chunk_guilds_at_startup=False,
                         member_cache_flags=discord.MemberCacheFlags.none(), http_trace=in_flight.trace_config,
                         tree_cls=ServingTree)
        self.in_flight = in_flight
        # The /mood runs of each server: those of a server the bot is removed from are dropped (chat_runs).
        self.chat_runs = ChatRuns()
        # The commands and DM answers at work (their tasks), each with how to tell its asker that
        # the stop cut it short (`finish`); `stopping` once it has.
        self.serving: dict[asyncio.Task, Callable[[], Awaitable[None]]] = {}
        self.clearing_when_done: set[asyncio.Task] = set()  # each cleared from the inbox when done
        self.stopping = False
        self.stop_grace_s = STOP_GRACE_S
        self.settings = settings
        self.usecases = usecases
        self.tree.on_error = self.on_app_command_error
        self.command_sync: asyncio.Task | None = None
        # Commands kept until answered, for a restart after a hard kill (`kept`): each is kept as
        # Discord sent it, before discord.py parses it.
        self.kept: KeptCommands | None = None
        # DMs sent while the bot could not hear them, read back at each new session (`catch_up`);
        # every DM handled is claimed there, so that none is answered twice.
        self.missed = MissedDMs()
        self.catching_up: asyncio.Task | None = None
        self.catch_up_again = False  # a new session began while `catching_up` read: read again after it
        self.serving_since_start = False  # the start's catch-up is under way: later sessions' follow
        parsers = self._connection.parsers
        self._parse_interaction, self._parse_message = parsers["INTERACTION_CREATE"], parsers["MESSAGE_CREATE"]
        parsers["MESSAGE_CREATE"] = self._keep_dm_then_parse
        if getattr(usecases, "inbox", None) is not None:
            self.kept = KeptCommands(usecases.inbox, lambda: self.application_id)
            parsers["INTERACTION_CREATE"] = self._keep_then_parse
        # discord.py ends the session for good on any error of a parser (its shard's worker takes it
        # for the end): one event shaped as its version does not know stopped the bot for everyone.
        # READY's is let be: without it nothing works, and the start says why.
        for event, parse in list(parsers.items()):
            if event != "READY":
                parsers[event] = functools.partial(self._read_event, event, parse)
        self._apologies: set[asyncio.Task] = set()

    def _read_event(self, event: str, parse: Callable[[dict], None], data: dict) -> None:
        """A gateway event handed to discord.py; one it cannot read is logged (its name, ids and
        discord.py's words: never its text) and dropped, and a user's command or DM is told something
        went wrong (`_apologise_unread`), where the session ended."""
        try:
            parse(data)
        except Exception as error:  # noqa: BLE001 - a shape discord.py's version does not know
            number = data.get("id") if isinstance(data, dict) else None
            log.error("discord.event_not_read", exc_info=error,
                      extra={"event": event, "id": str(number), "req": f"dc-{number}", "user": sender_of(data),
                             "reason": why_unreadable(error)})
            if event == "INTERACTION_CREATE" and data.get("type") == APPLICATION_COMMAND and self.kept is not None:
                self.kept.finished(int(number))  # not handed over again at the next start, to fail again
            apology = asyncio.get_running_loop().create_task(self._apologise_unread(event, data))
            self._apologies.add(apology)
            apology.add_done_callback(self._apologies.discard)

    async def _apologise_unread(self, event: str, data: dict) -> None:
        """render.GENERIC_ERROR for a command, a press or a form discord.py could not read (to the
        asker alone, as its response), or a user's DM (in the DM); nothing for any other event."""
        try:
            if event == "INTERACTION_CREATE" and data.get("type") in ANSWERABLE_INTERACTIONS:
                params = interaction_response_params(discord.InteractionResponseType.channel_message.value, {
                    "content": render.GENERIC_ERROR, "flags": discord.MessageFlags(ephemeral=True).value,
                    "allowed_mentions": {"parse": []}})
                await async_context.get().create_interaction_response(
                    int(data["id"]), str(data["token"]), session=self.http._HTTPClient__session, params=params)
            elif event == "MESSAGE_CREATE" and is_users_dm(data):
                await self.get_partial_messageable(int(data["channel_id"])).send(render.GENERIC_ERROR)
        except Exception as error:  # noqa: BLE001 - a payload without its ids, a refusal, the network
            log.info("discord.unread_not_told: %s", type(error).__name__)

    def _keep_then_parse(self, data: dict) -> None:
        self.kept.arrived(data)
        self._parse_interaction(data)

    def _keep_dm_then_parse(self, data: dict) -> None:
        """A MESSAGE_CREATE, from the gateway or read back (`catch_up`): a user's DM handled once."""
        if is_users_dm(data):
            if not self.missed.claim(int(data["id"])):
                return
            if self.kept is not None:
                self.kept.dm_arrived(data)
        try:
            self._parse_message(data)
        except Exception:
            # discord.py cannot read it (a field missing, or shaped as it does not know): not kept
            # for a restart, which could not read it either; the caller logs it.
            if self.kept is not None and is_users_dm(data):
                self.kept.finished(int(data["id"]))
            raise

    def _claim_then_parse(self, data: dict) -> None:
        """A DM the inbox hands over again (kept already)."""
        if self.missed.claim(int(data["id"])):
            self._parse_message(data)

    async def replay_kept(self) -> None:
        """At the start: the commands and DMs a run killed outright was answering, answered now."""
        if self.kept is not None:
            await self.kept.replay(self._parse_interaction, self._claim_then_parse)

    def catch_up(self) -> None:
        """Read back, in the background, the DMs sent while the bot could not hear them (`missed`)."""
        if self.catching_up is not None and not self.catching_up.done():
            # The one under way has read some channels before this session began: all are read
            # again once it is done (a DM handled already is not handed over twice).
            self.catch_up_again = True
            return
        self.catching_up = asyncio.create_task(self._catch_up(), name="discord-dm-catch-up")

    async def _catch_up(self) -> None:
        self.catch_up_again = True
        while self.catch_up_again:
            self.catch_up_again = False
            try:
                prompts = await self.usecases.journal.awaiting_answers(PLATFORM, MISSED_DM_USERS + 1)
                if len(prompts) > MISSED_DM_USERS:
                    log.warning("discord.dms_not_all_read_back", extra={"users": MISSED_DM_USERS})
                handed = await self.missed.catch_up(
                    self, prompts[:MISSED_DM_USERS], self._keep_dm_then_parse,
                    lambda chat, message: self.usecases.journal.is_prompt_message(PLATFORM, chat, str(message)))
                log.info("discord.dms_read_back", extra={"users": min(len(prompts), MISSED_DM_USERS),
                                                         "messages": handed})
            except Exception:  # noqa: BLE001 - nobody awaits this task
                log.error("discord.dms_not_read_back", exc_info=True)

    async def on_shard_ready(self, shard_id: int) -> None:
        """A shard began a new session (not a resume, after which Discord sends what was missed):
        on shard 0, DMs sent meanwhile are read back. The start's first is read back by `start`."""
        if shard_id == 0 and self.serving_since_start:
            self.catch_up()

    def answering_dm(self, message: discord.Message) -> None:
        """The running task (`JournalCog`'s listener) handles a user's DM: cleared from the inbox
        once the task ends."""
        task = asyncio.current_task()
        if self.kept is not None and task is not None:
            self._cleared_when_done(task, message.id)

    async def setup_hook(self) -> None:
        limit, longest_s = self.settings.max_audio_bytes, self.settings.max_audio_duration_s
        await self.add_cog(MoodCog(self, self.usecases, limit, self.settings.allowed_host_set,
                                   in_flight=self.in_flight, max_audio_seconds=longest_s))
        await self.add_cog(JournalCog(self, self.usecases, limit, self.settings.allowed_host_set,
                                      in_flight=self.in_flight, max_audio_seconds=longest_s))
        await self.add_cog(ServerCog(self, self.usecases))
        # One bulk overwrite per start keeps Discord's command list equal to the code's. In the
        # background: Discord keeps the last start's commands, which answer meanwhile, and a refused
        # sync (an outage, a long rate limit) must not keep this bot, or the app's others, down.
        self.command_sync = asyncio.create_task(self._sync_commands(), name="discord-command-sync")

    async def launch_shard(self, gateway: yarl.URL, shard_id: int, *, initial: bool = False) -> None:
        """Each shard on the configured gateway, when one is (DISCORD_GATEWAY_URL): discord.py
        takes the one `GET /gateway/bot` names, which is Discord's own."""
        if self.settings.discord_gateway_url:
            gateway = yarl.URL(self.settings.discord_gateway_url)
        await super().launch_shard(gateway, shard_id, initial=initial)

    async def _sync_commands(self) -> None:
        try:
            await self.tree.sync()
        except Exception:  # noqa: BLE001 - a refusal, a lost connection, a bug: nobody awaits this task
            log.error("discord.commands_not_synced", exc_info=True)

    async def close(self) -> None:
        for task in (self.command_sync, self.catching_up):
            if task is not None:
                task.cancel()
        await super().close()

    def serve(self, tell: Callable[[], Awaitable[None]], interaction: discord.Interaction | None = None) -> None:
        """The running task answers a user: kept until it ends, with `tell` for the stop. An
        application command's `interaction` is cleared from the inbox once it ends."""
        task = asyncio.current_task()
        if task is not None:
            self.serving[task] = functools.partial(_as_its_request, REQUEST.get(), tell)
            task.add_done_callback(self._served)
            if (self.kept is not None and interaction is not None
                    and interaction.type is discord.InteractionType.application_command):
                self._cleared_when_done(task, interaction.id)

    def keep_press(self, interaction: discord.Interaction, *, unnamed: bool = False) -> None:
        """The running task answers the button press `interaction` in the message pressed (a page
        turned, /forget's "Yes"): kept in the inbox until it ends, for a restart after a hard kill
        to answer (`KeptCommands.press_taken`; `unnamed`: under no user)."""
        task = asyncio.current_task()
        if self.kept is not None and task is not None and self.kept.press_taken(interaction.id, unnamed=unnamed):
            self._cleared_when_done(task, interaction.id)

    def press_replayed(self, interaction: discord.Interaction) -> bool:
        """Whether the press was handed over again at this start: the run killed outright had taken it on."""
        return self.kept is not None and self.kept.replayed(interaction.id)

    def _cleared_when_done(self, task: asyncio.Task, number: int) -> None:
        """`task` handles the kept command, press or DM `number`: cleared from the inbox once it
        ends, and waited for by the stop (`finish`) as its clears are made before it closes."""
        self.clearing_when_done.add(task)
        task.add_done_callback(functools.partial(self._command_ended, number))

    def _command_ended(self, number: int, task: asyncio.Task) -> None:
        self.clearing_when_done.discard(task)
        self.kept.finished(number)

    def _served(self, task: asyncio.Task) -> None:
        if not self.stopping:  # else `finish` still tells those it cut short
            self.serving.pop(task, None)

    async def finish(self, grace_s: float, tell_s: float = CUT_SHORT_TELL_S) -> int:
        """Before the connection closes: what is at work gets `grace_s` to be answered; what is
        still at work then is cancelled, and its asker told within `tell_s` (`render.RESTARTING`).
        discord.py does not wait for its handlers: closed, it dropped them unanswered, "thinking…"
        (or a stage) shown until Discord gave up on them. How many were cut short."""
        # And the kept ones that are not answers by name (a typed command's hint in a DM): one
        # ending after the stop's last clear (`KeptUntilAnswered.flush`) was answered again by the
        # next start, and its clear was left pending. Only at the first finish: the app's `stop`
        # finishes again, and one still at work after its grace (never cut short) had it twice.
        kept = () if self.stopping else self.clearing_when_done
        running = [task for task in (*self.serving, *kept) if not task.done()]
        if running:
            await asyncio.wait(running, timeout=grace_s)
        self.stopping = True
        left = {task: tell for task, tell in self.serving.items() if not task.done()}
        self.serving.clear()
        if not left:
            return 0
        log.warning("discord.cut_short_by_stop", extra={"answers": len(left)})

        async def cut(task: asyncio.Task, tell: Callable[[], Awaitable[None]]) -> None:
            task.cancel()
            await asyncio.wait([task])  # its stages settled: none is shown after what is told
            try:
                await tell()
            except Exception as error:  # noqa: BLE001 - refused, the network: the stop goes on
                log.info("discord.cut_short_not_told: %s", type(error).__name__)

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(tell_s):
                await asyncio.gather(*(cut(task, tell) for task, tell in left.items()))
        return len(left)

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands: only slash commands, and DMs handled by `JournalCog`'s listener."""
        return None

    async def on_app_command_error(self, interaction: discord.Interaction,
                                   error: app_commands.AppCommandError) -> None:
        if too_late(interaction, getattr(error, "original", error)):
            return
        if interaction.guild_id is not None and refused_here(getattr(error, "original", error)):
            # The server's channel setting refused the answer (an embed, a chart): said, not apologised for.
            try:
                await tell_refused_here(interaction)
            except (discord.HTTPException, *NETWORK_ERRORS) as failure:
                log.info("discord.refusal_not_told: %s", type(failure).__name__)
            return
        if isinstance(error, STALE_COMMAND_ERRORS):
            log.info("discord.stale_command", extra={**whose(interaction.user, interaction.guild_id),
                                                     "reason": type(error).__name__})
            apology = STALE_COMMAND
        else:
            log.error("discord command failed", exc_info=error, extra=whose(interaction.user, interaction.guild_id))
            apology = render.GENERIC_ERROR
        with contextlib.suppress(discord.HTTPException):
            await apologise(interaction, apology)


class DiscordFrontend:
    """Adapter between Discord and the use cases; also the Discord `PromptSender`."""

    platform = PLATFORM
    prompts_per_s = PROMPTS_PER_S

    def __init__(self, settings: Settings, usecases, *,
                 guild_ready_timeout: float = GUILD_READY_TIMEOUT_S) -> None:
        if settings.discord_token is None:
            raise ValueError("DISCORD_TOKEN is not set")
        self.settings = settings
        self.usecases = usecases
        self.bot = MoodBot(settings, usecases, guild_ready_timeout=guild_ready_timeout)
        self._connection: asyncio.Task | None = None
        # Set when the session has ended for good after the start: the app stops once no chat
        # front-end is left, rather than look alive and answer nobody.
        self.lost = asyncio.Event()
        self.prompt_timeout_s = PROMPT_SEND_TIMEOUT_S

    async def start(self) -> None:
        point_at(self.settings)
        try:
            await self._connect()
        except BaseException:
            await self.stop()
            raise
        log.info("discord front-end ready as %s", self.bot.user)

    async def _connect(self) -> None:
        await self.bot.login(self.settings.discord_token.get_secret_value())
        self._connection = asyncio.create_task(self.bot.connect(reconnect=True), name="discord-gateway")
        ready = asyncio.create_task(self.bot.wait_until_ready())
        done, _ = await asyncio.wait({ready, self._connection}, timeout=READY_TIMEOUT_S,
                                     return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if self._connection in done:
                # start() raises why the gateway connection ended; stop() has no more to say.
                connection, self._connection = self._connection, None
                connection.result()
            raise TimeoutError("Discord did not become ready in time")
        self._connection.add_done_callback(self._connection_ended)
        await self.bot.replay_kept()
        self.bot.serving_since_start = True
        self.bot.catch_up()  # after the replay, which claims the DMs it hands over

    def _connection_ended(self, connection: asyncio.Task) -> None:
        """discord.py reconnects through outages and resumes; a connection that ends on its own
        after the start is over for good (a reset token, an intent switched off in the Developer
        Portal), and nothing else would say so: the app, its other front-ends and its heartbeat
        live on. Said once here; stop() then keeps quiet about it."""
        if connection.cancelled() or connection.exception() is None:  # stop() closed it
            return
        log.error("discord.gateway_lost", extra={"reason": gateway_loss(connection.exception())})
        self.lost.set()

    async def finish(self) -> None:
        """The stop's first part, which the app runs for all its front-ends at once: what is at
        work is answered or its askers told (`MoodBot.finish`)."""
        if self._connection is not None and not self.bot.is_closed():
            await self.bot.finish(self.bot.stop_grace_s)
            if self.bot.kept is not None:
                await self.bot.kept.flush(CLEAR_AT_STOP_S)

    async def stop(self) -> None:
        """Close the connection, once what is at work is answered or its askers told (`finish`);
        safe to call again, and after a failed start."""
        await self.finish()
        await self.bot.close()
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if connection.done() and not connection.cancelled() and connection.exception() is not None:
            return  # ended on its own, after the start: `_connection_ended` said why
        # Closed, the bot needs nothing more of it; and a shard still launching (one that cannot
        # connect, or waiting its turn to IDENTIFY) is retried by discord.py every 5 s, closed or not.
        connection.cancel()
        with contextlib.suppress(asyncio.CancelledError, discord.ConnectionClosed):
            await connection

    async def send_prompt(self, prompt: PromptMessage) -> str | None:
        channel, made_before = None, None
        try:
            channel = await self.bot.create_dm(discord.Object(id=int(prompt.chat_id)))
            made_before = self.bot.in_flight.maybe_made()
            async with asyncio.timeout(self.prompt_timeout_s):
                message = await channel.send(rendering.prompt_text(prompt.phrase))
        except discord.HTTPException as error:
            if refuses_the_user(error):
                raise RecipientGone(f"{error.status} {error.code} {error.text}") from error
            if refuses_the_bot(error):
                raise SenderRefused(f"{error.status} {error.code} {error.text}") from error
            if error.status >= 500 or error.status == 429:  # Discord's outage (after discord.py's retries)
                raise DeliveryFailed(str(error)) from error
            raise  # Discord refused what the bot sent: the bot's doing, not an outage
        except NETWORK_ERRORS as error:
            if channel is None or isinstance(error, NOT_CONNECTED):
                # No DM channel yet, or no connection made: the prompt never left, and is tried again.
                raise DeliveryFailed(f"{type(error).__name__}: {error}") from error
            if self.bot.in_flight.maybe_made() == made_before:
                # Each try answered 429 (discord.py was sleeping out a Retry-After past the wait), or
                # none sent yet: Discord made nothing, and the prompt is tried again.
                raise DeliveryFailed(f"{type(error).__name__}: rate limited by Discord, not sent") from error
            # The request went out (timed out, or cut off): Discord may have sent the DM, whose id
            # never came back. An answer in the DM still finds it: the user's latest open prompt.
            raise DeliveryUncertain(f"DM not confirmed: {type(error).__name__}") from error
        return str(message.id)

    async def find_prompt(self, prompt: PromptMessage, recorded_at: datetime) -> str | None:
        """The id of the bot's DM showing `prompt`, made since it was recorded (less
        PROMPT_CLOCK_SKEW: Discord's clock and the bot's): the DM's history is read from then on,
        PROMPT_LOOKUP messages a call, oldest first, up to PROMPT_PAGES calls (the first found is
        taken); None when none of them shows it. Its phrase is the day's: none repeats within
        NO_REPEAT_DAYS. Raises when the history cannot be read, or not within `missed.CHANNEL_S`
        (all of its calls)."""
        me = self.bot.user.id if self.bot.user else None
        since = recorded_at - PROMPT_CLOCK_SKEW
        after = discord.utils.time_snowflake(since)
        async with asyncio.timeout(missed.CHANNEL_S):  # as a missed DMs' channel: aiohttp alone waits 5 min
            channel = await self.bot.create_dm(discord.Object(id=int(prompt.chat_id)))
            for _ in range(PROMPT_PAGES):
                page = await self.bot.http.logs_from(channel.id, PROMPT_LOOKUP, after=after)
                # Discord lists the oldest PROMPT_LOOKUP after `after`, newest first.
                for data in sorted(page, key=lambda data: int(data["id"])):
                    author, made = data.get("author") or {}, made_at(data)
                    if (rendering.shows_prompt(str(data.get("content") or ""), prompt.phrase)  # an older wording too
                            and (made is None or made >= since)
                            and (str(author.get("id")) == str(me) if me else author.get("bot"))):
                        return str(data["id"])
                if len(page) < PROMPT_LOOKUP:
                    break
                after = max(int(data["id"]) for data in page)
        return None
