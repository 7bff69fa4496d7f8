"""Reply models -> what a Discord user sees: embeds, text within Discord's limits, files.

Discord reads message text and embeds as markdown: what users and catalogs wrote (song titles,
artist names, journal notes) is escaped before it goes in, so `__Intro__` shows as typed.
"""
from __future__ import annotations

import io
from dataclasses import replace

import discord

from bot.frontends import render
from bot.replies import (
    Chart,
    ErrorReply,
    ExportReply,
    JournalDeleteChoiceReply,
    JournalDeletedReply,
    JournalEntryView,
    JournalListReply,
    JournalSavedReply,
    MoodReply,
    PlaylistReply,
    PlaylistTrackView,
    ServerMoodReply,
    StatsReply,
)

MAX_CONTENT = 2000  # Discord's limit for a message's content
MAX_DESCRIPTION = 4096  # ... and for an embed's description
MAX_TITLE, MAX_FOOTER = 256, 2048  # ... an embed's title, and its footer's text
CACHED_FOOTER = "from the cache"
MOOD_COLOURS: dict[str, int] = {"happy": 0xF7C948, "energetic": 0xE8590C, "sad": 0x4263EB, "calm": 0x2F9E44}
# /journal list shortens long notes, then more, until the entries fit in one message.
NOTE_LIMITS = (150, 80, 40)
# A daily prompt's hint in its DM, where any next message answers it (a reply too): it said
# Telegram's "Reply to this message with a song…" (render.PROMPT_HINT), where a reply is the only way.
PROMPT_HINT = "Send me a song here: its name, a link or an audio file, and your own words on a new line if you like."
# Every hint a Discord prompt was sent with, today's first: one sent by an older version (until
# 2026-12-06, Telegram's words) is still a prompt where one is known by its text (missed.py, find_prompt).
PROMPT_HINTS = (PROMPT_HINT, render.PROMPT_HINT)


def prompt_text(phrase: str) -> str:
    """A daily prompt's DM, as sent now."""
    return render.prompt_text(phrase, PROMPT_HINT)


def shows_prompt(content: str, phrase: str | None = None) -> bool:
    """Whether a message of the bot's that reads `content` is a daily prompt, worded now or as an
    older version worded it (`PROMPT_HINTS`); with `phrase`, that day's prompt."""
    if phrase is not None:
        return any(content == render.prompt_text(phrase, hint) for hint in PROMPT_HINTS)
    return any(content.endswith(f"\n\n{hint}") for hint in PROMPT_HINTS)


