"""The issue's end-to-end scenarios, through ``espnow-sec-net demo`` (air + processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from espnow_sec.runner import logs
from espnow_sec.runner.demo import INITIATOR_MESSAGE, RESPONDER_MESSAGE
from espnow_sec.runner.plan import INITIATOR_MAC, responder_mac

if TYPE_CHECKING:
    from conftest import NetRun, RunNet

REPO = Path(__file__).resolve().parents[2]
HOST_NODE = REPO / "build" / "host" / "default" / "espnow_node.elf"

DEMO_TIMEOUT = "25"


def demo(net: RunNet, node_bin: Path, *extra: str) -> NetRun:
    return net(["demo", "--node-bin", str(node_bin), "--timeout", DEMO_TIMEOUT, *extra])


def completed(run: NetRun) -> logs.SecurityCompleted:
    done = [e for e in run.events("initiator") if isinstance(e, logs.SecurityCompleted)]
    assert done, f"initiator never logged 'Devices security completed'\n{run.output}"
    return done[0]


def decrypted(run: NetRun, node: str, text: str, sender_mac: str) -> bool:
    return any(
        isinstance(e, logs.Received) and e.encrypted and e.text == text and e.mac == sender_mac
        for e in run.events(node)
    )


def test_demo_three_responders(net: RunNet, node_bin: Path) -> None:
    run = demo(net, node_bin, "--responders", "3")
    assert run.returncode == 0, run.output
    assert run.summary.startswith("demo: ok: 3/3 responders secured"), run.output
    assert "successed_num: 3, unfinished_num: 0" in run.summary
    assert completed(run) == logs.SecurityCompleted(3, 0)
    nodes = ["initiator", "responder-1", "responder-2", "responder-3"]
    for node in nodes[1:]:
        assert logs.GotAppKey() in run.events(node), f"{node} has no 'Get APP key'"
        assert decrypted(run, node, INITIATOR_MESSAGE, INITIATOR_MAC), node
    for node in ["initiator", "responder-2", "responder-3"]:
        assert decrypted(run, node, RESPONDER_MESSAGE, responder_mac(1)), node
    assert any(isinstance(e, logs.WaitSecurity) for e in run.events("initiator"))


def test_demo_wrong_pop_responder_is_refused_and_stores_no_key(
    net: RunNet, node_bin: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    run = demo(
        net, node_bin, "--responders", "3", "--bad-pop-responder", "2", "--store-dir", str(store)
    )
    assert run.returncode == 0, run.output
    assert "successed_num: 2, unfinished_num: 1" in run.summary, run.output
    assert completed(run) == logs.SecurityCompleted(2, 1)
    failures = [e for e in run.events("responder-2") if isinstance(e, logs.HandshakeFailed)]
    assert failures and all(f.reason.strip() for f in failures), run.output
    assert failures[0].peer == INITIATOR_MAC
    assert logs.GotAppKey() not in run.events("responder-2")
    bad_files = [p for p in (store / "responder-2").rglob("*") if p.is_file()]
    assert bad_files == [], f"the wrong-PoP responder stored {bad_files}"
    for good in ("responder-1", "responder-3"):
        assert any(p.is_file() for p in (store / good).rglob("*")), f"{good} stored no key"


def test_demo_survives_20_percent_loss(net: RunNet, node_bin: Path) -> None:
    run = demo(net, node_bin, "--responders", "3", "--loss", "0.2", "--seed", "7")
    assert run.returncode == 0, run.output
    assert completed(run) == logs.SecurityCompleted(3, 0), run.output
    for node in ("responder-1", "responder-2", "responder-3"):
        assert logs.GotAppKey() in run.events(node), f"{node} not secured under loss"


# --- protocol v2 through the air: every node started with ESPNOW_PROTOCOL=v2 ----------------
# (the adversarial v2 cases run in the in-process simulator, tests/c/test_v2_sim.c, and against
# the Python reference's vectors, tests/c/test_vectors_v2.c)


@pytest.fixture
def v2_demo(net: RunNet):  # type: ignore[no-untyped-def]
    if not HOST_NODE.is_file():
        pytest.skip(f"host node binary {HOST_NODE} is missing: run `make build` first")

    def run(*extra: str) -> NetRun:
        argv = ["demo", "--node-bin", str(HOST_NODE), "--protocol", "v2", "--timeout", "30"]
        return net([*argv, *extra])

    return run


def test_v2_demo_three_responders(v2_demo) -> None:  # type: ignore[no-untyped-def]
    run = v2_demo("--responders", "3")
    assert run.returncode == 0, run.output
    assert completed(run) == logs.SecurityCompleted(3, 0), run.output
    for node in ("responder-1", "responder-2", "responder-3"):
        assert logs.GotAppKey() in run.events(node), f"{node} has no 'Get APP key'"
        assert decrypted(run, node, INITIATOR_MESSAGE, INITIATOR_MAC), node
    for node in ("initiator", "responder-2", "responder-3"):
        assert decrypted(run, node, RESPONDER_MESSAGE, responder_mac(1)), node
    # No node ever logs a plaintext frame as received data in a v2 network.
    assert "espnow_recv plaintext" not in run.output


def test_v2_wrong_pop_fails_cleanly_and_stores_no_key(v2_demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    run = v2_demo("--responders", "2", "--bad-pop-responder", "2", "--store-dir", str(store))
    assert run.returncode == 0, run.output
    assert completed(run) == logs.SecurityCompleted(1, 1), run.output
    failures = [e for e in run.events("responder-2") if isinstance(e, logs.HandshakeFailed)]
    assert failures and failures[0].peer == INITIATOR_MAC, run.output
    assert logs.GotAppKey() not in run.events("responder-2")
    key_records = [
        p.name for p in (store / "responder-2").rglob("*") if p.is_file() and "ctr" not in p.name
    ]
    assert key_records == [], f"the wrong-PoP responder stored {key_records}"


def test_v2_survives_20_percent_loss(v2_demo) -> None:  # type: ignore[no-untyped-def]
    run = v2_demo("--responders", "3", "--loss", "0.2", "--seed", "7")
    assert run.returncode == 0, run.output
    assert completed(run) == logs.SecurityCompleted(3, 0), run.output


def test_demo_reports_a_missing_binary(net: RunNet, tmp_path: Path) -> None:
    run = net(["demo", "--node-bin", str(tmp_path / "nope.elf")], timeout=20)
    assert run.returncode == 2
    assert run.summary.startswith("demo: FAILED: node binary not found")
    assert "make build" in run.output


def test_demo_fails_fast_when_a_node_dies(net: RunNet, tmp_path: Path) -> None:
    crash = tmp_path / "crash"
    crash.write_text("#!/bin/sh\necho 'I (0) app_main: about to fail'\nexit 3\n")
    crash.chmod(0o755)
    start = time.monotonic()
    run = net(["demo", "--node-bin", str(crash), "--timeout", "20"], timeout=20)
    assert run.returncode == 1
    assert "exited unexpectedly with status 3" in run.summary, run.output
    assert time.monotonic() - start < 10


def test_run_mode_forwards_typed_lines(node_bin: Path) -> None:
    """Interactive mode: wait until secured, type `r1: ...`, see it decrypted, then Ctrl-D."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "espnow_sec.runner", "run", "--node-bin", str(node_bin)]
        + ["--responders", "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    assert proc.stdin is not None and proc.stdout is not None
    lines: list[str] = []
    secured = threading.Event()
    got = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "Devices security completed" in line:
                secured.set()
            if line.startswith("[initiator] ") and "typed over the runner" in line:
                event = logs.parse(line[len("[initiator] ") :])
                if isinstance(event, logs.Received) and event.encrypted:
                    got.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert secured.wait(25), "\n".join(lines)
        proc.stdin.write("r1: typed over the runner\n")
        proc.stdin.flush()
        assert got.wait(5), "\n".join(lines)
        proc.stdin.close()  # Ctrl-D
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    assert any("end of input: stopping" in line for line in lines)


def _processes_with(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_ctrl_c_stops_every_child(node_bin: Path) -> None:
    marker = f"ESPNOW_E2E_MARK={uuid.uuid4().hex}"
    key, value = marker.split("=")
    proc = subprocess.Popen(
        [sys.executable, "-m", "espnow_sec.runner", "demo", "--node-bin", str(node_bin)]
        # slow enough that Ctrl-C surely lands mid-run
        + ["--bad-pop-responder", "1", "--latency-ms", "200"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env={**os.environ, key: value},
    )
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:  # wait until every node is on the air
            lines.append(line)
            if sum("joined on channel" in x for x in lines) == 4:
                break
        assert len(_processes_with(marker)) >= 6  # runner, air, 4 nodes
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, "".join(lines) + rest
    assert rest.rstrip().endswith("demo: FAILED: interrupted")
    assert _processes_with(marker) == []
