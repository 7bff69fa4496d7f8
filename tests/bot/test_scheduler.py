"""Daily prompts: one job per opted-in user in their own time zone, rebuilt from the database at
start, missed prompts sent at start, and delivery through the front-end of the user's platform."""
from __future__ import annotations

import asyncio
import contextlib
import io
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.frontends.console import ConsoleFrontend
from bot.logs import begin_request
from bot.replies import Caller, ErrorReply, TextReply
from bot.scheduler import DailyAt, PromptScheduler, missed_day, prompt_trigger
from bot.usecases.journal import PROMPT_NOT_SENT, PROMPT_NOT_SENT_NOW, PROMPT_REFUSED_TO_THE_BOT, JournalUseCase
from bot.usecases.mood import MoodUseCase
from bot.usecases.privacy import PrivacyUseCase
from bot.usecases.ports import DeliveryFailed, DeliveryUncertain, RecipientGone, SenderRefused
from storage.models import StorageError, User, UserRef
from tests.frontends.test_request_ids import lines_of
from tests.prompt_times import FAR_IN_LISBON

LISBON = ZoneInfo("Europe/Lisbon")


# The year of the clock a test that starts the scheduler (APScheduler) on a fixed reading goes by:
# in the future. APScheduler fires its jobs by the machine's own clock, and a job whose first run
# (after a reading in the past) had passed ran at once whenever the machine's time of day lay
# within the grace period after a test user's prompt time: a second prompt, failing the test at
# those hours only (from 18:00 UTC for a user at 18:00 Lisbon, say).
STARTED_YEAR = 2046


def lisbon_user(hour: int, minute: int, user_id: str = "local") -> User:
    return User("console", user_id, timezone="Europe/Lisbon", prompt_time=time(hour, minute),
                journal_enabled=True, chat_id=user_id)


def test_the_prompt_keeps_its_local_time_across_the_dst_change():
    trigger = prompt_trigger(lisbon_user(21, 30))
    # Lisbon moves from UTC+0 to UTC+1 on 2026-03-29 and back on 2026-10-25.
    before = trigger.get_next_fire_time(None, datetime(2026, 3, 28, 12, 0, tzinfo=timezone.utc))
    on_the_day = trigger.get_next_fire_time(None, datetime(2026, 3, 29, 12, 0, tzinfo=timezone.utc))
    autumn = trigger.get_next_fire_time(None, datetime(2026, 10, 25, 12, 0, tzinfo=timezone.utc))

    assert before.astimezone(timezone.utc) == datetime(2026, 3, 28, 21, 30, tzinfo=timezone.utc)
    assert on_the_day.astimezone(timezone.utc) == datetime(2026, 3, 29, 20, 30, tzinfo=timezone.utc)
    assert autumn.astimezone(timezone.utc) == datetime(2026, 10, 25, 21, 30, tzinfo=timezone.utc)
    for fire in (before, on_the_day, autumn):
        local = fire.astimezone(LISBON)
        assert (local.hour, local.minute) == (21, 30)


def test_a_prompt_time_inside_the_spring_gap_still_fires_that_day():
    # 01:30 does not exist in Lisbon on 2026-03-29 (01:00 -> 02:00): the prompt must not skip the day.
    trigger = prompt_trigger(lisbon_user(1, 30))
    fire = trigger.get_next_fire_time(None, datetime(2026, 3, 29, 0, 0, tzinfo=timezone.utc))
    assert fire.astimezone(LISBON).date().isoformat() == "2026-03-29"


def test_a_prompt_time_in_the_repeated_autumn_hour_fires_once_and_the_days_go_on():
    # 01:30 happens twice in Lisbon on 2026-10-25 (02:00 -> 01:00). The next fire time after the
    # second 01:30 must be the next day's, never that same instant again: the scheduler asks for fire
    # times until one is in the future, so a trigger that stands still hangs the bot's event loop.
    trigger = prompt_trigger(lisbon_user(1, 30))
    fires = [trigger.get_next_fire_time(None, datetime(2026, 10, 24, 12, 0, tzinfo=timezone.utc))]
    for _ in range(3):
        fires.append(trigger.get_next_fire_time(fires[-1], fires[-1] + timedelta(seconds=1)))

    assert all(earlier < later for earlier, later in zip(fires, fires[1:]))
    assert [f.astimezone(LISBON).date().isoformat() for f in fires] == [
        "2026-10-25", "2026-10-26", "2026-10-27", "2026-10-28"]  # one prompt a day, the change day too
    assert all((f.astimezone(LISBON).hour, f.astimezone(LISBON).minute) == (1, 30) for f in fires)


def test_after_a_long_stall_the_next_fire_time_is_the_first_after_the_previous_not_after_now():
    """APScheduler asks a trigger for the fire time after the previous one and judges a late one
    itself (its misfire grace): a trigger that answered from `now` instead hid a prompt missed while
    the event loop or the machine was asleep, and the scheduler never saw the day to skip or send."""
    trigger = prompt_trigger(lisbon_user(21, 30))
    previous = datetime(2026, 11, 20, 21, 30, tzinfo=timezone.utc)
    fire = trigger.get_next_fire_time(previous, datetime(2026, 11, 22, 23, 0, tzinfo=timezone.utc))
    assert fire.astimezone(timezone.utc) == datetime(2026, 11, 21, 21, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("zone, at", [
    ("Europe/Lisbon", time(21, 30)), ("Pacific/Kiritimati", time(0, 0)), ("Pacific/Chatham", time(23, 59)),
    ("Asia/Kathmandu", time(0, 0)), ("Etc/GMT+12", time(23, 59)),
])
def test_a_job_woken_at_its_fire_time_to_the_microsecond_next_fires_the_next_day(zone, at):
    """APScheduler asks for fire times after the previous one until one lies past `now`; woken at
    the fire time to the microsecond (now == previous), a trigger that answered that same instant
    again held the event loop in that loop for ever, the bot frozen, its memory growing (CronTrigger
    steps a microsecond on there)."""
    trigger = DailyAt(at, ZoneInfo(zone))
    due = trigger.fire_time(date(2026, 12, 31))
    assert trigger.get_next_fire_time(due, due) == trigger.fire_time(date(2027, 1, 1))


@pytest.mark.parametrize("zone, at, night", [
    ("Europe/Lisbon", time(1, 30), date(2026, 3, 29)),  # skipped: comes at 02:30
    ("Europe/Lisbon", time(1, 30), date(2026, 10, 25)),  # repeated: the first
    ("Australia/Lord_Howe", time(2, 15), date(2026, 10, 4)),  # a half-hour jump
    ("Antarctica/Troll", time(2, 30), date(2026, 3, 29)),  # a two-hour jump
    ("Pacific/Kiritimati", time(0, 0), date(2026, 12, 31)),
])
def test_a_run_s_own_prompt_time_is_the_one_before_the_next_run_apscheduler_set_from_it(zone, at, night):
    """A daily job's run finds its prompt time from the next run (`fire_time_before`): the run on
    the night the clocks change, and the ones either side of it, 23 or 25 hours from their neighbours."""
    trigger = DailyAt(at, ZoneInfo(zone))
    for day in (night - timedelta(days=1), night, night + timedelta(days=1)):
        due = trigger.fire_time(day)
        next_run = trigger.get_next_fire_time(due, due + timedelta(seconds=1))
        assert trigger.fire_time_before(next_run) == due


NOV_24, NOV_25 = date(2026, 11, 24), date(2026, 11, 25)


@pytest.mark.parametrize("hour, minute, now_utc, expected", [
    (21, 30, datetime(2026, 11, 24, 22, 0, tzinfo=timezone.utc), NOV_24),     # 30 min late: send (if not sent)
    (21, 30, datetime(2026, 11, 25, 1, 31, tzinfo=timezone.utc), None),       # 4 h late: too late
    (21, 30, datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc), None),       # not yet time
    (23, 0, datetime(2026, 11, 25, 0, 30, tzinfo=timezone.utc), NOV_24),      # across midnight: yesterday's
    (7, 0, datetime(2026, 11, 24, 14, 59, tzinfo=timezone.utc), NOV_24),      # 7 h 59 min late, the same day
    (7, 0, datetime(2026, 11, 24, 15, 1, tzinfo=timezone.utc), None),         # over 8 h late
    (1, 0, datetime(2026, 11, 25, 0, 30, tzinfo=timezone.utc), None),         # 23 h 30 min late: not today's
])
def test_what_counts_as_a_missed_prompt(hour, minute, now_utc, expected):
    user = lisbon_user(hour, minute)  # Lisbon is UTC+0 in November
    assert missed_day(user, now_utc) == expected


def test_the_grace_period_is_real_hours_on_the_night_the_clocks_change():
    # 23:00 on 2026-03-28 in Lisbon is 23:00 UTC; at 01:50 UTC (02:50 local on the 29th, the clocks
    # went forward) it is 2 h 50 min late, within the 3 h grace, though 3 h 50 min by the wall clock.
    assert missed_day(lisbon_user(23, 0), datetime(2026, 3, 29, 1, 50, tzinfo=timezone.utc)) == date(2026, 3, 28)
    # 23:00 on 2026-10-24 is 22:00 UTC; 01:10 UTC (01:10 local, the second one) is 3 h 10 min late.
    assert missed_day(lisbon_user(23, 0), datetime(2026, 10, 25, 1, 10, tzinfo=timezone.utc)) is None


def test_the_8_hours_a_prompt_may_be_late_within_its_day_are_real_hours_too():
    # 00:30 on 2026-03-29 in Lisbon is 00:30 UTC; at 08:10 UTC (09:10 local, the clocks went
    # forward) it is 7 h 40 min late, though 8 h 40 min by the wall clock.
    assert missed_day(lisbon_user(0, 30), datetime(2026, 3, 29, 8, 10, tzinfo=timezone.utc)) == date(2026, 3, 29)
    # 00:30 on 2026-10-25 is 23:30 UTC the day before; 07:40 UTC (07:40 local) is 8 h 10 min late.
    assert missed_day(lisbon_user(0, 30), datetime(2026, 10, 25, 7, 40, tzinfo=timezone.utc)) is None


def test_a_prompt_more_than_the_grace_period_late_is_still_sent_that_day_up_to_8_hours_late():
    user = lisbon_user(18, 0)
    assert missed_day(user, datetime(2026, 11, 24, 20, 59, tzinfo=timezone.utc)) == NOV_24
    assert missed_day(user, datetime(2026, 11, 24, 21, 1, tzinfo=timezone.utc)) == NOV_24  # 3 h 1 min late
    assert missed_day(user, datetime(2026, 11, 24, 23, 59, tzinfo=timezone.utc)) == NOV_24
    assert missed_day(user, datetime(2026, 11, 25, 0, 1, tzinfo=timezone.utc)) is None  # 6 h 1 min, its day over


def scheduler_with_console(db, classifier, now):
    journal = JournalUseCase(db, MoodUseCase(db, classifier, fetcher=None, now=now), now=now)
    scheduler = PromptScheduler(db, journal, pause_s=0, now=now)
    out = io.StringIO()
    scheduler.register(ConsoleFrontend(usecases=None, stdin=io.StringIO(), stdout=out))
    return scheduler, journal, out


