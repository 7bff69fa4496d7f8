"""Fixtures for the use-case tests: the real database, the real classifier, real 4Q clips."""
from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio

from bot.replies import Attachment, Caller
from inference.pool import DEFAULT_WEIGHTS_DIR, Classifier
from storage.database import Database

# Three real 30 s clips of the 4Q dataset (one per file, different moods).
CLIPS = ("MT0000004637.ogg", "MT0000011357.ogg", "MT0000011975.ogg")


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    """The shipped weights when the train helper has committed them, else tiny random ones."""
    if (DEFAULT_WEIGHTS_DIR / "main.onnx").is_file() and (DEFAULT_WEIGHTS_DIR / "ann.npz").is_file():
        return DEFAULT_WEIGHTS_DIR
    from tests.inference.test_predict import write_tiny_weights

    return write_tiny_weights(tmp_path_factory.mktemp("weights"))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def classifier(weights_dir):
    async with Classifier(weights_dir, workers=1, timeout_s=60.0) as warm:
        yield warm


class CountingClassifier:
    """The real classifier, counting how often it is asked (to show the cache works)."""

    def __init__(self, real: Classifier) -> None:
        self.real = real
        self.calls: list[str] = []
        self.labels: list[str | None] = []  # each call's label: the request's id, for the workers' lines

    @property
    def main_model_version(self) -> str | None:
        return self.real.main_model_version

    async def classify(self, path, **kwargs):
        self.calls.append(str(path))
        self.labels.append(kwargs.get("label"))
        return await self.real.classify(path, **kwargs)


@pytest.fixture
def counting(classifier) -> CountingClassifier:
    return CountingClassifier(classifier)


@pytest_asyncio.fixture(loop_scope="session")
async def db(mongo_uri, db_name):
    database = await Database.connect(mongo_uri, db_name)
    await database.init()
    yield database
    await database.close()


@pytest_asyncio.fixture(loop_scope="session")
async def down_db():
    """A database client whose server never answers: nothing listens on its port, and each call
    fails after a server selection of 300 ms."""
    from tests.dbserver import free_port

    down = await Database.connect(f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=300",
                                  "moodbot", server_selection_timeout_ms=300, verify=False)
    yield down
    await down.close()


# How long an outage's client looks for its server before a call fails. The suite's URI says 3 s
# (tests/dbserver.py), and a URI's option wins over Database.connect's keyword: each call made with
# the server down waited 3 s, 7-10 of them in a test. 300 ms (the driver rounds a failure up to its
# 0.5 s recheck) was too short for the first call after `up`: the client had not seen the server
# back yet, and 2 of 51 outage tests failed on the loaded machine. At 1 s none did.
SELECTION_MS = 1000


class Outage:
    """A database server on files of its own that a test takes down (`down`) and brings back on the
    same port and data (`up`); its client fails fast while it is down (SELECTION_MS a call), and the
    journal's outbox writer queues what cannot be written."""

    def __init__(self, tmp_path: Path) -> None:
        from storage.outbox import JournalOutbox, JournalWriter
        from tests.dbserver import DBServer

        self._storage_path = str(tmp_path / "db")
        self._server_class = DBServer
        self.server = DBServer(storage_path=self._storage_path).start()
        self.outbox_path = tmp_path / "outbox.jsonl"
        self.db: Database | None = None
        self.writer: JournalWriter | None = None
        self._writer_class, self._outbox_class = JournalWriter, JournalOutbox

    async def connect(self) -> "Outage":
        self.db = await Database.connect(self.server.uri_failing_after(SELECTION_MS), "outage",
                                         server_selection_timeout_ms=300)  # its connectTimeoutMS
        await self.db.init()
        self.writer = self._writer_class(self.db.journal, self._outbox_class(self.outbox_path), self.db.prompts)
        return self

    def down(self) -> None:
        self.server.stop(kill=True)

    def up(self) -> None:
        self.server = self._server_class(port=self.server.port, storage_path=self._storage_path).start()

    async def close(self) -> None:
        if self.db is not None:
            await self.db.close()
        self.server.stop()

    async def __aenter__(self) -> "Outage":
        try:
            return await self.connect()
        except BaseException:
            await self.close()
            raise

    async def __aexit__(self, *exc_info) -> None:
        await self.close()


@pytest_asyncio.fixture(loop_scope="session")
async def outage(tmp_path):
    """A database that the test can take down and bring back: see `Outage`."""
    async with Outage(tmp_path) as down_and_up:
        yield down_and_up


@pytest.fixture(scope="session")
def clip_paths(shared_data) -> list[Path]:
    return [shared_data / "audio" / name for name in CLIPS]


def attachment(path: Path) -> Attachment:
    return Attachment(str(path), path.name, path.stat().st_size)


ALICE = Caller("telegram", "1001", place="telegram:-500", chat_id="1001", display_name="Alice")
BOB = Caller("telegram", "1002", place="telegram:-500", chat_id="1002", display_name="Bob")
ALICE_DM = Caller("telegram", "1001", place=None, chat_id="1001", display_name="Alice")


def pytest_collection_modifyitems(items):
    """Every async test here shares the session's event loop, so the warm classifier (started
    once per session) can serve them all."""
    session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if "tests/bot/" in str(item.fspath) and pytest_asyncio.is_async_test(item):
            item.add_marker(session_loop, append=False)
