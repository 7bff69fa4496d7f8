"""A mood request whose place summary (`place_tracks`) was written and whose member's document
(`place_members`, what a playlist reads) the database then failed, refused or gone: the summary
holds the vote (`place_tracks.record`), the request was not inserted (its caller told; since
2026-12-06 it is), and the playlist left the vote out until the member's document was next made
again (a move, a sender's /forget). The member is now marked (`place_repairs`, after the failure only, as a journal answer's
refused summary is) and their document made again from their summaries at the next playlist read
of the place, at the stop, or, the process killed first, at the next start."""
from __future__ import annotations

from storage.database import Database
from storage.models import MoodRequest, UserRef
from storage.schema import PLACE_MEMBERS, PLACE_REPAIRS, REQUESTS, VALIDATORS, ensure_collection
from tests.abuse.test_forget_cut_short import NAMED, UNNAMED, refusing_writes
from tests.fakes.wire_gate import gated_database
from tests.storage.conftest import T0
from tests.storage.memory import her_forget_leaves_his_repair_alone, the_next_process
from tests.storage.test_member_documents import members_view, summaries_view
from tests.storage.test_journal_summaries import VOICE_NOTE
from tests.storage.test_playlists import ALICE, BOB, OTHER_PLACE, PLACE, ranking
from tests.storage.test_privacy import documents_mentioning

HERS = [("spotify:A", 1)]  # Alice's song, sad
NOT_MARKED = "place_tracks.members_not_marked"
NOT_WRITTEN = "place_tracks.members_not_written"


async def marks(db: Database) -> int:
    """The place_repairs marks left once the requests added so far are written: a batch's callers
    are answered before its marks are deleted (`_unmarked`), so a count right after `add` raced
    that delete (a CI run counted 1)."""
    await db.requests.settled()
    return await db.db[PLACE_REPAIRS].count_documents({})


async def cut_short(db: Database, member: UserRef, song: str) -> None:
    """The member asked /mood in the place (the song, sad), the database refusing member documents'
    writes: recorded, their summary and the request written (until 2026-12-06 told not recorded,
    the request not inserted), their document without it."""
    await db.requests.add(MoodRequest(member, PLACE, song, "sad", T0))


async def her_request_cut_short(db: Database) -> None:
    """Alice asked /mood in the place (song A, sad), the database refusing her member document's
    write, then back."""
    await refusing_writes(db, PLACE_MEMBERS)
    await cut_short(db, ALICE, "spotify:A")
    await ensure_collection(db.db, PLACE_MEMBERS, VALIDATORS[PLACE_MEMBERS])  # the database back


async def assert_documents_are_the_summaries(db: Database) -> None:
    assert await members_view(db) == await summaries_view(db)


async def marks_refused(db: Database) -> None:
    await ensure_collection(db.db, PLACE_REPAIRS, None)  # made by its first write: here before it
    await refusing_writes(db, PLACE_REPAIRS)


async def test_a_request_whose_member_document_is_refused_counts_at_the_next_playlist_read(db):
    await her_request_cut_short(db)
    assert await marks(db) == 1  # written after the refusal

    assert ranking(await db.playlists.playlist(PLACE, "sad")) == HERS

    await assert_documents_are_the_summaries(db)
    assert await marks(db) == 0


async def test_a_request_whose_member_document_is_written_leaves_no_mark(db):
    await db.requests.add(MoodRequest(ALICE, PLACE, "spotify:A", "sad", T0))
    assert await marks(db) == 0  # written before the insert (a kill before the summary), deleted after it
    assert ranking(await db.playlists.playlist(PLACE, "sad")) == HERS


async def test_another_place_s_read_leaves_the_mark_to_its_own(db):
    """The repair is the read place's: another server's playlist neither waits for it nor clears it."""
    await her_request_cut_short(db)
    await db.requests.add(MoodRequest(BOB, OTHER_PLACE, "spotify:B", "sad", T0))

    assert ranking(await db.playlists.playlist(OTHER_PLACE, "sad")) == [("spotify:B", 1)]
    assert await marks(db) == 1

    assert ranking(await db.playlists.playlist(PLACE, "sad")) == HERS
    assert await marks(db) == 0


async def test_a_request_whose_member_document_is_refused_then_a_kill_counts_after_the_next_start(
        mongo_uri, db_name):
    """Killed (no stop) before any read of the place: the next process knew nothing of it."""
    killed = await Database.connect(mongo_uri, db_name)
    await killed.init()
    await her_request_cut_short(killed)
    await killed.client.close()  # the process killed: no `close`, nothing of its memory kept
    async with the_next_process(mongo_uri, db_name) as after:
        assert await after.requests.recall_unfolded() == 1  # as the app's start calls it
        await assert_documents_are_the_summaries(after)
        assert await marks(after) == 0
        assert ranking(await after.playlists.playlist(PLACE, "sad")) == HERS


