"""The same classifier on a Dask cluster: `executor="dask://host:port"`."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket

import numpy as np
import pytest
import soundfile as sf

from inference import Classifier, pool
from inference.pool import FALLBACK_FAILED, FALLBACK_TIMEOUT, FALLBACK_UNAVAILABLE
from inference.result import ModelUnavailableError, TooLongAudioError, TooShortAudioError
from tests.inference.test_pool_worker_logs import STATES_MORE, cut_short_mp3
from tests.inference.test_pool_worker_logs import weights_whose_warm_up_fails  # noqa: F401 (fixture)
from tests.inference.test_predict import TINY_VERSION, clips, tiny_weights  # noqa: F401 (fixtures)

# Dask retries a refused connection until its timeout: 10 s as served, 1 s is enough here.
UNREACHABLE_AFTER_S = 1.0

pytestmark = pytest.mark.timeout(180)


@contextlib.asynccontextmanager
async def a_local_cluster(port: int = 0, processes: bool = True, threads: int = 1, worker_port: int | None = None,
                          workers: int = 1):
    """A Dask cluster of `workers` (one) in processes of their own (its scheduler on `port`, 0: any
    free one), or, `processes` False, in this process, with no nanny; the classifier's executor
    for it. Each worker runs `threads` jobs at once, on `worker_port` (None: any free one, a new
    one for each restart)."""
    from distributed import LocalCluster

    on_port = {} if worker_port is None else {"worker_port": worker_port}
    async with LocalCluster(
        n_workers=workers, threads_per_worker=threads, processes=processes, protocol="tcp://", host="127.0.0.1",
        scheduler_port=port, dashboard_address=None, asynchronous=True, **on_port,
    ) as cluster:
        yield "dask://" + cluster.scheduler_address.removeprefix("tcp://")


async def test_a_dask_worker_answers_with_the_main_model(tiny_weights, clips, tmp_path):
    short = tmp_path / "short.wav"
    sf.write(short, np.sin(np.arange(3 * 22050) / 7).astype(np.float32), 22050)
    async with a_local_cluster() as executor:
        async with Classifier(tiny_weights, executor=executor, threads_per_worker=1) as classifier:
            assert classifier.main_model_available
            first = await classifier.classify(clips[0])
            second = await classifier.classify(clips[0])
            with pytest.raises(TooShortAudioError):  # the worker's audio error, as-is
                await classifier.classify(short)
            with pytest.raises(TooLongAudioError, match="over 20 s"):  # the caller's length limit travels
                await classifier.classify(clips[0], max_seconds=20)
        async with Classifier(tiny_weights, executor=executor, timeout_s=0.001) as impatient:
            late = await impatient.classify(clips[1])
    assert (first.model, first.model_version, first.fallback_reason) == ("main", TINY_VERSION, None)
    assert second.probabilities == first.probabilities
    assert (late.model, late.fallback_reason) == ("ann", FALLBACK_TIMEOUT)


class KeptLines(logging.Handler):
    """In a Dask worker: the decoder's lines, each as (message, req), kept for `the_decoders_lines`."""

    lines: list[tuple[str, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        KeptLines.lines.append((record.getMessage(), getattr(record, "req", None)))


def keep_the_decoders_lines() -> None:
    logger = logging.getLogger("inference.audio")
    logger.setLevel(logging.DEBUG)  # they name the file: held back unless asked for
    logger.addHandler(KeptLines())


def the_decoders_lines() -> list[tuple[str, str | None]]:
    return list(KeptLines.lines)


async def test_what_a_dask_worker_logs_during_a_job_carries_the_callers_label(tiny_weights, clips, tmp_path):
    """Dask's workers keep Dask's logging; a record logged there during a job carries the caller's
    label as `req` all the same (a format with `%(req)s` shows it), and none for a job given none."""
    cut = cut_short_mp3(clips[0], tmp_path)
    async with a_local_cluster() as executor:
        async with Classifier(tiny_weights, executor=executor, threads_per_worker=1) as classifier:
            client = classifier._backend._client
            await client.run(keep_the_decoders_lines)
            assert (await classifier.classify(cut, label="dc-1169")).model == "main"
            assert (await classifier.classify(cut)).model == "main"
            [lines] = (await client.run(the_decoders_lines)).values()
    assert [req for message, req in lines if STATES_MORE in message] == ["dc-1169", None]


def let_the_decoders_lines_through() -> None:
    """In a Dask worker: the decoder's DEBUG lines (they name the file) printed, by what prints its lines."""
    logging.getLogger("inference.audio").setLevel(logging.DEBUG)
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.DEBUG)


async def test_what_a_dask_worker_prints_of_a_job_names_its_request(weights_whose_warm_up_fails, clips, tmp_path, capfd):
    """A Dask worker's records carried the job's label, but nothing printed it: Dask's format has no
    `req`, and the model's own records went to Python's last resort, the bare message. A song that
    failed there could not be tied to its request. Now a job's own lines (the decoder's, here) end
    with req=<label>, in Dask's line format, and Dask's own (Compute Failed) name the job's key,
    which ends with req=<label>; the bot's line of the failure carries the same req=."""
    cut = cut_short_mp3(clips[0], tmp_path)
    async with a_local_cluster() as executor:
        async with Classifier(weights_whose_warm_up_fails, executor=executor, threads_per_worker=1) as classifier:
            await classifier._backend._client.run(let_the_decoders_lines_through)
            answer = await classifier.classify(cut, label="dc-1169")
    assert answer.fallback_reason == FALLBACK_FAILED
    printed = capfd.readouterr().err
    decoders = [line for line in printed.splitlines() if STATES_MORE in line]
    assert decoders and all(re.fullmatch(r"\S+ \S+ - inference\.audio - DEBUG - .* req=dc-1169", line)
                            for line in decoders), decoders
    assert re.search(r"Compute Failed\nKey: +classify_main-\S+-req=dc-1169\n", printed), printed


async def test_an_unreachable_dask_scheduler_leaves_the_fallback_answering(tiny_weights, clips, caplog, monkeypatch):
    from tests.dbserver import free_port

    monkeypatch.setattr(pool, "CONNECT_TIMEOUT_S", UNREACHABLE_AFTER_S)

    executor = f"dask://127.0.0.1:{free_port()}"  # nothing listens there
    async with Classifier(tiny_weights, executor=executor, threads_per_worker=1) as classifier:
        assert not classifier.main_model_available
        answer = await classifier.classify(clips[0])
    assert answer.model == "ann"
    assert any("cannot be reached" in r.getMessage() for r in caplog.records)


async def test_a_dask_scheduler_lost_while_serving_is_used_again_once_it_is_back(tiny_weights, clips, caplog, monkeypatch):
    """A scheduler restarted under a running bot: Dask's client gave up on it after its connect
    timeout and closed, and from then on every song was "main model failed" (an ERROR and a
    ClosedClientError traceback each) until the bot was restarted, the scheduler back or not. The
    ANN answers meanwhile as for a scheduler down at start, said once, and the main model answers
    again once the scheduler is back."""
    from tests.dbserver import free_port
    from tests.inference.test_pool import eventually

    monkeypatch.setattr(pool, "CONNECT_TIMEOUT_S", UNREACHABLE_AFTER_S)
    monkeypatch.setattr(pool, "RECONNECT_EVERY_S", 0.2)
    port = free_port()
    async with a_local_cluster(port) as executor:
        classifier = Classifier(tiny_weights, executor=executor, threads_per_worker=1, timeout_s=30.0)
        await classifier.start()
    try:
        client = classifier._backend._client
        assert await eventually(lambda: client.status == "closed", within_s=30)  # Dask's client gave up
        lost = [await classifier.classify(clips[0]) for _ in range(2)]
        assert [(answer.model, answer.fallback_reason) for answer in lost] == [("ann", FALLBACK_UNAVAILABLE)] * 2
        assert all(answer.seconds < 5 for answer in lost)  # not a wait for the timeout
        async with a_local_cluster(port):
            back = None
            for _ in range(100):
                back = await classifier.classify(clips[0])
                if back.model == "main":
                    break
                await asyncio.sleep(0.2)
            assert (back.model, back.fallback_reason) == ("main", None)
    finally:
        await classifier.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("inference")]
    said = [r.getMessage() for r in caplog.records if r.name == "inference.pool" and r.levelno == logging.WARNING]
    assert sum("was lost" in line for line in said) == 1, said
    assert sum("answers again" in line for line in said) == 1, said


