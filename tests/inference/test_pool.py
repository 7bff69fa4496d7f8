"""The warm pool: the main model answers when it can, the fallback ANN says why when it cannot."""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf

from inference import Classifier, MOODS, MoodResult
from inference import pool
from inference.pool import (
    FALLBACK_CRASHED,
    FALLBACK_OVERLOADED,
    FALLBACK_TIMEOUT,
    FALLBACK_UNAVAILABLE,
    default_threads,
)
from inference.predict import ANN_META, ANN_WEIGHTS, MAIN_WEIGHTS
from inference.result import ModelUnavailableError, SilentAudioError, TooLongAudioError, UnreadableAudioError
from tests.inference.test_predict import TINY_VERSION, clips, tiny_weights  # noqa: F401 (fixtures)
from tests.proctree import descendants, end_all, kill_outright, start_bot, still_running_after

# One warm classifier serves the module: each start spawns and warms a worker (seconds).
pytestmark = pytest.mark.timeout(120)
# The fallback's limit in the burst below, in runs of one song as timed there: the bug it shows
# counted the wait behind up to 39 others.
ANN_RUNS_ALLOWED = 12
in_module_loop = pytest.mark.asyncio(loop_scope="module")  # for the tests that use it


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def classifier(tiny_weights):
    async with Classifier(tiny_weights, workers=1, timeout_s=30.0) as warm:
        yield warm


async def eventually(condition, within_s: float = 30.0) -> bool:
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def assert_is_a_mood(result: MoodResult, model: str, reason: str | None) -> None:
    assert result.mood in MOODS
    assert set(result.probabilities) == set(MOODS)
    assert abs(sum(result.probabilities.values()) - 1.0) < 1e-5
    assert -1.0 <= result.valence <= 1.0 and -1.0 <= result.arousal <= 1.0
    assert result.seconds > 0
    assert (result.model, result.fallback_reason) == (model, reason)


@in_module_loop
async def test_the_main_model_answers_from_a_warm_worker(classifier, clips):
    assert classifier.main_model_available
    assert len(classifier.worker_pids) == 1
    first = await classifier.classify(clips[0])
    assert_is_a_mood(first, "main", None)
    assert first.model_version == TINY_VERSION
    again = await classifier.classify(clips[0])
    assert again.probabilities == first.probabilities  # deterministic across calls


@in_module_loop
async def test_workers_run_at_a_lower_cpu_priority_than_the_bot(classifier):
    """The event loop must not wait for a core behind a classification."""
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    for pid in classifier.worker_pids:
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, ours + pool.WORKER_NICE)


@in_module_loop
async def test_ctrl_c_in_the_terminal_is_left_to_the_bot(classifier, clips):
    """SIGINT reaches every process of the terminal's group; the workers leave it to the bot."""
    import signal

    pids = classifier.worker_pids + classifier.ann_worker_pids
    for pid in pids:
        os.kill(pid, signal.SIGINT)
    await asyncio.sleep(0.5)
    assert sorted(classifier.worker_pids + classifier.ann_worker_pids) == sorted(pids)
    assert (await classifier.classify(clips[0])).model == "main"


FORK_SERVER_UNDER_CTRL_C = """
import os, signal, sys, time
from multiprocessing import forkserver
from inference.pool import worker_context
# As Python run from a terminal has it, whatever this test's runner inherited (a shell's
# background job starts with SIGINT ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)
worker_context()  # starts the fork server, which then imports WORKER_PRELOAD for a second or more
pid = forkserver._forkserver._forkserver_pid
os.kill(pid, signal.SIGINT)  # Ctrl-C reaches the whole process group, the server mid-import too
time.sleep(0.3)
os.kill(pid, signal.SIGINT)
alive = os.waitpid(pid, os.WNOHANG) == (0, 0)
print("alive" if alive else "dead", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
"""


