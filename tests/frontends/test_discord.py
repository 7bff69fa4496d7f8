"""Given a Discord user runs a slash command, the bot answers through Discord's REST API as a user
would see it. Interactions arrive over the (fake) gateway and go through discord.py's own dispatch."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
from datetime import date, datetime, timedelta, timezone

import discord
import pytest

from bot.config import Settings
from bot.frontends import render
from bot.frontends.discord import DiscordFrontend, rendering
from bot.frontends.discord import journal as journal_cog
from bot.frontends.discord.interactions import NOT_DOWNLOADED
from bot.frontends.discord.journal import (
    DM_WELCOME,
    DM_WELCOME_NOT_SENT,
    DM_WELCOME_REFUSED_TO_THE_BOT,
    DMS_CLOSED,
    FORGET_CANCELLED,
    FORGET_TIMED_OUT,
    NOT_YOUR_BUTTON,
    PROMPT_NOT_SENT_BY_DM,
    PROMPT_NOT_SENT_NOW_BY_DM,
    PROMPT_REFUSED_TO_THE_BOT_BY_DM,
    UNKNOWN_COMMAND,
    typed_command_hint,
)
from bot.frontends.discord.mood import first_link, links_in
from bot.replies import STAGE_DOWNLOADING, STAGE_FINDING, STAGE_LISTENING, Caller, PromptMessage
from bot.ratelimit import CommandLimit, HeavyLimits
from bot.usecases.journal import JOURNAL_ON_USAGE, PROMPT_SENT
from bot.usecases.mood import SPOTIFY_OFF_ERROR
from storage.models import JournalEntry, StoredMood, TrackRecord, UserRef
from tests.fakes.discord_api import EPHEMERAL, PRIVILEGED_INTENTS, Call, FakeDiscord, user_payload

GUILD = 777000000000000001
ALICE, BOB = 42, 43

SUB_COMMAND, STRING, INTEGER, ATTACHMENT = 1, 3, 4, 11
DEFERRED, MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, AUTOCOMPLETE = 5, 4, 6, 7, 8


def sub(name: str, **options: str) -> list[dict]:
    return [{"name": name, "type": SUB_COMMAND,
             "options": [{"name": k, "type": STRING, "value": v} for k, v in options.items()]}]


def made_private(call: Call) -> bool:
    """Whether the message Discord made of `call` is ephemeral: asked for (the flag) and made so
    (a followup Discord takes for the edit of a public "thinking" answer stays public)."""
    return bool(call.flags & EPHEMERAL and call.result["flags"] & EPHEMERAL)


async def private_answer(fake, **wait) -> Call:
    """The answer to a command that defers privately at once (before the database), then edits."""
    deferred = await fake.wait_for("interaction_callback", **wait)
    assert deferred.json["type"] == DEFERRED and deferred.flags & EPHEMERAL
    return await fake.wait_for("edit_original", lambda c: c.token == deferred.token, **wait)


async def test_start_registers_every_command_with_descriptions(discord_bot):
    fake, _ = discord_bot
    await fake.wait_for("sync_commands", after=0)
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
    journal = next(c for c in fake.commands if c["name"] == "journal")
    assert {o["name"] for o in journal["options"]} == {"on", "off", "list", "prompt", "delete"}
    admin = next(c for c in fake.commands if c["name"] == "serverplaylist")
    assert int(admin["default_member_permissions"]) == 1 << 5  # manage_guild


GUILD_CONTEXT = 0  # an interaction context type: in a server (1: the bot's DM, 2: another private channel)


async def test_server_commands_are_offered_in_servers_only(discord_bot):
    """Discord offers a command where its contexts say: /playlist and /servermood only answer in a
    server ("Playlists belong to a server…"), so a DM's '/' list does not offer them; the rest
    work anywhere."""
    fake, _ = discord_bot
    await fake.wait_for("sync_commands", after=0)
    contexts = {c["name"]: c.get("contexts") for c in fake.commands}
    for_servers = {"playlist", "servermood", "serverplaylist"}
    assert {name: contexts[name] for name in for_servers} == dict.fromkeys(for_servers, [GUILD_CONTEXT])
    assert all(contexts[name] is None for name in set(contexts) - for_servers)  # Discord's default: anywhere
    mark = fake.mark()
    await fake.user_dms("/playlist calm")  # typed in the DM: it says where the command works
    assert (await fake.wait_for("send_message", after=mark)).content == typed_command_hint("playlist",
                                                                                          in_servers_only=True)


async def test_help_is_ephemeral_and_lists_the_commands(discord_bot):
    fake, _ = discord_bot
    await fake.slash("help")
    reply = await fake.wait_for("interaction_callback")
    assert reply.json["type"] == MESSAGE and reply.flags & EPHEMERAL
    assert "/mood" in reply.content and "/journal" in reply.content


async def test_help_names_the_message_command_too(discord_bot):
    fake, _ = discord_bot
    await fake.slash("help")
    reply = await fake.wait_for("interaction_callback")
    assert "Apps → Mood of this song" in reply.content


def descriptions(command: dict, path: str = "") -> dict[str, str]:
    """Every name in a synced command (its options and sub-commands too) with its description."""
    name = f"{path} {command['name']}".strip()
    found = {name: command.get("description", "")}
    for option in command.get("options", []):
        found |= descriptions(option, name)
    return found


async def test_command_names_and_descriptions_are_within_discord_limits(discord_bot):
    fake, _ = discord_bot
    await fake.wait_for("sync_commands", after=0)
    for command in fake.commands:
        if command["type"] != 1:  # a message command: a name of up to 32 characters, no description
            assert 1 <= len(command["name"]) <= 32 and not command["description"], command
            continue
        for name, description in descriptions(command).items():
            leaf = name.rsplit(" ", 1)[-1]
            assert 1 <= len(leaf) <= 32 and leaf == leaf.lower(), name
            assert 1 <= len(description) <= 100, (name, description)


async def test_the_stats_description_names_what_stats_sends(discord_bot):
    fake, _ = discord_bot
    await fake.wait_for("sync_commands", after=0)
    stats = next(c for c in fake.commands if c["name"] == "stats")["description"]
    assert all(chart in stats for chart in ("week", "year in pixels", "map")), stats
    assert "month" not in stats  # no chart by month since the year in pixels replaced it


async def zone_suggestions(fake, typed: str) -> Call:
    """The autocomplete answer to typing `typed` in /journal on's time-zone option."""
    options = sub("on", time="21:30")
    options[0]["options"].append({"name": "timezone", "type": STRING, "value": typed, "focused": True})
    await fake.slash("journal", options, interaction_type=4)
    return await fake.wait_for("interaction_callback")


async def test_timezone_autocomplete_suggests_iana_names(discord_bot):
    fake, _ = discord_bot
    reply = await zone_suggestions(fake, "Europe/Lis")
    assert reply.json["type"] == AUTOCOMPLETE
    assert [c["value"] for c in reply.json["data"]["choices"]] == ["Europe/Lisbon"]


