"""A terminal chat on stdin/stdout with the same commands as Discord and Telegram.

stdin is read by a daemon thread that hands lines to the event loop, so a blocked `readline` never
blocks the loop or the process exit. In a terminal, that thread reads each line when the chat asks
for it, with Python's `readline` module (line editing; this session's commands back with the arrow
keys); what is said meanwhile (a journal prompt) is printed above the line being typed, which is
shown again under it; and the terminal's modes are put back at the stop, however the session ended.
The console user is one local user in one local place, "console:local", so playlists and the mood of
the week work too, of the songs asked about in it (`CONSOLE_WORDING`). It is also the `PromptSender`
for the "console" platform.
"""
from __future__ import annotations

import asyncio
import codecs
import contextlib
import errno
import ctypes
import io
import itertools
import logging
import os
import queue
import re
import shlex
import sys
import threading
import unicodedata
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TextIO
from urllib.parse import unquote, urlsplit

from bot.app import LOG_FILE
from bot.config import PRIVATE_FOLDER
from bot.frontends import render
from bot.logs import begin_request
from bot.ratelimit import GOING_FAST, PLACE_BUSY
from bot.replies import (
    Attachment,
    Caller,
    Chart,
    ErrorReply,
    ExportReply,
    HelpReply,
    JournalListReply,
    PromptMessage,
    ServerMoodReply,
    StatsReply,
    TextReply,
)
from bot.sources.models import QueryKind, SourceError
from bot.sources.query import ACCEPTED, clean_text, is_link
from bot.usecases.help import DID_YOU_MEAN, did_you_mean, journal_word_meant, slash_forgotten
from bot.usecases.journal import (
    ANSWER_BY_COMMAND,
    ANSWER_TYPED_CHARS,
    TODAY_BY_COMMAND,
    ZONE_MISSING,
    canonical_timezone,
    is_fixed_offset,
    on_left_out,
    parse_prompt_time,
)
from bot.usecases.mood import MODEL_UNAVAILABLE_ERROR, SPOTIFY_OFF_ERROR
from bot.usecases.playlists import DISABLED, ENABLED, ON_NOW, SHARING_OFF, SHARING_ON, TURNED_OFF
from bot.usecases.privacy import FORGET_CUT_SHORT, FORGET_EXPLANATION
from inference.result import MOODS
from storage.durable import PRIVATE_FILE

log = logging.getLogger(__name__)

PLATFORM = "console"
CONSOLE_CALLER = Caller(PLATFORM, "local", place="console:local", chat_id="local", is_admin=True,
                        display_name="you")
# A terminal has nothing to attach: a song may be a local file's path instead.
CONSOLE_MOOD = ("mood <song | Spotify link | YouTube link | path/to/song.mp3>",
                "Tell the mood of a song, or of an audio file on this computer")
# A chat answer puts the user's words on the line under a song's name; a terminal line has no
# second line, so a name followed by words is quoted (a link or a file's path ends by itself).
WORDS_EXAMPLE = '/journal answer "Radiohead - Creep" on the bus'
CONSOLE_COMMANDS = (
    ("journal answer <song> [your words]",
     f"Answer the open journal prompt with a song; quote a song's name before your words: {WORDS_EXAMPLE}"),
    ("journal list older|newer", "The entries before or after those listed last"),
    ("quit", "Leave moodbot"),
)
# The commands a terminal reads otherwise: there is no server or group in it (its playlists and mood
# of the week are of the songs asked about in it), and what Discord and Telegram send as a file is
# saved under DATA_DIR. {charts} and {exports} are those folders.
CONSOLE_SAYS = {
    "stats": "Your moods over time, a year in pixels and your songs on the mood map, saved as pictures in {charts}",
    "playlist": "The playlist for a mood of the songs asked about in this console",
    "servermood": "The mood of the week of the songs asked about in this console",
    "share": "Whether your songs count in this console's playlists: they do until you turn it off",
    "serverplaylist": "Turn this console's playlists and mood of the week on or off",
    "export": "Save everything stored about you as a JSON file in {exports}",
}
# After /forget: the files the console saved, counted by kind ("The 3 charts and the export").
SAVED_FILE_KEPT = ("{files} saved on this computer ({where}) is your own copy and was not deleted; "
                   "remove it yourself if you no longer want it.")
SAVED_FILES_KEPT = ("{files} saved on this computer ({where}) are your own copies and were not deleted; "
                    "remove them yourself if you no longer want them.")
SAVED_FOLDERS = {"charts": "chart", "exports": "export"}  # each folder under DATA_DIR, and what it holds
CHART_STAMP = "%Y%m%d-%H%M%S"  # before a chart's file name: 20270101-020000-moods-by-week.png
JOURNAL_USAGE = ("Usage: /journal on <HH:MM> <Area/City> | off | list [page | day | month | older | newer] | prompt "
                 "| answer <song> | delete <date | last>")
NO_NEWER = "There are no newer entries: those are your latest."
OLDER_HINT = "Older entries: /journal list older (or a page: /journal list {page})"
OLDER_ONLY_HINT = "Older entries: /journal list older"  # under a list from a day or month: no page starts where it ends
HELP_HINT = "Type /help for the commands."
UNKNOWN_HINT = f"I don't know that one. {HELP_HINT}"
TEXT_HINT = ("To hear a song's mood, type /mood <song or path/to/song.mp3>; to answer your journal prompt, "
             "/journal answer <song>. /help lists the rest.")
# What a song may be, as the use cases say it to a chat (where a file is attached) and as it is here.
CONSOLE_ACCEPTED = "I can read Spotify track links, YouTube links, a song name, or an audio file's path on this computer."
# The console's user runs the bot, so is told which settings turn Spotify on (README's Configuration).
SPOTIFY_SETTINGS = (" You run this bot: set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET (a Spotify app's, made at "
                    "https://developer.spotify.com/dashboard) and start it again.")
