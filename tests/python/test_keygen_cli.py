"""keygen.py: sec1 against RFC 7748, error paths, appkey CSV, pop, decode."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from espnow_sec.keygen import main
from espnow_sec.protocol import keystore

from reference_support import REPO, VECTORS  # isort: skip

# RFC 7748 §6.1, typed from the RFC
ALICE_PRIV = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
ALICE_PUB = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
BOB_PRIV = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
BOB_PUB = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
SEC1_ARGS = [
    "sec1",
    "--client-priv",
    ALICE_PRIV,
    "--device-priv",
    BOB_PRIV,
    "--pop",
    "abcd1234",
    "--device-random",
    "000102030405060708090a0b0c0d0e0f",
]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def test_sec1_prints_rfc7748_values(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(SEC1_ARGS, capsys)
    assert rc == 0 and not err
    doc = json.loads(out)
    assert (doc["client_pub"], doc["device_pub"], doc["shared_secret"]) == (
        ALICE_PUB,
        BOB_PUB,
        SHARED,
    )
    for key in ("pop_sha256", "session_key", "client_verify", "device_verify"):
        assert len(doc[key]) == 64
    assert set(doc["wire"]) == {"cmd0", "resp0", "cmd1", "resp1", "key", "key_resp"}


def test_sec1_matches_the_committed_vector(capsys: pytest.CaptureFixture[str]) -> None:
    compat = json.loads((VECTORS / "compat.json").read_text())
    case = next(c for c in compat["handshakes"] if c["id"] == "rfc7748-pop-abcd1234")
    _, out, _ = run(SEC1_ARGS + ["--app-key", case["inputs"]["app_key"]], capsys)
    doc = json.loads(out)
    for key in ("session_key", "client_verify", "device_verify"):
        assert doc[key] == case[key]
    assert doc["wire"] == case["wire"]


def test_shim_runs_from_a_checkout() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "keygen.py")] + SEC1_ARGS,
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["shared_secret"] == SHARED


@pytest.mark.parametrize(
    "args,needle",
    [
        (
            [
                "sec1",
                "--client-priv",
                "zz" * 32,
                "--device-priv",
                BOB_PRIV,
                "--pop",
                "",
                "--device-random",
                "00" * 16,
            ],
            "not a hex digit",
        ),
        (
            [
                "sec1",
                "--client-priv",
                ALICE_PRIV[:-2],
                "--device-priv",
                BOB_PRIV,
                "--pop",
                "",
                "--device-random",
                "00" * 16,
            ],
            "must be 32 bytes",
        ),
        (
            [
                "sec1",
                "--client-priv",
                ALICE_PRIV,
                "--device-priv",
                BOB_PRIV,
                "--pop",
                "",
                "--device-random",
                "001",
            ],
            "odd number",
        ),
        (["decode", "--key", "0011", "00" * 20], "--key must be"),
        (["decode", "zz"], "not a hex digit"),
        (["decode", ""], "empty"),
        (["check", "/nonexistent/compat.json"], "no such file"),
        (["appkey", "--provisioner-mac", "01:02"], "must be 6 bytes"),
        (["appkey", "--namespace", "this_is_far_too_long"], "1-15"),
        (["pop", "--bits", "7"], "--bits"),
        (["vectors", "--seed", "-1", "--out", "x.json"], "--seed"),
        (["vectors", "--out", "/nonexistent-dir/x.json"], "does not exist"),
        (["bogus"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = run(args, capsys)
    assert rc == 2 and not out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"format_version": 99}',
        '{"format_version": 1, "handshakes": [{"inputs": {}}]}',
    ],
)
def test_corrupt_vector_file_exit_2_or_mismatch(
    tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    path.write_text(content)
    rc, _, err = run(["check", str(path)], capsys)
    assert rc in (1, 2) and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_subprocess_never_prints_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "keygen.py"), "check", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_appkey_prints_fresh_keys(capsys: pytest.CaptureFixture[str]) -> None:
    _, a, _ = run(["appkey"], capsys)
    _, b, _ = run(["appkey"], capsys)
    assert len(bytes.fromhex(a.strip())) == 32 and a != b


def test_appkey_nvs_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "keys.csv"
    key = "11" * 32
    rc, out, _ = run(
        ["appkey", "--key", key, "--provisioner-mac", "02:00:00:00:00:01", "--nvs-csv", str(csv)],
        capsys,
    )
    assert rc == 0 and out.strip() == key
    lines = csv.read_text().splitlines()
    assert lines[0] == "key,type,encoding,value"
    assert lines[1] == "espnow_sec,namespace,,"
    name, typ, enc, value = lines[2].split(",")
    assert (name, typ, enc) == ("app_key", "data", "hex2bin")
    rec = keystore.KeyRecord.decode(bytes.fromhex(value))
    assert rec.app_key.hex() == key and rec.provisioner_mac.hex() == "020000000001"


@pytest.mark.skipif(
    importlib.util.find_spec("esp_idf_nvs_partition_gen") is None,
    reason="esp-idf-nvs-partition-gen not installed",
)
def test_appkey_csv_builds_an_nvs_partition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv, binary = tmp_path / "keys.csv", tmp_path / "keys.bin"
    run(["appkey", "--key", "22" * 32, "--nvs-csv", str(csv)], capsys)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "esp_idf_nvs_partition_gen",
            "generate",
            str(csv),
            str(binary),
            "0x3000",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert keystore.KeyRecord(bytes([0x22] * 32)).encode() in binary.read_bytes()


def test_pop_generate_and_estimate(capsys: pytest.CaptureFixture[str]) -> None:
    _, pop, _ = run(["pop"], capsys)
    pop = pop.strip()
    assert len(pop) == 26
    rc, out, err = run(["pop", "--estimate", pop], capsys)
    assert rc == 0 and "strong" in out and not err
    for weak in ("espnow_pop", "abcd1234", ""):
        rc, out, err = run(["pop", "--estimate", weak], capsys)
        assert rc == 0 and "weak" in out and "warning" in err


def test_decode_shows_fields_and_decrypts(capsys: pytest.CaptureFixture[str]) -> None:
    compat: dict[str, Any] = json.loads((VECTORS / "compat.json").read_text())
    case = next(c for c in compat["data_frames"] if c["id"] == "data-text-unicast")
    rc, out, _ = run(["decode", "--key", case["inputs"]["app_key"], case["frame"]], capsys)
    assert rc == 0 and "'hello espnow'" in out and f"tag                     {case['tag']}" in out
    wrong = "00" * 32
    rc, out, _ = run(["decode", "--key", wrong, case["frame"]], capsys)
    assert rc == 1 and "FAILED" in out
    hs = compat["handshakes"][0]
    rc, out, _ = run(["decode", hs["wire"]["cmd0"]], capsys)
    assert rc == 0 and "Cmd0" in out and "SEC group" in out and hs["client_pub"] in out
    grp = next(c for c in compat["frames"] if c["id"] == "group-add")
    rc, out, _ = run(["decode", grp["bytes"]], capsys)
    assert rc == 0 and "op                      1 (add)" in out
    rc, out, err = run(["decode", "2c"], capsys)  # 1 byte: one clear line, exit 2, not a crash
    assert rc == 2 and out == "" and len(err.splitlines()) == 1 and "header alone is 20" in err
