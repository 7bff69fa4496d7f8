"""One place for configuration: environment variables and `.env`.

Tokens are `SecretStr`, so they never show in a repr or a log line.
"""
from __future__ import annotations

import difflib
import errno
import fcntl
import importlib.util
import os
import pwd
import re
import string
import sys
import time
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

import idna

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ALLOWED_HOSTS = (
    "open.spotify.com,play.spotify.com,spotify.link,spotify.app.link,spoti.fi,youtube.com,www.youtube.com,"
    "m.youtube.com,music.youtube.com,youtu.be,youtube-nocookie.com,www.youtube-nocookie.com"
)

# What an AUDIO_SEARCH template may use (bot.sources.audio fills them).
AUDIO_SEARCH_FIELDS = ("artists", "title", "spotify_id", "isrc")
# dask://host:port, the port stated (Dask's client refuses an address without one at every
# connection) and a port there can be; an IPv6 host in brackets
DASK_ADDRESS_RE = re.compile(r"dask://(\[[0-9A-Fa-f:.]+\]|[^/\s:\[\]@?#]+):(6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3})")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    # Chat platforms. Neither set: the console front-end runs.
    discord_token: SecretStr | None = None
    telegram_token: SecretStr | None = None
    # Discord's privileged members intent (the Developer Portal's Server Members Intent switch,
    # which must be on too): Discord then says when a member leaves a server, and their songs stop
    # counting in its playlists. Off: Discord never says so, and they count until /forget.
    discord_members_intent: bool = False

    # Spotify (client-credentials flow). Unset: free text goes straight to the audio search.
    spotify_client_id: str | None = None
    spotify_client_secret: SecretStr | None = None

    # Storage. Unset: an embedded SecantusDB server is started under DATA_DIR.
    mongodb_uri: SecretStr | None = None
    mongodb_database: str | None = None  # None: the one MONGODB_URI names, else "moodbot" (`database_name`)
    data_dir: Path = Path("./data")

    # Inference.
    inference_workers: int = Field(default=1, ge=1, le=256)  # 100 000 stalled the start for a minute
    inference_executor: str = "process"  # "process" or "dask://host:port"
    inference_timeout_s: float = Field(default=20.0, gt=0, allow_inf_nan=False)
    # ~0.15 s a song per worker: 32 queued wait ~5 s for the better model, well inside the timeout.
    inference_max_queue: int = Field(default=32, ge=0)

    # Endpoints: each defaults to the real service; tests point them at local servers.
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_file_url: str = "https://api.telegram.org/file/bot"
    discord_api_url: str = "https://discord.com/api/v10"
    discord_gateway_url: str | None = None  # None: ask Discord's /gateway/bot
    spotify_api_url: str = "https://api.spotify.com/v1/"
    spotify_auth_url: str = "https://accounts.spotify.com/api/token"
    audio_search: str = "ytsearch5:{artists} - {title} audio"

    # Which hosts a user's link may make the bot fetch (comma-separated).
    allowed_hosts: str = DEFAULT_ALLOWED_HOSTS
    max_audio_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    max_audio_duration_s: float = Field(default=20 * 60, gt=0, allow_inf_nan=False)

    # Abuse limits for /mood.
    mood_rate_per_user: int = Field(default=6, ge=1)  # requests per minute
    mood_rate_per_place: int = Field(default=30, ge=1)  # requests per minute per server/group
    mood_concurrent_per_user: int = Field(default=2, ge=1)
    # Abuse limits for the commands that cost CPU (per minute): /stats draws three charts, /export
    # writes every entry as JSON, /playlist and /servermood (one window) read all of a place's songs.
    stats_rate_per_user: int = Field(default=3, ge=1)
    export_rate_per_user: int = Field(default=2, ge=1)
    playlist_rate_per_user: int = Field(default=6, ge=1)
    playlist_rate_per_place: int = Field(default=20, ge=1)
    # Charts drawn at once, bot-wide; more wait their turn. Each holds the GIL the event loop needs.
    chart_renders_max: int = Field(default=2, ge=1)
    # Bytes of users' files held at once, bot-wide (downloading, then on disk while heard); a file
    # past it is refused, "busy, try again in a minute". One larger than it alone is let in.
    uploads_max_bytes: int = Field(default=256 * 1024 * 1024, gt=0)

    log_level: str = "INFO"

    @field_validator("telegram_token", "discord_token", mode="before")
    @classmethod
    def _a_token_alone(cls, token: object, info: ValidationInfo) -> object:
        """A token as its platform gives it, said at start (exit 2, the token never shown): with
        quotes around it (a `docker run --env-file` keeps them), Discord's 'Bot ' before it or a
        word glued to it, the platform refused it, and "rejected the token" sent the operator to
        a token that looked right. Spaces and line breaks around it are left out."""
        if not isinstance(token, str):
            return token
        token = token.strip()
        if not token:
            return None
        if len(token) > 1 and token[0] == token[-1] and token[0] in "\"'":
            raise ValueError("the token is in quotes, which are taken as part of it: remove them "
                             "(a docker run --env-file keeps them)")
        if info.field_name == "telegram_token" and not re.fullmatch(r"\d+:[\w-]+", token, re.ASCII):
            raise ValueError("not a Telegram bot token as @BotFather gives it: digits, a colon, then letters, "
                             "digits, - and _ (123456789:AAF…), with nothing before or after it")
        if info.field_name == "discord_token" and token.lower().startswith("bot "):
            raise ValueError("the token alone, without 'Bot ' in front: moodbot adds it")
        if info.field_name == "discord_token" and not re.fullmatch(r"[\w.-]+", token, re.ASCII):
            raise ValueError("not a Discord bot token as the Developer Portal's Bot page gives it: letters, "
                             "digits, '.', - and _, with nothing before or after it")
        return token

    @field_validator("audio_search")
    @classmethod
    def _a_template_the_fetcher_can_fill(cls, template: str) -> str:
        """Checked at start, not at the first /mood: '{artist}' or an unclosed brace would fail every search."""
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        except ValueError as error:
            raise ValueError(f"not a valid template: {error}") from None
        unknown = fields - set(AUDIO_SEARCH_FIELDS)
        if unknown:
            raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}}; use {', '.join(f'{{{f}}}' for f in AUDIO_SEARCH_FIELDS)}")
        # A song's name must never choose what is fetched: in a URL template placeholders belong
        # after the host; any other template is a yt-dlp search ('ytsearch5:…'), not a bare '{title}'
        # that a Spotify title reading 'https://…' would turn into a link.
        url = re.match(r"(?i)https?://([^/?#]*)", template)
        if url and "{" in url.group(1):
            raise ValueError("a placeholder in the host of a URL template; put it in the path or query")
        if not url and not re.match(r"(?i)[a-z0-9]*search(\d+|all)?:", template):
            raise ValueError("neither a http(s) URL template nor a yt-dlp search such as ytsearch5:{artists} - {title}")
        return template

    @field_validator("telegram_api_url")
    @classmethod
    def _a_bot_api_url(cls, url: str) -> str:
        """python-telegram-bot calls `url` + token + '/getMe': the token must follow '/bot' (or
        stand where '{token}' does). Without it Telegram answers 404, read as a rejected token;
        without a path the token is glued to the host, and no URL at all."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("not a http(s) URL of the Bot API, such as https://api.telegram.org/bot")
        if "{token}" not in url and not parts.path.endswith("/bot"):
            raise ValueError("must end in /bot (the token follows it), such as https://api.telegram.org/bot")
        return url

    @field_validator("telegram_file_url", "discord_api_url", "spotify_api_url", "spotify_auth_url")
    @classmethod
    def _a_service_url(cls, url: str) -> str:
        """Checked at start (named, exit 2): without a scheme Discord's failed the start with a bare
        URL for its reason, and Spotify's failed every /mood as "something went wrong"."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("not a http(s) URL")
        return url

    @field_validator("discord_gateway_url")
    @classmethod
    def _a_gateway_url(cls, url: str | None) -> str | None:
        parts = urlsplit(url) if url is not None else None
        if parts is not None and (parts.scheme.lower() not in ("ws", "wss") or not parts.hostname):
            raise ValueError("not a ws(s) URL, such as wss://gateway.discord.gg")
        return url

    @field_validator("data_dir")
    @classmethod
    def _the_home_folder_for_a_tilde(cls, folder: Path) -> Path:
        """'~/moodbot-data' from .env or a systemd unit, where no shell expands it: the journal
        went into a folder named '~' in the working folder (and an 'rm -rf ~' meant for it...)."""
        return folder.expanduser()

    @field_validator("mongodb_uri")
    @classmethod
    def _a_login_with_its_slashes_escaped(cls, uri: SecretStr | None) -> SecretStr | None:
        """A '/' in the user or password ends the hosts where the URI is read: what follows it was
        taken for the database ("'PWd@db:27017/' … allows no '.'"), which named a database nobody
        named, and showed the password's tail. Said here, the URI never shown."""
        rest = uri.get_secret_value().partition("://")[2] if uri is not None else ""
        if "@" in rest.partition("?")[0].partition("/")[2]:  # an '@' after the hosts' end: a login's
            raise ValueError("its user or password holds a '/': write each '/' there as %2F "
                             "(and '@' as %40, ':' as %3A)")
        named = uri_database(uri.get_secret_value()) if uri is not None else None
        if named and (problem := refused_database_name(named)):
            raise ValueError(f"the database {named!r} it names cannot be used: {problem}")
        return uri

    @field_validator("mongodb_database")
    @classmethod
    def _the_database_the_uri_names(cls, name: str | None, info: ValidationInfo) -> str | None:
        """A database named twice, differently, is refused: the one in MONGODB_URI was ignored for
        MONGODB_DATABASE's default, and the journal went to "moodbot" without a word."""
        if name and (problem := refused_database_name(name)):
            raise ValueError(problem)
        uri = info.data.get("mongodb_uri")
        named = uri_database(uri.get_secret_value()) if uri is not None else None
        if name and named and name != named:
            raise ValueError(f"{name!r}, but MONGODB_URI names the database {named!r}: name it in one place only")
        return name

    @property
    def database_name(self) -> str:
        """MONGODB_DATABASE, else the database MONGODB_URI names, else "moodbot"."""
        uri = self.mongodb_uri.get_secret_value() if self.mongodb_uri is not None else None
        return self.mongodb_database or (uri_database(uri) if uri else None) or DEFAULT_DATABASE

    @field_validator("inference_executor")
    @classmethod
    def _an_executor_the_pool_knows(cls, executor: str) -> str:
        """Checked at start like the other settings (named, exit 2), not when the pool is built."""
        if executor != "process" and not DASK_ADDRESS_RE.fullmatch(executor):
            raise ValueError("neither 'process' nor a Dask scheduler as dask://host:port")
        if executor != "process" and importlib.util.find_spec("distributed") is None:
            raise ValueError(f"a Dask scheduler needs Dask's client: {sys.executable} -m pip install -e '.[dask]' "
                             "in moodbot's folder")  # moodbot is no package of PyPI's
        return executor

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, hosts: str) -> str:
        """Each entry a host name alone, as links' hosts are judged (`bot.sources.query`): mapped
        as browsers map them (IDNA UTS-46: "ＹｏｕＴｕｂｅ.com" is youtube.com, "bücher.de"
        xn--bcher-kva.de). An entry with a scheme, a path, a port or a wildcard matched no link
        ever, silently: it is said at start instead."""
        names = []
        for entry in (h.strip() for h in hosts.split(",")):
            if not entry:
                continue
            try:
                names.append(idna.encode(entry.rstrip("."), uts46=True, std3_rules=True).decode("ascii"))
            except (idna.IDNAError, UnicodeError):
                raise ValueError(f"{entry!r} is no host name: write each host alone, comma-separated "
                                 "(youtube.com, not https://youtube.com/ nor *.youtube.com)") from None
        return ",".join(names)

    @property
    def allowed_host_set(self) -> frozenset[str]:
        return frozenset(h for h in self.allowed_hosts.split(",") if h)

    @property
    def spotify_enabled(self) -> bool:
        return bool(self.spotify_client_id and self.spotify_client_secret)


