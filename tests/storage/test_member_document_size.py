"""A member's document (place_members, journal_members) against MongoDB's 16 MiB a document.

A member who asked for some 28 000 songs or more in one place (120-emoji titles; 118 000 of
40-letter ones) has a document that cannot grow: a `$max` past 16 MiB is refused. That must not
refuse their requests, nor those written in the same batch, and a document made again must fit."""
import asyncio
from datetime import timedelta

import bson

from storage import journal_tracks, place_tracks
from storage.models import JournalEntry, MoodRequest
from storage.schema import JOURNAL_MEMBERS, PLACE_MEMBERS, PLACE_TRACKS, REQUESTS
from tests.storage.conftest import T0
from tests.storage.test_playlists import ALICE, BOB, PLACE, ranking

LIMIT = 16 * 1024 * 1024


def told(i: int, title_chars: int = 1000) -> dict:
    return {"latest": {"at": T0 + timedelta(seconds=i), "mood": "sad"}, "title": f"{i:06d}" + "t" * title_chars}


def full(doc: dict, songs: dict) -> dict:
    """`doc` with its `songs` (its map of songs told) made 15 000, the first one's title long enough
    to leave the document 20 bytes short of the limit: no new song fits."""
    songs.update({f"spotify:t{i:06d}": told(i) for i in range(15_000)})
    songs["spotify:t000000"]["title"] += "t" * (LIMIT - 20 - len(bson.encode(doc)))
    return doc


async def her_full_place_document(db) -> None:
    tracks: dict = {}
    await db.db[PLACE_MEMBERS].insert_one(
        full({**place_tracks.member_filter(PLACE, ALICE.platform, ALICE.user_id), "tracks": tracks}, tracks))


async def test_a_member_whose_document_is_full_is_still_answered_and_so_are_the_others_written_with_her(db):
    await her_full_place_document(db)

    later = T0 + timedelta(days=1)
    await asyncio.gather(db.requests.add(MoodRequest(ALICE, PLACE, "spotify:new-one", "sad", later)),
                         db.requests.add(MoodRequest(BOB, PLACE, "spotify:B", "sad", later)))

    assert await db.db[REQUESTS].count_documents({}) == 2  # both stored, neither told it failed
    assert ("spotify:B", 1) in ranking(await db.playlists.playlist(PLACE, "sad"))
    assert await db.db[PLACE_TRACKS].count_documents({"track_key": "spotify:new-one"}) == 1  # her summary holds it


def test_a_place_members_document_made_again_past_the_budget_keeps_her_newest_songs_that_fit():
    summaries = [{"track_key": f"spotify:t{i:06d}", **told(i)} for i in range(20_000)]
    whole = {**place_tracks.member_filter(PLACE, ALICE.platform, ALICE.user_id),
             "tracks": {place_tracks.track_field(s["track_key"]): {"latest": s["latest"], "title": s["title"]}
                        for s in summaries}}
    assert len(bson.encode(whole)) > LIMIT

    doc = place_tracks.member_document(PLACE, ALICE.platform, ALICE.user_id, summaries)

    size = len(bson.encode(doc))
    assert size <= place_tracks.MAX_MEMBER_BYTES
    kept = sorted(doc["tracks"])
    assert kept == [f"spotify:t{i:06d}" for i in range(20_000 - len(kept), 20_000)]  # the newest, none skipped
    one_more = len(bson.encode({kept[0]: doc["tracks"][kept[0]]})) - 5
    assert size + one_more > place_tracks.MAX_MEMBER_BYTES  # no more dropped than needed: one more would not fit


def test_a_journal_members_document_made_again_past_the_budget_keeps_her_newest_songs_and_uploads():
    summaries = {(ALICE.platform, ALICE.user_id, f"spotify:t{i:06d}", None if i % 2 else PLACE):
                 (told(i)["latest"]["at"], "sad", told(i)["title"]) for i in range(20_000)}

    doc = journal_tracks.member_document(ALICE.platform, ALICE.user_id, summaries)

    assert len(bson.encode(doc)) <= place_tracks.MAX_MEMBER_BYTES
    uploads = doc["uploads"][place_tracks.track_field(PLACE)]
    kept = sorted([*doc["songs"], *uploads])
    assert kept == [f"spotify:t{i:06d}" for i in range(20_000 - len(kept), 20_000)]
    assert doc["songs"] and uploads  # both cut by age, not one emptied first


async def test_a_member_s_document_made_again_from_summaries_past_16_mib_is_written(db):
    await db.db[PLACE_TRACKS].insert_many(
        [{"place": PLACE, "platform": ALICE.platform, "user_id": ALICE.user_id, "track_key": f"spotify:t{i:06d}", **told(i)}
         for i in range(17_500)])

    await place_tracks.rebuild_members(db.db[PLACE_TRACKS], [(PLACE, ALICE.platform, ALICE.user_id)])

    doc = await db.db[PLACE_MEMBERS].find_one(place_tracks.member_filter(PLACE, ALICE.platform, ALICE.user_id))
    assert f"spotify:t{17_499:06d}" in doc["tracks"] and "spotify:t000000" not in doc["tracks"]


async def test_a_song_left_out_of_her_full_document_counts_at_the_next_playlist_read(db):
    """Her song's `$max`, refused as too large, was left out until a move or a file sender's
    /forget made the document again, which a quiet group may never see: every later song of hers
    there was left out too. Her document is now made again (cut to her newest songs) at the next
    read of the place's playlist, as after a request whose document the database refused."""
    await her_full_place_document(db)

    await db.requests.add(MoodRequest(ALICE, PLACE, "spotify:new-one", "sad", T0 + timedelta(days=1)))

    assert ("spotify:new-one", 1) in ranking(await db.playlists.playlist(PLACE, "sad"))
    doc = await db.db[PLACE_MEMBERS].find_one(place_tracks.member_filter(PLACE, ALICE.platform, ALICE.user_id))
    assert len(bson.encode(doc)) <= place_tracks.MAX_MEMBER_BYTES  # room again for her next songs


async def test_an_answer_left_out_of_her_full_journal_document_counts_at_the_next_playlist_read(db):
    """The same for her journal's document: the answer is saved and said so, its summary written,
    and her document made again before the playlist reads it."""
    songs: dict = {}
    await db.db[JOURNAL_MEMBERS].insert_one(
        full({**journal_tracks.member_filter(ALICE.platform, ALICE.user_id), "songs": songs, "uploads": {}}, songs))
    at = T0 + timedelta(days=1)

    assert await db.journal.add(JournalEntry(ALICE, at.date(), "p1", "Song?", "", "spotify:new-one", "New one",
                                             "sad", 0.0, 0.0, at, place=PLACE))

    assert ("spotify:new-one", 1) in ranking(await db.playlists.playlist(PLACE, "sad"))
    doc = await db.db[JOURNAL_MEMBERS].find_one(journal_tracks.member_filter(ALICE.platform, ALICE.user_id))
    assert len(bson.encode(doc)) <= place_tracks.MAX_MEMBER_BYTES
