"""Compute every vector case from its inputs with the reference implementation.

Each ``compute_*`` takes a case's ``inputs`` (JSON types, hex strings) and returns the whole
case as it appears in ``vectors/compat.json``. Generation (:mod:`.generate`) chooses inputs
from a seed and calls these; checking (:mod:`.check`) calls them on the inputs read back from
a file and compares. The schema is documented in ``vectors/README.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from ..protocol import appkey, data, keystore
from ..protocol.errors import ProtocolError, UnexpectedMessage
from ..protocol.frame import DataType, Frame, Header
from ..protocol.records import Group, Handshake, Key, KeyResp, decode_security_payload
from ..protocol.security1 import Security1Client, Security1Device
from ..protocol.session import Cmd0, Cmd1, Resp0, Resp1, decode_session

Json = dict[str, Any]


def h(b: bytes) -> str:
    return bytes(b).hex()


def unh(s: str) -> bytes:
    return bytes.fromhex(s)


def text_input(value: str) -> Json:
    """A text input carries both its UTF-8 string and its hex (protocomm §8 conventions)."""
    return {"utf8": value, "hex": value.encode("utf-8").hex()}


# -- headers -----------------------------------------------------------------------------------
def header_to_json(hdr: Header) -> Json:
    out: Json = {}
    for name, value in hdr.fields().items():
        out[name] = h(value) if isinstance(value, bytes) else _plain(value)
    return out


def _plain(value: Any) -> Any:
    """Enum members and numpy-like ints as plain JSON types (bool stays bool)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    return value


def header_from_json(obj: Json) -> Header:
    kwargs = {k: (unh(v) if k in ("dest_addr", "src_addr") else v) for k, v in obj.items()}
    return Header(**kwargs)


def compute_header_case(inputs: Json) -> Json:
    """Encode a header from its fields; optionally decode raw bytes with reserved bits set."""
    hdr = header_from_json(inputs["header"])
    out: Json = {"inputs": inputs, "bytes": h(hdr.encode())}
    if "decode_bytes" in inputs:
        out["decoded"] = header_to_json(Header.decode(unh(inputs["decode_bytes"])))
    return out


# -- frames ------------------------------------------------------------------------------------
def compute_frame_case(inputs: Json) -> Json:
    """A whole frame: header fields (without ``size``) + payload hex -> frame bytes."""
    hdr = header_from_json(inputs["header"])
    payload = unh(inputs["payload"])
    frame = Frame.build(hdr, payload)
    out: Json = {
        "inputs": inputs,
        "header": header_to_json(frame.header),
        "bytes": h(frame.encode()),
    }
    if hdr.type in (DataType.SECURITY, DataType.SECURITY_STATUS):
        msg = decode_security_payload(payload)
        out["decoded"] = {"record": type(msg).__name__, **_json_fields(msg)}
    elif hdr.type == DataType.GROUP:
        out["decoded"] = {"record": "Group", **_json_fields(Group.decode(payload))}
    return out


def _json_fields(msg: Any) -> Json:
    out: Json = {}
    for f in dataclasses.fields(msg):
        v = getattr(msg, f.name)
        if isinstance(v, bytes):
            out[f.name] = h(v)
        elif isinstance(v, tuple):
            out[f.name] = [h(x) for x in v]
        else:
            out[f.name] = int(v)
    return out


# -- handshakes --------------------------------------------------------------------------------
#: frame name -> (direction, header flags) used for the handshake frames in vectors and `sec1`
HANDSHAKE_FRAMES: dict[str, tuple[str, Json]] = {
    "cmd0": (
        "c2d",
        {
            "broadcast": True,
            "group": True,
            "retransmit_count": 1,
            "filter_adjacent_channel": True,
            "forward_rssi": -65,
        },
    ),
    "resp0": ("d2c", {"retransmit_count": 1, "filter_adjacent_channel": True}),
    "cmd1": ("c2d", {"retransmit_count": 1, "filter_adjacent_channel": True}),
    "resp1": ("d2c", {"retransmit_count": 1, "filter_adjacent_channel": True}),
    "key": ("c2d", {"retransmit_count": 1, "filter_adjacent_channel": True}),
    "key_resp": ("d2c", {"retransmit_count": 1, "filter_adjacent_channel": True}),
}
SEC_GROUP_HEX = b"SEC\x00\x00\x00".hex()