async def test_journal_on_alone_resumes_the_saved_time_and_zone(discord_bot):
    fake, _ = discord_bot
    journal = next(c for c in fake.commands if c["name"] == "journal")
    on = next(o for o in journal["options"] if o["name"] == "on")
    assert not any(option.get("required") for option in on["options"])  # Discord lets either be left out
    await fake.slash("journal", sub("on"))
    assert (await private_answer(fake)).content == JOURNAL_ON_USAGE  # nothing saved yet
    await fake.slash("journal", sub("on", time="21:30", timezone="Europe/Lisbon"))
    await private_answer(fake)
    await fake.slash("journal", sub("off"))
    await private_answer(fake)
    await fake.slash("journal", sub("on"))
    assert (await private_answer(fake)).content.startswith("Journal on: every day at 21:30 (Europe/Lisbon)")
    await fake.slash("journal", sub("on", time="07:15"))
    assert (await private_answer(fake)).content.startswith("Journal on: every day at 07:15 (Europe/Lisbon)")


async def test_journal_list_pages_start_at_1_in_discord_s_own_form(discord_bot):
    """Discord itself refuses page 0 or -1 as the user types it, as it offers the option."""
    fake, _ = discord_bot
    await fake.wait_for("sync_commands", after=0)
    journal = next(c for c in fake.commands if c["name"] == "journal")
    page, day = next(o for o in journal["options"] if o["name"] == "list")["options"]
    assert (page["name"], page["type"], page["min_value"]) == ("page", INTEGER, 1)
    assert not page.get("required") and "max_value" not in page
    assert (day["name"], day["type"], day.get("required", False)) == ("date", 3, False)  # a day or month, as typed


async def test_journal_delete_takes_a_date_and_a_number_for_a_day_of_several(discord_bot, db):
    """/journal delete date:<YYYY-MM-DD | last> [number:N]: privately, the caller's own entry, named
    as typed (markdown escaped); a day of two asks which; the number option (from 1) picks it."""
    fake, _ = discord_bot
    await fake.wait_for("sync_commands", after=0)
    journal = next(c for c in fake.commands if c["name"] == "journal")
    delete = next(o for o in journal["options"] if o["name"] == "delete")
    options = {o["name"]: o for o in delete["options"]}
    assert (options["date"]["type"], options["date"]["required"]) == (STRING, True)
    assert (options["number"]["type"], options["number"]["min_value"]) == (INTEGER, 1)
    assert not options["number"].get("required") and delete["description"]
    alice, bob = UserRef("discord", str(ALICE)), UserRef("discord", str(BOB))
    for who, prompt_id, title, hour in ((alice, "a1", "__Intro__", 9), (alice, "a2", "Outro", 20), (bob, "b1", "Bob's", 12)):
        await db.journal.add(JournalEntry(
            user=who, local_date=date(2026, 12, 3), prompt_id=prompt_id, phrase="On the way home…",
            reply_text=title, track_key=f"spotify:{prompt_id}", track_title=title, mood="calm", valence=0.0,
            arousal=0.0, created_at=datetime(2026, 12, 3, hour, tzinfo=timezone.utc)))

    await fake.slash("journal", sub("delete", date="2026-12-03"), user=ALICE, guild=GUILD)
    asked = await private_answer(fake)
    assert asked.content.startswith("You have 2 entries dated 2026-12-03, so I deleted none.")
    assert "\n2. On the way home… \\_\\_Intro\\_\\_ (🌿 calm)" in asked.content
    mark = fake.mark()
    await fake.slash("journal", [{"name": "delete", "type": SUB_COMMAND, "options": [
        {"name": "date", "type": STRING, "value": "2026-12-03"}, {"name": "number", "type": INTEGER, "value": 2}]}],
        user=ALICE)
    gone = await private_answer(fake, after=mark)
    assert gone.content == "Deleted from your journal: 2026-12-03 · On the way home… \\_\\_Intro\\_\\_ (🌿 calm)"
    mark = fake.mark()
    await fake.slash("journal", sub("delete", date="last"), user=ALICE)
    assert (await private_answer(fake, after=mark)).content.startswith("Deleted from your journal: 2026-12-03 · "
                                                                       "On the way home… Outro")
    mark = fake.mark()
    await fake.slash("journal", sub("delete", date="last"), user=ALICE)
    assert (await private_answer(fake, after=mark)).content.startswith("You have no journal entries to delete.")
    assert [e.track_title for e in await db.journal.list(bob)] == ["Bob's"]


async def test_journal_on_then_list_are_private(discord_bot):
    fake, _ = discord_bot
    await fake.slash("journal", sub("on", time="21:30", timezone="Europe/Lisbon"))
    assert "21:30" in (await private_answer(fake)).content
    await fake.slash("journal", sub("list"))
    assert (await private_answer(fake)).content == render.empty_journal_text("21:30 (Europe/Lisbon)")


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
    await private_answer(fake)
    await fake.slash("forget", user=ALICE)
    question = await fake.wait_for("interaction_callback")
    assert question.flags & EPHEMERAL
    buttons = [b["custom_id"] for row in question.json["data"]["components"] for b in row["components"]]
    assert buttons == ["forget:yes", "forget:no"]
    message_id = question.result["interaction"]["response_message_id"]
    await fake.click(message_id, "forget:yes", user=BOB)
    assert (await fake.wait_for("interaction_callback")).content == NOT_YOUR_BUTTON
    await fake.click(message_id, "forget:yes", user=ALICE)
    deferred = await fake.wait_for("interaction_callback")
    assert deferred.json["type"] == DEFERRED_UPDATE  # acknowledged before the database deletes
    done = await fake.wait_for("edit_original", lambda c: c.token == deferred.token)
    assert done.content.startswith("Done: I deleted everything") and done.json["components"] == []

    await fake.slash("forget", user=ALICE)
    question = await fake.wait_for("interaction_callback")
    await fake.click(question.result["interaction"]["response_message_id"], "forget:no", user=ALICE)
    cancelled = await fake.wait_for("interaction_callback")
    assert cancelled.json["type"] == UPDATE_MESSAGE and cancelled.content == FORGET_CANCELLED


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
    assert "admin" in (await private_answer(fake)).content
    fake.admins.add(ALICE)
    await fake.slash("serverplaylist", state, guild=GUILD, user=ALICE)
    assert (await private_answer(fake)).content.startswith("Server playlists are off")


async def test_servermood_in_a_server_whose_playlists_are_off_is_refused_to_the_asker_alone(discord_bot):
    fake, _ = discord_bot
    fake.admins.add(ALICE)
    await fake.slash("serverplaylist", [{"name": "state", "type": STRING, "value": "off"}], guild=GUILD, user=ALICE)
    await private_answer(fake)
    await fake.slash("servermood", guild=GUILD, user=BOB)
    refusal = await fake.wait_for("followup")
    assert "turned off" in refusal.content and made_private(refusal)
    assert not [c for c in fake.calls_of("edit_original") if "turned off" in c.content]


async def test_an_attachment_over_the_limit_is_refused_before_downloading(discord_bot, caplog):
    fake, frontend = discord_bot
    limit = frontend.settings.max_audio_bytes
    attachment = fake.add_file("huge.ogg", b"\0" * 16)
    attachment["size"] = limit + 1
    await fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": attachment["id"]}],
                     resolved={"attachments": {attachment["id"]: attachment}})
    answer = await fake.wait_for("edit_original", lambda c: "too large" in c.content)
    assert "1 MB" in answer.content
    assert not fake.calls_of("download")
    # Logged as a refused /mood is: whose, and why, without the file's name (the sender's words).
    (refusal,) = [r for r in caplog.records if r.getMessage() == "discord.file_refused"]
    assert (refusal.user, refusal.place, refusal.bytes, refusal.limit_bytes) == (str(ALICE), None, limit + 1, limit)
    assert not [r for r in caplog.records if r.name.startswith("bot.") and "huge.ogg" in str(vars(r))]


