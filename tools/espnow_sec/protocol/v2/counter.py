"""The per-node 48-bit frame counter, reserved in blocks in storage (PROTOCOL.md §7.3).

Every counter value below the stored ``R`` may have been used; a boot continues at ``R``, so a
reboot (any number of them) can skip values but never reuse one.
``R`` is a BE48 field, so it is at most 2^48 - 1 and the last counter sent is 2^48 - 2.
"""

from __future__ import annotations

from .constants import COUNTER_MAX
from .errors import Exhausted, StoreCorrupt
from .records import CTR_NAME, CounterRecord
from .store import Store


class FrameCounter:
    def __init__(self, store: Store, block: int, key_record_exists: bool = False) -> None:
        """Boot: load ``R`` (absent: 0); absent/corrupt while a key record exists: refuse."""
        if not 16 <= block <= 65536:
            raise ValueError("counter block must be 16..65536")
        self.store = store
        self.block = block
        raw = store.load(CTR_NAME)
        if raw is None:
            if key_record_exists:
                raise StoreCorrupt(
                    "v2_ctr is missing while a key record exists: erase the keys and re-provision"
                )
            self.reserved = 0
        else:
            self.reserved = CounterRecord.decode(raw).reserved
        self.next = self.reserved

    def take(self) -> int:
        """Return the counter for the next secured frame, reserving a block first if needed.

        A failed reservation raises :class:`~.errors.StoreFail` and leaves ``next`` unchanged.
        """
        c = self.next
        if c >= COUNTER_MAX:
            raise Exhausted("the 48-bit frame counter is used up: this node can send no more")
        if c >= self.reserved:
            r = min(self.reserved + self.block, COUNTER_MAX)
            self.store.save(CTR_NAME, CounterRecord(r).encode())
            self.reserved = r
        self.next = c + 1
        return c
