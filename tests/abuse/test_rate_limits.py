"""Given one user (or one group) sends /mood too fast, the excess is refused politely with the time
to wait; the limits come from Settings; at most N analyses per user run at once. The same for the
commands that cost CPU (/stats, /export, /playlist and /servermood), and at most N charts are drawn
at once, bot-wide."""
from __future__ import annotations

import asyncio
import logging
import random
import sys
import tempfile
import threading
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot import charts
from bot.config import Settings
from bot.frontends import render
from bot.frontends.telegram import NOT_DOWNLOADED, TelegramFrontend
from bot.ratelimit import CONCURRENT_RETRY_S, WINDOW_S, HeavyLimits, MoodRateLimiter
from bot.replies import STAGE_FINDING, STAGE_LISTENING, Caller, ErrorReply, ExportReply, MoodReply, PlaylistReply, ServerMoodReply, StatsReply
from bot.usecases import privacy
from bot.sources.audio import AudioFetcher
from bot.usecases import build_usecases
from bot.usecases.mood import MoodUseCase
from tests.abuse import flood
from tests.fakes.audio_http import FakeAudioServer
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import FakeTelegramBotAPI
from storage.models import JournalEntry, UserRef
from tests.faults.support import cache_youtube_song
from tests.fakes.wire_gate import gated_database
from tests.frontends.conftest import TELEGRAM_TOKEN, cache_upload, discord_on, telegram_on
from tests.frontends.test_discord import ATTACHMENT

GROUP = "telegram:-500"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def caller(user: str, place: str | None = GROUP) -> Caller:
    return Caller("telegram", user, place=place, chat_id=user)


def limited(settings: Settings, clock: Clock) -> MoodRateLimiter:
    return MoodRateLimiter.from_settings(settings, clock=clock)


async def test_per_user_limit_from_settings_then_the_window_frees_it(db):
    clock = Clock()
    settings = Settings(_env_file=None, mood_rate_per_user=3, mood_rate_per_place=100)
    mood = MoodUseCase(db, classifier=None, fetcher=None, limiter=limited(settings, clock))
    link = await cache_youtube_song(db, "aaaaaaaaaaa")
    for _ in range(3):
        assert isinstance(await mood.run(caller("1"), link), MoodReply)
        clock.now += 1
    refused = await mood.run(caller("1"), link)
    assert isinstance(refused, ErrorReply)
    # The first request leaves the 60 s window 57 s from now (3 s have passed).
    assert refused.retry_after_s == WINDOW_S - 3
    assert f"try again in {refused.retry_after_s} s" in refused.message
    assert isinstance(await mood.run(caller("2"), link), MoodReply)  # someone else is not affected
    clock.now += refused.retry_after_s
    assert isinstance(await mood.run(caller("1"), link), MoodReply)


async def test_a_link_or_name_refused_unread_costs_no_quota(db):
    """A user pasting a Spotify album, then a playlist, then an Apple Music link, each refused
    before anything was fetched ("That's a Spotify album, not a track."), then the song's own
    link, was told "You're going fast": each refusal had used their quota (and the group's)."""
    clock = Clock()
    settings = Settings(_env_file=None, mood_rate_per_user=2, mood_rate_per_place=2)
    mood = MoodUseCase(db, classifier=None, fetcher=None, limiter=limited(settings, clock))
    link = await cache_youtube_song(db, "ddddddddddd")
    for refused in ("https://open.spotify.com/album/4LH4d3cOWNNsVw41Gqt2kv", "spotify:playlist:37i9dQZF1DXcBWIGoYBM5M",
                    "https://music.apple.com/us/album/pablo-honey/1097861387?i=1097861836", "...", f"{link} {link}"):
        reply = await mood.run(caller("1"), refused)
        assert isinstance(reply, ErrorReply) and reply.retry_after_s is None and "going fast" not in reply.message
    assert [type(await mood.run(caller(user), link)) for user in ("1", "1", "2")] == [MoodReply, MoodReply, ErrorReply]


