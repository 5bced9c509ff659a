"""DATA, DATA_PLAIN and SYNC (PROTOCOL.md §7.1, §10, §8.4)."""

from __future__ import annotations

from dataclasses import dataclass

from .constants import FrameType
from .errors import TooLong
from .framing import clear_header, seal

SYNC_PLAINTEXT_LEN = 16


def check_payload(payload: bytes, max_payload: int) -> None:
    """§7.4: 1..max bytes, else ``too_long`` (nothing sent, no counter used)."""
    if not 1 <= len(payload) <= max_payload:
        raise TooLong(
            f"app payload is {len(payload)} bytes; v2 sends 1..{max_payload} "
            f"(enable long frames for up to 1450)"
        )


def build_data(
    k_grp: bytes, epoch: int, counter: int, src: bytes, dst: bytes, payload: bytes
) -> bytes:
    return seal(k_grp, FrameType.DATA, epoch, counter, src, dst, payload)


def build_plain(payload: bytes) -> bytes:
    return clear_header(FrameType.DATA_PLAIN) + payload


@dataclass(frozen=True)
class Sync:
    challenge: int
    echo: int

    def encode(self) -> bytes:
        return self.challenge.to_bytes(8, "big") + self.echo.to_bytes(8, "big")

    @classmethod
    def decode(cls, pt: bytes) -> Sync:
        return cls(int.from_bytes(pt[:8], "big"), int.from_bytes(pt[8:16], "big"))


def build_sync(k_grp: bytes, epoch: int, counter: int, src: bytes, dst: bytes, sync: Sync) -> bytes:
    return seal(k_grp, FrameType.SYNC, epoch, counter, src, dst, sync.encode())