DEFAULT_DATABASE = "moodbot"


def refused_database_name(name: str) -> str | None:
    """Why MongoDB would refuse this database name, or None: a wrong setting, said with the others
    (exit status 2), before the embedded database is started for nothing (it exited 1 after)."""
    from storage.database import database_name_problem  # pymongo's import, only for a name given

    return database_name_problem(name)


def uri_database(uri: str) -> str | None:
    """The database a MongoDB URI names after its hosts (mongodb://host/journal?…), if any (not
    a URI at all, "db1:27017": the driver says what is wrong with it)."""
    if "://" not in uri:
        return None
    try:
        path = urlsplit(uri).path
    except ValueError:
        return None
    return unquote(path.lstrip("/")) or None


# A file made and removed in DATA_DIR to learn that moodbot may write there; a name of its own each
# time, so that a start and a `--check` beside a running bot never remove each other's.
WRITE_PROBE_PREFIX = ".write-probe-"
PRIVATE_FOLDER = 0o700  # a DATA_DIR the bot makes: its user's alone (one made before is left as it is)


def data_dir_problem(data_dir: Path, embedded_database: bool = True) -> str | None:
    """None when DATA_DIR is (or can be made) a folder moodbot can write a file in; else one line
    naming it and what to do. Checked at start: the embedded database, the journal's outbox, the
    heartbeat and the console's log, exports and charts all write there, and a read-only DATA_DIR
    otherwise showed only as a traceback of the first of them, or not at all (with MONGODB_URI)."""
    # A relative one named with the folder it stands for: a service started in / has ./data in /data.
    named = data_dir if data_dir.is_absolute() else f"{data_dir} ({data_dir.absolute()})"
    if data_dir.exists() and not data_dir.is_dir():  # mkdir's "File exists" said to create what is there
        return (f"DATA_DIR {named} is not a folder moodbot can write to (it is a file): "
                "point DATA_DIR at a folder, or move the file away")
    if (link := link_to_nowhere(data_dir)) is not None:
        leads_to = Path(os.path.normpath(link.parent / os.readlink(link)))
        return (f"DATA_DIR {named} is not a folder moodbot can write to: {link} is a link to {leads_to}, which is "
                f"not there (a disk not mounted?): mount it, or create {leads_to}")
    try:
        data_dir.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)  # journals in plain files: ours alone
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=WRITE_PROBE_PREFIX) as probe:
            probe.write(b"moodbot")
            probe.flush()
        free = free_bytes(data_dir)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            free = free_bytes(data_dir) if data_dir.is_dir() else None
        elif error.errno == errno.EROFS:
            return f"DATA_DIR {named} cannot be written ({error.strerror}): {disk_refusal(error)}"
        else:
            return (f"DATA_DIR {named} is not a folder moodbot can write to ({error.strerror or error}): "
                    f"create it, or give {moodbots_user()} the right to write there")
    if free is not None and free < MIN_FREE_BYTES:
        return (f"DATA_DIR {named} has {free // 1024} KiB free on its disk: free some space there "
                f"(moodbot needs {MIN_FREE_BYTES // 2**20} MiB at the least to start)")
    if (misplaced := misplaced_entry(data_dir, embedded_database)) is not None:
        entry, kind, belongs = misplaced
        return f"{entry.absolute()} in DATA_DIR is a {kind} where moodbot keeps a {belongs}: move it out of DATA_DIR"
    if (entry := unwritable_entry(data_dir, embedded_database)) is not None:
        return (f"{entry.absolute()} in DATA_DIR cannot be written ({os.strerror(errno.EACCES)}): give {moodbots_user()} "
                "the right to write it, and all of DATA_DIR (chown -R)")
    return None


