"""Thread pools of their own, made at first use, for blocking work that must not queue behind
other kinds in asyncio's default pool (files behind network lookups, lookups behind everything)."""
from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class ThreadPool:
    def __init__(self, threads: int, name: str) -> None:
        self.threads, self.name = threads, name
        self._executor: ThreadPoolExecutor | None = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix=self.name)
        return self._executor

    def run(self, function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """`function(*args)` in the pool, awaitable from the running event loop, in the caller's
        context (as asyncio.to_thread: what it logs carries the caller's request, bot.logs.REQUEST)."""
        context = contextvars.copy_context()
        return asyncio.get_running_loop().run_in_executor(self.executor, context.run, function, *args)

    def submit(self, function: Callable[..., T], *args: Any) -> Future[T]:
        """`function(*args)` in the pool, from anywhere, awaited by nobody."""
        return self.executor.submit(function, *args)
