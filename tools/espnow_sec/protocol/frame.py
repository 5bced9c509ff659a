"""The outer ESP-NOW frame: the 20-byte ``espnow_data_t`` header and its payload.

Layout (reference/upstream-espnow-security.md §2.1; summary items 1-3), bit 0 = least
significant bit of a byte, multi-byte integers little-endian:

====  ======  =========================================================
byte  bits    field
====  ======  =========================================================
0     0-3     ``type`` (:class:`DataType`)
0     4-5     ``version`` (always 2)
0     6-7     reserved: written 0, ignored on decode
1             ``size``: payload length, low 8 bits
2-3           ``magic`` u16 LE (dedupe only)
4     0-3     ``channel``
4     4       ``filter_adjacent_channel``
4     5       ``filter_weak_signal``
4     6       ``security`` (payload is AES-CCM protected)
4/5   7/0-2   reserved: written 0, ignored on decode
5     3       ``broadcast``
5     4       ``group`` (``dest_addr`` is a group id)
5     5       ``ack``
5/6   6-7/0-2 ``retransmit_count`` (5 bits)
6     3-7     ``forward_ttl`` (5 bits)
7             ``forward_rssi`` (int8)
8-13          ``dest_addr``
14-19         ``src_addr``
====  ======  =========================================================

Bytes 0-7 are read as one little-endian 64-bit integer, so every field is a (lsb, width) slice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from .errors import BadVersion, Truncated

HEADER_LEN = 20
ESPNOW_VERSION = 2
MAC_LEN = 6
BROADCAST_MAC = b"\xff" * 6
ZERO_MAC = bytes(6)
#: Group id of the security group, ASCII "SEC" + three zero bytes (reference §2.1).
SEC_GROUP_ID = b"SEC\x00\x00\x00"
#: Largest ESP-NOW v1 frame body and v2 frame body (ESP_NOW_MAX_DATA_LEN / _V2).
FRAME_MAX_V1 = 250
FRAME_MAX_V2 = 1470


class DataType(IntEnum):
    """``espnow_data_type_t`` (reference §2.1, byte 0 bits 0-3)."""

    ACK = 0
    FORWARD = 1
    GROUP = 2
    PROV = 3
    CONTROL_BIND = 4
    CONTROL_DATA = 5
    OTA_STATUS = 6
    OTA_DATA = 7
    DEBUG_LOG = 8
    DEBUG_COMMAND = 9
    DATA = 10
    SECURITY_STATUS = 11
    SECURITY = 12
    SECURITY_DATA = 13
    TIMESYNC = 14
    RESERVED = 15


# (name, lsb, width, signed) over bytes 0-7 as a little-endian u64: the one declaration both
# encode and decode use.
_BITS: tuple[tuple[str, int, int, bool], ...] = (
    ("type", 0, 4, False),
    ("version", 4, 2, False),
    ("size", 8, 8, False),
    ("magic", 16, 16, False),
    ("channel", 32, 4, False),
    ("filter_adjacent_channel", 36, 1, False),
    ("filter_weak_signal", 37, 1, False),
    ("security", 38, 1, False),
    ("broadcast", 43, 1, False),
    ("group", 44, 1, False),
    ("ack", 45, 1, False),
    ("retransmit_count", 46, 5, False),
    ("forward_ttl", 51, 5, False),
    ("forward_rssi", 56, 8, True),
)
#: Reserved bits (byte 0 bits 6-7, byte 4 bit 7, byte 5 bits 0-2): zero on send, ignored on receive.
RESERVED_BITS = (1 << 6) | (1 << 7) | (1 << 39) | (1 << 40) | (1 << 41) | (1 << 42)
_BOOL_FIELDS = frozenset(n for n, _, w, _ in _BITS if w == 1)


@dataclass(frozen=True)
class Header:
    """The 20-byte outer header. Booleans are flags; ``forward_rssi`` is a signed dBm value."""

    type: int
    size: int = 0
    magic: int = 0
    channel: int = 0
    filter_adjacent_channel: bool = False
    filter_weak_signal: bool = False
    security: bool = False
    broadcast: bool = False
    group: bool = False
    ack: bool = False
    retransmit_count: int = 0
    forward_ttl: int = 0
    forward_rssi: int = 0
    dest_addr: bytes = BROADCAST_MAC
    src_addr: bytes = ZERO_MAC
    version: int = ESPNOW_VERSION

    def __post_init__(self) -> None:
        for name, _lsb, width, signed in _BITS:
            value = int(getattr(self, name))
            lo, hi = (
                (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
            )
            if not lo <= value <= hi:
                raise ValueError(f"header field {name}={value} does not fit {width} bits")
        for name in ("dest_addr", "src_addr"):
            if len(getattr(self, name)) != MAC_LEN:
                raise ValueError(f"header field {name} must be 6 bytes")

    def encode(self) -> bytes:
        word = 0
        for name, lsb, width, _signed in _BITS:
            word |= (int(getattr(self, name)) & ((1 << width) - 1)) << lsb
        return word.to_bytes(8, "little") + bytes(self.dest_addr) + bytes(self.src_addr)

    @classmethod
    def decode(cls, buf: bytes) -> Header:
        """Decode the first 20 bytes of ``buf``; reserved bits are ignored, version unchecked."""
        if len(buf) < HEADER_LEN:
            raise Truncated(f"frame is {len(buf)} bytes; the ESP-NOW header alone is {HEADER_LEN}")
        word = int.from_bytes(buf[:8], "little")
        values: dict[str, Any] = {}
        for name, lsb, width, signed in _BITS:
            v = (word >> lsb) & ((1 << width) - 1)
            if signed and v >= 1 << (width - 1):
                v -= 1 << width
            values[name] = bool(v) if name in _BOOL_FIELDS else v
        return cls(dest_addr=bytes(buf[8:14]), src_addr=bytes(buf[14:20]), **values)

    def fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def payload_size_byte(payload_len: int) -> int:
    """The header ``size`` for a payload: the low 8 bits of its length (reference §2.1)."""
    return payload_len & 0xFF


@dataclass(frozen=True)
class Frame:
    """A whole frame body: header plus payload. ``header.size`` is kept as it was on the wire."""

    header: Header
    payload: bytes

    @classmethod
    def build(cls, header: Header, payload: bytes) -> Frame:
        """A frame whose header ``size`` is set from ``payload``."""
        return cls(
            dataclasses.replace(header, size=payload_size_byte(len(payload))), bytes(payload)
        )

    def encode(self) -> bytes:
        return self.header.encode() + self.payload

    @classmethod
    def decode(cls, buf: bytes) -> Frame:
        """Decode a received frame; the payload is everything after the header.

        The real length wins over ``size`` (esp-now HEAD behaviour); use :attr:`size_matches`
        to see whether an esp-now <= 2.5.3 receiver would have accepted the frame.
        Raises :class:`Truncated` below 20 bytes and :class:`BadVersion` unless version is 2.
        """
        header = Header.decode(buf)
        if header.version != ESPNOW_VERSION:
            raise BadVersion(f"header version is {header.version}, only {ESPNOW_VERSION} exists")
        return cls(header, bytes(buf[HEADER_LEN:]))

    @property
    def size_matches(self) -> bool:
        return self.header.size == payload_size_byte(len(self.payload))
