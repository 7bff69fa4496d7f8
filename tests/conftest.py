from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote_plus

# librosa (the features' reference) has numba compile some functions and cache them beside its
# source. Test processes side by side (pytest-xdist) in a fresh environment compiled them and wrote
# that cache at once, and one read another's half-written file: a segmentation fault. Each test
# process of a run gets a cache of its own, set before anything imports numba.
# What they all compile first is compiled once in the run, and copied into each (tests/numba_cache.py).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(
        tempfile.gettempdir(), f"moodbot-numba-{os.environ.get('PYTEST_XDIST_TESTRUNUID', 'run')}",
        os.environ["PYTEST_XDIST_WORKER"])
    from tests import numba_cache

    numba_cache.seed_before_numba(os.environ["NUMBA_CACHE_DIR"])

import pytest

from tests.dbserver import DBServer

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "4q"


# The suite's database wants a password, a sentinel like the tokens below: a URI with it reaches
# every Database.connect and the bot's settings, and no log record may show it.
MONGO_PASSWORD = "SENTINEL-mongo-p@ss/5e8a"


@pytest.fixture(scope="session")
def db_server():
    server = DBServer(password=MONGO_PASSWORD).start()
    yield server
    server.stop()


@pytest.fixture
def mongo_uri(db_server) -> str:
    return db_server.uri


@pytest.fixture
def db_name() -> str:
    """One database per test."""
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session", autouse=True)
def own_numba_cache():
    """This test process's numba cache (above) is removed at its end, and the run's folder of
    them by the last process to end."""
    yield
    if os.environ.get("PYTEST_XDIST_WORKER"):
        from tests import numba_cache

        numba_cache.clean_up(os.environ["NUMBA_CACHE_DIR"])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "labels.csv").exists():
        pytest.fail(f"the 4Q dataset is missing at {SHARED_DATA}")
    return SHARED_DATA


# --- Secrets: the whole suite runs with sentinel tokens, and no log record may ever show one. ---

import io  # noqa: E402
import logging  # noqa: E402
import threading  # noqa: E402

SENTINELS = {
    "TELEGRAM_TOKEN": "987654:SENTINEL-telegram-token-3f9c",
    "DISCORD_TOKEN": "SENTINEL.discord-token.7d1e",
    "SPOTIFY_CLIENT_SECRET": "SENTINEL-spotify-secret-b2a4",
}
# Tokens the tests hand to the fake servers themselves (tests/e2e/wiring.py, tests/frontends/
# conftest.py, tests/fakes/spotify_api.py): secrets too, as far as the logs are concerned.
DECLARED_TEST_SECRETS = ("123456:TEST-token", "discord-test-token")
# Libraries production quiets to WARNING (bot.logs._QUIET_LIBRARIES, plus the fakes' own aiohttp
# access log): their records below WARNING never reach a production log, so they are not judged.
# httpx logs every request URL at INFO, and a Telegram URL carries the token: production drops those.
PRODUCTION_QUIET = ("pymongo", "apscheduler", "httpx", "discord", "telegram", "matplotlib", "urllib3",
                    "aiohttp.access")
# Chatty libraries whose DEBUG output only costs time (numba dumps its compiler passes).
# pymongo is quieted in production too, and at DEBUG it renders every command it sends.
SILENCED_IN_TESTS = ("numba", "matplotlib", "PIL", "fontTools", "asyncio", "filelock", "fsspec", "pymongo",
                     "httpcore")


class SecretWatch(logging.Handler):
    """A root handler that formats every record at DEBUG and remembers any that shows a secret."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.secrets: set[str] = set()
        self.leaks: list[str] = []
        self.seen = 0
        self._guard = threading.Lock()

    def declare(self, *values: str) -> None:
        with self._guard:
            self.secrets.update(v for v in values if v)

    @staticmethod
    def production_drops(record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING and any(
            record.name == q or record.name.startswith(q + ".") for q in PRODUCTION_QUIET)

    @staticmethod
    def rendered(record: logging.LogRecord) -> str:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is not a leak
            text = str(record.msg)
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _RECORD_ATTRS)
        exc = logging.Formatter().formatException(record.exc_info) if record.exc_info else (record.exc_text or "")
        return f"{record.name} {text} {extras} {exc}"

    def emit(self, record: logging.LogRecord) -> None:
        if self.production_drops(record):
            return
        text = self.rendered(record)
        with self._guard:
            self.seen += 1
            for secret in self.secrets:
                if secret in text:
                    self.leaks.append(f"{record.name}:{record.levelname}: …{_around(text, secret)}…")


_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"})


def _around(text: str, secret: str, width: int = 60) -> str:
    at = text.find(secret)
    return text[max(0, at - width): at + len(secret) + width].replace("\n", " ")


_WATCH = SecretWatch()


@pytest.fixture(scope="session", autouse=True)
def secret_watch():
    """Sentinel tokens in the environment (where a test sets none), every log record watched;
    at the end of the session, any record that showed a sentinel or a declared secret fails it."""
    patch = pytest.MonkeyPatch()
    for name, value in SENTINELS.items():
        if not os.environ.get(name):
            patch.setenv(name, value)
    _WATCH.declare(*SENTINELS.values(), *DECLARED_TEST_SECRETS, *(os.environ.get(n, "") for n in SENTINELS))
    from tests.fakes.spotify_api import FakeSpotify

    _WATCH.declare(FakeSpotify.client_secret, MONGO_PASSWORD, quote_plus(MONGO_PASSWORD))  # as in the URI
    root = logging.getLogger()
    saved_level = root.level
    for name in SILENCED_IN_TESTS:
        logging.getLogger(name).setLevel(logging.WARNING)
    root.addHandler(_WATCH)
    root.setLevel(logging.DEBUG)
    yield _WATCH
    root.removeHandler(_WATCH)
    root.setLevel(saved_level)
    patch.undo()
    if _WATCH.leaks:
        shown = "\n".join(_WATCH.leaks[:20])
        pytest.fail(f"{len(_WATCH.leaks)} log records showed a secret:\n{shown}", pytrace=False)


@pytest.fixture
def log_stream():
    """The log as the bot writes it (bot.logs.configure_logging at INFO, salt "pepper", the secret
    "SENTINEL-token-123"), into a StringIO; the root's handlers as they were after."""
    from bot.logs import configure_logging

    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("INFO", secret_values=["SENTINEL-token-123", "short"], salt="pepper", stream=stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


@pytest.fixture(autouse=True)
def _secret_watch_stays_attached(secret_watch):
    """`bot.logs.configure_logging` replaces the root handlers: put the watch back for each test."""
    root = logging.getLogger()
    if secret_watch not in root.handlers:
        root.addHandler(secret_watch)
    if root.level != logging.DEBUG:
        root.setLevel(logging.DEBUG)
    yield
    if secret_watch not in root.handlers:
        root.addHandler(secret_watch)
