"""Reply models: plain data the use cases return and each front-end renders its own way.

No platform names here, and nothing that needs a network to render (charts are PNG bytes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Awaitable, Callable


# Where people share the bot, which each platform names its own way (a Discord server, a Telegram
# group): a reply's text names it with these marks, and each front-end renders them in its own
# words (`render.reply_text`), so that the use cases need not know the platform. Characters of
# Unicode's private-use area, which no keyboard types: a user's words quoted in a reply ("{place}"
# as a song's name) stay as typed, and the marks themselves are dropped from what users type
# (`as_typed`, `clean_text`).
PLACE = "\ue000"
PLACE_AT_START = "\ue001"  # opening a sentence
PLACE_MARKS = PLACE + PLACE_AT_START
NO_PLACE_MARKS = dict.fromkeys(map(ord, PLACE_MARKS))  # str.translate: dropped
# A name said back (a sender's, a file's) without those, nor the marks that set the direction of
# what follows them (embeddings, overrides, isolates, and their ends): a name's right-to-left
# override turned the rest of the reply's line around ("The file sent by .daer nac ew…").
NAME_MARKS_DROPPED = dict.fromkeys(map(ord, PLACE_MARKS + "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))


# Each mood's emoji, as every front-end labels the mood ("😢 sad"): typed back to /playlist, it is the mood.
MOOD_EMOJI: dict[str, str] = {"happy": "😊", "energetic": "⚡", "sad": "😢", "calm": "🌿"}

# A file whose type the sender's app named as plainly not sound (a PDF, a picture, text, an
# archive, an office file) is refused before it is downloaded, as the decoder would refuse it; any
# other type, or none, is tried (a song may come as application/octet-stream). Telegram's
# documents and Discord's attachments alike.
NOT_SOUND_TYPES = ("image/", "text/", "application/pdf", "application/zip", "application/x-zip", "application/x-rar",
                   "application/vnd.rar", "application/x-7z", "application/gzip", "application/x-gzip",
                   "application/x-tar", "application/x-compressed-tar", "application/x-xz", "application/x-bzip",
                   "application/json", "application/msword", "application/vnd.ms-",
                   "application/vnd.openxmlformats", "application/vnd.oasis.opendocument",
                   "application/vnd.android.package-archive")
NOT_AUDIO = "The file {name} is not audio we can read."
# A user's file the disk of the temporary folder refused (full: many large files held at once while
# they are heard, or a quota): refused for now; the front-end adds when to send it again.
NO_ROOM_FOR_FILE = "I have no room for that file right now: this bot's disk is full."
NO_ROOM_RETRY_S = 60.0
# A user's file that would take the files held at once, bot-wide, past UPLOADS_MAX_BYTES (many
# users' large files at once, `bot.ratelimit.UploadBudget`): refused before it is fetched.
UPLOADS_BUSY = "I'm busy with a lot of other people's files right now — try again in a minute."
UPLOADS_RETRY_S = 60.0

@dataclass(frozen=True)
class Caller:
    """Who asked, and where. `place` is "<platform>:<guild or group id>", None for DMs/console."""

    platform: str  # "discord" | "telegram" | "console"
    user_id: str
    place: str | None = None
    chat_id: str | None = None  # where a private message reaches this user
    is_admin: bool = False
    display_name: str = ""
    # The user's /forget count when the message arrived (`PrivacyUseCase.arrived`): what was sent
    # before a /forget is not saved after it, even when its file was still downloading. None: read
    # when the use case starts.
    erasures: int | None = None
    # When the message arrived (`PrivacyUseCase.arrived`): a /mood counts in its place from then, so a
    # departure while its file downloads does not bring its asker back. None: when the use case starts.
    asked_at: datetime | None = None


@dataclass(frozen=True)
class Attachment:
    """An audio file the user attached, already saved to a local temporary path by the front-end
    (which enforces the size limit before downloading)."""

    path: str
    filename: str
    size: int
    # What to call it, where its file name is only the front-end's (a Telegram voice note's
    # "voice.ogg", a Discord voice message's "voice-message.ogg"): "Voice note by Alice, 5 Dec
    # 2026" (`titled_upload`). None: named from `filename`.
    title: str | None = None
    # The platform user id of the sender `title` names ("by Alice"), whose /forget takes their name
    # out of the requests that keep it (`storage.models.without_sender`). None: it names nobody, or
    # nobody whose id is known (a forward from an account hidden from links, a channel's post).
    sender: str | None = None
    # The file's name as said back to its sender, in a refusal of its audio ("The file my mix.mp3 is
    # not audio we can read"), clipped by the front-end; `path` is a name of the front-end's own
    # ("audio.mp3"). For a file sent without a name, whose and when (`unnamed_upload`: "The file
    # sent by Alice on 5 Dec 2026 is…"). None: `filename`.
    shown_name: str | None = None
    # The link to the message that holds the file, which the place's other members can open (a
    # Discord server's jump URL, a Telegram supergroup's message link): made by the front-end from
    # the platform's ids, never from what users typed. None in a private chat or DM, and where the
    # place's messages have no links (a Telegram basic group). A server playlist lists the file by it.
    message_link: str | None = None
    # Sent where not every member of the place can see it (a Discord channel or thread the server's
    # @everyone may not view): its request is kept as a private chat's, in no playlist of the place,
    # which every member reads, so neither its name nor its link is shown there.
    unseen_by_place: bool = False


def titled_upload(kind: str, sender: str | None, sent_at: datetime) -> str:
    """The title of a file whose name says nothing, the same on every platform: what it is, whose,
    and the day (UTC) it was sent, "Voice note by Alice, 5 Dec 2026"; "Voice note, 5 Dec 2026"
    when who sent it is not known (and what the sender's /forget makes it: `without_sender`)."""
    name, day = sender_and_day(sender, sent_at)
    return f"{kind} by {name}, {day}" if name else f"{kind}, {day}"


def unnamed_upload(sender: str | None, sent_at: datetime) -> str:
    """The `Attachment.shown_name` of a file sent without a name (the one `titled_upload` titles):
    whose it is and the day, as a refusal's "The file …" goes on, "sent by Alice on 5 Dec 2026";
    "sent on 5 Dec 2026" when who sent it is not known."""
    name, day = sender_and_day(sender, sent_at)
    return f"sent by {name} on {day}" if name else f"sent on {day}"


def sender_and_day(sender: str | None, sent_at: datetime) -> tuple[str, str]:
    """The sender's name on one line ("" when not known), without PLACE_MARKS (a refusal's words
    would turn them into "group") nor direction marks (`NAME_MARKS_DROPPED`), and the day (UTC):
    "5 Dec 2026"."""
    at = sent_at.astimezone(timezone.utc)
    return " ".join((sender or "").translate(NAME_MARKS_DROPPED).split()), f"{at.day} {at:%b %Y}"


# Progress stages reported while /mood works, in order.
STAGE_FINDING = "Finding the song…"
STAGE_DOWNLOADING = "Fetching a 30 s section…"
STAGE_LISTENING = "Listening…"

Progress = Callable[[str], Awaitable[None]]

# /mood given a song's name (or link) and a file: the file is heard, and the answer says so (it
# names the file, not the song typed). Said with a mood only, never with a refusal.
QUERY_LEFT_ASIDE = "I listened to the attached file; the song name or link you typed was left aside."


def next_prompt_text(prompt_at: str) -> str:
    """For a user whose daily prompts are on: when the next one comes, and how to get one now."""
    return f"Your daily prompt comes at {prompt_at}; answer it with a song, or ask for today's now with /journal prompt."


def as_typed(text: str, limit: int) -> str:
    """What the user typed, quoted back to them: on one line, cut short with "…" when long (quoted
    whole, a paste filled the reply, and a chat that cuts a long message cut what the reply says).
    Without the marks of where people share the bot (PLACE_MARKS), which only the reply's own words
    may hold."""
    text = " ".join(text.translate(NO_PLACE_MARKS).split())
    return text if len(text) <= limit else text[:limit] + "…"


async def no_progress(_stage: str) -> None:
    return None


@dataclass(frozen=True)
class ErrorReply:
    message: str
    retry_after_s: float | None = None
    # Others' words the message quotes (a song's title from its video or tags, a sender's file name):
    # Telegram and Discord show them there as they show a song's name, with no link made of them
    # (`render.renamed`); the console as they are. A TextReply's likewise.
    quoted: tuple[str, ...] = ()


@dataclass(frozen=True)
class TextReply:
    text: str
    quoted: tuple[str, ...] = ()


@dataclass(frozen=True)
class MoodReply:
    track_key: str
    title: str
    artists: tuple[str, ...]
    mood: str
    # Empty: a journal answer told again from its entry (which keeps no confidence nor model, see
    # `JournalUseCase.answer`): the answer then says neither.
    probabilities: dict[str, float]
    valence: float
    arousal: float
    confidence: float
    model: str  # "main" | "ann"
    model_version: str
    album: str | None = None
    art_url: str | None = None
    spotify_url: str | None = None
    source_url: str | None = None
    fallback_reason: str | None = None
    cached: bool = False


@dataclass(frozen=True)
class Chart:
    filename: str
    png: bytes
    caption: str = ""
    # When it was drawn, on the clock of the user who asked (their saved zone, else UTC): a front-end
    # that saves it as a file names the file by it, as the export's file is named by the user's date.
    drawn_at: datetime | None = None


@dataclass(frozen=True)
class HelpReply:
    commands: list[tuple[str, str]]  # (usage, description)


@dataclass(frozen=True)
class JournalEntryView:
    local_date: date
    phrase: str
    title: str
    artists: tuple[str, ...]
    mood: str
    note: str = ""
    cursor: str = ""  # its place in the journal: the use case lists the entries before or after it


@dataclass(frozen=True)
class JournalListReply:
    entries: list[JournalEntryView]
    total: int
    prompt_at: str | None = None  # "21:30 (Europe/Lisbon)" when daily prompts are on
    offset: int = 0  # how many entries are newer than the first one shown
    page_size: int = 10
    period: str | None = None  # listed from a day, month or week asked for: "2026-12-05", "December 2026"

    @property
    def has_older(self) -> bool:
        return self.offset + len(self.entries) < self.total

    @property
    def has_newer(self) -> bool:
        return self.offset > 0


@dataclass(frozen=True)
class JournalDeletedReply:
    """/journal delete: the entry deleted, and whether the prompt it answered is open again (the
    user's latest of the last days, their journal on): they may answer it with another song."""
    entry: JournalEntryView
    reopened: bool = False


@dataclass(frozen=True)
class JournalDeleteChoiceReply:
    """/journal delete <date> where that day holds several entries: none is deleted, and each is
    numbered (newest first, as /journal list shows them) for `/journal delete <date> <number>`."""
    local_date: date
    entries: list[JournalEntryView]


@dataclass(frozen=True)
class StatsReply:
    summary: str
    charts: list[Chart] = field(default_factory=list)


@dataclass(frozen=True)
class PlaylistTrackView:
    title: str
    artists: tuple[str, ...]
    url: str | None  # its Spotify page, else the YouTube video it is known by; an upload, the message that holds it
    members: int


@dataclass(frozen=True)
class PlaylistReply:
    mood: str
    tracks: list[PlaylistTrackView]
    total: int | None = None  # the place's songs of the mood, of which `tracks` are the first (None: all)
    other_moods: dict[str, int] = field(default_factory=dict)  # the place's songs of each other mood that has some
    sharing: bool = True  # whether the asker's own songs count in it (False: they sent /share off)


@dataclass(frozen=True)
class ServerMoodReply:
    mood: str | None  # None when nothing was classified this week
    counts: dict[str, int]
    chart: Chart | None = None
    sharing: bool = True  # whether the asker's own songs count in it (False: they sent /share off)


@dataclass(frozen=True)
class ExportReply:
    filename: str
    data: bytes  # JSON
    # What it holds, in words ("your settings, 365 journal entries, …; times are on your clock
    # (Europe/Lisbon)"); None when nothing is kept about the user, the file their default settings alone.
    contents: str | None = ""
    aside: str = ""  # said after it: words typed after /export that it took none of


@dataclass(frozen=True)
class PromptMessage:
    """A daily journal prompt to deliver to `chat_id` on `platform`."""

    platform: str
    user_id: str
    chat_id: str
    prompt_id: str
    phrase: str


@dataclass(frozen=True)
class JournalSavedReply:
    phrase: str
    mood: MoodReply
    local_date: date
    # True when the database was down: the entry is safe in the outbox and appears in /journal list
    # once the database is back. Front-ends say so ("saved, it will appear shortly").
    queued: bool = False
    # What /mood's answer would say under the song's mood (`MoodUseCase.link_note`): another service's
    # link whose song was searched by its name, a YouTube link's moment left aside. None: nothing.
    aside: str | None = None
