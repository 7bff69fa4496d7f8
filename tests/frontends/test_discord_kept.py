"""Discord commands kept until answered (bot/frontends/discord/kept.py): Discord replays no
interaction, so a bot killed outright left each command at work "thinking…" for ever. Each
application command is now kept in the inbox until its handler ends, and a start answers those
left. The real front-end and use cases over the test database, on the fake Discord; the kill
itself is in tests/bot/test_app_stop.py."""
from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
from datetime import datetime, timedelta, timezone

from bot.ratelimit import MoodRateLimiter
from bot.replies import STAGE_DOWNLOADING, STAGE_FINDING, STAGE_LISTENING
from bot.usecases import build_usecases
from storage.inbox import Arrival
from storage.models import UserRef
from storage.schema import INBOX, TRACKS
from bot.frontends.discord.kept import DM, KIND
from tests.fakes.discord_api import APP_ID, Call, FakeDiscord, user_payload
from tests.frontends.conftest import discord_on
from tests.frontends.test_discord import ALICE, VIDEO, cache_video, open_a_prompt
from tests.frontends.test_discord_message_files import QUIET_S, answers, ask_about, cached_files, shown, titles
from tests.frontends.test_telegram_inbox import gated_database, inbox_numbers, until

SOURCE = f"discord:{APP_ID}"
STAGES = (STAGE_FINDING, STAGE_DOWNLOADING, STAGE_LISTENING)


async def test_a_command_at_work_is_kept_and_cleared_once_answered(discord_bot, db):
    fake, _ = discord_bot
    release = fake.hold_next("interaction_callback")  # Discord is slow to take the answer
    payload = await fake.slash("help")

    assert await until(lambda: _has(db, int(payload["id"]))), "the command at work was not kept"
    kept = await db.db[INBOX].find_one({})
    assert kept["payload"]["token"] == payload["token"] and kept["user_id"] == "42"

    release.set()
    await fake.wait_for("interaction_callback")
    assert await until(lambda: _empty(db)), "the answered command was not cleared"


async def test_a_button_press_is_not_kept(discord_bot, db):
    """A press could act twice if handed over again; it is quick anyway."""
    fake, _ = discord_bot
    release = fake.hold_next("interaction_callback")
    await fake.click(123, "journal:page:2")
    await asyncio.sleep(0.5)
    assert await inbox_numbers(db) == []
    release.set()


async def test_a_command_left_by_a_run_killed_outright_is_answered_at_the_start(usecases, db):
    fake = FakeDiscord()
    payload = fake._interaction(2, {"id": str(fake._command_id("help")), "name": "help", "type": 1},
                                user=42, guild=None)
    await db.inbox.keep(SOURCE, [Arrival(int(payload["id"]), payload, "discord", "42")])

    async with discord_on(fake, usecases):
        answer = await fake.wait_for("interaction_callback", lambda c: c.token == payload["token"], after=0)
        assert "/mood" in answer.content
        assert await until(lambda: _empty(db))


async def test_a_command_older_than_discord_takes_answers_for_is_dropped(usecases, db, caplog):
    fake = FakeDiscord()
    payload = fake._interaction(2, {"id": str(fake._command_id("help")), "name": "help", "type": 1},
                                user=42, guild=None, made_at=datetime.now(timezone.utc) - timedelta(minutes=20))
    await db.inbox.keep(SOURCE, [Arrival(int(payload["id"]), payload, "discord", "42")])

    with caplog.at_level(logging.WARNING, logger="bot.frontends.discord.kept"):
        async with discord_on(fake, usecases):
            await asyncio.sleep(0.5)
            assert not [c for c in fake.calls if c.token == payload["token"]]
    assert "discord.too_late_to_answer" in caplog.text
    assert await inbox_numbers(db) == []


async def test_a_command_the_stop_cut_short_is_not_handed_over_again(usecases, db):
    """The stop tells its asker (or leaves the answer Discord took): a restart that answered it
    too would answer twice."""
    fake = FakeDiscord()
    async with discord_on(fake, usecases) as (_, frontend):
        frontend.bot.stop_grace_s = 0.3
        release = fake.hold_next("interaction_callback")
        payload = await fake.slash("help")
        assert await until(lambda: _has(db, int(payload["id"])))
        asyncio.get_running_loop().call_later(1.0, release.set)
    assert await inbox_numbers(db) == []