# The fallback ANN decodes that file too, beside the stuck job still decoding it: past its 30 s
# limit on a loaded machine (a fresh-clone CI run, 4 test processes on 2 cores: "The fallback
# model took too long on this file"). These tests are about the stuck worker, not the ANN's speed.
SLOW_FILE_ANN_TIMEOUT_S = 180.0


def a_file_slow_to_decode(folder) -> str:
    """19 minutes of 96 kHz stereo clicks (45 MB of FLAC): seconds of decoding on a Dask worker,
    far past a timeout of a twentieth of a second and the stuck check after it."""
    clicks = np.zeros((96_000 * 60 * 19, 2), dtype=np.int16)
    clicks[::200, 0] = 3000
    path = folder / "slow.flac"
    sf.write(path, clicks, 96_000, subtype="PCM_16")
    return str(path)


async def dask_worker_pids(executor: str) -> set[int]:
    import os

    from distributed import Client

    async with Client("tcp://" + executor.removeprefix("dask://"), asynchronous=True) as client:
        return set((await client.run(os.getpid)).values())


async def test_a_dask_worker_still_running_an_abandoned_job_is_restarted(tiny_weights, clips, tmp_path):
    """Dask cannot stop a task's thread: a job abandoned at its timeout ran on, and a hung one held
    its worker's thread for good, every later song waiting behind it for its timeout. A job still
    running STUCK_AFTER_TIMEOUTS timeouts later has its worker restarted by the worker's nanny, as
    the process pool is replaced, and the main model answers the next song."""
    slow = a_file_slow_to_decode(tmp_path)
    async with a_local_cluster() as executor:
        async with Classifier(tiny_weights, executor=executor, timeout_s=0.05) as classifier:
            classifier.ann_timeout_s = SLOW_FILE_ANN_TIMEOUT_S
            before = await dask_worker_pids(executor)
            late = await classifier.classify(slow)
            assert (late.model, late.fallback_reason) == ("ann", FALLBACK_TIMEOUT)
            after = before
            for _ in range(100):
                after = await dask_worker_pids(executor)
                if after and not after & before:
                    break
                await asyncio.sleep(0.2)
            assert after and not after & before
            classifier.timeout_s = 60.0  # the restarted worker loads the model with its first song
            answer = await classifier.classify(clips[0])
    assert (answer.model, answer.fallback_reason) == ("main", None)


