"""The bot's dependencies fail, one at a time, under the real /mood use case:

- a classifier worker is SIGKILLed mid-job: the ANN answers that song, the pool is replaced and the
  main model answers the next one;
- the audio host answers 500 or 404, never answers, or sends a web page or an image: a clear
  error, and the fetcher's temporary directory is left empty;
- Spotify answers 429 (Retry-After) or 5xx: retried with backoff a bounded number of times, then
  a clear answer, in bounded time.

Telegram 429 and Discord rate limits are covered where the front-ends are: see
tests/frontends/test_telegram.py::test_a_429_is_waited_out_then_the_reply_is_delivered,
tests/e2e/test_telegram_e2e.py::test_a_429_from_telegram_is_waited_out and
tests/frontends/test_discord.py::test_a_rate_limited_edit_is_retried_after_discord_says.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path

import pytest
import pytest_asyncio

from bot.replies import Attachment, Caller, ErrorReply, MoodReply
from bot.sources.audio import TOO_SLOW, AudioFetcher
from bot.sources.spotify import UNAVAILABLE_MESSAGE, RetryPolicy, SpotifyResolver, busy_message
from bot.usecases.mood import GENERIC_ERROR, MoodUseCase
from inference.pool import FALLBACK_CRASHED
from storage.database import Database
from tests.fakes.audio_http import FakeAudioServer
from tests.fakes.spotify_api import FakeSpotify, FakeTrack
from tests.faults.support import classified_record

pytestmark = pytest.mark.asyncio(loop_scope="module")

CALLER = Caller("discord", "31", place="discord:900", chat_id="31")
FETCH_TIMEOUT_S = 2.0
# A host that answers: far above its answer (a fresh download worker, yt-dlp's extractors), which
# took more than 15 s with the machine loaded far beyond its cores (the suite beside 2 busy loops).
ANSWERING_HOST_TIMEOUT_S = 60.0
MAIN_BACK_WITHIN_S = 120.0  # a replacement worker spawns and loads the model on a busy machine


@pytest_asyncio.fixture(loop_scope="module")
async def db(mongo_uri, db_name):
    database = await Database.connect(mongo_uri, db_name)
    await database.init()
    yield database
    await database.close()


def attach(path: Path) -> Attachment:
    return Attachment(str(path), path.name, path.stat().st_size)


# --- classifier ---------------------------------------------------------------------------------

async def test_a_worker_killed_mid_job_still_gets_the_song_answered(db, classifier, clips):
    mood = MoodUseCase(db, classifier, fetcher=None)
    (pid,) = classifier.worker_pids
    asking = asyncio.ensure_future(mood.run(CALLER, attachment=attach(clips[0])))
    while classifier.queue_depth == 0:  # the job has reached the pool
        await asyncio.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    reply = await asking
    assert isinstance(reply, MoodReply) and reply.model == "ann" and reply.fallback_reason == FALLBACK_CRASHED
    # The pool is replaced, warm: the main model answers again (new songs each time: no cache).
    deadline = time.monotonic() + MAIN_BACK_WITHIN_S
    for clip in clips[1:]:
        after = await mood.run(CALLER, attachment=attach(clip))
        assert isinstance(after, MoodReply) and not after.cached
        if after.model == "main" or time.monotonic() > deadline:
            break
    assert after.model == "main", after
    assert classifier.worker_pids and pid not in classifier.worker_pids


# --- audio downloads ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def audio_host(scratch):
    root = scratch / "cdn"
    (root / "files").mkdir(parents=True)
    (root / "files" / "page.html").write_text("<!doctype html><html><body><h1>Not a song</h1></body></html>")
    (root / "files" / "page.ogg").write_text("<!doctype html><html><body>a web page named .ogg</body></html>")
    (root / "files" / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 4096)
    (root / "files" / "cover.ogg").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 4096)
    server = FakeAudioServer(root).start()
    yield server
    server.stop()


DOWNLOAD_FAULTS = {
    "HTTP 500": ("/error/{title}.ogg", "refused the download (HTTP 500)"),
    "HTTP 404": ("/missing/{title}.ogg", "No audio found"),
    "never answers": ("/hang/{title}.ogg", TOO_SLOW),
    "a web page": ("/files/page.html?q={title}", "No audio found"),
    # Named by the title the download gave (yt-dlp's, of the page), not the name of the file it made
    "a web page served as .ogg": ("/files/page.ogg?q={title}",
                                  "The file downloaded for “page” is not audio we can read."),
    "an image": ("/files/cover.png?q={title}", ""),
    "an image served as .ogg": ("/files/cover.ogg?q={title}",
                                "The file downloaded for “cover” is not audio we can read."),
}


@pytest.mark.parametrize("fault", DOWNLOAD_FAULTS)
async def test_a_failed_download_gets_a_clear_error_and_leaves_no_files(fault, db, classifier, audio_host, tmp_path):
    template, words = DOWNLOAD_FAULTS[fault]
    tmp = tmp_path / "downloads"
    # The short limit only where the host never answers: a web page goes through yt-dlp's generic
    # extractor, which on a loaded machine (the suite beside other work) took longer than 2 s.
    timeout_s = FETCH_TIMEOUT_S if words == TOO_SLOW else ANSWERING_HOST_TIMEOUT_S
    fetcher = AudioFetcher(search_template=audio_host.url(template), tmp_dir=tmp, timeout_s=timeout_s)
    mood = MoodUseCase(db, classifier, fetcher)
    started = time.monotonic()
    reply = await mood.run(CALLER, "Some Song")
    elapsed = time.monotonic() - started
    assert isinstance(reply, ErrorReply) and reply.message != GENERIC_ERROR, reply
    assert words in reply.message, reply.message
    print(f"{fault}: {reply.message}")
    assert elapsed < timeout_s + 5.0
    await asyncio.sleep(0.1)
    # No folder at all where the search failed before anything was downloaded (a web page).
    assert not tmp.exists() or not list(tmp.iterdir()), list(tmp.iterdir())


# --- Spotify ------------------------------------------------------------------------------------

@pytest.fixture
def spotify():
    with FakeSpotify() as fake:
        fake.add(FakeTrack(name="Creep", artists=("Radiohead",), id="6b2oQwSGFkzsMtQruIWm2p", album="Pablo Honey",
                           duration_ms=238_000))
        yield fake


def resolver_for(fake: FakeSpotify, retry: RetryPolicy) -> SpotifyResolver:
    return SpotifyResolver(fake.client_id, fake.client_secret, api_url=fake.api_url, auth_url=fake.auth_url,
                           retry=retry)


async def cached_creep(db) -> None:
    record = classified_record("spotify:6b2oQwSGFkzsMtQruIWm2p", "Creep")
    await db.tracks.save(record)


SPOTIFY_RETRY = RetryPolicy(max_tries=3, max_wait_s=1.5, backoff_s=0.2)


async def test_spotify_429_is_waited_out_then_answered(db, spotify):
    await cached_creep(db)
    spotify.fail_next(429, times=2, retry_after=1)
    mood = MoodUseCase(db, classifier=None, fetcher=None, resolver=resolver_for(spotify, SPOTIFY_RETRY))
    started = time.monotonic()
    reply = await mood.run(CALLER, "Radiohead - Creep")
    elapsed = time.monotonic() - started
    assert isinstance(reply, MoodReply) and reply.title == "Creep"
    assert len(spotify.api_requests()) == 3 and 2.0 <= elapsed < 2.0 + 3.0  # two waits of Retry-After: 1


@pytest.mark.parametrize("status, retry_after, message", [
    (429, 3600, busy_message(3600)),  # a Retry-After longer than a user waits is passed on at once
    (503, None, UNAVAILABLE_MESSAGE),
    (500, None, UNAVAILABLE_MESSAGE),
])
async def test_spotify_that_keeps_failing_gets_a_clear_answer_in_bounded_time(db, spotify, status, retry_after, message):
    spotify.fail_next(status, times=SPOTIFY_RETRY.max_tries, retry_after=retry_after)
    mood = MoodUseCase(db, classifier=None, fetcher=None, resolver=resolver_for(spotify, SPOTIFY_RETRY))
    started = time.monotonic()
    reply = await mood.run(CALLER, "Radiohead - Creep (live)")
    elapsed = time.monotonic() - started
    assert isinstance(reply, ErrorReply) and reply.message == message
    assert len(spotify.api_requests()) == (1 if status == 429 else SPOTIFY_RETRY.max_tries)
    bound = (SPOTIFY_RETRY.max_tries - 1) * SPOTIFY_RETRY.max_wait_s + 2.0
    assert elapsed < bound, f"{elapsed:.1f} s"
    if status == 429:
        assert reply.retry_after_s == retry_after  # the user is told how long Spotify asked to wait


async def test_a_file_the_audio_host_does_not_have_is_logged_with_its_404(db, classifier, audio_host, tmp_path, caplog):
    """The user is told 'No audio found', as for a search that found nothing; the log said only
    that too, so an operator could not tell a file gone from the host from a song not found."""
    fetcher = AudioFetcher(search_template=audio_host.url("/missing/{title}.ogg"), tmp_dir=tmp_path / "downloads",
                           timeout_s=ANSWERING_HOST_TIMEOUT_S)
    reply = await MoodUseCase(db, classifier, fetcher).run(CALLER, "Some Song")
    assert isinstance(reply, ErrorReply) and reply.message.startswith("No audio found")
    said = [r.getMessage() for r in caplog.records if r.name == "bot.sources.audio" and r.levelno >= logging.INFO]
    assert said == ["audio.not_found: 127.0.0.1 answered HTTP 404"], said
