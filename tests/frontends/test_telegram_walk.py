"""A new user's walk through the Telegram front-end, in a private chat and in a group: each command
of /help typed as people get it wrong (alone, with a word too many, in reply to something, posted
as the group), and the answer says what is the matter and what to type instead, in the words the
console and Discord use for the same mistake."""
from __future__ import annotations

import pytest

from bot.frontends import render
from bot.frontends.telegram import (COMMAND_NAMES, FULL_WIDTH_SLASH_HINT, HELP_TAIL, JOURNAL_ANSWER_HERE, LINK_ALONE,
                                    NOT_A_SONG, PRIVATE_ONLY, SEND_A_SONG, SETTINGS_TAIL, STOP_HINT, TEXT_HINT)
from bot.usecases.help import JOURNAL_ALL_MEANT, unknown_button
from bot.usecases.journal import BAD_LIST_WORDS, JOURNAL_OFF, LIST_PAGE
from bot.usecases.playlists import DISABLED, NOT_IN_SERVER
from bot.usecases.privacy import NOTHING_TO_FORGET
from storage.models import UserRef
from tests.fakes.telegram_api import BOT_USERNAME
from tests.frontends.test_journal_pages import write_days
from tests.frontends.test_telegram import ALICE, BOB, GROUP, replies_to, said_in_group
from tests.frontends.test_telegram_not_a_song import KINDS, not_songs


async def test_serverplaylist_alone_says_whether_the_group_playlists_are_on(telegram):
    """'/serverplaylist' alone was its usage only, whether or not /playlist would answer (the
    console says which since c4fdcd7); it now says so, and who can change it."""
    fake, _ = telegram
    fake.admins[str(GROUP)] = {str(ALICE)}
    on = await said_in_group(fake, "/serverplaylist", BOB)
    assert on.startswith("Group playlists are on here") and "/serverplaylist off" in on and "admin" in on
    await said_in_group(fake, "/serverplaylist off", ALICE)
    assert await said_in_group(fake, "/serverplaylist", BOB) == render.placed(DISABLED, "group")
    await fake.user_sends("/serverplaylist")  # the private chat: there is nothing to switch there
    assert (await fake.wait_for("sendMessage")).text == render.placed(NOT_IN_SERVER, "group")


@pytest.mark.parametrize("kind", [*KINDS, "a picture"])
async def test_mood_in_reply_to_a_message_with_no_song_names_what_it_is(telegram, kind):
    """A bare '/mood' answering Bob's sticker, picture or location was its usage, as if it answered
    nothing (Discord's "Mood of this song" on such a message says it found no song there); it now
    names what it answered and what works instead, as '/mood' under a GIF does."""
    fake, _ = telegram
    content = {**not_songs(fake), "a picture": {"photo": fake.photo_attachment()}}[kind]
    bobs = {"message_id": 900, "date": 0, "chat": {"id": GROUP, "type": "supergroup", "title": "g"},
            "from": {"id": BOB, "is_bot": False, "first_name": "Bob"}, **content}
    answer = await said_in_group(fake, "/mood", ALICE, extra={"reply_to_message": bobs})
    assert answer == NOT_A_SONG.format(what=kind, how=SEND_A_SONG)


@pytest.mark.parametrize("typed, meant", [("/journal_list", "/journal list"), ("/journal_on 21:30 Europe/Lisbon", "/journal on"),
                                          ("/Journal_Delete_Last", "/journal delete last")])
async def test_a_command_joined_to_its_words_by_underscores_is_answered_with_it_spaced(telegram, typed, meant):
    """Telegram's commands are one word, so bots name theirs '/journal_list': typed so, it was 'I
    don't know that command' alone (no command is near enough to 'journal_list'); it now names the
    command with spaces, as a mistyped command's answer does."""
    fake, _ = telegram
    await fake.user_sends(typed)
    reply = await fake.wait_for("sendMessage")
    assert reply.text == f"I don't know {typed.split()[0]}. Did you mean {meant}? {HELP_TAIL}"


