"""Servers and groups (playlists, mood of the week, admin switch, opt-out) and the user's own data
(export, forget)."""
from __future__ import annotations

import asyncio
import json
import logging
import shutil
import threading
import time
from datetime import date, datetime
from datetime import time as clock_time
from datetime import timezone

import pytest
from pymongo import AsyncMongoClient, monitoring

from bot.frontends import render
from bot.replies import Caller, ErrorReply, ExportReply, PlaylistReply, ServerMoodReply, TextReply
from bot.scheduler import PromptScheduler
from bot.usecases import build_usecases
from bot.usecases.privacy import NOTHING_TO_FORGET, PrivacyUseCase
from storage.database import Database
from storage.models import JournalEntry, MoodRequest, StorageError, UserRef
from storage.outbox import JournalOutbox, JournalWriter, entry_to_line
from storage.schema import PLACE_REPAIRS
from tests.bot.conftest import ALICE, ALICE_DM, BOB, attachment

ADMIN = Caller("telegram", "1003", place="telegram:-500", chat_id="1003", is_admin=True)
ELSEWHERE = Caller("telegram", "1001", place="telegram:-999", chat_id="1001")


@pytest.fixture
def usecases(db, counting):
    return build_usecases(db, counting, fetcher=None)


async def test_the_group_playlist_lists_what_members_classified(usecases, clip_paths):
    moods = {}
    for caller, clip in ((ALICE, clip_paths[0]), (BOB, clip_paths[0]), (BOB, clip_paths[1])):
        reply = await usecases.mood.run(caller, attachment=attachment(clip))
        moods[clip.stem] = reply.mood

    first_mood = moods[clip_paths[0].stem]
    playlist = await usecases.playlists.playlist(ALICE, first_mood)

    assert isinstance(playlist, PlaylistReply) and playlist.mood == first_mood
    top = playlist.tracks[0]
    assert (top.title, top.members) == (clip_paths[0].stem, 2)
    # Another group has its own playlist.
    assert (await usecases.playlists.playlist(ELSEWHERE, first_mood)).tracks == []

    week = await usecases.playlists.server_mood(ALICE)
    assert isinstance(week, ServerMoodReply) and sum(week.counts.values()) == 3
    assert week.mood == max(week.counts, key=week.counts.get)
    assert week.chart.png.startswith(b"\x89PNG")


async def test_a_member_who_opts_out_is_not_counted(usecases, clip_paths):
    reply = await usecases.mood.run(ALICE, attachment=attachment(clip_paths[2]))
    off = await usecases.playlists.set_sharing(ALICE_DM, False)
    assert isinstance(off, TextReply) and "off" in off.text.lower()
    assert (await usecases.playlists.playlist(ALICE, reply.mood)).tracks == []
    await usecases.playlists.set_sharing(ALICE_DM, True)
    assert len((await usecases.playlists.playlist(ALICE, reply.mood)).tracks) == 1


async def test_playlists_need_a_server_a_known_mood_and_an_admin_to_switch_them(usecases):
    assert isinstance(await usecases.playlists.playlist(ALICE_DM, "happy"), ErrorReply)
    assert "moods" in (await usecases.playlists.playlist(ALICE, "grumpy")).message
    assert "admins" in (await usecases.playlists.set_enabled(ALICE, False)).message

    assert isinstance(await usecases.playlists.set_enabled(ADMIN, False), TextReply)
    disabled = await usecases.playlists.playlist(ALICE, "happy")
    assert isinstance(disabled, ErrorReply) and "turned off" in disabled.message
    await usecases.playlists.set_enabled(ADMIN, True)
    assert isinstance(await usecases.playlists.playlist(ALICE, "happy"), PlaylistReply)


@pytest.mark.parametrize("typed, said", [
    ("happy sad", "One mood at a time: /playlist <happy|energetic|sad|calm>."),
    ("Happy  calm", "One mood at a time: /playlist <happy|energetic|sad|calm>."),
    ("sad,calm", "One mood at a time: /playlist <happy|energetic|sad|calm>."),
    ("happy/sad", "One mood at a time: /playlist <happy|energetic|sad|calm>."),
    # One mood among words that are none: "one mood at a time" told them they had named two.
    ("grumpy sad", "Did you mean /playlist sad?"), ("happy please", "Did you mean /playlist happy?")])
async def test_a_playlist_asked_for_with_more_than_one_word_is_refused_with_the_usage(usecases, typed, said):
    """'/playlist happy sad' showed the happy playlist without a word of sad: one mood is asked
    for at a time, and the refusal says how."""
    refused = await usecases.playlists.playlist(ALICE, typed)
    assert isinstance(refused, ErrorReply)
    assert refused.message == said


async def test_the_mood_of_the_week_is_off_while_the_servers_playlists_are(usecases, clip_paths):
    """An admin who turns the server playlists off turns off what they are made of: the members'
    songs of the week are not shown through /servermood either."""
    await usecases.mood.run(ALICE, attachment=attachment(clip_paths[0]))
    off = await usecases.playlists.set_enabled(ADMIN, False)
    assert "/servermood" in off.text

    refused = await usecases.playlists.server_mood(ALICE)

    assert isinstance(refused, ErrorReply) and "turned off" in refused.message
    await usecases.playlists.set_enabled(ADMIN, True)
    assert sum((await usecases.playlists.server_mood(ALICE)).counts.values()) == 1


