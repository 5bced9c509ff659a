"""vectors/v2.json: the reference reproduces it, regeneration does not drift, the CLI works."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from espnow_sec.keygen import main
from espnow_sec.protocol.v2.errors import REASONS
from espnow_sec.vectors.check import check
from espnow_sec.vectors.generate import dumps
from espnow_sec.vectors.generate_v2 import build

from reference_support import VECTORS  # isort: skip


@pytest.fixture(scope="module")
def v2() -> dict[str, Any]:
    return json.loads((VECTORS / "v2.json").read_text())


def test_reference_reproduces_every_case(v2: dict[str, Any]) -> None:
    count, mismatch = check(v2)
    assert mismatch is None, str(mismatch)
    assert count > 50


def test_committed_file_has_not_drifted(tmp_path: Path) -> None:
    out = tmp_path / "v2.json"
    assert main(["vectors", "--protocol", "v2", "--seed", "1", "--out", str(out)]) == 0
    assert out.read_bytes() == (VECTORS / "v2.json").read_bytes(), (
        "vectors/v2.json is stale: regenerate with "
        "`python tools/keygen.py vectors --protocol v2 --seed 1 --out vectors/v2.json`"
    )


def test_seed_changes_seeded_values() -> None:
    assert dumps(build(3)) == dumps(build(3))
    assert dumps(build(3)) != dumps(build(4))


def test_check_cli_detects_protocol_and_edits(
    v2: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(VECTORS / "v2.json")]) == 0
    assert "(v2)" in capsys.readouterr().out
    assert main(["check", str(VECTORS / "compat.json")]) == 0
    bad = copy.deepcopy(v2)
    bad["handshakes"][0]["k_dev"] = "00" * 32
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert main(["check", str(path)]) == 1
    assert "k_dev" in capsys.readouterr().err
    bad = copy.deepcopy(v2)
    bad["scripts"][0]["inputs"]["setup"]["rng"].append("00")
    path.write_text(json.dumps(bad))
    assert main(["check", str(path)]) == 1


def test_rfc7748_handshake_uses_the_rfc_shared_secret(v2: dict[str, Any]) -> None:
    hs = v2["handshakes"][0]
    assert hs["dh"] == "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    swapped = next(c for c in v2["handshakes"] if c["id"] == "rfc7748-swapped-macs")
    for k in ("th2", "k_dev", "conf_i", "conf_r", "k_ctl", "pair_id"):
        assert swapped[k] != hs[k], k
    assert swapped["dh"] == hs["dh"]


def test_every_handshake_and_control_message_fits_v1(v2: dict[str, Any]) -> None:
    for hs in v2["handshakes"]:
        lens = [len(hs[k]) // 2 for k in ("hs1", "hs2", "hs3", "hs4")]
        assert lens == [41, 40, 40, 40]
        kd = hs["key_delivery"]
        assert len(kd["ctrl"]["frame"]) // 2 == 66 and len(kd["ctrl_ack"]["frame"]) // 2 == 56
    assert max(c["length"] for c in v2["data"]) == 1470
    assert {c["inputs"]["epoch"] for c in v2["data"]} == {1, 2, 65535}


def _script(v2: dict[str, Any], cid: str) -> dict[str, Any]:
    return next(s for s in v2["scripts"] if s["id"] == cid)


def test_scripted_negatives_never_deliver(v2: dict[str, Any]) -> None:
    s = _script(v2, "every-byte-changed")
    *flips, last = s["results"]
    assert all(not r["events"] and r["drops"] for r in flips)
    assert [e["event"] for e in last["events"]] == ["DataReceived"]
    s = _script(v2, "replay-after-100")
    assert s["results"][-1]["drops"] == ["replay"]
    s = _script(v2, "replay-after-reboot")
    assert s["results"][2]["drops"] == ["unsynced"] and not s["results"][2]["events"]
    for r in _script(v2, "ctrl-bad-mac")["results"][:6]:
        assert r["drops"] and not r["writes"] and not r["out"]
    assert all(r in REASONS for s in v2["scripts"] for x in s["results"] for r in x["drops"])


def test_lost_ack_script_secures_once(v2: dict[str, Any]) -> None:
    res = _script(v2, "lost-ack")["results"]
    events = [e["event"] for r in res for e in r["events"]]
    assert events.count("PeerSecured") == 1
    assert res[-1]["out"] and not res[-1]["writes"]


def test_decode_cli_shows_and_decrypts_v2(
    v2: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    hs = v2["handshakes"][0]
    frame = hs["key_delivery"]["ctrl"]["frame"]
    assert main(["decode", frame]) == 0
    assert "CTRL" in capsys.readouterr().out
    args = ["decode", "--key", hs["k_ctl"], "--src", hs["inputs"]["mac_i"]]
    assert main([*args, "--dst", hs["inputs"]["mac_r"], frame]) == 0
    out = capsys.readouterr().out
    assert "KEY" in out and hs["inputs"]["key_delivery"]["op"]["group_secret"] in out
    assert main([*args, "--dst", "ff:ff:ff:ff:ff:ff", frame]) == 1
    assert "AUTHENTICATION FAILED" in capsys.readouterr().out
    d = v2["data"][0]
    g = ["--group-secret", d["inputs"]["group_secret"], "--epoch", str(d["inputs"]["epoch"])]
    addr = ["--src", d["inputs"]["src"], "--dst", d["inputs"]["dst"]]
    assert main(["decode", *g, *addr, d["frame"]]) == 0
    assert d["inputs"]["payload"] in capsys.readouterr().out
    assert main(["decode", hs["hs1"]]) == 0
    assert "HS1" in capsys.readouterr().out


def test_vectors_default_protocol_is_still_compat(tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    assert main(["vectors", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["protocol"] == "compat"
