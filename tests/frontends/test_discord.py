"""Given a Discord user runs a slash command, the bot answers through Discord's REST API as a user
would see it. Interactions arrive over the (fake) gateway and go through discord.py's own dispatch."""
from __future__ import annotations

import asyncio

from bot.frontends import render
from bot.frontends.discord.journal import FORGET_CANCELLED, NOT_YOUR_BUTTON
from bot.frontends.discord.mood import NO_SONG_IN_MESSAGE
from bot.replies import PromptMessage
from tests.fakes.discord_api import EPHEMERAL, user_payload

GUILD = 777000000000000001
ALICE, BOB = 42, 43

SUB_COMMAND, STRING, ATTACHMENT = 1, 3, 11
DEFERRED, MESSAGE, UPDATE_MESSAGE, AUTOCOMPLETE = 5, 4, 7, 8


def sub(name: str, **options: str) -> list[dict]:
    return [{"name": name, "type": SUB_COMMAND,
             "options": [{"name": k, "type": STRING, "value": v} for k, v in options.items()]}]


async def test_start_registers_every_command_with_descriptions(discord_bot):
    fake, _ = discord_bot
    names = {c["name"] for c in fake.commands}
    assert {"mood", "journal", "stats", "export", "forget", "playlist", "servermood", "share",
            "serverplaylist", "help", "Mood of this song"} <= names
    for command in fake.commands:
        if command["type"] == 1:
            assert command["description"]
            for option in command.get("options", []):
                assert option["description"]
    playlist = next(c for c in fake.commands if c["name"] == "playlist")
    assert [c["value"] for c in playlist["options"][0]["choices"]] == ["happy", "energetic", "sad", "calm"]
    admin = next(c for c in fake.commands if c["name"] == "serverplaylist")
    assert int(admin["default_member_permissions"]) == 1 << 5  # manage_guild


async def test_help_is_ephemeral_and_lists_the_commands(discord_bot):
    fake, _ = discord_bot
    await fake.slash("help")
    reply = await fake.wait_for("interaction_callback")
    assert reply.json["type"] == MESSAGE and reply.flags & EPHEMERAL
    assert "/mood" in reply.content and "/journal" in reply.content


async def test_timezone_autocomplete_suggests_iana_names(discord_bot):
    fake, _ = discord_bot
    options = sub("on", time="21:30")
    options[0]["options"].append({"name": "timezone", "type": STRING, "value": "Europe/Lis", "focused": True})
    await fake.slash("journal", options, interaction_type=4)
    reply = await fake.wait_for("interaction_callback")
    assert reply.json["type"] == AUTOCOMPLETE
    assert [c["value"] for c in reply.json["data"]["choices"]] == ["Europe/Lisbon"]


async def test_journal_on_then_list_are_private(discord_bot):
    fake, _ = discord_bot
    await fake.slash("journal", sub("on", time="21:30", timezone="Europe/Lisbon"))
    enabled = await fake.wait_for("interaction_callback")
    assert "21:30" in enabled.content and enabled.flags & EPHEMERAL
    await fake.slash("journal", sub("list"))
    listed = await fake.wait_for("interaction_callback")
    assert listed.content == render.empty_journal_text("21:30 (Europe/Lisbon)") and listed.flags & EPHEMERAL


async def test_playlist_defers_then_edits_in_the_answer(discord_bot):
    fake, _ = discord_bot
    await fake.slash("playlist", [{"name": "mood", "type": STRING, "value": "calm"}], guild=GUILD)
    deferred = await fake.wait_for("interaction_callback")
    assert deferred.json["type"] == DEFERRED
    answer = await fake.wait_for("edit_original")
    assert answer.at >= deferred.at
    assert "No calm songs here yet" in answer.embeds[0]["description"]


async def test_forget_asks_first_only_the_owner_confirms_and_no_cancels(discord_bot):
    fake, _ = discord_bot
    await fake.slash("share", [{"name": "choice", "type": STRING, "value": "off"}], user=ALICE)
    await fake.wait_for("interaction_callback")
    await fake.slash("forget", user=ALICE)
    question = await fake.wait_for("interaction_callback")
    assert question.flags & EPHEMERAL
    buttons = [b["custom_id"] for row in question.json["data"]["components"] for b in row["components"]]
    assert buttons == ["forget:yes", "forget:no"]
    message_id = question.result["interaction"]["response_message_id"]
    await fake.click(message_id, "forget:yes", user=BOB)
    assert (await fake.wait_for("interaction_callback")).content == NOT_YOUR_BUTTON
    await fake.click(message_id, "forget:yes", user=ALICE)
    done = await fake.wait_for("interaction_callback")
    assert done.json["type"] == UPDATE_MESSAGE and done.content.startswith("Done: I deleted everything")
    assert done.json["data"]["components"] == []

    await fake.slash("forget", user=ALICE)
    question = await fake.wait_for("interaction_callback")
    await fake.click(question.result["interaction"]["response_message_id"], "forget:no", user=ALICE)
    assert (await fake.wait_for("interaction_callback")).content == FORGET_CANCELLED


