"""MoodCog: /mood, the "Mood of this song" message command, and /help."""
from __future__ import annotations

import functools
import logging
import re
from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.frontends.discord.interactions import (
    FollowupProgress,
    InteractionProgress,
    RequestsInFlight,
    SentBy,
    acknowledge,
    answerable_until,
    caller_of,
    downloaded,
    followups_left,
    is_audio,
    jump_url,
    plainly_not_sound,
    seen_by_everyone,
    sent_by,
    show,
    show_followup,
    show_in_channel,
    shown,
    uploaded_by,
    whose,
)
from bot.frontends import render
from bot.frontends.chat_runs import ChatRun
from bot.replies import STAGE_FINDING, Caller, ErrorReply
from bot.sources.models import UnsupportedInputError
from bot.sources.query import (
    DEFAULT_ALLOWED, LINK_CLOSERS, host_allowed, link_in, marked_link, masked_links_read, parse_query, without_markup,
)
from bot.usecases.help import JOURNAL_LIST, MOOD
from bot.usecases.journal import ANSWER_IN_THE_DM
from bot.usecases.mood import MAX_SONGS_AT_ONCE, query_left_aside, song_named_in, told_to_wait

if TYPE_CHECKING:
    from bot.frontends.discord.kept import KeptCommands

log = logging.getLogger(__name__)

# A link, in any case (a phone capitalises one that starts a sentence: "Https://…"), or a Spotify
# URI (spotify:track:…, as Spotify's desktop app copies a song), as /mood reads them; it stops at a
# spoiler's ||, and at <link>'s >. "Spotify:https://…" is a label glued to a link, not a URI.
LINK = re.compile(r"(?:https?://|spotify:[a-z]+:(?!//))[^\s<>|]+", re.IGNORECASE)
NOTHING_TO_CLASSIFY = "Tell me a song: /mood query:<name or link>, or attach an audio file."
# The message command on a message with neither, nor words (a sticker, an embed alone): what to
# type instead. A message of words names the song: they are searched, as Telegram's /mood in reply.
NO_SONG_IN_MESSAGE = ("I found no link, audio file or song name in that message. To hear a song by its name, "
                      "use /mood query:<name>.")
# A link to a file sent on Discord (its "Copy Link"), off the allowed hosts: the file itself is heard.
DISCORD_FILE_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})
DISCORD_FILE_LINK = ("That's a link to a file on Discord, which I can't open: attach the file to /mood instead, "
                     "or use Apps → Mood of this song on the message it was sent in.")
# The message command hears every audio file of a message, one after another, each answered as a
# followup of the one interaction. Discord takes its answers for 15 minutes after it was made
# (`answerable_until`); a file is started only with FILE_TIME left: its download (up to 25 MB from
# Discord's file server) and its listening (the classifier's timeout, 20 s by default), with room.
FILE_TIME = timedelta(minutes=1)
FILES_NOT_HEARD = "The rest of that message's audio files ({count} more) were not heard: attach them to /mood then."
OUT_OF_TIME = ("The rest of that message's audio files ({count} more) were not heard: Discord takes the "
               "answers to this menu for 15 minutes. To hear them, attach them to /mood.")
# Discord takes USER_INSTALL_FOLLOWUPS followups of an interaction through the asker's own install
# alone (the app used where it was never added: a group DM, a server): those files' answers did not fit.
FOLLOWUPS_SPENT = ("The rest of that message's audio files ({count} more) were not heard: Discord lets me send "
                   "only a few answers to one use of this menu where I'm used through your own account. To hear "
                   "them, attach them to /mood.")
MENU_NAME = "Mood of this song"
# /help names the message command too: Discord lists it only in a message's Apps menu.
MOOD_HELP = (MOOD[0], f"{MOOD[1]}; on any message: Apps → {MENU_NAME}")
# ... and /journal list's day or month in its `date` option: typed after '/journal list', Discord puts
# the words in its first option, `page`, and refuses a word there ("December" is no whole number).
JOURNAL_LIST_HELP = ("journal list [page] [date]", "Your latest journal entries; page 2 and on go further back, and a "
                                                   "day or a month in date lists from there: /journal list date:December")


def links_in_text(text: str | None) -> list[str]:
    """The links in `text`, without what people put around them: punctuation, quotes, brackets, and
    Discord's markdown in any nesting (`> _**<link>**_`, `||_*link*_||`), whose "_" and "~" after
    a link are taken off only as many as before it (`marked_link`): a link's own "_" (a YouTube id
    may end in one) stays. A masked link is its target (`masked_links_read`), as /mood reads it."""
    text, found = masked_links_read(text or ""), []
    for match in LINK.finditer(text):
        start, link = marked_link(text, match, LINK_CLOSERS)
        found += [link] if link and read_as_by_mood(text, start, link) else []
    return found


