"""Turn what a user typed into a `Query`, without touching the network.

Accepted: a song name ("artist - title", "title by artist", any words), a Spotify track link or
URI, a Spotify short link (spotify.link/…, spoti.fi/…: followed later, by the resolver), a YouTube
video link.
Anything else that looks like a link is refused here, so a link to an unknown host is never fetched.
"""
from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import parse_qs, unquote_plus, unquote_to_bytes, urlsplit

import idna

from bot.config import DEFAULT_ALLOWED_HOSTS
from bot.replies import PLACE_MARKS
from bot.sources.models import ManySongsError, Query, QueryKind, UnsupportedInputError

MAX_TEXT_CHARS = 200  # the words kept for a search (or a link's comment)
QUOTED_CHARS = 60  # of a name searched, quoted back when nothing was found ("I couldn't find “…”")
MAX_HOST_CHARS = 253  # DNS's longest name
MAX_LABEL_CHARS = 63  # and its longest label
MAX_MESSAGE_CHARS = 4096  # the longest chat message (Telegram's): a link anywhere in it is found
ACCEPTED = "I can read Spotify track links, YouTube links, a song name, or an attached audio file."
ONLY_MARKUP = "I see only emoji, mentions or formatting there, no song name."
# "...", "?!", "-": no song's name is punctuation alone, and a search for it found some song the
# user never named. A letter, a digit or a symbol (an emoji, "+", "$") may be one, and is searched.
ONLY_PUNCTUATION = "I see only punctuation there, no song name."
# Discord's markup for what it shows as a name, a picture or a date, which a message's text and a
# slash command's option hand over as typed: a custom emoji <:name:id> (<a:name:id>: animated), a
# mention of a user <@id> (<@!id>), a role <@&id>, a channel <#id>, a command </name sub:id>, a
# server's page <id:customize>, a timestamp <t:seconds:R>; and @everyone, @here. None is a song's
# name, nor any part of one: each was searched for with the song, and no song holding it was found.
DISCORD_MARKUP_RE = re.compile(
    r"<(?:a?:\w{1,32}:\d{1,20}|@[!&]?\d{1,20}|#\d{1,20}|/[^<>:\n]{1,100}:\d{1,20}"
    r"|id:[a-z-]{1,20}(?::\d{1,20})?|t:-?\d{1,16}(?::[a-z])?)>|(?<!\w)@(?:everyone|here)\b",
    re.IGNORECASE)
# Discord's "_" around words (_italic_, __underlined__, ___both___): a word character, so "_Creep_"
# was a word no song has. Only a pair, as Discord reads it: opened at a word's start and closed at
# one's end, each by the same run, around no space at its edges; an underscore alone, or inside a
# word, is shown as typed and is the name's ("^_^", "Creep_", "snake_case"). What a pair holds is
# bounded (a name is MAX_TEXT_CHARS at most), so that a message of 4 096 "(_x" is not quadratic.
UNDERSCORE_PAIR_RE = re.compile(rf"(?<!\w)(_{{1,3}})(?=[^\s_])(.{{0,{MAX_TEXT_CHARS}}}?[^\s_])\1(?!\w)")

SPOTIFY_ID = r"[0-9A-Za-z]{22}"
YOUTUBE_ID = r"[0-9A-Za-z_-]{11}"
SPOTIFY_HOSTS = frozenset({"open.spotify.com", "play.spotify.com"})
YOUTUBE_HOSTS = frozenset({
    "youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com",
    "youtube-nocookie.com", "www.youtube-nocookie.com",
})
YOUTU_BE = "youtu.be"
# spoti.fi: Spotify's short links before spotify.link (Bitly's, on Spotify's name), still in old posts
SPOTIFY_SHORT_HOSTS = frozenset({"spotify.link", "spotify.app.link", "spoti.fi"})
DEFAULT_ALLOWED = frozenset(h.strip() for h in DEFAULT_ALLOWED_HOSTS.split(",") if h.strip())

# A playlist's link from before 2018 names its owner first (spotify:user:NAME:playlist:ID,
# /user/NAME/playlist/ID): old posts still hold it, and it is the playlist all the same.
SPOTIFY_URI_RE = re.compile(r"^spotify:(?:user:[^\s:]+:(?=playlist:))?(?P<kind>[a-z]+):(?P<id>[^\s:]+)$", re.IGNORECASE)
# /track/ID, /intl-fr/track/ID, /intl-pt-br/…, /intl-es-419/… (a region of three digits), /embed/track/ID
SPOTIFY_PATH_RE = re.compile(
    r"^/(?:intl-[a-z]{2}(?:-(?:[a-z]{2}|\d{3}))?/)?(?:embed/)?(?:user/[^/]+/(?=playlist/))?(?P<kind>[a-z]+)/(?P<id>[^/]+)/?$", re.I)
# A local file in someone's Spotify app has no track id, only its tags: spotify:local:artist:album:
# title:seconds, or /local/artist/album/title/seconds, each URL-encoded ("Karma+Police").
SPOTIFY_LOCAL_URI_RE = re.compile(r"^spotify:local:(?P<artist>[^:]*):[^:]*:(?P<title>[^:]*):\d*$", re.I)
SPOTIFY_LOCAL_PATH_RE = re.compile(r"^/local/(?P<artist>[^/]*)/[^/]*/(?P<title>[^/]*)/\d*/?$")
LOCAL_FILE_REFUSED = ("That's a local file in someone's Spotify app, and it carries no song name: "
                      "send me the song's name, or attach the file.")
