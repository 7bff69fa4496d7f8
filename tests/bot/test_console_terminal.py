"""The console as a person in a terminal has it: `python -m bot` on a pseudo-terminal (the embedded
database, no tokens) edits the line being typed and recalls this session's commands with the arrow
keys, a journal prompt that comes while a line is typed is printed above that line, and Ctrl-C ends
the session as a shell expects (exit status 130, the database stopped, the terminal's modes as they
were)."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import unicodedata
import zoneinfo
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.frontends.console import PROMPT_MARK, _above_the_typed_line
from tests.bot.test_console import console_env, moodbot_processes

SIGINT_STATUS = 128 + signal.SIGINT  # what a shell reports for a command ended by Ctrl-C
UP, LEFT = "\x1b[A", "\x1b[D"  # what a terminal sends for the arrow keys
HELP_LINE = "/quit – Leave moodbot"  # the last line of /help
HELP_INTRO = "moodbot tells the mood of a song"  # its first
FORGET_QUESTION = "Delete everything? [y/N] "
PROMPT_SIGN = "📝"  # the first mark of a journal prompt the scheduler sends
# A control sequence: its parameters, then the letter that says what it does ("K" erases the line).
CONTROL_SEQUENCE = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z@])")
# What moves the cursor or erases: control sequences, carriage return, line feed, backspace.
TERMINAL_CONTROLS = re.compile(r"(\x1b\[[0-9;?]*[A-Za-z@]|[\r\n\b])")
COLUMNS, LINES = 80, 24  # a terminal's size, unless a test says another


def width(character: str) -> int:
    """The columns a terminal gives `character`: two for a wide (East Asian) one, none for a combining one."""
    if unicodedata.combining(character):
        return 0
    return 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1


def rows(screen: str, columns: int = COLUMNS) -> list[str]:
    """The rows a terminal `columns` wide shows for `screen`, as far as the console writes them: a
    character past the row's end goes to the next row's start, a carriage return goes back to the
    row's start, a line feed down a row (in the same column), a backspace one column left;
    "\x1b[<n>A" moves up, "\x1b[<n>C" right, "\x1b[<n>@" makes room, "\x1b[K" erases to the
    row's end and "\x1b[J" to the screen's; other control sequences move nothing. A wide
    character takes two places (the second one "")."""
    shown, row, column = [[]], 0, 0

    def pad(cells: list) -> list:
        return cells + [" "] * (column - len(cells))

    for part in TERMINAL_CONTROLS.split(screen):
        if part == "\r":
            column = 0
        elif part == "\n":
            row += 1
            shown += [[] for _ in range(row + 1 - len(shown))]
        elif part == "\b":
            column = max(min(column, columns - 1) - 1, 0)
        elif (control := CONTROL_SEQUENCE.fullmatch(part)) is not None:
            count = int(control[1]) if control[1].isdigit() else 1
            if control[2] == "K" and control[1] in ("", "0"):
                shown[row] = shown[row][:column]
            elif control[2] == "J" and control[1] in ("", "0"):
                shown[row], shown[row + 1:] = shown[row][:column], []
            elif control[2] == "A":
                row = max(row - count, 0)
            elif control[2] == "C":
                column = min(column + count, columns - 1)
            elif control[2] == "@":
                shown[row] = (pad(shown[row][:column]) + [" "] * count + shown[row][column:])[:columns]
        else:
            for character in part:
                if column + width(character) > columns:  # the row is full: on at the next one's start
                    row, column = row + 1, 0
                    shown += [[] for _ in range(row + 1 - len(shown))]
                cells = pad(shown[row])
                cells[column:column + width(character)] = [character] + [""] * (width(character) - 1)
                shown[row] = cells
                column += width(character)
    return ["".join(cells) for cells in shown]


def test_a_half_line_filling_its_row_is_erased_whole_when_a_message_comes():
    """A half line exactly as wide as the terminal: readline has put its cursor on the next row
    (with a blank it takes back), so the message erases from the row above, not just the empty one."""
    typed = "x" * 38
    readline_showed = f"earlier answer\r\n{PROMPT_MARK}{typed} \r"
    screen = readline_showed + _above_the_typed_line("hi\r\n", PROMPT_MARK, typed, len(typed), 40)
    assert rows(screen, 40) == ["earlier answer", "hi", PROMPT_MARK + typed, ""]


# 37 x's after "> " leave one column of a 40-column row: the wide character does not fit there, and
# the terminal (and readline, which pads that column) puts it at the next row's start.
WIDE_AT_THE_EDGE = "x" * 37 + "音" + "x" * 38  # the second row full too: 2 + 38 columns


def test_a_wide_character_wrapped_early_is_counted_as_the_rows_show_it():
    """The column a wide character leaves empty at a row's end counts: the half line, whose second
    row is full, is erased from its first row (not left above the message), and the full row is
    wrapped after the redraw, as readline expects."""
    typed = WIDE_AT_THE_EDGE
    readline_showed = f"earlier answer\r\n{PROMPT_MARK}{typed} \r"
    screen = readline_showed + _above_the_typed_line("hi\r\n", PROMPT_MARK, typed, len(typed), 40)
    assert rows(screen, 40) == ["earlier answer", "hi", PROMPT_MARK + "x" * 37, "音" + "x" * 38, ""]


def test_the_cursor_after_a_wide_character_wrapped_early_is_put_back_where_it_was():
    """The cursor moved back into the second row, after the wide character that wrapped early: it
    is put back on that character's row, at its column, so the next letter typed lands there."""
    typed = WIDE_AT_THE_EDGE
    # Readline's cursor, as a terminal on this machine showed it, where the typed part ends; before
    # 音 that is the first row's empty last column (a letter typed there goes in, and 音 wraps on).
    cases = {len(typed) - 5: "over", 38: "over", 10: "over", 37: "beside"}  # in the second row, after 音, first row, 音
    for cursor, lands in cases.items():
        readline_showed = f"{PROMPT_MARK}{typed[:cursor]}"
        screen = readline_showed + _above_the_typed_line("hi\r\n", PROMPT_MARK, typed, cursor, 40) + "Y"
        shown = rows(screen, 40)
        after = typed[cursor + 1:] if lands == "over" else typed[cursor:]
        assert shown[0] == "hi" and "".join(shown[1:]) == PROMPT_MARK + typed[:cursor] + "Y" + after, (cursor, shown)


