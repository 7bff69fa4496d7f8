"""Resolve a song name, a Spotify track link or a short link to a `TrackInfo`, through the real
spotipy client. A name is matched only to a hit close to it (`closeness`), never just to the first.

spotipy is synchronous, so every call runs in a worker thread. spotipy's own urllib3 retries are
switched off (a plain requests.Session is passed in): a retry loop here honours Retry-After
with a cap, and ends in an error a user can read.
"""
from __future__ import annotations

import logging
import math
import re
import threading
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Generic, Hashable, Mapping, TypeVar

import requests
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOauthError

from bot.sources.models import (
    NoCloseMatchError,
    Query,
    QueryKind,
    SpotifyBusyError,
    SpotifyUnavailableError,
    TrackInfo,
    TrackNotFoundError,
)
from bot.sources.query import DEFAULT_ALLOWED, quoted_name
from bot.sources.lookups import in_lookup_thread
from bot.sources.shortlink import ShortLinkResolver

log = logging.getLogger(__name__)
# spotipy logs request headers (the bearer token, the Basic client secret) at DEBUG: never let
# those lines through, whatever LOG_LEVEL says.
logging.getLogger("spotipy").setLevel(max(logging.getLogger("spotipy").level, logging.INFO))
# spotipy.client logs each failed call at ERROR with its parameters, a search's words (the user's)
# among them, then raises: `_call_with_retries` logs each failure itself, Spotify's words included.
logging.getLogger("spotipy.client").setLevel(logging.CRITICAL)

DEFAULT_API_URL = "https://api.spotify.com/v1/"
DEFAULT_AUTH_URL = "https://accounts.spotify.com/api/token"
SEARCH_LIMIT = 10  # the most a development-mode app may ask for (2026)
REQUEST_TIMEOUT_S = 5.0
CACHE_SIZE = 1024
CACHE_TTL_S = 6 * 3600.0

BUSY_MESSAGE = "Spotify is busy right now — try again in {when}."
UNAVAILABLE_MESSAGE = "Spotify isn't answering right now — try again later."
# The token service refused the app's id and secret (invalid_client): no later try changes it.
CREDENTIALS_REFUSED_MESSAGE = ("Spotify refuses this bot's credentials, so I can't look songs up there — "
                               "send a YouTube link or an audio file instead.")
# Spotify answers the app's calls 403: since 2026-03-09, a Development Mode app whose owner has no
# Premium ("Active premium subscription required for the owner of the app"), for some hours after
# a renewal too. No try in the next seconds changes it.
APP_REFUSED_MESSAGE = ("Spotify refuses this bot's access for now, so I can't look songs up there — "
                       "send a YouTube link or an audio file instead.")
# What the operator is to do about that 403 (the log's spotify.app_refused, and `--check`).
APP_REFUSED_FIX = ("check the app of SPOTIFY_CLIENT_ID at https://developer.spotify.com/dashboard "
                   "(a Development Mode app answers only while its owner has Spotify Premium)")

# Ranking weights: a title match matters most, then the artist; versions the user did not ask
# for (live, karaoke, ...) lose to the studio track; popularity only breaks near-ties.
TITLE_EXACT = 50.0
TITLE_CONTAINS = 30.0
TITLE_OVERLAP = 20.0
ARTIST_EXACT = 40.0
ARTIST_CONTAINS = 25.0
VERSION_PENALTY = 35.0
UNTYPED_PART_PENALTY = 10.0  # more than popularity and Spotify's order together (see `untyped_parts`)
POPULARITY_WEIGHT = 5.0
RANK_ORDER_WEIGHT = 0.1  # Spotify's own order, the last tie-break
VERSION_TAGS = (
    "live", "karaoke", "cover", "remix", "sped up", "slowed", "reverb", "instrumental",
    "acoustic", "nightcore", "8d", "tribute", "demo", "originally performed", "made famous",
    "speed up", "speeded up", "acapella", "a cappella", "unplugged", "lofi", "lo fi", "reprise", "remixed",
    "rework", "extended", "orchestral",
)
# A part of a title after its name (in brackets, or after " - ") that says the recording is the
# same: a remaster, an edit, mono or stereo, the single's. Of these words (and numbers: "2011",
# "40th"), or opening with one of `CREDIT_WORDS` ("From "8 Mile"", "feat. Sia", "with Justin
# Bieber"), it is no version.
SAME_RECORDING_WORDS = frozenset({"remaster", "remastered", "remasterd", "radio", "edit", "mono", "stereo",
                                  "single", "album", "version", "original", "mix", "explicit", "clean", "digital",
                                  "deluxe", "edition", "anniversary", "bonus", "track"})
