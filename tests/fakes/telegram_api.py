"""A fake Telegram Bot API on 127.0.0.1, speaking the real HTTP protocol.

python-telegram-bot talks to it through `base_url`/`base_file_url`, exactly as it talks to
api.telegram.org. Tests inject updates (`user_sends`, `user_clicks`) and wait for the bot's calls
(`wait_for`). Every call is recorded with the time it arrived, so benchmarks can measure latency.
As Telegram does, it refuses texts and captions over their length limits (counted in UTF-16 code
units: an emoji is two), an empty text, an inline button's callback_data outside 1-64 bytes, a
command menu's description outside 1-256 characters, a callback query's alert over 200
characters, a document over the 50 MB a bot may send, and getFile for a file over the 20 MB a bot
may download (400 Bad Request; 413 for the document). sendMediaGroup answers as Telegram does, an
array of Messages sharing a `media_group_id` (one item alone: a Message without it), and refuses an
album of no item or over 10, an item whose `attach://` part is not in the upload, or a caption over
the limit.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from tests.fakes.calls import wait_for_call

BOT_ID = 7000000001
BOT_USERNAME = "moodbot_test_bot"
DEFAULT_USER = 42  # who sends, in their private chat, unless a test says another
MAX_UPDATES_PER_CALL = 100  # getUpdates' `limit`: "Values between 1-100 are accepted. Defaults to 100."
# How long getUpdates holds a request open at most; short, so that stop() is quick.
MAX_POLL_HOLD_S = 0.5
TEXT_METHODS = ("sendMessage", "editMessageText")  # calls that put text in a chat
CAPTION_METHODS = ("sendPhoto", "sendDocument", "sendAudio", "sendVoice")
MAX_TEXT = 4096  # Telegram refuses a longer text: 400 "Bad Request: message is too long"
MAX_CAPTION = 1024  # ... and a longer caption: 400 "Bad Request: message caption is too long"
MAX_ALBUM = 10  # sendMediaGroup's items at most (its docs say 2-10; one alone is sent, as a plain message)
MAX_CALLBACK_DATA = 64  # bytes of an inline button's callback_data: 400 "Bad Request: BUTTON_DATA_INVALID"
MAX_COMMAND_DESCRIPTION = 256  # setMyCommands: "1-256 characters"
MAX_COMMAND = 32  # ... and a command "1-32 characters"
MAX_ALERT = 200  # answerCallbackQuery's text: "0-200 characters"
MAX_UPLOAD = 50 * 1024 * 1024  # "Bots can currently send files of any type of up to 50 MB in size"
# getFile: "For the moment, bots can download files of up to 20MB in size."
MAX_DOWNLOAD = 20 * 1024 * 1024
MEDIA_KEYS = ("audio", "voice", "document", "video", "video_note", "photo", "animation")  # what a caption is under
ANONYMOUS_ADMIN = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}
# What getUpdates leaves out until a bot lists it in `allowed_updates`.
NOT_SENT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
# Parameters PTB sends JSON-encoded; all others stay plain strings.
JSON_PARAMS = frozenset({
    "reply_markup", "commands", "entities", "caption_entities", "allowed_updates",
    "reply_parameters", "link_preview_options", "scope", "media", "offset", "limit", "timeout",
})


def utf16_length(text: str) -> int:
    """A text's length as Telegram counts it: in UTF-16 code units (an emoji, a rarer CJK
    character, is two)."""
    return len(text.encode("utf-16-le")) // 2


def client_parts(text: str, limit: int = 4096) -> list[str]:
    """A text too long for one message cut as Telegram for Android sends it: parts of `limit`
    UTF-16 code units, cut wherever that falls (mid-word too), each sent as a message of its own,
    back to back (Telegram Desktop cuts at a line or word break past half the limit instead)."""
    units = text.encode("utf-16-le")
    return [units[at:at + 2 * limit].decode("utf-16-le") for at in range(0, len(units), 2 * limit)]


def buttons_of(markup: Any) -> list[dict]:
    """The buttons of an inline keyboard (none for another markup, or none at all)."""
    if not isinstance(markup, dict):
        return []
    return [button for row in markup.get("inline_keyboard") or [] for button in row if isinstance(button, dict)]


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)
    status: int = 200

    @property
    def chat_id(self) -> str | None:
        value = self.params.get("chat_id")
        return None if value is None else str(value)

    @property
    def text(self) -> str:
        """The text the chat shows of it: an album's is its items' captions."""
        return str(self.params.get("text") or self.params.get("caption") or "\n".join(self.captions))

    @property
    def captions(self) -> list[str]:
        """The captions of an album's (sendMediaGroup's) items that have one, in order."""
        media = self.params.get("media")
        return [str(item["caption"]) for item in media if item.get("caption")] if isinstance(media, list) else []

    def album(self) -> list[tuple[bytes, str]]:
        """A sendMediaGroup's items: each one's uploaded bytes and its caption ("" for none)."""
        return [(self.files[str(item["media"]).removeprefix("attach://")], str(item.get("caption") or ""))
                for item in self.params["media"]]


@dataclass
class Delivered:
    update_id: int
    at: float  # when getUpdates handed it to the bot


class BotAPIAddress:
    """Where a Bot API server on 127.0.0.1:`port` is reached: python-telegram-bot's two base URLs."""

    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"


