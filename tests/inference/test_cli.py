"""`python -m inference classify`, as a user runs it: real clips and one bad file, in a subprocess."""
from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from inference.result import MOODS
from tests.conftest import REPO
from tests.inference.test_predict import TINY_VERSION, clips, tiny_weights  # noqa: F401 (fixtures)
from tests.permissions import bound_by_file_modes

pytestmark = pytest.mark.timeout(180)
JSON_KEYS = {"file", "mood", "probabilities", "valence", "arousal", "model", "model_version", "seconds",
             "fallback_reason"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "inference", *args],
        cwd=REPO, capture_output=True, text=True, timeout=170,
    )


@pytest.fixture
def bad_file(tmp_path):
    path = tmp_path / "not-a-song.mp3"
    path.write_bytes(b"hello, I am text" * 64)
    return path


@pytest.mark.parametrize("args, says", [
    (("classify", "--workers", "-3", "x.wav"), "argument --workers: must be at least 1, not -3"),
    (("classify", "--timeout", "0", "x.wav"), "argument --timeout: must be more than 0, not 0"),
    # no timeout at all: a hung decoder would hold its worker, and the run, for ever
    (("classify", "--timeout", "inf", "x.wav"), "argument --timeout: must be a finite number of seconds, not inf"),
    (("classify", "--timeout", "nan", "x.wav"), "argument --timeout: must be a finite number of seconds, not nan"),
    (("classify", "--workers", "2.5", "x.wav"), "argument --workers: '2.5' is not a whole number"),
    (("train", "--folds", "two"), "argument --folds: 'two' is not a whole number"),
    # one line that names the argument, not a log warning and then the same words as "No model can answer"
    (("classify", "--weights", "/nonexistent", "x.wav"), "argument --weights: no folder at /nonexistent"),
    (("classify", "--weights", "/etc/hostname", "x.wav"), "argument --weights: no folder at /etc/hostname"),
    # classify's own usage and name, not the top-level ones that list no option of classify
    (("classify", "--jsn", "x.wav"), "usage: python -m inference classify [-h] [--json]"),
    (("classify", "--jsn", "x.wav"), "python -m inference classify: error: unrecognized arguments: --jsn"),
    (("train", "--folds", "1"), "argument --folds: must be at least 2, not 1"),
    (("train", "--data", "/nonexistent"), "--data /nonexistent: no labels.csv there"),
])
def test_a_wrong_argument_is_a_usage_error_not_a_traceback(args, says):
    done = run_cli(*args)
    assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "WARNING" not in done.stderr, done.stderr


@pytest.mark.parametrize("args, status, says", [
    (("train", "--folds", "two"), 2, "argument --folds: 'two' is not a whole number"),
    (("train", "--data", "/nonexistent"), 2, "--data /nonexistent: no labels.csv there"),
    (("train", "--help"), 0, "usage: python -m inference train"),
])
def test_train_s_arguments_are_answered_before_torch_is_imported(monkeypatch, capsys, args, status, says):
    """A wrong argument to train, or --help, waited for torch's import (4-5 s, 10-15 s as a test
    on a busy machine) to be answered; it is answered first: here torch cannot be imported at all
    (without it, train says the train extra is missing, as a `make run` install does)."""
    from inference.__main__ import main

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails
    monkeypatch.delitem(sys.modules, "inference.train", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    assert exited.value.code == status and says in (err if status else out), (err, out)


def test_help_lists_both_commands():
    done = run_cli("--help")
    assert done.returncode == 0
    assert "classify" in done.stdout and "train" in done.stdout


def test_json_gives_one_object_per_file_and_fails_for_the_bad_one(tiny_weights, clips, bad_file):
    files = [str(clips[0]), str(bad_file), str(clips[1])]
    done = run_cli("classify", "--json", "--weights", str(tiny_weights), *files)
    assert done.returncode != 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["file"] for line in lines] == files
    good = [lines[0], lines[2]]
    for answer in good:
        assert set(answer) == JSON_KEYS
        assert answer["mood"] in MOODS
        assert set(answer["probabilities"]) == set(MOODS)
        assert abs(sum(answer["probabilities"].values()) - 1.0) < 1e-4
        assert answer["mood"] == max(answer["probabilities"], key=answer["probabilities"].get)
        assert (answer["model"], answer["model_version"], answer["fallback_reason"]) == ("main", TINY_VERSION, None)
        assert 0 < answer["seconds"] < 60
    assert set(lines[1]) == {"file", "error"}
    assert "not-a-song.mp3" in lines[1]["error"]


