"""What Discord puts in a message around a song, turned into the query the user meant: its markdown
around a link (quotes, italics, bold, underline, strikethrough, spoilers, angle brackets, in any
nesting), and its markup for emoji, mentions and timestamps in a song's name, which is no part of
it. Driven through the real discord.py against the fake Discord, and the real spotipy against the
fake Spotify."""
from __future__ import annotations

import itertools
from contextlib import asynccontextmanager

import pytest

from bot.frontends.discord.mood import links_in_text
from bot.sources.models import QueryKind, UnsupportedInputError
from bot.sources.query import DEFAULT_ALLOWED, ONLY_MARKUP, parse_query
from bot.usecases.mood import SPOTIFY_OFF_ERROR
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.spotify_api import FakeSpotify
from tests.frontends.conftest import discord_on, prompts_through, usecases_with_creep
from tests.frontends.test_discord import ATTACHMENT, GUILD, STRING, dm_answer, message_command, open_a_prompt
from tests.frontends.test_discord_mood_notes import cached_file, mood_of

TRACK_ID = "4uLU6hMCjMI75M1A2tKUQC"
SPOTIFY_TRACK = f"https://open.spotify.com/track/{TRACK_ID}"
VIDEO_ID = "dQw4w9WgXc_"  # a YouTube id may end in "_", which is the link's own, not a mark
YOUTU_BE = f"https://youtu.be/{VIDEO_ID}"
WATCH = f"https://www.youtube.com/watch?v={VIDEO_ID}"

# Discord's markdown around a link, outermost first, and the line marks before it.
WRAPS = [("*", "*"), ("**", "**"), ("_", "_"), ("__", "__"), ("~~", "~~"), ("||", "||")]
LINE_MARKS = ["", "> ", ">>> ", "-# "]


def wrapped(link: str, wraps: tuple[tuple[str, str], ...], angled: bool) -> str:
    text = f"<{link}>" if angled else link
    for opener, closer in reversed(wraps):
        text = opener + text + closer
    return text


def every_markup(link: str) -> list[str]:
    """`link` under every nesting of up to three of Discord's marks, in angle brackets (no preview)
    or not, after each line mark."""
    return [line + wrapped(link, wraps, angled)
            for n in range(4) for wraps in itertools.permutations(WRAPS, n)
            for angled in (False, True) for line in LINE_MARKS]


def read_id(link: str | None) -> str | None:
    query = parse_query(link or "")
    return query.spotify_id or query.youtube_id


@pytest.mark.parametrize("link, wanted", [(SPOTIFY_TRACK, TRACK_ID), (YOUTU_BE, VIDEO_ID), (WATCH, VIDEO_ID)])
def test_a_link_under_any_nesting_of_discord_s_markdown_is_read_by_both_readers(link, wanted):
    """The message command's reader and /mood's both find the link as it was, its own "_" kept.
    `_**link**_`, `__*link*__`, `||_*link*_||` were read with the inner marks as the link's (the
    menu's reader: "That Spotify track link looks broken"), and `~~||_link_||~~` and others by /mood's."""
    wrong = []
    for text in every_markup(link):
        found = first_link_of(text)
        if read_id(found) != wanted or read_id(text) != wanted:
            wrong.append((text, found))
    assert not wrong, f"{len(wrong)} misread, e.g. {wrong[:5]}"


def first_link_of(text: str) -> str | None:
    return next((link for link in links_in_text(text) if readable(link)), None)


def readable(link: str) -> bool:
    try:
        parse_query(link, DEFAULT_ALLOWED)
    except Exception:  # noqa: BLE001 - any refusal
        return False
    return True


@pytest.mark.parametrize("text", ["_**https://evil.example/track/{id}**_", "> *<https://open.spotify.com.evil.example/track/{id}>*",
                                  "||_*https://evil.example/_https://open.spotify.com/track/{id}_*_||"])
def test_markdown_takes_no_link_off_the_allowlist_onto_it(text):
    text = text.format(id=TRACK_ID)
    assert first_link_of(text) is None
    with pytest.raises(Exception, match="evil.example"):
        parse_query(text)


@pytest.mark.parametrize("content", [
    f"> *{SPOTIFY_TRACK}*", f"_<{SPOTIFY_TRACK}>_", f"_**{SPOTIFY_TRACK}**_", f"__*{SPOTIFY_TRACK}*__",
    f"listen >>> ||_*{SPOTIFY_TRACK}*_||", f"_[Creep]({SPOTIFY_TRACK})_ so good",
])
async def test_the_message_command_reads_a_quoted_italic_bold_or_hidden_link(discord_bot, content):
    """A message without a link preview whose link is quoted and italicised, or bold inside
    italics: "Mood of this song" answered "That Spotify track link looks broken"."""
    fake, _ = discord_bot
    await message_command(fake, content, guild=GUILD)
    assert (await fake.wait_for("followup")).content == SPOTIFY_OFF_ERROR  # the link was read (no Spotify here)