async def test_a_prompt_is_sent_by_dm(discord_bot):
    fake, frontend = discord_bot
    message_id = await frontend.send_prompt(PromptMessage("discord", str(ALICE), str(ALICE), "p1", "At lunch…"))
    dm = fake.calls_of("create_dm")[-1]
    assert dm.json["recipient_id"] in (ALICE, str(ALICE))
    sent = fake.calls_of("send_message")[-1]
    assert sent.match["channel"] == str(fake.dm_channel_id(ALICE))
    assert sent.content == rendering.prompt_text("At lunch…")
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


async def test_an_unexpected_failure_gets_a_polite_private_message(discord_bot, caplog):
    fake, _ = discord_bot
    fake.fail_next("edit_original", times=1, status=400)  # Discord refuses the export's edit
    await fake.slash("export", guild=GUILD)
    deferred = await fake.wait_for("interaction_callback")
    assert deferred.json["type"] == DEFERRED and deferred.flags & EPHEMERAL
    reply = await fake.wait_for("edit_original")
    assert reply.content == render.GENERIC_ERROR
    # Whose failure it was, for the operator a user tells of it (the log line hashes the user).
    assert [(r.user, r.place) for r in failures_logged(caplog)] == [(str(ALICE), f"discord:{GUILD}")]


def failures_logged(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name.startswith("bot.frontends.discord") and r.getMessage() == "discord command failed"]


async def message_command(fake, content: str, attachments: list[dict] | None = None, *,
                          guild: int | None = None) -> None:
    target = fake.message_payload(channel_id=1, content=content, author=user_payload(BOB),
                                  attachments=attachments or [])
    await fake.slash("Mood of this song", command_type=3, target_id=target["id"],
                     resolved={"messages": {target["id"]: target}}, guild=guild)


async def dm_answer(fake) -> Call:
    """The bot's answer to a DM: its message, or its status message ("Listening…") edited into it."""
    first = await fake.wait_for("send_message")
    if first.content not in (STAGE_FINDING, STAGE_DOWNLOADING, STAGE_LISTENING):
        return first
    return await fake.wait_for("edit_message", lambda c: c.content not in (STAGE_DOWNLOADING, STAGE_LISTENING))


async def test_no_reply_can_ping_anyone_even_when_it_echoes_a_mention(discord_bot):
    fake, frontend = discord_bot
    mark = fake.mark()
    # The refusal quotes the time zone as typed: "<@43> @everyone" must not ping.
    await fake.slash("journal", sub("on", time="21:30", timezone="<@43> @everyone"), guild=GUILD)
    await private_answer(fake)
    await fake.slash("help", guild=GUILD)
    await fake.wait_for("interaction_callback")
    await fake.user_dms("<@43> @everyone")
    await fake.wait_for("send_message")
    await frontend.send_prompt(PromptMessage("discord", str(ALICE), str(ALICE), "p1", "At lunch…"))
    said = [c for c in fake.calls[mark:] if c.content or c.embeds]
    assert {c.name for c in said} == {"interaction_callback", "edit_original", "send_message"}
    for call in said:
        payload = call.json["data"] if call.name == "interaction_callback" else call.json
        assert payload["allowed_mentions"] == {"parse": []}, call.name


@pytest.mark.parametrize("command,options", [
    ("journal", sub("on", time="21:30", timezone="Europe/Lisbon")),
    ("journal", sub("off")),
    ("journal", sub("list")),
    ("journal", sub("prompt")),
    ("share", [{"name": "choice", "type": STRING, "value": "off"}]),
    ("serverplaylist", [{"name": "state", "type": STRING, "value": "off"}]),
])
async def test_commands_using_the_database_acknowledge_privately_before_it_answers(discord_bot, command, options):
    fake, _ = discord_bot
    fake.admins.add(ALICE)
    await fake.slash(command, options, guild=GUILD, user=ALICE)
    assert (await private_answer(fake)).content  # deferred first (Discord's 3 s), then the answer


async def test_journal_on_in_a_server_checks_that_a_dm_reaches_the_user(discord_bot):
    fake, _ = discord_bot
    await fake.slash("journal", sub("on", time="21:30", timezone="Europe/Lisbon"), guild=GUILD)
    answer = await private_answer(fake)
    welcome = fake.calls_of("send_message")[-1]
    assert welcome.match["channel"] == str(fake.dm_channel_id(ALICE)) and welcome.content == DM_WELCOME
    assert "21:30" in answer.content and DMS_CLOSED not in answer.content

    # Alice closed her DMs to the server's members: Discord's 403 says so with its code 50007.
    fake.fail_next("send_message", times=1, status=403, code=50007, message="Cannot send messages to this user")
    await fake.slash("journal", sub("on", time="07:00", timezone="Europe/Lisbon"), guild=GUILD)
    answer = await private_answer(fake)
    assert "07:00" in answer.content and answer.content.endswith(DMS_CLOSED)


# Discord's answers to a DM, and whether they refuse the user (Discord's JSON error codes): only
# 50007 (DMs closed, the bot blocked, no server shared) and 10013 (the account is gone) are the
# user's doing. A 403 for the bot's own access (50001), its unverified account (40002) or with no
# code at all (a proxy's or Cloudflare's page) says nothing of the user's Privacy Settings.
DM_ANSWERS = [
    (403, 50007, "Cannot send messages to this user", True),
    (404, 10013, "Unknown User", True),
    (403, 50001, "Missing Access", False),
    (403, 40002, "You need to verify your account in order to perform this action", False),
    (403, 0, "Forbidden", False),
]


@pytest.mark.parametrize("status, code, message, refused", DM_ANSWERS)
async def test_journal_on_and_journal_prompt_judge_a_refused_dm_alike(scheduled, db, status, code, message,
                                                                      refused):
    """/journal on's welcome DM and /journal prompt's DM meet the same answer from Discord: both
    give the Privacy Settings advice for a refusal of the user, and neither for another 403, which
    no switch of the user's would change. Nor is such a 403 an outage "for a moment" to ask again
    after in a few minutes: Discord refused the DM to the bot, and says so until the bot's access
    or account changes; the journal is on, and its prompts will try the DM."""
    fake, _ = scheduled
    fake.fail_next("send_message", times=1, status=status, code=code, message=message)
    await fake.slash("journal", sub("on", time="21:30", timezone="Europe/Lisbon"), guild=GUILD)
    welcome = await private_answer(fake)
    assert welcome.content.startswith("Journal on: every day at 21:30 (Europe/Lisbon)"), welcome.content
    assert welcome.content.endswith(DMS_CLOSED if refused else DM_WELCOME_REFUSED_TO_THE_BOT), welcome.content

    fake.fail_next("send_message", times=1, status=status, code=code, message=message)
    await fake.slash("journal", sub("prompt"), guild=GUILD)
    prompt = await private_answer(fake)
    assert prompt.content == (PROMPT_NOT_SENT_BY_DM if refused else PROMPT_REFUSED_TO_THE_BOT_BY_DM)
    assert ("Privacy Settings" in welcome.content) == ("Privacy Settings" in prompt.content) == refused
    assert "for a moment" not in welcome.content and "for a moment" not in prompt.content
    assert (await db.users.get(UserRef("discord", str(ALICE)))).journal_enabled


