"""Giving memory back: a server that decodes big images in many worker threads must not keep what it freed.

glibc's malloc gives each thread that allocates an arena of its own (up to 8 per core) and keeps freed memory in
it; a burst of large decodes spread over a thread pool then leaves gigabytes resident long after. `limit_arenas`
caps the arenas (before the threads start) and `release_freed` returns freed heap pages to the system. Both do
nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

#: mallopt's parameter number for the arena cap (glibc's M_ARENA_MAX).
_M_ARENA_MAX = -8


@lru_cache(maxsize=1)
def _glibc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both must exist: glibc
    except (OSError, AttributeError, TypeError):
        return None
    return libc


def limit_arenas(arenas: int = 2) -> bool:
    """Cap malloc's arenas at `arenas` for this process; whether it took effect."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, arenas))


def release_freed() -> None:
    """Return the heap's free pages to the system (after a big image is done with)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
