"""Frame header, security records, GROUP, SessionData, data frames and key-store record."""

from __future__ import annotations

import dataclasses

import pytest
from espnow_sec.protocol import data, keystore, session_pb
from espnow_sec.protocol.errors import (
    AuthFailed,
    BadVersion,
    Malformed,
    OneofMismatch,
    SecVerMismatch,
    StoreCorrupt,
    Truncated,
)
from espnow_sec.protocol.frame import RESERVED_BITS, SEC_GROUP_ID, DataType, Frame, Header
from espnow_sec.protocol.records import (
    Group,
    GroupOp,
    Handshake,
    Info,
    Key,
    Rest,
    ScanRequest,
    decode_security_payload,
    group_frames,
)
from espnow_sec.protocol.session import Cmd0, Cmd1, Resp0, Resp1, decode_session

MAC_A = bytes.fromhex("112233445566")
MAC_B = bytes.fromhex("a1a2a3a4a5a6")


# -- header ------------------------------------------------------------------------------------
def test_header_known_bytes_of_upstream_scan_request() -> None:
    # reference §2.3: type 12, version 2, filter_adjacent, retransmit 10, rssi -65, broadcast
    h = Header(
        type=DataType.SECURITY,
        size=1,
        magic=0x5CA1,
        channel=1,
        filter_adjacent_channel=True,
        broadcast=True,
        retransmit_count=10,
        forward_rssi=-65,
        dest_addr=b"\xff" * 6,
        src_addr=MAC_A,
    )
    raw = h.encode()
    assert raw[:8].hex() == "2c01a15c118802bf"
    assert raw[8:] == b"\xff" * 6 + MAC_A
    assert Header.decode(raw) == h


@pytest.mark.parametrize(
    "field,value,byte,mask",
    [
        ("channel", 15, 4, 0x0F),
        ("filter_adjacent_channel", True, 4, 0x10),
        ("filter_weak_signal", True, 4, 0x20),
        ("security", True, 4, 0x40),
        ("broadcast", True, 5, 0x08),
        ("group", True, 5, 0x10),
        ("ack", True, 5, 0x20),
        ("forward_ttl", 31, 6, 0xF8),
        ("forward_rssi", -1, 7, 0xFF),
    ],
)
def test_header_each_field_lands_on_its_bits(
    field: str, value: object, byte: int, mask: int
) -> None:
    raw = Header(type=0, dest_addr=bytes(6), **{field: value}).encode()
    assert raw[byte] == mask
    assert sum(raw) - raw[0] == mask  # nothing else but version in byte 0
    assert getattr(Header.decode(raw), field) == value


def test_header_retransmit_count_spans_bytes_5_and_6() -> None:
    raw = Header(type=0, retransmit_count=31, dest_addr=bytes(6)).encode()
    assert (raw[5], raw[6]) == (0xC0, 0x07)


def test_header_reserved_bits_ignored_on_decode_and_zero_on_encode() -> None:
    h = Header(type=DataType.DATA, magic=7, dest_addr=MAC_B, src_addr=MAC_A)
    raw = bytearray(h.encode())
    word = int.from_bytes(raw[:8], "little") | RESERVED_BITS
    raw[:8] = word.to_bytes(8, "little")
    decoded = Header.decode(bytes(raw))
    assert decoded == h
    assert decoded.encode() == h.encode()


def test_header_rejects_out_of_range_fields() -> None:
    with pytest.raises(ValueError, match="retransmit_count"):
        Header(type=0, retransmit_count=32)
    with pytest.raises(ValueError, match="forward_rssi"):
        Header(type=0, forward_rssi=128)
    with pytest.raises(ValueError, match="dest_addr"):
        Header(type=0, dest_addr=b"\x00")


def test_frame_truncated_and_bad_version() -> None:
    raw = Frame.build(Header(type=DataType.SECURITY), b"\x00").encode()
    with pytest.raises(Truncated):
        Frame.decode(raw[:19])
    bad = bytearray(raw)
    bad[0] = (bad[0] & 0xCF) | 0x30
    with pytest.raises(BadVersion):
        Frame.decode(bytes(bad))


def test_frame_size_is_low_8_bits_and_real_length_wins() -> None:
    f = Frame.build(Header(type=DataType.DATA), bytes(300))
    assert f.header.size == 300 & 0xFF
    again = Frame.decode(f.encode())
    assert again.payload == bytes(300) and again.size_matches
    lying = Frame.decode(dataclasses.replace(f.header, size=3).encode() + bytes(10))
    assert len(lying.payload) == 10 and not lying.size_matches


# -- records -----------------------------------------------------------------------------------
def test_security_records_round_trip() -> None:
    msgs = [ScanRequest(), Info(1, MAC_A), Handshake(b"\x01\x02"), Key(bytes(32)), Rest()]
    for msg in msgs:
        assert decode_security_payload(msg.encode()) == msg
    assert ScanRequest().encode() == b"\x00"
    assert Info(0, bytes(6)).encode() == b"\x01\x00" + bytes(6)
    assert Handshake(b"ab").encode() == b"\x02\x02ab"


