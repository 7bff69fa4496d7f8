"""Given a user pastes a link whose host is written as a browser still reads it (full-width
letters, an ideographic full stop, percent-escapes), moodbot judges the host a click would open,
as browsers parse it (WHATWG URL: percent-decoding, then IDNA's UTS-46 mapping), and only that
host is ever fetched; a host that reads as another one, or as none, is refused as before."""
from __future__ import annotations

import re
from time import perf_counter

import pytest

from bot.sources.models import QueryKind, UnsupportedInputError
from bot.sources.query import ACCEPTED, DEFAULT_ALLOWED, parse_query
from bot.sources.urlguard import URLGuard

SP = "4uLU6hMCjMI75M1A2tKUQC"
YT = "dQw4w9WgXcQ"
WATCH = f"https://www.youtube.com/watch?v={YT}"
PUBLIC = "93.184.216.34"


def refusal(typed: str) -> str:
    with pytest.raises(UnsupportedInputError) as info:
        parse_query(typed)
    assert ACCEPTED in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("typed", [
    f"https://ｙｏｕｔｕｂｅ．ｃｏｍ/watch?v={YT}",
    f"https://ｗｗｗ．ｙｏｕｔｕｂｅ．ｃｏｍ/watch?v={YT}",
    f"https://ＹＯＵＴＵ．ＢＥ/{YT}",
    f"https://youtu\uff61be/{YT}",  # the half-width ideographic full stop
    f"https://www.youtube\u3002com/watch?v={YT}",
    f"https://www.%79outube.com/watch?v={YT}",
    f"https://youtube%2ecom/watch?v={YT}",
    f"https://%59OUTU.BE/{YT}",
    f"https://youtu%EF%BC%8Ebe/{YT}",  # a full-width full stop, percent-encoded as UTF-8
    f"https://www.youtube.com%2e/watch?v={YT}",
    f"so sad https://ｙｏｕｔｕ．ｂｅ/{YT}",
    f"听听 ｙｏｕｔｕｂｅ．ｃｏｍ/watch?v={YT}。",
    f"ｙｏｕｔｕ．ｂｅ/{YT}",
    f"www.%79outube.com/watch?v={YT}",
])
def test_an_allowed_host_written_as_a_browser_still_reads_it_is_read(typed):
    """Each was refused ("I can't open links to ｙｏｕｔｕｂｅ", "That link doesn't look right"),
    or searched as words, though a browser opens the video."""
    query = parse_query(typed)
    assert (query.kind, query.youtube_id, query.url) == (QueryKind.YOUTUBE, YT, WATCH)


@pytest.mark.parametrize("typed", [f"https://open.%73potify.com/track/{SP}", f"https://ｏｐｅｎ．ｓｐｏｔｉｆｙ．ｃｏｍ/track/{SP}"])
def test_a_spotify_track_link_written_so_is_read(typed):
    query = parse_query(typed)
    assert (query.kind, query.spotify_id) == (QueryKind.SPOTIFY_TRACK, SP)


@pytest.mark.parametrize("typed", ["https://%73potify.link/AbCdEfGh1jk", "https://ｓｐｏｔｉｆｙ．ｌｉｎｋ/AbCdEfGh1jk",
                                   "https://SPOTIFY%2eLINK/AbCdEfGh1jk"])
def test_a_short_link_is_fetched_at_the_host_it_was_judged_by(typed):
    """A short link is the one link fetched at the host the user wrote: that host is the one the
    allowlist was checked against, as a browser reads it, and the one the URL guard looks up."""
    query = parse_query(typed)
    assert (query.kind, query.url) == (QueryKind.SPOTIFY_SHORT_LINK, "https://spotify.link/AbCdEfGh1jk")
    looked_up: list[str] = []
    URLGuard(DEFAULT_ALLOWED, resolver=lambda host: looked_up.append(host) or [PUBLIC]).check(query.url)
    assert looked_up == ["spotify.link"]


