"""Slash and message commands kept until answered, so that a bot killed outright (kill -9, out of
memory) answers them after its restart (the inbox, `bot/usecases/inbox.py`).

Discord replays no interaction: a command at work when the bot died stayed "thinking…" for ever.
Each application command's interaction is kept as Discord sent it (the gateway event, hooked where
discord.py parses it), and cleared once its handler's task ends (answered, failed and apologised
for, or cut short by a stop and told). A start hands those left over to discord.py again, as if
Discord had sent them: their deferral is refused as already made (40060), which the cogs take as a
deferral that stands (`interactions.acknowledge`), and their answer goes in the "thinking…" the
killed run left. Discord takes an interaction's answers for 15 minutes: one older is dropped. A
command answered in parts (the message command on several files, a followup each) notes each part
answered (`part_answered`), and its answer after a restart starts after them (`parts_answered`);
the followup of the part at work is noted once sent, with its part (`followup_shown`), and the
answer after a restart goes in it (`followup_before`): "Listening…" is not left in the channel.

A user's DM (an answer to a daily prompt) is kept the same way, from its MESSAGE_CREATE until its
listener's task ends, and handed over again as one at the start (within a day, as the inbox keeps
anything); there is no deadline to answer it. Its status message ("Finding the song…") is noted
(`shown`), and the answer after a restart goes in it (`shown_before`), not under a second one.

A button press (type 3) is kept only once its handler has taken it on (`press_taken`): a page of
/journal list turned, /forget's "Yes" (its asker's first press). Those defer (Discord shows
nothing more) and answer by editing the pressed message: a run killed between left the old page,
or the question with its buttons over a deletion half done, and the press's next try was told the
confirmation had expired. Handed over again at the start, the deferral stands (40060) and the
answer goes in the pressed message: the page turned, the deletion finished and said done
(`replayed` tells the cog a "Yes" its killed run took on from a press on a question it no longer
listens to). "Yes" is kept under no user (`UNNAMED`): the /forget deletes its asker's requests
kept first, and would take its own press with them. A press answered at once (No, someone else's,
a second one) is not kept; nor autocomplete. Keeping is best effort, as for Telegram: the
database down or slow, a command is answered all the same, held in memory only.
"""
from __future__ import annotations

import asyncio
import collections
import logging
from datetime import timedelta
from typing import Any, Callable, Sequence

import discord

from bot.frontends.keeping import KeptUntilAnswered
from bot.usecases.inbox import Arrival, InboxUseCase

log = logging.getLogger(__name__)

APPLICATION_COMMAND = 2
COMPONENT = 3  # a button pressed (or a select chosen)
# The messages a DM answer can be: a user's message (0) or reply (19), not a system message.
DM_MESSAGE_TYPES = (0, 19)
# Discord takes an interaction's answers for 15 minutes; one replayed needs some of them left.
REPLAY_WITHIN = timedelta(minutes=14)
# A DM is kept with this key added (its payload is otherwise Discord's own), to be parsed as one.
KIND = "moodbot_kind"
DM = "dm"
UNNAMED = "unnamed"  # a press kept under no user (`press_taken`)
# Presses just arrived, held in memory for their handler to keep (`press_taken`): the latest so many,
# each for as long as Discord lets a handler first answer it (3 s from its arrival, which comes later
# than Discord's own clock starts): one no handler took on by then (No, someone else's, a second
# one) goes, its payload (the presser's names, the message pressed) no longer in memory, nor after
# their /forget. Until 2026-12-06 it stayed until PRESSES_HELD others came after it.
PRESSES_HELD = 256
PRESS_HOLD_S = 3.0
MAX_REASON = 200  # characters of why discord.py could not read a payload, logged


