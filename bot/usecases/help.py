"""The command list every front-end shows. Usages have no leading "/": each front-end adds its own
command prefix when it renders them (render.help_text(reply, prefix="/"))."""
from __future__ import annotations

from bot.replies import HelpReply

MOOD: tuple[str, str] = ("mood <song | Spotify link | YouTube link>", "Tell the mood of a song (or attach an audio file)")
COMMANDS: tuple[tuple[str, str], ...] = (
    MOOD,
    ("journal on <HH:MM> <Area/City>", "Get a daily prompt to answer with a song, e.g. /journal on 21:30 "
                                       "Europe/Lisbon; /journal on alone turns it back on at your saved time"),
    ("journal off", "Stop the daily prompt"),
    ("journal list [page]", "Your latest journal entries; page 2 and on go further back"),
    ("journal prompt", "Today's journal prompt now"),
    ("stats", "Your moods over time, a year in pixels and your songs on the mood map"),
    ("playlist <happy|energetic|sad|calm>", "This server's (or group's) playlist for a mood"),
    ("servermood", "This server's (or group's) mood of the week"),
    ("share on|off", "Whether your songs count in server (or group) playlists: they do until you turn it off"),
    ("serverplaylist on|off", "Admins: turn this server's (or group's) playlists and mood of the week on or off"),
    ("export", "Download everything stored about you (JSON)"),
    ("forget", "Delete everything stored about you"),
    ("help", "This list"),
)


def help_reply(extra: tuple[tuple[str, str], ...] = (), *, mood: tuple[str, str] = MOOD) -> HelpReply:
    """The command list. `extra`: a front-end's own commands, listed last; `mood`: how that front-end
    takes a song, where it differs (the console reads a file's path, Discord has a message menu)."""
    return HelpReply([mood if command is MOOD else command for command in COMMANDS] + list(extra))
