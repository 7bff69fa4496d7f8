"""A part of a long answer (`JournalRepo.add_to_note`, Telegram sends one in parts) finds its entry
through an index. It was one find_one_and_update by the user and the message: SecantusDB (0.7) runs
a findAndModify as a scan of the whole collection, every user's journal, whatever its filter (by
`_id` too: 115 ms over 20 000 entries against 2.5 ms for an update_one), and no index held the
message beside the user, so a find by them scanned as well."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from storage.database import Database
from storage.schema import JOURNAL
from tests.storage.conftest import T0
from tests.storage.test_playlists import ALICE, BOB, journal
from tests.storage.test_query_plans import Reads, listening, scanned


class Writes(Reads):
    """The reads, and the filters of the updates and find-and-modifies, as finds; with each
    command's name."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def started(self, event) -> None:
        super().started(event)
        name, command = event.command_name, event.command
        self.names.append(name)
        if name == "update":
            self.reads += [(command[name], update["q"], None) for update in command["updates"]]
        elif name == "findAndModify":
            self.reads.append((command[name], command.get("query", {}), command.get("sort")))


async def answered(database: Database, who, prompt: str, message: str) -> None:
    await database.journal.add(replace(journal(who, prompt, "calm", T0), answered_by=message))


async def test_a_part_of_a_note_finds_its_entry_through_an_index_not_a_find_and_modify(mongo_uri, db_name):
    writes: Any = Writes()
    database, _ = await listening(mongo_uri, db_name, writes)
    try:
        for n in range(3):
            await answered(database, BOB, f"b{n}", f"m{n}")
            await answered(database, ALICE, f"a{n}", f"m{n}")
        writes.reads.clear()
        writes.names.clear()
        added = await database.journal.add_to_note(ALICE, "m1", "and the rest", "\n")
        again = await database.journal.add_to_note(ALICE, "m1", "and the rest", "\n")  # handed over again
        assert await database.journal.add_to_note(ALICE, "m9", "nobody's", "\n") is None
        assert (await database.journal.answered_by(ALICE, "m1")).track_key == "spotify:a1"
        assert "findAndModify" not in writes.names
        assert JOURNAL in {collection for collection, _, _ in writes.reads}
        assert await scanned(database, writes.reads) == []
        assert added.track_key == again.track_key == "spotify:a1"
        assert added.note == again.note == "and the rest"
        assert not any(e.note for e in await database.journal.list(BOB))  # the same message, another user
    finally:
        await database.client.drop_database(db_name)
        await database.close()
