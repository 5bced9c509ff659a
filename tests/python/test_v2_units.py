"""Protocol v2 building blocks: crypto additions, framing, windows, counters, buckets."""

from __future__ import annotations

import random

import pytest
from espnow_sec import crypto
from espnow_sec.protocol.v2 import framing, keyschedule
from espnow_sec.protocol.v2.constants import FrameType
from espnow_sec.protocol.v2.counter import FrameCounter
from espnow_sec.protocol.v2.errors import AuthFailed, Malformed, StoreCorrupt, StoreFail
from espnow_sec.protocol.v2.limiter import PopBackoff, TokenBucket
from espnow_sec.protocol.v2.records import CounterRecord
from espnow_sec.protocol.v2.replay import Window
from espnow_sec.protocol.v2.store import MemoryStore

A, B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
BC = b"\xff" * 6


def test_ccm13_tags_and_tamper() -> None:
    key, nonce = bytes(16), bytes(13)
    for tl in (8, 16):
        sealed = crypto.ccm13_encrypt(key, nonce, b"abc", b"aad", tl)
        assert len(sealed) == 3 + tl
        assert crypto.ccm13_decrypt(key, nonce, sealed, b"aad", tl) == b"abc"
        with pytest.raises(crypto.AuthenticationError):
            crypto.ccm13_decrypt(key, nonce, sealed, b"aaD", tl)
    with pytest.raises(crypto.CryptoError):
        crypto.ccm13_encrypt(key, nonce, b"", b"", 4)


def test_secured_frame_binds_header_and_addresses() -> None:
    k = keyschedule.k_grp(1, bytes(32))
    f = framing.seal(k, FrameType.DATA, 1, 7, A, BC, b"payload")
    assert f[:12].hex() == "cf0230000001000000000007"
    assert framing.open_(k, f, A, BC) == b"payload"
    for src, dst in ((B, BC), (A, B)):
        with pytest.raises(AuthFailed):
            framing.open_(k, f, src, dst)


def test_check_frame_rules() -> None:
    k = keyschedule.k_grp(1, bytes(32))
    f = framing.seal(k, FrameType.DATA, 1, 7, A, BC, b"x")
    assert framing.check_frame(f, A, BC, B) is FrameType.DATA
    for bad in (f[:3] + b"\x01" + f[4:], f[:4] + b"\x00\x00" + f[6:], f[:20]):
        with pytest.raises(Malformed):
            framing.check_frame(bad, A, BC, B)
    with pytest.raises(Malformed):
        framing.check_frame(f, A, bytes.fromhex("020000000099"), B)


def test_window_matches_a_set_model() -> None:
    r = random.Random(5)
    w, seen, top = Window(1000), set(range(937, 1001)), 1000
    for _ in range(5000):
        c = max(0, top + r.randint(-80, 20))
        ok = c > top or (top - c < 64 and c not in seen)
        assert w.check(c) == ok
        if ok:
            w.commit(c)
            seen.add(c)
            top = max(top, c)
        assert w.max == top


def test_counter_never_reuses_across_1000_reboots() -> None:
    store = MemoryStore()
    used: set[int] = set()
    r = random.Random(1)
    for boot in range(1000):
        ctr = FrameCounter(store, 16, key_record_exists=boot > 0)
        for _ in range(r.randint(0, 40)):
            c = ctr.take()
            assert c not in used
            used.add(c)
    assert CounterRecord.decode(store.records["v2_ctr"]).reserved >= max(used) + 1


def test_counter_store_failure_and_corruption() -> None:
    store = MemoryStore(fail_writes=True)
    ctr = FrameCounter(store, 16)
    with pytest.raises(StoreFail):
        ctr.take()
    assert ctr.next == 0
    store = MemoryStore({"v2_ctr": b"\x43\x01" + bytes(10)})
    with pytest.raises(StoreCorrupt):
        FrameCounter(store, 16)
    with pytest.raises(StoreCorrupt):
        FrameCounter(MemoryStore(), 16, key_record_exists=True)


def test_token_bucket_and_backoff() -> None:
    b = TokenBucket(5, 10_000)
    assert [b.take(0) for _ in range(6)] == [True] * 5 + [False]
    assert b.retry_after(0) == 10_000 and b.retry_after(4_000) == 6_000
    assert b.take(10_000) and not b.take(10_001)
    p = PopBackoff(8, 1000, 60000, 600000)
    blocks = [p.record_failure(A, 1, 0) for _ in range(8)]
    assert blocks == [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]
    assert p.blocked_for(A, 59_999) == 1 and p.blocked_for(A, 60_000) == 0


def test_key_schedule_is_bound_to_macs() -> None:
    hs1, hs2 = b"1" * 41, b"2" * 40
    a = keyschedule.HandshakeKeys.derive(bytes(range(32)), b"pop", A, B, hs1, hs2)
    b = keyschedule.HandshakeKeys.derive(bytes(range(32)), b"pop", B, A, hs1, hs2)
    c = keyschedule.HandshakeKeys.derive(bytes(range(32)), b"pop!", A, B, hs1, hs2)
    assert len({a.k_dev, b.k_dev, c.k_dev}) == 3
    assert a.verify_conf_i(a.conf_i) and not c.verify_conf_i(a.conf_i)