@pytest.mark.parametrize("typed", [f"~~||_{SPOTIFY_TRACK}_||~~", f"*__<{SPOTIFY_TRACK}>__*"])
async def test_mood_reads_a_link_under_nested_markdown(discord_bot, typed):
    fake, _ = discord_bot
    await fake.slash("mood", [{"name": "query", "type": STRING, "value": typed}], guild=GUILD)
    assert (await fake.wait_for("followup")).content == SPOTIFY_OFF_ERROR


@pytest.fixture
async def discord_with_spotify(db):
    async with spotify_and_discord(db) as (fake, spotify, _):
        yield fake, spotify


@asynccontextmanager
async def spotify_and_discord(db):
    """The Discord front-end whose /mood looks songs up on a fake Spotify holding Creep."""
    async with usecases_with_creep(db) as (spotify, usecases):
        async with discord_on(FakeDiscord(), usecases) as (fake, frontend):
            yield fake, spotify, (frontend, usecases)


def searched(spotify: FakeSpotify) -> list[str]:
    return [r.params.get("q") for r in spotify.api_requests() if r.path == "/v1/search"]


@pytest.mark.parametrize("typed, sent", [
    ("<:radiohead:123456789012345678> Creep <@!42>", "Creep"),
    ("Creep by <@&777> <a:dance:98765> Radiohead <t:1700000000:R>", "Creep Radiohead"),
    ("<#555>Creep<@43> - Radiohead </mood:1234>", "Creep Radiohead"),
    ("_Creep_ by __Radiohead__", "Creep Radiohead"),
])
async def test_mood_searches_spotify_for_the_song_without_discord_s_emoji_mentions_and_timestamps(
        discord_with_spotify, typed, sent):
    """Discord hands a slash command's text over with its custom emoji, mentions and timestamps as
    markup (`<:name:id>`, `<@id>`, `<t:seconds:R>`): they were searched for with the song's name,
    and as no song holds them the user was offered the nearest songs instead of Creep's mood. The
    same for the underscores of italics, which a song's words were compared with."""
    fake, spotify = discord_with_spotify
    await fake.slash("mood", [{"name": "query", "type": STRING, "value": typed}])
    answer = await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    assert answer.embeds[0]["title"] == "Radiohead – Creep" and "sad" in str(answer.embeds[0]).lower()
    assert searched(spotify) == [sent]


@pytest.mark.parametrize("typed", ["<:fire:123456789012345678>", "<@42> <#1> <t:1700000000>", "@everyone __ <@&9>"])
async def test_mood_of_only_discord_markup_says_so_and_searches_nothing(discord_with_spotify, typed):
    fake, spotify = discord_with_spotify
    await fake.slash("mood", [{"name": "query", "type": STRING, "value": typed}])
    answer = await fake.wait_for("edit_original", lambda c: not c.content.endswith("…"))
    assert answer.content.startswith(ONLY_MARKUP), answer.content
    assert searched(spotify) == []


async def test_a_dm_answering_the_prompt_with_emoji_and_a_mention_searches_for_the_song_alone(db):
    """The same in a DM answering the daily prompt: its first line is the song."""
    async with spotify_and_discord(db) as (fake, spotify, (frontend, usecases)):
        async with prompts_through(frontend, usecases, db):
            await open_a_prompt(fake)
            await fake.user_dms("<a:vibing:1234567890> _Creep_ - Radiohead <@43>\nlistened with <@43> <:heart:99>")
            saved = await dm_answer(fake)
    assert "Creep" in str(saved.embeds), (saved.content, saved.embeds)
    assert searched(spotify) == ["Creep Radiohead"]


@pytest.mark.parametrize("content", [
    f"Https://open.spotify.com/track/{TRACK_ID} this one", f"HTTPS://OPEN.SPOTIFY.COM/track/{TRACK_ID}",
    f"spotify:track:{TRACK_ID}", f"> *spotify:track:{TRACK_ID}*", f"Spotify:{SPOTIFY_TRACK}",
])
async def test_the_message_command_reads_a_capitalised_link_or_a_spotify_uri(discord_bot, content):
    """A phone capitalises the link that starts a sentence ("Https://…"), and Spotify's desktop app
    copies a song's URI (spotify:track:…); /mood and a DM answer read both, but the message command
    looked only for a lowercase "http(s)://" and answered "I found no link or audio file in that
    message"."""
    fake, _ = discord_bot
    await message_command(fake, content, guild=GUILD)
    assert (await fake.wait_for("followup")).content == SPOTIFY_OFF_ERROR


@pytest.mark.parametrize("typed", ["<:fire:123456789012345678>", "take1 <a:vibing:98765> <@43>", "_take1_"])
async def test_a_file_given_with_only_emoji_mentions_or_its_own_name_says_nothing_was_left_aside(
        discord_bot, db, typed):
    """`/mood file:take1.ogg query:🔥` (a server's own emoji): the answer said "the song name or
    link you typed was left aside", as if a song had been named besides the file."""
    fake, _ = discord_bot
    take = await cached_file(fake, db)
    answer = await mood_of(fake, [{"name": "query", "type": STRING, "value": typed},
                                  {"name": "file", "type": ATTACHMENT, "value": take["id"]}], take)
    assert not answer.content and answer.embeds[0]["title"] == "take1"