def test_record_inner_size_larger_than_real_length_is_truncated() -> None:
    with pytest.raises(Truncated, match="inner size 5 > real length 4"):
        decode_security_payload(b"\x02\x05abcd")


def test_record_trailing_bytes_and_unknown_type_are_malformed() -> None:
    with pytest.raises(Malformed, match="trailing"):
        decode_security_payload(b"\x02\x01ab")
    with pytest.raises(Malformed, match="unknown security record type 9"):
        decode_security_payload(b"\x09")
    with pytest.raises(Truncated):
        decode_security_payload(b"")


def test_group_payload_and_32_mac_split() -> None:
    macs = [bytes([i]) * 6 for i in range(70)]
    frames = group_frames(GroupOp.ADD, SEC_GROUP_ID, macs)
    assert [len(f.macs) for f in frames] == [32, 32, 6]
    raw = frames[2].encode()
    assert raw[:8] == b"\x01SEC\x00\x00\x00\x06" and len(raw) == 8 + 36
    assert Group.decode(raw) == frames[2]
    with pytest.raises(ValueError, match="at most 32"):
        Group(1, SEC_GROUP_ID, tuple(macs[:33])).encode()
    with pytest.raises(Malformed, match="op 7"):
        Group.decode(b"\x07SEC\x00\x00\x00\x00")


# -- SessionData -------------------------------------------------------------------------------
def test_session_data_sizes_and_prefixes_match_protocomm() -> None:
    k32, r16 = bytes(range(32)), bytes(range(16))
    cases = [
        (Cmd0(k32), 41, "10015a25a201220a20"),
        (Resp0(k32, r16), 61, "10015a390801aa0134"),
        (Cmd1(k32), 43, "10015a270802b201221220"),
        (Resp1(k32), 43, "10015a270803ba01221a20"),
    ]
    for msg, size, prefix in cases:
        raw = msg.encode()
        assert len(raw) == size and raw.hex().startswith(prefix), type(msg).__name__
        assert decode_session(raw) == msg


def test_session_data_rejections() -> None:
    d = session_pb.SessionData(sec_ver=0)
    d.sec1.sc0.client_pubkey = bytes(32)
    with pytest.raises(SecVerMismatch):
        decode_session(d.SerializeToString())
    d = session_pb.SessionData(sec_ver=1)
    d.sec1.msg = 2
    d.sec1.sc0.client_pubkey = bytes(32)
    with pytest.raises(OneofMismatch, match="msg=2"):
        decode_session(d.SerializeToString())
    with pytest.raises(Malformed):
        decode_session(b"\xff\xff\xff")


def test_session_data_unknown_fields_are_skipped() -> None:
    raw = Cmd0(bytes(range(32))).encode() + bytes.fromhex("f80701")  # field 127 varint 1
    assert decode_session(raw) == Cmd0(bytes(range(32)))


# -- data frames -------------------------------------------------------------------------------
def test_data_frame_layout_ct_tag_nonce_and_size() -> None:
    key = bytes(range(32))
    hdr = Header(type=DataType.DATA, broadcast=True, src_addr=MAC_A)
    frame = data.protect(key, b"N" * 8, b"hello", hdr)
    assert frame.header.security and frame.header.size == 5 + 12
    assert frame.payload[-8:] == b"N" * 8 and len(frame.payload) == 17
    pt, parts = data.unprotect(key, Frame.decode(frame.encode()))
    assert pt == b"hello" and parts.tag == frame.payload[5:9]
    assert data.unprotect(key[:16], frame)[0] == b"hello"  # only app_key[0:16] matters


def test_data_frame_limits_and_tamper() -> None:
    key = bytes(32)
    hdr = Header(type=DataType.DATA)
    data.protect(key, bytes(8), bytes(218), hdr)
    with pytest.raises(ValueError, match="at most 218"):
        data.protect(key, bytes(8), bytes(219), hdr)
    frame = data.protect(key, bytes(8), b"x", hdr)
    bad = Frame(frame.header, bytes([frame.payload[0] ^ 1]) + frame.payload[1:])
    with pytest.raises(AuthFailed):
        data.unprotect(key, bad)
    with pytest.raises(Truncated):
        data.unprotect(key, Frame(frame.header, frame.payload[:11]))
    with pytest.raises(Malformed, match="security bit"):
        data.unprotect(key, Frame(dataclasses.replace(frame.header, security=False), frame.payload))


# -- key store ---------------------------------------------------------------------------------
def test_keystore_record_layout() -> None:
    rec = keystore.KeyRecord(bytes(range(32)), MAC_A)
    raw = rec.encode()
    assert len(raw) == 47 and raw[:5] == b"ESK1\x01" and raw[37:43] == MAC_A
    assert keystore.KeyRecord.decode(raw) == rec
    for bad in (
        raw[:-1],
        b"ESK2" + raw[4:],
        raw[:4] + b"\x02" + raw[5:],
        raw[:-1] + bytes([raw[-1] ^ 0x80]),
    ):
        with pytest.raises(StoreCorrupt):
            keystore.KeyRecord.decode(bad)


def test_crc32_is_the_zlib_iso_hdlc_one() -> None:
    import zlib

    assert zlib.crc32(b"123456789") == 0xCBF43926  # the CRC-32 check value docs/keystore.md names
