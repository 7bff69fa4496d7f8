"""DMs sent while the bot could not hear them, read back from their channels' history.

Discord replays no gateway event to a new session: a user's answer to a daily prompt sent while
the bot was stopped, restarting, or offline past what discord.py can resume was neither saved nor
answered. So at the start, and whenever shard 0 (the one DMs come on) begins a new session, the
DM channel of each user whose latest prompt is still open is read back (`GET
/channels/{id}/messages`, the newest `DEPTH`): the user's messages after the bot's last reply
there are those nobody answered (the bot answers every DM, at least with a status), and each is
handed to discord.py as if Discord had just sent it, oldest first. A prompt is not a reply (known
by its hint, or, worded otherwise by another version, by the message id recorded for it): one
sent after the DM (the start's missed prompts go out at once, and may come before its channel is
read) took the DM for answered, and it was never answered. Each DM answers the prompt it came
after (`read_back`), as it would have had the bot heard it then, not a newer one. Nor is a status
still showing a stage ("Finding the song…") a reply: a run killed outright left it, its DM not kept
yet (the inbox's writes are batched, or the database was down); the DM's answer goes in it.

A message is handled once in a process whichever way it comes (`claim`): the gateway's event for a
DM sent while its channel was being read, or a DM the inbox handed over again after a hard kill
(bot/frontends/discord/kept.py), is not answered a second time by the catch-up, nor the other way
round. Users with an answered prompt are not read (their DM would be told "already answered");
at most `USERS` channels per session start, newest prompts first, two REST calls each (the DM
channel, its messages), which discord.py spaces out under Discord's rate limits.

Each user's channel, and each DM in it, is read back on its own: a channel Discord refuses (403,
404, a 5xx after discord.py's retries), a connection lost, a channel not read within `CHANNEL_S`,
or a message discord.py cannot parse (a field missing, or one shaped as it does not know) is
logged with why (`discord.dms_not_read_back`, `discord.dm_not_read_back`) and skipped; the other
DMs and users are answered. A DM that cannot be parsed is not kept for the next start either.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Collection, NamedTuple, Sequence

import discord

from bot.frontends.discord import rendering
from bot.frontends.discord.interactions import NETWORK_ERRORS
from bot.frontends.discord.kept import is_users_dm, why_unreadable
from bot.replies import STAGE_DOWNLOADING, STAGE_FINDING, STAGE_LISTENING
from bot.usecases.journal import ANSWER_DAYS
from storage.models import SentPrompt

log = logging.getLogger(__name__)

USERS = 200  # DM channels read back per session start
DEPTH = 20  # messages read back per channel: a user answers a prompt with one or two
# The most one channel's reading back (its two REST calls, rate limits waited out) may take: past
# it, that user's DMs are left, and the next user's channel read (aiohttp alone waits 5 minutes).
CHANNEL_S = 30.0
# A prompt is known by its words; where another version worded it otherwise, by its id, asked of
# the database for the bot's message taken for its reply, at most this many times a channel.
LOOKUPS = 3
CLAIMS = 10_000  # DMs remembered as handled in this process (the newest)
# What a status message shows until the answer is put in it (`MessageProgress`): one still showing
# it is no reply, but the sign of a run killed outright while it answered (the DM not kept yet).
STATUSES = frozenset({STAGE_FINDING, STAGE_DOWNLOADING, STAGE_LISTENING})


class Unanswered(NamedTuple):
    """A DM read back: its message, the prompt it came after, the status message a run killed
    outright left showing for it (message ids; None where there is none among the messages read)."""
    data: dict[str, Any]
    prompt: int | None = None
    status: int | None = None


class MissedDMs:
    def __init__(self) -> None:
        self._claimed: OrderedDict[int, None] = OrderedDict()
        self._read_back: OrderedDict[int, Unanswered] = OrderedDict()  # DMs handed over, to be answered

    def claim(self, message_id: int) -> bool:
        """The DM `message_id` is about to be handled: False when it has been already, in this process."""
        if message_id in self._claimed:
            return False
        self._claimed[message_id] = None
        while len(self._claimed) > CLAIMS:
            self._claimed.popitem(last=False)
        return True

    def read_back(self, message_id: int) -> Unanswered | None:
        """The DM `message_id` as read back (None if it was not): the prompt it answers, the status
        message its answer goes in."""
        return self._read_back.pop(message_id, None)

    async def catch_up(self, bot: discord.Client, prompts: Sequence[SentPrompt],
                       hand_over: Callable[[dict[str, Any]], None],
                       is_prompt: Callable[[str, int], Awaitable[bool | None]] | None = None) -> int:
        """Read back the DM channel of each prompt's user; hand each DM left unanswered there to
        `hand_over` (the gateway's MESSAGE_CREATE parser), oldest first. How many were. Each
        user's channel, and each DM, on its own: one that fails is logged, with why, and skipped.
        `is_prompt(chat, message)`: whether a message of the bot's is a prompt it recorded, asked
        of the one taken for its reply (`LOOKUPS` at most a channel): a prompt worded otherwise
        (by another version) hid the DMs after it; where it cannot say (None), it is asked no more."""
        handed, asking = 0, is_prompt

        async def known_prompt(chat: str, message: int) -> bool:
            """`is_prompt`, until it cannot say (None: the database is down, each asking waited for
            it): the other channels' messages are then taken for replies unasked."""
            nonlocal asking
            found = None if asking is None else await asking(chat, message)
            if found is None:
                asking = None
            return bool(found)

        for prompt in prompts:
            if bot.is_closed() or getattr(bot, "stopping", False):
                break
            user = prompt.user.user_id
            try:
                history = await asyncio.wait_for(self._history(bot, int(prompt.chat_id)), CHANNEL_S)
            except (discord.HTTPException, *NETWORK_ERRORS) as error:  # TimeoutError: CHANNEL_S passed
                reason = f"{error.status} {error.code}" if isinstance(error, discord.HTTPException) else type(error).__name__
                log.info("discord.dms_not_read_back", extra={"user": user, "reason": reason})
                continue
            history = _readable(history, user)
            try:
                missed = await self._unanswered(bot, prompt, history, None if is_prompt is None else known_prompt)
            except Exception as error:  # noqa: BLE001 - a message shaped as no Discord sent before
                log.warning("discord.dms_not_read_back", extra={"user": user, "reason": why_unreadable(error)})
                continue
            for dm in missed:
                if int(dm.data["id"]) not in self._claimed:  # `hand_over` claims it
                    handed += self._hand_over(dm, hand_over, user)
            if missed:
                log.info("discord.dms_missed", extra={"user": user, "messages": len(missed)})
            await asyncio.sleep(0)
        return handed

    @staticmethod
    async def _unanswered(bot: discord.Client, prompt: SentPrompt, history: list[dict[str, Any]],
                          is_prompt: Callable[[str, int], Awaitable[bool]] | None) -> list[Unanswered]:
        """`unanswered`, the prompts known by their words, the open one's id, and those ids the
        bot's message taken for its reply turned out to be (`is_prompt`)."""
        known = {int(prompt.message_id)} if str(prompt.message_id).isdigit() else set()
        since = discord.utils.utcnow() - timedelta(days=ANSWER_DAYS)
        for _ in range(LOOKUPS):
            missed, reply = _read(history, bot_id=bot.user.id if bot.user else None, since=since, known=known)
            if reply is None or is_prompt is None or not await is_prompt(str(prompt.chat_id), reply):
                break
            known.add(reply)
        else:
            missed, _ = _read(history, bot_id=bot.user.id if bot.user else None, since=since, known=known)
        return missed

    @staticmethod
    async def _history(bot: discord.Client, user_id: int) -> Any:
        channel = await bot.create_dm(discord.Object(id=user_id))
        return await bot.http.logs_from(channel.id, DEPTH)

    def _hand_over(self, dm: Unanswered, hand_over: Callable[[dict[str, Any]], None], user: str) -> int:
        """One DM handed to discord.py (1), or, where it cannot parse it, logged and skipped (0)."""
        number = int(dm.data["id"])
        self._read_back[number] = dm
        while len(self._read_back) > CLAIMS:
            self._read_back.popitem(last=False)
        try:
            hand_over(dm.data)
        except Exception as error:  # noqa: BLE001 - a message shaped as no Discord discord.py knows sent
            self._read_back.pop(number, None)
            log.warning("discord.dm_not_read_back", extra={"user": user, "dm": number, "reason": why_unreadable(error)})
            return 0
        return 1


def _readable(history: Any, user: str) -> list[dict[str, Any]]:
    """A channel's messages as read back, less any that is not one (logged): not an object with a
    numeric id, or its author not an object."""
    if not isinstance(history, list):
        log.warning("discord.dms_not_read_back", extra={"user": user, "reason": f"not a list: {type(history).__name__}"})
        return []
    readable = [data for data in history if isinstance(data, dict) and str(data.get("id")).isdigit()
                and isinstance(data.get("author") or {}, dict)]
    if len(readable) < len(history):
        log.warning("discord.dm_not_read_back", extra={"user": user, "reason": "not a message",
                                                       "messages": len(history) - len(readable)})
    return readable


def unanswered(history: list[dict[str, Any]], *, bot_id: int | None,
               since: datetime | None = None, prompts: Collection[int] = ()) -> list[Unanswered]:
    """Of a DM channel's messages, newest first as Discord lists them: the user's after the bot's
    last reply (its answer to the last DM it heard, or anything else it said but a prompt or a
    status left showing), oldest first, each with the prompt it came after and the status left
    for it. One before every prompt read is not (its prompt, if any, is out of
    sight); with no prompt among them, each comes with None. Nothing made before `since` is read
    (a DM answers a prompt of the last ANSWER_DAYS: one left unanswered longer is not answered now).
    A prompt is known by its words (`is_prompt`), or by its id among `prompts`."""
    return _read(history, bot_id=bot_id, since=since, known=prompts)[0]


def _read(history: list[dict[str, Any]], *, bot_id: int | None, since: datetime | None,
          known: Collection[int]) -> tuple[list[Unanswered], int | None]:
    """`unanswered`, and the id of the bot's message taken for its last reply (None if none was read)."""
    missed: list[Unanswered] = []
    pending: list[Unanswered] = []  # the user's, newest first, their prompt still to be read
    prompts, status, after_status, reply = False, None, 0, None

    def left_for() -> None:
        """A status left showing is the first DM's at work of those before it (the oldest): the
        ones after waited their turn (`JournalCog._on_dm`)."""
        if status is not None and len(pending) > after_status:
            pending[-1] = pending[-1]._replace(status=status)

    for data in history:
        if since is not None and (made := made_at(data)) is not None and made < since:
            break
        author = data.get("author") or {}
        if author.get("bot") or (bot_id is not None and str(author.get("id")) == str(bot_id)):
            if data.get("content") in STATUSES and not data.get("embeds"):
                left_for()
                status, after_status = int(data["id"]), len(pending)
                continue
            if not is_prompt(data) and int(data["id"]) not in known:
                reply = int(data["id"])
                break
            left_for()
            missed += [dm._replace(prompt=int(data["id"])) for dm in pending]
            pending, prompts, status = [], True, None
        elif is_users_dm(data):
            pending.append(Unanswered(data))
    left_for()
    if not prompts:
        missed += pending
    return missed[::-1], reply


def is_prompt(data: dict[str, Any]) -> bool:
    """Whether a message of the bot's is a daily prompt (`DiscordFrontend.send_prompt`), worded now
    or as an older version worded it (`rendering.PROMPT_HINTS`)."""
    return rendering.shows_prompt(str(data.get("content") or ""))


def made_at(data: dict[str, Any]) -> datetime | None:
    """When a message was sent, by its `timestamp` (ISO 8601, as Discord sends it); None if unsaid."""
    try:
        made = datetime.fromisoformat(str(data["timestamp"]))
    except (KeyError, ValueError):
        return None
    return made if made.tzinfo is not None else None
