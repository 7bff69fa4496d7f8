"""A user's link never makes the bot reach an internal address: not directly, not in disguise,
not through DNS, not through a redirect."""
from __future__ import annotations

import ipaddress
import logging
import time

import pytest

from bot.sources.audio import AudioFetcher
from bot.sources.models import BlockedURLError, DownloadError, Query, QueryKind
from bot.sources.query import DEFAULT_ALLOWED
from bot.sources.urlguard import (
    ConnectPolicy,
    URLGuard,
    is_public_address,
    open_connection,
    parse_ip_literal,
    system_resolver,
)
from tests.fakes.audio_http import FakeAudioServer, PlaylistEntry, drip_response, xspf_document

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
    # Not routed on the internet, whatever Python's ipaddress says (3.11.7 calls them global):
    # IPv6 site-local (deprecated, still used inside networks), IETF protocol assignments, the
    # 6to4 relay anycast, the IPv6 documentation prefix of 2024.
    ("fec0::1", False), ("feff::1", False), ("192.0.0.8", False), ("192.0.0.170", False),
    ("192.88.99.1", False), ("3fff::1", False),
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
    "http://youtube.com@youtube.com/",  # a user name alone, no password: userinfo all the same
    "file:///etc/passwd",
    "gopher://youtube.com/",
    "https://evil.example/",
    "https://youtube.com.evil.example/",
    "https://evilyoutube.com/watch",  # ends with an allowed name, but is no subdomain of it
    # A redirect's host with what no host name holds: a resolver reads "\." as a dot inside a label
    # (the name "evil.example\.youtube", under com), a browser "\" and "%2f" as a path's "/".
    "https://evil.example\\.youtube.com/",
    "https://evil.example%2f.youtube.com/",
])
def test_blocked_urls_are_refused_without_dns(url):
    # The allowlist even names the internal addresses: they are still refused.
    allowed = DEFAULT_ALLOWED | {"127.0.0.1", "::1", "169.254.169.254", "10.0.0.1", "0"}
    guard = URLGuard(allowed, resolver=no_dns)
    with pytest.raises(BlockedURLError):
        guard.check(url)


def test_names_that_resolve_to_private_addresses_are_refused():
    guard = URLGuard(frozenset({"sneaky.example", "mixed.example", "fine.example", "v6.example", "site.example"}),
                     resolver=table_resolver({
                         "sneaky.example": ["10.0.0.5"],
                         "mixed.example": [PUBLIC, "127.0.0.1"],
                         "v6.example": ["::ffff:192.168.0.1"],
                         "site.example": ["fec0::5"],
                         "fine.example": [PUBLIC],
                     }))
    for host in ("sneaky.example", "mixed.example", "v6.example", "site.example", "unknown.example"):
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


def stand_in(server: FakeAudioServer) -> frozenset[tuple[str, int]]:
    """The local server plays a public host for the download worker's connections too (the
    resolver says so only to the URL guard)."""
    return frozenset({("127.0.0.1", server.port), ("::1", server.port)})


def localhost_guard(front: FakeAudioServer) -> URLGuard:
    return URLGuard(frozenset({"localhost"}), resolver=table_resolver({
        "localhost": [PUBLIC], "internal.example": ["10.0.0.7"],
    }), connections=ConnectPolicy(stand_in(front)))


def test_redirect_to_a_private_address_is_refused_before_any_request(front, target):
    front.add_redirect("/to-loopback", f"http://127.0.0.1:{target.port}/secret.ogg")
    front.add_redirect("/to-decimal", f"http://2130706433:{target.port}/secret.ogg")
    front.add_redirect("/to-internal-name", f"http://internal.example:{target.port}/secret.ogg")
    front.add_redirect("/hop", f"http://localhost:{front.port}/to-loopback")
    guard = localhost_guard(front)
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
        localhost_guard(front).final_url(f"http://localhost:{front.port}/away")