@pytest.mark.parametrize("failure", ["cut off", "outage"])
async def test_journal_on_whose_welcome_dm_fails_for_another_reason_says_the_journal_is_on(discord_bot, db, caplog,
                                                                                           failure):
    """The welcome DM checks that DMs are open: a connection cut on the way or Discord's outage says
    nothing of that, and the journal is on all the same: neither "something went wrong" nor "allow
    direct messages", but the journal's answer (logged), and that the prompts still come by DM (the
    welcome, which says so, did not arrive)."""
    fake, _ = discord_bot
    if failure == "cut off":
        fake.drop_next("send_message")
    else:
        fake.fail_next("send_message", times=1, status=503, code=0, message="Service Unavailable")
    await fake.slash("journal", sub("on", time="21:30", timezone="Europe/Lisbon"), guild=GUILD)
    answer = await private_answer(fake)
    assert answer.content.startswith("Journal on: every day at 21:30 (Europe/Lisbon)"), answer.content
    assert DMS_CLOSED not in answer.content and answer.content.endswith(DM_WELCOME_NOT_SENT)
    assert (await db.users.get(UserRef("discord", str(ALICE)))).journal_enabled
    assert [r for r in caplog.records if r.getMessage() == "discord.dm_welcome_not_sent"]


async def test_journal_prompt_sends_today_s_prompt_by_dm_now(scheduled):
    fake, _ = scheduled
    await fake.slash("journal", sub("prompt"), guild=GUILD)
    off = await private_answer(fake)
    assert "/journal on" in off.content and not fake.calls_of("send_message")
    await fake.slash("journal", sub("on", time="21:30", timezone="Europe/Lisbon"), guild=GUILD)
    await private_answer(fake)
    await fake.slash("journal", sub("prompt"), guild=GUILD)
    answer = await private_answer(fake)
    assert answer.content == PROMPT_SENT
    dm = fake.calls_of("send_message")[-1]
    assert dm.match["channel"] == str(fake.dm_channel_id(ALICE)) and dm.content.endswith(rendering.PROMPT_HINT)
    assert dm.at <= answer.at


async def test_journal_prompt_to_closed_dms_says_how_to_open_them_on_discord(scheduled, db):
    """Discord's words, not Telegram's ("Open a private chat with me"): a Discord user allows
    direct messages from a server's members in its privacy settings."""
    fake, _ = scheduled
    await fake.slash("journal", sub("on", time="21:30", timezone="Europe/Lisbon"), guild=GUILD)
    await private_answer(fake)
    fake.fail_next("send_message", times=1, status=403, code=50007, message="Cannot send messages to this user")
    await fake.slash("journal", sub("prompt"), guild=GUILD)
    answer = await private_answer(fake)
    assert answer.content == PROMPT_NOT_SENT_BY_DM
    assert (await db.users.get(UserRef("discord", str(ALICE)))).journal_enabled  # asked again, it comes


@pytest.mark.parametrize("failure", ["DM outage", "DM channel outage", "DM channel cut off"])
async def test_journal_prompt_whose_dm_fails_for_a_passing_reason_says_to_ask_again_shortly(scheduled, db, failure):
    """Discord's 5xx (503: discord.py does not retry it) or a connection cut before the DM channel
    opened says nothing of the user's settings: they are told to ask again in a few minutes, not to
    allow direct messages (Privacy Settings), which are open already."""
    fake, _ = scheduled
    await fake.slash("journal", sub("on", time="21:30", timezone="Europe/Lisbon"))  # in the DM: no welcome DM
    await private_answer(fake)
    if failure == "DM outage":
        fake.fail_next("send_message", times=1, status=503, code=0, message="Service Unavailable")
    elif failure == "DM channel outage":
        fake.fail_next("create_dm", times=1, status=503, code=0, message="Service Unavailable")
    else:
        fake.drop_next("create_dm")
    mark = fake.mark()
    await fake.slash("journal", sub("prompt"), guild=GUILD)
    answer = await private_answer(fake)
    assert answer.content == PROMPT_NOT_SENT_NOW_BY_DM
    assert "Privacy Settings" not in answer.content
    assert fake.calls_of("create_dm", after=mark)  # the DM was tried, and failed as set up
    await fake.slash("journal", sub("prompt"), guild=GUILD)  # asked again, it comes
    assert (await private_answer(fake)).content == PROMPT_SENT


async def test_a_dm_that_fails_unexpectedly_gets_a_polite_answer_and_is_logged(discord_bot, caplog):
    fake, _ = discord_bot
    fake.fail_next("send_message", times=1, status=400)  # Discord refuses the answer itself
    await fake.user_dms("Creep")
    assert (await fake.wait_for("send_message")).content == render.GENERIC_ERROR
    assert [(r.user, r.place) for r in failures_logged(caplog)] == [(str(ALICE), None)]


# How Discord's file server may fail an attachment's download: the file deleted since it was sent,
# its link refused, an outage, the connection lost on the way.
CDN_FAILURES = {
    "deleted": (lambda fake: fake.fail_next("download", 1, status=404, message="Not Found"), "404 asset not found"),
    "refused": (lambda fake: fake.fail_next("download", 1, status=403, message="Forbidden"), "403 cannot retrieve asset"),
    "outage": (lambda fake: fake.fail_next("download", 1, status=503, message="Service Unavailable"),
               "503 failed to get asset"),
    # aiohttp sends a GET cut off on a reused connection once more, on a new one
    "cut off": (lambda fake: fake.drop_next("download", times=2), "ServerDisconnectedError"),
}


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """The temporary folder the bot's downloads go to, to be found empty afterwards."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def download_failure_logged(caplog, reason: str) -> logging.LogRecord:
    """The one line a failed download is logged as: a warning with whose and why, no traceback,
    no file name (the sender's words), and no 'command failed'."""
    (failure,) = [r for r in caplog.records if r.getMessage() == "discord.file_not_downloaded"]
    assert failure.levelno == logging.WARNING and failure.exc_info is None and failure.reason == reason
    assert not failures_logged(caplog)
    assert not [r for r in caplog.records if r.name.startswith("bot.") and "take1" in str(vars(r))]
    return failure


@pytest.mark.parametrize("failure", CDN_FAILURES)
async def test_a_mood_attachment_discord_does_not_hand_over_is_asked_for_again(discord_bot, caplog, temp_dir,
                                                                              failure):
    fake, _ = discord_bot
    fail, reason = CDN_FAILURES[failure]
    fail(fake)
    attachment = fake.add_file("take1.ogg", b"OggS" + b"\0" * 64)
    await fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": attachment["id"]}],
                     resolved={"attachments": {attachment["id"]: attachment}})
    answer = await fake.wait_for("edit_original", lambda c: not c.content.endswith("…"))
    assert answer.content == NOT_DOWNLOADED
    assert {c.status for c in fake.calls_of("download")} == {0 if failure == "cut off" else int(reason[:3])}
    failure_line = download_failure_logged(caplog, reason)
    assert (failure_line.user, failure_line.place) == (str(ALICE), None)
    assert not list(temp_dir.glob("moodbot-dc-*"))


async def test_the_message_command_on_a_file_deleted_meanwhile_asks_for_it_again(discord_bot, caplog, temp_dir):
    fake, _ = discord_bot
    take = fake.add_file("take1.ogg", b"OggS" + b"\0" * 64)
    fake.files.clear()  # the message's file was deleted: the file server no longer has it
    await message_command(fake, "my cover", attachments=[take], guild=GUILD)
    refusal = await fake.wait_for("followup")  # a refusal in a server: told to the asker alone
    assert refusal.content == NOT_DOWNLOADED and made_private(refusal)
    failure_line = download_failure_logged(caplog, "404 asset not found")
    assert (failure_line.user, failure_line.place) == (str(ALICE), f"discord:{GUILD}")
    assert not list(temp_dir.glob("moodbot-dc-*"))


