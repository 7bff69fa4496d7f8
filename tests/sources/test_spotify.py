"""Given a user types a song or pastes a Spotify link, moodbot finds the right track through the
real spotipy client talking to a local fake of the Spotify Web API."""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time

import pytest

from bot.config import Settings
from bot.sources.models import (
    NoCloseMatchError,
    QueryKind,
    SpotifyBusyError,
    SpotifyUnavailableError,
    TrackNotFoundError,
)
from bot.sources.query import parse_query
from bot.sources.spotify import (
    CLOSE_ENOUGH,
    Candidate,
    RetryPolicy,
    SpotifyResolver,
    TTLCache,
    UNAVAILABLE_MESSAGE,
    best_match_index,
    busy_message,
    closeness,
    resolver_from_settings,
    search_text,
)
from tests.fakes.spotify_api import FakeTrack

CREEP = FakeTrack("Creep", ("Radiohead",), album="Pablo Honey", duration_ms=238_640,
                  popularity=80, isrc="GBAYE9200070", art_url="https://i.scdn.co/image/pablo")
CREEP_LIVE = FakeTrack("Creep - Live at Glastonbury", ("Radiohead",), album="Live", popularity=90)
CREEP_KARAOKE = FakeTrack("Creep (Karaoke Version)", ("Karaoke Hits",), album="Karaoke", popularity=95)
CREEP_TLC = FakeTrack("Creep", ("TLC",), album="CrazySexyCool", popularity=70)


class SleepLog:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class RealSleep(SleepLog):
    """Sleeps as the bot does (time.sleep, which refuses a NaN), and logs each wait."""

    def __call__(self, seconds: float) -> None:
        super().__call__(seconds)
        time.sleep(seconds)


def make_resolver(fake, sleep=None, **retry) -> SpotifyResolver:
    policy = RetryPolicy(**{"max_tries": 3, "max_wait_s": 10.0, "backoff_s": 0.01, **retry})
    return SpotifyResolver(fake.client_id, fake.client_secret, api_url=fake.api_url, auth_url=fake.auth_url,
                           retry=policy, sleep=sleep or SleepLog(), timeout_s=2.0)


# -- ranking (pure) --------------------------------------------------------------------------

def c(title: str, artist: str, popularity: int = 50) -> Candidate:
    return Candidate(title, (artist,), popularity)


@pytest.mark.parametrize("query, candidates, expected", [
    ("Radiohead - Creep", [c("Creep (Karaoke Version)", "Karaoke Hits", 99), c("Creep", "Radiohead", 60)], 1),
    ("Creep - Radiohead", [c("Creep", "TLC", 80), c("Creep", "Radiohead", 60)], 1),
    ("creep by radiohead", [c("Creep - Live", "Radiohead", 90), c("Creep", "Radiohead", 60)], 1),
    ("Radiohead Creep", [c("Creep", "Scala & Kolacny Brothers", 70), c("Creep", "Radiohead", 60)], 1),
    ("Creep live", [c("Creep", "Radiohead", 90), c("Creep - Live", "Radiohead", 40)], 1),
    ("Stand by Me", [c("Stand", "R.E.M.", 70), c("Stand by Me", "Ben E. King", 60)], 1),
    ("Blinding Lights", [c("Blinding Lights - Sped Up", "The Weeknd", 90), c("Blinding Lights", "The Weeknd", 80),
                         c("Blinding Lights (Slowed + Reverb)", "x", 99)], 1),
    ("Yesterday", [c("Yesterday - Remastered 2009", "The Beatles", 80), c("Yesterday (Instrumental)", "y", 85)], 0),
    ("Beyonce - Halo", [c("Halo", "Beyoncé", 80), c("Halo", "Haloween Band", 85)], 0),
    ("Hello", [c("Hello", "Adele", 80), c("Hello", "Lionel Richie", 60)], 0),  # popularity breaks the tie
])
def test_ranking_prefers_the_song_the_user_meant(query, candidates, expected):
    assert best_match_index(query, candidates) == expected


