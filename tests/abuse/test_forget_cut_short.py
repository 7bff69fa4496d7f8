"""A /forget cut short after it renamed others' records of the user's file ("Voice note by Alice"),
before their playlist summaries were made again, is asked again ("please try /forget again"): the
retry must still find those records and make their summaries again, or a summary keeps the title
naming her (or, deleted before the failure, leaves the asker's vote out) for good."""
from __future__ import annotations

import pytest

from storage.database import Database
from storage.models import MoodRequest, StorageError
from storage.schema import JOURNAL_TRACKS, PLACE_TRACKS, VALIDATORS, ensure_collection
from tests.storage.conftest import T0
from tests.storage.test_journal_summaries import VOICE_NOTE, assert_summaries_are_the_entries, upload
from tests.storage.test_playlists import ALICE, BOB, PLACE, ranking

NAMED = "Voice note by Alice, 5 Dec 2026"
UNNAMED = "Voice note, 5 Dec 2026"


async def refusing_writes(db: Database, collection: str) -> None:
    """The database refuses every document written to `collection` (its validator asks for a field
    none has), as a database failing the summaries' writes would: deletes still go through."""
    await db.db.command("collMod", collection, validator={"$jsonSchema": {"required": ["refused"]}},
                        validationLevel="strict")


async def asked(db: Database) -> None:
    """Bob asked /mood of Alice's voice note in the group (a place's summary: place_tracks)."""
    await db.requests.add(MoodRequest(BOB, PLACE, VOICE_NOTE, "sad", T0, title=NAMED, sender=ALICE.user_id))
    await db.requests.settled()


async def journaled(db: Database) -> None:
    """Bob answered a prompt with Alice's voice note in the group (a journal's summary: journal_tracks)."""
    await db.journal.add(upload(BOB, "p1", NAMED, T0, PLACE, sender=ALICE.user_id))


@pytest.mark.parametrize("record, summary", [(asked, PLACE_TRACKS), (journaled, JOURNAL_TRACKS)],
                         ids=["a request", "a journal entry"])
async def test_a_forget_cut_short_before_others_summaries_were_made_again_makes_them_on_its_retry(
        db, record, summary):
    await record(db)
    await refusing_writes(db, summary)
    with pytest.raises(StorageError):
        await db.privacy.forget(ALICE)

    await ensure_collection(db.db, summary, VALIDATORS[summary])  # the database back
    await db.privacy.forget(ALICE)  # "please try /forget again"

    await assert_summaries_are_the_entries(db)
    [song] = await db.playlists.playlist(PLACE, "sad")
    assert (song.title, ranking([song])) == (UNNAMED, [(VOICE_NOTE, 1)])
    assert await db.db[summary].count_documents({"title": NAMED}) == 0