def test_ctrl_c_while_the_fork_server_imports_prints_nothing_and_kills_nothing():
    """The server ignores SIGINT from its first instruction, not only once its imports are done."""
    done = subprocess.run([sys.executable, "-c", FORK_SERVER_UNDER_CTRL_C], capture_output=True, text=True,
                          timeout=120, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert done.stdout.split() == ["alive", "True"], done.stdout + done.stderr  # and the bot keeps its Ctrl-C
    assert "KeyboardInterrupt" not in done.stderr and "Traceback" not in done.stderr, done.stderr


BOT_WITH_A_WARM_CLASSIFIER = """
import asyncio, sys, threading, time
from inference import Classifier

classifier = Classifier(workers=2)  # the shipped weights
if sys.argv[1] == "thread":  # the fork server starts from a thread, which then ends
    starter = threading.Thread(target=asyncio.run, args=(classifier.start(),))
    starter.start()
    starter.join()
    time.sleep(0.5)  # time enough for anything that dies with that thread to die
else:
    asyncio.run(classifier.start())
assert classifier.main_model_available and len(classifier.worker_pids) == 2 and classifier.ann_worker_pids
print("ready", flush=True)
time.sleep(3600)
"""


@pytest.mark.parametrize("started_in", ["main", "thread"])
def test_a_bot_killed_outright_leaves_no_model_process_running(started_in):
    """SIGKILL (the OOM killer) runs no cleanup: the workers, the fork server and the resource
    tracker end by themselves, at once, and hold no model memory beside a restarted bot's."""
    bot = start_bot(BOT_WITH_A_WARM_CLASSIFIER, "ready", started_in)
    processes = descendants(bot.pid)
    try:
        assert len(processes) == 5  # the fork server, the resource tracker, two main workers, the ANN's
        kill_outright(bot)
        assert still_running_after(processes) == []
    finally:
        bot.kill()
        end_all(processes)


@in_module_loop
async def test_concurrent_files_all_get_an_answer(classifier, clips):
    results = await asyncio.gather(*(classifier.classify(clip) for clip in clips))
    assert [r.model for r in results] == ["main"] * len(clips)
    assert classifier.queue_depth == 0


@in_module_loop
async def test_the_ann_can_be_asked_for(classifier, clips):
    result = await classifier.classify(clips[1], model="ann")
    assert_is_a_mood(result, "ann", None)
    assert result.model_version == f"ann-{TINY_VERSION}"


@in_module_loop
async def test_the_ann_runs_in_a_low_priority_process_of_its_own(classifier, clips):
    """Not in a thread of the bot, where decoding and features would hold the event loop's GIL."""
    (ann_pid,) = classifier.ann_worker_pids
    assert ann_pid != os.getpid() and ann_pid not in classifier.worker_pids
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, ann_pid) == min(19, ours + pool.WORKER_NICE)
    in_thread = pool.concurrent.futures.ThreadPoolExecutor()
    in_thread.shutdown()  # the ANN must not need a thread of this process
    asyncio.get_running_loop().set_default_executor(in_thread)
    try:
        assert_is_a_mood(await classifier.classify(clips[0], model="ann"), "ann", None)
    finally:
        asyncio.get_running_loop().set_default_executor(pool.concurrent.futures.ThreadPoolExecutor())


@in_module_loop
async def test_a_killed_ann_worker_is_replaced_and_the_song_still_answered(classifier, clips):
    (ann_pid,) = classifier.ann_worker_pids
    os.kill(ann_pid, signal.SIGKILL)
    assert await eventually(lambda: ann_pid not in classifier.ann_worker_pids)
    result = await classifier.classify(clips[2], model="ann")  # finds the pool broken: replaced, retried
    assert_is_a_mood(result, "ann", None)
    assert classifier.ann_worker_pids and ann_pid not in classifier.ann_worker_pids


async def test_a_hung_ann_worker_is_killed_and_replaced(tiny_weights, clips):
    async with Classifier(tiny_weights, timeout_s=30.0) as classifier:
        classifier.ann_timeout_s = 0.5
        (ann_pid,) = classifier.ann_worker_pids
        os.kill(ann_pid, signal.SIGSTOP)  # hangs, like a decoder that never returns
        with pytest.raises(ModelUnavailableError, match="fallback model took too long"):
            await classifier.classify(clips[0], model="ann")
        assert await eventually(lambda: classifier.ann_worker_pids and ann_pid not in classifier.ann_worker_pids)
        classifier.ann_timeout_s = 30.0
        assert_is_a_mood(await classifier.classify(clips[0], model="ann"), "ann", None)


