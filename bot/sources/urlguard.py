"""Decide whether a user-supplied URL may be fetched (SSRF guard).

A user's link is fetched only if its host is on the allowlist AND every address the host
resolves to is a public unicast address. IP literals in any spelling inet_aton accepts
(decimal "2130706433", octal "0177.0.0.1", hex "0x7f.1", short "127.1") are caught before any
DNS lookup. Redirects are followed here, hop by hop, each hop re-checked, so the downloader is
handed a URL whose whole chain was vetted. Each hop connects only to the addresses its name
resolved to when they were checked (`open_connection`): a name can't answer a public address to
the check and 127.0.0.1 to the connection (DNS rebinding). The whole chain has one `Deadline`:
a host that sends a byte every few seconds never lets a per-read timeout fire, so every
connection and every read waits only for what is left of it.

Operator-configured templates (AUDIO_SEARCH) are trusted and do not pass through here.
"""
from __future__ import annotations

import functools
import http.client
import io
import ipaddress
import logging
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from bot.sources.models import BlockedURLError, DownloadError
from bot.sources.query import host_allowed, is_host_name

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], list[str]]

MAX_REDIRECTS = 5
REDIRECT_TIMEOUT_S = 5.0
ALLOWED_SCHEMES = ("http", "https")
IPV4_LIKE_RE = re.compile(r"^[0-9a-fx.]+$", re.IGNORECASE)
BLOCKED_MESSAGE = "I can't open that link."


