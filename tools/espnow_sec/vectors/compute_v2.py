"""Compute every ``vectors/v2.json`` case from its inputs with the v2 reference.

Each ``compute_*`` takes a case's ``inputs`` (JSON types, hex strings) and returns the whole
case. :mod:`.generate_v2` chooses inputs and calls these; :mod:`.check` calls them on the inputs
read back from a file and compares. Schema: ``vectors/README.md`` ("v2.json").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import crypto
from ..protocol.v2 import control, framing, keyschedule, records
from ..protocol.v2.constants import (
    L_CONF_I,
    L_CONF_R,
    L_CTL,
    L_DATA,
    L_DEV,
    L_GROUP,
    L_PAIR,
    SUITE_1,
    AckStatus,
    FrameType,
    V2Config,
)
from ..protocol.v2.data import Sync
from ..protocol.v2.events import Event
from ..protocol.v2.initiator import Initiator
from ..protocol.v2.messages import Hs1, Hs2, Hs3, Hs4
from ..protocol.v2.node import V2Node
from ..protocol.v2.replay import Window
from ..protocol.v2.responder import Responder
from ..protocol.v2.store import MemoryStore
from .compute import h, unh

Json = dict[str, Any]


def text_bytes(t: Json) -> bytes:
    return unh(t["hex"])


# -- primitives --------------------------------------------------------------------------------
def compute_primitive(inputs: Json) -> Json:
    alg = inputs["alg"]
    if alg == "hkdf_sha256":
        salt, ikm, info = unh(inputs["salt"]), unh(inputs["ikm"]), unh(inputs["info"])
        return {
            "inputs": inputs,
            "prk": h(crypto.hkdf_sha256_extract(salt, ikm)),
            "okm": h(crypto.hkdf_sha256(salt, ikm, info, inputs["length"])),
        }
    if alg == "hmac_sha256":
        return {
            "inputs": inputs,
            "mac": h(crypto.hmac_sha256(unh(inputs["key"]), unh(inputs["data"]))),
        }
    if alg == "aes128_ccm":
        out = crypto.ccm13_encrypt(
            unh(inputs["key"]),
            unh(inputs["nonce"]),
            unh(inputs["plaintext"]),
            unh(inputs["aad"]),
            inputs["tag_len"],
        )
        return {"inputs": inputs, "sealed": h(out)}
    raise ValueError(f"unknown primitive {alg!r}")


# -- classification ------------------------------------------------------------------------------
def compute_classification(inputs: Json) -> Json:
    body = unh(inputs["bytes"])
    out: Json = {"inputs": inputs}
    for mode in ("v2", "compat"):
        cls, log = framing.classify(body, mode)
        out[mode] = {"class": cls.value, "log": log}
    return out


# -- handshake ----------------------------------------------------------------------------------
def _secured(
    key: bytes, type_: FrameType, epoch: int, counter: int, src: bytes, dst: bytes, pt: bytes
) -> Json:
    frame = framing.seal(key, type_, epoch, counter, src, dst, pt)
    hdr = frame[:12]
    tl = framing.tag_len(type_)
    return {
        "plaintext": h(pt),
        "header": h(hdr),
        "nonce": h(framing.nonce(src, hdr)),
        "aad": h(framing.aad(hdr, src, dst)),
        "ciphertext": h(frame[12:-tl]),
        "tag": h(frame[-tl:]),
        "frame": h(frame),
    }


def key_op_from_json(o: Json) -> control.CtrlBody:
    if o["op"] == "KEY":
        return control.KeyOp(o["activate"], o["epoch"], o["grace_s"], unh(o["group_secret"]))
    if o["op"] == "UNPROVISION":
        return control.UnprovisionOp()
    if o["op"] == "RESET":
        return control.ResetOp(o["window_s"])
    raise ValueError(f"unknown op {o['op']!r}")


def compute_handshake(inputs: Json) -> Json:
    mac_i, mac_r = unh(inputs["mac_i"]), unh(inputs["mac_r"])
    pop = text_bytes(inputs["pop"])
    e_i_priv, e_r_priv = unh(inputs["e_i_priv"]), unh(inputs["e_r_priv"])
    e_i, e_r = crypto.x25519_public(e_i_priv), crypto.x25519_public(e_r_priv)
    sid = inputs["sid"]
    hs1 = Hs1(sid, SUITE_1, e_i).encode()
    hs2 = Hs2(sid, e_r).encode()
    dh_i = keyschedule.dh(e_i_priv, e_r)
    if keyschedule.dh(e_r_priv, e_i) != dh_i:
        raise AssertionError("X25519 disagrees between the roles")
    ks = keyschedule.HandshakeKeys.derive(dh_i, pop, mac_i, mac_r, hs1, hs2)
    hs3 = Hs3(sid, ks.conf_i).encode()
    t3 = keyschedule.th3(ks.th2, hs3)
    conf_r = ks.conf_r(t3)
    hs4 = Hs4(sid, conf_r).encode()
    k_ctl = keyschedule.k_ctl(ks.k_dev, mac_i, mac_r)
    out: Json = {
        "inputs": inputs,
        "pop_hash": h(ks.pop_hash),
        "e_i": h(e_i),
        "e_r": h(e_r),
        "hs1": h(hs1),
        "hs2": h(hs2),
        "dh": h(dh_i),
        "th2": h(ks.th2),
        "ikm": h(ks.ikm),
        "hkdf": {
            "salt": h(ks.th2),
            "info_conf_i": h(L_CONF_I),
            "info_conf_r": h(L_CONF_R),
            "info_dev": h(L_DEV),
            "prk": h(crypto.hkdf_sha256_extract(ks.th2, ks.ikm)),
        },
        "k_conf_i": h(ks.k_conf_i),
        "k_conf_r": h(ks.k_conf_r),
        "k_dev": h(ks.k_dev),
        "conf_i": h(ks.conf_i),
        "hs3": h(hs3),
        "th3": h(t3),
        "conf_r": h(conf_r),
        "hs4": h(hs4),
        "k_ctl_hkdf": {"salt": h(L_PAIR), "ikm": h(ks.k_dev), "info": h(L_CTL + mac_i + mac_r)},
        "k_ctl": h(k_ctl),
        "pair_id": h(keyschedule.pair_id(ks.k_dev)),
    }
    kd = inputs.get("key_delivery")
    if kd is not None:
        op = key_op_from_json(kd["op"])
        assert isinstance(op, control.KeyOp)
        kc = keyschedule.key_check(ks.k_dev, op.epoch, op.group_secret)
        ack = control.CtrlAck(kd["ctrl_counter"], op.op, AckStatus.OK, op.epoch, 0, kc)
        out["key_delivery"] = {
            "ctrl": _secured(
                k_ctl, FrameType.CTRL, 0, kd["ctrl_counter"], mac_i, mac_r, op.encode()
            ),
            "key_check": h(kc),
            "ctrl_ack": _secured(
                k_ctl, FrameType.CTRL_ACK, 0, kd["ack_counter"], mac_r, mac_i, ack.encode()
            ),
        }
    return out


# -- control ------------------------------------------------------------------------------------
def compute_control(inputs: Json) -> Json:
    mac_i, mac_r, k_dev = unh(inputs["mac_i"]), unh(inputs["mac_r"]), unh(inputs["k_dev"])
    k_ctl = keyschedule.k_ctl(k_dev, mac_i, mac_r)
    out: Json = {"inputs": inputs, "k_ctl": h(k_ctl)}
    if "op" in inputs:
        op = key_op_from_json(inputs["op"])
        out["ctrl"] = _secured(
            k_ctl, FrameType.CTRL, 0, inputs["counter"], mac_i, mac_r, op.encode()
        )
    if "ack" in inputs:
        a = inputs["ack"]
        kc = bytes(16)
        if "key_check_of" in a:
            kco = a["key_check_of"]
            kc = keyschedule.key_check(k_dev, kco["epoch"], unh(kco["group_secret"]))
        ack = control.CtrlAck(
            a["req_counter"], a["op"], AckStatus[a["status"]], a["cur_epoch"], a["staged_epoch"], kc
        )
        out["ctrl_ack"] = _secured(
            k_ctl, FrameType.CTRL_ACK, 0, a["counter"], mac_r, mac_i, ack.encode()
        )
    return out


# -- data and sync ------------------------------------------------------------------------------
def compute_group_frame(inputs: Json) -> Json:
    g, epoch = unh(inputs["group_secret"]), inputs["epoch"]
    key = keyschedule.k_grp(epoch, g)
    src, dst = unh(inputs["src"]), unh(inputs["dst"])
    out: Json = {
        "inputs": inputs,
        "k_grp_hkdf": {
            "salt": h(L_GROUP),
            "ikm": h(g),
            "info": h(L_DATA + epoch.to_bytes(2, "big")),
        },
        "k_grp": h(key),
    }
    if inputs["type"] == "DATA":
        out.update(
            _secured(
                key, FrameType.DATA, epoch, inputs["counter"], src, dst, unh(inputs["payload"])
            )
        )
    else:
        pt = Sync(int(inputs["challenge"], 16), int(inputs["echo"], 16)).encode()
        out.update(_secured(key, FrameType.SYNC, epoch, inputs["counter"], src, dst, pt))
    out["length"] = len(unh(out["frame"]))
    return out


# -- storage records ----------------------------------------------------------------------------
def compute_record(inputs: Json) -> Json:
    kind, f = inputs["record"], inputs["fields"]
    rec: Any
    if kind == "v2_ctr":
        rec = records.CounterRecord(f["reserved"])
    elif kind == "v2_grp":
        rec = records.GroupRecord(
            f["epoch"],
            unh(f["secret"]),
            f["staged_epoch"],
            unh(f["staged_secret"]),
            f["grace_s"],
            f["rollout"],
        )
    elif kind == "v2_resp":
        rec = records.ResponderRecord(
            unh(f["mac_i"]),
            unh(f["k_dev"]),
            f["ctl_floor"],
            f["epoch"],
            unh(f["secret"]),
            f["staged_epoch"],
            unh(f["staged_secret"]),
            f["grace_s"],
        )
    elif kind == "v2_dev":
        rec = records.DeviceRecord(
            unh(f["mac"]),
            unh(f["k_dev"]),
            unh(f["k_dev_pending"]),
            records.DeviceState[f["state"]],
            f["acked_epoch"],
            f["staged_acked"],
        )
    else:
        raise ValueError(f"unknown record {kind!r}")
    data = rec.encode()
    if type(rec).decode(data) != rec:
        raise AssertionError(f"{kind} does not round-trip")
    return {"inputs": inputs, "bytes": h(data), "length": len(data)}


# -- replay windows -----------------------------------------------------------------------------
def compute_replay(inputs: Json) -> Json:
    w = Window(inputs["sync_at"])
    results = []
    for step in inputs["steps"]:
        if step["op"] == "sync":
            w.sync(step["c"])
            results.append({"max": w.max, "bitmap": f"{w.bitmap:016x}"})
            continue
        ok = w.check(step["c"])
        if ok:
            w.commit(step["c"])
        results.append(
            {"result": "accept" if ok else "replay", "max": w.max, "bitmap": f"{w.bitmap:016x}"}
        )
    return {"inputs": inputs, "results": results}


# -- scripts: a machine driven step by step -----------------------------------------------------
class ScriptedRng:
    """Returns the listed draws in order; a draw of another length is an error."""

    def __init__(self, draws: list[str]) -> None:
        self.draws = [unh(d) for d in draws]
        self.used = 0

    def __call__(self, n: int) -> bytes:
        if self.used >= len(self.draws):
            raise ValueError(f"script RNG exhausted at draw {self.used} ({n} bytes wanted)")
        d = self.draws[self.used]
        if len(d) != n:
            raise ValueError(f"script RNG draw {self.used} has {len(d)} bytes, {n} wanted")
        self.used += 1
        return d


def event_json(e: Event) -> Json:
    out: Json = {"event": type(e).__name__}
    for k, v in vars(e).items():
        if isinstance(v, bytes):
            out[k] = h(v)
        elif isinstance(v, tuple):
            out[k] = [h(x) for x in v]
        else:
            out[k] = v
    return out


def _config(setup: Json) -> V2Config:
    kw = dict(setup.get("config", {}))
    return V2Config(mac=unh(setup["mac"]), pop=text_bytes(setup["pop"]), **kw)


def make_node(setup: Json, rng: Callable[[int], bytes], store: MemoryStore) -> V2Node:
    cls: Callable[..., V2Node] = Initiator if setup["role"] == "initiator" else Responder
    return cls(_config(setup), rng, store, setup.get("t0", 0))


def _prepare(node: V2Node, setup: Json) -> None:
    for w in setup.get("windows", []):
        cur = node.epochs.current
        assert cur is not None
        cur.table.sync_at(unh(w["mac"]), w["max"], node.now_ms)


def run_script(
    setup: Json, steps: list[Json], rng: Callable[[int], bytes] | None = None
) -> list[Json]:
    """Drive one machine through ``steps``; ``rng`` overrides the listed draws (generator)."""
    scripted = ScriptedRng(setup.get("rng", []))
    rng = rng if rng is not None else scripted
    store = MemoryStore({k: unh(v) for k, v in setup.get("store", {}).items()})
    node = make_node(setup, rng, store)
    _prepare(node, setup)
    results = []
    for step in steps:
        before = dict(node.stats)
        writes = len(store.writes)
        t = step["t"]
        a = step["action"]
        err = None
        try:
            if a == "rx":
                out = node.on_frame(unh(step["src"]), unh(step["dst"]), unh(step["frame"]), t)
            elif a == "tick":
                out = node.tick(t)
            elif a == "send_data":
                out = node.tick(t) + node.send_data(unh(step["payload"]), unh(step["dst"]))
            elif a == "reboot":
                node = make_node({**setup, "t0": t}, rng, store)
                out = node.start(t) if isinstance(node, Responder) else []
            elif a in ("provision", "rekey"):
                out = getattr(node, a)(t)
            elif a == "remove":
                assert isinstance(node, Initiator)
                out = node.remove(unh(step["mac"]), t)
            else:
                raise ValueError(f"unknown action {a!r}")
        except Exception as exc:  # noqa: BLE001 - an operation error is an outcome
            reason = getattr(exc, "reason", None)
            if reason is None:
                raise
            out, err = [], reason
        drops = sorted(
            k[5:] for k, v in node.stats.items() if k.startswith("drop_") and v > before.get(k, 0)
        )
        res: Json = {
            "out": [{"dst": h(o.dst), "frame": h(o.frame)} for o in out],
            "drops": drops,
            "events": [event_json(e) for e in node.take_events()],
            "writes": [
                {"name": n, "data": h(d) if d is not None else None}
                for n, d in store.writes[writes:]
            ],
        }
        if err is not None:
            res["error"] = err
        results.append(res)
    if rng is scripted and scripted.used != len(scripted.draws):
        raise ValueError(f"script lists {len(scripted.draws)} RNG draws, {scripted.used} used")
    return results


def compute_script(inputs: Json) -> Json:
    return {"inputs": inputs, "results": run_script(inputs["setup"], inputs["steps"])}
