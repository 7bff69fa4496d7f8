"""The process's one MongoDB client, the schema it needs, and the repositories over it."""
from __future__ import annotations

import logging
import warnings
from datetime import timezone
from difflib import get_close_matches
from urllib.parse import unquote, unquote_plus, urlsplit

import pymongo
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.common import URI_OPTIONS_VALIDATOR_MAP
from pymongo.errors import ConfigurationError
from pymongo.uri_parser import split_options, validate_options

from storage.failures import translated_errors
from storage.models import DatabaseNameError, DatabaseUriError
from storage.inbox import InboxRepo
from storage.journal import JournalRepo
from storage.mood_requests import RequestRepo
from storage.place_moves import PlaceMoveRepo
from storage.playlists import PlaylistQueries
from storage.privacy import PrivacyRepo
from storage.prompts import PromptRepo
from storage.schema import (INBOX, INBOX_FORGOTTEN, JOURNAL, JOURNAL_REPAIRS, JOURNAL_TRACKS, PLACE_MOVES,
                            PLACE_REPAIRS, PLACE_TRACKS, PLACES_MOVED, PROMPTS, REQUESTS, SERVERS, TRACKS, USERS, migrate)
from storage.servers import ServerRepo
from storage.tracks import TrackRepo
from storage.users import UserRepo

log = logging.getLogger(__name__)

DEFAULT_DB_NAME = "moodbot"
DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 2000
# A server that accepts a connection and then stalls must not hang a handler forever.
SOCKET_TIMEOUT_MS = 30_000
# A start's upgrade, all its steps together (`init`), in place of SOCKET_TIMEOUT_MS for each command:
# MongoDB answers an index build once it is done, and migration 7's $group over every request once
# all are read, minutes on a large database; each timed out, the start failed, and the next did the same.
UPGRADE_TIMEOUT_S = 900
# What MongoDB refuses in a database name (its rules for every platform it runs on), and the
# longest name it takes, in bytes.
FORBIDDEN_IN_DB_NAME = '/\\. "$*<>:|?\0'
DB_NAME_MAX_BYTES = 63
REDACTED = "[REDACTED]"
# A password shorter than this is not looked for in the driver's free text, where it would match
# parts of words; the logs draw the same line (bot.logs.MIN_SECRET_LEN).
MIN_REDACTED_PASSWORD_LEN = 6
# How alike an unknown URI option and a known one must be for the error to suggest the latter.
OPTION_GUESS_CUTOFF = 0.6


def database_name_problem(name: str) -> str | None:
    """Why MongoDB would refuse this database name, or None."""
    if not name:
        return "it is empty"
    forbidden = next((c for c in name if c in FORBIDDEN_IN_DB_NAME), None)
    if forbidden is not None:
        return f"MongoDB allows no {forbidden!r} in a database name"
    if len(name.encode("utf-8")) > DB_NAME_MAX_BYTES:
        return f"MongoDB takes names of at most {DB_NAME_MAX_BYTES} bytes (64 and more are refused)"
    return None


def uri_database(uri: str) -> str | None:
    """The database a URI names after its hosts (mongodb://host/journal?…), if any."""
    try:
        path = urlsplit(uri).path if "://" in uri else ""
    except ValueError:
        return None
    return unquote(path.lstrip("/")) or None


def uri_option_names(uri: str) -> set[str]:
    """The options a MongoDB URI sets, lower-cased as the driver reads them (case-insensitively)."""
    query = uri.partition("?")[2]
    return {part.partition("=")[0].strip().lower() for part in query.replace(";", "&").split("&") if part}


def uri_option_problem(uri: str) -> str | None:
    """Why the driver would drop an option of the URI, or None. It only warns (a UserWarning on
    stderr, which does not name an option it does not know) and connects without it: "tls=yes"
    would connect without TLS."""
    query = uri.partition("?")[2]
    if not query or "@" in query:  # no options; or a password not percent-encoded, the driver says so
        return None
    try:
        options, duplicate = _driver_says(split_options, query, validate=False, normalize=False)
    except (ConfigurationError, ValueError):  # malformed: the client refuses it, with its reason
        return None
    if duplicate is not None:  # "Duplicate URI option 'w'": the driver keeps the last
        return duplicate
    for key, value in options.items():
        name = options.cased_key(key)
        if key not in URI_OPTIONS_VALIDATOR_MAP:
            guess = get_close_matches(key, URI_OPTIONS_VALIDATOR_MAP, n=1, cutoff=OPTION_GUESS_CUTOFF)
            hint = f" (did you mean {guess[0]}?)" if guess else ""
            return f"its option {name} is not one the MongoDB driver knows{hint}"
        try:
            _, dropped = _driver_says(validate_options, {key: value}, warn=False, from_uri=True)
        except (ConfigurationError, TypeError, ValueError) as error:
            dropped = str(error).rstrip(".")
        except OSError as error:  # the driver raises it too: "The tlscafile file is not readable"
            dropped = error.strerror or str(error)
        if dropped is not None:  # a wrong value, or a compressor this install lacks
            return f"its option {name}: {dropped}"
    return None


