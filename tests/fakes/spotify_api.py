"""A local fake of the Spotify Web API, enough for the client-credentials flow and track lookup.

    with FakeSpotify(tracks=[FakeTrack("Creep", ("Radiohead",))]) as spotify:
        resolver = SpotifyResolver("id", "secret", api_url=spotify.api_url, auth_url=spotify.auth_url)

Speaks real HTTP on 127.0.0.1 (random port) so the real spotipy/requests stack is exercised:
- POST /api/token (Basic auth, grant_type=client_credentials) -> access_token, expires_in
- GET  /v1/search?q=&type=track&limit=  (limit > 10 -> 400, like development-mode apps in 2026): the
  tracks holding every word of q in their name, artists or album; if none, those holding any
  (most first), as Spotify always answers something. Field filters in q (track:, artist:, album:,
  isrc:; year:, genre: and tag: let all through) narrow the tracks first, as Spotify's do
- GET  /v1/tracks/{id}  (an id of 22 characters above 128 bits -> 400 "Invalid base62 id", an unknown one 404)
Faults: `fail_next(status, times, retry_after=..., message=...)` answers the next API calls with that
status (and Spotify's words: a 403's "Active premium subscription required for the owner of the app…");
`cut_next(times)` drops the connection halfway through the next answers;
`expire_tokens()` makes the tokens issued so far answer 401.
Every request is logged in `requests` (token calls included).

`FakeSpotifyLinks` stands in for the short-link hosts (spotify.link, spotify.app.link): the
resolver is given its `base_url` and asks it for https://spotify.link/Code at /spotify.link/Code.
Each link answers as the test says: a redirect, an HTML page naming the target, a status,
nothing at all (`hang`), or a raw answer dripped a byte at a time (`drip`). A request sent to the
link's own host (Host: spotify.link, the resolver's production path with a test resolver that
names 127.0.0.1) is answered as the same link.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.fakes.audio_http import LoopbackServer, drip

SEARCH_LIMIT_MAX = 10
CUT_OFF = 0  # a fault "status": a 200 whose body stops halfway and the connection closes
TOKEN_LIFETIME_S = 3600
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
WORD_RE = re.compile(r"\w+")
# Spotify's search field filters: artist:radiohead, track:"fake plastic trees", year:1992, ...
FILTER_RE = re.compile(r'(?<!\S)(track|artist|album|year|genre|tag|isrc|upc):("[^"]*"?|\S*)', re.IGNORECASE)


def spotify_id_for(seed: str) -> str:
    """A stable, valid 22-char base62 id derived from `seed`."""
    n = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    chars = []
    for _ in range(22):
        n, r = divmod(n, 62)
        chars.append(BASE62[r])
    return "".join(chars)


def base62_value(track_id: str) -> int:
    return sum(BASE62.index(c) * 62 ** i for i, c in enumerate(reversed(track_id)))


@dataclass(frozen=True)
class FakeTrack:
    name: str
    artists: tuple[str, ...]
    album: str = "Some Album"
    duration_ms: int = 200_000
    popularity: int = 50
    isrc: str | None = None
    id: str = ""
    art_url: str | None = "https://i.scdn.co/image/fake"
    preview_url: str | None = None
    spotify_url: str | None = None  # external_urls.spotify; None: open.spotify.com's page of the track

    @property
    def track_id(self) -> str:
        return self.id or spotify_id_for(f"{self.name}|{'|'.join(self.artists)}|{self.album}")

    def to_json(self) -> dict:
        tid = self.track_id
        return {
            "id": tid,
            "type": "track",
            "name": self.name,
            "uri": f"spotify:track:{tid}",
            "duration_ms": self.duration_ms,
            "popularity": self.popularity,
            "external_ids": {"isrc": self.isrc} if self.isrc else {},
            "external_urls": {"spotify": self.spotify_url or f"https://open.spotify.com/track/{tid}"},
            "preview_url": self.preview_url,
            "artists": [
                {"id": spotify_id_for(a), "name": a, "type": "artist"} for a in self.artists
            ],
            "album": {
                "id": spotify_id_for(self.album),
                "name": self.album,
                "images": [{"url": self.art_url, "width": 640, "height": 640}] if self.art_url else [],
            },
        }


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    params: dict[str, str]
    authorization: str | None


@dataclass
class _Fault:
    status: int
    times: int
    retry_after: str | None
    message: str = "Fault injected by the test"


def _words(text: str) -> set[str]:
    text = unicodedata.normalize("NFKD", text.lower())
    return set(WORD_RE.findall("".join(c for c in text if not unicodedata.combining(c))))


def _filters(q: str) -> tuple[str, list[tuple[str, str]]]:
    """The words of `q` without its field filters ("artist:radiohead", 'track:"fake plastic trees"',
    "year:1992"), and those filters as (field, value)."""
    filters = [(m.group(1).lower(), m.group(2).strip('"')) for m in FILTER_RE.finditer(q)]
    return FILTER_RE.sub(" ", q), filters


def _passes(track: FakeTrack, name: str, value: str) -> bool:
    """Whether `track` passes one field filter, as Spotify's search applies it. A field the fake
    keeps no data for (year, genre, tag) lets every track through."""
    fields = {"track": (track.name,), "artist": track.artists, "album": (track.album,)}
    if name == "isrc":
        return (track.isrc or "").lower() == value.lower()
    if name not in fields:
        return True
    return _words(value) <= _words(" ".join(fields[name]))


@dataclass
class FakeSpotify(LoopbackServer):
    tracks: list[FakeTrack] = field(default_factory=list)
    client_id: str = "test-client"
    client_secret: str = "test-secret"
    requests: list[LoggedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._token_faults: list[_Fault] = []
        self._tokens: set[str] = set()
        self._expired: set[str] = set()

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    @property
    def api_url(self) -> str:
        return self.base_url + "/v1/"

    @property
    def auth_url(self) -> str:
        return self.base_url + "/api/token"

    # -- test controls -----------------------------------------------------------------------
    def add(self, *tracks: FakeTrack) -> None:
        with self._lock:
            self.tracks.extend(tracks)

    def fail_next(self, status: int, times: int = 1, retry_after: float | str | None = None,
                  message: str = "Fault injected by the test") -> None:
        """Answer the next `times` API calls (not token calls) with `status`, the error saying `message`."""
        with self._lock:
            ra = None if retry_after is None else str(retry_after)
            self._faults.append(_Fault(status, times, ra, message))

    def fail_next_token(self, status: int, times: int = 1, retry_after: float | str | None = None) -> None:
        """Answer the next `times` token calls with `status` (an outage or a rate limit of Spotify's
        accounts service, not a refusal of the credentials)."""
        with self._lock:
            self._token_faults.append(_Fault(status, times, None if retry_after is None else str(retry_after)))

    def cut_next(self, times: int = 1) -> None:
        """Cut the next `times` API answers off mid-body (the connection drops after half of it)."""
        self.fail_next(CUT_OFF, times)

    def expire_tokens(self) -> None:
        """Forget every token issued so far, as Spotify does when one expires or is revoked early:
        the next API call with one is answered 401 "The access token expired"."""
        with self._lock:
            self._expired |= self._tokens
            self._tokens.clear()

    def api_requests(self) -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith("/v1/")]

    def token_requests(self) -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == "/api/token"]

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- behaviour ---------------------------------------------------------------------------
    def _log(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    def _take_fault(self, token: bool = False) -> _Fault | None:
        with self._lock:
            faults = self._token_faults if token else self._faults
            while faults:
                fault = faults[0]
                if fault.times > 0:
                    fault.times -= 1
                    return fault
                faults.pop(0)
            return None

    def _issue_token(self) -> str:
        with self._lock:
            token = f"fake-token-{len(self._tokens) + 1}"
            self._tokens.add(token)
            return token

    def _token_ok(self, authorization: str | None) -> bool:
        with self._lock:
            return bool(authorization) and authorization.removeprefix("Bearer ") in self._tokens

    def _basic_ok(self, authorization: str | None) -> bool:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        return authorization == f"Basic {expected}"

    def search(self, q: str, limit: int) -> list[dict]:
        q, filters = _filters(q)
        wanted = _words(q)
        with self._lock:
            tracks = [t for t in self.tracks if all(_passes(t, name, value) for name, value in filters)]
            if not wanted and filters:  # filters alone ("isrc:GBAYE9200070"): what they let through
                hits = tracks
            elif not wanted:  # no words at all ("💔"): Spotify still finds titles that hold the symbols
                hits = [t for t in tracks if q.strip() and q.strip() in t.name]
            else:
                held = [(t, wanted & _words(" ".join((t.name, *t.artists, t.album)))) for t in tracks]
                hits = [t for t, shared in held if shared == wanted]
                if not hits:
                    # Like Spotify, which always answers something: the tracks sharing any word,
                    # those sharing most first.
                    hits = [t for t, shared in sorted(held, key=lambda ts: -len(ts[1])) if shared]
        return [t.to_json() for t in hits[:limit]]

    def track(self, track_id: str) -> dict | None:
        with self._lock:
            return next((t.to_json() for t in self.tracks if t.track_id == track_id), None)


def _handler_for(fake: FakeSpotify) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args) -> None:
            pass

        def _params(self) -> dict[str, str]:
            return {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}

        def _json(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _cut_off(self) -> None:
            body = json.dumps({"tracks": {"items": [], "total": 0}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True

        def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
            self._json(status, {"error": {"status": status, "message": message}}, headers)

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            auth = self.headers.get("Authorization")
            fake._log(LoggedRequest("POST", path, form, None))  # never keep credentials
            if path != "/api/token":
                return self._error(404, "Not found")
            fault = fake._take_fault(token=True)
            if fault is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
                return self._json(fault.status, {"error": "server_error", "error_description": "Fault injected"}, headers)
            if form.get("grant_type") != "client_credentials" or not fake._basic_ok(auth):
                return self._json(400, {"error": "invalid_client", "error_description": "Invalid client"})
            self._json(200, {
                "access_token": fake._issue_token(), "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S,
            })

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            params = self._params()
            auth = self.headers.get("Authorization")
            fake._log(LoggedRequest("GET", path, params, "Bearer ***" if auth else None))
            if not fake._token_ok(auth):
                if auth and auth.removeprefix("Bearer ") in fake._expired:
                    return self._error(401, "The access token expired")
                return self._error(401, "No token provided" if not auth else "Invalid access token")
            fault = fake._take_fault()
            if fault is not None and fault.status == CUT_OFF:
                return self._cut_off()
            if fault is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
                return self._error(fault.status, fault.message, headers)
            if path == "/v1/search":
                return self._search(params)
            m = re.fullmatch(r"/v1/tracks/([^/]+)", path)
            if m:
                return self._track(m.group(1))
            self._error(404, "Service not found")

        def _search(self, params: dict[str, str]) -> None:
            limit = int(params.get("limit", "20"))
            if params.get("type") != "track":
                return self._error(400, "Unsupported type")
            if not 1 <= limit <= SEARCH_LIMIT_MAX:
                return self._error(400, "Invalid limit")
            items = fake.search(params.get("q", ""), limit)
            self._json(200, {"tracks": {"items": items, "limit": limit, "offset": 0, "total": len(items)}})

        def _track(self, track_id: str) -> None:
            if not re.fullmatch(r"[0-9A-Za-z]{22}", track_id):
                return self._error(400, "Invalid base62 id")
            item = fake.track(track_id)
            if item is None and base62_value(track_id) >= 2 ** 128:  # no 128-bit id, as Spotify's are
                return self._error(400, "Invalid base62 id")
            if item is None:
                return self._error(404, "Resource not found")
            self._json(200, item)

    return Handler


# -- short links -----------------------------------------------------------------------------

SHORT_LINK_HOSTS = frozenset({"spotify.link", "spotify.app.link"})
SHORT_LINK_CHUNK_BYTES = 16 * 1024
HANG_LIMIT_S = 30.0


@dataclass(frozen=True)
class _LinkAnswer:
    status: int
    location: str | None = None
    page: bytes = b""
    padding_bytes: int = 0  # filler sent before `page`
    hang: bool = False
    drip: bytes = b""  # a raw answer (status line, headers, body) written a byte at a time
    drip_every_s: float = 0.0
    drip_at_once: int = 0
    headers: tuple[tuple[str, str], ...] = ()  # more headers sent with the status


class FakeSpotifyLinks(LoopbackServer):
    """spotify.link and spotify.app.link on 127.0.0.1. Unknown links answer 404, as dead ones do."""

    def __init__(self) -> None:
        self.requests: list[str] = []  # the logical URLs asked for, "https://spotify.link/Code"
        self.bytes_sent: dict[str, int] = {}
        self._answers: dict[str, _LinkAnswer] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        return _links_handler_for(self)

    # -- what each link answers --------------------------------------------------------------
    def redirect(self, link: str, location: str, status: int = 302) -> None:
        self._answers[_link_key(link)] = _LinkAnswer(status, location=location)

    def page(self, link: str, html: str, padding_bytes: int = 0) -> None:
        """A 200 HTML page (as spotify.app.link answers browsers), after `padding_bytes` of filler."""
        self._answers[_link_key(link)] = _LinkAnswer(200, page=html.encode(), padding_bytes=padding_bytes)

    def status(self, link: str, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer with `status` (and these headers: a 429's Retry-After)."""
        self._answers[_link_key(link)] = _LinkAnswer(status, headers=tuple((headers or {}).items()))

    def hang(self, link: str) -> None:
        """Accept the request and never answer (until the server stops)."""
        self._answers[_link_key(link)] = _LinkAnswer(200, hang=True)

    def drip(self, link: str, response: bytes, every_s: float, at_once: int = 0) -> None:
        """Answer with these raw bytes (`audio_http.drip_response`): the first `at_once` at once,
        then one at a time, `every_s` apart."""
        self._answers[_link_key(link)] = _LinkAnswer(200, drip=response, drip_every_s=every_s, drip_at_once=at_once)

    def answer_for(self, key: str) -> _LinkAnswer | None:
        return self._answers.get(key)

    def _log(self, key: str) -> None:
        with self._lock:
            self.requests.append("https:/" + key)

    def _count(self, key: str, n: int) -> None:
        with self._lock:
            self.bytes_sent[key] = self.bytes_sent.get(key, 0) + n


