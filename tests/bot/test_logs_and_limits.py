"""Log lines are structured, never show a user's id in clear, and never show a secret; the /mood
abuse limits count per user, per place and concurrently."""
from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from bot.logs import REDACTED, RedactSecrets, hash_id, secrets_of, url_passwords
from bot.ratelimit import CONCURRENT_RETRY_S, MoodRateLimiter, RateLimited
from tests.conftest import REPO


def test_one_structured_line_per_event_with_hashed_ids(log_stream):
    logging.getLogger("bot.usecases.mood").info(
        "mood.answered", extra={"user": "1001", "chat": "-500", "mood": "sad", "title": "Fake Plastic Trees"})
    line = log_stream.getvalue().strip()
    assert "\n" not in line
    assert line.startswith("ts=") and " level=INFO logger=bot.usecases.mood event=mood.answered" in line
    assert f"user={hash_id('1001', 'pepper')}" in line and f"chat={hash_id('-500', 'pepper')}" in line
    assert "1001" not in line and "-500" not in line
    assert 'title="Fake Plastic Trees"' in line and "mood=sad" in line
    assert len(hash_id("1001", "pepper")) == 10 and hash_id("1001", "pepper") != hash_id("1001", "salt")


def test_a_secret_is_redacted_wherever_it_sneaks_in(log_stream):
    log = logging.getLogger("bot.frontends.telegram")
    log.warning("calling https://api.telegram.org/botSENTINEL-token-123/getMe")
    log.warning("token %s in args", "SENTINEL-token-123")
    log.info("event", extra={"url": "x/SENTINEL-token-123/y"})
    try:
        raise RuntimeError("boom with SENTINEL-token-123")
    except RuntimeError:
        log.exception("failed")
    text = log_stream.getvalue()
    assert "SENTINEL" not in text
    assert text.count(REDACTED) >= 4 and "Traceback" in text
    assert len(text.strip().splitlines()) == 4  # the traceback stays inside its event's line


def test_the_secrets_of_the_settings_are_the_secret_fields(monkeypatch):
    from bot.config import Settings

    monkeypatch.setenv("TELEGRAM_TOKEN", "123:SENTINEL")
    monkeypatch.setenv("MONGODB_URI", "mongodb://u:pw-SENTINEL@db/")
    values = secrets_of(Settings(_env_file=None))
    assert "123:SENTINEL" in values and "mongodb://u:pw-SENTINEL@db/" in values
    assert "pw-SENTINEL" in values  # the password alone, too


@pytest.mark.parametrize("uri, secret", [
    ("db1:27017", []), ("mongodb://db1:27017,db2:27017/moodbot", []),  # hosts alone: nothing to hide
    ("mongodb://db1:27017/?tlsCertificateKeyFilePassword=SENTINEL-key", ["whole"]),  # an option may be one
    ("mongodb://moodbot:pw-SENTINEL@db1:27017/", ["whole", "moodbot:pw-SENTINEL", "pw-SENTINEL"]),
])
def test_of_a_mongodb_uri_only_what_carries_a_secret_is_one(monkeypatch, uri, secret):
    from bot.config import Settings

    monkeypatch.delenv("TELEGRAM_TOKEN", raising=False)
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.delenv("SPOTIFY_CLIENT_SECRET", raising=False)
    monkeypatch.setenv("MONGODB_URI", uri)
    values = secrets_of(Settings(_env_file=None))
    assert set(values) == {uri if s == "whole" else s for s in secret}


def test_a_mongodb_password_is_redacted_alone_as_written_and_decoded():
    uri = "mongodb://moodbot:p%40ss%2FSENTINEL@db1:27017,db2:27017/moodbot?replicaSet=rs0"
    assert url_passwords(uri) == ["p%40ss%2FSENTINEL", "p@ss/SENTINEL"]
    assert url_passwords("mongodb://db1:27017/") == [] and url_passwords("not a url") == []
    redact = RedactSecrets([uri, *url_passwords(uri)])
    record = logging.LogRecord("pymongo", logging.ERROR, __file__, 1, "auth as %s with %s failed on %s",
                               ("moodbot", "p@ss/SENTINEL", "db1:27017"), None)
    redact.filter(record)
    assert "SENTINEL" not in record.getMessage() and "db1:27017" in record.getMessage()


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_per_user_sliding_window():
    clock = FakeClock()
    limiter = MoodRateLimiter(per_user=2, per_place=100, concurrent_per_user=10, clock=clock)
    limiter.acquire("u1", None).release()
    clock.t += 10
    limiter.acquire("u1", None).release()
    with pytest.raises(RateLimited) as refused:
        limiter.acquire("u1", None)
    assert refused.value.retry_after_s == 50  # the first hit leaves the window 60 s after it
    assert str(refused.value) == "You're going fast — try again in 50 s."
    clock.t += 50
    limiter.acquire("u1", None).release()  # the window slid