async def test_a_dm_being_answered_is_kept_and_cleared_once_answered(discord_bot, db):
    """A DM answering a daily prompt: kept from its arrival until its listener is done."""
    fake, _ = discord_bot
    release = fake.hold_next("send_message")  # Discord is slow to take the bot's answer
    message = await fake.user_dms("Creep, on the bus")

    assert await until(lambda: _has(db, int(message["id"]))), "the DM being answered was not kept"
    kept = await db.db[INBOX].find_one({})
    assert kept["payload"]["content"] == "Creep, on the bus" and kept["user_id"] == "42"

    release.set()
    await fake.wait_for("send_message")
    assert await until(lambda: _empty(db)), "the answered DM was not cleared"


async def test_a_kept_dm_discord_py_cannot_read_is_named_and_said_why(usecases, db, caplog):
    """A kept DM discord.py cannot parse (kept by another version of it) is dropped; its line said
    only the error's type and the user: now its req= (the killed run's lines of it have the same)
    and discord.py's words, as `discord.dm_not_read_back` says them of a DM read back."""
    fake = FakeDiscord()
    message = fake.message_payload(channel_id=fake.dm_channel_id(42), content="Creep, on the bus",
                                   author=user_payload(42),  # an attachment as no Discord it knows sends
                                   attachments=[{"id": str(fake.snowflake())}])
    await db.inbox.keep(SOURCE, [Arrival(int(message["id"]), {**message, KIND: DM}, "discord", "42")])

    with caplog.at_level(logging.WARNING, logger="bot.frontends.discord.kept"):
        async with discord_on(fake, usecases):
            assert await until(lambda: _empty(db))
    [said] = [r for r in caplog.records if r.getMessage() == "discord.not_replayed"]
    assert said.req == f"dc-{message['id']}" and said.reason.startswith("KeyError: '"), vars(said)
    assert "Creep" not in said.reason


async def test_a_dm_left_by_a_run_killed_outright_is_answered_at_the_start(usecases, db):
    fake = FakeDiscord()
    channel = fake.dm_channel_id(42)
    message = fake.message_payload(channel_id=channel, content="Creep, on the bus", author=user_payload(42))
    await db.inbox.keep(SOURCE, [Arrival(int(message["id"]), {**message, KIND: DM}, "discord", "42")])

    async with discord_on(fake, usecases):
        answer = await fake.wait_for("send_message", lambda c: str(channel) in c.path, after=0)
        assert answer.content
        assert await until(lambda: _empty(db))


async def _dm_reply(fake, after: int = 0):
    """The bot's answer to a DM: its message, or its status message edited into it."""
    async def answers():
        return [c for c in fake.calls[after:] if c.name in ("send_message", "edit_message") and c.status < 300
                and (c.embeds or c.content not in STAGES)]
    found = await until(answers)
    assert found, [(c.name, c.content) for c in fake.calls]
    return found[0]


async def _has(db, number: int) -> bool:
    return number in await inbox_numbers(db)


async def _empty(db) -> bool:
    return await inbox_numbers(db) == []


async def test_a_dm_whose_entry_was_saved_before_the_kill_is_not_answered_again(scheduled, usecases, db):
    """The bot killed after the DM's entry was saved and before the DM was cleared from the inbox:
    the restart hands it over again. It is recognised as the message that made that entry: no
    second entry, and its answer is the same confirmation (not "that prompt already has its song")."""
    fake, frontend = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    mark = fake.mark()
    message = await fake.user_dms(f"{VIDEO} on the bus")
    first = await _dm_reply(fake, mark)
    assert await until(lambda: _empty(db))
    await frontend.stop()
    await db.inbox.keep(SOURCE, [Arrival(int(message["id"]), {**message, KIND: DM}, "discord", str(ALICE))])

    async with discord_on(FakeDiscord(), usecases) as (again, _):
        answer = await _dm_reply(again)
        assert await until(lambda: _empty(db))
    assert answer.embeds and answer.embeds[0]["description"] == first.embeds[0]["description"]
    assert answer.embeds[0]["fields"] == first.embeds[0]["fields"]
    assert await db.journal.count(UserRef("discord", str(ALICE))) == 1


