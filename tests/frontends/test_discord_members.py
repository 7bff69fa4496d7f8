"""Given DISCORD_MEMBERS_INTENT (and the Developer Portal's switch), a member who leaves a server
stops counting in its /playlist and /servermood, and counts again when they join again. Without
it, the bot asks Discord for no privileged intent."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

import discord
import pytest

from bot.config import Settings
from bot.frontends.discord import DiscordFrontend
from storage.models import MoodRequest, UserRef
from tests.fakes.discord_api import PRIVILEGED_INTENTS, FakeDiscord, user_payload
from tests.frontends.conftest import cache_upload

GUILD, OTHER_GUILD = 777000000000000001, 777000000000000002
ALICE, BOB = 42, 43
STRING, ATTACHMENT = 3, 11
GUILD_MEMBERS = 1 << 1


def settings_for(fake: FakeDiscord, **more) -> Settings:
    return Settings(_env_file=None, discord_token="discord-test-token", discord_api_url=fake.api_url,
                    discord_gateway_url=fake.gateway_url, **more)


@pytest.fixture
async def members_bot(usecases):
    fake = await FakeDiscord().start()
    fake.privileged_intents = GUILD_MEMBERS  # the Developer Portal's Server Members Intent switch
    frontend = DiscordFrontend(settings_for(fake, discord_members_intent=True), usecases, guild_ready_timeout=0.05)
    await frontend.start()
    for guild in (GUILD, OTHER_GUILD):  # as Discord sends each server after READY
        await guild_created(fake, guild)
    yield fake, frontend
    await frontend.stop()
    await fake.stop()


async def guild_created(fake: FakeDiscord, guild: int, *, joined: bool = False) -> None:
    """The server, as Discord sends it after READY, or (`joined`: no `unavailable` in it, which
    discord.py reads as on_guild_join) once the bot is added to it."""
    await fake.dispatch("GUILD_CREATE", {
        "id": str(guild), "name": f"Server {guild}", "owner_id": str(ALICE), "roles": [], "emojis": [],
        "features": [], "member_count": 3, "members": [], "channels": [], "threads": [],
        "stickers": [], "large": False, **({} if joined else {"unavailable": False})})


async def asked(db, user: int, guild: int, title: str) -> None:
    await db.requests.add(MoodRequest(UserRef("discord", str(user)), f"discord:{guild}", f"spotify:{title}",
                                      "sad", datetime.now(timezone.utc), title=title))


async def shown(fake: FakeDiscord, command: str, guild: int = GUILD) -> str:
    mark = fake.mark()
    options = [{"name": "mood", "type": STRING, "value": "sad"}] if command == "playlist" else None
    await fake.slash(command, options, guild=guild, user=ALICE)
    answer = await fake.wait_for("edit_original", lambda call: bool(call.embeds or call.content), after=mark)
    return answer.content + "".join(str(embed) for embed in answer.embeds)


async def until(condition, timeout: float = 5.0) -> None:
    """The gateway event is handled: no REST call answers it, so wait for what it stored."""
    for _ in range(int(timeout / 0.05)):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the event was not handled in time")


async def test_the_members_intent_is_asked_for_only_when_set(members_bot):
    fake, _ = members_bot
    assert int(fake.identify["intents"]) & PRIVILEGED_INTENTS == GUILD_MEMBERS


async def test_a_member_who_leaves_the_server_is_gone_from_its_playlist_until_they_join_again(members_bot, db):
    fake, _ = members_bot
    await asked(db, BOB, GUILD, "Creep")
    await asked(db, ALICE, GUILD, "Hurt")
    await asked(db, BOB, OTHER_GUILD, "Creep")
    assert "Creep" in await shown(fake, "playlist")

    await fake.dispatch("GUILD_MEMBER_REMOVE", {"guild_id": str(GUILD), "user": user_payload(BOB, "bob")})
    await until(lambda: db.db["departures"].count_documents({"user_id": str(BOB)}))

    text = await shown(fake, "playlist")
    assert "Hurt" in text and "Creep" not in text
    assert "sad 1" in await shown(fake, "servermood")
    assert "Creep" in await shown(fake, "playlist", OTHER_GUILD)  # still in the other server

    await fake.dispatch("GUILD_MEMBER_ADD", {
        "guild_id": str(GUILD), "user": user_payload(BOB, "bob"), "roles": [], "joined_at": "2026-12-01T00:00:00+00:00",
        "deaf": False, "mute": False, "flags": 0, "pending": False, "nick": None, "avatar": None})
    await until(lambda: _none(db.db["departures"].count_documents({"user_id": str(BOB)})))

    text = await shown(fake, "playlist")
    assert "Hurt" in text and "Creep" in text
    assert "sad 2" in await shown(fake, "servermood")


async def _none(count) -> bool:
    return await count == 0


async def test_without_the_setting_no_privileged_intent_is_asked_for_and_a_member_who_left_still_counts(
        discord_bot, db):
    fake, frontend = discord_bot
    assert frontend.settings.discord_members_intent is False
    assert not int(fake.identify["intents"]) & PRIVILEGED_INTENTS
    await asked(db, BOB, GUILD, "Creep")
    await fake.dispatch("GUILD_MEMBER_REMOVE", {"guild_id": str(GUILD), "user": user_payload(BOB, "bob")})
    assert "Creep" in await shown(fake, "playlist")  # Discord never said he left (README)


async def test_the_setting_without_the_portals_switch_stops_the_start_naming_the_intent(usecases):
    fake = await FakeDiscord().start()  # the Developer Portal's switch is off
    frontend = DiscordFrontend(settings_for(fake, discord_members_intent=True), usecases, guild_ready_timeout=0.05)
    try:
        with pytest.raises(discord.PrivilegedIntentsRequired):  # says where to turn it on
            await asyncio.wait_for(frontend.start(), timeout=10)  # a failed start stops what it began
    finally:
        await fake.stop()


@pytest.mark.parametrize("value,expected", [("1", True), ("0", False), ("on", True)])
def test_the_setting_is_read_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("DISCORD_MEMBERS_INTENT", value)
    assert Settings(_env_file=None).discord_members_intent is expected


async def test_a_member_who_leaves_while_their_file_downloads_is_not_brought_back_by_it(members_bot, db):
    """A /mood counts from when it was asked (README): its file still on its way from Discord's file
    server when its asker leaves, its answer is still shown, and does not bring them back."""
    fake, _ = members_bot
    await asked(db, ALICE, GUILD, "Hurt")
    await asked(db, BOB, GUILD, "Creep")
    clip = fake.add_file("clip.mp4", b"v" * 64)
    clip["content_type"] = "video/mp4"
    await cache_upload(db, b"v" * 64, "sad")
    fake.cdn_open.clear()  # the download is under way, and slow
    await fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": clip["id"]}],
                     resolved={"attachments": {clip["id"]: clip}}, guild=GUILD, user=BOB)
    await fake.wait_for("download")
    await fake.dispatch("GUILD_MEMBER_REMOVE", {"guild_id": str(GUILD), "user": user_payload(BOB, "bob")})
    await until(lambda: db.db["departures"].count_documents({"user_id": str(BOB)}))
    fake.cdn_open.set()
    assert (await fake.wait_for("edit_original", lambda call: bool(call.embeds))).embeds[0]["title"] == "clip"

    text = await shown(fake, "playlist")
    assert "Hurt" in text and "Creep" not in text and "clip" not in text
    assert "sad 1" in await shown(fake, "servermood")


async def test_the_bot_removed_from_a_server_deletes_nothing_and_says_so_in_the_log(members_bot, db, caplog):
    """As on Telegram: a server the bot is removed from keeps its songs and settings (README), and
    the log says so; a server Discord says is unavailable (an outage) is no removal."""
    fake, _ = members_bot
    await asked(db, BOB, GUILD, "Creep")
    fake.admins.add(ALICE)
    await fake.slash("serverplaylist", [{"name": "state", "type": STRING, "value": "off"}], guild=OTHER_GUILD, user=ALICE)
    await fake.wait_for("edit_original", lambda call: "off" in call.content)
    with caplog.at_level(logging.INFO, logger="bot.usecases.playlists"):
        await fake.dispatch("GUILD_DELETE", {"id": str(OTHER_GUILD), "unavailable": True})
        await fake.dispatch("GUILD_DELETE", {"id": str(GUILD)})
        await until(lambda: _logged(caplog, "server.bot_removed"))
    [record] = [r for r in caplog.records if r.getMessage() == "server.bot_removed"]
    assert record.place == f"discord:{GUILD}"
    assert await db.db["requests"].count_documents({}) == 1
    assert not (await db.servers.get(f"discord:{OTHER_GUILD}")).playlist_enabled
    await guild_created(fake, GUILD)  # added back: its songs are where they were
    assert "Creep" in await shown(fake, "playlist")


async def _logged(caplog, message: str) -> bool:
    return any(r.getMessage() == message for r in caplog.records)