SPOTIFY_MANY_SONGS = frozenset({"album", "playlist", "artist"})  # a link to these holds many songs (`ManySongsError`)
SHORT_LINK_PATH_RE = re.compile(r"^/[0-9A-Za-z_-]{1,64}/?$")  # spotify.link/<code>
YOUTUBE_EMBEDDED_PLAYLIST = "videoseries"  # /embed/videoseries?list=…: as long as a video id, and none
YOUTUBE_PATH_RE = re.compile(rf"^/(?:shorts|embed|live|v)/(?P<id>{YOUTUBE_ID})/?$")
# A clip (/clip/Ugkx…) names a part of a video by an id of its own: only YouTube's page says which
# video, so it cannot be read here, nor its song cached, and it is refused with what to send instead.
YOUTUBE_CLIP_RE = re.compile(r"^/clip/[^/]+/?$")
# A playlist's link (/playlist?list=…, YouTube Music's album, /embed/videoseries?list=…) without a
# video in it (v=…): which of its songs is meant, only the user knows.
YOUTUBE_PLAYLIST_REFUSED = "That's a YouTube playlist, not a single video: send the link of one of its videos."
# Other music services, whose links the bot never opens (nor looks their hosts up): their links
# are refused by host, with what to send instead, unless the message names the song itself. It does
# in the words their Share buttons put before the link, where those are known word for word: the
# name is then searched for as if typed, "Artist - Title", and the answer says so (`link_service`).
# Apple Music's "Copy Link", Deezer's and Tidal's give a link alone; an Apple Music song's link names
# the song in its slug (/us/song/creep/1097862231), an album's the album (?i= is the song's id there).
MUSIC_SERVICES = (
    ("Apple Music", frozenset({"music.apple.com", "itunes.apple.com"})),
    ("Shazam", frozenset({"shazam.com", "shz.am"})),
    ("SoundCloud", frozenset({"soundcloud.com"})),  # on.soundcloud.com: its short links
    ("Deezer", frozenset({"deezer.com", "deezer.page.link", "dzr.page.link"})),  # link.deezer.com too
    ("Tidal", frozenset({"tidal.com", "tidal.link"})),
)
SHARE_TEXTS = {
    # Shazam: "I used Shazam to discover Creep by Radiohead. https://www.shazam.com/track/…"
    # (its tweet: "I used @Shazam to …"); the title may hold " by " ("Stand by Me"), the artist not.
    "Shazam": re.compile(r"(?:^|\s)I used @?Shazam to discover (?P<title>.+) by (?P<artist>.+?)\.?$", re.IGNORECASE),
    # SoundCloud: "Listen to Creep by Radiohead on #SoundCloud https://…" ("#np on #SoundCloud" before
    # 2016); the name after "by" is the uploader's.
    "SoundCloud": re.compile(r"(?:^|\s)Listen to (?P<title>.+) by (?P<artist>.+?)(?: #np)? on #SoundCloud$",
                             re.IGNORECASE),
}
APPLE_SONG_PATH_RE = re.compile(r"^/(?:[a-z]{2}/)?song/(?P<slug>[^/]+)/(?:id)?\d+/?$", re.IGNORECASE)
OTHER_SERVICE_REFUSED = ("I can't open links to {host}: send me the song's name (artist - title), "
                         "or its Spotify or YouTube link.")
YOUTUBE_CLIP_REFUSED = "YouTube clips aren't supported: send the link of the video the clip is from."
# A word is a link if it has a scheme (even with nothing after it: "https://" cut short is a
# broken link, not words to search for), is a spotify: URI (not "Spotify:https://…", a label glued
# to a link), or is a bare "host.tld/path" (`is_bare_link`): "Mr.Brightside/Killers" is a song's name.
# A bare host may be written as a browser still reads it (`browser_host`): its letters full-width
# ("ｙｏｕｔｕ．ｂｅ/…", its full stops made dots by `hosts_dotted`), or percent-escaped.
FULL_WIDTH_LETTERS = "\uff21-\uff3a\uff41-\uff5a"
FULL_WIDTH_ALNUM = f"\uff10-\uff19{FULL_WIDTH_LETTERS}"
LINK_RE = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://\S*|spotify:(?![a-z]*://)\S+"
    rf"|(?P<bare>(?:[\w%-]+\.)+(?P<tld>[a-z{FULL_WIDTH_LETTERS}]{{2,}}))(?::\d+)?(?P<path>/[^?#\s]*)?(?:[?#]\S*)?)$",
    re.IGNORECASE,
)
# A path that ends in an audio or video file's name: a word of "host.tld/…/name.mp3" is a link
# whatever its top-level domain ("evil.zzz/a.mp3"), unless that is capitalised as a word is
# ("Mr.Brightside/Killers.mp3": a file's path); one ending so without a slash is a file's name.
MEDIA_PATH_RE = re.compile(
    r"\.(?:mp3|m4a|m4b|aac|ogg|oga|opus|wav|flac|aiff?|wma|weba|webm|mp4|m4v|mov|mkv|avi|3gp|mpe?g)$", re.IGNORECASE)
