"""Persistent storage seen by the core: named records, each saved atomically (PROTOCOL.md §12).

:class:`MemoryStore` is the in-process stand-in (a dict), with a write log and failure injection
so tests can simulate reboots (hand the same store to a new machine) and failing flash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .errors import StoreFail


class Store(Protocol):
    def load(self, name: str) -> bytes | None: ...

    def save(self, name: str, data: bytes) -> None:
        """Atomically replace ``name``; raise :class:`StoreFail` if the write failed."""
        ...

    def erase(self, name: str) -> None: ...


@dataclass
class MemoryStore:
    records: dict[str, bytes] = field(default_factory=dict)
    writes: list[tuple[str, bytes | None]] = field(default_factory=list)
    fail_writes: bool = False

    def load(self, name: str) -> bytes | None:
        return self.records.get(name)

    def save(self, name: str, data: bytes) -> None:
        if self.fail_writes:
            raise StoreFail(f"store_save({name!r}) failed (injected)")
        self.records[name] = bytes(data)
        self.writes.append((name, bytes(data)))

    def erase(self, name: str) -> None:
        self.records.pop(name, None)
        self.writes.append((name, None))
