"""A Telegram group became a supergroup (a new chat id) while the bot ran, and the move was made;
commands sent in the group before it, kept in the inbox, are handed over again by a restart (a run
killed outright before answering them). The move was known in memory only: the restart answered
them under the old id, which nothing reads again (an admin's 'playlists off' lost, a /mood's song in
no playlist). Finished moves are now kept (`places_moved`) and read back at start."""
from __future__ import annotations

from storage.database import Database
from storage.inbox import Arrival
from bot.usecases import build_usecases
from bot.usecases.playlists import PlaylistUseCase
from tests.bot.test_app import start_bot, stop_bot, telegram_env, wait_for_log
from tests.fakes.telegram_api import BOT_ID, FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN, telegram_on
from tests.frontends.test_telegram_album import cached_songs
from tests.frontends.test_telegram_inbox import until

ALICE, BOB = 42, 43
OLD, NEW = -779, -100779
SOURCE = f"telegram:{BOT_ID}"


def leaves(value) -> set[str]:
    """Every key and scalar value in `value`, as text: a member's id is one of them or is not
    (searching the document's repr found BOB's 43 in a timestamp at 0:43)."""
    if isinstance(value, dict):
        return {str(k) for k in value} | {leaf for v in value.values() for leaf in leaves(v)}
    if isinstance(value, (list, tuple)):
        return {leaf for v in value for leaf in leaves(v)}
    return {str(value)}


async def moved_then_killed(db, fake: FakeTelegramBotAPI, *commands: tuple[int, str, dict]) -> None:
    """The group moved (the move finished), and the killed run left `commands` ((sender, text,
    more of `user_sends`) sent in the old group) in the inbox, acknowledged to Telegram."""
    await PlaylistUseCase(db).place_moved("telegram", str(OLD), str(NEW))
    sent = [await fake.user_sends(text, chat=OLD, chat_type="group", user=user, **more) for user, text, more in commands]
    fake._updates.clear()  # acknowledged by the killed run's getUpdates
    await db.inbox.keep(SOURCE, [Arrival(u["update_id"], u, "telegram", str(u["message"]["from"]["id"])) for u in sent])


async def test_an_admins_playlists_off_from_the_old_group_replayed_by_a_restart_is_the_supergroup_s(
        tmp_path, mongo_uri, db_name):
    db = await Database.connect(mongo_uri, db_name)
    await db.init()
    fake = FakeTelegramBotAPI("987654:SENTINEL-app-token")
    fake.admins[str(OLD)] = {str(ALICE)}
    await moved_then_killed(db, fake, (ALICE, "/serverplaylist off", {}))
    await fake.start()
    proc = await start_bot(tmp_path, telegram_env(fake, tmp_path / "data", MONGODB_URI=mongo_uri,
                                                  MONGODB_DATABASE=db_name))
    try:
        await wait_for_log(tmp_path / "stderr", "event=app.started", timeout=60)
        told = await fake.wait_for("sendMessage", lambda c: c.chat_id == str(OLD), timeout=20)
        assert told.text.startswith("Group playlists are off"), told.text
        assert (await db.servers.get(f"telegram:{NEW}")).playlist_enabled is False
        assert await db.db["servers"].count_documents({"_id": f"telegram:{OLD}"}) == 0
    finally:
        await stop_bot(proc, 20)
        await fake.stop()
        await db.client.drop_database(db_name)
        await db.close()


async def test_a_mood_from_the_old_group_replayed_by_a_restart_counts_in_the_supergroup(mongo_uri, db_name):
    first = await Database.connect(mongo_uri, db_name)
    await first.init()
    fake = FakeTelegramBotAPI(TELEGRAM_TOKEN)
    (item, title, mood), = await cached_songs(fake, first, 1)
    await moved_then_killed(first, fake, (BOB, "/mood", item))
    await first.close()

    db = await Database.connect(mongo_uri, db_name)  # the next start: nothing of the first in memory
    await db.init()
    usecases = build_usecases(db, classifier=None, fetcher=None)
    await usecases.playlists.finish_moves()  # as the app does before its front-ends start
    try:
        async with telegram_on(fake, usecases):
            await fake.wait_for("sendMessage", lambda c: title in c.text, timeout=10)
            assert await until(lambda: db.db["requests"].count_documents({"place": f"telegram:{NEW}"}))
        assert await db.db["requests"].count_documents({"place": f"telegram:{OLD}"}) == 0
        assert [song.title for song in await db.playlists.playlist(f"telegram:{NEW}", mood)] == [title]
        # The move kept holds the group's ids, nothing of its members: /forget and /export pass it by.
        kept = await db.db["places_moved"].find({}).to_list()
        assert len(kept) == 1 and str(BOB) not in leaves(kept), kept
    finally:
        await db.close()