def test_an_http_error_at_the_end_of_a_vetted_chain_is_left_to_the_downloader(front):
    front.add_redirect("/gone", f"http://localhost:{front.port}/missing.ogg")
    final = localhost_guard(front).final_url(f"http://localhost:{front.port}/gone")
    assert final == f"http://localhost:{front.port}/missing.ogg"


def test_a_hop_whose_name_resolves_to_a_private_address_when_connecting_is_never_asked(front):
    # The guard's resolver says public; the system's lookup, which the connection used, says 127.0.0.1.
    rebinding = URLGuard(frozenset({"localhost"}), resolver=table_resolver({"localhost": [PUBLIC]}))
    with pytest.raises(BlockedURLError):
        rebinding.final_url(f"http://localhost:{front.port}/clip.ogg")
    assert front.requests == []


def test_a_name_that_resolves_to_an_allowed_and_a_private_address_is_never_connected_to(front):
    # A rebinding name may answer one address that may be reached beside one that may not: the
    # connection is refused, not made to the allowed one of the two.
    resolver = table_resolver({"mixed.example": ["127.0.0.1", "10.0.0.7"]})
    with pytest.raises(BlockedURLError):
        open_connection(ConnectPolicy(stand_in(front)), ("mixed.example", front.port), resolver=resolver)
    assert front.requests == []


def test_redirect_between_allowed_hosts_is_followed(front):
    front.add_redirect("/short", f"http://localhost:{front.port}/clip.ogg")
    final = localhost_guard(front).final_url(f"http://localhost:{front.port}/short")
    assert final == f"http://localhost:{front.port}/clip.ogg"
    assert [(r.method, r.path) for r in front.requests] == [("HEAD", "/short"), ("HEAD", "/clip.ogg")]


# -- a host that answers a byte at a time is given up on when the chain's time is up ---------

def test_a_host_that_drips_its_answer_is_given_up_on_at_the_deadline(front):
    # A byte every 0.2 s: no single read waits long, but the head alone would take ~30 s.
    front.add_drip("/drip", drip_response(padding_bytes=100), every_s=0.2)
    started = time.monotonic()
    with pytest.raises(DownloadError, match="couldn't reach that link"):
        localhost_guard(front).final_url(f"http://localhost:{front.port}/drip", timeout_s=0.5)
    assert time.monotonic() - started < 3.0


def test_the_deadline_is_for_the_whole_chain_not_for_each_hop(front):
    # Four redirects, each answered in about 0.4 s: each one alone is in time, all of them are not.
    for n in range(1, 5):
        target = f"http://localhost:{front.port}/" + (f"hop{n + 1}" if n < 4 else "clip.ogg")
        front.add_drip(f"/hop{n}", drip_response("302 Found", {"Location": target}), every_s=0.004)
    started = time.monotonic()
    with pytest.raises(DownloadError, match="couldn't reach that link"):
        localhost_guard(front).final_url(f"http://localhost:{front.port}/hop1", timeout_s=0.5)
    assert time.monotonic() - started < 3.0


# -- a host whose answer is no HTTP, a name no DNS can hold: the usual answers, not a crash ----

GARBLED = {  # what http.client raises an HTTPException for, which is no OSError
    "status line": b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
    "not http": b"SSH-2.0-OpenSSH_9.6\r\n",
    "101 headers": b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: 1\r\n" % n for n in range(101)) + b"\r\n",
    "overlong header": b"HTTP/1.1 200 OK\r\nX-Long: " + b"x" * 70_000 + b"\r\n\r\n",
}


@pytest.mark.parametrize("answer", GARBLED.values(), ids=GARBLED.keys())
def test_a_host_whose_answer_is_no_http_is_a_link_i_couldnt_reach(front, answer):
    front.add_drip("/garbled", answer, every_s=0.0, at_once=len(answer))
    front.add_redirect("/hop", f"http://localhost:{front.port}/garbled")
    guard = localhost_guard(front)
    for path in ("/garbled", "/hop"):  # the link itself, or a hop of its chain
        with pytest.raises(DownloadError, match="couldn't reach that link"):
            guard.final_url(f"http://localhost:{front.port}{path}")


