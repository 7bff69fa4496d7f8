"""A busy group's /playlist and /servermood, from what its members asked and journaled: the records
are written as the mood and journal use cases write them, then the playlist use case answers."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.replies import ServerMoodReply
from bot.usecases.playlists import PlaylistUseCase
from storage.models import JournalEntry, MoodRequest, StoredMood, TrackRecord, UserRef
from tests.bot.conftest import ALICE, BOB

NOW = datetime(2026, 11, 27, 20, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
GROUP = ALICE.place


def member(caller) -> UserRef:
    return UserRef(caller.platform, caller.user_id)


def journal_entry(caller, track_key: str, title: str, mood: str, at: datetime) -> JournalEntry:
    """An answer to a daily prompt, written in the member's private chat."""
    return JournalEntry(user=member(caller), local_date=at.date(), prompt_id=f"{caller.user_id}-{at:%s}",
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
