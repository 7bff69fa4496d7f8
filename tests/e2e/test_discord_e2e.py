"""Discord end to end: discord.py logs in and connects to the fake Discord (REST + gateway); the
interactions go through discord.py's own dispatch; the rest of the bot is real."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import pytest_asyncio

from bot.frontends.discord import DiscordFrontend
from bot.frontends.discord.interactions import MAX_SHOWN_NAME
from bot.frontends.discord.rendering import clip
from storage.models import UserRef
from tests.e2e.wiring import DISCORD_TOKEN, bot_settings, running_bot
from tests.fakes.discord_api import EPHEMERAL, FakeDiscord, user_payload
from tests.frontends.conftest import read  # a file's name in a refusal: unlinked, read the same

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALICE, BOB = 42, 43
GUILD = 700000000000000001
STRING, SUB_COMMAND, ATTACHMENT = 3, 1, 11
DEFERRED, DEFERRED_UPDATE = 5, 6
SLOW_S = 90.0


def field_value(embed: dict, name: str) -> str:
    return next(f["value"] for f in embed["fields"] if f["name"] == name)


@pytest_asyncio.fixture(loop_scope="module")
async def discord_bot(catalog, classifier, mongo_uri, db_name):
    fake = await FakeDiscord().start()
    settings = bot_settings(catalog, mongo_uri, db_name, Path(tempfile.mkdtemp(prefix="moodbot-dc-")),
                            discord_token=DISCORD_TOKEN, discord_api_url=fake.api_url,
                            discord_gateway_url=fake.gateway_url)
    factory = lambda s, u: DiscordFrontend(s, u, guild_ready_timeout=0.05)  # noqa: E731
    async with running_bot(settings, classifier, [factory]) as bot:
        yield fake, bot
    await fake.stop()


async def slash_mood(fake, query: str, **where):
    await fake.slash("mood", [{"name": "query", "type": STRING, "value": query}], **where)
    deferred = await fake.wait_for("interaction_callback")
    final = await fake.wait_for("edit_original", lambda c: bool(c.embeds) or "Sorry" in c.content, timeout=SLOW_S)
    return deferred, final


async def private_answer(fake):
    """The answer to a command that defers privately at once (before the database), then edits."""
    deferred = await fake.wait_for("interaction_callback")
    assert deferred.json["type"] == DEFERRED and deferred.flags & EPHEMERAL
    return await fake.wait_for("edit_original", lambda c: c.token == deferred.token)


async def test_mood_defers_first_then_edits_in_the_embed(discord_bot, classifier, songs):
    fake, _ = discord_bot
    song = songs[0]
    expected = (await classifier.classify(song.path)).mood
    mark = fake.mark()
    deferred, final = await slash_mood(fake, song.query, guild=GUILD)
    assert fake.calls[mark].name == "interaction_callback" and deferred.json["type"] == DEFERRED
    embed = final.embeds[0]
    assert song.title in embed["title"]
    assert field_value(embed, "Mood").endswith(expected)
    assert field_value(embed, "Spotify") == f"https://open.spotify.com/track/{song.spotify_id}"
    assert {"Valence / Arousal", "Confidence", "Model"} <= {f["name"] for f in embed["fields"]}
    stages = [c.content for c in fake.calls_of("edit_original", after=mark)]
    assert stages[0] == "Finding the song…" and "Listening…" in stages


async def test_journal_by_dm_then_journal_list(discord_bot, songs):
    fake, bot = discord_bot
    await fake.slash("journal", [{"name": "on", "type": SUB_COMMAND, "options": [
        {"name": "time", "type": STRING, "value": "08:15"},
        {"name": "timezone", "type": STRING, "value": "America/Sao_Paulo"}]}])
    assert "08:15" in (await private_answer(fake)).content
    mark = fake.mark()
    prompt_id = await bot.scheduler.fire_now(UserRef("discord", str(ALICE)))
    prompt = await fake.wait_for("send_message", after=mark)
    assert prompt.match["channel"] == str(fake.dm_channel_id(ALICE))

    song = songs[1]
    await fake.user_dms(song.query, reply_to=prompt.result["id"])
    saved = await fake.wait_for("edit_message", lambda c: bool(c.embeds), timeout=SLOW_S)
    assert "Saved to your journal" in saved.embeds[0]["description"]
    entries = await bot.db.journal.list(UserRef("discord", str(ALICE)))
    assert [e.prompt_id for e in entries] == [prompt_id]

    await fake.slash("journal", [{"name": "list", "type": SUB_COMMAND}])
    assert song.title in (await private_answer(fake)).content


async def test_the_next_dm_after_a_prompt_answers_it_even_without_a_reply(discord_bot, songs):
    fake, bot = discord_bot
    await fake.slash("journal", [{"name": "on", "type": SUB_COMMAND, "options": [
        {"name": "time", "type": STRING, "value": "22:00"},
        {"name": "timezone", "type": STRING, "value": "Asia/Tokyo"}]}], user=BOB)
    await private_answer(fake)
    prompt_id = await bot.scheduler.fire_now(UserRef("discord", str(BOB)))
    song = songs[5]
    attachment = fake.add_file(f"{song.song_id}.ogg", song.path.read_bytes())
    await fake.user_dms("", user=BOB, attachments=[attachment])
    saved = await fake.wait_for("edit_message", lambda c: bool(c.embeds), timeout=SLOW_S)
    assert "Saved to your journal" in saved.embeds[0]["description"]
    assert fake.calls_of("download")  # the attachment came from the CDN
    entries = await bot.db.journal.list(UserRef("discord", str(BOB)))
    assert [e.prompt_id for e in entries] == [prompt_id]


async def test_a_dm_answer_with_half_an_emoji_in_its_note_is_saved(discord_bot, songs):
    """Words cut between the two halves of an emoji's surrogate pair (JSON's two \\u escapes)
    decoded to a lone surrogate that the database could not store: "something went wrong"."""
    fake, bot = discord_bot
    carol = 44
    await fake.slash("journal", [{"name": "on", "type": SUB_COMMAND, "options": [
        {"name": "time", "type": STRING, "value": "07:00"},
        {"name": "timezone", "type": STRING, "value": "Europe/Oslo"}]}], user=carol)
    await private_answer(fake)
    prompt_id = await bot.scheduler.fire_now(UserRef("discord", str(carol)))
    await fake.user_dms(f"{songs[2].query}\nsunny at last \ud83d", user=carol)
    saved = await fake.wait_for("edit_message", lambda c: bool(c.embeds) or "Sorry" in c.content, timeout=SLOW_S)
    assert saved.embeds and "Saved to your journal" in saved.embeds[0]["description"], saved.content
    (entry,) = await bot.db.journal.list(UserRef("discord", str(carol)))
    assert (entry.prompt_id, entry.note) == (prompt_id, "sunny at last \ufffd")


async def test_playlist_lists_the_server_s_songs(discord_bot, songs):
    fake, _ = discord_bot
    song = songs[2]
    _, final = await slash_mood(fake, song.query, guild=GUILD, user=ALICE)
    mood = field_value(final.embeds[0], "Mood").split()[-1]
    await slash_mood(fake, song.query, guild=GUILD, user=BOB)
    await fake.slash("playlist", [{"name": "mood", "type": STRING, "value": mood}], guild=GUILD)
    assert (await fake.wait_for("interaction_callback")).json["type"] == DEFERRED
    answer = await fake.wait_for("edit_original")
    assert song.title in answer.embeds[0]["description"] and "(2 members)" in answer.embeds[0]["description"]

    await fake.slash("servermood", guild=GUILD)
    chart = await fake.wait_for("edit_original")
    assert "This week's mood here" in chart.content
    (name, png), = chart.files.items()
    assert name.endswith(".png") and png.startswith(b"\x89PNG")


async def test_forget_confirmation_deletes_the_user_s_data(discord_bot, songs):
    fake, bot = discord_bot
    alice = UserRef("discord", str(ALICE))
    await slash_mood(fake, songs[3].query, user=ALICE)
    assert (await bot.db.privacy.export(alice)).requests  # the bot remembers Alice asked
    await fake.slash("forget", user=ALICE)
    question = await fake.wait_for("interaction_callback")
    assert question.flags & EPHEMERAL and question.json["data"]["components"]
    await fake.click(question.result["interaction"]["response_message_id"], "forget:yes", user=ALICE)
    deferred = await fake.wait_for("interaction_callback")
    assert deferred.json["type"] == DEFERRED_UPDATE  # acknowledged before the database deletes
    done = await fake.wait_for("edit_original", lambda c: c.token == deferred.token)
    assert done.content.startswith("Done: I deleted everything")
    left = await bot.db.privacy.export(alice)
    assert left.user is None and not left.requests and not left.journal


async def test_journal_prompt_sends_today_s_prompt_to_answer_by_dm(discord_bot, songs):
    fake, bot = discord_bot
    carol = 44
    await fake.slash("journal", [{"name": "on", "type": SUB_COMMAND, "options": [
        {"name": "time", "type": STRING, "value": "07:00"},
        {"name": "timezone", "type": STRING, "value": "Europe/Lisbon"}]}], user=carol, guild=GUILD)
    await private_answer(fake)
    mark = fake.mark()
    await fake.slash("journal", [{"name": "prompt", "type": SUB_COMMAND}], user=carol, guild=GUILD)
    assert "Sent" in (await private_answer(fake)).content
    prompt = await fake.wait_for("send_message", after=mark)
    assert prompt.match["channel"] == str(fake.dm_channel_id(carol))
    await fake.user_dms(songs[4].query, user=carol, reply_to=prompt.result["id"])
    saved = await fake.wait_for("edit_message", lambda c: bool(c.embeds), timeout=SLOW_S)
    assert "Saved to your journal" in saved.embeds[0]["description"]
    assert len(await bot.db.journal.list(UserRef("discord", str(carol)))) == 1


async def test_the_message_command_classifies_the_link_it_can_read(discord_bot, songs):
    fake, _ = discord_bot
    song = songs[2]
    content = f"https://tenor.com/view/dance-gif-123 and ||https://open.spotify.com/track/{song.spotify_id}||!"
    target = fake.message_payload(channel_id=GUILD + 1, content=content, author=user_payload(BOB))
    await fake.slash("Mood of this song", command_type=3, target_id=target["id"],
                     resolved={"messages": {target["id"]: target}}, guild=GUILD)
    final = await fake.wait_for("edit_original", lambda c: bool(c.embeds) or "Sorry" in c.content, timeout=SLOW_S)
    assert song.title in final.embeds[0]["title"]


JUNK = b"ID3\x03\x00" + b"\x17 not a song at all " * 40  # a name and a type of audio, and no sound


async def test_an_unreadable_file_is_named_as_its_sender_named_it(discord_bot):
    """The upload is saved as `audio.mp3` (a name any file system takes): the decoder's refusal
    named that name, one the sender never gave, in /mood, in 'Mood of this song' and in a DM
    answering a prompt. Each names the file as sent, clipped as the front-end clips the names it
    says back."""
    fake, bot = discord_bot
    long_name = "夜に駆ける" * 20 + ".mp3"
    for name in ("my mix.mp3", long_name):
        attachment = fake.add_file(name, JUNK)
        attachment["content_type"] = "audio/mpeg"
        mark = fake.mark()
        await fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": attachment["id"]}],
                         resolved={"attachments": {attachment["id"]: attachment}})
        answer = await fake.wait_for("edit_original", lambda c: "not audio" in c.content, timeout=SLOW_S, after=mark)
        assert read(answer.content) == f"The file {clip(name, MAX_SHOWN_NAME)} is not audio we can read."

    attachment = fake.add_file("sunday take.mp3", JUNK)
    target = fake.message_payload(channel_id=GUILD + 1, content="my cover", author=user_payload(BOB),
                                  attachments=[attachment])
    mark = fake.mark()
    await fake.slash("Mood of this song", command_type=3, target_id=target["id"],
                     resolved={"messages": {target["id"]: target}})
    answer = await fake.wait_for("edit_original", lambda c: "not audio" in c.content, timeout=SLOW_S, after=mark)
    assert read(answer.content) == "The file sunday take.mp3 is not audio we can read."

    dave = 48
    await fake.slash("journal", [{"name": "on", "type": SUB_COMMAND, "options": [
        {"name": "time", "type": STRING, "value": "07:00"},
        {"name": "timezone", "type": STRING, "value": "Europe/Lisbon"}]}], user=dave)
    await private_answer(fake)
    await bot.scheduler.fire_now(UserRef("discord", str(dave)))
    mark = fake.mark()
    await fake.user_dms("", user=dave, attachments=[fake.add_file("late night.mp3", JUNK)])
    answer = await fake.wait_for("edit_message", lambda c: "not audio" in c.content, timeout=SLOW_S, after=mark)
    assert "The file late night.mp3 is not audio we can read." in read(answer.content)