async def test_jobs_are_rebuilt_at_start_and_a_missed_prompt_is_sent_once(db, counting):
    restart = datetime(STARTED_YEAR, 11, 24, 22, 0, tzinfo=timezone.utc)  # 22:00 in Lisbon (UTC+0 in November)
    late = lisbon_user(21, 0, "late")  # an hour ago: within the grace period
    hours_late = lisbon_user(15, 0, "hours-late")  # seven hours ago, the same day: sent
    too_late = lisbon_user(13, 0, "too-late")  # nine hours ago: skipped
    off = User("console", "off", timezone="UTC", prompt_time=time(21, 0), journal_enabled=False, chat_id="off")
    for user in (late, hours_late, too_late, off):
        await db.users.upsert(user)

    scheduler, _journal, out = scheduler_with_console(db, counting, lambda: restart)
    sent = await scheduler.start()
    try:
        assert sent == 2
        assert scheduler.is_scheduled(late.ref) and scheduler.is_scheduled(too_late.ref)
        assert not scheduler.is_scheduled(off.ref)
        assert await db.prompts.last_sent_date(late.ref) == restart.date()
        assert await db.prompts.last_sent_date(hours_late.ref) == restart.date()
        assert await db.prompts.last_sent_date(too_late.ref) is None
        assert out.getvalue().count("📝") == 2
        # The console's message ids were remembered: 1 and 2, in whichever order the two missed
        # prompts, sent at once, reached it (a fresh-clone CI run had hours_late's first).
        ids = {(await db.prompts.latest_open(user.ref)).message_id for user in (late, hours_late)}
        assert ids == {"1", "2"}, ids
    finally:
        await scheduler.stop()

    # A restart the same evening does not send it again.
    again, _, out_again = scheduler_with_console(db, counting, lambda: restart + timedelta(minutes=20))
    try:
        assert await again.start() == 0 and "📝" not in out_again.getvalue()
    finally:
        await again.stop()


async def test_the_daily_job_and_the_catch_up_at_once_send_the_days_prompt_once(db, counting):
    """A restart in the prompt's minute: the daily job fires while start's catch-up delivers the same
    day's prompt. Each found no prompt sent for the day before the other recorded one, and the user
    got two."""
    user = lisbon_user(21, 0, "restarted")
    await db.users.upsert(user)
    just_after_nine = datetime(2026, 11, 24, 21, 0, 1, tzinfo=timezone.utc)  # 21:00:01 in Lisbon
    scheduler, _journal, out = scheduler_with_console(db, counting, lambda: just_after_nine)
    # A running bot's connection pool is warm: the two deliveries' reads overlap, as they would there.
    await asyncio.gather(*(db.users.get(user.ref) for _ in range(4)))

    job, catch_up = await asyncio.gather(scheduler.deliver(user.ref), scheduler.deliver(user.ref, day=NOV_24))

    assert out.getvalue().count("📝") == 1 and [job, catch_up].count(None) == 1
    assert len(await db.prompts.open_since(just_after_nine - timedelta(days=1), 10)) == 1


async def test_a_prompt_missed_across_midnight_is_sent_for_its_own_day(db, counting):
    night_owl = lisbon_user(23, 0, "owl")
    await db.users.upsert(night_owl)
    restart = datetime(STARTED_YEAR, 11, 25, 0, 30, tzinfo=timezone.utc)  # down from 22:50 to 00:30
    scheduler, _journal, out = scheduler_with_console(db, counting, lambda: restart)
    try:
        assert await scheduler.start() == 1 and out.getvalue().count("📝") == 1
        assert await db.prompts.last_sent_date(night_owl.ref) == date(STARTED_YEAR, 11, 24)  # the day it asks about
    finally:
        await scheduler.stop()
    # Tonight's 23:00 prompt still goes out: it is for the 25th.
    tonight, _, out_tonight = scheduler_with_console(db, counting, lambda: restart + timedelta(hours=22, minutes=40))
    try:
        assert await tonight.start() == 1 and await db.prompts.last_sent_date(night_owl.ref) == date(STARTED_YEAR, 11, 25)
    finally:
        await tonight.stop()


async def test_fire_now_sends_a_prompt_and_unschedule_stops_the_job(db, counting):
    user = lisbon_user(FAR_IN_LISBON.hour, FAR_IN_LISBON.minute)  # started on the real clock
    await db.users.upsert(user)
    scheduler, journal, out = scheduler_with_console(db, counting, lambda: datetime.now(timezone.utc))
    await scheduler.start()
    try:
        prompt_id = await scheduler.fire_now(user.ref)
        assert prompt_id is not None
        sent = await db.prompts.latest_open(user.ref)
        assert sent.prompt_id == prompt_id and sent.phrase in out.getvalue()
        assert await journal.is_prompt_message("console", "local", sent.message_id)

        scheduler.unschedule(user.ref)
        assert scheduler.next_fire_time(user.ref) is None
    finally:
        await scheduler.stop()


async def test_a_user_who_opted_out_since_gets_no_prompt(db, counting):
    user = lisbon_user(21, 30)
    await db.users.upsert(user)
    scheduler, _journal, out = scheduler_with_console(db, counting, lambda: datetime.now(timezone.utc))
    scheduler.schedule(user)
    await db.users.set_journal(user.ref, enabled=False, prompt_time=user.prompt_time, timezone=user.timezone,
                               chat_id=user.chat_id)
    assert await scheduler.deliver(user.ref) is None
    assert out.getvalue() == ""


async def test_the_cron_job_itself_delivers_through_the_event_loop(db, counting):
    """One job for all the users of a time and zone: its run prompts each of them, not one who left it."""
    import asyncio

    from bot.scheduler import group_id

    users = [lisbon_user(21, 30, name) for name in ("ana", "rui", "eva")]
    for user in users:
        await db.users.upsert(user)
    at = [datetime(STARTED_YEAR, 11, 24, 21, 0, tzinfo=timezone.utc)]  # 21:00 in Lisbon: not yet time
    scheduler, _journal, out = scheduler_with_console(db, counting, lambda: at[0])
    await scheduler.start()
    at[0] += timedelta(minutes=30)  # their time, on the scheduler's clock
    try:
        assert [job.id for job in scheduler._scheduler.get_jobs()] == [group_id(users[0])]
        scheduler.unschedule(users[2].ref)  # /journal off, /forget
        # Bring the job's next run forward to now, as if their time had come.
        scheduler._scheduler.modify_job(group_id(users[0]), next_run_time=datetime.now(timezone.utc))
        for _ in range(300):
            if out.getvalue().count("📝") >= 2:
                break
            await asyncio.sleep(0.05)
        assert out.getvalue().count("📝") == 2
        assert await db.prompts.latest_open(users[0].ref) is not None
        assert await db.prompts.latest_open(users[1].ref) is not None
        assert await db.prompts.latest_open(users[2].ref) is None
    finally:
        await scheduler.stop()


async def test_the_users_of_one_time_and_zone_share_one_job_which_goes_with_the_last(db, counting):
    """A job a user cost APScheduler ~60 µs of the event loop each when they came due together:
    10 000 users at 21:30 stalled every chat ~0.6-1 s. Now a time and zone is one job."""
    from bot.scheduler import group_id

    scheduler, _journal, _out = scheduler_with_console(db, counting, lambda: datetime.now(timezone.utc))
    crowd = [lisbon_user(21, 30, f"u{i}") for i in range(500)]
    tokyo = replace(lisbon_user(21, 30, "kenji"), timezone="Asia/Tokyo")
    for user in [*crowd, tokyo]:
        scheduler.schedule(user)
    jobs = {job.id for job in scheduler._scheduler.get_jobs()}
    assert jobs == {group_id(crowd[0]), group_id(tokyo)}
    assert all(scheduler.is_scheduled(user.ref) for user in [*crowd, tokyo])
    assert scheduler.next_fire_time(crowd[0].ref) == scheduler.next_fire_time(crowd[-1].ref)

    moved = replace(crowd[0], prompt_time=time(7, 0))  # /journal on 07:00: another job
    scheduler.schedule(moved)
    assert scheduler.next_fire_time(moved.ref).astimezone(LISBON).time() == time(7, 0)
    for user in crowd[1:]:
        scheduler.unschedule(user.ref)
    assert {job.id for job in scheduler._scheduler.get_jobs()} == {group_id(moved), group_id(tokyo)}
    assert not scheduler.is_scheduled(crowd[1].ref) and scheduler.next_fire_time(crowd[1].ref) is None


async def test_fire_now_needs_the_journal_on(db, counting):
    scheduler, _journal, out = scheduler_with_console(db, counting, lambda: datetime.now(timezone.utc))
    stranger = User("console", "nobody")
    assert await scheduler.fire_now(stranger.ref) is None
    await db.users.upsert(User("console", "off", timezone="UTC", prompt_time=time(9, 0), journal_enabled=False))
    assert await scheduler.fire_now(User("console", "off").ref) is None
    assert out.getvalue() == ""