# A time zone of the test's own, in a zone folder put first on the bot's PYTHONTZPATH: its offset
# from UTC in seconds, chosen as the test goes, has its next whole minute come when the test wants.
SOON_ZONE = "Test/Soon"


def tzif(offset_s: int) -> bytes:
    """A zone file (TZif, version 2: RFC 8536) of one offset from UTC all the time, `offset_s` seconds east."""
    designation = b"TST\0"
    header = b"TZif2" + bytes(15) + struct.pack(">6l", 0, 0, 0, 0, 1, len(designation))  # one type, no transitions
    data = struct.pack(">lBB", offset_s, 0, 0) + designation
    sign, size = "-" if offset_s >= 0 else "+", abs(offset_s)  # POSIX TZ counts west as positive
    footer = f"\n<TST>{sign}{size // 3600}:{size % 3600 // 60:02d}:{size % 60:02d}\n".encode()
    return header + data + header + data + footer  # the 32-bit block, then the 64-bit one


def soon_zone_env(env: dict[str, str], folder: Path) -> dict[str, str]:
    """`env` with SOON_ZONE's folder first on the zone path (the zone listed from the start; its
    offset is set by `minute_in_soon_zone` before the bot reads it)."""
    (folder / SOON_ZONE).parent.mkdir(parents=True, exist_ok=True)
    (folder / SOON_ZONE).write_bytes(tzif(0))
    return {**env, "PYTHONTZPATH": os.pathsep.join([str(folder), *zoneinfo.TZPATH])}


