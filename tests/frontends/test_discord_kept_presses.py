"""Discord button presses kept until answered (bot/frontends/discord/kept.py): Discord replays no
interaction, and a press is deferred (Discord shows nothing more) then answered by editing the
message pressed. A bot killed outright in between left the old page under a turned /journal list
page, and /forget's question, Yes and No, over a deletion half done: pressed again, it said the
confirmation had expired. A press the bot takes on is now kept in the inbox until answered, and
the restart answers it in the message pressed. The real front-end and use cases over the test
database, on the fake Discord; the kill is the fake Discord stopped (nothing more of that run
reaches it) while the database holds the press's work, and the inbox put back as the kill left it
(as tests/frontends/test_discord_kept.py does)."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import pytest

from bot.frontends.discord.journal import FORGET_DONE_BEFORE, OLDER_BUTTON
from bot.frontends.discord.kept import PRESS_HOLD_S
from bot.usecases import build_usecases
from storage.inbox import Arrival
from storage.models import UserRef
from storage.schema import INBOX, JOURNAL
from tests.fakes.discord_api import APP_ID, FakeDiscord
from tests.fakes.wire_gate import gated_database
from tests.frontends.conftest import discord_on
from tests.frontends.test_discord import ALICE, BOB, DEFERRED_UPDATE, private_answer
from tests.frontends.test_discord_restart import forget_asked
from tests.frontends.test_journal_pages import days_listed, discord_button, newest, write_days
from tests.frontends.test_telegram_inbox import inbox_numbers, until

SOURCE = f"discord:{APP_ID}"


@asynccontextmanager
async def killed_while(db_server, mongo_uri, db_name, db, held: tuple[str, str]):
    """A bot whose database holds the next `held` (command, collection) on the wire: yields
    (the fake Discord, the gate, `press`), `press(message_id, custom_id)` pressing a button as
    Alice and returning the press's payload once the database holds its work and the press is
    kept. Then the bot is killed: Discord hears no more of it, and the inbox is put back as it was
    once the press was kept (the stop's clearing undone). The restart, on `db`, is the caller's."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        fake = FakeDiscord()
        left: list[dict] = []

        async def press(message_id: int | str, custom_id: str) -> dict:
            gate.hold(*held)
            payload = await fake.click(message_id, custom_id, user=ALICE)
            await asyncio.wait_for(gate.held.wait(), 10)
            assert await until(lambda: _has(db, int(payload["id"]))), "the press at work was not kept"
            left.extend(await db.db[INBOX].find({}).to_list())
            return payload

        async with discord_on(fake, build_usecases(gated, None, None)) as (_, frontend):
            frontend.bot.stop_grace_s = 0.3
            yield fake, gate, press
            await fake.stop()  # killed outright: nothing more of this run reaches Discord
        for doc in left:  # as the kill left them
            await db.db[INBOX].replace_one({"_id": doc["_id"]}, doc, upsert=True)


async def test_a_forget_yes_the_bot_was_killed_in_is_finished_and_said_done_after_the_restart(
        db_server, mongo_uri, db_name, db, usecases):
    """Killed while the deletions ran (the settings withdrawn, the journal not deleted yet): the
    question stayed with its buttons, the journal stayed, and a press on "Yes" after the restart
    was told the confirmation had expired. The restart now finishes the deletions and says so in
    the question's message."""
    async with killed_while(db_server, mongo_uri, db_name, db, ("delete", JOURNAL)) as (fake, _, press):
        question = await forget_asked(fake, db)
        pressed = await press(question, "forget:yes")
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 3  # cut short before the entries
    mark = fake.mark()

    async with discord_on(fake, usecases):
        done = await fake.wait_for("edit_original", lambda c: c.token == pressed["token"], after=mark)
        assert done.content.startswith("Done: I deleted everything about you"), done.content
        assert done.json["components"] == []  # Yes and No gone
        assert await until(lambda: _empty(db)), "the press answered was not cleared"
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 0


async def test_a_page_turn_the_bot_was_killed_in_is_shown_after_the_restart(
        db_server, mongo_uri, db_name, db, usecases):
    async with killed_while(db_server, mongo_uri, db_name, db, ("find", JOURNAL)) as (fake, _, press):
        await write_days(db, "discord", ALICE, 23)
        await fake.slash("journal", [{"name": "list", "type": 1}], user=ALICE)
        first = await private_answer(fake)
        pressed = await press(first.result["id"], discord_button(first, OLDER_BUTTON))
    mark = fake.mark()

    async with discord_on(fake, usecases):
        page = await fake.wait_for("edit_original", lambda c: c.token == pressed["token"], after=mark)
        assert days_listed(page.content) == newest(10, skip=10)
        assert await until(lambda: _empty(db)), "the press answered was not cleared"


async def test_a_forget_yes_killed_after_its_answer_and_before_its_clearing_is_not_told_nothing_was_deleted(
        db_server, mongo_uri, db_name, db, usecases):
    """Killed once "Done" was shown, before the press was cleared from the inbox: the restart's
    deletions find nothing left. "There was nothing of yours to delete" would say the killed run's
    deletion never was; it is said done."""
    async with killed_while(db_server, mongo_uri, db_name, db, ("delete", JOURNAL)) as (fake, gate, press):
        question = await forget_asked(fake, db)
        pressed = await press(question, "forget:yes")
        gate.release()
        first = await fake.wait_for("edit_original", lambda c: c.token == pressed["token"])
        assert first.content.startswith("Done: I deleted everything about you ("), first.content
    mark = fake.mark()

    async with discord_on(fake, usecases):
        again = await fake.wait_for("edit_original", lambda c: c.token == pressed["token"], after=mark)
        assert again.content == FORGET_DONE_BEFORE
        assert await until(lambda: _empty(db))


@pytest.mark.parametrize("custom_id", ["forget:no", "forget:maybe"])
async def test_a_press_answered_at_once_is_not_kept(discord_bot, db, custom_id):
    """"No" (or a button no view holds) is answered in its response, at once: nothing to answer
    after a restart, and kept it would be a write for nothing."""
    fake, _ = discord_bot
    question = await forget_asked(fake, db)
    release = fake.hold_next("interaction_callback")
    await fake.click(question, custom_id, user=ALICE)
    await asyncio.sleep(0.5)
    assert await inbox_numbers(db) == []
    release.set()


@pytest.mark.parametrize("custom_id,user", [("forget:no", ALICE), ("forget:yes", BOB)])
async def test_a_press_no_handler_takes_on_is_not_held_in_memory(discord_bot, db, custom_id, user):
    """Each press is held as it arrives, for its handler to keep (kept.py `press_taken`); one no
    handler takes on ("No", someone else's "Yes") was held until 256 presses came after it: its
    payload (the presser's id and names, the message pressed: a /forget question, a journal page)
    stayed in the bot's memory, on a quiet bot until the restart, past her /forget too. It goes
    once its handler could no longer defer it (Discord's 3 s)."""
    fake, frontend = discord_bot
    question = await forget_asked(fake, db)
    pressed = await fake.click(question, custom_id, user=user)
    await fake.wait_for("interaction_callback", lambda c: c.token == pressed["token"])
    assert await until(lambda: not frontend.bot.kept.presses_held(), timeout=PRESS_HOLD_S + 2), \
        "a press no handler took on is still held"


async def test_a_second_yes_is_not_kept(discord_bot, db):
    """A double click on "Yes": only the first press deletes, and only it is kept (the second is
    acknowledged and does nothing)."""
    fake, _ = discord_bot
    question = await forget_asked(fake, db)
    release = fake.hold_next("edit_original")  # the "Done" answer, still on its way
    first = await fake.click(question, "forget:yes", user=ALICE)
    await fake.wait_for("edit_original", lambda c: c.token == first["token"])
    second = await fake.click(question, "forget:yes", user=ALICE)
    acknowledged = await fake.wait_for("interaction_callback", lambda c: c.token == second["token"])
    assert acknowledged.json["type"] == DEFERRED_UPDATE
    assert await inbox_numbers(db) == [int(first["id"])]
    release.set()
    assert await until(lambda: _empty(db))


@pytest.mark.parametrize("minutes_ago,deferred", [(20, True), (0, False)])
async def test_a_kept_yes_discord_no_longer_takes_an_answer_for_deletes_nothing(usecases, db, minutes_ago, deferred):
    """A "Yes" kept 20 minutes before the restart (Discord takes answers for 15): dropped, unsent.
    One whose killed run never deferred it: Discord refuses the restart's deferral, past its 3 s
    (10062), and nothing is deleted that nothing could say was."""
    fake = FakeDiscord()
    press = fake._interaction(3, {"custom_id": "forget:yes", "component_type": 2}, user=ALICE, guild=None,
                              made_at=datetime.now(timezone.utc) - timedelta(minutes=minutes_ago))
    press["message"] = fake.message_payload(channel_id=press["channel_id"], content="", author=fake.bot_user())
    if not deferred:
        fake.expire(press["token"])
    await db.inbox.keep(SOURCE, [Arrival(int(press["id"]), press, "discord", None)])
    await write_days(db, "discord", ALICE, 2)

    async with discord_on(fake, usecases):
        assert await until(lambda: _empty(db))
        await asyncio.sleep(0.5)
        assert not [c for c in fake.calls if c.token == press["token"] and c.status < 300]
        assert len([c for c in fake.calls if c.token == press["token"]]) == (0 if deferred else 1)  # its deferral
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 2


async def _has(db, number: int) -> bool:
    return number in await inbox_numbers(db)


async def _empty(db) -> bool:
    return await inbox_numbers(db) == []