def clip(text: str, limit: int = MAX_CONTENT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    return discord.utils.escape_markdown(text)


def escaped_name(name: str) -> str:
    """A song's name (a title, an artist) as Discord shows it: no link made of it
    (`render.unlinked`: a video's title, a file's name or tags are their uploader's words), then
    escaped, so that a link's underscores left unescaped read as no markdown either."""
    return escape(render.unlinked(name))


def escaped_title(title: str, artists: tuple[str, ...] | list[str]) -> str:
    return render.song_title(escaped_name(title), [escaped_name(a) for a in artists])


def mood_embed(reply: MoodReply) -> discord.Embed:
    embed = discord.Embed(
        title=clip(escaped_title(reply.title, reply.artists), MAX_TITLE),
        url=reply.spotify_url or reply.source_url,
        colour=MOOD_COLOURS.get(reply.mood),
    )
    embed.add_field(name="Mood", value=render.mood_label(reply.mood))
    embed.add_field(name="Valence / Arousal", value=f"{reply.valence:+.2f} / {reply.arousal:+.2f}")
    if reply.probabilities:  # none: told again from a journal entry, which keeps no confidence nor model
        embed.add_field(name="Confidence", value=f"{reply.confidence:.0%}")
        embed.add_field(name="Model", value=render.model_line(reply).removeprefix("Model: "), inline=False)
    if reply.spotify_url:
        embed.add_field(name="Spotify", value=reply.spotify_url, inline=False)
    if reply.art_url:
        embed.set_thumbnail(url=reply.art_url)
    if reply.album:
        embed.set_footer(text=clip(reply.album, MAX_FOOTER - len(f" · {CACHED_FOOTER}"))
                         + (f" · {CACHED_FOOTER}" if reply.cached else ""))
    elif reply.cached:
        embed.set_footer(text=CACHED_FOOTER)
    return embed


def saved_embed(reply: JournalSavedReply) -> discord.Embed:
    embed = mood_embed(reply.mood)
    embed.description = f"Saved to your journal for {reply.local_date.isoformat()}:\n{reply.phrase}"
    if reply.aside:  # it may name the song saved (ONE_SONG_A_PROMPT): shown as its name is
        embed.description += "\n" + escaped_name(reply.aside)
    if reply.queued:
        embed.description += "\n" + render.QUEUED_NOTE
    return embed


def escaped_track(track: PlaylistTrackView) -> PlaylistTrackView:
    """A playlist's song as the channel's embed shows it (`escaped_name`)."""
    return replace(track, title=escaped_name(track.title), artists=tuple(escaped_name(a) for a in track.artists))


def playlist_text(reply: PlaylistReply) -> str:
    """The embed's description: its songs, without the heading the embed's title is."""
    text = render.playlist_text(replace(reply, tracks=[escaped_track(t) for t in reply.tracks]))
    return text.split("\n", 1)[1] if reply.tracks else text


def escaped_entry(entry: JournalEntryView, note_limit: int) -> JournalEntryView:
    return replace(entry, title=escaped_name(entry.title), artists=tuple(escaped_name(a) for a in entry.artists),
                   note=escape(render.shorten(entry.note, note_limit)))


def journal_list_text(reply: JournalListReply) -> str:
    return fitted_journal_list(reply)[0]


def fitted_journal_list(reply: JournalListReply) -> tuple[str, JournalListReply]:
    """The entries with their notes shortened until all fit in a message; if even the shortest
    notes don't, the latest entries that fit (the header then counts those). Returned with the
    reply cut to the entries shown: the next page starts after the last one shown."""
    for limit in NOTE_LIMITS:
        text = render.journal_list_text(replace(reply, entries=[escaped_entry(e, limit) for e in reply.entries]))
        if len(text) <= MAX_CONTENT:
            return text, reply
    entries = [escaped_entry(e, NOTE_LIMITS[-1]) for e in reply.entries]
    while len(entries) > 1 and len(text) > MAX_CONTENT:
        entries.pop()
        text = render.journal_list_text(replace(reply, entries=entries))
    return clip(text), replace(reply, entries=reply.entries[:len(entries)])


def text_embed(title: str, text: str, mood: str | None = None) -> discord.Embed:
    return discord.Embed(title=title, description=clip(text, MAX_DESCRIPTION), colour=MOOD_COLOURS.get(mood or ""))


def chart_file(chart: Chart) -> discord.File:
    return discord.File(io.BytesIO(chart.png), filename=chart.filename, description=chart.caption or None)


def message_parts(reply: object) -> dict:
    """Keyword arguments for `send_message` / `edit_original_response` showing this reply."""
    match reply:
        case MoodReply():
            return {"content": None, "embed": mood_embed(reply)}
        case JournalSavedReply():
            return {"content": None, "embed": saved_embed(reply)}
        case PlaylistReply():
            return {"content": None, "embed": text_embed(f"{render.mood_label(reply.mood)} playlist",
                                                         playlist_text(reply), reply.mood)}
        case JournalListReply():
            return {"content": journal_list_text(reply)}
        case JournalDeletedReply():
            return {"content": clip(render.journal_deleted_text(
                replace(reply, entry=escaped_entry(reply.entry, NOTE_LIMITS[0]))))}
        case JournalDeleteChoiceReply():
            return {"content": clip(render.journal_delete_choice_text(
                replace(reply, entries=[escaped_entry(e, NOTE_LIMITS[-1]) for e in reply.entries])))}
        case ServerMoodReply():
            files = [chart_file(reply.chart)] if reply.chart is not None else []
            return {"content": clip(render.server_mood_text(reply)), "files": files}
        case StatsReply():
            return {"content": clip(reply.summary), "files": [chart_file(c) for c in reply.charts]}
        case ExportReply():
            return {"content": render.reply_text(reply),
                    "files": [discord.File(io.BytesIO(reply.data), filename=reply.filename)]}
        case ErrorReply():  # it may quote what the user typed: "I couldn't find “__x__”"; a name unlinked
            return {"content": clip(escape(render.reply_text(render.renamed(reply, render.unlinked))))}
    return {"content": clip(render.reply_text(render.renamed(reply, render.unlinked)))}


def edit_parts(reply: object) -> dict:
    """Like `message_parts`, for an edit: files become attachments, stale content/embeds go."""
    parts = message_parts(reply)
    edit: dict = {"content": parts.get("content"), "embed": parts.get("embed")}
    if parts.get("files"):
        edit["attachments"] = parts["files"]
    return edit
