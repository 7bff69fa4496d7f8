"""Daily journal prompts at each opted-in user's time, in their own time zone: one APScheduler job
for all the users of one time and zone, delivering to each in turn.

The state lives in MongoDB, not in the scheduler: at start the jobs are rebuilt from the users who
opted in, and a prompt missed while the bot was down (its time passed less than GRACE ago, or less
than LATE_MAX ago the same local day, nothing was sent for its day, and it had not passed when
/journal on set it: `set_past_its_time`) is sent at once. So is one the run before recorded and
never saw sent, where the platform shows it did not arrive (`resend_unconfirmed`). Delivery goes
through the front-end registered for the user's platform (a `PromptSender`), paced so a broadcast
doesn't hit the platforms all at once.
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import weakref
from datetime import date, datetime, time, timedelta, timezone
from typing import AsyncIterator, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger

from bot.usecases.journal import OPEN_PROMPTS_MAX, JournalUseCase, local_today, prompt_instant
from bot.logs import REQUEST, as_request, begin_request
from bot.replies import PromptMessage
from bot.usecases.ports import DeliveryFailed, DeliveryUncertain, PromptSender, RecipientGone, SenderRefused
from storage.models import SentPrompt, StorageError, User, UserRef

log = logging.getLogger(__name__)

# A prompt up to 3 h late is still worth sending (bot restarted, event loop busy), past midnight too:
# it asks about its own day.
GRACE = timedelta(hours=3)
# Later than that (the bot down for hours, the host suspended over the prompt time, its clock stepped
# forward past it), while its local day lasts, up to 8 h late: a 07:00 prompt comes by 15:00, 16 h
# before the next day's (14 h at least, across Troll's two-hour spring change). Later, the day is skipped.
LATE_MAX = timedelta(hours=8)
# At most this many deliveries at once, each followed by a short pause: the front-ends' own rate
# limiters handle the platforms' per-chat limits, this keeps a 21:00 burst from flooding them.
DELIVERY_CONCURRENCY = 4
DELIVERY_PAUSE_S = 0.05
# A daily prompt whose sending failed for a passing reason (the platform down past its client's own
# retries, a network error) is tried again after each of these waits in turn, within its local day.
RETRY_DELAYS = (timedelta(minutes=5), timedelta(minutes=15), timedelta(minutes=45))
# The bot's stop: prompts on their way get this long to arrive (within the front-ends' own grace),
# before the front-ends close their connections under them.
STOP_GRACE_S = 4.0


def group_id(user: User) -> str:
    """The job of every user prompted at this time in this zone. A job each cost APScheduler ~60 µs
    of the event loop per user when they came due in one pass (10 000 users at 21:30: ~0.6-1 s when
    nothing else ran), and as much again per user to rebuild them at start."""
    assert user.prompt_time is not None
    return f"prompts:{user.timezone}:{user.prompt_time.isoformat()}"


def retry_job_id(ref: UserRef) -> str:
    return f"prompt-retry:{ref.platform}:{ref.user_id}"


def retry_time(day: date, zone: str, now: datetime, attempt: int, grace: timedelta = GRACE) -> datetime | None:
    """When to try a day's failed prompt again after `attempt` tries failed (1 for the first), or
    None: the retries are spent, or the next one would fall more than `grace` past the local day's
    end. Past midnight it still asks about its day, as the start's catch-up does (`missed_day`):
    bounded by the day's end, a prompt at 23:59 had no retry at all."""
    if attempt > len(RETRY_DELAYS):
        return None
    at = now.astimezone(timezone.utc) + RETRY_DELAYS[attempt - 1]
    day_ends = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(zone))
    return at if at < day_ends + grace else None


