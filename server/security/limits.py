"""Per-key request and token limits: token buckets that refill continuously over a minute.

A key's requests-per-minute bucket is charged one per request before it runs; its
tokens-per-minute bucket is charged the tokens a call used after it ran and may go negative, so a
key over its token budget is refused until the bucket has refilled. Limits of 0 mean none. State is
in memory: one server process, and a restart forgets spent budgets.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from server.security.keys import ApiKey


@dataclass
class _Bucket:
    capacity: float
    level: float
    updated: float = field(default_factory=time.monotonic)

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.capacity / 60.0)
        self.updated = now

    def seconds_until(self, amount: float) -> float:
        """Seconds until the bucket holds `amount` (0 if it does)."""
        missing = amount - self.level
        return 0.0 if missing <= 0 else missing * 60.0 / self.capacity


class RateLimiter:
    """Request and token budgets per key name."""

    def __init__(self) -> None:
        self._requests: dict[str, _Bucket] = {}
        self._tokens: dict[str, _Bucket] = {}

    @staticmethod
    def _bucket(table: dict[str, _Bucket], name: str, capacity: int, now: float) -> _Bucket:
        bucket = table.get(name)
        if bucket is None or bucket.capacity != capacity:
            bucket = table[name] = _Bucket(float(capacity), float(capacity), now)
        bucket.refill(now)
        return bucket

    def admit(self, key: ApiKey) -> int | None:
        """Charge one request to `key`; None if admitted, else the seconds to wait (Retry-After)."""
        now = time.monotonic()
        if key.tokens_per_minute:
            tokens = self._bucket(self._tokens, key.name, key.tokens_per_minute, now)
            if tokens.level <= 0:
                return max(1, math.ceil(tokens.seconds_until(1.0)))
        if key.requests_per_minute:
            requests = self._bucket(self._requests, key.name, key.requests_per_minute, now)
            if requests.level < 1:
                return max(1, math.ceil(requests.seconds_until(1.0)))
            requests.level -= 1
        return None

    def charge_tokens(self, key: ApiKey, tokens: int) -> None:
        """Record that a call of `key` used `tokens` tokens."""
        if key.tokens_per_minute and tokens > 0:
            bucket = self._bucket(self._tokens, key.name, key.tokens_per_minute, time.monotonic())
            bucket.level -= tokens
