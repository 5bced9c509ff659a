"""Recompute a vector file with the reference and report the first mismatch.

Every case is recomputed from its own ``inputs`` (not from the seed), so an edited output, an
edited input whose outputs were not updated, and a changed reference all show up. The
``generator`` field is informational and not compared.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..protocol.errors import ProtocolError
from . import compute as C
from . import compute_v2 as V
from .generate import FORMAT_VERSION

SECTIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "handshakes": C.compute_handshake,
    "header_cases": C.compute_header_case,
    "frames": C.compute_frame_case,
    "data_frames": C.compute_data_frame,
    "keystore": C.compute_keystore,
    "negative": C.compute_negative,
}
SECTIONS_V2: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "primitives": V.compute_primitive,
    "classification": V.compute_classification,
    "handshakes": V.compute_handshake,
    "control": V.compute_control,
    "data": V.compute_group_frame,
    "sync": V.compute_group_frame,
    "records": V.compute_record,
    "replay": V.compute_replay,
    "scripts": V.compute_script,
}
#: the sections of each ``protocol`` value a vector file may carry
PROTOCOLS = {"compat": SECTIONS, "v2": SECTIONS_V2}
#: keys of a case that are not computed
_META = ("id", "description", "tags")


class VectorFileError(ValueError):
    """The file is not a vector document this tool can read."""


@dataclass(frozen=True)
class Mismatch:
    path: str
    expected: Any
    got: Any

    def __str__(self) -> str:
        return (
            f"{self.path}: file has {_short(self.expected)}, reference computes {_short(self.got)}"
        )


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 120 else text[:117] + "..."


def _first_diff(path: str, expected: Any, got: Any) -> Mismatch | None:
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in list(expected) + [k for k in got if k not in expected]:
            if key not in got or key not in expected:
                return Mismatch(
                    f"{path}.{key}", expected.get(key, "<absent>"), got.get(key, "<absent>")
                )
            diff = _first_diff(f"{path}.{key}", expected[key], got[key])
            if diff:
                return diff
        return None
    if isinstance(expected, list) and isinstance(got, list):
        for i, (e, g) in enumerate(zip(expected, got, strict=False)):
            diff = _first_diff(f"{path}[{i}]", e, g)
            if diff:
                return diff
        if len(expected) != len(got):
            return Mismatch(f"{path}.length", len(expected), len(got))
        return None
    if type(expected) is not type(got) or expected != got:
        return Mismatch(path, expected, got)
    return None


def protocol_of(doc: Any) -> str:
    """The file's ``protocol`` (``compat`` when absent, as in the first compat files)."""
    return str(doc.get("protocol", "compat")) if isinstance(doc, dict) else "?"


def check(doc: Any) -> tuple[int, Mismatch | None]:
    """Return ``(cases checked, first mismatch or None)``; the file's ``protocol`` decides."""
    if not isinstance(doc, dict):
        raise VectorFileError("top level is not a JSON object")
    if doc.get("format_version") != FORMAT_VERSION:
        raise VectorFileError(
            f"format_version is {doc.get('format_version')!r}; this tool reads {FORMAT_VERSION}"
        )
    protocol = doc.get("protocol", "compat")
    if protocol not in PROTOCOLS:
        raise VectorFileError(f"protocol is {protocol!r}; this tool reads compat and v2")
    count = 0
    for section, fn in PROTOCOLS[protocol].items():
        cases = doc.get(section)
        if not isinstance(cases, list):
            raise VectorFileError(f"section {section!r} is missing or not a list")
        for i, case in enumerate(cases):
            path = f"{section}[{i}]"
            if isinstance(case, dict) and "id" in case:
                path = f"{section}[{i}](id={case['id']})"
            if not isinstance(case, dict) or not isinstance(case.get("inputs"), dict):
                raise VectorFileError(f"{path} has no 'inputs' object")
            try:
                got = fn(case["inputs"])
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                if isinstance(exc, ProtocolError):
                    return count, Mismatch(path, "a computable case", f"rejection: {exc}")
                return count, Mismatch(
                    path, "valid inputs", f"unusable inputs ({type(exc).__name__}: {exc})"
                )
            got = json.loads(json.dumps(got))  # compare JSON values, as a C reader sees them
            expected = {k: v for k, v in case.items() if k not in _META}
            diff = _first_diff(path, expected, got)
            if diff:
                return count, diff
            count += 1
    return count, None
