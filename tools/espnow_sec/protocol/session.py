"""Security 1 session messages (``SessionData`` with a ``sec1`` payload).

reference/protocomm-security.md §1 and §4.4; reference/upstream-espnow-security.md §2.4.
One frozen dataclass per message; :data:`_BINDINGS` is the single declaration from which both
:meth:`SessionMessage.encode` and :func:`decode_session` work. Encoding is proto3 with default
values omitted, fields in number order (what protobuf-c writes): Cmd0 41 bytes, Resp0 61,
Cmd1 43, Resp1 43 with 32-byte keys/verifiers and a 16-byte random.

Decoding checks, in this order (STYLE.md example 3): bytes parse as ``SessionData``
(``malformed``); ``sec_ver`` is SecScheme1 (``sec_ver``); the ``proto`` oneof is ``sec1`` and
``msg`` names the payload that is set (``oneof_mismatch``). Field lengths and status are the
session's business (:mod:`.security1`), so a decoder can show a bad message field by field.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from google.protobuf.message import DecodeError

from . import session_pb as pb
from .errors import Malformed, OneofMismatch, SecVerMismatch, UnexpectedMessage


class Sec1Msg(IntEnum):
    """``Sec1MsgType``."""

    CMD0 = 0
    RESP0 = 1
    CMD1 = 2
    RESP1 = 3


class SessionMessage:
    """Base of the four security1 messages."""

    def encode(self) -> bytes:
        binding = _BINDINGS[type(self)]
        data = pb.SessionData(sec_ver=pb.SEC_SCHEME_1)
        data.sec1.msg = int(binding.msg)
        sub = getattr(data.sec1, binding.oneof)
        sub.SetInParent()  # an empty submessage is still written (tag + length 0)
        for attr, pb_field in binding.fields:
            setattr(sub, pb_field, getattr(self, attr))
        return data.SerializeToString(deterministic=True)


@dataclass(frozen=True)
class Cmd0(SessionMessage):
    client_pubkey: bytes


@dataclass(frozen=True)
class Resp0(SessionMessage):
    device_pubkey: bytes
    device_random: bytes
    status: int = 0


@dataclass(frozen=True)
class Cmd1(SessionMessage):
    client_verify: bytes


@dataclass(frozen=True)
class Resp1(SessionMessage):
    device_verify: bytes
    status: int = 0


@dataclass(frozen=True)
class _Binding:
    msg: Sec1Msg
    oneof: str
    fields: tuple[tuple[str, str], ...]  # (dataclass attribute, protobuf field)


_BINDINGS: dict[type, _Binding] = {
    Cmd0: _Binding(Sec1Msg.CMD0, "sc0", (("client_pubkey", "client_pubkey"),)),
    Resp0: _Binding(
        Sec1Msg.RESP0,
        "sr0",
        (
            ("status", "status"),
            ("device_pubkey", "device_pubkey"),
            ("device_random", "device_random"),
        ),
    ),
    Cmd1: _Binding(Sec1Msg.CMD1, "sc1", (("client_verify", "client_verify_data"),)),
    Resp1: _Binding(
        Sec1Msg.RESP1, "sr1", (("status", "status"), ("device_verify", "device_verify_data"))
    ),
}
_BY_ONEOF = {b.oneof: cls for cls, b in _BINDINGS.items()}

AnySessionMessage = Cmd0 | Resp0 | Cmd1 | Resp1


def decode_session(data: bytes) -> AnySessionMessage:
    """Decode a serialized ``SessionData`` into one of the four security1 messages."""
    msg = pb.SessionData()
    try:
        msg.ParseFromString(bytes(data))
    except DecodeError as exc:
        raise Malformed(f"SessionData does not parse as protobuf: {exc}") from exc
    if msg.sec_ver != pb.SEC_SCHEME_1:
        raise SecVerMismatch(f"SessionData.sec_ver is {msg.sec_ver}, expected 1 (SecScheme1)")
    proto = msg.WhichOneof("proto")
    if proto != "sec1":
        raise OneofMismatch(f"SessionData carries {proto or 'no payload'}, expected sec1")
    payload = msg.sec1.WhichOneof("payload")
    if payload is None:
        raise OneofMismatch(f"Sec1Payload msg={msg.sec1.msg} carries no payload")
    cls = _BY_ONEOF[payload]
    binding = _BINDINGS[cls]
    if msg.sec1.msg != binding.msg:
        raise OneofMismatch(
            f"Sec1Payload msg={msg.sec1.msg} but the payload set is {payload} "
            f"(msg {int(binding.msg)})"
        )
    sub = getattr(msg.sec1, payload)
    values: dict[str, Any] = {attr: getattr(sub, pb_field) for attr, pb_field in binding.fields}
    return cls(**values)  # type: ignore[no-any-return]


def decode_expected(data: bytes, cls: type[SessionMessage]) -> Any:
    """Decode ``data`` and require it to be a ``cls`` (otherwise ``unexpected``)."""
    msg = decode_session(data)
    if not isinstance(msg, cls):
        raise UnexpectedMessage(f"got {type(msg).__name__}, expected {cls.__name__}")
    return msg
