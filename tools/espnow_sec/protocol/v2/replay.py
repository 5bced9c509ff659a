"""Replay protection: 64-counter sliding windows in a bounded per-epoch table (PROTOCOL.md §8).

:class:`Window` is the pure window arithmetic of §8.2 steps 2 and 5 and the "sync at c" rule of
§8.3. :class:`ReplayTable` is ``T(E)``: at most ``size`` entries, created only after a frame
authenticated, reclaimed only when that cannot re-open a replay (§8.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .constants import WINDOW

_ALL = (1 << WINDOW) - 1


@dataclass
class Window:
    """``max`` and ``bitmap``: bit i set means counter ``max - i`` was seen (§8.1)."""

    max: int
    bitmap: int = _ALL

    def check(self, c: int) -> bool:
        """§8.2 step 2: True if ``c`` may be accepted."""
        if c > self.max:
            return True
        d = self.max - c
        return d < WINDOW and not (self.bitmap >> d) & 1

    def commit(self, c: int) -> None:
        """§8.2 step 5 (call only after :meth:`check` passed)."""
        if c > self.max:
            shift = c - self.max
            self.bitmap = ((self.bitmap << shift) & _ALL) if shift < WINDOW else 0
            self.bitmap |= 1
            self.max = c
        else:
            self.bitmap |= 1 << (self.max - c)

    def sync(self, c: int) -> None:
        """§8.3 "sync at c" on a SYNCED entry: moves forward only."""
        if c > self.max:
            self.max, self.bitmap = c, _ALL


class EntryState(Enum):
    PENDING = "pending"
    SYNCED = "synced"


@dataclass
class Entry:
    mac: bytes
    state: EntryState
    t_last: int
    window: Window | None = None
    challenge: int = 0
    t_sent: int = 0
    tries: int = 0

    def exhausted(self, retries: int) -> bool:
        return self.state is EntryState.PENDING and self.tries > retries


@dataclass
class ReplayTable:
    """``T(E)``; ``frozen`` once the epoch became previous (no new entries, §8.1)."""

    size: int
    idle_ms: int
    retries: int
    entries: dict[bytes, Entry] = field(default_factory=dict)
    frozen: bool = False

    def get(self, mac: bytes) -> Entry | None:
        return self.entries.get(mac)

    def synced(self, mac: bytes) -> Window | None:
        e = self.entries.get(mac)
        return e.window if e is not None and e.state is EntryState.SYNCED else None

    def slot_for(self, mac: bytes, now: int) -> bool:
        """True if ``mac`` has or can get an entry, reclaiming one if allowed (§8.5)."""
        if mac in self.entries:
            return True
        if self.frozen:
            return False
        if len(self.entries) < self.size:
            return True
        victims = [
            e
            for e in self.entries.values()
            if (e.state is EntryState.SYNCED and now - e.t_last >= self.idle_ms)
            or e.exhausted(self.retries)
        ]
        if not victims:
            return False
        victim = min(victims, key=lambda e: (e.t_last, e.mac))
        del self.entries[victim.mac]
        return True

    def sync_at(self, mac: bytes, c: int, now: int) -> bool:
        """§8.3 "sync S at c"; False if no slot (TABLE_FULL)."""
        e = self.entries.get(mac)
        if e is not None and e.state is EntryState.SYNCED and e.window is not None:
            e.window.sync(c)
            e.t_last = now
            return True
        if e is None and not self.slot_for(mac, now):
            return False
        self.entries[mac] = Entry(mac, EntryState.SYNCED, now, Window(c))
        return True

    def start_pending(self, mac: bytes, challenge: int, now: int) -> Entry:
        e = Entry(mac, EntryState.PENDING, now, None, challenge, now, 0)
        self.entries[mac] = e
        return e