async def test_per_place_limit_counts_every_member(db, caplog):
    clock = Clock()
    settings = Settings(_env_file=None, mood_rate_per_user=100, mood_rate_per_place=4)
    mood = MoodUseCase(db, classifier=None, fetcher=None, limiter=limited(settings, clock))
    link = await cache_youtube_song(db, "bbbbbbbbbbb")
    with caplog.at_level(logging.INFO, logger="bot.usecases.mood"):
        replies = [await mood.run(caller(str(user)), link) for user in range(6)]
    assert [type(r) for r in replies] == [MoodReply] * 4 + [ErrorReply] * 2
    # Two members refused: the log says where, so a busy group is not taken for two abusers.
    assert [(r.user, r.place, r.by_place) for r in caplog.records if r.getMessage() == "mood.rate_limited"] == [
        ("4", GROUP, True), ("5", GROUP, True)]  # and which limit: the group's, not theirs
    assert all(0 < r.retry_after_s <= WINDOW_S for r in replies[4:])
    assert isinstance(await mood.run(caller("9", place="telegram:-600"), link), MoodReply)  # other group
    assert isinstance(await mood.run(caller("9", place=None), link), MoodReply)  # private chat


async def test_a_member_refused_for_the_places_limit_is_not_told_they_are_going_fast(db):
    """30 members of a Discord server ask once each; the 31st, asking for the first time, is told
    that the server is busy, not that they went fast; in a Telegram group, the group is."""
    clock = Clock()
    settings = Settings(_env_file=None)  # 30 a minute per place, 6 per user
    mood = MoodUseCase(db, classifier=None, fetcher=None, limiter=limited(settings, clock))
    link = await cache_youtube_song(db, "ddddddddddd")
    for user in range(settings.mood_rate_per_place):
        assert isinstance(await mood.run(Caller("discord", str(user), place="discord:42"), link), MoodReply)
        clock.now += 1
    refused = await mood.run(Caller("discord", "new", place="discord:42"), link)
    assert isinstance(refused, ErrorReply) and refused.retry_after_s == WINDOW_S - 30
    assert render.reply_text(refused) == "This server is asking me a lot right now — try again in 30 s."
    assert render.reply_text(refused, "group") == "This group is asking me a lot right now — try again in 30 s."
    # The member's own limit is still theirs: "going fast", where both are over and theirs is longer.
    for _ in range(settings.mood_rate_per_user):
        assert isinstance(await mood.run(caller("7"), link), MoodReply)
    own = await mood.run(caller("7"), link)
    assert isinstance(own, ErrorReply) and own.message == f"You're going fast — try again in {WINDOW_S:.0f} s."


@pytest.fixture
def hanging_audio():
    server = FakeAudioServer(Path(tempfile.mkdtemp(prefix="moodbot-abuse-"))).start()
    yield server
    server.stop()


async def test_at_most_n_analyses_per_user_run_at_once(db, hanging_audio):
    settings = Settings(_env_file=None, mood_rate_per_user=100, mood_rate_per_place=100,
                        mood_concurrent_per_user=2)
    # The audio host accepts and never answers: each analysis holds its slot until the timeout.
    fetcher = AudioFetcher(search_template=hanging_audio.url("/hang/{title}.ogg"), timeout_s=1.5)
    mood = MoodUseCase(db, classifier=None, fetcher=fetcher, limiter=MoodRateLimiter.from_settings(settings))
    running = [asyncio.create_task(mood.run(caller("1"), f"slow song {i}")) for i in range(2)]
    await asyncio.sleep(0.2)
    third = await mood.run(caller("1"), "one more")
    assert isinstance(third, ErrorReply) and third.retry_after_s == CONCURRENT_RETRY_S
    assert "try again in" in third.message
    other = asyncio.create_task(mood.run(caller("2"), "another user's song"))  # has its own slots
    finished = await asyncio.gather(*running, other)
    assert all(isinstance(r, ErrorReply) and "took too long" in r.message for r in finished)
    # Slots are given back when an analysis ends, even in failure.
    again = await mood.run(caller("1"), "after the others")
    assert isinstance(again, ErrorReply) and "took too long" in again.message


