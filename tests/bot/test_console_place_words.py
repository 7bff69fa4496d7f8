"""The console is one person's session, not a server or a group: its playlists and mood of the week are
of the songs asked about in it (as /help says). What it says of them, of /share and of /forget names
this console, never "every server", "server playlists", "members"; Discord and Telegram keep theirs."""
from __future__ import annotations

import io
import re

from bot.frontends.console import ConsoleFrontend
from bot.replies import TextReply
from bot.usecases.privacy import FORGET_CUT_SHORT
from tests.bot.test_console import chat

# A server's or group's word, as a word: the commands /serverplaylist and /servermood are not one.
PLACE_WORDING = re.compile(r"\b(servers?|groups?|members?|nobody)\b", re.IGNORECASE)


async def test_forget_playlists_and_sharing_speak_of_this_console(db, counting, tmp_path):
    out = await chat(db, counting, tmp_path, [
        "/forget", "n", "/serverplaylist", "/serverplaylist off", "/serverplaylist", "/playlist calm",
        "/servermood", "/serverplaylist on", "/servermood", "/share off", "/share on", "/quit"])
    assert PLACE_WORDING.findall(out) == [], out
    assert ("This deletes everything I store about you: your settings, your journal entries, the songs you "
            "asked about and the prompts I sent you, and it stops your daily prompt. A /share off goes too: "
            "songs you ask about afterwards count in this console's playlists unless you say it again.") in out
    assert "This console's playlists are on. /serverplaylist off turns them and /servermood off." in out
    assert "This console's playlists are off: /playlist and /servermood won't answer here." in out
    # /serverplaylist, /playlist and /servermood while they are off
    assert out.count("This console's playlists are turned off. /serverplaylist on turns them and /servermood on.") == 3
    assert "This console's playlists are on.\n" in out
    assert "No song was classified or journaled here in the last 7 days. Try /mood!" in out
    assert "Sharing off: your songs no longer count in this console's playlists." in out
    assert "Sharing on: your songs count in this console's playlists." in out


async def test_the_mood_of_the_week_counts_one_vote_a_song(db, counting, clip_paths, tmp_path):
    out = await chat(db, counting, tmp_path, [f"/mood {clip_paths[0]}", "/servermood", "/quit"])
    assert re.search(r"This week's mood here: .+\n\(the last 7 days, one vote per song: \w+ 1\)", out), out
    said = [line for line in out.splitlines() if not line.lstrip().startswith("chart: ")]  # its file: …-server-mood.png
    assert PLACE_WORDING.findall("\n".join(said)) == []


def test_a_forget_cut_short_names_this_console_s_playlists(tmp_path):
    out = io.StringIO()
    console = ConsoleFrontend(usecases=None, stdin=io.StringIO(), stdout=out, data_dir=tmp_path)
    console.show(TextReply(f"The database is not answering. {FORGET_CUT_SHORT}"))
    assert out.getvalue() == ("The database is not answering. I couldn't delete everything: your daily prompt is stopped and "
                   "your songs no longer count in this console's playlists, but some of your data is still "
                   "stored; please try /forget again.\n")


async def test_the_mood_of_the_week_with_sharing_off_says_the_user_s_songs_are_left_out(db, counting, clip_paths,
                                                                                      tmp_path):
    """The console's one user asked for a song's mood, then sent /share off: /servermood said "No song
    was classified or journaled here in the last 7 days. Try /mood!", of a song asked a moment ago.
    It says why, as /playlist does, and how to count them."""
    out = await chat(db, counting, tmp_path, [f"/mood {clip_paths[0]}", "/share off", "/servermood", "/share on",
                                              "/servermood", "/quit"])
    off, on = out.split("Sharing off: ", 1)[1].split("Sharing on: ", 1)
    assert ("No song was classified or journaled here in the last 7 days. Try /mood!\n"
            "Your own songs are left out: your sharing is off. /share on counts them.") in off, out
    assert "This week's mood here: " in on and "left out" not in on, out
