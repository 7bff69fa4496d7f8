"""Secrets and private words stay out of the logs.

The whole suite runs with sentinel tokens and a root handler that watches every record at DEBUG
(`secret_watch` in tests/conftest.py). Here: the watch itself can fail, and a full Telegram flow —
journal on, a prompt, an answer carrying a private note, list, export — run with the sentinel token
from the environment logs neither the token, nor the note, nor a user id in clear; and what the
driver says of a MONGODB_URI it cannot use shows none of its credentials, without mangling its words.
"""
from __future__ import annotations

import io
import logging

import pytest

from bot.config import Settings
from bot.frontends.telegram import TelegramFrontend
from bot.logs import configure_logging, hash_id, secrets_of
from bot.usecases import build_usecases
from storage.database import Database
from storage.models import UserRef
from tests.conftest import SENTINELS, SecretWatch
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.faults.support import cache_youtube_song

ALICE = 42
SALT = "pepper"
PRIVATE_NOTE = "grandma-hospital-visit-9f3k"  # the user's own words: never in a log line


class Records(logging.Handler):
    """Every record, rendered without any redaction: what the code hands to logging."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(SecretWatch.rendered(record))


def test_the_watch_reports_a_record_that_shows_a_secret():
    watch = SecretWatch()
    watch.declare("SENTINEL-xyz-123456")
    logger = logging.getLogger("tests.secrets.probe")
    logger.addHandler(watch)
    try:
        logger.warning("connecting with %s", "SENTINEL-xyz-123456")
        logger.warning("fine", extra={"token": "SENTINEL-xyz-123456"})
        logger.warning("nothing to see")
    finally:
        logger.removeHandler(watch)
    assert len(watch.leaks) == 2


def test_the_session_runs_with_sentinel_tokens_and_the_watch_attached(secret_watch):
    import os

    settings = Settings(_env_file=None)
    assert settings.telegram_token.get_secret_value() == os.environ["TELEGRAM_TOKEN"]
    assert os.environ["TELEGRAM_TOKEN"] in secret_watch.secrets
    assert set(SENTINELS.values()) <= secret_watch.secrets
    assert secret_watch in logging.getLogger().handlers and logging.getLogger().level == logging.DEBUG


@pytest.fixture
async def db(mongo_uri, db_name):
    database = await Database.connect(mongo_uri, db_name)
    await database.init()
    yield database
    await database.close()


async def test_a_telegram_journal_flow_logs_no_token_no_private_words_no_clear_ids(db, secret_watch):
    token = Settings(_env_file=None).telegram_token.get_secret_value()  # the sentinel, from the environment
    fake = await FakeTelegramBotAPI(token).start()
    settings = Settings(_env_file=None, telegram_api_url=fake.base_url, telegram_file_url=fake.base_file_url)
    usecases = build_usecases(db, classifier=None, fetcher=None)
    link = await cache_youtube_song(db, "dQw4w9WgXcQ", "Cached song")

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    produced = io.StringIO()
    configure_logging("DEBUG", secret_values=secrets_of(settings), salt=SALT, stream=produced)
    raw = Records()
    root.addHandler(raw)
    root.addHandler(secret_watch)
    frontend = TelegramFrontend(settings, usecases, poll_timeout_s=1)
    try:
        await frontend.start()
        await fake.user_sends("/journal on 21:30 Europe/Lisbon", user=ALICE)
        assert "21:30" in (await fake.wait_for("sendMessage")).text

        user = await db.users.get(UserRef("telegram", str(ALICE)))
        prompt = await usecases.journal.make_prompt(user)
        message_id = await frontend.send_prompt(prompt)
        await usecases.journal.prompt_delivered(prompt.prompt_id, message_id)

        await fake.user_sends(f"{link} {PRIVATE_NOTE}", user=ALICE, reply_to=int(message_id))
        await fake.wait_for_reply(lambda c: "Saved to your journal" in c.text)
        entries = await db.journal.list(UserRef("telegram", str(ALICE)))
        assert [e.note for e in entries] == [PRIVATE_NOTE]  # the note was stored: it was really handled

        await fake.user_sends("/journal list", user=ALICE)
        await fake.wait_for("sendMessage")
        await fake.user_sends("/export", user=ALICE)
        exported = await fake.wait_for("sendDocument")
        assert PRIVATE_NOTE.encode() in exported.files["document"]
    finally:
        await frontend.stop()
        await fake.stop()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])

    text = produced.getvalue()
    assert "event=journal.answered" in text and "event=journal.enabled" in text
    assert f"user={hash_id(str(ALICE), SALT)}" in text  # ids are there, hashed
    assert f"user={ALICE} " not in text and f"chat={ALICE} " not in text
    assert token not in text and token.split(":")[1] not in text
    everything = "\n".join(raw.lines)
    assert raw.lines and token not in everything, "the token reached a log record (before redaction)"
    assert PRIVATE_NOTE not in everything, "the user's private words reached a log record"


def test_the_check_at_debug_shows_no_spotify_client_secret_not_even_in_base64(tmp_path):
    """`python -m bot --check --log-level DEBUG` (what an operator pastes into an issue): spotipy
    logs its token request's headers at DEBUG, the client id and secret in base64; the bot caps
    spotipy's logger, but the check imports spotipy itself, and the secret filter knew only the
    secret as written."""
    import base64
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    client_id, secret = "sentinel-client-id", "SENTINEL-spotify-client-secret"
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "DISCORD_TOKEN", "MONGODB_URI")}
    env.update(DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(REPO), SPOTIFY_CLIENT_ID=client_id,
               SPOTIFY_CLIENT_SECRET=secret, SPOTIFY_AUTH_URL="http://127.0.0.1:9/api/token")
    done = subprocess.run([sys.executable, "-m", "bot", "--check", "--log-level", "DEBUG"], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120)
    said = done.stdout + done.stderr
    assert "spotify" in said  # the check ran
    assert basic not in said and secret not in said


async def test_a_short_mongodb_password_leaves_the_drivers_words_whole():
    """Password "p": the driver's reason is said as it is, not "[REDACTED]asswords are not su…"."""
    from storage.models import DatabaseUriError

    with pytest.raises(DatabaseUriError) as refused:
        await Database.connect("mongodb://moodbot:p@127.0.0.1:1/?authMechanism=MONGODB-X509", "moodbot")
    assert str(refused.value) == "MONGODB_URI cannot be used: Passwords are not supported by MONGODB-X509."


@pytest.mark.parametrize("password", ["p", "p%40ss", "Sentinel-PW"])
def test_the_credentials_of_a_uri_the_driver_shows_are_redacted_whatever_their_length(password):
    from bot.logs import MIN_SECRET_LEN
    from storage.database import MIN_REDACTED_PASSWORD_LEN, uri_problem

    uri = f"mongodb://moodbot:{password}@db1:27017/moodbot"
    said = str(uri_problem(ValueError(f"cannot parse {uri}"), uri))
    assert said == "MONGODB_URI cannot be used: cannot parse mongodb://[REDACTED]@db1:27017/moodbot."
    assert MIN_REDACTED_PASSWORD_LEN == MIN_SECRET_LEN  # the logs draw the same line


def test_a_long_mongodb_password_is_redacted_from_the_drivers_free_text_as_written_and_decoded():
    from storage.database import uri_problem

    uri = "mongodb://moodbot:p%40ss%2FSENTINEL@db1:27017/"
    said = str(uri_problem(ValueError("auth with p@ss/SENTINEL or p%40ss%2FSENTINEL failed"), uri))
    assert said == "MONGODB_URI cannot be used: auth with [REDACTED] or [REDACTED] failed."