class FlakyConsole(ConsoleFrontend):
    """The console, failing its first delivery as a chat platform that is briefly down does."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.failures = 1

    async def send_prompt(self, prompt):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("platform unreachable")
        return await super().send_prompt(prompt)


async def test_a_prompt_that_could_not_be_delivered_is_not_counted_as_sent(db, counting):
    user = lisbon_user(21, 0, "flaky")
    await db.users.upsert(user)
    at_nine = datetime(STARTED_YEAR, 11, 24, 21, 0, tzinfo=timezone.utc)  # 21:00 in Lisbon
    journal = JournalUseCase(db, MoodUseCase(db, counting, fetcher=None), now=lambda: at_nine)
    scheduler = PromptScheduler(db, journal, pause_s=0, now=lambda: at_nine)
    out = io.StringIO()
    scheduler.register(FlakyConsole(usecases=None, stdin=io.StringIO(), stdout=out))

    assert await scheduler.deliver(user.ref) is None  # the platform was down at 21:00
    assert await db.prompts.last_sent_date(user.ref) is None and await db.prompts.latest_open(user.ref) is None

    # A restart (or the next try) within the grace period still sends the day's prompt.
    later, _journal, out_later = scheduler_with_console(db, counting, lambda: at_nine + timedelta(minutes=30))
    try:
        assert await later.start() == 1 and out_later.getvalue().count("📝") == 1
    finally:
        await later.stop()


async def test_a_scheduled_prompt_delivered_after_midnight_is_for_the_day_it_was_due(db, counting):
    # 23:58 in Kathmandu (UTC+05:45): the delivery waited its turn behind a busy minute of other
    # users' prompts and runs at 00:03. It asks about the 24th, and the 25th still gets its own.
    user = User("console", "local", timezone="Asia/Kathmandu", prompt_time=time(23, 58), journal_enabled=True,
                chat_id="local")
    await db.users.upsert(user)
    at = [datetime(2026, 11, 24, 18, 18, tzinfo=timezone.utc)]  # 00:03 on the 25th in Kathmandu
    scheduler, _journal, out = scheduler_with_console(db, counting, lambda: at[0])

    assert await scheduler.deliver(user.ref) is not None
    assert await db.prompts.last_sent_date(user.ref) == NOV_24
    at[0] += timedelta(hours=23, minutes=55)  # 23:58 on the 25th
    assert await scheduler.deliver(user.ref) is not None
    assert await db.prompts.last_sent_date(user.ref) == NOV_25 and out.getvalue().count("📝") == 2


def noon_journal(db, counting, console: type[ConsoleFrontend]) -> tuple[JournalUseCase, PromptScheduler]:
    """The journal and its scheduler at noon on 24 November, sending prompts through a `console`."""
    noon = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
    journal = JournalUseCase(db, MoodUseCase(db, counting, fetcher=None), now=lambda: noon)
    scheduler = PromptScheduler(db, journal, pause_s=0, now=lambda: noon)
    journal.schedule = scheduler
    scheduler.register(console(usecases=None, stdin=io.StringIO(), stdout=io.StringIO()))
    return journal, scheduler


class ClosedConsole(ConsoleFrontend):
    """A user the platform refuses for good (Discord's 50007: DMs closed; Telegram: bot blocked)."""

    async def send_prompt(self, prompt):
        raise RecipientGone("403 50007 Cannot send messages to this user")


async def test_a_prompt_asked_for_that_cannot_reach_the_user_says_so_and_keeps_the_journal_on(db, counting):
    # /journal prompt is asked for by a user who is there: they are told to open their DMs and
    # ask again, which a journal turned off by the failure would refuse ("Your journal is off").
    user = lisbon_user(21, 0, "closed")
    await db.users.upsert(user)
    journal, scheduler = noon_journal(db, counting, ClosedConsole)

    reply = await journal.prompt_now(Caller("console", "closed", chat_id="closed"))
    assert isinstance(reply, ErrorReply) and reply.message == PROMPT_NOT_SENT
    assert (await db.users.get(user.ref)).journal_enabled

    # The daily prompt nobody is waiting for: refused for good, it turns the journal off.
    assert await scheduler.deliver(user.ref, day=NOV_24) is None
    assert not (await db.users.get(user.ref)).journal_enabled


class RefusedToTheBotConsole(ConsoleFrontend):
    """A platform that refuses the bot itself, not the user (Discord's 50001 Missing Access, 40002)."""

    async def send_prompt(self, prompt):
        raise SenderRefused("403 50001 Missing Access")


async def test_a_prompt_the_platform_refuses_to_the_bot_is_neither_the_user_s_doing_nor_a_passing_failure(db,
                                                                                                       counting):
    """/journal prompt refused to the bot was told "just now: try again in a few minutes", an outage's
    words for a refusal that lasts: it says the platform refused the bot, not the user's settings."""
    user = lisbon_user(21, 0, "refused")
    await db.users.upsert(user)
    journal, scheduler = noon_journal(db, counting, RefusedToTheBotConsole)

    reply = await journal.prompt_now(Caller("console", "refused", chat_id="refused"))
    assert reply == ErrorReply(PROMPT_REFUSED_TO_THE_BOT)
    assert reply.message not in (PROMPT_NOT_SENT, PROMPT_NOT_SENT_NOW)
    assert (await db.users.get(user.ref)).journal_enabled

    # The daily prompt: the user refused nothing, so their journal stays on and the prompt is tried again.
    assert await scheduler.deliver(user.ref, day=NOV_24) is None
    assert (await db.users.get(user.ref)).journal_enabled


async def test_a_database_lost_before_the_jobs_are_rebuilt_stops_the_start(counting, outage, caplog):
    """The database answered at start (the open prompts were recalled) and drops before the daily
    jobs are rebuilt: the start fails, saying why, as it does with the database down, rather than
    running on with nobody's prompt scheduled until the next restart."""
    import logging
    import time as time_module

    from storage.models import StorageError

    db = outage.db
    user = lisbon_user(FAR_IN_LISBON.hour, FAR_IN_LISBON.minute, "daily")
    await db.users.upsert(user)
    scheduler, journal, _out = scheduler_with_console(db, counting, lambda: datetime.now(timezone.utc))
    await journal.recall_open_prompts()
    outage.down()

    with caplog.at_level(logging.ERROR, logger="bot.scheduler"), \
            pytest.raises(StorageError, match="daily prompts could not be scheduled.*try again shortly"):
        await scheduler.start()
    assert any(r.getMessage() == "scheduler.rebuild_failed" for r in caplog.records)
    assert not scheduler.is_scheduled(user.ref)

    # Nothing was left half-started: once the database is back, the start (a restart) goes through.
    outage.up()
    deadline = time_module.monotonic() + 10
    while True:
        try:
            await scheduler.start()
            break
        except StorageError:  # the client reconnects
            assert time_module.monotonic() < deadline, "the database did not come back within 10 s"
            await asyncio.sleep(0.1)
    try:
        assert scheduler.is_scheduled(user.ref)
    finally:
        await scheduler.stop()


async def test_a_saved_zone_this_machine_cannot_load_stops_that_users_prompts_not_the_start(db, counting, caplog):
    """A zone saved where the zone database had it (a newer tzdata's America/Coyhaique, 2025b; the
    'localtime' link taken before 5fb111b) and a bot started where it has not: ZoneInfo's KeyError
    left the start at that user, and the bot did not start for anyone. That user is logged and left
    unscheduled; everyone else's prompts, the catch-up too, go on."""
    import logging

    restart = datetime(STARTED_YEAR, 11, 24, 21, 30, tzinfo=timezone.utc)  # 21:30 in Lisbon
    gone = User("console", "gone", timezone="America/Nowhere_Since_2099a", prompt_time=time(21, 0),
                journal_enabled=True, chat_id="gone")
    late = lisbon_user(21, 0, "late")
    for user in (gone, late):
        await db.users.upsert(user)
    scheduler, _journal, out = scheduler_with_console(db, counting, lambda: restart)
    with caplog.at_level(logging.ERROR, logger="bot.scheduler"):
        sent = await scheduler.start()
    try:
        assert sent == 1 and out.getvalue().count("📝") == 1
        assert scheduler.is_scheduled(late.ref) and not scheduler.is_scheduled(gone.ref)
        (line,) = [r for r in caplog.records if r.getMessage() == "scheduler.unknown_zone"]
        assert (line.user, line.tz) == ("gone", "America/Nowhere_Since_2099a")
    finally:
        await scheduler.stop()


async def test_a_prompt_asked_for_with_a_saved_zone_this_machine_cannot_load_is_dated_in_utc(db, counting):
    """/journal prompt by that user: ZoneInfo's KeyError in the scheduler made it 'something went
    wrong'. The prompt is sent, for today as UTC tells it, as their /export and /stats date it."""
    gone = User("console", "gone", timezone="America/Nowhere_Since_2099a", prompt_time=time(21, 0),
                journal_enabled=True, chat_id="gone")
    await db.users.upsert(gone)
    late_in_utc = datetime(2026, 11, 24, 23, 30, tzinfo=timezone.utc)
    scheduler, journal, out = scheduler_with_console(db, counting, lambda: late_in_utc)
    journal.schedule = scheduler

    reply = await journal.prompt_now(Caller("console", "gone", chat_id="gone"))
    assert isinstance(reply, TextReply), reply
    sent = await db.prompts.latest_open(gone.ref)
    assert sent is not None and sent.phrase in out.getvalue()
    assert await db.prompts.sent_for(gone.ref, NOV_24)


async def test_a_prompt_for_a_platform_not_running_is_logged_with_its_user(db, counting, caplog):
    """E.g. DISCORD_TOKEN removed while Discord users keep their journal on: each day's job says
    whose prompt went nowhere, so the operator can tell how many users that is."""
    import logging

    user = User("discord", "555", timezone="Europe/Lisbon", prompt_time=time(21, 30), journal_enabled=True)
    await db.users.upsert(user)
    scheduler, _journal, _out = scheduler_with_console(db, counting, lambda: datetime.now(timezone.utc))
    with caplog.at_level(logging.WARNING, logger="bot.scheduler"):
        assert await scheduler.deliver(user.ref) is None
    (line,) = [r for r in caplog.records if r.getMessage() == "scheduler.no_sender"]
    assert (line.platform, line.user) == ("discord", "555")


async def test_a_user_who_moves_west_gets_no_second_prompt_for_a_day_they_already_had(db, counting):
    """Tokyo at 08:00, then New York at 21:00: the first evening in New York is still the 4th, whose
    prompt came in Tokyo. The check read only the latest day sent (the 5th, Tokyo's morning), so the
    4th was asked about again, three hours after the 5th, and filed as a second entry of that day."""
    tokyo = User("console", "traveller", timezone="Asia/Tokyo", prompt_time=time(8, 0), journal_enabled=True,
                 chat_id="traveller")
    await db.users.upsert(tokyo)
    at = [datetime(2026, 12, 3, 23, 0, tzinfo=timezone.utc)]  # 08:00 on the 4th in Tokyo
    scheduler, _journal, out = scheduler_with_console(db, counting, lambda: at[0])
    assert await scheduler.deliver(tokyo.ref) is not None
    at[0] += timedelta(days=1)  # 08:00 on the 5th in Tokyo
    assert await scheduler.deliver(tokyo.ref) is not None

    await db.users.upsert(replace(tokyo, timezone="America/New_York", prompt_time=time(21, 0)))
    at[0] += timedelta(hours=3)  # 21:00 on the 4th in New York
    assert await scheduler.deliver(tokyo.ref) is None
    at[0] += timedelta(days=1)  # 21:00 on the 5th
    assert await scheduler.deliver(tokyo.ref) is None
    at[0] += timedelta(days=1)  # 21:00 on the 6th: a day without one
    assert await scheduler.deliver(tokyo.ref) is not None
    assert out.getvalue().count("📝") == 3
    assert await db.prompts.last_sent_date(tokyo.ref) == date(2026, 12, 6)


async def test_a_day_without_a_prompt_still_gets_one_after_a_move_west(db, counting):
    """The journal turned on in Tokyo the morning of the 5th, then New York: the 4th there had no
    prompt, and gets one, though a later day's was sent."""
    tokyo = User("console", "newcomer", timezone="Asia/Tokyo", prompt_time=time(8, 0), journal_enabled=True,
                 chat_id="newcomer")
    await db.users.upsert(tokyo)
    at = [datetime(2026, 12, 4, 23, 0, tzinfo=timezone.utc)]  # 08:00 on the 5th in Tokyo
    scheduler, _journal, out = scheduler_with_console(db, counting, lambda: at[0])
    assert await scheduler.deliver(tokyo.ref) is not None
    await db.users.upsert(replace(tokyo, timezone="America/New_York", prompt_time=time(21, 0)))
    at[0] += timedelta(hours=3)  # 21:00 on the 4th in New York
    assert await scheduler.deliver(tokyo.ref) is not None
    assert (await db.prompts.latest_open(tokyo.ref)).local_date == date(2026, 12, 4)


async def test_a_restart_after_a_move_west_still_catches_up_a_day_without_a_prompt(db, counting):
    """As above, but the bot is down at New York's 21:00 on the 4th and back at 21:30: the catch-up
    asked whether the latest day sent (the 5th, Tokyo's) was before the 4th, and skipped it."""
    tokyo = User("console", "restarted-newcomer", timezone="Asia/Tokyo", prompt_time=time(8, 0),
                 journal_enabled=True, chat_id="restarted-newcomer")
    await db.users.upsert(tokyo)
    at = [datetime(STARTED_YEAR, 12, 4, 23, 0, tzinfo=timezone.utc)]  # 08:00 on the 5th in Tokyo
    scheduler, _journal, _out = scheduler_with_console(db, counting, lambda: at[0])
    assert await scheduler.deliver(tokyo.ref) is not None
    await db.users.upsert(replace(tokyo, timezone="America/New_York", prompt_time=time(21, 0)))

    at[0] += timedelta(hours=3, minutes=30)  # 21:30 on the 4th in New York: a restart
    restarted, _, out = scheduler_with_console(db, counting, lambda: at[0])
    try:
        assert await restarted.start() == 1 and out.getvalue().count("📝") == 1
        assert (await db.prompts.latest_open(tokyo.ref)).local_date == date(STARTED_YEAR, 12, 4)
    finally:
        await restarted.stop()


async def test_a_prompt_time_that_passes_while_the_jobs_are_rebuilt_is_not_lost(db, counting):
    """The catch-up judged what was missed by the clock read before the jobs were rebuilt (a read
    per user: 0.5 s for 400 users), and each job took its next run from the clock after: a prompt
    time between the two was neither missed nor to come (tomorrow's), and nobody whose prompt
    was at that minute got one that day. Here the rebuild "takes" 30 minutes, the prompt time 20
    minutes into it."""
    started = datetime.now(timezone.utc)
    reads = iter([started - timedelta(minutes=30)])  # the first read of the clock, then the real one
    due = (started - timedelta(minutes=10)).astimezone(LISBON)
    user = lisbon_user(due.hour, due.minute, "rebuilt")
    await db.users.upsert(user)
    scheduler, _journal, out = scheduler_with_console(
        db, counting, lambda: next(reads, None) or datetime.now(timezone.utc))
    try:
        assert await scheduler.start() == 0  # not missed when the clock was read: the job's, then
        for _ in range(300):
            if "📝" in out.getvalue():
                break
            await asyncio.sleep(0.05)
        assert out.getvalue().count("📝") == 1
        assert (await db.prompts.latest_open(user.ref)).local_date == due.date()
    finally:
        await scheduler.stop()


# A clock that jumps: the host asleep, NTP stepping it -----------------------------------------


@contextlib.contextmanager
def a_run_of(scheduler: PromptScheduler, job_id: str):
    """A future of the job's next run, as APScheduler tells it: EVENT_JOB_EXECUTED once the run's
    prompts are done, EVENT_JOB_MISSED where it gave the run up, EVENT_JOB_ERROR."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED

    heard = asyncio.get_running_loop().create_future()

    def listen(event) -> None:
        if event.job_id == job_id and not heard.done():
            heard.set_result(event.code)

    scheduler._scheduler.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    try:
        yield heard
    finally:
        scheduler._scheduler.remove_listener(listen)


async def run_late(scheduler: PromptScheduler, job_id: str, late: timedelta = timedelta(0)) -> int:
    """A job as APScheduler meets it on waking, its run `late` past on the machine's clock (the
    host suspended, the clock stepped forward): how the run ended (`a_run_of`)."""
    with a_run_of(scheduler, job_id) as heard:
        scheduler._scheduler.modify_job(job_id, next_run_time=datetime.now(timezone.utc) - late)
        return await asyncio.wait_for(heard, 10)


async def run_the_daily_job(scheduler: PromptScheduler, user: User, late: timedelta = timedelta(0)) -> int:
    """The user's daily job run `late` (`run_late`)."""
    from bot.scheduler import group_id

    return await run_late(scheduler, group_id(user), late)


