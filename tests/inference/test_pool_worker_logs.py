"""What a model worker logs reaches the bot's own log, as the bot's lines: never raw text on the
terminal, which in console mode is the user's chat while the log goes to DATA_DIR/moodbot.log."""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import shutil
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Client

import pytest

from bot.logs import begin_request
from inference import Classifier, pool
from inference.audio import N_FRAMES, N_MELS, N_SEGMENTS
from inference.pool import FALLBACK_CRASHED, FALLBACK_TIMEOUT
from inference.predict import MAIN_WEIGHTS
from inference.result import MOODS, ModelUnavailableError
from tests.conftest import REPO
from tests.frontends.test_request_ids import lines_of
from tests.inference.conftest import ffmpeg_encode
from tests.inference.test_pool import eventually
from tests.inference.test_predict import clips, tiny_weights  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(120)

WARM_UP_FAILED = "Warm-up of the main model failed; the first request will be slower."
NODE_THAT_FAILS = "cannot_fit"  # onnxruntime's error names it


@pytest.fixture
def weights_whose_warm_up_fails(tiny_weights, tmp_path):
    """Weights that load but fail their warm-up song in the worker: a main.onnx that takes `mel` and
    answers (B, 4) `logits`, as the load checks, but whose one node reshapes the log-mel into a
    fixed (1, 4), which no input fits: onnxruntime fails every song it runs."""
    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights, folder)
    write_a_graph_that_cannot_run(folder / MAIN_WEIGHTS)
    return folder


def write_a_graph_that_cannot_run(path) -> None:
    import onnx
    from onnx import TensorProto, helper

    fixed = helper.make_tensor("fixed", TensorProto.INT64, [2], [1, len(MOODS)])
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["mel", "fixed"], ["logits"], name=NODE_THAT_FAILS)], "cannot-run",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", N_SEGMENTS, N_MELS, N_FRAMES])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(MOODS)])],
        [fixed],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def records_saying(caplog, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == text]


async def test_a_workers_failed_warm_up_is_one_record_of_the_bots_logging(weights_whose_warm_up_fails, caplog):
    caplog.set_level(logging.WARNING)
    async with Classifier(weights_whose_warm_up_fails, workers=1, threads_per_worker=1) as classifier:
        assert classifier.main_model_available  # the model loaded; only its warm-up song failed
    # Closed, the pool has waited for its workers' records to be logged.
    [record] = records_saying(caplog, WARM_UP_FAILED)
    assert record.name == "inference.predict" and record.levelno == logging.WARNING
    assert NODE_THAT_FAILS in record.exc_text  # the worker's traceback, as text
    assert record.process != os.getpid()  # logged in the worker, written here


def cut_short_mp3(clip, folder):
    """An MP3 cut short, as a download that stopped: its header states the whole clip's 30 s, more
    than its bytes hold, which the decoder notes (at DEBUG, naming the file) before decoding them."""
    whole = ffmpeg_encode(clip, folder / "whole.mp3", "-c:a", "libmp3lame", "-b:a", "128k")
    cut = folder / "cut.mp3"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 5])
    return cut


STATES_MORE = "states 30 s, more than its"


async def test_what_a_worker_logs_during_a_job_carries_the_callers_label(tiny_weights, clips, tmp_path, caplog):
    """The workers run in processes of their own, where the bot's request (a context variable) does
    not reach: their lines had no req=, and one could not tell which song, of which request, a
    worker's line was about. A job's lines now carry the label its caller gave (the bot gives its
    request's id), the main model's and the fallback's, a fallback after a timeout too; a job
    given none carries none."""
    cut = cut_short_mp3(clips[0], tmp_path)
    caplog.set_level(logging.DEBUG)
    async with Classifier(tiny_weights, workers=1, threads_per_worker=1) as classifier:
        # The decoder's DEBUG lines, held back in a worker (they name the file), let through.
        for executor in (classifier._backend._executor, classifier._ann_executor):
            executor.submit(logging.getLogger().setLevel, logging.DEBUG).result(timeout=30)
        [main_worker], [ann_worker] = classifier.worker_pids, classifier.ann_worker_pids
        assert (await classifier.classify(cut, label="tg-70213")).model == "main"
        assert (await classifier.classify(cut, model="ann", label="tg-70214")).model == "ann"
        assert (await classifier.classify(cut, model="ann")).model == "ann"
        classifier.timeout_s = 0.001  # the main model times out, the fallback answers
        late = await classifier.classify(cut, label="tg-70215")
        assert late.fallback_reason == FALLBACK_TIMEOUT

        def heard():  # (worker, req) of each decoder's line
            return {(r.process, getattr(r, "req", None)) for r in caplog.records if STATES_MORE in r.getMessage()}

        labelled = {(main_worker, "tg-70213"), (ann_worker, "tg-70214"), (ann_worker, None), (ann_worker, "tg-70215")}
        assert await eventually(lambda: labelled <= heard()), heard()  # the relay logs from threads of its own
    assert {req for _, req in heard()} <= {"tg-70213", "tg-70214", "tg-70215", None}


