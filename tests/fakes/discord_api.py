"""A fake Discord on 127.0.0.1: the REST API under `Route.BASE` plus a minimal gateway websocket.

discord.py logs in, connects and syncs its commands exactly as it does against discord.com. Tests
then push gateway events (`INTERACTION_CREATE`, `MESSAGE_CREATE`, `MESSAGE_UPDATE`) and assert on the REST calls the
bot makes in answer: interaction callbacks, edits of the original response, DMs. Every call is
recorded; any route can be made to answer 429 with Discord's rate-limit headers. As Discord does,
it refuses (400 Invalid Form Body, code 50035) a message over its limits (`payload_refusal`):
content, embeds, components, attachments' descriptions, autocomplete choices and command
descriptions; a file over the upload limit (413, code 40005); and a sixth followup of an interaction
through a user's own install alone (400, code 40094).
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from aiohttp import WSMsgType, web

from tests.fakes.calls import wait_for_call

API_PREFIX = "/api/v10"
APP_ID = 900000000000000001
BOT_USER_ID = APP_ID
HEARTBEAT_INTERVAL_MS = 41250
EPHEMERAL = 64
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 31)  # view channel, send messages, use app commands
ADMIN_PERMISSIONS = MEMBER_PERMISSIONS | (1 << 5)  # + manage server
ADMINISTRATOR_PERMISSIONS = MEMBER_PERMISSIONS | (1 << 3)  # + Administrator, without manage server's own bit
APP_PERMISSIONS = 2248473465835073  # the bot's in a channel (an interaction's app_permissions): Send Messages, Embed Links, Attach Files…
SEND_MESSAGES, EMBED_LINKS, ATTACH_FILES = 1 << 11, 1 << 14, 1 << 15
MISSING_PERMISSIONS = 50013  # a 403's code: the bot lacks a permission in the channel
PUBLIC_THREAD = 11  # a channel's type: a thread, or a forum's post
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)  # guild members, presences, message content
UNKNOWN_INTERACTION = 10062  # an interaction answered too late (3 s), or its token's 15 minutes are over
INVALID_WEBHOOK_TOKEN = 50027  # an interaction token used after its 15 minutes
UNKNOWN_MESSAGE = 10008
ALREADY_ACKNOWLEDGED = 40060  # a second callback for an interaction: "Interaction has already been acknowledged"
# An interaction through a user's own install alone (authorizing_integration_owners: USER_INSTALL
# only) takes at most this many followups; the next is refused 400, MAX_FOLLOWUPS_REACHED.
USER_INSTALL_FOLLOWUPS, MAX_FOLLOWUPS_REACHED = 5, 40094
DISCORD_EPOCH_MS = 1_420_070_400_000  # a snowflake's time counts from 2015-01-01, in milliseconds
DEFERRED_CHANNEL_MESSAGE = 5  # the callback that shows "… is thinking" until the answer is edited in
LOADING = 1 << 7  # a message's flag while it shows "… is thinking"
VOICE_MESSAGE_FLAG = 1 << 13  # a message's flag: it is a voice message (IS_VOICE_MESSAGE)
DISALLOWED_INTENTS = 4014  # gateway close code: an intent the Developer Portal has not enabled
SHARDING_REQUIRED = 4011  # gateway close code: a bot in too many servers for the shards it identified with
# Discord's limits on what a bot sends (characters, as Discord counts them: code points).
MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TITLE, MAX_EMBED_DESCRIPTION, MAX_FIELDS = 256, 4096, 25
MAX_FIELD_NAME, MAX_FIELD_VALUE, MAX_FOOTER, MAX_AUTHOR = 256, 1024, 2048, 256
MAX_EMBEDS_TOTAL = 6000  # all the embeds of a message together: titles, descriptions, fields, footers, authors
MAX_CUSTOM_ID, MAX_LABEL, MAX_SELECT_OPTIONS, MAX_ROWS, MAX_ROW_BUTTONS = 100, 80, 25, 5, 5
MAX_CHOICES, MAX_CHOICE = 25, 100  # autocomplete: at most 25 choices, each name and value 1-100
MAX_COMMAND_DESCRIPTION = 100  # application commands' and options' descriptions: 1-100
MAX_ATTACHMENT_DESCRIPTION = 1024
MAX_UPLOAD = 10 * 1024 * 1024  # a bot's upload to a server without boosts
INVALID_FORM_BODY = 50035
TOO_LARGE = 40005  # "Request entity too large"
AUTOCOMPLETE_RESULT = 8
# Gateway events Discord sends only to a bot that identified with their intent (guild members).
EVENT_INTENTS = {"GUILD_MEMBER_ADD": 1 << 1, "GUILD_MEMBER_REMOVE": 1 << 1, "GUILD_MEMBER_UPDATE": 1 << 1}
# ... and a message's events: a server's with GUILD_MESSAGES, a DM's with DIRECT_MESSAGES (whose
# content comes without the privileged MESSAGE_CONTENT intent, which only servers' messages need).
MESSAGE_EVENTS = frozenset({"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"})
GUILD_MESSAGES, DIRECT_MESSAGES = 1 << 9, 1 << 12

# (HTTP method, path pattern) -> the name tests use for the call.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", r"/users/@me", "get_me"),
    ("GET", r"/oauth2/applications/@me", "application_info"),
    ("GET", r"/gateway(/bot)?", "gateway"),
    ("PUT", r"/applications/\d+(/guilds/\d+)?/commands", "sync_commands"),
    ("POST", r"/interactions/(?P<id>\d+)/(?P<token>[^/]+)/callback", "interaction_callback"),
    ("PATCH", r"/webhooks/\d+/(?P<token>[^/]+)/messages/@original", "edit_original"),
    ("GET", r"/webhooks/\d+/(?P<token>[^/]+)/messages/@original", "get_original"),
    ("DELETE", r"/webhooks/\d+/(?P<token>[^/]+)/messages/@original", "delete_original"),
    ("POST", r"/webhooks/\d+/(?P<token>[^/]+)", "followup"),
    ("PATCH", r"/webhooks/\d+/(?P<token>[^/]+)/messages/(?P<message>\d+)", "edit_followup"),
    ("DELETE", r"/webhooks/\d+/(?P<token>[^/]+)/messages/(?P<message>\d+)", "delete_followup"),
    ("POST", r"/users/@me/channels", "create_dm"),
    ("POST", r"/channels/(?P<channel>\d+)/messages", "send_message"),
    ("GET", r"/channels/(?P<channel>\d+)/messages", "channel_history"),
    ("PATCH", r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)", "edit_message"),
    ("POST", r"/channels/(?P<channel>\d+)/typing", "typing"),
)


@dataclass
class Call:
    name: str
    method: str
    path: str
    json: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    match: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)
    status: int = 200
    result: Any = None
    query: dict[str, str] = field(default_factory=dict)  # its URL's (a history's before, after, limit)

    @property
    def content(self) -> str:
        data = self.json.get("data", self.json) if self.name == "interaction_callback" else self.json
        return str((data or {}).get("content") or "")

    @property
    def embeds(self) -> list[dict]:
        data = self.json.get("data", self.json) if self.name == "interaction_callback" else self.json
        return list((data or {}).get("embeds") or [])

    @property
    def flags(self) -> int:
        data = self.json.get("data", self.json) if self.name == "interaction_callback" else self.json
        return int((data or {}).get("flags") or 0)

    @property
    def token(self) -> str | None:
        return self.match.get("token")


def _embed_refusals(embeds: list) -> list[str]:
    problems, total = [], 0
    if len(embeds) > MAX_EMBEDS:
        problems.append(f"embeds: more than {MAX_EMBEDS}")
    for n, embed in enumerate(embeds):
        fields = embed.get("fields") or []
        texts = [("title", embed.get("title"), MAX_EMBED_TITLE),
                 ("description", embed.get("description"), MAX_EMBED_DESCRIPTION),
                 ("footer.text", (embed.get("footer") or {}).get("text"), MAX_FOOTER),
                 ("author.name", (embed.get("author") or {}).get("name"), MAX_AUTHOR)]
        for f, item in enumerate(fields):
            texts += [(f"fields.{f}.name", item.get("name"), MAX_FIELD_NAME),
                      (f"fields.{f}.value", item.get("value"), MAX_FIELD_VALUE)]
            if not str(item.get("name") or "").strip() or not str(item.get("value") or "").strip():
                problems.append(f"embeds.{n}.fields.{f}: This field is required")
        for where, text, limit in texts:
            length = len(str(text or ""))
            total += length
            if length > limit:
                problems.append(f"embeds.{n}.{where}: Must be {limit} or fewer in length.")
        if len(fields) > MAX_FIELDS:
            problems.append(f"embeds.{n}.fields: Must be {MAX_FIELDS} or fewer in length.")
    if total > MAX_EMBEDS_TOTAL:
        problems.append(f"embeds: Embed size exceeds maximum size of {MAX_EMBEDS_TOTAL}")
    return problems


def _component_refusals(rows: list) -> list[str]:
    problems = []
    if len(rows) > MAX_ROWS:
        problems.append(f"components: Must be {MAX_ROWS} or fewer in length.")
    for r, row in enumerate(rows):
        items = row.get("components") or []
        if len(items) > MAX_ROW_BUTTONS:
            problems.append(f"components.{r}.components: Must be {MAX_ROW_BUTTONS} or fewer in length.")
        for c, item in enumerate(items):
            where = f"components.{r}.components.{c}"
            if "custom_id" in item and not 1 <= len(str(item["custom_id"])) <= MAX_CUSTOM_ID:
                problems.append(f"{where}.custom_id: Must be between 1 and {MAX_CUSTOM_ID} in length.")
            if len(str(item.get("label") or "")) > MAX_LABEL:
                problems.append(f"{where}.label: Must be {MAX_LABEL} or fewer in length.")
            options = item.get("options") or []
            if len(options) > MAX_SELECT_OPTIONS:
                problems.append(f"{where}.options: Must be {MAX_SELECT_OPTIONS} or fewer in length.")
            for o, option in enumerate(options):
                for key in ("label", "value", "description"):
                    if len(str(option.get(key) or "")) > MAX_CHOICE:
                        problems.append(f"{where}.options.{o}.{key}: Must be {MAX_CHOICE} or fewer in length.")
    return problems


def _command_refusals(commands: list) -> list[str]:
    problems = []

    def walk(where: str, command: dict, option: bool = False) -> None:
        described = option or command.get("type", 1) == 1  # a context menu's command has none
        description = str(command.get("description") or "")
        if described and not 1 <= len(description) <= MAX_COMMAND_DESCRIPTION:
            problems.append(f"{where}.description: Must be between 1 and {MAX_COMMAND_DESCRIPTION} in length.")
        if not 1 <= len(str(command.get("name") or "")) <= 32:
            problems.append(f"{where}.name: Must be between 1 and 32 in length.")
        options = command.get("options") or []
        if len(options) > 25:
            problems.append(f"{where}.options: Must be 25 or fewer in length.")
        for o, option in enumerate(options):
            walk(f"{where}.options.{o}", option, option=True)
            if len(option.get("choices") or []) > MAX_CHOICES:
                problems.append(f"{where}.options.{o}.choices: Must be {MAX_CHOICES} or fewer in length.")

    for n, command in enumerate(commands):
        walk(str(n), command)
    return problems


def payload_refusal(name: str, body: dict) -> list[str]:
    """What Discord refuses in what a bot sends (400 Invalid Form Body): each problem, as
    "field: why"; none when it is within Discord's limits."""
    if name == "sync_commands":
        return _command_refusals(body.get("items") or [])
    if name == "interaction_callback":
        data = body.get("data") or {}
        if int(body.get("type", 0)) == AUTOCOMPLETE_RESULT:
            choices = data.get("choices") or []
            problems = [f"data.choices: Must be {MAX_CHOICES} or fewer in length."] if len(choices) > MAX_CHOICES else []
            for n, choice in enumerate(choices):
                for key in ("name", "value"):
                    value = choice.get(key)
                    if isinstance(value, str) and not 1 <= len(value) <= MAX_CHOICE:
                        problems.append(f"data.choices.{n}.{key}: Must be between 1 and {MAX_CHOICE} in length.")
            return problems
        body = data
    elif name not in ("edit_original", "followup", "edit_followup", "send_message", "edit_message"):
        return []
    problems = []
    if len(str(body.get("content") or "")) > MAX_CONTENT:
        problems.append(f"content: Must be {MAX_CONTENT} or fewer in length.")
    problems += _embed_refusals(body.get("embeds") or [])
    problems += _component_refusals(body.get("components") or [])
    for n, attachment in enumerate(body.get("attachments") or []):
        if len(str(attachment.get("description") or "")) > MAX_ATTACHMENT_DESCRIPTION:
            problems.append(f"attachments.{n}.description: Must be {MAX_ATTACHMENT_DESCRIPTION} or fewer in length.")
    return problems


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    """Discord sends a bare `application/json` content type, and discord.py compares it exactly."""
    return web.Response(body=json.dumps(body).encode(), status=status, headers={
        "Content-Type": "application/json", **(headers or {})})


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def session_of(shard: list[int]) -> str:
    """A session's id, naming the shard it identified as (which a RESUME of it goes on)."""
    return f"fake-session-{shard[0]}-{shard[1]}"


