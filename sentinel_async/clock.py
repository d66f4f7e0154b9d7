"""Injected clocks and id generators, so runs and tests are reproducible."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from typing import Protocol


class Clock(Protocol):
    """Gives the current time as seconds since the Unix epoch."""

    def now(self) -> float: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to (or by a fixed step per reading)."""

    def __init__(self, start: float = 1_750_000_000.0, step: float = 0.0) -> None:
        self._now = start
        self._step = step
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            value = self._now
            self._now += self._step
            return value

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class IdFactory(Protocol):
    """Makes unique string ids."""

    def new_id(self) -> str: ...


class RandomIds:
    """Random 128-bit hex ids (as unique as UUID4, cheaper to make)."""

    def new_id(self) -> str:
        return os.urandom(16).hex()


class SeededIds:
    """Deterministic UUID-shaped hex ids from a seed: the same seed gives the same sequence."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def new_id(self) -> str:
        with self._lock:
            return uuid.UUID(int=self._rng.getrandbits(128), version=4).hex
