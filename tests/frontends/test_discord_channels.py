"""Given a server's channel where the bot may not embed links or attach files, Discord refuses its
answer there (403 Missing Permissions): the asker is told, alone, which permission the bot lacks in
that channel and what to do, rather than "something went wrong" (or nothing at all)."""
from __future__ import annotations

import logging

import pytest

from tests.fakes.discord_api import APP_PERMISSIONS, ATTACH_FILES, EMBED_LINKS, MISSING_PERMISSIONS
from tests.frontends.test_discord import GUILD, STRING, failures_logged, made_private
from tests.frontends.test_discord_members import asked

ALICE, BOB = 42, 43


SAD = [{"name": "mood", "type": STRING, "value": "sad"}]


@pytest.mark.parametrize("command,options,lacking,named", [
    ("playlist", SAD, EMBED_LINKS, "Embed Links"),
    ("servermood", None, ATTACH_FILES, "Attach Files"),  # its chart is a file
    ("playlist", SAD, EMBED_LINKS | ATTACH_FILES, "Embed Links or Attach Files"),
    ("playlist", SAD, 0, None),  # Discord's payload names none: the refusal is said all the same
])
async def test_an_answer_refused_for_a_permission_the_bot_lacks_in_the_channel_names_it_to_the_asker_alone(
        discord_bot, db, caplog, command, options, lacking, named):
    fake, _ = discord_bot
    await asked(db, BOB, GUILD, "Creep")
    fake.app_permissions = APP_PERMISSIONS & ~lacking
    fake.fail_next("edit_original", times=1, status=403, code=MISSING_PERMISSIONS, message="Missing Permissions")
    await fake.slash(command, options, guild=GUILD, user=ALICE)

    told = await fake.wait_for("followup", made_private)
    assert (named or "missing a permission") in told.content and "this channel" in told.content
    assert "went wrong" not in told.content
    assert not [c for c in fake.calls if "went wrong" in c.content]
    assert not failures_logged(caplog)  # a server's setting, not the bot's bug
    [refused] = [r for r in caplog.records if r.getMessage() == "discord.answer_refused_here"]
    assert refused.levelno == logging.WARNING and refused.missing == (named and named.replace(" or ", ", "))
