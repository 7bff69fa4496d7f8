"""DMs sent while the bot could not hear them, read back from their channels' history.

Discord replays no gateway event to a new session: a user's answer to a daily prompt sent while
the bot was stopped, restarting, or offline past what discord.py can resume was neither saved nor
answered. So at the start, and whenever shard 0 (the one DMs come on) begins a new session, the
DM channel of each user whose latest prompt is still open is read back (`GET
/channels/{id}/messages`, the newest `DEPTH`): the user's messages after the bot's last message
there are those nobody answered (the bot answers every DM, at least with a status), and each is
handed to discord.py as if Discord had just sent it, oldest first. The prompt itself is a bot
message, so nothing before it is read.

A message is handled once in a process whichever way it comes (`claim`): the gateway's event for a
DM sent while its channel was being read, or a DM the inbox handed over again after a hard kill
(bot/frontends/discord/kept.py), is not answered a second time by the catch-up, nor the other way
round. Users with an answered prompt are not read (their DM would be told "already answered");
at most `USERS` channels per session start, newest prompts first, two REST calls each (the DM
channel, its messages), which discord.py spaces out under Discord's rate limits.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any, Callable, Sequence

import discord

from bot.frontends.discord.interactions import NETWORK_ERRORS
from bot.frontends.discord.kept import is_users_dm
from storage.models import SentPrompt

log = logging.getLogger(__name__)

USERS = 200  # DM channels read back per session start
DEPTH = 20  # messages read back per channel: a user answers a prompt with one or two
CLAIMS = 10_000  # DMs remembered as handled in this process (the newest)


class MissedDMs:
    def __init__(self) -> None:
        self._claimed: OrderedDict[int, None] = OrderedDict()

    def claim(self, message_id: int) -> bool:
        """The DM `message_id` is about to be handled: False when it has been already, in this process."""
        if message_id in self._claimed:
            return False
        self._claimed[message_id] = None
        while len(self._claimed) > CLAIMS:
            self._claimed.popitem(last=False)
        return True

    async def catch_up(self, bot: discord.Client, prompts: Sequence[SentPrompt],
                       hand_over: Callable[[dict[str, Any]], None]) -> int:
        """Read back the DM channel of each prompt's user; hand each DM left unanswered there to
        `hand_over` (the gateway's MESSAGE_CREATE parser), oldest first. How many were."""
        handed = 0
        for prompt in prompts:
            if bot.is_closed() or getattr(bot, "stopping", False):
                break
            try:
                channel = await bot.create_dm(discord.Object(id=int(prompt.chat_id)))
                history = await bot.http.logs_from(channel.id, DEPTH)
            except (discord.HTTPException, *NETWORK_ERRORS) as error:
                reason = f"{error.status} {error.code}" if isinstance(error, discord.HTTPException) else type(error).__name__
                log.info("discord.dms_not_read_back", extra={"user": prompt.user.user_id, "reason": reason})
                continue
            missed = unanswered(history, bot_id=bot.user.id if bot.user else None)
            for data in missed:
                if int(data["id"]) not in self._claimed:  # `hand_over` claims it
                    hand_over(data)
                    handed += 1
            if missed:
                log.info("discord.dms_missed", extra={"user": prompt.user.user_id, "messages": len(missed)})
            await asyncio.sleep(0)
        return handed


def unanswered(history: list[dict[str, Any]], *, bot_id: int | None) -> list[dict[str, Any]]:
    """Of a DM channel's messages, newest first as Discord lists them: the user's after the bot's
    last one (its prompt, or its answer to the last DM it heard), oldest first."""
    missed = []
    for data in history:
        author = data.get("author") or {}
        if author.get("bot") or (bot_id is not None and str(author.get("id")) == str(bot_id)):
            break
        if is_users_dm(data):
            missed.append(data)
    return missed[::-1]
