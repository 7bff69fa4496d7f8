"""A server playlist counts its members' votes in a worker thread, not on the event loop."""
from __future__ import annotations

import threading
from datetime import timedelta

from storage import journal_tracks, place_tracks, playlists
from storage.codec import journal_to_doc, request_to_doc
from storage.database import Database
from storage.models import MoodRequest, UserRef
from tests.loop_probes import bson_decoded_on_this_thread, calls_on_this_thread, oldest_generation_growth
from tests.storage.conftest import T0
from tests.storage.test_playlists import journal

PLACE = "discord:g1"
MEMBERS = 40
# What the playlist does once per summary, journal entry or vote: on one server of 2 000 members and
# 100 000 requests (benchmarks/large_server.py) the rows made the event loop's steps of 120-175 ms.
# (`seen` runs on the loop for the authors of the place's journal entries, too, and here there are
# none: the entries are written in private chats.) Ranking the votes, too: a server of 200 members
# who journaled a year each (73 000 entries) has some 60 000, ranked and counted on the loop in ~50 ms.
PER_ROW = {"is_shareable", "told_more", "seen", "top_songs", "songs_per_mood"}


async def test_a_server_playlist_does_its_per_row_work_off_the_event_loop(db: Database):
    """The place's summaries were decoded, and every summary, journal entry and vote counted, in
    the event loop's own steps; on a server of 2 000 members those stalled every chat for 140-175
    ms. The loop now only reads: the rows are decoded and counted in a worker thread."""
    for i in range(MEMBERS):
        who = UserRef("discord", f"{i:03d}")
        await db.requests.add(MoodRequest(who, PLACE, f"spotify:s{i % 5}", "sad", T0 + i * timedelta(hours=1)))
        await db.journal.add(journal(who, f"j{i % 3}", "calm", T0 + i * timedelta(hours=1)))
    loop_thread = threading.get_ident()
    with calls_on_this_thread(playlists, PER_ROW.__contains__) as on_loop:
        sad = await db.playlists.playlist(PLACE, "sad")
        calm = await db.playlists.playlist(PLACE, "calm")
    assert threading.get_ident() == loop_thread
    assert sorted((item.track_key, item.members) for item in sad) == [(f"spotify:s{n}", 8) for n in range(5)]
    assert sorted((item.track_key, item.members) for item in calm) == [
        ("spotify:j0", 14), ("spotify:j1", 13), ("spotify:j2", 13)]
    assert on_loop == []


async def test_a_server_playlist_holds_few_objects_the_garbage_collector_tracks(db: Database):
    """The playlist held each summary as three dicts, each member's answers as a dict each, and each
    vote as an object under a key holding another: ~113 000 objects at once on a server of 2 000
    members (benchmarks/large_server.py), which set off the garbage collector's full passes, each a
    stop of every thread, the event loop's with them, of 60-145 ms. Rows and votes are tuples of
    strings and times now, which it stops tracking. Counted: the objects it tracks that outlive its
    younger generations while the playlist of a server of 100 members (3 000 summaries) is made."""
    members = [UserRef("discord", f"{i:03d}") for i in range(100)]
    requests = [MoodRequest(who, PLACE, f"spotify:s{(i + n) % 60}", "sad" if n % 2 else "calm",
                            T0 + (i * 30 + n) * timedelta(minutes=1), f"Song {(i + n) % 60}")
                for i, who in enumerate(members) for n in range(30)]
    await db.db["requests"].insert_many([request_to_doc(r) for r in requests])
    await db.db["journal"].insert_many([journal_to_doc(journal(who, "j", "calm", T0 + i * timedelta(hours=1)))
                                        for i, who in enumerate(members)])
    await journal_tracks.summarize(db.db["journal"], db.db["journal_tracks"])
    await place_tracks.summarize(db.db["requests"], db.db["place_tracks"])
    await db.playlists.playlist(PLACE, "sad")  # the driver's and the database's first use
    with oldest_generation_growth() as grown:
        calm = await db.playlists.playlist(PLACE, "calm")
    assert (calm[0].track_key, calm[0].members) == ("spotify:j", 100)  # every member's journal song
    assert grown.most < 3000  # were ~13 200 (~800 now)


async def test_a_server_playlist_leaves_its_members_journal_entries_to_a_thread_to_decode(db: Database):
    """Every journal entry of the place's members was decoded on the event loop, each batch whole
    in one step of the C decoder: a server of 200 members who journaled a year each (73 000 entries)
    kept the loop 0.2-0.8 s in all, freezing every chat's replies meanwhile. They are read as raw
    batches now, decoded in a worker thread (one entry at a time: the loop gets its turns), as the
    place's summaries are. Counted: the bytes of the database's replies decoded on the loop while
    the playlist of 20 members with 150 entries each (~450 KB as read) is made."""
    members = [UserRef("discord", f"{i:03d}") for i in range(20)]
    await db.db["requests"].insert_many([request_to_doc(MoodRequest(who, PLACE, "spotify:asked", "sad", T0))
                                         for who in members])
    await place_tracks.summarize(db.db["requests"], db.db["place_tracks"])
    await db.db["journal"].insert_many([
        journal_to_doc(journal(who, f"j{(i + n) % 40}", "calm" if (i + n) % 2 else "happy", T0 + n * timedelta(days=1)))
        for i, who in enumerate(members) for n in range(150)])
    await journal_tracks.summarize(db.db["journal"], db.db["journal_tracks"])  # as their adds keep them
    with bson_decoded_on_this_thread() as decoded:
        calm, songs = await db.playlists.ranked(PLACE, "calm")
    # Every odd song is calm to all 20; those heard on the last day first, then by key.
    assert [(item.track_key, item.members, item.title) for item in calm[:2]] == [
        ("spotify:j1", 20, "Title j1"), ("spotify:j29", 20, "Title j29")]
    assert songs == {"calm": 20, "happy": 20, "sad": 1}
    assert 0 < sum(decoded) < 20_000  # were ~437 000 (~1 300 now: the other reads' replies, which it sees)
