"""The embedded server: a separate secantusd-py process keeping its data under DATA_DIR/db."""
from __future__ import annotations

import sys
from datetime import time

import pytest

from storage.database import Database
from storage.embedded import EmbeddedServer, EmbeddedServerError
from storage.models import User, UserRef

ALICE = UserRef("chat", "alice")


async def test_data_survives_a_restart_under_the_same_data_dir(tmp_path):
    with EmbeddedServer(tmp_path) as server:
        assert "retryWrites=false" in server.uri
        assert server.uri.startswith("mongodb://127.0.0.1:")
        db = await Database.connect(server.uri, "moodbot")
        await db.init()
        await db.users.upsert(User("chat", "alice", prompt_time=time(20)))
        await db.close()
    assert (tmp_path / "db").is_dir()

    server = EmbeddedServer(tmp_path).start()
    process = server._proc
    db = await Database.connect(server.uri, "moodbot")
    assert await db.init() >= 1
    assert (await db.users.get(ALICE)).prompt_time == time(20)
    await db.close()
    server.stop()
    assert process.poll() is not None
    server.stop()  # safe to repeat


def test_a_clear_error_when_the_server_is_not_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EmbeddedServerError) as caught:
        EmbeddedServer(tmp_path).start()
    assert "secantusd-py" in str(caught.value) and "MONGODB_URI" in str(caught.value)


def test_uri_before_start_is_a_readable_error(tmp_path):
    with pytest.raises(EmbeddedServerError):
        EmbeddedServer(tmp_path).uri
