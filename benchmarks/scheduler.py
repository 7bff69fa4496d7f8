"""Daily prompts coming due together: how long they hold up the event loop.

    .venv/bin/python -m benchmarks.scheduler [--runs 3] [--users 1000 10000]

N users share one prompt time and zone (21:30, Europe/Lisbon). Each variant schedules them, brings
their time to now and lets APScheduler run what is due, while a 5 ms ticker on the same loop
records its longest wait past its time (the stall every chat's update would see). The delivery
itself is left out (an empty coroutine per user, counted): the figure is the scheduler's own cost.
- "a job a user (before)": one APScheduler job per user, as bot/scheduler.py made them before
  2026-12-05 (AsyncIOScheduler, the DailyAt trigger, the same job options).
- "a job a time and zone (now)": bot/scheduler.py's PromptScheduler, one job for all of them,
  delivering to each through `concurrency` workers.
Prints one table of medians over the runs, with the ratio of now to before.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import datetime, time as clock, timedelta, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.scheduler import GRACE, PromptScheduler, group_id, prompt_trigger
from storage.models import User, UserRef

TICK_S = 0.005
DUE_IN_S = 0.3


def users(count: int) -> list[User]:
    return [User("console", f"u{i}", timezone="Europe/Lisbon", prompt_time=clock(21, 30), journal_enabled=True,
                 chat_id=f"u{i}") for i in range(count)]


async def stalled(until_done: asyncio.Event) -> float:
    """The longest the loop kept a 5 ms ticker past its time, until `until_done`."""
    worst, last = 0.0, time.perf_counter()
    while not until_done.is_set():
        await asyncio.sleep(TICK_S)
        now = time.perf_counter()
        worst, last = max(worst, now - last - TICK_S), now
    return worst


class Counted:
    def __init__(self, expected: int) -> None:
        self.expected, self.count, self.done = expected, 0, asyncio.Event()

    async def deliver(self, ref: UserRef, **_: object) -> None:
        self.count += 1
        if self.count == self.expected:
            self.done.set()


async def a_job_a_user(crowd: list[User]) -> tuple[float, float]:
    counted = Counted(len(crowd))
    scheduler = AsyncIOScheduler(timezone=timezone.utc)
    scheduler.start()
    due = datetime.now(timezone.utc) + timedelta(seconds=DUE_IN_S)
    started = time.perf_counter()
    for user in crowd:
        scheduler.add_job(counted.deliver, prompt_trigger(user), args=[user.ref],
                          id=f"prompt:{user.platform}:{user.user_id}", replace_existing=True,
                          misfire_grace_time=int(GRACE.total_seconds()), coalesce=True, max_instances=1,
                          next_run_time=due)
    scheduled = time.perf_counter() - started
    worst = await stalled(counted.done)
    scheduler.shutdown(wait=False)
    return scheduled, worst


class EmptyDeliveries(PromptScheduler):
    """PromptScheduler with the delivery left out (the benchmark's subject is the scheduling)."""

    def __init__(self, counted: Counted) -> None:
        super().__init__(db=None, journal=None)
        self.counted = counted

    async def deliver(self, ref: UserRef, **kwargs: object) -> None:
        await self.counted.deliver(ref)


async def a_job_a_time_and_zone(crowd: list[User]) -> tuple[float, float]:
    counted = Counted(len(crowd))
    scheduler = EmptyDeliveries(counted)
    scheduler._scheduler.start()
    started = time.perf_counter()
    for user in crowd:
        scheduler.schedule(user)
    scheduled = time.perf_counter() - started
    due = datetime.now(timezone.utc) + timedelta(seconds=DUE_IN_S)
    scheduler._scheduler.modify_job(group_id(crowd[0]), next_run_time=due)
    worst = await stalled(counted.done)
    await scheduler.stop()
    return scheduled, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--users", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    rows = []
    for count in args.users:
        crowd = users(count)
        results: dict[str, list[tuple[float, float]]] = {"before": [], "now": []}
        for _ in range(args.runs):  # interleaved, so a busier moment hurts both
            results["before"].append(asyncio.run(a_job_a_user(crowd)))
            results["now"].append(asyncio.run(a_job_a_time_and_zone(crowd)))
        for part, index in (("schedule all (start's rebuild)", 0), ("longest stall as they come due", 1)):
            before = statistics.median(r[index] for r in results["before"]) * 1000
            now = statistics.median(r[index] for r in results["now"]) * 1000
            rows.append((f"{count} users: {part}", before, now, now / before if before else float("nan")))
    print(f"| medians of {args.runs} runs | a job a user (before) | a job a time and zone (now) | now ÷ before |")
    print("|---|---|---|---|")
    for name, before, now, ratio in rows:
        print(f"| {name} | {before:.1f} ms | {now:.1f} ms | {ratio:.3f} |")


if __name__ == "__main__":
    main()
