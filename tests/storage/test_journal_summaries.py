"""A server's playlist reads its members' journals as one summary per member and track
(`storage/journal_tracks.py`), kept by the journal's writes, not every entry they ever wrote: 200
members who journaled a year each made it read 73 000 entries (about 3 s on SecantusDB). The
summaries say what the entries would: after an entry is added or deleted, after a /forget (which
leaves nothing of the member in them) and after a sender's /forget renames an entry of their file."""
from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from pymongo import AsyncMongoClient

from benchmarks.large_server import Commands
from storage import journal_tracks
from storage.database import Database
from storage.models import JournalEntry, MoodRequest, UserRef
from storage.schema import JOURNAL, JOURNAL_MEMBERS, JOURNAL_TRACKS, LATEST_VERSION, META, SCHEMA_DOC_ID
from tests.storage.conftest import T0
from tests.storage.test_playlists import ALICE, BOB, CAROL, PLACE, journal, ranking
from tests.storage.test_query_plans import listening, scanned

DAY = timedelta(days=1)
VOICE_NOTE = "sha256:a1"


def returned_per_collection(commands: Commands) -> dict[str, int]:
    """The documents the database sent back, per collection (a getMore counts for its find's)."""
    returned: dict[str, int] = {}
    collection = ""
    for _name, target, _ms, count in commands.done:
        if isinstance(target, str):
            collection = target
        returned[collection] = returned.get(collection, 0) + (count or 0)
    return returned


async def members_who_journal(db: Database, members: list[UserRef], days: int) -> None:
    """Each member asked /mood in the place once, and answered a prompt a day in private, coming
    back to three songs."""
    for i, who in enumerate(members):
        await db.requests.add(MoodRequest(who, PLACE, "spotify:asked", "happy", T0))
        for day in range(days):
            await db.journal.add(journal(who, f"j{(i + day) % 3}", "calm" if day % 2 else "sad", T0 + day * DAY))
    await db.requests.settled()


async def counted(mongo_uri: str, db_name: str) -> tuple[Commands, Database]:
    """A database whose commands are listed as they are sent."""
    commands = Commands()
    client = AsyncMongoClient(mongo_uri, tz_aware=True, tzinfo=timezone.utc, event_listeners=[commands])
    db = Database(client, client[db_name])
    await db.init()
    return commands, db


async def test_a_playlist_reads_a_summary_per_member_and_track_not_every_journal_entry(mongo_uri, db_name):
    commands, db = await counted(mongo_uri, db_name)
    try:
        members = [UserRef("chat", f"m{i}") for i in range(4)]
        await members_who_journal(db, members, days=30)
        commands.done.clear()
        sad = await db.playlists.playlist(PLACE, "sad")
        read = returned_per_collection(commands)
        assert read.get(JOURNAL, 0) == 0  # were 120: every entry of every member
        assert read.get(JOURNAL_TRACKS, 0) == 0  # were 4 * 3: a summary per member and track
        assert read[JOURNAL_MEMBERS] == 4
        # A member's vote for a song is their last entry's: day 28, sad (27 and 29 are calm).
        assert ranking(sad) == [("spotify:j1", 2), ("spotify:j0", 1), ("spotify:j2", 1)]
    finally:
        await db.client.drop_database(db_name)
        await db.close()


async def test_a_delete_sends_no_find_and_modify(mongo_uri, db_name):
    """The delete read the entry it deleted (its track's summary is made again) by
    find_one_and_delete, which SecantusDB (0.7) runs as a scan of every user's journal: 690 ms
    over 73 000 entries, against 1.7 ms for the delete_one it replaced. It is a delete_one again,
    the member's summaries made to agree with their entries after it."""
    commands, db = await counted(mongo_uri, db_name)
    try:
        entry = journal(BOB, "A", "sad", T0)
        await db.journal.add(entry)
        commands.done.clear()
        assert await db.journal.delete(BOB, entry.prompt_id)
        assert "findAndModify" not in {name for name, _target, _ms, _count in commands.done}
        assert await db.db[JOURNAL_TRACKS].count_documents({}) == 0
    finally:
        await db.client.drop_database(db_name)
        await db.close()


async def summaries(db: Database) -> list[tuple[Any, ...]]:
    return sorted([(d["platform"], d["user_id"], d["track_key"], d["place"], d["latest"]["at"], d["latest"]["mood"],
                    d.get("title")) async for d in db.db[JOURNAL_TRACKS].find()])


async def assert_summaries_are_the_entries(db: Database) -> None:
    """The summaries kept are those made anew from the entries stored."""
    kept = await summaries(db)
    await db.db[JOURNAL_TRACKS].delete_many({})
    await journal_tracks.summarize(db.db[JOURNAL], db.db[JOURNAL_TRACKS])
    assert kept == await summaries(db)


def upload(who: UserRef, prompt: str, title: str, at, place: str | None, sender: str | None = None) -> JournalEntry:
    return JournalEntry(who, at.date(), prompt, "A song?", "", VOICE_NOTE, title, "sad", -0.5, -0.5, at,
                        place=place, sender=sender)


