"""Bob asks the mood of Alice's voice note: his request, and the group's playlist, call it
"Voice note by Alice, 5 Dec 2026" and link her message. Alice's /forget leaves Bob's request, but
not her name in it: it is "Voice note, 5 Dec 2026", without the link to her message."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bot.usecases import build_usecases
from storage.models import UserRef
from storage.schema import JOURNAL, PLACE_TRACKS, REQUESTS
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


def naming_alice(docs: list[dict]) -> list[dict]:
    """The documents that carry Alice's name, or her id as anything but their owner's."""
    return [d for d in docs if "Alice" in json.dumps(d, default=str)
            or ALICE.user_id in json.dumps({k: v for k, v in d.items() if k != "user_id"}, default=str)]


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
        assert docs and not naming_alice(docs), docs


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


BOB_DM = replace(BOB, place=None)


async def bob_prompted(usecases, db, message_id: str) -> None:
    """Bob's journal on, and prompted as message `message_id` of his DM."""
    await usecases.journal.enable(BOB_DM, "21:30", "Europe/Lisbon")
    prompt = await usecases.journal.make_prompt(await db.users.get(UserRef(BOB.platform, BOB.user_id)))
    await usecases.journal.prompt_delivered(prompt.prompt_id, message_id)


async def bob_answers_with_alices_note(usecases, path, message_id: str, caller=BOB_DM):
    """Alice's voice note forwarded by Bob in reply to his prompt, message `message_id`."""
    return await usecases.journal.answer(caller, None, alices_voice_note(path), prompt_message_id=message_id,
                                         message_id=str(int(message_id) + 1))


async def bob_answers_his_prompt_with_alices_note(usecases, db, path, message_id: str):
    await bob_prompted(usecases, db, message_id)
    return await bob_answers_with_alices_note(usecases, path, message_id)


async def test_alice_s_forget_takes_her_name_out_of_bob_s_journal_entry_of_her_voice_note(usecases, db, clip_paths):
    await bob_answers_his_prompt_with_alices_note(usecases, db, clip_paths[0], "930")
    bob = UserRef(BOB.platform, BOB.user_id)
    assert [e.track_title for e in await db.journal.list(bob)] == [ALICES_NOTE]

    await usecases.privacy.forget(ALICE_DM, confirmed=True)

    assert [e.track_title for e in await db.journal.list(bob)] == ["Voice note, 5 Dec 2026"]
    docs = await db.db[JOURNAL].find({}, {"_id": 0}).to_list()
    assert docs and not naming_alice(docs), docs
    assert "Alice" not in await bobs_export(usecases)


async def test_a_journal_answer_heard_during_its_sender_s_forget_is_saved_without_her_name(usecases, db,
                                                                                          clip_paths):
    """Bob's answer arrived before Alice's /forget and was saved after it: it would name her for good."""
    await bob_prompted(usecases, db, "935")
    stamped = usecases.privacy.arrived(BOB_DM)
    await usecases.privacy.forget(ALICE_DM, confirmed=True)
    await bob_answers_with_alices_note(usecases, clip_paths[1], "935", caller=stamped)
    docs = await db.db[JOURNAL].find({}, {"_id": 0}).to_list()
    assert [d["track_title"] for d in docs] == ["Voice note, 5 Dec 2026"] and not naming_alice(docs), docs


async def test_alice_s_forget_with_nothing_of_her_own_says_whose_songs_lost_her_name(usecases, db, clip_paths):
    """Alice had nothing stored: her /forget still renamed Bob's request and journal entry of her
    note, and says so, not "There was nothing of yours to delete"."""
    await usecases.mood.run(BOB, attachment=alices_voice_note(clip_paths[1]))
    await bob_answers_his_prompt_with_alices_note(usecases, db, clip_paths[0], "940")

    reply = await usecases.privacy.forget(ALICE_DM, confirmed=True)

    assert reply.text.startswith("I had nothing of yours to delete, and no daily prompt was on, but I took your "
                                 "name out of 2 songs others had asked about or put in their journals"), reply.text


async def test_alice_s_forget_says_it_took_her_name_out_of_bob_s_song_beside_her_own_records(usecases, clip_paths):
    await usecases.mood.run(ALICE, attachment=attachment(clip_paths[2]))
    await usecases.mood.run(BOB, attachment=alices_voice_note(clip_paths[1]))

    reply = await usecases.privacy.forget(ALICE_DM, confirmed=True)

    assert reply.text == ("Done: I deleted everything about you (1 record). I took your name out of 1 song others "
                          "had asked about or put in their journals: your voice notes and files, now titled without "
                          "it (the records are theirs, so they stay)."), reply.text


async def test_alice_s_forget_takes_her_name_out_of_bob_s_answer_waiting_in_the_outbox(counting, clip_paths,
                                                                                     outage):
    """Bob's answer saved while the database was down waits in the outbox, naming Alice; her
    /forget (the database back, the outbox not drained yet) renames it there, and so it is written."""
    usecases = build_usecases(outage.db, counting, fetcher=None, writer=outage.writer)
    await bob_prompted(usecases, outage.db, "950")
    outage.down()
    saved = await bob_answers_with_alices_note(usecases, clip_paths[0], "950")
    assert saved.queued, saved
    outage.up()

    reply = await usecases.privacy.forget(ALICE_DM, confirmed=True)
    bob = UserRef(BOB.platform, BOB.user_id)

    assert "took your name out of 1 song others" in reply.text, reply.text
    assert [(e.track_title, e.sender) for e in await outage.writer.outbox.queued(bob)] == [
        ("Voice note, 5 Dec 2026", None)]
    await outage.writer.drain()
    assert [e.track_title for e in await outage.db.journal.list(bob)] == ["Voice note, 5 Dec 2026"]
