"""The music journal: opt in/out, daily prompts, answers (a song + the user's own words), list, stats."""
from __future__ import annotations

import asyncio
import contextlib
import difflib
import itertools
import logging
import re
import string
import unicodedata
import uuid
import weakref
from importlib import resources
from collections import Counter, OrderedDict
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache, partial
from typing import Callable, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot import charts
from bot.prompts import NO_REPEAT_DAYS, pick_phrase
from bot.ratelimit import HeavyLimits, refusal
from bot.replies import (
    Attachment,
    Caller,
    Chart,
    ErrorReply,
    JournalDeleteChoiceReply,
    JournalDeletedReply,
    JournalEntryView,
    JournalListReply,
    JournalSavedReply,
    MoodReply,
    Progress,
    PromptMessage,
    StatsReply,
    TextReply,
    as_typed,
    next_prompt_text,
    no_progress,
)
from bot.sources.models import ManySongsError, Query, QueryKind, SourceError
from bot.sources.query import (FULL_WIDTH_PUNCTUATION, LINK_CLOSERS, MARKDOWN_MARKS, MAX_TEXT_CHARS, WORD_RE,
                               hosts_dotted, link_in, marked_link, share_text_start)
from bot.usecases.help import JOURNAL_ALL_MEANT, JOURNAL_DELETE_ALL
from bot.usecases.mood import GENERIC_ERROR, MoodUseCase, mood_reply, refusal_reason
from bot.usecases.ports import NoSchedule, PromptSchedule, RecipientGone, SenderRefused
from inference.result import MOODS, InferenceError
from storage.journal import MAX_NOTE_CHARS
from storage.outbox import JournalWrite, JournalWriter
from storage.models import (
    UNREACHABLE,
    DatabaseUnavailableError,
    JournalEntry,
    SentPrompt,
    StorageError,
    User,
    UserRef,
    without_sender,
)

log = logging.getLogger(__name__)

