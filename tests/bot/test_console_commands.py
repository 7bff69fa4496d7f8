"""How the console reads a command line: the command's name, then its words, as a person types
them (any space between them, any case), the same for every command, /quit included."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.frontends.console import TEXT_HINT, UNKNOWN_HINT
from bot.frontends.render import GENERIC_ERROR
from bot.usecases.help import JOURNAL_ALL_MEANT
from storage.models import UserRef
from tests.bot.test_console import chat
from tests.bot.test_console_pages import write_days


@pytest.mark.parametrize("space", ["\t", "\u3000", "  "])  # a tab, an input method's ideographic space, two
async def test_any_space_after_the_command_separates_it_from_its_words(db, counting, clip_paths, tmp_path, space):
    out = await chat(db, counting, tmp_path, [f"/mood{space}{clip_paths[0]}",
                                              f"/journal{space}on{space}21:30 Asia/Tokyo", "/quit"])
    assert "I don't know" not in out and "Usage:" not in out, out
    assert "Mood: " in out and len(counting.calls) == 1
    assert "Journal on: every day at 21:30 (Asia/Tokyo)" in out
    assert (await db.users.get(UserRef("console", "local"))).journal_enabled


@pytest.mark.parametrize("leave", ["/QUIT", "/Quit", "/EXIT", "/quit now"])
async def test_quit_is_read_as_every_command_is_in_any_case_and_with_words_after_it(db, counting, tmp_path, leave):
    # /MOOD and /Stats work as typed with caps lock on: /QUIT must too, not be "a command I don't know".
    out = await chat(db, counting, tmp_path, [leave, "/help"])
    assert "I don't know" not in out and out.rstrip().endswith("Bye!"), out
    assert "/journal on <HH:MM>" not in out  # /help, after the quit, was never read


@pytest.mark.parametrize("empty", ['""', "''", '"  "', "“”"])
async def test_an_empty_quoted_song_is_no_song_and_gets_the_usage_not_a_search(db, counting, clip_paths, tmp_path,
                                                                              empty):
    out = await chat(db, counting, tmp_path, [f"/mood {empty}", "/journal on 21:30 Europe/Lisbon", "/journal prompt",
                                              f"/journal answer {empty}", f"/journal answer {empty} on the bus",
                                              f"/journal answer {clip_paths[0]}", "/quit"])
    assert "Usage: /mood <song" in out and out.count("Usage: /journal answer <song") == 2, out
    assert "Finding" not in out
    assert "Saved to your journal" in out  # the prompt stayed open for a song


@pytest.mark.parametrize("folder", ["~", ".", ".."])
async def test_the_home_current_or_parent_folder_is_a_folder_not_a_song_name(db, counting, tmp_path, monkeypatch,
                                                                            folder):
    (tmp_path / "home" / "music").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "home" / "music")
    out = await chat(db, counting, tmp_path, [f"/mood {folder}", "/quit"])
    assert f"{folder} is a folder. Give me one audio file in it, e.g. /mood {folder}/song.mp3" in out, out
    assert "Finding" not in out and counting.calls == []


async def test_a_folder_of_songs_is_answered_with_a_song_in_it_to_type(db, counting, clip_paths, tmp_path):
    """An album's folder dropped on the terminal was answered "e.g. /mood <folder>/song.mp3", a file
    it does not hold: typed as said, "There is no file at …". The example is a song in it, the first
    by name (not a hidden file, an empty one, a cover picture, a subfolder), which the command then hears."""
    album = tmp_path / "My Album"
    (album / "00 Disc 2.mp3").mkdir(parents=True)  # a folder, whatever its name
    for name in ("00 cover.jpg", ".hidden.mp3", "b side.OGG", "02 Second.flac"):
        (album / name).write_bytes(b"x")
    (album / "00 cut short.mp3").touch()  # an empty file: "is empty (0 bytes)" typed as said
    (album / "01 First Song.ogg").write_bytes(clip_paths[0].read_bytes())
    out = await chat(db, counting, tmp_path, [f"/mood {album}", f"/mood {album}/01 First Song.ogg", "/quit"])
    assert f"{album} is a folder. Give me one audio file in it, e.g. /mood {album}/01 First Song.ogg\n" in out, out
    assert "🎵 01 First Song" in out and len(counting.calls) == 1


async def test_a_tilde_before_a_user_that_does_not_exist_is_no_file_not_an_error(db, counting, tmp_path):
    # "~name/…" is name's home folder: Python raises RuntimeError for a name with none (a typo, or a
    # song's name written with a tilde), which the console answered "something went wrong".
    out = await chat(db, counting, tmp_path, ["/mood ~nosuchuser/song.mp3", "/journal on 21:30 Europe/Lisbon",
                                              "/journal prompt", "/journal answer ~nosuchuser/song.mp3 on the bus",
                                              "/mood ~nosuchuser", "/quit"])
    assert GENERIC_ERROR not in out, out
    assert out.count("There is no file at ~nosuchuser/song.mp3.") == 2
    assert out.count("Finding the song") == 1  # "~nosuchuser" alone is a song's name
    assert counting.calls == []


async def test_a_backslash_before_a_letter_is_part_of_the_path_typed(db, counting, clip_paths, tmp_path):
    # Read as a shell reads it, "\s" was "s": a file named with a backslash was "no file at
    # …/backslash.ogg", and a Windows path was said back run together ("C:UsersmeMusicsong.mp3").
    # A terminal escapes a space or a quote, never a letter: that backslash is the name's own.
    import shutil

    song = tmp_path / "back\\slash.ogg"
    shutil.copy(clip_paths[0], song)
    pasted = str(song).replace("\\", "\\\\")  # as a terminal pastes it: the backslash escaped
    out = await chat(db, counting, tmp_path, [f"/mood {song}", "/journal on 21:30 Europe/Lisbon", "/journal prompt",
                                              f"/journal answer {song} on the bus", "/journal list",
                                              "/mood C:\\Users\\me\\Music\\song.mp3",
                                              f"/mood {pasted}", "/quit"])
    assert "no file" not in out.replace("There is no file at C:\\Users\\me\\Music\\song.mp3.", ""), out
    assert out.count("🎵 back\\slash\n") == 2 and "Saved to your journal" in out and len(counting.calls) == 1
    assert "back\\slash (" in out and "– on the bus" in out
    assert "There is no file at C:\\Users\\me\\Music\\song.mp3." in out


async def test_a_file_url_names_the_file_on_this_computer(db, counting, clip_paths, tmp_path):
    # A file manager's "copy" pastes a file as a URL (file:///home/me/My%20Music/a.ogg): that is
    # the file, not "a kind of link I can't open".
    import shutil
    from urllib.parse import quote

    (tmp_path / "My Music").mkdir()
    song = tmp_path / "My Music" / "rainy day.ogg"
    shutil.copy(clip_paths[0], song)
    out = await chat(db, counting, tmp_path, [f"/mood file://{quote(str(song))}",
                                              f"/mood file://localhost{quote(str(song))}",
                                              f"/mood file://{quote(str(tmp_path))}/gone.ogg", "/quit"])
    assert out.count("🎵 rainy day") == 2 and len(counting.calls) == 1, out
    assert f"There is no file at {tmp_path}/gone.ogg." in out
    assert "link" not in out and "Finding" not in out


@pytest.mark.parametrize("typed", ["'{}", '"{}', "'{}'"])
@pytest.mark.parametrize("name", ["it's here.ogg", "don't stop.ogg", "rock'n'roll.ogg"])
async def test_a_quoted_path_with_an_apostrophe_in_its_name_names_the_file(db, counting, clip_paths, tmp_path, typed,
                                                                          name):
    # An apostrophe in the name closed the opening quote (or left one open), as a shell reads it:
    # '/tmp/don't stop.ogg was "There is no file at '/tmp/don't stop.ogg", with or without its closing quote.
    import shutil

    song = tmp_path / name
    shutil.copy(clip_paths[0], song)
    out = await mood_then_answer(db, counting, tmp_path, typed.format(song), song)
    assert "no file" not in out and "Finding" not in out, out


async def mood_then_answer(db, counting, tmp_path, typed: str, song) -> str:
    """What the console says to /mood `typed` then /journal answer `typed` on the bus, and /journal
    list, checked to have heard the file `song` once and saved it with the words."""
    out = await chat(db, counting, tmp_path, [f"/mood {typed}", "/journal on 21:30 Europe/Lisbon", "/journal prompt",
                                              f"/journal answer {typed} on the bus", "/journal list", "/quit"])
    assert f"🎵 {song.stem}" in out and "Saved to your journal" in out and len(counting.calls) == 1, out
    assert f"{song.stem} (" in out and "– on the bus" in out
    return out


@pytest.mark.parametrize("quote", ["'", '"'])
async def test_a_path_whose_opening_quote_was_never_closed_names_the_file(db, counting, clip_paths, tmp_path, quote):
    # A quote typed before a path with a space and not closed: read as a shell reads it, it was no
    # path at all ("There is no file at '/…/My Music/rainy day.ogg.").
    import shutil

    (tmp_path / "My Music").mkdir()
    song = tmp_path / "My Music" / "rainy day.ogg"
    shutil.copy(clip_paths[0], song)
    out = await chat(db, counting, tmp_path, [f"/mood {quote}{song}", f"/mood {quote}{tmp_path}/gone.ogg", "/quit"])
    assert "🎵 rainy day" in out and len(counting.calls) == 1, out
    assert f"There is no file at {quote}{tmp_path}/gone.ogg." in out  # no file without it either: as typed


async def test_an_empty_file_is_said_to_be_empty_not_unreadable_audio(db, counting, tmp_path):
    # A copy or download cut short leaves a file of 0 bytes: it was "not audio we can read", after a
    # "Listening…", as a file in another format is.
    (tmp_path / "rainy day.mp3").touch()
    out = await chat(db, counting, tmp_path, [f"/mood {tmp_path}/rainy day.mp3", "/journal on 21:30 Europe/Lisbon",
                                              "/journal prompt", f"/journal answer {tmp_path}/rainy day.mp3 on the bus",
                                              "/quit"])
    assert out.count(f"{tmp_path}/rainy day.mp3 is empty (0 bytes): there is no audio in it.") == 2, out
    assert "Listening" not in out and "not audio" not in out and counting.calls == []


async def test_a_spotify_link_without_spotify_set_up_says_which_settings_to_set(db, counting, tmp_path):
    # The console's user runs the bot: "Spotify links need Spotify to be configured on this bot"
    # left them to find which settings those are.
    link = "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC"
    out = await chat(db, counting, tmp_path, [f"/mood {link}", "/journal on 21:30 Europe/Lisbon", "/journal prompt",
                                              f"/journal answer {link} on the bus", "/quit"])
    assert out.count("Spotify links need Spotify to be configured on this bot") == 2, out
    assert out.count("You run this bot: set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET") == 2
    assert counting.calls == []


async def test_share_alone_says_whether_your_songs_count_now(db, counting, tmp_path):
    # "/share" alone was its usage only: the user asking whether their songs count was not told.
    out = await chat(db, counting, tmp_path, ["/share", "/share off", "/share", "/quit"])
    assert "Sharing is on: your songs count in playlists. /share off stops it." in out, out
    assert "Sharing is off: your songs count in no playlist. /share on turns it back on." in out
    assert "Usage: /share" not in out


async def test_serverplaylist_alone_says_whether_the_playlists_are_on_now(db, counting, tmp_path):
    # "/serverplaylist" alone was its usage only, whether or not /playlist would answer.
    out = await chat(db, counting, tmp_path, ["/serverplaylist", "/serverplaylist off", "/serverplaylist", "/quit"])
    assert "This console's playlists are on. /serverplaylist off turns them and /servermood off." in out, out
    assert "This console's playlists are turned off. /serverplaylist on turns them and /servermood on." in out
    assert "Usage: /serverplaylist" not in out


async def test_playlists_turned_off_tell_the_console_user_the_command_that_turns_them_on(db, counting, tmp_path):
    # They said "An admin can turn them on", but the console's user is that admin: who, and what to type?
    out = await chat(db, counting, tmp_path, ["/serverplaylist off", "/serverplaylist", "/playlist happy",
                                              "/servermood", "/quit"])
    off = "This console's playlists are turned off. /serverplaylist on turns them and /servermood on."
    assert out.count(off) == 3, out
    assert "admin" not in out


# What GLib's g_filename_to_uri (Nautilus, GTK's file chooser) leaves unescaped in a file URL.
GLIB_URI_SAFE = "/!$&'()*+,;=:@"


@pytest.mark.parametrize("name", ["Don't Stop Me Now.ogg", "Don't Won't.ogg"])
async def test_a_file_url_with_its_apostrophes_unescaped_names_the_file(db, counting, clip_paths, tmp_path, name):
    # GNOME and GTK copy a file's URL with its apostrophes as they are: read as a shell's
    # words, an apostrophe left a quote open (or two were dropped), and the file was "a kind of
    # link I can't open".
    import shutil
    from urllib.parse import quote

    song = tmp_path / name
    shutil.copy(clip_paths[0], song)
    out = await mood_then_answer(db, counting, tmp_path, f"file://{quote(str(song), safe=GLIB_URI_SAFE)}", song)
    assert "link" not in out and "Finding" not in out and "no file" not in out, out


@pytest.mark.parametrize("link", ["ftp://example.com/song.mp3", "https://example.com/song",
                                  "https://open.spotify.com/album/1DFixLWuPkv3KT3TnV35m3"])
async def test_what_a_song_may_be_names_a_file_on_this_computer_not_an_attachment(db, counting, tmp_path, link):
    out = await chat(db, counting, tmp_path, [f"/mood {link}", "/journal on 21:30 Europe/Lisbon", "/journal prompt",
                                              f"/journal answer {link}", "/quit"])
    assert out.count("a song name, or an audio file's path on this computer.") == 2, out
    assert "attach" not in out  # a terminal has nothing to attach


# A terminal that is not UTF-8 (Latin-1, say) types "café" as b"caf\xe9": Python reads that byte as
# the lone surrogate "\udce9" (its UTF-8 mode, LANG=C.UTF-8), which no database or log can write.
LATIN1_CAFE = b"caf\xe9".decode("utf-8", "surrogateescape")


async def test_words_typed_in_a_terminal_that_is_not_utf8_are_saved_not_an_error(db, counting, clip_paths, tmp_path):
    out = await chat(db, counting, tmp_path, ["/journal on 21:30 Europe/Lisbon", "/journal prompt",
                                              f"/journal answer {clip_paths[0]} {LATIN1_CAFE} au lait", "/quit"])
    assert "Saved to your journal" in out and "went wrong on my side" not in out, out
    [entry] = (await db.journal.page(UserRef("console", "local"), 10)).entries
    assert entry.note == "caf\ufffd au lait"  # the byte no text can hold, as the replacement character


async def test_a_file_whose_name_is_not_utf8_is_heard_and_recorded(db, counting, clip_paths, tmp_path):
    import os
    import shutil

    song = tmp_path / os.fsdecode(b"caf\xe9.ogg")  # a name in Latin-1 bytes, as an old disk has it
    shutil.copy(clip_paths[0], song)
    out = await chat(db, counting, tmp_path, [f"/mood {song}", "/export", "/quit"])
    assert "🎵 caf\ufffd\n" in out and "Mood: " in out, out
    [export] = (tmp_path / "exports").iterdir()
    [request] = json.loads(export.read_text())["requests"]
    assert request["title"] == "caf\ufffd"


async def test_a_file_name_holding_terminal_controls_is_shown_without_them(db, counting, clip_paths, tmp_path):
    # A downloaded file named with an escape sequence (here: set the terminal's title, then ring):
    # printed as it is, the terminal ran it. Shown, each control is the replacement character.
    import shutil

    song = tmp_path / "x\x1b]0;pwned\x07y.ogg"
    shutil.copy(clip_paths[0], song)
    out = await chat(db, counting, tmp_path, [f"/mood {song}", f"/mood {tmp_path}/gone\x1b[2J.ogg", "/quit"])
    assert "🎵 x\ufffd]0;pwned\ufffdy\n" in out and "Mood: " in out, out
    assert f"There is no file at {tmp_path}/gone\ufffd[2J.ogg." in out
    assert "\x1b" not in out and "\x07" not in out


async def test_a_byte_that_is_not_utf8_does_not_end_a_session_read_strictly(db, counting, tmp_path):
    # Under a UTF-8 locale such as en_US.UTF-8, Python's stdin decodes strictly: the byte raised
    # in the reader, which took it for a closed stdin, and every later command was dropped.
    import io

    from bot.frontends.console import ConsoleFrontend
    from bot.usecases import build_usecases

    typed = io.TextIOWrapper(io.BytesIO(b"/playlist caf\xe9\n/journal on 21:30 Europe/Lisbon\n/quit\n"),
                             encoding="utf-8", errors="strict")
    out = io.StringIO()
    await ConsoleFrontend(build_usecases(db, counting, None), typed, out, data_dir=tmp_path).run()
    said = out.getvalue()
    assert "“caf\ufffd” isn't one of the moods I know" in said, said
    assert "Journal on: every day at 21:30 (Europe/Lisbon)" in said and said.rstrip().endswith("Bye!")


async def test_a_path_that_is_not_utf8_is_said_back_on_an_output_written_strictly(db, counting, tmp_path):
    # Under a UTF-8 locale such as en_US.UTF-8, Python's stdout encodes strictly: a path typed in
    # Latin-1 bytes, said back ("… is a folder"), raised, and the user was told "something went
    # wrong". It is written back as the bytes typed.
    import io
    import os

    from bot.frontends.console import ConsoleFrontend
    from bot.usecases import build_usecases

    folder = os.fsencode(tmp_path) + b"/caf\xe9"
    os.mkdir(folder)
    typed = io.TextIOWrapper(io.BytesIO(b"/mood " + folder + b"\n/mood " + folder + b"/gone.ogg\n/quit\n"),
                             encoding="utf-8", errors="strict")
    written = io.BytesIO()
    out = io.TextIOWrapper(written, encoding="utf-8", errors="strict", write_through=True)
    await ConsoleFrontend(build_usecases(db, counting, None), typed, out, data_dir=tmp_path).run()
    said = written.getvalue()
    assert folder + b" is a folder. Give me one audio file in it, e.g. /mood " + folder + b"/song.mp3" in said, said
    assert b"There is no file at " + folder + b"/gone.ogg." in said
    assert b"went wrong on my side" not in said and said.rstrip().endswith(b"Bye!")


async def test_a_terminal_whose_locale_is_not_utf8_gets_the_chat_not_an_encoding_error(db, counting, clip_paths,
                                                                                        tmp_path):
    # LANG=de_DE.ISO-8859-1: Python's stdin and stdout are Latin-1, which has no "—" nor emoji. The
    # greeting raised UnicodeEncodeError, and `python -m bot` stopped before the first command
    # ("moodbot stopped: 'latin-1' codec can't encode character '\u2014'"). What Latin-1 lacks is "?".
    import io

    from bot.frontends.console import ConsoleFrontend
    from bot.usecases import build_usecases

    typed = io.TextIOWrapper(io.BytesIO(f"/mood {clip_paths[0]}\n/playlist caf\xe9\n/quit\n".encode("latin-1")),
                             encoding="latin-1", errors="strict")
    written = io.BytesIO()
    out = io.TextIOWrapper(written, encoding="latin-1", errors="strict", write_through=True)
    await ConsoleFrontend(build_usecases(db, counting, None), typed, out, data_dir=tmp_path).run()
    said = written.getvalue().decode("latin-1")
    assert said.startswith("moodbot console ? type /help for the commands"), said
    assert "\nMood: ? " in said and len(counting.calls) == 1
    assert "?caf\xe9? isn't one of the moods I know" in said  # "é" is Latin-1: written as typed
    assert "went wrong on my side" not in said and said.rstrip().endswith("Bye!")


async def test_commands_piped_into_a_terminal_get_no_prompt_glued_to_their_answers(db, counting, tmp_path):
    # `printf '/help\n/quit\n' | make run` in a terminal: nobody types, the lines are not shown,
    # so a "> " before each read was glued to the next answer ("> Sharing on: …", "> Bye!").
    import io

    from bot.frontends.console import PROMPT_MARK, ConsoleFrontend
    from bot.usecases import build_usecases

    class Screen(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Screen()
    await ConsoleFrontend(build_usecases(db, counting, None), io.StringIO("/share on\n/quit\n"), out,
                          data_dir=tmp_path).run()
    said = out.getvalue()
    assert "Sharing on" in said and said.rstrip().endswith("Bye!"), said
    assert PROMPT_MARK not in said


@pytest.mark.parametrize("quoted", [False, True])
async def test_a_long_pasted_note_after_a_file_is_saved_without_holding_the_bot(db, counting, clip_paths, tmp_path,
                                                                              quoted):
    # Which leading words name the file was looked for among every run of them, each split as a
    # shell would: 4 000 words took 15 s, with the event loop (prompts, Ctrl-C, SIGTERM) held.
    import shlex
    import time

    song = shlex.quote(str(clip_paths[0])) if quoted else str(clip_paths[0])
    note = " ".join(["la"] * 10_000)
    started = time.monotonic()
    out = await chat(db, counting, tmp_path, ["/journal on 21:30 Europe/Lisbon", "/journal prompt",
                                              f"/journal answer {song} {note}", "/quit"])
    assert "Saved to your journal" in out, out[-500:]
    assert time.monotonic() - started < 15  # the clip heard, the database written: not minutes of splitting
    [entry] = (await db.journal.page(UserRef("console", "local"), 10)).entries
    assert entry.note == note


@pytest.mark.parametrize("typed, meant", [("/moood Creep", "/mood"), ("/journl list", "/journal"), ("/stat", "/stats"),
                                          ("/Exprot", "/export"), ("/halp", "/help"), ("/quti", "/quit"),
                                          # Words people use for a command (help.COMMAND_SYNONYMS): "I don't know that one".
                                          ("/charts", "/stats"), ("/Statistics", "/stats"), ("/history 2", "/journal list"),
                                          ("/list", "/journal list"), ("/download", "/export"),
                                          ("/delete Dec 5", "/journal delete")])
async def test_a_mistyped_command_is_answered_with_the_one_meant(db, counting, tmp_path, typed, meant):
    out = await chat(db, counting, tmp_path, [typed, "/quit"])
    assert f"I don't know {typed.split()[0]}. Did you mean {meant}? Type /help for the commands." in out, out
    assert counting.calls == [] and "Finding" not in out  # said, not run


@pytest.mark.parametrize("typed, meant", [("mood Creep", "/mood Creep"), ("journal list", "/journal list")])
async def test_a_command_typed_without_its_slash_is_answered_with_it(db, counting, tmp_path, typed, meant):
    out = await chat(db, counting, tmp_path, [typed, "/quit"])
    assert f"Commands start with a slash: did you mean {meant}?" in out, out


@pytest.mark.parametrize("before", ["\ufeff", "\u200b", "\ufeff\u200b "])
async def test_a_command_after_an_invisible_mark_is_that_command(db, counting, tmp_path, before):
    # A commands file saved with a byte-order mark (`make run < commands.txt`), a zero-width space
    # pasted with a command: the first command was "no command", answered with the hint.
    out = await chat(db, counting, tmp_path, [f"{before}/share off", f"{before}/QUIT"])
    assert "Sharing off" in out and out.rstrip().endswith("Bye!"), out
    assert TEXT_HINT not in out and "slash" not in out


async def test_a_full_width_slash_as_an_input_method_types_it_starts_a_command(db, counting, tmp_path):
    # A Chinese or Japanese input method in full-width mode types "／" for "/", as it types "２" for 2.
    out = await chat(db, counting, tmp_path, ["／share off", "／journal on 21:30 Asia/Tokyo", "／quit", "/help"])
    assert "Sharing off" in out and "Journal on: every day at 21:30 (Asia/Tokyo)" in out, out
    assert out.rstrip().endswith("Bye!") and TEXT_HINT not in out


async def test_a_command_typed_in_full_width_letters_is_that_command(db, counting, tmp_path):
    # The same input method's full-width mode types the letters so too ("ｍｏｏｄ"): with "／" read
    # as "/", the command was "one I don't know", with no hint of which.
    out = await chat(db, counting, tmp_path, ["／ｓｈａｒｅ off", "／ｊｏｕｒｎａｌ ｏｎ 21:30 Asia/Tokyo", "/ｊｏｕｒｎａｌ ｌｉｓｔ",
                                              "／ｑｕｉｔ", "/help"])
    assert "Sharing off" in out and "Journal on: every day at 21:30 (Asia/Tokyo)" in out, out
    assert "Your journal is empty" in out and "I don't know" not in out and "Usage" not in out
    assert out.rstrip().endswith("Bye!")


async def test_a_path_typed_alone_is_told_to_follow_mood_not_an_unknown_command(db, counting, clip_paths, tmp_path):
    # A file dropped on the terminal pastes its path; Enter before typing /mood: a path starting
    # with "/" was "I don't know that one", as if it were a command misspelt.
    import shutil

    (tmp_path / "My Music").mkdir()
    song = tmp_path / "My Music" / "rainy day.ogg"
    shutil.copy(clip_paths[0], song)
    typed = [str(song), f"'{song}' ", f"{tmp_path}/gone.ogg", f"{tmp_path}/My Music", "/moood", "/quit"]
    out = await chat(db, counting, tmp_path, typed)
    for path in (song, f"'{song}'", f"{tmp_path}/gone.ogg", f"{tmp_path}/My Music"):
        assert f"To hear a file's mood, type /mood before its path: /mood {path} (to answer your journal " in out, out
    assert out.count("I don't know") == 1 and "Did you mean /mood?" in out  # /moood is a command misspelt
    assert counting.calls == []


async def test_help_names_the_folders_files_are_saved_in_as_the_saved_lines_do(db, counting, tmp_path, monkeypatch):
    """With DATA_DIR as it is by default, ./data, /help said "saved as pictures in data/charts",
    relative to a folder it did not name, while "saved: /home/me/moodbot/data/exports/…" under an
    /export names it whole: /help does too."""
    monkeypatch.chdir(tmp_path)
    out = await chat(db, counting, Path("data"), ["/help", "/export", "/quit"])
    assert f"saved as pictures in {tmp_path}/data/charts\n" in out, out
    assert f"as a JSON file in {tmp_path}/data/exports\n" in out and f"  saved: {tmp_path}/data/exports/" in out


@pytest.mark.parametrize("command", ["/mood", "/journal answer"])
async def test_a_path_longer_than_a_file_s_name_can_be_is_told_why_it_cannot_be_opened(db, counting, tmp_path, command):
    """A name longer than a file system takes (255 bytes) was "I can't open <path>.", with no why,
    where a file the user may not read is told "Permission denied"."""
    path = f"{tmp_path}/{'a' * 300}.mp3"
    out = await chat(db, counting, tmp_path, ["/journal on 21:30 Europe/Lisbon", "/journal prompt", f"{command} {path}",
                                              "/quit"])
    assert f"I can't open {path}: File name too long." in out, out
    assert counting.calls == [] and "Finding" not in out


async def test_a_command_with_a_mark_after_its_name_is_that_command(db, counting, tmp_path):
    """'/help.' (a full stop a phone or a habit adds) was "I don't know /help.. Did you mean /help?",
    '/journal off.' "Did you mean /journal off?": Telegram reads a command's name up to the first
    mark, so '/help.' is /help there. The console reads it so too."""
    out = await chat(db, counting, tmp_path, ["/help.", "/journal on 21:30 Europe/Lisbon", "/journal off.",
                                              "/stats?", "/quit.", "/help"])
    assert "I don't know" not in out and "Did you mean" not in out and "..\n" not in out, out
    assert "/forget – Delete everything stored about you" in out
    assert "Journal off: no more daily prompts." in out and "Your journal is empty so far." in out
    assert out.rstrip().endswith("Bye!")
    out = await chat(db, counting, tmp_path, ["/moood.", "/q!", "/?", "/quit"])
    assert "I don't know /moood. Did you mean /mood?" in out and "I don't know /q. Did you mean /quit?" in out, out
    assert "I don't know /?. Did you mean /help?" in out


async def test_a_usage_s_placeholder_typed_as_it_is_is_no_song_to_search_for(db, counting, tmp_path):
    """'/mood <song>', the help's line typed as it reads, was searched for a song called "<song>" (and
    '/journal answer <song>' saved whichever one that found to the journal): it names no song, and is
    told what goes in its place. A song's name typed in angle brackets is still that song."""
    out = await chat(db, counting, tmp_path, [
        "/journal on 21:30 Europe/Lisbon", "/journal prompt", "/mood <song>",
        "/mood <song | Spotify link | YouTube link | path/to/song.mp3>", "/mood <Song or path/to/song.mp3>",
        "/journal answer <song> [your words]", "/journal answer <song or link>", "/journal", "/mood <Radiohead - Creep>",
        "/quit"])
    said = out.split("\n")
    assert said.count("“<song>” stands for a song: type its name, its Spotify or YouTube link, or an audio file's "
                      "path in its place, e.g. /mood Radiohead - Creep") == 1, out
    assert sum("stands for a song" in line and "e.g. /mood Radiohead - Creep" in line for line in said) == 3
    assert sum("stands for a song" in line and 'e.g. /journal answer "Radiohead - Creep" on the bus' in line
               for line in said) == 2
    assert "Today's prompt is open" in out and "Saved to your journal" not in out
    assert out.count("Finding the song") == 1 and "“<Radiohead - Creep>” stands for" not in out