# A rate limit, there for chats of many users, stops the console's one user, who runs the bot (six /mood
# a minute: a folder of songs tried one by one): the setting that sets it, by command, each user's
# limit and the place's (README's Configuration).
RATE_SETTINGS = {
    "mood": ("MOOD_RATE_PER_USER", "MOOD_RATE_PER_PLACE"),
    "stats": ("STATS_RATE_PER_USER", None),
    "export": ("EXPORT_RATE_PER_USER", None),
    "playlist": ("PLAYLIST_RATE_PER_USER", "PLAYLIST_RATE_PER_PLACE"),
    "servermood": ("PLAYLIST_RATE_PER_USER", "PLAYLIST_RATE_PER_PLACE"),
}
RATE_SETTING_SAID = " You run this bot: {setting} sets how many {commands} it answers a minute; set it higher and start it again."
SHARED_WINDOW = {"playlist": "/playlist and /servermood", "servermood": "/playlist and /servermood"}
# `/journal on 21:30` with no zone saved: the console runs on its user's computer, whose clock is
# most likely on their zone (TZ, else where /etc/localtime links, else Debian's /etc/timezone).
LOCAL_ZONE_SAID = " This computer's clock is on {zone} time: if yours is too, /journal on {time} {zone}."
LOCAL_ZONE_FILES = ("/etc/localtime", "/etc/timezone")
ZONE_FOLDERS = ("posix/", "right/")  # tzdata's copies of its zones, under zoneinfo/
# Playlists turned off: "an admin can turn them on" tells the console's user, that admin, nothing
# (as ON_NOW says how to turn them off).
OFF_NOW = "This console's playlists are turned off. /serverplaylist on turns them and /servermood on."
# The console's word for where people share the bot, in what no CONSOLE_WORDING says otherwise (a
# place's rate limit: "This console is asking me a lot right now").
PLACE_WORD = "console"
# What a server or group is told, as a one-person console says it: its playlists and mood of the week
# are of the songs asked about in it (CONSOLE_SAYS), and it has no other server to leave nor members.
CONSOLE_WORDING = {render.placed(theirs, PLACE_WORD): ours for theirs, ours in {
    FORGET_EXPLANATION: (
        "This deletes everything I store about you: your settings, your journal entries, the songs you asked "
        "about and the prompts I sent you, and it stops your daily prompt. A /share off goes too: songs you ask "
        "about afterwards count in this console's playlists unless you say it again. Songs' moods stay cached "
        "(they aren't about you). This can't be undone."),
    FORGET_CUT_SHORT: ("I couldn't delete everything: your daily prompt is stopped and your songs no longer count "
                       "in this console's playlists, but some of your data is still stored; please try /forget again."),
    DISABLED: OFF_NOW,
    ON_NOW: "This console's playlists are on. /serverplaylist off turns them and /servermood off.",
    ENABLED: "This console's playlists are on.",
    TURNED_OFF: "This console's playlists are off: /playlist and /servermood won't answer here.",
    SHARING_ON: "Sharing on: your songs count in this console's playlists.",
    SHARING_OFF: "Sharing off: your songs no longer count in this console's playlists.",
    render.NO_SERVER_MOOD: "No song was classified or journaled here in the last 7 days. Try /mood!",
    # A prompt answered with no song's name (an emoji): a terminal line has no next line for words.
    "answer with its name or a Spotify/YouTube link, and your own words on a new line if you like.": (
        "answer with its name, a Spotify/YouTube link or an audio file's path, and your own words after it if you "
        f"like, the name quoted: {WORDS_EXAMPLE}."),
    render.VOTES: "one vote per song",
    render.MOST_PICKED_FIRST: "the latest picked come first",
}.items()}
PROMPT_MARK = "> "
TERMINAL_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but the tab and the line feed
# From the cursor to the screen's end erased: where a half-typed line was, for a message to take.
ERASE_BELOW = "\x1b[J"
# A blank written and taken back: at the end of a full row, the terminal goes on to the next one.
WRAP_NOW = " \r\x1b[K"
WIDE = ("W", "F")  # what unicodedata.east_asian_width says of a character two columns wide
DEFAULT_COLUMNS = 80  # readline's width for a terminal that says none
QUIT_COMMANDS = ("quit", "exit")
# A terminal's words for leaving and for help (vim's :q, a shell's "?"), no misspelling of either.
CONSOLE_SYNONYMS = {"q": "quit", "bye": "quit", "leave": "quit", "h": "help", "?": "help", "commands": "help"}
LINE_BREAK = re.compile("\r\n|\r|\n")  # between lines pasted together (readline makes "\r" "\n")
_EOF = object()


# Marks after a command's name that are no part of it ("/help.", "/journal off."): Telegram reads a
# command's name up to the first of them.
NAME_END_MARKS = ".,;:!?…"


def first_word(text: str) -> tuple[str, str]:
    """`Mood<space>words` as (`mood`, `words`): a command's or subcommand's name and what follows.
    Any space ends the name (a tab, the ideographic one an input method types, as well as ASCII's),
    and the name is read in any case, and in full-width letters ("ｍｏｏｄ") as that input method
    types them, without marks after it ("help." is "help"; "?" stays "?")."""
    word, *rest = text.split(None, 1) or [""]
    word = unicodedata.normalize("NFKC", word).lower()
    return word.rstrip(NAME_END_MARKS) or word, rest[0].strip() if rest else ""


# What may come before a command and is not seen: a byte-order mark (a commands file saved so),
# zero-width spaces and joiners (pasted with it), spaces.
INVISIBLE_START = re.compile(r"^[\s\ufeff\u200b\u200c\u200d\u2060]+")
FULL_WIDTH_SLASH = "\uff0f"  # "／": a Chinese or Japanese input method's "/" in full-width mode


def _as_typed(line: str) -> str:
    """A line read, as the user sees it: without what is invisible around it, and a command begun
    with a full-width slash begun with "/"."""
    line = INVISIBLE_START.sub("", line).strip()
    return "/" + line[1:] if line.startswith(FULL_WIDTH_SLASH) else line


# Quotes around nothing (`""`, `''`, `“”`), alone or before the user's words: they name no song.
EMPTY_QUOTES = re.compile(r"""^(["“”]\s*["“”]|'\s*')(\s|$)""")


def _names_no_song(text: str) -> bool:
    """Nothing, nothing visible (a pasted byte-order mark), or empty quotes: a usage, not a search."""
    text = clean_text(text)
    return not text or EMPTY_QUOTES.match(text) is not None


# A usage's placeholder typed as it reads ("/mood <song>", "/journal answer <song> [your words]"):
# the words inside its angle brackets are all the usages' own, so no song's ("<Radiohead - Creep>").
PLACEHOLDER = re.compile(r"^<([^<>]{1,80})>(?=\s|$)")
PLACEHOLDER_WORDS = frozenset({"song", "name", "link", "spotify", "youtube", "path", "file", "audio", "url", "or", "|",
                               "path/to/song.mp3"})
PLACEHOLDER_SAID = ("“{typed}” stands for a song: type its name, its Spotify or YouTube link, or an audio file's "
                    "path in its place, e.g. {example}")


def _placeholder(text: str) -> str | None:
    """The usage's placeholder that `text` opens with ("<song>"), typed in place of a song; else None."""
    found = PLACEHOLDER.match(text.strip())
    if found is None or not all(word in PLACEHOLDER_WORDS for word in found[1].lower().split()):
        return None
    return found[0]


# The longest path Linux opens (PATH_MAX): a longer run of words names no file; nor does a longer
# argument, quoted, escaped or %-encoded in a file:// URL (3 characters a byte at most).
PATH_MAX_CHARS = 4096
QUOTED_PATH_MAX_CHARS = 3 * PATH_MAX_CHARS
SHELL_QUOTES = re.compile(r"""['"\\]""")  # what a shell reads other than as typed
QUOTES = re.compile(r"""['"]""")
# A backslash, not itself escaped, before a letter or digit: a terminal escapes a space, a quote or
# a backslash when it pastes a path, never a letter, so this one is the name's own (back\slash.mp3,
# C:\Users\me\song.mp3).
NAME_BACKSLASH = re.compile(r"(?<!\\)(?:\\\\)*\\[^\W_]")
FILE_URL_HOSTS = ("", "localhost")  # file:///path and file://localhost/path are this computer's


def _file_url_path(path: str) -> str:
    """A file as a file manager copies it (file:///My%20Music/a.mp3) as its path; else `path`."""
    if path.lower().startswith("file://"):
        url = urlsplit(path)
        if url.netloc.lower() in FILE_URL_HOSTS and url.path:
            return unquote(url.path)
    return path


PATH_ALONE = ("To hear a file's mood, type /mood before its path: /mood {path} (to answer your journal prompt "
              "with it: /journal answer <path>)")