CREDIT_WORDS = frozenset({"from", "feat", "ft", "featuring", "with"})
# Closeness is a judgement with two sides. Every word the user typed must be in the hit (its title
# or artists), and the hit's title must have been typed: all of its words, or at least half of
# them, in their order ("Bohemian" for "Bohemian Rhapsody"). Little words need not be typed, and
# a word may carry typos in proportion to its length; "Let it go" is not "Let It Be".
CLOSE_ENOUGH = 0.5  # a hit scores at least this exactly when it is taken (refusals are scaled below it)
PART_OF_TITLE = 0.5  # the least share of a title's words that, typed in order, names it
MIN_FUZZY_WORD = 4  # shorter words must match exactly (or "go" would be "be", "me" "mr")
LONG_WORD = 8  # from this length a word may carry two typos ("dismembe", "ramstein"), below it one
MAX_GLUED = 3  # words typed without spaces ("acdc"), or split ("bright side"), up to this many
# Glue between a title and its artist: not needed in a title, not counted in what was typed.
FILLER_WORDS = frozenset({"the", "a", "an", "by", "and", "of", "to", "in", "on", "for", "with", "feat", "ft",
                          "featuring", "x", "vs"})
# Words people add to a name ("official audio"): not counted in what was typed. ("song" and
# "track" are not among them: "Love Song" is not "Love".)
NOISE_WORDS = frozenset({"official", "audio", "video", "lyrics", "lyric", "remastered", "remaster", "version",
                         "music", "hq", "hd", "mv"})
YEAR_RE = re.compile(r"(?:19|20)\d\d")  # "creep radiohead 1992": a year typed need not be in the hit
APOSTROPHES_RE = re.compile(r"['’`´ʼ]")  # "don't" is typed "dont"; "Guns N' Roses" keeps its "n"
# Scripts written without spaces: each character is compared as a word ("夜に駆ける").
UNSPACED_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7a3\uf900-\ufaff]")
LATIN_END = "\u0250"  # letters below this are Latin (accents included)
ACCENTED_END = "\u0530"  # accents are dropped from Latin, Greek and Cyrillic letters only (not kana's)
CLOSEST_SHOWN = 3
CLOSEST_NAME_CHARS = 60
PAREN_RE = re.compile(r"[(\[].*?[)\]]")
FEAT_RE = re.compile(r"\b(?:feat|ft|featuring)\b.*$")
PAREN_CONTENT_RE = re.compile(r"[(\[](.*?)[)\]]")
NON_WORD_RE = re.compile(r"[^\w\s]")
# Spotify's search filters, which someone who knows them may type ("artist:radiohead creep",
# 'track:"fake plastic trees"', "year:1992"): sent to Spotify as typed, which applies them. In what
# the hit is compared with, a track or artist filter is the words it names; the others (an album,
# a year, an ISRC) name nothing a hit's title or artists hold, and are left out.
SEARCH_FILTER_RE = re.compile(r'(?<!\S)(?P<field>track|artist|album|year|genre|tag|isrc|upc):(?P<value>"[^"]*"?|\S*)',
                              re.IGNORECASE)
NAME_FILTERS = frozenset({"track", "artist"})


# The longest Retry-After passed on to the user: a host asking for more is telling no wait anyone
# would keep in mind ("1e300" reads as a number too).
MAX_RETRY_AFTER_S = 24 * 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    max_tries: int = 3
    max_wait_s: float = 10.0  # the longest Retry-After waited for; a longer one is passed on to the user
    backoff_s: float = 0.5  # for 5xx and network errors, doubled each try


# -- caching -------------------------------------------------------------------------------

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """A small thread-safe LRU whose entries also expire."""

    def __init__(self, maxsize: int, ttl_s: float, clock: Callable[[], float] = time.monotonic):
        self.maxsize, self.ttl_s, self.clock = maxsize, ttl_s, clock
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            expires, value = hit
            if expires < self.clock():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = (self.clock() + self.ttl_s, value)
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)


# -- ranking ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    title: str
    artists: tuple[str, ...]
    popularity: int = 0