def _driver_says(function, *args, **kwargs) -> tuple[object, str | None]:
    """What `function` returns, and the first UserWarning it gave (kept off stderr)."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        result = function(*args, **kwargs)
    user_warnings = [str(w.message).rstrip(".") for w in said if issubclass(w.category, UserWarning)]
    return result, (user_warnings[0] if user_warnings else None)


def uri_problem(error: Exception, uri: str) -> DatabaseUriError:
    """The driver's reason, which names what is wrong, without the URI's credentials."""
    reason = without_credentials(str(error).rstrip("."), uri)
    return DatabaseUriError(f"MONGODB_URI cannot be used: {reason}.")


def without_credentials(text: str, uri: str) -> str:
    """`text` with the URI's "user:password@" redacted wherever it shows, whatever its length, and
    its password alone (as written and decoded) only when long enough to be no ordinary word's
    part: a password "p" would turn "supported" into "su[REDACTED][REDACTED]orted"."""
    userinfo = uri.split("://", 1)[-1].split("/", 1)[0].rpartition("@")[0]
    if not userinfo:
        return text
    for login in (userinfo, unquote_plus(userinfo)):
        text = text.replace(f"{login}@", f"{REDACTED}@")
    password = userinfo.partition(":")[2]
    for secret in sorted({password, unquote_plus(password)}, key=len, reverse=True):
        if len(secret) >= MIN_REDACTED_PASSWORD_LEN:
            text = text.replace(secret, REDACTED)
    return text


class Database:
    """Create one per process with `await Database.connect(...)` and share it: the client
    pools connections and is safe for concurrent use by every task of the event loop."""

    def __init__(self, client: AsyncMongoClient, db: AsyncDatabase) -> None:
        self.client = client
        self.db = db
        self.users = UserRepo(db[USERS])
        self.tracks = TrackRepo(db[TRACKS])
        self.requests = RequestRepo(db[REQUESTS], db[PLACE_TRACKS], db[PLACE_REPAIRS])
        self.journal = JournalRepo(db[JOURNAL], db[JOURNAL_TRACKS], self.requests.erasure_lock, db[JOURNAL_REPAIRS])
        self.prompts = PromptRepo(db[PROMPTS])
        self.servers = ServerRepo(db[SERVERS])
        # Readers of the requests collection wait for the requests still being written (and
        # /forget for the journal entries too).
        self.playlists = PlaylistQueries(db, self.requests, self.journal)
        self.privacy = PrivacyRepo(db, self.requests, self.journal)
        self.moves = PlaceMoveRepo(db[PLACE_MOVES], self.requests, self.playlists, self.servers,
                                   db[PLACES_MOVED])
        self.inbox = InboxRepo(db[INBOX], db[INBOX_FORGOTTEN])

    @classmethod
    async def connect(
        cls,
        uri: str,
        db_name: str = DEFAULT_DB_NAME,
        *,
        server_selection_timeout_ms: int = DEFAULT_SERVER_SELECTION_TIMEOUT_MS,
        verify: bool = True,
    ) -> "Database":
        """With `verify`, ping once so a wrong URI or a dead server fails here, quickly, with
        DatabaseUnavailableError. Without it, a server that is down now is found later: each
        call raises DatabaseUnavailableError until it is back. A database name MongoDB refuses
        raises DatabaseNameError before anything connects; a URI the driver cannot use (or whose
        SRV name does not resolve, or with an option it would drop), DatabaseUriError."""
        problem = database_name_problem(db_name)
        if problem is not None:
            shown = repr(db_name[:DB_NAME_MAX_BYTES])
            # Named by the URI alone, it is not MONGODB_DATABASE the operator must look at.
            named = (f"the database {shown} that MONGODB_URI names" if uri_database(uri) == db_name
                     else f"MONGODB_DATABASE {shown}")
            raise DatabaseNameError(f"{named} cannot be used: {problem}.")
        problem = uri_option_problem(uri)
        if problem is not None:
            raise DatabaseUriError(f"MONGODB_URI cannot be used: {without_credentials(problem, uri)}.")
        # Defaults only: the driver takes a keyword over the URI's own option, and an operator who
        # set serverSelectionTimeoutMS (or w) in MONGODB_URI got ours instead.
        defaults = {"serverSelectionTimeoutMS": server_selection_timeout_ms,
                    "connectTimeoutMS": server_selection_timeout_ms, "socketTimeoutMS": SOCKET_TIMEOUT_MS,
                    "w": 1, "journal": True, "appname": "moodbot"}
        given = uri_option_names(uri)
        try:
            client: AsyncMongoClient = AsyncMongoClient(
                uri, tz_aware=True, tzinfo=timezone.utc,
                **{name: value for name, value in defaults.items() if name.lower() not in given},
            )
        except (ConfigurationError, ValueError) as error:  # not a URI, or an option it cannot take
            raise uri_problem(error, uri) from error
        database = cls(client, client[db_name])
        if verify:
            try:
                with translated_errors("connect"):
                    try:
                        await client.admin.command("ping")
                    except ConfigurationError as error:  # an SRV name that does not resolve
                        raise uri_problem(error, uri) from error
            except BaseException:
                await client.close()
                raise
        return database

    async def init(self) -> int:
        """Idempotent: creates collections, validators and indexes and applies pending
        migrations. Returns the schema version in place."""
        with translated_errors("initialise schema"), pymongo.timeout(UPGRADE_TIMEOUT_S):
            version = await migrate(self.db)
        log.info("database %s at schema version %d", self.db.name, version)
        return version

    async def close(self) -> None:
        await self.requests.settled()  # nothing recorded is dropped at shutdown
        await self.requests.folded_in()  # nor a vote a failed write left out of its member's document
        await self.journal.settled()  # nor a summary a failed delete left wrong, where the database allows
        await self.client.close()