class KeptCommands:
    def __init__(self, inbox: InboxUseCase, application_id: Callable[[], int | None]) -> None:
        self._inbox = inbox
        self._application_id = application_id
        self._kept: KeptUntilAnswered[dict[str, Any]] = KeptUntilAnswered(self._write, self._clear, inbox.paused_for)
        self._parts: dict[int, int] = {}  # commands being answered in parts: how many are answered
        self._shown: dict[int, tuple[str, str]] = {}  # DMs being answered: their status (channel, message)
        self._shown_before: dict[int, tuple[str, str]] = {}  # DMs replayed: the killed run's status
        self._noting: set[asyncio.Task] = set()
        self._presses: collections.OrderedDict[int, dict[str, Any]] = collections.OrderedDict()  # just arrived
        self._replayed: set[int] = set()  # presses handed over again at this start, not ended yet

    @property
    def source(self) -> str:
        return f"discord:{self._application_id()}"

    def arrived(self, data: dict[str, Any]) -> None:
        """An INTERACTION_CREATE as Discord sent it (before discord.py parses it)."""
        if data.get("type") == COMPONENT and "id" in data:
            number = int(data["id"])
            self._presses[number] = data  # kept should its handler take it on (`press_taken`)
            asyncio.get_running_loop().call_later(PRESS_HOLD_S, self._presses.pop, number, None)
            while len(self._presses) > PRESSES_HELD:
                self._presses.popitem(last=False)
        if data.get("type") != APPLICATION_COMMAND:
            return
        self._arrived(data)

    def press_taken(self, number: int, *, unnamed: bool = False) -> bool:
        """Its handler has taken on the press `number` (it defers, and answers in the message
        pressed): kept until `finished`, under no user when `unnamed`; one handed over again is
        kept already. Whether it is kept (False: not seen arriving)."""
        data = self._presses.pop(number, None)
        if data is not None:
            self._arrived({**data, KIND: UNNAMED} if unnamed else data)
        return data is not None or number in self._replayed

    def presses_held(self) -> list[int]:
        """The presses held as they arrived, not taken on yet (`press_taken`)."""
        return list(self._presses)

    def replayed(self, number: int) -> bool:
        """Whether the press `number` was handed over again at this start: its killed run took it on."""
        return number in self._replayed

    def dm_arrived(self, data: dict[str, Any]) -> None:
        """A MESSAGE_CREATE as Discord sent it: kept when it is a user's DM (a journal answer)."""
        if is_users_dm(data):
            self._arrived({**data, KIND: DM})

    def _arrived(self, data: dict[str, Any]) -> None:
        self._kept.arrived(int(data["id"]), data)
        self._kept.keep_soon()

    def finished(self, number: int) -> None:
        """Its handler's task has ended."""
        self._presses.pop(number, None)
        self._replayed.discard(number)
        self._parts.pop(number, None)
        self._shown.pop(number, None)
        self._shown_before.pop(number, None)
        self._kept.finished([number])

    def shown(self, number: int, channel_id: int, message_id: int) -> None:
        """The DM `number`'s status message was sent: noted in the background where the DM is
        kept (once its write is done; a write still to come takes it too)."""
        self._note_shown(number, (str(channel_id), str(message_id)))

    def followup_shown(self, number: int, part: int, message_id: int) -> None:
        """The command `number`'s followup for its part `part` (a file of the message command) was
        sent, its answer to come: noted as a DM's status is (`shown`), with the part it is for."""
        self._note_shown(number, (str(part), str(message_id)))

    def followup_before(self, number: int, part: int) -> int | None:
        """The followup a run killed outright sent for part `part` of the command `number`,
        replayed: its answer goes in it. None for one noted for an earlier part, answered since
        (the next part's followup was not noted before the kill)."""
        before = self._shown_before.pop(number, None)
        return int(before[1]) if before is not None and before[0] == str(part) else None

    def _note_shown(self, number: int, shown: tuple[str, str]) -> None:
        self._shown[number] = shown
        task = asyncio.get_running_loop().create_task(
            self._kept.after_writes(lambda: self._inbox.shown(self.source, number, *shown)))
        self._noting.add(task)
        task.add_done_callback(self._noting.discard)

    def shown_before(self, number: int) -> tuple[str, str] | None:
        """The status message (channel, message) a run killed outright showed for the DM `number`,
        replayed: its answer goes in it."""
        return self._shown_before.pop(number, None)

    def parts_answered(self, number: int) -> int:
        """How many parts of the command `number` are answered already (by a run killed outright,
        for one replayed): its answer goes on after them."""
        return self._parts.get(number, 0)

    async def part_answered(self, number: int, parts: int) -> None:
        """The first `parts` parts of the command `number` are answered: noted where it is kept
        (once its write is done; a write still to come takes it too), best effort."""
        self._parts[number] = parts
        await self._kept.after_writes(lambda: self._inbox.parts_answered(self.source, [number], parts))

    async def flush(self, timeout_s: float) -> None:
        """The stop's last step: what was answered is cleared (within `timeout_s`)."""
        await self._kept.flush(timeout_s)

    async def replay(self, parse: Callable[[dict[str, Any]], None], parse_dm: Callable[[dict[str, Any]], None]) -> int:
        """Hand the commands, presses and DMs a run killed outright left unanswered to discord.py's own
        parsers (`parse`: INTERACTION_CREATE, `parse_dm`: MESSAGE_CREATE), oldest first; how many."""
        arrivals = await self._inbox.replay(self.source)
        now = discord.utils.utcnow()
        late = [a for a in arrivals if a.payload.get(KIND) != DM
                and discord.utils.snowflake_time(a.number) + REPLAY_WITHIN < now]
        if late:
            log.warning("discord.too_late_to_answer", extra={"commands": len(late)})
            await self._inbox.done(self.source, [a.number for a in late])
        replayed = 0
        for arrival in arrivals:
            if arrival in late:
                continue
            if arrival.parts:
                self._parts[arrival.number] = arrival.parts
            if arrival.shown is not None:
                self._shown_before[arrival.number] = arrival.shown
            try:
                payload = {k: v for k, v in arrival.payload.items() if k != KIND}
                if arrival.payload.get(KIND) == DM:
                    parse_dm(payload)
                else:
                    if payload.get("type") == COMPONENT:
                        self._replayed.add(arrival.number)
                    parse(payload)
                replayed += 1
            except Exception as error:  # noqa: BLE001 - kept by another version of the library
                # Which (its req=, as the killed run's lines of it) and why, in discord.py's words:
                # the type alone said neither.
                log.warning("discord.not_replayed", extra={"req": f"dc-{arrival.number}", "user": arrival.user_id,
                                                           "reason": why_unreadable(error)})
                self._parts.pop(arrival.number, None)
                self._shown_before.pop(arrival.number, None)
                self._replayed.discard(arrival.number)
                await self._inbox.done(self.source, [arrival.number])
        return replayed

    async def _write(self, batch: list[dict[str, Any]]) -> None:
        await self._inbox.keep(self.source, [Arrival(int(data["id"]), data, "discord",
                                                     None if data.get(KIND) == UNNAMED else sender_of(data),
                                                     shown=self._shown.get(int(data["id"])),
                                                     parts=self._parts.get(int(data["id"]), 0)) for data in batch])

    async def _clear(self, numbers: Sequence[int], *, even_paused: bool = False) -> bool:
        return await self._inbox.done(self.source, numbers, even_paused=even_paused)


def why_unreadable(error: Exception) -> str:
    """Why discord.py could not read a payload, for the log: the error's type and words, cut (a
    KeyError names the field it lacked)."""
    return f"{type(error).__name__}: {error}"[:MAX_REASON]


def is_users_dm(data: dict[str, Any]) -> bool:
    """Whether a message, as Discord sends it, is a user's DM to the bot (a journal answer): not
    in a server, not a system message, not a bot's."""
    return data.get("guild_id") is None and data.get("type") in DM_MESSAGE_TYPES and \
        not (data.get("author") or {}).get("bot")


def sender_of(data: dict[str, Any]) -> str | None:
    user = (data.get("member") or {}).get("user") or data.get("user") or data.get("author") or {}
    return None if "id" not in user else str(user["id"])
