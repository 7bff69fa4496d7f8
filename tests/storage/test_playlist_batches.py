"""A large server's playlist reads its members' sharing settings, journals and songs in batches of
`$in` (storage/playlists.py `_find_in`), then picks out in Python what counts: these tests have
more members, and more songs, than one batch holds, and check each member's and song's votes
against what the batches must keep apart (a user id on two platforms) and bring together (the
releases of one recording read in different batches)."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from storage import playlists
from storage.database import Database
from storage.models import MoodRequest, StoredMood, TrackRecord, UserRef
from tests.storage.conftest import T0
from tests.storage.test_playlists import journal

PLACE = "discord:g1"
OTHER_PLACE = "discord:g2"
H = timedelta(hours=1)
SAD = StoredMood("sad", {"sad": 0.7, "calm": 0.3}, -0.4, -0.6, "main", "v1")
MEMBERS = 3 * playlists.USER_BATCH + 5  # several batches of users, two of journals
SONGS = 5


def member(i: int) -> UserRef:
    return UserRef("discord", f"{i:03d}")


def opted_out(i: int) -> bool:
    return i % 7 == 3


def left(i: int) -> bool:
    return i % 11 == 5


def song_of(i: int) -> str:
    return f"spotify:s{i % SONGS}"


async def test_every_member_beyond_a_batch_counts_once_as_they_chose(db: Database):
    assert MEMBERS > 2 * playlists.USER_BATCH and MEMBERS > playlists.JOURNAL_BATCH
    for i in range(MEMBERS):
        who = member(i)
        # The place's song of each member, sad, and a DM journal entry of another song, calm.
        await db.requests.add(MoodRequest(who, PLACE, song_of(i), "sad", T0 + i * H))
        await db.journal.add(journal(who, f"j{i % 3}", "calm", T0 + i * H))
        # A file journaled privately counts in no place; one sent in the place counts there.
        await db.journal.add(replace(journal(who, "memo", "sad", T0 + i * H), track_key=f"sha256:m{i}",
                                     track_title="voice memo", prompt_id=f"memo-{i}"))
        if i % 4 == 0:
            await db.journal.add(replace(journal(who, "file", "sad", T0 + i * H, place=PLACE),
                                         track_key="sha256:shared", track_title="b-side",
                                         prompt_id=f"file-{i}"))
        if opted_out(i):
            await db.users.set_sharing(who, False)
        if left(i):
            await db.playlists.member_left(PLACE, who, T0 + (i + 1) * H)
    # The same user ids on Telegram: not members here, and their settings and entries are theirs.
    for i in range(MEMBERS):
        namesake = UserRef("telegram", member(i).user_id)
        await db.requests.add(MoodRequest(namesake, OTHER_PLACE, "spotify:elsewhere", "sad", T0))
        await db.journal.add(journal(namesake, "namesake", "calm", T0 + 1000 * H))
        await db.users.set_sharing(namesake, opted_out(i))  # the opposite choice to the Discord one's

    counted = [i for i in range(MEMBERS) if not opted_out(i) and not left(i)]
    sad = await db.playlists.playlist(PLACE, "sad", limit=SONGS + 2)
    calm = await db.playlists.playlist(PLACE, "calm", limit=SONGS + 2)

    expected_sad = {song_of(i) for i in counted} | {"sha256:shared"}
    assert {item.track_key for item in sad} == expected_sad
    for item in sad:
        voters = [i for i in counted if (song_of(i) == item.track_key if item.track_key != "sha256:shared"
                                         else i % 4 == 0)]
        assert (item.members, item.last_at) == (len(voters), T0 + max(voters) * H), item.track_key
    assert sorted((item.track_key, item.members) for item in calm) == sorted(
        (f"spotify:j{k}", sum(1 for i in counted if i % 3 == k)) for k in range(3))
    # The week holds every request and entry: each counted member's song and file, and DM entry.
    assert await db.playlists.server_mood_of_week(PLACE, T0 + MEMBERS * H) == {
        "calm": len(counted), "sad": len(counted) + sum(1 for i in counted if i % 4 == 0)}

async def test_releases_read_in_different_batches_are_one_song(db: Database):
    """Each recording's first release sorts among the first keys, its second among the last: the
    batches that read them and their ISRCs are not the same."""
    recordings = playlists.TRACK_BATCH + 3
    for r in range(recordings):
        isrc = f"QZBEN{r:07d}"
        await db.tracks.save(TrackRecord(f"spotify:a{r:03d}", f"Song {r}", ["Artist"], isrc=isrc, mood=SAD,
                                         youtube_id=f"video{r:03d}"))
        await db.tracks.save(TrackRecord(f"spotify:z{r:03d}", f"Song {r}", ["Artist"], isrc=isrc, mood=SAD))
        # Alice asked for the album release, Bob for the video the single's audio came from, and
        # Carol for a recording of her own with no ISRC: one song each, not merged.
        await db.requests.add(MoodRequest(UserRef("chat", "alice"), PLACE, f"spotify:z{r:03d}", "sad", T0 + r * H))
        await db.requests.add(MoodRequest(UserRef("chat", "bob"), PLACE, f"youtube:video{r:03d}", "sad", T0))
    await db.tracks.save(TrackRecord("spotify:solo", "Solo", ["Carol"], isrc="", mood=SAD))
    await db.requests.add(MoodRequest(UserRef("chat", "carol"), PLACE, "spotify:solo", "sad", T0))

    items = await db.playlists.playlist(PLACE, "sad", limit=recordings + 1)

    assert [(item.track_key, item.members) for item in items] == [
        *((f"spotify:a{r:03d}", 2) for r in reversed(range(recordings))), ("spotify:solo", 1)]
