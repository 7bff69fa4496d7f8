"""The suite's own database server (tests/dbserver.py), as the outage tests use it."""
from __future__ import annotations

from pymongo import MongoClient

from tests.dbserver import DBServer


def test_a_killed_server_brought_back_on_its_files_has_every_write_it_acknowledged(tmp_path):
    """Killed as it was, SecantusDB lost the last write it had acknowledged (5 tries of 5), and an
    outage test then checked the bot against data that its server had dropped. Each write goes to
    a collection of its own: each of those makes a table on the server's files too."""
    server = DBServer(storage_path=str(tmp_path / "db")).start()
    try:
        with MongoClient(server.uri) as client:
            for i in range(12):
                client["t"][f"c{i}"].insert_one({"n": i})
        server.stop(kill=True)
        server = DBServer(port=server.port, storage_path=server.storage_path).start()
        with MongoClient(server.uri) as client:
            kept = [doc["n"] for i in range(12) for doc in client["t"][f"c{i}"].find()]
    finally:
        server.stop()
    assert kept == list(range(12))