async def test_a_burst_of_fallback_songs_is_not_taken_for_a_hung_worker(tiny_weights, clips):
    """The fallback's time limit counts each song's own run, not its wait behind the others: with 40
    songs of ~0.1 s queued at once, the later ones passed the limit while waiting, were refused as
    'took too long', and the worker was killed under a song it was answering."""
    async with Classifier(tiny_weights, timeout_s=30.0) as classifier:
        (ann_pid,) = classifier.ann_worker_pids
        # Far above one song's run, far below forty's, as this machine runs them now: ~0.1 s on an
        # idle one, but a fixed limit (1.5 s, then 3 s) was passed by a single song with the machine
        # loaded far beyond its cores (4 test processes and 2 busy loops on 2 cores).
        took = []
        for clip in clips:
            started = time.monotonic()
            assert_is_a_mood(await classifier.classify(clip, model="ann"), "ann", None)
            took.append(time.monotonic() - started)
        classifier.ann_timeout_s = ANN_RUNS_ALLOWED * statistics.median(took)
        songs = [clips[i % len(clips)] for i in range(40)]
        answers = await asyncio.gather(*(classifier.classify(song, model="ann") for song in songs))
        for answer in answers:
            assert_is_a_mood(answer, "ann", None)
        assert classifier.ann_worker_pids == [ann_pid]


async def test_songs_queued_behind_a_hung_fallback_job_are_answered_not_cancelled(tiny_weights, clips):
    """Only the song whose job hangs is refused; the songs behind it get the replacement worker.
    Replacing the hung worker cancelled the jobs queued there: their callers got CancelledError (no
    answer at all in the bot, a traceback from the command line)."""
    async with Classifier(tiny_weights, timeout_s=30.0) as classifier:
        classifier.ann_timeout_s = 4.0  # the hung song's
        (ann_pid,) = classifier.ann_worker_pids
        os.kill(ann_pid, signal.SIGSTOP)  # hangs, like a decoder that never returns
        hung = asyncio.ensure_future(classifier.classify(clips[0], model="ann"))
        behind = [asyncio.ensure_future(classifier.classify(clips[i % len(clips)], model="ann")) for i in range(6)]
        await asyncio.sleep(0)  # the hung song's job handed over (its limit read); the others wait their turn
        # Theirs: a song's run, and the replacement worker's start before it. 4 s was passed with the
        # machine loaded far beyond its cores; what is shown here is that they are answered at all.
        classifier.ann_timeout_s = 30.0
        with pytest.raises(ModelUnavailableError, match="fallback model took too long"):
            await hung
        for answer in await asyncio.gather(*behind):
            assert_is_a_mood(answer, "ann", None)
        assert classifier.ann_worker_pids and ann_pid not in classifier.ann_worker_pids


async def test_closing_with_both_pools_hung_takes_one_grace_not_two(tiny_weights):
    """Each pool gives a hung worker CLOSE_GRACE_S before killing it; closed one after the other,
    a bot with both pools hung took two graces (~10 s) to stop."""
    async with Classifier(tiny_weights, timeout_s=30.0) as classifier:
        hung = [*classifier.worker_pids, *classifier.ann_worker_pids]
        assert len(hung) == 2
        for pid in hung:
            os.kill(pid, signal.SIGSTOP)  # hangs, like a decoder that never returns
        started = asyncio.get_running_loop().time()
        await classifier.close()
        took_s = asyncio.get_running_loop().time() - started
    # Measured (a grace of 5 s): 10.0 s one pool after the other, 5.0 s both at once.
    assert pool.CLOSE_GRACE_S <= took_s < 1.5 * pool.CLOSE_GRACE_S, took_s
    for pid in hung:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed and reaped


@in_module_loop
async def test_bad_audio_is_reported_not_hidden_by_a_fallback(classifier, tmp_path):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(22050 * 12, dtype=np.float32), 22050)
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(b"this is not audio" * 100)
    with pytest.raises(SilentAudioError):
        await classifier.classify(silent)
    with pytest.raises(UnreadableAudioError):
        await classifier.classify(garbage)
    assert classifier.main_model_available


@in_module_loop
async def test_a_file_over_the_callers_length_limit_is_refused_by_either_model(classifier, clips):
    """The caller's limit (the bot's MAX_AUDIO_DURATION_S) reaches the decoder in the workers, the
    fallback's too, which decodes the file again when the main model times out (the clips last 30 s)."""
    for model in ("auto", "main", "ann"):
        with pytest.raises(TooLongAudioError, match="lasts over 20 s; send a song shorter than that"):
            await classifier.classify(clips[0], model=model, max_seconds=20)
    assert_is_a_mood(await classifier.classify(clips[0], max_seconds=40), "main", None)
    assert_is_a_mood(await classifier.classify(clips[0], model="ann", max_seconds=40), "ann", None)
    with pytest.raises(ValueError, match="max_seconds must be positive"):
        await classifier.classify(clips[0], max_seconds=0)
    assert classifier.main_model_available and classifier.queue_depth == 0


