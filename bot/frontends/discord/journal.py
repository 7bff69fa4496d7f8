"""JournalCog: the daily music journal (/journal on|off|list|prompt|delete, /stats), privacy (/export,
/forget) and the DM replies to daily prompts (and their edits, which are told they are not read)."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import re
import weakref
from datetime import datetime

import discord
from discord import app_commands
from discord.ext import commands

from bot.frontends.discord.interactions import (
    NETWORK_ERRORS,
    PLATFORM,
    MessageProgress,
    RequestsInFlight,
    acknowledge,
    apologise,
    caller_of,
    dm_caller_of,
    downloaded,
    fetched,
    is_audio,
    refuses_the_bot,
    refuses_the_user,
    respond,
    sent_by,
    show,
    shown,
    song_attachment,
    too_late,
    whose,
)
from bot.frontends.discord.mood import first_link, links_in, not_journaled
from bot.frontends.discord.rendering import clip, edit_parts, fitted_journal_list
from bot.frontends import render
from bot.logs import begin_request
from bot.replies import Caller, ErrorReply, JournalListReply, TextReply
from bot.sources.query import DEFAULT_ALLOWED, without_markup
from bot.usecases.help import (command_meant, did_you_mean, journal_meant, journal_word_meant, slash_forgotten,
                               unknown_button)
from bot.usecases.journal import (EDITED_ANSWER, NOT_A_JOURNAL_ANSWER, PROMPT_NOT_SENT, PROMPT_NOT_SENT_NOW,
                                  PROMPT_REFUSED_TO_THE_BOT, zone_label)
from bot.usecases.mood import query_left_aside
from bot.usecases.privacy import FORGET_CONFIRM_S, FORGET_EXPIRED, NOTHING_TO_FORGET

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_S = FORGET_CONFIRM_S
# Discord sends a message longer than its limit (2 000 characters, 4 000 with Nitro) as a text file
# of this name, with no text: a long journal answer in the DM is read as the message it was, up to
# LONG_MESSAGE_MAX_BYTES (eight of Telegram's longest messages); longer, it is refused so.
LONG_MESSAGE_FILE = "message.txt"
LONG_MESSAGE_MAX_BYTES = 32 * 1024
LONG_MESSAGE_TOO_LONG = ("Discord sent your message as a file, message.txt, longer than the {kb} KB I read as a "
                         "journal answer, so nothing was saved. Send the song on the first line and fewer words "
                         "after it.")
# The page buttons under /journal list go away after this long without a press (within the 15 min
# an interaction token lasts, counted from the last press).
PAGES_TIMEOUT_S = 600.0
OLDER_BUTTON, NEWER_BUTTON = "◀ Older", "Newer ▶"
OLDER, NEWER = "older", "newer"
# A page button carries what a press needs, as Telegram's callback data does: whose journal, which
# way, and from which entry (100 characters at most, Discord's limit). So a press turns the page
# from the button pressed, even on buttons shown before a restart (`JournalCog.on_interaction`).
PAGE_BUTTON_ID = "journal:{user}:{direction}:{cursor}"
PAGE_BUTTON = re.compile(rf"journal:(?P<user>\d{{1,20}}):(?P<direction>{OLDER}|{NEWER}):(?P<cursor>[0-9a-f]{{24}})")
# What a press carries that the bot cannot answer without the view that showed it: the page buttons
# of versions before PAGE_BUTTON_ID's (no owner, no entry), and /forget's confirmation, whose view
# knows the question (a stale "Yes" erases nothing).
OLD_PAGE_BUTTON = re.compile(rf"journal:({OLDER}|{NEWER})")
FORGET_BUTTON = re.compile(r"forget:(yes|no)")
FORGET_YES = "forget:yes"
PAGES_EXPIRED = "These page buttons have expired: type /journal list to see your journal again."
FORGET_CANCELLED = "Nothing was deleted."
# A "Yes" handed over again after a hard kill (kept.py) that finds nothing left: the killed run deleted it.
FORGET_DONE_BEFORE = "Done: I deleted everything about you."
FORGET_TIMED_OUT = "Nothing was deleted — run /forget again if you still want to."
NOT_YOUR_BUTTON = "This button belongs to someone else."
UNKNOWN_COMMAND = "I don't know that command. Type / and pick one of mine from Discord's list, or see /help."
# One of the bot's commands sent as text (pasted from /help's example, or sent before Discord's list
# picked it): Discord runs a command only when it is picked from its list.
TYPED_COMMAND_HINT = ("Discord runs a command picked from its list, not one sent as text: type /{name}, pick it "
                      "when Discord offers it, then fill in its options.")
# ... and one Discord offers in servers only (never in this DM).
TYPED_SERVER_COMMAND_HINT = ("/{name} works in a server, and Discord runs it when picked from its list: type /{name} "
                             "in one of the server's channels and pick it when Discord offers it.")
# '/start', every Telegram bot's first command, sent by a user used to them: no mistyped /stats.
NOT_MISTYPED = frozenset({"start"})
# What Discord sends as a plain DM when a typed '/name' is not picked from the bot's commands.
TYPED_COMMAND = re.compile(r"/([\w-]+)(?:\s|$)")
# The DMs of this run that answered, or tried to answer, a daily prompt (`JournalCog.on_raw_message_edit`):
# as many as are remembered, the oldest forgotten first.
ANSWERS_REMEMBERED = 10_000
# /journal on in a server: prompts come by DM, so a first DM checks that one can reach the user.
DM_WELCOME = "Your moodbot journal is on: your daily prompts will arrive here. Answer each with a song."
DMS_CLOSED = ("But I couldn't send you a direct message, and the prompts come by DM: allow direct messages "
              "from this server's members (Privacy Settings), then try /journal prompt.")
# ... and one whose welcome DM failed for a passing reason (an outage, a lost connection): the
# journal is on, and its prompts will try the DM again; only the welcome, which says where they
# come, is missing.
DM_WELCOME_NOT_SENT = ("My welcome DM didn't go through just now (Discord or the connection failed for a moment); "
                       "your prompts will still come by direct message, with nothing to change in your settings.")
# ... and one whose welcome DM Discord refused to the bot, not for the user's doing (a 403 for its
# own missing access, its unverified account, or with no code): no passing failure, and nothing the
# user can switch; the journal is on all the same, and its prompts will try the DM.
DM_WELCOME_REFUSED_TO_THE_BOT = (
    "My welcome DM couldn't be sent: Discord refused it to me (the bot's access or account verification), "
    "not because of your settings. Your journal is on, and your prompts will be tried by direct message.")
# /journal prompt whose DM Discord refused (403, 50007): the use case's PROMPT_NOT_SENT says it as on Telegram
# ("Open a private chat with me"); on Discord, DMs from a server's members are allowed per server.
PROMPT_NOT_SENT_BY_DM = ("I couldn't send you the prompt by direct message: allow direct messages from the "
                         "members of a server we share (that server's Privacy Settings), then try /journal prompt again.")
# ... and whose DM failed for a passing reason (Discord's outage, a lost connection): the user's
# settings are fine, and Privacy Settings would send them looking for a switch already on.
PROMPT_NOT_SENT_NOW_BY_DM = ("I couldn't send you the prompt by direct message just now (Discord or the connection "
                             "failed for a moment): try /journal prompt again in a few minutes.")
# ... and whose DM Discord refused to the bot, as DM_WELCOME_REFUSED_TO_THE_BOT says.
PROMPT_REFUSED_TO_THE_BOT_BY_DM = (
    "I couldn't send you the prompt by direct message: Discord refused it to me (the bot's access or account "
    "verification), not because of your settings. Your journal is on, and your prompts will be tried by "
    "direct message.")
# The use case's words for an undelivered /journal prompt, in Discord's terms.
PROMPT_NOT_SENT_ON_DISCORD = {PROMPT_NOT_SENT: PROMPT_NOT_SENT_BY_DM, PROMPT_NOT_SENT_NOW: PROMPT_NOT_SENT_NOW_BY_DM,
                              PROMPT_REFUSED_TO_THE_BOT: PROMPT_REFUSED_TO_THE_BOT_BY_DM}


# A day or a month the journal's replies give to list from ('/journal list 2026-11-10', '/journal list
# December 2025', as Telegram and the console take them): on Discord, its date option. Discord puts the
# words typed after '/journal list' in its first option, page, a whole number, and refuses a date there.
LIST_FROM = re.compile(r"/journal list (?=\d{4}-\d|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b)",
                       re.IGNORECASE)
LIST_FROM_DATE = "/journal list date:"


def listed_by_date(reply: object) -> object:
    """`reply`, its days and months to list from (LIST_FROM) named in /journal list's date option."""
    if isinstance(reply, ErrorReply):
        return dataclasses.replace(reply, message=LIST_FROM.sub(LIST_FROM_DATE, reply.message))
    if isinstance(reply, TextReply):
        return dataclasses.replace(reply, text=LIST_FROM.sub(LIST_FROM_DATE, reply.text))
    return reply


