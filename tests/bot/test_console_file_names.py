"""The files the console saves are named by the user's own date and time, charts as the export: a
chart and an export taken in the same minute carry the same day. At noon UTC on 31 December it is
already 02:00 on New Year's Day in Kiritimati (UTC+14)."""
from __future__ import annotations

import io
from datetime import date, datetime, time, timezone

from bot.frontends.console import CONSOLE_CALLER, ConsoleFrontend
from bot.usecases import JournalUseCase, MoodUseCase, PlaylistUseCase, PrivacyUseCase, UseCases
from storage.models import JournalEntry, UserRef

NOON_UTC_ON_NEW_YEARS_EVE = datetime(2026, 12, 31, 12, 0, tzinfo=timezone.utc)
CONSOLE_REF = UserRef(CONSOLE_CALLER.platform, CONSOLE_CALLER.user_id)


def usecases_at(db, classifier, now) -> UseCases:
    mood = MoodUseCase(db, classifier, fetcher=None, now=now)
    return UseCases(mood=mood, journal=JournalUseCase(db, mood, now=now), playlists=PlaylistUseCase(db, now=now),
                    privacy=PrivacyUseCase(db, now=now))


async def test_charts_are_named_by_the_users_date_and_time_as_the_export_is(db, counting, clip_paths, tmp_path):
    now = lambda: NOON_UTC_ON_NEW_YEARS_EVE  # noqa: E731
    await db.users.set_journal(CONSOLE_REF, enabled=True, prompt_time=time(21, 30), timezone="Pacific/Kiritimati",
                               chat_id="local")
    await db.journal.add(JournalEntry(user=CONSOLE_REF, local_date=date(2027, 1, 1), prompt_id="p1", phrase="Today,",
                                      reply_text="x", track_key="t1", track_title="Song", mood="calm", valence=0.4,
                                      arousal=-0.3, created_at=NOON_UTC_ON_NEW_YEARS_EVE))
    lines = f"/mood {clip_paths[0]}\n/stats\n/servermood\n/export\n/quit\n"
    console = ConsoleFrontend(usecases_at(db, counting, now), io.StringIO(lines), io.StringIO(), data_dir=tmp_path,
                              now=now)

    await console.run()

    assert [p.name for p in (tmp_path / "exports").iterdir()] == ["moodbot-export-2027-01-01.json"]
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == [
        "20270101-020000-mood-map.png", "20270101-020000-moods-by-week.png", "20270101-020000-server-mood.png",
        "20270101-020000-year-in-pixels.png"]
