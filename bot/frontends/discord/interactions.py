"""Shared plumbing of the cogs: who is asking, the attached audio, progress, showing a reply."""
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import weakref
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, NamedTuple

import aiohttp
import discord

from bot.frontends.discord.rendering import clip, edit_parts, message_parts
from bot.ratelimit import UploadBudget
from bot.replies import (NO_ROOM_FOR_FILE, NO_ROOM_RETRY_S, NOT_AUDIO, NOT_SOUND_TYPES, UPLOADS_BUSY, UPLOADS_RETRY_S,
                          Attachment, Caller, ErrorReply, titled_upload, unnamed_upload)
from bot.tempfiles import local_name, temporary_folder, write_file
from bot.usecases.mood import Admit
# A file too long or too short to hear, in the decoder's words.
from inference.result import MIN_SECONDS, too_long_words, too_short_words

log = logging.getLogger(__name__)

PLATFORM = "discord"
TOO_LARGE = "That file is too large: I can analyse files up to {mb:.0f} MB."
EMPTY_FILE = "The file {name} is empty (0 bytes): there is no audio in it."  # as the console says it
# Discord's file server did not hand the attachment over: deleted since it was sent (404), its
# link refused (403), an outage (5xx) or a dropped connection. Sent again, it gets a new link.
NOT_DOWNLOADED = ("I couldn't get that file from Discord: it may have been deleted, or Discord "
                  "didn't hand it over just now. Please attach it again.")
# What the channel sees of a refusal told to the asker alone, until it is deleted (or should that fail).
ANSWERED_PRIVATELY = "Answered privately."
MAX_SHOWN_NAME = 80  # characters of a file's name said back (as on Telegram)
AUDIO_SUFFIXES = frozenset({".mp3", ".ogg", ".oga", ".opus", ".wav", ".flac", ".m4a", ".aac"})
# File names Discord's apps give that say nothing of the file, and what it is called instead (as
# Telegram calls a file of no name, `titled_upload`): every voice message is voice-message.ogg, a
# video a phone's app sends video0.mov (video1.mp4…), what is pasted unknown.<type>.
NAMELESS = re.compile(r"(voice-message|video|unknown)\d*\.[0-9a-z]+", re.IGNORECASE)
NAMELESS_KINDS = {"voice-message": "Voice note", "video": "Video", "unknown": "File"}
# No answer from Discord (a dropped connection, a timeout): expected now and then, as its refusals
# are (`shown_if_possible`); anything else showing a stage is a bug, logged with its traceback.
NETWORK_ERRORS = (OSError, asyncio.TimeoutError, aiohttp.ClientError)
# Discord's JSON error codes for a DM that will keep failing: the user closed their DMs (to the
# bot's servers, or blocked it) or shares no server with it any more; the account is gone.
CANNOT_MESSAGE_USER = 50007
UNKNOWN_USER = 10013
# Discord's answer to an edit of a message deleted meanwhile: a deferred response ("… is thinking")
# a moderator, or the asker, deleted while the bot worked.
UNKNOWN_MESSAGE = 10008
# Discord's answer to an interaction's first response past its 3 s (or to one it never sent):
# nothing can answer that interaction any more, neither a response nor a followup.
UNKNOWN_INTERACTION = 10062
# Discord's answer to a second response to an interaction: discord.py sends a response again when
# its first is answered 500, 502, 504 or 524, which Discord may have made all the same.
ALREADY_ACKNOWLEDGED = 40060
# Discord's answer to what the bot may not post in the channel (a 403): its embed without Embed
# Links there, its file (a chart) without Attach Files, set by the server for the bot's roles.
MISSING_PERMISSIONS = 50013
# The permissions an answer in a channel may need, as Discord's settings name them (an interaction's
# answer needs no Send Messages: it is the app's, not a message the bot sends).
ANSWER_PERMISSIONS = (("embed_links", "Embed Links"), ("attach_files", "Attach Files"))
LACKING_HERE = ("I can't post my answer in this channel: I don't have {missing} here. A server admin can "
                "allow {them} for me in the channel's settings (Permissions); meanwhile, try another channel.")
REFUSED_HERE = ("Discord didn't let me post my answer in this channel: I'm missing a permission here. A "
                "server admin can check mine in the channel's settings (Permissions); meanwhile, try another channel.")
# Discord takes this many followups of an interaction through the asker's own install alone
# (`user_install_only`), then refuses them (400, 40094); others take any number.
USER_INSTALL_FOLLOWUPS = 5
USER_INSTALL = 1  # an authorizing_integration_owners key: the app installed to the user's account
FOLLOWUPS_TRACKED = 10_000  # interactions whose followups are counted, the oldest forgotten first
# In an interaction's `extras` once its deferred response is known deleted (`edited_original`).
ORIGINAL_DELETED = "moodbot.original_deleted"
# Discord takes an interaction's answers (edits, followups) for 15 minutes after it was made.
INTERACTION_TOKEN_LIFETIME = timedelta(minutes=15)


def user_install_only(interaction: discord.Interaction) -> bool:
    """Whether the interaction comes through the asker's own install of the app alone (its
    authorizing_integration_owners name USER_INSTALL and nothing else): used where the app was
    never added (a group DM, a DM of two people, a server without the bot)."""
    return set(getattr(interaction, "_integration_owners", None) or ()) == {USER_INSTALL}


