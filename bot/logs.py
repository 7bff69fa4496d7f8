"""Structured logging: one `key=value` line per event, user and chat ids hashed, secrets redacted.

Use it like this (the message is the event name; ids go in `extra` and are hashed here):

    log.info("mood.answered", extra={"user": caller.user_id, "chat": caller.chat_id, "mood": "sad"})

gives `ts=2026-11-24T15:30:00.123Z level=INFO logger=bot.usecases.mood event=mood.answered
req=tg-70213 user=3f1a9c0b2d chat=8e7d6c5b4a mood=sad`.

`req` is the request the line belongs to, set once where a request arrives (`begin_request`: a
Telegram update, a Discord interaction or DM, a console line): every line logged while it is
answered, in its task, the tasks it starts and the bot's thread pools, carries it; the model
workers' lines too, from the label the song's jobs are given (`inference.Classifier.classify`).
Work of the bot's own gets one too, for its time (`as_request`): a daily prompt's delivery
`delivery-<n>` until its prompt is made, then `prompt-<prompt id>`, a round of the outbox's replay
`outbox-<n>`.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import re
import secrets
import sys
import time
from contextvars import ContextVar
from contextlib import AbstractContextManager
from typing import Callable, Iterable, Iterator
from urllib.parse import unquote, urlsplit

# `extra` keys whose values identify a person: logged as a salted hash, never in clear.
HASHED_FIELDS = frozenset({"user", "chat", "user_id", "chat_id"})
HASH_HEX_CHARS = 10
REDACTED = "[REDACTED]"
# Secrets shorter than this are not redacted: "a" would blank out every line.
MIN_SECRET_LEN = 6

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)
# Chatty libraries stay at WARNING even at DEBUG: httpx and the chat libraries log request URLs,
# Telegram's URLs carry the bot token, and spotipy logs its requests' headers (the client secret in
# base64, the bearer token); the redaction filter is the second line of defence.
_QUIET_LIBRARIES = ("pymongo", "apscheduler", "httpx", "discord", "telegram", "matplotlib", "urllib3", "spotipy")


# The request being answered, for each line logged meanwhile (asyncio tasks copy it when started).
REQUEST: ContextVar[str | None] = ContextVar("moodbot_request", default=None)


def begin_request(request_id: str | None) -> None:
    """Mark what this task (and what it starts) logs from now on as `request_id`'s: call it in the
    task that answers one request, where the request arrives; None, in a task of no request's."""
    REQUEST.set(request_id)


@contextlib.contextmanager
def as_request(request_id: str) -> Iterator[None]:
    """What is logged inside, in this task and what it starts, as `request_id`'s: work no request
    asked for (a daily prompt's delivery, a round of the outbox's replay), or one of its own within
    a request (/journal prompt's prompt). The task's request before (if any) is back after."""
    token = REQUEST.set(request_id)
    try:
        yield
    finally:
        REQUEST.reset(token)


def numbered(prefix: str) -> Callable[[int], AbstractContextManager[None]]:
    """`as_request` of `<prefix>-<n>`, for the n-th round of a background loop (`outbox-<n>`)."""
    return lambda number: as_request(f"{prefix}-{number}")


