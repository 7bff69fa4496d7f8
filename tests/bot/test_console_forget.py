"""The console's /forget asks "Delete everything? [y/N]" on the next line: a command typed there
instead of an answer deletes nothing, and is run, not dropped. Confirmed, it says which files it
saved on this computer it kept (the user's own copies), each kind counted."""
from __future__ import annotations

import stat

import pytest

from tests.bot.test_console import chat
from tests.permissions import open_data_dir


async def test_a_command_typed_at_the_forget_question_deletes_nothing_and_runs(db, counting, tmp_path):
    out = await chat(db, counting, tmp_path, ["/journal on 21:30 Europe/Lisbon", "/forget", "/export",
                                              "/journal list", "/quit"])
    assert "Delete everything? [y/N] Nothing was deleted." in out
    assert "Here is all moodbot keeps about you" in out and (tmp_path / "exports").is_dir()
    assert "Your daily prompt comes at 21:30 (Europe/Lisbon)" in out  # kept, and /journal list ran too
    assert out.rstrip().endswith("Bye!")


async def test_quit_typed_at_the_forget_question_leaves(db, counting, tmp_path):
    out = await chat(db, counting, tmp_path, ["/share on", "/forget", "/quit", "/help"])
    assert "Nothing was deleted." in out and out.rstrip().endswith("Bye!")
    assert "/journal on <HH:MM>" not in out  # /help, after /quit, was never read


@pytest.mark.parametrize(("charts", "exports", "said"), [
    (0, 1, "The export saved on this computer ({where}) is your own copy and was not deleted; "
           "remove it yourself if you no longer want it."),
    (1, 0, "The chart saved on this computer ({where}) is your own copy and was not deleted; "
           "remove it yourself if you no longer want it."),
    (0, 2, "The 2 exports saved on this computer ({where}) are your own copies and were not deleted; "
           "remove them yourself if you no longer want them."),
    (3, 0, "The 3 charts saved on this computer ({where}) are your own copies and were not deleted; "
           "remove them yourself if you no longer want them."),
    (1, 1, "The chart and the export saved on this computer ({where}) are your own copies and were not deleted; "
           "remove them yourself if you no longer want them."),
    (3, 2, "The 3 charts and the 2 exports saved on this computer ({where}) are your own copies and were not "
           "deleted; remove them yourself if you no longer want them."),
])
async def test_forget_names_the_saved_files_it_keeps_as_they_are(db, counting, tmp_path, charts, exports, said):
    """Files the console saved earlier (this session or another): the sentence counts each kind, and
    is singular for one file; "the 1 chart and export file" was said of a lone export."""
    folders = []
    for folder, count, name in (("charts", charts, "20261204-120000-mood-map{}.png"),
                                ("exports", exports, "moodbot-export-2026-12-04{}.json")):
        for n in range(count):
            (tmp_path / folder).mkdir(exist_ok=True)
            (tmp_path / folder / name.format(f"-{n + 1}" if n else "")).write_bytes(b"kept")
        if count:
            folders.append(str((tmp_path / folder).resolve()))

    out = await chat(db, counting, tmp_path, ["/share on", "/forget", "y", "/quit"])

    assert said.format(where=" and ".join(folders)) in out


async def test_the_export_the_console_saves_is_its_users_alone(db, counting, tmp_path):
    """The export holds the whole journal, its notes too. Saved with the umask's modes (0644 in a
    folder of 0755), any local user could read it in a DATA_DIR made before the bot made it its
    own (`mkdir data`, a volume), where the outbox's few answers are kept 0600 whatever the umask."""
    with open_data_dir(tmp_path) as data_dir:
        await chat(db, counting, data_dir, ["/journal on 21:30 Europe/Lisbon", "/export", "/quit"])

    [saved] = (data_dir / "exports").iterdir()
    assert [oct(stat.S_IMODE(p.stat().st_mode)) for p in (data_dir / "exports", saved)] == ["0o700", "0o600"]