def minute_in_soon_zone(folder: Path, margin_s: float = 10) -> tuple[datetime, datetime]:
    """A daily prompt time that comes `margin_s` from now (to the next whole second), not a minute
    boundary up to 65 s away: SOON_ZONE's offset made such that it is a whole minute there. That
    instant in UTC, and the time there."""
    now = datetime.now(timezone.utc)
    due = (now + timedelta(seconds=margin_s + 1)).replace(microsecond=0)
    offset = (60 - due.second) % 60
    (folder / SOON_ZONE).write_bytes(tzif(offset))
    return due, (due + timedelta(seconds=offset)).replace(tzinfo=None)


class Terminal:
    """`python -m bot` with a pseudo-terminal as its stdin, stdout and stderr, typed into as a
    person types."""

    def __init__(self, cwd, env, columns: int = COLUMNS, python_args: tuple[str, ...] = ("-m", "bot")) -> None:
        self.master, slave = pty.openpty()
        self.columns = columns
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, columns, 0, 0))
        env = {**env, "TERM": "xterm"}  # a terminal that wraps long lines: no "dumb" one's scrolling
        self.proc = subprocess.Popen([sys.executable, *python_args], stdin=slave, stdout=slave, stderr=slave,
                                     cwd=cwd, env=env, start_new_session=True, preexec_fn=self._controlled)
        os.close(slave)
        self.seen = b""

    @staticmethod
    def _controlled() -> None:
        """The terminal becomes the bot's own (its new session's), so Ctrl-C typed into it is a SIGINT."""
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    def read_until(self, text: str, count: int = 1, timeout: float = 60) -> str:
        """All the terminal showed, once it shows `text` `count` times."""
        return self._read_while(lambda: self.screen().count(text) < count, f"{text!r} x{count}", timeout)

    def read_until_row(self, row: str, timeout: float = 10) -> list[str]:
        """The rows the terminal shows, once the last of them (the cursor's) is `row`."""
        return self.read_until_rows([row], timeout)

    def read_until_rows(self, last: list[str], timeout: float = 10, since: int = 0) -> list[str]:
        """The rows the terminal shows (of what it showed after its first `since` characters), once
        the last of them (the cursor's the last one) are `last`."""
        self._read_while(lambda: rows(self.screen()[since:], self.columns)[-len(last):] != last,
                         f"the rows {last!r}", timeout)
        return rows(self.screen()[since:], self.columns)

    def _read_while(self, waiting, what: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while waiting():
            assert time.monotonic() < deadline, f"{what} not shown: {self.screen()!r}"
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.master, 65536)
                except OSError:  # the bot is gone: it closed the terminal
                    break
        return self.screen()

    def screen(self) -> str:
        return self.seen.decode("utf-8", "replace")

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def quit(self) -> None:
        """/quit typed: the bot says goodbye and exits 0."""
        self.type("/quit\r")
        self.read_until("Bye!")
        assert self.proc.wait(60) == 0

    def hang_up(self) -> None:
        """The terminal closed (its window, an ssh session lost): the bot's session gets SIGHUP,
        and its reads and writes there fail from then on."""
        os.close(self.master)
        self.master = None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # let it stop its embedded database
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.master is not None:
            os.close(self.master)


def test_in_a_terminal_the_up_arrow_runs_the_last_command_again(tmp_path):
    data_dir = tmp_path / "data"
    terminal = Terminal(tmp_path, console_env(data_dir))
    try:
        terminal.read_until(PROMPT_MARK)
        terminal.type("/help\r")
        terminal.read_until(f"{HELP_LINE}\r\n{PROMPT_MARK}")  # the answer, and the prompt for the next line
        terminal.type(UP + "\r")  # the line typed before, recalled
        screen = terminal.read_until(HELP_LINE, count=2, timeout=20)
        assert "^[[A" not in screen and "I don't know" not in screen, screen
        # An answer to /forget's question is no command: the up arrow skips it.
        terminal.read_until(f"{HELP_LINE}\r\n{PROMPT_MARK}", count=2)
        terminal.type("/forget\r")
        terminal.read_until(FORGET_QUESTION)
        terminal.type("n\r")
        terminal.read_until(f"Nothing was deleted.\r\n{PROMPT_MARK}")
        terminal.type(UP + "\r")
        terminal.read_until(FORGET_QUESTION, count=2, timeout=20)
        terminal.type("n\r")
        terminal.read_until("Nothing was deleted.", count=2)
        terminal.quit()
    finally:
        terminal.close()
    assert moodbot_processes(str(data_dir)) == []