async def test_a_dask_worker_with_no_nanny_is_left_as_it_is_and_said_so(tiny_weights, tmp_path, caplog):
    """Dask's restart of a worker with no nanny is its removal (distributed's
    Scheduler.restart_workers: 'will be terminated'): such a worker is not asked of it, and the log
    says to restart it by hand."""
    from distributed import Client

    slow = a_file_slow_to_decode(tmp_path)
    async with a_local_cluster(processes=False) as executor:
        async with Client("tcp://" + executor.removeprefix("dask://"), asynchronous=True) as client:
            before = set((await client.scheduler.identity(n_workers=-1))["workers"])
            async with Classifier(tiny_weights, executor=executor, timeout_s=0.05) as classifier:
                classifier.ann_timeout_s = SLOW_FILE_ANN_TIMEOUT_S
                assert (await classifier.classify(slow)).fallback_reason == FALLBACK_TIMEOUT
                for _ in range(100):
                    if any("dask_worker_not_restarted" in r.getMessage() for r in caplog.records):
                        break
                    await asyncio.sleep(0.1)
            assert set((await client.scheduler.identity(n_workers=-1))["workers"]) == before
    assert any("dask_worker_not_restarted" in r.getMessage() for r in caplog.records)


def a_free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_two_jobs_stuck_on_one_dask_worker_have_it_restarted_once(tiny_weights, clips, tmp_path, caplog):
    """Each abandoned job has a stuck check of its own, and two stuck on one worker both find it
    stuck, within milliseconds. The second finds the first's restart under way: one request, one
    warning (until 2026-12-07 each asked, and the log said two restarts). Dask would restart it once
    all the same: a nanny asked to kill a worker it is
    already stopping waits for that stop, and the scheduler asks no nanny about a worker it no longer
    lists (the old one leaves it before its nanny starts the new one). Had the second request come
    once the first was over, it would have killed the fresh worker, back at the same address (a
    worker port set, as deployments do), and the scheduler would have seen a third worker join."""
    from distributed import Client

    slow = a_file_slow_to_decode(tmp_path)
    async with a_local_cluster(threads=2, worker_port=a_free_port()) as executor:
        async with Client("tcp://" + executor.removeprefix("dask://"), asynchronous=True) as client:
            # Both jobs are running when checked, a second after they were sent: the file takes seconds.
            async with Classifier(tiny_weights, executor=executor, timeout_s=0.25) as classifier:
                before = await dask_worker_pids(executor)
                both = await asyncio.gather(*(classifier.classify(slow, model="main") for _ in range(2)),
                                            return_exceptions=True)
                assert [type(outcome) for outcome in both] == [ModelUnavailableError] * 2, both
                checks = classifier._backend._stuck_checks
                for _ in range(600):  # each ends once its restart has ended, the worker back
                    if not checks:
                        break
                    await asyncio.sleep(0.1)
                assert not checks
                classifier.timeout_s = 60.0  # the restarted worker loads the model with its first song
                answer = await classifier.classify(clips[0])
                after = await dask_worker_pids(executor)
            events = [event for _, event in await client.get_events("all") if isinstance(event, dict)]
    asked = [event for event in events if event.get("action") == "restart-workers"]
    joined = [event for event in events if event.get("action") == "add-worker"]
    assert len(asked) == 1  # one stuck check asked, the other found the restart under way
    said = [r for r in caplog.records if "restarting the worker" in r.getMessage()]
    assert len(said) == 1, said
    assert len(joined) == 2, joined  # the first worker, then its one replacement
    assert len(after) == 1 and not after & before
    assert (answer.model, answer.fallback_reason) == ("main", None)


