"""A large /export is decoded and written out of the event loop, without holding its records as objects."""
from __future__ import annotations

import json
import threading
from datetime import date, datetime, timedelta, timezone

import storage.codec
from bot.replies import Caller, ExportReply
from bot.usecases.privacy import PrivacyUseCase
from storage.codec import journal_to_doc, prompt_to_doc, request_to_doc
from storage.database import Database
from storage.models import JournalEntry, MoodRequest, SentPrompt, UserRef
from tests.loop_probes import calls_on_this_thread, oldest_generation_growth

HEAVY = Caller("chat", "heavy", chat_id="heavy")
REF = UserRef("chat", "heavy")
T0 = datetime(2026, 1, 1, 21, tzinfo=timezone.utc)


async def seed(db: Database, n: int) -> None:
    """`n` journal entries, requests and prompts of HEAVY's, written as documents in bulk."""
    entries = [JournalEntry(REF, date(2026, 1, 1) + timedelta(days=d), f"p{d}", "Song?", f"song {d}",
                            f"spotify:t{d % 50}", f"Song {d}", "calm", 0.25, -0.5, T0 + timedelta(days=d),
                            note=f"words of day {d}") for d in range(n)]
    requests = [MoodRequest(REF, None, f"spotify:t{d % 50}", "calm", T0 + timedelta(hours=d), f"Song {d}")
                for d in range(n)]
    prompts = [SentPrompt(REF, f"p{d}", "Song?", date(2026, 1, 1) + timedelta(days=d), T0 + timedelta(days=d),
                          "heavy", str(d)) for d in range(n)]
    for name, docs in (("journal", map(journal_to_doc, entries)), ("requests", map(request_to_doc, requests)),
                       ("prompts", map(prompt_to_doc, prompts))):
        await db.db[name].insert_many(list(docs))


async def test_the_event_loop_decodes_none_of_an_exports_documents(db):
    """Each of a user's documents became an object on the event loop, all in one go after the last
    read: 5 000 journal entries with their requests and prompts stalled every chat for 60-170 ms
    (the objects, and the garbage collector's full pass they set off). The loop now only receives
    the database's bytes; a worker thread decodes them."""
    await seed(db, 300)
    loop_thread = threading.get_ident()
    assert threading.get_ident() == loop_thread
    with calls_on_this_thread(storage.codec, lambda name: name.endswith("_from_doc")) as decoded_on_loop:
        reply = await PrivacyUseCase(db).export(HEAVY)
    assert isinstance(reply, ExportReply)
    exported = json.loads(reply.data)
    assert [len(exported[part]) for part in ("journal", "requests", "prompts")] == [300, 300, 300]
    assert exported["journal"][299]["note"] == "words of day 299"
    assert set(decoded_on_loop) <= {"user_from_doc"}  # one document: the settings


async def test_an_export_is_made_without_holding_its_records_as_objects(db):
    """The JSON was made from the whole export as objects (a dataclass per record, and `asdict`'s
    copy of each): tens of thousands of objects at once, whose garbage collector's full passes
    (85-150 ms for a 5 000-entry journal) stop the event loop as well as the thread writing. Each
    record is now decoded, written and dropped in turn. Counted: the objects the collector tracks
    that outlive its younger generations while the export is made."""
    await seed(db, 1000)
    with oldest_generation_growth() as grown:
        reply = await PrivacyUseCase(db).export(HEAVY)
    assert isinstance(reply, ExportReply)
    exported = json.loads(reply.data)
    assert [len(exported[part]) for part in ("journal", "requests", "prompts")] == [1000, 1000, 1000]
    assert grown.most < 1000  # were ~8 500 (~250 now): the documents, then a dataclass and an `asdict` dict per record
