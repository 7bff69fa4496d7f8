"""Data rights, end to end: after /forget nothing holds the user's id, whatever was on its way."""
from __future__ import annotations

import asyncio

import pytest

from bot.usecases import build_usecases
from storage.models import UserRef
from tests.bot.conftest import BOB, attachment
from tests.bot.test_privacy_and_playlists import HeldClassifier

BOB_DM = BOB.__class__(BOB.platform, BOB.user_id, place=None, chat_id=BOB.chat_id)


async def everything_naming(db, ref: UserRef) -> dict[str, list]:
    """Every document of every collection that holds the user's id."""
    found = {}
    for name in await db.db.list_collection_names():
        docs = await db.db[name].find({"platform": ref.platform, "user_id": ref.user_id}).to_list()
        if docs:
            found[name] = docs
    return found


@pytest.mark.parametrize("forgot", ["while heard", "while downloading"])
async def test_a_member_who_forgot_and_left_while_a_song_asked_before_was_heard_leaves_no_departure(
        db, counting, clip_paths, forgot):
    """Bob asks /mood in the group, runs /forget while the song is heard (or while its file was
    still downloading, before the use case began), and leaves the group before the answer. His
    request is dropped (asked before /forget), but the /mood still being answered counted as a
    visit, so his departure was recorded after /forget: a document naming him in a group, which
    nobody can see or delete but a second /forget."""
    held = HeldClassifier(counting)
    usecases = build_usecases(db, held, fetcher=None)
    bob = UserRef(BOB.platform, BOB.user_id)
    arrived = usecases.privacy.arrived(BOB)
    if forgot == "while downloading":
        done = await usecases.privacy.forget(BOB_DM, confirmed=True)

    asking = asyncio.create_task(usecases.mood.run(arrived, attachment=attachment(clip_paths[1])))
    await held.listening.wait()
    if forgot == "while heard":
        done = await usecases.privacy.forget(BOB_DM, confirmed=True)
    await usecases.playlists.member_left(BOB.platform, BOB.place.split(":", 1)[1], BOB.user_id)
    held.release.set()
    reply = await asking
    await db.requests.settled()

    assert done.text.startswith("Done")
    assert reply.mood in ("happy", "energetic", "sad", "calm")  # he is still answered
    assert await everything_naming(db, bob) == {}
