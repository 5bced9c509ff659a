"""Framing of protocol v2: classification, the two headers, nonce, AAD (PROTOCOL.md §2).

Pure functions over bytes. :func:`classify` is the first step of every receive (§2.1),
:func:`check_frame` steps 2-3 of the receive pipeline (§2.6), :func:`seal` / :func:`open_`
the CCM protection of secured frames (§2.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ... import crypto
from .constants import (
    BROADCAST_MAC,
    CLEAR_HEADER_LEN,
    CTRL_LENGTHS,
    FIXED_LEN,
    FRAME_MAX_V1,
    MAC_LEN,
    MAGIC,
    NONCE_LEN,
    PAIRWISE_TYPES,
    SECURED_HEADER_LEN,
    SECURED_TYPES,
    TAG_GROUP,
    VERSION,
    FrameType,
)
from .errors import AuthFailed, Foreign, Malformed


class FrameClass(Enum):
    """Outcome of §2.1 for one node mode."""

    V2 = "v2"
    COMPAT = "compat"
    MALFORMED = "malformed"
    FOREIGN = "foreign"


def classify(body: bytes, mode: str) -> tuple[FrameClass, str]:
    """§2.1 table for a node configured ``mode`` (``"v2"`` or ``"compat"``).

    Returns the class and the debug log text (empty when none). The ``src == own MAC`` row
    is the caller's (it needs addresses).
    """
    if mode not in ("v2", "compat"):
        raise ValueError("mode must be 'v2' or 'compat'")
    v2 = mode == "v2"
    if not body:
        return FrameClass.MALFORMED, ""
    if body[0] == MAGIC and len(body) >= 2 and body[1] == VERSION:
        return (FrameClass.V2, "") if v2 else (FrameClass.FOREIGN, "v2 frame ignored")
    if body[0] == MAGIC:
        if not v2:
            return FrameClass.FOREIGN, ""
        rev = f"{body[1]}" if len(body) >= 2 else "(none)"
        return FrameClass.FOREIGN, f"unknown v2 revision {rev}"
    if (body[0] >> 4) & 3 == 2:
        return (FrameClass.FOREIGN, "compat frame ignored") if v2 else (FrameClass.COMPAT, "")
    return FrameClass.FOREIGN, ""


# -- headers ----------------------------------------------------------------------------------
def clear_header(type_: FrameType) -> bytes:
    return bytes([MAGIC, VERSION, type_, 0])


def secured_header(type_: FrameType, epoch: int, counter: int) -> bytes:
    return bytes([MAGIC, VERSION, type_, 0]) + epoch.to_bytes(2, "big") + counter.to_bytes(6, "big")


@dataclass(frozen=True)
class SecuredHeader:
    type: FrameType
    epoch: int
    counter: int

    @classmethod
    def decode(cls, frame: bytes) -> SecuredHeader:
        if len(frame) < SECURED_HEADER_LEN:
            raise Malformed(f"secured frame is {len(frame)} bytes, header alone is 12")
        return cls(
            FrameType(frame[2]),
            int.from_bytes(frame[4:6], "big"),
            int.from_bytes(frame[6:12], "big"),
        )


def tag_len(type_: FrameType) -> int:
    return 16 if type_ in PAIRWISE_TYPES else TAG_GROUP


def length_ok(type_: FrameType, length: int, frame_max: int = FRAME_MAX_V1) -> bool:
    """§2.3 "total length" column; DATA / DATA_PLAIN up to the receiver's frame limit."""
    if type_ in FIXED_LEN:
        return length == FIXED_LEN[type_]
    if type_ is FrameType.CTRL:
        return length in CTRL_LENGTHS
    if type_ is FrameType.DATA:
        return SECURED_HEADER_LEN + 1 + TAG_GROUP <= length <= frame_max
    if type_ is FrameType.DATA_PLAIN:
        return CLEAR_HEADER_LEN + 1 <= length <= frame_max - SECURED_HEADER_LEN - TAG_GROUP + 4
    return False


def check_frame(
    body: bytes, src: bytes, dst: bytes, own_mac: bytes, frame_max: int = FRAME_MAX_V1
) -> FrameType:
    """§2.6 steps 2-3 on a frame already classified v2; returns its type or raises Malformed."""
    if len(src) != MAC_LEN or len(dst) != MAC_LEN:
        raise ValueError("src and dst must be 6-byte MACs")
    if len(body) < CLEAR_HEADER_LEN:
        raise Malformed(f"v2 frame of {len(body)} bytes is shorter than a header (4)")
    try:
        type_ = FrameType(body[2])
    except ValueError as exc:
        raise Malformed(f"unknown v2 frame type 0x{body[2]:02x}") from exc
    if body[3] != 0:
        raise Malformed(f"reserved flags 0x{body[3]:02x} set")
    if not length_ok(type_, len(body), frame_max):
        raise Malformed(f"{type_.name} of {len(body)} bytes: wrong length (§2.3)")
    broadcast = dst == BROADCAST_MAC
    if type_ is FrameType.SCAN_REQ:
        if not broadcast:
            raise Malformed("SCAN_REQ must be broadcast")
    elif type_ not in (FrameType.DATA, FrameType.DATA_PLAIN, FrameType.SYNC):
        if dst != own_mac:
            raise Malformed(f"{type_.name} must be unicast to this node")
    elif not broadcast and dst != own_mac:
        raise Malformed(f"{type_.name} addressed to another node")
    if type_ in SECURED_TYPES:
        epoch = int.from_bytes(body[4:6], "big")
        if type_ in PAIRWISE_TYPES and epoch != 0:
            raise Malformed(f"{type_.name} must carry key_epoch 0, has {epoch}")
        if type_ not in PAIRWISE_TYPES and epoch == 0:
            raise Malformed(f"{type_.name} must carry a key_epoch 1..65535, has 0")
    return type_


# -- nonce, AAD, sealing (§2.5) ---------------------------------------------------------------
def nonce(src: bytes, header: bytes) -> bytes:
    """``src || counter || type`` (13 bytes)."""
    out = src + header[6:12] + header[2:3]
    assert len(out) == NONCE_LEN
    return out


def aad(header: bytes, src: bytes, dst: bytes) -> bytes:
    """``hdr[0..12) || dst || src`` (24 bytes)."""
    return header[:SECURED_HEADER_LEN] + dst + src


def seal(
    key: bytes,
    type_: FrameType,
    epoch: int,
    counter: int,
    src: bytes,
    dst: bytes,
    plaintext: bytes,
) -> bytes:
    """Build a whole secured frame: header, CCM ciphertext and tag."""
    hdr = secured_header(type_, epoch, counter)
    return hdr + crypto.ccm13_encrypt(
        key, nonce(src, hdr), plaintext, aad(hdr, src, dst), tag_len(type_)
    )


def open_(key: bytes, frame: bytes, src: bytes, dst: bytes) -> bytes:
    """Verify and decrypt a secured frame (already length-checked); raises AuthFailed."""
    hdr = frame[:SECURED_HEADER_LEN]
    type_ = FrameType(frame[2])
    try:
        return crypto.ccm13_decrypt(
            key, nonce(src, hdr), frame[SECURED_HEADER_LEN:], aad(hdr, src, dst), tag_len(type_)
        )
    except crypto.AuthenticationError as exc:
        raise AuthFailed(f"{type_.name} tag does not verify") from exc


def require_v2(body: bytes) -> None:
    cls, why = classify(body, "v2")
    if cls is FrameClass.MALFORMED:
        raise Malformed("empty frame")
    if cls is not FrameClass.V2:
        raise Foreign(why or "not a v2 frame")
