"""Live cross-runs (issue 3): the Python reference and the C host node on one simulated air.

* the Python initiator secures C responders, and the C initiator secures Python responders
  (mixed with a C responder), with encrypted data both ways;
* a wrong PoP is refused across implementations, in both directions;
* per message kind, the C node and the reference put the same header bits on the air;
* ``python -m espnow_sec.pynode`` prints the C app's log lines (``runner/logs.py`` parses them).

The air runs in this process (a thread); the C nodes are processes (``runner/procs.py``); the
Python nodes are :class:`espnow_sec.pynode.PyNode` threads driving the pure reference machines.
Both sides keep their key records in temporary store folders; ``docs/keystore.md`` says what a
record holds.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from espnow_sec.air.medium import Medium
from espnow_sec.air.pcap import PcapWriter
from espnow_sec.air.server import AirServer
from espnow_sec.air.wire import format_mac, parse_mac
from espnow_sec.protocol import (
    DataType,
    Frame,
    KeyInstalled,
    PeerFailed,
    PeerSecured,
    ProvisionDone,
    ScanDone,
)
from espnow_sec.protocol.errors import StoreCorrupt
from espnow_sec.protocol.frame import RESERVED_BITS
from espnow_sec.protocol.keystore import KeyRecord
from espnow_sec.protocol.records import Group, GroupOp, Handshake, decode_security_payload
from espnow_sec.protocol.session import decode_session
from espnow_sec.pynode import STORE_FILE, Delivery, PyNode, make_machine
from espnow_sec.runner import logs
from espnow_sec.runner.plan import NodeSpec, node_env
from espnow_sec.runner.procs import Child, Output, stop_all
from espnow_sec.runner.procs import Event as ProcEvent

REPO = Path(__file__).resolve().parents[2]
HOST_NODE = Path(
    os.environ.get("ESPNOW_E2E_NODE_BIN") or REPO / "build" / "host" / "compat" / "espnow_node.elf"
)

POP = "espnow_pop"
WRONG_POP = "not-the-espnow-pop"
INITIATOR_MAC = "02:00:00:00:00:01"
WAIT_S = 8.0  # any single step; a whole test stays well under 20 s
FAIL_WAIT_S = 12.0  # a refused responder: 1 s scan + 6 retries (150 ms doubling, 1.2 s cap)


def mac(text: str) -> bytes:
    return parse_mac(text)


# --- the air, C nodes and Python nodes -------------------------------------------------------


class FrameLog(PcapWriter):
    """The air's pcap (for a human with Wireshark), and every frame kept for the checks."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.sent: list[tuple[bytes, bytes]] = []  # (radio source, frame body)

    def write(self, timestamp: float, src: bytes, dst: bytes, data: bytes) -> None:
        super().write(timestamp, src, dst, data)
        self.sent.append((src, data))


