"""Given a user pastes a Spotify short link (spotify.link/…), moodbot follows it to the track — and
never anywhere else: each hop must be a short-link host on the allowlist, the end must be an
open.spotify.com track, and a dead link, an album or a redirect off Spotify gets a clear answer.
The short-link hosts are a local fake (tests/fakes/spotify_api.py) on 127.0.0.1."""
from __future__ import annotations

import time

import pytest

from bot.sources.models import (
    BlockedURLError,
    DownloadError,
    QueryKind,
    SpotifyBusyError,
    SpotifyUnavailableError,
    TrackNotFoundError,
    UnsupportedInputError,
)
from bot.sources.query import DEFAULT_ALLOWED, parse_query
from bot.sources.shortlink import (
    AWAY_MESSAGE,
    DEAD_MESSAGE,
    LOOP_MESSAGE,
    MAX_HOPS,
    MAX_PAGE_BYTES,
    UNREACHABLE_MESSAGE,
    ShortLinkResolver,
)
from bot.sources.spotify import RetryPolicy, SpotifyResolver
from bot.sources.urlguard import ConnectPolicy
from tests.fakes.audio_http import FakeAudioServer, drip_response
from tests.fakes.spotify_api import FakeSpotifyLinks, FakeTrack

CREEP = FakeTrack("Creep", ("Radiohead",), album="Pablo Honey", popularity=80)
LINK = "https://spotify.link/hRkBrwub9xb"
APP_LINK = "https://spotify.app.link/hRkBrwub9xb"
ALBUM_ID = "6400dnyeDyD2mIFHfkwHXN"
PUBLIC = "93.184.216.34"


def track_url(track_id: str) -> str:
    return f"https://open.spotify.com/track/{track_id}?si=0a1b2c3d4e5f"


@pytest.fixture
def links():
    with FakeSpotifyLinks() as fake:
        yield fake


@pytest.fixture
def spotify(fake_spotify):
    fake_spotify.add(CREEP)
    return fake_spotify


def resolver_for(spotify, links, allowed_hosts=DEFAULT_ALLOWED) -> SpotifyResolver:
    return SpotifyResolver(spotify.client_id, spotify.client_secret, api_url=spotify.api_url,
                           auth_url=spotify.auth_url, retry=RetryPolicy(backoff_s=0.0), timeout_s=2.0,
                           allowed_hosts=allowed_hosts, short_link_url=links.base_url)


async def resolve(spotify, links, text=LINK, **kwargs):
    query = parse_query(text)
    assert query.kind is QueryKind.SPOTIFY_SHORT_LINK
    return await resolver_for(spotify, links, **kwargs).resolve(query)


def rebinding(first: str, then: str):
    """A name that answers `first` to its first lookup and `then` to every later one."""
    lookups: list[str] = []

    def resolve(host: str) -> list[str]:
        lookups.append(host)
        return [first if len(lookups) == 1 else then]

    return resolve


def on_its_own_host(links, **kwargs) -> tuple[ShortLinkResolver, str]:
    """A resolver on the production path (no base_url), where 127.0.0.1 at the fake's port plays
    a public address for the connections, and LINK on its own host's name at the fake's port."""
    short_links = ShortLinkResolver(DEFAULT_ALLOWED, connections=ConnectPolicy(frozenset({("127.0.0.1", links.port)})),
                                    **kwargs)
    return short_links, f"http://spotify.link:{links.port}/hRkBrwub9xb"


# -- followed --------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_short_link_that_redirects_is_followed_to_its_track(spotify, links, status):
    links.redirect(LINK, track_url(CREEP.track_id), status=status)
    track = await resolve(spotify, links)
    assert (track.title, track.artists, track.key) == ("Creep", ("Radiohead",), f"spotify:{CREEP.track_id}")
    assert links.requests == [LINK]  # open.spotify.com is read from the redirect, never fetched
    assert [r.path for r in spotify.api_requests()] == [f"/v1/tracks/{CREEP.track_id}"]