def moodbots_user() -> str:
    """"moodbot's user (moodbot, uid 10001)": the user the refusals ask to be given a right, named.
    In a container it is the image's, whose uid is no user's of the host, where a bind-mounted
    DATA_DIR (./data:/data) is made by the host's user: "give moodbot's user the right" did not
    say to whom (chown -R 10001)."""
    uid = os.geteuid()
    try:
        return f"moodbot's user ({pwd.getpwuid(uid).pw_name}, uid {uid})"
    except KeyError:  # a uid with no name (docker run --user 12345)
        return f"moodbot's user (uid {uid})"


def link_to_nowhere(data_dir: Path) -> Path | None:
    """DATA_DIR, or the first folder above it, that is a link to nothing (a disk not mounted, a
    folder removed), or None. Its mkdir said "File exists" of a path `ls` shows; and it is not made
    where the link leads: under a mount point, the journal would go to the wrong disk."""
    absolute = data_dir.absolute()
    for path in (*reversed(absolute.parents), absolute):
        if path.is_symlink() and not path.exists():
            return path
    return None


# Below this, DATA_DIR's disk is full for moodbot: the embedded database's first start alone wrote
# 420 KiB, and on a disk of 64 KiB it exited at start, its log empty ("the last line of
# …secantusd.log: (nothing)", exit status 1), a "--- Logging error ---" traceback above it.
MIN_FREE_BYTES = 2**20