@pytest.mark.parametrize("prompt_at, woken, sent_for", [
    (time(7, 0), datetime(STARTED_YEAR, 11, 24, 12, 0), date(STARTED_YEAR, 11, 24)),  # asleep 06:30-12:00
    (time(7, 0), datetime(STARTED_YEAR, 11, 24, 14, 59), date(STARTED_YEAR, 11, 24)),  # 7 h 59 min late
    (time(7, 0), datetime(STARTED_YEAR, 11, 24, 15, 1), None),  # over 8 h late: the day's nearly done
    (time(21, 0), datetime(STARTED_YEAR, 11, 25, 0, 30), None),  # 3 h 30 min late, and its day is over
    (time(23, 0), datetime(STARTED_YEAR, 11, 25, 1, 30), date(STARTED_YEAR, 11, 24)),  # the grace, past midnight
    (time(7, 0), datetime(STARTED_YEAR, 11, 25, 6, 0), None),  # 23 h late: tomorrow's is an hour away
])
async def test_a_prompt_time_the_host_slept_through_is_sent_late_while_its_day_lasts(
        db, counting, prompt_at, woken, sent_for):
    """A host suspended over the prompt time, or its clock stepped forward past it, wakes
    APScheduler more than its misfire grace (3 h) late: it gave the run up, and the day had no
    prompt. A late prompt is sent while its local day lasts, up to 8 h late (past midnight, the
    catch-up's 3 h, as before)."""
    user = lisbon_user(prompt_at.hour, prompt_at.minute, "asleep")  # Lisbon is UTC+0 in November
    await db.users.upsert(user)
    fire = datetime.combine(date(STARTED_YEAR, 11, 24), prompt_at, tzinfo=timezone.utc)
    at = [fire - timedelta(hours=1)]
    scheduler, _journal, out = scheduler_with_console(db, counting, lambda: at[0])
    try:
        assert await scheduler.start() == 0
        at[0] = woken.replace(tzinfo=timezone.utc)
        await run_the_daily_job(scheduler, user, late=at[0] - fire)
        assert out.getvalue().count("📝") == (sent_for is not None)
        assert await db.prompts.last_sent_date(user.ref) == sent_for
    finally:
        await scheduler.stop()


async def test_a_clock_stepped_back_after_the_day_s_prompt_sends_no_second_one(db, counting):
    """NTP steps the clock back an hour just after the 21:30 prompt of a user who turned the journal
    on that day: the daily job's pass (and a restart) that read the stepped-back clock took the
    latest prompt time before it, yesterday's, for the one due, and sent a prompt asking about a
    day that had none, an hour after today's."""
    user = lisbon_user(21, 30, "stepped-back")
    await db.users.upsert(user)
    at = [datetime(STARTED_YEAR, 11, 24, 21, 0, tzinfo=timezone.utc)]
    scheduler, _journal, out = scheduler_with_console(db, counting, lambda: at[0])
    try:
        assert await scheduler.start() == 0
        at[0] += timedelta(minutes=30)  # 21:30: the day's prompt
        await run_the_daily_job(scheduler, user)
        assert out.getvalue().count("📝") == 1
        at[0] -= timedelta(hours=1)  # stepped back to 20:30
        await run_the_daily_job(scheduler, user)
        restarted, _, out_restarted = scheduler_with_console(db, counting, lambda: at[0])
        try:
            assert await restarted.start() == 0
        finally:
            await restarted.stop()
        at[0] += timedelta(hours=1)  # 21:30 again
        await run_the_daily_job(scheduler, user)
        assert out.getvalue().count("📝") == 1 and out_restarted.getvalue() == ""
        assert await db.prompts.last_sent_date(user.ref) == date(STARTED_YEAR, 11, 24)
        assert not await db.prompts.sent_for(user.ref, date(STARTED_YEAR, 11, 23))
    finally:
        await scheduler.stop()


@pytest.mark.parametrize("behind", [timedelta(seconds=3), timedelta(hours=1)])
async def test_a_clock_stepped_back_as_the_daily_job_starts_still_prompts_that_day(db, counting, behind):
    """APScheduler finds the prompt time come on its reading of the clock, and NTP steps the clock
    back (3 s; an hour) before the job's pass reads it: the pass took the latest prompt time before
    its reading, yesterday's, for the one due, 24 h late, and sent nothing; the job's next run was
    tomorrow's, and the day had no prompt. Here APScheduler goes by the machine's clock, the
    prompt time is the minute just begun on it, and the scheduler's clock reads `behind` it."""
    from apscheduler.events import EVENT_JOB_EXECUTED

    from bot.scheduler import group_id

    due = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    user_id = f"stepped-back-{behind.seconds}s-as-it-runs"
    user = User("console", user_id, timezone="UTC", prompt_time=due.time(), journal_enabled=True, chat_id=user_id)
    await db.users.upsert(user)
    at = [due - behind]
    scheduler, _journal, out = scheduler_with_console(db, counting, lambda: at[0])
    try:
        with a_run_of(scheduler, group_id(user)) as heard:
            assert await scheduler.start() == 0  # not missed, still to come; its job is due on the machine's clock
            assert await asyncio.wait_for(heard, 10) == EVENT_JOB_EXECUTED
        assert out.getvalue().count("📝") == 1
        assert await db.prompts.last_sent_date(user.ref) == due.date()
        at[0] = due + timedelta(minutes=1)  # the clock past the prompt time again: no second one
        await run_the_daily_job(scheduler, user)
        assert await restart_at(db, counting, at[0]) == 0
        assert out.getvalue().count("📝") == 1
    finally:
        await scheduler.stop()


async def journal_on(db, counting, at: datetime, prompt_at: time, user_id: str,
                     scheduler: PromptScheduler | None = None, zone: str = "Europe/Lisbon") -> str:
    """`/journal on <prompt_at> <zone>` at `at` (Lisbon is UTC+0 in November), its jobs made by
    `scheduler` if given: what the user is told of their next prompt."""
    journal = JournalUseCase(db, MoodUseCase(db, counting, fetcher=None), now=lambda: at)
    if scheduler is not None:
        journal.schedule = scheduler
    reply = await journal.enable(Caller("console", user_id, chat_id=user_id), f"{prompt_at:%H:%M}", zone)
    assert isinstance(reply, TextReply), reply
    return reply.text


async def restart_at(db, counting, at: datetime) -> int:
    """A restart at `at`: the prompts its catch-up sends."""
    scheduler, _journal, out = scheduler_with_console(db, counting, lambda: at)
    try:
        sent = await scheduler.start()
        assert out.getvalue().count("📝") == sent
        return sent
    finally:
        await scheduler.stop()


DAY = date(STARTED_YEAR, 11, 24)


@pytest.mark.parametrize("turned_on, prompt_at, restart, told, sent", [
    (time(10, 0), time(9, 0), time(11, 0), "tomorrow", False),  # its time past: told tomorrow
    (time(10, 0), time(9, 0), time(16, 0), "tomorrow", False),  # 7 h late, as a missed one is sent
    (None, time(9, 0), time(11, 0), "tomorrow", True),  # set the day before: missed, the bot down at 09:00
    (time(10, 0), time(12, 0), time(13, 0), "today at 12:00", True),  # its time still to come: missed
    (time(10, 0), time(12, 0), time(19, 0), "today at 12:00", True),  # 7 h late, within its day
])
async def test_a_restart_sends_no_late_prompt_for_a_time_already_past_when_the_journal_was_turned_on(
        db, counting, turned_on, prompt_at, restart, told, sent):
    """/journal on at 10:00 for 09:00 tells the user their next prompt comes tomorrow, and that
    /journal prompt sends today's now; a restart later that day (within the grace, or the 8 h a
    missed prompt is sent late within its day) sent today's anyway. A prompt the bot missed, down
    at its time (set the day before, or later the same day), is still sent late."""
    on_at = datetime.combine(DAY, turned_on, tzinfo=timezone.utc) if turned_on \
        else datetime.combine(DAY - timedelta(days=1), time(10, 0), tzinfo=timezone.utc)
    user_id = f"on-{prompt_at:%H%M}-{restart:%H%M}-{'the-day-before' if turned_on is None else 'that-day'}"
    assert f"Your next prompt comes {told}" in await journal_on(db, counting, on_at, prompt_at, user_id)

    assert await restart_at(db, counting, datetime.combine(DAY, restart, tzinfo=timezone.utc)) == int(sent)
    assert await db.prompts.sent_for(UserRef("console", user_id), DAY) == sent
    # The next day's comes as ever: a restart 2 h after its time sends it.
    next_day = datetime.combine(DAY + timedelta(days=1), prompt_at, tzinfo=timezone.utc) + timedelta(hours=2)
    assert await restart_at(db, counting, next_day) == 1


def utc_at(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=timezone.utc)