TIME_RE = re.compile(r"^\s*([01]?\d|2[0-3])[:h.]([0-5]\d)\s*$")
# Words that are one time each, read as it ("/journal on noon Europe/Lisbon"; they were refused as no
# time). 12am and 12pm are a 12-hour clock's, refused with their 24-hour time as "9pm" is.
NAMED_TIMES = {"noon": time(12, 0), "midday": time(12, 0), "midnight": time(0, 0)}
# What follows a time on a 12-hour clock ("7:00 pm"), read as the zone's first word when apart.
TWELVE_HOUR_CLOCK = re.compile(r"^\s*[ap]\.?m\.?(\s|$)", re.IGNORECASE)
# "UTC+2", "GMT-5", "utc+02:00", "+0530", "-03": an offset as people write it, UTC or GMT before it
# or not (ISO 8601). IANA spells UTC+2 "Etc/GMT-2" (POSIX signs), so the user's own sign is read
# here and never handed to them as an IANA name.
OFFSET_RE = re.compile(r"^(?:utc|gmt)?\s*([+\-\u2212])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
MAX_EAST_MINUTES, MAX_WEST_MINUTES = 14 * 60, 12 * 60  # the Etc/GMT zones' range, and the world's
OFFSET_ZONES_SHOWN = 4  # zones named for an offset with minutes: Adelaide's has 3 in July
# A link in an answer; it ends at a space or at full-width punctuation ("https://youtu.be/…。下雨天").
_LINK_CHARS = rf"[^\s{FULL_WIDTH_PUNCTUATION}]+"
URL_RE = re.compile(rf"https?://{_LINK_CHARS}|spotify:track:{_LINK_CHARS}", re.IGNORECASE)
# What may wrap a link in an answer ("<https://…>", "(https://…)", "||https://…||"): left out of the note.
# Stepped over after the link is found: a pattern of them before the link was tried from every one of a
# run of them, and an answer of 4 096 "(" kept the event loop from everyone for 220 ms.
LINK_WRAPPERS = "<([{'\"|*"
# The links of an answer tried for its song (`split_answer`): a Discord DM's 32 KB of links to no song
# were read as /mood reads each, 50 ms of the event loop; past these, the first line is the song.
LINKS_TRIED = 20
EXAMPLE_ZONES = ("Europe/Lisbon", "America/New_York", "Asia/Tokyo", "UTC")
TIME_ERROR = "I need the time as HH:MM on a 24-hour clock, e.g. /journal on 21:30 Europe/Lisbon."
# A time on a 12-hour clock, its "am"/"pm" glued to it ("9pm", "7:30 a.m.") or the zone's first word
# ("9 pm Europe/Lisbon"): still refused, the reply saying the time it is on a 24-hour clock.
TWELVE_HOUR_TIME = re.compile(r"^\s*(1[0-2]|0?[1-9])(?:[:h.]([0-5]\d))?\s*(?:([ap])\.?\s*m\.?)?\s*$", re.IGNORECASE)
# "/journal on Europe/Lisbon 21:30": the zone typed first.
TIME_FIRST = "The time goes first, then the zone: /journal on {time} {zone}"
# '/journal 21:30 Europe/Lisbon': the 'on' left out, so the time was read as what to do (`on_left_out`).
ON_LEFT_OUT = "Did you mean /journal on {typed}?"
ON_LEFT_OUT_CHARS = 60  # of what was typed, quoted back
# '/journal' alone (a tap on it in Telegram's '/' menu sends it so): whether the prompts come, and when.
JOURNAL_IS_ON = "Your journal is on: your prompt comes every day at {at}."
JOURNAL_IS_OFF_AT = "Your journal is off: /journal on turns it back on at {at}."
JOURNAL_IS_OFF = "Your journal is off."
# ... and, the journal on, a line on today's prompt (its day the user's own): open, with how to answer
# it where they asked (`how`), answered, with its song, or not sent yet (`_next_prompt`'s words).
TODAY_OPEN = "Today's prompt is open: {how}."
TODAY_BY_REPLY = "reply to it with a song"  # Telegram: a reply is the only way to answer
TODAY_BY_COMMAND = "answer it with /journal answer <song>"  # the console
TODAY_ANSWERED = "Today's prompt is answered: {song}."
TODAY_ANSWERED_UNNAMED = "Today's prompt is answered: /journal list shows its song."  # its entry not found
# /journal on's word on when the next prompt comes, on the user's clock (the scheduler sends one a day).
NEXT_PROMPT_TODAY = "Your next prompt comes today at {at}, in {wait}."
NEXT_PROMPT_TOMORROW = ("Your next prompt comes tomorrow: it's {now} where you are, past today's {at}. "
                        "/journal prompt sends today's now.")
NEXT_PROMPT_SENT = "Your next prompt comes tomorrow at {at}: today's was sent already."
# A time the clocks skip that day (02:30 the night summer time starts): the prompt comes as much later.
NEXT_PROMPT_TODAY_SKIPPED = ("Your next prompt comes today at {fire}, in {wait}: the clocks skip {at} today "
                             "where you are.")
# A time the clocks repeat that day (01:30 the night summer time ends), set the second time round:
# the day's prompt was the first one's.
NEXT_PROMPT_TOMORROW_REPEATED = ("Your next prompt comes tomorrow: today's {at} came before the clocks went back, "
                                 "and it's {now} where you are now. /journal prompt sends today's now.")
# A 24-hour time typed without its colon ("2130"), as some clocks and schedules write it.
COMPACT_TIME = re.compile(r"^\s*([01]\d|2[0-3])([0-5]\d)\s*$")
# ... or with an "h" after it ("21h", as French and German write it; "21:30h"), or a schedule's seconds ("21:30:00").
MARKED_TIME = re.compile(r"^\s*([01]?\d|2[0-3])(?:\s*h|[:h.]([0-5]\d)(?:\s*h|:[0-5]\d))\s*$", re.IGNORECASE)
TIME_AS_IT_IS = "I need the time as HH:MM on a 24-hour clock: {typed} is {time}{command}."
HOUR_ALONE = re.compile(r"^\s*([01]?\d|2[0-3])\s*$")  # "9": an hour without its minutes
HOUR_EITHER = ("I need the time as HH:MM on a 24-hour clock: “{typed}” could be {first} or {second}: /journal on {first} "
               "{zone}, or /journal on {second} {zone}.")
# Said to a message that answers no prompt: often a new user's first words (a Discord DM, where
# every message is heard), so it also points at /mood and /help.
NOT_A_JOURNAL_ANSWER = "To hear a song's mood now, use /mood <song>; /help lists the rest."
NO_PROMPT_ERROR = ("There's no open journal prompt to answer. Turn the journal on with "
                   f"/journal on 21:30 Europe/Lisbon and answer the next prompt with a song. {NOT_A_JOURNAL_ANSWER}")
# An answer to a daily prompt edited afterwards (a misspelled song corrected), on Telegram and in a
# Discord DM: an edit answers nothing (the first words were the answer), and the user is told so.
EDITED_ANSWER = ("I don't read edited messages, so your edit changed nothing in your journal. Send the song as a new "
                 "reply to the prompt; an answer already saved stays as first sent (/journal list shows it, "
                 "/journal delete removes it).")
# A song's mood told where the daily prompt lives (Telegram's private chat, Discord's DM, the console)
# while today's prompt is open: /mood files nothing, and the user may take it for their answer.
# Each front-end says how its prompt is answered (`not_saved_notice`), last, with no full stop after
# it: the console's is a command with a file's path, copied as it is.
NOT_SAVED_TO_JOURNAL = "Not saved to your journal: today's prompt is still open. To save this song there, {how}"
ANSWER_BY_REPLY = "reply to the prompt with it"  # Telegram: a reply is the only way to answer
ANSWER_IN_THE_DM = "send it here as a message, without /mood"  # Discord: the DM's next message answers
ANSWER_BY_COMMAND = "type /journal answer {song}"  # the console
ANSWER_TYPED_CHARS = 100  # of a song typed, named in ANSWER_BY_COMMAND; a longer one is "<song>"
# A prompt answered with words that are no song (or with no words at all, an emoji): not searched.
SKIP_ANSWERS = frozenset({"skip", "skip today", "pass", "none", "nothing", "nothing today", "no", "nope", "no song",
                          "no song today", "no music", "no music today", "not today", "no idea", "idk", "dunno",
                          "i don't know", "i dont know", "don't know", "dont know", "not sure", "n/a"})
NO_SONG_TODAY = ("Nothing saved: “{typed}” reads as no song this time, and that's fine. If one comes to you later, "
                 "answer the prompt with it; your next prompt comes at {at}. (If “{typed}” is a song's name, "
                 "send it as artist - title.)")
NOT_A_SONG_NAME = ("“{typed}” isn't a song I can look up: answer with its name or a Spotify/YouTube link, and your "
                   "own words on a new line if you like. No song today? Nothing is saved; your next prompt comes at {at}.")
NO_SONG_ERROR = "Reply with a song — its name or a Spotify/YouTube link — optionally followed by a few words of your own."
JOURNAL_OFF = "Your journal is off. Turn it on first, e.g. /journal on 21:30 Europe/Lisbon."
# A message answering a prompt (a DM, a reply to one sent before /journal off) while the journal is
# off: it is not filed, not even under the prompt left open before the user turned it off.
JOURNAL_OFF_ANSWER = ("Your journal is off, so I didn't save that as a journal entry. /journal on turns the "
                      "daily prompts back on at {when}. {hint}")
# /journal on without a time, or without a zone, from a user who never chose them.
JOURNAL_ON_USAGE = ("Tell me when, in your time zone: /journal on <HH:MM> <Area/City>, e.g. /journal on 21:30 "
                    "Europe/Lisbon. After that, /journal on alone turns it back on at the same time.")
# /journal on 21:30 from a user with no saved zone: the time is understood, only the zone is asked
# for (the usage above made them think the time was wrong). A zone is named after the biggest city
# in it, so a city typed is answered with the names that hold it.
ZONE_MISSING = ("{time}, understood: only your time zone is missing. Add it as an Area/City name, e.g. "
                "/journal on {time} Europe/Lisbon. Not sure of its name? Type a big city in your time zone "
                "(/journal on {time} Lisbon) and I'll suggest the names that hold it.")
# ... and the zone alone (Discord's autocompleted option filled, the time left out): the time asked for.
TIME_MISSING = ("{zone}, understood: only the time is missing. Add it on a 24-hour clock, e.g. "
                "/journal on 21:30 {zone}.")
# The reply to a fixed offset (or UTC): its prompt stays at the same UTC hour when the user's
# clocks change, an hour off their evening for half the year.
FIXED_OFFSET_NOTE = ("{label} is a fixed offset: it doesn't follow daylight saving time. Where the clocks change, "
                     "name your zone instead, e.g. /journal on {time} Europe/Lisbon, to keep {time} all year.")
# ... and to a tzdata name that is an offset, not a place, taken for a place's clocks: a Londoner
# types GMT, a New Yorker EST, and their summer time is not in it (see OFFSET_NAMES).
FIXED_NAME_NOTE = ("{label} is a fixed offset: it doesn't follow {summer}. For {city}, name its zone instead, "
                   "/journal on {time} {zone}, to keep {time} all year.")
# IANA has Etc zones for whole hours only: an offset with minutes is a place's, named instead.
OFFSET_WITH_MINUTES = ("{label} is {names} today: type {which}, e.g. /journal on {time} {first}. "
                       "IANA has no zone for an offset with minutes, only the places that keep it.")
NO_ZONE_AT_OFFSET = ("No time zone is at {label} today. Type your zone's name, e.g. /journal on {time} "
                     "Europe/Lisbon, or a whole-hour offset such as UTC+2.")
# /journal prompt that the platform refused to deliver (RecipientGone): the user has something to allow.
PROMPT_NOT_SENT = ("I couldn't send you a prompt. Open a private chat with me (and allow messages from me), "
                   "then ask again with /journal prompt.")
# ... and one that failed for a passing reason (an outage, a lost connection, the database): the
# user's settings are fine, and asking again later is all there is to do.
PROMPT_NOT_SENT_NOW = "I couldn't send you a prompt just now: try /journal prompt again in a few minutes."
# ... and one the platform refused to the bot itself (SenderRefused): no passing failure, and
# nothing in the user's settings to change; the journal stays on, and its prompts try again.
PROMPT_REFUSED_TO_THE_BOT = ("I couldn't send you a prompt: the chat service refused the message to me, not "
                             "because of your settings. Your journal is on, and your prompts will be tried again.")
PROMPT_SENT = "Sent: today's prompt is in our private chat. Answer it with a song."
# Its entry named by the prompt's date: "/journal delete last" took the newest entry, another
# prompt's, when the reply was to an older one.
ALREADY_ANSWERED = ("You've already answered that prompt — your journal keeps one song per prompt. Another song "
                    "instead? Delete that entry first: /journal delete {day}, then answer it again.")
# Under "Saved" when an answer held more than one song's link (two pasted together, or a file and a
# link): the entry keeps one song, `split_answer`'s (the file, where one came), the rest of the
# message its note, links too, as typed. A second song named in words reads as the user's own.
# Under the refusal of a link to many songs (`ManySongsError`: a playlist, an album, an artist).
ONE_SONG_OF_MANY = ("Your journal keeps one song a prompt: answer it again with one of those songs' links or names. "
                    "Nothing was saved, and the prompt is still open.")
ONE_SONG_A_PROMPT = ("Your journal keeps one song a prompt: I saved {title}; the other song {links} stayed in your "
                     "note as you wrote it. To save another instead: /journal delete {day}, then answer the prompt "
                     "again with that song alone.")
# A first line no song's name is as long as (a search takes MAX_TEXT_CHARS of one), with no link in
# it: a paragraph typed on one line ("Creep by Radiohead, because…"), read as words, not searched.
LONG_FIRST_LINE = ("Nothing saved: your answer's first line is {chars} characters, more than a song's name I search "
                   "for ({most} at most), so it reads as your own words. Answer the prompt again with the song (its "
                   "name or link) on the first line and your words on the next: it is still open.")
LONG_FIRST_LINE_CONSOLE = ("Nothing saved: your answer is {chars} characters, more than a song's name I search for "
                           "({most} at most), so it reads as your own words. Answer the prompt again with the song in "
                           "quotes, then your words: /journal answer \"Artist - Title\" your words. It is still open.")
# The rest of an answer its platform sent in parts (`add_to_note`), when the entry could not be
# reached: the part's words are not kept, and the user is told so, not that they were.
NOTE_PART_NOT_ADDED = ("I couldn't add the rest of your long answer to your journal entry's note (the database "
                       "didn't answer), so those words are not saved.")
# The rest of such an answer past a note's MAX_NOTE_CHARS (a text of megabytes pasted).
NOTE_FULL = ("Your journal entry's note is full ({chars:,} characters), so I didn't add the rest of your long "
             "answer: those words are not saved.")
FORGOTTEN_MEANWHILE = ("You deleted your data with /forget while I was fetching or listening to that song, so I "
                       "didn't save this answer. Turn the journal on again with /journal on to start a new one.")
# Told once, on the user's next command or message, after their prompts stopped because the
# platform would not deliver them (a blocked bot, closed DMs).
PROMPTS_STOPPED_UNREACHABLE = (
    "Your daily journal prompts stopped: I couldn't reach you in a private chat (I was blocked, or "
    "messages from me were turned off). Your entries are kept. To get the prompts again at {when}, make sure "
    "I can message you, then send /journal on.")
LIST_MAX = 50
LIST_PAGE = 10  # entries on a page of /journal list
PAGE_DIGITS = 9
PAGE_LABEL_CHARS = 20
ZONE_LABEL_CHARS = 40  # of a time zone quoted back: IANA's longest name, America/Argentina/ComodRivadavia, is 32
PAGES_COUNT = "Pages count from 1, your latest {limit} entries; page 2 holds the {limit} before those."
BAD_PAGE = "“{page}” isn't a page number. " + PAGES_COUNT
NO_OLDER = "There are no older entries: that was the start of your journal."
# /journal list <day | month | week>: the journal from the end of that period back (`read_period`).
LIST_BY_DATE = "A day or a month lists your journal from there back: /journal list 2026-12-05, /journal list December."
# Words after /journal list (Discord's date option) that are neither a page nor a period: either was
# meant, so neither is named alone (they were "isn't a page number", a month misspelled too).
BAD_LIST_WORDS = "“{page}” isn't a date or a page number I can read. " + PAGES_COUNT + " " + LIST_BY_DATE
PAGE_WORD = re.compile(r"^\s*(?:page|p\.?)\s*(?=\S)", re.IGNORECASE)  # "page 2", "p. 2", "p2": the number after it
LIST_WEEKS = {"this week": 0, "last week": 1}
LIST_MONTHS = {"this month": 0, "last month": 1}
LIST_MONTH_RE = re.compile(r"^(\d{4})[-/.](\d{1,2})$")  # 2026-12
NOT_YET = "{label} hasn't come yet: today is {today} where you are. /journal list shows your latest entries."
NONE_IN_PERIOD = "{none} in your journal: the nearest before it is dated {before} (/journal list {before}){after}."
BEFORE_JOURNAL = "Your journal starts on {oldest}: there are no entries {what} or before."
AMBIGUOUS_LIST_DATE = ("“{typed}” could be {first} (/journal list {first_day}) or {second} "
                       "(/journal list {second_day}): send the one you mean.")
PAGE_GONE = "Those entries are no longer in your journal. /journal list shows your latest."
# A page turned from an entry /journal delete took since (the last shown, for ◀ Older): the others
# are there, but where that one stood is not known any more.
PAGE_TURNED_FROM_DELETED = ("That page can't be turned: an entry on it was deleted since. /journal list shows "
                            "your latest entries.")
# /journal delete <date | last> [number]: one entry, by its day as /journal list dates it, or as
# people write a day ("Dec 5", "5 December 2026", "December 5th", "yesterday"; `AskedDay`).
DELETE_EXAMPLE = "/journal delete 2026-12-05"
DELETE_USAGE = ("Tell me which entry to delete: /journal delete last (your newest), or /journal delete <date> "
                "(a day's): 2026-12-05 as /journal list dates it, Dec 5, 5 December 2026, December 5th, "
                f"yesterday or today, e.g. {DELETE_EXAMPLE}.")
BAD_DELETE_DATE = "“{typed}” isn't a date I can read. " + DELETE_USAGE
# "12-01", "01.12.", "1/12": 1 December or 12 January. Guessed wrong, a delete loses an entry: asked.
AMBIGUOUS_DELETE_DATE = ("“{typed}” could be {first} (/journal delete {first_day}{number}) or {second} "
                         "(/journal delete {second_day}{number}), so I deleted nothing: send the one you mean.")
DELETE_LAST_WORDS = ("last", "latest", "newest")
DELETE_DAYS_BACK = {"today": 0, "yesterday": 1, "tomorrow": -1}  # tomorrow: a day still to come, said so
DELETE_DATE_RE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\.?$")  # as /journal list writes it
# Day and month in numbers, either way round ("12-01", "01.12.", "1/12/2026"), a year after them or not.
DELETE_NUMBERS_RE = re.compile(r"^(\d{1,2})([-/.])(\d{1,2})(?:\2(\d{4}))?\.?$")
DELETE_DAY_RE = re.compile(r"^(\d{1,2})(?:st|nd|rd|th|\.)?$")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
DELETE_TYPED_CHARS = 30  # of a date quoted back
NOTHING_TO_DELETE = "Your journal is empty: there's nothing to delete."
NEVER_JOURNALED = ("You have no journal entries to delete. Turn the journal on with /journal on 21:30 Europe/Lisbon "
                   "and answer a prompt with a song.")
NO_ENTRY_ON = ("There's no entry dated {day} in your journal; your newest is dated {newest}. /journal list shows "
               "your entries with their dates.")
# A day between entries, before the first, or still to come: where the journal is, not its newest alone.
NO_ENTRY_BETWEEN = ("There's no entry dated {day} in your journal: the nearest before it is dated {before}, after it "
                    "{after}. /journal list {day} lists the entries around it.")
NO_ENTRY_BEFORE = "Your journal starts on {oldest}: there's no entry dated {day}."
DAY_NOT_YET = "{day} hasn't come yet: today is {today} where you are. /journal list shows your entries with their dates."
# '/journal delete last week', 'last 3': "last" read, the words after it asking for more than one.
DELETE_ONE_AT_A_TIME = ("“{typed}” would be more than one entry: /journal delete deletes one at a time, your newest "
                        "with /journal delete last or a day's with /journal delete <date>, e.g. "
                        f"{DELETE_EXAMPLE}. /forget deletes everything.")
ONE_ENTRY_ON = "{day} has one entry, not {number}: /journal delete {day} deletes it."
BAD_DELETE_NUMBER = ("{day} has {count} entries: choose one by its number, 1 to {count}, as /journal delete {day} "
                     "lists them, e.g. /journal delete {day} {count}.")
ENTRY_GONE = "That entry is no longer in your journal. /journal list shows what's there."
# /journal delete last while an answer of the user's is being heard or saved: the newest entry so
# far is the one before it, which they did not mean.
ANSWER_UNDER_WAY = ("Your answer to a prompt is still being saved, so your newest entry isn't it yet: send "
                    "/journal delete last again once I've replied to it, or name the entry's date.")
# The same /journal delete handed over again after a hard kill: done the first time, nothing more.
ALREADY_DELETED = ("Done already: your entry dated {day} ({phrase}) is deleted from your journal. "
                   "/journal list shows what's there.")
# '/stats last month', '/stats 2026': /stats charts the whole journal, and says the words went unread.
STATS_WORDS_ASIDE = ("/stats takes no words, so “{typed}” was left aside: these are of your whole journal. "
                     "/journal list <month> lists a month's entries, e.g. /journal list December.")
# Prompts delivered by this process, kept in memory so an answer can be saved while the database is down.
OPEN_PROMPTS_MAX = 10_000
RECALL_DAYS = 7  # open prompts older than this are recalled from the database only
# A message that does not reply to a prompt (a Discord DM, the console's /journal answer) answers
# the newest prompt of the last ANSWER_DAYS, and only while the journal is on: one forgotten weeks
# ago, or left open before /journal off, must not take the next message and file it under its old
# date. Once the newest has its song, the next message is told so: it does not fall through to an
# older prompt still open (yesterday's), which took a second message and filed it under yesterday.
ANSWER_DAYS = 7


class PromptAlreadyAnswered(Exception):
    """The prompt, of local date `day`, has its song: the message says how to delete its entry."""

    def __init__(self, day: date) -> None:
        super().__init__(ALREADY_ANSWERED.format(day=day.isoformat()))
        self.day = day


@dataclass(frozen=True)
class OpenPrompt:
    prompt_id: str
    ref: UserRef
    phrase: str
    local_date: date
    sent_at: datetime  # an answer that names no prompt takes one of the last ANSWER_DAYS only
    chat_id: str | None = None
    message_id: str | None = None
    erasures: int = 0  # the user's /forget count when it was sent: a later /forget makes it gone
    answered: bool = False  # its song was taken: with the database down, a later message is told so


def as_typed_in_ascii(text: str | None) -> str:
    """`text` with the full-width forms a Chinese or Japanese input method types ("２１：３０",
    "ＵＴＣ＋９") as the ASCII characters they stand for (NFKC)."""
    return unicodedata.normalize("NFKC", text or "")


def parse_prompt_time(text: str) -> time | None:
    """The time `text` is, HH:MM on a 24-hour clock or a word that is one time (`NAMED_TIMES`); None else."""
    typed = as_typed_in_ascii(text)
    if (named := NAMED_TIMES.get(typed.strip().casefold())) is not None:
        return named
    match = TIME_RE.match(typed)
    return time(int(match.group(1)), int(match.group(2))) if match else None


def misread_time_error(time_text: str | None, timezone: str | None) -> str | None:
    """The reply to a time on a 12-hour clock ("9pm", or "9" with the zone "pm Europe/Lisbon"), one
    without its colon ("2130"), or marked otherwise ("21h", "21:30:00"): the time as HH:MM and the
    command with it; None for any other."""
    time_text, zone = as_typed_in_ascii(time_text).strip(), as_typed_in_ascii(timezone).strip()
    clock = TWELVE_HOUR_CLOCK.match(zone)
    if clock is not None:  # "9 pm": the am/pm was read as the zone's first word
        time_text, zone = f"{time_text} {clock.group(0).strip()}", zone[clock.end():].strip()
    match, compact = TWELVE_HOUR_TIME.match(time_text), COMPACT_TIME.match(time_text)
    marked = MARKED_TIME.match(time_text)
    if compact is not None and clock is None:
        said = f"{compact.group(1)}:{compact.group(2)}"
    elif marked is not None and clock is None:
        said = f"{int(marked.group(1)):02d}:{marked.group(2) or '00'}"
    elif match is not None and match.group(3) is not None:
        hour = int(match.group(1)) % 12 + (12 if match.group(3).lower() == "p" else 0)
        said = f"{hour:02d}:{match.group(2) or '00'}"
    else:
        return None
    if zone and canonical_timezone(zone) is None:
        zone = likely_zone(zone) or zone  # "Beijing": the zone that holds it, not a second wrong command
    command = f": /journal on {said} {zone}" if zone else f", e.g. /journal on {said} Europe/Lisbon"
    return TIME_AS_IT_IS.format(typed=time_text, time=said, command=command)


def hour_alone_error(time_text: str | None, timezone: str | None) -> str | None:
    """The reply to an hour typed alone ("9", "21"): the times it can be on a 24-hour clock (one past
    12, or 0, is one), each with its command; None for anything else."""
    typed, zone = as_typed_in_ascii(time_text).strip(), as_typed_in_ascii(timezone).strip()
    match = HOUR_ALONE.match(typed)
    if match is None:
        return None
    if zone and canonical_timezone(zone) is None:
        zone = likely_zone(zone) or misspelled_zone(zone) or zone
    hour = int(match.group(1))
    if hour == 0 or hour > 12:
        command = f": /journal on {hour:02d}:00 {zone}".rstrip()
        return TIME_AS_IT_IS.format(typed=typed, time=f"{hour:02d}:00", command=command)
    said = HOUR_EITHER.format(typed=typed, first=f"{hour:02d}:00", second=f"{(hour + 12) % 24:02d}:00", zone=zone)
    return said if zone else said.replace(" ,", ",").replace(" .", ".")  # the zone saved, or asked for next


def swapped_error(time_text: str | None, timezone: str | None) -> str | None:
    """The reply to a zone typed before the time ("Europe/Lisbon 21:30", "Tokyo 7:05"): the command
    in order, the zone as typed where it is one, else the city's; None for anything else."""
    zone, when = as_typed_in_ascii(time_text).strip(), parse_prompt_time(timezone or "")
    if when is None or not zone or parse_prompt_time(zone) is not None:
        return None
    named = zone if canonical_timezone(zone) is not None else likely_zone(zone)
    return None if named is None else TIME_FIRST.format(time=f"{when:%H:%M}", zone=named)


def on_left_out(args: str) -> str | None:
    """The reply to '/journal <time> [zone]' typed without 'on' ("21:30 Europe/Lisbon", "9pm
    Lisbon"): the command with it (whose own reply then reads the time and zone); None when the
    first word is no time."""
    first, rest = (as_typed_in_ascii(args).split(None, 1) + ["", ""])[:2]
    if parse_prompt_time(first) is None and misread_time_error(first, rest) is None:
        return None
    return ON_LEFT_OUT.format(typed=as_typed(args, ON_LEFT_OUT_CHARS))


def zone_as_named(text: str) -> str:
    """A zone or city as the IANA names spell it: ASCII letters (IANA names carry no accents:
    "São Paulo" is America/Sao_Paulo), underscores for spaces."""
    decomposed = unicodedata.normalize("NFKD", as_typed_in_ascii(text))
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return letters.strip().replace(" ", "_")


# Names in the zone folder that are no zone: Debian's tzdata (the image's too) links "localtime" to
# the machine's /etc/localtime, the server's clock, and tzdata's "Factory" is a placeholder ("-00").
NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@lru_cache(maxsize=1)
def all_timezones() -> tuple[str, ...]:
    return tuple(sorted(available_timezones() - NOT_ZONES))


def typed_offset(text: str) -> int | None:
    """The minutes east of UTC of an offset as people write it ("UTC+2", "+05:30", "-03"), or None."""
    match = OFFSET_RE.match(as_typed_in_ascii(text).strip())
    if match is None:
        return None
    hours, minutes, east = int(match.group(2)), int(match.group(3) or 0), match.group(1) == "+"
    total = hours * 60 + minutes
    if minutes >= 60 or total > (MAX_EAST_MINUTES if east else MAX_WEST_MINUTES):
        return None
    return total if east else -total


def offset_timezone(text: str) -> str | None:
    """The IANA zone of a whole-hour offset as people write it: "UTC+2" -> "Etc/GMT-2"."""
    minutes = typed_offset(text)
    if minutes is None or minutes % 60:
        return None
    if minutes == 0:
        return "UTC"
    return f"Etc/GMT{'-' if minutes > 0 else '+'}{abs(minutes) // 60}"


def offset_label(minutes: int) -> str:
    return f"UTC{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def zone_label(zone: str) -> str:
    """How a zone is shown: its name, except the Etc/GMT±N offsets, shown as UTC±HH:MM."""
    if not zone.startswith("Etc/GMT") or zone in ("Etc/GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0"):
        return zone
    offset = datetime.now(ZoneInfo(zone)).utcoffset() or timedelta(0)
    return offset_label(int(offset.total_seconds() // 60))


# tzdata's names of offsets that are no place's (each keeps one offset all year), with the summer
# time they lack and the zone of the place people who type them mostly mean. UTC's own names say
# nothing of a place: FIXED_OFFSET_NOTE. A place without daylight saving time (Asia/Tokyo, or its
# old name Japan) is no offset: it is that place's time all year.
_BRITISH = ("British Summer Time", "London", "Europe/London")
OFFSET_NAMES: dict[str, tuple[str, str, str] | None] = {
    **{name: _BRITISH for name in ("GMT", "GMT0", "GMT+0", "GMT-0", "Greenwich", "Etc/GMT", "Etc/GMT0",
                                   "Etc/GMT+0", "Etc/GMT-0", "Etc/Greenwich")},
    "EST": ("Eastern Daylight Time", "New York", "America/New_York"),
    "MST": ("Mountain Daylight Time", "Denver", "America/Denver"),
    "HST": ("Hawaii–Aleutian Daylight Time (Honolulu keeps HST all year: Pacific/Honolulu)", "Adak",
            "America/Adak"),
    **{name: None for name in ("UTC", "UCT", "Universal", "Zulu", "Etc/UTC", "Etc/UCT", "Etc/Universal",
                               "Etc/Zulu")},
}


# Time-zone abbreviations people type for a zone, and the places' zones they mean: one is suggested
# as a big city's is (DID_YOU_MEAN), several are the choices (ABBREVIATION_CHOICES). PST is no tzdata
# name, and the zones its letters begin were PST8PDT, tzdata's legacy rule, not the place. EST, MST
# and HST are tzdata's fixed offsets (OFFSET_NAMES); CET, MET, EET and WET are tzdata's zones of a
# region, taken, with REGION_NOTE naming the places.
_US_PACIFIC, _US_MOUNTAIN, _US_CENTRAL, _US_EASTERN = ("America/Los_Angeles",), ("America/Denver",), \
    ("America/Chicago",), ("America/New_York",)
_CENTRAL_EUROPE = ("Europe/Paris", "Europe/Berlin", "Europe/Madrid", "Europe/Rome")
_EASTERN_EUROPE = ("Europe/Athens", "Europe/Bucharest", "Europe/Helsinki", "Europe/Kyiv")
_WESTERN_EUROPE = ("Europe/Lisbon",)
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "PST": _US_PACIFIC, "PDT": _US_PACIFIC, "PT": _US_PACIFIC, "MDT": _US_MOUNTAIN, "MT": _US_MOUNTAIN,
    "CST": ("America/Chicago", "Asia/Shanghai"), "CDT": _US_CENTRAL, "CT": _US_CENTRAL, "EDT": _US_EASTERN,
    "ET": _US_EASTERN, "AKST": ("America/Anchorage",), "AKDT": ("America/Anchorage",), "HDT": ("America/Adak",),
    "AST": ("America/Halifax", "Asia/Riyadh"), "ADT": ("America/Halifax",), "NST": ("America/St_Johns",),
    "NDT": ("America/St_Johns",), "BRT": ("America/Sao_Paulo",), "ART": ("America/Argentina/Buenos_Aires",),
    "BST": ("Europe/London", "Asia/Dhaka"), "IST": ("Asia/Kolkata", "Europe/Dublin", "Asia/Jerusalem"),
    "WET": _WESTERN_EUROPE, "WEST": _WESTERN_EUROPE, "CET": _CENTRAL_EUROPE, "CEST": _CENTRAL_EUROPE,
    "MET": _CENTRAL_EUROPE, "MEST": _CENTRAL_EUROPE, "EET": _EASTERN_EUROPE, "EEST": _EASTERN_EUROPE,
    "MSK": ("Europe/Moscow",), "SAST": ("Africa/Johannesburg",), "WAT": ("Africa/Lagos",),
    "CAT": ("Africa/Maputo",), "EAT": ("Africa/Nairobi",), "PKT": ("Asia/Karachi",), "ICT": ("Asia/Bangkok",),
    "WIB": ("Asia/Jakarta",), "SGT": ("Asia/Singapore",), "HKT": ("Asia/Hong_Kong",), "PHT": ("Asia/Manila",),
    "JST": ("Asia/Tokyo",), "KST": ("Asia/Seoul",), "AWST": ("Australia/Perth",),
    "ACST": ("Australia/Adelaide", "Australia/Darwin"), "ACDT": ("Australia/Adelaide",),
    "AEST": ("Australia/Sydney", "Australia/Brisbane"), "AEDT": ("Australia/Sydney",),
    "NZST": ("Pacific/Auckland",), "NZDT": ("Pacific/Auckland",),
}
REGION_NAMES = frozenset({"CET", "MET", "EET", "WET"})  # tzdata zones of a region, taken as said
ABBREVIATION_CHOICES = ("{abbr} is the time of more than one place: {names}. Name yours: type one of them, "
                        "e.g. /journal on {time} {first}.")
REGION_NOTE = ("{label} is a region's time, not a place's: to keep your country's own clocks, name your zone "
               "instead, e.g. /journal on {time} {first}{others}.")
# tzdata's rule names that keep one place's clocks, whatever the tzdata release makes of them (a zone
# of its own, or a link to the place); the other old names (US/Pacific, Japan) are tzdata's links.
OLD_RULE_NAMES = {"PST8PDT": "America/Los_Angeles", "MST7MDT": "America/Denver", "CST6CDT": "America/Chicago",
                  "EST5EDT": "America/New_York"}


def abbreviation_zones(text: str) -> tuple[str, ...]:
    """The places' zones of a time-zone abbreviation as typed ("pst", "ＩＳＴ"); () for anything else."""
    return ABBREVIATIONS.get(as_typed_in_ascii(text).strip().upper(), ())


def abbreviation_choices(abbr: str, zones: tuple[str, ...], prompt_time: time) -> str:
    """What an abbreviation several places use is told: each of them, to pick from."""
    names = f"{', '.join(zones[:-1])} or {zones[-1]}"
    return ABBREVIATION_CHOICES.format(abbr=as_typed_in_ascii(abbr).strip().upper(), names=names,
                                       time=f"{prompt_time:%H:%M}", first=zones[0])


def region_note(zone: str, prompt_time: time) -> str:
    first, *others = ABBREVIATIONS[zone]
    return REGION_NOTE.format(label=zone, time=f"{prompt_time:%H:%M}", first=first,
                              others=f" (or {', '.join(others)})" if others else "")


@lru_cache(maxsize=1)
def legacy_names() -> dict[str, str]:
    """tzdata's old names of one place's zone ("US/Pacific" -> "America/Los_Angeles", "Japan" ->
    "Asia/Tokyo"), from its links (tzdata.zi), and its rule names (PST8PDT); not its names of an
    offset (OFFSET_NAMES) or of a region (CET)."""
    places = place_zones()
    try:
        text = resources.files("tzdata.zoneinfo").joinpath("tzdata.zi").read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):
        text = ""
    links = dict(OLD_RULE_NAMES)
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] == "L" and fields[1] in places:
            links.setdefault(fields[2], fields[1])
    return {name: zone for name, zone in links.items()
            if name not in places and name not in OFFSET_NAMES and name not in REGION_NAMES
            and not name.startswith("Etc/") and zone in places}


