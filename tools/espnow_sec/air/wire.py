"""Codec of the node <-> air socket protocol (docs/air.md, "Socket protocol").

One SOCK_SEQPACKET packet is one message: a one-byte ``kind``, then a little-endian body. Every
message type is declared once, as a frozen dataclass that both encodes and decodes itself.
Pure: no sockets here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

MAC_LEN = 6
BROADCAST = b"\xff" * MAC_LEN
ESP_NOW_MAX_DATA_LEN = 250  # ESP-NOW v1 frame body limit
ESP_NOW_SEND_SUCCESS = 0
ESP_NOW_SEND_FAIL = 1
WELCOME_OK = 0
WELCOME_MAC_IN_USE = 1


class ProtocolError(ValueError):
    """A packet that does not follow docs/air.md."""


class Kind(IntEnum):
    HELLO = 0x01
    TX = 0x02
    SET_CHANNEL = 0x03
    WELCOME = 0x81
    RX = 0x82
    TX_STATUS = 0x83


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def parse_mac(text: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` (or ``-`` separated) to 6 bytes; ValueError says what is wrong."""
    parts = text.strip().replace("-", ":").split(":")
    if len(parts) != MAC_LEN or not all(len(p) == 2 for p in parts):
        raise ValueError(f"bad MAC address {text!r}: expected six hex pairs like 02:00:00:00:00:01")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"bad MAC address {text!r}: not hexadecimal") from None


@dataclass(frozen=True)
class _Message:
    """Fixed header ``FMT`` (after the kind byte), optionally followed by ``data`` bytes."""

    KIND: ClassVar[Kind]
    FMT: ClassVar[struct.Struct]
    HAS_DATA: ClassVar[bool] = False

    def _fields(self) -> tuple[object, ...]:
        raise NotImplementedError

    def encode(self) -> bytes:
        return bytes([self.KIND]) + self.FMT.pack(*self._fields()) + self._tail()

    def _tail(self) -> bytes:
        return b""

    @classmethod
    def _check_len(cls, body: bytes) -> None:
        size = cls.FMT.size
        if len(body) < size or (not cls.HAS_DATA and len(body) != size):
            want = f"at least {size}" if cls.HAS_DATA else str(size)
            raise ProtocolError(
                f"{cls.KIND.name} body is {len(body)} bytes, expected {want} (docs/air.md)"
            )


@dataclass(frozen=True)
class Hello(_Message):
    KIND: ClassVar[Kind] = Kind.HELLO
    FMT: ClassVar[struct.Struct] = struct.Struct("<6sB")
    mac: bytes
    channel: int

    def _fields(self) -> tuple[object, ...]:
        return (self.mac, self.channel)

    @classmethod
    def decode(cls, body: bytes) -> Hello:
        cls._check_len(body)
        mac, channel = cls.FMT.unpack(body)
        return cls(mac, channel)


@dataclass(frozen=True)
class Tx(_Message):
    KIND: ClassVar[Kind] = Kind.TX
    FMT: ClassVar[struct.Struct] = struct.Struct("<I6s")
    HAS_DATA: ClassVar[bool] = True
    seq: int
    dst: bytes
    data: bytes

    def _fields(self) -> tuple[object, ...]:
        return (self.seq, self.dst)

    def _tail(self) -> bytes:
        return self.data

    @classmethod
    def decode(cls, body: bytes) -> Tx:
        cls._check_len(body)
        seq, dst = cls.FMT.unpack_from(body)
        return cls(seq, dst, bytes(body[cls.FMT.size :]))


@dataclass(frozen=True)
class SetChannel(_Message):
    KIND: ClassVar[Kind] = Kind.SET_CHANNEL
    FMT: ClassVar[struct.Struct] = struct.Struct("<B")
    channel: int

    def _fields(self) -> tuple[object, ...]:
        return (self.channel,)

    @classmethod
    def decode(cls, body: bytes) -> SetChannel:
        cls._check_len(body)
        return cls(body[0])


@dataclass(frozen=True)
class Welcome(_Message):
    KIND: ClassVar[Kind] = Kind.WELCOME
    FMT: ClassVar[struct.Struct] = struct.Struct("<B")
    status: int

    def _fields(self) -> tuple[object, ...]:
        return (self.status,)

    @classmethod
    def decode(cls, body: bytes) -> Welcome:
        cls._check_len(body)
        return cls(body[0])


