"""Run a coroutine to completion from synchronous test code, whatever loop is running."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, or the same in a fresh thread when this thread has a running loop.

    Playwright's synchronous API keeps an event loop running in the main thread
    for the whole test session once a browser test has run, and ``asyncio.run``
    refuses to start inside it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