@pytest.mark.parametrize("version", [
    "Creep (speed up)", "Creep - Sped Up Version", "Creep - Acapella", "Creep (A Cappella)", "Creep - MTV Unplugged",
    "Creep - Lo-Fi", "Creep (Lofi)", "Creep - Reprise", "Creep - Remixed", "Creep (Rework)", "Creep - Extended Mix",
    "Creep (Orchestral Version)", "Creep (Piano Version)", "Creep - Quiet", "Creep (Restrung)", "Creep (Part II)",
])
@pytest.mark.parametrize("query", ["Creep", "Radiohead - Creep"])
def test_a_more_popular_version_not_asked_for_loses_to_the_song(query, version):
    # Spotify's listing carries tags no list foresees: a part after the name the user didn't
    # type is a version, or another song ("Love The Way You Lie (Part II)").
    assert best_match_index(query, [c(version, "Radiohead", 95), c("Creep", "Radiohead", 50)]) == 1


@pytest.mark.parametrize("query, candidates", [
    ("Daylight", [c("Daylight (speed up)", "David Kushner", 80), c("Daylight", "David Kushner", 75)]),
    ("Love The Way You Lie", [Candidate("Love The Way You Lie (Part II)", ("Rihanna", "Eminem"), 75),
                              Candidate("Love The Way You Lie", ("Eminem", "Rihanna"), 70)]),
])
def test_a_popular_version_named_after_the_song_is_not_the_song(query, candidates):
    assert best_match_index(query, candidates) == 1


@pytest.mark.parametrize("query, title", [
    ("Creep", "Creep - Radio Edit"),
    ("Creep", "Creep - Remastered 2011"),
    ("Creep", "Creep (2009 Remaster)"),
    ("Creep", "Creep - Mono Version"),
    ("Creep", "Creep - Stereo"),
    ("Creep", "Creep - Single Version"),
    ("Creep", 'Creep - From "Pablo Honey" Soundtrack'),
    ("Creep", "Creep (feat. Thom Yorke)"),
    ("Creep", "Creep (with Thom Yorke)"),
    ("Satisfaction", "(I Can't Get No) Satisfaction - Mono Version"),
    ("Gangnam Style", "강남스타일 (Gangnam Style)"),  # the name in another script
    ("Creep piano", "Creep (Piano Version)"),  # asked for
    ("Creep reprise", "Creep - Reprise"),
])
def test_the_same_recording_under_a_tag_people_dont_type_keeps_its_popularity(query, title):
    # A remaster, an edit, a film it is from, a guest: the song itself (or the version typed).
    plain = query.split()[0]
    assert best_match_index(query, [c(title, "Radiohead", 95), c(plain, "Cover", 50)]) == 0


def test_ranking_of_nothing_is_none():
    assert best_match_index("anything", []) is None


@pytest.mark.parametrize("query, title, artists", [
    ("Radiohead - Creep", "Creep", ("Radiohead",)),
    ("creep by radiohead", "Creep", ("Radiohead",)),
    ("Creep", "Creep", ("Radiohead",)),
    ("bohemian rapsody", "Bohemian Rhapsody - Remastered 2011", ("Queen",)),  # a typo, a remaster tag
    ("Hallo by Adel", "Hello", ("Adele",)),
    ("The Weekend - Blinding Lights (official audio)", "Blinding Lights", ("The Weeknd",)),
    ("Shape of You feat. Ed Sheeran", "Shape of You", ("Ed Sheeran",)),
    ("acdc thunderstruck", "Thunderstruck", ("AC/DC",)),
    ("mr bright side", "Mr. Brightside", ("The Killers",)),
    ("Beyonce - Halo", "Halo", ("Beyoncé",)),
    ("Despacito", "Despacito - Remix", ("Luis Fonsi", "Daddy Yankee")),
    ("Bohemian", "Bohemian Rhapsody", ("Queen",)),  # part of the title
    ("rule the world tears for fears", "Everybody Wants To Rule The World", ("Tears For Fears",)),
    ("Gangnam Style", "강남스타일 (Gangnam Style)", ("PSY",)),
    ("yoru ni kakeru", "夜に駆ける", ("YOASOBI",)),  # another script: Spotify's word is taken
    ("💔", "💔", ("Heartbreak Band",)),
])
def test_a_close_match_is_close_despite_typos_and_extra_words(query, title, artists):
    assert closeness(Candidate(title, artists), query) >= CLOSE_ENOUGH