class StampRequest(logging.Filter):
    """Gives each record the request it was logged in (`req`), where its logger gave none."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "req", None) is None:
            record.req = REQUEST.get()
        return True


def hash_id(value: object, salt: str) -> str:
    """A stable pseudonym for an id: salted sha256, first 10 hex chars."""
    return hashlib.sha256(f"{salt}:{value}".encode()).hexdigest()[:HASH_HEX_CHARS]


_USER_TEXT = re.compile(r"“[^”]*”")


def without_user_text(message: str) -> str:
    """A reply's text fit for the logs: what the user typed, which replies quote as “…”, is left
    out (its length stays, to tell a typo from a 100 kB paste)."""
    return _USER_TEXT.sub(lambda m: f"“<{len(m.group()) - 2} chars>”", message)


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class KeyValueFormatter(logging.Formatter):
    def __init__(self, salt: str) -> None:
        super().__init__()
        self.salt = salt

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        fields = {
            "ts": f"{ts}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
            "req": getattr(record, "req", None),
        }
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRS or key.startswith("_") or value is None or key == "req":
                continue
            fields[key] = hash_id(value, self.salt) if key in HASHED_FIELDS else value
        line = " ".join(f"{k}={_quote(v)}" for k, v in fields.items() if v is not None)
        exc = self.formatException(record.exc_info) if record.exc_info else record.exc_text
        if exc:
            line += " exc=" + _quote(exc)
        return line


class RedactSecrets(logging.Filter):
    """Replaces any configured secret value that sneaks into a message, its args or extras."""

    def __init__(self, secret_values: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secret_values if s and len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        # Render once, then redact the rendered text: secrets can hide in args of any type.
        record.msg = self.redact(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, self.redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
            record.exc_info = None
        return True


def secrets_of(settings) -> list[str]:
    """Every secret value in a Settings object (SecretStr fields), to redact from logs; of a URI
    setting (MONGODB_URI), only what carries a secret (see uri_secrets)."""
    values = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if hasattr(value, "get_secret_value"):
            secret = value.get_secret_value()
            values.extend(uri_secrets(secret) if name.endswith("_uri") else [secret])
    client_id, client_secret = getattr(settings, "spotify_client_id", None), getattr(settings, "spotify_client_secret", None)
    if client_id and client_secret is not None:  # as an HTTP Basic header carries them to Spotify's token URL
        values.append(base64.b64encode(f"{client_id}:{client_secret.get_secret_value()}".encode()).decode())
    return values


def uri_secrets(uri: str) -> list[str]:
    """With credentials or options (an option may be a key file's password): the whole URI, its
    "user:password" and its password as written and decoded, since a library may log the URI's
    parts, or the password alone, rather than the whole. Hosts alone ("db1:27017",
    "mongodb://db1,db2/moodbot") carry no secret: an error must be able to name them."""
    if "@" not in uri and "?" not in uri:
        return []
    userinfo = uri.split("://", 1)[-1].split("/", 1)[0].rpartition("@")[0]
    return [uri, *([userinfo] if ":" in userinfo else []), *url_passwords(uri)]


def url_passwords(value: str) -> list[str]:
    """[as written, decoded] for a URL with a password (mongodb://user:pass@host/...), else []."""
    if "://" not in value:
        return []
    try:
        userinfo = urlsplit(value).netloc.rpartition("@")[0]
    except ValueError:
        return []
    _user, colon, password = userinfo.partition(":")
    return [password, unquote(password)] if colon and password else []


class LogHandler(logging.StreamHandler):
    """A stream handler that says once, in one line on stderr, that its file cannot be written (the
    console's DATA_DIR/moodbot.log on a disk that filled): logging printed "--- Logging error ---",
    a traceback and the call stack for each line, some 30 lines over the console's chat."""

    said = False

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)
            return
        if not self.said:
            self.said = True
            name = getattr(self.stream, "name", "?")
            with contextlib.suppress(OSError, ValueError):  # stderr itself the stream, its reader gone
                print(f"moodbot: its log {name} cannot be written ({error.strerror or error}): "
                      "its lines are lost until it can be", file=sys.stderr, flush=True)


def configure_logging(
    level: str | int = "INFO",
    *,
    secret_values: Iterable[str] = (),
    salt: str | None = None,
    stream=None,
) -> logging.Handler:
    """Route every log record through one redacting key=value handler on stderr (or `stream`),
    Python's warnings too: printed raw on stderr, a library's warning landed in the console's chat
    rather than in its log file. Returns the handler."""
    handler = LogHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter(salt or secrets.token_hex(8)))
    # On the handler, not a logger: a handler filter sees records from every logger.
    handler.addFilter(StampRequest())
    handler.addFilter(RedactSecrets(secret_values))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    logging.captureWarnings(True)
    return handler