async def test_telegram_user_going_too_fast_is_told_when_to_retry(db):
    fake = await FakeTelegramBotAPI("123456:TEST-token").start()
    settings = Settings(_env_file=None, telegram_token="123456:TEST-token", telegram_api_url=fake.base_url,
                        telegram_file_url=fake.base_file_url, mood_rate_per_user=2)
    usecases = build_usecases(db, classifier=None, fetcher=None, limiter=MoodRateLimiter.from_settings(settings))
    link = await cache_youtube_song(db, "ccccccccccc")
    frontend = TelegramFrontend(settings, usecases, poll_timeout_s=1)
    await frontend.start()
    try:
        for _ in range(2):
            await fake.user_sends(f"/mood {link}")
            await fake.wait_for_reply(lambda c: "Mood:" in c.text)
        await fake.user_sends(f"/mood {link}")
        refused = await fake.wait_for_reply(lambda c: "try again in" in c.text)
        assert "Mood:" not in refused.text
    finally:
        await frontend.stop()
        await fake.stop()


def test_the_limiter_forgets_who_asked_once_their_window_has_passed():
    """The limiter holds who asked lately ("telegram:1001") and when: personal data, kept in
    memory only as long as a window needs it, not until that user asks again (or forever, for
    one who ran /forget and never came back)."""
    clock = Clock()
    limiter = MoodRateLimiter(per_user=5, per_place=50, concurrent_per_user=2, clock=clock)
    with limiter.acquire("telegram:1001", GROUP):
        pass
    clock.now += 3 * WINDOW_S
    with limiter.acquire("telegram:1002", "telegram:-600"):  # someone else, somewhere else
        pass

    held = str(vars(limiter.users)) + str(vars(limiter.places)) + str(vars(limiter))
    assert "1001" not in held and GROUP not in held


# ---- the commands that cost CPU: /stats, /export, /playlist, /servermood --------------------------

MOODS = ("happy", "energetic", "sad", "calm")


async def journal_of(db, user: str, days: int = 40) -> None:
    """`days` evenings of journal answers, the latest yesterday: enough for all three /stats charts."""
    rng = random.Random(user)
    today = datetime.now(timezone.utc).date()
    for n in range(1, days + 1):
        day = today - timedelta(days=n)
        mood = rng.choice(MOODS)
        await db.journal.add(JournalEntry(
            UserRef("telegram", user), day, f"{user}-{day}", "A song for today?", "Song", f"youtube:{n:011d}",
            f"Song {n}", mood, rng.uniform(-1, 1), rng.uniform(-1, 1),
            datetime(day.year, day.month, day.day, 21, tzinfo=timezone.utc)))


def heavy(clock: Clock | None = None, **settings) -> HeavyLimits:
    return HeavyLimits.from_settings(Settings(_env_file=None, **settings), clock=clock or Clock())


async def test_stats_over_its_limit_is_refused_with_the_time_to_wait_and_others_still_get_theirs(db):
    clock = Clock()
    usecases = build_usecases(db, classifier=None, fetcher=None, heavy_limits=heavy(clock, stats_rate_per_user=2))
    for user in ("1", "2"):
        await journal_of(db, user)
    for _ in range(2):
        assert isinstance(await usecases.journal.stats(caller("1", place=None)), StatsReply)
        clock.now += 5
    refused = await usecases.journal.stats(caller("1", place=None))
    assert isinstance(refused, ErrorReply) and refused.retry_after_s == WINDOW_S - 10
    assert f"You're going fast — try again in {refused.retry_after_s} s" in refused.message
    assert isinstance(await usecases.journal.stats(caller("2", place=None)), StatsReply)  # someone else
    # /stats's window is its own: the user can still export and ask for the group's playlist.
    assert isinstance(await usecases.privacy.export(caller("1")), ExportReply)
    assert isinstance(await usecases.playlists.playlist(caller("1"), "happy"), PlaylistReply)
    clock.now += refused.retry_after_s
    assert isinstance(await usecases.journal.stats(caller("1", place=None)), StatsReply)


