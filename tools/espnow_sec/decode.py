"""Show one frame field by field, decrypting it when a key allows (``keygen decode``).

Pure: bytes in, lines out. Parse errors are reported as lines, not exceptions, so a damaged
capture still shows every field that could be read; they are also collected in ``errors`` so the
command line can exit non-zero (a frame too short for its header gives no lines, only an error).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .protocol import data
from .protocol.errors import ProtocolError
from .protocol.frame import HEADER_LEN, SEC_GROUP_ID, DataType, Frame, Header, payload_size_byte
from .protocol.records import (
    Group,
    GroupOp,
    Handshake,
    Info,
    Key,
    KeyResp,
    RecordType,
    Rest,
    ScanRequest,
    decode_security_payload,
)
from .protocol.session import Cmd0, Cmd1, Resp0, Resp1, decode_session

#: Largest ESP-NOW v1 frame body (ESP_NOW_MAX_DATA_LEN): no compat radio sends more.
FRAME_MAX = 250


@dataclass
class Decoded:
    lines: list[str] = field(default_factory=list)
    auth_failed: bool = False
    errors: list[str] = field(default_factory=list)

    def add(self, name: str, value: object, indent: int = 2) -> None:
        self.lines.append(f"{' ' * indent}{name:<24}{value}")

    def error(self, name: str, exc: object) -> None:
        self.add(name, exc)
        self.errors.append(str(exc))


def mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def _type_name(t: int) -> str:
    try:
        return DataType(t).name
    except ValueError:  # pragma: no cover - 4 bits, every value is named
        return "?"


def decode_frame(raw: bytes, key: bytes | None = None) -> Decoded:
    out = Decoded()
    try:
        hdr = Header.decode(raw)
    except ProtocolError as exc:
        out.errors.append(str(exc))
        return out
    payload = raw[HEADER_LEN:]
    out.lines.append(f"frame: {len(raw)} bytes (header {HEADER_LEN}, payload {len(payload)})")
    if len(raw) > FRAME_MAX:
        out.lines.append(
            f"  note: longer than {FRAME_MAX} bytes, the ESP-NOW v1 maximum: no radio sends it"
        )
    out.lines.append("header:")
    out.add("type", f"{hdr.type} ({_type_name(hdr.type)})")
    out.add(
        "version", f"{hdr.version}" + ("" if hdr.version == 2 else "  <- not 2: receivers drop it")
    )
    match = (
        "matches"
        if hdr.size == payload_size_byte(len(payload))
        else (f"MISMATCH: payload is {len(payload)} bytes; esp-now <= 2.5.3 receivers drop it")
    )
    out.add("size", f"{hdr.size} ({match})")
    out.add("magic", f"0x{hdr.magic:04x}")
    out.add("channel", hdr.channel)
    for name in (
        "filter_adjacent_channel",
        "filter_weak_signal",
        "security",
        "broadcast",
        "group",
        "ack",
    ):
        out.add(name, int(getattr(hdr, name)))
    out.add("retransmit_count", hdr.retransmit_count)
    out.add("forward_ttl", hdr.forward_ttl)
    out.add("forward_rssi", f"{hdr.forward_rssi} dBm")
    dest = mac(hdr.dest_addr) + (" (SEC group)" if hdr.dest_addr == SEC_GROUP_ID else "")
    out.add("dest_addr", dest)
    out.add("src_addr", mac(hdr.src_addr))
    out.lines.append(f"payload ({len(payload)} bytes):")
    if hdr.security:
        _secured(out, Frame(hdr, payload), key)
    elif hdr.type in (DataType.SECURITY, DataType.SECURITY_STATUS):
        _security(out, payload)
    elif hdr.type == DataType.GROUP:
        _group(out, payload)
    else:
        out.add("data", payload.hex() or "(empty)")
        out.add("text", _printable(payload))
    return out


def _printable(b: bytes) -> str:
    return repr(b.decode("utf-8", errors="replace"))


def _secured(out: Decoded, frame: Frame, key: bytes | None) -> None:
    try:
        parts = data.ProtectedPayload.decode(frame.payload)
    except ProtocolError as exc:
        out.error("error", exc)
        return
    out.add("ciphertext", parts.ciphertext.hex() or "(empty)")
    out.add("tag", parts.tag.hex())
    out.add("nonce", parts.nonce.hex())
    if key is None:
        out.add("plaintext", "(give --key to decrypt)")
        return
    try:
        plaintext, _ = data.unprotect(key, frame)
    except ProtocolError as exc:
        out.auth_failed = True
        out.add("decrypt", f"FAILED: {exc}")
        return
    out.add("decrypt", "OK (AES-128-CCM tag verified)")
    out.add("plaintext", plaintext.hex() or "(empty)")
    out.add("text", _printable(plaintext))


def _security(out: Decoded, payload: bytes) -> None:
    try:
        msg = decode_security_payload(payload)
    except ProtocolError as exc:
        out.error("error", exc)
        return
    if isinstance(msg, ScanRequest):
        out.add("record", "REQUEST (0): scan request")
    elif isinstance(msg, Info):
        out.add("record", "INFO (1): scan reply")
        out.add("sec_ver", f"{msg.sec_ver} ({'configured' if msg.sec_ver else 'not configured'})")
        out.add("client_mac", mac(msg.client_mac))
    elif isinstance(msg, Rest):
        out.add("record", "REST (5): unauthenticated reset request")
    elif isinstance(msg, Handshake):
        out.add("record", f"HANDSHAKE (2), size {len(msg.data)}")
        _session(out, msg.data)
    elif isinstance(msg, (Key, KeyResp)):
        kind = RecordType.KEY if isinstance(msg, Key) else RecordType.KEY_RESP
        out.add("record", f"{kind.name} ({int(kind)}), size {len(msg.data)}")
        out.add("data", msg.data.hex())
        out.add("note", "AES-256-CTR under the session key; one frame alone cannot be decrypted")


def _session(out: Decoded, raw: bytes) -> None:
    try:
        msg = decode_session(raw)
    except ProtocolError as exc:
        out.error("SessionData", f"rejected: {exc}")
        out.add("raw", raw.hex())
        return
    out.add("SessionData", f"sec_ver 1, {type(msg).__name__}")
    if isinstance(msg, Cmd0):
        out.add("client_pubkey", msg.client_pubkey.hex(), 4)
    elif isinstance(msg, Resp0):
        out.add("status", msg.status, 4)
        out.add("device_pubkey", msg.device_pubkey.hex(), 4)
        out.add("device_random", msg.device_random.hex(), 4)
    elif isinstance(msg, Cmd1):
        out.add("client_verify_data", msg.client_verify.hex(), 4)
    elif isinstance(msg, Resp1):
        out.add("status", msg.status, 4)
        out.add("device_verify_data", msg.device_verify.hex(), 4)


def _group(out: Decoded, payload: bytes) -> None:
    try:
        grp = Group.decode(payload)
    except ProtocolError as exc:
        out.error("error", exc)
        return
    out.add("op", f"{grp.op} ({GroupOp(grp.op).name.lower()})")
    gid = mac(grp.group_id) + (" (SEC group)" if grp.group_id == SEC_GROUP_ID else "")
    out.add("group_id", gid)
    out.add("count", len(grp.macs))
    for i, m in enumerate(grp.macs):
        out.add(f"mac[{i}]", mac(m), 4)
