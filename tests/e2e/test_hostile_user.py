"""Careless user: bad environment, damaged or unwritable key stores, duplicate MACs, odd UART
input, bad keygen and runner arguments. Real host nodes on the real air; each case checks the
exact outcome (exit status, one clear line, nothing overwritten, no traceback).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_hostile_air import (  # noqa: E402
    NODE_BIN,
    POP,
    REPO,
    RESPONDER,
    Air,
    Bench,
    Node,
    bench,  # noqa: F401 - fixture
    provision_responder,
    run_node_once,
)

KEYGEN = [sys.executable, "-m", "espnow_sec.keygen"]
RUNNER = [sys.executable, "-m", "espnow_sec.runner"]


def _require_node() -> None:
    if not NODE_BIN.is_file():
        pytest.skip(f"host node binary {NODE_BIN} is missing: run `make build` first")


@pytest.fixture(scope="module")
def air() -> Air:
    _require_node()
    a = Air()
    yield a
    a.stop()


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("ESPNOW_MAC", "garbage", "ESPNOW_MAC"),
        ("ESPNOW_MAC", "02:00:00:00:00:0g", "ESPNOW_MAC"),
        ("ESPNOW_MAC", "02:00:00:00:00:01 ", "ESPNOW_MAC"),
        ("ESPNOW_MAC", "02-00-00-00-00-01", "ESPNOW_MAC"),
        ("ESPNOW_MAC", "ff:ff:ff:ff:ff:ff", "unicast"),
        ("ESPNOW_MAC", "01:00:5e:00:00:01", "unicast"),
        ("ESPNOW_CHANNEL", "0", "1..14"),
        ("ESPNOW_CHANNEL", "15", "1..14"),
        ("ESPNOW_CHANNEL", "abc", "1..14"),
        ("ESPNOW_CHANNEL", "", "1..14"),
        ("ESPNOW_CHANNEL", "99999999999999999999", "1..14"),
        ("ESPNOW_ROLE", "Initiator", "initiator or responder"),
        ("ESPNOW_LOG_LEVEL", "loud", "none, error"),
        ("ESPNOW_STORE_DIR", "", "ESPNOW_STORE_DIR"),
        ("ESPNOW_AIR", "", "ESPNOW_AIR"),
        ("ESPNOW_AIR", "/nonexistent/air.sock", "is the air running"),
        ("ESPNOW_AIR", "/etc/hostname", "not a Unix socket"),
    ],
)
def test_bad_environment_is_one_line_and_exit_2(
    air: Air, tmp_path: Path, var: str, value: str, says: str
) -> None:
    r = run_node_once(air, tmp_path / "s", **{var: value})
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("espnow_node: ") and says in lines[0], r.stderr
    assert not (tmp_path / "s").exists(), "a refused configuration created the key store"


@pytest.mark.parametrize("where", ["file", "under-a-file", "proc"])
def test_store_dir_that_cannot_be_a_folder_is_refused(air: Air, tmp_path: Path, where: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a folder\n")
    store = {"file": afile, "under-a-file": afile / "sub", "proc": Path("/proc/self/nope")}[where]
    r = run_node_once(air, store, ESPNOW_MAC="02:00:00:00:07:01")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "key store" in r.stdout and "cannot start" in r.stderr, (r.stdout, r.stderr)
    assert afile.read_text() == "not a folder\n"


def test_store_dir_with_missing_parents_is_created_private(air: Air, tmp_path: Path) -> None:
    store = tmp_path / "a" / "b" / "c"
    e = {k: v for k, v in os.environ.items() if not k.startswith("ESPNOW_")}
    e.update(
        ESPNOW_AIR=str(air.path),
        ESPNOW_STORE_DIR=str(store),
        ESPNOW_ROLE="initiator",
        ESPNOW_MAC="02:00:00:00:07:02",
    )
    p = subprocess.Popen(
        [str(NODE_BIN)],
        env=e,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(store.glob("*app_key")):
            time.sleep(0.05)
    finally:
        p.terminate()
        out, _ = p.communicate(timeout=5)
    assert p.returncode == 0, out
    assert store.is_dir() and (store.stat().st_mode & 0o077) == 0, oct(store.stat().st_mode)
    records = list(store.glob("*app_key"))
    assert len(records) == 1 and (records[0].stat().st_mode & 0o077) == 0
    assert not list(store.glob(".*tmp*")), "temporary file left behind"


def _a_stored_record(air: Air, tmp_path: Path) -> bytes:
    """The record an initiator writes for itself (whatever the record format is)."""
    store = tmp_path / "good"
    e = {k: v for k, v in os.environ.items() if not k.startswith("ESPNOW_")}
    e.update(
        ESPNOW_AIR=str(air.path),
        ESPNOW_STORE_DIR=str(store),
        ESPNOW_ROLE="initiator",
        ESPNOW_MAC="02:00:00:00:07:03",
    )
    p = subprocess.Popen(
        [str(NODE_BIN)],
        env=e,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(store.glob("*app_key")):
            time.sleep(0.05)
    finally:
        p.terminate()
        p.wait(5)
    (record,) = store.glob("*app_key")
    return record.read_bytes()


@pytest.mark.parametrize("damage", ["empty", "truncated", "bit-flip", "extended", "huge", "zeros"])
@pytest.mark.parametrize("role", ["initiator", "responder"])
def test_damaged_key_record_is_reported_and_left_untouched(
    air: Air, tmp_path: Path, damage: str, role: str
) -> None:
    good = _a_stored_record(air, tmp_path)
    bad = {
        "empty": b"",
        "truncated": good[:-5],
        "bit-flip": good[:10] + bytes([good[10] ^ 0x01]) + good[11:],
        "extended": good + b"\x00",
        "huge": os.urandom(100_000),
        "zeros": bytes(len(good)),
    }[damage]
    store = tmp_path / "bad"
    store.mkdir(mode=0o700)
    record = store / "espnow_sec.app_key"
    record.write_bytes(bad)
    r = run_node_once(air, store, ESPNOW_ROLE=role, ESPNOW_MAC="02:00:00:00:07:04")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "damaged" in r.stderr and "STORE_CORRUPT" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr and "Sanitizer" not in r.stdout + r.stderr
    assert record.read_bytes() == bad, "the damaged record was modified"
    assert sorted(p.name for p in store.iterdir()) == ["espnow_sec.app_key"]


def test_second_node_with_the_same_mac_is_refused(bench: Bench) -> None:  # noqa: F811
    first = bench.node("responder", RESPONDER)
    first.wait_for("ready")
    second = bench.node("responder", RESPONDER)
    assert second.proc.wait(10) == 1
    bench.nodes.remove(second)
    second.stop()
    out = second.output()
    assert "already in use" in out and "ESPNOW_MAC" in out, out
    first.assert_responsive()


def test_responder_with_an_unwritable_store_fails_the_handshake_and_sends_no_key_resp(
    bench: Bench,  # noqa: F811
) -> None:
    """Store folder exists but nothing can be created in it (/proc/self): the key is refused
    with a clear reason, no KEY_RESP is sent, and the node is not secured."""
    node = Node(bench.air, "responder", RESPONDER, Path("/proc/self"))
    bench.nodes.append(node)
    node.wait_for("ready")
    rad = bench.radio("02:00:00:00:00:01")
    with pytest.raises(AssertionError, match="never arrived"):
        provision_responder(rad, node.mac_bytes, os.urandom(32))
    node.wait_for("failed: the received key could not be stored")
    assert "Get APP key" not in node.output()
    node.assert_responsive()
    mark = node.mark()
    node.write(b"still in clear\n")
    node.wait_for("data: still in clear", 5, start=mark)


def test_uart_lines_of_every_awkward_shape(bench: Bench) -> None:  # noqa: F811
    node = bench.node("responder", RESPONDER, level="info")
    node.wait_for("ready")
    cases = [
        (b"\n", None),
        (b"\r\n", None),
        (b"a" * 218 + b"\n", "espnow_send, count: 0, size: 218"),
        (b"b" * 219 + b"\n", "espnow_send failed: 219 bytes, max payload is 218"),
        (b"c" * 10000 + b"\n", "espnow_send failed: 10000 bytes, max payload is 218"),
        (b"\x00\x01\xff\xfebin\n", "espnow_send, count: 1, size: 7, data: ....bin"),
        (b"d" * 2047 + b"\n", "espnow_send failed: 2047 bytes"),
        (b"e" * 2048 + b"\n", "espnow_send failed: 2048 bytes"),
        (b"f" * 2049 + b"\n", "espnow_send failed: 2049 bytes"),
        (b"g" * 5 + b"\r\n", "espnow_send, count: 2, size: 5, data: ggggg"),
    ]
    for data, expect in cases:
        mark = node.mark()
        node.write(data)
        if expect is None:
            time.sleep(0.3)
            assert node.since(mark) == [], (data, node.since(mark))
        else:
            node.wait_for(expect, 5, start=mark)
            assert len(node.since(mark)) == 1, node.since(mark)
    # a last line without a newline is still sent at EOF; EOF does not stop the node
    mark = node.mark()
    node.write(b"no newline at the end")
    assert node.proc.stdin is not None
    node.proc.stdin.close()
    node.wait_for("espnow_send, count: 3, size: 21, data: no newline at the end", 5, start=mark)
    time.sleep(0.3)
    assert node.proc.poll() is None


def test_node_survives_a_peer_that_vanishes_mid_handshake(bench: Bench) -> None:  # noqa: F811
    """An 'initiator' that sends Cmd0 and disconnects from the air: the responder keeps going
    and a real initiator provisions it afterwards."""
    node = bench.node("responder", RESPONDER)
    node.wait_for("ready")
    from espnow_sec.protocol.records import Handshake
    from espnow_sec.protocol.security1 import Security1Client
    from test_hostile_air import Radio, security

    ghost = Radio(bench.air, "02:00:00:00:00:77")
    cli = Security1Client(POP, os.urandom(32))
    ghost.send(
        node.mac_bytes, security(Handshake(cli.cmd0().encode()).encode(), ghost.mac, node.mac_bytes)
    )
    ghost.close()
    time.sleep(0.3)
    node.assert_responsive()
    provision_responder(bench.radio("02:00:00:00:00:01"), node.mac_bytes, os.urandom(32))
    node.wait_for("app_main: Get APP key")


# ------------------------------------------------------------------------------- keygen CLI

HEX64 = "ab" * 32


@pytest.mark.parametrize(
    "args",
    [
        ["appkey", "--key", "zz"],
        ["appkey", "--key", "00"],
        ["appkey", "--key", "0" * 66],
        ["appkey", "--key", "0" * 63],
        ["appkey", "--key", HEX64, "--provisioner-mac", "xx"],
        ["appkey", "--key", HEX64, "--provisioner-mac", "02:00:00:00:00"],
        ["appkey", "--key", HEX64, "--namespace", "this_is_way_too_long_namespace"],
        ["appkey", "--key", HEX64, "--nvs-csv", "/nonexistent/dir/k.csv"],
        [
            "sec1",
            "--client-priv",
            "zz",
            "--device-priv",
            HEX64,
            "--pop",
            "x",
            "--device-random",
            "00" * 16,
        ],
        [
            "sec1",
            "--client-priv",
            HEX64,
            "--device-priv",
            "22" * 31,
            "--pop",
            "x",
            "--device-random",
            "33" * 16,
        ],
        [
            "sec1",
            "--client-priv",
            HEX64,
            "--device-priv",
            HEX64,
            "--pop",
            "x",
            "--device-random",
            "33" * 15,
        ],
        ["check", "/nonexistent.json"],
        ["decode", "--key", "zz", "00"],
        ["decode", "--key", "00" * 16, "zz"],
        ["decode", "--key", "00" * 16, "abc"],
        ["vectors", "--seed", "abc"],
        ["vectors", "--seed", "1", "--out", "/nonexistent/x.json"],
        ["nosuchcommand"],
        [],
    ],
)
def test_keygen_bad_input_is_one_stderr_line_and_exit_2(args: list[str]) -> None:
    r = subprocess.run(KEYGEN + args, capture_output=True, text=True, cwd=REPO, timeout=30)
    assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, (args, r.stderr)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"[]",
        b"{}",
        b'{"format_version": 1}',
        b'{"format_version": "x"}',
        b"\x8a\xff\x00garbage",
        b'{"format_version": 1, "handshakes": 5}',
    ],
)
def test_keygen_check_on_corrupt_vector_files(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "v.json"
    f.write_bytes(content)
    r = subprocess.run(
        KEYGEN + ["check", str(f)], capture_output=True, text=True, cwd=REPO, timeout=30
    )
    assert r.returncode == 2, (content, r.returncode, r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


# ------------------------------------------------------------------------------- runner


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["demo", "--responders", "0"], 2, "argument --responders: must be between 1 and 255"),
        (["demo", "--responders", "-1"], 2, "argument --responders: must be between 1 and 255"),
        (["demo", "--responders", "1000"], 2, "argument --responders: must be between 1 and 255"),
        (["demo", "--bad-pop-responder", "4"], 1, "does not exist"),
        (["demo", "--loss", "2"], 2, "--loss"),
        (["demo", "--loss", "-0.1"], 2, "--loss"),
        (["demo", "--loss", "nan"], 2, "--loss"),
        (["demo", "--responders", "abc"], 2, "--responders"),
        (["demo", "--timeout", "0"], 2, "--timeout"),
        (["run", "--responders", "0"], 2, "argument --responders: must be between 1 and 255"),
    ],
)
def test_runner_rejects_bad_options_cleanly(args: list[str], code: int, says: str) -> None:
    r = subprocess.run(
        RUNNER + args,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    out = r.stdout + r.stderr
    assert r.returncode == code, (args, r.returncode, out)
    assert says in out and "Traceback" not in out, out
    assert "joined on channel" not in out, "nodes were started for a refused command line"
