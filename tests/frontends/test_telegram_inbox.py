"""Telegram updates are kept until answered (storage/inbox.py, `UpdateFlow.arrivals`).

python-telegram-bot acknowledges the updates it fetched at its next getUpdates, at once, long
before they are answered: a bot killed outright (kill -9, out of memory) lost every request it was
working on, its "Fetching…" shown for ever. The updates are now kept in the database until
answered, and a start hands the ones left over again. The real front-end and use cases over the
test database, talking to the fake Telegram server (whose getUpdates forgets what an offset
acknowledges, as Telegram does); the kill itself is in tests/bot/test_app_stop.py."""
from __future__ import annotations

import asyncio
import inspect
import logging
import time

from bot.config import Settings
from bot.frontends import render
from bot.frontends.telegram import TelegramFrontend
from bot.ratelimit import MoodRateLimiter
from bot.replies import STAGE_DOWNLOADING, STAGE_FINDING, STAGE_LISTENING
from bot.usecases import build_usecases
from storage.database import Database
from storage.inbox import Arrival
from storage.models import UserRef
from storage.schema import INBOX
from tests.fakes.telegram_api import BOT_ID, DEFAULT_USER, FakeTelegramBotAPI
from tests.fakes.wire_gate import WireGate, gated_database
from tests.frontends.conftest import TELEGRAM_TOKEN, journal_on_telegram, telegram_on
from tests.frontends.test_discord import VIDEO, cache_video
from tests.frontends.test_telegram_album import WINDOW_S, cached_songs, replies_after
from tests.frontends.test_telegram_unreadable_update import POLL_BEFORE_9_6

SOURCE = f"telegram:{BOT_ID}"
STAGES = (STAGE_FINDING, STAGE_DOWNLOADING, STAGE_LISTENING)


async def inbox_numbers(db) -> list[int]:
    return sorted(doc["number"] for doc in await db.db[INBOX].find({}).to_list())


async def until(condition, timeout: float = 10.0, step: float = 0.02):
    """`condition()` (a value, or an awaitable of one) once true, or at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(step)


def replies_in(fake: FakeTelegramBotAPI, chat: int) -> list[str]:
    return [c.text for c in fake.calls if c.method == "sendMessage" and c.chat_id == str(chat)]


async def test_an_update_in_progress_is_kept_and_cleared_once_answered(telegram, db):
    fake, _ = telegram
    fake.delay_next("sendMessage", 1.5)  # the answer takes a while to reach Telegram
    update = await fake.user_sends("/help", chat=501)

    assert await until(lambda: _has(db, update["update_id"])), "the update being answered was not kept"
    kept = await db.db[INBOX].find_one({})
    assert kept["payload"]["message"]["text"] == "/help" and kept["user_id"] == "501"

    await fake.wait_for_reply(lambda c: c.chat_id == "501")
    assert await until(lambda: _empty(db)), "the answered update was not cleared"


async def test_quick_answers_leave_nothing_kept(telegram, db):
    """An update answered before its batch was kept is never written; one answered while it was
    being written is cleared after."""
    fake, _ = telegram
    for n in range(12):
        await fake.user_sends("/help", chat=600 + n)
    for n in range(12):
        await fake.wait_for_reply(lambda c, n=n: c.chat_id == str(600 + n), after=0)
    await asyncio.sleep(1.5)  # the next getUpdates (poll timeout 1 s) has kept whatever it had to
    assert await inbox_numbers(db) == []


async def test_an_update_answered_while_its_batch_is_being_kept_is_cleared_after(db_server, mongo_uri, db_name, db):
    """The database is slow to keep a batch (the write held at the wire): its quick update is
    answered meanwhile, and cleared once the write has landed, not before it (which would leave
    it kept for a restart to answer again)."""
    gate = await WireGate(db_server.port).start()
    slow = await Database.connect(gate.uri(mongo_uri), db_name)
    try:
        usecases = build_usecases(slow, None, None)
        usecases.inbox.keep_wait_s = 30  # slow, not failed
        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, _):
            gate.hold("update", INBOX)
            update = await fake.user_sends("/help", chat=551)
            await asyncio.wait_for(gate.held.wait(), 10)
            await fake.wait_for_reply(lambda c: c.chat_id == "551")
            await asyncio.sleep(0.5)  # its handler is done: the answer reached Telegram long ago
            gate.release()
            await asyncio.sleep(0.5)  # the held write has landed, and the clear after it
            assert update["update_id"] not in await inbox_numbers(db)
    finally:
        await slow.close()
        await gate.close()


async def test_an_update_whose_keep_the_stop_cut_short_as_the_database_had_it_is_not_kept(
        db_server, mongo_uri, db_name, db):
    """The stop cancels the getUpdates whose gate keeps the batch, and the keep with it, while its
    write is on its way to the database (held at the wire): the stop's clear deleted nothing, the
    write landed after it, and the restart answered the update a second time."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), build_usecases(gated, None, None)) as (fake, _):
            gate.hold("update", INBOX)
            update = await fake.user_sends("/help", chat=552)
            await asyncio.wait_for(gate.held.wait(), 10)
            await fake.wait_for_reply(lambda c: c.chat_id == "552")
            asyncio.get_running_loop().call_later(0.5, gate.release)  # the write lands during the stop
        assert await until(lambda: ("update", INBOX) in gate.commands)
        await asyncio.sleep(0.3)  # a clear that waits for it is done by now
    assert update["update_id"] not in await inbox_numbers(db)


