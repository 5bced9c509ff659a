"""protocomm Security 1: X25519 + SHA-256(PoP) + AES-256-CTR, client and device.

reference/protocomm-security.md §4 (4.1 sequence, 4.2 key exchange, 4.3 stream continuity,
4.4 device checks, 4.5 client checks); reference/upstream-espnow-security.md §2.4 and summary
items 6-8.

* ``shared = X25519(own_priv, peer_pub)``; an all-zero result (low-order key) is rejected.
* ``session_key = shared XOR SHA-256(PoP)`` when the PoP is non-empty, else ``shared``.
* One AES-256-CTR keystream (key ``session_key``, initial counter block ``device_random``) is
  shared by both directions and advances in message order: [0,32) Cmd1 verifier
  ``E(device_pub)``, [32,64) Resp1 verifier ``E(client_pub)``, then every later record
  (KEY at [64,96), KEY_RESP at [96,128), ...), partial blocks carrying over.

Both classes are single-use (one object per session). They take every secret explicitly, so
fixed vectors replay exactly. Any rejection raises a
:class:`~espnow_sec.protocol.errors.ProtocolError`; after one, the session is failed and every
further call raises :class:`~espnow_sec.protocol.errors.SessionFailed` (Noise-C style).
Verifiers are checked on a trial decryption; the stream position only moves when a verifier
matches, so a rejected message never desynchronises the stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from .. import crypto
from .errors import (
    BadLength,
    BadPublicKey,
    BadStatus,
    PopMismatch,
    ProtocolError,
    SessionFailed,
    UnexpectedMessage,
)
from .session import Cmd0, Cmd1, Resp0, Resp1, decode_expected

KEY_LEN = 32
RANDOM_LEN = 16
VERIFIER_LEN = 32
#: Keystream offset of the first record after the handshake (reference §2.5).
FIRST_RECORD_OFFSET = 64


def pop_sha256(pop: bytes) -> bytes | None:
    """SHA-256 of the PoP bytes (no NUL), or None for an empty PoP (nothing is mixed in)."""
    return crypto.sha256(pop) if pop else None


def session_key(shared: bytes, pop: bytes) -> bytes:
    """``shared XOR SHA-256(pop)`` for a non-empty PoP, else ``shared`` (protocomm §4.2)."""
    digest = pop_sha256(pop)
    if digest is None:
        return bytes(shared)
    return bytes(a ^ b for a, b in zip(shared, digest, strict=True))


def _shared(own_priv: bytes, peer_pub: bytes, who: str) -> bytes:
    if len(peer_pub) != KEY_LEN:
        raise BadLength(f"{who} public key is {len(peer_pub)} bytes, expected {KEY_LEN}")
    try:
        return crypto.x25519_shared(own_priv, peer_pub)
    except crypto.LowOrderPoint as exc:
        raise BadPublicKey(
            f"{who} public key is a low-order point (X25519 result all zero)"
        ) from exc


class Stream:
    """The session's one CTR keystream and its current offset (protocomm §4.3)."""

    def __init__(self, key: bytes, device_random: bytes) -> None:
        self._ks = crypto.CtrKeystream(key, device_random)
        self.offset = 0

    def peek(self, data: bytes) -> bytes:
        """Encrypt/decrypt at the current offset without consuming keystream."""
        return self._ks.xor_at(self.offset, data)

    def advance(self, n: int) -> None:
        self.offset += n

    def crypt(self, data: bytes) -> bytes:
        """Encrypt/decrypt at the current offset and consume ``len(data)`` keystream bytes."""
        out = self.peek(data)
        self.offset += len(data)
        return out

    def keystream(self, offset: int, length: int) -> bytes:
        return self._ks.keystream(offset, length)


class State(Enum):
    START = "start"
    WAIT_RESP0 = "wait_resp0"  # client only
    WAIT_RESP1 = "wait_resp1"  # client only
    WAIT_CMD1 = "wait_cmd1"  # device only
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Transcript:
    """Every value a vector pins for one handshake (protocomm §8 "Sec1 case")."""

    client_pub: bytes
    device_pub: bytes
    device_random: bytes
    shared_secret: bytes
    pop_sha256: bytes | None
    session_key: bytes
    client_verify: bytes
    device_verify: bytes