# The last labels a host written without a scheme is taken to end in: a country's (any two
# letters) or one of these. Another is read as words (searched, never fetched), unless the word is
# a link by its "www." or its media file's name (`is_bare_link`).
BARE_TLDS = frozenset({
    "com", "net", "org", "info", "biz", "edu", "gov", "mil", "int", "name", "pro", "mobi", "app",
    "dev", "link", "xyz", "site", "online", "top", "club", "shop", "store", "live", "music", "audio",
    "stream", "video", "tech", "cloud", "page", "blog", "website", "space", "fun", "icu", "vip",
    "art", "lol", "news", "media", "digital", "world", "life", "host", "download", "zip", "mov",
    "example", "test", "invalid", "localhost", "local", "internal", "lan", "home", "arpa", "onion",
})
CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")
# Invisible characters that sit inside a word, put there by copying rather than typing: a soft
# hyphen, a zero-width space or joiner, a word joiner (our own Telegram replies put one in
# "@name"), a byte-order mark. Dropped, not spaced: "Beyon\u200bcé" is Beyoncé, and a link after
# a byte-order mark is still a link. So are the marks replies name where people share the bot with
# (PLACE_MARKS): a song's name is quoted in replies, where they would become "group" or "server".
# A zero-width joiner between two emoji is no stray one: it makes them one emoji ("❤️\u200d🔥",
# heart on fire; "🏳️\u200d🌈"), a song's whole name at times, and stays.
EMOJI = "\u2600-\u27bf\U0001f000-\U0001faff"
INVISIBLE_CHARS_RE = re.compile(
    f"[\u00ad\u200b\u2060\ufeff{PLACE_MARKS}]|\u200d(?!(?<=[{EMOJI}\ufe0f]\u200d)[{EMOJI}])")


# A zero-width non-joiner is part of the spelling in Persian, Arabic-script and Indic words
# ("می\u200cخوام": "I want"; after a virama, it stops a conjunct): inside a word of such a script,
# between two letters or marks one of which is past Latin, Greek and Cyrillic, it stays. Anywhere
# else (a word's edge, alone, between Latin letters) it is stray markup, dropped like the others.
NON_JOINER_RE = re.compile("\u200c")


def non_joiner_kept(match: re.Match) -> str:
    text, at = match.string, match.start()
    around = text[at - 1:at] + text[at + 1:at + 2]
    if len(around) == 2 and all(unicodedata.category(c)[0] in "LM" for c in around) \
            and any(ord(c) >= 0x0590 and not 0x1E00 <= ord(c) <= 0x1FFF for c in around):
        return match.group()
    return ""


def clean_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Strip control/format characters, collapse whitespace, cap the length."""
    text = INVISIBLE_CHARS_RE.sub("", text[:MAX_MESSAGE_CHARS])
    text = unicodedata.normalize("NFC", NON_JOINER_RE.sub(non_joiner_kept, text))
    text = CONTROL_CHARS_RE.sub(" ", text)
    text = " ".join(text.split())
    return text[:max_chars].strip()


def quoted_name(text: str) -> str:
    """A name searched, as a refusal quotes it: its first QUOTED_CHARS characters, "…" ending one cut."""
    return text if len(text) <= QUOTED_CHARS else text[:QUOTED_CHARS - 1].rstrip() + "…"


def without_markup(text: str) -> str:
    """`text` without Discord's emoji, mentions and timestamps (`DISCORD_MARKUP_RE`)."""
    return DISCORD_MARKUP_RE.sub(" ", text)


def is_link(word: str) -> bool:
    match = LINK_RE.match(word)
    if not match or not match.group("bare"):
        return bool(match)
    return is_bare_link(match.group("bare"), match.group("tld"), match.group("path"))


def is_bare_link(host: str, tld: str, path: str | None) -> bool:
    """Whether a word of `host` (ending in `tld`, both as typed) and `path` (None: none, nor a "/"),
    without a scheme, is a link: where its host starts "www." and has a name after it
    ("www.evil.zzz"), or it has a path and its host ends in a top-level domain (`BARE_TLDS`) or the
    path in a media file's name (`MEDIA_PATH_RE`), its top-level domain then not capitalised as a
    word is: "Mr.Brightside/Killers.mp3" is a file's path, named after a song ("evil.zzz/a.mp3",
    "EVIL.ZZZ/a.mp3" are links). Else it is words: "Mr.Brightside/Killers", "01.Creep.mp3"."""
    named = tld.istitle()
    host, tld = (unicodedata.normalize("NFKC", part).lower() for part in (host, tld))
    if host.startswith("www.") and host.count(".") >= 2:
        return True
    if path is None:
        return False
    return (len(tld) == 2 or tld in BARE_TLDS or host_allowed(host, DEFAULT_ALLOWED)
            or (not named and bool(MEDIA_PATH_RE.search(path))))


