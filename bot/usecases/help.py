"""The command list every front-end shows. Usages have no leading "/": each front-end adds its own
command prefix when it renders them (render.help_text(reply, prefix="/")), and its word for where
people share the bot (PLACE: "server", "group"). Also the command a
mistyped one most likely meant (`did_you_mean`), and a command typed without its slash
(`slash_forgotten`), which the console and Telegram name alike."""
from __future__ import annotations

import difflib
import re
from typing import Iterable

from bot.replies import PLACE, HelpReply, as_typed

# How like a command a mistyped word must be to be named (difflib's ratio): "moood", "journl",
# "stat" and "halp" are; "dance" (0.4 to "share") is not. It also bounds what is quoted back: a
# word near a command is at most about twice its length.
NEAR_COMMAND = 0.75
DID_YOU_MEAN = "I don't know /{typed}. Did you mean /{meant}?"
NO_SLASH = "Commands start with a slash: did you mean /{typed}?"
# Of words typed without the slash, as many as are quoted back: a song's name and then some (a
# paste quoted whole would fill the reply, and a chat cuts a long message).
NO_SLASH_QUOTED_CHARS = 100
# A button press whose data the bot does not know (a button of an earlier version, or crafted data):
# answered, so the button stops spinning (Telegram) or failing (Discord), with what to type instead.
UNKNOWN_BUTTON = "This button no longer works: type {command} again (/help lists my commands)."

MOOD: tuple[str, str] = ("mood <song | Spotify link | YouTube link>", "Tell the mood of a song (or attach an audio file)")
JOURNAL_LIST: tuple[str, str] = ("journal list [page | day | month]", "Your latest journal entries; page 2 and on go "
                                  "further back, and a day or a month lists from there: /journal list December")
COMMANDS: tuple[tuple[str, str], ...] = (
    MOOD,
    ("journal on <HH:MM> <Area/City>", "Get a daily prompt to answer with a song, e.g. /journal on 21:30 "
                                       "Europe/Lisbon; /journal on alone turns it back on at your saved time"),
    ("journal off", "Stop the daily prompt"),
    JOURNAL_LIST,
    ("journal prompt", "Today's journal prompt now"),
    ("journal delete <date | last>", "Delete one journal entry: your newest, or a day's: 2026-12-05, Dec 5, "
                                     "yesterday (a wrong song: delete it, then answer again)"),
    ("stats", "Your moods over time, a year in pixels and your songs on the mood map"),
    ("playlist <happy|energetic|sad|calm>", f"This {PLACE}'s playlist for a mood"),
    ("servermood", f"This {PLACE}'s mood of the week"),
    ("share on|off", f"Whether your songs count in {PLACE} playlists: they do until you turn it off"),
    ("serverplaylist on|off", f"Admins: turn this {PLACE}'s playlists and mood of the week on or off"),
    ("export", "Download everything stored about you (JSON)"),
    ("forget", "Delete everything stored about you"),
    ("help", "This list"),
)


def help_reply(extra: tuple[tuple[str, str], ...] = (), *, mood: tuple[str, str] = MOOD,
               instead: dict[tuple[str, str], tuple[str, str]] | None = None) -> HelpReply:
    """The command list. `extra`: a front-end's own commands, listed last; `mood`: how that front-end
    takes a song, where it differs (the console reads a file's path, Discord has a message menu);
    `instead`: a front-end's own line for other lines of COMMANDS, where it takes their words
    otherwise (Discord fills an option with them: JOURNAL_LIST's day or month goes in its `date`)."""
    lines = {**(instead or {}), MOOD: mood}
    return HelpReply([lines.get(command, command) for command in COMMANDS] + list(extra))


# Words people type for a command that are no misspelling of it ('/charts' is not near 'stats'):
# the command meant, named where the front-end has its first word.
COMMAND_SYNONYMS = {"list": "journal list", "history": "journal list", "entries": "journal list",
                    "diary": "journal", "statistics": "stats", "chart": "stats", "charts": "stats",
                    "graph": "stats", "graphs": "stats", "download": "export", "backup": "export",
                    "delete": "journal delete"}


def did_you_mean(typed: str, commands: Iterable[str]) -> str | None:
    """What to say of a command nobody has ('moood' -> "I don't know /moood. Did you mean /mood?"),
    of `commands` (a front-end's own, without their slash); None when none is near. Read in any
    case, quoted as typed. A command joined to its words by underscores, as Telegram's one-word
    commands are named ('journal_list'), is meant with spaces ("Did you mean /journal list?"); a
    word people use for one (COMMAND_SYNONYMS: '/charts') names it ("Did you mean /stats?")."""
    commands = list(commands)
    name, joined, words = typed.lower().partition("_")
    if joined and words.strip("_") and name in commands:
        return DID_YOU_MEAN.format(typed=typed, meant=" ".join([name, *filter(None, words.split("_"))]))
    meant = command_meant(typed, commands)
    return DID_YOU_MEAN.format(typed=typed, meant=meant) if meant else None


