"""Given a command used in a thread or a forum's post, its answer (a chart, a file's link) is there.
Given a server's channel where the bot may not embed links or attach files, Discord refuses its
answer there (403 Missing Permissions): the asker is told, alone, which permission the bot lacks in
that channel and what to do, rather than "something went wrong" (or nothing at all)."""
from __future__ import annotations

import logging

import pytest

from tests.fakes.discord_api import APP_PERMISSIONS, ATTACH_FILES, EMBED_LINKS, MISSING_PERMISSIONS, thread_in
from tests.frontends.conftest import cache_upload
from tests.frontends.test_discord import ATTACHMENT, GUILD, STRING, failures_logged, made_private
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


@pytest.mark.parametrize("parent", [GUILD + 1, GUILD + 5], ids=["a channel's thread", "a forum's post"])
async def test_answers_in_a_thread_or_a_forum_post_are_there_and_a_file_s_link_names_it(discord_bot, db, parent):
    fake, _ = discord_bot
    thread = thread_in(GUILD, GUILD + 99, parent)
    await asked(db, BOB, GUILD, "Creep")
    await fake.slash("servermood", guild=GUILD, user=ALICE, channel=thread)
    chart = await fake.wait_for("edit_original", lambda call: bool(call.files))  # the interaction's own answer
    assert list(chart.files) == ["server-mood.png"] and "sad" in chart.content

    clip = fake.add_file("clip.mp4", await cache_upload(db, b"v" * 64, "sad"))
    clip["content_type"] = "video/mp4"
    await fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": clip["id"]}], guild=GUILD, user=ALICE,
                     resolved={"attachments": {clip["id"]: clip}}, channel=thread)
    await fake.wait_for("edit_original", lambda call: bool(call.embeds))
    await fake.slash("playlist", SAD, guild=GUILD, user=ALICE, channel=thread)
    [embed] = (await fake.wait_for("edit_original", lambda call: "playlist" in str(call.embeds))).embeds
    assert f"https://discord.com/channels/{GUILD}/{GUILD + 99}/" in embed["description"]  # the post, not its forum
