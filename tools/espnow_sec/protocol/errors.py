"""Exceptions of the compat protocol reference.

Every rejection raises a subclass of :class:`ProtocolError` whose ``reason`` is one of a fixed
set of short strings. The same strings are the ``reason`` classes in ``vectors/compat.json`` (see
``vectors/README.md``), so the C implementation can map its own error codes onto them:

=================  ===================================================================
reason             meaning
=================  ===================================================================
``truncated``      fewer bytes than the layout needs (header, record ``size``, CCM tail)
``malformed``      bytes that do not parse: bad protobuf, unknown type, trailing bytes
``version``        outer header ``version`` is not 2
``sec_ver``        ``SessionData.sec_ver`` is not SecScheme1, or the oneof is not ``sec1``
``oneof_mismatch`` ``Sec1Payload.msg`` does not name the payload that is set
``length``         a key, random or verifier of the wrong length (e.g. 31-byte pubkey)
``status``         a response with ``status`` other than Success
``bad_key``        an X25519 public key that gives the all-zero secret (low order)
``pop_mismatch``   a security1 verifier that does not match (different PoP)
``key_echo``       KEY_RESP does not decrypt to the app key that was sent
``unexpected``     a well-formed message that is wrong for the current state
``auth``           an AES-CCM tag that does not verify
``store_corrupt``  a key-store record with a bad magic, version, length or CRC
=================  ===================================================================
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """A message or frame was rejected. ``reason`` is the stable reason class."""

    reason = "malformed"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class Truncated(ProtocolError):
    reason = "truncated"


class Malformed(ProtocolError):
    reason = "malformed"


class BadVersion(ProtocolError):
    reason = "version"


class SecVerMismatch(ProtocolError):
    reason = "sec_ver"


class OneofMismatch(ProtocolError):
    reason = "oneof_mismatch"


class BadLength(ProtocolError):
    reason = "length"


class BadStatus(ProtocolError):
    reason = "status"


class BadPublicKey(ProtocolError):
    reason = "bad_key"


class PopMismatch(ProtocolError):
    reason = "pop_mismatch"


class KeyEchoMismatch(ProtocolError):
    reason = "key_echo"


class UnexpectedMessage(ProtocolError):
    reason = "unexpected"


class AuthFailed(ProtocolError):
    reason = "auth"


class StoreCorrupt(ProtocolError):
    reason = "store_corrupt"


class SessionFailed(ProtocolError):
    """A call on a security1 session that already failed (failure is sticky)."""

    reason = "unexpected"


REASONS: tuple[str, ...] = (
    "truncated",
    "malformed",
    "version",
    "sec_ver",
    "oneof_mismatch",
    "length",
    "status",
    "bad_key",
    "pop_mismatch",
    "key_echo",
    "unexpected",
    "auth",
    "store_corrupt",
)