def _a_path_alone(line: str) -> str | None:
    """A file's path typed alone (a file dropped on the terminal, and Enter pressed before /mood was
    typed): what to type for its mood. A path is a file's, or starts as a path does ("/", "~/"…)
    and holds a "/" in its first word, which no command does. None for anything else."""
    path = _unquoted(line)
    first = path.split(" ")[0]
    if _file_at(path) is None and not (path.startswith(PATH_STARTS) and "/" in first[1:] and first.strip("/")):
        return None
    return PATH_ALONE.format(path=line)


# A song's link pasted alone, as Telegram's private chat says it (LINK_ALONE) and a path alone is said.
LINK_ALONE = ("To hear that song's mood, type /mood before its link: /mood {link} (to answer your journal prompt "
              "with it: /journal answer <link>)")


def _unquoted(arg: str) -> str:
    """A path as a terminal pastes a dropped file, quoted ('/My Music/a.mp3') or with its spaces
    escaped (/My\\ Music/a.mp3), or as a file manager copies it (file:///My%20Music/a.mp3), as the
    one path it stands for; anything else as typed."""
    if len(arg) > QUOTED_PATH_MAX_CHARS:
        return arg  # no path: not read as a shell would (a long word takes that read a quadratic time)
    if NAME_BACKSLASH.search(arg) and not QUOTES.search(arg):
        return arg  # no shell's escapes: a name's own backslash, a Windows path
    if arg.lower().startswith("file://") and not any(c.isspace() for c in arg):
        return _file_url_path(arg)  # its apostrophes are the name's: GLib's file URLs leave "'" unescaped
    try:
        words = shlex.split(arg)
    except ValueError:  # an apostrophe in a song name: "Don't Stop Me Now", or a quote never closed
        words = []
    if len(words) == 1 and _file_at(path := _file_url_path(words[0])) is not None:
        return path
    if (quoted := _quoted_file(arg)) is not None:
        return quoted
    return _file_url_path(words[0]) if len(words) == 1 else arg


def _quoted_file(arg: str) -> str | None:
    """The file that `arg` names inside a quote typed before it, never closed or closed at its end,
    whatever the name holds: a shell reads an apostrophe in it ('/tmp/don't stop.ogg, "/tmp/it's
    here.ogg) as a quote's end or start, and so no file. None when there is no such file."""
    if arg[:1] not in ("'", '"'):
        return None
    inside = (arg[1:-1],) if len(arg) > 2 and arg[-1] == arg[0] else ()
    for path in (*inside, arg[1:]):
        if _file_at(path := _file_url_path(path)) is not None:
            return path
    return None


def _first_shell_word_length(text: str) -> int:
    """How many characters of `text` its first word takes as a shell reads it (quotes, escaped
    spaces), with the space that ends it; 0 when a quote is left open ("Don't Stop Me Now") or
    the word is longer than a path can be."""
    head = text[:PATH_MAX_CHARS + 2]
    lexer = shlex.shlex(head, posix=True)
    lexer.whitespace_split, lexer.commenters = True, ""  # as shlex.split reads it
    try:
        lexer.get_token()
    except ValueError:
        return 0
    length = len(head) - len(lexer.instream.read())
    return length if length <= PATH_MAX_CHARS + 1 else 0


# A terminal that is not UTF-8 (Latin-1: "café" as b"caf\xe9") gives Python a byte it cannot decode
# as a lone surrogate ("caf\udce9"), which no database, log or JSON can write.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# The commands whose words may be a file's path: that keeps its bytes (the file is found by them).
READS_PATHS = ("mood", "journal")


def _as_text(typed: str) -> str:
    """What was typed, as text to say or store: a byte that was not UTF-8 becomes "\ufffd"."""
    return LONE_SURROGATE.sub("\ufffd", typed)


def _local_zone() -> str | None:
    """The zone of a place that this computer's clock is on ("Europe/Berlin"), or None: unknown, or
    an offset (UTC, a server's or a container's, says nothing of where its user lives). TZ, when
    set, is the clock's zone ("" being UTC), as the C library reads it: a name, or a file's path
    under zoneinfo/, after an optional ":"."""
    if (tz := os.environ.get("TZ")) is not None:
        names = [tz.removeprefix(":")]
    else:
        names = []
        with contextlib.suppress(OSError, ValueError):
            names.append(os.readlink(LOCAL_ZONE_FILES[0]))
        with contextlib.suppress(OSError, ValueError):
            names.append(Path(LOCAL_ZONE_FILES[1]).read_text(encoding="utf-8", errors="replace").strip())
    for name in names:
        name = name.rpartition("zoneinfo/")[2]
        for folder in ZONE_FOLDERS:
            name = name.removeprefix(folder)
        zone = canonical_timezone(name) if name.strip() else None
        if zone is not None and not is_fixed_offset(zone):
            return zone
    return None


def console_text(reply: object) -> str:
    """The text of any reply model as the console says it (`CONSOLE_WORDING`)."""
    text = render.reply_text(reply, PLACE_WORD)
    for theirs, ours in CONSOLE_WORDING.items():
        text = text.replace(theirs, ours)
    return text


def _rate_setting(reply: ErrorReply, command: str) -> str:
    """What the console's user, who runs the bot, is told after a rate limit's refusal of `command`:
    the setting that sets it. "" for any other reply."""
    if reply.retry_after_s is None or command not in RATE_SETTINGS:
        return ""
    by_user, by_place = RATE_SETTINGS[command]
    refusals = {GOING_FAST.format(seconds=reply.retry_after_s): by_user,
                PLACE_BUSY.format(seconds=reply.retry_after_s): by_place}
    if (setting := refusals.get(reply.message)) is None:
        return ""
    return RATE_SETTING_SAID.format(setting=setting, commands=SHARED_WINDOW.get(command, f"/{command}"))


def _attachment_if_file(arg: str) -> Attachment | None:
    """`/mood path/to/song.mp3` classifies a local file; anything else is a song name or link."""
    return _file_at(_unquoted(arg))


def _expanded(typed_path: str) -> Path:
    """A typed path with "~" or "~name" as that home folder; as typed where there is none to
    know (a user "name" that does not exist, a song's name written with a tilde)."""
    try:
        return Path(typed_path).expanduser()
    except RuntimeError:  # "Could not determine home directory."
        return Path(typed_path)


def _file_at(typed_path: str) -> Attachment | None:
    path = _expanded(typed_path)
    try:
        if path.is_file():
            return Attachment(str(path), _as_text(path.name), path.stat().st_size)
    except OSError:
        return None
    return None




def _unreadable(attachment: Attachment) -> str | None:
    """What to say of a file found that this user may not read (its mode refuses them: a song
    copied from another account), or that is empty (a copy cut short): not an error on the bot's
    side, nor one another try mends."""
    try:
        with open(attachment.path, "rb"):
            pass
    except OSError as error:
        return f"I can't open {attachment.path}: {error.strerror or error}."
    return f"{attachment.path} is empty (0 bytes): there is no audio in it." if attachment.size == 0 else None