async def left_by_a_killed_run(fake: FakeTelegramBotAPI, db, *updates: dict) -> None:
    """`updates`, which a killed run was handed and never answered: acknowledged to Telegram (the
    fake no longer has them), kept in the inbox."""
    fake._updates.clear()  # acknowledged by the killed run's getUpdates
    await db.inbox.keep(SOURCE, [Arrival(u["update_id"], u, "telegram", str(u["message"]["from"]["id"]))
                                 for u in updates])


async def test_updates_left_by_a_run_killed_outright_are_answered_at_the_start(usecases, db):
    """Two updates a killed run was handed and never answered (acknowledged to Telegram, so the
    fake no longer has them) are answered by the next start, in order, and cleared."""
    fake = FakeTelegramBotAPI(TELEGRAM_TOKEN)
    first = await fake.user_sends("/help", chat=701)
    second = await fake.user_sends("/journal", chat=702)
    await left_by_a_killed_run(fake, db, first, second)

    async with telegram_on(fake, usecases):
        await fake.wait_for_reply(lambda c: c.chat_id == "701", after=0)
        await fake.wait_for_reply(lambda c: c.chat_id == "702", after=0)
        assert await until(lambda: _empty(db))
    assert len(replies_in(fake, 701)) == 1 and len(replies_in(fake, 702)) == 1


async def test_a_kept_update_the_library_cannot_read_is_named_and_said_why(usecases, db, caplog):
    """A kept update python-telegram-bot cannot read (one a Bot API server of another version sent)
    is not handed over; its line said only the error's type ("KeyError"), and no which: now its
    req= (the killed run's lines of it have the same) and the library's words, as
    `telegram.update_unreadable` says them of an update polled."""
    fake = FakeTelegramBotAPI(TELEGRAM_TOKEN)
    poll = await fake.user_sends(None, chat=703, extra={"poll": POLL_BEFORE_9_6})
    await left_by_a_killed_run(fake, db, poll)

    with caplog.at_level(logging.WARNING, logger="bot.frontends.telegram"):
        async with telegram_on(fake, usecases):
            pass
    [said] = [r for r in caplog.records if r.getMessage() == "telegram.not_replayed"]
    assert said.req == f"tg-{poll['update_id']}" and "persistent_id" in said.reason, vars(said)
    assert POLL_BEFORE_9_6["question"] not in said.reason


async def test_telegrams_own_copy_of_an_update_handed_over_again_is_answered_once(usecases, db):
    """A batch kept, then the bot killed before the getUpdates that acknowledges it went out:
    Telegram sends the update again, and the inbox has it too."""
    fake = FakeTelegramBotAPI(TELEGRAM_TOKEN)
    update = await fake.user_sends("/help", chat=801)  # still at Telegram
    await db.inbox.keep(SOURCE, [Arrival(update["update_id"], update, "telegram", "801")])

    async with telegram_on(fake, usecases):
        await fake.wait_for_reply(lambda c: c.chat_id == "801", after=0)
        assert await until(lambda: _empty(db))
        await asyncio.sleep(1.5)  # a second answer would have come by now
        assert fake.delivered[update["update_id"]]  # Telegram did hand its copy over
    assert len(replies_in(fake, 801)) == 1