@dataclass(frozen=True)
class Rx(_Message):
    KIND: ClassVar[Kind] = Kind.RX
    FMT: ClassVar[struct.Struct] = struct.Struct("<6s6sBb")
    HAS_DATA: ClassVar[bool] = True
    src: bytes
    dst: bytes
    channel: int
    rssi: int
    data: bytes

    def _fields(self) -> tuple[object, ...]:
        return (self.src, self.dst, self.channel, self.rssi)

    def _tail(self) -> bytes:
        return self.data

    @classmethod
    def decode(cls, body: bytes) -> Rx:
        cls._check_len(body)
        src, dst, channel, rssi = cls.FMT.unpack_from(body)
        return cls(src, dst, channel, rssi, bytes(body[cls.FMT.size :]))


@dataclass(frozen=True)
class TxStatus(_Message):
    KIND: ClassVar[Kind] = Kind.TX_STATUS
    FMT: ClassVar[struct.Struct] = struct.Struct("<I6sB")
    seq: int
    dst: bytes
    status: int

    def _fields(self) -> tuple[object, ...]:
        return (self.seq, self.dst, self.status)

    @classmethod
    def decode(cls, body: bytes) -> TxStatus:
        cls._check_len(body)
        seq, dst, status = cls.FMT.unpack(body)
        return cls(seq, dst, status)


NodeMessage = Hello | Tx | SetChannel
AirMessage = Welcome | Rx | TxStatus

_NODE_DECODERS = {Kind.HELLO: Hello.decode, Kind.TX: Tx.decode, Kind.SET_CHANNEL: SetChannel.decode}
_AIR_DECODERS = {Kind.WELCOME: Welcome.decode, Kind.RX: Rx.decode, Kind.TX_STATUS: TxStatus.decode}


def decode_node_message(packet: bytes) -> NodeMessage:
    """A packet a node sent to the air."""
    if not packet:
        raise ProtocolError("empty packet: every message starts with a kind byte")
    decoder = _NODE_DECODERS.get(packet[0])  # type: ignore[call-overload]
    if decoder is None:
        raise ProtocolError(f"unknown node->air message kind 0x{packet[0]:02x}")
    return decoder(packet[1:])


def decode_air_message(packet: bytes) -> AirMessage:
    """A packet the air sent to a node (used by test nodes and tools)."""
    if not packet:
        raise ProtocolError("empty packet: every message starts with a kind byte")
    decoder = _AIR_DECODERS.get(packet[0])  # type: ignore[call-overload]
    if decoder is None:
        raise ProtocolError(f"unknown air->node message kind 0x{packet[0]:02x}")
    return decoder(packet[1:])


# --- optional pretty-printing of the 20-byte esp-now 2.x header (upstream reference §2.1) ---

_ESPNOW_TYPES = (
    "ACK", "FORWARD", "GROUP", "PROV", "CONTROL_BIND", "CONTROL_DATA", "OTA_STATUS", "OTA_DATA",
    "DEBUG_LOG", "DEBUG_COMMAND", "DATA", "SECURITY_STATUS", "SECURITY", "SECURITY_DATA",
    "TIMESYNC", "RESERVED",
)  # fmt: skip
ESPNOW_HEADER_LEN = 20


def describe_frame(data: bytes) -> str:
    """One-line summary of an esp-now 2.x frame body, for debug logs; never raises."""
    if len(data) < ESPNOW_HEADER_LEN:
        return f"{len(data)} bytes (shorter than the 20-byte esp-now header)"
    ftype = data[0] & 0x0F
    version = (data[0] >> 4) & 0x03
    security = bool(data[4] & 0x40)
    broadcast = bool(data[5] & 0x08)
    magic = data[2] | data[3] << 8
    return (
        f"espnow {_ESPNOW_TYPES[ftype]} v{version} size={data[1]} magic=0x{magic:04x}"
        f" ch={data[4] & 0x0F} sec={int(security)} bcast={int(broadcast)}"
        f" dest={format_mac(data[8:14])} src={format_mac(data[14:20])}"
        f" payload={len(data) - ESPNOW_HEADER_LEN}B"
    )
