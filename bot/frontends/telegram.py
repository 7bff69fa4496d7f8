"""Telegram front-end: python-telegram-bot handlers that translate an Update into one use-case call
and render the reply model. No business logic lives here.

New messages are handled; an edited one only when it newly asks for a song's mood (a voice note
captioned /mood afterwards), and never once the bot answered it, or may have (`on_edited`). Personal
data (journal, stats, export, forget) is served in the private chat only, and never to a message
posted as a chat (an anonymous admin), which would make everyone behind it one person. Every text
sent is clipped to Telegram's length limits (`text_of`, `clip`). An album (a media group: one
message per item, the caption on one) is collected for a moment and answered whole (`collect_album`).

Runs inside the app's event loop: `start()` initialises, starts and polls; `stop()` reverses it.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import re
import time
import unicodedata
import warnings
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, AsyncIterator, Callable, Sequence
from urllib.parse import urlsplit

# PTB 23's types today: its times (RetryAfter.retry_after, a media's duration) as timedelta, which
# `seconds_of` reads; PTB 22 warns at every read of them as numbers, a 429's included.
os.environ.setdefault("PTB_TIMEDELTA", "1")

from telegram import (
    Audio,
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeDefault,
    CallbackQuery,
    Chat,
    ExternalReplyInfo,
    ChatMember,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
    MessageEntity,
    MessageOrigin,
    MessageOriginChannel,
    MessageOriginChat,
    MessageOriginHiddenUser,
    MessageOriginUser,
    Update,
    User,
)
from telegram.constants import ChatAction, ChatMemberStatus, ChatType, MessageLimit
from telegram.error import (BadRequest, ChatMigrated, Conflict, Forbidden, NetworkError, RetryAfter, TelegramError,
                            TimedOut)
from telegram.warnings import PTBUserWarning
from telegram.ext import (
    AIORateLimiter,
    Application,
    BaseRateLimiter,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.config import Settings
from bot.frontends import render
from bot.frontends.chat_runs import ChatRuns
from bot.frontends.telegram_split import (SPLIT_ANSWER_JOINED, SPLIT_ANSWER_NOT_SAVED, SPLIT_NOT_LOOKED_UP, SplitAnswer,
                                         SplitAnswers)
from bot.frontends.telegram_flow import CURRENT_UPDATE, UpdateFlow
from bot.frontends.telegram_http import MAX_REASON, AiohttpRequest, CallsNoted, CallsWatch, UpdatesRequest, never_sent
from bot.sources.models import QueryKind, UnsupportedInputError
from bot.sources.query import is_link, parse_query
from bot.usecases.help import (MOOD, NO_SLASH_QUOTED_CHARS, did_you_mean, journal_word_meant, slash_forgotten,
                                unknown_button)
from bot.usecases.inbox import Arrival
from bot.usecases.journal import ANSWER_BY_REPLY, EDITED_ANSWER, TODAY_BY_REPLY, on_left_out
from bot.usecases.mood import Admit, query_left_aside, song_named_in, told_to_wait
from bot.usecases.playlists import ON_NOW_ADMINS
from bot.usecases.privacy import FORGET_CONFIRM_S, FORGET_EXPIRED, NOTHING_TO_FORGET
from bot.usecases.ports import DeliveryFailed, DeliveryUncertain, RecipientGone
from bot.replies import (
    NAME_MARKS_DROPPED,
    NO_ROOM_FOR_FILE,
    NO_ROOM_RETRY_S,
    NOT_AUDIO,
    NOT_SOUND_TYPES,
    STAGE_DOWNLOADING,
    STAGE_FINDING,
    STAGE_LISTENING,
    UPLOADS_BUSY,
    UPLOADS_RETRY_S,
    Attachment,
    Caller,
    Chart,
    ErrorReply,
    ExportReply,
    JournalListReply,
    JournalSavedReply,
    PromptMessage,
    ServerMoodReply,
    StatsReply,
    TextReply,
    as_typed,
    titled_upload,
    unnamed_upload,
)
from bot.tempfiles import local_name, temporary_folder, write_file
# The shared vocabulary: the moods, in the order of the playlist buttons; a file too long or too short, in the
# decoder's words.
from inference.result import MIN_SECONDS, MOODS, too_long_words, too_short_words
# Whether a part of a long answer is in its note, as the database and the outbox judge it (`add_to_note`).
from storage.outbox import part_held

log = logging.getLogger(__name__)

PLATFORM = "telegram"
PLACE_WORD = "group"  # where people share the bot, in the replies' words (`render.placed`)
MAX_RETRIES = 3  # how often the rate limiter retries a call that got 429 Too Many Requests
# A call's rate_limit_args for one of its own (the '/' menus, `_set_menus`): no retry, and its 429
# pauses no other call (Telegram's flood control of setMyCommands holds up no chat's answer).
ON_ITS_OWN = -1
POLL_TIMEOUT_S = 10  # long-poll length asked of the Bot API
# The stop (SIGTERM, Ctrl-C): the updates in progress get STOP_GRACE_S to be answered; those still
# running then (a download, the model) are cut short, their senders told within CUT_SHORT_TELL_S.
# Together well inside `docker stop`'s 10 s, with the rest of the stop (the model workers, the database).
STOP_GRACE_S = 4.0
CUT_SHORT_TELL_S = 2.0
CLEAR_AT_STOP_S = 1.0  # the stop's wait for the updates answered to be cleared from the inbox
# A big pool buys nothing, as Telegram allows ~30 messages/s anyway. API calls in flight stay
# below the pool size, leaving connections for file downloads.
CONNECTION_POOL_SIZE = 16
MAX_API_CALLS_IN_FLIGHT = 8
POOL_TIMEOUT_S = 30.0  # a reply waiting for a free connection in a burst must not fail
AFTER_ANSWER = 1  # the handler group run once an update's answer is sent
SETTLED = 2  # the handler group run last: whether the update's message was answered (`on_settled`)
BEFORE_ANSWER = -1  # the handler group run before an update's answer
PROMPT_READ_TIMEOUT_S = 5.0  # a daily prompt's answer from Telegram: past it, the prompt may have arrived
JOURNAL_USAGE = ("Usage: /journal on <HH:MM> <Area/City> · /journal off · /journal list [page | day | month] · /journal prompt"
                 " · /journal delete <date | last>")
JOURNAL_WORDS = ("on", "off", "list", "prompt", "delete")  # what '/journal stop' may have meant
# The console's '/journal answer <song>' (the README names it): here a prompt is answered by a reply.
JOURNAL_ANSWER_HERE = ("Here you answer your journal prompt by replying to it with a song: its name or link, or an "
                       "audio file, and your own words on a new line if you like. /journal prompt sends today's now.")
MOOD_USAGE = "Usage: /mood <song name or link>, or send an audio file."
GROUP_MOOD_USAGE = ("Usage: /mood <song name or link>, or attach an audio file with the caption /mood, or reply /mood "
                    "to a song someone sent.")
# /help's /mood line: a song someone sent is asked about by a reply (as Discord's names its message menu).
MOOD_HELP = (MOOD[0], f"{MOOD[1]}; on a song someone sent: reply /mood to it")
SHARE_USAGE = "Usage: /share on (count my songs in group playlists) or /share off"
SERVERPLAYLIST_USAGE = "Usage: /serverplaylist on|off (group admins only)"
TOO_LARGE = "That file is too large: I can analyse files up to {mb:.0f} MB."
# Telegram did not hand the file over (getFile refused it, or its file server answered 404/5xx, cut
# the connection or timed out). Sent again, it is asked for anew.
NOT_DOWNLOADED = "I couldn't get that file from Telegram just now. Please send it again."
MAX_LOGGED_REASON = 200  # characters of a failed download's error logged
MAX_SHOWN_NAME = 80  # characters of a file's name said back
# The suffix of an audio sent without a file name (`tagged_name`), which tells the decoder its format.
AUDIO_SUFFIXES = {"audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/ogg": ".ogg", "audio/opus": ".opus",
                  "audio/mp4": ".m4a", "audio/m4a": ".m4a", "audio/x-m4a": ".m4a", "audio/aac": ".aac",
                  "audio/flac": ".flac", "audio/x-flac": ".flac", "audio/wav": ".wav", "audio/x-wav": ".wav",
                  "audio/webm": ".webm"}
# getFile: "bots can download files of up to 20MB in size". A local Bot API server (any other
# address than api.telegram.org) has no such limit: there only max_audio_bytes applies.
OFFICIAL_API_HOST = "api.telegram.org"
BOT_API_DOWNLOAD_LIMIT = 20 * 1024 * 1024
PRIVATE_ONLY = "/{command} works in a private chat with me, to keep your data to yourself: https://t.me/{bot}"
# An anonymous admin may not know their messages go out under the group's name: said, and why it matters.
POST_AS_YOURSELF = ("That was posted as a group or channel, so I can't tell who is behind it: post as yourself to "
                    "use this.")
HELP_TAIL = "Type /help to see what I can do."
UNKNOWN_COMMAND = f"I don't know that command. {HELP_TAIL}"
# A group's message that opens with the bot's name ('@moodbot Creep'): in a group the bot reads commands.
MENTIONED = f"In a group I answer commands: /mood <song name or link>, or reply /mood to a song someone sent. {HELP_TAIL}"
MENTIONED_COMMAND = "Start your message with the command, not my name, and I'll answer it: {command}"
MENTIONED_FILE = "To get this file's mood, reply /mood to it, or edit its caption to start with /mood."
# A message that carries no song (a picture, a sticker, a location…) is named, and what works
# instead said: in reply to a daily prompt, how to answer it.
NOT_A_SONG = "That's {what}, and I listen to music: {how}"
SEND_A_SONG = "send /mood with a song's name or link, or an audio or video file."
ANSWER_WITH_A_SONG = "answer your prompt with a song: reply to it with the song's name or link, or an audio file."
A_PICTURE = NOT_A_SONG.format(what="a picture", how=SEND_A_SONG)
# Telegram sends a GIF (or a soundless MP4 it shows as one) as an `animation`, with a `document`
# beside it for older clients: without this, the document was downloaded and "listened to".
NOT_A_SONG_GIF = "That's a GIF, and GIFs have no sound: {how}"
A_GIF = NOT_A_SONG_GIF.format(how=SEND_A_SONG)
# The other messages that carry no song, each as it is named (a dice by its emoji: 🎲, 🎯, 🎰…).
# Answered in the private chat only: in a group nobody asked the bot.
# Shared or forwarded to the bot too: a story (a bot gets its chat and id only), a checklist, a
# channel's paid post (a preview until bought), a game, a giveaway.
NOT_SONGS = (("sticker", "a sticker"), ("venue", "a place"), ("location", "a location"), ("contact", "a contact"),
             ("poll", "a poll"), ("story", "a story"), ("checklist", "a checklist"), ("paid_media", "a paid post"),
             ("game", "a game"), ("giveaway", "a giveaway"))
NOT_A_SONG_FILTER = (filters.Sticker.ALL | filters.LOCATION | filters.CONTACT | filters.POLL | filters.Dice.ALL
                     | filters.STORY | filters.CHECKLIST | filters.PAID_MEDIA | filters.GAME | filters.GIVEAWAY)
# A command typed with a full-width slash ('／mood Creep', as a Chinese or Japanese input method in
# full-width mode types it), which Telegram takes for no command: the command as the bot reads it.
FULL_WIDTH_SLASH = "\uff0f"
FULL_WIDTH_SLASH_HINT = "Commands start with a half-width slash: did you mean /{typed}?"
TEXT_HINT = ("To get a song's mood, send /mood <song> or an audio file; "
             "to answer your journal prompt, reply to it.")
# A song's link sent to the private chat alone, or in a message forwarded there: the command for it,
# as the console says of a file's path typed alone.
LINK_ALONE = "To get that song's mood, send /mood with its link: /mood {link} (to answer your journal prompt, reply to it)."
FORGET_CANCELLED = "Nothing was deleted."
# A "Yes" handed over again after a hard kill (the inbox) that finds nothing left: the killed run deleted it.
FORGET_DONE_BEFORE = "Done: I deleted everything about you."
# The latest /forget questions a press answered (chat, message), for a double tap: only the last
# few matter, and kept per chat in chat_data the ids grew with every press, and a chat's entry
# with every chat that ever pressed (a load review: 400 ids, 201 chats after 200 chats).
FORGET_ANSWERED_KEPT = 1024
# Progress: an answer that comes quickly (a song already in the cache) is one message; a status
# message appears only once the work is known to be slow: a download or the model starts, or
# nothing came back within STATUS_DELAY_S. Half the API calls for cached songs, and no flicker.
STATUS_DELAY_S = 0.5
SLOW_STAGES = frozenset({STAGE_DOWNLOADING, STAGE_LISTENING})
PROGRESS_RETRIES = 0  # a stage edit refused with 429 is dropped: a later stage, or the answer, follows
NOT_YOUR_BUTTON = "This button belongs to someone else."
# The journal's page buttons: "journal:<owner>:older|newer:<cursor>" (64 bytes at most, Telegram's limit).
FORGET_DATA = re.compile(r"^forget:(yes|no):")  # else not a button of this version's /forget
FORGET_YES = re.compile(r"^forget:yes:")  # kept in the inbox under no user (`_kept_under`)
JOURNAL_PAGE_DATA = re.compile(r"^journal:(\d{1,20}):(older|newer):([0-9a-f]{24})$")
OLDER_BUTTON, NEWER_BUTTON = "◀ Older", "Newer ▶"
EXPIRED_QUERY = ("query is too old", "query id is invalid")  # answerCallbackQuery's 400 for a late press
# What Telegram answers (400) a bot a group muted: "not enough rights to send text messages to the
# chat" (…photos…, …documents…), and older wordings of it; and in a forum topic the group closed,
# where only those who may manage topics post (an admin may still ask there): "TOPIC_CLOSED"; or
# a forum topic an admin deleted meanwhile (with the message to answer): "message thread not found".
MUTED = ("not enough rights to send", "have no rights to send a message", "chat_write_forbidden", "topic_closed",
         "message thread not found")
# What Telegram answers (400) a message to a private chat it no longer relates to the bot (the user
# deleted it, and Telegram forgot it): refused until the user writes to the bot again.
CHAT_UNKNOWN = ("chat not found", "peer_id_invalid")
UNEDITABLE = ("message to edit not found", "message can't be edited")  # editMessageText's 400: gone, or not editable
QUOTE_PARAMS = ("reply_parameters", "reply_to_message_id")  # what makes a message quote another
QUOTED_GONE = "message to be replied not found"  # Telegram's 400 for a quote of a deleted message
SEND_MESSAGE = "sendMessage"  # the Bot API method, for the one call made without PTB's shortcut
MAX_TEXT = MessageLimit.MAX_TEXT_LENGTH  # 4096: Telegram refuses longer texts ("message is too long")
MAX_CAPTION = MessageLimit.CAPTION_LENGTH  # 1024
ELLIPSIS = "…"
# '@' and a character a Telegram username may start with (Telegram's own parser is as eager).
MENTION_RE = re.compile(r"@(?=[A-Za-z0-9_])")
# PTB points callers of do_api_request("sendMessage") to its shortcut; `send_reply` avoids it on purpose.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.sendMessage'", category=PTBUserWarning)
GROUP_TYPES = frozenset({ChatType.GROUP, ChatType.SUPERGROUP})
# A caption asking for a song's mood, in any case: CommandHandler reads '/Mood' too (phones
# capitalise a caption's first letter).
MOOD_CAPTION = re.compile(r"^/mood(@\w+)?\b", re.IGNORECASE)
# Albums (media groups): Telegram sends each item as a message of its own, sharing a
# media_group_id, with the caption on one of them (any one), all within a moment. An album is
# collected until no item came for ALBUM_WINDOW_S (at most ALBUM_MAX_WINDOWS of them), then
# answered whole, one song after another.
ALBUM_WINDOW_S = 1.0
ALBUM_MAX_WINDOWS = 5  # a steady trickle of items cannot hold an album open for ever
MAX_ALBUM_ITEMS = 10  # sendMediaGroup: "must include 2-10 items"
ALBUM_STOPPED = "The rest of this album ({count} more) was not heard: send those again then."
ALBUM_ONE_SONG_PER_PROMPT = ("A prompt keeps one song: I saved the first of the {count} you sent. To save another of "
                             "them instead: /journal delete {day}, then reply to the prompt with that one alone.")
ADMIN_STATUSES = frozenset({ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER})
MEMBER_STATUSES = ADMIN_STATUSES | {ChatMemberStatus.MEMBER}
# What Telegram sends when not told (all but chat_member and reactions), and chat_member: who
# joins or leaves a group, sent only to a bot that is one of its admins.
ALLOWED_UPDATES = [kind for kind in Update.ALL_TYPES
                   if kind not in (Update.MESSAGE_REACTION, Update.MESSAGE_REACTION_COUNT)]

COMMANDS: tuple[tuple[str, str], ...] = (
    ("mood", "Mood of a song: /mood <name or link>, or attach audio"),
    ("journal", "Daily music journal: on <HH:MM> <Area/City> | off | list [page | day | month] | prompt | delete <date|last>"),
    ("stats", "Charts of your journal"),
    ("playlist", "This group's playlist for a mood"),
    ("servermood", "This group's mood of the week"),
    ("share", "Count your songs in group playlists: on | off"),
    ("serverplaylist", "Group admins: turn group playlists and mood of the week on | off"),
    ("export", "Download everything moodbot keeps about you"),
    ("forget", "Delete everything moodbot keeps about you"),
    ("help", "What moodbot can do"),
)
COMMAND_NAMES = ("start", *(name for name, _ in COMMANDS))  # the README's table's; a mistype is read against the handlers'
# Telegram asks every bot to answer /start, /help and /settings, and its apps send /settings from
# the bot's profile menu: it is answered (`on_settings`), though no menu, nor the README's table, lists it.
# What people send a bot that writes to them, to make it stop: the commands that do.
STOP_WORDS = frozenset({"stop", "unsubscribe"})
STOP_HINT = ("I don't know /{typed}. To stop your daily prompt: /journal off; to delete everything I keep about "
             "you: /forget.")
SETTINGS_TAIL = ("/journal on <HH:MM> <Area/City> sets your daily prompt, /journal off stops it; /export sends "
                 "what I keep about you, /forget deletes it.")
# Telegram's '/' menu offers each command where it works (typed anywhere, it answers anyway, saying
# why where it does not): personal data in private chats, a group's playlists in groups, their
# switch to the group's admins. The default menu, for chats no other names, lists every command.
PERSONAL_COMMANDS = frozenset({"journal", "stats", "export", "forget"})
GROUP_COMMANDS = frozenset({"playlist", "servermood", "serverplaylist"})
ADMIN_COMMANDS = frozenset({"serverplaylist"})

# What can carry a song: audio, a voice note, a file, and a video's or video note's sound track;
# not a GIF, which comes as a document too.
AUDIO_FILTER = ((filters.AUDIO | filters.VOICE | filters.Document.ALL | filters.VIDEO | filters.VIDEO_NOTE)
                & ~filters.ANIMATION)
NEW_MESSAGE = filters.UpdateType.MESSAGE  # not edits, not channel posts
EDITED_MESSAGE = filters.UpdateType.EDITED_MESSAGE
# An edit asking for a song's mood is answered once, where the message was not answered
# (`_edit_to_answer`): the messages this run handled are remembered, the latest MESSAGES_KEPT of
# them; one it never handled (a group's message without a command: privacy mode hides it) only
# when sent after the run started (the run before may have answered it), by Telegram's clock,
# which may be EDIT_CLOCK_MARGIN_S ahead of this machine's.
MESSAGES_KEPT = 10_000
EDIT_CLOCK_MARGIN_S = 2.0
ANSWERED, NOT_ANSWERED = "answered", "not answered"  # else the update_id answering it now
EDIT_ANSWER, EDIT_LET_BE, EDIT_UNKNOWN = "answer", "let be", "unknown"  # `_edit_verdict`
# An edit asking for a song's mood whose message the bot does not remember (EDIT_UNKNOWN): the
# run before may have answered it. {how}: `how_to_ask_again`.
EDIT_NOT_ANSWERED = ("I can't tell whether I answered this message before you edited it (it came before I last "
                     "restarted, or too long ago for me to remember), so I leave the edit unanswered rather than "
                     "answer it twice. For its song's mood, {how}.")


def opening_command(message: Message) -> MessageEntity | None:
    """The bot_command entity that opens the message's text, wherever Telegram lists it: a command
    typed in bold (or italic…) over the whole text has its formatting's entity at the same offset,
    and Telegram may list that one first (python-telegram-bot looks at the first entity only: the
    command was then taken for plain text). None when the text does not open with a command."""
    if not message.text:
        return None
    return next((e for e in message.entities if e.type == MessageEntity.BOT_COMMAND and e.offset == 0), None)


class _Command(filters.MessageFilter):
    """filters.COMMAND, by `opening_command`."""

    __slots__ = ()

    def filter(self, message: Message) -> bool:
        return opening_command(message) is not None


COMMAND = _Command(name="COMMAND")


class OpeningCommandHandler(CommandHandler):
    """CommandHandler, by `opening_command`: the same command names, the same `@bot` check, the
    same args (`context.args`)."""

    def check_update(self, update: object):
        if not isinstance(update, Update) or (message := update.effective_message) is None:
            return None
        entity = opening_command(message)
        if entity is None:
            return None
        command, _, named = message.text[1:entity.length].partition("@")
        username = message.get_bot().username or ""
        if command.lower() not in self.commands or (named and named.lower() != username.lower()):
            return None
        found = self.filters.check_update(update)
        return (message.text.split()[1:], found) if found else False


class _InAlbum(filters.MessageFilter):
    """A message that is one item of an album (a media group)."""

    __slots__ = ()

    def filter(self, message: Message) -> bool:
        return message.media_group_id is not None


IN_ALBUM = _InAlbum(name="IN_ALBUM")


def opening_mention(message: Message) -> MessageEntity | None:
    """The mention of this bot that opens the message's text or caption ('@moodbot Creep'), its
    name in any case; None when it opens with no mention of it."""
    text, entities = ((message.text, message.entities) if message.text is not None
                      else (message.caption, message.caption_entities))
    if not text:
        return None
    username = (message.get_bot().username or "").lower()
    return next((e for e in entities if e.type == MessageEntity.MENTION and e.offset == 0
                 and text[1:e.length].lower() == username), None)  # a username is ASCII: as many units


class _OpensWithOurName(filters.MessageFilter):
    """A message whose text opens with this bot's name (`opening_mention`)."""

    __slots__ = ()

    def filter(self, message: Message) -> bool:
        return opening_mention(message) is not None