async def test_export_gives_everything_about_the_caller_as_json(usecases, clip_paths):
    await usecases.journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    prompt = await usecases.journal.make_prompt(await usecases.journal.db.users.get(UserRef("telegram", "1001")))
    await usecases.journal.answer(ALICE_DM, "on repeat", attachment(clip_paths[0]))
    await usecases.mood.run(BOB, attachment=attachment(clip_paths[1]))

    export = await usecases.privacy.export(ALICE_DM)

    assert isinstance(export, ExportReply)
    assert export.filename.startswith("moodbot-export-") and export.filename.endswith(".json")
    data = json.loads(export.data)
    assert data["user"]["user_id"] == "1001" and data["user"]["timezone"] == "Europe/Lisbon"
    assert [e["phrase"] for e in data["journal"]] == [prompt.phrase]
    assert data["journal"][0]["note"] == "on repeat"
    assert "1002" not in export.data.decode()  # nothing about Bob


async def test_the_export_says_what_it_holds_and_in_which_zone_its_times_are(usecases, clip_paths):
    # It said "Here is all moodbot keeps about you (<file>)." alone: of a year of entries, and of
    # nothing at all (a file of defaults), alike; the user could not tell what the file held.
    nothing = await usecases.privacy.export(BOB)
    assert render.reply_text(nothing) == (
        f"I keep nothing about you: {nothing.filename} holds only the settings you have by default "
        "(journal off, times in UTC).")
    await usecases.journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    await usecases.journal.make_prompt(await usecases.journal.db.users.get(UserRef("telegram", "1001")))
    await usecases.journal.answer(ALICE_DM, "on repeat", attachment(clip_paths[0]))
    await usecases.mood.run(ALICE_DM, attachment=attachment(clip_paths[1]))
    export = await usecases.privacy.export(ALICE_DM)
    assert render.reply_text(export) == (
        f"Here is all moodbot keeps about you ({export.filename}): your settings, 1 journal entry, 1 prompt "
        "and 1 song you asked the mood of; times are on your clock (Europe/Lisbon).")


async def test_an_export_without_saved_settings_has_the_settings_in_effect(db):
    """Bob never turned the journal on nor sharing off: his export's `user` is what he has, the
    defaults (journal off, UTC, his songs counting in playlists), not null; `created_at` null says
    none were ever saved, and exporting saves none."""
    data = json.loads((await PrivacyUseCase(db).export(BOB)).data)

    assert data["user"] == {"platform": "telegram", "user_id": "1002", "timezone": "UTC", "prompt_time": None,
                            "journal_enabled": False, "share_with_server": True, "chat_id": None,
                            "created_at": None, "journal_paused": None, "journal_paused_at": None,
                            "journal_set_at": None}
    assert await db.users.get(UserRef("telegram", "1002")) is None


async def test_the_export_file_is_dated_where_the_user_is(db):
    """06:30 UTC on 25 November is still the 24th in Los Angeles: Alice's export is dated her day.
    In Tokyo it is the 25th at 20:00 UTC of the 24th. Bob keeps no journal (no time zone): UTC's date."""
    alice = UserRef("telegram", "1001")
    await db.users.set_journal(alice, enabled=True, prompt_time=clock_time(21, 30), timezone="America/Los_Angeles",
                               chat_id="1001")
    morning_in_utc = PrivacyUseCase(db, now=lambda: datetime(2026, 11, 25, 6, 30, tzinfo=timezone.utc))
    assert (await morning_in_utc.export(ALICE_DM)).filename == "moodbot-export-2026-11-24.json"
    assert (await morning_in_utc.export(BOB)).filename == "moodbot-export-2026-11-25.json"

    await db.users.set_journal(alice, enabled=False, prompt_time=clock_time(7, 0), timezone="Asia/Tokyo", chat_id="1001")
    evening_in_utc = PrivacyUseCase(db, now=lambda: datetime(2026, 11, 24, 20, 0, tzinfo=timezone.utc))
    assert (await evening_in_utc.export(ALICE_DM)).filename == "moodbot-export-2026-11-25.json"
    assert (await evening_in_utc.export(BOB)).filename == "moodbot-export-2026-11-24.json"


async def test_a_saved_zone_this_machine_cannot_load_still_lets_the_user_export_and_chart(db, usecases):
    """A zone saved where the zone database had it (a newer tzdata's) and read where it has not:
    ZoneInfo's KeyError made /export (the user's copy of their data) and /stats 'something went
    wrong'. Their dates are UTC's then, as for a user without a zone."""
    await db.users.set_journal(UserRef("telegram", "1001"), enabled=True, prompt_time=clock_time(21, 30),
                               timezone="America/Nowhere_Since_2099a", chat_id="1001")
    late_in_utc = PrivacyUseCase(db, now=lambda: datetime(2026, 11, 24, 23, 30, tzinfo=timezone.utc))

    export = await late_in_utc.export(ALICE_DM)
    assert isinstance(export, ExportReply) and export.filename == "moodbot-export-2026-11-24.json"
    assert json.loads(export.data)["user"]["timezone"] == "America/Nowhere_Since_2099a"
    stats = await usecases.journal.stats(ALICE_DM)
    assert isinstance(stats, ErrorReply) and "No journal entries to chart yet" in stats.message


