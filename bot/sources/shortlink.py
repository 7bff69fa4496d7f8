"""Follow a Spotify short link (spotify.link/…, spotify.app.link/…, spoti.fi/…) to the track it names.

Spotify's app shares links like https://spotify.link/hRkBrwub9xb (older ones: spoti.fi/…, which
redirects straight to open.spotify.com). They answer with a redirect
(often to spotify.app.link first), or with a small HTML page that names the open.spotify.com link
in a meta refresh, og:url or a script. Each hop is requested only if its host is a short-link
host on the allowlist (and, as for every user link, resolves to public addresses only, and is
connected to only at the public addresses its name gives when connecting: `urlguard.pinned`); the
open.spotify.com link at the end is read, never fetched. At most `max_hops` requests, all within
`timeout_s` however slowly a host answers (`urlguard.Deadline`), and no more than
`max_page_bytes` of any page are read.
"""
from __future__ import annotations

import html
import http.client
import logging
import re
import string
from urllib.parse import quote, urljoin, urlsplit

from bot.sources.models import (
    BlockedURLError,
    SpotifyBusyError,
    SpotifyUnavailableError,
    TrackNotFoundError,
    UnsupportedInputError,
)
from bot.sources.query import (
    SPOTIFY_HOSTS,
    SPOTIFY_ID,
    SPOTIFY_PATH_RE,
    SPOTIFY_SHORT_HOSTS,
    SPOTIFY_URI_RE,
    highlighted_track,
    host_allowed,
)
from bot.sources.urlguard import ConnectPolicy, Deadline, Resolver, URLGuard, pinned, system_resolver, within

log = logging.getLogger(__name__)

MAX_HOPS = 4  # spotify.link -> spotify.app.link -> the page is two; a chain longer than this is not Spotify's
TIMEOUT_S = 5.0  # for all hops together
MAX_PAGE_BYTES = 64 * 1024  # the pages are a few kB; nothing past this is read
READ_CHUNK_BYTES = 8 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
SPOTIFY_KINDS = frozenset({"track", "album", "playlist", "artist", "episode", "show", "user", "audiobook"})
USER_AGENT = "moodbot (link preview)"
# open.spotify.com links in a page: attributes, meta refresh ("0; url=…"), JSON in a script.
PAGE_LINK_RE = re.compile(r"(?:https?:)?//open\.spotify\.com/[^\s\"'<>\\]+", re.IGNORECASE)

INSTEAD = "Send me the song's name or its open.spotify.com link instead."
DEAD_MESSAGE = f"That Spotify link doesn't lead to a song any more. {INSTEAD}"
AWAY_MESSAGE = f"That Spotify link leads away from Spotify, so I didn't follow it. {INSTEAD}"
LOOP_MESSAGE = f"That Spotify link goes through too many redirects. {INSTEAD}"
UNREACHABLE_MESSAGE = f"I couldn't open that Spotify link right now. Try again later, or {INSTEAD[0].lower()}{INSTEAD[1:]}"
BUSY_MESSAGE = f"Spotify's link service is busy right now — try again in {{when}}, or {INSTEAD[0].lower()}{INSTEAD[1:]}"
# Answers that say nothing of the link itself: asked too often (429), or too slowly (408).
BUSY_STATUSES = frozenset({408, 429})


def not_a_track_message(kind: str) -> str:
    return f"That link leads to a Spotify {kind}, not a track. {INSTEAD}"


def spotify_link_in(page: bytes) -> str | None:
    """The first open.spotify.com link to a track, album, … that an HTML page names, else None."""
    text = html.unescape(page.decode("utf-8", "replace")).replace("\\/", "/")
    for found in PAGE_LINK_RE.findall(text):
        url = "https:" + found if found.startswith("//") else found
        m = SPOTIFY_PATH_RE.match(urlsplit(url).path)
        if m and m.group("kind").lower() in SPOTIFY_KINDS:
            return url
    return None