# An empty label, a label over 63 characters: the system's resolver refuses such a name before any
# lookup, with a UnicodeError (a ValueError, not the OSError of a failed lookup).
NO_DNS_NAMES = ["a..{host}", "x" * 64 + ".{host}"]
NO_DNS_IDS = ["empty label", "64-character label"]


def table_then_system(table: dict[str, list[str]]):
    """The table's names as it says; any other name as the system's resolver answers it."""
    return lambda host: table[host] if host in table else system_resolver(host)


@pytest.mark.parametrize("name", NO_DNS_NAMES, ids=NO_DNS_IDS)
def test_a_link_whose_host_name_no_dns_can_hold_is_refused_as_a_bad_link(name):
    with pytest.raises(BlockedURLError, match="I can't open that link"):
        URLGuard(DEFAULT_ALLOWED).check(f"https://{name.format(host='youtube.com')}/watch?v=dQw4w9WgXcQ")


@pytest.mark.parametrize("name", NO_DNS_NAMES, ids=NO_DNS_IDS)
def test_a_redirect_to_a_host_name_no_dns_can_hold_is_refused_as_a_bad_link(front, name):
    front.add_redirect("/odd", f"http://{name.format(host='localhost')}:{front.port}/clip.ogg")
    guard = URLGuard(frozenset({"localhost"}), resolver=table_then_system({"localhost": [PUBLIC]}),
                     connections=ConnectPolicy(stand_in(front)))
    with pytest.raises(BlockedURLError, match="I can't open that link"):
        guard.final_url(f"http://localhost:{front.port}/odd")
    assert [r.path for r in front.requests] == ["/odd"]


@pytest.mark.parametrize("name", NO_DNS_NAMES, ids=NO_DNS_IDS)
def test_a_connection_to_a_host_name_no_dns_can_hold_is_refused_not_a_crash(name):
    # Where a name is looked up to be connected to: by a hop's connection, and by the download
    # worker's watch over yt-dlp's connections.
    from bot.sources.connectguard import RefusedConnectionError, Watch

    host = name.format(host="example.com")
    with pytest.raises(BlockedURLError):
        open_connection(ConnectPolicy(), (host, 80))
    watch = Watch(ConnectPolicy())
    with pytest.raises(RefusedConnectionError):
        watch.check(host, 80, "a connection")
    assert len(watch.refused) == 1


async def test_fetcher_checks_redirects_of_a_user_link_before_ytdlp_sees_it(front, target, tmp_path):
    front.add_redirect("/watch", f"http://127.0.0.1:{target.port}/secret.ogg")
    fetcher = AudioFetcher(allowed_hosts=frozenset({"localhost"}), tmp_dir=tmp_path / "work",
                           resolver=table_resolver({"localhost": [PUBLIC]}), public_stand_ins=stand_in(front))
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
                           resolver=table_resolver({"localhost": [PUBLIC]}), public_stand_ins=stand_in(front))
    track = TrackInfo(key="youtube:dQw4w9WgXcQ", title="x", youtube_id="dQw4w9WgXcQ",
                      source_url=f"http://localhost:{front.port}/watch")
    with pytest.raises(BlockedURLError):
        async with fetcher.fetch(track):
            pass
    assert target.requests == []


