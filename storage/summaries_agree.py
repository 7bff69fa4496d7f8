"""The places' summaries (`place_tracks`) and members' documents (`place_members`) made to agree
with the stored requests (migration 20).

Until ce59893 a /mood request's summary and member's document were written before its insert: an
insert the database refused, or an outage cut, left an entry no stored request backs, and where
the file was someone's upload, its title naming its sender ("Voice note by Alice") and the link to
her message, which her /forget, finding the records naming her by the stored requests' `sender`,
cannot find. Since, a kill between an insert and its summary leaves a vote out until its member is
summed up again. Here each member's summaries are compared with what their requests make
(`place_tracks.summarize_pipeline`), and those that differ made again; their documents, and those
that differ from the summaries the requests make, are made again (`place_tracks.rebuild_members`).

By batches of the members of `USERS_PER_BATCH` user ids (a range of ids, `_bounds`), in order,
each batch's last id recorded in `meta` (`PROGRESS_ID`) once done: a start stopped mid-way goes on
from there, and the mark is deleted at the end. A batch's writes are safe to do again. Its cost
on benchmarks/large_server.py's server (2 000 members, 100 000 requests): benchmarks/summaries_agree.py,
figures in docs/running.md. A batch reads its members' summaries first, then their requests (since ce59893 a request
is inserted before its summary: a summary read first whose request the read after misses is none's),
and deletes a summary only as it read it (a bot writing beside it keeps a vote it adds meanwhile).
"""
from __future__ import annotations

import logging
from typing import Any

from pymongo import DeleteOne
from pymongo.asynchronous.collection import AsyncCollection

from storage import place_tracks

log = logging.getLogger(__name__)

PROGRESS_ID = "summaries_agree"  # in `meta`: the last user id whose batch is done
USERS_PER_BATCH = 200

Key = tuple[str, str, str, str]  # place, platform, user id, track key


def _key(doc: dict[str, Any]) -> Key:
    return doc["place"], doc["platform"], doc["user_id"], doc["track_key"]


def _as_read(doc: dict[str, Any]) -> dict[str, Any]:
    """A filter that finds the summary only as it was read."""
    place, platform, user_id, track_key = _key(doc)
    return {**place_tracks.member_filter(place, platform, user_id), "track_key": track_key,
            "latest.at": doc["latest"]["at"], "latest.mood": doc["latest"]["mood"], "title": doc.get("title"),
            "source_link": doc["source_link"] if "source_link" in doc else {"$exists": False}}


async def _bounds(summary: AsyncCollection, after: str | None, users_per_batch: int) -> list[str]:
    """The last user id of each batch: every `users_per_batch`-th id of the members' documents
    (one per member and place, 2 000 for 100 000 requests) past `after`, in order. A batch holds
    the ids after the one before and up to its own (the last, all those after), whoever they are:
    a member with requests and no document is in one too."""
    past = {"user_id": {"$gt": after}} if after is not None else {}
    cursor = await place_tracks.members_of(summary).aggregate([{"$match": past}, {"$group": {"_id": "$user_id"}}])
    return sorted([row["_id"] async for row in cursor])[users_per_batch - 1::users_per_batch]


async def _agree_batch(requests: AsyncCollection, summary: AsyncCollection, after: str | None,
                       last: str | None) -> int:
    """The summaries and documents of the members whose user id is past `after`, up to `last`
    (None: no bound), made to agree with their requests; returns how many summaries differed."""
    # A range of ids: the indexes that lead with user_id serve it, where SecantusDB (0.7) read
    # every request for a `$in` of 200 ids (1.50 s; the range 0.44 s, of 100 000 requests).
    bounds = {**({"$gt": after} if after is not None else {}), **({"$lte": last} if last is not None else {})}
    theirs = {"user_id": bounds} if bounds else {}
    read = {_key(doc): doc for doc in await summary.find(theirs).to_list()}
    documents = {(doc["place"], doc["platform"], doc["user_id"]): doc["tracks"]
                 for doc in await place_tracks.members_of(summary).find(theirs).to_list()}
    rows = await (await requests.aggregate(
        place_tracks.summarize_pipeline(None, match=theirs, among={"place": {"$ne": None}}))).to_list()
    made = {(row["_id"]["place"], row["_id"]["platform"], row["_id"]["user_id"], row["_id"]["track_key"]):
            {**row["_id"], "latest": row["latest"], "title": row.get("title"),
             **({"source_link": row["source_link"]} if row.get("source_link") else {})}
            for row in rows}
    differ = sorted(key for key in read.keys() | made.keys()
                    if key not in read or key not in made or place_tracks.told_in(read[key]) != place_tracks.told_in(made[key]))
    await place_tracks.write(summary, [DeleteOne(_as_read(read[key])) for key in differ if key in read])
    await place_tracks.write(summary, [place_tracks.summary_update(*key, latest=made[key]["latest"], title=made[key]["title"],
                                                                   source_link=made[key].get("source_link"))
                                       for key in differ if key in made])
    members: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for key, doc in made.items():
        members.setdefault(key[:3], []).append(doc)
    again = {key[:3] for key in differ}
    again |= {member for member in documents.keys() | members.keys()
              if documents.get(member) != (place_tracks.member_document(*member, members[member])["tracks"]
                                           if member in members else None)}
    if again:
        await place_tracks.rebuild_members(summary, again)
    return len(differ)


async def agree(requests: AsyncCollection, summary: AsyncCollection, meta: AsyncCollection,
                users_per_batch: int = USERS_PER_BATCH) -> None:
    """Every member's summaries and document made to agree with their stored requests, by batches
    of users, from where a stopped run left off (see the module's docstring)."""
    progress = await meta.find_one({"_id": PROGRESS_ID})
    after = progress["after"] if progress else None
    differed = 0
    for last in [*await _bounds(summary, after, users_per_batch), None]:
        differed += await _agree_batch(requests, summary, after, last)
        if last is not None:
            await meta.update_one({"_id": PROGRESS_ID}, {"$max": {"after": last}}, upsert=True)
        after = last
    if differed:
        log.info("place summaries made again from the requests: %d", differed)
    await meta.delete_one({"_id": PROGRESS_ID})