def mood_asked_of_a_file(message: discord.Message) -> bool:
    """'/mood' sent to the DM with a file (or '/mood <words>'): the file's mood asked, as of one
    attached to /mood, not a command typed alone (`typed_command_hint`) nor an answer to a prompt."""
    typed = TYPED_COMMAND.match(message.content)
    return typed is not None and typed.group(1).lower() == "mood" and bool(message.attachments)


def dm_refused(message: discord.Message, error: discord.HTTPException) -> None:
    """One INFO line (the DM's req=) for Discord refusing the bot's answer to `message` (403 50007,
    404 10013, `refuses_the_user`): the user blocked the bot or closed their DMs meanwhile."""
    log.info("discord.dm_refused", extra={**whose(message.author), "reason": f"{error.status} {error.code} {error.text}"})


def typed_command_hint(name: str, *, in_servers_only: bool = False) -> str:
    """How to run the bot's command `name`, which was sent to its DM as text."""
    return (TYPED_SERVER_COMMAND_HINT if in_servers_only else TYPED_COMMAND_HINT).format(name=name)


class LiveMessages:
    """The bot's messages whose buttons a view of this process holds (`ConfirmForget`, `JournalPages`).
    A press on the buttons of any other (shown before a restart, or left after their view ended)
    reaches no view: discord.py drops it, and Discord would tell the user "This interaction failed"."""

    def __init__(self) -> None:
        self._views: dict[int, discord.ui.View] = {}

    def add(self, message_id: int, view: discord.ui.View) -> None:
        self._views[message_id] = view

    def discard(self, view: discord.ui.View) -> None:
        for message_id in [m for m, v in self._views.items() if v is view]:
            del self._views[message_id]

    def get(self, message_id: int) -> discord.ui.View | None:
        return self._views.get(message_id)

    def __contains__(self, message_id: int) -> bool:
        return message_id in self._views

    def holds(self, message_id: int, custom_id: str) -> bool:
        """Whether a view of this process answers a press of `custom_id` on `message_id`."""
        view = self._views.get(message_id)
        return view is not None and any(getattr(item, "custom_id", None) == custom_id for item in view.children)


