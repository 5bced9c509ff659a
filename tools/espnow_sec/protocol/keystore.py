"""The key-store record ``app_key`` (docs/keystore.md).

47 bytes, stored as one NVS blob (ESP32) or one file record (host):

====  ====  ==========================================================
off   len   field
====  ====  ==========================================================
0     4     magic ``"ESK1"``
4     1     version, 1
5     32    app key
37    6     provisioner MAC (the initiator that delivered it; zeros if preloaded)
43    4     CRC-32 (zlib / IEEE 802.3, ``esp_rom_crc32_le(0, ...)``) of bytes 0-42,
            little-endian
====  ====  ==========================================================
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from .errors import StoreCorrupt

RECORD_NAME = "app_key"
MAGIC = b"ESK1"
VERSION = 1
RECORD_LEN = 4 + 1 + 32 + 6 + 4


@dataclass(frozen=True)
class KeyRecord:
    app_key: bytes
    provisioner_mac: bytes = bytes(6)

    def __post_init__(self) -> None:
        if len(self.app_key) != 32:
            raise ValueError(f"app key must be 32 bytes, got {len(self.app_key)}")
        if len(self.provisioner_mac) != 6:
            raise ValueError(f"provisioner MAC must be 6 bytes, got {len(self.provisioner_mac)}")

    def encode(self) -> bytes:
        body = MAGIC + bytes([VERSION]) + self.app_key + self.provisioner_mac
        return body + zlib.crc32(body).to_bytes(4, "little")

    @classmethod
    def decode(cls, buf: bytes) -> KeyRecord:
        if len(buf) != RECORD_LEN:
            raise StoreCorrupt(f"key record is {len(buf)} bytes, expected {RECORD_LEN}")
        if buf[:4] != MAGIC:
            raise StoreCorrupt(f"key record magic is {buf[:4]!r}, expected {MAGIC!r}")
        if buf[4] != VERSION:
            raise StoreCorrupt(f"key record version is {buf[4]}, this code reads {VERSION}")
        crc = int.from_bytes(buf[43:47], "little")
        if zlib.crc32(buf[:43]) != crc:
            raise StoreCorrupt("key record CRC-32 mismatch (damaged or half-written record)")
        return cls(bytes(buf[5:37]), bytes(buf[37:43]))