async def test_a_missing_weights_dir_leaves_nothing_to_answer(tmp_path):
    with pytest.raises(ModelUnavailableError):
        await Classifier(tmp_path / "nowhere").start()


async def test_a_start_cancelled_while_the_workers_load_closes_without_stray_errors(tiny_weights):
    """Ctrl-C during the CLI's start cancels it: the warm-up jobs must not be left for asyncio to
    report as "exception was never retrieved" over the user's terminal."""
    import gc

    loop = asyncio.get_running_loop()
    reported = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context["message"]))
    try:
        classifier = Classifier(tiny_weights)
        starting = asyncio.ensure_future(classifier.start())
        assert await eventually(lambda: classifier.worker_pids)  # a worker is loading the model
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
        await classifier.close()
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert reported == []


async def test_without_main_weights_every_answer_comes_from_the_ann(tiny_weights, tmp_path, clips, caplog):
    only_ann = tmp_path / "weights"
    only_ann.mkdir()
    for name in (ANN_WEIGHTS, ANN_META):
        shutil.copy(tiny_weights / name, only_ann / name)
    async with Classifier(only_ann) as classifier:
        assert not classifier.main_model_available
        result = await classifier.classify(clips[0])
        assert_is_a_mood(result, "ann", FALLBACK_UNAVAILABLE)
        with pytest.raises(ModelUnavailableError):
            await classifier.classify(clips[0], model="main")
    assert "MAIN MODEL UNAVAILABLE" in caplog.text


async def test_without_the_ann_a_shed_job_says_no_model_can_answer(tiny_weights, tmp_path, clips, caplog):
    only_main = tmp_path / "weights"
    shutil.copytree(tiny_weights, only_main)
    (only_main / ANN_WEIGHTS).unlink()
    async with Classifier(only_main, max_queue=0) as classifier:
        assert classifier.main_model_available
        # Serving on without a fallback is warned of; only a start that fails says it in its error alone.
        assert "The fallback model is unavailable" in caplog.text
        with pytest.raises(ModelUnavailableError, match="fallback model is unavailable"):
            await classifier.classify(clips[0])
        assert_is_a_mood(await classifier.classify(clips[0], model="main"), "main", None)


async def test_a_corrupt_main_model_falls_back_to_the_ann(tiny_weights, tmp_path, clips):
    corrupt = tmp_path / "weights"
    shutil.copytree(tiny_weights, corrupt)
    (corrupt / MAIN_WEIGHTS).write_bytes(b"\x08\x07garbage" * 50)
    async with Classifier(corrupt) as classifier:
        result = await classifier.classify(clips[0])
    assert_is_a_mood(result, "ann", FALLBACK_UNAVAILABLE)


async def test_a_card_whose_embedding_head_is_not_one_score_per_mood_falls_back_to_the_ann_saying_why(
        tiny_weights, tmp_path, clips, caplog):
    """A main.json fusing a music-embedding head of 5 outputs: the main model loaded and then failed
    every song (each one logged as a failure, answered by the ANN as "main model failed")."""
    import json

    from inference.embedding import WEIGHTS as MUSICNN_WEIGHTS
    from inference.predict import MAIN_META
    from tests.inference.test_embedding import head_card

    mismatched = tmp_path / "weights"
    shutil.copytree(tiny_weights, mismatched)
    shutil.copy(pool.DEFAULT_WEIGHTS_DIR / MUSICNN_WEIGHTS, mismatched / MUSICNN_WEIGHTS)
    (mismatched / MAIN_META).write_text(json.dumps({
        "version": TINY_VERSION, "fusion": {"ann_weight": 0.0, "embedding_weight": 0.5, "main_weight": 0.5},
        "embedding_head": head_card(5),
    }))
    async with Classifier(mismatched, workers=1, threads_per_worker=1) as classifier:
        assert not classifier.main_model_available
        assert_is_a_mood(await classifier.classify(clips[0]), "ann", FALLBACK_UNAVAILABLE)
    [said] = [r.getMessage() for r in caplog.records if "MAIN MODEL UNAVAILABLE" in r.getMessage()]
    assert "embedding head in main.json" in said and "4 outputs, one per mood" in said