async def test_the_bots_lines_of_a_song_whose_worker_hung_are_its_requests(tiny_weights, clips, log_stream):
    """Of a song whose main model hung, the bot's process logs the fallback's answer, then, on a
    timer, after the request was answered, that the stuck pool was replaced: every line with the
    request's req=, as the worker's own lines carry its label."""
    begin_request("tg-70216")
    async with Classifier(tiny_weights, timeout_s=0.005) as classifier:
        [pid] = classifier.worker_pids
        os.kill(pid, signal.SIGSTOP)  # hangs, like a decoder that never returns
        assert (await classifier.classify(clips[0], label="tg-70216")).fallback_reason == FALLBACK_TIMEOUT
        begin_request(None)  # answered
        assert await eventually(lambda: lines_of(log_stream, "A model worker crashed or hung"))
    said = [line for event in ("Fallback ANN answers", "A job ran", "A model worker crashed or hung")
            for line in lines_of(log_stream, event)]
    assert len(said) == 3 and {line.get("req") for line in said} == {"tg-70216"}


CONSOLE_MODE_SCRIPT = """
import asyncio, sys
from bot.logs import configure_logging
from inference import Classifier, pool

async def main(weights):
    async with Classifier(weights, workers=1, threads_per_worker=1):
        pass

with open(sys.argv[2], "w") as log_file:  # the console's log file; stderr is the user's screen
    configure_logging("INFO", stream=log_file)
    asyncio.run(main(sys.argv[1]))
"""


