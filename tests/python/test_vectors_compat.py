"""vectors/compat.json: the reference reproduces it, regeneration does not drift, check works."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from espnow_sec.keygen import main
from espnow_sec.protocol.errors import REASONS
from espnow_sec.vectors.check import check
from espnow_sec.vectors.generate import build, dumps

from reference_support import VECTORS  # isort: skip

RFC_ALICE_PUB = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
RFC_BOB_PUB = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
RFC_SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"


def test_reference_reproduces_every_case(compat: dict[str, Any]) -> None:
    count, mismatch = check(compat)
    assert mismatch is None, str(mismatch)
    assert count == sum(
        len(compat[k])
        for k in ("handshakes", "header_cases", "frames", "data_frames", "keystore", "negative")
    )


def test_committed_file_has_not_drifted(tmp_path: Path) -> None:
    committed = json.loads((VECTORS / "compat.json").read_text())
    out = tmp_path / "compat.json"
    assert main(["vectors", "--seed", str(committed["seed"]), "--out", str(out)]) == 0
    assert out.read_bytes() == (VECTORS / "compat.json").read_bytes(), (
        "vectors/compat.json is stale: regenerate with "
        "`python tools/keygen.py vectors --seed 1 --out vectors/compat.json`"
    )


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    assert dumps(build(7)) == dumps(build(7))
    assert dumps(build(7)) != dumps(build(8))


def test_format_conventions(compat: dict[str, Any]) -> None:
    assert compat["format_version"] == 1 and compat["generator"].startswith("espnow-sec-keygen")
    text = (VECTORS / "compat.json").read_text()
    assert text.endswith("\n") and "\r" not in text

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                if k not in (
                    "utf8",
                    "description",
                    "id",
                    "label",
                    "dir",
                    "kind",
                    "record",
                    "generator",
                    "protocol",
                    "outcome",
                    "reason",
                    "record_name",
                ) and isinstance(x, str):
                    assert x == x.lower() and " " not in x and ":" not in x, (k, x)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(compat["handshakes"])
    walk(compat["data_frames"])


def test_rfc7748_handshake_case(compat: dict[str, Any]) -> None:
    case = next(c for c in compat["handshakes"] if c["id"] == "rfc7748-pop-abcd1234")
    assert (case["client_pub"], case["device_pub"], case["shared_secret"]) == (
        RFC_ALICE_PUB,
        RFC_BOB_PUB,
        RFC_SHARED,
    )
    assert case["inputs"]["device_random"] == "000102030405060708090a0b0c0d0e0f"
    assert [
        len(bytes.fromhex(case["session_data"][k])) for k in ("cmd0", "resp0", "cmd1", "resp1")
    ] == [41, 61, 43, 43]
    offsets = [s["keystream_offset"] for s in case["stream"]]
    assert offsets[:4] == [0, 32, 64, 96] and offsets[4] == 128
    assert any(s["keystream_offset"] % 16 and s["length"] % 2 for s in case["stream"][4:])
    for name, frame in case["wire"].items():
        assert len(bytes.fromhex(frame)) == 20 + len(bytes.fromhex(case["records"][name]))


def test_coverage_of_required_cases(compat: dict[str, Any]) -> None:
    pops = {c["inputs"]["pop"]["utf8"] for c in compat["handshakes"]}
    assert "" in pops and "abcd1234" in pops and any(len(p) >= 200 for p in pops)
    kinds = {c["id"] for c in compat["frames"]}
    assert {"scan-request", "info-unconfigured", "group-add", "group-delete"} <= kinds
    ids = {c["id"] for c in compat["negative"]}
    for needle in (
        "wrong-pop",
        "low-order",
        "31-bytes",
        "msg-",
        "sec-ver",
        "truncated",
        "inner-size-exceeds",
        "tag-bit-flip",
    ):
        assert any(needle in i for i in ids), needle
    for c in compat["negative"]:
        assert c["expect"]["outcome"] == "reject" and c["expect"]["reason"] in REASONS


def test_check_reports_first_mismatch(
    tmp_path: Path, compat: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = copy.deepcopy(compat)
    key = bad["handshakes"][1]["session_key"]
    bad["handshakes"][1]["session_key"] = ("0" if key[0] != "0" else "1") + key[1:]
    bad["data_frames"][0]["tag"] = "00000000"  # a later one: must not be the one reported
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "handshakes[1](id=rfc7748-empty-pop).session_key" in err and "data_frames" not in err
    assert len(err.strip().splitlines()) == 1


def test_check_detects_changed_input_and_changed_expectation(compat: dict[str, Any]) -> None:
    bad = copy.deepcopy(compat)
    bad["negative"][0]["expect"]["reason"] = "auth"
    _, mismatch = check(bad)
    assert mismatch is not None and "negative[0]" in mismatch.path
    bad = copy.deepcopy(compat)
    bad["data_frames"][2]["inputs"]["nonce"] = "ff" * 8
    _, mismatch = check(bad)
    assert mismatch is not None and mismatch.path.startswith("data_frames[2]")


def test_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(VECTORS / "compat.json")]) == 0
    assert capsys.readouterr().out.startswith("OK ")
