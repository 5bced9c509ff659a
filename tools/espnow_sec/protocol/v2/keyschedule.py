"""The v2 key schedule (PROTOCOL.md §4.3): transcript, HKDF outputs, confirmations.

:class:`HandshakeKeys` holds every intermediate of one handshake, so the vectors can show them
and both roles compute them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from ... import crypto
from .constants import (
    L_CHECK,
    L_CONF_I,
    L_CONF_R,
    L_CTL,
    L_DATA,
    L_DEV,
    L_GROUP,
    L_PAIR,
    L_PAIR_ID,
    L_POP,
    L_TH,
    POP_MAX_LEN,
)
from .errors import BadKey, Malformed


def pop_hash(pop: bytes) -> bytes:
    """``SHA256(L_POP || pop)``; ``pop`` 0..64 bytes."""
    if len(pop) > POP_MAX_LEN:
        raise Malformed(f"PoP is {len(pop)} bytes, v2 allows at most {POP_MAX_LEN}")
    return crypto.sha256(L_POP + pop)


def dh(private: bytes, peer_public: bytes) -> bytes:
    """X25519; an all-zero result (low-order peer key) raises BadKey (§4.2)."""
    try:
        return crypto.x25519_shared(private, peer_public)
    except crypto.LowOrderPoint as exc:
        raise BadKey("peer X25519 key is a low-order point (all-zero shared secret)") from exc


def th2(mac_i: bytes, mac_r: bytes, hs1: bytes, hs2: bytes) -> bytes:
    return crypto.sha256(L_TH + mac_i + mac_r + hs1 + hs2)


def th3(th2_: bytes, hs3: bytes) -> bytes:
    return crypto.sha256(th2_ + hs3)


def k_ctl(k_dev: bytes, mac_i: bytes, mac_r: bytes) -> bytes:
    return crypto.hkdf_sha256(L_PAIR, k_dev, L_CTL + mac_i + mac_r, 16)


def k_grp(epoch: int, group_secret: bytes) -> bytes:
    return crypto.hkdf_sha256(L_GROUP, group_secret, L_DATA + epoch.to_bytes(2, "big"), 16)


def key_check(k_dev: bytes, epoch: int, group_secret: bytes) -> bytes:
    return crypto.hmac_sha256(k_dev, L_CHECK + epoch.to_bytes(2, "big") + group_secret)[:16]


def pair_id(k_dev: bytes) -> bytes:
    return crypto.hmac_sha256(k_dev, L_PAIR_ID)[:4]


@dataclass(frozen=True)
class HandshakeKeys:
    """Everything derived after HS2 (§4.3). ``conf_I`` is computable by both sides."""

    dh: bytes
    pop_hash: bytes
    th2: bytes
    ikm: bytes
    k_conf_i: bytes
    k_conf_r: bytes
    k_dev: bytes
    conf_i: bytes

    @classmethod
    def derive(
        cls, dh_: bytes, pop: bytes, mac_i: bytes, mac_r: bytes, hs1: bytes, hs2: bytes
    ) -> HandshakeKeys:
        ph = pop_hash(pop)
        t2 = th2(mac_i, mac_r, hs1, hs2)
        ikm = dh_ + ph
        k_ci = crypto.hkdf_sha256(t2, ikm, L_CONF_I, 32)
        k_cr = crypto.hkdf_sha256(t2, ikm, L_CONF_R, 32)
        k_dev = crypto.hkdf_sha256(t2, ikm, L_DEV, 32)
        return cls(dh_, ph, t2, ikm, k_ci, k_cr, k_dev, crypto.hmac_sha256(k_ci, t2))

    def verify_conf_i(self, conf: bytes) -> bool:
        return crypto.hmac_sha256_verify(self.k_conf_i, self.th2, conf) and len(conf) == 32

    def conf_r(self, th3_: bytes) -> bytes:
        return crypto.hmac_sha256(self.k_conf_r, th3_)

    def verify_conf_r(self, th3_: bytes, conf: bytes) -> bool:
        return crypto.hmac_sha256_verify(self.k_conf_r, th3_, conf) and len(conf) == 32
