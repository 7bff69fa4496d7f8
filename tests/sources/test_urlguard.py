"""A user's link never makes the bot reach an internal address: not directly, not in disguise,
not through DNS, not through a redirect."""
from __future__ import annotations

import ipaddress

import pytest

from bot.sources.audio import AudioFetcher
from bot.sources.models import BlockedURLError, DownloadError, Query, QueryKind
from bot.sources.query import DEFAULT_ALLOWED
from bot.sources.urlguard import URLGuard, is_public_address, parse_ip_literal
from tests.fakes.audio_http import FakeAudioServer

PUBLIC = "93.184.216.34"


def no_dns(host: str) -> list[str]:
    raise AssertionError(f"no DNS lookup expected for {host}")


def table_resolver(table: dict[str, list[str]]):
    def resolve(host: str) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


@pytest.mark.parametrize("host, expected", [
    ("127.0.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("127.1", "127.0.0.1"),
    ("0", "0.0.0.0"),
    ("[::1]", "::1"),
    ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
    ("youtube.com", None),
    ("bad.cafe", None),
])
def test_ip_literals_in_every_spelling(host, expected):
    parsed = parse_ip_literal(host)
    assert parsed == (ipaddress.ip_address(expected) if expected else None)


@pytest.mark.parametrize("address, public", [
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("240.0.0.1", False), ("255.255.255.255", False),
    ("::1", False), ("::", False), ("fe80::1", False), ("fc00::1", False), ("ff02::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False), ("64:ff9b::a00:1", False),
    ("2002:7f00:1::", False),
    (PUBLIC, True), ("8.8.8.8", True), ("2606:4700:4700::1111", True), (f"::ffff:{PUBLIC}", True),
])
def test_public_addresses(address, public):
    assert is_public_address(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/",
    "http://127.0.0.1:8080/admin",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://127.1/",
    "http://0/",
    "http://[fe80::1]/",
    "http://10.0.0.1/",
    "http://youtube.com@127.0.0.1/",
    "http://youtube.com:pw@youtube.com/",
    "file:///etc/passwd",
    "gopher://youtube.com/",
    "https://evil.example/",
    "https://youtube.com.evil.example/",
])
def test_blocked_urls_are_refused_without_dns(url):
    # The allowlist even names the internal addresses: they are still refused.
    allowed = DEFAULT_ALLOWED | {"127.0.0.1", "::1", "169.254.169.254", "10.0.0.1", "0"}
    guard = URLGuard(allowed, resolver=no_dns)
    with pytest.raises(BlockedURLError):
        guard.check(url)


def test_names_that_resolve_to_private_addresses_are_refused():
    guard = URLGuard(frozenset({"sneaky.example", "mixed.example", "fine.example", "v6.example"}),
                     resolver=table_resolver({
                         "sneaky.example": ["10.0.0.5"],
                         "mixed.example": [PUBLIC, "127.0.0.1"],
                         "v6.example": ["::ffff:192.168.0.1"],
                         "fine.example": [PUBLIC],
                     }))
    for host in ("sneaky.example", "mixed.example", "v6.example", "unknown.example"):
        with pytest.raises(BlockedURLError):
            guard.check(f"https://{host}/watch")
    assert guard.check("https://fine.example/watch") == "https://fine.example/watch"


def test_subdomains_of_allowed_hosts_pass():
    guard = URLGuard(frozenset({"youtube.com"}), resolver=table_resolver({"consent.youtube.com": [PUBLIC]}))
    assert guard.check("https://consent.youtube.com/x")


def test_an_allowed_host_that_does_not_resolve_is_an_outage_not_a_bad_link():
    guard = URLGuard(frozenset({"youtube.com", "youtu.be"}), resolver=table_resolver({}))
    for url in ("https://youtu.be/dQw4w9WgXcQ", "https://www.youtube.com/watch?v=dQw4w9WgXcQ"):
        with pytest.raises(DownloadError, match="couldn't reach YouTube right now"):
            guard.check(url)
    with pytest.raises(BlockedURLError):  # off the allowlist: refused before any lookup, as before
        URLGuard(frozenset({"youtube.com"}), resolver=no_dns).check("https://nowhere.example/a.mp3")


@pytest.fixture
def target(tmp_path):
    """An 'internal' service: it must never see a request."""
    (tmp_path / "secret.ogg").write_bytes(b"OggS internal data")
    with FakeAudioServer(tmp_path) as server:
        yield server


@pytest.fixture
def front(tmp_path_factory, audio_root):
    """An allowed host ("localhost", resolved by the test resolver to a public address) that
    redirects wherever the test says."""
    with FakeAudioServer(audio_root) as server:
        yield server


def localhost_guard() -> URLGuard:
    return URLGuard(frozenset({"localhost"}), resolver=table_resolver({
        "localhost": [PUBLIC], "internal.example": ["10.0.0.7"],
    }))


def test_redirect_to_a_private_address_is_refused_before_any_request(front, target):
    front.add_redirect("/to-loopback", f"http://127.0.0.1:{target.port}/secret.ogg")
    front.add_redirect("/to-decimal", f"http://2130706433:{target.port}/secret.ogg")
    front.add_redirect("/to-internal-name", f"http://internal.example:{target.port}/secret.ogg")
    front.add_redirect("/hop", f"http://localhost:{front.port}/to-loopback")
    guard = localhost_guard()
    for path in ("/to-loopback", "/to-decimal", "/to-internal-name", "/hop"):
        with pytest.raises(BlockedURLError):
            guard.final_url(f"http://localhost:{front.port}{path}")
    assert target.requests == []
    assert [r.path for r in front.requests] == ["/to-loopback", "/to-decimal", "/to-internal-name", "/hop", "/to-loopback"]


@pytest.mark.parametrize("location", [
    "file:///etc/passwd", "gopher://127.0.0.1:25/x", "data:audio/ogg;base64,T2dnUw==", "javascript:alert(1)",
])
def test_redirect_to_a_scheme_urllib_will_not_follow_is_refused_not_handed_on(front, location):
    # urllib stops at such a hop with an HTTPError whose URL is the hop's target: that URL was
    # never vetted, so it must not become the "end of the chain" given to the downloader.
    front.add_redirect("/away", location)
    with pytest.raises(BlockedURLError):
        localhost_guard().final_url(f"http://localhost:{front.port}/away")


def test_an_http_error_at_the_end_of_a_vetted_chain_is_left_to_the_downloader(front):
    front.add_redirect("/gone", f"http://localhost:{front.port}/missing.ogg")
    final = localhost_guard().final_url(f"http://localhost:{front.port}/gone")
    assert final == f"http://localhost:{front.port}/missing.ogg"


def test_redirect_between_allowed_hosts_is_followed(front):
    front.add_redirect("/short", f"http://localhost:{front.port}/clip.ogg")
    final = localhost_guard().final_url(f"http://localhost:{front.port}/short")
    assert final == f"http://localhost:{front.port}/clip.ogg"
    assert [(r.method, r.path) for r in front.requests] == [("HEAD", "/short"), ("HEAD", "/clip.ogg")]


async def test_fetcher_checks_redirects_of_a_user_link_before_ytdlp_sees_it(front, target, tmp_path):
    front.add_redirect("/watch", f"http://127.0.0.1:{target.port}/secret.ogg")
    fetcher = AudioFetcher(allowed_hosts=frozenset({"localhost"}), tmp_dir=tmp_path / "work",
                           resolver=table_resolver({"localhost": [PUBLIC]}))
    link = Query(kind=QueryKind.YOUTUBE, youtube_id="dQw4w9WgXcQ", url=f"http://localhost:{front.port}/watch")
    with pytest.raises(BlockedURLError):
        async with fetcher.fetch(link):
            pass
    assert target.requests == []
    assert list((tmp_path / "work").iterdir()) == []


async def test_fetcher_refuses_a_user_link_to_a_private_address_without_any_request(target, tmp_path):
    fetcher = AudioFetcher(allowed_hosts=DEFAULT_ALLOWED | {"127.0.0.1"}, tmp_dir=tmp_path, resolver=no_dns)
    link = Query(kind=QueryKind.YOUTUBE, youtube_id="dQw4w9WgXcQ", url=f"http://127.0.0.1:{target.port}/secret.ogg")
    with pytest.raises(BlockedURLError):
        async with fetcher.fetch(link):
            pass
    assert target.requests == []


async def test_a_track_known_only_by_its_video_id_is_vetted_too(front, target, tmp_path):
    from bot.sources.models import TrackInfo

    front.add_redirect("/watch", f"http://127.0.0.1:{target.port}/secret.ogg")
    fetcher = AudioFetcher(allowed_hosts=frozenset({"localhost"}), tmp_dir=tmp_path,
                           resolver=table_resolver({"localhost": [PUBLIC]}))
    track = TrackInfo(key="youtube:dQw4w9WgXcQ", title="x", youtube_id="dQw4w9WgXcQ",
                      source_url=f"http://localhost:{front.port}/watch")
    with pytest.raises(BlockedURLError):
        async with fetcher.fetch(track):
            pass
    assert target.requests == []


async def test_a_vetted_user_link_is_fetched_and_keyed_by_its_video_id(front, tmp_path):
    from bot.sources.audio import track_from_fetch

    front.add_redirect("/watch", f"http://localhost:{front.port}/clip.ogg")
    fetcher = AudioFetcher(allowed_hosts=frozenset({"localhost"}), tmp_dir=tmp_path,
                           resolver=table_resolver({"localhost": [PUBLIC]}))
    link = Query(kind=QueryKind.YOUTUBE, youtube_id="dQw4w9WgXcQ", url=f"http://localhost:{front.port}/watch")
    async with fetcher.fetch(link) as audio:
        assert audio.path.stat().st_size > 0
        assert audio.youtube_id == "dQw4w9WgXcQ"
        assert track_from_fetch(link, audio).key == "youtube:dQw4w9WgXcQ"
    # yt-dlp was handed the vetted end of the chain, not the redirecting link
    assert [r.path for r in front.requests if r.method == "GET"] == ["/clip.ogg", "/clip.ogg"]