async def test_a_song_s_link_pasted_alone_is_told_to_follow_mood(db, counting, tmp_path):
    """A YouTube or Spotify link pasted alone got the hint for any words, "type /mood <song or
    path/to/song.mp3>", where a file's path alone gets the command to type (and Telegram's private
    chat, a link alone): the command with the link. A link /mood does not read keeps the hint."""
    links = ["https://youtu.be/XFkzRNyygfk", " https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC ",
             "https://www.youtube.com/watch?v=XFkzRNyygfk&t=42"]
    out = await chat(db, counting, tmp_path, [*links, "https://example.com/song", "https://youtu.be/x y", "/quit"])
    for link in links:
        assert (f"To hear that song's mood, type /mood before its link: /mood {link.strip()} (to answer your "
                f"journal prompt with it: /journal answer <link>)") in out, out
    assert out.count(TEXT_HINT) == 2 and counting.calls == []


@pytest.mark.parametrize("typed", ["Creep", "hello there", "/dance", "/"])
async def test_words_that_are_no_command_get_the_hint_they_need(db, counting, tmp_path, typed):
    out = await chat(db, counting, tmp_path, [typed, "/quit"])
    said = TEXT_HINT if not typed.startswith("/") else UNKNOWN_HINT
    assert said in out and "Did you mean" not in out and "did you mean" not in out, out


