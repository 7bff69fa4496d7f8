"""A user whose prompts stopped because the platform refused them for good (Discord's 50007: DMs
closed; Telegram: the bot blocked) is told why, once, at their next command, and how to turn them
on again; the reason is theirs: /export shows it, /forget deletes it."""
from __future__ import annotations

import io
import json
from datetime import datetime, time

from bot.frontends.console import ConsoleFrontend
from bot.replies import Caller
from bot.scheduler import PromptScheduler
from bot.usecases import build_usecases
from bot.usecases.ports import RecipientGone
from storage.models import UNREACHABLE, User, UserRef
from tests.bot.test_console import chat

LOCAL = UserRef("console", "local")
NOTICE_START = "Your daily journal prompts stopped: I couldn't reach you"


class ClosedConsole(ConsoleFrontend):
    async def send_prompt(self, prompt):
        raise RecipientGone("403 50007 Cannot send messages to this user")


async def prompts_stopped_for(db, classifier) -> None:
    """The local user's journal on at 07:15 in New York, and its daily prompt refused for good."""
    await db.users.upsert(User("console", "local", timezone="America/New_York", prompt_time=time(7, 15),
                               journal_enabled=True, chat_id="local"))
    usecases = build_usecases(db, classifier, fetcher=None)
    scheduler = PromptScheduler(db, usecases.journal, pause_s=0)
    usecases.attach_schedule(scheduler)
    scheduler.register(ClosedConsole(usecases=None, stdin=io.StringIO(), stdout=io.StringIO()))
    assert await scheduler.deliver(LOCAL) is None


async def test_prompts_stopped_for_an_unreachable_user_record_why_and_keep_the_time(db, counting):
    await prompts_stopped_for(db, counting)
    user = await db.users.get(LOCAL)
    assert not user.journal_enabled and user.journal_paused == UNREACHABLE
    assert user.journal_paused_at is not None
    assert (f"{user.prompt_time:%H:%M}", user.timezone) == ("07:15", "America/New_York")


async def test_the_user_is_told_once_at_their_next_command_why_the_prompts_stopped(db, counting, tmp_path):
    await prompts_stopped_for(db, counting)
    out = await chat(db, counting, tmp_path, ["/share on", "/help", "/quit"])
    assert out.count(NOTICE_START) == 1, out
    assert "07:15 (America/New_York)" in out and "/journal on." in out
    assert out.index(NOTICE_START) < out.index("/quit – Leave moodbot")  # at the first command, not the second
    assert (await db.users.get(LOCAL)).journal_paused is None
    again = await chat(db, counting, tmp_path, ["/share on", "/quit"])  # a restart: still told only once
    assert NOTICE_START not in again


async def test_journal_on_resumes_the_stopped_prompts_without_the_notice(db, counting, tmp_path):
    await prompts_stopped_for(db, counting)
    out = await chat(db, counting, tmp_path, ["/journal on", "/share on", "/quit"])
    assert "Journal on: every day at 07:15 (America/New_York)" in out and NOTICE_START not in out
    user = await db.users.get(LOCAL)
    assert user.journal_enabled and user.journal_paused is None


async def test_journal_off_by_the_user_records_no_reason(db, counting, tmp_path):
    out = await chat(db, counting, tmp_path, ["/journal on 07:15 UTC", "/journal off", "/share on", "/quit"])
    assert NOTICE_START not in out
    assert (await db.users.get(LOCAL)).journal_paused is None


async def test_export_shows_why_the_prompts_stopped_and_forget_deletes_it(db, counting):
    await prompts_stopped_for(db, counting)
    usecases = build_usecases(db, counting, fetcher=None)
    caller = Caller("console", "local", chat_id="local")
    exported = json.loads((await usecases.privacy.export(caller)).data)
    assert exported["user"]["journal_paused"] == UNREACHABLE
    assert datetime.fromisoformat(exported["user"]["journal_paused_at"]).tzinfo is not None
    await usecases.privacy.forget(caller, confirmed=True)
    assert await db.users.get(LOCAL) is None
    assert await usecases.journal.pause_notice(caller) is None


class ForgottenAfterRead:
    """The database's users, as the use case sees them: the user is read, then /forget runs to
    its end before the use case's next step (the write made from what it read)."""

    def __init__(self, db) -> None:
        self._db, self._users = db, db.users

    async def get(self, ref):
        user = await self._users.get(ref)
        await self._db.privacy.forget(ref)
        return user

    def __getattr__(self, name):
        return getattr(self._users, name)


async def journal_on_then_forgotten_while(db, classifier, stop) -> None:
    """The local user's journal on; `stop` (journal off, or prompts stopped unreachable) reads them,
    /forget deletes everything, then `stop` writes."""
    usecases = build_usecases(db, classifier, fetcher=None)
    caller = Caller("console", "local", chat_id="local")
    await usecases.journal.enable(caller, "07:15", "America/New_York")
    real = db.users
    db.users = ForgottenAfterRead(db)
    try:
        await stop(usecases.journal, caller)
    finally:
        db.users = real


async def test_journal_off_while_forget_runs_brings_no_settings_back(db, counting):
    await journal_on_then_forgotten_while(db, counting, lambda journal, caller: journal.disable(caller))
    assert await db.users.get(LOCAL) is None
    assert (await db.privacy.export(LOCAL)).user is None


async def test_prompts_stopped_while_forget_runs_bring_no_settings_back(db, counting):
    await journal_on_then_forgotten_while(db, counting, lambda journal, caller: journal.stop_unreachable(LOCAL))
    assert await db.users.get(LOCAL) is None
    assert await db.users.paused_users() == []
