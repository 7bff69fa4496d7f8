"""DMs sent while the bot could not hear them, read back from their channels' history.

Discord replays no gateway event to a new session: a user's answer to a daily prompt sent while
the bot was stopped, restarting, or offline past what discord.py can resume was neither saved nor
answered. So at the start, and whenever shard 0 (the one DMs come on) begins a new session, the
DM channel of each user whose latest prompt is still open is read back (`GET
/channels/{id}/messages`, the newest `DEPTH`): the user's messages after the bot's last reply
there are those nobody answered (the bot answers every DM, at least with a status), and each is
handed to discord.py as if Discord had just sent it, oldest first. A prompt is not a reply: one
sent after the DM (the start's missed prompts go out at once, and may come before its channel is
read) took the DM for answered, and it was never answered. Each DM answers the prompt it came
after (`prompt_before`), as it would have had the bot heard it then, not a newer one.

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

from bot.frontends import render
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
        self._prompts: OrderedDict[int, int] = OrderedDict()  # DMs read back -> the prompt they came after

    def claim(self, message_id: int) -> bool:
        """The DM `message_id` is about to be handled: False when it has been already, in this process."""
        if message_id in self._claimed:
            return False
        self._claimed[message_id] = None
        while len(self._claimed) > CLAIMS:
            self._claimed.popitem(last=False)
        return True

    def prompt_before(self, message_id: int) -> int | None:
        """The prompt message the DM `message_id`, read back, came after (None if not read back, or
        none was among the messages read): the one it answers."""
        return self._prompts.pop(message_id, None)

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
            for data, answering in missed:
                if int(data["id"]) not in self._claimed:  # `hand_over` claims it
                    if answering is not None:
                        self._prompts[int(data["id"])] = answering
                        while len(self._prompts) > CLAIMS:
                            self._prompts.popitem(last=False)
                    hand_over(data)
                    handed += 1
            if missed:
                log.info("discord.dms_missed", extra={"user": prompt.user.user_id, "messages": len(missed)})
            await asyncio.sleep(0)
        return handed


def unanswered(history: list[dict[str, Any]], *, bot_id: int | None) -> list[tuple[dict[str, Any], int | None]]:
    """Of a DM channel's messages, newest first as Discord lists them: the user's after the bot's
    last reply (its answer to the last DM it heard, or anything else it said but a prompt), oldest
    first, each with the id of the prompt it came after. One before every prompt read is not
    (its prompt, if any, is out of sight); with no prompt among them, each comes with None."""
    missed: list[tuple[dict[str, Any], int | None]] = []
    pending: list[dict[str, Any]] = []  # the user's, newest first, their prompt still to be read
    prompts = False
    for data in history:
        author = data.get("author") or {}
        if author.get("bot") or (bot_id is not None and str(author.get("id")) == str(bot_id)):
            if not is_prompt(data):
                break
            missed += [(dm, int(data["id"])) for dm in pending]
            pending, prompts = [], True
        elif is_users_dm(data):
            pending.append(data)
    if not prompts:
        missed += [(dm, None) for dm in pending]
    return missed[::-1]


def is_prompt(data: dict[str, Any]) -> bool:
    """Whether a message of the bot's is a daily prompt (`DiscordFrontend.send_prompt`)."""
    return str(data.get("content") or "").endswith(f"\n\n{render.PROMPT_HINT}")
