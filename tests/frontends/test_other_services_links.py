"""What other music apps' Share buttons give (Shazam's "I used Shazam to discover Creep by Radiohead.
https://www.shazam.com/track/…", SoundCloud's "Listen to Creep by Radiohead on #SoundCloud https://…",
an Apple Music song's link, /us/song/creep/…): the bot never opens those links, but the song their
words (or the Apple Music link's slug) name is searched for on Spotify, and the answer says it was
found by its name, not from the link, so that a wrong match is understood."""
from __future__ import annotations

import pytest

from bot.sources.audio import AudioFetcher
from bot.sources.query import DEFAULT_ALLOWED, MUSIC_SERVICES, OTHER_SERVICE_REFUSED
from bot.usecases.mood import FOUND_BY_NAME
from tests.bot.test_console import chat
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN, spotify_with_creep, telegram_on, usecases_with_creep
from tests.fuzz.test_query_fuzz import RecordingResolver

SHAZAM_SHARE = "I used Shazam to discover Creep by Radiohead. https://www.shazam.com/track/5933917/creep"
SOUNDCLOUD_SHARE = "Listen to Creep by Radiohead on #SoundCloud\nhttps://soundcloud.com/radiohead/creep"
APPLE_SONG = "https://music.apple.com/us/song/creep/1097862231"
APPLE_ALBUM = "https://music.apple.com/us/album/pablo-honey/1097861387?i=1097862231"
EVERY_SERVICE_HOST = frozenset().union(*(hosts for _, hosts in MUSIC_SERVICES))


@pytest.fixture
def watched_fetcher(tmp_path):
    """An audio source that would fetch from the other services' hosts (an operator allowed them),
    whose every lookup of a host to contact is recorded (and answered with a loopback address,
    which the guard then refuses): a link of theirs opened would show there."""
    resolver = RecordingResolver()
    return AudioFetcher(allowed_hosts=DEFAULT_ALLOWED | EVERY_SERVICE_HOST, resolver=resolver, tmp_dir=tmp_path), resolver


def asked_of(spotify) -> tuple[list[str], list[str]]:
    """What the fake Spotify was searched for, and every request it had, as text."""
    return ([r.params.get("q") for r in spotify.api_requests() if r.path == "/v1/search"],
            [f"{r.path} {r.params}" for r in spotify.requests])


async def test_the_console_finds_a_shared_song_by_its_name_and_says_so(db, tmp_path, watched_fetcher):
    fetcher, looked_up = watched_fetcher
    async with spotify_with_creep(db) as (spotify, resolver):
        out = await chat(db, None, tmp_path, [f"/mood {SHAZAM_SHARE}", f"/mood {APPLE_SONG}", f"/mood {APPLE_ALBUM}",
                                              "/quit"], fetcher=fetcher, resolver=resolver)
        searched, requests = asked_of(spotify)
    assert out.count("Mood: 😢 sad") == 2 and out.count("Creep") >= 2
    shazam, apple = (FOUND_BY_NAME.format(where=" on Spotify", service=s) for s in ("Shazam", "Apple Music"))
    assert out.index("Mood: 😢 sad") < out.index(shazam) < out.rindex("Mood: 😢 sad") < out.index(apple)
    # An album's link names no song: refused, saying what to send instead.
    assert OTHER_SERVICE_REFUSED.format(host="music.apple.com") in out
    assert searched == ["Radiohead Creep", "creep"]
    assert not [r for r in requests if "shazam" in r or "apple" in r or "1097862231" in r]
    assert looked_up.hosts == []  # no host of the links was looked up, let alone contacted


async def test_telegram_finds_a_shared_song_by_its_name_and_says_so(db, watched_fetcher):
    fetcher, looked_up = watched_fetcher
    async with usecases_with_creep(db, fetcher) as (spotify, usecases):
        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, _):
            mark = fake.mark()
            await fake.user_sends(f"/mood {SOUNDCLOUD_SHARE}")
            answer = await fake.wait_for("sendMessage", lambda c: "Mood: " in c.text, after=mark)
            searched, requests = asked_of(spotify)
    assert "Creep" in answer.text and "sad" in answer.text.lower()
    assert FOUND_BY_NAME.format(where=" on Spotify", service="SoundCloud") in answer.text
    assert searched == ["Radiohead Creep"]
    assert not [r for r in requests if "soundcloud" in r.lower()]
    assert looked_up.hosts == []