async def test_forget_explains_first_then_deletes_everything_and_unschedules(db, usecases, clip_paths):
    scheduler = PromptScheduler(db, usecases.journal)
    usecases.attach_schedule(scheduler)
    alice = UserRef("telegram", "1001")
    await usecases.journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    await usecases.journal.make_prompt(await db.users.get(alice))
    await usecases.journal.answer(ALICE_DM, "", attachment(clip_paths[0]))
    await usecases.mood.run(ALICE, attachment=attachment(clip_paths[1]))
    assert scheduler.is_scheduled(alice)

    explanation = await usecases.privacy.forget(ALICE_DM, confirmed=False)
    assert "can't be undone" in explanation.text
    assert (await usecases.journal.list(ALICE_DM)).total == 1  # nothing deleted yet

    done = await usecases.privacy.forget(ALICE_DM, confirmed=True)

    assert "deleted" in done.text
    assert not scheduler.is_scheduled(alice)
    assert await db.users.get(alice) is None
    exported = await db.privacy.export(alice)
    assert (exported.journal, exported.requests, exported.prompts) == ([], [], [])
    # Nothing is left anywhere: scan every collection for Alice's id.
    for name in await db.db.list_collection_names():
        assert await db.db[name].count_documents({"user_id": "1001"}) == 0, name


def test_help_lists_every_command_with_a_description(usecases):
    commands = dict(usecases.help().commands)
    for usage in ("mood", "journal on", "journal off", "journal list", "journal prompt", "stats", "playlist",
                  "servermood", "share on|off", "serverplaylist on|off", "export", "forget", "help"):
        assert any(u.startswith(usage) for u in commands), usage
    assert all(description for description in commands.values())


def test_help_says_songs_count_in_server_playlists_until_sharing_is_turned_off(usecases):
    """Sharing is on for everyone who never said /share off: the help line must say so, or a member
    can't tell their songs are listed in the group's playlists."""
    share = dict(usecases.help().commands)["share on|off"]
    assert "until you turn it off" in share


async def test_forget_counts_what_it_deleted_in_plain_english(db, usecases):
    await usecases.playlists.set_sharing(BOB, False)  # Bob's only record: his settings
    done = await usecases.privacy.forget(BOB, confirmed=True)
    assert done.text == "Done: I deleted everything about you (1 record)."
    # Nothing left, nor a prompt on: said plainly, not "everything (0 records)" nor a prompt stopped.
    assert (await usecases.privacy.forget(BOB, confirmed=True)).text == NOTHING_TO_FORGET


@pytest.mark.parametrize("enabled, said", [
    (True, "Done: I deleted everything about you (1 record) and stopped your daily prompt."),
    (False, "Done: I deleted everything about you (1 record)."),
])
async def test_forget_says_it_stopped_the_daily_prompt_only_when_one_was_on(db, usecases, enabled, said):
    """A user who never turned the journal on (a /mood, a /share off), or turned it off, was told
    "…and stopped your daily prompt", of a prompt that never came or had stopped already."""
    await db.users.set_journal(UserRef(BOB.platform, BOB.user_id), enabled=enabled, prompt_time=clock_time(21, 30),
                               timezone="Europe/Lisbon", chat_id=BOB.chat_id)
    assert (await usecases.privacy.forget(BOB, confirmed=True)).text == said


async def test_an_answer_a_crash_cut_short_in_the_outbox_is_exported_as_written(db, tmp_path):
    """A crash (or a full disk) in the middle of an answer's append to the outbox leaves the start
    of its line: the user's words, but no entry that can be read. /forget deleted it, /export left
    it out, so the user could neither see nor know what of theirs was kept. It is exported as
    written, under its own key, and once forgotten it is gone from the export too."""
    writer = JournalWriter(db.journal, JournalOutbox.in_data_dir(tmp_path), db.prompts)
    privacy = PrivacyUseCase(db, writer=writer)
    alice, bob = UserRef(ALICE_DM.platform, ALICE_DM.user_id), UserRef(BOB.platform, BOB.user_id)

    def answer(who: UserRef, note: str) -> bytes:
        return entry_to_line(JournalEntry(who, date(2026, 11, 20), f"p-{who.user_id}", "A song?", "Creep", "spotify:1",
                                          "Creep", "sad", -0.5, -0.3, datetime(2026, 11, 20, 21, 30, tzinfo=timezone.utc),
                                          note=note, place=None))

    whole = answer(alice, "my private words, and the rest")
    torn = whole[:whole.index(b", and the rest")]  # cut short after her words
    writer.outbox.path.write_bytes(answer(bob, "his")[:-30] + b"\n" + torn)

    exported = json.loads((await privacy.export(ALICE_DM)).data)

    assert exported["journal_cut_short"] == [torn.decode()] and exported["journal"] == []
    assert json.loads((await privacy.export(BOB)).data)["journal_cut_short"] == [answer(bob, "his")[:-30].decode()]
    await privacy.forget(ALICE_DM, confirmed=True)
    assert json.loads((await privacy.export(ALICE_DM)).data)["journal_cut_short"] == []
    assert len(json.loads((await privacy.export(BOB)).data)["journal_cut_short"]) == 1