async def test_a_slow_main_model_times_out_to_the_ann(tiny_weights, clips):
    # Decoding 30 s of Opus alone takes far longer than 1 ms.
    async with Classifier(tiny_weights, timeout_s=0.001) as classifier:
        result = await classifier.classify(clips[0])
        assert_is_a_mood(result, "ann", FALLBACK_TIMEOUT)
        with pytest.raises(ModelUnavailableError, match="timeout"):
            await classifier.classify(clips[0], model="main")


async def test_a_stuck_worker_is_replaced(tiny_weights, clips):
    async with Classifier(tiny_weights, timeout_s=0.5) as classifier:
        (pid,) = classifier.worker_pids
        os.kill(pid, signal.SIGSTOP)  # the worker hangs, like a decoder that never returns
        result = await classifier.classify(clips[0])
        assert_is_a_mood(result, "ann", FALLBACK_TIMEOUT)
        # STUCK_AFTER_TIMEOUTS x 0.5 s later the hung pool is killed and a new one warms up.
        assert await eventually(lambda: classifier.worker_pids and pid not in classifier.worker_pids)
        classifier.timeout_s = 60.0  # let the next job wait for the replacement's warm-up
        after = await classifier.classify(clips[1])
        assert_is_a_mood(after, "main", None)


async def test_the_stuck_log_line_says_how_long_even_for_a_tiny_timeout(tiny_weights, clips, caplog):
    import re

    timeout = 0.005
    async with Classifier(tiny_weights, timeout_s=timeout) as classifier:
        (pid,) = classifier.worker_pids
        os.kill(pid, signal.SIGSTOP)
        assert_is_a_mood(await classifier.classify(clips[0]), "ann", FALLBACK_TIMEOUT)
        assert await eventually(lambda: "stuck" in caplog.text)
    (said,) = re.findall(r"A job ran (\S+) s past its timeout", caplog.text)
    assert float(said) == pytest.approx(pool.STUCK_AFTER_TIMEOUTS * timeout)  # not "0.0 s"


async def test_a_job_waiting_behind_a_slow_one_is_not_taken_for_a_stuck_one(tiny_weights, clips):
    """A job's stuck clock starts when a worker is free for it, not when it was submitted: with a
    short timeout, a job still queued behind a slow one was judged stuck and the pool killed.

    Timeline (T the timeout, S = STUCK_AFTER_TIMEOUTS): both jobs are submitted at 0 to a stopped
    worker. The first is stuck at (S + 1)T, the second at its start (the first's end) + (S + 1)T;
    counted from its submission, as before the fix, at (S + 1)T too. The pool is looked at halfway
    between those two, so that neither a slow first job nor a late check on a loaded machine (tests
    in 4 processes) falls on the wrong side of either."""
    timeout = 2.0
    loop = asyncio.get_running_loop()
    async with Classifier(tiny_weights, timeout_s=timeout) as classifier:
        (pid,) = classifier.worker_pids
        os.kill(pid, signal.SIGSTOP)  # both jobs wait in the pool past their timeouts
        submitted = loop.time()
        # The main model alone, so that the worker goes on as soon as both have timed out: the
        # ANN's two answers first took the first job past its own stuck limit on a loaded machine.
        for refused in await asyncio.gather(classifier.classify(clips[0], model="main"),
                                            classifier.classify(clips[1], model="main"), return_exceptions=True):
            assert isinstance(refused, ModelUnavailableError) and f"({FALLBACK_TIMEOUT})" in str(refused), refused
        assert classifier.queue_depth == 2  # taken by the worker's queue: too late to cancel

        first_ended: list[float] = []

        def hold_the_second(_job) -> None:  # it starts now, and runs long, but is not stuck yet
            if not first_ended:
                first_ended.append(loop.time())
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)

        for job in list(classifier._in_flight):
            job.add_done_callback(hold_the_second)
        os.kill(pid, signal.SIGCONT)  # the first job runs and ends, well within its stuck limit
        assert await eventually(lambda: first_ended, 60)
        stuck_s = (pool.STUCK_AFTER_TIMEOUTS + 1) * timeout
        assert first_ended[0] - submitted < stuck_s  # else the first job was stuck itself
        # Past the second job's limit as counted from its submission, short of it counted from its start.
        look_at = submitted + stuck_s + (first_ended[0] - submitted) / 2
        await asyncio.sleep(look_at - loop.time())
        assert classifier.worker_pids == [pid]
        assert classifier.queue_depth == 1  # the second job, held in its worker
        os.kill(pid, signal.SIGCONT)
        # On a loaded machine the second job may yet run past its own limit once let go, and the
        # pool is rightly replaced then: the last song waits for either.
        assert await eventually(lambda: classifier.queue_depth == 0, 60)
        classifier.timeout_s = 60.0
        assert_is_a_mood(await classifier.classify(clips[2]), "main", None)