def cache_key(query: Query) -> tuple[str, str] | None:
    """Where the resolver caches the answer to `query`."""
    if query.kind is QueryKind.SPOTIFY_TRACK and query.spotify_id:
        return ("track", query.spotify_id)
    if query.kind is QueryKind.TEXT:
        return ("search", search_key(query.text))
    if query.kind is QueryKind.SPOTIFY_SHORT_LINK and query.url:
        return ("link", query.url)
    return None


def search_key(text: str) -> str:
    """Queries that differ only in case, accents or punctuation share one cache entry; a query
    of symbols alone ("💔") normalises to nothing and is kept as typed instead."""
    return normalise(text) or " ".join(text.casefold().split())


def normalise(text: str) -> str:
    """Lower case, no accents, no punctuation, single spaces."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c)).replace("&", " and ")
    return " ".join(NON_WORD_RE.sub(" ", text).split())


def base_title(title: str) -> str:
    """The title without "(Remastered 2011)", " - Live", "feat. X": what people type."""
    title = PAREN_RE.sub(" ", title).split(" - ")[0]
    return normalise(FEAT_RE.sub("", normalise(title)))


def version_tags(text: str) -> set[str]:
    words = f" {normalise(text)} "
    return {tag for tag in VERSION_TAGS if f" {tag} " in words}


def title_parts(title: str) -> list[str]:
    """The parts of a title after its name: each " - " part after the first, and each bracketed
    part of the first but one opening it ("(I Can't Get No) Satisfaction") or written in another
    script than the name ("강남스타일 (Gangnam Style)": the name again)."""
    head, *tails = title.split(" - ")
    name_scripts = {_script(w) for w in name_words(PAREN_RE.sub(" ", head))}
    parts = []
    for m in PAREN_CONTENT_RE.finditer(head):
        words = name_words(m.group(1))
        if head[:m.start()].strip() and (not name_scripts or name_scripts & {_script(w) for w in words}):
            parts.append(m.group(1))
    return parts + tails


def untyped_parts(title: str, query_text: str) -> int:
    """How many parts of a title after its name (`title_parts`) say it is a version, or another
    song, that the user didn't type. VERSION_TAGS are the versions known by name ("Live",
    "Karaoke"), penalised by VERSION_PENALTY on their own; but Spotify's titles carry any words
    there ("Daylight (speed up)", "Creep - Quiet", "Love The Way You Lie (Part II)", another
    song), and base_title drops them, so such a version would score as exactly the song typed and
    win on popularity. So every other part counts, unless it is the same recording
    (`SAME_RECORDING_WORDS`, `CREDIT_WORDS`) or one of its words was typed ("creep piano"). Each
    costs UNTYPED_PART_PENALTY, less than a known version: the words may be the title's own
    ("Blue (Da Ba Dee)"), and are then only outweighed by the same title without them."""
    typed = name_words(query_text)
    count = 0
    for part in title_parts(title):
        words = name_words(part)
        if not words or words[0] in CREDIT_WORDS or version_tags(part):
            continue  # nothing, a credit, or a known version (its own penalty)
        words = [w for w in words if w not in FILLER_WORDS]
        meaning = [w for w in words if w not in SAME_RECORDING_WORDS and not w.isdigit()
                   and not re.fullmatch(r"\d+(?:st|nd|rd|th)", w)]
        if meaning and not any(words_found(meaning, typed)):
            count += 1
    return count


def interpretations(text: str) -> list[tuple[str, str | None]]:
    """Ways to read the query as (title, artist): "artist - title", "title by artist", or all title."""
    readings: list[tuple[str, str | None]] = [(text, None)]
    if " - " in text:
        left, right = (p.strip() for p in text.split(" - ", 1))
        readings += [(right, left), (left, right)]
    lowered = text.lower()
    if " by " in lowered:
        cut = lowered.rindex(" by ")
        readings.append((text[:cut].strip(), text[cut + 4:].strip()))
    return [(t, a) for t, a in readings if t]


def _overlap(a: str, b: str) -> float:
    wa, wb = set(a.split()), set(b.split())
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def _title_score(title: str, wanted: str) -> float:
    if title == wanted:
        return TITLE_EXACT
    if title and wanted and (f" {title} " in f" {wanted} " or f" {wanted} " in f" {title} "):
        return TITLE_CONTAINS
    return TITLE_OVERLAP * _overlap(title, wanted)


def _artist_score(artists: list[str], wanted: str) -> float:
    if wanted in artists:
        return ARTIST_EXACT
    if any(a and (f" {a} " in f" {wanted} " or f" {wanted} " in f" {a} ") for a in artists):
        return ARTIST_CONTAINS
    return 0.0


def match_score(candidate: Candidate, query_text: str) -> float:
    titles = (base_title(candidate.title), normalise(candidate.title))
    artists = [normalise(a) for a in candidate.artists]
    best = 0.0
    for wanted_title, wanted_artist in interpretations(query_text):
        wt = normalise(wanted_title)
        title_score = max(_title_score(t, wt) for t in titles)
        if wanted_artist is None:
            # The whole query: it may hold both title and artist words ("radiohead creep").
            score = title_score
            if any(a and f" {a} " in f" {wt} " for a in artists):
                score += ARTIST_CONTAINS
        else:
            artist_score = _artist_score(artists, normalise(wanted_artist))
            # A split whose "artist" matches nobody was probably a wrong reading ("Stand by Me").
            score = title_score + artist_score if artist_score else title_score / 2
        best = max(best, score)
    tags, asked = version_tags(candidate.title), version_tags(query_text)
    versions = VERSION_PENALTY * (len(tags & asked) - len(tags - asked))
    versions -= UNTYPED_PART_PENALTY * untyped_parts(candidate.title, query_text)
    return best + versions + POPULARITY_WEIGHT * candidate.popularity / 100


def best_match_index(query_text: str, candidates: list[Candidate]) -> int | None:
    """Index of the candidate that best fits what the user typed; None if there are none."""
    if not candidates:
        return None
    scores = [match_score(c, query_text) - RANK_ORDER_WEIGHT * i for i, c in enumerate(candidates)]
    return max(range(len(candidates)), key=scores.__getitem__)


def name_words(text: str) -> list[str]:
    """The words of a name as they are compared: case folded, full-width letters as plain ones,
    no accents, no apostrophes or other punctuation, and a character of Japanese, Chinese or
    Korean as a word of its own."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    kept: list[str] = []
    for ch in text:
        if unicodedata.combining(ch) and kept and kept[-1] < ACCENTED_END:
            continue  # "é" is "e", "ё" is "е"; "が" stays "が"
        kept.append(ch)
    text = APOSTROPHES_RE.sub("", unicodedata.normalize("NFC", "".join(kept))).replace("&", " and ")
    return UNSPACED_RE.sub(r" \g<0> ", NON_WORD_RE.sub(" ", text)).split()