@pytest.mark.parametrize("typed", ["21:30 Europe/Lisbon", "9pm Lisbon", "07:15"])
async def test_journal_with_a_time_and_no_on_is_answered_with_the_command_meant(telegram, db, typed):
    """'/journal 21:30 Europe/Lisbon', the 'on' left out, was the whole usage, as for a word the
    journal has no use for; it is now the command with 'on', as the console says it. Nothing is
    turned on."""
    fake, _ = telegram
    await fake.user_sends(f"/journal {typed}")
    assert (await fake.wait_for("sendMessage")).text == f"Did you mean /journal on {typed}?"
    assert await db.users.get(UserRef("telegram", str(ALICE))) is None


async def test_journal_off_prompt_and_list_with_a_word_too_many_are_read_as_the_console_reads_them(telegram):
    """'/journal prompt now' and '/journal off now' were the whole usage, though the console runs
    them; they now run, and '/journal list 2 3' names the page it can't read, as the console does."""
    fake, _ = telegram
    said = await replies_to(fake, "/journal prompt now", "/journal off please", "/journal list 2 3")
    assert said[0] == JOURNAL_OFF and said[1].startswith("Journal off: no more daily prompts"), said
    assert said[2] == BAD_LIST_WORDS.format(page='2 3', limit=LIST_PAGE)


@pytest.mark.parametrize("typed, meant", [("stop", "Did you mean /journal off?"), ("Start", "Did you mean /journal on?"),
                                          ("show 2", "Did you mean /journal list 2?"), ("page 2", "Did you mean /journal list 2?"),
                                          ("lsit", "Did you mean /journal list?"), ("delete-all", JOURNAL_ALL_MEANT)])
async def test_a_journal_word_it_does_not_take_is_answered_with_the_nearest_it_does(telegram, db, typed, meant):
    """'/journal stop', '/journal show', '/journal start' were the usage alone, as for words nowhere
    near one of its own; they are now the sub-command meant, as a mistyped command is, and
    '/journal delete-all' is pointed to /forget (/journal delete deletes one entry). Nothing runs."""
    fake, _ = telegram
    assert await replies_to(fake, f"/journal {typed}") == [meant]
    assert await db.users.get(UserRef("telegram", str(ALICE))) is None


SPOTIFY_LINK = "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC?si=a1b2c3"
FORWARDED = {"forward_origin": {"type": "hidden_user", "sender_user_name": "Bob", "date": 1}}


@pytest.mark.parametrize("sent, forwarded", [(SPOTIFY_LINK, False), (f"listen to this!! {SPOTIFY_LINK}", True),
                                             ("https://youtu.be/dQw4w9WgXcQ", True)])
async def test_a_song_s_link_pasted_or_forwarded_alone_is_answered_with_the_command_for_it(telegram, sent, forwarded):
    """A link sent to the private chat without /mood (pasted, or a friend's message forwarded, which
    Telegram sends as text: a forwarded song file is heard) was the hint for any words, 'send /mood
    <song>'; it is now the command for that link, as the console answers a file's path typed alone."""
    fake, _ = telegram
    await fake.user_sends(sent, extra=FORWARDED if forwarded else None)
    link = sent.split()[-1]
    assert (await fake.wait_for("sendMessage")).text == LINK_ALONE.format(link=link)


CHANNEL_POST = {"forward_origin": {"type": "channel", "chat": {"id": -100777, "type": "channel", "title": "Night Radio"},
                                   "message_id": 7, "date": 1}}


@pytest.mark.parametrize("caption, forwarded, pictures", [
    (SPOTIFY_LINK, False, 1),
    (f"Radiohead – Creep, tonight's pick\n{SPOTIFY_LINK}", True, 1),
    (f"Radiohead – Creep, tonight's pick\n{SPOTIFY_LINK}", True, 3),  # an album: the cover, the band...
], ids=["a link alone", "a channel's post forwarded", "an album of a channel's post forwarded"])
async def test_a_picture_captioned_with_a_song_s_link_is_answered_with_the_command_for_it(telegram, caption, forwarded,
                                                                                         pictures):
    """A music channel's post, the cover with the song's link under it, forwarded to the private
    chat, was 'That's a picture, and I listen to music…', as a picture of no song; it is the command
    for that link, as the same words forwarded without the cover are."""
    fake, _ = telegram
    extra = CHANNEL_POST if forwarded else None
    if pictures == 1:
        await fake.user_sends(caption, photo=fake.photo_attachment(), extra=extra)
    else:
        await fake.user_sends_album([{"photo": fake.photo_attachment()} for _ in range(pictures)], caption, extra=extra)
    assert (await fake.wait_for("sendMessage")).text == LINK_ALONE.format(link=SPOTIFY_LINK)