class Air:
    """The air server in a thread, on a short temporary socket path."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="xrun-"))  # short: Unix socket paths are tiny
        self.path = self.dir / "air.sock"
        self.lines: list[str] = []
        self.frames = FrameLog(self.dir / "air.pcap")
        self.server = AirServer(self.path, Medium(seed=3), pcap=self.frames, say=self.lines.append)
        self.server.bind()
        self.thread = threading.Thread(target=self.server.serve, name="air", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.stop()
        self.thread.join(5)
        self.server.close()
        self.frames.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class CNodes:
    """C host nodes (or any node command) as processes, with their parsed log lines."""

    def __init__(self, air: Air, store_root: Path) -> None:
        self.air = air
        self.store_root = store_root
        self.queue: queue.Queue[ProcEvent] = queue.Queue()
        self.children: dict[str, Child] = {}
        self.lines: dict[str, list[str]] = {}

    def start(
        self,
        name: str,
        role: str,
        mac_text: str,
        pop: str = POP,
        argv: list[str] | None = None,
    ) -> Path:
        """Start node ``name``; returns its key-store folder (ESPNOW_STORE_DIR)."""
        spec = NodeSpec(name, role, mac_text, pop, 1)
        env = {**os.environ, **node_env(spec, self.air.path, self.store_root)}
        store = self.store_root / name
        store.mkdir(parents=True, exist_ok=True)
        self.lines[name] = []
        self.children[name] = Child(
            name, argv or [str(HOST_NODE)], self.queue, env=env, cwd=self.store_root
        )
        return store

    def type(self, name: str, text: str) -> None:
        self.children[name].write_line(text)

    def _pump(self, timeout: float) -> None:
        try:
            item = self.queue.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            if isinstance(item, Output):
                if item.line is None:
                    status = self.children[item.name].exit_status()
                    pytest.fail(f"{item.name} exited with {status}\n{self.output()}")
                self.lines[item.name].append(item.line)
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return

    def events(self, name: str) -> list[logs.Event]:
        return [e for e in map(logs.parse, self.lines[name]) if e is not None]

    def wait(
        self, name: str, match: Callable[[logs.Event], bool], what: str, timeout: float = WAIT_S
    ) -> logs.Event:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events(name):
                if match(event):
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"{name} did not log {what} within {timeout:g} s\n{self.output()}")
            self._pump(min(left, 0.05))

    def wait_booted(self, *names: str) -> None:
        for name in names:
            self.wait(name, lambda e: isinstance(e, logs.Boot), "its boot line")

    def output(self) -> str:
        self._drain()
        return "\n".join(f"[{n}] {line}" for n, ls in self.lines.items() for line in ls)

    def _drain(self) -> None:
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Output) and item.line is not None:
                self.lines[item.name].append(item.line)

    def stop(self) -> None:
        stop_all(list(self.children.values()))
        for child in self.children.values():
            child.join_reader(1.0)


class Net:
    """One cross-run: the air, C nodes, Python nodes; everything stopped at the end."""

    def __init__(self, store_root: Path) -> None:
        self.air = Air()
        self.store_root = store_root
        self.c = CNodes(self.air, store_root)
        self.py: dict[str, PyNode] = {}

    def python(
        self, name: str, role: str, mac_text: str, pop: str = POP, *, store: bool = True
    ) -> PyNode:
        machine = make_machine(role, mac(mac_text), pop.encode())
        store_dir = self.store_root / name if store else None
        node = PyNode(machine, self.air.path, store_dir=store_dir).start()
        self.py[name] = node
        return node

    def close(self) -> None:
        try:
            self.c.stop()
        finally:
            for node in self.py.values():
                node.stop()
            self.air.close()

    def report(self) -> str:
        py = "\n".join(f"[{n} (python)] events {p.events}" for n, p in self.py.items())
        return f"{self.c.output()}\n{py}"


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    if not HOST_NODE.is_file():
        pytest.skip(f"host node binary {HOST_NODE} is missing: run `make build` first")
    running = Net(tmp_path / "store")
    try:
        yield running
    finally:
        running.close()


# --- checks ------------------------------------------------------------------------------------


def c_received(text: str, sender: str) -> Callable[[logs.Event], bool]:
    return lambda e: (
        isinstance(e, logs.Received) and e.encrypted and e.text == text and e.mac == sender
    )


def py_received(node: PyNode, text: str, sender: str, timeout: float = WAIT_S) -> Delivery:
    got = node.wait_for(
        lambda d: isinstance(d, Delivery) and d.data == text.encode() and d.src == mac(sender),
        timeout,
    )
    assert isinstance(got, Delivery)
    assert got.encrypted, f"{format_mac(node.mac)} took {text!r} as plaintext"
    return got


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def stored_key(store: Path) -> KeyRecord:
    """The ``app_key`` record of a store folder, decoded by the reference (docs/keystore.md)."""
    path = store / STORE_FILE
    assert path.is_file(), f"no key record {path}; the store holds {sorted(store.iterdir())}"
    raw = path.read_bytes()
    try:
        return KeyRecord.decode(raw)
    except StoreCorrupt as exc:
        pytest.fail(f"{path} is not a docs/keystore.md record ({exc}): {raw.hex()}")


# --- (a) Python initiator, C responders -------------------------------------------------------


def test_python_initiator_secures_c_responders(net: Net) -> None:
    c_macs = {"c-resp-1": "02:00:00:00:01:01", "c-resp-2": "02:00:00:00:01:02"}
    stores = {name: net.c.start(name, "responder", m) for name, m in c_macs.items()}
    net.c.wait_booted(*c_macs)

    app_key = os.urandom(32)
    init = net.python("py-init", "initiator", INITIATOR_MAC, store=False)
    init.provision(app_key)
    done = init.wait_for(lambda e: isinstance(e, ProvisionDone), WAIT_S)
    assert isinstance(done, ProvisionDone)
    want = {mac(m) for m in c_macs.values()}
    assert set(done.succeeded) == want and done.unfinished == (), net.report()
    # PeerSecured comes only after KEY_RESP decrypted to our app key (check_key_resp).
    secured = {e.mac for e in init.events if isinstance(e, PeerSecured)}
    assert secured == want, net.report()
    assert not [e for e in init.events if isinstance(e, PeerFailed)], net.report()
    scans = [e for e in init.events if isinstance(e, ScanDone)]
    assert scans and scans[0].found == 2, net.report()

    for name in c_macs:
        net.c.wait(name, lambda e: isinstance(e, logs.GotAppKey), "'Get APP key'")

    # Python -> C: the reference's CCM frame, decrypted and logged by both C responders.
    text = unique("from the python initiator")
    init.send(text.encode())
    for name in c_macs:
        net.c.wait(name, c_received(text, INITIATOR_MAC), f"{text!r} decrypted")

    # C -> Python: a line typed into a C responder, decrypted by the reference.
    text = unique("typed into c-resp-1")
    net.c.type("c-resp-1", text)
    py_received(init, text, c_macs["c-resp-1"])
    net.c.wait("c-resp-2", c_received(text, c_macs["c-resp-1"]), f"{text!r} decrypted")

    # Each C responder stored the key the Python initiator sent, and who sent it.
    for name, store in stores.items():
        record = stored_key(store)
        assert record == KeyRecord(app_key, mac(INITIATOR_MAC)), (
            f"{name} stored {record}, the initiator sent {app_key.hex()}"
        )
    assert init.error is None


# --- (b) C initiator, Python responders (and a C responder) -----------------------------------


@pytest.mark.parametrize("with_c_responder", [False, True], ids=["python-only", "mixed"])
def test_c_initiator_secures_python_responders(net: Net, with_c_responder: bool) -> None:
    py_macs = {"py-resp-1": "02:00:00:00:02:01", "py-resp-2": "02:00:00:00:02:02"}
    py = {name: net.python(name, "responder", m) for name, m in py_macs.items()}
    c_resp = "02:00:00:00:01:03"
    if with_c_responder:
        net.c.start("c-resp", "responder", c_resp)
        net.c.wait_booted("c-resp")
    init_store = net.c.start("c-init", "initiator", INITIATOR_MAC)

    n = 3 if with_c_responder else 2
    net.c.wait(
        "c-init",
        lambda e: isinstance(e, logs.SecurityCompleted),
        "'Devices security completed'",
    )
    done = [e for e in net.c.events("c-init") if isinstance(e, logs.SecurityCompleted)]
    assert done[0] == logs.SecurityCompleted(n, 0), net.report()

    keys = {}
    for name, node in py.items():
        got = node.wait_for(lambda e: isinstance(e, KeyInstalled), WAIT_S)
        assert isinstance(got, KeyInstalled)
        assert got.provisioner_mac == mac(INITIATOR_MAC)
        assert node.machine.app_key == got.app_key
        assert PeerSecured(mac(INITIATOR_MAC)) in node.events
        keys[name] = got.app_key
    assert keys["py-resp-1"] == keys["py-resp-2"]
    if with_c_responder:
        net.c.wait("c-resp", lambda e: isinstance(e, logs.GotAppKey), "'Get APP key'")

    # C -> Python
    text = unique("typed into the c initiator")
    net.c.type("c-init", text)
    for node in py.values():
        py_received(node, text, INITIATOR_MAC)
    if with_c_responder:
        net.c.wait("c-resp", c_received(text, INITIATOR_MAC), f"{text!r} decrypted")

    # Python -> C
    text = unique("from py-resp-1")
    py["py-resp-1"].send(text.encode())
    net.c.wait("c-init", c_received(text, py_macs["py-resp-1"]), f"{text!r} decrypted")
    py_received(py["py-resp-2"], text, py_macs["py-resp-1"])
    if with_c_responder:
        net.c.wait("c-resp", c_received(text, py_macs["py-resp-1"]), f"{text!r} decrypted")

    # The app key the C initiator keeps is the one the Python responders installed and stored.
    # (an initiator stores its own key with its own MAC, docs/keystore.md)
    assert stored_key(init_store) == KeyRecord(keys["py-resp-1"], mac(INITIATOR_MAC))
    for name in py:
        assert stored_key(net.store_root / name) == KeyRecord(keys[name], mac(INITIATOR_MAC))
    for node in py.values():
        assert node.error is None


# --- (c) wrong PoP across implementations ------------------------------------------------------


def test_c_initiator_refuses_python_responder_with_wrong_pop(net: Net) -> None:
    bad_mac, good_mac = "02:00:00:00:02:0b", "02:00:00:00:02:01"
    bad = net.python("py-bad", "responder", bad_mac, WRONG_POP)
    good = net.python("py-good", "responder", good_mac)
    net.c.start("c-init", "initiator", INITIATOR_MAC)

    net.c.wait(
        "c-init",
        lambda e: isinstance(e, logs.SecurityCompleted),
        "'Devices security completed'",
        FAIL_WAIT_S,
    )
    done = [e for e in net.c.events("c-init") if isinstance(e, logs.SecurityCompleted)]
    assert done[0] == logs.SecurityCompleted(1, 1), net.report()
    failed = [e for e in net.c.events("c-init") if isinstance(e, logs.HandshakeFailed)]
    assert [f.peer for f in failed] == [bad_mac], net.report()
    assert failed[0].reason.strip(), net.report()

    # The Python device checks the C client's verifier (Cmd1) and refuses it.
    refusal = bad.wait_for(lambda e: isinstance(e, PeerFailed), 1.0)
    assert refusal == PeerFailed(mac(INITIATOR_MAC), "pop_mismatch")
    assert bad.machine.app_key is None
    assert not [e for e in bad.events if isinstance(e, KeyInstalled | PeerSecured)]
    assert not (net.store_root / "py-bad").exists() or not any(
        (net.store_root / "py-bad").iterdir()
    ), "the wrong-PoP responder stored a key"
    assert good.machine.app_key is not None


def test_python_initiator_refuses_c_responder_with_wrong_pop(net: Net) -> None:
    bad_mac, good_mac = "02:00:00:00:01:0b", "02:00:00:00:01:01"
    bad_store = net.c.start("c-bad", "responder", bad_mac, WRONG_POP)
    net.c.start("c-good", "responder", good_mac)
    net.c.wait_booted("c-bad", "c-good")

    init = net.python("py-init", "initiator", INITIATOR_MAC, store=False)
    init.provision(os.urandom(32))
    done = init.wait_for(lambda e: isinstance(e, ProvisionDone), FAIL_WAIT_S)
    assert isinstance(done, ProvisionDone)
    assert done.succeeded == (mac(good_mac),) and done.unfinished == (mac(bad_mac),), net.report()
    failed = [e for e in init.events if isinstance(e, PeerFailed)]
    assert [f.mac for f in failed] == [mac(bad_mac)], net.report()
    # Both devices stay silent after a Cmd1 whose verifier does not match (no Resp1), so the
    # client gives up after its retries; an error-status Resp1 would be as good.
    assert failed[0].reason in ("timeout", "status"), failed

    got = net.c.wait("c-bad", lambda e: isinstance(e, logs.HandshakeFailed), "why it refused")
    assert isinstance(got, logs.HandshakeFailed) and got.peer == INITIATOR_MAC
    assert logs.GotAppKey() not in net.c.events("c-bad")
    assert not (bad_store / STORE_FILE).exists(), "the wrong-PoP C responder stored a key"
    net.c.wait("c-good", lambda e: isinstance(e, logs.GotAppKey), "'Get APP key'")


# --- the console node ----------------------------------------------------------------------


def test_pynode_console_speaks_the_c_apps_log_lines(net: Net) -> None:
    """``python -m espnow_sec.pynode`` as a responder process, read through runner/logs.py."""
    py_mac = "02:00:00:00:02:01"
    argv = [sys.executable, "-m", "espnow_sec.pynode"]  # role, MAC, PoP, store: ESPNOW_* env
    py_store = net.c.start("py-resp", "responder", py_mac, argv=argv)
    net.c.wait_booted("py-resp")
    boot = next(e for e in net.c.events("py-resp") if isinstance(e, logs.Boot))
    assert boot == logs.Boot("responder", py_mac, 1, False)
    init_store = net.c.start("c-init", "initiator", INITIATOR_MAC)

    net.c.wait("c-init", lambda e: isinstance(e, logs.SecurityCompleted), "'completed'")
    assert logs.SecurityCompleted(1, 0) in net.c.events("c-init"), net.report()
    net.c.wait("py-resp", lambda e: isinstance(e, logs.GotAppKey), "'Get APP key'")

    text = unique("to the python console node")
    net.c.type("c-init", text)
    net.c.wait("py-resp", c_received(text, INITIATOR_MAC), f"{text!r} decrypted")
    text = unique("typed into the python console node")
    net.c.type("py-resp", text)
    net.c.wait("py-resp", lambda e: isinstance(e, logs.Sent) and e.data == text, "espnow_send")
    net.c.wait("c-init", c_received(text, py_mac), f"{text!r} decrypted")

    assert stored_key(py_store) == stored_key(init_store)
    net.c.stop()
    assert net.c.children["py-resp"].proc.returncode == 0, "pynode did not stop cleanly on SIGTERM"


# --- the same message, the same header bits ----------------------------------------------------


def message_kind(frame: Frame) -> str:
    """``ScanRequest``, ``Info``, ``Group-ADD``, ``Handshake-Cmd0``, ``Key``, ``Data``, ..."""
    h = frame.header
    if h.type == DataType.GROUP:
        return f"Group-{GroupOp(Group.decode(frame.payload).op).name}"
    if h.type == DataType.DATA:
        return "Data"
    msg = decode_security_payload(frame.payload)
    if isinstance(msg, Handshake):
        return f"Handshake-{type(decode_session(msg.data)).__name__}"
    return type(msg).__name__


def header_shape(frame: Frame) -> dict[str, object]:
    """Every header field but the per-frame ones (magic, size, addresses); the destination
    as its kind."""
    h = frame.header
    fields = h.fields()
    for name in ("magic", "size", "src_addr", "dest_addr"):
        del fields[name]
    if h.dest_addr == b"\xff" * 6:
        fields["dest"] = "broadcast"
    elif h.group:
        fields["dest"] = f"group {h.dest_addr.hex()}"
    else:
        fields["dest"] = "unicast"
    fields["payload_len"] = len(frame.payload)
    return fields


DATA_TEXT = "same length both ways"  # so the DATA frames' payload lengths compare too
Capture = dict[tuple[str, str], tuple[Frame, bytes]]  # (implementation, kind) -> first frame


def capture(frames: list[tuple[bytes, bytes]], c_macs: set[bytes], into: Capture) -> None:
    for src, data in frames:
        frame = Frame.decode(data)
        impl = "c" if src in c_macs else "python"
        into.setdefault((impl, message_kind(frame)), (frame, data))


@pytest.fixture(scope="module")
def both_ways(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    """Every message kind, sent once by C and once by the reference: a Python initiator with two
    C responders, then a C initiator with two Python responders; data both ways each time."""
    if not HOST_NODE.is_file():
        pytest.skip(f"host node binary {HOST_NODE} is missing: run `make build` first")
    got: Capture = {}
    net = Net(tmp_path_factory.mktemp("hdr") / "store")
    try:
        for name, m in (("c1", "02:00:00:00:01:01"), ("c2", "02:00:00:00:01:02")):
            net.c.start(name, "responder", m)
        net.c.wait_booted("c1", "c2")
        init = net.python("py-init", "initiator", INITIATOR_MAC, store=False)
        init.provision(os.urandom(32))
        init.wait_for(lambda e: isinstance(e, ProvisionDone), WAIT_S)
        init.send(DATA_TEXT.encode())
        net.c.type("c1", DATA_TEXT)
        py_received(init, DATA_TEXT, "02:00:00:00:01:01")
        net.c.wait("c1", c_received(DATA_TEXT, INITIATOR_MAC), DATA_TEXT)
        capture(net.air.frames.sent, {mac("02:00:00:00:01:01"), mac("02:00:00:00:01:02")}, got)
    finally:
        net.close()
    net = Net(tmp_path_factory.mktemp("hdr") / "store")
    try:
        p1 = net.python("p1", "responder", "02:00:00:00:02:01")
        net.python("p2", "responder", "02:00:00:00:02:02")
        net.c.start("c-init", "initiator", INITIATOR_MAC)
        net.c.wait("c-init", lambda e: isinstance(e, logs.SecurityCompleted), "'completed'")
        net.c.type("c-init", DATA_TEXT)
        py_received(p1, DATA_TEXT, INITIATOR_MAC)
        p1.send(DATA_TEXT.encode())
        net.c.wait("c-init", c_received(DATA_TEXT, "02:00:00:00:02:01"), DATA_TEXT)
        capture(net.air.frames.sent, {mac(INITIATOR_MAC)}, got)
    finally:
        net.close()
    return got


KINDS = [
    "ScanRequest",
    "Info",
    "Group-ADD",
    "Handshake-Cmd0",
    "Group-DELETE",
    "Handshake-Resp0",
    "Handshake-Cmd1",
    "Handshake-Resp1",
    "Key",
    "KeyResp",
    "Data",
]


@pytest.mark.parametrize("kind", KINDS)
def test_c_and_reference_send_the_same_header(both_ways: Capture, kind: str) -> None:
    """Per message kind, C's first frame and the reference's first frame differ only in the
    per-frame fields (magic, size, addresses); reserved bits are zero and ``size`` is right."""
    assert ("c", kind) in both_ways and ("python", kind) in both_ways, sorted(both_ways)
    c_frame, c_raw = both_ways[("c", kind)]
    py_frame, py_raw = both_ways[("python", kind)]
    for frame, raw in ((c_frame, c_raw), (py_frame, py_raw)):
        assert int.from_bytes(raw[:8], "little") & RESERVED_BITS == 0, raw[:8].hex()
        assert frame.size_matches, frame.header
    assert header_shape(c_frame) == header_shape(py_frame), (
        f"C header {c_raw[:8].hex()} vs reference {py_raw[:8].hex()}"
    )