def free_bytes(folder: Path) -> int | None:
    """What moodbot's user may still write on `folder`'s disk (a quota is not counted), or None."""
    try:
        disk = os.statvfs(folder)
    except OSError:
        return None
    return disk.f_bavail * disk.f_frsize


def disk_refusal(error: OSError) -> str | None:
    """What to do of a write DATA_DIR's disk refused whatever the rights (a chmod, which the start
    said to do, changes nothing), or None for any other error."""
    return {errno.ENOSPC: "its disk is full: free some space there",
            errno.EDQUOT: "moodbot's user has used up its disk quota there: free some space, or raise the quota",
            errno.EROFS: "it is mounted read-only; mount it read-write"}.get(error.errno)


def misplaced_entry(data_dir: Path, embedded_database: bool = True) -> tuple[Path, str, str] | None:
    """(path, "folder", "file") for the first of moodbot's files in DATA_DIR that is a folder (a
    volume mounted at DATA_DIR/secantusd.log, a `mkdir -p` of the wrong path), ("db", "file",
    "folder") for a file where the embedded database's folder belongs, or None. The start failed
    on them with "[Errno 21] Is a directory" and a traceback, and --check said DATA_DIR was fine."""
    from bot.app import LOG_FILE, SALT_FILE
    from bot.health import HEARTBEAT_FILE
    from storage.embedded import CONFIG_FILENAME, DB_SUBDIR, LOG_FILENAME
    from storage.outbox import OUTBOX_FILENAME
    from storage.spool import SPOOL_FILENAME

    embedded = (CONFIG_FILENAME, LOG_FILENAME) if embedded_database else ()
    for name in (LOCK_FILE, SALT_FILE, LOG_FILE, OUTBOX_FILENAME, SPOOL_FILENAME, HEARTBEAT_FILE, *embedded):
        if (data_dir / name).is_dir():
            return data_dir / name, "folder", "file"
    if embedded_database and os.path.lexists(data_dir / DB_SUBDIR) and not (data_dir / DB_SUBDIR).is_dir():
        return data_dir / DB_SUBDIR, "file", "folder"
    return None


