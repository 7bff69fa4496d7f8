"""A busy group's /playlist and /servermood, from what its members asked and journaled: the records
are written as the mood and journal use cases write them, then the playlist use case answers."""
from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone

import pytest

from bot.frontends import render
from bot.frontends.render import WORD_JOINER
from bot.frontends.discord.rendering import message_parts
from bot.frontends.telegram import text_of as telegram_text_of
from bot.replies import Caller, ServerMoodReply
from bot.usecases.playlists import PlaylistUseCase
from storage.models import JournalEntry, MoodRequest, StoredMood, TrackRecord, UserRef
from tests.bot.conftest import ALICE, BOB

NOW = datetime(2026, 11, 27, 20, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
GROUP = ALICE.place
CAROL = Caller("telegram", "1004", place=GROUP, chat_id="1004", display_name="Carol")


def member(caller) -> UserRef:
    return UserRef(caller.platform, caller.user_id)


def journal_entry(caller, track_key: str, title: str, mood: str, at: datetime) -> JournalEntry:
    """An answer to a daily prompt, written in the member's private chat."""
    return JournalEntry(user=member(caller), local_date=at.date(), prompt_id=f"{caller.user_id}-{at.isoformat()}",
                        phrase="Today, the song in my head was", reply_text=title, track_key=track_key,
                        track_title=title, mood=mood, valence=0.0, arousal=0.0, created_at=at)


@pytest.fixture
def playlists(db) -> PlaylistUseCase:
    return PlaylistUseCase(db, now=lambda: NOW)


async def test_the_mood_of_the_week_counts_a_members_latest_answer_for_a_song(db, playlists):
    """Alice journaled a song while the main model was busy and the fallback ANN heard it as happy;
    two days later she asked for it in the group and the main model heard it as sad. Her one vote for
    that song is what she was told last, whatever order the records come back in."""
    await db.journal.add(journal_entry(ALICE, "spotify:song", "Song", "happy", NOW - 3 * DAY))
    await db.requests.add(MoodRequest(member(ALICE), GROUP, "spotify:song", "sad", NOW - DAY, title="Song"))
    # Bob's requests reach the database out of order (the journal outbox drains late, say).
    await db.requests.add(MoodRequest(member(BOB), GROUP, "spotify:other", "calm", NOW - DAY, title="Other"))
    await db.requests.add(MoodRequest(member(BOB), GROUP, "spotify:other", "energetic", NOW - 2 * DAY,
                                      title="Other"))

    week = await playlists.server_mood(ALICE)

    assert isinstance(week, ServerMoodReply)
    assert week.counts == {"happy": 0, "energetic": 0, "sad": 1, "calm": 1}


async def test_a_song_is_in_the_playlist_of_the_mood_each_member_was_told_last(db, playlists):
    """Alice journaled a song while the main model was busy and the fallback ANN heard it as happy;
    two days later she asked for it in the group and the main model heard it as sad. Bob asked for it
    while only the ANN answered. Each member's vote sits in one playlist: Alice's in sad, Bob's in happy."""
    await db.journal.add(journal_entry(ALICE, "spotify:song", "Song", "happy", NOW - 3 * DAY))
    await db.requests.add(MoodRequest(member(ALICE), GROUP, "spotify:song", "sad", NOW - DAY, title="Song"))
    await db.requests.add(MoodRequest(member(BOB), GROUP, "spotify:song", "happy", NOW - 2 * DAY, title="Song"))

    happy = await playlists.playlist(ALICE, "happy")
    sad = await playlists.playlist(ALICE, "sad")

    assert [(t.title, t.members) for t in happy.tracks] == [("Song", 1)]
    assert [(t.title, t.members) for t in sad.tracks] == [("Song", 1)]
    assert (await playlists.server_mood(ALICE)).counts == {"happy": 1, "energetic": 0, "sad": 1, "calm": 0}


CREEP_VIDEO = "XFkzRNyygfk"


async def creep_heard_from_youtube_first(db) -> None:
    """Alice posts Creep's YouTube link: nobody had asked for Creep yet, so the video is heard under
    its own key. Bob then asks for Creep by name: Spotify finds it and its audio comes from the same
    video. Carol posts the link again later: the video's record answers from the cache."""
    sad = StoredMood("sad", {"happy": 0.1, "energetic": 0.1, "sad": 0.6, "calm": 0.2}, -0.4, -0.6, "main", "v1")
    video_title = "Radiohead - Creep (Official Video)"
    await db.tracks.save(TrackRecord(f"youtube:{CREEP_VIDEO}", video_title, youtube_id=CREEP_VIDEO, mood=sad))
    await db.requests.add(MoodRequest(member(ALICE), GROUP, f"youtube:{CREEP_VIDEO}", "sad", NOW - 3 * DAY,
                                      title=video_title))
    await db.tracks.save(TrackRecord("spotify:6b2oQwSGFkzsMtQruIWm2p", "Creep", ["Radiohead"], youtube_id=CREEP_VIDEO,
                                     spotify_url="https://open.spotify.com/track/6b2oQwSGFkzsMtQruIWm2p", mood=sad))
    await db.requests.add(MoodRequest(member(BOB), GROUP, "spotify:6b2oQwSGFkzsMtQruIWm2p", "sad", NOW - 2 * DAY,
                                      title="Creep"))
    await db.requests.add(MoodRequest(member(CAROL), GROUP, f"youtube:{CREEP_VIDEO}", "sad", NOW - DAY,
                                      title=video_title))
    await db.requests.add(MoodRequest(member(ALICE), GROUP, "spotify:6b2oQwSGFkzsMtQruIWm2p", "sad", NOW - DAY,
                                      title="Creep"))  # Alice again, by name: still one member


async def test_a_song_asked_for_by_its_youtube_link_and_by_name_is_one_song_in_the_playlist(db, playlists):
    await creep_heard_from_youtube_first(db)

    playlist = await playlists.playlist(BOB, "sad")

    assert [(t.title, t.artists, t.members) for t in playlist.tracks] == [("Creep", ("Radiohead",), 3)]
    assert playlist.tracks[0].url == "https://open.spotify.com/track/6b2oQwSGFkzsMtQruIWm2p"


async def test_a_song_asked_for_by_its_youtube_link_and_by_name_is_one_vote_in_the_mood_of_the_week(db, playlists):
    await creep_heard_from_youtube_first(db)

    week = await playlists.server_mood(BOB)

    assert week.counts == {"happy": 0, "energetic": 0, "sad": 3, "calm": 0}  # Alice, Bob, Carol: once each


async def test_a_video_no_catalog_song_came_from_stays_a_song_of_its_own(db, playlists):
    await creep_heard_from_youtube_first(db)
    await db.tracks.save(TrackRecord("youtube:dQw4w9WgXcQ", "Some video", youtube_id="dQw4w9WgXcQ",
                                     mood=StoredMood("sad", {"sad": 1.0}, -0.5, -0.5, "main", "v1")))
    await db.requests.add(MoodRequest(member(CAROL), GROUP, "youtube:dQw4w9WgXcQ", "sad", NOW, title="Some video"))

    playlist = await playlists.playlist(BOB, "sad")

    assert [(t.title, t.members) for t in playlist.tracks] == [("Creep", 3), ("Some video", 1)]


async def test_a_song_known_only_by_its_video_links_to_it_and_an_upload_links_nowhere(db, playlists):
    """Carol posted a video Spotify knows nothing of, and Bob an audio file named like a link: in every
    front-end's /playlist the video has its YouTube link, built from the stored video id, and the file none."""
    sad = StoredMood("sad", {"sad": 1.0}, -0.5, -0.5, "main", "v1")
    await db.tracks.save(TrackRecord("youtube:dQw4w9WgXcQ", "Some video", youtube_id="dQw4w9WgXcQ", mood=sad))
    await db.requests.add(MoodRequest(member(CAROL), GROUP, "youtube:dQw4w9WgXcQ", "sad", NOW, title="Some video"))
    upload = "https://www.youtube.com/watch?v=XFkzRNyygfk.mp3"
    await db.tracks.save(TrackRecord("sha256:ab12", "", mood=sad))
    await db.requests.add(MoodRequest(member(BOB), GROUP, "sha256:ab12", "sad", NOW - DAY, title=upload))

    playlist = await playlists.playlist(BOB, "sad")

    video = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert [(t.title, t.url) for t in playlist.tracks] == [("Some video", video), (upload, None)]
    for text in shared_texts(playlist):  # the file's name reads the same, and is no link
        assert text.replace(WORD_JOINER, "").splitlines()[1:] == [f"1. Some video {video}", f"2. {upload}"]
        assert links_in(text) == [video]


def shared_texts(playlist) -> list[str]:
    """The playlist as Telegram and Discord show it in the group (the embed's title heads it)."""
    return [telegram_text_of(playlist), "\n" + message_parts(playlist)["embed"].description]


def links_in(text: str) -> list[str]:
    """What Telegram and Discord would make links of in plain text: a URL with its scheme, or a
    name with a dot before letters (Telegram links `evil.example` as it is)."""
    return re.findall(r"(?:https?://)?(?:[^\W_][\w-]*\.)+[^\W\d_]{2,}(?:/\S*)?", text)


async def test_a_link_in_a_song_s_name_is_not_made_a_link_of_in_the_group(db, playlists):
    """A video's title and an uploaded file's tags are their uploaders' words: one reading 'Free
    Nitro https://phish.example/claim' or 'get it at evil.example' was shown in the group's playlist
    as a link, like the songs' own links the bot makes, as Telegram and Discord find links in
    text. Each reads the same (a word joiner in its '://' and dots), and is no link."""
    sad = StoredMood("sad", {"sad": 1.0}, -0.5, -0.5, "main", "v1")
    await db.tracks.save(TrackRecord("youtube:dQw4w9WgXcQ", "Song (get it at evil.example)", youtube_id="dQw4w9WgXcQ",
                                     mood=sad))
    await db.requests.add(MoodRequest(member(CAROL), GROUP, "youtube:dQw4w9WgXcQ", "sad", NOW, title="x"))
    await db.tracks.save(TrackRecord("sha256:ab12", "", mood=sad))
    tags = "Free Nitro https://phish.example/claim"
    await db.requests.add(MoodRequest(member(BOB), GROUP, "sha256:ab12", "sad", NOW - DAY, title=tags))

    playlist = await playlists.playlist(BOB, "sad")

    video = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    for text in shared_texts(playlist):
        assert links_in(text) == [video]
        assert text.replace(WORD_JOINER, "").splitlines()[1:] == [
            f"1. Song (get it at evil.example) {video}", f"2. {tags}"]


async def test_a_stored_video_id_that_is_not_one_makes_no_link(db, playlists):
    odd = StoredMood("calm", {"calm": 1.0}, 0.1, -0.5, "main", "v1")
    await db.tracks.save(TrackRecord("youtube:dQw4w9WgXcQ", "Some video", youtube_id="x&list=evil", mood=odd))
    await db.requests.add(MoodRequest(member(CAROL), GROUP, "youtube:dQw4w9WgXcQ", "calm", NOW, title="Some video"))

    assert [(t.title, t.url) for t in (await playlists.playlist(BOB, "calm")).tracks] == [("Some video", None)]


async def test_a_tie_for_the_mood_of_the_week_names_every_mood_in_it(db, playlists):
    for who, song, mood in ((ALICE, "a", "sad"), (BOB, "b", "happy"), (CAROL, "c", "calm"), (CAROL, "d", "sad"),
                            (BOB, "e", "happy")):
        await db.requests.add(MoodRequest(member(who), GROUP, f"spotify:{song}", mood, NOW - DAY, title=song))

    week = await playlists.server_mood(ALICE)

    assert render.server_mood_text(week).splitlines()[0] == "This week's mood here: a tie between 😊 happy and 😢 sad"
    assert week.chart.caption == "This week's mood: a tie between happy and sad"


async def test_a_clear_mood_of_the_week_is_named_alone(db, playlists):
    for who, song, mood in ((ALICE, "a", "sad"), (BOB, "b", "happy"), (CAROL, "c", "sad")):
        await db.requests.add(MoodRequest(member(who), GROUP, f"spotify:{song}", mood, NOW - DAY, title=song))

    week = await playlists.server_mood(ALICE)

    assert render.server_mood_text(week) == "This week's mood here: 😢 sad\n(the last 7 days, one vote per member and song: happy 1, sad 2)"
    assert week.chart.caption == "This week's mood: sad"


async def test_a_song_heard_by_its_video_and_then_by_name_is_in_the_playlist_of_the_last_answer(db, playlists):
    """Alice posted Creep's video while the main model was busy: the ANN called it happy. A day later
    she asked for Creep by name (its audio from the same video) and was told sad."""
    happy = StoredMood("happy", {"happy": 0.7, "energetic": 0.1, "sad": 0.1, "calm": 0.1}, 0.5, 0.2, "ann", "ann-1")
    sad = StoredMood("sad", {"happy": 0.1, "energetic": 0.1, "sad": 0.6, "calm": 0.2}, -0.4, -0.6, "main", "v1")
    await db.tracks.save(TrackRecord(f"youtube:{CREEP_VIDEO}", "Creep (video)", youtube_id=CREEP_VIDEO, mood=happy))
    await db.requests.add(MoodRequest(member(ALICE), GROUP, f"youtube:{CREEP_VIDEO}", "happy", NOW - 2 * DAY,
                                      title="Creep (video)"))
    await db.tracks.save(TrackRecord("spotify:6b2oQwSGFkzsMtQruIWm2p", "Creep", ["Radiohead"], youtube_id=CREEP_VIDEO,
                                     mood=sad))
    await db.requests.add(MoodRequest(member(ALICE), GROUP, "spotify:6b2oQwSGFkzsMtQruIWm2p", "sad", NOW - DAY,
                                      title="Creep"))

    assert (await playlists.playlist(ALICE, "happy")).tracks == []
    assert [(t.title, t.members) for t in (await playlists.playlist(ALICE, "sad")).tracks] == [("Creep", 1)]


async def test_the_single_and_the_album_release_of_a_song_are_one_song(db, playlists):
    """Spotify lists Creep on Pablo Honey and as a single, each with its own track id; both carry the
    recording's ISRC. Alice asked for the single, Bob for the album's: one song, two members. A
    remaster is another recording (another ISRC), and a song with no ISRC is only itself."""
    sad = StoredMood("sad", {"happy": 0.1, "energetic": 0.1, "sad": 0.6, "calm": 0.2}, -0.4, -0.6, "main", "v1")
    releases = [("spotify:3single", "Creep", "GBAYE9200070"), ("spotify:2album", "Creep", "GBAYE9200070"),
                ("spotify:1remaster", "Creep (Remastered)", "GBAYE0800001"), ("spotify:4live", "Creep (Live)", None)]
    for key, title, isrc in releases:
        await db.tracks.save(TrackRecord(key, title, ["Radiohead"], isrc=isrc, mood=sad,
                                         spotify_url=f"https://open.spotify.com/track/{key[8:]}"))
    for who, key, at in ((ALICE, "spotify:3single", NOW - 2 * DAY), (BOB, "spotify:2album", NOW - DAY),
                         (CAROL, "spotify:1remaster", NOW - 3 * DAY), (CAROL, "spotify:4live", NOW - 4 * DAY)):
        await db.requests.add(MoodRequest(member(who), GROUP, key, "sad", at, title="Creep"))

    playlist = await playlists.playlist(ALICE, "sad")

    assert [(t.title, t.members, t.url) for t in playlist.tracks] == [
        ("Creep", 2, "https://open.spotify.com/track/2album"),
        ("Creep (Remastered)", 1, "https://open.spotify.com/track/1remaster"),
        ("Creep (Live)", 1, "https://open.spotify.com/track/4live")]
    assert (await playlists.server_mood(ALICE)).counts == {"happy": 0, "energetic": 0, "sad": 4, "calm": 0}


async def songs_asked(db, place: str, user: int | str, count: int, mood: str, *, at: datetime | None = None) -> None:
    """`user` (on `place`'s platform) asked for `count` songs of `mood` in `place`, a day apart back
    from `at` (now), each a Spotify track of its own with its link."""
    platform, at = place.split(":", 1)[0], at or datetime.now(timezone.utc)
    stored = StoredMood(mood, {mood: 1.0}, 0.0, 0.0, "main", "v1")
    for number in range(count):
        key = f"spotify:{mood}{number}"
        await db.tracks.save(TrackRecord(key, f"{mood.title()} song {number}", ["Artist"], mood=stored,
                                         spotify_url=f"https://open.spotify.com/track/{mood}{number}"))
        await db.requests.add(MoodRequest(UserRef(platform, str(user)), place, key, mood, at - number * DAY,
                                          title=f"{mood.title()} song {number}"))


async def test_a_member_who_left_and_was_added_back_at_once_counts_as_back(db, playlists):
    """Bob left the group and an admin added him back: two updates of two senders, which Telegram
    hands over together after the bot was away (a restart) and which are handled side by side. His
    return came in after his departure and must stay the last word, whichever's writes are quicker
    (the client's pool holds several connections, as a running bot's does)."""
    await db.requests.add(MoodRequest(member(BOB), GROUP, "spotify:song", "sad", NOW - DAY, title="Song"))
    await asyncio.gather(*(db.db["tracks"].find_one({}) for _ in range(8)))
    group_id = GROUP.split(":", 1)[1]
    for _ in range(5):
        await asyncio.gather(playlists.member_left("telegram", group_id, BOB.user_id),
                             playlists.member_joined("telegram", group_id, BOB.user_id))

        assert [(t.title, t.members) for t in (await playlists.playlist(ALICE, "sad")).tracks] == [("Song", 1)]
    await playlists.member_left("telegram", group_id, BOB.user_id)  # and when he leaves for good, he is gone
    assert (await playlists.playlist(ALICE, "sad")).tracks == []