async def test_a_replacement_pool_still_warming_up_is_not_killed_as_stuck(tiny_weights, clips, caplog, monkeypatch):
    timeout = 0.25
    async with Classifier(tiny_weights, timeout_s=timeout) as classifier:
        (pid,) = classifier.worker_pids
        monkeypatch.setattr(pool, "WARM_UP_HOLD_S", 12 * timeout)  # the replacement warms up slowly
        os.kill(pid, signal.SIGKILL)
        assert (await classifier.classify(clips[0])).model == "ann"  # and the pool is replaced
        assert await eventually(lambda: classifier.worker_pids)
        (warming,) = classifier.worker_pids
        # Queued behind the warm-up, this job times out; STUCK_AFTER_TIMEOUTS timeouts later the
        # replacement is still warming up, and must be left to.
        assert_is_a_mood(await classifier.classify(clips[1]), "ann", FALLBACK_TIMEOUT)
        await asyncio.sleep((pool.STUCK_AFTER_TIMEOUTS + 1) * timeout)
        assert classifier.worker_pids == [warming]
        # The timed-out job runs once the warm-up is over. On a loaded machine it may itself run
        # past its stuck limit (1 s here), and the pool is rightly replaced then: a song handed to
        # it just before was answered by the ANN as crashed. The last song waits for either.
        assert await eventually(lambda: classifier.queue_depth == 0, 60)
        classifier.timeout_s = 60.0
        assert_is_a_mood(await classifier.classify(clips[2]), "main", None)
    assert "did not warm up" not in caplog.text


async def test_a_replacement_pool_whose_worker_dies_while_it_warms_up_is_replaced_again_before_any_song(
        tiny_weights, clips, caplog, monkeypatch):
    """A replacement whose worker died as it warmed up (killed for memory, say) stayed broken until
    the next song found it so, and that song had the ANN's answer, as crashed."""
    monkeypatch.setattr(pool, "REPLACEMENT_BACKOFF_S", 0.05)
    async with Classifier(tiny_weights, timeout_s=60.0) as classifier:
        (first,) = classifier.worker_pids
        monkeypatch.setattr(pool, "WARM_UP_HOLD_S", 30.0)  # the replacement warms up until it is killed
        os.kill(first, signal.SIGKILL)
        assert_is_a_mood(await classifier.classify(clips[0]), "ann", FALLBACK_CRASHED)  # and it is replaced
        assert await eventually(lambda: classifier.worker_pids)
        (warming,) = classifier.worker_pids
        monkeypatch.setattr(pool, "WARM_UP_HOLD_S", 0.05)  # the next replacement warms up at once
        os.kill(warming, signal.SIGKILL)
        assert await eventually(lambda: classifier.worker_pids and warming not in classifier.worker_pids)
        assert await eventually(lambda: classifier._backend._ready)  # warm: no song waits for it
        assert_is_a_mood(await classifier.classify(clips[1]), "main", None)
    assert "inference.replacement_broke: replacing the pool again in 0.05 s (try 1 of 3)" in caplog.text