@pytest.mark.parametrize("sent", ["https://example.com/song.mp3", "https://www.last.fm/music/Radiohead/_/Creep"])
async def test_a_link_no_mood_reads_sent_alone_still_gets_the_hint(telegram, sent):
    fake, _ = telegram
    await fake.user_sends(sent, extra=FORWARDED)
    assert (await fake.wait_for("sendMessage")).text == TEXT_HINT


@pytest.mark.parametrize("typed", ["/journal answer Radiohead - Creep", "/journal answer"])
async def test_journal_answer_says_how_a_prompt_is_answered_here(telegram, typed):
    """The console's '/journal answer <song>' (the README names it) was the whole /journal usage on
    Telegram, which never says how a prompt is answered; it now says: by a reply to it."""
    fake, _ = telegram
    await fake.user_sends(typed)
    assert (await fake.wait_for("sendMessage")).text == JOURNAL_ANSWER_HERE


async def test_no_reply_speaks_of_servers_which_telegram_has_none_of(telegram):
    """'/share on' said "the playlists of the servers and groups you use me in", /forget "on every
    server and group … which servers or groups you left" and then "group playlists" in one message,
    '/playlist' in the private chat "Playlists belong to a server or group": each now says "group"
    alone, as the other replies shared with Discord do."""
    fake, _ = telegram
    for said in await replies_to(fake, "/share on", "/share off", "/forget", "/playlist happy"):
        assert "server" not in said and "group" in said, said


async def test_settings_which_telegram_s_apps_send_from_the_bot_s_menu_says_what_is_set(telegram):
    """Telegram asks every bot to answer /settings, and its apps send it from the bot's profile
    menu: it was 'I don't know that command'. It now says whether the journal and sharing are on,
    and which commands change them; in a group, as the journal, it points to the private chat."""
    fake, _ = telegram
    said = await replies_to(fake, "/settings", "/journal on 21:30 Europe/Lisbon", "/share off", "/settings")
    assert said[0].splitlines()[:2] == ["Your journal is off.", "Sharing is on: your songs count in playlists. /share off stops it."]
    assert said[3].splitlines()[:2] == ["Your journal is on: your prompt comes every day at 21:30 (Europe/Lisbon).",
                                        "Sharing is off: your songs count in no playlist. /share on turns it back on."]
    assert said[3].splitlines()[2] == SETTINGS_TAIL
    assert await said_in_group(fake, "/settings", ALICE) == PRIVATE_ONLY.format(command="settings", bot=BOT_USERNAME)


@pytest.mark.parametrize("typed", ["/stop", "/unsubscribe"])
async def test_stop_which_people_send_a_bot_to_stop_it_says_how_the_prompts_and_the_data_go(telegram, typed):
    """'/stop' (or '/unsubscribe'), what people send a Telegram bot that writes to them, was 'I
    don't know that command'; it now names the commands that stop the prompts and delete the data."""
    fake, _ = telegram
    await fake.user_sends(typed)
    assert (await fake.wait_for("sendMessage")).text == STOP_HINT.format(typed=typed[1:])


async def test_help_and_a_bare_mood_in_a_group_say_a_song_someone_sent_is_asked_about_by_a_reply(telegram):
    """A bare '/mood' in reply to a song someone sent asks about it, but neither /help nor the
    group's '/mood' usage said so (Discord's /help names its message menu, "Mood of this song"), so
    a member wanting the mood of a song posted in the group was told to type or attach it again."""
    fake, _ = telegram
    usage = await said_in_group(fake, "/mood", ALICE)
    assert "reply /mood to" in usage, usage
    await fake.user_sends("/help")
    mood_line = (await fake.wait_for("sendMessage")).text.splitlines()[2]
    assert mood_line.startswith("/mood <song") and "reply /mood to" in mood_line, mood_line


