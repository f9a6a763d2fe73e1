"""The one worker thread that runs every model call of an app, one at a time, off the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_END = object()


class Worker:
    """Runs calls one at a time, in submission order, in a single thread.

    A model is rarely thread-safe and an accelerator runs one batch at a time anyway, so every
    model call of an app (batched /generate calls, batched and streamed OpenAI requests) goes
    through one Worker; the event loop stays free to answer while it runs. The thread starts on
    first use.
    """

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Return fn(*args), run in the worker thread after the calls submitted before it."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="generator")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def stream(self, fn: Callable[[Callable[[Any], bool]], Any]) -> AsyncIterator[Any]:
        """Yield what fn(emit) passes to emit, as it does, while fn runs in the worker thread.

        `emit(item)` returns False once the consumer is gone (it stopped iterating or was
        cancelled), so fn can stop early. An exception of fn is raised here after the items it
        emitted before it.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        gone = threading.Event()

        def emit(item: Any) -> bool:
            if not gone.is_set():
                loop.call_soon_threadsafe(queue.put_nowait, item)
            return not gone.is_set()

        def call() -> Any:
            return None if gone.is_set() else fn(emit)

        def ended(job: asyncio.Future) -> None:
            queue.put_nowait(_END)
            if not job.cancelled():
                job.exception()  # retrieved here too, for a consumer that left before the end

        job = asyncio.ensure_future(self.run(call))
        # the worker's items were queued on the loop before the job's completion, so _END comes last
        job.add_done_callback(ended)
        try:
            while (item := await queue.get()) is not _END:
                yield item
            await job
        finally:
            gone.set()

    def close(self) -> None:
        """Drop the calls not started yet and release the thread (a running call finishes in the background)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = None