@pytest.mark.parametrize("zone, turned_on, prompt_at, told, sent", [
    # New York skips 02:00-03:00 on 2046-03-11: 02:30 comes at 03:30 (EDT, 07:30 UTC).
    ("America/New_York", utc_at(STARTED_YEAR, 3, 11, 7, 10), time(2, 30), "today at 03:30, in 20 min", True),  # 03:10
    ("America/New_York", utc_at(STARTED_YEAR, 3, 11, 6, 50), time(2, 30), "today at 03:30, in 40 min", True),  # 01:50
    ("America/New_York", utc_at(STARTED_YEAR, 3, 11, 7, 40), time(2, 30), "tomorrow", False),  # 03:40
    # Lisbon skips 01:00-02:00 on 2046-03-25: 01:30 comes at 02:30 (WEST, 01:30 UTC).
    ("Europe/Lisbon", utc_at(STARTED_YEAR, 3, 25, 1, 10), time(1, 30), "today at 02:30, in 20 min", True),  # 02:10
    # New York has 01:00-02:00 twice on 2046-11-04: 01:30 comes the first time (EDT, 05:30 UTC).
    ("America/New_York", utc_at(STARTED_YEAR, 11, 4, 5, 20), time(1, 30), "today at 01:30, in 10 min", True),  # EDT
    ("America/New_York", utc_at(STARTED_YEAR, 11, 4, 6, 10), time(1, 30), "tomorrow", False),  # 01:10 EST, after it
    # Lisbon has 01:00-02:00 twice on 2046-10-28: the first 01:30 is 00:30 UTC.
    ("Europe/Lisbon", utc_at(STARTED_YEAR, 10, 28, 1, 10), time(1, 30), "tomorrow", False),  # 01:10 WET, after it
    # Zones that change at midnight. Havana skips 00:00-01:00 on 2046-03-11: 00:30 comes at 01:30
    # (CDT, 05:30 UTC), on the day it was set for, not the day before.
    ("America/Havana", utc_at(STARTED_YEAR, 3, 11, 5, 10), time(0, 30), "today at 01:30, in 20 min", True),  # 01:10
    ("America/Havana", utc_at(STARTED_YEAR, 3, 11, 5, 40), time(0, 30), "tomorrow", False),  # 01:40
    # Havana has 00:00-01:00 twice on 2046-11-04: the first 00:30 is CDT, 04:30 UTC.
    ("America/Havana", utc_at(STARTED_YEAR, 11, 4, 4, 20), time(0, 30), "today at 00:30, in 10 min", True),  # CDT
    ("America/Havana", utc_at(STARTED_YEAR, 11, 4, 5, 10), time(0, 30), "tomorrow", False),  # 00:10 CST, after it
    # Santiago skips 00:00-01:00 on 2046-09-02: 00:30 comes at 01:30 (-03, 04:30 UTC).
    ("America/Santiago", utc_at(STARTED_YEAR, 9, 2, 4, 10), time(0, 30), "today at 01:30, in 20 min", True),  # 01:10
    # Shifts other than an hour. Lord Howe skips 02:00-02:30 on 2046-10-07: 02:15 comes half an hour
    # later, at 02:45 (+11, 15:45 UTC).
    ("Australia/Lord_Howe", utc_at(STARTED_YEAR, 10, 6, 15, 35), time(2, 15), "today at 02:45, in 10 min",
     True),  # 02:35
    # Lord Howe has 01:30-02:00 twice on 2046-04-01: the first 01:45 is +11, 14:45 UTC.
    ("Australia/Lord_Howe", utc_at(STARTED_YEAR, 3, 31, 15, 5), time(1, 45), "tomorrow", False),  # 01:35 +10:30
    # Troll skips 01:00-03:00 on 2046-03-25: 02:30 comes two hours later, at 04:30 (+02, 02:30 UTC).
    ("Antarctica/Troll", utc_at(STARTED_YEAR, 3, 25, 2, 10), time(2, 30), "today at 04:30, in 20 min", True),  # 04:10
    # Troll has 01:00-03:00 twice on 2046-10-28: the first 02:30 is +02, 00:30 UTC.
    ("Antarctica/Troll", utc_at(STARTED_YEAR, 10, 28, 1, 10), time(2, 30), "tomorrow", False),  # 01:10 +00, after it
])
async def test_on_a_night_the_clocks_change_journal_on_s_reply_says_what_the_scheduler_does(
        db, counting, zone, turned_on, prompt_at, told, sent):
    """/journal on 02:30 at 03:10 on the night New York skips 02:30 was told "tomorrow", yet the
    trigger fires the skipped time an hour later, 03:30 that day, and the prompt came; at 01:10 the
    second time round on an autumn night, 01:30 was "today, in 1 min", yet the first 01:30 had been
    its time that day (set_past_its_time), and none came. The reply, the daily job's next fire time
    and a restart's catch-up now agree."""
    user_id = f"dst-{zone}-{turned_on:%m%d%H%M}"
    day = turned_on.astimezone(ZoneInfo(zone)).date()
    assert f"Your next prompt comes {told}" in await journal_on(db, counting, turned_on, prompt_at, user_id,
                                                                zone=zone)

    fires = DailyAt(prompt_at, ZoneInfo(zone)).get_next_fire_time(None, turned_on)
    assert (fires.date() == day) == sent
    if sent:
        assert told.startswith(f"today at {fires:%H:%M}")
    assert await restart_at(db, counting, turned_on + timedelta(hours=1)) == int(sent)
    assert await db.prompts.sent_for(UserRef("console", user_id), day) == sent


async def test_a_prompt_time_still_to_come_when_the_journal_is_turned_on_is_sent_that_day(db, counting):
    """/journal on at 10:00 for 12:00, the bot running: its daily job sends the day's prompt at 12:00."""
    at = [datetime.combine(DAY, time(10, 0), tzinfo=timezone.utc)]
    scheduler, _journal, out = scheduler_with_console(db, counting, lambda: at[0])
    try:
        assert await scheduler.start() == 0
        assert "comes today at 12:00" in await journal_on(db, counting, at[0], time(12, 0), "on-at-ten", scheduler)
        at[0] = datetime.combine(DAY, time(12, 0), tzinfo=timezone.utc)
        await run_the_daily_job(scheduler, User("console", "on-at-ten", timezone="Europe/Lisbon",
                                                prompt_time=time(12, 0)))
        assert out.getvalue().count("📝") == 1
        assert await db.prompts.last_sent_date(UserRef("console", "on-at-ten")) == DAY
    finally:
        await scheduler.stop()


# A prompt whose sending failed for a passing reason ------------------------------------------


class DownConsole(ConsoleFrontend):
    """The console, failing its next `failures` deliveries as a platform down past its client's
    own retries does (a front-end's `DeliveryFailed`: the prompt did not arrive), or with `error`."""

    def __init__(self, *args, failures: int, error: Exception | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.failures = failures
        self.error = error or DeliveryFailed("502 Bad Gateway: platform unreachable")

    async def send_prompt(self, prompt):
        if self.failures:
            self.failures -= 1
            raise self.error
        return await super().send_prompt(prompt)


def scheduler_with_down_console(db, classifier, now, failures: int, error: Exception | None = None):
    journal = JournalUseCase(db, MoodUseCase(db, classifier, fetcher=None, now=now), now=now)
    scheduler = PromptScheduler(db, journal, pause_s=0, now=now)
    journal.schedule = scheduler
    out = io.StringIO()
    scheduler.register(DownConsole(usecases=None, stdin=io.StringIO(), stdout=out, failures=failures, error=error))
    return scheduler, journal, out


def scheduler_sending_to(console, db, classifier, now) -> tuple[PromptScheduler, JournalUseCase]:
    """A scheduler and its journal on the clock `now`, sending through `console`."""
    journal = JournalUseCase(db, MoodUseCase(db, classifier, fetcher=None, now=now), now=now)
    scheduler = PromptScheduler(db, journal, pause_s=0, now=now)
    journal.schedule = scheduler
    scheduler.register(console)
    return scheduler, journal


async def test_a_prompt_that_failed_to_send_is_tried_again_later_that_day(db, counting):
    user = lisbon_user(21, 0, "down")
    await db.users.upsert(user)
    at = [datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)]  # 21:00 in Lisbon
    scheduler, _journal, out = scheduler_with_down_console(db, counting, lambda: at[0], failures=2)

    assert await scheduler.deliver(user.ref) is None  # the platform was down at 21:00
    assert scheduler.retry_at(user.ref) == at[0] + timedelta(minutes=5)
    at[0] += timedelta(minutes=5)
    assert await scheduler.retry_now(user.ref) is None  # still down at 21:05
    assert scheduler.retry_at(user.ref) == at[0] + timedelta(minutes=15)
    at[0] += timedelta(minutes=15)
    assert await scheduler.retry_now(user.ref) is not None  # back at 21:20
    assert out.getvalue().count("📝") == 1 and scheduler.retry_at(user.ref) is None
    assert await db.prompts.last_sent_date(user.ref) == NOV_24


@pytest.mark.parametrize("error, level, traceback", [
    (DeliveryFailed("502 Bad Gateway: platform unreachable"), "WARNING", False),  # an outage
    (KeyError("message_id"), "ERROR", True),  # a bug in the front-end
])
async def test_a_platform_s_outage_is_one_warning_line_and_a_bug_keeps_its_traceback(
        db, counting, caplog, error, level, traceback):
    """'scheduler.send_failed' says when the prompt is tried again (an operator asked "did my
    prompt come?" can say). A Telegram or Discord 5xx, a timeout before the request left, was
    logged at ERROR with a traceback, as a bug is: an outage to wait out looked like a bug to fix.
    An outage (`DeliveryFailed`) is one WARNING line with the platform's words and the retry."""
    user = lisbon_user(21, 0, "down-or-broken")
    await db.users.upsert(user)
    at = [datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)]
    scheduler, _journal, _out = scheduler_with_down_console(db, counting, lambda: at[0], failures=1, error=error)
    assert await scheduler.deliver(user.ref) is None
    assert scheduler.retry_at(user.ref) == at[0] + timedelta(minutes=5)  # tried again either way
    (failed,) = [r for r in caplog.records if r.getMessage() == "scheduler.send_failed"]
    assert (failed.levelname, failed.exc_info is not None, failed.retry_at) == (level, traceback, "2026-11-24T21:05:00Z")
    assert getattr(failed, "reason", None) == (None if traceback else "502 Bad Gateway: platform unreachable")


async def test_the_retry_time_logged_is_the_one_scheduled_whatever_the_clock_does_between(db, counting, caplog):
    """'scheduler.send_failed' worked its retry time out from one reading of the clock, and the
    retry's job from another, after the failed prompt was withdrawn: a CI run that crossed a
    second between them logged 21:47:19 and scheduled 21:47:20. One reading, for both. The clock
    here moves a second each time it is read."""
    user = lisbon_user(21, 0, "down-at-a-second-s-edge")
    await db.users.upsert(user)
    at = [datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)]

    def ticking() -> datetime:
        at[0] += timedelta(seconds=1)
        return at[0]

    scheduler, _journal, _out = scheduler_with_down_console(db, counting, ticking, failures=1)
    assert await scheduler.deliver(user.ref) is None
    (failed,) = [r for r in caplog.records if r.getMessage() == "scheduler.send_failed"]
    (scheduled,) = [r for r in caplog.records if r.getMessage() == "scheduler.prompt_retry_scheduled"]
    retry = scheduler.retry_at(user.ref)
    assert retry is not None and failed.retry_at == retry.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert scheduled.at == retry.isoformat()


async def test_a_retry_s_lines_are_not_those_of_the_request_its_job_was_made_in(db, counting, log_stream):
    """APScheduler runs a job in the context of whatever woke it last (a /journal on's request, a
    failed prompt's): a retry's lines carried that request's req=. They carry the delivery's own
    (delivery-<n>) until the prompt is made (here: no front-end for its platform any more), then
    the prompt's."""
    user = lisbon_user(21, 0, "retried-in-a-request")
    await db.users.upsert(user)
    at = [datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)]
    scheduler, _journal, _out = scheduler_with_down_console(db, counting, lambda: at[0], failures=1)
    begin_request("con-7")  # the retry's job is made in this request
    assert await scheduler.deliver(user.ref) is None
    (failed,) = lines_of(log_stream, "scheduler.send_failed")
    assert failed.get("req", "").startswith("prompt-")
    scheduler.senders.clear()
    at[0] += timedelta(minutes=5)
    assert await scheduler.retry_now(user.ref) is None  # run in the request's context, as APScheduler would
    (no_sender,) = lines_of(log_stream, "scheduler.no_sender")
    assert no_sender.get("req", "").startswith("delivery-")


async def test_the_lines_of_a_daily_prompt_not_made_carry_the_delivery_s_own_request_id(counting, outage, log_stream):
    """A daily prompt the database could not make was logged with no req= (its lines come before a
    prompt exists): what one try logged (its failure, the retry it set) could not be told from the
    next try's. A delivery begun in no request carries delivery-<n>, the n-th since the start, until
    its prompt is made; one begun in a request (/journal prompt) keeps that request's."""
    db = outage.db
    user = lisbon_user(21, 0, "not-made")
    await db.users.upsert(user)
    at = [datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)]
    scheduler, _journal, _out = scheduler_with_console(db, counting, lambda: at[0])
    scheduler.schedule(user)
    outage.down()
    assert await scheduler.deliver(user.ref) is None  # the daily job's
    at[0] += timedelta(minutes=5)
    assert await scheduler.retry_now(user.ref) is None  # its retry's, the database still down
    begin_request("con-9")
    assert await scheduler.fire_now(user.ref) is None  # /journal prompt's
    first, retried, asked = lines_of(log_stream, "scheduler.prompt_not_made")
    scheduled, rescheduled = lines_of(log_stream, "scheduler.prompt_retry_scheduled")
    assert first.get("req", "").startswith("delivery-") and retried.get("req", "").startswith("delivery-")
    assert scheduled["req"] == first["req"] != retried["req"] == rescheduled["req"]
    assert asked.get("req") == "con-9"


