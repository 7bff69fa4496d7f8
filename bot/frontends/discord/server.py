"""ServerCog: what a server shares: mood playlists, the mood of the week, sharing opt-out."""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.frontends.discord.interactions import (PLATFORM, acknowledge, added_here, caller_of, show, show_in_channel,
                                                 whose)
from bot.frontends.render import NOT_SHARING
from bot.replies import ErrorReply, PlaylistReply, ServerMoodReply, TextReply
from bot.usecases.playlists import ENABLED, ON_NOW

log = logging.getLogger(__name__)

# A server command used through the asker's own install (Discord's user install) in a server that
# never added the bot: it has no server playlists there, nor hears members leave.
NOT_ADDED_HERE = ("moodbot isn't a member of this server (you're using it through your own account), so the "
                  "server has no playlists or mood of the week. A server admin can add moodbot to the server "
                  "for them; /mood works here meanwhile.")

Mood = Literal["happy", "energetic", "sad", "calm"]
OnOff = Literal["on", "off"]


async def show_to_the_channel(interaction: discord.Interaction, reply: object) -> None:
    """A playlist or the mood of the week, posted in the channel. The asker's /share off is theirs
    alone here (answered to them alone): the channel's post does not say it, a note to them alone does."""
    if not isinstance(reply, (PlaylistReply, ServerMoodReply)) or reply.sharing:
        await show_in_channel(interaction, reply)
        return
    await show_in_channel(interaction, replace(reply, sharing=True))
    try:
        await interaction.followup.send(NOT_SHARING, ephemeral=True)
    except discord.HTTPException as error:
        log.warning("discord.private_answer_failed", extra={"reason": str(error)})


async def not_added_here(interaction: discord.Interaction) -> bool:
    """Whether the server command was used in a server that never added the bot (`added_here`):
    the asker is told so, alone, at once (nothing of the server's is read or switched)."""
    if added_here(interaction):
        return False
    log.info("discord.server_not_added", extra=whose(interaction.user, interaction.guild_id))
    await show(interaction, ErrorReply(NOT_ADDED_HERE), ephemeral=True)
    return True


class ServerCog(commands.Cog):
    def __init__(self, bot: commands.Bot, usecases) -> None:
        self.bot = bot
        self.usecases = usecases

    # Server-only: in a DM they could only say "use this command in a server", so Discord's '/'
    # list there does not offer them (as it does not offer /serverplaylist).
    @app_commands.command(name="playlist", description="This server's playlist for a mood")
    @app_commands.describe(mood="Which mood")
    @app_commands.guild_only()
    async def playlist(self, interaction: discord.Interaction, mood: Mood) -> None:
        if await not_added_here(interaction):
            return
        await acknowledge(interaction, thinking=True)
        await show_to_the_channel(interaction, await self.usecases.playlists.playlist(caller_of(interaction), mood))

    @app_commands.command(name="servermood", description="This server's mood of the week")
    @app_commands.guild_only()
    async def server_mood(self, interaction: discord.Interaction) -> None:
        if await not_added_here(interaction):
            return
        await acknowledge(interaction, thinking=True)  # the chart takes a moment
        await show_to_the_channel(interaction, await self.usecases.playlists.server_mood(caller_of(interaction)))

    @app_commands.command(name="share", description="Count your songs in server playlists, or stop")
    @app_commands.describe(choice="on: your songs count in server playlists; off: they don't (left out: which it is now)")
    async def share(self, interaction: discord.Interaction, choice: OnOff | None = None) -> None:
        await acknowledge(interaction, ephemeral=True, thinking=True)  # before the database
        caller, playlists = caller_of(interaction), self.usecases.playlists
        await show(interaction, await (playlists.sharing(caller) if choice is None
                                       else playlists.set_sharing(caller, choice == "on")))

    # Sent only with the privileged members intent (DISCORD_MEMBERS_INTENT).
    @commands.Cog.listener()
    async def on_raw_member_remove(self, payload: discord.RawMemberRemoveEvent) -> None:
        await self.usecases.playlists.member_left(PLATFORM, str(payload.guild_id), str(payload.user.id))

    @commands.Cog.listener()
    async def on_member_join(self, member: discord.Member) -> None:
        await self.usecases.playlists.member_joined(PLATFORM, str(member.guild.id), str(member.id))

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """The bot was removed from the server (kicked or banned, or the server deleted), not a
        server made unavailable by an outage, which discord.py tells apart: nothing is deleted. Its
        /mood runs not yet at the model are dropped (`ChatRuns`), said in one line naming them."""
        dropped = self.bot.chat_runs.drop_runs(guild.id)
        if dropped is not None:
            log.info("discord.guild_gone", extra={"place": f"{PLATFORM}:{guild.id}", "dropped": len(dropped),
                                                  "req": ",".join(run.request for run in dropped if run.request) or None})
        self.usecases.playlists.bot_removed(PLATFORM, str(guild.id))

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        """Added to a server (again): its /mood runs are answered."""
        self.bot.chat_runs.back(guild.id)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        """A server that says it is there (back from an outage, or a rejoin discord.py took for one:
        its GUILD_CREATE with `unavailable: false`) has the bot in it: its /mood runs are answered."""
        self.bot.chat_runs.back(guild.id)

    @app_commands.command(name="serverplaylist",
                          description="Turn this server's mood playlists and mood of the week on or off")
    @app_commands.describe(state="on or off (left out: which they are now)")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def server_playlist(self, interaction: discord.Interaction, state: OnOff | None = None) -> None:
        if await not_added_here(interaction):
            return
        await acknowledge(interaction, ephemeral=True, thinking=True)
        caller, playlists = caller_of(interaction), self.usecases.playlists
        if state is None:  # whether /playlist and /servermood answer here now, as the console's says it
            # (the switch offered to an admin alone: a server may let any role use the command)
            await show(interaction, await playlists.closed(caller) or TextReply(ON_NOW if caller.is_admin else ENABLED))
            return
        await show(interaction, await playlists.set_enabled(caller, state == "on"))
