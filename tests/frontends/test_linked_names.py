"""A song's name is its uploader's words (a video's title, a file's name or tags): a link in it,
'Free Nitro https://phish.example/claim', 'evil.example', is shown as no link wherever the bot
writes the name, in a group's /mood answer as in its playlist (tests/bot/test_server_playlists.py),
a server's embed, a saved journal answer and /journal list; the links the bot makes stay links."""
from __future__ import annotations

from contextlib import asynccontextmanager

import pytest

from bot.replies import NOT_AUDIO
from bot.sources.audio import AudioFetcher
from bot.sources.spotify import SpotifyResolver
from bot.usecases import build_usecases
from inference.pool import Classifier
from storage.models import UserRef
from tests.e2e.wiring import weights_dir
from tests.fakes.audio_http import FakeAudioServer
from tests.fakes.spotify_api import FakeSpotify, FakeTrack
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.bot.test_server_playlists import links_in
from tests.frontends.conftest import TELEGRAM_TOKEN, journal_on_telegram, read, telegram_on
from tests.frontends.test_discord import ATTACHMENT, GUILD, STRING, open_a_prompt, private_answer, sub
from tests.frontends.test_discord_new_user import a_file
from tests.frontends.test_telegram import ALICE, GROUP, replies_to
from tests.frontends.test_telegram_album import cached_video
from tests.frontends.test_telegram_not_audio import a_document

TITLE = "Free Nitro https://phish.example/claim (get it at evil.example)"
VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"  # the link the bot makes of the video


async def phishing_video(db) -> str:
    """A link to a video whose title holds links, its mood (sad) in the cache."""
    return await cached_video(db, "dQw4w9WgXcQ", TITLE, "sad")


async def test_a_link_in_a_song_s_name_is_no_link_in_a_telegram_group_s_mood_answer(telegram, db):
    fake, _ = telegram
    video = await phishing_video(db)
    answer, = await replies_to(fake, f"/mood {video}", chat=GROUP, user=ALICE)
    assert read(answer).startswith(f"🎵 {TITLE}\n")
    assert links_in(answer) == [VIDEO]


# An answer naming two songs: the saved answer names the one it saved twice, its line and its aside
# (ONE_SONG_A_PROMPT), and /journal list once.
OTHER_SONG = "https://youtu.be/9bZkp7q19f0"


async def phishing_video_journaled(telegram, db, usecases, words: str = "") -> str:
    """Alice's prompt, answered on Telegram with the phishing video's link and `words` after it:
    the saved answer's text."""
    fake, frontend = telegram
    mark = await prompt_answered(fake, frontend, db, usecases, await phishing_video(db) + words)
    return (await fake.wait_for_reply(lambda c: "Saved to your journal" in c.text, after=mark)).text


async def prompt_answered(fake, frontend, db, usecases, answer: str) -> int:
    """Alice's journal turned on, her prompt sent and answered with `answer`: the fake's mark
    before her answer."""
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    mark = fake.mark()
    await scheduler.fire_now(UserRef("telegram", str(ALICE)))
    prompt = fake.message_of(await fake.wait_for("sendMessage", after=mark))
    mark = fake.mark()
    await fake.user_sends(answer, reply_to=prompt["message_id"])
    return mark


async def test_a_link_in_a_song_s_name_is_no_link_in_a_telegram_journal(telegram, db, usecases):
    fake, _ = telegram
    saved = await phishing_video_journaled(telegram, db, usecases, f"\nor {OTHER_SONG}")
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


# The use cases' and front-ends' own sentences that quote a song's or a file's name: a decode error
# naming the song downloaded, '/journal' alone naming today's song, a file refused by its name.
FILE = "Free Nitro at evil.example.pdf"  # a sender's file name: no '/' in it


def no_link_but(text: str, quoted: str) -> bool:
    """`text` quotes `quoted` (as read) and holds no link."""
    return quoted in read(text) and links_in(text) == []


async def test_a_link_in_today_s_song_is_no_link_in_telegram_s_journal_status(telegram, db, usecases):
    """'/journal' alone says 'Today's prompt is answered: <its song>.'"""
    fake, _ = telegram
    await phishing_video_journaled(telegram, db, usecases)
    status, = await replies_to(fake, "/journal")
    assert no_link_but(status, f"Today's prompt is answered: {TITLE}.")


async def test_a_link_in_a_file_s_name_is_no_link_in_a_telegram_group_s_refusal(telegram):
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends("/mood", **a_document(fake, FILE, "application/pdf"), chat=GROUP, user=ALICE)
    refusal = (await fake.wait_for_reply(after=mark)).text
    assert no_link_but(refusal, NOT_AUDIO.format(name=FILE))


