"""`KeptUntilAnswered` (bot/frontends/keeping.py) at the stop, on its own: the writes and clears
are coroutines here that record what they were given."""
from __future__ import annotations

import asyncio
import logging

from bot.frontends.keeping import KeptUntilAnswered


class Inbox:
    def __init__(self, write_s: float = 0.0) -> None:
        self.write_s = write_s
        self.kept: set[int] = set()
        self.clears: list[tuple[list[int], bool]] = []

    async def write(self, items) -> None:
        await asyncio.sleep(self.write_s)
        self.kept.update(items)

    async def clear(self, numbers, *, even_paused: bool = False) -> bool:
        self.clears.append((list(numbers), even_paused))
        self.kept.difference_update(numbers)
        return True


def kept_by(inbox: Inbox, clear_after_s: float = 0.1) -> KeptUntilAnswered[int]:
    return KeptUntilAnswered(inbox.write, inbox.clear, lambda: 0.0, clear_after_s=clear_after_s)


def clears_pending() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if "_clear_done" in repr(t.get_coro()) and not t.done()]


async def test_the_stop_clears_at_once_what_was_done_just_before_it():
    inbox = Inbox()
    kept = kept_by(inbox, clear_after_s=30.0)  # a clear due in 30 s: the stop does not wait for it
    kept.arrived(1, 1)
    await kept.keep()
    kept.finished([1])
    started = asyncio.get_running_loop().time()
    await kept.flush(5.0)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert inbox.kept == set() and not clears_pending()


async def test_a_write_ending_during_the_stop_has_its_clear_made_by_the_stop():
    """Done while its write was under way: cleared after that write, which ends after the stop
    began; the stop waits for that clear too."""
    inbox = Inbox(write_s=0.3)
    kept = kept_by(inbox)
    kept.arrived(1, 1)
    kept.keep_soon()
    await asyncio.sleep(0.05)  # the write is under way
    kept.finished([1])
    await kept.flush(5.0)
    assert inbox.kept == set(), inbox.clears
    assert not clears_pending()


async def test_one_done_after_the_stop_is_left_kept_with_no_clear_pending(caplog):
    """Nothing awaits a clear begun after the stop's last: left pending, the loop's end destroyed
    it. It is left kept, said in the log, for the next start to answer."""
    inbox = Inbox()
    kept = kept_by(inbox)
    kept.arrived(1, 1)
    await kept.keep()
    await kept.flush(1.0)
    with caplog.at_level(logging.INFO, logger="bot.frontends.keeping"):
        kept.finished([1])
    assert not clears_pending()
    assert inbox.kept == {1}
    assert [r.requests for r in caplog.records if r.getMessage() == "kept.not_cleared_at_stop"] == [1]


async def test_one_done_between_two_stops_is_cleared_by_the_second(caplog):
    """The app finishes every front-end at once, then stops each, and a Discord stop flushes
    again: a request answered between the two flushes was left kept, and answered again by the
    next start. The second flush clears it."""
    inbox = Inbox()
    kept = kept_by(inbox)
    for number in (1, 2):
        kept.arrived(number, number)
    await kept.keep()
    kept.finished([1])
    await kept.flush(1.0)
    assert inbox.kept == {2}
    with caplog.at_level(logging.INFO, logger="bot.frontends.keeping"):
        kept.finished([2])  # answered between the app's finish and the front-end's stop
    await kept.flush(1.0)
    assert inbox.kept == set(), inbox.clears
    assert inbox.clears[-1] == ([2], True) and not clears_pending()  # the stop's try, even paused
