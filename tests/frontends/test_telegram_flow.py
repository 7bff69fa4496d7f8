"""Admission control of Telegram updates (bot/frontends/telegram_flow.py): arrival order, slots
given back by slow updates, and a getUpdates gate that waits for room but never for ever."""
from __future__ import annotations

import asyncio
import inspect
import logging
import time

import pytest
from telegram import Update

from bot.frontends.telegram_flow import UpdateFlow


async def hand_over(flow: UpdateFlow, count: int, first_id: int = 1) -> list[Update]:
    """What PTB's Updater does with a getUpdates batch: put every update in the queue."""
    updates = [Update(update_id=first_id + n) for n in range(count)]
    for update in updates:
        await flow.queue.put(update)
    return updates


def process(flow: UpdateFlow, update: Update, handler) -> asyncio.Task:
    """What PTB's application does with each queued update when updates run concurrently."""
    return asyncio.create_task(flow.processor.process_update(update, handler(update)))


async def test_a_burst_runs_in_arrival_order_with_at_most_active_at_once():
    flow = UpdateFlow(active=3, lease_s=10)
    started, running, most = [], 0, 0

    async def handler(update: Update) -> None:
        nonlocal running, most
        started.append(update.update_id)
        running += 1
        most = max(most, running)
        for _ in range(3):  # a few awaits, as a reply's HTTP round trip has
            await asyncio.sleep(0)
        running -= 1

    updates = await hand_over(flow, 30)
    await asyncio.gather(*(process(flow, u, handler) for u in updates))
    assert started == [u.update_id for u in updates]
    assert most == 3
    assert flow.pending == 0


async def test_an_update_past_its_lease_gives_its_slot_to_the_next_one():
    flow = UpdateFlow(active=1, lease_s=0.05)
    slow_done, quick_done = asyncio.Event(), asyncio.Event()

    async def slow(_update: Update) -> None:
        await asyncio.sleep(2)
        slow_done.set()

    async def quick(_update: Update) -> None:
        quick_done.set()

    first, second = await hand_over(flow, 2)
    tasks = [process(flow, first, slow), process(flow, second, quick)]
    await asyncio.wait_for(quick_done.wait(), 1)  # long before the slow one ends
    assert not slow_done.is_set()
    assert flow.pending == 0  # the slow update no longer holds back fetching either
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_the_gate_waits_for_room_before_the_next_batch():
    flow = UpdateFlow(active=2, lease_s=10, low_water=4, max_gate_s=5)
    release = asyncio.Event()

    async def handler(_update: Update) -> None:
        await release.wait()

    updates = await hand_over(flow, 10)
    tasks = [process(flow, u, handler) for u in updates]
    gate = asyncio.create_task(flow.gate())
    await asyncio.sleep(0.1)
    assert not gate.done()  # 10 pending >= 4: getUpdates must wait
    release.set()
    assert await asyncio.wait_for(gate, 1) == flow.batch
    await asyncio.gather(*tasks)
    assert flow.pending == 0
    assert await asyncio.wait_for(flow.gate(), 0.01) == flow.batch  # nothing pending: no wait at all


async def test_the_gate_opens_after_its_limit_even_if_handlers_are_stuck(caplog):
    flow = UpdateFlow(active=1, lease_s=10, low_water=1, max_gate_s=0.2)
    stuck = asyncio.Event()
    (update,) = await hand_over(flow, 1)
    task = process(flow, update, lambda _u: stuck.wait())
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="bot.frontends.telegram_flow"):
        await asyncio.wait_for(flow.gate(), 2)
    assert 0.15 <= time.monotonic() - started < 1.5
    assert "still pending" in caplog.text
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_an_update_cancelled_while_waiting_for_a_slot_is_uncounted_and_never_run():
    flow = UpdateFlow(active=1, lease_s=10)
    ran, hold = [], asyncio.Event()

    async def handler(update: Update) -> None:
        ran.append(update.update_id)
        await hold.wait()

    first, second = await hand_over(flow, 2)
    running = process(flow, first, handler)
    never_run = handler(second)
    waiting = asyncio.create_task(flow.processor.process_update(second, never_run))
    await asyncio.sleep(0.05)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert flow.pending == 1 and ran == [first.update_id]
    assert inspect.getcoroutinestate(never_run) == inspect.CORO_CLOSED  # closed, not left un-awaited
    hold.set()
    await running
    assert flow.pending == 0


async def test_other_objects_in_the_queue_are_not_counted():
    flow = UpdateFlow()
    await flow.queue.put(object())  # e.g. PTB's stop signal
    assert flow.pending == 0
    seen = []

    async def handler() -> None:
        seen.append(True)

    await flow.processor.process_update(object(), handler())
    assert seen == [True] and flow.pending == 0