def test_a_pattern_that_matched_no_file_is_told_as_such(tiny_weights, clips, tmp_path):
    """`classify *.mp3` where there is none: the shell hands the pattern on as typed, and "Cannot
    find the audio file *.mp3" read as if a file of that name were expected."""
    pattern = str(tmp_path / "*.mp3")
    done = run_cli("classify", "--model", "ann", "--weights", str(tiny_weights), pattern, str(clips[0]))
    assert done.returncode == 1, done.stderr
    nothing, answered = done.stdout.splitlines()
    assert nothing == f"{pattern}: error: No file matches {pattern} (the shell passed the pattern on as typed)."
    assert answered.startswith(f"{clips[0]}: ")


def test_json_says_why_the_fallback_answered(tiny_weights, clips):
    """The readable line ends in "(fallback: timeout)"; the JSON object must not lose that."""
    done = run_cli("classify", "--json", "--timeout", "0.001", "--weights", str(tiny_weights), str(clips[0]))
    assert done.returncode == 0, done.stderr
    (answer,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert set(answer) == JSON_KEYS
    assert (answer["model"], answer["fallback_reason"]) == ("ann", "timeout")


def test_readable_lines_with_the_ann(tiny_weights, clips):
    done = run_cli("classify", "--model", "ann", "--weights", str(tiny_weights), str(clips[2]))
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    pattern = (
        rf"^{re.escape(str(clips[2]))}: (happy|energetic|sad|calm) \(\d\.\d\d\) "
        rf"valence [+-]\d\.\d\d arousal [+-]\d\.\d\d \[ann ann-{TINY_VERSION}\] \d+\.\d\d s$"
    )
    assert re.match(pattern, line), line


def most_processes_below(command: list[str]) -> tuple[int, subprocess.CompletedProcess]:
    """Run `command`; the most processes it had below it at once (workers, fork server...)."""
    import time

    from tests.proctree import descendants

    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    most = 0
    while process.poll() is None:
        most = max(most, len(descendants(process.pid)))
        time.sleep(0.02)
    out, err = process.communicate()
    return most, subprocess.CompletedProcess(command, process.returncode, out, err)


def test_more_workers_than_files_start_one_worker_per_file(tiny_weights, clips):
    """A worker beyond the files never gets one, yet each loads the models: `--workers 40` took 43 s
    for one clip (3 s with one worker), and `--workers 200` ran out of memory, so that the ANN
    answered every file."""
    cli = [sys.executable, "-m", "inference", "classify", "--json", "--weights", str(tiny_weights)]
    one_worker, _ = most_processes_below([*cli, "--workers", "1", str(clips[0])])
    many_asked, done = most_processes_below([*cli, "--workers", "6", str(clips[0])])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model"] == "main"
    assert many_asked == one_worker


def test_model_ann_starts_no_main_model_worker(tiny_weights, clips):
    """`--model ann` never asks the main model, yet it started and warmed a main-model worker per
    file (2.19 s for one clip, against 2.11 s for auto): only the fallback's worker is to start."""
    files = [str(clip) for clip in clips[:3]]
    cli = [sys.executable, "-m", "inference", "classify", "--json", "--workers", str(len(files)),
           "--weights", str(tiny_weights)]
    with_main, _ = most_processes_below([*cli, *files])
    ann_only, done = most_processes_below([*cli, "--model", "ann", "--workers", "1", *files])
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["model"] for line in done.stdout.splitlines()] == ["ann"] * len(files)
    assert ann_only == with_main - len(files)


