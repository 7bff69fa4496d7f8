"""MoodCog: /mood, the "Mood of this song" message command, and /help."""
from __future__ import annotations

import re

import discord
from discord import app_commands
from discord.ext import commands

from bot.frontends.discord.interactions import InteractionProgress, caller_of, downloaded, show
from bot.replies import STAGE_FINDING, ErrorReply

LINK = re.compile(r"https?://\S+")
NOTHING_TO_CLASSIFY = "Tell me a song: /mood query:<name or link>, or attach an audio file."
NO_SONG_IN_MESSAGE = "I found no link or audio file in that message."


def first_link(message: discord.Message) -> str | None:
    """The first link in the message text, else in its embeds (Discord unfurls links there)."""
    found = LINK.search(message.content or "")
    if found:
        return found.group(0).rstrip(">)")
    return next((embed.url for embed in message.embeds if embed.url), None)


class MoodCog(commands.Cog):
    def __init__(self, bot: commands.Bot, usecases, max_audio_bytes: int) -> None:
        self.bot = bot
        self.usecases = usecases
        self.max_audio_bytes = max_audio_bytes
        # Context menus cannot be declared inside a cog: build it here, add it to the tree.
        self.menu = app_commands.ContextMenu(name="Mood of this song", callback=self.mood_of_message)
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
        await self._classify(interaction, query, file)

    async def mood_of_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        link, file = first_link(message), next(iter(message.attachments), None)
        if not (link or file):
            await show(interaction, ErrorReply(NO_SONG_IN_MESSAGE), ephemeral=True)
            return
        await self._classify(interaction, link, None if link else file)

    async def _classify(self, interaction: discord.Interaction, query: str | None,
                        file: discord.Attachment | None) -> None:
        await interaction.response.defer(thinking=True)
        progress = InteractionProgress(interaction)
        await progress(STAGE_FINDING)
        async with downloaded(file, self.max_audio_bytes) as attachment:
            if isinstance(attachment, ErrorReply):
                reply = attachment
            else:
                reply = await self.usecases.mood.run(caller_of(interaction), query, attachment,
                                                     progress=progress)
        await show(interaction, reply)

    @app_commands.command(name="help", description="What moodbot can do")
    async def help(self, interaction: discord.Interaction) -> None:
        await show(interaction, self.usecases.help(), ephemeral=True)