URI = f"spotify:track:{TRACK_ID}"


@pytest.mark.parametrize("content", [f"evil.example/{URI}", f"https://evil.example/{URI}", f"Listen:{URI}",
                                     f"Creep({URI})", f"x{URI}", f"evil.example/{YOUTU_BE}"])
def test_both_readers_take_a_spotify_uri_only_as_a_word_of_its_own(content):
    """The message command's reader found the URI inside another link ("evil.example/spotify:track:…")
    or glued to a word ("Listen:spotify:track:…"), where /mood refused the first as a link to
    evil.example and searched the second as words: the two read one message two ways. Now neither
    reads a URI that is not a word of its own."""
    assert not [link for link in links_in_text(content) if readable(link)]
    try:
        assert parse_query(content).kind is not QueryKind.SPOTIFY_TRACK
    except UnsupportedInputError:
        pass


def test_a_label_glued_to_a_link_is_no_spotify_uri_to_either_reader():
    """"Spotify:https://open.spotify.com/track/…": the message command read the link after the
    label, while /mood took the whole word for a Spotify URI of kind "https" ("That's a Spotify
    https, not a track")."""
    content = f"Spotify:{SPOTIFY_TRACK}"
    assert links_in_text(content) == [SPOTIFY_TRACK]
    assert parse_query(content).spotify_id == TRACK_ID


@pytest.mark.parametrize("content", [URI, f"listen: {URI}", f"> *{URI}*", f"||{URI}||", f"({URI})", f"«{URI}»",
                                     f"__**{URI}**__", f"[Creep]({URI})"])
def test_both_readers_read_a_spotify_uri_that_is_a_word_of_its_own(content):
    assert links_in_text(content) == [URI]
    assert parse_query(content).spotify_id == TRACK_ID


async def test_the_message_command_finds_no_song_in_a_uri_inside_another_link(discord_bot):
    """Its words are read as /mood reads them: a link to evil.example, refused, not Spotify's song."""
    fake, _ = discord_bot
    await message_command(fake, f"look evil.example/{URI}", guild=GUILD)
    assert (await fake.wait_for("followup")).content.startswith("I can't open links to evil.example.")


EVIL_MP3 = "https://evil.example/a.mp3"


@pytest.mark.parametrize("content, wanted, rest", [
    (f"[Creep by Radiohead]({SPOTIFY_TRACK})", TRACK_ID, ""),
    (f"so sad **[Creep - Radiohead (Official Video)](<{YOUTU_BE}>)**!", VIDEO_ID, "so sad"),
    (f"[{EVIL_MP3}]({WATCH})", VIDEO_ID, ""),  # a click opens YouTube, whatever the label says
    (f"[evil.example/a.mp3 and {EVIL_MP3}]({SPOTIFY_TRACK})", TRACK_ID, ""),
    (f"listen:[Creep]({URI})", TRACK_ID, "listen:"),
])
def test_both_readers_read_a_masked_link_as_its_target(content, wanted, rest):
    """Discord shows a masked link's label and opens its target: /mood read a label of several
    words as words around the link ("[Creep by" was kept with it), and a label that was itself a
    link as the link, with the target glued on."""
    assert [read_id(link) for link in links_in_text(content) if readable(link)] == [wanted]
    query = parse_query(content)
    assert (query.spotify_id or query.youtube_id, query.text) == (wanted, rest)


@pytest.mark.parametrize("content", [
    f"[{YOUTU_BE}]({EVIL_MP3})", f"[https://youtu.be/x]({EVIL_MP3})", f"[youtu.be/{VIDEO_ID}]({EVIL_MP3})",
    f"[{URI}]({EVIL_MP3})", f"[listen {WATCH}&x=](<{EVIL_MP3}>)", f"> _[{SPOTIFY_TRACK}](evil.example/a.mp3)_",
])
def test_a_masked_link_is_refused_by_its_target_whatever_its_label(content):
    """The label of "[https://youtu.be/…](https://evil.example/a.mp3)" was read as the link, with
    the target in its path ("That YouTube link isn't a single video"); a click opens evil.example,
    and that is what both readers now see and refuse."""
    assert links_in_text(content) in ([], [EVIL_MP3])
    assert not [link for link in links_in_text(content) if readable(link)]
    with pytest.raises(UnsupportedInputError, match="I can't open links to evil.example"):
        parse_query(content)


async def test_the_message_command_refuses_a_masked_link_by_its_target(discord_bot):
    fake, _ = discord_bot
    await message_command(fake, f"this one [{YOUTU_BE}]({EVIL_MP3})", guild=GUILD)
    assert "I can't open links to evil.example" in (await fake.wait_for("followup")).content
