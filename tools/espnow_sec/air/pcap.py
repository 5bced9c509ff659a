"""A pcap of everything on the air: one 802.11 vendor-specific action frame per TX.

Linktype 105 (LINKTYPE_IEEE802_11, no radiotap, no FCS), laid out the way ESP-NOW frames are on
air, so Wireshark/tshark dissect them (the ESP-NOW vendor element carries Espressif's OUI).
``action_frame`` is pure; ``PcapWriter`` only adds the file.
"""

from __future__ import annotations

import struct
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from espnow_sec.air.wire import BROADCAST, ESP_NOW_MAX_DATA_LEN, MAC_LEN

LINKTYPE_IEEE802_11 = 105
PCAP_MAGIC = 0xA1B2C3D4
SNAPLEN = 65535

ESPRESSIF_OUI = b"\x18\xfe\x34"
_FC_ACTION = b"\xd0\x00"  # type 0 (management), subtype 13 (action), no flags
_CATEGORY_VENDOR_SPECIFIC = 127
_ELEMENT_VENDOR_SPECIFIC = 221
_ESPNOW_ELEMENT_TYPE = 4
_ESPNOW_VERSION = 1

_GLOBAL_HEADER = struct.Struct("<IHHiIII")
_RECORD_HEADER = struct.Struct("<IIII")


def action_frame(src: bytes, dst: bytes, data: bytes, seq: int) -> bytes:
    """The 802.11 frame ESP-NOW sends for ``data`` (1..250 bytes), without FCS."""
    if len(src) != MAC_LEN or len(dst) != MAC_LEN:
        raise ValueError("src and dst must be 6-byte MAC addresses")
    if not 0 < len(data) <= ESP_NOW_MAX_DATA_LEN:
        raise ValueError(f"ESP-NOW body must be 1..{ESP_NOW_MAX_DATA_LEN} bytes, got {len(data)}")
    header = (
        _FC_ACTION
        + b"\x00\x00"  # duration
        + dst  # addr1: receiver
        + src  # addr2: transmitter
        + BROADCAST  # addr3: BSSID, all-ones for ESP-NOW
        + struct.pack("<H", (seq & 0x0FFF) << 4)  # sequence control, fragment 0
    )
    element = (
        bytes([_ELEMENT_VENDOR_SPECIFIC, 5 + len(data)])
        + ESPRESSIF_OUI
        + bytes([_ESPNOW_ELEMENT_TYPE, _ESPNOW_VERSION])
        + data
    )
    action = (
        bytes([_CATEGORY_VENDOR_SPECIFIC])
        + ESPRESSIF_OUI
        + struct.pack("<I", seq & 0xFFFFFFFF)  # 4 "random" bytes; deterministic here
    )
    return header + action + element


def global_header() -> bytes:
    return _GLOBAL_HEADER.pack(PCAP_MAGIC, 2, 4, 0, 0, SNAPLEN, LINKTYPE_IEEE802_11)


def record(timestamp: float, frame: bytes) -> bytes:
    sec = int(timestamp)
    usec = int(round((timestamp - sec) * 1_000_000))
    if usec >= 1_000_000:
        sec, usec = sec + 1, usec - 1_000_000
    return _RECORD_HEADER.pack(sec, usec, len(frame), len(frame)) + frame


class PcapWriter:
    """Appends frames to a new pcap file; flushes each so a live tshark sees them."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._file.write(global_header())
        self._file.flush()
        self._seq = 0
        self.frames = 0

    def write(self, timestamp: float, src: bytes, dst: bytes, data: bytes) -> None:
        self._file.write(record(timestamp, action_frame(src, dst, data, self._seq)))
        self._file.flush()
        self._seq += 1
        self.frames += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
