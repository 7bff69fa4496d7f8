"""Typed documents at storage's border. Nothing here knows about chat platforms:
`platform` is an opaque string chosen by the front-end."""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import date, datetime, time, timezone, tzinfo
from typing import Any, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class UserRef:
    platform: str
    user_id: str


@dataclass
class User:
    platform: str
    user_id: str
    timezone: str = "UTC"
    prompt_time: time | None = None  # local time of the daily prompt
    journal_enabled: bool = False
    share_with_server: bool = True  # counts in server playlists
    chat_id: str | None = None  # where prompts are delivered (DM / private chat)
    created_at: datetime | None = None
    # Why the prompts stopped without the user asking (UNREACHABLE), and when; cleared once they are told.
    journal_paused: str | None = None
    journal_paused_at: datetime | None = None
    # When /journal on last set the prompts (on, their time, their zone), by the bot's clock: a day
    # whose prompt time had passed then gets no late prompt (the user was told tomorrow). None: never
    # recorded (set before 2026-12-06), no such day.
    journal_set_at: datetime | None = None

    @property
    def ref(self) -> UserRef:
        return UserRef(self.platform, self.user_id)


# User.journal_paused: the platform refused to deliver a prompt to the user for good (a blocked
# bot, closed DMs), so the prompts stopped.
UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class StoredMood:
    mood: str
    probabilities: dict[str, float]
    valence: float
    arousal: float
    model: str
    model_version: str


# The key of an uploaded file: its name is its sender's, so a shared record of it holds none.
UPLOAD_KEY_PREFIX = "sha256:"


@dataclass(frozen=True)
class TrackRecord:
    key: str  # "spotify:<id>" | "youtube:<id>" | "sha256:<hex>"
    title: str
    artists: list[str] = field(default_factory=list)
    album: str | None = None
    duration_s: float | None = None
    isrc: str | None = None
    art_url: str | None = None
    spotify_id: str | None = None
    spotify_url: str | None = None
    youtube_id: str | None = None
    mood: StoredMood | None = None
    classified_at: datetime | None = None


@dataclass(frozen=True)
class MoodRequest:
    user: UserRef
    place: str | None  # "<platform>:<guild or group id>", None for DMs / console
    track_key: str
    mood: str
    created_at: datetime
    title: str | None = None  # the song as the user was answered; an upload's is its file name
    # Where the place's members can open an uploaded file: the link of the message that holds it,
    # made by the front-end from the platform's own ids (never from what users typed). None: no
    # such link (a private chat, a place whose messages have none, a request made before they were kept).
    source_link: str | None = None
    # The platform user id of the file's sender whom `title` names ("Voice note by Alice, 5 Dec
    # 2026", `bot.replies.titled_upload`): their /forget makes it `without_sender(title)` and drops
    # `source_link` (their message). None: the title names nobody known by id.
    sender: str | None = None


# A title `bot.replies.titled_upload` made of a file's sender: "<kind> by <name>, <day>".
TITLED_UPLOAD = re.compile(r"(?P<kind>Voice note|Video note|Audio|Video|File) by .+, (?P<day>\d{1,2} [A-Z][a-z]{2} \d{4})",
                           re.DOTALL)


def without_sender(title: str) -> str:
    """"Voice note by Alice, 5 Dec 2026" as it reads without its sender: "Voice note, 5 Dec 2026" (as
    `titled_upload` names a file whose sender is not known); another title as it is."""
    named = TITLED_UPLOAD.fullmatch(title)
    if named:
        return f"{named['kind']}, {named['day']}"
    # Clipped before its day (a name longer than the platforms allow): its kind alone.
    cut = re.match(r"(Voice note|Video note|Audio|Video|File) by ", title)
    return cut[1] if cut else title


@dataclass
class JournalEntry:
    user: UserRef
    local_date: date
    prompt_id: str  # unique per prompt sent: makes a re-delivered reply idempotent
    phrase: str
    reply_text: str
    track_key: str
    track_title: str
    mood: str
    valence: float
    arousal: float
    created_at: datetime
    note: str = ""  # the user's own words after the song
    place: str | None = None  # where the entry was written, when it was not a private chat
    # The message that answered, "<chat id>:<message id>" on its platform: the same message handed
    # over again (the inbox's replay after a hard kill) is recognised, not filed a second time.
    answered_by: str | None = None
    # The platform user id of the file's sender whom `track_title` names ("Voice note by Alice, 5
    # Dec 2026"), as `MoodRequest.sender`: their /forget makes it `without_sender(track_title)`.
    # None: the title names nobody known by id.
    sender: str | None = None


@dataclass(frozen=True)
class PlaylistItem:
    track_key: str
    title: str
    artists: list[str]
    spotify_url: str | None
    members: int  # distinct members who classified or journaled it
    last_at: datetime
    youtube_id: str | None = None  # the video its audio was heard from (never an upload's)
    source_link: str | None = None  # an upload's: a message of the place's that holds it (MoodRequest.source_link)


@dataclass(frozen=True)
class PeriodMoods:
    period: str  # "2026-W47" or "2026-11"
    counts: dict[str, int]


@dataclass(frozen=True)
class JournalStats:
    total_entries: int
    current_streak: int
    longest_streak: int
    weekly: list[PeriodMoods]
    monthly: list[PeriodMoods]
    songs: list[tuple[str, float, float, str]]  # (title, valence, arousal, mood)


