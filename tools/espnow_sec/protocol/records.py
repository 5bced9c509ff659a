"""Payloads of SECURITY (12) and SECURITY_STATUS (11) frames, and of GROUP (2) frames.

reference/upstream-espnow-security.md §2.2-2.5 and summary items 4-5:

* scan REQUEST: the single byte ``00`` (§2.3);
* INFO: ``01 | sec_ver u8 | client_mac[6]``, 8 bytes, sent in a SECURITY_STATUS frame (§2.3);
* HANDSHAKE / KEY / KEY_RESP: the inner record ``type u8 | size u8 | data[size]`` (§2.2);
  HANDSHAKE carries a protobuf ``SessionData``; KEY and KEY_RESP carry 32 CTR-encrypted bytes;
* REST: type byte ``05`` (anything after it is ignored, as upstream reads only the type);
* GROUP: ``op u8 (1 add, 0 delete) | group_id[6] | count u8 | macs[count][6]``, at most 32 MACs
  per frame (§2.4 step 1).

Each class is one declaration (``LAYOUT``) used for both directions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

from .errors import Malformed, Truncated
from .layout import U8, Const, Fixed, MacList, Message, Sized

MAX_GROUP_MACS = 32


class RecordType(IntEnum):
    """``espnow_sec_type_t``: the first byte of every security payload."""

    REQUEST = 0
    INFO = 1
    HANDSHAKE = 2
    KEY = 3
    KEY_RESP = 4
    REST = 5


class SecVer(IntEnum):
    """INFO ``sec_ver``: whether the responder already holds a key."""

    NONE = 0
    V1_0 = 1


@dataclass(frozen=True)
class ScanRequest(Message):
    LAYOUT: ClassVar = (Const(RecordType.REQUEST),)


@dataclass(frozen=True)
class Info(Message):
    """Scan reply. ``client_mac`` is the initiator that configured the responder, or zeros."""

    sec_ver: int = SecVer.NONE
    client_mac: bytes = bytes(6)
    LAYOUT: ClassVar = (Const(RecordType.INFO), U8("sec_ver"), Fixed("client_mac", 6))


@dataclass(frozen=True)
class Handshake(Message):
    """Inner record carrying one serialized ``SessionData``."""

    data: bytes
    LAYOUT: ClassVar = (Const(RecordType.HANDSHAKE), Sized("data"))


@dataclass(frozen=True)
class Key(Message):
    """Inner record carrying CTR(app_key), keystream [64, 96)."""

    data: bytes
    LAYOUT: ClassVar = (Const(RecordType.KEY), Sized("data"))


@dataclass(frozen=True)
class KeyResp(Message):
    """Inner record carrying CTR(echoed app key), keystream [96, 128)."""

    data: bytes
    LAYOUT: ClassVar = (Const(RecordType.KEY_RESP), Sized("data"))


@dataclass(frozen=True)
class Rest(Message):
    """Unauthenticated reset request. Decoded so it can be counted; our nodes ignore it."""

    LAYOUT: ClassVar = (Const(RecordType.REST),)

    @classmethod
    def decode(cls, buf: bytes) -> Rest:
        if not buf:
            raise Truncated("Rest: empty payload")
        if buf[0] != RecordType.REST:
            raise Malformed(f"Rest: type byte is {buf[0]}, expected {int(RecordType.REST)}")
        return cls()


SecurityMessage = ScanRequest | Info | Handshake | Key | KeyResp | Rest

_BY_TYPE: dict[int, type[Message]] = {
    RecordType.REQUEST: ScanRequest,
    RecordType.INFO: Info,
    RecordType.HANDSHAKE: Handshake,
    RecordType.KEY: Key,
    RecordType.KEY_RESP: KeyResp,
    RecordType.REST: Rest,
}


def decode_security_payload(payload: bytes) -> SecurityMessage:
    """Decode the payload of a SECURITY or SECURITY_STATUS frame by its first byte."""
    if not payload:
        raise Truncated("security payload is empty; it needs at least the type byte")
    cls = _BY_TYPE.get(payload[0])
    if cls is None:
        raise Malformed(f"unknown security record type {payload[0]} (known: 0-5)")
    return cls.decode(payload)  # type: ignore[return-value]


class GroupOp(IntEnum):
    DELETE = 0
    ADD = 1


@dataclass(frozen=True)
class Group(Message):
    """GROUP (type 2) payload: add or remove the listed MACs to/from ``group_id``."""

    op: int
    group_id: bytes
    macs: tuple[bytes, ...] = field(default_factory=tuple)
    LAYOUT: ClassVar = (U8("op"), Fixed("group_id", 6), MacList("macs", MAX_GROUP_MACS))

    @classmethod
    def decode(cls, buf: bytes) -> Group:
        msg = super().decode(buf)
        if msg.op not in (GroupOp.ADD, GroupOp.DELETE):
            raise Malformed(f"Group: op {msg.op} is neither 1 (add) nor 0 (delete)")
        return msg


def group_frames(
    op: GroupOp, group_id: bytes, macs: list[bytes] | tuple[bytes, ...]
) -> list[Group]:
    """Split a MAC list into GROUP payloads of at most 32 MACs each."""
    macs = tuple(macs)
    chunks = [macs[i : i + MAX_GROUP_MACS] for i in range(0, len(macs), MAX_GROUP_MACS)] or [()]
    return [Group(int(op), group_id, chunk) for chunk in chunks]
