"""Given a server's admin turned its playlists off, a member's /playlist is told so, and how an
admin turns them on again, in the server's words."""
from __future__ import annotations

from bot.frontends.render import NOT_SHARING
from storage.schema import REQUESTS
from tests.bot.test_server_playlists import songs_asked
from tests.fakes.discord_api import EPHEMERAL, user_payload
from tests.frontends.test_playlists_as_used import MORE_NOT_SHOWN
from tests.frontends.test_telegram_note_titles import cached

GUILD = 777000000000000001
ALICE, BOB = 42, 43
STRING, ATTACHMENT = 3, 11  # application command options' types
CHANNEL = GUILD + 1  # where the fake's server commands are used
DEFERRED = 5  # an interaction callback's type: "thinking…"


async def switched(fake, state: str) -> str:
    """What Alice, an admin, is told privately on turning the server's playlists `state`."""
    fake.admins.add(ALICE)
    await fake.slash("serverplaylist", [{"name": "state", "type": STRING, "value": state}], guild=GUILD, user=ALICE)
    deferred = await fake.wait_for("interaction_callback", lambda c: c.json["type"] == DEFERRED)
    return (await fake.wait_for("edit_original", lambda c: c.token == deferred.token)).content


async def test_playlist_in_a_server_whose_playlists_are_off_says_how_to_turn_them_on(discord_bot):
    fake, _ = discord_bot
    await switched(fake, "off")
    await fake.slash("playlist", [{"name": "mood", "type": STRING, "value": "calm"}], guild=GUILD, user=BOB)
    refusal = await fake.wait_for("followup")
    assert "turned off" in refusal.content and "/serverplaylist on" in refusal.content
    assert refusal.flags & EPHEMERAL  # told to the asker alone


async def test_the_server_playlists_are_called_a_server_s_on_discord(discord_bot):
    """The words Telegram renders as 'group' stay Discord's own."""
    fake, _ = discord_bot
    await fake.slash("serverplaylist", [{"name": "state", "type": STRING, "value": "off"}], guild=GUILD, user=BOB)
    deferred = await fake.wait_for("interaction_callback", lambda c: c.json["type"] == DEFERRED)
    refusal = await fake.wait_for("edit_original", lambda c: c.token == deferred.token)
    assert refusal.content == "Only the server's admins can turn server playlists on or off."
    assert await switched(fake, "off") == "Server playlists are off: /playlist and /servermood won't answer here."
    await fake.slash("playlist", [{"name": "mood", "type": STRING, "value": "calm"}], guild=GUILD, user=BOB)
    assert (await fake.wait_for("followup")).content == (
        "Server playlists are turned off here. An admin can turn them on with /serverplaylist on.")



async def playlist_shown(fake, db, songs: int, *, user: int = ALICE) -> dict:
    """The embed `user` is shown, in the channel, for /playlist sad, after Bob asked for `songs` sad songs."""
    await songs_asked(db, f"discord:{GUILD}", BOB, songs, "sad")
    mark = fake.mark()
    await fake.slash("playlist", [{"name": "mood", "type": STRING, "value": "sad"}], guild=GUILD, user=user)
    [embed] = (await fake.wait_for("edit_original", after=mark)).embeds
    return embed


async def test_a_playlist_longer_than_its_twenty_songs_says_how_many_more(discord_bot, db):
    fake, _ = discord_bot
    description = (await playlist_shown(fake, db, 25))["description"]
    assert description.splitlines()[-1] == MORE_NOT_SHOWN and "\n20. Artist – Sad song 19 " in description


async def test_a_member_who_stopped_sharing_is_told_so_alone_under_the_playlist(discord_bot, db):
    """Bob's /share off is his own business on Discord (answered to him alone): the playlist, posted
    in the channel, does not say it; he alone is told why his songs are not in it."""
    fake, _ = discord_bot
    await fake.slash("share", [{"name": "choice", "type": STRING, "value": "off"}], guild=GUILD, user=BOB)
    assert (await fake.wait_for("edit_original")).content.startswith("Sharing off")
    mark = fake.mark()
    assert (await playlist_shown(fake, db, 2, user=BOB))["description"] == (
        "No sad songs here yet. Classify some with /mood!")
    note = await fake.wait_for("followup", after=mark)
    assert note.content == NOT_SHARING and note.flags & EPHEMERAL


