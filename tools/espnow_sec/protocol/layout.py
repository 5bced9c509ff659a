"""Declarative byte layouts: one declaration per message that both encodes and decodes.

A message is a frozen dataclass with a class attribute ``LAYOUT``: a tuple of fields in wire
order. :class:`Message` derives ``encode()`` and ``decode()`` from it, so the two directions
cannot drift (STYLE.md "Examples to follow" 19; the idea of construct's ``Struct``, written
small and typed for the few shapes the compat wire needs).

Decoding is strict: a byte string must be consumed exactly. Too few bytes raise
:class:`~espnow_sec.protocol.errors.Truncated`, extra bytes raise
:class:`~espnow_sec.protocol.errors.Malformed`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from .errors import Malformed, Truncated

MAC_LEN = 6


class Field(Protocol):
    """One wire field. ``name`` is None for fields that are not dataclass attributes."""

    @property
    def name(self) -> str | None: ...

    def pack(self, value: Any, owner: str) -> bytes: ...

    def unpack(self, buf: bytes, pos: int, owner: str) -> tuple[Any, int]: ...


def _take(buf: bytes, pos: int, n: int, what: str) -> bytes:
    if pos + n > len(buf):
        raise Truncated(f"{what}: needs {n} byte(s) at offset {pos}, only {len(buf) - pos} left")
    return buf[pos : pos + n]


@dataclass(frozen=True)
class Const:
    """A constant byte (a type tag). Decoding another value is ``Malformed``."""

    value: int
    label: str = "type"
    name: None = None

    def pack(self, value: Any, owner: str) -> bytes:
        return bytes([self.value])

    def unpack(self, buf: bytes, pos: int, owner: str) -> tuple[Any, int]:
        got = _take(buf, pos, 1, f"{owner}.{self.label}")[0]
        if got != self.value:
            raise Malformed(f"{owner}: {self.label} byte is {got}, expected {self.value}")
        return None, pos + 1


@dataclass(frozen=True)
class U8:
    name: str

    def pack(self, value: Any, owner: str) -> bytes:
        if not isinstance(value, int) or not 0 <= value <= 0xFF:
            raise ValueError(f"{owner}.{self.name} must be an int 0..255, got {value!r}")
        return bytes([value])

    def unpack(self, buf: bytes, pos: int, owner: str) -> tuple[Any, int]:
        return _take(buf, pos, 1, f"{owner}.{self.name}")[0], pos + 1


@dataclass(frozen=True)
class Fixed:
    """Exactly ``length`` raw bytes (a MAC, a group id)."""

    name: str
    length: int

    def pack(self, value: Any, owner: str) -> bytes:
        value = bytes(value)
        if len(value) != self.length:
            raise ValueError(f"{owner}.{self.name} must be {self.length} bytes, got {len(value)}")
        return value

    def unpack(self, buf: bytes, pos: int, owner: str) -> tuple[Any, int]:
        return bytes(_take(buf, pos, self.length, f"{owner}.{self.name}")), pos + self.length


@dataclass(frozen=True)
class Sized:
    """A u8 length followed by that many bytes (the inner record's ``size`` + ``data``)."""

    name: str

    def pack(self, value: Any, owner: str) -> bytes:
        value = bytes(value)
        if len(value) > 0xFF:
            raise ValueError(
                f"{owner}.{self.name} is {len(value)} bytes; the u8 size caps it at 255"
            )
        return bytes([len(value)]) + value

    def unpack(self, buf: bytes, pos: int, owner: str) -> tuple[Any, int]:
        size = _take(buf, pos, 1, f"{owner}.size")[0]
        if pos + 1 + size > len(buf):
            raise Truncated(f"{owner}: inner size {size} > real length {len(buf) - pos - 1}")
        return bytes(buf[pos + 1 : pos + 1 + size]), pos + 1 + size


@dataclass(frozen=True)
class MacList:
    """A u8 count followed by ``count`` 6-byte MACs; at most ``max_count`` when encoding."""

    name: str
    max_count: int

    def pack(self, value: Any, owner: str) -> bytes:
        macs = tuple(bytes(m) for m in value)
        if len(macs) > self.max_count:
            raise ValueError(f"{owner}.{self.name}: {len(macs)} MACs, at most {self.max_count}")
        for m in macs:
            if len(m) != MAC_LEN:
                raise ValueError(f"{owner}.{self.name}: every MAC must be 6 bytes")
        return bytes([len(macs)]) + b"".join(macs)

    def unpack(self, buf: bytes, pos: int, owner: str) -> tuple[Any, int]:
        count = _take(buf, pos, 1, f"{owner}.count")[0]
        raw = _take(buf, pos + 1, count * MAC_LEN, f"{owner}.{self.name}")
        macs = tuple(raw[i : i + MAC_LEN] for i in range(0, len(raw), MAC_LEN))
        return macs, pos + 1 + count * MAC_LEN


M = TypeVar("M", bound="Message")


class Message:
    """Mixin for frozen dataclasses with a ``LAYOUT``."""

    LAYOUT: ClassVar[tuple[Field, ...]] = ()

    def encode(self) -> bytes:
        owner = type(self).__name__
        return b"".join(
            f.pack(getattr(self, f.name) if f.name else None, owner) for f in self.LAYOUT
        )

    @classmethod
    def decode(cls: type[M], buf: bytes) -> M:
        owner = cls.__name__
        pos = 0
        values: dict[str, Any] = {}
        for f in cls.LAYOUT:
            value, pos = f.unpack(buf, pos, owner)
            if f.name:
                values[f.name] = value
        if pos != len(buf):
            raise Malformed(f"{owner}: {len(buf) - pos} unexpected trailing byte(s)")
        return cls(**values)

    def fields(self) -> dict[str, Any]:
        """The message's attributes in declaration order (for decoders and JSON)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
