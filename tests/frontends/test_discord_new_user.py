"""A new user's walk through the Discord commands, typed the way people get them wrong: each reply
says what was understood and what to type next, as the console and Telegram say it."""
from __future__ import annotations

import pytest

from bot.frontends.discord.journal import typed_command_hint
from bot.frontends.discord.mood import DISCORD_FILE_LINK, NO_SONG_IN_MESSAGE
from bot.frontends.render import placed
from bot.replies import QUERY_LEFT_ASIDE, STAGE_FINDING, STAGE_LISTENING
from bot.sources.query import ONLY_MARKUP
from bot.usecases.help import JOURNAL_ALL_MEANT, NO_SLASH, did_you_mean
from bot.usecases.journal import ANSWER_IN_THE_DM, NOT_SAVED_TO_JOURNAL, TIME_MISSING
from bot.usecases.mood import SPOTIFY_OFF_ERROR
from bot.usecases.playlists import DISABLED, ENABLED, ON_NOW
from tests.fakes.discord_api import EPHEMERAL
from tests.frontends.conftest import read  # a name in a refusal: unlinked, read the same
from tests.frontends.test_discord import (ALICE, ATTACHMENT, BOB, GUILD, SPOTIFY_TRACK, STRING, dm_answer, message_command,
                                         open_a_prompt, private_answer, sub)
from storage.models import UserRef
from tests.frontends.test_discord_mood_notes import cached_file
from tests.frontends.test_discord_query_markup import searched, spotify_and_discord


@pytest.mark.parametrize("typed, answer", [
    ("21:30 Europe/Lisbon", "Journal on: every day at 21:30 (Europe/Lisbon)"),
    ("07:05 America/New York", "Journal on: every day at 07:05 (America/New_York)"),
    ("9pm Europe/Lisbon", "I need the time as HH:MM on a 24-hour clock: 9pm is 21:00: /journal on 21:00 Europe/Lisbon."),
])
async def test_journal_on_with_the_zone_typed_in_the_time_option_reads_both(discord_bot, typed, answer):
    """Discord puts what follows '/journal on ' in its first option, spaces and all: the command the
    bot's own replies give ('/journal on 21:30 Europe/Lisbon'), typed as is, left the zone in the
    time and was answered with the usage, as if nothing had been typed. Read as the console reads
    the same words: the time, then the zone."""
    fake, _ = discord_bot
    await fake.slash("journal", sub("on", time=typed))
    assert (await private_answer(fake)).content.startswith(answer)


@pytest.mark.parametrize("typed, meant", [("/moood Creep", "mood"), ("/journl on 21:30", "journal"),
                                          ("/Stat", "stats"), ("/playlists calm", "playlist"),
                                          ("/journal_list", "journal list"), ("/journal_on 21:30", "journal on"),
                                          # Words people use for a command (help.COMMAND_SYNONYMS): no misspelling of it.
                                          ("/charts", "stats"), ("/history 2", "journal list"), ("/download", "export"),
                                          ("/delete last", "journal delete"), ("/diary", "journal")])
async def test_a_mistyped_command_sent_in_the_dm_is_told_the_command_meant(scheduled, typed, meant):
    """'/moood' sent in the DM was 'I don't know that command' alone, where the console and Telegram
    name the command most likely meant: it now does too, with how Discord runs it (picked from its
    list, in a server for a server's command); '/journal_list', as Telegram names one-word commands,
    is /journal list; '/charts', a word people use for /stats, is /stats as there (COMMAND_SYNONYMS)."""
    fake, _ = scheduled
    await fake.wait_for("sync_commands", after=0)
    mark = fake.mark()
    await fake.user_dms(typed)
    answer = (await fake.wait_for("send_message", after=mark)).content
    name = typed.split()[0][1:]
    assert answer == (did_you_mean(name, [meant.split()[0]]) + " "
                      + typed_command_hint(meant, in_servers_only=meant == "playlist"))


def option(fake, command: str, name: str) -> dict:
    """The synced option `name` of `command`."""
    return next(o for o in next(c for c in fake.commands if c["name"] == command)["options"] if o["name"] == name)