T = TypeVar("T")


class _Session:
    def __init__(self, pop: bytes) -> None:
        self._pop = bytes(pop)
        self.state = State.START
        self.stream: Stream | None = None

    def _guard(self, *allowed: State) -> None:
        if self.state is State.FAILED:
            raise SessionFailed("the security1 session already failed; start a new one")
        if self.state not in allowed:
            raise UnexpectedMessage(
                f"message not allowed in state {self.state.value} "
                f"(expected {' or '.join(s.value for s in allowed)})"
            )

    def _run(self, step: Callable[[], T]) -> T:
        """Run one step; any rejection makes the session fail for good."""
        try:
            return step()
        except ProtocolError:
            self.state = State.FAILED
            raise

    @property
    def done(self) -> bool:
        return self.state is State.DONE

    def record_stream(self) -> Stream:
        """The running stream, for records after the handshake (KEY, KEY_RESP, ...)."""
        self._guard(State.DONE)
        assert self.stream is not None
        return self.stream

    def encrypt(self, data: bytes) -> bytes:
        """Encrypt an application record with the running stream (after the handshake)."""
        return self.record_stream().crypt(data)

    decrypt = encrypt  # CTR: the same operation, on the same stream (protocomm §4.3)


class Security1Client(_Session):
    """The client (initiator) side: Cmd0 -> Resp0 -> Cmd1 -> Resp1.

    ``client_priv`` is the 32-byte X25519 private key (RFC 7748 form); pass it explicitly, or
    draw it from an injected RNG, never from inside this class.
    """

    def __init__(self, pop: bytes, client_priv: bytes) -> None:
        super().__init__(pop)
        if len(client_priv) != KEY_LEN:
            raise ValueError(f"client private key must be {KEY_LEN} bytes, got {len(client_priv)}")
        self._priv = bytes(client_priv)
        self.client_pub = crypto.x25519_public(self._priv)
        self.device_pub: bytes | None = None
        self.device_random: bytes | None = None
        self.shared_secret: bytes | None = None
        self.session_key: bytes | None = None
        self.client_verify: bytes | None = None
        self.device_verify: bytes | None = None

    def cmd0(self) -> Cmd0:
        self._guard(State.START)
        self.state = State.WAIT_RESP0
        return Cmd0(self.client_pub)

    def handle_resp0(self, msg: Resp0) -> Cmd1:
        self._guard(State.WAIT_RESP0)
        return self._run(lambda: self._resp0(msg))

    def _resp0(self, msg: Resp0) -> Cmd1:
        if msg.status != 0:
            raise BadStatus(f"Resp0 status is {msg.status}, not Success")
        if len(msg.device_random) != RANDOM_LEN:
            raise BadLength(
                f"device_random is {len(msg.device_random)} bytes, expected {RANDOM_LEN}"
            )
        shared = _shared(self._priv, msg.device_pubkey, "device")
        self.device_pub = bytes(msg.device_pubkey)
        self.device_random = bytes(msg.device_random)
        self.shared_secret = shared
        self.session_key = session_key(shared, self._pop)
        self.stream = Stream(self.session_key, self.device_random)
        self.client_verify = self.stream.crypt(self.device_pub)  # keystream [0, 32)
        self.state = State.WAIT_RESP1
        return Cmd1(self.client_verify)

    def handle_resp1(self, msg: Resp1) -> None:
        self._guard(State.WAIT_RESP1)
        self._run(lambda: self._resp1(msg))

    def _resp1(self, msg: Resp1) -> None:
        if msg.status != 0:
            raise BadStatus(f"Resp1 status is {msg.status}, not Success")
        if len(msg.device_verify) != VERIFIER_LEN:
            raise BadLength(
                f"device verifier is {len(msg.device_verify)} bytes, expected {VERIFIER_LEN}"
            )
        assert self.stream is not None
        if not crypto.constant_time_equal(self.stream.peek(msg.device_verify), self.client_pub):
            raise PopMismatch(
                "device verifier does not decrypt to our public key: the device "
                "has a different PoP (or the reply was altered)"
            )
        self.stream.advance(VERIFIER_LEN)  # keystream [32, 64)
        self.device_verify = bytes(msg.device_verify)
        self.state = State.DONE

    # bytes-level helpers (SessionData in, SessionData out)
    def handle_resp0_bytes(self, data: bytes) -> bytes:
        self._guard(State.WAIT_RESP0)
        msg = self._run(lambda: decode_expected(data, Resp0))
        return self.handle_resp0(msg).encode()

    def handle_resp1_bytes(self, data: bytes) -> None:
        self._guard(State.WAIT_RESP1)
        msg = self._run(lambda: decode_expected(data, Resp1))
        self.handle_resp1(msg)

    def transcript(self) -> Transcript:
        self._guard(State.DONE)
        assert self.device_pub and self.device_random and self.shared_secret
        assert self.session_key and self.client_verify and self.device_verify
        return Transcript(
            self.client_pub,
            self.device_pub,
            self.device_random,
            self.shared_secret,
            pop_sha256(self._pop),
            self.session_key,
            self.client_verify,
            self.device_verify,
        )


