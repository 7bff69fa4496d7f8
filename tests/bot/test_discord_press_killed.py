"""`python -m bot` killed outright (SIGKILL, as an out-of-memory kill) while a Discord button press
was at work: Discord replays no interaction, and the press had been deferred (Discord shows nothing
more), so its answer never came. The press is kept in the inbox until answered, and the restart
answers it in the message pressed (bot/frontends/discord/kept.py); the in-process cases are in
tests/frontends/test_discord_kept_presses.py."""
from __future__ import annotations

from storage.models import UserRef
from tests.bot import test_app_stop
from tests.bot.test_app_stop import discord_env, killed_in_the_delete, running_bot
from tests.frontends.test_journal_pages import write_days

ALICE = 42  # the fake Discord's user by default
discord, gate = test_app_stop.discord, test_app_stop.gate  # its fixtures: the fake Discord, the database's relay


async def test_a_discord_forget_yes_the_bot_was_killed_outright_in_is_finished_after_the_restart(
        tmp_path, gate, discord, mongo_uri, db_name, db):
    """`kill -9` while "Yes, delete everything" deleted (the settings withdrawn, the journal still
    there): the question stayed with its buttons over the half-done deletion, and a press after the
    restart was told the confirmation had expired. The restart finishes it and says so there."""
    await write_days(db, "discord", ALICE, 3)
    env = discord_env(discord, tmp_path / "data", MONGODB_URI=gate.uri(mongo_uri), MONGODB_DATABASE=db_name)
    async with running_bot(tmp_path, env) as proc:
        await discord.slash("forget", user=ALICE)
        question = await discord.wait_for("interaction_callback", timeout=30)
        yes = question.result["interaction"]["response_message_id"]
        pressed = await killed_in_the_delete(proc, gate, lambda: discord.click(yes, "forget:yes", user=ALICE),
                                             settle=0.5)  # kept in the background
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 3
    mark = discord.mark()

    async with running_bot(tmp_path, env):
        done = await discord.wait_for("edit_original", lambda c: c.token == pressed["token"], timeout=60, after=mark)
    assert done.content.startswith("Done: I deleted everything about you"), done.content
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 0
    assert "inbox.replayed" in (tmp_path / "stderr").read_text()