async def test_an_entry_waiting_in_the_outbox_is_exported_and_forgotten_too(counting, clip_paths, outage):
    """An answer given while the database was down waits in the local outbox. It is the user's data:
    /export shows it, and /forget removes it, so it can't reach the database afterwards."""
    db, writer = outage.db, outage.writer
    usecases = build_usecases(db, counting, fetcher=None, writer=writer)
    alice = UserRef(ALICE_DM.platform, ALICE_DM.user_id)
    await usecases.journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    await usecases.journal.make_prompt(await db.users.get(alice))

    outage.down()
    saved = await usecases.journal.answer(ALICE_DM, "my private words", attachment(clip_paths[0]))
    assert saved.queued and writer.outbox.pending() == 1
    outage.up()  # back, not drained yet
    deadline = time.monotonic() + 20
    while isinstance(exported := await usecases.privacy.export(ALICE_DM), ErrorReply):  # the client reconnects
        assert time.monotonic() < deadline, exported
        await asyncio.sleep(0.1)
    assert writer.outbox.pending() == 1  # nothing drained it meanwhile

    exported = json.loads(exported.data)
    assert [e["note"] for e in exported["journal"]] == ["my private words"]

    done = await usecases.privacy.forget(ALICE_DM, confirmed=True)
    assert done.text.startswith("Done") and writer.outbox.pending() == 0
    await writer.drain()
    assert await db.journal.count(alice) == 0
    assert "my private words" not in outage.outbox_path.read_text()


async def test_a_file_sent_privately_lends_its_name_to_no_playlist_and_is_forgotten(db, usecases, clip_paths,
                                                                                    tmp_path):
    private = tmp_path / "voice memo for Jane.ogg"
    shutil.copy(clip_paths[2], private)
    await usecases.mood.run(ALICE_DM, attachment=attachment(private))
    shared = tmp_path / "b-side.ogg"
    shutil.copy(clip_paths[2], shared)
    reply = await usecases.mood.run(BOB, attachment=attachment(shared))

    playlist = await usecases.playlists.playlist(BOB, reply.mood)

    assert [t.title for t in playlist.tracks] == ["b-side"]
    await usecases.privacy.forget(ALICE_DM, confirmed=True)
    for name in await db.db.list_collection_names():  # her file's name went with her
        assert "Jane" not in str(await db.db[name].find().to_list()), name


async def test_a_file_journaled_privately_stays_out_of_the_group_playlist(db, usecases, clip_paths, tmp_path):
    await usecases.mood.run(ALICE, attachment=attachment(clip_paths[0]))  # Alice is seen in the group
    await usecases.journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    await usecases.journal.make_prompt(await db.users.get(UserRef("telegram", "1001")))
    private = tmp_path / "voice memo for Jane.ogg"
    shutil.copy(clip_paths[1], private)
    saved = await usecases.journal.answer(ALICE_DM, "", attachment(private))

    playlist = await usecases.playlists.playlist(BOB, saved.mood.mood)

    assert "voice memo for Jane" not in [t.title for t in playlist.tracks]


class HeldClassifier:
    """The real classifier, holding each song until the test lets it go: a /forget can come in
    while the song is being listened to."""

    def __init__(self, real) -> None:
        self.real = real
        self.listening = asyncio.Event()
        self.release = asyncio.Event()

    @property
    def main_model_version(self):
        return self.real.main_model_version

    async def classify(self, path, **kwargs):
        self.listening.set()
        await self.release.wait()
        return await self.real.classify(path, **kwargs)


async def test_a_journal_answer_in_flight_during_forget_is_not_saved_afterwards(db, counting, clip_paths):
    held = HeldClassifier(counting)
    usecases = build_usecases(db, held, fetcher=None)
    alice = UserRef(ALICE_DM.platform, ALICE_DM.user_id)
    await usecases.journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    await usecases.journal.make_prompt(await db.users.get(alice))

    answering = asyncio.create_task(usecases.journal.answer(ALICE_DM, "my private words", attachment(clip_paths[0])))
    await held.listening.wait()
    done = await usecases.privacy.forget(ALICE_DM, confirmed=True)
    held.release.set()
    reply = await answering

    assert done.text.startswith("Done")
    assert isinstance(reply, ErrorReply) and "/forget" in reply.message  # not "Saved to your journal"
    assert await db.journal.count(alice) == 0
    for name in await db.db.list_collection_names():
        assert "my private words" not in str(await db.db[name].find().to_list()), name


async def test_a_prompt_made_while_forget_runs_is_not_kept_nor_sent(db, usecases):
    """The scheduler reads the user, then records the prompt: a /forget between the two must not
    leave a prompt record behind, nor a prompt to send."""
    alice = UserRef(ALICE_DM.platform, ALICE_DM.user_id)
    await usecases.journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    erasures = db.privacy.erasures(alice)  # as the scheduler reads it, before the user
    user = await db.users.get(alice)
    await usecases.privacy.forget(ALICE_DM, confirmed=True)

    prompt = await usecases.journal.make_prompt(user, erasures=erasures)

    assert prompt is None
    assert await db.prompts.last_sent_date(alice) is None
    assert (await db.privacy.export(alice)).prompts == []