@pytest.mark.parametrize("command", ["/mood", "/journal answer"])
async def test_a_long_paste_opening_a_quote_is_answered_without_holding_the_bot(db, counting, tmp_path, command):
    # No path is this long, so it is not read as a shell would: a quote left open made that read
    # take 18 s for 900 000 characters (the word grows a character at a time), the event loop held.
    import time

    started = time.monotonic()
    out = await chat(db, counting, tmp_path, [f"{command} https://example.com/a '{'la ' * 300_000}", "/quit"])
    assert time.monotonic() - started < 5, out[-300:]
    said = "I can't open links to example.com" if command == "/mood" else "There's no open journal prompt"
    assert said in out and out.rstrip().endswith("Bye!")


async def test_a_playlist_of_two_moods_is_refused_with_the_usage(db, counting, tmp_path):
    out = await chat(db, counting, tmp_path, ["/playlist happy sad", "/quit"])
    assert "One mood at a time: /playlist <happy|energetic|sad|calm>." in out and "Happy playlist" not in out, out


@pytest.mark.parametrize("typed, ends", [
    ("/journal on 21:30 " + "Z" * 5000, "or a whole-hour offset such as UTC+2."),
    ("/playlist " + "h" * 5000, "isn't one of the moods I know: happy, energetic, sad, calm."),
])
async def test_a_long_word_quoted_back_is_cut_short_before_what_the_reply_says(db, counting, tmp_path, typed, ends):
    # Quoted whole, a pasted word filled the reply, and a chat that cuts a long message (Telegram
    # at 4 096 characters) cut what it says instead.
    out = await chat(db, counting, tmp_path, [typed, "/quit"])
    [reply] = [line for line in out.splitlines() if line.endswith(ends)]
    assert len(reply) < 400 and "…”" in reply, reply[:300]


