"""Pairwise control: CTRL and CTRL_ACK plaintexts (PROTOCOL.md §5.1-5.2).

The frames themselves are secured frames (``key_epoch`` 0, CCM16 under ``k_ctl``) built with
:func:`~.framing.seal`. :func:`parse_ctrl` raises :class:`BadOp` for a plaintext that
authenticated but whose body is not allowed; the responder answers it with status BAD_OP.
"""

from __future__ import annotations

from dataclasses import dataclass

from .constants import (
    EPOCH_MAX,
    GRACE_MAX_S,
    KEY_FLAG_ACTIVATE,
    AckStatus,
    CtrlOp,
)
from .errors import Malformed

CTRL_PLAINTEXT_LEN = {CtrlOp.KEY: 38, CtrlOp.UNPROVISION: 1, CtrlOp.RESET: 3}
ACK_PLAINTEXT_LEN = 28
REPAIR_WINDOW_MAX_S = 3600


class BadOp(Malformed):
    """An authentic CTRL whose op or body is not allowed (answered with status BAD_OP)."""


@dataclass(frozen=True)
class KeyOp:
    activate: bool
    epoch: int
    grace_s: int
    group_secret: bytes
    op: CtrlOp = CtrlOp.KEY

    def encode(self) -> bytes:
        flags = KEY_FLAG_ACTIVATE if self.activate else 0
        return (
            bytes([CtrlOp.KEY, flags])
            + self.epoch.to_bytes(2, "big")
            + self.grace_s.to_bytes(2, "big")
            + self.group_secret
        )


@dataclass(frozen=True)
class UnprovisionOp:
    op: CtrlOp = CtrlOp.UNPROVISION

    def encode(self) -> bytes:
        return bytes([CtrlOp.UNPROVISION])


@dataclass(frozen=True)
class ResetOp:
    window_s: int
    op: CtrlOp = CtrlOp.RESET

    def encode(self) -> bytes:
        return bytes([CtrlOp.RESET]) + self.window_s.to_bytes(2, "big")


CtrlBody = KeyOp | UnprovisionOp | ResetOp


def parse_ctrl(pt: bytes) -> CtrlBody:
    """Decode and validate a CTRL plaintext (§5.1, the BAD_OP row of §5.3)."""
    if not pt:
        raise BadOp("empty CTRL plaintext")
    op = pt[0]
    try:
        cop = CtrlOp(op)
    except ValueError as exc:
        raise BadOp(f"unknown CTRL op 0x{op:02x}") from exc
    if len(pt) != CTRL_PLAINTEXT_LEN[cop]:
        want = CTRL_PLAINTEXT_LEN[cop]
        raise BadOp(f"CTRL {cop.name} plaintext is {len(pt)} bytes, expected {want}")
    if cop is CtrlOp.KEY:
        flags = pt[1]
        epoch = int.from_bytes(pt[2:4], "big")
        grace = int.from_bytes(pt[4:6], "big")
        if flags & ~KEY_FLAG_ACTIVATE:
            raise BadOp(f"KEY key_flags 0x{flags:02x} has reserved bits set")
        if not 1 <= epoch <= EPOCH_MAX:
            raise BadOp("KEY epoch 0 is not allowed")
        if grace > GRACE_MAX_S:
            raise BadOp(f"KEY grace_s {grace} > {GRACE_MAX_S}")
        return KeyOp(bool(flags & KEY_FLAG_ACTIVATE), epoch, grace, bytes(pt[6:38]))
    if cop is CtrlOp.UNPROVISION:
        return UnprovisionOp()
    window = int.from_bytes(pt[1:3], "big")
    if not 1 <= window <= REPAIR_WINDOW_MAX_S:
        raise BadOp(f"RESET window_s {window} outside 1..{REPAIR_WINDOW_MAX_S}")
    return ResetOp(window)


@dataclass(frozen=True)
class CtrlAck:
    req_counter: int
    op: int
    status: AckStatus
    cur_epoch: int
    staged_epoch: int
    key_check: bytes = bytes(16)

    def encode(self) -> bytes:
        return (
            self.req_counter.to_bytes(6, "big")
            + bytes([self.op, self.status])
            + self.cur_epoch.to_bytes(2, "big")
            + self.staged_epoch.to_bytes(2, "big")
            + self.key_check
        )

    @classmethod
    def decode(cls, pt: bytes) -> CtrlAck:
        if len(pt) != ACK_PLAINTEXT_LEN:
            raise Malformed(f"CTRL_ACK plaintext is {len(pt)} bytes, expected 28")
        try:
            status = AckStatus(pt[7])
        except ValueError as exc:
            raise Malformed(f"CTRL_ACK status {pt[7]} is not defined") from exc
        return cls(
            int.from_bytes(pt[0:6], "big"),
            pt[6],
            status,
            int.from_bytes(pt[8:10], "big"),
            int.from_bytes(pt[10:12], "big"),
            bytes(pt[12:28]),
        )
