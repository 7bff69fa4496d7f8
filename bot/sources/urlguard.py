"""Decide whether a user-supplied URL may be fetched (SSRF guard).

A user's link is fetched only if its host is on the allowlist AND every address the host
resolves to is a public unicast address. IP literals in any spelling inet_aton accepts
(decimal "2130706433", octal "0177.0.0.1", hex "0x7f.1", short "127.1") are caught before any
DNS lookup. Redirects are followed here, hop by hop, each hop re-checked, so the downloader is
handed a URL whose whole chain was vetted.

Operator-configured templates (AUDIO_SEARCH) are trusted and do not pass through here.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import socket
import urllib.error
import urllib.request
from typing import Callable
from urllib.parse import urlsplit

from bot.sources.models import BlockedURLError, DownloadError
from bot.sources.query import host_allowed

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
    return ip.is_global and not bad


class URLGuard:
    """Vets user-supplied URLs against an allowlist and the addresses they resolve to."""

    def __init__(self, allowed_hosts: frozenset[str], resolver: Resolver = system_resolver):
        self.allowed_hosts = frozenset(h.lower().rstrip(".") for h in allowed_hosts)
        self.resolver = resolver

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
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise self._blocked(url, "userinfo")
        literal = parse_ip_literal(host)
        if literal is not None and not is_public_address(literal):
            raise self._blocked(url, "non-public IP literal")
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

        Returns the last URL of the chain; raises `BlockedURLError` if any hop is refused.
        An HTTP error at the end of the chain is not ours to judge: the downloader reports it.
        """
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), _GuardedRedirects(self),
        )
        request = urllib.request.Request(self.check(url), method="HEAD")
        try:
            with opener.open(request, timeout=timeout_s) as response:
                return response.geturl()
        except urllib.error.HTTPError as error:
            # Usually a vetted hop that answered 4xx/5xx; but urllib also stops this way at a
            # redirect to a scheme it won't follow (file:, data:, ...), whose URL nobody vetted.
            return self.check(error.geturl())
        except (urllib.error.URLError, OSError) as error:
            if isinstance(getattr(error, "reason", None), BlockedURLError):
                raise error.reason from None
            raise DownloadError("I couldn't reach that link.") from None


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