@pytest.mark.parametrize("query, title, artists", [
    ("Lost Mountain Tune by Joe Nobody", "Mountain Song", ("Jane's Addiction",)),
    ("my favourite song that nobody knows", "Favourite Song", ("Chance the Rapper",)),
    ("radiohead", "Creep", ("Radiohead",)),  # an artist is not a song
    ("Heart", "Heartbreak Hotel", ("Elvis Presley",)),
    ("Bohemian Rapsody Quen", "Rapsody in Blue", ("Gershwin Orchestra",)),
    ("🔥", "💔", ("Heartbreak Band",)),
])
def test_another_song_is_not_close(query, title, artists):
    assert closeness(Candidate(title, artists), query) < CLOSE_ENOUGH


def test_search_text_drops_the_glue():
    assert search_text("Radiohead - Creep") == "Radiohead Creep"
    assert search_text("Creep by Radiohead") == "Creep Radiohead"


def test_ttl_cache_expires_and_evicts():
    now = [0.0]
    cache: TTLCache[str, int] = TTLCache(maxsize=2, ttl_s=10, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # evicts the least recently used: b
    assert cache.get("b") is None and cache.get("c") == 3
    now[0] = 11
    assert cache.get("a") is None


# -- the real client against the fake API ----------------------------------------------------

async def test_free_text_resolves_to_the_best_track_with_all_metadata(fake_spotify):
    fake_spotify.add(CREEP_KARAOKE, CREEP_LIVE, CREEP_TLC, CREEP)
    track = await make_resolver(fake_spotify).resolve(parse_query("Radiohead - Creep"))
    assert track.title == "Creep" and track.artists == ("Radiohead",)
    assert track.album == "Pablo Honey"
    assert track.duration_s == pytest.approx(238.64)
    assert track.isrc == "GBAYE9200070"
    assert track.art_url == "https://i.scdn.co/image/pablo"
    assert track.key == f"spotify:{CREEP.track_id}" and track.spotify_id == CREEP.track_id
    assert track.spotify_url == f"https://open.spotify.com/track/{CREEP.track_id}"
    searches = [r for r in fake_spotify.api_requests() if r.path == "/v1/search"]
    assert len(searches) == 1
    assert searches[0].params["type"] == "track" and int(searches[0].params["limit"]) <= 10
    assert len(fake_spotify.token_requests()) == 1  # the client-credentials token came from our URL


async def test_track_link_resolves_by_id(fake_spotify):
    fake_spotify.add(CREEP, CREEP_TLC)
    query = parse_query(f"https://open.spotify.com/track/{CREEP_TLC.track_id}?si=x")
    assert query.kind is QueryKind.SPOTIFY_TRACK
    track = await make_resolver(fake_spotify).resolve(query)
    assert track.artists == ("TLC",) and track.key == f"spotify:{CREEP_TLC.track_id}"
    assert [r.path for r in fake_spotify.api_requests()] == [f"/v1/tracks/{CREEP_TLC.track_id}"]


async def test_repeated_queries_are_served_from_memory(fake_spotify):
    fake_spotify.add(CREEP)
    resolver = make_resolver(fake_spotify)
    first = await resolver.resolve(parse_query("Radiohead - Creep"))
    again = await resolver.resolve(parse_query("radiohead  -  CREEP"))
    by_link = await resolver.resolve(parse_query(f"spotify:track:{CREEP.track_id}"))
    assert first == again == by_link
    assert len(fake_spotify.api_requests()) == 1


async def test_queries_of_only_symbols_are_not_one_cache_entry(fake_spotify):
    # "💔" and "🔥" normalise to nothing: they must not share the answer to whichever came first.
    fake_spotify.add(FakeTrack("💔", ("Heartbreak Band",)), FakeTrack("🔥", ("Fire Band",)))
    resolver = make_resolver(fake_spotify)
    assert (await resolver.resolve(parse_query("💔"))).artists == ("Heartbreak Band",)
    assert (await resolver.resolve(parse_query("🔥"))).artists == ("Fire Band",)


async def test_a_cached_answer_needs_no_thread(fake_spotify):
    """spotipy blocks, so lookups run in threads; a cache hit is answered in the event loop."""
    fake_spotify.add(CREEP)
    resolver = make_resolver(fake_spotify)
    first = await resolver.resolve(parse_query("Radiohead - Creep"))
    no_threads = concurrent.futures.ThreadPoolExecutor()
    no_threads.shutdown()  # any to_thread from here on raises RuntimeError
    asyncio.get_running_loop().set_default_executor(no_threads)
    assert await resolver.resolve(parse_query("radiohead - creep")) == first
    assert await resolver.resolve(parse_query(f"https://open.spotify.com/track/{CREEP.track_id}")) == first


async def test_nothing_found_names_the_query(fake_spotify):
    fake_spotify.add(CREEP)
    with pytest.raises(TrackNotFoundError) as info:
        await make_resolver(fake_spotify).resolve(parse_query("Zzyzx Qwerty"))
    assert str(info.value) == "I couldn't find “Zzyzx Qwerty” on Spotify."


async def test_the_closest_hit_wins_over_spotifys_first_one(fake_spotify):
    # Two typos: no title or artist matches exactly, so the ranking alone trusted popularity.
    fake_spotify.add(FakeTrack("Rapsody in Blue", ("Gershwin Orchestra",), popularity=90),
                     FakeTrack("Bohemian Rhapsody - Remastered 2011", ("Queen",), popularity=50))
    track = await make_resolver(fake_spotify).resolve(parse_query("Bohemian Rapsody Quen"))
    assert (track.title, track.artists) == ("Bohemian Rhapsody - Remastered 2011", ("Queen",))


async def test_a_more_popular_version_spotify_lists_first_is_not_the_song_typed(fake_spotify):
    fake_spotify.add(FakeTrack("Daylight (speed up)", ("David Kushner",), popularity=80),
                     FakeTrack("Daylight", ("David Kushner",), popularity=75))
    track = await make_resolver(fake_spotify).resolve(parse_query("Daylight"))
    assert (track.title, track.artists) == ("Daylight", ("David Kushner",))


async def test_a_name_with_no_close_match_names_the_nearest_songs_instead_of_guessing(fake_spotify):
    fake_spotify.add(FakeTrack("Mountain Song", ("Jane's Addiction",)), FakeTrack("Tune", ("Tuners",)), CREEP)
    resolver = make_resolver(fake_spotify)
    with pytest.raises(NoCloseMatchError) as info:
        await resolver.resolve(parse_query("Lost Mountain Tune by Joe Nobody"))
    assert isinstance(info.value, TrackNotFoundError)
    assert str(info.value) == (
        "I couldn't find “Lost Mountain Tune by Joe Nobody” on Spotify; the nearest songs were "
        "“Tuners – Tune”, “Jane's Addiction – Mountain Song”. Send me a Spotify link, or the exact name as "
        "artist - title.")
    assert info.value.closest == ("Tuners – Tune", "Jane's Addiction – Mountain Song")  # closest first
    searches = [r for r in fake_spotify.api_requests() if r.path == "/v1/search"]
    assert int(searches[0].params["limit"]) > 1  # the other hits were looked at
    with pytest.raises(NoCloseMatchError):  # a refusal is not cached as an answer
        await resolver.resolve(parse_query("Lost Mountain Tune by Joe Nobody"))
    assert len(fake_spotify.api_requests()) == 2


async def test_an_artists_name_alone_is_asked_which_of_their_songs(fake_spotify):
    # "radiohead" is nobody's song title: Spotify's hits are their songs, and the user is asked which.
    fake_spotify.add(CREEP, FakeTrack("Karma Police", ("Radiohead",)))
    with pytest.raises(NoCloseMatchError) as info:
        await make_resolver(fake_spotify).resolve(parse_query("radiohead"))
    assert str(info.value).startswith(
        "“radiohead” is an artist: which of their songs? The nearest I found were “Radiohead – ")
    assert str(info.value).endswith("Send me a Spotify link, or the name as artist - title.")
    assert info.value.closest == ("Radiohead – Creep", "Radiohead – Karma Police")
    with pytest.raises(NoCloseMatchError, match="^I couldn't find “Radiohead Creep acoustic”"):
        await make_resolver(fake_spotify).resolve(parse_query("Radiohead Creep acoustic"))  # more than an artist


@pytest.mark.parametrize("typed", [
    "artist:radiohead creep",
    'track:"creep" artist:"radiohead"',
    "Creep artist:Radiohead year:1992",
    "album:pablo creep",
])
async def test_spotifys_search_filters_typed_by_the_user_find_the_song(fake_spotify, typed):
    # Someone who knows Spotify's search syntax types it: Spotify is asked as typed, and the field
    # names ("artist", "year") are no words of the song's name that its hit must hold.
    fake_spotify.add(CREEP_TLC, CREEP_KARAOKE, CREEP)
    track = await make_resolver(fake_spotify).resolve(parse_query(typed))
    assert (track.title, track.artists) == ("Creep", ("Radiohead",))
    searches = [r for r in fake_spotify.api_requests() if r.path == "/v1/search"]
    assert searches[0].params["q"] == typed


async def test_a_search_by_filters_alone_takes_what_spotify_found(fake_spotify):
    fake_spotify.add(CREEP_TLC, CREEP)
    track = await make_resolver(fake_spotify).resolve(parse_query("isrc:GBAYE9200070"))
    assert (track.title, track.artists, track.isrc) == ("Creep", ("Radiohead",), "GBAYE9200070")


async def test_a_filtered_search_with_no_close_match_names_what_was_typed(fake_spotify):
    fake_spotify.add(CREEP)
    with pytest.raises(NoCloseMatchError, match="^I couldn't find “artist:radiohead creep acoustic” on Spotify; "
                                                "the nearest songs were “Radiohead – Creep”"):
        await make_resolver(fake_spotify).resolve(parse_query("artist:radiohead creep acoustic"))


@pytest.mark.parametrize("track_id", [
    "A" * 22,  # above 128 bits: Spotify answers 400 "Invalid base62 id"
    "0" * 21 + "1",  # an id no track has: 404
])
async def test_unknown_track_id_is_not_found(fake_spotify, track_id):
    with pytest.raises(TrackNotFoundError) as said:
        await make_resolver(fake_spotify).resolve(parse_query(f"spotify:track:{track_id}"))
    assert str(said.value) == "I couldn't find that track on Spotify."
    assert len(fake_spotify.api_requests()) == 1  # not asked again


async def test_429_honours_retry_after_then_succeeds(fake_spotify):
    fake_spotify.add(CREEP)
    fake_spotify.fail_next(429, times=2, retry_after=3)
    sleeps = SleepLog()
    track = await make_resolver(fake_spotify, sleep=sleeps).resolve(parse_query("Creep"))
    assert track.title == "Creep"
    assert sleeps.waits == [3.0, 3.0]
    assert len(fake_spotify.api_requests()) == 3


async def test_429_that_persists_becomes_a_busy_message(fake_spotify):
    fake_spotify.add(CREEP)
    fake_spotify.fail_next(429, times=10, retry_after=120)
    sleeps = SleepLog()
    with pytest.raises(SpotifyBusyError) as info:
        await make_resolver(fake_spotify, sleep=sleeps).resolve(parse_query("Creep"))
    assert str(info.value) == "Spotify is busy right now — try again in about 2 minutes."
    assert info.value.retry_after_s == 120
    # Asking again before Retry-After is over only gets another 429 (and keeps the user waiting
    # for an answer known at once): a wait longer than the cap is passed on, not slept through.
    assert sleeps.waits == []
    assert len(fake_spotify.api_requests()) == 1


async def test_429_with_a_short_wait_that_persists_is_retried_then_busy(fake_spotify):
    fake_spotify.fail_next(429, times=10, retry_after=10)
    sleeps = SleepLog()
    with pytest.raises(SpotifyBusyError) as info:
        await make_resolver(fake_spotify, sleep=sleeps).resolve(parse_query("Creep"))
    assert info.value.retry_after_s == 10
    assert sleeps.waits == [10.0, 10.0]  # bounded number of tries
    assert len(fake_spotify.api_requests()) == 3


@pytest.mark.parametrize("retry_after", ["nan", "inf", "1e999", "-inf"])
async def test_a_429_whose_retry_after_is_no_finite_number_is_waited_out_as_one_without(fake_spotify, retry_after):
    # float() reads all of these; not one is a wait to sleep through or to pass on to the user.
    fake_spotify.fail_next(429, times=10, retry_after=retry_after)
    sleeps = RealSleep()
    with pytest.raises(SpotifyBusyError) as info:
        await make_resolver(fake_spotify, sleep=sleeps).resolve(parse_query("Creep"))
    assert str(info.value) == "Spotify is busy right now — try again in a few seconds."
    assert info.value.retry_after_s == 0.01 and sleeps.waits == [0.01, 0.01]  # the wait when none is given
    assert len(fake_spotify.api_requests()) == 3


async def test_a_429_asking_for_a_wait_of_ages_passes_on_a_day_at_most(fake_spotify):
    fake_spotify.fail_next(429, times=10, retry_after="1e300")
    with pytest.raises(SpotifyBusyError) as info:
        await make_resolver(fake_spotify).resolve(parse_query("Creep"))
    assert str(info.value) == "Spotify is busy right now — try again in an hour or so."
    assert info.value.retry_after_s == 24 * 3600


async def test_5xx_is_retried_with_backoff(fake_spotify):
    fake_spotify.add(CREEP)
    fake_spotify.fail_next(503, times=1)
    sleeps = SleepLog()
    assert (await make_resolver(fake_spotify, sleep=sleeps).resolve(parse_query("Creep"))).title == "Creep"
    assert len(sleeps.waits) == 1


async def test_5xx_that_persists_is_unavailable(fake_spotify):
    fake_spotify.fail_next(500, times=10)
    sleeps = SleepLog()
    with pytest.raises(SpotifyUnavailableError):
        await make_resolver(fake_spotify, sleep=sleeps).resolve(parse_query("Creep"))
    assert sleeps.waits == [0.01, 0.02]
    assert len(fake_spotify.api_requests()) == 3


async def test_a_token_that_expires_mid_session_is_renewed(fake_spotify):
    # Spotify may end a token before the expires_in it gave: the bot must not answer
    # "Spotify isn't answering" until the token it cached runs out on its own (up to an hour).
    fake_spotify.add(CREEP, CREEP_TLC)
    resolver = make_resolver(fake_spotify)
    assert (await resolver.resolve(parse_query("Radiohead - Creep"))).artists == ("Radiohead",)
    fake_spotify.expire_tokens()
    track = await resolver.resolve(parse_query(f"spotify:track:{CREEP_TLC.track_id}"))
    assert track.artists == ("TLC",)
    assert len(fake_spotify.token_requests()) == 2
    assert len(fake_spotify.api_requests()) == 3  # the one refused call is made again, once


async def test_a_token_refused_again_after_renewal_is_unavailable(fake_spotify):
    fake_spotify.add(CREEP)
    fake_spotify.fail_next(401, times=10)
    with pytest.raises(SpotifyUnavailableError):
        await make_resolver(fake_spotify).resolve(parse_query("Creep"))
    assert len(fake_spotify.api_requests()) == 2  # one renewal, no loop


async def test_an_answer_cut_off_midway_is_retried(fake_spotify):
    fake_spotify.add(CREEP)
    fake_spotify.cut_next(times=1)
    sleeps = SleepLog()
    assert (await make_resolver(fake_spotify, sleep=sleeps).resolve(parse_query("Creep"))).title == "Creep"
    assert len(sleeps.waits) == 1 and len(fake_spotify.api_requests()) == 2


async def test_answers_that_keep_being_cut_off_are_unavailable_not_a_crash(fake_spotify):
    fake_spotify.add(CREEP)
    fake_spotify.cut_next(times=10)
    with pytest.raises(SpotifyUnavailableError):
        await make_resolver(fake_spotify).resolve(parse_query(f"spotify:track:{CREEP.track_id}"))
    assert len(fake_spotify.api_requests()) == 3


async def test_wrong_credentials_are_said_to_be_refused_and_the_log_names_the_settings(fake_spotify, caplog):
    """A wrong SPOTIFY_CLIENT_SECRET (or one reset in the dashboard) was "Spotify isn't answering
    right now — try again later." for every song named in words, for good, and the log's "Spotify
    refused the client credentials: invalid_client" named no setting."""
    resolver = SpotifyResolver("wrong", "creds", api_url=fake_spotify.api_url, auth_url=fake_spotify.auth_url)
    with caplog.at_level(logging.ERROR, logger="bot.sources.spotify"), pytest.raises(SpotifyUnavailableError) as said:
        await resolver.resolve(parse_query("Creep"))
    assert str(said.value) == ("Spotify refuses this bot's credentials, so I can't look songs up there — send a "
                               "YouTube link or an audio file instead.")
    assert fake_spotify.api_requests() == []
    assert [r.getMessage() for r in caplog.records] == [
        "spotify.credentials_refused: Spotify refused SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET (invalid_client): "
        "check them against the app's Client ID and Client secret (https://developer.spotify.com/dashboard)"]


async def test_a_token_url_that_is_not_spotifys_token_service_is_not_taken_for_wrong_credentials(fake_spotify, caplog):
    resolver = SpotifyResolver(fake_spotify.client_id, fake_spotify.client_secret, api_url=fake_spotify.api_url,
                               auth_url=fake_spotify.auth_url.replace("/api/token", "/nothing-here"))
    with caplog.at_level(logging.ERROR, logger="bot.sources.spotify"), pytest.raises(SpotifyUnavailableError) as said:
        await resolver.resolve(parse_query("Creep"))
    assert str(said.value) == UNAVAILABLE_MESSAGE
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "spotify.token_failed: Spotify's token service answered 404"]
    assert caplog.records[0].getMessage().endswith(": check SPOTIFY_AUTH_URL")