def test_model_ann_runs_as_many_workers_as_asked(tiny_weights, clips):
    """`--model ann --workers 3` ran the files one after the other in the fallback's one worker,
    whatever --workers said: a batch of the fast model used one core of sixteen."""
    files = [str(clip) for clip in clips[:3]]
    cli = [sys.executable, "-m", "inference", "classify", "--json", "--model", "ann", "--weights", str(tiny_weights)]
    one, _ = most_processes_below([*cli, "--workers", "1", *files])
    three, done = most_processes_below([*cli, "--workers", "3", *files])
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["model"] for line in done.stdout.splitlines()] == ["ann"] * len(files)
    assert three == one + 2


def test_a_dash_reads_the_song_from_standard_input(tiny_weights, clips):
    """`cat song.ogg | python -m inference classify -`, as cat and ffmpeg read `-`: it said "Cannot
    find the audio file -"."""
    command = [sys.executable, "-m", "inference", "classify", "--json", "--model", "ann", "--weights",
               str(tiny_weights), str(clips[0]), "-"]
    with open(clips[1], "rb") as song:
        done = subprocess.run(command, cwd=REPO, stdin=song, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr
    from_file, from_stdin = [json.loads(line) for line in done.stdout.splitlines()]
    alone = json.loads(run_cli(*command[3:-2], str(clips[1])).stdout)
    assert from_stdin["file"] == "-" and from_stdin["probabilities"] == alone["probabilities"]
    assert from_file["file"] == str(clips[0])


def test_a_pipe_named_as_a_file_is_read_as_standard_input_is(tiny_weights, clips):
    """bash's `<(command)` names a pipe, /dev/fd/63, that only this process holds open: the worker
    that opened it found nothing there ("Cannot find the audio file 63")."""
    import shlex

    command = (f"{shlex.quote(sys.executable)} -m inference classify --json --model ann --weights "
               f"{shlex.quote(str(tiny_weights))} <(cat {shlex.quote(str(clips[1]))})")
    done = subprocess.run(["bash", "-c", command], cwd=REPO, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stdout + done.stderr
    (answer,) = [json.loads(line) for line in done.stdout.splitlines()]
    alone = json.loads(run_cli("classify", "--json", "--model", "ann", "--weights", str(tiny_weights),
                               str(clips[1])).stdout)
    assert answer["file"].startswith("/dev/fd/") and answer["probabilities"] == alone["probabilities"]


@pytest.mark.parametrize("args, terminal, says", [
    (("-", "-"), False, "argument FILE: - (standard input) can be read once"),
    (("-",), True, "argument FILE: - reads standard input, which is a terminal here"),
])
def test_standard_input_twice_or_from_the_terminal_is_a_usage_error(tiny_weights, args, terminal, says):
    """A terminal's standard input is no song: said at once, rather than wait for one to be typed."""
    import os
    import pty

    keyboard, keyboard_end = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "inference", "classify", "--weights", str(tiny_weights), *args], cwd=REPO,
            stdin=keyboard_end if terminal else subprocess.DEVNULL, capture_output=True, text=True, timeout=170,
        )
    finally:
        os.close(keyboard)
        os.close(keyboard_end)
    assert done.returncode == 2 and says in done.stderr and done.stdout == "", done.stderr


def test_no_weights_is_a_clear_error_in_one_line(tmp_path, clips):
    """An empty --weights folder: it printed a log WARNING that the fallback's weights are missing,
    then the same words again in "error: No model can answer"."""
    done = run_cli("classify", "--weights", str(tmp_path), str(clips[0]))  # a folder without them
    assert done.returncode == 2
    assert done.stderr.startswith("error: No model can answer.") and "missing" in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr


@pytest.mark.parametrize("model, removed, says", [
    ("main", "main.onnx", "The main model is unavailable: The main model's weights"),
    ("ann", "ann.npz", "The fallback model is unavailable: The fallback model's weights"),
])
def test_weights_without_the_model_asked_for_stop_the_run_with_status_2(tiny_weights, tmp_path, clips, model,
                                                                         removed, says):
    """No file can get an answer: say so once and exit 2, as for no weights at all, rather than fail
    every file with the same error and exit 1 as if some songs were bad."""
    import shutil

    weights = tmp_path / "weights"
    shutil.copytree(tiny_weights, weights)
    (weights / removed).unlink()
    done = run_cli("classify", "--model", model, "--weights", str(weights), str(clips[0]), str(clips[1]))
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and f"error: {says}" in done.stderr and "missing" in done.stderr, done.stderr


