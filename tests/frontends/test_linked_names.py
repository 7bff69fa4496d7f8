"""A song's name is its uploader's words (a video's title, a file's name or tags): a link in it,
'Free Nitro https://phish.example/claim', 'evil.example', is shown as no link wherever the bot
writes the name, in a group's /mood answer as in its playlist (tests/bot/test_server_playlists.py),
a server's embed, a saved journal answer and /journal list; the links the bot makes stay links."""
from __future__ import annotations

from bot.frontends.render import WORD_JOINER
from storage.models import UserRef
from tests.bot.test_server_playlists import links_in
from tests.frontends.conftest import journal_on_telegram
from tests.frontends.test_discord import GUILD, STRING, open_a_prompt, private_answer, sub
from tests.frontends.test_telegram import ALICE, GROUP, replies_to
from tests.frontends.test_telegram_album import cached_video

TITLE = "Free Nitro https://phish.example/claim (get it at evil.example)"
VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"  # the link the bot makes of the video


async def phishing_video(db) -> str:
    """A link to a video whose title holds links, its mood (sad) in the cache."""
    return await cached_video(db, "dQw4w9WgXcQ", TITLE, "sad")


def read(text: str) -> str:
    """`text` as its reader reads it: the word joiners are unseen."""
    return text.replace(WORD_JOINER, "")


async def test_a_link_in_a_song_s_name_is_no_link_in_a_telegram_group_s_mood_answer(telegram, db):
    fake, _ = telegram
    video = await phishing_video(db)
    answer, = await replies_to(fake, f"/mood {video}", chat=GROUP, user=ALICE)
    assert read(answer).startswith(f"🎵 {TITLE}\n")
    assert links_in(answer) == [VIDEO]


# An answer naming two songs: the saved answer names the one it saved twice, its line and its aside
# (ONE_SONG_A_PROMPT), and /journal list once.
OTHER_SONG = "https://youtu.be/9bZkp7q19f0"


async def test_a_link_in_a_song_s_name_is_no_link_in_a_telegram_journal(telegram, db, usecases):
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    video = await phishing_video(db)
    mark = fake.mark()
    await scheduler.fire_now(UserRef("telegram", str(ALICE)))
    prompt = fake.message_of(await fake.wait_for("sendMessage", after=mark))
    mark = fake.mark()
    await fake.user_sends(f"{video}\nor {OTHER_SONG}", reply_to=prompt["message_id"])
    saved = (await fake.wait_for_reply(lambda c: "Saved to your journal" in c.text, after=mark)).text
    listed, = await replies_to(fake, "/journal list")
    assert read(saved).count(TITLE) == 2 and links_in(saved) == []
    assert TITLE in read(listed) and links_in(listed) == [OTHER_SONG]  # the note's, as typed


async def test_a_link_in_a_song_s_name_is_no_link_in_a_discord_server_s_mood_answer(discord_bot, db):
    """The embed's title is the song's name; its link is the bot's."""
    fake, _ = discord_bot
    video = await phishing_video(db)
    await fake.slash("mood", [{"name": "query", "type": STRING, "value": video}], guild=GUILD)
    embed = (await fake.wait_for("edit_original", lambda c: bool(c.embeds))).embeds[0]
    assert read(embed["title"]) == TITLE and links_in(embed["title"]) == []
    assert embed["url"] == VIDEO


async def test_a_link_in_a_song_s_name_is_no_link_in_a_discord_journal(scheduled, db):
    fake, _ = scheduled
    video = await phishing_video(db)
    await open_a_prompt(fake)
    await fake.user_dms(f"{video}\nor {OTHER_SONG}")
    saved = (await fake.wait_for("edit_message", lambda c: bool(c.embeds))).embeds[0]  # "Finding the song…", edited
    assert saved["description"].startswith("Saved to your journal") and saved["url"] == VIDEO
    await fake.slash("journal", sub("list"))
    listed = (await private_answer(fake)).content
    for text in (saved["title"], saved["description"]):
        assert TITLE in read(text) and links_in(text) == []
    assert TITLE in read(listed) and links_in(listed) == [OTHER_SONG]
