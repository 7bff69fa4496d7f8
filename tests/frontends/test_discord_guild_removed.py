"""Given the bot is removed from a server (GUILD_DELETE without `unavailable`: kicked, banned, or the
server deleted), the server's /mood runs not yet at the model are dropped, said in one INFO line,
and one that starts there after the removal is dropped before any fetch, until the bot is added
back. A server made unavailable by an outage is no removal: its runs go on."""
from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from bot.sources.audio import AudioFetcher
from bot.usecases import build_usecases
from tests.fakes.audio_http import FakeAudioServer
from tests.fakes.discord_api import FakeDiscord, user_payload
from tests.frontends.conftest import cache_upload, discord_on
from tests.frontends.test_discord_members import ALICE, ATTACHMENT, BOB, GUILD, OTHER_GUILD, STRING, guild_created
from tests.frontends.test_request_ids import lines_of

QUIET_S = 0.5  # long enough for the bot to have sent whatever more it was going to send


@pytest.fixture
def hanging_search():
    """A search host that takes the request and never answers: a /mood of a song's name waits on it."""
    server = FakeAudioServer(Path(tempfile.mkdtemp(prefix="moodbot-guild-removed-"))).start()
    yield server
    server.stop()


@pytest.fixture
async def in_servers(db, hanging_search):
    fetcher = AudioFetcher(search_template=hanging_search.url("/hang/{title}.ogg"), timeout_s=60, socket_timeout_s=60)
    async with discord_on(FakeDiscord(), build_usecases(db, classifier=None, fetcher=fetcher)) as (fake, frontend):
        for guild in (GUILD, OTHER_GUILD):  # as Discord sends each server after READY
            await guild_created(fake, guild)
        yield fake, frontend


async def mood_of_file(fake, attachment: dict, guild: int, user: int = ALICE) -> dict:
    return await fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": attachment["id"]}],
                            resolved={"attachments": {attachment["id"]: attachment}}, guild=guild, user=user)


async def removed_from(fake, guild: int, log_stream) -> list[dict[str, str]]:
    """The bot removed from `guild` (GUILD_DELETE, not unavailable): the log's guild_gone lines once one is there."""
    await fake.dispatch("GUILD_DELETE", {"id": str(guild)})
    for _ in range(300):
        if lines := lines_of(log_stream, "discord.guild_gone"):
            return lines
        await asyncio.sleep(0.05)
    return []


async def test_a_bot_removed_from_a_server_drops_the_songs_it_had_not_reached_there(in_servers, db, hanging_search,
                                                                                   log_stream):
    """Three /moods in the server wait (two files on their way from Discord's file server, one song
    searched on a host that does not answer) when the bot is removed: before, each went on to the
    model, for an answer Discord refused. Now they are dropped, nothing more sent for them, in one
    INFO line naming their requests; the other server's, made unavailable by an outage meanwhile, is
    answered."""
    fake, _ = in_servers
    fake.cdn_open.clear()  # the downloads are under way, and slow
    first = fake.add_file("first.ogg", b"OggS first")
    target = fake.message_payload(channel_id=1, content="our take", author=user_payload(BOB),
                                  attachments=[fake.add_file("take.ogg", b"OggS take")])
    others = fake.add_file("others.ogg", b"OggS others")
    await cache_upload(db, b"OggS others", "sad")
    asked = [await mood_of_file(fake, first, GUILD),
             await fake.slash("Mood of this song", command_type=3, target_id=target["id"],
                              resolved={"messages": {target["id"]: target}}, guild=GUILD, user=BOB),
             await fake.slash("mood", [{"name": "query", "type": STRING, "value": "never found"}],
                              guild=GUILD, user=ALICE + 2)]
    elsewhere = await mood_of_file(fake, others, OTHER_GUILD)
    for _ in range(200):
        if len(fake.calls_of("download")) == 3 and hanging_search.requests:
            break
        await asyncio.sleep(0.05)
    await fake.dispatch("GUILD_DELETE", {"id": str(OTHER_GUILD), "unavailable": True})
    (dropped,) = await removed_from(fake, GUILD, log_stream)
    assert dropped["dropped"] == "3" and dropped["place"] == f"discord:{GUILD}", str(dropped)
    assert sorted(dropped["req"].split(",")) == sorted(f"dc-{i['id']}" for i in asked), str(dropped)
    mark = fake.mark()
    fake.cdn_open.set()
    assert (await fake.wait_for("edit_original", lambda call: bool(call.embeds), after=mark)).token == elsewhere["token"]
    await asyncio.sleep(QUIET_S)
    tokens = {i["token"] for i in asked}
    assert [c.name for c in fake.calls[mark:] if c.token in tokens] == []


@pytest.mark.parametrize("joined", [True, False], ids=["joined", "available"])
async def test_a_mood_started_after_the_removal_is_dropped_until_the_bot_is_added_back(in_servers, db, log_stream,
                                                                                       joined):
    fake, _ = in_servers
    song = fake.add_file("song.ogg", b"OggS song")
    await cache_upload(db, b"OggS song", "calm")
    (dropped,) = await removed_from(fake, GUILD, log_stream)
    assert dropped["dropped"] == "0" and "req" not in dropped, str(dropped)
    mark = fake.mark()
    late = await mood_of_file(fake, song, GUILD)  # asked before the removal, started after it
    await mood_of_file(fake, song, OTHER_GUILD)  # answered: the other server's is after it
    assert (await fake.wait_for("edit_original", lambda call: bool(call.embeds), after=mark)).token != late["token"]
    assert [c.name for c in fake.calls[mark:] if c.token == late["token"]] == []
    assert len(fake.calls_of("download", after=mark)) == 1
    # Its user saw "The application did not respond", and its only line was DEBUG: not in the log.
    (told,) = lines_of(log_stream, "discord.mood_dropped_guild_gone")
    assert (told["req"], told["place"], told["level"]) == (f"dc-{late['id']}", f"discord:{GUILD}", "INFO"), str(told)
    # Added back: a GUILD_CREATE with no `unavailable` (a join), or with `unavailable: false`, which
    # discord.py takes for a server back from an outage.
    await guild_created(fake, GUILD, joined=joined)
    again = fake.mark()
    await mood_of_file(fake, song, GUILD)
    assert (await fake.wait_for("edit_original", lambda call: bool(call.embeds), after=again)).embeds[0]["title"] == "song"
