"""Given the app installed to a user's own account (Discord's user install, where the Developer
Portal allows it), its commands are used where the bot is no member: in a group DM, or a DM of two
other people (context 2), and in a server that never added the bot (the interaction's
authorizing_integration_owners name the user's install alone). /mood answers there; a refusal is
told to the asker alone, as in a server; and a server that never added the bot has no server
playlists: /playlist, /servermood and /serverplaylist say so, and a song heard there counts in none."""
from __future__ import annotations

import pytest

from bot.frontends.discord.mood import FOLLOWUPS_SPENT
from bot.frontends.discord.server import NOT_ADDED_HERE
from storage.schema import REQUESTS, SERVERS
from tests.fakes.discord_api import EPHEMERAL, user_payload
from tests.frontends.test_discord import ATTACHMENT, DEFERRED, GUILD, MESSAGE, STRING, failures_logged, made_private
from tests.frontends.test_discord_message_files import answers, cached_files, titles
from tests.frontends.test_discord_playlists import playlist_shown
from tests.frontends.test_telegram_note_titles import cached

ALICE, BOB = 42, 43
PRIVATE_CHANNEL = 2  # an interaction's context: a group DM, or a DM of two other people
GROUP_DM = {"id": "610000000000000001", "type": 3, "name": None, "owner_id": str(BOB),
            "recipients": [user_payload(ALICE), user_payload(BOB, "bob")]}
ALICE_S_INSTALL = {"1": str(ALICE)}  # authorizing_integration_owners: her own account's install alone


async def heard(fake, db, audio: bytes, **where) -> tuple:
    """Alice's /mood with `audio` (sad, in the cache) attached, used `where` (slash's arguments):
    its deferral and its answer."""
    attachment = fake.add_file("demo take.ogg", await cached(db, audio))
    mark = fake.mark()
    await fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": attachment["id"]}],
                     resolved={"attachments": {attachment["id"]: attachment}}, user=ALICE, owners=ALICE_S_INSTALL,
                     **where)
    deferred = await fake.wait_for("interaction_callback", after=mark)
    return deferred, await fake.wait_for("edit_original", lambda c: bool(c.embeds), after=mark)


async def test_mood_in_a_group_dm_answers_there_and_tells_a_refusal_to_the_asker_alone(discord_bot, db):
    """A group DM's other members see the answer, as a server's do; a refusal (a link the bot
    does not read, the rate limit) is nobody else's business there either."""
    fake, _ = discord_bot
    in_the_group = {"channel": GROUP_DM, "context": PRIVATE_CHANNEL}
    deferred, answer = await heard(fake, db, b"OggS a demo in the group", **in_the_group)
    assert deferred.json["type"] == DEFERRED and not deferred.flags & EPHEMERAL and "sad" in str(answer.embeds)

    mark = fake.mark()
    await fake.slash("mood", [{"name": "query", "type": STRING, "value": "https://soundcloud.com/x/y"}],
                     user=ALICE, owners=ALICE_S_INSTALL, **in_the_group)
    refusal = await fake.wait_for("followup", after=mark)
    assert "soundcloud.com" in refusal.content and made_private(refusal)
    await fake.wait_for("delete_original", after=mark)  # the public "thinking" answer goes
    assert not [c for c in fake.calls_of("edit_original", after=mark) if "soundcloud.com" in c.content]


@pytest.mark.parametrize("command,options,admin", [
    ("playlist", [{"name": "mood", "type": STRING, "value": "sad"}], False),
    ("servermood", None, False),
    ("serverplaylist", [{"name": "state", "type": STRING, "value": "off"}], True),
])
async def test_server_commands_in_a_server_that_never_added_the_bot_say_so(discord_bot, db, command, options, admin):
    fake, _ = discord_bot
    if admin:
        fake.admins.add(ALICE)
    await fake.slash(command, options, guild=GUILD, user=ALICE, owners=ALICE_S_INSTALL)
    told = await fake.wait_for("interaction_callback")
    assert told.json["type"] == MESSAGE and told.flags & EPHEMERAL and told.content == NOT_ADDED_HERE
    assert await db.db[SERVERS].count_documents({}) == 0  # nothing switched for a server the bot is not in
    # Where the server added the bot too, its playlists answer as ever.
    fake.admins.discard(ALICE)
    assert "Sad song 0" in (await playlist_shown(fake, db, 1))["description"]


async def test_a_song_heard_in_a_server_that_never_added_the_bot_counts_in_no_server_playlist(discord_bot, db):
    fake, _ = discord_bot
    deferred, answer = await heard(fake, db, b"OggS Alice's demo", guild=GUILD)
    assert "sad" in str(answer.embeds)
    await db.requests.settled()  # recorded in the background, maybe after the answer
    [upload] = await db.db[REQUESTS].find({"track_key": {"$regex": "^sha256:"}}).to_list()
    assert upload["place"] is None and "source_link" not in upload


async def test_the_menu_on_many_files_through_a_user_s_own_install_hears_those_discord_lets_it_answer(
        discord_bot, db, caplog):
    """Discord takes 5 followups of an interaction through a user's own install alone (40094 past
    them): the menu hears the files whose answers fit, then says the rest were not heard."""
    fake, _ = discord_bot
    mark = fake.mark()
    target = fake.message_payload(channel_id=GROUP_DM["id"], content="our takes", author=user_payload(BOB),
                                  attachments=await cached_files(fake, db, 7))
    await fake.slash("Mood of this song", command_type=3, target_id=target["id"],
                     resolved={"messages": {target["id"]: target}}, user=ALICE, owners=ALICE_S_INSTALL,
                     channel=GROUP_DM, context=PRIVATE_CHANNEL)
    messages = await answers(fake, mark, 5)
    assert titles(messages) == ["take1", "take2", "take3", "take4", None]
    assert messages[-1].content == FOLLOWUPS_SPENT.format(count=3) and made_private(messages[-1])
    assert not [call for call in fake.calls[mark:] if call.status >= 400]
    assert not failures_logged(caplog)
