"""Alice's /mood in reply to Bob's voice note: the group's playlist lists it as "Voice note by Bob,
5 Dec 2026" with a link to his message. Bob's /forget left both in the playlist, and in Alice's
request, which it does not delete: they read "Voice note, 5 Dec 2026", without the link."""
from __future__ import annotations

from tests.frontends.test_discord import BOB as DISCORD_BOB
from tests.frontends.test_discord_voice_messages import cached as discord_cached
from tests.frontends.test_discord_voice_messages import mood_of_bobs_message, server_playlist
from tests.frontends.test_playlists_as_used import INTERNAL_ID, SUPERGROUP, alice_asks_about_bobs_voice_note, sad_playlist
from tests.frontends.test_telegram import BOB
from tests.frontends.test_telegram_note_titles import day


async def test_bob_s_forget_takes_his_name_and_message_out_of_the_playlist_alice_made_of_his_voice_note(telegram, db):
    fake, _ = telegram
    bobs = await alice_asks_about_bobs_voice_note(fake, db)
    assert await sad_playlist(fake, db, SUPERGROUP) == [
        f"1. Voice note by Bob, {day(bobs['date'])} https://t.me/c/{INTERNAL_ID}/{bobs['message_id']}"]

    mark = fake.mark()
    await fake.user_sends("/forget", user=BOB, chat=BOB)
    question = await fake.wait_for("sendMessage", lambda c: "reply_markup" in c.params, after=mark)
    await fake.user_clicks(f"forget:yes:{BOB}", message=question, user=BOB)
    await fake.wait_for("editMessageText", after=mark)

    assert await sad_playlist(fake, db, SUPERGROUP) == [f"1. Voice note, {day(bobs['date'])}"]


async def test_bob_s_forget_takes_his_name_out_of_the_server_playlist_made_of_his_discord_voice_message(discord_bot,
                                                                                                       db):
    """The same on Discord: another member's "Mood of this song" on Bob's voice message."""
    fake, _ = discord_bot
    await mood_of_bobs_message(fake, fake.add_voice_message(await discord_cached(db, b"OggS Bob humming"),
                                                            duration_secs=31.5))
    await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    assert "1. Voice note by Bob, 1 Mar 2026" in await server_playlist(fake, db, "sad")

    mark = fake.mark()
    await fake.slash("forget", user=DISCORD_BOB)
    question = await fake.wait_for("interaction_callback", after=mark)
    await fake.click(question.result["interaction"]["response_message_id"], "forget:yes", user=DISCORD_BOB)
    await fake.wait_for("edit_original", lambda c: "delete" in (c.content or ""), after=mark)

    listed = await server_playlist(fake, db, "sad")
    assert "1. Voice note, 1 Mar 2026" in listed and "Bob" not in listed