def test_classify_help_lists_the_exit_statuses():
    done = run_cli("classify", "--help")
    assert done.returncode == 0, done.stderr
    statuses = done.stdout.split("exit status:")[1]
    for status, means in [("0", "every file"), ("1", "some file"), ("2", "no model"), ("130", "interrupted"),
                          ("141", "reader")]:
        assert re.search(rf"^  {status} +.*{means}", statuses, re.MULTILINE), statuses


def test_classify_help_says_what_json_prints_and_what_the_main_model_is():
    """Each key of an answer and of a failure is named, so a script can rely on them; and `--model
    main` is not "the CNN+BiLSTM only": its answer fuses the network with the ANN and a musicnn head
    (model_version holds "+ann+musicnn")."""
    done = run_cli("classify", "--help")
    assert done.returncode == 0, done.stderr
    output = done.stdout.split("--json prints")[1].split("exit status:")[0]
    for key in [*JSON_KEYS, *MOODS, "error"]:
        assert f'"{key}"' in output, key
    assert "CNN+BiLSTM only" not in done.stdout and "musicnn" in done.stdout


def test_train_is_dispatched_to_the_training_code():
    done = run_cli("train", "--help")
    assert done.returncode == 0, done.stderr
    assert "--epochs" in done.stdout  # train.main's own options, not the classify parser's


def test_ctrl_c_stops_the_run_with_status_130_and_no_traceback(tiny_weights, clips):
    """A terminal's Ctrl-C reaches the whole process group: the lines printed so far stay whole, the
    rest are dropped, and the user reads one line, not tracebacks of the jobs still in flight."""
    import os
    import signal
    import time

    files = [str(clips[i % len(clips)]) for i in range(60)]
    process = subprocess.Popen(
        [sys.executable, "-m", "inference", "classify", "--json", "--workers", "1",
         "--weights", str(tiny_weights), *files],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal starts it
    )
    first = process.stdout.readline()  # the pool is up and answering
    os.killpg(process.pid, signal.SIGINT)
    rest, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "never retrieved" not in err, err
    assert "interrupted" in err
    lines = [first, *rest.splitlines()]
    assert len(lines) < len(files)
    assert all(json.loads(line)["file"] in files for line in lines)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # no worker of the run is left behind
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("a process of the interrupted run is still alive")


