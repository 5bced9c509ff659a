"""Shared fixtures for the Python reference tests (issue 3)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "vectors"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def primitives() -> dict[str, Any]:
    return json.loads((VECTORS / "primitives.json").read_text())


@pytest.fixture(scope="session")
def compat() -> dict[str, Any]:
    return json.loads((VECTORS / "compat.json").read_text())


def seeded_rng(seed: int) -> Callable[[int], bytes]:
    """A reproducible ``rng(n) -> bytes`` for the state machines (never for real keys)."""
    r = random.Random(seed)
    return lambda n: bytes(r.getrandbits(8) for _ in range(n))


@pytest.fixture
def rng_factory() -> Callable[[int], Callable[[int], bytes]]:
    return seeded_rng