OG_URL = '<meta property="og:url" content="https://open.spotify.com/track/{id}?si=x&amp;context=y">'
META_REFRESH = '<meta http-equiv="refresh" content="0; url=https://open.spotify.com/intl-fr/track/{id}">'
SCRIPT = '<script>var d = {{"$desktop_url":"https:\\/\\/open.spotify.com\\/track\\/{id}?si=z"}};</script>'
ANCHOR = '<a href="//open.spotify.com/track/{id}">Open in Spotify</a>'


@pytest.mark.parametrize("naming", [OG_URL, META_REFRESH, SCRIPT, ANCHOR])
async def test_spotify_link_to_spotify_app_link_to_a_page_naming_the_track(spotify, links, naming):
    """What spotify.link does today: a redirect to spotify.app.link, whose page names the track
    (the home page's link and the page's own assets come first and are not taken for it)."""
    links.redirect(LINK, APP_LINK + "?_p=c11f1e2c", status=307)
    links.page(APP_LINK, '<html><head><link rel="icon" href="https://open.spotify.com/favicon.ico">'
                         '<a href="https://open.spotify.com/">Spotify</a>'
                         + naming.format(id=CREEP.track_id) + "</head><body></body></html>")
    track = await resolve(spotify, links)
    assert track.key == f"spotify:{CREEP.track_id}"
    assert links.requests == [LINK, APP_LINK]


@pytest.mark.parametrize("typed", ["https://%73potify.link/hRkBrwub9xb", "https://ｓｐｏｔｉｆｙ．ｌｉｎｋ/hRkBrwub9xb"])
async def test_a_short_link_s_host_written_as_a_browser_reads_it_is_requested_as_read(spotify, links, typed):
    """Percent-escaped or full-width, the host a browser opens is the one judged and requested."""
    links.redirect(LINK, track_url(CREEP.track_id))
    track = await resolve(spotify, links, text=typed)
    assert track.key == f"spotify:{CREEP.track_id}"
    assert links.requests == [LINK]


async def test_an_older_spoti_fi_short_link_is_followed_to_its_track(spotify, links):
    # Spotify's short links before spotify.link (Bitly's, on Spotify's own name), still in many
    # artists' bios and old posts: one redirect to the open.spotify.com link.
    links.redirect("https://spoti.fi/3xYz9Ab", track_url(CREEP.track_id), status=301)
    track = await resolve(spotify, links, text="listen: <https://spoti.fi/3xYz9Ab>")
    assert track.key == f"spotify:{CREEP.track_id}"
    assert links.requests == ["https://spoti.fi/3xYz9Ab"]


async def test_a_spoti_fi_link_leading_off_spotify_is_refused(spotify, links):
    links.redirect("https://spoti.fi/3xYz9Ab", "https://bit.ly/3xYz9Ab")
    with pytest.raises(BlockedURLError, match="leads away from Spotify"):
        await resolve(spotify, links, text="https://spoti.fi/3xYz9Ab")
    assert links.requests == ["https://spoti.fi/3xYz9Ab"]


async def test_a_short_link_is_followed_once_then_remembered(spotify, links):
    links.redirect(LINK, track_url(CREEP.track_id))
    resolver = resolver_for(spotify, links)
    first = await resolver.resolve(parse_query(LINK))
    again = await resolver.resolve(parse_query(f"{LINK}?si=other so sad"))
    assert first == again
    assert links.requests == [LINK] and len(spotify.api_requests()) == 1


# -- clear answers ---------------------------------------------------------------------------