async def test_export_attaches_a_json_file_privately(discord_bot):
    fake, _ = discord_bot
    await fake.slash("export")
    deferred = await fake.wait_for("interaction_callback")
    assert deferred.json["type"] == DEFERRED and deferred.flags & EPHEMERAL
    answer = await fake.wait_for("edit_original")
    (name, data), = answer.files.items()
    assert name.startswith("moodbot-export-") and name.endswith(".json") and data.startswith(b"{")


async def test_serverplaylist_needs_manage_server(discord_bot):
    fake, _ = discord_bot
    state = [{"name": "state", "type": STRING, "value": "off"}]
    await fake.slash("serverplaylist", state, guild=GUILD, user=BOB)
    assert "admin" in (await fake.wait_for("interaction_callback")).content
    fake.admins.add(ALICE)
    await fake.slash("serverplaylist", state, guild=GUILD, user=ALICE)
    assert (await fake.wait_for("interaction_callback")).content.startswith("Server playlists are off")


async def test_an_attachment_over_the_limit_is_refused_before_downloading(discord_bot):
    fake, frontend = discord_bot
    attachment = fake.add_file("huge.ogg", b"\0" * 16)
    attachment["size"] = frontend.settings.max_audio_bytes + 1
    await fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": attachment["id"]}],
                     resolved={"attachments": {attachment["id"]: attachment}})
    answer = await fake.wait_for("edit_original", lambda c: "too large" in c.content)
    assert "1 MB" in answer.content
    assert not fake.calls_of("download")


async def test_the_message_command_needs_a_link_or_audio(discord_bot):
    fake, _ = discord_bot
    target = fake.message_payload(channel_id=1, content="no song here", author=user_payload(BOB))
    await fake.slash("Mood of this song", command_type=3, target_id=target["id"],
                     resolved={"messages": {target["id"]: target}})
    reply = await fake.wait_for("interaction_callback")
    assert reply.content == NO_SONG_IN_MESSAGE and reply.flags & EPHEMERAL


async def test_a_prompt_is_sent_by_dm(discord_bot):
    fake, frontend = discord_bot
    message_id = await frontend.send_prompt(PromptMessage("discord", str(ALICE), str(ALICE), "p1", "At lunch…"))
    dm = fake.calls_of("create_dm")[-1]
    assert dm.json["recipient_id"] in (ALICE, str(ALICE))
    sent = fake.calls_of("send_message")[-1]
    assert sent.match["channel"] == str(fake.dm_channel_id(ALICE))
    assert sent.content == render.prompt_text("At lunch…")
    assert message_id == sent.result["id"]


async def test_a_dm_without_an_open_prompt_gets_a_readable_answer(discord_bot):
    fake, _ = discord_bot
    await fake.user_dms("Creep")
    reply = await fake.wait_for("send_message")
    assert "prompt" in reply.content.lower()


async def test_a_rate_limited_edit_is_retried_after_discord_says(discord_bot):
    fake, _ = discord_bot
    fake.fail_next("edit_original", times=1, retry_after=0.3)
    await fake.slash("playlist", [{"name": "mood", "type": STRING, "value": "happy"}], guild=GUILD)
    answer = await fake.wait_for("edit_original")
    refused = [c for c in fake.calls_of("edit_original") if c.status == 429]
    assert refused and answer.at - refused[-1].at >= 0.3
    assert "No happy songs" in answer.embeds[0]["description"]


async def test_stop_closes_the_gateway(discord_bot):
    fake, frontend = discord_bot
    await frontend.stop()
    await asyncio.sleep(0.1)
    assert frontend.bot.is_closed()


async def test_an_unexpected_failure_gets_a_polite_private_message(discord_bot):
    fake, _ = discord_bot
    fake.fail_next("edit_original", times=1, status=400)  # Discord refuses the export's edit
    await fake.slash("export")
    deferred = await fake.wait_for("interaction_callback")
    assert deferred.json["type"] == DEFERRED and deferred.flags & EPHEMERAL
    reply = await fake.wait_for("edit_original")
    assert reply.content == render.GENERIC_ERROR