async def test_a_mood_request_in_flight_during_forget_is_not_recorded_afterwards(db, counting, clip_paths):
    held = HeldClassifier(counting)
    usecases = build_usecases(db, held, fetcher=None)
    alice = UserRef(ALICE.platform, ALICE.user_id)

    asking = asyncio.create_task(usecases.mood.run(ALICE, attachment=attachment(clip_paths[1])))
    await held.listening.wait()
    await usecases.privacy.forget(ALICE_DM, confirmed=True)
    held.release.set()
    reply = await asking

    assert reply.mood in ("happy", "energetic", "sad", "calm")  # the song's mood is still answered
    assert (await db.privacy.export(alice)).requests == []  # but nothing of Alice's is kept


@pytest.mark.parametrize("seen_before", [True, False])
async def test_a_member_who_leaves_while_their_song_is_heard_does_not_count_again(db, counting, clip_paths,
                                                                                  seen_before):
    """Bob asks /mood in the group and leaves (or is removed) while the song is listened to. The
    request was stamped with the time of the answer, after the departure, so he counted again with
    all his songs; and a first-time asker's departure was not recorded at all (never seen there:
    the request was not written yet)."""
    held = HeldClassifier(counting)
    usecases = build_usecases(db, held, fetcher=None)
    bob = UserRef(BOB.platform, BOB.user_id)
    if seen_before:
        held.release.set()
        await usecases.mood.run(BOB, attachment=attachment(clip_paths[0]))
        await db.requests.settled()
        assert await db.playlists.members_seen(BOB.place) == [bob]
        held.release.clear()
        held.listening.clear()

    asking = asyncio.create_task(usecases.mood.run(BOB, attachment=attachment(clip_paths[1])))
    await held.listening.wait()
    await usecases.playlists.member_left(BOB.platform, BOB.place.split(":", 1)[1], BOB.user_id)
    held.release.set()
    reply = await asking
    await db.requests.settled()

    assert reply.mood in ("happy", "energetic", "sad", "calm")  # he still gets his answer
    assert await db.playlists.members_seen(BOB.place) == []
    assert (await usecases.playlists.playlist(ALICE, reply.mood)).tracks == []


async def test_an_entry_set_aside_by_the_outbox_is_exported_like_the_rest(db, counting, tmp_path):
    """An answer the database refused when the outbox drained is kept aside for a human to look at,
    and /forget deletes it: it is the user's data, so /export shows it too."""
    from dataclasses import replace
    from datetime import date, datetime, timezone

    from storage.models import JournalEntry
    from storage.outbox import JournalOutbox, JournalWriter

    writer = JournalWriter(db.journal, JournalOutbox.in_data_dir(tmp_path), db.prompts)
    usecases = build_usecases(db, counting, fetcher=None, writer=writer)
    alice = UserRef(ALICE_DM.platform, ALICE_DM.user_id)
    refused = JournalEntry(user=alice, local_date=date(2026, 11, 24), prompt_id="p-refused", phrase="Today,",
                           reply_text="x", track_key="spotify:1", track_title="Song", mood="happy", valence=7.0,
                           arousal=0.2, created_at=datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc),
                           note="words the database refused")  # valence out of range: refused for good
    await writer.outbox.append(refused)
    await writer.outbox.append(replace(refused, prompt_id="p-waiting", valence=0.5, note="words still waiting"))
    await writer.drain()  # stores the good one; the refused one is set aside
    await writer.outbox.append(replace(refused, prompt_id="p-queued", valence=0.5, note="words queued"))

    exported = json.loads((await usecases.privacy.export(ALICE_DM)).data)

    assert sorted(e["note"] for e in exported["journal"]) == [
        "words queued", "words still waiting", "words the database refused"]


async def test_an_entry_saved_and_still_in_the_outbox_is_exported_once(db, counting, tmp_path):
    """A drain that stored an entry and has not yet taken it out of the outbox file: /export reads
    it in both places, and shows it once."""
    from datetime import date, datetime, timezone

    from storage.models import JournalEntry
    from storage.outbox import JournalOutbox, JournalWriter

    writer = JournalWriter(db.journal, JournalOutbox.in_data_dir(tmp_path), db.prompts)
    usecases = build_usecases(db, counting, fetcher=None, writer=writer)
    entry = JournalEntry(user=UserRef(ALICE_DM.platform, ALICE_DM.user_id), local_date=date(2026, 11, 24),
                         prompt_id="p-both", phrase="Today,", reply_text="x", track_key="spotify:1",
                         track_title="Song", mood="happy", valence=0.5, arousal=0.2,
                         created_at=datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc), note="words saved once")
    await db.journal.add(entry)
    await writer.outbox.append(entry)

    exported = json.loads((await usecases.privacy.export(ALICE_DM)).data)

    assert [e["note"] for e in exported["journal"]] == ["words saved once"]