class DailyAt(BaseTrigger):
    """Once a day at a local wall-clock time, whatever DST does to that day. A time the clocks skip
    (01:30 on a spring-forward night) fires as much later as they jump (an hour; Lord Howe's half
    hour, Troll's two: `prompt_instant`); a time that happens twice (an autumn night) fires at its
    first occurrence only. APScheduler's CronTrigger answers the second 01:30 with itself as the
    next fire time, for ever: the scheduler's catch-up loop then never ends."""

    def __init__(self, at: time, zone: ZoneInfo) -> None:
        self.at = at
        self.timezone = zone

    def fire_time(self, day: date) -> datetime:
        """The instant, in UTC. fold=0: the first of a repeated time; a skipped time keeps the
        offset from before the change (`prompt_instant`: /journal on's reply goes by it too)."""
        return prompt_instant(day, self.at, self.timezone)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        # As APScheduler's triggers do: the first fire time after the previous one, even if it is
        # already past (the scheduler decides what a late run is worth), else the next from now.
        # All in UTC: aware datetimes of one zone add and compare as wall clocks.
        # Woken at the previous one's instant to the microsecond (now == previous), as CronTrigger:
        # a microsecond on, else APScheduler's loop over the run times due gets it back for ever.
        start = now.astimezone(timezone.utc)
        if previous_fire_time is not None:
            previous = previous_fire_time.astimezone(timezone.utc)
            start = min(start, previous + timedelta(microseconds=1))
            if start == previous:
                start += timedelta(microseconds=1)
        day = start.astimezone(self.timezone).date() - timedelta(days=1)
        while (due := self.fire_time(day)) < start:
            day += timedelta(days=1)
        return due.astimezone(self.timezone)

    def fire_time_before(self, instant: datetime) -> datetime:
        """The latest fire time before `instant`, in UTC: a run's own, given the next run
        APScheduler set from it (`get_next_fire_time`: the first fire time after it)."""
        instant = instant.astimezone(timezone.utc)
        day = instant.astimezone(self.timezone).date()
        while (fired := self.fire_time(day)) >= instant:
            day -= timedelta(days=1)
        return fired

    def due_day(self, now: datetime) -> date:
        """The local day of the latest fire time at or before `now`."""
        today = now.astimezone(self.timezone).date()
        return today if self.fire_time(today) <= now else today - timedelta(days=1)

    def late_day(self, now: datetime, grace: timedelta = GRACE) -> date | None:
        """The local day of the latest fire time at or before `now`, if its prompt is still worth
        sending: that time passed at most `grace` ago (past midnight too), or under LATE_MAX ago
        with `now` still in its local day. Else None: too late, the day is skipped. Real hours, not
        wall-clock ones, on a night the clocks change."""
        now = now.astimezone(timezone.utc)
        day = self.due_day(now)
        late = now - self.fire_time(day)
        if late <= grace or (late < LATE_MAX and now.astimezone(self.timezone).date() == day):
            return day
        return None

    def __repr__(self) -> str:
        return f"DailyAt({self.at:%H:%M}, {self.timezone})"


def prompt_trigger(user: User) -> DailyAt:
    """Every day at the user's local time; the time zone makes it right across DST changes."""
    assert user.prompt_time is not None
    return DailyAt(user.prompt_time, ZoneInfo(user.timezone))


