"""Choose vector inputs from a seed and build ``vectors/compat.json``.

All "random" inputs come from :class:`Det`, a SHA-256 counter-mode generator keyed by the seed
and a per-value label, so the same seed always gives a byte-identical file, and adding a case
does not shift the values of the others. Fixed inputs (RFC 7748 keys, PoPs, MACs, magics) are
written out literally.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .. import __version__, crypto
from ..protocol import security1
from ..protocol import session_pb as pb
from ..protocol.data import MAX_PLAINTEXT_V1
from ..protocol.frame import DataType, Frame, Header
from ..protocol.records import Group, GroupOp, Handshake, Info, KeyResp, Rest, ScanRequest
from ..protocol.session import Resp0, Resp1, decode_session
from . import compute as C

FORMAT_VERSION = 1
GENERATOR = f"espnow-sec-keygen {__version__}"

RFC7748_ALICE_PRIV = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
RFC7748_BOB_PRIV = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
CLIENT_MAC = "020000000001"
DEVICE_MAC = "020000000002"
CHANNEL = 1
DEFAULT_MAGICS = {
    "cmd0": 0x1001,
    "resp0": 0x2001,
    "cmd1": 0x1002,
    "resp1": 0x2002,
    "key": 0x1003,
    "key_resp": 0x2003,
}
#: X25519 public keys that give the all-zero shared secret for every private key (RFC 7748
#: §6.1 check; the points of order 1, 2, 4 and 8 and their non-canonical encodings, as listed by
#: Wycheproof x25519 and libsodium).
LOW_ORDER_POINTS: dict[str, str] = {
    "zero": "00" * 32,
    "one": "01" + "00" * 31,
    "order8_a": "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "order8_b": "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "p_minus_1": "ec" + "ff" * 30 + "7f",
    "p": "ed" + "ff" * 30 + "7f",
    "p_plus_1": "ee" + "ff" * 30 + "7f",
}
#: Extra records after KEY_RESP: odd lengths that start and end mid-block (offset 128 onwards).
EXTRA_RECORD_LENGTHS = (("c2d", 5), ("d2c", 13), ("c2d", 1), ("d2c", 47), ("c2d", 17), ("d2c", 31))


class Det:
    """Deterministic bytes: SHA-256(domain | seed u64 LE | label | 0x00 | counter u32 LE)."""

    DOMAIN = b"espnow-sec vectors v1\x00"

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def bytes(self, label: str, n: int) -> bytes:
        out = b""
        counter = 0
        while len(out) < n:
            out += hashlib.sha256(
                self.DOMAIN
                + self.seed.to_bytes(8, "little")
                + label.encode()
                + b"\x00"
                + counter.to_bytes(4, "little")
            ).digest()
            counter += 1
        return out[:n]

    def hex(self, label: str, n: int) -> str:
        return self.bytes(label, n).hex()

    def text(self, label: str, n: int) -> str:
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!"
        return "".join(alphabet[b % len(alphabet)] for b in self.bytes(label, n))


# -- handshakes --------------------------------------------------------------------------------
def handshake_inputs(
    client_priv: str,
    device_priv: str,
    pop: str,
    device_random: str,
    app_key: str,
    extra: list[dict[str, str]] | None = None,
    client_mac: str = CLIENT_MAC,
    device_mac: str = DEVICE_MAC,
    magics: dict[str, int] | None = None,
) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "client_priv": client_priv,
        "device_priv": device_priv,
        "pop": C.text_input(pop),
        "device_random": device_random,
        "app_key": app_key,
        "client_mac": client_mac,
        "device_mac": device_mac,
        "channel": CHANNEL,
        "magics": dict(magics or DEFAULT_MAGICS),
    }
    if extra:
        inputs["extra_records"] = extra
    return inputs


def _extras(det: Det, label: str) -> list[dict[str, str]]:
    return [
        {"dir": d, "plaintext": det.hex(f"{label}.extra{i}", n)}
        for i, (d, n) in enumerate(EXTRA_RECORD_LENGTHS)
    ]


def _handshakes(det: Det) -> list[dict[str, Any]]:
    seq = "000102030405060708090a0b0c0d0e0f"
    specs: list[tuple[str, str, list[str], dict[str, Any]]] = [
        (
            "rfc7748-pop-abcd1234",
            "RFC 7748 §6.1 Alice (client) and Bob (device), PoP abcd1234, device_random 00..0f "
            "(reference/protocomm-security.md §4.7)",
            ["rfc7748", "pop"],
            handshake_inputs(
                RFC7748_ALICE_PRIV,
                RFC7748_BOB_PRIV,
                "abcd1234",
                seq,
                det.hex("rfc.app_key", 32),
                _extras(det, "rfc"),
            ),
        ),
        (
            "rfc7748-empty-pop",
            "RFC 7748 keys, empty PoP: session_key = shared secret",
            ["rfc7748", "pop:empty"],
            handshake_inputs(
                RFC7748_ALICE_PRIV,
                RFC7748_BOB_PRIV,
                "",
                seq,
                det.hex("rfc-empty.app_key", 32),
                _extras(det, "rfc-empty"),
            ),
        ),
        (
            "seeded-default-pop",
            "seeded keys, the upstream default PoP espnow_pop",
            ["pop:default"],
            handshake_inputs(
                det.hex("d.client", 32),
                det.hex("d.device", 32),
                "espnow_pop",
                det.hex("d.random", 16),
                det.hex("d.app_key", 32),
                _extras(det, "d"),
            ),
        ),
        (
            "seeded-long-pop",
            "seeded keys, a 200-character PoP",
            ["pop:long"],
            handshake_inputs(
                det.hex("l.client", 32),
                det.hex("l.device", 32),
                det.text("l.pop", 200),
                det.hex("l.random", 16),
                det.hex("l.app_key", 32),
                _extras(det, "l"),
            ),
        ),
        (
            "seeded-utf8-pop",
            "seeded keys, a non-ASCII PoP (its UTF-8 bytes are hashed)",
            ["pop:utf8"],
            handshake_inputs(
                det.hex("u.client", 32),
                det.hex("u.device", 32),
                "pöp-ключ-✓",
                det.hex("u.random", 16),
                det.hex("u.app_key", 32),
            ),
        ),
        (
            "seeded-random-ff",
            "device_random ff..ff: the CTR counter wraps to 00..00 at block 1",
            ["ctr:wrap"],
            handshake_inputs(
                det.hex("w.client", 32),
                det.hex("w.device", 32),
                "espnow_pop",
                "ff" * 16,
                det.hex("w.app_key", 32),
                _extras(det, "w"),
            ),
        ),
    ]
    return [
        {"id": i, "description": d, "tags": t, **C.compute_handshake(inp)} for i, d, t, inp in specs
    ]


# -- headers and frames ------------------------------------------------------------------------
def _hdr(**kw: Any) -> dict[str, Any]:
    return C.header_to_json(Header(**kw))


def _header_cases() -> list[dict[str, Any]]:
    mac_a, mac_b = bytes.fromhex("112233445566"), bytes.fromhex("a1a2a3a4a5a6")
    specs: list[tuple[str, str, dict[str, Any]]] = [
        (
            "minimal",
            "type SECURITY, everything else zero except dest ff..ff",
            {"header": _hdr(type=DataType.SECURITY)},
        ),
        (
            "magic-channel",
            "magic 0x1234 (LE at bytes 2-3), channel 11",
            {
                "header": _hdr(
                    type=DataType.DATA,
                    size=0x2A,
                    magic=0x1234,
                    channel=11,
                    dest_addr=mac_a,
                    src_addr=mac_b,
                )
            },
        ),
        (
            "flags-byte4",
            "filter_adjacent_channel, filter_weak_signal, security (byte 4 bits 4-6)",
            {
                "header": _hdr(
                    type=DataType.DATA,
                    filter_adjacent_channel=True,
                    filter_weak_signal=True,
                    security=True,
                )
            },
        ),
        (
            "flags-byte5",
            "broadcast, group, ack (byte 5 bits 3-5)",
            {"header": _hdr(type=DataType.GROUP, broadcast=True, group=True, ack=True)},
        ),
        (
            "retransmit-10101",
            "retransmit_count 0b10101 spans byte 5 bits 6-7 and byte 6 bits 0-2",
            {"header": _hdr(type=DataType.DATA, retransmit_count=0b10101)},
        ),
        (
            "ttl-rssi",
            "forward_ttl 27 (byte 6 bits 3-7), forward_rssi -65 (0xbf)",
            {"header": _hdr(type=DataType.FORWARD, forward_ttl=27, forward_rssi=-65)},
        ),
        (
            "all-max",
            "every field at its maximum; reserved bits stay zero",
            {
                "header": _hdr(
                    type=15,
                    size=255,
                    magic=0xFFFF,
                    channel=15,
                    filter_adjacent_channel=True,
                    filter_weak_signal=True,
                    security=True,
                    broadcast=True,
                    group=True,
                    ack=True,
                    retransmit_count=31,
                    forward_ttl=31,
                    forward_rssi=-1,
                    dest_addr=b"\xff" * 6,
                    src_addr=b"\xff" * 6,
                )
            },
        ),
        (
            "rssi-min",
            "forward_rssi -128 (0x80)",
            {"header": _hdr(type=DataType.DATA, forward_rssi=-128)},
        ),
    ]
    base = Header(
        type=DataType.SECURITY,
        size=1,
        magic=0xBEEF,
        channel=6,
        broadcast=True,
        dest_addr=b"\xff" * 6,
        src_addr=mac_a,
    )
    raw = bytearray(base.encode())
    raw[0] |= 0xC0  # byte 0 bits 6-7
    raw[4] |= 0x80  # byte 4 bit 7
    raw[5] |= 0x07  # byte 5 bits 0-2
    specs.append(
        (
            "reserved-bits-ignored",
            "decode_bytes has every reserved bit set (as upstream's unzeroed buffers do); "
            "decoding ignores them and re-encoding clears them",
            {"header": C.header_to_json(base), "decode_bytes": bytes(raw).hex()},
        )
    )
    return [{"id": i, "description": d, **C.compute_header_case(inp)} for i, d, inp in specs]


def _frames(det: Det) -> list[dict[str, Any]]:
    ini, dev = bytes.fromhex(CLIENT_MAC), bytes.fromhex(DEVICE_MAC)
    macs3 = [det.bytes(f"group.mac{i}", 6) for i in range(3)]
    macs32 = [det.bytes(f"group32.mac{i}", 6) for i in range(32)]
    sec = b"SEC\x00\x00\x00"
    bc = dict(broadcast=True, dest_addr=b"\xff" * 6, src_addr=ini, channel=CHANNEL)
    specs: list[tuple[str, str, Header, bytes]] = [
        (
            "scan-request",
            "scan REQUEST: broadcast SECURITY frame, payload 00 (§2.3)",
            Header(
                type=DataType.SECURITY,
                magic=0x5CA1,
                filter_adjacent_channel=True,
                retransmit_count=10,
                forward_rssi=-65,
                **bc,
            ),
            ScanRequest().encode(),
        ),
        (
            "info-unconfigured",
            "INFO from an unconfigured responder (sec_ver 0, client_mac zeros)",
            Header(
                type=DataType.SECURITY_STATUS,
                magic=0x1F00,
                retransmit_count=1,
                channel=CHANNEL,
                dest_addr=ini,
                src_addr=dev,
            ),
            Info(0, bytes(6)).encode(),
        ),
        (
            "info-configured",
            "INFO from a responder configured by the initiator (sec_ver 1)",
            Header(
                type=DataType.SECURITY_STATUS,
                magic=0x1F01,
                retransmit_count=1,
                channel=CHANNEL,
                dest_addr=ini,
                src_addr=dev,
            ),
            Info(1, ini).encode(),
        ),
        (
            "group-add",
            "GROUP add of 3 MACs to the SEC group",
            Header(type=DataType.GROUP, magic=0x6A01, retransmit_count=10, **bc),
            Group(GroupOp.ADD, sec, tuple(macs3)).encode(),
        ),
        (
            "group-delete",
            "GROUP delete of the same 3 MACs",
            Header(type=DataType.GROUP, magic=0x6A02, retransmit_count=10, **bc),
            Group(GroupOp.DELETE, sec, tuple(macs3)).encode(),
        ),
        (
            "group-add-32",
            "GROUP add with the maximum of 32 MACs in one frame",
            Header(type=DataType.GROUP, magic=0x6A03, retransmit_count=10, **bc),
            Group(GroupOp.ADD, sec, tuple(macs32)).encode(),
        ),
        (
            "rest",
            "REST (type 5): decoded, counted, ignored by our responders",
            Header(
                type=DataType.SECURITY,
                magic=0x7E57,
                retransmit_count=1,
                channel=CHANNEL,
                dest_addr=dev,
                src_addr=ini,
            ),
            Rest().encode(),
        ),
    ]
    out = []
    for i, d, hdr, payload in specs:
        inputs = {"header": C.header_to_json(hdr), "payload": payload.hex()}
        del inputs["header"]["size"]
        out.append({"id": i, "description": d, **C.compute_frame_case(inputs)})
    return out


def _data_frames(det: Det) -> list[dict[str, Any]]:
    key = det.hex("data.app_key", 32)
    src = bytes.fromhex(CLIENT_MAC)
    lengths = [
        (0, "empty plaintext: payload is tag + nonce only"),
        (1, "one byte"),
        (15, "one byte short of a block"),
        (16, "exactly one block"),
        (17, "one byte over a block"),
        (MAX_PLAINTEXT_V1, "largest plaintext of an ESP-NOW v1 frame (250 bytes on air)"),
        (300, "ESP-NOW v2 frame: size = (300 + 12) & 0xff = 56"),
    ]
    out = []
    for n, desc in lengths:
        hdr = C.header_to_json(
            Header(
                type=DataType.DATA,
                magic=0xD000 + n,
                channel=CHANNEL,
                broadcast=True,
                retransmit_count=5,
                dest_addr=b"\xff" * 6,
                src_addr=src,
            )
        )
        for k in ("size", "security"):
            del hdr[k]
        inputs = {
            "app_key": key,
            "nonce": det.hex(f"data.nonce{n}", 8),
            "plaintext": det.hex(f"data.pt{n}", n),
            "header": hdr,
        }
        out.append({"id": f"data-{n}", "description": desc, **C.compute_data_frame(inputs)})
    hdr = C.header_to_json(
        Header(
            type=DataType.DATA,
            magic=0xD0AA,
            channel=CHANNEL,
            ack=True,
            retransmit_count=1,
            dest_addr=bytes.fromhex(DEVICE_MAC),
            src_addr=src,
        )
    )
    for k in ("size", "security"):
        del hdr[k]
    inputs = {
        "app_key": key,
        "nonce": "0001020304050607",
        "plaintext": b"hello espnow".hex(),
        "header": hdr,
    }
    out.append(
        {
            "id": "data-text-unicast",
            "description": "text, unicast with ack",
            **C.compute_data_frame(inputs),
        }
    )
    return out


def _keystore(det: Det) -> list[dict[str, Any]]:
    specs = [
        (
            "preloaded",
            "key written by keygen appkey (provisioner unknown)",
            {"app_key": det.hex("ks.key0", 32), "provisioner_mac": "000000000000"},
        ),
        (
            "provisioned",
            "key received from initiator 02:00:00:00:00:01",
            {"app_key": det.hex("ks.key1", 32), "provisioner_mac": CLIENT_MAC},
        ),
    ]
    return [{"id": i, "description": d, **C.compute_keystore(inp)} for i, d, inp in specs]


# -- negative cases ----------------------------------------------------------------------------
def _session_data(
    sec_ver: int = 1,
    msg: int | None = None,
    payload: str | None = None,
    fields: dict[str, Any] | None = None,
    sec0: bool = False,
) -> bytes:
    """A SessionData built field by field, to make the malformed ones the encoder never would."""
    data = pb.SessionData(sec_ver=sec_ver)
    if sec0:
        data.sec0.msg = 0
        data.sec0.sc.SetInParent()
        return data.SerializeToString(deterministic=True)
    data.sec1.SetInParent()
    if msg is not None:
        data.sec1.msg = msg
    if payload is not None:
        sub = getattr(data.sec1, payload)
        sub.SetInParent()
        for k, v in (fields or {}).items():
            setattr(sub, k, v)
    return data.SerializeToString(deterministic=True)


def _rec(session_data: bytes) -> str:
    return Handshake(session_data).encode().hex()


def _flip(hex_str: str, byte: int, bit: int = 0) -> str:
    b = bytearray(bytes.fromhex(hex_str))
    b[byte] ^= 1 << bit
    return b.hex()


def _negatives(det: Det) -> list[dict[str, Any]]:
    pop = "espnow_pop"
    cpriv, dpriv, drand = det.hex("n.client", 32), det.hex("n.device", 32), det.hex("n.random", 16)
    app_key = det.hex("n.app_key", 32)
    honest = C.compute_handshake(handshake_inputs(cpriv, dpriv, pop, drand, app_key))
    rec = honest["records"]
    dev_setup = {"device_priv": dpriv, "device_random": drand, "pop": C.text_input(pop)}
    cli_setup = {"client_priv": cpriv, "pop": C.text_input(pop), "app_key": app_key}

    # a client with the wrong PoP talking to the honest device
    wrong = C.compute_handshake(handshake_inputs(cpriv, dpriv, "wrong pop", drand, app_key))
    wrong_cmd1 = security1.Security1Client(b"wrong pop", bytes.fromhex(cpriv))
    wrong_cmd1.cmd0()
    resp0_msg = decode_session(bytes.fromhex(honest["session_data"]["resp0"]))
    assert isinstance(resp0_msg, Resp0)
    cmd1_wrong = Handshake(wrong_cmd1.handle_resp0(resp0_msg).encode()).encode().hex()
    # a rogue device with another PoP: its Resp1 verifier is E_{its key}(client_pub) at [32,64)
    rogue_key = security1.session_key(bytes.fromhex(wrong["shared_secret"]), b"wrong pop")
    rogue_verify = crypto.CtrKeystream(rogue_key, bytes.fromhex(drand)).xor_at(
        32, bytes.fromhex(honest["client_pub"])
    )
    resp1_rogue = Handshake(Resp1(rogue_verify).encode()).encode().hex()

    def cmd0_with(pub: bytes) -> str:
        return _rec(_session_data(msg=0, payload="sc0", fields={"client_pubkey": pub}))

    def resp0_with(pub: bytes, rnd: bytes, status: int = 0) -> str:
        fields: dict[str, Any] = {"device_pubkey": pub, "device_random": rnd}
        if status:
            fields["status"] = status
        return _rec(_session_data(msg=1, payload="sr0", fields=fields))

    dev_pub = bytes.fromhex(honest["device_pub"])
    cli_pub = bytes.fromhex(honest["client_pub"])
    r16 = bytes.fromhex(drand)

    cases: list[tuple[str, str, str, dict[str, Any], list[str], str]] = [
        (
            "device-wrong-pop",
            "client used PoP 'wrong pop': its Cmd1 verifier does not match",
            "device",
            dev_setup,
            [rec["cmd0"], cmd1_wrong],
            "pop_mismatch",
        ),
        (
            "device-cmd1-verifier-bit-flip",
            "Cmd1 verifier with one bit flipped",
            "device",
            dev_setup,
            [
                rec["cmd0"],
                _rec(
                    _session_data(
                        msg=2,
                        payload="sc1",
                        fields={
                            "client_verify_data": bytes.fromhex(
                                _flip(honest["client_verify"], 31, 7)
                            )
                        },
                    )
                ),
            ],
            "pop_mismatch",
        ),
        *[
            (
                f"device-low-order-client-key-{name}",
                f"Cmd0 client_pubkey is the low-order point {name}",
                "device",
                dev_setup,
                [cmd0_with(bytes.fromhex(pt))],
                "bad_key",
            )
            for name, pt in LOW_ORDER_POINTS.items()
        ],
        (
            "device-client-key-31-bytes",
            "Cmd0 client_pubkey is 31 bytes",
            "device",
            dev_setup,
            [cmd0_with(cli_pub[:31])],
            "length",
        ),
        (
            "device-client-key-33-bytes",
            "Cmd0 client_pubkey is 33 bytes",
            "device",
            dev_setup,
            [cmd0_with(cli_pub + b"\x00")],
            "length",
        ),
        (
            "device-verifier-31-bytes",
            "Cmd1 client_verify_data is 31 bytes",
            "device",
            dev_setup,
            [
                rec["cmd0"],
                _rec(
                    _session_data(
                        msg=2,
                        payload="sc1",
                        fields={"client_verify_data": bytes.fromhex(honest["client_verify"])[:31]},
                    )
                ),
            ],
            "length",
        ),
        (
            "device-msg-cmd1-payload-sc0",
            "Sec1Payload msg = Cmd1 but sc0 is set",
            "device",
            dev_setup,
            [_rec(_session_data(msg=2, payload="sc0", fields={"client_pubkey": cli_pub}))],
            "oneof_mismatch",
        ),
        (
            "device-msg-cmd0-payload-sc1",
            "Sec1Payload msg = Cmd0 (omitted) but sc1 is set",
            "device",
            dev_setup,
            [
                rec["cmd0"],
                _rec(
                    _session_data(
                        msg=None,
                        payload="sc1",
                        fields={"client_verify_data": bytes.fromhex(honest["client_verify"])},
                    )
                ),
            ],
            "oneof_mismatch",
        ),
        (
            "device-sec1-no-payload",
            "Sec1Payload with no payload at all (missing sc0)",
            "device",
            dev_setup,
            [_rec(_session_data(msg=None))],
            "oneof_mismatch",
        ),
        (
            "device-sec0-payload",
            "sec_ver = 1 but the proto oneof carries sec0",
            "device",
            dev_setup,
            [_rec(_session_data(sec0=True))],
            "oneof_mismatch",
        ),
        (
            "device-sec-ver-0",
            "sec_ver = SecScheme0 with a sec1 Cmd0",
            "device",
            dev_setup,
            [
                _rec(
                    _session_data(
                        sec_ver=0, msg=0, payload="sc0", fields={"client_pubkey": cli_pub}
                    )
                )
            ],
            "sec_ver",
        ),
        (
            "device-sec-ver-2",
            "sec_ver = SecScheme2 with a sec1 Cmd0",
            "device",
            dev_setup,
            [
                _rec(
                    _session_data(
                        sec_ver=2, msg=0, payload="sc0", fields={"client_pubkey": cli_pub}
                    )
                )
            ],
            "sec_ver",
        ),
        (
            "device-not-protobuf",
            "HANDSHAKE data that is not protobuf",
            "device",
            dev_setup,
            [Handshake(b"\xff\xff\xff").encode().hex()],
            "malformed",
        ),
        ("device-cmd1-first", "Cmd1 before Cmd0", "device", dev_setup, [rec["cmd1"]], "unexpected"),
        (
            "device-resp0-received",
            "a Resp0 sent to the device",
            "device",
            dev_setup,
            [rec["resp0"]],
            "unexpected",
        ),
        (
            "device-cmd0-record-truncated",
            "HANDSHAKE record size 41 but 40 data bytes",
            "device",
            dev_setup,
            [rec["cmd0"][:-2]],
            "truncated",
        ),
        (
            "device-key-31-bytes",
            "KEY record with 31 bytes after a good handshake",
            "device",
            dev_setup,
            [rec["cmd0"], rec["cmd1"], "031f" + rec["key"][4:66]],
            "length",
        ),
        (
            "device-key-before-handshake",
            "KEY before Cmd1",
            "device",
            dev_setup,
            [rec["cmd0"], rec["key"]],
            "unexpected",
        ),
        (
            "client-wrong-pop",
            "rogue device with PoP 'wrong pop': Resp1 verifier does not match",
            "client",
            cli_setup,
            [rec["resp0"], resp1_rogue],
            "pop_mismatch",
        ),
        *[
            (
                f"client-low-order-device-key-{name}",
                f"Resp0 device_pubkey is the low-order point {name}",
                "client",
                cli_setup,
                [resp0_with(bytes.fromhex(pt), r16)],
                "bad_key",
            )
            for name, pt in LOW_ORDER_POINTS.items()
            if name in ("zero", "one", "order8_a", "p")
        ],
        (
            "client-device-key-31-bytes",
            "Resp0 device_pubkey is 31 bytes",
            "client",
            cli_setup,
            [resp0_with(dev_pub[:31], r16)],
            "length",
        ),
        (
            "client-device-random-15-bytes",
            "Resp0 device_random is 15 bytes",
            "client",
            cli_setup,
            [resp0_with(dev_pub, r16[:15])],
            "length",
        ),
        (
            "client-resp0-status-error",
            "Resp0 status = CryptoError (6)",
            "client",
            cli_setup,
            [resp0_with(dev_pub, r16, 6)],
            "status",
        ),
        (
            "client-verifier-31-bytes",
            "Resp1 device_verify_data is 31 bytes",
            "client",
            cli_setup,
            [
                rec["resp0"],
                _rec(
                    _session_data(
                        msg=3,
                        payload="sr1",
                        fields={"device_verify_data": bytes.fromhex(honest["device_verify"])[:31]},
                    )
                ),
            ],
            "length",
        ),
        (
            "client-resp1-first",
            "Resp1 before Resp0",
            "client",
            cli_setup,
            [rec["resp1"]],
            "unexpected",
        ),
        (
            "client-msg-resp1-payload-sr0",
            "Sec1Payload msg = Resp1 but sr0 is set",
            "client",
            cli_setup,
            [
                _rec(
                    _session_data(
                        msg=3,
                        payload="sr0",
                        fields={"device_pubkey": dev_pub, "device_random": r16},
                    )
                )
            ],
            "oneof_mismatch",
        ),
        (
            "client-key-resp-bit-flip",
            "KEY_RESP echo with one bit flipped",
            "client",
            cli_setup,
            [rec["resp0"], rec["resp1"], _flip(rec["key_resp"], 2)],
            "key_echo",
        ),
        (
            "client-key-resp-31-bytes",
            "KEY_RESP with 31 bytes",
            "client",
            cli_setup,
            [
                rec["resp0"],
                rec["resp1"],
                KeyResp(bytes.fromhex(rec["key_resp"])[2:33]).encode().hex(),
            ],
            "length",
        ),
    ]

    frame = honest["wire"]
    scan = Header(type=DataType.SECURITY, broadcast=True, src_addr=bytes.fromhex(CLIENT_MAC))
    group_hdr = Header(type=DataType.GROUP, broadcast=True, src_addr=bytes.fromhex(CLIENT_MAC))

    def fr(hdr: Header, payload: bytes) -> str:
        return Frame.build(hdr, payload).encode().hex()

    v1 = bytearray(bytes.fromhex(frame["cmd0"]))
    v1[0] = (v1[0] & 0xCF) | (1 << 4)
    cases += [
        (
            "frame-19-bytes",
            "19 bytes: shorter than the header",
            "frame",
            {},
            [frame["cmd0"][:38]],
            "truncated",
        ),
        (
            "frame-empty-security-payload",
            "SECURITY frame with no payload",
            "frame",
            {},
            [fr(scan, b"")],
            "truncated",
        ),
        ("frame-version-1", "header version 1", "frame", {}, [v1.hex()], "version"),
        (
            "frame-inner-size-exceeds-length",
            "HANDSHAKE record size 41, only 40 bytes follow",
            "frame",
            {},
            [frame["cmd0"][:-2]],
            "truncated",
        ),
        (
            "frame-inner-trailing-byte",
            "HANDSHAKE record followed by one extra byte",
            "frame",
            {},
            [frame["cmd0"] + "00"],
            "malformed",
        ),
        (
            "frame-scan-request-2-bytes",
            "scan REQUEST with a trailing byte",
            "frame",
            {},
            [fr(scan, b"\x00\x00")],
            "malformed",
        ),
        (
            "frame-info-7-bytes",
            "INFO of 7 bytes",
            "frame",
            {},
            [fr(Header(type=DataType.SECURITY_STATUS), Info(0, bytes(6)).encode()[:7])],
            "truncated",
        ),
        (
            "frame-unknown-record-type",
            "security record type 9",
            "frame",
            {},
            [fr(scan, b"\x09\x00")],
            "malformed",
        ),
        (
            "frame-group-count-exceeds-macs",
            "GROUP count 3 with only 2 MACs",
            "frame",
            {},
            [fr(group_hdr, b"\x01SEC\x00\x00\x00\x03" + bytes(12))],
            "truncated",
        ),
        (
            "frame-group-bad-op",
            "GROUP op 7",
            "frame",
            {},
            [fr(group_hdr, b"\x07SEC\x00\x00\x00\x00")],
            "malformed",
        ),
    ]

    data_inputs = {
        "app_key": app_key,
        "nonce": det.hex("n.nonce", 8),
        "plaintext": b"attack at dawn".hex(),
        "header": {
            k: v
            for k, v in _hdr(
                type=DataType.DATA, broadcast=True, src_addr=bytes.fromhex(CLIENT_MAC)
            ).items()
            if k not in ("size", "security")
        },
    }
    good = C.compute_data_frame(data_inputs)["frame"]
    n_ct = 20 + 14  # header + ciphertext bytes: the tag starts here
    plain_hdr = bytearray(bytes.fromhex(good))
    plain_hdr[4] &= ~0x40 & 0xFF
    cases += [
        (
            "data-tag-bit-flip",
            "tag off by one bit (lowest bit of its first byte)",
            "data",
            {"app_key": app_key},
            [_flip(good, n_ct)],
            "auth",
        ),
        (
            "data-tag-last-bit-flip",
            "tag off by one bit (highest bit of its last byte)",
            "data",
            {"app_key": app_key},
            [_flip(good, n_ct + 3, 7)],
            "auth",
        ),
        (
            "data-ciphertext-bit-flip",
            "ciphertext bit flipped",
            "data",
            {"app_key": app_key},
            [_flip(good, 20)],
            "auth",
        ),
        (
            "data-nonce-bit-flip",
            "nonce bit flipped",
            "data",
            {"app_key": app_key},
            [_flip(good, n_ct + 4)],
            "auth",
        ),
        (
            "data-wrong-key",
            "decrypted with another key",
            "data",
            {"app_key": det.hex("n.other_key", 32)},
            [good],
            "auth",
        ),
        (
            "data-11-byte-payload",
            "payload shorter than tag + nonce",
            "data",
            {"app_key": app_key},
            [good[: (20 + 11) * 2]],
            "truncated",
        ),
        (
            "data-security-bit-clear",
            "ciphertext with the header security bit cleared",
            "data",
            {"app_key": app_key},
            [plain_hdr.hex()],
            "malformed",
        ),
    ]

    ks = C.compute_keystore({"app_key": app_key, "provisioner_mac": CLIENT_MAC})["record"]
    cases += [
        ("keystore-crc", "CRC-32 off by one bit", "keystore", {}, [_flip(ks, 43)], "store_corrupt"),
        ("keystore-magic", "magic ESK2", "keystore", {}, ["45534b32" + ks[8:]], "store_corrupt"),
        (
            "keystore-version-2",
            "version 2",
            "keystore",
            {},
            [ks[:8] + "02" + ks[10:]],
            "store_corrupt",
        ),
        ("keystore-short", "46 bytes", "keystore", {}, [ks[:-2]], "store_corrupt"),
    ]

    out = []
    for cid, desc, kind, setup, messages, reason in cases:
        case = C.compute_negative({"kind": kind, "setup": setup, "messages": messages})
        got = case["expect"]
        if got.get("reason") != reason or got.get("at") != len(messages) - 1:
            raise AssertionError(
                f"negative case {cid}: expected reject {reason} at "
                f"{len(messages) - 1}, reference says {got}"
            )
        out.append({"id": cid, "description": desc, **case})
    return out


def build(seed: int) -> dict[str, Any]:
    det = Det(seed)
    return {
        "format_version": FORMAT_VERSION,
        "generator": GENERATOR,
        "protocol": "compat",
        "seed": seed,
        "handshakes": _handshakes(det),
        "header_cases": _header_cases(),
        "frames": _frames(det),
        "data_frames": _data_frames(det),
        "keystore": _keystore(det),
        "negative": _negatives(det),
    }


def dumps(doc: dict[str, Any]) -> str:
    """The one serialisation of a vector document (stable key order, LF, trailing newline)."""
    return json.dumps(doc, indent=2, ensure_ascii=True) + "\n"