# What people put around a link in chat: <url>, (url), ||url|| (a Discord spoiler), `url` (inline
# code: no preview either), "url" and the curly quotes a phone types for it (“url”, „url“, «url»), url!
LINK_QUOTES = "'\"`\u2018\u2019\u201a\u201c\u201d\u201e\u00ab\u00bb\u2039\u203a"
LINK_OPENERS = "<([{|*" + LINK_QUOTES
LINK_CLOSERS = ".,!?;:)]}>|*" + LINK_QUOTES
# Chinese and Japanese put no space around a link, only their full-width punctuation
# ("听听：https://youtu.be/…。", "「https://…」"): it ends a word, as a space would. No link of ours holds it.
FULL_WIDTH_PUNCTUATION = "、。，．：；！？（）「」『』【】《》〈〉"
FULL_WIDTH_PUNCTUATION_RE = re.compile(f"[{FULL_WIDTH_PUNCTUATION}]")
# ...except the full stops among them that such a keyboard types in a link's host name
# ("www.youtube。com"): browsers read them as dots (IDNA maps U+3002, U+FF0E and U+FF61 to "."), and
# so does the bot, where the host is a link's (after a scheme, or before the path of "host.tld/…")
# and the stop stands between two of its labels.
# A host's labels may be typed full-width too ("ｙｏｕｔｕｂｅ．ｃｏｍ"), or percent-escaped.
HOST_DOTS = "\u3002\uff0e\uff61"
LABEL_CHARS = f"a-z0-9%{FULL_WIDTH_ALNUM}-"
SCHEMED_HOST_RE = re.compile(rf"[a-z][a-z0-9+.-]*://[{LABEL_CHARS}.{HOST_DOTS}]+", re.IGNORECASE)
BARE_HOST_RE = re.compile(
    rf"(?<![{LABEL_CHARS}.{HOST_DOTS}])(?:[{LABEL_CHARS}]+[.{HOST_DOTS}])+[a-z{FULL_WIDTH_LETTERS}]{{2,}}(?=/)",
    re.IGNORECASE)
HOST_DOT_RE = re.compile(f"[{HOST_DOTS}](?=[{LABEL_CHARS}])", re.IGNORECASE)
# A run of the characters a scheme is made of, and what follows one that is a link's scheme.
SCHEME_RUN_RE = re.compile(r"[a-z0-9+.-]+", re.IGNORECASE)
HOST_AFTER_SCHEME_RE = re.compile(rf"://[{LABEL_CHARS}.{HOST_DOTS}]", re.IGNORECASE)
# A Markdown link, [label](url) (Discord's "masked link"): the label's end, up to the "(".
MARKDOWN_LABEL_RE = re.compile(r"^\S*?\]\(")
# A Discord message's masked link, [label](target) or [label](<target>) (no preview), whole: Discord
# shows the label and a click opens the target. Neither holds a bracket (the target may hold one
# pair of parentheses), nor the target a space, so each "[" starts one at most, read up to the next.
MASKED_LINK_RE = re.compile(
    r"\[[^\[\]\n]*\]\((?P<angled><)?(?P<target>(?:[^\s<>()\[\]]|\([^\s<>()\[\]]*\))+)(?(angled)>)\)")
# A link pasted against the word before it, without a space ("listen:https://…", "Creep(https://…)").
GLUED_LINK_RE = re.compile(r"https?://\S*", re.IGNORECASE)
# Discord's markdown around a link, which Discord keeps in the text: __underlined__, _italic_,
# ~~struck through~~, nested in any order with the rest (*italic*, **bold**, ||spoiler||, <no preview>,
# a quote's "> ": a word of its own). A link may end in "_" or "~" of its own (a YouTube id may), so
# these two are taken off after it only as many as before it.
MARKDOWN_MARKS = "_~"
BEFORE_LINK = LINK_OPENERS + MARKDOWN_MARKS  # what may stand before a link in a word


def unmarked(word: str) -> str:
    """`word` without what stands around a link in it (`bare_link`)."""
    rest = word.lstrip(BEFORE_LINK)
    return bare_link(word[:len(word) - len(rest)], rest, LINK_CLOSERS)


def bare_link(before: str, link: str, closers: str = LINK_CLOSERS) -> str:
    """`link` without the `closers` and markdown marks after it, those that `before` (what stood
    before it: marks, brackets, quotes) opened, in any nesting (`_**link**_`, `||_*link*_||`).
    Its own "_" and "~" stay: those after it are taken for closing marks only as many as `before`
    has, counted from the end, and only a run of them right after the link can be its own (a
    YouTube id ending in "_": `_link__` is the link and its "_"). Without a pattern, in one pass:
    a pattern pairing runs of marks tried every run from each mark (a word of 4 096 "_": 1.7 s)."""
    core = link.rstrip(closers + MARKDOWN_MARKS)
    after = link[len(core):]
    owed = {mark: before.count(mark) for mark in MARKDOWN_MARKS}
    kept = len(after)
    while kept:
        mark = after[kept - 1]
        if mark in owed:
            if not owed[mark]:  # not opened before the link: its own, and so is what is before it
                break
            owed[mark] -= 1
        kept -= 1
    own = after[:kept]
    return core + own[:len(own) - len(own.lstrip(MARKDOWN_MARKS))]


def marked_link(text: str, match: re.Match, closers: str) -> tuple[int, str]:
    """Where a link found in `text` starts once the marks before it are counted in (markdown,
    brackets, quotes: `BEFORE_LINK`), and the link without what those opened after it, nor
    `closers` (`bare_link`): judged with all of the marks after it, those past the match too
    (`__<link_>__`: the "__" after the ">" close those before the "<", the "_" is the link's)."""
    start, end, after = match.start(), match.end(), closers + MARKDOWN_MARKS
    while start > 0 and text[start - 1] in BEFORE_LINK:
        start -= 1
    while end < len(text) and text[end] in after:
        end += 1
    link = bare_link(text[start:match.start()], text[match.start():end], closers)
    return start, link[:len(match.group())]