async def test_share_alone_says_whether_your_songs_count_now(discord_bot):
    """A user asking whether their songs count had no way to: /share's choice was required. Left
    out, /share now says whether sharing is on and the command that changes it, as the console and
    Telegram say it."""
    fake, _ = discord_bot
    await fake.wait_for("sync_commands", after=0)
    assert not option(fake, "share", "choice").get("required")
    await fake.slash("share", guild=GUILD)
    assert (await private_answer(fake)).content == "Sharing is on: your songs count in playlists. /share off stops it."
    await fake.slash("share", [{"name": "choice", "type": STRING, "value": "off"}])
    await private_answer(fake)
    await fake.slash("share")
    assert (await private_answer(fake)).content == ("Sharing is off: your songs count in no playlist. "
                                                    "/share on turns it back on.")


async def test_serverplaylist_alone_says_whether_the_playlists_are_on_now(discord_bot):
    """As the console's /serverplaylist alone: whether /playlist and /servermood answer here."""
    fake, _ = discord_bot
    await fake.wait_for("sync_commands", after=0)
    assert not option(fake, "serverplaylist", "state").get("required")
    fake.admins.add(ALICE)
    await fake.slash("serverplaylist", guild=GUILD)
    assert (await private_answer(fake)).content == placed(ON_NOW, "server")
    await fake.slash("serverplaylist", [{"name": "state", "type": STRING, "value": "off"}], guild=GUILD)
    await private_answer(fake)
    await fake.slash("serverplaylist", guild=GUILD)
    assert (await private_answer(fake)).content == placed(DISABLED, "server")


NOT_SOUND = [("cat.png", "image/png", b"\x89PNG\r\n\x1a\n"), ("setlist.pdf", "application/pdf", b"%PDF-1.4"),
             ("lyrics.txt", "text/plain; charset=utf-8", b"Creep")]


def a_file(fake, name: str, content_type: str, head: bytes) -> dict:
    attachment = fake.add_file(name, head + b"\0" * 64)
    attachment["content_type"] = content_type
    return attachment


@pytest.mark.parametrize("name, content_type, head", NOT_SOUND)
async def test_a_file_that_is_plainly_not_sound_given_to_mood_is_refused_without_a_download(discord_bot, name,
                                                                                            content_type, head):
    """A picture or a PDF attached to /mood was downloaded and 'listened to' before the answer that
    it is not audio: refused at once by its type, as Telegram refuses such a document."""
    fake, _ = discord_bot
    picture = a_file(fake, name, content_type, head)
    await fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": picture["id"]}],
                     resolved={"attachments": {picture["id"]: picture}}, guild=GUILD)
    refusal = await fake.wait_for("followup")  # a refusal in a server: to the asker alone
    assert read(refusal.content) == f"The file {name} is not audio we can read." and refusal.flags & EPHEMERAL
    assert not fake.calls_of("download")
    assert STAGE_LISTENING not in [c.content for c in fake.calls_of("edit_original")]


async def test_a_picture_sent_alone_to_answer_the_prompt_is_refused_without_a_download(scheduled):
    fake, _ = scheduled
    await open_a_prompt(fake)
    await fake.user_dms("", attachments=[a_file(fake, *NOT_SOUND[0])])
    assert read((await dm_answer(fake)).content) == "The file cat.png is not audio we can read."
    assert not fake.calls_of("download")


@pytest.mark.parametrize("content", ["Creep by Radiohead", "/play Creep Radiohead"])
async def test_the_message_command_on_a_song_named_in_words_searches_those_words(db, content):
    """'Mood of this song' on a friend's 'Creep by Radiohead' was 'I found no link or audio file in
    that message', sent to type /mood query:<name>; Telegram's /mood in reply to such a message
    searches its words (a music bot's '/play Creep' without its command), and so does this now."""
    async with spotify_and_discord(db) as (fake, spotify, _):
        await message_command(fake, content, guild=GUILD)
        answer = await fake.wait_for("edit_original", lambda c: bool(c.embeds))
        assert answer.embeds[0]["title"] == "Radiohead – Creep" and "sad" in str(answer.embeds[0]).lower()
        assert all("/play" not in q for q in searched(spotify))


@pytest.mark.parametrize("content, said, call", [("<:radiohead:123456789012345678> <@42>", ONLY_MARKUP, "followup"),
                                                 ("", NO_SONG_IN_MESSAGE, "interaction_callback")])
async def test_the_message_command_on_a_message_naming_no_song_says_so(discord_bot, content, said, call):
    """Discord's emoji and mentions alone name no song, as /mood with them alone says; a message of
    no words (a sticker, an embed) is told how to ask by a song's name."""
    fake, _ = discord_bot
    await message_command(fake, content, guild=GUILD)
    reply = await fake.wait_for(call)
    assert reply.content.startswith(said) and reply.flags & EPHEMERAL
    assert not fake.calls_of("download")


