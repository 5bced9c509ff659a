"""Constants and helpers shared by the Python reference tests.

Tests import these from here, never from ``conftest``: several conftest.py files exist in this
repository and whichever pytest imported first owns the module name ``conftest``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "vectors"


def seeded_rng(seed: int) -> Callable[[int], bytes]:
    """A reproducible ``rng(n) -> bytes`` for the state machines (never for real keys)."""
    r = random.Random(seed)
    return lambda n: bytes(r.getrandbits(8) for _ in range(n))