@pytest.mark.parametrize("typed, host", [
    ("https://ｅｖｉｌ．ｃｏｍ/a.mp3", "evil.com"),
    ("https://%65vil.com/a.mp3", "evil.com"),
    ("https://evil%2ecom/a.mp3", "evil.com"),
    ("https://EVIL%2Ecom/a.mp3", "evil.com"),
    (f"https://youtube.com%2eevil.com/watch?v={YT}", "youtube.com.evil.com"),
    (f"https://ｙｏｕｔｕ．ｂｅ．ｅｖｉｌ．ｃｏｍ/{YT}", "youtu.be.evil.com"),
    (f"https://youtu.be%E3%80%82evil.com/{YT}", "youtu.be.evil.com"),
    ("ｅｖｉｌ．ｃｏｍ/a.mp3", "evil.com"),
    # A look-alike with a Cyrillic "у", typed or in its xn-- form, is named as DNS would be asked.
    (f"https://уoutube.com/watch?v={YT}", "xn--outube-vrf.com"),
    (f"https://xn--outube-vrf.com/watch?v={YT}", "xn--outube-vrf.com"),
    (f"https://XN--OUTUBE-VRF.com/watch?v={YT}", "xn--outube-vrf.com"),
    (f"https://www.xn--outube-vrf.com/watch?v={YT}", "www.xn--outube-vrf.com"),
])
def test_a_host_that_reads_as_one_off_the_allowlist_is_refused_by_that_name(typed, host):
    assert re.match(f"I can't open links to {re.escape(host)}\\. ", refusal(typed))


@pytest.mark.parametrize("typed", ["https://**evil**.com/a.mp3", "https://__evil__.com/a.mp3",
                                   "https://~~evil~~.com/a.mp3", "https://evil_.com/a.mp3",
                                   "https://%2a%2aevil%2a%2a.com/a.mp3"])
def test_a_host_chat_markup_would_read_is_refused_without_naming_it(typed):
    """Browsers open hosts with "*", "_" or "~" in their names; quoted back, "**evil**.com" was
    shown bold on Discord. Such a host is refused as "that site"."""
    assert refusal(typed).startswith("I can't open links to that site. ")


@pytest.mark.parametrize("typed", [
    f"https://evil.com%2f.youtube.com/watch?v={YT}",  # "/"
    f"https://evil.com%2F%2Fyoutube.com/watch?v={YT}",
    f"https://youtube.com%40evil.com/watch?v={YT}",  # "@"
    f"https://evil.com%5c.youtube.com/watch?v={YT}",  # "\"
    f"https://evil.com%5C%2Eyoutube.com/watch?v={YT}",
    f"https://evil.com%3a443.youtube.com/watch?v={YT}",  # ":"
    f"https://evil.com%00.youtube.com/watch?v={YT}",
    f"https://evil.com%20.youtube.com/watch?v={YT}",
    f"https://evil.com%ff.youtube.com/watch?v={YT}",  # no UTF-8
    f"https://youtube%252ecom/watch?v={YT}",  # decoded once, as a browser does: "youtube%2ecom"
    f"https://www.youtube%.com/watch?v={YT}",
    f"https://evil.com\uff3c.youtube.com/watch?v={YT}",  # a full-width "\"
    f"https://evil.com\uff0f.youtube.com/watch?v={YT}",  # a full-width "/"
    f"https://youtube.com\uff20evil.com/watch?v={YT}",  # a full-width "@"
    f"https://evil.com\uff03.youtube.com/watch?v={YT}",  # a full-width "#"
    f"https://xn--youtube-.com/watch?v={YT}",  # punycode of plain letters: no browser opens it
    f"https://www.xn--youtube-.com/watch?v={YT}",
    f"https://xn--youtu-.be/{YT}",
    f"https://xn--.youtube.com/watch?v={YT}",
    f"https://xn--99999999999.youtube.com/watch?v={YT}",  # no punycode
    f"https://xn--x-jfa.youtube.com/watch?v={YT}",  # "Üx": a capital, which UTS-46 maps
    f"https://[v1.youtube.com]/watch?v={YT}",  # brackets hold an IPv6 address or nothing
    # An IPv6 address's zone id ("%25" and a network interface's name): no browser reads one, and
    # it was quoted back as typed ("I can't open links to fe80::1%25**bold**", thousands of letters).
    f"https://[fe80::1%25eth0]/watch?v={YT}",
    f"https://[fe80::1%25**bold**]/watch?v={YT}",
    f"https://[::1%25{'a' * 3000}]/watch?v={YT}",
])
def test_a_host_that_reads_as_no_host_name_is_refused_as_a_broken_link(typed):
    """A browser percent-decodes a host and maps it before it checks it: "evil.com%2f.youtube.com"
    is "evil.com/.youtube.com", which no host is called; it is refused, never read for the part
    after the "/". It had been, for the "%" alone; now the same for what the "%" encodes."""
    assert "That link doesn't look right" in refusal(typed)


