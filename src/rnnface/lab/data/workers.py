"""The worker processes that prepare datasets on every core, and that end when the process that started them does.

A `prepare` or `features` killed with SIGKILL cannot shut its pool down, and its workers (each holding a
detector or a CNN, hundreds of MB) would run on for ever: each worker watches its parent and exits once it
is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor


def die_with_parent(parent: int, poll_s: float = 0.5) -> None:
    """In a worker: end as soon as `parent`, the process that started it, is gone (it may be gone already: a
    worker takes a second to start). On Linux the kernel kills it then (PR_SET_PDEATHSIG, which works even while
    native code holds the interpreter); everywhere a watcher thread exits once the worker is re-parented."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="rnnface-parent-watch", daemon=True).start()


def _start(parent: int, init: Callable[..., None], args: tuple) -> None:
    import cv2

    die_with_parent(parent)
    cv2.setNumThreads(1)  # the parallelism comes from the processes
    init(*args)


def worker_pool(workers: int | None, init: Callable[..., None], args: tuple = ()) -> ProcessPoolExecutor:
    """`workers` processes (default: one per core), each set up by `init(*args)`. They are spawned, not forked: a
    fork of a process whose OpenMP or OpenCV thread pools run can deadlock."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        workers or os.cpu_count() or 1, mp_context=context, initializer=_start, initargs=(os.getpid(), init, args)
    )