async def test_the_retries_of_a_failed_prompt_stop_after_the_last_delay(db, counting, caplog):
    user = lisbon_user(12, 0, "long-outage")
    await db.users.upsert(user)
    at = [datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)]
    scheduler, _journal, out = scheduler_with_down_console(db, counting, lambda: at[0], failures=100)

    assert await scheduler.deliver(user.ref) is None
    waits = []
    while (retry := scheduler.retry_at(user.ref)) is not None:
        waits.append(retry - at[0])
        at[0] = retry
        assert await scheduler.retry_now(user.ref) is None
    assert waits == [timedelta(minutes=5), timedelta(minutes=15), timedelta(minutes=45)]
    assert out.getvalue() == "" and await db.prompts.latest_open(user.ref) is None
    assert any(r.getMessage() == "scheduler.prompt_given_up" for r in caplog.records)


async def retry_once_the_database_is_back(scheduler: PromptScheduler, ref, outage, at: list[datetime]) -> None:
    """The database back and the first retry's time come (5 minutes on): the retry is run again
    and again (the client reconnecting) until it sends a prompt; fails after 10 s, or once the
    retries give up on the day."""
    import time as time_module

    outage.up()
    at[0] += timedelta(minutes=5)
    deadline = time_module.monotonic() + 10
    while (await scheduler.retry_now(ref)) is None:  # the client reconnects
        assert time_module.monotonic() < deadline, "no prompt within 10 s of the database's return"
        assert scheduler.retry_at(ref) is not None, "the retry gave up on the day"
        await asyncio.sleep(0.1)


async def test_a_prompt_the_database_could_not_make_is_tried_again_later_that_day(counting, outage):
    """The database unreachable at 21:00 (a failover, a restart of its own): the prompt could be
    neither read nor recorded, and that day went without one, for every user due then, with no
    retry (those were for a failed send only) nor a restart's catch-up to bring it."""
    db = outage.db
    user = lisbon_user(21, 0, "blip")
    await db.users.upsert(user)
    at = [datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)]  # 21:00 in Lisbon
    scheduler, _journal, out = scheduler_with_console(db, counting, lambda: at[0])
    scheduler.schedule(user)  # its daily job, which runs `deliver`
    outage.down()

    assert await scheduler.deliver(user.ref) is None  # the database was down at 21:00
    assert scheduler.retry_at(user.ref) == at[0] + timedelta(minutes=5)

    await retry_once_the_database_is_back(scheduler, user.ref, outage, at)
    assert out.getvalue().count("📝") == 1 and scheduler.retry_at(user.ref) is None
    assert await db.prompts.last_sent_date(user.ref) == NOV_24


class CutOffConsole(ConsoleFrontend):
    """The console on a machine whose network drops as a prompt goes out: the platform and a
    database elsewhere are both unreachable (`cut` takes the database down), so the send fails."""

    def __init__(self, *args, cut, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cut = cut

    async def send_prompt(self, prompt):
        if self.cut is not None:
            self.cut, cut = None, self.cut
            cut()
            raise ConnectionError("network unreachable")
        return await super().send_prompt(prompt)


async def test_a_failed_prompt_left_recorded_by_a_database_outage_is_still_tried_again(counting, outage):
    """The send failed and the database, down too, kept the prompt's record (its withdrawal
    failed): each retry then found that record, took the day's prompt for sent, and sent nothing."""
    db = outage.db
    user = lisbon_user(21, 0, "offline")
    await db.users.upsert(user)
    at = [datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)]  # 21:00 in Lisbon
    journal = JournalUseCase(db, MoodUseCase(db, counting, fetcher=None, now=lambda: at[0]), now=lambda: at[0])
    scheduler = PromptScheduler(db, journal, pause_s=0, now=lambda: at[0])
    out = io.StringIO()
    scheduler.register(CutOffConsole(usecases=None, stdin=io.StringIO(), stdout=out, cut=outage.down))
    scheduler.schedule(user)

    assert await scheduler.deliver(user.ref) is None  # neither the platform nor the database at 21:00
    assert scheduler.retry_at(user.ref) == at[0] + timedelta(minutes=5)

    await retry_once_the_database_is_back(scheduler, user.ref, outage, at)
    assert out.getvalue().count("📝") == 1
    sent = await db.prompts.open_since(at[0] - timedelta(days=1), 10)
    assert [p.message_id for p in sent] == ["1"]  # the failed one withdrawn, the one that arrived open


async def journal_on_after_the_failed_prompt(scheduler: PromptScheduler, journal: JournalUseCase, ref: UserRef,
                                             at: list[datetime], prompt_at: time, zone: str,
                                             fires: time, *, deliver: bool = True) -> tuple[str, str | None]:
    """The 07:00 prompt failed, its retry set: at 07:02 `/journal on <prompt_at> <zone>` (said again
    while the database's client reconnects), the cancelled retry's time (07:05) passes, and the new
    time's run comes (`fires`, UTC): what the user was told, and the prompt that run sent (not
    `deliver`: the reply alone, the clock left at 07:02)."""
    import time as time_module

    at[0] = datetime.combine(NOV_24, time(7, 2), tzinfo=timezone.utc)
    deadline = time_module.monotonic() + 10
    while isinstance(told := await journal.enable(Caller(ref.platform, ref.user_id, chat_id=ref.user_id),
                                                  f"{prompt_at:%H:%M}", zone), ErrorReply):
        assert time_module.monotonic() < deadline, told  # the client reconnects
        await asyncio.sleep(0.1)
    if not deliver:
        return told.text, None
    at[0] += timedelta(minutes=3)
    assert await scheduler.retry_now(ref) is None  # cancelled
    at[0] = datetime.combine(NOV_24, fires, tzinfo=timezone.utc)
    return told.text, await scheduler.deliver(ref, day=NOV_24)


@pytest.mark.parametrize("prompt_at, zone, fires", [
    (time(20, 0), "Europe/Lisbon", time(20, 0)),  # a later time: "today at 20:00"
    (time(7, 0), "America/New_York", time(12, 0)),  # the same time in a zone 5 h behind: 12:00 UTC
])
async def test_a_new_time_s_reply_and_prompt_agree_where_the_failed_prompt_s_record_was_kept(
        counting, outage, prompt_at, zone, fires):
    """The 07:00 prompt failed with the database down too, so its record stayed, for the retry to
    withdraw. /journal on 20:00 then cancelled the retry and read that record as the day's: "today's
    was sent already", and no prompt came that day, though none had arrived. /journal on now
    withdraws it, as the retry would have: "today at 20:00", and 20:00 sends it (once)."""
    db = outage.db
    user = lisbon_user(7, 0, f"moved-offline-{zone.split('/')[-1]}")
    await db.users.upsert(user)
    at = [datetime(2026, 11, 24, 7, 0, tzinfo=timezone.utc)]  # 07:00 in Lisbon
    scheduler, journal = scheduler_sending_to(
        CutOffConsole(usecases=None, stdin=io.StringIO(), stdout=(out := io.StringIO()), cut=outage.down),
        db, counting, lambda: at[0])
    scheduler.schedule(user)
    assert await scheduler.deliver(user.ref) is None  # neither the platform nor the database at 07:00
    assert scheduler.retry_at(user.ref) is not None

    outage.up()
    told, sent = await journal_on_after_the_failed_prompt(scheduler, journal, user.ref, at, prompt_at, zone, fires)
    assert f"Your next prompt comes today at {prompt_at:%H:%M}" in told
    assert sent is not None and out.getvalue().count("📝") == 1
    assert [p.prompt_id for p in await db.prompts.open_since(at[0] - timedelta(days=1), 10)] == [sent]
    assert await scheduler.deliver(user.ref, day=NOV_24) is None  # the day's, once


async def test_journal_off_then_on_the_same_day_withdraws_the_failed_prompt_s_kept_record(db_server, mongo_uri,
                                                                                         db_name, counting):
    """The 07:00 prompt failed with its withdrawal cut (its record kept, for the retry), then
    /journal off and /journal on 20:00: off removed the retry and its record with it stayed the
    day's: "tomorrow at 20:00: today's was sent already", and no prompt came that day, though none
    had arrived. /journal on withdraws it, as after a new time said without the off (3d8d48c)."""
    from tests.fakes.wire_gate import gated_database

    async with gated_database(db_server, mongo_uri, db_name) as (gate, db):
        user, at, scheduler, journal, out = await a_failed_prompt_whose_withdrawal_is_cut(
            gate, db, counting, "off-and-on")
        await journal.disable(Caller("console", user.user_id, chat_id=user.user_id))
        told, sent = await journal_on_after_the_failed_prompt(
            scheduler, journal, user.ref, at, time(20, 0), "Europe/Lisbon", time(20, 0))
    assert "Your next prompt comes today at 20:00" in told
    assert sent is not None and out.getvalue().count("📝") == 1


async def test_forget_after_a_failed_prompt_leaves_nothing_of_the_user_in_the_scheduler(
        db_server, mongo_uri, db_name, counting):
    """/forget (which unschedules) after the 07:00 prompt failed with its record kept: the retry's
    prompt id, kept for a /journal on to withdraw, is not kept for someone deleted."""
    from tests.fakes.wire_gate import gated_database

    async with gated_database(db_server, mongo_uri, db_name) as (gate, db):
        user, _at, scheduler, journal, _out = await a_failed_prompt_whose_withdrawal_is_cut(
            gate, db, counting, "forgotten-offline")
        await journal.disable(Caller("console", user.user_id, chat_id=user.user_id))  # kept for /journal on
        await PrivacyUseCase(db, schedule=scheduler).forget(Caller("console", user.user_id, chat_id=user.user_id),
                                                             confirmed=True)
    assert scheduler.cancelled_unsent(user.ref) is None and scheduler.retry_at(user.ref) is None


async def a_failed_prompt_whose_withdrawal_is_cut(gate, db, counting, name: str):
    """At 07:00 in Lisbon the platform is down and the database's withdrawal of the failed prompt's
    record is cut on the wire: the record stays, and the retry is set to withdraw it first."""
    user = lisbon_user(7, 0, name)
    await db.users.upsert(user)
    at = [datetime(2026, 11, 24, 7, 0, tzinfo=timezone.utc)]  # 07:00 in Lisbon
    scheduler, journal, out = scheduler_with_down_console(db, counting, lambda: at[0], failures=1)
    scheduler.schedule(user)
    gate.cut_next("delete", "prompts")
    assert await scheduler.deliver(user.ref) is None  # the platform down, the withdrawal cut
    assert gate.was_cut and scheduler.retry_at(user.ref) is not None
    return user, at, scheduler, journal, out


async def journal_on_at_20_with_its_withdrawal_refused(gate, db, counting, name: str):
    """The failed 07:00 prompt (its withdrawal cut), then `/journal on 20:00 Europe/Lisbon`, whose
    withdrawal of that record the database refuses too (cut on the wire, once): the user, the clock,
    the scheduler, the journal, the console's output and what the user was told."""
    user, at, scheduler, journal, out = await a_failed_prompt_whose_withdrawal_is_cut(gate, db, counting, name)
    gate.cut_next("delete", "prompts")
    told, _ = await journal_on_after_the_failed_prompt(
        scheduler, journal, user.ref, at, time(20, 0), "Europe/Lisbon", time(20, 0), deliver=False)
    assert gate.was_cut
    return user, at, scheduler, journal, out, told


async def test_a_new_time_s_reply_and_prompt_agree_where_the_database_refuses_the_failed_prompt_s_withdrawal_again(
        db_server, mongo_uri, db_name, counting):
    """As above, but the database refuses /journal on's withdrawal of the failed prompt's record too
    (cut on the wire, once): that withdrawal was never tried again, so the record stood for the
    day's prompt, though it never arrived: "tomorrow at 20:00: today's was sent already", and no
    prompt came that day, however soon the database was back. The new time's run now withdraws it
    first, and the reply says so: "today at 20:00", and 20:00 sends the day's prompt, once."""
    from tests.fakes.wire_gate import gated_database

    async with gated_database(db_server, mongo_uri, db_name) as (gate, db):
        user, at, scheduler, journal, out = await a_failed_prompt_whose_withdrawal_is_cut(
            gate, db, counting, "moved-refused")

        gate.cut_next("delete", "prompts")
        told, sent = await journal_on_after_the_failed_prompt(
            scheduler, journal, user.ref, at, time(20, 0), "Europe/Lisbon", time(20, 0))
        assert gate.was_cut  # /journal on tried to withdraw it
        assert "Your next prompt comes today at 20:00" in told, told
        assert sent is not None and out.getvalue().count("📝") == 1
        assert [p.prompt_id for p in await db.prompts.open_since(at[0] - timedelta(days=1), 10)] == [sent]
        assert await scheduler.deliver(user.ref, day=NOV_24) is None  # the day's, once


