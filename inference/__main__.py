"""`python -m inference`: tell the mood of audio files offline, or train the models.

    python -m inference classify song.mp3 other.ogg
    python -m inference classify --json --model ann *.ogg
    cat song.mp3 | python -m inference classify -
    python -m inference train --help
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import stat
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from inference.cliargs import at_least, existing_folder, positive_float
from inference.pool import DEFAULT_WEIGHTS_DIR, Classifier, default_threads
from inference.result import MOODS, InferenceError, ModelUnavailableError, MoodResult, UnreadableAudioError

log = logging.getLogger("inference")

IN_FLIGHT_PER_WORKER = 2  # one running, one queued: workers never idle, nothing is shed
EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_NO_MODEL = 2
EXIT_OUTPUT_FAILED = 74  # EX_IOERR of sysexits.h: the output could not be written (a full disk)
EXIT_HUNG_UP = 129  # 128 + SIGHUP: the terminal closed, the ssh session dropped
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a tool whose reader left reports it
EXIT_TERMINATED = 143  # 128 + SIGTERM, as `timeout`, `kill` or `docker stop` leaves a tool
JSON_HELP = """--json prints one object per line, in the order the files were given; an answer:
  {"file": FILE, "mood": "happy", "energetic", "sad" or "calm",
   "probabilities": {"happy": p, "energetic": p, "sad": p, "calm": p} (they sum to 1),
   "valence": -1 to 1, "arousal": -1 to 1, "model": "main" or "ann", "model_version": its weights,
   "seconds": its time, a wait behind another file included, "fallback_reason": why the ANN
   answered instead, or null}
a file that got no mood: {"file": FILE, "error": why, in words}
FILE is the name as given, but a byte of it that is not UTF-8 is written as U+FFFD (the
readable lines print the name's own bytes, a control character escaped: a newline as \\n)
"""
EXIT_STATUSES_HELP = f"""exit status:
  {EXIT_OK}    every file got a mood
  {EXIT_SOME_FAILED}    some file failed (its line says why); the others got their mood
  {EXIT_NO_MODEL}    a wrong argument, or no model to answer with: the weights are missing or
       corrupt, or lack the one --model asks for
  {EXIT_OUTPUT_FAILED}   the output could not be written (a full disk, standard output closed): the run
       stopped there, and its last line may be cut short
  {EXIT_HUNG_UP}  hung up (SIGHUP: the terminal closed, the ssh session dropped; not under nohup);
       as on SIGTERM below
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); the lines printed so far are whole
  {EXIT_BROKEN_PIPE}  the reader of the output left (| head)
  {EXIT_TERMINATED}  terminated (SIGTERM: kill, timeout, docker stop); the lines printed so far are whole
"""
STDIN = "-"  # a FILE that names standard input, as cat and ffmpeg read it
STDIN_COPY_NAME = "stdin"  # the name the decoder's messages give the song read from it
# Most bytes read from standard input or a pipe: 20 minutes (the decoder's most) of 96 kHz 24-bit 5.1
# PCM are 2.07 GB. A stream that never ends was copied to $TMPDIR until the disk was full.
STREAM_MAX_BYTES = 2 << 30
COPY_CHUNK_BYTES = 1 << 20
SHELL_PATTERN = re.compile(r"[*?[]")  # what makes a word a pattern to the shell (glob.has_magic)
# Escaped in a readable line: a newline in a file name split one file's answer into two lines.
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
# What the `train` extra installs (pyproject.toml), as imported.
TRAIN_MODULES = frozenset({"torch", "torchvision", "onnx", "sklearn", "tqdm"})


class OutputFailed(Exception):
    """The output refused a line (ENOSPC, EIO, EDQUOT), or there is none: no use going on."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised wherever the run is, as Ctrl-C's KeyboardInterrupt is (asyncio lets
    only these through its tasks): the run stops the same way, the pool closed and the copies of
    standard input deleted. Python's default ended it at once and left them in $TMPDIR."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum, _frame) -> None:
    raise Terminated(signum)


