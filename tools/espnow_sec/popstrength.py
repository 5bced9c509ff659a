"""Proof-of-Possession generation and a rough strength estimate.

Why it matters (reference/upstream-espnow-security.md §6.1.8): security1 mixes SHA-256(PoP)
into an unauthenticated ECDH. A rogue *responder* that answers a scan receives a Cmd1 verifier
it can test PoP guesses against **offline**, at GPU speed. So a PoP must resist an offline
search: aim for at least 80 bits; what people type (``espnow_pop``, ``abcd1234``) has almost none.

The estimate is deliberately simple and errs high for human-chosen strings: character-class
pool size times length, with penalties for repeated characters, runs (``abcd``, ``1234``) and
known default/example PoPs. Treat it as an upper bound.
"""

from __future__ import annotations

import math
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass

#: Crockford base32, lower case: no i, l, o, u, so a PoP survives being read aloud or retyped.
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
STRONG_BITS = 80
WEAK_BITS = 40

#: PoPs published in Espressif examples and docs, and other obvious choices.
KNOWN_WEAK = frozenset(
    {
        "espnow_pop",
        "abcd1234",
        "test pop",
        "wrong pop",
        "wifiprov",
        "localctrl",
        "password",
        "12345678",
        "123456789",
        "1234567890",
        "00000000",
        "pop",
        "admin",
        "esp32",
        "espressif",
        "secret",
        "changeme",
        "qwerty",
        "letmein",
    }
)


@dataclass(frozen=True)
class Estimate:
    bits: float
    verdict: str  # "weak", "moderate" or "strong"
    warnings: tuple[str, ...]


def generate(bits: int = 128, rng: Callable[[int], bytes] = secrets.token_bytes) -> str:
    """A random PoP of at least ``bits`` bits from :data:`ALPHABET` (5 bits per character)."""
    if not 32 <= bits <= 1024:
        raise ValueError(f"--bits must be between 32 and 1024, got {bits}")
    n = math.ceil(bits / 5)
    return "".join(ALPHABET[b & 31] for b in rng(n))


def _pool(pop: str) -> int:
    pool = 0
    if any(c in string.ascii_lowercase for c in pop):
        pool += 26
    if any(c in string.ascii_uppercase for c in pop):
        pool += 26
    if any(c in string.digits for c in pop):
        pool += 10
    if any(c in string.punctuation or c == " " for c in pop):
        pool += 33
    if any(ord(c) > 127 for c in pop):
        pool += 100
    return max(pool, 1)


def estimate(pop: str) -> Estimate:
    warnings: list[str] = []
    if not pop:
        return Estimate(
            0.0,
            "weak",
            (
                "empty PoP: security1 mixes nothing into the key exchange, so anyone can provision "
                "or impersonate (man in the middle); set a PoP",
            ),
        )
    if pop.lower() in KNOWN_WEAK:
        return Estimate(
            0.0,
            "weak",
            (
                f"{pop!r} is a published default/example PoP: assume attackers try it first; "
                "generate one with `espnow-sec-keygen pop`",
            ),
        )
    per_char = math.log2(_pool(pop))
    bits = 0.0
    seen: set[str] = set()
    prev: str | None = None
    run = 0
    for c in pop:
        step = prev is not None and abs(ord(c) - ord(prev)) <= 1
        run = run + 1 if step else 0
        if c in seen or run >= 2:
            bits += 1.0  # a repeat or the third character of a run adds almost nothing
        else:
            bits += per_char
        seen.add(c)
        prev = c
    for word in KNOWN_WEAK:
        if len(word) >= 4 and word in pop.lower() and word != pop.lower():
            warnings.append(f"contains the well-known string {word!r}")
            bits = max(0.0, bits - len(word) * per_char + 10)
    if pop.isalpha() and pop.islower() and len(pop) < 16:
        warnings.append("a short all-lowercase word is within reach of a dictionary attack")
        bits = min(bits, 30.0)
    if bits < WEAK_BITS:
        verdict = "weak"
        warnings.append(
            f"about {bits:.0f} bits: a rogue responder can recover it offline from one "
            f"handshake; use at least {STRONG_BITS} bits"
        )
    elif bits < STRONG_BITS:
        verdict = "moderate"
        warnings.append(
            f"about {bits:.0f} bits: resists online guessing, not a determined offline "
            f"search; {STRONG_BITS}+ bits recommended"
        )
    else:
        verdict = "strong"
    return Estimate(round(bits, 1), verdict, tuple(warnings))