def _script(word: str) -> str:
    if UNSPACED_RE.search(word):
        return "unspaced"
    return "latin" if any(ch < LATIN_END for ch in word) else "other"


def _typos_allowed(length: int) -> int:
    return 0 if length < MIN_FUZZY_WORD else 1 if length < LONG_WORD else 2


def _edits(a: str, b: str) -> int:
    """Insertions, deletions, substitutions and swaps of neighbours that turn `a` into `b`."""
    before, row = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (ca != cb))
            if before is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, before[j - 2] + 1)
            current.append(cost)
        before, row = row, current
    return row[-1]


def same_word(a: str, b: str) -> bool:
    """`a` and `b` are one word, allowing typos in proportion to its length: none in a word of
    up to three letters, one up to seven, two beyond. A typo keeps the first letter, as nearly
    all do ("Hallo" is "Hello"; "Pain" is not "Rain")."""
    if a == b:
        return True
    allowed = _typos_allowed(min(len(a), len(b)))
    return (allowed > 0 and a[0] == b[0] and abs(len(a) - len(b)) <= allowed
            and _edits(a, b) <= allowed)


def _runs(words: list[str]) -> list[tuple[int, int, str]]:
    """(start, end, the words written together) for each run of 2 to MAX_GLUED words."""
    return [(i, i + n, "".join(words[i:i + n]))
            for n in range(2, MAX_GLUED + 1) for i in range(len(words) - n + 1)]


def words_found(words: list[str], among: list[str]) -> list[bool]:
    """Which of `words` are among `among`: as a word, as words of it written together ("acdc"
    for "AC/DC"), or written apart themselves ("bright side" for "Brightside")."""
    whole = among + [glued for _, _, glued in _runs(among)]
    found = [_among(w, whole) for w in words]
    for start, end, glued in _runs(words):
        if _among(glued, among):
            found[start:end] = [True] * (end - start)
    return found


def _among(word: str, among: list[str]) -> bool:
    if len(word) < MIN_FUZZY_WORD:  # no typo allowed: a plain lookup (a CJK character, "go")
        return word in among
    return any(same_word(word, other) for other in among)