async def test_a_dm_answer_whose_file_discord_does_not_hand_over_is_asked_for_again(scheduled, db, caplog, temp_dir):
    fake, _ = scheduled
    await open_a_prompt(fake)
    fake.fail_next("download", 1, status=503, message="Service Unavailable")
    await fake.user_dms("", attachments=[fake.add_file("take1.ogg", b"OggS" + b"\0" * 64)])
    assert (await dm_answer(fake)).content == NOT_DOWNLOADED
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 0
    assert download_failure_logged(caplog, "503 failed to get asset").user == str(ALICE)
    assert not list(temp_dir.glob("moodbot-dc-*"))


async def test_a_forget_button_that_fails_gets_a_polite_answer_and_is_logged(discord_bot, caplog):
    fake, _ = discord_bot
    await fake.slash("forget", user=ALICE)
    question = await fake.wait_for("interaction_callback")
    fake.fail_next("edit_original", times=1, status=400)  # Discord refuses the "Done" edit
    await fake.click(question.result["interaction"]["response_message_id"], "forget:yes", user=ALICE)
    failed = await fake.wait_for("edit_original", lambda c: c.content == render.GENERIC_ERROR)
    assert failed.json["components"] == []

    await fake.slash("forget", user=ALICE)
    question = await fake.wait_for("interaction_callback")
    fake.fail_next("interaction_callback", times=1, status=400)  # ... or the button's acknowledgement
    await fake.click(question.result["interaction"]["response_message_id"], "forget:yes", user=ALICE)
    failed = await fake.wait_for("interaction_callback")
    assert failed.json["type"] == UPDATE_MESSAGE and failed.content == render.GENERIC_ERROR
    assert failed.json["data"]["components"] == []
    assert [(r.user, r.place) for r in failures_logged(caplog)] == [(str(ALICE), None)] * 2


async def test_unanswered_forget_buttons_go_away_saying_nothing_was_deleted(discord_bot, monkeypatch):
    fake, _ = discord_bot
    monkeypatch.setattr(journal_cog, "CONFIRM_TIMEOUT_S", 0.2)
    await fake.slash("forget", user=ALICE)
    question = await fake.wait_for("interaction_callback")
    expired = await fake.wait_for("edit_original", lambda c: c.token == question.token)
    assert expired.content == FORGET_TIMED_OUT and expired.json["components"] == []


@pytest.mark.parametrize("content", [
    "listen to this: https://open.spotify.com/track/{id}!",
    "https://open.spotify.com/track/{id}, so good",
    "||https://open.spotify.com/track/{id}||",
    "[song](https://open.spotify.com/track/{id})",
    "https://tenor.com/view/dance-gif-123 and https://open.spotify.com/track/{id}",
])
async def test_the_message_command_reads_the_first_link_it_can(discord_bot, content):
    fake, _ = discord_bot
    await message_command(fake, content.format(id="4uLU6hMCjMI75M1A2tKUQC"))
    answer = await fake.wait_for("edit_original", lambda c: not c.content.endswith("…"))
    assert answer.content == SPOTIFY_OFF_ERROR  # the Spotify link was read (this bot has no Spotify)


async def test_links_in_a_message_lose_the_punctuation_and_spoiler_bars_around_them(discord_bot):
    fake, frontend = discord_bot
    track = "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC"
    text = f"see https://tenor.com/view/x-123, ||{track}||! or ({track}?) [it]({track}); <{track}>: {track}."
    channel = await frontend.bot.create_dm(discord.Object(id=BOB))
    message = discord.Message(state=frontend.bot._connection, channel=channel,
                              data=fake.message_payload(channel_id=channel.id, content=text, author=user_payload(BOB)))
    assert links_in(message) == ["https://tenor.com/view/x-123"] + [track] * 5
    assert first_link(message) == track


async def test_a_refused_mood_in_a_server_is_told_to_the_asker_alone(discord_bot):
    """In a channel, a refusal is nobody else's business, and a spammer past the rate limit must not
    fill the channel with them: the public "thinking" answer gives way to an ephemeral one."""
    fake, _ = discord_bot
    await fake.slash("mood", [{"name": "query", "type": STRING, "value": "https://soundcloud.com/x/y"}], guild=GUILD)
    refusal = await fake.wait_for("followup")
    assert "soundcloud.com" in refusal.content and made_private(refusal)
    await fake.wait_for("delete_original")  # the public "thinking" answer goes
    assert not [c for c in fake.calls_of("edit_original") if "soundcloud.com" in c.content]
    # Outside a server the answer is private anyway, and stays in place.
    await fake.slash("mood", [{"name": "query", "type": STRING, "value": "https://soundcloud.com/x/z"}])
    answer = await fake.wait_for("edit_original", lambda c: "soundcloud.com" in c.content)
    assert answer.content and len(fake.calls_of("delete_original")) == 1


@pytest.mark.parametrize("command,options", [
    ("playlist", [{"name": "mood", "type": STRING, "value": "calm"}]),
    ("servermood", None),
])
async def test_a_refused_playlist_or_server_mood_is_told_to_the_asker_alone(discord_bot, usecases, command, options):
    """Past the rate limit a spammer's every /playlist or /servermood is refused: the refusals must
    not fill the channel in place of the answers the limit holds back."""
    fake, _ = discord_bot
    usecases.playlists.limits = HeavyLimits(server=CommandLimit(per_user=1, per_place=20))
    await fake.slash(command, options, guild=GUILD)
    await fake.wait_for("edit_original")
    await fake.slash(command, options, guild=GUILD)
    refusal = await fake.wait_for("followup")
    assert "try again in" in refusal.content and made_private(refusal)
    await fake.wait_for("delete_original")  # the public "thinking" answer goes
    assert not [c for c in fake.calls_of("edit_original") if "try again in" in c.content]


async def test_the_message_command_takes_the_audio_file_when_no_link_is_readable(discord_bot):
    fake, _ = discord_bot
    await message_command(fake, "my cover, original at https://soundcloud.com/x/y")
    refused = await fake.wait_for("edit_original", lambda c: not c.content.endswith("…"))
    assert "soundcloud.com" in refused.content  # an unreadable link alone: the answer says why
    take = fake.add_file("take1.ogg", b"OggS" + b"\0" * 64)
    await message_command(fake, "my cover, original at https://soundcloud.com/x/y", attachments=[take])
    await fake.wait_for("download")
    answer = await fake.wait_for("edit_original", lambda c: not c.content.endswith("…"))
    assert "soundcloud.com" not in answer.content


