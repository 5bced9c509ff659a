"""Regression tests for the defects of the adversarial review (D1-D13), against real host nodes on
the real air. Each test failed before its fix. The in-process cases (eviction counts, forged
answers at exact points, key loss) are in tests/c/test_handshake.c; these check the same on the
wire, plus what only the host program shows (exit status, stderr, log lines).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from espnow_sec.protocol.frame import DataType, Frame
from espnow_sec.protocol.records import Handshake
from espnow_sec.protocol.security1 import Security1Client
from espnow_sec.protocol.session import Cmd0, Cmd1, Resp1, decode_session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_hostile_air import (  # noqa: E402
    INITIATOR,
    NODE_BIN,
    POP,
    REPO,
    RESPONDER,
    Air,
    Bench,
    Node,
    Radio,
    bench,  # noqa: F401 - fixture
    frame,
    run_node_once,
    security,
)

KEYGEN = [sys.executable, "-m", "espnow_sec.keygen"]
RUNNER = [sys.executable, "-m", "espnow_sec.runner"]
BROADCAST = b"\xff" * 6


def _require_node() -> None:
    if not NODE_BIN.is_file():
        pytest.skip(f"host node binary {NODE_BIN} is missing: run `make build` first")


def _from(mac: bytes, cls: type | None = None):  # noqa: ANN202 - a predicate
    def pred(f: Frame) -> bool:
        if f.header.type != DataType.SECURITY or f.header.src_addr != mac:
            return False
        if cls is None:
            return True
        try:
            return isinstance(decode_session(Handshake.decode(f.payload).data), cls)
        except Exception:  # noqa: BLE001
            return False

    return pred


# ------------------------------------------------------------------------------- D1 / D2


def test_d1_d2_strangers_cmd0s_and_a_forged_cmd1_do_not_kill_the_real_handshake(
    bench: Bench,  # noqa: F811
) -> None:
    """Between the real Resp0 and the real Cmd1: Cmd0s from other MACs (used to evict the real
    session: 2 slots) and a forged Cmd1 under the real initiator's MAC (used to close it with
    'PoP mismatch'). The real Cmd1 is still answered with Resp1 and the key is installed."""
    node = bench.node("responder", RESPONDER)
    node.wait_for("ready")
    r = node.mac_bytes
    legit = bench.radio(INITIATOR)
    rogue = bench.radio("02:00:00:00:00:bb")
    cli = Security1Client(POP, os.urandom(32))
    legit.send(r, security(Handshake(cli.cmd0().encode()).encode(), legit.mac, r))
    c1 = cli.handle_resp0_bytes(Handshake.decode(legit.expect(_from(r)).payload).data)
    for i in range(5):
        src = bytes([2, 0x77, 0, 0, 0, i])
        rogue.send(r, security(Handshake(Cmd0(os.urandom(32)).encode()).encode(), src, r))
    rogue.send(r, security(Handshake(Cmd1(os.urandom(32)).encode()).encode(), legit.mac, r))
    time.sleep(0.3)
    legit.drain()
    legit.send(r, security(Handshake(c1).encode(), legit.mac, r))
    cli.handle_resp1_bytes(Handshake.decode(legit.expect(_from(r, Resp1), 3).payload).data)
    from espnow_sec.protocol import appkey
    from espnow_sec.protocol.records import KeyResp

    key = os.urandom(32)
    legit.send(r, security(appkey.make_key(cli, key).encode(), legit.mac, r))
    resp = legit.expect(lambda f: _from(r)(f) and f.payload[:1] == b"\x04")
    appkey.check_key_resp(cli, key, KeyResp.decode(resp.payload))
    node.wait_for("app_main: Get APP key")
    node.assert_responsive()


def test_d1_cmd0_flood_from_rotating_macs_does_not_stop_provisioning() -> None:
    """A stranger without the PoP floods the responder with Cmd0s from ever new MACs (about
    150 per second, 10 ms air latency): the real initiator still secures it."""
    _require_node()
    air = Air("--latency-ms", "10")
    store = air.dir / "stores"
    nodes: list[Node] = []
    stop = threading.Event()
    try:
        resp = Node(air, "responder", RESPONDER, store / "r", level="info")
        nodes.append(resp)
        resp.wait_for("ready")
        rogue = Radio(air, "02:00:00:00:00:bb")
        r = resp.mac_bytes

        def flood() -> None:
            i = 0
            while not stop.is_set():
                src = bytes([2, 0x77, 0, 0, (i >> 8) & 0xFF, i & 0xFF])
                i += 1
                rogue.send(r, security(Handshake(Cmd0(os.urandom(32)).encode()).encode(), src, r))
                time.sleep(1 / 200)

        threading.Thread(target=flood, daemon=True).start()
        time.sleep(0.3)
        ini = Node(air, "initiator", INITIATOR, store / "i", level="info")
        nodes.append(ini)
        done = ini.wait_for("Devices security completed", 30)
        assert done.endswith("successed_num: 1, unfinished_num: 0"), ini.output()
        resp.wait_for("app_main: Get APP key", 5)
    finally:
        stop.set()
        codes = [n.stop() for n in nodes]
        air.stop()
    assert codes == [0] * len(nodes)


@pytest.mark.parametrize(
    ("hold", "body"),
    [
        ("resp1", lambda: Handshake(Resp1(os.urandom(32)).encode()).encode()),
        ("key_resp", lambda: bytes([4, 32]) + os.urandom(32)),
    ],
    ids=["forged-resp1", "forged-key-resp"],
)
def test_d2_a_forged_answer_under_the_responders_mac_does_not_end_the_handshake(
    bench: Bench,  # noqa: F811
    hold: str,
    body,  # noqa: ANN001
) -> None:
    """While the initiator waits for Resp1 / KEY_RESP, a forgery with the responder's MAC
    arrives first: it fails its check, is ignored, and the real answer still verifies."""
    fake = bench.fake_responder("02:00:00:00:01:0f", hold=hold)
    rogue = bench.radio("02:00:00:00:00:bb")
    ini = bench.node("initiator", INITIATOR)
    assert fake.reached[hold].wait(8), ini.output()
    i = ini.mac_bytes
    rogue.send(i, security(body(), fake.radio.mac, i))
    time.sleep(0.3)
    fake.release(hold)
    done = ini.wait_for("Devices security completed", 15)
    assert done.endswith("successed_num: 1, unfinished_num: 0"), ini.output()
    assert "failed its check" in ini.output()
    assert "handshake with" not in ini.output().replace("handshake with 1 responder", "")


def test_d2_wrong_pop_is_still_reported_as_no_resp1(bench: Bench) -> None:  # noqa: F811
    """The restart with a fresh Cmd0 keeps the diagnosis: a responder with another PoP ends
    with 'no SessionResp1' at the initiator and 'PoP mismatch' at the responder."""
    bad = bench.node("responder", RESPONDER, pop="not the pop", level="info")
    bad.wait_for("ready")
    ini = bench.node("initiator", INITIATOR, level="info")
    done = ini.wait_for("Devices security completed", 30)
    assert done.endswith("successed_num: 0, unfinished_num: 1"), ini.output()
    ini.wait_for(f"handshake with {RESPONDER} failed: no SessionResp1")
    bad.wait_for("PoP mismatch")
    assert "Get APP key" not in bad.output()


# ------------------------------------------------------------------------------- D4


def test_d4_initiator_that_lost_its_store_reprovisions_its_responders(
    bench: Bench,  # noqa: F811
) -> None:
    resp = bench.node("responder", RESPONDER, level="info")
    resp.wait_for("ready")
    ini = bench.node("initiator", INITIATOR, level="info")
    assert ini.wait_for("Devices security completed", 15).endswith(
        "successed_num: 1, unfinished_num: 0"
    )
    assert ini.stop() == 0
    bench.nodes.remove(ini)
    shutil.rmtree(bench.store / INITIATOR.replace(":", ""))
    ini = bench.node("initiator", INITIATOR, level="info")
    assert ini.wait_for("espnow wait security num:", 10).endswith(": 1"), ini.output()
    assert ini.wait_for("Devices security completed", 15).endswith(
        "successed_num: 1, unfinished_num: 0"
    )
    mark = resp.mark()
    ini.write(b"under the new key\n")
    line = resp.wait_for("under the new key", 5, start=mark)
    assert "espnow_recv, " in line, resp.since(mark)


def test_d4_damaged_initiator_store_advice(tmp_path: Path) -> None:
    _require_node()
    air = Air()
    try:
        store = tmp_path / "s"
        store.mkdir(mode=0o700)
        (store / "espnow_sec.app_key").write_bytes(b"\x00" * 47)
        r = run_node_once(air, store, ESPNOW_ROLE="initiator", ESPNOW_MAC="02:00:00:00:07:09")
    finally:
        air.stop()
    assert r.returncode == 1, r
    assert "restore it from a backup" in r.stderr and "provisioned again" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------- D6 / D12


@pytest.fixture(scope="module")
def air() -> Air:
    _require_node()
    a = Air()
    yield a
    a.stop()


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("ESPNOW_POP", "x" * 65, "at most 64"),
        ("ESPNOW_POP", "x" * 100000, "at most 64"),
        ("ESPNOW_CHANNEL", " 3", "1..14"),
        ("ESPNOW_CHANNEL", "+3", "1..14"),
        ("ESPNOW_CHANNEL", "3 ", "1..14"),
        ("ESPNOW_CHANNEL", "-1", "1..14"),
        ("ESPNOW_CHANNEL", "0x3", "1..14"),
        ("ESPNOW_CHANNEL", "003", "1..14"),
    ],
)
def test_d6_d12_bad_pop_length_and_channel_are_one_line_and_exit_2(
    air: Air, tmp_path: Path, var: str, value: str, says: str
) -> None:
    r = run_node_once(air, tmp_path / "s", **{var: value})
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr[:300])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("espnow_node: ") and says in lines[0], lines
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("pop", ["", "x" * 64])
def test_d6_empty_pop_warns_and_a_64_byte_pop_starts(bench: Bench, pop: str) -> None:  # noqa: F811
    node = bench.node("responder", RESPONDER, pop=pop, level="info")
    node.wait_for("ready")
    warned = "PoP is empty: the handshake is unauthenticated and open to man-in-the-middle"
    assert (warned in node.output()) == (pop == ""), node.output()
    node.assert_responsive()


# ------------------------------------------------------------------------------- D7


def test_d7_node_stops_with_status_3_when_the_air_goes_away(tmp_path: Path) -> None:
    _require_node()
    air = Air()
    node = Node(air, "responder", RESPONDER, tmp_path / "s", level="info")
    try:
        node.wait_for("ready")
        air.proc.kill()
        air.proc.wait()
        assert node.proc.wait(5) == 3, node.output()
    finally:
        node.stop()
        air.stop()
    out = node.output()
    assert f"espnow_node: stopping: the air at {air.path} closed the connection" in out, out
    assert "Sanitizer" not in out


# ------------------------------------------------------------------------------- D8


def test_d8_info_from_the_broadcast_address_is_not_a_responder(bench: Bench) -> None:  # noqa: F811
    rad = bench.radio("02:00:00:00:00:aa")
    ini = bench.node("initiator", INITIATOR, level="info")
    i = ini.mac_bytes
    rad.expect(lambda f: f.header.type == DataType.SECURITY and f.payload == b"\x00", 5)
    rad.send(i, frame(DataType.SECURITY_STATUS, bytes([1, 0]) + bytes(6), src=BROADCAST, dest=i))
    assert ini.wait_for("espnow wait security num:", 5).endswith(": 0"), ini.output()
    done = ini.wait_for("Devices security completed", 5)
    assert done.endswith("successed_num: 0, unfinished_num: 0"), ini.output()


# ------------------------------------------------------------------------------- D10 / D11


def test_d10_appkey_with_an_unwritable_csv_shows_no_key(tmp_path: Path) -> None:
    r = subprocess.run(
        KEYGEN + ["appkey", "--nvs-csv", str(tmp_path / "no" / "k.csv")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )
    assert r.returncode == 2 and r.stdout == "", (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1
    ok = tmp_path / "k.csv"
    r = subprocess.run(
        KEYGEN + ["appkey", "--nvs-csv", str(ok)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )
    assert r.returncode == 0 and len(r.stdout.strip()) == 64
    assert (ok.stat().st_mode & 0o077) == 0, oct(ok.stat().st_mode)


@pytest.mark.parametrize("hexframe", ["00", "2c" * 19, "24010010"])
def test_d10_decode_of_a_truncated_frame_is_one_stderr_line_and_exit_2(hexframe: str) -> None:
    r = subprocess.run(
        KEYGEN + ["decode", hexframe], capture_output=True, text=True, cwd=REPO, timeout=30
    )
    assert r.returncode == 2 and r.stdout == "", (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot decode" in lines[0] and "Traceback" not in r.stderr


def test_d10_decode_flags_a_frame_longer_than_250_bytes() -> None:
    big = "2c00" + "00" * 298  # DATA, 300 bytes
    r = subprocess.run(
        KEYGEN + ["decode", big], capture_output=True, text=True, cwd=REPO, timeout=30
    )
    assert "longer than 250 bytes" in r.stdout, r.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["demo", "--store-dir", "/etc/hostname"], "is not a folder"),
        (["demo", "--store-dir", "/etc/hostname/sub"], "cannot create or write it"),
        (["demo", "--node-bin", "NOTELF"], "not a program"),
    ],
)
def test_d11_runner_refuses_bad_paths_in_one_line_with_exit_2(
    tmp_path: Path, args: list[str], says: str
) -> None:
    notelf = tmp_path / "notelf"
    notelf.write_text("not an elf\n")
    notelf.chmod(0o755)
    args = [str(notelf) if a == "NOTELF" else a for a in args]
    r = subprocess.run(
        RUNNER + args,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 2, (r.returncode, out)
    assert says in out and "Traceback" not in out, out
    assert "joined on channel" not in out