def read_as_by_mood(text: str, start: int, link: str) -> bool:
    """Whether /mood, given the word of `text` that `link` (found at `start`, its marks counted in)
    is in, reads `link` there too (`link_in`), so that the two read one message one way: a link
    that starts its word (after the marks) is; a Spotify URI is only then, or as a masked link's
    target (in "Listen:spotify:…" it is a word's end, searched, and in "evil.example/spotify:…" a
    part of a link to evil.example); an http(s) link glued to a word is, unless the word is itself a
    link to another host ("evil.example/https://youtu.be/…" is a link to evil.example)."""
    word_start = start
    while word_start and not text[word_start - 1].isspace():
        word_start -= 1
    if word_start == start:
        return True
    word_end = start
    while word_end < len(text) and not text[word_end].isspace():
        word_end += 1
    return link_in(text[word_start:word_end]) == link


def links_in(message: discord.Message | discord.MessageSnapshot) -> list[str]:
    """The links in the message text, then in its embeds: a link preview's URL (Discord unfurls
    links there), and the links in an embed's text (a music bot's "Now playing" card)."""
    found = links_in_text(message.content)
    for embed in message.embeds:
        found += [embed.url] if embed.url else []
        found += links_in_text(embed.description)
        for embed_field in embed.fields:
            found += links_in_text(embed_field.value)
    return found


def links_to_a_discord_file(text: str, allowed_hosts: frozenset[str]) -> bool:
    """Whether the first link /mood would read in `text` is to a file on Discord's file server
    (DISCORD_FILE_HOSTS) that the bot may not open (ALLOWED_HOSTS)."""
    link = next(iter(links_in_text(text)), None)
    host = (urlsplit(link).hostname or "").lower() if link else ""
    return host in DISCORD_FILE_HOSTS and not host_allowed(host, allowed_hosts)


def readable(link: str, allowed_hosts: frozenset[str]) -> bool:
    try:
        parse_query(link, allowed_hosts)
    except UnsupportedInputError:
        return False
    return True


def first_link(message: discord.Message | discord.MessageSnapshot,
               allowed_hosts: frozenset[str] = DEFAULT_ALLOWED) -> str | None:
    """The first link in the message that the bot can read (a Spotify track, a YouTube video)."""
    return next((link for link in links_in(message) if readable(link, allowed_hosts)), None)


def with_rest_not_heard(reply: object, left: int) -> object:
    """The answer to one of a message's files. After a refusal to wait (`told_to_wait`) the
    `left` others would be refused too, one message each: that refusal says so once."""
    if not (told_to_wait(reply) and left):
        return reply
    return replace(reply, message=f"{reply.message}\n{FILES_NOT_HEARD.format(count=left)}")


async def not_journaled(usecases, caller: Caller, reply: object, note: str | None) -> str | None:
    """`note` (what was heard of what was asked), and under it, in the DM while today's prompt is
    open, that the song's mood went to no journal and how to save it there (`not_saved_notice`).
    Not with a refusal: no song was heard."""
    notice = None if isinstance(reply, ErrorReply) else await usecases.journal.not_saved_notice(caller, ANSWER_IN_THE_DM)
    return "\n".join(filter(None, (note, notice))) or None