async def test_song_titles_and_notes_show_as_typed_not_as_markdown(discord_bot, db):
    fake, _ = discord_bot
    now = datetime.now(timezone.utc)
    await db.tracks.save(TrackRecord(
        key="youtube:dQw4w9WgXcQ", title="__Intro__ (feat. *NSYNC*)", artists=["~~Crossed~~"],
        youtube_id="dQw4w9WgXcQ", classified_at=now,
        mood=StoredMood("calm", {"happy": 0.1, "energetic": 0.1, "sad": 0.1, "calm": 0.7}, 0.2, -0.4, "main", "v")))
    escaped = r"\~\~Crossed\~\~ – \_\_Intro\_\_ (feat. \*NSYNC\*)"
    await fake.slash("mood", [{"name": "query", "type": STRING, "value": "https://youtu.be/dQw4w9WgXcQ"}],
                     guild=GUILD)
    answer = await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    assert answer.embeds[0]["title"] == escaped
    await db.requests.settled()
    await fake.slash("playlist", [{"name": "mood", "type": STRING, "value": "calm"}], guild=GUILD)
    playlist = await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    assert f"1. {escaped}" in playlist.embeds[0]["description"]

    await db.journal.add(JournalEntry(
        user=UserRef("discord", str(ALICE)), local_date=date(2026, 11, 1), prompt_id="p1", phrase="At lunch…",
        reply_text="x", track_key="youtube:dQw4w9WgXcQ", track_title="__Intro__ (feat. *NSYNC*)", mood="calm",
        valence=0.2, arousal=-0.4, created_at=now, note="so *good*"))
    await fake.slash("journal", sub("list"))
    listed = (await private_answer(fake)).content
    assert r"\_\_Intro\_\_ (feat. \*NSYNC\*)" in listed and r"so \*good\*" in listed


async def add_ten_days(db, *, title, note) -> None:
    """Alice's journal entries of 2026-11-01 to 2026-11-10, titles and notes made from the day."""
    for day in range(10):
        await db.journal.add(JournalEntry(
            user=UserRef("discord", str(ALICE)), local_date=date(2026, 11, 1) + timedelta(days=day),
            prompt_id=f"p{day}", phrase="The moment I laughed the hardest today sounded like…", reply_text="x",
            track_key=f"k{day}", track_title=title(day), mood="happy", valence=0.5, arousal=0.5,
            created_at=datetime.now(timezone.utc), note=note(day)))


async def test_a_long_journal_list_fits_one_message_without_cutting_an_entry(discord_bot, db):
    fake, _ = discord_bot
    await add_ten_days(db, title=lambda day: f"Artist {day} – Song number {day}",
                       note=lambda day: f"entry {day}: " + "we drove to the coast and sang all the way there " * 5
                       + "THE END")
    await fake.slash("journal", sub("list"))
    header, *lines = (await private_answer(fake)).content.split("\n")
    assert header == "Your journal (10 of 10):"
    assert [line[:10] for line in lines] == [(date(2026, 11, 10) - timedelta(days=d)).isoformat() for d in range(10)]
    assert all(line.endswith("…") and "THE END" not in line for line in lines)  # each note shortened


async def test_a_journal_list_too_long_even_so_shows_the_latest_entries_whole(discord_bot, db):
    fake, _ = discord_bot
    await add_ten_days(db, title=lambda day: f"Artist {day} – " + "A very long title " * 6 + f"#{day}",
                       note=lambda day: "ok " * 100)
    await fake.slash("journal", sub("list"))
    listed = (await private_answer(fake)).content
    header, *lines = listed.split("\n")
    assert len(listed) <= 2000 and len(lines) < 10
    assert header == f"Your journal, entries 1–{len(lines)} of 10 (newest first):"  # the rest a button away
    assert [line[:10] for line in lines] == [(date(2026, 11, 10) - timedelta(days=d)).isoformat()
                                             for d in range(len(lines))]
    assert all(f"#{9 - n} (" in line for n, line in enumerate(lines))  # no entry cut short


async def open_a_prompt(fake, user: int = ALICE) -> None:
    """Opt in, and have today's prompt sent now: the DM's next message answers it."""
    await fake.slash("journal", sub("on", time="21:30", timezone="Europe/Lisbon"), user=user)
    await private_answer(fake)
    await fake.slash("journal", sub("prompt"), user=user)
    await private_answer(fake)


