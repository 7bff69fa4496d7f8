"""A group's /playlist and /servermood as its members type and read them: a mood typed in another
form than the command's word, a playlist longer than what one answer lists, and which days the
mood of the week counts."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from bot.usecases.playlists import ONE_MOOD
from storage.models import MoodRequest, UserRef
from storage.schema import REQUESTS
from tests.bot.test_server_playlists import songs_asked
from tests.frontends.test_telegram import ALICE, BOB, GROUP, said_in_group
from tests.frontends.test_telegram_note_titles import cached, day, media

PLACE = f"telegram:{GROUP}"


async def test_a_mood_typed_as_the_playlist_shows_it_is_that_mood(telegram, db):
    """The playlist's heading is '😢 sad playlist:' and the group's keyboard '😢 sad': its emoji,
    the label copied whole, a capital or a hashtag are the mood, not "isn't one of the moods"."""
    fake, _ = telegram
    await songs_asked(db, PLACE, BOB, 1, "sad")
    await songs_asked(db, PLACE, BOB, 1, "energetic")
    for typed, heading in (("😢", "😢 sad"), ("😢 sad", "😢 sad"), ("Sad!", "😢 sad"), ("#sad", "😢 sad"),
                           ("⚡\ufe0f", "⚡ energetic")):
        answer = await said_in_group(fake, f"/playlist {typed}", ALICE)
        assert answer.startswith(f"{heading} playlist:\n1. "), (typed, answer)


async def test_a_mood_among_other_words_or_a_word_for_a_mood_is_answered_with_the_command(telegram):
    """'/playlist sad songs' names one mood: "one mood at a time" told the user they had named
    two. A word for a mood that is not one ('chill') is answered with the mood it is likely to mean."""
    fake, _ = telegram
    assert await said_in_group(fake, "/playlist sad songs", ALICE) == "Did you mean /playlist sad?"
    assert await said_in_group(fake, "/playlist chill", ALICE) == (
        "“chill” isn't one of the moods I know: happy, energetic, sad, calm. Did you mean /playlist calm?")
    # The model's energetic is the tense quadrant (README: high arousal, negative valence): anger's.
    assert await said_in_group(fake, "/playlist Angry", ALICE) == (
        "“Angry” isn't one of the moods I know: happy, energetic, sad, calm. Did you mean /playlist energetic?")
    assert await said_in_group(fake, "/playlist banana", ALICE) == (
        "“banana” isn't one of the moods I know: happy, energetic, sad, calm.")
    assert await said_in_group(fake, "/playlist happy sad", ALICE) == ONE_MOOD


MORE_NOT_SHOWN = "…and 5 more not shown (those picked by the most members come first, then the latest picked)."


async def test_a_playlist_longer_than_its_twenty_songs_says_how_many_more_and_which_come_first(telegram, db):
    """25 sad songs: the answer listed 20 as if they were all, and said nothing of its order."""
    fake, _ = telegram
    await songs_asked(db, PLACE, BOB, 25, "sad")
    *_, twentieth, more = (await said_in_group(fake, "/playlist sad", ALICE)).splitlines()
    assert twentieth.startswith("20. Artist – Sad song 19 ") and more == MORE_NOT_SHOWN


async def test_the_mood_of_the_week_says_which_days_and_what_it_counts(telegram, db):
    """'This week's mood here: 😢 sad (sad 3)': a calendar week, or since when? three what? It is
    the last 7 days, one vote per member and song; a song of 8 days ago is not in it."""
    fake, _ = telegram
    assert await said_in_group(fake, "/servermood", ALICE) == (
        "Nobody here classified or journaled a song in the last 7 days. Try /mood!")
    await songs_asked(db, PLACE, BOB, 3, "sad")
    await songs_asked(db, PLACE, ALICE, 1, "happy", at=datetime.now(timezone.utc) - timedelta(days=8))
    assert await said_in_group(fake, "/servermood", ALICE) == (
        "This week's mood here: 😢 sad\n(the last 7 days, one vote per member and song: sad 3)")


async def test_a_member_who_stopped_sharing_is_told_why_their_songs_are_not_in_the_playlist(telegram, db):
    """Bob classified three sad songs in the group, then sent /share off: they leave the group's
    playlist at once. His own /playlist sad said "No sad songs here yet. Classify some with /mood!",
    which he had just done; it says his songs are left out while his sharing is off, and how to count them."""
    fake, _ = telegram
    await songs_asked(db, PLACE, BOB, 3, "sad")
    assert (await said_in_group(fake, "/share off", BOB)).startswith("Sharing off")
    assert await said_in_group(fake, "/playlist sad", ALICE) == "No sad songs here yet. Classify some with /mood!"
    assert await said_in_group(fake, "/playlist sad", BOB) == (
        "No sad songs here yet. Classify some with /mood!\n"
        "Your own songs are left out: your sharing is off. /share on counts them.")
    assert (await said_in_group(fake, "/share on", BOB)).startswith("Sharing on")
    assert (await said_in_group(fake, "/playlist sad", BOB)).startswith("😢 sad playlist:\n1. ")


async def test_a_member_who_stopped_sharing_is_told_why_their_songs_are_not_in_the_mood_of_the_week(telegram, db):
    """Bob, the one who classified songs this week, sent /share off: his /servermood said "Nobody
    here classified or journaled a song in the last 7 days", of his own songs of that week. It says
    his are left out, as /playlist does; the others read the mood as it is."""
    fake, _ = telegram
    await songs_asked(db, PLACE, BOB, 2, "sad")
    assert (await said_in_group(fake, "/share off", BOB)).startswith("Sharing off")
    nobody = "Nobody here classified or journaled a song in the last 7 days. Try /mood!"
    assert await said_in_group(fake, "/servermood", ALICE) == nobody
    assert await said_in_group(fake, "/servermood", BOB) == (
        f"{nobody}\nYour own songs are left out: your sharing is off. /share on counts them.")


async def test_an_empty_playlist_names_the_moods_that_have_songs_here(telegram, db):
    """'No happy songs here yet' read the same in a group with no song at all and in one with 25
    sad songs: the moods that have some are named, with the command for each."""
    fake, _ = telegram
    await songs_asked(db, PLACE, BOB, 3, "sad")
    await songs_asked(db, PLACE, BOB, 1, "calm")
    assert await said_in_group(fake, "/playlist happy", ALICE) == (
        "No happy songs here yet. Classify some with /mood!\n"
        "Other moods have songs here: /playlist sad (3), /playlist calm (1).")


async def test_a_member_who_forgets_everything_is_gone_from_the_playlist_at_once(telegram, db):
    fake, _ = telegram
    await songs_asked(db, PLACE, BOB, 2, "sad")
    assert (await said_in_group(fake, "/playlist sad", ALICE)).startswith("😢 sad playlist:\n1. ")
    await fake.user_sends("/forget", user=BOB, chat=BOB)
    question = await fake.wait_for("sendMessage", lambda c: "reply_markup" in c.params)
    await fake.user_clicks(f"forget:yes:{BOB}", message=question, user=BOB)
    assert (await fake.wait_for("editMessageText")).text.startswith("Done: I deleted everything")
    assert await said_in_group(fake, "/playlist sad", ALICE) == "No sad songs here yet. Classify some with /mood!"


async def test_the_mood_of_the_week_asked_in_a_private_chat_is_said_to_be_a_group_s(telegram):
    """/servermood in the private chat was answered "Playlists belong to a group", which it had not asked about."""
    fake, _ = telegram
    await fake.user_sends("/servermood", user=ALICE, chat=ALICE)
    assert (await fake.wait_for("sendMessage")).text == (
        "The mood of the week belongs to a group: use /servermood there, not in a private chat.")


# A supergroup's id as Telegram gives it ("-100" and its internal id), and a basic group's.
SUPERGROUP, INTERNAL_ID, BASIC_GROUP = -1001234567890, 1234567890, -4242


async def voice_heard(fake, db, chat: int, user: int, audio: bytes, **sent) -> dict:
    """`user` sends /mood with a voice note of `audio` (sad, in the cache) in `chat` (`sent`: more
    of `user_sends`, its `extra` too); returns the message, once answered."""
    mark = fake.mark()
    message = (await fake.user_sends("/mood", chat=chat, user=user, first_name="Bob" if user == BOB else "Alice",
                                     **{**sent, "extra": {**media(fake, "voice", await cached(db, audio)),
                                                          **sent.get("extra", {})}}))["message"]
    await fake.wait_for_reply(lambda c: "Mood:" in c.text, after=mark)
    return message


async def sad_playlist(fake, db, chat: int, **sent) -> list[str]:
    """The lines of the sad playlist Alice is shown in `chat`, after its heading."""
    await db.requests.settled()
    mark = fake.mark()
    await fake.user_sends("/playlist sad", chat=chat, user=ALICE, **sent)
    return (await fake.wait_for("sendMessage", after=mark)).text.splitlines()[1:]


async def test_a_voice_note_heard_in_a_supergroup_is_listed_with_a_link_to_its_message(telegram, db):
    """A file is known by its name alone ("Voice note by Bob, 5 Dec 2026"), which nobody else can
    play: the playlist links the message it was sent in, by the group's public name where it has
    one, else by the link Telegram gives its members (t.me/c/<internal id>/<message>)."""
    fake, _ = telegram
    sent = await voice_heard(fake, db, SUPERGROUP, BOB, b"OggS Bob singing")
    assert await sad_playlist(fake, db, SUPERGROUP) == [
        f"1. Voice note by Bob, {day(sent['date'])} https://t.me/c/{INTERNAL_ID}/{sent['message_id']}"]

    public = {"id": SUPERGROUP - 1, "type": "supergroup", "title": "Fans", "username": "moodfans"}
    sent = await voice_heard(fake, db, public["id"], BOB, b"OggS Bob singing", extra={"chat": public})
    assert await sad_playlist(fake, db, public["id"], extra={"chat": public}) == [
        f"1. Voice note by Bob, {day(sent['date'])} https://t.me/moodfans/{sent['message_id']}"]


async def alice_asks_about_bobs_voice_note(fake, db) -> dict:
    """Bob's voice note in the supergroup, and Alice's /mood in reply to it, answered: Bob's message."""
    bobs = (await fake.user_sends(None, chat=SUPERGROUP, user=BOB, first_name="Bob",
                                  extra=media(fake, "voice", await cached(db, b"OggS Bob singing"))))["message"]
    mark = fake.mark()
    await fake.user_sends("/mood", chat=SUPERGROUP, user=ALICE, extra={"reply_to_message": bobs})
    await fake.wait_for_reply(lambda c: "Mood:" in c.text, after=mark)
    return bobs