class Security1Device(_Session):
    """The device (responder) side: Cmd0 -> Resp0, Cmd1 -> Resp1.

    ``device_priv`` (32 bytes) and ``device_random`` (16 bytes) are given by the caller.
    """

    def __init__(self, pop: bytes, device_priv: bytes, device_random: bytes) -> None:
        super().__init__(pop)
        if len(device_priv) != KEY_LEN:
            raise ValueError(f"device private key must be {KEY_LEN} bytes, got {len(device_priv)}")
        if len(device_random) != RANDOM_LEN:
            raise ValueError(f"device_random must be {RANDOM_LEN} bytes, got {len(device_random)}")
        self._priv = bytes(device_priv)
        self.device_pub = crypto.x25519_public(self._priv)
        self.device_random = bytes(device_random)
        self.client_pub: bytes | None = None
        self.shared_secret: bytes | None = None
        self.session_key: bytes | None = None
        self.client_verify: bytes | None = None
        self.device_verify: bytes | None = None

    def handle_cmd0(self, msg: Cmd0) -> Resp0:
        self._guard(State.START)
        return self._run(lambda: self._cmd0(msg))

    def _cmd0(self, msg: Cmd0) -> Resp0:
        shared = _shared(self._priv, msg.client_pubkey, "client")
        self.client_pub = bytes(msg.client_pubkey)
        self.shared_secret = shared
        self.session_key = session_key(shared, self._pop)
        self.stream = Stream(self.session_key, self.device_random)
        self.state = State.WAIT_CMD1
        return Resp0(self.device_pub, self.device_random)

    def handle_cmd1(self, msg: Cmd1) -> Resp1:
        self._guard(State.WAIT_CMD1)
        return self._run(lambda: self._cmd1(msg))

    def _cmd1(self, msg: Cmd1) -> Resp1:
        if len(msg.client_verify) != VERIFIER_LEN:
            raise BadLength(
                f"client verifier is {len(msg.client_verify)} bytes, expected {VERIFIER_LEN}"
            )
        assert self.stream is not None and self.client_pub is not None
        if not crypto.constant_time_equal(self.stream.peek(msg.client_verify), self.device_pub):
            raise PopMismatch(
                "client verifier does not decrypt to our public key: the client "
                "has a different PoP (or the message was altered)"
            )
        self.stream.advance(VERIFIER_LEN)  # keystream [0, 32)
        self.client_verify = bytes(msg.client_verify)
        self.device_verify = self.stream.crypt(self.client_pub)  # keystream [32, 64)
        self.state = State.DONE
        return Resp1(self.device_verify)

    def handle_cmd0_bytes(self, data: bytes) -> bytes:
        self._guard(State.START)
        msg = self._run(lambda: decode_expected(data, Cmd0))
        return self.handle_cmd0(msg).encode()

    def handle_cmd1_bytes(self, data: bytes) -> bytes:
        self._guard(State.WAIT_CMD1)
        msg = self._run(lambda: decode_expected(data, Cmd1))
        return self.handle_cmd1(msg).encode()