def unwritable_entry(data_dir: Path, embedded_database: bool = True) -> Path | None:
    """The first of the files and folders moodbot keeps in DATA_DIR, the embedded database's
    included, that it may not read and write, or None. A DATA_DIR written once as another user
    (`sudo make run`, a volume used as root) takes new files, but its database's were refused at
    start: "[Errno 13] Permission denied: '…/secantusd.toml'", or "WiredTigerError: Permission
    denied", neither naming DATA_DIR. Only moodbot's own entries are looked at (DATA_DIR may hold
    others; the embedded database's only when it is to run), without writing anything: a running
    bot's database may be in there."""
    from bot.health import HEARTBEAT_FILE
    from storage.embedded import CONFIG_FILENAME, DB_SUBDIR, LOG_FILENAME
    from storage.outbox import OUTBOX_FILENAME
    from storage.spool import SPOOL_FILENAME

    embedded = (CONFIG_FILENAME, LOG_FILENAME, DB_SUBDIR) if embedded_database else ()
    for name in (OUTBOX_FILENAME, SPOOL_FILENAME, HEARTBEAT_FILE, *embedded):
        path = data_dir / name
        if not os.path.lexists(path):
            continue
        if not path.is_dir():
            if not os.access(path, os.R_OK | os.W_OK):
                return path
            continue
        for folder, folders, files in os.walk(path):
            if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
                return Path(folder)
            for file in files:
                if not os.access(os.path.join(folder, file), os.R_OK | os.W_OK):
                    return Path(folder) / file
    return None