async def test_replacements_that_keep_dying_while_they_warm_up_are_left_for_the_next_song_after_the_tries(
        tiny_weights, clips, caplog, monkeypatch):
    """A worker that dies at every load (a crash in native code) is not replaced in a loop: after
    REPLACEMENT_TRIES, the pool is replaced when a song finds it broken, as any broken pool."""
    monkeypatch.setattr(pool, "REPLACEMENT_BACKOFF_S", 0.05)
    monkeypatch.setattr(pool, "REPLACEMENT_TRIES", 1)
    async with Classifier(tiny_weights, timeout_s=60.0) as classifier:
        (first,) = classifier.worker_pids
        monkeypatch.setattr(pool, "WARM_UP_HOLD_S", 30.0)  # each replacement warms up until it is killed
        os.kill(first, signal.SIGKILL)
        assert_is_a_mood(await classifier.classify(clips[0]), "ann", FALLBACK_CRASHED)
        killed = [first]
        for _ in range(2):  # the replacement, then the one tried again in its place
            assert await eventually(lambda: classifier.worker_pids and not set(classifier.worker_pids) & set(killed))
            (warming,) = classifier.worker_pids
            os.kill(warming, signal.SIGKILL)
            killed.append(warming)
        await asyncio.sleep(20 * pool.REPLACEMENT_BACKOFF_S)
        assert classifier.worker_pids == []  # no third try
        monkeypatch.setattr(pool, "WARM_UP_HOLD_S", 0.05)
        assert_is_a_mood(await classifier.classify(clips[1]), "ann", FALLBACK_CRASHED)  # it finds it broken
        assert await eventually(lambda: classifier._backend._ready and classifier.worker_pids)
        assert_is_a_mood(await classifier.classify(clips[2]), "main", None)
    assert caplog.text.count("inference.replacement_broke: replacing the pool again") == 1


async def test_a_job_still_queued_when_a_stuck_pool_is_replaced_gets_an_answer(tiny_weights, clips):
    """Replacing a stuck pool must not cancel the other callers' jobs: their classify() raised
    CancelledError, which ended the CLI with a traceback and reads as a cancelled task in the bot.
    The stuck check must come within half a timeout of its time, before the queued job's own
    timeout: 0.5 s of slack, not 0.25, for a busy machine."""
    timeout = 1.0
    async with Classifier(tiny_weights, timeout_s=timeout) as classifier:
        (pid,) = classifier.worker_pids
        os.kill(pid, signal.SIGSTOP)
        stuck = [asyncio.ensure_future(classifier.classify(clip)) for clip in clips[:2]]  # fill the worker's queue
        # Submitted half a timeout before the first job is judged stuck, this one is still queued then.
        await asyncio.sleep((pool.STUCK_AFTER_TIMEOUTS + 0.5) * timeout)
        queued = await classifier.classify(clips[2])
        assert_is_a_mood(queued, "ann", FALLBACK_CRASHED)
        await asyncio.gather(*stuck)
        assert pid not in classifier.worker_pids


async def test_an_overloaded_pool_sheds_to_the_ann_at_once_without_blocking_the_loop(tiny_weights, clips):
    async with Classifier(tiny_weights, max_queue=0) as classifier:
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.ensure_future(ticker())
        result = await classifier.classify(clips[2])
        task.cancel()
        assert_is_a_mood(result, "ann", FALLBACK_OVERLOADED)
        assert classifier.queue_depth == 0
    assert ticks >= 0.3 * result.seconds / 0.01  # the loop kept ticking while the ANN ran


async def test_an_overload_is_one_warning_when_it_starts_and_one_line_when_it_is_over(tiny_weights, clips, caplog):
    """Load shed to the ANN left no line of the pool's: only each answer's fallback=overloaded at
    INFO, so an operator watching WARNINGs never saw every song heard by the weaker model."""
    async with Classifier(tiny_weights, max_queue=0) as classifier:
        for clip in clips[:2]:
            assert_is_a_mood(await classifier.classify(clip), "ann", FALLBACK_OVERLOADED)
        classifier.max_queue = 8
        assert (await classifier.classify(clips[2])).model == "main"
    logged = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "inference.pool"
              and "overload" in r.getMessage()]
    assert logged == [
        ("WARNING", "inference.overloaded: 0 songs in the model workers (INFERENCE_MAX_QUEUE 0): the fallback ANN answers "
                    "the songs asked for meanwhile"),
        ("DEBUG", "inference.overloaded: 0 songs in the model workers (INFERENCE_MAX_QUEUE 0)"),
        ("INFO", "inference.overload_over: 2 songs were answered by the fallback ANN")], logged


def test_workers_times_threads_fit_the_cores():
    cores = len(os.sched_getaffinity(0))
    for workers in (1, 2, 3, 8):
        threads = default_threads(workers)
        assert threads >= 1
        assert workers * threads <= max(cores, workers)


