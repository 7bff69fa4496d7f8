"""Given many users in many chats each send a large file at once, the files the bot holds at once
(downloading into memory, then on disk while they are heard) stay within one bot-wide budget,
UPLOADS_MAX_BYTES: a file that would take them past it is refused before it is fetched, "busy, try
again in a minute", and its sender's /mood quota is given back, as for a file the platform did not
hand over. The per-user and per-place limits alone let 100 users in 100 groups hold 100 files."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import AsyncIterator

import pytest

from bot.config import Settings
from bot.ratelimit import MoodRateLimiter, UploadBudget
from bot.replies import STAGE_DOWNLOADING, STAGE_FINDING, STAGE_LISTENING, UPLOADS_BUSY, UPLOADS_RETRY_S, ErrorReply, MoodReply
from bot.sources.audio import MAX_BYTES, AudioFetcher
from bot.sources.downloadpool import DownloadPool
from bot.usecases import build_usecases
from bot.usecases.mood import MoodUseCase
from tests.abuse.test_rate_limits import caller
from tests.bot.test_upload_memory import SIZE
from tests.fakes.audio_http import FakeAudioServer, drip_response
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN, cache_upload, discord_on, telegram_on
from tests.frontends.test_discord import ATTACHMENT
from tests.frontends.test_telegram_inbox import until

ALICE, BOB = 1001, 1002
STAGES = (STAGE_FINDING, STAGE_LISTENING)


class TelegramSenders:
    """Files sent to /mood on the fake Telegram, each user in their own private chat."""

    def __init__(self, fake: FakeTelegramBotAPI) -> None:
        self.fake = fake
        self.downloads = fake.files_open  # cleared: each file's download is held until it is set

    async def send(self, user: int, content: bytes) -> int:
        mark = self.fake.mark()
        await self.fake.user_sends(None, chat=user, audio=self.fake.audio_attachment(content, file_name="big.ogg"))
        return mark

    async def answer(self, user: int, mark: int) -> str:
        return (await self.fake.wait_for_reply(lambda c: c.chat_id == str(user) and c.text not in STAGES,
                                               after=mark)).text

    async def downloading(self) -> None:
        await self.fake.wait_for("download")


class DiscordSenders:
    """Files sent to /mood on the fake Discord, each user in their DM with the bot."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.downloads = fake.cdn_open
        self.tokens: dict[int, str] = {}

    async def send(self, user: int, content: bytes) -> int:
        mark = len(self.fake.calls)
        song = self.fake.add_file("big.ogg", content)
        asked = await self.fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": song["id"]}],
                                      user=user, resolved={"attachments": {song["id"]: song}})
        self.tokens[user] = asked["token"]
        return mark

    async def answer(self, user: int, mark: int) -> str:
        call = await self.fake.wait_for("edit_original", lambda c: c.match.get("token") == self.tokens[user]
                                        and (bool(c.embeds) or c.content not in STAGES), after=mark)
        return "Mood:" if call.embeds else call.content

    async def downloading(self) -> None:
        await self.fake.wait_for("download", after=0)


@contextlib.asynccontextmanager
async def on_telegram(usecases) -> AsyncIterator[TelegramSenders]:
    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, _):
        yield TelegramSenders(fake)


@contextlib.asynccontextmanager
async def on_discord(usecases) -> AsyncIterator[DiscordSenders]:
    async with discord_on(FakeDiscord(), usecases) as (fake, _):
        yield DiscordSenders(fake)