async def test_an_outage_of_spotifys_token_service_is_retried_not_taken_for_wrong_credentials(fake_spotify, caplog):
    fake_spotify.add(CREEP)
    fake_spotify.fail_next_token(503, times=1)
    sleeps = SleepLog()
    with caplog.at_level(logging.WARNING, logger="bot.sources.spotify"):
        assert (await make_resolver(fake_spotify, sleep=sleeps).resolve(parse_query("Creep"))).title == "Creep"
    assert len(sleeps.waits) == 1 and len(fake_spotify.token_requests()) == 2
    assert not any("credentials" in r.getMessage() for r in caplog.records)  # the operator's secret is fine


async def test_a_rate_limit_of_spotifys_token_service_passes_its_wait_on(fake_spotify):
    fake_spotify.fail_next_token(429, times=10, retry_after=120)
    sleeps = SleepLog()
    with pytest.raises(SpotifyBusyError) as info:
        await make_resolver(fake_spotify, sleep=sleeps).resolve(parse_query("Creep"))
    assert info.value.retry_after_s == 120 and sleeps.waits == []
    assert len(fake_spotify.token_requests()) == 1


# Spotify's words, since 2026-03-09, to every call of a Development Mode app whose owner has no Premium.
PREMIUM_REQUIRED = ("Active premium subscription required for the owner of the app. When the subscription status "
                    "changes, it can take a few hours before requests are allowed again.")