async def test_the_stop_tries_a_failed_clear_again_even_during_the_pause(db_server, mongo_uri, db_name, db):
    """The database lost the connection carrying the clear of an answered command, and the bot was
    stopped within the pause after that failure (30 s): the command stayed kept, for a restart to
    answer again. The stop tries the clear once more, pause or not."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        usecases = build_usecases(gated, None, None)
        async with discord_on(FakeDiscord(), usecases) as (fake, _):
            release = fake.hold_next("interaction_callback")
            payload = await fake.slash("help")
            assert await until(lambda: _has(db, int(payload["id"])))
            gate.cut_next("delete", INBOX)
            release.set()
            await fake.wait_for("interaction_callback")
            assert await until(lambda: gate.was_cut), "the clear was not cut"
            await asyncio.sleep(0.3)
            assert usecases.inbox.paused_for() > 0 and await _has(db, int(payload["id"]))
        assert await inbox_numbers(db) == []


async def test_the_menu_on_several_files_replayed_after_a_kill_partway_answers_only_the_rest(discord_bot, usecases, db):
    """"Mood of this song" on a message with three files, the bot killed once the first was
    answered: the restart answered all three again, the first in place of its answer, the second
    and third as followups, shown twice. Each answer is noted where the command is kept, and the
    restart goes on from the first file not answered."""
    fake, frontend = discord_bot
    release = fake.hold_next("followup")  # the second file's first message waits at Discord
    mark = await ask_about(fake, await cached_files(fake, db, 3))

    async def noted():  # the command as kept once its first file is answered
        doc = await db.db[INBOX].find_one({})
        return doc if doc is not None and doc.get("parts") == 1 else None
    left = await until(noted)
    assert left is not None, "the first file's answer was not noted"
    release.set()
    assert titles(await answers(fake, mark, 3)) == ["take1", "take2", "take3"]
    assert await until(lambda: _empty(db))
    await frontend.stop()
    await db.db[INBOX].insert_one(left)  # as the run killed after the first answer left it

    async with discord_on(FakeDiscord(), usecases) as (again, _):
        replayed = await answers(again, 0, 2)
        assert await until(lambda: _empty(db))
    assert titles(replayed) == ["take2", "take3"]
    assert [m.name for m in replayed if m.name == "edit_original"] == []  # the first answer stands


async def test_the_menu_whose_files_the_rate_limit_ended_says_nothing_more_after_a_kill(
        db_server, mongo_uri, db_name, usecases, db):
    """The second file told to wait (the rest "not heard", said once) ends the answers: the restart
    after a kill then must not hear the third."""
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        limited = build_usecases(gated, None, None, limiter=MoodRateLimiter(per_user=1, per_place=30,
                                                                             concurrent_per_user=2))
        async with discord_on(FakeDiscord(), limited) as (fake, _):
            gate.hold("delete", INBOX)  # the clear, once the answers end
            mark = await ask_about(fake, await cached_files(fake, db, 3))
            await asyncio.wait_for(gate.held.wait(), 10)
            left = await db.db[INBOX].find_one({})
            assert left["parts"] == 3
            assert titles(await answers(fake, mark, 2)) == ["take1", None]
            gate.release()
        await db.db[INBOX].insert_one(left)  # as the run killed before its clear left it
        async with discord_on(FakeDiscord(), usecases) as (again, _):
            assert await until(lambda: _empty(db))
            assert await answers(again, 0, 0) == []


async def test_a_dm_replayed_after_a_kill_is_answered_in_the_status_message_the_killed_run_sent(
        scheduled, usecases, db):
    """The killed run had shown "Finding the song…" for the DM: the restart sent a second status
    message and its answer, and the first stayed "Finding the song…" for ever. The status message is
    noted where the DM is kept, and the answer after the restart goes in it."""
    fake, frontend = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    release = fake.hold_next("edit_message")  # the answer, on its way into the status message
    mark = fake.mark()
    await fake.user_dms(f"{VIDEO} on the bus")
    status = await fake.wait_for("send_message", after=mark)
    assert status.content == STAGE_FINDING

    async def noted():
        doc = await db.db[INBOX].find_one({})
        return doc if doc is not None and doc.get("shown") else None
    left = await until(noted)
    assert left is not None, "the status message was not noted"
    assert left["shown"] == [str(fake.dm_channel_id(ALICE)), str(status.result["id"])]
    release.set()
    assert await until(lambda: _empty(db))
    await frontend.stop()
    await db.db[INBOX].insert_one(left)  # as the run killed before the answer reached Discord left it

    async with discord_on(FakeDiscord(), usecases) as (again, _):
        answer = await _dm_reply(again)
        assert await until(lambda: _empty(db))
    assert answer.name == "edit_message" and answer.match["message"] == str(status.result["id"])
    assert answer.embeds[0]["description"].startswith("Saved to your journal")
    assert again.calls_of("send_message") == []


async def test_a_journal_delete_the_killed_run_did_is_told_done_and_deletes_no_second_entry(usecases, db):
    """The run killed after /journal delete last deleted the newest entry, before its command was
    cleared: the start hands the command over again. "last" would now be the entry before, which
    the user never asked to delete; the command is known by its interaction id and told it was done."""
    from datetime import date

    from bot.replies import Caller, JournalDeletedReply
    from storage.models import JournalEntry

    alice = UserRef("discord", "42")
    for n in range(2):
        day = date(2026, 12, 2 + n)
        sent = datetime(2026, 12, 2 + n, 21, tzinfo=timezone.utc)
        await db.prompts.record_sent(alice, f"p{n}", "On the way home…", day, sent, "42", str(70 + n))
        await db.prompts.mark_answered(f"p{n}")
        await db.journal.add(JournalEntry(
            user=alice, local_date=day, prompt_id=f"p{n}", phrase="On the way home…", reply_text="Creep",
            track_key=f"spotify:{n:022d}", track_title=f"Song {n}", mood="sad", valence=-0.5, arousal=0.1,
            created_at=sent))
    fake = FakeDiscord()
    payload = fake._interaction(2, {"id": str(fake._command_id("journal")), "name": "journal", "type": 1,
                                    "options": [{"name": "delete", "type": 1, "options": [
                                        {"name": "date", "type": 3, "value": "last"}]}]}, user=42, guild=None)
    done = await usecases.journal.delete(Caller("discord", "42", chat_id="42"), "last", message_id=payload["id"])
    assert isinstance(done, JournalDeletedReply) and done.entry.title == "Song 1"  # what the killed run did
    await db.inbox.keep(SOURCE, [Arrival(int(payload["id"]), payload, "discord", "42")])

    async with discord_on(fake, usecases):
        answer = await fake.wait_for("edit_original", lambda c: c.token == payload["token"], after=0)
        assert await until(lambda: _empty(db))
    assert answer.content.startswith("Done already: your entry dated 2026-12-03 (On the way home…) is deleted")
    assert [e.track_title for e in await db.journal.list(alice)] == ["Song 0"]



class ListensForEver:
    """A classifier still listening when the bot is killed: its answer never comes."""
    main_model_version = "v1"

    def __init__(self) -> None:
        self.listening = asyncio.Event()

    async def classify(self, path, **kwargs):
        self.listening.set()
        await asyncio.Event().wait()


def _key(n: int) -> str:
    """The cache key of `cached_files`' file n."""
    return "sha256:" + hashlib.sha256(f"OggS take {n}".encode()).hexdigest()


