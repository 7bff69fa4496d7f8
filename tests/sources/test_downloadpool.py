"""Downloads run in warm worker processes, not in the bot's: a job that overruns is killed with its
worker, a worker that dies is replaced, and no more than `max_workers` run at once."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from bot.sources.audio import AudioFetcher
from bot.sources.downloadpool import DownloadPool, JobFailedError, WorkerCrashedError
from bot.sources.models import DownloadError, Query, QueryKind
from tests.frontends.test_telegram_inbox import until
from tests.proctree import REPOSITORY, descendants, end_all, kill_outright, still_running_after

JOB_TIMEOUT_S = 30.0  # generous: a cold worker imports the download code on a busy machine


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def pool():
    pool = DownloadPool(max_workers=2)
    yield pool
    pool.close()


async def test_a_job_runs_in_another_process_and_the_worker_stays_warm(pool):
    first = await pool.run(os.getpid, timeout_s=JOB_TIMEOUT_S)
    second = await pool.run(os.getpid, timeout_s=JOB_TIMEOUT_S)
    assert first != os.getpid()
    assert second == first  # the same warm worker took the next job


def scheduling_identity() -> tuple[int, int, int, int, str | None]:
    try:
        with open("/proc/self/autogroup") as f:
            words = f.read().split()
    except OSError:  # autogroup scheduling compiled out
        words = []
    autogroup = words[0] if words else None  # some sandboxed kernels give an empty file
    return os.getpid(), os.getpgid(0), os.getsid(0), os.nice(0), autogroup


async def test_a_worker_has_its_own_process_group_in_the_bots_session_and_runs_niced(pool):
    pid, group, session, nice, autogroup = await pool.run(scheduling_identity, timeout_s=JOB_TIMEOUT_S)
    assert group == pid != os.getpid()  # a kill of the group reaches the worker's ffmpeg, and nothing else
    assert session == os.getsid(0)  # not a session of its own: its nice counts against the bot's loop
    assert autogroup == scheduling_identity()[4]
    assert nice == os.nice(0) + pool.nice


async def test_warm_up_starts_workers_that_take_the_first_jobs(pool):
    await pool.warm_up()
    warm = pool.worker_pids()
    assert len(warm) == pool.warm_workers == 2
    pids = await asyncio.gather(*(pool.run(os.getpid, timeout_s=JOB_TIMEOUT_S) for _ in range(2)))
    assert set(pids) <= set(warm) and pool.worker_pids() == warm


async def test_the_jobs_error_comes_back_with_its_type_and_words(pool):
    with pytest.raises(ValueError, match="invalid literal"):
        await pool.run(int, "not a number", timeout_s=JOB_TIMEOUT_S)
    assert await pool.run(int, "7", timeout_s=JOB_TIMEOUT_S) == 7  # the worker survived it


def frames_of_a_parser(data: bytes) -> int:
    return a_parser_with_a_bug(data)


def a_parser_with_a_bug(data: bytes) -> int:
    return {"frames": len(data)}[data.decode()]  # a KeyError, as a bug in a section parser raises


async def test_a_jobs_unforeseen_error_comes_back_with_where_in_the_worker_it_was_raised(pool):
    """An error travels back pickled, which drops its traceback: the bot's `mood.failed` line of a
    bug in a download worker (its log.exception) showed the bot's frames down to the pool, and the
    worker's none, so nothing said where the bug was. The worker's frames now come as its cause,
    which a log line's traceback shows; the error's type and words are its own as before."""
    with pytest.raises(KeyError, match="'size'") as raised:
        await pool.run(frames_of_a_parser, b"size", timeout_s=JOB_TIMEOUT_S)
    shown = logging.Formatter().formatException((KeyError, raised.value, raised.value.__traceback__))
    assert "in frames_of_a_parser" in shown and "in a_parser_with_a_bug" in shown, shown


async def test_a_result_that_cannot_travel_back_is_a_named_error(pool):
    with pytest.raises(JobFailedError, match="lock"):
        await pool.run(threading.Lock, timeout_s=JOB_TIMEOUT_S)


async def test_an_overrunning_job_is_killed_with_its_worker(pool):
    worker = await pool.run(os.getpid, timeout_s=JOB_TIMEOUT_S)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await pool.run(time.sleep, 60, timeout_s=0.5)
    assert time.monotonic() - started < 5
    assert not is_running(worker)
    assert await pool.run(os.getpid, timeout_s=JOB_TIMEOUT_S) not in (worker, os.getpid())


async def test_a_cancelled_job_kills_its_worker(pool):
    worker = await pool.run(os.getpid, timeout_s=JOB_TIMEOUT_S)
    task = asyncio.create_task(pool.run(time.sleep, 60))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not is_running(worker)


async def test_a_worker_that_dies_mid_job_is_reported_and_replaced(pool):
    with pytest.raises(WorkerCrashedError) as info:
        await pool.run(os._exit, 3, timeout_s=JOB_TIMEOUT_S)
    assert "stopped unexpectedly" in str(info.value)
    assert await pool.run(int, "1", timeout_s=JOB_TIMEOUT_S) == 1


async def test_no_more_than_max_workers_run_at_once(pool):
    pids = await asyncio.gather(*(pool.run(os.getpid, timeout_s=JOB_TIMEOUT_S) for _ in range(8)))
    assert len(set(pids)) <= 2 and os.getpid() not in pids
    assert len(pool.worker_pids()) <= 2


class Refused(Exception):
    pass


async def test_a_job_is_started_by_its_worker_not_while_it_waits_and_a_refused_start_runs_nothing(tmp_path):
    """`starting` is called as a worker takes the job, not while it waits for one (a download's
    room in the files held is taken there): two jobs wait behind a job holding the only worker,
    their `starting` not called; as it ends, the first's refuses (raises): nothing of it runs, and
    the worker, untouched, goes on to the second, whose `starting` is called just before it runs."""
    pool, go, marker = DownloadPool(max_workers=1), tmp_path / "go", tmp_path / "refused-ran"
    os.mkfifo(go)
    started: list[str] = []

    def starting(name: str):
        def start() -> None:
            started.append(name)
            if name == "refused":
                raise Refused()
        return start

    try:
        holding = asyncio.create_task(pool.run(go.read_bytes, timeout_s=JOB_TIMEOUT_S))  # until `go` is written
        assert await until(lambda: pool.worker_pids())
        (worker,) = pool.worker_pids()
        refused = asyncio.create_task(pool.run(os.mkdir, marker, timeout_s=JOB_TIMEOUT_S, starting=starting("refused")))
        let = asyncio.create_task(pool.run(os.getpid, timeout_s=JOB_TIMEOUT_S, starting=starting("let")))
        assert await until(lambda: pool.waiting == 2)
        assert started == []
        await asyncio.to_thread(go.write_bytes, b"done")
        assert await holding == b"done"
        with pytest.raises(Refused):
            await refused
        assert await let == worker  # the same worker: a refused start does not cost it
        assert started == ["refused", "let"] and not marker.exists()
    finally:
        pool.close()


async def test_the_pool_is_full_while_its_every_worker_is_busy_and_no_other_may_start(tmp_path):
    """`full` (the bot says "Fetching…" of a download only once a worker takes it, where it is):
    not before a job, nor with a worker idle; full while the only one runs a job; not once it ends."""
    pool, go = DownloadPool(max_workers=1, warm_workers=0), tmp_path / "go"
    os.mkfifo(go)
    try:
        assert not pool.full  # none started yet: one may start
        holding = asyncio.create_task(pool.run(go.read_bytes, timeout_s=JOB_TIMEOUT_S))  # until `go` is written
        assert await until(lambda: pool.worker_pids())
        assert pool.full
        await asyncio.to_thread(go.write_bytes, b"done")
        assert await holding == b"done"
        assert not pool.full  # its worker idle
    finally:
        pool.close()


async def test_the_workers_log_lines_are_logged_again_in_the_bot(pool, caplog):
    with caplog.at_level(logging.INFO, logger="bot.sources.somewhere"):
        await pool.run(logging.getLogger("bot.sources.somewhere").info, "cut %s", "failed",
                       timeout_s=JOB_TIMEOUT_S)
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("bot.sources.somewhere", logging.INFO, "cut failed")]


async def test_a_closed_pool_leaves_no_process_behind():
    pool = DownloadPool(max_workers=2)
    pids = set(await asyncio.gather(*(pool.run(os.getpid, timeout_s=JOB_TIMEOUT_S) for _ in range(2))))
    pool.close()
    assert not any(is_running(pid) for pid in pids)
    with pytest.raises(RuntimeError):
        await pool.run(os.getpid, timeout_s=JOB_TIMEOUT_S)


async def test_a_close_does_not_wait_for_an_idle_worker_still_starting():
    """A job's worker is started with a second one, idle, for the next (a burst has begun). The
    close asked the idle one to exit and waited for it (CLOSE_WAIT_S, 1 s): one still importing
    the download code could not read that before its imports were done, and the bot's exit
    waited (0.9 s of a SIGTERM's 5.3 s with two downloads cut short, on a loaded machine). An
    idle worker holds nothing: it is now ended at once, as a busy one is."""
    pool = DownloadPool(max_workers=2, preload=("tests.sources.slow_import",))
    job = asyncio.create_task(pool.run(os.getpid, timeout_s=JOB_TIMEOUT_S))
    await asyncio.sleep(0.2)  # both workers started, both importing for seconds
    workers = [worker.process.pid for worker in pool._workers]
    assert len(workers) == 2
    started = time.monotonic()
    pool.close()
    took = time.monotonic() - started
    job.cancel()  # (the pool is closed at the bot's exit, its loop gone: nothing waits on it then)
    with contextlib.suppress(asyncio.CancelledError):
        await job
    assert took < 0.5, took
    assert not any(is_running(pid) for pid in workers)


# -- through the fetcher ---------------------------------------------------------------------

async def test_a_hung_download_kills_its_worker_and_leaves_no_files(audio_server, tmp_path, pool):
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/hang/{title}.ogg", tmp_dir=tmp_path,
                           timeout_s=2.0, pool=pool)
    worker = await pool.run(os.getpid, timeout_s=JOB_TIMEOUT_S)  # warm: the 2 s are the download's alone
    with pytest.raises(DownloadError, match="took too long"):
        async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="x")):
            pass
    assert not is_running(worker)
    assert list(tmp_path.iterdir()) == []


async def test_a_download_worker_killed_mid_download_gives_a_readable_error(audio_server, tmp_path, pool):
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/hang/{title}.ogg", tmp_dir=tmp_path,
                           timeout_s=JOB_TIMEOUT_S, pool=pool)
    worker = await pool.run(os.getpid, timeout_s=JOB_TIMEOUT_S)

    async def kill_when_it_asks() -> None:
        while not audio_server.requests:  # the worker is inside the download now
            await asyncio.sleep(0.05)
        os.kill(worker, signal.SIGKILL)

    killer = asyncio.create_task(kill_when_it_asks())
    with pytest.raises(DownloadError) as info:
        async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="clip")):
            pass
    await killer
    assert str(info.value) == "The download of “clip” failed."
    assert list(tmp_path.iterdir()) == []
    ok = AudioFetcher(search_template=audio_server.base_url + "/{title}.ogg", tmp_dir=tmp_path, pool=pool)
    async with ok.fetch(Query(kind=QueryKind.TEXT, text="clip")) as audio:  # a fresh worker answers
        assert audio.path.stat().st_size > 0


BOT_MID_DOWNLOAD = """
import asyncio, subprocess, sys
from bot.sources.audio import AudioFetcher
from bot.sources.downloadpool import DownloadPool
from bot.sources.models import Query, QueryKind

base_url, tmp_dir = sys.argv[1:]
pool = DownloadPool(max_workers=2)
fetcher = AudioFetcher(search_template=base_url + "/hang/{title}.ogg", tmp_dir=tmp_dir, timeout_s=3600, pool=pool)
ffmpeg = ["ffmpeg", "-nostdin", "-loglevel", "quiet", "-i", base_url + "/hang/cut.ogg", "-f", "null", "-"]


async def download():
    async with fetcher.fetch(Query(kind=QueryKind.TEXT, text="song")):
        pass


async def main():
    await asyncio.gather(download(), pool.run(subprocess.run, ffmpeg))  # yt-dlp, and ffmpeg in a job

asyncio.run(main())
"""


def test_a_bot_killed_outright_mid_download_leaves_no_worker_nor_ffmpeg_running(audio_server, tmp_path):
    """Killed outright (SIGKILL, the OOM killer), the bot closes nothing: a worker mid-download
    ends by itself all the same, with the ffmpeg it started, not once its download is done."""
    bot = subprocess.Popen([sys.executable, "-c", BOT_MID_DOWNLOAD, audio_server.base_url, str(tmp_path)],
                           cwd=REPOSITORY)
    processes: dict[int, int] = {}
    try:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while len(audio_server.requests_for("/hang/song.ogg") + audio_server.requests_for("/hang/cut.ogg")) < 2:
            assert bot.poll() is None and time.monotonic() < deadline, "the downloads did not start"
            time.sleep(0.05)
        processes = descendants(bot.pid)
        assert len(processes) == 3  # two workers, one in yt-dlp and one in ffmpeg, and that ffmpeg
        kill_outright(bot)
        assert still_running_after(processes) == []
    finally:
        bot.kill()
        end_all(processes)