def test_in_console_mode_a_workers_warning_is_a_line_of_the_log_file_and_not_on_the_screen(
    weights_whose_warm_up_fails, tmp_path
):
    """A fresh process, so that its fork server and workers write to this process's stderr."""
    log_file = tmp_path / "moodbot.log"
    done = subprocess.run(
        [sys.executable, "-c", CONSOLE_MODE_SCRIPT, str(weights_whose_warm_up_fails), str(log_file)],
        capture_output=True, text=True, timeout=90,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # before: the warning and its traceback, raw, on the user's screen
    [line] = [line for line in log_file.read_text().splitlines() if "Warm-up of the main model" in line]
    assert " level=WARNING logger=inference.predict " in line
    assert f'event="{WARM_UP_FAILED}"' in line and " exc=\"Traceback" in line and NODE_THAT_FAILS in line


def test_the_inference_cli_prints_a_workers_warning_readably_on_stderr(weights_whose_warm_up_fails, clips):
    done = subprocess.run(
        [sys.executable, "-m", "inference", "classify", "--weights",
         str(weights_whose_warm_up_fails), str(clips[0])],
        cwd=REPO, capture_output=True, text=True, timeout=90,
    )
    assert done.returncode == 0, done.stderr
    assert f"WARNING inference.predict: {WARM_UP_FAILED}\nTraceback (most recent call last):\n" in done.stderr
    assert done.stderr.count(WARM_UP_FAILED) == 1 and NODE_THAT_FAILS in done.stderr


async def test_a_worker_killed_outright_leaves_its_replacements_records_reaching_the_log(
    weights_whose_warm_up_fails, clips, caplog
):
    caplog.set_level(logging.WARNING)
    async with Classifier(weights_whose_warm_up_fails, workers=1, threads_per_worker=1) as classifier:
        [killed] = classifier.worker_pids
        os.kill(killed, signal.SIGKILL)
        crashed = await classifier.classify(clips[0])
        assert crashed.fallback_reason == FALLBACK_CRASHED
        with pytest.raises(ModelUnavailableError):  # ran on the replacement, which failed the file too
            await classifier.classify(clips[0], model="main")
        [replacement] = classifier.worker_pids

    warm_ups = records_saying(caplog, WARM_UP_FAILED)
    assert replacement != killed and sorted(r.process for r in warm_ups) == sorted([killed, replacement])


def test_a_worker_killed_mid_record_cuts_short_only_its_own_records(caplog):
    """Each worker sends on a connection of its own: one that ends halfway through a record (its
    worker killed as it wrote) neither stops the relay nor garbles another worker's records."""
    caplog.set_level(logging.WARNING)
    killed_pid, other_pid, late_pid = -101, -102, -103  # the relay's names for the connections
    killed, other = connect_as_a_worker(killed_pid), connect_as_a_worker(other_pid)
    killed.send(worker_record("killed.before"))
    os.write(killed.fileno(), struct.pack("!i", 4096) + b"half a record")  # a length, then too little
    killed.close()
    other.send(worker_record("other.after"))
    other.close()
    pool._log_relay.wait_for([killed_pid, other_pid], timeout_s=30.0)
    assert killed_pid not in pool._log_relay._readers  # its reader has ended, not waiting for the rest

    assert sorted(r.getMessage() for r in caplog.records) == ["killed.before", "other.after"]
    late = connect_as_a_worker(late_pid)  # the relay still takes new workers
    late.send(worker_record("late"))
    late.close()
    pool._log_relay.wait_for([late_pid], timeout_s=30.0)
    assert caplog.records[-1].getMessage() == "late"


# What a local process that is not a worker may send the relay: nothing, half a message (a length,
# then less), or a length past anything a handshake sends (the relay stopped for every worker).
STRANGERS = {
    "silent": b"",
    "half a message": struct.pack("!i", 20) + b"half",
    "an overlong message": struct.pack("!i", 1 << 20),
}


def a_stranger(sends: bytes) -> socket.socket:
    """A real connection to the relay's socket that never authenticates: it sends `sends`, then nothing."""
    stranger = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stranger.connect(pool.log_relay_address())
    stranger.sendall(sends)
    return stranger


@pytest.mark.parametrize("sends", STRANGERS.values(), ids=STRANGERS.keys())
def test_a_connection_that_never_authenticates_holds_up_no_worker(sends, monkeypatch, caplog):
    """The handshake ran in the relay's one accepting thread, without a bound: a connection that
    sent nothing held it, and every worker started after it waited in its initializer for good."""
    monkeypatch.setattr(pool, "LOG_RELAY_HANDSHAKE_S", 120.0)  # the stranger stays for this whole test
    caplog.set_level(logging.WARNING)
    worker_pid = -201
    stranger = a_stranger(sends)
    try:
        connected: list = []
        worker = threading.Thread(target=lambda: connected.append(connect_as_a_worker(worker_pid)), daemon=True)
        worker.start()
        worker.join(WORKER_CONNECTS_S)
        assert connected, "a worker could not reach the relay while a stranger was connected"
        connected[0].send(worker_record("heard meanwhile"))
        connected[0].close()
        pool._log_relay.wait_for([worker_pid], timeout_s=WORKER_CONNECTS_S)
        assert "heard meanwhile" in [r.getMessage() for r in caplog.records]
    finally:
        stranger.close()


@pytest.mark.parametrize("sends", STRANGERS.values(), ids=STRANGERS.keys())
def test_a_connection_that_does_not_authenticate_in_time_is_dropped_with_a_log_line(sends, monkeypatch, caplog):
    monkeypatch.setattr(pool, "LOG_RELAY_HANDSHAKE_S", HANDSHAKE_S)
    caplog.set_level(logging.WARNING)
    stranger = a_stranger(sends)
    stranger.settimeout(WORKER_CONNECTS_S)
    try:
        heard = b""
        while chunk := stranger.recv(4096):  # the relay's challenge, then the end: it hung up
            heard += chunk
    finally:
        stranger.close()
    assert heard.startswith(struct.pack("!i", len(heard) - 4))  # one message: the challenge
    deadline = time.monotonic() + WORKER_CONNECTS_S
    while not [r for r in caplog.records if r.name == pool.__name__]:
        assert time.monotonic() < deadline, "the relay dropped the connection without a word"
        time.sleep(0.01)
    [said] = [r for r in caplog.records if r.name == pool.__name__]
    assert said.levelno == logging.WARNING and said.getMessage().startswith(
        "The model workers' log relay dropped a local connection that did not authenticate")


HANDSHAKE_S = 0.5
WORKER_CONNECTS_S = 30.0  # generous; a relay that is not held up answers in milliseconds


def connect_as_a_worker(pid: int):
    """A connection to the relay, as `send_logs_to_the_bot` makes it: its name sent and answered."""
    connection = Client(pool.log_relay_address(), authkey=multiprocessing.current_process().authkey)
    connection.send(pid)
    assert connection.recv() is True
    return connection


def worker_record(message: str) -> logging.LogRecord:
    return logging.LogRecord("tests.worker", logging.WARNING, __file__, 1, message, None, None)


RESTARTS = 20  # half of the main model's worker, half of the fallback's
SETTLE_S = 30.0  # generous: a replaced pool's manager thread ends once its workers are reaped


async def test_workers_replaced_many_times_leave_no_reader_thread_nor_socket_in_the_bot(tiny_weights, clips):
    """Each worker holds a connection to the relay, read by a thread of the bot: a crashed worker's
    replacement must not add to them. 20 replacements, then as many threads and open files as before."""
    async with Classifier(tiny_weights, workers=1, threads_per_worker=1, timeout_s=30.0) as classifier:
        await classifier.classify(clips[0])
        threads_before, files_before = threading.active_count(), open_files()
        killed = []
        for restart in range(RESTARTS):
            main = restart % 2 == 1
            [pid] = classifier.worker_pids if main else classifier.ann_worker_pids
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            if main:  # the crash is seen (the ANN answers), then the replacement answers
                assert (await classifier.classify(clips[0])).fallback_reason == FALLBACK_CRASHED
            await classifier.classify(clips[0], model="main" if main else "ann")  # the ANN retries there
        pool._log_relay.wait_for(killed, timeout_s=SETTLE_S)
        assert not set(killed) & set(pool._log_relay._readers)
        deadline = time.monotonic() + SETTLE_S
        while threading.active_count() > threads_before or open_files() > files_before:
            assert time.monotonic() < deadline, (
                f"threads {threads_before} -> {threading.active_count()}, files {files_before} -> {open_files()}"
            )
            await asyncio.sleep(0.05)


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))
