"""A proxy named in the bot's environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY) carries none of a
user link's requests: the connection guard sees only the address a socket connects to, which
through a proxy is the proxy's, so the proxy would fetch whatever a page or a redirect names,
internal addresses included. A user's link is fetched directly, as the guard's own walk down its
redirects always was."""
from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest

from bot.sources.downloadpool import DownloadPool
from bot.sources.models import BlockedURLError
from tests.fakes.audio_http import LoopbackServer
from tests.sources.test_urlguard import PUBLIC, stand_in, table_resolver, user_link

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


class ForwardProxy(LoopbackServer):
    """A plain HTTP forward proxy (absolute-URI requests), recording each URL it was asked for
    and fetching it from wherever that URL names, as a real one would."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._lock = threading.Lock()

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_GET(self) -> None:
                self._forward(send_body=True)

            def do_HEAD(self) -> None:
                self._forward(send_body=False)

            def _forward(self, send_body: bool) -> None:
                with proxy._lock:
                    proxy.requests.append(self.path)
                parts = urlsplit(self.path)
                upstream = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=5)
                try:
                    upstream.request(self.command, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                                     headers={k: v for k, v in self.headers.items()
                                              if k.lower() not in ("proxy-connection", "connection")})
                    answer = upstream.getresponse()
                    body = answer.read()
                except OSError:
                    self.send_error(502)
                    return
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

        return Handler


@pytest.fixture
def proxy():
    with ForwardProxy() as server:
        yield server


@pytest.fixture
def proxied(proxy, monkeypatch):
    """The bot's environment names the proxy for every scheme; a fresh download pool, whose workers
    inherit that environment (the shared one's were started without it)."""
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, proxy.base_url)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    pool = DownloadPool(max_workers=1, warm_workers=0)
    yield pool
    pool.close()


def fetcher_behind(proxy, front, work, pool):
    from bot.sources.audio import AudioFetcher

    # The proxy plays a public host: all the guard sees of a request through it is its address.
    return AudioFetcher(allowed_hosts=frozenset({"localhost"}), tmp_dir=work, timeout_s=30, pool=pool,
                        resolver=table_resolver({"localhost": [PUBLIC]}),
                        public_stand_ins=stand_in(front) | stand_in(proxy))


async def test_a_page_naming_an_internal_address_is_not_fetched_through_a_proxy(front, target, proxy, proxied, tmp_path):
    # yt-dlp's generic extractor reads the page's <audio src>: through the proxy, the guard saw
    # only the proxy's (public) address, and the proxy fetched the internal service for it.
    front.add_page("/watch", f'<html><body><audio src="http://127.0.0.1:{target.port}/secret.ogg"></audio></body></html>')
    work = tmp_path / "work"
    with pytest.raises(BlockedURLError):
        async with fetcher_behind(proxy, front, work, proxied).fetch(user_link(front)):
            pass
    assert target.requests == []
    assert proxy.requests == []  # the guard's walk, yt-dlp and the Range requests: all direct
    assert list(work.iterdir()) == []


async def test_a_user_link_behind_a_proxy_setting_is_still_fetched_directly(front, proxy, proxied, tmp_path,
                                                                           long_duration):
    from tests.sources.test_urlguard import video_known_by_id

    front.add_redirect("/watch", f"http://localhost:{front.port}/long.m4a")  # a section by Range requests
    async with fetcher_behind(proxy, front, tmp_path / "work", proxied).fetch(video_known_by_id(front, long_duration)) as audio:
        assert audio.section_s is not None and audio.path.stat().st_size > 0
    assert proxy.requests == []
    assert front.requests_for("/long.m4a")