class FakeTelegramBotAPI(BotAPIAddress):
    def __init__(self, token: str = "123456:TEST-token") -> None:
        self.token = token
        self.calls: list[Call] = []
        self.delivered: dict[int, Delivered] = {}
        self.admins: dict[str, set[str]] = {}  # chat id -> admin user ids, for getChatMember
        self.deleted: set[tuple[str, int]] = set()  # (chat id, message id) of messages users deleted
        self.upgraded: dict[str, int] = {}  # chat id of a group -> its supergroup's, once upgraded
        self.answered_queries: set[str] = set()  # callback queries answered: Telegram takes one answer each
        self._updates: list[dict] = []
        # The bot's last `allowed_updates` (Telegram remembers it across calls); None: never said.
        self.allowed_updates: list[str] | None = None
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._media_groups = itertools.count(13_000_000_000_000_001)
        self._files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, content)
        self._sizes: dict[str, int] = {}  # file_id -> the size Telegram knows, when not len(content)
        self._failures: dict[str, list[int]] = {}  # method -> [remaining, retry_after]
        self._delays: dict[str, float] = {}  # method -> seconds its next call is answered after
        self.files_open = asyncio.Event()  # cleared: the file server holds each download until it is set
        self.files_open.set()
        self._changed = asyncio.Condition()
        self._mark = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> "FakeTelegramBotAPI":
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        app.router.add_route("*", "/{path:.*}", self._not_found)  # as Telegram answers any other path
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- what tests drive ----------------------------------------------------------------------
    def fail_next(self, method: str, times: int, retry_after: int = 1, *, status: int = 429,
                  description: str = "Bad Request: message is too long", delay_s: float = 0.0) -> None:
        """Answer the next `times` calls of `method` with 429 Too Many Requests (retry after
        `retry_after` s), or with another error `status` and `description`, after `delay_s`."""
        self._failures[method] = [times, retry_after, status, description, delay_s]

    def delay_next(self, method: str, delay_s: float) -> None:
        """Carry out the next call of `method` at once, as Telegram does, but answer it only after
        `delay_s`: a client that stopped waiting never learns it was done."""
        self._delays[method] = delay_s

    def add_file(self, content: bytes | Path, suffix: str = ".ogg") -> str:
        data = content.read_bytes() if isinstance(content, Path) else content
        file_id = "F" + secrets.token_hex(8)
        self._files[file_id] = (f"music/{file_id}{suffix}", data)
        return file_id

    def mark(self) -> int:
        """Index of the next call; pass it as `after=` to wait only for calls made from now on."""
        return len(self.calls)

    async def user_sends(
        self,
        text: str | None = None,
        *,
        chat: int = DEFAULT_USER,
        user: int | None = None,
        chat_type: str | None = None,
        reply_to: int | None = None,
        audio: dict | None = None,
        voice: dict | None = None,
        document: dict | None = None,
        video: dict | None = None,
        photo: list[dict] | None = None,
        first_name: str = "Alice",
        anonymous: bool = False,
        topic: int | None = None,
        extra: dict | None = None,
    ) -> dict:
        """Queue a message from a user; commands get their `bot_command` entity. Returns the update.
        `anonymous`: an anonymous group admin posting as the group, as Telegram shows it (`from` is
        GroupAnonymousBot, `sender_chat` the group itself). `topic`: sent in that forum topic of a
        forum supergroup. `extra`: more fields of the Message (`forward_origin`, entities...)."""
        user = chat if user is None else user
        chat_type = chat_type or ("private" if chat > 0 else "supergroup")
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(chat, chat_type),
            "from": {"id": user, "is_bot": False, "first_name": first_name},
        }
        if topic is not None:
            message["chat"]["is_forum"] = True
            message.update(is_topic_message=True, message_thread_id=topic)
        if anonymous:
            message["from"] = dict(ANONYMOUS_ADMIN)
            message["sender_chat"] = self._chat(chat, chat_type)
        media = audio or voice or document or video or photo
        text_key, entities_key = ("caption", "caption_entities") if media else ("text", "entities")
        if text is not None:
            message[text_key] = text
            if text.startswith("/"):
                command = text.split()[0]
                message[entities_key] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        if reply_to is not None:
            message["reply_to_message"] = {
                "message_id": reply_to, "date": int(time.time()), "chat": self._chat(chat, chat_type),
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "moodbot", "username": BOT_USERNAME},
                "text": "(prompt)",
            }
        for key, value in (("audio", audio), ("voice", voice), ("document", document), ("video", video),
                           ("photo", photo)):
            if value is not None:
                message[key] = value
        message.update(extra or {})
        return await self._push({"message": message})

    async def member_changes(self, user: int, old: str, new: str, *, chat: int, by: int | None = None,
                             bot: bool = False) -> dict:
        """Queue a `chat_member` update: `user`'s status in the group went from `old` to `new`
        ("member", "left", "kicked", "administrator"...), changed by `by` (themselves by default).
        `bot`: the bot's own membership (`my_chat_member`; `user` is ignored)."""
        who = self._bot_user() if bot else {"id": user, "is_bot": False, "first_name": "Member"}

        def member(status: str) -> dict:
            return {"status": status, "user": who, **({"until_date": 0} if status == "kicked" else {})}

        change = {"chat": self._chat(chat, "supergroup"), "date": int(time.time()),
                  "from": {"id": user if by is None else by, "is_bot": False, "first_name": "Member"},
                  "old_chat_member": member(old), "new_chat_member": member(new)}
        return await self._push({"my_chat_member" if bot else "chat_member": change})

    async def user_sends_album(self, items: list[dict], caption: str | None = None, *, captioned: int = 0,
                               **where: Any) -> list[dict]:
        """Queue an album (a media group) as Telegram sends one: one message, in its own update, per
        item (`{"audio": ...}`, `{"photo": ...}`...), all sharing a `media_group_id`; only item
        `captioned` carries the caption. `where`: the other arguments of `user_sends`."""
        group = {"media_group_id": str(next(self._media_groups))}
        extra = where.pop("extra", {})
        return [await self.user_sends(caption if index == captioned else None, **item, **where,
                                      extra={**group, **extra})
                for index, item in enumerate(items)]

    async def user_edits(self, update: dict, text: str) -> dict:
        """Queue the `edited_message` update Telegram sends when the user edits the message of
        `update` (one `user_sends` returned, or one never sent: a group's message a bot in privacy
        mode was not given) to say `text`: a file's caption, else its text, with a command's
        `bot_command` entity, as `user_sends` gives one."""
        message = dict(update["message"])
        media = any(key in message for key in MEDIA_KEYS)
        key, entities_key = ("caption", "caption_entities") if media else ("text", "entities")
        message[key] = text
        message.pop(entities_key, None)
        if text.startswith("/"):
            message[entities_key] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        message["edit_date"] = int(time.time())
        return await self._push({"edited_message": message})

    def user_deletes(self, update: dict) -> None:
        """The user (or a group's command-cleaning bot) deletes the message of `update`: Telegram
        sends no update for it, but refuses replies quoting it."""
        message = update["message"]
        self.deleted.add((str(message["chat"]["id"]), int(message["message_id"])))

    def group_upgraded(self, chat: int, to: int) -> None:
        """The group `chat` became the supergroup `to`: Telegram refuses every call naming the old
        id (400, with the new id in `parameters.migrate_to_chat_id`)."""
        self.upgraded[str(chat)] = to

    async def group_upgrades(self, chat: int, to: int, *, by: int = DEFAULT_USER) -> None:
        """The group `chat` becomes the supergroup `to` (`group_upgraded`), and Telegram says so
        as it does: a `migrate_to_chat_id` service message in the group, then a
        `migrate_from_chat_id` one in the supergroup, both from the member `by` who upgraded it."""
        self.group_upgraded(chat, to)
        await self.user_sends(None, chat=chat, chat_type="group", user=by, extra={"migrate_to_chat_id": to})
        await self.user_sends(None, chat=to, user=by, extra={"migrate_from_chat_id": chat})

    def audio_attachment(self, content: bytes | Path, *, file_name: str = "song.ogg",
                         kind: str = "audio", file_size: int | None = None) -> dict:
        """An `audio`/`voice`/`document`/`video` object for `user_sends`, backed by a downloadable file."""
        data = content.read_bytes() if isinstance(content, Path) else content
        file_id = self.add_file(data, Path(file_name).suffix)
        if file_size is not None:  # a big file, without the test holding its bytes
            self._sizes[file_id] = file_size
        obj = {"file_id": file_id, "file_unique_id": file_id[1:9],
               "file_size": len(data) if file_size is None else file_size, "mime_type": "audio/ogg"}
        if kind in ("audio", "voice", "video"):
            obj["duration"] = 30
        if kind in ("audio", "document", "video"):
            obj["file_name"] = file_name
        if kind == "video":
            obj.update(width=64, height=64, mime_type="video/mp4")
        return obj

    def photo_attachment(self) -> list[dict]:
        """A `photo` (its sizes) for `user_sends`."""
        file_id = self.add_file(b"\x89PNG\r\n\x1a\n", ".png")
        return [{"file_id": file_id, "file_unique_id": file_id[1:9], "width": 64, "height": 64, "file_size": 8}]

    async def user_clicks(self, data: str, *, message: dict | Call, user: int = 42,
                          chat: int | None = None, inaccessible: bool = False) -> dict:
        """Queue a callback query (an inline keyboard button press) on a bot message.
        `inaccessible`: the message as Telegram sends one it no longer shows the bot (a press on a
        message some days old): an InaccessibleMessage, its chat and id only, and date 0."""
        msg = message if isinstance(message, dict) else self.message_of(message)
        chat = chat if chat is not None else msg["chat"]["id"]
        if inaccessible:
            msg = {"chat": msg["chat"], "message_id": msg["message_id"], "date": 0}
        return await self._push({"callback_query": {
            "id": secrets.token_hex(6), "chat_instance": str(chat), "data": data,
            "from": {"id": user, "is_bot": False, "first_name": "Alice"}, "message": msg,
        }})

    async def wait_for(self, method: str, predicate: Callable[[Call], bool] | None = None,
                       timeout: float = 10.0, *, after: int | None = None) -> Call:
        """The first call of `method` (made since the last injected update, or since `after`)
        for which `predicate` holds."""
        start = self._mark if after is None else after
        return await wait_for_call(self._changed, self.calls, start,
                                   lambda call: call.method == method and call.status == 200 and (predicate is None or predicate(call)),
                                   timeout, lambda c: (c.method, c.text[:60]), method)

    async def wait_for_reply(self, predicate: Callable[[Call], bool] | None = None, timeout: float = 10.0,
                             *, after: int | None = None) -> Call:
        """The first text the chat shows (a new message or an edit of one) for which `predicate`
        holds: a quick answer is a message of its own, a slow one the last edit of its status."""
        start = self._mark if after is None else after
        return await wait_for_call(self._changed, self.calls, start,
                                   lambda call: call.method in TEXT_METHODS and call.status == 200
                                   and (predicate is None or predicate(call)),
                                   timeout, lambda c: (c.method, c.text[:60]), "reply")

    def calls_of(self, method: str, *, after: int = 0) -> list[Call]:
        return [c for c in self.calls[after:] if c.method == method]

    def message_of(self, call: Call) -> dict:
        """The Message object the fake answered to a send/edit call."""
        return call.params["_result"]

    # ---- protocol --------------------------------------------------------------------------------
    def _chat(self, chat_id: int, chat_type: str) -> dict:
        chat = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = "Alice"
        else:
            chat["title"] = f"Group {chat_id}"
        return chat

    async def _push(self, body: dict) -> dict:
        update = {"update_id": next(self._update_ids), **body}
        async with self._changed:
            self._mark = len(self.calls)
            self._updates.append(update)
            self._changed.notify_all()
        return update

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = value.file.read()
                        params[key] = value.filename
                    else:
                        params[key] = json.loads(value) if key in JSON_PARAMS else value
        return params, files

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"},
                                     status=401)
        method = request.match_info["method"]
        params, files = await self._params(request)
        failing = self._failures.get(method)
        if failing and failing[0] > 0:
            failing[0] -= 1
            _, retry_after, status, description, delay_s = failing
            await asyncio.sleep(delay_s)
            await self._record(Call(method, params, files, status=status))
            if status == 429:
                return web.json_response({
                    "ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {retry_after}",
                    "parameters": {"retry_after": retry_after},
                }, status=429)
            return web.json_response({"ok": False, "error_code": status, "description": description},
                                     status=status)
        if method.lower() == "getupdates":
            return web.json_response({"ok": True, "result": await self._get_updates(params)})
        moved_to = self.upgraded.get(str(params.get("chat_id")))
        if moved_to is not None:
            await self._record(Call(method, params, files, status=400))
            return web.json_response({
                "ok": False, "error_code": 400,
                "description": "Bad Request: group chat was upgraded to a supergroup chat",
                "parameters": {"migrate_to_chat_id": moved_to}}, status=400)
        if method == "sendDocument" and any(len(data) > MAX_UPLOAD for data in files.values()):
            await self._record(Call(method, params, files, status=413))
            return web.json_response({"ok": False, "error_code": 413, "description": "Request Entity Too Large"},
                                     status=413)
        refusal = self._refusal(method, params, files)
        if refusal is not None:
            await self._record(Call(method, params, files, status=400))
            return web.json_response({"ok": False, "error_code": 400, "description": refusal}, status=400)
        handler = getattr(self, f"_m_{method.lower()}", None)
        result = handler(params, files) if handler else True
        params["_result"] = result
        await self._record(Call(method, params, files))
        if (delay_s := self._delays.pop(method, None)) is not None:
            await asyncio.sleep(delay_s)
        return web.json_response({"ok": True, "result": result})

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    def _refusal(self, method: str, params: dict, files: dict[str, bytes]) -> str | None:
        """What Telegram answers 400 for, of what a bot may send here: a text or caption over the
        limit (in UTF-16 code units, as Telegram counts), an empty text, a button's callback_data
        outside 1-64 bytes or with no text, a command menu's entry outside its lengths, an alert
        over 200 characters, a reply quoting a deleted message (unless sent without it, which a
        forum topic does not allow), a getFile for a file over the download limit, an album's
        (`_album_refusal`)."""
        if method in TEXT_METHODS and not str(params.get("text") or "").strip():
            return "Bad Request: message text is empty"
        if method in TEXT_METHODS and utf16_length(str(params.get("text") or "")) > MAX_TEXT:
            return "Bad Request: message is too long"
        if method in CAPTION_METHODS and utf16_length(str(params.get("caption") or "")) > MAX_CAPTION:
            return "Bad Request: message caption is too long"
        if method == "sendMediaGroup" and (album_refusal := self._album_refusal(params, files)) is not None:
            return album_refusal
        for button in buttons_of(params.get("reply_markup")):
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
                return "Bad Request: BUTTON_DATA_INVALID"
            if not str(button.get("text") or "").strip():
                return "Bad Request: BUTTON_TEXT_INVALID"
        if method == "setMyCommands":
            for command in params.get("commands") or []:
                if not 1 <= utf16_length(str(command.get("description") or "")) <= MAX_COMMAND_DESCRIPTION:
                    return "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID"
                if not 1 <= len(str(command.get("command") or "")) <= MAX_COMMAND:
                    return "Bad Request: BOT_COMMAND_INVALID"
        if method == "answerCallbackQuery" and utf16_length(str(params.get("text") or "")) > MAX_ALERT:
            return "Bad Request: MESSAGE_TOO_LONG"
        if method == "answerCallbackQuery" and str(params.get("callback_query_id")) in self.answered_queries:
            return "Bad Request: query is too old and response timeout expired or query ID is invalid"  # answered once
        # allow_sending_without_reply: "Always False for replies in another chat or forum topic".
        quoted = params.get("reply_parameters") or {}
        if ((str(params.get("chat_id")), int(quoted.get("message_id", 0))) in self.deleted
                and (params.get("message_thread_id") is not None or not quoted.get("allow_sending_without_reply"))):
            return "Bad Request: message to be replied not found"
        file_id = str(params.get("file_id") or "")
        if method.lower() == "getfile" and file_id in self._files:
            size = self._sizes.get(file_id, len(self._files[file_id][1]))
            if size > MAX_DOWNLOAD:
                return "Bad Request: file is too big"
        return None

    def _album_refusal(self, params: dict, files: dict[str, bytes]) -> str | None:
        """What Telegram's Bot API answers 400 of a sendMediaGroup's `media`, of what a bot may send
        here (photos, each uploaded as the `attach://<name>` part it names)."""
        media = params.get("media")
        if not isinstance(media, list) or not media:
            return "Bad Request: there are no messages to send"
        if len(media) > MAX_ALBUM:
            return "Bad Request: too many messages to send as an album"
        for item in media:
            if str(item.get("media")).removeprefix("attach://") not in files:
                return "Bad Request: can't parse InputMedia: media not found"
            if utf16_length(str(item.get("caption") or "")) > MAX_CAPTION:
                return "Bad Request: message caption is too long"
        return None

    async def _get_updates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        # As Telegram: at most `limit` updates per call, 1 to 100, 100 when not given.
        limit = min(max(int(params.get("limit") or MAX_UPDATES_PER_CALL), 1), MAX_UPDATES_PER_CALL)
        hold = min(float(params.get("timeout") or 0), MAX_POLL_HOLD_S)
        deadline = time.monotonic() + hold
        if params.get("allowed_updates") is not None:
            self.allowed_updates = list(params["allowed_updates"])
        async with self._changed:
            # An update of a kind not asked for is never sent, as on Telegram.
            self._updates = [u for u in self._updates if u["update_id"] >= offset and self._allowed(u)]
            while not self._updates and time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
                except asyncio.TimeoutError:
                    break
                self._updates = [u for u in self._updates if self._allowed(u)]
            pending = self._updates[:limit]
        now = time.monotonic()
        for update in pending:
            self.delivered.setdefault(update["update_id"], Delivered(update["update_id"], now))
        return pending

    def _allowed(self, update: dict) -> bool:
        kind = next(key for key in update if key != "update_id")
        if self.allowed_updates:  # an empty list means the default, as on Telegram
            return kind in self.allowed_updates
        return kind not in NOT_SENT_BY_DEFAULT

    async def _download(self, request: web.Request) -> web.Response:
        """A file's bytes. `fail_next("download", times, status=...)` fails the next ones: with that
        status (404: gone from the file server; 5xx: an outage), or cut off unanswered (status 0)."""
        path = request.match_info["path"]
        for file_path, data in self._files.values():
            if file_path == path and request.match_info["token"] == self.token:
                failing = self._failures.get("download")
                if failing and failing[0] > 0:
                    failing[0] -= 1
                    return await self._failed_download(request, path, status=failing[2])
                await self._record(Call("download", {"file_path": path}))
                await self.files_open.wait()
                return web.Response(body=data, content_type="application/octet-stream")
        raise web.HTTPNotFound()

    async def _failed_download(self, request: web.Request, path: str, *, status: int) -> web.Response:
        await self._record(Call("download", {"file_path": path}, status=status))
        if status == 0:  # the connection lost once the request was read
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)  # never reaches the client: the connection is gone
        return web.Response(status=status, text=f"{status}: file not served")

    def _bot_user(self) -> dict:
        return {"id": BOT_ID, "is_bot": True, "first_name": "moodbot", "username": BOT_USERNAME,
                "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False}

    def _message(self, params: dict, **content: Any) -> dict:
        chat_id = int(params["chat_id"])
        return {"message_id": next(self._message_ids), "date": int(time.time()),
                "chat": self._chat(chat_id, "private" if chat_id > 0 else "supergroup"),
                "from": self._bot_user(), **content}

    def _m_answercallbackquery(self, params: dict, files: dict) -> bool:
        self.answered_queries.add(str(params.get("callback_query_id")))
        return True

    def _m_getme(self, params: dict, files: dict) -> dict:
        return self._bot_user()

    def _m_sendmessage(self, params: dict, files: dict) -> dict:
        # Telegram echoes only inline keyboards in the sent Message (not ForceReply and the like).
        markup = params.get("reply_markup") or {}
        extra = {"reply_markup": markup} if "inline_keyboard" in markup else {}
        return self._message(params, text=params.get("text", ""), **extra)

    def _m_editmessagetext(self, params: dict, files: dict) -> dict:
        message = self._message(params, text=params.get("text", ""))
        message["message_id"] = int(params["message_id"])
        message["edit_date"] = int(time.time())
        return message

    def _m_sendphoto(self, params: dict, files: dict) -> dict:
        return self._message(params, caption=params.get("caption", ""), photo=[
            {"file_id": "P" + secrets.token_hex(6), "file_unique_id": "p1", "width": 640, "height": 480}])

    def _m_sendmediagroup(self, params: dict, files: dict) -> list[dict]:
        """An array of the Messages sent, one per item, in the album's order, sharing a
        `media_group_id`: one item alone is sent as a message of its own, without it."""
        group = {"media_group_id": str(next(self._media_groups))} if len(params["media"]) > 1 else {}
        return [self._message(params, **({"caption": item["caption"]} if item.get("caption") else {}), **group,
                              photo=[{"file_id": "P" + secrets.token_hex(6), "file_unique_id": "p1",
                                      "width": 640, "height": 480}])
                for item in params["media"]]

    def _m_senddocument(self, params: dict, files: dict) -> dict:
        return self._message(params, caption=params.get("caption", ""), document={
            "file_id": "D" + secrets.token_hex(6), "file_unique_id": "d1",
            "file_name": str(params.get("document", "file"))})

    def _m_getfile(self, params: dict, files: dict) -> dict:
        file_id = params["file_id"]
        if file_id not in self._files:
            raise web.HTTPBadRequest(text=json.dumps(
                {"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"}),
                content_type="application/json")
        file_path, data = self._files[file_id]
        return {"file_id": file_id, "file_unique_id": file_id[1:9], "file_size": len(data),
                "file_path": file_path}

    def _m_getchatmember(self, params: dict, files: dict) -> dict:
        user_id = str(params["user_id"])
        status = "administrator" if user_id in self.admins.get(str(params["chat_id"]), set()) else "member"
        member: dict[str, Any] = {"status": status,
                                  "user": {"id": int(user_id), "is_bot": False, "first_name": "U"}}
        if status == "administrator":
            member.update({k: False for k in (
                "can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages",
                "can_manage_video_chats", "can_restrict_members", "can_promote_members",
                "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories",
                "can_delete_stories")})
        return member