async def test_a_vetted_user_link_is_fetched_and_keyed_by_its_video_id(front, tmp_path):
    front.add_redirect("/watch", f"http://localhost:{front.port}/clip.ogg")
    fetcher = AudioFetcher(allowed_hosts=frozenset({"localhost"}), tmp_dir=tmp_path,
                           resolver=table_resolver({"localhost": [PUBLIC]}), public_stand_ins=stand_in(front))
    link = Query(kind=QueryKind.YOUTUBE, youtube_id="dQw4w9WgXcQ", url=f"http://localhost:{front.port}/watch")
    async with fetcher.fetch(link) as audio:
        assert audio.path.stat().st_size > 0
        assert audio.youtube_id == "dQw4w9WgXcQ"  # the use case's key: youtube:<id>
    # yt-dlp was handed the vetted end of the chain, not the redirecting link; between its look and
    # its download, the bot's look at the file's size (a clip of unknown length: fetched whole)
    assert [(r.path, r.range is not None) for r in front.requests if r.method == "GET"] == [
        ("/clip.ogg", False), ("/clip.ogg", True), ("/clip.ogg", False)]


# -- what yt-dlp does with the vetted link: it asks again, follows, resolves and reads on its own --

@pytest.mark.parametrize("url", [
    f"ftp://{PUBLIC}:21/song.mp3",  # a public address, but no HTTP: no downloader of ours reads it
    f"rtmp://{PUBLIC}:1935/live/song",
    "file:///etc/passwd",
])
def test_a_format_url_that_is_not_http_is_refused_before_any_connection(url):
    from bot.sources.connectguard import RefusedConnectionError, Watch, vet_format_url

    watch = Watch(ConnectPolicy())
    with pytest.raises(RefusedConnectionError):
        vet_format_url(watch, url)
    assert len(watch.refused) == 1


@pytest.mark.parametrize("url", ["http://10.0.0.7/song.mp3", "https://[::1]:8443/song.mp3", "http://2130706433/a"])
def test_a_format_url_to_an_internal_address_is_refused_before_the_download_starts(url):
    from bot.sources.connectguard import RefusedConnectionError, Watch, vet_format_url

    watch = Watch(ConnectPolicy())
    with pytest.raises(RefusedConnectionError):
        vet_format_url(watch, url)
    assert len(watch.refused) == 1


@pytest.mark.parametrize("name", NO_DNS_NAMES, ids=NO_DNS_IDS)
def test_a_format_url_whose_host_name_no_dns_can_hold_is_refused_before_the_download_starts(name):
    from bot.sources.connectguard import RefusedConnectionError, Watch, vet_format_url

    watch = Watch(ConnectPolicy())
    with pytest.raises(RefusedConnectionError):
        vet_format_url(watch, f"https://{name.format(host='example.com')}/song.mp3")
    assert len(watch.refused) == 1


def test_a_download_of_a_user_link_looks_up_only_the_allowlist_and_its_sites_media_hosts():
    import socket

    from bot.sources.connectguard import RefusedConnectionError, public_connections_only
    from bot.sources.urlguard import reachable_hosts

    hosts = reachable_hosts(DEFAULT_ALLOWED)
    assert {"www.youtube.com", "youtube.com", "googlevideo.com", "open.spotify.com"} <= hosts
    assert "googlevideo.com" not in reachable_hosts(frozenset({"open.spotify.com"}))  # no YouTube, no YouTube CDN
    with public_connections_only(ConnectPolicy(hosts=hosts)) as watch:
        watch.check_name("rr3---sn-4g5e6nz7.googlevideo.com", "a lookup of")
        watch.check_name("WWW.YouTube.com.", "a lookup of")
        for host, port in [("example.com", 443), (PUBLIC, 80), (b"evil.example", 80), ("googlevideo.com.evil.example", 443),
                           ("evil.example\\.youtube.com", 443)]:
            with pytest.raises(RefusedConnectionError):
                socket.getaddrinfo(host, port)  # refused before any DNS query
        with pytest.raises(RefusedConnectionError):
            socket.gethostbyname("example.com")
        with pytest.raises(RefusedConnectionError), socket.socket() as sock:
            # A name handed to connect() itself: looked up (no hook sees that), but not connected to.
            sock.connect(("localhost", 1))
        assert watch.away and len(watch.refused) == 7
    # Between a user link's downloads, nothing is watched.
    assert socket.getaddrinfo("localhost", 80)