async def test_export_over_its_limit_is_refused_until_the_window_frees_it(db):
    clock = Clock()
    usecases = build_usecases(db, classifier=None, fetcher=None, heavy_limits=heavy(clock, export_rate_per_user=1))
    await journal_of(db, "1", days=3)
    assert isinstance(await usecases.privacy.export(caller("1", place=None)), ExportReply)
    clock.now += 20
    refused = await usecases.privacy.export(caller("1", place=None))
    assert isinstance(refused, ErrorReply) and refused.retry_after_s == WINDOW_S - 20
    assert "try again in" in refused.message
    assert isinstance(await usecases.privacy.export(caller("2", place=None)), ExportReply)
    clock.now += refused.retry_after_s
    assert isinstance(await usecases.privacy.export(caller("1", place=None)), ExportReply)


async def test_playlist_and_servermood_share_a_window_per_member_and_one_per_group(db, caplog):
    clock = Clock()
    limits = heavy(clock, playlist_rate_per_user=2, playlist_rate_per_place=3)
    playlists = build_usecases(db, classifier=None, fetcher=None, heavy_limits=limits).playlists
    caplog.set_level(logging.INFO, logger="bot.ratelimit")
    assert isinstance(await playlists.playlist(caller("1"), "happy"), PlaylistReply)
    assert isinstance(await playlists.server_mood(caller("1")), ServerMoodReply)
    over_own = await playlists.playlist(caller("1"), "sad")
    assert isinstance(over_own, ErrorReply) and over_own.retry_after_s == WINDOW_S
    assert "You're going fast" in over_own.message
    assert isinstance(await playlists.server_mood(caller("2")), ServerMoodReply)  # the group's third
    over_group = await playlists.playlist(caller("3"), "calm")
    assert isinstance(over_group, ErrorReply) and 0 < over_group.retry_after_s <= WINDOW_S
    assert "try again in" in over_group.message
    # Member 3 asked once: the group's limit ran out, and the reply says so, not "going fast".
    assert render.reply_text(over_group, "group") == (
        f"This group is asking me a lot right now — try again in {over_group.retry_after_s} s.")
    assert [(r.user, r.place, r.by_place) for r in caplog.records if r.getMessage() == "command.rate_limited"] == [
        ("1", GROUP, False), ("3", GROUP, True)]  # where, for a limit counted per group too, and which
    # Another group, and a request refused for what it is (a typo, a private chat), are not counted.
    assert isinstance(await playlists.server_mood(caller("3", place="telegram:-600")), ServerMoodReply)
    assert "isn't one of the moods" in (await playlists.playlist(caller("4"), "hapy")).message
    assert "not in a private chat" in (await playlists.playlist(caller("4", place=None), "happy")).message
    clock.now += WINDOW_S
    assert isinstance(await playlists.playlist(caller("3"), "calm"), PlaylistReply)


class BusyRenders:
    """Samples every thread's stack from a thread of its own: how many were drawing a chart (or
    writing an export) at the same moment, at most. Watches; changes nothing in the bot."""

    WORK = {(charts.__file__, None), (privacy.__file__, "export_file")}

    def __init__(self) -> None:
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _drawing(self, frame) -> bool:
        while frame is not None:
            code = frame.f_code
            if (code.co_filename, None) in self.WORK or (code.co_filename, code.co_name) in self.WORK:
                return True
            frame = frame.f_back
        return False

    def _sample(self) -> None:
        while not self._stop.is_set():
            frames = sys._current_frames()
            self.most = max(self.most, sum(self._drawing(f) for f in frames.values()))
            time.sleep(0.001)

    def __enter__(self) -> "BusyRenders":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()


