"""What Telegram refuses mid-answer, and the answer still arrives once: a status message the user
deleted, a server error on the answer, a group upgraded to a supergroup while the bot was working,
a forum topic's chart. The songs are in the track cache (keyed by the file's hash), so each gets a
real mood without a classifier; a slow getFile (a 429 waited out) makes the status message appear.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from bot.frontends import render
from storage.models import MoodRequest, UserRef
from tests.frontends.test_telegram_album import cached_songs

GROUP = -100777
ALICE, BOB = 42, 43
QUIET_S = 1.0  # long enough for the bot to have said whatever it was going to say


async def shown_after(fake, mark: int) -> list[tuple[str, str]]:
    """(method, text) of every text the chats show after `mark`, once the bot is quiet."""
    await asyncio.sleep(QUIET_S)
    return [(c.method, c.text) for c in fake.calls[mark:]
            if c.method in ("sendMessage", "editMessageText") and c.status == 200]


# Server errors -------------------------------------------------------------------------------


async def test_a_server_error_on_the_answer_is_retried_and_the_answer_said_once(telegram, db):
    fake, _ = telegram
    (item, title, _), = await cached_songs(fake, db, 1)
    fake.fail_next("sendMessage", times=1, status=502, description="Bad Gateway")
    mark = fake.mark()
    await fake.user_sends(None, **item)
    shown = await shown_after(fake, mark)
    assert len(shown) == 1 and title in shown[0][1], shown


async def test_a_chart_refused_by_a_server_error_is_sent_again(telegram, db):
    """An upload is a multipart body, built anew for the second try."""
    fake, _ = telegram
    await db.requests.add(MoodRequest(UserRef("telegram", str(BOB)), f"telegram:{GROUP}", f"spotify:{0:022d}",
                                      "sad", datetime.now(timezone.utc), title="Radiohead – Creep"))
    fake.fail_next("sendPhoto", times=1, status=503, description="Service Unavailable")
    mark = fake.mark()
    await fake.user_sends("/servermood", chat=GROUP, user=ALICE)
    chart = await fake.wait_for("sendPhoto", after=mark)
    assert chart.files["photo"].startswith(b"\x89PNG")
    await asyncio.sleep(QUIET_S)
    assert [c.status for c in fake.calls_of("sendPhoto", after=mark)] == [503, 200]
    assert render.GENERIC_ERROR not in [c.text for c in fake.calls[mark:] if c.status == 200]


# Forum topics --------------------------------------------------------------------------------


async def test_the_mood_of_the_week_and_its_chart_stay_in_the_forum_topic(telegram, db):
    fake, _ = telegram
    await db.requests.add(MoodRequest(UserRef("telegram", str(BOB)), f"telegram:{GROUP}", f"spotify:{0:022d}",
                                      "sad", datetime.now(timezone.utc), title="Radiohead – Creep"))
    mark = fake.mark()
    await fake.user_sends("/servermood", chat=GROUP, user=ALICE, topic=77)
    chart = await fake.wait_for("sendPhoto", after=mark)
    summary, = fake.calls_of("sendMessage", after=mark)
    assert int(summary.params["message_thread_id"]) == 77 and int(chart.params["message_thread_id"]) == 77