@pytest.mark.parametrize("set_up", [
    lambda links: None,  # unknown: 404
    lambda links: links.status(LINK, 410),
    lambda links: links.redirect(LINK, "https://open.spotify.com/"),  # where an expired link ends
    lambda links: links.redirect(LINK, "https://open.spotify.com/track/not-an-id"),
    lambda links: links.page(LINK, "<html><title>Spotify</title><p>This link has expired.</p></html>"),
], ids=["404", "410", "home page", "broken id", "page without a link"])
async def test_a_dead_link_says_so(spotify, links, set_up):
    set_up(links)
    with pytest.raises(TrackNotFoundError) as info:
        await resolve(spotify, links)
    assert str(info.value) == DEAD_MESSAGE
    assert "open.spotify.com link" in DEAD_MESSAGE
    assert spotify.api_requests() == []


@pytest.mark.parametrize("target, kind", [
    (f"https://open.spotify.com/album/{ALBUM_ID}", "album"),
    (f"https://open.spotify.com/playlist/{ALBUM_ID}?si=x", "playlist"),
    (f"spotify:artist:{ALBUM_ID}", "artist"),
])
async def test_a_link_to_something_that_is_not_a_track_says_what_it_is(spotify, links, target, kind):
    links.redirect(LINK, target)
    with pytest.raises(UnsupportedInputError) as info:
        await resolve(spotify, links)
    assert f"leads to a Spotify {kind}, not a track" in str(info.value)
    assert spotify.api_requests() == []


async def test_a_short_link_to_an_album_that_highlights_a_track_is_that_track(spotify, links):
    # A song shared from its album's page: the album's link, with the song highlighted.
    links.redirect(LINK, f"https://open.spotify.com/album/{ALBUM_ID}?highlight=spotify:track:{CREEP.track_id}&si=x")
    track = await resolve(spotify, links)
    assert (track.title, track.key) == ("Creep", f"spotify:{CREEP.track_id}")


async def test_a_page_naming_an_album_is_not_a_track(spotify, links):
    links.page(LINK, f'<meta property="og:url" content="https://open.spotify.com/album/{ALBUM_ID}">')
    with pytest.raises(UnsupportedInputError, match="album, not a track"):
        await resolve(spotify, links)


@pytest.fixture
def internal(tmp_path):
    """A service no user link may reach."""
    (tmp_path / "secret").write_bytes(b"internal")
    with FakeAudioServer(tmp_path) as server:
        yield server


@pytest.mark.parametrize("location", [
    "http://127.0.0.1:{port}/secret",
    "http://2130706433:{port}/secret",
    "https://evil.example/track/{id}",
    "https://open.spotify.com.evil.example/track/{id}",
    "https://spotify.link@127.0.0.1:{port}/secret",
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ",  # on the allowlist, but not where a Spotify link goes
    "https://apps.apple.com/app/spotify/id324684580",
    "file:///etc/passwd",
    "javascript:alert(1)",
])
async def test_a_redirect_off_spotify_is_refused_without_following_it(spotify, links, internal, location):
    links.redirect(LINK, location.format(port=internal.port, id=CREEP.track_id))
    with pytest.raises(BlockedURLError) as info:
        await resolve(spotify, links)
    assert str(info.value) == AWAY_MESSAGE
    assert internal.requests == [] and links.requests == [LINK]
    assert spotify.api_requests() == []


async def test_a_short_link_host_off_the_operators_allowlist_is_never_asked(spotify, links):
    links.redirect(LINK, APP_LINK)
    links.redirect(APP_LINK, track_url(CREEP.track_id))
    with pytest.raises(BlockedURLError):
        await resolve(spotify, links, allowed_hosts=frozenset({"open.spotify.com", "spotify.link"}))
    assert links.requests == [LINK]


async def test_a_redirect_loop_ends_after_a_few_hops(spotify, links):
    links.redirect(LINK, APP_LINK)
    links.redirect(APP_LINK, "/hRkBrwub9xb")  # relative: spotify.app.link/hRkBrwub9xb, itself
    with pytest.raises(TrackNotFoundError) as info:
        await resolve(spotify, links)
    assert str(info.value) == LOOP_MESSAGE
    assert links.requests == [LINK] + [APP_LINK] * (MAX_HOPS - 1)


