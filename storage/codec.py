"""Dataclass <-> MongoDB document conversions: the only place that knows field names on disk.

Conventions, kept the same in every collection:
- a user is two top-level fields, `platform` and `user_id`, so every per-user query and
  index filters on both (one user's data is never found through another's identity);
- datetimes are BSON dates in UTC (tz-aware in and out), never naive;
- calendar dates (`local_date`) are ISO strings "YYYY-MM-DD": they sort and compare as text;
- a time of day (`prompt_time`) is "HH:MM".
"""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Any, Mapping

from storage.models import (
    JournalEntry,
    MoodRequest,
    SentPrompt,
    StoredMood,
    TrackRecord,
    User,
    UserRef,
)

Document = dict[str, Any]

TIME_FORMAT = "%H:%M"


def utc(moment: datetime) -> datetime:
    """Refuse naive datetimes: BSON would silently read them as UTC, a bug for local times."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: storage needs tz-aware datetimes")
    return moment.astimezone(timezone.utc)


def optional_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


def date_text(day: date) -> str:
    return day.isoformat()


def date_value(text: str) -> date:
    return date.fromisoformat(text)


def time_text(moment: time | None) -> str | None:
    return None if moment is None else moment.strftime(TIME_FORMAT)


def time_value(text: str | None) -> time | None:
    return None if text is None else time.fromisoformat(text)


def user_filter(ref: UserRef) -> Document:
    return {"platform": ref.platform, "user_id": ref.user_id}


def user_ref(doc: Mapping[str, Any]) -> UserRef:
    return UserRef(doc["platform"], doc["user_id"])


# Users ------------------------------------------------------------------------------------


def user_fields(user: User) -> Document:
    """Every field but the identity and `created_at` (which is only ever set on insert)."""
    return {
        "timezone": user.timezone,
        "prompt_time": time_text(user.prompt_time),
        "journal_enabled": user.journal_enabled,
        "share_with_server": user.share_with_server,
        "chat_id": user.chat_id,
        "journal_paused": user.journal_paused,
        "journal_paused_at": user.journal_paused_at,
        "journal_set_at": user.journal_set_at,
    }


def user_from_doc(doc: Mapping[str, Any]) -> User:
    return User(
        platform=doc["platform"],
        user_id=doc["user_id"],
        timezone=doc.get("timezone", "UTC"),
        prompt_time=time_value(doc.get("prompt_time")),
        journal_enabled=doc.get("journal_enabled", False),
        share_with_server=doc.get("share_with_server", True),
        chat_id=doc.get("chat_id"),
        created_at=doc.get("created_at"),
        journal_paused=doc.get("journal_paused"),
        journal_paused_at=doc.get("journal_paused_at"),
        journal_set_at=doc.get("journal_set_at"),
    )


# Tracks -----------------------------------------------------------------------------------


def mood_to_doc(mood: StoredMood | None) -> Document | None:
    if mood is None:
        return None
    return {
        "mood": mood.mood,
        "probabilities": dict(mood.probabilities),
        "valence": float(mood.valence),
        "arousal": float(mood.arousal),
        "model": mood.model,
        "model_version": mood.model_version,
    }


class UnreadableDocError(ValueError):
    """A stored document of another shape than this code writes (a hand edit, another version's)."""


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UnreadableDocError(f"{name} is {type(value).__name__}, not a number")
    return float(value)


def _text(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str):
        raise UnreadableDocError(f"{name} is {type(value).__name__}, not text")
    return value


def mood_from_doc(doc: Mapping[str, Any] | None) -> StoredMood | None:
    """The stored mood; UnreadableDocError for one of another shape, whose answer cannot be told."""
    if doc is None:
        return None
    if not isinstance(doc, Mapping):
        raise UnreadableDocError(f"mood is {type(doc).__name__}, not a document")
    probabilities = doc.get("probabilities")
    if not isinstance(probabilities, Mapping):
        raise UnreadableDocError(f"probabilities are {type(probabilities).__name__}, not a document")
    return StoredMood(
        mood=_text(doc, "mood"),
        probabilities={str(mood): _number(p, "a probability") for mood, p in probabilities.items()},
        valence=_number(doc.get("valence"), "valence"),
        arousal=_number(doc.get("arousal"), "arousal"),
        model=_text(doc, "model"),
        model_version=_text(doc, "model_version"),
    )


def track_to_doc(track: TrackRecord) -> Document:
    return {
        "key": track.key,
        "title": track.title,
        "artists": list(track.artists),
        "album": track.album,
        "duration_s": track.duration_s,
        "isrc": track.isrc,
        "art_url": track.art_url,
        "spotify_id": track.spotify_id,
        "spotify_url": track.spotify_url,
        "youtube_id": track.youtube_id,
        "mood": mood_to_doc(track.mood),
        "classified_at": optional_utc(track.classified_at),
    }


def track_from_doc(doc: Mapping[str, Any]) -> TrackRecord:
    """The stored track; UnreadableDocError for one of another shape (`mood_from_doc`)."""
    return TrackRecord(
        key=_text(doc, "key"),
        title=_text(doc, "title"),
        artists=list(doc.get("artists", [])),
        album=doc.get("album"),
        duration_s=doc.get("duration_s"),
        isrc=doc.get("isrc"),
        art_url=doc.get("art_url"),
        spotify_id=doc.get("spotify_id"),
        spotify_url=doc.get("spotify_url"),
        youtube_id=doc.get("youtube_id"),
        mood=mood_from_doc(doc.get("mood")),
        classified_at=doc.get("classified_at"),
    )


# Mood requests ----------------------------------------------------------------------------


def request_to_doc(request: MoodRequest) -> Document:
    return {
        **user_filter(request.user),
        "place": request.place,
        "track_key": request.track_key,
        "mood": request.mood,
        "created_at": utc(request.created_at),
        "title": request.title,
        # Only where there is one: a request without it reads as one written before links were kept.
        **({"source_link": request.source_link} if request.source_link else {}),
        # Only where the title names the file's sender: their /forget looks for it (storage/privacy.py).
        **({"sender": request.sender} if request.sender else {}),
    }


def request_from_doc(doc: Mapping[str, Any]) -> MoodRequest:
    return MoodRequest(
        user=user_ref(doc),
        place=doc.get("place"),
        track_key=doc["track_key"],
        mood=doc["mood"],
        created_at=doc["created_at"],
        title=doc.get("title"),
        source_link=doc.get("source_link"),
        sender=doc.get("sender"),
    )


# Journal ----------------------------------------------------------------------------------


def journal_to_doc(entry: JournalEntry) -> Document:
    return {
        **user_filter(entry.user),
        "local_date": date_text(entry.local_date),
        "prompt_id": entry.prompt_id,
        "phrase": entry.phrase,
        "reply_text": entry.reply_text,
        "track_key": entry.track_key,
        "track_title": entry.track_title,
        "mood": entry.mood,
        "valence": float(entry.valence),
        "arousal": float(entry.arousal),
        "created_at": utc(entry.created_at),
        "note": entry.note,
        "place": entry.place,
        **({} if entry.answered_by is None else {"answered_by": entry.answered_by}),
        # Only where the title names the file's sender: their /forget looks for it (storage/privacy.py).
        **({"sender": entry.sender} if entry.sender else {}),
    }


def journal_from_doc(doc: Mapping[str, Any]) -> JournalEntry:
    return JournalEntry(
        user=user_ref(doc),
        local_date=date_value(doc["local_date"]),
        prompt_id=doc["prompt_id"],
        phrase=doc.get("phrase", ""),
        reply_text=doc.get("reply_text", ""),
        track_key=doc["track_key"],
        track_title=doc.get("track_title", ""),
        mood=doc["mood"],
        valence=doc["valence"],
        arousal=doc["arousal"],
        created_at=doc["created_at"],
        note=doc.get("note", ""),
        place=doc.get("place"),
        answered_by=doc.get("answered_by"),
        sender=doc.get("sender"),
    )


# Sent prompts -----------------------------------------------------------------------------


def prompt_to_doc(prompt: SentPrompt) -> Document:
    return {
        **user_filter(prompt.user),
        "prompt_id": prompt.prompt_id,
        "phrase": prompt.phrase,
        "local_date": date_text(prompt.local_date),
        "sent_at": utc(prompt.sent_at),
        "chat_id": prompt.chat_id,
        "message_id": prompt.message_id,
        "answered_at": optional_utc(prompt.answered_at),
        **({"sending": True} if prompt.sending else {}),
    }


def prompt_from_doc(doc: Mapping[str, Any]) -> SentPrompt:
    return SentPrompt(
        user=user_ref(doc),
        prompt_id=doc["prompt_id"],
        phrase=doc["phrase"],
        local_date=date_value(doc["local_date"]),
        sent_at=doc["sent_at"],
        chat_id=doc.get("chat_id"),
        message_id=doc.get("message_id"),
        answered_at=doc.get("answered_at"),
        deleted_by=doc.get("deleted_by"),
        sending=bool(doc.get("sending")),
    )
