"""The service's head-turn challenges: each a random sequence of turns behind a token that is good for one try
before it expires, so a client learns the turns only when it asks and cannot answer one challenge twice."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rnnface.liveness.active import random_turns
from rnnface.service.errors import HttpError

#: Challenges open at once (about 200 bytes each); past it, new ones wait for old ones to be used or expire.
MAX_OPEN = 10_000


@dataclass(frozen=True)
class Issued:
    token: str
    turns: tuple[str, ...]  # the person's own left and right, in order
    expires: float  # on the store's clock


class Challenges:
    """The open challenges of one server: `turns` turns each, valid `ttl_s` seconds, used at most once."""

    def __init__(
        self,
        turns: int,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        draw: Callable[[int], tuple[str, ...]] = random_turns,
    ) -> None:
        self.turns, self.ttl_s, self.clock, self.draw = turns, ttl_s, clock, draw
        self._open: dict[str, Issued] = {}
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        for token in [t for t, c in self._open.items() if c.expires <= now]:
            del self._open[token]

    def issue(self) -> Issued:
        """A new challenge; 429 while `MAX_OPEN` are open."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            if len(self._open) >= MAX_OPEN:
                raise HttpError(429, f"{MAX_OPEN} challenges are open; try again in {self.ttl_s:g} s")
            issued = Issued(secrets.token_urlsafe(18), self.draw(self.turns), now + self.ttl_s)
            self._open[issued.token] = issued
            return issued

    def redeem(self, token: str) -> tuple[str, ...]:
        """The turns of challenge `token`, which is used up by this call; 403 when it is unknown, used or expired."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            issued = self._open.pop(token, None)
        if issued is None:
            raise HttpError(403, "the challenge token is unknown, used or expired: POST /challenge for a new one")
        return issued.turns