OPENS_WITH_OUR_NAME = _OpensWithOurName(name="OPENS_WITH_OUR_NAME")


class BoundedRateLimiter(AIORateLimiter):
    """Telegram's flood limits (AIORateLimiter, with retries after 429), plus a bound on requests
    in flight: a burst then waits here, in one semaphore, instead of in the HTTP connection pool,
    whose scheduling cost grows with the number of requests queued in it.

    A 429 Too Many Requests for a chat pauses that chat's calls only, for the `retry_after`
    Telegram named (AIORateLimiter pauses every call, so one busy group held up every answer of
    the bot); one for a call naming no chat still pauses them all. The retries are
    AIORateLimiter's: at most `max_retries`, each after the pause; a call's `rate_limit_args`
    sets its own number, 0 for none (a progress edit is not worth waiting for: `StatusMessage`).
    A call that gives up still leaves its chat paused, so the next one waits instead of being
    refused again.

    Also the one place every call passes: a message sent to a group that became a supergroup
    meanwhile (Telegram refuses it, naming the new chat) is sent there instead, without quoting
    the message it answered, which stayed in the old group. An edit is not redirected: the same
    message id is another message in the new chat. A message quoting one deleted meanwhile, which
    Telegram refuses in a forum topic whatever allow_sending_without_reply says, is sent unquoted."""

    def __init__(self, *, max_in_flight: int = MAX_API_CALLS_IN_FLIGHT, **limits: Any) -> None:
        super().__init__(**limits)
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._retries = limits.get("max_retries", 0)
        self._paused_until: dict[object, float] = {}  # chat id, or EVERY_CHAT -> loop time

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):
        async def bounded(*call_args: Any, **call_kwargs: Any):
            async with self._in_flight:
                return await callback(*call_args, **call_kwargs)

        retries = self._retries if rate_limit_args is None else rate_limit_args
        try:
            return await self._paced(bounded, args, kwargs, endpoint, data, retries)
        except ChatMigrated as moved:
            if "message_id" in data:
                raise
            log.info("telegram.chat_migrated: %s to %s", endpoint, moved.new_chat_id)
            data["chat_id"] = moved.new_chat_id  # `data` is the dict the call (args) is made of
            for quote in QUOTE_PARAMS:
                data.pop(quote, None)
            return await self._paced(bounded, args, kwargs, endpoint, data, retries)
        except BadRequest as refused:
            # The message answered was deleted (a group's command-cleaning bot): in a forum topic,
            # allow_sending_without_reply is "always False", so Telegram refuses the quote there.
            if QUOTED_GONE not in str(refused).lower() or not any(quote in data for quote in QUOTE_PARAMS):
                raise
            log.info("telegram.quoted_message_gone: %s", endpoint)
            for quote in QUOTE_PARAMS:
                data.pop(quote, None)
            return await self._paced(bounded, args, kwargs, endpoint, data, retries)

    async def _paced(self, callback, args, kwargs, endpoint, data, retries: int):
        """The call under AIORateLimiter's flood limits, once its chat's pause (and any pause of
        every chat) is over; after a 429, paused and tried again, `retries` times at most."""
        chat = data.get("chat_id")
        for attempt in range(max(retries, 0) + 1):
            await self._paused(chat)
            # The 429 comes back as a value through AIORateLimiter, whose own retry would pause
            # every chat (so none is left to it).
            outcome = await super().process_request(_returning_retry_after(callback), args, kwargs, endpoint,
                                                    data, None)
            if not isinstance(outcome, RetryAfter):
                return outcome
            if retries == ON_ITS_OWN:
                raise outcome
            self._pause(chat, outcome)
            if attempt == retries:
                raise outcome
        raise AssertionError("unreachable")  # the last attempt returned or raised

    async def _paused(self, chat: object) -> None:
        """Return once neither `chat` nor every chat is paused."""
        loop = asyncio.get_running_loop()
        keys = (EVERY_CHAT,) if chat is None else (EVERY_CHAT, chat_key(chat))
        while (left := max(self._paused_until.get(key, 0.0) for key in keys) - loop.time()) > 0:
            await asyncio.sleep(left)

    def _pause(self, chat: object, refusal: RetryAfter) -> None:
        now = asyncio.get_running_loop().time()
        # Expired pauses are dropped here, so that a bot serving many chats keeps few of them.
        self._paused_until = {key: until for key, until in self._paused_until.items() if until > now}
        key = EVERY_CHAT if chat is None else chat_key(chat)
        until = now + seconds_of(refusal.retry_after) + RETRY_AFTER_MARGIN_S
        self._paused_until[key] = max(until, self._paused_until.get(key, 0.0))
        log.info("telegram.flood_wait: %s for %.1f s", "every chat" if chat is None else "one chat", until - now)


EVERY_CHAT = object()  # the key of a pause for a 429 naming no chat
RETRY_AFTER_MARGIN_S = 0.1  # AIORateLimiter's: Telegram's retry_after is rounded to whole seconds


def _returning_retry_after(callback):
    """`callback`, returning the RetryAfter (429) it would raise."""
    async def call(*args: Any, **kwargs: Any):
        try:
            return await callback(*args, **kwargs)
        except RetryAfter as refusal:
            return refusal
    return call


def refuses_the_bot(error: object) -> bool:
    """Whether `error` is a chat refusing the bot every message: 403 (blocked by the user, removed
    from the group), or 400 from a group that took the bot's right to send messages."""
    if isinstance(error, Forbidden):
        return True
    return isinstance(error, BadRequest) and any(words in str(error).lower() for words in MUTED)


def removed_from_group(error: object) -> bool:
    """Whether `error` is a group's 403 for a bot that is no longer in it ("bot was kicked from the
    group chat", "bot is not a member of the supergroup chat"), not a private chat's (blocked)."""
    words = str(error).lower()
    return isinstance(error, Forbidden) and ("kicked" in words or "not a member" in words)


def chat_key(chat_id: object) -> object:
    """One key per chat, whether PTB passes its id as a number or a string ('@name' as it is)."""
    with contextlib.suppress(ValueError, TypeError):
        return int(chat_id)
    return chat_id


def seconds_of(wait: int | float | timedelta) -> float:
    """A time PTB gives (RetryAfter.retry_after, a media's duration) in seconds: a number, or a
    timedelta when PTB_TIMEDELTA is on."""
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


# The name python-telegram-bot (22.x) gives its polling task: watched for an end after the start.
POLLING_TASK_NAME = "Updater:start_polling:polling_task"