def test_a_host_of_a_thousand_letters_beyond_ascii_is_refused_at_once():
    """Its xn-- form (punycode) takes time quadratic in its length: 130 ms for 1 020 letters of
    one label, which would keep the event loop from everyone. No label is over 63 characters."""
    label = "".join(map(chr, range(0x4E00, 0x4E00 + 1020)))
    started = perf_counter()
    assert "That link doesn't look right" in refusal(f"https://{label}.com/watch?v={YT}")
    assert perf_counter() - started < 0.03


@pytest.mark.parametrize("typed", [
    f"https://youtube.com%40@evil.com/watch?v={YT}",
    f"https://ｙｏｕｔｕｂｅ．ｃｏｍ@evil.com/watch?v={YT}",
    f"https://user%40youtube.com@evil.com/watch?v={YT}",
    f"https://evil.com%2F@youtube.com/watch?v={YT}",
    f"https://%79outube.com:x@ｅｖｉｌ．ｃｏｍ/watch?v={YT}",
])
def test_a_link_with_a_user_name_is_refused_whatever_it_encodes(typed):
    assert "I can't open that kind of link" in refusal(typed)


@pytest.mark.parametrize("typed", [f"https://evil.com%E3%80%82youtube.com/watch?v={YT}",
                                   f"https://ｅｖｉｌ．ｃｏｍ．ｙｏｕｔｕｂｅ．ｃｏｍ/watch?v={YT}"])
def test_a_subdomain_of_an_allowed_host_written_so_is_named_as_read(typed):
    """"evil.com。youtube.com" is YouTube's own name evil.com.youtube.com (nobody else can own
    it), and not one of the hosts of its videos."""
    assert re.match("I can't read links to evil\\.com\\.youtube\\.com\\. ", refusal(typed))


# -- a website's name on the song's line -----------------------------------------------------

@pytest.mark.parametrize("typed", [
    "Yellow by Coldplay via www.last.fm", "Yellow by Coldplay www.last.fm", "Yellow by Coldplay (www.last.fm)",
    "Yellow by Coldplay via WWW.Last.FM.", "Yellow by Coldplay from www.last.fm/", "Yellow by Coldplay on www.youtube.com",
    "Yellow by Coldplay - www.last.fm", "Yellow by Coldplay via <www.last.fm>, www.evil.zzz",
    "Yellow by Coldplay (via www.last.fm)", "Yellow by Coldplay | www.last.fm",  # "(via" was searched for
])
def test_a_website_s_name_after_a_song_s_is_left_out_of_the_search(typed):
    """"via www.last.fm" is where the user heard the song, not a link to it: it was refused ("I
    can't open links to www.last.fm") as a link. The song is now searched for, without the
    website's name (nor the "via" before it); the website is never asked for anything."""
    query = parse_query(typed)
    assert (query.kind, query.text, query.url) == (QueryKind.TEXT, "Yellow by Coldplay", None)