async def test_a_message_posted_as_the_group_is_told_why_it_must_be_sent_as_oneself(telegram):
    """'Post as yourself to use this.' did not say why: an anonymous admin may not know their
    messages go out under the group's name. It now says so, and what it keeps the bot from."""
    fake, _ = telegram
    await fake.user_sends("/share off", chat=GROUP, anonymous=True)
    said = (await fake.wait_for("sendMessage")).text
    assert said.startswith("That was posted as a group or channel") and said.endswith("post as yourself to use this.")


@pytest.mark.parametrize("data, command", [("mood:again:5", "/mood"), ("forget:yes", "/forget"),
                                           ("v1|page|2", None)])
async def test_a_button_the_bot_does_not_know_is_answered_with_what_to_type(telegram, caplog, data, command):
    """A press on a button of an earlier version (or crafted data) went unanswered, or to the
    apology ('forget:yes', without its owner), so its spinner turned until Telegram gave up; it is
    now answered with what to type instead, and logged for the operator."""
    fake, _ = telegram
    await fake.user_sends("/help")
    shown = await fake.wait_for("sendMessage")
    await fake.user_clicks(data, message=shown)
    answer = await fake.wait_for("answerCallbackQuery")
    assert answer.params["text"] == unknown_button(data, COMMAND_NAMES) and answer.params["show_alert"] in (True, "true")
    assert f"type {command or 'the command'} again" in answer.params["text"]
    assert [r.data for r in caplog.records if r.getMessage() == "telegram.unknown_button"] == [data]


async def test_forget_with_nothing_stored_says_there_was_nothing_to_delete(telegram):
    """A new user trying /forget was told 'Done: I deleted everything about you (0 records) and
    stopped your daily prompt', of data and a prompt they never had; it now says so plainly."""
    fake, _ = telegram
    await fake.user_sends("/forget")
    question = await fake.wait_for("sendMessage")
    await fake.user_clicks(f"forget:yes:{ALICE}", message=question, user=ALICE)
    assert (await fake.wait_for("editMessageText")).text == NOTHING_TO_FORGET


async def test_words_after_stats_or_export_are_said_to_be_left_aside(telegram, db):
    """'/stats last month' and '/export csv' were '/stats' and '/export', the words never mentioned."""
    fake, _ = telegram
    await write_days(db, "telegram", ALICE, 3)
    mark = fake.mark()
    await fake.user_sends("/stats last month")
    stats = (await fake.wait_for("sendMediaGroup", after=mark)).text.split("\n\n")[0]  # the album's words
    assert stats.endswith("/stats takes no words, so “last month” was left aside: these are of your whole journal. "
                          "/journal list <month> lists a month's entries, e.g. /journal list December.")
    mark = fake.mark()
    await fake.user_sends("/export csv")
    caption = (await fake.wait_for("sendDocument", after=mark)).params["caption"]
    assert caption.endswith("\n/export takes no words, so “csv” was left aside: the file holds everything, as JSON.")


@pytest.mark.parametrize("typed, meant", [("／mood Creep", "mood Creep"), ("／ｊｏｕｒｎａｌ list", "journal list"),
                                          ("／Help", "Help")], ids=["mood", "full-width letters", "capitalised"])
async def test_a_command_typed_with_a_full_width_slash_is_answered_with_it(telegram, typed, meant):
    """A Chinese or Japanese input method in full-width mode types '／' for '/' (and 'ｍｏｏｄ' for
    'mood'), which Telegram takes for no command: it got the hint for any words, where the console
    reads the command."""
    fake, _ = telegram
    await fake.user_sends(typed)
    assert (await fake.wait_for("sendMessage")).text == FULL_WIDTH_SLASH_HINT.format(typed=meant)