async def test_another_bots_updates_in_the_same_database_are_left_alone(usecases, db):
    other = Arrival(5, {"update_id": 5, "message": {"message_id": 1, "date": 0, "text": "/help",
                                                    "chat": {"id": 901, "type": "private"}}})
    await db.inbox.keep("telegram:42", [other])
    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, _):
        await asyncio.sleep(1.0)
        assert replies_in(fake, 901) == []
    assert await inbox_numbers(db) == [5]


async def test_an_update_the_stop_cut_short_is_told_and_not_handed_over_again(usecases, db):
    """The stop tells its sender to send it again: a restart that answered it too would answer
    twice."""
    fake = FakeTelegramBotAPI(TELEGRAM_TOKEN)
    async with telegram_on(fake, usecases) as (_, frontend):
        frontend.stop_grace_s = 0.3
        fake.delay_next("sendMessage", 3)  # the answer reaches Telegram after the grace
        update = await fake.user_sends("/help", chat=1001)
        assert await until(lambda: _has(db, update["update_id"]))
    assert replies_in(fake, 1001)[-1] == render.RESTARTING
    assert await inbox_numbers(db) == []


async def _has(db, number: int) -> bool:
    return number in await inbox_numbers(db)


async def _empty(db) -> bool:
    return await inbox_numbers(db) == []


async def test_a_prompt_answer_whose_entry_was_saved_before_the_kill_is_not_answered_again(telegram, usecases, db):
    """The bot killed after the answer's entry was saved and before its update was cleared from the
    inbox: the restart hands it over again. It is recognised as the message that made that entry:
    no second entry, and its answer is the same confirmation (not "that prompt already has its
    song")."""
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    await cache_video(db)
    mark = fake.mark()
    await scheduler.fire_now(UserRef("telegram", str(DEFAULT_USER)))
    prompt = fake.message_of(await fake.wait_for("sendMessage", after=mark))
    mark = fake.mark()
    update = await fake.user_sends(f"{VIDEO}\non the bus", reply_to=prompt["message_id"])
    first = await fake.wait_for_reply(lambda c: c.text not in STAGES, after=mark)
    assert first.text.startswith("Saved to your journal")
    assert await until(lambda: _empty(db))
    await frontend.stop()
    await db.inbox.keep(SOURCE, [Arrival(update["update_id"], update, "telegram", str(DEFAULT_USER))])

    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (again, _):
        answer = await again.wait_for_reply(lambda c: c.text not in STAGES, after=0)
        assert await until(lambda: _empty(db))
    assert answer.text == first.text
    assert await db.journal.count(UserRef("telegram", str(DEFAULT_USER))) == 1


async def test_a_clear_that_failed_is_tried_again_in_a_quiet_bot(db_server, mongo_uri, db_name, db):
    """The database lost the connection carrying the clear of an answered update, and nothing came
    after it: the clear waited for the next request, and a hard kill meanwhile answered the update
    again. It is tried again on its own once the pause after the failure is over."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        usecases = build_usecases(gated, None, None)
        usecases.inbox.pause_after_failure_s = 0.5
        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, _):
            fake.delay_next("sendMessage", 1.5)  # answered after its batch is kept
            update = await fake.user_sends("/help", chat=1101)
            assert await until(lambda: _has(db, update["update_id"]))
            gate.cut_next("delete", INBOX)
            await fake.wait_for_reply(lambda c: c.chat_id == "1101")
            assert await until(lambda: gate.was_cut), "the clear was not cut"
            assert await until(lambda: _empty(db), timeout=5), "the failed clear was not tried again"


async def test_the_stop_tries_a_failed_clear_again_even_during_the_pause(db_server, mongo_uri, db_name, db):
    """A stop within the pause after the failed clear (30 s) left the answered update kept: the next
    start answered it again."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        usecases = build_usecases(gated, None, None)
        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, _):
            fake.delay_next("sendMessage", 1.5)
            update = await fake.user_sends("/help", chat=1102)
            assert await until(lambda: _has(db, update["update_id"]))
            gate.cut_next("delete", INBOX)
            await fake.wait_for_reply(lambda c: c.chat_id == "1102")
            assert await until(lambda: gate.was_cut), "the clear was not cut"
            await asyncio.sleep(0.3)
            assert usecases.inbox.paused_for() > 0 and await _has(db, update["update_id"])
        assert await inbox_numbers(db) == []


