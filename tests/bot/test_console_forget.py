"""The console's /forget asks "Delete everything? [y/N]" on the next line: a command typed there
instead of an answer deletes nothing, and is run, not dropped."""
from __future__ import annotations

from tests.bot.test_console import chat


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