async def test_a_failed_prompt_s_withdrawal_refused_at_journal_on_and_at_the_new_time_is_retried_with_the_prompt(
        db_server, mongo_uri, db_name, counting):
    """The database refuses the failed prompt's withdrawal at /journal on 20:00 and once more at
    20:00: the day's prompt is tried again as one the database could not make (20:05), which
    withdraws the record first and sends it, once."""
    from tests.fakes.wire_gate import gated_database

    async with gated_database(db_server, mongo_uri, db_name) as (gate, db):
        user, at, scheduler, journal, out, told = await journal_on_at_20_with_its_withdrawal_refused(
            gate, db, counting, "moved-refused-twice")
        assert "Your next prompt comes today at 20:00" in told, told
        at[0] = datetime(2026, 11, 24, 20, 0, tzinfo=timezone.utc)
        gate.cut_next("delete", "prompts")
        assert await scheduler.deliver(user.ref, day=NOV_24) is None
        assert gate.was_cut and out.getvalue().count("📝") == 0
        assert scheduler.retry_at(user.ref) == at[0] + timedelta(minutes=5)
        sent = await retried_until_sent(scheduler, user.ref, at)
        assert out.getvalue().count("📝") == 1
        assert [p.prompt_id for p in await db.prompts.open_since(at[0] - timedelta(days=1), 10)] == [sent]


async def test_a_new_time_said_after_one_whose_withdrawal_was_refused_withdraws_the_failed_prompt(
        db_server, mongo_uri, db_name, counting):
    """/journal on 20:00, its withdrawal of the failed prompt's record refused, then /journal on
    21:00 with the database back: the second, handed nothing (the retry was cancelled by the
    first), read the record as the day's: "tomorrow at 21:00: today's was sent already", and 21:00
    sent none. It now withdraws it ("today at 21:00"), and 21:00 sends the day's prompt, once."""
    from tests.fakes.wire_gate import gated_database

    async with gated_database(db_server, mongo_uri, db_name) as (gate, db):
        user, at, scheduler, journal, out, _told = await journal_on_at_20_with_its_withdrawal_refused(
            gate, db, counting, "moved-refused-then-again")
        told, sent = await journal_on_after_the_failed_prompt(
            scheduler, journal, user.ref, at, time(21, 0), "Europe/Lisbon", time(21, 0), deliver=False)
        assert "Your next prompt comes today at 21:00" in told, told
        assert not await db.prompts.sent_for(user.ref, NOV_24)  # withdrawn by the second /journal on
        at[0] = datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)
        assert await scheduler.deliver(user.ref, day=NOV_24) is not None
        assert await scheduler.deliver(user.ref, day=NOV_24) is None
    assert out.getvalue().count("📝") == 1


async def test_forget_after_a_refused_withdrawal_leaves_nothing_of_the_user_to_withdraw(
        db_server, mongo_uri, db_name, counting):
    """/forget after /journal on's withdrawal of the failed prompt's record was refused: the
    prompt id kept to withdraw at the user's next delivery is not kept for someone deleted."""
    from tests.fakes.wire_gate import gated_database

    async with gated_database(db_server, mongo_uri, db_name) as (gate, db):
        user, at, scheduler, journal, _out, _told = await journal_on_at_20_with_its_withdrawal_refused(
            gate, db, counting, "forgotten-refused")
        assert journal.unsent_prompt(user.ref) is not None
        await PrivacyUseCase(db, schedule=scheduler).forget(Caller("console", user.user_id, chat_id=user.user_id),
                                                             confirmed=True)
    assert journal.unsent_prompt(user.ref) is None and scheduler.cancelled_unsent(user.ref) is None


async def test_journal_status_after_a_refused_withdrawal_says_when_the_day_s_prompt_comes(
        db_server, mongo_uri, db_name, counting):
    """/journal on 20:00, its withdrawal of the failed prompt's record refused: the reply leaves that
    record out of the day's ("today at 20:00", cd32635), but '/journal' read it as today's prompt,
    open ("Today's prompt is open: answer it"), though it never arrived. It says what /journal on
    said: the day's prompt comes at 20:00."""
    from bot.usecases.journal import TODAY_BY_COMMAND
    from tests.fakes.wire_gate import gated_database

    async with gated_database(db_server, mongo_uri, db_name) as (gate, db):
        user, _at, _scheduler, journal, _out, told = await journal_on_at_20_with_its_withdrawal_refused(
            gate, db, counting, "status-refused")
        assert "Your next prompt comes today at 20:00" in told, told
        assert await db.prompts.sent_for(user.ref, NOV_24)  # its record is still there
        status = await journal.status(Caller("console", user.user_id, chat_id=user.user_id), how=TODAY_BY_COMMAND)
    assert status is not None and "Your next prompt comes today at 20:00" in status.text, status


async def retried_until_sent(scheduler: PromptScheduler, ref: UserRef, at: list[datetime]) -> str:
    """The pending retry run at its time, again and again (the client reconnecting after a cut)
    until it sends a prompt; fails after 10 s, or once the retries give up on the day."""
    import time as time_module

    deadline = time_module.monotonic() + 10
    while True:
        at[0] = scheduler.retry_at(ref)
        assert at[0] is not None, "the retry gave up on the day"
        if (sent := await scheduler.retry_now(ref)) is not None:
            return sent
        assert time_module.monotonic() < deadline, "no prompt within 10 s"
        await asyncio.sleep(0.1)


async def test_a_second_new_time_said_while_the_first_withdraws_the_failed_prompt_agrees_with_the_prompt(
        db_server, mongo_uri, db_name, counting):
    """The 07:00 prompt failed with its withdrawal cut (its record kept, for the retry), then
    /journal on 20:00, whose withdrawal of that record the database is slow to make, and /journal on
    21:00 said meanwhile: the second read the record as the day's ("tomorrow at 21:00: today's was
    sent already"), the first's withdrawal landed, and 21:00 sent the day's prompt all the same."""
    from tests.fakes.wire_gate import gated_database

    async with gated_database(db_server, mongo_uri, db_name) as (gate, db):
        user, at, scheduler, journal, out = await a_failed_prompt_whose_withdrawal_is_cut(
            gate, db, counting, "moved-twice")

        gate.hold("delete", "prompts")  # the first /journal on's withdrawal, slow
        first = asyncio.create_task(journal_on_after_the_failed_prompt(
            scheduler, journal, user.ref, at, time(20, 0), "Europe/Lisbon", time(7, 2), deliver=False))
        await asyncio.wait_for(gate.held.wait(), 10)
        second = asyncio.create_task(journal_on_after_the_failed_prompt(
            scheduler, journal, user.ref, at, time(21, 0), "Europe/Lisbon", time(7, 2), deliver=False))
        await asyncio.sleep(1)  # the second's reply read the day's prompt by now, unless it waits
        gate.release()
        await first
        second, _ = await second
        at[0] = datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)
        sent = await scheduler.deliver(user.ref, day=NOV_24)
    assert ("Your next prompt comes today at 21:00" in second) == (sent is not None), (second, sent)
    assert sent is not None and out.getvalue().count("📝") == 1


async def test_a_failed_prompt_late_in_the_evening_is_tried_again_after_midnight_for_its_own_day(db, counting):
    # At 23:59 every retry falls past midnight: bounded by the day's end, a platform's blip at that
    # minute lost the day, where a restart then (the catch-up, 3 h) still sent it.
    user = lisbon_user(23, 59, "night-owl")
    await db.users.upsert(user)
    at = [datetime(2026, 11, 24, 23, 59, tzinfo=timezone.utc)]  # 23:59 in Lisbon
    scheduler, _journal, out = scheduler_with_down_console(db, counting, lambda: at[0], failures=2)

    assert await scheduler.deliver(user.ref) is None
    assert scheduler.retry_at(user.ref) == at[0] + timedelta(minutes=5)  # 00:04, the 25th
    at[0] += timedelta(minutes=5)
    assert await scheduler.retry_now(user.ref) is None
    assert scheduler.retry_at(user.ref) == at[0] + timedelta(minutes=15)
    at[0] += timedelta(minutes=15)
    assert await scheduler.retry_now(user.ref) is not None  # 00:19
    assert out.getvalue().count("📝") == 1
    assert (await db.prompts.latest_open(user.ref)).local_date == NOV_24  # the day it asks about


async def test_a_failed_prompt_is_not_tried_again_past_the_catch_up_s_grace_after_its_day(db, counting):
    user = lisbon_user(23, 59, "night-owl")
    await db.users.upsert(user)
    at = [datetime(2026, 11, 25, 2, 50, tzinfo=timezone.utc)]  # the 24th's prompt, sent by a restart's catch-up
    scheduler, _journal, out = scheduler_with_down_console(db, counting, lambda: at[0], failures=2)

    assert await scheduler.deliver(user.ref, day=NOV_24) is None
    assert scheduler.retry_at(user.ref) == at[0] + timedelta(minutes=5)  # 02:55: within 3 h of the day's end
    at[0] += timedelta(minutes=5)
    assert await scheduler.retry_now(user.ref) is None
    assert scheduler.retry_at(user.ref) is None  # 03:10 is past them: the 25th's prompt is the next
    assert out.getvalue() == ""


@pytest.mark.parametrize("woken, sent", [
    (datetime(STARTED_YEAR, 11, 24, 11, 0), True),  # 3 h 55 min past the retry's time, 4 h past the prompt's
    (datetime(STARTED_YEAR, 11, 24, 15, 30), False),  # 8 h 30 min past the prompt's time
])
async def test_a_retry_the_host_slept_through_is_sent_late_as_the_daily_prompt_would_be(db, counting, woken, sent):
    """The 07:00 prompt failed (the platform down), its retry due at 07:05, and the host suspended
    until 11:00: APScheduler gave the retry up (over its 3 h misfire grace) and the day had no
    prompt, though a daily prompt missed so is sent up to 8 h late within its day."""
    from bot.scheduler import retry_job_id

    user = lisbon_user(7, 0, "retried-asleep")  # Lisbon is UTC+0 in November
    await db.users.upsert(user)
    at = [datetime(STARTED_YEAR, 11, 24, 6, 0, tzinfo=timezone.utc)]
    scheduler, _journal, out = scheduler_with_down_console(db, counting, lambda: at[0], failures=1)
    try:
        assert await scheduler.start() == 0
        at[0] += timedelta(hours=1)  # 07:00: the platform is down
        await run_the_daily_job(scheduler, user)
        retry = scheduler.retry_at(user.ref)
        assert retry == at[0] + timedelta(minutes=5) and "📝" not in out.getvalue()
        at[0] = woken.replace(tzinfo=timezone.utc)
        await run_late(scheduler, retry_job_id(user.ref), late=at[0] - retry)
        assert out.getvalue().count("📝") == int(sent)
        assert await db.prompts.sent_for(user.ref, date(STARTED_YEAR, 11, 24)) == sent
    finally:
        await scheduler.stop()


async def test_a_retry_sends_no_second_prompt_when_one_got_through_meanwhile(db, counting):
    user = lisbon_user(21, 0, "asked")
    await db.users.upsert(user)
    at = [datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)]
    scheduler, journal, out = scheduler_with_down_console(db, counting, lambda: at[0], failures=1)

    assert await scheduler.deliver(user.ref) is None
    at[0] += timedelta(minutes=2)
    assert isinstance(await journal.prompt_now(Caller("console", "asked", chat_id="asked")), TextReply)
    at[0] += timedelta(minutes=3)
    assert await scheduler.retry_now(user.ref) is None
    assert out.getvalue().count("📝") == 1