async def test_a_forgotten_prompt_is_not_answerable_from_memory_in_an_outage(counting, clip_paths, outage):
    """The process remembers the prompts it sent, to accept answers while the database is down. A
    prompt the user deleted with /forget is gone there too: an answer to it is refused, as it is
    with the database up, not queued and written back later."""
    db, writer = outage.db, outage.writer
    usecases = build_usecases(db, counting, fetcher=None, writer=writer)
    alice = UserRef(ALICE_DM.platform, ALICE_DM.user_id)
    await usecases.journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    prompt = await usecases.journal.make_prompt(await db.users.get(alice))
    await usecases.journal.prompt_delivered(prompt.prompt_id, "903")
    await usecases.privacy.forget(ALICE_DM, confirmed=True)

    outage.down()
    reply = await usecases.journal.answer(ALICE_DM, "after forgetting", attachment(clip_paths[0]),
                                          prompt_message_id="903")

    assert isinstance(reply, ErrorReply) and writer.outbox.pending() == 0


async def answer_queued_in_an_outage(counting, clip_paths, outage, words: str):
    """Alice's journal on, a prompt sent, then the database down: her answer waits in the outbox.
    Returns the use cases and the outbox's writer."""
    db, writer = outage.db, outage.writer
    usecases = build_usecases(db, counting, fetcher=None, writer=writer)
    await usecases.journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    await usecases.journal.make_prompt(await db.users.get(UserRef(ALICE_DM.platform, ALICE_DM.user_id)))
    outage.down()
    assert (await usecases.journal.answer(ALICE_DM, words, attachment(clip_paths[0]))).queued
    return usecases, writer


async def test_forget_with_the_database_down_says_what_it_did_delete(counting, clip_paths, outage, caplog):
    usecases, writer = await answer_queued_in_an_outage(counting, clip_paths, outage, "queued words")

    with caplog.at_level(logging.INFO, logger="bot.usecases.privacy"):
        done = await usecases.privacy.forget(ALICE_DM, confirmed=True)

    assert writer.outbox.pending() == 0  # the answer waiting for the database is gone…
    assert "Nothing was deleted" not in done.text and "1 journal entry" in done.text  # …and the reply says so
    assert "try /forget again" in done.text
    # A deletion asked for and not done is the operator's to follow: whose, and how far it got.
    (undone,) = [r for r in caplog.records if r.getMessage() == "privacy.forget_not_done"]
    assert (undone.levelno, undone.user, undone.deleted) == (logging.WARNING, ALICE_DM.user_id, 1)


class DrainWhenTheJournalIsRead(monitoring.CommandListener):
    """Watches the driver's commands: once a read of the journal has its answer, the outbox is
    drained (by the real drain, on a client and a loop of its own) before anything else happens."""

    def __init__(self, uri: str, db_name: str, outbox_path) -> None:
        self.uri, self.db_name, self.outbox_path = uri, db_name, outbox_path
        self.journal_reads: set[int] = set()
        self.drained = 0

    def started(self, event) -> None:
        if event.command_name == "find" and event.command.get("find") == "journal":
            self.journal_reads.add(event.request_id)

    def succeeded(self, event) -> None:
        if event.request_id in self.journal_reads and not self.drained:
            thread = threading.Thread(target=lambda: asyncio.run(self._drain()))
            thread.start()
            thread.join()

    def failed(self, event) -> None:
        pass

    async def _drain(self) -> None:
        from storage.outbox import JournalOutbox

        other = await Database.connect(self.uri, self.db_name)
        try:
            self.drained = await JournalOutbox(self.outbox_path).drain(other.journal)
        finally:
            await other.close()


async def test_an_answer_drained_from_the_outbox_while_export_reads_is_exported(counting, clip_paths, outage):
    """Once the database is back, the outbox is drained in the background. An /export reading the
    database, then the outbox, missed an answer that moved from the one to the other in between."""
    from storage.outbox import JournalOutbox, JournalWriter

    await answer_queued_in_an_outage(counting, clip_paths, outage, "words on their way")
    outage.up()
    watcher = DrainWhenTheJournalIsRead(outage.server.uri, outage.db.db.name, outage.outbox_path)
    client = AsyncMongoClient(outage.server.uri, tz_aware=True, tzinfo=timezone.utc, event_listeners=[watcher])
    watched = Database(client, client[outage.db.db.name])
    try:
        privacy = PrivacyUseCase(watched, writer=JournalWriter(watched.journal, JournalOutbox(outage.outbox_path), watched.prompts))

        exported = await privacy.export(ALICE_DM)

        assert watcher.drained == 1  # it moved while the export read
        assert [e["note"] for e in json.loads(exported.data)["journal"]] == ["words on their way"]
    finally:
        await client.close()


async def test_a_forget_the_database_refused_leaves_the_daily_prompt_on(counting, outage):
    """The reply says nothing was deleted and asks to try again: the user's journal is as it was,
    and so is their daily prompt (it was taken off the scheduler, silently, until the bot restarted)."""
    db, writer = outage.db, outage.writer
    usecases = build_usecases(db, counting, fetcher=None, writer=writer)
    scheduler = PromptScheduler(db, usecases.journal)
    usecases.attach_schedule(scheduler)
    await usecases.journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    outage.down()

    done = await usecases.privacy.forget(ALICE_DM, confirmed=True)

    assert "Nothing was deleted" in done.text
    assert scheduler.is_scheduled(UserRef(ALICE_DM.platform, ALICE_DM.user_id))


