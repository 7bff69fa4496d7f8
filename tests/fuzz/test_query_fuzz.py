"""Property-based fuzzing of what users type: `parse_query`, and the /mood use case's input handling.

Whatever arrives — any unicode, 100 kB, control characters, mention spam, hostile links (userinfo,
IP spellings, IDN look-alikes, odd ports, file:/gopher:/javascript: schemes) — the answer is a valid
`Query` or a typed error with a readable message, never a crash; and /mood never makes the bot
contact a host off the allowlist. 5 000 + 5 000 parse cases, plus 200 through /mood.
"""
from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.config import DEFAULT_ALLOWED_HOSTS
from bot.replies import Caller, ErrorReply, MoodReply
from bot.sources.audio import AudioFetcher
from bot.sources.models import Query, QueryKind, UnsupportedInputError
from bot.sources.query import MAX_TEXT_CHARS, host_allowed, parse_query
from bot.usecases.mood import MoodUseCase
from storage.database import Database
from tests.fakes.audio_http import FakeAudioServer

ALLOWED = frozenset(h.strip() for h in DEFAULT_ALLOWED_HOSTS.split(","))
PARSE_EXAMPLES = 5000
USECASE_EXAMPLES = 200
CONTROL = "".join(map(chr, [*range(0, 32), 127, *range(0x80, 0xA0), 0x200B, 0x200E, 0x202E, 0x2066, 0x2028]))

SCHEMES = ["http", "https", "HTTPS", "file", "gopher", "javascript", "ftp", "data", "ws", "spotify", ""]
HOSTS = [
    *sorted(ALLOWED), "play.spotify.com", "evil.com", "youtube.com.evil.com", "evilyoutube.com",
    "127.0.0.1", "2130706433", "0x7f.1", "0177.0.0.1", "127.1", "[::1]", "[::ffff:127.0.0.1]",
    "169.254.169.254", "10.0.0.1", "localhost", "уoutube.com", "youtube.com.", "xn--outube-4nf.com",
    "www.youtube.com\u3002evil.com", "open.spotify.com%2F@evil.com", "", "youtu.be:80@127.0.0.1",
    "evil.com\\.youtube.com", "youtube.com\\@evil.com", "evil.com\\@youtu.be", "evil.com|.youtube.com",
    "evil.zzz", "www.evil.zzz",
    # written as a browser still reads them: full-width, percent-escaped, punycode
    "ｙｏｕｔｕｂｅ．ｃｏｍ", "ｅｖｉｌ．ｃｏｍ", "www.%79outube.com", "youtube%2ecom", "%65vil.com", "youtube%252ecom",
    "evil.com%2f.youtube.com", "youtube.com%40evil.com", "evil.com%E3%80%82youtube.com", "evil.com\uff3c.youtube.com",
    "xn--youtube-.com", "xn--outube-vrf.com",
]
USERINFO = ["", "user@", "user:pass@", "open.spotify.com@", "@", ":@"]
PORTS = ["", ":80", ":443", ":0", ":65536", ":99999", ":-1", ":abc", ":"]
PATHS = ["/watch?v=dQw4w9WgXcQ", "/track/4uLU6hMCjMI75M1A2tKUQC", "/dQw4w9WgXcQ", "/shorts/dQw4w9WgXcQ",
         "/intl-fr/track/4uLU6hMCjMI75M1A2tKUQC", "/playlist/37i9dQZF1DXcBWIGoYBM5M", "/", "",
         "/watch?v=short", "/../../etc/passwd", "/%00", "/watch?v=dQw4w9WgXcQ#@evil.com", "/track/" + "A" * 200,
         "/a.mp3", "/x/Song.FLAC?t=1"]
MENTIONS = ["@everyone", "@here", "<@123>", "<@!123>", "<@&456>", "<#789>", "@moodbot", "/mood"]


@st.composite
def hostile_links(draw) -> str:
    scheme = draw(st.sampled_from(SCHEMES))
    prefix = f"{scheme}://" if scheme and draw(st.booleans()) else (f"{scheme}:" if scheme else "")
    return (prefix + draw(st.sampled_from(USERINFO)) + draw(st.sampled_from(HOSTS))
            + draw(st.sampled_from(PORTS)) + draw(st.sampled_from(PATHS)))


YOUTUBE_LINK_HOSTS = sorted(h for h in ALLOWED if "youtu" in h)


@st.composite
def youtube_links(draw) -> str:
    """Well-formed video links to allowed hosts, so every run reaches the fetcher's URL guard."""
    video = draw(st.from_regex(r"[0-9A-Za-z_-]{11}", fullmatch=True))
    host = draw(st.sampled_from(YOUTUBE_LINK_HOSTS))
    path = f"/{video}" if host == "youtu.be" else draw(st.sampled_from([f"/watch?v={video}", f"/shorts/{video}"]))
    return draw(st.sampled_from(["https://", "http://", ""])) + host + path


def huge(text: str, times: int) -> str:
    return (text or "x") * times


