"""`Classifier`: the one place in moodbot that knows about processes.

The main model runs in a warm pool of worker processes (or on a Dask cluster); each worker loads the
ONNX session once. Whenever the main model cannot answer in time, the fallback ANN answers instead,
in a worker process of its own (ANN_WORKERS), and `MoodResult.fallback_reason` says why:

- "overloaded": more than `max_queue` jobs already in flight; shed load at once.
- "timeout": the main model took longer than `timeout_s`. A job still running STUCK_AFTER_TIMEOUTS
  timeouts later, counted from when a worker was free for it, is stuck: its pool is killed and
  replaced, warm. A job waiting behind others, or for a pool that is still warming up, is not.
- "worker crashed": the worker died under the job, or the pool broke with the job queued there; the
  pool is replaced, warm, for the next jobs.
- "main model unavailable": the main weights are missing or corrupt (logged once at start), or the
  Dask scheduler is not connected (tried again every RECONNECT_EVERY_S).
- "main model failed": anything else the main model raised.

Audio errors (unreadable, too short, silent) are not the model's fault: they reach the caller as-is.

Workers fork from a fork server that has imported the heavy libraries once (WORKER_PRELOAD), so a
replaced worker is warm in a fraction of a second. Each worker ends when the bot's process does,
however it ended (`die_with_the_bot`), and the fork server follows. What a worker logs is logged
by the bot's process, through the handlers the bot set up (`send_logs_to_the_bot`); what it logs
while it runs a job carries the job's `label`, the caller's opaque name for it, as `req` (`_as_job`),
on Dask's workers too. This module
itself imports nothing heavy: the bot imports it early, and a worker's initializer sets its thread
limits (the variables, for libraries that load after it, and BLAS's live, as numpy came with the
server).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.process
import contextlib
import contextvars
import copy
import inspect
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.util
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable

from inference.result import AudioError, ModelFailedOnFileError, ModelUnavailableError, MoodResult

log = logging.getLogger(__name__)

# The shipped weights. Spelled here rather than imported from `inference.predict`: importing predict
# loads numpy, and a worker must set its thread variables before that happens.
DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

MODELS = ("auto", "main", "ann")
PROCESS_EXECUTOR = "process"
DASK_SCHEME = "dask://"
# forkserver: each worker is forked from a clean server process, never from the event loop's
# process, so it inherits no locks or threads of the bot. The server imports the heavy libraries
# once (WORKER_PRELOAD), so a worker started later, such as the replacement of a crashed one,
# skips their imports (onnxruntime, scipy's FFT, PyAV, soxr).
START_METHOD = "forkserver"
FALLBACK_START_METHOD = "spawn"
# What a worker's job imports, the costly parts named. No librosa (nor numba): serving computes its
# features in numpy, and librosa's submodules alone took ~1.5 s to import, most of a first pool's
# start. "__main__" first, as in multiprocessing's own default: the server imports the bot's entry
# module once, not every worker. An import that fails is skipped. scipy's FFT is named: the
# inference modules import it in the functions that use it, so that the bot's own process (which
# loads the ANN, for its version) never pays its ~0.4 CPU-s.
WORKER_PRELOAD = [
    "__main__", "inference.predict", "onnxruntime", "threadpoolctl", "inference.embedding", "scipy.fft",
]
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
)
BLAS_THREADS = 1
# Workers yield the CPU to the process that started them: with both cores busy classifying, the
# bot's event loop had waited up to 60 ms for a core in a burst of uncached songs.
WORKER_NICE = 5
WARM_UP_TIMEOUT_S = 180.0  # the first pool starts the fork server too: seconds on a busy machine
CONNECT_TIMEOUT_S = 10.0  # a Dask scheduler that does not answer by then is down
RECONNECT_EVERY_S = 30.0  # a Dask scheduler lost while serving is asked again this often
# A Dask worker counts its host's workers again this long after its last count (`_dask_threads`): a
# worker that joins or leaves the host changes every other's share of its cores.
DASK_RECOUNT_S = 60.0
WARM_UP_HOLD_S = 0.05  # each warm-up job holds its worker a moment, so that every worker gets one
# Then workers still busy (a hung job) are killed. A song takes a worker well under a second; at
# 5 s, a bot stopped with a hung worker (its song cut short after the front-ends' 4 s grace) took
# 9.6 s, at `docker stop`'s 10 s, after which it is killed.
CLOSE_GRACE_S = 2.0
# A broken pool's manager thread fails the jobs queued there and ends milliseconds after it saw the
# pool break; the jobs it left unanswered are failed once it has ended (`_answer_the_rest`), or
# after this long, its end looked for every BROKEN_POOL_POLL_S.
BROKEN_POOL_END_S = 2.0
BROKEN_POOL_POLL_S = 0.01
# A replacement pool whose worker dies while it warms up (killed for memory, a crash in native code)
# is replaced again at once, after REPLACEMENT_BACKOFF_S, then twice that, and so on, this many
# times in a row at most; after that, as any broken pool, when the next song finds it broken. It
# used to wait for that song, which the ANN answered as crashed.
REPLACEMENT_TRIES = 3
REPLACEMENT_BACKOFF_S = 1.0
# The fallback ANN runs in a process of its own, never behind the main model's queue. Not in a
# thread of the bot: decoding and the features hold the GIL for up to tens of ms at a time, and in
# a burst of uncached songs every stall of the event loop past 40 ms came while ANN jobs ran.
ANN_WORKERS = 1
# An ANN job takes ~0.1 s; one still running after this long means its worker hangs (a decoder
# stuck on a strange file): the worker is killed and replaced. Jobs are handed to the worker one at
# a time, so this times a job's own run, never its wait behind the others of a burst.
ANN_TIMEOUT_S = 30.0
# A job still running this many timeouts after its own timeout is stuck (a decoder hanging on a
# strange file, say): its worker would never serve again, so the pool is replaced. Its clock starts
# when a worker is free for it, not when it was submitted.
STUCK_AFTER_TIMEOUTS = 3

# What a worker logs at this level or above reaches the bot's log. Not below: the decoder's debug
# lines name the file, and an upload keeps its sender's file name.
WORKER_LOG_LEVEL = logging.WARNING
# Workers connecting to the bot's log relay at once (a pool starting): more wait for the next accept.
LOG_RELAY_BACKLOG = 64
LOG_RELAY_CONNECT_S = 10.0  # a relay that has not answered a worker by then: it logs to stderr
# A connection to the relay that has not authenticated and named its worker by then is dropped: a
# worker does it in milliseconds, first thing in its initializer.
LOG_RELAY_HANDSHAKE_S = 10.0
# A pool closing waits this long at most for its ended workers' last records to be logged here, so
# that the bot's process does not exit with them unread.
LOG_DRAIN_S = 2.0

FALLBACK_OVERLOADED = "overloaded"
FALLBACK_TIMEOUT = "timeout"
FALLBACK_CRASHED = "worker crashed"
FALLBACK_UNAVAILABLE = "main model unavailable"
FALLBACK_FAILED = "main model failed"


def default_threads(workers: int) -> int:
    """Threads per worker so that workers x threads <= the cores this process may use."""
    return max(1, _usable_cores() // max(1, workers))


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context workers start from. The fork server is one per bot process,
    started with the first pool; the preload list only counts before it starts. Where there is
    no fork server (Windows), workers are spawned, each importing the libraries itself."""
    if START_METHOD not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context(FALLBACK_START_METHOD)
    short_socket_folder()
    context = multiprocessing.get_context(START_METHOD)
    context.set_forkserver_preload(WORKER_PRELOAD)
    _start_fork_server_deaf_to_ctrl_c()
    return context


# A Unix socket's path is at most 107 bytes. multiprocessing makes its sockets (the fork server's,
# the log relay's) as <temporary folder>/pymp-XXXXXXXX/listener-XXXXXXXX: 33 bytes after the folder.
SOCKET_PATH_MAX = 107
SOCKET_NAME_BYTES = len("/pymp-XXXXXXXX/listener-XXXXXXXX")
SHORT_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")