class CutAfterFirstDelete(monitoring.CommandListener):
    """Watches the driver's commands: the database goes down as soon as one delete has succeeded,
    not counting the deletes of a recorded request's repair marks (`place_repairs`, deleted once
    the request's summaries are written, maybe while /forget starts), which are no /forget's."""

    def __init__(self, outage) -> None:
        self.outage = outage
        self.cut = False
        self.deletes: set[int] = set()

    def started(self, event) -> None:
        if event.command_name == "delete" and event.command.get("delete") != PLACE_REPAIRS:
            self.deletes.add(event.request_id)

    def succeeded(self, event) -> None:
        if event.request_id in self.deletes and not self.cut:
            self.cut = True
            self.outage.down()

    def failed(self, event) -> None:
        pass


async def test_a_forget_cut_short_by_the_database_leaves_no_song_counting_nor_prompt_coming(counting, outage):
    """The database goes down between two of /forget's deletions. What is left must not be worse
    than before: a member who had said /share off must not count in the group's playlist (her
    settings went first and her songs stayed, counting as a sharer's), no prompt may come, and the
    reply must not say that nothing was deleted."""
    # As Database.connect makes its client (journaled writes outlive the server's death), watched.
    client = AsyncMongoClient(outage.server.uri, tz_aware=True, tzinfo=timezone.utc, w=1, journal=True,
                              serverSelectionTimeoutMS=300, event_listeners=[CutAfterFirstDelete(outage)])
    db = Database(client, client[outage.db.db.name])
    try:
        usecases = build_usecases(db, counting, fetcher=None)
        scheduler = PromptScheduler(db, usecases.journal)
        usecases.attach_schedule(scheduler)
        alice = UserRef(ALICE.platform, ALICE.user_id)
        await usecases.journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
        await usecases.playlists.set_sharing(ALICE, False)
        await db.requests.add(MoodRequest(alice, ALICE.place, "spotify:alices-song", "sad",
                                          datetime.now(timezone.utc), title="Alice's song"))

        done = await usecases.privacy.forget(ALICE_DM, confirmed=True)

        assert "Nothing was deleted" not in done.text and "try /forget again" in done.text
        outage.up()
        deadline = time.monotonic() + 20
        while True:  # the client reconnects
            try:
                playlist = await db.playlists.playlist(ALICE.place, "sad")
                user = await db.users.get(alice)
                break
            except StorageError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
        assert playlist == []
        assert user is None or not user.journal_enabled  # a restart schedules no prompt for her
        assert not scheduler.is_scheduled(alice)
    finally:
        await client.close()


class CutAfterDeleteIn(monitoring.CommandListener):
    """Watches the driver's commands: the database goes down once a delete in `collection` has succeeded."""

    def __init__(self, outage, collection: str) -> None:
        self.outage, self.collection = outage, collection
        self.deletes: set[int] = set()

    def started(self, event) -> None:
        if event.command_name == "delete" and event.command.get("delete") == self.collection:
            self.deletes.add(event.request_id)

    def succeeded(self, event) -> None:
        if event.request_id in self.deletes:
            self.outage.down()

    def failed(self, event) -> None:
        pass


async def test_a_forget_cut_short_after_the_requests_leaves_no_vote_that_share_on_would_bring_back(
        counting, outage):
    """The database goes down once /forget has deleted a member's requests. Her playlist votes are
    kept apart (place_tracks, summed up from the requests): were they still there, a /share on
    instead of a second /forget would bring back the votes of songs whose requests are gone."""
    client = AsyncMongoClient(outage.server.uri, tz_aware=True, tzinfo=timezone.utc, w=1, journal=True,
                              serverSelectionTimeoutMS=300, event_listeners=[CutAfterDeleteIn(outage, "requests")])
    db = Database(client, client[outage.db.db.name])
    try:
        usecases = build_usecases(db, counting, fetcher=None)
        alice = UserRef(ALICE.platform, ALICE.user_id)
        await db.requests.add(MoodRequest(alice, ALICE.place, "spotify:alices-song", "sad",
                                          datetime.now(timezone.utc), title="Alice's song"))
        assert [t.title for t in await db.playlists.playlist(ALICE.place, "sad")] == ["Alice's song"]

        done = await usecases.privacy.forget(ALICE_DM, confirmed=True)

        assert "try /forget again" in done.text
        outage.up()
        deadline = time.monotonic() + 20
        while True:  # the client reconnects
            try:
                await usecases.playlists.set_sharing(ALICE, True)
                playlist = await db.playlists.playlist(ALICE.place, "sad")
                break
            except StorageError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
        assert playlist == []
    finally:
        await client.close()


