"""Server playlists: distinct members, recency tie-break, opted-out members and other servers
never counted; and the server's mood of the week."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from storage.database import Database
from storage.models import JournalEntry, MoodRequest, StoredMood, TrackRecord, UserRef
from tests.storage.conftest import T0

PLACE = "chat:g1"
OTHER_PLACE = "chat:g2"
ALICE, BOB, CAROL, DAVE, ERIN, FRANK = (UserRef("chat", n) for n in
                                        ("alice", "bob", "carol", "dave", "erin", "frank"))
H = timedelta(hours=1)


def journal(who: UserRef, track: str, mood: str, at, place: str | None = None) -> JournalEntry:
    return JournalEntry(user=who, local_date=at.date(), prompt_id=f"{who.user_id}-{track}-{at}",
                        phrase="Song?", reply_text=track, track_key=f"spotify:{track}",
                        track_title=f"Title {track}", mood=mood, valence=0.0, arousal=0.0,
                        created_at=at, place=place)


async def seed(db: Database) -> None:
    for who, place, track, mood, at in [
        (ALICE, PLACE, "A", "sad", T0),
        (ALICE, PLACE, "B", "sad", T0 + H),
        (BOB, PLACE, "A", "sad", T0 + 2 * H),
        (BOB, PLACE, "A", "sad", T0 + 3 * H),  # the same member twice: one vote
        (CAROL, PLACE, "B", "sad", T0 - 24 * H),  # opted out below
        (CAROL, PLACE, "C", "sad", T0 + 6 * H),
        (DAVE, OTHER_PLACE, "B", "sad", T0 + 7 * H),  # another server
        (DAVE, OTHER_PLACE, "B", "sad", T0 + 7 * H),
        (ERIN, PLACE, "D", "happy", T0),
        (ALICE, PLACE, "old", "calm", T0 - 10 * 24 * H),  # outside the mood-of-the-week window
    ]:
        await db.requests.add(MoodRequest(who, place, f"spotify:{track}", mood, at))
    await db.journal.add(journal(ERIN, "C", "sad", T0 + 5 * H))  # a DM entry of a member
    await db.journal.add(journal(FRANK, "E", "sad", T0 + 4 * H, place=PLACE))  # written there
    await db.journal.add(journal(DAVE, "C", "sad", T0 + 8 * H))  # not a member of PLACE
    await db.users.set_sharing(CAROL, False)
    await db.tracks.save(TrackRecord("spotify:A", "Title A", ["Artist A"],
                                     spotify_url="https://open.spotify.com/track/A"))
    await db.tracks.save(TrackRecord("spotify:B", "Title B", ["Artist B"]))


def ranking(items) -> list[tuple[str, int]]:
    return [(item.track_key, item.members) for item in items]


async def test_playlist_ranks_by_distinct_members_then_recency(db: Database):
    await seed(db)
    items = await db.playlists.playlist(PLACE, "sad")
    assert ranking(items) == [("spotify:A", 2), ("spotify:C", 1), ("spotify:E", 1),
                              ("spotify:B", 1)]
    assert [item.last_at for item in items] == [T0 + 3 * H, T0 + 5 * H, T0 + 4 * H, T0 + H]
    a, c, e, b = items
    assert (a.title, a.artists, a.spotify_url) == ("Title A", ["Artist A"],
                                                   "https://open.spotify.com/track/A")
    assert (c.title, c.artists, c.spotify_url) == ("Title C", [], None)  # from the journal
    assert b.title == "Title B"


async def test_opted_out_member_counts_again_after_opting_in(db: Database):
    await seed(db)
    await db.users.set_sharing(CAROL, True)
    items = await db.playlists.playlist(PLACE, "sad")
    # Three tracks with two members each: the most recently played first.
    assert ranking(items) == [("spotify:C", 2), ("spotify:A", 2), ("spotify:B", 2),
                              ("spotify:E", 1)]


async def test_playlist_since_and_limit(db: Database):
    await seed(db)
    recent = await db.playlists.playlist(PLACE, "sad", since=T0 + 1.5 * H)
    assert ranking(recent) == [("spotify:C", 1), ("spotify:E", 1), ("spotify:A", 1)]
    assert ranking(await db.playlists.playlist(PLACE, "sad", limit=2)) == [("spotify:A", 2),
                                                                           ("spotify:C", 1)]


async def test_playlist_of_another_mood_or_place(db: Database):
    await seed(db)
    assert ranking(await db.playlists.playlist(PLACE, "happy")) == [("spotify:D", 1)]
    # Dave's journal entry (8 h) is newer than his requests there (7 h).
    assert ranking(await db.playlists.playlist(OTHER_PLACE, "sad")) == [("spotify:C", 1),
                                                                        ("spotify:B", 1)]
    assert await db.playlists.playlist("chat:empty", "sad") == []


async def test_server_mood_of_the_week(db: Database):
    await seed(db)
    # Alice A+B, Bob A (asked twice: one vote), Erin's and Frank's journal: sad; Erin's request: happy.
    # Carol opted out, Dave is elsewhere, Alice's calm request is ten days old.
    assert await db.playlists.server_mood_of_week(PLACE, T0 + 24 * H) == {"happy": 1, "sad": 5}
    assert await db.playlists.server_mood_of_week(PLACE, T0 + 9 * 24 * H) == {}
    assert await db.playlists.server_mood_of_week("chat:empty", T0) == {}


async def test_a_video_is_listed_with_its_id_even_when_its_record_was_not_saved(db: Database):
    await db.requests.add(MoodRequest(ALICE, PLACE, "youtube:dQw4w9WgXcQ", "sad", T0, title="Some video"))
    await db.requests.add(MoodRequest(BOB, PLACE, "sha256:ab12", "sad", T0 - H, title="song.mp3"))

    items = await db.playlists.playlist(PLACE, "sad")

    assert [(item.title, item.youtube_id) for item in items] == [("Some video", "dQw4w9WgXcQ"), ("song.mp3", None)]


# One recording, two Spotify releases (the single and the album): each has its own track id, and
# both carry the recording's ISRC.
CREEP_ISRC = "GBAYE9200070"
SAD = StoredMood("sad", {"sad": 0.7, "calm": 0.3}, -0.4, -0.6, "main", "v1")


async def two_releases(db: Database, album_isrc: str | None = CREEP_ISRC,
                       single_isrc: str | None = CREEP_ISRC) -> None:
    await db.tracks.save(TrackRecord("spotify:single", "Creep", ["Radiohead"], album="Creep",
                                     isrc=single_isrc, youtube_id="XFkzRNyygfk",
                                     spotify_url="https://open.spotify.com/track/single", mood=SAD))
    await db.tracks.save(TrackRecord("spotify:album", "Creep", ["Radiohead"], album="Pablo Honey",
                                     isrc=album_isrc, spotify_url="https://open.spotify.com/track/album",
                                     mood=SAD))
    await db.requests.add(MoodRequest(ALICE, PLACE, "spotify:single", "sad", T0, title="Creep"))
    await db.requests.add(MoodRequest(BOB, PLACE, "spotify:album", "sad", T0 + H, title="Creep"))


async def test_two_releases_of_one_recording_are_one_song_with_both_members_votes(db: Database):
    await two_releases(db)

    [song] = await db.playlists.playlist(PLACE, "sad")

    # The song is listed as its release of the smallest key, whichever release a member asked for.
    assert (song.track_key, song.members, song.last_at) == ("spotify:album", 2, T0 + H)
    assert (song.title, song.spotify_url) == ("Creep", "https://open.spotify.com/track/album")
    assert await db.playlists.server_mood_of_week(PLACE, T0 + 24 * H) == {"sad": 2}


async def test_a_member_who_asked_for_both_releases_has_one_vote_in_the_mood_told_last(db: Database):
    await two_releases(db)
    await db.requests.add(MoodRequest(ALICE, PLACE, "spotify:album", "calm", T0 + 2 * H, title="Creep"))

    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [("spotify:album", 1)]  # Bob's
    assert ranking(await db.playlists.playlist(PLACE, "calm")) == [("spotify:album", 1)]  # Alice's
    assert await db.playlists.server_mood_of_week(PLACE, T0 + 24 * H) == {"calm": 1, "sad": 1}


async def test_the_video_a_release_was_heard_from_is_that_recording_too(db: Database):
    await two_releases(db)
    await db.requests.add(MoodRequest(CAROL, PLACE, "youtube:XFkzRNyygfk", "sad", T0 + 2 * H, title="Creep (video)"))

    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [("spotify:album", 3)]


async def test_releases_of_different_recordings_stay_apart(db: Database):
    await two_releases(db, album_isrc="GBAYE9300001")

    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [("spotify:album", 1), ("spotify:single", 1)]


async def test_tracks_without_an_isrc_stay_apart(db: Database):
    """A missing ISRC is no recording: tracks without one (and a request whose track was never
    saved) are each a song of their own, as before."""
    await two_releases(db, album_isrc=None, single_isrc=None)
    await db.tracks.save(TrackRecord("spotify:blank", "Blank", isrc="", mood=SAD))
    await db.requests.add(MoodRequest(CAROL, PLACE, "spotify:blank", "sad", T0 + 2 * H, title="Blank"))
    await db.requests.add(MoodRequest(ERIN, PLACE, "spotify:unsaved", "sad", T0 + 3 * H, title="Unsaved"))

    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [
        ("spotify:unsaved", 1), ("spotify:blank", 1), ("spotify:album", 1), ("spotify:single", 1)]
    assert await db.playlists.server_mood_of_week(PLACE, T0 + 24 * H) == {"sad": 4}


async def test_the_mood_of_the_week_counts_the_seven_days_up_to_now_both_ends_in(db: Database):
    now = T0 + 30 * 24 * H
    week = 7 * 24 * H
    for who, mood, at in [
        (ALICE, "sad", now - week),  # seven days ago to the second: in
        (BOB, "calm", now - week + H),
        (CAROL, "happy", now - week - H),  # a week and an hour ago: out
        (DAVE, "energetic", now),  # at this very moment: in
    ]:
        await db.requests.add(MoodRequest(who, PLACE, f"spotify:{who.user_id}", mood, at))

    assert await db.playlists.server_mood_of_week(PLACE, now) == {"calm": 1, "energetic": 1, "sad": 1}
    # A day later Alice's and Bob's requests are over a week old.
    assert await db.playlists.server_mood_of_week(PLACE, now + 24 * H) == {"energetic": 1}


async def test_a_members_requests_in_another_place_count_there_not_here(db: Database):
    await db.requests.add(MoodRequest(ALICE, PLACE, "spotify:here", "sad", T0))
    await db.requests.add(MoodRequest(ALICE, OTHER_PLACE, "spotify:there", "happy", T0 + H))

    assert await db.playlists.server_mood_of_week(PLACE, T0 + 24 * H) == {"sad": 1}
    assert await db.playlists.server_mood_of_week(OTHER_PLACE, T0 + 24 * H) == {"happy": 1}
    assert await db.playlists.playlist(PLACE, "happy") == []
    assert await db.playlists.playlist(PLACE, "happy", since=T0 - H) == []


async def test_a_file_journaled_privately_counts_in_no_place_but_a_song_journaled_privately_does(db: Database):
    await db.requests.add(MoodRequest(ALICE, PLACE, "spotify:here", "sad", T0))  # Alice is seen there
    await db.journal.add(replace(journal(ALICE, "memo", "happy", T0 + H), track_key="sha256:ab12",
                                 track_title="voice memo for Jane"))
    await db.journal.add(journal(ALICE, "E", "calm", T0 + 2 * H))
    await db.journal.add(replace(journal(ALICE, "song", "energetic", T0 + 3 * H, place=PLACE),
                                 track_key="sha256:cd34", track_title="b-side"))  # a file sent there

    assert await db.playlists.server_mood_of_week(PLACE, T0 + 24 * H) == {"calm": 1, "energetic": 1, "sad": 1}
    assert await db.playlists.playlist(PLACE, "happy") == []
    assert await db.playlists.playlist(PLACE, "happy", since=T0 - H) == []
    assert ranking(await db.playlists.playlist(PLACE, "calm")) == [("spotify:E", 1)]
    assert ranking(await db.playlists.playlist(PLACE, "energetic", since=T0 - H)) == [("sha256:cd34", 1)]


async def test_of_two_songs_with_as_many_members_the_one_heard_last_by_anyone_comes_first(db: Database):
    for who, track, at in [(ALICE, "X", T0 + 5 * H), (BOB, "X", T0 + H),  # X: last heard at 5 h, by Alice
                           (CAROL, "Y", T0 + 3 * H), (DAVE, "Y", T0 + 2 * H)]:
        await db.requests.add(MoodRequest(who, PLACE, f"spotify:{track}", "sad", at))

    items = await db.playlists.playlist(PLACE, "sad")

    assert [(item.track_key, item.members, item.last_at) for item in items] == [
        ("spotify:X", 2, T0 + 5 * H), ("spotify:Y", 2, T0 + 3 * H)]


async def test_an_upload_is_named_as_the_places_members_named_it_not_by_an_old_record_of_it(db: Database):
    """A record written before uploads were kept nameless holds its first sender's file name (sent
    privately, perhaps): the group's playlist names the file as its members did, and links nowhere."""
    await db.tracks.save(TrackRecord("sha256:ab12", "voice memo for Jane", [], youtube_id="XFkzRNyygfk", mood=SAD))
    await db.requests.add(MoodRequest(BOB, PLACE, "sha256:ab12", "sad", T0, title="b-side"))

    [item] = await db.playlists.playlist(PLACE, "sad")

    assert (item.title, item.youtube_id) == ("b-side", None)