def model_loaded_with(weights_dir: str, threads: int) -> bool:
    """On a worker: whether its main model was loaded with `threads` (asking for it is no load)."""
    from inference import predict

    before = predict.cached_main_model.cache_info().misses
    predict.cached_main_model(weights_dir, threads)
    return predict.cached_main_model.cache_info().misses == before


async def test_a_dask_worker_shares_its_own_hosts_cores_among_the_jobs_it_runs_at_once(tiny_weights, clips):
    """The bot's own share of its cores (its cores over INFERENCE_WORKERS, 1 here) travelled with
    each job: a worker running as many jobs at once as its host has cores ran each with them all,
    cores x cores threads. It now takes its host's cores over its jobs at once (1 each here)."""
    from distributed import Client

    from inference.pool import _usable_cores

    cores = _usable_cores()
    assert cores >= 2, "needs two cores to tell the bot's share from the worker's"
    async with a_local_cluster(threads=cores) as executor:
        async with Classifier(tiny_weights, executor=executor, workers=1) as classifier:
            assert classifier.threads_per_worker == cores  # the bot's process pool would use them all
            answer = await classifier.classify(clips[0])
            assert answer.model == "main"
        async with Client("tcp://" + executor.removeprefix("dask://"), asynchronous=True) as client:
            loaded = await client.run(model_loaded_with, str(tiny_weights), 1)
    assert list(loaded.values()) == [True], loaded


async def test_dask_workers_on_one_host_share_its_cores_among_all_their_jobs(tiny_weights, clips):
    """Each worker process shared its host's cores among its own jobs alone: two workers of one job
    at a time each on a two-core host (`dask worker --nworkers 2`) ran the model on two threads
    each, four on two cores. Counted together with the host's other workers, each now takes one."""
    from distributed import Client

    from inference.pool import _usable_cores

    cores = _usable_cores()
    assert cores >= 2, "needs two cores to tell a worker's own share from the host's"
    async with a_local_cluster(threads=1, workers=cores) as executor:
        async with Classifier(tiny_weights, executor=executor, workers=1) as classifier:
            assert (await classifier.classify(clips[0])).model == "main"
        async with Client("tcp://" + executor.removeprefix("dask://"), asynchronous=True) as client:
            loaded = await client.run(model_loaded_with, str(tiny_weights), 1)
    assert list(loaded.values()) == [True] * cores, loaded


