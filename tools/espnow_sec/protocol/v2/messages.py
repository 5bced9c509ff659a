"""Clear messages of protocol v2: discovery (§3) and the handshake (§4.1).

Each message is a frozen dataclass with ``encode()`` (the whole frame, clear header included)
and ``decode(frame)`` for a frame that passed :func:`~.framing.check_frame` (so the length and
type are right); value checks that the spec puts in the handler (``sid ≠ 0``, ``suite``) are
in the machines, where they decide the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import FrameType, HsErrCode
from .errors import Malformed
from .framing import clear_header


def _u(b: bytes) -> int:
    return int.from_bytes(b, "big")


@dataclass(frozen=True)
class ScanReq:
    scan_id: int

    def encode(self) -> bytes:
        return clear_header(FrameType.SCAN_REQ) + self.scan_id.to_bytes(4, "big")

    @classmethod
    def decode(cls, f: bytes) -> ScanReq:
        return cls(_u(f[4:8]))


@dataclass(frozen=True)
class ScanResp:
    scan_id: int
    state: int
    epoch: int
    caps: int
    pair_id: bytes

    def encode(self) -> bytes:
        return (
            clear_header(FrameType.SCAN_RESP)
            + self.scan_id.to_bytes(4, "big")
            + bytes([self.state])
            + self.epoch.to_bytes(2, "big")
            + bytes([self.caps])
            + self.pair_id
        )

    @classmethod
    def decode(cls, f: bytes) -> ScanResp:
        return cls(_u(f[4:8]), f[8], _u(f[9:11]), f[11], bytes(f[12:16]))


@dataclass(frozen=True)
class Hs1:
    sid: int
    suite: int
    e_i: bytes

    def encode(self) -> bytes:
        sid = self.sid.to_bytes(4, "big")
        return clear_header(FrameType.HS1) + sid + bytes([self.suite]) + self.e_i

    @classmethod
    def decode(cls, f: bytes) -> Hs1:
        return cls(_u(f[4:8]), f[8], bytes(f[9:41]))


@dataclass(frozen=True)
class Hs2:
    sid: int
    e_r: bytes

    def encode(self) -> bytes:
        return clear_header(FrameType.HS2) + self.sid.to_bytes(4, "big") + self.e_r

    @classmethod
    def decode(cls, f: bytes) -> Hs2:
        return cls(_u(f[4:8]), bytes(f[8:40]))


@dataclass(frozen=True)
class Hs3:
    sid: int
    conf: bytes

    TYPE = FrameType.HS3

    def encode(self) -> bytes:
        return clear_header(self.TYPE) + self.sid.to_bytes(4, "big") + self.conf

    @classmethod
    def decode(cls, f: bytes) -> Hs3:
        return cls(_u(f[4:8]), bytes(f[8:40]))


@dataclass(frozen=True)
class Hs4(Hs3):
    TYPE = FrameType.HS4

    @classmethod
    def decode(cls, f: bytes) -> Hs4:
        return cls(_u(f[4:8]), bytes(f[8:40]))


@dataclass(frozen=True)
class HsErr:
    sid: int
    code: HsErrCode
    retry_after_ms: int = 0

    def encode(self) -> bytes:
        return (
            clear_header(FrameType.HS_ERR)
            + self.sid.to_bytes(4, "big")
            + bytes([self.code])
            + min(self.retry_after_ms, 0xFFFF).to_bytes(2, "big")
        )

    @classmethod
    def decode(cls, f: bytes) -> HsErr:
        try:
            code = HsErrCode(f[8])
        except ValueError as exc:
            raise Malformed(f"HS_ERR code {f[8]} is not defined") from exc
        return cls(_u(f[4:8]), code, _u(f[9:11]))