def shard_of_session(session_id: str) -> tuple[int, int]:
    shard_id, shards = session_id.rsplit("-", 2)[1:]
    return int(shard_id), int(shards)


def snowflake_at(made_at: datetime, serial: int) -> int:
    """An id of something made at `made_at`, as Discord's ids are: its time in the top bits (an
    interaction's tells when its token's 15 minutes began), a serial below."""
    return (int(made_at.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22 | serial & 0x3FFFFF


def thread_in(guild: int, thread_id: int, parent_id: int, name: str = "a thread") -> dict:
    """A thread's channel payload, as an interaction made in it carries it: a thread of a text
    channel, or a forum's post (a thread too, its parent the forum)."""
    return {"id": str(thread_id), "type": PUBLIC_THREAD, "guild_id": str(guild), "name": name,
            "parent_id": str(parent_id), "owner_id": str(BOT_USER_ID + 1), "message_count": 1, "member_count": 1,
            "rate_limit_per_user": 0, "flags": 0,
            "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "locked": False,
                                "archive_timestamp": "2026-12-01T00:00:00+00:00"}}


def user_payload(user_id: int, name: str = "alice") -> dict:
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": name.title(),
            "avatar": None, "bot": False}


class FakeDiscord:
    def __init__(self, token: str | None = None) -> None:
        self.token = token  # when set, a REST call with another token is answered 401, as Discord does
        self.calls: list[Call] = []
        self.files: dict[str, bytes] = {}  # CDN: attachment file name -> bytes
        self.cdn_open = asyncio.Event()  # cleared: the CDN holds each download until it is set (a slow file)
        self.cdn_open.set()
        self.commands: list[dict] = []
        self.admins: set[int] = set()  # users who get "manage server" in every guild
        self.administrators: set[int] = set()  # users whose role has Administrator alone, in every guild
        self.app_permissions = APP_PERMISSIONS  # the bot's in the channel of each interaction, as sent with it
        # As a new application in the Developer Portal: no privileged intent switched on.
        self.privileged_intents = 0
        self.resumable = True  # False: a RESUME is answered "invalid session", and the bot must identify again
        self.identified = asyncio.Event()
        self.identify: dict[str, Any] = {}  # the last IDENTIFY's payload
        self.identifies: list[dict[str, Any]] = []  # every IDENTIFY's payload, in order
        # What GET /gateway/bot recommends: how many shards, and where (None: this fake's gateway).
        self.recommended_shards = 1
        self.recommended_gateway: str | None = None
        # Shards Discord requires (a bot in 2 500 servers or more): an IDENTIFY with fewer is
        # closed with 4011 'Sharding required'. None: a single connection will do.
        self.shards_required: int | None = None
        self._shard_of: dict[web.WebSocketResponse, tuple[int, int]] = {}  # socket -> [shard id, count]
        # Its ids are Discord's snowflakes: made now (`clock`), in the top bits, a serial below.
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        # call name -> [remaining, retry_after, status, error code, error message]
        self._failures: dict[str, list[Any]] = {}
        self.expired: set[str] = set()  # interaction tokens past their 15 minutes
        self.acknowledged: set[str] = set()  # interaction tokens whose callback was taken: another is refused
        self._taken_then_failed: dict[str, list[int]] = {}  # call name -> [remaining, status]
        self._drops: dict[str, int] = {}  # call name -> how many to cut off unanswered
        # Interaction token -> its deferred answer: {"id", "flags", "loading", "deleted"}
        self._deferred: dict[str, dict[str, Any]] = {}
        # A button press's token -> the message pressed: its "original" message, which an edit changes
        self._pressed: dict[str, int] = {}
        self._flags: dict[int, int] = {}  # an interaction's answer -> its flags (EPHEMERAL), sent with a press on it
        self._responses: dict[str, dict] = {}  # interaction token -> the message its response (type 4) made
        # The tokens of interactions through a user's own install alone, and the followups each made
        self._user_installed: dict[str, int] = {}
        self._holds: dict[str, asyncio.Event] = {}  # call name -> set to answer the next one
        # A channel's messages, oldest first, as GET /channels/{id}/messages reads them: the
        # users' DMs (`user_dms`, `user_dms_while_away`) and what the bot sent there.
        self.channel_messages: dict[str, list[dict]] = {}
        self._changed = asyncio.Condition()
        self._mark = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> "FakeDiscord":
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway-ws", self._gateway)
        app.router.add_get("/cdn/{name}", self._cdn)
        app.router.add_route("*", API_PREFIX + "/{path:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        # Started again after a stop (Discord back after the bot's kill), at the same address: the
        # links of the files it serves go on working.
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway-ws"

    def snowflake(self) -> int:
        """A new id, as Discord makes them: when (`clock`), in milliseconds since 2015, then a
        serial; one made later is larger, and GET /channels/{id}/messages?after= finds it by time."""
        return snowflake_at(self.clock(), next(self._ids))

    # ---- what tests drive ----------------------------------------------------------------------
    def fail_next(self, name: str, times: int, retry_after: float = 0.5, *, status: int = 429,
                  code: int = 50035, message: str = "Invalid Form Body") -> None:
        """Answer the next `times` calls named `name` with 429 and rate-limit headers, or with
        another error `status` (400: Discord refused the payload) and Discord's JSON error `code`
        and `message` (403 50007: "Cannot send messages to this user")."""
        self._failures[name] = [times, retry_after, status, code, message]

    def take_then_fail_next(self, name: str, times: int = 1, *, status: int = 502) -> None:
        """Make the next `times` calls named `name`, but answer them `status` with a proxy's page,
        as Discord's edge does when it gives up waiting on a request that goes through all the same:
        the bot cannot tell them from calls never made, and discord.py sends them again. `status`
        0: the connection is cut off after the call was made, with no answer at all."""
        self._taken_then_failed[name] = [times, status]

    def hold_next(self, name: str) -> asyncio.Event:
        """Keep the answer to the next call named `name` (recorded as it arrives) until the event
        returned is set: a request Discord has received and not answered yet."""
        self._holds[name] = release = asyncio.Event()
        return release

    def drop_next(self, name: str, times: int = 1) -> None:
        """Cut off the next `times` calls named `name` without an answer, as a connection lost on
        the way does (recorded with status 0)."""
        self._drops[name] = times

    async def close_gateway(self, code: int, reason: str) -> None:
        """Close the gateway connections with a close `code`, as Discord does to a session it
        ends: 4004 'Authentication failed' when the bot's token is reset."""
        for socket in list(self._sockets):
            await socket.close(code=code, message=reason.encode())

    def expire(self, token: str) -> None:
        """Make an interaction's token as Discord has it after 15 minutes: its callback is an
        unknown interaction, and editing or following up its messages an invalid webhook token."""
        self.expired.add(token)

    def delete_deferred(self, token: str) -> None:
        """Delete an interaction's deferred answer while it shows "… is thinking", as a moderator
        (or the asker) deleting that message does: editing it is then an unknown message."""
        self._deferred[token]["deleted"] = True

    def add_file(self, filename: str, data: bytes) -> dict:
        """An attachment payload (for `resolved.attachments` or a message) served by the fake CDN."""
        attachment_id = self.snowflake()
        stored = f"{attachment_id}-{filename}"
        self.files[stored] = data
        url = f"http://127.0.0.1:{self.port}/cdn/{stored}"
        return {"id": str(attachment_id), "filename": filename, "size": len(data), "url": url,
                "proxy_url": url, "content_type": "audio/ogg"}

    def add_voice_message(self, data: bytes, duration_secs: float | None) -> dict:
        """A voice message's attachment, as Discord's app records one: named voice-message.ogg
        whoever sent it, with its length in seconds (`duration_secs`, left out when None) and its
        waveform; the message carrying it is flagged VOICE_MESSAGE_FLAG."""
        attachment = self.add_file("voice-message.ogg", data)
        attachment["waveform"] = base64.b64encode(bytes(range(0, 256, 4))).decode()
        if duration_secs is not None:
            attachment["duration_secs"] = duration_secs
        return attachment

    def mark(self) -> int:
        return len(self.calls)

    async def dispatch(self, event: str, data: dict) -> None:
        """Push a gateway event, unless the bot did not ask for its intent (Discord would not send it)."""
        needed = EVENT_INTENTS.get(event)
        if event in MESSAGE_EVENTS:
            needed = DIRECT_MESSAGES if data.get("guild_id") is None else GUILD_MESSAGES
        if needed is not None and not int(self.identify.get("intents", 0)) & needed:
            return
        async with self._changed:
            self._mark = len(self.calls)
        for socket in self._sockets_for(data.get("guild_id")):
            await socket.send_str(json.dumps({"op": 0, "t": event, "s": next(self._seq), "d": data}))

    def _sockets_for(self, guild_id: str | None) -> list[web.WebSocketResponse]:
        """The connections an event goes to, as Discord sends it: a server's to the shard
        (guild_id >> 22) % shards, a DM's to shard 0."""
        def shard_of(socket: web.WebSocketResponse) -> bool:
            shard_id, shards = self._shard_of.get(socket, (0, 1))
            return shard_id == (0 if guild_id is None else (int(guild_id) >> 22) % shards)
        return [socket for socket in self._sockets if shard_of(socket)]

    async def slash(self, name: str, options: list[dict] | None = None, *, user: int = 42,
                    guild: int | None = None, resolved: dict | None = None, command_type: int = 1,
                    target_id: str | None = None, interaction_type: int = 2,
                    made_at: datetime | None = None, channel: dict | None = None,
                    owners: dict[str, str] | None = None, context: int | None = None) -> dict:
        """Push an application command (or autocomplete, `interaction_type=4`) interaction, made
        now or `made_at` (its id tells when); in `channel` (a thread's payload, `thread_in`; a
        group DM's) rather than the server's general channel or the bot's DM. `owners`: whose
        install it comes through (authorizing_integration_owners: "0" the server's, "1" the
        user's own); a server's with the user's alone has not added the bot, and Discord sends
        its partial guild. `context`: where Discord says it is used (2: a group DM, a DM of two
        other people)."""
        data: dict[str, Any] = {"id": str(self._command_id(name)), "name": name, "type": command_type}
        if options:
            data["options"] = options
        if resolved:
            data["resolved"] = resolved
        if target_id:
            data["target_id"] = target_id
        payload = self._interaction(interaction_type, data, user=user, guild=guild, made_at=made_at)
        if channel is not None:
            payload.update(channel_id=channel["id"], channel=channel)
        if owners is not None:
            payload["authorizing_integration_owners"] = owners
            if set(owners) == {"1"}:
                self._user_installed[payload["token"]] = 0
            if guild is not None and "0" not in owners:
                payload["guild"] = {"id": str(guild), "locale": "en-US", "features": []}
        if context is not None:
            payload["context"] = context
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    async def click(self, message_id: int | str, custom_id: str, *, user: int = 42,
                    guild: int | None = None) -> dict:
        """Push a button press on the bot's message `message_id`."""
        payload = self._interaction(3, {"custom_id": custom_id, "component_type": 2}, user=user, guild=guild)
        payload["message"] = self.message_payload(message_id=int(message_id), channel_id=payload["channel_id"],
                                                  content="", author=self.bot_user(),
                                                  flags=self._flags.get(int(message_id), 0))
        self._pressed[payload["token"]] = int(message_id)
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    async def user_dms(self, content: str, *, user: int = 42, channel_id: int | None = None,
                       reply_to: str | None = None, attachments: list[dict] | None = None,
                       forward_of: dict | None = None, made_at: datetime | None = None,
                       flags: int = 0) -> dict:
        """Push a direct message from a user to the bot (`forward_of`: a message they forward),
        sent `made_at` (its id tells when, as Discord's do; else an id of no particular time)."""
        channel_id = channel_id or self.dm_channel_id(user)
        message = self.message_payload(channel_id=channel_id, content=content, author=user_payload(user),
                                       attachments=attachments or [], flags=flags,
                                       message_id=None if made_at is None else snowflake_at(made_at, self.snowflake()))
        if forward_of is not None:
            message = self.forward_payload(forward_of, channel_id=channel_id, author=user_payload(user))
        if reply_to is not None:
            message["message_reference"] = {"message_id": str(reply_to), "channel_id": str(channel_id)}
            message["type"] = 19
        self.channel_messages.setdefault(str(channel_id), []).append(message)
        await self.dispatch("MESSAGE_CREATE", message)
        return message

    async def user_edits(self, message: dict, content: str) -> dict:
        """The user edits their DM `message` (one `user_dms` returned) to say `content`: Discord
        sends MESSAGE_UPDATE with the whole message, its edited_timestamp set, whether or not the
        bot has it in its cache (none it saw before a restart)."""
        message.update(content=content, edited_timestamp=_now_iso())
        await self.dispatch("MESSAGE_UPDATE", dict(message))
        return message

    async def previews(self, message: dict, embeds: list[dict]) -> dict:
        """Discord adds its preview of a link to the DM `message`: a MESSAGE_UPDATE as for an edit,
        but no edit of the user's (the message's edited_timestamp stays as it was)."""
        message["embeds"] = embeds
        await self.dispatch("MESSAGE_UPDATE", dict(message))
        return message

    def user_dms_while_away(self, content: str, *, user: int = 42, attachments: list[dict] | None = None) -> dict:
        """A direct message from a user sent while the bot is not connected: Discord keeps it in
        the channel's history and sends no gateway event for it, then or later."""
        channel_id = self.dm_channel_id(user)
        message = self.message_payload(channel_id=channel_id, content=content, author=user_payload(user),
                                       attachments=attachments or [])
        self.channel_messages.setdefault(str(channel_id), []).append(message)
        return message

    async def wait_for(self, name: str, predicate: Callable[[Call], bool] | None = None,
                       timeout: float = 10.0, *, after: int | None = None) -> Call:
        """The first successful call named `name` since the last pushed event (or `after`)."""
        start = self._mark if after is None else after
        return await wait_for_call(self._changed, self.calls, start,
                                   lambda call: call.name == name and call.status < 300 and (predicate is None or predicate(call)),
                                   timeout, lambda c: (c.name, c.content[:50]), name)

    def calls_of(self, name: str, *, after: int = 0) -> list[Call]:
        return [c for c in self.calls[after:] if c.name == name]

    def dm_channel_id(self, user: int) -> int:
        """The DM channel between the bot and `user` (stable per user)."""
        return 500_000_000_000_000_000 + int(user)

    # ---- payloads --------------------------------------------------------------------------------
    def bot_user(self) -> dict:
        return {"id": str(BOT_USER_ID), "username": "moodbot", "discriminator": "0", "global_name": None,
                "avatar": None, "bot": True, "verified": True, "mfa_enabled": False, "flags": 0}

    def message_payload(self, *, channel_id: int | str, content: str, author: dict,
                        message_id: int | None = None, embeds: list | None = None,
                        attachments: list | None = None, components: list | None = None,
                        flags: int = 0) -> dict:
        return {
            "id": str(message_id or self.snowflake()), "channel_id": str(channel_id), "author": author,
            "content": content, "timestamp": _now_iso(), "edited_timestamp": None, "tts": False,
            "mention_everyone": False, "mentions": [], "mention_roles": [],
            "attachments": attachments or [], "embeds": embeds or [], "components": components or [],
            "pinned": False, "type": 0, "flags": flags,
        }

    def forward_payload(self, original: dict, *, channel_id: int | str, author: dict) -> dict:
        """`original` forwarded by `author` to `channel_id`: Discord sends an empty message whose
        reference is typed FORWARD and whose snapshot carries the original's content and files."""
        snapshot = {k: original[k] for k in ("type", "content", "embeds", "attachments", "timestamp",
                                              "edited_timestamp", "flags", "mentions", "mention_roles",
                                              "components")}
        forward = self.message_payload(channel_id=channel_id, content="", author=author)
        forward["message_reference"] = {"type": 1, "message_id": original["id"],
                                        "channel_id": str(original["channel_id"])}
        forward["message_snapshots"] = [{"message": snapshot}]
        return forward

    def _command_id(self, name: str) -> int:
        for command in self.commands:
            if command["name"] == name:
                return int(command["id"])
        return self.snowflake()

    def _interaction(self, kind: int, data: dict, *, user: int, guild: int | None,
                     made_at: datetime | None = None) -> dict:
        interaction_id = snowflake_at(made_at or datetime.now(timezone.utc), self.snowflake())
        payload: dict[str, Any] = {
            "id": str(interaction_id), "application_id": str(APP_ID), "type": kind, "data": data,
            "token": f"tok{interaction_id}", "version": 1, "locale": "en-US",
            "attachment_size_limit": 25 * 1024 * 1024, "app_permissions": str(self.app_permissions),
            "entitlements": [], "authorizing_integration_owners": {}, "context": 0 if guild else 1,
        }
        if guild is not None:
            channel_id = guild + 1
            payload.update(guild_id=str(guild), guild_locale="en-US", channel_id=str(channel_id),
                           channel={"id": str(channel_id), "type": 0, "guild_id": str(guild), "name": "general",
                                    "position": 0, "permission_overwrites": [], "nsfw": False,
                                    "parent_id": None},
                           member={"user": user_payload(user), "roles": [], "joined_at": _now_iso(),
                                   "deaf": False, "mute": False, "flags": 0,
                                   "permissions": str(ADMIN_PERMISSIONS if user in self.admins
                                                      else ADMINISTRATOR_PERMISSIONS if user in self.administrators
                                                      else MEMBER_PERMISSIONS),
                                   "pending": False, "nick": None, "avatar": None})
        else:
            channel_id = self.dm_channel_id(user)
            payload.update(channel_id=str(channel_id), user=user_payload(user),
                           channel={"id": str(channel_id), "type": 1, "recipients": [user_payload(user)]})
        return payload

    # ---- protocol --------------------------------------------------------------------------------
    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _body(self, request: web.Request) -> tuple[dict, dict[str, bytes]]:
        if not request.can_read_body:
            return {}, {}
        if request.content_type == "application/json":
            body = await request.json()
            return (body if isinstance(body, dict) else {"items": body}), {}
        if request.content_type.startswith("multipart/"):
            payload: dict = {}
            files: dict[str, bytes] = {}
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                else:
                    files[part.filename or part.name or "file"] = bytes(await part.read())
            return payload, files
        return {}, {}

    def _route(self, method: str, path: str) -> tuple[str, dict[str, str]]:
        for route_method, pattern, name in ROUTES:
            found = re.fullmatch(pattern, path)
            if found and route_method == method:
                return name, {k: v for k, v in found.groupdict().items() if v is not None}
        return f"{method} {path}", {}

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        name, match = self._route(request.method, path)
        body, files = await self._body(request)
        if self.token is not None and request.headers.get("Authorization") != f"Bot {self.token}":
            await self._record(Call(name, request.method, path, body, files, match, status=401))
            return json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        if match.get("token") in self.expired:
            await self._record(Call(name, request.method, path, body, files, match, status=404 if "id" in match else 401))
            if "id" in match:
                return json_response({"message": "Unknown interaction", "code": UNKNOWN_INTERACTION}, status=404)
            return json_response({"message": "Invalid Webhook Token", "code": INVALID_WEBHOOK_TOKEN}, status=401)
        if self._drops.get(name, 0) > 0:
            self._drops[name] -= 1
            await self._record(Call(name, request.method, path, body, files, match, status=0))
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)  # never reaches the client: the connection is gone
        failing = self._failures.get(name)
        if failing and failing[0] > 0:
            failing[0] -= 1
            retry_after, status, code, message = failing[1:]
            await self._record(Call(name, request.method, path, body, files, match, status=status))
            if status != 429:
                return json_response({"message": message, "code": code}, status=status)
            return json_response(
                {"message": "You are being rate limited.", "retry_after": retry_after, "global": False},
                status=429, headers={"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                                     "X-RateLimit-Reset-After": str(retry_after),
                                     "X-RateLimit-Bucket": f"fake-{name}", "X-RateLimit-Scope": "user",
                                     "Retry-After": str(retry_after),
                                     # discord.py takes a 429 without Via for a Cloudflare ban
                                     "Via": "1.1 google"})
        if any(len(data) > MAX_UPLOAD for data in files.values()):
            await self._record(Call(name, request.method, path, body, files, match, status=413))
            return json_response({"message": "Request entity too large", "code": TOO_LARGE}, status=413)
        if problems := payload_refusal(name, body):
            await self._record(Call(name, request.method, path, body, files, match, status=400))
            return json_response({"message": "Invalid Form Body", "code": INVALID_FORM_BODY,
                                  "errors": {"_problems": problems}}, status=400)
        if name == "followup" and self._followups_spent(match["token"]):
            await self._record(Call(name, request.method, path, body, files, match, status=400))
            return json_response({"message": "This interaction has hit the maximum number of follow up messages",
                                  "code": MAX_FOLLOWUPS_REACHED}, status=400)
        if name == "interaction_callback" and match["token"] in self.acknowledged:
            await self._record(Call(name, request.method, path, body, files, match, status=400))
            return json_response({"message": "Interaction has already been acknowledged.",
                                  "code": ALREADY_ACKNOWLEDGED}, status=400)
        result, status = self._answer(name, match, body, files, dict(request.query))
        if name == "interaction_callback":
            self.acknowledged.add(match["token"])
        taken = self._taken_then_failed.get(name)
        if taken and taken[0] > 0:
            taken[0] -= 1
            await self._record(Call(name, request.method, path, body, files, match, status=taken[1], result=result))
            if not taken[1]:
                assert request.transport is not None
                request.transport.close()
            return web.Response(status=taken[1] or 500, text="Bad Gateway")
        await self._record(Call(name, request.method, path, body, files, match, status=status, result=result,
                                query=dict(request.query)))
        if (release := self._holds.pop(name, None)) is not None:
            await release.wait()
        if result is None:
            return web.Response(status=204)
        return json_response(result, status=status)

    def _followups_spent(self, token: str) -> bool:
        """Whether a followup of the interaction `token` is one too many: it came through a user's
        own install alone, and made USER_INSTALL_FOLLOWUPS messages (not counting one taken for
        the edit of its "thinking" answer, which makes none)."""
        if token not in self._user_installed or (self._deferred.get(token) or {}).get("loading"):
            return False
        if self._user_installed[token] >= USER_INSTALL_FOLLOWUPS:
            return True
        self._user_installed[token] += 1
        return False

    def _answer(self, name: str, match: dict, body: dict, files: dict,
                query: dict[str, str] | None = None) -> tuple[Any, int]:
        if name == "get_me":
            return self.bot_user(), 200
        if name == "application_info":
            return {"id": str(APP_ID), "name": "moodbot", "icon": None, "description": "", "bot_public": True,
                    "bot_require_code_grant": False, "verify_key": "0" * 64, "flags": 0,
                    "owner": user_payload(1, "owner"), "team": None, "summary": "",
                    "interactions_endpoint_url": None}, 200
        if name == "gateway":
            return {"url": self.recommended_gateway or self.gateway_url, "shards": self.recommended_shards,
                    "session_start_limit": {
                "total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}}, 200
        if name == "sync_commands":
            self.commands = [{"description": "", "options": [], "type": 1, **command,
                              "id": str(self.snowflake()), "application_id": str(APP_ID), "version": "1"}
                             for command in body.get("items", [])]
            return self.commands, 200
        if name == "interaction_callback":
            return self._callback(match, body), 200
        if name in ("edit_original", "get_original", "delete_original", "followup"):
            if (answered := self._deferred_answer(name, match, body, files)) is not None:
                return answered
        if name == "get_original" and match["token"] in self._responses:
            return self._responses[match["token"]], 200
        if name in ("edit_original", "followup", "edit_followup", "get_original"):
            data = {k: body.get(k) for k in ("content", "embeds", "components") if k in body}
            message_id = self._edited_id(name, match)
            return self.message_payload(channel_id=1, author=self.bot_user(), content=data.get("content") or "",
                                        embeds=data.get("embeds"),
                                        flags=self._flags.get(message_id or 0, int(body.get("flags") or 0)),
                                        message_id=message_id, attachments=self._attachments(files)), 200
        if name == "create_dm":
            user = int(body["recipient_id"])
            return {"id": str(self.dm_channel_id(user)), "type": 1, "last_message_id": None,
                    "recipients": [user_payload(user)]}, 200
        if name in ("send_message", "edit_message"):
            message = self.message_payload(channel_id=match["channel"], author=self.bot_user(),
                                           content=body.get("content") or "", embeds=body.get("embeds"),
                                           message_id=int(match["message"]) if "message" in match else None,
                                           attachments=self._attachments(files))
            if name == "send_message":
                self.channel_messages.setdefault(match["channel"], []).append(message)
            return message, 200
        if name == "channel_history":
            return self._history(match["channel"], query or {}), 200
        if name in ("typing", "delete_original", "delete_followup"):
            return None, 204
        return {"message": f"fake Discord has no route {name}", "code": 0}, 404

    def _history(self, channel: str, query: dict[str, str]) -> list[dict]:
        """A channel's messages as Discord lists them: newest first, at most `limit` (50 unless
        asked, 100 at most), before or after a message id when asked (after: the oldest `limit`
        after it, newest first all the same, as discord-api-docs #7740 says)."""
        messages = self.channel_messages.get(channel, [])
        if "before" in query:
            messages = [m for m in messages if int(m["id"]) < int(query["before"])]
        if "after" in query:
            messages = [m for m in messages if int(m["id"]) > int(query["after"])]
            messages = messages[:min(int(query.get("limit", 50)), 100)]  # the oldest after it
            return messages[::-1]
        return messages[::-1][:min(int(query.get("limit", 50)), 100)]

    def _edited_id(self, name: str, match: dict) -> int | None:
        """The id of the webhook message a call names: a followup by its id; the original of a
        button press, the message pressed, and of a deferred answer, that answer; None for a new one."""
        if "message" in match:
            return int(match["message"])
        token = match.get("token", "")
        if name == "followup":
            return None
        if token in self._pressed:
            return self._pressed[token]
        if token in self._responses:
            return int(self._responses[token]["id"])
        return self._deferred[token]["id"] if token in self._deferred else None

    def _deferred_answer(self, name: str, match: dict, body: dict, files: dict) -> tuple[Any, int] | None:
        """How Discord treats a deferred answer's message, where that differs from a plain webhook
        message: once deleted it is an unknown message; and a followup sent while it still shows
        "thinking" is taken, for backwards compatibility, as the edit of that message (no new
        message, and its flags ignored: it stays as public, or as private, as the defer made it)."""
        deferred = self._deferred.get(match.get("token", ""))
        if deferred is None or (name == "followup" and not deferred["loading"]):
            return None  # a followup of its own, as asked
        gone = {"message": "Unknown Message", "code": UNKNOWN_MESSAGE}, 404
        if name == "followup":  # taken for the edit of the "thinking" answer
            deferred["loading"] = False
            if deferred["deleted"]:
                return gone
            return self.message_payload(channel_id=1, author=self.bot_user(), content=body.get("content") or "",
                                        embeds=body.get("embeds"), flags=deferred["flags"],
                                        message_id=deferred["id"], attachments=self._attachments(files)), 200
        if deferred["deleted"]:
            return gone
        if name == "get_original":
            return self.message_payload(channel_id=1, author=self.bot_user(), content="",
                                        flags=deferred["flags"] | (LOADING if deferred["loading"] else 0),
                                        message_id=deferred["id"]), 200
        if name == "delete_original":
            deferred["deleted"] = True
        elif name == "edit_original":
            deferred["loading"] = False
        return None

    def _callback(self, match: dict, body: dict) -> dict:
        kind = int(body.get("type", 0))
        data = body.get("data") or {}
        message_id = self.snowflake()
        if kind == DEFERRED_CHANNEL_MESSAGE:
            self._deferred[match["token"]] = {"id": message_id, "flags": int(data.get("flags") or 0),
                                              "loading": True, "deleted": False}
        if kind in (4, 5):
            self._flags[message_id] = int(data.get("flags") or 0)
        interaction = {"id": match["id"], "type": 2, "response_message_id": str(message_id),
                       "response_message_loading": kind == 5,
                       "response_message_ephemeral": bool(int(data.get("flags") or 0) & EPHEMERAL)}
        result: dict[str, Any] = {"interaction": interaction}
        if kind in (4, 5, 7):
            result["resource"] = {"type": kind, "message": self.message_payload(
                channel_id=1, author=self.bot_user(), content=data.get("content") or "",
                embeds=data.get("embeds"), message_id=message_id, components=data.get("components"),
                flags=int(data.get("flags") or 0))}
        if kind == 4:
            self._responses[match["token"]] = result["resource"]["message"]
        return result

    def _attachments(self, files: dict[str, bytes]) -> list[dict]:
        return [{"id": str(self.snowflake()), "filename": name, "size": len(data), "url": "http://x/" + name,
                 "proxy_url": "http://x/" + name} for name, data in files.items()]

    async def _cdn(self, request: web.Request) -> web.Response:
        """A file as Discord's file server serves it; `fail_next("download", status=...)` answers
        the next downloads with that status (404: deleted meanwhile, 403: a refused link, 5xx: an
        outage) and `drop_next("download")` cuts them off."""
        data = self.files.get(request.match_info["name"])
        if data is None:
            raise web.HTTPNotFound()
        if self._drops.get("download", 0) > 0:
            self._drops["download"] -= 1
            await self._record(Call("download", "GET", request.path, {}, status=0))
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)  # never reaches the client: the connection is gone
        failing = self._failures.get("download")
        if failing and failing[0] > 0:
            failing[0] -= 1
            await self._record(Call("download", "GET", request.path, {}, status=failing[2]))
            return web.Response(status=failing[2], text=failing[4])
        await self._record(Call("download", "GET", request.path, {}))
        await self.cdn_open.wait()
        return web.Response(body=data, content_type="application/octet-stream")

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}}))
        self._sockets.append(socket)
        try:
            async for message in socket:
                if message.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                if frame["op"] == 1:  # heartbeat
                    await socket.send_str(json.dumps({"op": 11}))
                elif frame["op"] == 2:  # identify
                    self.identify = frame["d"]
                    self.identifies.append(frame["d"])
                    shard = frame["d"].get("shard", [0, 1])
                    if int(frame["d"].get("intents", 0)) & PRIVILEGED_INTENTS & ~self.privileged_intents:
                        await socket.close(code=DISALLOWED_INTENTS, message=b"Disallowed intent(s).")
                        break
                    if self.shards_required is not None and shard[1] < self.shards_required:
                        await socket.close(code=SHARDING_REQUIRED, message=b"Sharding required.")
                        break
                    self._shard_of[socket] = (shard[0], shard[1])
                    await socket.send_str(json.dumps({"op": 0, "t": "READY", "s": next(self._seq), "d": {
                        "v": 10, "user": self.bot_user(), "guilds": [], "session_id": session_of(shard),
                        "resume_gateway_url": self.gateway_url, "private_channels": [],
                        "application": {"id": str(APP_ID), "flags": 0}, "shard": shard}}))
                    self.identified.set()
                elif frame["op"] == 6 and not self.resumable:  # resume of a session Discord has dropped
                    await socket.send_str(json.dumps({"op": 9, "d": False}))
                elif frame["op"] == 6:  # resume: the session's shard, as it identified
                    self._shard_of[socket] = shard_of_session(frame["d"]["session_id"])
                    await socket.send_str(json.dumps({"op": 0, "t": "RESUMED", "s": next(self._seq), "d": {}}))
        finally:
            self._sockets.remove(socket)
            self._shard_of.pop(socket, None)
        return socket