class ConfirmForget(discord.ui.View):
    """Yes/No buttons under /forget's explanation; only the user who asked may press them. Unanswered,
    they go away after `CONFIRM_TIMEOUT_S`: `question` is the /forget interaction that showed them.

    The first press answers. The view listens on until its timeout, so that a second press (a
    double click, or "No" then "Yes", both sent before Discord's client shows the answer without
    the buttons) is acknowledged and changes nothing: the answer of the first, shown or on its
    way, stays. Ended at the first press, it let the second fail ("This interaction failed"), or
    be told the confirmation had expired, right under "Done" or "Nothing was deleted"."""

    def __init__(self, usecases, caller: Caller, question: discord.Interaction, live: LiveMessages) -> None:
        super().__init__(timeout=CONFIRM_TIMEOUT_S)
        self.usecases = usecases
        self.caller = caller
        self.question = question
        self.answered = False  # by the first press: a later one is acknowledged, and does nothing
        # Its message stays live while the view listens: a press then is not taken for a press on
        # an expired confirmation.
        self.live = live

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if str(interaction.user.id) != self.caller.user_id:
            await interaction.response.send_message(NOT_YOUR_BUTTON, ephemeral=True)
            return False
        if self.answered:
            await acknowledge(interaction)  # the message shows the first press's answer
            return False
        bot = interaction.client
        if getattr(bot, "stopping", False):  # the bot's stop has cut short what was at work: not started
            await apologise(interaction, render.RESTARTING)
            return False
        self.answered = True
        if hasattr(bot, "serve"):  # a stop lets the deletions finish, and their answer be shown
            bot.serve(functools.partial(apologise, interaction, render.RESTARTING))
        if hasattr(bot, "keep_press") and (interaction.data or {}).get("custom_id") == FORGET_YES:
            bot.keep_press(interaction, unnamed=True)  # a hard kill's restart finishes the deletions
        return True

    @discord.ui.button(label="Yes, delete everything", style=discord.ButtonStyle.danger,
                       custom_id=FORGET_YES)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await forget_confirmed(self.usecases, self.caller, interaction)

    @discord.ui.button(label="No, keep it", style=discord.ButtonStyle.secondary, custom_id="forget:no")
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content=FORGET_CANCELLED, view=None)

    async def on_timeout(self) -> None:
        if not self.answered:
            with contextlib.suppress(discord.HTTPException):  # e.g. the user dismissed the message
                await self.question.edit_original_response(content=FORGET_TIMED_OUT, view=None)
        self.live.discard(self)

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item) -> None:
        """A press that failed ends the confirmation: pressed again, it asks for /forget again. One
        Discord refused as past its 3 s (`too_late`) deleted nothing, and nothing can answer it."""
        self.stop()
        self.live.discard(self)
        if too_late(interaction, error):
            return
        log.error("discord command failed", exc_info=error, extra=whose(interaction.user, interaction.guild_id))
        with contextlib.suppress(discord.HTTPException):
            if interaction.response.is_done():
                await interaction.edit_original_response(content=render.GENERIC_ERROR, view=None)
            else:
                await interaction.response.edit_message(content=render.GENERIC_ERROR, view=None)


async def forget_confirmed(usecases, caller: Caller, interaction: discord.Interaction, *,
                           replayed: bool = False) -> None:
    """/forget's "Yes" pressed by its asker: everything deleted, and said in the question's message.
    `replayed`: handed over again after a hard kill, whose run may have deleted it all already
    (FORGET_DONE_BEFORE, not "nothing to delete")."""
    await acknowledge(interaction)  # deleting can take longer than Discord's 3 s
    reply = await usecases.privacy.forget(caller, confirmed=True)
    text = render.reply_text(reply)
    await interaction.edit_original_response(
        content=FORGET_DONE_BEFORE if replayed and text == NOTHING_TO_FORGET else clip(text), view=None)