def test_the_worker_initializer_limits_threads_before_numpy_loads(tiny_weights):
    script = (
        "import sys, threadpoolctl\n"
        "from inference.pool import _init_worker\n"
        "assert 'numpy' not in sys.modules\n"
        f"_init_worker({str(tiny_weights)!r}, 1)\n"
        "print(sorted({p['num_threads'] for p in threadpoolctl.threadpool_info()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1]"


async def test_two_workers_start_warm(tiny_weights, clips):
    async with Classifier(tiny_weights, workers=2, threads_per_worker=1) as classifier:
        assert len(classifier.worker_pids) == 2
        results = await asyncio.gather(*(classifier.classify(c) for c in clips[:2]))
    assert [r.model for r in results] == ["main", "main"]


def test_an_unknown_executor_is_refused():
    with pytest.raises(ValueError, match="dask://"):
        Classifier(executor="threads")


@in_module_loop
async def test_a_killed_worker_is_replaced_and_the_main_model_answers_again(classifier, clips):
    (pid,) = classifier.worker_pids
    job = asyncio.ensure_future(classifier.classify(clips[0]))
    # The job is submitted; whether it is running or still queued, killing the worker breaks it.
    await asyncio.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    crashed = await job
    assert_is_a_mood(crashed, "ann", FALLBACK_CRASHED)
    after = await classifier.classify(clips[1])
    assert_is_a_mood(after, "main", None)
    assert classifier.worker_pids and pid not in classifier.worker_pids


def _in_every_worker(classifier: Classifier, job, *args):
    """Run a picklable library function in the classifier's worker (one worker here)."""
    return classifier._backend._executor.submit(job, *args).result(timeout=30)


@in_module_loop
async def test_workers_are_forked_from_the_preloaded_fork_server(classifier, clips):
    """Not spawned from this process: a replaced worker starts with the libraries imported."""
    from multiprocessing import forkserver

    server = _in_every_worker(classifier, os.getppid)
    assert server != os.getpid()
    assert forkserver._forkserver._preload_modules == pool.WORKER_PRELOAD


@pytest.mark.parametrize("threads", [1, 2])
async def test_a_forked_worker_runs_one_blas_thread(tiny_weights, clips, threads):
    """numpy was loaded in the fork server before the worker's thread variables were set."""
    import threadpoolctl

    async with Classifier(tiny_weights, workers=1, threads_per_worker=threads) as classifier:
        assert (await classifier.classify(clips[0])).model == "main"
        blas = _in_every_worker(classifier, threadpoolctl.threadpool_info)
    assert {found["num_threads"] for found in blas if found["user_api"] == "blas"} == {1}


@in_module_loop
async def test_a_relative_path_is_the_callers_after_it_changed_folder(classifier, clips, tmp_path, monkeypatch):
    """The workers fork from a server started with the first pool, in the folder this process was
    in then: after a change of folder, a relative path was looked for there ("Cannot find the audio
    file", or another file of that name answered)."""
    shutil.copy(clips[0], tmp_path / "song.ogg")
    monkeypatch.chdir(tmp_path)
    assert_is_a_mood(await classifier.classify("song.ogg"), "main", None)
    assert_is_a_mood(await classifier.classify("song.ogg", model="ann"), "ann", None)


async def test_an_unreadable_ann_card_leaves_the_main_model_answering(tiny_weights, tmp_path, clips):
    import json

    weights = tmp_path / "weights"
    shutil.copytree(tiny_weights, weights)
    (weights / ANN_META).write_text(json.dumps({"version": "1", "feature_names": 5}))
    async with Classifier(weights) as classifier:  # raised TypeError
        assert_is_a_mood(await classifier.classify(clips[0]), "main", None)
        with pytest.raises(ModelUnavailableError, match="fallback model is unavailable"):
            await classifier.classify(clips[0], model="ann")


@in_module_loop
async def test_a_relative_path_through_a_linked_folder_is_the_file_the_system_opens(classifier, clips, tmp_path,
                                                                                  monkeypatch):
    """A relative path is made absolute by joining it to the caller's folder, not by folding its
    '..' away: 'link/..' is the parent of the folder the link points to, as the system opens it;
    folded, 'link/../song.ogg' was looked for beside the link ('Cannot find the audio file')."""
    (tmp_path / "albums" / "one").mkdir(parents=True)
    shutil.copy(clips[0], tmp_path / "albums" / "song.ogg")
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "link").symlink_to(tmp_path / "albums" / "one")
    monkeypatch.chdir(tmp_path / "here")
    assert os.path.isfile("link/../song.ogg")  # as the system opens it
    assert_is_a_mood(await classifier.classify("link/../song.ogg"), "main", None)
    assert_is_a_mood(await classifier.classify("link/../song.ogg", model="ann"), "ann", None)