# Held (flock) by the running bot as long as it runs, its pid inside: a second bot on the same
# DATA_DIR is refused. With MONGODB_URI nothing else held it, and two bots each sent every daily
# prompt and drained one journal outbox and one spool of requests between them.
LOCK_FILE = "moodbot.pid"


class DataDirInUseError(Exception):
    """Another moodbot runs on this DATA_DIR: one line naming its pid."""


# `data_dir_holder` (--check) holds the lock for an instant: a start that meets it tries again.
LOCK_TRIES, LOCK_RETRY_S = 5, 0.05


def _lock_unless_held(handle: IO[str]) -> None:
    """The lock, exclusive; BlockingIOError when another process holds it LOCK_TRIES times running."""
    for _ in range(LOCK_TRIES - 1):
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(LOCK_RETRY_S)
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


def hold_data_dir(data_dir: Path) -> IO[str]:
    """The lock file, locked, to keep open while the bot runs (the lock goes with the process,
    however it ends: kill -9 too). DataDirInUseError when another bot holds it; OSError when
    moodbot may not write it, as for any file of DATA_DIR."""
    path = data_dir / LOCK_FILE
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (open as long as the bot runs)
    try:
        _lock_unless_held(handle)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "its pid not written yet"
        handle.close()
        raise DataDirInUseError(f"DATA_DIR {data_dir} is in use by another moodbot (pid {holder}): "
                                "stop it, or give this one another DATA_DIR.") from None
    except OSError:  # a file system that takes no locks (some network mounts): not held, as before
        return handle
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def data_dir_holder(data_dir: Path) -> str | None:
    """The pid (as its lock file says) of the moodbot holding DATA_DIR now, or None when none does
    (no lock file, or one a stopped bot left). Found by asking for the lock, shared and at once, and
    letting go of it: a bot that starts in that instant tries again (`_lock_unless_held`)."""
    try:
        handle = open(data_dir / LOCK_FILE, encoding="utf-8")  # noqa: SIM115
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "its pid not written yet"
        except OSError:  # a file system that takes no locks: none is held there
            return None
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


# Variables that start like one of ours but are not a setting are probably misspelt (MONGODB_URL):
# said at start, because an ignored MONGODB_URI silently puts the journal in the embedded database.
SETTING_FAMILIES = ("DISCORD_", "TELEGRAM_", "SPOTIFY_", "MONGODB_", "MONGO_", "INFERENCE_", "MOOD_", "AUDIO_")
NOT_OURS = frozenset({"MONGO_PASSWORD"})  # read by docker-compose.yml from the same .env


def unread_settings(environ: Mapping[str, str], env_file: Path | None = Path(".env")) -> list[str]:
    """'MONGODB_URL is not a setting moodbot reads (did you mean MONGODB_URI?)' for each likely typo.

    Names are compared upper-cased, as settings are read case-insensitively."""
    known = {name.upper() for name in Settings.model_fields}
    names = {name.upper() for name in environ}
    if env_file is not None and env_file.is_file():
        from dotenv import dotenv_values

        names |= {name.upper() for name in dotenv_values(env_file)}
    said = []
    for name in sorted(names - known - NOT_OURS):
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if not (name.startswith(SETTING_FAMILIES) or difflib.get_close_matches(name, known, n=1, cutoff=0.85)):
            continue
        hint = f" (did you mean {close[0]}?)" if close else ""
        said.append(f"{name} is not a setting moodbot reads{hint}; it is ignored")
    return said