def _file_then_words(args: str) -> tuple[Attachment | None, str]:
    """`/journal answer ~/my song.ogg on the bus`: the longest run of leading words that names a
    file (its name may hold spaces) and the words after it; else no file, and all of it."""
    words = args.split(" ")
    # Only the runs a path can be as long as; and only the run that is the first shell word is read
    # as a shell would (any other is not one word, so as typed): a long note pasted after the file
    # or a song's name is not split thousands of times over (4 000 words took 15 s, holding the
    # event loop).
    runs = sum(1 for length in itertools.accumulate(len(word) + 1 for word in words) if length <= PATH_MAX_CHARS + 1)
    quoted = _first_shell_word_length(args) if SHELL_QUOTES.search(args) else 0
    for end in range(runs, 0, -1):
        run = " ".join(words[:end])
        one_word = quoted - 1 <= len(run) <= quoted  # with or without the space that ends it
        attachment = _attachment_if_file(run) if one_word else _file_at(_file_url_path(run))
        if attachment is None and not one_word and (path := _quoted_file(run)) is not None:
            attachment = _file_at(path)  # inside a quote that an apostrophe in the name left unread
        if attachment is not None:
            return attachment, " ".join(words[end:]).strip()
    return None, args


QUOTED_SONG = re.compile(r'^["“”](?P<song>[^"“”]+)["“”](?P<words>.*)$', re.DOTALL)
# In single quotes, a name may hold an apostrophe ('Don't Stop Me Now' on the bus): the closing
# quote is the first one followed by a space or the end.
SINGLE_QUOTED_SONG = re.compile(r"^['‘’](?P<song>.+?)['‘’](?=\s|$)(?P<words>.*)$", re.DOTALL)


def _song_then_words(args: str) -> str:
    """`"Radiohead - Creep" on the bus` as a Telegram or Discord answer has it: the song's name on
    its first line, the user's words on the next. Unquoted, the whole line is the song (a link in
    it is still found as the song, the rest as words)."""
    quoted = QUOTED_SONG.match(args) or SINGLE_QUOTED_SONG.match(args)
    if quoted is None:
        return args
    song, words = quoted["song"].strip(), quoted["words"].strip()
    return f"{song}\n{words}" if words else song


PATH_STARTS = ("/", "./", "../", "~/")  # how a path typed on this computer starts; no song name does
# An argument ending in one of these is a file name, not a song to search for.
AUDIO_SUFFIXES = (".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".webm", ".wav", ".flac")


# /mood given two files (dropped on the terminal together), as the use case says of two links.
ONE_FILE = "One file at a time, please: /mood <path>"


FILE_ALONE = ("/mood hears a file alone, with nothing after it: /mood <path>. Your own words go with a song "
              "in your journal: /journal answer <song> [your words]")


def _a_file_and_more(arg: str) -> str | None:
    """`/mood a.ogg b.ogg` (quoted or not, their names with spaces or not): the text is no file, but
    its first words are one, and more follows; not a song's name to search for, nor a file that
    isn't there. What to say: one file at a time, or, when what follows is no file (`/mood a.ogg
    is great`), that the file is heard alone."""
    attachment, rest = _file_then_words(arg)
    if attachment is None or not rest:
        return None
    another = _file_then_words(rest)[0] is not None or _not_a_file(rest) is not None
    return ONE_FILE if another else FILE_ALONE


def _not_a_file(arg: str, command: str = "/mood") -> str | None:
    """What to say when the argument is clearly meant as a local path but names no file, or none
    to read as audio (a folder's example is given as `command` with a file in it)."""
    return _problem_at(_unquoted(arg), command)


def _problem_at(arg: str, command: str = "/mood") -> str | None:
    """`_not_a_file` of a path as it stands (unquoted already, or never quoted)."""
    if "://" in arg or arg.lower().startswith("www."):
        return None  # a link, however it ends: the use case checks it against the allowlist
    # A folder's or file's name may hold spaces ("~/Music/My Album"): no song name starts like this.
    path_like = arg.startswith(PATH_STARTS) or arg in ("~", ".", "..")
    if not (path_like or arg.lower().endswith(AUDIO_SUFFIXES)):
        return None
    path = _expanded(arg)
    try:
        if path.is_dir():
            example = _an_audio_file_in(path) or "song.mp3"
            return f"{arg} is a folder. Give me one audio file in it, e.g. {command} {arg.rstrip('/')}/{example}"
        if not path.exists():
            return f"There is no file at {arg}.{'' if arg.startswith('~') else _read_from(path)}"
        if not path.is_file():  # /dev/null, a named pipe: as `python -m inference classify` says it
            return f"{arg} is not a regular file (a device or a socket), so not an audio file."
    except OSError as error:  # a name longer than the file system takes: "File name too long"
        return f"I can't open {arg}: {error.strerror or error}."
    return None


FOLDER_ENTRIES_READ = 2000  # of a folder given for a file: enough for an album, not a home folder's all


def _an_audio_file_in(folder: Path) -> str | None:
    """The name of an audio file in `folder`, the first by name (none hidden, none empty), to give as
    an example that runs as typed: of its first FOLDER_ENTRIES_READ entries. None when it holds none."""
    names = []
    with contextlib.suppress(OSError):
        with os.scandir(folder) as entries:
            for entry in itertools.islice(entries, FOLDER_ENTRIES_READ):
                with contextlib.suppress(OSError):
                    if (entry.name.lower().endswith(AUDIO_SUFFIXES) and not entry.name.startswith(".")
                            and entry.is_file() and entry.stat().st_size > 0):  # not one "is empty (0 bytes)"
                        names.append(entry.name)
    return min(names, key=lambda name: (name.lower(), name)) if names else None


# `make run` runs moodbot in its own folder, not where its user keeps songs: a relative path that
# names no file is told where it was looked for ("Downloads/song.mp3" meant from the home folder).
READ_FROM = " A path that does not start with / or ~ is read from the folder moodbot runs in, {folder}."


def _read_from(path: Path) -> str:
    """Where a relative `path` was read from, said after "There is no file at …"; "" for an
    absolute one, or where the working folder is gone."""
    if path.is_absolute():
        return ""
    try:
        return READ_FROM.format(folder=os.getcwd())
    except OSError:
        return ""


def _answer_path_problem(args: str, command: str) -> str | None:
    """What to say when an answer's first words are meant as a local path (the user's words after
    it) that names no audio file: a path pasted quoted ('/My Music/a.ogg') or with its spaces
    escaped (/My\\ Music/a.ogg) is its first shell word; one typed as it is may hold spaces, so it
    is the longest run of first words that is a folder or no regular file, else that ends in an
    audio file's suffix, else the first word."""
    if SHELL_QUOTES.search(args) and (length := _first_shell_word_length(args)):
        word = args[:length].strip()
        if SHELL_QUOTES.search(word):
            return _not_a_file(word, command)
    words = args.split(" ")
    if words[0].startswith(PATH_STARTS):
        runs = sum(1 for n in itertools.accumulate(len(word) + 1 for word in words) if n <= PATH_MAX_CHARS + 1)
        for run in (" ".join(words[:end]) for end in range(runs, 1, -1)):
            with contextlib.suppress(OSError, ValueError):
                if os.path.lexists(_expanded(run)):
                    return _problem_at(run, command)
        for run in (" ".join(words[:end]) for end in range(runs, 1, -1)):
            if run.lower().endswith(AUDIO_SUFFIXES):
                return _problem_at(run, command)
    return _not_a_file((args.split() or [""])[0], command)


def _save_new(directory: Path, name: str, data: bytes) -> Path:
    """`data` as a new file `name` in `directory`, or `stem-2.suffixes`, `-3`… when that name is
    taken: a file saved earlier is never overwritten. The user's alone (0600, in a folder of 0700
    where it makes one), whatever the umask: an export is the whole journal, notes too, and a
    DATA_DIR made before the bot (`mkdir data`, a volume) is as open as the umask left it."""
    directory.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    stem, dot, suffixes = name.partition(".")  # moodbot-export-2026-12-04 . json.gz
    path, number = directory / name, 1
    while True:
        try:
            # Exclusive: a name taken meanwhile is not overwritten.
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE), "wb") as file:
                file.write(data)
            return path.resolve()
        except FileExistsError:
            number += 1
            path = directory / f"{stem}-{number}{dot}{suffixes}"