@pytest.fixture
def work(tmp_path):
    """The fetcher's temporary folder (beside the target's files, which tmp_path holds)."""
    return tmp_path / "work"


def user_link_fetcher(front: FakeAudioServer, work, public_stand_ins=None) -> AudioFetcher:
    return AudioFetcher(allowed_hosts=frozenset({"localhost"}), tmp_dir=work, timeout_s=30,
                        resolver=table_resolver({"localhost": [PUBLIC]}),
                        public_stand_ins=stand_in(front) if public_stand_ins is None else public_stand_ins)


def user_link(front: FakeAudioServer, path: str = "/watch") -> Query:
    return Query(kind=QueryKind.YOUTUBE, youtube_id="dQw4w9WgXcQ", url=f"http://localhost:{front.port}{path}")


def video_known_by_id(front: FakeAudioServer, duration_s: float, path: str = "/watch"):
    """A track known only by its video, and its length: a section of it is cut (by ffmpeg, unless
    it is Ogg or WebM)."""
    from bot.sources.models import TrackInfo

    return TrackInfo(key="youtube:dQw4w9WgXcQ", title="x", youtube_id="dQw4w9WgXcQ", duration_s=duration_s,
                     source_url=f"http://localhost:{front.port}{path}")


async def assert_refused(fetcher: AudioFetcher, item, work) -> None:
    with pytest.raises(BlockedURLError):
        async with fetcher.fetch(item):
            pass
    assert list(work.iterdir()) == []  # the download's folder is gone


async def test_a_redirect_made_only_to_ytdlps_get_is_refused(front, target, work):
    # The guard's HEAD is answered 404; the GET after it is redirected to an internal address.
    front.add_redirect("/watch", f"http://127.0.0.1:{target.port}/secret.ogg", methods=("GET",))
    await assert_refused(user_link_fetcher(front, work), user_link(front), work)
    assert target.requests == []
    assert [r.method for r in front.requests] == ["HEAD", "GET"]


@pytest.fixture
def elsewhere(audio_root):
    """A PUBLIC host off the allowlist (its port is a stand-in for a public address, its name is
    not "localhost"), serving a perfectly good song: only the allowlist stops a fetch of it."""
    with FakeAudioServer(audio_root) as server:
        yield server


def away_fetcher(front: FakeAudioServer, elsewhere: FakeAudioServer, work) -> AudioFetcher:
    return user_link_fetcher(front, work, public_stand_ins=stand_in(front) | stand_in(elsewhere))


async def assert_led_away(fetcher: AudioFetcher, item, work, elsewhere: FakeAudioServer, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="bot.sources.connectguard"):
        with pytest.raises(BlockedURLError, match="leads away from the sites I fetch from"):
            async with fetcher.fetch(item):
                pass
    assert elsewhere.requests == []
    assert list(work.iterdir()) == []
    assert any("127.0.0.1" in r.getMessage() and "allowlist" in r.getMessage() for r in caplog.records)


async def test_a_redirect_to_a_public_host_off_the_allowlist_is_refused_before_ytdlp_runs(front, elsewhere, work):
    front.add_redirect("/watch", f"http://127.0.0.1:{elsewhere.port}/clip.ogg")
    await assert_refused(away_fetcher(front, elsewhere, work), user_link(front), work)
    assert elsewhere.requests == []
    assert [r.method for r in front.requests] == ["HEAD"]  # the guard's: yt-dlp never asked


async def test_a_redirect_of_ytdlps_get_to_a_public_host_off_the_allowlist_is_refused(front, elsewhere, work, caplog):
    # The guard's HEAD is answered 404; yt-dlp's GET is redirected to a public host the allowlist
    # does not name: an address rule alone lets it through.
    front.add_redirect("/watch", f"http://127.0.0.1:{elsewhere.port}/clip.ogg", methods=("GET",))
    await assert_led_away(away_fetcher(front, elsewhere, work), user_link(front), work, elsewhere, caplog)
    assert [r.method for r in front.requests] == ["HEAD", "GET"]


