"""The primitives behind the reference, against vectors/primitives.json (typed from standards)."""

from __future__ import annotations

from typing import Any

import pytest
from espnow_sec import crypto
from espnow_sec.vectors.generate import LOW_ORDER_POINTS


def _ids(section: str) -> Any:
    return lambda case: case["id"]


def test_x25519_rfc7748_5_2(primitives: dict[str, Any]) -> None:
    for case in primitives["x25519"]:
        out = crypto.x25519_shared(bytes.fromhex(case["scalar"]), bytes.fromhex(case["u"]))
        assert out.hex() == case["output"], case["id"]


def test_x25519_rfc7748_iterated(primitives: dict[str, Any]) -> None:
    for case in primitives["x25519_iterated"]:
        k = u = bytes.fromhex(case["start"])
        for _ in range(case["iterations"]):
            k, u = crypto.x25519_shared(k, u), k
        assert k.hex() == case["output"], case["id"]


def test_x25519_rfc7748_6_1(primitives: dict[str, Any]) -> None:
    case = primitives["x25519_dh"][0]
    a, b = bytes.fromhex(case["alice_priv"]), bytes.fromhex(case["bob_priv"])
    assert crypto.x25519_public(a).hex() == case["alice_pub"]
    assert crypto.x25519_public(b).hex() == case["bob_pub"]
    assert crypto.x25519_shared(a, bytes.fromhex(case["bob_pub"])).hex() == case["shared"]
    assert crypto.x25519_shared(b, bytes.fromhex(case["alice_pub"])).hex() == case["shared"]


@pytest.mark.parametrize("name", sorted(LOW_ORDER_POINTS))
def test_x25519_low_order_points_rejected(name: str) -> None:
    priv = bytes(range(1, 33))
    with pytest.raises(crypto.LowOrderPoint):
        crypto.x25519_shared(priv, bytes.fromhex(LOW_ORDER_POINTS[name]))


def test_aes256_ctr_sp800_38a(primitives: dict[str, Any]) -> None:
    case = primitives["aes_ctr"][0]
    key, iv = bytes.fromhex(case["key"]), bytes.fromhex(case["init_counter"])
    pt, ct = bytes.fromhex(case["plaintext"]), bytes.fromhex(case["ciphertext"])
    assert crypto.aes_ctr(key, iv, pt) == ct
    # reading the keystream by offset, in odd pieces, gives the same bytes
    ks = crypto.CtrKeystream(key, iv)
    pieces, off = [], 0
    for n in (5, 13, 1, 30, 15):
        pieces.append(ks.xor_at(off, pt[off : off + n]))
        off += n
    assert b"".join(pieces) == ct


def test_aes_ctr_counter_wraps_at_2_128() -> None:
    key = bytes(32)
    ks = crypto.CtrKeystream(key, b"\xff" * 16)
    block1 = crypto.CtrKeystream(key, bytes(16)).keystream(0, 16)
    assert ks.keystream(16, 16) == block1


@pytest.mark.parametrize("idx", range(4))
def test_aes_ccm_sp800_38c_rfc3610(primitives: dict[str, Any], idx: int) -> None:
    case = primitives["aes_ccm"][idx]
    key, nonce = bytes.fromhex(case["key"]), bytes.fromhex(case["nonce"])
    aad, pt = bytes.fromhex(case["aad"]), bytes.fromhex(case["plaintext"])
    tag = bytes.fromhex(case["tag"])
    ct, got_tag = crypto.ccm_encrypt(key, nonce, pt, aad, len(tag))
    assert (ct.hex(), got_tag.hex()) == (case["ciphertext"], case["tag"]), case["id"]
    assert crypto.ccm_decrypt(key, nonce, ct, tag, aad) == pt
    bad = bytes([tag[0] ^ 1]) + tag[1:]
    with pytest.raises(crypto.AuthenticationError):
        crypto.ccm_decrypt(key, nonce, ct, bad, aad)


def test_primitive_vectors_name_their_source(primitives: dict[str, Any]) -> None:
    for section, cases in primitives.items():
        if isinstance(cases, list):
            for case in cases:
                assert case.get("source") and case.get("id"), section