async def test_the_summaries_stay_the_entries_after_an_add_a_delete_and_a_forget(db: Database):
    await db.requests.add(MoodRequest(ALICE, PLACE, "spotify:asked", "happy", T0))
    await db.requests.add(MoodRequest(BOB, PLACE, "spotify:asked", "happy", T0))
    await db.journal.add(journal(ALICE, "A", "sad", T0))
    later = journal(ALICE, "A", "calm", T0 + DAY)
    await db.journal.add(later)
    await db.journal.add(journal(BOB, "A", "sad", T0 + DAY))
    await db.journal.add(upload(ALICE, "up-here", "my tune", T0, PLACE))
    await db.journal.add(upload(ALICE, "up-private", "my memo", T0, None))  # counts nowhere: no summary
    await assert_summaries_are_the_entries(db)
    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [("spotify:A", 1), (VOICE_NOTE, 1)]

    assert await db.journal.delete(ALICE, later.prompt_id)
    # Her vote is the entry left's: sad (`$max` alone would have kept the deleted calm).
    await assert_summaries_are_the_entries(db)
    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [("spotify:A", 2), (VOICE_NOTE, 1)]

    await db.privacy.forget(ALICE)
    assert await db.db[JOURNAL_TRACKS].count_documents({"user_id": ALICE.user_id}) == 0
    await assert_summaries_are_the_entries(db)
    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [("spotify:A", 1)]


async def test_a_sender_s_forget_takes_her_name_out_of_the_summary_of_an_entry_of_her_file(db: Database):
    """Bob answered a prompt with Alice's voice note in the group: his summary of it kept the
    title naming her, which the playlist shows, after her /forget renamed the entry."""
    await db.requests.add(MoodRequest(BOB, PLACE, "spotify:asked", "happy", T0))
    await db.journal.add(upload(BOB, "p1", "Voice note by Alice, 5 Dec 2026", T0, PLACE, sender=ALICE.user_id))
    await db.privacy.forget(ALICE)
    await assert_summaries_are_the_entries(db)
    [song] = await db.playlists.playlist(PLACE, "sad")
    assert song.title == "Voice note, 5 Dec 2026"


async def test_a_delete_and_a_sender_s_forget_make_the_summaries_again_through_indexes(mongo_uri, db_name):
    """Each reads the member's entries again: by a field beside the user's that no index holds,
    SecantusDB reads every user's journal."""
    database, reads = await listening(mongo_uri, db_name)
    try:
        await database.journal.add(upload(BOB, "p1", "Voice note by Alice, 5 Dec 2026", T0, PLACE,
                                          sender=ALICE.user_id))
        await database.journal.add(journal(BOB, "A", "sad", T0))
        reads.reads.clear()
        assert await database.journal.delete(BOB, journal(BOB, "A", "sad", T0).prompt_id)
        await database.privacy.forget(ALICE)
        assert JOURNAL in {collection for collection, _, _ in reads.reads}
        assert await scanned(database, reads.reads) == []
        await assert_summaries_are_the_entries(database)
    finally:
        await database.client.drop_database(db_name)
        await database.close()


async def test_an_upload_journaled_in_a_group_that_moved_counts_under_its_new_id(db: Database):
    """A Telegram group upgraded to a supergroup: Bob's journal entry of a file sent there is the
    new id's, and so is its summary (an upload's counts only where it was sent)."""
    await db.requests.add(MoodRequest(BOB, PLACE, "spotify:asked", "happy", T0))
    await db.journal.add(upload(BOB, "p1", "my tune", T0, PLACE))
    await db.playlists.move_place(PLACE, "chat:g9")
    await assert_summaries_are_the_entries(db)
    assert ranking(await db.playlists.playlist("chat:g9", "sad")) == [(VOICE_NOTE, 1)]
    assert await db.db[JOURNAL_TRACKS].count_documents({"place": PLACE}) == 0


async def test_an_entry_added_again_after_its_summary_failed_is_summed_up(db: Database):
    """An add whose summary the database refused, after the entry was stored, tried again (the
    outbox does), is a duplicate: the stored entry is summed up then, not left without its vote."""
    entry = journal(CAROL, "A", "sad", T0)
    await db.journal.add(entry)
    await db.db[JOURNAL_TRACKS].delete_many({})  # as if that write had failed
    assert not await db.journal.add(entry)
    await assert_summaries_are_the_entries(db)
    assert await db.db[JOURNAL_TRACKS].count_documents({}) == 1


async def test_a_version_16_database_gets_its_journals_summed_up(mongo_uri, db_name):
    database = await Database.connect(mongo_uri, db_name)
    try:
        assert await database.init() == LATEST_VERSION
        await database.db[META].update_one({"_id": SCHEMA_DOC_ID}, {"$set": {"version": 16}})
        members = [UserRef("chat", f"m{i}") for i in range(3)]
        await members_who_journal(database, members, days=5)
        await database.journal.add(upload(BOB, "p1", "my tune", T0, PLACE))
        await database.db.drop_collection(JOURNAL_TRACKS)  # as 16's moodbot left its entries: unsummed

        assert await database.init() == LATEST_VERSION
        assert await database.db[JOURNAL_TRACKS].count_documents({}) == 3 * 3 + 1
        await assert_summaries_are_the_entries(database)
        # Each member's day-3 song (the days after are sad), one each.
        assert ranking(await database.playlists.playlist(PLACE, "calm")) == [
            ("spotify:j0", 1), ("spotify:j1", 1), ("spotify:j2", 1)]
    finally:
        await database.client.drop_database(db_name)
        await database.close()


def test_an_upload_sent_in_a_private_chat_has_no_summary_and_a_song_one_for_every_place():
    song = {"platform": "chat", "user_id": "a", "track_key": "spotify:1", "place": "chat:g1"}
    assert journal_tracks.key_of(song) == ("chat", "a", "spotify:1", None)
    assert journal_tracks.key_of({**song, "track_key": VOICE_NOTE, "place": None}) is None
    assert journal_tracks.key_of({**song, "track_key": VOICE_NOTE}) == ("chat", "a", VOICE_NOTE, "chat:g1")