async def test_journal_off_cancels_the_retry_of_a_failed_prompt(db, counting):
    user = lisbon_user(21, 0, "stopped")
    await db.users.upsert(user)
    at = datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)
    scheduler, journal, _out = scheduler_with_down_console(db, counting, lambda: at, failures=1)

    assert await scheduler.deliver(user.ref) is None and scheduler.retry_at(user.ref) is not None
    await journal.disable(Caller("console", "stopped", chat_id="stopped"))
    assert scheduler.retry_at(user.ref) is None


@pytest.mark.parametrize("prompt_at, zone, fires", [
    (time(20, 0), "Europe/Lisbon", time(20, 0)),  # a later time: "today at 20:00"
    (time(7, 0), "America/New_York", time(12, 0)),  # the same time in a zone 5 h behind: 12:00 UTC
])
async def test_journal_on_with_a_new_time_cancels_the_retry_of_the_old_time_s_failed_prompt(
        db, counting, prompt_at, zone, fires):
    """The 07:00 prompt failed to send, its retry set for 07:05; at 07:02 /journal on 20:00 told the
    user "today at 20:00", yet the retry sent the day's prompt at 07:05, and 20:00 sent none (the
    day's was sent). A new time or zone now cancels the old time's retry: the prompt comes as told."""
    user_id = f"moved-{zone.split('/')[-1]}"
    await db.users.upsert(lisbon_user(7, 0, user_id))
    at = [datetime.combine(DAY, time(6, 0), tzinfo=timezone.utc)]  # Lisbon is UTC+0 in November
    scheduler, _journal, out = scheduler_with_down_console(db, counting, lambda: at[0], failures=1)
    ref = UserRef("console", user_id)
    try:
        assert await scheduler.start() == 0
        at[0] = datetime.combine(DAY, time(7, 0), tzinfo=timezone.utc)
        await run_the_daily_job(scheduler, lisbon_user(7, 0, user_id))  # the platform down at 07:00
        assert scheduler.retry_at(ref) == at[0] + timedelta(minutes=5)

        at[0] += timedelta(minutes=2)
        told = await journal_on(db, counting, at[0], prompt_at, user_id, scheduler, zone=zone)
        assert f"Your next prompt comes today at {prompt_at:%H:%M}" in told
        assert scheduler.retry_at(ref) is None

        at[0] += timedelta(minutes=3)
        assert await scheduler.retry_now(ref) is None and out.getvalue().count("📝") == 0
        at[0] = datetime.combine(DAY, fires, tzinfo=timezone.utc)
        await run_the_daily_job(scheduler, User("console", user_id, timezone=zone, prompt_time=prompt_at))
        assert out.getvalue().count("📝") == 1
        assert await db.prompts.last_sent_date(ref) == DAY
    finally:
        await scheduler.stop()


class UnconfirmedConsole(ConsoleFrontend):
    """The console, printing the prompt but timing out before it says so: as a send whose answer
    never came back, though the platform carried it out."""

    async def send_prompt(self, prompt):
        await super().send_prompt(prompt)
        raise DeliveryUncertain("timed out")


async def test_a_prompt_that_may_have_arrived_stays_open_and_is_not_sent_again(db, counting):
    user = lisbon_user(21, 0, "maybe")
    await db.users.upsert(user)
    at = datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)
    journal = JournalUseCase(db, MoodUseCase(db, counting, fetcher=None), now=lambda: at)
    scheduler = PromptScheduler(db, journal, pause_s=0, now=lambda: at)
    out = io.StringIO()
    scheduler.register(UnconfirmedConsole(usecases=None, stdin=io.StringIO(), stdout=out))

    prompt_id = await scheduler.deliver(user.ref)
    assert prompt_id is not None and scheduler.retry_at(user.ref) is None
    assert (await db.prompts.latest_open(user.ref)).prompt_id == prompt_id  # still open to an answer
    assert await scheduler.deliver(user.ref) is None and out.getvalue().count("📝") == 1


class StalledConsole(ConsoleFrontend):
    """The console, its prompt's send under way until the bot is killed."""

    async def send_prompt(self, prompt):
        await asyncio.Event().wait()


async def test_a_prompt_cut_short_by_a_kill_where_the_chat_cannot_be_read_back_stays_the_day_s(db, counting):
    """Telegram's Bot API, as the console, reads no chat back: a prompt recorded by a run killed
    while it was on its way may be on the user's screen (the request had left), or not. It stays
    the day's prompt, open to an answer, and is not sent again (docs/limits.md says why)."""
    user = lisbon_user(21, 0, "killed")
    await db.users.upsert(user)
    at_nine = datetime(STARTED_YEAR, 11, 24, 21, 0, tzinfo=timezone.utc)  # 21:00 in Lisbon
    killed, _ = scheduler_sending_to(StalledConsole(usecases=None, stdin=io.StringIO(), stdout=io.StringIO()),
                                     db, counting, lambda: at_nine)
    delivering = asyncio.create_task(killed.deliver(user.ref))
    while (recorded := await db.prompts.latest_open(user.ref)) is None:
        await asyncio.sleep(0.01)
    delivering.cancel()  # killed outright: nothing after the record ran
    with contextlib.suppress(asyncio.CancelledError):
        await delivering
    assert recorded.sending

    restarted, _journal, out = scheduler_with_console(db, counting, lambda: at_nine + timedelta(minutes=10))
    try:
        assert await restarted.start() == 0 and out.getvalue() == ""
    finally:
        await restarted.stop()
    assert (await db.prompts.latest_open(user.ref)).prompt_id == recorded.prompt_id


class ReadBackConsole(ConsoleFrontend):
    """The console as a platform that shows the bot its chat (Discord's DM history): a prompt is
    found there when its phrase was printed. Its first send times out before the request reaches
    the platform (nothing printed), as a `DeliveryUncertain` that in fact never arrived."""

    def __init__(self, *args, lost: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lost = lost

    async def send_prompt(self, prompt):
        if self.lost:
            self.lost = False
            raise DeliveryUncertain("timed out")
        return await super().send_prompt(prompt)

    async def find_prompt(self, prompt, recorded_at):
        return "shown" if prompt.phrase in self.stdout.getvalue() else None


@pytest.mark.parametrize("asked_since, resent", [(False, 1), (True, 0)])
async def test_a_prompt_never_seen_sent_is_sent_at_the_restart_unless_the_day_had_another(
        db, counting, asked_since, resent):
    """A prompt whose send timed out stays `sending`; the restart that day, where the chat shows it
    did not arrive, sends it. Not when /journal prompt brought one that day since: one is the day's."""
    user = lisbon_user(21, 0, "timed-out")
    await db.users.upsert(user)
    at = [datetime(STARTED_YEAR, 11, 24, 21, 0, tzinfo=timezone.utc)]  # 21:00 in Lisbon
    chat = io.StringIO()
    scheduler, journal = scheduler_sending_to(
        ReadBackConsole(usecases=None, stdin=io.StringIO(), stdout=chat, lost=True), db, counting, lambda: at[0])
    assert await scheduler.deliver(user.ref) is not None and chat.getvalue() == ""
    at[0] += timedelta(minutes=5)
    if asked_since:
        assert isinstance(await journal.prompt_now(Caller("console", "timed-out", chat_id="timed-out")), TextReply)

    at[0] += timedelta(minutes=5)
    restarted, _ = scheduler_sending_to(ReadBackConsole(usecases=None, stdin=io.StringIO(), stdout=chat),
                                        db, counting, lambda: at[0])
    try:
        assert await restarted.start() == resent
    finally:
        await restarted.stop()
    assert chat.getvalue().count("📝") == 1


class CutOffReadBackConsole(CutOffConsole, ReadBackConsole):
    """A platform that shows the bot its chat, on a machine whose network drops as a prompt goes out."""


async def test_a_failed_prompt_the_database_kept_is_sent_by_a_restart_before_its_retry(counting, outage):
    """The send failed and the database, down too, kept the prompt's record; the bot restarted
    before the retry that would have withdrawn it: the catch-up took that record for the day's
    prompt, and the day had none. The restart, once the database is back, finds the chat without it."""
    import time as time_module

    db = outage.db
    user = lisbon_user(21, 0, "restarted-offline")
    await db.users.upsert(user)
    at = datetime(STARTED_YEAR, 11, 24, 21, 0, tzinfo=timezone.utc)  # 21:00 in Lisbon
    chat = io.StringIO()
    scheduler, _ = scheduler_sending_to(
        CutOffReadBackConsole(usecases=None, stdin=io.StringIO(), stdout=chat, cut=outage.down),
        db, counting, lambda: at)
    scheduler.schedule(user)
    assert await scheduler.deliver(user.ref) is None and scheduler.retry_at(user.ref) is not None
    outage.up()  # and the bot restarted, its retry gone with it

    deadline = time_module.monotonic() + 10
    while True:
        restarted, _ = scheduler_sending_to(ReadBackConsole(usecases=None, stdin=io.StringIO(), stdout=chat),
                                            db, counting, lambda: at + timedelta(minutes=10))
        try:
            sent = await restarted.start()
            break
        except StorageError:  # the client reconnects
            assert time_module.monotonic() < deadline, "no start within 10 s of the database's return"
            await asyncio.sleep(0.1)
        finally:
            await restarted.stop()
    assert sent == 1 and chat.getvalue().count("📝") == 1


class SlowReadBackConsole(ReadBackConsole):
    """A platform that shows the bot its chat, slowly (Discord's history read, a start's many
    users paced before it): the reading waits for `read`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reading, self.read = asyncio.Event(), asyncio.Event()

    async def find_prompt(self, prompt, recorded_at):
        self.reading.set()
        await self.read.wait()
        return await super().find_prompt(prompt, recorded_at)


@pytest.mark.parametrize("meanwhile", ["asked", "answered", "journal off", "forgotten"])
async def test_a_prompt_resent_at_the_start_is_not_sent_when_the_user_asked_or_answered_meanwhile(
        db, counting, meanwhile):
    """The start's resend looked the prompt up as the start read it, and the user before its
    chat's read: /journal prompt during the start (a second prompt sent), the prompt answered
    meanwhile (a DM taken for its answer), /journal off or /forget while the chat was read, and
    it was sent all the same, a second prompt that day, one already answered, or one unwanted."""
    user = lisbon_user(21, 0, f"meanwhile-{meanwhile}")
    await db.users.upsert(user)
    at = [datetime(STARTED_YEAR, 11, 24, 21, 0, tzinfo=timezone.utc)]  # 21:00 in Lisbon
    chat = io.StringIO()
    scheduler, _ = scheduler_sending_to(
        ReadBackConsole(usecases=None, stdin=io.StringIO(), stdout=chat, lost=True), db, counting, lambda: at[0])
    unconfirmed = await scheduler.deliver(user.ref)
    at[0] += timedelta(minutes=10)

    slow = SlowReadBackConsole(usecases=None, stdin=io.StringIO(), stdout=chat)
    restarted, journal = scheduler_sending_to(slow, db, counting, lambda: at[0])
    starting = asyncio.create_task(restarted.start())
    try:
        await asyncio.wait_for(slow.reading.wait(), 10)
        if meanwhile == "asked":
            assert isinstance(await journal.prompt_now(Caller("console", user.user_id, chat_id=user.user_id)),
                              TextReply)
        elif meanwhile == "answered":
            await db.prompts.mark_answered(unconfirmed)
        elif meanwhile == "journal off":
            await journal.disable(Caller("console", user.user_id, chat_id=user.user_id))
        else:
            await PrivacyUseCase(db).forget(Caller("console", user.user_id, chat_id=user.user_id), confirmed=True)
        slow.read.set()
        assert await starting == 0
    finally:
        await restarted.stop()
    assert chat.getvalue().count("📝") == (1 if meanwhile == "asked" else 0)