async def _killed_listening(db, to: int) -> tuple[FakeDiscord, int, dict, Call]:
    """"Mood of this song" on three files, the bot killed outright while it listens to file `to`
    (2 or 3: those before answered, its followup showing "Listening…"): the fake Discord as the
    kill left it (it takes nothing from the killed run after), the mark of the calls since the
    command, the command as kept then, and file `to`'s followup as Discord has it."""
    fake = FakeDiscord()
    classifier = ListensForEver()
    async with discord_on(fake, build_usecases(db, classifier, None)) as (_, frontend):
        frontend.bot.stop_grace_s = 0.3
        files = await cached_files(fake, db, 3)
        heard = await db.db[TRACKS].find_one_and_delete({"key": _key(to)})  # not heard yet: listened to
        mark = await ask_about(fake, files)
        await asyncio.wait_for(classifier.listening.wait(), 10)

        def listening():
            return [m for m in shown(fake, mark) if m.content == STAGE_LISTENING]
        assert await until(listening), [(c.name, c.content) for c in fake.calls[mark:]]
        await asyncio.sleep(0.3)  # whatever is noted in the background, noted
        left = await db.db[INBOX].find_one({})
        await fake.stop()  # killed outright: nothing more of this run reaches Discord
    await db.db[TRACKS].insert_one(heard)  # the restart hears it
    await db.db[INBOX].delete_many({})
    await db.db[INBOX].insert_one(left)  # as the run killed while listening left it
    status, = listening()
    return fake, mark, left, status