@dataclass(frozen=True)
class SentPrompt:
    """A daily journal prompt that was sent: the scheduler's memory across restarts."""

    user: UserRef
    prompt_id: str
    phrase: str
    local_date: date
    sent_at: datetime
    chat_id: str | None
    message_id: str | None = None  # None until the platform confirms delivery
    answered_at: datetime | None = None
    # The command ("<chat>:<message>") that deleted its entry (/journal delete): the same command
    # handed over again after a hard kill is told so, and deletes no other entry.
    deleted_by: str | None = None
    # Recorded before its send, until the bot learned how the send went (`set_message_id` once it
    # arrived; withdrawn if it did not): one still `sending` after a restart is a send the run
    # before never saw end (killed outright, its send timed out, or its database down at the note).
    # False for those recorded before the field existed.
    sending: bool = False


@dataclass(frozen=True)
class ServerSettings:
    place: str  # "<platform>:<guild or group id>"
    playlist_enabled: bool = True


@dataclass(frozen=True)
class Departure:
    """A member left a place (or was removed) at `left_at`: until they come back, or act there
    again, their songs stop counting in its playlists."""

    place: str  # "<platform>:<guild or group id>"
    left_at: datetime


@dataclass(frozen=True)
class Answer:
    """What a member was told, and when."""

    at: datetime
    mood: str


@dataclass(frozen=True)
class PlaceTrack:
    """The last answer a member was told for a track in a place, summed up from their requests
    there for its playlists (storage/place_tracks.py)."""

    place: str
    track_key: str
    latest: Answer
    title: str | None = None
    source_link: str | None = None  # the greatest of the requests' (MoodRequest.source_link)


@dataclass(frozen=True)
class PlaceMember:
    """A member's summaries in a place as one record, the one its playlists read (the same answers
    as their `PlaceTrack`s there: storage/place_tracks.py)."""

    place: str
    tracks: list[PlaceTrack]


@dataclass(frozen=True)
class JournalTrack:
    """The last answer a member's journal holds for a track, summed up from their entries for the
    playlists (storage/journal_tracks.py); `place`: an upload's, where it was sent (none for a song)."""

    track_key: str
    latest: Answer
    place: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class JournalMember:
    """A member's journal summaries as one record, the one playlists read (the same answers as
    their `JournalTrack`s: storage/journal_tracks.py): their songs, and their uploads by place."""

    songs: list[JournalTrack]
    uploads: list[JournalTrack]


@dataclass(frozen=True)
class UserExport:
    """Everything stored about one user (the right of access)."""

    user: User | None
    journal: list[JournalEntry]
    requests: list[MoodRequest]
    prompts: list[SentPrompt]
    departures: list[Departure] = field(default_factory=list)
    place_tracks: list[PlaceTrack] = field(default_factory=list)
    journal_tracks: list[JournalTrack] = field(default_factory=list)
    place_members: list[PlaceMember] = field(default_factory=list)
    journal_members: list[JournalMember] = field(default_factory=list)
    # Journal answers a crash or a full disk cut short in the outbox (storage/outbox.py), the start
    # of each line as written: their words, but no entry can be read from them; /forget deletes them.
    journal_cut_short: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return export_json(self.user, ((part.name, getattr(self, part.name)) for part in fields(self)
                                       if part.name != "user"))


def export_json(user: User | None, parts: Iterable[tuple[str, Iterable[Any]]]) -> str:
    """`UserExport.to_json`'s text (`json.dumps` of it with `indent=2`) from the user and the lists
    of records named as `UserExport`'s fields, in their order; the records may come from generators.
    Each record is made JSON on its own and only its text is kept: a /export of thousands of records
    as objects all at once (and their `asdict` copies) made the garbage collector's full passes,
    which stop every thread and the event loop with them, take 85-150 ms each. Times are written on
    the user's clock, with its offset (`export_zone`), as their entries' days are dated."""
    zone = export_zone(user)
    parts_text = [f'"user": {_indented(_record_json(user, zone), 1)}']
    for name, records in parts:
        items = [_indented(_record_json(record, zone), 2) for record in records]
        listed = f"[\n{INDENT * 2}" + f",\n{INDENT * 2}".join(items) + f"\n{INDENT}]" if items else "[]"
        parts_text.append(f"{json.dumps(name)}: {listed}")
    return "{\n" + INDENT + f",\n{INDENT}".join(parts_text) + "\n}"


INDENT = "  "


def export_zone(user: User | None) -> tzinfo:
    """The zone an export's times are written in: the user's journal's, as /journal list dates their
    entries (UTC without one, or with one this machine's zone database lacks)."""
    try:
        return ZoneInfo(user.timezone) if user is not None else timezone.utc
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def _record_json(record: Any, zone: tzinfo = timezone.utc) -> str:
    value = asdict(record) if is_dataclass(record) else record  # a dataclass, or text (`journal_cut_short`)
    return json.dumps(value, default=lambda v: _json_value(v, zone), indent=len(INDENT), ensure_ascii=False)


def _indented(text: str, depth: int) -> str:
    """`text` nested `depth` levels deep: JSON's own line breaks are its structure (a string's are escaped)."""
    return text.replace("\n", "\n" + INDENT * depth)


def _json_value(value: object, zone: tzinfo = timezone.utc) -> str:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(zone).isoformat()  # the same instant, on the user's clock
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class StorageError(Exception):
    """Base class; str(error) is a message a user can read."""


class DatabaseUnavailableError(StorageError):
    pass


class DatabaseLoginError(StorageError):
    """The server refused the credentials: a setting to fix, not an outage to wait out."""


class DatabaseNameError(StorageError):
    """MongoDB refuses the database name (MONGODB_DATABASE): a setting to fix, not an outage."""


class DatabaseUriError(StorageError):
    """The driver cannot use MONGODB_URI (not a URI, an SRV name that does not resolve)."""