def test_in_a_terminal_a_line_is_edited_in_its_middle_with_the_left_arrow(tmp_path):
    data_dir = tmp_path / "data"
    terminal = Terminal(tmp_path, console_env(data_dir))
    try:
        terminal.read_until(PROMPT_MARK)
        terminal.type("/hep" + LEFT + "l\r")  # a letter left out, put back before the last one
        screen = terminal.read_until(HELP_LINE, timeout=20)
        assert "I don't know" not in screen, screen
    finally:
        terminal.close()
    assert moodbot_processes(str(data_dir)) == []


def test_ctrl_c_at_the_terminal_prompt_exits_130_and_gives_the_terminal_back_as_it_was(tmp_path):
    """The line editor takes the terminal out of its line mode while it reads: a shell after the
    bot must find it echoing and reading lines again."""
    data_dir = tmp_path / "data"
    terminal = Terminal(tmp_path, console_env(data_dir))
    try:
        before = termios.tcgetattr(terminal.master)
        terminal.read_until(PROMPT_MARK)
        terminal.type("/hel")  # half a line, being edited
        time.sleep(0.5)
        terminal.type("\x03")  # Ctrl-C, as the terminal sends it to the bot
        assert terminal.proc.wait(60) == SIGINT_STATUS, terminal.screen()
        after = termios.tcgetattr(terminal.master)
        assert after[3] & (termios.ICANON | termios.ECHO) == before[3] & (termios.ICANON | termios.ECHO)
        assert after == before
        assert "Traceback" not in terminal.screen()
    finally:
        terminal.close()
    assert moodbot_processes(str(data_dir)) == []


def test_the_terminal_closed_under_the_console_stops_it_as_a_hang_up_with_nothing_failed(tmp_path):
    """SIGHUP's default killed the bot outright; heard as a stop, the console's goodbye to a
    terminal gone failed it ("app.failed … OSError: [Errno 5] Input/output error" and its
    traceback in moodbot.log, exit status 1). It stops with 129 (128 + SIGHUP), its database too."""
    data_dir = tmp_path / "data"
    terminal = Terminal(tmp_path, console_env(data_dir))
    try:
        terminal.read_until(PROMPT_MARK)
        terminal.type("/hel")  # half a line, being edited
        time.sleep(0.5)
        terminal.hang_up()
        assert terminal.proc.wait(60) == 128 + signal.SIGHUP
    finally:
        terminal.close()
    log = (data_dir / "moodbot.log").read_text()
    assert "event=app.stopping" in log and "Traceback" not in log and "level=ERROR" not in log, log[-3000:]
    assert moodbot_processes(str(data_dir)) == []


