"""Progress bars, one rule for all: drawn on stderr when stderr is a terminal, whatever stdout is (`identify
party/ --csv > who.csv` shows one), never into a pipe or a log file, and visible on a terminal that reports no
width (a pseudo-terminal whose size was never set draws tqdm's bar zero columns wide: nothing at all)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

#: Columns drawn on a terminal that reports a width of 0.
FALLBACK_COLUMNS = 80


def _columns() -> int | None:
    """The width to draw at when the terminal reports none (None: let tqdm measure it)."""
    try:
        columns = os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):  # not a terminal, or no file descriptor (a test's stream)
        return None
    return FALLBACK_COLUMNS if columns == 0 else None


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **options: Any):
    """A tqdm bar over `iterable` on stderr (`options`: desc, total, unit, leave), shown when `enabled` and stderr
    is a terminal."""
    from tqdm import tqdm

    return tqdm(iterable, file=sys.stderr, disable=None if enabled else True, ncols=_columns(), **options)


def write_line(text: str) -> None:
    """A line on stderr that does not break a bar being drawn."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)