def followups_left(interaction: discord.Interaction, in_flight: RequestsInFlight) -> int | None:
    """How many more followups Discord takes of the interaction (`USER_INSTALL_FOLLOWUPS`, less
    those sent, `RequestsInFlight.followups`); None: no limit."""
    if not user_install_only(interaction):
        return None
    return USER_INSTALL_FOLLOWUPS - in_flight.followups(interaction.token)


def added_here(interaction: discord.Interaction) -> bool:
    """Whether the interaction's server, if any, added the bot: False where it comes through the
    asker's own install of the app alone (Discord's user install: its authorizing_integration_owners
    name the user's, not the server's), in a server that never added the bot, which the bot is no
    member of (no member leaving is heard there)."""
    return interaction.guild_id is None or not user_install_only(interaction)


def caller_of(interaction: discord.Interaction) -> Caller:
    """The asker; in a server as its member, but in one that never added the bot (`added_here`) as
    in a private chat: what is heard there counts in no server playlist."""
    user = interaction.user
    in_guild = interaction.guild_id is not None and added_here(interaction)
    return Caller(
        platform=PLATFORM,
        user_id=str(user.id),
        place=f"{PLATFORM}:{interaction.guild_id}" if in_guild else None,
        chat_id=str(user.id),  # the front-end opens the DM channel from the user id
        # Discord gives an Administrator every permission; should it send that bit alone, it counts too.
        is_admin=in_guild and (interaction.permissions.manage_guild or interaction.permissions.administrator),
        display_name=user.display_name,
    )


def seen_by_everyone(interaction: discord.Interaction) -> bool:
    """Whether every member of the interaction's server can see its channel: the server's @everyone
    role may view it (`permissions_for`, its overwrites applied), or, a thread, its parent channel
    (a private thread, channel type 12, never). Read from the server as the gateway gave it
    (GUILD_CREATE's roles and channels' overwrites), no REST call. A server not known from the
    gateway (unavailable in an outage) has no @everyone role to read: the channel's own overwrite
    for @everyone, as the interaction carries it, decides; a thread's parent not known, the thread
    is taken as seen. True outside a server (what is heard there counts in none)."""
    guild, channel = interaction.guild, interaction.channel
    if guild is None or interaction.guild_id is None:
        return True
    if isinstance(channel, discord.Thread):
        if channel.type is discord.ChannelType.private_thread:
            return False
        channel = channel.parent
        if channel is None:
            return True
    if not isinstance(channel, discord.abc.GuildChannel):
        return True
    everyone = guild.default_role
    if everyone is None:
        return channel.overwrites_for(discord.Object(id=guild.id)).view_channel is not False
    return channel.permissions_for(everyone).view_channel


