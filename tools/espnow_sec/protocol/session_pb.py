"""Protobuf classes for protocomm ``SessionData``, built at import time without protoc.

The schema is ESP-IDF protocomm's ``session.proto`` / ``sec0.proto`` / ``sec1.proto`` /
``constants.proto`` with the same field numbers and enum values
(reference/protocomm-security.md §1), placed in proto package ``espnow_sec_pb`` (the package of
the C side's ``components/espnow_security/proto/*.proto``). A package name changes no wire byte.

We build a ``FileDescriptorProto`` by hand and let ``message_factory`` make the classes, in a
private descriptor pool, so nothing depends on ``protoc`` or on generated ``_pb2`` files.
Security 2 is not declared: a ``sec2`` payload (field 12) decodes as an unknown field and is
then rejected as "not sec1".
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "espnow_sec_pb"

_F = descriptor_pb2.FieldDescriptorProto

# (name, number) per enum value
_ENUMS: dict[str, tuple[tuple[str, int], ...]] = {
    "Status": (
        ("Success", 0),
        ("InvalidSecScheme", 1),
        ("InvalidProto", 2),
        ("TooManySessions", 3),
        ("InvalidArgument", 4),
        ("InternalError", 5),
        ("CryptoError", 6),
        ("InvalidSession", 7),
    ),
    "SecSchemeVersion": (("SecScheme0", 0), ("SecScheme1", 1), ("SecScheme2", 2)),
    "Sec0MsgType": (("S0_Session_Command", 0), ("S0_Session_Response", 1)),
    "Sec1MsgType": (
        ("Session_Command0", 0),
        ("Session_Response0", 1),
        ("Session_Command1", 2),
        ("Session_Response1", 3),
    ),
}

# message -> fields (name, number, kind, type_name or None, oneof name or None)
_MESSAGES: dict[str, tuple[tuple[str, int, str, str | None, str | None], ...]] = {
    "S0SessionCmd": (),
    "S0SessionResp": (("status", 1, "enum", "Status", None),),
    "Sec0Payload": (
        ("msg", 1, "enum", "Sec0MsgType", None),
        ("sc", 20, "message", "S0SessionCmd", "payload"),
        ("sr", 21, "message", "S0SessionResp", "payload"),
    ),
    "SessionCmd0": (("client_pubkey", 1, "bytes", None, None),),
    "SessionResp0": (
        ("status", 1, "enum", "Status", None),
        ("device_pubkey", 2, "bytes", None, None),
        ("device_random", 3, "bytes", None, None),
    ),
    "SessionCmd1": (("client_verify_data", 2, "bytes", None, None),),
    "SessionResp1": (
        ("status", 1, "enum", "Status", None),
        ("device_verify_data", 3, "bytes", None, None),
    ),
    "Sec1Payload": (
        ("msg", 1, "enum", "Sec1MsgType", None),
        ("sc0", 20, "message", "SessionCmd0", "payload"),
        ("sr0", 21, "message", "SessionResp0", "payload"),
        ("sc1", 22, "message", "SessionCmd1", "payload"),
        ("sr1", 23, "message", "SessionResp1", "payload"),
    ),
    "SessionData": (
        ("sec_ver", 2, "enum", "SecSchemeVersion", None),
        ("sec0", 10, "message", "Sec0Payload", "proto"),
        ("sec1", 11, "message", "Sec1Payload", "proto"),
    ),
}

_KINDS = {"bytes": _F.TYPE_BYTES, "enum": _F.TYPE_ENUM, "message": _F.TYPE_MESSAGE}


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="espnow_sec_pb/session.proto", package=PACKAGE, syntax="proto3"
    )
    for enum_name, values in _ENUMS.items():
        enum = fdp.enum_type.add(name=enum_name)
        for value_name, number in values:
            enum.value.add(name=value_name, number=number)
    for msg_name, fields in _MESSAGES.items():
        msg = fdp.message_type.add(name=msg_name)
        oneofs: list[str] = []
        for name, number, kind, type_name, oneof in fields:
            fld = msg.field.add(
                name=name, number=number, label=_F.LABEL_OPTIONAL, type=_KINDS[kind]
            )
            if type_name:
                fld.type_name = f".{PACKAGE}.{type_name}"
            if oneof:
                if oneof not in oneofs:
                    oneofs.append(oneof)
                    msg.oneof_decl.add(name=oneof)
                fld.oneof_index = oneofs.index(oneof)
    return fdp


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file_descriptor())


def _cls(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{PACKAGE}.{name}"))


SessionData: Any = _cls("SessionData")
Sec0Payload: Any = _cls("Sec0Payload")
Sec1Payload: Any = _cls("Sec1Payload")
SessionCmd0: Any = _cls("SessionCmd0")
SessionResp0: Any = _cls("SessionResp0")
SessionCmd1: Any = _cls("SessionCmd1")
SessionResp1: Any = _cls("SessionResp1")

SEC_SCHEME_1 = 1
STATUS_SUCCESS = 0
