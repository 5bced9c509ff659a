"""Key epochs: current, staged and previous group keys, the grace rule (PROTOCOL.md §9.1-9.4)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import EpochRejected, Foreign
from .keyschedule import k_grp
from .replay import ReplayTable


@dataclass
class EpochKey:
    epoch: int
    secret: bytes
    key: bytes
    table: ReplayTable
    t_act: int = 0  # when it stopped being current (previous only)


class Epochs:
    """The three slots of §9.1 with one replay table per accepted epoch (§8.1)."""

    def __init__(self, table_size: int, idle_ms: int, sync_retries: int) -> None:
        self.current: EpochKey | None = None
        self.staged: EpochKey | None = None
        self.previous: EpochKey | None = None
        self.grace_ms = 0
        self._table_args = (table_size, idle_ms, sync_retries)

    def _make(self, epoch: int, secret: bytes) -> EpochKey:
        return EpochKey(epoch, bytes(secret), k_grp(epoch, secret), ReplayTable(*self._table_args))

    @property
    def epoch(self) -> int:
        return self.current.epoch if self.current else 0

    @property
    def staged_epoch(self) -> int:
        return self.staged.epoch if self.staged else 0

    def set(self, epoch: int, secret: bytes, staged: tuple[int, bytes] | None = None) -> None:
        """Load from storage (boot): no previous key survives a reboot (§9.1)."""
        self.current = self._make(epoch, secret) if epoch else None
        self.staged = self._make(*staged) if staged and staged[0] else None
        self.previous = None

    def stage(self, epoch: int, secret: bytes) -> None:
        self.staged = self._make(epoch, secret)

    def install(self, epoch: int, secret: bytes, now: int) -> None:
        """Make ``(epoch, secret)`` current; the old current becomes previous (§9.3)."""
        if self.current is not None and self.current.epoch != epoch:
            self.previous = self.current
            self.previous.t_act = now
            self.previous.table.frozen = True
        self.current = self._make(epoch, secret)
        if self.staged is not None and self.staged.epoch <= epoch:
            self.staged = None

    def activate_staged(self, now: int) -> int:
        assert self.staged is not None
        e = self.staged
        self.install(e.epoch, e.secret, now)
        return e.epoch

    def expire(self, now: int) -> None:
        """Wipe the previous key once its grace is over (§9.4)."""
        if self.previous is not None and now - self.previous.t_act >= self.grace_ms:
            self.previous = None

    def select(self, epoch: int, now: int, allow_previous: bool = True) -> tuple[str, EpochKey]:
        """§9.4 table: which key processes a frame with ``key_epoch = epoch``."""
        if self.current is None:
            raise Foreign("no group key: this node is not secured")
        self.expire(now)
        if epoch == self.current.epoch:
            return "current", self.current
        if self.staged is not None and epoch == self.staged.epoch:
            return "staged", self.staged
        if allow_previous and self.previous is not None and epoch == self.previous.epoch:
            return "previous", self.previous
        raise EpochRejected(
            f"key epoch {epoch} is not current ({self.current.epoch}), staged or in grace"
        )

    def wipe(self) -> None:
        self.current = self.staged = self.previous = None
