"""`python -m bot`: start moodbot (console front-end when no chat token is set)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from bot.config import (DataDirInUseError, Settings, data_dir_problem, disk_refusal, hold_data_dir, moodbots_user,
                        unread_settings)
from bot.logs import RedactSecrets, configure_logging, secrets_of

log = logging.getLogger("bot")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="moodbot: tells the mood of a song and keeps a music journal. Reads its settings "
                    "from the environment and .env (see README). With no DISCORD_TOKEN or TELEGRAM_TOKEN "
                    "it opens a console chat; with no MONGODB_URI it starts an embedded database under DATA_DIR.",
    )
    parser.add_argument("--console", action="store_true",
                        help="run the console front-end even when chat tokens are set")
    parser.add_argument("--log-level", default=None, metavar="LEVEL",
                        help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default: LOG_LEVEL, else INFO)")
    doctor = parser.add_mutually_exclusive_group()
    doctor.add_argument("--check", action="store_true",
                        help="do not start: check the settings, the database, ffmpeg, yt-dlp, the charts' CJK "
                             "font, the models and the tokens, one OK/FAIL/SKIP/NOTE line each; exit 1 if any FAILed")
    doctor.add_argument("--alive", action="store_true",
                        help="do not start: exit 0 if the bot running on this DATA_DIR has touched its "
                             "heartbeat lately, else 1 (the Docker HEALTHCHECK)")
    return parser.parse_args(argv)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a tool whose reader left reports it (`--check | head -1`)
ENV_FILE = Settings.model_config["env_file"]  # in the current folder
# Where .env is read, said: a service started in another folder (a systemd unit without its
# WorkingDirectory, in /) ran the console, and the operator had set the tokens, in .env.
NO_TOKENS_NOTICE = ("moodbot: no DISCORD_TOKEN or TELEGRAM_TOKEN is set (in the environment, or in .env in the "
                    "current folder), so the console front-end runs and reads its commands from standard input.")
STDIN_CLOSED_NOTICE = ("moodbot: standard input is closed, so the console front-end has nothing to read "
                       "and stops at once.")

# `python -m bot >&-`: Python's sys.stdout is None, and the console's first reply ended it with
# "'NoneType' object has no attribute 'flush'".
STDOUT_CLOSED = ("standard output is closed, so the console front-end has nowhere to write its replies: "
                 "give it one (e.g. >/dev/null), or set DISCORD_TOKEN or TELEGRAM_TOKEN")


def refuse(message: str) -> int:
    """A configuration the bot cannot start with: one line saying what to fix, exit status 2."""
    print(f"moodbot could not start: {message}", file=sys.stderr)
    return 2


# Settings whose value is never shown, a wrong one included (the tokens, the secret, MONGODB_URI).
SECRET_SETTINGS = frozenset(name for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation))


def settings_problem(error: ValidationError) -> str:
    """'MAX_AUDIO_BYTES: Input should be a valid integer (got 'abc')' for each wrong setting."""
    parts = []
    for problem in error.errors():
        name = str(problem["loc"][0]).upper() if problem["loc"] else "settings"
        shown = isinstance(problem.get("input"), (str, int, float)) and name.lower() not in SECRET_SETTINGS
        got = f" (got {problem['input']!r})" if shown else ""
        # A validator's own sentence, without pydantic's "Value error, " before it (its word for a ValueError).
        said = problem["msg"].removeprefix("Value error, ") if problem["type"] == "value_error" else problem["msg"]
        parts.append(f"{name}: {said}{got}")
    return "; ".join(parts)


def read_settings() -> tuple[Settings | None, str | None]:
    """(settings, None), or (None, what is wrong with them in one line)."""
    try:
        return Settings(), None
    except ValidationError as error:
        return None, settings_problem(error)
    except UnicodeDecodeError:  # PowerShell's `"TELEGRAM_TOKEN=…" > .env` writes UTF-16
        return None, f"{ENV_FILE} is not UTF-8 text: save it again as UTF-8"
    except OSError as error:
        return None, f"{ENV_FILE} cannot be read ({error.strerror}): let {moodbots_user()} read it"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings, problem = read_settings()
    level = (args.log_level or (settings.log_level if settings else "INFO")).upper()
    if problem is None and level not in LOG_LEVELS:
        problem = f"{'--log-level' if args.log_level else 'LOG_LEVEL'}: {level!r} is not one of {', '.join(LOG_LEVELS)}"
    if args.alive:
        return alive(settings, problem)
    if args.check:
        return check(settings, problem, args.log_level)
    if problem is not None:
        return refuse(problem)
    from bot.app import App, LOG_FILE, log_salt

    data_dir = Path(settings.data_dir)
    if (unwritable := data_dir_problem(data_dir, settings.mongodb_uri is None)) is not None:
        return refuse(unwritable)
    console = args.console or (settings.telegram_token is None and settings.discord_token is None)
    if console and sys.stdout is None:
        return refuse(STDOUT_CLOSED)
    # In the console, log lines would interleave with the chat: they go to a file under DATA_DIR.
    stream = None
    try:
        lock = hold_data_dir(data_dir)  # held until the bot has stopped
        if console:
            stream = open(data_dir / LOG_FILE, "a", encoding="utf-8")  # noqa: SIM115 (lives as long as the process)
        salt = log_salt(data_dir)
    except OSError as error:  # the folder takes new files, but not these (another user's), or its disk filled
        return refuse(f"{error.filename or data_dir} in DATA_DIR cannot be written ({error.strerror}): "
                      + (disk_refusal(error) or f"give {moodbots_user()} the right to write it"))
    except DataDirInUseError as error:
        print(f"moodbot could not start: {error}", file=sys.stderr)
        return 1
    secrets = secrets_of(settings)
    configure_logging(level, secret_values=secrets, salt=salt, stream=stream)
    for problem in unread_settings(os.environ):
        log.warning("settings.unknown: %s", problem)
        print(f"moodbot: {problem}.", file=sys.stderr)
    if console and sys.stdin is None:  # `python -m bot <&-`: the console reads it as the end of its input
        print(STDIN_CLOSED_NOTICE, file=sys.stderr)
    elif console and not args.console and not sys.stdin.isatty():
        # E.g. a container started without tokens: its stdin is empty, so the console ends at once.
        print(NO_TOKENS_NOTICE, file=sys.stderr)
    app = App(settings, force_console=args.console)
    try:
        return asyncio.run(app.run())
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # start-up failures (or, once started, what ended it): one line, details in the log
        log_failure(error, level)
        said = "stopped" if app.started else "could not start"
        print(f"moodbot {said}: {RedactSecrets(secrets).redact(str(error))}", file=sys.stderr)
        return 2 if wrong_setting(error) else 1
    finally:
        lock.close()  # stopped: another bot may start on DATA_DIR


def log_failure(error: Exception, level: str) -> None:
    """app.failed in the log. An error that says itself what to fix (a chat platform, the
    database, every chat platform lost) is logged with what it was made from, one error a link
    (`caused_by`), and no traceback unless at DEBUG: the frames of the platform's client, some 60
    lines, stood before the one sentence, in `docker logs` too. Anything else keeps its traceback."""
    from bot.app import FrontendsLostError, PlatformStartError, causes
    from storage.models import StorageError

    if level == "DEBUG" or not isinstance(error, (PlatformStartError, StorageError, FrontendsLostError)):
        log.exception("app.failed")
        return
    chain = [f"{type(cause).__name__}: {cause}" for cause in causes(error)][1:]
    log.error("app.failed", extra={"reason": str(error), "caused_by": " <- ".join(chain) or None})


def wrong_setting(error: Exception) -> bool:
    """Whether a start's failure is MONGODB_URI's value, which the driver reads only when it
    connects (an option it would drop, not a URI): a wrong value, exit status 2 as the others."""
    from storage.models import DatabaseNameError, DatabaseUriError

    return isinstance(error, (DatabaseUriError, DatabaseNameError))


def alive(settings: Settings | None, problem: str | None) -> int:
    """One line, exit 0 or 1 only: Docker reads any other status as an error of the check itself."""
    from bot.health import heartbeat_path, liveness

    if settings is None:
        print(f"moodbot: cannot tell: {problem}", file=sys.stderr)
        return 1
    ok, line = liveness(heartbeat_path(settings.data_dir))
    print(f"moodbot: {line}", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def check(settings: Settings | None, problem: str | None, log_level: str | None) -> int:
    from bot.doctor import exit_status, run_checks

    # The findings say what went wrong; the libraries' own log lines only on request.
    level = (log_level or "CRITICAL").upper()
    configure_logging(level if level in LOG_LEVELS else "CRITICAL",
                      secret_values=secrets_of(settings) if settings is not None else ())
    notes = unread_settings(os.environ) if settings is not None else []
    try:
        findings = asyncio.run(run_checks(settings, problem=problem, notes=notes,
                                          say=lambda finding: print(finding.line, flush=True)))
        failed = sum(f.status == "FAIL" for f in findings)
        print("moodbot --check: " + (f"{failed} FAILed" if failed else "nothing FAILed"), flush=True)
    except BrokenPipeError:  # the reader left (`| head -1`): the check that was running has closed what it opened
        # Python flushes stdout again at exit: point it at /dev/null so that it does not fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return exit_status(findings)


def exit_uninterrupted(status: int) -> None:
    """Exit with `status`, a Ctrl-C no longer heard: the bot has stopped, and what is left (the
    download workers closed at exit) takes well under a second. An impatient operator's second
    Ctrl-C there printed "Exception ignored in atexit callback" and a KeyboardInterrupt traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(status)


def run() -> None:
    """`python -m bot`, and the `moodbot` command pip installs (pyproject.toml's [project.scripts]),
    which ran `main` alone: a Ctrl-C outside the bot's own run (during --check) printed a
    KeyboardInterrupt traceback there, and a second one as it exited was heard."""
    try:
        status = main()
    except KeyboardInterrupt:  # between the app's stop and main's return, or during --check
        status = 130
    exit_uninterrupted(status)


if __name__ == "__main__":
    run()
