"""The primitives the compat protocol uses, over pyca/cryptography.

This is the only module in the package that imports ``cryptography`` (STYLE.md, "This project":
primitives apart from the spec's derivations). Everything protocol-specific (PoP mixing, stream
offsets, frame layouts) lives in :mod:`espnow_sec.protocol`.

Primitives (reference/upstream-espnow-security.md, 15-point summary items 7, 8 and 10):

* X25519 (RFC 7748) with 32-byte little-endian keys; an all-zero shared secret (low-order peer
  key) is refused with :class:`LowOrderPoint`.
* SHA-256.
* AES-256-CTR whose 16-byte initial counter block is incremented as one 128-bit big-endian
  counter, as a keystream that can be read at any byte offset (:class:`CtrKeystream`).
* AES-CCM with any tag length CCM allows (the compat data path uses a 4-byte tag and an
  8-byte nonce); a failed check raises :class:`AuthenticationError`.

Protocol v2 (docs/PROTOCOL.md §1) adds:

* HMAC-SHA256 (RFC 2104), with a constant-time verify.
* HKDF-SHA256 (RFC 5869): one complete Extract + Expand per call, as PSA's
  ``PSA_ALG_HKDF(PSA_ALG_SHA_256)`` computes it.
* AES-128-CCM with a 13-byte nonce and an 8-byte (``CCM8``) or 16-byte (``CCM16``) tag.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

X25519_KEY_LEN = 32
AES_BLOCK = 16


class CryptoError(ValueError):
    """Base class of the errors this module raises."""


class LowOrderPoint(CryptoError):
    """X25519 produced the all-zero shared secret: the peer key is a low-order point."""


class AuthenticationError(CryptoError):
    """An AEAD tag did not verify: wrong key or nonce, or the data was altered."""


def _need_len(name: str, value: bytes, length: int) -> None:
    if len(value) != length:
        raise CryptoError(f"{name} must be {length} bytes, got {len(value)}")


def x25519_public(private: bytes) -> bytes:
    """Return X25519(private, 9), the RFC 7748 public key of a 32-byte private key."""
    _need_len("X25519 private key", private, X25519_KEY_LEN)
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def x25519_shared(private: bytes, peer_public: bytes) -> bytes:
    """Return X25519(private, peer_public) as 32 bytes (RFC 7748 §5).

    Raises :class:`LowOrderPoint` if the result is all zeros (RFC 7748 §6.1 check), which is
    what every low-order peer key (0, 1, the order-8 points, p-1, p, p+1) produces.
    """
    _need_len("X25519 private key", private, X25519_KEY_LEN)
    _need_len("X25519 public key", peer_public, X25519_KEY_LEN)
    key = X25519PrivateKey.from_private_bytes(private)
    try:
        shared = key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as exc:  # cryptography refuses the all-zero output
        raise LowOrderPoint("X25519 shared secret is all zero (low-order public key)") from exc
    if not any(shared):  # defensive: never rely on one backend's check alone
        raise LowOrderPoint("X25519 shared secret is all zero (low-order public key)")
    return shared


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings without an early exit."""
    return hmac.compare_digest(a, b)


class CtrKeystream:
    """AES-CTR keystream addressed by byte offset.

    The counter block for keystream block ``i`` is ``(iv + i) mod 2**128`` (big-endian), the
    behaviour of mbedTLS ``aes_crypt_ctr``, PSA ``PSA_ALG_CTR`` and ``modes.CTR``
    (reference/protocomm-security.md §4.3). Reading by offset (instead of keeping one running
    encryptor) lets a caller *try* a decryption and commit the stream position only if the
    result verifies.
    """

    def __init__(self, key: bytes, iv: bytes) -> None:
        if len(key) not in (16, 24, 32):
            raise CryptoError(f"AES key must be 16, 24 or 32 bytes, got {len(key)}")
        _need_len("AES-CTR initial counter block", iv, AES_BLOCK)
        self._key = bytes(key)
        self._iv = int.from_bytes(iv, "big")

    def keystream(self, offset: int, length: int) -> bytes:
        """Return keystream bytes ``[offset, offset + length)``."""
        if offset < 0 or length < 0:
            raise CryptoError("keystream offset and length must not be negative")
        if length == 0:
            return b""
        first = offset // AES_BLOCK
        skip = offset % AES_BLOCK
        counter = ((self._iv + first) % (1 << 128)).to_bytes(AES_BLOCK, "big")
        enc = Cipher(algorithms.AES(self._key), modes.CTR(counter)).encryptor()
        return enc.update(bytes(skip + length))[skip:]

    def xor_at(self, offset: int, data: bytes) -> bytes:
        """Encrypt or decrypt (the same thing in CTR) ``data`` at keystream ``offset``."""
        ks = self.keystream(offset, len(data))
        return bytes(a ^ b for a, b in zip(data, ks, strict=True))