def link_in(word: str) -> str | None:
    """The link in `word` once that punctuation is removed, or None if it is no link. The word as a
    whole is judged first: "evil.com/https://youtu.be/…" is a link to evil.com."""
    glued = GLUED_LINK_RE.search(word)
    for candidate in (word, MARKDOWN_LABEL_RE.sub("", word, count=1), glued.group() if glued else ""):
        core = unmarked(candidate)
        if core and is_link(core):
            return core
    return None


def masked_links_read(text: str) -> str:
    """`text`, a Discord message's, with each masked link whose target is a link (`link_in`) as that
    target alone: its label is no link, nor words around one, even where it looks like one
    ("[https://youtu.be/…](https://evil.example/a.mp3)" is a link to evil.example). The target is
    set apart from a word it is glued to, not from marks or brackets (`**[Creep](…)**`: `**…**`)."""
    def target(match: re.Match) -> str:
        link, start, end = match.group("target"), match.start(), match.end()
        if not link_in(link):
            return match.group()
        before = "" if start == 0 or text[start - 1].isspace() or text[start - 1] in BEFORE_LINK else " "
        after = "" if end == len(text) or text[end].isspace() or text[end] in LINK_CLOSERS + MARKDOWN_MARKS else " "
        return before + link + after
    return MASKED_LINK_RE.sub(target, text) if "](" in text else text


# Browsers read "\" as "/" in a link of the web's schemes, up to its query (WHATWG URL), so a host
# ends at one: "https://evil.com\.youtube.com/" opens evil.com, "https://youtube.com\@evil.com/x"
# youtube.com/@evil.com/x. Python's urlsplit keeps it in the host, where "evil.com\.youtube.com"
# ended in an allowed name (or in a user name). Links of other schemes are refused whatever it does.
BEFORE_QUERY_RE = re.compile(r"[^?#]*")
# What no host name holds (WHATWG's forbidden domain code points; an IPv6 address, in brackets, is
# no name, `browser_host`): a browser opens no link to "evil.com|.youtube.com" or
# "evil.com%5c.youtube.com" ("evil.com\.youtube.com" once decoded), which are no subdomains of
# youtube.com either.
NOT_IN_HOST_RE = re.compile(r"[\x00-\x20\x7f#%/:<>?@\[\\\]^|]")


def slashed(url: str) -> str:
    """`url` with the "\\" before its query as "/", as a browser reads it."""
    head = BEFORE_QUERY_RE.match(url).group()
    return head.replace("\\", "/") + url[len(head):]


def is_host_name(host: str) -> bool:
    """Whether `host` may name a host at all: none of the characters no host name holds
    (`NOT_IN_HOST_RE`), at most 253 characters, each label 1-63 once IDNA-encoded. Another is not
    quoted back to the user ("I can't open links to …"): thousands of characters of it would fill
    the answer."""
    if NOT_IN_HOST_RE.search(host):
        return False
    try:
        return len(host.encode("idna")) <= MAX_HOST_CHARS
    except UnicodeError:  # an empty label, or one over 63 characters
        return False


def browser_host(host: str) -> str | None:
    """`host` (a URL's, as `urlsplit` gives it) as a browser reads it, the host it would connect to
    (WHATWG URL's host parser): percent-decoded (once) as UTF-8, then mapped by IDNA's UTS-46
    (non-transitional: NFKC, so full-width letters are ASCII and the full stops "。", "．", "｡" dots;
    lower case; soft hyphens gone), each label of other letters in its xn-- form, and without its
    trailing dots. None where that is no host name (`is_host_name`: "evil.com%2f.youtube.com" is
    "evil.com/.youtube.com"), or holds what no browser maps, or an xn-- label is no punycode of
    letters beyond ASCII that UTS-46 keeps as they are ("xn--youtube-" spells "youtube": no host)."""
    try:
        mapped = uts46(unquote_to_bytes(host).decode("utf-8"))
        labels = [ascii_label(label) for label in mapped.rstrip(".").split(".")]
    except (UnicodeError, idna.IDNAError):
        return None
    host = ".".join(labels)
    return host if host and is_host_name(host) else None


def ipv6_host(host: str) -> str | None:
    """`host`, a URL's in brackets, if it is an IPv6 address (no name: none to map), else None.
    Not with a zone id ("fe80::1%25eth0"): no browser reads one, and Python's takes any text there."""
    try:
        return host if "%" not in host and ipaddress.IPv6Address(host) else None
    except ValueError:
        return None


def uts46(text: str) -> str:
    return idna.uts46_remap(text, std3_rules=False, transitional=False)


def ascii_label(label: str) -> str:
    """A mapped label (`uts46`) as DNS is asked for it. Raises UnicodeError where it is none (one
    over 63 characters is none before its punycode is worked out: that is quadratic in its length)."""
    if len(label) > MAX_LABEL_CHARS:
        raise UnicodeError("a label over 63 characters")
    if label.startswith("xn--"):
        letters = label[4:].encode("ascii").decode("punycode")
        if letters.isascii() or uts46(letters) != letters:
            raise UnicodeError(f"not the punycode of a label: {label}")
        return label
    return label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")