@pytest.mark.parametrize("zone, named", [("Europe/Lisbon", "Europe/Lisbon"), ("Lisbon", "Europe/Lisbon")])
async def test_journal_on_with_the_zone_alone_asks_for_the_time_alone(discord_bot, zone, named):
    """Discord's time-zone option, autocompleted, filled and the time left out by a user with nothing
    saved was answered with the usage, as if no zone had been typed: the zone is understood, and only
    the time asked for, as a time alone asks for the zone alone."""
    fake, _ = discord_bot
    await fake.slash("journal", sub("on", timezone=zone))
    assert (await private_answer(fake)).content == TIME_MISSING.format(zone=named)
    assert f"/journal on 21:30 {named}" in TIME_MISSING.format(zone=named)


@pytest.mark.parametrize("typed, name", [("/journal list", "journal list"), ("/journal Delete last", "journal delete"),
                                         ("/journal on 21:30 Europe/Lisbon", "journal on"),
                                         ("/journal dance", "journal"), ("/journal", "journal")])
async def test_a_journal_command_sent_as_text_in_the_dm_is_named_with_its_sub_command(scheduled, typed, name):
    """'/journal list' sent as text was told to 'type /journal, pick it…': Discord's list offers
    '/journal list' itself, so the hint names that (a word that is none of its sub-commands: /journal)."""
    fake, _ = scheduled
    assert await answered_in_the_dm(fake, typed) == typed_command_hint(name)


async def answered_in_the_dm(fake, typed: str) -> str:
    """What the bot answers `typed` sent as text to its DM, once its commands are synced."""
    await fake.wait_for("sync_commands", after=0)
    mark = fake.mark()
    await fake.user_dms(typed)
    return (await fake.wait_for("send_message", after=mark)).content


@pytest.mark.parametrize("typed, meant, named", [("/journal stop", "Did you mean /journal off?", "journal off"),
                                                 ("/journal show 2", "Did you mean /journal list 2?", "journal list"),
                                                 ("/journal delete-all", JOURNAL_ALL_MEANT, "forget")])
async def test_a_journal_word_it_does_not_take_sent_as_text_is_named_with_the_sub_command_meant(scheduled, typed,
                                                                                               meant, named):
    """'/journal stop' sent as text was told to pick /journal from the list, as for any word; it now
    names the sub-command meant, as the console and Telegram do, and how Discord runs it."""
    fake, _ = scheduled
    assert await answered_in_the_dm(fake, typed) == f"{meant} {typed_command_hint(named)}"


async def test_serverplaylist_alone_from_a_member_who_is_no_admin_does_not_offer_the_switch(discord_bot):
    """A server may let any role use /serverplaylist (Integrations): a member who is no admin is told
    whether the playlists are on, not that '/serverplaylist off' turns them off, which refuses them."""
    fake, _ = discord_bot
    await fake.slash("serverplaylist", guild=GUILD, user=BOB)
    assert (await private_answer(fake)).content == placed(ENABLED, "server")


DISCORD_FILE = "https://cdn.discordapp.com/attachments/1111/2222/Creep.mp3?ex=6756&is=6755&hm=ab12"


@pytest.mark.parametrize("where", ["/mood", "message command"])
async def test_a_link_to_a_file_on_discord_is_answered_with_how_to_give_the_file(discord_bot, where):
    """A song file's 'Copy Link' pasted into /mood (or a message holding such a link) was 'I can't
    open links to cdn.discordapp.com', with no way to the file: it now says how to hand the file
    itself over, attached to /mood or by the message command on the message it was sent in."""
    fake, _ = discord_bot
    if where == "/mood":
        await fake.slash("mood", [{"name": "query", "type": STRING, "value": f"this one {DISCORD_FILE}"}], guild=GUILD)
    else:
        await message_command(fake, DISCORD_FILE.replace("cdn.discordapp.com", "media.discordapp.net"), guild=GUILD)
    refusal = await fake.wait_for("interaction_callback")
    assert refusal.content == DISCORD_FILE_LINK and refusal.flags & EPHEMERAL
    assert "attach" in refusal.content and "Mood of this song" in refusal.content
    assert not fake.calls_of("download")