def _not_saved(what: str, folder: Path, error: OSError) -> str:
    """A file the console could not save, with where and why ("No space left on device")."""
    reason = error.strerror or str(error)
    if isinstance(error, FileExistsError) and not folder.is_dir():  # mkdir's word for a file in the way
        reason = "that is a file, not a folder"
    return f"I couldn't save {what} in {folder.absolute()}: {reason}."


def saved_files_kept(kept: dict[str, list[Path]]) -> str:
    """What /forget says of the files it left (by kind: "chart", "export"), each kind counted and
    the sentence singular for one file: a lone export is "the export", not "1 chart and export file"."""
    kinds = [f"the {kind}" if len(paths) == 1 else f"the {len(paths)} {kind}s" for kind, paths in kept.items() if paths]
    files = " and ".join(kinds)
    where = " and ".join(sorted({str(p.parent) for paths in kept.values() for p in paths}))
    template = SAVED_FILE_KEPT if sum(map(len, kept.values())) == 1 else SAVED_FILES_KEPT
    return template.format(files=files[0].upper() + files[1:], where=where)


def _pasted_commands(text: str) -> list[str]:
    """Lines pasted together, as the commands they hold: a line starting with "/" starts one, any
    other line goes on the one before it."""
    commands: list[str] = []
    for line in LINE_BREAK.split(text):
        if commands and not _as_typed(line).startswith("/"):
            commands[-1] += f"\n{line}"
        else:
            commands.append(line)
    return commands


def _has_line_editor() -> bool:
    """Whether this Python has its readline module: one built without it (pyenv where libreadline's
    headers were missing) reads a terminal's lines as a pipe's, with the terminal's own editing."""
    try:
        import readline
    except ImportError:
        return False
    return readline is not None


def _remember(readline, line: str) -> None:
    """`line` last in the line editor's history: once, however many times it is run in a row."""
    length = readline.get_current_history_length()
    if line.strip() and (length == 0 or readline.get_history_item(length) != line):
        readline.add_history(line)


def _width(character: str) -> int:
    """The columns `character` takes in a terminal: two for a wide (East Asian) one, none for a
    combining one."""
    return 0 if unicodedata.combining(character) else 2 if unicodedata.east_asian_width(character) in WIDE else 1


def _end_of(text: str, columns: int) -> tuple[int, int]:
    """(row, column) where `text` ends, written from a row's start in a terminal `columns` wide: a
    character that does not fit in what is left of a row starts the next one (a wide character
    in the last column leaves it empty, as the terminal and readline do). A full row ends at
    column `columns`, its last row's end, not the next one's start."""
    row = column = 0
    for character in text:
        width = _width(character)
        if column + width > columns:
            row, column = row + 1, 0
        column += width
    return row, column


def _above_the_typed_line(text: str, prompt: str, typed: str, cursor: int, columns: int) -> str:
    """`text` said while a line is being typed after `prompt` in a terminal `columns` wide: the
    half-typed line erased (all the rows it wraps onto), `text` on rows of its own (a terminal
    starts each of its lines at the row's start), then the prompt and what was typed shown again
    under it, with the cursor put back `cursor` characters into it: readline goes on editing from
    where it left its cursor, unaware that anything moved."""
    # Readline puts its cursor on the next row as soon as a row is full: rows above it, a row each.
    rows_above, right = _end_of(prompt + typed[:cursor], columns)
    if right == columns:
        rows_above, right = rows_above + 1, 0
    erased = "\r" + (f"\x1b[{rows_above}A" if rows_above else "") + ERASE_BELOW
    redrawn = f"{prompt}{typed}"
    last_row, end = _end_of(redrawn, columns)
    if end == columns:
        redrawn += WRAP_NOW  # a full last row: the terminal waits at its end, readline has moved on
        last_row += 1
    if cursor < len(typed):
        up = last_row - rows_above
        redrawn += "\r" + (f"\x1b[{up}A" if up else "") + (f"\x1b[{right}C" if right else "")
    return f"{erased}{text}{redrawn}"


def _readline_point(readline) -> ctypes.c_int | None:
    """readline's cursor in the line being typed, in bytes (`rl_point`, which Python's module does
    not give, read from the library it is built on), or None where it cannot be read."""
    try:
        return ctypes.c_int.in_dll(ctypes.CDLL(readline.__file__), "rl_point")
    except (AttributeError, OSError, ValueError):  # readline built into Python, or no such symbol
        return None


def _characters_in(typed: str, point: int) -> int:
    """How many characters of `typed` its first `point` bytes are (readline counts in bytes, in the
    locale's encoding, as Python's module decodes its line)."""
    encoding = sys.getfilesystemencoding()
    return len(typed.encode(encoding, "surrogateescape")[:point].decode(encoding, "surrogateescape"))