# A host quoted back in a refusal: letters, digits, dots, hyphens (and an IPv6 address's colons).
# Browsers take "*", "_" and "~" in a name too, which chat markup would read ("**evil**.com" bold).
SHOWN_HOST_RE = re.compile(r"[a-z0-9.:-]+")


def shown_host(host: str) -> str:
    """`host` as a refusal names it: itself, or "that site" where chat markup could read it."""
    return host if SHOWN_HOST_RE.fullmatch(host) else "that site"


def host_allowed(host: str, allowed: frozenset[str]) -> bool:
    """Exact match, or a subdomain of an allowed name (nobody else can own *.youtube.com)."""
    return any(host == a or host.endswith("." + a) for a in allowed)


def hosts_dotted(text: str) -> str:
    """`text` with the full stops in its links' hosts as dots: the host after a scheme
    (`SCHEMED_HOST_RE`) or before the path of "host.tld/…" (`BARE_HOST_RE`), the first of the two
    where both would start, found left to right as one pattern of both would be. That pattern was
    tried for a scheme from every letter of a run of scheme characters, each time to the run's
    end, so a message of 4 096 letters kept the event loop from everyone for 80-120 ms; a scheme is
    now looked for only in a run a host follows ("://…"), found once per run."""
    if not any(dot in text for dot in HOST_DOTS):
        return text
    run_ends = [0] * len(text)
    for run in SCHEME_RUN_RE.finditer(text):
        run_ends[run.start():run.end()] = [run.end()] * (run.end() - run.start())
    parts, done, at = [], 0, 0
    while at < len(text):
        host = None
        if run_ends[at] and HOST_AFTER_SCHEME_RE.match(text, run_ends[at]):
            host = SCHEMED_HOST_RE.match(text, at)
        if host is None:
            host = BARE_HOST_RE.match(text, at)
        if host is None:
            at += 1
            continue
        parts += [text[done:at], HOST_DOT_RE.sub(".", host.group())]
        done = at = host.end()
    return "".join(parts) + text[done:]


# The words of a message: runs of what is neither a space nor full-width punctuation, and each of
# those marks alone (it ends a word as a space would, and is no part of a link: `hosts_dotted`).
WORD_RE = re.compile(f"[{FULL_WIDTH_PUNCTUATION}]|[^\\s{FULL_WIDTH_PUNCTUATION}]+")
# A website's name on a song's line ("Yellow by Coldplay via www.last.fm") says where the song was
# heard: no link to it, and no part of its name. It is left out of the search, with a word before
# it that only leads to it. Alone, it is refused as the link it looks like.
SITE_NAME_LEADS = frozenset({"via", "from", "on", "at", "-", "\u2013", "\u2014", "|"})


def is_site_name(link: str) -> bool:
    """Whether `link` (a word's, `link_in`) is a website's name alone: a host starting "www.",
    without a scheme, and without a port, a path (but "/"), a query or a fragment."""
    match = LINK_RE.match(link)
    if not match or not match.group("bare"):
        return False
    host = unicodedata.normalize("NFKC", match.group("bare")).lower()
    return host.startswith("www.") and link[match.end("bare"):] in ("", "/")


def leads_to_site(word: str) -> bool:
    return word.lower() in SITE_NAME_LEADS or word.lstrip(LINK_OPENERS).lower() in SITE_NAME_LEADS


def without_site_names(text: str, spans: list[tuple[int, int]], words: list[str], names: list[int]) -> str:
    """`text` without its `words` numbered in `names` (`is_site_name`), at their `spans`, nor the
    word before each that leads to it (`SITE_NAME_LEADS`), a bracket or quote opened before it or
    not ("(via www.last.fm)": its ")" goes with the name)."""
    dropped = set(names) | {i - 1 for i in names if i and leads_to_site(words[i - 1])}
    kept, done = [], 0
    for i in sorted(dropped):
        kept.append(text[done:spans[i][0]])
        done = spans[i][1]
    return " ".join(kept) + " " + text[done:] if dropped else text


def names_anything(name: str) -> bool:
    """Whether `name` holds a letter, a digit or a symbol (an emoji), which a song's name may be
    made of: not punctuation alone (`ONLY_PUNCTUATION`)."""
    return any(unicodedata.category(c)[0] in "LNS" for c in name)