async def test_a_request_whose_member_document_and_mark_are_refused_is_made_again_at_the_stop(mongo_uri, db_name):
    """Known in memory alone (its mark refused): the stop makes her document again, before the next process."""
    stopped = await Database.connect(mongo_uri, db_name)
    await stopped.init()
    await marks_refused(stopped)
    await her_request_cut_short(stopped)
    await stopped.close()
    async with the_next_process(mongo_uri, db_name) as after:
        assert await after.requests.recall_unfolded() == 0
        await assert_documents_are_the_summaries(after)
        assert ranking(await after.playlists.playlist(PLACE, "sad")) == HERS


async def test_a_request_whose_member_document_and_mark_are_refused_counts_at_the_next_read(db, caplog):
    """The mark refused too: the member is kept in memory alone, the refused mark logged."""
    await marks_refused(db)
    await her_request_cut_short(db)
    # Refused before the insert, then after the document's failure
    assert [r.getMessage() for r in caplog.records if r.name == "storage.mood_requests"] == [NOT_MARKED, NOT_WRITTEN,
                                                                                              NOT_MARKED]
    assert await marks(db) == 0

    assert ranking(await db.playlists.playlist(PLACE, "sad")) == HERS
    await assert_documents_are_the_summaries(db)


async def test_a_request_whose_member_document_an_outage_cut_counts_at_the_next_playlist_read(
        db_server, mongo_uri, db_name):
    """The database gone between the summary's write and the document's (the document's upsert cut
    on the wire), back for the mark."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        await gated.init()
        gate.cut_next("update", PLACE_MEMBERS)
        await gated.requests.add(MoodRequest(ALICE, PLACE, "spotify:A", "sad", T0))  # inserted, the database back
        assert gate.was_cut
        assert await marks(gated) == 1

        assert ranking(await gated.playlists.playlist(PLACE, "sad")) == HERS
        await assert_documents_are_the_summaries(gated)
        assert await marks(gated) == 0
        await gated.client.drop_database(db_name)


async def test_a_forget_erases_her_marks(db):
    await her_request_cut_short(db)
    assert await marks(db) == 1

    await db.privacy.forget(ALICE)

    assert await marks(db) == 0
    assert await members_view(db) == {} and ranking(await db.playlists.playlist(PLACE, "sad")) == []


async def test_her_forget_keeps_nothing_of_her_in_memory_while_her_document_still_fails(db):
    """Alice's and Bob's member documents still refused when she sends /forget: her mark went with
    the rest, but the repair list kept her ids (and her mark's) in memory until the next repair (a
    read of the place's playlist, the stop), on a quiet bot until the stop. Bob's are his."""
    await refusing_writes(db, PLACE_MEMBERS)
    await cut_short(db, ALICE, "spotify:A")
    await cut_short(db, BOB, "spotify:B")
    await her_forget_leaves_his_repair_alone(db, db.requests, "_unfolded", PLACE_MEMBERS, her=ALICE, his=BOB,
                                             his_song="spotify:B", marks=marks, agree=assert_documents_are_the_summaries)


async def test_a_request_whose_member_document_is_refused_is_recorded_and_its_sender_s_forget_unnames_it(db):
    """Bob's /mood of Alice's voice note, his member document refused: the request was not
    inserted, its summary was, and Alice's /forget, which finds the records naming her by their
    `sender`, found none: the group's playlist kept "Voice note by Alice" and the link to her
    message, in Bob's summary and in his document made again. The request is now recorded (only
    its document is to be made again), and her /forget renames it with the rest."""
    await refusing_writes(db, PLACE_MEMBERS)
    await db.requests.add(MoodRequest(BOB, PLACE, VOICE_NOTE, "sad", T0, title=NAMED, sender=ALICE.user_id,
                                      source_link="https://t.me/c/12/34"))
    await ensure_collection(db.db, PLACE_MEMBERS, VALIDATORS[PLACE_MEMBERS])  # the database back
    assert await db.db[REQUESTS].count_documents({}) == 1 and await marks(db) == 1

    await db.privacy.forget(ALICE)

    [song] = await db.playlists.playlist(PLACE, "sad")
    assert (song.track_key, song.title, song.source_link) == (VOICE_NOTE, UNNAMED, None)
    assert await documents_mentioning(db, "Alice") == []