@pytest.mark.parametrize("typed", ["Radiohead - Creep", f"spotify:track:{CREEP.track_id}"])
async def test_spotify_refusing_the_app_is_said_so_and_logged_in_spotify_s_words(fake_spotify, caplog, typed):
    """A 403 to the app's calls (its owner's Premium lapsed) was "Spotify isn't answering right
    now — try again later." for every song named or linked, and the log's "Spotify answered 403"
    did not say why. It is not asked again, and the log carries Spotify's reason, never the words
    searched."""
    fake_spotify.add(CREEP)
    fake_spotify.fail_next(403, times=10, message=PREMIUM_REQUIRED)
    with caplog.at_level(logging.INFO), pytest.raises(SpotifyUnavailableError) as said:
        await make_resolver(fake_spotify).resolve(parse_query(typed))
    assert str(said.value) == ("Spotify refuses this bot's access for now, so I can't look songs up there — "
                               "send a YouTube link or an audio file instead.")
    assert len(fake_spotify.api_requests()) == 1
    logged = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "bot.sources.spotify"]
    assert logged == [("ERROR", f"spotify.app_refused: Spotify answered 403 ({PREMIUM_REQUIRED}): check the app "
                                "of SPOTIFY_CLIENT_ID at https://developer.spotify.com/dashboard (a Development Mode "
                                "app answers only while its owner has Spotify Premium)")]