class JournalPages(discord.ui.View):
    """◀ Older / Newer ▶ under /journal list: a press shows the next page in the same (private)
    message. They page from the entries shown, not by number, so new entries move nothing.

    A press is answered by `JournalCog.on_interaction` (`turn`), from what the button carries:
    the same, whether this view still listens or a restart ended it. The view holds the message's
    buttons (no callback of their own) and takes them away once unused for PAGES_TIMEOUT_S."""

    def __init__(self, usecases, caller: Caller, latest: discord.Interaction, live: LiveMessages) -> None:
        super().__init__(timeout=PAGES_TIMEOUT_S)
        self.usecases = usecases
        self.caller = caller
        # The latest interaction on the message: each press keeps the buttons PAGES_TIMEOUT_S more,
        # so they may outlive /journal list's token (15 minutes), never the last press's.
        self.latest = latest
        self.live = live
        self.older = discord.ui.Button(label=OLDER_BUTTON, style=discord.ButtonStyle.secondary)
        self.newer = discord.ui.Button(label=NEWER_BUTTON, style=discord.ButtonStyle.secondary)
        self.add_item(self.older).add_item(self.newer)

    def _enable(self, shown: JournalListReply) -> None:
        """Each button names the entry its page starts after (PAGE_BUTTON_ID)."""
        user = self.caller.user_id
        self.older.custom_id = PAGE_BUTTON_ID.format(user=user, direction=OLDER, cursor=shown.entries[-1].cursor)
        self.newer.custom_id = PAGE_BUTTON_ID.format(user=user, direction=NEWER, cursor=shown.entries[0].cursor)
        self.older.disabled = not shown.has_older
        self.newer.disabled = not shown.has_newer

    async def turn(self, interaction: discord.Interaction, direction: str, cursor: str) -> None:
        """The page `direction` of the entry `cursor` names, in the message whose button was pressed."""
        # Acknowledged first: Discord allows 3 s, and a slow or failing database takes longer.
        await acknowledge(interaction)
        side = "before" if direction == OLDER else "after"
        await self.show(interaction, await self.usecases.journal.list(self.caller, **{side: cursor}))

    async def show(self, interaction: discord.Interaction, reply: object) -> None:
        """The page, with the buttons while there is another page; or why there is none (e.g. the
        entries were deleted meanwhile), without them."""
        self.latest = interaction
        if not isinstance(reply, JournalListReply):
            self.end()
            await interaction.edit_original_response(**edit_parts(reply), view=None)
            return
        text, shown = fitted_journal_list(reply)
        if not (shown.has_older or shown.has_newer):
            self.end()
            await interaction.edit_original_response(content=text, view=None)
            return
        self._enable(shown)
        message = await interaction.edit_original_response(content=text, view=self)
        self.live.add(message.id, self)

    def end(self) -> None:
        self.stop()
        self.live.discard(self)

    async def on_timeout(self) -> None:
        with contextlib.suppress(discord.HTTPException):  # e.g. the user dismissed the message
            await self.latest.edit_original_response(view=None)
        self.live.discard(self)


