"""Requests a chat platform handed over and the bot has not finished answering, kept so that a
bot killed outright (`kill -9`, an out-of-memory kill, a power cut) answers them after its restart.

A platform may consider a request delivered once the bot has fetched it, long before it is
answered (bot/frontends says which and why). One document per such request: the platform's own
payload, where it came from (`source`: the platform and the bot's id there) and its number there
(`number`), who sent it (so /forget deletes it with the rest), when it arrived, how many
restarts in a row have replayed it and not seen it handled to the end (`held`), the message the bot showed for it (a status, which the
answer after a restart takes over), and of a request answered in parts (a message command
on several files, one answer each) how many were answered (not answered again). The document is deleted once the request is answered. The
collection is made by its first write: no validator, no index (it holds only the requests in
progress, a few documents).

A request a /forget could not wait for (its write still on its way to the server, which takes it
even from a bot stopped or killed since) is noted in a second collection (`forgotten`): its source
and number, and when, nothing of whose it was. A start drops such a request unanswered should its
write have landed after the /forget (bot/usecases/inbox.py, `replay`). The notes go a day later,
when no request that old is answered anyway: at a start, with the requests kept before the same
time (`drop_received_before`), and at the next note.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from pymongo import ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from storage.failures import translated_errors


@dataclass(frozen=True)
class Arrival:
    number: int  # the request's number at its source, in the order it arrived
    payload: dict[str, Any]  # what the platform sent, as it sent it
    platform: str | None = None  # who sent it, for /forget
    user_id: str | None = None
    received: datetime | None = None  # set by `keep` when not given
    replays: int = 0  # restarts that have handed it to the bot again
    # The message the bot showed for it so far (a "Fetching…" status): (chat id, message id); of a
    # Discord command answered in parts, its followup for the part at work: (that part, message id)
    shown: tuple[str, str] | None = None
    # Of a request answered in parts (one answer for each file of a command, or each song of an album): how many
    # are answered, in order (the first `parts`)
    parts: int = 0


def _doc_id(source: str, number: int) -> str:
    return f"{source}:{number}"


class InboxRepo:
    def __init__(self, collection: AsyncCollection, forgotten: AsyncCollection) -> None:
        self._inbox = collection
        self._forgotten = forgotten

    async def keep(self, source: str, arrivals: Sequence[Arrival]) -> None:
        """Record requests just handed over (one write for all of them; again for one already kept
        leaves it as it was)."""
        if not arrivals:
            return
        now = datetime.now(timezone.utc)
        with translated_errors("keep the requests being answered"):
            await self._inbox.bulk_write([
                ReplaceOne({"_id": _doc_id(source, a.number)},
                           {"source": source, "number": a.number, "platform": a.platform, "user_id": a.user_id,
                            "received": a.received or now, "replays": a.replays, "payload": a.payload,
                            "shown": None if a.shown is None else list(a.shown), "parts": a.parts},
                           upsert=True)
                for a in arrivals], ordered=False)

    async def shown(self, source: str, number: int, chat_id: str | None, message_id: str | None) -> None:
        """Note the message the bot showed for a request kept (nothing for one not kept, or done);
        None: none to take over now."""
        shown = None if chat_id is None or message_id is None else [chat_id, message_id]
        with translated_errors("note a request's status message"):
            await self._inbox.update_one({"_id": _doc_id(source, number)}, {"$set": {"shown": shown}})

    async def parts_answered(self, source: str, numbers: Sequence[int], parts: int) -> None:
        """Note that the first `parts` parts of these requests kept are answered (never fewer than
        noted before; nothing for one not kept, or done)."""
        with translated_errors("note a request's parts answered"):
            await self._inbox.update_many({"_id": {"$in": [_doc_id(source, n) for n in numbers]}},
                                          {"$max": {"parts": parts}})

    async def held(self, source: str, numbers: Sequence[int]) -> None:
        """Note that these requests kept were handled to the end, and stay kept only for what may
        follow them (a long answer's next parts): the restarts that handed them over so far count
        no more (`replays` back to 0; nothing for one not kept, or done)."""
        with translated_errors("note the requests held"):
            await self._inbox.update_many({"_id": {"$in": [_doc_id(source, n) for n in numbers]}},
                                          {"$set": {"replays": 0}})

    async def done(self, source: str, numbers: Sequence[int]) -> None:
        """Forget requests answered (or told to be sent again)."""
        if not numbers:
            return
        with translated_errors("clear the requests answered"):
            await self._inbox.delete_many({"_id": {"$in": [_doc_id(source, n) for n in numbers]}})

    async def drop_received_before(self, before: datetime) -> int:
        """Delete what any source kept before `before` (a bot since given another token, say, whose
        own start would never replay them), and the notes of requests forgotten before it; how many
        requests."""
        with translated_errors("drop old requests"):
            await self._forgotten.delete_many({"at": {"$lt": before}})
            return (await self._inbox.delete_many({"received": {"$lt": before}})).deleted_count

    async def forgotten(self, source: str, numbers: Sequence[int], at: datetime, *, expired: datetime) -> None:
        """Note requests a /forget deleted at `at` whose write may still land after it: `forgotten_in`
        names them to the start, which then drops them. Their source and number alone. The notes
        made before `expired` go."""
        if not numbers:
            return
        with translated_errors("note the requests forgotten"):
            await self._forgotten.bulk_write([
                UpdateOne({"_id": _doc_id(source, n)}, {"$set": {"source": source, "number": n, "at": at}},
                          upsert=True)
                for n in numbers], ordered=False)
            await self._forgotten.delete_many({"at": {"$lt": expired}})

    async def forgotten_in(self, source: str) -> set[int]:
        """The numbers of the requests noted `forgotten` at this source."""
        with translated_errors("read the requests forgotten"):
            return {doc["number"] for doc in await self._forgotten.find({"source": source}, {"number": 1}).to_list()}

    async def waiting(self, source: str) -> list[Arrival]:
        """The requests kept and not done, in the order they arrived."""
        with translated_errors("read the requests not answered"):
            docs = await self._inbox.find({"source": source}).sort("number", 1).to_list()
        return [Arrival(doc["number"], doc["payload"], doc.get("platform"), doc.get("user_id"),
                        doc["received"].replace(tzinfo=timezone.utc), doc.get("replays", 0),
                        None if not doc.get("shown") else tuple(doc["shown"]), doc.get("parts", 0))
                for doc in docs]