async def test_the_menu_replayed_after_a_kill_answers_the_file_in_the_followup_the_killed_run_sent(usecases, db):
    """The bot killed while the second file's followup showed "Listening…": the restart answered
    that file in a new followup, and the killed run's stayed "Listening…" for ever. The followup is
    noted where the command is kept (with the file it is for), and the restart edits the answer
    into it."""
    fake, mark, left, status = await _killed_listening(db, to=2)
    assert left["parts"] == 1
    assert left["shown"] == ["1", str(status.result["id"])], "the second file's followup was not noted"

    async with discord_on(fake, usecases):
        assert await until(lambda: _empty(db))
        messages = await answers(fake, mark, 3)
    assert [m.content for m in messages if m.content in STAGES] == []
    assert titles(messages) == ["take1", "take2", "take3"], [(m.name, m.content) for m in messages]  # each once
    assert messages[1].name == "edit_followup" and messages[1].match["message"] == str(status.result["id"])


async def test_the_menu_replayed_after_a_kill_puts_no_answer_over_a_file_answered_before(usecases, db):
    """Killed after the second file's answer was noted and before the third file's followup was: the
    followup noted is the second's, which shows its answer. The third file's answer goes in a
    followup of its own, not over the second's."""
    fake, mark, left, status = await _killed_listening(db, to=3)
    first, second, third = shown(fake, mark)
    assert titles([first, second]) == ["take1", "take2"] and third is status
    assert left["parts"] == 2 and left["shown"] == ["2", str(status.result["id"])]
    await db.db[INBOX].update_one({}, {"$set": {"shown": ["1", second.result["id"]]}})  # the third's not noted
    again = fake.mark()

    async with discord_on(fake, usecases):
        assert await until(lambda: _empty(db))
        await asyncio.sleep(QUIET_S)
    assert [c for c in fake.calls[again:] if c.match.get("message") == second.result["id"]] == []
    replayed = shown(fake, again)
    assert titles(replayed) == ["take3"]
    assert len(fake.calls_of("followup", after=again)) == 1  # its own (the one sent before was not noted)


async def test_a_dm_answered_while_the_bot_stops_is_cleared_by_the_stop(usecases, db, caplog):
    """A DM's listener is not one of the answers the stop waits for by name (`MoodBot.serve`:
    a typed command's hint, for one): one that ended after the stop's last clear made a clear
    nobody awaited, destroyed pending with the loop, and its DM was answered again by the next
    start. The stop waits for it too (within its grace), and clears it."""
    fake = FakeDiscord()
    async with discord_on(fake, usecases) as (_, frontend):
        frontend.bot.stop_grace_s = 3.0
        release = fake.hold_next("send_message")  # Discord is slow to take the hint
        message = await fake.user_dms("/playlist calm")
        assert await until(lambda: _has(db, int(message["id"])))
        await fake.wait_for("send_message")  # the hint is sent, not yet taken
        asyncio.get_running_loop().call_later(1.0, release.set)
        await frontend.stop()
        left = [t for t in asyncio.all_tasks() if "_clear_done" in repr(t.get_coro()) and not t.done()]
        assert not left, left
        assert await inbox_numbers(db) == [], "the stop left the answered DM to be answered again"
        assert fake.calls_of("send_message")[-1].status == 200  # the hint was taken, not cut off
    gc.collect()
    assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text


async def test_the_stop_s_second_finish_does_not_wait_its_grace_again_for_a_dm_still_answered(usecases, db):
    """The app runs each front-end's `finish` at once, then its `stop`, which finishes again (safe
    to call twice). A DM's listener still at work after the first grace (a hint Discord is slow
    to take) is not cut short, so it was still running at the second, which waited a whole grace
    for it again: the stop took two graces (4 s + 4 s), past `docker stop`'s 10 s with the rest."""
    fake = FakeDiscord()
    async with discord_on(fake, usecases) as (_, frontend):
        frontend.bot.stop_grace_s = 1.5
        release = fake.hold_next("send_message")  # Discord takes the hint only after the stop
        message = await fake.user_dms("/playlist calm")
        assert await until(lambda: _has(db, int(message["id"])))
        await fake.wait_for("send_message")
        loop = asyncio.get_running_loop()
        began = loop.time()
        await frontend.finish()  # the app's first part of the stop
        finished = loop.time()
        assert finished - began >= 1.5, "the DM's listener was not waited for"
        await frontend.stop()  # the app's exit stack
        stopped = loop.time()
        release.set()
        assert stopped - finished < 1.5, f"the stop waited {stopped - finished:.1f} s more, its grace again"
