"""A local HTTP server that serves audio files the way a CDN does, for tests and benchmarks.

It speaks plain HTTP/1.1 on 127.0.0.1 (random port): Content-Length, Accept-Ranges and
`Range: bytes=a-b` -> 206, and it counts the bytes it actually wrote per path, so a test can
show that a section download moved far fewer bytes than the whole file.

Extra routes for fault tests:
- redirects: `server.add_redirect("/r", "http://127.0.0.1:1/x")` answers 302 with that Location
  (`methods=("GET",)`: to a GET only; a HEAD is answered as if there were no redirect);
- pages: `server.add_page("/p", body, "text/html")` serves those bytes (an HTML page, a playlist);
- slow drips: `server.add_drip("/d", raw_response, every_s=0.2)` writes those raw bytes (status
  line, headers, body: as the test spells them) one at a time, `every_s` apart, so that no single
  read waits long but the whole answer takes ages (`drip_response` builds one; `at_once=n` sends
  the first n bytes at once, a quick head before a slow body);
- broken answers to ranges: `server.garble_ranges("/f.mp3", raw_response, times=1)` answers the
  next `times` requests for that path that carry a Range header with those raw bytes (a garbled
  status line, a cut chunked body: as the test spells them); later ones are served as usual;
- `/hang/...` accepts the request and never answers (until the server stops);
- `/error/...` answers 500;
- `server.add_playlist("/search.xspf", [...])` serves an XSPF playlist (yt-dlp's generic
  extractor reads it as a list of candidates with durations, like a search result page);
- `server.add_feed("/search.rss", [...])` serves an RSS feed of links (yt-dlp's generic extractor
  reads it as a list of hits with titles and durations, their pages unread, as a yt-dlp search
  lists YouTube's: a `location` may be a YouTube video's link, whose id the listing gives).
- `server.add_live_stream("/radio.m3u8")` serves a live stream's HLS playlist (no end), which
  yt-dlp tells is live once it reads it: as a feed's hit, it is live by its page, not the listing.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

CHUNK_BYTES = 16 * 1024
# A live stream's HLS playlist: no #EXT-X-ENDLIST, it is still growing (its segment is never served).
LIVE_PLAYLIST = ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:30\n#EXT-X-MEDIA-SEQUENCE:1\n"
                 "#EXTINF:30.0,\nseg1.ts\n")
HANG_LIMIT_S = 30.0
RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)$")
CONTENT_TYPES = {
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".webm": "audio/webm",
    ".m4a": "audio/mp4",
    ".mp3": "audio/mpeg",
    ".aac": "audio/aac",
    ".wma": "audio/x-ms-wma",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
}


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    range: str | None
    host: str | None


@dataclass(frozen=True)
class PlaylistEntry:
    """One candidate in a served XSPF playlist: `location` is a path on this server."""

    location: str
    duration_s: float
    title: str = "candidate"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive byte positions of a single-range request, None for the whole file."""
    if not header:
        return None
    m = RANGE_RE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):  # suffix range: the last N bytes
        n = int(m.group(2))
        return max(size - n, 0), size - 1
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else size - 1
    return first, min(last, size - 1)


# How an XSPF playlist and an RSS feed list entries: the document around them, and one entry.
LISTINGS = {
    "xspf": ('<playlist version="1" xmlns="http://xspf.org/ns/0/"><trackList>{}</trackList></playlist>',
             "<track><title>{title}</title><location>{location}</location><duration>{ms}</duration></track>"),
    "rss": ('<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
            "<channel><title>search</title>{}</channel></rss>",
            "<item><title>{title}</title><link>{location}</link><itunes:duration>{s}</itunes:duration></item>"),
}


def listing_document(kind: str, entries: list[PlaylistEntry], base_url: str) -> bytes:
    """An XSPF playlist or an RSS feed of `entries`, each `location` a path on this server or a whole URL."""
    document, entry = LISTINGS[kind]
    items = "".join(entry.format(title=escape(e.title), ms=int(e.duration_s * 1000), s=int(e.duration_s),
                                 location=escape(e.location if "://" in e.location else base_url + e.location))
                    for e in entries)
    return ('<?xml version="1.0" encoding="UTF-8"?>' + document.format(items)).encode()