def jump_url(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str | None:
    """The link to a server's message that its members open (Discord's jump URL), made of Discord's
    ids; None outside a server (a DM's messages are the two people's), or where one is not known."""
    if guild_id is None or channel_id is None or message_id is None:
        return None
    return f"https://discord.com/channels/{int(guild_id)}/{int(channel_id)}/{int(message_id)}"


async def acknowledge(interaction: discord.Interaction, *, ephemeral: bool = False,
                      thinking: bool = False) -> int | None:
    """Defer the interaction (`InteractionResponse.defer`'s arguments); the id of the response's
    message, where Discord said it (None: not known). Discord may make a deferral and answer it
    5xx (its edge gave up waiting): discord.py sends it again, and Discord refuses that one as
    already acknowledged (40060). The deferral stands: the command goes on, and its answer edits
    the deferred response, as any deferred command's does."""
    try:
        deferred = await interaction.response.defer(ephemeral=ephemeral, thinking=thinking)
        return deferred.message_id if deferred is not None else None
    except discord.HTTPException as error:
        if error.code != ALREADY_ACKNOWLEDGED:
            raise
        log.info("discord.deferral_answered_late", extra=whose(interaction.user, interaction.guild_id))
        # discord.py records a response only once Discord's answer to it is a success: without this,
        # `is_done()` stays False, and the answer (`show`), or an apology, is sent as a response of
        # its own, which Discord refuses (40060) as it did the deferral's resend. The type is the
        # one `defer` sends: a press without `thinking` updates its message later, the rest "think".
        component = interaction.type in (discord.InteractionType.component, discord.InteractionType.modal_submit)
        interaction.response._response_type = (discord.InteractionResponseType.deferred_message_update
                                                if component and not thinking
                                                else discord.InteractionResponseType.deferred_channel_message)
        return None


async def respond(interaction: discord.Interaction, *, ephemeral: bool = False,
                  view: discord.ui.View | None = None, **parts: Any) -> int | None:
    """Send the interaction's response (`InteractionResponse.send_message`'s arguments); the id of
    the message Discord made of it (None where it is not known, and `view` is not listening).
    Discord may make the response and answer 5xx (its edge gave up waiting): discord.py sends it
    again, and Discord refuses that one as already acknowledged (40060). The response stands, as a
    deferral so made does (`acknowledge`): it is recorded as discord.py records one, read back (GET
    @original) for its id, and `view` listens on it. It was a failed command:
    /forget's Yes / No shown, but nobody listening for a press. A connection cut off with no answer
    is sent again here (discord.py resends no such request): Discord makes it, or says it has."""
    async def send() -> int | None:
        sent = await interaction.response.send_message(ephemeral=ephemeral, **parts,
                                                       **({} if view is None else {"view": view}))
        return sent.message_id

    try:
        try:
            return await send()
        except NETWORK_ERRORS as error:
            log.info("discord.response_not_confirmed",
                     extra={**whose(interaction.user, interaction.guild_id), "reason": type(error).__name__})
            return await send()
    except discord.HTTPException as error:
        if error.code != ALREADY_ACKNOWLEDGED:
            raise
    log.info("discord.response_answered_late", extra=whose(interaction.user, interaction.guild_id))
    interaction.response._response_type = discord.InteractionResponseType.channel_message
    try:
        message = await interaction.original_response()
    except (discord.HTTPException, *NETWORK_ERRORS) as error:
        # The response is shown all the same (not to be replaced by an apology); a `view`'s buttons
        # with nobody listening: a press is told they expired (`JournalCog.on_interaction`).
        log.warning("discord.response_not_read_back",
                    extra={**whose(interaction.user, interaction.guild_id), "reason": repr(error)})
        if view is not None:
            view.stop()
        return None
    if view is None or view.is_finished():
        return message.id
    if ephemeral and view.timeout is None:  # as discord.py does: a private message's buttons die with it
        view.timeout = 15 * 60.0
    interaction.client._connection.store_view(view, message.id)
    return message.id


async def apologise(interaction: discord.Interaction, apology: str) -> None:
    """Tell the asker that their command failed: in its response once that was made (`edited_original`,
    or a private followup should it be deleted), else as the response, to the asker alone.

    Discord may have made a response whose answer discord.py never had (a 5xx, then 40060 to its
    resend; a connection cut off): the apology then goes in that response if it still "thinks" (a
    deferral whose command never answered); one showing the command's answer is left as it is."""
    if not interaction.response.is_done():
        try:
            await interaction.response.send_message(apology, ephemeral=True)
            return
        except discord.HTTPException as error:
            if error.code != ALREADY_ACKNOWLEDGED:
                raise
            if not (await interaction.original_response()).flags.loading:
                return
    if not await edited_original(interaction, content=apology, embed=None):
        await followed_up(interaction, ErrorReply(apology), ephemeral=True)


def too_late(interaction: discord.Interaction, error: BaseException) -> bool:
    """Whether Discord refused the interaction's response as past its 3 s (UNKNOWN_INTERACTION: the
    bot's loop held up, the gateway's event come late, a command replayed at the start that the
    killed run never deferred); if so, logged as one WARNING saying how late (nothing can answer
    it, an apology neither: no bug's traceback, no second response)."""
    if not (isinstance(error, discord.NotFound) and error.code == UNKNOWN_INTERACTION):
        return False
    late_s = (discord.utils.utcnow() - interaction.created_at).total_seconds()
    log.warning("discord.interaction_expired", extra={**whose(interaction.user, interaction.guild_id),
                                                      "late_s": round(late_s, 1)})
    return True


def refused_here(error: BaseException) -> bool:
    """Whether Discord refused the answer for a permission the bot lacks in the channel (in a server)."""
    return isinstance(error, discord.Forbidden) and error.code == MISSING_PERMISSIONS


def lacking_here(interaction: discord.Interaction) -> list[str]:
    """The permissions an answer may need (ANSWER_PERMISSIONS) that the bot lacks in the
    interaction's channel (a thread's, a forum post's), by what Discord sent with it (`app_permissions`)."""
    return [name for flag, name in ANSWER_PERMISSIONS if not getattr(interaction.app_permissions, flag)]


async def tell_refused_here(interaction: discord.Interaction) -> None:
    """The asker told, alone, that Discord refused the answer in this channel for a permission the
    bot lacks there, and which (`lacking_here`); logged as a WARNING (the server's setting, no bug).
    The deferred response ("thinking…", public) goes; the words come as a private followup."""
    missing = lacking_here(interaction)
    log.warning("discord.answer_refused_here", extra={**whose(interaction.user, interaction.guild_id),
                                                      "channel": str(interaction.channel_id),
                                                      "missing": ", ".join(missing) or None})
    text = (LACKING_HERE.format(missing=" or ".join(missing), them="them" if len(missing) > 1 else "it")
            if missing else REFUSED_HERE)
    if not interaction.response.is_done():
        await interaction.response.send_message(text, ephemeral=True)
        return
    with contextlib.suppress(discord.HTTPException):
        await interaction.delete_original_response()
    await followed_up(interaction, ErrorReply(text), ephemeral=True)


def answerable_until(interaction: discord.Interaction) -> datetime:
    """When Discord stops taking the interaction's answers: 15 minutes after it was made, by its
    id's time, or by the time it arrived should this machine's clock be behind Discord's."""
    return min(interaction.created_at, discord.utils.utcnow()) + INTERACTION_TOKEN_LIFETIME


def whose(user: discord.abc.User, guild_id: int | None = None) -> dict[str, str | None]:
    """Who met a failure, for its log line: the user (hashed there) and the server, named as
    `caller_of` names them, so that an operator finds the failure a user tells of."""
    return {"user": str(user.id), "place": f"{PLATFORM}:{guild_id}" if guild_id is not None else None}


def refuses_the_user(error: BaseException) -> bool:
    """Whether Discord refused a DM for the user's doing (their DMs closed, the bot blocked, no
    server shared, the account gone): something the user can allow or nothing to retry. Any other
    403 (the bot's own missing access, its unverified account, a proxy's page with no code), an
    outage or a lost connection says nothing of the user's settings. One judgement for the daily
    prompt, /journal prompt and /journal on's welcome DM alike."""
    return (isinstance(error, (discord.Forbidden, discord.NotFound))
            and error.code in (CANNOT_MESSAGE_USER, UNKNOWN_USER))


def refuses_the_bot(error: BaseException) -> bool:
    """Whether Discord refused a DM to the bot itself (a 403 that is not the user's refusal: its
    missing access, its unverified account, no code at all): no passing failure, as an outage is,
    and nothing the user can allow; it lasts until the bot's access or account changes."""
    return isinstance(error, discord.Forbidden) and not refuses_the_user(error)


def dm_caller_of(message: discord.Message) -> Caller:
    author = message.author
    return Caller(platform=PLATFORM, user_id=str(author.id), place=None, chat_id=str(author.id),
                  display_name=author.display_name)


class SentBy(NamedTuple):
    """Whose a message's files are (their display name; None: not known), and when it was sent."""

    name: str | None
    at: datetime
    user_id: str | None = None  # their id, as callers are keyed (None: not known)


def sent_by(message: discord.Message | discord.MessageSnapshot) -> SentBy:
    """Whose the files of what a message shows are (`shown`): a forward's snapshot does not say
    whose the message it forwards was, and its files are not the forwarder's."""
    if not isinstance(message, discord.Message):
        return SentBy(None, message.created_at)
    return SentBy(message.author.display_name, message.created_at, str(message.author.id))


def uploaded_by(interaction: discord.Interaction) -> SentBy:
    """A file given with a slash command: the asker's, sent with it."""
    return SentBy(interaction.user.display_name, interaction.created_at, str(interaction.user.id))


def upload_title(attachment: discord.Attachment, sender: SentBy | None) -> str | None:
    """What to call an attachment (`Attachment.title`) whose file name is not what its sender
    named it or says nothing: a name Discord had to change (it keeps ASCII letters and digits
    alone, a hash where none are left) as sent, Discord's `title`; a voice message, or another
    file under a name Discord's apps give (`NAMELESS`), by whose it is and the day, as Telegram
    names a voice note: "Voice note by Alice, 5 Dec 2026". None: named by its file name."""
    if (sent_as := " ".join((attachment.title or "").split())):
        suffix = Path(attachment.filename).suffix
        stem = sent_as[:-len(suffix)] if suffix and sent_as.casefold().endswith(suffix.casefold()) else sent_as
        return stem.strip() or sent_as
    nameless = NAMELESS.fullmatch(attachment.filename)
    if sender is None or not (attachment.is_voice_message() or nameless):
        return None
    kind = "Voice note" if attachment.is_voice_message() else NAMELESS_KINDS[nameless.group(1).lower()]
    return titled_upload(kind, sender.name, sender.at)


def titled_sender(attachment: discord.Attachment, sender: SentBy | None) -> str | None:
    """The id of whom `upload_title` names the attachment by ("Voice note by Alice"), for their
    /forget to take the name out of the requests that keep it; None where it names nobody."""
    if sender is None or not sender.name or " ".join((attachment.title or "").split()):
        return None
    return sender.user_id if attachment.is_voice_message() or NAMELESS.fullmatch(attachment.filename) else None


def shown_name(attachment: discord.Attachment, sender: SentBy | None = None) -> str:
    """The attachment's name as its sender gave it, clipped to be said back to them: as sent
    (Discord's `title`) where Discord had to change it; for a voice message or a file under a name
    Discord's apps give (`NAMELESS`, which `upload_title` titles), whose and when, as a refusal's
    "The file …" goes on ("sent by Bob on 1 Mar 2026", `unnamed_upload`), as on Telegram; else its
    file name."""
    if (sent_as := " ".join((attachment.title or "").split())):
        return clip(sent_as, MAX_SHOWN_NAME)
    if sender is not None and (attachment.is_voice_message() or NAMELESS.fullmatch(attachment.filename)):
        return clip(unnamed_upload(sender.name, sender.at), MAX_SHOWN_NAME)
    return clip(attachment.filename, MAX_SHOWN_NAME)


def is_audio(attachment: discord.Attachment) -> bool:
    """A file that may carry a song: audio, a video (the classifier hears its sound), or an audio
    file's name under a content type Discord did not know (octet-stream, or none)."""
    if (attachment.content_type or "").startswith(("audio/", "video/")):
        return True
    return Path(attachment.filename).suffix.lower() in AUDIO_SUFFIXES


def plainly_not_sound(attachment: discord.Attachment) -> bool:
    """A picture, a PDF, a text…: a type no song comes as (NOT_SOUND_TYPES, as Telegram judges a
    document), refused before it is downloaded."""
    return (attachment.content_type or "").lower().startswith(NOT_SOUND_TYPES)


def shown(message: discord.Message) -> discord.Message | discord.MessageSnapshot:
    """What the message shows: a forwarded message is empty, and the original's text and files
    are in its snapshot."""
    if not message.content and not message.attachments and message.message_snapshots:
        return message.message_snapshots[0]
    return message


def song_attachment(message: discord.Message | discord.MessageSnapshot) -> discord.Attachment | None:
    """The message's audio file. Without one, its first file only when it has no text (the answer
    then says why that file can't be heard): a screenshot beside a song's name is not the song."""
    audio = next((a for a in message.attachments if is_audio(a)), None)
    if audio is None and not message.content:
        return next(iter(message.attachments), None)
    return audio


def too_large(size: int, limit: int, asker: dict[str, str | None]) -> ErrorReply:
    """The refusal of a file over `limit`, logged as a refused /mood is: whose (`whose`), and why,
    but not the file's name, which is the sender's."""
    log.info("discord.file_refused", extra={**asker, "why": "too_large", "bytes": size, "limit_bytes": limit})
    return ErrorReply(TOO_LARGE.format(mb=limit / 1024 / 1024))


def download_failure(error: BaseException) -> str:
    """Why Discord's file server did not hand an attachment over, for the log: its status and
    words, or the network error's kind. Not the error's text, which may hold the file's link."""
    if isinstance(error, discord.HTTPException):
        return f"{error.status} {error.text}"
    return type(error).__name__


async def fetched(attachment: discord.Attachment, asker: dict[str, str | None]) -> bytes | ErrorReply:
    """The attachment's bytes, or the user's explanation of why Discord did not hand them over
    (logged with `asker` and the reason, not the file's name)."""
    try:
        return await attachment.read()
    except (discord.HTTPException, aiohttp.ClientError, asyncio.TimeoutError) as error:
        log.warning("discord.file_not_downloaded", extra={**asker, "reason": download_failure(error)})
        return ErrorReply(NOT_DOWNLOADED)


@contextlib.asynccontextmanager
async def downloaded(attachment: discord.Attachment | None, limit: int, asker: dict[str, str | None],
                     sender: SentBy | None = None, *, longest_s: float, uploads: UploadBudget,
                     admit: Admit | None = None) -> AsyncIterator[Attachment | ErrorReply | None]:
    """The attachment saved to a temporary file (removed afterwards), titled where its name is not
    its sender's or says nothing (`upload_title`: `sender`'s voice message); refused before downloading
    when its type is plainly not sound (NOT_SOUND_TYPES), empty, larger than `limit`, or a voice message Discord says lasts over `longest_s`
    (MAX_AUDIO_DURATION_S) or under the classifier's 10 s (`asker`'s refusal, logged), or by `admit`
    (the /mood limit, entered once those pass and held while the file is used), or by `uploads`
    (the bot-wide budget of files held at once, full: its /mood quota given back), or explained
    when Discord does not hand it over (`fetched`)."""
    if attachment is None:
        yield None
        return
    if plainly_not_sound(attachment):
        log.info("discord.file_refused", extra={**asker, "why": "not_audio", "content_type": attachment.content_type})
        yield ErrorReply(NOT_AUDIO.format(name=(name := shown_name(attachment, sender))), quoted=(name,))
        return
    if attachment.size == 0:  # a recording or copy cut short: nothing to download, nor to listen to
        log.info("discord.file_refused", extra={**asker, "why": "empty"})
        yield ErrorReply(EMPTY_FILE.format(name=(name := shown_name(attachment, sender))), quoted=(name,))
        return
    duration_s = attachment.duration or 0  # a voice message's length, as Discord tells it; 0 or none: not known
    if duration_s > longest_s:
        log.info("discord.file_refused", extra={**asker, "why": "too_long", "duration_s": duration_s,
                                                "limit_s": longest_s})
        yield ErrorReply(too_long_words(name := shown_name(attachment, sender), longest_s), quoted=(name,))
        return
    if 0 < duration_s < MIN_SECONDS:
        log.info("discord.file_refused", extra={**asker, "why": "too_short", "duration_s": duration_s,
                                                "limit_s": MIN_SECONDS})
        yield ErrorReply(too_short_words(duration_s))
        return
    if attachment.size > limit:
        yield too_large(attachment.size, limit, asker)
        return
    with (admit() if admit is not None else contextlib.nullcontext()) as refused, \
            uploads.holding(attachment.size) as room:
        if refused is not None:  # over the /mood limit: said before a byte of the file is fetched
            yield refused
            return
        if not room:  # others' files fill the budget
            log.info("discord.file_refused", extra={**asker, "why": "uploads_busy", "bytes": attachment.size,
                                                    "held_bytes": uploads.held_bytes, "limit_bytes": uploads.limit_bytes})
            yield ErrorReply(UPLOADS_BUSY, retry_after_s=UPLOADS_RETRY_S)
            return
        data = await fetched(attachment, asker)
        if isinstance(data, ErrorReply):
            yield data
            return
        async with temporary_folder("moodbot-dc-") as folder:
            path = folder / local_name(attachment.filename)
            try:
                await write_file(path, data)
            except OSError as error:  # the temporary folder's disk full (many large files at once), a quota
                log.warning("discord.file_not_kept", extra={**asker, "reason": error.strerror or type(error).__name__})
                yield ErrorReply(NO_ROOM_FOR_FILE, retry_after_s=NO_ROOM_RETRY_S)
                return
            size = len(data)
            del data  # on disk now: not held in memory too while the model has it, or waits for it
            yield (too_large(size, limit, asker) if size > limit
                   else Attachment(str(path), attachment.filename, size, title=upload_title(attachment, sender),
                                   shown_name=shown_name(attachment, sender), sender=titled_sender(attachment, sender)))


@contextlib.asynccontextmanager
async def shown_if_possible(stage: str) -> AsyncIterator[None]:
    """A progress stage Discord refuses (an outage, the 429s discord.py gives up on) is skipped:
    the song being listened to, and the journal entry it makes, matter more than "Listening…"."""
    try:
        yield
    except discord.HTTPException as error:
        log.warning("discord.progress_not_shown", extra={"stage": stage, "status": error.status, "code": error.code})


class RequestsInFlight:
    """Which tasks may be cut off without losing what Discord made of their request, told from
    aiohttp's tracing of discord.py's session (`trace_config`, the client's `http_trace`).

    A task that has sent nothing yet may be, and so may one whose request Discord refused, for now
    or for good: discord.py raises, or sleeps (a 429's Retry-After, a 5xx) and sends it again; Discord
    has nothing of it. Not one whose request is in flight: cut off, it may still reach Discord and be
    made after the answer's edit ("Listening…" in place of the mood). Nor one Discord made the
    request of, until its next request or its end: what came back (the status message sent) is
    still to be read."""

    def __init__(self) -> None:
        # task -> set while it may be cut off; a task that never sent a request has none
        self._interruptible: weakref.WeakKeyDictionary[asyncio.Task, asyncio.Event] = weakref.WeakKeyDictionary()
        # task -> how many of its requests Discord may have made: all it sent, but those answered 429
        self._maybe_made: weakref.WeakKeyDictionary[asyncio.Task, int] = weakref.WeakKeyDictionary()
        # interaction token -> the followups sent (POST /webhooks/{application}/{token}), the latest
        # FOLLOWUPS_TRACKED interactions'
        self._followups: collections.OrderedDict[str, int] = collections.OrderedDict()
        self.trace_config = aiohttp.TraceConfig()
        self.trace_config.on_request_start.append(self._sent)
        self.trace_config.on_request_end.append(self._answered)
        self.trace_config.on_request_exception.append(self._failed)

    def interruptible(self, task: asyncio.Task) -> bool:
        state = self._interruptible.get(task)
        return state is None or state.is_set()

    async def until_interruptible(self, task: asyncio.Task) -> None:
        """Return once `task` may be cut off (checked again on waking: it may have sent its request
        again meanwhile), or has ended."""
        while not (task.done() or self.interruptible(task)):
            waiting = asyncio.ensure_future(self._interruptible[task].wait())
            try:
                await asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiting.cancel()

    def followups(self, token: str) -> int:
        """How many followups were sent of the interaction whose token is `token` (each try of one
        counted: Discord may have made it)."""
        return self._followups.get(token, 0)

    def _count_followup(self, params: aiohttp.TraceRequestStartParams) -> None:
        parts = params.url.path.rstrip("/").split("/")
        if params.method == "POST" and len(parts) >= 3 and parts[-3] == "webhooks":
            token = parts[-1]
            self._followups[token] = self._followups.pop(token, 0) + 1
            while len(self._followups) > FOLLOWUPS_TRACKED:
                self._followups.popitem(last=False)

    def maybe_made(self) -> int:
        """How many requests the running task sent that Discord may have made (a 429 made nothing):
        unchanged across a call, Discord has nothing of it, whether discord.py was waiting out a
        rate limit or had not sent it yet."""
        task = asyncio.current_task()
        return 0 if task is None else self._maybe_made.get(task, 0)

    def _state(self) -> asyncio.Event | None:
        task = asyncio.current_task()
        return None if task is None else self._interruptible.setdefault(task, asyncio.Event())

    async def _sent(self, _session, _context, params: aiohttp.TraceRequestStartParams) -> None:
        self._count_followup(params)
        if (state := self._state()) is not None:
            state.clear()
            task = asyncio.current_task()
            self._maybe_made[task] = self._maybe_made.get(task, 0) + 1

    async def _answered(self, _session, _context, params: aiohttp.TraceRequestEndParams) -> None:
        # Refused, or refused for now (a 429, a 5xx): discord.py raises, or sleeps and sends it again.
        if (state := self._state()) is not None and not 200 <= params.response.status < 300:
            state.set()
            if params.response.status == 429:
                task = asyncio.current_task()
                self._maybe_made[task] = self._maybe_made.get(task, 1) - 1

    async def _failed(self, _session, _context, _params) -> None:
        if (state := self._state()) is not None:
            state.set()  # nothing came back to read: discord.py raises, or sleeps and sends it again


class BackgroundStages:
    """Progress stages shown without holding up the work or its answer: reporting a stage returns
    at once, and a background task (the painter) shows the latest one, skipping those passed
    meanwhile. A newer stage, or the answer (`settle`), cancels an edit that is waiting its turn
    or sleeping through a 429; one in flight is let through (`RequestsInFlight`)."""

    def __init__(self, show: Callable[[str], Awaitable[None]], in_flight: RequestsInFlight) -> None:
        self._show = show
        self._in_flight = in_flight
        self._painter: asyncio.Task | None = None  # the one that may still show a stage
        self._painters: set[asyncio.Task] = set()  # it, and those cancelled but not yet ended
        self._latest: str | None = None  # the latest stage reported, shown or not
        self._settled = False  # the answer is coming: no stage may replace it

    def report(self, stage: str) -> None:
        if self._settled or stage == self._latest:
            return
        self._latest = stage
        painter = self._painter
        if painter is not None and not painter.done():
            if not self._in_flight.interruptible(painter):
                return  # once its edit is made or refused, it shows the latest stage
            painter.cancel()  # waiting its turn, or out the Retry-After of an older stage
        self._painter = asyncio.create_task(self._paint(), name="discord-progress")
        self._painters.add(self._painter)
        self._painter.add_done_callback(self._painters.discard)

    async def settle(self) -> None:
        """Stop showing stages; return once none can be made after what comes next (the answer)."""
        self._settled = True
        if self._painter is not None:
            await self._in_flight.until_interruptible(self._painter)
        for painter in self._painters:
            painter.cancel()
        if self._painters:
            await asyncio.wait(set(self._painters))

    async def _paint(self) -> None:
        shown = None
        while not self._settled and self._latest != shown:
            shown = self._latest
            try:
                async with shown_if_possible(shown):
                    await self._show(shown)
            except NETWORK_ERRORS as error:  # a lost stage is not worth the answer: that will still try
                log.warning("discord.progress_not_shown", extra={"stage": shown, "reason": repr(error)})
            except Exception as error:  # a bug: the answer still tries, but this must be found
                log.warning("discord.progress_not_shown", extra={"stage": shown, "reason": repr(error)},
                            exc_info=error)


class InteractionProgress:
    """The `Progress` callback for a deferred interaction: edits the "thinking" response, in the
    background (`BackgroundStages`); `settle` before the answer."""

    def __init__(self, interaction: discord.Interaction, in_flight: RequestsInFlight) -> None:
        self.interaction = interaction
        self.stages = BackgroundStages(self._edit, in_flight)

    async def __call__(self, stage: str) -> None:
        self.stages.report(stage)

    async def settle(self) -> None:
        await self.stages.settle()

    async def _edit(self, stage: str) -> None:
        await edited_original(self.interaction, content=stage)


class MessageProgress:
    """The `Progress` callback in a DM: one status message, sent on the first stage, then edited,
    in the background (`BackgroundStages`); `show` puts the answer in it. `on_sent` is told of the
    status message once sent (to be noted where the DM is kept); `take_over` uses one a run killed
    outright sent for the same DM."""

    def __init__(self, channel: discord.abc.Messageable | discord.Webhook, in_flight: RequestsInFlight, *,
                 on_sent: Callable[[discord.Message], None] | None = None) -> None:
        self.channel = channel
        self.message: discord.Message | discord.PartialMessage | SentFollowup | None = None
        self.stages = BackgroundStages(self._show_stage, in_flight)
        self.refused = False  # Discord refused a stage for the user's doing (`refuses_the_user`)
        self.on_sent = on_sent
        self._stage: str | None = None  # the stage the status message shows (None: not known)

    def take_over(self, message_id: int) -> None:
        """Show the stages and the answer in a status message sent before (by a run of the bot
        killed outright while it answered the same DM), rather than under a second one."""
        self.message = self.channel.get_partial_message(message_id)
        self._stage = None  # whatever it shows, it is edited

    async def __call__(self, stage: str) -> None:
        self.stages.report(stage)

    async def settle(self) -> None:
        await self.stages.settle()

    async def _send(self, **parts) -> discord.Message:
        return await self.channel.send(**parts)

    async def _show_stage(self, stage: str) -> None:
        if self.refused:
            return  # every stage would be refused too (the answer is still tried, and its refusal said)
        try:
            if self.message is None:
                self.message = await self._send(content=stage)
                if self.on_sent is not None:
                    self.on_sent(self.message)
            elif self._stage != stage:
                self.message = await self.message.edit(content=stage)
            self._stage = stage
        except discord.HTTPException as error:
            if not refuses_the_user(error):
                raise
            self.refused = True  # the user blocked the bot or closed their DMs: not worth a warning

    async def show(self, reply: object, *, note: str | None = None) -> None:
        """The reply in place of the status message; as a new message if there is none (its stage
        not sent, or dropped by the answer) or Discord refuses the edit (the work is done, a
        journal entry saved: the user must hear of it, not of a failure). `note`: as
        `show_in_channel`'s, not with a refusal."""
        await self.stages.settle()
        note = None if isinstance(reply, ErrorReply) else note
        if self.message is not None:
            try:
                await self.message.edit(**noted(edit_parts(reply), note))
                return
            except discord.HTTPException as error:
                log.warning("discord.status_message_not_edited", extra={"status": error.status, "code": error.code})
        await self._send(**{k: v for k, v in noted(message_parts(reply), note).items() if v is not None})


class FollowupProgress(MessageProgress):
    """`MessageProgress` for a deferred interaction's next answers (its first is the "thinking"
    response, `InteractionProgress`): each its own followup, sent on its first stage, then edited."""

    def __init__(self, interaction: discord.Interaction, in_flight: RequestsInFlight, *,
                 on_sent: Callable[[discord.Message], None] | None = None) -> None:
        super().__init__(interaction.followup, in_flight, on_sent=on_sent)

    def take_over(self, message_id: int) -> None:
        """Show the stages and the answer in a followup a run killed outright sent for the same
        answer (edited through the interaction's webhook, while its token lives)."""
        self.message = SentFollowup(self.channel, message_id)
        self._stage = None

    async def _send(self, **parts) -> discord.WebhookMessage:
        return await self.channel.send(**parts, wait=True)  # a followup is returned only when waited for

    async def show_privately(self, reply: object) -> None:
        """The reply to the asker alone (`show_privately`), and its stage gone from the channel."""
        await self.stages.settle()
        await self.channel.send(**{k: v for k, v in message_parts(reply).items() if v is not None}, ephemeral=True)
        if self.message is not None:
            try:
                await self.message.delete()
            except discord.HTTPException as error:  # it stays, showing a stage
                log.warning("discord.private_answer_not_cleared", extra={"reason": str(error)})


class SentFollowup:
    """A followup known by its id alone (sent by an earlier run), edited and deleted through the
    interaction's webhook as a `discord.WebhookMessage` is: a webhook has no partial message."""

    def __init__(self, webhook: discord.Webhook, message_id: int) -> None:
        self.webhook = webhook
        self.id = message_id

    async def edit(self, **parts) -> discord.WebhookMessage:
        return await self.webhook.edit_message(self.id, **parts)

    async def delete(self) -> None:
        await self.webhook.delete_message(self.id)


async def show_privately(interaction: discord.Interaction, reply: object) -> None:
    """Move a deferred public answer to the asker alone: in a server, a refusal ("try again in
    40 s", "no audio found") is nobody else's business, and posting each one in the channel would
    let a spammer flood it past the rate limit. Shown in place if Discord refuses the move.

    The public answer is edited before the private one is sent: Discord takes a followup sent while
    the deferred answer still shows "thinking" for the edit of that answer, public whatever its
    flags (and, that answer deleted, for an unknown message). Then the public answer goes; one deleted meanwhile
    leaves nothing to clear: the reply comes as a private followup alone (`followed_up`)."""
    try:
        if not await edited_original(interaction, content=ANSWERED_PRIVATELY, embed=None):
            await followed_up(interaction, reply, ephemeral=True)
            return
        parts = {k: v for k, v in message_parts(reply).items() if v is not None}
        await interaction.followup.send(**parts, ephemeral=True)
    except discord.HTTPException as error:
        log.warning("discord.private_answer_failed", extra={"reason": str(error)})
        await show(interaction, reply)
        return
    try:
        await interaction.delete_original_response()
    except discord.HTTPException as error:  # it stays, saying only that the answer was private
        log.warning("discord.private_answer_not_cleared", extra={"reason": str(error)})


def seen_by_others(interaction: discord.Interaction) -> bool:
    """Whether others than the asker see the interaction's channel: a server's, or, through the
    asker's own install of the app (Discord's user install), a group DM or their DM with someone
    else (the interaction's context 2, `private_channel`); not the asker's DM with the bot."""
    return interaction.guild_id is not None or interaction.context.private_channel


async def show_in_channel(interaction: discord.Interaction, reply: object, *, note: str | None = None) -> None:
    """The answer to a command deferred in public: in the channel, but a refusal (the rate limit,
    a song not found, playlists turned off) to the asker alone where others see it (`seen_by_others`,
    `show_privately`). `note`: a line shown above the answer (what was heard of what was asked), not
    with a refusal."""
    if isinstance(reply, ErrorReply) and seen_by_others(interaction):
        await show_privately(interaction, reply)
    else:
        await show(interaction, reply, note=None if isinstance(reply, ErrorReply) else note, in_public=True)


async def show_followup(interaction: discord.Interaction, progress: FollowupProgress, reply: object) -> None:
    """A next answer to a command deferred in public, as `show_in_channel` shows the first: in the
    channel, but a refusal to the asker alone where others see it."""
    if isinstance(reply, ErrorReply) and seen_by_others(interaction):
        await progress.show_privately(reply)
    else:
        await progress.show(reply)


def noted(parts: dict, note: str | None) -> dict:
    """The message parts of a reply with `note` as a line of its text (a mood's embed has none)."""
    if note:
        parts["content"] = clip("\n".join(text for text in (note, parts.get("content")) if text))
    return parts


async def edited_original(interaction: discord.Interaction, **parts) -> bool:
    """Edit the interaction's deferred response; False if it was deleted meanwhile (a moderator, or
    the asker, deleted "… is thinking"): Discord answers 404 Unknown Message, to this edit or an
    earlier one (remembered in the interaction's `extras`: a deleted response is not edited again)."""
    if interaction.extras.get(ORIGINAL_DELETED):
        return False
    try:
        await interaction.edit_original_response(**parts)
    except discord.NotFound as error:
        if error.code != UNKNOWN_MESSAGE:
            raise
        interaction.extras[ORIGINAL_DELETED] = True
        log.info("discord.deferred_answer_deleted", extra=whose(interaction.user, interaction.guild_id))
        return False
    return True


async def followed_up(interaction: discord.Interaction, reply: object, *, ephemeral: bool,
                      note: str | None = None) -> None:
    """The reply (and `note`) as a message of its own, a followup: the deferred response it was to
    replace is deleted. Discord may take the first followup for the edit of that response, which
    it still has "thinking", and answer it 404 Unknown Message too: it is sent once more (its files
    made anew: a sent one is read to its end). Not once the interaction's 15 minutes are over."""
    for _ in range(2):
        if discord.utils.utcnow() >= answerable_until(interaction):
            break
        try:
            parts = {k: v for k, v in noted(message_parts(reply), note).items() if v is not None}
            await interaction.followup.send(**parts, ephemeral=ephemeral)
            return
        except discord.NotFound as error:
            if error.code != UNKNOWN_MESSAGE:
                raise
    log.warning("discord.answer_not_delivered", extra={**whose(interaction.user, interaction.guild_id),
                                                       "reason": "its deferred response was deleted"})


async def show(interaction: discord.Interaction, reply: object, *, ephemeral: bool = False,
               note: str | None = None, in_public: bool = False) -> None:
    """Answer the interaction with the reply (and `note`, `noted`): edit the deferred response, or
    send it. A deferred response deleted meanwhile gets it as a followup (`followed_up`): public
    if the response was deferred `in_public`, else to the asker alone, as that response was."""
    if interaction.response.is_done():
        if not await edited_original(interaction, **noted(edit_parts(reply), note)):
            await followed_up(interaction, reply, ephemeral=not in_public, note=note)
    else:
        parts = {k: v for k, v in noted(message_parts(reply), note).items() if v is not None}
        await respond(interaction, **parts, ephemeral=ephemeral)