def short_socket_folder() -> None:
    """With a temporary folder ($TMPDIR) of ~75 characters or more, binding a socket there failed
    ("AF_UNIX path too long") and no worker ever started. multiprocessing's own folder for them is
    then made in the first of SHORT_FOLDERS that takes it (private to this user, as its own is, and
    removed at exit as its own is), with a warning; the rest of the temporary files stay in $TMPDIR.
    A folder multiprocessing already chose is kept."""
    config = multiprocessing.process.current_process()._config
    if config.get("tempdir") is not None:
        return
    wanted = tempfile.gettempdir()
    if len(os.fsencode(wanted)) + SOCKET_NAME_BYTES <= SOCKET_PATH_MAX:
        return
    for parent in SHORT_FOLDERS:
        try:
            folder = tempfile.mkdtemp(prefix="pymp-", dir=parent)  # mode 0700
        except OSError:
            continue
        config["tempdir"] = folder
        multiprocessing.util.Finalize(None, shutil.rmtree, args=(folder, True), exitpriority=-100)
        log.warning("inference.tmpdir_too_long", extra={
            "tmpdir": wanted, "sockets_in": folder,
            "reason": f"a socket's path may not pass {SOCKET_PATH_MAX} bytes"})
        return


# What a terminal sends the bot's whole process group, model workers included: Ctrl-C, and its
# closing (the shell's SIGHUP to its jobs). The bot stops on them; its workers end with it.
TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGHUP)


def _start_fork_server_deaf_to_ctrl_c() -> None:
    """Start the fork server, if not yet running, with SIGINT (and SIGHUP) ignored. Ctrl-C reaches the whole
    process group, and the server only ignores it once its preload imports are done: a Ctrl-C in
    the first seconds of a start printed a KeyboardInterrupt traceback from inside an import. An
    ignored signal stays ignored across exec, and Python then leaves it so. Only the main thread
    may change a signal's handler; elsewhere the server starts as before."""
    from multiprocessing import forkserver

    if threading.current_thread() is not threading.main_thread():
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in TERMINAL_SIGNALS}
    try:
        forkserver.ensure_running()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- Inside a worker process -------------------------------------------------------------------

def die_with_the_bot() -> None:
    """Kill this worker once the bot's process is gone, however it ended. Killed outright (SIGKILL,
    the OOM killer), the bot closes nothing, and its workers ran on with the models in memory beside
    a restarted bot's: their parent is the fork server, which waits for them to close its "alive"
    pipe, and each waits for jobs on a queue it holds both ends of. multiprocessing hands each
    worker a sentinel of the bot, a pipe that closes when the bot's process ends (not one of its
    threads, as PR_SET_PDEATHSIG would have it), on any platform; a thread waits on it. With the
    workers gone, the fork server and the resource tracker see their own pipes close and exit."""
    bot = multiprocessing.parent_process()
    if bot is None:  # not started by multiprocessing: nothing to watch
        return

    def kill_when_the_bot_is_gone() -> None:
        bot.join()  # returns at once if the bot died before this thread started
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=kill_when_the_bot_is_gone, name="bot-watch", daemon=True).start()


def send_logs_to_the_bot(relay_address) -> None:
    """Send every record this worker logs (WORKER_LOG_LEVEL and up, Python's warnings too) to the
    bot's log relay, which logs it through the bot's own handlers: its key=value lines, its log file,
    its redaction. Unsent, a worker's records went to Python's last-resort output on stderr, raw
    text on the console's screen and in no log file. Each worker has a connection of its own: one
    killed mid-record (a hung job, the bot gone) cuts only its own short. Where the relay cannot be
    reached (or was not given: a worker started by hand), records go to stderr as before."""
    if relay_address is None:
        return
    try:
        connection = multiprocessing.connection.Client(
            relay_address, authkey=multiprocessing.current_process().authkey
        )
    except (OSError, EOFError, multiprocessing.AuthenticationError):
        return
    try:
        # The relay's name for this connection; once it has answered, a pool that closes waits for
        # this worker's records (see _reap).
        connection.send(os.getpid())
        answered = connection.poll(LOG_RELAY_CONNECT_S) and connection.recv()
    except (OSError, EOFError):
        answered = False
    if not answered:
        connection.close()
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_SendToTheBot(connection))
    root.setLevel(WORKER_LOG_LEVEL)
    logging.captureWarnings(True)


class _SendToTheBot(logging.Handler):
    """A worker's handler: each record, made picklable, goes whole to the bot's log relay."""

    def __init__(self, connection: multiprocessing.connection.Connection) -> None:
        super().__init__()
        self._connection = connection

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._connection.send(_picklable(record))
        except Exception:  # noqa: BLE001 - the bot is gone: there is no one left to tell
            pass


def _picklable(record: logging.LogRecord) -> logging.LogRecord:
    """The record with its message rendered and its traceback as text (a traceback does not
    pickle), and any other value that may not pickle as its text."""
    record = copy.copy(record)
    record.msg, record.args = record.getMessage(), None
    if record.exc_info:
        record.exc_text = record.exc_text or logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
    for key, value in list(vars(record).items()):
        if not isinstance(value, (str, int, float, bool, type(None))):
            setattr(record, key, str(value))
    return record


# In a worker, the label of the job it runs (`Classifier.classify(label=...)`); each record logged
# meanwhile carries it as `req`, the bot's key for the request a line belongs to. A context variable,
# not a global: a Dask worker runs its jobs in threads, side by side.
_JOB_LABEL: contextvars.ContextVar[str | None] = contextvars.ContextVar("inference_job_label", default=None)
_labelling_lock = threading.Lock()
_labelling = False
# How a worker with no handler of its own prints its records: Dask's own line format (its default
# distributed.admin.log-format), so that a Dask worker's lines read alike, and a job's end with
# ` req=<label>` (`_LabelledLines`).
WORKER_LINE_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


def _as_job(label: str | None, function, /, *args, **kwargs):
    """In a worker: `function(*args, **kwargs)`, each record it logs meanwhile (a decoder's line, a
    Python warning) with `req` set to `label`. The worker's records at start and between jobs have
    none. Nothing is added where no record is logged: the label is set and reset, no more. The
    first call in a process sets up its records' labels and, where nothing would print them as
    lines, their printing (`_label_records`); a Dask worker's first is the model's load."""
    if not _labelling:
        _label_records()
    if label is None:
        return function(*args, **kwargs)
    token = _JOB_LABEL.set(label)
    try:
        return function(*args, **kwargs)
    finally:
        _JOB_LABEL.reset(token)


def _label_records() -> None:
    """Have every record made in this process from now on carry the running job's label (if any)
    as `req`: a record factory, as a handler of the bot's (the relay's) or of Dask's sees the record
    made in the job's thread. Once per process.

    A Dask worker's handlers are Dask's own loggers' (`distributed`): the model's records went to
    Python's last resort, which prints the bare message (no time, no logger, no req), and a song
    that failed there could not be tied to its request. Where the root logger has no handler (a
    Dask worker; a pool worker that could not reach the bot's relay), one now prints them on stderr,
    as the last resort did and at its level (WORKER_LOG_LEVEL: the decoder's debug lines name the
    file), in WORKER_LINE_FORMAT. A root handler someone configured is left as it is."""
    global _labelling
    with _labelling_lock:
        if _labelling:
            return
        make = logging.getLogRecordFactory()

        def labelled(*args, **kwargs) -> logging.LogRecord:
            record = make(*args, **kwargs)
            label = _JOB_LABEL.get()
            if label is not None:
                record.req = label
            return record

        logging.setLogRecordFactory(labelled)
        root = logging.getLogger()
        if not root.handlers:
            printer = logging.StreamHandler()  # stderr, looked up at each line, as the last resort does
            printer.setLevel(WORKER_LOG_LEVEL)
            printer.setFormatter(_LabelledLines(WORKER_LINE_FORMAT))
            root.addHandler(printer)
        _labelling = True