def test_a_website_s_name_after_a_link_is_a_comment_on_it():
    query = parse_query(f"https://youtu.be/{YT} via www.last.fm")
    assert (query.kind, query.youtube_id, query.text) == (QueryKind.YOUTUBE, YT, "via www.last.fm")


@pytest.mark.parametrize("typed, refused", [
    ("www.last.fm", "I can't open links to www.last.fm."),
    ("via www.last.fm", "I can't open links to www.last.fm."),
    ("(www.evil.zzz)", "I can't open links to www.evil.zzz."),
    ("www.youtube.com", "isn't a single video"),
    ("Yellow via www.last.fm/music/Coldplay/_/Yellow", "I can't open links to www.last.fm."),
    ("Yellow via www.last.fm:8080", "I can't open links to www.last.fm."),
    ("Yellow via www.last.fm?song=Yellow", "I can't open links to www.last.fm."),
    ("Yellow via https://www.last.fm", "I can't open links to www.last.fm."),
    ("Yellow via https://www.last.fm/", "I can't open links to www.last.fm."),
])
def test_a_website_s_name_alone_or_a_link_into_the_website_is_still_refused(typed, refused):
    """Alone it names no song; with a path, a port, a query or a scheme it is a link to a page."""
    assert refused in refusal(typed)


# Links that carry another URL for a site or for yt-dlp to follow (a 2026-12-06 audit): none is
# followed. A YouTube link leaves the parser rebuilt on its video id alone, whatever else it holds;
# one whose video is a URL, or that is YouTube's own redirect, is no video.
@pytest.mark.parametrize("typed", [
    f"https://www.youtube.com/watch?v={YT}&v=https://evil.com/a.mp3",
    f"https://www.youtube.com/watch?v={YT}&list=PLx&index=2#https://evil.com/a.mp3",
    f"https://www.youtube.com/embed/{YT}?origin=https://evil.com&widget_referrer=https://evil.com",
    f"https://youtube.com.:8080/watch?v={YT}&redirect=https://evil.com/",
])
def test_a_youtube_link_carrying_another_url_is_fetched_as_its_video_alone(typed):
    assert parse_query(typed).url == WATCH


@pytest.mark.parametrize("typed, refused", [
    ("https://youtu.be/https://evil.com/a.mp3", "isn't a single video"),
    (f"https://youtu.be/{YT}/https://evil.com/a.mp3", "isn't a single video"),
    ("https://www.youtube.com/attribution_link?u=https://evil.com/a.mp3", "isn't a single video"),
    ("https://www.youtube.com/redirect?q=https://evil.com/a.mp3", "isn't a single video"),
    ("https://www.youtube.com/watch?v=https://evil.com/a.mp3", "isn't a single video"),
    ("generic:https://evil.com/a.mp3", "I can't open links to evil.com"),  # yt-dlp's forced extractor
    ("ytsearch5:https://evil.com/a.mp3", "I can't open links to evil.com"),
    ("file:///etc/passwd", "I can't open that kind of link"),
    ("https://spotify.link/../evil.com", "looks broken"),
])
def test_a_link_to_a_url_in_a_url_is_refused(typed, refused):
    assert refused in refusal(typed)


@pytest.mark.parametrize("typed", ["ytsearch:evil", f"youtube:{YT}", "data:audio/mp3;base64,AAAA"])
def test_a_pseudo_url_of_yt_dlp_s_is_words_searched_for(typed):
    """Searched for as a song's name (in the operator's AUDIO_SEARCH, after its own "ytsearch5:"), never
    handed to yt-dlp as what it names."""
    from bot.sources.audio import DEFAULT_SEARCH, render_source

    query = parse_query(typed)
    assert (query.kind, query.text, query.url) == (QueryKind.TEXT, typed, None)
    assert render_source(DEFAULT_SEARCH, query) == f"ytsearch5:{typed} audio"