def xspf_document(entries: list[PlaylistEntry], base_url: str) -> bytes:
    return listing_document("xspf", entries, base_url)


def drip_response(status: str = "200 OK", headers: dict[str, str] | None = None, body: bytes = b"",
                  padding_bytes: int = 0) -> bytes:
    """A raw HTTP/1.1 answer to drip: `padding_bytes` of filler go in an X-Padding header (a slow
    head); the body is sent as given (a slow body)."""
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in (headers or {}).items()),
             f"Content-Length: {len(body)}", "Connection: close"]
    if padding_bytes:
        lines.append("X-Padding: " + "x" * padding_bytes)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def drip(wfile, data: bytes, every_s: float, stopping: threading.Event, at_once: int = 0) -> None:
    """Write the first `at_once` bytes of `data`, then the rest one byte at a time, `every_s`
    apart, until done, the client hangs up or the server stops."""
    pieces = ([data[:at_once]] if at_once else []) + [data[i:i + 1] for i in range(at_once, len(data))]
    for n, piece in enumerate(pieces):
        if n and stopping.wait(every_s):
            return
        try:
            wfile.write(piece)
        except OSError:  # the client gave up: what the test wants
            return


class QuietHTTPServer(ThreadingHTTPServer):
    """Clients that hang up mid-body (seeking decoders) are normal here, not worth a traceback."""

    def handle_error(self, request, client_address) -> None:
        pass


