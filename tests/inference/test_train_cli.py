"""`python -m inference train` as an engineer retraining on their own machine: bad input is a usage
error (exit 2, one line naming the problem) before any training starts, never a traceback."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from inference import train

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


def test_ctrl_c_before_the_run_is_set_up_exits_130_without_a_traceback(monkeypatch, capsys):
    """Ctrl-C while torch imports (seconds) or the clips are checked is the same quiet exit."""
    from inference import __main__ as cli

    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "main", interrupted)
    assert cli.main(["train", "--model", "ann"]) == 130
    assert "interrupted" in capsys.readouterr().err


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
    text = " ".join(train.build_parser().format_help().split())
    for option, default in [("--out", train.DEFAULT_OUT), ("--cache-dir", train.DEFAULT_CACHE),
                            ("--log-file", train.DEFAULT_LOG), ("--batch-size", train.MAIN_BATCH),
                            ("--threads", 2), ("--workers", 2)]:
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
