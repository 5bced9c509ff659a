"""Shared fixtures for the Python reference tests (issue 3)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reference_support import REPO, VECTORS, seeded_rng


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def primitives() -> dict[str, Any]:
    return json.loads((VECTORS / "primitives.json").read_text())


@pytest.fixture(scope="session")
def compat() -> dict[str, Any]:
    return json.loads((VECTORS / "compat.json").read_text())


@pytest.fixture
def rng_factory() -> Callable[[int], Callable[[int], bytes]]:
    return seeded_rng
