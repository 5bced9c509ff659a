"""Choose vector inputs and build ``vectors/v2.json`` (protocol v2, PROTOCOL.md §14).

Inputs come from :class:`~.generate.Det` (seeded, per-label) or are written out literally;
every output is computed by :mod:`.compute_v2`, so :mod:`.check` can recompute the file.
Scripts (negatives and state scenarios) list every RNG draw the machine makes, recorded while
the generator ran them.
"""

from __future__ import annotations

from typing import Any

from .. import __version__, crypto
from ..protocol.v2 import framing, keyschedule, records
from ..protocol.v2.constants import SUITE_1, FrameType
from ..protocol.v2.control import KeyOp, ResetOp, UnprovisionOp
from ..protocol.v2.data import Sync
from ..protocol.v2.messages import Hs1, Hs2, Hs3
from . import compute_v2 as V
from .compute import text_input
from .generate import LOW_ORDER_POINTS, RFC7748_ALICE_PRIV, RFC7748_BOB_PRIV, Det

FORMAT_VERSION = 1
GENERATOR = f"espnow-sec-keygen {__version__}"
MAC_I = "020000000001"
MAC_R = "020000000002"
MAC_S = "020000000003"  # a third member (data sender)
MAC_X = "0200000000ee"  # a stranger
BCAST = "ff" * 6
Json = dict[str, Any]
Case = tuple[str, str, Json]


def _cases(fn: Any, specs: list[Case]) -> list[Json]:
    return [{"id": i, "description": d, **fn(inp)} for i, d, inp in specs]