def write_nowhere(stream: TextIO) -> None:
    """`stream`'s file (a terminal gone) pointed at /dev/null: what it still holds, flushed again
    at exit, would fail there too ("Exception ignored …", exit status 120)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        nowhere = os.open(os.devnull, os.O_WRONLY)
        os.dup2(nowhere, stream.fileno())
        os.close(nowhere)


class ConsoleFrontend:
    platform = PLATFORM

    def __init__(self, usecases, stdin: TextIO, stdout: TextIO, *, data_dir: Path | str = "./data",
                 caller: Caller = CONSOLE_CALLER,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.usecases = usecases
        self.stdin = stdin
        self.stdout = stdout
        self.data_dir = Path(data_dir)
        self.caller = caller
        self.now = now
        self._lines: asyncio.Queue | None = None
        self._input_ended = False  # once stdin ends, every later read is its end too
        self._message_ids = itertools.count(1)
        self._requests = itertools.count(1)  # each line typed, for its log lines' req=
        self._listed: JournalListReply | None = None  # the last /journal list, for "older" / "newer"
        self._unread: list[str] = []  # lines read by a question they did not answer, to run next
        # In a terminal: the prompts of the lines asked for, to the line editor's thread, and the
        # terminal's modes as they were before it changed them.
        self._asks: queue.SimpleQueue | None = None
        self._asked = False  # a line is asked of the terminal and not yet typed
        self._editing: str | None = None  # the prompt of the line that `input()` reads now
        self._point: ctypes.c_int | None = None  # readline's cursor in that line
        self._terminal_modes: list | None = None
        self._modes_lock = threading.Lock()  # the modes put back at the stop, not changed after
        self._stopping = False
        self._command = ""  # the command being answered, for what its refusal says

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self._lines is not None:
            return
        loop = asyncio.get_running_loop()
        self._lines = asyncio.Queue()
        if isinstance(self.stdin, io.TextIOWrapper) and self.stdin.errors == "strict":
            # Python's stdin under a UTF-8 locale (en_US.UTF-8): a byte that is not UTF-8 would raise
            # in the reader below and read as the end of input. Read it as UTF-8 mode does instead,
            # as a lone surrogate (`_as_text` makes it "\ufffd"; a path keeps it as its byte).
            self.stdin.reconfigure(errors="surrogateescape")
        if isinstance(self.stdout, io.TextIOWrapper) and self.stdout.errors == "strict":
            # And a path typed so, said back ("… is a folder"), is written as the bytes typed. A
            # locale that is not UTF-8 (de_DE.ISO-8859-1) has no "—" nor emoji: "?" for those.
            utf8 = codecs.lookup(self.stdout.encoding).name == "utf-8"
            self.stdout.reconfigure(errors="surrogateescape" if utf8 else "replace")
        if self._in_terminal() and _has_line_editor():
            self._start_line_editor(loop)
            return

        def pump() -> None:
            try:
                for line in iter(self.stdin.readline, ""):
                    loop.call_soon_threadsafe(self._lines.put_nowait, line)
            except (ValueError, OSError):  # stdin closed under us at shutdown
                pass
            finally:
                try:
                    loop.call_soon_threadsafe(self._lines.put_nowait, _EOF)
                except RuntimeError:  # the loop is already closed
                    pass

        threading.Thread(target=pump, name="console-stdin", daemon=True).start()

    def _in_terminal(self) -> bool:
        """A person at a terminal: `input()` edits lines only on this process's own stdin and stdout."""
        return (self.stdin is sys.stdin and self.stdout is sys.stdout
                and self.stdin.isatty() and self.stdout.isatty())

    def _start_line_editor(self, loop: asyncio.AbstractEventLoop) -> None:
        """A thread that reads one line with `input()` each time the chat asks: the line editor
        holds the terminal only while a line is awaited, with the prompt as its own (so redrawing
        the line keeps it), not while a command's answer is printed."""
        import readline  # input() edits lines and keeps their history once this is imported
        import termios

        readline.set_auto_history(False)  # commands only: not /forget's "y"
        self._terminal_modes = termios.tcgetattr(self.stdin.fileno())
        self._asks = queue.SimpleQueue()
        self._point = _readline_point(readline)

        def edit() -> None:
            while True:
                prompt, is_command = self._asks.get()
                # Set and cleared here, around input() itself: not while the line waits to be
                # asked, nor once typed. What `say` prints in the instant between this and readline
                # drawing the prompt (or between Enter and input() returning) gets a prompt too
                # many: readline edits without the GIL and has no lock to share with this thread.
                self._editing = prompt
                self._echo(True)  # readline shows the keys only in a terminal that echoes them
                try:
                    line = input(prompt)
                except (EOFError, ValueError, OSError):  # Ctrl-D, or stdin closed under us
                    line = None
                self._editing = None
                # Keys typed while the command runs are not echoed by the terminal among its answer:
                # readline shows them once, after the next prompt (they wait in the terminal).
                self._echo(False)
                # A command typed at /forget's question is run: kept too. Lines pasted together, each.
                for typed in _pasted_commands(line) if line is not None else ():
                    if is_command or typed.lstrip().startswith("/"):
                        _remember(readline, typed)
                try:
                    loop.call_soon_threadsafe(self._lines.put_nowait, _EOF if line is None else line + "\n")
                except RuntimeError:  # the loop is already closed
                    return
                if line is None:
                    return

        threading.Thread(target=edit, name="console-line-editor", daemon=True).start()

    def _echo(self, on: bool) -> None:
        """The terminal's echo turned on or off (TCSANOW: the keys typed ahead are kept), unless
        the session is stopping: its modes were put back, and stay so."""
        import termios

        with self._modes_lock:
            if self._stopping:
                return
            fd = self.stdin.fileno()
            with contextlib.suppress(termios.error, ValueError, OSError):
                modes = termios.tcgetattr(fd)
                modes[3] = modes[3] | termios.ECHO if on else modes[3] & ~termios.ECHO
                termios.tcsetattr(fd, termios.TCSANOW, modes)

    async def stop(self) -> None:
        if self._terminal_modes is not None:
            import termios

            # Ctrl-C or SIGTERM while the editor holds the terminal (no echo, no line mode) or a
            # command runs (no echo): the shell after us would get it so. The cursor was left on the prompt's line.
            with self._modes_lock, contextlib.suppress(termios.error, ValueError, OSError):
                self._stopping = True  # the line editor's thread no longer turns the echo off
                termios.tcsetattr(self.stdin.fileno(), termios.TCSADRAIN, self._terminal_modes)
            self._editing = None  # the line is left as typed, not drawn again under the last words
            if self._asked:
                self.say("")
        self._show("")  # what is left flushed

    async def run(self) -> None:
        """The chat loop; returns on /quit or end of input."""
        await self.start()
        self.say("moodbot console — type /help for the commands, /quit to leave.")
        while True:
            line = await self._read(self._mark())
            if line is None:
                self.say("")
                return
            line = _as_typed(line)
            if not line:
                continue
            if line.startswith("/") and first_word(line[1:])[0] in QUIT_COMMANDS:
                self.say("Bye!")
                return
            begin_request(f"con-{next(self._requests)}")
            try:
                await self.handle(line)
            except Exception:
                log.exception("console.command_failed")
                self.say(render.GENERIC_ERROR)

    # ---- PromptSender -------------------------------------------------------------------------
    async def send_prompt(self, prompt: PromptMessage) -> str | None:
        message_id = str(next(self._message_ids))
        self.say(f"\n📝 {prompt.phrase}\n(answer with /journal answer <song> [your words])")
        return message_id

    # ---- commands ----------------------------------------------------------------------------
    async def handle(self, line: str) -> None:
        if not line.startswith("/"):
            # A new user's first words are often a song's name, or a command without its slash.
            self.say(slash_forgotten(line, self._commands()) or _a_path_alone(line) or self._a_link_alone(line)
                     or TEXT_HINT)
            return
        command, rest = first_word(line[1:])
        handler = getattr(self, f"cmd_{command}", None)
        if handler is None:
            typed = (line[1:].split() or [""])[0]
            typed = typed.rstrip(NAME_END_MARKS) or typed  # "/moood." is "I don't know /moood.", not "/moood.."
            meant = (DID_YOU_MEAN.format(typed=typed, meant=CONSOLE_SYNONYMS[typed.lower()])
                     if typed.lower() in CONSOLE_SYNONYMS else did_you_mean(typed, self._commands()))
            self.say(f"{meant} {HELP_HINT}" if meant else _a_path_alone(line) or UNKNOWN_HINT)
            return
        self.caller = self.usecases.privacy.arrived(self.caller)  # as the line came: a later /forget drops it
        self._command = command
        await handler(rest if command in READS_PATHS else _as_text(rest))
        if (notice := await self.usecases.journal.pause_notice(self.caller)) is not None:
            self.say(notice)

    def _a_link_alone(self, line: str) -> str | None:
        """A song's link (one /mood reads: a Spotify track, a YouTube video) typed alone: the
        command for it. None for anything else, a link to another site too."""
        words = _as_text(line).split()
        if len(words) != 1 or not is_link(words[0]):
            return None
        try:
            query = self.usecases.mood.parse(words[0], discord=False)
        except SourceError:
            return None
        return LINK_ALONE.format(link=words[0]) if query.kind is not QueryKind.TEXT else None

    def _commands(self) -> list[str]:
        """The names this console answers to, /quit and /exit with them."""
        return [name.removeprefix("cmd_") for name in dir(self) if name.startswith("cmd_")] + list(QUIT_COMMANDS)

    async def cmd_help(self, _rest: str) -> None:
        commands = self.usecases.help(CONSOLE_COMMANDS, mood=CONSOLE_MOOD).commands
        folders = {folder: (self.data_dir / folder).absolute() for folder in SAVED_FOLDERS}  # as "saved: …" names them
        said = [(usage, CONSOLE_SAYS[name].format(**folders) if (name := usage.split()[0]) in CONSOLE_SAYS else about)
                for usage, about in commands]
        self.say(render.help_text(HelpReply(said), prefix="/"))

    async def cmd_start(self, rest: str) -> None:
        await self.cmd_help(rest)

    async def cmd_mood(self, rest: str) -> None:
        if _names_no_song(rest):
            self.say(f"Usage: /{CONSOLE_MOOD[0]}")
            return
        if (placeholder := _placeholder(rest)) is not None:
            self.say(PLACEHOLDER_SAID.format(typed=_as_text(placeholder), example="/mood Radiohead - Creep"))
            return
        attachment = _attachment_if_file(rest)
        if attachment is None and (problem := _a_file_and_more(rest) or _not_a_file(rest)):
            self.say(problem)
            return
        if attachment is not None and (problem := _unreadable(attachment)):
            self.say(problem)
            return
        reply = await self.usecases.mood.run(self.caller, None if attachment else _as_text(rest), attachment,
                                             progress=self._progress)
        self.show(reply)
        if attachment is None and (aside := self.usecases.mood.link_note(reply, _as_text(rest))):
            self.say(aside)  # a YouTube link to a moment, another service's link searched by name
        # Today's prompt open: this song is not its answer, which /journal answer with the same words is.
        song = _as_text(rest) if len(rest) <= ANSWER_TYPED_CHARS else "<song>"
        if not isinstance(reply, ErrorReply) and (notice := await self.usecases.journal.not_saved_notice(
                self.caller, ANSWER_BY_COMMAND.format(song=song))):
            self.say(notice)

    async def cmd_journal(self, rest: str) -> None:
        sub, args = first_word(rest)
        if sub == "on":
            # Any space: an input method's ideographic one too. The zone may hold one: "America/New York".
            # Left out, the time or zone is the one saved.
            when, zone = (_as_text(args).split(None, 1) + ["", ""])[:2]
            reply = await self.usecases.journal.enable(self.caller, when or None, zone.strip() or None)
            understood = parse_prompt_time(when) if when and not zone.strip() else None
            if (understood is not None and isinstance(reply, ErrorReply)
                    and reply.message == ZONE_MISSING.format(time=f"{understood:%H:%M}")
                    and (local := _local_zone()) is not None):  # no zone saved: this computer's offered
                reply = replace(reply, message=reply.message + LOCAL_ZONE_SAID.format(
                    zone=local, time=f"{understood:%H:%M}"))
            self.show(reply)
        elif sub == "off":
            self.show(await self.usecases.journal.disable(self.caller))
        elif sub == "list":
            await self._list(_as_text(args).lower())
        elif sub == "prompt":
            await self._prompt_now()
        elif sub == "delete":
            self.show(await self.usecases.journal.delete(self.caller, _as_text(args)))
        elif sub == "answer":
            if _names_no_song(args):
                self.say(f"Usage: /journal answer <song or link> [your own words], e.g. {WORDS_EXAMPLE}")
                return
            if (placeholder := _placeholder(args)) is not None:  # the prompt stays open
                self.say(PLACEHOLDER_SAID.format(typed=_as_text(placeholder), example=WORDS_EXAMPLE))
                return
            attachment, note = _file_then_words(args)
            text = note if attachment is not None else _song_then_words(args)
            song = text.partition("\n")[0]  # a quoted path (its name may hold spaces) is checked whole
            answer = "/journal answer"
            if attachment is None and (problem := _answer_path_problem(args, answer) or _not_a_file(song, answer)):
                self.say(problem)  # the prompt stays open: answer it again
                return
            if attachment is not None and (problem := _unreadable(attachment)):
                self.say(problem)
                return
            self.show(await self.usecases.journal.answer(self.caller, _as_text(text), attachment,
                                                         progress=self._progress))
        else:  # '/journal 21:30 Europe/Lisbon': the 'on' left out; '/journal stop': off; alone: whether it is on
            status = None if sub else await self.usecases.journal.status(self.caller, how=TODAY_BY_COMMAND)
            self.say(on_left_out(rest) or (sub and journal_word_meant(rest))
                     or (f"{status.text}\n" if status else "") + JOURNAL_USAGE)

    async def _list(self, which: str) -> None:
        """`/journal list [page | older | newer]`: older and newer go on from the list shown last."""
        shown = self._listed
        if which == "older" and shown is not None and shown.entries:
            reply = await self.usecases.journal.list(self.caller, before=shown.entries[-1].cursor)
        elif which == "newer" and shown is not None and shown.entries:
            reply = await self.usecases.journal.list(self.caller, after=shown.entries[0].cursor)
        else:
            page = {"": 1, "older": 2, "newer": 1}.get(which, which)  # nothing shown yet: from the top
            reply = await self.usecases.journal.list(self.caller, page=page)
        if (which == "newer" and shown is not None and shown.entries and shown.offset == 0
                and isinstance(reply, JournalListReply) and reply.entries
                and reply.entries[0].cursor == shown.entries[0].cursor):  # the newest page again: none newer
            self.say(NO_NEWER)
        elif isinstance(reply, JournalListReply):
            self._listed = reply
            self.say(render.journal_list_text(reply, older_hint=OLDER_HINT if reply.period is None else OLDER_ONLY_HINT))
        else:
            self.show(reply)

    async def cmd_stats(self, rest: str) -> None:
        self.show(await self.usecases.journal.stats(self.caller, rest))

    async def cmd_playlist(self, rest: str) -> None:
        if not rest:
            self.say(f"Usage: /playlist <{'|'.join(MOODS)}>")
            return
        self.show(await self.usecases.playlists.playlist(self.caller, rest))

    async def cmd_servermood(self, _rest: str) -> None:
        self.show(await self.usecases.playlists.server_mood(self.caller))

    async def cmd_share(self, rest: str) -> None:
        if not rest:
            self.show(await self.usecases.playlists.sharing(self.caller))
            return
        if rest.lower() not in ("on", "off"):
            self.say("Usage: /share on|off")
            return
        self.show(await self.usecases.playlists.set_sharing(self.caller, rest.lower() == "on"))

    async def cmd_serverplaylist(self, rest: str) -> None:
        if not rest:  # whether /playlist and /servermood answer now (or why not)
            self.show(await self.usecases.playlists.closed(self.caller) or TextReply(ON_NOW))
            return
        if rest.lower() not in ("on", "off"):
            self.say("Usage: /serverplaylist on|off")
            return
        self.show(await self.usecases.playlists.set_enabled(self.caller, rest.lower() == "on"))

    async def cmd_export(self, rest: str) -> None:
        self.show(await self.usecases.privacy.export(self.caller, rest))

    async def cmd_forget(self, _rest: str) -> None:
        self.say(console_text(await self.usecases.privacy.forget(self.caller, confirmed=False)))
        answer = await self._read("Delete everything? [y/N] ", is_command=False)
        if answer is not None and _as_typed(answer).lower() in ("y", "yes"):
            reply = await self.usecases.privacy.forget(self.caller, confirmed=True)
            self.show(reply)
            kept = self._saved_files()
            if any(kept.values()):
                # Taken out on purpose (an /export just before /forget is the usual way out): the
                # user's copies now, not the bot's data; said, so that "everything" is not misread.
                self.say(saved_files_kept(kept))
        else:
            if answer is None and self._asks is not None:
                self.say("")  # Ctrl-D at the question: the terminal is still on its line
            self.say("Nothing was deleted.")
            if answer is not None and _as_typed(answer).startswith("/"):
                self._unread.insert(0, answer)  # a command typed instead of an answer: run, not dropped

    # ---- rendering ---------------------------------------------------------------------------
    def show(self, reply: object) -> None:
        if isinstance(reply, ErrorReply):  # "an attached audio file": a terminal attaches nothing
            message = reply.message.replace(ACCEPTED, CONSOLE_ACCEPTED)
            if message == MODEL_UNAVAILABLE_ERROR:  # the reason, which names the server's paths, is the log's
                message += f" You run this bot: `python -m bot --check` says why, and so does {self.data_dir / LOG_FILE}."
            message += _rate_setting(reply, self._command)
            reply = replace(reply, message=message + SPOTIFY_SETTINGS if message == SPOTIFY_OFF_ERROR else message)
        if isinstance(reply, ExportReply):
            # Never over an earlier export (the one taken before a /forget is the user's copy): a
            # second the same day is "…-2.json", and the reply names the file it was saved as.
            folder = self.data_dir / "exports"
            try:
                path = _save_new(folder, reply.filename, reply.data)
            except OSError as error:  # a full disk, a folder that is a file: it would fail again in a minute
                self.say(_not_saved("the export", folder, error))
                return
            self.say(console_text(replace(reply, filename=path.name)))
            self.say(f"  saved: {path}")
            return
        self.say(console_text(reply))
        if isinstance(reply, StatsReply):
            for chart in reply.charts:
                self._show_chart(chart)
        elif isinstance(reply, ServerMoodReply) and reply.chart is not None:
            self._show_chart(reply.chart)

    def say(self, text: str, end: str = "\n") -> None:
        # A control in what is said (a file's name, a song's title) would be run by the terminal:
        # an escape sequence sets its title or clears the screen. Shown as the replacement character.
        text = TERMINAL_CONTROL.sub("\ufffd", text) + end
        if (prompt := self._editing) is not None:
            # Said on its own while a line is typed (the scheduler's journal prompt): above that
            # line, not glued after it. Written at once, so that readline's echo of a key typed
            # meanwhile (its thread writes too) comes before or after it, not inside it.
            import readline

            typed = readline.get_line_buffer()
            cursor = len(typed) if self._point is None else _characters_in(typed, self._point.value)
            text = _above_the_typed_line(text, prompt, typed, cursor, self._columns())
        self._show(text)

    def _show(self, text: str) -> None:
        try:
            self.stdout.write(text)
            self.stdout.flush()
        except OSError as error:
            if error.errno != errno.EIO:
                raise
            # The terminal is gone (closed, an ssh session lost: the SIGHUP that stops the bot):
            # nothing can be shown any more, and the stop's goodbye failed it ("app.failed", exit 1).
            write_nowhere(self.stdout)

    def _columns(self) -> int:
        """The terminal's width now (it may have been resized since the line was begun)."""
        try:
            return os.get_terminal_size(self.stdout.fileno()).columns or DEFAULT_COLUMNS
        except (OSError, ValueError):
            return DEFAULT_COLUMNS

    async def _progress(self, stage: str) -> None:
        self.say(f"  … {stage}")

    async def _prompt_now(self) -> None:
        reply = await self.usecases.journal.prompt_now(self.caller)
        if isinstance(reply, ErrorReply):  # on success the prompt itself was just printed
            self.say(console_text(reply))

    def _saved_files(self) -> dict[str, list[Path]]:
        """The charts and exports this console wrote under DATA_DIR, by what they are."""
        folders = {kind: self.data_dir / name for name, kind in SAVED_FOLDERS.items()}
        return {kind: [p.resolve() for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
                for kind, folder in folders.items()}

    def _show_chart(self, chart: Chart) -> None:
        """The chart's file, and what it shows in words (a terminal shows no picture)."""
        try:
            self.say(f"  chart: {self._save_chart(chart)}")
        except OSError as error:
            self.say(f"  {_not_saved('the chart', self.data_dir / 'charts', error)}")
        if chart.caption:
            self.say(f"    {chart.caption}")

    def _save_chart(self, chart: Chart) -> Path:
        """A new file for each chart, named by when it was drawn on the user's clock (as the
        export's file is by their date): two made in the same second (two /stats, say) get
        `…-server-mood.png` and `…-server-mood-2.png`, never one over the other."""
        stamp = (chart.drawn_at or self.now()).strftime(CHART_STAMP)
        return _save_new(self.data_dir / "charts", f"{stamp}-{Path(chart.filename).name}", chart.png)

    def _mark(self) -> str:
        # Only a person at a terminal gets the "> " marker: piped output stays clean for scripts and
        # tests, and input piped in (`printf … | make run` in a terminal) shows no line to mark: the
        # marker was glued to the next answer ("> Bye!").
        try:
            typed = all(getattr(f, "isatty", lambda: False)() for f in (self.stdin, self.stdout))
        except (ValueError, OSError):  # closed
            typed = False
        return PROMPT_MARK if typed else ""

    async def _read(self, prompt: str = "", *, is_command: bool = True) -> str | None:
        """The next line after `prompt` (first, a command that /forget's question read instead of
        an answer), or None at the end of input. The end is read once from the queue (the reader
        thread has stopped) but stays the end: input ending at /forget's question ends the session
        too, rather than leaving the chat loop waiting for a line that never comes. In a terminal
        the line editor shows the prompt and reads the line; a command is kept in its history."""
        assert self._lines is not None
        if self._input_ended and not self._unread:
            return None  # no prompt for a line that will never be read
        if self._asks is None:
            if prompt:
                self.say(prompt, end="")
        elif self._unread and not is_command:  # a question's answer typed or pasted already: shown with it
            self.say(f"{prompt}{self._unread[0].rstrip()}")
        elif not self._unread:  # a command typed or pasted already is shown where it was, with no "> " after
            self._asks.put((prompt, is_command))
        if self._unread:
            return self._unread.pop(0)
        self._asked = self._asks is not None
        line = await self._lines.get()
        self._asked = False
        self._input_ended = line is _EOF
        if self._input_ended:
            return None
        # Lines pasted together: readline edits them as one, line breaks included. Each command
        # is read in turn (shown already, where they were pasted); a line that is no command goes
        # on the one before it, as a note's next line (a journal answer's words, Telegram's way).
        line, *pasted = _pasted_commands(line.rstrip("\r\n"))
        self._unread.extend(f"{more}\n" for more in pasted)
        return f"{line}\n"