def _in_order(words: list[str], typed: list[str]) -> bool:
    """`words` were typed in this order, whatever else was typed between them."""
    at = 0
    for word in words:
        at = next((i + 1 for i in range(at, len(typed)) if same_word(word, typed[i])), -1)
        if at < 0:
            return False
    return True


def title_forms(title: str) -> list[list[str]]:
    """The words of a title as people type it: without "(Remastered 2011)", " - Live" or
    "feat. X"; and a name in brackets in another script ("강남스타일 (Gangnam Style)")."""
    core = FEAT_RE.sub("", PAREN_RE.sub(" ", title).split(" - ")[0].casefold())
    forms = [name_words(core) or name_words(title)]
    scripts = {_script(w) for w in forms[0]}
    for inner in PAREN_CONTENT_RE.findall(title):
        words = name_words(inner)
        if words and not scripts & {_script(w) for w in words}:
            forms.append(words)
    return forms


def _f_score(a: float, b: float) -> float:
    return 2 * a * b / (a + b) if a and b else 0.0


def closeness(candidate: Candidate, query_text: str) -> float:
    """How close a found song is to what the user typed, from 0 to 1; `CLOSE_ENOUGH` or more when
    it is taken for the song asked for (see the judgement above), less when refused, the nearer
    refusals scoring higher.

    A name typed in another script than every form of the title ("yoru ni kakeru" for
    夜に駆ける) cannot be compared: Spotify's search matched it, and is taken at its word."""
    typed = name_words(query_text)
    if not typed:  # symbols only ("💔"): the title holds them or not
        wanted = " ".join(query_text.casefold().split())
        return 1.0 if wanted and wanted in candidate.title.casefold() else 0.0
    typed_scripts = {_script(w) for w in typed}
    forms = [f for f in title_forms(candidate.title) if typed_scripts & {_script(w) for w in f}]
    if not forms:
        return 1.0
    held = name_words(candidate.title) + [w for a in candidate.artists for w in name_words(a)]
    typed_words = [w for w in typed if w not in FILLER_WORDS | NOISE_WORDS and not YEAR_RE.fullmatch(w)] or typed
    of_typed = _share(words_found(typed_words, held))
    best = 0.0
    for form in forms:
        title_words = [w for w in form if w not in FILLER_WORDS] or form
        found = words_found(title_words, typed)
        score = _f_score(_share(found), of_typed)
        taken = of_typed == 1 and _title_typed(title_words, found, typed)
        best = max(best, score if taken else score * CLOSE_ENOUGH)
    return best


def _title_typed(title_words: list[str], found: list[bool], typed: list[str]) -> bool:
    """All of the title was typed, or at least `PART_OF_TITLE` of it: one run of its words, in
    their order ("rule the world" for "Everybody Wants To Rule The World", not "let it go" for
    "Go Let It Out")."""
    if all(found):
        return True
    if _share(found) < PART_OF_TITLE:
        return False
    first, last = found.index(True), len(found) - found[::-1].index(True)
    return all(found[first:last]) and _in_order(title_words[first:last], typed)


def _share(found: list[bool]) -> float:
    return sum(found) / len(found) if found else 0.0


def pick_match(query_text: str, candidates: list[Candidate]) -> int | None:
    """Index of the best-ranked candidate close enough to what the user typed; None if none is."""
    close = [i for i, c in enumerate(candidates) if closeness(c, query_text) >= CLOSE_ENOUGH]
    best = best_match_index(query_text, [candidates[i] for i in close])
    return None if best is None else close[best]


def no_close_match(query_text: str, candidates: list[Candidate], *, asked: str | None = None) -> NoCloseMatchError:
    """The error naming the nearest songs found, so the user can tell which one they meant. A name
    that is an artist's alone ("radiohead") is asked which of their songs, naming theirs.
    `asked`: what the user typed, as the message quotes it (`query_text` without search filters)."""
    typed = name_words(query_text)
    shown = quoted_name(query_text if asked is None else asked)  # a long name: its start
    theirs = [c for c in candidates if typed and any(name_words(a) == typed for a in c.artists)]
    if theirs:
        names = _song_names(theirs)  # in Spotify's order: their best known first
        message = (f"“{shown}” is an artist: which of their songs? The nearest I found were "
                   f"{_quoted(names)}. Send me a Spotify link, or the name as artist - title.")
    else:
        names = _song_names(sorted(candidates, key=lambda c: -closeness(c, query_text)))
        message = (f"I couldn't find “{shown}” on Spotify; the nearest songs were {_quoted(names)}. "
                   f"Send me a Spotify link, or the exact name as artist - title.")
    error = NoCloseMatchError(message)
    error.closest = tuple(names)
    return error


