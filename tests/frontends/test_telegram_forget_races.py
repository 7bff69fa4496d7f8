"""/forget while a daily prompt is on its way to Telegram: nothing of the prompt is kept, no
prompt comes the next day, and an answer to the prompt that arrived is not saved. /forget while a
song sent before it is still downloading: the song is answered, but not recorded after it."""
from __future__ import annotations

import asyncio

import pytest

from bot.config import Settings
from bot.frontends.telegram import TelegramFrontend
from bot.replies import Caller
from bot.usecases import build_usecases
from bot.usecases.privacy import NOTHING_TO_FORGET
from bot.usecases.journal import FORGOTTEN_MEANWHILE
from storage.models import UserRef
from storage.schema import INBOX
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.fakes.wire_gate import gated_database
from tests.frontends.conftest import TELEGRAM_TOKEN, journal_on_telegram, telegram_on, usecases_with_creep
from tests.frontends.test_telegram_album import (  # noqa: F401 (fixtures)
    GROUP,
    QUIET_S,
    cached_songs,
    telegram_unlimited,
    unlimited,
)

ALICE = UserRef("telegram", "42")


async def nothing_of_alice_stored(db) -> None:
    for name in await db.db.list_collection_names():
        assert await db.db[name].count_documents({"user_id": ALICE.user_id}) == 0, name


async def test_forget_while_a_prompt_is_being_sent_leaves_nothing_and_stops_tomorrows(telegram, db, usecases):
    fake, frontend = telegram
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    await scheduler.start()
    try:
        fake.fail_next("sendMessage", 1, retry_after=1)  # Telegram says wait: the prompt is in flight a second
        mark = fake.mark()
        sending = asyncio.create_task(scheduler.fire_now(ALICE))
        while not fake.calls_of("sendMessage", after=mark):
            await asyncio.sleep(0.01)

        done = await usecases.privacy.forget(Caller("telegram", "42", chat_id="42"), confirmed=True)
        await sending

        assert done.text.startswith("Done")
        assert not scheduler.is_scheduled(ALICE)
        await nothing_of_alice_stored(db)
        prompt = next(c for c in fake.calls_of("sendMessage", after=mark) if c.status == 200)
        answer_mark = fake.mark()
        await fake.user_sends("Creep", reply_to=fake.message_of(prompt)["message_id"])
        await fake.wait_for("sendMessage", after=answer_mark)
        # The answered update is cleared from the inbox 0.1 s after its answer: waited for up to 15 s,
        # as a full run on two loaded cores once took longer than the 5 s allowed before.
        deadline = asyncio.get_running_loop().time() + 15
        while (await db.db[INBOX].count_documents({"user_id": "42"})
               and asyncio.get_running_loop().time() < deadline):
            await asyncio.sleep(0.05)
        await nothing_of_alice_stored(db)
    finally:
        await scheduler.stop()


# ---- /forget while a song sent before it is still downloading ------------------------------------
# The request was sent before the /forget: it is answered, but not recorded after the deletion.

ALBUM_WINDOW_S = 1.0  # long enough for a /forget to come between two items of one album


@pytest.fixture
async def telegram_slow_album(unlimited):
    fake = await FakeTelegramBotAPI(TELEGRAM_TOKEN).start()
    settings = Settings(_env_file=None, telegram_token=TELEGRAM_TOKEN, telegram_api_url=fake.base_url,
                        telegram_file_url=fake.base_file_url, max_audio_bytes=1024 * 1024)
    frontend = TelegramFrontend(settings, unlimited, poll_timeout_s=1, album_window_s=ALBUM_WINDOW_S)
    await frontend.start()
    yield fake, frontend
    await frontend.stop()
    await fake.stop()


async def until(condition, timeout_s: float = 10.0) -> None:
    async def polled() -> None:
        while not condition():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(polled(), timeout_s)


async def forget_alice(usecases, *, stored: bool = False) -> None:
    """Alice's /forget, done; `stored`: she had something stored (else the requests in flight are
    dropped, never stored, and it says there was nothing to delete)."""
    done = await usecases.privacy.forget(Caller("telegram", str(ALICE.user_id), chat_id=ALICE.user_id), confirmed=True)
    assert done.text.startswith("Done") if stored else done.text == NOTHING_TO_FORGET, done.text


async def answered_after(fake, mark: int) -> list:
    await asyncio.sleep(QUIET_S + 1)
    return [c for c in fake.calls[mark:] if c.method == "sendMessage" and c.status == 200]


async def test_an_albums_songs_answered_after_forget_are_not_recorded(telegram_unlimited, unlimited, db):
    fake, _ = telegram_unlimited
    songs = await cached_songs(fake, db, 3)
    # The first song's file is slow to come (Telegram says wait 1 s): /forget arrives meanwhile.
    fake.fail_next("getFile", 1, retry_after=1)
    mark = fake.mark()
    await fake.user_sends_album([item for item, _, _ in songs], "/mood", chat=GROUP, user=int(ALICE.user_id))
    await until(lambda: fake.calls_of("getFile", after=mark))

    await forget_alice(unlimited)

    assert len(await answered_after(fake, mark)) == 3  # every song still gets its mood…
    assert (await db.privacy.export(ALICE)).requests == []  # …but none is kept