def _link_key(link: str) -> str:
    """"https://spotify.link/Code" -> "/spotify.link/Code", the path the resolver asks the fake for."""
    parts = urlsplit(link)
    return f"/{parts.hostname}{parts.path}"


def _links_handler_for(fake: FakeSpotifyLinks) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args) -> None:
            pass

        def do_GET(self) -> None:
            key = urlsplit(self.path).path
            host = urlsplit(f"//{self.headers.get('Host', '')}").hostname
            if host in SHORT_LINK_HOSTS:
                key = f"/{host}{key}"
            fake._log(key)
            answer = fake.answer_for(key) or _LinkAnswer(404)
            if answer.hang:
                fake._stopping.wait(HANG_LIMIT_S)
                return
            if answer.drip:
                self.close_connection = True
                return drip(self.wfile, answer.drip, answer.drip_every_s, fake._stopping, answer.drip_at_once)
            self.send_response(answer.status)
            if answer.location is not None:
                self.send_header("Location", answer.location)
            for name, value in answer.headers:
                self.send_header(name, value)
            body_bytes = answer.padding_bytes + len(answer.page)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(body_bytes))
            self.end_headers()
            try:
                self._send_padding(key, answer.padding_bytes)
                self.wfile.write(answer.page)
                fake._count(key, len(answer.page))
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _send_padding(self, key: str, size: int) -> None:
            # Sent in chunks and counted as the socket takes them: a reader that stops early is
            # charged only for what it let through.
            filler = b"<!-- " + b"x" * (SHORT_LINK_CHUNK_BYTES - 9) + b" -->"
            while size > 0:
                chunk = filler[:size]
                self.wfile.write(chunk)
                fake._count(key, len(chunk))
                size -= len(chunk)

    return Handler