def test_no_more_than_a_small_part_of_a_big_page_is_read(links):
    """A page is read up to MAX_PAGE_BYTES: a link past them is not seen, and the 32 MB page is
    not downloaded."""
    short_links = ShortLinkResolver(DEFAULT_ALLOWED, base_url=links.base_url)
    links.page(LINK, OG_URL.format(id=CREEP.track_id), padding_bytes=MAX_PAGE_BYTES // 2)
    assert short_links.track_id(LINK) == CREEP.track_id  # within the cap: found

    big = "https://spotify.link/BigPage"
    links.page(big, OG_URL.format(id=CREEP.track_id), padding_bytes=32 * 1024 * 1024)
    started = time.monotonic()
    with pytest.raises(TrackNotFoundError):
        short_links.track_id(big)
    assert time.monotonic() - started < 2.0
    time.sleep(0.2)  # the server notices the closed connection
    assert links.bytes_sent["/spotify.link/BigPage"] < 16 * 1024 * 1024


def test_a_short_link_host_that_never_answers_is_given_up_on_in_time(links):
    links.hang(LINK)
    started = time.monotonic()
    with pytest.raises(SpotifyUnavailableError, match="couldn't open that Spotify link"):
        ShortLinkResolver(DEFAULT_ALLOWED, base_url=links.base_url, timeout_s=0.5).track_id(LINK)
    assert time.monotonic() - started < 2.0


def slow_head() -> tuple[bytes, int]:
    """A redirect whose head comes a byte at a time (~30 s at 0.2 s a byte)."""
    return drip_response("302 Found", {"Location": track_url(CREEP.track_id)}, padding_bytes=100), 0


def slow_page() -> tuple[bytes, int]:
    """A page whose head comes at once and whose body a byte at a time."""
    answer = drip_response(body=b" " * 100 + OG_URL.format(id=CREEP.track_id).encode())
    return answer, answer.index(b"\r\n\r\n") + 4


@pytest.mark.parametrize("route", ["base_url", "own host"])
@pytest.mark.parametrize("answer", [slow_head, slow_page], ids=["head", "page"])
def test_a_short_link_host_that_drips_its_answer_is_given_up_on_in_time(links, answer, route):
    response, at_once = answer()
    links.drip(LINK, response, every_s=0.2, at_once=at_once)
    if route == "base_url":
        short_links, link = ShortLinkResolver(DEFAULT_ALLOWED, base_url=links.base_url, timeout_s=0.5), LINK
    else:
        short_links, link = on_its_own_host(links, resolver=rebinding(PUBLIC, "127.0.0.1"), timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(SpotifyUnavailableError, match="couldn't open that Spotify link"):
        short_links.track_id(link)
    assert time.monotonic() - started < 3.0


async def test_a_short_link_redirecting_to_a_path_in_utf_8_is_followed_to_its_track(spotify, links):
    # The Location's bytes as a server sends them, UTF-8: http.client reads a head as latin-1, and
    # the next hop is asked for them percent-encoded, as a browser (and urllib) would.
    redirect = drip_response("302 Found", {"Location": "https://spotify.link/café"})
    links.drip(LINK, redirect, every_s=0.0, at_once=len(redirect))
    links.redirect("https://spotify.link/caf%C3%A9", track_url(CREEP.track_id))
    track = await resolve(spotify, links)
    assert track.key == f"spotify:{CREEP.track_id}"
    assert links.requests == [LINK, "https://spotify.link/caf%C3%A9"]


async def test_a_short_link_redirecting_to_a_host_spelt_in_utf_8_leads_away(spotify, links):
    # Percent-encoded, the look-alike's name is no short-link host: not followed, not a crash.
    redirect = drip_response("302 Found", {"Location": "https://spötify.link/hRkBrwub9xb"})
    links.drip(LINK, redirect, every_s=0.0, at_once=len(redirect))
    with pytest.raises(BlockedURLError) as info:
        await resolve(spotify, links)
    assert str(info.value) == AWAY_MESSAGE
    assert links.requests == [LINK] and spotify.api_requests() == []


@pytest.mark.parametrize("status, headers", [
    (500, None), (503, None),
    # Too many requests, or too slow a request: the link may well be alive, so not "dead".
    (429, None), (429, {"Retry-After": "nan"}), (408, None),
])
async def test_a_short_link_host_that_fails_is_unavailable(spotify, links, status, headers):
    links.status(LINK, status, headers)
    with pytest.raises(SpotifyUnavailableError) as info:
        await resolve(spotify, links)
    assert str(info.value) == UNREACHABLE_MESSAGE
    assert spotify.api_requests() == []


@pytest.mark.parametrize("retry_after, wait_s, when", [
    ("30", 30.0, "a minute"), ("600", 600.0, "about 10 minutes"), ("1e300", 24 * 3600.0, "an hour or so"),
])
async def test_a_short_link_host_asking_to_wait_passes_the_wait_on(spotify, links, retry_after, wait_s, when):
    links.status(LINK, 429, {"Retry-After": retry_after})
    with pytest.raises(SpotifyBusyError) as info:
        await resolve(spotify, links)
    assert info.value.retry_after_s == wait_s
    assert f"try again in {when}" in str(info.value)
    assert "open.spotify.com link" in str(info.value)  # the name or the full link works meanwhile
    assert links.requests == [LINK] and spotify.api_requests() == []


# -- the production path: the link's own host, vetted like every user link ------------------

def test_a_short_link_host_resolving_to_a_private_address_is_not_asked():
    short_links = ShortLinkResolver(DEFAULT_ALLOWED, resolver=lambda host: ["10.0.0.5"])
    with pytest.raises(BlockedURLError):
        short_links.track_id(LINK)


def test_a_short_link_hop_connects_to_the_address_its_connection_vetted(links):
    # The check's lookup says public; the connection looks the name up again, vets the answer
    # (the fake's 127.0.0.1, which plays a public address here) and connects to that very address.
    links.redirect(LINK, track_url(CREEP.track_id))
    short_links, link = on_its_own_host(links, resolver=rebinding(PUBLIC, "127.0.0.1"))
    assert short_links.track_id(link) == CREEP.track_id
    assert links.requests == [LINK]


def test_a_short_link_host_that_rebinds_to_a_private_address_is_never_asked(links):
    # DNS rebinding: a public address for the check, 127.0.0.1 (public to nobody here) for the connection.
    links.redirect(LINK, track_url(CREEP.track_id))
    short_links = ShortLinkResolver(DEFAULT_ALLOWED, resolver=rebinding(PUBLIC, "127.0.0.1"))
    with pytest.raises(BlockedURLError):
        short_links.track_id(f"http://spotify.link:{links.port}/hRkBrwub9xb")
    assert links.requests == []


def test_a_short_link_host_that_does_not_resolve_is_an_outage():
    def no_such_host(host: str) -> list[str]:
        raise OSError(f"unknown host {host}")

    with pytest.raises(DownloadError, match="couldn't reach spotify.link"):
        ShortLinkResolver(DEFAULT_ALLOWED, resolver=no_such_host).track_id(LINK)


def test_the_operators_allowlist_judges_short_links_as_it_judges_every_link(monkeypatch, tmp_path):
    from bot.app import build_sources
    from bot.config import Settings
    from bot.sources.spotify import resolver_from_settings

    monkeypatch.chdir(tmp_path)
    settings = Settings(spotify_client_id="a", spotify_client_secret="b",
                        allowed_hosts="open.spotify.com,spotify.link,youtube.com")
    for resolver in (resolver_from_settings(settings), build_sources(settings)[0]):
        with pytest.raises(BlockedURLError):  # refused before any lookup or request
            resolver.short_links.track_id(APP_LINK)