async def test_at_most_n_charts_are_drawn_at_once_the_rest_wait_and_none_is_refused(db):
    """Six users' /stats (three charts each), two groups' /servermood and two exports at once, with
    CHART_RENDERS_MAX=2: never more than two threads draw (or write an export) at once, each fighting
    the event loop for the GIL; every request is answered."""
    limits = heavy(chart_renders_max=2)
    usecases = build_usecases(db, classifier=None, fetcher=None, heavy_limits=limits)
    users = [str(n) for n in range(6)]
    for user in users:
        await journal_of(db, user, days=60)
    for n, place in enumerate(("telegram:-500", "telegram:-600")):  # a mood of the week to draw
        await usecases.mood.run(caller(f"9{n}", place=place), await cache_youtube_song(db, f"week{n:07d}"))
    with BusyRenders() as busy:
        replies = await asyncio.gather(
            *(usecases.journal.stats(caller(user, place=None)) for user in users),
            usecases.playlists.server_mood(caller("90", place="telegram:-500")),
            usecases.playlists.server_mood(caller("91", place="telegram:-600")),
            *(usecases.privacy.export(caller(user, place=None)) for user in users[:2]),
        )
    assert [type(r) for r in replies] == [StatsReply] * 6 + [ServerMoodReply] * 2 + [ExportReply] * 2
    assert all(r.chart is not None for r in replies[6:8])
    assert busy.most == 2


async def test_telegram_user_sending_stats_too_fast_is_told_when_to_retry(db):
    fake = await FakeTelegramBotAPI("123456:TEST-token").start()
    settings = Settings(_env_file=None, telegram_token="123456:TEST-token", telegram_api_url=fake.base_url,
                        telegram_file_url=fake.base_file_url, stats_rate_per_user=2)
    usecases = build_usecases(db, classifier=None, fetcher=None, heavy_limits=HeavyLimits.from_settings(settings))
    frontend = TelegramFrontend(settings, usecases, poll_timeout_s=1)
    await frontend.start()
    try:
        for _ in range(2):  # an empty journal: answered, and counted all the same
            await fake.user_sends("/stats")
            await fake.wait_for_reply(lambda c: "journal is empty" in c.text)
        await fake.user_sends("/stats")
        refused = await fake.wait_for_reply(lambda c: "try again in" in c.text)
        assert "You're going fast" in refused.text and "journal is empty" not in refused.text
    finally:
        await frontend.stop()
        await fake.stop()


def test_the_heavy_command_limits_forget_who_asked_once_their_window_has_passed():
    """Like /mood's: who asked and where is held only as long as a window needs it."""
    clock = Clock()
    limits = heavy(clock)
    for window in (limits.stats, limits.export, limits.server):
        window.check("telegram:1001", GROUP)
    clock.now += 3 * WINDOW_S
    for window in (limits.stats, limits.export, limits.server):
        window.check("telegram:1002", "telegram:-600")  # someone else, somewhere else

    held = "".join(str(vars(w.users)) + str(vars(w.places) if w.places else "")
                   for w in (limits.stats, limits.export, limits.server))
    assert "1001" not in held and GROUP not in held
    assert "1002" in held and "telegram:-600" in held  # the check above looks where they would be


@pytest.fixture
def limited_usecases(db):
    """The use cases with /mood held to one song a minute per user."""
    settings = Settings(_env_file=None, mood_rate_per_user=1)
    return build_usecases(db, classifier=None, fetcher=None, limiter=MoodRateLimiter.from_settings(settings))


async def test_a_telegram_file_over_the_limit_is_refused_before_it_is_downloaded(db, limited_usecases):
    """A user over their /mood limit who sends file after file (20 MB each) is refused each one with
    the time to wait, and the bot downloads none of them: it downloaded each, held it in memory and
    on disk, and refused it afterwards."""
    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), limited_usecases) as (fake, _):
        first = await cache_upload(db, b"OggS first song")
        await fake.user_sends(None, audio=fake.audio_attachment(first, file_name="first.ogg"))
        await fake.wait_for_reply(lambda c: "Mood:" in c.text)
        for n in range(3):
            mark = fake.mark()
            await fake.user_sends(None, audio=fake.audio_attachment(f"OggS song {n}".encode(), file_name=f"{n}.ogg"))
            refused = await fake.wait_for_reply(lambda c: "try again in" in c.text, after=mark)
            assert "You're going fast" in refused.text
        assert len(fake.calls_of("download")) == 1