def system_resolver(host: str) -> list[str]:
    """Every address the system resolver gives for `host`."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({info[4][0] for info in infos})


def dns_can_hold(host: str) -> bool:
    """Whether `host` is a name a resolver can be asked about at all. The system's resolver refuses
    one with an empty label ("a..youtube.com") or a label over 63 characters before any lookup, and
    with a UnicodeError (a ValueError), not the OSError of a failed lookup."""
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return True


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address `host` spells, in any form a C library would connect to, else None."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # canonical v4 / v6 (zone id dropped)
    except ValueError:
        pass
    if IPV4_LIKE_RE.match(host):
        try:  # inet_aton reads the legacy forms: 2130706433, 0177.0.0.1, 0x7f.1, 127.1
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


# Ranges no public host is at that Python's `ipaddress` calls global in some versions (3.11.7 does
# for each): IPv6 site-local (deprecated by RFC 3879, still configured inside networks), the IETF
# protocol assignments (192.0.0.0/24: only .9 and .10 are global, and no music host is there), the
# 6to4 relay anycast (deprecated by RFC 7526) and the IPv6 documentation prefix of RFC 9637.
NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in ("fec0::/10", "192.0.0.0/24", "192.88.99.0/24", "3fff::/20"))


def is_public_address(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses (IPv4-mapped/NAT64 unwrapped)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public_address(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            return is_public_address(ip.sixtofour)
        if ip in ipaddress.ip_network("64:ff9b::/96"):
            return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    bad = (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified
    )
    return ip.is_global and not bad and not any(ip in net for net in NOT_PUBLIC if net.version == ip.version)


# The hosts an allowed site serves its media from, which a user's link to it makes yt-dlp fetch:
# YouTube's page and player API are on www.youtube.com, its audio on its CDN (rr1---sn-….
# googlevideo.com). A suffix here counts only where ALLOWED_HOSTS names the site (or a subdomain).
MEDIA_HOSTS: dict[str, frozenset[str]] = {
    "youtube.com": frozenset({"googlevideo.com"}),
    "youtube-nocookie.com": frozenset({"googlevideo.com"}),
    "youtu.be": frozenset({"googlevideo.com"}),
}


def reachable_hosts(allowed_hosts: frozenset[str]) -> frozenset[str]:
    """The host names (each with its subdomains) a download of a user's link may look up and
    connect to: the allowlist, and the media hosts of the sites on it (`MEDIA_HOSTS`)."""
    allowed = frozenset(h.lower().rstrip(".") for h in allowed_hosts)
    media = (m for site, hosts in MEDIA_HOSTS.items() if any(host_allowed(h, {site}) for h in allowed) for m in hosts)
    return allowed | frozenset(media)


@dataclass(frozen=True)
class ConnectPolicy:
    """Where a connection made for a user's link may go: public addresses, and `stand_ins`,
    (address, port) pairs of local servers that play public hosts (tests: nothing local is
    public); and, where `hosts` is given, only by a name on it (or a subdomain of one: see
    `reachable_hosts`), never by another name nor by an address. Plain data: it travels to a
    download worker with the job."""

    stand_ins: frozenset[tuple[str, int]] = frozenset()
    hosts: frozenset[str] | None = None  # None: any name (the addresses alone are judged)

    def allows(self, ip: IPAddress, port: int) -> bool:
        return is_public_address(ip) or (str(ip), port) in self.stand_ins

    def allows_name(self, host: str) -> bool:
        """Whether a connection may be made to `host` (a name, or an address as text) at all. A name
        with what no host name holds is none on the list, whatever it ends with: a resolver reads
        "evil.example\\.youtube.com" as the name "evil.example\\.youtube" under com."""
        name = host.lower().rstrip(".")
        return self.hosts is None or (is_host_name(name) and host_allowed(name, self.hosts))


class Deadline:
    """One time limit for a whole exchange: every hop, connection and read of it. A per-read
    timeout never fires for a host that sends a byte every few seconds; this does."""

    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds

    def left(self, per_op: float | None | object = None) -> float:
        """Seconds the next wait may take (no more than a numeric `per_op`); raises `TimeoutError`
        (an OSError, as a socket's own timeout) once the time is up."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("out of time for this link")
        return min(left, per_op) if isinstance(per_op, (int, float)) else left


def open_connection(policy: ConnectPolicy, address: tuple[str, int],
                    timeout: float | None | object = socket._GLOBAL_DEFAULT_TIMEOUT,
                    source_address: tuple[str, int] | None = None, *,
                    resolver: Resolver | None = None, deadline: Deadline | None = None) -> socket.socket:
    """`socket.create_connection` that connects only if every address the name resolves to is
    allowed, and then to those very addresses: no second lookup that a rebinding name could answer
    differently. The name is looked up by the system, or by `resolver` where given. Raises
    `BlockedURLError` (not an OSError: no caller mistakes it for an outage).

    With a `deadline`, connecting waits only for what is left of it, and the socket is left with
    what remains after (for a TLS handshake and the request). The lookup itself can't be cut short."""
    host, port = address
    if deadline is not None:
        deadline.left()
    try:
        found = _addresses(host, port, resolver)
    except UnicodeError:  # an empty label, one over 63 characters: a name no resolver looks up
        log.info("blocked a connection to %s: a name no resolver looks up", host)
        raise BlockedURLError(BLOCKED_MESSAGE) from None
    if not found or not all(_allowed(policy, sockaddr[0], port) for _, sockaddr in found):
        log.info("blocked a connection to %s: a non-public address", host)
        raise BlockedURLError(BLOCKED_MESSAGE)
    error: OSError | None = None
    for family, sockaddr in found:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if deadline is not None:
                sock.settimeout(deadline.left(timeout))
            elif timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            if deadline is not None:
                sock.settimeout(deadline.left(timeout))
            return sock
        except OSError as failed:
            sock.close()
            error = failed
    raise error


def _addresses(host: str, port: int, resolver: Resolver | None) -> list[tuple[int, tuple]]:
    """(family, socket address) of every address `host` stands for: the system's, or `resolver`'s."""
    if resolver is None:
        return [(info[0], info[4]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
    return [(socket.AF_INET6 if ":" in text else socket.AF_INET, (text, port)) for text in resolver(host)]


def _allowed(policy: ConnectPolicy, text: str, port: int) -> bool:
    try:
        return policy.allows(ipaddress.ip_address(str(text).split("%", 1)[0]), port)
    except ValueError:  # a resolver's answer that is no address
        return False


def pinned(connection_class: type[http.client.HTTPConnection], policy: ConnectPolicy,
           deadline: Deadline | None = None, resolver: Resolver | None = None):
    """A factory of `connection_class` connections that connect through `open_connection` (the
    name looked up by `resolver`, else the system) and, given a `deadline`, are done by then."""
    def connection(*args, **kwargs) -> http.client.HTTPConnection:
        made = connection_class(*args, **kwargs)
        # what connect() calls
        made._create_connection = functools.partial(open_connection, policy, resolver=resolver, deadline=deadline)
        return made if deadline is None else within(deadline, made)
    return connection


def within(deadline: Deadline, connection: http.client.HTTPConnection) -> http.client.HTTPConnection:
    """`connection`, made to be done by `deadline`: connecting waits for what is left of it at
    most, and so does every read of the response, its head and body."""
    connection.timeout = deadline.left(connection.timeout)
    connection.response_class = functools.partial(DeadlineResponse, deadline=deadline)
    return connection


class DeadlineResponse(http.client.HTTPResponse):
    """An HTTP response read within `deadline`, however slowly the server sends it."""

    def __init__(self, sock: socket.socket, *args, deadline: Deadline, **kwargs):
        super().__init__(sock, *args, **kwargs)
        self.fp = io.BufferedReader(_ReadsWithin(self.fp.detach(), sock, deadline))


class _ReadsWithin(io.RawIOBase):
    """The socket's reads (`raw`, its file), each waiting only for what is left of `deadline`."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, deadline: Deadline):
        self.raw, self.sock, self.deadline = raw, sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int | None:
        self.sock.settimeout(self.deadline.left())
        return self.raw.readinto(buffer)

    def fileno(self) -> int:
        return self.raw.fileno()

    def close(self) -> None:
        self.raw.close()  # lets the socket close: the response held it open
        super().close()


class URLGuard:
    """Vets user-supplied URLs against an allowlist and the addresses they resolve to."""

    def __init__(self, allowed_hosts: frozenset[str], resolver: Resolver = system_resolver,
                 connections: ConnectPolicy = ConnectPolicy()):
        self.allowed_hosts = frozenset(h.lower().rstrip(".") for h in allowed_hosts)
        self.resolver = resolver
        self.connections = connections

    def check(self, url: str) -> str:
        """Return `url` if it may be fetched, else raise `BlockedURLError`. May do a DNS lookup."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower().rstrip(".")
            _ = parts.port
        except ValueError:
            raise BlockedURLError(BLOCKED_MESSAGE) from None
        if parts.scheme.lower() not in ALLOWED_SCHEMES or not host:
            raise self._blocked(url, "scheme or host")
        if not dns_can_hold(host):  # before any lookup: the resolver's refusal would be no OSError
            raise self._blocked(url, "a name no resolver looks up")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise self._blocked(url, "userinfo")
        literal = parse_ip_literal(host)
        if literal is not None and not is_public_address(literal):
            raise self._blocked(url, "non-public IP literal")
        if literal is None and not is_host_name(host):  # "evil.example\.youtube.com": see `allows_name`
            raise self._blocked(url, "no host name")
        if not host_allowed(host, self.allowed_hosts):
            raise self._blocked(url, "host not on allowlist")
        addresses = [literal] if literal is not None else self._resolve(url, host)
        if not addresses or not all(is_public_address(a) for a in addresses):
            raise self._blocked(url, "resolves to a non-public address")
        return url

    def _resolve(self, url: str, host: str) -> list[IPAddress]:
        try:
            found = self.resolver(host)
        except OSError as error:
            # The host is on the allowlist: a failed lookup is an outage (or no network), not a bad
            # link. Nothing is fetched either way, but the user is told to try again later.
            log.warning("could not resolve %s: %s", host, error)
            site = "YouTube" if "youtu" in host else host
            raise DownloadError(f"I couldn't reach {site} right now — try again in a few minutes.") from None
        except UnicodeError:  # a name the resolver would not look up (`check` refuses them first)
            raise self._blocked(url, "a name no resolver looks up") from None
        addresses = []
        for text in found:
            ip = parse_ip_literal(text)
            if ip is None:
                raise self._blocked(url, "resolver gave a non-address")
            addresses.append(ip)
        return addresses

    @staticmethod
    def _blocked(url: str, why: str) -> BlockedURLError:
        try:
            host = urlsplit(url).hostname  # never the netloc: it may carry a password
        except ValueError:
            host = None
        log.info("blocked URL to %s: %s", host, why)
        return BlockedURLError(BLOCKED_MESSAGE)

    def final_url(self, url: str, timeout_s: float = REDIRECT_TIMEOUT_S) -> str:
        """Follow `url`'s redirects with HEAD requests, vetting every hop before it is requested.

        Returns the last URL of the chain; raises `BlockedURLError` if any hop is refused, and
        `DownloadError` if a hop can't be reached or answers what is no HTTP, or if the chain is
        not done within `timeout_s`, all hops together.
        An HTTP error at the end of the chain is not ours to judge: the downloader reports it.
        """
        deadline = Deadline(timeout_s)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), _GuardedRedirects(self),
            _PinnedHTTP(self.connections, deadline), _PinnedHTTPS(self.connections, deadline),
        )
        request = urllib.request.Request(self.check(url), method="HEAD")
        try:
            with opener.open(request, timeout=timeout_s) as response:
                return response.geturl()
        except urllib.error.HTTPError as error:
            # Usually a vetted hop that answered 4xx/5xx; but urllib also stops this way at a
            # redirect to a scheme it won't follow (file:, data:, ...), whose URL nobody vetted.
            return self.check(error.geturl())
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            # HTTPException: an answer that is no HTTP (a garbled status line, over 100 headers, an
            # overlong line), which http.client raises as no OSError: to the user, a dead link too.
            if isinstance(getattr(error, "reason", None), BlockedURLError):
                raise error.reason from None
            raise DownloadError("I couldn't reach that link.") from None


class _PinnedHTTP(urllib.request.HTTPHandler):
    def __init__(self, policy: ConnectPolicy, deadline: Deadline):
        super().__init__()
        self.policy, self.deadline = policy, deadline

    def http_open(self, req):
        return self.do_open(pinned(http.client.HTTPConnection, self.policy, self.deadline), req)


class _PinnedHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, policy: ConnectPolicy, deadline: Deadline):
        super().__init__()
        self.policy, self.deadline = policy, deadline

    def https_open(self, req):
        return self.do_open(pinned(http.client.HTTPSConnection, self.policy, self.deadline), req,
                            context=self._context)


class _GuardedRedirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def __init__(self, guard: URLGuard):
        self.guard = guard

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.guard.check(newurl)  # before any connection to the next hop
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.method = req.get_method()  # stay HEAD: only the chain matters, not the body
        return new
