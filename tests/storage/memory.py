"""What a process keeps of a user in memory, the database aside: a /forget must leave none of it
(`tests/storage/test_journal_summary_repairs.py`, `tests/storage/test_place_member_repairs.py`);
and the next process, which starts with none of it (the repair tests' kills and stops)."""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable

from storage.database import Database
from storage.models import UserRef
from storage.schema import VALIDATORS, ensure_collection


def held_in_memory(repo: object, who: UserRef) -> list[str]:
    """The attributes of `repo` whose containers (dicts, sets, lists, tuples, at any depth) hold the
    user's id: what the process keeps of them, the database aside."""
    def holds(value) -> bool:
        if isinstance(value, str):
            return value == who.user_id
        if isinstance(value, dict):
            return any(holds(key) or holds(item) for key, item in value.items())
        if isinstance(value, (set, frozenset, list, tuple)):
            return any(map(holds, value))
        return False
    return [name for name, value in vars(repo).items() if holds(value)]


async def her_forget_leaves_his_repair_alone(db: Database, repo: object, held: str, refused: str, *,
                                             her: UserRef, his: UserRef, his_song: str,
                                             marks: Callable[[Database], Awaitable[int]],
                                             agree: Callable[[Database], Awaitable[None]]) -> None:
    """Her and his writes to `refused` failed, both kept in `repo`'s repair list `held` and marked,
    and still refused when she sends /forget: nothing of her stays in memory, his repair stays
    (one mark), and once the collection takes writes again the place's sad playlist is his song
    alone, what `agree` checks agrees, and no mark is left."""
    from tests.storage.test_playlists import PLACE, ranking

    assert held_in_memory(repo, her) == [held]

    await db.privacy.forget(her)

    assert held_in_memory(repo, her) == []
    assert held_in_memory(repo, his) == [held] and await marks(db) == 1  # his, still refused
    await ensure_collection(db.db, refused, VALIDATORS[refused])  # the database back
    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [(his_song, 1)]
    await agree(db)
    assert await marks(db) == 0


@asynccontextmanager
async def the_next_process(mongo_uri: str, db_name: str) -> AsyncIterator[Database]:
    """A process started after the one that wrote (killed or stopped): nothing of its memory kept.
    The database is dropped on leaving."""
    after = await Database.connect(mongo_uri, db_name)
    try:
        yield after
    finally:
        await after.client.drop_database(db_name)
        await after.close()