messages = st.one_of(
    st.text(),  # any unicode, surrogates excluded by hypothesis' default alphabet
    st.text(alphabet=st.sampled_from(CONTROL + " a/:.@"), max_size=200),
    st.builds(huge, st.text(min_size=1, max_size=20), st.just(100_000 // 10)),  # ~100 kB
    st.lists(st.sampled_from(MENTIONS), max_size=500).map(" ".join),
    hostile_links(),
    st.builds(lambda words, link, more: f"{words} {link} {more}", st.text(max_size=30), hostile_links(),
              st.text(max_size=30)),
    st.lists(hostile_links(), min_size=2, max_size=4).map(" ".join),
    # a Discord masked link: a hostile link or any words behind another link, in <> or not
    st.builds("[{}]({}{}{})".format, st.one_of(hostile_links(), youtube_links(), st.text(max_size=20)),
              st.sampled_from(["", "<"]), st.one_of(hostile_links(), youtube_links()), st.sampled_from(["", ">"])),
)


def check_query(query: Query) -> None:
    """What a Query may look like, whatever the input was."""
    assert isinstance(query, Query)
    assert len(query.text) <= MAX_TEXT_CHARS and not re.search(f"[{re.escape(CONTROL)}]", query.text)
    if query.kind is QueryKind.TEXT:
        assert query.text and query.url is None and query.spotify_id is None and query.youtube_id is None
    elif query.kind is QueryKind.SPOTIFY_TRACK:
        assert re.fullmatch(r"[0-9A-Za-z]{22}", query.spotify_id)
        assert query.url == f"https://open.spotify.com/track/{query.spotify_id}"
    elif query.kind is QueryKind.SPOTIFY_SHORT_LINK:
        assert re.fullmatch(r"https://(spotify\.link|spotify\.app\.link|spoti\.fi)/[0-9A-Za-z_-]+", query.url), query.url
    else:
        assert re.fullmatch(r"[0-9A-Za-z_-]{11}", query.youtube_id)
        assert query.url == f"https://www.youtube.com/watch?v={query.youtube_id}"
    if query.url is not None:  # only canonical links to allowed hosts leave the parser
        assert host_allowed(urlsplit(query.url).hostname, ALLOWED)


def parse_or_refuse(text: str) -> Query | None:
    try:
        query = parse_query(text)
    except UnsupportedInputError as error:
        assert len(str(error)) > 20 and "\n" not in str(error)  # a sentence a user can read
        return None
    check_query(query)
    return query


@settings(max_examples=PARSE_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(messages)
def test_any_message_parses_to_a_valid_query_or_a_readable_refusal(text):
    parse_or_refuse(text)


@settings(max_examples=PARSE_EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_links(), st.text(max_size=40))
def test_a_hostile_link_never_becomes_a_fetch_off_the_allowlist(link, words):
    query = parse_or_refuse(f"{words} {link}")
    if query is not None and query.kind is not QueryKind.TEXT:
        # The link was one of ours: its canonical form was checked in check_query.
        assert query.url is not None
    if query is not None and query.kind is QueryKind.TEXT:
        # Free text only ever becomes a search term; still, no "scheme://" word may slip through
        # as a "song name" ("file:x", "javascript:x" or a bare "a://" is just words to a search).
        assert not any(re.match(r"[a-z][a-z0-9+.-]*://\S", w, re.IGNORECASE) for w in query.text.split())


# --- Through /mood: a fetcher whose network entry points record every host contacted -------------

class RecordingResolver:
    """The URL guard's DNS step: every host a user's link would make the bot contact passes here.
    It answers a loopback address, so the guard refuses before any connection is made."""

    def __init__(self) -> None:
        self.hosts: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.hosts.append(host)
        return ["127.0.0.1"]


@pytest.fixture(scope="module")
def search_server():
    """The operator's AUDIO_SEARCH host (trusted, local): free text goes here and finds nothing."""
    server = FakeAudioServer(Path(tempfile.mkdtemp(prefix="moodbot-fuzz-"))).start()
    yield server
    server.stop()


def test_mood_never_contacts_a_host_off_the_allowlist(search_server, mongo_uri, db_name):
    resolver = RecordingResolver()
    tmp = Path(tempfile.mkdtemp(prefix="moodbot-fuzz-fetch-"))
    fetcher = AudioFetcher(search_template=search_server.url("/search/{title}.ogg"), resolver=resolver,
                           timeout_s=10, tmp_dir=tmp)
    loop = asyncio.new_event_loop()
    db = loop.run_until_complete(Database.connect(mongo_uri, db_name))
    loop.run_until_complete(db.init())
    mood = MoodUseCase(db, classifier=None, fetcher=fetcher)
    caller = Caller("discord", "1", place="discord:2")
    replies: list[object] = []

    @settings(max_examples=USECASE_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(st.one_of(youtube_links(), hostile_links(), messages))
    @example("https://www.youtube.com/watch?v=dQw4w9WgXcQ")
    @example("youtu.be/dQw4w9WgXcQ?t=1 my favourite")
    def through_mood(text):
        reply = loop.run_until_complete(mood.run(caller, text))
        assert isinstance(reply, (MoodReply, ErrorReply))
        if isinstance(reply, ErrorReply):
            assert reply.message and "went wrong on my side" not in reply.message, reply.message
        replies.append(reply)

    try:
        through_mood()
    finally:
        loop.run_until_complete(db.close())
        loop.close()
    assert len(replies) >= USECASE_EXAMPLES // 2
    assert resolver.hosts, "no link reached the guard: the property did not exercise it"
    assert all(host_allowed(h, ALLOWED) for h in resolver.hosts), sorted(set(resolver.hosts))
    seen = {r.host for r in search_server.requests}
    assert seen <= {f"127.0.0.1:{search_server.port}"}, seen  # the operator's template host only
    assert not any(tmp.iterdir()), "a download left files behind"