def test_the_window_slides_one_hit_at_a_time():
    clock = FakeClock()
    limiter = MoodRateLimiter(per_user=2, per_place=100, concurrent_per_user=10, clock=clock)
    for step in (0, 10, 50):  # at 1000, 1010, and 1060, when the first hit has just left the window
        clock.t += step
        limiter.acquire("u1", None).release()
    clock.t += 1
    with pytest.raises(RateLimited) as refused:  # 1010 and 1060 are in the window
        limiter.acquire("u1", None)
    assert refused.value.retry_after_s == 9


def test_sweeping_the_idle_users_keeps_one_whose_last_hit_is_in_the_window():
    clock = FakeClock()
    limiter = MoodRateLimiter(per_user=2, per_place=100, concurrent_per_user=10, clock=clock)
    limiter.acquire("u1", None).release()  # at 1000
    clock.t += 50
    limiter.acquire("u1", None).release()  # at 1050
    clock.t += 11
    limiter.acquire("u2", None).release()  # a window after the start: the idle users are swept
    limiter.acquire("u1", None).release()  # 1050 is still in the window: one more allowed
    with pytest.raises(RateLimited) as refused:
        limiter.acquire("u1", None)
    assert refused.value.retry_after_s == 49


def test_the_wait_told_is_rounded_up_so_that_trying_again_then_is_allowed():
    clock = FakeClock()
    limiter = MoodRateLimiter(per_user=1, per_place=100, concurrent_per_user=10, clock=clock)
    limiter.acquire("u1", None).release()
    clock.t += 10.8
    with pytest.raises(RateLimited) as refused:
        limiter.acquire("u1", None)
    assert refused.value.retry_after_s == 50  # 49.2 s left: "49 s" would be refused again
    clock.t += refused.value.retry_after_s
    limiter.acquire("u1", None).release()


def test_per_place_limit_counts_everyone_in_the_place():
    clock = FakeClock()
    limiter = MoodRateLimiter(per_user=10, per_place=3, concurrent_per_user=10, clock=clock)
    for user in ("a", "b", "c"):
        limiter.acquire(user, "discord:1").release()
    with pytest.raises(RateLimited):
        limiter.acquire("d", "discord:1")
    limiter.acquire("d", "discord:2").release()  # another server is not affected
    limiter.acquire("d", None).release()  # nor a DM


def test_concurrent_analyses_per_user_and_a_refusal_costs_no_quota():
    limiter = MoodRateLimiter(per_user=3, per_place=100, concurrent_per_user=2, clock=FakeClock())
    first, second = limiter.acquire("u", None), limiter.acquire("u", None)
    with pytest.raises(RateLimited) as refused:
        limiter.acquire("u", None)
    assert refused.value.retry_after_s == CONCURRENT_RETRY_S
    first.release()
    with limiter.acquire("u", None):  # the refused attempt did not use up the third slot of the minute
        pass
    second.release()


CONSOLE_WARNING_SCRIPT = """
import sys, warnings
from bot.logs import configure_logging

with open(sys.argv[1], "w") as log_file:  # the console's log file; stderr is the user's screen
    configure_logging("INFO", stream=log_file)
    warnings.warn("a library's warning", UserWarning)
"""


def test_in_console_mode_a_python_warning_is_a_line_of_the_log_file_and_not_on_the_screen(tmp_path):
    log_file = tmp_path / "moodbot.log"
    done = subprocess.run([sys.executable, "-c", CONSOLE_WARNING_SCRIPT, str(log_file)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # before: "<string>:7: UserWarning: a library's warning" on the screen
    [line] = log_file.read_text().splitlines()
    assert " level=WARNING logger=py.warnings " in line and "UserWarning: a library's warning" in line