def compute_handshake(inputs: Json) -> Json:
    """Run client and device against each other on fixed inputs; pin every value and byte."""
    pop = unh(inputs["pop"]["hex"])
    app_key = unh(inputs["app_key"])
    client = Security1Client(pop, unh(inputs["client_priv"]))
    device = Security1Device(pop, unh(inputs["device_priv"]), unh(inputs["device_random"]))

    cmd0 = client.cmd0().encode()
    resp0 = device.handle_cmd0_bytes(cmd0)
    cmd1 = client.handle_resp0_bytes(resp0)
    resp1 = device.handle_cmd1_bytes(cmd1)
    client.handle_resp1_bytes(resp1)
    key = appkey.make_key(client, app_key)
    got_key, key_resp = appkey.accept_key(device, key)
    if got_key != app_key:  # pragma: no cover - reference self-check
        raise AssertionError("device decrypted a different app key")
    appkey.check_key_resp(client, app_key, key_resp)
    t = client.transcript()

    session_data = {"cmd0": cmd0, "resp0": resp0, "cmd1": cmd1, "resp1": resp1}
    records = {name: Handshake(sd).encode() for name, sd in session_data.items()}
    records["key"], records["key_resp"] = key.encode(), key_resp.encode()

    stream = [
        _stream_entry(client, "c2d", "cmd1.client_verify", 0, t.device_pub, t.client_verify),
        _stream_entry(client, "d2c", "resp1.device_verify", 32, t.client_pub, t.device_verify),
        _stream_entry(client, "c2d", "key", 64, app_key, key.data),
        _stream_entry(client, "d2c", "key_resp", 96, app_key, key_resp.data),
    ]
    for i, rec in enumerate(inputs.get("extra_records", [])):
        plaintext = unh(rec["plaintext"])
        offset = client.record_stream().offset
        sender, receiver = (client, device) if rec["dir"] == "c2d" else (device, client)
        ct = sender.encrypt(plaintext)
        if receiver.decrypt(ct) != plaintext:  # pragma: no cover - reference self-check
            raise AssertionError("extra record did not round-trip")
        stream.append(_stream_entry(client, rec["dir"], f"extra[{i}]", offset, plaintext, ct))

    headers: Json = {}
    wire: Json = {}
    client_mac, device_mac = inputs["client_mac"], inputs["device_mac"]
    for name, (direction, flags) in HANDSHAKE_FRAMES.items():
        src, dst = (client_mac, device_mac) if direction == "c2d" else (device_mac, client_mac)
        if flags.get("group"):
            dst = SEC_GROUP_HEX
        hdr = Header(
            type=DataType.SECURITY,
            magic=int(inputs["magics"][name]),
            channel=inputs["channel"],
            dest_addr=unh(dst),
            src_addr=unh(src),
            **flags,
        )
        frame = Frame.build(hdr, records[name])
        headers[name] = header_to_json(frame.header)
        wire[name] = h(frame.encode())

    return {
        "inputs": inputs,
        "client_pub": h(t.client_pub),
        "device_pub": h(t.device_pub),
        "shared_secret": h(t.shared_secret),
        "pop_sha256": h(t.pop_sha256) if t.pop_sha256 is not None else None,
        "session_key": h(t.session_key),
        "client_verify": h(t.client_verify),
        "device_verify": h(t.device_verify),
        "session_data": {k: h(v) for k, v in session_data.items()},
        "records": {k: h(v) for k, v in records.items()},
        "stream": stream,
        "headers": headers,
        "wire": wire,
    }


def _stream_entry(
    client: Security1Client,
    direction: str,
    label: str,
    offset: int,
    plaintext: bytes,
    ciphertext: bytes,
) -> Json:
    ks = client.record_stream().keystream(offset, len(plaintext))
    return {
        "dir": direction,
        "label": label,
        "keystream_offset": offset,
        "length": len(plaintext),
        "plaintext": h(plaintext),
        "keystream": h(ks),
        "ciphertext": h(ciphertext),
    }