# -- primitives (typed in from the RFCs; the generator asserts the reference agrees) ----------
_RFC5869 = [
    (
        "rfc5869-a1",
        "0b" * 22,
        "000102030405060708090a0b0c",
        "f0f1f2f3f4f5f6f7f8f9",
        42,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    ),
    (
        "rfc5869-a2",
        bytes(range(0x00, 0x50)).hex(),
        bytes(range(0x60, 0xB0)).hex(),
        bytes(range(0xB0, 0x100)).hex(),
        82,
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
    ),
    (
        "rfc5869-a3",
        "0b" * 22,
        "",
        "",
        42,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    ),
]
_RFC4231 = [
    (
        "rfc4231-1",
        "0b" * 20,
        b"Hi There".hex(),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
    ),
    (
        "rfc4231-2",
        b"Jefe".hex(),
        b"what do ya want for nothing?".hex(),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
]
_RFC3610 = [
    (
        "rfc3610-packet-1",
        "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf",
        "00000003020100a0a1a2a3a4a5",
        "0001020304050607",
        bytes(range(0x08, 0x1F)).hex(),
        "588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0",
    ),
]


def _primitives() -> list[Json]:
    out = []
    for cid, ikm, salt, info, n, okm in _RFC5869:
        inp = {"alg": "hkdf_sha256", "ikm": ikm, "salt": salt, "info": info, "length": n}
        case = V.compute_primitive(inp)
        assert case["okm"] == okm, cid
        out.append({"id": cid, "description": f"RFC 5869 {cid[-2:].upper()}", **case})
    for cid, key, data, mac in _RFC4231:
        case = V.compute_primitive({"alg": "hmac_sha256", "key": key, "data": data})
        assert case["mac"] == mac, cid
        out.append({"id": cid, "description": f"RFC 4231 test case {cid[-1]}", **case})
    for cid, key, nonce, aad, pt, sealed in _RFC3610:
        inp = {
            "alg": "aes128_ccm",
            "key": key,
            "nonce": nonce,
            "aad": aad,
            "plaintext": pt,
            "tag_len": 8,
        }
        case = V.compute_primitive(inp)
        assert case["sealed"] == sealed, cid
        out.append(
            {
                "id": cid,
                "description": "RFC 3610 packet vector #1 (13-byte nonce, 8-byte tag)",
                **case,
            }
        )
    return out


# -- classification --------------------------------------------------------------------------
def _classification() -> list[Json]:
    specs = [
        ("v2-data", "CF 02 30 ...: a v2 frame", "cf0230000001000000000001"),
        ("v2-short", "CF 02 alone: v2 (the length check of §2.6 rejects it later)", "cf02"),
        ("v2-rev3", "CF 03: another v2 revision", "cf0330000001"),
        ("cf-alone", "CF alone", "cf"),
        ("compat-2a", "compat byte 0 0x2a: type 10 DATA, version 2", "2a0e" + "00" * 18),
        ("compat-6a", "compat byte 0 0x6a: garbage bit 6 set", "6a0e" + "00" * 18),
        ("compat-ea", "compat byte 0 0xea: garbage bits 6-7 set", "ea0e" + "00" * 18),
        ("compat-0c", "compat byte 0 0x0c: version 0 (not compat, not v2)", "0c00" + "00" * 18),
        ("ff", "ff ff ...", "ff" * 8),
        ("empty", "empty body", ""),
    ]
    return _cases(V.compute_classification, [(i, d, {"bytes": b}) for i, d, b in specs])


# -- handshakes -------------------------------------------------------------------------------
def _hs(
    det: Det,
    label: str,
    pop: str,
    e_i: str | None = None,
    e_r: str | None = None,
    mac_i: str = MAC_I,
    mac_r: str = MAC_R,
) -> Json:
    return {
        "mac_i": mac_i,
        "mac_r": mac_r,
        "pop": text_input(pop),
        "sid": int.from_bytes(det.bytes(f"{label}.sid", 4), "big") or 1,
        "e_i_priv": e_i or det.hex(f"{label}.e_i", 32),
        "e_r_priv": e_r or det.hex(f"{label}.e_r", 32),
        "key_delivery": {
            "op": {
                "op": "KEY",
                "activate": True,
                "epoch": 1,
                "grace_s": 30,
                "group_secret": det.hex(f"{label}.g1", 32),
            },
            "ctrl_counter": 0,
            "ack_counter": 0,
        },
    }


def _handshakes(det: Det) -> list[Json]:
    rfc = _hs(det, "rfc", "abcd1234", RFC7748_ALICE_PRIV, RFC7748_BOB_PRIV)
    swapped = dict(rfc, mac_i=MAC_R, mac_r=MAC_I)
    specs = [
        ("rfc7748-pop-abcd1234", "RFC 7748 §6.1 Alice (I) / Bob (R), PoP abcd1234", rfc),
        ("default-pop", "seeded keys, the default PoP espnow_pop", _hs(det, "d", "espnow_pop")),
        ("empty-pop", "seeded keys, empty PoP (hashed like any other value)", _hs(det, "e", "")),
        (
            "pop-64",
            "seeded keys, a 64-byte PoP (the maximum)",
            _hs(det, "l", det.text("l.pop", 64)),
        ),
        ("pop-utf8", "seeded keys, a non-ASCII PoP (its UTF-8 bytes)", _hs(det, "u", "pöp-ключ-✓")),
        (
            "rfc7748-swapped-macs",
            "the first case with mac_I and mac_R swapped: every value changes",
            swapped,
        ),
    ]
    return _cases(V.compute_handshake, specs)


# -- control ----------------------------------------------------------------------------------
def _control(det: Det) -> list[Json]:
    k_dev = det.hex("c.k_dev", 32)
    g1, g2 = det.hex("c.g1", 32), det.hex("c.g2", 32)
    base = {"mac_i": MAC_I, "mac_r": MAC_R, "k_dev": k_dev}

    def key(act: bool, epoch: int, g: str) -> Json:
        return {"op": "KEY", "activate": act, "epoch": epoch, "grace_s": 30, "group_secret": g}

    def ack(req: int, op: int, status: str, cur: int, stg: int, c: int, kc: Json | None) -> Json:
        a: Json = {
            "req_counter": req,
            "op": op,
            "status": status,
            "cur_epoch": cur,
            "staged_epoch": stg,
            "counter": c,
        }
        if kc:
            a["key_check_of"] = kc
        return a

    specs: list[Case] = [
        (
            "key-activate-1",
            "KEY ACTIVATE=1 epoch 1 (newcomer delivery), counter 0; ACK OK",
            {
                **base,
                "op": key(True, 1, g1),
                "counter": 0,
                "ack": ack(0, 1, "OK", 1, 0, 0, {"epoch": 1, "group_secret": g1}),
            },
        ),
        (
            "key-stage-2",
            "KEY ACTIVATE=0 epoch 2 (re-key stage), counter 1023; ACK OK staged 2",
            {
                **base,
                "op": key(False, 2, g2),
                "counter": 1023,
                "ack": ack(1023, 1, "OK", 1, 2, 5, {"epoch": 2, "group_secret": g2}),
            },
        ),
        (
            "key-stale",
            "KEY epoch 1 after epoch 2 is current, counter 1024; ACK STALE_EPOCH",
            {
                **base,
                "op": key(True, 1, g1),
                "counter": 1024,
                "ack": ack(1024, 1, "STALE_EPOCH", 2, 0, 1024, None),
            },
        ),
        (
            "key-conflict",
            "KEY epoch 2 with another secret; ACK EPOCH_CONFLICT",
            {
                **base,
                "op": key(True, 2, g1),
                "counter": 2000,
                "ack": ack(2000, 1, "EPOCH_CONFLICT", 2, 0, 2048, None),
            },
        ),
        (
            "key-store-fail",
            "KEY whose write failed; ACK STORE_FAIL",
            {
                **base,
                "op": key(True, 3, g2),
                "counter": 2001,
                "ack": ack(2001, 1, "STORE_FAIL", 2, 0, 2049, None),
            },
        ),
        (
            "unprovision",
            "UNPROVISION, counter 2^48-1; ACK OK epochs 0",
            {
                **base,
                "op": {"op": "UNPROVISION"},
                "counter": (1 << 48) - 1,
                "ack": ack((1 << 48) - 1, 2, "OK", 0, 0, 3000, None),
            },
        ),
        (
            "reset",
            "RESET window 120 s; ACK OK",
            {
                **base,
                "op": {"op": "RESET", "window_s": 120},
                "counter": 7,
                "ack": ack(7, 3, "OK", 1, 0, 8, None),
            },
        ),
        (
            "bad-op-ack",
            "ACK BAD_OP (op 0x09 echoed)",
            {**base, "ack": ack(9, 9, "BAD_OP", 1, 0, 10, None)},
        ),
    ]
    return _cases(V.compute_control, specs)


# -- data and sync ----------------------------------------------------------------------------
def _data(det: Det) -> list[Json]:
    specs: list[Case] = []
    for epoch in (1, 2, 65535):
        g = det.hex(f"g.{epoch}", 32)
        for n, dst, c in (
            (1, BCAST, 0),
            (16, MAC_R, 1),
            (230, BCAST, 1024),
            (1450, MAC_R, (1 << 48) - 2),
        ):
            if epoch != 1 and n not in (16,):
                continue
            specs.append(
                (
                    f"data-e{epoch}-n{n}-{'bcast' if dst == BCAST else 'ucast'}",
                    f"DATA epoch {epoch}, {n}-byte payload, counter {c}, "
                    f"{'broadcast' if dst == BCAST else 'unicast'}"
                    + (" (long frames only)" if n > 230 else ""),
                    {
                        "type": "DATA",
                        "group_secret": g,
                        "epoch": epoch,
                        "src": MAC_S,
                        "dst": dst,
                        "counter": c,
                        "payload": det.hex(f"p.{epoch}.{n}", n),
                    },
                )
            )
    return _cases(V.compute_group_frame, specs)


def _sync(det: Det) -> list[Json]:
    g = det.hex("g.1", 32)
    ch, ec = det.hex("s.c", 8), det.hex("s.e", 8)
    specs: list[Case] = [
        (
            "sync-challenge",
            "SYNC {c, 0} broadcast",
            {"challenge": ch, "echo": "00" * 8, "dst": BCAST},
        ),
        ("sync-both", "SYNC {c, e} unicast", {"challenge": ch, "echo": ec, "dst": MAC_R}),
        ("sync-echo", "SYNC {0, e} unicast", {"challenge": "00" * 8, "echo": ec, "dst": MAC_R}),
    ]
    return _cases(
        V.compute_group_frame,
        [
            (
                i,
                d,
                {
                    "type": "SYNC",
                    "group_secret": g,
                    "epoch": 1,
                    "src": MAC_S,
                    "counter": 40 + k,
                    **x,
                },
            )
            for k, (i, d, x) in enumerate(specs)
        ],
    )


def _records(det: Det) -> list[Json]:
    z = "00" * 32
    specs: list[Case] = [
        ("ctr", "v2_ctr R = 1024", {"record": "v2_ctr", "fields": {"reserved": 1024}}),
        (
            "grp",
            "v2_grp epoch 3 with 4 staged, rollout",
            {
                "record": "v2_grp",
                "fields": {
                    "epoch": 3,
                    "secret": det.hex("r.g3", 32),
                    "staged_epoch": 4,
                    "staged_secret": det.hex("r.g4", 32),
                    "grace_s": 30,
                    "rollout": True,
                },
            },
        ),
        (
            "resp",
            "v2_resp",
            {
                "record": "v2_resp",
                "fields": {
                    "mac_i": MAC_I,
                    "k_dev": det.hex("r.kd", 32),
                    "ctl_floor": 1025,
                    "epoch": 1,
                    "secret": det.hex("r.g1", 32),
                    "staged_epoch": 0,
                    "staged_secret": z,
                    "grace_s": 30,
                },
            },
        ),
        (
            "dev",
            "v2_dev00 ACTIVE",
            {
                "record": "v2_dev",
                "fields": {
                    "mac": MAC_R,
                    "k_dev": det.hex("r.kd", 32),
                    "k_dev_pending": z,
                    "state": "ACTIVE",
                    "acked_epoch": 1,
                    "staged_acked": 0,
                },
            },
        ),
    ]
    return _cases(V.compute_record, specs)


def _replay() -> list[Json]:
    def frames(*cs: int) -> list[Json]:
        return [{"op": "frame", "c": c} for c in cs]

    c = 1000
    specs: list[Case] = [
        (
            "in-order",
            "synced at c, then c+1..c+4",
            {"sync_at": c, "steps": frames(c + 1, c + 2, c + 3, c + 4)},
        ),
        (
            "reordered",
            "reordered within 64",
            {"sync_at": c, "steps": frames(c + 10, c + 3, c + 9, c + 1, c + 3)},
        ),
        (
            "63-behind",
            "exactly 63 behind the max (oldest in the window)",
            {"sync_at": c, "steps": frames(c + 64, c + 1, c + 1)},
        ),
        ("64-behind", "64 behind the max: too old", {"sync_at": c, "steps": frames(c + 65, c + 1)}),
        ("duplicate", "the same counter twice", {"sync_at": c, "steps": frames(c + 1, c + 1)}),
        (
            "sync-value",
            "the synced value itself and below are seen",
            {"sync_at": c, "steps": frames(c, c - 1, c + 1)},
        ),
        (
            "jump",
            "a jump of 10^6 clears the window",
            {"sync_at": c, "steps": frames(c + 10**6, c + 5, c + 10**6 - 1, c + 10**6)},
        ),
        (
            "sync-later",
            "sync at c then c, c-1, c+1; sync backwards is ignored, forwards moves",
            {
                "sync_at": c,
                "steps": [
                    *frames(c, c - 1, c + 1),
                    {"op": "sync", "c": c - 10},
                    {"op": "sync", "c": c + 100},
                    *frames(c + 100, c + 101),
                ],
            },
        ),
    ]
    return _cases(V.compute_replay, specs)


# -- scripts ----------------------------------------------------------------------------------
class RecordingRng:
    def __init__(self, det: Det, label: str) -> None:
        self.det, self.label, self.draws = det, label, []  # type: ignore[var-annotated]

    def __call__(self, n: int) -> bytes:
        b = self.det.bytes(f"{self.label}.{len(self.draws)}", n)
        self.draws.append(b.hex())
        return b


def _script(det: Det, cid: str, desc: str, setup: Json, steps: list[Json]) -> Json:
    rec = RecordingRng(det, f"script.{cid}")
    V.run_script(setup, steps, rec)
    inputs = {"setup": {**setup, "rng": rec.draws}, "steps": steps}
    return {"id": cid, "description": desc, **V.compute_script(inputs)}


def _member_store(k_dev: bytes, g1: bytes, ctr: int = 0, floor: int = 0) -> Json:
    rec = records.ResponderRecord(bytes.fromhex(MAC_I), k_dev, floor, 1, g1, 0, bytes(32), 30)
    return {"v2_resp": rec.encode().hex(), "v2_ctr": records.CounterRecord(ctr).encode().hex()}


def _rx(t: int, src: str, dst: str, frame: bytes | str) -> Json:
    return {
        "t": t,
        "action": "rx",
        "src": src,
        "dst": dst,
        "frame": frame if isinstance(frame, str) else frame.hex(),
    }


def _flip(b: bytes, i: int, bit: int = 0) -> bytes:
    x = bytearray(b)
    x[i] ^= 1 << bit
    return bytes(x)


def _scripts(det: Det) -> list[Json]:
    out: list[Json] = []
    pop = text_input("espnow_pop")
    k_dev, g1, g2 = det.bytes("m.k_dev", 32), det.bytes("m.g1", 32), det.bytes("m.g2", 32)
    kg1, kg2 = keyschedule.k_grp(1, g1), keyschedule.k_grp(2, g2)
    s_mac, r_mac, i_mac = (bytes.fromhex(m) for m in (MAC_S, MAC_R, MAC_I))
    member = {
        "role": "responder",
        "mac": MAC_R,
        "pop": pop,
        "store": _member_store(k_dev, g1),
        "windows": [{"mac": MAC_S, "max": 99}],
    }

    def data(
        c: int,
        payload: bytes = b"hello v2",
        dst: bytes = r_mac,
        key: bytes = kg1,
        epoch: int = 1,
        src: bytes = s_mac,
    ) -> bytes:
        return framing.seal(key, FrameType.DATA, epoch, c, src, dst, payload)

    good = data(100)
    # replay: immediately, after 100 frames, after the receiver rebooted
    steps = [_rx(10, MAC_S, MAC_R, good), _rx(11, MAC_S, MAC_R, good)]
    out.append(
        _script(
            det, "replay-immediate", "DATA accepted, then the same bytes: replay", member, steps
        )
    )
    steps = [_rx(10, MAC_S, MAC_R, good)] + [
        _rx(11 + i, MAC_S, MAC_R, data(101 + i)) for i in range(100)
    ]
    steps.append(_rx(200, MAC_S, MAC_R, good))
    out.append(
        _script(
            det, "replay-after-100", "DATA c, 100 later frames, then c again: replay", member, steps
        )
    )
    steps = [
        _rx(10, MAC_S, MAC_R, good),
        {"t": 20, "action": "reboot"},
        _rx(30, MAC_S, MAC_R, good),
        _rx(31, MAC_S, MAC_R, data(101)),
    ]
    out.append(
        _script(
            det,
            "replay-after-reboot",
            "receiver reboots (RAM windows lost): the old frame and a new one are "
            "dropped unsynced and start a challenge; never delivered before a sync",
            member,
            steps,
        )
    )
    # every single byte changed
    steps = []
    for i in range(len(good)):
        for bit in (0, 7) if i < 12 else (0,):
            steps.append(_rx(10, MAC_S, MAC_R, _flip(good, i, bit)))
    steps.append(_rx(10, MAC_S, MAC_R, good))
    out.append(
        _script(
            det,
            "every-byte-changed",
            "each header byte with bit 0 and bit 7 flipped, each ciphertext and tag "
            "byte with bit 0 flipped: never delivered; the original is then accepted",
            member,
            steps,
        )
    )
    steps = [
        _rx(10, MAC_S, BCAST, good),
        _rx(10, MAC_X, MAC_R, good),
        *[_rx(10, MAC_S, MAC_R, good[:-k]) for k in range(1, 21)],
        _rx(10, MAC_S, MAC_R, good[:3] + b"\x01" + good[4:]),
        _rx(10, MAC_S, MAC_R, good[:4] + b"\x00\x00" + good[6:]),
        _rx(10, MAC_S, MAC_R, data(100, key=kg2, epoch=2)),
        _rx(10, MAC_S, MAC_R, bytes([0xCF, 0x02, 0x31, 0x00]) + b"plain from a member"),
        _rx(10, MAC_S, MAC_R, good),
    ]
    out.append(
        _script(
            det,
            "readdressed-truncated-flags-epoch-plaintext",
            "re-addressed (dst broadcast, other src), truncated by 1..20, flags 1, "
            "key_epoch 0, an unknown epoch (a removed device cannot be fed epoch 2 "
            "it does not hold), DATA_PLAIN to a secured node; then the original",
            member,
            steps,
        )
    )
    # grace: activation of epoch 2 by KEY at t=1000, previous accepted until t+30 s
    kctl = keyschedule.k_ctl(k_dev, i_mac, r_mac)
    key2 = framing.seal(kctl, FrameType.CTRL, 0, 5, i_mac, r_mac, KeyOp(True, 2, 30, g2).encode())
    steps = [
        _rx(1000, MAC_I, MAC_R, key2),
        _rx(1001, MAC_S, MAC_R, data(100)),
        _rx(30999, MAC_S, MAC_R, data(101)),
        _rx(31000, MAC_S, MAC_R, data(102)),
        _rx(31001, MAC_S, MAC_R, data(200, key=kg2, epoch=2)),
    ]
    out.append(
        _script(
            det,
            "grace",
            "KEY ACTIVATE=1 epoch 2 at t=1000 (grace 30 s): epoch-1 "
            "frames at t+1, t+grace-1 accepted, at t+grace dropped EPOCH",
            member,
            steps,
        )
    )
    # control with bad or missing MAC, replays, other device's key
    other = keyschedule.k_ctl(det.bytes("m.other", 32), i_mac, r_mac)
    unprov = framing.seal(kctl, FrameType.CTRL, 0, 8, i_mac, r_mac, UnprovisionOp().encode())
    unprov6 = UnprovisionOp().encode()
    reset = framing.seal(kctl, FrameType.CTRL, 0, 7, i_mac, r_mac, ResetOp(60).encode())
    steps = [
        _rx(10, MAC_I, MAC_R, _flip(unprov, len(unprov) - 1)),
        _rx(10, MAC_I, MAC_R, unprov[:-16]),
        _rx(10, MAC_I, MAC_R, framing.seal(other, FrameType.CTRL, 0, 6, i_mac, r_mac, unprov6)),
        _rx(10, MAC_X, MAC_R, framing.seal(kctl, FrameType.CTRL, 0, 6, s_mac, r_mac, unprov6)),
        _rx(10, MAC_I, MAC_R, _flip(reset, 13)),
        _rx(10, MAC_I, MAC_R, _flip(key2, 20)),
        _rx(20, MAC_I, MAC_R, reset),
        _rx(21, MAC_I, MAC_R, reset),
        _rx(22, MAC_I, MAC_R, key2),
        _rx(23, MAC_I, MAC_R, unprov),
        _rx(24, MAC_I, MAC_R, unprov),
    ]
    out.append(
        _script(
            det,
            "ctrl-bad-mac",
            "UNPROVISION / RESET / KEY with a flipped tag, no "
            "tag, another device's k_ctl, from another MAC: dropped, nothing written; "
            "then RESET (OK), its duplicate (fresh ACK, no write), a CTRL below "
            "ctl_floor (replay), UNPROVISION (erased) and its duplicate (re-ACK)",
            {**member, "store": _member_store(k_dev, g1, floor=1)},
            steps,
        )
    )
    # after UNPROVISION: only the acknowledged counter is re-ACKed, until LINGER_MS ends
    unprov9 = framing.seal(kctl, FrameType.CTRL, 0, 9, i_mac, r_mac, unprov6)
    steps = [
        _rx(23, MAC_I, MAC_R, unprov),
        _rx(24, MAC_I, MAC_R, unprov),
        _rx(25, MAC_I, MAC_R, unprov9),
        _rx(26, MAC_I, MAC_R, reset),
        _rx(10023, MAC_I, MAC_R, unprov),
    ]
    out.append(
        _script(
            det,
            "unprov-linger",
            "UNPROVISION (c = 8, erased), its duplicate (re-ACK, DUPLICATE); an authentic "
            "CTRL with a higher (9) or lower (7) counter: REPLAY; the duplicate again when "
            "LINGER_MS has run out (no tick in between): STATE, no reply",
            {**member, "store": _member_store(k_dev, g1, floor=1)},
            steps,
        )
    )
    # SYNC limiter first: a refused reply creates no PENDING entry and draws no challenge
    mac_n = "020000000005"

    def sync(src: str, c: int, challenge: int) -> bytes:
        return framing.seal(
            kg1, FrameType.SYNC, 1, c, bytes.fromhex(src), r_mac, Sync(challenge, 0).encode()
        )

    steps = [_rx(100, MAC_S, MAC_R, sync(MAC_S, 200 + k, 0x5100 + k)) for k in range(8)]
    steps += [
        _rx(100, mac_n, MAC_R, sync(mac_n, 50, 0x5200)),
        {"t": 400, "action": "tick"},
        _rx(400, mac_n, MAC_R, sync(mac_n, 51, 0x5201)),
    ]
    out.append(
        _script(
            det,
            "sync-limiter",
            "8 SYNC challenges from a synced member use the SYNC limiter's 8 tokens; a "
            "challenge from an unknown member then is RATE_LIMITED with no PENDING entry "
            "and no draw (no retry at the tick); later it gets a reply with a new challenge",
            member,
            steps,
        )
    )
    # counter reservation across reboots
    steps = [
        {"t": 1, "action": "send_data", "payload": "01", "dst": BCAST},
        {"t": 2, "action": "send_data", "payload": "02", "dst": BCAST},
        {"t": 3, "action": "reboot"},
        {"t": 4, "action": "send_data", "payload": "03", "dst": BCAST},
        {"t": 5, "action": "reboot"},
        {"t": 6, "action": "send_data", "payload": "04", "dst": BCAST},
    ]
    out.append(
        _script(
            det,
            "counter-boot",
            "stored R = 2048: sends use 2048, 2049 (one write "
            "of R = 3072); each boot continues at the stored R and reserves a block",
            {
                **member,
                "store": _member_store(k_dev, g1, ctr=2048),
                "config": {"sync_on_join": False},
            },
            steps,
        )
    )
    out += _handshake_scripts(det, pop)
    return out


def _handshake_scripts(det: Det, pop: Json) -> list[Json]:
    out: list[Json] = []
    i_mac, r_mac = bytes.fromhex(MAC_I), bytes.fromhex(MAC_R)
    fresh = {"role": "responder", "mac": MAC_R, "pop": pop}
    e_i_priv = det.bytes("h.e_i", 32)
    hs1 = Hs1(0x11223344, SUITE_1, crypto.x25519_public(e_i_priv)).encode()
    bad = [
        _rx(0, MAC_I, MAC_R, hs1[:-1]),
        _rx(0, MAC_I, MAC_R, hs1 + b"\x00"),
        _rx(0, MAC_I, MAC_R, hs1[:4] + bytes(4) + hs1[8:]),
        _rx(0, MAC_I, MAC_R, hs1[:8] + b"\x02" + hs1[9:]),
        _rx(0, MAC_I, BCAST, hs1),
    ]
    for pt in LOW_ORDER_POINTS.values():
        bad.append(_rx(100, MAC_I, MAC_R, hs1[:9] + bytes.fromhex(pt)))
    out.append(
        _script(
            det,
            "hs1-invalid",
            "HS1 one byte short / long, sid 0, suite 2, broadcast; "
            "then low-order e_I values (BAD_KEY; each admitted HS1 takes a guess "
            "token, so the last two find the bucket empty: BUSY)",
            fresh,
            bad,
        )
    )
    # wrong PoP, backoff, repeated attempts slowed down; HS3 with another sid
    wrong = _initiator_side(e_i_priv, b"wrong pop", i_mac, r_mac)
    # the responder's HS2 depends on its first draw (e_R), which RecordingRng makes predictable
    e_r_priv = det.bytes("script.pop-wrong.0", 32)
    hs2 = Hs2(0x11223344, crypto.x25519_public(e_r_priv)).encode()
    keys = wrong(hs1, hs2)
    hs3_bad = Hs3(0x11223344, keys.conf_i).encode()
    steps = [
        _rx(0, MAC_I, MAC_R, hs1),
        _rx(1, MAC_I, MAC_R, hs3_bad),
        _rx(2, MAC_I, MAC_R, hs3_bad),
        _rx(500, MAC_I, MAC_R, hs1),
        _rx(1001, MAC_I, MAC_R, Hs1(0x55, SUITE_1, hs1[9:]).encode()),
        _rx(1001, MAC_I, MAC_R, Hs3(0x77, keys.conf_i).encode()),
    ]
    out.append(
        _script(
            det,
            "pop-wrong",
            "wrong PoP: HS_ERR POP_MISMATCH (also for the "
            "retransmitted HS3), nothing stored, the MAC is blocked 1 s (HS1 at "
            "t=500: BUSY retry_after 500), admitted again at t=1001; HS3 with an "
            "unknown sid: NO_SESSION",
            fresh,
            steps,
        )
    )
    # PoP limiter: global bucket over several MACs
    steps = []
    for k in range(7):
        mac = f"0200000001{k:02x}"
        steps.append(_rx(k, mac, MAC_R, Hs1(0x100 + k, SUITE_1, hs1[9:]).encode()))
    steps.append(_rx(10007, "0200000001aa", MAC_R, Hs1(0x1AA, SUITE_1, hs1[9:]).encode()))
    out.append(
        _script(
            det,
            "pop-bucket",
            "7 HS1 from 7 MACs: 2 sessions; then BUSY (no slot) "
            "while sessions are younger than SESSION_MIN_HOLD_MS, the guess bucket "
            "of 5 bounds admissions",
            {**fresh, "config": {"responder_sessions": 8}},
            steps,
        )
    )

    # session slots: BUSY without a hint when no slot is free; the session to evict goes only
    # after the guess token is taken (an empty bucket costs no session)
    def hs1_from(sid: int) -> bytes:
        return Hs1(sid, SUITE_1, hs1[9:]).encode()

    mac_a, mac_b, mac_c = "020000000a01", "020000000a02", "020000000a03"
    steps = [
        _rx(0, mac_a, MAC_R, hs1_from(0x301)),
        _rx(1, mac_b, MAC_R, hs1_from(0x302)),
        _rx(2, mac_c, MAC_R, hs1_from(0x303)),
        _rx(3, mac_a, MAC_R, hs1_from(0x304)),
        _rx(4, mac_a, MAC_R, hs1_from(0x305)),
        _rx(5, mac_a, MAC_R, hs1_from(0x306)),
        _rx(2001, mac_c, MAC_R, hs1_from(0x307)),
        _rx(2002, mac_b, MAC_R, hs1_from(0x302)),
    ]
    out.append(
        _script(
            det,
            "hs1-slots",
            "2 sessions (A, B); C finds no slot while both are younger than "
            "SESSION_MIN_HOLD_MS: BUSY retry_after 0; A restarts 3 times and empties the "
            "guess bucket; C after the hold: B is evictable but no token is left: BUSY "
            "with the time to the next token and B's session kept (its HS1 again gets the "
            "cached HS2)",
            fresh,
            steps,
        )
    )
    # identical HS1 for a CONFIRMED session: cached HS2 (DUPLICATE)
    good = _initiator_side(e_i_priv, b"espnow_pop", i_mac, r_mac)
    e_r_priv = det.bytes("script.hs1-confirmed.0", 32)
    hs2 = Hs2(0x11223344, crypto.x25519_public(e_r_priv)).encode()
    hs3 = Hs3(0x11223344, good(hs1, hs2).conf_i).encode()
    steps = [
        _rx(0, MAC_I, MAC_R, hs1),
        _rx(1, MAC_I, MAC_R, hs3),
        _rx(2, MAC_I, MAC_R, hs1),
        _rx(3, MAC_I, MAC_R, hs1_from(0x99)),
    ]
    out.append(
        _script(
            det,
            "hs1-confirmed",
            "HS1, HS3 (HS4, CONFIRMED); the identical HS1 again: cached HS2, DUPLICATE; "
            "an HS1 with another sid from that MAC: STATE",
            fresh,
            steps,
        )
    )
    # full responder exchange with a duplicate CTRL (lost CTRL_ACK)
    good = _initiator_side(e_i_priv, b"espnow_pop", i_mac, r_mac)
    e_r_priv = det.bytes("script.lost-ack.0", 32)
    hs2 = Hs2(0x11223344, crypto.x25519_public(e_r_priv)).encode()
    keys = good(hs1, hs2)
    hs3 = Hs3(0x11223344, keys.conf_i).encode()
    kctl = keyschedule.k_ctl(keys.k_dev, i_mac, r_mac)
    g = det.bytes("h.g1", 32)
    ctrl = framing.seal(kctl, FrameType.CTRL, 0, 3, i_mac, r_mac, KeyOp(True, 1, 30, g).encode())
    steps = [
        _rx(0, MAC_I, MAC_R, hs1),
        _rx(1, MAC_I, MAC_R, hs3),
        _rx(151, MAC_I, MAC_R, hs3),
        _rx(152, MAC_I, MAC_R, ctrl),
        _rx(302, MAC_I, MAC_R, ctrl),
    ]
    out.append(
        _script(
            det,
            "lost-ack",
            "HS1, HS3 (HS4), HS3 again (cached HS4), CTRL KEY "
            "(installed, one write, PeerSecured), the same CTRL again after a lost "
            "CTRL_ACK: a fresh CTRL_ACK, no write, no second PeerSecured",
            {**fresh, "config": {"sync_on_join": False}},
            steps,
        )
    )
    return out


def _initiator_side(e_i_priv: bytes, pop: bytes, mac_i: bytes, mac_r: bytes) -> Any:
    def keys(hs1: bytes, hs2: bytes) -> keyschedule.HandshakeKeys:
        shared = keyschedule.dh(e_i_priv, hs2[8:40])
        return keyschedule.HandshakeKeys.derive(shared, pop, mac_i, mac_r, hs1, hs2)

    return keys


def build(seed: int) -> dict[str, Any]:
    det = Det(seed)
    return {
        "format_version": FORMAT_VERSION,
        "generator": GENERATOR,
        "protocol": "v2",
        "seed": seed,
        "primitives": _primitives(),
        "classification": _classification(),
        "handshakes": _handshakes(det),
        "control": _control(det),
        "data": _data(det),
        "sync": _sync(det),
        "records": _records(det),
        "replay": _replay(),
        "scripts": _scripts(det),
    }