def _song_names(candidates: list[Candidate]) -> list[str]:
    """The first `CLOSEST_SHOWN` different songs, as "artists – title", each cut to a length."""
    names: list[str] = []
    for c in candidates:
        name = f"{', '.join(c.artists)} – {c.title}" if c.artists else c.title
        name = name if len(name) <= CLOSEST_NAME_CHARS else name[:CLOSEST_NAME_CHARS - 1] + "…"
        if name not in names:
            names.append(name)
        if len(names) == CLOSEST_SHOWN:
            break
    return names


def _quoted(names: list[str]) -> str:
    return ", ".join(f"“{n}”" for n in names)


def typed_name(query_text: str) -> str:
    """The song's name in what the user typed: without Spotify's search filters, a track or
    artist filter kept as the words it names ("artist:radiohead creep" is "radiohead creep")."""
    def words_named(m: re.Match) -> str:
        value = m.group("value").strip('"')
        return f" {value} " if m.group("field").lower() in NAME_FILTERS else " "
    return " ".join(SEARCH_FILTER_RE.sub(words_named, query_text).split())


def search_text(query_text: str) -> str:
    """What to send to Spotify's search: the words, without the " - " / " by " glue.
    ("Stand by Me" becomes "Stand Me", which Spotify still finds; ranking uses the full text.)"""
    text = query_text.replace(" - ", " ")
    lowered = text.lower()
    if " by " in lowered:
        cut = lowered.rindex(" by ")
        text = text[:cut] + " " + text[cut + 4:]
    return " ".join(text.split())


# -- Spotify JSON -> TrackInfo ---------------------------------------------------------------

def track_info_from_json(item: dict) -> TrackInfo:
    album = item.get("album") or {}
    images = sorted(album.get("images") or [], key=lambda im: -(im.get("width") or 0))
    duration_ms = item.get("duration_ms")
    return TrackInfo(
        key=f"spotify:{item['id']}",
        title=item.get("name") or "",
        artists=tuple(a.get("name", "") for a in item.get("artists") or []),
        album=album.get("name"),
        duration_s=duration_ms / 1000 if duration_ms else None,
        isrc=(item.get("external_ids") or {}).get("isrc"),
        art_url=images[0]["url"] if images else None,
        spotify_id=item["id"],
        spotify_url=(item.get("external_urls") or {}).get("spotify"),
    )


def candidate_from_json(item: dict) -> Candidate:
    return Candidate(
        title=item.get("name") or "",
        artists=tuple(a.get("name", "") for a in item.get("artists") or []),
        popularity=int(item.get("popularity") or 0),
    )


def busy_message(wait_s: float) -> str:
    """BUSY_MESSAGE with the wait Spotify asked for, in words a person reads at a glance."""
    return BUSY_MESSAGE.format(when=wait_words(wait_s))


def wait_words(wait_s: float) -> str:
    """A wait in words a person reads at a glance: "a minute", "about 5 minutes"."""
    if wait_s <= 10:
        return "a few seconds"
    if wait_s <= 60:
        return "a minute"
    if wait_s < 3600:
        return f"about {math.ceil(wait_s / 60)} minutes"
    return "an hour or so"


def retry_after_s(headers, default: float) -> float:
    """The seconds a Retry-After header asks for (at most MAX_RETRY_AFTER_S), else `default`.
    float() also reads "nan" and "inf": time.sleep refuses a NaN, and neither is a wait to tell a
    user, so they count as no number at all."""
    try:
        wait = float((headers or {}).get("Retry-After"))
    except (TypeError, ValueError):
        return default
    return min(max(wait, 0.0), MAX_RETRY_AFTER_S) if math.isfinite(wait) else default


def is_transient(status: int | None) -> bool:
    """Spotify is busy (429) or failing (5xx): worth asking again, and not the request's fault."""
    return status is not None and (status == 429 or status >= 500)


def token_answer(error: SpotifyOauthError) -> tuple[int | None, Mapping[str, str]]:
    """The HTTP status and headers of the token service's answer behind spotipy's error. spotipy
    keeps only the body's words, which say "server_error" for an outage as for a refusal; the
    status is on the HTTPError it was raised from (None when there was no answer)."""
    response = getattr(error.__context__, "response", None)
    return getattr(response, "status_code", None), getattr(response, "headers", None) or {}  # any case