async def test_a_dm_naming_a_song_with_a_screenshot_attached_is_answered_with_the_song(scheduled):
    fake, _ = scheduled
    await open_a_prompt(fake)
    screenshot = fake.add_file("Screenshot 2026-11-01.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    screenshot["content_type"] = "image/png"
    await fake.user_dms("https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC so good", attachments=[screenshot])
    assert (await dm_answer(fake)).content == SPOTIFY_OFF_ERROR  # the link was read (this bot has no Spotify)
    assert not fake.calls_of("download")  # and the picture was never fetched as if it were audio



@pytest.mark.parametrize("prompt_open", [False, True])
async def test_a_mistyped_command_in_the_dm_gets_a_hint_not_taken_for_a_song(scheduled, db, prompt_open):
    """Discord sends a '/command' that names no command of the bot as a plain message."""
    fake, _ = scheduled
    if prompt_open:
        await open_a_prompt(fake)
    mark = fake.mark()
    await fake.user_dms("/dance Creep")  # near none of the commands (/mod: "Did you mean /mood?")
    assert (await fake.wait_for("send_message")).content == UNKNOWN_COMMAND
    await asyncio.sleep(0.2)
    assert len(fake.calls_of("send_message", after=mark)) == 1  # no "Finding the song…" after it
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 0


async def test_timezone_autocomplete_shows_an_offset_as_typed_not_as_its_inverted_iana_name(discord_bot):
    fake, _ = discord_bot
    reply = await zone_suggestions(fake, "UTC+2")
    assert reply.json["data"]["choices"] == [{"name": "UTC+02:00", "value": "Etc/GMT-2"}]


async def test_timezone_autocomplete_offers_the_places_at_an_offset_with_minutes(discord_bot):
    fake, _ = discord_bot
    reply = await zone_suggestions(fake, "+05:30")  # no Etc zone: Sri Lanka's and India's, all year
    assert reply.json["data"]["choices"] == [{"name": "Asia/Colombo", "value": "Asia/Colombo"},
                                             {"name": "Asia/Kolkata", "value": "Asia/Kolkata"}]


@pytest.mark.parametrize("typed, zone", [("São Paulo", "America/Sao_Paulo"), ("Zürich", "Europe/Zurich"),
                                         ("Bogotá", "America/Bogota"), ("curaçao", "America/Curacao")])
async def test_timezone_autocomplete_finds_a_city_typed_with_its_accents(discord_bot, typed, zone):
    """IANA names are ASCII: a city typed as its people write it is found all the same."""
    fake, _ = discord_bot
    reply = await zone_suggestions(fake, typed)
    assert [c["value"] for c in reply.json["data"]["choices"]] == [zone]


async def test_a_zone_typed_with_accents_without_picking_it_is_taken(discord_bot):
    fake, _ = discord_bot
    await fake.slash("journal", sub("on", time="08:15", timezone="América/São_Paulo"))
    assert (await private_answer(fake)).content.startswith("Journal on: every day at 08:15 (America/Sao_Paulo)")


async def test_it_needs_no_privileged_intent_to_read_dm_answers(discord_bot):
    fake, _ = discord_bot  # connected to an application with every privileged intent off
    assert fake.privileged_intents == 0 and not int(fake.identify["intents"]) & PRIVILEGED_INTENTS
    await fake.user_dms("Creep")  # Discord gives a bot the text of DMs to it without the intent
    assert "prompt" in (await fake.wait_for("send_message")).content.lower()


@pytest.mark.parametrize("filename,content_type", [("clip.mp4", "video/mp4"), ("take 2.m4a", "application/octet-stream")])
async def test_a_dm_with_a_video_or_audio_file_and_a_few_words_hears_the_file(scheduled, filename, content_type):
    fake, _ = scheduled
    await open_a_prompt(fake)
    clip = fake.add_file(filename, b"\0" * 64)
    clip["content_type"] = content_type
    await fake.user_dms("my favourite this week", attachments=[clip])
    await dm_answer(fake)
    assert fake.calls_of("download")  # the file is the song; the words are the note


SPOTIFY_TRACK = "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC"


async def test_the_message_command_reads_a_forwarded_song(discord_bot):
    fake, _ = discord_bot
    original = fake.message_payload(channel_id=GUILD + 5, content=f"this one {SPOTIFY_TRACK}", author=user_payload(BOB))
    forward = fake.forward_payload(original, channel_id=GUILD + 1, author=user_payload(BOB))
    await fake.slash("Mood of this song", command_type=3, target_id=forward["id"],
                     resolved={"messages": {forward["id"]: forward}}, guild=GUILD)
    answer = await fake.wait_for("followup")  # a refusal in a server: told to the asker alone
    assert answer.content == SPOTIFY_OFF_ERROR  # the forwarded Spotify link was read


async def test_a_song_forwarded_into_the_dm_answers_the_prompt(scheduled):
    fake, _ = scheduled
    await open_a_prompt(fake)
    original = fake.message_payload(channel_id=GUILD + 5, content=SPOTIFY_TRACK, author=user_payload(BOB))
    await fake.user_dms("", forward_of=original)
    assert (await dm_answer(fake)).content == SPOTIFY_OFF_ERROR


async def test_pinning_the_prompt_in_the_dm_is_not_taken_for_an_answer(scheduled):
    """A pin in a DM makes Discord post a system message there ("Alice pinned a message…"): a
    MESSAGE_CREATE of type 6, from the user, with no content. It answers no prompt and gets no reply;
    the song sent next does."""
    fake, _ = scheduled
    await open_a_prompt(fake)
    prompt = fake.calls_of("send_message")[-1]
    mark = fake.mark()
    pinned = fake.message_payload(channel_id=fake.dm_channel_id(ALICE), content="", author=user_payload(ALICE))
    pinned.update(type=6, message_reference={"message_id": prompt.result["id"],
                                             "channel_id": str(fake.dm_channel_id(ALICE))})
    await fake.dispatch("MESSAGE_CREATE", pinned)
    await fake.user_dms(SPOTIFY_TRACK)
    assert (await dm_answer(fake)).content == SPOTIFY_OFF_ERROR
    said = [c.content for c in fake.calls[mark:] if c.name in ("send_message", "edit_message")]
    assert [text for text in said if text != STAGE_FINDING] == [SPOTIFY_OFF_ERROR], said


@pytest.mark.parametrize("refusal", [{"status": 503}, {"status": 429, "retry_after": 60}])
async def test_a_refused_command_sync_neither_stops_nor_delays_the_start(usecases, caplog, refusal):
    fake = await FakeDiscord().start()
    fake.fail_next("sync_commands", times=1, **refusal)  # Discord is down, or says: not for a minute
    settings = Settings(_env_file=None, discord_token="discord-test-token", discord_api_url=fake.api_url,
                        discord_gateway_url=fake.gateway_url)
    frontend = DiscordFrontend(settings, usecases, guild_ready_timeout=0.05)
    try:
        await asyncio.wait_for(frontend.start(), timeout=10)
        await fake.slash("help")  # the commands Discord kept from the last start still answer
        assert "/mood" in (await fake.wait_for("interaction_callback")).content
    finally:
        await frontend.stop()
        await fake.stop()
    if refusal["status"] == 503:
        assert any(r.getMessage() == "discord.commands_not_synced" for r in caplog.records)


async def test_a_command_sync_cut_off_by_the_network_is_logged(usecases, caplog):
    """A sync whose connection is lost on the way (no answer at all, not a refusal) is said in the
    log as a refused one is: the operator sees why new commands are missing."""
    fake = await FakeDiscord().start()
    fake.drop_next("sync_commands", times=2)  # aiohttp sends it again once on a fresh connection
    settings = Settings(_env_file=None, discord_token="discord-test-token", discord_api_url=fake.api_url,
                        discord_gateway_url=fake.gateway_url)
    frontend = DiscordFrontend(settings, usecases, guild_ready_timeout=0.05)
    try:
        await asyncio.wait_for(frontend.start(), timeout=10)
        await asyncio.wait({frontend.bot.command_sync}, timeout=10)
        assert {c.status for c in fake.calls_of("sync_commands")} == {0}
    finally:
        await frontend.stop()
        await fake.stop()
    assert [r.levelno for r in caplog.records if r.getMessage() == "discord.commands_not_synced"] == [logging.ERROR]


@pytest.mark.parametrize("status,code,message", [(403, 50007, "Cannot send messages to this user"),
                                                 (404, 10013, "Unknown User")])
async def test_a_user_whose_dms_are_closed_gets_no_more_daily_prompts(scheduled, db, usecases, caplog,
                                                                      status, code, message):
    """Discord answers 50007 to every DM for a user who closed their DMs or blocked the bot (10013:
    the account is gone): trying again every day only fills the log with tracebacks; the journal is
    turned off (entries kept) until they turn it on again."""
    fake, _ = scheduled
    await fake.slash("journal", sub("on", time="21:30", timezone="Europe/Lisbon"))
    await private_answer(fake)
    scheduler, ref = usecases.journal.schedule, UserRef("discord", str(ALICE))
    fake.fail_next("send_message", times=1, status=status, code=code, message=message)
    assert await scheduler.deliver(ref) is None
    assert not scheduler.is_scheduled(ref)
    user = await db.users.get(ref)
    assert not user.journal_enabled and user.timezone == "Europe/Lisbon"
    assert not [r for r in caplog.records if r.name == "bot.scheduler" and r.levelno >= logging.ERROR]
    await fake.slash("journal", sub("on", time="21:30", timezone="Europe/Lisbon"))  # DMs open again
    await private_answer(fake)
    assert scheduler.is_scheduled(ref)


async def test_a_user_whose_prompts_stopped_is_told_why_once_after_their_next_command(scheduled, usecases):
    fake, _ = scheduled
    await usecases.journal.enable(Caller("discord", str(ALICE), chat_id=str(ALICE)), "21:30", "Europe/Lisbon")
    fake.fail_next("send_message", times=1, status=403, code=50007, message="Cannot send messages to this user")
    assert await usecases.journal.schedule.deliver(UserRef("discord", str(ALICE))) is None
    await fake.slash("journal", sub("list"))
    await private_answer(fake)
    notice = await fake.wait_for("followup")
    assert notice.content.startswith("Your daily journal prompts stopped") and made_private(notice)
    assert "21:30 (Europe/Lisbon)" in notice.content and "/journal on" in notice.content
    await fake.slash("journal", sub("list"))
    await private_answer(fake)
    await fake.user_dms("Creep")
    assert "prompt" in (await fake.wait_for("send_message")).content.lower()
    assert not [c for c in fake.calls if "prompts stopped" in c.content and c is not notice]  # once only


async def test_a_user_whose_prompts_stopped_and_who_writes_in_the_dm_is_told_there(scheduled, usecases):
    """The journal turned on through the use case, here and above: after a /journal on, the refused
    prompt could come before that command's completion was handled, which would tell the notice."""
    fake, _ = scheduled
    await usecases.journal.enable(Caller("discord", str(ALICE), chat_id=str(ALICE)), "21:30", "Europe/Lisbon")
    fake.fail_next("send_message", times=1, status=403, code=50007, message="Cannot send messages to this user")
    assert await usecases.journal.schedule.deliver(UserRef("discord", str(ALICE))) is None
    await fake.user_dms("Creep")
    assert "prompt" in (await fake.wait_for("send_message")).content.lower()
    notice = await fake.wait_for("send_message", lambda c: "prompts stopped" in c.content)
    assert "/journal on" in notice.content


async def test_a_prompt_refused_for_another_reason_keeps_the_journal_on(scheduled, usecases):
    fake, _ = scheduled  # e.g. Discord's outage, or the bot's own missing access: not the user's doing
    await fake.slash("journal", sub("on", time="21:30", timezone="Europe/Lisbon"))
    await private_answer(fake)
    scheduler, ref = usecases.journal.schedule, UserRef("discord", str(ALICE))
    fake.fail_next("send_message", times=1, status=403, code=50001, message="Missing Access")
    assert await scheduler.deliver(ref) is None
    assert scheduler.is_scheduled(ref)


VIDEO = "https://youtu.be/dQw4w9WgXcQ"


async def cache_video(db) -> None:
    """VIDEO's mood in the cache: these tests have no classifier, and a cached song needs none."""
    await db.tracks.save(TrackRecord(
        key="youtube:dQw4w9WgXcQ", title="Never Gonna Give You Up", artists=["Rick Astley"],
        youtube_id="dQw4w9WgXcQ", classified_at=datetime.now(timezone.utc),
        mood=StoredMood("happy", {"happy": 0.7, "energetic": 0.1, "sad": 0.1, "calm": 0.1}, 0.6, 0.3, "main", "v")))


async def test_a_progress_edit_discord_refuses_does_not_stop_the_answer(discord_bot, db):
    """discord.py gives up on an edit after five 429s in a row: the "Finding the song…" it was
    showing is not worth the answer."""
    fake, _ = discord_bot
    await cache_video(db)
    fake.fail_next("edit_original", times=5, retry_after=0.05)
    await fake.slash("mood", [{"name": "query", "type": STRING, "value": VIDEO}], guild=GUILD)
    answer = await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    assert "Never Gonna Give You Up" in answer.embeds[0]["title"]
    assert not fake.calls_of("followup")  # no apology beside it


async def test_a_dm_answer_whose_status_message_fails_is_still_saved_and_shown(scheduled, db):
    fake, _ = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    fake.fail_next("send_message", times=1, status=503, code=0, message="upstream connect error")
    await fake.user_dms(f"{VIDEO} on the bus")  # the status message ("Finding the song…") is refused
    saved = await fake.wait_for("send_message", lambda c: bool(c.embeds))
    assert saved.embeds[0]["description"].startswith("Saved to your journal")
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 1


async def test_a_saved_dm_answer_whose_status_message_cannot_be_edited_comes_as_a_new_message(scheduled, db):
    """The entry is saved: an apology in place of the answer would have the user answer again."""
    fake, _ = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    fake.fail_next("edit_message", times=1, status=503, code=0, message="upstream connect error")
    await fake.user_dms(VIDEO)
    saved = await fake.wait_for("send_message", lambda c: bool(c.embeds))
    assert saved.embeds[0]["description"].startswith("Saved to your journal")
    assert not [c for c in fake.calls if c.content == render.GENERIC_ERROR]
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 1


async def test_a_dm_answer_to_a_user_who_blocked_the_bot_meanwhile_is_one_info_line(scheduled, db, caplog):
    """The user blocked the bot, or closed their DMs, while it heard their answer: Discord refuses
    every message to them (403 50007), an apology too. Nothing failed on the bot's side: one INFO
    line saying why, as Telegram logs it, and no apology tried; the entry is saved all the same."""
    fake, _ = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    mark = fake.mark()
    fake.fail_next("send_message", times=5, status=403, code=50007, message="Cannot send messages to this user")
    with caplog.at_level(logging.INFO, logger="bot.frontends.discord"):
        await fake.user_dms(VIDEO)
        for _ in range(300):  # until the answer's refusal is logged, as a failure or not
            if [r for r in caplog.records if getattr(r, "user", None) == str(ALICE)
                    and r.getMessage() in ("discord command failed", "discord.dm_refused")]:
                break
            await asyncio.sleep(0.05)
    refused = [c for c in fake.calls_of("send_message", after=mark) if c.status == 403]
    assert [c.content for c in refused] == [STAGE_FINDING, ""]  # the status message, then the answer itself
    assert refused[-1].embeds[0]["description"].startswith("Saved to your journal")
    assert not failures_logged(caplog)
    assert not [r for r in caplog.records if r.name.startswith("bot.") and r.levelno >= logging.WARNING]
    (line,) = [r for r in caplog.records if r.getMessage() == "discord.dm_refused"]
    assert line.levelno == logging.INFO and line.exc_info is None
    assert line.reason == "403 50007 Cannot send messages to this user"
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 1


@pytest.mark.parametrize("filename", ["夜に駆ける" * 20 + ".mp3", "..", "..mp3"])
async def test_an_attachment_is_heard_whatever_its_file_name(discord_bot, db, filename):
    """Discord keeps a file's name as uploaded: 100 Japanese characters are 300 bytes, past what a
    file system takes, and '..' names the folder above."""
    fake, _ = discord_bot
    audio = b"OggS" + b"\1" * 64
    await db.tracks.save(TrackRecord(
        key="sha256:" + hashlib.sha256(audio).hexdigest(), title="", artists=[], classified_at=datetime.now(timezone.utc),
        mood=StoredMood("sad", {"happy": 0.1, "energetic": 0.1, "sad": 0.7, "calm": 0.1}, -0.5, -0.2, "main", "v")))
    attachment = fake.add_file("take.mp3", audio)
    attachment["filename"] = filename
    await fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": attachment["id"]}],
                     resolved={"attachments": {attachment["id"]: attachment}})
    answer = await fake.wait_for("edit_original", lambda c: bool(c.embeds) or "Sorry" in c.content)
    assert answer.embeds and [f["value"] for f in answer.embeds[0]["fields"] if f["name"] == "Mood"][0].endswith("sad")


@pytest.mark.parametrize("embed", [
    {"type": "rich", "title": "Now playing", "description": f"[Karma Police]({SPOTIFY_TRACK}) · requested by @bob"},
    {"type": "rich", "title": "Queue", "fields": [{"name": "Up next", "value": f"1. <{SPOTIFY_TRACK}>", "inline": False}]},
    {"type": "link", "url": SPOTIFY_TRACK, "title": "Karma Police"},  # a link preview: the message had only the link
])
async def test_the_message_command_reads_a_link_in_another_bot_s_embed(discord_bot, embed):
    """A music bot's "Now playing" card carries its song as a link in the embed's text."""
    fake, _ = discord_bot
    card = fake.message_payload(channel_id=GUILD + 1, content="", embeds=[embed],
                                author={**user_payload(BOB, "jukebox"), "bot": True})
    await fake.slash("Mood of this song", command_type=3, target_id=card["id"],
                     resolved={"messages": {card["id"]: card}}, guild=GUILD)
    answer = await fake.wait_for("followup")  # a refusal in a server: told to the asker alone
    assert answer.content == SPOTIFY_OFF_ERROR  # the Spotify link was read (this bot has no Spotify)