async def test_an_album_item_sent_after_forget_is_recorded_and_one_sent_before_is_not(telegram_slow_album,
                                                                                      unlimited, db):
    """Each item of an album counts from its own arrival, not the album's first or last."""
    fake, _ = telegram_slow_album
    (first, _, _), (second, title, _) = await cached_songs(fake, db, 2)
    album = {"media_group_id": "forget-in-between"}
    mark = fake.mark()
    sent = await fake.user_sends(**first, chat=GROUP, user=int(ALICE.user_id), extra=album)
    await until(lambda: sent["update_id"] in fake.delivered)
    await asyncio.sleep(0.1)  # the bot has the first item, and waits for the rest of the album

    await forget_alice(unlimited)
    await fake.user_sends("/mood", **second, chat=GROUP, user=int(ALICE.user_id), extra=album)

    assert len(await answered_after(fake, mark)) == 2
    assert [r.title for r in (await db.privacy.export(ALICE)).requests] == [title]


async def test_a_mood_file_still_downloading_at_forget_is_answered_not_recorded(telegram_unlimited, unlimited, db):
    fake, _ = telegram_unlimited
    (song, title, _), = await cached_songs(fake, db, 1)
    fake.fail_next("getFile", 1, retry_after=1)
    mark = fake.mark()
    await fake.user_sends(**song)  # privately: no /mood needed
    await until(lambda: fake.calls_of("getFile", after=mark))

    await forget_alice(unlimited)

    await asyncio.sleep(QUIET_S + 1)
    shown = [c.text for c in fake.calls[mark:] if c.method in ("sendMessage", "editMessageText") and c.status == 200]
    assert title in shown[-1]  # "Listening…" while the file comes, then the mood in its place
    assert (await db.privacy.export(ALICE)).requests == []


async def open_prompt(fake, frontend, db, usecases) -> dict:
    """The journal on and today's prompt sent: the message a reply answers."""
    scheduler = await journal_on_telegram(fake, frontend, db, usecases)
    mark = fake.mark()
    await scheduler.fire_now(ALICE)
    return fake.message_of(await fake.wait_for("sendMessage", after=mark))


async def saved_on_telegram(db, answer: str):
    """Today's prompt answered with `answer` (Spotify knows Creep): the "Saved to your journal" reply."""
    async with usecases_with_creep(db) as (_, usecases):
        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, frontend):
            prompt = await open_prompt(fake, frontend, db, usecases)
            await fake.user_sends(answer, reply_to=prompt["message_id"])
            return await fake.wait_for("sendMessage", lambda c: "Saved to your journal" in c.text)


@pytest.mark.parametrize("songs", [1, 3])
async def test_a_journal_answer_still_downloading_at_forget_is_not_saved_and_says_why(telegram, db, usecases, songs):
    """A reply with a song (or an album of them) to the prompt: /forget deletes the prompt while
    the file comes, and the user is told their answer went with it, not that no prompt is open."""
    fake, frontend = telegram
    prompt = await open_prompt(fake, frontend, db, usecases)
    items = [item for item, _, _ in await cached_songs(fake, db, songs)]
    fake.fail_next("getFile", 1, retry_after=1)
    mark = fake.mark()
    if songs == 1:
        await fake.user_sends(reply_to=prompt["message_id"], **items[0])
    else:
        await fake.user_sends_album(items, reply_to=prompt["message_id"])
    await until(lambda: fake.calls_of("getFile", after=mark))

    await forget_alice(usecases, stored=True)

    await asyncio.sleep(QUIET_S + 1)
    shown = [c.text for c in fake.calls[mark:] if c.method in ("sendMessage", "editMessageText") and c.status == 200]
    assert shown[-1] == FORGOTTEN_MEANWHILE
    assert await db.journal.count(ALICE) == 0


# ---- /forget while the song's keep is on its way to the database, then a stop ------------------

async def test_a_song_whose_keep_lands_after_forget_and_the_stop_is_not_answered_at_the_restart(
        db_server, mongo_uri, db_name, db):
    """Alice's song is answered while the database's write that keeps it is held on its way (at
    the wire); her /forget waits for it past its bound, deletes the rest and says so; the bot is
    stopped (its process gone), and only then does the write land. Until 2026-12-06 the restart
    handed the song over again: answered a second time and stored again, for a user who had asked
    to be forgotten. Now the /forget notes the requests it could not wait for (their source and
    number, nothing of hers), and the restart drops them unanswered."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        usecases = build_usecases(gated, None, None)
        usecases.inbox.done_wait_s = 0.3  # the /forget's wait for her keep, and the answer's clear's
        async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, _):
            (song, title, _), = await cached_songs(fake, db, 1)
            gate.hold("update", INBOX)
            await fake.user_sends(**song)
            await asyncio.wait_for(gate.held.wait(), 10)
            assert title in (await fake.wait_for_reply(lambda c: c.chat_id == ALICE.user_id)).text
            await forget_alice(usecases, stored=True)
        await gated.close()  # stopped: the bot's process is gone, its write still on the wire
        gate.release()
        await until(lambda: ("update", INBOX) in gate.commands)
        await asyncio.sleep(0.3)  # it has landed

    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), build_usecases(db, None, None)) as (again, _):
        await asyncio.sleep(QUIET_S + 1)  # an answer would have come by now
    assert [c.text for c in again.calls if c.method == "sendMessage" and c.chat_id == ALICE.user_id] == []
    await nothing_of_alice_stored(db)