class MoodCog(commands.Cog):
    def __init__(self, bot: commands.Bot, usecases, max_audio_bytes: int,
                 allowed_hosts: frozenset[str] = DEFAULT_ALLOWED, *, in_flight: RequestsInFlight,
                 max_audio_seconds: float) -> None:
        self.bot = bot
        self.usecases = usecases
        self.max_audio_bytes = max_audio_bytes
        self.max_audio_seconds = max_audio_seconds  # MAX_AUDIO_DURATION_S: a longer voice message is not downloaded
        self.allowed_hosts = allowed_hosts
        self.in_flight = in_flight  # the bot's requests to Discord in flight: progress edits settle by it
        # Context menus cannot be declared inside a cog: build it here, add it to the tree.
        self.menu = app_commands.ContextMenu(name=MENU_NAME, callback=self.mood_of_message)
        bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @app_commands.command(name="mood", description="Tell the mood of a song")
    @app_commands.describe(query="Song name, Spotify link or YouTube link", file="An audio file instead")
    async def mood(self, interaction: discord.Interaction, query: str | None = None,
                   file: discord.Attachment | None = None) -> None:
        if not (query or file):
            await show(interaction, ErrorReply(NOTHING_TO_CLASSIFY), ephemeral=True)
            return
        if query and file is not None and plainly_not_sound(file):  # the player's screenshot beside the song
            file = None
        # Discord's emoji and mentions typed with a file name no song: nothing was left aside. Nor
        # do the words of its name as sent, where Discord changed it (Cyrillic letters: a hash).
        note = query_left_aside(without_markup(query or ""), file.filename, file.title or "") if file else None
        await self._classify(interaction, query, file, uploaded_by(interaction), note=note)

    async def mood_of_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """A link the bot can read, else its audio files (each, `_classify_files`), else whatever
        the message has (the answer then says why it can't be read), else its words as a song's
        name (`song_named_in`: a friend's 'Creep by Radiohead'). A forwarded message: the same, in
        what it forwards (a file is linked by the forwarding message, which holds it)."""
        holder = jump_url(interaction.guild_id, message.channel.id, message.id)
        message = shown(message)
        link = first_link(message, self.allowed_hosts)
        audios = [a for a in message.attachments if is_audio(a)]
        if link is None and audios:
            await self._classify_files(interaction, audios[:MAX_SONGS_AT_ONCE], sent_by(message), holder)
            return
        file = None
        if link is None:
            link = next(iter(links_in(message)), None)
            file = None if link else next(iter(message.attachments), None)
        query = link if link or file else song_named_in(message.content or "")  # words: the song's name
        if not (query or file):
            await show(interaction, ErrorReply(NO_SONG_IN_MESSAGE), ephemeral=True)
            return
        await self._classify(interaction, query, file, sent_by(message), holder=holder)

    async def _classify(self, interaction: discord.Interaction, query: str | None,
                        file: discord.Attachment | None, sender: SentBy, *, note: str | None = None,
                        holder: str | None = None) -> None:
        """`holder`: the link to the message that holds `file`; None: /mood's own response, which
        holds the file attached to it."""
        if self._guild_gone(interaction):
            return
        if file is None and query and links_to_a_discord_file(query, self.allowed_hosts):
            await show(interaction, ErrorReply(DISCORD_FILE_LINK), ephemeral=True)
            return
        caller = self.usecases.privacy.arrived(caller_of(interaction))  # before the download: /forget beats it
        with self.bot.chat_runs.running(interaction.guild_id) as run:  # a server that removes the bot drops it
            response = await acknowledge(interaction, thinking=True)
            holder = holder or jump_url(interaction.guild_id, interaction.channel_id, response)
            progress = InteractionProgress(interaction, self.in_flight)
            reply = await self._heard(interaction, caller, query, file, progress, sender, run, holder)
            if file is None:  # a YouTube link to a moment, another service's link searched by name
                note = self.usecases.mood.link_note(reply, query, platform="discord")
            in_dm = interaction.guild_id is None and interaction.context.dm_channel  # the DM, where the prompts come
            await show_in_channel(interaction, reply, note=await not_journaled(self.usecases, caller, reply, note)
                                  if in_dm else note)

    def _guild_gone(self, interaction: discord.Interaction) -> bool:
        """Whether the /mood is of a server the bot was removed from (asked before the removal,
        started after it): dropped before any fetch, nothing sent (`ChatRuns`)."""
        if interaction.guild_id is None or not self.bot.chat_runs.is_gone(interaction.guild_id):
            return False
        # INFO, one line a run, as a refused /mood's (see `ChatRuns.is_gone`): its asker saw "The
        # application did not respond", and this is the log's only line of the request.
        log.info("discord.mood_dropped_guild_gone", extra=whose(interaction.user, interaction.guild_id))
        return True

    async def _classify_files(self, interaction: discord.Interaction, files: list[discord.Attachment],
                              sender: SentBy, holder: str | None) -> None:
        """Each file's mood, one after another in the message's order, as /mood answers one: the
        first in place of "thinking…", the next ones as followups. A refusal to wait (the rate
        limit) ends them, saying so once; so does too little time left to answer (`FILE_TIME`).
        Each answer is noted where the command is kept (`KeptCommands.part_answered`): the answer
        after a hard kill goes on from the first file not answered (in the followup the killed run
        sent for it, `_progress_of`), and after one that ended them, says nothing more. A server
        that removes the bot drops the files not yet at the model (`ChatRuns`)."""
        if self._guild_gone(interaction):
            return
        caller = self.usecases.privacy.arrived(caller_of(interaction))  # before the downloads: /forget beats them
        with self.bot.chat_runs.running(interaction.guild_id) as run:
            await acknowledge(interaction, thinking=True)
            await self._each_file(interaction, files, caller, sender, holder, run)

    async def _each_file(self, interaction: discord.Interaction, files: list[discord.Attachment], caller: Caller,
                         sender: SentBy, holder: str | None, run: ChatRun) -> None:
        until = answerable_until(interaction)
        kept = getattr(self.bot, "kept", None)
        answered = 0 if kept is None else kept.parts_answered(interaction.id)
        for index, file in enumerate(files):
            if index < answered:  # by a run killed outright
                continue
            if self.bot.chat_runs.is_gone(interaction.guild_id):  # removed while the model had the file before
                return
            run.stage = None
            left = len(files) - index - 1
            progress = self._progress_of(interaction, index, kept)
            if index:  # the response shows the first file's answer: a stop cuts this one short in its own message
                self.bot.serve(functools.partial(progress.show, ErrorReply(render.RESTARTING)))
            if discord.utils.utcnow() + FILE_TIME > until:  # its answer might find the token expired
                await self._show_next(interaction, progress, ErrorReply(OUT_OF_TIME.format(count=left + 1)))
                ended = True
            elif index and not self._followups_for_one_more(interaction, left):
                await self._show_next(interaction, progress, ErrorReply(FOLLOWUPS_SPENT.format(count=left + 1)))
                ended = True
            else:
                reply = await self._heard(interaction, caller, None, file, progress, sender, run, holder)
                await self._show_next(interaction, progress, with_rest_not_heard(reply, left))
                ended = told_to_wait(reply)
            if kept is not None:  # the rest too when these ended them: said not heard
                await kept.part_answered(interaction.id, len(files) if ended else index + 1)
            if ended:
                return

    def _followups_for_one_more(self, interaction: discord.Interaction, left: int) -> bool:
        """Whether Discord takes the followups a next file's answer may need (`followups_left`):
        its own and a refusal told privately, and, with `left` files after it, the one saying
        they were not heard."""
        room = followups_left(interaction, self.in_flight)
        return room is None or room >= 2 + (left > 0)

    def _progress_of(self, interaction: discord.Interaction, index: int,
                     kept: KeptCommands | None) -> InteractionProgress | FollowupProgress:
        """The stages of file `index`: the first's in "thinking…", a next one's in its followup,
        noted where the command is kept once sent; or in the followup a run killed outright sent
        for it (`KeptCommands.followup_before`), which its answer then replaces."""
        if not index:
            return InteractionProgress(interaction, self.in_flight)
        if kept is None:
            return FollowupProgress(interaction, self.in_flight)
        progress = FollowupProgress(interaction, self.in_flight,
                                    on_sent=lambda sent: kept.followup_shown(interaction.id, index, sent.id))
        if (before := kept.followup_before(interaction.id, index)) is not None:
            progress.take_over(before)
        return progress

    @staticmethod
    async def _show_next(interaction: discord.Interaction, progress: InteractionProgress | FollowupProgress,
                         reply: object) -> None:
        """The first answer in place of "thinking…", the next ones as followups."""
        if isinstance(progress, FollowupProgress):
            await show_followup(interaction, progress, reply)
        else:
            await show_in_channel(interaction, reply)

    async def _heard(self, interaction: discord.Interaction, caller: Caller, query: str | None,
                     file: discord.Attachment | None, progress: InteractionProgress | FollowupProgress,
                     sender: SentBy, run: ChatRun, holder: str | None = None) -> object:
        """The mood of `query` or `file` (`sender`'s: a voice message is named by whose it is; in
        the message of the link `holder`), its stages shown by `progress` (settled before returning)
        and noted in `run`."""
        try:
            await progress(STAGE_FINDING)
            asker = whose(interaction.user, interaction.guild_id)
            async with downloaded(file, self.max_audio_bytes, asker, sender, longest_s=self.max_audio_seconds,
                                  uploads=self.usecases.uploads,
                                  admit=lambda: self.usecases.mood.admitted(caller)) as attachment:
                if isinstance(attachment, ErrorReply):
                    return attachment
                if attachment is not None:
                    # A private channel's or thread's file: its name and link are no server playlist's.
                    attachment = replace(attachment, message_link=holder,
                                         unseen_by_place=not seen_by_everyone(interaction))
                return await self.usecases.mood.run(caller, query, attachment, progress=run.told(progress))
        finally:  # no stage may be edited in after the answer, nor after the apology for a failure
            await progress.settle()

    @app_commands.command(name="help", description="What moodbot can do")
    async def help(self, interaction: discord.Interaction) -> None:
        await show(interaction, self.usecases.help(mood=MOOD_HELP, instead={JOURNAL_LIST: JOURNAL_LIST_HELP}),
                   ephemeral=True)
