"""While a user's link downloads, the download worker connects to public addresses only.

`URLGuard` vets a user's link and each of its redirects before the download starts. yt-dlp then
asks for the link again, on its own: it follows redirects itself (a host may redirect the GET
where it answered the guard's HEAD), resolves the name again (one that gave the guard a public
address may give 127.0.0.1 now: DNS rebinding), and its extractors fetch what a page or a
playlist names (an <audio src>, an HLS playlist's segments). None of that passes the guard. So,
for the length of such a job, the worker refuses, at the socket, every connection to an address
that is not public, whichever library makes it: Python's audit hook sees each `socket.connect`,
with the address about to be connected. Nor may the job reach a PUBLIC host off the allowlist
(a redirect or a page may name any): every name it looks up (`socket.getaddrinfo`, seen by the
same hook with the name, before any DNS query) or connects to must be on the allowlist or be one
of its sites' media hosts (`urlguard.reachable_hosts`: YouTube's audio is on *.googlevideo.com).
Python's HTTP clients (http.client, urllib3, yt-dlp's own) look a URL's host up that way before
they connect, an address too, so a URL to an address (`http://93.184.216.34/`) is refused as well.
A refusal ends the download with `AWAY_MESSAGE`, and a log line names the host.

Only the download worker runs such jobs, one at a time, so only its connections are watched, and
only during a job: the bot's own (Spotify's API, the database, Telegram, Discord) never are.

ffmpeg is a process of its own that the hook cannot see into (its DNS lookups, the redirects it
follows), so for a user's link it opens no URL at all: yt-dlp's own downloaders fetch the file,
whole, within the size limit, and ffmpeg only cuts the section out of that local copy
(`audio.cut_local_section`). yt-dlp is told of no ffmpeg, so that none of its downloaders hands
ffmpeg a URL either. Each format's URL is still vetted (`vet_format_url`) before the download, so
that a refusal comes before any request; so is each host a DASH manifest names for its
fragments. An HLS or DASH stream's segments are fetched by yt-dlp's own (watched) downloaders too.
"""
from __future__ import annotations

import logging
import socket
import sys
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator
from urllib.parse import urlsplit

from bot.sources.urlguard import ConnectPolicy, dns_can_hold, parse_ip_literal, system_resolver

AWAY_MESSAGE = ("That link leads away from the sites I fetch from, so I didn't follow it. "
                "Send me the song's name instead.")
LOOKUP_EVENTS = ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex")  # the name: args[0]

log = logging.getLogger(__name__)

INET_FAMILIES = (socket.AF_INET, socket.AF_INET6)
DEFAULT_PORTS = {"http": 80, "https": 443}
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # urllib's opener, less any proxy


class RefusedConnectionError(ConnectionRefusedError):
    """A connection the guard refused: an OSError, so that every library passes it on as the
    failed connection it is (the fetch then ends with `BlockedURLError`, see `Watch.refused`)."""


@dataclass
class Watch:
    """The running job's policy, and what it refused (yt-dlp may report a refusal as anything)."""

    policy: ConnectPolicy
    refused: list[str] = field(default_factory=list)
    away: bool = False  # a refused host was off the allowlist (rather than at a non-public address)

    def check_name(self, host: str, what: str) -> None:
        """Raise `RefusedConnectionError` unless `host` (a name, or an address as text) is one the
        job may reach: on the allowlist, or one of its sites' media hosts."""
        if not self.policy.allows_name(host):
            self.away = True
            self.refuse(f"{what} {host} (a host off the allowlist)")

    def check(self, host: str, port: int | None, what: str) -> None:
        """Raise `RefusedConnectionError` unless every address `host` stands for is allowed at `port`.
        Libraries hand `socket.connect` the address they looked up; a name is looked up here."""
        literal = parse_ip_literal(host)
        try:
            addresses = [literal] if literal is not None else [parse_ip_literal(a) for a in system_resolver(host)]
        except (OSError, UnicodeError):  # UnicodeError: a name the resolver would not look up
            addresses = []  # unresolvable: nothing to connect to, nothing to allow
        if port is None or not addresses or not all(a is not None and self.policy.allows(a, port) for a in addresses):
            self.refuse(f"{what} to {host}:{port}")

    def refuse(self, what: str) -> None:
        self.refused.append(what)
        log.info("refused %s while fetching a user's link", what)
        raise RefusedConnectionError(f"moodbot refused {what}")


_watch: Watch | None = None  # one job at a time per worker; yt-dlp's own threads see it too
_hook_installed = False


@contextmanager
def public_connections_only(policy: ConnectPolicy) -> Iterator[Watch]:
    """Within the block, every socket this process connects must go where `policy` allows, and
    `urllib.request.urlopen` (the Range requests of `ranged`) connects directly, never through a
    proxy the environment names (HTTP_PROXY, ...): through one, a socket's address is the proxy's,
    and the proxy would fetch whatever it is asked for, internal addresses included. yt-dlp is told
    the same by its own option (`audio`)."""
    global _watch, _hook_installed
    if not _hook_installed:  # for good: an audit hook cannot be removed, so it waits idle between jobs
        sys.addaudithook(_audit)
        _hook_installed = True
    if _watch is not None:
        raise RuntimeError("a user-link download is already being watched in this process")
    _watch = Watch(policy)
    urllib.request.install_opener(DIRECT)
    try:
        yield _watch
    finally:
        urllib.request.install_opener(None)  # urlopen builds the environment's default again
        _watch = None


def vet_format_url(watch: Watch, url: str) -> None:
    """Before yt-dlp downloads a format of a user's link: HTTP(S), allowed addresses only."""
    try:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme.lower(), parts.hostname or "", parts.port
    except ValueError:
        scheme, host, port = "", "", None
    if scheme not in DEFAULT_PORTS or not host:
        watch.refuse(f"a {scheme or 'malformed'} URL to download")
    if not dns_can_hold(host):  # an empty label, one over 63 characters: refused before any lookup
        watch.refuse("a URL to download whose host name no resolver looks up")
    watch.check_name(host, "a format's URL to")
    watch.check(host, port or DEFAULT_PORTS[scheme], "a format's URL")


def _audit(event: str, args: tuple) -> None:
    watch = _watch
    if watch is None:
        return
    if event in LOOKUP_EVENTS:
        host = args[0]
        if host is not None:  # None: the local host, for a listening socket (nothing is looked up)
            watch.check_name(host.decode("ascii", "replace") if isinstance(host, (bytes, bytearray)) else str(host),
                             "a lookup of")
        return
    if event != "socket.connect":
        return
    sock, address = args
    if sock.family not in INET_FAMILIES:
        watch.refuse(f"a connection of family {sock.family}")
    # A name (not an address) given to connect() was looked up already, where no hook sees it:
    # judged here before the connection is made.
    if parse_ip_literal(str(address[0])) is None:
        watch.check_name(str(address[0]), "a connection to")
    watch.check(str(address[0]), int(address[1]), "a connection")