def test_a_journal_prompt_arriving_while_a_line_is_typed_is_printed_above_it(tmp_path):
    """The scheduler's prompt comes while the user is halfway through a line longer than the
    terminal is wide (two rows of a 40-column terminal, wide characters in it), the cursor moved
    back into it: the half line is not left with the prompt glued after it, nor its first row left
    above it; the prompt is printed on its own rows, the "> " and the half line's two rows under
    it, and typing goes on where the cursor was, to run the whole command. One case only: it waits
    for a real prompt time to come round, in a zone of its own whose minute starts 10 s after the
    command (SOON_ZONE; the next minute in UTC was 5-65 s away); the cursor moved back covers the
    cursor at the end too (redrawn the same, then moved)."""
    columns = 40
    # "> /help 音楽 " and 27 x's fill the first row (the two wide characters take 4 columns).
    first_row, second_row = f"{PROMPT_MARK}/help 音楽 " + "x" * 27, "x" * 13 + "z"
    half, rest = first_row.removeprefix(PROMPT_MARK) + second_row + LEFT, "y"
    data_dir = tmp_path / "data"
    zones = tmp_path / "zoneinfo"
    terminal = Terminal(tmp_path, soon_zone_env(console_env(data_dir), zones), columns=columns)
    try:
        terminal.read_until(PROMPT_MARK)
        due, there = minute_in_soon_zone(zones)
        terminal.type(f"/journal on {there:%H:%M} {SOON_ZONE}\r")
        terminal.read_until("Journal on:")
        terminal.read_until(f"\r\n{PROMPT_MARK}", count=2)  # the reply, and the prompt for the next line
        terminal.type(half)  # half a line, being edited when the prompt comes
        terminal.read_until_rows([first_row, second_row])
        assert datetime.now(timezone.utc) < due, "the prompt came before the half line was typed"
        terminal.read_until(PROMPT_SIGN, timeout=(due - datetime.now(timezone.utc)).total_seconds() + 60)
        shown = terminal.read_until_rows([first_row, second_row], since=0)
        prompt_row = max(i for i, row in enumerate(shown) if PROMPT_SIGN in row)
        above = "".join(shown[:prompt_row + 1])
        assert "音楽" not in above and "xz" not in above, shown  # nor glued, nor left above it
        # Its second line from a row's start (both wrap in 40 columns), and the half line under it.
        assert any(row.startswith("(answer with /journal") for row in shown[prompt_row + 1:-2]), shown
        assert shown[-2:] == [first_row, second_row] and not shown[-3].startswith(PROMPT_MARK), shown
        terminal.type(rest)
        terminal.read_until_rows([first_row, "x" * 13 + "yz"])  # the letter typed goes where the cursor was
        terminal.type("\r")
        screen = terminal.read_until(HELP_LINE, timeout=20)
        assert "I don't know" not in screen, screen
    finally:
        terminal.close()
    assert moodbot_processes(str(data_dir)) == []


def _a_song(path) -> str:
    """A tone as long as the classifier needs (10 s, and a little more) as a WAV file at `path`:
    a song it listens to for a while."""
    import math
    import struct
    import wave

    rate = 22050
    with wave.open(str(path), "wb") as song:
        song.setnchannels(1)
        song.setsampwidth(2)
        song.setframerate(rate)
        song.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                                  for i in range(12 * rate)))
    return str(path)


def test_a_line_typed_while_a_command_runs_is_shown_once_after_the_next_prompt(tmp_path):
    """Typed while /mood listens, the next command is not echoed by the terminal there (among the
    command's answer) and again by the line editor after the next "> ": it is shown once, after the
    "> ", and runs; at /quit the terminal echoes again."""
    data_dir = tmp_path / "data"
    song = _a_song(tmp_path / "tone.wav")
    terminal = Terminal(tmp_path, console_env(data_dir))
    try:
        before = termios.tcgetattr(terminal.master)
        terminal.read_until(PROMPT_MARK)
        terminal.type(f"/mood {song}\r")
        listening = terminal.read_until("Listening…", timeout=30)
        terminal.type("/help\r")  # typed ahead: the song is still being listened to
        screen = terminal.read_until(f"{HELP_LINE}\r\n{PROMPT_MARK}", timeout=120)[len(listening):]
        before_help = screen[:screen.index(HELP_INTRO)]  # the song's mood, and the line typed ahead
        assert before_help.count("/help") == 1, before_help
        assert rows(before_help)[-2] == f"{PROMPT_MARK}/help", before_help
        terminal.quit()
        assert termios.tcgetattr(terminal.master) == before  # echoing again, for the shell
    finally:
        terminal.close()
    assert moodbot_processes(str(data_dir)) == []


