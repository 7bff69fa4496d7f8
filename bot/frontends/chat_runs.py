"""The /mood runs of each chat, so that a chat the bot is no longer in drops the work it has not
handed to the model yet.

Removed from a group (or having left it), the bot can send nothing there: every answer gets a 403.
The songs its members asked for meanwhile were still fetched (the file from Telegram, the audio from
YouTube, a Spotify lookup) and heard, for nobody. Once the front-end knows of the removal (`drop`:
Telegram's `my_chat_member` update, or a 403 "bot was kicked" on a send there; Discord's
`on_guild_remove`, keyed by the server's id), each run of that
chat still before the model (waiting for its file, downloading, searching) is cancelled, and those
that start later are dropped before any fetch (`is_gone`), until the bot is back (`back`).

A run the model already has (its stage `STAGE_LISTENING`: in the classifier's queue or being
heard) is left to finish: a job being heard cannot be taken back from a worker, and its mood is
cached for the next asker of the song; its answer gets the 403, said once in the log as before.
Cancelling an asker does not call off a listening other askers share (`MoodUseCase._once`); one
left with no asker before the model is called off there.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Hashable

from bot.logs import REQUEST
from bot.replies import STAGE_LISTENING, Progress


class ChatRun:
    """One /mood being answered in a chat: its task, the latest stage its use case told, and its
    request (its log lines' req=, to name it where it is dropped)."""

    __slots__ = ("task", "stage", "dropped", "request")

    def __init__(self, task: asyncio.Task) -> None:
        self.task = task
        self.stage: str | None = None
        self.dropped = False
        self.request = REQUEST.get()

    def told(self, progress: Progress) -> Progress:
        """`progress`, noting each stage here first."""
        async def tell(stage: str) -> None:
            self.stage = stage
            await progress(stage)
        return tell


class ChatRuns:
    def __init__(self) -> None:
        self._runs: dict[Hashable, set[ChatRun]] = {}
        self._gone: set[Hashable] = set()

    def is_gone(self, chat: Hashable) -> bool:
        """Whether the bot is out of `chat`: a run that starts there now is dropped, nothing sent.

        The front-ends log each such drop at INFO, one line a run, with its req= and the chat: not
        DEBUG, as it was, since its asker then has no answer and the log no line of the request at
        all (an operator at INFO cannot follow "the bot ignored my /mood" to the removal, nor see a
        chat wrongly held gone: a 403 'bot was kicked' whose re-add the bot never heard of drops the
        chat's every /mood until a restart). Not rate-limited: each line is one user's request, so
        they come no faster than answered requests, each of which writes several INFO lines; a
        limit would hide the very requests a complaint names. (The runs dropped at the removal
        itself are the removal's one line: `telegram.chat_gone`, `discord.guild_gone`.)"""
        return chat in self._gone

    @contextlib.contextmanager
    def running(self, chat: Hashable) -> Iterator[ChatRun]:
        """The run of the current task in `chat`, while it lasts. Dropped (`drop`), the run ends
        here quietly: nothing is sent to a chat that refuses it."""
        task = asyncio.current_task()
        assert task is not None
        run = ChatRun(task)
        self._runs.setdefault(chat, set()).add(run)
        try:
            yield run
        except asyncio.CancelledError:
            if not run.dropped or task.uncancel() > 0:  # cancelled otherwise too (the stop)
                raise
        finally:
            runs = self._runs[chat]
            runs.discard(run)
            if not runs:
                del self._runs[chat]

    def drop(self, chat: Hashable) -> int | None:
        """The bot is out of `chat`: its runs before the model are cancelled. How many; None where
        it was known already (a second 403, the removal's update after one)."""
        dropped = self.drop_runs(chat)
        return None if dropped is None else len(dropped)

    def drop_runs(self, chat: Hashable) -> list[ChatRun] | None:
        """As `drop`, the runs cancelled themselves (their `request`s)."""
        if chat in self._gone:
            return None
        self._gone.add(chat)
        dropped = [run for run in self._runs.get(chat, ()) if run.stage != STAGE_LISTENING and not run.task.done()]
        for run in dropped:
            run.dropped = True
            run.task.cancel()
        return dropped

    def back(self, chat: Hashable) -> None:
        """The bot is in `chat` again (added back): its commands are answered."""
        self._gone.discard(chat)