async def test_a_discord_file_over_the_limit_is_refused_before_it_is_downloaded(db, limited_usecases):
    async with discord_on(FakeDiscord(), limited_usecases) as (fake, _):
        answers = []
        for n, content in enumerate((await cache_upload(db, b"OggS first song"), b"OggS second song")):
            song = fake.add_file(f"{n}.ogg", content)
            await fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": song["id"]}],
                             resolved={"attachments": {song["id"]: song}})
            answers.append(await fake.wait_for("edit_original", lambda call: bool(call.embeds)
                                               or "try again in" in call.content))
        assert answers[0].embeds and "You're going fast" in answers[1].content
        assert len(fake.calls_of("download")) == 1


async def test_a_file_telegram_did_not_hand_over_gives_its_quota_back(db, limited_usecases):
    """Taken before the download, the quota of a file Telegram then did not hand over (its file
    server's 404) is given back: sent again, the file is heard, not refused as going fast."""
    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), limited_usecases) as (fake, _):
        song = await cache_upload(db, b"OggS sent twice")
        fake.fail_next("download", 1, status=404)
        for expected in (NOT_DOWNLOADED, "Mood:"):
            mark = fake.mark()
            await fake.user_sends(None, audio=fake.audio_attachment(song, file_name="twice.ogg"))
            assert expected in (await fake.wait_for_reply(lambda c: c.text not in (STAGE_LISTENING, STAGE_FINDING),
                                                          after=mark)).text


async def sent(asked) -> type:
    """The reply's kind; the reply itself let go as the front-end lets it go once sent."""
    return type(await asked)


async def test_exports_asked_at_once_hold_two_users_data_at_a_time_not_everyone_s(db):
    """Twelve users' /export at once, each journal 700 entries: each read its user's whole data
    at once and then waited for a render slot holding it, so memory grew with the users asking
    (a peak of 5.0 MB for these twelve, 1.7 MB for one). At most CHART_RENDERS_MAX exports hold
    their data at a time; the rest wait before reading it, and every one is answered."""
    await flood.seed(db, 13)
    usecases = build_usecases(db, classifier=None, fetcher=None, heavy_limits=heavy(chart_renders_max=2))
    await usecases.privacy.export(flood.flooder(0))  # the first export's imports, not counted
    tracemalloc.start()
    try:
        alone = await usecases.privacy.export(flood.flooder(0))
        one = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        together = await asyncio.gather(*(sent(usecases.privacy.export(flood.flooder(n))) for n in range(1, 13)))
        many = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(alone, ExportReply) and set(together) == {ExportReply}
    assert many < 2.5 * one, (many, one)


async def test_stats_asked_at_once_read_two_users_journals_at_a_time_not_everyone_s(db, db_server, mongo_uri, db_name):
    """Twelve users' /stats at once, each journal 700 entries: each read its user's summary (every
    week's and month's moods, a title and two coordinates per entry for the map) at once, then held
    it while its charts waited for a render slot, so memory grew with the users asking (a peak of
    22 MB traced for these twelve, 6.3 MB for one, drawing included). At most CHART_RENDERS_MAX
    hold theirs at a time, the rest waiting before they read it: when the first is answered, one
    more has read its journal at most (the database's answers seen on the wire), and every one is
    answered."""
    await flood.seed(db, 12)
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        usecases = build_usecases(gated, classifier=None, fetcher=None, heavy_limits=heavy(chart_renders_max=2))
        asked = [asyncio.ensure_future(sent(usecases.journal.stats(flood.flooder(n)))) for n in range(12)]
        await asyncio.wait(asked, return_when=asyncio.FIRST_COMPLETED)
        read = gate.commands.count(("aggregate", "journal"))
        answers = await asyncio.gather(*asked)
    assert set(answers) == {StatsReply}
    assert read <= 3, read
