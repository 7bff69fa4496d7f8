"""MoodCog: /mood, the "Mood of this song" message command, and /help."""
from __future__ import annotations

import re

import discord
from discord import app_commands
from discord.ext import commands

from bot.frontends.discord.interactions import (
    InteractionProgress,
    RequestsInFlight,
    caller_of,
    downloaded,
    is_audio,
    show,
    show_in_channel,
    shown,
    whose,
)
from bot.frontends.discord.rendering import escape
from bot.replies import STAGE_FINDING, ErrorReply
from bot.sources.models import UnsupportedInputError
from bot.sources.query import DEFAULT_ALLOWED, clean_text, parse_query
from bot.usecases.help import MOOD

LINK = re.compile(r"https?://[^\s<>|]+")  # stops at a spoiler's ||, and at <link>'s >
TRAILING = ">)|.,!?;:"  # after a link: "(link)", "||link||", "listen: link!"
NOTHING_TO_CLASSIFY = "Tell me a song: /mood query:<name or link>, or attach an audio file."
NO_SONG_IN_MESSAGE = "I found no link or audio file in that message."
# /mood given a song's name (or link) and a file: the file is heard, and the answer says so (the
# embed names the file, not the song typed).
QUERY_LEFT_ASIDE = "I listened to the attached file; the song name or link you typed was left aside."
# The message command hears one file: of a message with several, it names the one it heard.
FIRST_FILE_HEARD = ("I listened to “{name}”, the first of the {count} audio files in that message; to hear "
                    "another, attach it to /mood.")
MENU_NAME = "Mood of this song"
# /help names the message command too: Discord lists it only in a message's Apps menu.
MOOD_HELP = (MOOD[0], f"{MOOD[1]}; on any message: Apps → {MENU_NAME}")


def links_in_text(text: str | None) -> list[str]:
    found = [link.rstrip(TRAILING) for link in LINK.findall(text or "")]
    return [link for link in found if link]


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


def first_file_heard(audios: list[discord.Attachment]) -> str | None:
    """What the answer says of a message's audio files when it has several: which one was heard."""
    if len(audios) < 2:
        return None
    return FIRST_FILE_HEARD.format(name=escape(audios[0].filename), count=len(audios))


class MoodCog(commands.Cog):
    def __init__(self, bot: commands.Bot, usecases, max_audio_bytes: int,
                 allowed_hosts: frozenset[str] = DEFAULT_ALLOWED, *, in_flight: RequestsInFlight) -> None:
        self.bot = bot
        self.usecases = usecases
        self.max_audio_bytes = max_audio_bytes
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
        note = QUERY_LEFT_ASIDE if file and clean_text(query or "") else None
        await self._classify(interaction, query, file, note=note)

    async def mood_of_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """A link the bot can read, else an audio file (the first: the answer names it when there
        are more), else whatever the message has (the answer then says why it can't be read). A
        forwarded message: the same, in what it forwards."""
        message = shown(message)
        link = first_link(message, self.allowed_hosts)
        audios = [a for a in message.attachments if is_audio(a)]
        audio = next(iter(audios), None)
        if link is None and audio is None:
            link = next(iter(links_in(message)), None)
            audio = None if link else next(iter(message.attachments), None)
        if not (link or audio):
            await show(interaction, ErrorReply(NO_SONG_IN_MESSAGE), ephemeral=True)
            return
        await self._classify(interaction, link, None if link else audio,
                             note=None if link else first_file_heard(audios))

    async def _classify(self, interaction: discord.Interaction, query: str | None,
                        file: discord.Attachment | None, *, note: str | None = None) -> None:
        caller = self.usecases.privacy.arrived(caller_of(interaction))  # before the download: /forget beats it
        await interaction.response.defer(thinking=True)
        progress = InteractionProgress(interaction, self.in_flight)
        try:
            await progress(STAGE_FINDING)
            asker = whose(interaction.user, interaction.guild_id)
            async with downloaded(file, self.max_audio_bytes, asker) as attachment:
                if isinstance(attachment, ErrorReply):
                    reply = attachment
                else:
                    reply = await self.usecases.mood.run(caller, query, attachment,
                                                         progress=progress)
        finally:  # no stage may be edited in after the answer, nor after the apology for a failure
            await progress.settle()
        await show_in_channel(interaction, reply, note=note)

    @app_commands.command(name="help", description="What moodbot can do")
    async def help(self, interaction: discord.Interaction) -> None:
        await show(interaction, self.usecases.help(mood=MOOD_HELP), ephemeral=True)