async def test_an_answer_failing_over_to_the_outbox_during_forget_is_not_queued_after_it(counting, clip_paths,
                                                                                         outage):
    """The database is down: an answer's write is on its way to failing (its server selection
    times out) when /forget empties the outbox. The answer must not be queued after that, to be
    written back by the next drain once the database is up."""
    db, writer = outage.db, outage.writer
    usecases = build_usecases(db, counting, fetcher=None, writer=writer)
    alice = UserRef(ALICE_DM.platform, ALICE_DM.user_id)
    await usecases.journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    await usecases.journal.make_prompt(await db.users.get(alice))
    outage.down()

    answering = asyncio.create_task(usecases.journal.answer(ALICE_DM, "words in flight", attachment(clip_paths[0])))
    while not db.journal._adding:  # the entry's write has begun, and waits for the database
        assert not answering.done(), answering.result()
        await asyncio.sleep(0.005)
    await usecases.privacy.forget(ALICE_DM, confirmed=True)
    reply = await answering

    assert isinstance(reply, ErrorReply) and "/forget" in reply.message  # not "Saved, queued"
    assert writer.outbox.pending() == 0
    outage.up()
    deadline = time.monotonic() + 20
    while await writer.drain() == 0 and writer.outbox.pending():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert await db.journal.count(alice) == 0


async def test_an_answer_in_flight_when_the_database_refuses_forget_is_not_queued_after_it(counting, clip_paths,
                                                                                         outage):
    """/forget marks the user as being erased twice: first thing, and again as it deletes. The
    database down, it is refused at its first step (the settings) and never reaches the deletions:
    only the first mark drops the answer that was still being listened to. Without it, that answer
    went to the outbox /forget had just emptied, and the next drain wrote it back."""
    held = HeldClassifier(counting)
    db, writer = outage.db, outage.writer
    usecases = build_usecases(db, held, fetcher=None, writer=writer)
    alice = UserRef(ALICE_DM.platform, ALICE_DM.user_id)
    await usecases.journal.enable(ALICE_DM, "21:30", "Europe/Lisbon")
    await usecases.journal.make_prompt(await db.users.get(alice))
    answering = asyncio.create_task(usecases.journal.answer(ALICE_DM, "words in flight", attachment(clip_paths[0])))
    await held.listening.wait()  # its prompt found, the song being listened to
    outage.down()

    done = await usecases.privacy.forget(ALICE_DM, confirmed=True)
    held.release.set()
    reply = await answering

    assert "Nothing was deleted" in done.text and "try /forget again" in done.text
    assert isinstance(reply, ErrorReply) and "/forget" in reply.message  # not "Saved, queued"
    assert writer.outbox.pending() == 0
    outage.up()
    deadline = time.monotonic() + 20
    while True:  # the client reconnects
        try:
            await writer.drain()
            count = await db.journal.count(alice)
            break
        except StorageError:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    assert count == 0


async def test_the_same_number_on_telegram_and_discord_is_two_people_to_export_and_forget(db, counting, clip_paths,
                                                                                          tmp_path):
    """Telegram's user 1001 and Discord's user 1001 are different people: one's /export shows
    nothing of the other's, and one's /forget leaves the other's settings, journal, requests,
    queued answers and daily prompt alone."""
    from dataclasses import replace

    from storage.outbox import JournalOutbox, JournalWriter

    writer = JournalWriter(db.journal, JournalOutbox.in_data_dir(tmp_path), db.prompts)
    usecases = build_usecases(db, counting, fetcher=None, writer=writer)
    scheduler = PromptScheduler(db, usecases.journal)
    usecases.attach_schedule(scheduler)
    on_discord = Caller("discord", ALICE_DM.user_id, chat_id="9001")
    in_a_server = Caller("discord", ALICE_DM.user_id, place="discord:77", chat_id="9002")
    for dm, group, words in ((ALICE_DM, ALICE, "telegram words"), (on_discord, in_a_server, "discord words")):
        await usecases.journal.enable(dm, "21:30", "Europe/Lisbon")
        await usecases.journal.make_prompt(await db.users.get(UserRef(dm.platform, dm.user_id)))
        await usecases.journal.answer(dm, words, attachment(clip_paths[0]))
        await usecases.mood.run(group, attachment=attachment(clip_paths[1]))
    stored = (await db.privacy.export(UserRef("discord", ALICE_DM.user_id))).journal[0]
    await writer.outbox.append(replace(stored, prompt_id="queued", note="discord words queued"))

    telegram_export = (await usecases.privacy.export(ALICE_DM)).data.decode()
    assert "telegram words" in telegram_export and "discord" not in telegram_export
    discord_export = json.loads((await usecases.privacy.export(on_discord)).data)
    assert sorted(e["note"] for e in discord_export["journal"]) == ["discord words", "discord words queued"]

    await usecases.privacy.forget(on_discord, confirmed=True)

    alice = UserRef(ALICE_DM.platform, ALICE_DM.user_id)
    assert scheduler.is_scheduled(alice) and not scheduler.is_scheduled(UserRef("discord", alice.user_id))
    kept = await db.privacy.export(alice)
    assert (len(kept.journal), len(kept.requests), len(kept.prompts)) == (1, 1, 1) and kept.user is not None
    assert writer.outbox.pending() == 0
    for name in await db.db.list_collection_names():
        assert await db.db[name].count_documents({"platform": "discord"}) == 0, name