class JournalCog(commands.Cog):
    journal = app_commands.Group(name="journal", description="Your daily music journal")

    def __init__(self, bot: commands.Bot, usecases, max_audio_bytes: int,
                 allowed_hosts: frozenset[str] = DEFAULT_ALLOWED, *, in_flight: RequestsInFlight,
                 max_audio_seconds: float) -> None:
        self.bot = bot
        self.usecases = usecases
        self.max_audio_bytes = max_audio_bytes
        self.max_audio_seconds = max_audio_seconds  # MAX_AUDIO_DURATION_S: a longer voice message is not downloaded
        self.allowed_hosts = allowed_hosts  # a forwarded card's links: the first the bot reads is the song
        self.in_flight = in_flight  # the bot's requests to Discord in flight: progress edits settle by it
        self.live = LiveMessages()  # the messages whose buttons a view answers (JournalPages, ConfirmForget)
        # A user's DMs answered one after another, in the order they came (`_on_dm`).
        self._answering: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        # The DMs this run took for answers to a prompt, saved or not, each with its edit last told
        # EDITED_ANSWER (its edited_timestamp; None: none yet).
        self._answers: dict[int, datetime | None] = {}

    @journal.command(name="on", description="Get a daily prompt by DM at a time of your choice")
    @app_commands.describe(time="Local time of the prompt, 24 h, e.g. 21:30 (left out: your saved time)",
                           timezone="Your time zone, e.g. Europe/Lisbon (left out: your saved zone)")
    async def journal_on(self, interaction: discord.Interaction, time: str | None = None,
                         timezone: str | None = None) -> None:
        await acknowledge(interaction, ephemeral=True, thinking=True)  # before the database
        if not (timezone or "").strip() and len((time or "").split()) > 1:
            # '/journal on 21:30 Europe/Lisbon' typed as the replies write it: Discord puts it all
            # in the first option. Read as the console reads the same words, time then zone.
            time, timezone = time.split(None, 1)
        reply = await self.usecases.journal.enable(caller_of(interaction), time, timezone)
        if isinstance(reply, TextReply) and interaction.guild is not None:
            try:
                await interaction.user.send(DM_WELCOME)
            except (discord.HTTPException, *NETWORK_ERRORS) as error:
                if refuses_the_user(error):  # as /journal prompt judges it: DMs closed to this server
                    log.info("discord.dm_closed", extra={"user": interaction.user.id, "status": error.status,
                                                         "code": error.code})
                    reply = TextReply(f"{reply.text}\n{DMS_CLOSED}")
                else:
                    # Another 403 (the bot's own access), an outage or a lost connection tells nothing
                    # of the user's DMs, and the journal is on all the same: its answer stands (the
                    # daily prompt will try the DM again). Only an outage is "for a moment".
                    log.warning("discord.dm_welcome_not_sent",
                                extra={**whose(interaction.user, interaction.guild_id), "reason": repr(error)})
                    note = DM_WELCOME_REFUSED_TO_THE_BOT if refuses_the_bot(error) else DM_WELCOME_NOT_SENT
                    reply = TextReply(f"{reply.text}\n{note}")
        await show(interaction, reply)

    @journal_on.autocomplete("timezone")
    async def timezone_choices(self, interaction: discord.Interaction, current: str
                               ) -> list[app_commands.Choice[str]]:
        # Shown as zone_label shows it: "UTC+2" suggests UTC+02:00, not Etc/GMT-2 (POSIX signs).
        return [app_commands.Choice(name=zone_label(name), value=name)
                for name in self.usecases.journal.timezones(current)]

    @journal.command(name="off", description="Stop the daily prompts")
    async def journal_off(self, interaction: discord.Interaction) -> None:
        await acknowledge(interaction, ephemeral=True, thinking=True)
        await show(interaction, await self.usecases.journal.disable(caller_of(interaction)))

    @journal.command(name="list", description="Your latest journal entries, or older ones by page, day or month")
    @app_commands.describe(page="1 is your latest entries, 2 the ones before them, and so on",
                           date="A day or a month to list from, back: 2026-12-05, Dec 5, December, last week")
    async def journal_list(self, interaction: discord.Interaction, page: app_commands.Range[int, 1] = 1,
                           date: str | None = None) -> None:
        await acknowledge(interaction, ephemeral=True, thinking=True)
        caller = caller_of(interaction)
        # A day or a month, when given, takes the page's place: the list starts from its end, back.
        reply = await self.usecases.journal.list(caller, page=date if date and date.strip() else page)
        if not isinstance(reply, JournalListReply):
            await show(interaction, listed_by_date(reply))
            return
        await JournalPages(self.usecases, caller, interaction, self.live).show(interaction, reply)

    @journal.command(name="delete", description="Delete one journal entry: your newest, or a day's")
    @app_commands.describe(date="last (your newest entry), or the entry's day: 2026-12-05, Dec 5, 5 December 2026, yesterday",
                           number="Which of that day's entries, when it has several (1 is the newest)")
    async def journal_delete(self, interaction: discord.Interaction, date: str,
                             number: app_commands.Range[int, 1] | None = None) -> None:
        await acknowledge(interaction, ephemeral=True, thinking=True)  # before the database
        # Its id: the same command handed over again after a hard kill (kept.py) deletes nothing more.
        await show(interaction, listed_by_date(await self.usecases.journal.delete(
            caller_of(interaction), date, number, message_id=str(interaction.id))))

    @journal.command(name="prompt", description="Get today's prompt by DM now")
    async def journal_prompt(self, interaction: discord.Interaction) -> None:
        await acknowledge(interaction, ephemeral=True, thinking=True)  # the DM is sent first
        reply = await self.usecases.journal.prompt_now(caller_of(interaction))
        if isinstance(reply, ErrorReply) and reply.message in PROMPT_NOT_SENT_ON_DISCORD:
            reply = ErrorReply(PROMPT_NOT_SENT_ON_DISCORD[reply.message])
        await show(interaction, reply)

    @app_commands.command(name="stats",
                          description="Charts of your journal: moods by week, a year in pixels, your songs on the mood map")
    async def stats(self, interaction: discord.Interaction) -> None:
        await acknowledge(interaction, ephemeral=True, thinking=True)  # charts take a moment
        await show(interaction, await self.usecases.journal.stats(caller_of(interaction)))

    @app_commands.command(name="export", description="Download everything moodbot keeps about you")
    async def export(self, interaction: discord.Interaction) -> None:
        await acknowledge(interaction, ephemeral=True, thinking=True)
        await show(interaction, await self.usecases.privacy.export(caller_of(interaction)))

    @app_commands.command(name="forget", description="Delete everything moodbot keeps about you")
    async def forget(self, interaction: discord.Interaction) -> None:
        caller = caller_of(interaction)
        explanation = await self.usecases.privacy.forget(caller, confirmed=False)
        confirmation = ConfirmForget(self.usecases, caller, interaction, self.live)
        sent = await respond(interaction, content=clip(render.reply_text(explanation)), view=confirmation,
                             ephemeral=True)
        if sent is not None:
            self.live.add(sent, confirmation)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A press on page buttons (`JournalPages`, whether their view still listens or not), or on
        other buttons of the bot's that no view holds any more (`LiveMessages`): the user is asked
        to type the command again (a stale "Yes" erases nothing)."""
        message = interaction.message
        if interaction.type is not discord.InteractionType.component or message is None:
            return
        begin_request(f"dc-{interaction.id}")
        custom_id = str((interaction.data or {}).get("custom_id", ""))
        try:
            if pressed := PAGE_BUTTON.fullmatch(custom_id):
                await self._turn_page(interaction, message, pressed)
            elif self.live.holds(message.id, custom_id):
                return  # its view answers
            elif custom_id == FORGET_YES and getattr(self.bot, "press_replayed", lambda _: False)(interaction):
                await self._forget_replayed(interaction)
            elif OLD_PAGE_BUTTON.fullmatch(custom_id):
                await interaction.response.send_message(PAGES_EXPIRED, ephemeral=True)
            elif FORGET_BUTTON.fullmatch(custom_id):
                await interaction.response.send_message(FORGET_EXPIRED, ephemeral=True)
            else:  # an earlier version's button, crafted data: else "This interaction failed"
                # The custom_id: 100 characters at most (Discord's limit), what names the button.
                log.info("discord.unknown_button", extra={"data": custom_id, **whose(interaction.user, interaction.guild_id)})
                commands = [c.name for c in self.bot.tree.get_commands(type=discord.AppCommandType.chat_input)]
                await interaction.response.send_message(unknown_button(custom_id, commands), ephemeral=True)
        except Exception as error:
            if too_late(interaction, error):
                return
            log.exception("discord command failed", extra=whose(interaction.user, interaction.guild_id))
            with contextlib.suppress(discord.HTTPException):
                if interaction.response.is_done():
                    await interaction.followup.send(render.GENERIC_ERROR, ephemeral=True)
                else:
                    await interaction.response.send_message(render.GENERIC_ERROR, ephemeral=True)

    async def _forget_replayed(self, interaction: discord.Interaction) -> None:
        """A "Yes" the run killed outright had taken on (its asker's, within the confirmation's
        time), handed over again (kept.py): the deletions it began are finished, and said done in
        the question's message, as its view would have. Its deferral stands (Discord refuses the
        second, 40060); one the killed run never made is past Discord's 3 s (10062): nothing is
        deleted, as nothing could say so."""
        self.bot.keep_press(interaction, unnamed=True)  # cleared from the inbox once this task ends
        self.bot.serve(functools.partial(apologise, interaction, render.RESTARTING))
        await forget_confirmed(self.usecases, caller_of(interaction), interaction, replayed=True)

    async def _turn_page(self, interaction: discord.Interaction, message: discord.Message,
                         pressed: re.Match[str]) -> None:
        """Pressed by the journal's owner, on a private message (a journal is never shown where
        others could see it): the page turns, in the view that shows the message's buttons; a new
        one if theirs has ended (a restart). Kept until turned, for a restart after a hard kill."""
        if pressed["user"] != str(interaction.user.id) or not message.flags.ephemeral:
            await interaction.response.send_message(NOT_YOUR_BUTTON, ephemeral=True)
            return
        if hasattr(self.bot, "keep_press"):
            self.bot.keep_press(interaction)
        pages = self.live.get(message.id)
        if not isinstance(pages, JournalPages) or pages.is_finished():
            pages = JournalPages(self.usecases, caller_of(interaction), interaction, self.live)
            self.live.add(message.id, pages)  # a second press meanwhile turns the page in this one
        await pages.turn(interaction, pressed["direction"], pressed["cursor"])

    @commands.Cog.listener()
    async def on_app_command_completion(self, interaction: discord.Interaction, command) -> None:
        """After any command's answer, privately: why the prompts stopped, to a user back."""
        notice = await self.usecases.journal.pause_notice(caller_of(interaction))
        if notice is None:
            return
        with contextlib.suppress(discord.HTTPException):
            if interaction.response.is_done():
                await interaction.followup.send(clip(notice), ephemeral=True)
            else:
                await interaction.response.send_message(clip(notice), ephemeral=True)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A DM answering a daily prompt (a reply to it, or simply the next DM) becomes an entry.
        Not a system message Discord posts in the DM for the user ("… pinned a message"): no answer.
        Then, once, why the prompts stopped, to a user back after they could not be reached."""
        if message.author.bot or message.guild is not None or message.is_system():
            return
        begin_request(f"dc-{message.id}")
        if hasattr(self.bot, "answering_dm"):
            self.bot.answering_dm(message)  # kept until this task ends (bot/frontends/discord/kept.py)
        await self._on_dm(message)
        if (notice := await self.usecases.journal.pause_notice(dm_caller_of(message))) is not None:
            with contextlib.suppress(discord.HTTPException):
                await message.channel.send(clip(notice))

    async def _on_dm(self, message: discord.Message) -> None:
        if (typed := TYPED_COMMAND.match(message.content)) and not mood_asked_of_a_file(message):
            # A command, not a song answering the prompt ('/mood' with a file asks its mood: `_mood_of_file`).
            # After the user's DMs before it (`_turn`): its hint sent before their answers was
            # taken, read back after a restart, for the bot's reply to them (bot/frontends/discord/missed.py).
            async with self._turn(message.author.id):
                try:
                    await message.channel.send(self._typed_command_answer(typed.group(1), message.content[typed.end():]))
                except discord.HTTPException as error:
                    if not refuses_the_user(error):
                        raise
                    dm_refused(message, error)  # blocked or DMs closed right after: no traceback
            return
        kept = getattr(self.bot, "kept", None)  # the DM kept until answered (bot/frontends/discord/kept.py)
        progress = MessageProgress(message.channel, self.in_flight, on_sent=None if kept is None else (
            lambda sent: kept.shown(message.id, sent.channel.id, sent.id)))
        before = None if kept is None else kept.shown_before(message.id)
        if before is not None and before[0] == str(message.channel.id):  # the killed run's status: the answer goes in it
            progress.take_over(int(before[1]))
        missed = getattr(self.bot, "missed", None)  # read back after a restart (bot/frontends/discord/missed.py)
        read_back = None if missed is None else missed.read_back(message.id)
        if read_back is not None and read_back.status is not None and before is None:  # as a kept DM's
            progress.take_over(read_back.status)
        cut_short = functools.partial(progress.show, ErrorReply(render.RESTARTING))
        if self.bot.stopping:  # the stop has cut short what was at work: this is not started
            with contextlib.suppress(discord.HTTPException, *NETWORK_ERRORS):
                await cut_short()
            return
        self.bot.serve(cut_short)
        caller = self.usecases.privacy.arrived(dm_caller_of(message))  # before its turn: a /forget meanwhile beats it
        try:
            async with self._turn(message.author.id):
                await self._answer_dm(message, caller, progress, None if read_back is None else read_back.prompt)
        except Exception as error:
            if refuses_the_user(error):
                # They blocked the bot, closed their DMs or left the last server shared, meanwhile:
                # Discord refuses every message to them, an apology too, and nothing failed here.
                dm_refused(message, error)
                return
            log.exception("discord command failed", extra=whose(message.author))
            with contextlib.suppress(discord.HTTPException):
                await progress.show(ErrorReply(render.GENERIC_ERROR))

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """A user's DM that answered, or tried to answer, a daily prompt, edited (a misspelled song
        corrected): the edit answers nothing, its answer saved or refused as first sent, and the
        user is told so (EDITED_ANSWER), as on Telegram; any other DM's edit is let be. Raw:
        discord.py's on_message_edit comes only for a message in its cache, which holds none of
        before a restart. An update with no new edit (a link's preview Discord adds) is no edit.
        Servers' messages are not subscribed to (`bot_intents`): none comes."""
        message = payload.message
        if (payload.guild_id is not None or message.author.bot or message.is_system()
                or message.edited_at is None or self._answers.get(message.id) == message.edited_at):
            return
        async with self._turn(message.author.id):  # after the DM's own answer, where it is still at work
            if not await self._answered_a_prompt(message):
                return
            if self._answers.get(message.id) == message.edited_at:  # an update that came meanwhile
                return
            self._remember_answer(message.id, message.edited_at)
            try:
                await message.channel.send(EDITED_ANSWER, reference=message.to_reference(fail_if_not_exists=False))
            except (discord.HTTPException, *NETWORK_ERRORS) as error:
                log.info("discord.edit_not_told", extra={**whose(message.author), "reason": repr(error)})

    async def _answered_a_prompt(self, message: discord.Message) -> bool:
        """Whether the DM answered, or tried to answer, a prompt: one this run took for an answer
        (`_answer_dm`), a reply to a prompt, or one whose entry was saved (before a restart)."""
        if message.id in self._answers:
            return True
        caller = dm_caller_of(message)
        reference = None if message.reference is None else message.reference.message_id
        if reference is not None and await self.usecases.journal.is_prompt_message(
                PLATFORM, caller.chat_id, str(reference)):
            return True
        return await self.usecases.journal.saved_from(caller, str(message.id))

    def _remember_answer(self, message_id: int, edited_at: datetime | None = None) -> None:
        self._answers.pop(message_id, None)
        self._answers[message_id] = edited_at
        while len(self._answers) > ANSWERS_REMEMBERED:
            del self._answers[next(iter(self._answers))]

    def _typed_command_answer(self, typed: str, rest: str = "") -> str:
        """What to say of '/name' sent to the DM as text: how to run the bot's command `typed` (with
        its sub-command, where `rest` opens with one: Discord lists '/journal list' as such); of one
        it does not have, the command most likely meant (as the console and Telegram name it,
        `did_you_mean`: '/charts' is /stats) and how to run that, else that it is unknown."""
        commands = {c.name: c for c in self.bot.tree.get_commands(type=discord.AppCommandType.chat_input)}
        command = commands.get(typed.lower())
        if command is not None:
            word = (rest.split() or [""])[0].lower()
            sub = command.get_command(word) if isinstance(command, app_commands.Group) and word else None
            if sub is None and word and command.name == "journal":  # '/journal stop': /journal off meant
                subs = [c.name for c in command.commands]
                if (meant := journal_meant(rest, subs)) is not None:
                    named = " ".join(meant.split()[:2])  # Discord's list names the command, not its words
                    return f"{journal_word_meant(rest, subs)} {typed_command_hint(named)}"
            name = command.name if sub is None else f"{command.name} {sub.name}"
            return typed_command_hint(name, in_servers_only=command.guild_only)
        name, joined, words = typed.lower().partition("_")  # '/journal_list', as Telegram names commands
        if joined and words.strip("_") and name in commands:
            meant, rest = name, words.replace("_", " ")
        elif typed.lower() in NOT_MISTYPED or (meant := command_meant(typed, commands)) is None:
            return UNKNOWN_COMMAND
        else:  # as did_you_mean names it: the command alone, or with its sub-command ('/history': journal list)
            meant, _, rest = meant.partition(" ")
        return f"{did_you_mean(typed, commands)} {self._typed_command_answer(meant, rest)}"

    def _turn(self, user_id: int) -> asyncio.Lock:
        """One user's DMs one after another, in the order they came (a typed command's hint too):
        those read back together after a restart (bot/frontends/discord/missed.py), or sent in a
        burst, were answered at once, and the first to be heard (a link before a file still
        downloading) took the prompt, the one sent first told it had its song. Taken with no wait
        before it since the DM came, so in the order discord.py dispatched them."""
        turn = self._answering.get(user_id)
        if turn is None:
            turn = self._answering[user_id] = asyncio.Lock()
        return turn

    async def _answer_dm(self, message: discord.Message, caller: Caller, progress: MessageProgress,
                         followed: int | None) -> None:
        """`followed`: the prompt a DM read back after a restart came after (bot/frontends/discord/missed.py)."""
        if mood_asked_of_a_file(message):  # its mood asked, as of a file attached to /mood: no answer to a prompt
            await self._mood_of_file(message, caller, progress)
            return
        prompt_id = None
        for referenced in (None if message.reference is None else message.reference.message_id, followed):
            if referenced is not None and await self.usecases.journal.is_prompt_message(
                    PLATFORM, caller.chat_id, str(referenced)):
                prompt_id = str(referenced)
                break
        song = shown(message)  # a song forwarded into the DM answers as if sent
        file = song_attachment(song)
        # Nothing typed nor attached: a card forwarded from a music bot ("Now playing"), its song a
        # link in its embed, which the message command reads too (`links_in`).
        query = song.content or (None if file else first_link(song, self.allowed_hosts)
                                 or next(iter(links_in(song)), None))
        asker = whose(message.author)
        # Its download too: "/journal delete last" meanwhile would take the entry before this one.
        with self.usecases.journal.answering(caller):
            typed = await long_message_text(file, asker) if is_long_message(song, file) else None
            if typed is not None and not isinstance(typed, ErrorReply):
                query, file = typed, None  # the message Discord made a file of, as if typed
            async with downloaded(file, self.max_audio_bytes, asker, sent_by(song), longest_s=self.max_audio_seconds,
                                  uploads=self.usecases.uploads) as attachment:
                if isinstance(typed, ErrorReply) or isinstance(attachment, ErrorReply):
                    reply = typed if isinstance(typed, ErrorReply) else attachment
                else:
                    reply = await self.usecases.journal.answer(caller, query, attachment,
                                                               prompt_message_id=prompt_id,
                                                               message_id=str(message.id), progress=progress)
        if not (isinstance(reply, ErrorReply) and reply.message.endswith(NOT_A_JOURNAL_ANSWER)):
            self._remember_answer(message.id)  # an answer, saved or refused: its edit is told (`on_raw_message_edit`)
        elif file is None:
            reply = ErrorReply(self._slash_forgotten(query or "") or reply.message)
        await progress.show(reply)

    async def _mood_of_file(self, message: discord.Message, caller: Caller, progress: MessageProgress) -> None:
        """The mood of the DM's audio file (else its first file: refused, as /mood refuses a picture),
        as /mood with it attached tells it: words typed after '/mood' are left aside, and said so."""
        file = next((a for a in message.attachments if is_audio(a)), message.attachments[0])
        typed = message.content[TYPED_COMMAND.match(message.content).end():]
        note = query_left_aside(without_markup(typed), file.filename, file.title or "")
        async with downloaded(file, self.max_audio_bytes, whose(message.author), sent_by(message),
                              longest_s=self.max_audio_seconds, uploads=self.usecases.uploads) as attachment:
            reply = attachment if isinstance(attachment, ErrorReply) else await self.usecases.mood.run(
                caller, None, attachment, progress=progress)
        await progress.show(reply, note=await not_journaled(self.usecases, caller, reply, note))

    def _slash_forgotten(self, text: str) -> str | None:
        """What to say of words that answer no prompt and open with a command's name, its slash
        left out ('journal list'): as the console and Telegram say it, with how Discord runs it."""
        commands = [c.name for c in self.bot.tree.get_commands(type=discord.AppCommandType.chat_input)]
        if (forgotten := slash_forgotten(text, commands)) is None:
            return None
        word, rest = (text.split(None, 1) + [""])[:2]
        return f"{forgotten} {self._typed_command_answer(word, rest)}"


def is_long_message(message: discord.Message | discord.MessageSnapshot, file: discord.Attachment | None) -> bool:
    """Whether `file` is the text Discord made of a message too long to send (`LONG_MESSAGE_FILE`):
    the message's only file, with no text beside it."""
    return (file is not None and not message.content and len(message.attachments) == 1
            and file.filename == LONG_MESSAGE_FILE and (file.content_type or "").lower().startswith("text/plain"))


async def long_message_text(file: discord.Attachment, asker: dict[str, str | None]) -> str | ErrorReply:
    """The words of a message Discord sent as `file` (`is_long_message`), or why they can't be read:
    longer than LONG_MESSAGE_MAX_BYTES, or not handed over (`fetched`)."""
    too_long = ErrorReply(LONG_MESSAGE_TOO_LONG.format(kb=LONG_MESSAGE_MAX_BYTES // 1024))
    if file.size > LONG_MESSAGE_MAX_BYTES:
        log.info("discord.long_message_refused", extra={**asker, "bytes": file.size, "limit_bytes": LONG_MESSAGE_MAX_BYTES})
        return too_long
    data = await fetched(file, asker)
    if isinstance(data, ErrorReply):
        return data
    return too_long if len(data) > LONG_MESSAGE_MAX_BYTES else data.decode("utf-8", errors="replace").lstrip("\ufeff")
