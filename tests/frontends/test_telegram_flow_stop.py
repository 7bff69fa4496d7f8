"""The stop's side of Telegram's admission control (`UpdateFlow.finish`): the updates in progress
get a grace to be done; those still running then are cancelled and their senders told; one still
waiting for a slot, or handed over after the cut, is never started but told the same; a handler
that told its sender itself (`told`) is not told twice; and the counts come back to zero."""
from __future__ import annotations

import asyncio

from telegram import Update
from telegram.error import Forbidden

from bot.frontends.telegram_flow import UpdateFlow
from tests.frontends.test_request_ids import lines_of
from tests.frontends.test_telegram_flow import hand_over, process


def telling(flow: UpdateFlow) -> list[int]:
    told: list[int] = []

    async def cut_short(update: Update) -> None:
        told.append(update.update_id)

    flow.cut_short = cut_short
    return told


async def test_a_quick_update_is_let_finish_and_a_slow_one_is_cut_short_and_said():
    flow = UpdateFlow(active=2, lease_s=10)
    told = telling(flow)
    done: list[int] = []

    async def handler(update: Update) -> None:
        await asyncio.sleep(0.2 if update.update_id == 1 else 60)
        done.append(update.update_id)

    quick, slow = await hand_over(flow, 2)
    tasks = [process(flow, u, handler) for u in (quick, slow)]
    await asyncio.sleep(0.05)
    assert await flow.finish(grace_s=1.0, tell_s=1.0) == 1
    await asyncio.gather(*tasks, return_exceptions=True)
    assert done == [1] and told == [2]
    assert flow.pending == 0


async def test_an_update_waiting_for_a_slot_or_handed_over_after_the_cut_never_runs_but_is_said():
    flow = UpdateFlow(active=1, lease_s=10)
    told = telling(flow)
    started: list[int] = []

    async def handler(update: Update) -> None:
        started.append(update.update_id)
        await asyncio.sleep(60)

    running, waiting = await hand_over(flow, 2)
    tasks = [process(flow, u, handler) for u in (running, waiting)]
    await asyncio.sleep(0.05)
    assert await flow.finish(grace_s=0.1, tell_s=1.0) == 2
    (late,) = await hand_over(flow, 1, first_id=3)
    await process(flow, late, handler)
    await asyncio.gather(*tasks, return_exceptions=True)
    assert started == [1] and sorted(told) == [1, 2, 3]
    assert flow.pending == 0


async def test_a_handler_that_said_it_itself_is_not_said_again():
    flow = UpdateFlow(active=1, lease_s=10)
    told = telling(flow)

    async def handler(update: Update) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            flow.told()
            raise

    (update,) = await hand_over(flow, 1)
    task = process(flow, update, handler)
    await asyncio.sleep(0.05)
    await flow.finish(grace_s=0.1, tell_s=1.0)
    await asyncio.gather(task, return_exceptions=True)
    assert told == []


async def test_a_sender_the_stop_could_not_tell_is_named_by_their_request(log_stream):
    """An update handed over once the stop's grace was over is not started, its sender told; where
    Telegram refused that (they blocked the bot meanwhile), `telegram.cut_short_not_told` had no
    req=: the request id was begun only for an update that starts. It carries the update's, as the
    line of one cut short while running does."""
    flow = UpdateFlow(active=1, lease_s=10)

    async def cut_short(update: Update) -> None:
        raise Forbidden("Forbidden: bot was blocked by the user")

    flow.cut_short = cut_short

    async def handler(update: Update) -> None:
        await asyncio.sleep(60)

    (running,) = await hand_over(flow, 1)
    task = process(flow, running, handler)
    await asyncio.sleep(0.05)
    assert await flow.finish(grace_s=0.1, tell_s=1.0) == 1
    (late,) = await hand_over(flow, 1, first_id=2)
    await process(flow, late, handler)
    await asyncio.gather(task, return_exceptions=True)
    lines = lines_of(log_stream, "telegram.cut_short_not_told")
    assert [line.get("req") for line in lines] == ["tg-1", "tg-2"], str(lines)
    assert flow.pending == 0