async def test_a_playlist_longer_than_its_twenty_songs_says_how_many_more(db, counting, tmp_path):
    from tests.bot.test_server_playlists import songs_asked

    await songs_asked(db, "console:local", "local", 25, "sad")
    out = await chat(db, counting, tmp_path, ["/playlist sad", "/quit"])
    # one user's songs: none is picked by more members than another
    more = "…and 5 more not shown (the latest picked come first)."
    assert f"\n20. Artist – Sad song 19 https://open.spotify.com/track/sad19\n{more}\n" in out, out


async def test_a_journal_word_it_does_not_take_is_answered_with_the_nearest_it_does(db, counting, tmp_path):
    """'/journal stop', '/journal show', '/journal start 21:30 …' were the usage alone; each is now
    the sub-command meant, as a mistyped command is, and nothing runs. '/journal answr' (the
    console's own 'answer') too."""
    out = await chat(db, counting, tmp_path, ["/journal stop", "/journal show 2", "/journal start 21:30 Europe/Lisbon",
                                              "/journal answr Creep", "/journal delete-all", "/quit"])
    for meant in ("/journal off?", "/journal list 2?", "/journal on 21:30 Europe/Lisbon?", "/journal answer Creep?"):
        assert f"Did you mean {meant}" in out, out
    assert JOURNAL_ALL_MEANT in out and "Usage: /journal" not in out
    assert await db.users.get(UserRef("console", "local")) is None


async def test_words_after_stats_or_export_are_said_to_be_left_aside(db, counting, tmp_path):
    # '/stats last month' and '/export csv' answered as '/stats' and '/export' with no word of it: the
    # user took the whole journal's charts for last month's, the JSON file for a CSV.
    await write_days(db, 3)
    out = await chat(db, counting, tmp_path, ["/stats last month", "/export csv", "/stats", "/export", "/quit"])
    assert out.count("/stats takes no words, so “last month” was left aside: these are of your whole journal. "
                     "/journal list <month> lists a month's entries, e.g. /journal list December.") == 1
    assert out.count("/export takes no words, so “csv” was left aside: the file holds everything, as JSON.") == 1
    assert out.count("left aside") == 2  # not under the /stats and /export typed alone
