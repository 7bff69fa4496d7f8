"""`python -m bot`: start moodbot (console front-end when no chat token is set)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from bot.config import Settings, unread_settings
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
    return parser.parse_args(argv)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
NO_TOKENS_NOTICE = ("moodbot: no DISCORD_TOKEN or TELEGRAM_TOKEN is set, so the console front-end runs "
                    "and reads its commands from standard input.")


def refuse(message: str) -> int:
    """A configuration the bot cannot start with: one line saying what to fix, exit status 2."""
    print(f"moodbot could not start: {message}", file=sys.stderr)
    return 2


def settings_problem(error: ValidationError) -> str:
    """'MAX_AUDIO_BYTES: Input should be a valid integer (got 'abc')' for each wrong setting."""
    parts = []
    for problem in error.errors():
        name = str(problem["loc"][0]).upper() if problem["loc"] else "settings"
        got = f" (got {problem['input']!r})" if isinstance(problem.get("input"), (str, int, float)) else ""
        parts.append(f"{name}: {problem['msg']}{got}")
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        return refuse(settings_problem(error))
    level = (args.log_level or settings.log_level).upper()
    if level not in LOG_LEVELS:
        return refuse(f"LOG_LEVEL: {level!r} is not one of {', '.join(LOG_LEVELS)}")
    from bot.app import App, LOG_FILE, log_salt

    data_dir = Path(settings.data_dir)
    console = args.console or (settings.telegram_token is None and settings.discord_token is None)
    # In the console, log lines would interleave with the chat: they go to a file under DATA_DIR.
    stream = None
    try:
        if console:
            data_dir.mkdir(parents=True, exist_ok=True)
            stream = open(data_dir / LOG_FILE, "a", encoding="utf-8")  # noqa: SIM115 (lives as long as the process)
        salt = log_salt(data_dir)
    except OSError as error:
        return refuse(f"DATA_DIR {data_dir} is not a folder moodbot can write to ({error.strerror})")
    secrets = secrets_of(settings)
    configure_logging(level, secret_values=secrets, salt=salt, stream=stream)
    for problem in unread_settings(os.environ):
        log.warning("settings.unknown: %s", problem)
        print(f"moodbot: {problem}.", file=sys.stderr)
    if console and not args.console and not sys.stdin.isatty():
        # E.g. a container started without tokens: its stdin is empty, so the console ends at once.
        print(NO_TOKENS_NOTICE, file=sys.stderr)
    try:
        return asyncio.run(App(settings, force_console=args.console).run())
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # start-up failures: one readable line, the details in the log
        log.exception("app.failed")
        print(f"moodbot could not start: {RedactSecrets(secrets).redact(str(error))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