async def test_an_album_replayed_after_a_kill_partway_answers_only_the_songs_not_answered(
        db_server, mongo_uri, db_name, db):
    """An album of three songs, each answered under it, the bot killed once the first was answered:
    the restart answered all three again. Each song's answer is noted where its update is kept, and
    the restart answers only the songs not answered."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        fake = await FakeTelegramBotAPI(TELEGRAM_TOKEN).start()
        try:
            frontend = await _album_frontend(fake, build_usecases(gated, None, None))
            songs = await cached_songs(fake, db, 3)
            gate.hold("delete", INBOX)  # the album's clear, once its songs are answered
            mark = fake.mark()
            await fake.user_sends_album([item for item, _, _ in songs])
            await asyncio.wait_for(gate.held.wait(), 10)
            kept = await db.db[INBOX].find({}).sort("number", 1).to_list()
            gate.release()
            assert len(await replies_after(fake, mark)) == 3
            await frontend.stop()
            assert [doc.get("parts") for doc in kept] == [1, 1, 1]
            # as the run killed once the first song was answered left them
            await db.db[INBOX].insert_many([kept[0], *({**doc, "parts": 0} for doc in kept[1:])])

            mark = fake.mark()
            frontend = await _album_frontend(fake, build_usecases(db, None, None))
            try:
                replayed = await replies_after(fake, mark)
                assert await until(lambda: _empty(db))
            finally:
                await frontend.stop()
            assert [[title in reply.text for _, title, _ in songs] for reply in replayed] == [
                [False, True, False], [False, False, True]]
        finally:
            await fake.stop()


async def _album_frontend(fake: FakeTelegramBotAPI, usecases) -> TelegramFrontend:
    settings = Settings(_env_file=None, telegram_token=TELEGRAM_TOKEN, telegram_api_url=fake.base_url,
                        telegram_file_url=fake.base_file_url, max_audio_bytes=1024 * 1024)
    frontend = TelegramFrontend(settings, usecases, poll_timeout_s=1, album_window_s=WINDOW_S)
    await frontend.start()
    return frontend


async def test_an_album_the_rate_limit_ended_says_nothing_more_after_a_kill(db_server, mongo_uri, db_name, db):
    """The fourth song told to wait (the rest "not heard", said once) ends the answers: every song's
    update is noted answered, and the restart after a kill hears none of them."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        fake = await FakeTelegramBotAPI(TELEGRAM_TOKEN).start()
        try:
            limiter = MoodRateLimiter(per_user=3, per_place=30, concurrent_per_user=2)
            frontend = await _album_frontend(fake, build_usecases(gated, None, None, limiter=limiter))
            songs = await cached_songs(fake, db, 5)
            gate.hold("delete", INBOX)
            mark = fake.mark()
            await fake.user_sends_album([item for item, _, _ in songs])
            await asyncio.wait_for(gate.held.wait(), 10)
            kept = await db.db[INBOX].find({}).sort("number", 1).to_list()
            gate.release()
            assert len(await replies_after(fake, mark)) == 4  # three moods, and the refusal
            await frontend.stop()
            assert [doc.get("parts") for doc in kept] == [1] * 5
            await db.db[INBOX].insert_many(kept)  # as the run killed before its clear left them

            mark = fake.mark()
            frontend = await _album_frontend(fake, build_usecases(db, None, None))
            try:
                assert await until(lambda: _empty(db))
                assert await replies_after(fake, mark) == []
            finally:
                await frontend.stop()
        finally:
            await fake.stop()