def parse_query(text: str, allowed_hosts: frozenset[str] = DEFAULT_ALLOWED, *, discord: bool = True) -> Query:
    """Parse a user's message. Raises `UnsupportedInputError` saying what is accepted. `discord`:
    the text is a Discord message's, whose markup (`DISCORD_MARKUP_RE`, `UNDERSCORE_PAIR_RE`) names
    no song, and whose masked link is its target (`masked_links_read`); Telegram hands its
    formatting over apart from the text, and has no such markup, so there (and on the console) what
    looks like it is what the user typed and sees, read as is: "[label](link)" is the link and the
    brackets around it, a label that is itself a link is one too."""
    # Links are looked for in the whole message; only the words around them are capped.
    cleaned = clean_text(text or "", MAX_MESSAGE_CHARS)
    if not cleaned:
        raise UnsupportedInputError(f"Tell me which song. {ACCEPTED}")
    if discord:
        cleaned = masked_links_read(clean_text(without_markup(cleaned), MAX_MESSAGE_CHARS))
    cleaned = hosts_dotted(cleaned)
    spans = [word.span() for word in WORD_RE.finditer(cleaned)]
    words = [cleaned[start:end] for start, end in spans]
    found = [(i, link) for i, w in enumerate(words) if (link := link_in(w))]
    links = [(i, link) for i, link in found if not is_site_name(link)]
    if not links:
        # What is left of markup alone (a "__" between two mentions) names no song either.
        text = without_site_names(cleaned, spans, words, [i for i, _ in found])
        whole = clean_text(UNDERSCORE_PAIR_RE.sub(r"\2", text) if discord else text, MAX_MESSAGE_CHARS)
        name = whole[:MAX_TEXT_CHARS].strip()  # as clean_text caps it: a search takes no more
        if not found and discord and not name.strip("_ "):
            raise UnsupportedInputError(f"{ONLY_MARKUP} {ACCEPTED}")
        if names_anything(name):
            return Query(kind=QueryKind.TEXT, text=name, cut=len(whole) > MAX_TEXT_CHARS)
        if not found:
            raise UnsupportedInputError(f"{ONLY_PUNCTUATION} {ACCEPTED}")
        links = found  # a website's name alone ("www.last.fm"): refused by its name, as a link
    if len(links) > 1:
        raise UnsupportedInputError(f"One song at a time, please. {ACCEPTED}")
    (at, link), = links
    said = [w if i != at else "" for i, w in enumerate(words) if not FULL_WIDTH_PUNCTUATION_RE.fullmatch(w)]
    rest = clean_text(" ".join(said))
    return parse_link(link, rest, allowed_hosts, before=clean_text(" ".join(said[:said.index("")])))


def parse_link(link: str, rest: str, allowed_hosts: frozenset[str], *, before: str = "") -> Query:
    """`link`, with `rest` the message's other words (kept with a link of ours), and `before` those
    before it (where another service's share text names its song: `named_by_service`)."""
    local = SPOTIFY_LOCAL_URI_RE.match(link)
    if local:
        return local_file_query(local.group("artist"), local.group("title"))
    uri = SPOTIFY_URI_RE.match(link)
    if uri:
        return spotify_query(uri.group("kind"), uri.group("id"), rest)
    url = slashed(link if "://" in link else "https://" + link)
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        raise UnsupportedInputError(f"That link doesn't look right. {ACCEPTED}") from None
    if parts.scheme.lower() not in ("http", "https") or parts.username or parts.password:
        raise UnsupportedInputError(f"I can't open that kind of link. {ACCEPTED}")
    # The host judged is the one a browser would open, and the one fetched: a link of ours leaves
    # this parser rebuilt on it ("https://%73potify.link/…" is fetched at https://spotify.link/…).
    host = ipv6_host(parts.hostname or "") if "[" in parts.netloc else browser_host(parts.hostname or "")
    if not host:  # "https://", "http://:" (a link cut short): not a song name either
        raise UnsupportedInputError(f"That link doesn't look right. {ACCEPTED}")
    if service := music_service(host):  # never opened, allowed or not: the song is searched by name
        return named_by_service(service, host, parts.path, before)
    if not host_allowed(host, allowed_hosts):
        raise UnsupportedInputError(f"I can't open links to {shown_host(host)}. {ACCEPTED}")
    if host in SPOTIFY_HOSTS:
        if local := SPOTIFY_LOCAL_PATH_RE.match(parts.path):
            return local_file_query(local.group("artist"), local.group("title"))
        m = SPOTIFY_PATH_RE.match(parts.path)
        if not m:
            raise UnsupportedInputError(f"That Spotify link isn't a track. {ACCEPTED}")
        if m.group("kind").lower() != "track" and (highlighted := highlighted_track(parts.query)):
            return spotify_query("track", highlighted, rest)
        return spotify_query(m.group("kind"), m.group("id"), rest)
    if host in SPOTIFY_SHORT_HOSTS:
        if not SHORT_LINK_PATH_RE.match(parts.path):
            raise UnsupportedInputError(f"That Spotify link looks broken. {ACCEPTED}")
        # Only the code is kept: nothing the user added to the link is sent to its host.
        return Query(kind=QueryKind.SPOTIFY_SHORT_LINK, text=rest, url=f"https://{host}{parts.path.rstrip('/')}")
    if host in YOUTUBE_HOSTS or host == YOUTU_BE:
        video_id = youtube_id_from(host, parts.path, parts.query)
        if video_id is None and YOUTUBE_CLIP_RE.match(parts.path):
            raise UnsupportedInputError(f"{YOUTUBE_CLIP_REFUSED} {ACCEPTED}")
        if video_id is None and parse_qs(parts.query).get("list"):  # a playlist, a YouTube Music album
            raise ManySongsError(f"{YOUTUBE_PLAYLIST_REFUSED} {ACCEPTED}")
        if video_id is None:
            raise UnsupportedInputError(f"That YouTube link isn't a single video. {ACCEPTED}")
        return Query(
            kind=QueryKind.YOUTUBE, text=rest, youtube_id=video_id,
            url=f"https://www.youtube.com/watch?v={video_id}", start_s=youtube_start_s(parts.query, parts.fragment),
        )
    raise UnsupportedInputError(f"I can't read links to {host}. {ACCEPTED}")