def command_meant(typed: str, commands: Iterable[str]) -> str | None:
    """The command `typed` most likely meant, of `commands`: the one a word people use for it names
    (COMMAND_SYNONYMS: 'charts' -> "stats", 'history' -> "journal list", with its sub-command), else
    the nearest spelling (`nearest_command`); None when neither is one of `commands`."""
    commands = list(commands)
    meant = COMMAND_SYNONYMS.get(typed.lower())
    if meant is None or meant.split()[0] not in commands:
        meant = nearest_command(typed, commands)
    return meant


def nearest_command(typed: str, commands: Iterable[str]) -> str | None:
    """The one of `commands` that `typed` most likely meant (`did_you_mean`), None when none is near."""
    meant = difflib.get_close_matches(typed.lower(), list(commands), n=1, cutoff=NEAR_COMMAND)
    return meant[0] if meant else None


def unknown_button(data: str, commands: Iterable[str]) -> str:
    """What to say of a press on a button whose `data` (callback data, custom_id) the bot does not
    know: the command it opens with, where it is one of `commands` ('mood:again:5' -> /mood)."""
    name = re.split(r"[^a-z]", data.lower(), maxsplit=1)[0]
    return UNKNOWN_BUTTON.format(command=f"/{name}" if name and name in commands else "the command")


# What /journal takes after it (each front-end passes those it has), and the words people type for
# them that are no misspelling of them ('/journal stop' is no near 'off'). `journal_word_meant`.
JOURNAL_WORDS = ("on", "off", "list", "prompt", "delete", "answer")
JOURNAL_SYNONYMS = {"stop": "off", "disable": "off", "pause": "off", "unsubscribe": "off",
                    "start": "on", "enable": "on", "resume": "on", "subscribe": "on",
                    "show": "list", "view": "list", "entries": "list", "history": "list", "ls": "list",
                    "page": "list",
                    "now": "prompt", "today": "prompt", "remove": "delete", "del": "delete", "rm": "delete"}
# Words asking for every entry to go: /journal delete deletes one, /forget deletes everything.
JOURNAL_DELETE_ALL = frozenset({"delete-all", "deleteall", "delete_all", "clear", "wipe", "erase", "reset",
                                "purge", "forget"})
JOURNAL_MEANT = "Did you mean /{meant}?"
JOURNAL_ALL_MEANT = ("Did you mean /forget? It deletes everything I keep about you, your journal with it; "
                     "/journal delete deletes one entry.")
JOURNAL_MEANT_CHARS = 60  # of the words after the sub-command, quoted back


def journal_meant(args: str, words: Iterable[str] = JOURNAL_WORDS) -> str | None:
    """The command '/journal <args>' most likely meant, its first word being none of `words` (the
    sub-commands a front-end has): the nearest of them with the words after it ('stop' -> "journal
    off", 'lsit 2' -> "journal list 2"), "forget" for a word asking for all of it to go; None when
    no sub-command is near."""
    word, rest = (args.split(None, 1) + ["", ""])[:2]
    lowered = word.lower()
    if lowered in JOURNAL_DELETE_ALL:
        return "forget"
    words = list(words)
    meant = JOURNAL_SYNONYMS.get(lowered)
    if meant not in words:
        meant = nearest_command(lowered, words)
    if meant is None:
        return None
    return " ".join(filter(None, ["journal", meant, as_typed(rest, JOURNAL_MEANT_CHARS)]))


def journal_word_meant(args: str, words: Iterable[str] = JOURNAL_WORDS) -> str | None:
    """What to say of '/journal <args>' (`journal_meant`): "Did you mean /journal off?"; of a word
    asking for every entry to go, that /forget deletes everything and /journal delete one entry."""
    meant = journal_meant(args, words)
    if meant is None:
        return None
    return JOURNAL_ALL_MEANT if meant == "forget" else JOURNAL_MEANT.format(meant=meant)


def slash_forgotten(typed: str, commands: Iterable[str]) -> str | None:
    """What to say of words that open with a command's name but no slash ('mood Creep' ->
    "Commands start with a slash: did you mean /mood Creep?"), of `commands` (a front-end's own,
    without their slash); None when the first word is none of them. Read in any case: a phone
    capitalizes the first word."""
    first = (typed.split(None, 1) or [""])[0]
    if first.lower() not in commands:
        return None
    return NO_SLASH.format(typed=as_typed(typed, NO_SLASH_QUOTED_CHARS))
