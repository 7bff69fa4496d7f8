"""Given a member leaves a Telegram group (or is removed), their songs stop counting in its
/playlist and /servermood; when they come back, their songs count again."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from storage.models import MoodRequest, UserRef
from tests.fakes.telegram_api import BOT_ID

GROUP, OTHER_GROUP = -100777, -100888
ALICE, BOB, CAROL = 42, 43, 44


async def asked(db, user: int, group: int, title: str, mood: str = "sad") -> None:
    """`user` asked /mood for `title` in `group` (these tests classify no song)."""
    await db.requests.add(MoodRequest(UserRef("telegram", str(user)), f"telegram:{group}", f"spotify:{title}",
                                      mood, datetime.now(timezone.utc), title=title))


async def playlist(fake, group: int = GROUP, user: int = ALICE) -> str:
    mark = fake.mark()
    await fake.user_sends("/playlist sad", chat=group, user=user)
    return (await fake.wait_for("sendMessage", after=mark)).text


async def server_mood(fake, group: int = GROUP, user: int = ALICE) -> str:
    mark = fake.mark()
    await fake.user_sends("/servermood", chat=group, user=user)
    return (await fake.wait_for("sendMessage", after=mark)).text


async def settled(fake, db=None, member: int | None = None, *, gone: bool = True) -> None:
    """The updates sent so far are handled. A command sent after them is answered once they have
    been read (wait for that answer); but updates run side by side, and a member's departure or
    return, written to the database, may still be on its way then: with `member`, wait until the
    database says they are `gone` from GROUP, or not."""
    mark = fake.mark()
    await fake.user_sends("/help", chat=GROUP, user=ALICE)
    await fake.wait_for("sendMessage", lambda call: "/mood" in call.text, after=mark)
    if member is None:
        return
    where = {"place": f"telegram:{GROUP}", "platform": "telegram", "user_id": str(member)}
    deadline = asyncio.get_running_loop().time() + 10
    while (await db.db["departures"].find_one(where) is not None) != gone:
        assert asyncio.get_running_loop().time() < deadline, f"member {member} not {'gone' if gone else 'back'}"
        await asyncio.sleep(0.02)


async def test_a_member_who_leaves_is_gone_from_the_playlist_and_comes_back_when_they_rejoin(telegram, db):
    fake, _ = telegram
    await asked(db, BOB, GROUP, "Creep")
    await asked(db, CAROL, GROUP, "Hurt")
    await asked(db, BOB, OTHER_GROUP, "Creep")
    assert "Creep" in await playlist(fake) and "(2 members)" not in await playlist(fake)
    assert "sad 2" in await server_mood(fake)

    # What Telegram sends in the group when Bob leaves (or an admin removes him).
    await fake.user_sends(None, chat=GROUP, user=BOB, extra={
        "left_chat_member": {"id": BOB, "is_bot": False, "first_name": "Bob"}})
    await settled(fake, db, BOB)

    text = await playlist(fake)
    assert "Hurt" in text and "Creep" not in text
    assert "sad 1" in await server_mood(fake)
    assert "Creep" in await playlist(fake, OTHER_GROUP)  # he is still in the other group

    await fake.user_sends(None, chat=GROUP, user=BOB, extra={
        "new_chat_members": [{"id": BOB, "is_bot": False, "first_name": "Bob"}]})
    await settled(fake, db, BOB, gone=False)

    text = await playlist(fake)
    assert "Creep" in text and "Hurt" in text
    assert "sad 2" in await server_mood(fake)


async def test_a_member_who_asks_there_again_after_leaving_counts_again(telegram, db):
    fake, _ = telegram
    await asked(db, BOB, GROUP, "Creep")
    await fake.user_sends(None, chat=GROUP, user=BOB, extra={
        "left_chat_member": {"id": BOB, "is_bot": False, "first_name": "Bob"}})
    await settled(fake, db, BOB)
    assert "Creep" not in await playlist(fake)

    await asked(db, BOB, GROUP, "Hurt")  # he is back, and asked /mood there (no join message seen)

    text = await playlist(fake)
    assert "Creep" in text and "Hurt" in text


async def test_membership_updates_for_admin_bots_are_asked_for_and_followed(telegram, db):
    """Telegram sends `chat_member` only to a bot that lists it in allowed_updates (and is an admin
    of the group); in large groups it is the only news of a member leaving."""
    fake, _ = telegram
    await asked(db, BOB, GROUP, "Creep")
    await settled(fake)  # polling
    assert "chat_member" in fake.allowed_updates

    await fake.member_changes(BOB, "member", "kicked", chat=GROUP, by=ALICE)
    await settled(fake, db, BOB)
    assert "Creep" not in await playlist(fake)

    await fake.member_changes(BOB, "kicked", "left", chat=GROUP, by=ALICE)  # unbanned: still out
    await settled(fake, db, BOB)
    assert "Creep" not in await playlist(fake)

    await fake.member_changes(BOB, "left", "member", chat=GROUP)
    await settled(fake, db, BOB, gone=False)
    assert "Creep" in await playlist(fake)


async def test_the_bot_removed_from_a_group_deletes_nothing_and_says_so_in_the_log(telegram, db, caplog):
    fake, _ = telegram
    await asked(db, BOB, GROUP, "Creep")
    with caplog.at_level(logging.INFO, logger="bot.usecases.playlists"):
        await fake.member_changes(BOT_ID, "member", "kicked", chat=GROUP, by=ALICE, bot=True)
        for _ in range(150):
            if any(r.getMessage() == "server.bot_removed" for r in caplog.records):
                break
            await asyncio.sleep(0.1)
    [record] = [r for r in caplog.records if r.getMessage() == "server.bot_removed"]
    assert record.place == f"telegram:{GROUP}"
    assert await db.db["requests"].count_documents({}) == 1
    assert await db.db["departures"].count_documents({}) == 0
    # Added back, it finds the group's songs where they were.
    await fake.member_changes(BOT_ID, "left", "member", chat=GROUP, by=ALICE, bot=True)
    assert "Creep" in await playlist(fake)


async def test_a_member_who_left_and_was_added_back_in_one_batch_counts(telegram, db, caplog):
    """Bob leaves and an admin, Alice, adds him back: Telegram hands both over in one batch (as after
    a restart), two senders' updates, handled side by side. His return is the last word: until
    2026-12-06 its one delete was done before his departure was written, and he was left out of
    the playlists while in the group."""
    fake, _ = telegram
    await asked(db, BOB, GROUP, "Creep")
    await settled(fake)
    await asyncio.gather(*(db.db["tracks"].find_one({}) for _ in range(8)))  # a pool of connections
    for turn in range(1, 4):
        with caplog.at_level(logging.INFO, logger="bot.usecases.playlists"):
            await fake.member_changes(BOB, "member", "left", chat=GROUP)
            await fake.member_changes(BOB, "left", "member", chat=GROUP, by=ALICE)
            deadline = asyncio.get_running_loop().time() + 10
            while sum(r.getMessage() == "server.member_left" for r in caplog.records) < turn:
                assert asyncio.get_running_loop().time() < deadline, "his departure was not written"
                await asyncio.sleep(0.02)
        await settled(fake, db, BOB, gone=False)
        assert "Creep" in await playlist(fake)