# What a page on an allowed host may name for yt-dlp to fetch, {url} a song on a public host off the
# allowlist: each of yt-dlp's extractors (generic: meta tags, <source>, JSON-LD, a meta refresh, an
# XSPF playlist; an HLS playlist's segments) follows it, and only the connection guard stops it.
PAGES_NAMING_AWAY = {
    "audio src": ('<html><body><audio src="{url}"></audio></body></html>', "text/html"),
    "source src": ('<html><body><video><source src="{url}" type="audio/ogg"></video></body></html>', "text/html"),
    "og:video": ('<html><head><meta property="og:video" content="{url}"></head></html>', "text/html"),
    "twitter stream": ('<html><head><meta name="twitter:player:stream" content="{url}"></head></html>', "text/html"),
    "json-ld": ('<script type="application/ld+json">{{"@context": "http://schema.org", "@type": "VideoObject", '
                '"name": "x", "contentUrl": "{url}"}}</script>', "text/html"),
    "meta refresh": ('<html><head><meta http-equiv="refresh" content="0; url={url}"></head></html>', "text/html"),
    "xspf": (None, "application/xspf+xml"),  # xspf_document's
    "hls": ("#EXTM3U\n#EXT-X-TARGETDURATION:30\n#EXTINF:30.0,\n{url}\n#EXT-X-ENDLIST\n", "application/vnd.apple.mpegurl"),
}


@pytest.mark.parametrize("page", PAGES_NAMING_AWAY)
async def test_audio_a_page_names_on_a_public_host_off_the_allowlist_is_never_fetched(front, elsewhere, work, caplog,
                                                                                      page):
    body, content_type = PAGES_NAMING_AWAY[page]
    away = f"http://127.0.0.1:{elsewhere.port}/clip.ogg"
    front.add_page("/watch", body.format(url=away) if body else xspf_document([PlaylistEntry(away, 30.0)], ""),
                   content_type)
    await assert_led_away(away_fetcher(front, elsewhere, work), user_link(front), work, elsewhere, caplog)


async def test_a_redirect_of_ytdlps_get_with_a_user_name_before_a_host_off_the_allowlist_is_refused(
        front, elsewhere, work, caplog):
    # Read as browsers and urllib3 read it, the host is the one after the "@", not the allowed name before it.
    front.add_redirect("/watch", f"http://localhost:{front.port}@127.0.0.1:{elsewhere.port}/clip.ogg", methods=("GET",))
    await assert_led_away(away_fetcher(front, elsewhere, work), user_link(front), work, elsewhere, caplog)


async def test_a_redirect_of_ytdlps_get_to_a_host_no_client_parses_is_a_failed_download(front, elsewhere, work):
    # The host urlsplit reads here is "127.0.0.1:PORT\.localhost"; urllib3 can't read it at all
    # (yt-dlp escapes the "\"), and yt-dlp let its RequestError out unwrapped, which could not
    # travel back from the download worker (JobFailedError: an unexpected error to the user).
    front.add_redirect("/watch", f"http://127.0.0.1:{elsewhere.port}\\.localhost/clip.ogg", methods=("GET",))
    with pytest.raises(DownloadError, match="The download of .* failed"):
        async with away_fetcher(front, elsewhere, work).fetch(user_link(front)):
            pass
    assert elsewhere.requests == []
    assert list(work.iterdir()) == []


async def test_a_name_that_resolves_to_a_private_address_after_the_guard_looked_is_refused(front, work):
    # DNS rebinding: "localhost" gave the guard a public address; yt-dlp's own lookup gives 127.0.0.1.
    await assert_refused(user_link_fetcher(front, work, public_stand_ins=frozenset()), user_link(front, "/clip.ogg"), work)
    assert front.requests == []  # not even the guard's HEAD: it checks the addresses it connects to