class LoopbackServer:
    """A fake service's HTTP server on 127.0.0.1, on a free port, served from a thread: call
    start()/stop() or use it as a context manager. `_stopping` is set on stop, so that handlers
    holding a request open (a hanging host) let go. Subclasses name their request handler."""

    _httpd: ThreadingHTTPServer | None = None
    _stopping: threading.Event | None = None

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self):
        self._stopping = threading.Event()
        self._httpd = QuietHTTPServer(("127.0.0.1", 0), self._request_handler())
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class FakeAudioServer(LoopbackServer):
    """Serve files under `root`. Use as a context manager or call start()/stop()."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.requests: list[RequestRecord] = []
        self.bytes_served: dict[str, int] = {}
        self._redirects: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._pages: dict[str, tuple[bytes, str]] = {}
        self._drips: dict[str, tuple[bytes, float, int]] = {}
        self._garbled_ranges: dict[str, list[bytes]] = {}
        self._playlists: dict[str, list[PlaylistEntry]] = {}
        self._feeds: dict[str, list[PlaylistEntry]] = {}
        self.whole_only: set[str] = set()  # paths served whole whatever the Range asked: a host without ranges
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    # -- configuration -----------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def add_redirect(self, path: str, location: str, methods: tuple[str, ...] = ("GET", "HEAD")) -> None:
        self._redirects[path] = (location, methods)

    def add_page(self, path: str, body: bytes | str, content_type: str = "text/html") -> None:
        self._pages[path] = (body.encode() if isinstance(body, str) else body, content_type)

    def add_drip(self, path: str, response: bytes, every_s: float, at_once: int = 0) -> None:
        self._drips[path] = (response, every_s, at_once)

    def garble_ranges(self, path: str, response: bytes, times: int = 1) -> None:
        with self._lock:
            self._garbled_ranges[path] = [response] * times

    def add_playlist(self, path: str, entries: list[PlaylistEntry]) -> None:
        self._playlists[path] = list(entries)

    def add_feed(self, path: str, entries: list[PlaylistEntry]) -> None:
        self._feeds[path] = list(entries)

    def add_live_stream(self, path: str) -> None:
        self.add_page(path, LIVE_PLAYLIST, "application/vnd.apple.mpegurl")

    # -- observations ------------------------------------------------------------------------
    def bytes_for(self, path: str) -> int:
        with self._lock:
            return self.bytes_served.get(path, 0)

    def requests_for(self, path: str) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_served.clear()

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def _garbled_range(self, path: str) -> bytes | None:
        """The raw answer to this Range request for `path`, if one is still to be garbled."""
        with self._lock:
            left = self._garbled_ranges.get(path)
            return left.pop() if left else None

    def _count(self, path: str, n: int) -> None:
        with self._lock:
            self.bytes_served[path] = self.bytes_served.get(path, 0) + n


def _handler_for(server: FakeAudioServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args) -> None:  # keep test output quiet
            pass

        def do_HEAD(self) -> None:
            self._serve(send_body=False)

        def do_GET(self) -> None:
            self._serve(send_body=True)

        def _serve(self, send_body: bool) -> None:
            path = self.path.split("?", 1)[0]
            server._record(RequestRecord(self.command, path, self.headers.get("Range"), self.headers.get("Host")))
            location, methods = server._redirects.get(path, (None, ()))
            if self.command in methods:
                return self._empty(302, {"Location": location})
            if path.startswith("/hang/"):
                server._stopping.wait(HANG_LIMIT_S)
                return
            if path in server._drips:
                self.close_connection = True
                response, every_s, at_once = server._drips[path]
                return drip(self.wfile, response, every_s, server._stopping, at_once)
            if self.headers.get("Range") and (garbled := server._garbled_range(path)) is not None:
                self.close_connection = True
                return drip(self.wfile, garbled, 0.0, server._stopping, at_once=len(garbled))
            if path.startswith("/error/"):
                return self._empty(500)
            if path in server._pages:
                return self._bytes(*server._pages[path], send_body)
            if path in server._feeds:
                body = listing_document("rss", server._feeds[path], server.base_url)
                return self._bytes(body, "application/rss+xml", send_body)
            if path in server._playlists:
                body = xspf_document(server._playlists[path], server.base_url)
                return self._bytes(body, "application/xspf+xml", send_body)
            file = (server.root / path.lstrip("/")).resolve()
            if not file.is_file() or server.root.resolve() not in file.parents:
                return self._empty(404)
            self._file(path, file, send_body)

        def _empty(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _bytes(self, body: bytes, content_type: str, send_body: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def _file(self, path: str, file: Path, send_body: bool) -> None:
            size = file.stat().st_size
            span = None if path in server.whole_only else parse_range(self.headers.get("Range"), size)
            if span is not None and span[0] >= size:
                return self._empty(416, {"Content-Range": f"bytes */{size}"})
            first, last = span if span is not None else (0, size - 1)
            self.send_response(206 if span is not None else 200)
            self.send_header("Content-Type", CONTENT_TYPES.get(file.suffix.lower(), "application/octet-stream"))
            if path not in server.whole_only:
                self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(last - first + 1))
            if span is not None:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            if send_body:
                self._stream(path, file, first, last)

        def _stream(self, path: str, file: Path, first: int, last: int) -> None:
            # Write in small chunks and count only what the socket accepted: a client that
            # stops reading early (a seeking decoder) is charged for what it really received.
            remaining = last - first + 1
            with file.open("rb") as f:
                f.seek(first)
                while remaining > 0:
                    chunk = f.read(min(CHUNK_BYTES, remaining))
                    if not chunk:
                        break
                    # Counted before it is written: the client can have it, and the test read the
                    # count, before this thread would get back to count it after (a CI run saw
                    # 268 406 bytes downloaded against 262 144 counted). Not sent: not counted.
                    server._count(path, len(chunk))
                    try:
                        self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        server._count(path, -len(chunk))
                        self.close_connection = True
                        return
                    remaining -= len(chunk)

    return Handler


def make_long_ogg(clips: list[Path], dst: Path) -> Path:
    """One long Ogg/Opus song from several short clips (re-encoded: a stream copy of Ogg pages
    from different files gives a timeline that some decoders reject)."""
    import subprocess

    listing = dst.with_suffix(".txt")
    listing.write_text("".join(f"file '{Path(c).resolve()}'\n" for c in clips))
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
         "-i", str(listing), "-c:a", "libopus", "-b:a", "48k", str(dst)],
        check=True,
    )
    listing.unlink()
    return dst


def remux(src: Path, dst: Path, codec_args: tuple[str, ...] = ("-c", "copy")) -> Path:
    """The same audio in another container (.webm: stream copy; .m4a: pass ("-c:a", "aac"))."""
    import subprocess

    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), *codec_args, str(dst)],
                   check=True)
    return dst
