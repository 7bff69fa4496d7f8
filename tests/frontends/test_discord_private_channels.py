"""Given a file sent to /mood in a server's channel or thread that not every member can see (its
@everyone role may not view it: a private channel, a private thread, a thread of a private
channel), it is not in the server's playlist, which every member reads: no name, no jump link, as a
file sent in a DM. Whether @everyone sees the channel is read from the server as the gateway gave
it (GUILD_CREATE: its roles and its channels' permission overwrites), with no REST call."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from storage.schema import REQUESTS
from tests.fakes.discord_api import MEMBER_PERMISSIONS, thread_in, user_payload
from tests.frontends.test_discord_playlists import ALICE, BOB, CHANNEL, GUILD, file_heard, playlist_shown
from tests.frontends.test_telegram_note_titles import cached

VIEW_CHANNEL = 1 << 10
PRIVATE_THREAD = 12  # a channel's type
HIDDEN = GUILD + 7  # a text channel @everyone may not view (a role, or its members alone, may)
MODS = GUILD + 8  # a role whose members see HIDDEN
SONG_ALONE = "1. Artist – Sad song 0 https://open.spotify.com/track/sad0"  # Bob's one Spotify song


def text_channel(channel_id: int, name: str, overwrites: list[dict]) -> dict:
    return {"id": str(channel_id), "type": 0, "guild_id": str(GUILD), "name": name, "position": 0,
            "permission_overwrites": overwrites, "nsfw": False, "parent_id": None}


async def server_created(fake) -> None:
    """The server as the gateway gives it after READY: its @everyone role (whose id is the
    server's) views channels; #general has no overwrite, #mods denies @everyone the view."""
    everyone = {"id": str(GUILD), "name": "@everyone", "permissions": str(MEMBER_PERMISSIONS), "position": 0,
                "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}
    mods = {**everyone, "id": str(MODS), "name": "mods", "position": 1}
    hidden = text_channel(HIDDEN, "mods", [{"id": str(GUILD), "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)},
                                           {"id": str(MODS), "type": 0, "allow": str(VIEW_CHANNEL), "deny": "0"}])
    await fake.dispatch("GUILD_CREATE", {
        "id": str(GUILD), "name": "Server", "owner_id": "1", "roles": [everyone, mods], "emojis": [],
        "features": [], "member_count": 3, "members": [], "threads": [], "stickers": [], "large": False,
        "channels": [text_channel(CHANNEL, "general", []), hidden], "unavailable": False})


def private_thread(thread_id: int, parent: int) -> dict:
    return {**thread_in(GUILD, thread_id, parent), "type": PRIVATE_THREAD}


async def not_the_server_s(fake, db) -> None:
    """The file Bob's /mood heard is in no playlist of the server, nor its mood of the week (which
    names no song, but a private channel's file is its members' own: docs/limits.md), and kept as
    a DM's file is."""
    assert (await playlist_shown(fake, db, 1))["description"] == SONG_ALONE
    assert await db.playlists.server_mood_of_week(f"discord:{GUILD}", datetime.now(timezone.utc)) == {"sad": 1}
    [upload] = await db.db[REQUESTS].find({"track_key": {"$regex": "^sha256:"}}).to_list()
    assert upload["place"] is None and "source_link" not in upload
    # Nothing asked of Discord's REST API of the server or its channels.
    assert not [call for call in fake.calls if call.method == "GET" and re.search(r"/(channels|guilds)/", call.path)]


@pytest.mark.parametrize("channel", [
    text_channel(HIDDEN, "mods", []),  # as the interaction names it; its overwrites are the server's
    private_thread(GUILD + 98, CHANNEL),
    thread_in(GUILD, GUILD + 97, HIDDEN),
], ids=["a private channel", "a private thread", "a thread of a private channel"])
async def test_a_file_heard_where_everyone_cannot_see_is_not_in_the_server_s_playlist(discord_bot, db, channel):
    fake, _ = discord_bot
    await server_created(fake)
    await file_heard(fake, db, b"OggS Bob's private demo", channel=channel)
    await not_the_server_s(fake, db)


async def test_mood_of_this_song_on_a_file_in_a_private_channel_keeps_it_out_of_the_server_s_playlist(
        discord_bot, db):
    fake, _ = discord_bot
    await server_created(fake)
    attachment = fake.add_file("demo take.ogg", await cached(db, b"OggS Bob's private demo"))
    target = fake.message_payload(channel_id=HIDDEN, content="", author=user_payload(BOB), attachments=[attachment])
    await fake.slash("Mood of this song", command_type=3, target_id=target["id"], guild=GUILD, user=ALICE,
                     resolved={"messages": {target["id"]: target}}, channel=text_channel(HIDDEN, "mods", []))
    await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    await not_the_server_s(fake, db)


async def test_a_server_not_known_from_the_gateway_goes_by_the_channel_s_own_overwrite_for_everyone(discord_bot, db):
    """No GUILD_CREATE (the server unavailable in an outage): no @everyone role to read, but the
    interaction's channel carries its overwrites, and the one for @everyone denies the view."""
    fake, _ = discord_bot
    hidden = text_channel(HIDDEN, "mods", [{"id": str(GUILD), "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)}])
    await file_heard(fake, db, b"OggS Bob's private demo", channel=hidden)
    await not_the_server_s(fake, db)


async def test_a_file_heard_where_everyone_can_see_is_in_the_server_s_playlist(discord_bot, db):
    """The same server known from the gateway, in #general: the file is listed with its link."""
    fake, _ = discord_bot
    await server_created(fake)
    response = await file_heard(fake, db, b"OggS Bob's public demo", channel=text_channel(CHANNEL, "general", []))
    assert (await playlist_shown(fake, db, 1))["description"] == (
        f"{SONG_ALONE}\n2. demo take https://discord.com/channels/{GUILD}/{CHANNEL}/{response}")