def music_service(host: str) -> str | None:
    """The music service `host` is one of (`MUSIC_SERVICES`), or None."""
    return next((service for service, hosts in MUSIC_SERVICES if host_allowed(host, hosts)), None)


def named_by_service(service: str, host: str, path: str, before: str) -> Query:
    """A search for the song that a `service`'s link stands for, by the name the words `before` it
    give in that service's share text (`SHARE_TEXTS`) or an Apple Music song link's slug; nothing
    of the link is kept. Refused (`OTHER_SERVICE_REFUSED`) where neither names it."""
    shared = SHARE_TEXTS.get(service)
    if shared and (named := shared.search(before)) and names_anything(title := named.group("title").strip()):
        return Query(kind=QueryKind.TEXT, text=clean_text(f"{named.group('artist').strip()} - {title}"),
                     link_service=service)
    song = APPLE_SONG_PATH_RE.match(path) if service == "Apple Music" else None
    name = clean_text(unquote_plus(song.group("slug")).replace("-", " ")) if song else ""
    if names_anything(name):
        return Query(kind=QueryKind.TEXT, text=name, link_service=service)
    raise UnsupportedInputError(OTHER_SERVICE_REFUSED.format(host=shown_host(host)))


def share_text_start(before: str, url: str) -> int | None:
    """Where, in `before` (what a message holds before the link `url`), another service's share text
    for that link starts (`SHARE_TEXTS`: "I used Shazam to discover Creep by Radiohead."), the
    song's name in it; None where none ends there. A journal answer takes it with the link for its
    song, as /mood reads both, and the words around them for the user's own."""
    try:
        host = browser_host(urlsplit(url).hostname or "")
    except ValueError:
        return None
    shared = SHARE_TEXTS.get(music_service(host) or "") if host else None
    named = shared.search(before.rstrip()) if shared else None
    if named is None or not names_anything(named.group("title")):
        return None
    return named.start() + (1 if before[named.start()].isspace() else 0)


def spotify_query(kind: str, track_id: str, rest: str) -> Query:
    if kind.lower() != "track":
        refused = ManySongsError if kind.lower() in SPOTIFY_MANY_SONGS else UnsupportedInputError
        raise refused(f"That's a Spotify {kind.lower()}, not a track. {ACCEPTED}")
    if not re.fullmatch(SPOTIFY_ID, track_id):
        raise UnsupportedInputError(f"That Spotify track link looks broken. {ACCEPTED}")
    return Query(
        kind=QueryKind.SPOTIFY_TRACK, text=rest, spotify_id=track_id,
        url=f"https://open.spotify.com/track/{track_id}",
    )


def local_file_query(artist: str, title: str) -> Query:
    """A search for the song a Spotify local file's link names by its tags ("artist - title")."""
    artist, title = clean_text(unquote_plus(artist)), clean_text(unquote_plus(title))
    if not title:
        raise UnsupportedInputError(f"{LOCAL_FILE_REFUSED} {ACCEPTED}")
    return Query(kind=QueryKind.TEXT, text=clean_text(f"{artist} - {title}" if artist else title))


def highlighted_track(query: str) -> str | None:
    """The track an album or playlist link points at: Spotify shares a song seen in its album as
    /album/ID?highlight=spotify:track:ID."""
    uri = SPOTIFY_URI_RE.match((parse_qs(query).get("highlight") or [""])[0])
    return uri.group("id") if uri and uri.group("kind").lower() == "track" else None


# A moment in a video as its link gives it: seconds ("90", "90s") or "1h2m3s", any part left out.
YOUTUBE_TIME_RE = re.compile(r"(?:(?P<h>\d{1,3})h)?(?:(?P<m>\d{1,4})m)?(?:(?P<s>\d{1,6})s?)?")
YOUTUBE_TIME_PARAMS = ("t", "start", "time_continue")


def youtube_start_s(query: str, fragment: str) -> int | None:
    """The moment a YouTube link starts at (?t=, ?start=, ?time_continue=, #t=), in seconds; None
    where it gives none, or 0, or one not written as YouTube writes it."""
    given = parse_qs(query)
    for value in [*(v for name in YOUTUBE_TIME_PARAMS for v in given.get(name, [])), *parse_qs(fragment).get("t", [])]:
        time = YOUTUBE_TIME_RE.fullmatch(value.strip())
        seconds = time and sum(int(time.group(unit) or 0) * n for unit, n in (("h", 3600), ("m", 60), ("s", 1)))
        if seconds:
            return seconds
    return None


def youtube_id_from(host: str, path: str, query: str) -> str | None:
    if host == YOUTU_BE:
        candidate = path.strip("/")
    elif path.rstrip("/") == "/watch":
        # "v=ID?si=…": a parameter glued on with a second '?' belongs to no video id.
        candidate = (parse_qs(query).get("v") or [""])[0].split("?", 1)[0]
    else:
        m = YOUTUBE_PATH_RE.match(path)
        candidate = m.group("id") if m else ""
    return candidate if re.fullmatch(YOUTUBE_ID, candidate) and candidate != YOUTUBE_EMBEDDED_PLAYLIST else None