async def test_an_internal_address_named_by_the_page_is_never_fetched(front, target, work):
    # yt-dlp's generic extractor reads a page's <audio src> and downloads it.
    front.add_page("/watch", f'<html><body><audio src="http://127.0.0.1:{target.port}/secret.ogg"></audio></body></html>')
    await assert_refused(user_link_fetcher(front, work), user_link(front), work)
    assert target.requests == []


async def test_an_hls_playlist_whose_segments_are_internal_is_never_fetched(front, target, work):
    front.add_page("/watch", f"#EXTM3U\n#EXT-X-TARGETDURATION:30\n#EXTINF:30.0,\n"
                             f"http://127.0.0.1:{target.port}/secret.ogg\n#EXT-X-ENDLIST\n", "application/vnd.apple.mpegurl")
    await assert_refused(user_link_fetcher(front, work), user_link(front), work)
    assert target.requests == []


async def test_a_page_naming_audio_on_a_host_name_no_dns_can_hold_is_refused_as_a_bad_link(front, work):
    # yt-dlp itself meets the name ("a..localhost": an empty label) and raises UnicodeError, no
    # error of its own: the user got "something went wrong".
    front.add_page("/watch", '<html><body><audio src="http://a..localhost/song.ogg"></audio></body></html>')
    await assert_refused(user_link_fetcher(front, work), user_link(front), work)


async def test_ffmpeg_is_never_handed_an_internal_address(front, target, work):
    # A known length and a WMA: the section is cut by ffmpeg, a process the socket guard cannot see.
    front.add_page("/watch", f'<html><body><audio src="http://127.0.0.1:{target.port}/secret.wma"></audio></body></html>')
    await assert_refused(user_link_fetcher(front, work), video_known_by_id(front, 240.0), work)
    assert target.requests == []


async def test_ffmpeg_does_not_read_a_playlist_posing_as_a_file(front, target, work):
    # The URL ffmpeg gets is the front's own, vetted; what it serves is an HLS playlist of internal segments.
    # ffmpeg will not cut it, so it goes whole to the classifier (605c54f), whose decoder must not follow it either.
    from inference.audio import load_audio
    from inference.result import UnreadableAudioError

    front.add_page("/song.m4a", f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n"
                                f"http://127.0.0.1:{target.port}/secret.ts\n#EXT-X-ENDLIST\n", "audio/mp4")
    front.add_redirect("/watch", f"http://localhost:{front.port}/song.m4a")
    async with user_link_fetcher(front, work).fetch(video_known_by_id(front, 240.0)) as audio:
        with pytest.raises(UnreadableAudioError):
            load_audio(audio.path)
    assert target.requests == []
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("ext, ranges", [("aac", False), ("m4a", True), ("mp3", True), ("aac", True)])
async def test_a_user_links_section_is_still_cut(front, long_duration, work, ext, ranges):
    """By Range requests in the watched worker (an M4A, an MP3, an ADTS AAC), or by ffmpeg from
    the downloaded copy when the host answers no ranges."""
    front.add_redirect("/watch", f"http://localhost:{front.port}/long.{ext}")
    if not ranges:
        front.whole_only.add(f"/long.{ext}")
    async with user_link_fetcher(front, work).fetch(video_known_by_id(front, long_duration)) as audio:
        assert audio.path.suffix == f".{ext}" and audio.youtube_id == "dQw4w9WgXcQ"
        assert audio.section_s is not None
        assert audio.path.stat().st_size < (front.root / f"long.{ext}").stat().st_size / 3
        fetched = audio.bytes_downloaded
    gets = [r for r in front.requests_for(f"/long.{ext}") if r.method == "GET"]
    if ranges:  # yt-dlp's own look at the file, then the ranges: the header, (the index,) the window
        assert fetched < (front.root / f"long.{ext}").stat().st_size / 4
        assert [r.range is not None for r in gets] == [False, True, True] + [True] * (ext == "m4a")