async def test_a_number_of_threads_given_is_what_a_dask_worker_uses(tiny_weights, clips):
    from distributed import Client

    async with a_local_cluster(threads=2) as executor:
        async with Classifier(tiny_weights, executor=executor, threads_per_worker=3) as classifier:
            assert (await classifier.classify(clips[0])).model == "main"
        async with Client("tcp://" + executor.removeprefix("dask://"), asynchronous=True) as client:
            loaded = await client.run(model_loaded_with, str(tiny_weights), 3)
    assert list(loaded.values()) == [True], loaded


class AWorkerJoinedLater:
    """What `_dask_threads` reads of a Dask worker whose first job comes before any warm-up counted
    its host (a worker restarted, or added to the cluster): its address, its jobs at once, its
    event loop (Dask's own, in a thread) and its connection to the scheduler, here one whose
    `identity` says `workers`, or fails where that is an exception."""

    def __init__(self, loop, workers, nthreads: int = 1) -> None:
        self.address = "tcp://10.0.0.7:4101"
        self.state = type("State", (), {"nthreads": nthreads})()
        self.loop = loop

        async def identity(n_workers: int = 0) -> dict:
            if isinstance(workers, BaseException):
                raise workers
            return {"workers": workers}

        self.scheduler = type("Scheduler", (), {"identity": staticmethod(identity)})()


@pytest.fixture
def dask_loop():
    from distributed.utils import LoopRunner

    runner = LoopRunner(asynchronous=False)
    runner.start()
    yield runner.loop
    runner.stop()


def test_a_worker_that_joined_after_the_warm_up_counts_its_hosts_workers_at_its_first_job(dask_loop, monkeypatch):
    from inference.pool import _dask_threads

    monkeypatch.setattr(pool, "_dask_shares", {})
    monkeypatch.setattr(pool, "_usable_cores", lambda: 8)
    host = {"tcp://10.0.0.7:4101": {"host": "10.0.0.7", "nthreads": 1},
            "tcp://10.0.0.7:4102": {"host": "10.0.0.7", "nthreads": 3},
            "tcp://10.0.0.9:4101": {"host": "10.0.0.9", "nthreads": 4}}  # another host's
    worker = AWorkerJoinedLater(dask_loop, host)
    assert _dask_threads(None, worker) == 2  # 8 cores over the 4 jobs this host's two workers run at once
    worker.scheduler = None  # asked once: the next jobs take the same share
    assert _dask_threads(None, worker) == 2
    assert _dask_threads(3, worker) == 3  # a number the bot was given wins