class _LabelledLines(logging.Formatter):
    """A record's line, with ` req=<label>` after its message where it has one (before a traceback)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        label = getattr(record, "req", None)
        return line if label is None else f"{line} req={label}"


def use_scratch_folder(scratch: str | None) -> None:
    """In a worker: its temporary files (the warm-up's file of noise) in the bot's `scratch`
    folder (`worker_scratch_folder`), where they go when the worker is killed holding them."""
    if scratch is not None:
        tempfile.tempdir = scratch


def ignore_terminal_interrupt() -> None:
    """Ctrl-C in a terminal interrupts the whole process group, and a closed terminal's shell hangs
    it up (SIGHUP). The bot handles both, closing its pools; a worker interrupted mid-job would
    only print a traceback over the user's terminal, and one hung up died under the song the
    stop's grace was there to finish (the fallback answered it, "worker crashed")."""
    for sig in TERMINAL_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _init_worker(weights_dir: str, threads: int, relay_address=None, scratch: str | None = None) -> None:
    """Worker initializer: lower the worker's CPU priority and limit the numeric libraries'
    threads, then load the main model once."""
    die_with_the_bot()  # first: it also ends a worker whose bot dies while it connects to the relay
    use_scratch_folder(scratch)
    send_logs_to_the_bot(relay_address)
    ignore_terminal_interrupt()
    os.nice(WORKER_NICE)
    for name in THREAD_ENV_VARS:
        os.environ[name] = str(threads)
    from threadpoolctl import threadpool_limits

    from inference import predict  # numpy reads the variables at import, when not preloaded

    # Set live, as numpy in a worker forked from the server was loaded before the variables. One
    # BLAS thread: a worker's matrix products take ~1 ms, and a second BLAS thread only spins
    # against onnxruntime's threads and the features' thread, badly so on a busy machine.
    threadpool_limits(limits=BLAS_THREADS, user_api="blas")
    predict.load_worker_model(weights_dir, threads)


def _init_ann_worker(weights_dir: str, relay_address=None, scratch: str | None = None) -> None:
    """Fallback worker initializer: low priority, one thread, the ANN loaded and warmed once."""
    die_with_the_bot()
    use_scratch_folder(scratch)
    send_logs_to_the_bot(relay_address)
    ignore_terminal_interrupt()
    os.nice(WORKER_NICE)
    for name in THREAD_ENV_VARS:
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    from inference import predict

    threadpool_limits(limits=BLAS_THREADS, user_api="blas")
    try:
        predict.warm_up_pipeline(predict.cached_ann_model(weights_dir))
    except Exception:  # noqa: BLE001 - never raise here: it would break the pool; jobs report it
        log.warning("Loading the fallback model in its worker failed.", exc_info=True)


def _ann_job(path: str, weights_dir: str, max_seconds: float | None = None):
    """In the fallback worker: ((4,) probabilities, seconds) of the ANN for the file at `path`."""
    from inference import predict

    return predict.classify_ann(path, predict.cached_ann_model(weights_dir), max_seconds=max_seconds)


def _ann_pid() -> int:
    return os.getpid()


def _warm_up(hold_s: float) -> tuple[int, str]:
    """(pid, main model version), or ModelUnavailableError from the initializer's load."""
    from inference import predict

    version = predict.main_model_version()
    time.sleep(hold_s)
    return os.getpid(), version


# --- The parent's side ------------------------------------------------------------------------

class _LogRelay:
    """In the bot: a local socket (in a folder of this user's only) that every worker connects to,
    and a thread per worker that logs the records it sends here. One per process, for all pools."""

    def __init__(self) -> None:
        # Authenticated by each connection's own thread, within LOG_RELAY_HANDSHAKE_S. Given the key,
        # the listener's `accept` ran the handshake in the one accepting thread, unbounded: a local
        # connection that sent nothing held it, and every worker after it waited for good.
        self._authkey = multiprocessing.current_process().authkey
        self._listener = multiprocessing.connection.Listener(backlog=LOG_RELAY_BACKLOG)
        self.address = self._listener.address
        self._readers: dict[int, threading.Thread] = {}  # by worker pid
        self._readers_lock = threading.Lock()
        threading.Thread(target=self._accept, name="worker-logs", daemon=True).start()

    def wait_for(self, pids: list[int], timeout_s: float) -> None:
        """Wait until the records of these ended workers are logged (or `timeout_s` has passed)."""
        deadline = time.monotonic() + timeout_s
        for pid in pids:
            with self._readers_lock:
                reader = self._readers.get(pid)
            if reader is not None:
                reader.join(max(0.0, deadline - time.monotonic()))

    def _accept(self) -> None:
        while True:
            try:
                connection = self._listener.accept()
            except ConnectionError:
                continue  # a worker killed while it connected
            except OSError as error:
                # Left open but unserved, new workers would wait on it; closed, they log to stderr.
                log.warning("The model workers' log relay stopped (%s); they log to stderr.", error)
                self._listener.close()
                return
            threading.Thread(target=self._relay, args=(connection,), name="worker-logs", daemon=True).start()

    def _relay(self, connection: multiprocessing.connection.Connection) -> None:
        """Log here each record a worker sends, as if logged here, until the worker ends."""
        with connection:
            pid = self._handshake(connection)
            if pid is None:
                return
            with self._readers_lock:
                self._readers[pid] = threading.current_thread()
            try:
                connection.send(True)
                _log_records(connection)
            except OSError:  # the worker ended before it heard the answer
                pass
            finally:
                with self._readers_lock:
                    if self._readers.get(pid) is threading.current_thread():
                        del self._readers[pid]

    def _handshake(self, connection: multiprocessing.connection.Connection) -> int | None:
        """The worker's pid, once it has proved it knows the key and named itself; None when it did
        not (the connection is then dropped), said unless the peer simply ended."""
        deadline = _Deadline(connection, LOG_RELAY_HANDSHAKE_S)
        try:
            multiprocessing.connection.deliver_challenge(connection, self._authkey)
            multiprocessing.connection.answer_challenge(connection, self._authkey)
            pid = connection.recv()
        except Exception as error:  # noqa: BLE001 - it ended, ran out of time, or is not one of our workers
            failure: BaseException | None = error
        else:
            failure = None if isinstance(pid, int) else TypeError(f"it named itself {type(pid).__name__}")
        in_time = deadline.stop()
        if failure is None and in_time:
            return pid
        if not in_time:
            why = f"no answer within {LOG_RELAY_HANDSHAKE_S:g} s"
        elif isinstance(failure, (EOFError, ConnectionError)):
            return None  # the worker ended as it connected
        else:
            why = f"{type(failure).__name__}: {failure}"
        log.warning("The model workers' log relay dropped a local connection that did not authenticate (%s).", why)
        return None


class _Deadline:
    """Shuts a connection down at `seconds` unless stopped first: a read waiting on it then ends
    (EOFError), whatever the peer has sent of a message. Closing the descriptor would not end it."""

    def __init__(self, connection: multiprocessing.connection.Connection, seconds: float) -> None:
        self._connection = connection
        self._lock = threading.Lock()
        self._stopped = False
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> bool:
        """Before the connection is used or closed: True if in time, False if it had expired."""
        with self._lock:
            self._timer.cancel()
            self._stopped = True
            return not self.expired

    def _expire(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self.expired = True
            try:
                with socket.socket(fileno=os.dup(self._connection.fileno())) as shared:
                    shared.shutdown(socket.SHUT_RDWR)
            except OSError:  # already gone
                pass


def _log_records(connection: multiprocessing.connection.Connection) -> None:
    while True:
        try:
            record = connection.recv()
        except Exception:  # noqa: BLE001 - the worker ended, or was killed mid-record
            return
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


_log_relay: _LogRelay | None = None
_log_relay_lock = threading.Lock()


def log_relay_address():
    """The address workers send their records to; the relay starts with the first pool."""
    global _log_relay
    with _log_relay_lock:
        if _log_relay is None:
            short_socket_folder()
            _log_relay = _LogRelay()
        return _log_relay.address


_worker_scratch: str | None = None
_worker_scratch_lock = threading.Lock()


def worker_scratch_folder() -> str:
    """A folder of this process's own (in $TMPDIR) for its workers' temporary files, removed when
    this process exits, after its pools are closed. A worker killed while it held one (its load cut
    short by the run's end on a busy machine: killed after CLOSE_GRACE_S; a pool replaced as stuck)
    never deleted it: the warm-up's 0.5 MB folder stayed in $TMPDIR for good."""
    global _worker_scratch
    with _worker_scratch_lock:
        if _worker_scratch is None or not os.path.isdir(_worker_scratch):
            _worker_scratch = tempfile.mkdtemp(prefix="moodbot-workers-")  # mode 0700
            multiprocessing.util.Finalize(None, shutil.rmtree, args=(_worker_scratch, True), exitpriority=-100)
        return _worker_scratch


def _forget_log_relay() -> None:
    global _log_relay, _log_relay_lock, _worker_scratch, _worker_scratch_lock
    _log_relay, _log_relay_lock = None, threading.Lock()  # a forked child has none of its threads
    _worker_scratch, _worker_scratch_lock = None, threading.Lock()  # nor the folder, its parent's


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_log_relay)


class _ManagerThread(concurrent.futures.process._ExecutorManagerThread):
    """The pool's manager thread, passing over the jobs already answered or taken back when its
    pool breaks, as Python 3.12's does. 3.11's (CPython gh-107219, unfixed in 3.11.7) fails the
    jobs of its table one by one and stopped at the first job taken back (a song cancelled while
    still queued), with InvalidStateError and that error's traceback on standard error, leaving
    the jobs after it to `_answer_the_rest`. A job taken back between this pass and the failing
    of the others still ends it so, and is answered there."""

    def __init__(self, executor):
        super().__init__(executor)
        self._on_broken = getattr(executor, "on_broken", None)

    def terminate_broken(self, cause):
        for work_id, work_item in list(self.pending_work_items.items()):
            if work_item.future.done():
                del self.pending_work_items[work_id]
        super().terminate_broken(cause)
        if self._on_broken is not None:  # told at once, not when a song next finds it broken
            self._on_broken()


class _Executor(concurrent.futures.ProcessPoolExecutor):
    """A ProcessPoolExecutor whose manager thread is `_ManagerThread` (Python 3.11 only; the
    method below is 3.11's own, with that class). Its `on_broken`, set before its first job, is
    called from that thread once the pool has broken."""

    on_broken: Callable[[], None] | None = None

    def _start_executor_manager_thread(self):
        if self._executor_manager_thread is None:
            if not self._safe_to_dynamically_spawn_children:  # the fork start method
                self._launch_processes()
            self._executor_manager_thread = _ManagerThread(self)
            self._executor_manager_thread.start()
            concurrent.futures.process._threads_wakeups[self._executor_manager_thread] = \
                self._executor_manager_thread_wakeup


def _process_pool(**kwargs) -> concurrent.futures.ProcessPoolExecutor:
    """A process pool; on Python 3.11 one whose broken pool fails every job still to answer."""
    if sys.version_info < (3, 12):
        return _Executor(**kwargs)
    return concurrent.futures.ProcessPoolExecutor(**kwargs)


class _ProcessBackend:
    """A ProcessPoolExecutor that is replaced, warm, when a worker dies."""

    crash_errors: tuple[type[BaseException], ...] = (BrokenProcessPool,)

    def __init__(self, weights_dir: Path, workers: int, threads: int) -> None:
        self._weights_dir = weights_dir
        self._workers = workers
        self._threads = threads
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._after_breaks: set[asyncio.Task] = set()  # a replacement's warm-up, `_answer_the_rest`
        self._broken_workers: set = set()  # the workers of pools replaced, until `_answer_the_rest` ends them
        self._stuck_checks: set[asyncio.TimerHandle] = set()
        # When a worker was free for each job, as far as this process can tell: a pool runs its
        # jobs in the order given, so a job starts once fewer than `workers` jobs before it are
        # unfinished, and none starts before the pool is warm. Jobs of the current executor only.
        self._ready = False
        self._waiting: list[concurrent.futures.Future] = []
        self._started: dict[concurrent.futures.Future, float] = {}
        self._broken_warm_ups = 0  # replacements in a row whose worker died while they warmed up
        self._warmed: object | None = None  # the executor, once it has warmed up

    def _new_executor(self) -> concurrent.futures.ProcessPoolExecutor:
        executor = _process_pool(
            max_workers=self._workers,
            mp_context=worker_context(),
            initializer=_init_worker,
            initargs=(str(self._weights_dir), self._threads, log_relay_address(), worker_scratch_folder()),
        )
        if isinstance(executor, _Executor):
            loop = asyncio.get_running_loop()
            executor.on_broken = lambda: _call_soon(loop, self._broke_while_idle, executor)
        return executor

    async def start(self) -> str:
        self._executor = self._new_executor()
        version = await self._warm(self._executor)
        self._ready, self._warmed = True, self._executor
        return version

    def _broke_while_idle(self, executor) -> None:
        """A warm pool that broke with no job in it (a worker killed for memory, or by hand): it
        is replaced now, so that the next song waits for a warm replacement (about half a second)
        and has the main model's answer, not the ANN's as crashed. A pool that broke under a job
        is replaced by that job's end (`_job_done`), and one still warming up by `_warm_replacement`."""
        if executor is not self._executor or executor is not self._warmed or self._started or self._waiting:
            return
        log.warning("inference.idle_worker_died: a model worker died while the pool was idle; replacing the pool")
        self.recover(executor)

    async def _warm(self, executor: concurrent.futures.ProcessPoolExecutor) -> str:
        """Wait until every worker has loaded the model; its version, or ModelUnavailableError.

        Workers spawn on demand, one per job that finds none idle, so rounds of `workers` short
        jobs start them all; rounds repeat until each worker has answered once.
        """
        seen: set[int] = set()
        deadline = time.monotonic() + WARM_UP_TIMEOUT_S
        version = ""
        while len(seen) < self._workers:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ModelUnavailableError("The model workers did not start in time.")
            jobs = asyncio.gather(*(
                asyncio.wrap_future(executor.submit(_warm_up, WARM_UP_HOLD_S))
                for _ in range(self._workers)
            ))
            # Timed out or cancelled (Ctrl-C while starting), the gathering ends with an error no
            # one awaits any more; seen here, asyncio does not print it as "never retrieved".
            jobs.add_done_callback(_seen)
            try:
                answers = await asyncio.wait_for(jobs, remaining)
            except BrokenProcessPool:
                raise _BrokeWhileWarming("A model worker died while loading the main model.") from None
            except TimeoutError:
                raise ModelUnavailableError("The model workers did not start in time.") from None
            for pid, version in answers:
                seen.add(pid)
        return version

    def submit(self, path: str, max_seconds: float | None,
               label: str | None = None) -> tuple[concurrent.futures.Future, object]:
        """(future of classify_main, token naming the executor it went to)."""
        from inference import predict

        executor = self._executor
        if executor is self._warmed and getattr(executor, "_broken", False) and not (self._started or self._waiting):
            # It broke while idle, and is not replaced yet (a pool without `on_broken`, or its call
            # still on its way): replaced now, and this job waits for the replacement to warm up.
            self._broke_while_idle(executor)
            executor = self._executor
        try:
            handle = executor.submit(_as_job, label, predict.classify_main, path, max_seconds=max_seconds)
            broken = getattr(executor, "_broken", False)  # CPython's own (3.11 to 3.13); none: not seen broken
            if broken:
                # Broken as the job was handed to it: submit() checks that the pool is not broken,
                # then adds the job to the pool's table, and in between its manager thread may have
                # marked it broken and failed the jobs of the table: this one would be failed by no
                # one, its song waiting its whole timeout for the ANN (3.11; 3.12 holds a lock).
                raise BrokenProcessPool(broken)
        except BrokenProcessPool:  # it broke between two jobs, or as this one was handed to it
            self.recover(executor)
            raise
        self._waiting.append(handle)
        self._start_waiting_jobs()
        loop = asyncio.get_running_loop()
        handle.add_done_callback(lambda done: _call_soon(loop, self._job_done, done, executor))
        return handle, executor

    def _job_done(self, handle: concurrent.futures.Future, executor) -> None:
        self._started.pop(handle, None)
        if handle in self._waiting:
            self._waiting.remove(handle)
        if not handle.cancelled() and isinstance(handle.exception(), BrokenProcessPool):
            # Replaced now, whether its caller still waits for it or not (one that timed out does
            # not): the jobs queued behind it are answered (`_answer_the_rest`), not left to time out.
            self.recover(executor)
        self._start_waiting_jobs()

    def _start_waiting_jobs(self) -> None:
        """Start the clock of the jobs that a worker is now free for."""
        if not self._ready:
            return
        now = time.monotonic()
        while self._waiting and len(self._started) < self._workers:
            self._started[self._waiting.pop(0)] = now

    @staticmethod
    def wrap(handle) -> asyncio.Future:
        return asyncio.wrap_future(handle)

    async def abandon(
        self, handle: concurrent.futures.Future, token: object, timeout_s: float, stuck_after_s: float
    ) -> None:
        """A timed-out job: take it back if still queued; if it still runs `timeout_s` +
        `stuck_after_s` after a worker was free for it, kill its pool and replace it."""
        if handle.cancel():
            return
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None

        def check_later(delay_s: float) -> None:
            nonlocal timer
            timer = loop.call_later(delay_s, replace_if_stuck)
            self._stuck_checks.add(timer)

        def replace_if_stuck() -> None:
            self._stuck_checks.discard(timer)
            if handle.done() or token is not self._executor:
                return
            started = self._started.get(handle)
            if started is None:  # still waiting for a worker, or for the pool to warm up
                check_later(stuck_after_s)
                return
            left_s = started + timeout_s + stuck_after_s - time.monotonic()
            if left_s > 0:
                check_later(left_s)
                return
            log.warning("A job ran %.4g s past its timeout; replacing the stuck worker pool.", stuck_after_s)
            _kill_workers(token)
            self.recover(token)

        check_later(stuck_after_s)

    def recover(self, token: object) -> None:
        """Replace the broken executor `token` (once, however many jobs saw it break)."""
        if token is not self._executor or self._executor is None:
            return
        broken = self._executor
        # A broken pool's manager thread has already ended its workers; a stuck one was killed.
        # Its jobs still queued are not cancelled: the manager fails them with BrokenProcessPool,
        # which their callers answer as a crash; a cancelled one raised CancelledError in them.
        # Those it leaves unanswered are failed once it has ended (`_answer_the_rest`).
        unanswered, workers = [*self._waiting, *self._started], _live_processes(broken)
        self._broken_workers.update(workers)
        # Before shutdown(), which forgets it. CPython's own (3.11 to 3.13); without it (a later
        # Python's pool), the jobs left are failed at once: its manager, as 3.12's, passes over
        # the jobs already answered.
        manager = getattr(broken, "_executor_manager_thread", None)
        broken.shutdown(wait=False)
        self._executor = self._new_executor()
        self._ready, self._waiting, self._started = False, [], {}
        log.warning("A model worker crashed or hung; the worker pool has been replaced.")
        loop = asyncio.get_running_loop()
        for work in (self._warm_replacement(self._executor), self._answer_the_rest(manager, unanswered, workers,
                                                                                  self._broken_workers)):
            task = loop.create_task(work)
            self._after_breaks.add(task)
            task.add_done_callback(self._after_breaks.discard)

    @staticmethod
    async def _answer_the_rest(manager: threading.Thread | None, jobs: list, workers: list, pending: set) -> None:
        """Once the broken pool's manager thread has ended: fail with BrokenProcessPool each of
        `jobs` it left unanswered, and kill its `workers` still running. Python 3.11's own manager
        (CPython gh-107219, unfixed in 3.11.7) ended with InvalidStateError at the first cancelled
        job of its table (a song taken back while still queued, at its timeout or as its caller gave
        up), leaving the jobs after it unanswered, each song waiting its whole timeout for the ANN,
        and the pool's other workers running. `_ManagerThread` passes over those, but a job taken
        back just as it fails the others, or one handed to the pool as it broke, is still left to
        this. Not before the manager has ended: a job failed here first would end it with the same
        error."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BROKEN_POOL_END_S
        while manager is not None and manager.is_alive() and loop.time() < deadline:
            await asyncio.sleep(BROKEN_POOL_POLL_S)  # not a thread to join it: one more for each pool replaced
        left = 0
        for job in jobs:
            try:
                job.set_exception(BrokenProcessPool("The worker pool broke before this job was answered."))
            except concurrent.futures.InvalidStateError:  # answered, or taken back
                continue
            left += 1
        for worker in workers:
            if worker.is_alive():
                worker.kill()
            pending.discard(worker)
        if left:
            log.warning("inference.broken_pool_left_jobs: the broken worker pool left %d jobs unanswered; "
                        "they are answered as crashed", left, extra={"jobs": left})

    async def _warm_replacement(self, executor) -> None:
        try:
            await self._warm(executor)
        except (ModelUnavailableError, RuntimeError) as error:
            log.error("The replacement worker pool did not warm up: %s", error)
            if isinstance(error, _BrokeWhileWarming) and self._broken_warm_ups < REPLACEMENT_TRIES:
                self._broken_warm_ups += 1
                wait_s = REPLACEMENT_BACKOFF_S * 2 ** (self._broken_warm_ups - 1)
                log.warning("inference.replacement_broke: replacing the pool again in %.3g s (try %d of %d)",
                            wait_s, self._broken_warm_ups, REPLACEMENT_TRIES,
                            extra={"try": self._broken_warm_ups, "wait_s": wait_s})
                await asyncio.sleep(wait_s)
                self.recover(executor)  # unless a song found it broken meanwhile, and replaced it
                return
        else:
            self._broken_warm_ups = 0
            self._warmed = executor
        if executor is self._executor:  # warm, or as warm as it gets: the jobs' clocks start
            self._ready = True
            self._start_waiting_jobs()

    def worker_pids(self) -> list[int]:
        return [p.pid for p in _live_processes(self._executor)]

    async def close(self) -> None:
        for task in list(self._after_breaks):
            task.cancel()
        for timer in list(self._stuck_checks):
            timer.cancel()
        # A replaced pool's workers that `_answer_the_rest`, cancelled, had still to end: one that
        # ignored the pool's SIGTERM (hung in native code, stopped) lived on, and its pool's manager
        # thread, waiting for it, held the bot's exit.
        broken, self._broken_workers = list(self._broken_workers), set()
        executor, self._executor = self._executor, None
        if executor is not None:
            await _shut_down(executor)
        if broken:
            await asyncio.to_thread(_reap, broken, 0.0)


async def _shut_down(executor: concurrent.futures.ProcessPoolExecutor) -> None:
    """Stop `executor` without waiting for its jobs; a worker still alive after CLOSE_GRACE_S is killed."""
    processes = _live_processes(executor)  # before shutdown(), which forgets them
    executor.shutdown(wait=False, cancel_futures=True)
    await asyncio.to_thread(_reap, processes, CLOSE_GRACE_S)


def _call_soon(loop: asyncio.AbstractEventLoop, callback, *args) -> None:
    """Have `loop` run `callback(*args)`, from any thread; nothing once the loop has closed."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # closed: no one is left to tell
        pass


def _seen(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


class _BrokeWhileWarming(ModelUnavailableError):
    """A worker of the pool died while the pool warmed up."""


def _live_processes(executor: concurrent.futures.ProcessPoolExecutor | None) -> list:
    """The executor's worker processes still alive (the executor keeps them in `_processes`)."""
    processes = getattr(executor, "_processes", None) or {}
    return [p for p in list(processes.values()) if p.is_alive()]


def _kill_workers(executor: concurrent.futures.ProcessPoolExecutor) -> None:
    for process in _live_processes(executor):
        process.kill()


def _reap(processes: list, grace_s: float) -> None:
    """Give workers `grace_s` to finish, then kill any still running (a hung job)."""
    deadline = time.monotonic() + grace_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()  # SIGKILL: also ends a stopped or signal-ignoring worker
            process.join(1.0)
    relay = _log_relay
    if relay is not None:  # their last words, before the bot may exit
        relay.wait_for([process.pid for process in processes], LOG_DRAIN_S)


# A Dask worker's threads per job, by its address, and when its host's workers were last counted
# (`_dask_clock`): a worker in processes of its own is one address, in-process workers (no nanny)
# are several in one process.
_dask_shares: dict[str, tuple[int, float]] = {}
_dask_clock = time.monotonic


def _host_jobs_at_once(identity: dict, address: str, own: int) -> int:
    """The jobs the Dask workers on the host of the worker at `address` run at once: their threads
    summed, as the scheduler's `identity` lists them; at least the worker's `own`."""
    from distributed.comm import get_address_host

    host = get_address_host(address)
    listed = sum(w.get("nthreads", 0) for w in identity.get("workers", {}).values() if w.get("host") == host)
    return max(own, listed)


def _dask_threads(threads: int | None, worker, identity: dict | None = None) -> int:
    """A Dask worker's threads for the model: `threads` where the bot was given a number, else its
    host's cores shared among the jobs that all the workers on that host run at once, by the
    scheduler's `identity` of the cluster (the warm-up's, else asked for here). The count is kept
    for DASK_RECOUNT_S, then asked for again at the worker's next job: a worker that joins the host
    later (`dask worker` started again, the cluster scaled up) or leaves it changes every other's
    share, and the next job loads the model at the new number of threads (`cached_main_model`).

    Until 2026-12-07 the bot's share of its own cores was sent: a worker on a larger host used a
    fraction of it, and one running several jobs at once on a smaller host more threads than cores.
    Then, until later that day, each worker shared its host's cores among its own jobs alone: N
    worker processes on a host (`dask worker --nworkers N`) each used all of them. Until 2026-12-08
    a worker counted its host once: with two more joining, it went on using all the cores, three
    workers' threads on them (2 workers x 2 threads ran 3x slower than 2 x 1 on two cores)."""
    if threads is not None:
        return threads
    counted = _dask_shares.get(worker.address)
    now = _dask_clock()
    if identity is None and counted is not None and now - counted[1] < DASK_RECOUNT_S:
        return counted[0]
    own = worker.state.nthreads
    if identity is None:
        from distributed.utils import sync

        try:  # in a job's thread: the worker's own loop asks the scheduler
            identity = sync(worker.loop, worker.scheduler.identity, n_workers=-1)
        except Exception as error:  # noqa: BLE001 - the scheduler is gone
            if counted is not None:  # the last count stands, asked for again in DASK_RECOUNT_S
                log.warning("inference.dask_host_unknown: the Dask workers on this host could not be "
                            "counted again (%s): this worker keeps its share of %d threads", error, counted[0])
                _dask_shares[worker.address] = (counted[0], now)
                return counted[0]
            log.warning("inference.dask_host_unknown: the Dask workers on this host could not be "
                        "counted (%s): this worker shares its cores among its own jobs only", error)
            return default_threads(own)
    jobs = _host_jobs_at_once(identity, worker.address, own)
    share = default_threads(jobs)
    if counted is not None and counted[0] != share:
        log.info("inference.dask_share_changed: the Dask workers on this host now run %d jobs at once: "
                 "this worker's model goes from %d to %d threads", jobs, counted[0], share)
    _dask_shares[worker.address] = (share, now)
    return share


async def _dask_warm_up(label: str | None, weights_dir: str, threads: int | None, dask_worker=None) -> str:
    """`client.run`'s warm-up on each worker (Dask hands it the worker as `dask_worker`), on the
    worker's event loop: it asks the scheduler for its host's other workers first."""
    from inference import predict

    identity = await dask_worker.scheduler.identity(n_workers=-1) if threads is None else None
    return _as_job(label, predict.main_model_version, weights_dir, _dask_threads(threads, dask_worker, identity))


def _dask_classify(label: str | None, path: str, weights_dir: str, threads: int | None, **kwargs):
    """A job on a Dask worker: `predict.classify_main` with the worker's threads, as warmed up."""
    from distributed import get_worker

    from inference import predict

    return _as_job(label, predict.classify_main, path, weights_dir, _dask_threads(threads, get_worker()), **kwargs)


class _DaskBackend:
    """The same job functions on a Dask distributed cluster.

    Each Dask worker loads the model once and keeps it (a cache keyed by weights dir in
    `inference.predict`). The weights dir and the audio paths must be visible to the workers at the
    same paths (a shared volume), since only paths travel with the jobs.
    """

    def __init__(self, address: str, weights_dir: Path, threads: int | None) -> None:
        self._address = address
        self._weights_dir = str(weights_dir)
        self._threads = threads
        self._client = None
        self._reconnecting: asyncio.Task | None = None
        self._stuck_checks: set[asyncio.Task] = set()  # `_restart_if_stuck`, one per abandoned job
        self._restarting: set[str] = set()  # the workers `_restart_if_stuck` has asked Dask to restart
        from distributed import KilledWorker
        from distributed.comm.core import CommClosedError

        self.crash_errors = (KilledWorker, CommClosedError)

    async def start(self) -> str:
        self._client, version = await self._connect()
        return version

    async def _connect(self):
        """(a client of the scheduler, the main model's version), its workers having loaded the
        model; ModelUnavailableError, the client closed, when the scheduler or its workers fail."""
        from distributed import Client

        try:
            client = await Client(self._address, asynchronous=True, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as error:  # nothing listens there, or it does not answer
            raise ModelUnavailableError(f"The Dask scheduler at {self._address} cannot be reached ({error}).") from None
        try:
            versions = await asyncio.wait_for(  # as a job: its lines (a failed warm-up) printed as a job's
                client.run(_dask_warm_up, None, self._weights_dir, self._threads),
                WARM_UP_TIMEOUT_S,
            )
            if not versions:
                raise ModelUnavailableError(f"The Dask cluster at {self._address} has no workers.")
        except BaseException as error:
            await client.close()
            if isinstance(error, TimeoutError):
                raise ModelUnavailableError("The Dask workers did not load the main model in time.") from None
            raise
        return client, next(iter(versions.values()))

    def _check_connected(self) -> None:
        """ModelUnavailableError at once where the scheduler is not connected: a job would wait for
        the timeout. Dask's client tries to reconnect for CONNECT_TIMEOUT_S, then closes for good;
        from then on a new one is tried every RECONNECT_EVERY_S (`_reconnect`)."""
        status = self._client.status
        if status == "running":
            return
        if status in ("closing", "closed") and (self._reconnecting is None or self._reconnecting.done()):
            log.warning("inference.dask_lost: the Dask scheduler at %s was lost: the fallback ANN answers "
                        "until it is back (tried every %g s)", self._address, RECONNECT_EVERY_S)
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())
        raise ModelUnavailableError(f"The Dask scheduler at {self._address} is not connected.")

    async def _reconnect(self) -> None:
        while True:
            try:
                client, _ = await self._connect()
            except Exception as error:  # noqa: BLE001 - down, no workers yet, or cut off again: try later
                log.debug("inference.dask_still_lost: %s", error)
                await asyncio.sleep(RECONNECT_EVERY_S)
                continue
            lost, self._client = self._client, client
            log.warning("inference.dask_back: the Dask scheduler at %s answers again: the main model answers",
                        self._address)
            with contextlib.suppress(Exception):
                await lost.close()
            return

    def submit(self, path: str, max_seconds: float | None, label: str | None = None):
        self._check_connected()
        future = self._client.submit(
            _dask_classify, label, path, self._weights_dir, self._threads,
            max_seconds=max_seconds, key=_dask_key(label),
        )
        return future, None

    @staticmethod
    def wrap(handle):
        return handle  # a Dask future of an asynchronous client is awaitable

    async def abandon(self, handle, token: object, timeout_s: float, stuck_after_s: float) -> None:
        """Dask forgets the task, but one already running runs on in its worker's thread (Dask
        cannot stop a thread), which the worker's next tasks wait for, and its nanny restarts a
        worker process that died, not one whose thread hangs. So a job still running on its worker
        `stuck_after_s` after it was abandoned is stuck, as in the process pool: that worker is
        restarted by its nanny (`_restart_if_stuck`); one without a nanny is left as it is (logged)."""
        # On its own: the caller's fallback answer waits for none of the scheduler's answers.
        task = asyncio.get_running_loop().create_task(self._restart_if_stuck(self._client, handle, stuck_after_s))
        self._stuck_checks.add(task)
        task.add_done_callback(self._stuck_checks.discard)
        task.add_done_callback(_seen)

    async def _restart_if_stuck(self, client, handle, stuck_after_s: float) -> None:
        key = handle.key
        try:  # where it runs, before Dask forgets it: {worker: the keys it is processing}
            processing = await asyncio.wait_for(client.processing(), CONNECT_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - the scheduler gone: nothing to ask it to restart either
            processing = {}
        workers = [worker for worker, keys in processing.items() if key in keys]
        pending = handle.cancel()
        if inspect.isawaitable(pending):
            await pending
        if not workers:  # done, or still queued: cancelled
            return
        await asyncio.sleep(stuck_after_s)
        if client is not self._client:  # reconnected since: another cluster, maybe
            return
        try:
            running = await client.run(_still_running, key, workers=workers, on_error="return")
        except Exception:  # noqa: BLE001 - the scheduler or the workers gone: nothing to restart
            return
        stuck = [worker for worker, yes in running.items() if yes is True]
        # Dask restarts a worker under a nanny, and terminates one without: that one is left as it is.
        try:  # an asynchronous client's scheduler_info() holds no workers: asked of the scheduler
            known = (await client.scheduler.identity(n_workers=-1)).get("workers", {})
        except Exception:  # noqa: BLE001 - the scheduler gone: nothing to restart
            return
        unattended = [worker for worker in stuck if not known.get(worker, {}).get("nanny")]
        if unattended:
            log.warning("inference.dask_worker_not_restarted: a job ran %.4g s past its timeout on %s, "
                        "which has no nanny to restart it: restart it by hand", stuck_after_s, unattended)
        # One restart a worker: two jobs stuck on it each came here (Dask would restart it once
        # all the same: a nanny asked again waits for the stop under way), and each said so.
        stuck = [worker for worker in stuck if worker not in unattended and worker not in self._restarting]
        if stuck:
            log.warning("A job ran %.4g s past its timeout on a Dask worker; restarting the worker.", stuck_after_s)
            self._restarting.update(stuck)
            try:
                await client.restart_workers(stuck, raise_for_error=False)
            finally:
                self._restarting.difference_update(stuck)

    def recover(self, token: object) -> None:
        pass  # Dask's nannies restart dead workers themselves

    def worker_pids(self) -> list[int]:
        return []

    async def close(self) -> None:
        for task in list(self._stuck_checks):
            task.cancel()
        reconnecting, self._reconnecting = self._reconnecting, None
        if reconnecting is not None:
            reconnecting.cancel()
            with contextlib.suppress(BaseException):
                await reconnecting
        if self._client is not None:
            await self._client.close()
            self._client = None


def _still_running(key: str, dask_worker=None) -> bool:
    """On a Dask worker: whether the task `key` still holds one of its threads (cancelled or not)."""
    return any(task.key == key for task in dask_worker.state.executing)


def _dask_key(label: str | None) -> str:
    """A job's Dask key: what Dask's own lines of it name (Compute Failed on the worker, a worker
    that died under it on the scheduler, KilledWorker's message), logged outside the job's thread,
    where its records' label does not reach. It ends with `req=<label>`, as the bot's lines and the
    job's own name the request; unique (Dask keeps one result per key), and grouped by Dask under
    `classify_main` whatever the label (Dask's task prefix ends at the uuid)."""
    key = f"classify_main-{uuid.uuid4()}"
    return key if label is None else f"{key}-req={label}"


class Classifier:
    """Audio file in, `MoodResult` out; the main model when it can, the fallback ANN when not.

        async with Classifier(workers=2) as classifier:
            result = await classifier.classify("song.ogg")
    """

    def __init__(
        self,
        weights_dir: str | Path = DEFAULT_WEIGHTS_DIR,
        *,
        workers: int = 1,
        executor: str = PROCESS_EXECUTOR,
        timeout_s: float = 20.0,
        max_queue: int = 8,
        threads_per_worker: int | None = None,
        ann_only: bool = False,
    ) -> None:
        """`ann_only`: serve the fallback ANN alone, for a caller that asks no song of the main
        model (`model="ann"`): its workers, each loading the network, are never started, and the
        ANN runs in `workers` processes (else in ANN_WORKERS: `--model ann --workers 16` ran a
        batch in one)."""
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if timeout_s <= 0 or max_queue < 0:
            raise ValueError("timeout_s must be positive and max_queue not negative")
        self.weights_dir = Path(weights_dir)
        self.workers = workers
        self.timeout_s = timeout_s
        self.max_queue = max_queue
        self._shed = 0  # songs shed to the ANN since the main model last took one (an overload)
        self.ann_timeout_s = ANN_TIMEOUT_S
        self.threads_per_worker = threads_per_worker or default_threads(workers)
        self._threads_given = threads_per_worker  # None: a Dask worker shares its own host's cores
        self._backend = self._make_backend(executor)
        self._ann = None
        self._ann_executor: concurrent.futures.ProcessPoolExecutor | None = None
        self.ann_workers = workers if ann_only else ANN_WORKERS
        self._ann_turns = asyncio.Semaphore(self.ann_workers)  # jobs in the fallback's workers at once
        self._main_version: str | None = None
        self._main_error: str | None = None
        self._ann_error: str | None = None
        self._in_flight: set = set()
        self._left_running: set[asyncio.Task] = set()  # checks on jobs whose callers gave up (`_keep`)
        self._started = False
        self.ann_only = ann_only

    def _make_backend(self, executor: str):
        if executor == PROCESS_EXECUTOR:
            return _ProcessBackend(self.weights_dir, self.workers, self.threads_per_worker)
        if executor.startswith(DASK_SCHEME):
            address = "tcp://" + executor[len(DASK_SCHEME):]
            return _DaskBackend(address, self.weights_dir, self._threads_given)
        raise ValueError(f"Unknown executor {executor!r}: use 'process' or 'dask://host:port'.")

    # --- lifecycle ---

    async def start(self) -> None:
        """Load the ANN here and the main model in every worker (none under `ann_only`); raise only
        if no model loads."""
        if self._started:
            return
        from inference.predict import AnnModel

        ann_error = ann_warm_up = None
        try:
            self._ann = AnnModel.load(self.weights_dir)  # here too: its version, and a clear error
        except ModelUnavailableError as error:
            ann_error, self._ann_error = error, str(error)
            if self.ann_only:
                raise ModelUnavailableError(f"The fallback model is unavailable: {error}") from None
        else:  # its workers start and warm while the main workers do
            self._ann_executor = self._new_ann_executor()
            ann_warm_up = asyncio.gather(*(  # a job each: a pool starts a worker per job none is free for
                asyncio.wrap_future(self._ann_executor.submit(_ann_pid)) for _ in range(self.ann_workers)))
            ann_warm_up.add_done_callback(_seen)  # a start cancelled before it awaits them prints nothing
        if self.ann_only:
            self._main_error = "it is not loaded (this classifier serves the fallback ANN only)."
        else:
            try:
                self._main_version = await self._backend.start()
            except ModelUnavailableError as error:
                self._main_error = str(error)
        if ann_warm_up is not None:
            try:
                await ann_warm_up
            except Exception:  # noqa: BLE001 - a cold first fallback is better than none
                log.warning("Warm-up of the fallback model failed.", exc_info=True)
        self._started = True
        if ann_error is not None and self._main_version is not None:  # else the error below says it
            log.warning("The fallback model is unavailable: %s", ann_error)
        if self._main_version is None:
            await self._backend.close()
            if ann_error is not None:
                await self.close()
                raise ModelUnavailableError(
                    f"No model can answer. Main model: {self._main_error} Fallback: {ann_error}"
                )
            if self.ann_only:
                return
            log.error(
                "MAIN MODEL UNAVAILABLE (%s): every answer will come from the fallback ANN.",
                self._main_error,
            )

    async def close(self) -> None:
        for task in list(self._left_running):  # their jobs end with the pools
            task.cancel()
        # Both pools at once: each gives a hung worker CLOSE_GRACE_S before killing it, and one
        # after the other, a bot with both pools hung took two graces to stop.
        await asyncio.gather(self._close_ann(), self._backend.close())
        self._started = False

    async def _close_ann(self) -> None:
        ann, self._ann_executor = self._ann_executor, None
        if ann is not None:
            await _shut_down(ann)

    def _new_ann_executor(self) -> concurrent.futures.ProcessPoolExecutor:
        return _process_pool(
            max_workers=self.ann_workers, mp_context=worker_context(),
            initializer=_init_ann_worker,
            initargs=(str(self.weights_dir), log_relay_address(), worker_scratch_folder()),
        )

    async def __aenter__(self) -> "Classifier":
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    # --- state ---

    @property
    def queue_depth(self) -> int:
        """Main-model jobs submitted and not yet finished (queued or running)."""
        return len(self._in_flight)

    @property
    def main_model_available(self) -> bool:
        return self._main_version is not None

    @property
    def main_model_version(self) -> str | None:
        """The version of the main model the workers serve; None before start or when unavailable."""
        return self._main_version

    def ensure_can_answer(self, model: str) -> None:
        """Raise ModelUnavailableError when `model` can answer no song at all (its weights are
        missing or corrupt), so that a caller may stop at once instead of failing every song.
        After a start, "auto" always can."""
        if model == "main" and self._main_version is None:
            raise ModelUnavailableError(f"The main model is unavailable: {self._main_error}")
        if model == "ann" and self._ann is None:
            raise ModelUnavailableError(f"The fallback model is unavailable: {self._ann_error}")

    @property
    def worker_pids(self) -> list[int]:
        """Live worker processes of the process pool (empty for Dask)."""
        return self._backend.worker_pids()

    @property
    def ann_worker_pids(self) -> list[int]:
        """Live worker processes of the fallback ANN."""
        return [p.pid for p in _live_processes(self._ann_executor)]

    # --- classify ---

    async def classify(
        self, path: str | Path, *, model: str = "auto", max_seconds: float | None = None,
        label: str | None = None,
    ) -> MoodResult:
        """Mood of the audio file at `path`. Raises AudioError for bad audio (TooLongAudioError for
        a file over `max_seconds`; None, or more than the decoder's own limit of 20 minutes, is that
        limit), and ModelUnavailableError when the requested model cannot answer. `label`: the
        caller's name for the song's jobs, opaque here; what a worker logs while it runs one of
        them (the main model's or the fallback's) carries it as `req`."""
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, not {model!r}")
        if max_seconds is not None and not max_seconds > 0:
            raise ValueError(f"max_seconds must be positive, not {max_seconds!r}")
        if not self._started:
            raise RuntimeError("Classifier.start() must be awaited before classify()")
        started = time.perf_counter()
        # Absolute: the workers fork from a server that kept the folder this process was in when it
        # started, and a relative path was looked for there after this process changed folder.
        # Joined, not os.path.abspath: that folds 'link/..' away, which the system reads as the
        # parent of the folder the link points to.
        path = os.path.join(os.getcwd(), path)
        if model == "ann":
            return await self._classify_ann(path, max_seconds, started, None, label)
        if self._main_version is None:
            if model == "main":
                raise ModelUnavailableError(f"The main model is unavailable: {self._main_error}")
            return await self._classify_ann(path, max_seconds, started, FALLBACK_UNAVAILABLE, label)
        if model == "auto" and self.queue_depth >= self.max_queue:
            self._shed += 1
            if self._shed == 1:  # an overload's first song: what to watch; the rest, where to look
                log.warning("inference.overloaded: %d songs in the model workers (INFERENCE_MAX_QUEUE %d): the "
                            "fallback ANN answers the songs asked for meanwhile", self.queue_depth, self.max_queue)
            else:
                log.debug("inference.overloaded: %d songs in the model workers (INFERENCE_MAX_QUEUE %d)",
                          self.queue_depth, self.max_queue)
            return await self._classify_ann(path, max_seconds, started, FALLBACK_OVERLOADED, label)
        if self._shed:
            log.info("inference.overload_over: %d songs were answered by the fallback ANN", self._shed)
            self._shed = 0
        try:
            probabilities, _ = await self._run_main(path, max_seconds, label)
        except AudioError:
            raise
        except TimeoutError:
            reason = FALLBACK_TIMEOUT
        except self._backend.crash_errors:
            reason = FALLBACK_CRASHED
        except ModelUnavailableError:
            reason = FALLBACK_UNAVAILABLE
        except Exception:  # noqa: BLE001 - any other failure of the main model: still answer
            log.exception("The main model failed")  # no path: an upload keeps its sender's file name
            reason = FALLBACK_FAILED
        else:
            return self._result(probabilities, "main", self._main_version, started, None)
        if model == "main":
            raise ModelUnavailableError(f"The main model could not answer ({reason}).")
        log.info("Fallback ANN answers: %s", reason)  # no path, as above
        return await self._classify_ann(path, max_seconds, started, reason, label)

    async def _run_main(self, path: str, max_seconds: float | None, label: str | None):
        handle, token = self._backend.submit(path, max_seconds, label)
        self._in_flight.add(handle)
        handle.add_done_callback(self._in_flight.discard)
        try:
            return await asyncio.wait_for(self._backend.wrap(handle), self.timeout_s)
        except TimeoutError:
            await self._backend.abandon(handle, token, self.timeout_s, STUCK_AFTER_TIMEOUTS * self.timeout_s)
            raise
        except self._backend.crash_errors:
            self._backend.recover(token)
            raise
        except asyncio.CancelledError:
            # The caller gave up (its own time limit, a request called off): the job may run on in
            # its worker, and is checked for stuck as a timed-out one is. Unchecked, a hung one held
            # its worker for good, every later song waiting its timeout for the ANN's answer.
            self._keep(self._backend.abandon(handle, token, self.timeout_s, STUCK_AFTER_TIMEOUTS * self.timeout_s))
            raise

    def _keep(self, work) -> None:
        """Run `work` (a coroutine) on its own, past its caller's cancellation; close() ends it."""
        task = asyncio.get_running_loop().create_task(work)
        self._left_running.add(task)
        task.add_done_callback(self._left_running.discard)
        task.add_done_callback(_seen)

    async def _classify_ann(
        self, path: str, max_seconds: float | None, started: float, reason: str | None, label: str | None
    ) -> MoodResult:
        if self._ann is None:
            raise ModelUnavailableError(
                "The fallback model is unavailable"
                + (f", and the main model could not answer ({reason})." if reason else ".")
            )
        probabilities, _ = await self._run_ann(path, max_seconds, label)
        return self._result(probabilities, "ann", self._ann.version, started, reason)

    async def _run_ann(self, path: str, max_seconds: float | None, label: str | None):
        """The ANN's job in its worker. A worker that dies is replaced and the job tried once more
        there; one that overruns `ann_timeout_s` is killed and replaced, and the ANN cannot answer.
        Jobs wait their turn here, not in the worker's queue: 40 songs of ~0.1 s queued there at once
        were judged hung by their wait (the worker killed under a song it was answering), and the
        songs queued behind a hung one were cancelled with it."""
        await self._ann_turns.acquire()
        running: list = []  # (job, its executor, its deadline): the last job handed to a worker
        handed_on = False
        try:
            return await self._run_ann_job(path, max_seconds, label, running)
        except asyncio.CancelledError:
            # The caller gave up while its job runs on in the worker: the turn stays taken until the
            # job ends or overruns (its worker then replaced). Given back at once, the next song
            # queued behind the job in the worker, and was refused as the one that took too long.
            if running and not running[-1][0].done():
                self._keep(self._see_ann_job_out(*running[-1]))
                handed_on = True
            raise
        finally:
            if not handed_on:
                self._ann_turns.release()

    async def _see_ann_job_out(self, job: concurrent.futures.Future,
                               executor: concurrent.futures.ProcessPoolExecutor, deadline: float) -> None:
        """Hold the fallback's turn until `job`, whose caller gave up, ends; past `deadline`, kill
        and replace its worker, as for a job that overran."""
        try:
            left_s = deadline - asyncio.get_running_loop().time()
            await asyncio.wait_for(asyncio.wrap_future(job), max(0.0, left_s))
        except TimeoutError:
            _kill_workers(executor)
            self._replace_ann_executor(executor, "hung")
        except Exception:  # noqa: BLE001 - its answer, or its failure, is no one's now
            pass
        finally:
            self._ann_turns.release()

    async def _run_ann_job(self, path: str, max_seconds: float | None, label: str | None, running: list):
        for attempt in (1, 2):
            executor = self._ann_executor
            if executor is None:
                raise ModelUnavailableError("The fallback model is not running.")
            try:
                job = executor.submit(_as_job, label, _ann_job, path, str(self.weights_dir), max_seconds)
                running.append((job, executor, asyncio.get_running_loop().time() + self.ann_timeout_s))
                return await asyncio.wait_for(asyncio.wrap_future(job), self.ann_timeout_s)
            except BrokenProcessPool:
                self._replace_ann_executor(executor, "crashed")
                if attempt == 2:
                    raise ModelFailedOnFileError("The fallback model's worker crashed twice on this file.") from None
            except TimeoutError:
                _kill_workers(executor)
                self._replace_ann_executor(executor, "hung")
                raise ModelFailedOnFileError("The fallback model took too long on this file.") from None
        raise AssertionError("unreachable")

    def _replace_ann_executor(self, broken: concurrent.futures.ProcessPoolExecutor, why: str) -> None:
        if broken is not self._ann_executor:
            return  # another job has replaced it already
        # Not cancel_futures: a job still queued there would raise CancelledError in its caller; it
        # fails with BrokenProcessPool instead, and is tried again on the replacement.
        broken.shutdown(wait=False)
        self._ann_executor = self._new_ann_executor()
        self._ann_executor.submit(_ann_pid)  # starts and warms the replacement now, not on the next song
        log.warning("The fallback model's worker %s; it has been replaced.", why)

    @staticmethod
    def _result(probabilities, model: str, version: str, started: float, reason: str | None) -> MoodResult:
        from inference.predict import probabilities_by_mood

        return MoodResult.from_probabilities(
            probabilities_by_mood(probabilities),
            model=model,
            model_version=version,
            seconds=time.perf_counter() - started,
            fallback_reason=reason,
        )