def test_nonsense_limits_are_refused():
    with pytest.raises(ValueError):
        UpdateFlow(active=0)
    for batch in (0, 101):  # Telegram's getUpdates takes a limit from 1 to 100
        with pytest.raises(ValueError):
            UpdateFlow(batch=batch)


def sent_by(update_id: int, sender: int, album: str | None = None) -> Update:
    """A message update from user `sender` (in their private chat), an album's item if `album`."""
    return Update.de_json({"update_id": update_id, "message": {
        "message_id": update_id, "date": 0, "chat": {"id": sender, "type": "private"},
        "from": {"id": sender, "is_bot": False, "first_name": "A"},
        **({"media_group_id": album} if album else {})}}, None)


async def test_a_senders_updates_run_one_after_another_and_others_do_not_wait_for_them():
    flow = UpdateFlow(active=8, lease_s=0.01, turn_s=10)
    log, release = [], asyncio.Event()

    def handler(name: str, slow: bool = False):
        async def run() -> None:
            log.append(f"{name} started")
            if slow:
                await release.wait()
            await asyncio.sleep(0.01)
            log.append(f"{name} done")
        return run()

    updates = [sent_by(1, 42), sent_by(2, 42), sent_by(3, 43), sent_by(4, 42)]
    for update in updates:
        await flow.queue.put(update)
    tasks = [asyncio.create_task(flow.processor.process_update(update, handler(name, slow=name == "a1")))
             for update, name in zip(updates, ("a1", "a2", "b1", "a3"))]
    await asyncio.sleep(0.2)  # a1 is still running, long past its slot's lease
    assert log == ["a1 started", "b1 started", "b1 done"]  # another sender's update did not wait
    release.set()
    await asyncio.gather(*tasks)
    assert log[3:] == ["a1 done", "a2 started", "a2 done", "a3 started", "a3 done"]
    assert flow.pending == 0 and not flow._turns


async def test_a_slow_update_holds_up_its_senders_next_one_for_its_turn_only():
    flow = UpdateFlow(active=8, lease_s=0.01, turn_s=0.2)
    started, stuck = {}, asyncio.Event()
    first, second = sent_by(1, 42), sent_by(2, 42)
    for update in (first, second):
        await flow.queue.put(update)
    loop = asyncio.get_running_loop()

    async def slow() -> None:  # a /mood downloading and listening
        started["slow"] = loop.time()
        await stuck.wait()

    async def quick() -> None:
        started["quick"] = loop.time()

    tasks = [asyncio.create_task(flow.processor.process_update(first, slow())),
             asyncio.create_task(flow.processor.process_update(second, quick()))]
    await asyncio.wait_for(tasks[1], 2)
    assert 0.15 <= started["quick"] - started["slow"] < 1.0
    stuck.set()
    await tasks[0]
    assert flow.pending == 0 and not flow._turns


async def test_an_albums_items_do_not_wait_for_each_other_but_the_next_command_waits_for_them():
    flow = UpdateFlow(active=8, lease_s=0.01, turn_s=10)
    log, collected = [], asyncio.Event()
    updates = [sent_by(1, 42, album="A"), sent_by(2, 42, album="A"), sent_by(3, 42)]
    for update in updates:
        await flow.queue.put(update)

    async def first_item() -> None:  # collects the album's other items, then answers it
        log.append("item 1")
        await asyncio.wait_for(collected.wait(), 1)
        log.append("album answered")

    async def second_item() -> None:
        log.append("item 2")
        collected.set()

    async def command() -> None:
        log.append("command")

    await asyncio.gather(*(asyncio.create_task(flow.processor.process_update(update, run))
                           for update, run in zip(updates, (first_item(), second_item(), command()))))
    assert log == ["item 1", "item 2", "album answered", "command"]
    assert flow.pending == 0 and not flow._turns


async def test_an_update_cancelled_while_waiting_for_its_turn_is_uncounted_and_never_run():
    flow = UpdateFlow(active=8, lease_s=10, turn_s=10)
    ran, hold = [], asyncio.Event()

    async def handler(update: Update) -> None:
        ran.append(update.update_id)
        await hold.wait()

    first, second, third = sent_by(1, 42), sent_by(2, 42), sent_by(3, 42)
    for update in (first, second, third):
        await flow.queue.put(update)
    running = process(flow, first, handler)
    never_run = handler(second)
    waiting = asyncio.create_task(flow.processor.process_update(second, never_run))
    last = process(flow, third, handler)
    await asyncio.sleep(0.05)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert inspect.getcoroutinestate(never_run) == inspect.CORO_CLOSED
    await asyncio.sleep(0.05)
    assert ran == [first.update_id]  # the third still waits for the first
    hold.set()
    await asyncio.gather(running, last)
    assert ran == [first.update_id, third.update_id]
    assert flow.pending == 0 and not flow._turns
