"""Show one protocol v2 frame field by field (``keygen decode`` on ``CF 02 ...`` bytes).

Pure: bytes in, lines out; parse problems become lines. A secured frame is decrypted when a
16-byte key (``k_grp(E)`` or ``k_ctl``) and both radio addresses (nonce and AAD need them,
PROTOCOL.md §2.5) are given.
"""

from __future__ import annotations

from .decode import Decoded, mac
from .protocol.v2 import framing
from .protocol.v2.constants import (
    CLEAR_HEADER_LEN,
    SECURED_HEADER_LEN,
    SECURED_TYPES,
    CtrlOp,
    FrameType,
    HsErrCode,
    ScanState,
)
from .protocol.v2.control import CtrlAck, KeyOp, ResetOp, parse_ctrl
from .protocol.v2.data import Sync
from .protocol.v2.errors import V2Error
from .protocol.v2.messages import Hs1, Hs2, Hs3, HsErr, ScanReq, ScanResp


def decode_v2(
    raw: bytes, key: bytes | None = None, src: bytes | None = None, dst: bytes | None = None
) -> Decoded:
    out = Decoded()
    cls, why = framing.classify(raw, "v2")
    if cls is not framing.FrameClass.V2:
        out.lines.append(f"not a v2 frame: {cls.value}{': ' + why if why else ''}")
        return out
    if len(raw) < CLEAR_HEADER_LEN:
        out.lines.append(f"error: {len(raw)} bytes, shorter than a v2 header (4)")
        return out
    try:
        t = FrameType(raw[2])
    except ValueError:
        out.lines.append(f"error: unknown v2 type 0x{raw[2]:02x}")
        return out
    out.lines.append(f"v2 frame: {len(raw)} bytes, type 0x{t:02x} ({t.name})")
    out.add("magic/version", "cf 02")
    out.add("flags", f"0x{raw[3]:02x}" + ("" if raw[3] == 0 else " (reserved bits set: MALFORMED)"))
    if not framing.length_ok(t, len(raw), 1470):
        out.lines.append(f"error: wrong length for {t.name} (PROTOCOL.md §2.3)")
        return out
    if t in SECURED_TYPES:
        return _secured(out, t, raw, key, src, dst)
    _clear(out, t, raw)
    return out


def _clear(out: Decoded, t: FrameType, raw: bytes) -> None:
    try:
        if t is FrameType.SCAN_REQ:
            out.add("scan_id", f"0x{ScanReq.decode(raw).scan_id:08x}")
        elif t is FrameType.SCAN_RESP:
            r = ScanResp.decode(raw)
            state = ScanState(r.state).name if r.state in iter(ScanState) else str(r.state)
            out.add("scan_id", f"0x{r.scan_id:08x}")
            out.add("state", state)
            out.add("epoch", r.epoch)
            out.add("caps", f"0x{r.caps:02x}")
            out.add("pair_id", r.pair_id.hex())
        elif t is FrameType.HS1:
            h1 = Hs1.decode(raw)
            out.add("sid", f"0x{h1.sid:08x}")
            out.add("suite", h1.suite)
            out.add("e_I", h1.e_i.hex())
        elif t is FrameType.HS2:
            h2 = Hs2.decode(raw)
            out.add("sid", f"0x{h2.sid:08x}")
            out.add("e_R", h2.e_r.hex())
        elif t in (FrameType.HS3, FrameType.HS4):
            h3 = Hs3.decode(raw)
            out.add("sid", f"0x{h3.sid:08x}")
            out.add("conf_I" if t is FrameType.HS3 else "conf_R", h3.conf.hex())
        elif t is FrameType.HS_ERR:
            e = HsErr.decode(raw)
            out.add("sid", f"0x{e.sid:08x}")
            out.add("code", f"{int(e.code)} ({HsErrCode(e.code).name})")
            out.add("retry_after_ms", e.retry_after_ms)
        elif t is FrameType.DATA_PLAIN:
            out.add("payload", f"{raw[4:].hex()} ({len(raw) - 4} bytes, NOT authenticated)")
    except V2Error as exc:
        out.lines.append(f"error: {exc}")


def _secured(
    out: Decoded, t: FrameType, raw: bytes, key: bytes | None, src: bytes | None, dst: bytes | None
) -> Decoded:
    hdr = framing.SecuredHeader.decode(raw)
    tl = framing.tag_len(t)
    out.add("key_epoch", hdr.epoch)
    out.add("counter", hdr.counter)
    out.add("ciphertext", raw[SECURED_HEADER_LEN:-tl].hex())
    out.add("tag", raw[-tl:].hex())
    if key is None or src is None or dst is None:
        out.lines.append("(give --key/--group-secret and --src, --dst to decrypt)")
        return out
    out.add("nonce", framing.nonce(src, raw[:12]).hex())
    out.add("aad", framing.aad(raw[:12], src, dst).hex())
    out.add("src / dst", f"{mac(src)} / {mac(dst)}")
    try:
        pt = framing.open_(key, raw, src, dst)
    except V2Error as exc:
        out.lines.append(f"AUTHENTICATION FAILED: {exc}")
        out.auth_failed = True
        return out
    out.add("plaintext", pt.hex())
    try:
        if t is FrameType.CTRL:
            op = parse_ctrl(pt)
            out.add("op", CtrlOp(pt[0]).name)
            if isinstance(op, KeyOp):
                out.add("activate", op.activate)
                out.add("epoch", op.epoch)
                out.add("grace_s", op.grace_s)
                out.add("G", op.group_secret.hex())
            elif isinstance(op, ResetOp):
                out.add("window_s", op.window_s)
        elif t is FrameType.CTRL_ACK:
            a = CtrlAck.decode(pt)
            out.add("req_counter", a.req_counter)
            out.add("op", a.op)
            out.add("status", a.status.name)
            out.add("cur/staged epoch", f"{a.cur_epoch} / {a.staged_epoch}")
            out.add("key_check", a.key_check.hex())
        elif t is FrameType.SYNC:
            s = Sync.decode(pt)
            out.add("challenge", f"{s.challenge:016x}")
            out.add("echo", f"{s.echo:016x}")
    except V2Error as exc:
        out.lines.append(f"body error: {exc}")
    return out
