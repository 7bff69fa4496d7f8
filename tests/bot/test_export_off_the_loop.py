"""A large /export is decoded and written out of the event loop, without holding its records as objects."""
from __future__ import annotations

import gc
import json
import sys
import threading
from datetime import date, datetime, timedelta, timezone

import storage.codec
from bot.replies import Caller, ExportReply
from bot.usecases.privacy import PrivacyUseCase
from storage.codec import journal_to_doc, prompt_to_doc, request_to_doc
from storage.database import Database
from storage.models import JournalEntry, MoodRequest, SentPrompt, UserRef

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
    decoded_on_loop: list[str] = []

    def watch(frame, event, _arg):
        code = frame.f_code
        if event == "call" and code.co_filename == storage.codec.__file__ and code.co_name.endswith("_from_doc"):
            decoded_on_loop.append(code.co_name)

    assert threading.get_ident() == loop_thread
    sys.setprofile(watch)  # this thread's calls only: the loop's
    try:
        reply = await PrivacyUseCase(db).export(HEAVY)
    finally:
        sys.setprofile(None)
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
    gc.collect()
    baseline = len(gc.get_objects(generation=2))
    most = [baseline]

    def after(phase, info):
        if phase == "stop" and info["generation"] == 1:  # its survivors have just joined the oldest
            most[0] = max(most[0], len(gc.get_objects(generation=2)))

    gc.callbacks.append(after)
    try:
        reply = await PrivacyUseCase(db).export(HEAVY)
    finally:
        gc.callbacks.remove(after)
    assert isinstance(reply, ExportReply)
    exported = json.loads(reply.data)
    assert [len(exported[part]) for part in ("journal", "requests", "prompts")] == [1000, 1000, 1000]
    assert most[0] - baseline < 1000  # were ~8 500 (~250 now): the documents, then a dataclass and an `asdict` dict per record