async def test_a_link_in_a_file_s_name_is_no_link_in_a_discord_server_s_refusal(discord_bot):
    fake, _ = discord_bot
    pdf = a_file(fake, FILE, "application/pdf", b"%PDF-1.4")
    await fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": pdf["id"]}],
                     resolved={"attachments": {pdf["id"]: pdf}}, guild=GUILD)
    refusal = (await fake.wait_for("followup")).content
    assert no_link_but(refusal, NOT_AUDIO.format(name=FILE))


@pytest.fixture
async def mislabelled_host(tmp_path):
    """An audio host whose search finds a web page served as .ogg, under a name holding a link: the
    download is titled by it, and the decoder refuses it."""
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / f"{PAGE}.ogg").write_text("<!doctype html><html><body>not a song</body></html>")
    server = FakeAudioServer(tmp_path).start()
    yield server
    server.stop()


PAGE = "Free-Nitro-at-evil.example"


async def test_a_link_in_a_download_s_title_is_no_link_in_a_telegram_group_s_decode_error(db, mislabelled_host,
                                                                                           tmp_path):
    """The decoder's refusal names the song by the title its download gave: 'The file downloaded
    for “…” is not audio we can read.'"""
    fetcher = AudioFetcher(search_template=mislabelled_host.url(f"/files/{PAGE}.ogg?q={{title}}"),
                           tmp_dir=tmp_path / "downloads", timeout_s=15)
    async with (Classifier(weights_dir(), workers=1, timeout_s=30) as classifier,
                telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), build_usecases(db, classifier, fetcher)) as (fake, _)):
        mark = fake.mark()
        await fake.user_sends("/mood Some Song", chat=GROUP, user=ALICE)
        refusal = (await fake.wait_for_reply(lambda c: "…" not in c.text, timeout=30, after=mark)).text
    assert no_link_but(refusal, f"The file downloaded for “{PAGE}” is not audio we can read.")


# The fetcher's refusals name the song it looked for: a Spotify song's name is its uploader's words,
# "“<artists> – <title>” is too long for me to listen to.", "No audio found for “…”."
ARTIST = "evil.example"
SPOTIFY_NAME = f"{ARTIST} – {TITLE}"


@asynccontextmanager
async def spotify_song_without_audio(db, host: FakeAudioServer, tmp_path, duration_ms: int):
    """The Telegram front-end whose use cases find a song named `SPOTIFY_NAME` on a fake Spotify,
    lasting `duration_ms`, and look for its audio on `host`, which has none: (the fake Bot API, the
    front-end, the use cases, the song's Spotify link)."""
    song = FakeTrack(name=TITLE, artists=(ARTIST,), duration_ms=duration_ms)
    spotify = FakeSpotify().start()
    spotify.add(song)
    fetcher = AudioFetcher(search_template=host.url("/files/no-such-song.ogg?q={title}"),
                           tmp_dir=tmp_path / "downloads", timeout_s=15)
    usecases = build_usecases(db, None, fetcher, resolver=SpotifyResolver(
        spotify.client_id, spotify.client_secret, spotify.api_url, spotify.auth_url))
    try:
        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, frontend):
            yield fake, frontend, usecases, f"https://open.spotify.com/track/{song.track_id}"
    finally:
        spotify.stop()


THREE_HOURS_MS = 3 * 3600 * 1000


@pytest.mark.parametrize("duration_ms, refusal", [
    (THREE_HOURS_MS, f"“{SPOTIFY_NAME}” is too long for me to listen to."),  # Spotify's length: nothing fetched
    (200_000, f"No audio found for “{SPOTIFY_NAME}”."),  # the audio host's 404
])
async def test_a_link_in_a_spotify_song_s_name_is_no_link_in_a_telegram_group_s_refusal_of_its_audio(
        db, mislabelled_host, tmp_path, duration_ms, refusal):
    async with spotify_song_without_audio(db, mislabelled_host, tmp_path, duration_ms) as (fake, _, _, link):
        mark = fake.mark()
        await fake.user_sends(f"/mood {link}", chat=GROUP, user=ALICE)
        said = (await fake.wait_for_reply(lambda c: "…" not in c.text, timeout=30, after=mark)).text
    assert no_link_but(said, refusal)


async def test_a_link_in_a_spotify_song_s_name_is_no_link_in_a_telegram_journal_answer_s_refusal(
        db, mislabelled_host, tmp_path):
    async with spotify_song_without_audio(db, mislabelled_host, tmp_path, THREE_HOURS_MS) as (
            fake, frontend, usecases, link):
        mark = await prompt_answered(fake, frontend, db, usecases, link)
        said = (await fake.wait_for_reply(lambda c: "too long" in c.text, after=mark)).text
    assert no_link_but(said, f"“{SPOTIFY_NAME}” is too long for me to listen to.")
