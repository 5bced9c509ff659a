"""Storage records of protocol v2 (PROTOCOL.md §12).

Byte 0 record magic, byte 1 record version (1), the fields big-endian, then CRC-32 (zlib) of
every preceding byte, little-endian. Any length, magic, version or CRC mismatch raises
:class:`~.errors.StoreCorrupt`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import IntEnum

from .errors import StoreCorrupt

RECORD_VERSION = 1
CTR_NAME = "v2_ctr"
GRP_NAME = "v2_grp"
RESP_NAME = "v2_resp"


def dev_name(slot: int) -> str:
    if not 0 <= slot <= 99:
        raise ValueError("device slot must be 0..99")
    return f"v2_dev{slot:02d}"


def _wrap(magic: int, body: bytes) -> bytes:
    data = bytes([magic, RECORD_VERSION]) + body
    return data + zlib.crc32(data).to_bytes(4, "little")


def _unwrap(name: str, magic: int, length: int, buf: bytes) -> bytes:
    if len(buf) != length:
        raise StoreCorrupt(f"{name}: {len(buf)} bytes, expected {length}")
    if buf[0] != magic:
        raise StoreCorrupt(f"{name}: magic 0x{buf[0]:02x}, expected 0x{magic:02x}")
    if buf[1] != RECORD_VERSION:
        raise StoreCorrupt(f"{name}: version {buf[1]}, this code reads {RECORD_VERSION}")
    if zlib.crc32(buf[:-4]) != int.from_bytes(buf[-4:], "little"):
        raise StoreCorrupt(f"{name}: CRC-32 mismatch (damaged or half-written record)")
    return buf[2:-4]


def _be(b: bytes) -> int:
    return int.from_bytes(b, "big")


@dataclass(frozen=True)
class CounterRecord:
    """``v2_ctr``: ``R``, the end of the current counter reservation (§7.3)."""

    reserved: int

    MAGIC = 0x43
    LEN = 12

    def encode(self) -> bytes:
        return _wrap(self.MAGIC, self.reserved.to_bytes(6, "big"))

    @classmethod
    def decode(cls, buf: bytes) -> CounterRecord:
        return cls(_be(_unwrap(CTR_NAME, cls.MAGIC, cls.LEN, buf)))


@dataclass(frozen=True)
class GroupRecord:
    """``v2_grp`` (initiator): current and staged group secrets, grace, rollout flag."""

    epoch: int
    secret: bytes
    staged_epoch: int
    staged_secret: bytes
    grace_s: int
    rollout: bool

    MAGIC = 0x47
    LEN = 77

    def encode(self) -> bytes:
        return _wrap(
            self.MAGIC,
            self.epoch.to_bytes(2, "big")
            + self.secret
            + self.staged_epoch.to_bytes(2, "big")
            + self.staged_secret
            + self.grace_s.to_bytes(2, "big")
            + bytes([1 if self.rollout else 0]),
        )

    @classmethod
    def decode(cls, buf: bytes) -> GroupRecord:
        b = _unwrap(GRP_NAME, cls.MAGIC, cls.LEN, buf)
        return cls(_be(b[0:2]), b[2:34], _be(b[34:36]), b[36:68], _be(b[68:70]), b[70] != 0)


@dataclass(frozen=True)
class ResponderRecord:
    """``v2_resp``: the pairing and the group keys of a provisioned responder."""

    mac_i: bytes
    k_dev: bytes
    ctl_floor: int
    epoch: int
    secret: bytes
    staged_epoch: int
    staged_secret: bytes
    grace_s: int

    MAGIC = 0x52
    LEN = 120

    def encode(self) -> bytes:
        return _wrap(
            self.MAGIC,
            self.mac_i
            + self.k_dev
            + self.ctl_floor.to_bytes(6, "big")
            + self.epoch.to_bytes(2, "big")
            + self.secret
            + self.staged_epoch.to_bytes(2, "big")
            + self.staged_secret
            + self.grace_s.to_bytes(2, "big"),
        )

    @classmethod
    def decode(cls, buf: bytes) -> ResponderRecord:
        b = _unwrap(RESP_NAME, cls.MAGIC, cls.LEN, buf)
        return cls(
            b[0:6],
            b[6:38],
            _be(b[38:44]),
            _be(b[44:46]),
            b[46:78],
            _be(b[78:80]),
            b[80:112],
            _be(b[112:114]),
        )


class DeviceState(IntEnum):
    PENDING_KEY = 1
    ACTIVE = 2
    REMOVING = 3


@dataclass(frozen=True)
class DeviceRecord:
    """``v2_devNN`` (initiator): one provisioned (or being provisioned) responder."""

    mac: bytes
    k_dev: bytes
    k_dev_pending: bytes
    state: DeviceState
    acked_epoch: int
    staged_acked: int

    MAGIC = 0x44
    LEN = 81

    def encode(self) -> bytes:
        return _wrap(
            self.MAGIC,
            self.mac
            + self.k_dev
            + self.k_dev_pending
            + bytes([self.state])
            + self.acked_epoch.to_bytes(2, "big")
            + self.staged_acked.to_bytes(2, "big"),
        )

    @classmethod
    def decode(cls, buf: bytes) -> DeviceRecord:
        b = _unwrap("v2_devNN", cls.MAGIC, cls.LEN, buf)
        try:
            state = DeviceState(b[70])
        except ValueError as exc:
            raise StoreCorrupt(f"v2_devNN: state {b[70]} is not defined") from exc
        return cls(b[0:6], b[6:38], b[38:70], state, _be(b[71:73]), _be(b[73:75]))