class TelegramFrontend:
    """Adapter between the Telegram Bot API and the use cases; also the Telegram `PromptSender`."""

    platform = PLATFORM

    def __init__(self, settings: Settings, usecases, *, rate_limiter: BaseRateLimiter | None = None,
                 poll_timeout_s: float = POLL_TIMEOUT_S, album_window_s: float = ALBUM_WINDOW_S) -> None:
        if settings.telegram_token is None:
            raise ValueError("TELEGRAM_TOKEN is not set")
        self.settings = settings
        self.usecases = usecases
        self.poll_timeout_s = poll_timeout_s
        self.prompt_read_timeout_s = PROMPT_READ_TIMEOUT_S
        self.album_window_s = album_window_s
        # Updates run concurrently (/mood waits on the classifier), but a burst is answered in
        # arrival order, one sender's updates one after another, and fetched only as fast as it
        # is answered (telegram_flow).
        self.flow = UpdateFlow()
        self.flow.cut_short = self._tell_cut_short
        # The /mood runs of each chat: those of a group the bot was removed from are dropped (chat_runs).
        self.chat_runs = ChatRuns()
        self.splits = SplitAnswers()  # long journal answers a client sent in parts (telegram_split.py)
        self.stop_grace_s = STOP_GRACE_S
        if getattr(usecases, "inbox", None) is not None:  # kept until answered, for a restart after a hard kill
            self.flow.arrivals = _InboxArrivals(self, usecases.inbox)
        self._requests = (AiohttpRequest(CONNECTION_POOL_SIZE, pool_timeout=POOL_TIMEOUT_S),
                          UpdatesRequest(1, gate=self.flow.gate))
        self.app: Application = (
            Application.builder()
            .token(settings.telegram_token.get_secret_value())
            .base_url(settings.telegram_api_url)
            .base_file_url(settings.telegram_file_url)
            .rate_limiter(rate_limiter or BoundedRateLimiter(max_retries=MAX_RETRIES))
            # A group's command-cleaning bot may delete the command before it is answered: the
            # answer still goes out, without the quote.
            .defaults(Defaults(allow_sending_without_reply=True))
            .update_queue(self.flow.queue)
            .concurrent_updates(self.flow.processor)
            .request(self._requests[0])
            .get_updates_request(self._requests[1])  # one long poll at a time
            .job_queue(None)  # daily prompts are scheduled by bot.scheduler, not per front-end
            .build()
        )
        self._actions: set[asyncio.Task] = set()  # "sending a photo…" shown in the background
        # command name -> its handler: what a mistyped or slashless command may have meant, /settings too
        self._commands: dict[str, Callable] = {}
        self._add_handlers()
        # Set when polling has ended for good after the start (the token revoked in BotFather): the
        # app stops once no chat front-end is left, rather than look alive and answer nobody.
        self.lost = asyncio.Event()
        self._conflicts = 0  # 409s said so far: another process polls with this token
        self._albums: dict[tuple[int, str], Album] = {}  # those being collected, by chat and media group
        self._forget_answered: OrderedDict[tuple[int, int] | None, None] = OrderedDict()  # see FORGET_ANSWERED_KEPT
        # update_id -> (chat, message) of the status a run killed outright showed for it (`_replay`)
        self._shown_before: dict[int, tuple[int, int]] = {}
        # update_ids whose own answer a run killed outright sent (an album's songs): not again (`_replay`)
        self._answered_before: set[int] = set()
        # update_id -> when a button's press handed over again (`_replay`) first arrived: a /forget
        # question's age is measured to the press, not to the restart (`question_expired`)
        self._pressed_before: dict[int, datetime] = {}
        # (chat, message id) -> (ANSWERED, NOT_ANSWERED or the update_id answering it, its date in
        # POSIX seconds) of the messages this run handled, for their edits (`_edit_to_answer`)
        self._messages: OrderedDict[tuple[int, int], tuple[str | int, float]] = OrderedDict()
        # update_id of an album's first item -> the album (chat, media group), the event set once
        # it is settled, and its other items, which it answers: noted as it is (`on_settled`)
        self._album_items: dict[int, tuple[tuple[int, str], asyncio.Event, list[Message]]] = {}
        # (chat, media group) -> the event set once its latest collection is answered (or not): an
        # edit of an item waits for it (`on_edited`). An item late past its album's window is
        # collected by itself, maybe while the album is still answered: the later replaces it.
        self._albums_settled: dict[tuple[int, str], asyncio.Event] = {}
        self._forgotten_until = 0.0  # the latest date of a message dropped from `_messages`
        self.edits_from = float("inf")  # the earliest date of a message not handled whose edit is answered

    # ---- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self.edits_from = time.time() + EDIT_CLOCK_MARGIN_S
        try:
            await self.app.initialize()
        except BaseException:  # e.g. a rejected token: PTB leaves its HTTP sessions open
            for request in self._requests:
                await request.shutdown()
            raise
        try:
            await self._set_menus()
            await self.app.start()
            await self._replay()
            await self.app.updater.start_polling(timeout=self.poll_timeout_s, drop_pending_updates=False,
                                                 allowed_updates=ALLOWED_UPDATES, error_callback=self._poll_failed)
        except BaseException:
            await self.stop()
            raise
        # python-telegram-bot ends its polling task, by the name it gives it, on a token Telegram
        # no longer takes, with one line of its own; nothing else would say so.
        for task in asyncio.all_tasks():
            if task.get_name() == POLLING_TASK_NAME:
                task.add_done_callback(self._polling_ended)
        log.info("telegram front-end polling as @%s", self.app.bot.username)

    async def _set_menus(self) -> None:
        """Telegram's '/' menus (`command_menus`). One Telegram refuses (a 400, its flood control of
        setMyCommands, a 5xx) stopped the start, the bot down on Telegram (a 429 waited out three
        times first, 90 s for a 'retry after 30'), for a convenience: Telegram keeps the menus an
        earlier start set, and /start and /help answer without one. Said in one WARNING, the rest
        not tried, the start going on; the next start sets them."""
        for scope, left_out in command_menus():
            try:
                await self.app.bot.set_my_commands(
                    [BotCommand(name, text) for name, text in COMMANDS if name not in left_out], scope=scope,
                    rate_limit_args=ON_ITS_OWN)
            except TelegramError as error:
                log.warning("telegram.menu_not_set", extra={
                    "scope": scope.type, "reason": f"{type(error).__name__}: {error}"[:MAX_REASON]})
                return

    async def _replay(self) -> None:
        """Hand over again the updates a run killed outright was handed and never answered
        (python-telegram-bot acknowledged them to Telegram long before their answer)."""
        if self.flow.arrivals is None:
            return
        replayed = []
        for arrival in await self.usecases.inbox.replay(self.flow.arrivals.source, waits_on_database=_is_move):
            try:
                replayed.append(Update.de_json(arrival.payload, self.app.bot))
            except Exception as error:  # noqa: BLE001 - kept by another version of the library
                # Which (its req=, as the killed run's lines of it) and why, in the library's words,
                # cut as `readable` cuts them of an update polled: the type alone said neither.
                log.warning("telegram.not_replayed", extra={
                    "req": f"tg-{arrival.number}", "user": arrival.user_id,
                    "reason": f"{type(error).__name__}: {error}"[:MAX_REASON]})
                continue
            if arrival.shown is not None:  # the killed run's "Fetching…": the answer goes in it
                self._shown_before[arrival.number] = (int(arrival.shown[0]), int(arrival.shown[1]))
            if arrival.parts:
                self._answered_before.add(arrival.number)
            press = arrival.payload.get("callback_query")
            if isinstance(press, dict) and FORGET_DATA.match(str(press.get("data"))) and arrival.received is not None:
                self._pressed_before[arrival.number] = arrival.received
        self.flow.replay(replayed)

    def _polling_ended(self, task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is None:  # stop() ended it
            return
        log.error("telegram.polling_lost", extra={"reason": (
            f"Telegram refused the token while the bot ran ({task.exception()}): the bot is offline on "
            "Telegram until restarted; check TELEGRAM_TOKEN (revoked or regenerated in @BotFather?)")})
        self.lost.set()

    def _poll_failed(self, error: TelegramError) -> None:
        """A failed getUpdates, tried again by python-telegram-bot (its default logs a traceback
        each time). A 409 is another process polling with this token: each then gets only some of
        the updates; said at the first, then every hundredth."""
        if isinstance(error, Conflict):
            if self._conflicts % 100 == 0:
                log.error("telegram.polling_conflict", extra={"reason": (
                    f"{error}: another process polls Telegram with this TELEGRAM_TOKEN, and each gets only "
                    "some of the updates; run one bot per token"), "times": self._conflicts + 1})
            self._conflicts += 1
            return
        log.warning("telegram.polling_failed", extra={"reason": f"{type(error).__name__}: {error}"})

    async def finish(self) -> None:
        """The stop's first part, which the app runs for all its front-ends at once: no more
        updates fetched, and those in progress answered or their senders told (`UpdateFlow.finish`).
        PTB's own stop waits for every update in progress, however long (a download: up to 90 s):
        `docker stop` then killed the bot, and those users were never answered. Those fetched are
        acknowledged to Telegram now (the updater's stop), so each is answered, or told to send it
        again. Both at once: the updater's last getUpdates waits out its read timeout (5 s) on a
        Telegram slow to answer, and the grace after it took the stop past `docker stop`'s 10 s."""
        async def stop_fetching() -> None:
            if self.app.updater.running:
                try:
                    await self.app.updater.stop()
                except TelegramError:  # the polling task's own end, said by `_polling_ended`
                    if not self.lost.is_set():
                        raise

        async def finish_updates() -> None:
            if self.app.running:
                cut = await self.flow.finish(self.stop_grace_s, CUT_SHORT_TELL_S)
                if cut:
                    log.warning("telegram.cut_short_by_stop", extra={"updates": cut})

        fetching, updates = await asyncio.gather(stop_fetching(), finish_updates(), return_exceptions=True)
        await self.flow.flush(CLEAR_AT_STOP_S)  # answered, or told to send it again: not replayed
        for outcome in (fetching, updates):
            if isinstance(outcome, BaseException):
                raise outcome

    async def stop(self) -> None:
        for action in self._actions:
            action.cancel()
        await self.finish()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    async def _tell_cut_short(self, update: Update) -> None:
        """Tell the sender of an update the stop cut short (or never started) to send it again: a
        button's press is answered; a message is, where the bot answers messages (a private chat;
        in a group, one of its commands, or one naming it). Not a group's reply to the bot without
        one, nor a command of no bot's name (another bot's), which the bot leaves unanswered."""
        if (query := update.callback_query) is not None:
            try:
                await query.answer(render.RESTARTING, show_alert=True)
                return
            except BadRequest:  # the handler answered it at once (to stop its spinner): one answer each
                if not isinstance(query.message, Message):  # none, or one days old the bot may not see
                    return
            await send_reply(query.message, render.RESTARTING)  # under the message of the button
            return
        message = update.message  # not an edit, unless it asks for a song's mood: else nobody waits for it
        if message is None and update.edited_message is not None and self._edit_to_answer(update):
            message = update.edited_message
        # A bot's message: nobody waits. Not an anonymous admin's, which Telegram sends `from`
        # GroupAnonymousBot, a bot, with the group as its sender_chat: a person is behind it.
        if message is None or message.from_user is None or (message.from_user.is_bot and message.sender_chat is None):
            return
        username = self.app.bot.username
        command = (message.text or message.caption or "").startswith("/")
        ours = command_typed(message).lower() in self._commands and not addressed_elsewhere(message, username)
        if message.chat.type == ChatType.PRIVATE or (command and (ours or addressed_to(message, username))):
            await send_reply(message, render.RESTARTING)

    # ---- PromptSender ----------------------------------------------------------------------------
    async def send_prompt(self, prompt: PromptMessage) -> str | None:
        try:
            message = await self.app.bot.send_message(
                chat_id=int(prompt.chat_id), text=prompt_text(prompt.phrase),
                reply_markup=ForceReply(input_field_placeholder="A song…"), read_timeout=self.prompt_read_timeout_s,
            )
        except Forbidden as error:  # "bot was blocked by the user", "user is deactivated"
            raise RecipientGone(str(error)) from error
        except TimedOut as error:
            if never_sent(error):  # no connection was made: the prompt never left, and is tried again later
                raise DeliveryFailed(f"sendMessage: no connection made: {error}") from error
            # The request went out: Telegram may have sent the message, whose id never came back.
            raise DeliveryUncertain(f"sendMessage timed out: {error}") from error
        except BadRequest as error:
            if any(words in str(error).lower() for words in CHAT_UNKNOWN):  # refused until the user writes again
                raise RecipientGone(str(error)) from error
            raise  # Telegram refused what the bot sent: the bot's doing, not an outage
        except (NetworkError, RetryAfter) as error:  # a 5xx (after telegram_http's retry), a 429, the network
            raise DeliveryFailed(f"{type(error).__name__}: {error}") from error
        return str(message.message_id)

    async def _is_prompt(self, caller: Caller, chat_id: int, replied: Message) -> bool:
        """Whether `replied` is one of the caller's journal prompts: a known prompt message, or
        the open prompt whose send timed out (its id never came back) when it shows its text."""
        journal = self.usecases.journal
        if await journal.is_prompt_message(PLATFORM, str(chat_id), str(replied.message_id)):
            return True
        if replied.from_user is None or replied.from_user.id != self.app.bot.id:
            return False
        shown = (replied.text or "").strip()
        return await journal.claim_prompt_message(
            caller, str(chat_id), str(replied.message_id),
            shows=lambda phrase: prompt_text(phrase).strip() == shown)

    # ---- wiring ----------------------------------------------------------------------------------
    def _add_handlers(self) -> None:
        app = self.app
        # A supergroup whose move from its old id the database did not let finish: finished first.
        app.add_handler(TypeHandler(Update, self.on_any_update), group=BEFORE_ANSWER)
        for names, callback in (
            (["help", "start"], self.on_help), ("mood", self.on_mood), ("journal", self.on_journal),
            ("stats", self.on_stats), ("playlist", self.on_playlist), ("servermood", self.on_server_mood),
            ("share", self.on_share), ("serverplaylist", self.on_server_playlist),
            ("export", self.on_export), ("forget", self.on_forget), ("settings", self.on_settings),
        ):
            app.add_handler(OpeningCommandHandler(names, callback, filters=NEW_MESSAGE))
            self._commands.update(dict.fromkeys([names] if isinstance(names, str) else names, callback))
        # A group upgraded to a supergroup gets a new id (both chats get a service message).
        app.add_handler(MessageHandler(NEW_MESSAGE & filters.StatusUpdate.MIGRATE, self.on_migrate))
        # Members leaving and joining: the service messages, and chat_member where the bot is an admin.
        app.add_handler(MessageHandler(NEW_MESSAGE & filters.StatusUpdate.LEFT_CHAT_MEMBER, self.on_member_left))
        app.add_handler(MessageHandler(NEW_MESSAGE & filters.StatusUpdate.NEW_CHAT_MEMBERS, self.on_members_joined))
        app.add_handler(ChatMemberHandler(self.on_chat_member, ChatMemberHandler.CHAT_MEMBER))
        app.add_handler(ChatMemberHandler(self.on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER))
        app.add_handler(CallbackQueryHandler(self.on_playlist_button, pattern=r"^playlist:"))
        app.add_handler(CallbackQueryHandler(self.on_forget_button, pattern=FORGET_DATA))
        app.add_handler(CallbackQueryHandler(self.on_journal_page_button, pattern=r"^journal:"))
        # Any other press (a button of an earlier version, crafted data) is answered too: an
        # unanswered one spins until Telegram gives up.
        app.add_handler(CallbackQueryHandler(self.on_unknown_button))
        private = NEW_MESSAGE & filters.ChatType.PRIVATE
        # Any other command in the private chat, or naming this bot in a group: say so (in groups,
        # one naming no bot may be another bot's). One of ours naming another bot in the private
        # chat is run (`on_unknown_command`).
        app.add_handler(MessageHandler(NEW_MESSAGE & COMMAND, self.on_unknown_command))
        # A group's message opening with the bot's name (Telegram hands it over in privacy mode
        # too): how the bot is asked there.
        app.add_handler(MessageHandler(
            NEW_MESSAGE & filters.ChatType.GROUPS & (filters.TEXT | (filters.CAPTION & ~IN_ALBUM)) & OPENS_WITH_OUR_NAME,
            self.on_mentioned))
        # An album's items, wherever its caption sits, are answered together (before the handlers
        # below, which would each answer one item, or only the captioned one).
        app.add_handler(MessageHandler(NEW_MESSAGE & IN_ALBUM & (AUDIO_FILTER | filters.PHOTO), self.on_album_item))
        # A reply to a daily prompt in the private chat becomes a journal entry.
        app.add_handler(MessageHandler(
            private & filters.REPLY & ((filters.TEXT & ~COMMAND) | AUDIO_FILTER),
            self.on_private_reply))
        # Other private text: a hint (in groups, the bot only listens to commands).
        app.add_handler(MessageHandler(private & filters.TEXT & ~COMMAND, self.on_private_text))
        # Audio sent privately, or in a group with a /mood caption, gets classified.
        asked = filters.ChatType.PRIVATE | filters.CaptionRegex(MOOD_CAPTION)
        app.add_handler(MessageHandler(NEW_MESSAGE & AUDIO_FILTER & asked, self.on_mood))
        app.add_handler(MessageHandler(NEW_MESSAGE & (filters.PHOTO | filters.ANIMATION) & asked, self.on_not_a_song))
        app.add_handler(MessageHandler(private & NOT_A_SONG_FILTER, self.on_not_a_song))
        # A message edited to ask for a song's mood, where it was not answered.
        app.add_handler(MessageHandler(EDITED_MESSAGE & (COMMAND | filters.CaptionRegex(MOOD_CAPTION)), self.on_edited))
        # A reply to a daily prompt edited: said to change nothing, where it was met with silence.
        app.add_handler(MessageHandler(EDITED_MESSAGE & filters.ChatType.PRIVATE & filters.REPLY & ~COMMAND,
                                       self.on_edited_answer))
        # After the answer (a later group): why the prompts stopped, to a user back in the private chat.
        app.add_handler(MessageHandler(private, self.on_back_in_private), group=AFTER_ANSWER)
        app.add_handler(TypeHandler(Update, self.on_settled), group=SETTLED)
        app.add_error_handler(self.on_error)

    # ---- handlers --------------------------------------------------------------------------------
    async def on_back_in_private(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        notice = await self.usecases.journal.pause_notice(caller_of(update))
        if notice is not None:  # under the answer, in its topic where the bot has topics in private chats
            await send_reply(update.effective_message, clip(notice))

    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text(text_of(self.usecases.help(mood=MOOD_HELP)))

    async def on_unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        private = message.chat.type == ChatType.PRIVATE
        ours = self._commands.get(command_typed(message).lower())
        if private and ours is not None:  # '/mood@other_bot': no other bot is in a private chat
            context.args = (message.text or "").split()[1:]  # as CommandHandler sets them
            await ours(update, context)
            return
        if private or addressed_to(message, context.bot.username):
            self._told_how_to_ask(message)
            typed = command_typed(message)
            if typed.lower() in STOP_WORDS:
                await message.reply_text(STOP_HINT.format(typed=typed))
                return
            meant = did_you_mean(typed, self._commands)
            await message.reply_text(clip(f"{meant} {HELP_TAIL}") if meant else UNKNOWN_COMMAND)

    async def on_mentioned(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A group's message that opens with the bot's name, as people address a bot ('@moodbot
        Creep'): how the bot is asked in a group; a command of its own typed after the name, to be
        sent first (commands are read from the start of a message); a command's name without its
        slash, with it. A file captioned so: how to ask for its mood."""
        message = update.effective_message
        self._told_how_to_ask(message)  # corrected by an edit to '/mood…', answered
        if message.text is None and audio_of(message) is not None:
            await message.reply_text(MENTIONED_FILE)
            return
        text = message.text if message.text is not None else message.caption
        rest = text[opening_mention(message).length:].lstrip(" \n,:;")
        command = (rest.split(None, 1) or [""])[0]
        if command.startswith("/") and command[1:].split("@", 1)[0].lower() in self._commands:
            await message.reply_text(clip(MENTIONED_COMMAND.format(command=as_typed(rest, NO_SLASH_QUOTED_CHARS))))
            return
        await message.reply_text(clip(slash_forgotten(rest, self._commands) or MENTIONED))

    async def on_not_a_song(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A picture or a GIF (privately, or captioned /mood in a group), a sticker, a location, a
        contact, a poll or a dice (privately): named, and what works said instead; a picture
        captioned with a song's link alone (or forwarded), the command for that link."""
        message = update.effective_message
        if addressed_elsewhere(message, context.bot.username):
            return
        caller = self.usecases.privacy.arrived(caller_of(update))
        answering = await self._replies_to_prompt(message, caller)
        # A screenshot of the player in reply to a daily prompt, the song named under it: the
        # caption answers the prompt.
        if answering and message.caption:
            await self._answer_prompt(message, caller, str(message.reply_to_message.message_id))
            return
        if MOOD_CAPTION.match(message.caption or "") and command_text(message):
            await self.on_mood(update, context)  # '/mood <song>' under a picture: the song
            return
        self._told_how_to_ask(message)  # a caption corrected to '/mood <song>' is answered
        # A song's link under a picture (a music channel's post, forwarded: the cover and the link):
        # the command for it, as the link alone gets.
        link = link_alone(message, self.settings.allowed_host_set) if message.caption else None
        await message.reply_text(clip(LINK_ALONE.format(link=link)) if link else not_a_song(message, answering))

    async def on_private_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        # A new user's first words are often a song's name, or a command without its slash.
        message = update.effective_message
        if await self._split_part(message, caller_of(update)):
            return
        link = link_alone(message, self.settings.allowed_host_set)
        self._told_how_to_ask(message)
        typed = full_width_command(message.text or "", self._commands)
        hint = FULL_WIDTH_SLASH_HINT.format(typed=as_typed(typed, NO_SLASH_QUOTED_CHARS)) if typed else None
        await message.reply_text(hint or slash_forgotten(message.text or "", self._commands)
                                 or (clip(LINK_ALONE.format(link=link)) if link else TEXT_HINT))

    async def on_mood(self, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller | None = None) -> None:
        caller = caller or self.usecases.privacy.arrived(caller_of(update))  # before the download
        message = update.effective_message
        if addressed_elsewhere(message, context.bot.username):  # '/mood@other_bot' on an audio file
            return
        if self.chat_runs.is_gone(message.chat_id):  # asked before the bot's removal, started after it
            # INFO, one line a run, as a refused /mood's (see `ChatRuns.is_gone`): its asker hears
            # nothing, and this is the log's only line of the request.
            log.info("telegram.mood_dropped_chat_gone",
                     extra=whose(message.chat, sender_of(message, message.from_user)))
            return
        # '/mood <song>' typed in reply to a daily prompt answers it, as audio captioned '/mood' does
        # (which on_private_reply answers).
        if message.text is not None and await self._answered_prompt(message, caller):
            return
        text, source = command_text(message), message
        if not text and audio_of(message) is None:
            source = song_replied_to(message, context.bot.id)
            text = "" if source is None or audio_of(source) is not None else replied_words(message, source)
        if source is not None and not text and carries_no_song(source):  # '/mood' under a GIF, a sticker…
            await message.reply_text(not_a_song(source))
            return
        if source is None or (not text and audio_of(source) is None):
            in_group = update.effective_chat.type in GROUP_TYPES
            self._told_how_to_ask(message)
            await message.reply_text(GROUP_MOOD_USAGE if in_group else MOOD_USAGE)
            return
        note = typed_aside(message) if source is message else None  # a file captioned '/mood <song>'
        notice = None  # under the mood, in the private chat: today's prompt is still open (a group's: said nowhere)

        async def heard(attachment: Attachment | None, progress: StatusMessage) -> object:
            nonlocal note, notice
            reply = await self.usecases.mood.run(caller, text or None, attachment, progress=run.told(progress))
            if attachment is None:  # a YouTube link to a moment, another service's link searched by name
                note = self.usecases.mood.link_note(reply, text)
            if message.chat.type == ChatType.PRIVATE and not isinstance(reply, ErrorReply):
                notice = await self.usecases.journal.not_saved_notice(caller, ANSWER_BY_REPLY)
            return reply

        with self.chat_runs.running(message.chat_id) as run:  # its download too
            await self._run_with_progress(message, heard, source=source, as_text=lambda reply: noted(
                reply, None if isinstance(reply, ErrorReply) else "\n".join(filter(None, (note, notice)))),
                admit=lambda: self.usecases.mood.admitted(caller))

    async def on_album_item(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        arrived = self.usecases.privacy.arrived(caller_of(update))  # this item's moment, not the album's
        key = (update.effective_chat.id, update.effective_message.media_group_id)
        if key not in self._albums:  # its first item: the album is settled once this update is
            self._albums_settled[key] = settled = asyncio.Event()
        items = await collect_album(update, arrived, self._albums, self.album_window_s)
        if items is None:  # another item's handler collects and answers the album
            return
        # Every item is answered with the album (or none is): an item's edit asking for its
        # mood is answered only where the album was not (`_edit_to_answer`).
        others = [item.effective_message for item, _ in items if item is not update]
        for message in others:
            self._note_message(message, update.update_id)
        self._album_items[update.update_id] = (key, settled, others)
        await self._answer_album(items, context)

    async def _answer_album(self, items: list[tuple[Update, Caller]], context: ContextTypes.DEFAULT_TYPE) -> None:
        """An album is asked about as one message would be: privately, or with a /mood caption on
        any item (in a group, by whoever captioned it). Its pictures are skipped; an album of
        pictures only answers a daily prompt as one picture does, with the song named in the first
        item's caption that has words. Each item comes with its caller as it arrived (`collect_album`)."""
        messages = [item.effective_message for item, _ in items]
        if any(addressed_elsewhere(message, context.bot.username) for message in messages):
            return
        asker = next((item for item in items if MOOD_CAPTION.match(item[0].effective_message.caption or "")), None)
        private = items[0][0].effective_chat.type == ChatType.PRIVATE
        if asker is None and not private:
            return
        asker, caller = asker or items[0]
        songs = [(item.effective_message, arrived) for item, arrived in items
                 if audio_of(item.effective_message) is not None]
        song_updates = [item.update_id for item, _ in items if audio_of(item.effective_message) is not None]
        prompt_id = await self._prompt_answered(messages, caller) if private else None
        if not songs:
            named = next(((item.effective_message, arrived) for item, arrived in items
                          if journal_note(item.effective_message)), None)
            if prompt_id is not None and named is not None:  # a player's screenshots, the song under one
                await self._answer_prompt(*named, prompt_id)
            else:  # a song's link under one (a channel's post forwarded): the command for it
                link = next(filter(None, (link_alone(message, self.settings.allowed_host_set)
                                          for message in messages if message.caption)), None) if private else None
                await asker.effective_message.reply_text(clip(LINK_ALONE.format(link=link)) if link else
                                                         not_a_song(asker.effective_message, prompt_id is not None))
            return
        if prompt_id is not None:
            caption = next((journal_note(message) for message in messages if message.caption), "")
            # One entry of the whole album: a /forget after any of its items drops it.
            first = replace(caller, erasures=min(arrived.erasures for _, arrived in items))
            await self._answer_prompt_with_album(first, [song for song, _ in songs], caption, prompt_id)
        else:
            await self._album_moods(caller, songs, typed_aside(asker.effective_message, [song for song, _ in songs]),
                                    song_updates)

    async def _album_moods(self, caller: Caller, songs: list[tuple[Message, Caller]], aside: str | None,
                           update_ids: list[int]) -> None:
        """Each song's mood under it, one song at a time; after a refusal to wait (the per-user
        limit), the rest would be refused too, one message each: the refusal says so once. Each
        song is the asker's as it arrived: a /forget after it drops its record. `aside`, the note
        that the caption's song was left aside, is said once, with the first mood told; the songs
        the refusal leaves unheard are noted not answered, so that an edit asking for one's mood is
        (`_edit_to_answer`). Each answer is noted where the songs' updates are kept (`update_ids`,
        `UpdateFlow.answered`): the album handed over again after a hard kill answers only the songs
        not answered, and after a refusal that ended them, nothing more."""
        before = [update_id in self._answered_before for update_id in update_ids]
        self._answered_before.difference_update(update_ids)
        if any(before):  # said before the restart, with the first mood told
            aside = None
        chat = songs[0][0].chat_id
        with self.chat_runs.running(chat) as run:  # a group that removes the bot drops the songs left
            for index, (song, arrived) in enumerate(songs):
                if before[index]:
                    continue
                if self.chat_runs.is_gone(chat):  # removed while the model had the song before
                    return
                run.stage = None
                left = len(songs) - index - 1
                asked = replace(caller, erasures=arrived.erasures)
                reply = await self._run_with_progress(
                    song, lambda attachment, progress: self.usecases.mood.run(asked, None, attachment,
                                                                              progress=run.told(progress)),
                    as_text=lambda reply: noted(reply, ALBUM_STOPPED.format(count=left) if told_to_wait(reply) and left
                                                else None if isinstance(reply, ErrorReply) else aside),
                    admit=lambda: self.usecases.mood.admitted(asked))
                if told_to_wait(reply):
                    self.flow.answered(update_ids[index:])  # the rest said not heard
                    for unheard, _ in songs[index + 1:]:  # no answer of their own: an edit asking is answered
                        self._note_message(unheard, NOT_ANSWERED)
                    return
                self.flow.answered(update_ids[index:index + 1])
                if not isinstance(reply, ErrorReply):
                    aside = None

    async def _answer_prompt_with_album(self, caller: Caller, songs: list[Message], caption: str,
                                        prompt_id: str) -> None:
        """A prompt keeps one song: the album's first, saying so when there were more, and how to keep another."""
        def note(reply: object) -> str | None:
            if len(songs) < 2 or not isinstance(reply, JournalSavedReply):
                return None
            return ALBUM_ONE_SONG_PER_PROMPT.format(count=len(songs), day=reply.local_date.isoformat())

        with self.usecases.journal.answering(caller):  # its download too: "/journal delete last" is refused till done
            await self._run_with_progress(
                songs[0], lambda attachment, progress: self.usecases.journal.answer(
                    caller, caption or None, attachment, prompt_message_id=prompt_id,
                    message_id=str(songs[0].message_id), progress=progress),
                as_text=lambda reply: noted(reply, note(reply)))

    async def _prompt_answered(self, messages: list[Message], caller: Caller) -> str | None:
        """The id of the journal prompt the album replies to, if it replies to one."""
        replied = next((m.reply_to_message for m in messages if m.reply_to_message is not None), None)
        if replied is None:
            return None
        found = await self._is_prompt(caller, messages[0].chat_id, replied)
        return str(replied.message_id) if found else None

    async def on_private_reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        caller = self.usecases.privacy.arrived(caller_of(update))  # before the download
        message = update.effective_message
        if await self._split_part(message, caller) or await self._answered_prompt(message, caller):
            return
        if audio_of(message) is not None:  # a reply with audio to something else: still /mood
            await self.on_mood(update, context, caller)
        else:
            await self.on_private_text(update, context)

    async def _answered_prompt(self, message: Message, caller: Caller) -> bool:
        """Whether `message` replies to one of the caller's daily prompts in the private chat, and
        if so, answer that prompt with it (`_answer_prompt`)."""
        if not await self._replies_to_prompt(message, caller):
            return False
        await self._answer_prompt(message, caller, str(message.reply_to_message.message_id))
        return True

    async def _replies_to_prompt(self, message: Message, caller: Caller) -> bool:
        """Whether `message` replies to one of the caller's daily prompts in the private chat."""
        replied = message.reply_to_message
        return (message.chat.type == ChatType.PRIVATE and replied is not None
                and await self._is_prompt(caller, message.chat_id, replied))

    async def _answer_prompt(self, message: Message, caller: Caller, prompt_id: str) -> None:
        """Answer the daily prompt `prompt_id` (the id of its message) with `message`: its song, and
        its words as the entry's note."""
        split = self.splits.opened(message, prompt_id)  # a client's first part, maybe: its next join its note
        # Its own step: the parts after it, noted while it is answered, put theirs in `split.step`.
        step = None if split is None else split.step
        day = None
        try:
            if split is not None and split.held and self._said_before():  # handed over again for its parts: read, not said again
                saved = await self.usecases.journal.saved_by(caller, str(message.message_id))
                day = (SPLIT_NOT_LOOKED_UP if isinstance(saved, ErrorReply)  # the database failed the lookup
                       else None if saved is None else saved.local_date.isoformat())
                if saved is not None and not isinstance(saved, ErrorReply):  # which parts joined it before
                    split.note_before = saved.note or ""
            else:
                async def answer(attachment: Attachment | None, progress: StatusMessage) -> object:
                    # The outcome the next parts go by, known before its reply is sent: Telegram
                    # failing that send (a 502) told them their first part saved nothing, and
                    # their words were not added, though its entry was stored (until 2026-12-06).
                    nonlocal day
                    reply = await self.usecases.journal.answer(
                        caller, journal_note(message) or None, attachment, prompt_message_id=prompt_id,
                        message_id=str(message.message_id), progress=progress)
                    day = reply.local_date.isoformat() if isinstance(reply, JournalSavedReply) else None
                    return reply

                with self.usecases.journal.answering(caller):  # its download too: "/journal delete last" is refused till done
                    await self._run_with_progress(message, answer)
        finally:
            if step is not None:
                self.splits.settle(step, day)
        if split is not None and split.held:  # answered (one the stop cut short is told so, and goes)
            self._kept_for_parts(split)

    def _said_before(self) -> bool:
        """Whether the running update, handed over again after a restart, was answered before it
        (`UpdateFlow.answered`); forgotten once asked."""
        update_id = CURRENT_UPDATE.get()
        said = update_id in self._answered_before
        self._answered_before.discard(update_id)
        return said

    def _kept_for_parts(self, split: SplitAnswer, *, said: bool = True) -> None:
        """The running update, a long answer or a part of it, stays kept until no part can follow
        (`SplitAnswers.over`), for a restart to hand it over again with the parts after it; `said`:
        its answer noted given, not to be said again then (`telegram_split.py`)."""
        if said:
            self.flow.answered([CURRENT_UPDATE.get()])
        self.flow.done_after(lambda: self.splits.over(split), held=True)  # handled: restarts in the hold don't count

    async def _split_part(self, message: Message, caller: Caller) -> bool:
        """Whether `message` is the next part of a long journal answer a client sent in parts
        (`telegram_split.py`); if so, its words are added to the entry's note once the parts
        before are, and the user told once."""
        if message.chat.type != ChatType.PRIVATE:
            return False
        await self.splits.after_earlier(message)  # a part before it, slow to be read, is read first
        if (following := self.splits.following(message)) is None:
            return False
        split, before, step, separator = following
        day = None
        said_before = self._said_before()  # handed over again after a restart, answered before it
        try:
            day = await before
            said = await self._joined(message, caller, split, day, separator, said_before)
        finally:
            self.splits.settle(step, day)
        if split.held:  # done (one the stop cut short is told so, and goes)
            self._kept_for_parts(split, said=said)
        return True

    async def _joined(self, message: Message, caller: Caller, split: SplitAnswer, day: str | None,
                      separator: str, said_before: bool = False) -> bool:
        """The part's words added to the note of the entry made on `day` (None: nothing saved;
        SPLIT_NOT_LOOKED_UP: not known, tried all the same), and the user told once; whether
        anything was said. `said_before`: handed over again after a restart, the part was answered
        before it, joined (told, or the telling said before it) or refused: not said again, unless
        its words, refused then, are added now. Until 2026-12-06 such a part was taken as told it
        joined: one refused for a note full was refused again and told so twice, and one the
        database had refused, added at the restart, was never told (nor the parts after it)."""
        words = linked_text(message)
        # Joined before where the note the restart found holds its words (not known: taken so), as
        # the database looks for them (`part_held`): a short part at the note's end only. Found
        # anywhere, a short last part whose words came earlier too ("grandma hummed along."),
        # refused before the restart and added now, was taken as joined and never told so.
        joined_before = said_before and (split.note_before is None or part_held(split.note_before, words))
        if joined_before:
            split.told = True
        if day is not None:
            if split.rest_refused:  # a part before it refused (a note full, the database): the rest with it
                return False
            added = await self.usecases.journal.add_to_note(caller, str(split.answer_id), words, separator)
            if isinstance(added, ErrorReply):  # the parts after it refused with it: the note keeps no gap
                split.rest_refused = True
                # once, not once a part of a pasted megabyte, nor again after a restart
                if said_before or added.message == split.refused:
                    if not joined_before:  # refused before the restart: said
                        split.refused = added.message
                    return False
                split.refused = added.message
                await message.reply_text(added.message)
                return True
            day = added.local_date.isoformat()
        # A part whose refusal was said before the restart, added now: told, whatever joined before
        # it. Taken as told (a part before it joined and said so), it was added without a word, the
        # user's last of it "those words are not saved".
        if split.told and (joined_before or not said_before):
            return False
        split.told = True
        await message.reply_text(SPLIT_ANSWER_JOINED.format(day=day) if day else SPLIT_ANSWER_NOT_SAVED)
        return True

    async def on_journal(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._refused(update, context, "journal", private_only=True):
            return
        message, args, caller = update.effective_message, context.args or [], caller_of(update)
        action = args[0].lower() if args else ""
        if not action:  # a tap on /journal in the '/' menu: whether it is on, today's prompt, what it takes
            status = await self.usecases.journal.status(caller, how=TODAY_BY_REPLY)
            reply = replace(status, text=f"{status.text}\n{JOURNAL_USAGE}") if status else TextReply(JOURNAL_USAGE)
        elif action == "on":  # a zone typed with spaces: 'America/New York'; left out, the saved one
            reply = await self.usecases.journal.enable(caller, args[1] if len(args) > 1 else None,
                                                       " ".join(args[2:]) or None)
        elif action == "off":  # words after it ('/journal off now') change nothing, as on the console
            reply = await self.usecases.journal.disable(caller)
        elif action == "list":  # '/journal list 2 3': the page it can't read named
            text, reply = journal_page(await self.usecases.journal.list(caller, page=" ".join(args[1:]) or 1))
            await message.reply_text(text, reply_markup=journal_pages_keyboard(reply, caller))
            return
        elif action == "delete":
            # The message's id: handed over again after a hard kill (the inbox), it deletes nothing more.
            reply = await self.usecases.journal.delete(caller, " ".join(args[1:]), message_id=str(message.message_id))
        elif action == "prompt":  # '/journal prompt now', as on the console
            reply = await self.usecases.journal.prompt_now(caller)
            if not isinstance(reply, ErrorReply):
                # Sent in this private chat, the prompt is the answer: a "Sent: …" under it would be
                # the last message, the one a reply goes to, and a reply there answers no prompt.
                return
        elif action == "answer":
            reply = ErrorReply(JOURNAL_ANSWER_HERE)
        else:  # '/journal 21:30 Europe/Lisbon': the 'on' left out; '/journal stop': off meant
            typed = " ".join(args)
            reply = ErrorReply(on_left_out(typed) or journal_word_meant(typed, JOURNAL_WORDS) or JOURNAL_USAGE)
        await message.reply_text(text_of(reply))

    async def on_journal_page_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """◀ Older / Newer ▶ under /journal list: the next page replaces the shown one. Only in the
        owner's private chat, pressed by the owner: a journal is never shown where others see it."""
        query = update.callback_query
        pressed = JOURNAL_PAGE_DATA.match(query.data or "")
        chat = query.message.chat if query.message is not None else None
        if (pressed is None or pressed.group(1) != str(query.from_user.id) or chat is None
                or chat.type != ChatType.PRIVATE or chat.id != query.from_user.id):
            await answer_query(query, NOT_YOUR_BUTTON, show_alert=True)
            return
        await answer_query(query)
        caller = caller_of(update)
        _, direction, cursor = pressed.groups()
        text, reply = journal_page(
            await self.usecases.journal.list(caller, **{"before" if direction == "older" else "after": cursor}))
        await edit_shown(query, text, journal_pages_keyboard(reply, caller))

    async def on_stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._refused(update, context, "stats", private_only=True):
            return
        self._show_action(update.effective_message, ChatAction.UPLOAD_PHOTO)
        reply = await self.usecases.journal.stats(caller_of(update), " ".join(context.args or ()))
        await self._send(update.effective_message, reply)

    async def on_playlist(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, args, caller = update.effective_message, context.args or [], caller_of(update)
        if not args:
            # No keyboard whose every button would fail (a private chat, playlists off): why, at once.
            if (closed := await self.usecases.playlists.closed(caller)) is not None:
                await message.reply_text(text_of(closed))
                return
            keyboard = [[InlineKeyboardButton(render.mood_label(m), callback_data=f"playlist:{m}")
                         for m in MOODS]]
            await message.reply_text("Which mood?", reply_markup=InlineKeyboardMarkup(keyboard))
            return
        reply = await self.usecases.playlists.playlist(caller, " ".join(args))
        await message.reply_text(text_of(reply))

    async def on_playlist_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        await answer_query(query)
        reply = await self.usecases.playlists.playlist(caller_of(update), query.data.split(":", 1)[1])
        await edit_shown(query, text_of(reply))

    async def on_server_mood(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        reply = await self.usecases.playlists.server_mood(caller_of(update))
        await self._send(update.effective_message, reply)

    async def on_any_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        CallsNoted().note()  # what the handlers send for it: whether its message was answered (`on_settled`)
        if update.message is not None:
            self._note_message(update.message, update.update_id)
            self.splits.arrived(update.message)  # before anything is awaited for it: its next part waits for it
        if (chat := update.effective_chat) is not None:
            await self.usecases.playlists.settle_moves(PLATFORM, str(chat.id))

    async def on_edited(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A message edited to ask for a song's mood: a voice note or a file captioned '/mood'
        afterwards, another bot's command corrected to '/mood Creep'. Answered as if sent so, where
        the message was not answered (`_edit_to_answer`): never a second answer to one message. An
        album's item whose album is being collected or answered is judged once it is (whether the
        album is answered is not known before)."""
        message = update.edited_message
        album = None if message is None else (message.chat_id, message.media_group_id)
        while (settled := self._albums_settled.get(album)) is not None:  # each one set is dropped
            await settled.wait()
        verdict = self._edit_verdict(update)
        message = update.edited_message
        if verdict == EDIT_UNKNOWN:
            await self._tell_edit_not_answered(update)
        if verdict != EDIT_ANSWER:
            return
        self._note_message(message, update.update_id)
        if message.text is None and audio_of(message) is None:  # a picture or a GIF: '/mood <song>' under it
            await self.on_not_a_song(update, context)
        else:
            await self.on_mood(update, context)

    async def _tell_edit_not_answered(self, update: Update) -> None:
        """EDIT_UNKNOWN's notice, said once: a second edit of the message is let be, as one answered,
        once it is sent, and while it is on its way (noted as this update's). Where sending it fails
        (Telegram's 5xx past the transport's retry, the network), the message is unnoted again: the
        handler's failure gets its apology, and the next edit the notice. Noted answered before the
        send, the next edit got nothing. It quotes the message in a private chat too: the edit may
        be of one far up the chat, and "this message" would point at none."""
        message = update.edited_message
        self._note_message(message, update.update_id)
        try:
            await send_reply(message, EDIT_NOT_ANSWERED.format(how=how_to_ask_again(message)), quote=True)
        except BaseException:
            self._messages.pop((message.chat_id, message.message_id), None)
            raise
        self._note_message(message, ANSWERED)

    async def on_edited_answer(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A reply to one of the user's daily prompts, edited: the edit is not an answer (the
        message answered as first sent), and the user is told so and what to do instead."""
        message = update.edited_message
        if message is None or message.from_user is None or message.from_user.is_bot:
            return
        if await self._replies_to_prompt(message, caller_of(update)):
            await message.reply_text(EDITED_ANSWER)

    def _edit_to_answer(self, update: Update) -> bool:
        return self._edit_verdict(update) == EDIT_ANSWER

    def _edit_verdict(self, update: Update) -> str:
        """Whether the edited message of `update` is to be answered (EDIT_ANSWER): it now asks for
        a song's mood (`asks_mood`: this bot's, from a person), and the bot did not answer it: this
        run handled it and did not answer, or never handled it and it was sent after this run
        started (`edits_from`) and after the messages it no longer remembers; or a run killed
        outright was answering this edit, and showed a status for it. An album's item (which the
        edit brings alone, without its album) is answered by itself, where its album was not
        answered; not while the album is still being collected, when whether it will be is not
        known yet (`on_edited` waits for it). EDIT_UNKNOWN: it asks, but the bot cannot tell whether
        it answered it (sent before this run, or before what it remembers; an edit a killed run
        was handling, no status shown: it may have answered it before any was due, or left it be),
        and the user is told so rather than nothing. Else EDIT_LET_BE."""
        message = update.edited_message
        if (message is None or message.from_user is None
                or (message.from_user.is_bot and message.sender_chat is None)
                or message.chat.type not in (ChatType.PRIVATE, *GROUP_TYPES)
                or not asks_mood(message) or addressed_elsewhere(message, self.app.bot.username)
                or (message.chat_id, message.media_group_id) in self._albums):
            return EDIT_LET_BE
        known = self._messages.get((message.chat_id, message.message_id))
        if known is not None:
            return EDIT_ANSWER if known[0] in (NOT_ANSWERED, update.update_id) else EDIT_LET_BE
        if update.update_id in self._shown_before:  # its "Fetching…" shown before the kill: answered in it
            return EDIT_ANSWER
        sent = message.date.timestamp()
        return EDIT_ANSWER if sent >= self.edits_from and sent > self._forgotten_until else EDIT_UNKNOWN

    def _note_message(self, message: Message, state: str | int) -> None:
        """Remember the message's state for its edits: ANSWERED, NOT_ANSWERED, or the update_id
        answering it now (`on_settled` tells which it ends in); the latest MESSAGES_KEPT only."""
        key = (message.chat_id, message.message_id)
        self._messages[key] = (state, message.date.timestamp())
        self._messages.move_to_end(key)
        while len(self._messages) > MESSAGES_KEPT:
            _, (_, sent) = self._messages.popitem(last=False)
            self._forgotten_until = max(self._forgotten_until, sent)

    def _told_how_to_ask(self, message: Message) -> None:
        """`message` is answered with what to type instead (a command meant, the usage), which
        answers nothing it asked: it stays NOT_ANSWERED (`on_settled` leaves it so), and the user
        who corrects it by an edit asking for a song's mood, as Telegram lets them, is answered."""
        self._note_message(message, NOT_ANSWERED)

    async def on_settled(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Last of all handlers: the message this update brought (or asked about, an edit), and the
        other items of the album it answered, were answered if a handler, or the apology for its
        failure, put anything in a chat."""
        message = update.message or update.edited_message
        if message is None:
            return
        if update.message is not None:  # its handler read it as no part nor answer, if not before
            # Not for an edit: its message may be a long text still being read, whose next part
            # waits for it (`SplitAnswers.after_earlier`). Until 2026-12-06 an edit's end let that
            # part go on, read before its first part and as an answer of its own, its words lost.
            self.splits.read(message)
        album, settled, others = self._album_items.pop(update.update_id, (None, None, ()))
        answering = [m for m in (message, *others)
                     if self._messages.get((m.chat_id, m.message_id), (None,))[0] == update.update_id]
        if answering:
            noted = CallsNoted.current()
            answered = noted is None or any(answer_method(method) for method in noted.methods)
            for each in answering:
                self._note_message(each, ANSWERED if answered else NOT_ANSWERED)
        if settled is not None:  # its items' edits waiting on it are judged now (`on_edited`)
            if self._albums_settled.get(album) is settled:  # not a late item's collection since
                del self._albums_settled[album]
            settled.set()

    async def on_migrate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        old, new = ((message.chat_id, message.migrate_to_chat_id) if message.migrate_to_chat_id
                    else (message.migrate_from_chat_id, message.chat_id))
        if not await self.usecases.playlists.place_moved(PLATFORM, str(old), str(new)):
            # Not made (the database down): the update stays kept until it is, for a stop before
            # then to leave it to the next start, whose handing it over makes the move (a start
            # the database does not answer does not count against it: `_is_move`).
            self.flow.done_after(lambda: self.usecases.playlists.until_moved(PLATFORM, str(old)))

    async def on_member_left(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message.left_chat_member.id != context.bot.id:  # the bot's own removal: my_chat_member
            await self.usecases.playlists.member_left(PLATFORM, str(message.chat_id), str(message.left_chat_member.id))

    async def on_members_joined(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        for member in message.new_chat_members:
            if member.id != context.bot.id:
                await self.usecases.playlists.member_joined(PLATFORM, str(message.chat_id), str(member.id))

    async def on_chat_member(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.chat_member
        was, is_now = is_member(change.old_chat_member), is_member(change.new_chat_member)
        if change.chat.type not in GROUP_TYPES or was == is_now:
            return
        place_id, user_id = str(change.chat.id), str(change.new_chat_member.user.id)
        if is_now:
            await self.usecases.playlists.member_joined(PLATFORM, place_id, user_id)
        else:
            await self.usecases.playlists.member_left(PLATFORM, place_id, user_id)

    async def on_my_chat_member(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.my_chat_member
        if change.chat.type not in GROUP_TYPES:
            return
        if is_member(change.new_chat_member):
            self.chat_runs.back(change.chat.id)
            return
        self._chat_gone(change.chat.id)

    def _chat_gone(self, chat_id: int) -> None:
        """The bot is out of the group (removed, or it left), known from its `my_chat_member` or
        a first 403: its /mood runs not yet at the model are dropped (`ChatRuns`) and the removal
        said, once whichever comes first."""
        dropped = self.chat_runs.drop(chat_id)
        if dropped is not None:
            log.info("telegram.chat_gone", extra={"chat": chat_id, "dropped": dropped})
            self.usecases.playlists.bot_removed(PLATFORM, str(chat_id))

    async def on_share(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._refused(update, context, "share"):
            return
        choice = on_off(context.args)
        if not context.args:  # "/share" alone: whether the user's songs count now
            reply = await self.usecases.playlists.sharing(caller_of(update))
        elif choice is None:
            reply = ErrorReply(SHARE_USAGE)
        else:
            reply = await self.usecases.playlists.set_sharing(caller_of(update), choice)
        await update.effective_message.reply_text(text_of(reply))

    async def on_server_playlist(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        choice = on_off(context.args)
        sender = update.effective_message.sender_chat
        if not context.args:  # alone: whether /playlist and /servermood answer here (or why not), as the console says
            reply = await self.usecases.playlists.closed(caller_of(update)) or TextReply(ON_NOW_ADMINS)
        elif choice is None:
            reply = ErrorReply(SERVERPLAYLIST_USAGE)
        elif sender is not None and sender.id != update.effective_chat.id:
            # Posted as a channel (`from` Channel_Bot, one id for every such post): who is behind
            # it, and so whether they are an admin here, is unknown. The group itself is its admins.
            reply = ErrorReply(POST_AS_YOURSELF)
        else:
            caller = caller_of(update, is_admin=await self._is_admin(update, context))
            reply = await self.usecases.playlists.set_enabled(caller, choice)
        await update.effective_message.reply_text(text_of(reply))

    async def on_settings(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Whether the journal and sharing are on, and the commands that change them (Telegram's
        apps send /settings from the bot's profile menu)."""
        if await self._refused(update, context, "settings", private_only=True):
            return
        caller = caller_of(update)
        journal = await self.usecases.journal.status(caller)
        sharing = text_of(await self.usecases.playlists.sharing(caller))
        await update.effective_message.reply_text(clip("\n".join(filter(None, (journal and text_of(journal), sharing,
                                                                              SETTINGS_TAIL)))))

    async def on_export(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._refused(update, context, "export", private_only=True):
            return
        self._show_action(update.effective_message, ChatAction.UPLOAD_DOCUMENT)
        reply = await self.usecases.privacy.export(caller_of(update), " ".join(context.args or ()))
        await self._send(update.effective_message, reply)

    async def on_forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._refused(update, context, "forget", private_only=True):
            return
        reply = await self.usecases.privacy.forget(caller_of(update), confirmed=False)
        # Whose, and when asked by this machine's clock (`question_expired`): 42 bytes at most of Telegram's 64.
        asked = f"{update.effective_user.id}:{int(time.time())}"
        keyboard = [[InlineKeyboardButton("Yes, delete everything", callback_data=f"forget:yes:{asked}"),
                     InlineKeyboardButton("No, keep it", callback_data=f"forget:no:{asked}")]]
        await update.effective_message.reply_text(text_of(reply), reply_markup=InlineKeyboardMarkup(keyboard))

    async def on_forget_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        _, answer, owner_asked = query.data.split(":", 2)
        owner, _, asked = owner_asked.partition(":")  # no time: a question of an earlier version
        if owner != str(query.from_user.id):
            await answer_query(query, NOT_YOUR_BUTTON, show_alert=True)
            return
        # A double tap sends two presses before the first one's edit takes the buttons away: the
        # second would forget again and show its '0 records' over what the first deleted. Marked
        # before any await, so the first press alone answers the question.
        question = (query.message.chat.id, query.message.message_id) if query.message is not None else None
        if question in self._forget_answered:
            await answer_query(query)
            return
        self._forget_answered[question] = None
        while len(self._forget_answered) > FORGET_ANSWERED_KEPT:
            self._forget_answered.popitem(last=False)
        await answer_query(query)
        pressed_at = self._pressed_before.pop(update.update_id, None)
        if answer == "yes" and question_expired(query, asked, pressed_at):
            await edit_shown(query, FORGET_EXPIRED)
        elif answer == "yes":
            reply = await self.usecases.privacy.forget(caller_of(update), confirmed=True)
            # Handed over again after a hard kill (`_replay`), whose run may have deleted it all already.
            text = text_of(reply)
            await edit_shown(query, FORGET_DONE_BEFORE if pressed_at is not None and text == NOTHING_TO_FORGET
                             else text)
        else:
            await edit_shown(query, FORGET_CANCELLED)

    async def on_unknown_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        data = query.data or ""
        # The data: 64 bytes at most (Telegram's limit), what the operator needs to know the button.
        log.info("telegram.unknown_button", extra={"data": data, **whose(update.effective_chat, query.from_user)})
        await answer_query(query, unknown_button(data, self._commands), show_alert=True)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        ids = (whose(update.effective_chat, sender_of(update.effective_message, update.effective_user))
               if isinstance(update, Update) else {})  # else a failure outside any update: nobody's
        if refuses_the_bot(context.error):
            # "bot was blocked by the user", "bot was kicked from the group chat", a group that
            # muted the bot: the chat refuses every message now, an apology too, and the bot did
            # nothing wrong.
            log.info("telegram.chat_refuses_the_bot: %s", context.error, extra=ids)
            if removed_from_group(context.error) and isinstance(update, Update) and update.effective_chat is not None:
                self._chat_gone(update.effective_chat.id)
            return
        log.error("telegram handler failed", exc_info=context.error, extra=ids)
        if isinstance(update, Update) and update.effective_chat is not None:
            message = update.effective_message
            topic = (message.message_thread_id if isinstance(message, Message) and message.is_topic_message
                     else None)  # else a forum shows it in its General topic, away from the asker
            direct = (message.direct_messages_topic.topic_id  # a channel's direct messages: required there
                      if isinstance(message, Message) and message.direct_messages_topic is not None else None)
            with contextlib.suppress(Exception):
                await context.bot.send_message(update.effective_chat.id, render.GENERIC_ERROR,
                                               message_thread_id=topic, direct_messages_topic_id=direct)

    async def _refused(self, update: Update, context: ContextTypes.DEFAULT_TYPE, command: str, *,
                       private_only: bool = False) -> bool:
        """Refuse a personal command, and say why: for `private_only` commands, outside the private
        chat, where the group would see the person's data (said to an anonymous admin too, who is
        themselves there); else sent as a chat (an anonymous group admin, or a channel), where
        nobody in particular is behind the message."""
        message = update.effective_message
        if private_only and update.effective_chat.type != ChatType.PRIVATE:
            await message.reply_text(PRIVATE_ONLY.format(command=command, bot=context.bot.username))
            return True
        if message.sender_chat is not None:
            await message.reply_text(POST_AS_YOURSELF)
            return True
        return False

    # ---- rendering helpers -----------------------------------------------------------------------
    async def _run_with_progress(self, message: Message, call, *, source: Message | ExternalReplyInfo | None = None,
                                 as_text: Callable[[object], str] | None = None, admit: Admit | None = None) -> object:
        """Answer in one message, showing progress in it while the work is slow (`StatusMessage`).
        `call(attachment, progress)` is the single use-case call, with the audio of `source` (the
        message itself unless it points at another); `as_text` (else `text_of`) renders its reply,
        which is returned. A failure becomes the apology in that same message, not a second
        message under a status that never ends. `admit`: the /mood limit, taken before the
        download (`_download`)."""
        source = source or message
        status = StatusMessage(message, on_shown=self.flow.shown)
        before = self._shown_before.pop(CURRENT_UPDATE.get(), None)
        if before is not None and before[0] == message.chat_id:
            status.take_over(before[1])
        status.show_later(STAGE_LISTENING if audio_of(source) is not None else STAGE_FINDING)
        try:
            async with self._download(source, message, admit) as attachment:
                if isinstance(attachment, ErrorReply):
                    reply = attachment
                else:
                    reply = await call(attachment, status)
        except Exception:
            log.exception("telegram handler failed", extra=whose(message.chat, sender_of(message, message.from_user)))
            reply = ErrorReply(render.GENERIC_ERROR)
        except asyncio.CancelledError:
            if self.flow.stopping:  # the bot's stop cut it short: said in the status, not under it
                self.flow.told()
                with contextlib.suppress(TelegramError):
                    await status.finish(render.RESTARTING)
            else:  # dropped (a group the bot is no longer in: `chat_runs`)
                status.abandon()
            raise
        finally:
            status.cancel()
        await status.finish((as_text or text_of)(reply))
        return reply

    @contextlib.asynccontextmanager
    async def _download(self, message: Message | ExternalReplyInfo, asker: Message,
                        admit: Admit | None = None) -> AsyncIterator[Attachment | ErrorReply | None]:
        """The message's audio saved to a temporary file (removed afterwards), refused before
        downloading when plainly not sound, or longer or larger than the limits (`asker`'s
        refusal, logged), or by `admit` (the /mood limit), entered once those pass and held
        while the file is used."""
        found = audio_of(message)
        if found is None:
            yield None
            return
        media, filename = found
        shown = shown_name(message, filename)
        if media is message.document and (media.mime_type or "").lower().startswith(NOT_SOUND_TYPES):
            yield file_refused(asker, ErrorReply(NOT_AUDIO.format(name=shown), quoted=(shown,)), "not_audio",
                               mime_type=media.mime_type)
            return
        # Telegram tells an audio's, voice note's or video's length (a document's it does not): one
        # the decoder would refuse, too long or too short to hear (a 4 s voice note), is refused
        # before it is downloaded, in the decoder's words. Unknown (0, or none) is tried.
        longest_s, duration_s = self.settings.max_audio_duration_s, duration_of(media)
        if duration_s > longest_s:
            yield file_refused(asker, ErrorReply(too_long_words(shown, longest_s), quoted=(shown,)), "too_long",
                               duration_s=duration_s, limit_s=longest_s)
            return
        if 0 < duration_s < MIN_SECONDS:
            yield file_refused(asker, ErrorReply(too_short_words(duration_s)), "too_short", duration_s=duration_s,
                               limit_s=MIN_SECONDS)
            return
        limit = download_limit(self.settings)
        too_large = ErrorReply(TOO_LARGE.format(mb=limit / 1024 / 1024))
        if media.file_size is not None and media.file_size > limit:
            yield file_refused(asker, too_large, "too_large", bytes=media.file_size, limit_bytes=limit)
            return
        size = media.file_size or limit  # taken from the bot-wide budget until the file is done with
        with (admit() if admit is not None else contextlib.nullcontext()) as refused, \
                self.usecases.uploads.holding(size) as room:
            if refused is not None:  # over the /mood limit: said before a byte of the file is fetched
                yield refused
                return
            if not room:  # others' files fill the budget: its /mood quota given back (`admitted`)
                yield file_refused(asker, ErrorReply(UPLOADS_BUSY, retry_after_s=UPLOADS_RETRY_S), "uploads_busy",
                                   bytes=size, held_bytes=self.usecases.uploads.held_bytes,
                                   limit_bytes=self.usecases.uploads.limit_bytes)
                return
            try:
                tg_file = await media.get_file()
            except TelegramError as error:
                if isinstance(error, BadRequest) and "file is too big" in str(error).lower():
                    yield file_refused(asker, too_large, "too_large_for_getfile", bytes=media.file_size)
                else:  # "wrong file_id or the file is temporarily unavailable", the network, a timeout
                    yield file_not_downloaded(asker, "getFile", error)
                return
            if tg_file.file_size is not None and tg_file.file_size > limit:
                yield file_refused(asker, too_large, "too_large", bytes=tg_file.file_size, limit_bytes=limit)
                return
            async with temporary_folder("moodbot-tg-") as folder:  # removed with what a failed download left
                path = folder / local_name(filename)
                try:
                    # Into memory, then written in the files' threads: download_to_drive writes the
                    # file (20 MB) on the event loop, which every user waits on.
                    data = await tg_file.download_as_bytearray()
                except TelegramError as error:  # the file server's 404/5xx, a cut connection, a timeout
                    yield file_not_downloaded(asker, "download", error)
                    return
                try:
                    await write_file(path, data)
                except OSError as error:  # the temporary folder's disk full (many large files at once), a quota
                    yield file_not_kept(asker, error)
                    return
                size = len(data)
                del data  # on disk now: not held in memory too while the model has it, or waits for it
                yield (file_refused(asker, too_large, "too_large", bytes=size, limit_bytes=limit) if size > limit
                       else Attachment(str(path), filename, size, title=upload_title(message), shown_name=shown,
                                       message_link=message_link(message), sender=titled_sender(message)))

    def _show_action(self, message: Message, action: str) -> None:
        """Telegram's "sending a photo…" under the chat's name while a chart or an export is made
        (until the answer comes, 5 s at most), in the background: a courtesy that a throttled or
        refused call never holds up, nor turns into an apology."""
        task = asyncio.get_running_loop().create_task(message.reply_chat_action(action))
        self._actions.add(task)
        task.add_done_callback(self._action_done)

    def _action_done(self, task: asyncio.Task) -> None:
        self._actions.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("telegram.chat_action_not_shown: %s", task.exception())

    async def _send(self, message: Message, reply: object) -> None:
        """Text first, then whatever files the reply carries (a chart Telegram refuses is skipped);
        several charts (/stats) as one album (`_send_album`)."""
        if isinstance(reply, ExportReply):
            await message.reply_document(document=reply.data, filename=reply.filename,
                                         caption=clip(render.reply_text(reply), MAX_CAPTION))
            return
        charts = charts_of(reply)
        if len(charts) > 1:
            await self._send_album(message, reply, charts)
            return
        await message.reply_text(text_of(reply))
        await self._send_charts(message, charts)

    async def _send_album(self, message: Message, reply: object, charts: list[Chart]) -> None:
        """The charts as one album, the chat's one post, its words (`album_words`) the caption of its
        first photo: the only caption, since Telegram shows an album's caption only when one item
        has one. Words over a caption's limit follow the album as a message. An album Telegram
        refuses (a photo's dimensions, 413 too large) goes as before: the words, then each chart
        alone, one refused skipped. One timed out may have come: not sent again, but its words are
        (twice at worst, never lost)."""
        words = album_words(reply, charts)
        captioned = render.text_length(words) <= MAX_CAPTION
        try:
            await message.reply_media_group(media=[
                InputMediaPhoto(chart.png, caption=words if captioned and index == 0 else None,
                                filename=chart.filename)
                for index, chart in enumerate(charts)])
        except TimedOut as error:
            if never_sent(error):
                return await self._send_apart(message, reply, charts, error)
            log.warning("telegram.album_not_sent: %d charts: %s", len(charts), error)
            captioned = False
        except NetworkError as error:
            return await self._send_apart(message, reply, charts, error)
        if not captioned:
            await message.reply_text(words)

    async def _send_apart(self, message: Message, reply: object, charts: list[Chart], error: Exception) -> None:
        log.warning("telegram.album_refused: %d charts, sent one by one: %s", len(charts), error)
        await message.reply_text(text_of(reply))
        await self._send_charts(message, charts)

    async def _send_charts(self, message: Message, charts: list[Chart]) -> None:
        """Each chart as a photo of its own, with its caption."""
        for chart in charts:
            try:
                await message.reply_photo(photo=chart.png, caption=clip(chart.caption or "", MAX_CAPTION) or None,
                                          filename=chart.filename)
            except NetworkError as error:
                # Refused (PHOTO_INVALID_DIMENSIONS, 413 too large) or timed out: the text is out,
                # and an apology would ask for a retry that fails the same way. The others still go.
                log.warning("telegram.chart_not_sent: %s: %s", chart.filename, error)

    async def _is_admin(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
        """Whether the sender is an admin of the group, as Telegram says now. Not cached: the one
        admin-only action, /serverplaylist, changes the group's settings, and a member demoted (or
        promoted) a moment ago is judged by their role now. A refusal was never cached either, so
        this adds one getChatMember per switch by an admin, a rare command."""
        chat, user = update.effective_chat, update.effective_user
        if chat.type not in GROUP_TYPES:
            return False
        sender = update.effective_message.sender_chat
        if sender is not None and sender.id == chat.id:  # posted as the group: only its admins can
            return True
        member = await context.bot.get_chat_member(chat.id, user.id)
        return member.status in ADMIN_STATUSES


def _is_move(arrival: Arrival) -> bool:
    """A group's move to a supergroup (either of its service messages), kept until the database
    makes it (`on_migrate`): the inbox does not count its replay at a start the database does not
    answer."""
    message = arrival.payload.get("message")
    return isinstance(message, dict) and any(key in message for key in ("migrate_to_chat_id", "migrate_from_chat_id"))


def _kept_under(update: Update) -> str | None:
    """Whose the update is kept as in the inbox, for their /forget to delete it: its sender's; none
    for a /forget's "Yes". The /forget it starts deletes its asker's requests kept before their
    data, and took its own press with them: a kill half-way (the settings withdrawn, the journal
    still there) left the deletion half done, the question's buttons over it, and nothing for the
    restart to finish. Its payload (the asker's id and name, the question) stays until it is
    answered, moments past the erasure it asked for."""
    query = update.callback_query
    if query is not None and FORGET_YES.match(query.data or ""):
        return None
    return None if (user := update.effective_user) is None else str(user.id)


class _InboxArrivals:
    """The flow's `Arrivals` on the inbox use case: an update as Telegram sent it, under this
    bot's id (two bots sharing a database replay only their own), with its sender for /forget."""

    def __init__(self, frontend: TelegramFrontend, inbox) -> None:
        self._frontend = frontend
        self._inbox = inbox

    @property
    def source(self) -> str:
        return f"{PLATFORM}:{self._frontend.app.bot.id}"

    async def keep(self, updates: Sequence[Update]) -> None:
        await self._inbox.keep(self.source, [
            Arrival(update.update_id, update.to_dict(), PLATFORM, _kept_under(update)) for update in updates])

    async def shown(self, update_id: int, chat_id: int | None, message_id: int | None) -> None:
        await self._inbox.shown(self.source, update_id, None if chat_id is None else str(chat_id),
                                None if message_id is None else str(message_id))

    async def done(self, update_ids: Sequence[int], *, even_paused: bool = False) -> bool:
        return await self._inbox.done(self.source, update_ids, even_paused=even_paused)

    def paused_for(self) -> float:
        return self._inbox.paused_for()

    async def parts_answered(self, update_ids: Sequence[int], parts: int) -> None:
        await self._inbox.parts_answered(self.source, update_ids, parts)

    async def held(self, update_ids: Sequence[int]) -> None:
        await self._inbox.held(self.source, update_ids)


class StatusMessage:
    """The `Progress` callback of one request, and its answer, in one Telegram message.

    Nothing is sent while the work is quick. A slow stage (download, model), or STATUS_DELAY_S
    without an answer, sends the status message; later stages edit it, skipping repeats (Telegram
    refuses an edit that changes nothing), and `finish` puts the answer in it. A quick answer is
    a single reply.

    Progress is best-effort: a stage is shown by a background task, and reporting it returns at
    once, so a slow or throttled edit never holds up the work (nor a journal answer, which the use
    case saves after its stages). The task shows the latest stage only, dropping those passed
    meanwhile, and gives up on a 429 rather than waiting it out. The answer waits for a stage
    whose call has left, which Telegram could otherwise make after it; one still waiting its turn
    (in the group's flood limit, or out a 429's pause of the chat) is called off, and the answer
    takes that turn: an edit nobody would read is not sent ahead of it. A status message
    Telegram no longer lets the bot edit (the user deleted it) is left alone, and the answer comes
    as a new message, as it does when the last edit fails otherwise (timed out, throttled past the
    retries)."""

    def __init__(self, reply_to: Message, delay_s: float = STATUS_DELAY_S, *,
                 on_shown: Callable[[int, int], None] | None = None) -> None:
        self.reply_to = reply_to
        self.delay_s = delay_s
        self.on_shown = on_shown  # told (chat id, message id) once the status message is sent
        self.message: Message | None = None
        self.text: str | None = None  # what the user sees now
        self.stage: str | None = None  # the latest stage, shown or not
        self._timer: asyncio.TimerHandle | None = None
        self._painter: asyncio.Task | None = None  # shows the latest stage, in the background
        self._calls = CallsWatch()  # whether the painter's call has left (it then may not be called off)
        self._finished = False  # the answer is out: no stage may replace it
        self._gone = False  # Telegram refused the status message (deleted; or 403, blocked): show no more stages
        self._lock = asyncio.Lock()  # one send/edit at a time: a stage's and the answer's
        # The context of the request it answers (its update, where its calls are noted): a stage
        # may be told from another request's task (a song two people asked for, heard once, tells
        # both), whose update its status message must not be noted under.
        self._context = contextvars.copy_context()

    def take_over(self, message_id: int) -> None:
        """Show the stages and the answer in a status message sent before (by a run of the bot
        killed outright while it answered the same update), rather than under a second one."""
        self.message = Message(message_id, self.reply_to.date, self.reply_to.chat)
        self.message.set_bot(self.reply_to.get_bot())
        self.text = None  # whatever it shows, it is edited

    def show_later(self, stage: str) -> None:
        """Show `stage` unless the answer comes first."""
        self.stage = stage
        self._timer = asyncio.get_running_loop().call_later(self.delay_s, self._paint)

    def cancel(self) -> None:
        """Stop the timer (`finish` settles a stage under way)."""
        if self._timer is not None:
            self._timer.cancel()

    def abandon(self) -> None:
        """No answer will come (the run was cancelled): no stage is shown either, one waiting in
        the rate limiter called off."""
        self.cancel()
        self._finished = True
        if self._painter is not None:
            self._painter.cancel()

    async def __call__(self, stage: str) -> None:
        self.stage = stage
        if self.message is not None or stage in SLOW_STAGES:
            self._paint()

    async def finish(self, text: str) -> None:
        self.cancel()
        self._finished = True  # the painter starts no other stage
        await self._settled()
        await self._show(text, final=True)

    async def _settled(self) -> None:
        """Return once no stage can be shown after what comes next (the answer). A stage whose call
        has left is let through: Telegram could still make that edit after the answer's, and the
        answer would read "Listening…"; and a status message it sent is read, for the answer to go
        in. One that has not (waiting in the rate limiter) is called off."""
        painter = self._painter
        if painter is None:
            return
        await self._calls.until_interruptible(painter)
        painter.cancel()
        await asyncio.wait([painter])

    async def shown(self) -> None:
        """Return once the stages reported so far are shown, or given up."""
        if self._painter is not None:
            await asyncio.wait([self._painter])

    def _paint(self) -> None:
        """Start showing the latest stage, unless that is under way already."""
        if self._painter is None or self._painter.done():
            self._calls = CallsWatch()
            self._painter = asyncio.get_running_loop().create_task(self._paint_latest(self._calls),
                                                                   context=self._context.copy())

    async def _paint_latest(self, calls: CallsWatch) -> None:
        """Show the latest stage until the chat shows it: stages passed during an edit are dropped."""
        calls.watch()
        while not (self._finished or self._gone) and self.stage != self.text:
            calls.between_calls()  # what came back of the last stage is read
            try:
                await self._show(self.stage)
            except TelegramError as error:
                if refuses_the_bot(error):  # blocked, removed from the group, or muted there: every
                    self._gone = True  # stage would be refused too (the answer is still tried, and its refusal logged)
                else:  # the network, a 429, a refusal: the answer will still try
                    log.warning("telegram.status_not_shown: %s", type(error).__name__)
                return
            except Exception as error:  # a bug: a lost status is not worth a crash, but must be found
                log.warning("telegram.status_not_shown: %s", type(error).__name__, exc_info=error)
                return

    async def _show(self, text: str, *, final: bool = False) -> None:
        async with self._lock:
            if text == self.text or (self._finished and not final) or (self._gone and not final):
                return
            if self.message is None or self._gone:
                if final:  # nothing will edit the answer: no need for the sent Message back
                    await self._send_answer(text)
                else:
                    self.message = await self.reply_to.reply_text(text)
                    if self.on_shown is not None:
                        self.on_shown(self.message.chat_id, self.message.message_id)
                self.text = text
                return
            self.text = text
            try:
                await self._edit(text, final)
            except (BadRequest, ChatMigrated) as error:
                if "not modified" in str(error).lower():
                    return
                if refuses_the_bot(error):  # muted in the group: a new message would be refused too
                    raise
                # "message to edit not found", "message can't be edited": the user deleted it;
                # or it stayed in a group that became a supergroup.
                log.info("telegram.status_gone: %s", error)
                self._gone = True
                if final:
                    await self._send_answer(text)
            except TelegramError as error:
                if not final or refuses_the_bot(error):  # the bot blocked, or removed from the
                    raise  # group: a new message would be refused too (said once, by `on_error`)
                # No answer in time, or throttled past the retries: the answer (a journal entry may
                # be saved) comes as a message of its own, not as an apology, which would be one too.
                log.warning("telegram.answer_not_edited: %s", type(error).__name__)
                await self._send_answer(text)

    async def _edit(self, text: str, final: bool) -> None:
        """Put `text` in the status message; a stage is not retried after a 429 (the answer is)."""
        bot = self.message.get_bot()
        if final or getattr(bot, "rate_limiter", None) is None:
            await self.message.edit_text(text)
            return
        await bot.edit_message_text(text, chat_id=self.message.chat_id, message_id=self.message.message_id,
                                    rate_limit_args=PROGRESS_RETRIES)

    async def _send_answer(self, text: str) -> None:
        """The answer as a new message, sent once more when it timed out or stayed throttled past
        the retries: at worst the chat sees it twice, where an apology would be a false second
        message."""
        try:
            await send_reply(self.reply_to, text)
        except (TimedOut, RetryAfter) as error:
            log.warning("telegram.answer_resent: %s", type(error).__name__)
            await send_reply(self.reply_to, text)


async def send_reply(to: Message, text: str, *, quote: bool = False) -> None:
    """Send what `to.reply_text(text)` sends (quoting `to` outside private chats, and in them where
    `quote`, in its forum topic or direct messages topic if any), without parsing the sent message
    back into a `Message`: that parsing was ~0.1 ms of the event loop per answer, over a tenth of a
    cached /mood's cost. The call goes through the same bot, so the rate limiter and retries still apply."""
    params: dict[str, Any] = {"chat_id": to.chat_id, "text": text}
    if quote or to.chat.type != ChatType.PRIVATE:
        params["reply_parameters"] = {"message_id": to.message_id, "allow_sending_without_reply": True}
    if to.is_topic_message and to.message_thread_id is not None:
        params["message_thread_id"] = to.message_thread_id
    if to.direct_messages_topic is not None:  # a channel's direct messages chat: Telegram requires it
        params["direct_messages_topic_id"] = to.direct_messages_topic.topic_id
    await to.get_bot().do_api_request(SEND_MESSAGE, api_kwargs=params)


async def answer_query(query: CallbackQuery, text: str | None = None, *, show_alert: bool = False) -> None:
    """Stop the button's spinner. Telegram refuses once the press is some 15 s old (it waited out a
    restart, or a burst): the button's work is still done, only the spinner is past saving."""
    try:
        await query.answer(text, show_alert=show_alert)
    except BadRequest as error:
        if not any(words in str(error).lower() for words in EXPIRED_QUERY):
            raise
        log.info("telegram.callback_query_expired")


def question_expired(query: CallbackQuery, asked: str, pressed_at: datetime | None = None) -> bool:
    """Whether the /forget question of the button pressed was older than `FORGET_CONFIRM_S` at the
    press (now, or `pressed_at` for one handed over again after a kill): its buttons stay in the
    chat for good, and a "Yes" pressed days later deleted everything kept since. Timed by this
    machine's clock, `asked` (the POSIX second the button says it was asked): by Telegram's (the
    message's date), a clock some minutes ahead of it would find every question expired at once.
    A question of an earlier version, which says no time, by the message's date with
    `EDIT_CLOCK_MARGIN_S` for the two clocks; one that Telegram no longer shows the bot (an
    InaccessibleMessage, dated 0) is older still."""
    pressed = time.time() if pressed_at is None else pressed_at.timestamp()
    if asked.isdigit():
        return pressed - int(asked) > FORGET_CONFIRM_S
    shown = query.message
    if shown is None or not shown.date:
        return True
    return pressed - shown.date.timestamp() > FORGET_CONFIRM_S + EDIT_CLOCK_MARGIN_S


async def edit_shown(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Put `text` in the message of the button pressed. Pressed twice (a double tap, or two members
    at once), the second edit changes nothing, which Telegram refuses: the text is already shown.
    A message deleted since the press (by its reader, a group's admin or cleaning bot) gets `text`
    as a new message in its chat and topic (a forum's, or a channel's direct messages'): the
    button's work is done (/forget deleted everything), and an apology would tell the user it was
    not."""
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except BadRequest as error:
        reason = str(error).lower()
        if "not modified" in reason:
            return
        if not any(words in reason for words in UNEDITABLE):
            raise
        log.info("telegram.button_answer_sent_anew: %s", error)
        shown = query.message
        topic = shown.message_thread_id if isinstance(shown, Message) and shown.is_topic_message else None
        direct = (shown.direct_messages_topic.topic_id  # a channel's direct messages: required there
                  if isinstance(shown, Message) and shown.direct_messages_topic is not None else None)
        await query.get_bot().send_message(shown.chat.id, text, reply_markup=markup, message_thread_id=topic,
                                           direct_messages_topic_id=direct)


def command_menus() -> list[tuple[BotCommandScope, frozenset[str]]]:
    """Each command menu's scope, and the commands it leaves out."""
    return [(BotCommandScopeDefault(), frozenset()),
            (BotCommandScopeAllPrivateChats(), GROUP_COMMANDS),
            (BotCommandScopeAllGroupChats(), PERSONAL_COMMANDS | ADMIN_COMMANDS),
            (BotCommandScopeAllChatAdministrators(), PERSONAL_COMMANDS)]


def caller_of(update: Update, *, is_admin: bool = False) -> Caller:
    """Who asks. A message posted as a chat (an anonymous group admin, a channel) is that chat's:
    its `from` is GroupAnonymousBot, one id shared by every such admin on Telegram, which would put
    them all in one rate limit and one playlist contributor. Chat ids are negative, so they never
    meet a person's."""
    chat, user = update.effective_chat, update.effective_user
    place = f"{PLATFORM}:{chat.id}" if chat.type in GROUP_TYPES else None
    sender = update.effective_message.sender_chat if update.effective_message else None
    if sender is not None:
        return Caller(platform=PLATFORM, user_id=str(sender.id), place=place, chat_id=str(chat.id),
                      is_admin=is_admin, display_name=sender.title or sender.effective_name or "")
    return Caller(platform=PLATFORM, user_id=str(user.id), place=place, chat_id=str(user.id),
                  is_admin=is_admin, display_name=user.full_name)


# A supergroup's id is -100 followed by its internal id, by which its members open its messages.
SUPERGROUP_ID_OFFSET = -1_000_000_000_000
PUBLIC_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")


def message_link(message: Message | ExternalReplyInfo) -> str | None:
    """The link to `message` that the members of its group can open, made of Telegram's ids: in a
    supergroup with a public name t.me/<name>/<message>, in another supergroup t.me/c/<internal
    id>/<message>. None in a private chat, a basic group (its messages have no links), a channel, or
    for a message quoted from another chat (`ExternalReplyInfo`): the group's members may not see it."""
    if not isinstance(message, Message) or message.chat.type != ChatType.SUPERGROUP:
        return None
    if message.chat.username and PUBLIC_NAME.fullmatch(message.chat.username):
        return f"https://t.me/{message.chat.username}/{int(message.message_id)}"
    internal = SUPERGROUP_ID_OFFSET - int(message.chat.id)
    return f"https://t.me/c/{internal}/{int(message.message_id)}" if internal > 0 else None


def whose(chat: Chat | None, sender: User | Chat | None) -> dict[str, str | None]:
    """Who met a failure, for its log line: the user (hashed there) and the group, named as
    `caller_of` names them, so that an operator finds the failure a user tells of."""
    return {"user": str(sender.id) if sender is not None else None,
            "place": f"{PLATFORM}:{chat.id}" if chat is not None and chat.type in GROUP_TYPES else None}


def file_refused(asker: Message, reply: ErrorReply, why: str, **facts: object) -> ErrorReply:
    """`reply`, refusing a file before it is heard, logged as a refused /mood is: whose, and why
    (`facts`: its size or length, and the limit), but not the file's name, which is the sender's."""
    log.info("telegram.file_refused", extra={**whose(asker.chat, sender_of(asker, asker.from_user)), "why": why,
                                             **facts})
    return reply


def file_not_downloaded(asker: Message, step: str, error: TelegramError) -> ErrorReply:
    """The user's explanation of a file Telegram did not hand over, logged as one warning: whose,
    which step failed, and why (the error's kind and words), not the file's name or link."""
    reason = f"{step}: {type(error).__name__}: {error.message}"[:MAX_LOGGED_REASON]
    log.warning("telegram.file_not_downloaded", extra={**whose(asker.chat, sender_of(asker, asker.from_user)),
                                                       "reason": reason})
    return ErrorReply(NOT_DOWNLOADED)


def file_not_kept(asker: Message, error: OSError) -> ErrorReply:
    """The refusal of a file downloaded that the disk would not take, logged as one warning: whose,
    and what the disk said, not the file's name."""
    log.warning("telegram.file_not_kept", extra={**whose(asker.chat, sender_of(asker, asker.from_user)),
                                                 "reason": error.strerror or type(error).__name__})
    return ErrorReply(NO_ROOM_FOR_FILE, retry_after_s=NO_ROOM_RETRY_S)


def sender_of(message: Message | None, user: User | None) -> User | Chat | None:
    """Who sent it, as `caller_of` tells: a message posted as a chat is that chat's."""
    return (message.sender_chat if message is not None else None) or user


def is_member(member: ChatMember) -> bool:
    """In the chat: an owner, an admin, a member, or a restricted member who has not left."""
    if member.status == ChatMemberStatus.RESTRICTED:
        return bool(member.is_member)
    return member.status in MEMBER_STATUSES


def journal_pages_keyboard(reply: object, caller: Caller) -> InlineKeyboardMarkup | None:
    """◀ Older / Newer ▶ under a page of the journal, each where there is something to go to."""
    if not isinstance(reply, JournalListReply) or not reply.entries:
        return None
    row = []
    if reply.has_older:
        row.append(InlineKeyboardButton(
            OLDER_BUTTON, callback_data=f"journal:{caller.user_id}:older:{reply.entries[-1].cursor}"))
    if reply.has_newer:
        row.append(InlineKeyboardButton(
            NEWER_BUTTON, callback_data=f"journal:{caller.user_id}:newer:{reply.entries[0].cursor}"))
    return InlineKeyboardMarkup([row]) if row else None


def journal_page(reply: object) -> tuple[str, object]:
    """A page of the journal as Telegram accepts it, in whole entries: when its entries (long
    titles, notes of emoji, which count two) are over MAX_TEXT, the first ones that fit, the
    header counting those. Returned with the reply cut to them: ◀ Older goes on after the last one
    shown, where a page clipped at the limit skipped the entries cut off."""
    if not isinstance(reply, JournalListReply) or not reply.entries:
        return text_of(reply), reply
    entries = list(reply.entries)
    while True:
        shown = replace(reply, entries=entries)
        text = unmentioned(render.reply_text(names_shown(shown), PLACE_WORD))
        if render.text_length(text) <= MAX_TEXT or len(entries) == 1:
            return clip(text), shown  # one entry over the limit (it cannot be): clipped
        entries.pop()


def names_shown(reply: object) -> object:
    """`reply` with its songs' names unmentioned and unlinked (`render.unlinked`): a link in a
    video's title or a file's name is its uploader's, and Telegram made a link of it in /mood's
    answer, a saved journal answer, /journal list and a playlist. A playlist's names are so before
    it is fitted in whole lines (a word joiner is one more unit each): unmentioned after, the clip
    cut its last song in half."""
    return render.renamed(reply, lambda name: render.unlinked(unmentioned(name)))


def text_of(reply: object) -> str:
    """The text of a reply model, as Telegram accepts it: every reply's text goes through here,
    its songs' names as `names_shown` makes them."""
    return clip(render.reply_text(names_shown(reply), PLACE_WORD))


def noted(reply: object, note: str | None) -> str:
    """The text of a reply model with `note` on a line under it."""
    return clip(f"{render.reply_text(names_shown(reply), PLACE_WORD)}\n{note}") if note else text_of(reply)


def typed_aside(message: Message, songs: Sequence[Message] | None = None) -> str | None:
    """The note for the mood of a file captioned '/mood <song>' (`query_left_aside`): the file is
    heard, the song typed is not. A caption without '/mood' (in the private chat) asks for no song.
    `songs`: the files heard, when not `message`'s own (an album's, the caption on one item)."""
    found = [audio_of(song) for song in ([message] if songs is None else songs)]
    if None in found or not MOOD_CAPTION.match(message.caption or ""):
        return None
    return query_left_aside(command_text(message), *(getattr(media, name, None) or "" for media, _ in found
                                                     for name in ("file_name", "title", "performer")))


def not_a_song(message: Message, answering_prompt: bool = False) -> str:
    """What is said of a message that carries no song: what it is, and what to send instead (in
    reply to a daily prompt, how to answer it)."""
    how = ANSWER_WITH_A_SONG if answering_prompt else SEND_A_SONG
    if message.animation is not None:
        return NOT_A_SONG_GIF.format(how=how)
    if message.dice is not None:
        return NOT_A_SONG.format(what=f"a {message.dice.emoji}", how=how)
    what = next((name for field, name in NOT_SONGS if getattr(message, field) is not None), "a picture")
    return NOT_A_SONG.format(what=what, how=how)


def full_width_command(text: str, commands: Sequence[str]) -> str | None:
    """The command of words opening with a full-width slash, as the bot reads it ('／mood Creep' ->
    'mood Creep'; its name NFKC, as the console reads it: 'ｍｏｏｄ' is 'mood'), where it is one of
    `commands`; else None."""
    if not text.startswith(FULL_WIDTH_SLASH):
        return None
    name, *words = text[1:].split(None, 1) or [""]
    name = unicodedata.normalize("NFKC", name)
    return " ".join([name, *words]) if name.lower() in commands else None


def link_alone(message: Message, allowed_hosts: frozenset[str]) -> str | None:
    """The song's link (one /mood reads: a Spotify track, a YouTube video) of a message that is
    that link alone, or the first of a message forwarded (a friend's "listen to this!" and the
    link); None for any other."""
    words = linked_text(message).split()
    if len(words) != 1 and message.forward_origin is None:
        return None
    for word in words:
        with contextlib.suppress(UnsupportedInputError):
            if is_link(word) and parse_query(word, allowed_hosts, discord=False).kind != QueryKind.TEXT:
                return word
    return None


def carries_no_song(message: Message | ExternalReplyInfo) -> bool:
    """Whether the message is one of those `not_a_song` names: a picture, a GIF, a sticker, a place,
    a location, a contact, a poll or a dice."""
    return bool(message.photo) or message.animation is not None or message.dice is not None or any(
        getattr(message, field) is not None for field, _ in NOT_SONGS)


class Album:
    """The items of one album seen so far, each with its caller as it arrived, and a signal for
    each new one."""

    __slots__ = ("items", "grew")

    def __init__(self, first: Update, caller: Caller) -> None:
        self.items = [(first, caller)]
        self.grew = asyncio.Event()

    def add(self, update: Update, caller: Caller) -> None:
        if len(self.items) < MAX_ALBUM_ITEMS:
            self.items.append((update, caller))
            self.grew.set()


async def collect_album(update: Update, caller: Caller, albums: dict[tuple[int, str], Album],
                        window_s: float) -> list[tuple[Update, Caller]] | None:
    """Every item of the album `update` belongs to, with the caller each arrived with (`caller`
    is this one's), in the order they were sent, once none came for `window_s`; None for the
    items after the first, whose handler collects the album.
    `albums`: the albums being collected, by chat and media_group_id (removed once collected)."""
    key = (update.effective_chat.id, update.effective_message.media_group_id)
    album = albums.get(key)
    if album is not None:
        album.add(update, caller)
        return None
    album = albums[key] = Album(update, caller)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ALBUM_MAX_WINDOWS * window_s
    try:
        while len(album.items) < MAX_ALBUM_ITEMS and (left := deadline - loop.time()) > 0:
            album.grew.clear()
            try:
                await asyncio.wait_for(album.grew.wait(), min(window_s, left))
            except asyncio.TimeoutError:
                break
    finally:
        del albums[key]
    return sorted(album.items, key=lambda item: item[0].effective_message.message_id)


def prompt_text(phrase: str) -> str:
    """A daily prompt's message text, as sent (and as a reply to it shows it)."""
    return clip(render.prompt_text(phrase))


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """`text` cut to `limit`, ending with '…' when cut, with no @mention in it (`unmentioned`).
    Counted in UTF-16 code units, as Telegram counts entity offsets: an emoji is two, so a cut
    never exceeds the limit however it counts."""
    text = unmentioned(text)
    data = text.encode("utf-16-le")
    if len(data) <= 2 * limit:
        return text
    # A cut through a surrogate pair leaves half an emoji: 'ignore' drops it.
    return data[:2 * (limit - len(ELLIPSIS))].decode("utf-16-le", errors="ignore").rstrip() + ELLIPSIS


def unmentioned(text: str) -> str:
    """`text` with a word joiner after each '@' that starts a username. Telegram finds mentions in
    plain text on its own and notifies the member named: a song title, a file name or a note
    reading '@boss' would ping @boss in every /playlist it shows up in. The text reads the same."""
    return MENTION_RE.sub("@\u2060", text)


def download_limit(settings: Settings) -> int:
    """The largest attachment to fetch: max_audio_bytes, and at most what the official Bot API lets
    a bot download (a local Bot API server lets it download more)."""
    if urlsplit(settings.telegram_api_url).hostname == OFFICIAL_API_HOST:
        return min(settings.max_audio_bytes, BOT_API_DOWNLOAD_LIMIT)
    return settings.max_audio_bytes


def command_text(message: Message) -> str:
    """What follows the command word ('/mood@bot Creep' -> 'Creep'), in text or caption. A newline
    or tab after the command separates like a space."""
    return song_named_in(linked_text(message))


def journal_note(message: Message) -> str:
    """The note a journal answer keeps: its words, less the '/mood' that captioned the song (a
    habit from groups), which is no part of the user's day."""
    return command_text(message) if MOOD_CAPTION.match(linked_text(message)) else linked_text(message)


def linked_text(message: Message, span: tuple[int, int] | None = None) -> str:
    """The message's text or caption (`span`: only its UTF-16 code units from, to, as a quote is
    placed), each link typed under words (a text_link entity, which Telegram keeps beside the text)
    put in place of those words, as the song to look up."""
    text, entities = ((message.text, message.entities) if message.text is not None
                      else (message.caption or "", message.caption_entities))
    units = text.encode("utf-16-le")  # entity offsets count UTF-16 code units
    first, last = span if span is not None else (0, len(units) // 2)
    links = [e for e in entities if e.type == MessageEntity.TEXT_LINK and e.url
             and first <= e.offset and e.offset + e.length <= last]
    if not links and span is None:
        return text
    units = units[2 * first:2 * last]
    for link in sorted(links, key=lambda e: e.offset, reverse=True):
        start, end = 2 * (link.offset - first), 2 * (link.offset + link.length - first)
        units = units[:start] + link.url.encode("utf-16-le") + units[end:]
    return units.decode("utf-16-le", errors="ignore")


def song_replied_to(message: Message, bot_id: int) -> Message | ExternalReplyInfo | None:
    """The message a bare '/mood' replies to, when it may hold a song: someone's audio or link in a
    group, or a message of another chat (Telegram's 'reply in another chat': its media come along,
    its words only as far as quoted). Not the bot's own answers, nor the service message every
    message of a forum topic replies to by default."""
    replied = message.reply_to_message
    if replied is None:
        return message.external_reply
    if replied.forum_topic_created is not None:
        return None
    if replied.from_user is not None and replied.from_user.id == bot_id:
        return None
    return replied


def how_to_ask_again(message: Message) -> str:
    """How to ask for the mood of `message`, whose edit is not answered: a file's by a reply to it
    (`song_replied_to`), anything else sent again."""
    return "reply /mood to it" if audio_of(message) is not None else "send it again as a new message"


def asks_mood(message: Message) -> bool:
    """Whether the message asks for a song's mood: its text opens with /mood, or its caption does
    under a file, a picture or a GIF (as `on_mood` and `on_not_a_song` answer them)."""
    if message.text is not None:
        return opening_command(message) is not None and command_typed(message).lower() == "mood"
    return (MOOD_CAPTION.match(message.caption or "") is not None
            and (audio_of(message) is not None or bool(message.photo) or message.animation is not None))


def answer_method(method: str) -> bool:
    """Whether the Bot API method puts a message in a chat, or text in one (not "typing…")."""
    return method.startswith(("send", "editMessage")) and method != "sendChatAction"


def bot_named(message: Message) -> str | None:
    """The bot the message's command names ('/mood@some_bot' -> 'some_bot'), in lower case; None
    when it names none."""
    found = re.match(r"/\w+@(\w+)", message.text or message.caption or "")
    return found.group(1).lower() if found is not None else None


def command_typed(message: Message) -> str:
    """The command's name as typed, without its slash or the bot it names ('/Moood@moodbot x' -> 'Moood')."""
    word = ((message.text or message.caption or "").split(None, 1) or [""])[0]
    return word[1:].split("@", 1)[0]


def replied_words(message: Message, replied: Message | ExternalReplyInfo) -> str:
    """The words of `replied` that name the song `message` asks about: the part quoted (Telegram's
    reply with a quote: of a message naming two songs, the one meant), else its whole text (none
    of another chat's message), less the command it opens with: a music bot's '/play Creep' names
    Creep. A quote keeps no link typed under words: found where the quote sits, the link is put back."""
    quote = message.quote
    if quote is None or not quote.text.strip():
        return command_text(replied) if isinstance(replied, Message) else ""
    if not isinstance(replied, Message):
        return quote.text.strip()
    units = quote.text.encode("utf-16-le")
    start = 2 * quote.position
    text = replied.text if replied.text is not None else (replied.caption or "")
    if text.encode("utf-16-le")[start:start + len(units)] != units:  # not there (edited since): its words
        return quote.text.strip()
    return linked_text(replied, (quote.position, quote.position + len(units) // 2)).strip()


def addressed_elsewhere(message: Message, bot_username: str | None) -> bool:
    """The message's command names another bot ('/mood@other_bot') in a group: a private chat
    holds no other bot, so there it was meant for this one (copied from a group, say)."""
    if message.chat.type == ChatType.PRIVATE:
        return False
    named = bot_named(message)
    return named is not None and named != (bot_username or "").lower()


def addressed_to(message: Message, bot_username: str | None) -> bool:
    """The message's command names this bot ('/mood@moodbot')."""
    return bot_named(message) == (bot_username or "").lower()


def audio_of(message: Message | ExternalReplyInfo):
    """(media object, file name) of the message's audio, voice note, document or video, else None
    (also for a GIF, whose document has no sound)."""
    if message.animation:
        return None
    if message.audio:
        return message.audio, message.audio.file_name or tagged_name(message.audio)
    if message.voice:
        return message.voice, "voice.ogg"
    if message.document:
        return message.document, message.document.file_name or "audio"
    if message.video:
        return message.video, message.video.file_name or "video.mp4"
    if message.video_note:
        return message.video_note, "video-note.mp4"
    return None


def upload_title(message: Message | ExternalReplyInfo) -> str | None:
    """What a playlist's reader would call the file of a message that names it nothing: a voice
    note, a video note, or a video, audio (untagged) or document sent without a file name, by
    whose it is and the day (UTC) it was sent, "Voice note by Alice, 5 Dec 2026"; a message
    forwarded, or of another chat, by its origin's. None for a file with a name (or an audio's
    tags: `tagged_name`), named by it."""
    kind = nameless_kind(message)
    return None if kind is None else titled_upload(kind, *sent_by(message))


def titled_sender(message: Message | ExternalReplyInfo) -> str | None:
    """The id (as `caller_of` keys them) of whom `upload_title` names the file by, for their /forget
    to take the name out of the requests that keep it; None where it names nobody, or an account
    hidden from forwards' links (known by its name alone)."""
    if nameless_kind(message) is None:
        return None
    origin = message.forward_origin if isinstance(message, Message) else message.origin
    if origin is not None:
        sender = (origin.sender_user if isinstance(origin, MessageOriginUser) else origin.sender_chat
                  if isinstance(origin, MessageOriginChat) else origin.chat
                  if isinstance(origin, MessageOriginChannel) else None)
    else:
        sender = message.sender_chat or message.from_user
    return str(sender.id) if sender is not None else None


def shown_name(message: Message | ExternalReplyInfo, filename: str) -> str:
    """The message's file as a refusal names it to its sender ("The file … is not audio we can
    read"): its name, clipped; a file that names itself nothing (`upload_title`), whose and when,
    "sent by Alice on 5 Dec 2026", rather than a name of the bot's own ("audio", "voice.ogg")
    that the chat never showed."""
    if nameless_kind(message) is None:  # without the marks a refusal's words read otherwise
        return clip(filename.translate(NAME_MARKS_DROPPED), MAX_SHOWN_NAME)
    return unnamed_upload(*sent_by(message))


def nameless_kind(message: Message | ExternalReplyInfo) -> str | None:
    """What the message's file is, "Voice note", where neither it nor its sender named it (see
    `upload_title`); None for a file with a name, or an audio's tags."""
    if message.voice:
        kind = "Voice note"
    elif message.video_note:
        kind = "Video note"
    elif message.audio:
        kind = None if message.audio.file_name or message.audio.title else "Audio"
    elif message.video:
        kind = None if message.video.file_name else "Video"
    elif message.document:
        kind = None if message.document.file_name else "File"
    else:
        kind = None
    return kind


def sent_by(message: Message | ExternalReplyInfo) -> tuple[str | None, datetime]:
    """Who sent the message's file, and when: a message forwarded, or of another chat, its origin's."""
    origin = message.forward_origin if isinstance(message, Message) else message.origin
    if origin is not None:
        return origin_name(origin), origin.date
    sender = message.sender_chat or message.from_user
    return sender.first_name if isinstance(sender, User) else sender.title if sender is not None else None, message.date


def origin_name(origin: MessageOrigin) -> str | None:
    """Who first sent a message forwarded (or quoted from another chat), as Telegram names them;
    None for an account hidden from forwards' links."""
    if isinstance(origin, MessageOriginUser):
        return origin.sender_user.first_name
    if isinstance(origin, MessageOriginHiddenUser):
        # An account its owner hid from forwards' links: a name without an id, which no /forget
        # could take back out of the records keeping it (`titled_sender`), so neither kept nor shown.
        return None
    if isinstance(origin, MessageOriginChat):
        return origin.sender_chat.title or origin.sender_chat.effective_name
    if isinstance(origin, MessageOriginChannel):
        return origin.chat.title
    return None


def tagged_name(audio: Audio) -> str:
    """The name of an audio sent without a file name (some apps send music with its tags only):
    "performer – title", or the title, with the suffix its type names; else "audio.mp3". A '/' of
    a tag ("AC/DC") is shown as '∕', so that no part of the name reads as a folder."""
    named = " – ".join(tag for tag in (audio.performer, audio.title) if tag) if audio.title else ""
    suffix = AUDIO_SUFFIXES.get((audio.mime_type or "").lower(), ".mp3")
    return f"{named.replace('/', '∕')}{suffix}" if named.strip() else "audio.mp3"


def duration_of(media: object) -> float:
    """The length in seconds Telegram gives for an attachment; 0 when it gives none (a document)."""
    duration = getattr(media, "duration", None)
    return 0.0 if duration is None else seconds_of(duration)


def on_off(args: list[str] | None) -> bool | None:
    if args and len(args) == 1 and args[0].lower() in ("on", "off"):
        return args[0].lower() == "on"
    return None


def album_words(reply: object, charts: list[Chart]) -> str:
    """The words of an album of charts, as a message takes them: the reply's text, then each
    chart's caption on a line of its own."""
    return clip("\n\n".join(filter(None, (render.reply_text(reply, PLACE_WORD),
                                            "\n".join(filter(None, (c.caption for c in charts)))))))


def charts_of(reply: object) -> list[Chart]:
    if isinstance(reply, StatsReply):
        return list(reply.charts)
    if isinstance(reply, ServerMoodReply) and reply.chart is not None:
        return [reply.chart]
    return []