def test_a_python_without_readline_runs_the_console_in_a_terminal_all_the_same(tmp_path):
    """A Python built without its readline module (pyenv on a machine without libreadline's
    headers): `make run` in a terminal stopped at once, "moodbot could not start: No module named
    'readline'". Lines are read as the terminal gives them, with no line editor."""
    data_dir = tmp_path / "data"
    without_readline = "import runpy, sys; sys.modules['readline'] = None; runpy.run_module('bot', run_name='__main__')"
    terminal = Terminal(tmp_path, console_env(data_dir), python_args=("-c", without_readline))
    try:
        terminal.read_until(PROMPT_MARK, timeout=60)
        terminal.type("/help\r")
        terminal.read_until(f"{HELP_LINE}\r\n{PROMPT_MARK}", timeout=20)
        terminal.quit()
        assert "could not start" not in terminal.screen()
    finally:
        terminal.close()
    assert moodbot_processes(str(data_dir)) == []


PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"  # around what is pasted, in a terminal's bracketed paste mode


def test_commands_pasted_together_run_one_after_the_other(tmp_path):
    """Lines copied together (commands from the README) and pasted: readline puts them all in the
    one line it is editing, the line breaks with them, and Enter gave the first command the others
    as its words ("I don't know the time zone “UTC /journal list”"). Each command runs, in turn,
    with no "> " glued before its answer, and the up arrow brings back the last one; a pasted line
    that is no command is the next line of the one before, a journal answer's words."""
    data_dir = tmp_path / "data"
    song = _a_song(tmp_path / "tone.wav")
    terminal = Terminal(tmp_path, console_env(data_dir))
    try:
        terminal.read_until(PROMPT_MARK)
        terminal.type(f"{PASTE_START}/journal on 21:30 UTC\r/share off\r/journal prompt\r"
                      f"/journal answer {song} on the bus\rand home again\r/journal list{PASTE_END}")
        time.sleep(0.5)
        terminal.type("\r")
        shown = terminal.read_until("Your journal (1 of 1)", timeout=60)
        assert "Journal on: every day at 21:30 (UTC)" in shown and "Sharing off" in shown, shown
        assert "I don't know" not in shown and "Usage" not in shown and "/help lists the rest" not in shown
        terminal.read_until(f"– on the bus and home again\r\n{PROMPT_MARK}", timeout=20)
        assert not any(row.startswith(f"{PROMPT_MARK}Sharing") or row.startswith(f"{PROMPT_MARK}Your journal")
                       for row in rows(terminal.screen())), terminal.screen()
        terminal.type(UP + "\r")
        terminal.read_until("Your journal (1 of 1)", count=2, timeout=20)
        terminal.quit()
    finally:
        terminal.close()
    assert moodbot_processes(str(data_dir)) == []


def test_ctrl_d_at_the_forget_question_deletes_nothing_and_leaves_on_a_line_of_its_own(tmp_path):
    """Ctrl-D at "Delete everything? [y/N]" is the end of input: nothing is deleted and the session
    ends, its answer on a line of its own (it was glued after the question), and no "> " is shown
    for a line that is never read."""
    data_dir = tmp_path / "data"
    terminal = Terminal(tmp_path, console_env(data_dir))
    try:
        terminal.read_until(PROMPT_MARK)
        terminal.type("/forget\r")
        terminal.read_until(FORGET_QUESTION)
        terminal.type("\x04")  # Ctrl-D
        assert terminal.proc.wait(60) == 0, terminal.screen()
        terminal.read_until("Nothing was deleted.")
        shown = [row.rstrip() for row in rows(terminal.screen())]
        answer = shown.index("Nothing was deleted.")
        assert shown[answer - 1] == FORGET_QUESTION.rstrip(), shown
        assert PROMPT_MARK.rstrip() not in shown[answer + 1:], shown
    finally:
        terminal.close()
    assert moodbot_processes(str(data_dir)) == []
