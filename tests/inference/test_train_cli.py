"""`python -m inference train` as an engineer retraining on their own machine: bad input is a usage
error (exit 2, one line naming the problem) before any training starts, never a traceback."""
from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from inference import train, train_args

REPO = Path(__file__).resolve().parents[2]
COLUMNS = ["song_id", "file", "quadrant", "mood", "artist", "title", "allmusic_moods", "genres"]


def write_labels(folder: Path, rows: list[dict], columns: list[str] = COLUMNS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return folder


def real_rows(shared_data: Path, per_mood: int) -> list[dict]:
    """The first `per_mood` clips of each mood, their files named by absolute path."""
    with open(shared_data / "labels.csv", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: row["song_id"])
    chosen = []
    for mood in ("happy", "energetic", "sad", "calm"):
        chosen += [row for row in rows if row["mood"] == mood][:per_mood]
    return [{**row, "file": str(shared_data / row["file"])} for row in chosen]


def train_fails(tmp_path: Path, capsys, *args: str) -> str:
    """Run the train CLI expecting a usage error; return its error line."""
    with pytest.raises(SystemExit) as stopped:
        train.main([*args, "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
                    "--log-file", str(tmp_path / "train.log"), "--workers", "1"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2, err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written
    return err.strip().splitlines()[-1]


def test_a_label_with_an_unknown_mood_is_named(shared_data, tmp_path, capsys):
    rows = real_rows(shared_data, 2)
    rows[3] = {**rows[3], "mood": "joyful"}
    data = write_labels(tmp_path / "data", rows)
    line = train_fails(tmp_path, capsys, "--data", str(data))
    assert "'joyful'" in line and "line 5" in line and "happy, energetic, sad, calm" in line


def test_a_labels_file_without_the_needed_columns_is_named(tmp_path, capsys):
    data = write_labels(tmp_path / "data", [{"song_id": "a", "file": "a.ogg"}], ["song_id", "file"])
    line = train_fails(tmp_path, capsys, "--data", str(data))
    assert "labels.csv" in line and "mood" in line and "artist" in line


def test_an_empty_labels_file_is_named(tmp_path, capsys):
    data = write_labels(tmp_path / "data", [])
    assert "no clips" in train_fails(tmp_path, capsys, "--data", str(data))


def test_missing_audio_is_named(shared_data, tmp_path, capsys):
    rows = real_rows(shared_data, 2)
    rows[0] = {**rows[0], "file": "audio/not-there.ogg"}
    data = write_labels(tmp_path / "data", rows)
    line = train_fails(tmp_path, capsys, "--data", str(data))
    assert "1 clip" in line and "not-there.ogg" in line


@pytest.mark.parametrize("args", [
    ("--limit", "3", "--folds", "2"),  # one clip per mood cannot fill two folds
    ("--limit", "8", "--folds", "5"),  # two clips per mood, five folds
])
def test_too_few_clips_for_the_folds_is_a_usage_error(shared_data, tmp_path, capsys, args):
    line = train_fails(tmp_path, capsys, "--model", "ann", "--data", str(shared_data), *args)
    assert "--folds" in line and "artist" in line


def test_too_few_artists_for_the_folds_is_a_usage_error(shared_data, tmp_path, capsys):
    rows = [{**row, "artist": "The Same Band"} for row in real_rows(shared_data, 3)]
    data = write_labels(tmp_path / "data", rows)
    line = train_fails(tmp_path, capsys, "--model", "ann", "--data", str(data), "--folds", "2")
    assert "--folds 2" in line and "1 artist" in line


def test_head_without_a_trained_network_in_out_says_so_before_any_work(shared_data, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        train.main(["--model", "head", "--data", str(shared_data), "--limit", "8", "--folds", "2",
                    "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
                    "--log-file", str(tmp_path / "train.log"), "--workers", "1"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert "--model head" in line and "main.json" in line and "ann.json" in line
    assert not (tmp_path / "cache").exists()  # no clip was decoded for nothing


@pytest.mark.parametrize("option", ["--out", "--cache-dir", "--log-file"])
def test_an_output_path_that_cannot_be_written_is_refused_before_training(shared_data, tmp_path, capsys, option):
    """A typo such as `--out inference/weights/main.onnx` must not cost a whole cross-validation first."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    paths = {"--out": tmp_path / "out", "--cache-dir": tmp_path / "cache", "--log-file": tmp_path / "train.log"}
    paths[option] = blocker / "inside"
    with pytest.raises(SystemExit) as stopped:
        train.main(["--model", "ann", "--data", str(shared_data), "--limit", "8", "--folds", "2",
                    "--epochs", "1", "--workers", "1", *[str(x) for pair in paths.items() for x in pair]])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "Traceback" not in err, err
    assert f"{option} {blocker / 'inside'}" in err.strip().splitlines()[-1]
    assert not list(tmp_path.rglob("*.npz"))  # refused before any clip was decoded or trained


def test_ctrl_c_late_in_a_run_leaves_the_weights_in_out_as_they_were(shared_data, tmp_path, capsys, monkeypatch):
    """Ctrl-C after the ANN was trained and main.onnx exported, while the card is written: a bot serving
    from --out must not be left with a new ANN or network beside an old main.json (or half a file)."""
    out = tmp_path / "out"
    out.mkdir()
    shipped = {"ann.npz": b"old ann", "ann.json": b'{"version": "old"}', "main.onnx": b"old network",
               "main.json": b'{"version": "old", "fusion": {}}', "MODEL_CARD_main.md": b"# old card"}
    for name, content in shipped.items():
        (out / name).write_bytes(content)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "main_card", interrupted)
    code = train.main(["--model", "both", "--data", str(shared_data), "--limit", "8", "--folds", "2",
                       "--epochs", "1", "--batch-size", "4", "--out", str(out), "--workers", "1",
                       "--cache-dir", str(tmp_path / "cache"), "--log-file", str(tmp_path / "train.log")])
    assert code == 130 and "Traceback" not in capsys.readouterr().err
    assert "interrupted: nothing in" in (tmp_path / "train.log").read_text()  # the log goes to stderr too
    assert {p.name: p.read_bytes() for p in out.iterdir()} == shipped  # nothing replaced, nothing left over


def test_a_finished_run_replaces_the_weights_in_out_and_leaves_no_staging_folder(shared_data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "ann.npz").write_bytes(b"old ann")
    (out / "notes.txt").write_text("mine")
    assert train.main(["--model", "ann", "--data", str(shared_data), "--limit", "8", "--folds", "2",
                       "--epochs", "1", "--out", str(out), "--workers", "1", "--cache-dir", str(tmp_path / "cache"),
                       "--log-file", str(tmp_path / "train.log")]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "MODEL_CARD_ann.md", "ann.json", "ann.npz", "confusion_ann.png", "notes.txt"]
    with np.load(out / "ann.npz") as arrays:
        assert "W0" in arrays.files
    assert json.loads((out / "ann.json").read_text())["version"].endswith(
        train.file_version(out / "ann.npz").split("-")[-1])


# In a process's memory map once `import torch` has begun, which then goes on for seconds (4.5 s to
# the end of a run on an empty --data here; this shared library is mapped within 0.14 s of the start).
TORCH_LIBRARY = "libtorch"


def test_ctrl_c_before_the_run_is_set_up_exits_130_without_a_traceback(tmp_path):
    """Ctrl-C while torch imports (seconds) or the clips are checked is the same quiet exit: a real
    SIGINT to `python -m inference train`, sent once torch's library is loaded."""
    (tmp_path / "labels.csv").write_text("")  # its arguments pass (they are checked before torch's import)
    run = subprocess.Popen([sys.executable, "-m", "inference", "train", "--model", "ann", "--data", str(tmp_path)],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    maps = Path(f"/proc/{run.pid}/maps")
    deadline = time.monotonic() + 120
    while run.poll() is None and time.monotonic() < deadline and TORCH_LIBRARY not in maps.read_text():
        time.sleep(0.01)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=120)
    assert (run.returncode, out, err) == (130, "", "interrupted\n")


@pytest.mark.parametrize("args, says", [
    (("--folds", "1"), "argument --folds: must be at least 2, not 1"),
    (("--epochs", "0"), "argument --epochs: must be at least 1, not 0"),
    (("--workers", "-1"), "argument --workers: must be at least 1, not -1"),
])
def test_fusion_refuses_a_wrong_number_before_loading_anything(monkeypatch, capsys, args, says):
    from inference import fusion

    def no_loading(*args, **kwargs):
        raise AssertionError("the data set was loaded for a run that cannot work")

    monkeypatch.setattr(train, "load_dataset", no_loading)
    with pytest.raises(SystemExit) as stopped:
        fusion.main(list(args))
    assert stopped.value.code == 2 and says in capsys.readouterr().err


def test_help_says_where_the_weights_cache_and_log_go():
    text = " ".join(train_args.build_parser().format_help().split())
    for option, default in [("--out", train_args.DEFAULT_OUT), ("--cache-dir", train_args.DEFAULT_CACHE),
                            ("--log-file", train_args.DEFAULT_LOG), ("--batch-size", train.MAIN_BATCH),
                            ("--threads", 2), ("--workers", 2), ("--seed", train.SEED),
                            ("--split-seed", train.SEED)]:
        help_of_option = text.split(f"{option} {option.lstrip('-').replace('-', '_').upper()}")[-1]
        assert f"default {default}" in help_of_option.split(" --")[0], option


def test_retraining_only_the_network_warns_that_the_fused_answer_is_dropped(shared_data, tmp_path, caplog):
    """main.json of `--model main` has no fusion weights: the bot would serve the network alone (0.5 F1
    instead of the fused 0.73) without a word, unless the user runs `--model head` after it."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "main.json").write_text(json.dumps({"version": "old", "fusion": {"main_weight": 0.1}}))
    assert train.main(["--model", "main", "--data", str(shared_data), "--limit", "8", "--folds", "2",
                       "--epochs", "1", "--batch-size", "4", "--out", str(out), "--workers", "1",
                       "--cache-dir", str(tmp_path / "cache"), "--log-file", str(tmp_path / "train.log")]) == 0
    assert "fusion" not in json.loads((out / "main.json").read_text())
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("--model head" in message and "network alone" in message for message in warnings), warnings


def tiny_ann_run(shared_data: Path, tmp_path: Path, name: str, *extra: str) -> Path:
    """A few-second `--model ann` run on 8 clips into tmp_path/name; returns that folder."""
    out = tmp_path / name
    assert train.main(["--model", "ann", "--data", str(shared_data), "--limit", "8", "--folds", "2",
                       "--epochs", "20", "--out", str(out), "--workers", "1", "--cache-dir", str(tmp_path / "cache"),
                       "--log-file", str(tmp_path / "train.log"), *extra]) == 0
    return out


def test_another_seed_trains_another_ann_on_the_same_artist_folds(shared_data, tmp_path):
    """Seed comparisons (README, "Measured quality") need the training seed apart from the split."""
    first = tiny_ann_run(shared_data, tmp_path, "first", "--seed", "1", "--split-seed", "7")
    second = tiny_ann_run(shared_data, tmp_path, "second", "--seed", "2", "--split-seed", "7")
    resplit = tiny_ann_run(shared_data, tmp_path, "resplit", "--seed", "1", "--split-seed", str(train.SEED))
    cards = {run: json.loads((run / "ann.json").read_text()) for run in (first, second, resplit)}
    assert [(cards[run]["seed"], cards[run]["split_seed"]) for run in (first, second, resplit)] == [
        (1, 7), (2, 7), (1, train.SEED)]
    folds = cards[first]["cv"]["held_out_artists"]
    artists = {clip.artist for clip in train.read_labels(shared_data, limit=8)}
    assert len(folds) == 2 and sorted(a for fold in folds for a in fold) == sorted(artists)
    assert cards[second]["cv"]["held_out_artists"] == folds  # the same folds under another seed
    assert cards[resplit]["cv"]["held_out_artists"] != folds  # the split seed alone moves them
    with np.load(first / "ann.npz") as a, np.load(second / "ann.npz") as b:
        assert not np.allclose(a["W0"], b["W0"])  # another initialisation, order and dropout
    card = " ".join((first / "MODEL_CARD_ann.md").read_text().split())
    assert "Seed 1 (--seed" in card and "(split seed 7, --split-seed)" in card


def test_a_run_without_seeds_trains_as_before(shared_data, tmp_path):
    """The defaults are the old SEED for both: the folds and the final fit are the ones it gave."""
    from sklearn.model_selection import StratifiedGroupKFold

    out = tiny_ann_run(shared_data, tmp_path, "default")
    card = json.loads((out / "ann.json").read_text())
    assert card["seed"] == card["split_seed"] == 20261124 == train.SEED
    clips = train.read_labels(shared_data, limit=8)
    labels, groups = np.array([c.label for c in clips]), np.array([c.artist for c in clips])
    splitter = StratifiedGroupKFold(n_splits=2, shuffle=True, random_state=20261124)
    assert card["cv"]["held_out_artists"] == [sorted(set(groups[val])) for _, val in splitter.split(labels, labels, groups)]
    data = train.load_dataset(clips, tmp_path / "cache", workers=1)
    scale = train.Standardiser.fit(data.features)
    refit = train.ann_arrays(train.train_ann(scale(data.features), data.labels, card["final_epochs"], 20261124), scale)
    with np.load(out / "ann.npz") as shipped:
        for name in shipped.files:
            np.testing.assert_array_equal(shipped[name], refit[name], err_msg=name)


def test_the_seeds_reach_the_network_and_the_fusion(shared_data, tmp_path):
    """`--model all`: every network, ANN and fold of the run, the fusion's included, follows the two
    seeds, as its log says of each split and each fit."""
    from inference import fusion

    out = tmp_path / "out"
    assert train.main(["--model", "all", "--data", str(shared_data), "--limit", "8", "--folds", "2",
                       "--epochs", "1", "--batch-size", "4", "--out", str(out), "--workers", "1",
                       "--cache-dir", str(tmp_path / "cache"), "--log-file", str(tmp_path / "train.log"),
                       "--seed", "5", "--split-seed", "7"]) == 0
    log = (tmp_path / "train.log").read_text()
    splits = re.findall(r"artist folds of \d+ clips, split seed (\d+)", log)
    assert splits and set(splits) == {"7"}
    # CV folds 0 and 1 train on seed + k, the final fits on the seed itself; fusion refits both per fold.
    anns = re.findall(r"ann: fitting on \d+ clips, \d+ epochs at most, seed (\d+)", log)
    networks = re.findall(r": fitting the network on \d+ clips, \d+ epochs at most, seed (\d+)", log)
    assert sorted(anns) == sorted(networks) == sorted("56556")
    card = json.loads((out / "main.json").read_text())
    assert (card["seed"], card["split_seed"]) == (5, 7)
    assert (card["fusion"]["seed"], card["fusion"]["split_seed"]) == (5, 7)
    assert card["cv"]["held_out_artists"] == json.loads((out / "ann.json").read_text())["cv"]["held_out_artists"]
    assert fusion.CARD_SECTION in (out / "MODEL_CARD_main.md").read_text()


@pytest.mark.parametrize("args, says", [
    (("--seed", "-1"), "argument --seed: must be from 0 to 4294967295, not -1"),
    (("--seed", "1.5"), "argument --seed: '1.5' is not a whole number"),
    (("--split-seed", "x"), "argument --split-seed: 'x' is not a whole number"),
    (("--split-seed", str(2**32)), f"argument --split-seed: must be from 0 to 4294967295, not {2**32}"),
])
def test_a_wrong_seed_is_a_usage_error(shared_data, tmp_path, capsys, args, says):
    line = train_fails(tmp_path, capsys, "--model", "ann", "--data", str(shared_data), *args)
    assert line.endswith(says)


# A real training process that stops for good once its staging folder is made: it touches
# $STUCK_MARKER where it would start loading the clips, then sleeps until killed.
STUCK_RUN = """
import os, sys, time
from pathlib import Path
from inference import train

def load_dataset_forever(*args, **kwargs):
    Path(os.environ["STUCK_MARKER"]).touch()
    time.sleep(600)

train.load_dataset = load_dataset_forever
sys.exit(train.main(sys.argv[1:]))
"""


def start_stuck_run(shared_data: Path, tmp_path: Path, out: Path) -> subprocess.Popen:
    """`python -m inference train --out out` in its own process, returned once it is mid-run."""
    marker = tmp_path / "stuck-run-is-mid-run"
    with open(tmp_path / "stuck-run.err", "w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-c", STUCK_RUN, "--model", "ann", "--data", str(shared_data), "--limit", "8",
             "--folds", "2", "--out", str(out), "--workers", "1", "--cache-dir", str(tmp_path / "cache"),
             "--log-file", str(tmp_path / "stuck-run.log")],
            cwd=REPO, env={**os.environ, "STUCK_MARKER": str(marker)}, stdout=subprocess.DEVNULL, stderr=errors)
    deadline = time.monotonic() + 120
    while not marker.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"the stuck run never got mid-run: {(tmp_path / 'stuck-run.err').read_text()}")
        time.sleep(0.05)
    return process


def test_a_staging_folder_left_by_a_killed_run_is_removed_by_the_next_run(shared_data, tmp_path):
    out = tmp_path / "out"
    process = start_stuck_run(shared_data, tmp_path, out)
    process.send_signal(signal.SIGKILL)  # no finally block runs, as after the OOM killer or a power cut
    assert process.wait() == -signal.SIGKILL
    left = list(out.glob(".train-staging-*"))
    assert len(left) == 1 and left[0].is_dir()
    tiny_ann_run(shared_data, tmp_path, "out")
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert f"removed {left[0]}" in (tmp_path / "train.log").read_text()
    assert (out / "ann.npz").is_file()


def test_a_run_in_progress_keeps_its_staging_folder_while_another_run_finishes(shared_data, tmp_path):
    """Two runs into the same --out: the one that starts later must not clean away the other's work."""
    out = tmp_path / "out"
    process = start_stuck_run(shared_data, tmp_path, out)
    try:
        [live] = out.glob(".train-staging-*")
        inside = sorted(p.name for p in live.iterdir())
        tiny_ann_run(shared_data, tmp_path, "out")
        assert live.is_dir() and sorted(p.name for p in live.iterdir()) == inside
        assert list(out.glob(".train-staging-*")) == [live]  # the second run's own folder is gone
        assert process.poll() is None and (out / "ann.npz").is_file()
        assert f"kept {live}" in (tmp_path / "train.log").read_text()
    finally:
        process.kill()
        process.wait()
    tiny_ann_run(shared_data, tmp_path, "out")  # now that its run is dead, the folder goes
    assert not list(out.glob(".train-staging-*"))


def test_a_staging_folder_without_a_lock_goes_once_it_has_not_changed_for_a_day(shared_data, tmp_path):
    """Runs before the lock left folders without one; a folder this instant being made or removed has none
    either, but has just changed."""
    out = tmp_path / "out"
    old, fresh = out / ".train-staging-old", out / ".train-staging-fresh"
    for folder in (old, fresh):
        folder.mkdir(parents=True)
        (folder / "ann.npz").write_bytes(b"half an ANN")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    tiny_ann_run(shared_data, tmp_path, "out")
    assert not old.exists() and fresh.is_dir()
    assert f"removed {old}" in (tmp_path / "train.log").read_text()


@pytest.mark.parametrize("missing", ["torch", "sklearn"])
def test_training_without_the_train_extra_says_what_to_install(missing):
    """`make run` installs serving only; `python -m inference train` then names the extra to install
    (one line, exit 2) instead of a ModuleNotFoundError traceback. The package is made missing the
    way Python sees a package that is not installed (sys.modules[name] = None). Its arguments are
    right (a wrong one, or --help, is answered first)."""
    code = (f"import sys; sys.modules[{missing!r}] = None; from inference.__main__ import main; "
            "sys.exit(main(['train', '--model', 'ann']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert f"training needs the train extra ({missing} is not installed)" in result.stderr
    assert "-m pip install -e '.[train]'" in result.stderr
