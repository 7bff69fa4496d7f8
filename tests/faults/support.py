"""Small helpers shared by the hardening tests (faults, fuzz, abuse, secrets, load benchmark)."""
from __future__ import annotations

from datetime import datetime, timezone

from inference.result import MoodResult
from storage.models import StoredMood, TrackRecord

CALM = MoodResult.from_probabilities({"happy": 0.1, "energetic": 0.1, "sad": 0.2, "calm": 0.6},
                                     model="main", model_version="test")


def classified_record(key: str, title: str, result: MoodResult = CALM, youtube_id: str | None = None) -> TrackRecord:
    """A track as /mood leaves it in the cache after classifying it."""
    mood = StoredMood(result.mood, dict(result.probabilities), result.valence, result.arousal,
                      result.model, result.model_version)
    return TrackRecord(key=key, title=title, youtube_id=youtube_id, mood=mood,
                       classified_at=datetime.now(timezone.utc))


async def cache_youtube_song(db, video_id: str, title: str = "Cached song") -> str:
    """Put a classified YouTube video in the cache; returns a link a user could send for it."""
    await db.tracks.save(classified_record(f"youtube:{video_id}", title, youtube_id=video_id))
    return f"https://youtu.be/{video_id}"