def is_fixed_offset(zone: str) -> bool:
    """A zone that is an offset, no place's clocks: UTC, Etc/GMT±N, GMT, EST…"""
    return zone.startswith("Etc/") or zone in OFFSET_NAMES


def fixed_offset_note(zone: str, prompt_time: time) -> str:
    """What a fixed offset is told: that it keeps no summer time, and the zone likely meant."""
    at, meant = f"{prompt_time:%H:%M}", OFFSET_NAMES.get(zone)
    if meant is None:
        return FIXED_OFFSET_NOTE.format(label=zone_label(zone), time=at)
    summer, city, place = meant
    return FIXED_NAME_NOTE.format(label=zone_label(zone), summer=summer, city=city, zone=place, time=at)


@lru_cache(maxsize=1)
def place_zones() -> frozenset[str]:
    """The zones of places, one per country's zone (tzdata's zone.tab): not the old names kept as
    links (Asia/Calcutta for Asia/Kolkata), which would name one place twice. Empty if unreadable."""
    try:
        table = resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):
        return frozenset()
    rows = (line.split("\t") for line in table.splitlines() if line and not line.startswith("#"))
    return frozenset(row[2] for row in rows if len(row) > 2)


@lru_cache(maxsize=2)
def zones_by_offset(day: date) -> dict[int, tuple[str, ...]]:
    """The places' zones by their offset in minutes at noon UTC on `day`: a zone's offset changes
    with daylight saving time (Adelaide is UTC+09:30 in July, UTC+10:30 in December)."""
    places = place_zones()
    noon = datetime.combine(day, time(12), tzinfo=timezone.utc)
    found: dict[int, list[str]] = {}
    for zone in all_timezones():
        if is_fixed_offset(zone) or (places and zone not in places):
            continue
        try:
            offset = noon.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        found.setdefault(int(offset.total_seconds() // 60), []).append(zone)
    return {minutes: tuple(zones) for minutes, zones in found.items()}


def no_such_offset_zone(minutes: int, prompt_time: time, day: date) -> str:
    """What an offset with minutes ("+05:30") is told: the zones at that offset on `day`."""
    label, at = offset_label(minutes), f"{prompt_time:%H:%M}"
    zones = zones_by_offset(day).get(minutes, ())
    if not zones:
        return NO_ZONE_AT_OFFSET.format(label=label, time=at)
    shown = list(zones[:OFFSET_ZONES_SHOWN]) + ([f"{len(zones) - OFFSET_ZONES_SHOWN} more"]
                                                if len(zones) > OFFSET_ZONES_SHOWN else [])
    names = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
    which = "it" if len(zones) == 1 else "one of them"
    return OFFSET_WITH_MINUTES.format(label=label, names=names, which=which, time=at, first=zones[0])


# Big cities whose zone is named after another (Beijing keeps Asia/Shanghai's time, Mumbai Asia/
# Kolkata's, San Francisco America/Los_Angeles'), as ZONE_MISSING invites people to type them: the
# world's most populous, and the ones most asked about. A city that is a zone's own last part
# (Paris, Lisbon, São Paulo) needs no row: `likely_zone` finds it among the zones.
CITY_ZONES: dict[str, str] = {
    # Asia
    "beijing": "Asia/Shanghai", "peking": "Asia/Shanghai", "guangzhou": "Asia/Shanghai",
    "shenzhen": "Asia/Shanghai", "chengdu": "Asia/Shanghai", "wuhan": "Asia/Shanghai",
    "chongqing": "Asia/Shanghai", "tianjin": "Asia/Shanghai", "hangzhou": "Asia/Shanghai",
    "nanjing": "Asia/Shanghai", "xian": "Asia/Shanghai", "mumbai": "Asia/Kolkata",
    "bombay": "Asia/Kolkata", "delhi": "Asia/Kolkata", "new_delhi": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata", "bengaluru": "Asia/Kolkata", "chennai": "Asia/Kolkata",
    "hyderabad": "Asia/Kolkata", "pune": "Asia/Kolkata", "ahmedabad": "Asia/Kolkata",
    "calcutta": "Asia/Kolkata", "osaka": "Asia/Tokyo", "kyoto": "Asia/Tokyo", "yokohama": "Asia/Tokyo",
    "busan": "Asia/Seoul", "hanoi": "Asia/Bangkok", "ho_chi_minh_city": "Asia/Ho_Chi_Minh",
    "saigon": "Asia/Ho_Chi_Minh", "lahore": "Asia/Karachi", "islamabad": "Asia/Karachi",
    "abu_dhabi": "Asia/Dubai", "mecca": "Asia/Riyadh", "jeddah": "Asia/Riyadh",
    "tel_aviv": "Asia/Jerusalem", "ankara": "Europe/Istanbul", "chittagong": "Asia/Dhaka",
    "surabaya": "Asia/Jakarta", "bandung": "Asia/Jakarta", "cebu": "Asia/Manila",
    # Europe
    "barcelona": "Europe/Madrid", "valencia": "Europe/Madrid", "seville": "Europe/Madrid",
    "munich": "Europe/Berlin", "munchen": "Europe/Berlin", "hamburg": "Europe/Berlin",
    "frankfurt": "Europe/Berlin", "cologne": "Europe/Berlin", "koln": "Europe/Berlin",
    "milan": "Europe/Rome", "milano": "Europe/Rome", "naples": "Europe/Rome", "florence": "Europe/Rome",
    "venice": "Europe/Rome", "porto": "Europe/Lisbon", "lyon": "Europe/Paris", "marseille": "Europe/Paris",
    "manchester": "Europe/London", "birmingham": "Europe/London", "edinburgh": "Europe/London",
    "glasgow": "Europe/London", "geneva": "Europe/Zurich", "krakow": "Europe/Warsaw",
    "saint_petersburg": "Europe/Moscow", "st_petersburg": "Europe/Moscow", "rotterdam": "Europe/Amsterdam",
    "the_hague": "Europe/Amsterdam", "antwerp": "Europe/Brussels", "gothenburg": "Europe/Stockholm",
    # The Americas
    "san_francisco": "America/Los_Angeles", "seattle": "America/Los_Angeles",
    "san_diego": "America/Los_Angeles", "las_vegas": "America/Los_Angeles",
    "portland": "America/Los_Angeles", "washington": "America/New_York", "boston": "America/New_York",
    "miami": "America/New_York", "atlanta": "America/New_York", "philadelphia": "America/New_York",
    "montreal": "America/Toronto", "ottawa": "America/Toronto", "houston": "America/Chicago",
    "dallas": "America/Chicago", "austin": "America/Chicago", "san_antonio": "America/Chicago",
    "new_orleans": "America/Chicago", "minneapolis": "America/Chicago", "salt_lake_city": "America/Denver",
    "calgary": "America/Edmonton", "rio_de_janeiro": "America/Sao_Paulo", "rio": "America/Sao_Paulo",
    "brasilia": "America/Sao_Paulo", "guadalajara": "America/Mexico_City",
    "monterrey": "America/Monterrey", "medellin": "America/Bogota", "quito": "America/Guayaquil",
    # Africa and Oceania
    "cape_town": "Africa/Johannesburg", "pretoria": "Africa/Johannesburg", "alexandria": "Africa/Cairo",
    "abuja": "Africa/Lagos", "kano": "Africa/Lagos", "kinshasa": "Africa/Kinshasa",
    "addis_ababa": "Africa/Addis_Ababa", "dar_es_salaam": "Africa/Dar_es_Salaam",
    "marrakech": "Africa/Casablanca", "canberra": "Australia/Sydney", "gold_coast": "Australia/Brisbane",
    "wellington": "Pacific/Auckland", "christchurch": "Pacific/Auckland", "honolulu": "Pacific/Honolulu",
}
DID_YOU_MEAN = "Did you mean {zone}? /journal on {time} {zone}"


def city_key(text: str) -> str:
    """A city or zone's last part as CITY_ZONES keys it: lower case, no accents ("München" ->
    "munchen"), underscores for spaces and hyphens."""
    return re.sub(r"[\s_\-]+", "_", zone_as_named(text).lower()).strip("_")


@lru_cache(maxsize=1)
def zones_by_last_part() -> dict[str, tuple[str, ...]]:
    """The places' zones by their last part, as city_key writes it: "paris" -> ("Europe/Paris",)."""
    places = place_zones()
    found: dict[str, list[str]] = {}
    for zone in all_timezones():
        if "/" in zone and not zone.startswith("Etc/") and (not places or zone in places):
            found.setdefault(city_key(zone.rsplit("/", 1)[-1]), []).append(zone)
    return {key: tuple(zones) for key, zones in found.items()}


def likely_zone(text: str) -> str | None:
    """The zone of a big city typed where a zone was asked for ("Beijing" -> "Asia/Shanghai"), or
    of the one zone whose last part it is ("paris" -> "Europe/Paris"); None for anything else. A
    city typed with its country or state after a comma ("Lisbon, Portugal") is the city."""
    key = city_key(as_typed_in_ascii(text).split(",")[0])
    if not key:
        return None
    if key in CITY_ZONES:
        return CITY_ZONES[key]
    zones = zones_by_last_part().get(key, ())
    return zones[0] if len(zones) == 1 else None


MISSPELLED_CUTOFF = 0.85  # difflib's ratio: "Lisbn" is 0.91 of "Lisbon"; "Atlantis" 0.8 of "Atlanta"


def misspelled_zone(text: str) -> str | None:
    """The zone a name a letter or two off spells ("Europe/Lisbn", "Chicgo"): the nearest zone's
    name, or with no "/", the nearest big city's or zone's last part. None when none is that near."""
    key = city_key(as_typed_in_ascii(text).split(",")[0])
    if not key:
        return None
    if "/" in key:
        zones = {city_key(zone): zone for zone in all_timezones() if "/" in zone and not zone.startswith("Etc/")}
        near = difflib.get_close_matches(key, zones, n=1, cutoff=MISSPELLED_CUTOFF)
        return legacy_names().get(zones[near[0]], zones[near[0]]) if near else None
    last_parts = {part: zones[0] for part, zones in zones_by_last_part().items() if len(zones) == 1}
    places = {**last_parts, **CITY_ZONES}
    near = difflib.get_close_matches(key, places, n=1, cutoff=MISSPELLED_CUTOFF)
    return places[near[0]] if near else None


def canonical_timezone(name: str) -> str | None:
    """The IANA name the user meant ("europe/lisbon" -> "Europe/Lisbon", "UTC+2" -> "Etc/GMT-2"), or None."""
    if (offset := offset_timezone(name)) is not None:
        return offset
    wanted = zone_as_named(name)
    by_lower = {z.lower(): z for z in all_timezones()}
    found = by_lower.get(wanted.lower())
    if found is None:
        return None
    found = legacy_names().get(found, found)  # "US/Pacific", "PST8PDT": the place's own zone
    try:
        ZoneInfo(found)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return found


def split_answer(text: str, is_song: Callable[[str], bool] | None = None) -> tuple[str, str]:
    """A journal reply is a song (name or link) optionally followed by the user's own words.
    A link anywhere is the song and the rest is the note; otherwise the first line is the song.
    `is_song` given, only a song's link is (`song_read`): a link to no song (the lyrics, a photo)
    after a first line holding none is the user's words, that line the song; one on the first line
    is still the song, refused for what it is.
    Another music app's share text before its link (`share_text_start`) is the song's, with it.
    A link's host written with full-width full stops ("youtube。com") is read as a browser reads it;
    the note keeps them as typed ("Muse。AC/DC" is no host): `hosts_dotted` puts a dot for each
    stop, so the link is found in a copy at the same places as in what the user typed."""
    text = (text or "").strip()
    dotted = hosts_dotted(text)
    first = chosen = None
    since = 0  # where the link before ended: a share text holds no link (each link's looked for once)
    for link in itertools.islice(URL_RE.finditer(dotted), LINKS_TRIED):
        found = (link, *_link_at(text, dotted, link, since))
        first, since = first or found, link.end()
        if is_song is None or is_song(found[2]):
            chosen = found
            break
    first_line_end = len(text) if "\n" not in text else text.index("\n")
    if chosen is None and first is not None and first[1] < first_line_end:  # no song's link; one on the first line
        chosen = first
    if chosen is not None:
        link, start, url = chosen
        edge = string.whitespace + FULL_WIDTH_PUNCTUATION  # what sat against the link, as a space would
        # The words' own lines kept, as after a song's name: only the link's gap is one space.
        return url, (text[:start].rstrip(edge) + " " + text[link.end():].lstrip(edge)).strip()
    first, _, rest = text.partition("\n")
    return first.strip(), rest.strip()


def _link_at(text: str, dotted: str, link: re.Match, since: int = 0) -> tuple[int, str]:
    """Where the link `link` (found in `dotted`, `text`'s copy) starts, what wraps it included, and
    the song it stands for as typed: with another music app's share text before it, after `since`."""
    # Discord's markdown around it (__link__, ~~link~~): the marks after it as many as before it.
    start, url = marked_link(dotted, link, LINK_CLOSERS)
    while start > 0 and text[start - 1] in LINK_WRAPPERS + MARKDOWN_MARKS:
        start -= 1
    # Shazam's "I used Shazam to discover …"
    if start > since and (shared := share_text_start(text[since:start], url)) is not None:
        url, start = f"{text[since + shared:start].strip()} {url}", since + shared
    return start, url


def song_of(query: Query) -> str | None:
    """The song a read link stands for, the same whatever link of it was typed (a YouTube link's
    moment, `youtu.be` or `youtube.com`: its canonical link); None for no song's link (a name typed)."""
    if query.link_service:  # another service's, never opened: the name it gives
        return f"{query.link_service}: {query.text}"
    return None if query.kind is QueryKind.TEXT else query.url


def other_songs(song: str | None, note: str, parse: Callable[[str], Query]) -> int:
    """How many songs other than `song` (what the entry keeps; None: a file) the links in `note`
    stand for, as /mood would read each (`parse`): a link to no song (an album, lyrics, a site) is
    none, nor is the kept song's own link again. Words naming a song are the user's own: never counted."""
    kept = song_read(song, parse) if song else None
    links = (link_in(word.group()) for word in WORD_RE.finditer(hosts_dotted(note)))
    return len({found for link in links if link and (found := song_read(link, parse)) is not None} - {kept})


def song_read(text: str, parse: Callable[[str], Query]) -> str | None:
    """The song a link stands for as /mood reads it (`parse`, `song_of`); None for a link to no song
    (refused: lyrics, a site, an album) and for a name typed."""
    try:
        return song_of(parse(text))
    except SourceError:
        return None


def words_for_a_song(song: str, platform: str, parse: Callable[[str], Query]) -> str | None:
    """What to say of an answer's song that is a line longer than a search takes (`Query.cut`) with
    no link in it (`LONG_FIRST_LINE`): the user's words, typed on the song's line. None otherwise."""
    try:
        query = parse(song)
    except SourceError:
        return None  # refused as /mood refuses it, when heard
    if query.kind is not QueryKind.TEXT or query.link_service or not query.cut:
        return None
    return (LONG_FIRST_LINE_CONSOLE if platform == "console" else LONG_FIRST_LINE).format(chars=len(song),
                                                                                          most=MAX_TEXT_CHARS)


def dating_zone(zone: str) -> ZoneInfo:
    """The zone a user's dates are told in: their saved one, or UTC's when this machine's zone
    database lacks it (saved under a newer tzdata), as for a user who saved none; the scheduler
    logs such a zone at start."""
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def prompt_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The instant, in UTC, of the daily prompt at local time `at` on `day`: the scheduler's
    (`DailyAt.fire_time`) and /journal on's word on it (`_next_prompt`). fold=0: the first of a
    time the clocks repeat; a time they skip keeps the offset from before the change, so it comes
    as much later (02:30 at 03:30)."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(timezone.utc)


def local_today(zone: str, now: datetime) -> date:
    return now.astimezone(dating_zone(zone)).date()


def local_now(user: User | None, now: datetime) -> datetime:
    """`now` on the user's clock: in their saved zone, UTC's for a user who saved none."""
    return now.astimezone(dating_zone(user.timezone if user is not None else "UTC"))


def summary_text(total: int, current: int, longest: int, moods: Counter) -> str:
    days = lambda n: f"{n} day" + ("" if n == 1 else "s")  # noqa: E731
    lines = [f"{total} journal entr{'y' if total == 1 else 'ies'} — current streak {days(current)}, longest {days(longest)}."]
    if moods:
        count = max(moods.values())
        top = [m for m in MOODS if moods.get(m, 0) == count]  # a tie names them all, not the first counted
        share = ", ".join(f"{m} {moods.get(m, 0)}" for m in MOODS)
        if len(top) == 1:
            lines.append(f"Your most frequent mood: {top[0]} ({count} of {sum(moods.values())}). All: {share}.")
        else:
            names = f"{', '.join(top[:-1])} and {top[-1]}"
            lines.append(f"Your most frequent moods: {names} ({count} each of {sum(moods.values())}). All: {share}.")
    return "\n".join(lines)


def prompt_at(user: User | None) -> str | None:
    """When the daily prompt comes, e.g. "21:30 (Europe/Lisbon)"; None when prompts are off."""
    if user is None or not user.journal_enabled or user.prompt_time is None:
        return None
    return f"{user.prompt_time:%H:%M} ({zone_label(user.timezone)})"


def no_song_answer(song: str, user: User | None) -> str | None:
    """What to say of a prompt's answer that is no song: a word for none ("skip", "I don't know"),
    or no word at all (an emoji, "..."). None for anything else, which is looked up."""
    typed = as_typed(song, ANSWER_TYPED_CHARS)
    at = prompt_at(user) or "your usual time"
    if not any(unicodedata.category(c)[0] in "LN" for c in song):
        return NOT_A_SONG_NAME.format(typed=typed, at=at)
    words = " ".join(song.replace("\u2019", "'").lower().split()).strip(".!…")
    return NO_SONG_TODAY.format(typed=typed, at=at) if words in SKIP_ANSWERS else None


def refused_answer(caller: Caller, error: Exception) -> ErrorReply:
    """The error a journal answer gets, logged as a refused /mood is: why, and whose, but not what
    they typed (a song's name, quoted in the reason) nor their note."""
    log.info("journal.answer_refused", extra={"user": caller.user_id, "error": type(error).__name__,
                                              "reason": refusal_reason(error)})
    return ErrorReply(str(error), quoted=getattr(error, "quoted", ()))


class JournalUseCase:
    def __init__(
        self,
        db,
        mood: MoodUseCase,
        *,
        writer: JournalWriter | None = None,
        schedule: PromptSchedule | None = None,
        limits: HeavyLimits | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.db = db
        self.mood = mood
        self.limits = limits or HeavyLimits()
        self.writer = writer
        self.schedule: PromptSchedule = schedule or NoSchedule()
        self.now = now
        self._open: OrderedDict[str, OpenPrompt] = OrderedDict()
        # Users with an answer under way (heard, then saved): their "/journal delete last" waits for it.
        self._answering: Counter[UserRef] = Counter()
        # Users whose prompts stopped unasked and who were not told yet; None until read from the
        # database (once, at the first command): each command or message checks it.
        self._paused: set[UserRef] | None = None
        # Users whose /journal on is withdrawing a failed prompt's record (`enable`): another
        # /journal on of theirs reads the day's prompt once it is done.
        self._withdrawing: weakref.WeakValueDictionary[UserRef, asyncio.Lock] = weakref.WeakValueDictionary()
        # The failed prompt (known not to have arrived) whose withdrawal the database refused to
        # /journal on: withdrawn at the user's next /journal on or delivery (`withdraw_unsent`).
        self._unsent: dict[UserRef, str] = {}

    # ---- opting in and out -------------------------------------------------------------------
    async def enable(self, caller: Caller, time_text: str | None = None,
                     timezone: str | None = None) -> TextReply | ErrorReply:
        """/journal on [HH:MM [zone]]: a time or zone left out is the one saved (/journal off, or
        prompts stopped because the user could not be reached, keep them)."""
        if time_text and not (timezone or "").strip() and parse_prompt_time(time_text) is None and (
                canonical_timezone(time_text) or likely_zone(time_text)) is not None:
            time_text, timezone = None, time_text  # a zone typed alone ('/journal on Asia/Tokyo'): the time left out
        if (misread := misread_time_error(time_text, timezone) or swapped_error(time_text, timezone)
                or hour_alone_error(time_text, timezone)) is not None:
            return ErrorReply(misread)
        if not (time_text or "").strip() or not (timezone or "").strip():
            try:
                saved = await self.db.users.get(UserRef(caller.platform, caller.user_id))
            except StorageError as error:
                return ErrorReply(str(error))
            if saved is None or saved.prompt_time is None:  # nothing chosen yet: every user has "UTC"
                understood = parse_prompt_time(time_text or "")
                if understood is not None and not (timezone or "").strip():
                    return ErrorReply(ZONE_MISSING.format(time=f"{understood:%H:%M}"))
                zone = canonical_timezone(timezone or "") or likely_zone(timezone or "")
                if not (time_text or "").strip() and zone is not None:
                    return ErrorReply(TIME_MISSING.format(zone=zone))
                return ErrorReply(JOURNAL_ON_USAGE)
            time_text = (time_text or "").strip() or f"{saved.prompt_time:%H:%M}"
            timezone = (timezone or "").strip() or saved.timezone
        prompt_time = parse_prompt_time(time_text)
        if prompt_time is None or TWELVE_HOUR_CLOCK.match(as_typed_in_ascii(timezone)):
            return ErrorReply(TIME_ERROR)  # "7:00 pm Europe/Lisbon": the time's fault, not the zone's
        zone = canonical_timezone(timezone)
        if zone is None and (minutes := typed_offset(timezone)) is not None:  # whole hours have their Etc zone
            return ErrorReply(no_such_offset_zone(minutes, prompt_time, self.now().date()))
        if zone is None and len(meant_zones := abbreviation_zones(timezone)) > 1:  # IST: India, Ireland, Israel
            return ErrorReply(abbreviation_choices(timezone, meant_zones, prompt_time))
        if zone is None and meant_zones:  # PST: a suggestion, as a big city's
            return ErrorReply(DID_YOU_MEAN.format(zone=meant_zones[0], time=f"{prompt_time:%H:%M}"))
        # A big city, or a zone misspelled: a suggestion, not taken as said.
        if zone is None and (meant := likely_zone(timezone) or misspelled_zone(timezone)) is not None:
            return ErrorReply(DID_YOU_MEAN.format(zone=meant, time=f"{prompt_time:%H:%M}"))
        if zone is None:
            suggestions = self.timezones(timezone.split("/")[-1] if timezone else "", limit=3)
            examples = ", ".join(suggestions or EXAMPLE_ZONES)
            return ErrorReply(f"I don't know the time zone “{as_typed(timezone, ZONE_LABEL_CHARS)}”. "
                              f"Use an IANA name such as {examples}, "
                              "or a whole-hour offset such as UTC+2.")
        ref = UserRef(caller.platform, caller.user_id)
        chat_id = caller.chat_id or caller.user_id
        try:
            # set_at: a prompt time already past today is not sent late (NEXT_PROMPT_TOMORROW says so).
            await self.db.users.set_journal(ref, enabled=True, prompt_time=prompt_time, timezone=zone, chat_id=chat_id,
                                            set_at=self.now())
        except StorageError as error:
            return ErrorReply(str(error))
        self.schedule.schedule(User(caller.platform, caller.user_id, timezone=zone, prompt_time=prompt_time,
                                    journal_enabled=True, chat_id=chat_id))
        # Taken before anything is awaited after `schedule`: a second /journal on said meanwhile
        # waits for this one's withdrawal before it reads the day's prompt. It read the record about
        # to go as the day's ("tomorrow at 21:00: today's was sent already"), and 21:00 sent one.
        withdrawing = self._withdrawing.setdefault(ref, asyncio.Lock())
        async with withdrawing:
            if (unsent := self.schedule.cancelled_unsent(ref)) is not None:
                # The old time's failed prompt, known not to have arrived, whose record the database
                # kept and whose retry the new time cancelled: withdrawn first, as that retry would
                # have, or it stood for the day's prompt ("today's was sent already") and none came.
                self._unsent[ref] = unsent
            try:
                await self.withdraw_unsent(ref)
            except StorageError as error:
                log.warning("journal.prompt_not_withdrawn", extra={"user": caller.user_id, "reason": str(error)})
            # Refused again, it is withdrawn before the user's next prompt is made (the scheduler's
            # `deliver`): the reply does not count it as the day's. Until 2026-12-07 it stayed the
            # day's, "today's was sent already", and none came that day, though none had arrived.
            unsent = self.unsent_prompt(ref)
        log.info("journal.enabled", extra={"user": caller.user_id, "tz": zone, "at": prompt_time.strftime("%H:%M")})
        note = (" " + fixed_offset_note(zone, prompt_time) if is_fixed_offset(zone)
                else " " + region_note(zone, prompt_time) if zone in REGION_NAMES else "")
        when = await self._next_prompt(ref, prompt_time, zone, besides=unsent)
        return TextReply(f"Journal on: every day at {prompt_time:%H:%M} ({zone_label(zone)}) I'll send you a moment of your day "
                         f"to answer with a song. {when} /journal off stops it.{note}")

    async def _next_prompt(self, ref: UserRef, prompt_time: time, zone: str, *, named: bool = False,
                           besides: str | None = None) -> str:
        """When the next daily prompt comes, on the user's clock: today's, unless its time has
        passed there or it was sent already (the scheduler sends one a day). `named`: the time
        with its zone, "21:30 (Europe/Lisbon)", where the reply names it nowhere else. `besides`: a
        prompt recorded but never arrived, which the next delivery withdraws first (`_unsent`)."""
        here = dating_zone(zone)
        now = self.now().astimezone(here)
        named_as = (lambda t: f"{t:%H:%M} ({zone_label(zone)})") if named else (lambda t: f"{t:%H:%M}")
        at = named_as(prompt_time)
        try:
            sent = await self.db.prompts.sent_for(ref, now.date(), besides=besides)
        except StorageError:
            sent = False  # said as the scheduler will find it, most likely
        if sent:  # first: "/journal prompt sends today's now" would send a second
            return NEXT_PROMPT_SENT.format(at=at)
        # The instant the scheduler fires today's prompt at, which `set_past_its_time` holds /journal
        # on against: on a night the clocks change, not the wall clock's. In UTC: the same zone's two
        # times compare and subtract as wall clocks, an hour out across the change.
        fire = prompt_instant(now.date(), prompt_time, here)
        if now.astimezone(timezone.utc) >= fire:
            if now.time().replace(tzinfo=None) < prompt_time:  # a repeated hour, the second time round
                return NEXT_PROMPT_TOMORROW_REPEATED.format(now=f"{now:%H:%M}", at=at)
            return NEXT_PROMPT_TOMORROW.format(now=f"{now:%H:%M}", at=at)
        minutes = max(1, round((fire - now.astimezone(timezone.utc)).total_seconds() / 60))
        hours, minutes = divmod(minutes, 60)
        wait = " ".join(part for part in (f"{hours} h" if hours else "", f"{minutes} min" if minutes else "") if part)
        if (fires_at := fire.astimezone(here).time()) != prompt_time:  # skipped: it comes as much later
            return NEXT_PROMPT_TODAY_SKIPPED.format(fire=named_as(fires_at), wait=wait, at=f"{prompt_time:%H:%M}")
        return NEXT_PROMPT_TODAY.format(at=at, wait=wait)

    async def status(self, caller: Caller, *, how: str | None = None) -> TextReply | None:
        """'/journal' alone: whether the daily prompts come, and when (or when they would again); None
        when the database can't say (the usage is said alone). `how`: how a prompt is answered where
        the caller asked (TODAY_BY_REPLY…); given, the journal on, a line on today's prompt follows
        (`_today`), which may quote its song's name."""
        ref = UserRef(caller.platform, caller.user_id)
        try:
            user = await self.db.users.get(ref)
        except StorageError:
            return None
        if (at := prompt_at(user)) is not None:
            today = None if how is None else await self._today(ref, user, how)
            on = JOURNAL_IS_ON.format(at=at)
            return replace(today, text=f"{on}\n{today.text}") if today else TextReply(on)
        if user is not None and user.prompt_time is not None and user.timezone:
            return TextReply(JOURNAL_IS_OFF_AT.format(at=f"{user.prompt_time:%H:%M} ({zone_label(user.timezone)})"))
        return TextReply(JOURNAL_IS_OFF)

    async def _today(self, ref: UserRef, user: User, how: str) -> TextReply | None:
        """Today's prompt (the latest, as a message answers it, when it is of the user's today):
        open, answered (with its entry's song, stored or waiting in the outbox: its name quoted), or
        when the next comes (`_next_prompt`). None when the database can't say."""
        now = self.now()
        # A failed prompt whose withdrawal the database refused (`_unsent`) never arrived: not
        # today's, as /journal on said ("today at 20:00"). Read as such, it was "open: answer it".
        unsent = self.unsent_prompt(ref)
        try:
            sent = await self.db.prompts.latest(ref, since=now - timedelta(days=ANSWER_DAYS))
            if sent is None or sent.local_date != local_today(user.timezone, now) or (
                    sent.prompt_id == unsent and sent.answered_at is None):
                return TextReply(await self._next_prompt(ref, user.prompt_time, user.timezone, besides=unsent))
            entries = [*await self.db.journal.on_day(ref, sent.local_date), *await self._queued(ref)]
        except StorageError:
            return None
        entry = next((entry for entry in entries if entry.prompt_id == sent.prompt_id), None)
        if entry is not None:
            return TextReply(TODAY_ANSWERED.format(song=entry.track_title), quoted=(entry.track_title,))
        return TextReply(TODAY_OPEN.format(how=how) if sent.answered_at is None else TODAY_ANSWERED_UNNAMED)

    async def disable(self, caller: Caller) -> TextReply:
        ref = UserRef(caller.platform, caller.user_id)
        # A failed prompt's record the retry was to withdraw is kept for the next /journal on.
        self.schedule.unschedule(ref, keep_unsent=True)
        self.forget_open(ref)  # nor answered from memory with the database down
        try:
            user = await self.db.users.get(ref)
            if user is not None:
                # Only the settings still there: a /forget since the read deleted them for good.
                await self.db.users.set_journal(ref, enabled=False, prompt_time=user.prompt_time,
                                                timezone=user.timezone, chat_id=user.chat_id, create=False)
        except StorageError as error:
            log.warning("journal.disable_not_saved", extra={"user": caller.user_id, "reason": str(error)})
            return TextReply("Journal off for now — I couldn't reach the database, so say /journal off again later "
                             "to make it stick.")
        log.info("journal.disabled", extra={"user": caller.user_id})
        return TextReply("Journal off: no more daily prompts. Your entries are kept; /forget deletes them.")

    async def stop_unreachable(self, ref: UserRef) -> None:
        """The platform refuses the user's prompts for good (a blocked bot, closed DMs): the
        prompts stop, the time and zone and entries are kept, and the reason is recorded so the
        user is told (`pause_notice`) when they are back."""
        self.schedule.unschedule(ref)
        self.forget_open(ref)
        try:
            user = await self.db.users.get(ref)
            if user is None:  # /forget meanwhile
                return
            await self.db.users.set_journal(ref, enabled=False, prompt_time=user.prompt_time, timezone=user.timezone,
                                            chat_id=user.chat_id, paused=UNREACHABLE, create=False)
        except StorageError as error:
            log.warning("journal.stop_not_saved", extra={"user": ref.user_id, "reason": str(error)})
            return
        if self._paused is not None:
            self._paused.add(ref)
        log.info("journal.stopped_unreachable", extra={"user": ref.user_id})

    async def pause_notice(self, caller: Caller) -> str | None:
        """Once, on the first command or message after the caller's prompts stopped because they
        could not be reached: why, and how to turn them on again. None otherwise (one look in a
        set for everyone else)."""
        ref = UserRef(caller.platform, caller.user_id)
        if not await self._may_be_paused(ref):
            return None
        try:
            user = await self.db.users.get(ref)
            told = (user is not None and user.journal_paused == UNREACHABLE and not user.journal_enabled
                    and await self.db.users.clear_pause(ref))  # False: a message at the same time told them
        except StorageError as error:  # told at the next command
            log.warning("journal.pause_notice_failed", extra={"user": caller.user_id, "reason": str(error)})
            return None
        self._paused.discard(ref)
        if not told:
            return None
        when = f"{user.prompt_time:%H:%M} ({zone_label(user.timezone)})" if user.prompt_time else "your time"
        return PROMPTS_STOPPED_UNREACHABLE.format(when=when)

    async def _may_be_paused(self, ref: UserRef) -> bool:
        if self._paused is None:
            try:
                self._paused = set(await self.db.users.paused_users())
            except StorageError:
                return False  # read again at the next command
        return ref in self._paused

    # ---- prompts -----------------------------------------------------------------------------
    async def make_prompt(self, user: User, day: date | None = None, *,
                          erasures: int | None = None) -> PromptMessage | None:
        """Picks a phrase this user hasn't seen for NO_REPEAT_DAYS, records it as sent for `day`
        (today, local, unless a missed prompt is caught up), returns it. None when the user ran
        /forget meanwhile (since `erasures` was read, by the caller before it read `user`): the
        record written after the deletion is withdrawn and nothing is to be sent."""
        seen = self.db.privacy.erasures(user.ref) if erasures is None else erasures
        now = self.now()
        recent = await self.db.prompts.recent_phrases(user.ref, now - timedelta(days=NO_REPEAT_DAYS))
        phrase = pick_phrase(recent, hour=local_now(user, now).hour)  # none of tonight's in the morning
        prompt_id = uuid.uuid4().hex
        chat_id = user.chat_id or user.user_id
        local = day or local_today(user.timezone, now)
        await self.db.prompts.record_sent(user.ref, prompt_id, phrase, local, now, chat_id, None, sending=True)
        if self.db.privacy.erasures(user.ref) != seen:
            log.info("journal.prompt_dropped_after_forget", extra={"user": user.user_id})
            await self.db.prompts.withdraw(prompt_id)
            return None
        self._remember(OpenPrompt(prompt_id, user.ref, phrase, local, now, chat_id, erasures=seen))
        return PromptMessage(user.platform, user.user_id, chat_id, prompt_id, phrase)

    async def prompt_now(self, caller: Caller) -> TextReply | ErrorReply:
        """/journal prompt: today's prompt now, through the scheduler (which records and sends it)."""
        ref = UserRef(caller.platform, caller.user_id)
        try:
            user = await self.db.users.get(ref)
        except StorageError as error:
            return ErrorReply(str(error))
        if user is None or not user.journal_enabled:
            return ErrorReply(JOURNAL_OFF)
        try:
            sent = await self.schedule.fire_now(ref)
        except RecipientGone:  # the platform refuses the user: they have something to allow
            return ErrorReply(PROMPT_NOT_SENT)
        except SenderRefused:  # the platform refuses the bot: asking again in a few minutes won't help
            return ErrorReply(PROMPT_REFUSED_TO_THE_BOT)
        if sent is None:  # the scheduler logged why
            return ErrorReply(PROMPT_NOT_SENT_NOW)
        return TextReply(PROMPT_SENT)

    async def prompt_not_delivered(self, prompt_id: str) -> None:
        """The prompt never reached the user: it is not the day's prompt, nor open to answers."""
        self._open.pop(prompt_id, None)
        await self.db.prompts.withdraw(prompt_id)

    async def withdraw_unsent(self, ref: UserRef) -> None:
        """Withdraws the user's failed prompt whose withdrawal the database refused to /journal on
        (`_unsent`), if any: /journal on and the scheduler's `deliver` call this before they read the
        day's prompt, which its record would otherwise stand for. Raises StorageError, the prompt
        still to withdraw, when the database refuses it again."""
        prompt_id = self._unsent.get(ref)
        if prompt_id is None:
            return
        await self.prompt_not_delivered(prompt_id)
        if self._unsent.get(ref) == prompt_id:
            del self._unsent[ref]

    def unsent_prompt(self, ref: UserRef) -> str | None:
        """The user's failed prompt still to withdraw (`withdraw_unsent`), else None."""
        return self._unsent.get(ref)

    def forget_unsent(self, ref: UserRef) -> None:
        """/forget: the user's prompts are deleted, and no failed prompt of theirs is kept to withdraw."""
        self._unsent.pop(ref, None)

    async def prompt_delivered(self, prompt_id: str, message_id: str | None) -> None:
        """The prompt arrived, as the platform's message `message_id` (None: it named none): noted,
        so that a restart does not take it for one whose send was cut short (`SentPrompt.sending`)."""
        known = self._open.get(prompt_id)
        if known is not None and message_id is not None:
            self._remember(replace(known, message_id=str(message_id)))
        await self.db.prompts.set_message_id(prompt_id, None if message_id is None else str(message_id))

    async def claim_prompt_message(self, caller: Caller, chat_id: str, message_id: str,
                                   shows: Callable[[str], bool]) -> bool:
        """Whether the message `message_id` is the caller's open prompt whose send timed out (its
        platform id never came back): their newest open prompt of the last ANSWER_DAYS, without a
        message id, sent to `chat_id`, whose phrase the message `shows`. If so the id is recorded,
        and the message is answered as any prompt. A reply is the only way to answer on Telegram:
        without this, the prompt on the user's screen could not be answered."""
        ref = UserRef(caller.platform, caller.user_id)
        try:
            sent = await self.db.prompts.latest_open(ref, since=self.now() - timedelta(days=ANSWER_DAYS))
            if (sent is None or sent.message_id is not None or sent.chat_id != str(chat_id)
                    or not shows(sent.phrase)):
                return False
            await self.prompt_delivered(sent.prompt_id, message_id)
        except StorageError as error:
            log.warning("journal.prompt_not_claimed", extra={"user": caller.user_id, "reason": str(error)})
            return False
        log.info("journal.unconfirmed_prompt_found", extra={"user": caller.user_id})
        return True

    async def is_prompt_message(self, platform: str, chat_id: str, message_id: str) -> bool | None:
        """Whether the message is a prompt; None (falsy) where the database, down, cannot say of one
        not held in memory."""
        if self._memory_by_message(platform, str(chat_id), str(message_id)) is not None:
            return True
        try:
            return await self.db.prompts.find_by_message(platform, str(chat_id), str(message_id)) is not None
        except StorageError:
            return None

    async def saved_from(self, caller: Caller, message_id: str) -> bool:
        """Whether the caller's message `message_id` answered a prompt and made an entry (kept, or
        waiting in the outbox): a front-end that no longer remembers it (a restart) still knows an
        edit of it for an answer's (EDITED_ANSWER). False where it cannot be told."""
        ref = UserRef(caller.platform, caller.user_id)
        return await self._saved_from(ref, answer_key(caller, message_id), True) is not None

    async def awaiting_answers(self, platform: str, limit: int) -> list[SentPrompt]:
        """Each user's newest prompt on `platform` from the last ANSWER_DAYS, if still open: whom an
        answer may have come from while the bot could not hear it (a Discord DM sent while it was
        offline, which Discord does not replay). Newest first, at most `limit`. With the database
        down, those held in memory (logged): an answer to one of them is queued in the outbox."""
        since = self.now() - timedelta(days=ANSWER_DAYS)
        try:
            open_ = await self.db.prompts.open_since(since, OPEN_PROMPTS_MAX)
            answered = await self.db.prompts.answered_since(since, OPEN_PROMPTS_MAX)
        except StorageError as error:
            log.warning("journal.awaiting_from_memory", extra={"platform": platform, "reason": str(error)})
            open_, answered = self._memory_since(platform, since), []
        latest: dict[UserRef, SentPrompt] = {}
        for p in open_ + answered:
            if p.user.platform == platform and (p.user not in latest or p.sent_at > latest[p.user].sent_at):
                latest[p.user] = p
        waiting = sorted((p for p in latest.values() if p.answered_at is None and p.chat_id is not None),
                         key=lambda p: p.sent_at, reverse=True)
        return waiting[:limit]

    def _memory_since(self, platform: str, since: datetime) -> list[SentPrompt]:
        """The prompts on `platform` held in memory, sent at or after `since`, as the database
        keeps them (answered or not), but those of a user who ran /forget since."""
        return [SentPrompt(p.ref, p.prompt_id, p.phrase, p.local_date, p.sent_at, p.chat_id, p.message_id,
                           answered_at=p.sent_at if p.answered else None)
                for p in self._open.values()
                if p.ref.platform == platform and p.sent_at >= since
                and p.erasures == self.db.privacy.erasures(p.ref)]

    def timezones(self, prefix: str, limit: int = 25) -> list[str]:
        """IANA names for autocomplete: names starting with the text first, then any containing it."""
        minutes = typed_offset(prefix)
        if minutes is not None:  # its Etc zone; with minutes (no Etc zone), the places keeping it today
            return [offset_timezone(prefix)] if minutes % 60 == 0 else list(
                zones_by_offset(self.now().date()).get(minutes, ()))[:limit]
        wanted = zone_as_named(prefix).lower()
        # A big city named after no zone ("Beijing"), or a zone's last part as typed ("new-york"),
        # offers its zone first.
        # A time-zone abbreviation ("PST") offers its places' zones first (a region's own tzdata
        # name, CET, before them: it is taken as typed).
        key, meant = city_key(prefix), likely_zone(prefix)
        abbreviated = abbreviation_zones(prefix)
        region = [z for z in REGION_NAMES if z.lower() == wanted]
        cities = list(dict.fromkeys(region + list(abbreviated) + [meant] * (meant is not None)
                                    + [z for city, z in CITY_ZONES.items() if key and city.startswith(key)]))
        # Etc/GMT+2 is UTC-2: never offered to someone typing "GMT+2" (who gets the line above).
        zones = [z for z in all_timezones() if not z.startswith("Etc/GMT")]
        starts = [z for z in zones if z.lower().startswith(wanted)]
        parts = [z for z in zones if z not in starts and any(p.startswith(wanted) for p in z.lower().split("/"))]
        # An old name ("US/Pacific", "PST8PDT") is offered as the place's zone it is saved as.
        old = legacy_names()
        return list(dict.fromkeys(cities + [old.get(z, z) for z in starts + parts]))[:limit]

    async def not_saved_notice(self, caller: Caller, how: str) -> str | None:
        """What a song's mood told where the caller's prompts come (never in a server or group)
        adds while their prompt of today (their local date) is open and their journal on: that the
        song went to no journal, and `how` to answer the prompt with it (ANSWER_BY_REPLY…). None
        otherwise, and when it can't be told (the database down): the mood is answered as ever."""
        ref = UserRef(caller.platform, caller.user_id)
        now = self.now()
        try:
            user = await self.db.users.get(ref)
            if user is None or not user.journal_enabled:
                return None
            sent = await self.db.prompts.latest(ref, since=now - timedelta(days=ANSWER_DAYS))
        except StorageError as error:
            log.warning("journal.open_prompt_unknown", extra={"user": caller.user_id, "reason": str(error)})
            return None
        if sent is None or sent.answered_at is not None or sent.local_date != local_today(user.timezone, now):
            return None
        return NOT_SAVED_TO_JOURNAL.format(how=how)

    # ---- answering ---------------------------------------------------------------------------
    @staticmethod
    def _no_prompt_message(user: User | None, *, answered: PromptAlreadyAnswered | None = None) -> str:
        """Why there is nothing to answer: the journal is off, there is no prompt of the last
        ANSWER_DAYS, or (`answered`) the latest has its song."""
        when = prompt_at(user)
        if when is None and user is not None and user.prompt_time is not None:  # turned off
            return JOURNAL_OFF_ANSWER.format(when=f"{user.prompt_time:%H:%M} ({zone_label(user.timezone)})",
                                             hint=NOT_A_JOURNAL_ANSWER)
        if when is None:
            return NO_PROMPT_ERROR
        opening = str(answered) if answered is not None else "There's no open journal prompt to answer."
        return f"{opening} {next_prompt_text(when)} {NOT_A_JOURNAL_ANSWER}"

    async def answer(self, caller: Caller, text: str | None, attachment: Attachment | None = None, *,
                     prompt_message_id: str | None = None, message_id: str | None = None,
                     progress: Progress = no_progress) -> JournalSavedReply | ErrorReply:
        """`message_id`: the platform's id of the message answering, kept with the entry: the same
        message handed over again (after a hard kill, `bot/usecases/inbox.py`) is told its entry
        was saved, as the first time, and makes no second one (nor takes a newer prompt)."""
        with self.answering(caller):
            return await self._answer(caller, UserRef(caller.platform, caller.user_id), text, attachment,
                                      prompt_message_id=prompt_message_id, message_id=message_id, progress=progress)

    @contextlib.contextmanager
    def answering(self, caller: Caller) -> Iterator[None]:
        """While an answer of the caller's is under way: its file downloading (the front-end's
        part), its song heard and saved (`answer`). "/journal delete last" meanwhile would take
        the entry before it, which the user never meant: it is refused."""
        ref = UserRef(caller.platform, caller.user_id)
        self._answering[ref] += 1
        try:
            yield
        finally:
            self._answering[ref] -= 1
            if not self._answering[ref]:
                del self._answering[ref]

    async def saved_by(self, caller: Caller, message_id: str) -> JournalEntry | ErrorReply | None:
        """The entry the caller's message `message_id` made (in the database, or waiting in the
        outbox), read only: a long answer handed over again after a restart for the parts after it
        (bot/frontends/telegram_split.py), told before. None when there is none; NOTE_PART_NOT_ADDED
        (what its parts are told where the database stays down) when that cannot be told, the
        database failing the lookup and the outbox holding none of it: until 2026-12-06 None, and
        the parts were told the answer had saved nothing, though its entry was stored."""
        ref, answered_by = UserRef(caller.platform, caller.user_id), answer_key(caller, message_id)
        failed = None
        try:
            saved = await self.db.journal.answered_by(ref, answered_by)
        except StorageError as error:
            saved, failed = None, error
        if saved is None and (queued := await self._saved_from(ref, answered_by, False)) is not None:
            saved = queued[0]  # waiting in the outbox
        if saved is None and failed is not None:
            log.warning("journal.answer_not_looked_up", extra={"user": caller.user_id, "reason": str(failed)})
            return ErrorReply(NOTE_PART_NOT_ADDED)
        return saved

    async def add_to_note(self, caller: Caller, answer_id: str, words: str, separator: str) -> JournalEntry | ErrorReply:
        """The entry the message `answer_id` made, `words` added to its note after `separator`:
        the rest of an answer its platform sent in parts (Telegram's messages over 4 096
        characters). Once per part: handed over again after a restart, the part adds nothing
        twice (`JournalRepo.add_to_note`). An entry waiting in the outbox (the database down) takes
        them there, and reaches the database with them. The entry found nowhere (the answer saved
        nothing, or the database is down and the outbox holds none of it): said, the part's words
        not kept."""
        ref, answered_by = UserRef(caller.platform, caller.user_id), answer_key(caller, answer_id)
        failures: list[str] = []  # the database's: the outbox may hold the entry, said once that is known

        async def in_the_database() -> JournalEntry | None:
            try:
                return await self.db.journal.add_to_note(ref, answered_by, words, separator)
            except StorageError as error:
                failures.append(type(error).__name__)
                return None

        entry, queued = await in_the_database(), False
        if entry is None and self.writer is not None:  # its entry waits in the outbox (the database down)
            try:
                entry = await self.writer.outbox.add_to_note(ref, answered_by, words, separator)
            except OSError as error:
                log.warning("journal.note_part_not_queued", extra={"user": caller.user_id, "reason": str(error)})
            queued = entry is not None
            if entry is None and not failures:  # a drain wrote it to the database meanwhile
                entry = await in_the_database()
        if entry is None:
            if failures:
                log.warning("journal.note_part_not_added", extra={"user": caller.user_id, "error": failures[-1]})
            return ErrorReply(NOTE_PART_NOT_ADDED)
        if words not in (entry.note or ""):  # past the note's limit: refused, whatever follows
            log.info("journal.note_full", extra={"user": caller.user_id, "chars": len(words), "queued": queued})
            return ErrorReply(NOTE_FULL.format(chars=MAX_NOTE_CHARS))
        log.info("journal.note_part_added", extra={"user": caller.user_id, "chars": len(words), "queued": queued})
        return entry

    async def _answer(self, caller: Caller, ref: UserRef, text: str | None, attachment: Attachment | None, *,
                      prompt_message_id: str | None, message_id: str | None,
                      progress: Progress) -> JournalSavedReply | ErrorReply:
        # As the answer arrived (the front-end's stamp), else now: a /forget since drops it.
        erasures = self.db.privacy.erasures(ref) if caller.erasures is None else caller.erasures
        arrived = caller.asked_at or datetime.now(timezone.utc)  # a file's sender's /forget since unnames it
        await self._drain_queued(ref)
        try:
            user, known = await self.db.users.get(ref), True
        except StorageError:  # the database is down: a prompt this process sent may still be answered
            user, known = None, False
        answered_by = None if message_id is None else answer_key(caller, message_id)
        if answered_by is not None and (saved := await self._saved_from(ref, answered_by, known)) is not None:
            log.info("journal.answer_already_saved", extra={"user": caller.user_id})
            return await self._saved_again(*saved)
        try:
            if known and (user is None or not user.journal_enabled):  # /journal off: nothing is filed
                prompt = None
            else:
                prompt = await self._find_prompt(caller, ref, prompt_message_id)
        except PromptAlreadyAnswered as error:
            if prompt_message_id is None and known:  # a DM: when the next prompt comes, and /mood
                refused_answer(caller, error)
                if user is not None and user.prompt_time is not None:  # today's, or tomorrow's: not "/journal prompt"
                    when = await self._next_prompt(ref, user.prompt_time, user.timezone, named=True)
                    return ErrorReply(f"{error} {when} {NOT_A_JOURNAL_ANSWER}")
                return ErrorReply(self._no_prompt_message(user, answered=error))
            return refused_answer(caller, error)
        except StorageError as error:
            return refused_answer(caller, error)
        if prompt is None:
            if self.db.privacy.erasures(ref) != erasures:  # its prompt went with a /forget sent after it
                return ErrorReply(FORGOTTEN_MEANWHILE)
            return ErrorReply(self._no_prompt_message(user))
        parse = partial(self.mood.parse, discord=caller.platform == "discord")
        song, note = ((None, (text or "").strip()) if attachment is not None
                      else split_answer(text or "", lambda link: song_read(link, parse) is not None))
        if attachment is None and not song:
            return ErrorReply(NO_SONG_ERROR)
        if attachment is None and (no_song := no_song_answer(song, user)) is not None:
            log.info("journal.answered_without_a_song", extra={"user": caller.user_id})
            return ErrorReply(no_song)
        if attachment is None and (words := words_for_a_song(song, caller.platform, parse)) is not None:
            log.info("journal.answered_with_words_for_a_song", extra={"user": caller.user_id, "chars": len(song)})
            return ErrorReply(words)
        try:
            reply = await self.mood.analyse(song, attachment, progress, platform=caller.platform)
        except (SourceError, InferenceError, StorageError) as error:
            refused = refused_answer(caller, error)
            if isinstance(error, ManySongsError):
                return replace(refused, message=f"{refused.message} {ONE_SONG_OF_MANY}")
            return refused
        except Exception:
            log.exception("journal.answer_failed", extra={"user": caller.user_id})
            return ErrorReply(GENERIC_ERROR)
        # Whose name the file's title carries ("Voice note by Alice"): their /forget takes it out
        # (`PrivacyRepo.erase`); one that came while this answer was heard already has: written
        # after it, the entry would name them for good.
        sender, title = attachment.sender if attachment and attachment.title else None, display_title(reply)
        if sender and self.db.privacy.erased_since(UserRef(caller.platform, sender), arrived):
            sender, title = None, without_sender(title)
        entry = JournalEntry(
            user=ref, local_date=prompt.local_date, prompt_id=prompt.prompt_id, phrase=prompt.phrase,
            reply_text=(text or "").strip() or (attachment.filename if attachment else ""),
            track_key=reply.track_key, track_title=title, mood=reply.mood,
            valence=reply.valence, arousal=reply.arousal, created_at=self.now(), note=note, place=caller.place,
            answered_by=answered_by, sender=sender,
        )
        if self.db.privacy.erasures(ref) != erasures:  # /forget came since the answer did (download, listening)
            log.info("journal.answer_dropped_after_forget", extra={"user": caller.user_id})
            return ErrorReply(FORGOTTEN_MEANWHILE)
        try:
            queued = await self._store(entry)
        except (StorageError, PromptAlreadyAnswered) as error:
            self._open.pop(prompt.prompt_id, None)
            return refused_answer(caller, error)
        if prompt.prompt_id in self._open:  # the next message naming no prompt is told it has its song
            self._open[prompt.prompt_id] = replace(self._open[prompt.prompt_id], answered=True)
        log.info("journal.answered", extra={"user": caller.user_id, "mood": reply.mood, "queued": queued})
        # As under /mood's answer: another service's link searched by name, a YouTube link's moment.
        aside = None if attachment is not None else self.mood.link_note(reply, song, platform=caller.platform)
        if count := other_songs(song, note, parse):
            one = ONE_SONG_A_PROMPT.format(title=display_title(reply), links="link" if count == 1 else "links",
                                           day=prompt.local_date.isoformat())
            aside = f"{aside}\n{one}" if aside else one
        return JournalSavedReply(phrase=prompt.phrase, mood=reply, local_date=prompt.local_date, queued=queued,
                                 aside=aside)

    async def _saved_from(self, ref: UserRef, answered_by: str, database_up: bool) -> tuple[JournalEntry, bool] | None:
        """The entry the message `answered_by` made already, and whether it waits in the outbox:
        a message handed over again after a restart. None when there is none, or it cannot be told
        (the database down, and the outbox holds none of it): the answer then goes on as any. The
        database is not asked when it just failed to answer (`database_up`): not a wait more."""
        saved = None
        if database_up:
            try:
                saved = await self.db.journal.answered_by(ref, answered_by)
            except StorageError:
                pass
        if saved is not None:
            return saved, False
        try:
            queued = [] if self.writer is None else await self.writer.outbox.queued(ref)
        except OSError:
            queued = []
        return next(((entry, True) for entry in queued if entry.answered_by == answered_by), None)

    async def _saved_again(self, entry: JournalEntry, queued: bool) -> JournalSavedReply:
        """The confirmation of an entry saved before, as it was first said: the song's mood as
        the cache holds it, or, when the cache has another answer now (heard again by a new model)
        or none, as the entry keeps it (no confidence: the entry has none). Its prompt is marked
        answered, in case the bot stopped before it was."""
        if not queued:
            try:
                await self.db.prompts.mark_answered(entry.prompt_id)
            except StorageError as error:
                log.warning("journal.prompt_not_marked", extra={"user": entry.user.user_id, "reason": str(error)})
        if entry.prompt_id in self._open:
            self._open[entry.prompt_id] = replace(self._open[entry.prompt_id], answered=True)
        try:
            record = await self.db.tracks.get(entry.track_key)
        except StorageError:
            record = None
        if record is not None and record.mood is not None and (record.mood.mood, record.mood.valence,
                                                               record.mood.arousal) == (entry.mood, entry.valence,
                                                                                        entry.arousal):
            mood = mood_reply(record, cached=True)
            if display_title(mood) != entry.track_title:  # a file: named as its sender named it
                mood = replace(mood, title=entry.track_title, artists=())
        else:
            mood = MoodReply(track_key=entry.track_key, title=entry.track_title, artists=(), mood=entry.mood,
                             probabilities={}, valence=entry.valence, arousal=entry.arousal, confidence=0.0,
                             model="", model_version="")
        return JournalSavedReply(phrase=entry.phrase, mood=mood, local_date=entry.local_date, queued=queued)

    async def _drain_queued(self, ref: UserRef) -> None:
        """The user's answers waiting in the outbox are written first, the database allowing. Left
        there, their prompts looked open: a second answer was stored, and the drain then dropped
        the first as a duplicate, though the user had been told it was saved."""
        if self.writer is None:
            return
        try:
            await self.writer.drain_for(ref)
        except Exception:  # the drainer tries again; the answer goes on as before
            log.exception("journal.outbox_drain_failed", extra={"user": ref.user_id})

    async def _find_prompt(self, caller: Caller, ref: UserRef, prompt_message_id: str | None) -> OpenPrompt | None:
        chat_id = str(caller.chat_id or caller.user_id)
        since = self.now() - timedelta(days=ANSWER_DAYS)
        try:
            if prompt_message_id is not None:
                sent = await self._sent_as(caller.platform, chat_id, str(prompt_message_id), ref)
            else:
                sent = await self.db.prompts.latest(ref, since=since)
        except DatabaseUnavailableError:
            # The prompt was sent by this process: its phrase and id are still in memory. The same
            # week's limit holds: an older one is answered once the database is back.
            remembered = (self._memory_by_message(caller.platform, chat_id, str(prompt_message_id))
                          if prompt_message_id is not None else self._memory_latest(ref, since))
            if remembered is None or remembered.erasures != self.db.privacy.erasures(ref):
                raise  # not sent by this process, or deleted since with /forget
            if remembered.answered:
                raise PromptAlreadyAnswered(remembered.local_date) from None
            return remembered
        if sent is None or sent.user != ref:
            return None
        if sent.answered_at is not None:
            raise PromptAlreadyAnswered(sent.local_date)
        return OpenPrompt(sent.prompt_id, sent.user, sent.phrase, sent.local_date, sent.sent_at, sent.chat_id,
                          sent.message_id)

    async def _sent_as(self, platform: str, chat_id: str, message_id: str, ref: UserRef) -> SentPrompt | None:
        """The prompt sent as that message. One this process sent whose message id never reached
        the database (it went down while the prompt was on its way) gets it now: on Telegram a
        reply is the only way to answer, and it found no prompt for good."""
        sent = await self.db.prompts.find_by_message(platform, chat_id, message_id)
        remembered = self._memory_by_message(platform, chat_id, message_id) if sent is None else None
        if remembered is None or remembered.ref != ref:
            return sent
        log.info("journal.prompt_message_id_restored", extra={"user": ref.user_id})
        await self.db.prompts.set_message_id(remembered.prompt_id, message_id)
        return await self.db.prompts.find_by_message(platform, chat_id, message_id)

    async def _store(self, entry: JournalEntry) -> bool:
        """Saves the entry; with the database down it goes to the outbox. True when queued."""
        if self.writer is not None:
            outcome = await self.writer.add_or_queue(entry)
        else:
            outcome = JournalWrite.STORED if await self.db.journal.add(entry) else JournalWrite.DUPLICATE
        try:  # answered as the entry was made, on this clock, as the outbox marks it (`recall_open_prompts`)
            await self.db.prompts.mark_answered(entry.prompt_id, at=entry.created_at)
        except StorageError as error:
            log.warning("journal.prompt_not_marked", extra={"user": entry.user.user_id, "reason": str(error)})
        if outcome is JournalWrite.DUPLICATE:
            # This prompt already has its song (e.g. saved from the outbox while the prompt stayed open).
            raise PromptAlreadyAnswered(entry.local_date)
        return outcome is JournalWrite.QUEUED

    async def recall_open_prompts(self) -> int:
        """At start, while the database answers: remember the prompts still open from the last
        RECALL_DAYS, so that an answer to one of them is still queued in the outbox if the
        database goes down later. Each user's latest prompt of them is remembered too, answered
        or not: with the database down, a message that names no prompt is told the latest has its
        song, as with it up, not filed under an older one still open. Returns how many are open."""
        since = self.now() - timedelta(days=RECALL_DAYS)
        open_ = await self.db.prompts.open_since(since, OPEN_PROMPTS_MAX)
        answered = await self.db.prompts.answered_since(since, OPEN_PROMPTS_MAX)
        latest: dict[UserRef, SentPrompt] = {}
        for p in open_ + answered:
            if p.user not in latest or p.sent_at > latest[p.user].sent_at:
                latest[p.user] = p
        # Oldest first, as they were sent: the newest held is the latest (`_memory_latest`).
        for p in sorted(open_ + [p for p in answered if latest[p.user] is p], key=lambda p: p.sent_at):
            self._remember(OpenPrompt(p.prompt_id, p.user, p.phrase, p.local_date, p.sent_at, p.chat_id,
                                      p.message_id, erasures=self.db.privacy.erasures(p.user),
                                      answered=p.answered_at is not None))
        return len(open_)

    def _remember(self, prompt: OpenPrompt) -> None:
        self._open[prompt.prompt_id] = prompt
        self._open.move_to_end(prompt.prompt_id)
        while len(self._open) > OPEN_PROMPTS_MAX:
            self._open.popitem(last=False)

    def _memory_by_message(self, platform: str, chat_id: str, message_id: str) -> OpenPrompt | None:
        for p in reversed(self._open.values()):
            if p.ref.platform == platform and p.chat_id == chat_id and p.message_id == message_id:
                return p
        return None

    def forget_open(self, ref: UserRef) -> None:
        """The user's prompts held in memory go (their journal is off, or their data deleted: the
        scheduler's `unschedule`, which /forget calls): none is answered from there, nor kept."""
        for prompt_id in [p.prompt_id for p in self._open.values() if p.ref == ref]:
            del self._open[prompt_id]

    def _memory_latest(self, ref: UserRef, since: datetime) -> OpenPrompt | None:
        """The user's newest prompt in memory sent at or after `since`, answered or not, as
        `latest` reads it."""
        return next((p for p in reversed(self._open.values()) if p.ref == ref and p.sent_at >= since), None)

    # ---- reading -----------------------------------------------------------------------------
    async def list(self, caller: Caller, limit: int = LIST_PAGE, page: int | str = 1, *,
                   before: str | None = None, after: str | None = None) -> JournalListReply | ErrorReply:
        """A page of the caller's journal, newest first: page `page` (counted from 1, as typed),
        or the entries just older than the entry `before` names, or just newer than `after`'s.
        The buttons page by cursor: unlike a page number, it stays put while new entries arrive."""
        ref = UserRef(caller.platform, caller.user_id)
        limit = max(1, min(limit, LIST_MAX))
        number = page_number(page)
        if number is None and isinstance(page, str):  # "page 2"; else a day or a month, "Dec 5", "December"
            number = page_number(PAGE_WORD.sub("", page, count=1)) if PAGE_WORD.match(page) else None
            if number is None:
                return await self._list_from(ref, page, limit)
        if number is None:
            return ErrorReply(BAD_PAGE.format(page=page_label(page), limit=limit))
        try:
            if before is not None or after is not None:
                found = await self.db.journal.page(ref, limit, before=before, after=after)
                if found is not None and not found.entries and found.total:
                    return ErrorReply(NO_OLDER)
            else:
                if number > 1:
                    total = await self.db.journal.count(ref)
                    pages = -(-total // limit)
                    if total and number > pages:
                        return ErrorReply(beyond_last_page(page_label(page), pages, total))
                    number = number if total else 1
                found = await self.db.journal.page(ref, limit, skip=(number - 1) * limit)
            if found is None:  # its cursor's entry is gone: all of them (/forget), or that one (/journal delete)
                return ErrorReply(PAGE_TURNED_FROM_DELETED if await self.db.journal.count(ref) else PAGE_GONE)
            user = None if found.entries else await self.db.users.get(ref)
        except StorageError as error:
            return ErrorReply(str(error))
        return JournalListReply([entry_view(e, c) for e, c in zip(found.entries, found.cursors)], found.total,
                                prompt_at=prompt_at(user), offset=found.offset, page_size=limit)

    async def _list_from(self, ref: UserRef, typed: str, limit: int) -> JournalListReply | ErrorReply:
        """/journal list <day | month | week> (`read_period`): a page from the newest entry of that
        period back, which ◀ Older and Newer ▶ turn from; where it holds none, the nearest dates."""
        try:
            user = await self.db.users.get(ref)
            today = local_now(user, self.now()).date()
            period = read_period(typed, today)
            if period is None:
                return ErrorReply(BAD_LIST_WORDS.format(page=page_label(typed), limit=limit))
            if isinstance(period, ErrorReply):
                return period
            # After today, unless an entry is dated in it: answered in a zone ahead of the user's now
            # (Tokyo, then Los Angeles), as /journal list, /journal delete and /stats date it.
            if period.first > today and not await self.db.journal.count_after(ref, period.first - timedelta(days=1)):
                return ErrorReply(NOT_YET.format(label=period.label, today=today.isoformat()))
            newer = await self.db.journal.count_after(ref, period.last)
            found = await self.db.journal.page(ref, limit, skip=newer)
            if not found.entries:
                if not found.total:
                    return JournalListReply([], 0, prompt_at=prompt_at(user), page_size=limit)
                oldest = (await self.db.journal.page(ref, 1, skip=found.total - 1)).entries[0].local_date
                return ErrorReply(BEFORE_JOURNAL.format(oldest=oldest.isoformat(), what=period.what))
            if found.entries[0].local_date < period.first:  # none in it: the nearest on either side
                before = found.entries[0].local_date.isoformat()
                after = (await self.db.journal.page(ref, 1, skip=newer - 1)).entries if newer else []
                return ErrorReply(NONE_IN_PERIOD.format(
                    none=period.none, before=before,
                    after=f", after it {after[-1].local_date.isoformat()}" if after else ""))
        except StorageError as error:
            return ErrorReply(str(error))
        return JournalListReply([entry_view(e, c) for e, c in zip(found.entries, found.cursors)], found.total,
                                offset=found.offset, page_size=limit, period=period.label)

    # ---- deleting ----------------------------------------------------------------------------
    async def delete(self, caller: Caller, which: str | None, number: int | str | None = None, *,
                     message_id: str | None = None
                     ) -> JournalDeletedReply | JournalDeleteChoiceReply | TextReply | ErrorReply:
        """/journal delete <date | last> [number]: one of the caller's own entries, the newest or
        the one of that day (its local date, as /journal list shows it, or "Dec 5", "yesterday"
        on the user's clock: `AskedDay`; one that reads two ways deletes nothing). A day of
        several entries deletes none and numbers them (`JournalDeleteChoiceReply`) for the user to
        choose, `number` (or "<date> <number>" in `which`). The entry goes from the database and
        from the outbox (an answer saved while the database was down), so no drain brings it
        back; the prompt it answered, when it is the one a message answers now (the user's
        latest of the last ANSWER_DAYS), is open again. `message_id`: the platform's id of the
        command, noted on that prompt: the same command handed over again after a hard kill
        (`bot/usecases/inbox.py`) is told it was done, and "last" deletes no second entry."""
        ref = UserRef(caller.platform, caller.user_id)
        target = parse_delete_target(which, number)
        if isinstance(target, ErrorReply):
            return target
        asked, chosen = target
        if asked is None and self._answering[ref]:  # its entry is not saved yet: the newest is the one before
            return ErrorReply(ANSWER_UNDER_WAY)
        command = None if message_id is None else f"{caller.chat_id or caller.user_id}:{message_id}"
        if command is not None:
            try:
                done = await self.db.prompts.deleted_by(ref, command)
            except StorageError as error:
                return ErrorReply(str(error))
            if done is not None:
                log.info("journal.delete_already_done", extra={"user": caller.user_id})
                return TextReply(ALREADY_DELETED.format(day=done.local_date.isoformat(), phrase=done.phrase))
        await self._drain_queued(ref)  # an answer waiting in the outbox is in the database first, if it can be
        try:
            user = await self.db.users.get(ref)
            today = local_now(user, self.now()).date()
            day = None if asked is None else asked.on(today, chosen)
            if isinstance(day, ErrorReply):
                return day
            if day is None:
                stored = await self.db.journal.list(ref, limit=1)
            else:
                stored = await self.db.journal.on_day(ref, day)
            queued = await self._queued(ref)
            candidates = newest_first(stored, [e for e in queued if day is None or e.local_date == day])
            if day is None:
                candidates = candidates[:1]
            newest = None
            if not candidates:
                newest = newest_first(await self.db.journal.list(ref, limit=1), queued)[:1]
        except StorageError as error:
            return ErrorReply(str(error))
        if not candidates:
            if day is not None and day > today:
                return ErrorReply(DAY_NOT_YET.format(day=day.isoformat(), today=today.isoformat()))
            if newest and day < newest[0].local_date:
                return await self._no_entry_around(ref, day)
            if newest:
                return ErrorReply(NO_ENTRY_ON.format(day=day.isoformat(), newest=newest[0].local_date.isoformat()))
            return ErrorReply(NOTHING_TO_DELETE if user is not None else NEVER_JOURNALED)
        if chosen is None and len(candidates) > 1:
            return JournalDeleteChoiceReply(day, [entry_view(e) for e in candidates])
        if chosen is not None and chosen > len(candidates):
            template = ONE_ENTRY_ON if len(candidates) == 1 else BAD_DELETE_NUMBER
            return ErrorReply(template.format(day=day.isoformat(), count=len(candidates), number=chosen))
        entry = candidates[(chosen or 1) - 1]
        try:
            # The prompt is open again before its entry goes: a database failing between the two
            # leaves an entry whose prompt is open (an answer to it is refused as a duplicate,
            # which marks it answered again), never a prompt answered by no entry, which no
            # answer nor delete could open again.
            found = False

            async def reopen() -> None:
                nonlocal found
                found = await self.db.prompts.reopen(ref, entry.prompt_id, deleted_by=command)

            # From the database and the outbox with no drain between (it would write the entry
            # back, and mark the reopened prompt answered); a database that fails leaves both as
            # they were.
            if self.writer is not None:
                deleted, removed = await self.writer.delete(ref, entry.prompt_id, first=reopen)
            else:
                await reopen()
                deleted, removed = await self.db.journal.delete(ref, entry.prompt_id), 0
        except StorageError as error:
            return ErrorReply(str(error))
        except OSError:
            log.exception("journal.delete_outbox_failed", extra={"user": caller.user_id})
            return ErrorReply(GENERIC_ERROR)
        if not removed and not deleted:  # deleted meanwhile (another /journal delete, a /forget)
            return ErrorReply(ENTRY_GONE)
        # With the journal off, no prompt is held in memory (`disable`): none takes a song in an outage.
        on = user is not None and user.journal_enabled
        reopened = found and on and await self._reopened(ref, entry.prompt_id)
        log.info("journal.deleted", extra={"user": caller.user_id, "queued": bool(removed), "reopened": reopened})
        return JournalDeletedReply(entry_view(entry), reopened=reopened)

    async def _no_entry_around(self, ref: UserRef, day: date) -> ErrorReply:
        """A /journal delete of a day without an entry, before the newest: the journal's start, where
        the day is before it, else the nearest entries on either side of the day."""
        try:
            newer = await self.db.journal.count_after(ref, day)
            before = (await self.db.journal.page(ref, 1, skip=newer)).entries
            after = (await self.db.journal.page(ref, 1, skip=newer - 1)).entries if newer else []
            if not before:
                total = await self.db.journal.count(ref)
                oldest = (await self.db.journal.page(ref, 1, skip=max(total - 1, 0))).entries
                return ErrorReply(NO_ENTRY_BEFORE.format(oldest=(oldest or after)[0].local_date.isoformat(),
                                                         day=day.isoformat()))
        except StorageError as error:
            return ErrorReply(str(error))
        if not after:  # the newer ones wait in the outbox: the database's newest is before the day
            return ErrorReply(NO_ENTRY_ON.format(day=day.isoformat(), newest=before[0].local_date.isoformat()))
        return ErrorReply(NO_ENTRY_BETWEEN.format(day=day.isoformat(), before=before[0].local_date.isoformat(),
                                                  after=after[0].local_date.isoformat()))

    async def _queued(self, ref: UserRef) -> list[JournalEntry]:
        """The user's entries still waiting in the outbox (none when it cannot be read)."""
        if self.writer is None:
            return []
        try:
            return await self.writer.outbox.queued(ref)
        except OSError:
            return []

    async def _reopened(self, ref: UserRef, prompt_id: str) -> bool:
        """The prompt whose entry was deleted, open again in the database, takes an answer: a
        reply to its message files a song under its day, as before it was answered. True when it
        is the one a message that names no prompt answers now (the user's latest of the last
        ANSWER_DAYS): the reply says so. An older one is answered by a reply to it only, as it
        was before (never by a plain message)."""
        if prompt_id in self._open:
            self._open[prompt_id] = replace(self._open[prompt_id], answered=False)
        try:
            latest = await self.db.prompts.latest(ref, since=self.now() - timedelta(days=ANSWER_DAYS))
        except StorageError as error:
            log.warning("journal.prompt_not_reopened", extra={"user": ref.user_id, "reason": str(error)})
            return False
        if latest is None or latest.prompt_id != prompt_id:
            return False
        if prompt_id not in self._open:
            # Held in memory as an open prompt recalled at start is: in an outage the next message
            # answers it (it is the user's latest), not an older one still open held there.
            self._remember(OpenPrompt(latest.prompt_id, latest.user, latest.phrase, latest.local_date,
                                      latest.sent_at, latest.chat_id, latest.message_id,
                                      erasures=self.db.privacy.erasures(ref)))
        return True

    async def stats(self, caller: Caller, typed: str = "") -> StatsReply | ErrorReply:
        """/stats: the whole journal's charts. `typed`: words typed after the command, which it
        takes none of: the reply says they were left aside (STATS_WORDS_ASIDE)."""
        if (refused := refusal(self.limits.stats, caller, "stats")) is not None:
            return refused
        # A few users' summaries at a time, however many ask: each read its own, then held it while
        # it waited for a render slot (twelve /stats of 700-entry journals at once: 22 MB traced).
        async with self.limits.renders.holding():
            return await self._stats(caller, typed)

    async def _stats(self, caller: Caller, typed: str) -> StatsReply | ErrorReply:
        ref = UserRef(caller.platform, caller.user_id)
        try:
            user = await self.db.users.get(ref)
            drawn_at = local_now(user, self.now())  # one moment: the charts' today is their files' date
            today = drawn_at.date()
            stats = await self.db.journal.stats(ref, today)
            # And the days after today an entry may be dated (a zone left behind): the window reaches them.
            ahead = today + timedelta(days=charts.AHEAD_DAYS)
            first, last = charts.pixel_window(today)
            days, several = await self.db.journal.day_moods_and_several(ref, first, max(last, ahead))
            first, last = charts.pixel_window(today, max((day for day in days if day <= ahead), default=None))
            days = {day: mood for day, mood in days.items() if first <= day <= last}
        except StorageError as error:
            return ErrorReply(str(error))
        if stats.total_entries == 0:
            when = prompt_at(user)
            if when is not None:
                return ErrorReply(f"No journal entries to chart yet. {next_prompt_text(when)}")
            return ErrorReply("Your journal is empty so far. Turn it on with /journal on 21:30 Europe/Lisbon "
                              "and answer a prompt with a song.")
        moods = Counter()
        for month in stats.monthly:  # every entry, not only the year of pixels
            moods.update(month.counts)
        weekly = [(p.period, p.counts) for p in stats.weekly]  # the chart keeps the latest weeks
        render = self.limits.renders.run
        weekly_png, pixels_png, map_png = await asyncio.gather(
            render(charts.mood_over_time, weekly, until=today),
            render(charts.days_in_pixels, days, first, last, today=today),
            render(charts.valence_arousal_map, stats.songs),
        )
        summary = summary_text(stats.total_entries, stats.current_streak, stats.longest_streak, moods)
        if typed.strip():
            summary += "\n" + STATS_WORDS_ASIDE.format(typed=as_typed(typed.strip(), DELETE_TYPED_CHARS))
        return StatsReply(
            summary=summary,
            # Each caption says what its chart shows (Discord's alt text): a title alone told a
            # reader who cannot see the picture nothing of it.
            charts=[
                Chart("moods-by-week.png", weekly_png,
                      f"Your moods, week by week: {charts.weeks_in_words(weekly, until=today)}", drawn_at),
                Chart("year-in-pixels.png", pixels_png,
                      f"{charts.pixels_name(first, last)} in pixels: "
                      f"{charts.pixels_in_words(days, first, last, today, several=several)}",
                      drawn_at),
                Chart("mood-map.png", map_png,
                      f"Your songs on the valence/arousal map: {charts.map_in_words(stats.songs, stats.total_entries)}",
                      drawn_at),
            ],
        )


def display_title(reply: MoodReply) -> str:
    return f"{', '.join(reply.artists)} – {reply.title}" if reply.artists else reply.title


def entry_view(entry: JournalEntry, cursor: str = "") -> JournalEntryView:
    return JournalEntryView(local_date=entry.local_date, phrase=entry.phrase, title=entry.track_title,
                            artists=(), mood=entry.mood, note=entry.note, cursor=cursor)


def newest_first(stored: list[JournalEntry], queued: list[JournalEntry]) -> list[JournalEntry]:
    """The entries read from the database (newest first) and those waiting in the outbox, one per
    prompt, newest first as /journal list orders them: by day, then by when they were saved."""
    seen = {entry.prompt_id for entry in stored}
    entries = stored + [entry for entry in queued if entry.prompt_id not in seen]
    return sorted(entries, key=lambda e: (e.local_date, e.created_at), reverse=True)  # stable: ties as stored


@dataclass(frozen=True)
class AskedDay:
    """A day named to /journal delete, read before the user's today is known: a date, the days
    before today ("yesterday"), or a month and day (with its year or not) read one way or two."""
    typed: str
    readings: tuple[tuple[int, int], ...] = ()  # (month, day), one per way the day reads
    year: int | None = None
    back: int | None = None

    def on(self, today: date, number: int | None = None, *, template: str = AMBIGUOUS_DELETE_DATE) -> date | ErrorReply:
        """The day meant, `today` being the user's own; a day without its year is the latest such
        day up to today. An ErrorReply (`template`) when it reads as two days."""
        if self.back is not None:
            return today - timedelta(days=self.back)
        days = [self._dated(month, day, today) for month, day in self.readings]
        if len(set(days)) == 1:
            return days[0]
        suffix = "" if number is None else f" {number}"
        first, second = days[:2]
        return ErrorReply(template.format(
            typed=self.typed, first=f"{first.day} {first:%B %Y}", first_day=first.isoformat(),
            second=f"{second.day} {second:%B %Y}", second_day=second.isoformat(), number=suffix))

    def _dated(self, month: int, day: int, today: date) -> date:
        if self.year is not None:
            return date(self.year, month, day)
        year = today.year
        while True:  # 29 February: the latest leap year's
            try:
                if (found := date(year, month, day)) <= today:
                    return found
            except ValueError:
                pass
            year -= 1


def real_day(month: int, day: int, year: int | None) -> bool:
    try:  # year 0 is none of Python's (nor the calendar's): not `year or 2000`, which let it through to a crash
        date(2000 if year is None else year, month, day)  # 2000: a leap year, for 29 February without its year
    except ValueError:
        return False
    return True


def month_named(word: str) -> int | None:
    """1 to 12 for a month's English name or its first three letters ("Dec", "dec.", "Sept")."""
    word = word.lower().rstrip(".")
    for number, name in enumerate(MONTHS, 1):
        if len(word) >= 3 and name.startswith(word) and (len(word) == 3 or word == name or word == "sept"):
            return number
    return None


def read_day(words: list[str], typed: str) -> AskedDay | None:
    """The day `words` name, as /journal list dates it or as people write it; None if they name none."""
    if len(words) == 1 and words[0].lower() in DELETE_DAYS_BACK:
        return AskedDay(typed, back=DELETE_DAYS_BACK[words[0].lower()])
    if len(words) == 1 and (match := DELETE_DATE_RE.match(words[0])):
        year, month, day = map(int, match.groups())
        return AskedDay(typed, ((month, day),), year) if real_day(month, day, year) else None
    if len(words) == 1 and (match := DELETE_NUMBERS_RE.match(words[0])):
        first, second = int(match.group(1)), int(match.group(3))
        year = int(match.group(4)) if match.group(4) else None
        readings = tuple(dict.fromkeys(r for r in ((first, second), (second, first)) if real_day(*r, year)))
        return AskedDay(typed, readings, year) if readings else None
    words = [w for w in words if w.lower() != "of"]  # "1st of December"
    year = None
    if len(words) == 3 and words[2].isdigit() and len(words[2]) == 4:
        year, words = int(words[2]), words[:2]
    if len(words) != 2:
        return None
    for month_word, day_word in (words, words[::-1]):  # "Dec 1", "1 Dec"
        month, day = month_named(month_word), DELETE_DAY_RE.match(day_word)
        if month is not None and day is not None:
            return AskedDay(typed, ((month, int(day.group(1))),), year) if real_day(month, int(day.group(1)),
                                                                                    year) else None
    return None


@dataclass(frozen=True)
class ListedPeriod:
    """A day, month or week asked of /journal list: the journal is listed from its last day back."""
    first: date
    last: date
    label: str  # "2026-12-05", "December 2026", "the week of 30 Nov 2026"
    what: str  # "dated 2026-12-05", "in December 2026": of entries it holds or not

    @property
    def none(self) -> str:
        return f"There's no entry {self.what}" if self.first == self.last else f"There are no entries {self.what}"


def month_period(year: int, month: int) -> ListedPeriod | None:
    if not (1 <= month <= 12 and 1900 <= year <= 9998):
        return None
    first = date(year, month, 1)
    last = (first + timedelta(days=31)).replace(day=1) - timedelta(days=1)
    label = f"{first:%B %Y}"
    return ListedPeriod(first, last, label, f"in {label}")


def read_period(text: str, today: date) -> ListedPeriod | ErrorReply | None:
    """The day, month or week `text` names for /journal list, `today` being the user's own: a day
    as /journal delete reads one ("2026-12-05", "Dec 5", "yesterday"), a month ("December",
    "Dec 2025", "2025-12"; without its year the latest up to today's), "this week", "last week"
    (Monday to Sunday), "this month", "last month". An ErrorReply for a day that reads two ways;
    None when it names none."""
    ascii_text = as_typed_in_ascii(text).strip()
    words = ascii_text.replace(",", " ").split()
    phrase = " ".join(words).lower()
    if phrase in LIST_WEEKS:
        monday = today - timedelta(days=today.weekday() + 7 * LIST_WEEKS[phrase])
        label = f"the week of {monday.day} {monday:%b %Y}"
        return ListedPeriod(monday, monday + timedelta(days=6), label, f"in {label}")
    if phrase in LIST_MONTHS:
        back = today.month - 1 - LIST_MONTHS[phrase]
        return month_period(today.year + back // 12, back % 12 + 1)
    if len(words) == 1 and (match := LIST_MONTH_RE.match(words[0])):
        return month_period(int(match.group(1)), int(match.group(2)))
    years = [int(w) for w in words if w.isdigit() and len(w) == 4]
    named = [w for w in words if not (w.isdigit() and len(w) == 4)]
    if len(named) == 1 and len(years) <= 1 and (month := month_named(named[0])) is not None:
        return month_period(years[0] if years else today.year - (month > today.month), month)
    asked = read_day(words, as_typed(ascii_text, DELETE_TYPED_CHARS))
    if asked is None:
        return None
    day = asked.on(today, template=AMBIGUOUS_LIST_DATE)
    if isinstance(day, ErrorReply):
        return day
    return ListedPeriod(day, day, day.isoformat(), f"dated {day.isoformat()}")


# '/journal delete all': every entry, which /forget deletes (help.JOURNAL_DELETE_ALL: '/journal clear').
DELETE_ALL_WORDS = JOURNAL_DELETE_ALL | {"all", "everything", "every"}


def parse_delete_target(which: str | None, number: int | str | None = None
                        ) -> tuple[AskedDay | None, int | None] | ErrorReply:
    """(the day asked, or None for the newest entry; the number chosen among the day's entries, if
    any) from what /journal delete was given: "last", "2026-12-05", "Dec 5", "5 December 2026",
    "yesterday", each with a number after it or not (full-width as typed by an input method too);
    an ErrorReply saying how to ask otherwise."""
    text = as_typed_in_ascii(which)
    words = text.replace(",", " ").split()
    if number is not None and str(number).strip():
        words.append(as_typed_in_ascii(str(number)).strip())
    if not words:
        return ErrorReply(DELETE_USAGE)
    if words[0].lower() in DELETE_LAST_WORDS:
        return (None, None) if len(words) == 1 else ErrorReply(DELETE_ONE_AT_A_TIME.format(
            typed=as_typed(text, DELETE_TYPED_CHARS)))
    if words[0].lower() in DELETE_ALL_WORDS:  # every entry: that is /forget, not a date
        return ErrorReply(JOURNAL_ALL_MEANT)
    typed = as_typed(text, DELETE_TYPED_CHARS)
    if (asked := read_day(words, typed)) is not None:
        return asked, None
    if len(words) == 1 or (asked := read_day(words[:-1], typed)) is None:
        return ErrorReply(BAD_DELETE_DATE.format(typed=typed))
    chosen = page_number(words[-1])
    if chosen is None:
        return ErrorReply(f"“{as_typed(words[-1], DELETE_TYPED_CHARS)}” isn't an entry's number: they count from 1, "
                          f"as /journal delete {' '.join(words[:-1])} lists them.")
    return asked, chosen


def answer_key(caller: Caller, message_id: str) -> str:
    """What an entry keeps of the message that answered its prompt (`JournalEntry.answered_by`):
    a message id is unique within its chat."""
    return f"{caller.chat_id or caller.user_id}:{message_id}"


def page_number(page: int | str) -> int | None:
    """The page the user asked for ("2", " 3 ", full-width "２"), or None unless it is a whole
    number from 1. A number of more than PAGE_DIGITS digits is past every journal's last page (and
    Python refuses int() of over 4300 digits)."""
    text = as_typed_in_ascii(str(page)).strip()
    digits = text.lstrip("0")
    if not (text.isascii() and text.isdigit()) or not digits:
        return None
    return int(digits) if len(digits) <= PAGE_DIGITS else 10 ** PAGE_DIGITS


def page_label(page: int | str) -> str:
    """The page as the user typed it, cut short if long: it is quoted back to them."""
    text = str(page).strip()
    return text if len(text) <= PAGE_LABEL_CHARS else text[:PAGE_LABEL_CHARS] + "…"


# A page number that reads as a year ('/journal list 2025'): what lists that year, from its end back.
YEAR_MEANT = " If you meant the year: /journal list December {year} lists your journal from its end back."
YEARS_MEANT = range(1900, 2101)


def beyond_last_page(number: str, pages: int, total: int) -> str:
    entries = f"{total} entr{'y' if total == 1 else 'ies'}"
    year = YEAR_MEANT.format(year=number) if len(number) == 4 and number.isdigit() and int(number) in YEARS_MEANT else ""
    if pages == 1:
        return f"Your journal has {entries}, all on page 1: there's no page {number}.{year}"
    return f"Your journal has {pages} pages ({entries}): there's no page {number}. Page {pages} holds the oldest.{year}"