async def test_mood_with_a_song_named_and_a_picture_attached_hears_the_song(discord_bot):
    """A screenshot of the player attached to /mood beside the song's link is not the song: it was
    refused as not audio (and, before, 'listened to'); the song typed is heard, as a DM answering
    the prompt with both is."""
    fake, _ = discord_bot
    picture = a_file(fake, *NOT_SOUND[0])
    await fake.slash("mood", [{"name": "query", "type": STRING, "value": SPOTIFY_TRACK},
                              {"name": "file", "type": ATTACHMENT, "value": picture["id"]}],
                     resolved={"attachments": {picture["id"]: picture}}, guild=GUILD)
    assert (await fake.wait_for("followup")).content == SPOTIFY_OFF_ERROR  # the link was read (no Spotify here)
    assert not fake.calls_of("download")


@pytest.mark.parametrize("typed, said", [("21h", "21:00"), ("9h", "09:00"), ("21:30h", "21:30"), ("21:30:00", "21:30"),
                                         ("07.05:00", "07:05")])
async def test_a_24_hour_time_written_otherwise_is_answered_with_the_command_to_type(discord_bot, typed, said):
    """'21h' (as French and German write it), '21:30h' or a schedule's '21:30:00' was 'I need the time
    as HH:MM on a 24-hour clock, e.g. /journal on 21:30 …' though the time was plain; the reply now
    gives it as HH:MM with the command to type, as '2130' and '9pm' are answered, still taking nothing."""
    fake, _ = discord_bot
    await fake.slash("journal", sub("on", time=typed, timezone="Europe/Lisbon"))
    assert (await private_answer(fake)).content == (f"I need the time as HH:MM on a 24-hour clock: {typed} is {said}: "
                                                    f"/journal on {said} Europe/Lisbon.")


@pytest.mark.parametrize("typed, name", [("journal list", "journal list"), ("Mood Creep", "mood"), ("help", "help")])
async def test_a_command_sent_without_its_slash_when_no_prompt_is_open_is_said_how_to_run(discord_bot, typed, name):
    """A new user's first DM is often a command without its slash: with no prompt to answer it was
    told there is none, where the console and Telegram say 'Commands start with a slash: did you
    mean /journal list?'; it now says that, with how Discord runs it. With a prompt open the words
    are its answer (a song may be called Help)."""
    fake, _ = discord_bot
    await fake.wait_for("sync_commands", after=0)
    mark = fake.mark()
    await fake.user_dms(typed)
    answer = await fake.wait_for("send_message", after=mark)
    assert answer.content == f"{NO_SLASH.format(typed=typed)} {typed_command_hint(name)}"


async def test_a_command_name_sent_while_a_prompt_is_open_answers_it(scheduled, db):
    fake, _ = scheduled
    await open_a_prompt(fake)
    mark = fake.mark()
    await fake.user_dms("help")
    assert (await dm_answer(fake)).content != f"{NO_SLASH.format(typed='help')} {typed_command_hint('help')}"
    assert fake.calls_of("send_message", after=mark)[0].content == STAGE_FINDING  # looked for as a song


@pytest.mark.parametrize("typed, note", [("/mood", None), ("/Mood Creep", QUERY_LEFT_ASIDE)])
@pytest.mark.parametrize("prompt_open", [False, True])
async def test_an_audio_file_sent_to_the_dm_with_mood_as_its_text_is_heard(scheduled, db, typed, note, prompt_open):
    """A file sent to the DM with '/mood' as its text was told how to run /mood, and not heard: it
    is heard, as /mood with the file attached hears it (words typed after /mood left aside, said
    so). It asks for the file's mood: an open prompt is not answered (and the answer says so, with
    how to answer it), and takes the next song."""
    fake, _ = scheduled
    if prompt_open:
        await open_a_prompt(fake)
    take = await cached_file(fake, db)
    await fake.user_dms(typed, attachments=[take])
    answer = await dm_answer(fake)
    assert answer.embeds and answer.embeds[0]["title"] == "take1", answer
    not_saved = NOT_SAVED_TO_JOURNAL.format(how=ANSWER_IN_THE_DM) if prompt_open else None
    assert (answer.content or None) == ("\n".join(filter(None, (note, not_saved))) or None)
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 0
    if prompt_open:
        await fake.user_dms("", attachments=[take])
        await dm_answer(fake)
        assert await db.journal.count(UserRef("discord", str(ALICE))) == 1


async def test_a_picture_sent_to_the_dm_with_mood_as_its_text_is_refused_as_mood_refuses_it(scheduled):
    fake, _ = scheduled
    await fake.user_dms("/mood", attachments=[a_file(fake, *NOT_SOUND[0])])
    assert read((await dm_answer(fake)).content) == "The file cat.png is not audio we can read."
    assert not fake.calls_of("download")
