"""protocomm security1 client/device and the app-key transfer."""

from __future__ import annotations

import pytest
from espnow_sec import crypto
from espnow_sec.protocol import appkey
from espnow_sec.protocol.errors import (
    BadLength,
    BadPublicKey,
    KeyEchoMismatch,
    PopMismatch,
    SessionFailed,
    UnexpectedMessage,
)
from espnow_sec.protocol.records import KeyResp
from espnow_sec.protocol.security1 import Security1Client, Security1Device, session_key
from espnow_sec.protocol.session import Cmd0, Cmd1, Resp0

ALICE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
BOB = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
SEQ16 = bytes(range(16))


def handshake(
    client_pop: bytes = b"abcd1234", device_pop: bytes = b"abcd1234"
) -> tuple[Security1Client, Security1Device]:
    c = Security1Client(client_pop, ALICE)
    d = Security1Device(device_pop, BOB, SEQ16)
    resp0 = d.handle_cmd0(c.cmd0())
    resp1 = d.handle_cmd1(c.handle_resp0(resp0))
    c.handle_resp1(resp1)
    return c, d


def test_rfc7748_keys_and_pop_mixing() -> None:
    c, d = handshake()
    t = c.transcript()
    assert t.shared_secret == SHARED == d.shared_secret
    assert t.pop_sha256 == crypto.sha256(b"abcd1234")
    assert t.session_key == bytes(
        a ^ b for a, b in zip(SHARED, crypto.sha256(b"abcd1234"), strict=True)
    )


def test_empty_pop_mixes_nothing() -> None:
    c, _ = handshake(b"", b"")
    assert c.transcript().session_key == SHARED and c.transcript().pop_sha256 is None
    assert session_key(SHARED, b"") == SHARED


def test_one_ctr_stream_in_both_directions() -> None:
    c, d = handshake()
    t = c.transcript()
    ks = crypto.CtrKeystream(t.session_key, SEQ16).keystream(0, 128)
    assert t.client_verify == bytes(a ^ b for a, b in zip(t.device_pub, ks[:32], strict=True))
    assert t.device_verify == bytes(a ^ b for a, b in zip(t.client_pub, ks[32:64], strict=True))
    app = bytes(range(100, 132))
    key = appkey.make_key(c, app)
    assert key.data == bytes(a ^ b for a, b in zip(app, ks[64:96], strict=True))
    got, resp = appkey.accept_key(d, key)
    assert got == app
    assert resp.data == bytes(a ^ b for a, b in zip(app, ks[96:128], strict=True))
    appkey.check_key_resp(c, app, resp)
    # odd records continue mid-block, in either direction
    for n, (tx, rx) in zip((5, 13, 1, 47), ((c, d), (d, c), (c, d), (d, c)), strict=True):
        msg = bytes(range(n))
        assert rx.decrypt(tx.encrypt(msg)) == msg
    assert c.record_stream().offset == d.record_stream().offset == 128 + 66


def test_wrong_pop_fails_at_cmd1_and_failure_is_sticky() -> None:
    c = Security1Client(b"wrong pop", ALICE)
    d = Security1Device(b"espnow_pop", BOB, SEQ16)
    cmd1 = c.handle_resp0(d.handle_cmd0(c.cmd0()))
    with pytest.raises(PopMismatch):
        d.handle_cmd1(cmd1)
    with pytest.raises(SessionFailed):
        d.handle_cmd1(cmd1)
    with pytest.raises(SessionFailed):
        d.encrypt(b"x")


def test_client_detects_device_with_other_pop() -> None:
    c = Security1Client(b"espnow_pop", ALICE)
    c.cmd0()
    d_pub = crypto.x25519_public(BOB)
    rogue_key = session_key(SHARED, b"guess")
    c.handle_resp0(Resp0(d_pub, SEQ16))
    rogue_verify = crypto.CtrKeystream(rogue_key, SEQ16).xor_at(32, crypto.x25519_public(ALICE))
    from espnow_sec.protocol.session import Resp1

    with pytest.raises(PopMismatch):
        c.handle_resp1(Resp1(rogue_verify))


def test_low_order_and_wrong_length_keys() -> None:
    d = Security1Device(b"p", BOB, SEQ16)
    with pytest.raises(BadPublicKey):
        d.handle_cmd0(Cmd0(bytes(32)))
    d = Security1Device(b"p", BOB, SEQ16)
    with pytest.raises(BadLength):
        d.handle_cmd0(Cmd0(bytes(31)))
    c = Security1Client(b"p", ALICE)
    c.cmd0()
    with pytest.raises(BadLength, match="device_random"):
        c.handle_resp0(Resp0(crypto.x25519_public(BOB), bytes(15)))


def test_messages_out_of_order() -> None:
    d = Security1Device(b"p", BOB, SEQ16)
    with pytest.raises(UnexpectedMessage):
        d.handle_cmd1(Cmd1(bytes(32)))
    c = Security1Client(b"p", ALICE)
    with pytest.raises(UnexpectedMessage):
        c.handle_resp0(Resp0(bytes(32), SEQ16))
    with pytest.raises(UnexpectedMessage):
        c.encrypt(b"before done")


def test_rejected_verifier_does_not_move_the_stream() -> None:
    c, d = handshake()
    app = bytes(32)
    key = appkey.make_key(c, app)
    _, resp = appkey.accept_key(d, key)
    before = c.record_stream().offset
    with pytest.raises(KeyEchoMismatch):
        appkey.check_key_resp(c, app, KeyResp(bytes([resp.data[0] ^ 1]) + resp.data[1:]))
    assert c.record_stream().offset == before


def test_key_of_wrong_length_is_refused_before_decrypting() -> None:
    c, d = handshake()
    from espnow_sec.protocol.records import Key

    with pytest.raises(BadLength):
        appkey.accept_key(d, Key(bytes(31)))
    assert d.record_stream().offset == 64