async def test_an_album_resumed_after_a_kill_does_not_put_its_next_answer_in_an_answered_song_s_message(
        db_server, mongo_uri, db_name, db):
    """The first song was slow: its status message ("Listening…") was noted for the restart to take
    over, then its mood put in it. Killed before the second song's answer, the restart put the
    second song's mood in that message, over the first song's. An answered song's status is no
    longer one to take over."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        fake = await FakeTelegramBotAPI(TELEGRAM_TOKEN).start()
        try:
            frontend = await _album_frontend(fake, build_usecases(gated, None, None))
            songs = await cached_songs(fake, db, 2)
            gate.hold("delete", INBOX)
            fake.delay_next("getFile", 1.5)  # the first song is slow: its status message is shown
            mark = fake.mark()
            await fake.user_sends_album([item for item, _, _ in songs])
            await asyncio.wait_for(gate.held.wait(), 10)
            kept = await db.db[INBOX].find({}).sort("number", 1).to_list()
            gate.release()
            status = await fake.wait_for("sendMessage", lambda c: c.text == STAGE_LISTENING, after=mark)
            first = await fake.wait_for_reply(lambda c: songs[0][1] in c.text, after=mark)
            assert first.method == "editMessageText"  # the first song's mood in its status message
            await frontend.stop()
            await db.db[INBOX].insert_many([kept[0], {**kept[1], "parts": 0}])  # killed before the second's answer

            mark = fake.mark()
            frontend = await _album_frontend(fake, build_usecases(db, None, None))
            try:
                second = await fake.wait_for_reply(lambda c: songs[1][1] in c.text, after=mark)
                assert await until(lambda: _empty(db))
            finally:
                await frontend.stop()
            assert second.method == "sendMessage"
            status_id = fake.message_of(status)["message_id"]
            assert [c for c in fake.calls_of("editMessageText", after=mark)
                    if str(c.params.get("message_id")) == str(status_id)] == []
        finally:
            await fake.stop()


async def test_a_journal_delete_replayed_after_the_kill_deletes_no_second_entry(telegram, usecases, db):
    """The bot killed after /journal delete last did its work, before its update was cleared from
    the inbox: the restart hands it over again. It deleted the newest entry; run again, it would
    delete the one before, which the user never asked. It is told it was done, and deletes nothing."""
    from datetime import date, datetime, timezone

    from storage.models import JournalEntry

    fake, frontend = telegram
    alice = UserRef("telegram", str(DEFAULT_USER))
    for n in range(2):
        day = date(2026, 12, 2 + n)
        await db.prompts.record_sent(alice, f"p{n}", "On the way home…", day,
                                     datetime(2026, 12, 2 + n, 21, tzinfo=timezone.utc), str(DEFAULT_USER), str(70 + n))
        await db.prompts.mark_answered(f"p{n}")
        await db.journal.add(JournalEntry(
            user=alice, local_date=day, prompt_id=f"p{n}", phrase="On the way home…", reply_text="Creep",
            track_key=f"spotify:{n:022d}", track_title=f"Song {n}", mood="sad", valence=-0.5, arousal=0.1,
            created_at=datetime(2026, 12, 2 + n, 21, 5, tzinfo=timezone.utc)))
    mark = fake.mark()
    update = await fake.user_sends("/journal delete last")
    first = await fake.wait_for_reply(after=mark)
    assert first.text.startswith("Deleted from your journal: 2026-12-03 · On the way home… Song 1")
    assert await until(lambda: _empty(db))
    await frontend.stop()
    await db.inbox.keep(SOURCE, [Arrival(update["update_id"], update, "telegram", str(DEFAULT_USER))])

    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (again, _):
        answer = await again.wait_for_reply(after=0)
        assert await until(lambda: _empty(db))
    assert answer.text.startswith("Done already: your entry dated 2026-12-03 (On the way home…) is deleted")
    assert [e.track_title for e in await db.journal.list(alice)] == ["Song 0"]


async def test_an_album_item_s_edit_to_mood_replayed_with_its_album_after_a_kill_is_answered(usecases, db):
    """An album sent to a group without /mood and one item's caption edited to '/mood' at once, the
    bot killed before either was handled: the start hands them over together, the edit while the
    album is collected again. It was dropped then; it waits for the album, and is answered."""
    fake = FakeTelegramBotAPI(TELEGRAM_TOKEN)
    songs = await cached_songs(fake, db, 2)
    sent = await fake.user_sends_album([item for item, _, _ in songs], chat=-100901)
    edit = await fake.user_edits(sent[1], "/mood")
    fake._updates.clear()  # acknowledged by the killed run's getUpdates
    await db.inbox.keep(SOURCE, [Arrival(u["update_id"], u, "telegram", str(DEFAULT_USER))
                                 for u in (*sent, edit)])

    async with telegram_on(fake, usecases):
        assert await until(lambda: _empty(db))
        reply, = await replies_after(fake, 0)
    assert songs[1][1] in reply.text
    assert reply.params["reply_parameters"]["message_id"] == sent[1]["message"]["message_id"]
