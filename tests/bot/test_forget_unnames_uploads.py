"""Bob asks the mood of Alice's voice note: his request, and the group's playlist, call it
"Voice note by Alice, 5 Dec 2026" and link her message. Alice's /forget leaves Bob's request, but
not her name in it: it is "Voice note, 5 Dec 2026", without the link to her message."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bot.usecases import build_usecases
from storage.models import UserRef
from storage.schema import PLACE_TRACKS, REQUESTS
from tests.bot.conftest import ALICE, ALICE_DM, BOB, attachment

ALICES_NOTE = "Voice note by Alice, 5 Dec 2026"
HER_MESSAGE = "https://t.me/c/500/77"


@pytest.fixture
def usecases(db, counting):
    return build_usecases(db, counting, fetcher=None)


def alices_voice_note(path):
    """Alice's voice note as the front-end hands it to Bob's /mood in reply to it."""
    return replace(attachment(path), title=ALICES_NOTE, sender=ALICE.user_id, message_link=HER_MESSAGE)


async def bobs_export(usecases) -> str:
    return (await usecases.privacy.export(replace(BOB, place=None))).data.decode()


async def test_alice_s_forget_takes_her_name_and_message_out_of_bob_s_request_and_the_playlist(usecases, db,
                                                                                                clip_paths):
    reply = await usecases.mood.run(BOB, attachment=alices_voice_note(clip_paths[0]))
    listed = (await usecases.playlists.playlist(BOB, reply.mood)).tracks
    assert [(t.title, t.url) for t in listed] == [(ALICES_NOTE, HER_MESSAGE)]

    await usecases.privacy.forget(ALICE_DM, confirmed=True)

    listed = (await usecases.playlists.playlist(BOB, reply.mood)).tracks
    assert [(t.title, t.url) for t in listed] == [("Voice note, 5 Dec 2026", None)]
    export = await bobs_export(usecases)
    assert "Alice" not in export and HER_MESSAGE not in export and '"Voice note, 5 Dec 2026"' in export
    for name in (REQUESTS, PLACE_TRACKS):  # nor anything stored beside it (her id as the sender)
        docs = await db.db[name].find({}, {"_id": 0}).to_list()
        assert docs and not any("Alice" in json.dumps(d, default=str) or ALICE.user_id in
                                json.dumps({k: v for k, v in d.items() if k != "user_id"}, default=str)
                                for d in docs), docs


async def test_another_member_s_forget_leaves_alice_s_name_on_her_voice_note(usecases, db, clip_paths):
    """Only the sender the title names: Carol's /forget renames nothing of Bob's."""
    reply = await usecases.mood.run(BOB, attachment=alices_voice_note(clip_paths[0]))
    await db.privacy.forget(UserRef("telegram", "1003"))
    listed = (await usecases.playlists.playlist(BOB, reply.mood)).tracks
    assert [(t.title, t.url) for t in listed] == [(ALICES_NOTE, HER_MESSAGE)]


async def test_a_voice_note_answered_after_its_sender_s_forget_is_recorded_without_her_name(usecases, db,
                                                                                            clip_paths):
    """Alice's /forget while Bob's /mood of her note was being answered: written after it, it would
    name her for good. The caller was stamped before her /forget."""
    stamped = usecases.privacy.arrived(BOB)
    note = alices_voice_note(clip_paths[1])
    await usecases.privacy.forget(ALICE_DM, confirmed=True)
    reply = await usecases.mood.run(stamped, attachment=note)
    await db.requests.settled()
    listed = (await usecases.playlists.playlist(BOB, reply.mood)).tracks
    assert [(t.title, t.url) for t in listed] == [("Voice note, 5 Dec 2026", None)]