def aes_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    """One-shot AES-CTR from keystream offset 0."""
    return CtrKeystream(key, iv).xor_at(0, data)


def ccm_encrypt(
    key: bytes, nonce: bytes, plaintext: bytes, aad: bytes | None, tag_len: int
) -> tuple[bytes, bytes]:
    """AES-CCM encrypt; returns ``(ciphertext, tag)``."""
    try:
        out = AESCCM(key, tag_length=tag_len).encrypt(nonce, plaintext, aad or None)
    except ValueError as exc:
        raise CryptoError(f"AES-CCM parameters rejected: {exc}") from exc
    return out[: len(plaintext)], out[len(plaintext) :]


def ccm_decrypt(
    key: bytes, nonce: bytes, ciphertext: bytes, tag: bytes, aad: bytes | None
) -> bytes:
    """AES-CCM decrypt and verify; raises :class:`AuthenticationError` on a bad tag."""
    try:
        return AESCCM(key, tag_length=len(tag)).decrypt(nonce, ciphertext + tag, aad or None)
    except InvalidTag as exc:
        raise AuthenticationError(
            "AES-CCM tag mismatch: wrong key or nonce, or the frame was altered"
        ) from exc
    except ValueError as exc:
        raise CryptoError(f"AES-CCM parameters rejected: {exc}") from exc


# -- protocol v2 additions (docs/PROTOCOL.md §1) ----------------------------------------------
HMAC_LEN = 32
HKDF_MAX_LEN = 255 * 32
CCM_NONCE_LEN = 13


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """RFC 2104 HMAC-SHA256, 32 bytes."""
    return hmac.new(key, message, hashlib.sha256).digest()


def hmac_sha256_verify(key: bytes, message: bytes, mac: bytes) -> bool:
    """True if ``mac`` is HMAC-SHA256(key, message) (or its prefix of len(mac) >= 1 bytes).

    Compared in constant time (PROTOCOL.md §4.2: never ``memcmp``).
    """
    if not 1 <= len(mac) <= HMAC_LEN:
        return False
    return hmac.compare_digest(hmac_sha256(key, message)[: len(mac)], mac)


def hkdf_sha256(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-SHA256: Extract(salt, ikm) then Expand(info, length)."""
    if not 1 <= length <= HKDF_MAX_LEN:
        raise CryptoError(f"HKDF output length must be 1..{HKDF_MAX_LEN}, got {length}")
    return HKDF(hashes.SHA256(), length, salt, info).derive(ikm)


def hkdf_sha256_extract(salt: bytes, ikm: bytes) -> bytes:
    """RFC 5869 §2.2 Extract alone (PRK); for vectors and tests only."""
    return hmac_sha256(salt or bytes(32), ikm)


def ccm13_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes, tag_len: int) -> bytes:
    """AES-128-CCM, 13-byte nonce, ``tag_len`` 8 or 16: returns ``ciphertext || tag``."""
    _need_len("AES-128 key", key, 16)
    _need_len("CCM nonce", nonce, CCM_NONCE_LEN)
    if tag_len not in (8, 16):
        raise CryptoError(f"v2 CCM tags are 8 or 16 bytes, got {tag_len}")
    ct, tag = ccm_encrypt(key, nonce, plaintext, aad, tag_len)
    return ct + tag


def ccm13_decrypt(key: bytes, nonce: bytes, sealed: bytes, aad: bytes, tag_len: int) -> bytes:
    """Inverse of :func:`ccm13_encrypt`; raises :class:`AuthenticationError` on a bad tag."""
    _need_len("AES-128 key", key, 16)
    _need_len("CCM nonce", nonce, CCM_NONCE_LEN)
    if tag_len not in (8, 16):
        raise CryptoError(f"v2 CCM tags are 8 or 16 bytes, got {tag_len}")
    if len(sealed) < tag_len:
        raise AuthenticationError("AES-CCM input shorter than its tag")
    return ccm_decrypt(key, nonce, sealed[:-tag_len], sealed[-tag_len:], aad)