class ShortLinkResolver:
    """Turns a Spotify short link into the id of the track it leads to.

    `base_url`, when set, is where every short-link host is asked instead of itself
    ({base_url}/{host}{path}), like SPOTIFY_API_URL: the tests' local server. It is the operator's
    and trusted, so its address is not vetted; the allowlist still judges every hop.
    Without it, `resolver` looks each hop's name up, for the check and again for the connection,
    and `connections` says where a connection may go (tests: a local server that plays public).
    """

    def __init__(self, allowed_hosts: frozenset[str], *, base_url: str | None = None,
                 resolver: Resolver = system_resolver, connections: ConnectPolicy = ConnectPolicy(),
                 timeout_s: float = TIMEOUT_S, max_hops: int = MAX_HOPS, max_page_bytes: int = MAX_PAGE_BYTES):
        self.guard = URLGuard(allowed_hosts, resolver, connections)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout_s, self.max_hops, self.max_page_bytes = timeout_s, max_hops, max_page_bytes

    def track_id(self, url: str) -> str:
        """The Spotify id of the track `url` leads to. Raises a `SourceError` subclass."""
        deadline = Deadline(self.timeout_s)
        for _ in range(self.max_hops):
            self._vet(url)
            status, location, retry_after, page = self._get(url, deadline)
            if status in REDIRECT_STATUSES and location:
                try:
                    # http.client reads a head as latin-1: a Location's other bytes (UTF-8, as a
                    # server sends them) are percent-encoded back, as urllib does, so the next hop
                    # is asked for what the server named (a request line is ASCII).
                    target = quote(urljoin(url, location.strip()), encoding="iso-8859-1", safe=string.punctuation)
                except ValueError:
                    raise BlockedURLError(AWAY_MESSAGE) from None
            elif status == 200:
                target = spotify_link_in(page)
                if target is None:
                    log.info("short link page names no Spotify link (%d bytes read)", len(page))
                    raise TrackNotFoundError(DEAD_MESSAGE)
            elif status in BUSY_STATUSES:
                raise _busy(status, retry_after)
            elif 400 <= status < 500:
                raise TrackNotFoundError(DEAD_MESSAGE)
            else:
                log.warning("short link answered %s", status)
                raise SpotifyUnavailableError(UNREACHABLE_MESSAGE)
            if _host(target) in SPOTIFY_SHORT_HOSTS:
                url = target
                continue
            return self._spotify_track_id(target)
        raise TrackNotFoundError(LOOP_MESSAGE)

    def _vet(self, url: str) -> None:
        """Only a short-link host on the allowlist is asked, and only over HTTP(S), without userinfo."""
        try:
            parts = urlsplit(url)
            host = _host(url)
            _ = parts.port
        except ValueError:
            raise BlockedURLError(AWAY_MESSAGE) from None
        if (parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc
                or host not in SPOTIFY_SHORT_HOSTS or not host_allowed(host, self.guard.allowed_hosts)):
            log.info("short link hop refused: %s", host or "no host")
            raise BlockedURLError(AWAY_MESSAGE)
        if self.base_url is None:
            self.guard.check(url)  # the addresses it resolves to, as for any user link

    def _spotify_track_id(self, target: str) -> str:
        """The end of the chain: an open.spotify.com link (or spotify: URI), read but not fetched."""
        uri = SPOTIFY_URI_RE.match(target)
        if uri:
            kind, ident = uri.group("kind").lower(), uri.group("id")
        else:
            try:
                parts = urlsplit(target)
                host = _host(target)
            except ValueError:
                raise BlockedURLError(AWAY_MESSAGE) from None
            if (parts.scheme.lower() not in ("http", "https") or "@" in parts.netloc
                    or host not in SPOTIFY_HOSTS or not host_allowed(host, self.guard.allowed_hosts)):
                log.info("short link leads off Spotify: %s", host or "no host")
                raise BlockedURLError(AWAY_MESSAGE)
            m = SPOTIFY_PATH_RE.match(parts.path)
            if not m:  # Spotify's home page or a search: where an expired link ends
                raise TrackNotFoundError(DEAD_MESSAGE)
            kind, ident = m.group("kind").lower(), m.group("id")
            if kind != "track" and (highlighted := highlighted_track(parts.query)):
                kind, ident = "track", highlighted  # a song shared from its album's page
        if kind != "track":
            if kind in SPOTIFY_KINDS:
                raise UnsupportedInputError(not_a_track_message(kind))
            raise TrackNotFoundError(DEAD_MESSAGE)
        if not re.fullmatch(SPOTIFY_ID, ident):
            raise TrackNotFoundError(DEAD_MESSAGE)
        return ident

    def _get(self, url: str, deadline: Deadline) -> tuple[int, str | None, str | None, bytes]:
        """(status, Location, Retry-After, the first `max_page_bytes` of a 200's body) of one GET."""
        where = urlsplit(self._where(url))
        connection = None
        try:
            connection = self._connection(where.scheme, where.netloc, deadline)
            connection.request("GET", (where.path or "/") + (f"?{where.query}" if where.query else ""), headers={
                "User-Agent": USER_AGENT, "Accept": "text/html", "Accept-Encoding": "identity",
            })
            with connection.getresponse() as response:
                if response.status != 200:
                    return response.status, response.getheader("Location"), response.getheader("Retry-After"), b""
                return 200, None, None, self._read_page(response)
        # TimeoutError too: out of time. ValueError: a request http.client will not write (a URL
        # it can't encode), or a host name no resolver looks up (a UnicodeError).
        except (OSError, http.client.HTTPException, ValueError) as error:
            log.warning("short link unreachable: %s", type(error).__name__)
            raise SpotifyUnavailableError(UNREACHABLE_MESSAGE) from None
        finally:
            if connection is not None:
                connection.close()

    def _connection(self, scheme: str, netloc: str, deadline: Deadline) -> http.client.HTTPConnection:
        connection_class = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        if self.base_url is not None:  # the operator's server: trusted, not vetted
            return within(deadline, connection_class(netloc))
        # The link's own host: connected to only at the addresses its name gives now, if allowed
        # (the check's lookup may have answered differently: DNS rebinding).
        return pinned(connection_class, self.guard.connections, deadline, self.guard.resolver)(netloc)

    def _read_page(self, response: http.client.HTTPResponse) -> bytes:
        page = bytearray()
        while len(page) < self.max_page_bytes:
            chunk = response.read1(min(READ_CHUNK_BYTES, self.max_page_bytes - len(page)))
            if not chunk:
                break
            page += chunk
        return bytes(page)

    def _where(self, url: str) -> str:
        if self.base_url is None:
            return url
        parts = urlsplit(url)
        return f"{self.base_url}/{_host(url)}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")


def _busy(status: int, retry_after: str | None) -> SpotifyBusyError | SpotifyUnavailableError:
    """A 429 or 408: the link may be alive, so not DEAD_MESSAGE. With a usable Retry-After the
    wait is passed on, as for the Web API (`SpotifyBusyError.retry_after_s`); without one it is
    an outage like a 5xx."""
    # spotify.py imports this module: its reading of Retry-After and its words for a wait are
    # imported when needed.
    from bot.sources.spotify import retry_after_s, wait_words

    wait = retry_after_s({"Retry-After": retry_after}, None) if status == 429 else None
    log.warning("short link answered %s (Retry-After: %s)", status, retry_after)
    if wait is None:
        return SpotifyUnavailableError(UNREACHABLE_MESSAGE)
    busy = SpotifyBusyError(BUSY_MESSAGE.format(when=wait_words(wait)))
    busy.retry_after_s = wait
    return busy


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""
