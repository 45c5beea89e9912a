"""A blocking job run from an async Gradio handler, so that a cancel reaches it.

Gradio runs a plain (sync) handler in a worker thread and cancels an event by cancelling its asyncio task
(``/cancel``: a client's ``job.cancel()``, a button's ``cancels=``); the thread cannot be interrupted and keeps
annotating, so the job would neither stop nor remove its files. ``in_thread`` turns the task's cancellation
into the job's ``threading.Event``, then waits for the job to return (a chunk of frames, a second or so)
before the cancellation goes on: the queue starts its next job only once this one has really stopped.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import TypeVar

T = TypeVar("T")


async def in_thread(work: Callable[[], T], cancel: threading.Event) -> T:
    """``work()`` in a worker thread (with this context); ``cancel`` is set when the awaiting task is cancelled."""
    job = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        cancel.set()
        with suppress(BaseException):  # its own error (Cancelled, as a gr.Error or not) is not the news here
            await job
        raise
