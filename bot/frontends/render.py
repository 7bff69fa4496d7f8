"""Plain-text rendering of reply models, shared by the chat front-ends.

Pure functions, reply model in, text out. No markup, so nothing needs escaping on any platform.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Callable, TypeVar

from bot.replies import (
    MOOD_EMOJI,
    NAME_MARKS_DROPPED,
    ErrorReply,
    ExportReply,
    HelpReply,
    JournalDeleteChoiceReply,
    JournalDeletedReply,
    JournalEntryView,
    JournalListReply,
    JournalSavedReply,
    MoodReply,
    PlaylistReply,
    ServerMoodReply,
    StatsReply,
    PLACE,
    PLACE_AT_START,
    TextReply,
    next_prompt_text,
)

MODEL_NAMES: dict[str, str] = {"main": "ResNet18+BiLSTM", "ann": "ANN fallback"}
EMPTY_JOURNAL = "Your journal is empty. Turn on daily prompts with /journal on 21:30 Europe/Lisbon."
# The mood of the week is of the last 7 days (`server_mood_of_week`), not the calendar week: said so,
# and what its counts are, since "(sad 3)" named neither.
NO_SERVER_MOOD = "Nobody here classified or journaled a song in the last 7 days. Try /mood!"
VOTES = "one vote per member and song"
GENERIC_ERROR = "Sorry, something went wrong on my side. Please try again in a minute."
# A request still unanswered when the bot stops (a restart, an update), past the stop's grace.
RESTARTING = "Sorry, moodbot is restarting and could not finish this. Please send it again in a minute."
# A reply's first line is the song (a name is searched whole): the user's own words go under it.
PROMPT_HINT = "Reply to this message with a song (name, link or audio file), and your own words on a new line if you like."
SERVER = "server"  # Discord's word for where people share the bot (`placed`), and the default
# Telegram's limit for a message (in UTF-16 code units) and Discord's for an embed's description (in
# code points, which a count in UTF-16 units never exceeds).
MAX_PLAYLIST_CHARS = 4096


def mood_label(mood: str) -> str:
    return f"{MOOD_EMOJI.get(mood, '')} {mood}".strip()


def artists_text(artists: tuple[str, ...] | list[str]) -> str:
    return ", ".join(artists)


WORD_JOINER = "\u2060"
# Where Telegram and Discord find a link in plain text: a scheme's '://' (Discord's, Telegram's) and
# a dot between a letter or digit and another (Telegram's 'evil.example', with no scheme).
LINK_JOINTS = re.compile(r"(?<=:)(?=//)|(?<=[^\W_]\.)(?=[^\W_])")


def unlinked(text: str) -> str:
    """`text` with a word joiner in each of its `LINK_JOINTS`: it reads the same and holds no link.
    A song's name shown in a group (a video's title, an uploaded file's name or tags: their
    uploaders' words) reading 'Free Nitro https://phish.example/claim' was made a link by the chat
    app, in a playlist whose songs' own links are the bot's."""
    return LINK_JOINTS.sub(WORD_JOINER, text)


Reply = TypeVar("Reply")


def renamed(reply: Reply, shown: Callable[[str], str]) -> Reply:
    """`reply` with each song's name it holds (title, artists) as `shown` makes it: a chat
    front-end's `unlinked` (and Telegram's unmentioned) names, in every answer that names a song,
    /mood's, a saved journal answer's, /journal list's, /journal delete's and a playlist's. A saved
    answer's aside is shown so whole: it names the song saved (ONE_SONG_A_PROMPT), and is the
    bot's words otherwise, with no link of its own. An error's or a text's sentence shows the names
    it quotes (`quoted`) so, its own words as they are."""
    def song(view):
        return replace(view, title=shown(view.title), artists=tuple(shown(a) for a in view.artists))
    match reply:
        case MoodReply():
            return song(reply)
        case JournalSavedReply():
            return replace(reply, mood=song(reply.mood), aside=reply.aside and shown(reply.aside))
        case JournalListReply() | JournalDeleteChoiceReply():
            return replace(reply, entries=[song(entry) for entry in reply.entries])
        case JournalDeletedReply():
            return replace(reply, entry=song(reply.entry))
        case PlaylistReply():
            return replace(reply, tracks=[song(track) for track in reply.tracks])
        case ErrorReply(quoted=quoted) if quoted:
            return replace(reply, message=quoting(reply.message, quoted, shown))
        case TextReply(quoted=quoted) if quoted:
            return replace(reply, text=quoting(reply.text, quoted, shown))
    return reply


def quoting(text: str, names: tuple[str, ...], shown: Callable[[str], str]) -> str:
    """`text`, a use case's or front-end's sentence, with each of the `names` it quotes (a reply's
    `quoted`: a decode error's song, '/journal' alone's song of today, a refused file's name) as
    `shown` makes it; the rest, the bot's own words and links, as it is."""
    for name in names:
        text = text.replace(name, shown(name))
    return text


def song_title(title: str, artists: tuple[str, ...] | list[str]) -> str:
    """"Artist – Title", without the direction marks a title or artist may carry (an upload's file
    name or tags, a video's uploader's words): a right-to-left override there turned the rest of its
    line around, a playlist's member count or a journal entry's mood and note read backwards."""
    name = f"{artists_text(artists)} – {title}" if artists else title
    return name.translate(NAME_MARKS_DROPPED)


def model_line(reply: MoodReply) -> str:
    line = f"Model: {MODEL_NAMES.get(reply.model, reply.model)} ({reply.model_version})"
    if reply.fallback_reason:
        line += f", answering because the main model was unavailable ({reply.fallback_reason})"
    return line


def mood_facts(reply: MoodReply) -> list[str]:
    """The lines under the title: mood, axes, confidence, model (shared by text and embeds)."""
    return [
        f"Mood: {mood_label(reply.mood)}",
        f"Valence {reply.valence:+.2f} · Arousal {reply.arousal:+.2f}",
        f"Confidence: {reply.confidence:.0%}",
        model_line(reply),
    ]


# The most of a song's name an answer shows: a name of thousands of characters (a stored title,
# dozens of artists) would otherwise fill the message, and a chat's limit cut off the mood asked for.
SONG_LINE_CHARS = 1000


def song_line(title: str, artists: tuple[str, ...] | list[str]) -> str:
    """`song_title`, shortened (`shorten`) when over SONG_LINE_CHARS."""
    name = song_title(title, artists)
    return name if len(name) <= SONG_LINE_CHARS else shorten(name, SONG_LINE_CHARS)


def mood_text(reply: MoodReply) -> str:
    lines = [f"🎵 {song_line(reply.title, reply.artists)}", *mood_facts(reply)]
    link = reply.spotify_url or reply.source_url
    if link:
        lines.append(link)
    if reply.cached:
        lines.append("(from the cache)")
    return "\n".join(lines)


def help_text(reply: HelpReply, prefix: str = "") -> str:
    lines = ["moodbot tells the mood of a song and keeps a music journal with you.", ""]
    lines += [f"{prefix}{usage} – {description}" for usage, description in reply.commands]
    return "\n".join(lines)


def empty_journal_text(prompt_at: str | None) -> str:
    """What an empty journal says: how to turn prompts on, or when the next one comes."""
    if prompt_at is None:
        return EMPTY_JOURNAL
    return f"Your journal is empty so far. {next_prompt_text(prompt_at)}"


EXPORT_DEFAULTS = "(journal off, times in UTC)"  # a user who never saved settings (`User`'s defaults)
LIST_NOTE_CHARS = 120  # a note is shown whole on saving and in /export; the list shows its start


def shorten(text: str, limit: int) -> str:
    """`text` on one line, cut at a word boundary with '…' when longer than `limit` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] if " " in text[: limit - 1] else text[: limit - 1]
    return cut.rstrip(" ,;:.-–") + "…"


def journal_list_header(reply: JournalListReply) -> str:
    """"Your journal (3 of 3):" when it is all shown, else where the shown entries stand in it:
    "Your journal, entries 11–20 of 57 (newest first):"."""
    if not reply.has_older and not reply.has_newer and reply.period is None:
        return f"Your journal ({len(reply.entries)} of {reply.total}):"
    first, last = reply.offset + 1, reply.offset + len(reply.entries)
    shown = f"entry {first}" if first == last else f"entries {first}–{last}"
    if reply.period is not None:  # /journal list <day | month | week>: from its end back
        return f"Your journal, {reply.period} and before: {shown} of {reply.total} (newest first):"
    return f"Your journal, {shown} of {reply.total} (newest first):"


def next_page(reply: JournalListReply) -> int:
    """The page number of the entries after those shown (pages of `page_size`, counted from 1)."""
    return (reply.offset + len(reply.entries)) // reply.page_size + 1


def journal_entry_line(entry: JournalEntryView, *, dated: bool = True) -> str:
    """An entry as /journal list shows it: "2026-12-05 · <phrase> <song> (mood) – note"."""
    # Without the song name's direction marks: an override in an upload's file name or a video's
    # title turned the rest of the line, the mood and the note, around.
    song = song_title(entry.title, entry.artists)
    line = f"{entry.phrase} {song} ({mood_label(entry.mood)})"
    if dated:
        line = f"{entry.local_date.isoformat()} · {line}"
    if entry.note:
        line += f" – {shorten(entry.note, LIST_NOTE_CHARS)}"
    return line


REOPENED_NOTE = "The prompt it answered is open again: answer it with another song."


def journal_deleted_text(reply: JournalDeletedReply) -> str:
    text = f"Deleted from your journal: {journal_entry_line(reply.entry)}"
    return f"{text}\n{REOPENED_NOTE}" if reply.reopened else text


def journal_delete_choice_text(reply: JournalDeleteChoiceReply) -> str:
    """The day's entries, numbered, and how to delete one of them."""
    day, count = reply.local_date.isoformat(), len(reply.entries)
    lines = [f"You have {count} entries dated {day}, so I deleted none. Which one? Add its number, "
             f"e.g. /journal delete {day} {count}:"]
    lines += [f"{number}. {journal_entry_line(entry, dated=False)}"
              for number, entry in enumerate(reply.entries, start=1)]
    return "\n".join(lines)


def journal_list_text(reply: JournalListReply, older_hint: str | None = None) -> str:
    """`older_hint`, e.g. "Older entries: /journal list {page}", ends the text while older entries
    exist: for a front-end that has no buttons to page with."""
    if not reply.entries:
        return empty_journal_text(reply.prompt_at)
    lines = [journal_list_header(reply)]
    lines += [journal_entry_line(entry) for entry in reply.entries]
    if older_hint and reply.has_older:
        lines.append(older_hint.format(page=next_page(reply)))
    return "\n".join(lines)


QUEUED_NOTE = "(The database is busy: your entry is safe and will appear in /journal list shortly.)"


def journal_saved_text(reply: JournalSavedReply) -> str:
    mood = reply.mood
    lines = [f"Saved to your journal for {reply.local_date.isoformat()}:",
             f"{reply.phrase} {song_line(mood.title, mood.artists)}",
             f"Mood: {mood_label(mood.mood)}" + (f" (confidence {mood.confidence:.0%})" if mood.probabilities else "")]
    if mood.fallback_reason:  # as /mood's answer says it (and Discord's saved embed): the ANN heard this one
        lines.append(model_line(mood))
    if reply.aside:
        lines.append(reply.aside)
    if reply.queued:
        lines.append(QUEUED_NOTE)
    return "\n".join(lines)


def text_length(text: str) -> int:
    """Length in UTF-16 code units, as Telegram and Discord count it (an emoji is two)."""
    return len(text.encode("utf-16-le")) // 2


# Under a playlist that shows fewer songs than the place has of the mood (its top 20; those that fit
# in a message): how many it leaves out, and why those shown come first.
MOST_PICKED_FIRST = "those picked by the most members come first, then the latest picked"
MORE_NOT_SHOWN = f"…and {{count}} more not shown ({MOST_PICKED_FIRST})."


# Under the playlist a member who turned sharing off reads: theirs are not in it, however many they asked.
NOT_SHARING = "Your own songs are left out: your sharing is off. /share on counts them."


def playlist_text(reply: PlaylistReply, limit: int = MAX_PLAYLIST_CHARS) -> str:
    """The playlist in whole lines: the songs that fit in `limit`, then how many more there are
    (a song cut in half would show half a title and a broken link), of all the place has; and,
    to a reader who does not share, that theirs are left out."""
    note = [] if reply.sharing else [NOT_SHARING]
    if not reply.tracks:
        others = [f"/playlist {mood} ({count})" for mood, count in reply.other_moods.items()]
        return "\n".join([f"No {reply.mood} songs here yet. Classify some with /mood!",
                          *([f"Other moods have songs here: {', '.join(others)}."] if others else []), *note])
    lines = [f"{mood_label(reply.mood)} playlist:"]
    for number, track in enumerate(reply.tracks, start=1):
        line = f"{number}. {song_title(track.title, track.artists)}"
        if track.members > 1:
            line += f" ({track.members} members)"
        if track.url:
            line += f" {track.url}"
        lines.append(line)
    total = max(reply.total or 0, len(reply.tracks))
    shown = len(reply.tracks)
    text = "\n".join([*lines, *([MORE_NOT_SHOWN.format(count=total - shown)] if total > shown else []), *note])
    while text_length(text) > limit and shown > 0:
        shown -= 1
        text = "\n".join([*lines[:1 + shown], MORE_NOT_SHOWN.format(count=total - shown), *note])
    return text


def joined(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return " and ".join([", ".join(items[:-1]), items[-1]]) if len(items) > 1 else "".join(items)


def server_mood_text(reply: ServerMoodReply) -> str:
    """The mood of the week, and, to a reader who does not share, that theirs are left out."""
    note = "" if reply.sharing else f"\n{NOT_SHARING}"
    if reply.mood is None:
        return NO_SERVER_MOOD + note
    counts = ", ".join(f"{mood} {count}" for mood, count in reply.counts.items() if count)
    top = max(reply.counts.values())
    tied = [mood_label(mood) for mood, count in reply.counts.items() if count == top]
    mood = f"a tie between {joined(tied)}" if len(tied) > 1 else mood_label(reply.mood)
    return f"This week's mood here: {mood}\n(the last 7 days, {VOTES}: {counts}){note}"


def prompt_text(phrase: str, hint: str = PROMPT_HINT) -> str:
    """A daily prompt as sent: its phrase, then how to answer it (`hint`: the front-end's own)."""
    return f"{phrase}\n\n{hint}"


def placed(text: str, place: str) -> str:
    """`text` with the reply models' word for where people share the bot (PLACE) in the
    front-end's own: "server", "group"."""
    return text.replace(PLACE_AT_START, place[:1].upper() + place[1:]).replace(PLACE, place)


def error_text(reply: ErrorReply) -> str:
    # Say when to retry, unless the message already does (the rate limiter's does).
    if reply.retry_after_s and "try again in" not in reply.message:
        return f"{reply.message} (try again in {max(1, round(reply.retry_after_s))} s)"
    return reply.message


def reply_text(reply: object, place: str = SERVER) -> str:
    """The text of any reply model (charts and files are sent separately by the front-end), where
    people share the bot called `place`."""
    match reply:
        case ErrorReply():
            return placed(error_text(reply), place)
        case TextReply():
            return placed(reply.text, place)
        case MoodReply():
            return mood_text(reply)
        case JournalSavedReply():
            return journal_saved_text(reply)
        case JournalListReply():
            return journal_list_text(reply)
        case JournalDeletedReply():
            return journal_deleted_text(reply)
        case JournalDeleteChoiceReply():
            return journal_delete_choice_text(reply)
        case PlaylistReply():
            return playlist_text(reply)
        case ServerMoodReply():
            return server_mood_text(reply)
        case StatsReply():
            return reply.summary
        case HelpReply():
            return placed(help_text(reply, prefix="/"), place)
        case ExportReply():
            aside = f"\n{reply.aside}" if reply.aside else ""
            if reply.contents is None:
                return (f"I keep nothing about you: {reply.filename} holds only the settings you have by default "
                        f"{EXPORT_DEFAULTS}.{aside}")
            held = f": {reply.contents}" if reply.contents else ""
            return f"Here is all moodbot keeps about you ({reply.filename}){held}.{aside}"
    raise TypeError(f"no text rendering for {type(reply).__name__}")