# -- the resolver ----------------------------------------------------------------------------

class SpotifyResolver:
    """Looks songs up on Spotify (client-credentials flow)."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        api_url: str = DEFAULT_API_URL,
        auth_url: str = DEFAULT_AUTH_URL,
        *,
        timeout_s: float = REQUEST_TIMEOUT_S,
        retry: RetryPolicy = RetryPolicy(),
        cache_size: int = CACHE_SIZE,
        cache_ttl_s: float = CACHE_TTL_S,
        sleep: Callable[[float], None] = time.sleep,
        allowed_hosts: frozenset[str] = DEFAULT_ALLOWED,
        short_link_url: str | None = None,
    ):
        self.retry = retry
        # short_link_url: where spotify.link is asked instead of itself (tests: a local server).
        self.short_links = ShortLinkResolver(allowed_hosts, base_url=short_link_url)
        self._sleep = sleep
        self._cache: TTLCache[tuple[str, str], TrackInfo] = TTLCache(cache_size, cache_ttl_s)
        auth = SpotifyClientCredentials(
            client_id=client_id,
            client_secret=client_secret,
            requests_session=_plain_session(),
            requests_timeout=timeout_s,
            cache_handler=MemoryCacheHandler(),  # never write a token file to disk
        )
        auth.OAUTH_TOKEN_URL = auth_url  # spotipy reads the class attribute through self
        self._auth = auth
        self._client = spotipy.Spotify(
            auth_manager=auth,
            requests_session=_plain_session(),
            requests_timeout=timeout_s,
            retries=0,
            status_retries=0,
        )
        self._client.prefix = api_url if api_url.endswith("/") else api_url + "/"

    async def resolve(self, query: Query) -> TrackInfo:
        """A track for a TEXT or SPOTIFY_TRACK query. Raises a `SourceError` subclass."""
        # A cached answer is a dict lookup: no need for a thread (spotipy blocks, so misses go to one).
        cached = self._cache.get(cache_key(query))
        if cached is not None:
            return cached
        return await in_lookup_thread(self.resolve_sync, query)

    def resolve_sync(self, query: Query) -> TrackInfo:
        if query.kind is QueryKind.SPOTIFY_TRACK and query.spotify_id:
            return self._track(query.spotify_id)
        if query.kind is QueryKind.TEXT:
            return self._search(query.text)
        if query.kind is QueryKind.SPOTIFY_SHORT_LINK and query.url:
            return self._short_link(query.url)
        raise ValueError(f"Spotify cannot resolve a {query.kind.value} query")

    def _track(self, track_id: str) -> TrackInfo:
        cached = self._cache.get(("track", track_id))
        if cached is not None:
            return cached
        try:
            item = self._call(self._client.track, track_id)
        except spotipy.SpotifyException as error:
            if error.http_status in (400, 404):
                raise TrackNotFoundError("I couldn't find that track on Spotify.") from None
            raise self._unavailable(error) from None
        track = track_info_from_json(item)
        self._cache.put(("track", track_id), track)
        return track

    def _short_link(self, url: str) -> TrackInfo:
        key = ("link", url)  # as cache_key
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        track = self._track(self.short_links.track_id(url))
        self._cache.put(key, track)
        return track

    def _search(self, text: str) -> TrackInfo:
        key = ("search", search_key(text))  # as cache_key
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        try:
            result = self._call(self._client.search, q=search_text(text), type="track", limit=SEARCH_LIMIT)
        except spotipy.SpotifyException as error:
            raise self._unavailable(error) from None
        items = [i for i in ((result or {}).get("tracks") or {}).get("items") or [] if i and i.get("id")]
        if not items:
            raise TrackNotFoundError(f"I couldn't find “{quoted_name(text)}” on Spotify.")
        # Spotify's search always answers something: its first hit may be another song altogether.
        # Filters alone ("isrc:…") name no words to compare with: what they found is taken.
        candidates = [candidate_from_json(i) for i in items]
        name = typed_name(text)
        best = pick_match(name, candidates) if name else 0
        if best is None:
            raise no_close_match(name, candidates, asked=text)
        track = track_info_from_json(items[best])
        self._cache.put(key, track)
        self._cache.put(("track", track.spotify_id or ""), track)
        return track

    def _call(self, fn: Callable, *args, **kwargs):
        """Run one spotipy call with bounded retries on 429 (Retry-After), 5xx and network errors,
        and once more with a new token if Spotify refused the one it gave (401)."""
        try:
            return self._call_with_retries(fn, *args, **kwargs)
        except spotipy.SpotifyException as error:
            if error.http_status != 401:
                raise
        # Spotify may end a token before the expires_in it gave, and spotipy would keep sending it
        # until then: forget it, so this one more call fetches a fresh one.
        log.warning("Spotify refused the access token; fetching a new one")
        self._auth.cache_handler.save_token_to_cache(None)
        return self._call_with_retries(fn, *args, **kwargs)

    def _call_with_retries(self, fn: Callable, *args, **kwargs):
        busy_wait: float | None = None
        for attempt in range(1, self.retry.max_tries + 1):
            try:
                return fn(*args, **kwargs)
            except spotipy.SpotifyException as error:
                if not is_transient(error.http_status):
                    raise
                status, headers, said = error.http_status, error.headers, spotify_words(error)
            except SpotifyOauthError as error:
                status, headers = token_answer(error)
                said = error.error_description or error.error or ""
                if not is_transient(status) and status not in (None, 400, 401):  # no refusal: not the token service?
                    log.error("spotify.token_failed: Spotify's token service answered %s (%s): check SPOTIFY_AUTH_URL",
                              status, error.error or "unknown")
                    raise SpotifyUnavailableError(UNAVAILABLE_MESSAGE) from None
                if not is_transient(status):
                    log.error("spotify.credentials_refused: Spotify refused SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET "
                              "(%s): check them against the app's Client ID and Client secret "
                              "(https://developer.spotify.com/dashboard)", error.error or "unknown")
                    raise SpotifyUnavailableError(CREDENTIALS_REFUSED_MESSAGE) from None
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
                busy_wait, wait = None, self.retry.backoff_s * 2 ** (attempt - 1)
                log.warning("Spotify unreachable: %s (try %d of %d)", type(error).__name__, attempt, self.retry.max_tries)
                status = None
            if status == 429:
                busy_wait = retry_after_s(headers, self.retry.backoff_s)
                if busy_wait > self.retry.max_wait_s:
                    log.warning("spotify.failed: 429 %s (try %d of %d), Retry-After %.0f s: passed on to the user",
                                said, attempt, self.retry.max_tries, busy_wait)
                    break  # asking again sooner only gets another 429: pass the wait on now
                wait = busy_wait
            elif status is not None:
                busy_wait, wait = None, self.retry.backoff_s * 2 ** (attempt - 1)
            if status is not None:
                log.warning("spotify.failed: %s %s (try %d of %d)", status, said, attempt, self.retry.max_tries)
            if attempt < self.retry.max_tries:
                self._sleep(min(wait, self.retry.max_wait_s))
        if busy_wait is not None:
            busy = SpotifyBusyError(busy_message(busy_wait))
            busy.retry_after_s = busy_wait
            raise busy
        raise SpotifyUnavailableError(UNAVAILABLE_MESSAGE)

    @staticmethod
    def _unavailable(error: spotipy.SpotifyException) -> SpotifyUnavailableError:
        """The error for a call Spotify refused (not retried), logged with Spotify's reason."""
        if error.http_status == 403:
            log.error("spotify.app_refused: Spotify answered 403 (%s): %s", spotify_words(error), APP_REFUSED_FIX)
            return SpotifyUnavailableError(APP_REFUSED_MESSAGE)
        log.error("spotify.failed: Spotify answered %s (%s)", error.http_status, spotify_words(error))
        return SpotifyUnavailableError(UNAVAILABLE_MESSAGE)


def spotify_words(error: spotipy.SpotifyException) -> str:
    """What Spotify said of a failed call: spotipy's message is "<request URL>:\n <Spotify's words>",
    and the URL of a search carries the user's words, which stay out of the logs."""
    return str(error.msg).rpartition(":\n ")[2].strip()


def _plain_session() -> requests.Session:
    """A session with no retry adapter: retries are decided in `SpotifyResolver._call`."""
    return requests.Session()


def resolver_from_settings(settings) -> SpotifyResolver | None:
    """The resolver for these `Settings`, or None when no Spotify credentials are configured."""
    if not settings.spotify_enabled:
        return None
    return SpotifyResolver(
        settings.spotify_client_id,
        settings.spotify_client_secret.get_secret_value(),
        api_url=settings.spotify_api_url,
        auth_url=settings.spotify_auth_url,
        allowed_hosts=settings.allowed_host_set,  # a short link's hops are judged by it too
    )