# -- data frames -------------------------------------------------------------------------------
def compute_data_frame(inputs: Json) -> Json:
    hdr = header_from_json(inputs["header"])
    app_key, nonce, plaintext = (
        unh(inputs["app_key"]),
        unh(inputs["nonce"]),
        unh(inputs["plaintext"]),
    )
    frame = data.protect(app_key, nonce, plaintext, hdr, max_plaintext=data.MAX_PLAINTEXT_V2)
    parts = data.ProtectedPayload.decode(frame.payload)
    pt, _ = data.unprotect(app_key, Frame.decode(frame.encode()))
    if pt != plaintext:  # pragma: no cover - reference self-check
        raise AssertionError("data frame did not round-trip")
    return {
        "inputs": inputs,
        "ccm_key": h(data.data_key(app_key)),
        "ciphertext": h(parts.ciphertext),
        "tag": h(parts.tag),
        "nonce": h(parts.nonce),
        "payload": h(frame.payload),
        "size": frame.header.size,
        "security": frame.header.security,
        "header": header_to_json(frame.header),
        "header_bytes": h(frame.header.encode()),
        "frame": h(frame.encode()),
    }


# -- key store ---------------------------------------------------------------------------------
def compute_keystore(inputs: Json) -> Json:
    rec = keystore.KeyRecord(unh(inputs["app_key"]), unh(inputs["provisioner_mac"]))
    return {"inputs": inputs, "record_name": keystore.RECORD_NAME, "record": h(rec.encode())}


# -- negative cases ----------------------------------------------------------------------------
def _run_device(setup: Json, items: list[bytes]) -> Iterator[None]:
    device = Security1Device(
        unh(setup["pop"]["hex"]), unh(setup["device_priv"]), unh(setup["device_random"])
    )
    for raw in items:
        msg = decode_security_payload(raw)
        if isinstance(msg, Handshake):
            sd = decode_session(msg.data)
            if isinstance(sd, Cmd0):
                device.handle_cmd0(sd)
            elif isinstance(sd, Cmd1):
                device.handle_cmd1(sd)
            else:
                raise UnexpectedMessage(f"device does not accept {type(sd).__name__}")
        elif isinstance(msg, Key):
            appkey.accept_key(device, msg)
        else:
            raise UnexpectedMessage(f"device handshake does not accept {type(msg).__name__}")
        yield


def _run_client(setup: Json, items: list[bytes]) -> Iterator[None]:
    client = Security1Client(unh(setup["pop"]["hex"]), unh(setup["client_priv"]))
    app_key = unh(setup["app_key"])
    client.cmd0()
    for raw in items:
        msg = decode_security_payload(raw)
        if isinstance(msg, Handshake):
            sd = decode_session(msg.data)
            if isinstance(sd, Resp0):
                client.handle_resp0(sd)
            elif isinstance(sd, Resp1):
                client.handle_resp1(sd)
                appkey.make_key(client, app_key)  # the client sends KEY right after Resp1
            else:
                raise UnexpectedMessage(f"client does not accept {type(sd).__name__}")
        elif isinstance(msg, KeyResp):
            appkey.check_key_resp(client, app_key, msg)
        else:
            raise UnexpectedMessage(f"client handshake does not accept {type(msg).__name__}")
        yield


def _run_frame(setup: Json, items: list[bytes]) -> Iterator[None]:
    for raw in items:
        frame = Frame.decode(raw)
        if frame.header.type in (DataType.SECURITY, DataType.SECURITY_STATUS):
            decode_security_payload(frame.payload)
        elif frame.header.type == DataType.GROUP:
            Group.decode(frame.payload)
        yield


def _run_data(setup: Json, items: list[bytes]) -> Iterator[None]:
    for raw in items:
        data.unprotect(unh(setup["app_key"]), Frame.decode(raw))
        yield


def _run_keystore(setup: Json, items: list[bytes]) -> Iterator[None]:
    for raw in items:
        keystore.KeyRecord.decode(raw)
        yield


NEGATIVE_RUNNERS: dict[str, Callable[[Json, list[bytes]], Iterator[None]]] = {
    "device": _run_device,
    "client": _run_client,
    "frame": _run_frame,
    "data": _run_data,
    "keystore": _run_keystore,
}


def outcome(kind: str, setup: Json, inputs: list[str]) -> Json:
    """Feed ``inputs`` in order; report the first rejection (index and reason class)."""
    runner = NEGATIVE_RUNNERS[kind](setup, [unh(x) for x in inputs])
    index = 0  # items fully processed so far = index of the item being processed
    try:
        for _ in runner:
            index += 1
    except ProtocolError as exc:
        return {"outcome": "reject", "reason": exc.reason, "at": index}
    return {"outcome": "accept"}


def compute_negative(case_inputs: Json) -> Json:
    return {
        "inputs": case_inputs,
        "expect": outcome(case_inputs["kind"], case_inputs["setup"], case_inputs["messages"]),
    }