def zone_loads(user: User) -> bool:
    """Whether this machine's zone database has the user's saved zone. One saved where it had it (a
    newer tzdata's zone) is logged and left out: its prompts cannot be timed, and one user's zone
    must not stop the start for everyone."""
    try:
        ZoneInfo(user.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        log.error("scheduler.unknown_zone", extra={"user": user.user_id, "tz": user.timezone})
        return False
    return True


def due_day(user: User, now: datetime) -> date:
    """The local day of the latest prompt time at or before `now`: a daily prompt that runs late,
    past midnight (queued behind other users' prompts, the event loop busy), asks about the day it
    was due, and the next day still gets its own."""
    if user.prompt_time is None:
        return now.astimezone(ZoneInfo(user.timezone)).date()
    return prompt_trigger(user).due_day(now)


def set_past_its_time(user: User, day: date) -> bool:
    """Whether /journal on set the user's time and zone at or after that time on `day`: they were
    told their next prompt comes the day after (NEXT_PROMPT_TOMORROW), so no daily prompt of `day`
    is sent, however late the bot or the host runs. One missed while the time was already set (the
    bot down at it) is still sent late."""
    return (user.journal_set_at is not None and user.prompt_time is not None
            and user.journal_set_at >= prompt_trigger(user).fire_time(day))


def missed_day(user: User, now: datetime, grace: timedelta = GRACE) -> date | None:
    """The local day whose prompt is still worth sending at `now` (`DailyAt.late_day`), else None:
    its prompt was missed if none was sent for it (the caller asks the database). Yesterday's
    counts too: a 23:00 prompt missed by a restart at 00:30 is still sent, for yesterday (the day
    it asks about)."""
    if user.prompt_time is None:
        return None
    return prompt_trigger(user).late_day(now, grace)


class PromptScheduler:
    def __init__(
        self,
        db,
        journal: JournalUseCase,
        *,
        grace: timedelta = GRACE,
        concurrency: int = DELIVERY_CONCURRENCY,
        pause_s: float = DELIVERY_PAUSE_S,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.db = db
        self.journal = journal
        self.grace = grace
        self.pause_s = pause_s
        self.now = now
        self.senders: dict[str, PromptSender] = {}
        self._scheduler = AsyncIOScheduler(timezone=timezone.utc)
        self._concurrency = concurrency
        self._pace = asyncio.Semaphore(concurrency)
        self._making: weakref.WeakValueDictionary[UserRef, asyncio.Lock] = weakref.WeakValueDictionary()
        # The users of each group's job (in the order they joined it), and each user's group.
        self._groups: dict[str, dict[UserRef, None]] = {}
        self._group_of: dict[UserRef, str] = {}
        # The stop: no prompt is started once `_stopping`; those on their way (`_sending`) may arrive.
        self._stopping = False
        self._sending: set[asyncio.Task] = set()
        self._deliveries = itertools.count(1)  # the deliveries begun in no request, for their req=
        self._next_slot: dict[str, float] = {}  # each paced platform's next prompt's start (loop time)
        # The failed prompt a retry cancelled by a new time or zone was to withdraw first (its
        # `unsent`), until /journal on takes it (`cancelled_unsent`).
        self._cancelled_unsent: dict[UserRef, str] = {}

    def register(self, sender: PromptSender) -> None:
        self.senders[sender.platform] = sender

    async def start(self) -> int:
        """Rebuilds every user's job, starts the scheduler, and sends today's missed prompts.
        Returns how many missed prompts were sent. Raises StorageError, logged, when the database
        cannot say who gets prompts: the bot does not start then, as with the database down at
        its start, rather than run on with nobody's prompt scheduled until the next restart."""
        try:
            users, now, missed, unconfirmed = await self._read_jobs()
        except StorageError as error:
            log.error("scheduler.rebuild_failed", extra={"reason": str(error)})
            raise StorageError(f"The daily prompts could not be scheduled: {error}") from error
        self._scheduler.start()
        for user in users:
            self.schedule(user, after=now)
        log.info("scheduler.started", extra={"jobs": len(self._groups), "users": len(self._group_of),
                                             "missed": len(missed), "unconfirmed": len(unconfirmed)})
        sent = await asyncio.gather(*(self.deliver(u.ref, day=day) for u, day in missed),
                                    *(self.resend_unconfirmed(p) for p in unconfirmed))
        return sum(1 for s in sent if s)

    async def _read_jobs(self) -> tuple[list[User], datetime, list[tuple[User, date]], list[SentPrompt]]:
        """The users who opted in, the clock reading the rebuild goes by, those whose prompt of a
        day was missed while the bot was down (with that day), and the prompts whose send the run
        before never saw end (`unconfirmed`), read before anything is scheduled. A prompt time up
        to that reading is the catch-up's; one after it, its job's (`schedule`'s `after`), even if
        it passes while the rest is read."""
        users = [user for user in await self.db.users.journal_users() if zone_loads(user)]
        now = self.now()
        missed: list[tuple[User, date]] = []
        for user in users:
            if user.platform in self.senders:
                day = missed_day(user, now, self.grace)
                # Any prompt of that day, not only the latest: after a move west the day begins again.
                if day is not None and not await self.db.prompts.sent_for(user.ref, day):
                    missed.append((user, day))
        return users, now, missed, await self._unconfirmed(users, now)

    async def _unconfirmed(self, users: list[User], now: datetime) -> list[SentPrompt]:
        """The open prompts still `sending` (recorded, their send never seen to end: the run before
        killed between the two, or before it noted the platform's answer, or its database down
        then) of a day that is still their user's: today in their zone, or the day whose prompt
        time passed less than the grace ago (as the catch-up's). Only the opted-in users', and
        only of a day none of whose prompts was seen sent or answered (/journal prompt may have
        sent another since): the day's latest."""
        opted_in = {user.ref: user for user in users if user.platform in self.senders}
        since = now - timedelta(days=2)
        open_ = await self.db.prompts.open_since(since, OPEN_PROMPTS_MAX)
        answered = await self.db.prompts.answered_since(since, OPEN_PROMPTS_MAX)
        had = {(p.user, p.local_date) for p in open_ + answered if not p.sending or p.answered_at is not None}
        days_on: dict[UserRef, set[date | None]] = {}
        unconfirmed: dict[tuple[UserRef, date], SentPrompt] = {}
        for prompt in open_:  # oldest first: a day's latest stays
            user = opted_in.get(prompt.user)
            if not prompt.sending or user is None or (prompt.user, prompt.local_date) in had:
                continue
            if user.ref not in days_on:
                days_on[user.ref] = {local_today(user.timezone, now), missed_day(user, now, self.grace)}
            if prompt.local_date in days_on[user.ref]:
                unconfirmed[(prompt.user, prompt.local_date)] = prompt
        return list(unconfirmed.values())

    async def resend_unconfirmed(self, sent: SentPrompt) -> str | None:
        """A prompt recorded and never seen sent (`_unconfirmed`). Where the platform lets the bot
        read the chat back (`PromptFinder`: Discord's DM history) the prompt's message is looked
        for: there, it arrived, its id is noted and nothing is sent; not there, the same prompt
        (its id, its phrase) is sent now, as the day's. Where it does not (Telegram, the console),
        or the chat could not be read, it stays the day's prompt, open to an answer and not sent
        again, as one whose send timed out (`DeliveryUncertain`): the run before may have sent it.
        Returns the prompt id when it was sent now."""
        with as_request(f"prompt-{sent.prompt_id}"):  # its lines, the front-end's too, as one delivery's
            return await self._resend_unconfirmed(sent)

    async def _resend_unconfirmed(self, sent: SentPrompt) -> str | None:
        ref = sent.user
        sender = self.senders.get(ref.platform)
        find = getattr(sender, "find_prompt", None)
        if sender is None or find is None or sent.chat_id is None:
            log.info("scheduler.unconfirmed_prompt_kept", extra={"user": ref.user_id})
            return None
        prompt = PromptMessage(ref.platform, ref.user_id, sent.chat_id, sent.prompt_id, sent.phrase)
        async with self._pace, self._on_its_way():
            if self._stopping:  # the next start looks again
                return None
            erasures = self.db.privacy.erasures(ref)
            try:
                user = await self.db.users.get(ref)
                if user is None or not user.journal_enabled:  # /journal off or /forget since the start read
                    return None
                message_id = await find(prompt, sent.sent_at)
                if message_id is None:  # /journal prompt, an answer, /journal off or /forget during the read
                    async with self._making_for(ref):
                        latest, user = await self.db.prompts.latest(ref), await self.db.users.get(ref)
                    if latest is None or latest.prompt_id != sent.prompt_id or latest.answered_at is not None \
                            or not latest.sending or user is None or not user.journal_enabled:
                        log.info("scheduler.unconfirmed_prompt_superseded", extra={"user": ref.user_id})
                        return None
            except Exception as error:  # the chat unreadable (the platform down): kept, as one timed out
                log.warning("scheduler.unconfirmed_prompt_not_checked",
                            extra={"user": ref.user_id, "reason": f"{type(error).__name__}: {error}"})
                return None
            if message_id is not None:
                log.info("scheduler.unconfirmed_prompt_found", extra={"user": ref.user_id})
                with contextlib.suppress(StorageError):
                    await self.journal.prompt_delivered(prompt.prompt_id, message_id)
                return None
            log.info("scheduler.unconfirmed_prompt_resent", extra={"user": ref.user_id})
            return await self._send(sender, prompt, force=False, day=sent.local_date, zone=user.timezone,
                                    attempt=1, erasures=erasures)

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """No more prompts started; those on their way get `grace_s` to arrive. Closed under them
        by the front-ends' stop, a prompt whose request had left arrived, but failed, was withdrawn
        as never sent: a reply to it found no prompt, and the restart's catch-up sent another. One
        not started is the restart's to send (its catch-up), or a retry's."""
        self._stopping = True
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        sending = [task for task in self._sending if not task.done()]
        if sending:
            await asyncio.wait(sending, timeout=grace_s)

    # PromptSchedule, used by the journal and privacy use cases.
    def schedule(self, user: User, *, after: datetime | None = None) -> None:
        """The user joins the daily job of their time and zone (leaving any other). A job made now
        first runs at the first prompt time after `after` (at start: the clock reading the catch-up
        went by; one already past runs at once), else from now."""
        if not user.journal_enabled or user.prompt_time is None:
            self.unschedule(user.ref)
            return
        key = group_id(user)
        if self._group_of.get(user.ref) != key:
            if user.ref in self._group_of:  # a new time or zone: the old time's failed prompt is not retried
                self._cancel_retry(user.ref)
            self._leave_group(user.ref)
            self._group_of[user.ref] = key
            self._groups.setdefault(key, {})[user.ref] = None
        if self._scheduler.get_job(key) is None:
            trigger = prompt_trigger(user)
            first = {} if after is None else {"next_run_time": trigger.get_next_fire_time(None, after)}
            # No misfire grace: a run however late (the host asleep, the clock stepped forward) is
            # run, once (coalesce), and `_deliver_group` judges it by the day's rule (`late_day`).
            # APScheduler gave up a run over 3 h late, and the day had no prompt.
            self._scheduler.add_job(
                self._deliver_group, trigger, args=[key], id=key,
                misfire_grace_time=None, coalesce=True, max_instances=1, **first,
            )

    def unschedule(self, ref: UserRef, *, keep_unsent: bool = False) -> None:
        """The user leaves their daily job, their retry goes, and so do the prompts sent to them that
        the journal holds in memory (/forget calls this: nothing of theirs is kept there).
        `keep_unsent` (/journal off): the failed prompt the retry was to withdraw first is kept for
        the next /journal on (`cancelled_unsent`), as for a new time: its record stood for the day's
        prompt after /journal off and on, and none came that day, though none had arrived."""
        self.journal.forget_open(ref)
        self._leave_group(ref)
        if keep_unsent:
            self._cancel_retry(ref)
            return
        self._cancelled_unsent.pop(ref, None)
        self.journal.forget_unsent(ref)
        if self._scheduler.get_job(retry_job_id(ref)) is not None:
            self._scheduler.remove_job(retry_job_id(ref))

    def _cancel_retry(self, ref: UserRef) -> None:
        """/journal on with a new time or zone, or /journal off: the retry of the old time's failed
        prompt goes. Left, it sent the day's prompt at the old time (07:05 for 07:00) after the user was told "today at
        20:00", and 20:00 then sent none. A failed prompt whose record the database kept (its
        withdrawal failed too: the retry's `unsent`) is handed to /journal on (`cancelled_unsent`),
        which withdraws it first, as the retry would have: its record stood for the day's prompt,
        the reply said "today's was sent already", and none came that day, though none had arrived.
        Only a prompt known not to have arrived is `unsent` (`_not_sent`; one whose send may have
        got through, `DeliveryUncertain`, stays the day's). Where the database refuses that
        withdrawal too, the journal keeps it, and the user's next delivery withdraws it first
        (`JournalUseCase.withdraw_unsent`), or their next /journal on."""
        job = self._scheduler.get_job(retry_job_id(ref))
        if job is not None:
            job.remove()
            if (unsent := job.kwargs.get("unsent")) is not None:
                self._cancelled_unsent[ref] = unsent
            log.info("scheduler.prompt_retry_cancelled", extra={"user": ref.user_id})

    def cancelled_unsent(self, ref: UserRef) -> str | None:
        """The failed prompt that the retry `schedule` (or /journal off's `unschedule`) cancelled was
        to withdraw first (`_cancel_retry`), handed over once (/journal on withdraws it); else None."""
        return self._cancelled_unsent.pop(ref, None)

    def _leave_group(self, ref: UserRef) -> None:
        """The user out of their group; the group's job goes with its last user."""
        key = self._group_of.pop(ref, None)
        members = self._groups.get(key) if key is not None else None
        if members is None:
            return
        members.pop(ref, None)
        if not members:
            del self._groups[key]
            if self._scheduler.get_job(key) is not None:
                self._scheduler.remove_job(key)

    async def _deliver_group(self, key: str) -> None:
        """A group's prompt time: each of its users' prompt (`deliver`), `concurrency` at a time, as
        their own jobs were paced. A user who left the group since is skipped; one who joined it
        while the others are served waits for the next day (their time had passed, from now). The
        day is the one its run is for, read once (`late_day`): a run too late for it sends nothing,
        and a clock stepped back during the pass, before the prompt time, does not make it
        yesterday's for the users served after the step. Nor one stepped back as the pass begins
        (`_run_clock`)."""
        begin_request(None)  # its task holds the context of whatever woke APScheduler last: a request's
        job = self._scheduler.get_job(key)
        if job is None:  # its last user left
            return
        now = self._run_clock(job)
        day = job.trigger.late_day(now, self.grace)
        if day is None:
            log.warning("scheduler.prompts_too_late", extra={
                "job": key, "due": job.trigger.fire_time(job.trigger.due_day(now)).strftime("%Y-%m-%dT%H:%M:%SZ")})
            return
        members = iter(list(self._groups.get(key, {})))

        async def serve() -> None:
            for ref in members:  # one iterator for all: each user once
                if self._group_of.get(ref) != key:
                    continue
                with self._a_delivery():
                    try:
                        await self.deliver(ref, day=day)
                    except Exception:  # one user's failure is not the group's
                        log.exception("scheduler.prompt_failed", extra={"user": ref.user_id})

        await asyncio.gather(*(serve() for _ in range(self._concurrency)))

    def _run_clock(self, job) -> datetime:
        """The clock a daily job's run goes by: `now`, or the run's own prompt time where `now` reads
        before it, by up to the grace. APScheduler ran the job on finding that time come on its own
        reading of the machine's clock (the time before the next run it set): a reading before it
        means the clock was stepped back since (NTP, as the run began), and the run is still that
        time's. By `now` it was the day before's, 24 h late: nothing was sent, the next run was the
        next day's, and the day had no prompt. A reading further back goes by the clock."""
        now = self.now()
        trigger: DailyAt = job.trigger
        next_run = getattr(job, "next_run_time", None)
        if next_run is None:
            return now
        due = trigger.fire_time_before(next_run)
        if now < due <= now + self.grace:
            log.warning("scheduler.clock_behind", extra={
                "job": job.id, "behind_s": round((due - now).total_seconds(), 3)})
            return due
        return now

    def retry_at(self, ref: UserRef) -> datetime | None:
        """When the day's failed prompt is tried again; None when no retry is due."""
        job = self._scheduler.get_job(retry_job_id(ref))
        return None if job is None else job.trigger.run_date

    async def retry_now(self, ref: UserRef) -> str | None:
        """Runs the pending retry at once (tests): what its job runs at its time."""
        job = self._scheduler.get_job(retry_job_id(ref))
        if job is None:
            return None
        job.remove()
        return await job.func(*job.args, **job.kwargs)

    def _retry_later(self, ref: UserRef, day: date, attempt: int, at: datetime | None, *,
                     unsent: str | None = None) -> None:
        """Tries the day's prompt again at `at` (`retry_time`; None: given up). The retry re-reads
        the user and skips the day if a prompt of it got through meanwhile (a restart's catch-up,
        /journal prompt). `unsent`: a failed prompt whose record the database kept (down too),
        withdrawn first by the retry. The caller works `at` out once: `_not_sent` logs it, and
        worked out again here, a second's boundary between the two logged one time and scheduled
        another."""
        if at is None:
            log.warning("scheduler.prompt_given_up", extra={"user": ref.user_id, "tries": attempt})
            return
        # No misfire grace, as the daily jobs': `_retry` judges a run woken late (the host asleep).
        self._scheduler.add_job(
            self._retry, DateTrigger(at, timezone=timezone.utc), args=[ref],
            kwargs={"due": at, "day": day, "attempt": attempt + 1, **({"unsent": unsent} if unsent else {})},
            id=retry_job_id(ref), replace_existing=True,
            misfire_grace_time=None, coalesce=True, max_instances=1,
        )
        log.info("scheduler.prompt_retry_scheduled", extra={"user": ref.user_id, "tries": attempt,
                                                           "at": at.isoformat()})

    async def _retry(self, ref: UserRef, *, due: datetime, day: date, **delivery) -> str | None:
        """A retry's job: `deliver` again, in no request (its task holds the context of whatever
        woke APScheduler last, a request's: /journal on's, say). Woken more than the grace past its
        time (the host asleep, the clock stepped forward), it sends only while its day's prompt
        would still be sent late (`late_day`): APScheduler gave it up, and the day had no prompt."""
        begin_request(None)
        now = self.now()
        if now - due > self.grace:
            key = self._group_of.get(ref)
            job = None if key is None else self._scheduler.get_job(key)
            if job is None or job.trigger.late_day(now, self.grace) != day:
                with self._a_delivery():
                    log.warning("scheduler.retry_too_late", extra={
                        "user": ref.user_id, "due": due.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
                return None
        return await self.deliver(ref, day=day, **delivery)

    def _retry_unmade(self, ref: UserRef, day: date | None, attempt: int, erasures: int,
                      unsent: str | None) -> None:
        """A daily prompt the database could not read or record (it was down): tried again later, as
        a failed send is, for the day it was due in the user's zone, while they keep their daily
        job (not after /journal off or /forget)."""
        key = self._group_of.get(ref)
        job = None if key is None else self._scheduler.get_job(key)
        if job is None or self.db.privacy.erasures(ref) != erasures:
            return
        trigger: DailyAt = job.trigger
        now = self.now()
        day = day or trigger.due_day(now)
        self._retry_later(ref, day, attempt, retry_time(day, trigger.timezone.key, now, attempt, self.grace),
                          unsent=unsent)

    def next_fire_time(self, ref: UserRef) -> datetime | None:
        key = self._group_of.get(ref)
        job = None if key is None else self._scheduler.get_job(key)
        if job is None:
            return None
        return getattr(job, "next_run_time", None) or job.trigger.get_next_fire_time(None, self.now())

    def is_scheduled(self, ref: UserRef) -> bool:
        return ref in self._group_of

    async def fire_now(self, ref: UserRef) -> str | None:
        """Sends an opted-in user's prompt now, even if today's was sent (tests, the console's
        /journal prompt). Returns the prompt id, None when the user has no journal or the send
        failed for a passing reason; raises `RecipientGone` when the platform refused the user,
        `SenderRefused` when it refused the bot."""
        return await self.deliver(ref, force=True)

    def _making_for(self, ref: UserRef) -> asyncio.Lock:
        """One prompt made at a time per user. The day's is skipped when one is recorded for it, and
        two deliveries at once (the daily job and start's catch-up, on a restart in the prompt's
        minute; /journal prompt as the daily one fires) would otherwise both find none and both send."""
        lock = self._making.get(ref)
        if lock is None:
            lock = self._making[ref] = asyncio.Lock()
        return lock

    async def _make_prompt(self, ref: UserRef, *, force: bool, day: date | None,
                           erasures: int) -> tuple[PromptMessage, date, str] | None:
        """The prompt to send, recorded as sent, with its day and the user's zone; None when the
        user has no journal now, the day's was already sent or its time had passed when /journal on
        set it (unless `force`), or the user ran /forget meanwhile."""
        user = await self.db.users.get(ref)
        if user is None or not user.journal_enabled:
            return None
        now = self.now()
        if force:  # /journal prompt: today's, even if it was sent (UTC's for a zone that won't load)
            day = day or local_today(user.timezone, now)
        else:
            # A day judged still due (the daily job's, a retry's, the start's catch-up's: `late_day`)
            # is not one whose time had passed when /journal on set it. Left out (tests), the latest
            # prompt time's day, sent now however long ago that was.
            if day is not None and set_past_its_time(user, day):
                return None
            day = day or due_day(user, now)
            # Any prompt of that day, not only the latest: after a move west (Tokyo's morning, then
            # New York's evening) the day begins again, and the latest is already the next one.
            if await self.db.prompts.sent_for(ref, day):
                return None
        prompt = await self.journal.make_prompt(user, day=day, erasures=erasures)
        return None if prompt is None else (prompt, day, user.timezone)

    def _a_delivery(self) -> contextlib.AbstractContextManager[None]:
        """A delivery begun in no request (a daily job's, a retry's, the start's catch-up): what it
        logs before its prompt is made (`scheduler.prompt_not_made`, `scheduler.no_sender`, the
        retry it sets), as `delivery-<n>`'s, the n-th since the start; its prompt's lines are then
        `prompt-<prompt id>`'s. One begun in a request (/journal prompt) stays that request's."""
        if REQUEST.get() is not None:
            return contextlib.nullcontext()
        return as_request(f"delivery-{next(self._deliveries)}")

    async def deliver(self, ref: UserRef, *, force: bool = False, day: date | None = None,
                      attempt: int = 1, unsent: str | None = None) -> str | None:
        """One prompt to one user: re-read the user (they may have opted out since), skip if the
        day's was already sent, record it, send it, remember the platform message id. The day is
        the one whose prompt time passed last (local), unless a missed or failed prompt is tried
        again for `day` (`attempt`: the how-manieth try); /journal prompt (`force`) is for today. A
        retry first withdraws the failed prompt the database could not (`unsent`): its record would
        stand for the day's prompt, and nothing would be sent. Its lines are one delivery's
        (`_a_delivery`)."""
        with self._a_delivery():
            return await self._deliver(ref, force=force, day=day, attempt=attempt, unsent=unsent)

    async def _deliver(self, ref: UserRef, *, force: bool, day: date | None, attempt: int,
                       unsent: str | None) -> str | None:
        sender = self.senders.get(ref.platform)
        if sender is None:
            log.warning("scheduler.no_sender", extra={"user": ref.user_id, "platform": ref.platform})
            return None
        async with self._pace, self._on_its_way():
            if self._stopping:  # the bot stops: the restart's catch-up sends it
                return None
            erasures = self.db.privacy.erasures(ref)  # before the user is read: a /forget after it shows
            try:
                async with self._making_for(ref):
                    if unsent is not None:
                        await self.journal.prompt_not_delivered(unsent)
                        unsent = None
                    # One whose withdrawal the database refused to /journal on, which said "today
                    # at 20:00" beside its record: withdrawn first, or 20:00 took it for the day's.
                    await self.journal.withdraw_unsent(ref)
                    made = await self._make_prompt(ref, force=force, day=day, erasures=erasures)
            except StorageError as error:
                log.warning("scheduler.prompt_not_made", extra={"user": ref.user_id, "reason": str(error)})
                if not force:  # /journal prompt: the user is told to ask again
                    self._retry_unmade(ref, day, attempt, erasures, unsent)
                return None
            if made is None:  # no journal now, the day's already sent, or /forget meanwhile
                return None
            prompt, day, zone = made
            with as_request(f"prompt-{prompt.prompt_id}"):  # its lines, the front-end's too, as one delivery's
                return await self._send(sender, prompt, force=force, day=day, zone=zone, attempt=attempt,
                                        erasures=erasures)

    async def _send(self, sender: PromptSender, prompt: PromptMessage, *, force: bool, day: date, zone: str,
                    attempt: int, erasures: int) -> str | None:
        """A recorded prompt sent, and its arrival noted (`deliver`)."""
        ref = UserRef(prompt.platform, prompt.user_id)
        await self._slot_for(sender)
        try:
            message_id = await sender.send_prompt(prompt)
        except DeliveryUncertain as failure:
            # The prompt may be on the user's screen: it stays the day's prompt, open to an
            # answer (Telegram: a reply to it is matched by its text, its id never came back),
            # and is not sent again. A second prompt, the same day, would be a worse surprise
            # than, rarely, a day without one; /journal prompt still asks for it. Its record stays
            # `sending`: a restart that day looks for it where the platform shows the chat
            # (`resend_unconfirmed`: Discord), and sends it if it is not there.
            log.warning("scheduler.send_unconfirmed", extra={"user": ref.user_id, "reason": str(failure)})
            return prompt.prompt_id
        except Exception as failure:
            await self._not_sent(ref, prompt, failure, force=force, day=day, zone=zone, attempt=attempt,
                                 erasures=erasures)
            if force and isinstance(failure, (RecipientGone, SenderRefused)):
                raise  # /journal prompt: the user is told what to allow, or that asking again shortly won't help
            return None
        try:
            await self.journal.prompt_delivered(prompt.prompt_id, message_id)
        except StorageError as error:
            log.warning("scheduler.message_id_not_saved", extra={"user": ref.user_id, "reason": str(error)})
        log.info("scheduler.prompt_sent", extra={"user": ref.user_id, "chat": prompt.chat_id})
        await asyncio.sleep(self.pause_s)
        return prompt.prompt_id

    async def _slot_for(self, sender: PromptSender) -> None:
        """Waits for the sender's next prompt's turn, where it sets `prompts_per_s`: its prompts
        start 1/rate apart, whoever sends them (the daily jobs' workers, /journal prompt, a retry).
        The concurrency and pause alone let ~130 requests a second reach a Discord a millisecond
        away, where 50 is its global limit."""
        rate = getattr(sender, "prompts_per_s", None)
        if not rate:
            return
        now = asyncio.get_running_loop().time()
        slot = max(now, self._next_slot.get(sender.platform, now))
        self._next_slot[sender.platform] = slot + 1 / rate
        if slot > now:
            await asyncio.sleep(slot - now)

    @contextlib.asynccontextmanager
    async def _on_its_way(self) -> AsyncIterator[None]:
        """The delivery under way, for the stop to wait for."""
        task = asyncio.current_task()
        self._sending.add(task)
        try:
            yield
        finally:
            self._sending.discard(task)

    async def _not_sent(self, ref: UserRef, prompt: PromptMessage, failure: Exception, *, force: bool,
                        day: date, zone: str, attempt: int, erasures: int) -> None:
        """A prompt that did not arrive: withdrawn (not the day's, not open to answers). A user the
        platform refuses for good gets no more; a passing failure is tried again later that day.
        Not for /journal prompt (`force`): the user is there, and told to ask again. Nor for a user
        who ran /forget while it was on its way (since `erasures` was read): their prompts stopped,
        and a retry's job would hold their id."""
        gone = isinstance(failure, RecipientGone)
        if gone:
            log.info("scheduler.recipient_gone", extra={"user": ref.user_id, "reason": str(failure)})
        else:
            # Whether and when it is tried again (`_retry_later`): "none" for /journal prompt (the
            # user is told), or once the day's retries are spent.
            retry = None if force else retry_time(day, zone, self.now(), attempt, self.grace)
            fields = {"user": ref.user_id, "chat": prompt.chat_id, "tries": attempt,
                      "retry_at": retry.strftime("%Y-%m-%dT%H:%M:%SZ") if retry else "none"}
            if isinstance(failure, DeliveryFailed):  # the platform's outage, in its own words: no traceback
                log.warning("scheduler.send_failed", extra={**fields, "reason": failure.reason})
            else:  # anything else is a bug: its traceback
                log.error("scheduler.send_failed", exc_info=failure, extra=fields)
        unsent = None
        try:  # not sent: a retry, a restart within the grace period, or /journal prompt still sends the day's
            await self.journal.prompt_not_delivered(prompt.prompt_id)
        except StorageError as error:
            log.warning("scheduler.prompt_not_withdrawn", extra={"user": ref.user_id, "reason": str(error)})
            unsent = prompt.prompt_id  # the retry withdraws it
        if force or self.db.privacy.erasures(ref) != erasures:
            return
        if gone:  # their entries are kept; /journal on starts the prompts again, and they are told so
            await self.journal.stop_unreachable(ref)
        else:
            self._retry_later(ref, day, attempt, retry, unsent=unsent)