@pytest.mark.parametrize("signum, status, said", [(signal.SIGTERM, 143, "terminated"), (signal.SIGHUP, 129, "hung up")])
def test_sigterm_or_sighup_stops_the_run_with_its_status_and_leaves_no_temporary_files(tiny_weights, clips, signum,
                                                                                       status, said):
    """`timeout`, `kill` and `docker stop` send SIGTERM: Python's default ended the run at once,
    leaving the copy of a song read from stdin (and the workers' folders) in $TMPDIR. So did SIGHUP
    until 2026-12-06, which a terminal closed or an ssh session dropped sends (a copy of up to 2 GiB)."""
    import os

    # A folder of its own, to see what the run leaves in it.
    scratch = Path(tempfile.mkdtemp(prefix="sigterm-", dir="/tmp"))
    files = ["-", *(str(clips[i % len(clips)]) for i in range(60))]
    process = subprocess.Popen(
        [sys.executable, "-m", "inference", "classify", "--json", "--workers", "1",
         "--weights", str(tiny_weights), *files],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    process.stdin.buffer.write(clips[0].read_bytes())  # a pipe is copied to $TMPDIR (a file is read in place)
    process.stdin.close()
    first = process.stdout.readline()  # the pool is up and answering
    assert json.loads(first)["file"] == "-", (first, process.poll())
    assert [p.name for p in scratch.glob("moodbot-streams-*/*/stdin")] == ["stdin"], sorted(scratch.rglob("*"))
    process.send_signal(signum)
    process.wait(timeout=60)
    rest, err = process.stdout.read(), process.stderr.read()
    assert process.returncode == status, err  # 128 + the signal, as a shell reports it
    assert "Traceback" not in err and said in err, err
    assert len([first, *rest.splitlines()]) < len(files)
    # `import onnxruntime` (1.32) itself keeps a session id in $TMPDIR/.ses, one file for every run.
    left = sorted(p.name for p in scratch.iterdir() if p.name != ".ses")
    shutil.rmtree(scratch)
    assert left == []


def test_a_worker_killed_while_it_warms_up_leaves_no_file_behind(tiny_weights, clips):
    """A worker warms its model up on a file of noise it writes to a temporary folder. One stopped
    by the run's end while it did (Ctrl-C or SIGTERM while a busy machine loads the models: killed
    after the close's grace) left the folder and its 0.5 MB in $TMPDIR, one per worker a run."""
    import glob
    import os
    import time

    from tests.proctree import descendants

    scratch = Path(tempfile.mkdtemp(prefix="warm-up-", dir="/tmp"))
    process = subprocess.Popen(
        [sys.executable, "-m", "inference", "classify", "--json", "--workers", "1",
         "--weights", str(tiny_weights), str(clips[0])],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    try:
        while not glob.glob(f"{scratch}/**/moodbot-warm-up-*/*", recursive=True):
            assert process.poll() is None, process.communicate()
            time.sleep(0.002)
        # The workers, below the fork server (the run's own children are it and the resource
        # tracker), held as a load that hangs is.
        for pid in set(descendants(process.pid)) - _children_of(process.pid):
            os.kill(pid, signal.SIGSTOP)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, process.stderr.read()
    left = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*") if p.name != ".ses")
    shutil.rmtree(scratch)
    assert left == []


def _children_of(pid: int) -> set[int]:
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def test_under_nohup_a_hang_up_is_ignored_as_nohup_asks(tiny_weights, clips):
    """The SIGHUP that ends a run is not listened to where the run was started to ignore it."""
    files = [str(clips[i % len(clips)]) for i in range(12)]  # still running at the signal
    process = subprocess.Popen(
        [sys.executable, "-m", "inference", "classify", "--json", "--model", "ann", "--workers", "1",
         "--weights", str(tiny_weights), *files],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),  # what nohup does
    )
    first = process.stdout.readline()
    process.send_signal(signal.SIGHUP)
    rest, err = process.communicate(timeout=100)
    assert process.returncode == 0, err
    assert [json.loads(line)["file"] for line in [first, *rest.splitlines()]] == files


def test_piped_into_head_the_run_stops_quietly(tiny_weights, clips):
    """`classify --json *.ogg | head -1`: once the reader is gone, no BrokenPipeError traceback."""
    files = [str(clips[i % len(clips)]) for i in range(30)]
    process = subprocess.Popen(
        [sys.executable, "-m", "inference", "classify", "--json", "--model", "ann", "--workers", "1",
         "--weights", str(tiny_weights), *files],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    json.loads(process.stdout.readline())
    process.stdout.close()  # what `head -1` does after its line
    err = process.stderr.read()
    process.wait(timeout=60)
    assert "Traceback" not in err and "Broken pipe" not in err, err
    assert process.returncode == 141  # 128 + SIGPIPE, as a shell tool reports it


def test_a_file_name_that_is_not_utf8_is_printed_as_its_bytes(tiny_weights, clips, tmp_path):
    """Under a strict UTF-8 terminal (en_US.UTF-8), printing a Latin-1 file name failed the whole run."""
    import os
    import shutil

    name = tmp_path / os.fsdecode(b"caf\xe9.ogg")  # a Latin-1 name, as old rips have
    shutil.copy(clips[0], name)
    done = subprocess.run(
        [sys.executable, "-m", "inference", "classify", "--model", "ann", "--weights", str(tiny_weights), str(name)],
        cwd=REPO, capture_output=True, timeout=170, env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode(errors="replace")
    assert done.stdout.startswith(os.fsencode(name) + b": ")


async def test_jobs_left_running_by_timeouts_do_not_make_the_run_shed_files(tiny_weights, clips, monkeypatch):
    """The run keeps IN_FLIGHT_PER_WORKER files per worker in flight and sheds none: a job that
    timed out, still in its worker, must not count against the files after it as "overloaded"."""
    import io
    import os
    import signal

    from inference import __main__ as cli
    from inference import pool

    monkeypatch.setattr(pool, "STUCK_AFTER_TIMEOUTS", 1000)  # the hung worker is kept for the run
    monkeypatch.setattr(pool, "CLOSE_GRACE_S", 0.1)

    class HungWorkers(cli.Classifier):
        async def start(self) -> None:
            await super().start()
            for pid in self.worker_pids:
                os.kill(pid, signal.SIGSTOP)  # every main-model job times out, and stays in flight

    monkeypatch.setattr(cli, "Classifier", HungWorkers)
    out = io.StringIO()
    files = [str(clips[i % len(clips)]) for i in range(2 * cli.IN_FLIGHT_PER_WORKER + 1)]
    status = await cli.classify_files(
        files, weights=tiny_weights, model="auto", workers=1, timeout_s=0.2, as_json=True, out=out
    )
    assert status == cli.EXIT_OK
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(a["file"], a["model"], a["fallback_reason"]) for a in answers] == [(f, "ann", "timeout") for f in files]


def test_a_path_that_is_no_audio_file_is_named_as_typed(tiny_weights, tmp_path):
    """The decoder names a file by its base name only (the bot's uploads sit in temporary folders no
    chat user is to see): here "null is not a regular file" for /dev/null read as a riddle, and a
    folder or a missing file deep in a tree was named by its last part."""
    folder, missing = tmp_path / "songs", tmp_path / "gone" / "song.ogg"
    folder.mkdir()
    done = run_cli("classify", "--model", "ann", "--weights", str(tiny_weights), "/dev/null", str(folder),
                   str(missing))
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        "/dev/null: error: /dev/null is not a regular file (a device or a socket), so not an audio file.",
        f"{folder}: error: {folder} is a folder, not an audio file.",
        f"{missing}: error: There is no file at {missing}.",
    ]


def test_a_song_we_may_not_read_is_said_to_be_refused_by_name_as_typed(tiny_weights, clips, tmp_path):
    """chmod 000 on a real song: the line says the file could not be opened, and names it as typed
    (the decoder said "I am not allowed to read the file song.ogg", by its base name only)."""
    import shutil

    song = tmp_path / "locked" / "song.ogg"
    song.parent.mkdir()
    shutil.copy(clips[0], song)
    song.chmod(0)
    done = subprocess.run(
        [sys.executable, "-m", "inference", "classify", "--model", "ann", "--weights", str(tiny_weights), str(song)],
        cwd=REPO, capture_output=True, text=True, timeout=170, preexec_fn=bound_by_file_modes,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == f"{song}: error: {song} cannot be opened: permission refused.\n"


def test_json_names_a_file_that_is_not_utf8_in_valid_utf8(tiny_weights, clips, tmp_path):
    """`--json` wrote "caf\\udce9.ogg", a lone surrogate that no UTF-8 reader takes: each byte that is
    not UTF-8 is U+FFFD in "file" and "error", the rest of the name as it is."""
    import os
    import shutil

    song = tmp_path / os.fsdecode(b"caf\xe9.ogg")  # a Latin-1 name, as old rips have
    shutil.copy(clips[0], song)
    missing = tmp_path / os.fsdecode(b"gon\xe9.ogg")
    done = run_cli("classify", "--json", "--model", "ann", "--weights", str(tiny_weights), str(song), str(missing))
    assert done.returncode == 1, done.stderr
    answer, failure = [json.loads(line) for line in done.stdout.splitlines()]
    assert answer["file"] == f"{tmp_path}/caf\ufffd.ogg" and answer["model"] == "ann"
    assert failure == {"file": f"{tmp_path}/gon\ufffd.ogg", "error": f"There is no file at {tmp_path}/gon\ufffd.ogg."}


def test_a_file_name_with_a_newline_is_printed_escaped_on_its_one_line(tiny_weights, clips, tmp_path):
    """A name with a newline split its readable line in two, so one file's answer read as two lines:
    its control characters are escaped as Python writes them (`\\n`), in the name and in the error
    that quotes it; `--json` escapes them already."""
    import shutil

    song, missing = tmp_path / "side\na.ogg", tmp_path / "gone\t\x1b.ogg"
    shutil.copy(clips[0], song)
    done = run_cli("classify", "--model", "ann", "--weights", str(tiny_weights), str(song), str(missing))
    assert done.returncode == 1, done.stderr
    answer, failure = done.stdout.splitlines()
    assert answer.startswith(f"{tmp_path}/side\\na.ogg: ") and f"[ann ann-{TINY_VERSION}]" in answer
    assert failure == f"{tmp_path}/gone\\t\\x1b.ogg: error: There is no file at {tmp_path}/gone\\t\\x1b.ogg."


def test_a_temporary_folder_too_long_for_the_fork_servers_socket_still_classifies(tiny_weights, clips):
    """multiprocessing's fork server listens on a socket in $TMPDIR, and a socket's path may not
    pass 107 bytes: with a $TMPDIR of ~75 characters or more no worker started ("AF_UNIX path too
    long") and every file failed. Workers are then spawned instead."""
    import os

    scratch = Path(tempfile.mkdtemp(prefix="long-", dir="/tmp"))
    deep = scratch / ("d" * 100)
    deep.mkdir()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "inference", "classify", "--json", "--workers", "1",
             "--weights", str(tiny_weights), str(clips[0])],
            cwd=REPO, capture_output=True, text=True, timeout=170, env={**os.environ, "TMPDIR": str(deep)},
        )
    finally:
        shutil.rmtree(scratch)
    assert done.returncode == 0, done.stderr
    (answer,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert answer["model"] == "main" and answer["mood"] in MOODS, answer


def test_an_empty_file_or_standard_input_is_said_to_be_empty(tiny_weights, tmp_path):
    """A file of 0 bytes (a copy or a download cut short) was "not audio we can read", as a file in
    another format is, where the bot's console and Discord say it is empty; standard input read empty
    (`< /dev/null`) the same, named "stdin"."""
    empty = tmp_path / "song.mp3"
    empty.write_bytes(b"")
    done = subprocess.run(
        [sys.executable, "-m", "inference", "classify", "--json", "--model", "ann", "--weights", str(tiny_weights),
         str(empty), "-"], cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=170,
    )
    assert done.returncode == 1, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [
        {"file": str(empty), "error": f"{empty} is empty (0 bytes): there is no audio in it."},
        {"file": "-", "error": "Standard input was empty (0 bytes): there is no audio in it."},
    ]


def test_an_endless_stream_is_read_up_to_a_bound_then_refused(tmp_path):
    """`ffmpeg -f lavfi -i sine -f wav - | python -m inference classify -`, a stream that never ends, was
    copied to $TMPDIR until the disk was full (60 s of it: killed by `timeout`, nothing said). A stream is
    read to its end or to `max_bytes` (2 GiB: 20 minutes of 96 kHz 24-bit 5.1 are 2.07 GB), where it is
    refused, its copy deleted, and the writer told by a broken pipe."""
    import os
    import threading

    from inference import __main__ as cli

    endless, ended = tmp_path / "endless.wav", tmp_path / "short.wav"

    def write(fifo: Path, total: int | None) -> None:
        count = 0
        try:
            with open(fifo, "wb") as pipe:
                while total is None or count < total:
                    count += pipe.write(b"\x01" * 65536)
        except BrokenPipeError:  # the reader stopped
            pass

    for fifo, total in ((endless, None), (ended, 65536 * 4)):
        os.mkfifo(fifo)
        threading.Thread(target=write, args=(fifo, total), daemon=True).start()
    (tmp_path / "copies").mkdir()
    copies, problems = cli.copy_streams([str(endless), str(ended)], tmp_path / "copies", max_bytes=1 << 20)
    assert problems == {str(endless): f"{endless} went on past 1 MiB: I stopped reading it there."}
    assert not copies[str(endless)].exists()
    assert copies[str(ended)].stat().st_size == 65536 * 4 and str(ended) not in problems
    assert cli.STREAM_MAX_BYTES == 2 << 30 and cli.byte_size(cli.STREAM_MAX_BYTES) == "2 GiB"