def stop_on_termination() -> None:
    """SIGTERM, and SIGHUP unless it is ignored (nohup), end the run as Ctrl-C does."""
    signal.signal(signal.SIGTERM, _terminate)
    hang_up = getattr(signal, "SIGHUP", None)  # none on Windows
    if hang_up is not None and signal.getsignal(hang_up) == signal.SIG_DFL:
        signal.signal(hang_up, _terminate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m inference",
        description="Tell the mood of songs (happy, energetic, sad, calm), offline.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    classify = commands.add_parser(
        "classify", help="classify audio files", description="Classify audio files, concurrently.",
        epilog=JSON_HELP + "\n" + EXIT_STATUSES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    classify.add_argument("files", nargs="+", metavar="FILE",
                          help=f"audio files (any format ffmpeg reads); {STDIN} reads one from standard input")
    classify.add_argument("--json", action="store_true", help="one JSON object per line per file (below)")
    classify.add_argument(
        "--model", choices=("auto", "main", "ann"), default="auto",
        help="main: the main model only (the CNN+BiLSTM, its answer fused with the ANN's and a musicnn "
        "embedding head's as its weights say); ann: the hand-crafted-feature MLP only; "
        "auto (default): main, with the ANN as fallback",
    )
    classify.add_argument("--weights", type=existing_folder, default=DEFAULT_WEIGHTS_DIR, help="weights directory")
    classify.add_argument("--workers", type=at_least(1), default=None,
                          help="worker processes, at most one per file (default: one per core)")
    classify.add_argument(
        "--timeout", type=positive_float, default=20.0,
        help="seconds per file for the main model, from when the file is handed to a worker (so a wait "
             "behind that worker's file before it counts, as in the bot, where it bounds the user's wait); "
             "then the ANN answers (auto) or the file fails (main)",
    )
    classify.set_defaults(usage_error=classify.error)  # a mistake found after parsing, told as argparse tells one
    commands.add_parser("train", help="train the models (needs torch); see `train --help`", add_help=False)
    return parser


def one_line(text: str) -> str:
    """`text` with each control character escaped as Python writes it (`\\n`, `\\x1b`), so that a
    file's readable line stays one line; the rest, a byte that is not UTF-8 included, is left as is."""
    return CONTROL_CHARACTER.sub(lambda match: repr(match[0])[1:-1], text)


def format_line(file: str, result: MoodResult) -> str:
    """`song.mp3: happy (0.71) valence +0.42 arousal +0.55 [main v3] 0.09 s`."""
    line = (
        f"{file}: {result.mood} ({result.confidence:.2f}) valence {result.valence:+.2f} "
        f"arousal {result.arousal:+.2f} [{result.model} {result.model_version}] {result.seconds:.2f} s"
    )
    if result.fallback_reason:
        line += f" (fallback: {result.fallback_reason})"
    return one_line(line)


def json_text(text: str) -> str:
    """`text` as valid UTF-8: a file name that is not UTF-8 reaches us with a lone surrogate per
    stray byte ("caf\\udce9.ogg"), which JSON escapes but no UTF-8 reader takes; each is U+FFFD."""
    return os.fsencode(text).decode("utf-8", errors="replace")


def format_json(file: str, result: MoodResult) -> str:
    return json.dumps({
        "file": json_text(file),
        "mood": result.mood,
        "probabilities": {mood: round(result.probabilities[mood], 6) for mood in MOODS},
        "valence": round(result.valence, 6),
        "arousal": round(result.arousal, 6),
        "model": result.model,
        "model_version": result.model_version,
        "seconds": round(result.seconds, 4),
        "fallback_reason": result.fallback_reason,  # why the ANN answered instead, else null
    })


def format_error(file: str, error: Exception, as_json: bool) -> str:
    if isinstance(error, InferenceError):
        message = str(error)
    else:  # a bug, not the user's file: keep the traceback in the log
        log.error("Unexpected failure on %s", file, exc_info=error)
        message = f"internal error ({type(error).__name__})"
    if as_json:
        return json.dumps({"file": json_text(file), "error": json_text(message)})
    return one_line(f"{file}: error: {message}")  # the message may quote the name


async def classify_files(
    files: list[str],
    *,
    weights: Path,
    model: str,
    workers: int | None,
    timeout_s: float,
    as_json: bool,
    out: TextIO,
    copies: dict[str, Path] | None = None,
    problems: dict[str, str] | None = None,
) -> int:
    """Classify every file through one warm pool; print results in the order given. A file in
    `copies` (standard input, a pipe) is read from its copy there, as `copy_streams` made it; one in
    `problems` fails, for the reason it gives."""
    copies, problems = copies or {}, problems or {}
    # Never more workers than files, even when asked: one with no file to classify still loads
    # the models (`--workers 40` took 43 s for one clip, `--workers 200` ran out of memory).
    workers = max(1, min(len(files), workers or default_threads(1)))
    slots = asyncio.Semaphore(workers * IN_FLIGHT_PER_WORKER)
    # The slots bound the run's load; the pool is never to shed a file as "overloaded". It counts a
    # job that timed out, still in its worker, as in flight after its file's slot is free again;
    # but every file submits one job at most, so the pool never holds `len(files)` of them.
    classifier = Classifier(weights, workers=workers, timeout_s=timeout_s, max_queue=len(files),
                            ann_only=model == "ann")

    async def one(file: str) -> MoodResult:
        if unmatched_pattern(file):
            raise UnreadableAudioError(f"No file matches {file} (the shell passed the pattern on as typed).")
        problem = problems.get(file) or (None if file in copies else path_problem(file))
        if problem is not None:
            raise UnreadableAudioError(problem)
        async with slots:
            return await classifier.classify(copies.get(file, file), model=model)

    failures = 0
    tasks: list[asyncio.Future] = []
    try:
        try:
            await classifier.start()
            classifier.ensure_can_answer(model)  # else every file would fail alike, with status 1
        except ModelUnavailableError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_NO_MODEL
        tasks = [asyncio.ensure_future(one(file)) for file in files]
        for file, task in zip(files, tasks):
            try:
                result = await task
                line = format_json(file, result) if as_json else format_line(file, result)
            except Exception as error:  # noqa: BLE001 - one bad file must not stop the others
                failures += 1
                line = format_error(file, error, as_json)
            write_line(line, out)
    finally:
        # Interrupted (Ctrl-C cancels this task): the jobs not yet printed are dropped before the
        # pool closes, so none of them fails on the closed pool and logs a stray traceback.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await classifier.close()
    return EXIT_SOME_FAILED if failures else EXIT_OK


def write_line(line: str, out: TextIO | None) -> None:
    """`line` to `out`, at once. OutputFailed where it cannot be written; a reader that left (`| head`)
    is BrokenPipeError, as ever."""
    if out is None:  # started with standard output closed (`>&-`): print() would drop every line
        raise OutputFailed("standard output is closed")
    try:
        print(line, file=out, flush=True)
    except BrokenPipeError:
        raise
    except OSError as error:
        raise OutputFailed(error.strerror or str(error)) from None


def check_stdin_use(files: list[str], usage_error) -> None:
    """`-` once, and only from a pipe or a file: a terminal would wait, silent, for a song typed."""
    if files.count(STDIN) > 1:
        usage_error(f"argument FILE: {STDIN} (standard input) can be read once")
    if STDIN in files and sys.stdin is not None and sys.stdin.isatty():
        usage_error(f"argument FILE: {STDIN} reads standard input, which is a terminal here: "
                    f"pipe a song into it (cat song.mp3 | python -m inference classify {STDIN})")


def unmatched_pattern(file: str) -> bool:
    """`*.mp3` where there is none: a shell hands a pattern that matches nothing on as typed."""
    return SHELL_PATTERN.search(file) is not None and not os.path.lexists(file)


def path_problem(file: str) -> str | None:
    """Why `file` is no audio file to open, with its name as typed; None for a regular file we may read.
    The decoder says so too, but names a file by its base name only (the bot's uploads sit in
    temporary folders no chat user is to see): "null is not a regular file" for /dev/null."""
    try:
        found = os.stat(file)
    except (FileNotFoundError, NotADirectoryError):  # song.ogg/x: no file there either
        return f"There is no file at {file}."
    except OSError:  # a loop of links, a name too long: the decoder says what it finds
        return None
    mode = found.st_mode
    if stat.S_ISDIR(mode):
        return f"{file} is a folder, not an audio file."
    if not stat.S_ISREG(mode):  # opening a device may block for ever, or read without end
        return f"{file} is not a regular file (a device or a socket), so not an audio file."
    if found.st_size == 0:  # a copy or a download cut short; the bot's console says so too
        return f"{file} is empty (0 bytes): there is no audio in it."
    try:  # the workers may read no more than this process may
        open(file, "rb").close()
    except PermissionError:
        return f"{file} cannot be opened: permission refused."
    except OSError:
        pass  # the decoder says what it finds
    return None


def is_pipe(file: str) -> bool:
    """A named pipe, or bash's `<(command)` (/dev/fd/63): open in this process only."""
    try:
        return stat.S_ISFIFO(os.stat(file).st_mode)
    except OSError:  # not there: the decoder says so in the file's line
        return False


def byte_size(count: int) -> str:
    """`count` bytes in the largest binary unit that holds it whole: "2 GiB", "1 MiB", "512 kiB"."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("kiB", 10)):
        if count >= 1 << shift and count % (1 << shift) == 0:
            return f"{count >> shift} {unit}"
    return f"{count} bytes"


def stream_name(file: str) -> str:
    return "Standard input" if file == STDIN else file


def copy_streams(files: list[str], folder: Path,
                 max_bytes: int = STREAM_MAX_BYTES) -> tuple[dict[str, Path], dict[str, str]]:
    """Standard input (`-`) and each pipe among `files`, read whole, each into a file in `folder`:
    the decoder runs in a worker process and reads files, where a pipe of ours is no file at all.
    Also why some are no song to decode: one read empty, or one that went on past `max_bytes`
    (read no further, its copy deleted: a stream that never ends filled the disk)."""
    copies, problems = {}, {}
    for n, file in enumerate(dict.fromkeys(files)):  # a pipe named twice is read once
        if file != STDIN and not is_pipe(file):
            continue
        copy = folder / str(n) / (STDIN_COPY_NAME if file == STDIN else Path(file).name)
        copy.parent.mkdir()
        with copy.open("wb") as written:
            if file != STDIN:
                with open(file, "rb") as pipe:
                    _copy_at_most(pipe, written, max_bytes)
            elif sys.stdin is not None:  # none open: read as an empty file
                _copy_at_most(sys.stdin.buffer, written, max_bytes)
            size = written.tell()
        copies[file] = copy
        if size > max_bytes:
            copy.unlink()
            problems[file] = f"{stream_name(file)} went on past {byte_size(max_bytes)}: I stopped reading it there."
        elif size == 0:
            problems[file] = f"{stream_name(file)} was empty (0 bytes): there is no audio in it."
    return copies, problems


def _copy_at_most(source, target, max_bytes: int) -> None:
    """`source` into `target` to its end, or to one byte past `max_bytes`."""
    left = max_bytes + 1
    while left > 0 and (chunk := source.read(min(left, COPY_CHUNK_BYTES))):
        target.write(chunk)
        left -= len(chunk)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "train":
        from inference.train_args import parse_args as check_train_args

        check_train_args(argv[1:])  # a wrong argument, or --help, is answered before torch's 4-5 s import
        try:
            from inference.train import main as train_main  # torch is only needed here

            return train_main(argv[1:]) or EXIT_OK
        except KeyboardInterrupt:  # while torch imports or the clips are checked: nothing written yet
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except ModuleNotFoundError as error:
            if error.name is None or error.name.split(".")[0] not in TRAIN_MODULES:
                raise
            # `make run` installs serving only: say what to install, not a traceback.
            print(f"python -m inference train: training needs the train extra ({error.name.split('.')[0]} is not "
                  f"installed): {sys.executable} -m pip install -e '.[train]'", file=sys.stderr)
            return EXIT_NO_MODEL
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:  # argparse would say so with the top-level usage, which lists none of classify's options
        args.usage_error(f"unrecognized arguments: {' '.join(unknown)}")
    check_stdin_use(args.files, args.usage_error)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # A file name that is not UTF-8 reaches us with surrogates: print it back as its own bytes, as
    # `ls` does, rather than fail the run on a strict UTF-8 terminal.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")
    stop_on_termination()
    try:
        with tempfile.TemporaryDirectory(prefix="moodbot-streams-") as scratch:
            copies, problems = copy_streams(args.files, Path(scratch))
            return asyncio.run(classify_files(
                args.files, weights=args.weights, model=args.model, workers=args.workers,
                timeout_s=args.timeout, as_json=args.json, out=sys.stdout, copies=copies, problems=problems,
            ))
    except Terminated as stop:  # as on Ctrl-C
        hung_up = stop.signum == getattr(signal, "SIGHUP", None)
        print("hung up" if hung_up else "terminated", file=sys.stderr)
        return EXIT_HUNG_UP if hung_up else EXIT_TERMINATED
    except KeyboardInterrupt:  # the pool is closed by then; the lines printed so far are whole
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader left (`| head -1`); the pool is closed by then
        # Python flushes stdout again at exit: point it at /dev/null so that it does not fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OutputFailed as error:  # the pool is closed by then; the files left are not classified
        print(f"error: the output cannot be written ({error})"
              + (": the run stopped there" if sys.stdout is not None else ""), file=sys.stderr)
        if sys.stdout is not None:  # what it still holds would fail again at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OUTPUT_FAILED


if __name__ == "__main__":
    sys.exit(main())