async def test_another_refusal_of_a_call_is_logged_in_spotify_s_words(fake_spotify, caplog):
    fake_spotify.add(CREEP)
    fake_spotify.fail_next(400, times=1, message="Bad search query")
    with caplog.at_level(logging.INFO), pytest.raises(SpotifyUnavailableError) as said:
        await make_resolver(fake_spotify).resolve(parse_query("Radiohead - Creep"))
    assert str(said.value) == UNAVAILABLE_MESSAGE
    logged = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "bot.sources.spotify"]
    assert logged == [("ERROR", "spotify.failed: Spotify answered 400 (Bad search query)")]


async def test_unreachable_spotify_is_unavailable():
    resolver = SpotifyResolver("id", "secret", api_url="http://127.0.0.1:9/v1/", auth_url="http://127.0.0.1:9/api/token",
                               retry=RetryPolicy(backoff_s=0.0), timeout_s=1.0)
    with pytest.raises(SpotifyUnavailableError):
        await resolver.resolve(parse_query("Creep"))


def test_no_credentials_no_resolver(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPOTIFY_CLIENT_ID", raising=False)
    monkeypatch.delenv("SPOTIFY_CLIENT_SECRET", raising=False)
    assert resolver_from_settings(Settings()) is None
    settings = Settings(spotify_client_id="a", spotify_client_secret="b", spotify_api_url="http://127.0.0.1:1/v1/")
    assert isinstance(resolver_from_settings(settings), SpotifyResolver)


@pytest.mark.parametrize("wait_s, when", [
    (1, "a few seconds"), (10, "a few seconds"), (30, "a minute"), (60, "a minute"),
    (61, "about 2 minutes"), (1800, "about 30 minutes"), (86400, "an hour or so"),
])
def test_the_busy_message_says_how_long_spotify_asked_to_wait(wait_s, when):
    assert busy_message(wait_s) == f"Spotify is busy right now — try again in {when}."


async def test_lookups_waiting_out_spotifys_rate_limit_leave_the_bots_other_threads_free(fake_spotify):
    """Each lookup ran in asyncio's default thread pool (6 threads on 2 cores), asleep there
    through Spotify's Retry-After: six of them held it for 20 s, and a cached attachment's /mood
    (its hash), a chart, an /export and the outbox's writes, which need it too, waited as long."""
    import os

    default_threads = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor
    fake_spotify.fail_next(429, times=1000, retry_after=1)
    resolver = make_resolver(fake_spotify, sleep=time.sleep, max_tries=2, backoff_s=1.0)
    lookups = [asyncio.ensure_future(resolver.resolve(parse_query(f"song number {n}")))
               for n in range(default_threads + 2)]
    await asyncio.sleep(0.3)  # they are asleep in their Retry-After
    started = time.monotonic()
    await asyncio.to_thread(lambda: None)  # any other work the bot gives a thread
    waited = time.monotonic() - started
    for lookup in lookups:
        with pytest.raises(SpotifyBusyError):
            await lookup
    assert waited < 0.5, f"the default thread pool was held {waited:.1f} s by Spotify's waits"


async def test_a_spotify_outage_is_one_warning_a_try_in_spotify_s_words_and_never_the_words_searched(fake_spotify, caplog):
    """spotipy logged each failed call at ERROR with its request's parameters, the user's words
    searched among them ("'q': 'Radiohead Creep (live)'"), beside moodbot's own line for that try,
    which gave the status alone: Spotify's words are now in moodbot's line, spotipy's is not let
    through."""
    fake_spotify.fail_next(503, times=10)
    with caplog.at_level(logging.INFO), pytest.raises(SpotifyUnavailableError):
        await make_resolver(fake_spotify).resolve(parse_query("Radiohead - Creep (live)"))
    logged = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert logged == [("WARNING", f"spotify.failed: 503 Fault injected by the test (try {n} of 3)") for n in (1, 2, 3)]


async def test_a_wait_spotify_asks_for_longer_than_a_user_waits_is_logged_with_the_wait(fake_spotify, caplog):
    """A 429 whose Retry-After is passed on to the user at once left no line of moodbot's: only
    spotipy's ERROR, with the words searched and no wait."""
    fake_spotify.fail_next(429, times=10, retry_after=3600)
    with caplog.at_level(logging.INFO), pytest.raises(SpotifyBusyError):
        await make_resolver(fake_spotify).resolve(parse_query("Radiohead - Creep (live)"))
    logged = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert logged == [("WARNING", "spotify.failed: 429 Fault injected by the test (try 1 of 3), "
                                  "Retry-After 3600 s: passed on to the user")]


async def test_the_urls_in_spotify_s_answer_are_never_fetched(fake_spotify, audio_server, target, tmp_path):
    """A track's answer names a preview, a page and album art (here on an internal host): the song
    is fetched by the operator's AUDIO_SEARCH alone, and none of them is asked for."""
    from bot.sources.audio import AudioFetcher

    away = target.base_url
    track = FakeTrack("Creep", ("Radiohead",), art_url=f"{away}/art.jpg", preview_url=f"{away}/secret.ogg",
                      spotify_url=f"{away}/track")
    fake_spotify.add(track)
    info = await make_resolver(fake_spotify).resolve(parse_query(f"https://open.spotify.com/track/{track.track_id}"))
    fetcher = AudioFetcher(search_template=audio_server.base_url + "/clip.ogg?id={spotify_id}", tmp_dir=tmp_path / "w")
    async with fetcher.fetch(info) as audio:
        assert audio.path.stat().st_size > 0
    assert audio_server.requests_for("/clip.ogg")
    assert target.requests == []