async def test_a_member_who_stopped_sharing_is_told_so_alone_under_the_mood_of_the_week(discord_bot, db):
    """As under the playlist: the channel's mood of the week says nothing of Bob's /share off
    (it said "Nobody here classified…", his songs of the week left out unsaid); he alone is told."""
    fake, _ = discord_bot
    await songs_asked(db, f"discord:{GUILD}", BOB, 2, "sad")
    await fake.slash("share", [{"name": "choice", "type": STRING, "value": "off"}], guild=GUILD, user=BOB)
    assert (await fake.wait_for("edit_original")).content.startswith("Sharing off")
    mark = fake.mark()
    await fake.slash("servermood", guild=GUILD, user=BOB)
    shown = await fake.wait_for("edit_original", after=mark)
    assert shown.content == "Nobody here classified or journaled a song in the last 7 days. Try /mood!"
    note = await fake.wait_for("followup", after=mark)
    assert note.content == NOT_SHARING and note.flags & EPHEMERAL


async def test_the_playlist_s_embed_names_it_once(discord_bot, db):
    """The embed's title is '😢 sad playlist': its description began with '😢 sad playlist:' again."""
    fake, _ = discord_bot
    embed = await playlist_shown(fake, db, 1)
    assert (embed["title"], embed["description"]) == (
        "😢 sad playlist", "1. Artist – Sad song 0 https://open.spotify.com/track/sad0")


async def file_heard(fake, db, audio: bytes, *, guild: int | None = GUILD, channel: dict | None = None) -> str:
    """Bob's /mood with `audio` (sad, in the cache) attached as demo take.ogg, in the server (or
    his DM; or the server's `channel`, a channel's payload), answered; the id of the response's message."""
    attachment = fake.add_file("demo take.ogg", await cached(db, audio))
    mark = fake.mark()
    await fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": attachment["id"]}],
                     resolved={"attachments": {attachment["id"]: attachment}}, guild=guild, user=BOB,
                     channel=channel)
    deferred = await fake.wait_for("interaction_callback", lambda c: c.json["type"] == DEFERRED, after=mark)
    await fake.wait_for("edit_original", lambda c: bool(c.embeds), after=mark)
    return deferred.result["interaction"]["response_message_id"]


async def test_a_file_heard_in_the_server_is_listed_with_a_link_to_its_message(discord_bot, db):
    """A file is known by its name alone, which nobody else can play: the playlist links the
    message that holds it, /mood's response."""
    fake, _ = discord_bot
    response = await file_heard(fake, db, b"OggS Bob's demo")
    assert (await playlist_shown(fake, db, 0))["description"] == (
        f"1. demo take https://discord.com/channels/{GUILD}/{CHANNEL}/{response}")


async def test_a_message_s_file_is_listed_with_a_link_to_that_message_never_to_its_words(discord_bot, db):
    """'Mood of this song' on Bob's message with a file: the link is the message's, made by the
    bot, and never a link its words hold."""
    fake, _ = discord_bot
    attachment = fake.add_file("demo take.ogg", await cached(db, b"OggS Bob's demo"))
    target = fake.message_payload(channel_id=CHANNEL, content="my demo, also on https://evil.example/demo",
                                  author=user_payload(BOB), attachments=[attachment])
    await fake.slash("Mood of this song", command_type=3, target_id=target["id"],
                     resolved={"messages": {target["id"]: target}}, guild=GUILD, user=ALICE)
    await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    assert (await playlist_shown(fake, db, 0))["description"] == (
        f"1. demo take https://discord.com/channels/{GUILD}/{CHANNEL}/{target['id']}")


async def test_a_file_heard_in_a_dm_keeps_no_link_and_is_not_the_server_s(discord_bot, db):
    """Nobody else can open a DM's message: no link is kept, and the file is not the server's."""
    fake, _ = discord_bot
    await file_heard(fake, db, b"OggS Bob's demo", guild=None)
    assert (await playlist_shown(fake, db, 1))["description"] == (
        "1. Artist – Sad song 0 https://open.spotify.com/track/sad0")
    [upload] = await db.db[REQUESTS].find({"track_key": {"$regex": "^sha256:"}}).to_list()
    assert upload["place"] is None and "source_link" not in upload