@pytest.mark.parametrize("platform", [on_telegram, on_discord], ids=["telegram", "discord"])
async def test_a_file_past_the_bot_wide_budget_is_refused_as_busy_and_costs_no_quota(db, caplog, platform):
    """Room for one large file at a time, and one /mood a minute a user: Bob's file, sent while
    Alice's downloads, is refused unfetched, busy; sent again once hers is heard, it is heard, not
    refused as going fast."""
    settings = Settings(_env_file=None, mood_rate_per_user=1, uploads_max_bytes=SIZE + SIZE // 2)
    usecases = build_usecases(db, None, None, limiter=MoodRateLimiter.from_settings(settings),
                              uploads=UploadBudget.from_settings(settings))
    alices = await cache_upload(db, b"OggS Alice's" + bytes(SIZE))
    bobs = await cache_upload(db, b"OggS Bob's" + bytes(SIZE))
    async with platform(usecases) as chats:
        chats.downloads.clear()
        asked = await chats.send(ALICE, alices)
        await chats.downloading()
        with caplog.at_level(logging.INFO):
            refused = await chats.answer(BOB, await chats.send(BOB, bobs))
        chats.downloads.set()
        assert "Mood:" in await chats.answer(ALICE, asked)
        again = await chats.answer(BOB, await chats.send(BOB, bobs))
    assert refused == UPLOADS_BUSY, refused
    assert "Mood:" in again, again
    (line,) = [r for r in caplog.records if getattr(r, "why", None) == "uploads_busy"]
    assert line.limit_bytes == SIZE + SIZE // 2 and line.held_bytes > SIZE


def test_the_budget_comes_from_settings_and_lets_in_a_file_larger_than_itself_alone():
    """A file larger than the whole budget (UPLOADS_MAX_BYTES under MAX_AUDIO_BYTES) is let in when
    no other is held: refused, it could never be sent. Each file's bytes are given back when it ends."""
    budget = UploadBudget.from_settings(Settings(_env_file=None, uploads_max_bytes=100))
    with budget.holding(60) as first, budget.holding(50) as second:
        assert first and not second and budget.held_bytes == 60
    with budget.holding(500) as alone:
        assert alone and budget.held_bytes == 500
        with budget.holding(1) as more:
            assert not more
    assert budget.held_bytes == 0


@contextlib.asynccontextmanager
async def cdn_usecases(db, folder: Path, song: bytes, settings: Settings, uploads: UploadBudget,
                       pool: DownloadPool | None = None) -> AsyncIterator[tuple[FakeAudioServer, object]]:
    """The use cases, the audio search finding `song` as a plain file on a CDN ("/song.ogg", for
    the name "song"; any other file written to `folder` by its name too), counting downloads'
    files in `uploads`, downloading in `pool`'s workers (None: the process-wide pool's)."""
    (folder / "song.ogg").write_bytes(song)
    with FakeAudioServer(folder) as cdn:
        fetcher = AudioFetcher(search_template=cdn.url("/{title}.ogg"), timeout_s=30, pool=pool)
        yield cdn, build_usecases(db, None, fetcher, limiter=MoodRateLimiter.from_settings(settings), uploads=uploads)


@contextlib.asynccontextmanager
async def searching_a_cdn(db, folder: Path, song: bytes, settings: Settings, uploads: UploadBudget,
                          pool: DownloadPool | None = None) -> AsyncIterator[tuple[FakeAudioServer, MoodUseCase]]:
    """`cdn_usecases`' /mood use case."""
    async with cdn_usecases(db, folder, song, settings, uploads, pool) as (cdn, usecases):
        yield cdn, usecases.mood


async def test_a_downloaded_song_past_the_bot_wide_budget_is_refused_as_busy_and_costs_no_quota(db, tmp_path, caplog):
    """A download's file is held from the end of its download until its answer, counted in the same
    budget, and may be as large as MAX_AUDIO_BYTES (a file no section could be cut from): the song
    Bob asks for by name while Alice's large file is held, which leaves no room for that, is refused
    busy before a byte of it is downloaded; asked again once hers is done, it is downloaded once and
    heard, not refused as going fast."""
    settings = Settings(_env_file=None, mood_rate_per_user=1, uploads_max_bytes=SIZE + SIZE // 2)
    uploads = UploadBudget.from_settings(settings)
    song = await cache_upload(db, b"OggS Bob's song" + bytes(SIZE))
    async with searching_a_cdn(db, tmp_path, song, settings, uploads) as (cdn, mood):
        with uploads.holding(SIZE):  # Alice's file, held while hers is heard
            with caplog.at_level(logging.INFO):
                refused = await mood.run(caller(str(BOB)), "song")
            assert uploads.held_bytes == SIZE  # Bob's refused download left nothing counted
            assert cdn.requests_for("/song.ogg") == []  # nor fetched anything
        again = await mood.run(caller(str(BOB)), "song")
    assert isinstance(refused, ErrorReply), refused
    assert refused.message == UPLOADS_BUSY and refused.retry_after_s == UPLOADS_RETRY_S
    assert isinstance(again, MoodReply) and again.cached, again
    assert cdn.bytes_for("/song.ogg") > SIZE  # downloaded when asked again only
    (line,) = [r for r in caplog.records if getattr(r, "why", None) == "uploads_busy"]
    assert line.bytes == MAX_BYTES and line.held_bytes == SIZE and line.limit_bytes == SIZE + SIZE // 2
    assert uploads.held_bytes == 0


@pytest.mark.parametrize("heard", [True, False], ids=["cached", "never heard"])
async def test_a_song_whose_download_others_files_overtook_is_refused_busy_unless_the_cache_answers_it(
        db, tmp_path, caplog, heard):
    """The budget has room for Bob's download when he asks, and holds half of it while it
    downloads (`UploadBudget.download_room`); Alice's file, which fits beside that room, comes
    meanwhile, and leaves none for his file, larger than the room, once on disk. A song never heard
    is refused busy then, its file deleted unheard. One whose answer the cache holds (a plain
    file's, known by its content only once downloaded) needs no listening: answered from the
    cache, its file deleted at once, nothing refused."""
    settings = Settings(_env_file=None, uploads_max_bytes=SIZE + SIZE // 2)
    uploads, song, alices = UploadBudget.from_settings(settings), b"OggS Bob's song" + bytes(SIZE), contextlib.ExitStack()
    alice = SIZE * 2 // 3  # within the room Bob's download leaves, not beside his file
    if heard:
        await cache_upload(db, song)

    async def progress(stage: str) -> None:
        if stage == STAGE_DOWNLOADING:
            assert alices.enter_context(uploads.holding(alice))  # Alice's file, sent as Bob's song downloads

    async with searching_a_cdn(db, tmp_path, song, settings, uploads) as (cdn, mood):
        with alices, caplog.at_level(logging.INFO):
            reply = await mood.run(caller(str(BOB)), "song", progress=progress)
            assert uploads.held_bytes == alice  # Bob's file, gone, counted nothing
    assert cdn.bytes_for("/song.ogg") > SIZE  # downloaded, room or not
    busy = [r for r in caplog.records if getattr(r, "why", None) == "uploads_busy"]
    if heard:
        assert isinstance(reply, MoodReply) and reply.cached and not busy, reply
    else:
        assert isinstance(reply, ErrorReply) and reply.message == UPLOADS_BUSY, reply
        (line,) = busy
        assert SIZE < line.bytes < MAX_BYTES and line.held_bytes == alice and line.reserved_bytes == 0
    assert uploads.held_bytes == 0


@pytest.mark.parametrize("limit, held", [(8 * SIZE, SIZE), (MAX_BYTES + 5 * 2**20, 8 * 2**20)],
                         ids=["UPLOADS_MAX_BYTES under MAX_AUDIO_BYTES", "under two of them"])
async def test_a_budget_under_two_of_the_largest_downloads_still_lets_a_song_download_beside_another_file(
        db, tmp_path, caplog, limit, held):
    """UPLOADS_MAX_BYTES may be set under MAX_AUDIO_BYTES (a small machine): a download asked for
    room for the largest file it may leave, which such a budget never has beside another file, so
    every song asked for by name or link was refused busy while anyone's file was held, though its
    section (0.5-5 MB) fitted. Under two of the largest files, a download starts while half the
    budget is free: Bob's song, asked for while Alice's file holds less than that, is downloaded
    and answered, both counted at once."""
    settings = Settings(_env_file=None, uploads_max_bytes=limit)
    uploads = UploadBudget.from_settings(settings)
    song = await cache_upload(db, b"OggS Bob's song" + bytes(SIZE))
    async with searching_a_cdn(db, tmp_path, song, settings, uploads) as (cdn, mood):
        with uploads.holding(held), caplog.at_level(logging.INFO):  # Alice's file, held while hers is heard
            reply = await mood.run(caller(str(BOB)), "song")
            assert uploads.held_bytes == held
    assert isinstance(reply, MoodReply) and reply.cached, reply
    assert cdn.bytes_for("/song.ogg") > SIZE
    assert not [r for r in caplog.records if getattr(r, "why", None) == "uploads_busy"]


async def test_downloads_started_together_hold_their_room_so_together_they_stay_within_the_budget(db, tmp_path, caplog):
    """Each download may leave a file as large as the room it asks (half the budget where that is
    under two of MAX_AUDIO_BYTES). That room was only looked at: Alice's three songs, asked for at
    once, all passed the look before any had downloaded, and could together leave one and a half
    budgets. It is held from when a download worker takes each (at once: workers are free) until
    it ends: the first two hold the budget as they download, the third is refused busy before a
    byte of it is fetched, and all of it is given back after (the two called off)."""
    settings = Settings(_env_file=None, uploads_max_bytes=8 * SIZE, mood_concurrent_per_user=3)
    uploads, names = UploadBudget.from_settings(settings), ("slow", "slow2", "slow3")
    room, song = uploads.download_room(MAX_BYTES), b"OggS Alice's song" + bytes(SIZE)

    def fetching() -> int:
        return sum(bool(cdn.requests_for(f"/{name}.ogg")) for name in names)

    async with searching_a_cdn(db, tmp_path, song, settings, uploads) as (cdn, mood):
        for name in names:
            cdn.add_drip(f"/{name}.ogg", drip_response(body=song), every_s=0.5)  # downloading until called off
        asked = [asyncio.create_task(mood.run(caller(str(ALICE)), name)) for name in names]
        with caplog.at_level(logging.INFO):
            assert await until(lambda: sum(task.done() for task in asked) == 1 and fetching() == 2)
            held, reserved = uploads.held_bytes, uploads.reserved_bytes
            (refused,) = [name for name, task in zip(names, asked) if task.done()]
            reply = asked[names.index(refused)].result()
            for task in asked:
                task.cancel()
            await asyncio.gather(*asked, return_exceptions=True)
            assert await until(lambda: uploads.held_bytes == 0, timeout=5.0), uploads.held_bytes
        assert cdn.requests_for(f"/{refused}.ogg") == []  # nothing of it fetched
    assert isinstance(reply, ErrorReply) and reply.message == UPLOADS_BUSY, reply
    assert held == reserved == 2 * room <= settings.uploads_max_bytes
    (line,) = [r for r in caplog.records if getattr(r, "why", None) == "uploads_busy"]
    assert not line.downloaded and line.held_bytes == line.reserved_bytes == 2 * room
    assert uploads.held_bytes == uploads.reserved_bytes == 0


@pytest.mark.parametrize("ended", ["failed", "cancelled"])
async def test_a_download_that_fails_or_is_called_off_gives_its_room_back(db, tmp_path, ended):
    """The room a download holds (half of a budget of 8 files here) is held while it downloads and
    given back where it fails (a song the CDN does not have) or its asker gives up (a download that
    drips, called off once under way, holding its room): two such downloads in a row kept none of
    it, and Alice's next song is downloaded and answered, not refused busy."""
    settings = Settings(_env_file=None, uploads_max_bytes=8 * SIZE)
    uploads, held = UploadBudget.from_settings(settings), []
    song = await cache_upload(db, b"OggS Alice's song" + bytes(SIZE))
    path = "/missing.ogg" if ended == "failed" else "/slow.ogg"

    async with searching_a_cdn(db, tmp_path, song, settings, uploads) as (cdn, mood):
        cdn.add_drip("/slow.ogg", drip_response(body=song), every_s=0.5)
        for attempt in (1, 2):
            asked = asyncio.create_task(mood.run(caller(str(ALICE)), path[1:].removesuffix(".ogg")))
            assert await until(lambda: len(cdn.requests_for(path)) >= attempt)  # let start: its room taken
            if ended == "cancelled":
                held.append(uploads.held_bytes)
                asked.cancel()
            (reply,) = await asyncio.gather(asked, return_exceptions=True)
            assert await until(lambda: uploads.held_bytes == 0, timeout=5.0), uploads.held_bytes
            if ended == "failed":
                assert isinstance(reply, ErrorReply) and reply.message != UPLOADS_BUSY, reply
            else:
                assert isinstance(reply, asyncio.CancelledError), reply
        again = await mood.run(caller(str(ALICE)), "song")
    if ended == "cancelled":
        assert held == [uploads.download_room(MAX_BYTES)] * 2, held  # held while they downloaded
    assert isinstance(again, MoodReply) and again.cached, again
    assert uploads.held_bytes == uploads.reserved_bytes == 0


async def test_a_file_sent_while_a_song_of_its_sender_downloads_is_counted_beside_the_room_it_holds(db, tmp_path):
    """Alice asks for a song and, as it downloads (slowly), sends a file on Telegram: the room the
    download holds (half of a budget of one and a half files) and her file would take the files
    held past the budget, so the file is refused busy before it is fetched; the song, called off,
    gives its room back. Only looked at, that room let the file in beside a download that could
    leave as much."""
    settings = Settings(_env_file=None, uploads_max_bytes=SIZE + SIZE // 2)
    uploads = UploadBudget.from_settings(settings)
    song = b"OggS Alice's song" + bytes(SIZE)
    alices = await cache_upload(db, b"OggS Alice's file" + bytes(SIZE))

    async with cdn_usecases(db, tmp_path, song, settings, uploads) as (cdn, usecases), on_telegram(usecases) as chats:
        cdn.add_drip("/slow.ogg", drip_response(body=song), every_s=0.5)
        asked = asyncio.create_task(usecases.mood.run(caller(str(ALICE)), "slow"))
        assert await until(lambda: cdn.requests_for("/slow.ogg"))  # downloading, its room held
        refused = await chats.answer(ALICE, await chats.send(ALICE, alices))
        asked.cancel()
        await asyncio.gather(asked, return_exceptions=True)
        assert await until(lambda: uploads.held_bytes == 0, timeout=5.0), uploads.held_bytes
    assert refused == UPLOADS_BUSY, refused
    assert uploads.held_bytes == uploads.reserved_bytes == 0


@pytest.fixture
def one_worker():
    """A download pool of one worker: a download or search under way keeps the next waiting."""
    pool = DownloadPool(max_workers=1, warm_workers=1)
    yield pool
    pool.close()


async def test_links_waiting_for_a_download_worker_hold_no_room_so_a_file_sent_meanwhile_is_heard(
        db, tmp_path, one_worker):
    """Bob's song downloads (slowly) on the only download worker, holding the room for the largest
    file it may leave (half a budget of four files); Carol's and Dave's links wait for that worker,
    and Alice sends a file on Telegram meanwhile. Waiting, their links fetch nothing and hold no
    room: Alice's file is heard. They held their room from before they waited, and took the budget
    between them (Dave's refused busy at once), so Alice's file was refused busy though almost
    nothing was held. Once Bob's download ends (called off), each link takes the worker in turn,
    holding its room from then, and is answered."""
    settings = Settings(_env_file=None, uploads_max_bytes=4 * SIZE)
    uploads, room = UploadBudget.from_settings(settings), UploadBudget.from_settings(settings).download_room(MAX_BYTES)
    song = await cache_upload(db, b"OggS the song" + bytes(SIZE))
    alices = await cache_upload(db, b"OggS Alice's file" + bytes(SIZE))
    async with cdn_usecases(db, tmp_path, song, settings, uploads, one_worker) as (cdn, usecases), \
            on_telegram(usecases) as chats:
        cdn.add_drip("/slow.ogg", drip_response(body=song), every_s=0.5)
        bobs = asyncio.create_task(usecases.mood.run(caller("bob"), "slow"))
        assert await until(lambda: cdn.requests_for("/slow.ogg"))  # on the worker, holding its room
        (tmp_path / "song2.ogg").write_bytes(await cache_upload(db, b"OggS another song" + bytes(SIZE)))
        links = [asyncio.create_task(usecases.mood.run(caller(user), name))
                 for user, name in (("carol", "song"), ("dave", "song2"))]
        assert await until(lambda: one_worker.waiting == 2 or any(link.done() for link in links))
        held = uploads.held_bytes
        answered = await chats.answer(ALICE, await chats.send(ALICE, alices))
        assert cdn.requests_for("/song.ogg") == cdn.requests_for("/song2.ogg") == []  # the links were still waiting
        bobs.cancel()
        replies = await asyncio.gather(*links)
        await asyncio.gather(bobs, return_exceptions=True)
        assert await until(lambda: uploads.held_bytes == 0, timeout=5.0), uploads.held_bytes
    assert held == room and "Mood:" in answered, (held, room, answered)
    assert all(isinstance(reply, MoodReply) and reply.cached for reply in replies), replies
    assert uploads.held_bytes == uploads.reserved_bytes == 0


async def test_a_link_waiting_for_a_download_worker_is_told_it_is_fetched_only_once_a_worker_takes_it(
        db, tmp_path, one_worker):
    """Bob's song downloads (slowly) on the only download worker; Carol's link waits for it. She was
    told "Fetching a 30 s section…" while it waited, nothing fetched; she is told "Finding the
    song…" until the worker takes her download, and "Fetching a 30 s section…" from then."""
    settings = Settings(_env_file=None)
    song, stages = await cache_upload(db, b"OggS the song" + bytes(SIZE)), []

    async def carols_progress(stage: str) -> None:
        stages.append(stage)

    async with cdn_usecases(db, tmp_path, song, settings, UploadBudget.from_settings(settings), one_worker) \
            as (cdn, usecases):
        cdn.add_drip("/slow.ogg", drip_response(body=song), every_s=0.5)
        bobs = asyncio.create_task(usecases.mood.run(caller("bob"), "slow"))
        assert await until(lambda: cdn.requests_for("/slow.ogg"))  # on the worker
        carols = asyncio.create_task(usecases.mood.run(caller("carol"), "song", progress=carols_progress))
        assert await until(lambda: one_worker.waiting == 1)
        while_waiting = list(stages)
        bobs.cancel()
        reply = await carols
        await asyncio.gather(bobs, return_exceptions=True)
    assert while_waiting == [STAGE_FINDING] and cdn.requests_for("/song.ogg") != [], while_waiting
    assert stages == [STAGE_FINDING, STAGE_DOWNLOADING], stages
    assert isinstance(reply, MoodReply) and reply.cached, reply


async def test_of_two_links_asked_at_once_with_one_worker_free_the_one_left_waiting_is_not_told_it_is_fetched(
        db, tmp_path, one_worker):
    """Bob and Carol ask for a song each at once, the only download worker idle: each saw it free
    and was told "Fetching a 30 s section…" at once, and the one whose download the other's beat
    to it waited under those words, nothing fetched. Each is told so once the worker takes their
    download: whichever waits reads "Finding the song…" until the other's download ends."""
    settings = Settings(_env_file=None)
    song = b"OggS a song" + bytes(SIZE)
    names, stages = {"bob": "slow", "carol": "slow2"}, {"bob": [], "carol": []}

    def told(user: str):
        async def progress(stage: str) -> None:
            stages[user].append(stage)
        return progress

    async with cdn_usecases(db, tmp_path, song, settings, UploadBudget.from_settings(settings), one_worker) \
            as (cdn, usecases):
        for name in names.values():
            cdn.add_drip(f"/{name}.ogg", drip_response(body=song), every_s=0.5)  # downloading until called off
        asked = {user: asyncio.create_task(usecases.mood.run(caller(user), name, progress=told(user)))
                 for user, name in names.items()}
        assert await until(lambda: one_worker.waiting == 1 and any(cdn.requests_for(f"/{n}.ogg") for n in names.values()))
        (first,) = [user for user, name in names.items() if cdn.requests_for(f"/{name}.ogg")]
        (second,) = set(names) - {first}
        while_waiting = {user: list(said) for user, said in stages.items()}
        asked[first].cancel()
        assert await until(lambda: cdn.requests_for(f"/{names[second]}.ogg"))  # the worker took it
        assert await until(lambda: STAGE_DOWNLOADING in stages[second])
        asked[second].cancel()
        await asyncio.gather(*asked.values(), return_exceptions=True)
    assert while_waiting == {first: [STAGE_FINDING, STAGE_DOWNLOADING], second: [STAGE_FINDING]}, while_waiting
    assert stages[second] == [STAGE_FINDING, STAGE_DOWNLOADING], stages


async def test_a_link_whose_room_went_while_it_waited_for_a_worker_is_refused_busy_unfetched(db, tmp_path, one_worker):
    """Carol's link waits for the only download worker (busy with a job holding no room: another
    user's search), holding nothing; Alice's file, sent meanwhile, takes most of the budget. As
    the worker takes Carol's download, the budget has no room for the largest file it may leave:
    refused busy, nothing of it fetched, her /mood quota given back, and the worker goes on to the
    next job: Carol, asking again once Alice's file is heard, is answered."""
    settings = Settings(_env_file=None, uploads_max_bytes=4 * SIZE, mood_rate_per_user=1)
    uploads, go = UploadBudget.from_settings(settings), tmp_path / "go"
    song = await cache_upload(db, b"OggS Carol's song" + bytes(SIZE))
    os.mkfifo(go)
    async with searching_a_cdn(db, tmp_path, song, settings, uploads, one_worker) as (cdn, mood):
        busy = asyncio.create_task(one_worker.run(go.read_bytes, timeout_s=30))  # until `go` is written
        assert await until(lambda: one_worker.worker_pids())
        carols = asyncio.create_task(mood.run(caller("carol"), "song"))
        assert await until(lambda: one_worker.waiting == 1)
        with uploads.holding(3 * SIZE) as alices:  # with the room Carol's download asks, past the budget
            await asyncio.to_thread(go.write_bytes, b"done")
            refused = await carols
            assert cdn.requests_for("/song.ogg") == []
        assert await busy == b"done"
        again = await mood.run(caller("carol"), "song")
    assert alices, "Alice's file refused: Carol's waiting link held room"
    assert isinstance(refused, ErrorReply) and refused.message == UPLOADS_BUSY, refused
    assert isinstance(again, MoodReply) and again.cached, again
    assert uploads.held_bytes == uploads.reserved_bytes == 0