def test_a_worker_counts_its_host_again_and_takes_its_new_share_once_workers_join_or_leave(
        dask_loop, monkeypatch, caplog):
    """A worker counted its host once, at its warm-up or first job: with two more workers started
    on its host later, it went on with all the cores, and the host ran three workers' threads on
    them. It now counts again DASK_RECOUNT_S after its last count."""
    from inference.pool import DASK_RECOUNT_S, _dask_threads

    now = [1000.0]
    monkeypatch.setattr(pool, "_dask_shares", {})
    monkeypatch.setattr(pool, "_dask_clock", lambda: now[0])
    monkeypatch.setattr(pool, "_usable_cores", lambda: 8)
    caplog.set_level(logging.INFO, logger=pool.log.name)
    alone = {"tcp://10.0.0.7:4101": {"host": "10.0.0.7", "nthreads": 2}}
    worker = AWorkerJoinedLater(dask_loop, alone, nthreads=2)
    assert _dask_threads(None, worker) == 4  # 8 cores over its own 2 jobs: alone on its host
    joined = {**alone, "tcp://10.0.0.7:4102": {"host": "10.0.0.7", "nthreads": 2},
              "tcp://10.0.0.7:4103": {"host": "10.0.0.7", "nthreads": 4}}
    worker.scheduler = AWorkerJoinedLater(dask_loop, joined).scheduler
    now[0] += DASK_RECOUNT_S / 2
    assert _dask_threads(None, worker) == 4  # counted a moment ago: not asked for each job
    now[0] += DASK_RECOUNT_S / 2
    assert _dask_threads(None, worker) == 1  # 8 cores over the 8 jobs of the host's three workers
    assert "inference.dask_share_changed" in caplog.text and "from 4 to 1 threads" in caplog.text
    worker.scheduler = AWorkerJoinedLater(dask_loop, alone).scheduler  # the two others stopped
    now[0] += DASK_RECOUNT_S
    assert _dask_threads(None, worker) == 4
    worker.scheduler = AWorkerJoinedLater(dask_loop, OSError("the scheduler is gone")).scheduler
    now[0] += DASK_RECOUNT_S
    assert _dask_threads(None, worker) == 4  # the last count stands
    assert "could not be counted again" in caplog.text and "the scheduler is gone" in caplog.text
    worker.scheduler = AWorkerJoinedLater(dask_loop, joined).scheduler
    now[0] += DASK_RECOUNT_S / 2
    assert _dask_threads(None, worker) == 4  # a failed count waits as long as a count before it asks again
    now[0] += DASK_RECOUNT_S / 2
    assert _dask_threads(None, worker) == 1


async def test_a_dask_worker_takes_its_share_of_a_worker_started_on_its_host_later(
        tiny_weights, clips, monkeypatch):
    """A real scheduler's count: a worker alone on two cores runs the model on both; once a second
    worker joins its host and DASK_RECOUNT_S has passed, it runs on one, and so does the new one."""
    from distributed import Client, LocalCluster

    from inference.pool import DASK_RECOUNT_S, _dask_threads, _usable_cores

    cores = _usable_cores()
    assert cores >= 2, "needs two cores to tell one worker's share from two's"
    now = [1000.0]
    monkeypatch.setattr(pool, "_dask_shares", {})
    monkeypatch.setattr(pool, "_dask_clock", lambda: now[0])

    async def shares(dask_worker=None) -> int:  # on each worker (in this process), as its next job would
        return await asyncio.to_thread(_dask_threads, None, dask_worker)

    async with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                            host="127.0.0.1", dashboard_address=None, asynchronous=True) as cluster:
        executor = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        async with Client(cluster, asynchronous=True) as client:
            async with Classifier(tiny_weights, executor=executor, workers=1) as classifier:
                assert (await classifier.classify(clips[0])).model == "main"
                first = next(iter(cluster.workers.values())).address
                assert await client.run(shares) == {first: cores}
                assert await client.run(model_loaded_with, str(tiny_weights), cores) == {first: True}
                cluster.scale(2)
                await client.wait_for_workers(2)
                now[0] += DASK_RECOUNT_S
                assert set((await client.run(shares)).values()) == {cores // 2}
                assert (await classifier.classify(clips[1])).model == "main"
                loaded = await client.run(model_loaded_with, str(tiny_weights), cores // 2)
    assert loaded[first] is True  # the model at the new share: in this process, any worker's load counts


def test_a_worker_whose_scheduler_cannot_say_takes_its_own_share_and_asks_again_later(dask_loop, monkeypatch, caplog):
    from inference.pool import _dask_threads

    monkeypatch.setattr(pool, "_dask_shares", {})
    monkeypatch.setattr(pool, "_usable_cores", lambda: 8)
    gone = AWorkerJoinedLater(dask_loop, OSError("the scheduler is gone"), nthreads=2)
    assert _dask_threads(None, gone) == 4  # its 8 cores over its own 2 jobs, as before the count
    assert "inference.dask_host_unknown" in caplog.text and "the scheduler is gone" in caplog.text
    back = AWorkerJoinedLater(dask_loop, {gone.address: {"host": "10.0.0.7", "nthreads": 2},
                                          "tcp://10.0.0.7:4102": {"host": "10.0.0.7", "nthreads": 2}}, nthreads=2)
    assert _dask_threads(None, back) == 2  # not kept from the failure: asked again, and counted
