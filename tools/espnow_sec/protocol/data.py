"""AES-128-CCM protected data frames (compat).

reference/upstream-espnow-security.md §2.6-2.7 and summary items 9-12:

* key: ``app_key[0:16]``, no KDF (``app_key[16:32]`` is unused on the wire);
* nonce: 8 random bytes per frame (CCM L = 7), tag: 4 bytes, no AAD;
* payload on air: ``ciphertext[n] | tag[4] | nonce[8]`` (the nonce *after* the tag);
* header: ``security`` bit set, ``size = (n + 12) & 0xff``;
* plaintext at most 218 bytes for ESP-NOW v1 frames (250 - 20 - 12), 1438 for v2 frames.

Nothing but the payload is authenticated: header, addresses and magic can be changed by anyone
(a property of the compat wire, documented in the threat model, not a bug of this module).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .. import crypto
from .errors import AuthFailed, Malformed, Truncated
from .frame import FRAME_MAX_V1, FRAME_MAX_V2, HEADER_LEN, Frame, Header

CCM_KEY_LEN = 16
NONCE_LEN = 8
TAG_LEN = 4
OVERHEAD = TAG_LEN + NONCE_LEN
MAX_PLAINTEXT_V1 = FRAME_MAX_V1 - HEADER_LEN - OVERHEAD  # 218
MAX_PLAINTEXT_V2 = FRAME_MAX_V2 - HEADER_LEN - OVERHEAD  # 1438


def data_key(key: bytes) -> bytes:
    """The AES-128 key: the first 16 bytes of a 32-byte app key, or a 16-byte key as is."""
    if len(key) == 32:
        return bytes(key[:CCM_KEY_LEN])
    if len(key) == CCM_KEY_LEN:
        return bytes(key)
    raise ValueError(
        f"data key must be a 32-byte app key or a 16-byte CCM key, got {len(key)} bytes"
    )


@dataclass(frozen=True)
class ProtectedPayload:
    """The three parts of an encrypted payload, in wire order."""

    ciphertext: bytes
    tag: bytes
    nonce: bytes

    def encode(self) -> bytes:
        return self.ciphertext + self.tag + self.nonce

    @classmethod
    def decode(cls, payload: bytes) -> ProtectedPayload:
        if len(payload) < OVERHEAD:
            raise Truncated(
                f"encrypted payload is {len(payload)} bytes; tag + nonce alone are {OVERHEAD}"
            )
        n = len(payload) - OVERHEAD
        return cls(
            bytes(payload[:n]), bytes(payload[n : n + TAG_LEN]), bytes(payload[n + TAG_LEN :])
        )


def protect(
    key: bytes,
    nonce: bytes,
    plaintext: bytes,
    header: Header,
    max_plaintext: int = MAX_PLAINTEXT_V1,
) -> Frame:
    """Encrypt ``plaintext`` into a data frame. ``header.size`` and ``security`` are set here."""
    if len(nonce) != NONCE_LEN:
        raise ValueError(f"nonce must be {NONCE_LEN} bytes, got {len(nonce)}")
    if len(plaintext) > max_plaintext:
        raise ValueError(
            f"plaintext is {len(plaintext)} bytes; at most {max_plaintext} fit one frame"
        )
    ct, tag = crypto.ccm_encrypt(data_key(key), nonce, plaintext, None, TAG_LEN)
    payload = ProtectedPayload(ct, tag, bytes(nonce)).encode()
    return Frame.build(dataclasses.replace(header, security=True), payload)


def unprotect(key: bytes, frame: Frame) -> tuple[bytes, ProtectedPayload]:
    """Verify and decrypt a data frame; returns ``(plaintext, parts)``.

    Raises :class:`Malformed` if the security bit is clear, :class:`Truncated` if the payload is
    shorter than tag + nonce, :class:`AuthFailed` if the tag does not verify.
    """
    if not frame.header.security:
        raise Malformed("frame is not encrypted (security bit clear)")
    parts = ProtectedPayload.decode(frame.payload)
    try:
        pt = crypto.ccm_decrypt(data_key(key), parts.nonce, parts.ciphertext, parts.tag, None)
    except crypto.AuthenticationError as exc:
        raise AuthFailed(str(exc)) from exc
    return pt, parts