async def test_a_voice_note_asked_about_in_reply_links_the_message_that_holds_it(telegram, db):
    """Alice's /mood in reply to Bob's voice note: the link is to Bob's message, which holds the file."""
    fake, _ = telegram
    bobs = await alice_asks_about_bobs_voice_note(fake, db)
    assert await sad_playlist(fake, db, SUPERGROUP) == [
        f"1. Voice note by Bob, {day(bobs['date'])} https://t.me/c/{INTERNAL_ID}/{bobs['message_id']}"]


async def test_a_voice_note_heard_in_a_basic_group_is_listed_by_its_name_alone(telegram, db):
    """A basic group's messages have no links: none is made up."""
    fake, _ = telegram
    sent = await voice_heard(fake, db, BASIC_GROUP, BOB, b"OggS Bob singing", chat_type="group")
    assert await sad_playlist(fake, db, BASIC_GROUP, chat_type="group") == [
        f"1. Voice note by Bob, {day(sent['date'])}"]


async def test_an_upload_recorded_before_links_were_kept_is_listed_by_its_name_beside_a_linked_one(telegram, db):
    """Requests written before this change hold no link: Bob's two files are listed by their names,
    and the one Alice sent again since links her message."""
    fake, _ = telegram
    place, before = f"telegram:{SUPERGROUP}", datetime.now(timezone.utc) - timedelta(days=1)
    for audio, title in ((b"OggS first take", "first take"), (b"OggS second take", "second take")):
        key = "sha256:" + hashlib.sha256(await cached(db, audio)).hexdigest()
        await db.requests.add(MoodRequest(UserRef("telegram", str(BOB)), place, key, "sad", before, title=title))
    sent = await voice_heard(fake, db, SUPERGROUP, ALICE, b"OggS first take")
    assert await sad_playlist(fake, db, SUPERGROUP) == [
        f"1. first take (2 members) https://t.me/c/{INTERNAL_ID}/{sent['message_id']}", "2. second take"]


async def test_a_file_heard_in_a_private_chat_keeps_no_link_and_is_not_the_group_s(telegram, db):
    """Nobody else can open a private chat's message: no link is kept, and the file is not the group's."""
    fake, _ = telegram
    await songs_asked(db, f"telegram:{SUPERGROUP}", ALICE, 1, "sad")
    await voice_heard(fake, db, ALICE, ALICE, b"OggS Alice humming")
    assert await sad_playlist(fake, db, SUPERGROUP) == [
        "1. Artist – Sad song 0 https://open.spotify.com/track/sad0"]
    [upload] = await db.db[REQUESTS].find({"track_key": {"$regex": "^sha256:"}}).to_list()
    assert upload["place"] is None and "source_link" not in upload
