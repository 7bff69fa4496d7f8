"""A hostile audit of /export and /forget: everything about a user comes out, and goes."""
from __future__ import annotations

import gzip
import json
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock_time

from bot.replies import Caller, ExportReply
from bot.usecases.privacy import EXPORT_MAX_BYTES, PrivacyUseCase
from storage.codec import journal_to_doc, prompt_to_doc, request_to_doc
from storage.models import JournalEntry, MoodRequest, SentPrompt, UserExport, UserRef
from storage.privacy import PERSONAL_COLLECTIONS
from storage.schema import (DEPARTURES, INDEXES, JOURNAL, JOURNAL_MEMBERS, JOURNAL_TRACKS, PLACE_MEMBERS, PLACE_TRACKS, PROMPTS, REQUESTS,
                            USERS, VALIDATORS)

T0 = datetime(2023, 1, 1, 21, 0, tzinfo=timezone.utc)
HEAVY = Caller("telegram", "4242", chat_id="4242")


async def seed_heavy_user(db, ref: UserRef, *, days: int, requests: int) -> None:
    """Years of journal (a long note a day: a Telegram message holds 4096 characters) and
    thousands of /mood requests."""
    note = "words of my own " * 250  # 4 kB
    journal, prompts = [], []
    for n in range(days):
        at = T0 + timedelta(days=n)
        prompt_id = f"p{n:06d}"
        prompts.append(prompt_to_doc(SentPrompt(ref, prompt_id, "Which song was today?", at.date(), at,
                                                ref.user_id, str(n), answered_at=at)))
        journal.append(journal_to_doc(JournalEntry(
            user=ref, local_date=at.date(), prompt_id=prompt_id, phrase="Which song was today?",
            reply_text=f"Creep {note}", track_key=f"spotify:{n:022d}", track_title="Radiohead – Creep",
            mood="sad", valence=-0.5, arousal=-0.2, created_at=at, note=note)))
    asked = [request_to_doc(MoodRequest(ref, "telegram:-500", f"spotify:{n % 5000:022d}", "happy",
                                        T0 + timedelta(minutes=n), title=f"Some song {n}"))
             for n in range(requests)]
    for name, docs in ((JOURNAL, journal), (PROMPTS, prompts), (REQUESTS, asked)):
        for start in range(0, len(docs), 5000):
            await db.db[name].insert_many(docs[start:start + 5000], ordered=False)


async def test_a_heavy_users_export_fits_every_front_ends_upload_limit_and_is_whole(db):
    """Two years of long journal answers and 10 000 /mood requests: about 15 MB of JSON, over
    Discord's upload limit without server boosts (10 MB), which would refuse the file."""
    ref = UserRef(HEAVY.platform, HEAVY.user_id)
    await seed_heavy_user(db, ref, days=2 * 365, requests=10_000)

    export = await PrivacyUseCase(db).export(HEAVY)

    assert isinstance(export, ExportReply)
    assert len(export.data) <= EXPORT_MAX_BYTES
    assert export.filename.endswith(".json.gz")
    raw = gzip.decompress(export.data)
    assert len(raw) > EXPORT_MAX_BYTES
    data = json.loads(raw)
    assert (len(data["journal"]), len(data["prompts"]), len(data["requests"])) == (2 * 365, 2 * 365, 10_000)


def test_every_collection_that_names_a_user_is_exported_and_forgotten():
    """A collection added later with documents about users (a `user_id` in its validator) must be
    in PERSONAL_COLLECTIONS, which /forget empties of the user; and the export has a key for each
    (and one for the outbox's lines a crash cut short, which are in no collection)."""
    naming_users = {name for name, validator in VALIDATORS.items()
                    if "user_id" in validator["$jsonSchema"]["properties"]}
    assert naming_users == set(PERSONAL_COLLECTIONS)
    assert set(VALIDATORS) == set(INDEXES)  # no collection without a validator to look at
    export_keys = {USERS: "user", JOURNAL: "journal", REQUESTS: "requests", PROMPTS: "prompts",
                   DEPARTURES: "departures", PLACE_TRACKS: "place_tracks", JOURNAL_TRACKS: "journal_tracks",
                   PLACE_MEMBERS: "place_members", JOURNAL_MEMBERS: "journal_members"}
    assert {export_keys[name] for name in PERSONAL_COLLECTIONS} | {"journal_cut_short"} == set(
        UserExport.__dataclass_fields__)


async def test_the_export_carries_every_field_stored_about_the_user(db):
    """Each field of each of the user's documents, as the repositories write them, is in the
    export: a field added to a document but not to its export would be kept but never shown."""
    ref = UserRef("chat", "u-audit")
    await db.users.set_journal(ref, enabled=True, prompt_time=clock_time(21, 30), timezone="Europe/Oslo", chat_id="dm")
    await db.users.set_sharing(ref, False)
    await db.prompts.record_sent(ref, "p1", "A phrase", date(2026, 11, 20), T0, "dm", None)
    await db.prompts.set_message_id("p1", "m1")
    await db.prompts.mark_answered("p1", T0)
    await db.journal.add(JournalEntry(user=ref, local_date=date(2026, 11, 20), prompt_id="p1", phrase="A phrase",
                                      reply_text="Creep my words", track_key="spotify:1", track_title="Creep",
                                      mood="sad", valence=-0.5, arousal=-0.2, created_at=T0, note="my words",
                                      place="chat:g1"))
    await db.requests.add(MoodRequest(ref, "chat:g1", "spotify:1", "sad", T0, title="Creep"))
    await db.playlists.member_left("chat:g1", ref, T0 + timedelta(hours=1))

    exported = json.loads((await PrivacyUseCase(db).export(Caller(ref.platform, ref.user_id))).data)

    sections = {USERS: [exported["user"]], JOURNAL: exported["journal"], REQUESTS: exported["requests"],
                PROMPTS: exported["prompts"], DEPARTURES: exported["departures"],
                PLACE_TRACKS: exported["place_tracks"], JOURNAL_TRACKS: exported["journal_tracks"],
                PLACE_MEMBERS: exported["place_members"], JOURNAL_MEMBERS: exported["journal_members"]}
    for name, items in sections.items():
        docs = await db.db[name].find({"platform": ref.platform, "user_id": ref.user_id}).to_list()
        assert len(docs) == len(items), name
        for doc, item in zip(docs, items):
            stored = set(doc) - {"_id", "platform", "user_id"}
            shown = set(item) - {"user", "platform", "user_id"}
            assert stored <= shown, (name, stored - shown)
