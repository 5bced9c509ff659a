"""Rate limiting of the responder (PROTOCOL.md §11.2-11.4): token buckets and PoP backoff.

Both are exact integer rules (§11.3 "bucket arithmetic"), so the C core and this reference
agree on every admission and every ``retry_after_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """``capacity`` tokens, one more per ``refill_ms``; starts full."""

    capacity: int
    refill_ms: int
    tokens: int = -1
    t_ref: int = 0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def _refill(self, now: int) -> None:
        if self.tokens >= self.capacity:
            self.t_ref = now
            return
        gained = (now - self.t_ref) // self.refill_ms
        if gained > 0:
            self.tokens = min(self.capacity, self.tokens + gained)
            self.t_ref = (
                now if self.tokens >= self.capacity else self.t_ref + gained * self.refill_ms
            )

    def take(self, now: int) -> bool:
        self._refill(now)
        if self.tokens > 0:
            self.tokens -= 1
            return True
        return False

    def retry_after(self, now: int) -> int:
        """Milliseconds until the next token (0 if one is available)."""
        self._refill(now)
        if self.tokens > 0:
            return 0
        return self.refill_ms - (now - self.t_ref)

    def refund(self, now: int) -> None:
        self._refill(now)
        self.tokens = min(self.capacity, self.tokens + 1)
        if self.tokens >= self.capacity:
            self.t_ref = now


@dataclass
class _Fail:
    mac: bytes
    fails: int
    blocked_until: int
    last_failed_sid: int
    t_fail: int


@dataclass
class PopBackoff:
    """Per-MAC exponential backoff after wrong PoPs (§11.2)."""

    size: int
    base_ms: int
    max_ms: int
    forget_ms: int
    entries: dict[bytes, _Fail] = field(default_factory=dict)

    def _forget(self, now: int) -> None:
        for mac in [m for m, e in self.entries.items() if now - e.t_fail >= self.forget_ms]:
            del self.entries[mac]

    def blocked_for(self, mac: bytes, now: int) -> int:
        """Remaining block in ms (0: not blocked)."""
        self._forget(now)
        e = self.entries.get(mac)
        if e is None or now >= e.blocked_until:
            return 0
        return e.blocked_until - now

    def last_failed_sid(self, mac: bytes, now: int) -> int:
        self._forget(now)
        e = self.entries.get(mac)
        return e.last_failed_sid if e else 0

    def record_failure(self, mac: bytes, sid: int, now: int) -> int:
        """Count a bad ``conf_I``; returns the new block length in ms."""
        self._forget(now)
        e = self.entries.get(mac)
        if e is None:
            if len(self.entries) >= self.size:
                victim = min(self.entries.values(), key=lambda x: (x.blocked_until, x.mac))
                del self.entries[victim.mac]
            e = _Fail(mac, 0, now, sid, now)
            self.entries[mac] = e
        e.fails += 1
        block = min(self.base_ms << min(e.fails - 1, 30), self.max_ms)
        e.blocked_until, e.last_failed_sid, e.t_fail = now + block, sid, now
        return block

    def clear(self, mac: bytes) -> None:
        self.entries.pop(mac, None)
